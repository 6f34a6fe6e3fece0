"""Start-up cost of the CLI: `manga2music --help` and `manga2music doctor --offline`.

Runs each as a fresh subprocess several times and prints the median, min and max
wall time next to the budget (0.5 s for --help, 1.5 s for doctor) and a bare
``python -c pass`` for scale.  Not a test: timings depend on the machine.

    python benchmarks/startup.py [--runs 7] [--online]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CASES = [
    ("python -c pass", [sys.executable, "-c", "pass"], None),
    ("python -c 'import torch'", [sys.executable, "-c", "import torch"], None),
    ("manga2music --help", [sys.executable, "-m", "manga2music", "--help"], 0.5),
    ("manga2music doctor --offline", [sys.executable, "-m", "manga2music", "doctor", "--offline"], 1.5),
    ("manga2music doctor --offline --json", [sys.executable, "-m", "manga2music", "doctor", "--offline", "--json"], 1.5),
    ("manga2music models list", [sys.executable, "-m", "manga2music", "models", "list"], 0.5),
]
ONLINE = ("manga2music doctor (Hub probe)", [sys.executable, "-m", "manga2music", "doctor"], 1.5)


def time_once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   env=dict(os.environ, COLUMNS="100"))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (after one warm-up)")
    parser.add_argument("--online", action="store_true", help="also time doctor with its Hub probe")
    args = parser.parse_args()
    cases = CASES + ([ONLINE] if args.online else [])
    print(f"{'command':40} {'median s':>9} {'min s':>7} {'max s':>7} {'budget':>7}")
    for label, cmd, budget in cases:
        time_once(cmd)  # warm the file cache
        times = [time_once(cmd) for _ in range(args.runs)]
        med = statistics.median(times)
        verdict = "" if budget is None else (f"{budget:.1f} ok" if med <= budget else f"{budget:.1f} OVER")
        print(f"{label:40} {med:9.3f} {min(times):7.3f} {max(times):7.3f} {verdict:>7}")


if __name__ == "__main__":
    main()
