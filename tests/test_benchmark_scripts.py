"""The benchmark scripts' own plumbing (not their timings: those live in benchmarks/results)."""

from __future__ import annotations

import json
from pathlib import Path

from repo_scripts import load_script

REPO = Path(__file__).resolve().parent.parent


def test_the_suites_report_takes_what_the_builtin_worker_records_now():
    """`python benchmarks/run.py` measured for a minute, then died writing its report ("unsupported format string
    passed to NoneType"): the builtin worker recorded RunConfig().duration, None since a track's length defaults
    to the one it was made with.  Nothing of the run was written."""
    report = load_script("benchmarks/report.py")
    results = json.loads((REPO / "benchmarks" / "results" / "builtin-latest.json").read_text(encoding="utf-8"))
    results["builtin"]["in_process"]["duration_s"] = None  # as a worker from before this fix recorded it
    assert "sections of 10 s" in report.markdown(results)


def test_benchmark_workers_read_every_page_as_they_are_timed():
    """run.py times builtin_bench's worker in a process of its own, whose environment kept readings from a run
    before (7 readings left in the cache by one `run.py --only builtin --quick`): faster than the README says."""
    measure = load_script("benchmarks/measure.py")
    assert measure.worker_env()["MANGA2MUSIC_READING_CACHE"] == "off"
