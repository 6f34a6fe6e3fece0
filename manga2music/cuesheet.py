"""The cue sheet of a chapter score: which scene plays when, which page starts when; and its WebVTT twin.

``NAME.cues.json`` follows :class:`CueSheet` (validated before it is written; the
schema is in ``docs/cue-sheet.md`` and ``CueSheet.model_json_schema()``).

**Timing** (:func:`plan_timing`).  A scene lasts as long as its pages take to read
(the sum of their reading times at the user's reading speed, at least
:data:`MIN_CUE_S`; or the length the scenes file gives it), rounded to whole bars
of its cue's tempo, so that every scene change falls on a bar line of the music
that is playing.  Its cue is composed as long as the scene, or, for a scene read
for longer than the composer's longest track (or ``--longest-cue``), as many whole
bars as that holds: the score then plays the cue once and its seamless loop again
(:class:`manga2music.score_audio.SceneAudio`) until the scene ends, so the pages
keep their reading times.  The score is the scenes end to end: its length is the
sum of the scenes' lengths to the sample, and each scene starts exactly at its time.  Within
a scene, each page starts in proportion to the reading time of the pages before it.
A cue is composed :data:`TRANSITION_BEATS` beats longer than its scene: that tail
fades out under the next cue's first beat (an equal-power crossfade starting on the
bar line), so no scene starts late and no seam is a bare cut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

CUE_SHEET_SCHEMA = 1
MIN_CUE_S = 8.0  # a scene's cue lasts at least this long, however quick its pages are to read
MAX_CUE_S = 1800.0  # a cue is composed at most this long (or the composer's own limit: 1800 s builtin, 600 s
# MusicGen; ``api.MAX_DURATION``); a scene read for longer repeats its cue as a loop
TRANSITION_BEATS = 1.0  # the crossfade into the next scene, in beats of the outgoing cue
MAX_TRANSITION_S = 2.0  # and never longer than this
DEFAULT_BPM = 90.0  # when a description names no tempo


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PageTime(_Strict):
    """When one page starts in the score."""

    index: int = Field(description="its number in the chapter: 1 for the first page found (a page that could not "
                       "be read has no entry but keeps its number, so the numbers can skip one)")
    name: str
    scene: int = Field(description="the scene it belongs to (1-based)")
    start: float = Field(description="seconds from the start of the score, to the microsecond; a scene's first page "
                         "starts at its scene's `start`")
    reading_seconds: float = Field(description="its estimated reading time at the chosen reading speed")
    part: Optional[int] = Field(None, description="a tall strip (a webtoon episode saved as one image) is read in "
                                "page-shaped parts, each with its own entry: this one's number, 1 at the top (null: "
                                "an ordinary page, one entry)")
    parts: Optional[int] = Field(None, description="how many parts the strip is read in (null: an ordinary page)")


class SceneCue(_Strict):
    """One scene and the cue that plays under it."""

    index: int = Field(description="1 for the first scene")
    title: str
    mood: Optional[str] = Field(None, description="the mood its pages read as; its music follows `description`, "
                                "which may be the user's own (the title then ends \"(your description)\")")
    first_page: int = Field(description="the number of its first page in the chapter (as `pages[].index`)")
    last_page: int
    first_part: Optional[int] = Field(None, description="the part of a tall strip where the scene starts, when it "
                                      "starts inside one (null: at the top of first_page)")
    last_part: Optional[int] = Field(None, description="the part of a tall strip where the scene ends, when it "
                                     "ends inside one (null: at the end of last_page)")
    pages: list[str] = Field(description="the names of its pages, each once (a strip it shares with another scene "
                             "too)")
    start: float = Field(description="seconds from the start of the score (on a bar line of the previous cue), to "
                         "the microsecond, as are end, duration, transition_s and bridge_s: start * sample_rate is "
                         "the scene's first sample")
    end: float
    duration: float = Field(description="end - start: the scene's time in the score")
    reading_seconds: float = Field(description="the sum of its pages' reading times, before rounding to bars")
    given_s: Optional[float] = Field(None, description="its length as the scenes file (`--scenes`) gave it, which "
                                     "`duration` follows instead of the reading time (null: not given)")
    tempo_bpm: float
    bars: int
    transition_s: float = Field(description="how long this cue's tail fades out under the next cue (0 for the last)")
    transition: Literal["crossfade", "continuation", "end"] = Field(
        "crossfade", description="how its music hands over to the next scene: crossfade (its own tail fades out), "
        "continuation (a bridge carried on from this cue into the next scene's description takes over "
        "`bridge_s` before the scene ends, and fades out instead), or end (the last scene)")
    bridge_s: float = Field(0.0, description="continuation: seconds before this scene's end where the bridge "
                            "takes over (on a bar or beat line)")
    bridge_seed: Optional[int] = Field(None, description="continuation: the bridge's seed")
    description: str
    description_file: str
    cue_file: str = Field(description="the cue alone: the scene plus its tail (the beat that fades out under the next "
                                      "scene; the last scene's cue keeps it too; the score fades out over its last 2 s instead)")
    loop_file: str = Field(description="the cue as a seamless loop of exactly `cue_s` seconds: the scene's "
                           "duration, unless the scene repeats its cue")
    cue_s: Optional[float] = Field(None, description="how much of the scene its cue was composed for (the cue file "
                                   "is this plus its tail): the scene's duration, or, for a scene read for longer "
                                   "than the composer's longest track (or `--longest-cue`), fewer whole bars: the "
                                   "score plays the cue once, then its loop again until the scene ends (absent from "
                                   "cue sheets made before 2026-11-30: there it is the duration)")
    seed: Optional[int] = None


class CueSheet(_Strict):
    """``NAME.cues.json``."""

    schema_version: int = CUE_SHEET_SCHEMA
    tool: str = "manga2music"
    chapter: str
    score_file: str
    vtt_file: str
    read_along_file: Optional[str] = None
    sample_rate: int = Field(description="the sample rate of the score's and cues' files (48000 for Opus, which "
                             "holds no other rate the composers make)")
    duration: float = Field(description="the score's length in seconds: the sum of the scenes' durations")
    reading_speed: float
    seed: Optional[int] = Field(None, description="the chapter's seed: `--seed` with it, at this `reading_speed` and "
                                "with the other settings the record NAME.json keeps (the format, `--longest-cue`, "
                                "`--no-normalize`), makes this score again (each scene's `seed` is made from it and "
                                "the scene's pages; absent from cue sheets made before 2026-12-05: the record has it)")
    music_model: str
    vision_model: str
    theme: Optional[dict] = Field(None, description="the motif every cue shares (scale steps), where the composer uses one")
    scenes: list[SceneCue]
    pages: list[PageTime]


@dataclass
class SceneTiming:
    """A scene's place in the score, in samples (exact) and seconds."""

    start: int
    length: int  # samples in the score
    bars: int
    tempo_bpm: float
    transition: int  # samples of the tail that overlaps the next scene (0 for the last)
    reading_seconds: float
    cue_length: int  # samples the cue is composed for: ``length``, or fewer whole bars (the cue then loops)

    @property
    def loops(self) -> bool:
        """Whether the scene is longer than its cue (the score repeats the cue's loop to fill it)."""
        return self.cue_length < self.length


def bar_seconds(tempo_bpm: float, beats_per_bar: int = 4) -> float:
    return beats_per_bar * 60.0 / max(20.0, float(tempo_bpm))


def scene_bars(seconds: float, tempo: float, max_cue_s: float = MAX_CUE_S,
               given: Optional[float] = None) -> tuple[int, int]:
    """A scene's length in whole bars of ``tempo`` (as close to its reading time as bars come, at least
    :data:`MIN_CUE_S`; or to ``given``, its length from the scenes file), and its cue's: the same, or as many bars
    as fit in ``max_cue_s`` with the cue's tail."""
    bar = bar_seconds(tempo)
    bars = max(1, round((given if given is not None else max(seconds, MIN_CUE_S)) / bar))
    if given is None:  # rounded to the nearest bar, a quick scene came out under the least (7.3 s at 165 BPM)
        bars = max(bars, math.ceil(MIN_CUE_S / bar - 1e-9))
    cue_bars = min(bars, max(1, int((max_cue_s - MAX_TRANSITION_S) // bar)))
    return bars, cue_bars


def chapter_bars(reading_seconds: list[float], tempos: list[float], max_cue_s: float = MAX_CUE_S,
                 given: Optional[list[Optional[float]]] = None) -> list[tuple[int, int]]:
    """:func:`scene_bars` of every scene.  A scene whose length the scenes file gives makes up for the rounding of
    the given scenes just before it: in a run of scenes with given lengths (a video cut to those lengths), each
    scene change is within half a bar of where the lengths put it, however many scenes came before, unless a scene is
    given less than a bar (it lasts one: :func:`missed_given_lengths` says how far off the changes then are)."""
    out, owed = [], 0.0  # seconds the given scenes of this run so far ran over their lengths
    for k, (seconds, tempo) in enumerate(zip(reading_seconds, tempos)):
        wanted = given[k] if given else None
        bars = scene_bars(seconds, tempo, max_cue_s, None if wanted is None else max(wanted - owed, 0.0))
        owed = 0.0 if wanted is None else owed + bars[0] * bar_seconds(tempo) - wanted
        out.append(bars)
    return out


def plan_timing(reading_seconds: list[float], tempos: list[float], sample_rate: int, *,
                max_cue_s: float = MAX_CUE_S, given: Optional[list[Optional[float]]] = None) -> list[SceneTiming]:
    """Each scene's start, length (whole bars of its tempo), cue length and transition tail, in samples (see the
    module doc).  ``given[k]``, where not None, is scene k's length from the scenes file, used instead of its
    reading time (and not held to :data:`MIN_CUE_S`; see :func:`chapter_bars`)."""
    timings, start = [], 0
    for k, (seconds, tempo, (bars, cue_bars)) in enumerate(zip(reading_seconds, tempos,
                                                                chapter_bars(reading_seconds, tempos, max_cue_s,
                                                                             given))):
        bar = bar_seconds(tempo)
        length = int(round(bars * bar * sample_rate))
        cue_length = int(round(cue_bars * bar * sample_rate))
        last = k == len(reading_seconds) - 1
        transition = 0 if last else int(round(min(TRANSITION_BEATS * 60.0 / max(20.0, tempo), MAX_TRANSITION_S)
                                              * sample_rate))
        timings.append(SceneTiming(start, length, bars, float(tempo), transition, float(seconds), cue_length))
        start += length
    return timings


def missed_given_lengths(timings: list[SceneTiming], given: Optional[list[Optional[float]]],
                         sample_rate: int) -> Optional[tuple[int, float]]:
    """Where the lengths of a scenes file could not be kept to within half a bar, or a scene is given less than a bar
    at its tempo (it lasts one at least): ``(k, seconds)``, the scene (0-based) whose end is furthest from where the
    lengths put it, and how far (later is positive); None when every change is within half a bar of its time and
    no scene is given less than a bar."""
    worst, wanted_end = None, None
    for k, t in enumerate(timings):
        length = given[k] if given else None
        if length is None:
            wanted_end = None  # a run of given lengths starts again after a scene timed by its reading
            continue
        wanted_end = (t.start / sample_rate if wanted_end is None else wanted_end) + length
        off = (t.start + t.length) / sample_rate - wanted_end
        rounding = (k + 1) / sample_rate  # each scene's length is rounded to whole samples: up to half a sample
        short = length < bar_seconds(t.tempo_bpm) - 1e-6  # lasts a bar: said, however near its end lands
        if (abs(off) > bar_seconds(t.tempo_bpm) / 2 + rounding or short) and (worst is None or abs(off) > abs(worst[1])):
            worst = (k, off)
    return worst


def page_starts(scene_start_s: float, scene_length_s: float, reading: list[float]) -> list[float]:
    """Each page's start within a scene, in proportion to the reading time of the pages before it."""
    total = sum(reading) or 1.0
    starts, done = [], 0.0
    for r in reading:
        starts.append(scene_start_s + scene_length_s * done / total)
        done += r
    return starts


def _stamp(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def page_span(first: int, last: int, first_part: Optional[int] = None, last_part: Optional[int] = None) -> str:
    """A scene's pages as people say them: "page 3" or "pages 3-7"; where it starts or ends inside a tall strip
    (``first_part``, ``last_part``: the parts it starts and ends in), "page 1, parts 5-9", "page 1 from part 5",
    "page 1 up to part 4", "page 1 part 5 to page 3"."""
    if first == last:
        if first_part and last_part:
            return f"page {first}, part {first_part}" if first_part == last_part else \
                f"page {first}, parts {first_part}-{last_part}"
        if first_part:
            return f"page {first} from part {first_part}"
        if last_part:
            return f"page {first} up to part {last_part}"
        return f"page {first}"
    if not first_part and not last_part:
        return f"pages {first}-{last}"
    return (f"page {first}" + (f" part {first_part}" if first_part else "") + f" to page {last}"
            + (f" part {last_part}" if last_part else ""))


def scene_span(scene) -> str:
    """:func:`page_span` of a :class:`SceneCue` or its dict."""
    get = scene.get if isinstance(scene, dict) else lambda key: getattr(scene, key)
    return page_span(get("first_page"), get("last_page"), get("first_part"), get("last_part"))


def scene_count(sheet: CueSheet) -> str:
    """``1 scene``, ``3 scenes``."""
    return f"{len(sheet.scenes)} scene" + ("s" if len(sheet.scenes) != 1 else "")


def webvtt(sheet: CueSheet) -> str:
    """The scenes as WebVTT chapters (video editors and players show their titles)."""
    lines = ["WEBVTT", "", _vtt_text(f"NOTE {sheet.chapter}: {scene_count(sheet)}, made by manga2music"), ""]
    for scene in sheet.scenes:
        lines += [str(scene.index), f"{_stamp(scene.start)} --> {_stamp(scene.end)}",
                  _vtt_text(f"{scene.title} ({scene_span(scene)})"), ""]
    return "\n".join(lines)


def _vtt_text(text: str) -> str:
    """One line that WebVTT reads as text: no "-->" (a cue's timing; a chapter named "a --> b" made the NOTE a
    broken cue) and no line break (a blank line ends a block)."""
    text = " ".join(text.split())
    while "-->" in text:  # ("--->" left "-->" after one pass)
        text = text.replace("-->", "->")
    return text


def chapter_marks(sheet: CueSheet) -> list[tuple[float, float, str]]:
    """(start s, end s, title) per scene, for the chapter tags of the score file."""
    return [(s.start, s.end, s.title) for s in sheet.scenes]


def stamp(seconds: float) -> str:
    """``HH:MM:SS.mmm`` (WebVTT and Vorbis chapter comments)."""
    return _stamp(seconds)


__all__ = ["CueSheet", "SceneCue", "PageTime", "plan_timing", "scene_bars", "chapter_bars", "page_starts", "webvtt",
           "chapter_marks", "bar_seconds", "stamp", "MIN_CUE_S", "MAX_CUE_S"]
