"""One run per output folder at a time.

``with output_lock(folder):`` holds an operating-system lock (``flock`` through
the ``filelock`` package) on ``folder/.manga2music.lock`` for the whole run.  The
kernel releases it when the process ends, however it ends (Ctrl-C, ``kill -9``,
a crash), so a lock can never be left stale.  While holding it we write who holds
it (pid, user, host, command, start time) to ``.manga2music.lock.json``, so a second run
can say in one line which process has the folder, and exits 2; with ``wait=True``
it waits its turn instead.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Callable, Iterator

from .errors import OutputBusyError, OutputError
from .files import LOCK_NAME, raise_for_disk, readable, write_text_atomic

#: the output folders this process holds (real path -> the thread that holds it)
_held_by: dict[str, int] = {}
HOLDER_NAME = ".manga2music.lock.json"


def prepare_output(folder: Path) -> Path:
    """Create ``folder`` if needed; a file in its place or an unwritable disk is one :class:`OutputError`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"-o {readable(folder)} is a file, not a folder", hint="choose a folder with -o")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(f"-o {readable(folder)}: a file is in the way of that folder",
                          hint="choose another folder with -o") from exc
    except OSError as exc:
        raise_for_disk(exc, folder)
        raise OutputError(f"cannot create the output folder {readable(folder)} ({exc.strerror or exc})",
                          hint="choose a folder you can write to with -o") from exc
    return folder


#: how long a run refused a folder waits for the holder's record, written right after that holder took the lock
HOLDER_PATIENCE = 1.0


def _holder(folder: Path, patience: float = HOLDER_PATIENCE) -> str:
    """Who holds ``folder``, in words.  A run that took the lock a moment ago writes its record right after: wait up
    to ``patience`` seconds for it rather than say "pid not written yet" to someone who needs to know whom to ask."""
    deadline = time.monotonic() + patience
    while True:
        try:
            info = json.loads((folder / HOLDER_NAME).read_text(encoding="utf-8"))
            user = f" of {info['user']}" if info.get("user") else ""  # one written by an older manga2music names none
            return (f"pid {info['pid']}{user} on {info.get('host', '?')}, started {info.get('started', '?')}"
                    f" ({info.get('command', 'manga2music')})")
        except FileNotFoundError:  # still not written: that run has only just started (or has just ended)
            if time.monotonic() >= deadline:
                return "just started; its pid is not written yet"
            time.sleep(0.05)
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
    from filelock import FileLock, Timeout

    folder = prepare_output(folder)
    key = os.path.realpath(folder)
    if _held_by.get(key) == threading.get_ident():  # waiting would be for ever: the holder waits on this very call
        raise OutputBusyError(f"{readable(folder)} is being written by a manga2music call of this very thread (a "
                              "call made from within that call's callback)",
                              hint="write into another folder, or make the call after that one returns")
    lock = FileLock(str(folder / LOCK_NAME), timeout=0)
    limit = None if wait is True else float(wait or 0)
    try:
        try:
            lock.acquire(poll_interval=0.2)
        except Timeout:
            if not limit and limit is not None:
                raise
            note(f"{readable(folder)} is being written by another manga2music run ({_holder(folder)}); "
                 "waiting for it to finish (--wait)")
            deadline = None if limit is None else time.monotonic() + limit
            while True:
                left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                if left <= 0:
                    raise
                try:
                    lock.acquire(timeout=left, poll_interval=0.2)
                    break
                except Timeout:
                    waiting()
    except Timeout:
        raise OutputBusyError(
            f"{readable(folder)} is being written by another manga2music run ({_holder(folder)})",
            hint="wait for it to finish, pass --wait to queue behind it, or choose another folder with -o",
        ) from None
    except OSError as exc:
        raise_for_disk(exc, folder)
        raise OutputError(f"cannot lock the output folder {readable(folder)} ({exc.strerror or exc})",
                          hint="choose a folder you can write to with -o") from exc
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
                              hint="choose a folder you can write to with -o") from None
        yield
    finally:
        _held_by.pop(key, None)
        with suppress(OSError):
            (folder / HOLDER_NAME).unlink()
        lock.release()
