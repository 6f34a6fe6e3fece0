"""Whether ``auto`` may download weights: the decision point between the tier rules and the user.

:func:`manga2music.tiers.resolve_auto` says which models run best on this machine.  When
those are not in the cache yet, a run would start a download of several GB and then
minutes of CPU work; that must never happen unasked.  :func:`choose_auto` resolves the
``auto`` sides of a run together, builds a :class:`DownloadPlan` (what, how big, where,
roughly how long on this CPU, and what runs instead) and asks for one decision, taken
from the first of these that says something:

1. the run's own choice: ``RunConfig.auto_download`` ``True`` / ``False``
   (the CLI's ``--download`` / ``--no-download``);
2. ``MANGA2MUSIC_AUTO_DOWNLOAD=1`` / ``=0``;
3. the remembered answer (``auto_download`` in the user's ``settings.json``);
4. a question: when ``RunConfig.auto_download`` is a function, it is called once with
   the plan and returns the answer (the CLI asks in a terminal and remembers it);
5. otherwise no: nobody was there to ask.

On no, ``auto`` keeps to cached weights, else ``builtin``, and one line says how to
allow the download.  This module never prompts, prints or writes settings; models a
user names explicitly never come here (they are downloaded after a size warning,
see :func:`manga2music.tiers.preflight`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable, Optional, Union

from . import settings, tiers
from .hardware import HardwareReport
from .registry import ModelSpec

#: answers a run can carry: allow, refuse, ask this function, or None (the environment and settings decide)
Consent = Callable[["DownloadPlan"], bool]
AutoDownload = Union[bool, Consent, None]

#: CPU speeds measured on a 2-core x86 machine (README "Speed"): seconds of wall time per page described
CPU_SECONDS_PER_PAGE = {"llava-0.5b": 7.0}
#: ... and seconds of wall time per second of music, (with native bf16, without): 0.30 and 0.13 audio s per wall s
CPU_SECONDS_PER_AUDIO_SECOND = {"musicgen-small": (3.3, 7.7)}


@dataclass(frozen=True)
class PlannedDownload:
    """One side whose ``auto`` pick is not cached: the model, where it would run, and what runs if refused."""

    side: str
    spec: ModelSpec
    where: str  # "on the CPU", "on the GPU (NVIDIA ...)", "on Apple MPS"
    instead: ModelSpec
    instead_reason: str


@dataclass
class DownloadPlan:
    """Everything a user needs to say yes or no to ``auto``'s downloads."""

    items: list[PlannedDownload]
    cache_dir: str
    disk_free_gb: float
    cpu_bf16: Optional[bool] = None
    duration: float = 10.0  # seconds per track, for the CPU estimate

    @property
    def total_gb(self) -> float:
        return round(sum(i.spec.download_gb for i in self.items), 1)

    @property
    def names(self) -> list[str]:
        return [i.spec.name for i in self.items]

    @property
    def pull_command(self) -> str:
        return "manga2music models pull " + " ".join(self.names)

    def what(self) -> str:
        """'llava-0.5b (1.8 GB) and musicgen-small (2.4 GB)'."""
        return " and ".join(f"{i.spec.name} ({i.spec.download_gb:g} GB)" for i in self.items)

    def cpu_estimate(self) -> Optional[str]:
        """'roughly 7 s a page to describe and 33 s for each 10 s track' for the models that would run on a CPU."""
        parts = []
        for item in self.items:
            if item.where != "on the CPU":
                continue
            per_page = CPU_SECONDS_PER_PAGE.get(item.spec.name)
            per_second = CPU_SECONDS_PER_AUDIO_SECOND.get(item.spec.name)
            if per_page:
                parts.append(f"{per_page:g} s a page to describe")
            elif per_second:
                rate = per_second[0] if self.cpu_bf16 else per_second[1]
                parts.append(f"{_seconds(rate * self.duration)} for each {self.duration:g} s track")
        if not parts:
            return None
        return ("on this CPU, roughly " + " and ".join(parts)
                + " (as measured on 2 cores; more cores are faster)")

    def instead(self) -> str:
        """'builtin', or 'builtin for vision and musicgen-small for music' when the sides differ."""
        names = {i.instead.name for i in self.items}
        if len(names) == 1:
            return names.pop()
        return " and ".join(f"{i.instead.name} for {i.side}" for i in self.items)


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min"


def _where(spec: ModelSpec, probe: HardwareReport) -> str:
    gpu = probe.best_gpu
    if probe.accelerator == "cuda" and gpu is not None and spec.vram_gb + tiers.margin_gb(gpu.total_gb) <= gpu.free_gb:
        return f"on the GPU ({gpu.name})"
    return "on Apple MPS" if probe.accelerator == "mps" else "on the CPU"


def needs_download(spec: ModelSpec, probe: HardwareReport) -> bool:
    """Whether using ``spec`` (an ``auto`` pick: a registry name) would download weights."""
    return spec.needs_weights and bool(spec.model_id) and not probe.is_cached(spec.model_id)


def plan_downloads(picks: dict[str, tuple[ModelSpec, str]], probe: HardwareReport, *,
                   duration: float = 10.0, commercial: bool = False) -> DownloadPlan:
    """The downloads ``picks`` (side -> what ``auto`` chose with downloads allowed) would start."""
    items = []
    for side, (spec, _) in picks.items():
        if needs_download(spec, probe):
            instead, why = tiers.resolve_auto(side, probe=probe, allow_download=False, commercial=commercial)
            items.append(PlannedDownload(side, spec, _where(spec, probe), instead, why))
    return DownloadPlan(items, probe.cache_dir, probe.disk_free_gb, probe.cpu_bf16, duration)


def standing_answer() -> tuple[Optional[bool], str]:
    """What the environment or the remembered answer says (None: nothing yet), and where that comes from."""
    env = settings.auto_download_env()
    if env is not None:
        return env, f"MANGA2MUSIC_AUTO_DOWNLOAD={int(env)}"
    unread = []  # what was there but said neither yes nor no: named, or the user thinks it decides
    given = os.environ.get("MANGA2MUSIC_AUTO_DOWNLOAD", "").strip()
    if given:
        unread.append(f"MANGA2MUSIC_AUTO_DOWNLOAD={given} is neither yes nor no (1/0, true/false, yes/no, on/off)")
    remembered, problem = settings.read_user_settings()
    answer = remembered.get(settings.AUTO_DOWNLOAD)
    if isinstance(answer, bool):
        return answer, f"you said {'yes' if answer else 'no'} before; remembered in {settings.settings_file()}"
    if problem is not None:
        unread.append(f"{settings.settings_file()} {problem}")
    elif answer is not None:
        unread.append(f"{settings.AUTO_DOWNLOAD} is {json.dumps(answer)} in {settings.settings_file()}, not true or "
                      "false")
    return None, "not answered yet" + "".join(f"; {why}: not read" for why in unread)


def decide(plan: DownloadPlan, choice: AutoDownload) -> tuple[bool, str]:
    """(may ``auto`` download, and why) following the order in this module's docstring."""
    if isinstance(choice, bool):
        return choice, "downloads turned " + ("on" if choice else "off") + " for this run"
    standing, why = standing_answer()
    if standing is not None:
        return standing, why
    if callable(choice):
        answer = bool(choice(plan))
        return answer, f"you said {'yes' if answer else 'no'}"
    return False, "no terminal to ask in"


def refusal_note(plan: DownloadPlan, why: str) -> str:
    """One line: what was not downloaded, why, what runs instead, and how to allow it."""
    from .options import on_command_line

    allow = "pass --download" if on_command_line() else "give RunConfig(auto_download=True)"
    return (f"auto did not download {plan.what()}: {why}. Using {plan.instead()} instead. To use them, {allow} "
            f"(or set MANGA2MUSIC_AUTO_DOWNLOAD=1), or run `{plan.pull_command}` once.")


def choose_auto(sides: tuple[str, ...], probe: HardwareReport, choice: AutoDownload = None, *,
                duration: float = 10.0, commercial: bool = False) -> tuple[dict[str, tuple[ModelSpec, str]], Optional[str]]:
    """What ``auto`` means for each of ``sides`` here, asking at most once for all of them.

    Returns (side -> (spec, reason), a one-line note when downloads were refused, else None).
    """
    picks = {side: tiers.resolve_auto(side, probe=probe, commercial=commercial) for side in sides}
    plan = plan_downloads(picks, probe, duration=duration, commercial=commercial)
    if not plan.items:
        return picks, None
    allowed, why = decide(plan, choice)
    if allowed:
        return picks, None
    for item in plan.items:
        picks[item.side] = (item.instead, item.instead_reason)
    return picks, refusal_note(plan, why)


__all__ = ["AutoDownload", "Consent", "DownloadPlan", "PlannedDownload", "choose_auto", "decide", "needs_download",
           "plan_downloads", "refusal_note", "standing_answer"]
