"""Per-page readings: what one page of a manga looks like to the builtin describer, and how long it takes to read.

A :class:`PageReading` is a small, stable record per source page (tiles of one
tall strip are merged back into one reading).  The builtin describer builds its
section analysis from these readings, and the chapter soundtrack paces its music
with their ``seconds``.

**Reading time.**  Ikuta et al. (Scientific Reports 13:20291, 2023; 18 readers,
over 99,000 panel views) found that the average time spent on a comic panel is
proportional to the length of the text in it, at a rate that differs from reader
to reader.  So the estimate is linear in the page's characters, plus a fixed time
to look at each panel's picture, divided by the reader's speed::

    seconds = (SECONDS_PER_CHAR * latin_chars + SECONDS_PER_CJK_CHAR * cjk_chars
               + SECONDS_PER_PANEL * max(panels, 1)) / speed

with ``SECONDS_PER_CHAR = 0.05`` (20 characters a second: about 200 English words a
minute, an ordinary silent-reading pace), ``SECONDS_PER_CJK_CHAR = 0.12`` for the
characters of vertical columns (Japanese is read at roughly 400-600 characters a
minute, the range usually quoted for adults; one character carries about as much
as a short English word) and ``SECONDS_PER_PANEL = 1.5``.  These constants are our
own choice, not values from the paper (which reports the linear form and the
per-reader spread, not one rate for everybody); ``speed`` is the user's knob (2.0
reads twice as fast).  Characters come from the text detector's lines (see
:mod:`manga2music.describers.text_detect`: counted from the ink of each horizontal
line, estimated from the shape of vertical columns; the text is not recognised), so
only vertical columns are known to be CJK text: horizontal Japanese, Chinese or
Korean lines are timed as Latin text.  On the 21 lettered Pepper&Carrot pages of
the test set, whose true text is known, the count is 0.83 of it (punctuation and
lines the detector misses are not counted).

**Dialogue.**  ``dialogue`` is the share of a page's reading time that goes to its
text: ``text time / (text time + picture time)``, so 1 means the page is carried
by its words and 0 means it is purely visual.

**Energy** (0..1) is a weighted sum of ramps over the page's pixel measurements
(:data:`ENERGY_WEIGHTS`): bundled speed/focus lines, big lettering (sound effects
and shouting: big for the page's long side and, on a page with dialogue, for its
ordinary lettering too; a big line that reads as ordinary words, such as a title,
a credit or a sign, is not loud: see :mod:`manga2music.describers.text_recognition`),
solid blacks, slanted panels, diagonal line work and busy edges.

**Photos.**  A photo of a page (the sheet on a darker table, tilted, unevenly lit)
or a scan with a dark surround is read as the page cut out of it, straightened and
evenly lit, and its reading says ``cut_out``; a scan whose paper reaches the
image's edge is read as it is (see :mod:`manga2music.describers.page_photo`).

Import cost: this module imports nothing heavy; OpenCV, numpy and the text
detector load on the first :func:`read_page`.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

#: bump when a formula or a constant here, in page_features, text_detect, text_recognition or page_photo changes
READING_MODEL_VERSION = "reading-22"
#: threads that read a section's pages at once (one per core, up to this many): the detector runs on one core per
#: thread, and each thread holds one page and the detector's work on it: peak memory reading 16 real pages was
#: 328 MB on one thread, 445 MB on two, 641 MB on four
READING_THREADS = 4

SECONDS_PER_CHAR = 0.05  # seconds to read one character of text at speed 1.0
SECONDS_PER_CJK_CHAR = 0.12  # ... one character of a vertical (Japanese) column: about 500 a minute
SECONDS_PER_PANEL = 1.5  # seconds to look at one panel's picture at speed 1.0
#: a text line taller than this fraction of the page's long side is loud (sound effects, shouting).  Pages and strips
#: are seen scaled to fit their long side, so this is how big lettering looks; on an A-series page it is the
#: 0.036 of sqrt(width * height) this used to be, while a small 640 x 199 strip's ordinary lettering is not loud
LOUD_LETTERING = 0.0303
LOUD_OVER_ORDINARY = 1.5  # ... and at least 1.5 times the page's ordinary lettering (its lower-quartile line height)
ORDINARY_MIN_LINES = 4  # ... when the page has this many text lines (fewer: sound effects alone, no dialogue)
#: a loud line at least this many times as long as it is thick may be words (a heading, a credit, a sign): it is read
WORDS_LENGTH = 2.5

#: energy = sum of weight * ramp(measure, low, high); the weights add up to 1
ENERGY_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "speed_lines": (0.30, 0.5, 6.0),  # bundled long strokes per page length (page_features)
    "loud_text": (0.20, 0.0, 0.08),  # page fraction covered by big lettering
    "black": (0.15, 0.02, 0.30),  # solid black
    "panel_slant": (0.15, 0.05, 0.30),  # share of the frames' length that is tilted
    "diagonal": (0.10, 0.36, 0.46),  # share of diagonal edge energy (0.5 = random texture)
    "edge_density": (0.10, 0.05, 0.14),
}


def ramp(x: float, low: float, high: float) -> float:
    """0 below ``low``, 1 above ``high``, linear between."""
    return min(1.0, max(0.0, (x - low) / (high - low)))


def reading_seconds(text_chars: int, panels: int, *, speed: float = 1.0, cjk_chars: int = 0) -> float:
    """Estimated seconds to read a page (see the module docstring for the formula and its constants)."""
    import numbers

    if isinstance(speed, bool) or not isinstance(speed, numbers.Real) or not 0 < speed < float("inf"):  # NaN too
        # (numpy's numbers are numbers)
        raise ValueError(f"reading speed must be a positive number, got {speed!r}")
    return (_text_time(text_chars, cjk_chars) + SECONDS_PER_PANEL * max(1, panels)) / speed


def _text_time(text_chars: int, cjk_chars: int) -> float:
    """Seconds to read ``text_chars`` characters, ``cjk_chars`` of them in vertical CJK columns."""
    cjk = min(max(0, cjk_chars), max(0, text_chars))
    return SECONDS_PER_CHAR * (max(0, text_chars) - cjk) + SECONDS_PER_CJK_CHAR * cjk


def dialogue_share(text_chars: int, panels: int, cjk_chars: int = 0) -> float:
    """The share of reading time that goes to the text, 0..1."""
    text = _text_time(text_chars, cjk_chars)
    return text / (text + SECONDS_PER_PANEL * max(1, panels))


def energy_score(measures: dict) -> float:
    """How intense the artwork looks, 0..1 (see :data:`ENERGY_WEIGHTS`)."""
    return sum(w * ramp(float(measures.get(k, 0.0)), lo, hi) for k, (w, lo, hi) in ENERGY_WEIGHTS.items())


@dataclass(frozen=True)
class PageReading:
    """One source page as the builtin describer reads it (all numbers JSON-ready)."""

    name: str  # page name ("003.png"); tiles of one strip are merged: one reading per source page
    energy: float  # 0..1, how intense the artwork looks (speed lines, loud lettering, blacks, slanted panels...)
    text_boxes: int  # text lines detected
    text_area: float  # fraction of the page area covered by text boxes, 0..1
    text_chars: int  # characters of text, counted from the lines' ink or estimated from their shape (no recognition)
    dialogue: float  # 0..1, 1 = the page is carried by its text, 0 = purely visual
    panels: int  # panel count
    colour: bool  # a colour page
    brightness: float  # mean luminance 0..1 after colour normalisation (paper colour divided out)
    seconds: float  # estimated reading time at speed 1.0 (see reading_seconds)
    # additions beyond the agreed contract (optional when reading old records)
    loud_text: float = 0.0  # fraction of the page covered by big lettering (sound effects, shouting)
    cjk_chars: int = 0  # the part of text_chars in vertical columns (Japanese), read more slowly
    tiles: int = 1  # how many tiles of a tall strip were merged into this reading
    text_detected: bool = True  # False when the text detector could not read this page (text fields are 0)
    warning: str = ""  # why, when text_detected is False
    #: where the text is: each region a group of nearby lines (a balloon, a caption, a sound effect) as
    #: [x, y, width, height] in fractions of the page (a strip's tiles: of the whole strip), largest first
    text_regions: list = field(default_factory=list)
    #: True when the page lay on a darker background (a photo of it, a scan with the lid open): the sheet was cut
    #: out, straightened and evenly lit before it was read (see :mod:`.describers.page_photo`)
    cut_out: bool = False
    measures: dict = field(default_factory=dict, compare=False)  # the raw pixel measurements (page_features)
    #: a tall strip's tiles, each read on its own (``PageReading.to_dict()`` of each, named ``"strip.png#2"``), top
    #: to bottom; empty for an ordinary page.  The chapter score cuts scenes and times the read-along page by them.
    parts: list = field(default_factory=list, compare=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        if not d["parts"]:
            del d["parts"]  # an ordinary page's record (and every fingerprint made of it) stays as it was
        return d

    def part_readings(self) -> list["PageReading"]:
        """Each tile of a tall strip as its own reading, top to bottom ([] for an ordinary page, and for a strip
        read before 2026-11-30, whose record has no parts)."""
        return [PageReading.from_dict(d) for d in self.parts]

    @classmethod
    def from_dict(cls, d: dict) -> "PageReading":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def reading_seconds(self, *, speed: float = 1.0) -> float:
        """This page's reading time at another reading speed."""
        return reading_seconds(self.text_chars, self.panels, speed=speed, cjk_chars=self.cjk_chars)


def renamed(reading: PageReading, name: str) -> PageReading:
    """``reading`` of a page now named ``name``, its strip's parts ("old.png#2") renamed with it."""
    if reading.name == name:
        return reading
    parts = [{**part, "name": name + str(part.get("name", ""))[len(reading.name):]} for part in reading.parts]
    return replace(reading, name=name, parts=parts)


def _rgb(image: "Image") -> "Image":
    return image if image.mode == "RGB" else image.convert("RGB")


def _detect(image: "Image") -> tuple[Optional[list], Optional[str], bool]:
    """The text boxes of one image, its big lines read (:func:`big_lines_read`), or None and the reason when the
    detector fails; and whether the recogniser read every line it was asked to."""
    import numpy as np

    from .describers.text_detect import TextDetectionError, detect_text

    rgb = np.asarray(_rgb(image))
    try:
        boxes = detect_text(rgb)
    except TextDetectionError as err:
        return None, str(err), False
    boxes, read = _big_lines_read(rgb, boxes)
    return boxes, None, read


def big_lines_read(rgb, boxes: list) -> list:
    """``boxes`` with the text of their loud lines read, where the recogniser can: only to tell headings from
    sound effects (see :mod:`.describers.text_recognition`).  If it cannot run, the boxes are returned unread and
    their lettering counts as loud, as it did before recognition was used."""
    return _big_lines_read(rgb, boxes)[0]


def _big_lines_read(rgb, boxes: list) -> tuple[list, bool]:
    """:func:`big_lines_read`, and whether the recogniser ran (True when no line needed it)."""
    from .describers.text_recognition import with_text_read

    loud = loud_height(boxes, (rgb.shape[1], rgb.shape[0]))
    wanted = [b.thickness >= loud and b.length >= WORDS_LENGTH * b.thickness for b in boxes]
    if not any(wanted):
        return boxes, True
    try:
        return with_text_read(rgb, boxes, wanted), True
    except Exception:  # noqa: BLE001 - any failure of the optional recogniser (onnxruntime raises its own types)
        return boxes, False


def loud_height(boxes: list, size: tuple[int, int]) -> float:
    """The letter height (pixels) from which a line on an image of ``size`` is loud: :data:`LOUD_LETTERING` of its
    long side and, with :data:`ORDINARY_MIN_LINES` lines or more, :data:`LOUD_OVER_ORDINARY` times its ordinary
    lettering."""
    from .describers.text_detect import ordinary_thickness

    height = LOUD_LETTERING * max(size)
    if len(boxes) >= ORDINARY_MIN_LINES:  # loud is also bigger than this page's own ordinary lettering
        height = max(height, LOUD_OVER_ORDINARY * ordinary_thickness(boxes))
    return height


def _text_numbers(boxes: list, size: tuple[int, int]) -> dict:
    from .describers.text_detect import text_regions
    from .describers.text_recognition import headings

    w, h = size
    page = float(w * h)
    loud = loud_height(boxes, size)
    quiet = headings(boxes)
    return {
        "text_boxes": len(boxes),
        "text_area": min(1.0, sum(b.width * b.height for b in boxes) / page),
        "text_chars": sum(b.characters() for b in boxes),
        "cjk_chars": sum(b.characters() for b in boxes if b.vertical),
        "loud_text": min(1.0, sum(b.width * b.height for i, b in enumerate(boxes)
                                  if b.thickness >= loud and i not in quiet) / page),
        "regions": text_regions(boxes),
    }


def read_page(image: "Image | list[Image] | str | os.PathLike", name: str = "") -> PageReading:
    """Read one page.  ``image`` is a PIL image, or the list of tiles of one tall strip (top to bottom),
    which are measured one by one and merged into a single reading (counts add up, the rest is
    averaged by tile area), or the path of a page file (read as ``run`` reads it, see :func:`read_pages`; named
    after the file unless ``name`` is given).  If the text detector fails, the reading says ``text_detected=False``
    with zero text, and every other field is measured as usual.  A page read before by this same reader is not
    read again (:mod:`.reading_cache`).
    """
    if isinstance(image, (str, os.PathLike)):
        name = name or os.path.basename(os.fspath(image))
        held = _tiff_pages(image)
        if held > 1:  # said before its pages are opened as images (their own check told the caller to give the
            # file's path: what was given)
            raise ValueError(f"{os.path.basename(os.fspath(image))} holds {held} pages; read_page reads one "
                             "(read_pages reads each of them)")
        pages = group_tiles(_file_tiles(image))
        if len(pages) > 1:  # a multi-page TIFF: its pages were read as the tiles of one page, their seconds added
            raise ValueError(f"{os.path.basename(os.fspath(image))} holds {len(pages)} pages; read_page reads one "
                             "(read_pages reads each of them)")
        tiles = pages[0][1] if pages else []
    elif isinstance(image, tuple) and len(image) == 2 and isinstance(image[0], str) \
            and hasattr(image[1], "size"):  # a (name, image) pair, as read_pages takes (it was "for several page
        return read_page(image[1], name or image[0])  # files use read_pages")
    elif isinstance(image, (list, tuple)):
        name = name or "page 1"
        tiles = [_as_a_file_reads(tile) for tile in image]
    else:
        name = name or opened_from(image) or "page 1"  # its reading was named "" (read_pages names it)
        tiles = _strip_tiles(_as_a_file_reads(image))
    if not tiles:
        raise ValueError("read_page needs an image or a non-empty list of tiles")
    if any(isinstance(tile, (str, os.PathLike)) for tile in tiles):
        raise TypeError("read_page reads one page (an image, its tiles, or one page file); for several page files "
                        "use read_pages")
    for k, tile in enumerate(tiles, start=1):
        _given(k, (name or f"tile {k}", tile))  # a PIL image of at least one pixel, or a clear error
    (_, outcome), = iter_readings([(name, tiles)])  # the one way a page is read: kept readings found, new ones kept
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def opened_from(image) -> str:
    """The name of the file a PIL image was opened from (``Image.open``), else ""."""
    filename = getattr(image, "filename", "")
    return os.path.basename(filename) if isinstance(filename, str) else ""


def as_read(tiles: list) -> tuple[list, bool]:
    """The tiles the reader measures: a single image of a sheet on a darker background (a photo of a page) becomes
    the page cut out of it (:func:`.describers.page_photo.as_scanned`); anything else is read as it is.  Also says
    which it was."""
    if len(tiles) != 1:  # a strip's tiles are never a photo
        return tiles, False
    from .describers.page_photo import as_scanned

    try:
        sheet = as_scanned(_rgb(tiles[0]))
    except Exception:  # noqa: BLE001 - looking for a sheet is an extra: if it fails, the image is read as it is
        sheet = None
    return ([tiles[0]], False) if sheet is None else ([sheet], True)


def _read_tile(tile) -> tuple:
    """One tile's part of a reading, its text detected, then its pixels measured: ``(size, pixel measures, text
    numbers, warning, complete)`` (the work :func:`iter_readings` hands its threads); ``complete``: the detector
    and the recogniser both did their part (a reading that may be kept, :mod:`.reading_cache`)."""
    from .describers.page_features import measure_page

    boxes, warning, complete = _detect(tile)
    return (tile.size, measure_page(_rgb(tile), boxes or ()), _text_numbers(boxes or [], tile.size), warning or "",
            complete)


def _of_parts(parts: list, name: str, *, cut_out: bool = False) -> PageReading:
    """One reading of a page's tiles' parts (:func:`_read_tile`); a tall strip's reading also holds each of its
    tiles' own (``parts``: where the chapter score cuts scenes inside a strip)."""
    reading = _merged(parts, name, cut_out=cut_out)
    if len(parts) > 1:
        reading = replace(reading, parts=[_merged([part], tile_name(name, k)).to_dict()
                                          for k, part in enumerate(parts, start=1)])
    return reading


def _merged(parts: list, name: str, *, cut_out: bool = False) -> PageReading:
    """One reading of tiles stacked top to bottom, each ``(size, pixel measures, text numbers, warning, ...)``: means
    weighted by tile area, counts summed, text regions in fractions of the whole."""
    from .describers.text_detect import MAX_REGIONS

    areas = [w * h for (w, h), *_ in parts]
    total = float(sum(areas)) or 1.0

    def mean(key: str, source: int) -> float:
        return sum(a * p[source][key] for a, p in zip(areas, parts)) / total

    first = parts[0][1]
    measures = {k: round(mean(k, 1), 4) for k, v in first.items() if isinstance(v, (int, float))
                and not isinstance(v, bool)}
    measures["panel_count"] = sum(p[1]["panel_count"] for p in parts)
    measures["is_colour"] = any(p[1]["is_colour"] for p in parts)
    measures["paper"] = first.get("paper")
    measures["height"] = sum(p[1]["height"] for p in parts)
    width, height, top = max(w for (w, _), *_ in parts), sum(h for (_, h), *_ in parts), 0
    regions = []
    for (_, tile_height), _, numbers, *_ in parts:  # in fractions of the whole page, tiles stacked top to bottom
        regions += [[round(x / width, 4), round((top + y) / height, 4), round(w / width, 4), round(h / height, 4)]
                    for x, y, w, h in numbers["regions"]]
        top += tile_height
    regions.sort(key=lambda r: -r[2] * r[3])
    chars = sum(p[2]["text_chars"] for p in parts)
    cjk = sum(p[2]["cjk_chars"] for p in parts)
    panels = int(measures["panel_count"])
    loud = mean("loud_text", 2)
    warnings = [p[3] for p in parts if p[3]]
    return PageReading(
        name=name,
        energy=round(energy_score({**measures, "loud_text": loud}), 4),
        text_boxes=sum(p[2]["text_boxes"] for p in parts),
        text_area=round(mean("text_area", 2), 4),
        text_chars=chars,
        dialogue=round(dialogue_share(chars, panels, cjk), 4),
        panels=panels,
        colour=bool(measures["is_colour"]),
        brightness=round(float(measures["brightness"]), 4),
        seconds=round(reading_seconds(chars, panels, cjk_chars=cjk), 2),
        loud_text=round(loud, 4),
        cjk_chars=cjk,
        tiles=len(parts),
        text_detected=not warnings,
        warning="; ".join(dict.fromkeys(warnings)),
        text_regions=regions[:MAX_REGIONS],
        cut_out=cut_out,
        measures=measures,
    )


#: a tile of a tall strip is named after its page and its number from 1: "episode.png#3".  Only a "#" and digits at
#: the very end name a tile (page files end in their extension, so "Vol.1 #03.png" is a page, not a tile), right
#: after the page's name: "Page #1", "Page #2" are pages (read as the tiles of a page "Page ", they were one)
_TILE_NAME = re.compile(r"^(.*\S)#(\d+)$")


def tile_name(page: str, number: int) -> str:
    """The name of tile ``number`` (from 1) of the tall strip ``page``."""
    return f"{page}#{number}"


def split_tile_name(name: str) -> tuple[str, Optional[int]]:
    """``("strip.png", 2)`` for the tile name ``"strip.png#2"``; ``(name, None)`` for a page's own name."""
    match = _TILE_NAME.match(name)
    return (match.group(1), int(match.group(2))) if match else (name, None)


def source_name(name: str) -> str:
    """The source page of a tile name: ``"strip.png#2"`` -> ``"strip.png"`` (a page's own name is returned as it is,
    "#" and all)."""
    return split_tile_name(name)[0]


def _given(i: int, item: Any) -> tuple[Optional[str], Any]:
    """``(name, image)`` of the ``i``-th item given to :func:`read_pages`, or ``(None, path)`` for a page file (its
    tiles are named when it is decoded)."""
    if isinstance(item, (str, os.PathLike)):
        return None, item
    if hasattr(item, "image") and hasattr(item, "name"):  # describers.base.PageImage
        return item.name, item.image
    if isinstance(item, tuple) and len(item) == 2:
        name, image = str(item[0]), item[1]
    else:
        name, image = opened_from(item) or f"page {i}", item
    if not (hasattr(image, "size") and hasattr(image, "mode")):
        raise TypeError(f"{name}: a page is a PIL image, a (name, image) pair, a PageImage or a page file's path, "
                        f"not {type(image).__name__}")
    if min(image.size) < 1:
        raise ValueError(f"{name}: an empty image ({image.size[0]} x {image.size[1]} pixels)")
    return name, image


def _named(images: Iterable[Any]) -> Iterator[tuple[str, "Image"]]:
    """``(name, image)`` for each item as it arrives (never all at once: ``images`` may be a one-pass stream)."""
    for i, item in enumerate(images, start=1):
        name, image = _given(i, item)
        if name is None:  # a page file, read as a run reads it
            yield from _file_tiles(image)
        elif hasattr(item, "image"):  # a describer's PageImage: already a tile, named as one
            yield name, image
        elif split_tile_name(name)[1] is not None:  # a tile of the caller's own cutting ("x.png#2"): one tile, as
            yield name, _as_a_file_reads(image)  # named (cut again, a tile over 2.5 times as tall as wide became
            # "x.png#2#1"..., and the page's tiles no longer went together)
        else:  # an image of the caller's: made upright and flat as its file would be, a tall strip cut
            yield from _tiles_named(name, _strip_tiles(_as_a_file_reads(image)))


def _tiff_pages(path) -> int:
    """How many pages the TIFF file at ``path`` holds (1 for any other file, or one PIL cannot open)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1)) if image.format == "TIFF" else 1
    except (OSError, ValueError, Image.DecompressionBombError):
        return 1


def _as_a_file_reads(image):
    """A caller's PIL image as :func:`.pages.decode_page` makes its file: turned upright by its EXIF orientation,
    transparency laid on white paper, 8-bit RGB (anything that is not a PIL image is left to fail later)."""
    if not (hasattr(image, "getexif") and hasattr(image, "mode")):
        return image
    if getattr(image, "format", None) == "TIFF" and getattr(image, "n_frames", 1) > 1:  # a scanner's multi-page TIFF
        # opened with PIL: its first page alone was read, the others dropped unsaid (its file reads each)
        named = os.path.basename(getattr(image, "filename", "") or "") or "the TIFF image"
        raise ValueError(f"{named} holds {image.n_frames} pages; give its file's path: read_pages reads each of them")
    from .pages import to_rgb

    if image.getexif().get(0x0112, 1) != 1:
        from PIL import ImageOps

        image = ImageOps.exif_transpose(image)
    return to_rgb(image)


def _strip_tiles(image) -> list:
    from .pages import tile_strip

    return tile_strip(image) if hasattr(image, "size") and hasattr(image, "crop") else [image]


def _tiles_named(name: str, tiles: list) -> Iterator[tuple[str, "Image"]]:
    if len(tiles) == 1:
        yield name, tiles[0]
    else:
        for k, tile in enumerate(tiles, start=1):
            yield tile_name(name, k), tile


def _file_tiles(path) -> Iterator[tuple[str, "Image"]]:
    """A page file's tiles as ``run`` decodes them (turned by its EXIF orientation, transparency on white paper, a
    tall strip cut into tiles), named after the file (``"strip.png#1"``... for a strip).  Raises
    :class:`~manga2music.errors.PageError` when the file cannot be read as an image."""
    from pathlib import Path

    from .errors import PageError
    from .files import readable
    from .pages import load_page
    from .sections import PDF_EXTENSIONS, SOURCE_EXTENSIONS, Page, _with_tiff_pages, source_suffix

    path = Path(path)
    suffix = source_suffix(path.name)
    if suffix in SOURCE_EXTENSIONS:  # it was "not a readable image (unknown or damaged image data)"
        kind = "a PDF" if suffix in PDF_EXTENSIONS else "an EPUB" if suffix == ".epub" else "a comic archive"
        raise PageError(f"{readable(path)} is {kind}, not a page image: give its pages' files, or let "
                        "manga2music.describe or manga2music.score read it")
    if path.is_dir():  # it was "not a regular file (not a file)": every command takes a folder
        raise PageError(f"{readable(path)} is a folder, not a page image: give its pages' files "
                        f"(sorted(Path({str(path)!r}).glob('*.png')), for example), or let manga2music.describe or "
                        "manga2music.score read it")
    for page in _with_tiff_pages([Page(path.name, path)]):  # a multi-page TIFF: each of its pages, as run reads it
        yield from _tiles_named(page.name, load_page(page).tiles)


def iter_groups(images: Iterable[Any]) -> Iterator[tuple[str, list]]:
    """``(source page name, [tiles])`` in order, as the images arrive: ``"x.png#1"``, ``"x.png#2"``... numbered one
    after another go together (a ``#1`` starts a new page: two strips of one name from two folders stay two); any
    other name, ``"issue #5"`` too, is a page of its own, named as given.  Holds one page's tiles at a time
    (``images`` may be a one-pass stream)."""
    current: Optional[tuple[str, list]] = None
    state = None
    for name, image in _named(images):
        new, state = _grouped(name, state)
        if not new and current is not None:
            current[1].append(image)
            continue
        if current is not None:
            yield current
        current = (state[0], [image])
    if current is not None:
        yield current


def _grouped(name: str, state: Optional[tuple[str, Optional[int]]]) -> tuple[bool, tuple[str, Optional[int]]]:
    """Whether ``name`` starts a new source page after the one ``state`` describes (its name, and the number of its
    last tile, None when it is no strip), and the state after it."""
    source, number = split_tile_name(name)
    if state is not None and state[1] is not None and number == state[1] + 1 and source == state[0]:
        return False, (source, number)
    return True, ((source, 1) if number == 1 else (name, None))


def group_tiles(images: Iterable[Any]) -> list[tuple[str, list]]:
    """:func:`iter_groups` as a list (every page held at once: for small sets)."""
    return list(iter_groups(images))


def iter_readings(groups: Iterable[tuple[str, list]], *, with_tiles: bool = False) -> Iterator[tuple]:
    """``(name, reading)`` for each ``(name, tiles)`` group, in order; an unreadable page gives
    ``(name, error)`` instead (OSError or ValueError) and the others go on.  With ``with_tiles``:
    ``(name, tiles, reading)``.

    Tiles are read (text detection, then the pixel measures) on :func:`reading_threads` threads, one tile
    each, while this thread decodes the pages that follow: on two cores the samples' 12 images took 0.62 of
    the time they take on one thread.  Pages are decoded only as far ahead as the threads need: at most one page
    per thread and the one handed out are held at any moment, whatever the section's length.  Each image is
    loaded here before a thread gets it (one image given as two tiles is then never decoded by two threads).
    A page read before by this same reader is not read again: its kept reading is given (:mod:`.reading_cache`).
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from . import reading_cache

    threads = reading_threads()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="page-reading") as pool:
        it = iter(groups)
        ahead: deque = deque()  # (name, tiles, cut_out, futures), in order
        more = True

        def busy() -> int:
            return sum(not f.done() for *_, futures in ahead if isinstance(futures, list) for f in futures)

        try:
            while True:
                while more and len(ahead) < threads and (not ahead or busy() < threads):
                    group = next(it, None)
                    if group is None:
                        more = False
                        break
                    name, tiles = group
                    try:
                        for tile in tiles:
                            tile.load()  # decoded here: Pillow's lazy loading is not for two threads at once
                        key = reading_cache.page_key(tiles)
                        kept = reading_cache.recall(key, name)
                        if kept is not None:  # read before, by this same reader: not read again
                            ahead.append((name, tiles, False, kept, None))
                            continue
                        read, cut_out = as_read(tiles)
                        for tile in read:
                            tile.load()  # a page cut out of a photo: decoded here too
                    except (OSError, ValueError) as err:
                        ahead.append((name, tiles, False, err, None))
                        continue
                    ahead.append((name, tiles, cut_out, [pool.submit(_read_tile, tile) for tile in read], key))
                if not ahead:
                    return
                name, tiles, cut_out, futures, key = ahead[0]
                try:
                    if isinstance(futures, Exception):
                        raise futures
                    if isinstance(futures, PageReading):
                        outcome = futures
                    else:
                        parts = [f.result() for f in futures]
                        outcome = _of_parts(parts, name, cut_out=cut_out)
                        if all(part[4] and not part[3] for part in parts):  # complete: kept for next time
                            reading_cache.keep(key, outcome)
                except (OSError, ValueError) as err:
                    outcome = err
                ahead.popleft()
                yield (name, tiles, outcome) if with_tiles else (name, outcome)
        finally:
            for *_, futures in ahead:  # a consumer that stops early leaves nothing queued
                for f in futures if isinstance(futures, list) else ():
                    f.cancel()


def reading_threads() -> int:
    """Threads that read pages at once: one per core this process may use (:func:`.hardware.thread_budget`), at
    most :data:`READING_THREADS`; each holds one tile and runs the detector on one core."""
    from .hardware import thread_budget

    return max(1, min(READING_THREADS, thread_budget()))


def read_pages(images: Iterable[Any], *, progress: Optional[Callable[[int, int, str], None]] = None) -> list[PageReading]:
    """Readings for a section's pages, in order, one per source page.

    ``images`` may hold PIL images (named after the file each was opened from, else "page 1", "page 2"...),
    ``(name, image)`` pairs,
    :class:`~manga2music.describers.base.PageImage` objects or paths of page files (read as ``run`` reads a page,
    named after the file; one that is not an image raises :class:`~manga2music.errors.PageError`), or be one page
    file's path or one image.  Anything else raises TypeError, an empty image ValueError, before any page is read.  A tall strip, given as a file or as an image, is cut into page-shaped tiles.  Consecutive
    tiles named ``"x.png#1"``, ``"x.png#2"``... (a tall strip's file is cut into them) are merged into one reading
    named ``"x.png"``.
    ``progress(done, total, name)`` is called after each source page; ``total`` is 0 when ``images`` is a one-pass
    stream (a generator), which is read as it comes, one page held at a time.
    """
    from .progress import report

    one = isinstance(images, (str, os.PathLike)) or (hasattr(images, "size") and hasattr(images, "mode"))
    if one:  # one page file, or one image, given alone
        items: Iterable[Any] = [images]
    elif hasattr(images, "__len__"):  # a list: checked whole, and its length known (page files are decoded one at
        items = list(images)  # a time as they are read, never all at once)
    else:  # a one-pass stream (a generator): read as it comes, one page held at a time; its length is not known
        items = images
    total = _count_pages(items) if isinstance(items, list) else 0
    readings = []
    for i, (name, outcome) in enumerate(iter_readings(iter_groups(items)), start=1):
        if isinstance(outcome, Exception):
            raise outcome
        readings.append(outcome)
        report(progress, i, total, name)
    return readings


def _count_pages(items: list) -> int:
    """How many source pages :func:`iter_groups` makes of ``items``, from their names alone (nothing decoded)."""
    from pathlib import Path

    from .sections import Page, _with_tiff_pages

    count, state = 0, None
    for i, item in enumerate(items, start=1):
        name = _given(i, item)[0]
        if name is None:  # a file is one source page (a strip's tiles come from it together), a multi-page TIFF
            count += len(_with_tiff_pages([Page(Path(item).name, Path(item))]))  # its pages (headers only)
            state = None
            continue
        new, state = _grouped(name, state)
        count += new
    return count
