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
   rounded to whole bars (:func:`manga2music.cuesheet.plan_timing`; a scene read for
   longer than the composer's longest track repeats its cue as a seamless loop), all of
   a chapter's cues in one composer call so a composer that batches can.  An unchanged cue is
   reused (decoded from its lossless file, or composed again from its recorded seed).
5. **Bridges** (``--transitions continue``, composers that carry audio on: MusicGen).
   For each scene change, the composer continues the outgoing cue's last
   :data:`~manga2music.bridges.BRIDGE_PROMPT_S` seconds before a bar line into the next scene's
   description; that bridge takes over a bar before the change and fades out under
   the next cue (:mod:`manga2music.bridges`; unchanged bridges are reused).
6. **The score** (:func:`manga2music.score_audio.join_cues`), each cue as a seamless
   loop, the cue sheet, WebVTT chapters, chapter tags, and the read-along page.

Every file goes through the record's kill-safe commit, like every other stage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from .bridges import compose_bridges, forget_unused_bridges
from .cache import made_by
from .chapter_reading import ChapterReading, _is_chat, read_chapter, usage_cost
from .composers.base import Composer, ComposeRequest, compose_keeping
from .composing import format_made
from .describers.base import Describer
from .describers.chat import charge, drawn_seed
from .describing import (answer_memo, forget_a_failed_take, page_entry, pages_key, relocate_pages, said_reused,
                         section_seed)
from .errors import BackendError, InputError, Manga2MusicError
from .files import place_from_output, readable
from .jobs import Callbacks, SectionJob, each_section
from .kept_cues import (
    forget_cues,
    forget_stale_cues,
    keep_cue,
    keep_settings,
    kept_cue,
    kept_settings,
    stopped_settings,
)
from .options import READING_SPEEDS, SCENES_FOUND, RunConfig, flag
from .outputs import Staged, fingerprint, is_ours, now_iso, refuse_theirs, to_json
from .progress import report
from .scene_planning import Direction, ScenePlan, chapter_direction, plan_scenes, theme_for  # noqa: F401
from .sections import Section

if TYPE_CHECKING:  # pragma: no cover
    from .cuesheet import CueSheet

#: bump when the joining, timing, seeds or file layout change (2: the score's end fades out; 3: a cue's seed follows
#: its scene's pages, not its place: a scene split in two leaves the others' cues as they were)
SCORE_VERSION = "score-3"
_FORMER_MAX_CUE_S = 300.0  # the longest cue before 2026-11-30 (see score_chapter's key)
LOSSLESS = ("wav", "flac")
SLOW_ON_CPU_HINT_S = 180.0  # a model composing more music than this on a CPU: the run says --longest-cue exists
READ_ALONG_PAGE_SIDE = 1000  # the read-along page shows pages this many pixels on the long side
#: the read-along page's loop of a scene is at most this long (whole bars of the cue's start): a browser decodes it
#: into memory before it plays (a 30-minute loop made a 35 MB page that took 5.6 s to first sound in Chromium)
READ_ALONG_MAX_LOOP_S = 300.0
#: read-along loops encoded at once, each on a thread (each up to READ_ALONG_MAX_LOOP_S of audio: 77 MB)
LOOPS_AHEAD = 2


def _sample_rate(composer: Composer) -> int:
    return int(getattr(composer, "sample_rate", 32000))


def _tempo(text: str) -> float:
    from .cuesheet import DEFAULT_BPM
    from .music.text_to_style import parse_style

    try:
        return float(parse_style(text).tempo_bpm) or DEFAULT_BPM
    except Exception:  # noqa: BLE001 - any text: never fail a chapter over a tempo word
        return DEFAULT_BPM


def _how_long(seconds: float) -> str:
    """``45 s``, ``12.5 min``: a length of music for a message."""
    return f"{round(seconds, 1):g} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _tail_samples(tempo: float, sample_rate: int) -> int:
    from .cuesheet import MAX_TRANSITION_S, TRANSITION_BEATS

    return int(round(min(TRANSITION_BEATS * 60.0 / max(20.0, tempo), MAX_TRANSITION_S) * sample_rate))


def _theme_reference(direction: Direction, seed: int) -> tuple[np.ndarray, int]:
    """The chapter theme rendered by the builtin composer (for composers that follow a melody or a reference)."""
    from .composers.builtin import BuiltinComposer

    track = BuiltinComposer().compose_one(f"solo piano theme, 90 BPM in {direction.tonic} major", 8.0, seed=seed,
                                          theme=direction.theme)
    return track.audio, track.sample_rate


def _why_again(old: Optional[dict], plan: ScenePlan, pages: list[str], before: dict, now: dict) -> str:
    """Why a scene's cue is composed again, in a few words, from the last score's record: ``before`` is that
    score's record, ``now`` what this one is made with (model, settings, normalize, reading_speed, theme,
    version: as the record names them); ``pages``: the names of the scene's pages."""
    if not old:
        return "a new scene"
    if old.get("pages") != pages and not plan.user_text:
        return "other pages"
    if old.get("description") != plan.description:
        return "your description" if plan.user_text else "its description changed"
    if old.get("cue_key") == plan.cue_key:
        if old.get("format") in LOSSLESS:
            return "its cue file is gone or was changed"
        if old.get("format") == now.get("format"):  # an mp3's samples are not the ones composed: made again
            return f"the same music again: an {old.get('format')} cue is not joined from its file"
        return "a new file format"
    if before.get("version") != now["version"]:
        return "a new version of manga2music"
    if before.get("model") != now["model"]:
        return "another music model"
    if before.get("settings") != now["settings"]:
        from .composing import settings_changed

        return settings_changed(before.get("settings"), now["settings"], "the music model's settings changed")
    if old.get("seed") != plan.seed:  # a scene's seed is the chapter's moved by its pages' pictures
        if before.get("seed") != now.get("seed"):
            return "a new seed"
        if old.get("pages") != pages:  # (a scene of the user's words: said here, its words are the same)
            return "other pages"
        return "its pages' pictures changed" if before.get("pictures") else "its pages changed"  # (a score made
        # before 2026-12-06 recorded no pictures: its pages' files changed, their pictures are not known)
    changed = []  # each one said (the first alone was: --reading-speed 0.5 --no-normalize said only the loudness)
    if bool(before.get("normalize", True)) != now["normalize"]:
        changed.append(f"loudness normalisation turned {'on' if now['normalize'] else 'off'}")
    if before.get("theme") != now["theme"]:
        changed.append("the chapter's theme changed")
    if before.get("reading_speed") != now["reading_speed"]:
        changed.append("the reading speed changed" + (f" ({before['reading_speed']:g} → {now['reading_speed']:g})"
                                                      if isinstance(before.get("reading_speed"), (int, float))
                                                      and isinstance(now["reading_speed"], (int, float)) else ""))
    if "longest_cue" in now and before.get("longest_cue") != now["longest_cue"]:
        changed.append("the longest cue changed")
    return ", ".join(changed) or "its length changed"


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


def _lost(job: SectionJob, path: Path) -> bool:
    """A file the record says this tool wrote that is gone (a user deleted it)."""
    return path.name in (job.record.get("files") or {}) and not path.exists()


def _reuse_midi(job: SectionJob, path: Path) -> Optional[bytes]:
    """The notes of a reused cue (the builtin composer's MIDI file at ``path``), when the file is there and ours:
    written again with the cue, it is not lost as a file the new record does not list."""
    if not path.exists() or not is_ours(path, job.record):
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def scene_seed(seed: int, unit_keys: list[str]) -> int:
    """A scene's seed: the chapter's, moved by what the scene holds (its pages' pixels, a strip's parts), not by its
    place; a scene split in two, or one added before, leaves the other scenes' seeds, and so their music, as they
    were.  From 0 to :data:`manga2music.api.MAX_SEED`."""
    digest = hashlib.sha256("\n".join(unit_keys).encode("utf-8")).digest()
    return (int(seed) + int.from_bytes(digest[:4], "big")) % 2**32


def _record_settings_asked(job: SectionJob, old_score: dict, cfg: RunConfig, given_scenes: Optional[dict],
                           cb: Callbacks) -> None:
    """A score found as asked (skipped) whose record says other settings that change nothing now: a --longest-cue
    no cue reaches, a scenes file that gives the scenes found, --scenes auto where a file gave them.  They are
    recorded, said, for the chapter's next scores: a rerun after pages changed forgot them (cues of 260 s composed
    on a CPU past the limit asked, the user's scene at page 7 merged away), with nothing said."""
    asked = {"longest_cue": cfg.longest_cue, "given_scenes": given_scenes}
    changed = {k: v for k, v in asked.items() if old_score.get(k) != v}
    if not changed:
        return
    score = {k: v for k, v in {**old_score, **changed}.items() if v is not None or k not in changed}
    job.note({"score": score})  # nothing was made: the chapter is still "skipped"
    said = [flag("longest_cue", cfg.longest_cue) if "longest_cue" in changed and cfg.longest_cue is not None
            else f"no {flag('longest_cue')}" if "longest_cue" in changed else None,
            f"the scenes of {given_scenes['file']}" if "given_scenes" in changed and given_scenes
            else f"{flag('scenes_file', 'auto')}" if "given_scenes" in changed else None]
    cb.info(f"{job.name}: {' and '.join(w for w in said if w)} kept for its next scores (this one is already as "
            "they make it)")


def _given_scenes_kept(given_scenes: Optional[dict], chapter) -> Optional[dict]:
    """The scenes file a score was given, as its record (and a stopped score's settings) keep it, or None."""
    if not given_scenes:
        return None
    return {"file": given_scenes["file"], "text": given_scenes["text"],
            **({"source": given_scenes["source"]} if given_scenes.get("source") else {}),
            # the pages its numbers count (a rerun after pages are added or removed finds the same pages: kept_scenes)
            "pages": chapter.page_names}


def compose_cues(job: SectionJob, plans: list[ScenePlan], timings: list, direction: Direction, composer: Composer,
                 cfg: RunConfig, cb: Callbacks, seed: int, sample_rate: int, units: list[str],
                 unit_keys: list[str], given_scenes: Optional[dict] = None) -> bool:
    """Give every scene its cue audio (reused or composed, all new ones in one composer call); False if it failed.
    ``units``: the names of the chapter's pages (and a tall strip's parts), as the record lists a scene's;
    ``unit_keys``: what identifies each one's pixels (its scene's seed is made from them).  A cue is reused from
    the scene of the last score that made the same cue, whatever that scene's number was."""
    from .audio import as_stored, normalize_loudness

    old = {s.get("index"): s for s in (job.record.get("score") or {}).get("scenes", [])}
    same_cue = {s.get("cue_key"): s for s in old.values() if s.get("cue_key")}
    takes_theme = composer.backend == "builtin-music"
    takes_reference = composer.backend in ("musicgen-melody", "ace-step")
    reference = _theme_reference(direction, seed) if takes_reference else (None, None)
    wanted: list[tuple[ScenePlan, ComposeRequest]] = []
    for plan, t in zip(plans, timings):
        samples = t.cue_length + _tail_samples(t.tempo_bpm, sample_rate)
        plan.seed = scene_seed(seed, [unit_keys[i] for i in plan.pages])
        made_of = {"text": plan.description, "composer": composer.settings_key(), "samples": samples,
                   "rate": sample_rate, "seed": plan.seed, "theme": list(direction.theme), "reference": takes_reference,
                   "score": SCORE_VERSION}
        plan.track_key = fingerprint(made_of)  # the track as composed (kept so by a stopped score)
        plan.cue_key = fingerprint({**made_of, **({"normalize": False} if not cfg.normalize else {})})  # the cue as
        # stored
        earlier = same_cue.get(plan.cue_key) or old.get(plan.index) or {}
        midi = ScoreFiles(job, cfg.fmt).midi(earlier.get("index", plan.index))  # its notes are made with it
        reused = None if cfg.force or _lost(job, midi) else _reuse_cue(job, earlier, plan, cfg.fmt)
        if reused is not None:
            plan.audio, plan.midi = reused, _reuse_midi(job, midi)
            plan.info = dict(earlier.get("info") or {})
            continue
        wanted.append((plan, ComposeRequest(f"{job.name} scene {plan.index}", plan.description, samples / sample_rate,
                                            plan.seed, theme=direction.theme if takes_theme else None,
                                            reference=reference[0], reference_rate=reference[1])))
    # the cues composed by a score of this chapter that was stopped or failed before it was written
    kept = {} if cfg.force else {plan.index: track for plan, _ in wanted
                                 for track in [kept_cue(job.output, job.name, plan.track_key, sample_rate)] if track}
    if kept:
        cb.info(f"{job.name}: {len(kept)} of {len(wanted)} cues to compose kept from a score of it that was stopped "
                "before it was written")
        wanted = [(plan, request) for plan, request in wanted if plan.index not in kept]
    if old and wanted and not cfg.force:  # cues made again: say which and why
        before = job.record.get("score") or {}
        now = {"version": SCORE_VERSION, "model": composer.model_name, "settings": composer.settings_key(),
               "format": cfg.fmt,
               "normalize": cfg.normalize, "reading_speed": cfg.reading_speed, "seed": seed,
               "longest_cue": cfg.longest_cue,
               "theme": {"contour": list(direction.theme), "home_key": direction.tonic, "lead": direction.lead}}
        by_pages = {tuple(s.get("pages") or ()): s for s in old.values()}  # the scene of these pages, else its number's
        why = [_why_again(by_pages.get(tuple(pages)) or old.get(plan.index), plan, pages, before, now)
               for plan, _ in wanted for pages in [[units[i] for i in plan.pages]]]
        if len(wanted) < len(plans) or len(set(why)) > 1:
            cb.info(f"{job.name}: composing again: " + "; ".join(
                f"scene {plan.index} ({reason})" for (plan, _), reason in zip(wanted, why)))
        elif why[0] != "the chapter's theme changed":  # that one is said with the new theme (score_chapter)
            reason = "the scenes changed" if why[0] in ("a new scene", "other pages") else why[0]
            if reason.startswith("its "):  # "its length changed": one cue's words, said of them all
                reason = "each one's " + reason[len("its "):]
            cb.info(f"{job.name}: composing every cue again ({reason})")
    music = sum(r.duration for _, r in wanted)
    if music > SLOW_ON_CPU_HINT_S and composer.device == "cpu" and cfg.longest_cue is None:
        cb.info(f"{job.name}: {composer.model_name} composes {_how_long(music)} of cues on this CPU, which takes a "
                f"while (the bar says how long); {flag('longest_cue', 60)} composes at most a minute a cue and loops "
                "it")
    tracks: list = []
    if wanted:  # each cue is kept as it is made: a stop or a failure later in the chapter does not lose it
        keep_settings(job.output, job.name, {"seed": seed, "reading_speed": cfg.reading_speed, "format": cfg.fmt,
                                             "normalize": cfg.normalize, "longest_cue": cfg.longest_cue,
                                             "transitions": cfg.transitions,
                                             # the scenes file given (a plain resume found its own scenes, and
                                             # let the cues kept for the user's go)
                                             # (None: the scenes found, --scenes auto over a file given before)
                                             "given_scenes": given_scenes,
                                             # who composes the cues kept (a resume with another model or settings
                                             # composes them again: said, see chapter_settings)
                                             "music_model": composer.model_name,
                                             "composer": fingerprint(composer.settings_key())})
        tracks = list(compose_keeping(composer, [r for _, r in wanted], cb.step,
                                      lambda i, track: keep_cue(job.output, job.name, wanted[i][0].track_key, track)))
    plans_made = [plan for plan, _ in wanted] + [plan for plan in plans if plan.index in kept]
    tracks += [kept.pop(plan.index) for plan in plans_made[len(wanted):]]
    if tracks:
        for k, plan in enumerate(plans_made):
            track, tracks[k] = tracks[k], None  # each track goes once its cue is made of it: the list kept every
            # one until the last was done, beside the cues made of them (twice the chapter's music in memory)
            if int(track.sample_rate) != sample_rate:
                raise BackendError(f"{composer.model_name} made {track.sample_rate} Hz audio, not {sample_rate} Hz")
            # in place: the composer's track is not used again (a copy of every cue would double their memory)
            plan.audio = normalize_loudness(track.audio, sample_rate, in_place=True) if cfg.normalize else track.audio
            if cfg.fmt in LOSSLESS:  # joined as its file holds it, as a later run that keeps the cue joins it: the
                # score and loops are then the same to the sample whichever cues were composed this time
                plan.audio = as_stored(plan.audio, sample_rate, cfg.fmt)
            plan.midi, plan.info = track.midi, {**track.info, **made_by(composer)}
            for warning in dict.fromkeys(getattr(track, "warnings", None) or ()):  # what the composer did not play
                cb.warn(f"{job.name}: scene {plan.index}: {warning}")  # as asked (a tempo out of its range): `compose`
                # said it, `score` kept it to itself
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
        return self.job.files.chapters

    @property
    def cue_sheet(self) -> Path:
        return self.job.files.cue_sheet

    @property
    def read_along(self) -> Path:
        return self.job.files.read_along

    def chapter_files(self) -> list[Path]:
        """The files every score of the chapter writes, whatever its scenes."""
        return [self.score, self.vtt, self.cue_sheet, self.read_along]

    def scene_files(self, plans: list) -> list[Path]:
        """The files a score of ``plans`` writes for its scenes (an edited scene description is the user's and is not
        written)."""
        paths = []
        for plan in plans:
            paths += [self.cue(plan.index), self.loop(plan.index), self.midi(plan.index)]
            if not plan.user_text:
                paths.append(self.scene_text(plan.index))
        return paths

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
                    composer: Composer, seed: int) -> "CueSheet":
    from .audio import file_rate
    from .cuesheet import CueSheet, PageTime, SceneCue, page_starts

    units = chapter.units  # its pages, each tall strip in parts
    scenes, pages = [], []
    for plan, t in zip(plans, timings):
        # every time to the microsecond, each from the sample it stands for: a scene's first page starts exactly
        # when its scene does, and its end is the next scene's start
        start, end = round(t.start / sample_rate, 6), round((t.start + t.length) / sample_rate, 6)
        length = t.length / sample_rate
        reading = [units[i].reading.seconds / cfg.reading_speed for i in plan.pages]
        for i, page_start, seconds in zip(plan.pages, page_starts(start, length, reading), reading):
            u = units[i]
            pages.append(PageTime(index=u.number, name=chapter.readings[u.page].name, scene=plan.index,
                                  start=round(page_start, 6), reading_seconds=round(seconds, 2), part=u.part,
                                  parts=u.parts if u.part else None))
        first, last = units[plan.pages[0]], units[plan.pages[-1]]
        title = f"Scene {plan.index}: {plan.mood or 'scene'}" + (" (your description)" if plan.user_text else "")
        scenes.append(SceneCue(
            index=plan.index, title=title, mood=plan.mood, first_page=first.number,
            last_page=last.number, first_part=first.part if first.part and first.part > 1 else None,
            last_part=last.part if last.part and last.part < last.parts else None,
            pages=list(dict.fromkeys(chapter.readings[units[i].page].name for i in plan.pages)),
            start=start, end=end, duration=round(length, 6), reading_seconds=round(sum(reading), 2),
            given_s=plan.given_s,
            tempo_bpm=round(t.tempo_bpm, 2), bars=t.bars, transition_s=round(t.transition / sample_rate, 6),
            transition="end" if not t.transition else "continuation" if plan.bridge else "crossfade",
            bridge_s=round(plan.bridge["lead"] / sample_rate, 6) if plan.bridge else 0.0,
            bridge_seed=plan.bridge["seed"] if plan.bridge else None,
            description=plan.description, description_file=files.scene_text(plan.index).name,
            cue_file=files.cue(plan.index).name, loop_file=files.loop(plan.index).name,
            cue_s=round(t.cue_length / sample_rate, 6), seed=plan.seed))
    total = sum(t.length for t in timings) / sample_rate
    return CueSheet(chapter=job.name, score_file=files.score.name, vtt_file=files.vtt.name,
                    read_along_file=files.read_along.name, sample_rate=file_rate(cfg.fmt, sample_rate),
                    duration=round(total, 6),
                    reading_speed=cfg.reading_speed, seed=seed, music_model=composer.model_name,
                    vision_model=describer.model_name,
                    theme={"contour": list(direction.theme), "home_key": direction.tonic, "lead": direction.lead},
                    scenes=scenes, pages=pages)


def _read_along_loop(audio: np.ndarray, loop: np.ndarray, t, sample_rate: int) -> np.ndarray:
    """The scene's loop for the read-along page: its loop file, or for a cue longer than
    :data:`READ_ALONG_MAX_LOOP_S` the cue's first whole bars up to that, made seamless with the music after them."""
    from .cuesheet import bar_seconds
    from .score_audio import cue_loop

    bar = bar_seconds(t.tempo_bpm)
    if t.cue_length <= READ_ALONG_MAX_LOOP_S * sample_rate or READ_ALONG_MAX_LOOP_S < bar:
        return loop
    length = int(round(int(READ_ALONG_MAX_LOOP_S // bar) * bar * sample_rate))
    return cue_loop(audio[: length + (len(audio) - t.cue_length)], length, sample_rate)


def _read_along_html(chapter: ChapterReading, sheet, loop_uris: list[str], job: SectionJob) -> str:
    import os

    from .listening_page import url_for
    from .outputs import LISTENING_PAGE
    from .pages import decode_page
    from .readalong import page_jpeg, render, right_to_left, webtoon_layout
    from .sections import book_page_progression

    pages = []  # per page, its parts: one, or the page-shaped tiles of a tall strip, each (picture, width, height)
    for info in chapter.infos:
        try:
            tiles = decode_page(info, max_side=READ_ALONG_PAGE_SIDE)
            pages.append([(page_jpeg(tile, READ_ALONG_PAGE_SIDE), tile.width, tile.height) for tile in tiles])
        except Manga2MusicError:
            pages.append([("", 1, 1)])
    scroll, touching = webtoon_layout([info.size for info in chapter.infos])
    listening_page = os.path.relpath(job.output / LISTENING_PAGE, job.files.read_along.parent)
    declared = book_page_progression(chapter.infos[0].page) if chapter.infos else None  # an EPUB says; else the text
    rtl = declared == "rtl" if declared else right_to_left(sum(r.text_chars for r in chapter.readings),
                                                           sum(r.cjk_chars for r in chapter.readings))
    return render(sheet.chapter, sheet.model_dump(), pages, loop_uris, sheet.score_file, scroll=scroll,
                  touching=touching, rtl=rtl, listening_page=url_for(listening_page), section=job.name)


def _unit_keys(chapter: ChapterReading, kept, scored_before: bool) -> tuple[list[str], dict]:
    """What each unit's scene's seed is made from (a page's seed key, and its part), and what the score records
    for the next one to find them (``{page key: [picture key, seed key]}``, and for a tall strip a third item,
    ``[[part's picture key, part's seed key], ...]``; ``kept``: the last score's).

    A page's seed key is what it shows (:func:`~manga2music.pages.picture_key`), whatever its file: a page saved
    again with other tags or losslessly in another format, or a PDF's untouched page once another page of it was
    edited, keeps its scene's music, and the same --seed makes the same score of the same pictures anywhere.  A
    tall strip's parts each have their own (a webtoon episode saved as one image, one part of it edited: the
    scenes of its other parts keep their music).  A chapter scored before 2026-12-06 (``scored_before``, no
    ``kept``) keeps the keys its seeds were made from, :attr:`~manga2music.pages.PageInfo.key` (its music stays as
    it is), each kept while the page shows the same; so does a strip scored before its parts had keys, until it is
    edited.  A page whose info is not at hand (renamed since, beside a page that no longer decodes) by name.  Only
    pages the last score did not see are decoded."""
    from .pages import picture_keys

    old = {k: v for k, v in kept.items() if _picture_entry(v)} if isinstance(kept, dict) else {}
    by_picture = {v[0]: v for v in old.values() if v[0] and v[1]}
    by_part = {part: seed_key for v in old.values() if len(v) == 3 for part, seed_key in v[2]}
    infos = chapter.infos
    seen: dict[str, list] = {}
    keys = []
    for u in chapter.units:
        if not (u.page < len(infos) and infos[u.page].page.name == chapter.readings[u.page].name):
            keys.append(f"{chapter.readings[u.page].name}#{u.part or 0}")
            continue
        info = infos[u.page]
        if info.key not in seen:
            if old.get(info.key) and old[info.key][1]:  # the same file: the same picture
                seen[info.key] = old[info.key]
            else:
                found = picture_keys(info)
                picture, parts = found if found else (None, [])
                if picture in by_picture:  # the same picture in another file
                    seen[info.key] = by_picture[picture]
                elif scored_before and not old or not picture:
                    seen[info.key] = [picture, info.key]
                else:
                    seen[info.key] = [picture, picture] if len(parts) < 2 else \
                        [picture, picture, [[part, by_part.get(part, part)] for part in parts]]
        entry, part = seen[info.key], u.part  # a strip's parts are numbered from 1 (None: a page of one)
        own = entry[2][part - 1][1] if len(entry) == 3 and part and part <= len(entry[2]) else entry[1]
        keys.append(f"{own}#{part or 0}")
    return keys, seen


def _picture_entry(value) -> bool:
    """Whether ``value`` is a page's entry in a score's ``pictures`` (see :func:`_unit_keys`)."""
    if not isinstance(value, list) or len(value) not in (2, 3) or \
            not all(isinstance(x, str) or x is None for x in value[:2]):
        return False
    return len(value) == 2 or isinstance(value[2], list) and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value[2])


def kept_scenes(job: SectionJob, section: Optional[Section], kept: dict, label: str, cb: Callbacks) -> str:
    """The text of the scenes file kept from the chapter's last score, its page numbers written as the names of the
    pages they counted then: pages added or removed since would move every scene that follows (a scene given as
    starting on page 4 would start on the page now fourth).  A scene whose first page is gone is left out, and a
    line says so.  The text as it was where the pages are the same, or the pages it counted are not known."""
    from .scenes import read_scenes_text
    from .wording import first_few

    text = kept["text"]
    then = kept.get("pages")
    if not isinstance(then, list):  # a score made before 2026-12-05: its record's pages, where it skipped none
        then = None if job.record.get("skipped_pages") else [p.get("name") for p in job.record.get("pages") or []
                                                             if isinstance(p, dict)]
    now = [p.name for p in section.pages] if section is not None else None
    if not then or now is None or then == now or not all(isinstance(n, str) for n in then):
        return text
    try:
        starts = read_scenes_text(text, label, then)
    except InputError:
        return text  # said when the scenes are read, as before
    present = set(now)
    lines, gone = [], []
    renamed = len(then) == len(now)  # as many pages as then, under other names: renamed, each in its place
    for index, part, length in starts:
        name = then[index] if then[index] in present else now[index] if renamed else None
        if name is None:
            gone.append(then[index])
            continue
        lines.append(name + (f" part {part}" if part > 1 else "") + (f" {length:.6g}" if length else ""))
    if gone:
        cb.warn(f"{job.name}: {first_few(gone)}, where {'scenes' if len(gone) > 1 else 'a scene'} of {label} "
                f"started, {'are' if len(gone) > 1 else 'is'} gone; "
                + ("the scenes before run on" if lines else "the scenes are found in the pages"))
    return "\n".join(lines) + "\n" if lines else ""


def switched_format(record: dict, record_path: Path) -> Optional[str]:
    """The format a `score --format F` stopped while it removed the old format's files was switching to: its score
    landed (a kill's pending hashes, folded into the record's files by ``settle``) while the record still names the
    old format, and a rerun without --format went back to it, the folder left holding both sets.  None when no
    switch was cut short."""
    from .audio import AUDIO_FORMATS
    from .outputs import is_ours

    recorded = (record.get("score") or {}).get("format")
    for fmt in AUDIO_FORMATS:
        score = record_path.with_name(f"{record_path.stem}.score.{fmt}")  # beside NAME.json, as ScoreFiles names it
        if fmt != recorded and score.name in (record.get("files") or {}) and score.is_file() \
                and is_ours(score, record):
            return fmt
    return None


def _edited_since(job: SectionJob, source) -> Optional[str]:
    """The scenes file a chapter's last score was given (``given_scenes.source``: where, and a fingerprint of its
    text), as a user would pass it again, when it is there and says something else now; else None (not edited, gone,
    unreadable, or a score made before 2026-12-06, which kept no place)."""
    import os

    from .scenes import scenes_file_text

    if not isinstance(source, dict) or not isinstance(source.get("path"), str):
        return None
    path = job.output / source["path"]
    try:
        if not path.is_file() or fingerprint(scenes_file_text(path)) == source.get("text"):
            return None
    except (OSError, Manga2MusicError):
        return None
    try:
        shown = os.path.relpath(path)
    except ValueError:  # another drive
        shown = str(path)
    return readable(shown if not shown.startswith("..") else os.path.abspath(path))  # from here, or whole


def cues_word(count: int) -> str:
    """"1 cue", "3 cues" (a step label said "joining 1 cues")."""
    return f"{count} cue{'' if count == 1 else 's'}"


def not_started(job: SectionJob) -> dict:
    """What a score stopped before it started this chapter was asked (the manifest's ``score_stopped_with``), as a
    stopped score's own settings say it, for a chapter with no score yet; else ``{}``.  A plain rerun of ``score
    S --reading-speed 0.2 --format flac`` stopped in its first chapter made the others at the usual pace, in WAV."""
    return not_started_with(job.output, job.name, job.record)


def not_started_with(output: Path, name: str, record: dict) -> dict:
    """:func:`not_started` for the chapter ``name`` of ``output`` whose record is ``record``."""
    from .audio import AUDIO_FORMATS
    from .outputs import MANIFEST, read_record, stopped_for

    if record.get("score"):
        return {}
    asked = stopped_for((read_record(Path(output) / MANIFEST) or {}).get("score_stopped_with"), [name], "chapters")
    if asked is None:  # none, or a chapter the stopped score was not given
        return {}
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    kept = {"seed": asked.get("seed") if isinstance(asked.get("seed"), int) and number(asked.get("seed")) else None,
            "reading_speed": asked.get("reading_speed") if number(asked.get("reading_speed")) else None,
            "format": asked.get("fmt") if asked.get("fmt") in AUDIO_FORMATS else None,
            "longest_cue": asked.get("longest_cue") if number(asked.get("longest_cue")) else None,
            "transitions": asked.get("transitions") if asked.get("transitions") in ("crossfade", "continue") else None}
    kept = {k: v for k, v in kept.items() if v is not None}
    return {**kept, "not_started": True} if kept else {}


def chapter_settings(job: SectionJob, cfg: RunConfig, cb: Callbacks, section: Optional[Section] = None,
                     stopped: Optional[dict] = None, composer: Optional[Composer] = None
                     ) -> tuple[RunConfig, Optional[dict]]:
    """``cfg`` with the chapter's reading speed and longest cue, and its scenes file (``{"file", "text", "label"}``,
    or None for the scenes found in the pages): as given, else as its last score was made, as a --duration left
    out keeps a track's length (a rerun without --scenes lost the lengths a scenes file gave a video, and composed
    every cue again), else 1 and found.  ``stopped``: the settings of a score of the chapter stopped with cues kept
    (:func:`manga2music.kept_cues.kept_settings`), which come first: it is resumed as it was being made."""
    from .audio import AUDIO_FORMATS
    from .cuesheet import MAX_CUE_S, MIN_CUE_S
    from .scenes import scenes_file_text

    stopped = stopped or {}
    old = {**(job.record.get("score") or {}), **stopped}
    speed = cfg.reading_speed
    if speed is None:
        before = old.get("reading_speed")
        speed = float(before) if isinstance(before, (int, float)) and \
            READING_SPEEDS[0] <= before <= READING_SPEEDS[1] else 1.0
        if speed != 1.0 and not stopped:  # a speed tried once would stretch or squeeze every later score of the
            # chapter, unsaid
            cb.info(f"{job.name}: read at {flag('reading_speed', speed)}, as its last score was "
                    f"({flag('reading_speed', 1.0)}: the usual pace)")
    given = None
    if cfg.scenes_file is not None and cfg.scenes_file != SCENES_FOUND:
        name = readable(Path(cfg.scenes_file).name)
        text = scenes_file_text(Path(cfg.scenes_file))
        given = {"file": name, "text": text, "label": readable(cfg.scenes_file),
                 # where it is and what it said, for a rerun without --scenes to see it edited since
                 "source": {"path": place_from_output(Path(cfg.scenes_file), job.output), "text": fingerprint(text)}}
    elif cfg.scenes_file is None and isinstance(old.get("given_scenes"), dict) \
            and isinstance(old["given_scenes"].get("text"), str):
        name = str(old["given_scenes"].get("file") or "a scenes file")
        label = f"{name} (kept from the last score)"
        text = kept_scenes(job, section, old["given_scenes"], label, cb)
        if text:
            source = old["given_scenes"].get("source")
            given = {"file": name, "text": text, "label": label, "kept": True,
                     **({"source": source} if isinstance(source, dict) else {})}
            edited = _edited_since(job, source)
            cb.info(f"{job.name}: the scenes given before ({name}) are kept; {flag('scenes_file', 'auto')} finds them "
                    "in the pages"
                    if edited is None else
                    f"{job.name}: {name} was edited since its scenes were read from it: the scenes read then are "
                    f"kept ({flag('scenes_file', edited)} reads it again; {flag('scenes_file', 'auto')} finds them in the "
                    "pages)")
    fmt = cfg.fmt or (stopped.get("format") if stopped.get("format") in AUDIO_FORMATS else None) \
        or switched_format(job.record, job.files.record) or format_made(old.get("format"))  # without --format, the
    # score stays in its format (or in the one a stopped score or switch was making)
    longest = cfg.longest_cue
    if longest is None:  # the limit the last score was made with (a rerun without it composed every cue again)
        before = old.get("longest_cue")
        longest = float(before) if isinstance(before, (int, float)) and not isinstance(before, bool) \
            and MIN_CUE_S <= before <= MAX_CUE_S else None
        if longest is not None and not stopped and longest < MAX_CUE_S:  # said, as a kept reading speed is (it
            # was kept unsaid); the most there is is no limit to keep (it said "... 1800 s (1800 lifts the limit)")
            cb.info(f"{job.name}: cues of at most {flag('longest_cue', longest)} s, as its last score's "
                    f"({flag('longest_cue', MAX_CUE_S)} lifts the limit)")
    transitions = cfg.transitions
    if transitions is None:  # the way its last score's cues hand over (a rerun without it dropped every bridge, "ok")
        transitions = old.get("transitions") if old.get("transitions") in ("crossfade", "continue") else "crossfade"
        if transitions == "continue" and composer is not None and not composer.continues:
            transitions = "crossfade"
            cb.info(f"{job.name}: its last score's bridges ({flag('transitions', 'continue')}) need a composer that "
                    f"carries audio on; {composer.model_name} joins its cues with crossfades")
        elif transitions == "continue" and not stopped:
            cb.info(f"{job.name}: bridges between scenes, as its last score's "
                    f"({flag('transitions', 'crossfade')} joins the cues with crossfades)")
    if stopped and not cfg.force:  # --force composes every cue again: nothing is resumed
        resumed = [f"{flag(k, v)}" for k, v in (("seed", stopped.get("seed")), ("reading_speed", float(speed)),
                                                 ("fmt", fmt), ("longest_cue", longest),
                                                 ("transitions", transitions if transitions != "crossfade" else None))
                   if getattr(cfg, k) is None and v is not None
                   and not (stopped.get("not_started") and {"fmt": "format"}.get(k, k) not in stopped)]
        other = composer is not None and isinstance(stopped.get("composer"), str) \
            and stopped["composer"] != fingerprint(composer.settings_key()) \
            and bool(kept_settings(job.output, job.name))  # cues kept, which another composer made
        if other:  # its kept cues are not this composer's: composed again, not "resumed as it was made"
            was = stopped.get("music_model")
            cb.info(f"{job.name}: the cues kept from the score stopped before were made "
                    + (f"by {was}" if isinstance(was, str) and was != composer.model_name
                       else f"with other {composer.model_name} settings")
                    + f"; {composer.model_name} composes them again"
                    + (f" (with {', '.join(resumed)} as that score was made)" if resumed else ""))
        elif resumed and stopped.get("not_started"):
            cb.info(f"{job.name}: {', '.join(resumed)}, as the score stopped before was asked (give a setting to "
                    "change it)")
        elif resumed:
            cb.info(f"{job.name}: resuming the score stopped before, with {', '.join(resumed)} as it was made "
                    "(give a setting to change it)")
    # float(speed): 2 and 2.0 are one speed
    return dataclasses.replace(cfg, reading_speed=float(speed), fmt=fmt, longest_cue=longest,
                               transitions=transitions), given


def score_chapter(section: Section, job: SectionJob, describer: Describer, composer: Composer, cfg: RunConfig,
                  cb: Callbacks) -> None:
    """Score one chapter (or reuse its score) and write every file of it."""
    from .audio import ceiling_db, encode_audio, file_rate, limit_peaks, write_encoded
    from .cuesheet import (
        MAX_CUE_S,
        MAX_TRANSITION_S,
        bar_seconds,
        chapter_bars,
        chapter_marks,
        missed_given_lengths,
        plan_timing,
        scene_count,
        scene_span,
        webvtt,
    )
    from .readalong import loop_ogg
    from .score_audio import cue_loop, join_cues
    from .threads import on_thread, stop_point

    stopped = stopped_settings(job.output, job.name) or not_started(job)  # a score stopped while it composed:
    # resumed as it was being made, cues kept or not (stopped during its first cue, a minute of MusicGen on a CPU,
    # it lost its seed); a chapter it did not start, as it was asked
    cfg, given_scenes = chapter_settings(job, cfg, cb, section, stopped, composer)
    forget_stale_cues(job.output)  # those of chapters stopped long ago and not scored again
    files = ScoreFiles(job, cfg.fmt)
    refuse_theirs(files.chapter_files(), job.record, edited=False)  # the chapter's own files first, before any
    # reading (ours retagged since: once a new score is known to be made, below)
    memo = answer_memo(job, "score", describer, cfg)  # a chat model's answers, kept until the score is written
    sampling = section_seed(describer, memo)  # a local VLM without --seed: one seed for the chapter's calls (kept
    with drawn_seed(sampling):  # with its answers, and recorded)
        try:
            chapter = read_chapter(section, job, describer, cfg, cb, memo)
        except Manga2MusicError as exc:
            forget_a_failed_take(exc, describer, memo)
            raise
    if chapter is None:
        return
    if chapter.fresh:  # kept at once: a score stopped or failed while composing does not pay for the pages again
        # (the record's pages stay those of the last score until this one is made: scene planning reads them)
        job.commit(Staged(), {"chapter_reading": {**chapter.describe, "description": chapter.description}})
    old_score = job.record.get("score") or {}
    seed = cfg.seed if cfg.seed is not None else None if cfg.force else \
        stopped["seed"] if isinstance(stopped.get("seed"), int) else old_score.get("seed")  # --force: a new take,
    # as `run --force` draws one
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    try:
        with drawn_seed(sampling):
            plans, direction = plan_scenes(chapter, job, describer, cfg, cb, int(seed), memo, given_scenes)
    except Manga2MusicError as exc:  # the pages read by a chat model in this run were paid for too
        forget_a_failed_take(exc, describer, memo)  # (the pages' reading is in the record already)
        if chapter.fresh and _is_chat(describer):
            raise charge(exc, chapter.describe.get("usage"))
        raise
    said_reused(job, memo, cb)
    old_theme = old_score.get("theme") if isinstance(old_score.get("theme"), dict) else {}
    if old_theme and (old_theme.get("home_key"), old_theme.get("lead")) != (direction.tonic, direction.lead):  # every
        # cue is made again, its pages changed or not: said, as a scene whose own pages changed is
        cb.info(f"{job.name}: the chapter's home key and lead, from all its pages, are now {direction.tonic} and "
                f"{direction.lead} (were {old_theme.get('home_key')} and {old_theme.get('lead')}): every scene's cue "
                "is composed again")
    refuse_theirs(files.scene_files(plans), job.record, edited=False)  # then each scene's, before any composing
    # the longest track a cue may be, its tail included: the composer's longest track, or the user's longest cue
    # (whole bars up to --longest-cue, and the tail on top)
    track_max = min(MAX_CUE_S, float(getattr(composer, "max_duration", MAX_CUE_S)))
    by_user = cfg.longest_cue is not None and cfg.longest_cue + MAX_TRANSITION_S < track_max
    max_cue = cfg.longest_cue + MAX_TRANSITION_S if by_user else track_max
    reading = [sum(chapter.units[i].reading.seconds for i in p.pages) / cfg.reading_speed for p in plans]
    tempos = [_tempo(p.description) for p in plans]
    # the longest cue is part of the key only where it shortens a scene (cues once stopped at 300 s: a chapter with a
    # scene read for longer is made again, the others stay as they are); so are the scenes that repeat their cue
    # (they were squeezed into it before 2026-11-30), and the lengths the scenes file gives
    timing_key = {"max_cue": max_cue} if max(reading, default=0.0) > _FORMER_MAX_CUE_S - MAX_TRANSITION_S else {}
    given = [p.given_s for p in plans]
    bars = chapter_bars(reading, tempos, max_cue, given)
    looped = [p.index for p, (scene, cue) in zip(plans, bars) if cue < scene]
    if looped:
        timing_key.update(max_cue=max_cue, looped=looped)
    if any(cue * bar_seconds(tempo) > READ_ALONG_MAX_LOOP_S for (_, cue), tempo in zip(bars, tempos)):
        timing_key["read_along_loop"] = READ_ALONG_MAX_LOOP_S  # its loops were whole cues before 2026-11-30
    if any(s is not None for s in given):
        timing_key["given"] = given
    from .sections import comic_info_direction

    said = comic_info_direction(chapter.infos[0].page) if chapter.infos else None  # a ComicInfo.xml added or
    if said:  # edited since: the read-along page turns its pages the way it says now (only then: others' keys stay)
        timing_key["comic_info"] = said
    key = fingerprint({"pages": [r.to_dict() for r in chapter.readings], "scenes": [p.key for p in plans],
                       "texts": [p.description for p in plans], "composer": composer.settings_key(),
                       "format": cfg.fmt, "speed": cfg.reading_speed, "seed": seed, "normalize": cfg.normalize,
                       "score": SCORE_VERSION, **timing_key, **({"transitions": cfg.transitions}
                                                            if cfg.transitions != "crossfade" else {})})
    if (not cfg.force and not chapter.fresh and old_score.get("fingerprint") == key and files.score.exists()
            and all((job.files.base.parent / n).exists() for n in old_score.get("outputs", []))
            and not any(_lost(job, files.midi(s.get("index"))) for s in old_score.get("scenes", [])
                        if isinstance(s.get("index"), int))
            # a scene's mood now found where an earlier version recorded none (the user's words, written before the
            # first score): its title is written again (its cue is reused)
            and [p.mood for p in plans] == [s.get("mood") for s in old_score.get("scenes", [])]):
        if memo is not None:
            memo.forget()  # nothing to resume (the drawn seed a local VLM would have read with, say)
        forget_cues(job.output, job.name, [])  # a stopped score's, of other settings (another model named since):
        # not what is left of this chapter any more (kept, a plain rerun took its model, and was refused)
        job.status, job.seed = "skipped", int(seed)
        relocate_pages(job, chapter.infos)  # the chapter moved since: its record locates the pages where they are
        _record_settings_asked(job, old_score, cfg, _given_scenes_kept(given_scenes, chapter), cb)
        job.tracks, job.description = [files.score], chapter.description
        job.midi = _cue_midis(files, [s.get("index") for s in old_score.get("scenes", [])])
        return
    refuse_theirs(files.chapter_files() + files.scene_files(plans), job.record)  # ours, retagged since: replaced
    # only by a score made again (a tagger's edit made every rerun fail the chapter)
    sample_rate = _sample_rate(composer)  # after the skip: MusicGen loads its model to know it
    timings = plan_timing(reading, tempos, sample_rate, max_cue_s=max_cue, given=given)
    missed = missed_given_lengths(timings, given, sample_rate)
    if missed is not None:
        k, off = missed
        cb.warn(f"{job.name}: scene {plans[k].index} ends {abs(off):.2f} s {'later' if off > 0 else 'earlier'} than "
                f"the scenes file's lengths put it: a scene lasts whole bars of its tempo, one at least (at "
                f"{round(timings[k].tempo_bpm)} BPM, {bar_seconds(timings[k].tempo_bpm):.2f} s), and some scenes "
                "are given less; the cue sheet has each scene's start")
    for plan, t, seconds in zip(plans, timings, reading):
        if t.loops:
            why = flag("longest_cue") if by_user else f"the most {composer.model_name} makes at once"
            lasts = f"lasts {_how_long(plan.given_s)}" if plan.given_s is not None else \
                f"takes {_how_long(seconds)} to read"
            cb.info(f"{job.name}: scene {plan.index} {lasts}; its cue is "
                    f"{_how_long(t.cue_length / sample_rate)} ({why}), so it plays once, then repeats as a seamless "
                    f"loop until the scene ends")
    started = time.perf_counter()
    unit_keys, pictures = _unit_keys(chapter, old_score.get("pictures"), bool(old_score.get("scenes")))
    if not compose_cues(job, plans, timings, direction, composer, cfg, cb, int(seed), sample_rate,
                        [u.name for u in chapter.units], unit_keys, _given_scenes_kept(given_scenes, chapter)):
        job.fail("the composer made no audio for some scenes", cb)
        return
    bridges = None
    if cfg.transitions == "continue":
        bridges = compose_bridges(job, plans, timings, composer, cb, sample_rate, force=cfg.force)
        if bridges is None:
            key += "-unbridged"  # so that the next run makes the score again
    # the steps after composing (each cue's files and loop, the join, the score's loudness and encoding) took half a
    # builtin score's time with no report: the web UI's bar sat at its end and its Stop waited for all of them
    steps = len(plans) + 2
    report(cb.step, 0, steps, f"joining {cues_word(len(plans))}")
    sheet = build_cue_sheet(job, chapter, plans, timings, direction, files, cfg, sample_rate, describer, composer,
                            int(seed))
    scenes = "; ".join(f"{s.title} ({scene_span(s)})" for s in sheet.scenes)
    tags = {"title": job.name, "comment": f"{scene_count(sheet)}: {scenes}",
            "model": composer.tag_name, "seed": str(seed), "licence": composer.spec.licence}
    staged, written = Staged(), []

    def add(path: Path, data: bytes) -> None:
        staged.add_bytes(path, data)
        written.append(path.name)

    # each cue's loop for the read-along page, as Ogg (a few % of its samples), encoded on threads while this one
    # writes the cues and joins the score (Vorbis takes longer than everything else here; libsndfile lets go of the
    # interpreter while it encodes); at most LOOPS_AHEAD loops are encoded at a time
    loop_uris: list = []
    try:
        for done, (plan, t) in enumerate(zip(plans, timings)):
            if done:
                report(cb.step, done, steps, f"joining {cues_word(len(plans))}: cue {done + 1} of {len(plans)}")
            stop_point()
            if not plan.user_text:
                add(files.scene_text(plan.index), (plan.description + "\n").encode("utf-8"))
            cue_tags = {**tags, "title": f"{job.name}, scene {plan.index}", "comment": plan.description,
                        "seed": str(plan.seed)}
            # normalised when composed: only kept under the format's peak ceiling (a lossy one's is lower), and the
            # loop's fold of the cue's tail over its start (two sounds at once) too: its WAV hard-clipped
            peaks = "peaks" if cfg.normalize else False
            add(files.cue(plan.index), encode_audio(plan.audio, sample_rate, fmt=cfg.fmt, tags=cue_tags,
                                                    normalize=peaks))
            loop = cue_loop(plan.audio, t.cue_length, sample_rate)
            if cfg.normalize:
                loop = limit_peaks(loop, sample_rate, ceiling_db(cfg.fmt), loop=True, in_place=True)
            # limited before encoding (the read-along's loop is made of it); encoded with its peaks kept, for what a
            # lossy file decodes to be checked under the ceiling too
            add(files.loop(plan.index), encode_audio(loop, sample_rate, fmt=cfg.fmt, tags=cue_tags, normalize=peaks,
                                                     loop=True))
            if len(loop_uris) >= LOOPS_AHEAD:
                loop_uris[-LOOPS_AHEAD].result()
            loop_uris.append(on_thread(loop_ogg, _read_along_loop(plan.audio, loop, t, sample_rate), sample_rate,
                                       name="read-along-loop"))
            loop = None
            if plan.midi:
                add(files.midi(plan.index), plan.midi)
        # the cues' files are written; joining lets each cue's samples go once the next scene is placed (a volume's
        # score is an hour long: every cue, loop and the score held at once took 4.6 GB for 20 minutes)
        report(cb.step, len(plans), steps, f"joining {cues_word(len(plans))} into the score")
        stop_point()
        cues = [p.audio for p in plans]
        for plan in plans:
            plan.audio = None
        score = join_cues(cues, timings, sample_rate, bridges, release=True)
        report(cb.step, len(plans) + 1, steps, f"joining {cues_word(len(plans))}: the score's loudness and file")
        stop_point()
        # encoded straight into its file (a volume's score is hundreds of MB of WAV), its loudness set in place: the
        # score is not used after
        staged.add_written(files.score, lambda fh: write_encoded(
            score, sample_rate, fh, fmt=cfg.fmt, tags=tags, normalize=cfg.normalize, chapters=chapter_marks(sheet),
            in_place=True))
        written.append(files.score.name)
        score = None
        report(cb.step, steps, steps, f"joined {cues_word(len(plans))}")
        add(files.vtt, webvtt(sheet).encode("utf-8"))
        add(files.cue_sheet, to_json(sheet.model_dump(mode="json")).encode("utf-8"))
        loop_uris = [future.result() for future in loop_uris]
        add(files.read_along, _read_along_html(chapter, sheet, loop_uris, job).encode("utf-8"))
        keep = {files.scene_text(p.index).name for p in plans if p.user_text} | set(written)
        gone = []
        used_before = [files.scene_text(s["index"]).name for s in old_score.get("scenes", [])
                       if isinstance(s, dict) and s.get("user_text") and isinstance(s.get("index"), int)]
        for name in dict.fromkeys([*old_score.get("outputs", []), *used_before]):  # fewer scenes than last time, or
            # another format: our old files go; a text of the user's that a scene used is never among our outputs
            path = job.files.base.parent / name
            if name not in keep and path.exists() and is_ours(path, job.record):
                staged.remove(path)
                gone.append(name)
            elif name not in keep and path.exists() and name.endswith(".txt"):  # edited, for a scene now gone
                cb.info(f"{job.name}: {name} holds your words for a scene the chapter no longer has (it has "
                        f"{len(plans)} now): kept as it is, not used")
            elif name not in keep and not path.exists():  # gone already (the user deleted a scene's words; a stop
                staged.remove(path)  # while the other format's files went): no more named in the record
        old_format = old_score.get("format")
        if isinstance(old_format, str) and old_format != cfg.fmt and gone:  # a video timeline may point at them
            old_name = ScoreFiles(job, old_format).score.name
            more = f" and {len(gone) - 1} more" if old_name in gone and len(gone) > 1 else ""
            cb.info(f"{job.name}: the score and its cues are {cfg.fmt} files now; the {old_format} ones "
                    f"({old_name if old_name in gone else gone[0]}{more}) are replaced ({flag('fmt', old_format)} "
                    "brings them back)")
        usage = _score_usage(chapter, plans, describer)
        pages = [page_entry(i) for i in chapter.infos]
        updates = {
            "score": {"fingerprint": key, "seed": seed, "format": cfg.fmt, "reading_speed": cfg.reading_speed,
                      "normalize": cfg.normalize,  # the score's and its cues' loudness (-14 LUFS, or as composed)
                      "usage": usage, "cost_usd": usage_cost(describer, usage),  # the reading's and the scenes'
                      # descriptions' calls, all of what the score's words took
                      "longest_cue": cfg.longest_cue,
                      # the scenes file it was given (a rerun without --scenes keeps its scenes: chapter_settings)
                      **({"given_scenes": _given_scenes_kept(given_scenes, chapter)} if given_scenes else {}),
                      "sample_rate": file_rate(cfg.fmt, sample_rate),  # of the score's and cues' files
                      "duration": sheet.duration, "model": composer.model_name,
                      "transitions": cfg.transitions,
                      "model_id": composer.model_id, "settings": composer.settings_key(), "version": SCORE_VERSION,
                      "licence": composer.spec.licence, "commercial": composer.spec.commercial,
                      "theme": sheet.theme, "outputs": written,
                      "scenes": [{"index": p.index, "pages": [chapter.units[i].name for i in p.pages],
                                  "key": p.key, "description": p.description, "mood": p.mood, "seed": p.seed,
                                  "cue_key": p.cue_key, "cue_file": files.cue(p.index).name, "format": cfg.fmt,
                                  "user_text": p.user_text, "info": p.info, "bridge": p.bridge,
                                  **({"usage": p.usage} if p.usage else {}),
                                  **({"describer_seed": p.describer_seed} if p.describer_seed is not None else {})}
                                 for p in plans],
                      "pages_key": pages_key(pages),  # a `run` of changed pages since: said old (of_pages_before)
                      "pictures": pictures,  # each page's picture and seed key (see _unit_keys)
                      "seconds": round(time.perf_counter() - started, 3), "at": now_iso()},
            "pages": pages, "skipped_pages": job.skipped_pages or [],
        }
        job.commit(staged, updates)
    finally:
        staged.discard()
    if memo is not None:
        memo.forget()
    forget_cues(job.output, job.name, [p.track_key for p in plans])  # its cue files are what a rerun reuses now
    forget_unused_bridges(job, old_score, plans)
    job.tracks, job.description, job.seed = [files.score], chapter.description, int(seed)
    job.midi = _cue_midis(files, [p.index for p in plans])


def _score_usage(chapter, plans: list[ScenePlan], describer) -> Optional[dict]:
    """The tokens the chapter's reading and its scenes' descriptions took (a chat model's page entries, direction
    and one call per scene); ``None`` when any call's is unknown."""
    from .describers.chat import sum_usage

    usage = chapter.describe.get("usage")
    if not _is_chat(describer) or not isinstance(usage, dict):
        return usage if isinstance(usage, dict) else None
    return sum_usage([usage] + [plan.usage for plan in plans if not plan.user_text])


def _cue_midis(files: ScoreFiles, indices: list) -> list[Path]:
    """The cues' MIDI files that exist (composers that write notes), for the manifest."""
    return [files.midi(k) for k in indices if isinstance(k, int) and files.midi(k).is_file()]


def score_sections(sections: list[Section], output: Path, describer: Describer, composer: Composer,
                   cfg: RunConfig, cb: Callbacks, jobs: Optional[list] = None) -> list[SectionJob]:
    """Score every chapter: describe, find scenes, compose cues, join them (one chapter at a time); each job is
    added to ``jobs`` as it starts (see :func:`~manga2music.jobs.each_section`)."""
    try:
        return each_section(sections, output, cb, "scoring", "scored",
                            lambda section, job: score_chapter(section, job, describer, composer, cfg, cb), jobs)
    finally:
        describer.close()
        composer.close()


__all__ = ["score_sections", "score_chapter", "chapter_direction", "theme_for", "InputError"]
