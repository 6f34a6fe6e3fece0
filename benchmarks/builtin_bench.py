"""Builtin tier and start-up: `manga2music run samples/` (in one process and as a command), `--help`, `doctor`.

The builtin describer and composer need no weights, so this is the time a
user waits on any machine.  In-process figures call ``manga2music.api.run``
after the imports (Python start-up excluded): the first call also pays the
lazy imports (numpy, scipy, the SoundFont), later calls are warm.  The
command figure is the whole ``python -m manga2music run samples/ ...`` wall
time.  Start-up figures reuse ``benchmarks/startup.py``.

    python benchmarks/builtin_bench.py [--quick]
    python benchmarks/builtin_bench.py --side-by-side   # tracks made one at a time vs at once (see below)

``--side-by-side``: the builtin composer makes the tracks of one call on threads, one
per core (:func:`manga2music.composers.builtin.render_side_by_side`); this times four
one-minute tracks made one at a time and side by side, alternated in the same run,
and prints the ratio (and checks the tracks are the same either way).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import REPO, emit, median, run_worker, worker_env  # noqa: E402

RUN_ARGS = ["--vision-model", "builtin", "--music-model", "builtin", "--force"]
#: the budgets of issue #8
TARGETS = {"help": 0.5, "doctor": 1.5, "builtin_run": 3.0}


def _sample_sections() -> int:
    from manga2music.sections import find_sections

    return len(find_sections([REPO / "samples"]))


def worker(cfg: dict) -> None:
    """In a fresh process: import the API, then time ``api.run`` cold once and warm ``repeats`` times."""
    start = time.perf_counter()
    from manga2music import api
    from manga2music.options import DEFAULT_DURATION
    from manga2music.pipeline import RunConfig

    import_s = time.perf_counter() - start
    times = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(1 + cfg["repeats"]):
            t0 = time.perf_counter()
            manifest = api.run([str(REPO / "samples")], out, vision_model="builtin", music_model="builtin",
                               config=RunConfig(force=True))
            times.append(round(time.perf_counter() - t0, 3))
        ok = [s for s in manifest.get("sections", []) if s.get("status") == "ok"]
        tracks = sorted(p.name for p in Path(out).rglob("*.wav"))
    emit({"import_s": round(import_s, 3), "cold_s": times[0], "warm_s": times[1:],
          "warm_median_s": round(median(times[1:]), 3), "sections": _sample_sections(), "tracks": len(tracks),
          "ok_sections": len(ok), "duration_s": DEFAULT_DURATION})  # RunConfig's is None: "as made before"


def command_times(repeats: int) -> list[float]:
    """Wall time of the whole ``manga2music run samples/`` command (Python start-up included)."""
    times = []
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "manga2music", "run", str(REPO / "samples"), "-o", out, *RUN_ARGS]
        for _ in range(repeats):
            t0 = time.perf_counter()
            done = subprocess.run(cmd, cwd=str(REPO), env=worker_env(), capture_output=True, text=True)
            times.append(round(time.perf_counter() - t0, 3))
            if done.returncode != 0:
                raise RuntimeError(f"manga2music run failed: {done.stderr.strip()[-300:]}")
    return times


def startup_times(repeats: int) -> list[dict]:
    """``--help``, ``doctor --offline`` and friends, via benchmarks/startup.py's own cases and timer."""
    import startup

    rows = []
    for label, cmd, budget in [*startup.CASES, startup.ONLINE]:  # plain `doctor` probes the Hub too
        startup.time_once(cmd)  # warm the file cache
        times = [round(startup.time_once(cmd), 3) for _ in range(repeats)]
        rows.append({"command": label, "times_s": times, "median_s": round(median(times), 3),
                     "min_s": min(times), "max_s": max(times), "budget_s": budget})
    return rows


def side_by_side(repeats: int = 3, seconds: float = 60.0) -> dict:
    """Four tracks made one at a time, then side by side, ``repeats`` times alternated: wall seconds and their ratio."""
    import numpy as np

    from manga2music.composers.builtin import PARALLEL_TRACKS, BuiltinComposer, render_side_by_side
    from manga2music.hardware import cpu_cores

    composer = BuiltinComposer()
    texts = ["Driving orchestral action cue, 150 BPM, pounding drums, staccato strings",
             "Gentle slice-of-life acoustic piece, 68 BPM, soft piano", "Bouncy playful comedy, 110 BPM, marimba",
             "Suspenseful cinematic score, 100 BPM, low strings"]
    items = list(enumerate(texts))

    def make(item):
        return composer.compose_one(item[1], seconds, seed=item[0]).audio

    make((0, texts[0]))  # the imports and the SoundFont, outside the timings
    workers = min(PARALLEL_TRACKS, cpu_cores(), len(items))
    alone, together, same = [], [], True
    for _ in range(repeats):
        for label, n in (("alone", 1), ("together", workers)):
            t0 = time.perf_counter()
            tracks = render_side_by_side(make, items, [seconds] * len(items), n)
            (alone if n == 1 else together).append(round(time.perf_counter() - t0, 3))
            if label == "alone":
                first = tracks
            else:
                same = same and all(np.array_equal(a, b) for a, b in zip(first, tracks))
    return {"tracks": len(items), "track_s": seconds, "workers": workers, "one_at_a_time_s": alone,
            "side_by_side_s": together, "ratio": round(median(together) / median(alone), 3), "same_audio": same}


def run(*, mode: str = "default") -> dict:
    repeats = {"quick": 3, "default": 5, "full": 9}[mode]
    print("builtin: api.run in one process, the run command, start-up", file=sys.stderr)
    section = {"in_process": run_worker("builtin_bench.py", {"repeats": repeats}, timeout=600)}
    try:
        times = command_times(repeats)
        section["command"] = {"times_s": times, "median_s": round(median(times), 3), "args": RUN_ARGS}
    except RuntimeError as exc:
        section["command"] = {"error": str(exc)}
    section["startup"] = startup_times(repeats + 2)
    return section


def main() -> None:
    os.environ["MANGA2MUSIC_READING_CACHE"] = "off"  # every page read, as timed: no reading kept from a run before
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--side-by-side", action="store_true", help="tracks made one at a time vs side by side")
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    if args.side_by_side:
        print(json.dumps(side_by_side(), indent=2))
        return
    print(json.dumps(run(mode="quick" if args.quick else "default"), indent=2))


if __name__ == "__main__":
    main()
