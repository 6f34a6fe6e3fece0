"""Pages flow through a section one at a time: probed first, decoded only when described, then let go.

Two passes keep a 500-page volume in flat memory:

1. :func:`probe_page` reads a page's bytes once to hash them (what resume compares)
   and reads only the image *header* (size, format): no pixels are decoded.  A
   PDF page is not rendered at all: its record points at the PDF file's sha256
   and its page number.
2. :class:`PageStream` decodes the pages a describer asks for, in order, one at a
   time, straight to the size that describer uses (``Describer.page_side``: JPEG
   pages decode at a fraction of full size, PDF pages render once at that size),
   and keeps nothing: a page's full-size pixels are gone before the next page
   is read.  It also hands each decoded page to ``on_decoded`` (the listening
   page's thumbnails are made there, once).

Every mode (grayscale, palette, 1-bit, alpha, 16-bit, CMYK) becomes 8-bit RGB;
transparency is laid on white paper.  A page stored sideways with an EXIF
Orientation tag (phone photos, some scanners) is turned the way every viewer
shows it, and its size is given that way round.  Very tall strips (webtoons) are cut into
page-shaped tiles in reading order instead of being squashed into a square.
"""

from __future__ import annotations

import io
import math
import os
import re
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple, Optional

from .errors import PageError
from .reading import tile_name
from .sections import UNREADABLE_IMAGE_TYPES, Page, file_sha256, pdf_page_size, render_pdf_page, sha256_bytes

#: refuse images with more pixels than this (decompression bombs): 178 megapixels, under the 178.96 at which Pillow
#: refuses to open one (twice its Image.MAX_IMAGE_PIXELS), which came first ("179 megapixels, over the 180 MP limit")
MAX_PIXELS = 178_000_000


def too_big(width: int | None = None, height: int | None = None) -> str:
    """What a page over MAX_PIXELS is told, after its size: most are webtoon strips of a whole chapter in one file,
    which read as well in parts; a page of another shape is only scanned far finer than it is read.  Without its
    size (Pillow refused it before saying it), both."""
    strip = "a strip this long reads as well cut into parts: 01.png, 02.png... are read in order, as one chapter"
    page = "save it smaller: a page is read at a few megapixels anyway"
    if not (width and height):
        advice = f"{strip}; a page that big: {page}"
    else:
        advice = strip if height >= STRIP_ASPECT * width else page
    return f"(refused as a possible decompression bomb); {advice}"
#: a page taller than this many times its width is a strip and gets tiled
STRIP_ASPECT = 2.5
#: each tile is this many times as tall as it is wide (a manga page is about 1.4)
TILE_ASPECT = 1.4
#: ... unless it is narrower than this (pixels): a page that small could not be read (its lettering would be 2-3
#: pixels tall), so a tall, narrow image is a divider or an ornament and is read as one picture
STRIP_MIN_WIDTH = 120
#: PDF pages are rendered at this long side when the describer does not say (points -> pixels)
PDF_LONG_SIDE = 1600
#: the EXIF tag saying how to turn stored pixels to show them (1: as stored; 5-8: a quarter turn, so width and
#: height swap)
ORIENTATION_TAG = 0x0112
ORIENTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP"}  # phone photos and scans; see orientation()


@dataclass(frozen=True)
class PageInfo:
    """What the first pass learns about a page without decoding its pixels."""

    page: Page
    sha256: str  # of the page's bytes; for a PDF page, of the PDF file (with ``page.pdf_index``)
    size: tuple[int, int]  # (width, height) in pixels as shown, i.e. after its orientation (PDF: at PDF_LONG_SIDE)
    format: str  # "PNG", "JPEG", ... or "PDF"
    orientation: int = 1  # the EXIF Orientation the pixels are turned by (1: as stored)
    pages_held: int = 1  # a multi-page TIFF read whole (in a RAR or 7-Zip archive): its first page alone is read (said)

    @property
    def tiles(self) -> int:
        return tile_count(*self.size)

    @property
    def key(self) -> str:
        """What identifies the page's pixels (resume, kept answers).  A page turned by its EXIF Orientation says so:
        earlier versions read such pages as stored (sideways), and their records must not be reused."""
        return pixels_key(self.sha256, self.page.index, self.orientation)


def pixels_key(sha256: str, index: Optional[int], orientation: int) -> str:
    """:attr:`PageInfo.key` from its parts (as a record's page entry holds them; ``index``: a PDF page's or a
    multi-page TIFF's page's place in its file)."""
    key = sha256 if index is None else f"{sha256}#{index}"
    return key if orientation == 1 else f"{key}@{orientation}"


@dataclass
class LoadedPage:
    """A page read whole: its hash and its RGB tile(s) at full size (thumbnails, the web UI's gallery)."""

    page: Page
    sha256: str
    tiles: list  # PIL images, RGB; one unless the page is a tall strip
    format: str  # "PNG", "JPEG", ...
    size: tuple[int, int]  # original (width, height)


def to_rgb(image):
    """8-bit RGB whatever the input mode; alpha composited on white."""
    from PIL import Image

    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(arr)  # a float TIFF's NaN (or inf) pixels: left out of its range, and drawn as paper's
        # lowest value (with one NaN the whole page was cast from NaN: garbage, and numpy's warning on the terminal)
        arr = np.where(finite, arr, np.nan)
        hi = float(np.nanmax(arr)) if finite.any() else 0.0
        lo = min(float(np.nanmin(arr)), 0.0) if finite.any() else 0.0
        arr = np.nan_to_num(arr, nan=lo)
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


def tile_count(width: int, height: int) -> int:
    """How many page-shaped tiles a page of this size is cut into (1 unless it is a tall strip)."""
    return 1 if width < STRIP_MIN_WIDTH else tiles_by_shape(width, height)


def tiles_by_shape(width: float, height: float) -> int:
    """:func:`tile_count` by the page's shape alone, whatever its width (a PDF page's points are no pixels)."""
    if height / width <= STRIP_ASPECT:
        return 1
    return max(2, math.ceil(height / (width * TILE_ASPECT)))


def tile_strip(image) -> list:
    """Cut a very tall image into page-shaped tiles, top to bottom; other images are returned whole."""
    width, height = image.size
    count = tile_count(width, height)
    if count == 1:
        return [image]
    edges = [round(i * height / count) for i in range(count + 1)]
    return [image.crop((0, top, width, bottom)) for top, bottom in zip(edges, edges[1:])]


def _pillow_quiet():
    """Pillow's warnings while it reads a header or an EXIF block go unshown: a decompression bomb (we check the
    size ourselves), an EXIF block cut short (Photoshop's TIFF copy past JPEG's 64 kB: the tags that are there are
    read).  They cost no page, and Python's warning lines are not for the user's screen.  Safe for threads and for
    the host program's own filters (see :mod:`manga2music.quiet`)."""
    from .quiet import warnings_ignored

    return warnings_ignored(module=r"PIL\.")


def _open(data: bytes, label: str):
    """Open image bytes lazily (header only), size-checked before any pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _pillow_quiet():
            image = Image.open(io.BytesIO(data))
        width, height = image.size
    except UnidentifiedImageError as exc:
        suffix = os.path.splitext(label)[1].lower()
        if suffix in UNREADABLE_IMAGE_TYPES:
            raise PageError(f"{label}: {UNREADABLE_IMAGE_TYPES[suffix]} images cannot be read here (Pillow has no "
                            "decoder for them); save the page as JPEG or PNG") from exc
        if suffix == ".avif" and "AVIF" not in Image.ID:
            raise PageError(f"{label}: this Pillow cannot read AVIF images (`pip install -U pillow`: its wheels "
                            "can), or save the page as JPEG or PNG") from exc
        if not data:  # as an empty archive is said
            raise PageError(f"{label}: not a readable image: it is empty (0 bytes)") from exc
        raise PageError(f"{label}: not a readable image (unknown or damaged image data)") from exc
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels.group(1)) / 1e6:.1f} megapixels" if pixels else "too many pixels"
        raise PageError(f"{label}: {size}, over the {MAX_PIXELS // 1_000_000} MP limit {too_big()}") from exc
    except Exception as exc:  # noqa: BLE001 - OSError, SyntaxError, a plugin's EOFError or struct.error: this page
        raise PageError(f"{label}: not a readable image ({_reason(exc)})") from exc
    if width * height > MAX_PIXELS:
        raise PageError(
            f"{label}: {width}x{height} is {width * height / 1e6:.1f} megapixels, over the "
            f"{MAX_PIXELS // 1_000_000} MP limit {too_big(width, height)}"
        )
    return image


def orientation(image) -> int:
    """The EXIF Orientation of an opened JPEG, PNG or WebP (1 when it has none or an invalid one), from its header
    only: a PNG's EXIF after its pixel data is not looked for (Pillow would decode the whole image to find it).
    Other formats are read as stored (Pillow does not turn a TIFF's pixels consistently)."""
    if image.format not in ORIENTED_FORMATS or (image.format == "PNG" and "exif" not in image.info):
        return 1
    try:
        with _pillow_quiet():
            value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block is no reason to lose the page: show it as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def shown_size(size: tuple[int, int], turn: int) -> tuple[int, int]:
    """(width, height) of stored pixels of ``size`` once turned by the EXIF Orientation ``turn``."""
    return (size[1], size[0]) if turn >= 5 else size


def _reason(exc: BaseException) -> str:
    return re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the data", str(exc)).strip() or exc.__class__.__name__


#: a TIFF frame's NewSubfileType bits that make it no page: a reduced-size preview (1), a transparency mask (4)
_NOT_A_PAGE = 0x1 | 0x4


class Frames(NamedTuple):
    """The frames of an image file that are pages (:func:`page_frames`), and whether all of its frames could be
    read (False: a damaged frame, and those after it, were left out)."""

    pages: list[int]
    whole: bool = True


def page_frames(source, label: str) -> Frames:
    """The frames of a multi-page TIFF (a scanner's chapter in one file) that are pages, read from their headers
    (nothing decoded); ``[0]`` for any other image.  ``source``: the file's bytes, or its path (then only its headers
    are read: a folder of single-page TIFF scans is not read whole to list it).  Raises :class:`PageError` for an
    unreadable one."""
    if isinstance(source, bytes):
        return _page_frames(_open(source, label))
    from PIL import Image

    try:
        with _pillow_quiet(), open(source, "rb") as fh, Image.open(fh) as image:
            return _page_frames(image)
    except Exception as exc:  # noqa: BLE001 - whatever Pillow raises for a broken header
        raise PageError(f"{label}: not a readable image ({_reason(exc)})") from exc


def _page_frames(image) -> Frames:
    if image.format != "TIFF":
        return Frames([0])
    frames, whole = [], True
    for k in range(MAX_FRAMES):  # frame by frame (n_frames walks them all first, and fails at a damaged one)
        try:
            image.seek(k)
            kind = int(image.tag_v2.get(254, 0) or 0)
        except EOFError:
            break
        except Exception:  # noqa: BLE001 - a damaged frame: the pages before it
            whole = False
            break
        if not kind & _NOT_A_PAGE:
            frames.append(k)
    else:
        whole = False  # more frames than any chapter has: the rest left out (said)
    return Frames(frames or [0], whole)


#: frames looked at in one image file, at most
MAX_FRAMES = 2000


def decode_image(data: bytes, label: str, *, max_side: Optional[int] = None, frame: Optional[int] = None):
    """Decode image bytes (first frame, or ``frame`` of a multi-page TIFF), turned as its EXIF Orientation says ->
    (image, format).  With ``max_side``, JPEGs decode at a reduced scale (libjpeg's DCT scaling: 1/2, 1/4, 1/8) no
    smaller than needed for that long side."""
    image = _open(data, label)
    fmt = image.format or "PNG"
    turn = orientation(image)  # before decoding: the same answer probe_page gave
    try:
        if frame:
            image.seek(frame)
        with suppress(EOFError):  # GIF/TIFF: the first frame (a PSD's frames are its layers: it opened on the
            image.seek(frame or 0)  # merged image, the page)
        if max_side and fmt == "JPEG":
            w, h = image.size
            scale = shrink_scale(*((h, w) if turn in (5, 6, 7, 8) else (w, h)), max_side)  # as shown
            if scale < 1:
                image.draft("RGB", (max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))))
        image.load()
        if turn != 1:
            from PIL import ImageOps

            with _pillow_quiet():  # it reads the EXIF block again
                image = ImageOps.exif_transpose(image)
    except Exception as exc:  # noqa: BLE001 - whatever a decoder raises (OSError, EOFError, struct.error...), it is
        # this page that cannot be read, not its chapter
        raise PageError(f"{label}: not a readable image ({_reason(exc)})") from exc
    return image, fmt


#: width / height of a double-page spread: two portrait pages side by side (2 x 0.71 = 1.42), scanned with margins
SPREAD_ASPECT = (1.2, 1.8)


def is_spread(width: int, height: int) -> bool:
    """Whether an image has the shape of a double-page spread (two pages side by side)."""
    return SPREAD_ASPECT[0] <= width / max(height, 1) <= SPREAD_ASPECT[1]


def shrink_scale(width: int, height: int, max_side: int) -> float:
    """The scale that brings a page to ``max_side`` pixels on its long side, and a double-page spread to
    ``max_side`` in height, so that each of its two pages keeps a page's pixels (brought to ``max_side`` on its
    long side, its lettering was counted at three quarters of a single page's resolution, and a spread read as 16 %
    shorter than its two pages); 1.0 when it is small enough."""
    edge = height if is_spread(width, height) else max(width, height)
    return min(1.0, max_side / max(edge, 1))


def _shrink(tile, max_side: Optional[int]):
    from PIL import Image

    w, h = tile.size
    scale = shrink_scale(w, h, max_side) if max_side else 1.0
    if scale >= 1.0:
        return tile
    # reducing_gap: an integer box reduction first, then bilinear for the rest (fast, and no aliasing of screentone)
    return tile.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR,
                       reducing_gap=2.0)


def pdf_page_pixels(width: float, height: float) -> tuple[int, int]:
    """The size a PDF page of ``width`` x ``height`` points is rendered at when the describer does not say: its
    long side :data:`PDF_LONG_SIDE`, or, for a tall strip (a webtoon episode saved as one PDF page), each of its
    tiles' (a strip scaled as one page was 107 pixels wide, too narrow to be cut into tiles: read as one sliver);
    at most :data:`MAX_PIXELS` in all."""
    width, height = max(float(width), 1.0), max(float(height), 1.0)
    # by its shape alone: a page's points are no pixels (a strip saved at 600 dpi is 96 points wide), so
    # STRIP_MIN_WIDTH, which tells a divider image from a page, does not apply
    long_side = max(width, height / tiles_by_shape(width, height))
    scale = min(PDF_LONG_SIDE / long_side, math.sqrt(MAX_PIXELS / (width * height)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def probe_page(page: Page, *, pdf_hashes: Optional[dict] = None) -> PageInfo:
    """Hash a page and read its size from the header; decode nothing.  Raises :class:`PageError`."""
    if page.pdf_index is not None:
        cache = pdf_hashes if pdf_hashes is not None else {}
        if page.path not in cache:
            cache[page.path] = file_sha256(page.path)
        w, h = pdf_page_size(page.path, page.pdf_index)
        return PageInfo(page, cache[page.path], pdf_page_pixels(w, h), "PDF")
    data, sha = _bytes_and_hash(page)
    image = _open(data, page.source)
    if page.frame:
        try:
            image.seek(page.frame)
        except Exception as exc:  # noqa: BLE001 - EOFError (the file has fewer pages now), a damaged header
            raise PageError(f"{page.source}: not a readable page of this TIFF ({_reason(exc)})") from exc
    turn = orientation(image)
    held = 1
    if image.format == "TIFF" and page.frame is None:  # its pages' headers only (a GIF's frames are an animation, a
        # PSD's its layers); a page of a TIFF listed page by page is one page
        held = len(_page_frames(image).pages)  # read in a RAR or 7-Zip archive: its first page alone (said)
        with suppress(Exception):
            image.seek(0)
    return PageInfo(page, sha, shown_size(image.size, turn), image.format or "PNG", turn, held)


def decode_page(info: PageInfo, *, max_side: Optional[int] = None, data: Optional[bytes] = None) -> list:
    """The page's RGB tiles, each at most ``max_side`` pixels on its long side (None: full size).

    ``data``: the page's bytes as they travelled from another machine (:func:`travel_bytes`), instead of its file.
    """
    page = info.page
    if isinstance(data, str):  # why the page could not travel (see travel_bytes)
        raise PageError(data)
    if data is not None:  # one picture: a TIFF's page or a PDF's travels alone (see travel_bytes)
        image, _ = decode_image(data, page.source)
        return [_shrink(tile, max_side) for tile in tile_strip(to_rgb(image))]
    if page.pdf_index is not None:
        w, h = info.size
        count = tile_count(w, h)
        tile_long = max(w, h / count) if count > 1 else max(w, h)
        long_side = max(w, h) * (max_side / tile_long) if max_side else max(w, h)  # as probed (pdf_page_pixels)
        image = to_rgb(render_pdf_page(page.path, page.pdf_index, round(long_side)))
    else:
        w, h = info.size
        tile_long = max(w, h / tile_count(w, h))
        wanted = None if not max_side else math.ceil(max(w, h) * max_side / max(tile_long, 1))
        image, _ = decode_image(bytes_as_probed(info), page.source, max_side=wanted, frame=page.frame)
        image = to_rgb(image)
    return [_shrink(tile, max_side) for tile in tile_strip(image)]


#: the long side (pixels) a page is brought to for :func:`picture_key` (after decoding it whole: a JPEG decoded at
#: a reduced size has other pixels than the same picture saved as PNG)
PICTURE_SIDE = 256


def picture_key(info: PageInfo) -> Optional[str]:
    """What a page shows, whatever its file: a hash of its tiles decoded at :data:`PICTURE_SIDE` pixels.  The same
    for a page saved again with other tags or losslessly in another format, and for a PDF's untouched page once
    another page of it was edited (:attr:`PageInfo.key` follows the file's bytes: the whole PDF's, for each of its
    pages).  None when the page cannot be decoded now."""
    keys = picture_keys(info)
    return keys[0] if keys else None


def picture_keys(info: PageInfo) -> Optional[tuple[str, list[str]]]:
    """The page's :func:`picture_key` and each of its tiles' own (a tall strip's parts: one edited part leaves the
    others' keys as they were; a page of one tile has its page's key).  None when the page cannot be decoded now."""
    import hashlib

    try:
        tiles = [_shrink(tile, PICTURE_SIDE) for tile in decode_page(info)]
    except Exception:  # noqa: BLE001 - PageError, a file gone or changed since it was probed: not known
        return None
    whole, parts = hashlib.blake2b(digest_size=16), []
    for tile in tiles:
        part, header, data = hashlib.blake2b(digest_size=16), f"{tile.mode} {tile.size[0]}x{tile.size[1]}\n".encode(), \
            tile.tobytes()
        for h in (whole, part):
            h.update(header)
            h.update(data)
        parts.append(part.hexdigest())
    return whole.hexdigest(), parts


#: a page whose bytes are no longer those its record names
CHANGED_PAGE = "changed while this run read it (a file still being written, or edited): run again to read it as it is"


def _bytes_and_hash(page: Page) -> tuple[bytes, str]:
    """The page's bytes and their SHA-256.  The pages of one multi-page TIFF share its file: it is read and hashed
    once while it stays as it was (its size and modification time; each page read and hashed the whole file twice:
    120 pages of one 207 MB scan took 88 s against 16.5 s as 120 files)."""
    if page.frame is None:
        data = page.read_bytes()
        return data, sha256_bytes(data)
    try:
        stat = os.stat(page.path)
    except OSError as exc:
        raise PageError(f"{page.source}: cannot read ({exc.strerror or exc})") from exc
    key = (os.path.realpath(page.path), page.member, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _SHARED_LOCK:
        kept = _SHARED_FILE.get(key)
    if kept is None:
        data = page.read_bytes()
        kept = (data, sha256_bytes(data))
        with _SHARED_LOCK:
            _SHARED_FILE.clear()  # one file at a time: a chapter's TIFF, not every one seen
            _SHARED_FILE[key] = kept
    return kept


#: the last multi-page TIFF read: its (path, member, size, mtime, inode) -> (bytes, SHA-256)
_SHARED_FILE: dict = {}
_SHARED_LOCK = threading.Lock()


def forget_shared_file() -> None:
    """Let the last multi-page TIFF's bytes go (a command is over: a web UI server would keep a 200 MB scan)."""
    with _SHARED_LOCK:
        _SHARED_FILE.clear()


def bytes_as_probed(info: PageInfo) -> bytes:
    """The page's bytes, read again, if they are still those :func:`probe_page` hashed (what the record names);
    else :class:`PageError`: a page still being written when probed, or edited since, is not described under the
    hash of other bytes."""
    data, sha = _bytes_and_hash(info.page)
    if sha != info.sha256:
        raise PageError(f"{info.page.source}: {CHANGED_PAGE}")
    return data


def travel_bytes(info: PageInfo, max_side: Optional[int] = None) -> bytes:
    """What a page weighs on its way to a describer in another process: the file's own bytes (a PDF page:
    rendered once at ``max_side`` and sent as PNG).  Often 20-40 times smaller than the decoded pixels."""
    if info.page.index is None:
        return bytes_as_probed(info)
    buf = io.BytesIO()
    whole = _whole_pdf_page(info, max_side) if info.page.pdf_index is not None else _whole_tiff_page(info, max_side)
    whole.save(buf, format="PNG")
    return buf.getvalue()


def _whole_tiff_page(info: PageInfo, max_side: Optional[int]):
    """A page of a multi-page TIFF, whole (sent alone, not with the file's other pages)."""
    image = to_rgb(decode_image(bytes_as_probed(info), info.page.source, frame=info.page.frame)[0])
    w, h = image.size
    scale = max_side / max(w, h / info.tiles) if max_side else 1.0
    if scale >= 1:
        return image
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), reducing_gap=2.0)


def _whole_pdf_page(info: PageInfo, max_side: Optional[int]):
    """A tall PDF page rendered whole (the receiver cuts it into tiles again)."""
    w, h = info.size
    tile_long = max(w, h / info.tiles)
    long_side = max(w, h) * (max_side / tile_long) if max_side else max(w, h)
    return to_rgb(render_pdf_page(info.page.path, info.page.pdf_index, round(long_side)))


def load_page(page: Page) -> LoadedPage:
    """Read, hash, decode, convert and tile one page at full size.  Raises :class:`PageError`."""
    info = probe_page(page)
    tiles = decode_page(info)
    return LoadedPage(page, info.sha256, tiles, info.format, info.size)


@dataclass
class PageStream:
    """A section's pages for a describer: iterate it to get each tile, decoded just then, in reading order.

    ``len()`` counts tiles.  A page that fails to decode is skipped (``skipped``
    and ``on_skip`` say why); ``on_decoded(info, first_tile)`` sees each page once.
    Nothing is kept between pages, so memory does not grow with the section.
    """

    infos: list[PageInfo]
    max_side: Optional[int] = None
    datas: Optional[list[bytes | str]] = None  # the pages' bytes from another machine, or why not (see page_payload)
    on_decoded: Optional[Callable] = None
    on_skip: Optional[Callable[[PageInfo, str], None]] = None
    skipped: list[dict] = field(default_factory=list)
    decoded: int = 0

    def __len__(self) -> int:
        return sum(info.tiles for info in self.infos)

    def __iter__(self) -> Iterator:
        from .describers.base import PageImage

        self.skipped.clear()
        for k, info in enumerate(self.infos):
            try:
                tiles = decode_page(info, max_side=self.max_side, data=None if self.datas is None else self.datas[k])
            except PageError as exc:
                self.skipped.append({"name": info.page.name, "source": info.page.source, "error": exc.message})
                if self.on_skip is not None:
                    self.on_skip(info, exc.message)
                continue
            self.decoded += 1
            if self.on_decoded is not None:
                self.on_decoded(info, tiles[0])
            fmt = "PNG" if info.format == "PDF" else info.format
            for t, tile in enumerate(tiles):
                yield PageImage(info.page.name if len(tiles) == 1 else tile_name(info.page.name, t + 1), tile, fmt,
                                key=f"{info.key}/{t + 1}of{len(tiles)}@{self.max_side}")
            del tiles
