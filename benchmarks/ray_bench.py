"""A 16-section series run here and on a local Ray instance with 1 and 2 workers per model (``--ray``).

Every configuration runs the same tree (the three sample sections copied to 16 chapters) with the builtin
describer and composer into a fresh output folder, in this process; the local run is the baseline, and each
Ray figure is a ratio against the local run of the same round.  Rounds alternate the configurations, so the
drift of a shared machine spreads over all of them.  Ray starts once (``ray.init(address="local")`` with as
many logical CPUs as the widest configuration reserves); its start-up is reported on its own, and each Ray run
includes starting its workers (their imports, building the models).  Every Ray run's files are checked to be
the local run's (descriptions, MIDI and audio bytes).

    python benchmarks/ray_bench.py [--duration 30] [--rounds 2]    -> results/ray-latest.{json,md}
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
SECTIONS = 16
CONFIGS = [("local", None), ("ray, 1 worker per model", 1), ("ray, 2 workers per model", 2)]


def make_tree(root: Path) -> Path:
    """16 chapters, each a copy of one sample section (calm, action, webtoon in turn)."""
    samples = sorted(p for p in (REPO / "samples").iterdir() if p.is_dir())
    for i in range(SECTIONS):
        shutil.copytree(samples[i % len(samples)], root / f"ch{i + 1:02d}")
    return root


def digests(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in out.rglob("*") if p.suffix in (".txt", ".wav", ".mid")}


def one_run(tree: Path, out: Path, workers, duration: float) -> tuple[float, float]:
    import manga2music
    from manga2music.distributed import RayConfig
    from manga2music.options import RunConfig

    cfg = RunConfig(duration=duration, seed=1, ray=RayConfig(workers=workers) if workers else None)
    started, cpu = time.perf_counter(), time.process_time()
    manifest = manga2music.run([tree], out, vision_model="builtin", music_model="builtin", config=cfg)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    bad = [e["name"] for e in manifest["sections"] if e["status"] != "ok"]
    if bad:
        raise SystemExit(f"sections failed: {bad}")
    return wall, cpu


def main() -> None:
    os.environ["MANGA2MUSIC_READING_CACHE"] = "off"  # every page read, as timed: no reading kept from a run before
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of music per section")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import ray

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)  # 2 models x 2 workers
    ray_start = time.perf_counter() - t0
    times: dict[str, list[float]] = {name: [] for name, _ in CONFIGS}
    driver_cpu: dict[str, list[float]] = {name: [] for name, _ in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        tree = make_tree(Path(tmp) / "series")
        reference = None
        for r in range(args.rounds):
            for name, workers in CONFIGS:
                out = Path(tmp) / f"out-{r}-{workers or 0}"
                wall, cpu = one_run(tree, out, workers, args.duration)
                times[name].append(wall)
                driver_cpu[name].append(cpu)
                files = digests(out)
                reference = reference or files
                if files != reference:
                    raise SystemExit(f"{name}: the files differ from the local run's")
                print(f"round {r + 1}: {name}: {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
    ray.shutdown()
    load_after = os.getloadavg()

    base = statistics.median(times["local"])
    rows = []
    for name, workers in CONFIGS:
        med = statistics.median(times[name])
        rows.append({"config": name, "workers": workers or 0, "wall_s": [round(t, 2) for t in times[name]],
                     "median_s": round(med, 2), "sections_per_s": round(SECTIONS / med, 2),
                     "driver_cpu_s": round(statistics.median(driver_cpu[name]), 2),
                     "vs_local": round(base / med, 2)})
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(), "python": platform.python_version(), "ray": ray.__version__,
        "sections": SECTIONS, "duration_s": args.duration, "rounds": args.rounds,
        "ray_start_s": round(ray_start, 2), "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after], "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ray-latest.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# --ray on this machine ({result['when']})", "",
        f"{SECTIONS} sections (builtin describer and composer, {args.duration:g} s tracks), {os.cpu_count()} CPU "
        f"cores, Ray {ray.__version__}; median of {args.rounds} rounds; Ray start-up ({ray_start:.1f} s) not "
        f"included, starting the workers is. Load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}.",
        "Driver CPU: CPU seconds of the process that ran the command (locally: all the work; with Ray: reading pages,",
        "encoding, normalising and writing every file, and talking to Ray).", "",
        "| configuration | wall s (each round) | median s | sections/s | vs local | driver CPU s |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(f"| {row['config']} | {', '.join(f'{t:.2f}' for t in row['wall_s'])} | {row['median_s']:.2f} | "
                     f"{row['sections_per_s']:.2f} | {row['vs_local']:.2f}x | {row['driver_cpu_s']:.2f} |")
    (RESULTS / "ray-latest.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
