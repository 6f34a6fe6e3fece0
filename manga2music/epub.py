"""The pages of an EPUB book in reading order.

An EPUB is a zip.  ``META-INF/container.xml`` names the book's package file (``.opf``), whose *spine* lists the
book's documents in reading order; a manga or comic EPUB (Kindle Comic Converter's, a publisher's fixed-layout
book) has one document per page, each showing one picture (``<img src>`` in XHTML, ``<image xlink:href>`` in SVG,
or, in a document without either, a CSS background), and a spine entry may be a picture itself.  The pages are
those pictures, in spine order, each once; entries the book marks ``linear="no"`` (asides a reader skips) and
pictures no document shows (a publisher's logo, a thumbnail) are not pages.  Names sorted would not do: the spine
is the only order a book promises.

Only the book's own entries are read: a zip's entries, or for a book unzipped into a folder (:class:`UnpackedBook`)
the regular files inside that folder; every reference is resolved inside the book, one leading out of it or to
another server is not a page.  Documents are read size-capped and parsed with the
standard library (expat >= 2.4.1 refuses entity-expansion bombs; XHTML goes through the forgiving HTML parser).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import zipfile
from functools import cached_property
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Callable
from urllib.parse import unquote, urlsplit

from .files import read_zip_entry

#: the most bytes of one document (container, package or page document) read; a page document is a few KB
MAX_DOCUMENT_BYTES = 8 * 1024**2
#: spine entries that are documents holding pictures; an entry whose type is ``image/...`` is a picture itself
DOCUMENT_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml", "image/svg+xml"}
#: how EPUB's font obfuscation marks fonts in META-INF/encryption.xml (IDPF's and Adobe's): not DRM, pages unharmed
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
#: fonts: a book whose only encrypted entries are fonts still shows its pictures
FONT_SUFFIXES = (".otf", ".ttf", ".woff", ".woff2", ".ttc")

_CONTAINER = "META-INF/container.xml"
_ENCRYPTION = "META-INF/encryption.xml"


class BookError(Exception):
    """The EPUB's reading order cannot be found (no container, no package, no spine): the message says why."""


def is_unpacked_book(folder: Path) -> bool:
    """Whether ``folder`` is an EPUB unpacked into a folder: its ``META-INF/container.xml`` is there."""
    return os.path.isfile(os.path.join(folder, _CONTAINER))


class UnpackedBook:
    """An EPUB unpacked into a folder, read through the three methods of a ``zipfile.ZipFile`` this module uses
    (``namelist``, ``getinfo``, ``open``), so that its pages are found as a zipped book's are.  Only regular files
    inside the folder are entries; links to folders are not followed."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @cached_property
    def _names(self) -> list[str]:
        names = []
        for here, dirs, files in os.walk(self.folder):
            dirs.sort()
            rel = os.path.relpath(here, self.folder)
            names.extend(f if rel == "." else posixpath.join(Path(rel).as_posix(), f) for f in sorted(files))
        return names

    def namelist(self) -> list[str]:
        return list(self._names)

    def getinfo(self, member: str) -> SimpleNamespace:
        """The entry ``member`` (a path inside the book, as :func:`_inside` gives it); KeyError when no regular file
        is there (a FIFO named like a page is never opened)."""
        try:
            info = os.stat(self.folder / member)
        except (OSError, ValueError):
            raise KeyError(member) from None
        if not stat.S_ISREG(info.st_mode):
            raise KeyError(member)
        return SimpleNamespace(filename=member, file_size=info.st_size)

    def open(self, info: SimpleNamespace):
        return open(self.folder / info.filename, "rb")


def _read(zf: zipfile.ZipFile, member: str) -> bytes:
    try:
        data = read_zip_entry(zf, zf.getinfo(member), MAX_DOCUMENT_BYTES)
    except zipfile.BadZipFile as exc:  # damaged: that document's pages are left out, said in a line
        raise BookError(f"{member} cannot be read: {exc}") from exc
    if data is None:
        raise BookError(f"{member} is larger than {MAX_DOCUMENT_BYTES // 1024**2} MB")
    return data


def _xml(zf: zipfile.ZipFile, member: str):
    import xml.etree.ElementTree as ET

    try:
        return ET.fromstring(_read(zf, member))
    except KeyError:
        raise BookError(f"it has no {member}") from None
    except ET.ParseError as exc:
        raise BookError(f"its {member} is not readable XML ({exc})") from None


def _local(tag: str) -> str:
    """An element's or attribute's name without its namespace (``{http://...}rootfile`` -> ``rootfile``)."""
    return tag.rsplit("}", 1)[-1]


def _inside(base: str, reference: str) -> str | None:
    """The zip entry ``reference`` (a URL relative to the entry ``base``, or from the book's top: ``/OEBPS/p1.jpg``,
    as EPUB 3.3 resolves a path that starts with ``/`` inside its container) points to, or None when it leaves the
    book (another server, ``data:``, ``..`` past the top)."""
    parts = urlsplit(reference)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    if parts.path.startswith("/"):  # from the container's top (the page was left out without a word)
        joined = posixpath.normpath(unquote(parts.path).lstrip("/"))
    else:
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), unquote(parts.path)))
    return None if joined in ("..", ".") or joined.startswith("../") else joined


#: a CSS background picture: ``background-image: url(../Images/p1.jpg)`` (or the ``background`` shorthand)
_BACKGROUND = re.compile(r"background(?:-image)?\s*:[^;}]*?url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE)
#: a style sheet's rules: ``selectors { declarations }`` (comments taken out first)
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
#: the class or id a selector's last part names: ``div.page3`` -> ("class", "page3"), ``#p4`` -> ("id", "p4")
_SELECTED = re.compile(r"([.#])([\w-]+)$")


def _background(declarations: str) -> str | None:
    found = _BACKGROUND.search(declarations)
    return found.group(2) if found and found.group(2) else None


def _background_rules(css: str, base: str) -> dict[tuple[str, str], str]:
    """The pictures a style sheet (the entry ``base``, or a document's <style>) puts behind a class or an id: a
    fixed-layout book that shows each page as a <div>'s background."""
    rules: dict[tuple[str, str], str] = {}
    for selectors, declarations in _RULE.findall(re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)):
        src = _background(declarations)
        member = _inside(base, src) if src else None
        if member is None:
            continue
        for selector in selectors.split(","):
            named = _SELECTED.search(selector.strip())
            if named:
                rules[("class" if named.group(1) == "." else "id", named.group(2))] = member
    return rules


class _Pictures(HTMLParser):
    """The pictures a document shows, in document order, as zip entries: ``<img src>``, SVG's ``<image href>`` /
    ``xlink:href`` (``found``), and CSS backgrounds (``behind``: in a ``style`` attribute, or a style sheet's rule
    for an element's class or id, the sheet linked or in a <style>)."""

    def __init__(self, zf: zipfile.ZipFile, member: str) -> None:
        super().__init__(convert_charrefs=True)
        self.zf, self.member = zf, member
        self.found: list[str] = []
        self.behind: list[str] = []
        self.inline = 0  # pictures given as data: URLs
        self.rules: dict[tuple[str, str], str] = {}
        self._style: list[str] | None = None  # the text of the <style> being read

    def _add(self, reference: str | None, behind: bool = False) -> None:
        member = _inside(self.member, reference) if reference else None
        if member is not None:
            (self.behind if behind else self.found).append(member)
        elif reference and not behind and reference.strip()[:5].lower() == "data:":
            self.inline += 1  # a picture written into the document itself: not read, said (page_members)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        name = tag.rsplit(":", 1)[-1]  # "svg:image" in a document that prefixes the SVG namespace
        values = {key: value or "" for key, value in attrs}
        if name == "img" and values.get("src"):
            self._add(values["src"])
        elif name == "image":
            self._add(values.get("xlink:href") or values.get("href"))
        elif name == "link" and "stylesheet" in values.get("rel", "").lower().split():
            self._sheet(values.get("href"))
        elif name == "style":
            self._style = []
        elif behind := _background(values.get("style", "")):
            self._add(behind, behind=True)
        else:
            for key in [("id", values.get("id", ""))] + [("class", c) for c in values.get("class", "").split()]:
                if key in self.rules:
                    self.behind.append(self.rules[key])
                    break

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        if self._style is not None:
            self._style.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._style is not None:
            self.rules.update(_background_rules("".join(self._style), self.member))
            self._style = None

    def _sheet(self, href: str | None) -> None:
        sheet = _inside(self.member, href) if href else None
        if sheet is None:
            return
        try:
            css = _read(self.zf, sheet)
        except (KeyError, BookError):  # a style sheet missing or too large: its pictures are not found, nothing else
            return
        self.rules.update(_background_rules(css.decode("utf-8", errors="replace"), sheet))


def _document_pictures(zf: zipfile.ZipFile, member: str) -> tuple[list[str], int]:
    """The pictures a document shows, and how many more it shows written into itself (``data:`` URLs)."""
    data = _read(zf, member)
    parser = _Pictures(zf, member)
    parser.feed(data.decode("utf-8", errors="replace"))
    parser.close()
    return parser.found or parser.behind, parser.inline  # a background behind a picture is decoration (a paper
    # texture), not a page


def package_path(zf: zipfile.ZipFile) -> str:
    """The book's package file (``.opf``), as its container names it."""
    container = _xml(zf, _CONTAINER)
    for element in container.iter():
        if _local(element.tag) == "rootfile" and element.get("full-path"):
            return posixpath.normpath(element.get("full-path").lstrip("/"))
    raise BookError(f"its {_CONTAINER} names no package file (rootfile)")


def page_progression(zf: zipfile.ZipFile) -> str | None:
    """``"rtl"`` or ``"ltr"``, as the book's spine says its pages turn (``page-progression-direction``: a Japanese
    manga's is ``rtl``); None when it does not say, or has no readable package."""
    try:
        package = _xml(zf, package_path(zf))
    except BookError:
        return None
    spine = next((e for e in package.iter() if _local(e.tag) == "spine"), None)
    direction = (spine.get("page-progression-direction") or "").lower() if spine is not None else ""
    return direction if direction in ("rtl", "ltr") else None


def encrypted_entries(zf: zipfile.ZipFile) -> set[str]:
    """The entries META-INF/encryption.xml lists as encrypted, leaving out fonts (obfuscated the EPUB way, which is
    not DRM, or encrypted: a page's picture needs no font)."""
    if _ENCRYPTION not in zf.namelist():
        return set()
    try:
        root = _xml(zf, _ENCRYPTION)
    except BookError:
        return set()
    found = set()
    for data in root.iter():
        if _local(data.tag) != "EncryptedData":
            continue
        method = next((e.get("Algorithm") for e in data.iter() if _local(e.tag) == "EncryptionMethod"), None)
        uri = next((e.get("URI") for e in data.iter() if _local(e.tag) == "CipherReference"), None)
        if uri and method not in FONT_OBFUSCATION and not uri.lower().endswith(FONT_SUFFIXES):
            found.add(posixpath.normpath(unquote(uri).lstrip("/")))
    return found


def page_members(zf: zipfile.ZipFile, warn: Callable[[str], None] = lambda line: None) -> list[str]:
    """The zip entries of the book's pages, in reading order, each once.

    Raises :class:`BookError` when the book gives no reading order; ``warn`` hears of pictures the book shows but
    does not hold."""
    opf = package_path(zf)
    package = _xml(zf, opf)
    manifest: dict[str, tuple[str, str]] = {}
    spine: list[str] = []
    for element in package.iter():
        kind = _local(element.tag)
        if kind == "item" and element.get("id") and element.get("href"):
            href = _inside(opf, element.get("href"))
            if href is not None:
                manifest[element.get("id")] = (href, (element.get("media-type") or "").lower())
        elif kind == "itemref" and element.get("idref") and element.get("linear", "yes").lower() != "no":
            spine.append(element.get("idref"))
    if not spine:
        raise BookError(f"its package file {opf} has no spine (no reading order)")
    held = set(zf.namelist())
    pages: list[str] = []
    taken: set[str] = set()
    missing: list[str] = []
    inline = 0
    for idref in spine:
        href, media = manifest.get(idref, (None, ""))
        if href is None:
            continue
        if media.startswith("image/") and media != "image/svg+xml":
            shown = [href]
        elif media in DOCUMENT_TYPES:
            try:
                shown, written_in = _document_pictures(zf, href)
                inline += written_in
            except KeyError:
                missing.append(href)
                continue
            except BookError as exc:
                warn(f"{exc}; the pages it shows are left out")
                continue
        else:
            continue
        for member in shown:
            if member not in held:
                missing.append(member)
            elif member not in taken:  # a picture shown twice (a cover repeated) is one page
                taken.add(member)
                pages.append(member)
    if missing:
        from .wording import first_few

        warn(f"{len(missing)} picture{'s' if len(missing) != 1 else ''} the book shows "
             f"{'are' if len(missing) != 1 else 'is'} not in it ({first_few(missing)}): left out")
    if inline:  # left out without a word, or "no page pictures in this EPUB (a book of text?)" when all were
        warn(f"{inline} picture{'s' if inline != 1 else ''} the book shows {'are' if inline != 1 else 'is'} written "
             "into its pages' documents (data: URLs), which are not read: left out")
    return pages
