"""Page readings kept between runs: a page is not read again while its pixels and the reader are unchanged.

Reading a page (text detection, then the pixel measures: :mod:`manga2music.reading`)
is most of what the builtin describer and the chapter score spend on a page, 0.3 s
for a small page on one core and more for a big one.  A user who edits one page of a
200-page chapter, scores a chapter after running it, or writes to another folder
would otherwise wait for every page to be read again, with the same result.

Each complete reading is kept as one small JSON file in ``<user cache dir>/readings/``
(``~/.cache/manga2music/readings`` on Linux), named by a hash of:

- the page as the reader sees it: the mode, size and decoded pixels of each of its
  tiles, whatever the file's name, format or folder (so a renamed page is found, and
  a page rendered at another size is read again);
- the reader: :data:`~manga2music.reading.READING_MODEL_VERSION`, the source code of
  every module that takes part in reading a page (:data:`READER_MODULES`), the
  versions of the libraries it runs on (:data:`READER_LIBRARIES`: the detector's and
  the recogniser's models ship in rapidocr's wheel), whether the text detector and
  recogniser can run here, and the kind of machine (a cache folder on a network disk may
  be shared by several).

A reading is kept only when it is complete: one made while the text detector or the
recogniser failed is read again next time.  A reading found is given the name of the
page it was found for.  Nothing but numbers is kept (no recognised text, no pixels,
no paths).  At most :data:`MAX_ENTRIES` readings are kept (under 1 KB each, one 4 KB block on most
file systems: at most about 80 MB on disk); when a
process first keeps one and there are more, the least recently used go; it also removes the temporary file of
a reading whose writer was killed before renaming it into place (:data:`ABANDONED_AFTER`).

``MANGA2MUSIC_READING_CACHE``: another folder, or ``off`` to read every page every
time.  A cache that cannot be read or written is not used (the pages are read).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

if TYPE_CHECKING:
    from .reading import PageReading

#: the modules whose code decides a reading (a change in any of them is a new reader)
READER_MODULES = ("reading.py", "opencv.py", "pages.py", "describers/page_features.py",
                  "describers/text_detect.py", "describers/text_recognition.py", "describers/page_photo.py",
                  "describers/denormals.py")
#: the libraries a reading runs on (their versions are part of the reader)
READER_LIBRARIES = ("numpy", "opencv-python-headless", "onnxruntime", "rapidocr", "pillow")
MAX_ENTRIES = 20_000
#: a temporary file this many seconds old was left by a process killed while writing it (see _remove_abandoned)
ABANDONED_AFTER = 3600.0
MAX_FILE_BYTES = 4 * 1024**2  # a reading is a few hundred bytes; a 200-tile strip's, with its parts, under 200 KB
#: bump when what a kept file holds changes
FORMAT = 1

_lock = threading.Lock()
_reader: Optional[str] = None
_pruned = False
_paused = 0


@contextmanager
def paused() -> Iterator[None]:
    """No reading is looked up or kept inside this block: for a reader changed while the process runs (a benchmark
    that swaps one of its steps for another), whose readings are not those of the reader its key names."""
    global _paused
    _paused += 1
    try:
        yield
    finally:
        _paused -= 1


def folder() -> Optional[Path]:
    """Where readings are kept, or None when the user turned the cache off (or it is :func:`paused`)."""
    if _paused:
        return None
    given = os.environ.get("MANGA2MUSIC_READING_CACHE", "").strip()
    if given.lower() in ("off", "0", "false", "no", "none"):
        return None
    if given:
        return Path(given).expanduser().absolute()
    from .settings import user_cache_dir

    return user_cache_dir() / "readings"


def reader_key() -> str:
    """What identifies the reader in this process (computed once: the code cannot change under a running process)."""
    global _reader
    with _lock:
        if _reader is None:
            _reader = _reader_fingerprint()
        return _reader


def _reader_fingerprint() -> str:
    from importlib import metadata

    from .describers import denormals, text_detect, text_recognition
    from .reading import READING_MODEL_VERSION

    h = hashlib.blake2b(digest_size=16)
    h.update(f"format {FORMAT}\n{READING_MODEL_VERSION}\n".encode())
    package = Path(__file__).resolve().parent
    for module in READER_MODULES:
        h.update(module.encode() + b"\n" + (package / module).read_bytes())
    for library in READER_LIBRARIES:
        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            version = "absent"
        h.update(f"\n{library} {version}".encode())
    h.update(f"\ndetector {text_detect.problem()}\nrecogniser {text_recognition.problem()}".encode())
    # a cache folder shared by machines (a home on a network disk): the networks' float results may differ a little
    # from one processor to another, and with denormals kept or flushed
    h.update(f"\n{platform.machine()} {platform.system()} denormals flushed {denormals.supported()}".encode())
    return h.hexdigest()


def page_key(tiles: list) -> Optional[str]:
    """The key of a page given as its decoded tiles (PIL images), or None when readings are not kept."""
    if folder() is None:
        return None
    try:
        h = hashlib.blake2b(reader_key().encode(), digest_size=20)
        for tile in tiles:
            h.update(f"\n{tile.mode} {tile.size[0]}x{tile.size[1]}\n".encode())
            h.update(tile.tobytes())
    except Exception:  # noqa: BLE001 - the reader's files unreadable, an odd image: the page is read, not kept
        return None
    return h.hexdigest()


def _path(key: str) -> Optional[Path]:
    where = folder()
    return None if where is None else where / key[:2] / f"{key}.json"


def recall(key: Optional[str], name: str) -> "Optional[PageReading]":
    """The reading kept under ``key``, named ``name`` (its strip's parts renamed with it); None when none is kept
    or what is kept cannot be read (it is then read again, and kept anew)."""
    from .files import read_regular_file
    from .reading import PageReading, renamed

    path = _path(key) if key else None
    if path is None:
        return None
    try:  # a regular file of a sane size only: a FIFO or a huge file put there never hangs or fills the run
        data = json.loads(read_regular_file(path, MAX_FILE_BYTES))
        reading = renamed(PageReading.from_dict(data["reading"]), name)
    except Exception:  # noqa: BLE001 - none kept, or a damaged or foreign file: read the page again
        return None
    try:
        os.utime(path)  # recently used: pruned last
    except OSError:
        pass
    return reading


def keep(key: Optional[str], reading: "PageReading") -> None:
    """Keep ``reading`` under ``key`` (a complete reading: the caller checks).  Never raises."""
    path = _path(key) if key else None
    if path is None:
        return
    from .files import keep_cache_file

    try:
        keep_cache_file(path, json.dumps({"reading": reading.to_dict()}, separators=(",", ":")).encode())
    except Exception:  # noqa: BLE001 - a full, read-only or missing cache folder: the run goes on without it
        return
    _prune_once(path.parent.parent)


def _prune_once(where: Path) -> None:
    """Once per process: if more than :data:`MAX_ENTRIES` readings are kept, remove the least recently used."""
    global _pruned
    with _lock:
        if _pruned:
            return
        _pruned = True
    kept, temporary = _entries(where)
    _remove_abandoned(temporary)
    paths = [e.path for e in kept]
    if len(paths) <= MAX_ENTRIES:  # counted without a stat each: the usual case costs a few ms
        return
    used = []
    for path in paths:
        try:
            used.append((os.stat(path).st_mtime, path))
        except OSError:
            pass
    used.sort()
    for _, path in used[:len(used) - int(MAX_ENTRIES * 0.9)]:
        try:
            os.unlink(path)
        except OSError:
            pass


def size() -> tuple[int, int]:
    """How many readings are kept, and their bytes on disk (``doctor``)."""
    where = folder()
    count = total = 0
    for entry in _entries(where)[0] if where else ():
        try:
            total += entry.stat().st_size
            count += 1
        except OSError:  # removed since (pruned by another process)
            pass
    return count, total


def _entries(where: Path) -> tuple[list, list]:
    """The ``os.DirEntry`` of each reading kept in ``where`` (``ab/abcd....json``), and of each temporary file beside
    them (a reading being written, or one whose writer was killed before renaming it into place); those it could
    list when a folder cannot be read."""
    from .files import TEMP_NAME

    kept: list = []
    temporary: list = []
    try:
        for sub in os.scandir(where):
            if sub.is_dir():
                for entry in os.scandir(sub.path):
                    if entry.name.endswith(".json"):
                        kept.append(entry)
                    elif TEMP_NAME.match(entry.name):
                        temporary.append(entry)
    except OSError:
        pass
    return kept, temporary


def _remove_abandoned(temporary: list) -> None:
    """Remove the temporary files older than :data:`ABANDONED_AFTER`: a reading is written in well under a second,
    so these were left by a process killed while writing (another process may be writing the younger ones now)."""
    now = time.time()
    for entry in temporary:
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > ABANDONED_AFTER
            if old and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
        except OSError:  # gone already (renamed into place, or removed by another process)
            pass
