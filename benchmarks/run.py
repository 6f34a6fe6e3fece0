"""manga2music benchmark suite: compose, describe, builtin tier and start-up, on the real model sizes.

    python benchmarks/run.py            # CPU suite, ~35 min on 2 cores -> results/latest.{json,md}
    python benchmarks/run.py --quick    # the target case only, fewer runs (~7 min)
    python benchmarks/run.py --full     # + more 30 s and musicgen-medium cases, more runs (over an hour)
    python benchmarks/run.py --gpu      # CUDA: musicgen-small/medium/large, batch 1 and 8, bf16/fp16, 10 s
                                        # -> results/gpu-latest.{json,md}; stops starting work after --budget s

Not part of the test run.  Models are built once with random weights (no
download) and kept in ``$M2M_BENCH_CACHE`` (default: the temp folder).  The
results files are rewritten after every configuration, so an interrupted run
still leaves what it measured.  The GPU path needs only torch, transformers
and this repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import measure  # noqa: E402
import report  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("compose", "describe", "builtin")


def _write(results: dict, out_dir: Path, stem: str) -> None:
    """JSON and Markdown, each written to a temp name and renamed (a reader never sees half a file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".json", json.dumps(results, indent=2) + "\n"), (".md", report.markdown(results) + "\n")):
        tmp = out_dir / f"{stem}{suffix}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out_dir / f"{stem}{suffix}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="fewer configurations and runs")
    group.add_argument("--full", action="store_true", help="every configuration, more runs (slow on a CPU)")
    parser.add_argument("--gpu", action="store_true",
                        help="run on CUDA: compose first, then describe if 90 s of the budget are left")
    parser.add_argument("--only", action="append", choices=PARTS, help="run just this part (repeatable)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds after which no new configuration starts (default: 420 with --gpu, none on CPU)")
    parser.add_argument("--device", help=argparse.SUPPRESS)  # rehearse the --gpu plan on another device
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)")
    parser.add_argument("--name", help="results file stem (default: latest, or gpu-latest with --gpu)")
    args = parser.parse_args(argv)

    mode = "quick" if args.quick else "full" if args.full else "default"
    stem = args.name or ("gpu-latest" if args.gpu else "latest")
    parts = args.only or (["compose", "describe"] if args.gpu else list(PARTS))
    budget = args.budget if args.budget is not None else (420.0 if args.gpu else None)
    start = time.time()
    results: dict = {"mode": "gpu" if args.gpu else mode, "started": time.strftime("%Y-%m-%d %H:%M %Z"),
                     "command": "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                     "machine": measure.machine_info()}
    if args.gpu and not results["machine"].get("gpu") and not args.device:
        print("--gpu: torch sees no CUDA GPU here", file=sys.stderr)
        return 2

    def save(section_name: str | None = None, section: dict | None = None) -> None:
        if section_name:
            results[section_name] = section
        results["wall_s"] = round(time.time() - start, 1)
        _write(results, args.out, stem)

    def left() -> float | None:
        return None if budget is None else budget - (time.time() - start)

    if "builtin" in parts:
        save("builtin", __import__("builtin_bench").run(mode=mode))
    if "compose" in parts:
        import compose_bench

        section = compose_bench.run(mode=mode, gpu=args.gpu, budget_s=left(), device=args.device,
                                    on_progress=lambda s: save("compose", s))
        save("compose", section)
    if "describe" in parts:
        import describe_bench

        remaining = left()
        missing = describe_bench.missing_modules()
        if remaining is not None and remaining < 90:
            save("describe", {"skipped": f"time budget ({remaining:.0f} s left)"})
        elif missing:  # a bare GPU machine may lack the project's own dependencies
            save("describe", {"skipped": f"not installed here: {', '.join(missing)}"})
        else:
            device = args.device or ("cuda" if args.gpu else "cpu")
            save("describe", describe_bench.run(mode="gpu" if args.gpu else mode, device=device,
                                                timeout=remaining))
    save()
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    save()
    print(report.markdown(results))
    print(f"\nwritten: {args.out / (stem + '.json')} and {args.out / (stem + '.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
