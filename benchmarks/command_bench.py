"""The whole `manga2music compose` command beside the composer alone (issue #16), same run, real musicgen-small shape.

    python benchmarks/command_bench.py [--sections 8] [--seconds 5] [--baseline-sections 2]

Three measurements on musicgen-small's real architecture with random weights (``musicgen_arch.py``):

1. **baseline**: the composer in fp32, one section at a time (load excluded).  It is linear in the number of
   sections, so ``--baseline-sections`` of them are timed and the time is scaled to ``--sections``.
2. **composer alone**: ``MusicgenComposer.compose`` on all sections with ``--precision auto`` and the batch size
   it picks (load and a 1 s warm-up excluded).
3. **whole command**: ``python -m manga2music compose DESCRIPTIONS --model FOLDER --duration S`` in its own process:
   Python start-up, imports, model load, composing, loudness, encoding, tags, records, manifest; its peak
   anonymous memory is polled from /proc (``RssAnon``).  The same command under ``cProfile`` (a second run)
   splits its time into those parts.

Writes ``benchmarks/results/command-latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

TEXTS = ["calm piano with soft strings, slow tempo, melancholic evening mood",
         "fast action drums, heavy bass and distorted guitars, tense and loud",
         "lofi hip hop beat with warm keys and vinyl crackle for a quiet talk",
         "bright comedic woodwinds and pizzicato strings, playful and light",
         "dark ambient drone, horror atmosphere, distant metallic echoes",
         "romantic acoustic guitar and gentle flute, warm and tender",
         "epic orchestral brass and choir, heroic and triumphant",
         "mysterious synth pads and arpeggios, cool night city"]


def peak_anon_of(cmd: list[str]) -> tuple[float, float, int]:
    """(wall s, peak RssAnon MB, exit code) of a command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    peak, done = [0], threading.Event()

    def poll():
        while not done.is_set():
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("RssAnon:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.05)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    code = proc.wait()
    wall = time.perf_counter() - start
    done.set()
    t.join()
    return wall, peak[0] / 1024, code


def main() -> None:
    os.environ["MANGA2MUSIC_READING_CACHE"] = "off"  # every page read, as timed: no reading kept from a run before
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--baseline-sections", type=int, default=2)
    args = parser.parse_args()
    import torch

    from manga2music.composers.base import ComposeRequest
    from manga2music.composers.musicgen import MusicgenComposer
    from musicgen_arch import build_random_musicgen

    folder = build_random_musicgen("small", torch.bfloat16)
    reqs = [ComposeRequest(f"s{i}", TEXTS[i % len(TEXTS)], args.seconds, i) for i in range(args.sections)]
    audio = args.sections * args.seconds
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "at": time.strftime("%Y-%m-%d %H:%M"),
              "model": "musicgen-small architecture, random weights", "sections": args.sections,
              "seconds_each": args.seconds, "torch_threads": torch.get_num_threads()}

    base = MusicgenComposer(str(folder), {"precision": "fp32", "offline": True, "batch_size": 1})
    base.compose([ComposeRequest("warm", TEXTS[0], 1.0, 0)])
    started = time.perf_counter()
    for r in reqs[: args.baseline_sections]:
        base.compose([r])
    per_section = (time.perf_counter() - started) / args.baseline_sections
    base.close()
    result["baseline_s"] = round(per_section * args.sections, 1)
    result["baseline_note"] = f"{args.baseline_sections} sections timed, scaled to {args.sections}"

    alone = MusicgenComposer(str(folder), {"offline": True})
    alone.compose([ComposeRequest("warm", TEXTS[0], 1.0, 0)])
    started = time.perf_counter()
    tracks = alone.compose(reqs)
    result["composer_alone_s"] = round(time.perf_counter() - started, 1)
    result["composer_batch"] = tracks[0].info.get("batch_size")
    result["composer_precision"] = tracks[0].info.get("precision")
    alone.close()

    with tempfile.TemporaryDirectory() as tmp:
        desc = Path(tmp) / "desc"
        desc.mkdir()
        for r in reqs:
            (desc / f"{r.name}.txt").write_text(r.text)
        cmd = [sys.executable, "-m", "manga2music", "compose", str(desc), "-o", str(Path(tmp) / "out"),
               "--model", str(folder), "--duration", str(args.seconds), "--seed", "1", "--offline"]
        wall, anon, code = peak_anon_of(cmd)
        result.update(command_s=round(wall, 1), command_peak_anon_gb=round(anon / 1024, 2), command_exit=code)
        prof = Path(tmp) / "prof.out"
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "manga2music", "compose", str(desc),
                        "-o", str(Path(tmp) / "out2"), "--model", str(folder), "--duration", str(args.seconds),
                        "--seed", "1", "--offline"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
        result["command_parts_s"] = parts_of(prof)
    result["ratios"] = {"composer_alone_vs_baseline": round(result["baseline_s"] / result["composer_alone_s"], 2),
                        "command_vs_baseline": round(result["baseline_s"] / result["command_s"], 2),
                        "audio_s_per_wall_s_command": round(audio / result["command_s"], 3)}
    out = HERE / "results" / "command-latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def parts_of(prof: Path) -> dict:
    """Cumulative seconds of the parts of a profiled command (the functions that mark them)."""
    import pstats

    stats = pstats.Stats(str(prof)).stats
    want = {"load model": ("musicgen.py", "_load"), "compose (generate)": ("musicgen.py", "compose"),
            "encode + normalise + tag": ("audio.py", "encode_audio"), "commit files": ("outputs.py", "commit"),
            "listening/manifest": ("api.py", "_finish"), "everything": ("api.py", "compose")}
    out = {}
    for label, (file, func) in want.items():
        total = sum(v[3] for (f, _, name), v in stats.items() if f.endswith(file) and name == func)
        out[label] = round(total, 2)
    return out


if __name__ == "__main__":
    main()
