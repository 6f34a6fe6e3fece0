"""Files on disk, safely: atomic writes, bounded reads of regular files only, any name, any encoding.

Everything that touches the user's disk goes through here, so the rules hold everywhere:

* **Atomic writes.** A file is written to a hidden temporary name next to its
  target (``.NAME.tmp-1a2b3c4d``), flushed, then renamed into place: a reader never
  sees half a file, and a crash leaves the old file (or nothing) plus a temporary
  file that the next run of the same output folder removes (:func:`remove_stale_temps`).
* **Reads of regular files only, size-checked first.** A FIFO, a device or a link to
  ``/dev/zero`` named ``004.png`` is refused before a byte is read, never waited on.
* **Any name a file system allows.** Paths whose bytes are not UTF-8 are read and
  written as they are; what we *show* and *record* as text is valid UTF-8
  (:func:`readable`), with the exact bytes kept where a record must locate a file.
* **Any encoding a user saves a description in** (:func:`decode_text`).
* **Disk errors that stop the whole run** (disk full, read-only) are told apart from
  errors that belong to one section (:func:`raise_for_disk`).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

from .errors import DiskFullError, InputError, OutputError, PageError

if TYPE_CHECKING:
    import zipfile

#: the hidden names our atomic writes use; anything matching under an output folder we hold is stale
TEMP_NAME = re.compile(r"^\..+\.tmp-[0-9a-f]{8}$")
#: the lock file of an output folder (see :mod:`manga2music.lock`)
LOCK_NAME = ".manga2music.lock"
_RUN_STOPPING = {errno.ENOSPC: "full", errno.EDQUOT: "over its quota", errno.EROFS: "read-only"}


# ---------------------------------------------------------------- names


def readable(text: str | os.PathLike) -> str:
    """``text`` as valid UTF-8 for people and JSON: undecodable bytes (kept by Python as surrogates) become '�'."""
    s = os.fspath(text)
    if isinstance(s, bytes):
        s = os.fsdecode(s)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        pass
    try:
        raw = s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that did not come from undecodable bytes
        return s.encode("utf-8", "replace").decode("utf-8")
    local = _locale_encoding()
    if local:  # the command restarted in UTF-8 mode in a locale of another encoding, whose names these may be
        try:
            return raw.decode(local)
        except (UnicodeDecodeError, LookupError):
            pass
    return raw.decode("utf-8", "replace")


def _locale_encoding() -> str | None:
    """The locale's own encoding where it is not UTF-8 (``EUC-JP``: names stored on such a system), else None."""
    try:
        import locale

        codeset = locale.nl_langinfo(locale.CODESET)
    except (ImportError, AttributeError, ValueError):  # no nl_langinfo (Windows)
        return None
    if not codeset or codeset.replace("-", "").lower() in ("utf8", "ansi_x3.41968", "ascii"):
        return None
    return codeset


def from_current_folder(path: str | os.PathLike, what: str | None = None) -> None:
    """InputError when ``path`` is relative and the folder this process runs in is gone (deleted or moved while in
    use), so the path cannot be taken from it: Path.resolve() ended the command in a "FileNotFoundError"
    traceback.  ``what`` names the path in the message (``MANGA2MUSIC_CACHE=models``); a whole path is left alone."""
    if os.path.isabs(os.fspath(path)):
        return
    try:
        os.getcwd()
    except FileNotFoundError:
        raise InputError(f"the folder this command runs in is gone (deleted or moved while in use), and "
                         f"{what or readable(path)} is taken from it",
                         hint="cd into a folder that exists, or give whole paths") from None


def name_key(name: str) -> str:
    """Two names are one where this is the same: case-blind and blind to the Unicode form, as macOS and Windows tell
    names apart (macOS, and zips made there, store "ガード" decomposed; an editor or Linux types it composed)."""
    import unicodedata

    return unicodedata.normalize("NFC", name).casefold()


def exact_bytes_hex(path: str | os.PathLike) -> str | None:
    """The path's bytes in hex when its name is not valid UTF-8 (so a record can still locate it), else None."""
    s = os.fspath(path)
    try:
        s.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return os.fsencode(s).hex()


def exact_name(raw_hex: str) -> str:
    """The name :func:`exact_bytes_hex` recorded, as the str that opens it again (its bytes surrogate-escaped)."""
    return bytes.fromhex(raw_hex).decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------- disk errors


def raise_for_disk(exc: BaseException, where: Path) -> None:
    """Re-raise ``exc`` as a run-stopping error when the disk is full or read-only; otherwise return."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        from .options import another_output, on_command_line

        again = "run the same command again" if on_command_line() else "make the same call again"
        raise DiskFullError(f"the disk holding {readable(where)} is {_RUN_STOPPING[code]}",
                            hint=f"free some space (or choose {another_output()}) and {again}: finished sections are "
                                 "kept") from exc
    if code == errno.EROFS:
        from .options import writable_output

        raise OutputError(f"{readable(where)} is on a read-only file system",
                          hint=f"choose {writable_output()}") from exc


# ---------------------------------------------------------------- atomic writes


def _create_temp(path: Path) -> Path:
    name = path.name
    while len(os.fsencode(name)) > 255 - len("..tmp-12345678"):  # a file name has at most 255 bytes
        name = name[:-1]
    for _ in range(100):
        tmp = path.with_name(f".{name}.tmp-{secrets.token_hex(4)}")
        try:  # 0o666 under the umask: the final file gets the user's usual permissions
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file next to {path}")


@contextmanager
def temp_beside(path: Path) -> Iterator[Path]:
    """A hidden, empty temporary file next to ``path``, removed again if the block fails.

    The caller fills it and later renames it into place (or lets :func:`atomic_path` do both).
    Parent folders are created.  A full or read-only disk raises a run-stopping error.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create_temp(path)
    except OSError as exc:
        raise_for_disk(exc, path.parent)
        raise
    try:
        yield tmp
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise_for_disk(exc, path.parent)
        raise


def fill(tmp: Path, data: bytes) -> None:
    """Write ``data`` to ``tmp`` and flush it to disk (so a crash never leaves an empty file behind a rename)."""
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary path next to ``path``; on success it replaces ``path``.

    The temporary file already exists, empty, when the block starts.  On any
    exception (Ctrl-C included) it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    with temp_beside(path) as tmp:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def keep_cache_file(path: Path, data: bytes) -> None:
    """Write a cache file (thumbnails, bridges): complete or absent (temp + rename), but not flushed to disk
    (a lost one is made again)."""
    with temp_beside(path) as tmp:
        tmp.write_bytes(data)
        os.replace(tmp, path)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` all at once (temp file + rename); return ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fill(tmp, data)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` as UTF-8, atomically; return ``path``."""
    return write_bytes_atomic(path, text.encode("utf-8", "replace"))


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove our hidden temporary files under ``folder`` (left by a killed run); return what was removed.

    Only call this while holding the folder's lock: then no other run is writing there.  A subfolder that holds a
    lock file of its own is another output folder, which another run may be writing right now: it is left to the
    runs of that folder.  Symlinked folders are not followed.
    """
    removed = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not (Path(root) / d / LOCK_NAME).exists()]
        for name in names:
            if TEMP_NAME.match(name):
                target = Path(root) / name
                with suppress(OSError):
                    if stat.S_ISREG(target.lstat().st_mode):
                        target.unlink()
                        removed.append(target)
    return removed


# ---------------------------------------------------------------- reads


def remove_folders_of_dead_processes(parent: Path, prefix: str) -> None:
    """Remove the folders ``PREFIX<pid>-...`` in ``parent`` whose process is no longer running: what one killed before
    it could clean up (SIGKILL, the kernel's out-of-memory killer, a power cut) left, the user's files in it."""
    import shutil

    import psutil

    for folder in Path(parent).glob(prefix + "*"):
        pid = folder.name[len(prefix):].split("-")[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def read_regular_file(path: Path, limit: int, *, what: str = "file") -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes; else :class:`PageError`.

    Opened without blocking and checked with ``fstat`` on the open file, so a FIFO
    never hangs the run and a link to a device is refused, whatever its name says.
    """
    shown = readable(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise PageError(f"{shown}: cannot read ({exc.strerror or exc})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device" if stat.S_ISCHR(info.st_mode)
                    or stat.S_ISBLK(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode) else "not a file")
            raise PageError(f"{shown}: not a regular file ({kind})")  # the caller says it is skipped
        if info.st_size > limit:
            raise PageError(f"{shown}: {info.st_size / 1024**2:.2f} MB is more than the {limit / 1024**2:g} MB {what} "
                            "limit")
        chunks, total = [], 0
        while True:
            block = os.read(fd, min(1 << 20, limit + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if total > limit:  # the file grew while we read it
                raise PageError(f"{shown}: larger than the {limit // 1024**2} MB {what} limit")
        return b"".join(chunks)
    except OSError as exc:
        raise PageError(f"{shown}: cannot read ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)


def read_zip_entry(zf: "zipfile.ZipFile", info: "zipfile.ZipInfo", limit: int) -> bytes | None:
    """The bytes of one entry of an open zip (a comic archive's page, an EPUB's document), or None when it holds
    more than ``limit`` bytes.  Its declared size is checked first and never trusted alone: at most ``limit + 1``
    bytes are unpacked, so an entry that lies about its size cannot fill the memory."""
    import zipfile

    if info.file_size > limit:
        return None
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except damaged_data_errors() as exc:  # a bad sector, a download cut and resumed: the zip says CRC-32 itself
        raise zipfile.BadZipFile(f"damaged data ({exc})") from exc
    return data if len(data) <= limit else None


def damaged_data_errors() -> tuple[type[Exception], ...]:
    """What unpacking a damaged compressed entry raises, besides ``zipfile.BadZipFile`` (a bad CRC) and OSError
    (bzip2's): zlib's and lzma's own errors, which are neither, so a handler of damaged archives misses them."""
    import lzma
    import zlib

    return (zlib.error, lzma.LZMAError)


def is_regular_file(path: Path) -> bool:
    """True for a regular file (following links); FIFOs, devices, sockets and folders are not."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


#: what descriptions saved by Windows and older editors are written in, most likely first for manga readers
LEGACY_ENCODINGS = ["cp932", "euc_jp", "cp1252", "cp1251", "gb18030", "big5", "euc_kr"]


#: the letters of Western European text outside ASCII, as cp1252 (Windows' Latin-1) writes them
_WESTERN_LETTERS = frozenset(chr(c) for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7)) | frozenset("ŒœŠšŽžŸ")


def _western_text(data: bytes) -> str | None:
    """``data`` as cp1252 when it is mostly ASCII and every other byte is a Western European letter ("Berceuse
    très douce"): charset-normalizer took such short texts for GBK or Shift-JIS ("tr鋊 douce", "ド va").  A
    Japanese or Chinese text has far more bytes above ASCII, or ones that are no such letter."""
    high = sum(1 for b in data if b >= 0x80)
    if not high or 3 * high > len(data.strip()):
        return None
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    return text if all(c in _WESTERN_LETTERS for c in text if ord(c) >= 0x80) else None


#: hiragana and full-width katakana: Japanese writes them between its kanji, and no Chinese text holds many
_KANA = re.compile("[\u3041-\u30ff]")


def _kana_text(data: bytes) -> str | None:
    """``data`` as Shift-JIS (cp932) where it decodes so and a good part of what is not ASCII is kana ("悲しいピアノ
    とチェロ"): charset-normalizer took short such texts for GB18030 ("斶偟偄僺傾僲"), which has kana too, but a
    Chinese text read as Shift-JIS gives few."""
    try:
        text = data.decode("cp932")
    except UnicodeDecodeError:
        return None
    wide = [c for c in text if ord(c) >= 0x80]
    return text if wide and 3 * len(_KANA.findall(text)) >= len(wide) else None


def decode_text(data: bytes, guessed: Optional[list] = None) -> str:
    """Text in whatever encoding a user saved it: UTF-8 (with or without BOM), UTF-16/32 with a BOM,
    else the best guess of charset-normalizer (Shift-JIS, Latin-1, ...), else UTF-8 with replacements.  ``guessed``
    gets the encoding charset-normalizer guessed, where it did: a guess for a short text may be wrong (GBK read as
    Korean), so the caller says it."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                       (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    latin = _western_text(data)
    if latin is not None:
        return latin
    japanese = _kana_text(data)
    if japanese is not None:
        return japanese
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=LEGACY_ENCODINGS).best()
    if best is not None:
        if guessed is not None:
            guessed.append(best.encoding)
        return str(best)
    return data.decode("utf-8", "replace")


def place_from_output(source: Path, output: Path) -> str:
    """Where a file the user gave (a description file: ``compose.description_file``; a scenes file) is, as a record
    names it: from the output folder (``../desc/ch1.txt``), so that a project moved or copied whole still finds it
    (an absolute path made a numbered copy of every track there), through links; absolute where no relative path
    leads there (another drive)."""
    try:
        return Path(os.path.relpath(os.path.realpath(source), os.path.realpath(output))).as_posix()
    except ValueError:
        return os.path.realpath(source)
