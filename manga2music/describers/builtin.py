"""The offline describer: measures the pages' pixels and maps them to music with a rule table.

No model, no network, no randomness: the same pages always give the same text.
It cannot read the story; it looks at how the pages are drawn
(see :mod:`manga2music.describers.page_features`) and reasons from that:

1. Measure every page: ink, brightness, contrast, colour and warmth, edges and
   how aligned the line work is (speed lines), panels, speech bubbles.
2. Average over the section and boil the numbers down to a few 0..1 scores:

   ``energy``  heavy ink, speed lines, edges, many panels, slanted panels
               (weights in :data:`ENERGY_WEIGHTS`)
   ``talk``    how much of the page speech bubbles cover (0.5 % .. 6 %)
   plus ``brightness``, ``contrast``, ``colour`` (share of colour pages) and ``warmth``.

3. The first rule of :data:`RULES` whose condition holds picks the genre, the
   atmosphere, the style, the instruments, a tempo range and the mode:

   =============  ==========================================  ===========  ==========  =======================================
   rule           when                                        genre        tempo BPM   mode / instruments
   =============  ==========================================  ===========  ==========  =======================================
   action         energy >= 0.6                               action       140-170     minor; drums, staccato strings, brass, synth bass
   sci-fi         colour, warmth <= -0.15                     sci-fi       90-118      dorian; synth pads, arpeggiated synthesizer, electric piano
   horror         brightness < 0.45                           horror       60-80       minor; low drones, dissonant strings, sparse piano
   romance        colour, warmth >= 0.25                      romance      68-92       major; soft piano, acoustic guitar, lush strings
   drama          energy >= 0.35 or contrast >= 0.38          drama        88-120      minor; strings, piano, timpani, french horn
   comedy         talk >= 0.35, >= 5 panels, brightness >= .75 comedy      104-128     major; pizzicato strings, clarinet, marimba, light percussion
   conversation   talk >= 0.35                                conversation 65-85       major; soft piano, warm strings, acoustic guitar
   quiet          anything else                               drama        66-88       dorian; soft piano, ambient pads, harp
   =============  ==========================================  ===========  ==========  =======================================

   The tempo goes from the low to the high end of the range with ``energy``;
   the key is picked from the rule's list by brightness (darker pages, lower keys).
   Focus is "dialogue" when ``talk >= 0.35``, otherwise "visual".

Bump :data:`RULES_VERSION` whenever a number here or in ``page_features`` changes:
it is part of :meth:`BuiltinDescriber.settings_key`, so old descriptions are redone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..analysis import ChunkRecord, DescribeResult, SectionAnalysis
from ..errors import BackendError, InputError
from ..progress import ProgressFn, report
from .base import Describer, PageImage
from .page_features import aggregate, measure_page, trend

RULES_VERSION = "builtin-rules-1"

#: energy = sum of weight * ramp(feature, low, high); the weights add up to 1
ENERGY_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "ink": (0.30, 0.05, 0.45),
    "speed_lines": (0.25, 0.05, 0.45),
    "edge_density": (0.15, 0.05, 0.35),
    "panel_count": (0.15, 2.0, 8.0),
    "slant": (0.15, 0.01, 0.15),  # 1 - panel_rectangularity
}
TALK_RANGE = (0.005, 0.06)  # bubble_fraction mapped to talk 0..1
DIALOGUE = 0.35  # talk at or above this: focus "dialogue"


def ramp(x: float, low: float, high: float) -> float:
    """0 below ``low``, 1 above ``high``, linear between."""
    return min(1.0, max(0.0, (x - low) / (high - low)))


@dataclass(frozen=True)
class Scores:
    """The few numbers the rules look at (all from :func:`page_features.aggregate`)."""

    energy: float
    talk: float
    brightness: float
    contrast: float
    colour: float  # share of colour pages
    warmth: float  # -1 cool .. +1 warm (colour pages only)
    panels: float  # mean panels per page

    @classmethod
    def from_mean(cls, mean: dict) -> "Scores":
        return cls(
            energy=round(energy_score(mean), 4),
            talk=round(ramp(mean["bubble_fraction"], *TALK_RANGE), 4),
            brightness=mean["brightness"],
            contrast=mean["contrast"],
            colour=mean["colour_pages"],
            warmth=mean["warmth"],
            panels=mean["panel_count"],
        )


def energy_score(features: dict) -> float:
    """How intense the artwork looks, 0..1 (see :data:`ENERGY_WEIGHTS`)."""
    values = dict(features, slant=1.0 - features["panel_rectangularity"])
    return sum(w * ramp(values[k], lo, hi) for k, (w, lo, hi) in ENERGY_WEIGHTS.items())


@dataclass(frozen=True)
class Rule:
    """One row of the rule table: a condition and the music it implies."""

    name: str
    when: str  # the condition in words (for people; ``test`` is what runs)
    test: Callable[[Scores], bool]
    genre: str
    atmosphere: str
    style: str
    instruments: tuple[str, ...]
    tempo: tuple[int, int]
    mode: str  # major | minor | dorian
    keys: tuple[str, ...]  # picked by brightness, darkest first
    melody: str


RULES: tuple[Rule, ...] = (
    Rule("action", "energy >= 0.6", lambda s: s.energy >= 0.6,
         "action", "tense, urgent and explosive", "Driving orchestral action cue",
         ("pounding drums", "staccato strings", "bold brass", "low synth bass"), (140, 170), "minor",
         ("C", "D", "E", "A"), "with sharp brass hits and a relentless rhythm"),
    Rule("sci-fi", "colour pages, warmth <= -0.15", lambda s: s.colour >= 0.5 and s.warmth <= -0.15,
         "sci-fi", "cool, vast and mysterious", "Atmospheric electronic piece",
         ("shimmering synth pads", "arpeggiated synthesizer", "electric piano", "soft drums"), (90, 118), "dorian",
         ("C", "D", "E", "A"), "with a floating, pulsing arpeggio"),
    Rule("horror", "brightness < 0.45", lambda s: s.brightness < 0.45,
         "horror", "eerie, ominous and cold", "Dark ambient horror score",
         ("low drones", "dissonant strings", "sparse piano", "distant percussion"), (60, 80), "minor",
         ("C#", "F", "B"), "with slow, creeping swells and long silences"),
    Rule("romance", "colour pages, warmth >= 0.25", lambda s: s.colour >= 0.5 and s.warmth >= 0.25,
         "romance", "warm, tender and hopeful", "Warm romantic ballad",
         ("soft piano", "acoustic guitar", "lush strings"), (68, 92), "major",
         ("Bb", "F", "C", "G", "D"), "with a gentle, singing melody"),
    Rule("drama", "energy >= 0.35 or contrast >= 0.38", lambda s: s.energy >= 0.35 or s.contrast >= 0.38,
         "drama", "tense and emotional", "Cinematic dramatic score",
         ("strings", "piano", "timpani", "french horn"), (88, 120), "minor",
         ("C", "D", "G", "A"), "with a building, urgent melody"),
    Rule("comedy", "talk >= 0.35, >= 5 panels, brightness >= 0.75",
         lambda s: s.talk >= DIALOGUE and s.panels >= 5 and s.brightness >= 0.75,
         "comedy", "playful, lively and light-hearted", "Bouncy, playful light orchestral piece",
         ("pizzicato strings", "clarinet", "marimba", "light percussion"), (104, 128), "major",
         ("F", "C", "G", "D"), "with a cheeky, skipping melody"),
    Rule("conversation", "talk >= 0.35", lambda s: s.talk >= DIALOGUE,
         "conversation", "calm, friendly and peaceful", "Gentle slice-of-life acoustic piece",
         ("soft piano", "warm strings", "acoustic guitar"), (65, 85), "major",
         ("Eb", "Bb", "F", "C", "G"), "with a relaxed, flowing melody"),
    Rule("quiet", "anything else", lambda s: True,
         "drama", "quiet, reflective and still", "Ambient, reflective piece",
         ("soft piano", "ambient pads", "harp"), (66, 88), "dorian",
         ("C", "D", "E", "A"), "with a slow, wandering melody"),
)


def choose_rule(scores: Scores) -> Rule:
    """The first rule of :data:`RULES` whose condition holds (the last one always does)."""
    return next(rule for rule in RULES if rule.test(scores))


def tempo_and_key(rule: Rule, scores: Scores) -> tuple[int, str]:
    lo, hi = rule.tempo
    tempo = round(lo + (hi - lo) * scores.energy)
    index = min(int(scores.brightness * len(rule.keys)), len(rule.keys) - 1)
    return tempo, rule.keys[index]


def _joined(words: tuple[str, ...]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def music_description(rule: Rule, scores: Scores, energy_trend: float) -> str:
    """One paragraph in the shape a stage-2 description has: style, instruments, BPM, key, mood."""
    tempo, key = tempo_and_key(rule, scores)
    arc = ""
    if energy_trend >= 0.2:
        arc = ", building in intensity toward the end"
    elif energy_trend <= -0.2:
        arc = ", gradually settling toward the end"
    return (f"{rule.style} with {_joined(rule.instruments)}, {tempo} BPM in {key} {rule.mode}, "
            f"{rule.atmosphere}, {rule.melody}{arc}.")


def pacing(scores: Scores, mean: dict) -> str:
    facts = f"{mean['panel_count']:.1f} panels per page, {mean['ink']:.0%} ink, {mean['speed_lines']:.0%} speed lines"
    word = "slow" if scores.energy < 0.25 else "moderate" if scores.energy < 0.5 else "fast" if scores.energy < 0.75 else "frantic"
    return f"{word} ({facts})"


def plot_sentence(scores: Scores, mean: dict, pages: int) -> str:
    """What the pixels honestly support: how talky, how the panels look, the tones. Not the story."""
    if scores.talk >= DIALOGUE:
        talk = "Dialogue-heavy scenes"
    elif mean["bubble_count"] >= 0.5:
        talk = "Scenes with some dialogue"
    else:
        talk = "Mostly wordless scenes"
    panels = mean["panel_count"]
    size = "a few large" if panels <= 3.5 else "medium-sized" if panels <= 5.5 else "many small"
    slanted = " slanted" if mean["panel_rectangularity"] < 0.95 else ""
    calm = " calm" if scores.energy < 0.25 and size == "a few large" else ""
    if scores.energy >= 0.6:
        tones = "heavy black ink and speed lines"
    elif scores.colour >= 0.5:
        tones = "warm colours" if scores.warmth >= 0.25 else "cool colours" if scores.warmth <= -0.15 else "muted colours"
    elif scores.brightness < 0.45:
        tones = "dark tones"
    else:
        tones = "light tones"
    noun = "page" if pages == 1 else "pages"
    joiner = ", " if " and " in tones else " and "
    return f"{talk} across {pages} {noun} with {size}{calm}{slanted} panels{joiner}{tones}."


def analyse(per_page: list[dict]) -> tuple[SectionAnalysis, str, dict]:
    """Turn per-page measurements into the analysis, the music description and the features record."""
    section = aggregate(per_page)
    mean = section["mean"]
    scores = Scores.from_mean(mean)
    rule = choose_rule(scores)
    energies = [energy_score(p) for p in per_page]
    energy_trend = round(trend(energies), 4)
    analysis = SectionAnalysis(
        genre=rule.genre,
        atmosphere=rule.atmosphere,
        focus="dialogue" if scores.talk >= DIALOGUE else "visual",
        pacing=pacing(scores, mean),
        plot=plot_sentence(scores, mean, len(per_page)),
    )
    tempo, key = tempo_and_key(rule, scores)
    features = {
        "rules_version": RULES_VERSION,
        "rule": rule.name,
        "tempo_bpm": tempo,
        "key": f"{key} {rule.mode}",
        "scores": {k: getattr(scores, k) for k in Scores.__dataclass_fields__},
        "energy_trend": energy_trend,
        **section,
        "per_page": per_page,
    }
    return analysis, music_description(rule, scores, energy_trend), features


class BuiltinDescriber(Describer):
    """Describes a section from measured pixels and :data:`RULES`; needs no weights and no network."""

    backend = "builtin-vision"
    #: what the measurements need (they work on a 512-pixel copy; text detection wants more)
    page_side = 1280

    two_stage = True

    def describe(self, pages: list[PageImage], *, progress: ProgressFn | None = None) -> DescribeResult:
        if not pages:
            raise InputError("no pages to describe", hint="Give a folder, archive or PDF with at least one image.")
        per_page, warnings, names = [], [], []
        for i, page in enumerate(pages, start=1):
            names.append(page.name)
            try:
                per_page.append({"name": page.name, **measure_page(page.image)})
            except (OSError, ValueError) as err:  # a truncated or unreadable image: skip just that page
                warnings.append(f"skipped {page.name}: {err}")
            report(progress, i, len(pages), page.name)
        if not per_page:
            raise BackendError("none of the pages could be measured", hint="; ".join(warnings)[:300])
        analysis, description, features = analyse(per_page)
        return DescribeResult(
            description=description,
            analysis=analysis,
            chunks=[ChunkRecord(pages=names, analysis=analysis)],
            features=features,
            prompt_version=RULES_VERSION,
            warnings=warnings,
        )

    def settings_key(self) -> dict:
        return {**super().settings_key(), "rules": RULES_VERSION}
