"""Turning a page's bytes into RGB images a model can read.

Every mode (grayscale, palette, 1-bit, alpha, 16-bit, CMYK) becomes 8-bit RGB;
transparency is laid on white paper.  Very tall strips (webtoons) are cut into
page-shaped tiles in reading order instead of being squashed into a square.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass, field

from .errors import PageError
from .sections import Page, sha256_bytes

#: refuse images with more pixels than this (decompression bombs): 180 megapixels
MAX_PIXELS = 180_000_000
#: a page taller than this many times its width is a strip and gets tiled
STRIP_ASPECT = 2.5
#: each tile is this many times as tall as it is wide (a manga page is about 1.4)
TILE_ASPECT = 1.4


@dataclass
class LoadedPage:
    """A page read from disk: its hash (for resume) and its RGB tile(s)."""

    page: Page
    sha256: str
    tiles: list  # PIL images, RGB; one unless the page is a tall strip
    format: str  # "PNG", "JPEG", ...
    size: tuple[int, int]  # original (width, height)
    data: bytes = field(default=b"", repr=False)  # the bytes it was decoded from (what travels to a remote worker)


def to_rgb(image):
    """8-bit RGB whatever the input mode; alpha composited on white."""
    from PIL import Image

    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        hi = arr.max() if arr.size else 0.0
        lo = min(arr.min(), 0.0) if arr.size else 0.0
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        image = Image.fromarray(((arr - lo) * scale).clip(0, 255).astype("uint8"), mode="L")
        mode = "L"
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    if mode != "RGB":
        return image.convert("RGB")
    return image


def tile_strip(image) -> list:
    """Cut a very tall image into page-shaped tiles, top to bottom; other images are returned whole."""
    width, height = image.size
    if width <= 0 or height / width <= STRIP_ASPECT:
        return [image]
    count = max(2, math.ceil(height / (width * TILE_ASPECT)))
    edges = [round(i * height / count) for i in range(count + 1)]
    return [image.crop((0, top, width, bottom)) for top, bottom in zip(edges, edges[1:])]


def decode_image(data: bytes, label: str):
    """Open image bytes safely: size checked before any pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check the size ourselves
            image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise PageError(
                f"{label}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the "
                f"{MAX_PIXELS // 1_000_000} MP limit (refused as a possible decompression bomb)"
            )
        fmt = image.format or "PNG"
        image.seek(0)  # GIF/TIFF: first frame
        image.load()
        return image, fmt
    except PageError:
        raise
    except Image.DecompressionBombError as exc:
        raise PageError(f"{label}: refused as a possible decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise PageError(f"{label}: not a readable image (unknown or damaged image data)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        reason = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the data", str(exc)).strip() or exc.__class__.__name__
        raise PageError(f"{label}: not a readable image ({reason})") from exc


def load_page(page: Page) -> LoadedPage:
    """Read, hash, decode, convert and tile one page.  Raises :class:`PageError`."""
    return decode_page(page, page.read_bytes())


def decode_page(page: Page, data: bytes) -> LoadedPage:
    """Hash, decode, convert and tile ``data``, the bytes of ``page`` (here, or on the worker it was sent to)."""
    digest = sha256_bytes(data)
    image, fmt = decode_image(data, page.source)
    size = image.size
    rgb = to_rgb(image)
    return LoadedPage(page, digest, tile_strip(rgb), fmt, size, data)
