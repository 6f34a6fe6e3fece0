"""``--ray``: a run spread over a real local Ray instance makes what a local run makes, and survives a killed worker.

One Ray instance (2 CPUs, no dashboard) serves the whole module: Ray takes seconds to start.  Its workers are
real processes: the killed-worker test kills one with SIGKILL while it is composing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

import manga2music
from manga2music.options import RunConfig
from manga2music.pipeline import Callbacks
from tests.openai_server import openai_server  # noqa: F401  (fixture)
from tests.output_checks import record_mismatches, temp_files

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
#: files whose bytes hold the time of the run (compared field by field instead)
TIMED = {"manifest.json", "index.html"}
LOCKS = {".manga2music.lock"}


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray instance for this module; its workers import this checkout and run offline."""
    ray = pytest.importorskip("ray", reason='ray is not installed: pip install -e ".[test]" (or ".[ray]")')
    wanted = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
              "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
              "MANGA2MUSIC_CACHE": str(tmp_path_factory.mktemp("ray_cache"))}
    before = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)  # the raylet and every worker it starts inherit these
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never a running one
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ray_cfg(**kw) -> RunConfig:
    from manga2music.distributed import RayConfig

    return RunConfig(ray=RayConfig(), **kw)


class Seen:
    """What the run told its callbacks: warnings and what each worker was asked to do."""

    def __init__(self):
        self.warnings: list[str] = []
        self.activity: list[tuple[str, str]] = []

    def callbacks(self) -> Callbacks:
        return Callbacks(log=lambda level, m: self.warnings.append(m) if level == "warning" else None,
                         worker=lambda w, label: self.activity.append((w, label)))

    def work_sent(self) -> list[str]:
        return [label for _, label in self.activity if label]


def tree(tmp_path: Path) -> Path:
    """The samples, a nested section, and a section whose only page is not an image (it fails alone)."""
    root = tmp_path / "series"
    shutil.copytree(SAMPLES, root)
    shutil.copytree(SAMPLES / "calm", root / "vol2" / "ch05")
    (root / "broken").mkdir()
    (root / "broken" / "001.png").write_bytes(b"not a png at all")
    whole = (SAMPLES / "calm" / "001.png").read_bytes()  # pages that open but are cut short: on Ray they were not
    (root / "cut").mkdir()  # said, nor listed, and a section of them failed with "none of the pages could be
    (root / "cut" / "001.png").write_bytes(whole[:3000])  # measured"
    shutil.copytree(SAMPLES / "action", root / "mixed")
    (root / "mixed" / "0025.png").write_bytes(whole[:3000])
    return root


def untimed(data, path=()):
    """A record or manifest without the fields that hold when, how long and where (they differ between any two
    runs)."""
    if isinstance(data, dict):
        return {k: untimed(v, path + (k,)) for k, v in data.items()
                if k not in ("seconds", "at", "updated", "folder")
                and not (k == "index.html" and path[-1:] == ("files",))}
    if isinstance(data, list):
        return [untimed(v, path) for v in data]
    return data


def files(out: Path) -> dict[str, Path]:
    """The outputs a user gets (not the hidden thumbnail cache: a Ray run's driver makes thumbnails when it writes
    the listening page, a local run while describing, so their JPEG bytes may differ by a rounding)."""
    return {p.relative_to(out).as_posix(): p for p in out.rglob("*")
            if p.is_file() and p.name not in LOCKS and ".manga2music" not in p.relative_to(out).parts}


def assert_same_outputs(a: Path, b: Path) -> None:
    fa, fb = files(a), files(b)
    assert sorted(fa) == sorted(fb)
    for rel, path in fa.items():
        if path.suffix == ".json":
            old, new = untimed(json.loads(path.read_text("utf-8"))), untimed(json.loads(fb[rel].read_text("utf-8")))
            assert old == new, rel
        elif rel not in TIMED:
            assert path.read_bytes() == fb[rel].read_bytes(), f"{rel} differs"


def digests(out: Path) -> dict[str, str]:
    return {rel: hashlib.sha256(p.read_bytes()).hexdigest() for rel, p in files(out).items() if rel not in TIMED}


def statuses(manifest: dict) -> dict[str, str]:
    return {e["name"]: e["status"] for e in manifest["sections"]}


def test_a_ray_run_writes_what_a_local_run_writes_and_a_rerun_skips_everything(ray_cluster, tmp_path):
    root = tree(tmp_path)
    settings = dict(duration=2.0, seed=11, variations=2, save_artifact=True)
    here = Seen()
    local = manga2music.run([root], tmp_path / "local", vision_model="builtin", music_model="builtin",
                            config=RunConfig(**settings), callbacks=here.callbacks())
    seen = Seen()
    spread = manga2music.run([root], tmp_path / "ray", vision_model="builtin", music_model="builtin",
                             config=ray_cfg(**settings), callbacks=seen.callbacks())
    assert statuses(spread) == statuses(local) == {"action": "ok", "broken": "failed", "calm": "ok", "cut": "failed",
                                                   "mixed": "ok", "vol2/ch05": "ok", "webtoon": "ok"}
    assert [e["message"] for e in spread["sections"]] == [e["message"] for e in local["sections"]]
    cut = {e["name"]: e for e in spread["sections"]}["cut"]
    assert cut["message"].startswith("no readable page among 1 (") and cut["skipped_pages"], cut
    skipping = [w for w in here.warnings if "skipping page" in w]
    assert len(skipping) >= 2 and [w for w in seen.warnings if "skipping page" in w] == skipping, seen.warnings
    assert untimed(spread) == untimed(local)
    assert_same_outputs(tmp_path / "local", tmp_path / "ray")
    assert (tmp_path / "ray" / "vol2" / "ch05.take2.wav").exists()
    assert any(label.startswith("describing") for label in seen.work_sent())
    assert any(label.startswith("composing") for label in seen.work_sent())
    same = [w for w in here.warnings if "make the same music" in w]  # vol2/ch05 is a copy of calm: --seed 11 gives
    assert same and [w for w in seen.warnings if "make the same music" in w] == same  # both the same music: said

    before = digests(tmp_path / "ray")
    again = Seen()
    rerun = manga2music.run([root], tmp_path / "ray", vision_model="builtin", music_model="builtin",
                            config=ray_cfg(**settings), callbacks=again.callbacks())
    assert statuses(rerun) == {"action": "skipped", "broken": "failed", "calm": "skipped", "cut": "failed",
                               "mixed": "skipped", "vol2/ch05": "skipped", "webtoon": "skipped"}
    assert again.work_sent() == ["describing cut (1 pages)"]  # nothing else went to a worker (a failed section
    # is tried again, and its page opens: only decoding it tells)
    assert digests(tmp_path / "ray") == before

    described = manga2music.describe([root], tmp_path / "ray-describe", model="builtin", config=ray_cfg())
    assert statuses(described) == statuses(local)
    for name in ("action", "calm", "mixed", "vol2/ch05", "webtoon"):
        assert ((tmp_path / "ray-describe" / f"{name}.txt").read_bytes()
                == (tmp_path / "local" / f"{name}.txt").read_bytes())


@pytest.mark.parametrize("command", ["run", "score"])
def test_a_damaged_archive_failed_on_ray_is_dropped_from_the_manifest_once_deleted(ray_cluster, tmp_path, command):
    """A chapter archive that is no archive (a failed download) failed on Ray without naming its file in the
    manifest, as a local run does: deleted, it stayed "failed" on the page for good, whatever ran next."""
    root = tmp_path / "series"
    shutil.copytree(SAMPLES / "calm", root / "Chapter 1")
    (root / "Chapter 2.cbz").write_bytes(os.urandom(20000))
    make = getattr(manga2music, command)
    local = make([root], tmp_path / "local", vision_model="builtin", music_model="builtin",
                 config=RunConfig(seed=1, duration=2.0))
    spread = make([root], tmp_path / "ray", vision_model="builtin", music_model="builtin",
                  config=ray_cfg(seed=1, duration=2.0))
    assert statuses(spread) == statuses(local) == {"Chapter 1": "ok", "Chapter 2": "failed"}
    assert untimed(spread) == untimed(local)
    (root / "Chapter 2.cbz").unlink()
    again = make([root], tmp_path / "ray", vision_model="builtin", music_model="builtin",
                 config=ray_cfg(seed=1, duration=2.0))
    assert statuses(again) == {"Chapter 1": "skipped"}
    assert "Chapter 2" not in (tmp_path / "ray" / "index.html").read_text(encoding="utf-8")


@contextlib.contextmanager
def killing_the_first_composer():
    """While the block runs, a thread kills -9 the first Ray worker seen composing; yields the pids it killed."""
    killed: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_kill_first_composer, args=(killed, stop), daemon=True)
    watcher.start()
    try:
        yield killed
    finally:
        stop.set()
        watcher.join()


def ray_workers(title: str) -> list:
    """This module's Ray worker processes whose title starts with ``title`` (``ray::ModelWorker.compose``...):
    children of the raylet the fixture started in this process, not those of another Ray on the machine."""
    import psutil

    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if " ".join(proc.cmdline()).startswith(title):
                found.append(proc)
        except psutil.Error:  # gone meanwhile
            pass
    return found


def _kill_first_composer(killed: list, stop: threading.Event) -> None:
    """Kill -9 the first Ray worker seen composing (its process title is ``ray::ModelWorker.compose``)."""
    while not stop.is_set() and not killed:
        for proc in ray_workers("ray::ModelWorker.compose"):
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(proc.pid)
            return
        time.sleep(0.01)


def test_a_worker_killed_mid_section_is_replaced_and_the_run_makes_the_same_files(ray_cluster, tmp_path):
    settings = dict(duration=90.0, seed=3)  # about half a second of composing per section: time to kill it
    local = manga2music.run([SAMPLES], tmp_path / "local", vision_model="builtin", music_model="builtin",
                            config=RunConfig(**settings))
    seen = Seen()
    with killing_the_first_composer() as killed:
        spread = manga2music.run([SAMPLES], tmp_path / "ray", vision_model="builtin", music_model="builtin",
                                 config=ray_cfg(**settings), callbacks=seen.callbacks())
    assert killed, "no worker was seen composing"
    died = [w for w in seen.warnings if "died while composing" in w]
    assert len(died) == 1 and "sending it to a fresh worker (try 2 of 3)" in died[0]
    assert statuses(spread) == statuses(local) == {"action": "ok", "calm": "ok", "webtoon": "ok"}
    assert_same_outputs(tmp_path / "local", tmp_path / "ray")
    assert temp_files(tmp_path / "ray") == [] and record_mismatches(tmp_path / "ray") == []


@pytest.fixture(scope="module")
def tiny_musicgen(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.tiny_musicgen import build_tiny_musicgen

    return build_tiny_musicgen(tmp_path_factory.mktemp("tiny_musicgen") / "model")


@pytest.mark.extended
def test_musicgen_on_a_worker_makes_the_same_audio_and_errors_as_here(ray_cluster, tiny_musicgen, tmp_path):
    import torch

    descriptions = tmp_path / "desc"
    descriptions.mkdir()
    for name, text in (("a", "calm piano, slow"), ("b", "fast drums and bass"), ("c", "dark ambient drone")):
        (descriptions / f"{name}.txt").write_text(text, encoding="utf-8")
    settings = dict(duration=0.4, seed=5, offline=True, music_options={"precision": "fp32", "batch_size": 1})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on the worker (Ray gives a 1-CPU worker one thread)
    try:
        local = manga2music.compose([descriptions], tmp_path / "local", model=str(tiny_musicgen),
                                    config=RunConfig(**settings))
    finally:
        torch.set_num_threads(threads)
    spread = manga2music.compose([descriptions], tmp_path / "ray", model=str(tiny_musicgen),
                                 config=ray_cfg(**settings))
    assert statuses(spread) == statuses(local) == {"a": "ok", "b": "ok", "c": "ok"}
    assert_same_outputs(tmp_path / "local", tmp_path / "ray")
    record = json.loads((tmp_path / "ray" / "b.json").read_text("utf-8"))
    assert record["compose"]["model"] == str(tiny_musicgen) and record["compose"]["seed"] == 5

    # a model that fails on the worker (its weights do not fit its config; a weights file cut short is one line
    # before any work, here and on Ray) fails the same sections with the same lines: the call for all three fails,
    # then a and b alone, the same way, and c is failed untried
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_musicgen, broken)
    config = json.loads((broken / "config.json").read_text("utf-8"))
    config["decoder"]["ffn_dim"] *= 2
    (broken / "config.json").write_text(json.dumps(config), "utf-8")
    bad_local = manga2music.compose([descriptions], tmp_path / "bad-local", model=str(broken),
                                    config=RunConfig(**settings))
    bad_ray = manga2music.compose([descriptions], tmp_path / "bad-ray", model=str(broken), config=ray_cfg(**settings))
    assert statuses(bad_ray) == statuses(bad_local) == {"a": "failed", "b": "failed", "c": "failed"}
    messages = [e["message"] for e in bad_ray["sections"]]
    assert messages == [e["message"] for e in bad_local["sections"]], messages
    assert all("do not fit its config.json" in m for m in messages), messages
    assert messages[2].startswith(f"not composed: {broken} failed the same way on a and b alone"), messages


@pytest.mark.extended
def test_a_vision_model_on_a_worker_sees_the_same_pages_and_writes_the_same_descriptions(ray_cluster, tmp_path):
    """A tiny random LLaVA writes gibberish that changes with every pixel and token it gets: the pages travel as
    their file bytes and are decoded on the worker, and the descriptions still match this process's, byte for byte."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.tiny_vlms import build_llava_interleave

    model = str(build_llava_interleave(tmp_path / "tiny-llava"))
    settings = dict(seed=0, offline=True, vision_options={"single_stage": True, "max_new_tokens": 40})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on the worker
    try:
        local = manga2music.describe([SAMPLES], tmp_path / "local", model=model, config=RunConfig(**settings))
    finally:
        torch.set_num_threads(threads)
    spread = manga2music.describe([SAMPLES], tmp_path / "ray", model=model, config=ray_cfg(**settings))
    assert statuses(spread) == statuses(local) == {"action": "ok", "calm": "ok", "webtoon": "ok"}
    assert_same_outputs(tmp_path / "local", tmp_path / "ray")
    texts = {n: (tmp_path / "ray" / f"{n}.txt").read_bytes() for n in ("action", "calm", "webtoon")}
    assert len(set(texts.values())) == 3  # each section's pages gave the model something different


@pytest.mark.extended
def test_a_vision_model_on_a_worker_without_a_seed_records_the_one_that_repeats_its_words(ray_cluster, tmp_path):
    """Without --seed the driver draws each section's seed and sends it with the pages: the record names it, and
    the same pages read here with that seed give the worker's words byte for byte."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.tiny_vlms import build_llava_interleave

    model = str(build_llava_interleave(tmp_path / "tiny-llava"))
    settings = dict(offline=True, vision_options={"single_stage": True, "max_new_tokens": 40})
    spread = manga2music.describe([SAMPLES / "calm"], tmp_path / "ray", model=model, config=ray_cfg(**settings))
    assert statuses(spread) == {"calm": "ok"}
    seed = json.loads((tmp_path / "ray" / "calm.json").read_text())["describe"]["seed"]
    assert isinstance(seed, int)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on the worker
    try:
        local = manga2music.describe([SAMPLES / "calm"], tmp_path / "local", model=model,
                                     config=RunConfig(seed=seed, **settings))
    finally:
        torch.set_num_threads(threads)
    assert statuses(local) == {"calm": "ok"}
    assert (tmp_path / "local" / "calm.txt").read_bytes() == (tmp_path / "ray" / "calm.txt").read_bytes()


def test_the_command_joins_a_cluster_by_address_and_auto_is_decided_on_a_worker(ray_cluster, tmp_path):
    from tests.output_checks import cli

    out = tmp_path / "out"
    result = cli("run", "--ray", ray_cluster, SAMPLES, "-o", out, "--seed", "2", "--duration", "1", "--json",
                 "--top-k", "50", timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads(result.stdout)
    assert statuses(manifest) == {"action": "ok", "calm": "ok", "webtoon": "ok"}
    assert "vision model: builtin" in result.stderr and "decided on a Ray worker" in result.stderr
    # a flag of the model a script expects, where auto picked another on a worker: said, as here (it was refused:
    # "--top-k does not apply to builtin", by the driver, then by the worker)
    assert "--top-k: not used by builtin, which auto picked on this machine" in result.stderr, result.stderr[-2000:]
    assert (out / "calm.wav").exists() and (out / "index.html").exists()


@pytest.mark.extended
def test_a_worker_killed_under_the_command_leaves_its_json_whole(ray_cluster, tmp_path):
    """Ray writes "(raylet) A worker died or was killed ..." to the driver's stdout: `--json` output then started
    with that line (and its colour codes) and was no JSON at all."""
    import subprocess

    out = tmp_path / "out"
    with killing_the_first_composer() as killed:
        result = subprocess.run([sys.executable, "-m", "manga2music", "run", str(SAMPLES), "-o", str(out), "--seed",
                                 "3", "--duration", "90", "--vision-model", "builtin", "--music-model", "builtin",
                                 "--json", "--ray", ray_cluster], capture_output=True, text=True, timeout=300)
    assert killed, "no worker was seen composing"
    assert result.returncode == 0, result.stderr[-2000:]
    assert statuses(json.loads(result.stdout)) == {"action": "ok", "calm": "ok", "webtoon": "ok"}, result.stdout[:300]


def test_a_busy_output_folder_is_said_before_any_worker_starts(ray_cluster, tmp_path):
    """The output folder's lock was taken after the workers had started and loaded their models: the second of two
    runs into one folder loaded them (minutes for real models on GPUs), then exited 2; on a full cluster it waited
    silently for the first run's CPUs, as if --wait was given."""
    from manga2music.errors import OutputBusyError

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess_holding_the_lock(out)
    try:
        said: list[str] = []
        with pytest.raises(OutputBusyError):
            manga2music.run([SAMPLES / "calm"], out, vision_model="builtin", music_model="builtin",
                            config=ray_cfg(duration=1.0), callbacks=Callbacks(log=lambda level, m: said.append(m)))
        assert not [m for m in said if m.startswith("Ray:") and "worker" in m], said  # no worker was started
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("command", ["run", "describe", "compose"])
def test_a_busy_output_folder_is_said_before_ray_is_joined_or_started(tmp_path, command):
    """A busy folder was said only once the cluster was joined: with `--ray` and no cluster, a local Ray started
    first (about 14 s here), and a cluster that does not answer was said instead of the busy folder."""
    from manga2music.distributed import RayConfig
    from manga2music.errors import OutputBusyError

    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "calm.txt").write_text("soft piano\n", encoding="utf-8")
    holder = subprocess_holding_the_lock(out)
    nowhere = RunConfig(ray=RayConfig(address="127.0.0.1:1"), duration=1.0)  # nothing answers there
    try:
        with pytest.raises(OutputBusyError, match="is being written by another manga2music run"):
            if command == "compose":
                manga2music.compose([tmp_path / "calm.txt"], out, model="builtin", config=nowhere)
            elif command == "describe":
                manga2music.describe([SAMPLES / "calm"], out, model="builtin", config=nowhere)
            else:
                manga2music.run([SAMPLES / "calm"], out, vision_model="builtin", music_model="builtin",
                                config=nowhere)
    finally:
        holder.kill()
        holder.wait()


def subprocess_holding_the_lock(out: Path):
    """Another process holding ``out``'s lock (as a run does) until killed; returns once it holds it."""
    import subprocess

    code = ("import sys, time; from pathlib import Path; from manga2music.lock import output_lock\n"
            "with output_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_consent_asked_in_the_terminal_does_not_go_to_the_workers(ray_cluster, tmp_path):
    """In a terminal, `run --ray` crashed before any work ("Could not serialize the argument RunConfig(...
    auto_download=<function let_auto_ask.<locals>.<lambda>>": cannot pickle '_thread.RLock'): the question that
    asks the user before a download holds the display, and went to the workers with the settings."""
    display_lock = threading.RLock()

    def ask(plan, lock=display_lock) -> bool:  # as cli.consent.let_auto_ask sets it: a function holding the display
        return False

    manifest = manga2music.run([SAMPLES / "calm"], tmp_path / "out", config=ray_cfg(duration=1.0, auto_download=ask))
    assert statuses(manifest) == {"calm": "ok"}


def test_ray_auto_with_no_cluster_running_says_what_to_do_in_our_words(tmp_path, monkeypatch):
    """`--ray auto` with no cluster up passed on Ray's "Please specify the one to connect to by setting `--address`
    flag or `RAY_ADDRESS`": manga2music has no --address flag.  (Ray's own words, as its `ray.init("auto")` raises
    them: the real command below can only be run where no other Ray runs on the machine, as `auto` finds any.)"""
    from manga2music.distributed.cluster import cannot_join
    from manga2music.options import settings_named_as_flags

    rays_words = ConnectionError("Could not find any running Ray instance. Please specify the one to connect to by "
                                 "setting `--address` flag or `RAY_ADDRESS` environment variable.")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with settings_named_as_flags():  # as the command line says it
        said = cannot_join("auto", rays_words)
    assert said.message == "no Ray cluster is running on this machine for --ray auto to join"
    assert "ray start --head" in said.hint and "--ray alone" in said.hint and "--address` flag" not in str(said)
    said = cannot_join("auto", rays_words)  # a program calling the API: in its own words, no flag it never typed
    assert said.message == 'no Ray cluster is running on this machine for RayConfig(address="auto") to join'
    assert "RayConfig() with no address" in said.hint and "--ray" not in str(said)
    monkeypatch.setenv("RAY_ADDRESS", "auto")  # `--ray` alone, where the environment says auto
    said = cannot_join(None, rays_words)
    assert said.message == "no Ray cluster is running on this machine for RAY_ADDRESS=auto to join"
    assert "unset RAY_ADDRESS" in said.hint and "--ray alone" not in said.hint


def test_ray_auto_with_no_cluster_running_is_one_line_from_the_command(tmp_path):
    """The same, from the real command: only where no Ray runs on this machine (another test's, under xdist)."""
    from ray._private.services import find_gcs_addresses

    from tests.output_checks import cli, cli_env

    if find_gcs_addresses():
        pytest.skip("a Ray cluster runs on this machine (another test's): `--ray auto` would join it")
    env = cli_env(RAY_TMPDIR=str(tmp_path / "ray"))
    env.pop("RAY_ADDRESS", None)
    result = cli("run", SAMPLES / "calm", "-o", tmp_path / "out", "--ray", "auto", env=env, timeout=120)
    if result.returncode == 0 and "Ray: 1 vision worker" in result.stderr:
        pytest.skip("a Ray cluster started on this machine meanwhile (another test's): `--ray auto` joined it")
    assert result.returncode == 1, result.stderr[-1500:]
    assert "no Ray cluster is running on this machine for --ray auto to join" in result.stderr, result.stderr[-1500:]
    assert not (tmp_path / "out").exists()


def test_an_address_nothing_answers_at_is_one_line_at_once(tmp_path):
    """`--ray 127.0.0.1:1` retried for ever ("Failed to connect to GCS ... within 5 seconds" every 5 s, still at it
    after 4 minutes), and Ctrl-C took 11 s to work."""
    import socket

    from tests.output_checks import cli

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = cli("run", SAMPLES / "calm", "-o", tmp_path / "out", "--ray", f"127.0.0.1:{port}", timeout=120)
    assert result.returncode == 1 and time.monotonic() - started < 30, result.stderr[-1500:]
    assert f"cannot join the Ray cluster at 127.0.0.1:{port}" in result.stderr and "nothing answers" in result.stderr



def test_an_address_where_something_else_answers_is_one_line_at_once(tmp_path):
    """`--ray 127.0.0.1:8299` where a web server answers (a mistyped port, the dashboard's without http://): Ray
    printed "Failed to connect to GCS" and "Timed out" lines for as long as it was left (killed after 500 s)."""
    import http.server

    from tests.output_checks import cli

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{server.server_address[1]}"
        started = time.monotonic()
        result = cli("run", SAMPLES / "calm", "-o", tmp_path / "out", "--ray", address, timeout=120)
    finally:
        server.shutdown()
    assert result.returncode == 1 and time.monotonic() - started < 30, result.stderr[-1500:]
    assert f"cannot join the Ray cluster at {address}: something answers there, but not a Ray head" in result.stderr
    assert "GCS" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.extended
def test_sigterm_while_ray_starts_or_while_workers_run_stops_the_run_as_sigterm(ray_cluster, tmp_path):
    """`timeout -s TERM` of `run --ray` said "Interrupted." and exited 130 (as Ctrl-C) while the workers ran, and
    exited 15 without a word while Ray was starting (its own handler's exit), its processes left behind."""
    import subprocess

    from tests.output_checks import cli_env

    for k in range(1, 5):
        shutil.copytree(SAMPLES / "calm", tmp_path / "in" / f"s{k}")
    for k, (where, ready) in enumerate(((ray_cluster, "ray::ModelWorker.compose"), ("local", "ray::ModelWorker.describe"),
                                         ("local", None))):
        out = tmp_path / f"out-{k}"
        proc = subprocess.Popen([sys.executable, "-m", "manga2music", "run", str(tmp_path / "in"), "-o", str(out),
                                 "--vision-model", "builtin", "--music-model", "builtin", "--duration", "600",
                                 "--seed", "1", "--ray", where], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, env=cli_env())
        if ready:
            deadline = time.monotonic() + 120
            while not ray_workers(ready):
                assert proc.poll() is None and time.monotonic() < deadline, "no worker was seen composing"
                time.sleep(0.02)
        else:  # while `ray.init` starts a Ray of its own (seconds)
            assert proc.stderr.readline().startswith("Ray: joining")
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        returned, err = proc.wait(timeout=60), proc.stderr.read()
        assert returned == 143 and "Stopped (SIGTERM)." in err, (k, where, returned, err[-2000:])


@pytest.mark.extended
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_run_stopped_while_its_ray_workers_start_still_prints_its_manifest(ray_cluster, tmp_path, sig, code):
    """`run --ray ADDR --json` stopped while its workers started printed nothing on stdout (a script's json.loads
    failed) and wrote no manifest, where a local run stopped as early prints one, as the README promises."""
    import subprocess

    from tests.output_checks import cli_env

    shutil.copytree(SAMPLES / "calm", tmp_path / "in" / "s1")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "manga2music", "run", str(tmp_path / "in"), "-o", str(out),
                             "--vision-model", "builtin", "--music-model", "builtin", "--duration", "2", "--seed", "1",
                             "--ray", ray_cluster, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env())
    said = []
    while not (said and said[-1].startswith("Ray: ") and "worker" in said[-1]):  # the workers are starting
        line = proc.stderr.readline()
        assert line, "".join(said)
        said.append(line)
    proc.send_signal(sig)
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == code, (proc.returncode, "".join(said) + err)
    manifest = json.loads(stdout)
    assert manifest["command"] == "run" and (out / "manifest.json").is_file()


@pytest.mark.extended
def test_a_cluster_that_goes_away_mid_run_is_one_line_and_the_manifest_of_what_was_finished(tmp_path):
    """The head stopped while its workers composed: the command started fresh workers on the dead cluster, a line
    each, waited, and 60 s later Ray's core ended the process: no line from the command, no `--json` manifest."""
    import socket
    import subprocess
    import tempfile

    from tests.output_checks import cli_env

    pytest.importorskip("ray")
    env = {**cli_env(), "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's sockets live there
    head = subprocess.Popen(["ray", "start", "--head", "--port", str(port), "--num-cpus", "2", "--block",
                             "--include-dashboard=false", "--temp-dir", temp], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # its processes: one group to kill
    try:
        for k in range(1, 7):
            shutil.copytree(SAMPLES / "calm", tmp_path / "in" / f"s{k}")
        deadline = time.monotonic() + 60
        while True:  # the head takes seconds to start
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < deadline, "the Ray head did not start"
                time.sleep(0.2)
        out = tmp_path / "out"
        run = subprocess.Popen([sys.executable, "-m", "manga2music", "run", str(tmp_path / "in"), "-o", str(out),
                                "--vision-model", "builtin", "--music-model", "builtin", "--duration", "900",
                                "--seed", "1", "--json", "--ray", f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 120
        while not list(out.glob("*.txt")):  # a section described: the workers are at work
            assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()[-2000:]
            time.sleep(0.1)
        os.killpg(head.pid, signal.SIGKILL)
        gone = time.monotonic()
        stdout, err = run.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
    assert run.returncode == 1 and time.monotonic() - gone < 45, err[-3000:]  # before Ray's core ends it (60 s)
    assert "Error: the Ray cluster went away" in err and "Traceback" not in err, err[-3000:]
    manifest = json.loads(stdout)  # what was finished, as the manifest on the disk says
    assert manifest == json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert all(e["status"] == "ok" for e in manifest["sections"])
    assert record_mismatches(out) == [] and temp_files(out) == []


# --- score: chapters on driver threads, their model calls on the workers -------------------------------------------

def test_a_score_on_ray_writes_what_a_local_score_writes_and_a_rerun_skips_everything(ray_cluster, tmp_path):
    """Two chapters of several scenes and a broken one: the same cue sheets, cues, scores, loops and read-along pages
    as a local score, and every page and cue went through a worker; a rerun sends nothing."""
    from tests.chapters import make_chapter

    make_chapter(tmp_path / "in" / "ch1", [("calm", 3), ("action", 4), ("calm", 2)], seed=1)
    make_chapter(tmp_path / "in" / "ch2", [("action", 3), ("calm", 3)], seed=2)
    (tmp_path / "in" / "broken").mkdir()
    (tmp_path / "in" / "broken" / "001.png").write_bytes(b"not an image")
    settings = dict(seed=4, reading_speed=4.0)
    local = manga2music.score([tmp_path / "in"], tmp_path / "local", vision_model="builtin", music_model="builtin",
                              config=RunConfig(**settings))
    seen = Seen()
    spread = manga2music.score([tmp_path / "in"], tmp_path / "ray", vision_model="builtin", music_model="builtin",
                               config=ray_cfg(**settings), callbacks=seen.callbacks())
    assert statuses(spread) == statuses(local) == {"broken": "failed", "ch1": "ok", "ch2": "ok"}
    assert [e["message"] for e in spread["sections"]] == [e["message"] for e in local["sections"]]
    assert_same_outputs(tmp_path / "local", tmp_path / "ray")
    sheet = json.loads((tmp_path / "ray" / "ch1.cues.json").read_text("utf-8"))
    assert len(sheet["scenes"]) == 3  # the fixture has scenes to find, cue by cue
    sent = seen.work_sent()
    assert any(label.startswith("describing 9 pages for ch1") for label in sent), sent
    assert any(label.startswith("composing 3 tracks for ch1") for label in sent), sent
    assert temp_files(tmp_path / "ray") == [] and record_mismatches(tmp_path / "ray") == []

    before = digests(tmp_path / "ray")
    again = Seen()
    rerun = manga2music.score([tmp_path / "in"], tmp_path / "ray", vision_model="builtin", music_model="builtin",
                              config=ray_cfg(**settings), callbacks=again.callbacks())
    assert statuses(rerun) == {"broken": "failed", "ch1": "skipped", "ch2": "skipped"}
    assert again.work_sent() == []
    assert digests(tmp_path / "ray") == before


@pytest.mark.extended
def test_a_worker_killed_while_scoring_is_replaced_and_the_score_is_the_same(ray_cluster, tmp_path):
    from tests.chapters import make_chapter

    make_chapter(tmp_path / "in" / "ch1", [("calm", 2), ("action", 3)], seed=3)
    settings = dict(seed=6)  # the cues of ~20 s of reading each: time to kill the composer
    manga2music.score([tmp_path / "in"], tmp_path / "local", vision_model="builtin", music_model="builtin",
                      config=RunConfig(**settings))
    seen = Seen()
    with killing_the_first_composer() as killed:
        spread = manga2music.score([tmp_path / "in"], tmp_path / "ray", vision_model="builtin",
                                   music_model="builtin", config=ray_cfg(**settings), callbacks=seen.callbacks())
    assert killed, "no worker was seen composing"
    died = [w for w in seen.warnings if "died while composing" in w]
    assert len(died) == 1 and "sending it to a fresh worker (try 2 of 3)" in died[0], seen.warnings
    assert " of ch1 (" in died[0], died  # which chapter is tried again (several are in flight)
    assert statuses(spread) == {"ch1": "ok"}
    assert_same_outputs(tmp_path / "local", tmp_path / "ray")


@pytest.mark.parametrize("stop, code, said", [(signal.SIGINT, 130, "Interrupted."),
                                              pytest.param(signal.SIGTERM, 143, "Stopped (SIGTERM).",
                                                           marks=pytest.mark.extended)])
def test_ctrl_c_stops_a_score_on_ray_at_once_and_a_plain_rerun_finishes_it(ray_cluster, tmp_path, stop, code, said):
    """SIGINT while a worker composes: exit 130 within seconds (the chapters waiting never start, the workers
    stop), nothing half-written, no worker left holding a model; a plain rerun finishes every chapter.  SIGTERM
    (systemd, Kubernetes, `timeout`) exited 15 or 1 without a word: Ray's own handler had replaced ours."""
    import subprocess

    from tests.chapters import make_chapter

    for k in range(1, 5):  # four chapters of four pages: composing each takes seconds, so Ctrl-C comes mid-way
        make_chapter(tmp_path / "in" / f"ch{k}", [("calm", 2), ("action", 2)], seed=k)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "manga2music", "score", str(tmp_path / "in"), "-o", str(out),
                             "--vision-model", "builtin", "--music-model", "builtin", "--reading-speed", "1.0",
                             "--seed", "1", "--ray", ray_cluster], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)

    deadline = time.monotonic() + 120
    while not ray_workers("ray::ModelWorker.compose"):
        assert proc.poll() is None and time.monotonic() < deadline, "no worker was seen composing"
        time.sleep(0.02)
    proc.send_signal(stop)
    stopped = time.monotonic()
    returned, err = proc.wait(timeout=60), proc.stderr.read()
    assert returned == code and said in err, err[-2000:]
    # the chapters it stopped in are left out, as a local run leaves them (they were said and listed as "failed:
    # the run was stopped", a failure the page showed until a rerun)
    assert "the run was stopped" not in err
    listed = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"] if \
        (out / "manifest.json").exists() else []
    assert all(e["status"] != "failed" for e in listed), listed
    stopping_took = time.monotonic() - stopped
    assert len(list(out.glob("*.score.wav"))) < 4  # it stopped, rather than finishing first
    time.sleep(2)  # Ray takes a moment to reap the actors of a driver that left
    assert not ray_workers("ray::ModelWorker")
    assert record_mismatches(out) == []

    started = time.monotonic()
    rerun = manga2music.score([tmp_path / "in"], out, vision_model="builtin", music_model="builtin",
                              config=ray_cfg(seed=1, reading_speed=1.0))
    assert set(statuses(rerun).values()) <= {"ok", "skipped"} and len(rerun["sections"]) == 4
    assert stopping_took < (time.monotonic() - started) / 2  # far sooner than doing what was left
    assert temp_files(out) == [] and record_mismatches(out) == []


@pytest.mark.extended
def test_a_chat_model_and_musicgen_bridges_on_workers_score_as_here(ray_cluster, tmp_path, openai_server):  # noqa: F811
    """The chat path (per-page entries, direction, a description per scene: chat turns on a vision worker) and
    MusicGen carrying each cue on into the next scene (the cue's audio travels to the music worker): the same
    cue sheet and the same audio, sample for sample, as a local score."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.chapters import make_chapter, queue_chat_score
    from tests.tiny_musicgen import build_tiny_musicgen

    model = str(build_tiny_musicgen(tmp_path / "model", attentive=True))
    make_chapter(tmp_path / "in" / "ch", [("calm", 2), ("action", 2)], seed=9)
    for _ in range(2):  # the local score, then the one on Ray
        queue_chat_score(openai_server, 2, 2)
    settings = dict(seed=1, offline=False, reading_speed=6.0, transitions="continue", normalize=False,
                    vision_options={"base_url": openai_server.url},
                    music_options={"precision": "fp32", "batch_size": 1})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on the worker
    try:
        local = manga2music.score([tmp_path / "in"], tmp_path / "local", vision_model="llava:13b", music_model=model,
                                  config=RunConfig(**settings))
    finally:
        torch.set_num_threads(threads)
    seen = Seen()
    spread = manga2music.score([tmp_path / "in"], tmp_path / "ray", vision_model="llava:13b", music_model=model,
                               config=ray_cfg(**settings), callbacks=seen.callbacks())
    assert statuses(spread) == statuses(local) == {"ch": "ok"}, (spread, local)
    assert_same_outputs(tmp_path / "local", tmp_path / "ray")
    sheet = json.loads((tmp_path / "ray" / "ch.cues.json").read_text("utf-8"))
    assert [s["transition"] for s in sheet["scenes"]] == ["continuation", "end"]
    assert sheet["scenes"][1]["description"].startswith("Pounding taiko")
    assert [len(r.images) for r in openai_server.requests[4:]] == [4, 0, 0, 0]  # the Ray score's turns
    assert any(label.startswith("asking about 4 pages") for label in seen.work_sent())


def test_ray_local_does_not_print_rays_token_notice(tmp_path):
    """Every `--ray local` run printed Ray's "Token authentication is enabled for this Ray cluster. Set
    RAY_AUTH_MODE=disabled to opt out ..." (with its time stamp) above the run's own lines: a notice of Ray's safe
    default that asks nothing of the user."""
    import subprocess

    from tests.output_checks import cli_env

    pytest.importorskip("ray")
    env = {k: v for k, v in cli_env().items() if k != "RAY_AUTH_MODE"}  # as a new shell has it (a test's Ray sets it)
    code = ("import ray\nfrom manga2music.distributed import cluster\n"
            "print('started here:', cluster.connect('local'))\nray.shutdown()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180,
                          cwd=tmp_path)
    assert done.returncode == 0 and "started here: True" in done.stdout, done.stderr[-2000:]
    assert "Token authentication is enabled" not in done.stderr, done.stderr[-2000:]


def test_ray_flags_are_checked_before_anything_runs(tmp_path):
    from typer.testing import CliRunner

    from manga2music.cli.app import app

    runner = CliRunner()
    out = tmp_path / "out"
    # --ray before the paths takes no address from them; a bad value is one line, exit 2, nothing written
    result = runner.invoke(app, ["run", "--ray", str(SAMPLES), "--ray-workers", "0", "-o", str(out)])
    assert result.exit_code == 2 and "--ray-workers must be between 1 and 10000" in result.output
    result = runner.invoke(app, ["run", str(SAMPLES), "--ray-workers", "2", "-o", str(out)])
    assert result.exit_code == 2 and "--ray-workers needs --ray" in result.output
    result = runner.invoke(app, ["run", str(SAMPLES), "--ray=not an address", "-o", str(out)])
    assert result.exit_code == 2 and "is not a Ray address" in result.output
    # a URL after --ray is the address meant, not a path: "http:/x:1: no such file or folder" misled
    result = runner.invoke(app, ["run", str(SAMPLES), "--ray", "http://head:8265", "-o", str(out)])
    assert result.exit_code == 2 and "--ray 'http://head:8265' is not a Ray address" in result.output
    assert "no such file" not in result.output and "the dashboard" in result.output
    # a head's IP or name without its port is the address meant, not a path: "127.0.0.1: no such file or folder"
    for host in ("127.0.0.1", "localhost", "[::1]", "::1", "head.example.com"):
        result = runner.invoke(app, ["run", str(SAMPLES), "--ray", host, "-o", str(out)])
        assert result.exit_code == 2 and f"--ray '{host}' is not a Ray address" in result.output, result.output
        with_port = f"[{host}]" if host == "::1" else host
        assert f"add the port: {with_port}:6379" in result.output and "no such file" not in result.output
    result = runner.invoke(app, ["run", str(SAMPLES), "--ray", "missing.cbz", "-o", str(out)])  # a path, missing
    assert result.exit_code == 2 and "no such file" in result.output, result.output
    # the same address in RAY_ADDRESS, for a bare --ray: Ray's own message, cut at "To fix this, either:"
    result = runner.invoke(app, ["run", str(SAMPLES), "--ray", "-o", str(out)],
                           env={"RAY_ADDRESS": "http://127.0.0.1:8265"})
    assert result.exit_code == 2 and "RAY_ADDRESS=http://127.0.0.1:8265 is not a Ray address" in result.output
    assert "the dashboard" in result.output and "either:" not in result.output
    assert not out.exists()


def test_without_ray_installed_ray_says_how_to_install_it_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from manga2music.cli.app import app

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    result = CliRunner().invoke(app, ["run", str(SAMPLES), "--ray", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert 'pip install "manga2music[ray]"' in lines[0] and "Ray" in lines[0]
    assert not (tmp_path / "out").exists()


def _models(vision: str, music: str, **music_options):
    from manga2music.backends import Machine, build

    cfg = RunConfig(music_options=music_options)
    machine = Machine(offline=True)
    return {"vision": build(vision, "vision", cfg, machine, preflight=False),
            "music": build(music, "music", cfg, machine, preflight=False)}


def test_workers_per_model_follow_the_clusters_gpus_and_cpus():
    from manga2music.distributed import RayConfig
    from manga2music.distributed.cluster import plan
    from manga2music.errors import InputError

    def shape(placements):
        return {side: (p.count, p.num_cpus, p.num_gpus) for side, p in placements.items()}

    gpu_models = _models("llava-0.5b", "musicgen-small")
    # 8 GPUs shared by two GPU models: 4 copies each, a whole GPU per copy
    assert shape(plan(gpu_models, RayConfig(), 32, 8)) == {"vision": (4, 1.0, 1.0), "music": (4, 1.0, 1.0)}
    # half a GPU per copy: two copies share each GPU
    assert shape(plan(gpu_models, RayConfig(gpus_per_model=0.5), 32, 8)) == {"vision": (8, 1.0, 0.5),
                                                                             "music": (8, 1.0, 0.5)}
    # GPUs to spare but only 4 CPUs to drive them: 2 copies each
    assert shape(plan(gpu_models, RayConfig(), 4, 8)) == {"vision": (2, 1.0, 1.0), "music": (2, 1.0, 1.0)}
    # the builtin describer never takes a GPU: it gets CPUs, MusicGen gets every GPU
    mixed = _models("builtin", "musicgen-small")
    assert shape(plan(mixed, RayConfig(), 16, 8)) == {"vision": (8, 1.0, 0.0), "music": (8, 1.0, 1.0)}
    # --device cpu keeps MusicGen off the GPUs
    on_cpu = _models("builtin", "musicgen-small", device="cpu")
    assert shape(plan(on_cpu, RayConfig(), 4, 8)) == {"vision": (2, 1.0, 0.0), "music": (2, 1.0, 0.0)}
    # no GPU at all: CPUs split between the two models
    builtin = _models("builtin", "builtin")
    assert shape(plan(builtin, RayConfig(), 2, 0)) == {"vision": (1, 1.0, 0.0), "music": (1, 1.0, 0.0)}
    with pytest.raises(InputError, match="has 2 CPUs and 0 GPUs.*need 4 CPUs"):
        plan(builtin, RayConfig(workers=2), 2, 0)
    with pytest.raises(InputError, match="need 2 CPUs and 6 GPUs"):
        plan(gpu_models, RayConfig(workers=1, gpus_per_model=3), 32, 4)


def test_a_workers_message_names_settings_as_the_command_line_or_the_program_does(ray_cluster, tmp_path,
                                                                                  openai_server):  # noqa: F811
    """On Ray, the command line's failure line said "send fewer pages per request (chunk_size=2)": the worker made
    it in a program's words, as the command line's context did not travel to its process."""
    from manga2music.options import settings_named_as_flags
    from tests.openai_server import Fail

    settings = dict(offline=False, duration=1.0, vision_options={"base_url": openai_server.url, "max_retries": 0})
    said = {}
    for how in ("command line", "program"):
        openai_server.queue(*[Fail(413, "Request Entity Too Large")] * 8)  # fewer pages too: the section fails
        with settings_named_as_flags() if how == "command line" else contextlib.nullcontext():
            made = manga2music.describe([SAMPLES / "calm"], tmp_path / how.replace(" ", "-"), model="llava:13b",
                                        config=ray_cfg(**settings))
        said[how] = made["sections"][0]["message"]
    assert "--chunk-size 2" in said["command line"] and "--detail low" in said["command line"], said
    assert "chunk_size=2" in said["program"] and "--" not in said["program"], said
