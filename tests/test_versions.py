"""A text that decides outputs may not change without its version: reruns rely on the versions to redo work.

Each versioned text (the prompts, the builtin describer's rules, the builtin composer's
notes) is hashed here and compared with the hash recorded for its current version.
If you change one of them on purpose, bump its version constant and record the new
hash printed by the failing assertion; if you did not mean to change it, look again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def check(version: str, value, recorded: dict[str, str], what: str) -> None:
    got = digest(value)
    assert version in recorded, f"{what}: new version {version!r}; record its hash {got!r} in this test"
    assert recorded[version] == got, (
        f"{what} changed (hash {got}) but its version is still {version!r}: bump the version (old outputs are then "
        f"redone on the next run) and record the new hash")


def test_prompt_texts_change_only_with_prompt_version():
    from manga2music import prompts
    from manga2music.analysis import SectionAnalysis

    analysis = SectionAnalysis(genre="action", atmosphere="tense", focus="visual", pacing="fast", plot="a duel")
    texts = {
        "schema": prompts.analysis_schema(),
        "stage1": [prompts.stage1_prompt(n) for n in (1, 3)],
        "retry": prompts.retry_json_prompt(2, "no JSON object"),
        "stage2": prompts.stage2_prompt(analysis),
        "stage2_dialogue": prompts.stage2_prompt(analysis.model_copy(update={"focus": "dialogue", "genre": "comedy"})),
        "single": [prompts.single_stage_prompt(n) for n in (1, 3)],
        "merge": prompts.merge_prompt(["calm piano", "fast drums"]),
    }
    check(prompts.PROMPT_VERSION, texts, {"2026-11-1": "73058fa8c8539003"}, "the prompts")


def test_builtin_rules_change_only_with_rules_version():
    from manga2music.describers.base import PageImage
    from manga2music.describers.builtin import RULES_VERSION, BuiltinDescriber

    decisions = {}
    for section in ("calm", "action", "webtoon"):
        pages = [PageImage(p.name, Image.open(p).convert("RGB")) for p in sorted((SAMPLES / section).iterdir())]
        result = BuiltinDescriber().describe(pages)
        decisions[section] = {"description": result.description, "analysis": result.analysis.model_dump()}
    check(RULES_VERSION, decisions, {"builtin-rules-1": "d425938b9d5cd9fe", "builtin-rules-2": "14ac12ee75953d0f", "builtin-rules-3": "89de47f9592df925", "builtin-rules-4": "48f0eb4c1c1ed9d9", "builtin-rules-5": "e33fb0a13c97b87f", "builtin-rules-6": "2fbdebac0c5f6137", "builtin-rules-7": "2fbdebac0c5f6137", "builtin-rules-8": "2fbdebac0c5f6137", "builtin-rules-9": "2fbdebac0c5f6137", "builtin-rules-10": "2fbdebac0c5f6137", "builtin-rules-11": "2fbdebac0c5f6137", "builtin-rules-12": "2fbdebac0c5f6137", "builtin-rules-13": "2fbdebac0c5f6137", "builtin-rules-14": "2fbdebac0c5f6137"}, "the builtin describer's decisions on samples/")


def test_builtin_composer_notes_change_only_with_algorithm_version():
    from manga2music.composers.builtin import ALGORITHM_VERSION, BuiltinComposer

    composer = BuiltinComposer()
    notes = {}
    for text in ("calm piano, 70 BPM in G major", "driving action drums and brass, 160 BPM in D minor", "",
                 "warm strings, 80 BPM in B Flat Major",  # builtin-music-6: "Flat"/"Sharp" in any case
                 "Bouncy comedy with piano theme, pizzicato strings, clarinet and marimba"):  # -9: the piano leads
        track = composer.compose_one(text, 6.0, seed=3)
        notes[text] = hashlib.sha256(track.midi).hexdigest()
    check(ALGORITHM_VERSION, notes, {"builtin-music-1": "3d243c6ed336de51", "builtin-music-2": "3d243c6ed336de51", "builtin-music-3": "3d243c6ed336de51",
                                     "builtin-music-4": "3d243c6ed336de51", "builtin-music-5": "3d243c6ed336de51",
                                     "builtin-music-6": "1087072527b05a1a", "builtin-music-7": "1087072527b05a1a",
                                     "builtin-music-8": "1087072527b05a1a", "builtin-music-9": "903d667c437618ac"},
          "the builtin composer's notes")


def test_scene_boundaries_change_only_with_scenes_version():
    """Scene boundaries are recorded, and a rerun redoes a scene's cue only when its version or pages change."""
    import numpy as np

    from manga2music.reading import PageReading
    from manga2music.scene_planning import found_scenes
    from manga2music.scenes import SCENES_VERSION, find_scenes, page_vector

    # runs of calm talk, calm without words, a fight, dark pages, dimmer and quieter talk, a calmer fight
    rng = np.random.default_rng(0)
    kinds = [(0.05, 0.85, 0.6, 0.2), (0.05, 0.85, 0.0, 0.2), (0.5, 0.7, 0.2, 0.35), (0.15, 0.4, 0.3, 0.32),
             (0.1, 0.72, 0.4, 0.23), (0.35, 0.7, 0.2, 0.34)]
    readings = []
    for run in range(16):
        energy, brightness, dialogue, contrast = kinds[int(rng.integers(len(kinds)))]
        for _ in range(int(rng.integers(2, 8))):
            jitter = rng.normal(0, 0.08, 4)
            readings.append(PageReading(
                name=f"{len(readings):03d}.png", energy=float(np.clip(energy + jitter[0], 0, 1)), text_boxes=3,
                text_area=0.02, text_chars=50, dialogue=float(np.clip(dialogue + jitter[1], 0, 1)), panels=5,
                colour=False, brightness=float(np.clip(brightness + jitter[2], 0, 1)), seconds=8.0,
                measures={"contrast": float(np.clip(contrast + jitter[3] / 3, 0, 1))}))
    found = find_scenes([page_vector(r) for r in readings])
    joined = found_scenes(readings)
    assert len(joined) < len(found)  # this chapter has neighbours with the same music, so the joining is covered
    check(SCENES_VERSION, {"found": [s.start for s in found], "joined": [s.start for s in joined]},
          {"scenes-3": "bfe185f5994c3cec"}, "the scene boundaries")
