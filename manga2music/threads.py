"""Work on a thread of its own, handed back as a Future, that stops at its next stop point when asked.

Rendering and encoding audio let go of the interpreter (numpy, scipy, libsndfile), so the builtin composer's tracks
and the read-along page's loops are made on threads beside the main one.  Whoever asks for the result gets the
thread's error raised on their own thread, and a stop (Ctrl-C) is raised on the main thread at once.

The threads are not daemons.  Python ends a daemon thread still running at exit by unwinding it wherever it is, and
inside scipy's FFT (C++, which a track's reverb runs) that aborted the whole process ("terminate called without an
active exception") instead of exiting as interrupted.  Instead, work started with a ``stop`` event calls
:func:`stop_point` between its pieces (the renderer: each note, each block of reverb): once the event is set, the
next stop point raises :class:`Stopped` and the thread ends there, so a stopped command waits for one piece of work,
not for whole tracks.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Callable, Iterator

_STOP: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("manga2music_stop", default=None)
#: what a stop point also calls on the thread that set it: a program's callback said again (see :func:`beating`)
_BEAT: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("manga2music_beat", default=None)


class Stopped(BaseException):
    """Raised at a stop point on a thread whose work is no longer wanted (its command was stopped, or another
    piece of the same work failed).  A BaseException, like KeyboardInterrupt, so that no ``except Exception``
    in the work turns it into a result."""


def stop_point() -> None:
    """Raise :class:`Stopped` if the work running here was asked to stop; nothing otherwise (and always nothing on
    a thread not started with a ``stop`` event, such as the main thread)."""
    stop = _STOP.get()
    if stop is not None and stop.is_set():
        raise Stopped
    beat = _BEAT.get()
    if beat is not None:
        beat()


@contextmanager
def stopping_on(stop: threading.Event) -> Iterator[None]:
    """Within it, work on this thread ends at its next :func:`stop_point` once ``stop`` is set: for a caller with
    no Ctrl-C to stop it (the web UI's Generate, on a server thread), whose progress reports come too seldom (a
    builtin track of 10 minutes reports none while it renders: Stop took up to 25 s)."""
    token = _STOP.set(stop)
    try:
        yield
    finally:
        _STOP.reset(token)


@contextmanager
def beating(beat: Callable[[], None]) -> Iterator[None]:
    """Within it, each :func:`stop_point` also calls ``beat`` (which decides how often it acts, and on which
    thread): a program's progress callback said again while a long piece of work has nothing new to say, so that
    a cancel it raises stops the work at once (a builtin track of 10 minutes calls no callback while it
    renders)."""
    token = _BEAT.set(beat)
    try:
        yield
    finally:
        _BEAT.reset(token)


def on_thread(fn: Callable[..., Any], *args: Any, name: str = "manga2music-work",
              stop: threading.Event | None = None) -> Future:
    """``fn(*args)`` on a thread of its own; its result (or its error) is the Future's.  Once ``stop`` is set,
    the work ends at its next :func:`stop_point` (the Future then holds :class:`Stopped`)."""
    future: Future = Future()
    context = contextvars.copy_context()
    context.run(_STOP.set, stop)

    def run() -> None:
        try:
            future.set_result(context.run(fn, *args))
        except BaseException as exc:  # noqa: BLE001 - raised where the result is asked for
            future.set_exception(exc)

    threading.Thread(target=run, name=name).start()
    return future
