"""The first run on an online machine: `auto` never starts a multi-GB download unasked (issue #21).

The real command runs in its own process, in a real terminal (a pty) or with pipes, against a
fake Hugging Face Hub on 127.0.0.1 (tests/test_cache.py); the network guard (tests/netguard)
refuses and logs any other host.  The Hub serves a tiny random MusicGen under the real
``facebook/musicgen-small`` id, so a "yes" really downloads through transformers and composes.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from output_checks import cli_env
from test_cache import fake_hub, local_http
from test_tiers import machine

from manga2music import downloads, settings, tiers
from manga2music.hardware import GB, available_ram_bytes
from manga2music.registry import find_spec

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "samples"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
QUESTION = "[y/N]"


@pytest.fixture(autouse=True)
def roomy_disk(monkeypatch):
    """Every disk has 40 GB free in this test's process too, as in the commands it starts (see ``online``)."""
    import shutil

    real = shutil.disk_usage

    def disk_usage(path):
        usage = real(path)
        free = 40 * 1024**3
        return type(usage)(max(usage.total, free), max(usage.total, free) - free, free)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)


def _room_for_the_small_models() -> None:
    """auto only picks llava-0.5b + musicgen-small where they fit (3.5 / 3 GB plus a 2.4 GB margin here)."""
    if available_ram_bytes() / GB < 6.5:
        pytest.skip("less than 6.5 GB of RAM available: auto would pick builtin on its own")


@pytest.fixture(scope="module")
def tiny_musicgen_files(tmp_path_factory) -> dict[str, bytes]:
    from tiny_musicgen import build_tiny_musicgen

    folder = build_tiny_musicgen(tmp_path_factory.mktemp("hubfiles") / "musicgen-small")
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def online(tmp_path):
    """(environment for the real command, its netguard log): online, HF_HUB_OFFLINE unset, loopback only.

    Its disks have 40 GB free whatever the test machine has (tests/netguard): the CI machine once had 1.7 GB,
    and `auto` rightly offered no download there.
    """
    log = tmp_path / "netguard.log"
    env = cli_env(NETGUARD_LOG=str(log), COLUMNS="200", HF_HUB_DISABLE_PROGRESS_BARS="1", FAKE_DISK_FREE_GB="40")
    env.pop("HF_HUB_OFFLINE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE / "netguard"), env["PYTHONPATH"]])
    return env, log


def downloads_seen(seen: list[str]) -> list[str]:
    """Requests for a repo's files or info (anything but the one-request reachability probe)."""
    return [s for s in seen if s != "HEAD /api/models?limit=1"]


def in_terminal(args, env: dict, cwd: Path, answer: str | None = None, timeout: float = 180) -> tuple[int, str]:
    """Run the real command with stdin, stdout and stderr on a pseudo-terminal; type ``answer`` at the question."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "manga2music", *map(str, args)], stdin=slave, stdout=slave,
                            stderr=slave, env=env, cwd=cwd, close_fds=True)
    os.close(slave)
    out, answered, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the command closed the terminal
                    break
                if not data:
                    break
                out += data
                if answer is not None and not answered and QUESTION.encode() in out:
                    os.write(master, answer.encode() + b"\n")
                    answered = True
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(f"the command did not finish in {timeout} s (waiting for an answer?):\n"
                        + ANSI.sub("", out.decode(errors="replace")))
        return proc.wait(timeout=30), ANSI.sub("", out.decode("utf-8", "replace"))
    finally:
        os.close(master)


def with_pipes(args, env: dict, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manga2music", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)


def remembered() -> dict:
    path = Path(os.environ["MANGA2MUSIC_CONFIG_DIR"]) / "settings.json"
    return json.loads(path.read_text()) if path.exists() else {}


# --- the real command, online ---------------------------------------------------------------------


def test_without_a_terminal_nothing_is_downloaded_and_one_line_says_how(online, tmp_path):
    _room_for_the_small_models()
    env, log = online
    with local_http(fake_hub("facebook/musicgen-small", {})) as (url, seen):
        result = with_pipes(["run", SAMPLES, "-o", tmp_path / "out", "--duration", "1"],
                            {**env, "HF_ENDPOINT": url}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [ln.split("\t")[:2] for ln in result.stdout.splitlines()] == [
        ["action", "ok"], ["calm", "ok"], ["webtoon", "ok"]]
    record = json.loads((tmp_path / "out" / "calm.json").read_text())
    assert record["describe"]["model"] == "builtin" and record["compose"]["model"] == "builtin"
    how = [ln for ln in result.stderr.splitlines() if "--download" in ln]
    assert len(how) == 1, result.stderr
    assert "llava-0.5b (1.8 GB)" in how[0] and "musicgen-small (2.4 GB)" in how[0] and "no terminal" in how[0]
    assert "MANGA2MUSIC_AUTO_DOWNLOAD=1" in how[0] and "manga2music models pull llava-0.5b musicgen-small" in how[0]
    assert downloads_seen(seen) == [] and not log.exists()
    assert remembered() == {}  # nobody answered, nothing remembered


def test_in_a_terminal_no_is_asked_once_and_remembered(online, tmp_path):
    _room_for_the_small_models()
    env, log = online
    with local_http(fake_hub("facebook/musicgen-small", {})) as (url, seen):
        env = {**env, "HF_ENDPOINT": url}
        code, text = in_terminal(["run", SAMPLES, "-o", tmp_path / "out", "--duration", "1"], env, tmp_path, "n")
        assert code == 0, text
        question = text[:text.index(QUESTION)]
        for fact in ("llava-0.5b", "1.8 GB", "musicgen-small", "2.4 GB", "4.2 GB in all",
                     os.environ["MANGA2MUSIC_CACHE"], "s a page to describe", "for each 1 s track",
                     "If you say no: builtin", "settings.json"):
            assert fact in " ".join(question.split()), (fact, question)
        assert remembered() == {"auto_download": False}
        assert (tmp_path / "out" / "calm.wav").exists()
        again, text = in_terminal(["run", SAMPLES, "-o", tmp_path / "again", "--duration", "1"], env, tmp_path)
    assert again == 0 and QUESTION not in text, text
    assert "you said no before" in text and "--download" in text
    assert json.loads((tmp_path / "again" / "calm.json").read_text())["compose"]["model"] == "builtin"
    assert downloads_seen(seen) == [] and not log.exists()


def test_in_a_terminal_yes_downloads_and_composes(online, tmp_path, tiny_musicgen_files):
    _room_for_the_small_models()
    env, log = online
    with local_http(fake_hub("facebook/musicgen-small", tiny_musicgen_files)) as (url, seen):
        code, text = in_terminal(["compose", "--text", "calm piano at 70 BPM", "-o", tmp_path / "out",
                                  "--duration", "1", "--seed", "1"], {**env, "HF_ENDPOINT": url}, tmp_path, "y")
    assert code == 0, text
    question = text[:text.index(QUESTION)]
    assert "musicgen-small" in question and "2.4 GB" in question and "llava" not in question  # compose: music only
    assert remembered() == {"auto_download": True}
    assert any(s.startswith("GET /facebook/musicgen-small/resolve/") and s.endswith("/model.safetensors")
               for s in seen), seen
    [track] = (tmp_path / "out").glob("*.wav")
    assert abs(sf.info(str(track)).duration - 1.0) < 0.05
    assert json.loads(track.with_suffix(".json").read_text())["compose"]["model"] == "musicgen-small"
    assert not log.exists()


def test_a_cached_model_is_loaded_without_a_request_to_the_hub(online, tmp_path, tiny_musicgen_files):
    """Once downloaded, a model was still looked up on the Hub file by file at every load (without --offline): with
    no network, huggingface_hub retried each file, and a 1-second track took 5.6 minutes and 86 lines of retries.
    A model whole in the cache is loaded from it alone."""
    env, _ = online
    args = ["compose", "--text", "rain", "--duration", "1", "--seed", "1", "--model", "musicgen-small"]
    with local_http(fake_hub("facebook/musicgen-small", tiny_musicgen_files)) as (url, seen):
        first = with_pipes([*args, "-o", tmp_path / "first"], {**env, "HF_ENDPOINT": url}, tmp_path)
        assert first.returncode == 0, first.stderr
        assert any(s.endswith("/model.safetensors") for s in seen)
        seen.clear()
        telemetry = {k: v for k, v in env.items() if k != "HF_HUB_DISABLE_TELEMETRY"}  # as a user runs it: the
        # suite turns it off, and with it huggingface_hub's look for AI agents (GET /api/agent-harnesses)
        again = with_pipes([*args, "-o", tmp_path / "again"], {**telemetry, "HF_ENDPOINT": url}, tmp_path)
    assert again.returncode == 0, again.stderr
    assert downloads_seen(seen) == [], seen  # nothing asked of the Hub: no file, no revision, no list of agents
    assert sf.read(tmp_path / "again" / "rain.wav")[0].tobytes() == sf.read(tmp_path / "first" / "rain.wav")[0].tobytes()


def test_a_named_model_is_not_asked_about_but_its_size_is_told_first(online, tmp_path, tiny_musicgen_files):
    env, log = online
    with local_http(fake_hub("facebook/musicgen-small", tiny_musicgen_files)) as (url, seen):
        code, text = in_terminal(["compose", "--text", "rain", "-o", tmp_path / "out", "--duration", "1",
                                  "--model", "musicgen-small"], {**env, "HF_ENDPOINT": url}, tmp_path)
    assert code == 0 and QUESTION not in text, text
    told = [ln for ln in text.splitlines() if "2.4 GB will be downloaded" in ln]
    assert len(told) == 1 and "musicgen-small is not cached" in told[0], text
    assert any(s.endswith("/model.safetensors") for s in seen) and remembered() == {}


def test_the_environment_allows_it_without_a_terminal(online, tmp_path, tiny_musicgen_files):
    _room_for_the_small_models()
    env, log = online
    with local_http(fake_hub("facebook/musicgen-small", tiny_musicgen_files)) as (url, seen):
        result = with_pipes(["compose", "--text", "rain", "-o", tmp_path / "out", "--duration", "1"],
                            {**env, "HF_ENDPOINT": url, "MANGA2MUSIC_AUTO_DOWNLOAD": "1"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "music model: musicgen-small" in result.stderr and "2.4 GB will be downloaded" in result.stderr
    assert any(s.endswith("/model.safetensors") for s in seen) and not log.exists()


def test_a_rerun_that_keeps_the_folders_model_does_not_download_it_unasked(online, tmp_path, tiny_musicgen_files):
    """After a run with musicgen-small and its weights removed from the cache, a plain rerun kept the output
    folder's model and downloaded its 2.4 GB again without asking, with --no-download and without a terminal: the
    kept model went where a model named on the command line goes.  It stops in one line now, naming how to allow
    it; a run allowed to download (MANGA2MUSIC_AUTO_DOWNLOAD=1) goes on with it."""
    env, _ = online
    out = tmp_path / "out"
    with local_http(fake_hub("facebook/musicgen-small", tiny_musicgen_files)) as (url, seen):
        hub = {**env, "HF_ENDPOINT": url}
        first = with_pipes(["compose", "--text", "rain", "-o", out, "--duration", "1", "--model", "musicgen-small"],
                           hub, tmp_path)
        assert first.returncode == 0, first.stderr
        removed = with_pipes(["models", "rm", "musicgen-small", "-y"], hub, tmp_path)
        assert removed.returncode == 0, removed.stderr
        seen.clear()
        unchanged = with_pipes(["compose", "--text", "rain", "-o", out, "--duration", "1", "--no-download"], hub,
                               tmp_path)  # nothing to make: the model is not needed, and its weights are no matter
        assert unchanged.returncode == 0 and "rain\tskipped" in unchanged.stdout, unchanged.stdout + unchanged.stderr
        assert "will be downloaded" not in unchanged.stderr, unchanged.stderr
        for refused in (["--no-download"], []):  # no terminal: nobody to ask
            kept = with_pipes(["compose", "--text", "storm", "-o", out, "--duration", "1", *refused], hub, tmp_path)
            assert kept.returncode != 0 and "Traceback" not in kept.stderr, kept.stderr
            assert "musicgen-small" in kept.stderr and "not downloaded" in kept.stderr, kept.stderr
            assert "--download" in kept.stderr and "models pull musicgen-small" in kept.stderr, kept.stderr
        assert not any(s.endswith("/model.safetensors") for s in seen), seen
        assert not (out / "storm.wav").exists()
        allowed = with_pipes(["compose", "--text", "storm", "-o", out, "--duration", "1"],
                             {**hub, "MANGA2MUSIC_AUTO_DOWNLOAD": "1"}, tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads((out / "storm.json").read_text())["compose"]["model"] == "musicgen-small"


def test_a_model_the_hub_does_not_have_stops_the_run_in_one_line_without_offline_advice(online, tmp_path):
    """A Hub (or mirror) that answers but has not the model: every section failed with the same long line, each
    ending "(or run without offline mode)" to a user who was not offline."""
    from fake_hub import answer

    env, _ = online

    def mirror(req):  # answers the reachability probe, has no file
        return (answer(200) if req.command == "HEAD" else answer(404))(req)

    with local_http(mirror) as (url, seen):
        result = with_pipes(["run", SAMPLES, "-o", tmp_path / "out", "--vision-model", "llava-0.5b", "--music-model",
                             "builtin", "--duration", "1"], {**env, "HF_ENDPOINT": url}, tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "offline mode" not in result.stderr, result.stderr
    assert result.stderr.count("could not load llava-0.5b") == 1, result.stderr  # not once a section
    assert "models pull llava-0.5b" in result.stderr


@pytest.mark.parametrize("code", [403, 407, 302])
def test_a_hub_that_a_firewall_answers_for_is_not_taken_for_reachable(online, tmp_path, code):
    """A firewall or captive portal that answers huggingface.co with 403 (or 407, or a redirect to its login page
    that answers 200) was "reachable": `auto` picked models to download, and with downloads allowed every section
    failed ("We couldn't connect ... to load the files"), on every later run too once "yes" was remembered, where
    builtin would have worked."""
    from fake_hub import answer

    def portal(req):
        if req.path.startswith("/login"):
            return answer(200, b"<html>Sign in to the guest Wi-Fi</html>")(req)
        return answer(302, headers={"Location": "/login?next=hub"})(req)

    _room_for_the_small_models()
    env, log = online
    with local_http(portal if code == 302 else answer(code)) as (url, seen):
        result = with_pipes(["run", SAMPLES / "calm", "-o", tmp_path / "out", "--duration", "1"],
                            {**env, "HF_ENDPOINT": url, "MANGA2MUSIC_AUTO_DOWNLOAD": "1"}, tmp_path)
        doctor = with_pipes(["doctor", "--json"], {**env, "HF_ENDPOINT": url}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "vision model: builtin" in result.stderr and "music model: builtin" in result.stderr, result.stderr
    assert f"HTTP {200 if code == 302 else code}" in result.stderr, result.stderr
    assert "will be downloaded" not in result.stderr, result.stderr
    assert not any("/resolve/" in s for s in seen), seen
    hub = json.loads(doctor.stdout)["hub"]
    assert hub["reachable"] is False and hub["detail"].startswith(f"HTTP {200 if code == 302 else code}"), hub
    if code == 302:
        assert "after a redirect: not the Hub" in hub["detail"], hub


def test_the_no_download_flag_beats_the_environment(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from manga2music.cli.app import app

    _room_for_the_small_models()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("MANGA2MUSIC_AUTO_DOWNLOAD", "1")
    with local_http(fake_hub("facebook/musicgen-small", {})) as (url, seen):
        monkeypatch.setenv("HF_ENDPOINT", url)
        result = CliRunner().invoke(app, ["run", str(SAMPLES / "calm"), "-o", str(tmp_path / "out"), "--duration", "1",
                                          "--no-download"])
    assert result.exit_code == 0, result.output
    assert "downloads turned off for this run" in result.stderr and "Using builtin instead" in result.stderr
    assert downloads_seen(seen) == []


# --- the library's decision point ---------------------------------------------------------------


def test_the_python_api_never_downloads_unasked(tmp_path, monkeypatch):
    import manga2music
    from manga2music.pipeline import Callbacks

    _room_for_the_small_models()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    logged: list[tuple[str, str]] = []
    with local_http(fake_hub("facebook/musicgen-small", {})) as (url, seen):
        monkeypatch.setenv("HF_ENDPOINT", url)
        manifest = manga2music.run([SAMPLES / "calm"], tmp_path / "out", config=manga2music.RunConfig(duration=1),
                                   callbacks=Callbacks(log=lambda level, m: logged.append((level, m))))
    assert manifest["sections"][0]["status"] == "ok"
    assert json.loads((tmp_path / "out" / "calm.json").read_text())["compose"]["model"] == "builtin"
    assert [m for level, m in logged if level == "warning" and "auto did not download" in m]
    assert downloads_seen(seen) == []


def plan_machine(tmp_path, **kw):
    return machine(accelerator="cpu", cached=tmp_path, **kw)


def test_one_question_for_both_sides_and_the_order_of_answers(tmp_path, monkeypatch):
    asked: list[downloads.DownloadPlan] = []

    def ask(plan):
        asked.append(plan)
        return True

    picks, note = downloads.choose_auto(("vision", "music"), plan_machine(tmp_path), ask)
    assert len(asked) == 1 and asked[0].names == ["llava-0.5b", "musicgen-small"] and asked[0].total_gb == 4.2
    assert (picks["vision"][0].name, picks["music"][0].name, note) == ("llava-0.5b", "musicgen-small", None)

    # the run's own choice beats the environment, which beats the remembered answer, which beats asking
    settings.set_setting(settings.AUTO_DOWNLOAD, True)
    monkeypatch.setenv("MANGA2MUSIC_AUTO_DOWNLOAD", "0")
    picks, note = downloads.choose_auto(("music",), plan_machine(tmp_path), True)
    assert picks["music"][0].name == "musicgen-small" and note is None
    picks, note = downloads.choose_auto(("music",), plan_machine(tmp_path), ask)
    assert picks["music"][0].name == "builtin" and "MANGA2MUSIC_AUTO_DOWNLOAD=0" in note
    monkeypatch.delenv("MANGA2MUSIC_AUTO_DOWNLOAD")
    assert downloads.choose_auto(("music",), plan_machine(tmp_path), ask)[0]["music"][0].name == "musicgen-small"
    settings.set_setting(settings.AUTO_DOWNLOAD, None)  # forgotten: now the question decides
    assert downloads.choose_auto(("music",), plan_machine(tmp_path), lambda plan: False)[0]["music"][0].name == "builtin"
    assert len(asked) == 1
    picks, note = downloads.choose_auto(("music",), plan_machine(tmp_path), None)  # nobody to ask: no
    assert picks["music"][0].name == "builtin" and "no terminal" in note


def test_refused_keeps_to_what_is_cached_and_asks_nothing_when_all_is_cached(tmp_path):
    from test_tiers import cache_with

    cache_with(tmp_path, "facebook/musicgen-small")
    big = machine(accelerator="cuda", vram=24.0, cached=tmp_path)
    picks, note = downloads.choose_auto(("music",), big, False)
    assert picks["music"][0].name == "musicgen-small"  # musicgen-large would be a 13 GB download
    assert "musicgen-large (13 GB)" in note and "models pull musicgen-large" in note
    cpu = machine(accelerator="cpu", cached=tmp_path)
    picks, note = downloads.choose_auto(("music",), cpu, lambda plan: pytest.fail("asked about a cached model"))
    assert picks["music"][0].name == "musicgen-small" and note is None


def test_the_estimate_follows_the_cpu_and_stays_out_of_gpu_plans(tmp_path):
    def plan(probe, bf16=None):
        made = downloads.plan_downloads({s: tiers.resolve_auto(s, probe=probe) for s in ("vision", "music")}, probe,
                                        duration=10)
        made.cpu_bf16 = bf16
        return made

    # README "Speed": llava-0.5b ~7 s a page; musicgen-small 0.30 audio s per wall s in bf16, 0.13 in fp32
    assert "7 s a page to describe and 33 s for each 10 s track" in plan(plan_machine(tmp_path), True).cpu_estimate()
    assert "77 s for each 10 s track" in plan(plan_machine(tmp_path), False).cpu_estimate()
    gpu = plan(machine(accelerator="cuda", vram=24.0, cached=tmp_path))
    assert gpu.names == ["llava-7b", "musicgen-large"] and gpu.cpu_estimate() is None
    assert all(i.where.startswith("on the GPU") for i in gpu.items)


def test_settings_file_round_trip_and_a_broken_file_is_nothing_remembered(tmp_path):
    assert settings.get_setting(settings.AUTO_DOWNLOAD) is None
    path = settings.set_setting(settings.AUTO_DOWNLOAD, False)
    assert path == Path(os.environ["MANGA2MUSIC_CONFIG_DIR"]) / "settings.json"
    assert json.loads(path.read_text()) == {"auto_download": False}
    settings.set_setting("other", 3)
    assert settings.load_user_settings() == {"auto_download": False, "other": 3}
    path.write_text('{"auto_download": tru, "my_note": "keep me"}')
    assert settings.get_setting(settings.AUTO_DOWNLOAD) is None
    said: list[str] = []
    settings.set_setting(settings.AUTO_DOWNLOAD, True, note=said.append)
    assert settings.load_user_settings() == {"auto_download": True}
    # the broken file was written over, and the user's own lines in it were lost: it is kept beside, and said
    kept = path.parent / "settings.json.bad"
    assert kept.read_text() == '{"auto_download": tru, "my_note": "keep me"}'
    assert said == [f"{path} is not valid JSON (Expecting value: line 1 column 19 (char 18)): kept as {kept}, and a "
                    "new one holds the answer"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json", "settings.json.bad"]  # no temp left
    path.write_text("[]")
    settings.set_setting(settings.AUTO_DOWNLOAD, False, note=said.append)
    assert (path.parent / "settings.json.bad-2").read_text() == "[]" and "not a JSON object" in said[-1]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symbolic links")
def test_a_settings_file_linked_from_dotfiles_stays_a_link_and_keeps_its_permissions(tmp_path):
    """Answering the question replaced a settings.json linked from a dotfiles folder (stow) with a file of its own,
    so the dotfiles copy was never updated, and a 0600 file became 0644."""
    dotfiles = tmp_path / "dotfiles" / "settings.json"
    dotfiles.parent.mkdir()
    dotfiles.write_text('{"other": 1}')
    dotfiles.chmod(0o600)
    path = settings.settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(dotfiles)
    settings.set_setting(settings.AUTO_DOWNLOAD, False)
    assert path.is_symlink() and path.resolve() == dotfiles.resolve()
    assert json.loads(dotfiles.read_text()) == {"other": 1, "auto_download": False}
    assert dotfiles.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in dotfiles.parent.iterdir()] == ["settings.json"]  # no temporary file left there
    dotfiles.write_text('{"other": tru')  # broken, then answered: moved aside, and the new file keeps the mode
    dotfiles.chmod(0o600)
    settings.set_setting(settings.AUTO_DOWNLOAD, True)
    assert path.is_symlink() and dotfiles.stat().st_mode & 0o777 == 0o600
    assert (dotfiles.parent / "settings.json.bad").read_text() == '{"other": tru'


def test_resolve_auto_without_downloads_touches_no_network(tmp_path):
    from manga2music.hardware import HubStatus

    probe = machine(accelerator="cpu", hub=HubStatus("http://127.0.0.1:9"))
    spec, reason = tiers.resolve_auto("music", probe=probe, allow_download=False)
    assert spec.name == "builtin" and "downloading was not allowed" in reason
    assert "manga2music models pull musicgen-small" in reason and probe.hub.checked is False
    assert find_spec("musicgen-small", "music").download_gb == 2.4  # what the question and the README say


def test_doctor_says_whether_auto_may_download(monkeypatch):
    from typer.testing import CliRunner

    from manga2music.cli.app import app

    def answer() -> dict:
        result = CliRunner().invoke(app, ["doctor", "--offline", "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["auto_download"]

    assert answer() == {"allowed": None, "source": "not answered yet"}
    settings.set_setting(settings.AUTO_DOWNLOAD, False)
    said = answer()
    assert said["allowed"] is False and str(settings.settings_file()) in said["source"]
    monkeypatch.setenv("MANGA2MUSIC_AUTO_DOWNLOAD", "1")
    assert answer() == {"allowed": True, "source": "MANGA2MUSIC_AUTO_DOWNLOAD=1"}


def test_doctor_names_an_answer_it_cannot_read_instead_of_not_answered_yet(monkeypatch):
    """MANGA2MUSIC_AUTO_DOWNLOAD=maybe, "auto_download": "yes" or a settings.json with a typo were left unread
    without a word: doctor said "not answered yet", and the user believed their setting decided."""
    from typer.testing import CliRunner

    from manga2music.cli.app import app

    def source() -> str:
        result = CliRunner().invoke(app, ["doctor", "--offline", "--json"])
        assert result.exit_code == 0, result.output
        said = json.loads(result.stdout)["auto_download"]
        assert said["allowed"] is None
        return said["source"]

    monkeypatch.setenv("MANGA2MUSIC_AUTO_DOWNLOAD", "maybe")
    assert source() == ("not answered yet; MANGA2MUSIC_AUTO_DOWNLOAD=maybe is neither yes nor no (1/0, true/false, "
                        "yes/no, on/off): not read")
    monkeypatch.delenv("MANGA2MUSIC_AUTO_DOWNLOAD")
    path = settings.settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"auto_download": "yes"}')
    assert source() == f'not answered yet; auto_download is "yes" in {path}, not true or false: not read'
    path.write_text('{"auto_download": tru}')
    assert source() == (f"not answered yet; {path} is not valid JSON (Expecting value: line 1 column 19 (char 18)): "
                        "not read")


def test_a_rerun_with_nothing_to_make_does_not_need_the_kept_models_weights(online, tmp_path, tiny_musicgen_files):
    """After `models rm`, a rerun with nothing to make went on online, but stopped offline (`--offline`, or a Hub
    that cannot be reached with downloads allowed): "weights not in the cache and offline mode is on", exit 1, as
    the folder's model was checked before it was known that no section needs it.  The check is made where a section
    needs the model: a new section still stops in that one line."""
    env, _ = online
    out = tmp_path / "out"
    with local_http(fake_hub("facebook/musicgen-small", tiny_musicgen_files)) as (url, seen):
        hub = {**env, "HF_ENDPOINT": url}
        first = with_pipes(["compose", "--text", "rain", "-o", out, "--duration", "1", "--model", "musicgen-small"],
                           hub, tmp_path)
        assert first.returncode == 0, first.stderr
        removed = with_pipes(["models", "rm", "musicgen-small", "-y"], hub, tmp_path)
        assert removed.returncode == 0, removed.stderr
        seen.clear()
        offline = with_pipes(["compose", "--text", "rain", "-o", out, "--duration", "1", "--offline"], hub, tmp_path)
        assert seen == [], seen
    assert offline.returncode == 0 and "rain\tskipped" in offline.stdout, offline.stdout + offline.stderr
    with local_http(lambda handler: handler.connection.close()) as (closed, _):
        pass  # a port that nothing answers on any more: a Hub that cannot be reached
    unreachable = with_pipes(["compose", "--text", "rain", "-o", out, "--duration", "1", "--download"],
                             {**env, "HF_ENDPOINT": closed}, tmp_path)
    assert unreachable.returncode == 0 and "rain\tskipped" in unreachable.stdout, unreachable.stderr
    new = with_pipes(["compose", "--text", "storm", "-o", out, "--duration", "1", "--offline"], env, tmp_path)
    assert new.returncode != 0 and "Traceback" not in new.stderr, new.stderr
    assert "musicgen-small" in new.stderr and "offline mode is on" in new.stderr, new.stderr
    assert "models pull musicgen-small" in new.stderr, new.stderr
    assert not (out / "storm.wav").exists()


def test_ctrl_c_at_the_download_question_says_nothing_was_made_or_remembered(capsys):
    """Ctrl-C at "Download them now? [y/N]" said "Finished files are kept; run the same command again to resume":
    nothing had started, and no answer was remembered."""
    import typer

    from manga2music.cli import consent
    from manga2music.cli._common import RunDisplay, friendly_errors

    import signal

    plan = downloads.DownloadPlan(items=[], cache_dir="/tmp/cache", disk_free_gb=100.0)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with RunDisplay() as display:
            def interrupted(*args, **kwargs):
                raise KeyboardInterrupt

            display.console.input = interrupted
            with pytest.raises(typer.Exit) as stopped:
                with friendly_errors():
                    consent.ask(plan, display)
    finally:  # (a stopped command leaves its handlers for a second signal: the process ends after it)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    said = " ".join(capsys.readouterr().err.split())
    assert stopped.value.exit_code == 130
    assert "Interrupted. It was still asking whether to download: nothing was made, and no answer was remembered." \
        in said, said
    assert "resume" not in said and not settings.settings_file().exists()
