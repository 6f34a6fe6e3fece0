"""The prompts every model describer sends, versioned.

Two-stage prompting (the default):

1. **Analysis** (with the pages): genre, emotional atmosphere, focus (dialogue-
   or visual-driven), pacing and plot, answered as JSON matching
   :class:`~manga2music.analysis.SectionAnalysis`.
2. **Description** (text only): the analysis becomes one short paragraph a
   text-to-music model (MusicGen) can follow: style, instruments, tempo, key or
   mode, mood, and never the story itself.

Single stage asks for the description straight from the pages; when a section
needs several requests, the per-chunk descriptions are merged by one more
text-only call (:func:`merge_prompt`).

Change ``PROMPT_VERSION`` whenever a text below changes: it is part of every
describer's ``settings_key()``, so a new version re-describes on the next run.
"""

from __future__ import annotations

import json
import re

from .analysis import GENRES, SectionAnalysis

#: bump on any change of wording; "YYYY-MM-N"
PROMPT_VERSION = "2026-11-1"

#: the limits the description prompts ask for (answers.clean_description enforces them)
MAX_DESCRIPTION_WORDS = 60
MAX_DESCRIPTION_CHARS = 400

#: genres whose scenes get quiet, unobtrusive accompaniment
LIGHT_GENRES = ("comedy", "humor", "conversation")


def analysis_schema() -> dict:
    """The JSON schema of the stage-1 answer (from the pydantic model, so they never drift apart)."""
    return SectionAnalysis.model_json_schema()


def _answer_shape() -> str:
    """A one-line example of the expected object, easier for small models than a full schema."""
    shape = {
        "genre": "|".join(GENRES),
        "atmosphere": "a few words",
        "focus": "dialogue|visual",
        "pacing": "slow|moderate|fast|frantic, and why",
        "plot": "one or two sentences",
    }
    return json.dumps(shape, ensure_ascii=False)


def stage1_placeholders() -> list[str]:
    """What the stage-1 request says of each field (its example object's values, its instructions, the JSON
    schema's descriptions), lower-cased: an analysis field that says one of them repeats the request."""
    said = [str(v) for v in json.loads(_answer_shape()).values()]
    said += [m.group(1) for m in re.finditer(r'^- "\w+": (.+?);?$', stage1_prompt(1), re.MULTILINE)]
    said += [str(p.get("description", "")) for p in analysis_schema().get("properties", {}).values()]
    return [" ".join(s.lower().rstrip(".;").split()) for s in said if s.strip()]


def _pages_phrase(n_pages: int) -> str:
    return "this manga page" if n_pages == 1 else f"these {n_pages} consecutive manga pages (in reading order)"


_DESCRIPTION_RULES = f"""Rules for the description:
- One paragraph of at most {MAX_DESCRIPTION_WORDS} words: no title, no list, no quotation marks.
- Name the musical genre or style, the main instruments, the tempo in BPM, the key or mode, and the mood.
- Keep it broad and atmospheric, like the brief for a film-score cue.
- Describe only the music. Never mention manga, comics, pages, panels, characters, names or the plot."""

_LIGHT_RULE = (
    "The scene is carried by dialogue or light comedy: keep the music light and unobtrusive "
    "(ambient, lo-fi or soft acoustic accompaniment) and let it follow the mood of the story."
)
_VISUAL_RULE = "The scene is carried by its visuals: let the music amplify their emotion and energy."


def stage1_prompt(n_pages: int) -> str:
    """Stage 1: analyse the pages, answer JSON."""
    return f"""Look at {_pages_phrase(n_pages)} and analyse the scene to choose background music for it.

Answer with one JSON object with these keys:
- "genre": the closest of {", ".join(GENRES)};
- "atmosphere": the emotional atmosphere, in a few words;
- "focus": "dialogue" if the scene is driven by dialogue, "visual" if it is driven by its visuals and action;
- "pacing": slow, moderate, fast or frantic, with a few words why;
- "plot": what happens, in one or two sentences.

Shape of the answer: {_answer_shape()}
Answer with the JSON object only."""


def retry_json_prompt(n_pages: int, reason: str) -> str:
    """The second try after an answer that could not be read as JSON."""
    reason = " ".join(str(reason).split())[:160]
    return (
        stage1_prompt(n_pages)
        + f"\n\nYour previous answer could not be read ({reason}). Please answer with valid JSON only: "
        "exactly one object with the keys genre, atmosphere, focus, pacing and plot, "
        "no code fences, no comments, no text before or after it."
    )


def focus_rule(analysis: SectionAnalysis) -> str:
    """Comedy and dialogue-heavy scenes get light accompaniment; visual scenes get amplified."""
    if analysis.focus == "dialogue" or analysis.genre in LIGHT_GENRES:
        return _LIGHT_RULE
    return _VISUAL_RULE


def stage2_prompt(analysis: SectionAnalysis) -> str:
    """Stage 2 (text only): turn the analysis into one music description."""
    plot = analysis.plot or "(not given)"
    return f"""Write one music description that a text-to-music model (MusicGen) will follow to score this scene.

Scene analysis:
- genre: {analysis.genre}
- emotional atmosphere: {analysis.atmosphere}
- focus: {analysis.focus}-driven
- pacing: {analysis.pacing}
- plot (for context only, do not retell it): {plot}

{focus_rule(analysis)}

{_DESCRIPTION_RULES}

Answer with the description only."""


def single_stage_prompt(n_pages: int) -> str:
    """Single stage: the description straight from the pages."""
    return f"""Look at {_pages_phrase(n_pages)} and write one music description that a text-to-music model \
(MusicGen) will follow to score the scene.

Consider its genre (the closest of {", ".join(GENRES)}), its emotional atmosphere, its pacing, \
and whether it is driven by dialogue or by visuals. For comedy and dialogue-driven scenes keep the music light \
and unobtrusive (ambient, lo-fi or soft acoustic accompaniment) following the mood of the story; for scenes \
carried by their visuals let the music amplify their emotion and energy.

{_DESCRIPTION_RULES}

Answer with the description only."""


def merge_prompt(descriptions: list[str]) -> str:
    """Single stage with several chunks: merge the per-chunk descriptions (text only)."""
    listed = "\n".join(f"{i}. {d}" for i, d in enumerate(descriptions, 1))
    return f"""Below are music descriptions written for consecutive parts of one scene, in order. \
Merge them into one music description for the whole scene, keeping what they share and the overall mood.

{listed}

{_DESCRIPTION_RULES}

Answer with the merged description only."""
