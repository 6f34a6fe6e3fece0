"""describe -> compose for many sections: resume, skip, records and the manifest.

No typer, no rich: the CLI and notebooks drive this through :mod:`manga2music.api`.
One bad page never kills a section; one failed section never kills the run.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .composers.base import ComposeOptions, ComposeRequest, Composer
from .describers.base import DescribeOptions, Describer, PageImage
from .errors import BackendError, Manga2MusicError, PageError
from .outputs import (
    SectionFiles,
    file_sha256,
    fingerprint,
    is_ours,
    new_record,
    now_iso,
    read_record,
    write_json_atomic,
)
from .progress import ProgressFn, report
from .sections import Section

LogFn = Callable[[str, str], None]  # (level: "info" | "warning", message)

#: requests handed to a composer per call; the composer batches inside (MusicGen by free memory),
#: and each call's tracks are written before the next starts, so an interrupt loses little.
COMPOSE_GROUP = 8


@dataclass
class RunConfig:
    """Everything a run needs besides the inputs."""

    output: Path = Path("output")
    fmt: str = "wav"
    force: bool = False
    save_artifact: bool = False
    variations: int = 1
    normalize: bool = True
    describe: DescribeOptions = field(default_factory=DescribeOptions)
    compose: ComposeOptions = field(default_factory=ComposeOptions)


@dataclass
class Callbacks:
    sections: Optional[ProgressFn] = None  # overall: (done, total, section name)
    step: Optional[ProgressFn] = None  # current step: pages, tokens, decoder steps
    log: Optional[LogFn] = None


@dataclass
class SectionJob:
    """One section moving through the run."""

    name: str
    files: SectionFiles
    record: dict
    old: Optional[dict] = None
    description: Optional[str] = None
    status: str = "pending"  # pending | ok | skipped | failed
    message: Optional[str] = None
    did_work: bool = False
    tracks: list[str] = field(default_factory=list)
    midi: list[str] = field(default_factory=list)


def _log(cb: Callbacks, level: str, message: str) -> None:
    if cb.log is not None:
        cb.log(level, message)


def _fail(job: SectionJob, message: str, cb: Callbacks) -> None:
    job.status, job.message = "failed", message
    _log(cb, "warning", f"Skipping {job.name}: {message}")


def _start_job(name: str, output: Path, cb: Callbacks) -> SectionJob:
    files = SectionFiles.for_section(output, name)
    old = read_record(files.record)
    job = SectionJob(name, files, record=dict(old) if old else new_record(name), old=old)
    job.record.setdefault("files", {})
    if files.record.exists() and old is None:
        _fail(job, f"{files.record} exists and was not written by manga2music; move it or choose another -o", cb)
    return job


def _remember(job: SectionJob, path: Path) -> None:
    job.record["files"][path.name] = file_sha256(path)


# --- describe ------------------------------------------------------------------------------


def _load_pages(section: Section, job: SectionJob, cb: Callbacks) -> list:
    from .pages import load_page

    loaded, skipped = [], []
    for i, page in enumerate(section.pages):
        report(cb.step, i, len(section.pages), f"reading {page.name}")
        try:
            loaded.append(load_page(page))
        except PageError as exc:
            skipped.append({"source": page.source, "error": exc.message})
            _log(cb, "warning", f"{section.name}: skipping page {page.name}: {exc.message}")
    report(cb.step, len(section.pages), len(section.pages), "pages read")
    job.record["pages"] = [
        {"name": lp.page.name, "source": lp.page.source, "path": str(lp.page.path.resolve()), "member": lp.page.member,
         "pdf_index": lp.page.pdf_index, "sha256": lp.sha256, "tiles": len(lp.tiles)}
        for lp in loaded
    ]
    job.record["skipped_pages"] = skipped
    return loaded


def describe_section(section: Section, job: SectionJob, describer: Describer, cfg: RunConfig, cb: Callbacks) -> None:
    """Describe one section (or reuse its description) and write .txt + .json."""
    loaded = _load_pages(section, job, cb)
    if not loaded:
        _fail(job, f"no readable page among {len(section.pages)}", cb)
        return
    key = fingerprint({"pages": [lp.sha256 for lp in loaded], "describer": describer.settings_key()})
    txt = job.files.description
    old_describe = (job.old or {}).get("describe", {})
    if txt.exists() and not is_ours(txt, job.old):
        job.description = txt.read_text(encoding="utf-8").strip()
        job.status = "skipped"
        _log(cb, "warning", f"{section.name}: {txt} was written or edited by you; keeping it and composing from it")
        return
    if not cfg.force and txt.exists() and old_describe.get("fingerprint") == key:
        job.description = txt.read_text(encoding="utf-8").strip()
        job.status = "skipped"
        return
    images = [
        PageImage(lp.page.name if len(lp.tiles) == 1 else f"{lp.page.name}#{t + 1}", tile, lp.format)
        for lp in loaded
        for t, tile in enumerate(lp.tiles)
    ]
    started = time.perf_counter()
    try:
        result = describer.describe(images, progress=cb.step)
    except BackendError as exc:
        _fail(job, exc.message, cb)
        return
    if not result.description.strip():
        _fail(job, "the describer returned an empty description", cb)
        return
    job.description = result.description.strip()
    job.record["describe"] = {
        "model": describer.model_name,
        "model_id": describer.model_id,
        "fingerprint": key,
        "settings": describer.settings_key(),
        "prompt_version": result.prompt_version,
        "analysis": result.analysis.model_dump() if result.analysis else None,
        "chunks": [c.model_dump() for c in result.chunks],
        "features": result.features,
        "usage": result.usage,
        "cost_usd": result.cost_usd,
        "warnings": result.warnings,
        "seconds": round(time.perf_counter() - started, 3),
        "at": now_iso(),
    }
    job.record["description"] = job.description
    write_text(job, txt, job.description + "\n")
    if cfg.save_artifact and result.analysis is not None:
        artifact = job.files.artifact()
        write_json_atomic(artifact, {"section": section.name, "analysis": result.analysis.model_dump(),
                                     "chunks": [c.model_dump() for c in result.chunks]})
        _remember(job, artifact)
    write_json_atomic(job.files.record, job.record)
    job.did_work = True


def write_text(job: SectionJob, path: Path, text: str) -> None:
    from .audio import write_text_atomic

    write_text_atomic(path, text)
    _remember(job, path)


# --- compose -------------------------------------------------------------------------------


def _compose_key(job: SectionJob, composer: Composer, cfg: RunConfig) -> str:
    return fingerprint({
        "text": job.description,
        "composer": composer.settings_key(),
        "duration": cfg.compose.duration,
        "format": cfg.fmt,
        "seed": cfg.compose.seed,  # only an explicit seed; a random one is recorded, not required
        "variations": cfg.variations,
        "normalize": cfg.normalize,
    })


def _needs_compose(job: SectionJob, composer: Composer, cfg: RunConfig, cb: Callbacks) -> bool:
    targets = [job.files.track(cfg.fmt, t) for t in range(1, cfg.variations + 1)]
    for path in targets + [job.files.midi(t) for t in range(1, cfg.variations + 1)]:
        if not is_ours(path, job.old):
            _fail(job, f"{path} exists and was not written by manga2music; move it or choose another -o", cb)
            return False
    old = (job.old or {}).get("compose", {})
    done = all(p.exists() for p in targets) and old.get("fingerprint") == _compose_key(job, composer, cfg)
    if done and not cfg.force:
        job.tracks = [str(p) for p in targets]
        job.midi = [m for m in old.get("midi", [])]
        return False
    return True


def _seeds_for(job: SectionJob, cfg: RunConfig) -> list[int]:
    base = cfg.compose.seed
    if base is None:
        base = random.SystemRandom().randrange(2**31)
    return [base + t for t in range(cfg.variations)]


def _write_tracks(job: SectionJob, reqs: list[ComposeRequest], tracks: list, composer: Composer, cfg: RunConfig,
                  seconds: float) -> None:
    from .audio import write_audio, write_bytes_atomic

    takes = []
    for take, (req, track) in enumerate(zip(reqs, tracks), start=1):
        path = job.files.track(cfg.fmt, take)
        tags = {"title": job.name, "comment": job.description or "", "model": composer.model_name, "seed": str(req.seed)}
        write_audio(path, track.audio, track.sample_rate, fmt=cfg.fmt, tags=tags, normalize=cfg.normalize)
        _remember(job, path)
        entry = {"take": take, "audio": path.name, "seed": req.seed, "info": track.info, "warnings": track.warnings}
        if track.midi:
            midi_path = job.files.midi(take)
            write_bytes_atomic(midi_path, track.midi)
            _remember(job, midi_path)
            entry["midi"] = midi_path.name
            job.midi.append(str(midi_path))
        job.tracks.append(str(path))
        takes.append(entry)
    job.record["compose"] = {
        "model": composer.model_name,
        "model_id": composer.model_id,
        "fingerprint": _compose_key(job, composer, cfg),
        "settings": composer.settings_key(),
        "duration": cfg.compose.duration,
        "format": cfg.fmt,
        "normalize": cfg.normalize,
        "seed": reqs[0].seed,
        "takes": takes,
        "midi": [t["midi"] for t in takes if "midi" in t],
        "seconds": round(seconds, 3),
        "at": now_iso(),
    }
    job.record["description"] = job.description
    write_json_atomic(job.files.record, job.record)
    job.did_work = True


def compose_jobs(jobs: list[SectionJob], composer: Composer, cfg: RunConfig, cb: Callbacks) -> None:
    """Compose every job that has a description and needs (new) audio, a group at a time."""
    todo = [j for j in jobs if j.status != "failed" and j.description and _needs_compose(j, composer, cfg, cb)]
    pending: list[tuple[SectionJob, ComposeRequest]] = []
    for job in todo:
        job.tracks, job.midi = [], []
        for seed in _seeds_for(job, cfg):
            pending.append((job, ComposeRequest(job.name, job.description or "", cfg.compose.duration, seed)))
    for start in range(0, len(pending), COMPOSE_GROUP):
        group = pending[start:start + COMPOSE_GROUP]
        started = time.perf_counter()
        try:
            tracks = composer.compose([r for _, r in group], progress=cb.step)
        except BackendError as exc:
            for job in {id(j): j for j, _ in group}.values():
                _fail(job, exc.message, cb)
            continue
        seconds = time.perf_counter() - started
        by_job: dict[int, list] = {}
        for (job, req), track in zip(group, tracks):
            by_job.setdefault(id(job), [job, [], []])
            by_job[id(job)][1].append(req)
            by_job[id(job)][2].append(track)
        for job, reqs, job_tracks in by_job.values():
            try:
                _write_tracks(job, reqs, job_tracks, composer, cfg, seconds * len(reqs) / len(group))
            except (OSError, Manga2MusicError) as exc:
                _fail(job, f"cannot write audio: {getattr(exc, 'message', exc)}", cb)
        report(cb.sections, min(start + len(group), len(pending)), len(pending), "composed")


# --- results -------------------------------------------------------------------------------


def manifest_entry(job: SectionJob, output: Path, vision: str | None, music: str | None) -> dict:
    status = job.status
    if status in ("pending", "skipped"):
        status = "ok" if job.did_work else "skipped"

    def rel(p: Path | str) -> str:
        try:
            return Path(p).relative_to(output).as_posix()
        except ValueError:
            return str(p)

    describe = job.record.get("describe", {})
    return {
        "name": job.name,
        "status": status,
        "message": job.message,
        "description": rel(job.files.description) if job.files.description.exists() else None,
        "record": rel(job.files.record) if job.files.record.exists() else None,
        "tracks": [rel(t) for t in job.tracks],
        "midi": [rel(m) for m in job.midi],
        "pages": len(job.record.get("pages", [])),
        "skipped_pages": job.record.get("skipped_pages", []),
        "vision_model": vision,
        "music_model": music,
        "seed": job.record.get("compose", {}).get("seed"),
        "usage": describe.get("usage") or None,
        "cost_usd": describe.get("cost_usd"),
    }
