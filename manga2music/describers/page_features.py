"""Pixel measurements of one page, for the builtin describer.

Everything is measured with numpy/scipy on a copy whose long side is
:data:`WORK_SIDE` pixels, so a page costs a few tens of milliseconds whatever
its size.  All numbers are plain floats/ints (JSON-ready) and rounded, so the
same page always gives the same dictionary.

What is measured (keys of :func:`measure_page`):

``ink``            fraction of dark pixels (luminance < 0.35)
``brightness``     mean luminance, 0 (black) .. 1 (white)
``contrast``       standard deviation of luminance
``is_colour``      True when more than 5 % of pixels carry visible colour
``colourfulness``  mean chroma (max - min of R, G, B), 0 for grayscale
``warmth``         -1 (blue/cyan) .. +1 (red/orange), over the coloured pixels; 0 for grayscale
``edge_density``   fraction of pixels on a strong luminance edge
``line_texture``   fraction of the page covered by dense line work
``coherence``      0..1: how much the dense line work shares one direction (structure
                   tensor, mean over the line work); speed lines score high, scribbles and noise low
``speed_lines``    fraction of the page covered by dense, aligned line work
``global_coherence`` one direction for the whole page (parallel speed lines: high; radial: low)
``panel_count``    panels found as regions cut off from the white gutters
``panel_area``     mean panel size as a fraction of the page
``panel_rectangularity`` mean area / bounding-box area of the panels (slanted panels < 0.95)
``bubble_count``   enclosed white blobs of roughly elliptical shape (speech bubbles)
``bubble_fraction`` their area as a fraction of the page
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

WORK_SIDE = 512  # pixels on the long side of the working copy

INK_LEVEL = 0.35  # luminance below this is ink
GUTTER_LEVEL = 0.85  # luminance above this may be gutter paper
PAPER_LEVEL = 0.95  # luminance above this is white paper (bubble interiors)
EDGE_LEVEL = 0.1  # gradient (luminance per pixel) above this is an edge
COLOUR_CHROMA = 0.12  # chroma above this is a coloured pixel
COLOUR_PAGE = 0.05  # a page is colour when this fraction of pixels is coloured
TENSOR_SIGMA = 2.0  # structure-tensor window (working pixels)
TEXTURE_SIGMA = 6.0  # neighbourhood for "dense line work" (working pixels)
TEXTURE_LEVEL = 0.3  # edge share of a neighbourhood that makes it line texture
MIN_TEXTURE = 0.002  # less line texture than this (page fraction): coherence is 0
ALIGNED_LEVEL = 0.75  # local coherence above this is aligned (speed-line-like)
MIN_PANEL = 0.015  # smallest panel, fraction of the page
BUBBLE_AREA = (0.003, 0.08)  # bubble size limits, fraction of the page
BUBBLE_FILL = (0.6, 0.9)  # area / bounding box after filling holes: an ellipse is ~0.785
BUBBLE_ASPECT = (0.3, 3.5)  # height / width
BUBBLE_ROUNDNESS = 1.15  # most perimeter^2 / (4 pi area) (digital: ellipses ~0.9-1.0, squares ~1.27)

#: the per-page keys that are numbers and get averaged over a section
NUMERIC_KEYS = (
    "ink", "brightness", "contrast", "colourfulness", "edge_density", "line_texture", "coherence",
    "speed_lines", "global_coherence", "panel_count", "panel_area", "panel_rectangularity", "bubble_count", "bubble_fraction",
)
#: the keys whose change across a section is reported as a trend
TREND_KEYS = ("ink", "brightness", "edge_density", "speed_lines", "panel_count", "bubble_fraction")


def working_copy(image: "Image", side: int = WORK_SIDE) -> np.ndarray:
    """The page as float32 RGB in 0..1, shrunk (box filter) so its long side is at most ``side``."""
    from PIL import Image as PILImage

    img = image if image.mode == "RGB" else image.convert("RGB")
    w, h = img.size
    scale = side / max(w, h)
    if scale < 1:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), PILImage.Resampling.BOX)
    return np.asarray(img, dtype=np.float32) / 255.0


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def tone_features(lum: np.ndarray) -> dict:
    return {"ink": float((lum < INK_LEVEL).mean()), "brightness": float(lum.mean()), "contrast": float(lum.std())}


def colour_features(rgb: np.ndarray) -> dict:
    """Whether the page is in colour, how colourful, and how warm its colours are."""
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    coloured = chroma > COLOUR_CHROMA
    fraction = float(coloured.mean())
    is_colour = fraction > COLOUR_PAGE
    warmth = 0.0
    if is_colour:
        weight = chroma[coloured]
        warmth = float(((rgb[..., 0] - rgb[..., 2])[coloured] * weight).sum() / weight.sum())
    return {"is_colour": bool(is_colour), "colourfulness": float(chroma.mean()), "warmth": warmth}


def edge_features(lum: np.ndarray) -> dict:
    """Edge density, and how aligned the line work is where lines are dense (structure tensor).

    Clean outlines are locally straight almost everywhere, so coherence is taken only over
    *line texture*: places where strong edges cover more than :data:`TEXTURE_LEVEL` of the
    neighbourhood (hatching, speed lines, focus lines, noise).  There, aligned lines score
    near 1 and scribbles or noise score low.  A page without line texture has coherence 0.
    """
    gx = ndimage.sobel(lum, axis=1) / 8.0
    gy = ndimage.sobel(lum, axis=0) / 8.0
    edges = np.hypot(gx, gy) > EDGE_LEVEL
    jxx = ndimage.gaussian_filter(gx * gx, TENSOR_SIGMA)
    jyy = ndimage.gaussian_filter(gy * gy, TENSOR_SIGMA)
    jxy = ndimage.gaussian_filter(gx * gy, TENSOR_SIGMA)
    energy = jxx + jyy
    anisotropy = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
    local = anisotropy / np.maximum(energy, 1e-9)  # 0 (no direction) .. 1 (one direction)
    texture = ndimage.gaussian_filter(edges.astype(np.float32), TEXTURE_SIGMA) > TEXTURE_LEVEL
    texture &= energy > 1e-6
    coherence = float(local[texture].mean()) if texture.mean() > MIN_TEXTURE else 0.0
    aligned = texture & (local > ALIGNED_LEVEL)
    sxx, syy, sxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    glob = float(np.sqrt((sxx - syy) ** 2 + 4 * sxy**2) / (sxx + syy)) if sxx + syy > 1e-6 else 0.0
    return {
        "edge_density": float(edges.mean()),
        "line_texture": float(texture.mean()),
        "coherence": coherence,
        "speed_lines": float(aligned.mean()),
        "global_coherence": glob,
    }


def _border_labels(labels: np.ndarray) -> np.ndarray:
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return np.unique(edge[edge > 0])


def panel_features(lum: np.ndarray) -> dict:
    """Panels = regions the white gutter network (bright paper reached from the page edge) cuts apart.

    A page with no gutters (a splash, a blank page, a full-bleed drawing) is one panel.
    """
    labels, _ = ndimage.label(lum > GUTTER_LEVEL)  # 4-connected: thin diagonal lines still close a border
    gutter = np.isin(labels, _border_labels(labels))
    regions, count = ndimage.label(~gutter)
    page = lum.size
    areas, fills = [], []
    if count:
        sizes = np.bincount(regions.ravel(), minlength=count + 1)
        for idx, sl in enumerate(ndimage.find_objects(regions), start=1):
            if sl is None or sizes[idx] < MIN_PANEL * page:
                continue
            box = (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start)
            areas.append(sizes[idx] / page)
            fills.append(sizes[idx] / box)
    if not areas:
        areas, fills = [1.0], [1.0]
    return {"panel_count": len(areas), "panel_area": float(np.mean(areas)), "panel_rectangularity": float(np.mean(fills))}


def bubble_features(lum: np.ndarray) -> dict:
    """Speech-bubble-like blobs: white regions enclosed by a line, not touching the page edge,
    of moderate size and roughly elliptical (filled area / bounding box near pi/4, a smooth,
    compact outline).  Text inside a bubble makes holes; they are filled before measuring."""
    labels, count = ndimage.label(lum > PAPER_LEVEL)
    page = lum.size
    found, area = 0, 0.0
    if count:
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        sizes[_border_labels(labels)] = 0
        lo, hi = BUBBLE_AREA[0] * page, BUBBLE_AREA[1] * page
        candidates = set(np.flatnonzero((sizes >= lo) & (sizes <= hi)).tolist())
        for idx, sl in enumerate(ndimage.find_objects(labels), start=1):
            if idx not in candidates or sl is None:
                continue
            h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            if not BUBBLE_ASPECT[0] <= h / w <= BUBBLE_ASPECT[1]:
                continue
            mask = ndimage.binary_fill_holes(labels[sl] == idx)
            filled = int(mask.sum())
            perimeter = int((mask & ~ndimage.binary_erosion(mask, border_value=0)).sum())
            roundness = perimeter**2 / (4 * np.pi * filled)
            if BUBBLE_FILL[0] <= filled / (h * w) <= BUBBLE_FILL[1] and filled <= hi and roundness <= BUBBLE_ROUNDNESS:
                found += 1
                area += filled / page
    return {"bubble_count": found, "bubble_fraction": float(area)}


def measure_page(image: "Image") -> dict:
    """All measurements of one page (see the module docstring), rounded to 4 decimals."""
    rgb = working_copy(image)
    lum = luminance(rgb)
    out = {"width": image.size[0], "height": image.size[1]}
    for part in (tone_features(lum), colour_features(rgb), edge_features(lum), panel_features(lum), bubble_features(lum)):
        out.update(part)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def trend(values: list[float]) -> float:
    """Change from the first to the last page of a least-squares line (0 for one page)."""
    if len(values) < 2:
        return 0.0
    t = np.linspace(0.0, 1.0, len(values))
    v = np.asarray(values, dtype=np.float64)
    return float(((t - t.mean()) * (v - v.mean())).sum() / ((t - t.mean()) ** 2).sum())


def aggregate(pages: list[dict]) -> dict:
    """Section numbers: the mean of each measurement, the share of colour pages, the warmth of
    the colour pages (0 when there are none), and trends (change from first to last page)."""
    mean = {k: round(float(np.mean([p[k] for p in pages])), 4) for k in NUMERIC_KEYS}
    colour = [p for p in pages if p["is_colour"]]
    mean["colour_pages"] = round(len(colour) / len(pages), 4)
    mean["warmth"] = round(float(np.mean([p["warmth"] for p in colour])), 4) if colour else 0.0
    trends = {k: round(trend([float(p[k]) for p in pages]), 4) for k in TREND_KEYS}
    return {"pages": len(pages), "mean": mean, "trend": trends}
