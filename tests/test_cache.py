"""The model cache: location rules, scanning, and `manga2music models list|pull|rm|path`.

Nothing here reaches the internet: the "Hub" is a small HTTP server on 127.0.0.1
that speaks the few endpoints ``huggingface_hub.snapshot_download`` uses.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from typer.testing import CliRunner

from manga2music import cache, settings
from manga2music.cli.app import app
from manga2music.errors import ModelUnavailableError, UnknownModelError

from fake_hub import COMMIT, MUSICGEN_BYTES, MUSICGEN_FILES, answer, fake_hub, fake_repo, local_http

# --- location ----------------------------------------------------------------------------------


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    for name in ("MANGA2MUSIC_CACHE", "HF_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings.cache_source() == "default"
    assert settings.model_cache_dir() == tmp_path / "xdg" / "manga2music" / "models"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    assert (settings.model_cache_dir(), settings.cache_source()) == (tmp_path / "hfhome" / "hub", "HF_HOME")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hubcache"))
    assert (settings.model_cache_dir(), settings.cache_source()) == (tmp_path / "hubcache", "HF_HUB_CACHE")
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path / "ours"))
    assert (settings.model_cache_dir(), settings.cache_source()) == (tmp_path / "ours", "MANGA2MUSIC_CACHE")


# --- scanning ----------------------------------------------------------------------------------


def test_scan_counts_blobs_once_and_spots_half_downloads(tmp_path):
    fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    fake_repo(tmp_path, "someone/finetune", {"config.json": b"{}", "model.safetensors": b"1" * 100}, incomplete=True)
    (tmp_path / "datasets--x--y").mkdir()  # not a model: ignored
    (tmp_path / "models--").mkdir()  # no model's either (it was an empty row in `models list` and doctor)
    found = {c.repo_id: c for c in cache.scan(tmp_path)}
    assert set(found) == {"facebook/musicgen-small", "someone/finetune"}
    small = found["facebook/musicgen-small"]
    assert (small.size_bytes, small.complete, small.name) == (MUSICGEN_BYTES, True, "musicgen-small")
    assert found["someone/finetune"].complete is False
    assert cache.is_cached("facebook/musicgen-small", tmp_path)
    assert not cache.is_cached("someone/finetune", tmp_path)
    assert cache.total_size(tmp_path) == MUSICGEN_BYTES + (2 + 100 + len(COMMIT)) + 10


def test_a_half_download_finished_since_leaves_the_model_cached_and_pull_removes_it(tmp_path, monkeypatch):
    """huggingface_hub 2.x downloads into ETAG.XXXXXXXX.incomplete, left behind by a killed `models pull` and never
    reused: after a later pull finished the model, it stayed "partial" in `models list`, `auto` asked to download
    it again, and --offline runs said it was not cached, for good."""
    import hashlib

    repo = fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    etag = hashlib.sha256(MUSICGEN_FILES["model.safetensors"]).hexdigest()
    for leftover in (f"{etag}.3cbea093.incomplete", f"{etag}.incomplete"):  # 2.x, 1.x
        (repo / "blobs" / leftover).write_bytes(b"\0" * 1000)
    assert cache.is_cached("facebook/musicgen-small", tmp_path)
    assert [m.complete for m in cache.scan(tmp_path)] == [True]
    under_way = repo / "blobs" / ("e" * 64 + ".1a2b3c4d.incomplete")
    under_way.write_bytes(b"x")  # a file still being downloaded: partial
    assert not cache.is_cached("facebook/musicgen-small", tmp_path)
    os.utime(under_way, (time.time() - 7200, time.time() - 7200))  # untouched for 2 hours: a killed pull's, of a
    assert cache.is_cached("facebook/musicgen-small", tmp_path)  # file the Hub has replaced since
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with local_http(fake_hub("facebook/musicgen-small", MUSICGEN_FILES)) as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        cache.pull("musicgen-small", tmp_path)
    assert not list((repo / "blobs").glob("*.incomplete"))  # the leftovers' space given back


def test_pull_of_a_name_the_hub_refuses_says_so_not_that_the_network_is_at_fault(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with local_http(fake_hub("facebook/musicgen-small", MUSICGEN_FILES)) as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        with pytest.raises(ModelUnavailableError) as info:
            cache.pull("owner/a--b", tmp_path)
    assert "login page" not in info.value.message and "--" in info.value.message, info.value.message


def test_a_snapshot_missing_a_shard_or_a_blob_is_not_cached(tmp_path):
    """A pull stopped between shards (or a blob deleted by hand) was "cached" in `models list` and `doctor`; then
    `auto` picked it, every section failed offline, and online a run hung on the Hub's retries for minutes."""
    index = {"weight_map": {"a": "model-00001-of-00003.safetensors", "b": "model-00002-of-00003.safetensors",
                            "c": "model-00003-of-00003.safetensors"}}
    files = {"config.json": b'{"model_type": "musicgen"}', "model.safetensors.index.json": json.dumps(index).encode(),
             "model-00001-of-00003.safetensors": b"\1" * 100, "model-00003-of-00003.safetensors": b"\3" * 100}
    fake_repo(tmp_path, "facebook/musicgen-small", files)
    assert not cache.is_cached("facebook/musicgen-small", tmp_path)
    fake_repo(tmp_path, "facebook/musicgen-small", {"model-00002-of-00003.safetensors": b"\2" * 100})
    assert cache.is_cached("facebook/musicgen-small", tmp_path)  # every shard: whole
    other = fake_repo(tmp_path, "facebook/musicgen-medium", MUSICGEN_FILES)
    assert cache.is_cached("facebook/musicgen-medium", tmp_path)
    for blob in (other / "blobs").iterdir():
        if blob.stat().st_size == len(MUSICGEN_FILES["model.safetensors"]):
            blob.unlink()  # the weights' link now leads nowhere
    assert not cache.is_cached("facebook/musicgen-medium", tmp_path)
    assert {m.repo_id: m.complete for m in cache.scan(tmp_path)} == {"facebook/musicgen-small": True,
                                                                      "facebook/musicgen-medium": False}
    # a file the loaders do not read, gone (a README; the .bin copy beside the safetensors, freed by a user, which
    # a pull never fetches back): still whole
    large = fake_repo(tmp_path, "facebook/musicgen-large", {**MUSICGEN_FILES, "README.md": b"# readme",
                                                            "pytorch_model.bin": b"\5" * 1000})
    for blob in (large / "blobs").iterdir():
        if blob.read_bytes() in (b"# readme", b"\5" * 1000):
            blob.unlink()
    assert cache.is_cached("facebook/musicgen-large", tmp_path)


def test_a_snapshot_without_weights_is_not_cached(tmp_path):
    fake_repo(tmp_path, "facebook/musicgen-small", {"config.json": b"{}"})
    assert not cache.is_cached("facebook/musicgen-small", tmp_path)
    assert cache.scan(tmp_path / "missing") == []


def test_a_cache_whose_current_snapshot_lacks_its_weights_is_not_cached(tmp_path, monkeypatch):
    """An update stopped half-way: refs/main names a new snapshot without weights beside a whole older one.  The
    model was "cached" in `models list`, `pull --offline` gave the newest folder name (no weights in it), and a
    compose without network retried for 7 minutes before failing on the missing weights."""
    repo = fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    assert cache.is_cached("facebook/musicgen-small", tmp_path)
    new = repo / "snapshots" / ("c" * 40)
    new.mkdir()
    (new / "config.json").symlink_to(next((repo / "snapshots" / COMMIT).glob("config.json")).resolve())
    (repo / "refs" / "main").write_text("c" * 40)
    assert not cache.is_cached("facebook/musicgen-small", tmp_path)
    assert [m.complete for m in cache.scan(tmp_path)] == [False]
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="it is not in"):
        cache.pull("musicgen-small", offline=True)
    (repo / "refs" / "main").write_text(COMMIT)  # back on the whole one: that is the one pulled
    assert cache.pull("musicgen-small", offline=True) == repo / "snapshots" / COMMIT


def test_names_map_to_repos():
    assert cache.repo_id_for("musicgen-small") == "facebook/musicgen-small"
    assert cache.repo_id_for("hf:owner/model") == "owner/model"
    with pytest.raises(UnknownModelError, match="nothing to download"):
        cache.repo_id_for("gpt-4o")
    with pytest.raises(UnknownModelError, match="known models"):
        cache.repo_id_for("no-such-model")


# --- models list / rm / path --------------------------------------------------------------------

runner = CliRunner()


def test_models_list_json_shows_cached_size(tmp_path, monkeypatch):
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    fake_repo(tmp_path, "me/my-finetune", {"config.json": b"{}", "model.safetensors": b"2" * 10})
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cache_dir"] == str(tmp_path)
    rows = {r["model_id"] or f"builtin-{r['side']}": r for r in data["models"]}
    assert rows["facebook/musicgen-small"]["cached"] is True
    assert rows["facebook/musicgen-small"]["size_bytes"] == MUSICGEN_BYTES
    assert rows["facebook/musicgen-medium"]["cached"] is False
    assert rows["facebook/musicgen-medium"]["download_gb"] > rows["facebook/musicgen-small"]["download_gb"]
    assert rows["me/my-finetune"]["cached"] is True and rows["me/my-finetune"]["name"] is None
    assert rows["builtin-music"]["needs_download"] is False and rows["builtin-music"]["cached"] is None  # not False:
    # a script took builtin for a model it could not use


def test_models_list_table_names_the_cached_model(tmp_path):
    """In a terminal (a real pty), `models list` is a table titled with the cache it looked in."""
    from output_checks import cli_env
    from test_first_run import ANSI, in_terminal

    fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    code, shown = in_terminal(["models", "list"], cli_env(MANGA2MUSIC_CACHE=str(tmp_path), COLUMNS="200"), tmp_path)
    shown = ANSI.sub("", shown)
    assert code == 0, shown
    assert f"models (cache: {tmp_path})" in shown
    line = next(ln for ln in shown.splitlines() if "facebook/musicgen-small" in ln)
    assert line.startswith("│ musicgen-small ") and "│ yes " in line and "KB" in line and "\t" not in line


def test_models_list_piped_keeps_every_name_whole_and_rm_of_builtin_says_nothing_to_remove(tmp_path, monkeypatch):
    """Piped (no terminal, no COLUMNS), the table was cut to 80 columns and names broke mid-word ("gpt-4o-min" over
    "i"); and `models rm builtin` answered "nothing to download"."""
    from manga2music import registry

    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    result = runner.invoke(app, ["models", "list"], env={"COLUMNS": None})
    assert result.exit_code == 0, result.output
    words = {w for line in result.stdout.splitlines() for w in line.replace("│", " ").split()}
    assert {spec.name for spec in registry.MODELS} <= words
    result = runner.invoke(app, ["models", "rm", "builtin"])
    assert result.exit_code == 0 and "nothing to remove" in result.output and "download" not in result.output


def test_models_rm_asks_then_deletes(tmp_path, monkeypatch):
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    repo = fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    result = runner.invoke(app, ["models", "rm", "musicgen-small"], input="n\n")
    assert result.exit_code == 1 and repo.is_dir()
    result = runner.invoke(app, ["models", "rm", "musicgen-small"], input="y\n")
    assert result.exit_code == 0, result.output
    assert not repo.exists()
    fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    result = runner.invoke(app, ["models", "rm", "facebook/musicgen-small", "--yes"])
    assert result.exit_code == 0 and not repo.exists()
    result = runner.invoke(app, ["models", "rm", "musicgen-small", "--yes"])
    assert result.exit_code == 1 and "not in the cache" in result.output


def test_models_rm_with_no_answer_to_read_says_to_pass_y(tmp_path, monkeypatch):
    """`models rm NAME < /dev/null` (a script) said a bare "Aborted!" after its question."""
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    result = runner.invoke(app, ["models", "rm", "musicgen-small"], input="")
    assert result.exit_code == 1 and "Aborted" not in result.output, result.output
    assert "nothing deleted" in result.stderr and "models rm musicgen-small -y" in result.stderr, result.stderr
    assert cache.is_cached("facebook/musicgen-small", tmp_path)


def test_models_rm_removes_any_model_models_list_shows(tmp_path, monkeypatch):
    """`models list` showed `gpt2` (a Hub id from before owners, cached as models--gpt2) and `org/team/model`, but
    `models rm` of either said "unknown model" and deleted nothing: what the list shows can now be removed."""
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    weights = {"config.json": b"{}", "model.safetensors": b"1" * 100}
    old = fake_repo(tmp_path, "gpt2", weights)
    deep = fake_repo(tmp_path, "org/team/model", weights)
    listed = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert "gpt2" in listed.stdout and "org/team/model" in listed.stdout
    for name, repo in (("gpt2", old), ("org/team/model", deep)):
        result = runner.invoke(app, ["models", "rm", name, "--yes"])
        assert result.exit_code == 0, result.output
        assert f"Deleted {name}" in result.stdout and not repo.exists()
    assert runner.invoke(app, ["models", "rm", "gpt2", "--yes"]).exit_code == 2  # gone: no more a name it knows
    stray = fake_repo(tmp_path, "musicgen-small", weights)  # a short name stays the registry's model's
    real = fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    assert runner.invoke(app, ["models", "rm", "musicgen-small", "--yes"]).exit_code == 0
    assert stray.exists() and not real.exists()


def test_models_path_respects_manga2music_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = runner.invoke(app, ["models", "path"])
    assert result.exit_code == 0
    assert result.stdout.strip() == str(tmp_path / "weights")
    assert "MANGA2MUSIC_CACHE" in result.stderr
    monkeypatch.delenv("MANGA2MUSIC_CACHE")
    result = runner.invoke(app, ["models", "path"])
    assert result.stdout.strip() == str(tmp_path / "hf" / "hub") and "HF_HOME" in result.stderr


# --- pull ------------------------------------------------------------------------------------------


def test_pull_builtin_and_openai_need_no_download(tmp_path, monkeypatch):
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    result = runner.invoke(app, ["models", "pull", "builtin", "gpt-4o-mini"])
    assert result.exit_code == 0
    assert "runs without weights" in result.stderr and "OpenAI API" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_pull_offline_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(app, ["models", "pull", "musicgen-small"])
    assert result.exit_code == 1
    assert "offline" in result.stderr and "Traceback" not in result.output
    fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)  # cached: offline pull is a no-op
    result = runner.invoke(app, ["models", "pull", "musicgen-small"])
    assert result.exit_code == 0 and COMMIT in result.stdout


def test_pull_of_a_name_that_is_no_model_is_bad_input_as_rm_says(tmp_path, monkeypatch):
    """`models pull nosuch` exited 1 and ended "some models could not be downloaded", though nothing was tried;
    `models rm nosuch` exits 2, as any bad input does."""
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(app, ["models", "pull", "nosuch"])
    assert result.exit_code == 2 and "unknown model 'nosuch';" in result.stderr
    assert "could not be downloaded" not in result.stderr
    typo = runner.invoke(app, ["models", "pull", "musicgen-smal"])  # as `run --music-model musicgen-smal` says
    assert typo.exit_code == 2 and "unknown model 'musicgen-smal' (did you mean musicgen-small?)" in typo.stderr
    both = runner.invoke(app, ["models", "pull", "nosuch", "musicgen-small"])  # offline: neither comes
    assert both.exit_code == 2 and "2 of 2 models could not be downloaded" in both.stderr
    assert runner.invoke(app, ["models", "rm", "nosuch"]).exit_code == 2


def test_pull_fails_fast_when_the_hub_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with local_http(answer(500)) as (url, seen):
        monkeypatch.setenv("HF_ENDPOINT", url)
        start = time.monotonic()
        with pytest.raises(ModelUnavailableError, match="unreachable.*HTTP 500"):
            cache.pull("musicgen-small", tmp_path)
        assert time.monotonic() - start < 3
    assert not any(tmp_path.iterdir())


def test_pull_behind_a_captive_portal_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    """A hotel network's login page (or a proxy's) answers every request with HTML and 200: `models pull` ended in
    a 60-line JSONDecodeError traceback.  It also says, before it starts, what it fetches and where."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path / "cache"))
    portal = b"<html><body><h1>Welcome! Please log in to use the Wi-Fi</h1></body></html>"
    with local_http(answer(200, portal, {"Content-Type": "text/html"})) as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        result = runner.invoke(app, ["models", "pull", "musicgen-small"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "musicgen-small: downloading facebook/musicgen-small (2.4 GB) into" in result.stderr
    assert "not the Hub" in result.stderr and "login page" in result.stderr, result.stderr


@pytest.mark.parametrize("body", [b"{}", b"[]"])
def test_pull_from_an_endpoint_whose_json_is_not_the_hubs_is_one_line_not_a_traceback(tmp_path, monkeypatch, body):
    """HF_ENDPOINT at a server that answers JSON of another shape ({} or [] for a model's info): `models pull` ended
    in a traceback, KeyError: 'id' (or a TypeError for a list)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path / "cache"))
    with local_http(answer(200, body, {"Content-Type": "application/json"})) as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        result = runner.invoke(app, ["models", "pull", "musicgen-small"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "does not answer as the Hub does" in " ".join(result.stderr.split()), result.stderr


def test_ctrl_c_stops_a_pull_at_once_and_the_next_pull_finishes_it(tmp_path):
    """Ctrl-C during `models pull` kept downloading (huggingface_hub's threads) for up to 30 s, then "The stop did
    not finish within 30 s: stopped at once", its half-downloaded file left for good."""
    import hashlib
    import os
    import signal
    import subprocess
    import sys

    big = b"\7" * 3_000_000
    files = dict(MUSICGEN_FILES, **{"model.safetensors": big})
    whole = fake_hub("facebook/musicgen-small", files)
    slow = {"on": True}

    def trickle(req) -> None:
        if slow["on"] and req.command == "GET" and req.path.split("?")[0].endswith("/model.safetensors"):
            req.send_response(200)
            for k, v in {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(big).hexdigest()}"',
                         "Content-Length": str(len(big)), "Content-Type": "application/octet-stream"}.items():
                req.send_header(k, v)
            req.end_headers()
            try:
                for start in range(0, len(big), 1024):  # about 20 KB/s: minutes for the file
                    req.wfile.write(big[start:start + 1024])
                    req.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
            return
        whole(req)

    env = {**os.environ, "MANGA2MUSIC_CACHE": str(tmp_path), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    with local_http(trickle) as (url, _):
        env["HF_ENDPOINT"] = url
        proc = subprocess.Popen([sys.executable, "-m", "manga2music", "models", "pull", "musicgen-small"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        blobs = tmp_path / "models--facebook--musicgen-small" / "blobs"
        deadline = time.monotonic() + 60
        while not (blobs.is_dir() and list(blobs.glob("*.incomplete"))) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(blobs.glob("*.incomplete")), "the download never started"
        time.sleep(0.5)
        stopped = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - stopped
        assert proc.returncode == 130 and took < 10, (proc.returncode, took, err[-1500:])
        assert "the files finished are kept" in err and "30 s" not in err, err[-1500:]
        assert not cache.is_cached("facebook/musicgen-small", tmp_path)
        slow["on"] = False
        again = subprocess.run([sys.executable, "-m", "manga2music", "models", "pull", "musicgen-small"], env=env,
                               capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-1500:]
    assert cache.is_cached("facebook/musicgen-small", tmp_path)
    assert not list(blobs.glob("*.incomplete"))


def test_a_cache_that_is_a_file_is_said_by_doctor_and_pull_before_any_download(tmp_path, monkeypatch):
    """MANGA2MUSIC_CACHE naming a file: doctor showed it as the model cache with the disk's free space, and `models
    pull` reached the Hub, then failed inside huggingface_hub's download.  Both now name the file and what to do."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    not_a_folder = tmp_path / "models.txt"
    not_a_folder.write_text("my notes")
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(not_a_folder))
    with local_http(fake_hub("facebook/musicgen-small", MUSICGEN_FILES)) as (url, seen):
        monkeypatch.setenv("HF_ENDPOINT", url)
        pulled = runner.invoke(app, ["models", "pull", "musicgen-small"])
        assert seen == []  # nothing asked of the Hub
    assert pulled.exit_code == 1 and "Traceback" not in pulled.output
    assert f"{not_a_folder} is a file, not a folder" in pulled.stderr and "MANGA2MUSIC_CACHE" in pulled.stderr
    assert "downloading" not in pulled.stderr, pulled.stderr  # not announced as into the file, then refused
    assert not_a_folder.read_text() == "my notes"
    doctor = runner.invoke(app, ["doctor", "--offline", "--json"])
    report = json.loads(doctor.stdout)
    assert report["cache_problem"] == f"{not_a_folder} is a file, not a folder"
    shown = runner.invoke(app, ["doctor", "--offline"], terminal_width=200)
    assert "is a file, not a folder" in shown.stdout


def test_a_relative_cache_path_is_the_folder_it_names_from_where_the_command_ran(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MANGA2MUSIC_CACHE", "weights")
    assert settings.model_cache_dir() == tmp_path / "weights"  # shown and recorded whole, not as "weights"
    assert settings.cache_problem() is None  # not there yet: made on the first download


def tmpfs(where, options: str):
    """Mount a small tmpfs at ``where`` (root only: the test is skipped elsewhere); unmount it after."""
    import subprocess

    where.mkdir(exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                                 capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        mounted = False
    if not mounted:
        pytest.skip("cannot mount a file system here (needs root)")
    yield where
    subprocess.run(["umount", str(where)], capture_output=True, timeout=30)


@pytest.fixture
def read_only_mount(tmp_path):
    """A folder on a read-only file system (a tmpfs mounted ro; root only)."""
    yield from tmpfs(tmp_path / "ro", "ro,size=1m")


@pytest.fixture
def writable_mount(tmp_path):
    """A folder on a file system of its own, which a test may make read-only (``mount -o remount,ro``)."""
    yield from tmpfs(tmp_path / "mnt", "size=4m")


def test_a_cache_on_a_read_only_file_system_is_called_so_not_a_permission_problem(read_only_mount, monkeypatch):
    """HOME on a read-only mount: doctor said the cache "cannot be written here (no permission on ...)", which
    sends the user to chmod, where the mount is the cause."""
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(read_only_mount / "models"))
    problem = settings.cache_problem()
    assert problem.text == (f"{read_only_mount / 'models'} cannot be written here ({read_only_mount} is "
                            "on a read-only file system)")
    assert not problem.unreadable  # its weights can still be read: only new downloads cannot be kept


def test_models_rm_on_a_read_only_cache_is_one_line_and_deletes_nothing(writable_mount, monkeypatch):
    """`models rm` of a model in a cache on a read-only file system (a shared cache, a mount) ended in a Python
    traceback; where only a file was undeletable, the model was left half deleted and listed as "partial"."""
    import subprocess

    where = writable_mount
    repo = fake_repo(where, "facebook/musicgen-small", MUSICGEN_FILES)
    assert subprocess.run(["mount", "-o", "remount,ro", str(where)], capture_output=True).returncode == 0
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(where))
    result = runner.invoke(app, ["models", "rm", "musicgen-small", "--yes"])
    assert result.exit_code == 1, result.output
    assert "cannot delete facebook/musicgen-small" in result.output and "nothing was deleted" in result.output
    assert "Traceback" not in result.output and cache.is_cached("facebook/musicgen-small", where)
    assert repo.is_dir()


def test_a_model_only_part_of_which_can_be_deleted_is_out_of_the_cache_and_says_where_the_rest_is(tmp_path,
                                                                                                  monkeypatch):
    repo = fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    real_unlink = __import__("os").unlink

    def refuses_refs(path, *args, **kwargs):  # an immutable file (chattr +i): even root may not delete it
        if str(path).endswith("main"):
            raise PermissionError(1, "Operation not permitted", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr("os.unlink", refuses_refs)
    result = runner.invoke(app, ["models", "rm", "musicgen-small", "--yes"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    said = " ".join(result.output.split())
    assert "facebook/musicgen-small is out of the model cache, but 0.0 MB of it could not be deleted from" in said
    assert "Operation not permitted" in said and not repo.exists()
    assert [m.repo_id for m in cache.scan(tmp_path)] == []  # not listed as "partial"


def test_a_cache_below_a_file_is_said_to_be_unmakeable_not_unreadable(tmp_path, monkeypatch):
    (tmp_path / "notes").write_text("mine")
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path / "notes" / "models"))
    problem = settings.cache_problem()
    notes = tmp_path / "notes"
    assert problem.text == f"{notes / 'models'} cannot be made: {notes} is a file, not a folder"
    assert not problem.unreadable  # a cache that cannot be made: nothing in it to read, and nothing out of reach


def test_pull_downloads_into_the_cache_and_skips_duplicate_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    files = dict(MUSICGEN_FILES, **{"pytorch_model.bin": b"\1" * 50_000, "flax_model.msgpack": b"\2" * 100})
    with local_http(fake_hub("facebook/musicgen-small", files)) as (url, seen):
        monkeypatch.setenv("HF_ENDPOINT", url)
        snapshot = cache.pull("musicgen-small", tmp_path)
    assert snapshot.parent.parent == tmp_path / "models--facebook--musicgen-small"
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(MUSICGEN_FILES)
    assert (snapshot / "model.safetensors").read_bytes() == MUSICGEN_FILES["model.safetensors"]
    assert cache.is_cached("facebook/musicgen-small", tmp_path)
    assert not any("pytorch_model.bin" in s or "msgpack" in s for s in seen)


@pytest.mark.parametrize("columns", [80, 120, 150])
def test_models_list_in_a_terminal_too_narrow_for_the_table_breaks_no_name_and_no_id(tmp_path, columns):
    """In an 80-column terminal (the usual default) the table broke what you type: "gpt-4o-min" over "i",
    "llava-onev" over "ision-0.5b", the ids in 10-column pieces. Each model now has two lines there: its name,
    side, download and cache state, then its id and licence below.  So did the table from 120 to 159 columns, which
    were taken as wide enough ("ACE-Step/acestep-v15-xl-" over "turbo-diffusers"): the table is shown only where
    every cell fits."""
    from output_checks import cli_env
    from test_first_run import ANSI, in_terminal

    from manga2music import registry

    fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    code, shown = in_terminal(["models", "list"], cli_env(MANGA2MUSIC_CACHE=str(tmp_path), COLUMNS=str(columns)),
                              tmp_path)
    lines = ANSI.sub("", shown).splitlines()
    assert code == 0, shown
    long = [line for line in lines if len(line.rstrip()) > columns and not line.startswith("models (cache: ")]
    assert not long, long  # the title's folder is kept whole on its line, to be copied
    starts = {line.split()[0] for line in lines if line.strip() and not line.startswith(" ")}
    assert {spec.name for spec in registry.MODELS} <= starts, sorted({s.name for s in registry.MODELS} - starts)
    for spec in registry.MODELS:
        if spec.needs_weights:
            assert any(line.strip().startswith(f"{spec.model_id} · ") for line in lines), spec.model_id
    small = next(line for line in lines if line.startswith("musicgen-small "))
    assert small.split()[1] == "music" and "yes (" in small and small.rstrip().endswith(" KB)"), small
    assert next(line for line in lines if line.startswith("musicgen-medium ")).endswith("not cached")


def test_models_list_in_a_40_column_terminal_shows_each_cache_state_whole(tmp_path):
    """In 40 columns (a split pane, a phone's terminal) the first line of each model was cut with "…" where its cache
    state stood: "vision   1.8 GB…", so whether a model was cached was not shown at all. The state now has a line
    of its own below the first when that has no room for it."""
    from output_checks import cli_env
    from test_first_run import ANSI, in_terminal

    from manga2music import registry

    fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    code, shown = in_terminal(["models", "list"], cli_env(MANGA2MUSIC_CACHE=str(tmp_path), COLUMNS="40"), tmp_path)
    lines = ANSI.sub("", shown).splitlines()
    assert code == 0, shown
    assert not [line for line in lines if "…" in line], shown
    long = [line for line in lines if len(line.rstrip()) > 40 and not line.startswith("models (cache: ")]
    assert not long, long
    blocks: dict[str, str] = {}  # each model's lines, from its name to the next model's
    for line in lines[1:]:
        if line.strip() and not line.startswith(" "):
            name = line.split()[0]
        blocks[name] = blocks.get(name, "") + " " + line.strip()
    assert {spec.name for spec in registry.MODELS} <= set(blocks)
    assert re.search(r"\byes \(\d[\d.]* KB\)", blocks["musicgen-small"]), blocks["musicgen-small"]
    for spec in registry.MODELS:
        if spec.needs_weights and spec.name != "musicgen-small":
            assert "not cached" in blocks[spec.name], blocks[spec.name]


def test_models_list_into_a_pipe_is_one_tab_separated_line_per_model(tmp_path):
    """`models list | grep musicgen | cut -f3` got box-drawing lines ("│ musicgen-small │ music │ ...") padded to 250
    columns, where `run` into a pipe gives plain `name<TAB>status<TAB>output` lines: the same for models now, their
    column names and the cache on stderr."""
    import subprocess
    import sys

    from output_checks import cli_env

    fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    listed = subprocess.run([sys.executable, "-m", "manga2music", "models", "list"], capture_output=True, text=True,
                            env=cli_env(MANGA2MUSIC_CACHE=str(tmp_path)), timeout=120)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert not any(ch in listed.stdout for ch in "│┃━─┏┡└"), listed.stdout
    assert all(line.count("\t") == 6 and line == line.strip() for line in lines), lines
    rows = {line.split("\t")[2]: line.split("\t") for line in lines}
    assert rows["facebook/musicgen-small"][:2] == ["musicgen-small", "music"]
    assert rows["facebook/musicgen-small"][5] == "yes" and rows["facebook/musicgen-small"][6].endswith("KB")
    assert rows["facebook/musicgen-medium"][5] == "no" and rows["facebook/musicgen-medium"][6] == "-"
    assert "name\tside\tid\tdownload\tlicence\tcached\ton disk" not in listed.stdout
    assert str(tmp_path) in listed.stderr and "name, side, id, download, licence, cached, on disk" in listed.stderr
