"""Memory and time of whole `manga2music run` commands on big sections (issue #16), builtin models.

    python benchmarks/memory_bench.py                 # 50, 200 and 500 A4 pages; 6 pages as PDF vs as images;
                                                      # one 30-minute builtin track (`compose --duration 1800`)
    python benchmarks/memory_bench.py --pages 25 100  # other sizes

Each case runs the real command in its own process and reports its peak anonymous
memory (``RssAnon`` polled from /proc every 20 ms: what the machine must really have;
file pages mapped while reading are not counted) and its peak RSS (``ru_maxrss``),
with the wall time.  Pages are synthetic A4 scans (1654 x 2339 JPEG, ink strokes,
panels and text-like marks), made once and kept in ``benchmarks/.cache``.
Results go to stdout as a table and to ``benchmarks/results/memory-latest.json``.
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
CACHE = HERE / ".cache" / "a4-pages"
A4 = (1654, 2339)


def make_page(i: int, path: Path) -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(i)
    img = Image.new("L", A4, 245)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 7))):  # panels
        x0, y0 = rng.integers(40, A4[0] // 2), rng.integers(40, A4[1] // 2)
        draw.rectangle([x0, y0, x0 + int(rng.integers(400, 800)), y0 + int(rng.integers(400, 900))], outline=0, width=6)
    for _ in range(400):  # ink strokes
        x, y = rng.integers(0, A4[0]), rng.integers(0, A4[1])
        draw.line([x, y, x + int(rng.integers(-120, 120)), y + int(rng.integers(-120, 120))], fill=int(rng.integers(0, 90)),
                  width=int(rng.integers(1, 5)))
    for _ in range(30):  # text-like marks
        x, y = rng.integers(60, A4[0] - 300), rng.integers(60, A4[1] - 60)
        for k in range(8):
            draw.rectangle([x + k * 28, y, x + k * 28 + 18, y + 22], fill=20)
    img.convert("RGB").save(path, quality=88)


def pages(n: int) -> list[Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = CACHE / f"{i:04d}.jpg"
        if not p.exists():
            make_page(i, p)
        out.append(p)
    return out


def section(tmp: Path, n: int) -> Path:
    folder = tmp / f"vol{n}"
    folder.mkdir()
    for p in pages(n):
        (folder / p.name).symlink_to(p)
    return folder


def pdf_of(tmp: Path, n: int) -> Path:
    from PIL import Image

    target = tmp / f"pdf{n}" / f"book{n}.pdf"
    target.parent.mkdir()
    images = [Image.open(p).convert("RGB") for p in pages(n)]
    images[0].save(target, save_all=True, append_images=images[1:], resolution=200)
    return target


def run_measured(args: list[str]) -> dict:
    """Run the command; poll its RssAnon; return peak anon MB, peak RSS MB (ru_maxrss), wall s, exit code."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "manga2music", *args], stdout=subprocess.DEVNULL, stderr=err,
                                text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        peak_anon, done = [0], threading.Event()

        def poll() -> None:
            status = Path(f"/proc/{proc.pid}/status")
            while not done.is_set():
                try:
                    for line in status.read_text().splitlines():
                        if line.startswith("RssAnon:"):
                            peak_anon[0] = max(peak_anon[0], int(line.split()[1]))
                except OSError:
                    pass
                time.sleep(0.02)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)  # this process's own rusage, not the largest child's so far
        wall = time.perf_counter() - start
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read()[-300:]
    return {"exit": proc.returncode, "wall_s": round(wall, 2), "peak_anon_mb": round(peak_anon[0] / 1024, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "stderr": tail}


def main() -> None:
    os.environ["MANGA2MUSIC_READING_CACHE"] = "off"  # every page read, as timed: no reading kept from a run before
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, nargs="*", default=[50, 200, 500])
    parser.add_argument("--pdf-pages", type=int, default=6)
    parser.add_argument("--track-minutes", type=float, default=30.0, help="one builtin track this long (the most)")
    args = parser.parse_args()
    rows = []
    common = ["--vision-model", "builtin", "--music-model", "builtin", "--duration", "2", "--seed", "1"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for n in args.pages:
            folder = section(tmp, n)
            r = run_measured(["run", str(folder), "-o", str(tmp / f"out{n}"), *common])
            rows.append({"case": f"{n} A4 JPEG pages, one section", **r})
            print(rows[-1], flush=True)
        n = args.pdf_pages
        imgs = section(tmp, n)
        pdf = pdf_of(tmp, n)
        for label, target in (("images", imgs), ("pdf", pdf)):
            times = []
            for k in range(3):  # alternate fresh output folders; the best of 3 (this machine is shared)
                r = run_measured(["run", str(target), "-o", str(tmp / f"o-{label}-{k}"), *common])
                times.append(r["wall_s"])
            rows.append({"case": f"{n} pages as {label}", **r, "wall_s": min(times), "walls_s": times})
            print(rows[-1], flush=True)
        minutes = args.track_minutes  # the builtin composer's whole chain on one long track: render, reverb, master,
        # loudness, limiter, encoding (each was a few copies of the whole track)
        r = run_measured(["compose", "--text", "Gentle slice-of-life acoustic piece with soft piano, 70 BPM in C major",
                          "--model", "builtin", "--duration", str(minutes * 60), "--seed", "1", "-o", str(tmp / "long")])
        rows.append({"case": f"one {minutes:g}-minute builtin track (compose)", **r})
        print(rows[-1], flush=True)
    img_s = next(r["wall_s"] for r in rows if r["case"].endswith("as images"))
    pdf_s = next(r["wall_s"] for r in rows if r["case"].endswith("as pdf"))
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
              "at": time.strftime("%Y-%m-%d %H:%M"), "rows": rows, "pdf_vs_images": round(pdf_s / img_s, 2)}
    out = HERE / "results" / "memory-latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| case | peak anon MB | peak RSS MB | wall s |\n| --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['case']} | {r['peak_anon_mb']} | {r['peak_rss_mb']} | {r['wall_s']} |")
    print(f"\nPDF vs images, wall time: {result['pdf_vs_images']}x (same pages, same run)")


if __name__ == "__main__":
    main()
