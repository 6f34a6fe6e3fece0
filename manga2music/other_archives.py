"""Comic archives that are not zips: RAR (.cbr/.rar), 7-Zip (.cb7/.7z) and tar (.cbt/.tar).

A tar is read with :mod:`tarfile`.  RAR, 7-Zip and a tar compressed as a whole (gzip, bzip2, xz, zstd: a
``.tar.gz`` renamed ``.cbt``) are read through ``bsdtar``
(libarchive's command; macOS's ``tar`` is bsdtar, and so is Windows 10+'s ``tar.exe``): finding the
sections lists its headers only (``bsdtar -t``); reading a page turns the archive into a plain tar stream once (``bsdtar -cf - @archive``), which is kept
in a private temporary file for the rest of the process (what a killed process
left is removed by the next one that converts), so a chapter's pages
are each read from it at once and a solid archive is unpacked once, not once a
page.  Nothing is extracted among the user's files, names are never used as
paths, and the conversion stops at :data:`manga2music.sections.MAX_ARCHIVE_BYTES`
(an archive bomb).  Without ``bsdtar`` such an archive is one failed section
whose line says what to install; one it cannot unpack fails its section in one line
(:class:`~manga2music.errors.ArchiveError`), not one line a page.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import posixpath
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import ArchiveError, InputError, PageError
from .files import readable

#: what to tell a user whose machine has no bsdtar
INSTALL_BSDTAR = ("install bsdtar (libarchive): `apt install libarchive-tools` on Debian/Ubuntu, `dnf install bsdtar` "
                  "on Fedora, `brew install libarchive` on macOS; or extract the archive and give the folder")
#: converted archives kept at once (each a temporary file as large as the archive's pages)
_KEPT = 4
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Member:
    """A file inside the archive: its name as the archive stores it, and its size unpacked."""

    name: str
    size: int


def _version_line(command: str) -> str:
    try:
        return subprocess.run([command, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def bsdtar() -> str | None:
    """The bsdtar command on this machine (``bsdtar``, or a ``tar`` that is bsdtar), or None."""
    if found := shutil.which("bsdtar"):
        return found
    tar = shutil.which("tar")
    return tar if tar is not None and "bsdtar" in _version_line(tar) else None


def bsdtar_version() -> str | None:
    """``bsdtar 3.6.2 - libarchive 3.6.2`` (the start of its first line), or None without bsdtar."""
    tool = bsdtar()
    return None if tool is None else (" ".join(_version_line(tool).split()[:5]) or "bsdtar")


def list_members(archive: Path, kind: str, limit: int) -> list[Member]:
    """The regular files in ``archive`` (a ``kind`` archive: "RAR", "7-Zip", "tar" or a compressed tar such as
    "gzip-compressed tar"), in the archive's order.

    A RAR, 7-Zip or compressed tar archive is only listed here (``bsdtar -t``: its headers), so finding the chapters
    of a series unpacks nothing; its sizes are 0, not known until it is unpacked, which stops past ``limit``.  Raises
    :class:`InputError` (one line for the user) when it cannot be read."""
    if kind == "tar":
        _, members = _index(archive, kind, limit)
        # a link that leads nowhere in the archive is listed too: reading it says why it is no page (as for a
        # compressed tar, which bsdtar lists whole)
        return [Member(m.name, target.size if (target := _link_target(members, m)) is not None else 0)
                for m in members.values() if not m.isdir()]  # a FIFO or a device named as a page is a page that
        # cannot be read (said), as in a compressed tar
    names = _listed(archive, kind)
    if not names:  # bsdtar takes a damaged 7-Zip archive for an empty one
        raise InputError(f"{readable(archive)}: a {kind} archive in which nothing can be read (damaged, or cut "
                         "short?)")
    return [Member(name, 0) for name in names if not name.endswith("/")]


def _listed(archive: Path, kind: str) -> list[str]:
    """The names ``bsdtar -t`` lists in ``archive`` (files and folders)."""
    tool = _tool_for(archive, kind)
    source = os.path.realpath(archive)
    try:
        done = subprocess.run([tool, "-t", "-f", source], capture_output=True, env=_utf8_env(tool),
                              stdin=subprocess.DEVNULL, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"{readable(archive)}: cannot list this {kind} archive ({exc})") from exc
    if done.returncode != 0:
        raise _unreadable(archive, kind, done.stderr.decode("utf-8", "replace"), tool, source)
    return [_unescaped(line).decode("utf-8", "surrogateescape") for line in done.stdout.split(b"\n") if line]


#: the letters bsdtar's listing writes after a backslash for a character it does not print as it is
_ESCAPED = {ord("a"): 7, ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("v"): 11,
            ord("\\"): ord("\\")}


def _unescaped(line: bytes) -> bytes:
    """A name as ``bsdtar -t`` lists it, as stored: bsdtar writes a backslash as ``\\\\``, a tab or newline as
    ``\\t``, ``\\n``, and a byte that is no character of the locale (a Latin-1 name) in octal, ``\\351``; read
    so, the name was not found in the archive (its chapter failed, or gained a false one)."""
    out = bytearray()
    i = 0
    while i < len(line):
        if line[i] == 0x5C and i + 1 < len(line):
            if line[i + 1] in _ESCAPED:
                out.append(_ESCAPED[line[i + 1]])
                i += 2
                continue
            digits = line[i + 1:i + 4]
            if len(digits) == 3 and all(0x30 <= d <= 0x37 for d in digits):
                out.append(int(digits, 8))
                i += 4
                continue
        out.append(line[i])
        i += 1
    return bytes(out)


def read_member(archive: Path, kind: str, name: str, limit: int, page_limit: int) -> bytes:
    """The bytes of the file ``name`` in ``archive``; :class:`PageError` when it cannot be read."""
    try:
        tar, members = _index(archive, kind, limit)
        member = _link_target(members, members[name]) or members[name]  # a link: the page it stands for
        if member.size > page_limit:
            raise PageError(f"{readable(archive)}!{readable(name)}: {member.size / 1024**2:.2f} MB is more than the "
                            f"{page_limit / 1024**2:g} MB page limit")
        if not member.isfile() or member.issparse():
            raise PageError(f"{readable(archive)}!{readable(name)}: not a plain file")
        with open(tar, "rb") as fh:
            fh.seek(member.offset_data)
            data = fh.read(member.size)
        if len(data) != member.size:
            raise PageError(f"{readable(archive)}!{readable(name)}: cut short")
        return data
    except InputError as exc:  # the archive itself: every page of it fails alike
        raise ArchiveError(exc.message) from exc
    except (KeyError, OSError) as exc:
        raise PageError(f"{readable(archive)}!{readable(name)}: cannot read ({exc})") from exc


def _link_target(members: dict[str, tarfile.TarInfo], member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """The regular file ``member`` is (itself), or a hard or symbolic link in the archive leads to (``003.png``
    linked to ``001.png``: a packer's way of storing one picture twice); None for a link out of the archive, to
    nothing, or in a loop, and for anything else (a folder, a device)."""
    for _ in range(8):
        if member.isfile():
            return member
        if member.islnk():  # a hard link names its target from the archive's root
            name = member.linkname
        elif member.issym():  # a symbolic one from its own folder
            name = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
        else:
            return None
        found = members.get(name) or members.get(name.removeprefix("./")) or members.get(f"./{name}")
        if found is None or name.startswith(("/", "../")):
            return None
        member = found
    return None


#: (tar path, size, mtime) -> the tar's members by name, for the tars read last
_indexes: dict[tuple, dict[str, tarfile.TarInfo]] = {}
_indexes_lock = threading.Lock()


def _index(archive: Path, kind: str, limit: int) -> tuple[Path, dict[str, tarfile.TarInfo]]:
    """The plain tar that holds ``archive``'s files (the archive itself for a tar), and its members by name."""
    path = archive if kind == "tar" else _converted(archive, kind, limit)
    try:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with _indexes_lock:
            if key not in _indexes:
                with tarfile.open(path, mode="r:") as tar:
                    _indexes[key] = {m.name: m for m in tar.getmembers()}
                while len(_indexes) > 2 * _KEPT:
                    _indexes.pop(next(iter(_indexes)))
            return path, _indexes[key]
    except (OSError, tarfile.TarError) as exc:
        raise InputError(f"{readable(archive)}: not a readable {kind} archive ({exc})") from exc


class _Conversions:
    """RAR and 7-Zip archives already turned into plain tars in this process, newest last."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.folder: Path | None = None
        self.kept: dict[tuple, Path] = {}
        self.failed: dict[tuple, InputError] = {}  # said once, not unpacked again for each of its pages
        self.runs = 0  # runs of this process under way (see :func:`unpacked_for_a_run`)

    def end_run(self) -> None:
        """The last run under way has ended: nothing unpacked stays (a program may go on long after)."""
        with self.lock:
            self.runs -= 1
            if self.runs or self.folder is None:
                return
            folder, self.folder = self.folder, None
            self.kept.clear()
            self.failed.clear()  # an archive mended before the next run is read again
        shutil.rmtree(folder, ignore_errors=True)

    def get(self, archive: Path, kind: str, limit: int) -> Path:
        stat = archive.stat()
        key = (str(archive.resolve()), stat.st_size, stat.st_mtime_ns)
        with self.lock:
            if key in self.kept:
                self.kept[key] = self.kept.pop(key)  # the newest again
                return self.kept[key]
            if key in self.failed:
                raise self.failed[key]
            if self.folder is None:
                _remove_stale_folders()
                self.folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))
                atexit.register(shutil.rmtree, self.folder, True)
            handle, name = tempfile.mkstemp(suffix=".tar", dir=self.folder)
            os.close(handle)
            target = Path(name)
            try:
                _convert(archive, kind, limit, target)
            except InputError as exc:
                self.failed[key] = exc
                raise
            self.kept[key] = target
            while len(self.kept) > _KEPT:
                old = self.kept.pop(next(iter(self.kept)))
                with contextlib.suppress(OSError):  # still open elsewhere, on Windows: removed at exit
                    old.unlink(missing_ok=True)
            return target


_conversions = _Conversions()


@contextlib.contextmanager
def unpacked_for_a_run() -> Iterator[None]:
    """What is unpacked during the block is removed when it ends, unless another run of this process goes on
    (and then after the last one): a command's run, or a call of the Python API."""
    with _conversions.lock:
        _conversions.runs += 1
    try:
        yield
    finally:
        _conversions.end_run()


_PREFIX = "manga2music-archives-"


def _remove_stale_folders() -> None:
    """Remove what runs killed before they could clean up (SIGKILL, SIGTERM, a power cut) left: the folders named
    after a process that is no longer running."""
    from .files import remove_folders_of_dead_processes

    remove_folders_of_dead_processes(Path(tempfile.gettempdir()), _PREFIX)


def _converted(archive: Path, kind: str, limit: int) -> Path:
    try:
        return _conversions.get(archive, kind, limit)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):  # not the archive's disk: the temp one
            raise InputError(f"{readable(archive)}: no room in the temporary folder {readable(tempfile.gettempdir())} "
                             f"to unpack it ({exc.strerror or exc}); free space there, or set TMPDIR to a folder with "
                             "room") from exc
        raise InputError(f"{readable(archive)}: cannot read ({exc.strerror or exc})") from exc


def _convert(archive: Path, kind: str, limit: int, target: Path) -> None:
    """``bsdtar -cf - @archive`` into ``target``, stopped past ``limit`` bytes; InputError when it fails."""
    tool = _tool_for(archive, kind)
    env = _utf8_env(tool)
    # pax keeps long and non-ASCII names whole; "@archive" reads the entries of an existing archive
    source = os.path.realpath(archive)
    command = [tool, "-c", "-f", "-", "--format", "pax", "@" + source]
    written = 0
    too_big = False
    with open(target, "wb") as out, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, env=env)
        assert process.stdout is not None
        with process.stdout:
            while chunk := process.stdout.read(_COPY_CHUNK):
                written += len(chunk)
                if written > limit + 16 * 1024**2:  # the pages plus the tar's own headers
                    too_big = True
                    process.kill()
                    break
                out.write(chunk)
        code = process.wait()
        errors.seek(0)
        said = errors.read().decode("utf-8", "replace")
    if too_big:
        target.unlink(missing_ok=True)
        raise InputError(f"{readable(archive)}: pages add up to more than {limit // 1024**3} GB unpacked; refusing it "
                         "(an archive bomb?); if it is a real volume of pages, unpack it and give its folder")
    if code != 0:
        target.unlink(missing_ok=True)
        raise _unreadable(archive, kind, said, tool, source)


def _tool_for(archive: Path, kind: str) -> str:
    tool = bsdtar()
    if tool is None:
        raise InputError(f"{readable(archive)}: a {kind} archive; reading it needs bsdtar, which this machine lacks: "
                         + INSTALL_BSDTAR)
    return tool


def _utf8_env(tool: str) -> dict:
    env = dict(os.environ)
    if os.name != "nt" and not (_utf8_locale(env) and _locale_installed(tool, env)):  # bsdtar stops at a non-ASCII
        # name in any other locale, and in one the machine lacks (LANG=en_US.UTF-8 sent over ssh to a server that
        # has only C.UTF-8: "cannot read this 7-Zip archive (Failed to set default locale)")
        env["LC_ALL"] = "en_US.UTF-8" if sys.platform == "darwin" else "C.UTF-8"
    return env


#: (bsdtar, the locale variables) -> whether bsdtar could set that locale
_locales_tried: dict[tuple, bool] = {}


def _locale_installed(tool: str, env: dict) -> bool:
    """Whether the locale ``env`` chooses is one this machine has: bsdtar says "Failed to set default locale" as it
    starts where it is not (once per locale and process)."""
    key = (tool, *sorted((k, v) for k, v in env.items() if k == "LANG" or k.startswith("LC_")))
    if key not in _locales_tried:
        try:
            said = subprocess.run([tool, "--version"], capture_output=True, env=env, stdin=subprocess.DEVNULL,
                                  timeout=10).stderr
        except (OSError, subprocess.SubprocessError):
            said = b""
        _locales_tried[key] = b"Failed to set default locale" not in said
    return _locales_tried[key]


def _unreadable(archive: Path, kind: str, said: str, tool: str, source: str) -> InputError:
    other = "unrar" if kind == "RAR" else "7-Zip" if kind in ("7-Zip", "zip") else "tar xf"
    return InputError(f"{readable(archive)}: cannot read this {kind} archive ({_first_error(said, tool, source)}); "
                      f"extract it with another program ({other}) and give the folder")


def _utf8_locale(env: dict) -> bool:
    """Whether the locale these variables choose reads text as UTF-8 (LC_ALL, then LC_CTYPE, then LANG)."""
    chosen = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    return "utf-8" in chosen.lower() or "utf8" in chosen.lower()


#: what bsdtar's silent failures ("(null)": a password-protected or split RAR, among others) most often are
_UNSAID = "bsdtar could not unpack it and did not say why: a password-protected archive, or one of several parts?"


def _first_error(said: str, tool: str, source: str) -> str:
    """bsdtar's first complaint, without its "bsdtar: " prefix and the archive's path."""
    prefix = Path(tool).stem + ":"
    for line in said.splitlines():
        line = line.strip().removeprefix(prefix).strip()
        for about in (f"Error reading archive {source}: ", f"Error opening archive {source}: "):
            line = line.removeprefix(about)
        if line and not line.startswith("Error exit delayed"):
            return _UNSAID if line == "(null)" else line.rstrip(".")
    return _UNSAID
