"""Where the text is on a page: PP-OCR's text detector, shipped inside the ``rapidocr`` wheel.

``rapidocr`` (Apache-2.0) carries PaddleOCR's PP-OCRv6 *small* detection model
(about 10 MB of ONNX) in its wheel, and ``onnxruntime`` runs it on the CPU, so
nothing is downloaded. The detector outlines every text line (speech, captions,
free-floating text, sound effects, even hand-lettered ones a third of the page
tall), whatever its balloon looks like. The lines are not recognised (that would
more than double the cost of a page; only a page's few big lines are, to tell a
heading from a sound effect: see :mod:`.text_recognition`), so characters are
*counted from the ink* of each
horizontal line instead (:func:`count_letters`: its letters as connected shapes, and the spaces
between words), or estimated from the box's shape where that cannot work
(:func:`estimate_chars`: vertical columns, whose characters are made of several
shapes each, and tilted lines).

The detector is built lazily, once per process (:func:`detector`): an onnxruntime
session on the model file in rapidocr's wheel, whose output our own code turns
into boxes (:class:`_Detector`), so rapidocr's Python package is never imported.
It runs on one thread on a copy of :data:`DETECT_AREA` pixels (736 on the long
side of a page): about 0.08 s a page here, 0.2 s for the first.  A big page on
which that finds almost nothing is read again at twice the scale (:data:`FEW_LINES`):
old newspaper pages are lettered too small for the usual scale.  A box that holds a
whole paragraph of tightly leaded lettering (it happens on scans of 1950s captions)
is cut into its lines (:func:`split_stacked`), and the page is read again at a
closer scale (:data:`TIGHT_RESCALE`), where the detector also finds the lines it
missed.  onnxruntime's telemetry is switched off before it is imported.  Any failure raises
:class:`TextDetectionError`; callers keep the page's other measurements.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import denormals  # standard library only: cheap to import

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

DETECT_SIDE = 736  # a page-shaped image is shown to the detector 736 pixels on its long side (PP-OCR's default)
DETECT_AREA = DETECT_SIDE * DETECT_SIDE / 1.41  # ... so any image is scaled to this many pixels: a wide 3-panel
# strip keeps its lettering as tall as on a page instead of being squeezed to 736 pixels wide
MODEL_FILE = "PP-OCRv6_det_small.onnx"  # in rapidocr's wheel, rapidocr/models/
#: DB's box extraction, with PP-OCR's settings for this model (rapidocr's config.yaml, "Det")
PIXEL_THRESHOLD = 0.3  # a pixel is text when the network gives it at least this probability
BOX_SCORE = 0.5  # boxes the detector is less sure of (mean probability inside) are dropped
UNCLIP = 1.6  # how far a found region is grown back out: area * UNCLIP / perimeter on each side
MIN_SIDE = 3  # network pixels: a thinner region is noise
MAX_CANDIDATES = 1000  # regions looked at on one page
#: box sizes are fractions of the page's long side: pages and strips are seen scaled to fit it (on an A-series
#: page these are the 0.007 and 0.12 of sqrt(width * height) they used to be; a small strip's big sound effect stays)
MIN_BOX_HEIGHT = 0.0059  # a text line thinner than this is noise
MAX_BOX_HEIGHT = 0.101  # ... and one thicker than this is no ordinary line of lettering: it is
SOUND_EFFECT_HEIGHT = 0.35  # ... a sound effect (a few hand-lettered glyphs) when no thicker than this
SOUND_EFFECT_LENGTH = 2.5  # ... and at most this many times as long as it is thick; a longer one is a heading (a
# title lettered across the page) and a thicker one a figure, and neither is kept.  Of the 39 boxes thicker than
# MAX_BOX_HEIGHT the detector found on 270 real pages, 24 were sound effects, 7 headings, 8 faces or painted shapes;
# these rules keep 22 of the sound effects, 1 heading and 5 shapes
SPECK_SIZE = 0.03  # an ink shape narrower than this share of a thick box's thickness is a speck
SPECKS = 0.1  # ... and a thick box whose ink is this much specks is a dithered or stippled picture (the sound effects
# of those 270 pages: at most 0.06; error-diffused 1-bit copies of painted pages: 0.11-0.44)
CHAR_ASPECT = 0.45  # character width / box thickness in a horizontal line: letters are ~0.6 of their height wide, and
# the detector pads each box (unclip ratio 1.6), so its thickness is ~1.35 letter heights
#: onnxruntime threads for the detector: one.  On two shared cores, one thread read the 12 sample images in
#: 2.6 s against 3.8 s with onnxruntime's default (one per core), which fights the other work for the cores;
#: two threads without spin-waiting saved 0.05 s of a 3.0 s `run samples/` (noise): not worth the risk under load.
ORT_THREADS = 1
#: a page at least twice the detector's size on each side where fewer lines than this are found is read again at
#: twice the scale: lettering thinner than ~12 pixels at the detector's scale is missed (a 1906 Sunday page of 1760 x
#: 2332 gave 0 lines at the usual scale and 57 at twice it); costs ~4x the detection time, on those pages only
FEW_LINES = 4
VERTICAL_ASPECT = 0.75  # character height / box thickness in a vertical column: square CJK characters, padded box
#: stacked lines: on scans of tightly leaded hand lettering (1950s captions) the detector can outline a whole
#: paragraph as one box, which then reads as one huge "loud" line of few characters.  A box at least this much
#: thicker than the page's ordinary line (its lower-quartile thickness, on pages with STACK_MIN_BOXES boxes or
#: more) is looked at row by row and cut into the lines of lettering it holds (:func:`count_stacked_lines`)
STACKED_OVER_ORDINARY = 1.5
STACK_MIN_BOXES = 4
LETTER_ROWS = 0.25  # a row with this share of the box's densest row's ink is inside a line of letters
LEADING_ROWS = 0.08  # a row with less than this share, between two lines of letters, is the leading between them
STACK_MAX_TILT = 5.0  # degrees: a more tilted box (sound effects) is not cut (its rows mix the lines)
#: a page where stacked lines were found is read again at this much the scale (twice the pixels): its lettering is
#: packed too tight for the usual scale, and there the detector also misses lines (a 1940 page of captions: 553
#: characters estimated at the usual scale, 1,164 at this one, about 1,200 by hand count); on those pages only
TIGHT_RESCALE = 2.0 ** 0.5
#: counting the letters of a horizontal line (count_letters), in units of its typical letter height / width
LETTER_HEIGHTS = (0.4, 1.6)  # an ink shape this tall (of the typical letter) is a letter; smaller ones are
# punctuation, accents and specks, bigger ones art
SPACE_GAP = 0.45  # a gap this wide between letters is a space between words
TOUCHING = 1.4  # a shape this many typical letter widths wide is several letters touching (one per 1.4)
PLAUSIBLE = (0.5, 2.0)  # a count outside these multiples of the shape estimate is not trusted (art in the box)
REGION_REACH = 0.8  # lines this many letter heights apart (of the smaller line) or closer are one text region
MAX_REGIONS = 64  # text regions kept per page (the largest)

_lock = threading.Lock()
_engine = None


class TextDetectionError(RuntimeError):
    """The text detector could not run on this page (or at all)."""


@dataclass(frozen=True)
class TextBox:
    """One detected text line, in pixels of the image that was passed in."""

    x: float  # left
    y: float  # top
    width: float  # axis-aligned bounding box
    height: float
    length: float  # the line's long side (rotated box)
    thickness: float  # its short side: the letter height of a horizontal line
    vertical: bool  # a top-to-bottom column (Japanese vertical text)
    tilt: float = 0.0  # degrees between the line and the nearest axis
    chars: int = 0  # characters counted from the line's ink (0: not counted; see characters())
    text: str = ""  # what the recogniser read (big lines only; see text_recognition), "" if not read

    def characters(self) -> int:
        """The line's characters: as counted from its ink, else estimated from its shape."""
        return self.chars or estimate_chars(self)

    @property
    def area(self) -> float:
        return self.length * self.thickness


def model_path() -> str:
    """The PP-OCRv6 small detection model inside the installed ``rapidocr`` wheel (found without importing it)."""
    return wheel_model(MODEL_FILE, "_det")


def wheel_model(file: str, kind: str) -> str:
    """The ONNX model ``file`` in rapidocr's wheel, ``rapidocr/models/``, else the newest PP-OCR model of the same
    ``kind`` ("_det", "_rec") there: a later rapidocr 3.x may ship another one, same network head, same input."""
    import importlib.util

    spec = importlib.util.find_spec("rapidocr")
    folders = [os.path.join(f, "models") for f in (spec.submodule_search_locations or [])] if spec else []
    for folder in folders:
        path = os.path.join(folder, file)
        if os.path.isfile(path):
            return path
    for folder in folders:
        found = sorted(n for n in (os.listdir(folder) if os.path.isdir(folder) else ())
                       if n.startswith("PP-OCR") and kind in n and n.endswith(".onnx"))
        if found:
            return os.path.join(folder, found[-1])
    raise TextDetectionError(f"the text {'detector' if kind == '_det' else 'recogniser'}'s model ({file}) is not "
                             "installed; pip install 'rapidocr>=3.10,<4'")


def problem(importing: bool = False) -> str | None:
    """Why the detector cannot run here (the model file or onnxruntime is missing), or None: cheap, builds nothing.
    ``importing``: onnxruntime is imported too (a few tenths of a second), where an install that is there but
    fails to import (a wheel built for another CPU, a broken upgrade) must be told apart."""
    import importlib.util

    try:
        there = importlib.util.find_spec("onnxruntime") is not None
    except (ImportError, ValueError):  # in sys.modules as None: an import refused
        there = False
    if not there:
        return "onnxruntime is not installed (pip install onnxruntime)"
    if importing:
        try:
            _onnxruntime()
        except Exception as exc:  # noqa: BLE001 - whatever its import raises: the detector cannot run
            return f"onnxruntime cannot be imported: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    try:
        model_path()
    except TextDetectionError as exc:
        return str(exc)
    return None


def _onnxruntime():
    """onnxruntime, imported with its telemetry off: recent builds carry Microsoft's telemetry client, which writes a
    session file into TMPDIR when imported and reports usage; this tool runs offline and sends nothing (a user's own
    ORT_DISABLE_TELEMETRY setting wins)."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    if hasattr(onnxruntime, "disable_telemetry_events"):
        onnxruntime.disable_telemetry_events()
    return onnxruntime


def ort_session(path: str):
    """An onnxruntime session on the CPU for one of rapidocr's models: :data:`ORT_THREADS` threads, quiet."""
    onnxruntime = _onnxruntime()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = ORT_THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_session(session, feeds: dict) -> list:
    """``session.run(None, feeds)`` with denormal floats flushed to zero on this thread (4x faster on an Intel
    CPU; see :mod:`.denormals`)."""
    with denormals.flushed():
        return session.run(None, feeds)


class _Detector:
    """PP-OCR's detector (a DB network) in an onnxruntime session, and its box extraction.

    The network gives a text probability per pixel.  Lines are the connected regions
    above :data:`PIXEL_THRESHOLD` (slightly dilated, as DB does); each becomes its
    minimum-area rectangle, is kept when the mean probability inside it reaches
    :data:`BOX_SCORE`, and is then grown on every side by ``area * UNCLIP / perimeter``
    (the network is trained on shrunken text regions; DB, Liao et al., AAAI 2020).
    rapidocr's own wrapper does the same, but importing it costs about 0.4 s a
    process (YAML configs, recognition, download code); a test checks that both
    find the same boxes on real pages.
    """

    def __init__(self, path: str):
        self.session = ort_session(path)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, rgb: "np.ndarray") -> "np.ndarray":
        """Text lines as quadrilaterals, shape (N, 4, 2), in the pixels of ``rgb`` (H x W x 3 uint8).

        Corners run top-left, top-right, bottom-right, bottom-left, so the first edge is the top.
        """
        import numpy as np

        from ..opencv import cv2

        h, w = rgb.shape[:2]
        net_h, net_w = max(32, round(h / 32) * 32), max(32, round(w / 32) * 32)  # the network's strides
        image = cv2.resize(rgb, (net_w, net_h)) if (net_h, net_w) != (h, w) else rgb
        x = image[:, :, ::-1].astype(np.float32) * (2.0 / 255.0) - 1.0  # BGR, as trained; (v - 0.5) / 0.5
        prob = run_session(self.session, {self.input_name: np.ascontiguousarray(x.transpose(2, 0, 1)[None])})[0][0, 0]
        mask = cv2.dilate((prob > PIXEL_THRESHOLD).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        scale = np.array([w / net_w, h / net_h], np.float32)
        quads = []
        for contour in contours[:MAX_CANDIDATES]:
            centre, (rw, rh), angle = cv2.minAreaRect(contour)
            if min(rw, rh) < MIN_SIDE or _mean_inside(prob, cv2.boxPoints((centre, (rw, rh), angle))) < BOX_SCORE:
                continue
            grow = UNCLIP * rw * rh / (2.0 * (rw + rh))  # the same margin on every side
            if min(rw, rh) + 2 * grow < MIN_SIDE + 2:
                continue
            corners = cv2.boxPoints((centre, (rw + 2 * grow, rh + 2 * grow), angle)) * scale
            quads.append(_clockwise_from_top_left(np.clip(corners, 0, [w, h])))
        return np.asarray(quads, np.float32).reshape(-1, 4, 2)


def _clockwise_from_top_left(corners: "np.ndarray") -> "np.ndarray":
    """A rectangle's corners as top-left, top-right, bottom-right, bottom-left."""
    import numpy as np

    by_x = corners[np.argsort(corners[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.stack([left[0], right[0], right[1], left[1]])


def _mean_inside(prob: "np.ndarray", corners: "np.ndarray") -> float:
    """The mean of ``prob`` inside a polygon (DB's "fast" box score)."""
    import numpy as np

    from ..opencv import cv2

    height, width = prob.shape
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, [width - 1, height - 1])
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int), 0, [width - 1, height - 1])
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [np.round(corners - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0])


def detector() -> _Detector:
    """The one text detector of this process, built on first use."""
    global _engine
    with _lock:
        if _engine is None:
            try:
                _onnxruntime()
            except ImportError as exc:  # a broken install: say which package
                raise TextDetectionError(f"the text detector is not installed ({exc}); pip install onnxruntime") from exc
            path = model_path()
            try:
                _engine = _Detector(path)
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises many kinds; one clear error for us
                raise TextDetectionError(f"the text detector could not start: {exc}") from exc
        return _engine


def estimate_chars(box: TextBox) -> int:
    """Characters in one line, from its shape: length over character width.

    Horizontal lines use :data:`CHAR_ASPECT` (Latin letters are narrower than tall);
    vertical columns use square CJK characters.  At least one character per line.
    """
    if box.thickness <= 0:
        return 0
    aspect = VERTICAL_ASPECT if box.vertical else CHAR_ASPECT
    return max(1, round(box.length / (aspect * box.thickness)))


def detection_scale(shape: tuple[int, ...]) -> float:
    """The scale at which a page of ``shape`` (height, width, ...) is shown to the detector: :data:`DETECT_AREA`
    pixels (twice that for a double-page spread: each of its pages as large as a page alone), never enlarged."""
    from ..pages import is_spread

    area = DETECT_AREA * (2 if is_spread(shape[1], shape[0]) else 1)
    return min(1.0, (area / float(shape[0] * shape[1])) ** 0.5)


def _detect_at(engine: _Detector, rgb: "np.ndarray", scale: float) -> "np.ndarray":
    """The detector's quadrilaterals on ``rgb`` shown at ``scale``, in ``rgb``'s pixels."""
    import numpy as np

    from ..opencv import cv2

    h, w = rgb.shape[:2]
    small = rgb if scale >= 1.0 else cv2.resize(rgb, (max(8, round(w * scale)), max(8, round(h * scale))),
                                                interpolation=cv2.INTER_AREA)
    try:
        quads = engine(np.ascontiguousarray(small))
    except Exception as exc:  # noqa: BLE001 - onnxruntime/opencv errors: keep the page, lose its text
        raise TextDetectionError(f"text detection failed: {exc}") from exc
    return quads * np.array([w / small.shape[1], h / small.shape[0]], np.float32)  # back to the caller's pixels


def detect_text(rgb: "np.ndarray") -> list[TextBox]:
    """Text lines on an RGB uint8 page (H x W x 3), largest first.  Raises :class:`TextDetectionError`."""
    from ..opencv import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 8:
        raise TextDetectionError(f"cannot detect text on an image of shape {rgb.shape}")
    engine = detector()
    scale = detection_scale(rgb.shape)
    quads = _detect_at(engine, rgb, scale)
    if len(quads) < FEW_LINES and scale <= 0.5:  # a big page with small lettering (an old newspaper page):
        quads = _detect_at(engine, rgb, min(1.0, 2.0 * scale))  # its lines are too thin at the usual scale
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    found = _boxes(quads, gray)
    if not found:
        return []
    boxes = split_stacked(gray, found)
    if boxes != found and scale < 1.0:  # lines run together at this scale: read the page again closer
        boxes = split_stacked(gray, _boxes(_detect_at(engine, rgb, min(1.0, TIGHT_RESCALE * scale)), gray))
    boxes = with_letters_counted(gray, boxes)
    boxes.sort(key=lambda b: -b.area)
    return boxes


def text_regions(boxes: list[TextBox]) -> list[tuple[float, float, float, float]]:
    """Where the text is: lines grouped with their near neighbours (the lines of one balloon, caption or sound
    effect; see :data:`REGION_REACH`), each region as ``(x, y, width, height)`` in the boxes' pixels, largest
    first, at most :data:`MAX_REGIONS`."""
    regions = []
    for group in region_groups(boxes):
        members = [boxes[i] for i in group]
        x0, y0 = min(b.x for b in members), min(b.y for b in members)
        x1, y1 = max(b.x + b.width for b in members), max(b.y + b.height for b in members)
        regions.append((x0, y0, x1 - x0, y1 - y0))
    regions.sort(key=lambda r: -r[2] * r[3])
    return regions[:MAX_REGIONS]


def region_groups(boxes: list[TextBox]) -> list[list[int]]:
    """The indices of ``boxes`` grouped into text regions: lines at most :data:`REGION_REACH` letter heights apart
    (of the smaller line), and the lines near those, are one region."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            reach = REGION_REACH * min(a.thickness, b.thickness)
            gap_x = max(a.x, b.x) - min(a.x + a.width, b.x + b.width)
            gap_y = max(a.y, b.y) - min(a.y + a.height, b.y + b.height)
            if gap_x <= reach and gap_y <= reach:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def with_letters_counted(gray: "np.ndarray", boxes: list[TextBox]) -> list[TextBox]:
    """``boxes`` with ``chars`` counted from the ink of each straight horizontal line (:func:`count_letters`);
    ``gray`` is the page in grayscale."""
    from dataclasses import replace

    return [replace(b, chars=count_letters(gray, b) or 0) if not b.vertical and b.tilt <= STACK_MAX_TILT else b
            for b in boxes]


def ordinary_thickness(boxes: list[TextBox]) -> float:
    """The page's ordinary lettering: the lower-quartile thickness of its lines (``boxes`` not empty)."""
    thickness = sorted(b.thickness for b in boxes)
    return thickness[len(thickness) // 4]


def _ink(gray: "np.ndarray", box: TextBox) -> "np.ndarray | None":
    """The ink of ``box`` as a 0/1 mask (Otsu's threshold; the smaller part is the ink, so light lettering on a
    dark ground works too), or None when the box holds no pixels."""
    import numpy as np

    from ..opencv import cv2

    x0, y0 = int(box.x), int(box.y)
    crop = gray[y0:int(np.ceil(box.y + box.height)), x0:int(np.ceil(box.x + box.width))]
    if crop.size == 0:
        return None
    _, ink = cv2.threshold(crop, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return 1 - ink if ink.mean() > 0.5 else ink


def count_letters(gray: "np.ndarray", box: TextBox) -> int | None:
    """Characters in one horizontal line of lettering, counted from its ink; None when that cannot be trusted.

    Ink is told from paper by Otsu's threshold in the box.  Letters are the ink
    shapes about as tall as the line's typical shape (:data:`LETTER_HEIGHTS`); a
    shape several letters wide is letters touching (:data:`TOUCHING`); shapes that
    overlap along the line are parts of one letter; a gap of :data:`SPACE_GAP`
    letter heights is a space.  Punctuation is too small to count, so lines come
    out a little short.  A count far from the shape estimate (:data:`PLAUSIBLE`)
    means the box holds art, and None is returned.
    """
    import numpy as np

    from ..opencv import cv2

    ink = _ink(gray, box)
    if ink is None or min(ink.shape) < 4:
        return None
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    x, width, height = stats[1:, 0], stats[1:, 2], stats[1:, 3]
    letter_sized = height >= 0.25 * box.thickness
    if count <= 1 or not letter_sized.any():
        return None
    typical = float(np.median(height[letter_sized]))
    low, high = LETTER_HEIGHTS
    keep = (height >= low * typical) & (height <= high * typical)
    order = np.argsort(x[keep], kind="stable")
    x, width = x[keep][order], width[keep][order]
    letter_width = float(np.median(width)) if len(width) else 0.0
    letters, spaces, end = 0, 0, -np.inf
    for left, w in zip(x, width):
        if left < end - 0.5 * w:  # under the shape before it: a part of the same letter
            end = max(end, left + w)
            continue
        if letters and left - end > SPACE_GAP * typical:
            spaces += 1
        letters += max(1, round(w / (TOUCHING * letter_width))) if w > TOUCHING * letter_width else 1
        end = max(end, left + w)
    counted = letters + spaces
    shape = estimate_chars(box)
    return counted if PLAUSIBLE[0] * shape <= counted <= PLAUSIBLE[1] * shape else None


def _boxes(quads: "np.ndarray", gray: "np.ndarray") -> list[TextBox]:
    """The detector's quadrilaterals on the page ``gray`` as text lines, those too thin or too thick for lettering
    left out (a thick, short box drawn in strokes is a sound effect and kept: see :data:`SOUND_EFFECT_HEIGHT`)."""
    import numpy as np

    long_side = max(gray.shape)
    boxes = []
    for quad in quads:
        side_a = float(np.linalg.norm(quad[1] - quad[0]))  # along the top edge
        side_b = float(np.linalg.norm(quad[3] - quad[0]))  # down the left edge
        x0, y0 = quad.min(axis=0)
        x1, y1 = quad.max(axis=0)
        length, thickness = max(side_a, side_b), min(side_a, side_b)
        if not MIN_BOX_HEIGHT * long_side <= thickness <= SOUND_EFFECT_HEIGHT * long_side:
            continue
        if thickness > MAX_BOX_HEIGHT * long_side and (length > SOUND_EFFECT_LENGTH * thickness
                                                       or _specked(gray, quad, thickness)):
            continue
        dx, dy = np.abs(quad[1] - quad[0])
        angle = float(np.degrees(np.arctan2(dy, dx)))  # the top edge against the horizontal, 0..90
        boxes.append(TextBox(float(x0), float(y0), float(x1 - x0), float(y1 - y0), length, thickness,
                             vertical=side_b > side_a * 1.5, tilt=min(angle, 90.0 - angle)))
    return boxes


def _specked(gray: "np.ndarray", quad: "np.ndarray", thickness: float) -> bool:
    """Whether the ink inside ``quad`` is mostly specks (see :data:`SPECKS`): a dithered or stippled picture,
    not lettering drawn in strokes."""
    import numpy as np

    from ..opencv import cv2

    x0, y0 = np.maximum(np.floor(quad.min(axis=0)).astype(int), 0)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    ink = (gray[y0:y1, x0:x1] < 128).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    small = areas < max(4.0, (SPECK_SIZE * thickness) ** 2)
    return bool(areas.sum()) and float(areas[small].sum()) >= SPECKS * float(areas.sum())


def count_stacked_lines(ink_rows: "np.ndarray") -> int:
    """How many lines of lettering lie one above the other, from the ink share of each row across the line
    (rows run across the thickness: top to bottom for a horizontal line, left to right for a column).

    Lines are runs of rows holding at least :data:`LETTER_ROWS` of the densest row's
    ink, at least half as tall as the tallest run, that do not touch the box's edges
    (the padding of a box takes in slivers of the lines above and below it); two
    lines are separate when the rows between them fall under :data:`LEADING_ROWS`.
    """
    import numpy as np

    profile = np.convolve(ink_rows, np.ones(3) / 3.0, mode="same")
    densest = float(profile.max(initial=0.0))
    if densest <= 0.0:
        return 1
    inside = np.flatnonzero(np.diff(np.r_[0, (profile >= LETTER_ROWS * densest).astype(np.int8), 0]))
    runs = [(int(a), int(b)) for a, b in zip(inside[::2], inside[1::2])]
    runs = [(a, b) for a, b in runs if a > 0 and b < len(profile)] or runs
    tallest = max(b - a for a, b in runs)
    runs = [(a, b) for a, b in runs if b - a >= 0.5 * tallest]
    return 1 + sum(1 for (_, end), (start, _) in zip(runs, runs[1:])
                   if profile[end:start].min(initial=densest) < LEADING_ROWS * densest)


def split_stacked(gray: "np.ndarray", boxes: list[TextBox]) -> list[TextBox]:
    """``boxes`` with each box that holds several stacked lines of lettering cut into one box a line
    (see :data:`STACKED_OVER_ORDINARY`); ``gray`` is the page in grayscale."""
    if len(boxes) < STACK_MIN_BOXES:
        return boxes
    thick = STACKED_OVER_ORDINARY * ordinary_thickness(boxes)
    out = []
    for box in boxes:
        if box.thickness < thick or box.tilt > STACK_MAX_TILT:
            out.append(box)
            continue
        ink = _ink(gray, box)
        if ink is None:
            out.append(box)
            continue
        lines = count_stacked_lines(ink.mean(axis=0 if box.vertical else 1))
        if lines == 1:
            out.append(box)
            continue
        for i in range(lines):
            if box.vertical:
                part = (box.x + i * box.width / lines, box.y, box.width / lines, box.height)
            else:
                part = (box.x, box.y + i * box.height / lines, box.width, box.height / lines)
            if not any(other is not box and _covered(part, other) for other in boxes):  # found on its own too
                out.append(TextBox(*part, box.length, box.thickness / lines, box.vertical, box.tilt))
    return out


def _covered(part: tuple[float, float, float, float], other: TextBox) -> bool:
    """Whether ``other`` covers at least half of the rectangle ``part`` (x, y, width, height)."""
    x, y, w, h = part
    dx = min(x + w, other.x + other.width) - max(x, other.x)
    dy = min(y + h, other.y + other.height) - max(y, other.y)
    return dx > 0 and dy > 0 and dx * dy >= 0.5 * w * h
