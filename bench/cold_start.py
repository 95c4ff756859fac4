"""Cold-start proxy: the time to import each function's handler module in a fresh interpreter (the
work Lambda does in the init phase before the first invocation), median of several runs.

    python -m bench.cold_start [--runs 5] [--only teams.create_team ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from local import template

ROOT = Path(__file__).resolve().parent.parent
_PROBE = "import time, importlib; t = time.perf_counter(); importlib.import_module({module!r}); print(time.perf_counter() - t)"


def import_seconds(module: str, runs: int) -> float:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT / "layers" / "kallo")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "KALLO_TABLE_NAME": "bench",
        "PYTHONDONTWRITEBYTECODE": "0",
    }
    samples = []
    for _ in range(runs):
        output = subprocess.run(
            [sys.executable, "-c", _PROBE.format(module=module)],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        samples.append(float(output.strip().splitlines()[-1]))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="handler modules to measure (default: all)")
    arguments = parser.parse_args()
    handlers = [f["Properties"]["Handler"] for f in template.functions(template.load()).values()]
    # The streaming function's handler is a start command (compat/run.sh): its app is compat.streaming.
    modules = sorted(
        {h.rpartition(".")[0] if not h.endswith(".sh") else "compat.streaming" for h in handlers}
    )
    if arguments.only:
        modules = [m for m in modules if m in arguments.only]
    import_seconds(modules[0], 1)  # warm the bytecode cache so every module is measured alike
    results = {m: import_seconds(m, arguments.runs) for m in modules}
    width = max(map(len, results))
    print(f"{'handler module'.ljust(width)}  import ms (median of {arguments.runs})")
    for module, seconds in sorted(results.items(), key=lambda kv: kv[1]):
        print(f"{module.ljust(width)}  {seconds * 1000:8.1f}")
    lightest, heaviest = min(results, key=results.get), max(results, key=results.get)
    print(
        f"\nlightest: {lightest} {results[lightest] * 1000:.0f} ms; heaviest: {heaviest} {results[heaviest] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
