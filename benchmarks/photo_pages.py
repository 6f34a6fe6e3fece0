"""Phone photos of real pages: does the builtin describer hear the page, or the table it lies on?

Every page of a folder of pages (default: the labelled set, tests/data/pages, Pepper&Carrot under CC BY 4.0) is
"photographed" by a simulated phone camera (:func:`photographed`: the sheet on a table of one of four colours, in
perspective, a shadow across it, a little blur, JPEG) and described three times, one page at a time: the scan, the
photo read as it is (the sheet finder switched off: how every version before reading-17 read it), and the photo
as the describer reads it now (``describers/page_photo.py``).  Prints, per page and in total, whether the photo's
mood is the scan's and how far its tempo is.

    python benchmarks/photo_pages.py                 # the labelled set (32 pages, about 40 s on 2 cores)
    python benchmarks/photo_pages.py DIR [DIR ...]   # your own pages (.jpg/.png/.webp, searched recursively)
    python benchmarks/photo_pages.py --json

The camera is seeded by the page's position, so the same folder always gets the same photos.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

PAGES = Path(__file__).resolve().parent.parent / "tests" / "data" / "pages"
TABLES = ((60, 55, 50), (120, 85, 55), (30, 30, 35), (90, 100, 110))  # grey, wood, black, slate
TILT = (0.03, -0.02, 0.025, 0.035)


def sheet_corners(size: tuple[int, int], tilt=TILT, border: float = 0.08) -> np.ndarray:
    """Where :func:`photographed` puts the page's corners (top-left, top-right, bottom-right, bottom-left): in a
    ``border`` of table (a fraction of the page's sides), each moved by ``tilt`` (fractions of the page's sides)."""
    w, h = size
    a, b, c, d = tilt
    near, far = border, 1 + border
    return np.float32([[near * w + a * w, near * h + b * h], [far * w + c * w, near * h - d * h],
                       [far * w - a * w, far * h + b * h], [near * w - c * w, far * h - d * h]])


def photographed(page, *, table=TABLES[0], shadow: float = 0.25, tilt=TILT, blur: float = 0.7, quality: int = 85,
                 border: float = 0.08):
    """``page`` (a PIL image) as a phone photographs it: on a ``table``-coloured background, in perspective
    (:func:`sheet_corners`, in a ``border`` of table), a shadow darkening it by up to ``shadow`` from the top-left
    to the bottom-right, blurred, saved as JPEG.  Returns an RGB PIL image."""
    import cv2
    from PIL import Image, ImageFilter

    rgb = np.asarray(page.convert("RGB"), dtype=np.float32)
    h, w = rgb.shape[:2]
    out_w, out_h = round(w * (1 + 2 * border)), round(h * (1 + 2 * border))
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    corners = sheet_corners((w, h), tilt, border)
    photo = cv2.warpPerspective(rgb, cv2.getPerspectiveTransform(src, corners), (out_w, out_h),
                                borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in table))
    y, x = np.mgrid[0:out_h, 0:out_w]
    photo *= (1.0 - shadow * (x / out_w + y / out_h) / 2)[..., None]
    image = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def camera(index: int) -> dict:
    """The settings of the ``index``-th photo: the table colour and the tilt turn with it."""
    rng = np.random.default_rng(index)
    return {"table": TABLES[index % len(TABLES)], "tilt": tuple(float(v) for v in rng.uniform(-0.035, 0.035, 4)),
            "shadow": float(rng.uniform(0.15, 0.35))}


def heard(image) -> tuple[str, int, bool]:
    """(mood, tempo, cut out) of one page as the builtin describer hears it alone."""
    from manga2music.describers.base import PageImage
    from manga2music.describers.builtin import BuiltinDescriber

    features = BuiltinDescriber().describe([PageImage("page.jpg", image, "JPEG")]).features
    return features["mood"], int(features["tempo_bpm"]), bool(features["readings"][0].get("cut_out", False))


def evaluate(paths: list[Path]) -> dict:
    import manga2music.describers.page_photo as page_photo
    from manga2music import reading_cache
    from manga2music.pages import _shrink, to_rgb
    from PIL import Image

    finder = page_photo.as_scanned
    rows = []
    for index, path in enumerate(paths):
        scan = _shrink(to_rgb(Image.open(path)), 1280)
        photo = _shrink(photographed(scan, **camera(index)), 1280)
        page_photo.as_scanned = lambda image: None
        try:
            with reading_cache.paused():  # not the reader's own readings: none looked up, none kept
                as_taken = heard(photo)
        finally:
            page_photo.as_scanned = finder
        now = heard(photo)
        rows.append({"page": str(path), "scan": heard(scan)[:2], "photo_as_taken": as_taken[:2], "photo": now[:2],
                     "cut_out": now[2]})

    def agree(key: str) -> dict:
        return {"same_mood": sum(r[key][0] == r["scan"][0] for r in rows),
                "within_15_bpm": sum(abs(r[key][1] - r["scan"][1]) <= 15 for r in rows),
                "median_bpm_gap": float(np.median([abs(r[key][1] - r["scan"][1]) for r in rows])) if rows else 0.0}
    return {"pages": len(rows), "cut_out": sum(r["cut_out"] for r in rows), "as_taken": agree("photo_as_taken"),
            "now": agree("photo"), "rows": rows}


def find_pages(roots: list[Path]) -> list[Path]:
    suffixes = {".jpg", ".jpeg", ".png", ".webp"}
    found = []
    for root in roots:
        found += sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="folders of pages (default: the labelled set)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    roots = args.folders or [PAGES]
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        sys.exit(f"photo_pages: not a folder: {', '.join(missing)}")
    paths = find_pages(roots)
    if not paths:
        sys.exit(f"photo_pages: no .jpg/.png/.webp pages in {', '.join(map(str, roots))}")
    result = evaluate(paths)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for r in result["rows"]:
        print(f"{Path(r['page']).name:28s} scan {r['scan'][0]:7s} {r['scan'][1]:3d} | photo as taken "
              f"{r['photo_as_taken'][0]:7s} {r['photo_as_taken'][1]:3d} | photo now {r['photo'][0]:7s} "
              f"{r['photo'][1]:3d}{'' if r['cut_out'] else '  (no sheet found)'}")
    n = result["pages"]
    for key, words in (("as_taken", "read as taken"), ("now", "read now")):
        a = result[key]
        print(f"{words}: same mood as the scan {a['same_mood']}/{n}, within 15 BPM {a['within_15_bpm']}/{n}, "
              f"median tempo gap {a['median_bpm_gap']:g} BPM")
    print(f"sheet found and cut out: {result['cut_out']}/{n}")


if __name__ == "__main__":
    main()
