"""One run per output folder at a time.

``with output_lock(folder):`` holds an operating-system lock (``flock`` through
the ``filelock`` package) on ``folder/.manga2music.lock`` for the whole run.  The
kernel releases it when the process ends, however it ends (Ctrl-C, ``kill -9``,
a crash), so a lock can never be left stale.  While holding it we write who holds
it (pid, user, host, command, start time) to ``.manga2music.lock.json``, so a second run
can say in one line which process has the folder, and exits 2; with ``wait=True``
it waits its turn instead.

Some filesystems keep no file locks: NFS mounted without its lock daemon (``flock`` fails with "No locks
available"), Lustre mounted without ``-o flock`` ("Function not implemented"), some FUSE mounts.  There a run holds
a lock *file* instead (filelock's ``SoftFileLease``: created exclusively, naming its process and machine, renewed by
a thread every ``LEASE_SECONDS / 3``).  A lock file whose process is gone from this machine is taken over at once; one
written on another machine, which cannot be asked, is taken over once it has gone a whole ``LEASE_SECONDS`` without
renewal (its machine crashed, or its job was killed), so a run refused by it watches it for that long first.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import OutputBusyError, OutputError
from .files import LOCK_NAME, raise_for_disk, readable, write_text_atomic
from .options import another_output, output_named, writable_output

#: the output folders this process holds (real path -> the thread that holds it)
_held_by: dict[str, int] = {}
HOLDER_NAME = ".manga2music.lock.json"


def not_a_folder(folder: Path) -> OutputError:
    """The error for an output folder that is a file, in the command line's words or a program's."""
    from .options import on_command_line

    return OutputError(f"{output_named()} {readable(folder)} is a file, not a folder",
                       hint=f"choose {'a folder with -o' if on_command_line() else 'another output folder'}")


def prepare_output(folder: Path) -> Path:
    """Create ``folder`` if needed; a file in its place or an unwritable disk is one :class:`OutputError`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise not_a_folder(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        dangling = next((p for p in (folder, *folder.parents) if p.is_symlink() and not p.exists()), None)
        if dangling is not None:  # a link to a share not mounted (the folder or one it is in) was "a file in the way"
            from .sections import broken_link_words

            inside = f"{readable(folder)} is inside " if dangling != folder else ""
            raise OutputError(f"{output_named()} {inside}{broken_link_words(dangling)}",
                              hint=f"mount it, or choose {another_output()}") from exc
        raise OutputError(f"{output_named()} {readable(folder)}: a file is in the way of that folder",
                          hint=f"choose {another_output()}") from exc
    except OSError as exc:
        raise_for_disk(exc, folder)
        raise OutputError(f"cannot create the output folder {readable(folder)} ({exc.strerror or exc})",
                          hint=f"choose {writable_output()}") from exc
    return folder


#: what ``flock`` answers on a filesystem that keeps no file locks: NFS without its lock daemon (ENOLCK), Lustre
#: without ``-o flock`` (ENOSYS), some FUSE and network mounts (EOPNOTSUPP, ENOTSUP)
NO_FILE_LOCKS = frozenset({errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)})
#: on such a filesystem: the lock file that stands in for the lock, and how long one must go unrenewed before it is
#: taken for a dead run's (every manga2music sharing the folder must agree on it; it is renewed every third of it)
LEASE_NAME = ".manga2music.lock.lease"
LEASE_SECONDS = 30.0

#: how long a run refused a folder waits for the holder's record, written right after that holder took the lock
HOLDER_PATIENCE = 1.0


def _holder_record(folder: Path, patience: float = HOLDER_PATIENCE) -> dict | None:
    """The record of the run holding ``folder``; ``None`` when it is still not written after ``patience`` seconds.  A
    run that took the lock a moment ago writes its record right after: waiting for it beats "pid not written yet" to
    someone who needs to know whom to ask.  Raises ``OSError`` or ``ValueError`` when it cannot be read."""
    deadline = time.monotonic() + patience
    while True:
        try:
            info = json.loads((folder / HOLDER_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError:  # still not written: that run has only just started (or has just ended)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
            continue
        if not isinstance(info, dict):
            raise ValueError(f"{HOLDER_NAME} holds no record")
        return info


def _holder(folder: Path) -> str:
    """Who holds ``folder``, in words."""
    try:
        info = _holder_record(folder)
        if info is None:
            return "just started; its pid is not written yet"
        if info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():  # two threads of one
            # program: its own pid said as "another run" misled
            return f"another call of this very program, started {info.get('started', '?')}"
        user = f" of {info['user']}" if info.get("user") else ""  # one written by an older manga2music names none
        return (f"pid {info['pid']}{user} on {info.get('host', '?')}, started {info.get('started', '?')}"
                f" ({info.get('command', 'manga2music')})")
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"


def _user_name() -> str:
    """Who runs this process, from the account database (``$USER`` can be left over from ``su``); its uid when the
    account has no name there (a container run as an unnamed uid)."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):  # Windows has no pwd; an unnamed uid
        import getpass

        try:
            return getpass.getuser()
        except Exception:  # noqa: BLE001 - no name anywhere: the number says who
            return str(os.getuid()) if hasattr(os, "getuid") else "?"


@contextmanager
def output_lock(folder: Path, *, wait: bool | float = False, command: str = "run",
                note: Callable[[str], None] = lambda message: None,
                waiting: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Hold the lock of ``folder`` (created if needed) for the duration of the block.  ``wait``: True to queue
    behind another run as long as it takes, a number of seconds to queue at most that long (then
    :class:`OutputBusyError`, as without ``wait``).  ``note`` hears once that the run waits for another (which one),
    so that a queued run does not sit there without a word; ``waiting()`` is called about once a second while it
    waits, so that a program can cancel the wait by raising from it."""
    folder = prepare_output(folder)
    key = os.path.realpath(folder)
    if _held_by.get(key) == threading.get_ident():  # waiting would be for ever: the holder waits on this very call
        raise OutputBusyError(f"{readable(folder)} is being written by a manga2music call of this very thread (a "
                              "call made from within that call's callback)",
                              hint="write into another folder, or make the call after that one returns")
    limit = None if wait is True else float(wait or 0)
    with _a_stop_said_as_waiting():
        while True:  # a folder above busy: waited for holding nothing (holding this folder's lock, a run over it
            # waiting for this one waited for ever: two --wait runs into `out` and `out/Vol 1`), then looked at
            # again once held
            _refuse_inside_a_busy_output(folder, limit, note)
            lock = _take(folder, wait, limit, note, waiting)
            try:
                _refuse_inside_a_busy_output(folder, 0, note)
                break
            except OutputBusyError:
                lock.release()
                if limit == 0:
                    raise
    try:
        info = {"pid": os.getpid(), "user": _user_name(), "host": socket.gethostname(),
                "command": " ".join(["manga2music", command]), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "argv": [readable(a) for a in sys.argv[1:]][:20]}
        _held_by[key] = threading.get_ident()
        try:
            write_text_atomic(folder / HOLDER_NAME, json.dumps(info) + "\n")
        except OSError as exc:  # a finished folder made read-only (chmod 555) keeps the lock file of its first run
            raise_for_disk(exc, folder)
            raise OutputError(f"cannot write into the output folder {readable(folder)} ({exc.strerror or exc})",
                              hint=f"choose {writable_output()}") from None
        yield
    finally:
        _held_by.pop(key, None)
        with suppress(OSError, ValueError):  # a lock file lost to another run (see _lease_instead) is its record now
            if json.loads((folder / HOLDER_NAME).read_text(encoding="utf-8")).get("pid") == os.getpid():
                (folder / HOLDER_NAME).unlink()
        lock.release()


def _take(folder: Path, wait: bool | float, limit: float | None, note: Callable[[str], None],
          waiting: Callable[[], None]):
    """``folder``'s own lock, taken (see :func:`output_lock`)."""
    from filelock import FileLock, LeaseSettingsMismatch, Timeout

    lock = FileLock(str(folder / LOCK_NAME), timeout=0, fallback_to_soft=False)
    try:
        try:
            _acquire(lock, folder, limit, note, waiting)
        except OSError as exc:
            if exc.errno not in NO_FILE_LOCKS:
                raise
            lock = _lease_instead(folder, exc, note)
            _acquire(lock, folder, limit, note, waiting)
    except (Timeout, LeaseSettingsMismatch):  # the mismatch: a lock file of a manga2music that renews it otherwise
        from .options import flag, on_command_line

        queue = flag('wait') if on_command_line() else 'RunConfig(wait=True)'
        raise OutputBusyError(
            f"{readable(folder)} is being written by another manga2music run ({_holder(folder)})"
            + (f", still after the {float(wait):g} s it waited" if limit else ""),
            hint=f"wait for it to finish, pass {queue} to queue behind it{' as long as it takes' if limit else ''}, "
                 f"or choose another {'folder with -o' if on_command_line() else 'output folder'}",
        ) from None
    except OSError as exc:
        raise_for_disk(exc, folder)
        raise OutputError(f"cannot lock the output folder {readable(folder)} ({exc.strerror or exc})",
                          hint=f"choose {writable_output()}") from exc
    return lock


def _refuse_inside_a_busy_output(folder: Path, limit: float | None, note: Callable[[str], None]) -> None:
    """:class:`OutputBusyError` where a folder above ``folder`` is the output folder of a run going on now (``run
    S/Vol 1 -o out/Vol 1`` while ``run S -o out`` writes ``out/Vol 1/``): both ran, wrote the same files, and the
    outer run's record said 60 s of music where the file held the inner run's 45 s.  Only a lock held now counts:
    the lock file a finished run leaves is no run.  ``limit``: as for the folder's own lock, how long to wait for
    that run (None: as long as it takes; 0: not at all)."""
    for above in Path(os.path.realpath(folder)).parents:
        if not (above / LOCK_NAME).is_file():
            continue
        _wait_for_or_refuse(above, f"{readable(folder)} is inside {readable(above)}", "which may write into it",
                            "a folder outside it", limit, note)


def refuse_busy_folders_within(output: Path, folders: Iterable[Path], *, wait: bool | float = False,
                               note: Callable[[str], None] = lambda message: None) -> None:
    """:class:`OutputBusyError` where a run going on now holds one of ``folders`` (those inside ``output`` this run
    writes its sections into: ``out/Vol 1`` of a library), or a folder between it and ``output``: ``run S -o out``
    while ``run "S/Vol 1" -o "out/Vol 1"`` writes went on and wrote the inner run's files too.  A folder inside
    ``output`` that this run writes nothing into is that other run's own (it is not looked at).  The other way round
    from :func:`_refuse_inside_a_busy_output` (a run started in the folder after this look sees this run's lock above
    it, and is refused itself); ``wait`` as for :func:`output_lock`."""
    limit = None if wait is True else float(wait or 0)
    root = Path(os.path.realpath(output))
    looked: set[Path] = set()
    with _a_stop_said_as_waiting():
        for folder in folders:
            here = Path(os.path.realpath(folder))
            while here != root and root in here.parents and here not in looked:
                looked.add(here)
                if (here / LOCK_NAME).is_file():
                    _wait_for_or_refuse(here, f"{readable(output)} holds {readable(here)}",
                                        "which this run writes into too", "another folder", limit, note)
                here = here.parent


@contextmanager
def _a_stop_said_as_waiting() -> Iterator[None]:
    """A Ctrl-C or SIGTERM while a run waits for another, marked ``nothing_made`` with what the command says (it made
    nothing yet: "Finished files are kept; run the same command again to resume" misled)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        exc.nothing_made = ("It was still waiting for another manga2music run to finish: it made nothing, so "
                            "nothing is left to resume.")
        raise


def _wait_for_or_refuse(busy: Path, where: str, why: str, elsewhere: str, limit: float | None,
                        note: Callable[[str], None]) -> None:
    """Wait (``limit`` as for :func:`output_lock`) for the run that holds ``busy``, a folder above or below this
    run's own (``where`` says which, ``why`` why it matters), else :class:`OutputBusyError`; at once where this very
    thread holds it (a call made from the callback of the call that writes it: waiting would be for ever; another
    thread's call is probed as another process's is).  ``elsewhere``: the folder to choose instead."""
    from filelock import Timeout

    if _held_by.get(str(busy)) == threading.get_ident():
        raise OutputBusyError(f"{where}, which a manga2music call of this very thread writes (a call made from "
                              "within that call's callback)",
                              hint=f"write into {elsewhere}, or make the call after that one returns")
    try:
        _wait_for_its_run(busy, limit, lambda: note(f"{where}, the output folder of another manga2music run "
                                                    f"({_holder(busy)}), {why}: waiting for it to finish"))
    except Timeout:
        from .options import flag, on_command_line

        queue = flag('wait') if on_command_line() else 'RunConfig(wait=True)'
        raise OutputBusyError(f"{where}, the output folder of another manga2music run going on now "
                              f"({_holder(busy)}), {why}",
                              hint=f"wait for that run to finish, pass {queue} to queue behind it, or choose "
                                   f"{elsewhere}") from None


def _wait_for_its_run(folder: Path, limit: float | None, waiting: Callable[[], None]) -> None:
    """Return once no run holds ``folder`` (its lock file taken and let go at once); ``waiting()`` is said first
    where one does.  :class:`filelock.Timeout` where it still does after ``limit`` seconds (None: as long as it
    takes; 0: not at all).  A filesystem without locks there: not known, so not waited for."""
    from filelock import FileLock, Timeout

    probe = FileLock(str(folder / LOCK_NAME), timeout=0, fallback_to_soft=False)
    try:
        try:
            probe.acquire()
        except Timeout:
            if limit == 0:
                raise
            waiting()
            probe.acquire(timeout=-1 if limit is None else limit)
    except Timeout:  # (an OSError too)
        raise
    except OSError:
        return
    probe.release()


def refuse_if_busy(folder: Path) -> None:
    """:class:`OutputBusyError` now where another run holds ``folder``, for a command that takes the lock only
    later, after a long start (a Ray cluster joined or started: 14 s here, before the busy folder was said).  A
    folder without a lock file is held by no run, and is not made here (a cluster not joined leaves nothing)."""
    if not (folder / LOCK_NAME).exists():
        return
    with output_lock(folder, wait=False):
        pass


def held_by_another_run(folder: Path) -> bool:
    """Whether another run holds ``folder`` now (see :func:`refuse_if_busy`); not this very call, which may hold it
    already."""
    if _held_by.get(os.path.realpath(folder)) == threading.get_ident():
        return False
    try:
        refuse_if_busy(folder)
    except OutputBusyError:
        return True
    return False


def _acquire(lock, folder: Path, limit: float | None, note: Callable[[str], None],
             waiting: Callable[[], None]) -> None:
    """Take ``lock`` at once, or (``limit`` None: for as long as it takes; a number: at most that long) queue for it,
    saying so once through ``note`` and calling ``waiting()`` about once a second.  Refused: filelock's ``Timeout``.
    A lock file (no file locks here) held from another machine is watched for a lease even without a wait: that is
    how long it takes to tell a dead run's from a live one's."""
    from filelock import SoftFileLease, Timeout

    try:
        lock.acquire(poll_interval=0.2)
        return
    except Timeout:
        if limit == 0:  # no wait asked for
            if not isinstance(lock, SoftFileLease) or not _held_from_another_machine(folder):
                raise
            limit = LEASE_SECONDS + 1.0
            note(f"{readable(folder)} is held by a manga2music run on another machine ({_holder(folder)}), and this "
                 f"filesystem keeps no file locks: watching its lock file for {LEASE_SECONDS:g} s to see whether that "
                 "run is still alive")
        else:
            from .options import flag

            note(f"{readable(folder)} is being written by another manga2music run ({_holder(folder)}); "
                 f"waiting for it to finish ({flag('wait')})")
    deadline = None if limit is None else time.monotonic() + limit
    while True:
        left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
        if left <= 0:
            raise Timeout(lock.lock_file)
        try:
            lock.acquire(timeout=left, poll_interval=0.2)
            return
        except Timeout:
            waiting()


def _lease_instead(folder: Path, exc: OSError, note: Callable[[str], None]):
    """The lock file that stands in for the lock of ``folder``, on a filesystem that keeps no file locks (``exc``
    is what ``flock`` said).  The lock file proper is kept too: it marks the folder as an output folder."""
    from filelock import SoftFileLease

    (folder / LOCK_NAME).touch()
    note(f"{readable(folder)} is on a filesystem that keeps no file locks ({exc.strerror or exc}): a lock file "
         f"renewed every {LEASE_SECONDS / 3:.3g} s keeps other runs out instead")

    def lost(compromise) -> None:  # renewals failed for a whole lease (a stalled network mount): say so, go on
        note(f"warning: the lock file of {readable(folder)} was lost ({compromise.reason}); another run may now be "
             "writing into this folder too")

    return SoftFileLease(str(folder / LEASE_NAME), lease_duration=LEASE_SECONDS, timeout=0, on_compromise=lost)


def _held_from_another_machine(folder: Path) -> bool:
    """Whether the run holding ``folder`` (by its record) runs on another machine, or cannot be told.  One on this
    machine that holds the lock file is alive: filelock takes over the lock file of a process gone from this
    machine."""
    try:
        info = _holder_record(folder)
    except (OSError, ValueError):
        return True
    return info is None or info.get("host") != socket.gethostname()
