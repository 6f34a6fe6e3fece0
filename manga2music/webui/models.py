"""The model menus' words: what is suggested here, and why a chosen model cannot run, with the fix.

The tier rules (:mod:`manga2music.tiers`) decide; this module only says it the
way a web page should: no network error codes, no command-line flags the UI
does not have, and for each problem the one thing to do about it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

from ..errors import Manga2MusicError, ModelUnavailableError, NeedsKeyError, UnknownModelError
from ..hardware import HardwareReport, HubStatus
from .messages import KEY_HINT

#: how long a Hub probe's answer is trusted (the network may come back)
HUB_MEMORY_S = 120.0
_hub_memory: dict[str, tuple[float, HubStatus]] = {}


def current_probe(offline: Optional[bool] = None) -> HardwareReport:
    """This machine now (cheap: no network); the Hub's reachability is remembered between calls."""
    from ..hardware import collect

    probe = collect(offline=offline, check_hub=False)
    remembered = _hub_memory.get(probe.hub.endpoint)
    if remembered and time.monotonic() - remembered[0] < HUB_MEMORY_S and not probe.offline:
        probe.hub = remembered[1]
    return probe


def _hub_reachable(probe: HardwareReport) -> bool:
    was_checked = probe.hub.checked
    reachable = probe.hub_reachable()
    if not was_checked and probe.hub.checked:
        _hub_memory[probe.hub.endpoint] = (time.monotonic(), probe.hub)
    return reachable


def _offline_setting() -> str:
    """Which variable the server was started with that makes it offline, as the user set it."""
    import os

    from ..settings import _truthy

    return " and ".join(v for v in ("MANGA2MUSIC_OFFLINE", "HF_HUB_OFFLINE") if _truthy(os.environ.get(v))) or \
        "HF_HUB_OFFLINE"


def _weights_problem(name: str, probe: HardwareReport) -> ModelUnavailableError:
    fix = (f"Run `manga2music models pull {name}` on a machine with an internet connection, "
           f"or put its weights in {probe.cache_dir}.")
    if probe.offline:
        return ModelUnavailableError(f"{name} is not downloaded yet and offline mode is on ({_offline_setting()})",
                                     fix)
    if probe.hub.detail.startswith("HTTP"):
        return ModelUnavailableError(
            f"{name} is not downloaded yet and the Hugging Face Hub is not answering ({probe.hub.detail})",
            "Try again later. " + fix)
    return ModelUnavailableError(f"{name} is not downloaded yet and there is no internet connection", fix)


def model_problem(name: str, side: str, probe: Optional[HardwareReport] = None) -> Optional[Manga2MusicError]:
    """Why ``name`` cannot run here, in the UI's words; None when it can."""
    from pathlib import Path

    from .. import tiers
    from ..registry import resolve, unusable_folder
    from ..settings import openai_base_url

    name = (name or "").strip()
    if name in ("", "builtin"):  # a menu cleared (to spaces too) is builtin, as generate takes it
        return None
    probe = probe or current_probe()
    try:
        spec = tiers.resolve_auto(side, probe=probe)[0] if name == "auto" else resolve(name, side, base_url=openai_base_url() if side == "vision" else None)
    except UnknownModelError as exc:  # its hint names --base-url, which the page has not
        hint = "pick one from the menu, or type a Hugging Face id (owner/name) or a local model folder"
        if side == "vision":
            hint += ", or a model of the OpenAI-compatible server the UI was started with (OPENAI_BASE_URL)"
        return UnknownModelError(exc.message, hint=hint)
    except Manga2MusicError as exc:
        return exc
    if spec.needs_network:
        from ..describers.openai_chat import network_forbidden

        if network_forbidden(probe.openai_base_url):  # the CLI says "--offline forbids": the
            # page has no such setting
            return ModelUnavailableError(
                f"{spec.name} sends the pages to {probe.openai_base_url}, and this server was started offline "
                "(MANGA2MUSIC_OFFLINE=1): no network", "pick builtin, or start `manga2music ui` again without "
                                                      "MANGA2MUSIC_OFFLINE")
        if not probe.openai_key_set and probe.openai_base_url_source == "default":
            return NeedsKeyError(f"{spec.name} sends the pages to OpenAI and needs an API key, but this server "
                                 "was started without OPENAI_API_KEY", KEY_HINT)
        return None
    if not spec.needs_weights:
        return None
    unusable = unusable_folder(spec)  # as `run` and `doctor` say it: a folder typed here without weights or
    if unusable is not None:  # processor files was shown as fine until Generate failed
        return unusable
    local = Path(spec.model_id).expanduser().is_dir()
    if not local and not probe.is_cached(spec.model_id) and (probe.offline or not _hub_reachable(probe)):
        return _weights_problem(spec.name, probe)
    try:
        tiers.preflight(spec, probe=probe)  # memory, torch: says what this machine can run instead
    except ModelUnavailableError as exc:
        return exc
    return None


def check_model(name: str, side: str, probe: Optional[HardwareReport] = None) -> None:
    """Raise :func:`model_problem`'s error, if any."""
    problem = model_problem(name, side, probe)
    if problem is not None:
        raise problem


def suggestion(side: str, probe: Optional[HardwareReport] = None) -> tuple[str, str]:
    """(model name, one readable sentence) for a menu: what ``auto`` picks here and why."""
    from .. import tiers
    from ..registry import find_spec

    probe = probe or current_probe()
    try:
        # the OPENAI_API_KEY note of the tier rules names a flag; the UI says it its own way below
        quiet = dataclasses.replace(probe, openai_key_set=False)
        spec, reason = tiers.resolve_auto(side, probe=quiet)
        if quiet.hub.checked and not probe.hub.checked:  # keep what the Hub said: ask it once
            probe.hub = quiet.hub
            _hub_memory[probe.hub.endpoint] = (time.monotonic(), probe.hub)
    except Exception as exc:  # a broken probe must not stop the UI: builtin always works
        return "builtin", f"Suggested: builtin (this machine could not be checked: {exc.__class__.__name__})."
    if spec.name != "builtin":
        how = "downloaded" if probe.is_cached(spec.model_id) else f"a {spec.download_gb:g} GB download on first use"
        text = f"Suggested for this machine: {spec.name} ({how})."
    else:
        small = find_spec(tiers.SMALL[side], side)
        problem = model_problem(small.name, side, probe) if small is not None else None
        why = f"{problem.message}. {problem.hint}" if problem is not None else reason[:1].upper() + reason[1:] + "."
        text = f"Suggested for this machine: builtin (runs anywhere, offline). {why}"
    if side == "vision" and probe.openai_key_set:
        where = "OpenAI" if probe.openai_base_url_source == "default" else probe.openai_base_url
        from ..describers.openai_chat import network_forbidden

        if not network_forbidden(probe.openai_base_url):  # offline: they cannot (said if chosen)
            text += f" OPENAI_API_KEY is set, so gpt-4o-mini and gpt-4o work too (they send the pages to {where})."
    return spec.name, text


def menu_info(side: str, selected: str, suggested: tuple[str, str], probe: Optional[HardwareReport] = None) -> str:
    """The text under a model menu: the suggestion, then the chosen model's problem and its fix, if any."""
    name, text = suggested
    if not selected or selected == name:
        return text
    problem = model_problem(selected, side, probe)
    if problem is None:
        return text
    hint = (problem.hint or "").strip()
    return f"{text}\n\n⚠ {problem.message}. {hint[:1].upper()}{hint[1:]}".rstrip()
