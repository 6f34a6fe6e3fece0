"""Finding sections and their pages: folders, images, .cbz/.zip archives and PDFs.

A *section* is a folder (or an archive folder, or a PDF) that directly holds
pages; it gets one track.  Its name is its path relative to the input root, or
the input's own name when pages sit directly in it.  Pages sort naturally
(``page2`` before ``page10``).  Archives are read in memory, never extracted.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

from natsort import natsort_keygen

from .errors import InputError, PageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
ARCHIVE_EXTENSIONS = {".cbz", ".zip"}
PDF_EXTENSIONS = {".pdf"}
IGNORED_NAMES = {"thumbs.db", "desktop.ini", ".ds_store", "__macosx"}

#: refuse archives whose pages add up to more than this, uncompressed (zip bombs)
MAX_ARCHIVE_BYTES = 2 * 1024**3
#: refuse one page bigger than this (bytes), from any source
MAX_PAGE_BYTES = 200 * 1024**2
#: PDF pages are rendered at this many pixels on the long side
PDF_RENDER_LONG_SIDE = 1600

_natural = natsort_keygen(key=lambda s: s.lower())


def is_hidden(name: str) -> bool:
    """Hidden and system files: ``.DS_Store``, ``._page.jpg``, ``Thumbs.db``, ``__MACOSX``."""
    return name.startswith(".") or name.lower() in IGNORED_NAMES


def is_image_name(name: str) -> bool:
    return not is_hidden(name) and Path(name).suffix.lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class Page:
    """One page of a section: where its bytes come from, and a name to show."""

    name: str  # file name inside the section, e.g. "003.png"; "page 3" for PDFs
    path: Path  # the file on disk (the image, the archive, or the PDF)
    member: str | None = None  # the entry inside an archive
    pdf_index: int | None = None  # the page number inside a PDF (0-based)

    @property
    def source(self) -> str:
        """A string that locates the page for a human: a path, ``archive.cbz!entry`` or ``doc.pdf#3``."""
        if self.member is not None:
            return f"{self.path}!{self.member}"
        if self.pdf_index is not None:
            return f"{self.path}#{self.pdf_index + 1}"
        return str(self.path)

    def read_bytes(self) -> bytes:
        """The page's raw bytes (for PDFs: the rendered page as PNG)."""
        if self.member is not None:
            return _read_archive_member(self.path, self.member)
        if self.pdf_index is not None:
            import io

            buf = io.BytesIO()
            _render_pdf_page(self.path, self.pdf_index).save(buf, format="PNG")
            return buf.getvalue()
        try:
            size = self.path.stat().st_size
            if size > MAX_PAGE_BYTES:
                raise PageError(f"{self.path}: {size / 1e6:.0f} MB is more than the {MAX_PAGE_BYTES // 1024**2} MB page limit")
            return self.path.read_bytes()
        except OSError as exc:
            raise PageError(f"{self.path}: cannot read ({exc.strerror or exc})") from exc


@dataclass
class Section:
    """A folder's worth of pages: one track."""

    name: str  # "ch01/part2" (always "/"-separated)
    pages: list[Page]
    origin: Path  # the folder, archive or PDF it came from
    root: Path = field(default=Path("."))  # the PATH the user gave


# --- archives ------------------------------------------------------------------------------


def _safe_member_parts(member: str) -> tuple[str, ...] | None:
    """The folder parts of an archive entry, or None for entries we refuse (absolute, ``..``)."""
    posix = PurePosixPath(member.replace("\\", "/"))
    if posix.is_absolute() or any(p in ("..", "") for p in posix.parts) or ":" in posix.parts[0]:
        return None
    return posix.parts


def _read_archive_member(archive: Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(archive) as zf:
            info = zf.getinfo(member)
            if info.file_size > MAX_PAGE_BYTES:
                raise PageError(f"{archive}!{member}: larger than the page limit")
            with zf.open(info) as fh:
                data = fh.read(MAX_PAGE_BYTES + 1)  # never trust the declared size alone
            if len(data) > MAX_PAGE_BYTES:
                raise PageError(f"{archive}!{member}: larger than the page limit")
            return data
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, EOFError) as exc:
        raise PageError(f"{archive}!{member}: cannot read ({exc})") from exc


def _archive_sections(archive: Path, base_name: str, root: Path) -> list[Section]:
    """One section per folder inside the archive that holds images."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{archive}: not a readable zip/cbz archive ({exc})") from exc
    groups: dict[tuple[str, ...], list[Page]] = {}
    total = 0
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            parts = _safe_member_parts(info.filename)
            if parts is None or any(is_hidden(p) for p in parts) or not is_image_name(parts[-1]):
                continue
            total += info.file_size
            if total > MAX_ARCHIVE_BYTES:
                raise InputError(
                    f"{archive}: pages add up to more than {MAX_ARCHIVE_BYTES // 1024**3} GB uncompressed; refusing it (zip bomb?)"
                )
            groups.setdefault(parts[:-1], []).append(Page(parts[-1], archive, member=info.filename))
    sections = []
    for folder in sorted(groups, key=lambda p: _natural("/".join(p))):
        pages = sorted(groups[folder], key=lambda p: _natural(p.member or p.name))
        name = "/".join((base_name, *folder)) if base_name else "/".join(folder)
        sections.append(Section(name or archive.stem, pages, archive, root))
    return sections


# --- PDFs ----------------------------------------------------------------------------------


def _pdf_sections(pdf: Path, name: str, root: Path) -> list[Section]:
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(pdf))
        count = len(doc)
        doc.close()
    except Exception as exc:  # pypdfium2 raises PdfiumError (and OSError) for unreadable files
        raise InputError(f"{pdf}: not a readable PDF ({exc})") from exc
    pages = [Page(f"page {i + 1}", pdf, pdf_index=i) for i in range(count)]
    return [Section(name, pages, pdf, root)] if pages else []


def _render_pdf_page(pdf: Path, index: int):
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(pdf))
        try:
            page = doc[index]
            width, height = page.get_size()
            scale = PDF_RENDER_LONG_SIDE / max(width, height, 1)
            image = page.render(scale=scale).to_pil()
            page.close()
            return image
        finally:
            doc.close()
    except Exception as exc:
        raise PageError(f"{pdf}: page {index + 1} cannot be rendered ({exc})") from exc


# --- folders -------------------------------------------------------------------------------


def _walk(folder: Path, excluded: set[Path]) -> Iterator[tuple[Path, list[str], list[str]]]:
    """os.walk in natural order, skipping hidden folders and the excluded (output) folders."""
    for dirpath, dirnames, filenames in os.walk(folder, onerror=None, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(
            (d for d in dirnames if not is_hidden(d) and (here / d).resolve() not in excluded), key=_natural
        )
        yield here, dirnames, sorted((f for f in filenames if not is_hidden(f)), key=_natural)


def _relative_name(path: Path, root: Path, root_name: str) -> str:
    rel = path.relative_to(root).as_posix()
    return root_name if rel == "." else rel


def _folder_sections(folder: Path, excluded: set[Path]) -> list[Section]:
    sections: list[Section] = []
    root_name = folder.resolve().name or "pages"
    for here, _dirs, files in _walk(folder, excluded):
        images = [f for f in files if is_image_name(f)]
        if images:
            sections.append(
                Section(_relative_name(here, folder, root_name), [Page(f, here / f) for f in images], here, folder)
            )
        for f in files:
            suffix = Path(f).suffix.lower()
            if suffix in ARCHIVE_EXTENSIONS | PDF_EXTENSIONS:
                stem_rel = _relative_name(here / Path(f).stem, folder, root_name)
                sections.extend(_file_sections(here / f, stem_rel, folder))
    return sections


def _file_sections(path: Path, name: str, root: Path) -> list[Section]:
    suffix = path.suffix.lower()
    if suffix in ARCHIVE_EXTENSIONS:
        return _archive_sections(path, name, root)
    if suffix in PDF_EXTENSIONS:
        return _pdf_sections(path, name, root)
    if is_image_name(path.name):
        return [Section(name, [Page(path.name, path)], path.parent, root)]
    return []


def find_sections(paths: Iterable[str | Path], *, exclude: Iterable[str | Path] = ()) -> list[Section]:
    """Every section under ``paths``, in natural order.

    ``exclude`` lists folders never read as input (the output folder, even when it
    lies inside a PATH).  Raises :class:`InputError` for a missing PATH or when no
    page is found at all.
    """
    excluded = {Path(p).resolve() for p in exclude}
    sections: list[Section] = []
    given = [Path(p) for p in paths]
    if not given:
        raise InputError("no PATH given", hint="pass a folder of pages, an image, a .cbz/.zip or a .pdf")
    for path in given:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_dir():
            sections.extend(_folder_sections(path, excluded))
        else:
            suffix = path.suffix.lower()
            if suffix in ARCHIVE_EXTENSIONS | PDF_EXTENSIONS:
                sections.extend(_file_sections(path, path.stem, path.parent))
            elif suffix in IMAGE_EXTENSIONS:
                sections.extend(_file_sections(path, path.stem, path.parent))
            else:
                raise InputError(
                    f"{path}: not a folder, image, .cbz/.zip or .pdf",
                    hint="image types: " + ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS)),
                )
    if not sections:
        where = ", ".join(str(p) for p in given)
        kinds = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
        raise InputError(f"no pages found in {where} (looked for {kinds} images, .cbz/.zip and .pdf, in every subfolder)")
    return _unique_names(sections)


def _unique_names(sections: list[Section]) -> list[Section]:
    """Two PATHs may hold sections of the same name: keep both, numbering the later ones."""
    seen: dict[str, int] = {}
    for section in sections:
        count = seen.get(section.name, 0)
        seen[section.name] = count + 1
        if count:
            section.name = f"{section.name}-{count + 1}"
    return sections


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
