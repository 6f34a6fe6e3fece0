"""Every flag of run/describe/compose, defined once, in groups; and the one place flags become a RunConfig.

A command is a plain function ``def run(**flags)`` whose signature :func:`with_flags`
builds from the groups it takes, so the three commands share one definition of
each flag instead of repeating ~30 parameters each.  Backend flags (``--top-k``,
``--detail``...) default to ``None``, meaning "not given": only the flags a user
gave reach the chosen backend's ``Options``, which refuses the ones it does not
take (see :mod:`manga2music.options`).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from typer.core import TyperCommand

from ..wording import listed

Opt = typer.Option


def _p(name: str, annotation, default=inspect.Parameter.empty, kind=inspect.Parameter.KEYWORD_ONLY):
    return inspect.Parameter(name, kind, annotation=annotation, default=default)


def _seconds(value: str) -> float:
    """A length as typed: seconds (``90``, ``12.5``, ``90s``) or minutes:seconds (``1:30``, ``0:01:30``), as the
    --scenes file takes; ``--duration 1:30`` was "not a valid float"."""
    from ..scenes import parse_length

    try:
        return float(value)  # the numbers the options check themselves (a negative one, 0, nan)
    except ValueError:
        seconds = parse_length(value)
    if seconds is None:
        raise typer.BadParameter(f"{value!r} is not a length: give seconds (90) or minutes:seconds (1:30)")
    return seconds


def _given_path(value: str) -> Path:
    """A path as typed; an empty one ("$CHAPTER" with the variable unset) is refused: Path("") is the current
    folder, so `run ""` read every folder under it and `-o ""` wrote into it."""
    if not value:
        raise typer.BadParameter("an empty path (an unset shell variable?)")
    text = os.fspath(value)  # a Path too: a default, or a program's own args
    if isinstance(text, str) and text.startswith("~") and not os.path.lexists(text):  # `-o "~/My Music"`: quoted,
        return Path(os.path.expanduser(text))  # the shell left the ~, and a folder "~" was made here ("everything is
        # in ~/My Music")
    return Path(value)


PATHS = [_p("paths", Annotated[list[Path], typer.Argument(
    parser=_given_path, help="Folders, images, comic archives (.cbz .zip .cbr .rar .cb7 .7z .cbt .tar), PDFs or EPUBs.",
    show_default=False, readable=False)],  # ours: one line
            kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)]
DESCRIPTION_PATHS = [_p("paths", Annotated[Optional[list[Path]], typer.Argument(
    parser=_given_path, help=".txt descriptions, or folders of them as describe writes.", show_default=False)], None,
    kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)]

RUN_MODELS = [
    _p("vision_model", Annotated[Optional[str], Opt("--vision-model", show_default=False, help="Describer: auto, builtin, gpt-4o, llava-0.5b, a Hub id or a folder. Left out: the model the output folder's sections were made with, else auto.")], None),
    _p("music_model", Annotated[Optional[str], Opt("--music-model", show_default=False, help="Composer: auto, builtin, musicgen-small, a Hub id or a folder. Left out: the model the output folder's sections were made with, else auto.")], None),
]
VISION_MODEL = [_p("vision_model", Annotated[Optional[str], Opt("--model", show_default=False, help="Describer: auto, builtin, gpt-4o, gpt-4o-mini, llava-0.5b, a Hub id or a folder. Left out: the model the output folder's sections were made with, else auto.")], None)]
MUSIC_MODEL = [
    _p("music_model", Annotated[Optional[str], Opt("--model", show_default=False, help="Composer: auto, builtin, musicgen-small|medium|large, musicgen-stereo-*, a Hub id or a folder. Left out: the model the output folder's sections were made with, else auto.")], None),
    _p("text", Annotated[Optional[list[str]], Opt("--text", help="Compose this description (give --text again for more tracks), besides any files.")], None),
]

OUTPUT = [
    _p("output", Annotated[Path, Opt("-o", "--output", parser=_given_path, metavar="DIR", help="Folder for descriptions, records and tracks.")], Path("output")),
    _p("force", Annotated[bool, Opt("--force", help="Redo every section, even unchanged ones.")], False),
    _p("offline", Annotated[bool, Opt("--offline", help="No network at all: cached weights only, no remote API.")], False),
    _p("download", Annotated[Optional[bool], Opt("--download/--no-download", show_default=False, help="Let `auto` download the models it picks (several GB), or never. Default: asked once in a terminal and remembered; no download without a terminal (MANGA2MUSIC_AUTO_DOWNLOAD=1 allows it). A model you name is downloaded either way.")], None),
    _p("wait", Annotated[bool, Opt("--wait", help="If another run is writing to the same output folder, wait for it instead of exiting.")], False),
    _p("json_output", Annotated[bool, Opt("--json", help="Print the manifest as JSON on stdout.")], False),
]
#: composers only (`describe` makes no music)
COMMERCIAL = [_p("commercial", Annotated[bool, Opt("--commercial", help="Only music you may publish commercially: auto picks ACE-Step/Stable Audio/builtin over MusicGen (CC-BY-NC), and a named non-commercial composer is refused.")], False)]
#: describe's: auto picks only a vision model whose licence lets its words be used commercially
VISION_COMMERCIAL = [_p("commercial", Annotated[bool, Opt("--commercial", help="Only models whose output you may use commercially: auto picks an Apache-2.0 vision model (Qwen2-VL, Qwen3-VL, SmolVLM2) or builtin.")], False)]
ARTIFACT = [_p("save_artifact", Annotated[bool, Opt("--save-artifact", help="Also write the stage-1 analysis as NAME.analysis.json.")], False)]
MUSIC = [
    _p("duration", Annotated[Optional[float], Opt("--duration", parser=_seconds, metavar="SECONDS", help="Track length in seconds, or minutes:seconds (1:30); at most 1800 s. Default: the length a section was made with before; for a new one, the folder's music's (or a stopped run's), else 10.", show_default=False)], None),
    _p("format", Annotated[Optional[str], Opt("--format", help="Audio format: wav, mp3, ogg, flac or opus. Default: the one the music there is in, else wav.", show_default=False)], None),
    _p("seed", Annotated[Optional[int], Opt("--seed", help="Make the music repeatable (under `run`, a local VLM's sampling too); recorded in each .json.")], None),
    _p("variations", Annotated[Optional[int], Opt("--variations", help="Takes per description (seed, seed+1, ...). Default: as many as a section was made with before; for a new one, as the folder's music has (or a stopped run's), else 1.", show_default=False)], None),
    _p("loop", Annotated[Optional[bool], Opt("--loop/--no-loop", show_default=False, help="Make tracks that loop seamlessly, or that end. Default: as the music there was made, else tracks that end.")], None),
    _p("normalize", Annotated[Optional[bool], Opt("--normalize/--no-normalize", show_default=False, help="Bring the music to -14 LUFS, or keep the model's level. Default: as the music there was made, else -14 LUFS.")], None),
]
SCORE_MUSIC = [
    _p("format", Annotated[Optional[str], Opt("--format", help="Audio format of the score and cues: wav, mp3, ogg, flac or opus. Default: the one the score there is in, else wav.", show_default=False)], None),
    _p("seed", Annotated[Optional[int], Opt("--seed", help="Make the score repeatable (recorded in the cue sheet).")], None),
    _p("normalize", Annotated[Optional[bool], Opt("--normalize/--no-normalize", show_default=False, help="Bring the score and its cues to -14 LUFS, or keep the model's level. Default: as the score there was made, else -14 LUFS.")], None),
    _p("reading_speed", Annotated[Optional[float], Opt("--reading-speed", help="How fast you read, against the estimate: 2 reads twice as fast (shorter cues), 0.5 half as fast; 0.05 to 20. The read-along page shows yours. Left out: the speed the chapter was scored at before, else 1.")], None),
    _p("longest_cue", Annotated[Optional[float], Opt("--longest-cue", parser=_seconds, metavar="SECONDS", help="Compose each cue at most this many seconds, or minutes:seconds (at least 8); a scene read for longer plays its cue once, then its seamless loop. Saves time with MusicGen on a CPU. Left out: the limit the chapter's score had before, else the composer's longest track (1800 lifts a limit).")], None),
    _p("scenes", Annotated[Optional[Path], Opt("--scenes", parser=_given_path, metavar="FILE", help="A text file listing the pages where scenes start (numbers from 1, or file names), one per line, each maybe followed by the scene's length for a video (45 or 1:30): `5 45`. A part of a webtoon episode saved as one tall image: `1 part 4`. Left out: the scenes given to the chapter's score before, else found in the pages; `--scenes auto`: found in the pages.")], None),
    _p("transitions", Annotated[Optional[str], Opt("--transitions", help="How a cue hands over to the next: crossfade (on the bar line), or continue (MusicGen carries the outgoing cue on into the next scene's music for a bar, then crossfades). Left out: as the chapter's last score, else crossfade.")], None),
]
VISION_SEED = [_p("seed", Annotated[Optional[int], Opt("--seed", help="Make a local VLM's or a server's sampling repeatable.")], None)]

# --- backend flags: None = not given (the backend's own default applies) ------------------------------
DEVICE = [
    _p("device", Annotated[Optional[str], Opt("--device", help="Where local models run: auto, cpu, cuda, cuda:N or mps (default auto: cuda, then mps, then cpu).")], None),
    _p("precision", Annotated[Optional[str], Opt("--precision", help="auto, fp32, fp16 or bf16 (default auto).")], None),
]
SIDE_DEVICES = [
    _p("vision_device", Annotated[Optional[str], Opt("--vision-device", help="--device for the vision model only (e.g. describe on the CPU, compose on the GPU).")], None),
    _p("music_device", Annotated[Optional[str], Opt("--music-device", help="--device for the music model only.")], None),
]
VISION_BACKEND = [
    _p("single_stage", Annotated[Optional[bool], Opt("--single-stage/--two-stage", show_default=False, help="Ask for the music description directly (no analysis stage); default two-stage.")], None),
    _p("chunk_size", Annotated[Optional[int], Opt("--chunk-size", help="Pages per model request (long chapters are chunked; default 8, fewer where a local model's context holds fewer).")], None),
    _p("detail", Annotated[Optional[str], Opt("--detail", help="OpenAI image detail: low, high or auto (default auto).")], None),
    _p("base_url", Annotated[Optional[str], Opt("--base-url", help="An OpenAI-compatible server, e.g. http://localhost:11434/v1 (Ollama); OPENAI_BASE_URL also works.")], None),
    _p("api_key_env", Annotated[Optional[str], Opt("--api-key-env", help="The environment variable that holds the API key (default OPENAI_API_KEY).")], None),
    _p("timeout", Annotated[Optional[float], Opt("--timeout", help="Seconds per API request before retrying (default 120).")], None),
    _p("trust_remote_code", Annotated[Optional[bool], Opt("--trust-remote-code", show_default=False, help="Allow a Hub model's own Python code to run (off unless given).")], None),
    _p("max_new_tokens", Annotated[Optional[int], Opt("--max-new-tokens", help="Cap on tokens a chat model writes per answer (default 512).")], None),
]
#: a score reads a chapter one way: --single-stage/--two-stage is refused in a line that says so (api.score), and
#: its help is not listed ("default two-stage" said it was taken)
SCORE_VISION_BACKEND = [_p("single_stage", Annotated[Optional[bool], Opt("--single-stage/--two-stage", hidden=True)],
                           None) if p.name == "single_stage" else p for p in VISION_BACKEND]
MUSIC_BACKEND = [
    _p("batch_size", Annotated[Optional[int], Opt("--batch-size", help="Tracks per MusicGen batch (default: from free memory).")], None),
    _p("top_k", Annotated[Optional[int], Opt("--top-k", help="MusicGen sampling: top-k (default 250).")], None),
    _p("top_p", Annotated[Optional[float], Opt("--top-p", help="MusicGen sampling: top-p (default 0 = off).")], None),
    _p("temperature", Annotated[Optional[float], Opt("--temperature", help="MusicGen sampling temperature (default 1.0).")], None),
    _p("guidance_scale", Annotated[Optional[float], Opt("--guidance-scale", help="Classifier-free guidance: MusicGen 1 to 50 (default 3.0; 1: none); the diffusion models 0 to 50 (their own defaults).")], None),
]

#: ``--ray`` given without an address (typer has no options with an optional value; see RayCommand)
RAY_HERE = "this-machine"
RAY = [
    _p("ray", Annotated[Optional[str], Opt("--ray", metavar="[ADDRESS]", help="Spread the sections over a Ray cluster (needs: pip install \"manga2music[ray]\"). Alone: the cluster this machine belongs to (`ray start`, RAY_ADDRESS), else a new one here; or auto, HOST:PORT, ray://HOST:10001. Files are written here.")], None),
    _p("ray_workers", Annotated[Optional[int], Opt("--ray-workers", help="Copies of each model on the cluster (default: as many as its GPUs, or CPUs, hold).")], None),
    _p("ray_gpus_per_model", Annotated[Optional[float], Opt("--ray-gpus-per-model", help="GPUs each copy of a local model reserves (default 1 on a cluster with GPUs; 0.5 puts two on a GPU).")], None),
    _p("ray_cpus_per_model", Annotated[Optional[float], Opt("--ray-cpus-per-model", help="CPUs each copy of a model reserves (default 1).")], None),
]


#: what a flag of `run` means under a command that has its own flag for it, or none
_ANOTHER_WAY = {
    ("describe", "--vision-model"): "describe's own model flag is --model, the vision model",
    ("compose", "--music-model"): "compose's own model flag is --model, the music model",
    ("compose", "--vision-model"): "compose makes music from descriptions; its --model is the music model",
    ("describe", "--music-model"): "describe makes no music",
    ("score", "--duration"): "score times each cue by how long its pages take to read: --reading-speed, --longest-cue",
    ("run", "--model"): "run takes --vision-model and --music-model",
    ("score", "--model"): "score takes --vision-model and --music-model",
}


class RayCommand(TyperCommand):
    """``--ray`` with or without an address: ``run SERIES/ --ray``, ``run --ray SERIES/`` and
    ``run SERIES/ --ray ray://head:10001`` all work.  A word after ``--ray`` that is not a Ray address
    (auto, local, HOST:PORT, ray://...) is left to be a path.  A flag of a sibling command is refused
    naming the commands that take it (see :meth:`_sibling_flag`)."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        from ..distributed.config import ADDRESS

        out: list[str] = []
        for i, arg in enumerate(args):
            out.append(arg)
            if arg == "--":
                out.extend(args[i + 1:])
                break
            if arg == "--ray" and (i + 1 == len(args) or not _meant_as_address(args[i + 1], ADDRESS)):
                out.append(RAY_HERE)
        try:
            return super().parse_args(ctx, out)
        except Exception as error:  # click's NoSuchOption: typer 0.2x ships its own click, so it is matched by name
            if type(error).__name__ != "NoSuchOption":
                raise
            raise self._sibling_flag(ctx, error) from None

    def _sibling_flag(self, ctx, error):
        """``error`` as it is (click's "Possible options", for a typo), or, for a flag the other commands take,
        "No such option: --duration (--duration is an option of run and compose; ...)" instead of click's
        nearest spellings (`score --duration` was offered --transitions)."""
        siblings = ctx.parent.command.commands if ctx.parent is not None else {}
        holders = [name for name, command in siblings.items() if name != ctx.info_name
                   and any(error.option_name in p.opts + p.secondary_opts for p in command.params)]
        if not holders:
            return error
        said = [f"{error.option_name} is an option of {listed(holders)}"]
        said += [hint for hint in [_ANOTHER_WAY.get((ctx.info_name, error.option_name))] if hint]
        return type(error)(error.option_name, f"No such option: {error.option_name} ({'; '.join(said)})", ctx=ctx)


def _meant_as_address(word: str, address) -> bool:
    """Whether the word after ``--ray`` is its address: a Ray address, or a URL that is no path here
    (``--ray http://head:8265`` is refused as an address, not looked for as a folder ``http:/head:8265``; so is a
    head's IP without its port)."""
    from ..distributed.config import HOST_ALONE
    from ..sections import IMAGE_EXTENSIONS, SOURCE_EXTENSIONS, source_suffix

    named_as_pages = source_suffix(word) in SOURCE_EXTENSIONS | IMAGE_EXTENSIONS  # "ch.cbz" is no host name
    return bool(address.match(word)) or (("://" in word or (HOST_ALONE.match(word) and not named_as_pages))
                                         and not os.path.lexists(word))


def names(group: list[inspect.Parameter]) -> list[str]:
    return [p.name for p in group]


def with_flags(*groups: list[inspect.Parameter]) -> Callable:
    """Give ``func(**flags)`` the signature made of ``groups`` (what typer reads to build the command)."""
    params = [p for group in groups for p in group]

    def decorate(func: Callable) -> Callable:
        func.__signature__ = inspect.Signature(params)
        func.__annotations__ = {p.name: p.annotation for p in params}
        return func

    return decorate


def _given(flags: dict, group: list[inspect.Parameter]) -> dict:
    return {p.name: flags[p.name] for p in group if p.name in flags and flags[p.name] is not None}


def _scenes(value: Optional[Path]) -> Optional[Path | str]:
    """``--scenes auto`` is the word (the scenes found in the pages), not a file named auto (give ``./auto``)."""
    from ..options import SCENES_FOUND

    return SCENES_FOUND if value is not None and str(value) == SCENES_FOUND else value


def run_config(flags: dict, *, side: str | None):
    """The RunConfig for these flags.  ``side``: "vision" (describe), "music" (compose), None (run: both)."""
    from ..options import RunConfig

    cfg = RunConfig(
        output=flags["output"], fmt=flags.get("format"),
        duration=flags.get("duration"), seed=flags.get("seed"), variations=flags.get("variations"),
        loop=flags.get("loop"), normalize=flags.get("normalize"), force=flags["force"],
        save_artifact=flags.get("save_artifact", False), wait=flags["wait"], offline=flags["offline"],
        auto_download=flags.get("download"), reading_speed=flags.get("reading_speed"),
        longest_cue=flags.get("longest_cue"),
        commercial=flags.get("commercial", False),
        scenes_file=_scenes(flags.get("scenes")), transitions=flags.get("transitions"),
    )
    devices = _given(flags, DEVICE)
    if side is None:
        cfg.options = devices
        cfg.vision_options = _given(flags, VISION_BACKEND)
        cfg.music_options = _given(flags, MUSIC_BACKEND)
        if flags.get("vision_device") is not None:
            cfg.vision_options["device"] = flags["vision_device"]
        if flags.get("music_device") is not None:
            cfg.music_options["device"] = flags["music_device"]
    elif side == "vision":
        cfg.vision_options = {**devices, **_given(flags, VISION_BACKEND)}
    else:
        cfg.music_options = {**devices, **_given(flags, MUSIC_BACKEND)}
    cfg.ray = ray_config(flags)
    return cfg


def ray_config(flags: dict):
    """The RayConfig for ``--ray`` and its companions (None without ``--ray``); checked later, in the library."""
    given = _given(flags, RAY[1:])
    if flags.get("ray") is None:
        if given:
            from ..errors import InputError

            raise InputError(f"--{next(iter(given)).replace('_', '-')} needs --ray", hint="add --ray [ADDRESS]")
        return None
    from ..distributed.config import RayConfig

    address = None if flags["ray"] == RAY_HERE else flags["ray"]
    return RayConfig(address=address, workers=given.get("ray_workers"), gpus_per_model=given.get("ray_gpus_per_model"),
                     cpus_per_model=given.get("ray_cpus_per_model", 1.0))
