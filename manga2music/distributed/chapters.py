"""``score`` on Ray: chapters side by side on driver threads, their model calls on the workers.

A chapter is a chain of model calls, each waiting for the one before (its pages, then its scenes'
descriptions, then its cues, then the bridges between them), so what runs side by side is chapters: one
driver thread per worker of the larger model pool, each scoring one chapter at a time with the local code
(:func:`manga2music.scoring.score_chapter`).  That code sees :class:`CallingModel` stand-ins for its
describer and composer: their model calls go to the least busy worker of that model and are waited for.
Every decision and every file is the local run's own, written here under the run's lock.  A worker that
dies is replaced and the call sent again, up to ``RayConfig.retries`` times; then the chapter fails alone.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from ..describers.chat import sampling_seed
from ..errors import BackendError
from ..jobs import Callbacks, SectionJob, describe_error, guarded, start_section_job
from ..progress import report
from .cluster import wait_for_one
from .pool import RemoteModel, Slot, WorkerPool
from .worker import WorkerError

#: the chapter a driver thread is scoring (what the per-worker display names)
_current = threading.local()


class _Stopped(BaseException):
    """A chapter's model call after Ctrl-C or SIGTERM: not an Exception, so that the chapter is not filed as failed
    ("the run was stopped" on the page until a rerun); it is left out of the manifest, as a local run leaves it."""


class CallingModel(RemoteModel):
    """A model on the workers that this process's code calls as if it were here (the call waits)."""

    def __init__(self, local, identity: dict, pool: WorkerPool, retries: int, cb: Callbacks, lock: threading.Lock,
                 stopping: threading.Event):
        super().__init__(local, identity["settings"], identity.get("revision"))
        self._pool, self._retries, self._cb, self._lock, self._stopping = pool, retries, cb, lock, stopping
        self._busy: dict[int, int] = {}  # slot index -> calls this process is waiting for there
        self._facts: dict[str, Any] = {}

    # --- what the scoring code reads: facts of the loaded model, from the workers ----------------

    @property
    def sample_rate(self) -> int:
        """From a worker: reading it here would load the model in this process (MusicGen's is in its config)."""
        if "sample_rate" not in self._facts:
            self._facts["sample_rate"] = int(self._call("fact", "loading the model", "sample_rate"))
        return self._facts["sample_rate"]

    @property
    def chunk_size(self) -> int:
        return int(self._settings.get("chunk_size") or self._local.chunk_size)

    # --- the model calls --------------------------------------------------------------------------

    def describe(self, pages, *, progress=None):
        """Describe a :class:`~manga2music.pages.PageStream` on a worker (the pages travel as file bytes)."""
        from ..pages import travel_bytes

        infos = list(pages.infos)
        datas = [travel_bytes(info, self._local.page_side) for info in infos]
        # the seed it samples with (--seed, or the one drawn for this chapter) travels with each call
        result, skipped = self._call("describe", f"describing {len(infos)} pages", infos, datas,
                                     sampling_seed(self))
        pages.skipped[:] = skipped  # as if the stream had been read here
        pages.decoded = len(infos) - len(skipped)
        if pages.on_skip is not None:
            by_source = {info.page.source: info for info in infos}
            for entry in skipped:
                if entry["source"] in by_source:
                    pages.on_skip(by_source[entry["source"]], entry["error"])
        return result

    def compose(self, requests, *, progress=None):
        requests = list(requests)
        return self._call("compose", f"composing {len(requests)} track{'s' if len(requests) != 1 else ''}",
                          requests)

    def _complete(self, prompt: str, images: list, *, json_schema: Optional[dict], max_tokens: int):
        return self._call("complete", f"asking about {len(images)} pages" if images else "asking",
                          prompt, list(images), json_schema, max_tokens, sampling_seed(self))

    def _call(self, method: str, label: str, *args) -> Any:
        import ray

        from .executor import _lost_errors

        deaths = 0
        while True:
            if self._stopping.is_set():  # Ctrl-C: no new call; the workers are being stopped
                raise _Stopped()
            slot, actor = self._take(label)
            try:
                outcome = ray.get(wait_for_one([getattr(actor, method).remote(*args)]))
            except _lost_errors() as exc:
                if self._stopping.is_set():
                    raise _Stopped() from None
                deaths += 1
                reason = describe_error(exc).split(". ")[0][:160]
                self._replace(slot, actor)
                if deaths > self._retries:
                    raise BackendError(f"its Ray worker died {deaths} times while {label} (last: {reason})") from None
                chapter = getattr(_current, "name", "")  # several chapters are in flight: which one is tried again
                self._cb.warn(f"Ray worker {slot.label} died while {label}{f' of {chapter}' if chapter else ''} "
                              f"({reason}); sending it to a fresh worker "
                              f"(try {deaths + 1} of {self._retries + 1})")
                continue
            except ray.exceptions.RayError as exc:
                raise WorkerError(f"Ray: {describe_error(exc)}") from None
            finally:
                self._give_back(slot)
            if outcome.error is not None and outcome.remote_traceback:
                from ..settings import debug_enabled

                if debug_enabled():
                    self._cb.warn(f"on {slot.label}:\n{outcome.remote_traceback}")
            return outcome.unwrap()

    def _take(self, label: str) -> tuple[Slot, Any]:
        """The worker with the fewest calls waiting (Ray runs an actor's calls one after another)."""
        with self._lock:
            slot = min(self._pool.slots, key=lambda s: self._busy.get(s.index, 0))
            self._busy[slot.index] = self._busy.get(slot.index, 0) + 1
            actor = slot.actor
        chapter = getattr(_current, "name", "")
        self._show(slot, f"{label} for {chapter}" if chapter else label)
        return slot, actor

    def _give_back(self, slot: Slot) -> None:
        with self._lock:
            self._busy[slot.index] -= 1
            idle = self._busy[slot.index] == 0
        if idle:
            self._show(slot, "")

    def _replace(self, slot: Slot, actor) -> None:
        """Start a fresh worker in a dead one's place, once, however many callers saw it die."""
        with self._lock:
            if slot.actor is actor:
                self._pool.replace(slot)

    def _show(self, slot: Slot, label: str) -> None:
        if self._cb.worker is None:
            return
        try:
            self._cb.worker(slot.label, label)
        except Exception:  # noqa: BLE001 - a broken display must not stop a run
            pass


def score_chapters(pools: dict[str, WorkerPool], identities: dict[str, dict], retries: int, sections: list,
                   jobs: list, describer, composer, cfg, cb: Callbacks) -> None:
    """Score every chapter (``jobs`` gets one :class:`SectionJob` each, in the sections' order)."""
    from ..scoring import score_chapter

    lock, stopping = threading.Lock(), threading.Event()
    vision = CallingModel(describer._local, identities["vision"], pools["vision"], retries, cb, lock,
                          stopping)
    music = CallingModel(composer._local, identities["music"], pools["music"], retries, cb, lock,
                         stopping)
    quiet = Callbacks(sections=None, step=None, log=cb.log, worker=cb.worker)  # chapters' steps would interleave
    started: list[tuple[Any, SectionJob]] = []
    for section in sections:
        job = start_section_job(section, cfg.output, cb)
        jobs.append(job)
        started.append((section, job))
    done = [0]
    report(cb.sections, 0, len(started), "scoring")

    def one(section, job: SectionJob) -> None:
        _current.name = job.name
        if job.status != "failed":
            guarded(job, quiet, lambda: score_chapter(section, job, vision, music, cfg, quiet))
        with lock:
            done[0] += 1
            count = done[0]
        report(cb.sections, count, len(started), f"{'failed' if job.status == 'failed' else 'scored'} {job.name}")

    threads = max(1, max(len(pool.slots) for pool in pools.values()))
    chapters = ThreadPoolExecutor(max_workers=min(threads, max(1, len(started))), thread_name_prefix="score")
    try:
        for future in [chapters.submit(one, section, job) for section, job in started]:
            future.result()  # one() files every error of a chapter in its job; anything else is a real bug
    except BaseException:  # Ctrl-C (or a bug): chapters not begun never start; the workers stop, so the calls
        stopping.set()  # in flight end; every thread is done before the output folder's lock is let go
        chapters.shutdown(wait=False, cancel_futures=True)
        for pool in pools.values():
            pool.close()
        chapters.shutdown(wait=True)
        raise
    chapters.shutdown()
