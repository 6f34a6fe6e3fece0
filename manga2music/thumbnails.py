"""Page thumbnails, made once when a page is decoded for describing and kept for every later listening page.

They live in ``OUTPUT/.manga2music/thumbs/`` (a cache: hidden, named by the page's
sha256, so an unchanged page is never decoded again just to be shown; deleting the
folder only costs one decode per page on the next run).  The listening page embeds
them as data URIs, so it still works from ``file://``.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Optional

from .files import exact_name, keep_cache_file

#: thumbnails are this many pixels tall
THUMB_HEIGHT = 180
#: and at most this wide (a spread is about 250; JPEG refuses more than 65,500)
THUMB_MAX_WIDTH = 4 * THUMB_HEIGHT
CACHE_DIR = Path(".manga2music") / "thumbs"


def thumb_path(output: Path, sha256: str, index: Optional[int] = None, orientation: int = 1) -> Path:
    """Where the thumbnail of a page is kept (``index``: a PDF's or a multi-page TIFF's page, see
    :attr:`~manga2music.sections.Page.index`)."""
    suffix = f"-p{int(index) + 1}" if index is not None else ""
    if orientation in range(2, 9):  # turned by its EXIF Orientation (an older thumbnail of these bytes is sideways)
        suffix += f"-o{orientation}"
    return Path(output) / CACHE_DIR / f"{sha256[:40]}{suffix}.jpg"


def thumbnail_bytes(image, height: int = THUMB_HEIGHT) -> bytes:
    """A small JPEG of ``image`` (a PIL image of the page or its first tile); a very wide one (a webtoon's spacer
    slice, 1000 x 2) at most :data:`THUMB_MAX_WIDTH` wide and less tall (JPEG stops at 65,500 pixels a side)."""
    width = max(1, round(image.width * height / max(1, image.height)))
    if width > THUMB_MAX_WIDTH:
        width, height = THUMB_MAX_WIDTH, max(1, round(image.height * THUMB_MAX_WIDTH / max(1, image.width)))
    thumb = image.convert("RGB").resize((width, height), reducing_gap=2.0)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=72, optimize=True)
    return buf.getvalue()


def save_thumbnail(output: Path, sha256: str, index: Optional[int], image, orientation: int = 1) -> None:
    """Keep the thumbnail of a page just decoded (once; a failure to write it never fails the run)."""
    path = thumb_path(output, sha256, index, orientation)
    if path.exists():
        return
    try:
        keep_cache_file(path, thumbnail_bytes(image))
    except Exception:  # noqa: BLE001 - a cache: the listening page falls back to decoding the page
        pass


def thumbnail_uri(output: Path, page: dict) -> Optional[str]:
    """A ``data:image/jpeg;base64,...`` thumbnail of a recorded page: from the cache, else made (and kept) now;
    None when the page cannot be read any more."""
    sha, turn = page.get("sha256"), page.get("orientation", 1)
    index = page.get("pdf_index") if page.get("pdf_index") is not None else page.get("frame")
    data = None
    if sha:
        try:
            data = thumb_path(output, sha, index, turn).read_bytes()
        except OSError:
            data = None
    if data is None:
        data = _from_the_page(page)
        if data is None:
            return None
        if sha:
            try:
                keep_cache_file(thumb_path(output, sha, index, turn), data)
            except OSError:
                pass
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _from_the_page(page: dict) -> Optional[bytes]:
    from .errors import Manga2MusicError
    from .pages import decode_page, probe_page
    from .sections import Page

    try:
        path = Path(exact_name(page["path_bytes"]) if page.get("path_bytes") else page["path"])
        member = exact_name(page["member_bytes"]) if page.get("member_bytes") else page.get("member")
        source = Page(str(page.get("name", "")), path, member=member, pdf_index=page.get("pdf_index"),
                      frame=page.get("frame"))
        first = decode_page(probe_page(source), max_side=THUMB_HEIGHT * 4)[0]
        return thumbnail_bytes(first)
    except (Manga2MusicError, KeyError, TypeError, ValueError, OSError):
        return None
