"""The chapter score (issue #17): scene boundaries found, time to score a chapter, and MusicGen's speed on a score.

    python benchmarks/score_bench.py                 # all three parts
    python benchmarks/score_bench.py scenes          # boundary precision and recall only (a minute)
    python benchmarks/score_bench.py builtin         # a 20-page chapter with ~5 minutes of reading, builtin models
    python benchmarks/score_bench.py musicgen        # musicgen-small's real architecture (random weights): the score's
                                                     # cues in one call vs one cue at a time, same run
    python benchmarks/score_bench.py theme           # chroma similarity of cues with and without the shared theme
    python benchmarks/score_bench.py openmantra --openmantra DIR   # whole real chapters (a clone of the dataset):
                                                     # scenes, and the cue of each hand-labelled page

Writes ``benchmarks/results/score-latest.json`` and prints tables.

**Scenes.**  Generated chapters (the samples' calm and action drawing code, other
seeds: ``tests/chapters.py``) in several orders and sizes, and real chapters made
by putting two hand-labelled Pepper&Carrot sections of different moods end to end
(``tests/data/pages``).  A found boundary within one page of a true one is a hit;
recall is hits / true boundaries; false boundaries are counted per 20 pages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))

GENERATED = [
    [("calm", 4), ("action", 5), ("calm", 3)],
    [("action", 3), ("calm", 6)],
    [("calm", 10)],
    [("action", 8)],
    [("calm", 2), ("action", 2), ("calm", 2), ("action", 4)],
    [("calm", 6), ("action", 6), ("calm", 6), ("action", 6)],
    [("action", 5), ("calm", 3), ("action", 5), ("calm", 7)],
    [("calm", 3), ("action", 12), ("calm", 3)],
]
REAL = [("pc-e06-calm", "pc-e06-action"), ("pc-e14-calm", "pc-e14-action"), ("pc-e20-calm", "pc-e15-tense"),
        ("pc-e06-calm", "pc-e08-sad"), ("pc-e21-comedy", "pc-e15-tense"), ("pc-e20-comedy", "pc-e08-tense"),
        ("pc-e21-calm", "pc-e14-action"), ("pc-e06-comedy", "pc-e11-tense")]


def _score_boundaries(found: list[int], truth: list[int], pages: int) -> dict:
    hits = sum(1 for t in truth if any(abs(f - t) <= 1 for f in found))
    false = sum(1 for f in found if not any(abs(f - t) <= 1 for t in truth))
    return {"true": len(truth), "found": len(found), "hits": hits, "false": false, "pages": pages}


def scenes_part() -> dict:
    from PIL import Image

    from chapters import make_chapter
    from manga2music.reading import read_page
    from manga2music.scene_planning import found_scenes

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, layout in enumerate(GENERATED):
            folder = Path(tmp) / f"g{k}"
            truth = make_chapter(folder, layout, seed=50 + k)
            pages = sorted(folder.iterdir())
            readings = [read_page(Image.open(p).convert("RGB"), p.name) for p in pages]
            found = [s.start for s in found_scenes(readings)[1:]]
            rows.append({"chapter": " + ".join(f"{n} {kind}" for kind, n in layout), "kind": "generated",
                         "truth": truth, "found_at": found, **_score_boundaries(found, truth, len(pages))})
    root = REPO / "tests" / "data" / "pages"
    for a, b in REAL:
        pages = [p for name in (a, b) for p in sorted((root / name).iterdir()) if p.suffix == ".jpg"]
        truth = [sum(1 for p in (root / a).iterdir() if p.suffix == ".jpg")]
        readings = [read_page(Image.open(p).convert("RGB"), p.name) for p in pages]
        found = [s.start for s in found_scenes(readings)[1:]]
        rows.append({"chapter": f"{a} + {b}", "kind": "real (Pepper&Carrot)", "truth": truth, "found_at": found,
                     **_score_boundaries(found, truth, len(pages))})
    summary = {}
    for kind in ("generated", "real (Pepper&Carrot)"):
        sel = [r for r in rows if r["kind"] == kind]
        true, hits = sum(r["true"] for r in sel), sum(r["hits"] for r in sel)
        found, false = sum(r["found"] for r in sel), sum(r["false"] for r in sel)
        pages = sum(r["pages"] for r in sel)
        summary[kind] = {"recall": round(hits / true, 3) if true else None,
                         "precision": round((found - false) / found, 3) if found else None,
                         "false_per_20_pages": round(20 * false / pages, 2), "chapters": len(sel), "pages": pages}
    return {"rows": rows, "summary": summary}


def openmantra_part(root: Path) -> dict:
    """Whole real chapters: each OpenMantra book that has hand-labelled sections (``data/openmantra_sections.json``,
    see describer_eval.py), read and cut into scenes as ``score`` does; per labelled page, the mood and tempo of the
    cue it lies in.  Reported per set (the first was looked at to change rules, the second is held out): pages whose
    cue has their labelled mood; (action page, calm page) pairs, of one book or two, whose action page's cue is the
    faster; calm pages in cues under 100 BPM and not action or tense."""
    from PIL import Image

    from manga2music.reading import read_page
    from manga2music.scene_planning import found_scenes, scene_music

    spec = json.loads((HERE / "data" / "openmantra_sections.json").read_text(encoding="utf-8"))
    books, pages = {}, {"first": [], "second": []}
    for book in sorted({v["book"] for v in spec["sections"].values()}):
        files = sorted((root / "images" / book / "ja").glob("*.jpg"))
        started = time.perf_counter()
        readings = [read_page(Image.open(f).convert("RGB"), f.name) for f in files]
        music = scene_music(readings)
        scenes = [(s.start, s.end, *music(s.start, s.end)) for s in found_scenes(readings)]
        books[book] = {"pages": len(files), "read_s": round(time.perf_counter() - started, 1),
                       "scenes": [{"pages": f"{a + 1}-{b}", "mood": m, "tempo": t} for a, b, m, t in scenes]}
        cue = {i: (m, t) for a, b, m, t in scenes for i in range(a, b)}
        for name, v in spec["sections"].items():
            if v["book"] == book:  # the dataset's file numbers are 0-based pages
                pages[v["set"]] += [(v["mood"], *cue[i]) for i in range(v["first"], v["last"] + 1)]
    sets = {}
    for name, rows in pages.items():
        calm = [t for label, _, t in rows if label == "calm"]
        action = [t for label, _, t in rows if label == "action"]
        sets[name] = {
            "pages": len(rows), "cue_has_labelled_mood": sum(label == m for label, m, _ in rows),
            "action_calm_page_pairs_action_faster": sum(a > c for a in action for c in calm),
            "action_calm_page_pairs": len(action) * len(calm),
            "calm_pages_under_100_not_tense_or_action": sum(t < 100 and m not in ("tense", "action")
                                                             for label, m, t in rows if label == "calm"),
            "calm_pages": len(calm)}
    return {"books": books, "sets": sets}


def builtin_part() -> dict:
    """A 20-page chapter scored with the builtin models, in this process (work) and as a whole command; then the
    command's peak memory for a score four times as long (a slow reader): what each extra minute of score costs;
    and a whole volume as one chapter (126 pages, 18 scenes): its time and peak memory."""
    from chapters import make_chapter
    from command_bench import peak_anon_of

    import manga2music
    from manga2music.options import RunConfig

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "chapter"
        make_chapter(folder, [("calm", 7), ("action", 6), ("calm", 7)], seed=90)
        speed = 0.7  # a deliberate reader: about 5 minutes for these 20 pages
        started = time.perf_counter()
        manifest = manga2music.score([folder], Path(tmp) / "out", vision_model="builtin", music_model="builtin",
                                     config=RunConfig(seed=1, reading_speed=speed))
        work = time.perf_counter() - started
        sheet = json.loads((Path(tmp) / "out" / "chapter.cues.json").read_text())
        commands = []
        for k, pace in enumerate((speed, speed / 4)):
            out = Path(tmp) / f"o{k}"
            wall, peak_mb, code = peak_anon_of([sys.executable, "-m", "manga2music", "score", str(folder), "-o",
                                                str(out), "--vision-model", "builtin", "--music-model", "builtin",
                                                "--seed", "1", "--reading-speed", str(pace)])
            minutes = json.loads((out / "chapter.cues.json").read_text())["duration"] / 60 if code == 0 else 0.0
            commands.append({"reading_speed": pace, "score_minutes": round(minutes, 2), "command_s": round(wall, 2),
                             "peak_anon_mb": round(peak_mb), "exit": code})
        # a volume read as one chapter: 126 pages, 18 scenes, about 55 minutes at half speed (many cues at once,
        # where the 20 pages above have 3)
        folder = Path(tmp) / "volume"
        make_chapter(folder, [("calm", 8), ("action", 6)] * 9, seed=3)
        wall, peak_mb, code = peak_anon_of([sys.executable, "-m", "manga2music", "score", str(folder), "-o",
                                            str(Path(tmp) / "ov"), "--vision-model", "builtin", "--music-model",
                                            "builtin", "--seed", "1", "--reading-speed", "0.5"])
        volume_sheet = json.loads((Path(tmp) / "ov" / "volume.cues.json").read_text()) if code == 0 else {}
        volume = {"pages": 126, "reading_speed": 0.5, "scenes": len(volume_sheet.get("scenes", [])),
                  "score_minutes": round(volume_sheet.get("duration", 0.0) / 60, 2), "command_s": round(wall, 2),
                  "peak_anon_mb": round(peak_mb), "exit": code}
    (short, long), extra = commands, commands[1]["score_minutes"] - commands[0]["score_minutes"]
    return {"pages": 20, "reading_speed": speed, "score_seconds": sheet["duration"], "scenes": len(sheet["scenes"]),
            "work_s": round(work, 2), "command_s": short["command_s"], "exit": short["exit"],
            "status": manifest["sections"][0]["status"], "commands": commands,
            "mb_per_score_minute": round((long["peak_anon_mb"] - short["peak_anon_mb"]) / extra, 1) if extra else None,
            "volume": volume}


def musicgen_part(seconds_per_cue: float = 6.0, cues: int = 4) -> dict:
    """musicgen-small's real architecture, random weights, bf16: a score's cues in one call vs one at a time."""
    import torch

    from manga2music.composers.base import ComposeRequest
    from manga2music.composers.musicgen import MusicgenComposer
    from musicgen_arch import build_random_musicgen

    folder = build_random_musicgen("small", torch.bfloat16)
    texts = ["Gentle slice-of-life acoustic piece with soft piano, 70 BPM in C major",
             "Driving orchestral action cue with pounding drums, 160 BPM in C minor",
             "Suspenseful cinematic score with low strings, 100 BPM in C minor",
             "Melancholic piano ballad with cello, 64 BPM in C minor"]
    lengths = [seconds_per_cue + 0.5 * k for k in range(cues)]  # scenes differ in length, as in a chapter
    reqs = [ComposeRequest(f"scene {k + 1}", texts[k % len(texts)], lengths[k], 10 + k) for k in range(cues)]
    composer = MusicgenComposer(str(folder), {"precision": "bf16", "offline": True})
    composer.compose([ComposeRequest("warm-up", texts[0], 1.0, 0)])  # load + first-call warm-up, not timed
    started = time.perf_counter()
    tracks = composer.compose(reqs)  # the score: every cue in one call (equal lengths share a batch)
    together = time.perf_counter() - started
    # --transitions continue: a bridge per scene change, carried on from the outgoing cue as `score` makes them
    # (a bar at 90 BPM before the change plus a one-beat crossfade; the cue up to there as the prompt)
    sr, lead, fade = 32000, int(4 * 60 / 90 * 32000), int(60 / 90 * 32000)
    take = [int(lengths[k] * sr) - lead for k in range(cues - 1)]
    prompt = min(10 * sr, min(take))  # one prompt length for the chapter, as `score` does: one batch
    bridges = [ComposeRequest(f"bridge {k}", texts[k % len(texts)], (lead + fade) / sr, 100 + k,
                              follows=tracks[k - 1].audio[take[k - 1] - prompt:take[k - 1]]) for k in range(1, cues)]
    started = time.perf_counter()
    composer.compose(bridges)
    bridging = time.perf_counter() - started
    started = time.perf_counter()
    for r in reqs:  # the baseline: one cue at a time
        composer.compose([r])
    apart = time.perf_counter() - started
    audio = sum(lengths)
    composer.close()
    return {"model": "musicgen-small architecture (random weights), bf16, CPU", "cues": cues, "audio_s": audio,
            "one_call_s": round(together, 1), "one_at_a_time_s": round(apart, 1),
            "one_call_audio_s_per_s": round(audio / together, 3), "one_at_a_time_audio_s_per_s": round(audio / apart, 3),
            "speedup": round(apart / together, 2), "bridges": len(bridges),
            "bridge_new_s": round((lead + fade) / sr, 2), "bridge_prompt_s": round(prompt / sr, 2),
            "bridges_s": round(bridging, 1),
            "bridges_vs_cues": round(bridging / together, 3), "threads": torch.get_num_threads()}


def theme_part() -> dict:
    """Chroma similarity between a chapter's cues when they share its theme and when they do not (builtin)."""
    import itertools

    import numpy as np

    from manga2music.composers.builtin import BuiltinComposer
    from manga2music.score_audio import chroma, chroma_similarity
    from manga2music.scoring import theme_for

    composer = BuiltinComposer()
    texts = ["Gentle slice-of-life acoustic piece with soft piano, 72 BPM in D major",
             "Driving orchestral action cue with pounding drums and piano theme, 156 BPM in D minor",
             "Melancholic piano ballad with cello, 64 BPM in D minor",
             "Bouncy, playful light orchestral piece with piano theme, 116 BPM in D major"]
    out = {}
    for label, theme in (("shared theme", theme_for(3)), ("no theme", None)):
        sims = []
        for seed in range(5):
            vectors = [chroma(composer.compose_one(t, 12.0, seed=seed * 10 + k, theme=theme).audio, 32000)
                       for k, t in enumerate(texts)]
            sims += [chroma_similarity(a, b) for a, b in itertools.combinations(vectors, 2)]
        out[label] = round(float(np.mean(sims)), 4)
    return out


def main() -> None:
    os.environ["MANGA2MUSIC_READING_CACHE"] = "off"  # every page read, as timed: no reading kept from a run before
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=["scenes", "builtin", "theme", "musicgen"])
    parser.add_argument("--openmantra", type=Path, metavar="DIR",
                        help="a clone of the OpenMantra dataset: score its books with labelled sections (part "
                             "'openmantra')")
    args = parser.parse_args()
    if "openmantra" in args.parts and not args.openmantra:
        parser.error("the openmantra part needs --openmantra DIR (a clone of the dataset)")
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "at": time.strftime("%Y-%m-%d %H:%M")}
    path = HERE / "results" / "score-latest.json"
    if path.exists():
        result = {**json.loads(path.read_text()), **result}
    for part in args.parts:
        result[part] = {"scenes": scenes_part, "builtin": builtin_part, "musicgen": musicgen_part,
                        "theme": theme_part, "openmantra": lambda: openmantra_part(args.openmantra)}[part]()
        print(json.dumps({part: result[part] if part != "scenes" else result[part]["summary"]}, indent=2),
              flush=True)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
