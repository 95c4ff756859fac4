"""Cold-start proxy: the time to import each function's handler module in a fresh interpreter (the
work Lambda does in the init phase before the first invocation), against a bare boto3 + Powertools
resolver handler (`bench/bare_handler.py`) measured in the same run.

    python -m bench.cold_start [--runs 7] [--clock cpu|wall] [--only teams.create_team ...]

Each round imports every module once, each in a new interpreter and each right after an import of the
baseline in another new interpreter, so that the two share the machine's load of that moment. A
module's ratio is the median over the rounds of its time over its paired baseline's (a lucky or unlucky
round of either side moves one pair, not the figure); its time is its fastest round. The target
(issue 13) is a ratio of at most 1.3 for every function.

`--clock cpu` (the default) counts the CPU time the importing process spends (user + system): on a
shared machine the wall clock mostly measures the neighbours, while an import is CPU work on files in
the page cache, so its CPU time is what the import would take on an idle machine. `--clock wall` gives
the elapsed time (use it on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from local import runtime, template

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "bench.bare_handler"
TARGET = 1.3
_PROBE = (
    "import time, importlib, json; w = time.perf_counter(); c = time.process_time(); "
    "importlib.import_module({module!r}); "
    "print(json.dumps({{'wall': time.perf_counter() - w, 'cpu': time.process_time() - c}}))"
)


def environment() -> dict[str, str]:
    """A function's environment, as far as importing its module needs one."""
    return {
        **os.environ,
        # Every function's code root (its CodeUri) and the layer, as Lambda and the local stack have them.
        "PYTHONPATH": os.pathsep.join([*(str(p) for p in runtime.code_paths(template.load())), str(ROOT)]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "KALLO_TABLE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Kallo",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "PYTHONDONTWRITEBYTECODE": "0",
    }


def import_once(module: str) -> dict[str, float]:
    """The wall and CPU seconds one import of `module` takes in a fresh interpreter."""
    output = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def handler_modules() -> list[str]:
    """Every handler module of template.yaml."""
    handlers = [f["Properties"]["Handler"] for f in template.functions(template.load()).values()]
    # The streaming function's handler is a start command (compat/run.sh): its app is compat.streaming.
    return sorted({h.rpartition(".")[0] if not h.endswith(".sh") else "compat.streaming" for h in handlers})


def measure(modules: list[str], runs: int, clock: str) -> dict[str, list[tuple[float, float]]]:
    """Per module, `runs` pairs of seconds: (the module's import, the baseline's just before it)."""
    for module in [BASELINE, *modules]:  # warm the bytecode cache so every module is measured alike
        import_once(module)
    pairs: dict[str, list[tuple[float, float]]] = {m: [] for m in modules}
    for _ in range(runs):
        for module in modules:
            baseline = import_once(BASELINE)[clock]
            pairs[module].append((import_once(module)[clock], baseline))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    parser.add_argument("--only", nargs="*", help="handler modules to measure (default: all)")
    arguments = parser.parse_args()
    modules = handler_modules()
    if arguments.only:
        modules = [m for m in modules if m in arguments.only]
    pairs = measure(modules, arguments.runs, arguments.clock)
    ratios = {m: statistics.median(own / base for own, base in p) for m, p in pairs.items()}
    fastest = {m: min(own for own, _ in p) for m, p in pairs.items()}
    baseline = min(base for p in pairs.values() for _, base in p)
    width = max(map(len, pairs))
    print(f"{arguments.clock} time, {arguments.runs} rounds, each import paired with one of the baseline")
    print(f"{'baseline (bench.bare_handler)'.ljust(width)}  {baseline * 1000:8.1f} ms (fastest)")
    print(f"{'handler module'.ljust(width)}  {'fastest':>8}  median ratio")
    for module in sorted(pairs, key=ratios.get):
        print(f"{module.ljust(width)}  {fastest[module] * 1000:8.1f}  {ratios[module]:.2f}x")
    worst = max(ratios, key=ratios.get)
    print(
        f"\nmedian ratio {statistics.median(ratios.values()):.2f}x; worst {worst} {ratios[worst]:.2f}x "
        f"({'within' if ratios[worst] <= TARGET else 'over'} the {TARGET}x target)"
    )


if __name__ == "__main__":
    main()
