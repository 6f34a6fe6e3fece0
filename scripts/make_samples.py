"""Draw the sample pages in ``samples/`` (run from the repository root).

    python scripts/make_samples.py [--out samples]

Everything is drawn here from shapes (Pillow + numpy, fixed seeds, no fonts,
no third-party art), so the samples are ours to ship and the same on every run:

- ``samples/calm/``    3 light slice-of-life pages: white gutters, a few large
  panels, soft tones, a horizon, houses, trees and rounded speech bubbles with
  scribbled "text".  Grayscale; ``003`` is a JPEG to exercise that format.
- ``samples/action/``  3 dark, dense pages: many small slanted panels, heavy
  black fills, radial and parallel speed lines, impact bursts, no bubbles.
  Palette PNGs (the pipeline must convert them to RGB).
- ``samples/webtoon/`` one tall warm-coloured strip (720 x 6000) with four
  scenes stacked vertically, to exercise the tiling of tall strips.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

W, H = 640, 900  # calm and action pages
WEBTOON_W, WEBTOON_H = 720, 6000


# --------------------------------------------------------------------------- shared shapes
def scribble_text(draw: ImageDraw.ImageDraw, box, rng, ink=30, vertical=True) -> None:
    """A few short zigzag strokes standing in for hand lettering inside ``box``."""
    x0, y0, x1, y1 = box
    if vertical:  # columns, read right to left like Japanese lettering
        n = max(1, int((x1 - x0) // 14))
        for i in range(n):
            x = x1 - 7 - i * 14
            length = (y1 - y0) * rng.uniform(0.5, 1.0)
            pts = [(x + (3 if k % 2 else -3) + rng.uniform(-1, 1), y0 + k * 4.0) for k in range(int(length // 4))]
            if len(pts) > 1:
                draw.line(pts, fill=ink, width=1)
    else:
        n = max(1, int((y1 - y0) // 12))
        for i in range(n):
            y = y0 + 6 + i * 12
            length = (x1 - x0) * rng.uniform(0.5, 1.0)
            pts = [(x0 + k * 4.0, y + (3 if k % 2 else -3) + rng.uniform(-1, 1)) for k in range(int(length // 4))]
            if len(pts) > 1:
                draw.line(pts, fill=ink, width=1)


def speech_bubble(draw, cx, cy, rx, ry, tail, rng, *, paper=255, ink=0, width=2) -> None:
    """A white ellipse with a thin outline, a pointed tail towards ``tail`` and scribbles inside."""
    base = [(cx - rx * 0.22, cy + ry * 0.55), (cx + rx * 0.12, cy + ry * 0.55)]
    if tail[1] < cy:  # tail points up
        base = [(cx - rx * 0.22, cy - ry * 0.55), (cx + rx * 0.12, cy - ry * 0.55)]
    tri = [base[0], base[1], tail]
    # outline of the union: the shapes in ink, grown by ``width``, then the shapes in paper
    draw.ellipse([cx - rx - width, cy - ry - width, cx + rx + width, cy + ry + width], fill=ink)
    draw.polygon(tri, fill=ink)
    draw.line(tri + [tri[0]], fill=ink, width=2 * width, joint="curve")
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=paper)
    draw.polygon(tri, fill=paper)
    box = (cx - rx * 0.55, cy - ry * 0.6, cx + rx * 0.55, cy + ry * 0.6)
    scribble_text(draw, box, rng, vertical=ry > rx)


def house(draw, x, ground, w, h, *, wall=250, roof=200, ink=70) -> None:
    draw.rectangle([x, ground - h, x + w, ground], fill=wall, outline=ink, width=2)
    draw.polygon([(x - 8, ground - h), (x + w / 2, ground - h - h * 0.6), (x + w + 8, ground - h)], fill=roof, outline=ink)
    draw.rectangle([x + w * 0.2, ground - h * 0.6, x + w * 0.4, ground - h * 0.3], fill=235, outline=ink)
    draw.rectangle([x + w * 0.6, ground - h * 0.55, x + w * 0.8, ground], fill=215, outline=ink)


def tree(draw, x, ground, size, *, leaf=215, trunk=170, ink=90) -> None:
    draw.rectangle([x - size * 0.08, ground - size, x + size * 0.08, ground], fill=trunk, outline=ink)
    for dx, dy, r in ((0, -1.25, 0.45), (-0.3, -1.0, 0.35), (0.3, -1.0, 0.35)):
        cx, cy, rr = x + dx * size, ground + dy * size, r * size
        draw.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=leaf, outline=ink, width=1)


def person(draw, x, ground, size, *, skin=250, hair=110, cloth=225, ink=40) -> None:
    """A soft, rounded figure: body, head and hair."""
    draw.rounded_rectangle([x - size * 0.3, ground - size, x + size * 0.3, ground], radius=size * 0.2, fill=cloth, outline=ink, width=2)
    r = size * 0.28
    cy = ground - size - r * 0.9
    draw.ellipse([x - r, cy - r, x + r, cy + r], fill=skin, outline=ink, width=2)
    draw.chord([x - r, cy - r, x + r, cy + r * 0.6], 180, 360, fill=hair, outline=ink)
    draw.line([(x - r * 0.35, cy + r * 0.1), (x - r * 0.15, cy + r * 0.1)], fill=ink, width=2)
    draw.line([(x + r * 0.15, cy + r * 0.1), (x + r * 0.35, cy + r * 0.1)], fill=ink, width=2)


# --------------------------------------------------------------------------- calm pages
def calm_panel(img: Image.Image, box, rng, scene: str, bubbles: int) -> None:
    """One gentle panel: light tones, a horizon, houses/trees/people and speech bubbles."""
    layer = Image.new("L", img.size, 255)  # drawn apart, then pasted: nothing spills into the gutters
    d = ImageDraw.Draw(layer)
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    horizon = y0 + h * rng.uniform(0.55, 0.7)
    d.rectangle([x0, y0, x1, horizon], fill=240)  # sky, a light tone
    d.rectangle([x0, horizon, x1, y1], fill=226)  # ground
    d.line([(x0, horizon), (x1, horizon)], fill=120, width=1)
    cloud_y = y0 + h * 0.15
    for k in range(int(rng.integers(1, 3))):
        cx = x0 + w * rng.uniform(0.2, 0.8)
        d.ellipse([cx - 30, cloud_y - 9 + 12 * k, cx + 30, cloud_y + 9 + 12 * k], fill=252, outline=190)
    if scene in ("town", "wide"):
        for k in range(int(rng.integers(1, 3))):
            house(d, x0 + w * (0.1 + 0.35 * k) + rng.uniform(0, 20), horizon + 4, w * 0.18, h * 0.22)
        tree(d, x0 + w * rng.uniform(0.75, 0.9), horizon + 4, h * 0.3)
    if scene in ("people", "wide"):
        n = 2 if w > 250 else 1
        for k in range(n):
            person(d, x0 + w * (0.3 + 0.4 * k), y1 - 6, h * 0.25)
    if scene == "tree":
        tree(d, x0 + w * 0.5, horizon + 6, h * 0.32)
    # bubbles in the sky, tails pointing down to the scene
    for k in range(bubbles):
        rx = min(w * 0.17, 62) * rng.uniform(0.85, 1.1)
        ry = min(h * 0.22, 62) * rng.uniform(0.85, 1.0)
        cx = x0 + w * (k + 0.5) / bubbles + rng.uniform(-8, 8)
        cx = min(max(cx, x0 + rx + 8), x1 - rx - 8)
        cy = y0 + ry + 10
        speech_bubble(d, cx, cy, rx, ry, (cx + rng.uniform(-15, 15), cy + ry * 1.35), rng)
    img.paste(layer.crop(box), box[:2])
    ImageDraw.Draw(img).rectangle(box, outline=0, width=3)


CALM_LAYOUTS = {  # (box in page fractions, scene, bubbles)
    1: [((0, 0, 1, 0.36), "wide", 2), ((0, 0.36, 0.5, 0.68), "people", 1),
        ((0.5, 0.36, 1, 0.68), "tree", 1), ((0, 0.68, 1, 1), "people", 2)],
    2: [((0, 0, 1, 0.5), "town", 2), ((0, 0.5, 1, 1), "people", 3)],
    3: [((0, 0, 0.55, 0.45), "people", 2), ((0.55, 0, 1, 0.45), "tree", 1), ((0, 0.45, 1, 1), "wide", 2)],
}


def calm_page(n: int) -> Image.Image:
    rng = np.random.default_rng(100 + n)
    img = Image.new("L", (W, H), 255)
    margin, gutter = 34, 16
    iw, ih = W - 2 * margin, H - 2 * margin
    for (fx0, fy0, fx1, fy1), scene, bubbles in CALM_LAYOUTS[n]:
        box = (margin + fx0 * iw + (gutter / 2 if fx0 > 0 else 0), margin + fy0 * ih + (gutter / 2 if fy0 > 0 else 0),
               margin + fx1 * iw - (gutter / 2 if fx1 < 1 else 0), margin + fy1 * ih - (gutter / 2 if fy1 < 1 else 0))
        calm_panel(img, tuple(int(v) for v in box), rng, scene, bubbles)
    return img


# --------------------------------------------------------------------------- action pages
def _cross(a: float, b: float, c: float, d: float) -> tuple[float, float]:
    """Where the row edge y = a + b*x meets the column edge x = c + d*y."""
    x = (c + d * a) / (1 - d * b)
    return x, a + b * x


def slanted_layout(rng, margin=14, gutter=10) -> list[list[tuple[float, float]]]:
    """Quadrilateral panels: rows split by slanted lines, each row split by slanted columns."""
    rows = int(rng.integers(3, 5))
    ys = np.linspace(margin, H - margin, rows + 1)
    slopes = [0.0] + [rng.uniform(-0.12, 0.12) for _ in range(rows - 1)] + [0.0]
    cells = []
    for r in range(rows):
        a_top = ys[r] - slopes[r] * W / 2 + (gutter / 2 if r > 0 else 0)
        a_bot = ys[r + 1] - slopes[r + 1] * W / 2 - (gutter / 2 if r < rows - 1 else 0)
        cols = int(rng.integers(2, 4))
        xs = np.linspace(margin, W - margin, cols + 1)
        cslopes = [0.0] + [rng.uniform(-0.25, 0.25) for _ in range(cols - 1)] + [0.0]
        ymid = (ys[r] + ys[r + 1]) / 2
        for c in range(cols):
            c_left = xs[c] - cslopes[c] * ymid + (gutter / 2 if c > 0 else 0)
            c_right = xs[c + 1] - cslopes[c + 1] * ymid - (gutter / 2 if c < cols - 1 else 0)
            cells.append([
                _cross(a_top, slopes[r], c_left, cslopes[c]), _cross(a_top, slopes[r], c_right, cslopes[c + 1]),
                _cross(a_bot, slopes[r + 1], c_right, cslopes[c + 1]), _cross(a_bot, slopes[r + 1], c_left, cslopes[c]),
            ])
    return cells


def radial_lines(d, cx, cy, rng, *, inner, n=140, ink=0) -> None:
    """Focus lines: thin black wedges converging on (cx, cy), leaving a clear centre."""
    outer = math.hypot(W, H)
    for _ in range(n):
        ang = rng.uniform(0, 2 * math.pi)
        spread = rng.uniform(0.004, 0.018)
        r0 = inner * rng.uniform(1.0, 1.6)
        tip = (cx + r0 * math.cos(ang), cy + r0 * math.sin(ang))
        d.polygon([tip, (cx + outer * math.cos(ang - spread), cy + outer * math.sin(ang - spread)),
                   (cx + outer * math.cos(ang + spread), cy + outer * math.sin(ang + spread))], fill=ink)


def parallel_lines(d, box, angle, rng, *, ink=0) -> None:
    """Speed lines: many straight strokes in one direction, of varying weight and length."""
    x0, y0, x1, y1 = box
    ux, uy = math.cos(angle), math.sin(angle)
    nx, ny = -uy, ux
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    reach = math.hypot(x1 - x0, y1 - y0)
    off = -reach / 2
    while off < reach / 2:
        length = reach * rng.uniform(0.5, 1.2)
        start = rng.uniform(-reach / 2, reach / 2 - length / 2)
        px, py = cx + nx * off, cy + ny * off
        d.line([(px + ux * start, py + uy * start), (px + ux * (start + length), py + uy * (start + length))],
               fill=ink, width=int(rng.integers(1, 5)))
        off += rng.uniform(5, 11)


def burst(d, cx, cy, r, rng, *, spikes=16, fill=255, ink=0) -> None:
    """An impact burst: a jagged star with a black core."""
    pts = []
    for k in range(spikes * 2):
        ang = k * math.pi / spikes + rng.uniform(-0.05, 0.05)
        rr = r * (rng.uniform(0.9, 1.2) if k % 2 == 0 else rng.uniform(0.45, 0.6))
        pts.append((cx + rr * math.cos(ang), cy + rr * math.sin(ang)))
    d.polygon(pts, fill=fill, outline=ink)
    d.line(pts + [pts[0]], fill=ink, width=3)
    core = [(cx + (x - cx) * 0.45, cy + (y - cy) * 0.45) for x, y in pts]
    d.polygon(core, fill=ink)


def silhouette(d, cx, cy, s, angle, *, ink=0) -> None:
    """A black figure lunging along ``angle``: torso, head, limbs."""
    ux, uy = math.cos(angle), math.sin(angle)
    head = (cx + ux * s * 0.9, cy + uy * s * 0.9)
    d.ellipse([head[0] - s * 0.25, head[1] - s * 0.25, head[0] + s * 0.25, head[1] + s * 0.25], fill=ink)
    d.line([(cx - ux * s * 0.6, cy - uy * s * 0.6), (cx + ux * s * 0.6, cy + uy * s * 0.6)], fill=ink, width=int(s * 0.45))
    for sign in (-1, 1):
        d.line([(cx + ux * s * 0.4, cy + uy * s * 0.4), (cx + ux * s * 1.3 + sign * uy * s * 0.5, cy + uy * s * 1.3 - sign * ux * s * 0.5)],
               fill=ink, width=int(s * 0.18))
        d.line([(cx - ux * s * 0.5, cy - uy * s * 0.5), (cx - ux * s * 1.4 + sign * uy * s * 0.6, cy - uy * s * 1.4 - sign * ux * s * 0.6)],
               fill=ink, width=int(s * 0.22))


def action_panel(page: Image.Image, quad, rng, kind: str) -> None:
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    box = (min(xs), min(ys), max(xs), max(ys))
    cx, cy = (box[0] + box[2]) / 2 + rng.uniform(-15, 15), (box[1] + box[3]) / 2 + rng.uniform(-10, 10)
    size = min(box[2] - box[0], box[3] - box[1])
    layer = Image.new("L", page.size, 255)
    d = ImageDraw.Draw(layer)
    angle = rng.uniform(-0.5, 0.5) + (math.pi if rng.random() < 0.5 else 0)
    if kind == "radial":
        d.rectangle(box, fill=70)
        radial_lines(d, cx, cy, rng, inner=size * 0.22)
        silhouette(d, cx, cy, size * 0.2, angle)
    elif kind == "speed":
        parallel_lines(d, box, angle, rng)
        silhouette(d, cx, cy, size * 0.22, angle)
    elif kind == "dark":  # black night with white speed streaks
        d.rectangle(box, fill=0)
        parallel_lines(d, box, angle, rng, ink=255)
        silhouette(d, cx + 10, cy, size * 0.2, angle, ink=25)
    else:  # impact
        d.rectangle(box, fill=0)
        radial_lines(d, cx, cy, rng, inner=size * 0.3, n=90, ink=255)
        burst(d, cx, cy, size * 0.35, rng)
    mask = Image.new("L", page.size, 0)
    ImageDraw.Draw(mask).polygon(quad, fill=255)
    page.paste(layer, (0, 0), mask)
    ImageDraw.Draw(page).line(quad + [quad[0]], fill=0, width=4, joint="curve")


def action_page(n: int) -> Image.Image:
    rng = np.random.default_rng(200 + n)
    img = Image.new("L", (W, H), 255)
    kinds = ["radial", "speed", "dark", "impact"]
    for i, quad in enumerate(slanted_layout(rng)):
        action_panel(img, quad, rng, kinds[(i + n) % len(kinds)])
    return img.convert("P")  # a palette PNG: the pipeline has to convert it to RGB


# --------------------------------------------------------------------------- webtoon strip
def vertical_gradient(d, box, top, bottom) -> None:
    x0, y0, x1, y1 = box
    for y in range(int(y0), int(y1)):
        t = (y - y0) / max(1, y1 - y0)
        d.line([(x0, y), (x1, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))


def webtoon_strip() -> Image.Image:
    rng = np.random.default_rng(300)
    img = Image.new("RGB", (WEBTOON_W, WEBTOON_H), (255, 255, 255))
    d = ImageDraw.Draw(img)
    x0, x1 = 0, WEBTOON_W
    # 1. sunset over the sea, two silhouettes
    y0, y1 = 120, 1420
    vertical_gradient(d, (x0, y0, x1, y0 + 900), (255, 176, 92), (246, 112, 96))
    d.ellipse([260, 620, 460, 820], fill=(255, 222, 120))
    vertical_gradient(d, (x0, y0 + 900, x1, y1), (170, 70, 80), (90, 40, 60))
    for k, px in enumerate((300, 420)):
        d.ellipse([px - 22, 1040, px + 22, 1084], fill=(60, 25, 30))
        d.rounded_rectangle([px - 30, 1084, px + 30, 1240], radius=18, fill=(60, 25, 30))
    speech_bubble(d, 220, 300, 95, 80, (290, 430), rng, paper=(255, 255, 255), ink=(40, 20, 20))
    speech_bubble(d, 520, 360, 90, 75, (430, 480), rng, paper=(255, 255, 255), ink=(40, 20, 20))
    # 2. a warm café: lamps, a window, a table with two cups
    y0, y1 = 1560, 2860
    d.rectangle([x0, y0, x1, y1], fill=(214, 140, 92))
    d.rectangle([80, y0 + 120, 640, y0 + 620], fill=(255, 196, 120), outline=(110, 60, 40), width=8)
    d.line([(360, y0 + 120), (360, y0 + 620)], fill=(110, 60, 40), width=8)
    for lx in (180, 540):
        d.line([(lx, y0), (lx, y0 + 60)], fill=(90, 50, 30), width=3)
        d.ellipse([lx - 45, y0 + 60, lx + 45, y0 + 150], fill=(255, 230, 150))
    d.rectangle([60, y0 + 900, 660, y0 + 960], fill=(130, 70, 40))
    for cx in (250, 470):
        d.rounded_rectangle([cx - 35, y0 + 830, cx + 35, y0 + 900], radius=10, fill=(250, 240, 225), outline=(90, 50, 30), width=3)
    speech_bubble(d, 200, y0 + 760, 100, 70, (250, y0 + 880), rng, paper=(255, 255, 255), ink=(60, 30, 20))
    speech_bubble(d, 530, y0 + 740, 100, 72, (470, y0 + 880), rng, paper=(255, 255, 255), ink=(60, 30, 20))
    # 3. close-up in pink with falling petals
    y0, y1 = 3000, 4300
    vertical_gradient(d, (x0, y0, x1, y1), (255, 196, 200), (250, 150, 150))
    for _ in range(60):
        px, py, r = rng.uniform(0, WEBTOON_W), rng.uniform(y0, y1), rng.uniform(6, 14)
        d.ellipse([px - r, py - r * 0.6, px + r, py + r * 0.6], fill=(255, 120, 140))
    d.ellipse([210, y0 + 300, 510, y0 + 660], fill=(255, 228, 205), outline=(120, 60, 50), width=4)
    d.chord([200, y0 + 280, 520, y0 + 560], 180, 360, fill=(150, 70, 40))
    for ex in (300, 420):
        d.arc([ex - 25, y0 + 470, ex + 25, y0 + 510], 200, 340, fill=(90, 40, 30), width=4)
    d.ellipse([260, y0 + 530, 290, y0 + 550], fill=(255, 160, 150))
    d.ellipse([430, y0 + 530, 460, y0 + 550], fill=(255, 160, 150))
    speech_bubble(d, 360, y0 + 900, 140, 90, (360, y0 + 700), rng, paper=(255, 255, 255), ink=(90, 40, 40))
    # 4. an evening street with red lanterns
    y0, y1 = 4440, 5880
    vertical_gradient(d, (x0, y0, x1, y0 + 700), (250, 150, 80), (180, 80, 70))
    d.rectangle([x0, y0 + 700, x1, y1], fill=(120, 60, 45))
    for bx, bw, bh in ((20, 180, 520), (220, 150, 420), (390, 160, 560), (570, 140, 460)):
        d.rectangle([bx, y0 + 700 - bh + 300, bx + bw, y0 + 1100], fill=(150, 80, 55), outline=(70, 35, 25), width=3)
        for wy in range(int(y0 + 700 - bh + 340), y0 + 1050, 90):
            d.rectangle([bx + 25, wy, bx + bw - 25, wy + 45], fill=(255, 210, 120))
    d.line([(0, y0 + 560), (WEBTOON_W, y0 + 520)], fill=(60, 30, 20), width=3)
    for k in range(7):
        lx = 50 + k * 100
        ly = y0 + 560 - k * 40 / 7 + 30
        d.ellipse([lx - 24, ly - 30, lx + 24, ly + 30], fill=(220, 50, 40), outline=(90, 20, 20), width=2)
    speech_bubble(d, 360, y0 + 1250, 130, 80, (300, y0 + 1120), rng, paper=(255, 255, 255), ink=(60, 30, 20))
    return img


# --------------------------------------------------------------------------- main
def main(out: Path) -> None:
    for folder in ("calm", "action", "webtoon"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    calm_page(1).save(out / "calm" / "001.png", optimize=True)
    calm_page(2).save(out / "calm" / "002.png", optimize=True)
    calm_page(3).save(out / "calm" / "003.jpg", quality=85)
    for n in (1, 2, 3):
        action_page(n).save(out / "action" / f"{n:03d}.png", optimize=True)
    webtoon_strip().save(out / "webtoon" / "001.png", optimize=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("samples"), help="folder to write into (default: samples)")
    main(parser.parse_args().out)
