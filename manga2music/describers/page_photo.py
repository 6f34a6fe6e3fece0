"""A photographed page: the sheet found on the table, cut out straight, and its light evened, before it is read.

A phone photo of a book's page shows the sheet on a darker background (a table, a
lap, a scanner's open lid), a little tilted and in perspective, and lit unevenly.
Read as it is, the background is taken for solid black, no gutter reaches the
image's edge so the panels run together into one, and the shadow darkens the mood:
on 29 pages of the development sets photographed this way (a synthetic camera:
background, perspective, a 25 % shadow, blur, JPEG) brightness was 0.19 off and
the panel count 2.7 off.  This module finds the sheet and gives the reader a
straight, evenly lit page instead.

1. **The background** is what a flood from the image's edge reaches without the
   colour moving more than :data:`BACKGROUND_TOLERANCE` from where each flood
   started (a fixed range, so the flood cannot creep up the soft edge of the sheet).
2. **The sheet** is the largest region left, as a quadrilateral (its convex hull
   simplified to 4 corners, overlooking bumps of up to :data:`SIMPLIFY` of its
   perimeter: patches of a grainy table that no flood reached), covering
   :data:`SHEET_AREA` of the image, and it is taken only when the image looks like
   a photo of a sheet, not a page of art:

   - what lies outside the sheet is background (:data:`OUTSIDE_BACKGROUND` of it):
     on a page with black gutters, other panels lie outside any one panel;
   - just inside the sheet's edge runs the page's own paper margin, at least
     :data:`PAPER_STEP` brighter than the background (:data:`MARGIN_PAPER` of the ring).

   A scan, whose paper reaches the image's edge, is passed over at once (the edge
   band is paper-bright: :data:`SCAN_EDGE`).
3. **Straightened**: the quadrilateral is warped to a rectangle of the sheet's own
   side lengths (OpenCV's perspective transform) at the image's resolution.
4. **Light evened**: a smooth surface (a least-squares quadratic in x and y) is fitted
   to the paper's brightness (the 95th percentile of each of 16 x 16 tiles; tiles
   without paper, below the surface by more than :data:`PAPER_DIP`, are left out and
   the fit repeated) and the page is divided by it, unless its darkest point is at
   least :data:`EVEN_ENOUGH` of its brightest.  The same factor divides all three
   channels, so a page and its grayscale copy still read alike.

What is not handled: a photo whose sheet fills the whole frame (nothing to find),
a sheet on a background as bright as paper, a sheet with no paper margin (art to
its edges), curled, crumpled or hand-held pages, open books.  Then the image is read
as it is, as before.  Of 10 real phone photos of printed text pages (from document
dewarping projects), 3 are cut out and the 7 others, all of those kinds, are read
as they are; none is cut wrongly, and none of 539 real scans is cut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from .page_features import luminance

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

WORK_SIDE = 512  # the long side (pixels) at which the sheet is looked for
MIN_SIDE = 400  # a smaller image is no photo of a page
SCAN_EDGE = 0.75  # an image whose edge band is this bright (median luminance) is paper to the edge: a scan
EDGE_BAND = 0.02  # ... that band: this fraction of the long side, round the image
BACKGROUND_TOLERANCE = 24  # 0..255 per channel: how far the background's colour may stray from a flood's start
SHEET_AREA = (0.25, 0.97)  # the sheet covers this share of the image
SHEET_SOLID = 0.9  # ... and fills this much of its own quadrilateral
OUTSIDE_BACKGROUND = 0.85  # this share of what lies outside the sheet must be background
PAPER_STEP = 0.2  # the sheet's margin is this much brighter (luminance 0..1) than the background ...
MARGIN_PAPER = 0.6  # ... over this share of a ring just inside its edge
RING = (2, 9)  # that ring: from this many to this many work pixels inside the edge
TILES = 16  # the paper's brightness is sampled in TILES x TILES tiles ...
PAPER_LEVEL = 0.45  # ... whose 95th percentile is at least this (darker: no paper in the tile)
PAPER_DIP = 0.08  # ... and not this far below the fitted surface
FIT_TILES = 0.3  # with fewer tiles of paper than this share, the light is left as it is
EVEN_ENOUGH = 0.9  # light whose darkest point is at least this share of its brightest is left as it is
FIT_ROUNDS = 4
SIMPLIFY = (0.02, 0.03, 0.04)  # tried in turn until the hull has 4 corners


def _small(rgb: np.ndarray) -> np.ndarray:
    from ..opencv import cv2

    h, w = rgb.shape[:2]
    scale = WORK_SIDE / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _looks_scanned(lum: np.ndarray) -> bool:
    """Paper to the image's edge (the common case: answered before any flood)."""
    h, w = lum.shape
    band = max(2, round(EDGE_BAND * max(h, w)))
    edge = np.concatenate([lum[:band].ravel(), lum[-band:].ravel(), lum[:, :band].ravel(), lum[:, -band:].ravel()])
    return float(np.median(edge)) >= SCAN_EDGE


def _background(rgb: np.ndarray) -> np.ndarray:
    """What a fixed-range flood from every few pixels of the image's edge reaches (bool)."""
    from ..opencv import cv2

    h, w = rgb.shape[:2]
    img = cv2.medianBlur(np.ascontiguousarray(rgb), 5)
    mask = np.zeros((h + 2, w + 2), np.uint8)
    step = max(4, min(h, w) // 48)
    seeds = ([(x, 0) for x in range(0, w, step)] + [(x, h - 1) for x in range(0, w, step)]
             + [(0, y) for y in range(0, h, step)] + [(w - 1, y) for y in range(0, h, step)])
    tolerance = (BACKGROUND_TOLERANCE,) * 3
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    for x, y in seeds:
        if not mask[y + 1, x + 1]:
            cv2.floodFill(img, mask, (x, y), 0, tolerance, tolerance, flags)
    return mask[1:-1, 1:-1] > 0


def _clockwise(quad: np.ndarray) -> np.ndarray:
    """The four points of a convex quadrilateral in order round it (clockwise as seen), from the top-left one."""
    centre = quad.mean(axis=0)
    around = quad[np.argsort(np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0]))]
    return np.roll(around, -int(around.sum(axis=1).argmin()), axis=0).astype(np.float32)


def find_sheet(rgb: np.ndarray) -> Optional[np.ndarray]:
    """The corners (top-left, top-right, bottom-right, bottom-left; float32, in ``rgb``'s pixels) of a sheet of
    paper lying on a darker background in the photo ``rgb`` (uint8 RGB, any size), or None (see the module
    docstring)."""
    from ..opencv import cv2

    if max(rgb.shape[:2]) < MIN_SIDE:
        return None
    small = _small(rgb)
    lum = luminance(small.astype(np.float32) / 255.0)
    if _looks_scanned(lum):
        return None
    h, w = lum.shape
    background = _background(small)
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~background).astype(np.uint8), connectivity=4)
    if count <= 1:
        return None
    sheet = (labels == 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())).astype(np.uint8)
    contours, _ = cv2.findContours(sheet, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    for loose in SIMPLIFY:  # the fewest corners the hull allows, up to a bump of this share of its perimeter
        quad = cv2.approxPolyDP(hull, loose * cv2.arcLength(hull, True), True)
        if len(quad) <= 4:
            break
    if len(quad) != 4 or not cv2.isContourConvex(quad):
        return None
    quad = quad.reshape(4, 2).astype(np.float32)
    area = cv2.contourArea(quad)
    if not SHEET_AREA[0] * h * w <= area <= SHEET_AREA[1] * h * w or sheet.sum() < SHEET_SOLID * area:
        return None
    corners = _clockwise(quad)
    inside = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(inside, corners.astype(np.int32), 1)
    beyond = cv2.erode(1 - inside, np.ones((5, 5), np.uint8)) > 0
    if not beyond.any() or background[beyond].mean() < OUTSIDE_BACKGROUND:
        return None
    ring = (cv2.erode(inside, np.ones((2 * RING[0] + 1,) * 2, np.uint8))
            - cv2.erode(inside, np.ones((2 * RING[1] + 1,) * 2, np.uint8))) > 0
    ground = beyond & background
    if not ring.any() or not ground.any():
        return None
    if (lum[ring] >= float(np.median(lum[ground])) + PAPER_STEP).mean() < MARGIN_PAPER:
        return None
    return corners * np.float32([rgb.shape[1] / w, rgb.shape[0] / h])


def light_field(lum: np.ndarray) -> Optional[np.ndarray]:
    """How bright the paper is lit at each pixel of ``lum`` (0..1, the brightest paper 1), or None when the light is
    even enough or too little paper shows to tell (see the module docstring)."""
    h, w = lum.shape
    n = TILES
    th, tw = h // n, w // n
    if th < 2 or tw < 2:
        return None
    tiles = lum[: th * n, : tw * n].reshape(n, th, n, tw).transpose(0, 2, 1, 3).reshape(n * n, -1)
    paper = np.percentile(tiles, 95, axis=1)
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n
    x, y = x.ravel(), y.ravel()
    terms = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    used = paper >= PAPER_LEVEL
    for _ in range(FIT_ROUNDS):
        if used.sum() < FIT_TILES * n * n:
            return None
        coef = np.linalg.lstsq(terms[used], paper[used], rcond=None)[0]
        fitted = terms @ coef
        used = (paper >= PAPER_LEVEL) & (paper >= fitted - PAPER_DIP)
    top = float(np.percentile(fitted, 95))
    if top <= 0 or float(fitted.min()) / top >= EVEN_ENOUGH:
        return None
    yy, xx = (np.mgrid[0:h, 0:w] + 0.5) / np.array([h, w])[:, None, None]
    surface = coef[0] + coef[1] * xx + coef[2] * yy + coef[3] * xx * xx + coef[4] * xx * yy + coef[5] * yy * yy
    return np.clip(surface / top, 0.2, 1.0).astype(np.float32)


def as_scanned(image: "Image") -> Optional["Image"]:
    """The page in the photo ``image`` cut out, straightened and evenly lit (a PIL RGB image), or None when
    ``image`` is not a photo of a sheet on a background (a scan, a page of art: read it as it is)."""
    from PIL import Image as PILImage

    from ..opencv import cv2

    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    corners = find_sheet(rgb)
    if corners is None:
        return None
    tl, tr, br, bl = corners
    width = max(1, round((np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2))
    height = max(1, round((np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2))
    target = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32)
    warp = cv2.getPerspectiveTransform(corners, target)
    sheet = cv2.warpPerspective(rgb, warp, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    small = _small(sheet)
    field = light_field(luminance(small.astype(np.float32) / 255.0))
    if field is not None:
        field = cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)
        sheet = np.clip(sheet.astype(np.float32) / field[..., None] + 0.5, 0, 255).astype(np.uint8)
    return PILImage.fromarray(sheet)
