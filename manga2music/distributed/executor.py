"""The driver loop of a run on Ray: plan here, call the model on a worker, write here.

Sections flow through the stages as soon as they can: a section's pages go to a
describe worker, its description is written here the moment it comes back, and
its compose requests join the queue that composers take from (whole sections, up
to a group of requests per call, so a composer batches what is ready).  Every
decision (skip, reuse, re-encode, ownership) and every write is the local run's
own code in :mod:`manga2music.pipeline`; only the model calls travel.

A worker that dies (its process killed, its node gone, out of memory) loses only
calls: the driver starts a fresh worker in its place and sends the section again,
up to ``RayConfig.retries`` times, then fails that section alone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Optional

from ..composing import (
    SAME_FAILURES_ALONE,
    compose_requests,
    fail_group,
    failure_words,
    group_size,
    not_composed,
    say_same_music,
    take_group,
    write_group,
)
from ..describers.chat import drawn_seed
from ..describing import commit_describe, none_decoded, page_payload, plan_describe, section_seed
from ..jobs import Callbacks, SectionJob, describe_error, guarded, start_section_job
from ..progress import report
from ..wording import first_few
from .cluster import cluster_totals, connect, disconnect, forwarded_env, plan, runs_torch, wait_for_one
from .config import ClusterError, RayConfig
from .pool import RemoteModel, Slot, WorkerPool
from .worker import Outcome, WorkerError, resolve_auto

#: calls queued per describe worker: the next section's pages travel while one is being described
DESCRIBE_DEPTH = 2
#: calls queued per composer: one, so each batch is formed as late as possible and holds more sections
COMPOSE_DEPTH = 1


def _lost_errors() -> tuple:
    """Ray's ways of saying a worker (or its node, or its memory) is gone: the call is worth sending again."""
    import ray.exceptions as rex

    return (rex.RayActorError, rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError,
            rex.OutOfMemoryError, rex.LocalRayletDiedError)


class RayExecutor:
    """Runs a command's stages on Ray workers (see :mod:`manga2music.execution` for the interface)."""

    #: the models' preflight runs on the workers that will run them, not on the driver
    preflight_here = False

    def __init__(self, rc: RayConfig, cfg, cb: Callbacks):
        self.rc, self.cfg, self.cb = rc, cfg, cb
        cb.info(f"Ray: joining {rc.address}" if rc.address else
                "Ray: joining the cluster this machine belongs to, or starting one here")
        self.started = connect(rc.address)
        self.pools: dict[str, WorkerPool] = {}
        self.identities: dict[str, dict] = {}  # side -> what its workers said of their model (settings, ...)

    # --- before the lock: decide and start the models ---------------------------------------------

    def resolve(self, name: str, side: str) -> str:
        """``auto`` is decided by a worker (a GPU one when the cluster has GPUs), not by this machine."""
        if name != "auto":
            return name
        import ray

        _, gpus = cluster_totals()
        task = ray.remote(resolve_auto).options(num_cpus=0, num_gpus=0.01 if gpus > 0 else 0)
        try:
            chosen, reason = ray.get(task.remote(side, True if self.cfg.offline else None))
        except ray.exceptions.RayError as exc:
            raise ClusterError(f"no Ray worker could decide what auto means for the {side} model: "
                               f"{describe_error(exc).split('. ')[0][:200]}",
                               hint=f"name the {side} model instead of auto") from None
        self.cb.info(f"{side} model: {chosen} ({reason}; decided on a Ray worker)")
        return chosen

    def place(self, *models) -> tuple:
        """Start the workers of each model (a describer, a composer or both), wait until each has built and
        checked its model, and return the driver's view of each (:class:`RemoteModel`), in the order given.
        A model that cannot run there fails here, as it would locally."""
        import os

        from ..composers.base import Composer

        backends = {("music" if isinstance(b, Composer) else "vision"): b for b in models}
        describer = backends.get("vision")
        cpus, gpus = cluster_totals()
        placements = plan(backends, self.rc, cpus, gpus)
        key_env = getattr(getattr(describer, "options", None), "api_key_env", None) if describer else None
        env = forwarded_env((key_env,) if key_env else ())
        cfg = self.cfg
        for side, backend in backends.items():
            p = placements[side]
            force_cpu = gpus > 0 and p.num_gpus == 0 and runs_torch(backend)
            self.pools[side] = WorkerPool(backend.model_name, p, _taken_by(cfg, side, backend), env, force_cpu,
                                          cwd=os.getcwd())
        for pool in self.pools.values():
            pool.start()  # all at once: the models load in parallel
        self.cb.info("Ray: " + " and ".join(p.describe() for p in placements.values())
                     + f" on a cluster of {cpus:g} CPUs and {gpus:g} GPUs")
        seen: set[str] = set()
        views = []
        for side, backend in backends.items():
            identity = self.identities[side] = self.pools[side].wait_ready(self.cb.info)
            for note in identity.get("notes", []):
                if note not in seen:
                    seen.add(note)
                    self.cb.warn(note)
            views.append(RemoteModel(backend, identity["settings"], identity.get("revision")))
        return tuple(views)

    # --- under the lock: the stages -------------------------------------------------------------

    def describe(self, sections, jobs: list, describer, cfg, cb: Callbacks) -> None:
        _Flow(self, cfg, cb, jobs, describer=describer, composer=None).run(sections=sections)

    def compose(self, jobs: list, composer, cfg, cb: Callbacks) -> None:
        _Flow(self, cfg, cb, jobs, describer=None, composer=composer).run(sections=None)

    def run(self, sections, jobs: list, describer, composer, cfg, cb: Callbacks) -> None:
        _Flow(self, cfg, cb, jobs, describer=describer, composer=composer).run(sections=sections)

    def score(self, sections, jobs: list, describer, composer, cfg, cb: Callbacks) -> None:
        """Chapters side by side on threads here, their model calls on the workers (see :mod:`.chapters`)."""
        from .chapters import score_chapters

        score_chapters(self.pools, self.identities, self.rc.retries, sections, jobs, describer, composer, cfg, cb)

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools = {}
        disconnect(self.started)
        self.started = False


@dataclass
class _Call:
    stage: str  # "describe" | "compose"
    slot: Slot
    work: Any  # describe: (job, DescribeWork); compose: [(job, ComposeRequest), ...]
    label: str

    @property
    def jobs(self) -> list[SectionJob]:
        if self.stage == "describe":
            return [self.work[0]]
        out: list[SectionJob] = []
        for job, _ in self.work:
            if not any(j is job for j in out):
                out.append(job)
        return out


class _Flow:
    """One command's sections moving through the workers (state of the driver loop)."""

    def __init__(self, ex: RayExecutor, cfg, cb: Callbacks, jobs: list, *, describer, composer):
        self.ex, self.cfg, self.cb, self.jobs = ex, cfg, cb, jobs
        self.describer, self.composer = describer, composer
        self.vision: Optional[WorkerPool] = ex.pools.get("vision") if describer is not None else None
        self.music: Optional[WorkerPool] = ex.pools.get("music") if composer is not None else None
        self.sections: deque = deque()
        self.again: deque = deque()  # (job, work) to describe again after a worker died
        self.drawn: dict[int, Optional[int]] = {}  # id(job) -> the seed a local VLM without --seed reads it with
        self.queue: list = []  # (job, ComposeRequest) ready to compose, whole jobs together
        self.inflight: dict[Any, _Call] = {}
        self.deaths: dict[int, int] = {}
        self.finished: set[int] = set()
        self.total = 0
        self.composed: list = []  # every (job, ComposeRequest) queued: what sounds the same is said at the end
        #: id(job) -> the words of a failed call it was in with others: composed again in a call of its own, one
        #: such call at a time (as composing.compose_jobs does), until SAME_FAILURES_ALONE fail alone that way
        self.alone: dict[int, str] = {}
        self.same: list[str] = []  # the sections that failed alone in a row the way their call with others did
        self.made_music = False  # a compose call of this run made music: failures alone are the sections' own

    # --- the loop ------------------------------------------------------------------------------

    def run(self, *, sections) -> None:
        import ray

        if sections is not None:
            self.sections.extend(sections)
            self.total = len(sections)
        else:
            self.total = len(self.jobs)
            for job in list(self.jobs):
                self._described(job)
        report(self.cb.sections, 0, self.total, "sections")
        lost = _lost_errors()
        while True:
            self._feed_describers()
            self._feed_composers()
            if not self.inflight:
                break
            ref = wait_for_one(list(self.inflight))
            call = self.inflight.pop(ref)
            try:
                outcome = ray.get(ref)
            except lost as exc:
                self._worker_lost(call, ref, exc)
                continue
            except ray.exceptions.RayError as exc:
                outcome = Outcome(error=WorkerError(f"Ray: {describe_error(exc)}"))
            call.slot.inflight.remove(ref)
            self._show(call.slot)
            if outcome.error is not None and outcome.remote_traceback:
                from ..settings import debug_enabled

                if debug_enabled():
                    self.cb.warn(f"on {call.slot.label}:\n{outcome.remote_traceback}")
            if call.stage == "describe":
                self._describe_done(call, outcome)
            else:
                self._compose_done(call, outcome)
        order = {id(job): k for k, job in enumerate(self.jobs)}  # as a local run lists them (it says so before
        made = [pair for pair in self.composed if pair[0].status != "failed"]  # music that was made: not of a
        # section that failed (every section failed: "s2, s8: the same description ... make the same music")
        say_same_music(sorted(made, key=lambda pair: order[id(pair[0])]), self.cfg, self.cb)  # composing)

    # --- describe ------------------------------------------------------------------------------

    def _next_to_describe(self):
        if self.again:
            return self.again.popleft()
        while self.sections:
            section = self.sections.popleft()
            job = start_section_job(section, self.cfg.output, self.cb)
            self.jobs.append(job)
            if job.status != "failed":
                holder: list = []
                guarded(job, self.cb, lambda s=section, j=job: holder.append(
                    plan_describe(s, j, self.describer, self.cfg, self.cb)))
                if holder and holder[0] is not None:
                    return job, holder[0]
            self._described(job)  # nothing for the model to do: failed, kept or up to date
        return None

    def _feed_describers(self) -> None:
        if self.vision is None:
            return
        for depth in range(1, DESCRIBE_DEPTH + 1):  # one call per worker first, then the queued ones
            for slot in self.vision.slots:
                if len(slot.inflight) < depth:
                    item = self._next_to_describe()
                    if item is None:
                        return
                    job, work = item
                    seed = self.drawn.setdefault(id(job), section_seed(self.describer))  # sent again: the same
                    self._submit(_Call("describe", slot, item, f"describing {job.name} ({len(work.infos)} pages)"),
                                 slot.actor.describe.remote(work.infos, page_payload(work, self.describer.page_side),
                                                            seed))

    def _describe_done(self, call: _Call, outcome: Outcome) -> None:
        job, work = call.work

        for undecoded in outcome.skipped:  # said as a local run's page stream says them (Ray said none)
            self.cb.skipped_page(job.name, undecoded.get("name"), undecoded.get("error"))

        def commit() -> None:
            if outcome.error is not None:  # every page cut short: said as a local run says it, and listed
                none_decoded(job, outcome.skipped, len(work.infos), work.skipped)
            result, decode_skipped = outcome.unwrap()
            with drawn_seed(self.drawn.get(id(job))):  # the record names the seed the worker read with
                commit_describe(job, work, result, self.describer, self.cfg, self.cb, outcome.seconds,
                                decode_skipped)

        guarded(job, self.cb, commit)
        self._described(job)

    def _described(self, job: SectionJob) -> None:
        """The describe stage is over for ``job``: queue its music, or it is done."""
        if self.composer is not None:
            pairs = compose_requests(job, self.composer, self.cfg, self.cb)
            if pairs:
                self.queue.extend(pairs)
                self.composed.extend(pairs)
                return
        self._finish(job)

    # --- compose -------------------------------------------------------------------------------

    def _feed_composers(self) -> None:
        if self.music is None:
            return
        size = group_size(self.composer)
        for slot in self.music.slots:
            if self.queue and len(slot.inflight) < COMPOSE_DEPTH:
                alone = id(self.queue[0][0]) in self.alone
                if alone and any(c.stage == "compose" and id(c.jobs[0]) in self.alone for c in self.inflight.values()):
                    return  # one section alone at a time: two failing the same way end the tries
                group = take_group(self.queue, 1 if alone else size)
                names = sorted({job.name for job, _ in group})
                more = f" +{len(names) - 1}" if len(names) > 1 else ""
                tracks = f"{len(group)} track{'s' if len(group) != 1 else ''}"
                self._submit(_Call("compose", slot, group, f"composing {names[0]}{more} ({tracks})"),
                             slot.actor.compose.remote([req for _, req in group]))

    def _compose_done(self, call: _Call, outcome: Outcome) -> None:
        group = call.work
        holder: list = []
        failed: list = []
        tried_alone = self.alone.pop(id(call.jobs[0]), None) if len(call.jobs) == 1 else None

        def take() -> None:
            try:
                holder.append(outcome.unwrap())
            except Exception as exc:  # noqa: BLE001 - the composer failed on several sections: each again alone
                failed.append(exc)
                if len(call.jobs) == 1 or getattr(exc, "stops_run", False):
                    raise

        guarded(group[0][0], self.cb, take)
        if failed and not holder and len(call.jobs) > 1 and group[0][0].status != "failed":
            said = failure_words(failed[0])
            self.cb.warn(f"{self.composer.model_name} failed on {first_few([job.name for job in call.jobs])} "
                         f"together ({said}): composing them one at a time")
            self.alone.update((id(job), said) for job in call.jobs)
            self.queue[:0] = group
            return
        if not holder:
            fail_group(group, self.cb)
        else:
            self.made_music = True
            write_group(group, holder[0], self.composer, self.cfg, self.cb, outcome.seconds)
        for job in call.jobs:
            self._finish(job)
        if tried_alone is not None:
            self._after_alone(call.jobs[0].name, failed and failure_words(failed[0]) == tried_alone, tried_alone)

    def _after_alone(self, name: str, same: bool, said: str) -> None:
        """A section composed alone is done: after :data:`SAME_FAILURES_ALONE` in a row failed as their call with
        others did, where no call of this run made music, the failure is the composer's, and the sections waiting to
        be tried alone fail with it (as composing._compose_alone decides)."""
        self.same = self.same + [name] if same else []
        if len(self.same) < SAME_FAILURES_ALONE or self.made_music:
            return
        untried = [pair for pair in self.queue if id(pair[0]) in self.alone]
        self.queue = [pair for pair in self.queue if id(pair[0]) not in self.alone]
        for job, _ in untried:
            self.alone.pop(id(job), None)
            if job.status != "failed":
                job.fail(not_composed(self.composer, self.same, said), self.cb)
            self._finish(job)

    # --- bookkeeping ---------------------------------------------------------------------------

    def _submit(self, call: _Call, ref) -> None:
        self.inflight[ref] = call
        call.slot.inflight.append(ref)
        self._show(call.slot)

    def _show(self, slot: Slot) -> None:
        if self.cb.worker is None:
            return
        current = next((self.inflight[r] for r in slot.inflight if r in self.inflight), None)
        try:
            self.cb.worker(slot.label, current.label if current else "")
        except Exception:  # noqa: BLE001 - a broken display must not stop a run
            pass

    def _finish(self, job: SectionJob) -> None:
        if id(job) in self.finished:
            return
        self.finished.add(id(job))
        report(self.cb.sections, len(self.finished), self.total, f"{job.status if job.status == 'failed' else 'done'}"
                                                                  f" {job.name}")

    def _worker_lost(self, call: _Call, ref, exc: BaseException) -> None:
        """A worker died: every call it held is lost.  The one it was running counts a death for its sections
        (past ``retries`` they fail alone); all the others go to a fresh worker, in their order."""
        slot = call.slot
        pool = self.vision if call.stage == "describe" else self.music
        calls = []  # in the order the worker runs them: the first was running
        for r in slot.inflight:
            lost_call = call if r == ref else self.inflight.pop(r, None)
            if lost_call is not None:
                calls.append(lost_call)
        old_label = slot.label
        pool.replace(slot)
        self._show(slot)
        reason = describe_error(exc).split(". ")[0][:160]
        retries = self.ex.rc.retries
        running = calls[0]
        doing = "describing" if running.stage == "describe" else "composing"
        for job in running.jobs:
            n = self.deaths[id(job)] = self.deaths.get(id(job), 0) + 1
            if n > retries:
                job.fail(f"its Ray worker died {n} times while {doing} it (last: {reason})", self.cb)
            else:
                self.cb.warn(f"Ray worker {old_label} died while {doing} {job.name} ({reason}); sending it to a "
                             f"fresh worker (try {n + 1} of {retries + 1})")
        back: list = []
        for lost_call in calls:
            if lost_call.stage == "describe":
                job, work = lost_call.work
                if job.status == "failed":
                    self._described(job)
                else:
                    self.again.append((job, work))
                continue
            back.extend((job, req) for job, req in lost_call.work if job.status != "failed")
            for job in lost_call.jobs:
                if job.status == "failed":
                    self._finish(job)
        self.queue[:0] = back


def _taken_by(cfg, side: str, backend):
    """The run's settings without the options of ``side`` that its model does not take: those the driver's build
    said and dropped (a model auto picked, or kept as the output folder's sections were made); a worker building
    the model by its name refused them ("--top-k does not apply to builtin").  With the sampling settings a kept
    composer's music was made with (see api.keep_models), as the driver's build gave them."""
    import dataclasses

    field_name = "vision_options" if side == "vision" else "music_options"
    fields = type(backend).Options.model_fields
    own = getattr(cfg, field_name)
    taken = {k: v for k, v in own.items() if k in fields}
    if side == "music":  # the settings the music there was made with, kept by the driver's build (a worker builds
        # the model by its name, not as kept)
        taken.update({k: v for k, v in cfg.kept_music_settings.items() if k in fields and k not in own
                      and k not in cfg.options})
    return cfg if taken == own else dataclasses.replace(cfg, **{field_name: taken})
