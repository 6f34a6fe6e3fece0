"""OpenCV, imported without the change its import makes to the process: ``import cv2`` (opencv-python-headless
5.x) sets ``LD_LIBRARY_PATH`` to a folder inside its wheel for good, which every program started afterwards by the
program that called us (a web service's subprocesses) would inherit.  The variable is put back as it was; OpenCV
has loaded its libraries by then.  Import it from here: ``from ..opencv import cv2``."""

from __future__ import annotations

import os

_before = os.environ.get("LD_LIBRARY_PATH")
import cv2  # noqa: E402  (the variable is read just before)

if _before is None:
    os.environ.pop("LD_LIBRARY_PATH", None)
else:
    os.environ["LD_LIBRARY_PATH"] = _before

__all__ = ["cv2"]
