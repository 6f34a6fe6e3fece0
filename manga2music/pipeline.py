"""describe -> compose for many sections: the loops, resume, records and the manifest entries.

No typer, no rich: the CLI and notebooks drive this through :mod:`manga2music.api`,
which resolves the models and holds the output folder's lock around these loops.

* One bad page never kills a section, and **any** failure inside a section (ours,
  a library's ``ValueError``, an ``OSError`` while writing) fails that section
  alone: it gets one line naming the cause, the others go on.  Only errors that no
  section could escape (``stops_run``: a full disk, a rejected API key) stop the
  run; the caller still writes the manifest of what is done.
* Every file goes through :func:`manga2music.outputs.commit`, so a kill at any
  moment is finished by a plain rerun and never makes our files look like the user's.
* Each stage is split at the model call, so another executor (``manga2music.distributed``)
  can run the call elsewhere and still write through the same code:
  :func:`plan_describe` -> ``describer.describe`` -> :func:`commit_describe`, and
  :func:`compose_requests` -> ``composer.compose`` -> :func:`write_group` (or :func:`fail_group`).
"""

from __future__ import annotations

import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

from .composers.base import ComposeRequest, Composer
from .describers.base import Describer, PageImage
from .errors import Manga2MusicError, PageError
from .files import decode_text, raise_for_disk, read_regular_file, readable
from .outputs import (
    SectionFiles,
    Staged,
    commit,
    fingerprint,
    is_ours,
    new_record,
    now_iso,
    read_record,
    settle,
    to_json,
)
from .options import RunConfig
from .progress import ProgressFn, report
from .sections import Section

LogFn = Callable[[str, str], None]  # (level: "info" | "warning", message)

#: requests handed to a composer per call (at least): each call's tracks are written before the
#: next starts, so an interrupt loses little; a larger --batch-size raises it so batches can fill
COMPOSE_GROUP = 8
#: formats whose samples survive a round trip exactly: a format change re-encodes from them
LOSSLESS = ("wav", "flac")
#: a description file larger than this is not a description
MAX_DESCRIPTION_BYTES = 1024 * 1024


@dataclass
class Callbacks:
    sections: Optional[ProgressFn] = None  # overall: (done, total, section name)
    step: Optional[ProgressFn] = None  # current step: pages, tokens, decoder steps
    log: Optional[LogFn] = None
    #: runs spread over workers (``--ray``): what each worker is doing, ``(worker, label)``; ``""`` when idle
    worker: Optional[Callable[[str, str], None]] = None

    def info(self, message: str) -> None:
        if self.log is not None:
            self.log("info", message)

    def warn(self, message: str) -> None:
        if self.log is not None:
            self.log("warning", message)


@dataclass
class SectionJob:
    """One section moving through the run.  ``record`` is always what is on disk."""

    name: str
    files: SectionFiles
    record: dict
    description: Optional[str] = None
    status: str = "pending"  # pending | ok | skipped | failed
    message: Optional[str] = None
    did_work: bool = False
    tracks: list[Path] = field(default_factory=list)
    midi: list[Path] = field(default_factory=list)
    skipped_pages: Optional[list[dict]] = None  # pages this run could not read (None: not read this run)

    def fail(self, message: str, cb: Callbacks) -> None:
        self.status, self.message = "failed", message
        cb.warn(f"Skipping {self.name}: {message}")

    def commit(self, staged: Staged, updates: dict) -> None:
        self.record = commit(self.files.record, self.record, staged, updates)
        self.did_work = True


def start_job(name: str, output: Path, cb: Callbacks) -> SectionJob:
    """A job for section ``name``: its record as a killed run may have left it, folded back to a settled state."""
    files = SectionFiles.for_section(output, name)
    old = read_record(files.record)
    job = SectionJob(name, files, record=settle(dict(old), files.record.parent) if old else new_record(name))
    if files.record.exists() and old is None:
        job.fail(f"{readable(files.record)} exists and was not written by manga2music; move it or choose another -o",
                 cb)
    return job


def describe_error(exc: BaseException) -> str:
    """One line naming an unexpected error's type and message (no object reprs, no temp paths)."""
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {readable(text)}" if text else type(exc).__name__


def guarded(job: SectionJob, cb: Callbacks, step: Callable[[], None]) -> None:
    """Run one section's step; any failure except a run-stopping one fails just that section."""
    try:
        step()
    except Manga2MusicError as exc:
        if exc.stops_run:
            raise
        job.fail(exc.message, cb)
    except OSError as exc:
        raise_for_disk(exc, job.files.base.parent)
        job.fail(f"cannot write its files: {describe_error(exc)}", cb)
        _debug_traceback(cb)
    except Exception as exc:  # noqa: BLE001 - whatever a library raises stays inside the section
        job.fail(describe_error(exc), cb)
        _debug_traceback(cb)


def _debug_traceback(cb: Callbacks) -> None:
    from .settings import debug_enabled

    if debug_enabled():
        cb.warn(traceback.format_exc())


def read_description(path: Path) -> str:
    """A description file as text, whatever encoding the user saved it in; only regular files, size-checked."""
    return decode_text(read_regular_file(path, MAX_DESCRIPTION_BYTES, what="description")).strip()


# --- describe ------------------------------------------------------------------------------


def _load_pages(section: Section, cb: Callbacks) -> tuple[list, list[dict]]:
    from .pages import load_page

    loaded, skipped = [], []
    for i, page in enumerate(section.pages):
        report(cb.step, i, len(section.pages), f"reading {page.name}")
        try:
            loaded.append(load_page(page))
        except PageError as exc:
            skipped.append({"source": page.source, "error": exc.message})
            cb.warn(f"{section.name}: skipping page {page.name}: {exc.message}")
    report(cb.step, len(section.pages), len(section.pages), "pages read")
    return loaded, skipped


def _page_entry(lp) -> dict:
    from .files import exact_bytes_hex

    entry = {"name": lp.page.name, "source": lp.page.source, "path": readable(lp.page.path.resolve()),
             "member": readable(lp.page.member) if lp.page.member is not None else None,
             "pdf_index": lp.page.pdf_index, "sha256": lp.sha256, "tiles": len(lp.tiles)}
    raw = exact_bytes_hex(lp.page.path.resolve())
    if raw:
        entry["path_bytes"] = raw  # the exact bytes of a name that is not UTF-8
    return entry


def _artifact(job: SectionJob, analysis: dict | None, chunks: list, cfg: RunConfig, cb: Callbacks,
              staged: Staged) -> None:
    """Stage NAME.analysis.json (--save-artifact) unless a file of the user's is in its place."""
    if not cfg.save_artifact or analysis is None:
        return
    path = job.files.artifact()
    if not is_ours(path, job.record):
        cb.warn(f"{job.name}: not writing {path.name}: a file of yours is there (move it to get the analysis)")
        return
    staged.add_bytes(path, to_json({"section": job.name, "analysis": analysis, "chunks": chunks}).encode("utf-8"))


@dataclass
class DescribeWork:
    """What describing one section needs from a describer (its pages, read and tiled here) and what it will record."""

    loaded: list  # LoadedPage
    skipped: list[dict]
    key: str  # the describe fingerprint
    images: list[PageImage]


def plan_describe(section: Section, job: SectionJob, describer: Describer, cfg: RunConfig,
                  cb: Callbacks) -> Optional[DescribeWork]:
    """Everything before the model: read the pages, then keep, reuse or fail; ``None`` when no model call is needed."""
    if section.error:
        job.fail(section.error, cb)
        return None
    loaded, skipped = _load_pages(section, cb)
    job.skipped_pages = skipped
    if not loaded:
        reasons = "; ".join(s["error"] for s in skipped[:2])
        job.fail(f"no readable page among {len(section.pages)}" + (f" ({reasons})" if reasons else ""), cb)
        return None
    key = fingerprint({"pages": [lp.sha256 for lp in loaded], "describer": describer.settings_key()})
    txt = job.files.description
    old = job.record.get("describe", {})
    if txt.exists() and not is_ours(txt, job.record):
        job.description = read_description(txt)
        job.status = "skipped"
        cb.warn(f"{section.name}: {readable(txt)} was written or edited by you; keeping it and composing from it")
        return None
    if not cfg.force and txt.exists() and old.get("fingerprint") == key:
        job.description = read_description(txt)
        job.status = "skipped"
        artifact = job.files.artifact()
        if cfg.save_artifact and (not artifact.exists() or not is_ours(artifact, job.record)):
            staged = Staged()  # asked for on a rerun: write it from the record (or say why not)
            _artifact(job, old.get("analysis"), old.get("chunks", []), cfg, cb, staged)
            if staged.items:
                job.commit(staged, {})
        return None
    return DescribeWork(loaded, skipped, key, page_images(loaded))


def page_images(loaded: list) -> list[PageImage]:
    """What a describer sees of loaded pages: one image per page, or per tile of a tall strip (``strip.png#2``)."""
    return [
        PageImage(lp.page.name if len(lp.tiles) == 1 else f"{lp.page.name}#{t + 1}", tile, lp.format)
        for lp in loaded
        for t, tile in enumerate(lp.tiles)
    ]


def commit_describe(job: SectionJob, work: DescribeWork, result, describer: Describer, cfg: RunConfig,
                    cb: Callbacks, seconds: float) -> None:
    """Write what the describer returned for ``work`` (.txt, record, --save-artifact) in the kill-safe order."""
    description = readable(result.description).strip()
    if not description:
        job.fail("the describer returned an empty description", cb)
        return
    analysis = result.analysis.model_dump() if result.analysis else None
    chunks = [c.model_dump() for c in result.chunks]
    staged = Staged()
    staged.add_bytes(job.files.description, (description + "\n").encode("utf-8"))
    _artifact(job, analysis, chunks, cfg, cb, staged)
    job.commit(staged, {
        "pages": [_page_entry(lp) for lp in work.loaded],
        "skipped_pages": work.skipped,
        "describe": {
            "model": describer.model_name,
            "model_id": describer.model_id,
            "fingerprint": work.key,
            "settings": describer.settings_key(),
            "prompt_version": result.prompt_version,
            "analysis": analysis,
            "chunks": chunks,
            "features": result.features,
            "usage": result.usage,
            "cost_usd": result.cost_usd,
            "warnings": result.warnings,
            "seconds": round(seconds, 3),
            "at": now_iso(),
        },
        "description": description,
    })
    job.description = description


def describe_section(section: Section, job: SectionJob, describer: Describer, cfg: RunConfig, cb: Callbacks) -> None:
    """Describe one section (or reuse its description) and write .txt + .json: plan, model call, commit."""
    work = plan_describe(section, job, describer, cfg, cb)
    if work is None:
        return
    started = time.perf_counter()
    result = describer.describe(work.images, progress=cb.step)
    commit_describe(job, work, result, describer, cfg, cb, time.perf_counter() - started)


def describe_sections(sections: list[Section], output: Path, describer: Describer, cfg: RunConfig,
                      cb: Callbacks) -> list[SectionJob]:
    """Describe every section with one describer, then free its memory (before any composer loads)."""
    jobs = []
    try:
        for i, section in enumerate(sections):
            report(cb.sections, i, len(sections), f"describing {section.name}")
            job = start_job(section.name, output, cb)
            jobs.append(job)
            if job.status != "failed":
                guarded(job, cb, lambda s=section, j=job: describe_section(s, j, describer, cfg, cb))
        report(cb.sections, len(sections), len(sections), "described")
    finally:
        describer.close()
    return jobs


# --- compose -------------------------------------------------------------------------------


def music_key(job: SectionJob, composer: Composer, cfg: RunConfig) -> str:
    """What decides the music itself (not its file format): a change composes new music."""
    return fingerprint({
        "text": job.description,
        "composer": composer.settings_key(),
        "duration": cfg.duration,
        "seed": cfg.seed,  # only an explicit seed; a random one is recorded, not required
        "variations": cfg.variations,
        "normalize": cfg.normalize,
    })


@dataclass
class ComposePlan:
    """What one job needs: nothing, a re-encode of the music it has, or (new) music from these seeds."""

    job: SectionJob
    action: str  # "skip" | "reencode" | "compose"
    seeds: list[int] = field(default_factory=list)


def _targets(job: SectionJob, cfg: RunConfig) -> list[Path]:
    return [job.files.track(cfg.fmt, t) for t in range(1, cfg.variations + 1)]


def _old_takes(job: SectionJob) -> list[dict]:
    return list(job.record.get("compose", {}).get("takes", []))


def plan_compose(job: SectionJob, composer: Composer, cfg: RunConfig, cb: Callbacks) -> ComposePlan:
    targets = _targets(job, cfg)
    for path in targets + [job.files.midi(t) for t in range(1, cfg.variations + 1)]:
        if not is_ours(path, job.record):
            raise Manga2MusicError(f"{readable(path)} exists and was not written by manga2music; move it or choose "
                                   "another -o")
    old = job.record.get("compose", {})
    same_music = old.get("fingerprint") == music_key(job, composer, cfg) and not cfg.force
    if same_music and old.get("format") == cfg.fmt and all(p.exists() for p in targets):
        return ComposePlan(job, "skip")
    old_takes = _old_takes(job)
    if same_music and len(old_takes) == cfg.variations:
        folder = job.files.base.parent
        sources = [folder / t["audio"] for t in old_takes]
        if old.get("format") in LOSSLESS and all(p.exists() and is_ours(p, job.record) for p in sources):
            return ComposePlan(job, "reencode")
        return ComposePlan(job, "compose", [int(t["seed"]) for t in old_takes])  # the same music, made again
    base = cfg.seed
    if base is None:
        base = random.SystemRandom().randrange(2**31)
    return ComposePlan(job, "compose", [base + t for t in range(cfg.variations)])


def _track_tags(job: SectionJob, composer: Composer, seed) -> dict:
    return {"title": job.name, "comment": job.description or "", "model": composer.model_name, "seed": str(seed)}


def _old_files_to_remove(job: SectionJob, cfg: RunConfig, keep: set[Path]) -> list[Path]:
    """Tracks and notes of ours from earlier takes or formats that this step does not rewrite."""
    folder = job.files.base.parent
    out = []
    for take in _old_takes(job):
        for key in ("audio", "midi"):
            if take.get(key):
                path = folder / take[key]
                if path not in keep and path.exists() and is_ours(path, job.record):
                    out.append(path)
    return out


def _commit_tracks(job: SectionJob, composer: Composer, cfg: RunConfig, takes: list[dict], staged: Staged,
                   seconds: float) -> None:
    written = {job.files.base.parent / t[k] for t in takes for k in ("audio", "midi") if t.get(k)}
    for path in _old_files_to_remove(job, cfg, written):
        staged.remove(path)
    job.commit(staged, {
        "compose": {
            "model": composer.model_name,
            "model_id": composer.model_id,
            "fingerprint": music_key(job, composer, cfg),
            "settings": composer.settings_key(),
            "duration": cfg.duration,
            "format": cfg.fmt,
            "normalize": cfg.normalize,
            "seed": takes[0]["seed"],
            "takes": takes,
            "midi": [t["midi"] for t in takes if "midi" in t],
            "seconds": round(seconds, 3),
            "at": now_iso(),
        },
        "description": job.description,
    })
    _remember_outputs(job)


def _remember_outputs(job: SectionJob) -> None:
    folder = job.files.base.parent
    takes = _old_takes(job)
    job.tracks = [folder / t["audio"] for t in takes]
    job.midi = [folder / t["midi"] for t in takes if t.get("midi")]


def write_tracks(job: SectionJob, reqs: list[ComposeRequest], tracks: list, composer: Composer, cfg: RunConfig,
                 seconds: float) -> None:
    """Encode, tag and commit the takes of one job."""
    from .audio import encode_audio

    staged, takes = Staged(), []
    try:
        for take, (req, track) in enumerate(zip(reqs, tracks), start=1):
            path = job.files.track(cfg.fmt, take)
            data = encode_audio(track.audio, track.sample_rate, fmt=cfg.fmt,
                                tags=_track_tags(job, composer, req.seed), normalize=cfg.normalize)
            staged.add_bytes(path, data)
            entry = {"take": take, "audio": path.name, "seed": req.seed, "info": track.info,
                     "warnings": track.warnings}
            if track.midi:
                midi_path = job.files.midi(take)
                staged.add_bytes(midi_path, track.midi)
                entry["midi"] = midi_path.name
            takes.append(entry)
        _commit_tracks(job, composer, cfg, takes, staged, seconds)
    finally:
        staged.discard()


def reencode_tracks(job: SectionJob, composer: Composer, cfg: RunConfig) -> None:
    """Same music, new format: decode our lossless takes and encode them again (no new composing)."""
    import soundfile as sf

    from .audio import encode_audio

    folder = job.files.base.parent
    staged, takes = Staged(), []
    started = time.perf_counter()
    try:
        for take in _old_takes(job):
            audio, rate = sf.read(str(folder / take["audio"]), dtype="float32", always_2d=True)
            path = job.files.track(cfg.fmt, int(take["take"]))
            staged.add_bytes(path, encode_audio(audio, rate, fmt=cfg.fmt, tags=_track_tags(job, composer, take["seed"]),
                                                normalize=False))  # it was normalised when first written
            takes.append({**take, "audio": path.name, "reencoded_from": take["audio"]})
        _commit_tracks(job, composer, cfg, takes, staged, time.perf_counter() - started)
    finally:
        staged.discard()


def take_group(pending: list, size: int) -> list:
    """Remove and return the next group from the front of ``pending``: whole jobs, at most ``size`` requests
    unless one job alone has more.  A job's takes stay together, because they are written together."""
    group: list = []
    while pending:
        job = pending[0][0]
        count = 1
        while count < len(pending) and pending[count][0] is job:
            count += 1
        if group and len(group) + count > size:
            break
        group.extend(pending[:count])
        del pending[:count]
    return group


def _groups(pending: list, size: int) -> Iterator[list]:
    pending = list(pending)
    while pending:
        yield take_group(pending, size)


def compose_requests(job: SectionJob, composer: Composer, cfg: RunConfig,
                     cb: Callbacks) -> list[tuple[SectionJob, ComposeRequest]]:
    """What composing ``job`` needs from the composer: nothing (up to date, or re-encoded here), or these requests."""
    if job.status == "failed" or not job.description:
        return []
    holder: list[ComposePlan] = []
    guarded(job, cb, lambda: holder.append(plan_compose(job, composer, cfg, cb)))
    if not holder:
        return []
    plan = holder[0]
    if plan.action == "skip":
        _remember_outputs(job)
        return []
    if plan.action == "reencode":
        guarded(job, cb, lambda: reencode_tracks(job, composer, cfg))
        return []
    return [(job, ComposeRequest(job.name, job.description or "", cfg.duration, seed)) for seed in plan.seeds]


def group_size(composer: Composer) -> int:
    """Requests handed to the composer per call (see :data:`COMPOSE_GROUP`)."""
    return max(COMPOSE_GROUP, int(getattr(composer.options, "batch_size", None) or 0))


def fail_group(group: list[tuple[SectionJob, ComposeRequest]], cb: Callbacks) -> None:
    """The composer failed on a whole group (the lead job holds the cause): every job in it fails with it."""
    lead = group[0][0]
    for job, _ in group:
        if job.status != "failed":
            job.fail(lead.message or "composing failed", cb)


def write_group(group: list[tuple[SectionJob, ComposeRequest]], tracks: list, composer: Composer, cfg: RunConfig,
                cb: Callbacks, seconds: float) -> list[SectionJob]:
    """Write the tracks the composer made for ``group``, job by job (each alone can fail); returns the jobs."""
    by_job: dict[int, list] = {}
    for (job, req), track in zip(group, tracks):
        by_job.setdefault(id(job), [job, [], []])
        by_job[id(job)][1].append(req)
        by_job[id(job)][2].append(track)
    for job, reqs, job_tracks in by_job.values():
        guarded(job, cb, lambda j=job, r=reqs, t=job_tracks: write_tracks(
            j, r, t, composer, cfg, seconds * len(r) / len(group)))
    return [job for job, _, _ in by_job.values()]


def compose_jobs(jobs: list[SectionJob], composer: Composer, cfg: RunConfig, cb: Callbacks) -> None:
    """Compose every job that has a description and needs (new) audio, a group at a time."""
    pending = [pair for job in jobs for pair in compose_requests(job, composer, cfg, cb)]
    done_jobs: set[int] = set()
    total_jobs = len({id(job) for job, _ in pending})
    for group in _groups(pending, group_size(composer)):
        started = time.perf_counter()
        holder: list[list] = []

        def run_group(g=group) -> None:
            holder.append(composer.compose([r for _, r in g], progress=cb.step))

        guarded(group[0][0], cb, run_group)
        if not holder:
            fail_group(group, cb)
            continue
        for job in write_group(group, holder[0], composer, cfg, cb, time.perf_counter() - started):
            done_jobs.add(id(job))
        report(cb.sections, len(done_jobs), total_jobs, "composed")


# --- results -------------------------------------------------------------------------------


def manifest_entry(job: SectionJob, output: Path, vision: str | None, music: str | None) -> dict:
    status = job.status
    if status in ("pending", "skipped"):
        status = "ok" if job.did_work else "skipped"

    def rel(p: Path | str) -> str:
        try:
            return readable(Path(p).relative_to(output).as_posix())
        except ValueError:
            return readable(p)

    describe = job.record.get("describe", {})
    return {
        "name": job.name,
        "status": status,
        "message": readable(job.message) if job.message else None,
        "description": rel(job.files.description) if job.files.description.exists() else None,
        "record": rel(job.files.record) if job.files.record.exists() else None,
        "tracks": [rel(t) for t in job.tracks],
        "midi": [rel(m) for m in job.midi],
        "pages": len(job.record.get("pages", [])),
        "skipped_pages": job.skipped_pages if job.skipped_pages is not None else job.record.get("skipped_pages", []),
        "vision_model": vision,
        "music_model": music,
        "seed": job.record.get("compose", {}).get("seed"),
        "usage": describe.get("usage") or None,
        "cost_usd": describe.get("cost_usd"),
    }
