"""Options belong to their backend: a flag the chosen model does not take is an error naming it (issue #14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from manga2music.cli.app import app
from manga2music.composers.builtin import BuiltinComposer
from manga2music.composers.musicgen import MusicgenComposer
from manga2music.describers.openai_chat import OpenAIDescriber
from manga2music.describers.transformers_vlm import TransformersDescriber
from manga2music.errors import InputError
from manga2music.registry import resolve
from openai_server import openai_server  # noqa: F401  (a fixture)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("args,flag,model", [
    (("run", "--music-model", "builtin", "--vision-model", "builtin", "--top-k", "50"), "--top-k", "builtin"),
    (("run", "--vision-model", "builtin", "--music-model", "builtin", "--detail", "high"), "--detail", "builtin"),
    (("compose", "--model", "builtin", "--text", "calm", "--guidance-scale", "4"), "--guidance-scale", "builtin"),
    (("describe", "--model", "builtin", "--timeout", "5"), "--timeout", "builtin"),
    (("describe", "--model", "builtin", "--seed", "3"), "--seed", "builtin"),  # was ignored: nothing samples
])
def test_a_flag_the_chosen_model_does_not_take_is_one_line_naming_it(tmp_path, args, flag, model):
    command, *rest = args
    target = [] if command == "compose" else [SAMPLES / "calm"]
    result = invoke(command, *target, "-o", tmp_path / "out", *rest)
    assert result.exit_code == 2, result.output
    assert f"{flag} does not apply to {model}" in result.output
    assert not (tmp_path / "out").exists()  # refused before any work


def test_device_for_builtin_models_says_so(tmp_path):
    result = invoke("run", SAMPLES / "calm", "-o", tmp_path / "out", "--vision-model", "builtin",
                    "--music-model", "builtin", "--device", "cpu")
    assert result.exit_code == 2 and "--device does not apply to the chosen models" in result.output


@pytest.mark.parametrize("given, flags", [
    (("run", SAMPLES / "calm", "--duration", "1", "--device", "cpu", "--precision", "fp32"), "--device, --precision"),
    (("compose", "--text", "calm piano", "--duration", "1", "--device", "auto"), "--device"),
    (("describe", SAMPLES / "calm", "--device", "cpu"), "--device"),
    (("describe", SAMPLES / "calm", "--seed", "3"), "--seed"),
    (("run", SAMPLES / "calm", "--duration", "1", "--base-url", "http://127.0.0.1:9/v1"), "--base-url")])
def test_a_flag_for_a_model_auto_did_not_pick_is_said_not_refused(tmp_path, given, flags):
    """A script with `--device cuda` ran on a machine with the weights and failed with exit 2 ("--device does not
    apply to builtin") wherever auto fell back to builtin (no weights, offline): even `--device auto` did."""
    result = invoke(*given, "-o", tmp_path / "out", "--offline")
    assert result.exit_code == 0, result.output
    assert f"{flags}: not used by builtin, which auto picked on this machine" in result.output, result.output
    if flags == "--base-url":  # a server given without its model: the way to use it
        assert "name it (--vision-model NAME)" in result.output


def test_a_flag_for_a_model_kept_from_the_output_folder_says_it_was_kept_not_picked_by_auto(tmp_path):
    """`run LIB -o OUT --device cpu` after a builtin run into OUT: builtin is kept as the sections there were made,
    and the line said "--device: not used by builtin, which auto picked on this machine": auto picked nothing."""
    out = tmp_path / "out"
    assert invoke("run", SAMPLES / "calm", "-o", out, "--duration", "1", "--vision-model", "builtin",
                  "--music-model", "builtin").exit_code == 0
    result = invoke("run", SAMPLES / "calm", "-o", out, "--device", "cpu", "--offline")
    assert result.exit_code == 0, result.output
    assert "--device: not used by builtin, kept as the output folder's sections were made" in result.output, \
        result.output
    assert "auto picked" not in result.output


@pytest.mark.parametrize("given, flag", [
    (("run", SAMPLES / "calm", "--top-k", "50"), "--top-k"),
    (("run", SAMPLES / "calm", "--max-new-tokens", "300"), "--max-new-tokens"),
    (("compose", "--text", "calm piano", "--guidance-scale", "3"), "--guidance-scale"),
    (("describe", SAMPLES / "calm", "--chunk-size", "2"), "--chunk-size")])
def test_the_same_command_twice_with_a_models_own_flag_does_the_same_the_second_time(tmp_path, given, flag):
    """`run CH --top-k 50` said "--top-k: not used by builtin, which auto picked" and made the tracks; the same
    command again failed with exit 2, "--top-k does not apply to builtin (the music model)": builtin, never named,
    was kept as the sections there were made, and a kept model's own flags were refused as a named model's are."""
    out = tmp_path / "out"
    first = invoke(*given, "--duration", "1", "-o", out, "--offline") if given[0] != "describe" else \
        invoke(*given, "-o", out, "--offline")
    assert first.exit_code == 0, first.output
    assert f"{flag}: not used by builtin, which auto picked on this machine" in first.output, first.output
    again = invoke(*given, "-o", out, "--offline")
    assert again.exit_code == 0, again.output
    assert f"{flag}: not used by builtin, kept as the output folder's sections were made" in again.output, \
        again.output


@pytest.mark.parametrize("given, said", [
    (("--vision-device", "cuda"), "--vision-device: not used by builtin, which auto picked on this machine"),
    (("--music-device", "cpu"), "--music-device: not used by builtin, which auto picked on this machine"),
    (("--vision-device", "cuda", "--vision-model", "builtin"), "--vision-device does not apply to builtin"),
    (("--music-device", "cuda", "--music-model", "builtin"), "--music-device does not apply to builtin"),
    (("--vision-device", "tpu"), "--vision-device 'tpu': use auto, cpu, cuda"),  # not pydantic's "Value error, use"
    (("--music-device", "tpu"), "--music-device 'tpu': use auto, cpu, cuda"),
    (("--vision-device", "cuda", "--vision-model", "llava-0.5b", "--music-model", "builtin"),
     "--vision-device cuda asked, but CUDA is not usable here")])
def test_a_one_side_device_flag_is_named_as_typed(tmp_path, given, said):
    """`run --vision-device cuda` where builtin runs said "--device: not used by builtin", and with builtin named,
    "drop --device": a flag the user never typed (and dropping --device would not help)."""
    result = invoke("run", SAMPLES / "calm", "-o", tmp_path / "out", "--duration", "1", "--offline", *given)
    assert said in result.output, result.output
    assert "--device" not in result.output.replace(given[0], ""), result.output


def test_a_local_vlm_does_not_take_openai_only_options():
    with pytest.raises(InputError, match="^detail does not apply to llava-0.5b"):
        TransformersDescriber("llava-0.5b", {"detail": "high"})
    with pytest.raises(InputError, match="^precision='fp8'"):
        TransformersDescriber("llava-0.5b", {"precision": "fp8"})
    d = TransformersDescriber("llava-0.5b", {"device": "CPU", "chunk_size": 4})
    assert d.options.device == "cpu" and d.options.chunk_size == 4 and d.options.max_new_tokens == 512


def test_each_backend_declares_its_own_options():
    assert "top_k" in MusicgenComposer.Options.model_fields and "top_k" not in BuiltinComposer.Options.model_fields
    assert "detail" in OpenAIDescriber.Options.model_fields
    assert "detail" not in TransformersDescriber.Options.model_fields
    assert "device" in TransformersDescriber.Options.model_fields
    assert MusicgenComposer("facebook/musicgen-small").options.top_k == 250  # the original MusicGen default


def test_vision_and_music_devices_reach_their_own_models(tmp_path):
    """--vision-device and --music-device: each side gets its own; --device goes to both that take it."""
    from manga2music.cli.flags import run_config

    flags = {"output": tmp_path, "force": False, "wait": False, "offline": False, "device": "cuda",
             "vision_device": "cpu", "music_device": None, "precision": "bf16"}
    cfg = run_config(flags, side=None)
    assert cfg.side_options("vision", TransformersDescriber.Options) == {"device": "cpu", "precision": "bf16"}
    assert cfg.side_options("music", MusicgenComposer.Options) == {"device": "cuda", "precision": "bf16"}
    assert cfg.side_options("music", BuiltinComposer.Options) == {}


def test_json_manifest_still_reports_the_chosen_names(tmp_path):
    result = invoke("run", SAMPLES / "calm", "-o", tmp_path / "out", "--vision-model", "builtin",
                    "--music-model", "builtin", "--duration", "1", "--json")
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["sections"][0]
    assert (entry["vision_model"], entry["music_model"]) == ("builtin", "builtin")


# --- one resolver, explicit rules ---------------------------------------------------------------------


def test_a_misspelt_music_model_is_the_one_line_before_auto_says_anything(tmp_path):
    """`run --music-model musicgen-smal` printed a long line on what auto chose for the vision model, then the
    error: the mistake is said first, alone."""
    from output_checks import cli

    result = cli("run", SAMPLES / "calm", "-o", tmp_path / "out", "--music-model", "musicgen-smal", "--offline")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Error: unknown music model 'musicgen-smal' (did you mean musicgen-small?)"), \
        result.stderr
    assert "vision model:" not in result.stderr and not (tmp_path / "out").exists()


def test_a_misspelt_known_hub_id_is_refused_with_the_right_one():
    from manga2music.errors import UnknownModelError
    from manga2music.registry import resolve

    with pytest.raises(UnknownModelError) as err:
        resolve("facebook/musicgen-smal", "music")
    assert "did you mean facebook/musicgen-small" in err.value.message
    assert resolve("hf:facebook/musicgen-smal", "music").model_id == "facebook/musicgen-smal"  # forced: taken as is
    assert resolve("someone/my-finetune", "music").backend == "musicgen"  # unknown owners are not second-guessed


def test_rule_order_is_explicit_and_documented():
    from manga2music.registry import RESOLVE_RULES, resolve

    assert [why.split(":")[0] for why, _ in RESOLVE_RULES][:2] == ["a short name or a known Hub id (the table above)",
                                                                   "BACKEND"]
    # with a base URL, a vLLM-style Hub id is that server's model; hf: keeps it a local Hub model
    assert resolve("Qwen/Qwen2-VL-7B-Instruct", "vision", base_url="http://127.0.0.1:8000/v1").backend == "openai"
    assert resolve("hf:Qwen/Qwen2-VL-7B-Instruct", "vision",
                   base_url="http://127.0.0.1:8000/v1").backend == "transformers-vlm"
    assert resolve("llava-0.5b", "vision", base_url="http://127.0.0.1:8000/v1").backend == "transformers-vlm"


def test_openai_names_beyond_the_two_listed_are_the_openai_api(openai_server, monkeypatch):  # noqa: F811
    """`gpt-4o-2024-08-06` (a dated snapshot the price table knows) and newer OpenAI models were "unknown vision
    model": they are the OpenAI API's, priced when known; a typo of a listed name is still one."""
    from manga2music.errors import UnknownModelError

    spec = resolve("gpt-4o-2024-08-06", "vision")
    assert (spec.backend, spec.model_id) == ("openai", "gpt-4o-2024-08-06")
    assert resolve("o3-mini", "vision").backend == "openai"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-1234")
    result = OpenAIDescriber("gpt-4o-2024-08-06", {"base_url": openai_server.url}).describe(
        [__import__("test_openai_describer").line_art("1.png")])
    assert result.cost_usd is not None and openai_server.requests[0].body["model"] == "gpt-4o-2024-08-06"
    with pytest.raises(UnknownModelError, match="did you mean gpt-4o"):
        resolve("gpt4o", "vision")


def test_an_unknown_short_name_suggests_the_closest():
    result = invoke("run", SAMPLES / "calm", "--music-model", "musicgen-smal", "--vision-model", "builtin")
    assert result.exit_code == 2 and "did you mean musicgen-small" in result.output


def test_a_short_name_typed_in_another_case_is_that_model(tmp_path):
    """`--music-model Builtin` said "Builtin is a vision model, not a music model" (and `--vision-model Builtin`
    that it is a music model): builtin is on both sides.  A short name in any case is the model."""
    made = invoke("run", SAMPLES / "calm", "-o", tmp_path / "out", "--vision-model", "BUILTIN", "--music-model",
                  "Builtin", "--duration", "1")
    assert made.exit_code == 0, made.output
    record = json.loads((tmp_path / "out" / "calm.json").read_text(encoding="utf-8"))
    assert record["compose"]["model"] == "builtin" and record["describe"]["model"] == "builtin"
    from manga2music.registry import hub_repo

    assert hub_repo("MusicGen-Small") == "facebook/musicgen-small"  # `models pull` / `models rm` take it too
    other = invoke("compose", "--text", "rain", "-o", tmp_path / "c", "--model", "LLaVA-0.5b")
    assert other.exit_code == 2 and "llava-0.5b is a vision model, not a music model" in other.output, other.output


def test_commercial_refuses_a_named_non_commercial_composer_and_records_the_licence(tmp_path):
    refused = invoke("run", SAMPLES / "calm", "-o", tmp_path / "a", "--vision-model", "builtin",
                     "--music-model", "musicgen-small", "--commercial")
    assert refused.exit_code == 2 and "cc-by-nc-4.0" in refused.output and not (tmp_path / "a").exists()
    ok = invoke("run", SAMPLES / "calm", "-o", tmp_path / "b", "--vision-model", "builtin", "--music-model", "builtin",
                "--commercial", "--duration", "1")
    assert ok.exit_code == 0, ok.output
    record = json.loads((tmp_path / "b" / "calm.json").read_text(encoding="utf-8"))
    assert record["compose"]["licence"] == "mit+gpl-2.0" and record["compose"]["commercial"] is True
    from manga2music.audio import read_tags

    assert read_tags(tmp_path / "b" / "calm.wav")["licence"] == "mit+gpl-2.0"


@pytest.mark.parametrize("given, said", [
    (("run", SAMPLES / "calm", "--device", "tpu"), "--device 'tpu'"),
    (("run", SAMPLES / "calm", "--precision", "fp8"), "--precision 'fp8'"),
    (("compose", "--text", "calm piano", "--batch-size", "0"), "--batch-size 0"),
    (("describe", SAMPLES / "calm", "--device", "gpu"), "--device 'gpu'")])
def test_a_bad_value_for_a_model_auto_did_not_pick_is_still_refused(tmp_path, given, said):
    """`--device tpu` passed with a warning wherever auto picked builtin, and failed with exit 2 only on a machine
    where auto picked MusicGen: a typo in a script must fail on every machine."""
    result = invoke(*given, "-o", tmp_path / "out", "--offline")
    assert result.exit_code == 2, result.output
    assert said in result.output, result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("config, flag_said, field_said", [
    ({"duration": 0}, "--duration must be a number of seconds above 0", "duration must be a number of seconds above 0"),
    ({"duration": 4000}, "--duration 4000 is more than", "duration=4000 is more than"),
    ({"variations": 0}, "--variations must be between 1 and 100", "variations must be between 1 and 100"),
    ({"music_options": {"top_k": 5}}, "--top-k does not apply to builtin", "top_k does not apply to builtin"),
    ({"options": {"device": "tpu"}}, "--device 'tpu'", "device='tpu'"),
])
def test_a_message_names_the_setting_as_the_user_gave_it(tmp_path, config, flag_said, field_said):
    """A Python program that set ``RunConfig(duration=0)`` was told "--duration must be...", a flag it never gave;
    the command line is told the flag, the program the field."""
    from manga2music import RunConfig, run

    args = {"duration": ["--duration"], "variations": ["--variations"]}
    cli_args = [a for key, value in config.items() if key in args for a in (*args[key], str(value))]
    cli_args += [a for key in ("music_options", "options") for k, v in config.get(key, {}).items()
                 for a in ("--" + k.replace("_", "-"), str(v))]
    result = invoke("run", SAMPLES / "calm", "-o", tmp_path / "cli", "--music-model", "builtin", "--offline",
                    *cli_args)
    assert result.exit_code == 2 and flag_said in result.output, result.output
    with pytest.raises(InputError) as err:
        run([SAMPLES / "calm"], tmp_path / "api", music_model="builtin", config=RunConfig(offline=True, **config))
    assert field_said in err.value.message and "--" not in err.value.message + (err.value.hint or "")


@pytest.mark.parametrize("typed", ["{tmp}/models/not-there", "./not-there", "~/surely-not-a-folder-here-9f3"])
def test_a_model_path_that_is_not_there_is_said_to_be_missing(typed, tmp_path, monkeypatch):
    """`--vision-model /tmp/models/qwen` with a typo in the path said "unknown vision model" and listed the known
    names, as if a path were a name; the folder is what is missing."""
    from manga2music.errors import UnknownModelError
    from manga2music.registry import resolve

    monkeypatch.chdir(tmp_path)
    name = typed.format(tmp=tmp_path)
    for side in ("vision", "music"):
        with pytest.raises(UnknownModelError) as err:
            resolve(name, side)
        assert "no such folder" in err.value.message and "known models" not in err.value.message, err.value
        import os

        assert str(Path(os.path.expanduser(name)).resolve()) in err.value.message  # where it was looked for


def test_the_settings_said_to_have_no_flag_have_none_and_the_others_have_one():
    """A kept music setting the command line has no flag for was said "--steps 4, as the music there was made (give
    it to change)": `--steps` is "No such option".  options.NO_FLAG names those; this keeps it true."""
    from manga2music.api import KEPT_MUSIC_SETTINGS
    from manga2music.cli.app import app
    from manga2music.options import NO_FLAG
    from typer.main import get_command

    run = get_command(app).commands["run"]
    flags = {name for param in run.params for name in param.opts}
    for key in KEPT_MUSIC_SETTINGS:
        assert (f"--{key.replace('_', '-')}" in flags) == (key not in NO_FLAG), key
