"""The compose stage: decide what each section needs, compose in groups, encode, tag and write the tracks.

A section whose music is unchanged is skipped; one whose only change is the audio
format is re-encoded from its lossless takes (or composed again from the recorded
seeds); anything else is composed, a group of requests per composer call, so the
composer can batch and an interrupt loses little.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from .audio import AUDIO_FORMATS, DEFAULT_FORMAT
from .cache import made_by
from .composers.base import Composer, ComposeRequest, compose_keeping
from .jobs import Callbacks, SectionJob, guarded
from .options import DEFAULT_DURATION, RunConfig, flag
from .outputs import Staged, fingerprint, is_ours, now_iso, refuse_theirs
from .progress import report
from .wording import first_few, listed

#: requests handed to a composer per call (at least): each call's tracks are written before the
#: next starts, so an interrupt loses little; a larger --batch-size raises it so batches can fill
COMPOSE_GROUP = 8
#: formats whose samples survive a round trip exactly: a format change re-encodes from them
LOSSLESS = ("wav", "flac")

def music_key(job: SectionJob, composer: Composer, cfg: RunConfig, variations: int | None = None) -> str:
    """What decides the music itself (not its file format): a change composes new music.  ``variations``: the key
    the takes would have with that many of them (the same music take by take; see :func:`plan_compose`)."""
    return fingerprint({
        "text": job.description,
        "composer": composer.settings_key(),
        "duration": track_seconds(job, composer, cfg),
        "seed": cfg.seed,  # only an explicit seed; a random one is recorded, not required
        "variations": cfg.variations if variations is None else variations,
        "normalize": cfg.normalize,
    })


def track_seconds(job: SectionJob, composer: Composer, cfg: RunConfig) -> float:
    """How long ``job``'s tracks are: ``cfg.duration`` when given; else, as a seed not given is the recorded one, the
    length its music was made with before (at most what ``composer`` makes in one track); else DEFAULT_DURATION.
    The value as given or recorded (3 stays 3), so that music made before keeps its fingerprint."""
    if cfg.duration is not None:
        return cfg.duration
    made = (job.record.get("compose") or {}).get("duration")
    if isinstance(made, bool) or not isinstance(made, (int, float)) or not 0 < made < float("inf"):
        return cfg.new_duration or DEFAULT_DURATION
    limit = getattr(composer, "max_duration", None)
    return min(made, float(limit)) if isinstance(limit, (int, float)) else made


def made_as_asked(old: dict, job: SectionJob, composer: Composer, cfg: RunConfig,
                  variations: int | None = None) -> bool:
    """Whether the music recorded in ``old`` is what ``cfg`` asks for.  Without --seed a run keeps the recorded
    seed, so music made with ``--seed N`` is what it asks for too (dropping --seed again recomposed the same
    music, and said its description had changed); and music made without --seed is what ``--seed N`` asks for when N
    is the seed it was made with (giving the recorded seed composed the same music again, and called it new)."""
    if old.get("fingerprint") == music_key(job, composer, cfg, variations):
        return True
    takes = _old_takes(job)
    if not takes or old.get("seed") is None or (cfg.seed is not None and cfg.seed != old["seed"]):
        return False
    other = None if cfg.seed is not None else int(old["seed"])  # the seed as the music's fingerprint may hold it
    return old.get("fingerprint") == music_key(job, composer, dataclasses.replace(cfg, seed=other), variations)


@dataclass
class ComposePlan:
    """What one job needs: nothing, a re-encode of the music it has, or (new) music from these seeds."""

    job: SectionJob
    action: str  # "skip" | "reencode" | "compose" | "trim" (fewer takes than last time: drop the last ones)
    seeds: list[int] = field(default_factory=list)
    keep: list[dict] = field(default_factory=list)  # takes already made that stay as they are (the first ones)


def _targets(job: SectionJob, cfg: RunConfig) -> list[Path]:
    return [job.files.track(cfg.fmt, t) for t in range(1, cfg.variations + 1)]


def _old_takes(job: SectionJob) -> list[dict]:
    return list(job.record.get("compose", {}).get("takes", []))


def plan_compose(job: SectionJob, composer: Composer, cfg: RunConfig, cb: Callbacks) -> ComposePlan:
    targets = _targets(job, cfg)
    old = job.record.get("compose", {})
    same_music = not cfg.force and made_as_asked(old, job, composer, cfg)
    notes_here = not _lost_midi(job)  # a take's notes are made with its audio: a lost .mid is composed again
    if same_music and old.get("format") == cfg.fmt and all(p.exists() for p in targets) and notes_here:
        return ComposePlan(job, "skip")  # nothing written: a track a tagger retagged since is left as it is (each
        # rerun failed its section, "calm.wav was changed since manga2music wrote it")
    plan = _plan_work(job, composer, cfg, old, same_music, notes_here)
    kept = len(plan.keep)  # the takes kept are not written (a retagged first take failed --variations 3)
    refuse_theirs(targets[kept:] + [job.files.midi(t) for t in range(kept + 1, cfg.variations + 1)], job.record)
    return plan


def _plan_work(job: SectionJob, composer: Composer, cfg: RunConfig, old: dict, same_music: bool,
               notes_here: bool) -> ComposePlan:
    """:func:`plan_compose` of a job with something to make."""
    old_takes = _old_takes(job)
    folder = job.files.base.parent
    if same_music and len(old_takes) == cfg.variations:
        sources = [folder / t["audio"] for t in old_takes]
        if old.get("format") in LOSSLESS and notes_here and all(p.exists() and is_ours(p, job.record)
                                                                for p in sources):
            return ComposePlan(job, "reencode")
        return ComposePlan(job, "compose", [int(t["seed"]) for t in old_takes])  # the same music, made again
    # only the number of takes changed: the takes made stay, new ones follow with the next seeds
    same_takes = bool(old_takes) and not cfg.force and made_as_asked(old, job, composer, cfg, len(old_takes))
    base = cfg.seed
    if same_takes:
        base = int(old_takes[0]["seed"])
        keep = old_takes[:cfg.variations]
        if old.get("format") == cfg.fmt and all((folder / t["audio"]).exists() for t in keep):  # as they are (one
            # a tagger retagged too: it is not written)
            new_seeds = [take_seed(base, t) for t in range(len(keep), cfg.variations)]
            return ComposePlan(job, "compose" if new_seeds else "trim", new_seeds, keep)
    if base is None and old_takes and not cfg.force:  # no --seed: the music it had, made again (longer, in another
        # format, from a changed description) from its recorded seed, not a new piece; --force asks for a new one
        base = int(old_takes[0]["seed"])
    if base is None and not old_takes:  # no --seed, and its first music: the seed its words were drawn with (a
        # local VLM's), so that the one seed the record and the listening page show makes both again (--seed N);
        # a second seed drawn here could not be given with it
        described = (job.record.get("describe") or {}).get("seed")
        base = described if isinstance(described, int) and not isinstance(described, bool) else None
    if base is None:
        base = random.SystemRandom().randrange(2**31)
    return ComposePlan(job, "compose", [take_seed(base, t) for t in range(cfg.variations)])


def take_seed(base: int, take: int) -> int:
    """The seed of take ``take`` (0: the first) of music whose first take has the seed ``base``: the next ones, round
    past the largest seed to 0 (take 2 of --seed 4294967295 was recorded as 4294967296, which --seed refuses: that
    take could not be made again)."""
    return (int(base) + take) % 2**32


def _lost_midi(job: SectionJob) -> list[str]:
    """The MIDI files of the recorded takes that are gone (a user deleted them)."""
    folder = job.files.base.parent
    return [t["midi"] for t in _old_takes(job) if t.get("midi") and not (folder / t["midi"]).exists()]


def _track_tags(job: SectionJob, composer: Composer, seed) -> dict:
    return {"title": job.name, "comment": job.description or "", "model": composer.tag_name, "seed": str(seed),
            "licence": composer.spec.licence}


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
            "licence": composer.spec.licence,  # of the weights that made the music
            "commercial": composer.spec.commercial,  # may it be published commercially (None: unclear)
            "fingerprint": music_key(job, composer, cfg),
            "settings": composer.settings_key(),
            "duration": track_seconds(job, composer, cfg),
            "format": cfg.fmt,
            "normalize": cfg.normalize,
            "seed": takes[0]["seed"],
            "description": job.description,  # the words its music is of (`describe` may write new ones later)
            **({"description_file": job.description_file} if job.description_file else {}),  # where they came from
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
    from .audio import encode_audio, file_rate

    staged, takes = Staged(), list(job.kept_takes)
    try:
        for take, (req, track) in enumerate(zip(reqs, tracks), start=len(takes) + 1):
            path = job.files.track(cfg.fmt, take)
            data = encode_audio(track.audio, track.sample_rate, fmt=cfg.fmt,
                                tags=_track_tags(job, composer, req.seed), normalize=cfg.normalize,
                                loop=bool(getattr(composer.options, "loop", False)))
            staged.add_bytes(path, data)
            entry = {"take": take, "audio": path.name, "sample_rate": file_rate(cfg.fmt, track.sample_rate),
                     "seed": req.seed, "info": track.info, "warnings": track.warnings, **made_by(composer)}
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

    from .audio import encode_audio, file_rate

    folder = job.files.base.parent
    staged, takes = Staged(), []
    started = time.perf_counter()
    normalized = (job.record.get("compose") or {}).get("normalize") is not False
    try:
        for take in _old_takes(job):
            audio, rate = sf.read(str(folder / take["audio"]), dtype="float32", always_2d=True)
            path = job.files.track(cfg.fmt, int(take["take"]))
            # normalised when first written: only its peaks kept under this format's ceiling (a lossy file's is
            # lower: an MP3 made from the WAV decoded to peaks over -1 dBFS)
            staged.add_bytes(path, encode_audio(audio, rate, fmt=cfg.fmt, tags=_track_tags(job, composer, take["seed"]),
                                                normalize="peaks" if normalized else False,
                                                loop=bool(getattr(composer.options, "loop", False))))
            takes.append({**take, "audio": path.name, "sample_rate": file_rate(cfg.fmt, rate),
                          "reencoded_from": take["audio"]})
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


def job_config(job: SectionJob, cfg: RunConfig) -> RunConfig:
    """``cfg`` as ``job`` is composed.  Without a format given, in the one its music is in (each section keeps its
    own: a folder of FLACs and WAVs stays so), else DEFAULT_FORMAT; without --variations, as many takes as it has
    (a plain rerun after ``--variations 2`` removed every second take), else 1.  A section a stopped run left,
    made beside others, as that run was asked (``cfg.stopped_sections``)."""
    resumed = cfg.stopped_sections.get(job.name)
    if resumed:
        cfg = dataclasses.replace(cfg, **resumed)
    if cfg.fmt is not None and cfg.variations is not None:
        return cfg
    made = job.record.get("compose") or {}
    takes = len(_old_takes(job))
    return dataclasses.replace(cfg, fmt=cfg.fmt or format_made(made.get("format")),
                               variations=cfg.variations or (takes if 1 <= takes <= 100 else cfg.new_variations or 1))


def format_made(recorded) -> str:
    """A record's format, as music made again without --format keeps it (DEFAULT_FORMAT where there is none)."""
    return recorded if recorded in AUDIO_FORMATS else DEFAULT_FORMAT


def compose_requests(job: SectionJob, composer: Composer, cfg: RunConfig,
                     cb: Callbacks) -> list[tuple[SectionJob, ComposeRequest]]:
    """What composing ``job`` needs from the composer: nothing (up to date, or re-encoded here), or these requests."""
    if job.status == "failed" or not job.description:
        return []
    cfg = job_config(job, cfg)
    holder: list[ComposePlan] = []
    guarded(job, cb, lambda: holder.append(plan_compose(job, composer, cfg, cb)))
    if not holder:
        return []
    plan = holder[0]
    if plan.action == "skip":
        _remember_outputs(job)
        return []
    if plan.action == "reencode":
        before = [t["audio"] for t in _old_takes(job)]
        guarded(job, cb, lambda: reencode_tracks(job, composer, cfg))
        if job.status != "failed":  # the files a video timeline or playlist points at are gone: said
            cb.info(f"{job.name}: the same music as {cfg.fmt}, not composed again; {', '.join(before)} "
                    f"{'is' if len(before) == 1 else 'are'} replaced ({flag('fmt', before[0].rsplit('.', 1)[-1])} "
                    f"brings {'it' if len(before) == 1 else 'them'} back)" if before else
                    f"{job.name}: the same music as {cfg.fmt}")
        return []
    if plan.action == "trim":
        folder = job.files.base.parent
        written = {folder / t[k] for t in plan.keep for k in ("audio", "midi") if t.get(k)}
        going = {p.name for p in _old_files_to_remove(job, cfg, written)}
        dropped = [t[k] for t in _old_takes(job)[len(plan.keep):] for k in ("audio", "midi") if t.get(k)]
        theirs = [name for name in dropped if name not in going and (folder / name).exists()]  # changed since
        # written (the user's now): kept, and said so, not said to be removed
        cb.info(f"{job.name}: {flag('variations', cfg.variations)}: keeping the first take(s)"
                + (f", removing {listed([n for n in dropped if n in going])}" if going else "")
                + (f"; {listed(theirs)} changed since manga2music wrote {'it' if len(theirs) == 1 else 'them'}: "
                   "left as it is" if theirs else ""))
        guarded(job, cb, lambda: _commit_tracks(job, composer, cfg, plan.keep, Staged(),
                                                float(job.record.get("compose", {}).get("seconds") or 0.0)))
        return []
    job.kept_takes = plan.keep
    old = job.record.get("compose") or {}
    if old.get("takes") and not plan.keep and not cfg.force:  # composed before: say what changed
        cb.info(f"{job.name}: composing again: {compose_changes(job, composer, cfg)}")
    seconds = track_seconds(job, composer, cfg)
    return [(job, ComposeRequest(job.name, job.description or "", seconds, seed)) for seed in plan.seeds]


def settings_changed(was, now, otherwise: str) -> str:
    """Why a composer's recorded settings differ from its settings now, in words: a new version of its algorithm
    (builtin's) is said as such, not as settings a user would look for among the flags."""
    if isinstance(was, dict) and isinstance(now, dict) and was.get("algorithm") != now.get("algorithm") \
            and was.get("algorithm") and now.get("algorithm") \
            and {k: v for k, v in was.items() if k != "algorithm"} == {k: v for k, v in now.items() if k != "algorithm"}:
        return f"a new version of the composer's music ({was['algorithm']} \u2192 {now['algorithm']})"
    return otherwise


def compose_changes(job: SectionJob, composer: Composer, cfg: RunConfig) -> str:
    """Why music made before is made again, as a user would say it (the description, the composer, a flag)."""
    from .outputs import fingerprint

    old = job.record.get("compose") or {}
    if made_as_asked(old, job, composer, cfg):  # the same music, written again from its seeds
        if old.get("format") != cfg.fmt:
            why = f"{flag('fmt')} {old.get('format')} \u2192 {cfg.fmt}"
        elif all(p.exists() for p in _targets(job, cfg)) and _lost_midi(job):
            why = "its MIDI file is missing"
        else:
            why = "a track of it is missing"
        return why + ", the same music from its recorded seeds"
    takes = len(_old_takes(job))
    if takes and takes != cfg.variations and made_as_asked(old, job, composer, cfg, takes):
        why = [f"{flag('variations')} {takes} \u2192 {cfg.variations}"]
        if old.get("format") != cfg.fmt:
            why.append(f"{flag('fmt')} {old.get('format')} \u2192 {cfg.fmt}")
        return "; ".join(why) + ", the same music from its recorded seeds"
    why = ["its description changed"] if _words_changed(job, old) else []
    if old.get("model") and old.get("model") != composer.model_name:
        why.append(f"composer {old.get('model')} \u2192 {composer.model_name}")
    elif fingerprint(old.get("settings")) != fingerprint(composer.settings_key()):
        was, now = old.get("settings"), composer.settings_key()
        if isinstance(was, dict) and isinstance(was.get("loop"), bool) and was["loop"] != now.get("loop") \
                and fingerprint({**was, "loop": now.get("loop")}) == fingerprint(now):
            why.append("a track that loops, not one that ends" if now.get("loop") else "a track that ends, not a loop")
        else:
            why.append(settings_changed(was, now, "the composer's settings changed"))
    seconds = float(track_seconds(job, composer, cfg))
    if old.get("duration") is not None and float(old["duration"]) != seconds:
        said = f"{flag('duration')} " if cfg.duration is not None else ""  # else: longer than this composer makes
        why.append(f"{said}{float(old['duration']):g} \u2192 {seconds:g} s"
                   + ("" if said else f" (the most {composer.model_name} makes)"))
    if cfg.seed is not None and old.get("seed") != cfg.seed:
        why.append(flag("seed", cfg.seed))
    if old.get("normalize") is not None and bool(old["normalize"]) != cfg.normalize:
        why.append("at -14 LUFS" if cfg.normalize else "at the model's level, not -14 LUFS")
    if old.get("format") in AUDIO_FORMATS and old["format"] != cfg.fmt:  # its files go: said, as a switch alone is
        gone = [t["audio"] for t in _old_takes(job) if isinstance(t.get("audio"), str)]
        why.append(f"{flag('fmt')} {old['format']} \u2192 {cfg.fmt}"
                   + (f" ({', '.join(gone)} {'is' if len(gone) == 1 else 'are'} replaced)" if gone else ""))
    return "; ".join(why) or "its description changed"


def _words_changed(job: SectionJob, old: dict) -> bool:
    """Whether the music recorded in ``old`` was made from other words than ``job.description``: its recorded
    fingerprint, with every setting as recorded and these words, is not what it was (made with or without an
    explicit --seed)."""
    takes = old.get("takes") or []
    if not old.get("fingerprint") or old.get("duration") is None or not takes:
        return False
    made = [fingerprint({"text": job.description, "composer": old.get("settings"), "duration": old["duration"],
                         "seed": seed, "variations": len(takes), "normalize": old.get("normalize")})
            for seed in (None, old.get("seed"))]
    return old["fingerprint"] not in made


class _StopsTheRun(BaseException):
    """An error writing a section's tracks that stops the run, carried out through the composer's call (which
    would otherwise take it for its own failure): not an Exception, so that no composer catches it."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def _raise(error: Exception) -> None:
    raise error


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
            j, r, t, composer, job_config(j, cfg), seconds * len(r) / len(group)))
        if job.status != "failed":  # what the composer had to make up ("no music words recognised..."): said, not
            # only kept in the record
            for warning in dict.fromkeys(w for track in job_tracks for w in track.warnings):
                cb.warn(f"{job.name}: {warning}")
    return [job for job, _, _ in by_job.values()]


def say_same_music(pending: list[tuple[SectionJob, ComposeRequest]], cfg: RunConfig, cb: Callbacks,
                   composer: Optional[Composer] = None) -> None:
    """``--seed`` gives every section that seed, so sections with the same description (similar pages, read alike by
    the builtin describer) get the same music: said, with what to do, rather than found by ear.  So are takes of a
    composer that samples nothing (``--temperature 0 --variations 3``: three copies under three seeds, unsaid)."""
    greedy = composer.greedy_setting() if composer is not None else None
    if greedy and pending and (cfg.variations or 1) > 1:
        cb.warn(f"{composer.model_name} at {greedy} picks the likeliest sound at each step: every take of a "
                f"description is the same music, whatever its seed ({flag('variations', cfg.variations)} makes "
                "copies); sample to make them differ")
    if cfg.seed is None:
        return
    alike: dict[tuple, list[str]] = {}
    for job, request in pending:
        names = alike.setdefault((request.text, request.seed, request.duration), [])
        if job.name not in names:
            names.append(job.name)
    for (_, seed, _), names in alike.items():
        if len(names) > 1:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            cb.warn(f"{shown}: the same description and seed {seed} make the same music; without "
                    f"{flag('seed')} each section draws a seed of its own (recorded, so it can be made again)")


def compose_jobs(jobs: list[SectionJob], composer: Composer, cfg: RunConfig, cb: Callbacks) -> None:
    """Compose every job that has a description and needs (new) audio, a group at a time.  A composer call that
    fails on several sections is tried again one section at a time (see :func:`_compose_alone`)."""
    pending = [pair for job in jobs for pair in compose_requests(job, composer, cfg, cb)]
    say_same_music(pending, cfg, cb, composer)
    done_jobs: set[int] = set()
    total_jobs = len({id(job) for job, _ in pending})
    for group in _groups(pending, group_size(composer)):
        failure, rest = _compose_group(group, composer, cfg, cb, done_jobs, total_jobs)
        if failure is None or not rest:
            continue
        if len({id(job) for job, _ in rest}) == 1 or getattr(failure, "stops_run", False):
            guarded(rest[0][0], cb, lambda: _raise(failure))
            fail_group(rest, cb)
        else:
            _compose_alone(rest, failure, composer, cfg, cb, done_jobs, total_jobs)


#: sections that fail alone, the way their group failed, before the failure is taken for the composer's own
SAME_FAILURES_ALONE = 2


def _compose_alone(rest: list[tuple[SectionJob, ComposeRequest]], failure: Exception, composer: Composer,
                   cfg: RunConfig, cb: Callbacks, done_jobs: set, total_jobs: int) -> None:
    """The sections of a group whose composer call failed, composed again one section a call: the call failed on
    all of them, but the cause may be one section's (its words), and the others were never made (they were failed
    with its error).  Once :data:`SAME_FAILURES_ALONE` sections in a row fail alone with the group's error, and the
    composer has made no section's music in this run, the failure is its own (a model that does not load), and the
    sections left fail with it untried, saying so; one that has made music fails only the sections it fails on (two
    descriptions too long for its text encoder fail the same way, and the others are made)."""
    by_job: dict[int, list] = {}
    for pair in rest:
        by_job.setdefault(id(pair[0]), []).append(pair)
    parts = list(by_job.values())
    said = failure_words(failure)
    cb.warn(f"{composer.model_name} failed on {first_few([p[0][0].name for p in parts])} together ({said}): "
            "composing them one at a time")
    same: list[str] = []
    for k, part in enumerate(parts):
        if len(same) >= SAME_FAILURES_ALONE and not done_jobs:
            untried = [pair for later in parts[k:] for pair in later]
            for job, _ in untried:
                if job.status != "failed":
                    job.fail(not_composed(composer, same, said), cb)
            return
        alone_failure, left = _compose_group(part, composer, cfg, cb, done_jobs, total_jobs)
        if alone_failure is None or not left:
            same.clear()
            continue
        guarded(left[0][0], cb, lambda e=alone_failure: _raise(e))
        fail_group(left, cb)
        if failure_words(alone_failure) == said:
            same.append(part[0][0].name)
        else:
            same.clear()


def not_composed(composer: Composer, same: list[str], said: str) -> str:
    """Why a section is failed untried: the composer failed alone on ``same`` the way their call failed."""
    return f"not composed: {composer.model_name} failed the same way on {first_few(same)} alone ({said})"


def failure_words(error: Exception) -> str:
    from .errors import Manga2MusicError
    from .jobs import describe_error

    return error.message if isinstance(error, Manga2MusicError) else describe_error(error)


def _compose_group(group: list[tuple[SectionJob, ComposeRequest]], composer: Composer, cfg: RunConfig,
                   cb: Callbacks, done_jobs: set, total_jobs: int) -> tuple[Optional[Exception], list]:
    """One composer call for ``group``, each section written as soon as its tracks are all made (a stop, or the
    composer failing later in the group, does not lose it): (the composer's error or None, the pairs not
    written)."""
    names = ", ".join(dict.fromkeys(job.name for job, _ in group))
    report(cb.sections, len(done_jobs), total_jobs, f"composing {names}")  # 0 of N first: composing has begun
    started = time.perf_counter()
    made: dict[int, object] = {}  # request index in the group -> its track, until its section is written
    written: set[int] = set()  # the sections of the group written
    count = [0]  # the group's tracks made until now

    def write_ready(i: int, track) -> None:
        made[i] = track
        count[0] += 1
        job = group[i][0]
        mine = [k for k, (j, _) in enumerate(group) if j is job]
        if id(job) in written or any(k not in made for k in mine):
            return
        written.add(id(job))
        share = (time.perf_counter() - started) * len(mine) / count[0]  # its part of the time they took
        try:
            for each in write_group([group[k] for k in mine], [made.pop(k) for k in mine], composer, cfg, cb, share):
                done_jobs.add(id(each))
        except BaseException as exc:  # a run-stopping error (a full disk): not the composer's failure
            raise _StopsTheRun(exc) from exc
        report(cb.sections, len(done_jobs), total_jobs, "composed")

    failure = None
    try:
        compose_keeping(composer, [r for _, r in group], cb.step, write_ready)
    except _StopsTheRun as stop:
        raise stop.error from None
    except Exception as exc:  # noqa: BLE001 - the composer failed: the sections not written yet fail with it
        failure = exc
    return failure, [(job, r) for job, r in group if id(job) not in written]
