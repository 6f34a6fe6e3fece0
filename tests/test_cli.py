"""The `manga2music` command through typer's CliRunner and as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from output_checks import cli, cli_env
from typer.testing import CliRunner

from manga2music import __version__
from manga2music.cli.app import app

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
runner = CliRunner()


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def test_version_and_help():
    assert invoke("--version").stdout.strip() == f"manga2music {__version__}"
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("run", "describe", "compose", "doctor", "models"):
        assert command in result.stdout
    run_help = invoke("run", "--help").stdout
    for flag in ("--output", "--vision-model", "--music-model", "--duration", "--format", "--device", "--seed",
                 "--force", "--save-artifact"):
        assert flag in run_help


def test_dash_h_is_help_for_every_command():
    """`manga2music -h` (and `run -h`, `models list -h`) said "No such option: -h"; most tools take it for help."""
    for command in ((), ("run",), ("score",), ("models",), ("models", "list"), ("ui",)):
        result = invoke(*command, "-h")
        assert result.exit_code == 0 and result.stdout == invoke(*command, "--help").stdout, (command, result.output)
        assert result.stdout.startswith(f"Usage: manga2music {' '.join(command)}".rstrip()), result.stdout


def test_help_names_arguments_in_words_not_python_types():
    """On a fresh install (typer 0.29) `run --help` read `Usage: manga2music run [OPTIONS] {paths}...`,
    `paths... <list[Path]>`, `--seed <int>` and `--loop <bool>`."""
    import re

    for command in ("run", "score", "describe", "compose"):
        shown = invoke(command, "--help").stdout
        usage = "[PATHS]..." if command == "compose" else "PATHS..."  # compose may take --text alone
        assert f"Usage: manga2music {command} [OPTIONS] {usage}" in shown, shown
        assert not re.search(r"<(list\[|int>|str>|float>|bool>|path>)", shown, re.IGNORECASE), shown
        assert "{paths}" not in shown
        # a path parser's own name (`-o, --output _GIVEN_PATH`, `--scenes _GIVEN_PATH`) for a value's name
        assert "-o, --output DIR" in shown and not re.search(r"\b_[A-Z_]+\b", shown), shown
    assert "--scenes FILE" in invoke("score", "--help").stdout


def test_the_python_api_is_listed_by_dir():
    """`dir(manga2music)` listed none of run, score, describe, compose (imported when first used), so a notebook's
    completion missed them."""
    import manga2music

    assert {"run", "score", "describe", "compose", "RunConfig", "Callbacks"} <= set(dir(manga2music))


def test_commercial_is_offered_by_every_command_whose_auto_picks_a_model(tmp_path):
    """`describe --commercial` was refused ("No such option"), though the README says --commercial keeps auto to
    models whose output may be used commercially on the vision side too (`auto` here suggested llava-0.5b, a
    research licence): `describe` takes it, and its auto then suggests an Apache-2.0 model."""
    for command in ("run", "score", "compose", "describe"):
        assert "--commercial" in invoke(command, "--help").stdout, command
    plain = invoke("describe", SAMPLES / "calm", "-o", tmp_path / "a", "--offline")
    kept = invoke("describe", SAMPLES / "calm", "-o", tmp_path / "b", "--offline", "--commercial")
    assert plain.exit_code == 0 and kept.exit_code == 0, (plain.output, kept.output)
    assert "llava-0.5b would run" in plain.output, plain.output
    assert "llava" not in kept.output and "smolvlm2-256m would run" in kept.output, kept.output


def test_a_commercial_run_whose_model_cannot_load_suggests_only_what_commercial_allows(tmp_path):
    """`compose --commercial --model stable-audio-open`, its weights not here: "...; musicgen-small would run on the
    CPU once its weights are pulled", a CC-BY-NC model that --commercial exists to keep out."""
    for model, other in (("stable-audio-open", None), ("ace-step", "stable-audio-open")):
        result = invoke("compose", "--text", "calm piano", "-o", tmp_path / model, "--commercial", "--model", model,
                        "--offline", env={"MANGA2MUSIC_CACHE": str(tmp_path / "empty-cache")})
        said = " ".join(result.output.split())
        assert result.exit_code == 1 and "weights not in" in said, said
        assert "musicgen" not in said and "name the model builtin for this run: it runs here now" in said, said
        if other:
            assert f"{other} would run on the" in said and "once its weights are pulled" in said, said


def test_a_flag_of_another_command_says_which_command_has_it():
    """`score --duration 5` said "No such option: --duration (Possible options: --transitions)", a flag that has
    nothing to do with length; `describe --music-model` offered the Ray flags.  The user meant a flag of a
    sibling command: say which commands take it, and the flag this command has for it where there is one."""
    duration = invoke("score", SAMPLES, "--duration", "5")
    assert duration.exit_code == 2
    assert "--duration is an option of run and compose" in duration.output
    assert "--transitions" not in duration.output
    music = invoke("describe", SAMPLES, "--music-model", "builtin")
    assert music.exit_code == 2 and "--music-model is an option of run, score and doctor" in music.output
    assert "--ray-cpus-per-model" not in music.output
    vision = invoke("compose", "--text", "calm piano", "--vision-model", "builtin")
    assert vision.exit_code == 2 and "its --model is the music model" in vision.output
    model = invoke("run", SAMPLES, "--model", "builtin")
    assert model.exit_code == 2 and "run takes --vision-model and --music-model" in model.output
    typo = invoke("run", SAMPLES, "--durration", "5")  # a typo: click's own suggestion stays
    assert typo.exit_code == 2 and "Possible options: --duration" in typo.output


def test_run_builtin_on_samples_json_manifest(tmp_path):
    out = tmp_path / "out"
    result = invoke("run", SAMPLES, "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
                    "--duration", "2", "--seed", "1", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert {e["name"]: e["status"] for e in manifest["sections"]} == {"action": "ok", "calm": "ok", "webtoon": "ok"}
    for name in ("action", "calm", "webtoon"):
        assert (out / f"{name}.txt").exists() and (out / f"{name}.json").exists() and (out / f"{name}.wav").exists()


def test_missing_path_is_one_line_and_exit_2(tmp_path):
    result = invoke("run", tmp_path / "nope", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "no such file or folder" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [["run", ""], ["run", "{pages}", "-o", ""], ["describe", ""],
                                  ["compose", "", "-o", "{out}"], ["score", "{pages}", "--scenes", ""]],
                         ids=["path", "output", "describe-path", "compose-path", "scenes"])
def test_an_empty_path_is_refused_not_read_as_the_current_folder(tmp_path, monkeypatch, args):
    """`run "$CHAPTER"` with the variable unset read every folder under the current one (a home folder's photos),
    and `-o "$OUT"` wrote tracks, records and a listening page into it, both with exit 0."""
    here = tmp_path / "home"
    shutil.copytree(SAMPLES / "calm", here / "Pictures" / "holiday")
    monkeypatch.chdir(here)
    before = sorted(p.relative_to(here) for p in here.rglob("*"))
    given = [a.format(pages=SAMPLES / "calm", out=tmp_path / "out") for a in args]
    result = invoke(*given, "--vision-model" if args[0] in ("run", "score") else "--model", "builtin")
    assert result.exit_code == 2, result.output
    assert "an empty path (an unset shell variable?)" in result.output
    assert sorted(p.relative_to(here) for p in here.rglob("*")) == before and not (tmp_path / "out").exists()


def test_no_images_exit_2_names_what_was_looked_for(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    result = invoke("describe", tmp_path / "docs", "-o", tmp_path / "out", "--model", "builtin")
    assert result.exit_code == 2
    assert "no pages found" in result.output and "png" in result.output


def test_unknown_model_lists_the_known_ones(tmp_path):
    result = invoke("run", SAMPLES, "-o", tmp_path / "out", "--music-model", "musicgen-huge")
    assert result.exit_code == 2
    assert "musicgen-small" in result.output and "builtin" in result.output


def test_a_model_of_the_other_side_or_a_file_of_a_model_folder_is_said_so(tmp_path):
    """`compose --model llava-0.5b` (compose's --model names the music model; describe's the vision model) said
    "unknown music model 'llava-0.5b'", though `models list` lists it."""
    music = invoke("compose", "--text", "calm piano", "--model", "llava-0.5b", "-o", tmp_path / "a")
    assert music.exit_code == 2 and "unknown" not in music.output, music.output
    assert "llava-0.5b is a vision model, not a music model" in " ".join(music.output.split()), music.output
    by_id = invoke("compose", "--text", "calm piano", "--model", "llava-hf/llava-interleave-qwen-0.5b-hf", "-o",
                   tmp_path / "a")  # its Hub id: it was offered for download, as a music model
    assert by_id.exit_code == 2 and "is a vision model, not a music model" in " ".join(by_id.output.split()), \
        by_id.output
    vision = invoke("describe", SAMPLES / "calm", "--model", "musicgen-small", "-o", tmp_path / "b")
    assert vision.exit_code == 2
    assert "musicgen-small is a music model, not a vision model" in " ".join(vision.output.split()), vision.output
    folder = tmp_path / "models" / "mg"  # a file of a model folder given for the folder: "unknown music model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    for name in ("config.json", "model.safetensors"):
        given = invoke("compose", "--text", "calm piano", "--model", folder / name, "-o", tmp_path / "c")
        said = " ".join(given.output.split())
        assert given.exit_code == 2 and f"{folder / name} is a file, not a model folder" in said, given.output
        assert str(folder) in said.split("not a model folder", 1)[1]


def test_a_guidance_scale_below_one_is_refused_in_one_line(tmp_path):
    """`--guidance-scale 0.5` was taken, then every MusicGen section failed with "IndexError: index out of range in
    self" from inside transformers' generate."""
    result = invoke("compose", "--text", "calm piano", "--model", "musicgen-small", "--guidance-scale", "0.5",
                    "-o", tmp_path / "out")
    assert result.exit_code == 2 and "IndexError" not in result.output, result.output
    assert "--guidance-scale" in result.output and "1" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_every_takes_recorded_seed_can_be_given_back(tmp_path):
    """`--seed 4294967295 --variations 2` made take 2 with seed 4294967296 and recorded it, and that seed given
    back to --seed was refused ("from 0 to 4294967295"): the take could not be made again.  The next take's seed
    goes round to 0, and `--seed 0` makes that take again."""
    made = invoke("compose", "--text", "calm piano", "--model", "builtin", "--seed", "4294967295", "--variations",
                  "2", "--duration", "1", "-o", tmp_path / "ok")
    assert made.exit_code == 0, made.output
    takes = json.loads((tmp_path / "ok" / "calm-piano.json").read_text())["compose"]["takes"]
    assert [t["seed"] for t in takes] == [4294967295, 0]
    again = invoke("compose", "--text", "calm piano", "--model", "builtin", "--seed", "0", "--duration", "1",
                   "-o", tmp_path / "again")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again" / "calm-piano.wav").read_bytes() == (tmp_path / "ok" / takes[1]["audio"]).read_bytes()


def test_failed_section_makes_exit_1_and_others_finish(tmp_path):
    root = tmp_path / "in"
    shutil.copytree(SAMPLES / "calm", root / "calm")
    (root / "broken").mkdir()
    (root / "broken" / "1.png").write_bytes(b"garbage")
    result = invoke("run", root, "-o", tmp_path / "out", "--vision-model", "builtin", "--music-model", "builtin",
                    "--duration", "1")
    assert result.exit_code == 1
    assert (tmp_path / "out" / "calm.wav").exists()
    assert "broken" in result.output


def test_debug_env_shows_the_traceback(tmp_path):
    result = invoke("run", tmp_path / "nope", env={"MANGA2MUSIC_DEBUG": "1"})
    assert result.exit_code != 0
    assert result.exception is not None and "no such file" in str(result.exception)


def test_compose_text_and_formats(tmp_path):
    out = tmp_path / "out"
    result = invoke("compose", "--text", "calm piano at 70 BPM", "-o", out, "--model", "builtin",
                    "--duration", "1.5", "--format", "flac")
    assert result.exit_code == 0, result.output
    assert (out / "calm-piano-at-70-bpm.flac").exists()
    bad = invoke("compose", "--text", "x", "-o", out, "--model", "builtin", "--format", "aiff")
    assert bad.exit_code == 2 and "unknown audio format" in bad.output


def test_a_stop_that_comes_once_everything_is_made_does_not_ask_to_resume(tmp_path, monkeypatch):
    """SIGTERM (or Ctrl-C) as a command ended, its chapter written whole and the manifest saying "ok": "Stopped
    (SIGTERM). Finished files are kept; run the same command again to resume", of a run with nothing left.  A stop
    with sections left still says so."""
    import manga2music.api as api

    real = api._finish
    ending = []

    def stopped_as_it_ends(*args, **kwargs):
        if not kwargs.get("stopped") and not kwargs.get("running") and ending:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "_finish", stopped_as_it_ends)
    ending.append(True)
    done = invoke("run", SAMPLES / "calm", "-o", tmp_path / "out", "--vision-model", "builtin", "--music-model",
                  "builtin", "--duration", "1")
    assert done.exit_code == 130, done.output
    assert "Everything this command was given was made first: nothing is left to resume" in done.output
    assert "run the same command again to resume" not in done.output
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["sections"][0]["status"] == "ok"


def test_drums_asked_for_or_refused_are_words_the_music_is_made_from(tmp_path):
    """`compose --text drums` said "no music words recognised in the description; used the default style", then
    played drums; the record's words never named the drums it acted on."""
    out = tmp_path / "out"
    result = invoke("compose", "--text", "drums", "--text", "calm piano without drums", "-o", out,
                    "--model", "builtin", "--duration", "1")
    assert result.exit_code == 0, result.output
    assert "no music words" not in result.output, result.output
    takes = {name: json.loads((out / f"{name}.json").read_text())["compose"]["takes"][0]["info"]
             for name in ("drums", "calm-piano-without-drums")}
    assert takes["drums"]["drums"] is True and "drums" in takes["drums"]["words"], takes
    quiet = takes["calm-piano-without-drums"]
    assert quiet["drums"] is False and "without drums" in quiet["words"] and "piano" in quiet["words"], quiet


def test_a_description_with_no_music_words_is_said_on_the_terminal(tmp_path):
    """Nonsense, or a binary file saved as .txt, was composed in the default style as "ok", and the one line saying
    so ("no music words recognised") was only inside the record."""
    out = tmp_path / "out"
    result = invoke("compose", "--text", "asdf qwer zxcv", "--text", "calm piano at 70 BPM", "-o", out,
                    "--model", "builtin", "--duration", "1")
    assert result.exit_code == 0, result.output
    assert "asdf-qwer-zxcv: no music words recognised in the description; used the default style" in result.output
    assert "calm-piano-at-70-bpm: no music words" not in result.output


def test_another_format_says_which_files_it_replaces(tmp_path):
    """--format flac on a rerun re-encoded the track and deleted the .wav a video timeline pointed at, without a
    word."""
    out = tmp_path / "out"
    assert invoke("compose", "--text", "calm piano", "-o", out, "--model", "builtin", "--duration", "1").exit_code == 0
    result = invoke("compose", "--text", "calm piano", "-o", out, "--model", "builtin", "--duration", "1",
                    "--format", "flac")
    assert result.exit_code == 0, result.output
    assert ("calm-piano: the same music as flac, not composed again; calm-piano.wav is replaced (--format wav brings "
            "it back)") in " ".join(result.output.split())
    assert not (out / "calm-piano.wav").exists() and (out / "calm-piano.flac").exists()


def test_the_record_gives_the_sample_rate_of_each_file_written(tmp_path):
    """Opus takes 48 kHz only: the builtin composer's 32 kHz is resampled, and the record must say 48000."""
    import soundfile

    for fmt in ("opus", "flac"):
        out = tmp_path / fmt
        result = invoke("compose", "--text", "calm piano at 70 BPM", "-o", out, "--model", "builtin",
                        "--duration", "1", "--format", fmt)
        assert result.exit_code == 0, result.output
        (take,) = json.loads((out / "calm-piano-at-70-bpm.json").read_text())["compose"]["takes"]
        assert take["sample_rate"] == soundfile.info(str(out / take["audio"])).samplerate == \
            {"opus": 48000, "flac": 32000}[fmt]


def test_each_text_given_is_a_track(tmp_path):
    """`--text A --text B` composed only B, without a word."""
    out = tmp_path / "out"
    result = invoke("compose", "--text", "calm piano at 70 BPM", "--text", "fast rock at 150 BPM", "--text",
                    "calm piano at 70 BPM", "-o", out, "--model", "builtin", "--duration", "1", "--json")
    assert result.exit_code == 0, result.output
    names = [e["name"] for e in json.loads(result.stdout)["sections"]]
    assert names == ["calm-piano-at-70-bpm", "calm-piano-at-70-bpm-2", "fast-rock-at-150-bpm"]
    assert json.loads((out / "fast-rock-at-150-bpm.json").read_text())["description"] == "fast rock at 150 BPM"


def test_description_files_of_one_name_from_two_folders_are_two_tracks(tmp_path):
    for folder, text in (("t1", "Calm flute, 70 BPM in F major"), ("t2", "Fast rock, 150 BPM in E minor, drums")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "song.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    result = invoke("compose", tmp_path / "t1" / "song.txt", tmp_path / "t2" / "song.txt", "-o", out,
                    "--model", "builtin", "--duration", "1", "--json")
    assert result.exit_code == 0, result.output
    assert [e["name"] for e in json.loads(result.stdout)["sections"]] == ["song", "song-2"]
    for name, text in (("song", "Calm flute"), ("song-2", "Fast rock")):
        assert json.loads((out / f"{name}.json").read_text())["description"].startswith(text)
        assert (out / f"{name}.wav").is_file()


def test_python_dash_m_works():
    result = subprocess.run([sys.executable, "-m", "manga2music", "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and __version__ in result.stdout


@pytest.mark.parametrize("command, extra_env", [
    (("--version",), {}),
    (("describe", "no-such-folder"), {}),  # a one-line error, exit 2
    (("run", "no-such-folder"), {"MANGA2MUSIC_DEBUG": "1"}),  # an exception left to the interpreter: traceback, 1
    (("run", SAMPLES / "calm", "-o", "out", "--offline", "--duration", "1", "--seed", "1", "--format", "flac"), {}),
])
def test_the_suites_forked_commands_say_and_exit_as_a_fresh_process_does(tmp_path, monkeypatch, command, extra_env):
    """``output_checks.cli`` forks its commands from a process with the slow libraries imported: what they print,
    exit with and write must be what a fresh ``python -m manga2music`` gives, or the suite tests something else."""
    results, made = {}, {}
    for fork in ("0", "1"):
        monkeypatch.setenv("M2M_TEST_FORK", fork)
        (tmp_path / fork).mkdir()
        monkeypatch.chdir(tmp_path / fork)
        result = cli(*command, env=cli_env(**extra_env))
        where = str(tmp_path / fork)
        results[fork] = (result.returncode, result.stdout.replace(where, "HERE"), _traceback_reduced_to_its_exception(
            result.stderr.replace(where, "HERE")))
        made[fork] = {p.relative_to(tmp_path / fork).as_posix(): p.read_bytes() for p in (tmp_path / fork).rglob("*")
                      if p.is_file() and p.suffix in {".flac", ".mid"}}
    assert results["1"] == results["0"]
    assert made["1"] == made["0"]  # the same seed makes the same music, byte for byte
    if command[0] == "run" and extra_env:
        assert results["1"][0] == 1 and "Traceback" in results["1"][2]
    if command[0] == "run" and not extra_env:
        assert results["1"][0] == 0 and made["1"]


def _traceback_reduced_to_its_exception(stderr: str) -> str:
    """A traceback's frames above our code are the harness's (runpy called from the fork server, or from Python's
    own start-up), so only its last line, the exception, is compared."""
    if "Traceback" not in stderr:
        return stderr
    return stderr.split("Traceback", 1)[0] + "Traceback ... " + stderr.rstrip().splitlines()[-1]


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from manga2music.cli.app import app; "
            "heavy = [m for m in ('torch', 'transformers', 'openai', 'numpy', 'gradio', 'ray') if m in sys.modules]; "
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(SAMPLES.parent)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_errors_the_readme_names_are_reachable_after_a_plain_import():
    """`import manga2music` then `except manga2music.errors.InputError`, as the README writes it: AttributeError
    ("errors") until some call had loaded the module."""
    code = ("import manga2music; print(manga2music.errors.InputError.__name__, manga2music.reading.read_pages.__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(SAMPLES.parent)})
    assert result.returncode == 0 and result.stdout.split() == ["InputError", "read_pages"], result.stderr


def test_the_step_bar_says_the_time_left_and_starts_afresh_with_each_step():
    """MusicGen on a CPU takes minutes a cue: the bar says how long is left at its pace.  A new step (the next
    batch of cues, the next window) starts its own estimate, even with the same number of steps."""
    import io

    from rich.console import Console

    from manga2music.cli._common import RunDisplay

    now = [0.0]
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    shown = []

    def steps(label: str, done: range, seconds_each: float) -> None:
        for k in done:
            display.step(k, 100, label)
            now[0] += seconds_each
        display.progress.refresh()
        shown.append(screen.getvalue().splitlines()[-1])

    with RunDisplay(quiet=False, console=console, clock=lambda: now[0]) as display:
        steps("decoding batch 1", range(0, 11), 1.0)  # 10 of 100 steps in 10 s
        steps("decoding batch 1", range(11, 101), 1.0)  # done
        steps("decoding batch 2", range(0, 11), 0.5)  # the next batch, twice as fast
    assert "about 0:01:30 left" in shown[0]  # 90 steps at 1 a second
    assert "left" not in shown[1]  # finished
    assert "decoding batch 2" in shown[2] and "about 0:00:45 left" in shown[2]  # its own pace: 90 at 2 a second
    assert " 0:00:05 " in shown[2]  # and its own time so far



def test_a_mistyped_folder_of_models_here_is_said_not_taken_for_a_download(tmp_path, monkeypatch):
    """`describe ch --model models/smoll` with the folder models/ here (holding smol): read as the Hub id
    owner/name, it was told that the Hub is unreachable, or to `models pull models/smoll`; the folder there, and the
    path to give for one of its models, are said first."""
    import json as json_module

    (tmp_path / "models" / "smol").mkdir(parents=True)
    (tmp_path / "models" / "smol" / "config.json").write_text(json_module.dumps({"model_type": "smolvlm"}))
    monkeypatch.chdir(tmp_path)
    result = invoke("describe", SAMPLES / "calm", "-o", tmp_path / "out", "--model", "models/smoll", "--offline")
    assert result.exit_code != 0
    said = " ".join(result.output.split())
    assert "models/ here is a folder of models (smol), but models/smoll is not one of them: for a folder, give its " \
           "path (./models/smol)" in said, said


def test_a_length_is_taken_as_minutes_and_seconds_as_the_scenes_file_takes_it(tmp_path):
    """`--duration 1:30` was "'1:30' is not a valid float", though the --scenes file takes lengths that way; a
    length that is neither is one line naming both forms."""
    import soundfile as sf

    made = cli("compose", "--text", "calm piano", "--duration", "0:03", "-o", tmp_path / "out")
    assert made.returncode == 0, made.stderr
    assert sf.info(str(tmp_path / "out" / "calm-piano.wav")).duration == pytest.approx(3.0, abs=0.01)

    refused = cli("compose", "--text", "calm piano", "--duration", "1:3x", "-o", tmp_path / "other")
    assert refused.returncode == 2
    assert "'1:3x' is not a length: give seconds (90) or minutes:seconds (1:30)" in refused.stderr
    assert not (tmp_path / "other").exists()


def test_a_run_into_a_folder_inside_the_output_folder_of_a_run_going_on_is_refused_or_waits(tmp_path):
    """`run S -o out` going on, then `run "S/Vol 1" -o "out/Vol 1"`: both ran and wrote the same files (the outer
    run's record said 60 s of music, the file held the inner run's 45 s).  The inner one is refused, or with --wait
    waits for the outer one; the lock file a finished run leaves refuses nothing."""
    import time

    from manga2music.lock import output_lock
    from output_checks import read_until, start_cli

    out, inner = tmp_path / "out", tmp_path / "out" / "Vol 1"
    made = ("--vision-model", "builtin", "--music-model", "builtin", "--duration", "1")
    with output_lock(out, command="run"):
        refused = cli("run", SAMPLES / "calm", "-o", inner, *made)
        assert refused.returncode == 2, refused.stderr
        assert f"{inner} is inside {out}, the output folder of another manga2music run going on now" in \
            " ".join(refused.stderr.split()), refused.stderr
        assert "pass --wait to queue behind it" in " ".join(refused.stderr.split()), refused.stderr
        assert not list(inner.glob("*.wav"))
        waiting = start_cli("run", SAMPLES / "calm", "-o", inner, *made, "--wait")
        said = read_until(waiting, "waiting for it to finish")
        assert "waiting for it to finish" in " ".join(said.split()), said
        time.sleep(1)
        assert waiting.poll() is None and not list(inner.glob("*.wav"))  # it waits for the outer run
    _, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, said + err
    assert (inner / "calm.wav").exists()
    again = cli("run", SAMPLES / "action", "-o", inner, *made)  # the outer run is over: its lock file is no run
    assert again.returncode == 0, again.stderr


def test_a_run_stopped_while_it_waits_for_another_says_it_made_nothing(tmp_path):
    """`run --wait` stopped (Ctrl-C, SIGTERM) while it queued behind another run of its folder said "Finished files
    are kept; run the same command again to resume": it had made nothing, and had nothing to resume."""
    import signal

    from manga2music.lock import output_lock
    from output_checks import read_until, start_cli

    out = tmp_path / "out"
    made = ("--vision-model", "builtin", "--music-model", "builtin", "--duration", "1", "--wait")
    with output_lock(out, command="run"):
        for signum, code, what in ((signal.SIGINT, 130, "Interrupted."), (signal.SIGTERM, 143, "Stopped (SIGTERM).")):
            waiting = start_cli("run", SAMPLES / "calm", "-o", out, *made)
            said = read_until(waiting, "waiting for it to finish")
            waiting.send_signal(signum)
            _, err = waiting.communicate(timeout=60)
            said = " ".join((said + err).split())
            assert waiting.returncode == code, said
            assert f"{what} It was still waiting for another manga2music run to finish: it made nothing, so nothing " \
                   "is left to resume." in said, said
            assert "run the same command again to resume" not in said
    assert not list(out.glob("*.wav"))


def test_a_run_into_a_folder_that_holds_the_output_folder_of_a_run_going_on_is_refused_or_waits(tmp_path):
    """The other way round: `run "S/Vol 1" -o "out/Vol 1"` going on, then `run S -o out`: the outer run went on
    and wrote the inner run's files too.  It is refused, or with --wait waits for the inner one.  A run whose
    sections go elsewhere in `out` goes on (test_a_run_leaves_alone_the_temporary_files_of_another_run_writing_into
    _a_subfolder)."""
    import shutil
    import time

    from manga2music.lock import output_lock
    from output_checks import read_until, start_cli

    series = tmp_path / "S"
    shutil.copytree(SAMPLES / "calm", series / "Vol 1" / "Chapter 1")
    out, inner = tmp_path / "out", tmp_path / "out" / "Vol 1"
    made = ("--vision-model", "builtin", "--music-model", "builtin", "--duration", "1")
    words = cli("describe", series, "-o", tmp_path / "words", "--model", "builtin")
    assert words.returncode == 0, words.stderr
    with output_lock(inner, command="run"):
        refused = cli("run", series, "-o", out, *made)
        assert refused.returncode == 2, refused.stderr
        assert f"{out} holds {inner}, the output folder of another manga2music run going on now" in \
            " ".join(refused.stderr.split()), refused.stderr
        composed = cli("compose", tmp_path / "words", "-o", out, "--model", "builtin", "--duration", "1")
        assert composed.returncode == 2 and f"{out} holds {inner}" in " ".join(composed.stderr.split()), \
            composed.stderr
        assert not list(out.rglob("*.wav"))
        waiting = start_cli("run", series, "-o", out, *made, "--wait")
        said = read_until(waiting, "waiting for it to finish")
        assert "waiting for it to finish" in " ".join(said.split()), said
        time.sleep(1)
        assert waiting.poll() is None and not list(out.rglob("*.wav"))  # it waits for the inner run
    _, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, said + err
    assert (inner / "Chapter 1.wav").exists()


def test_two_waiting_runs_into_a_folder_and_a_folder_inside_it_both_end(tmp_path):
    """`run S -o out --wait` holding `out` and waiting for `out/Vol 1`, and `run "S/Vol 1" -o "out/Vol 1" --wait`
    waiting for `out`: the inner run waited holding its own folder, so each waited for the other for ever.  A run
    waits for a folder above its own holding nothing."""
    import subprocess
    import sys

    from output_checks import read_until, start_cli

    out, inner = tmp_path / "out", tmp_path / "out" / "Vol 1"
    outer = subprocess.Popen(  # what `run S -o out --wait` does: its folder held, then the folders it writes into
        [sys.executable, "-c", "import sys, time; from pathlib import Path\n"
         "from manga2music.lock import output_lock, refuse_busy_folders_within\n"
         f"with output_lock(Path({str(out)!r})):\n"
         "    print('holding', flush=True); sys.stdin.readline()\n"
         f"    refuse_busy_folders_within(Path({str(out)!r}), [Path({str(inner)!r})], wait=20)\n"
         "    print('made', flush=True)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        assert outer.stdout.readline().strip() == "holding"
        first = start_cli("run", SAMPLES / "calm", "-o", inner, "--vision-model", "builtin", "--music-model",
                          "builtin", "--duration", "1", "--wait")
        said = read_until(first, "waiting for it to finish")
        assert "waiting for it to finish" in " ".join(said.split()), said
        outer_out, outer_err = outer.communicate("go\n", timeout=120)
        _, first_err = first.communicate(timeout=120)
    finally:
        for proc in (outer, locals().get("first")):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert outer.returncode == 0 and "made" in outer_out, outer_err
    assert first.returncode == 0 and (inner / "calm.wav").is_file(), said + first_err


def test_a_busy_output_folder_is_said_before_the_models_are_picked(tmp_path):
    """A run into a folder another run was writing said `auto`'s choice of both models (two long lines, after a
    look for the Hub) and only then that the folder was busy."""
    from manga2music.lock import output_lock

    out = tmp_path / "out"
    with output_lock(out, command="compose"):
        for command in ("run", "describe"):
            refused = cli(command, SAMPLES, "-o", out)
            assert refused.returncode == 2, refused.stderr
            assert refused.stderr.startswith(f"Error: {out} is being written by another manga2music run"), \
                refused.stderr
    # ... and before the lines saying which models the folder's sections keep
    made = cli("run", SAMPLES / "calm", "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
               "--duration", "1")
    assert made.returncode == 0, made.stderr
    with output_lock(out, command="compose"):
        for command in ("run", "describe", "score"):
            refused = cli(command, SAMPLES / "calm", "-o", out)
            assert refused.stderr.startswith(f"Error: {out} is being written by another manga2music run"), \
                refused.stderr
        refused = cli("compose", "--text", "calm piano", "-o", out)
        assert refused.stderr.startswith(f"Error: {out} is being written by another manga2music run"), refused.stderr


def test_names_and_paths_are_printed_as_they_are_not_as_emoji_or_markup(tmp_path):
    """rich read `:zero:` in "Re:Zero: skipping page" as an emoji ("Re0️⃣ skipping page"), `:new:` of an output
    folder as 🆕, and the output folder in "Listening page: ..." as markup: `[en]` was gone, and `o[/]x` failed a
    finished run with a traceback (exit 1, no results)."""
    samples = Path(__file__).resolve().parent.parent / "samples"
    chapter = tmp_path / "Re:Zero"
    shutil.copytree(samples / "calm", chapter)
    (chapter / "004.png").write_bytes(b"")
    for out in (tmp_path / "Manga [en]", tmp_path / "o[/]x:new:"):
        made = cli("run", chapter, "-o", out, "--duration", "1")
        said = " ".join(made.stderr.split())
        assert made.returncode == 0 and "Traceback" not in made.stderr, made.stderr
        assert "Re:Zero: skipping page 004.png" in said, made.stderr
        assert f"Listening page: {out / 'index.html'}" in said, made.stderr
        assert "\N{SQUARED NEW}" not in said and "0\N{VARIATION SELECTOR-16}" not in said


def test_an_output_folder_linked_to_a_share_not_mounted_is_said_so(tmp_path):
    """`-o` a link to a NAS folder not mounted was "a file is in the way of that folder": the user looked for a
    file and found none. It is said as a chapter's link to a share not mounted is."""
    samples = Path(__file__).resolve().parent.parent / "samples"
    link = tmp_path / "music"
    link.symlink_to(tmp_path / "nas-not-mounted" / "music")
    made = cli("run", samples / "calm", "-o", link, "--duration", "1")
    said = " ".join(made.stderr.split())
    assert made.returncode != 0 and "Traceback" not in made.stderr, made.stderr
    assert "which is not there (a drive or share not mounted?)" in said and "file is in the way" not in said, said
    assert not (tmp_path / "nas-not-mounted").exists()  # nothing made at the link's end
    inside = cli("run", samples / "calm", "-o", link / "manga", "--duration", "1")  # a folder in it: the same
    said = " ".join(inside.stderr.split())
    assert inside.returncode != 0 and "which is not there (a drive or share not mounted?)" in said, said


def test_models_pull_and_rm_of_a_local_model_folder_say_what_it_is(tmp_path):
    """`models pull models/mg`, a folder `compose --model models/mg` reads, tried to download "models/mg" from the
    Hub (`./models/mg`: "unknown model"), and `models rm models/mg` said it "is not in the cache"."""
    folder = tmp_path / "models" / "mg"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "musicgen"}', encoding="utf-8")
    env = cli_env(MANGA2MUSIC_CACHE=str(tmp_path / "cache"))
    for name in ("models/mg", "./models/mg"):
        pulled = subprocess.run([sys.executable, "-m", "manga2music", "models", "pull", name], cwd=tmp_path,
                                capture_output=True, text=True, env=env, timeout=60)
        assert pulled.returncode == 0, pulled.stderr
        assert "is a model folder on this machine: nothing to download" in pulled.stderr, pulled.stderr
        assert "downloading" not in pulled.stderr and "unknown model" not in pulled.stderr
    removed = subprocess.run([sys.executable, "-m", "manga2music", "models", "rm", "models/mg", "-y"], cwd=tmp_path,
                             capture_output=True, text=True, env=env, timeout=60)
    assert removed.returncode == 1 and "is a model folder on this machine, not in the model cache" in \
        " ".join(removed.stderr.split()), removed.stderr
    assert (folder / "config.json").is_file()  # nothing of it removed
    (tmp_path / "musicgen-small").mkdir()  # a folder named as a model of the list: the model is meant, as `run`
    (tmp_path / "musicgen-small" / "config.json").write_text("{}", encoding="utf-8")  # reads it
    named = subprocess.run([sys.executable, "-m", "manga2music", "models", "rm", "musicgen-small", "-y"],
                           cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert "model folder on this machine" not in named.stderr and "not in the cache" in named.stderr, named.stderr
