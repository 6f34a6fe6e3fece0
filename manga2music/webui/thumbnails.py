"""Thumbnails of the uploaded pages, in the order the run will read them, and the uploads it cannot read.

The uploads are staged exactly as :func:`.run.generate` stages them and read
by the same code (:func:`manga2music.sections.find_sections`,
:func:`manga2music.pages.load_page`), so what the gallery shows is what the
describer will see: archives opened, PDF pages rendered, strips tiled.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from . import messages
from .run import hidden_uploads, stage_uploads, upload_name, upload_order_note

#: the gallery shows at most this many pages (reading a page decodes it in full)
MAX_THUMBNAILS = 40
#: the long side of a thumbnail, in pixels
THUMBNAIL_SIDE = 320


@dataclass
class Preview:
    thumbnails: list = field(default_factory=list)  # (PIL image, caption)
    pages: int = 0  # readable pages seen (up to MAX_THUMBNAILS + the ones not opened)
    problems: list[str] = field(default_factory=list)  # scrubbed: "fake.png: not a readable image"
    more: int = 0  # pages not opened for a thumbnail
    order: str = ""  # pages read in the order uploaded, and why ("" when in the order of their names)

    def note(self) -> str:
        """A line under the gallery (empty when all is well)."""
        said = list(dict.fromkeys(self.problems))  # an archive's reason once, not once a page (a password)
        problems = messages.shown("; ".join(said[:5]))  # names from the uploads: plain text
        if len(said) > 5:
            problems += f" and {len(said) - 5} more"
        if not self.pages and self.problems:
            return f"No readable page among the uploads ({problems}). {messages.UPLOAD_HINT}"
        lines = [messages.shown(self.order)] if self.order else []
        if self.more:
            lines.append(f"… and {self.more} more page{'s' if self.more != 1 else ''}.")
        if self.problems:
            lines.append(f"Will be skipped: {problems}.")
        return "\n\n".join(lines)


def preview(uploads: Iterable[str | Path], work_root: Optional[Path] = None,
            hidden: Iterable[str | Path] = ()) -> Preview:
    """Read the uploads as a run would and make thumbnails; never raises for bad uploads."""
    from ..errors import Manga2MusicError
    from ..sections import find_sections

    uploads = [Path(u) for u in uploads]
    result = Preview()
    if not uploads:
        return result
    order = upload_order_note(uploads)
    result.order = f"{order}." if order else ""
    if work_root is not None:
        Path(work_root).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="manga2music-preview-", dir=work_root))
    hide = [staging, *hidden]
    try:
        folder = stage_uploads(uploads, staging / upload_name(uploads, hidden))
        skipped: list[str] = []  # an archive with no page in it (a download that failed), a Kindle book: said

        def said(line: str) -> None:
            if line.startswith("Skipping ") and (text := messages.scrub(line[len("Skipping "):], hide)) \
                    and text not in skipped:
                skipped.append(text)

        try:
            sections = find_sections([folder], warn=said)
        except Manga2MusicError:
            named = ", ".join(u.name for u in uploads[:3])  # what was said of them, else that none of them reads
            result.problems += skipped + hidden_uploads(uploads) or [f"none of {named} is an image, comic archive, "
                                                                     ".pdf or .epub"]
            return result
        result.problems += skipped + hidden_uploads(uploads)
        for section in sections:
            _add_section(section, result, several=len(sections) > 1, hide=hide)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _add_section(section, result: Preview, *, several: bool, hide: list) -> None:
    from ..errors import PageError
    from ..pages import load_page

    if section.error:  # a damaged archive or PDF
        result.problems.append(messages.scrub(section.error, hide))
    for page in section.pages:
        if len(result.thumbnails) >= MAX_THUMBNAILS:
            result.more += 1
            result.pages += 1
            continue
        try:
            loaded = load_page(page)
        except PageError as exc:
            result.problems.append(messages.scrub(exc.message, hide))
            continue
        result.pages += 1
        image = loaded.tiles[0].copy() if len(loaded.tiles) == 1 else _stack(loaded.tiles)
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        shown = page.name
        if page.frame is not None and (tiff := re.fullmatch(r"(.*) \(page (\d+)\)", page.name)):
            shown = f"page {tiff.group(2)} · {tiff.group(1)}"  # what tells a TIFF's pages apart first: a caption
            # is cut at its end ("scan.tif (pa…" for each)
        caption = f"{section.name.split('/', 1)[-1]} · {shown}" if several else shown
        result.thumbnails.append((image, caption))


def _stack(tiles: list):
    """A tiled strip shown whole again (its first 3 tiles), so the thumbnail looks like the upload."""
    from PIL import Image

    tiles = tiles[:3]
    width = max(t.width for t in tiles)
    canvas = Image.new("RGB", (width, sum(t.height for t in tiles)), "white")
    top = 0
    for tile in tiles:
        canvas.paste(tile, (0, top))
        top += tile.height
    return canvas
