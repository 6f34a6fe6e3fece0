"""The score stage: a chapter's pages -> scenes -> one cue per scene -> one score, a cue sheet and a read-along page.

For each chapter (a section read as a story):

1. **Readings.**  Every page's :class:`~manga2music.reading.PageReading` (energy, text,
   dialogue, panels, tones, reading time).  The builtin describer makes them while
   describing the chapter; with any other describer a reading pass runs beside it.
   Unchanged pages reuse the recorded readings.
2. **Scenes.**  Found in the readings (:func:`manga2music.scenes.find_scenes`), or
   given by the user (``--scenes FILE``).
3. **A direction and a description per scene.**  The chapter's key, lead instrument
   and theme (:func:`chapter_direction`) are shared by every scene, so the chapter
   sounds like one score; each scene gets its own mood, tempo and instruments.  A
   scene description the user edited (``NAME.sceneNN.txt``) is kept and composed from.
4. **Cues.**  One per scene, as long as its pages take to read (``--reading-speed``),
   rounded to whole bars (:func:`manga2music.cuesheet.plan_timing`), all of a chapter's
   cues in one composer call so a composer that batches can.  An unchanged cue is
   reused (decoded from its lossless file, or composed again from its recorded seed).
5. **The score** (:func:`manga2music.score_audio.join_cues`), each cue as a seamless
   loop, the cue sheet, WebVTT chapters, chapter tags, and the read-along page.

Every file goes through the record's kill-safe commit, like every other stage.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from .composers.base import ComposeRequest, Composer
from .describers.base import Describer
from .describing import _page_entry, _page_key, page_stream, probe_pages
from .errors import BackendError, InputError, Manga2MusicError
from .files import readable
from .jobs import Callbacks, SectionJob, guarded, read_description, start_job
from .options import RunConfig
from .outputs import Staged, fingerprint, is_ours, now_iso, to_json
from .pages import PageInfo, PageStream
from .progress import report
from .reading import READING_MODEL_VERSION, PageReading
from .sections import Section

if TYPE_CHECKING:  # pragma: no cover
    from .cuesheet import CueSheet

SCORE_VERSION = "score-1"  # bump when the joining, timing or file layout changes
LOSSLESS = ("wav", "flac")
READ_ALONG_PAGE_SIDE = 1000  # the read-along page shows pages this many pixels on the long side


@dataclass
class Direction:
    """What every scene of a chapter shares."""

    tonic: str  # "D"
    lead: str  # the instrument that carries the theme in every cue
    theme: tuple[int, ...]  # the motif, as scale steps from its first note
    mood: str  # the chapter's overall mood
    chat: Optional[object] = None  # a chat model's ChapterDirection (key, instruments, tempo range), when one gave it

    def sentence(self) -> str:
        return (f"Part of one chapter score: keep {self.tonic} as the home key and let the {self.lead} "
                "return with the chapter's theme.")


@dataclass
class ScenePlan:
    index: int  # 1-based
    pages: list[int]  # indices into the chapter's readings
    description: str
    mood: Optional[str]
    key: str  # what decides its description (pages, describer, direction)
    user_text: bool = False
    seed: int = 0
    cue_key: str = ""
    audio: Optional[np.ndarray] = None  # the composed cue (scene + tail)
    midi: Optional[bytes] = None
    info: dict = field(default_factory=dict)


def theme_for(seed: int) -> tuple[int, ...]:
    """A chapter's theme: a one-bar motif contour drawn from its seed (the builtin composer's own motif maker)."""
    from .music.melody import make_motif

    return tuple(int(c) for c in make_motif(np.random.default_rng([int(seed) % 2**63, 7]), "medium").contour)


def chapter_direction(readings: list[PageReading], seed: int) -> Direction:
    from .describers.builtin import Scores, choose_mood, tempo_and_key

    scores = Scores.from_readings(readings)
    mood = choose_mood(scores)
    _, tonic = tempo_and_key(mood, scores)
    return Direction(tonic=tonic, lead=mood.instruments[0].split()[-1], theme=theme_for(seed), mood=mood.name)


def builtin_scene_description(readings: list[PageReading], direction: Direction) -> tuple[str, str]:
    """(description, mood) of one scene from its readings, in the chapter's home key, with its lead instrument."""
    from .describers.builtin import Scores, _joined, choose_mood, tempo_and_key

    scores = Scores.from_readings(readings)
    mood = choose_mood(scores)
    tempo, _ = tempo_and_key(mood, scores)
    instruments = list(mood.instruments)
    if not any(direction.lead in i for i in instruments):
        instruments = [f"{direction.lead} theme"] + instruments[:-1]
    text = (f"{mood.style} with {_joined(tuple(instruments))}, {tempo} BPM in {direction.tonic} {mood.mode}, "
            f"{mood.atmosphere}, {mood.melody}, returning to the chapter's theme.")
    return text, mood.name


def _readings_pass(section: Section, infos: list[PageInfo], cb: Callbacks) -> list[PageReading]:
    """Readings of every page with the builtin reader (for describers that do not make them)."""
    from .reading import iter_groups, iter_readings

    stream = PageStream(infos, max_side=1280)
    readings = []
    for name, outcome in iter_readings(iter_groups(stream)):
        if isinstance(outcome, Exception):
            cb.warn(f"{section.name}: no reading for page {name}: {outcome}")
            continue
        readings.append(outcome)
    return readings


@dataclass
class ChapterReading:
    readings: list[PageReading]
    infos: list[PageInfo]
    describe: dict  # the record's "describe" entry
    description: str  # the chapter as a whole, in one paragraph
    fresh: bool  # made now (False: reused from the record)


def read_chapter(section: Section, job: SectionJob, describer: Describer, cfg: RunConfig,
                 cb: Callbacks) -> Optional[ChapterReading]:
    """The chapter's per-page readings and overall description, reused when pages and describer are unchanged."""
    if section.error:
        job.fail(section.error, cb)
        return None
    infos, skipped = probe_pages(section, cb)
    job.skipped_pages = skipped
    if not infos:
        job.fail(f"no readable page among {len(section.pages)}", cb)
        return None
    from .describers.chapter import SCORE_PROMPT_VERSION

    key = fingerprint({"pages": [_page_key(i) for i in infos], "describer": describer.settings_key(),
                       "reading": READING_MODEL_VERSION,
                       "score_prompts": SCORE_PROMPT_VERSION if _is_chat(describer) else None})
    old = job.record.get("describe", {})
    old_readings = (old.get("features") or {}).get("readings")
    if not cfg.force and old.get("fingerprint") == key and old_readings:
        readings = [PageReading.from_dict(d) for d in old_readings]
        names = {r.name for r in readings}
        return ChapterReading(readings, [i for i in infos if i.page.name in names], old,
                              str(job.record.get("description") or ""), fresh=False)
    if _is_chat(describer):
        return _read_chapter_with_chat(section, job, describer, infos, skipped, key, cb)
    stream = page_stream(section, infos, describer, job.output, cb)
    started = time.perf_counter()
    result = describer.describe(stream, progress=cb.step)
    if stream.skipped:
        gone = {s["source"] for s in stream.skipped}
        infos = [i for i in infos if i.page.source not in gone]
        job.skipped_pages = skipped + stream.skipped
    features = result.features or {}
    if features.get("readings"):
        readings = [PageReading.from_dict(d) for d in features["readings"]]
    else:
        readings = _readings_pass(section, infos, cb)
        features = {**features, "readings": [r.to_dict() for r in readings]}
    if not readings:
        job.fail(f"no page of {section.name} could be read", cb)
        return None
    names = {r.name for r in readings}
    infos = [i for i in infos if i.page.name in names]
    entry = {"model": describer.model_name, "model_id": describer.model_id, "fingerprint": key,
             "settings": describer.settings_key(), "prompt_version": result.prompt_version,
             "analysis": result.analysis.model_dump() if result.analysis else None,
             "features": features, "usage": result.usage, "cost_usd": result.cost_usd, "warnings": result.warnings,
             "seconds": round(time.perf_counter() - started, 3), "at": now_iso()}
    return ChapterReading(readings, infos, entry, readable(result.description).strip(), fresh=True)


def _is_chat(describer: Describer) -> bool:
    from .describers.chat import ChatDescriber

    return isinstance(describer, ChatDescriber)


def _read_chapter_with_chat(section: Section, job: SectionJob, describer, infos: list[PageInfo], skipped: list,
                            key: str, cb: Callbacks) -> Optional[ChapterReading]:
    """A chat model reads the pages (one entry each, then the chapter's direction); the builtin reader times them."""
    from .describers.chapter import SCORE_PROMPT_VERSION, chapter_direction, page_entries
    from .reading import source_name

    started = time.perf_counter()
    readings = _readings_pass(section, infos, cb)
    if not readings:
        job.fail(f"no page of {section.name} could be read", cb)
        return None
    names = {r.name for r in readings}
    infos = [i for i in infos if i.page.name in names]
    stream = PageStream(infos, max_side=describer.page_side)
    tile_entries, usage = page_entries(describer, stream, len(stream), progress=cb.step)
    entries: dict[str, dict] = {}
    for e in tile_entries:  # the tiles of a tall strip speak for one page: its first tile's scene change, the
        page = source_name(e["name"])  # highest intensity
        if page in entries:
            entries[page]["intensity"] = max(entries[page]["intensity"], e["intensity"])
        else:
            entries[page] = {**e, "name": page}
    direction = chapter_direction(describer, list(entries.values()))
    ordered = [entries.get(r.name, {"name": r.name, "mood": "neutral", "intensity": 1, "scene_change": False,
                                    "why": ""}) for r in readings]
    description = (f"A chapter score in {direction.key} for {', '.join(direction.instruments)}, "
                   f"{direction.tempo_low}-{direction.tempo_high} BPM.")
    entry = {"model": describer.model_name, "model_id": describer.model_id, "fingerprint": key,
             "settings": describer.settings_key(), "prompt_version": SCORE_PROMPT_VERSION, "analysis": None,
             "features": {"readings": [r.to_dict() for r in readings], "page_entries": ordered,
                          "direction": direction.model_dump()},
             "usage": usage, "cost_usd": None, "warnings": [], "seconds": round(time.perf_counter() - started, 3),
             "at": now_iso()}
    job.skipped_pages = skipped + stream.skipped
    return ChapterReading(readings, infos, entry, description, fresh=True)


def _starts_from_entries(entries: list[dict], min_pages: int = 2) -> list[int]:
    """Scene starts where a chat model said a page starts a scene, merging scenes shorter than ``min_pages``."""
    starts = [i for i, e in enumerate(entries) if i and e.get("scene_change")]
    kept: list[int] = []
    for s in starts:
        if s - (kept[-1] if kept else 0) >= min_pages and len(entries) - s >= min_pages:
            kept.append(s)
    return kept


def plan_scenes(chapter: ChapterReading, job: SectionJob, describer: Describer, cfg: RunConfig, cb: Callbacks,
                seed: int) -> tuple[list[ScenePlan], Direction]:
    from .scenes import SCENES_VERSION, find_scenes, page_vector, read_scene_starts, scenes_from_starts

    readings = chapter.readings
    names = [r.name for r in readings]
    features = chapter.describe.get("features") or {}
    entries = features.get("page_entries")
    if cfg.scenes_file is not None:
        scenes = scenes_from_starts(read_scene_starts(cfg.scenes_file, names), len(readings))
    elif entries and len(entries) == len(readings):
        scenes = scenes_from_starts(_starts_from_entries(entries), len(readings))
    else:
        scenes = find_scenes([page_vector(r) for r in readings])
    direction = chapter_direction(readings, seed)
    if features.get("direction"):
        from .describers.chapter import ChapterDirection

        chat = ChapterDirection.model_validate(features["direction"])
        direction = Direction(tonic=chat.key.split()[0], lead=chat.instruments[0], theme=theme_for(seed),
                              mood=direction.mood, chat=chat)
    builtin = describer.backend == "builtin-vision"
    old = {s.get("index"): s for s in (job.record.get("score") or {}).get("scenes", [])}
    plans = []
    for k, scene in enumerate(scenes, start=1):
        pages = list(scene.pages)
        key = fingerprint({"pages": [readings[i].to_dict() for i in pages], "describer": describer.settings_key(),
                           "direction": {k: v for k, v in direction.__dict__.items() if k != "chat"},
                           "chat": direction.chat.model_dump() if direction.chat is not None else None,
                           "entries": [entries[i] for i in pages] if entries else None, "scenes": SCENES_VERSION})
        txt = job.files.sibling(f".scene{k:02d}.txt")
        previous = old.get(k, {})
        if txt.exists() and not is_ours(txt, job.record):
            text = read_description(txt)
            cb.warn(f"{job.name}: scene {k}: {txt.name} was written or edited by you; composing from it")
            plans.append(ScenePlan(k, pages, text, previous.get("mood"), key, user_text=True))
            continue
        if not cfg.force and previous.get("key") == key and previous.get("description"):
            plans.append(ScenePlan(k, pages, previous["description"], previous.get("mood"), key))
            continue
        if builtin:
            text, mood = builtin_scene_description([readings[i] for i in pages], direction)
        elif direction.chat is not None and entries:  # a chat model: the scene's entries and the direction
            from collections import Counter

            from .describers.chapter import scene_description

            scene_entries = [entries[i] for i in pages]
            text = scene_description(describer, scene_entries, direction.chat)
            mood = Counter(e["mood"] for e in scene_entries).most_common(1)[0][0]
        else:  # ask the describer about this scene's pages, then hold it to the chapter's direction
            stream = PageStream([chapter.infos[i] for i in pages], max_side=describer.page_side)
            text = readable(describer.describe(stream, progress=cb.step).description).strip()
            text, mood = f"{text} {direction.sentence()}", None
        plans.append(ScenePlan(k, pages, text, mood, key))
    return plans, direction


def _sample_rate(composer: Composer) -> int:
    return int(getattr(composer, "sample_rate", 32000))


def _tempo(text: str) -> float:
    from .cuesheet import DEFAULT_BPM
    from .music.text_to_style import parse_style

    try:
        return float(parse_style(text).tempo_bpm) or DEFAULT_BPM
    except Exception:  # noqa: BLE001 - any text: never fail a chapter over a tempo word
        return DEFAULT_BPM


def _tail_samples(tempo: float, sample_rate: int) -> int:
    from .cuesheet import MAX_TRANSITION_S, TRANSITION_BEATS

    return int(round(min(TRANSITION_BEATS * 60.0 / max(20.0, tempo), MAX_TRANSITION_S) * sample_rate))


def _theme_reference(direction: Direction, seed: int) -> tuple[np.ndarray, int]:
    """The chapter theme rendered by the builtin composer (for composers that follow a melody or a reference)."""
    from .composers.builtin import BuiltinComposer

    track = BuiltinComposer().compose_one(f"solo piano theme, 90 BPM in {direction.tonic} major", 8.0, seed=seed,
                                          theme=direction.theme)
    return track.audio, track.sample_rate


def _reuse_cue(job: SectionJob, old: dict, plan: ScenePlan, fmt: str) -> Optional[np.ndarray]:
    """The cue's audio from its file, when it is unchanged, ours and lossless (else it is composed again)."""
    import soundfile as sf

    name = old.get("cue_file")
    if not name or old.get("cue_key") != plan.cue_key or old.get("format") not in LOSSLESS:
        return None
    path = job.files.base.parent / name
    if not path.exists() or not is_ours(path, job.record):
        return None
    try:
        audio, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError):
        return None
    return audio


def compose_cues(job: SectionJob, plans: list[ScenePlan], timings: list, direction: Direction, composer: Composer,
                 cfg: RunConfig, cb: Callbacks, seed: int, sample_rate: int) -> bool:
    """Give every scene its cue audio (reused or composed, all new ones in one composer call); False if it failed."""
    from .audio import normalize_loudness

    old = {s.get("index"): s for s in (job.record.get("score") or {}).get("scenes", [])}
    takes_theme = composer.backend == "builtin-music"
    takes_reference = composer.backend in ("musicgen-melody", "ace-step")
    reference = _theme_reference(direction, seed) if takes_reference else (None, None)
    wanted: list[tuple[ScenePlan, ComposeRequest]] = []
    for plan, t in zip(plans, timings):
        samples = t.length + _tail_samples(t.tempo_bpm, sample_rate)
        plan.seed = int(seed) + plan.index - 1
        plan.cue_key = fingerprint({"text": plan.description, "composer": composer.settings_key(), "samples": samples,
                                    "rate": sample_rate, "seed": plan.seed, "theme": list(direction.theme),
                                    "reference": takes_reference, "score": SCORE_VERSION})
        reused = None if cfg.force else _reuse_cue(job, old.get(plan.index, {}), plan, cfg.fmt)
        if reused is not None:
            plan.audio = reused
            plan.info = dict(old.get(plan.index, {}).get("info") or {})
            continue
        wanted.append((plan, ComposeRequest(f"{job.name} scene {plan.index}", plan.description, samples / sample_rate,
                                            plan.seed, theme=direction.theme if takes_theme else None,
                                            reference=reference[0], reference_rate=reference[1])))
    if wanted:
        tracks = composer.compose([r for _, r in wanted], progress=cb.step)
        for (plan, _), track in zip(wanted, tracks):
            if int(track.sample_rate) != sample_rate:
                raise BackendError(f"{composer.model_name} made {track.sample_rate} Hz audio, not {sample_rate} Hz")
            plan.audio = normalize_loudness(track.audio, sample_rate) if cfg.normalize else track.audio
            plan.midi, plan.info = track.midi, dict(track.info)
    return all(p.audio is not None for p in plans)


@dataclass
class ScoreFiles:
    """Where a chapter's score files go (all beside its record)."""

    job: SectionJob
    fmt: str

    def sibling(self, suffix: str) -> Path:
        return self.job.files.sibling(suffix)

    @property
    def score(self) -> Path:
        return self.sibling(f".score.{self.fmt}")

    @property
    def vtt(self) -> Path:
        return self.sibling(".score.vtt")

    @property
    def cue_sheet(self) -> Path:
        return self.sibling(".cues.json")

    @property
    def read_along(self) -> Path:
        return self.sibling(".read.html")

    def scene_text(self, k: int) -> Path:
        return self.sibling(f".scene{k:02d}.txt")

    def cue(self, k: int) -> Path:
        return self.sibling(f".cue{k:02d}.{self.fmt}")

    def loop(self, k: int) -> Path:
        return self.sibling(f".cue{k:02d}.loop.{self.fmt}")

    def midi(self, k: int) -> Path:
        return self.sibling(f".cue{k:02d}.mid")


def build_cue_sheet(job: SectionJob, chapter: ChapterReading, plans: list[ScenePlan], timings: list,
                    direction: Direction, files: ScoreFiles, cfg: RunConfig, sample_rate: int, describer: Describer,
                    composer: Composer) -> "CueSheet":
    from .cuesheet import CueSheet, PageTime, SceneCue, page_starts

    readings = chapter.readings
    scenes, pages = [], []
    for plan, t in zip(plans, timings):
        start, length = t.start / sample_rate, t.length / sample_rate
        reading = [readings[i].seconds / cfg.reading_speed for i in plan.pages]
        for i, page_start in zip(plan.pages, page_starts(start, length, reading)):
            pages.append(PageTime(index=i + 1, name=readings[i].name, scene=plan.index, start=round(page_start, 3),
                                  reading_seconds=round(readings[i].seconds / cfg.reading_speed, 2)))
        mood = plan.mood or "scene"
        scenes.append(SceneCue(
            index=plan.index, title=f"Scene {plan.index}: {mood}", mood=plan.mood, first_page=plan.pages[0] + 1,
            last_page=plan.pages[-1] + 1, pages=[readings[i].name for i in plan.pages], start=round(start, 3),
            end=round(start + length, 3), duration=round(length, 3), reading_seconds=round(sum(reading), 2),
            tempo_bpm=round(t.tempo_bpm, 2), bars=t.bars, transition_s=round(t.transition / sample_rate, 3),
            description=plan.description, description_file=files.scene_text(plan.index).name,
            cue_file=files.cue(plan.index).name, loop_file=files.loop(plan.index).name, seed=plan.seed))
    total = sum(t.length for t in timings) / sample_rate
    return CueSheet(chapter=job.name, score_file=files.score.name, vtt_file=files.vtt.name,
                    read_along_file=files.read_along.name, sample_rate=sample_rate, duration=round(total, 6),
                    reading_speed=cfg.reading_speed, music_model=composer.model_name,
                    vision_model=describer.model_name,
                    theme={"contour": list(direction.theme), "home_key": direction.tonic, "lead": direction.lead},
                    scenes=scenes, pages=pages)


def _read_along_html(chapter: ChapterReading, sheet, loops: list[np.ndarray], sample_rate: int) -> str:
    from .pages import decode_page
    from .readalong import loop_opus, page_jpeg, render

    uris = []
    for info in chapter.infos:
        try:
            tiles = decode_page(info, max_side=READ_ALONG_PAGE_SIDE)
            uris.append(page_jpeg(tiles[0], READ_ALONG_PAGE_SIDE))
        except Manga2MusicError:
            uris.append("")
    return render(sheet.chapter, sheet.model_dump(), uris, [loop_opus(x, sample_rate) for x in loops],
                  sheet.score_file)


def score_chapter(section: Section, job: SectionJob, describer: Describer, composer: Composer, cfg: RunConfig,
                  cb: Callbacks) -> None:
    """Score one chapter (or reuse its score) and write every file of it."""
    from .audio import encode_audio
    from .cuesheet import MAX_CUE_S, chapter_marks, plan_timing, webvtt
    from .score_audio import cue_loop, join_cues

    chapter = read_chapter(section, job, describer, cfg, cb)
    if chapter is None:
        return
    old_score = job.record.get("score") or {}
    seed = cfg.seed if cfg.seed is not None else old_score.get("seed")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    plans, direction = plan_scenes(chapter, job, describer, cfg, cb, int(seed))
    sample_rate = _sample_rate(composer)
    max_cue = min(MAX_CUE_S, float(getattr(composer, "max_duration", MAX_CUE_S)))
    reading = [sum(chapter.readings[i].seconds for i in p.pages) / cfg.reading_speed for p in plans]
    timings = plan_timing(reading, [_tempo(p.description) for p in plans], sample_rate, max_cue_s=max_cue)
    files = ScoreFiles(job, cfg.fmt)
    key = fingerprint({"pages": [r.to_dict() for r in chapter.readings], "scenes": [p.key for p in plans],
                       "texts": [p.description for p in plans], "composer": composer.settings_key(),
                       "format": cfg.fmt, "speed": cfg.reading_speed, "seed": seed, "normalize": cfg.normalize,
                       "score": SCORE_VERSION})
    if (not cfg.force and not chapter.fresh and old_score.get("fingerprint") == key and files.score.exists()
            and all((job.files.base.parent / n).exists() for n in old_score.get("outputs", []))):
        job.status = "skipped"
        job.tracks, job.description = [files.score], str(job.record.get("description") or "")
        return
    started = time.perf_counter()
    if not compose_cues(job, plans, timings, direction, composer, cfg, cb, int(seed), sample_rate):
        job.fail("the composer made no audio for some scenes", cb)
        return
    report(cb.step, 0, 1, f"joining {len(plans)} cues")
    sheet = build_cue_sheet(job, chapter, plans, timings, direction, files, cfg, sample_rate, describer, composer)
    score = join_cues([p.audio for p in plans], timings)
    loops = [cue_loop(p.audio, t.length, sample_rate) for p, t in zip(plans, timings)]
    tags = {"title": job.name, "comment": chapter.description, "model": composer.model_name, "seed": str(seed),
            "licence": composer.spec.licence}
    staged, written = Staged(), []

    def add(path: Path, data: bytes) -> None:
        staged.add_bytes(path, data)
        written.append(path.name)

    try:
        for plan in plans:
            if not plan.user_text:
                add(files.scene_text(plan.index), (plan.description + "\n").encode("utf-8"))
            cue_tags = {**tags, "title": f"{job.name}, scene {plan.index}", "comment": plan.description,
                        "seed": str(plan.seed)}
            add(files.cue(plan.index), encode_audio(plan.audio, sample_rate, fmt=cfg.fmt, tags=cue_tags,
                                                    normalize=False))
            add(files.loop(plan.index), encode_audio(loops[plan.index - 1], sample_rate, fmt=cfg.fmt,
                                                     tags=cue_tags, normalize=False))
            if plan.midi:
                add(files.midi(plan.index), plan.midi)
        add(files.score, encode_audio(score, sample_rate, fmt=cfg.fmt, tags=tags, normalize=cfg.normalize,
                                      chapters=chapter_marks(sheet)))
        add(files.vtt, webvtt(sheet).encode("utf-8"))
        add(files.cue_sheet, to_json(sheet.model_dump(mode="json")).encode("utf-8"))
        add(files.read_along, _read_along_html(chapter, sheet, loops, sample_rate).encode("utf-8"))
        keep = {files.scene_text(p.index).name for p in plans if p.user_text} | set(written)
        for name in old_score.get("outputs", []):  # fewer scenes than last time: our old cue files go
            path = job.files.base.parent / name
            if name not in keep and path.exists() and is_ours(path, job.record):
                staged.remove(path)
        updates = {
            "score": {"fingerprint": key, "seed": seed, "format": cfg.fmt, "reading_speed": cfg.reading_speed,
                      "sample_rate": sample_rate, "duration": sheet.duration, "model": composer.model_name,
                      "model_id": composer.model_id, "settings": composer.settings_key(), "version": SCORE_VERSION,
                      "licence": composer.spec.licence, "commercial": composer.spec.commercial,
                      "theme": sheet.theme, "outputs": written,
                      "scenes": [{"index": p.index, "pages": [chapter.readings[i].name for i in p.pages],
                                  "key": p.key, "description": p.description, "mood": p.mood, "seed": p.seed,
                                  "cue_key": p.cue_key, "cue_file": files.cue(p.index).name, "format": cfg.fmt,
                                  "user_text": p.user_text, "info": p.info} for p in plans],
                      "seconds": round(time.perf_counter() - started, 3), "at": now_iso()},
            "description": chapter.description,
        }
        if chapter.fresh:
            updates["describe"] = chapter.describe
            updates["pages"] = [_page_entry(i) for i in chapter.infos]
            updates["skipped_pages"] = job.skipped_pages or []
        job.commit(staged, updates)
    finally:
        staged.discard()
    job.tracks, job.description = [files.score], chapter.description


def score_sections(sections: list[Section], output: Path, describer: Describer, composer: Composer,
                   cfg: RunConfig, cb: Callbacks) -> list[SectionJob]:
    """Score every chapter: describe, find scenes, compose cues, join them (one chapter at a time)."""
    jobs = []
    try:
        for i, section in enumerate(sections):
            report(cb.sections, i, len(sections), f"scoring {section.name}")
            job = start_job(section.name, output, cb)
            jobs.append(job)
            if job.status != "failed":
                guarded(job, cb, lambda s=section, j=job: score_chapter(s, j, describer, composer, cfg, cb))
        report(cb.sections, len(sections), len(sections), "scored")
    finally:
        describer.close()
        composer.close()
    return jobs


__all__ = ["score_sections", "score_chapter", "chapter_direction", "theme_for", "InputError"]
