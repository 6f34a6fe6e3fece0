"""Shared fixtures: every test gets its own user/cache dirs and no network credentials."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The suite runs on the CPU, where its exact checks (a track made alone equals it made in a batch, a seed repeats
# to the bit) were established; on an H200 several of them fail (benchmarks/results/gpu-h200-2026-11-29.md).  So
# a GPU is hidden from every test and every process a test starts, unless M2M_TEST_GPU=1 asks to run them on it
# (benchmarks/gpu_check.sh does).  Set before anything initialises CUDA, which reads the variable once.
if os.environ.get("M2M_TEST_GPU") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

MAX_WORKERS = 8  # each worker imports torch, some start Chromium or a Ray instance


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto`` (the README's test command): one worker per CPU this process may use, at most MAX_WORKERS."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cpus))


def pytest_configure(config) -> None:
    """In each xdist worker, torch works on its share of the cores, not on all of them: two workers on two cores
    with two torch threads each made a tiny MusicGen test wait on itself (two at once: 90-100 s with two threads
    each, 26 s with one; one such test took 411 s in a busy suite).  The processes a test starts get that share too
    (OMP_NUM_THREADS, unless set): the web UI's MusicGen bridges test took 10 s alone and 88 s beside the other
    worker, its generate process spinning on two threads."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers <= 1:
        return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpus // workers)))
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(max(1, cpus // workers))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Each test file runs whole on one worker (xdist's ``loadfile``) unless ``--dist`` names another way, so a
    module's fixtures are built once: the kill sweep of test_crash_recovery.py alone takes minutes."""
    if config.getoption("dist") != "load":
        return None  # xdist's own choice for what was asked
    from xdist.scheduler import LoadFileScheduling

    return LoadFileScheduling(config, log)


#: the test files that take longest (minutes each on 2 busy cores, from `pytest --durations`), longest first
SLOWEST_FILES = ("test_score.py", "test_ray.py", "test_crash_recovery.py", "test_cli_output.py", "test_webui.py",
                 "test_hostile_inputs.py", "test_first_run.py", "test_musicgen.py", "test_pipeline.py",
                 "test_openai_describer.py", "test_diffusion_composers.py", "test_describer_eval.py")


def pytest_addoption(parser) -> None:
    parser.addoption("--extended", action="store_true",
                     help="also run the tests marked `extended` (CI does): repeats on Ray workers of what the "
                          "default run checks here, the kill sweep, the second signal of the signal tests")


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected theirs: the tests counted as left out are ours
def pytest_collection_modifyitems(config, items) -> None:
    """The slowest files run first, each test file still in its own order: xdist hands out files in this order, and
    test_score.py, collected near the end, was started last and left one worker alone with it for minutes.

    Without ``--extended``, the tests marked ``extended`` are left out (deselected, and counted in the last line of
    the summary: :func:`pytest_terminal_summary`), unless named one by one (``tests/test_ray.py::test_x``)."""
    rank = {name: k for k, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
    if config.getoption("extended"):
        return
    named = set()  # (file, test function) of each test named on the command line
    for arg in config.args:
        if "::" in arg:
            file, test = arg.split("::", 1)
            named.add((Path(file).resolve(), test.split("[")[0]))
    left_out = [item for item in items if item.get_closest_marker("extended")
                and (item.path.resolve(), item.originalname) not in named]
    config.stash[LEFT_OUT] = len(left_out)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        gone = set(map(id, left_out))
        items[:] = [item for item in items if id(item) not in gone]


LEFT_OUT = pytest.StashKey[int]()


def pytest_sessionfinish(session) -> None:
    """An xdist worker tells the controlling process how many tests it left out (see below)."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["left_out"] = session.config.stash.get(LEFT_OUT, 0)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """The controlling process hears each worker's count (every worker collects every test: the same count)."""
    count = getattr(node, "workeroutput", {}).get("left_out", 0)
    node.config.stash[LEFT_OUT] = max(node.config.stash.get(LEFT_OUT, 0), count)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """A run that left tests out says so last: with ``-n auto`` pytest's own "deselected" count is not shown (the
    workers deselect, not the process that prints the summary)."""
    count = config.stash.get(LEFT_OUT, 0)
    if count:
        terminalreporter.write_line(f"left out: {count} tests marked `extended` (repeats on Ray workers, the kill "
                                    "sweep, second signals); `python -m pytest -q -n auto --extended` runs everything")


REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


@pytest.fixture
def four_sections(tmp_path) -> Path:
    """Four sections of the samples' pages (calm, action, calm, action), ``sec000`` to ``sec003``, in ``in/``."""
    import shutil

    root = tmp_path / "in"
    for i in range(4):
        shutil.copytree(SAMPLES / ("calm", "action")[i % 2], root / f"sec{i:03d}")
    return root


@pytest.fixture(autouse=True)
def signal_handlers_kept(request):
    """A test that leaves Ctrl-C's or SIGTERM's handler changed (a command run in this process and stopped there)
    would change what a later test on this worker sees: they are put back, and the test is named in a warning."""
    import signal
    import threading
    import warnings

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in before.items():
        if signal.getsignal(sig) is not handler and handler is not None:
            signal.signal(sig, handler)
            warnings.warn(f"{request.node.nodeid} left the {sig.name} handler changed; it was put back")


#: where a run writes outside its output folder: the model cache, the user cache (page readings), remembered answers
USER_FOLDERS = {"MANGA2MUSIC_CACHE": "models", "XDG_CACHE_HOME": "cache", "MANGA2MUSIC_CONFIG_DIR": "config"}


@pytest.fixture(scope="session", autouse=True)
def session_user_dirs(tmp_path_factory):
    """The same folders for the whole session, set before any module's fixture is built (one that runs commands or
    reads pages wrote into the developer's own ~/.cache) and before a Ray instance starts (its workers keep the
    environment they started with).  Each test then gets its own (below)."""
    home = tmp_path_factory.mktemp("session-home")
    with pytest.MonkeyPatch.context() as m:
        for name, below in USER_FOLDERS.items():
            m.setenv(name, str(home / below))
        yield home


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Point caches at a temp folder and hide the developer's keys and Hub settings."""
    home = tmp_path_factory.mktemp("home")
    for name, below in USER_FOLDERS.items():
        monkeypatch.setenv(name, str(home / below))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_HOME", "HF_HUB_CACHE", "MANGA2MUSIC_DEBUG", "HF_TOKEN",
                 "MANGA2MUSIC_AUTO_DOWNLOAD", "MANGA2MUSIC_READING_CACHE"):
        monkeypatch.delenv(name, raising=False)
    yield home


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def real_tiny(tmp_path_factory):
    """``real_tiny(name)``: a tiny random model with a real checkpoint's files (tests/real_tiny.py), built once."""
    from real_tiny import build_tiny

    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build_tiny(name, tmp_path_factory.mktemp(name.replace(".", "_")) / name)
        return built[name]

    return get
