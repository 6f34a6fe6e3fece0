"""`manga2music doctor`: the Hub probe against local servers, the JSON schema, exit codes, start-up cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_hub import MUSICGEN_FILES, answer, fake_repo, local_http
from openai_server import openai_server  # noqa: F401  (a fixture)
from typer.testing import CliRunner

from manga2music.cli.app import app
from manga2music.doctor import DoctorJSON
from manga2music.hub import probe_hub

runner = CliRunner()


# --- the Hub probe ----------------------------------------------------------------------------------


def test_hub_probe_reachable_asks_one_head_request():
    with local_http(answer(200, b"[]")) as (url, seen):
        status = probe_hub(url, timeout=3)
    assert (status.checked, status.reachable, status.detail) == (True, True, "HTTP 200")
    assert seen == ["HEAD /api/models?limit=1"]


def test_hub_probe_server_error_is_unreachable():
    with local_http(answer(500)) as (url, _):
        status = probe_hub(url + "/", timeout=3)
    assert status.reachable is False and status.detail == "HTTP 500"


def test_a_mirror_that_wants_a_token_for_its_listing_is_still_reachable_but_a_refusal_is_not():
    """A mirror (HF_ENDPOINT) may answer the listing with 401 (it wants a token the probe does not send) or 404 (it
    has none) and still serve the files; huggingface.co itself never answers so: there, someone else does."""
    from manga2music.hub import hub_answered

    for code, mirror, official in ((200, True, True), (429, True, True), (401, True, False), (404, True, False),
                                   (403, False, False), (407, False, False), (500, False, False)):
        assert hub_answered(code, "http://mirror.example:8080") is mirror, code
        assert hub_answered(code, "https://huggingface.co") is official, code
    with local_http(answer(401)) as (url, _):
        assert probe_hub(url, timeout=3).reachable is True


def test_hub_probe_gives_up_at_the_timeout():
    def hang(req):
        time.sleep(3)

    with local_http(hang) as (url, _):
        start = time.monotonic()
        status = probe_hub(url, timeout=0.3)
        elapsed = time.monotonic() - start
    assert status.reachable is False and "timed out" in status.detail
    assert elapsed < 2


PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
                   "no_proxy")


@pytest.fixture
def no_proxy(monkeypatch):
    """Requests go straight to where they are sent, whatever proxy the machine running the tests is set up with."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_hub_probe_nothing_listening_says_so_in_words(no_proxy):
    """The reason is shown to the user ("the Hub is unreachable (...)" on every first run without a network): it was
    Python's "[Errno 111] Connection refused"."""
    with local_http(answer(200)) as (url, _):
        pass  # the server is gone once the block ends
    status = probe_hub(url, timeout=1)
    assert status.reachable is False and status.detail == "127.0.0.1 refused the connection", status.detail


def test_hub_probe_through_a_proxy_that_is_down_names_the_proxy(no_proxy, monkeypatch):
    """Behind a proxy, the connection refused is the proxy's: "huggingface.co refused the connection" would send the
    user to the wrong place."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        proxy = f"http://user:secret@127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    status = probe_hub("https://huggingface.invalid", timeout=3)
    assert status.reachable is False and status.detail == "the proxy 127.0.0.1 refused the connection", status.detail


def test_hub_probe_of_a_name_that_does_not_resolve_says_so_in_words(no_proxy):
    """On a machine without a network the first run said "the Hub is unreachable ([Errno -2] Name or service not
    known)". A name under .invalid never resolves (RFC 2606), with or without a network."""
    status = probe_hub("https://huggingface.invalid", timeout=3)
    assert status.reachable is False
    assert status.detail == "cannot look up huggingface.invalid: no network, or no such name", status.detail


# --- doctor --json -------------------------------------------------------------------------------------


def doctor_json(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["doctor", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def test_doctor_json_matches_the_schema_and_reports_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    with local_http(answer(200)) as (url, seen):
        monkeypatch.setenv("HF_ENDPOINT", url)
        code, data = doctor_json()
    assert code == 0
    report = DoctorJSON.model_validate(data)
    assert report.hub.reachable is True and report.hub.endpoint == url and len(seen) == 1
    assert report.cache_dir == str(tmp_path) and report.cache_source == "MANGA2MUSIC_CACHE"
    assert [(c.repo_id, c.name, c.complete) for c in report.cached] == [
        ("facebook/musicgen-small", "musicgen-small", True)]
    assert report.cached[0].size_bytes >= sum(len(v) for v in MUSICGEN_FILES.values())
    assert report.ram_total_gb > 0 and report.cpu_cores >= 1 and report.disk_free_gb > 0
    assert set(report.suggested) == {"vision", "music"}
    assert report.openai_key_set is False


def test_doctor_offline_never_touches_the_network(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with local_http(answer(200)) as (url, seen):
        monkeypatch.setenv("HF_ENDPOINT", url)
        code, data = doctor_json("--offline")
    assert code == 0 and seen == []
    assert data["hub"]["checked"] is False and data["offline"] is True
    # nothing cached, no network: builtin on both sides, and the reason says how to get weights
    assert data["suggested"]["music"]["model"] == "builtin"
    assert "models pull" in data["suggested"]["music"]["reason"]


def test_doctor_never_prints_the_key(monkeypatch):
    secret = "sk-test-" + "x" * 40
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    for args in (["doctor", "--json"], ["doctor"]):
        result = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 0 and secret not in result.output
    data = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    assert data["openai_key_set"] is True and data["openai_base_url"] == "http://127.0.0.1:11434/v1"
    assert "never picks GPT" in data["suggested"]["vision"]["reason"]


def test_asked_models_set_the_exit_code(tmp_path, monkeypatch):
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    fake_repo(tmp_path, "facebook/musicgen-small", MUSICGEN_FILES)
    code, data = doctor_json("--music-model", "musicgen-small", "--vision-model", "builtin")
    assert code == 0 and data["ok"] is True and all(c["ok"] for c in data["checks"])

    code, data = doctor_json("--vision-model", "gpt-4o-mini")  # no key, no base URL
    assert code == 1 and data["ok"] is False
    assert "OPENAI_API_KEY" in data["checks"][0]["reason"]

    result = runner.invoke(app, ["doctor", "--music-model", "musicgen-medium"])  # offline (conftest), not cached
    assert result.exit_code == 1
    assert "musicgen-medium cannot run here: weights not in" in result.stderr  # not "...: musicgen-medium: weights"
    (tmp_path / "empty-folder").mkdir()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["doctor", "--music-model", "./empty-folder"])  # its reason names it: once
    assert result.exit_code == 1
    assert "Error: ./empty-folder is a folder, but there is no model in it" in result.stderr, result.stderr

    code, data = doctor_json("--music-model", "no-such-model")
    assert code == 1 and "unknown music model" in data["checks"][0]["reason"]


def test_doctor_table_shows_the_suggestion(tmp_path, monkeypatch):
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    result = runner.invoke(app, ["doctor", "--offline"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.replace("\u2502", " ").split())  # table cells wrap: read it as one line
    vision = text[text.index("auto vision"):text.index("auto music")]
    assert vision.startswith("auto vision builtin:") and "manga2music models pull llava" in vision
    assert f"model cache {tmp_path}" in text
    assert "checked in" in text


def test_doctor_gives_memory_in_the_unit_it_measures(monkeypatch):
    """RAM and disk were shown as "23.6 GB" for 25.3 GB of RAM: the figures are GiB (1024**3 bytes)."""
    if not Path("/proc/meminfo").exists():
        pytest.skip("reads /proc/meminfo")
    total_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal:"))
    result = runner.invoke(app, ["doctor", "--offline"], env={"COLUMNS": "200"})
    text = " ".join(result.stdout.replace("\u2502", " ").split())
    ram = text[text.index("RAM"):text.index("model cache")]
    assert f"of {total_kib / 1024**2:.1f} GiB" in ram and " GB" not in ram


# --- start-up cost --------------------------------------------------------------------------------------

_IMPORT_CHECK = """
import sys
from typer.testing import CliRunner
from manga2music.cli.app import app
{invoke}
heavy = [m for m in ("torch", "transformers", "huggingface_hub", "openai", "numpy") if m in sys.modules]
print(",".join(heavy))
"""


def _heavy_imports(invoke: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _IMPORT_CHECK.format(invoke=invoke)], capture_output=True,
                         text=True, timeout=60, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_help_and_doctor_import_nothing_heavy():
    assert _heavy_imports("") == []
    assert _heavy_imports("CliRunner().invoke(app, ['doctor', '--offline', '--json'])") == []
    assert _heavy_imports("CliRunner().invoke(app, ['models', 'list', '--json'])") == []


def test_doctor_says_when_the_builtin_describer_cannot_detect_text(monkeypatch):
    """A broken or partial install still runs (pixels only), and doctor says what is missing."""
    code, data = doctor_json("--vision-model", "builtin")
    assert code == 0 and data["checks"][0]["warnings"] == []

    from manga2music.describers import text_detect

    monkeypatch.setattr(text_detect, "MODEL_FILE", "nothing.onnx")
    monkeypatch.setattr(text_detect, "model_path", lambda: (_ for _ in ()).throw(
        text_detect.TextDetectionError("the text detector's model is not installed; pip install 'rapidocr>=3.10,<4'")))
    code, data = doctor_json("--vision-model", "builtin")
    assert code == 0 and data["ok"] is True
    (warning,) = data["checks"][0]["warnings"]
    assert "text detection will be skipped" in warning and "pip install 'rapidocr" in warning


@pytest.mark.parametrize("broken", ["missing", "unimportable"])
def test_a_run_and_doctor_say_when_the_builtin_describer_reads_no_text(tmp_path, broken):
    """onnxruntime missing, or installed but failing to import (a wheel for another CPU, a broken upgrade): `run` and
    `score` said nothing (only each record held "no text reading"), and doctor said "ok" with no warning where the
    import failed.  Each says it once: the pages are then read from their pixels only."""
    shim = tmp_path / "shim"
    if broken == "missing":
        shim.mkdir()
        (shim / "sitecustomize.py").write_text("import sys\nsys.modules['onnxruntime'] = None\n")
    else:
        (shim / "onnxruntime").mkdir(parents=True)
        (shim / "onnxruntime" / "__init__.py").write_text("raise ImportError('DLL load failed: a CPU it was not "
                                                          "built for')\n")
    env = {**os.environ, "PYTHONPATH": str(shim), "MANGA2MUSIC_READING_CACHE": "off"}
    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    for command in (["run", samples, "-o", tmp_path / "out", "--duration", "1"],
                    ["score", samples, "-o", tmp_path / "scored"]):
        done = subprocess.run([sys.executable, "-m", "manga2music", *map(str, command), "--vision-model", "builtin",
                               "--music-model", "builtin"], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        said = " ".join(done.stderr.split())
        assert said.count("text detection will be skipped (onnxruntime") == 1, said
        assert "pages are read from their pixels only" in said
    doctor = subprocess.run([sys.executable, "-m", "manga2music", "doctor", "--offline", "--json", "--vision-model",
                             "builtin"], capture_output=True, text=True, env=env, timeout=120)
    (warning,) = json.loads(doctor.stdout)["checks"][0]["warnings"]
    assert warning.startswith("text detection will be skipped (onnxruntime"), warning


def test_doctor_says_when_titles_will_count_as_sound_effects(monkeypatch):
    """Without the recogniser's model the builtin describer still reads every page, but big titles and credits
    count as loud lettering again: doctor says so, and what to install."""
    from manga2music.describers import text_detect, text_recognition

    def missing(file, kind):
        raise text_detect.TextDetectionError("the text recogniser's model (x.onnx) is not installed; "
                                             "pip install 'rapidocr>=3.10,<4'")

    monkeypatch.setattr(text_recognition, "wheel_model", missing)
    code, data = doctor_json("--vision-model", "builtin")
    assert code == 0 and data["ok"] is True
    (warning,) = data["checks"][0]["warnings"]
    assert "titles and credits will count as loud lettering" in warning and "pip install 'rapidocr" in warning


def test_a_password_in_hf_endpoint_is_never_shown(tmp_path, monkeypatch):
    """HF_ENDPOINT=http://bob:PASSWORD@host (a private Hub mirror behind basic auth) was printed whole by doctor's
    table and JSON and by `models pull`'s "cannot download" line."""
    password = "Hunter2HubPass"
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("MANGA2MUSIC_OFFLINE", raising=False)
    with local_http(answer(200)) as (url, _):
        with_login = url.replace("http://", f"http://bob:{password}@")
        monkeypatch.setenv("HF_ENDPOINT", with_login)
        code, data = doctor_json()
        table = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
        pull = runner.invoke(app, ["models", "pull", "musicgen-small"])
    assert data["hub"]["endpoint"] == url.replace("http://", "http://***@")
    assert table.exit_code == 0 and "***@127.0.0.1" in table.output
    assert pull.exit_code != 0 and "musicgen-small" in pull.output
    for shown in (json.dumps(data), table.output, pull.output):
        assert password not in shown, shown


def test_model_folders_that_cannot_run_are_named_for_what_is_wrong_with_them(tmp_path):
    """doctor said "ok: ... can run here" for a MusicGen folder given as the vision model (describe then failed on
    transformers' "Multiple valid text configs") and for a folder without weights; a folder with no model in it
    was an "unknown vision model", and one whose config.json was cut short "not a vision-language model (None)"."""
    music = tmp_path / "musicgen"
    music.mkdir()
    (music / "config.json").write_text('{"model_type": "musicgen"}')
    (music / "model.safetensors").write_bytes(b"weights")
    no_weights = tmp_path / "noweights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text('{"model_type": "musicgen"}')
    not_a_model = tmp_path / "notmodel"
    not_a_model.mkdir()
    (not_a_model / "readme.txt").write_text("hi")
    broken = tmp_path / "brokencfg"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llava", ')
    for args, said in ((["--vision-model", str(music)], "not a vision-language model (its config.json says 'musicgen')"),
                       (["--music-model", str(no_weights)], "no weights"),
                       (["--vision-model", str(not_a_model)], "no model in it"),
                       (["--music-model", str(broken)], "config.json is not valid JSON")):
        code, data = doctor_json("--offline", *args)
        assert code == 1 and data["checks"][0]["ok"] is False, (args, data["checks"])
        assert said in data["checks"][0]["reason"], (said, data["checks"][0]["reason"])


def test_doctor_reads_a_servers_model_and_offline_as_run_does(tmp_path, openai_server):  # noqa: F811
    """With OPENAI_BASE_URL set, `doctor --vision-model llava:13b` said "unknown vision model" (run accepts it);
    `doctor --offline --vision-model gpt-4o-mini` said ok (run --offline refuses it).  And `--base-url` with the
    Hub id a vLLM server serves (`vllm serve Qwen/Qwen2-VL-2B-Instruct`) tried local weights instead."""
    from output_checks import cli, cli_env

    served = cli("doctor", "--vision-model", "llava:13b", env=cli_env(OPENAI_BASE_URL=openai_server.url))
    assert served.returncode == 0 and "unknown vision model" not in served.stdout + served.stderr
    offline = cli("doctor", "--offline", "--vision-model", "gpt-4o-mini", env=cli_env(OPENAI_API_KEY="sk-test-1234"))
    assert offline.returncode == 1 and "offline" in offline.stderr
    assert "OPENAI_API_KEY is set" not in offline.stdout  # nor is GPT suggested in the same table
    online = cli("doctor", "--vision-model", "builtin", env=cli_env(OPENAI_API_KEY="sk-test-1234", COLUMNS="400"))
    assert "OPENAI_API_KEY is set" in online.stdout
    # doctor had no --base-url: the route `run --base-url URL --vision-model OWNER/NAME` takes could not be checked
    routed = cli("doctor", "--base-url", openai_server.url, "--vision-model", "Qwen/Qwen2-VL-2B-Instruct", "--json")
    assert routed.returncode == 0, routed.stderr
    assert json.loads(routed.stdout)["checks"][0]["reason"].startswith(f"Qwen/Qwen2-VL-2B-Instruct via {openai_server.url}")
    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    run = cli("describe", samples, "-o", tmp_path / "out", "--model", "Qwen/Qwen2-VL-2B-Instruct", "--base-url",
              openai_server.url)
    assert run.returncode == 0, run.stderr
    assert [r.body["model"] for r in openai_server.requests] == ["Qwen/Qwen2-VL-2B-Instruct"] * 2


@pytest.mark.parametrize("body, kind", [
    ("<!doctype html><title>Open WebUI</title>", "text/html"),  # a web UI's address given as the API's
    ('{"models": [{"name": "llava"}]}', "application/json"),  # Ollama's own /api/tags shape
    ('{"data": {"id": "my-vlm"}}', "application/json"),
    ('{"object": "list", "data": [', "application/json"),  # cut short
], ids=["html", "other-json", "data-not-a-list", "cut-short"])
def test_doctor_says_in_one_line_when_the_model_list_is_not_an_openai_answer(openai_server, body, kind):  # noqa: F811
    """`doctor --base-url URL` crashed with a traceback (AttributeError, TypeError, JSONDecodeError) when GET
    /models answered 200 with a web page or JSON of another shape: the command meant to find a wrong URL."""
    from output_checks import cli

    openai_server.model_list_raw = (body, kind)
    result = cli("doctor", "--json", "--base-url", openai_server.url, "--vision-model", "my-vlm")
    assert "Traceback" not in result.stderr and result.returncode == 1, result.stderr[-1500:]
    check = json.loads(result.stdout)["checks"][0]
    assert not check["ok"] and "not an OpenAI-compatible answer" in check["reason"], check
    assert "/v1" in check["reason"]


def test_doctor_asks_the_server_whether_it_answers_and_has_the_model(openai_server):  # noqa: F811
    """`doctor --base-url URL --vision-model M` said "ok" without asking the server: with nothing listening, with a
    key it refuses, and for an ftp:// address that `run` refuses."""
    import socket

    from output_checks import cli, cli_env

    def check(*args, **env) -> tuple[int, dict]:
        result = cli("doctor", "--json", *args, env=cli_env(**env))
        return result.returncode, json.loads(result.stdout)["checks"][0]

    code, served = check("--base-url", openai_server.url, "--vision-model", "my-vlm")
    assert code == 0 and served["ok"] and "serves my-vlm" in served["reason"], served
    code, other = check("--base-url", openai_server.url, "--vision-model", "qwen2.5vl:7b")
    assert code == 0 and other["ok"]  # llama.cpp answers to any name: said, not failed
    assert any("does not list qwen2.5vl:7b" in w and "my-vlm" in w for w in other["warnings"]), other
    openai_server.models = ["llava:latest"]  # Ollama's name for `llava`, as the README's example names it
    code, tagged = check("--base-url", openai_server.url, "--vision-model", "llava")
    assert code == 0 and "serves llava" in tagged["reason"] and not tagged["warnings"], tagged
    openai_server.models = ["my-vlm", "llava:13b"]

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    code, unreachable = check("--offline", "--base-url", down, "--vision-model", "my-vlm")
    assert code == 1 and not unreachable["ok"] and "cannot reach" in unreachable["reason"], unreachable
    assert "is the server running?" in unreachable["reason"] and "after 0 retries" not in unreachable["reason"]
    assert "127.0.0.1 refused the connection" in unreachable["reason"], unreachable  # was the SDK's "Connection error."
    code, proxied = check("--base-url", down, "--vision-model", "my-vlm", HTTP_PROXY="http://proxy.invalid:3128")
    assert code == 1 and "127.0.0.1 refused the connection" in proxied["reason"], proxied  # a server here is
    # reached directly, never through the proxy: "the proxy proxy.invalid refused the connection" was not so

    code, bad = check("--base-url", "ftp://x", "--vision-model", "my-vlm")
    assert code == 1 and "not an http:// or https:// address" in bad["reason"]

    openai_server.model_list_status = 401
    code, refused = check("--base-url", openai_server.url, "--vision-model", "my-vlm", OPENAI_API_KEY="sk-test-12345")
    assert code == 1 and "rejected the API key" in refused["reason"] and "sk-test-12345" not in json.dumps(refused)

    openai_server.model_list_status, openai_server.models = 200, None  # a server without the route: it answered
    code, unlisted = check("--base-url", openai_server.url, "--vision-model", "my-vlm")
    assert code == 0 and unlisted["ok"] and any("does not list its models" in w for w in unlisted["warnings"])
    # the address without /v1 (Ollama's, vLLM's): no model list and no chat either there. It said "ok: it
    # answers", and run failed at its first page with "404 page not found"
    code, wrong = check("--base-url", openai_server.url.removesuffix("/v1"), "--vision-model", "my-vlm")
    assert code == 1 and not wrong["ok"] and "/v1" in wrong["reason"], wrong
    assert all(not r.body.get("messages") for r in openai_server.requests)  # no page went anywhere (an empty
    # request, refused)


@pytest.mark.parametrize("key, said", [("sk-proj-abc\u200bdef", "U+200B (ZERO WIDTH SPACE), character 12"),
                                       ("\u201csk-proj-abcdef\u201d", "U+201C (LEFT DOUBLE QUOTATION MARK), character 1")])
def test_a_key_with_a_character_no_request_can_carry_is_one_line_before_any_page(tmp_path, openai_server, key,  # noqa: F811
                                                                                 said):
    """A key pasted with a zero-width space or smart quotes: `doctor` ended in a 74-line traceback
    (UnicodeEncodeError ... header 'Authorization'), and `run` failed every section with "sent back something that
    is not an OpenAI-compatible answer (not JSON). Check --base-url", though nothing had been sent."""
    from output_checks import cli, cli_env

    env = cli_env(OPENAI_API_KEY=key)
    doctor = cli("doctor", "--base-url", openai_server.url, "--vision-model", "my-vlm", env=env)
    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    run = cli("run", samples, "-o", tmp_path / "out", "--vision-model", "my-vlm", "--music-model", "builtin",
              "--base-url", openai_server.url, env=env)
    for result in (doctor, run):
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert f"$OPENAI_API_KEY holds a character no request can carry: {said}" in result.stdout + result.stderr, \
            result.stdout + result.stderr
        assert "sk-proj" not in result.stdout + result.stderr  # the key itself is never shown
    assert "Check --base-url" not in run.stderr and not openai_server.requests


def test_a_long_model_folder_path_keeps_the_report_readable_at_80_columns(tmp_path):
    """`doctor --music-model /long/path/to/a/fine-tune` at 80 columns: the path was the label of its row, a column
    that never wraps, and every value was folded one letter a line (1117 lines instead of 30)."""
    import os
    import shutil

    from output_checks import cli_env

    import tempfile

    root = Path(tempfile.mkdtemp(dir="/tmp"))  # a path as long as a user's: the label 74 columns of the 80
    folder = root / ("musicgen-small-finetuned-anime-ost-v2-" + "x" * 60)[:60 - len(str(root)) - 1]
    folder.mkdir(parents=True)
    assert len(f"--music-model {folder}") == 74
    result = subprocess.run([sys.executable, "-m", "manga2music", "doctor", "--offline", "--music-model", str(folder)],
                            capture_output=True, text=True, env={**cli_env(), "COLUMNS": "80"}, timeout=120,
                            cwd=os.getcwd())
    assert result.returncode == 1, result.stderr
    shutil.rmtree(root)
    assert "--music-model" in result.stdout and len(result.stdout.splitlines()) < 80, result.stdout
    assert "Python 3" in result.stdout and "cannot run" in result.stdout, result.stdout  # the values are read


def test_a_server_too_slow_to_list_its_models_is_said_in_doctors_words(tmp_path):
    """A server that did not list its models within 3 s was "cannot run here: Server request timed out ... raise
    --timeout if it is only slow, or send fewer pages per request with --chunk-size": doctor has neither flag, and
    sent no page. It waits 10 s now, then says what happened."""
    import socket

    from output_checks import cli, cli_env

    with socket.socket() as quiet:  # takes the connection, never answers
        quiet.bind(("127.0.0.1", 0))
        quiet.listen(8)
        url = f"http://127.0.0.1:{quiet.getsockname()[1]}/v1"
        result = cli("doctor", "--json", "--base-url", url, "--vision-model", "my-vlm", env=cli_env())
    check = json.loads(result.stdout)["checks"][0]
    assert result.returncode == 1 and not check["ok"], check
    assert "did not answer within 10 s when asked for its models (no page was sent)" in check["reason"], check
    assert "--chunk-size" not in check["reason"] and "--timeout" not in check["reason"]
