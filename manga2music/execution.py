"""Where a command's model calls run: in this process, or on a Ray cluster (``--ray``).

:mod:`manga2music.api` checks the inputs, then asks an executor to

1. ``resolve(name, side)``: what a model name means (``auto`` is decided where the model will run);
2. build the backends (``preflight_here``: whether their preflight runs in this process);
3. ``place(describer, composer)``: get the models ready where they will run, returning what the pipeline
   calls (locally the same objects);
4. under the output folder's lock: ``describe``, ``compose``, ``run`` (both) or ``score``, appending each section's
   :class:`~manga2music.pipeline.SectionJob` to ``jobs`` (the manifest is made from it);
5. ``close()``.

Every executor writes through the same pipeline code (:func:`~manga2music.pipeline.plan_describe` /
:func:`~manga2music.pipeline.commit_describe`, :func:`~manga2music.pipeline.compose_requests` /
:func:`~manga2music.pipeline.write_group`), so the files, records and resume rules are the same; a new
stage adds one method here and one in :class:`manga2music.distributed.executor.RayExecutor`.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Optional

from .composing import compose_jobs
from .describing import describe_sections
from .errors import BackendError, NeedsKeyError
from .jobs import Callbacks


class LocalExecutor:
    """This process, one section after another; the describer is freed before the composer loads."""

    preflight_here = True

    def resolve(self, name: str, side: str) -> str:
        return name

    def place(self, *backends) -> tuple:
        return backends

    def describe(self, sections, jobs: list, describer, cfg, cb: Callbacks) -> None:
        describe_sections(sections, cfg.output, describer, cfg, cb, jobs)

    def compose(self, jobs: list, composer, cfg, cb: Callbacks) -> None:
        try:
            compose_jobs(jobs, composer, cfg, cb)
        finally:
            composer.close()

    def run(self, sections, jobs: list, describer, composer, cfg, cb: Callbacks) -> None:
        with composer_warmed_up(composer):
            try:
                self.describe(sections, jobs, describer, cfg, cb)
            except (NeedsKeyError, BackendError) as exc:
                if not exc.stops_run:
                    raise
                stop = exc  # the describer can go no further (a key refused, no quota left, a server stuck)
            else:
                stop = None
        if stop is None:
            self.compose(jobs, composer, cfg, cb)
            return
        described = [j for j in jobs if j.status != "failed" and j.description]
        if described:  # the sections described before it (paid for) get their music, which needs no server;
            # they had none, and were left out of the manifest and the listening page
            cb.info(f"composing the {len(described)} section{'s' if len(described) != 1 else ''} described before "
                    "the describer stopped the run")
            try:
                self.compose(described, composer, cfg, cb)
            except Exception:  # noqa: BLE001 - the describer's error is the one to say
                pass
        raise stop

    def score(self, sections, jobs: list, describer, composer, cfg, cb: Callbacks) -> None:
        from .scoring import score_sections

        with composer_warmed_up(composer):
            score_sections(sections, cfg.output, describer, composer, cfg, cb, jobs)

    def close(self) -> None:
        pass


#: how long a stop (Ctrl-C) waits for the warm-up thread, in seconds
WARM_UP_WAIT_ON_STOP = 5.0


#: starts the warm-up of the command running in this context (see :func:`composer_warmed_up`); None: none to start
_WARM_UP: ContextVar[Optional[Callable[[], None]]] = ContextVar("composer_warm_up", default=None)


def work_ahead() -> None:
    """Pages are about to be read: the composer's warm-up starts now, if the command asked for one (once)."""
    start = _WARM_UP.get()
    if start is not None:
        start()


@contextmanager
def composer_warmed_up(composer) -> Iterator[None]:
    """The composer's :meth:`~manga2music.composers.base.Composer.warm_up` and the import that writing a track
    needs, on a thread while the block runs (the describer reads the pages): on two cores they were 0.6-0.8 s
    of the first track's time (scipy.signal, which the loudness meter imports).  The thread starts when the first
    pages are about to be read (:func:`work_ahead`), not before: a rerun with nothing to read or make spent 1.1 s
    of its 3 s waiting for imports it never used.  The block's end waits for the thread (it is done by then), so
    that the process never exits with it half-way through an import.  A stop (Ctrl-C) waits
    :data:`WARM_UP_WAIT_ON_STOP` at most: interrupted inside an import, the main thread could leave a module lock
    held that the thread then waited on forever, and the stop with it."""
    import threading

    def warm() -> None:
        try:
            import pyloudnorm  # noqa: F401

            composer.warm_up()
        except Exception:  # noqa: BLE001 - an extra: the real call meets any error again and reports it
            pass

    thread = threading.Thread(target=warm, name="composer-warm-up", daemon=True)

    def start() -> None:
        if thread.ident is None:
            thread.start()

    token = _WARM_UP.set(start)
    try:
        yield
    except BaseException:
        if thread.ident is not None:
            thread.join(WARM_UP_WAIT_ON_STOP)
        raise
    finally:
        _WARM_UP.reset(token)
    if thread.ident is not None:
        thread.join()


@contextmanager
def open_executor(cfg, cb: Callbacks) -> Iterator:
    """The executor ``cfg`` asks for (``cfg.ray``: a Ray cluster), closed when the block ends.  A busy output
    folder was said before it (:func:`manga2music.api._said_first_if_busy`): before the models are picked and
    said, and before a cluster is joined (or a local one started)."""
    if cfg.ray is None:
        executor = LocalExecutor()
    else:
        from .distributed.executor import RayExecutor

        executor = RayExecutor(cfg.ray, cfg, cb)
    try:
        yield executor
    finally:
        executor.close()
