"""``manga2music doctor``: the report (library side) and the schema of ``doctor --json``.

:func:`build_report` gathers the hardware report, what ``auto`` picks and the
checks of named models; :class:`DoctorJSON` validates it before it is printed.
The CLI (``cli/doctor.py``) only renders it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict

from .hardware import Accelerator


def _check(side: str, name: str, probe, offline: bool = False, base_url: str | None = None) -> dict:
    from . import tiers
    from .errors import Manga2MusicError
    from .registry import resolve, unusable_folder
    from .settings import openai_base_url

    try:
        if name == "auto":
            spec, reason = tiers.resolve_auto(side, probe=probe)
            return {"side": side, "model": name, "ok": True, "reason": f"auto = {spec.name}: {reason}", "warnings": []}
        from .backends import served_name

        spec = resolve(served_name(name, side, base_url), side,  # as `run` reads it
                       base_url=(base_url or openai_base_url()) if side == "vision" else None)
    except Manga2MusicError as exc:
        return {"side": side, "model": name, "ok": False, "reason": exc.message, "warnings": []}
    unusable = unusable_folder(spec)
    if unusable is not None:
        return {"side": side, "model": name, "ok": False, "reason": unusable.message, "warnings": []}
    ok, reason, warnings = tiers.check(spec, probe=probe, offline=offline)
    if ok and spec.backend == "openai":  # is the server there, does it take the key, has it the model
        from .describers.openai_chat import check_server

        try:
            ok, reason, warnings = check_server(spec, base_url or openai_base_url(), offline=offline)
        except Manga2MusicError as exc:
            ok, reason, warnings = False, exc.message, []
    return {"side": side, "model": name, "ok": ok, "reason": reason, "warnings": warnings}


def build_report(*, offline: bool = False, vision_model: str | None = None, music_model: str | None = None,
                 hub_timeout: float = 3.0, base_url: str | None = None) -> dict:
    """Everything doctor shows, as the dict ``--json`` prints (validated by :class:`DoctorJSON`)."""
    from . import __version__, downloads, hardware, other_archives, tiers
    from .settings import offline_mode, shown_url

    start = time.perf_counter()
    probe = hardware.collect(offline=offline or offline_mode(), hub_timeout=hub_timeout)
    suggested = {side: {"model": spec.name, "reason": reason} for side, (spec, reason) in tiers.suggest(probe).items()}
    if base_url:  # --base-url: the server `run --base-url` would ask
        probe = dataclasses.replace(probe, openai_base_url=shown_url(base_url), openai_base_url_source="--base-url")
    checks = [_check(side, name, probe, offline, base_url) for side, name in (("vision", vision_model), ("music", music_model)) if name]
    allowed, source = downloads.standing_answer()
    data = {"manga2music": __version__, **dataclasses.asdict(probe), "suggested": suggested, "checks": checks,
            "auto_download": {"allowed": allowed, "source": source}, "bsdtar": other_archives.bsdtar_version(),
            "page_readings": _page_readings(), "ok": all(c["ok"] for c in checks)}
    data["hub"]["endpoint"] = shown_url(data["hub"]["endpoint"])  # a private mirror's password stays out of sight
    data["seconds"] = round(time.perf_counter() - start, 3)
    return DoctorJSON.model_validate(data).model_dump(mode="json")


def _page_readings() -> dict:
    """Where pages' readings are kept between runs, and how many (:mod:`manga2music.reading_cache`)."""
    from . import reading_cache
    from .settings import cache_problem

    where = reading_cache.folder()
    count, size = reading_cache.size()
    problem = cache_problem(where) if where else None  # readings not kept, every page read each time: said
    return {"folder": str(where) if where else None, "count": count, "bytes": size,
            "problem": str(problem) if problem else None}


# --- the schema of `doctor --json` -----------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GpuJSON(_Strict):
    index: int
    name: str
    total_gb: float
    free_gb: float
    compute_capability: Optional[str]


class CachedJSON(_Strict):
    repo_id: str
    path: str
    size_bytes: int
    complete: bool
    name: Optional[str]


class HubJSON(_Strict):
    endpoint: str
    checked: bool
    reachable: Optional[bool]
    detail: str
    seconds: float


class ChoiceJSON(_Strict):
    model: str
    reason: str


class CheckJSON(_Strict):
    side: Literal["vision", "music"]
    model: str
    ok: bool
    reason: str
    warnings: list[str]


class PageReadingsJSON(_Strict):
    """Pages' readings kept between runs (a page is not read again while its pixels and the reader are the same)."""

    folder: Optional[str]  # None: turned off (MANGA2MUSIC_READING_CACHE=off)
    count: int
    bytes: int
    problem: Optional[str]  # why readings cannot be kept there (a file in the way, no permission), else None


class AutoDownloadJSON(_Strict):
    """May ``auto`` download the weights it picks: True / False, or None (asked in a terminal, else no)."""

    allowed: Optional[bool]
    source: str


class DoctorJSON(_Strict):
    """``manga2music doctor --json``: one object, validated before it is printed."""

    manga2music: str
    python: str
    platform: str
    packages: dict[str, Optional[str]]
    torch_cuda: Optional[str]
    accelerator: Accelerator
    gpus: list[GpuJSON]
    gpu_source: str
    gpu_note: str
    cpu_cores: int
    cpu_bf16: Optional[bool]
    cpu_bf16_source: str
    ram_total_gb: float
    ram_available_gb: float
    ram_source: str
    cache_dir: str
    cache_source: str
    cache_problem: Optional[str]
    cache_unreadable: bool
    disk_free_gb: float
    cached: list[CachedJSON]
    openai_key_set: bool
    openai_base_url: str
    openai_base_url_source: str
    offline: bool
    hub: HubJSON
    suggested: dict[Literal["vision", "music"], ChoiceJSON]
    checks: list[CheckJSON]
    auto_download: AutoDownloadJSON
    bsdtar: Optional[str]  # what reads RAR (.cbr) and 7-Zip (.cb7) archives: its version line, None when missing
    page_readings: PageReadingsJSON  # pages' readings kept between runs
    ok: bool
    seconds: float
