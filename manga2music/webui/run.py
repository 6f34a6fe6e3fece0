"""One Generate click without Gradio: stage the uploads, run the pipeline, collect what a user downloads.

Uploads are linked (or copied) into a staging folder named after what was
uploaded, so the outputs carry that name (``calm.wav``, ``book.zip``); the
staging folder is removed when the run ends.  Results go to a new folder under
``results_root``.  Every message that reaches the user passes through
:mod:`.messages`, which hides the temporary folders.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from ..errors import BackendError, InputError, Manga2MusicError
from ..jobs import read_description
from ..options import settings_named_as_flags
from ..outputs import SectionFiles
from ..pipeline import Callbacks
from ..progress import report
from ..sections import (
    COMPRESSED_TAR_ENDINGS,
    IMAGE_EXTENSIONS,
    SOURCE_EXTENSIONS,
    UNREADABLE_IMAGE_TYPES,
    source_stem,
    source_suffix,
)
from . import messages

#: what the upload box accepts (Gradio's file_types): every kind of page the command reads (by name, not "image",
#: which Gradio checks against the server's MIME database: .tga or .j2k pages were refused on one machine and not
#: another), the pages it takes only to say how to export them (.heic, .kra...), comic archives, PDFs and EPUBs
UPLOAD_TYPES = sorted(IMAGE_EXTENSIONS | set(UNREADABLE_IMAGE_TYPES)) + sorted(SOURCE_EXTENSIONS) + list(COMPRESSED_TAR_ENDINGS)
#: the name used when nothing better can be read from the uploads
FALLBACK_NAME = "pages"
#: the part that loose pages uploaded beside a comic archive or PDF make
LOOSE_PAGES = "pages"
SCENES_BOX = "Scenes"  # the box on the page that takes what a --scenes file holds
MODES = ("two-stage", "single-stage")


@dataclass
class UiResult:
    """What one Generate click produced."""

    folder: Path  # the output folder (served by Gradio), named after the upload
    manifest: dict
    audio: Optional[Path]  # the first track, for the player
    description: str  # all descriptions; headed by section name when there are several
    downloads: list[Path] = field(default_factory=list)  # per section: track(s), description, MIDI; then the zip
    warnings: list[str] = field(default_factory=list)  # already scrubbed: no temporary paths, no Python internals
    name: str = FALLBACK_NAME
    scenes: list[dict] = field(default_factory=list)  # a chapter score's scenes (from its cue sheet), in order

    @property
    def entries(self) -> list[dict]:
        """The manifest entries of this run's sections."""
        this_run = set(self.manifest.get("this_run", []))
        return [e for e in self.manifest.get("sections", []) if e.get("name") in this_run]

    @property
    def archive(self) -> Optional[Path]:
        return next((p for p in self.downloads if p.suffix == ".zip"), None)


def parse_seed(text: object) -> Optional[int]:
    """The seed box: blank means random (None); anything else must be a whole number."""
    value = str(text if text is not None else "").strip()
    if not value:
        return None
    from ..api import MAX_SEED

    try:
        seed = int(value)
    except ValueError:
        raise InputError(f"the seed must be a whole number (got {value!r})",
                         hint="leave it blank for a random one") from None
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"the seed must be a whole number from 0 to {MAX_SEED} (got {seed})",
                         hint="leave it blank for a random one")
    return seed


# ------------------------------------------------------------------ naming and staging


def _inside(path: Path, roots: Iterable[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(Path(r).resolve()) for r in roots)


def clean_name(text: str) -> str:
    """A file-name-safe name (Unicode kept), at most 60 characters; ``pages`` when nothing is left."""
    from ..outputs import safe_part

    name = safe_part(" ".join(text.split())).lstrip(".").strip("_- ")[:60].rstrip("._- ")
    return name if name and name != "_" else FALLBACK_NAME


def upload_name(uploads: Iterable[str | Path], hidden: Iterable[str | Path] = ()) -> str:
    """What the outputs are called: the archive's (or PDF's) name, else the first page's folder, else its stem.

    A folder inside ``hidden`` (Gradio's upload cache, the server's temporary
    folder) means nothing to the user, so the page's own stem is used instead.
    """
    from natsort import natsort_keygen

    from ..sections import is_hidden

    paths = [Path(u) for u in uploads]
    if not paths:
        return FALLBACK_NAME
    paths = [p for p in paths if not is_hidden(p.name)] or paths  # not read (hidden_uploads): not the music's name
    books = [p for p in paths if _is_book(p)]
    pages = sorted((p for p in paths if p not in books), key=natsort_keygen(key=lambda p: p.name.lower()))
    readable_page = next((p for p in pages if _reads(p)), None)  # not one skipped as unreadable: the music is
    # not its (several books and a stray file that is no page were named after the file, which the run skipped)
    usable = [b for b in books if _opens(b)] or ([] if readable_page else books)  # not a book cut short beside
    # good pages: the zip was named after the broken PDF (trunc-music.zip) of the pages' music
    if usable and (len(usable) == 1 or readable_page is None):
        return clean_name(source_stem(usable[0].name))
    first = readable_page or pages[0]
    if first.parent.name and not _inside(first.parent, [Path(h) for h in hidden]):
        return clean_name(first.parent.name)
    return clean_name(first.stem)


def hidden_uploads(uploads: Iterable[str | Path]) -> list[str]:
    """A line for each upload the run does not read because its name marks it hidden (``.cover.png``; a Mac's
    ``._page.jpg``): the user chose it, and it was left out without a word while the music was named after it."""
    from ..sections import is_hidden

    return [f"{Path(u).name}: a hidden file (its name starts with a dot, or is a system file's), not read as a page; "
            "rename it to read it" for u in uploads if is_hidden(Path(u).name)]


def _opens(book: Path) -> bool:
    """Whether an uploaded archive, PDF or EPUB opens with a page in it (its listing read, as a run reads it)."""
    from ..sections import find_sections

    try:
        return any(s.pages and not s.error for s in find_sections([book], exclude=[], warn=lambda message: None))
    except Exception:  # noqa: BLE001 - a book that cannot be listed names nothing
        return False


def _reads(path: Path) -> bool:
    """Whether an uploaded page opens as an image (its header read, as the preview reads it)."""
    from ..errors import Manga2MusicError
    from ..pages import probe_page
    from ..sections import Page

    try:
        probe_page(Page(path.name, path))
        return True
    except (Manga2MusicError, OSError, ValueError):
        return False


def _link_or_copy(src: Path, target: Path) -> None:
    try:
        os.link(src, target)  # same file system (Gradio's cache and ours): no copy of the bytes
    except OSError:
        shutil.copyfile(src, target)


def _is_book(path: Path) -> bool:
    """A comic archive, a PDF or an EPUB (a book of pages), not a page."""
    return source_suffix(path.name) in SOURCE_EXTENSIONS


def _repeated_page_names(uploads: list[Path]) -> list[str]:
    """Names that two or more uploaded pages share (pages of two folders: ``calm/001.png``, ``action/001.png``)."""
    seen: dict[str, int] = {}
    for path in uploads:
        if not _is_book(path):
            seen[path.name.casefold()] = seen.get(path.name.casefold(), 0) + 1
    return [path.name for path in uploads if seen.get(path.name.casefold(), 0) > 1]


def upload_order_note(uploads: Iterable[str | Path]) -> Optional[str]:
    """What to tell the user when pages share a name (and so are read in the order they were uploaded), else None."""
    repeated = list(dict.fromkeys(_repeated_page_names([Path(u) for u in uploads])))
    if not repeated:
        return None
    return (f"Pages with the same name were uploaded ({', '.join(repeated[:3])}): the pages are read in the order "
            "you uploaded them, each numbered in front of its name")


def stage_uploads(uploads: Iterable[str | Path], folder: Path) -> Path:
    """Put the uploads side by side in ``folder`` (created); two uploads with the same name are both kept.

    Pages are read in the natural order of their names, unless two share a name (pages of two folders): then every
    page is numbered in front of its name in the order uploaded (``001 001.png``, ``002 002.png``, ``003 001.png``)
    and is read in that order (see :func:`upload_order_note`)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [Path(u) for u in uploads]
    in_upload_order = bool(_repeated_page_names(paths))
    loose = _loose_folder(folder, paths)
    loose.mkdir(exist_ok=True)
    for k, src in enumerate(paths, start=1):
        name = _staged_name(k, src) if in_upload_order and not _is_book(src) else src.name
        into = folder if _is_book(src) else loose
        target = into / name
        n = 1
        while target.exists():
            n += 1
            stem = source_stem(name)
            target = into / f"{stem}-{n}{name[len(stem):]}"  # Ch 2-2.tar.gz, still a compressed tar
        _link_or_copy(src, target)
    return folder


def _staged_name(k: int, page: Path) -> str:
    """The ``k``-th upload's name where pages are read in the order uploaded: numbered in front (``002 003.png``).
    A hidden file keeps its name, and stays unread as the page says (``001 .cover.png`` was read as page 1)."""
    from ..sections import is_hidden

    return page.name if is_hidden(page.name) else f"{k:03d} {page.name}"


def scenes_in_staged_names(scenes: str, uploads: Iterable[str | Path]) -> str:
    """The Scenes box's text with each page named as uploaded ("003.png") named as :func:`stage_uploads` named it
    ("002 003.png") where pages were numbered in front of their names: the box refused a name the user had
    uploaded ("no page named '003.png' in the chapter").  A name uploaded twice stays as written (which one is
    meant is not known: the error lists the pages' names)."""
    from collections import Counter

    paths = [Path(u) for u in uploads]
    if not scenes.strip() or not _repeated_page_names(paths):
        return scenes
    times = Counter(p.name.casefold() for p in paths if not _is_book(p))
    staged = {src.name: _staged_name(k, src) for k, src in enumerate(paths, start=1)
              if not _is_book(src) and times[src.name.casefold()] == 1}
    lines = []
    for line in scenes.splitlines():
        body = line.lstrip()
        for name in sorted(staged, key=len, reverse=True):
            if _starts_with_page_name(body, name):
                line = line[:len(line) - len(body)] + staged[name] + body[len(name):]
                break
        lines.append(line)
    return "\n".join(lines)


def _starts_with_page_name(line: str, name: str) -> bool:
    """Whether a Scenes line names the page ``name`` first, in any case ("003.PNG 0:20" names 003.png): the pages'
    part matches names whatever their case, and the box refused one only where pages had been numbered."""
    return line[:len(name)].casefold() == name.casefold() and line[len(name):len(name) + 1] in ("", " ", "\t", "#")


def _loose_folder(folder: Path, uploads: list[Path]) -> Path:
    """Where loose pages go: beside a comic archive or PDF, a part of their own, "pages" (the folder's own pages
    were a part named as the book is, and the two were told apart by the temporary folder's name)."""
    books = {source_stem(p.name).casefold() for p in uploads if _is_book(p)}
    if not books or all(_is_book(p) for p in uploads):
        return folder
    name = next(n for n in (LOOSE_PAGES, *(f"{LOOSE_PAGES}-{k}" for k in range(2, len(books) + 3)))
                if n.casefold() not in books)
    return folder / name


def _drop_unreadable_books_beside_pages(folder: Path) -> list[str]:
    """Comic archives and PDFs beside readable loose pages or another readable book that cannot be read at all (a
    text file named notes.pdf, a download cut short) would be a failed part of their own ("Made 1 track (1 of 2
    parts)"), and the pages' part named "pages", not after them: they are left out, and the returned lines say why,
    as the preview does (its "Will be skipped").  With nothing readable beside them they stay: the run says why."""
    from ..sections import is_image_name

    entries = sorted(folder.iterdir())
    books = [p for p in entries if _is_book(p)]
    inner = [d for d in entries if d.is_dir()]  # the loose pages' own folder (see _loose_folder)
    loose = [p for d in inner for p in sorted(d.iterdir()) if p.is_file() and is_image_name(p.name)]
    if not books or not loose and len(books) < 2:
        return []
    unreadable = {book: why for book in books if (why := _why_book_unreadable(book, bool(loose))) is not None}
    if not unreadable or not (any(_reads(page) for page in loose)
                              or any(book not in unreadable and _holds_pages(book) for book in books)):
        return []  # nothing readable beside them (a book with no page in it is none): the run says why of each
    for book in unreadable:
        book.unlink()
    if not any(_is_book(p) for p in folder.iterdir()):  # the pages alone: named as the uploads are,
        for d in inner:  # not "pages" (see _loose_folder)
            for page in sorted(d.iterdir()):
                page.rename(folder / page.name)
            d.rmdir()
    return [f"Skipped {why}" for why in unreadable.values()]


def _why_book_unreadable(book: Path, beside_pages: bool) -> Optional[str]:
    """Why no part of an uploaded archive, PDF or EPUB can be read, as the run would say it; None if one can, or if
    it holds no page and no loose page is beside it (beside books alone the run names it, "no pages in it", and
    makes no part of it)."""
    from ..errors import Manga2MusicError
    from ..sections import find_sections

    try:
        found = find_sections([book])
    except Manga2MusicError as exc:  # no page in it
        return f"{book.name}: {exc.message}" if beside_pages else None
    if found and not all(s.error for s in found):
        return None
    return next((s.error for s in found if s.error), "")


def _holds_pages(book: Path) -> bool:
    """Whether a part of an uploaded archive, PDF or EPUB can be read."""
    from ..errors import Manga2MusicError
    from ..sections import find_sections

    try:
        return any(not s.error for s in find_sections([book]))
    except Manga2MusicError:
        return False


def _drop_unreadable_beside_books(folder: Path) -> list[str]:
    """Loose uploads beside a comic archive or PDF that are none of them readable images (a text file named
    bad.png) would be a part of their own that fails, and push the book's part to "book-2": they are left out, and
    the returned lines say why, as the preview does."""
    from ..errors import PageError
    from ..pages import probe_page
    from ..sections import Page, is_image_name

    entries = sorted(folder.iterdir())
    if not any(_is_book(p) for p in entries):
        return []
    inner = [d for d in entries if d.is_dir()]  # the loose pages' own folder (see _loose_folder)
    loose = [p for d in [folder, *inner] for p in sorted(d.iterdir()) if p.is_file() and is_image_name(p.name)]
    if not loose:
        return []
    reasons = []
    for path in loose:
        try:
            probe_page(Page(path.name, path))
        except PageError as exc:
            reasons.append(exc.message)
            continue
        return []  # a readable page among them: they are a part of their own
    for path in loose:
        path.unlink()
    for d in inner:
        if not any(d.iterdir()):
            d.rmdir()
    return [f"Skipped {why}" for why in reasons]


# ------------------------------------------------------------------ the run


def generate(uploads: list[str | Path], results_root: Path, *, vision_model: str = "builtin",
             music_model: str = "builtin", single_stage: bool = False, duration: float = 10.0, fmt: str = "wav",
             seed: Optional[int] = None, callbacks: Optional[Callbacks] = None,
             work_root: Optional[Path] = None, hidden: Iterable[str | Path] = (), score: bool = False,
             reading_speed: float = 1.0, longest_cue: Optional[float] = None,
             transitions: str = "crossfade", scenes: str = "") -> UiResult:
    """Run the pipeline on uploaded files; results land in a new folder under ``results_root``.

    ``work_root`` holds the staging folder (default: the system's temporary
    folder); ``hidden`` lists further folders whose paths must never reach the
    user.  ``scenes`` (a chapter score) is what a ``--scenes`` file holds: the pages
    where scenes start, one a line, each maybe with its length.  Raises
    :class:`Manga2MusicError` in the UI's own words when nothing
    could be made (no uploads, no readable page, a model that cannot run here,
    every section failed); nothing is written to ``results_root`` then.
    """
    from .. import api
    from ..pipeline import RunConfig
    from .models import check_model

    if not uploads:
        raise InputError("no pages uploaded yet", hint=messages.UPLOAD_HINT)
    # a menu cleared to spaces is builtin, as a cleared one is ("   " was looked for as a folder named "")
    vision_model, music_model = (str(vision_model or "").strip() or "builtin", str(music_model or "").strip() or
                                 "builtin")
    for side, model in (("vision", vision_model), ("music", music_model)):
        check_model(model, side)
    name = upload_name(uploads, hidden)
    cb = callbacks or Callbacks()
    cfg = RunConfig(fmt=fmt, duration=float(duration), seed=seed,
                    vision_options={"single_stage": True} if single_stage and not score else {})  # a score
    # reads its chapter one way (score refuses the setting)
    if score:  # settings of a score alone (run refuses them)
        cfg.reading_speed, cfg.longest_cue, cfg.transitions = float(reading_speed), longest_cue, transitions
    if work_root is not None:
        Path(work_root).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="manga2music-upload-", dir=work_root))
    hide = [staging, *hidden]
    log: list[tuple[str, str]] = []

    def keep(level: str, message: str) -> None:
        log.append((level, message))
        if cb.log is not None:
            cb.log(level, messages.scrub(message, hide))

    try:
        pages = stage_uploads(uploads, staging / name)
        for why in _drop_unreadable_beside_books(pages) + _drop_unreadable_books_beside_pages(pages):  # said as
            log.append(("warning", why))  # the preview said it: skipped, not a failed part
        if score and scenes.strip():
            cfg.scenes_file = staging / "scenes-box" / SCENES_BOX  # a bad line reads "Scenes, line 2: ..."
            cfg.scenes_file.parent.mkdir()
            cfg.scenes_file.write_text(scenes_in_staged_names(scenes, uploads), encoding="utf-8")
        out = staging / "out"
        try:
            command = api.score if score else api.run  # a chapter score: scenes, cues, read-along page
            with settings_named_as_flags():  # the page shows the flags it has under its own names (messages.py)
                manifest = command([pages], out, vision_model=vision_model, music_model=music_model, config=cfg,
                                   callbacks=Callbacks(sections=cb.sections, step=cb.step, log=keep))
        except Manga2MusicError as exc:
            raise messages.for_user(exc, hide, [Path(u).name for u in uploads]) from None
        warnings = messages.run_warnings(log, hide, [e["name"] for e in manifest.get("sections", [])
                                                     if e.get("status") == "failed"])
        note = upload_order_note(uploads)
        if note:
            warnings.insert(0, note)
        warnings += hidden_uploads(uploads)
        manifest = messages.scrub_manifest(manifest, hide)
        try:
            _raise_if_nothing_made(manifest)
        except Manga2MusicError as exc:  # its reasons are the sections' messages: said in the page's terms too
            raise messages.for_user(exc, hide, [Path(u).name for u in uploads]) from None
        folder = Path(results_root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}" / name
        folder.parent.mkdir(parents=True)
        shutil.move(str(out), str(folder))  # the listening page already holds thumbnails; the pages can go
        _forget_staging(folder, manifest, hide)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _collect(folder, manifest, warnings, name, cb)


#: how long a Generate's results stay on the server's disk (a server left running filled it: 1.1 GB of results and
#: 0.7 GB of Gradio's copies of them in 15 minutes of use, none of them reachable once the page moved on)
KEEP_RESULTS_S = 3600


def prune_results(results_root: Path, keep_s: float = KEEP_RESULTS_S, now: Optional[float] = None) -> list[Path]:
    """Remove the result folders made more than ``keep_s`` ago; returns them.  The page shows only the last
    results, which a user downloads at once or makes again."""
    now = time.time() if now is None else now
    gone = []
    try:
        folders = [p for p in Path(results_root).iterdir() if p.is_dir()]
    except OSError:
        return gone
    for folder in folders:
        try:
            old = now - folder.stat().st_mtime > keep_s
        except OSError:
            continue
        if old:
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone


def _raise_if_nothing_made(manifest: dict) -> None:
    this_run = set(manifest.get("this_run", []))
    entries = [e for e in manifest.get("sections", []) if e.get("name") in this_run]
    if any(e.get("status") != "failed" for e in entries):
        return
    if entries and all(not e.get("pages") and e.get("skipped_pages") for e in entries):  # nothing readable
        skipped = [p.get("error", "") for e in entries for p in e["skipped_pages"]]
        raise InputError(messages.no_readable_page(skipped), hint=messages.UPLOAD_HINT)
    reasons = sorted({e.get("message") or "it failed" for e in entries})
    raise BackendError("no track was made: " + "; ".join(reasons or ["nothing to make music from"]))


def _forget_staging(folder: Path, manifest: dict, hide: list) -> None:
    """The records name each page's file; in the UI that is a deleted temporary copy, so keep only its name.  The
    manifest and the listening page, which a user downloads, say what the page shows (``manifest``, scrubbed)."""
    from ..listening_page import render_listening_page
    from ..outputs import LISTENING_PAGE, MANIFEST, read_record, write_json_atomic, write_manifest

    for entry in manifest.get("sections", []):
        path = folder / entry["record"] if entry.get("record") else None
        record = read_record(path) if path and path.is_file() else None
        if record is None:
            continue
        for page in record.get("pages", []):
            page["path"] = messages.scrub(page.get("path"), hide)
            page["source"] = messages.scrub(page.get("source"), hide)
        for skipped in record.get("skipped_pages", []):
            skipped.update(source=messages.scrub(skipped.get("source"), hide),
                           error=messages.scrub(skipped.get("error"), hide))
        write_json_atomic(path, record)
    if (folder / MANIFEST).is_file():  # the page and its digest in the manifest together: a folder unzipped from
        # the download was refused by the command line ("index.html was not written by manga2music")
        page = render_listening_page(folder, manifest) if (folder / LISTENING_PAGE).is_file() else None
        write_manifest(folder, read_record(folder / MANIFEST) or {},
                       {k: v for k, v in manifest.items() if k != "files"}, page)


def _files_of(folder: Path, entry: dict) -> list[Path]:
    """What a user downloads for one section, in the order shown.

    A later output of a section (a chapter score's cue sheet and chapters) belongs here.  Not its read-along page:
    it plays the score file beside it and links to the other chapters' pages, so it works from the zip (opened
    alone, Play through found no score and the chapter links led nowhere).
    """
    files = [folder / rel for rel in entry.get("tracks") or []]
    if entry.get("record"):  # a chapter score: the cue sheet and the chapters come next
        beside = SectionFiles.of_record(folder / entry["record"])
        files += [beside.cue_sheet, beside.chapters]
    if entry.get("description"):
        files.append(folder / entry["description"])
    files += [folder / rel for rel in entry.get("midi") or []]
    return [p for p in files if p.is_file()]


def _distinct_names(folder: Path, files: list[Path]) -> list[Path]:
    """``files``, each of those that share a name with another (two volumes' "Chapter 1.wav") as a copy named by its
    place in ``folder`` ("Vol 1 - Chapter 1.wav"), in the run's own folder: a browser saves a download
    under its name alone, and the two chapters' music was saved as "Chapter 1.wav" and "Chapter 1 (1).wav"."""
    from collections import Counter

    shared = Counter(p.name.casefold() for p in files)
    places = [path.relative_to(folder).parts[:-1] for path in files]
    common = 0  # the folders every file is in (the upload's own name: "Saga"), left out of the names
    while places and all(len(place) > common and place[common] == places[0][common] for place in places):
        common += 1
    named = []
    for path in files:
        if shared[path.name.casefold()] < 2:
            named.append(path)
            continue
        copy = folder.parent / "downloads" / " - ".join(path.relative_to(folder).parts[common:])
        copy.parent.mkdir(exist_ok=True)
        if not copy.exists():
            try:
                os.link(path, copy)  # the same bytes, no second copy on disk
            except OSError:
                shutil.copyfile(path, copy)
        named.append(copy)
    return named


def _scenes_of(folder: Path, entry: dict) -> list[dict]:
    import json

    if not entry.get("record"):
        return []
    base = (folder / entry["record"]).with_suffix("")
    try:
        return json.loads(base.with_name(base.name + ".cues.json").read_text(encoding="utf-8")).get("scenes", [])
    except (OSError, ValueError):
        return []


def _collect(folder: Path, manifest: dict, warnings: list[str], name: str, cb: Callbacks) -> UiResult:
    result = UiResult(folder, manifest, None, "", warnings=warnings, name=name)
    texts = []
    for entry in result.entries:
        files = _files_of(folder, entry)
        result.downloads += files
        result.scenes += [{**scene, "chapter": entry["name"]} for scene in _scenes_of(folder, entry)]
        tracks = [folder / rel for rel in entry.get("tracks") or []]
        result.audio = result.audio or next((p for p in tracks if p.is_file()), None)
        description = folder / entry["description"] if entry.get("description") else None
        if description and description.is_file():
            try:
                text = read_description(description)  # as the composer read it: a user's edit may be in any encoding
            except Manga2MusicError:  # a model's odd bytes: the track is made; show the words as they are
                text = description.read_bytes().decode("utf-8", "replace")
            texts.append(f"[{entry['name']}]\n{text}" if len(result.entries) > 1 else text)
    if not texts and result.scenes:  # a chapter score: each scene's music description, as the composer got it
        several = len(result.entries) > 1
        texts = [("" if not several or s["index"] != 1 else f"[{s['chapter']}]\n") +
                 f"Scene {s['index']}: {s['description']}" for s in result.scenes]
    result.description = "\n\n".join(texts)
    named = _distinct_names(folder, result.downloads)
    result.audio = dict(zip(result.downloads, named)).get(result.audio, result.audio)  # the player's file is one of
    # the downloads, by the name it is saved under ("Chapter 1.wav" was in no download: "Vol 1 - Chapter 1.wav")
    result.downloads = named
    if result.downloads:
        # NAME-music.zip: not the name of the archive the user uploaded (book.zip), and a dotted name kept whole
        try:
            result.downloads.append(_zip_folder(folder, folder.with_name(f"{folder.name}-music.zip"), cb.step))
        except BaseException:  # stopped while packing: nothing is shown, so nothing is kept
            shutil.rmtree(folder.parent, ignore_errors=True)
            raise
    return result


#: files a zip would not make smaller (coded audio) or only a little, at a second a few tens of MB (a score's WAV):
#: stored as they are
STORED_IN_ZIP = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac"}


def _zip_folder(folder: Path, target: Path, step=None) -> Path:
    """The results as one download: not the hidden caches (the pages' thumbnails, bridges, kept answers).  Audio is
    stored, not compressed: a 40-minute webtoon score's 770 MB of WAV took a minute to shrink by 7%, the bar at 100%
    all the while; ``step`` is told of each file (the bar moves, and a Stop is heard)."""
    paths = [p for p in sorted(folder.rglob("*"))
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    total = sum(p.stat().st_size for p in paths) or 1
    done = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in paths:
            report(step, done, total, "packing the downloads into one zip")
            zf.write(path, path.relative_to(folder).as_posix(),
                     compress_type=zipfile.ZIP_STORED if path.suffix.lower() in STORED_IN_ZIP else None)
            done += path.stat().st_size
    report(step, total, total, "packed")
    return target
