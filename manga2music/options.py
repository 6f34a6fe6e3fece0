"""Settings: the run's own (:class:`RunConfig`) and each backend's (a nested ``Options`` class).

Following simonw/llm, every describer and composer class carries its own pydantic
``Options`` (``extra="forbid"``), so an option the chosen backend does not take is
an error that names the backend instead of passing silently:

    $ manga2music run pages/ --music-model builtin --top-k 50
    Error: --top-k does not apply to builtin (the music model)

:func:`make_options` turns the flags a user gave (a dict; flags left at their
default are simply absent) into one backend's ``Options``.  A few settings belong
to the whole run and are handed to every backend whose ``Options`` has them
(:data:`RUN_WIDE`: ``offline``, ``loop``, ``seed``).
"""

from __future__ import annotations

import contextvars
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Optional

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .errors import InputError

#: seconds per track when none is given and a section has no music made before
DEFAULT_DURATION = 10.0
#: ``--scenes auto``: a chapter's scenes found in its pages, though a scenes file was given to its score before
SCENES_FOUND = "auto"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: settings of the run that every backend taking them receives (never an error when a backend lacks them)
RUN_WIDE = ("offline", "loop", "seed")


class BackendOptions(BaseModel):
    """Base of every backend's ``Options``: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    offline: bool = False  # --offline: no network at all (weights from the cache only)


class TorchOptions(BackendOptions):
    """Options of every backend that runs a torch model on this machine."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: Any) -> str:
        text = str(value).strip().lower()
        if not _DEVICE.match(text):
            raise ValueError("use auto, cpu, cuda, cuda:N or mps")
        return text

    @field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, value: Any) -> str:
        return str(value).strip().lower()

    @property
    def no_network(self) -> bool:
        """``offline`` given, or offline mode set for the process (``HF_HUB_OFFLINE``...): weights from the cache."""
        from . import settings

        return bool(self.offline or settings.offline_mode())


#: True while the command line (or the web UI, which shows flags under its own names) runs: messages then name a
#: setting by its flag (``--reading-speed 3``); a program calling the API reads the field it set (``reading_speed=3``)
_NAMED_AS_FLAGS: contextvars.ContextVar[bool] = contextvars.ContextVar("manga2music_named_as_flags", default=False)
#: fields whose flag is not their own name
_FLAG_OF = {"fmt": "format", "scenes_file": "scenes"}
#: model settings a program may give (music_options) that the command line has no flag for
NO_FLAG = frozenset({"steps", "shift", "lyrics", "vocal_language", "logsnr_min", "logsnr_max", "negative_prompt",
                     "overlap_s", "max_window_s"})
_NO_VALUE = object()


def flag(name: str, value: Any = _NO_VALUE, *, quoted: bool = False) -> str:
    """How a message names the setting ``name`` (a field), with ``value`` when given: ``--top-k`` and ``--top-k 50``
    on the command line, ``top_k`` and ``top_k=50`` for a program calling the API.  ``quoted``: a value the user
    gave wrongly, shown as typed on the command line too (``--device 'tpu'``)."""
    if not _NAMED_AS_FLAGS.get():
        return name if value is _NO_VALUE else f"{name}={_number_or_repr(value)}"
    shown = "--" + _FLAG_OF.get(name, name).replace("_", "-")
    if value is _NO_VALUE:
        return shown
    if quoted:
        return f"{shown} {value!r}"
    return f"{shown} {_number_or_repr(value) if isinstance(value, float) else value}"


def _number_or_repr(value: Any) -> str:
    """A float as short as it reads (``2``, ``0.5``) but never rounded (``1800.0001`` was said ``1800``, in "1800
    is more than the 1800 s a track may be")."""
    if not isinstance(value, float):
        return repr(value)
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def switch(name: str, on: bool) -> str:
    """How a message names a yes/no setting set one way: ``--loop`` or ``--no-loop`` on the command line,
    ``loop=True`` or ``loop=False`` for a program calling the API."""
    if not _NAMED_AS_FLAGS.get():
        return f"{name}={bool(on)}"
    if not on and name in _OFF_SWITCHES:
        return "--" + _OFF_SWITCHES[name]
    return "--" + ("" if on else "no-") + name.replace("_", "-")


#: the yes/no settings whose "no" on the command line is a word of its own
_OFF_SWITCHES = {"single_stage": "two-stage"}


def output_named() -> str:
    """How a message names the output folder: ``-o`` on the command line, "the output folder" for a program."""
    return "-o" if _NAMED_AS_FLAGS.get() else "the output folder"


def another_output() -> str:
    """How a hint names another output folder: "another -o" on the command line, "another output folder" for a
    program (which gives no -o)."""
    return "another -o" if _NAMED_AS_FLAGS.get() else "another output folder"


def writable_output() -> str:
    """How a hint names an output folder the user can write to (see :func:`another_output`)."""
    return "a folder you can write to with -o" if _NAMED_AS_FLAGS.get() else "an output folder you can write to"


def on_command_line() -> bool:
    """Whether messages are for a command line (see :func:`flag`), for the hints whose words differ."""
    return _NAMED_AS_FLAGS.get()


@contextmanager
def settings_named_as_flags() -> Iterator[None]:
    """Within it (and in the worker threads it starts, see threads.py), messages name settings by their flags."""
    token = _NAMED_AS_FLAGS.set(True)
    try:
        yield
    finally:
        _NAMED_AS_FLAGS.reset(token)


#: settings a command of both sides (run, score) takes once for both and once per side (``--device`` and
#: ``--vision-device``): a message about the side's own one names it as typed
PER_SIDE_FLAGS = ("device",)


def own_flag_names(side: str, own: dict) -> dict:
    """``{field: name for flag()}`` for the settings in ``own`` (a side's own options on a command of both sides)
    that the command line gives per side: ``{"device": "vision_device"}``; none for a program calling the API."""
    if not on_command_line():
        return {}
    return {k: f"{side}_{k}" for k in PER_SIDE_FLAGS if k in own}


def make_options(options_cls: type[BackendOptions], given: dict, *, model: str, side: str,
                 run_wide: dict | None = None, names: dict | None = None) -> BackendOptions:
    """``options_cls`` built from the flags in ``given`` plus the run-wide settings it has fields for.

    Raises :class:`InputError` (exit 2) naming the flag: one the backend does not take, or a bad value.
    ``names`` (field -> name for :func:`flag`) names a setting the user gave under another flag.
    """
    values = {k: v for k, v in (run_wide or {}).items() if k in options_cls.model_fields}
    values.update(given)
    try:
        return options_cls(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err.get("loc") else "?"
        shown = (names or {}).get(name, name)
        if err.get("type") == "extra_forbidden":
            served = f"; to send the pages to that server's {model}, name it openai:{model}" if name == "base_url" \
                else ""
            raise InputError(f"{flag(shown)} does not apply to {model} (the {side} model)",
                             hint=f"drop {flag(shown)}, or choose a {side} model that takes it "
                                  f"(`manga2music models list`){served}") from None
        raise InputError(f"{flag(shown, values.get(name), quoted=True)}: {invalid_because(err)}") from None


def invalid_because(error: dict) -> str:
    """Why pydantic found a value wrong (one of ``ValidationError.errors()``), as our own words: an option's own
    check said "Value error, use auto, cpu, ..." (pydantic's prefix for a ValueError)."""
    message = str(error.get("msg") or "not a valid value")
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def unused_flags(given: dict, *option_classes: type[BackendOptions]) -> list[str]:
    """Flags in ``given`` that none of ``option_classes`` takes."""
    return [k for k in given if not any(k in cls.model_fields for cls in option_classes)]


#: the slowest and fastest reading speed a score takes (``reading_speed``): a twentieth of the estimate's pace is
#: already hours of music for a chapter; twenty times it, a few seconds a page
READING_SPEEDS = (0.05, 20.0)


@dataclass
class RunConfig:
    """Everything a run needs besides the inputs and the model names."""

    output: Path = Path("output")
    #: the audio format; None: the one the music there is in, else DEFAULT_FORMAT (wav), as ``duration``
    fmt: Optional[str] = None
    #: seconds per track; None: the length a section's music was made with before (as the seed: music made
    #: again keeps it), else DEFAULT_DURATION
    duration: Optional[float] = None
    seed: Optional[int] = None  # None: a random seed per section, recorded
    #: takes per description; None: as many as each section has (as ``duration``), else 1
    variations: Optional[int] = None
    #: a section not composed yet, where ``duration`` / ``variations`` are left out: what a stopped run it resumes
    #: was asked (api.keep_lengths); None: DEFAULT_DURATION, one take.  Sections composed keep their own
    new_duration: Optional[float] = None
    new_variations: Optional[int] = None
    #: the composer's sampling settings the music there was made with, kept where left out by a rerun that keeps
    #: its model (api.keep_models; given to the model in backends.build)
    kept_music_settings: dict = field(default_factory=dict, repr=False)
    #: the pages a request that the kept local vision model's words there were read with (measured from its context
    #: and processor, recorded in their settings): taken where its files are gone and cannot be fetched, so that a
    #: rerun with nothing to read needs none of them (api.keep_models; backends.build)
    kept_chunk_size: Optional[int] = field(default=None, repr=False)
    #: section name -> what a stopped run that left it was asked (format, seed, level, length, takes), each left out
    #: here, where this run makes other sections too (a chapter added since): those are made as new ones
    #: (api.resume_stopped, api.keep_lengths; applied in composing.job_config)
    stopped_sections: dict = field(default_factory=dict, repr=False)
    #: tracks whose end flows into their start (``--loop``); None: as the music in the output folder was made (on
    #: where all of it loops), else off
    loop: Optional[bool] = None
    #: bring the music to -14 LUFS; None: as the music in the output folder was made (off where all of it keeps its
    #: model's level), else on
    normalize: Optional[bool] = None
    force: bool = False
    save_artifact: bool = False
    #: queue behind another run of the same output folder instead of exiting 2: True, or at most this many seconds
    wait: bool | float = False
    offline: bool = False  # no network at all
    commercial: bool = False  # auto picks only models whose output may be used commercially; named ones are checked
    #: score: 2.0 reads twice as fast as the reading-time estimate (READING_SPEEDS); None: the speed a chapter's
    #: score was made with (as a --duration left out: a score made again keeps it), else 1.0
    reading_speed: Optional[float] = None
    #: score: compose each cue at most this many seconds (None: the composer's longest track); a scene read for
    #: longer repeats its cue as a seamless loop
    longest_cue: Optional[float] = None
    #: score: a file listing the pages where scenes start; None: the scenes a chapter's score was given before (its
    #: record keeps the file's text), else those found in the pages; SCENES_FOUND ("auto"): found in the pages
    scenes_file: Optional[Path | str] = None
    #: score: how one scene's cue hands over to the next: "crossfade" (every composer), or "continue" (a bridge the
    #: composer carries on from the outgoing cue into the next scene's description; MusicGen)
    transitions: Optional[str] = None  # score: "crossfade" or "continue"; None: as the chapter's last score, else crossfade
    #: may ``auto`` download the weights it picks: True, False, a function asked with the plan, or None (the
    #: environment and the remembered answer decide, else no); see :mod:`manga2music.downloads`
    auto_download: Any = None
    #: backend flags for whichever chosen model takes them (``run``: --device, --precision)
    options: dict = field(default_factory=dict)
    #: backend flags for the describer only / the composer only
    vision_options: dict = field(default_factory=dict)
    music_options: dict = field(default_factory=dict)
    #: spread the run over a Ray cluster (``--ray``): a :class:`manga2music.distributed.RayConfig`; None: this process
    ray: Optional[Any] = None

    @property
    def run_wide(self) -> dict:
        return {"offline": self.offline, "loop": bool(self.loop), "seed": self.seed}  # loop: settled by then

    def side_options(self, side: str, options_cls: type[BackendOptions]) -> dict:
        """The flags meant for ``side``: its own, plus the shared ones its backend takes."""
        own = self.vision_options if side == "vision" else self.music_options
        shared = {k: v for k, v in self.options.items() if k in options_cls.model_fields}
        return {**shared, **own}


__all__ = ["BackendOptions", "TorchOptions", "RunConfig", "make_options", "unused_flags", "flag", "PRECISIONS",
           "RUN_WIDE"]
