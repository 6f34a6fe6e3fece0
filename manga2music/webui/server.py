"""The one folder a UI server owns, and stopping cleanly on Ctrl-C (SIGINT) or SIGTERM.

Everything the server writes lives under one temporary folder: Gradio's cache
(``GRADIO_TEMP_DIR``: uploads, thumbnails, served copies), the staging copies
of the uploads, and the results.  When the server stops, whichever signal
stopped it, a running job is told to stop at its next progress step, and the
folder is removed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Literal, Optional


class ServerStopping(BaseException):
    """Raised inside a running job when the server is stopping.

    A BaseException, so that no ``except Exception`` on the way (progress
    reporting swallows those) keeps the job going.
    """


class JobStopped(BaseException):
    """Raised inside a running Generate when the user pressed Stop (a BaseException: see :class:`ServerStopping`);
    ``args[0]``: why, when it was not the Stop button ("other pages were uploaded")."""


UI_FOLDER_PREFIX = "manga2music-ui-"


class ServerFolder:
    """``manga2music-ui-XXXX/`` with ``gradio/``, ``work/`` (staged uploads) and ``results/``."""

    def __init__(self, parent: Optional[Path] = None):
        from ..files import remove_folders_of_dead_processes

        # a server killed (SIGKILL, out of memory) left its folder, the user's uploaded pages and music in it: gone
        # once another server starts.  Named after the process, so that only a dead one's is removed
        remove_folders_of_dead_processes(Path(parent or tempfile.gettempdir()), UI_FOLDER_PREFIX)
        self.root = Path(tempfile.mkdtemp(prefix=f"{UI_FOLDER_PREFIX}{os.getpid()}-", dir=parent))
        self.gradio = self.root / "gradio"
        self.work = self.root / "work"
        self.results = self.root / "results"
        for folder in (self.gradio, self.work, self.results):
            folder.mkdir()
        self.stopping = threading.Event()
        # per browser tab (Gradio session): a Generate asked for and not ended, and a Stop asked for it (by the
        # Stop button, or by closing or reloading the tab); it ends at its next progress report
        self._generating: dict[str, int] = {}  # tab -> its Generates asked for and not ended (a second click
        # while one runs queues another)
        self._stop_asked: dict[str, str] = {}  # tab -> why ("": the Stop button)
        self._stop_events: dict[str, threading.Event] = {}  # tab -> set when its Generate is to stop (see stop_event)
        self._tabs = threading.Lock()
        self._jobs = 0
        self._idle = threading.Condition()
        atexit.register(self.remove, wait_s=0.0)  # also on an exit nobody planned

    def give_gradio(self) -> None:
        """Point Gradio's temporary files here (read when Gradio is imported and when an app is built)."""
        os.environ["GRADIO_TEMP_DIR"] = str(self.gradio)

    @property
    def hidden(self) -> list[Path]:
        """Folders whose paths a user must never see."""
        return [self.root]

    def generate_asked(self, tab: str) -> None:
        """The tab pressed Generate (call at the click, before the Generate waits in the queue): a Stop pressed
        from now on, even before the Generate starts, is for it; one pressed before is not."""
        with self._tabs:
            self._generating[tab] = self._generating.get(tab, 0) + 1
            self._stop_asked.pop(tab, None)
            if tab in self._stop_events and self._stop_events[tab].is_set():  # a Stop before this click is not for
                del self._stop_events[tab]  # it; one after it stops every Generate of the tab asked for, as below

    def stop_asked(self, tab: str, why: str = "") -> None:
        """The tab pressed Stop, or was closed or reloaded (or ``why``): its Generate, if it has one, stops."""
        with self._tabs:
            if tab in self._generating:
                self._stop_asked.setdefault(tab, why)
                if tab in self._stop_events:
                    self._stop_events[tab].set()

    def stop_event(self, tab: str) -> threading.Event:
        """Set once the tab's Generate is to stop (Stop, a reload, the server stopping): its work ends at its next
        stop point (:func:`manga2music.threads.stopping_on`), not only at its next progress report."""
        with self._tabs:
            event = self._stop_events.setdefault(tab, threading.Event())
            if tab in self._stop_asked or self.stopping.is_set():
                event.set()
            return event

    def stop_reason(self, tab: str) -> str:
        """Why the tab's Generate was stopped ("": the Stop button)."""
        with self._tabs:
            return self._stop_asked.get(tab, "")

    def generate_ended(self, tab: str) -> None:
        with self._tabs:
            left = self._generating.get(tab, 0) - 1
            if left > 0:
                self._generating[tab] = left
            else:
                self._generating.pop(tab, None)
                self._stop_asked.pop(tab, None)  # a Stop stops every Generate of the tab asked for before it
                self._stop_events.pop(tab, None)

    def check(self, tab: Optional[str] = None) -> None:
        """Call from progress callbacks: raises :class:`ServerStopping` once the server is stopping, and
        :class:`JobStopped` once Stop was asked for ``tab``'s Generate."""
        if self.stopping.is_set():
            raise ServerStopping()
        if tab is not None and tab in self._stop_asked:
            raise JobStopped(self._stop_asked.get(tab, ""))

    @contextmanager
    def job(self) -> Iterator[None]:
        """A unit of work (a Generate click, a preview); :meth:`remove` waits for it to end."""
        with self._idle:
            if self.stopping.is_set():
                raise ServerStopping()
            self._jobs += 1
        try:
            yield
        finally:
            with self._idle:
                self._jobs -= 1
                self._idle.notify_all()

    def remove(self, wait_s: float = 15.0) -> None:
        """Stop new work, give running work ``wait_s`` to stop, and delete the folder."""
        self.stopping.set()
        with self._tabs:
            for event in self._stop_events.values():
                event.set()
        deadline = time.monotonic() + wait_s
        with self._idle:
            while self._jobs and time.monotonic() < deadline:
                self._idle.wait(max(0.0, deadline - time.monotonic()))
        shutil.rmtree(self.root, ignore_errors=True)
        if os.environ.get("GRADIO_TEMP_DIR") == str(self.gradio):
            del os.environ["GRADIO_TEMP_DIR"]


def port_problem(host: str, port: int) -> Optional[tuple[str, Literal["host", "port"]]]:
    """Why a server cannot listen on ``host:port`` (in use, not allowed), in words, and which of the two to change
    ("host": not an address here; "port": in use or not allowed); None when it can."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return f"{host} is not an address of this machine", "host"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: a port just left is free
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"port {port} on {host} is in use (another program, or another manga2music ui, listens "
                        "there)"), "port"
            if exc.errno == errno.EACCES:
                return f"port {port} needs administrator rights (ports under 1024 do)", "port"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this machine", "host"
            return f"cannot listen on {host}:{port} ({exc.strerror or exc})", "host"  # e.g. IPv6 off: "::1"
    return None


@contextmanager
def stop_signals() -> Iterator[Callable[[Callable[[], bool]], str]]:
    """While inside, SIGINT and SIGTERM only ask the server to stop (also during clean-up).

    Yields ``wait(is_running)``: it blocks until a signal arrives (or
    ``is_running()`` turns false) and returns the signal's name.  Must be
    entered from the main thread.
    """
    stop = threading.Event()
    caught: list[str] = []

    def on_signal(signum, _frame) -> None:
        caught.append(signal.Signals(signum).name)
        stop.set()

    def wait(is_running: Callable[[], bool]) -> str:
        while not stop.wait(0.2) and is_running():
            pass
        return caught[0] if caught else "the server stopped"

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield wait
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
