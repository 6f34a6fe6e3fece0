"""The offline describer: reads each page (text boxes, line work, panels, tones) and maps the section to music.

No network, no randomness: the same pages always give the same text.  It cannot
follow the story; it reads how the pages are drawn and how much there is to read:

1. Every source page gets a :class:`~manga2music.reading.PageReading` (tiles of a
   tall strip are merged back into one page): energy, text found by the PP-OCR
   text detector, dialogue share, panels, brightness after colour normalisation,
   reading time.  See :mod:`manga2music.reading` and ``page_features``.
2. The section's scores are means over its pages (:class:`Scores`), except its
   energy, which is the mean of its liveliest half (:func:`liveliest_half`): a
   fight page is not made calm by the quiet page after it, while one lively page
   among many quiet ones stays a minority.  Colour never enters the scores: a
   page and its black-and-white copy get the same mood and tempo.
3. The first mood of :data:`MOODS` whose condition holds is **the one decision**:
   genre, atmosphere, style, instruments, tempo range, mode, pacing word and the
   plot sentence's mood all come from it, so the labels cannot contradict each other.

   =============  ===================================================  ===============  ==========  =====
   mood           when                                                 genre            tempo BPM   mode
   =============  ===================================================  ===============  ==========  =====
   action         energy >= 0.45, or >= 0.25 in <= 4 or tilted panels  action           140-170     minor
                  or in sharp light and shadow (contrast >= 0.27)
   comedy         energy >= 0.25, or >= 5.5 wordless panels, bright    comedy           104-128     major
   tense          dark (brightness < 0.55) with sharp contrast >= 0.27 drama (horror)   96-120      minor
   sad            dark (brightness < 0.55), soft contrast              drama            58-76       minor
   calm           anything else                                        conversation     64-88       major
   =============  ===================================================  ===============  ==========  =====

   ``calm`` is called "conversation" when dialogue-led and "slice of life" when
   visual; ``tense`` is "horror" when very dark (brightness < 0.4).  The tempo goes
   from the low to the high end of the range with energy; the key is picked from
   the mood's list by brightness (darker pages, lower keys).  Focus is "dialogue"
   when at least :data:`DIALOGUE_LED` of the reading time goes to text.

   Lively art drawn in sharp light and shadow is action, not comedy: comedy's music
   is light-hearted, and light-hearted pages are drawn light (open paper, soft
   shading: contrast 0.21-0.23 in Pepper&Carrot's comedy sections), where an
   ink-drawn fight is solid blacks and hard gradients (0.33-0.41 in OpenMantra's
   sword fights).  The line is :data:`SHARP`, the one that already tells tense
   from sad, not a new number.

Bump :data:`RULES_VERSION` whenever a number here changes, and
``reading.READING_MODEL_VERSION`` whenever one in ``reading``, ``page_features``
or ``text_detect`` does: both are part of :meth:`BuiltinDescriber.settings_key`,
so old descriptions are redone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..analysis import ChunkRecord, DescribeResult, SectionAnalysis
from ..errors import BackendError, InputError
from ..progress import ProgressFn, report
from ..reading import READING_MODEL_VERSION, PageReading, iter_groups, iter_readings, tile_name
from ..wording import listed
from .base import Describer, PageImage
from .page_features import trend

RULES_VERSION = "builtin-rules-14"

DIALOGUE_LED = 0.45  # share of reading time spent on text at or above which a section is dialogue-led
DARK = 0.55  # mean balanced brightness below this: a dark section
SHARP = 0.27  # contrast at or above this: sharp light and shadow
VERY_DARK = 0.40  # below this a tense section is horror
LIVELY = 0.25  # energy at or above this: lively artwork
INTENSE = 0.45  # energy at or above this: action whatever the layout
BIG_PANELS = 4.0  # at most this many panels a page: big panels
TILTED = 0.25  # a quarter of the frames' length tilted: a layout drawn for urgency (manga tilt frames for action and
# alarm; of 60 real pages checked, the others reach 0.13 at most, two emergency pages of a medical manga 0.28, 0.55).
# Not every artist keeps to that: OpenMantra's *boureisougi*, a quiet drama, tilts 10 of its 36 pages 0.26-0.71,
# one reason its chapter score has action cues (README, "Misses")
MANY_PANELS = 5.5  # at least this many panels a page, wordless: quick cuts (visual gags); manga cut a conversation
# into as many (6-7 a page on real dialogue-led drama pages) and a quiet moment too (a bus ride told in 8 small panels
# and a few thoughts), so many panels with words in them stay calm
WORDLESS = 10  # fewer characters than this a page: wordless scenes (also what the plot sentence says)
BRIGHT = 0.60  # mean balanced brightness at or above this: a bright section


def liveliest_half(values: list[float]) -> list[float]:
    """The larger half of ``values`` (the middle one too, for an odd count).

    Music follows a scene's big moments: a section of a fight page and a quiet
    page is scored as a fight, not as something in between that fits neither.
    """
    return sorted(values, reverse=True)[: (len(values) + 1) // 2]


@dataclass(frozen=True)
class Scores:
    """The few numbers the moods look at: means over the section's readings."""

    energy: float  # the mean over the liveliest half of the pages (see liveliest_half)
    dialogue: float  # share of reading time on text
    brightness: float  # after colour normalisation
    contrast: float
    panels: float  # panels per page (a strip counts per page-sized tile)
    seconds: float  # reading time per page at speed 1.0 (a strip: per page-sized tile, as the panels)
    colour: float  # share of colour pages (music colour only, never the mood)
    warmth: float  # -1 cool .. +1 warm, colour pages only (music colour only)
    slant: float = 0.0  # share of the panel frames' length that is tilted (mean over the pages)
    chars: float = 0.0  # text characters a source page

    @classmethod
    def from_readings(cls, readings: list[PageReading]) -> "Scores":
        def mean(values) -> float:
            return round(float(np.mean(list(values))), 4)

        colour = [r for r in readings if r.colour]
        return cls(
            energy=mean(liveliest_half([r.energy for r in readings])),
            dialogue=mean(r.dialogue for r in readings),
            brightness=mean(r.brightness for r in readings),
            contrast=mean(r.measures.get("contrast", 0.0) for r in readings),
            panels=mean(r.panels / max(1, r.tiles) for r in readings),
            seconds=mean(r.seconds / max(1, r.tiles) for r in readings),
            colour=round(len(colour) / len(readings), 4),
            warmth=mean(r.measures.get("warmth", 0.0) for r in colour) if colour else 0.0,
            slant=mean(r.measures.get("panel_slant", 0.0) for r in readings),
            chars=mean(r.text_chars for r in readings),
        )

    @property
    def dialogue_led(self) -> bool:
        return self.dialogue >= DIALOGUE_LED

    @property
    def wordless(self) -> bool:
        return self.chars < WORDLESS


@dataclass(frozen=True)
class Mood:
    """One row of the mood table: a condition and everything it implies."""

    name: str
    when: str  # the condition in words (for people; ``test`` is what runs)
    test: Callable[[Scores], bool]
    genre: str
    atmosphere: str
    style: str
    instruments: tuple[str, ...]
    tempo: tuple[int, int]
    mode: str  # major | minor
    keys: tuple[str, ...]  # picked by brightness, darkest first
    melody: str
    pacing: str  # the pacing word shown to users
    feeling: str  # the mood in the plot sentence


MOODS: tuple[Mood, ...] = (
    Mood("action", "energy >= 0.45, or energy >= 0.25 in <= 4 big panels, in tilted panels or in sharp light and "
         "shadow (contrast >= 0.27)",
         lambda s: s.energy >= INTENSE or (s.energy >= LIVELY and (s.panels <= BIG_PANELS or s.slant >= TILTED
                                                                    or s.contrast >= SHARP)),
         "action", "tense, urgent and explosive", "Driving orchestral action cue",
         ("pounding drums", "staccato strings", "bold brass", "low synth bass"), (140, 170), "minor",
         ("C", "D", "E", "A"), "with sharp brass hits and a relentless rhythm", "fast", "an intense, fast-moving mood"),
    Mood("comedy", "energy >= 0.25 in soft light (lively and light-hearted), or >= 5.5 panels a page, bright, "
         "wordless",
         lambda s: s.energy >= LIVELY or (s.panels >= MANY_PANELS and s.brightness >= BRIGHT and s.wordless),
         "comedy", "playful, lively and light-hearted", "Bouncy, playful light orchestral piece",
         ("pizzicato strings", "clarinet", "marimba", "light percussion"), (104, 128), "major",
         ("F", "C", "G", "D"), "with a cheeky, skipping melody", "brisk", "a lively, playful mood"),
    Mood("tense", "dark (brightness < 0.55) with sharp contrast >= 0.27",
         lambda s: s.brightness < DARK and s.contrast >= SHARP,
         "drama", "tense, ominous and suspenseful", "Suspenseful cinematic score",
         ("low strings", "pulsing synth", "timpani", "french horn"), (96, 120), "minor",
         ("C", "D", "G", "A"), "with a low, insistent ostinato", "measured", "a dark, tense mood"),
    Mood("sad", "dark (brightness < 0.55), soft contrast",
         lambda s: s.brightness < DARK,
         "drama", "sad, wistful and tender", "Melancholic piano ballad",
         ("solo piano", "cello", "soft strings"), (58, 76), "minor",
         ("D", "E", "A", "B"), "with a slow, sighing melody", "slow", "a dark, subdued mood"),
    Mood("calm", "anything else",
         lambda s: True,
         "conversation", "calm, gentle and peaceful", "Gentle slice-of-life acoustic piece",
         ("soft piano", "warm strings", "acoustic guitar"), (64, 88), "major",
         ("Eb", "Bb", "F", "C", "G"), "with a relaxed, flowing melody", "slow", "a calm, quiet mood"),
)


def choose_mood(scores: Scores) -> Mood:
    """The first mood of :data:`MOODS` whose condition holds (the last one always does)."""
    return next(mood for mood in MOODS if mood.test(scores))


def genre_of(mood: Mood, scores: Scores) -> str:
    if mood.name == "calm" and not scores.dialogue_led:
        return "slice of life"
    if mood.name == "tense" and scores.brightness < VERY_DARK:
        return "horror"
    return mood.genre


def tempo_and_key(mood: Mood, scores: Scores) -> tuple[int, str]:
    lo, hi = mood.tempo
    tempo = round(lo + (hi - lo) * min(1.0, max(0.0, scores.energy)))
    index = min(int(scores.brightness * len(mood.keys)), len(mood.keys) - 1)
    return tempo, mood.keys[index]


def music_description(mood: Mood, scores: Scores, energy_trend: float) -> str:
    """One paragraph in the shape a stage-2 description has: style, instruments, BPM, key, mood."""
    tempo, key = tempo_and_key(mood, scores)
    arc = ""
    if energy_trend >= 0.2:
        arc = ", building in intensity toward the end"
    elif energy_trend <= -0.2:
        arc = ", gradually settling toward the end"
    return (f"{mood.style} with {listed(mood.instruments)}, {tempo} BPM in {key} {mood.mode}, "
            f"{mood.atmosphere}, {mood.melody}{arc}.")


def pacing(mood: Mood, scores: Scores, strips: bool = False) -> str:
    """The pacing word and the numbers behind it; with tall strips among the pages, both numbers are per
    page-sized part of a strip (as the panels are counted), never a whole strip's time beside one part's panels."""
    word = "frantic" if mood.name == "action" and scores.energy >= 0.75 else mood.pacing
    if strips:
        return f"{word} (about {scores.seconds:.0f} s to read each page-sized part, {scores.panels:.1f} panels a part)"
    return f"{word} (about {scores.seconds:.0f} s to read a page, {scores.panels:.1f} panels a page)"


def plot_sentence(mood: Mood, scores: Scores, readings: list[PageReading]) -> str:
    """What the pages honestly support: how much text, the panels, the tones, the mood. Not the story."""
    if scores.dialogue_led:
        talk = "Dialogue-led scenes"
    elif not scores.wordless:
        talk = "Mostly visual scenes with some text"
    else:
        talk = "Wordless scenes"
    pages = len(readings)
    strips = sum(1 for r in readings if r.tiles > 1)
    noun = "page" if pages == 1 else "pages"
    if strips:
        noun += " (a long strip)" if strips == 1 and pages == 1 else f" ({strips} long strips)"
    size = "a few large" if scores.panels <= 3.5 else "medium-sized" if scores.panels <= 5.5 else "many small"
    tones = "dark tones" if scores.brightness < DARK else "light tones"
    return f"{talk} across {pages} {noun}, with {size} panels, {tones} and {mood.feeling}."


def analyse(readings: list[PageReading]) -> tuple[SectionAnalysis, str, dict]:
    """Turn per-page readings into the analysis, the music description and the features record."""
    scores = Scores.from_readings(readings)
    mood = choose_mood(scores)
    energy_trend = round(trend([r.energy for r in readings]), 4)
    analysis = SectionAnalysis(
        genre=genre_of(mood, scores),
        atmosphere=mood.atmosphere,
        focus="dialogue" if scores.dialogue_led else "visual",
        pacing=pacing(mood, scores, strips=any(r.tiles > 1 for r in readings)),
        plot=plot_sentence(mood, scores, readings),
    )
    tempo, key = tempo_and_key(mood, scores)
    features = {
        "rules_version": RULES_VERSION,
        "reading_model_version": READING_MODEL_VERSION,
        "mood": mood.name,
        "tempo_bpm": tempo,
        "key": f"{key} {mood.mode}",
        "scores": {k: getattr(scores, k) for k in Scores.__dataclass_fields__},
        "energy_trend": energy_trend,
        "pages": len(readings),
        "reading_seconds": round(sum(r.seconds for r in readings), 2),
        "readings": [r.to_dict() for r in readings],
    }
    return analysis, music_description(mood, scores, energy_trend), features


class BuiltinDescriber(Describer):
    """Describes a section from its page readings and :data:`MOODS`; needs no network and no download."""

    backend = "builtin-vision"
    #: what the measurements need (they work on a 512-pixel copy; text detection wants more)
    page_side = 1280

    two_stage = True

    def describe(self, pages: list[PageImage], *, progress: ProgressFn | None = None) -> DescribeResult:
        if not pages:
            raise InputError("no pages to describe", hint="Give a folder, archive or PDF with at least one image.")
        total, done = len(pages), 0
        readings, warnings, names = [], [], []
        for name, tiles, outcome in iter_readings(iter_groups(pages), with_tiles=True):
            names.extend([name] if len(tiles) == 1 else [tile_name(name, t + 1) for t in range(len(tiles))])
            if isinstance(outcome, Exception):  # a truncated or unreadable image: skip just that page
                warnings.append(f"skipped {name}: {outcome}")
            else:
                readings.append(outcome)
                if not outcome.text_detected:
                    warnings.append(f"{name}: no text reading ({outcome.warning}); its other readings are kept")
            done += len(tiles)
            report(progress, done, total, name)
        if not readings:
            raise BackendError("none of the pages could be measured", hint="; ".join(warnings)[:300])
        analysis, description, features = analyse(readings)
        return DescribeResult(
            description=description,
            analysis=analysis,
            chunks=[ChunkRecord(pages=names, analysis=analysis)],
            features=features,
            prompt_version=RULES_VERSION,
            warnings=warnings,
        )

    def settings_key(self) -> dict:
        return {**super().settings_key(), "rules": RULES_VERSION, "reading": READING_MODEL_VERSION}
