"""The builtin describer on real, hand-labelled pages (tests/data/pages, labelled before tuning).

Prints how many sections it gets right; asserts the issue's numbers on this set.
Runs every section in colour and as a black-and-white copy (~25 s on 2 cores).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_scripts import REPO, load_script

BENCH = REPO / "benchmarks" / "describer_eval.py"


def bench_module():
    return load_script("benchmarks/describer_eval.py")


@pytest.fixture(scope="module")
def result():
    module = bench_module()
    out = module.evaluate()
    module.print_report(out)  # shown with pytest -s
    return out


@pytest.mark.slow
def test_labelled_pages_are_read_right(result):
    rows = {r["section"]: r for r in result["rows"]}
    assert result["total"] == 15  # 14 Pepper&Carrot sections and one black-and-white manga page
    # of 15 (5 moods; guessing the commonest label gets 5); pc-e21-comedy, a comedy told in talk, is called calm since
    # many panels of talk are read as a conversation (as they are on real manga drama pages)
    assert result["right"] >= 10
    # calm or dialogue scenes: under 100 BPM and never tense or action (issue: at least 4 in 5)
    assert result["calm_ok"] == result["calm_total"] == 5
    # the black-and-white manga page (line art, rectangular frames broken by the art, Japanese columns) is calm talk
    assert rows["wt-calm"]["mood"] == "calm" and rows["wt-calm"]["focus"] == "dialogue"
    # the same pages in black and white and in colour: within 15 BPM, same genre
    assert result["bw_same"] == result["total"] and result["bw_max_bpm_gap"] <= 15
    # text-heavy sections are called dialogue-led (6 of the 7 labelled so; pc-e21-calm is borderline)
    assert result["dialogue_led"] >= 6
    # the action scene with speed strokes and sound effects is above every calm scene in tempo and energy
    action = rows["pc-e06-action"]
    assert action["mood"] == "action"  # a page of sound effects, then a page of talk: scored by its liveliest half
    for calm in (r for r in result["rows"] if r["label"] == "calm"):
        assert action["tempo"] > calm["tempo"] and action["energy"] > calm["energy"]
    # known miss, kept visible: the painted dragon fight (no speed lines, no sound effects) reads as calm
    assert result["action_above_calm"] >= 5


def test_the_openmantra_sections_are_labelled_and_a_missing_clone_says_where_to_get_it(tmp_path):
    import json

    module = bench_module()
    spec = json.loads(module.OPENMANTRA.read_text(encoding="utf-8"))
    sections = spec["sections"].values()
    assert {s["mood"] for s in sections} <= set(module.MOODS)
    assert all(1 <= s["first"] <= s["last"] for s in sections)
    assert sum(s["mood"] == "action" for s in sections) >= 4 and sum(s["mood"] == "calm" for s in sections) >= 4
    assert {s["set"] for s in sections} == {"first", "second"}  # development and held-out sections, reported apart
    with pytest.raises(SystemExit) as exit_info:
        module.evaluate_openmantra(tmp_path)
    message = str(exit_info.value)
    assert "rasetugari/ja/017.jpg is missing" in message and "mantra-inc/open-mantra-dataset" in message


def labelled_folder(root: Path, labels: dict) -> Path:
    """A folder laid out as the eval expects: one sub-folder per section and labels.json (no texts.json)."""
    import json
    import shutil

    pages = BENCH.parent.parent / "tests" / "data" / "pages"
    for name, source in (("fight", "pc-e06-action"), ("talk", "pc-e14-calm")):
        shutil.copytree(pages / source, root / name)
    (root / "labels.json").write_text(json.dumps({"sections": labels}), encoding="utf-8")
    return root


def test_your_own_labelled_pages_are_read_from_a_folder_without_texts(tmp_path):
    import json
    import subprocess
    import sys

    folder = labelled_folder(tmp_path / "mine", {"fight": {"mood": "action", "dialogue": False},
                                                 "talk": {"mood": "calm", "dialogue": True}})
    done = subprocess.run([sys.executable, str(BENCH), "--pages", str(folder), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["pages"]
    rows = {r["section"]: r for r in result["rows"]}
    assert set(rows) == {"fight", "talk"} and result["total"] == 2
    assert rows["fight"]["mood"] == "action" and rows["talk"]["mood"] == "calm"
    assert result["action_above_calm"] == result["action_calm_pairs"] == 1
    assert result["dialogue_led"] == result["dialogue_total"] == 1
    assert result["text_chars_vs_true"] == 0  # no true text given: nothing to compare


def test_a_bad_label_or_a_missing_section_folder_is_one_clear_line(tmp_path):
    import subprocess
    import sys

    def run(folder):
        done = subprocess.run([sys.executable, str(BENCH), "--pages", str(folder)],
                              capture_output=True, text=True, timeout=120)
        return done.returncode, done.stderr.strip().splitlines()

    wrong_mood = labelled_folder(tmp_path / "a", {"fight": {"mood": "fighting", "dialogue": False}})
    code, lines = run(wrong_mood)
    assert code != 0 and len(lines) == 1 and "fight" in lines[0] and "fighting" in lines[0] and "calm" in lines[0]
    no_folder = labelled_folder(tmp_path / "b", {"chase": {"mood": "action", "dialogue": False}})
    code, lines = run(no_folder)
    assert code != 0 and len(lines) == 1 and "chase" in lines[0] and "no such folder" in lines[0]
    code, lines = run(tmp_path / "nowhere")
    assert code != 0 and len(lines) == 1 and "labels.json" in lines[0]
