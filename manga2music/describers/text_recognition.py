"""What a big line of lettering says: PP-OCR's recogniser, shipped inside the ``rapidocr`` wheel, and whether the
line reads as ordinary words (a title, a chapter heading, a credit, a sign, a line of dialogue) or as a sound effect
or a shout.

Big lettering is loud (see :mod:`manga2music.reading`), but not all big lettering is: a chapter's title page, a
4-koma's title line, the scanlators' credits and a banner on a painted street are lettered as big as a sound effect.
Those read as words.  The recogniser reads only the page's big horizontal lines (a handful a page, about 0.01 s
each), never the dialogue, and only to take lines out of the loud count: when it cannot run, or is unsure of what
it read, the line stays loud, as it was before recognition was used.

The model is PP-OCRv6 *small* recognition (about 21 MB of ONNX, Apache-2.0), with its character list (about 18,700
Chinese, Japanese and Latin characters) stored in the model file.  onnxruntime runs it on one thread; our code
scales the crop to the network's 48-pixel height and decodes the output as CTC does (the best class at each step,
repeats merged, blanks dropped; the score is the mean probability of the kept characters), as rapidocr's own
wrapper does (a test compares the two), without importing rapidocr.  Vertical columns are not read: the model reads
horizontal lines, and a column turned on its side reads as noise.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

from .text_detect import TextBox, ort_session, run_session, wheel_model

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

MODEL_FILE = "PP-OCRv6_rec_small.onnx"  # in rapidocr's wheel, rapidocr/models/
HEIGHT = 48  # the network's input height (pixels); widths follow the line's aspect ratio
MIN_WIDTH = 320  # ... and a shorter line is padded to this width (PaddleOCR's recognition input: 3 x 48 x 320)
MIN_SCORE = 0.75  # a reading the recogniser is less sure of (mean character probability) is not trusted
#: a line that reads as ordinary words: at least two different words of two or more letters, or this many different
#: CJK characters (kana, kanji), or a run of letters with this many different ones (a title whose spaces were lost)
WORDS = 2
CJK_CHARS = 4
DISTINCT_LETTERS = 8
SHOUTING = re.compile(r"[!?！？]")
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")

_lock = threading.Lock()
_engine = None


class _Recogniser:
    """The recognition network in an onnxruntime session, and its characters (read from the model's metadata)."""

    def __init__(self, path: str):
        self.session = ort_session(path)
        self.input_name = self.session.get_inputs()[0].name
        listed = self.session.get_modelmeta().custom_metadata_map.get("character", "").splitlines()
        if not listed:
            raise RuntimeError(f"{path} carries no character list")
        self.characters = ["", *listed, " "]  # class 0 is CTC's blank; the last class is a space

    def __call__(self, rgb: "np.ndarray") -> tuple[str, float]:
        import numpy as np

        from ..opencv import cv2

        h, w = rgb.shape[:2]
        ratio = w / h
        total = int(HEIGHT * max(ratio, MIN_WIDTH / HEIGHT))  # short lines are padded to the width it was trained on
        width = min(total, max(1, int(np.ceil(HEIGHT * ratio))))
        image = cv2.resize(rgb[:, :, ::-1], (width, HEIGHT))  # BGR, as trained
        padded = np.zeros((3, HEIGHT, total), np.float32)
        padded[:, :, :width] = image.astype(np.float32).transpose(2, 0, 1) * (2.0 / 255.0) - 1.0  # (v/255 - 0.5)/0.5
        probs = run_session(self.session, {self.input_name: padded[None]})[0][0]
        best, prob = probs.argmax(axis=1), probs.max(axis=1)
        keep = best != 0
        keep[1:] &= best[1:] != best[:-1]
        if not keep.any():
            return "", 0.0
        return "".join(self.characters[i] for i in best[keep]), float(prob[keep].mean())


def problem() -> str | None:
    """Why the recogniser cannot run here (its model file is missing), or None: cheap, builds nothing."""
    from .text_detect import TextDetectionError

    try:
        wheel_model(MODEL_FILE, "_rec")
    except TextDetectionError as exc:
        return str(exc)
    return None


def recogniser() -> _Recogniser:
    """The recogniser, built once per process (thread-safe)."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = _Recogniser(wheel_model(MODEL_FILE, "_rec"))
        return _engine


def read_line(rgb: "np.ndarray") -> tuple[str, float]:
    """The text of one line of lettering cropped from a page (RGB uint8), and how sure the recogniser is (0..1)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 4:
        return "", 0.0
    engine = recogniser()
    with _lock:  # one session, one caller at a time
        return engine(rgb)


def with_text_read(rgb: "np.ndarray", boxes: list[TextBox], which: list[bool]) -> list[TextBox]:
    """``boxes`` with ``text`` filled in for each horizontal box marked in ``which``, where the recogniser is at
    least :data:`MIN_SCORE` sure; the others unchanged.  Raises whatever the recogniser raises."""
    from dataclasses import replace

    import numpy as np

    out = []
    for box, wanted in zip(boxes, which):
        if wanted and not box.vertical:
            x0, y0 = max(0, int(box.x)), max(0, int(box.y))
            crop = np.ascontiguousarray(rgb[y0:int(np.ceil(box.y + box.height)), x0:int(np.ceil(box.x + box.width))])
            text, score = read_line(crop)
            if text and score >= MIN_SCORE:
                box = replace(box, text=text)
        out.append(box)
    return out


def ordinary_words(text: str) -> bool:
    """Whether a line's text reads as ordinary words rather than a sound effect or a shout (see the module
    docstring): no "!" or "?", and two different words, or :data:`CJK_CHARS` different CJK characters, or a run of
    :data:`DISTINCT_LETTERS` different letters.  "KRASH", "HNNNNGH", "RING RING", "ゴゴゴゴ" and "AAAH!!" are not."""
    if not text or SHOUTING.search(text):
        return False
    if len(set(CJK.findall(text))) >= CJK_CHARS:
        return True
    words = {w.upper() for w in text.split() if sum(c.isalpha() for c in w) >= 2}
    if len(words) >= WORDS:
        return True
    return len({c.upper() for c in text if c.isalpha() and not CJK.match(c)}) >= DISTINCT_LETTERS


def headings(boxes: list[TextBox]) -> set[int]:
    """The indices of ``boxes`` whose text reads as ordinary words (:func:`ordinary_words`) in a text region where
    no line shouts ("!" or "?"): the lines of "BACK TO WORK, YOU SCURVY DOGS!!!" are a shout, line by line."""
    from .text_detect import region_groups

    worded = {i for i, b in enumerate(boxes) if ordinary_words(b.text)}
    if not worded:
        return set()
    quiet = set()
    for group in region_groups(boxes):
        if not any(SHOUTING.search(boxes[i].text) for i in group):
            quiet.update(i for i in group if i in worded)
    return quiet
