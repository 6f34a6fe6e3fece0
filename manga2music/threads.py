"""Work on a thread of its own, handed back as a Future.

Rendering and encoding audio let go of the interpreter (numpy, scipy, libsndfile), so the builtin composer's tracks
and the read-along page's loops are made on threads beside the main one.  Whoever asks for the result gets the
thread's error raised on their own thread, and a stop (Ctrl-C) is raised on the main thread at once.

The threads are not daemons.  Python ends a daemon thread still running at exit by unwinding it wherever it is, and
inside scipy's FFT (C++, which a track's reverb runs) that aborted the whole process ("terminate called without an
active exception") instead of exiting as interrupted.  So a stopped command waits, after saying it was stopped, for
the work already started: at most PARALLEL_SECONDS of music rendering, or two loops encoding (2.6-5.7 s on a 2-core
Intel Xeon with two 5-minute tracks in the making).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable


def on_thread(fn: Callable[..., Any], *args: Any, name: str = "manga2music-work") -> Future:
    """``fn(*args)`` on a thread of its own; its result (or its error) is the Future's."""
    import threading

    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - raised where the result is asked for
            future.set_exception(exc)

    threading.Thread(target=run, name=name).start()
    return future
