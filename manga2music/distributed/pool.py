"""The driver's handle on one model's workers: start them, check they agree, replace one that died."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..errors import InputError
from .cluster import Placement
from .config import ClusterError
from .worker import ModelWorker

#: seconds between "still waiting for Ray to start the workers" notes
READY_NOTE_EVERY = 30.0


@dataclass
class Slot:
    """One worker and the calls it has in flight (Ray runs an actor's calls one after another, in order)."""

    index: int
    actor: Any
    label: str
    inflight: list = field(default_factory=list)  # ObjectRefs


class RemoteModel:
    """The driver's view of a model that runs on the workers.

    Names and options come from the driver's own (unloaded) backend object; ``settings_key()`` comes from
    the workers, because what a model records can depend on the machine it runs on (the precision ``auto``
    picks on a GPU), and records must name what really ran.  The model calls go to the workers, not here.
    """

    def __init__(self, local, settings: dict, revision: Optional[str] = None):
        self._local = local
        self._settings = settings
        self._revision = revision  # of the weights the workers load (their caches, not this machine's)

    def __getattr__(self, name: str):
        return getattr(self._local, name)

    def settings_key(self) -> dict:
        settings = copy.deepcopy(self._settings)
        moved = getattr(self, "recorded_as", None)  # a local folder moved since (registry.model_identity)
        return {**settings, **moved} if moved else settings

    def revision(self) -> Optional[str]:
        return self._revision

    def describe(self, *args, **kwargs):  # pragma: no cover - a programming error, not a user's
        raise RuntimeError("this model runs on the Ray workers")

    compose = describe

    def close(self) -> None:
        """The workers hold the model; the executor stops them."""


def worker_config(cfg, side: str, force_cpu: bool):
    """The run's settings as a worker of ``side`` gets them: on a worker without a GPU, a torch model's
    ``--device auto`` becomes ``cpu`` (it must not take a GPU that Ray gave another worker).  A download question
    asked in this terminal (``auto_download`` a function: see :func:`manga2music.cli.consent.let_auto_ask`) does
    not travel: it holds the terminal's display, which cannot be sent, and a worker has no terminal to ask in; there
    it is what a run without a terminal does (no download; ``--download`` allows it)."""
    if callable(cfg.auto_download):
        cfg = dataclasses.replace(cfg, auto_download=None)
    if not force_cpu:
        return cfg
    field_name = "vision_options" if side == "vision" else "music_options"
    own = dict(getattr(cfg, field_name))
    if cfg.options.get("device", "auto") == "auto" and own.get("device", "auto") == "auto":
        own["device"] = "cpu"
    return dataclasses.replace(cfg, **{field_name: own})


class WorkerPool:
    """``placement.count`` workers of one model, started from its name and the run's settings."""

    def __init__(self, name: str, placement: Placement, cfg, env: dict[str, str], force_cpu: bool, cwd: str):
        self.name = name
        self.cwd = cwd
        self.placement = placement
        self.cfg = worker_config(cfg, placement.side, force_cpu)
        self.env = env
        self.slots: list[Slot] = []
        self.identity: Optional[dict] = None
        from ..options import on_command_line

        #: messages made on a worker name settings as the driver's do (``--chunk-size 2`` on the command line,
        #: ``chunk_size=2`` for a program): the driver's context does not travel to the worker's process
        self.flags = on_command_line()

    def _start_actor(self):
        import ray

        remote = ray.remote(ModelWorker).options(num_cpus=self.placement.num_cpus, num_gpus=self.placement.num_gpus,
                                                 max_restarts=0, max_task_retries=0)
        return remote.remote(self.name, self.placement.side, self.cfg, self.env, self.cwd, self.flags)

    def start(self) -> None:
        side = self.placement.side
        self.slots = [Slot(i, self._start_actor(), f"{side} {i + 1}") for i in range(self.placement.count)]

    def wait_ready(self, note: Callable[[str], None]) -> dict:
        """Wait until every worker has its model built; the first that cannot is the run's error (as locally)."""
        import ray

        from ..settings import debug_enabled

        refs = {slot.actor.ready.remote(): slot for slot in self.slots}
        answers: dict[int, dict] = {}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=READY_NOTE_EVERY)
            for ref in done:
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker process died while building its model
                    from ..jobs import describe_error

                    raise ClusterError(f"a {self.placement.side} worker died while loading {self.name}: "
                                       f"{describe_error(exc).split('. ')[0][:200]}",
                                       hint="its node's Ray logs say why (/tmp/ray/session_latest/logs on that "
                                            "node); out of memory is the usual cause") from None
                if outcome.error is not None and outcome.remote_traceback and debug_enabled():
                    note(f"on {refs[ref].label}:\n{outcome.remote_traceback}")
                answer = outcome.unwrap()  # raises the model's own error (no weights, a missing key...)
                slot = refs[ref]
                answers[slot.index] = answer
                slot.label = f"{self.placement.side} {slot.index + 1} @{answer['host']}"
            if pending:
                note(f"waiting for Ray to start {len(pending)} {self.placement.side} worker(s) "
                     f"({self.placement.num_cpus:g} CPU, {self.placement.num_gpus:g} GPU each)")
        first = answers[0]
        for answer in answers.values():
            if answer["settings"] != first["settings"]:
                raise InputError(
                    f"the {self.placement.side} workers would record different settings: "
                    f"{_difference(first, answer)}",
                    hint="give the setting explicitly (e.g. --precision bf16) so every worker runs the model alike")
        self.identity = first
        return first

    def replace(self, slot: Slot) -> None:
        """A worker died: stop what is left of it and start a fresh one in its place (its calls are lost).  Raises
        :class:`ClusterError` when the whole cluster is gone: there is nowhere to start one."""
        import ray

        from .cluster import cluster_answers, cluster_gone

        if not cluster_answers():
            raise cluster_gone()
        try:
            ray.kill(slot.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - it is already gone
            pass
        slot.actor = self._start_actor()
        slot.inflight.clear()

    def close(self) -> None:
        import ray

        for slot in self.slots:
            try:
                ray.kill(slot.actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone, or Ray is shutting down
                pass
        self.slots = []


def _difference(a: dict, b: dict) -> str:
    sa, sb = a["settings"], b["settings"]
    keys = sorted(k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k))
    return "; ".join(f"{k} {sa.get(k)!r} on {a['host']}, {sb.get(k)!r} on {b['host']}" for k in keys[:3])
