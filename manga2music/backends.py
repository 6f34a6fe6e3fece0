"""From what the user typed to a ready describer or composer: resolve, check the options, preflight.

One :class:`Machine` per run holds the hardware report (probed at most once, and
only when a model needs weights or ``auto`` must choose), so ``auto`` and every
preflight look at the same facts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Optional

from .errors import InputError, ModelUnavailableError
from .options import (DEFAULT_DURATION, NO_FLAG, RunConfig, flag, invalid_because, make_options, on_command_line,
                      own_flag_names, unused_flags)
from .registry import ModelSpec, Side, load_backend_class, resolve, unusable_folder


@dataclass
class Machine:
    """This machine, probed lazily once per run (``hardware.collect`` walks the cache and runs nvidia-smi).

    It also holds what ``auto`` means in this run: the sides left to ``auto`` are chosen together, so a
    download is agreed to (or not) once for both (:func:`manga2music.downloads.choose_auto`).
    """

    offline: Optional[bool] = None  # None: HF_HUB_OFFLINE decides
    auto_sides: tuple[str, ...] = ()  # the sides this run leaves to ``auto``
    _report: object = field(default=None, repr=False)
    _auto: dict = field(default_factory=dict, repr=False)

    @property
    def report(self):
        if self._report is None:
            from .hardware import collect

            self._report = collect(offline=self.offline, check_hub=False)
        return self._report

    def auto(self, side: Side, cfg: RunConfig, warn: Callable[[str], None]) -> tuple[ModelSpec, str]:
        """What ``auto`` means for ``side`` (with every other ``auto`` side of the run, on first call)."""
        if side not in self._auto:
            from .downloads import choose_auto

            sides = tuple(dict.fromkeys((*self.auto_sides, side)))
            picks, note = choose_auto(sides, self.report, cfg.auto_download, duration=cfg.duration or DEFAULT_DURATION,
                                      commercial=cfg.commercial)
            self._auto.update(picks)
            if note:
                warn(note)
        return self._auto[side]


def served_name(name: str, side: Side, base_url_flag: str | None) -> str:
    """``name`` as the registry should read it: with ``--base-url``, a Hub id is the id the server serves it as
    (``vllm serve OWNER/NAME``), not local weights."""
    if base_url_flag and side == "vision" and "/" in name and ":" not in name \
            and not os.path.exists(os.path.expanduser(name)):
        return f"openai:{name}"
    return name


def check_named(cfg: RunConfig, **models: str) -> None:
    """Each model named (not ``auto``; ``models``: side -> name) is one the registry knows: a misspelt music model
    is the command's one line, not after a line on what ``auto`` chose for the vision side."""
    for side, name in models.items():
        if name != "auto":
            pick_spec(name, side, cfg, None)  # type: ignore[arg-type] - a machine is only asked for auto


def pick_spec(name: str, side: Side, cfg: RunConfig, machine: Machine,
              info: Callable[[str], None] = lambda message: None,
              warn: Callable[[str], None] = lambda message: None) -> ModelSpec:
    """The model ``name`` means on ``side``: ``auto`` through the tier rules, anything else through the registry."""
    if name == "auto":
        spec, reason = machine.auto(side, cfg, warn)
        info(f"{side} model: {spec.name} ({reason})")
        return spec
    given = cfg.vision_options.get("base_url")
    base_url = given or os.environ.get("OPENAI_BASE_URL") or None
    spec = resolve(served_name(name, side, given), side, base_url=base_url if side == "vision" else None)
    if not given and base_url and served_name(name, side, base_url) != name and spec.backend != "openai":
        # OPENAI_BASE_URL alone: a Hub id is local weights, as the README says; a vLLM user may mean the server's
        warn(f"{name} is a Hugging Face id, so it runs here (transformers), not on the server OPENAI_BASE_URL "
             "names; to ask that server's model of this name, add "
             + ('--base-url "$OPENAI_BASE_URL"' if on_command_line() else 'base_url=os.environ["OPENAI_BASE_URL"]'))
    if cfg.commercial and side == "music" and spec.commercial is not True:
        from .tiers import licence_note

        why = licence_note(spec) or "its licence is not recorded"
        card = ("; a local folder's licence is read from its model card (README.md, `license: apache-2.0` at its top, "
                "as the Hub writes it)" if spec.about == "local folder" and not spec.licence else "")
        raise InputError(f"{flag('commercial')}: the music of {spec.name} may not be published commercially "
                         f"({why}{card})",
                         hint=f"pick ace-step, stable-audio-open or builtin, or drop {flag('commercial')}")
    return spec


def _weights_here(spec: ModelSpec, machine: Machine) -> bool:
    """Whether ``spec``'s weights are on this machine: a local folder, or whole in the cache."""
    from pathlib import Path

    return not spec.model_id or Path(spec.model_id).expanduser().is_dir() or machine.report.is_cached(spec.model_id)


def _download_refused(spec: ModelSpec, side: Side, cfg: RunConfig, machine: Machine):
    """The :class:`~manga2music.errors.ModelUnavailableError` that loading the output folder's model raises, kept by a
    rerun that left the model out, where its weights are gone from the cache and downloads are not allowed
    (``--download``, MANGA2MUSIC_AUTO_DOWNLOAD=1, a remembered yes); else None.  The model was ``auto``'s pick once,
    and a plain rerun after ``models rm`` downloaded its 2.4 GB again unasked, with ``--no-download`` too, as a
    model named is.  A music model's is raised only where a section needs it (a rerun with nothing to make needs
    none); a vision model's at once (see :func:`build`)."""
    from .downloads import standing_answer

    probe = machine.report
    if probe.offline or _weights_here(spec, machine):
        return None  # offline: preflight says the weights are not here (see build)
    choice = cfg.auto_download
    allowed, why = (choice, "downloads turned off for this run") if isinstance(choice, bool) else standing_answer()
    if allowed:
        return None
    what, were = ("words", "were") if side == "vision" else ("music", "was")
    size = f"{spec.download_gb:g} GB" if spec.download_gb else "its weights"
    allow = "pass --download" if on_command_line() else "give RunConfig(auto_download=True)"
    error = ModelUnavailableError(
        f"the {what} there {were} made by {spec.name}, whose weights are not in {probe.cache_dir} any more; "
        f"{size} not downloaded unasked ({why if allowed is False else 'no download allowed for this run'})",
        hint=f"{allow} (or run `manga2music models pull {spec.name}` once) to go on with it, or name the model for "
             "this run (auto lets this machine pick; what it made is then made again)")
    error.stops_run = True  # every section to make would fail alike
    return error


def build(name: str, side: Side, cfg: RunConfig, machine: Machine, *, info=lambda m: None, warn=lambda m: None,
          preflight: bool = True, both_sides: bool = False, kept: bool = False, auto: bool = False):
    """A describer (``side="vision"``) or composer (``"music"``) ready to work: options checked, preflight done
    (``preflight=False``: not here, because the model runs on other machines, which preflight it themselves).
    ``both_sides``: the command builds both (run, score), where a side's own device is ``--vision-device``.
    ``kept``: the model was left out and is the one the output folder's sections were made with (see
    :func:`manga2music.api.keep_models`): as with ``auto``, a flag it does not take is said and dropped (the same
    command run twice failed the second time: ``--top-k`` "does not apply to builtin", a model never named); so
    is ``auto``: ``name`` is what auto chose elsewhere (on a Ray worker)."""
    from . import tiers

    spec = pick_spec(name, side, cfg, machine, info, warn)
    refused = _download_refused(spec, side, cfg, machine) if kept and not auto and name != "auto" \
        and spec.needs_weights else None
    held_until_needed = side == "music" or bool(cfg.vision_options.get("chunk_size") or cfg.kept_chunk_size)
    if refused is not None and not held_until_needed:  # said now: a vision model is asked for its settings (the
        # pages it reads a request, measured from its processor) before a section is known to need it, and a
        # refusal held until then failed sections made as they were; the measure its words were read with is kept
        raise refused
    cls = load_backend_class(spec.backend)
    given = cfg.side_options(side, cls.Options)
    names = own_flag_names(side, cfg.vision_options if side == "vision" else cfg.music_options) if both_sides else {}
    if name == "auto" or auto or kept:  # a flag for the model a script expects (--device cuda) where auto picked
        unused = [k for k in given if k not in cls.Options.model_fields]  # another (or the folder's was kept): said
        if unused:
            check_values_elsewhere({k: given[k] for k in unused}, side, names)
            warn(not_used_by_auto([names.get(k, k) for k in unused], [spec.name],
                                  kept=kept and not auto and name != "auto"))
            given = {k: v for k, v in given.items() if k not in unused}
    asked = set(given)
    if side == "music" and cfg.kept_music_settings:  # as the music there was made (api.keep_models: the model kept,
        # or named again)
        fields = cls.Options.model_fields
        taken = {k: v for k, v in cfg.kept_music_settings.items() if k in fields and k not in given}
        given = {**given, **taken}
        shown = {k: v for k, v in taken.items() if v != fields[k].default}
        said = [flag(k, v) for k, v in shown.items() if k not in NO_FLAG or not on_command_line()]
        if said:
            info(f"{', '.join(said)}, as the music there was made (give {'it' if len(said) == 1 else 'them'} to "
                 "change)")
        unsaid = [f"{k}={v!r}" for k, v in shown.items() if k in NO_FLAG and on_command_line()]
        if unsaid:  # said as "--steps 4 ... (give it to change)", a flag the command line has not
            info(f"{', '.join(unsaid)}, as the music there was made by a program (the command line has no flag for "
                 f"{'it' if len(unsaid) == 1 else 'them'}: the Python API's music_options change "
                 f"{'it' if len(unsaid) == 1 else 'them'})")
    options = make_options(cls.Options, given, model=spec.name, side=side, run_wide=cfg.run_wide, names=names)
    unusable = unusable_folder(spec)  # no section could run
    if unusable is not None:
        raise unusable
    if spec.needs_weights and preflight:
        try:
            for message in tiers.preflight(spec, device=getattr(options, "device", "auto"), probe=machine.report,
                                           device_flag=names.get("device", "device"),
                                           commercial=bool(cfg.commercial), download_refused=refused is not None):
                warn(message)
        except ModelUnavailableError as error:
            if not (kept and not auto and name != "auto") or not held_until_needed or _weights_here(spec, machine):
                raise  # a vision model is asked for its settings before a section is known to need it (its
                # processor's page cost): held without the measure kept, it failed the sections made as they were
            error.stops_run = True  # the folder's model, kept, without its weights (offline, no Hub): said by its
            refused = error  # load, where a section needs it; a rerun with nothing to make stopped at once
    if spec.backend == "builtin-vision" and preflight:
        for message in tiers.builtin_reading_warnings():
            warn(message)
    backend = cls(spec, options)
    for key, why in getattr(backend, "unused_options", dict)().items():
        if key in asked:  # taken without a word, and recorded as if it made the music
            warn(f"{flag(names.get(key, key))}: not used by {spec.name} ({why})")
    if refused is not None:
        backend.download_refused = refused  # raised by its load (cache.load_cache_first), where one is needed
        if side == "vision":
            backend.recorded_chunk_size = cfg.kept_chunk_size
    if side == "music":
        limit = float(getattr(backend, "max_duration", cfg.duration or DEFAULT_DURATION))
        if cfg.duration is not None and cfg.duration > limit:
            raise InputError(f"{flag('duration', float(cfg.duration))} is more than {spec.name} makes in one track "
                             f"({limit:g} s)",
                             hint=f"choose a shorter {flag('duration')}")
    if preflight and refused is None:  # refused: its load says why, where a section needs it
        backend.preflight()
    return backend


def check_values_elsewhere(given: dict, side: Optional[str] = None, names: Optional[dict] = None) -> None:
    """Flags that the model ``auto`` picked does not take, checked against a model of ``side`` (None: either) that
    takes them: a typo (``--device tpu``) is an error on every machine, not only on one where auto picks a model
    that takes the flag.  ``names``: as for :func:`.options.make_options`."""
    from pydantic import ValidationError

    from .registry import BACKENDS, load_backend_class

    for key, value in given.items():
        for backend in BACKENDS:
            cls = load_backend_class(backend)
            if side is not None and hasattr(cls, "describe") != (side == "vision"):
                continue
            options = getattr(cls, "Options", None)
            if options is None or key not in options.model_fields:
                continue
            try:
                options.__pydantic_validator__.validate_assignment(options.model_construct(), key, value)
            except ValidationError as exc:
                why = invalid_because(exc.errors()[0])
                raise InputError(f"{flag((names or {}).get(key, key), value, quoted=True)}: {why}") from None
            break


def not_used_by_auto(flags: list[str], models: list[str], kept: bool = False) -> str:
    """The warning for ``flags`` that the models left out do not take: picked by auto, or ``kept`` as the output
    folder's sections were made (it said "which auto picked" of a model auto had not picked)."""
    names = " and ".join(dict.fromkeys(models))
    server = f"; to use a model of that server, name it ({flag('vision_model', 'NAME')})" if "base_url" in flags \
        else ""
    why = "kept as the output folder's sections were made" if kept else "which auto picked on this machine"
    return f"{', '.join(flag(f) for f in flags)}: not used by {names}, {why}{server}"


def check_shared_flags(cfg: RunConfig, *backends, auto: bool = False, kept: bool = False,
                       warn: Callable[[str], None] = lambda message: None) -> None:
    """A flag given for "whichever model takes it" (``run --device``) that no chosen model takes is an error; a
    warning when ``auto`` picked a model (the flag may be for the one a script expects on another machine), or a
    model left out was ``kept`` as the output folder's sections were made."""
    unused = unused_flags(cfg.options, *(type(b).Options for b in backends))
    if unused and (auto or kept):
        check_values_elsewhere({k: cfg.options[k] for k in unused})
        warn(not_used_by_auto(unused, [b.model_name for b in backends], kept=kept and not auto))
        return
    if unused:
        names = " and ".join(f"{b.model_name} ({'vision' if hasattr(b, 'describe') else 'music'})" for b in backends)
        flags = ", ".join(flag(u) for u in unused)
        raise InputError(f"{flags} does not apply to the chosen models: {names}",
                         hint="drop it, or choose a model that runs on this machine's torch (`manga2music models list`)")
