"""The Python API: ``run``, ``describe`` and ``compose``.

Each returns the manifest (a dict, also written to ``OUTPUT/manifest.json``).
Sections that fail are listed with ``status: "failed"`` and a message; the
call itself raises only for problems that stop everything (bad PATH, unknown
model, missing key, weights not obtainable).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Optional

from natsort import natsort_keygen

from .composers.base import Composer
from .describers.base import Describer
from .errors import InputError
from .outputs import update_manifest
from .pipeline import Callbacks, RunConfig, SectionJob, _log, _start_job, compose_jobs, describe_section, manifest_entry
from .progress import report
from .registry import ModelSpec, load_backend_class, resolve
from .sections import find_sections, is_hidden

AUDIO_FORMATS = ("wav", "mp3", "ogg", "flac", "opus")


def _pick(name: str, side: str, cfg: RunConfig, cb: Callbacks) -> ModelSpec:
    """Resolve ``auto`` through the tier rules and anything else through the registry; preflight it."""
    from . import tiers

    offline = cfg.describe.offline if side == "vision" else cfg.compose.offline
    if name == "auto":
        spec, reason = tiers.resolve_auto(side, offline=offline or None)
        _log(cb, "info", f"{side} model: {spec.name} ({reason})")
    else:
        spec = resolve(name, side, base_url=cfg.describe.base_url if side == "vision" else None)
    device = cfg.describe.device if side == "vision" else cfg.compose.device
    for warning in tiers.preflight(spec, device=device):
        _log(cb, "warning", warning)
    return spec


def build_describer(name: str, cfg: RunConfig, cb: Callbacks) -> Describer:
    spec = _pick(name, "vision", cfg, cb)
    describer = load_backend_class(spec.backend)(spec.model_id or spec.name, cfg.describe)
    describer.preflight()
    return describer


def build_composer(name: str, cfg: RunConfig, cb: Callbacks) -> Composer:
    spec = _pick(name, "music", cfg, cb)
    composer = load_backend_class(spec.backend)(spec.model_id or spec.name, cfg.compose)
    composer.preflight()
    return composer


def _check_format(cfg: RunConfig) -> None:
    if cfg.fmt not in AUDIO_FORMATS:
        raise InputError(f"unknown audio format {cfg.fmt!r}; choose one of: {', '.join(AUDIO_FORMATS)}")
    if cfg.compose.duration <= 0:
        raise InputError(f"--duration must be more than 0 seconds (got {cfg.compose.duration})")
    if cfg.variations < 1:
        raise InputError("--variations must be at least 1")


def _finish(jobs: list[SectionJob], cfg: RunConfig, command: str, vision: Optional[str], music: Optional[str],
            page: bool) -> dict:
    entries = [manifest_entry(j, cfg.output, vision, music) for j in jobs]
    manifest = update_manifest(cfg.output, entries, command=command)
    if page:
        from .listening_page import write_listening_page

        write_listening_page(cfg.output, manifest)
    return manifest


def _describe_all(sections: list, describer: Describer, cfg: RunConfig, cb: Callbacks) -> list[SectionJob]:
    """Describe every section with one describer, then free its memory (before any composer loads)."""
    jobs = []
    try:
        for i, section in enumerate(sections):
            report(cb.sections, i, len(sections), f"describing {section.name}")
            job = _start_job(section.name, cfg.output, cb)
            jobs.append(job)
            if job.status != "failed":
                describe_section(section, job, describer, cfg, cb)
        report(cb.sections, len(sections), len(sections), "described")
    finally:
        describer.close()
    return jobs


def run(paths: Iterable[str | Path], output: str | Path = "output", *, vision_model: str = "auto",
        music_model: str = "auto", config: Optional[RunConfig] = None, callbacks: Optional[Callbacks] = None) -> dict:
    """Describe every section under ``paths`` and compose one track each."""
    cfg = config or RunConfig()
    cfg.output = Path(output)
    cb = callbacks or Callbacks()
    _check_format(cfg)
    sections = find_sections(paths, exclude=[cfg.output])
    describer = build_describer(vision_model, cfg, cb)
    composer = build_composer(music_model, cfg, cb)  # before any work: a missing key or model fails fast
    jobs = _describe_all(sections, describer, cfg, cb)
    try:
        compose_jobs(jobs, composer, cfg, cb)
    finally:
        composer.close()
    return _finish(jobs, cfg, "run", describer.model_name, composer.model_name, page=True)


def describe(paths: Iterable[str | Path], output: str | Path = "output", *, model: str = "auto",
             config: Optional[RunConfig] = None, callbacks: Optional[Callbacks] = None) -> dict:
    """Write a music description (and record) per section, no audio."""
    cfg = config or RunConfig()
    cfg.output = Path(output)
    cb = callbacks or Callbacks()
    sections = find_sections(paths, exclude=[cfg.output])
    describer = build_describer(model, cfg, cb)
    jobs = _describe_all(sections, describer, cfg, cb)
    return _finish(jobs, cfg, "describe", describer.model_name, None, page=False)


_natural = natsort_keygen(key=lambda s: s.lower())


def find_descriptions(paths: Iterable[str | Path], exclude_names: Iterable[str] = ()) -> list[tuple[str, Path]]:
    """``(section name, .txt path)`` for description files, or folder trees of them as ``describe`` writes."""
    found: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_file():
            if path.suffix.lower() != ".txt":
                raise InputError(f"{path}: compose reads .txt description files (or a folder of them)")
            found.append((path.stem, path))
            continue
        for txt in sorted(path.rglob("*.txt"), key=lambda p: _natural(p.as_posix())):
            rel = txt.relative_to(path)
            if any(is_hidden(part) for part in rel.parts):
                continue
            found.append((rel.with_suffix("").as_posix(), txt))
    if not found:
        raise InputError(f"no .txt description found in {', '.join(str(p) for p in paths)}",
                         hint='run "manga2music describe PATH" first, or pass --text "..."')
    return found


def _slug(text: str) -> str:
    words = re.findall(r"\w+", text.lower())[:6]
    return "-".join(words) or "track"


def compose(paths: Iterable[str | Path] = (), output: str | Path = "output", *, text: Optional[str] = None,
            model: str = "auto", config: Optional[RunConfig] = None, callbacks: Optional[Callbacks] = None) -> dict:
    """Compose tracks from description files (or one ``text``)."""
    cfg = config or RunConfig()
    cfg.output = Path(output)
    cb = callbacks or Callbacks()
    _check_format(cfg)
    paths = list(paths)
    if text is not None and not text.strip():
        raise InputError("--text is empty")
    items: list[tuple[str, str]] = []
    if text is not None:
        items.append((_slug(text), text.strip()))
    if paths:
        for name, txt in find_descriptions(paths):
            content = txt.read_text(encoding="utf-8", errors="replace").strip()
            if not content:
                _log(cb, "warning", f"Skipping {txt}: it is empty")
                continue
            items.append((name, content))
    if not items:
        raise InputError("nothing to compose", hint='pass description files or --text "..."')
    composer = build_composer(model, cfg, cb)
    jobs = []
    for name, content in items:
        job = _start_job(name, cfg.output, cb)
        job.description = content
        jobs.append(job)
    try:
        compose_jobs(jobs, composer, cfg, cb)
    finally:
        composer.close()
    return _finish(jobs, cfg, "compose", None, composer.model_name, page=False)
