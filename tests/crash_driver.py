"""Kill a real run at every file replacement, then rerun it plainly; print what each rerun left.

Run as ``python crash_driver.py PAGES WORKDIR``.  The driver imports manga2music
once, then for every ``os.replace`` of a clean run (counted first) forks a child
that runs the same command and SIGKILLs itself just before, or just after, that
replacement.  A second child then reruns the command without ``--force``.  The
driver prints one JSON object per kill point: how the first child ended, the
rerun's section statuses, and the temp files and record mismatches left.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from output_checks import record_mismatches, temp_files  # noqa: E402


def run_once(pages: Path, out: Path, warnings: list | None = None) -> dict:
    import manga2music
    from manga2music.pipeline import Callbacks, RunConfig

    cfg = RunConfig(duration=1.0, seed=3)
    log = (lambda level, message: warnings.append(message) if level == "warning" else None) if warnings is not None else None
    return manga2music.run([pages], out, vision_model="builtin", music_model="builtin", config=cfg,
                           callbacks=Callbacks(log=log))


def count_replaces(pages: Path, out: Path) -> int:
    real, calls = os.replace, [0]

    def counting(*a, **k):
        calls[0] += 1
        return real(*a, **k)

    os.replace = counting
    try:
        run_once(pages, out)
    finally:
        os.replace = real
    return calls[0]


def child_killed_at(pages: Path, out: Path, point: int, when: str) -> int:
    pid = os.fork()
    if pid == 0:  # the child: die at the chosen replacement
        real, calls = os.replace, [0]

        def dying(*a, **k):
            calls[0] += 1
            if calls[0] == point and when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            result = real(*a, **k)
            if calls[0] == point and when == "after":
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        os.replace = dying
        try:
            run_once(pages, out)
        finally:
            os._exit(0)  # reached only if the point was never hit
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def rerun(out: Path, pages: Path, result_file: Path) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            warnings: list[str] = []
            manifest = run_once(pages, out, warnings)
            statuses = {e["name"]: (e["status"], e.get("message")) for e in manifest["sections"]}
            result_file.write_text(json.dumps({"statuses": statuses, "warnings": warnings}))
        except BaseException as exc:  # noqa: BLE001 - report anything
            result_file.write_text(json.dumps({"__error__": f"{type(exc).__name__}: {exc}"}))
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def same_writes_every_run(pages: Path, work: Path) -> None:
    """Make every run of the sweep replace the same files in the same order, whatever ran before or how busy the
    machine is: the user cache (page readings) is the driver's own, filled by a first run, and the manifest is
    written while the command runs after each finished section (the command does that only when seconds have
    passed, which a slow first run reaches and the others may not), at a fixed time of day (the listening page says
    when the manifest was updated: one written in the next second is written again at the end)."""
    os.environ["XDG_CACHE_HOME"] = str(work / "user-cache")
    from manga2music import api, outputs

    api._ManifestUpdates._due = lambda self: True
    outputs.now_iso = lambda: "2026-01-01T12:00:00+0000"
    run_once(pages, work / "warm-up")


def main() -> None:
    pages, work = Path(sys.argv[1]), Path(sys.argv[2])
    only = sys.argv[3].split(",") if len(sys.argv) > 3 else None
    same_writes_every_run(pages, work)
    total = count_replaces(pages, work / "clean")
    print(json.dumps({"replaces": total}), flush=True)
    for point in range(1, total + 1):
        for when in ("before", "after"):
            tag = f"{point}-{when}"
            if only and tag not in only:
                continue
            out = work / tag
            first = child_killed_at(pages, out, point, when)
            result_file = work / f"{tag}.json"
            second = rerun(out, pages, result_file)
            print(json.dumps({
                "point": tag, "first_exit": first, "rerun_exit": second,
                **(json.loads(result_file.read_text()) if result_file.exists() else {"statuses": None}),
                "temp_files": [str(p) for p in temp_files(out)],
                "mismatches": record_mismatches(out),
            }), flush=True)


if __name__ == "__main__":
    main()
