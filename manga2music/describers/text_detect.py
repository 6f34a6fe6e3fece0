"""Where the text is on a page: PP-OCR's text detector, shipped inside the ``rapidocr`` wheel.

``rapidocr`` (Apache-2.0) carries PaddleOCR's PP-OCRv6 *small* detection model
(about 10 MB of ONNX) in its wheel, and ``onnxruntime`` runs it on the CPU, so
nothing is downloaded.  Only the detector runs: it outlines every text line
(speech, captions, free-floating text, sound effects in lettering), whatever its
balloon looks like.  Recognition is not used: it more than doubles the cost of a
page and its bundled model reads mostly Chinese, so characters are *estimated*
from each box's shape instead (:func:`estimate_chars`).

The engine is built lazily, once per process (:func:`detector`), and runs on one
thread on a copy of :data:`DETECT_AREA` pixels (736 on the long side of a page):
0.2-0.4 s a page on two busy cores.  onnxruntime's telemetry is switched off
before it is imported.  Any failure raises :class:`TextDetectionError`; callers
keep the page's other measurements.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

DETECT_SIDE = 736  # a page-shaped image is shown to the detector 736 pixels on its long side (PP-OCR's default)
DETECT_AREA = DETECT_SIDE * DETECT_SIDE / 1.41  # ... so any image is scaled to this many pixels: a wide 3-panel
# strip keeps its lettering as tall as on a page instead of being squeezed to 736 pixels wide
BOX_SCORE = 0.5  # boxes the detector is less sure of are dropped
#: box sizes are fractions of the page's size, sqrt(width * height)
MIN_BOX_HEIGHT = 0.007  # a text line thinner than this is noise
MAX_BOX_HEIGHT = 0.12  # ... and one thicker than this is a shape, not a line of lettering
CHAR_ASPECT = 0.45  # character width / box thickness in a horizontal line: letters are ~0.6 of their height wide, and
# the detector pads each box (unclip ratio 1.6), so its thickness is ~1.35 letter heights
#: onnxruntime threads for the detector: one.  On two shared cores, one thread read the 12 sample images in
#: 2.6 s against 3.8 s with onnxruntime's default (one per core), which fights the other work for the cores.
ORT_THREADS = 1
VERTICAL_ASPECT = 0.75  # character height / box thickness in a vertical column: square CJK characters, padded box

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

    @property
    def area(self) -> float:
        return self.length * self.thickness


def detector():
    """The one RapidOCR engine of this process (detection only), built on first use."""
    global _engine
    with _lock:
        if _engine is None:
            # recent onnxruntime builds carry Microsoft's telemetry client, which writes a session file into
            # TMPDIR when imported and reports usage; this tool runs offline and sends nothing (a user's own
            # ORT_DISABLE_TELEMETRY setting wins)
            os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
            try:
                import onnxruntime
                from rapidocr import RapidOCR
            except ImportError as exc:  # a broken install: say which package
                raise TextDetectionError(f"the text detector is not installed ({exc}); pip install rapidocr onnxruntime") from exc
            if hasattr(onnxruntime, "disable_telemetry_events"):
                onnxruntime.disable_telemetry_events()
            try:
                _engine = RapidOCR(params={
                    "Global.use_cls": False, "Global.use_rec": False, "Global.log_level": "error",
                    "Det.limit_type": "max", "Det.limit_side_len": 4096, "Det.box_thresh": BOX_SCORE,
                    "Global.max_side_len": 4096,  # we scale the image ourselves (detect_text)
                    "EngineConfig.onnxruntime.intra_op_num_threads": ORT_THREADS,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                })
            except Exception as exc:  # noqa: BLE001 - the library raises many kinds; one clear error for us
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


def detect_text(rgb: "np.ndarray") -> list[TextBox]:
    """Text lines on an RGB uint8 page (H x W x 3), largest first.  Raises :class:`TextDetectionError`."""
    import numpy as np

    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 8:
        raise TextDetectionError(f"cannot detect text on an image of shape {rgb.shape}")
    import cv2

    engine = detector()
    h, w = rgb.shape[:2]
    scale = min(1.0, (DETECT_AREA / float(h * w)) ** 0.5)
    small = rgb if scale >= 1.0 else cv2.resize(rgb, (max(8, round(w * scale)), max(8, round(h * scale))),
                                                interpolation=cv2.INTER_AREA)
    try:
        result = engine(np.ascontiguousarray(small), use_det=True, use_cls=False, use_rec=False)
    except Exception as exc:  # noqa: BLE001 - onnxruntime/opencv errors: keep the page, lose its text
        raise TextDetectionError(f"text detection failed: {exc}") from exc
    quads = getattr(result, "boxes", None)
    if quads is None or len(quads) == 0:
        return []
    size = (h * w) ** 0.5
    min_height, max_height = MIN_BOX_HEIGHT * size, MAX_BOX_HEIGHT * size
    boxes = []
    sx, sy = w / small.shape[1], h / small.shape[0]  # back to the caller's pixels
    for quad in np.asarray(quads, dtype=np.float32).reshape(-1, 4, 2) * np.array([sx, sy], np.float32):
        side_a = float(np.linalg.norm(quad[1] - quad[0]))  # along the top edge
        side_b = float(np.linalg.norm(quad[3] - quad[0]))  # down the left edge
        x0, y0 = quad.min(axis=0)
        x1, y1 = quad.max(axis=0)
        length, thickness = max(side_a, side_b), min(side_a, side_b)
        if not min_height <= thickness <= max_height:
            continue
        boxes.append(TextBox(float(x0), float(y0), float(x1 - x0), float(y1 - y0), length, thickness,
                             vertical=side_b > side_a * 1.5))
    boxes.sort(key=lambda b: -b.area)
    return boxes
