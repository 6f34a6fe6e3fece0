"""The Ray actor: one loaded describer or composer that answers model calls and never touches the output folder.

:class:`ModelWorker` is a plain class (``ray.remote`` wraps it where workers are started), built on the
worker from the model's name and the run's settings through the same :func:`manga2music.backends.build` as a
local run, so it resolves, checks and preflights the model on the machine that will run it.  Its methods
never raise: each returns an :class:`Outcome`, with the value or with the exception the same call would
have raised in a local run, so the driver files a failure exactly as a local run would.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..errors import Manga2MusicError


class WorkerError(Manga2MusicError):
    """An error raised on a worker that cannot travel as itself; its message is what a local run would show."""

    traceback_helps = True


@dataclass
class Outcome:
    """What a worker call gave: ``value``, or ``error`` (re-raised on the driver by :meth:`unwrap`)."""

    value: Any = None
    error: Optional[BaseException] = None
    remote_traceback: str = ""
    seconds: float = 0.0
    #: describe: the pages that opened but did not decode (a PNG cut short), also when the describer failed (on
    #: them all: the driver says so as a local run does, and lists them)
    skipped: list = field(default_factory=list)

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives the trip to the driver as itself (ours, OSError), else the one line it would show."""
    from ..jobs import describe_error

    if isinstance(exc, (Manga2MusicError, OSError)):
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:  # noqa: BLE001 - an exception class that cannot be rebuilt
            pass
    if isinstance(exc, Manga2MusicError):
        return WorkerError(exc.message, exc.hint)
    return WorkerError(describe_error(exc))


def _timed(call: Callable[[], Any], flags: bool = False) -> Outcome:
    """``call``'s value or error, and how long it took; ``flags``: its messages name settings by their flags."""
    from ..options import settings_named_as_flags

    started = time.perf_counter()
    try:
        with settings_named_as_flags() if flags else contextlib.nullcontext():
            value = call()
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the driver, which decides
        return Outcome(error=portable(exc), remote_traceback=traceback.format_exc(),
                       seconds=time.perf_counter() - started)
    return Outcome(value=value, seconds=time.perf_counter() - started)


class ModelWorker:
    """Holds one model for the whole run.  ``side``: "vision" (describe) or "music" (compose)."""

    def __init__(self, name: str, side: str, cfg, env: dict[str, str], cwd: str = "", flags: bool = False):
        os.environ.update(env)  # before any library reads it (offline mode, keys)
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)  # the driver's folder, where it exists here: a relative model folder means the same
        self.side = side
        self.flags = flags  # the driver's messages name settings by their flags (a command line's run)
        self.notes: list[str] = []
        self.backend = None
        self.error: Optional[Outcome] = None
        built = _timed(lambda: self._build(name, side, cfg), flags)
        if built.error is not None:
            self.error = built
        else:
            self.backend = built.value

    def _build(self, name: str, side: str, cfg):
        from ..backends import Machine, build

        return build(name, side, cfg, Machine(offline=True if cfg.offline else None),
                     info=self.notes.append, warn=self.notes.append)

    def ready(self) -> Outcome:
        """Who this worker is and the settings its model records (or why the model cannot run here)."""
        if self.error is not None:
            return self.error
        b = self.backend
        return _timed(lambda: {"model_name": b.model_name, "model_id": b.model_id, "settings": b.settings_key(),
                               "revision": b.revision(), "host": socket.gethostname(), "pid": os.getpid(),
                               "notes": list(self.notes)}, self.flags)

    def fact(self, name: str) -> Outcome:
        """An attribute of the model that may need it loaded (MusicGen's ``sample_rate`` is read from its config);
        asked when the driver needs it, so a model that cannot load fails its sections, as it does locally."""
        if self.error is not None:
            return self.error
        return _timed(lambda: getattr(self.backend, name), self.flags)

    def describe(self, infos: list, datas: list, seed: Optional[int] = None) -> Outcome:
        """``infos`` (the driver's probe of each page) and ``datas`` (the bytes that travelled): decoded here one
        page at a time, exactly as a local run decodes.  Answers ``(result, pages that could not be decoded)``.
        ``seed``: the one the driver drew for this section (a local VLM without --seed; it records it)."""
        if self.error is not None:
            return self.error
        from ..describers.chat import drawn_seed
        from ..pages import PageStream

        stream = PageStream(infos, max_side=self.backend.page_side, datas=datas)

        def work():
            with drawn_seed(seed):
                return self.backend.describe(stream), list(stream.skipped)

        outcome = _timed(work, self.flags)
        outcome.skipped = list(stream.skipped)
        return outcome

    def compose(self, requests: list) -> Outcome:
        if self.error is not None:
            return self.error
        return _timed(lambda: self.backend.compose(requests), self.flags)

    def complete(self, prompt: str, images: list, json_schema: Optional[dict], max_tokens: int,
                 seed: Optional[int] = None) -> Outcome:
        """One chat turn of a chat describer (``score`` asks for per-page entries and scene descriptions); ``seed``:
        the one the driver drew for the chapter (a local VLM without --seed)."""
        if self.error is not None:
            return self.error
        from ..describers.chat import drawn_seed

        def work():
            with drawn_seed(seed):
                return self.backend._complete(prompt, images, json_schema=json_schema, max_tokens=max_tokens)

        return _timed(work, self.flags)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


def resolve_auto(side: str, offline: Optional[bool]) -> tuple[str, str]:
    """What ``auto`` means on the machine this runs on: ``(model name, reason)`` (a Ray task on a worker)."""
    from .. import tiers
    from ..backends import Machine

    spec, reason = tiers.resolve_auto(side, probe=Machine(offline=offline).report)
    return spec.name, reason
