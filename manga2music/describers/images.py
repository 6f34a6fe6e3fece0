"""Pages as data URLs for chat APIs: downscaled to what the model looks at, re-encoded small.

Sizes follow OpenAI's vision docs: with ``detail="low"`` the model sees a
512 x 512 version; with ``high`` (and ``auto``, which picks high for large
pages) an image is fitted into 2048 x 2048 and then scaled so its short side is
at most 768 px.  Sending more pixels only costs upload time, so we resize the
same way first.

Encoding: pages that came from JPEG files stay JPEG (quality 85).  Pages from
lossless files (PNG, WEBP, GIF, BMP, TIFF: usually clean line art) are encoded
both as PNG and as JPEG q85 and the smaller one is sent, so flat black-and-white
art stays sharp and screentone-heavy or colour pages stay light.  Pages with no
colour are encoded as grayscale.  The MIME type in the URL always matches the
bytes.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

from .base import PageImage

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

LOW_DETAIL_SIDE = 512
HIGH_DETAIL_LONG_SIDE = 2048
HIGH_DETAIL_SHORT_SIDE = 768
JPEG_QUALITY = 85
#: channel differences at or below this count as "no colour" (scanner noise)
GRAY_TOLERANCE = 8

_JPEG_SOURCES = {"JPEG", "JPG", "MPO", "JFIF"}


def target_size(width: int, height: int, detail: str = "auto") -> tuple[int, int]:
    """The size a page is sent at: never larger than the model would look at, never upscaled."""
    scale = 1.0
    if detail == "low":
        scale = min(1.0, LOW_DETAIL_SIDE / max(width, height))
    else:
        scale = min(1.0, HIGH_DETAIL_LONG_SIDE / max(width, height))
        scale = min(scale, HIGH_DETAIL_SHORT_SIDE / min(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _is_gray(image: "Image") -> bool:
    from PIL import ImageChops

    if image.mode in ("L", "1", "LA", "I", "I;16", "F"):
        return True
    rgb = image.convert("RGB")
    r, g, b = rgb.split()
    return all(ImageChops.difference(x, y).getextrema()[1] <= GRAY_TOLERANCE for x, y in ((r, g), (g, b)))


def prepare(page: PageImage, detail: str = "auto") -> "Image":
    """The page resized for ``detail``, in mode ``L`` (no colour) or ``RGB``."""
    from PIL import Image as PILImage

    image = page.image
    size = target_size(image.width, image.height, detail)
    if size != image.size:
        image = image.resize(size, PILImage.Resampling.LANCZOS)
    return image.convert("L") if _is_gray(image) else image.convert("RGB")


def encode(page: PageImage, detail: str = "auto") -> tuple[str, bytes]:
    """``(mime, bytes)`` for one page, following the rules in the module docstring."""
    image = prepare(page, detail)
    jpeg = io.BytesIO()
    image.save(jpeg, format="JPEG", quality=JPEG_QUALITY)
    if (page.format or "").upper() in _JPEG_SOURCES:
        return "image/jpeg", jpeg.getvalue()
    png = io.BytesIO()
    image.save(png, format="PNG")
    if png.tell() <= jpeg.tell():
        return "image/png", png.getvalue()
    return "image/jpeg", jpeg.getvalue()


def data_url(page: PageImage, detail: str = "auto") -> str:
    """``data:<mime>;base64,...`` for one page."""
    mime, data = encode(page, detail)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
