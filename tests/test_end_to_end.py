"""The whole command with real backends: an OpenAI-compatible server, tiny MusicGen and VLM folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from openai_server import openai_server  # noqa: F401  (fixture)
from typer.testing import CliRunner

from manga2music.audio import read_tags
from manga2music.cli.app import app

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
runner = CliRunner()
SECRET = "sk-test-0123456789abcdefSECRET"


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def test_run_with_a_local_openai_compatible_server_then_builtin_music(tmp_path, openai_server):  # noqa: F811
    out = tmp_path / "out"
    result = invoke("run", SAMPLES / "calm", SAMPLES / "action", "-o", out, "--base-url", openai_server.url,
                    "--vision-model", "llava:13b", "--music-model", "builtin", "--duration", "2",
                    "--save-artifact", "--json", env={"OPENAI_API_KEY": SECRET})
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert [e["status"] for e in manifest["sections"]] == ["ok", "ok"]
    assert all(e["vision_model"] == "llava:13b" for e in manifest["sections"])
    # stage 1 (pages) then stage 2 (text) per section: 2 sections x 2 requests
    bodies = openai_server.requests
    assert [bool(r.images) for r in bodies] == [True, False, True, False]
    assert len(bodies[0].images) == 3
    assert (out / "calm.analysis.json").exists()
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert record["describe"]["analysis"]["genre"] == "drama"
    assert record["describe"]["usage"]["prompt_tokens"] > 0
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in result.output


def test_what_a_server_got_wrong_is_said_on_the_terminal_not_only_in_the_record(tmp_path, openai_server):  # noqa: F811
    """A description cut off at the token limit was composed from, its warning only in NAME.json: nothing on the
    terminal, the manifest or the page.  A server without structured output is said once, not once a section."""
    from openai_server import DEFAULT_ANALYSIS, DEFAULT_DESCRIPTION, Reply

    openai_server.reject_json_schema = True
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Reply(DEFAULT_DESCRIPTION[:60], finish_reason="length"))
    result = invoke("run", SAMPLES / "calm", SAMPLES / "action", "-o", tmp_path / "out", "--base-url",
                    openai_server.url, "--vision-model", "my-vlm", "--music-model", "builtin", "--duration", "1")
    assert result.exit_code == 0, result.output
    assert "calm: stage 2: the description was cut off at the token limit" in result.output, result.output
    assert result.output.count("cut off") == 1  # action's description was whole
    assert result.output.count("does not support structured output") == 1


def test_a_servers_model_named_as_a_local_one_is_recorded_as_the_servers(tmp_path, openai_server):  # noqa: F811
    """`--vision-model openai:llava-0.5b --base-url URL` recorded its model as "llava-0.5b", the local model's name,
    which `run` then refuses with --base-url; and that refusal did not say that openai: is the way."""
    out = tmp_path / "out"
    result = invoke("run", SAMPLES / "calm", "-o", out, "--base-url", openai_server.url, "--vision-model",
                    "openai:llava-0.5b", "--music-model", "builtin", "--duration", "1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sections"][0]["vision_model"] == "openai:llava-0.5b"
    assert json.loads((out / "calm.json").read_text(encoding="utf-8"))["describe"]["model"] == "openai:llava-0.5b"
    assert {r.body["model"] for r in openai_server.requests} == {"llava-0.5b"}  # the name the server knows
    local = invoke("run", SAMPLES / "calm", "-o", out, "--base-url", openai_server.url, "--vision-model", "llava-0.5b")
    assert local.exit_code == 2 and "name it openai:llava-0.5b" in local.output


def test_the_sections_described_before_a_server_stops_the_run_get_their_music(tmp_path, openai_server):  # noqa: F811
    """A server that stops the run at its second section (no quota left) left the first one described, and paid
    for, with no track: it was in neither the manifest nor the listening page, and each rerun met the server's
    refusal before composing it. The sections described before the stop are composed (no server needed), then the
    run stops with the server's words."""
    from openai_server import DEFAULT_ANALYSIS, DEFAULT_DESCRIPTION, Fail, Reply

    out = tmp_path / "out"
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Reply(DEFAULT_DESCRIPTION), Fail(429, "You exceeded your current quota", type="insufficient_quota",
                                         retry_after_ms=None))
    stopped = invoke("run", SAMPLES / "action", SAMPLES / "calm", "-o", out, "--base-url", openai_server.url,
                     "--vision-model", "my-vlm", "--music-model", "builtin", "--duration", "1", "--json")
    assert stopped.exit_code == 1 and "quota" in stopped.output, stopped.output
    manifest = json.loads(stopped.stdout)
    assert {e["name"]: e["status"] for e in manifest["sections"]} == {"action": "ok", "calm": "failed"}, manifest
    assert sf.info(str(out / "action.wav")).duration == pytest.approx(1.0, abs=0.01)
    assert "action.wav" in (out / "index.html").read_text(encoding="utf-8")
    assert "composing the 1 section described before the describer stopped the run" in stopped.output


def test_a_run_the_server_stops_still_prints_its_manifest_with_json(tmp_path, openai_server):  # noqa: F811
    """`run --json` that a server stopped (a key it refused) printed nothing on stdout: a script reading it had no
    JSON at all, though the manifest on the disk named the section and why."""
    from openai_server import Fail

    openai_server.queue(Fail(401, "Incorrect API key provided", type="invalid_request_error"))
    stopped = invoke("run", SAMPLES / "calm", SAMPLES / "action", "-o", tmp_path / "out", "--base-url",
                     openai_server.url, "--vision-model", "my-vlm", "--music-model", "builtin", "--duration", "1",
                     "--json", env={"OPENAI_API_KEY": SECRET})
    assert stopped.exit_code == 1 and "rejected the API key" in stopped.output
    manifest = json.loads(stopped.stdout)
    assert [e["status"] for e in manifest["sections"]] == ["failed"] and "401" in manifest["sections"][0]["message"]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8")) == manifest
    openai_server.queue(Fail(401, "Incorrect API key provided", type="invalid_request_error"))  # and with the
    debug = invoke("run", SAMPLES / "calm", "-o", tmp_path / "out2", "--base-url", openai_server.url,  # traceback
                   "--vision-model", "my-vlm", "--music-model", "builtin", "--duration", "1", "--json",
                   env={"OPENAI_API_KEY": SECRET, "MANGA2MUSIC_DEBUG": "1"})
    assert debug.exit_code != 0 and "401" in json.loads(debug.stdout)["sections"][0]["message"]  # it printed none


def test_official_api_without_a_key_fails_before_any_work(tmp_path):
    result = invoke("describe", SAMPLES, "-o", tmp_path / "out", "--model", "gpt-4o-mini")
    assert result.exit_code == 1
    assert "OPENAI_API_KEY" in result.output and "--api-key-env" in result.output
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def tiny_musicgen_dir(tmp_path_factory) -> Path:
    from tiny_musicgen import build_tiny_musicgen

    return build_tiny_musicgen(tmp_path_factory.mktemp("models") / "tiny-musicgen")


@pytest.mark.slow
def test_compose_with_a_local_musicgen_folder_writes_a_tagged_mp3(tmp_path, tiny_musicgen_dir):
    out = tmp_path / "out"
    (tmp_path / "desc").mkdir()
    (tmp_path / "desc" / "battle.txt").write_text("epic orchestral battle, 150 BPM", encoding="utf-8")
    result = invoke("compose", tmp_path / "desc", "-o", out, "--model", tiny_musicgen_dir, "--duration", "1.5",
                    "--format", "mp3", "--seed", "3", "--offline")
    assert result.exit_code == 0, result.output
    info = sf.info(str(out / "battle.mp3"))
    assert abs(info.duration - 1.5) < 0.05
    tags = read_tags(out / "battle.mp3")
    assert tags["title"] == "battle" and "orchestral" in tags["comment"] and tags["seed"] == "3"
    # a rerun with the same settings skips
    again = invoke("compose", tmp_path / "desc", "-o", out, "--model", tiny_musicgen_dir, "--duration", "1.5",
                   "--format", "mp3", "--seed", "3", "--offline", "--json")
    assert json.loads(again.stdout)["sections"][0]["status"] == "skipped"


def test_a_plain_compose_after_an_edit_keeps_the_local_musicgen_the_music_was_made_with(tmp_path, tiny_musicgen_dir):
    """The README's edit-one-description-then-`compose` after a MusicGen run: the plain rerun went back to auto
    (builtin here), and composed every track again with it ("composing again: composer ... -> builtin"), minutes to
    hours of MusicGen on a CPU gone.  The model the music was made with is kept; only the edited track is made."""
    out, desc = tmp_path / "out", tmp_path / "desc"
    desc.mkdir()
    (desc / "battle.txt").write_text("epic orchestral battle, 150 BPM", encoding="utf-8")
    (desc / "rest.txt").write_text("calm piano at night, 70 BPM", encoding="utf-8")
    made = invoke("compose", desc, "-o", out, "--model", tiny_musicgen_dir, "--duration", "1", "--offline")
    assert made.exit_code == 0, made.output
    rest = (out / "rest.wav").read_bytes()
    (desc / "battle.txt").write_text("epic orchestral battle with taiko drums, 160 BPM", encoding="utf-8")
    again = invoke("compose", desc, "-o", out, "--offline", "--json")
    assert again.exit_code == 0, again.output
    assert f"--model {tiny_musicgen_dir}, as the music there was made" in " ".join(again.stderr.split())
    status = {s["name"]: s["status"] for s in json.loads(again.stdout)["sections"]}
    assert status == {"battle": "ok", "rest": "skipped"}, again.stderr
    assert (out / "rest.wav").read_bytes() == rest
    record = json.loads((out / "battle.json").read_text(encoding="utf-8"))
    assert record["compose"]["model"] == str(tiny_musicgen_dir) and "epic" in record["compose"]["description"]
    moved = tmp_path / "elsewhere"  # the model's folder moved since (as its records say): one line, nothing touched
    for name in ("rest", "battle"):
        data = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        data["compose"]["model"] = str(moved)
        (out / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    gone = invoke("compose", desc, "-o", out, "--offline")
    assert gone.exit_code == 2, gone.output
    assert f"the music there was made by the model in {moved}, which is no longer there" in \
        " ".join(gone.stderr.split()), gone.stderr
    assert (out / "rest.wav").read_bytes() == rest


def test_a_run_stopped_before_its_first_track_resumes_with_the_model_it_was_asked_for(tmp_path, tiny_musicgen_dir):
    """`run LIB --music-model ./tiny-musicgen` stopped before its first track was made (a first MusicGen track on a
    CPU takes minutes), then the plain rerun the stop line asks for: --duration was resumed as asked, the model
    was not (auto: builtin), and the resumed run's music was builtin's."""
    import manga2music
    from manga2music.jobs import Callbacks
    from manga2music.options import RunConfig

    out = tmp_path / "out"

    def stop(done, total, label):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manga2music.run([SAMPLES / "calm"], out, vision_model="builtin", music_model=str(tiny_musicgen_dir),
                        config=RunConfig(duration=1.0, offline=True), callbacks=Callbacks(step=stop))
    assert not (out / "calm.wav").exists()
    said = []
    manifest = manga2music.run([SAMPLES / "calm"], out, config=RunConfig(offline=True),
                               callbacks=Callbacks(log=lambda level, text: said.append(text)))
    assert [e["status"] for e in manifest["sections"]] == ["ok"], said
    assert json.loads((out / "calm.json").read_text(encoding="utf-8"))["compose"]["model"] == str(tiny_musicgen_dir)
    assert f"music_model={str(tiny_musicgen_dir)!r}, as the run stopped before was asked" in " ".join(said), said


def test_a_run_that_switched_the_music_model_stopped_part_way_resumes_with_the_model_it_was_asked_for(
        tmp_path, tiny_musicgen_dir):
    """`run S --music-model builtin`, then `run S --music-model ./tiny-musicgen` stopped after its first track:
    the plain rerun the stop line asks for was refused, "the music there was made by builtin and ...; a run without
    --music-model would make the others again with one of them", though the README says a stopped run's model is
    the rerun's.  It finishes the stopped run with its model."""
    import manga2music
    from manga2music.jobs import Callbacks
    from manga2music.options import RunConfig

    out = tmp_path / "out"
    sections = [SAMPLES / "calm", SAMPLES / "action"]
    manga2music.run(sections, out, vision_model="builtin", music_model="builtin", config=RunConfig(duration=1.0))

    def stop_after_the_first(done, total, label):  # once one track is the new model's
        if any(str(tiny_musicgen_dir) in p.read_text(encoding="utf-8") for p in out.glob("*.json")
               if p.name != "manifest.json"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manga2music.run(sections, out, vision_model="builtin", music_model=str(tiny_musicgen_dir),
                        config=RunConfig(duration=1.0, offline=True), callbacks=Callbacks(sections=stop_after_the_first))
    models = {n: json.loads((out / f"{n}.json").read_text(encoding="utf-8"))["compose"]["model"]
              for n in ("action", "calm")}
    assert sorted(models.values()) == sorted(["builtin", str(tiny_musicgen_dir)]), models  # one made, one left
    said = []
    manifest = manga2music.run(sections, out, config=RunConfig(offline=True),
                               callbacks=Callbacks(log=lambda level, text: said.append(text)))
    assert sorted(e["status"] for e in manifest["sections"]) == ["ok", "skipped"], said  # the one it made kept
    for name in ("action", "calm"):
        assert json.loads((out / f"{name}.json").read_text(encoding="utf-8"))["compose"]["model"] == \
            str(tiny_musicgen_dir)
    assert any(line.startswith(f"music_model={str(tiny_musicgen_dir)!r}, as the") for line in said), said


def test_a_score_that_switched_the_music_model_stopped_part_way_resumes_with_the_model_it_was_asked_for(
        tmp_path, tiny_musicgen_dir):
    """As for `run` (above): `score S --music-model ./tiny-musicgen` stopped while it composed its first chapter's
    cues, over scores made by builtin; the plain rerun was refused ("made by builtin and ..."). It makes both
    chapters' scores with the model the stopped score was asked for, the chapter it did not start too."""
    import manga2music
    from manga2music.jobs import Callbacks
    from manga2music.options import RunConfig

    out = tmp_path / "out"
    chapters = [SAMPLES / "calm", SAMPLES / "action"]
    manga2music.score(chapters, out, vision_model="builtin", music_model="builtin")

    def stop_once_a_cue_is_kept(done, total, label):
        if list((out / ".manga2music" / "cues").glob("*/settings.json")):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manga2music.score(chapters, out, vision_model="builtin", music_model=str(tiny_musicgen_dir),
                          config=RunConfig(offline=True), callbacks=Callbacks(step=stop_once_a_cue_is_kept))
    said = []
    manifest = manga2music.score(chapters, out, config=RunConfig(offline=True),
                                 callbacks=Callbacks(log=lambda level, text: said.append(text)))
    assert [e["status"] for e in manifest["sections"]] == ["ok", "ok"], said
    for name in ("action", "calm"):
        assert json.loads((out / f"{name}.json").read_text(encoding="utf-8"))["score"]["model"] == \
            str(tiny_musicgen_dir)
    assert f"music_model={str(tiny_musicgen_dir)!r}, as the run stopped before was asked" in " ".join(said), said


def test_an_uncached_musicgen_offline_is_one_clear_line(tmp_path):
    result = invoke("compose", "--text", "calm piano", "-o", tmp_path / "out", "--model", "musicgen-small",
                    "--offline")
    assert result.exit_code == 1
    assert "musicgen-small" in result.output and "models pull" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_describe_with_a_local_vlm_folder(tmp_path):
    from tiny_vlms import build_llava_interleave

    model = build_llava_interleave(tmp_path / "tiny-llava")
    out = tmp_path / "out"
    result = invoke("describe", SAMPLES / "calm", "-o", out, "--model", model, "--offline", "--seed", "1",
                    "--max-new-tokens", "8", "--json")
    # random weights answer gibberish: the section must fail cleanly (never a gibberish description)
    manifest = json.loads(result.stdout)
    entry = manifest["sections"][0]
    assert entry["vision_model"] and entry["status"] == "failed"
    assert "JSON" in entry["message"]
    assert not (out / "calm.txt").exists()
    assert result.exit_code == 1


def test_a_rate_limit_wait_is_said_in_a_log_too(tmp_path, openai_server):  # noqa: F811
    """Off a terminal (a run whose stderr goes to a log file) the bars are off, and with them the words saying that
    the server rate-limited the run and when it is asked again: the log stood still for up to two minutes a retry
    with no word why. Each wait is one line there."""
    from openai_server import DEFAULT_ANALYSIS, DEFAULT_DESCRIPTION, Fail, Reply

    openai_server.queue(Fail(429, "Rate limit reached", retry_after_ms=1200, type="requests"),
                        Reply(json.dumps(DEFAULT_ANALYSIS)), Reply(DEFAULT_DESCRIPTION))
    result = invoke("run", SAMPLES / "calm", "-o", tmp_path / "out", "--base-url", openai_server.url,
                    "--vision-model", "my-vlm", "--music-model", "builtin", "--duration", "1")
    assert result.exit_code == 0, result.output
    assert "rate-limited (429): retry 1 of 3 in 1 s" in result.stderr, result.stderr


@pytest.mark.parametrize("command", ["run", "describe"])
def test_a_run_a_refused_key_stopped_resumes_the_section_it_stopped_at_as_asked(tmp_path, openai_server, command):  # noqa: F811
    """A key refused at the second of three sections stopped the run: the stop's settings were kept for the third
    alone, so the plain rerun made the second "not in that run, as any new chapter" (another seed: other music from
    the same words); a stopped `describe` kept them for no section it had not started, and its plain rerun was
    refused ("made by builtin and my-vlm")."""
    from openai_server import DEFAULT_ANALYSIS, DEFAULT_DESCRIPTION, Fail, Reply

    series = tmp_path / "S"
    for name in ("Ch 1", "Ch 2", "Ch 3"):
        shutil.copytree(SAMPLES / "calm", series / name)
    out = tmp_path / "out"
    extra = ("--music-model", "builtin", "--duration", "1", "--seed", "5") if command == "run" else ()
    model = "--vision-model" if command == "run" else "--model"
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Reply(DEFAULT_DESCRIPTION),
                        Fail(401, "Incorrect API key provided", type="invalid_request_error"))
    stopped = invoke(command, series, "-o", out, "--base-url", openai_server.url, model, "my-vlm", *extra)
    assert stopped.exit_code == 1 and "API key" in stopped.output, stopped.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    key = "stopped_with" if command == "run" else "describe_stopped_with"
    assert manifest[key]["sections"] == ["Ch 2", "Ch 3"], manifest
    resumed = invoke(command, series, "-o", out, "--base-url", openai_server.url)
    assert resumed.exit_code == 0, resumed.output
    assert "as any new chapter" not in resumed.output, resumed.output
    records = {name: json.loads((out / f"{name}.json").read_text(encoding="utf-8")) for name in ("Ch 1", "Ch 2", "Ch 3")}
    assert {r["describe"]["model"] for r in records.values()} == {"my-vlm"}
    if command == "run":
        assert {r["compose"]["seed"] for r in records.values()} == {5}, records
