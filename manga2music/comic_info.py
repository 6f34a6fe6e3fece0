"""A comic archive's ``ComicInfo.xml``: which way its pages turn.

ComicRack's metadata file (the Anansi Project's schema, written by Komga, Kavita, Mylar and most manga
downloaders) lies at the root of a CBZ/CBR/CB7/CBT, or beside the pages of an unpacked chapter.  Its ``Manga``
element says ``YesAndRightToLeft`` for a manga whose pages turn right to left, ``No`` for a comic that is no
manga (left to right); ``Yes`` and ``Unknown`` do not say which way.  Nothing else of it is used.  Parsed with
the standard library (expat >= 2.4.1 refuses entity-expansion bombs), at most :data:`MAX_BYTES`.
"""

from __future__ import annotations

import posixpath
from typing import Iterable, Optional

NAME = "comicinfo.xml"  # as it is looked for: its case varies ("ComicInfo.xml", "comicinfo.xml")
MAX_BYTES = 1024 * 1024
_DIRECTIONS = {"yesandrighttoleft": "rtl", "no": "ltr"}


def reading_direction(data: bytes) -> Optional[str]:
    """``"rtl"``, ``"ltr"`` or None (it does not say, or cannot be read) for the bytes of a ComicInfo.xml."""
    import xml.etree.ElementTree as ET

    if len(data) > MAX_BYTES:
        return None
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError):
        return None
    manga = next((e for e in root if e.tag.rsplit("}", 1)[-1] == "Manga"), None)
    return _DIRECTIONS.get((manga.text or "").strip().lower()) if manga is not None else None


def nearest(names: Iterable[str], member: str) -> Optional[str]:
    """Of an archive's entry ``names``, the ComicInfo.xml nearest to the page ``member``: in its folder, else in the
    folders above it, up to the archive's root; None when there is none."""
    by_folder = {}
    for name in names:
        folder, base = posixpath.split(name.replace("\\", "/"))
        if base.lower() == NAME:
            by_folder.setdefault(folder.strip("/"), name)
    folder = posixpath.dirname(member.replace("\\", "/")).strip("/")
    while True:
        if folder in by_folder:
            return by_folder[folder]
        if not folder:
            return None
        folder = posixpath.dirname(folder)
