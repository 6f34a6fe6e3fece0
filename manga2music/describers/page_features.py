"""Pixel measurements of one page, for the builtin describer (OpenCV + numpy).

Colour is normalised first, so that colour alone cannot change what the page
"looks like" to the rules: the paper colour (the brightest tone around the page
edge: white, cream or yellowed newsprint) is divided out channel by channel, and
every tone measurement below is taken on the *luminance* of that balanced page
(the same weights ``PIL.Image.convert("L")`` uses, so a page and its grayscale
copy measure alike).  Colour itself (``is_colour``, ``colourfulness``,
``warmth``) is recorded for the music's colour, never for its mood.

Two working copies: :data:`WORK_SIDE` pixels on the long side for tones and
colour, :data:`LINE_SIDE` for line work, screentone and panels (a thin frame line
of a big scan vanishes in the smaller copy, and the margins then flood the
panels).  All numbers are plain floats/ints, rounded, so the same page always
gives the same dictionary.

``ink``            fraction of dark pixels (balanced luminance < 0.35)
``black``          fraction of solid black (< 0.12): heavy shadows, night, black panels
``brightness``     mean balanced luminance, 0 (black) .. 1 (paper)
``contrast``       standard deviation of balanced luminance
``is_colour``      True when more than 5 % of pixels carry visible colour
``colourfulness``  mean chroma (max - min of R, G, B) after balancing, 0 for grayscale
``warmth``         -1 (blue/cyan) .. +1 (red/orange) over the coloured pixels; 0 for grayscale
``paper``          the paper colour that was divided out, as [r, g, b] in 0..1
``tone``           fraction of the page covered by screentone: tiles whose Fourier spectrum has a
                   sharp off-centre peak (a periodic dot or line pattern)
``edge_density``   fraction of pixels on a Canny edge, outside screentone
``long_lines``     long straight strokes inside the panels (panel borders and screentone left out),
                   their total length divided by the page's width + height
``speed_lines``    the part of ``long_lines`` that forms a bundle: many strokes sharing one
                   direction (motion lines, rain) or converging on one point (focus lines)
``diagonal``       share of the drawing's edge energy running diagonally (0.5 for random texture)
``panel_count``    panels found as regions cut off by the paper-coloured gutters; a region that a balloon,
                   caption or figure joins across a gutter is cut along the gutter's straight run.  When that
                   leaves one panel: inside a thin dark line round the image, or between black gutters on a
                   black page.  Where none of these gives rectangular panels, the regions the panels' frame lines
                   enclose, if they are more: pages whose art runs off the page's edge, so that the "gutter" floods
                   the panels' white ground (see :func:`panel_features`)
``panel_area``     mean panel size as a fraction of the page
``panel_rectangularity`` mean area / bounding-box area of the panels (< 1 for slanted panels, and also
                   wherever the art runs out of its frame into the gutter)
``panel_slant``    the share of the panel frames' length that is tilted (more than 3 degrees off both axes):
                   the straight edges, at least 8.5 % of the page's long side long, of the regions the
                   gutters cut out, so figures breaking out of a frame do not count as a slanted layout;
                   0 where they add up to less than the page's long side (a page with no frames to speak of)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

WORK_SIDE = 512  # long side of the copy for tones and colour
LINE_SIDE = 1024  # long side of the copy for line work, screentone and panels

INK_LEVEL = 0.35  # balanced luminance below this is ink
BLACK_LEVEL = 0.12  # ... below this, solid black
GUTTER_LEVEL = 0.85  # balanced luminance above this may be gutter paper
COLOUR_CHROMA = 0.12  # chroma above this is a coloured pixel
COLOUR_PAGE = 0.05  # a page is colour when this fraction of pixels is coloured
PAPER_MARGIN = 0.04  # the page-edge band (fraction of each side) where the paper colour is sampled
PAPER_MIN = 0.55  # a "paper" darker than this (luminance) is artwork, not paper: no balancing
PAPER_CHANNEL_MIN = 0.3  # ... and so is one with a channel below this (old newsprint's blue is ~0.45)
MIN_PANEL = 0.015  # smallest panel, fraction of the page
BORDER_LINE = 0.01  # a dark line round the image at most this thick (fraction of the side), paper inside it, is the
#                     edge of a scan or an export, not a frame: it would cut every gutter off the page edge
DARK_PAPER = 0.5  # ... a row of the image's edge darker than this (mean balanced luminance) is such a line
BLACK_MARGIN = 0.6  # a page whose margin (the outer PAPER_MARGIN of each side) is this much ink is a black page
PANEL_SHAPE = 0.85  # panels found inside a thin line round the image or between black gutters are this rectangular
PANEL_COVER = 0.5  # on average (area / bounding box) and cover this share of the page: shapes in a splash are not
CROSSING = 0.6  # a row of a region that is this much gutter, from end to end, is a gutter crossing it
FRAME_EDGE = 0.9  # ... when beside it a straight frame edge spans this much of the region's row
CROSSING_EDGE = 0.05  # ... and it is not in the region's outer 5 % (its own frame)
MIN_PIECE = 0.15  # each piece of a cut region keeps at least this share of it
FRAME_MIN = 0.085  # shortest straight panel edge that counts as a frame line, fraction of the page's long side
FRAME_TILT = 3.0  # degrees off both axes: a tilted frame line (hand-ruled frames wobble less than this)
FRAME_TOTAL = 1.0  # frame lines adding up to less than this many long sides of the page give no slant (frame_slant)
SPECK = 3  # pixels (line-work copy): paper or ink this thin along a gutter's edge is a speck, not a frame's edge
#: panels drawn by their frames (see :func:`framed_panel_count`): a frame line is a straight ink line (balanced
#: luminance below FRAME_INK) at least FRAME_MIN long with paper along FRAME_PAPER of one side of it, just beside it
#: (FRAME_SIDE of the long side away: a gutter or a white panel's ground, where art inside a panel has art beside it)
FRAME_INK = 0.5
FRAME_PAPER = 0.7
FRAME_SIDE = 0.004
FRAME_JOIN = 0.25  # pieces of one straight line this far apart (fraction of the long side) are one frame line,
#                    broken where a balloon or a figure crosses it
FRAME_REACH = 0.10  # a frame line's end is carried on this far to the frame line or the page edge it stops short of
FRAMED_FILL = 0.6  # an enclosed region is a panel when it fills this much of its bounding box,
FRAMED_SIDE = 0.05  # ... is at least this wide and tall (fraction of the long side), touches at most two edges of the
FRAMED_INK = 0.03  # image (not the margin round it) and holds this much ink and this much paper (art, not a blank or
#                    a black margin)
TONE_TILE = 32  # screentone tiles (line-work pixels)
TONE_PEAK = 6.0  # spectral peak / mean spectrum above this: a sharp periodic component
TONE_MIN_FREQ = 4.0  # cycles per tile: only patterns finer than 8 pixels a period count as tone
TONE_CROSS = 30.0  # degrees between the two peaks of a dot screen
TONE_MIN_STD = 0.06  # flatter tiles are not tone (paper, flat fills)
LINE_MIN = 0.07  # shortest "long line", fraction of the long side
BORDER_PAD = 6  # pixels around the gutters where strokes count as panel borders
BUNDLE_ANGLE = 6.0  # degrees: strokes this close in direction share a bundle
BUNDLE_MIN = 6  # strokes needed to form a parallel bundle
BUNDLE_REACH = 0.12  # ... all within this distance of each other (fraction of the long side): dense, not scattered
FOCUS_MIN = 8  # strokes needed to converge on one point (focus lines)
FOCUS_TOLERANCE = 0.02  # how near a stroke's line must pass to the focus, fraction of the long side

#: the per-page keys that are numbers and get averaged over a section
NUMERIC_KEYS = (
    "ink", "black", "brightness", "contrast", "colourfulness", "tone", "edge_density", "long_lines",
    "speed_lines", "diagonal", "panel_count", "panel_area", "panel_rectangularity", "panel_slant",
)


def _resize(image: "Image", side: int) -> "Image":
    from PIL import Image as PILImage

    img = image if image.mode == "RGB" else image.convert("RGB")
    w, h = img.size
    scale = side / max(w, h)
    if scale < 1:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), PILImage.Resampling.BOX)
    return img


def working_copy(image: "Image", side: int = WORK_SIDE) -> np.ndarray:
    """The page as float32 RGB in 0..1, shrunk (box filter) so its long side is at most ``side``."""
    return np.asarray(_resize(image, side), dtype=np.float32) / 255.0


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _margin(image: np.ndarray) -> np.ndarray:
    """The pixels of the page-edge band (:data:`PAPER_MARGIN` of each side), as one row of pixels."""
    h, w = image.shape[:2]
    mh, mw = max(1, round(h * PAPER_MARGIN)), max(1, round(w * PAPER_MARGIN))
    rest = image.shape[2:]
    return np.concatenate([image[:mh].reshape(-1, *rest), image[-mh:].reshape(-1, *rest),
                           image[:, :mw].reshape(-1, *rest), image[:, -mw:].reshape(-1, *rest)])


def paper_colour(rgb: np.ndarray) -> np.ndarray:
    """The paper's colour: the median of the brighter half of the page-edge band.

    A page whose edge is dark (full-bleed art) or strongly coloured has no visible
    paper: then nothing is divided out (``[1, 1, 1]``).  Yellowed newsprint, cream
    and white paper are divided out.
    """
    band = _margin(rgb)
    lum = luminance(band)
    bright = band[lum >= np.median(lum)]
    paper = np.median(bright, axis=0) if len(bright) else np.ones(3, np.float32)
    if luminance(paper) < PAPER_MIN or paper.min() < PAPER_CHANNEL_MIN:
        return np.ones(3, np.float32)
    return paper.astype(np.float32)


def normalise_colour(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The page divided by its paper colour (clipped to 0..1), and that paper colour."""
    paper = paper_colour(rgb)
    return np.clip(rgb / paper, 0.0, 1.0), paper


def tone_features(lum: np.ndarray) -> dict:
    return {"ink": float((lum < INK_LEVEL).mean()), "black": float((lum < BLACK_LEVEL).mean()),
            "brightness": float(lum.mean()), "contrast": float(lum.std())}


def colour_features(rgb: np.ndarray) -> dict:
    """Whether the page is in colour, how colourful, and how warm its colours are (on the balanced page)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    chroma = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)  # max - min over the channels,
    # the same values 15x faster than .max(axis=2) on a page
    coloured = chroma > COLOUR_CHROMA
    is_colour = bool(coloured.mean() > COLOUR_PAGE)
    warmth = 0.0
    if is_colour:
        weight = chroma[coloured]
        warmth = float(((rgb[..., 0] - rgb[..., 2])[coloured] * weight).sum() / weight.sum())
    return {"is_colour": is_colour, "colourfulness": float(chroma.mean()), "warmth": warmth}


def gutter_mask(lum: np.ndarray) -> np.ndarray:
    """Paper-bright pixels connected to the page edge: the gutters and margins (uint8 0/1)."""
    return _edge_connected(lum > GUTTER_LEVEL)


def _edge_connected(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` connected to the image's edge (uint8 0/1)."""
    from ..opencv import cv2

    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)
    if count <= 1:
        return np.zeros(mask.shape, np.uint8)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge > 0]
    return np.isin(labels, edge).astype(np.uint8)


def without_border_line(lum: np.ndarray) -> np.ndarray | None:
    """``lum`` with a thin dark line round the image (see :data:`BORDER_LINE`) painted over as paper, or None
    when no side has one.  A side whose art runs off the page has no paper inside its edge and is left alone."""
    out = None
    for side in range(4):  # top, right, bottom, left: each side is the first rows of a rotated view
        view = np.rot90(lum if out is None else out, side)
        rows = view[: max(2, round(BORDER_LINE * max(lum.shape))) + 1].mean(axis=1)
        if rows[0] >= DARK_PAPER:
            continue
        paper = np.flatnonzero(rows >= GUTTER_LEVEL)
        if not len(paper):
            continue
        painted = np.array(view, copy=True)
        painted[: paper[0]] = 1.0
        out = np.rot90(painted, -side)
    return out


def panel_features(lum: np.ndarray) -> dict:
    """The panels of a page (see :func:`panels_cut_out`), cut out by its paper-bright gutters.  When those leave one
    panel: by the same gutters inside a thin dark line round the image (:func:`without_border_line`), or by black
    gutters on a black page, either only when it gives panel-like regions (:func:`_panel_like`: rectangular,
    covering most of the page).  When the gutters' regions are not panel-like and no other way is, the count is the
    larger of theirs and that of the regions the page's frame lines enclose (:func:`framed_panel_count`): on pages
    whose art runs off the page's edge, the panels' white ground reaches the edge and the "gutter" floods them,
    leaving one region or a few ragged pieces."""
    found = panels_cut_out(gutter_mask(lum))
    if found["panel_count"] >= 2 and _panel_like(found):
        return found
    if found["panel_count"] < 2:
        trimmed = without_border_line(lum)
        if trimmed is not None:
            inside = panels_cut_out(gutter_mask(trimmed))
            if _panel_like(inside):
                return inside
        ink = lum < INK_LEVEL
        if _margin(ink).mean() >= BLACK_MARGIN:
            black = panels_cut_out(_edge_connected(ink))
            if _panel_like(black):
                return black
    return {**found, "panel_count": max(found["panel_count"], framed_panel_count(lum))}


def frame_lines(lum: np.ndarray) -> np.ndarray:
    """The page's panel frame lines as segments ``(x0, y0, x1, y1)`` (see :data:`FRAME_INK`): straight ink lines with
    paper along one side; lines inside the art with art on both sides (a table's edge in a toned room) are left out,
    but not all: a horizon under a white sky passes too, which is why :func:`panel_features` counts frames only
    where the gutters fail.  Pieces of one line broken by a balloon or a figure crossing it are joined
    (:data:`FRAME_JOIN`)."""
    from ..opencv import cv2

    long_side = max(lum.shape)
    ink = (lum < FRAME_INK).astype(np.uint8)
    thin = ink & (1 - cv2.erode(ink, np.ones((5, 5), np.uint8)))  # lines, and the outline of solid black
    shortest = round(FRAME_MIN * long_side)
    found = cv2.HoughLinesP(thin * 255, 1, np.pi / 360, threshold=int(0.8 * shortest), minLineLength=shortest,
                            maxLineGap=3)
    if found is None:
        return np.zeros((0, 4))
    segments = found.reshape(-1, 4).astype(np.float64)
    x0, y0, x1, y1 = segments.T
    length = np.hypot(x1 - x0, y1 - y0)
    normal = np.stack([-(y1 - y0) / length, (x1 - x0) / length], axis=1)
    t = np.linspace(0.05, 0.95, 24)[None, :]
    xs, ys = x0[:, None] + (x1 - x0)[:, None] * t, y0[:, None] + (y1 - y0)[:, None] * t
    offset = max(2.0, FRAME_SIDE * long_side)
    h, w = lum.shape
    beside = []
    for sign in (1, -1):
        px = np.clip(np.round(xs + sign * offset * normal[:, :1]).astype(int), 0, w - 1)
        py = np.clip(np.round(ys + sign * offset * normal[:, 1:]).astype(int), 0, h - 1)
        beside.append((lum[py, px] > GUTTER_LEVEL).mean(axis=1))
    return _joined(segments[np.maximum(*beside) >= FRAME_PAPER], long_side)


def _joined(segments: np.ndarray, long_side: int) -> np.ndarray:
    """Collinear ``segments`` (within 1 degree and 4 pixels) whose gaps are at most :data:`FRAME_JOIN` joined."""
    if not len(segments):
        return segments
    x0, y0, x1, y1 = segments.T
    angle = np.arctan2(y1 - y0, x1 - x0) % np.pi
    used = np.zeros(len(segments), bool)
    out = []
    for i in np.argsort(-np.hypot(x1 - x0, y1 - y0), kind="stable"):
        if used[i]:
            continue
        ux, uy = np.cos(angle[i]), np.sin(angle[i])
        nx, ny = -uy, ux
        rho = x0[i] * nx + y0[i] * ny
        turn = np.abs(angle - angle[i])
        same = (~used & (np.degrees(np.minimum(turn, np.pi - turn)) <= 1.0)
                & (np.abs(x0 * nx + y0 * ny - rho) <= 4) & (np.abs(x1 * nx + y1 * ny - rho) <= 4))
        used |= same
        a, b = x0[same] * ux + y0[same] * uy, x1[same] * ux + y1[same] * uy
        spans = sorted(zip(np.minimum(a, b), np.maximum(a, b)))
        start, end = spans[0]
        for lo, hi in spans[1:] + [(np.inf, np.inf)]:
            if lo - end <= FRAME_JOIN * long_side:
                end = max(end, hi)
                continue
            out.append((start * ux + rho * nx, start * uy + rho * ny, end * ux + rho * nx, end * uy + rho * ny))
            start, end = lo, hi
    return np.array(out)


def framed_panel_count(lum: np.ndarray) -> int:
    """Panels counted as the regions their frame lines enclose (:func:`frame_lines`), each line's ends carried on to
    the frame line or the page edge they stop short of (:data:`FRAME_REACH`: corners hidden under a balloon, panels
    that bleed off the page).  Finds the panels of pages whose gutters do not reach the page edge, or that art
    crosses; 1 when no region is panel-like (:data:`FRAMED_FILL`)."""
    from ..opencv import cv2

    h, w = lum.shape
    long_side = max(h, w)
    walls = np.zeros(lum.shape, np.uint8)
    lines = frame_lines(lum)
    for x0, y0, x1, y1 in lines:
        cv2.line(walls, (round(x0), round(y0)), (round(x1), round(y1)), 1, 3)
    steps = np.arange(3, max(4, round(FRAME_REACH * long_side)) + 1)
    carried = []
    for x0, y0, x1, y1 in lines:
        length = np.hypot(x1 - x0, y1 - y0)
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        for ex, ey, dx, dy in ((x1, y1, ux, uy), (x0, y0, -ux, -uy)):
            px, py = np.round(ex + dx * steps).astype(int), np.round(ey + dy * steps).astype(int)
            inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            if not inside.all():  # the page edge is within reach
                stop = int(np.argmin(inside))
                carried.append((ex, ey, ex + dx * steps[stop], ey + dy * steps[stop]))
                continue
            hit = np.flatnonzero(walls[py, px])
            if len(hit):
                carried.append((ex, ey, px[hit[0]], py[hit[0]]))
    for x0, y0, x1, y1 in carried:
        cv2.line(walls, (round(x0), round(y0)), (round(x1), round(y1)), 1, 3)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(1 - walls, connectivity=4)
    ink = np.bincount(labels.ravel(), weights=(lum < FRAME_INK).ravel().astype(np.float64), minlength=count)
    paper = np.bincount(labels.ravel(), weights=(lum > GUTTER_LEVEL).ravel().astype(np.float64), minlength=count)
    x, y, width, height, area = stats.T
    edges = (x == 0).astype(int) + (y == 0) + (x + width == w) + (y + height == h)
    panel = ((area >= MIN_PANEL * lum.size) & (area >= FRAMED_FILL * width * height)
             & (np.minimum(width, height) >= FRAMED_SIDE * long_side) & (edges <= 2)
             & (ink >= FRAMED_INK * np.maximum(area, 1)) & (paper >= FRAMED_INK * np.maximum(area, 1)))
    return max(1, int(panel[1:].sum()))


def _panel_like(found: dict) -> bool:
    """Whether a second way of cutting out panels found panels, not shapes (see :data:`PANEL_SHAPE`)."""
    return (found["panel_count"] >= 2 and found["panel_rectangularity"] >= PANEL_SHAPE
            and found["panel_count"] * found["panel_area"] >= PANEL_COVER)


def panels_cut_out(gutter: np.ndarray) -> dict:
    """Panels = regions the gutter network cuts apart (see :func:`split_bridged`).  A page with no gutters is one
    panel."""
    from ..opencv import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats((1 - gutter).astype(np.uint8), connectivity=4)
    page = gutter.size
    areas, fills = [], []
    for idx in range(1, count):
        x, y, w, h, area = stats[idx]
        if area < MIN_PANEL * page:
            continue
        box = np.s_[y:y + h, x:x + w]
        for piece in split_bridged(labels[box] == idx, gutter[box], MIN_PANEL * page):
            ys, xs = np.nonzero(piece)
            areas.append(len(ys) / page)
            fills.append(len(ys) / ((np.ptp(xs) + 1) * (np.ptp(ys) + 1)))
    if not areas:
        areas, fills = [1.0], [1.0]
    return {"panel_count": len(areas), "panel_area": float(np.mean(areas)), "panel_rectangularity": float(np.mean(fills)),
            "panel_slant": frame_slant(gutter)}


def _crossings(region: np.ndarray, gutter: np.ndarray) -> list[int]:
    """Rows of ``region`` (its bounding box) along which a gutter runs across it, bridged somewhere on the way.

    A run of rows is a crossing when the gutter covers :data:`CROSSING` of each row,
    reaches both ends of it (it comes in from the margins on both sides) and, just
    beside the run, a panel's straight frame edge spans :data:`FRAME_EDGE` of the
    region: a white bay or frameless clouds opening into the margin have no such edge.
    """
    h = region.shape[0]
    across = gutter.mean(axis=1)
    ends = gutter[:, 0].astype(bool) & gutter[:, -1].astype(bool)
    filled = region.mean(axis=1)
    rows, y = [], max(1, int(CROSSING_EDGE * h))
    while y < h - int(CROSSING_EDGE * h):
        if across[y] < CROSSING or not ends[y]:
            y += 1
            continue
        start = y
        while y < h and across[y] >= CROSSING and ends[y]:
            y += 1
        if max(filled[max(0, start - 3):start].max(initial=0.0), filled[y:y + 3].max(initial=0.0)) >= FRAME_EDGE:
            rows.append((start + y - 1) // 2)
    return rows


def split_bridged(region: np.ndarray, gutter: np.ndarray, smallest: float, depth: int = 0) -> list[np.ndarray]:
    """``region`` (a boolean mask over its bounding box) cut along the gutters that cross it.

    A balloon, a caption or a figure laid over a gutter joins two panels into one
    region of the gutter mask; the gutter's straight run across the region still
    shows where they part.  A cut is kept when it leaves at least two pieces of
    ``smallest`` pixels and :data:`MIN_PIECE` of the region; pieces are cut again,
    rows then columns, at most three times deep.
    """
    from ..opencv import cv2

    if depth < 3:
        for axis in (0, 1):
            r, g = (region, gutter) if axis == 0 else (region.T, gutter.T)
            for row in _crossings(r, g):
                cut = r.copy()
                cut[max(0, row - 1):row + 2] = False
                count, labels, stats, _ = cv2.connectedComponentsWithStats(cut.astype(np.uint8), connectivity=4)
                big = [i for i in range(1, count) if stats[i, 4] >= max(smallest, MIN_PIECE * r.sum())]
                if len(big) < 2:
                    continue
                pieces = []
                for i in big:
                    piece = labels == i if axis == 0 else (labels == i).T
                    pieces.extend(split_bridged(piece, gutter, smallest, depth + 1))
                return pieces
    return [region]


def frame_slant(gutter: np.ndarray) -> float:
    """The share of the frames' length that is tilted (see ``panel_slant`` in the module docstring).

    Frames are where the gutters meet the panels, and they are long and straight;
    the outline of art that runs into a gutter is neither, so it mostly falls
    under :data:`FRAME_MIN`.  0 when the frame lines found add up to less than :data:`FRAME_TOTAL` long sides of
    the page: a share of one or two edges is not a layout (a title page drawn to every edge, with one straight
    tilted edge of paper, read as 100 % tilted frames).  A quarter-page panel's outline alone is 1.7 long sides.

    The gutters are first rid of specks (:data:`SPECK`): on a 1-bit scan every
    grey is specks of ink and paper, and where bright art meets its frame the
    paper specks join the gutter and fray its edge, which passed for tilted lines.
    """
    from ..opencv import cv2

    solid = np.ones((SPECK, SPECK), np.uint8)
    gutter = cv2.morphologyEx(cv2.morphologyEx(gutter, cv2.MORPH_OPEN, solid), cv2.MORPH_CLOSE, solid)
    outline = cv2.morphologyEx(gutter, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    shortest = FRAME_MIN * max(gutter.shape)
    lines = cv2.HoughLinesP(outline * 255, 1, np.pi / 360, threshold=max(1, int(shortest * 0.6)),
                            minLineLength=shortest, maxLineGap=2)
    if lines is None:
        return 0.0
    x0, y0, x1, y1 = lines.reshape(-1, 4).T.astype(np.float64)
    length = np.hypot(x1 - x0, y1 - y0)
    if length.sum() < FRAME_TOTAL * max(gutter.shape):
        return 0.0
    angle = np.degrees(np.arctan2(np.abs(y1 - y0), np.abs(x1 - x0)))  # 0..90
    tilt = np.minimum(angle, 90.0 - angle)
    return float((length * (tilt > FRAME_TILT)).sum() / length.sum())


def screentone_mask(gray: np.ndarray) -> np.ndarray:
    """Tiles of :data:`TONE_TILE` pixels holding a dot screen (screentone), as a boolean tile grid.

    A regular dot screen puts its energy into sharp peaks of the tile's 2-D
    Fourier spectrum along *two* directions (the rows and the columns of dots).
    Speed lines and hatching, even evenly spaced ones, peak along one direction
    only, and painted shading has no sharp high-frequency peak at all.  A tile is
    tone when its strongest high-frequency peak, and the strongest one at least
    :data:`TONE_CROSS` degrees away from it, both stand :data:`TONE_PEAK` times
    above the mean of the spectrum.
    """
    t = TONE_TILE
    rows, cols = gray.shape[0] // t, gray.shape[1] // t
    if rows == 0 or cols == 0:
        return np.zeros((max(rows, 0), max(cols, 0)), bool)
    tiles = gray[: rows * t, : cols * t].reshape(rows, t, cols, t).transpose(0, 2, 1, 3).astype(np.float32) / 255.0
    tiles = tiles - tiles.mean(axis=(2, 3), keepdims=True)
    std = tiles.std(axis=(2, 3))
    window = np.outer(np.hanning(t), np.hanning(t)).astype(np.float32)
    spectrum = np.abs(np.fft.rfft2(tiles * window)).reshape(rows * cols, -1)
    ky = np.fft.fftfreq(t)[:, None] * t
    kx = np.fft.rfftfreq(t)[None, :] * t
    radius = np.hypot(ky, kx).ravel()
    direction = np.degrees(np.arctan2(ky, kx)).ravel() % 180.0
    mean = spectrum.mean(axis=1) + 1e-6
    high = spectrum * (radius >= TONE_MIN_FREQ)
    first = high.argmax(axis=1)
    gap = np.abs(direction[None, :] - direction[first][:, None])
    gap = np.minimum(gap, 180.0 - gap)
    second = np.where(gap >= TONE_CROSS, high, 0.0).max(axis=1)
    peak1 = high[np.arange(len(first)), first]
    second_at = np.where(gap >= TONE_CROSS, high, 0.0).argmax(axis=1)
    same_pitch = np.abs(radius[second_at] - radius[first]) <= 0.25 * radius[first]  # a dot grid: one pitch both ways
    tone = (peak1 > TONE_PEAK * mean) & (second > TONE_PEAK * mean) & same_pitch & (std.ravel() > TONE_MIN_STD)
    return tone.reshape(rows, cols)


def _segments(edges: np.ndarray, long_side: int) -> np.ndarray:
    from ..opencv import cv2

    min_length = max(8, round(LINE_MIN * long_side))
    # a stroke needs edge pixels along most of its length (scattered noise rarely lines up that well)
    found = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=max(40, round(0.6 * min_length)), minLineLength=min_length,
                            maxLineGap=3)
    return np.zeros((0, 4), np.float32) if found is None else found.reshape(-1, 4).astype(np.float32)


def _bundled(segments: np.ndarray, long_side: int) -> np.ndarray:
    """Which segments belong to a bundle: a shared direction or a shared focus point."""
    n = len(segments)
    chosen = np.zeros(n, bool)
    if n < min(BUNDLE_MIN, FOCUS_MIN):
        return chosen
    x0, y0, x1, y1 = segments.T
    angle = np.degrees(np.arctan2(y1 - y0, x1 - x0)) % 180.0
    diff = np.abs(angle[:, None] - angle[None, :])
    diff = np.minimum(diff, 180.0 - diff)
    mid_x, mid_y = (x0 + x1) / 2, (y0 + y1) / 2
    near = np.hypot(mid_x[:, None] - mid_x[None, :], mid_y[:, None] - mid_y[None, :]) <= BUNDLE_REACH * long_side
    chosen |= ((diff <= BUNDLE_ANGLE) & near).sum(axis=1) >= BUNDLE_MIN
    # focus lines: many strokes whose lines pass near one point (tried at every pairwise intersection)
    dx, dy = x1 - x0, y1 - y0
    norm = np.hypot(dx, dy) + 1e-6
    a, b = dy / norm, -dx / norm  # unit normal of each line
    c = -(a * x0 + b * y0)
    det = a[:, None] * b[None, :] - a[None, :] * b[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        px = (b[:, None] * c[None, :] - b[None, :] * c[:, None]) / det
        py = (a[None, :] * c[:, None] - a[:, None] * c[None, :]) / det
    ok = np.isfinite(px) & np.isfinite(py) & (np.abs(det) > 0.2)
    if ok.any():
        pts = np.stack([px[ok], py[ok]], axis=1)
        if len(pts) > 400:  # a fixed, deterministic subsample keeps this cheap
            pts = pts[np.linspace(0, len(pts) - 1, 400).astype(int)]
        dist = np.abs(pts[:, 0:1] * a[None, :] + pts[:, 1:2] * b[None, :] + c[None, :])
        near = dist <= FOCUS_TOLERANCE * long_side
        best = int(near.sum(axis=1).argmax())
        if near[best].sum() >= FOCUS_MIN:
            chosen |= near[best]
    return chosen


def line_features(gray: np.ndarray, gutter: np.ndarray, text_boxes: Sequence = ()) -> dict:
    """Screentone share, edge density, and the long straight strokes inside the panels."""
    from ..opencv import cv2

    tone = screentone_mask(gray)
    edges = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 60, 160)  # the blur keeps pixel noise from forming lines
    if tone.size:  # mask the tone tiles and their neighbours (tiles cut by a panel edge are part tone)
        grown = cv2.dilate(tone.astype(np.uint8), np.ones((3, 3), np.uint8))
        tone_px = cv2.resize(grown, (tone.shape[1] * TONE_TILE, tone.shape[0] * TONE_TILE),
                             interpolation=cv2.INTER_NEAREST)
        pad = np.zeros(gray.shape, np.uint8)
        pad[: tone_px.shape[0], : tone_px.shape[1]] = tone_px
        edges[pad > 0] = 0
    h, w = gray.shape
    border = cv2.resize(gutter, (w, h), interpolation=cv2.INTER_NEAREST)
    border = cv2.dilate(border, np.ones((2 * BORDER_PAD + 1, 2 * BORDER_PAD + 1), np.uint8))
    for box in text_boxes:  # lettering is not line work
        x0, y0 = max(0, int(box.x)), max(0, int(box.y))
        border[y0: int(box.y + box.height) + 1, x0: int(box.x + box.width) + 1] = 1
    inner = edges.copy()
    inner[border > 0] = 0
    long_side = max(h, w)
    segments = _segments(inner, long_side)
    lengths = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
    bundled = _bundled(segments, long_side)
    return {
        "tone": float(tone.mean()) if tone.size else 0.0,
        "edge_density": float((edges > 0).mean()),
        "long_lines": float(lengths.sum() / (h + w)),
        "speed_lines": float(lengths[bundled].sum() / (h + w)),
    }


def direction_features(lum: np.ndarray, gutter: np.ndarray) -> dict:
    """How much of the drawing's edge energy runs diagonally (inside the panels).

    Level horizons and upright walls and figures read as stable; tilted lines,
    falling bodies and swung blades read as motion.  ``diagonal`` is the share of
    gradient magnitude whose direction is more than 22.5 degrees away from both
    axes (0.5 for random texture).
    """
    from ..opencv import cv2

    gx = cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy) * (gutter == 0)
    off_axis = np.degrees(np.arctan2(np.abs(gy), np.abs(gx)))  # 0..90
    off_axis = np.minimum(off_axis, 90.0 - off_axis)  # 0 (on an axis) .. 45 (diagonal)
    total = float(mag.sum())
    return {"diagonal": float((mag * (off_axis > 22.5)).sum() / total) if total > 1e-6 else 0.0}


def measure_page(image: "Image", text_boxes: Sequence = ()) -> dict:
    """All measurements of one page (see the module docstring), rounded to 4 decimals.

    ``text_boxes`` (from :mod:`.text_detect`, in the coordinates of ``image``) are
    left out of the line-work measurements.
    """
    rgb, paper = normalise_colour(working_copy(image))
    lum = luminance(rgb)
    gutter = gutter_mask(lum)
    line_rgb, _ = normalise_colour(working_copy(image, LINE_SIDE))
    gray = np.clip(luminance(line_rgb) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    scale = gray.shape[1] / image.size[0]
    scaled = [_Box(b.x * scale, b.y * scale, b.width * scale, b.height * scale) for b in text_boxes]
    out = {"width": image.size[0], "height": image.size[1]}
    for part in (tone_features(lum), colour_features(rgb), line_features(gray, gutter, scaled),
                 direction_features(lum, gutter),
                 panel_features(gray.astype(np.float32) / 255.0)):  # thin frame lines survive at this size
        out.update(part)
    out["paper"] = [round(float(v), 3) for v in paper]
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


class _Box:
    __slots__ = ("x", "y", "width", "height")

    def __init__(self, x: float, y: float, width: float, height: float):
        self.x, self.y, self.width, self.height = x, y, width, height


def trend(values: list[float]) -> float:
    """Change from the first to the last page of a least-squares line (0 for one page)."""
    if len(values) < 2:
        return 0.0
    t = np.linspace(0.0, 1.0, len(values))
    v = np.asarray(values, dtype=np.float64)
    return float(((t - t.mean()) * (v - v.mean())).sum() / ((t - t.mean()) ** 2).sum())
