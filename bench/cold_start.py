"""Cold-start proxy: the time to import each function's handler module in a fresh interpreter (the
work Lambda does in the init phase before the first invocation), against a bare boto3 + Powertools
resolver handler (`bench/bare_handler.py`) measured in the same run.

    python -m bench.cold_start [--runs 7] [--clock cpu|wall] [--only teams.create_team ...]

Each round imports the baseline and every module once, in a new interpreter each, so a change in the
machine's load falls on all of them alike; a module's figure is its median over the rounds, and its
ratio is that median over the baseline's. The target (issue 13) is a ratio of at most 1.3 for every
function.

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


def measure(modules: list[str], runs: int, clock: str) -> dict[str, float]:
    """Median seconds per module (the baseline included), over `runs` interleaved rounds."""
    everything = [BASELINE, *modules]
    for module in everything:  # warm the bytecode cache so every module is measured alike
        import_once(module)
    samples: dict[str, list[float]] = {m: [] for m in everything}
    for _ in range(runs):
        for module in everything:
            samples[module].append(import_once(module)[clock])
    return {m: statistics.median(s) for m, s in samples.items()}


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
    results = measure(modules, arguments.runs, arguments.clock)
    baseline = results.pop(BASELINE)
    ratios = {m: seconds / baseline for m, seconds in results.items()}
    width = max(map(len, results))
    print(f"{arguments.clock} time, median of {arguments.runs} interleaved rounds")
    print(f"{'baseline (bench.bare_handler)'.ljust(width)}  {baseline * 1000:8.1f} ms")
    print(f"{'handler module'.ljust(width)}  {'ms':>8}  ratio")
    for module, seconds in sorted(results.items(), key=lambda kv: kv[1]):
        print(f"{module.ljust(width)}  {seconds * 1000:8.1f}  {ratios[module]:.2f}x")
    worst = max(ratios, key=ratios.get)
    print(
        f"\nmedian ratio {statistics.median(ratios.values()):.2f}x; worst {worst} {ratios[worst]:.2f}x "
        f"({'within' if ratios[worst] <= TARGET else 'over'} the {TARGET}x target)"
    )


if __name__ == "__main__":
    main()
