"""Joining a Ray cluster, and deciding how many workers of what size each model gets."""

from __future__ import annotations

import logging
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

from ..errors import InputError
from ..options import on_command_line
from .config import ClusterError, RayConfig, require_ray

#: environment variables a worker needs to behave like this process (offline mode, the Hub mirror, API keys);
#: they travel to each worker with its start-up arguments
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "MANGA2MUSIC_OFFLINE", "MANGA2MUSIC_DEBUG", "HF_ENDPOINT",
                 "HF_TOKEN", "OPENAI_BASE_URL", "OPENAI_API_KEY", "MANGA2MUSIC_CUDNN_ATTENTION",
                 "MANGA2MUSIC_READING_CACHE")


def connect(address: Optional[str]) -> bool:
    """Join the cluster (``None``: the one this machine belongs to, else a new local one); True if we started Ray
    here and must shut it down.  A process already connected (a notebook, a test) keeps its connection."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    kwargs: dict = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address == "local":
        kwargs["include_dashboard"] = False
    _check_answers(address or os.environ.get("RAY_ADDRESS"))
    try:
        with _our_sigterm(), _without_token_notice():
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise cannot_join(address, exc) from None
    return True


def cannot_join(address: Optional[str], exc: BaseException) -> ClusterError:
    """The line for ``ray.init(address)`` failing with ``exc``; ``address`` None: the one RAY_ADDRESS names."""
    where = address or os.environ.get("RAY_ADDRESS") or "this machine"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    if where == "auto" and first.startswith("Could not find any running Ray instance"):  # Ray's words name an
        # --address flag this command does not have
        cli = on_command_line()  # a program's RayConfig(address="auto") is not the flag it never typed
        given = ("--ray auto" if cli else 'RayConfig(address="auto")') if address else "RAY_ADDRESS=auto"
        head = "--ray HEAD:6379" if cli else 'RayConfig(address="HEAD:6379")'
        alone = "write --ray alone" if cli else "give RayConfig() with no address"
        return ClusterError(f"no Ray cluster is running on this machine for {given} to join",
                            hint="start one with `ray start --head` (and `ray start --address HEAD:6379` on the "
                                 f"others), give the head's address ({head}), or "
                                 + (f"{alone} to start Ray here for this run" if address else
                                    "unset RAY_ADDRESS to start Ray here for this run"))
    return ClusterError(f"cannot join the Ray cluster at {where}: {first}",
                        hint="check the address (HEAD:6379, or ray://HEAD:10001 with ray[client]); a cluster "
                             "with token authentication also needs RAY_AUTH_MODE=token and its token here "
                             "(`ray get-auth-token`)")


#: the logger of Ray's notice that a cluster it starts has token authentication (Ray's default since 2.5x)
TOKEN_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"


class _TokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled")


@contextmanager
def _without_token_notice():
    """Ray says "Token authentication is enabled for this Ray cluster ..." on every `--ray local` run: a notice of
    its safe default, with nothing to act on, above the run's own lines.  Left unshown; its warning that a cluster
    runs *without* authentication is still shown."""
    notice = _TokenNotice()
    logger = logging.getLogger(TOKEN_NOTICE_LOGGER)
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


#: seconds to wait for a HOST:PORT address to answer before Ray is asked to join it (Ray itself retries for ever)
ANSWER_WITHIN_S = 5.0


def _connect(address: str):
    """A connection to a HOST:PORT address (``[::1]:6379`` too), made within :data:`ANSWER_WITHIN_S`; None for an
    address of another form.  Raises OSError where nothing answers."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    return socket.create_connection((host.strip("[]"), int(port)), timeout=ANSWER_WITHIN_S)


def _check_answers(address: Optional[str]) -> None:
    """A HOST:PORT address (not auto, local, ray://) where nothing answers is one line now: Ray retried it for ever,
    a "Failed to connect to GCS" line every 5 s, and Ctrl-C took seconds to work."""
    if not address or "://" in address or address in ("auto", "local"):
        return
    try:
        connection = _connect(address)
    except OSError as exc:
        timed_out = isinstance(exc, TimeoutError)
        why = f"no answer within {ANSWER_WITHIN_S:g} s" if timed_out else exc.strerror or type(exc).__name__
        raise ClusterError(f"cannot join the Ray cluster at {address}: nothing answers there ({why})",
                           hint="check the address: the head's `ray start --head` prints it (HEAD:6379); is the "
                                "cluster up (`ray status`)?") from None
    if connection is None:
        return
    with connection:
        speaks = _speaks_grpc(connection)
    if not speaks:  # Ray retried it for ever, two lines of its own every 5 s (a web server, the dashboard's port)
        raise ClusterError(f"cannot join the Ray cluster at {address}: something answers there, but not a Ray head "
                           "(it does not speak gRPC: a web server, or the dashboard's port?)",
                           hint="the head's address is the one `ray start --head` prints (HEAD:6379), not the "
                                "dashboard's (HEAD:8265)")


#: HTTP/2's connection preface and an empty SETTINGS frame: what a gRPC client (Ray's) says first
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _speaks_grpc(connection) -> bool:
    """Whether the server answers HTTP/2's preface with a SETTINGS frame (type 4), as every gRPC server does, a Ray
    head's GCS among them; a web server answers "400 Bad Request", and a silent one nothing."""
    try:
        connection.sendall(_HTTP2_PREFACE)
        head = b""
        while len(head) < 9:
            chunk = connection.recv(9 - len(head))
            if not chunk:
                break
            head += chunk
    except OSError:
        return False
    return len(head) == 9 and head[3] == 0x04


#: how often a wait on the workers checks that the cluster is still there (Ray's core ends the process 60 s after
#: its head went away: the run must say so and write its manifest before that)
CLUSTER_CHECK_S = 5.0


def cluster_gone() -> ClusterError:
    return ClusterError("the Ray cluster went away (its head no longer answers) while the run used it",
                        hint="finished files are kept: run the same command again, once the cluster is up "
                             "(`ray status`), to resume")


def wait_for_one(refs: list):
    """The first of ``refs`` to finish; raises :func:`cluster_gone` when the cluster stops answering meanwhile."""
    import ray

    while True:
        ready, _ = ray.wait(refs, num_returns=1, timeout=CLUSTER_CHECK_S)
        if ready:
            return ready[0]
        if not cluster_answers():
            raise cluster_gone()


def cluster_answers() -> bool:
    """Whether the cluster this process joined still answers (its GCS, the head's own service): a worker lost with
    the whole cluster gone is not replaced on it (Ray's core waited 60 s for it, then ended the process without
    a word from the command)."""
    import ray

    try:
        address = ray.get_runtime_context().gcs_address
    except Exception:  # noqa: BLE001 - not connected, or a Ray without it: nothing to check against
        return True
    try:
        connection = _connect(address or "")
    except OSError:
        return False
    if connection is not None:
        connection.close()
    return True


@contextmanager
def _our_sigterm():
    """``ray.init`` installs its own SIGTERM handler (``sys.exit(15)``), which replaced the command's: a stopped run
    exited 15 or 1 without a word instead of 143 with its line.  The handler there before is put back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    except SystemExit as exc:  # SIGTERM while Ray started: its handler's sys.exit(15), in silence, its processes left
        if exc.code != signal.SIGTERM or not callable(before):
            raise
        import ray

        try:
            ray.shutdown()  # the processes it started for this run
        except Exception:  # noqa: BLE001 - half started: what there is goes
            pass
        signal.signal(signal.SIGTERM, before)
        before(signal.SIGTERM, None)  # the command's stop: its line, exit 143
        raise
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)


def disconnect(started: bool) -> None:
    if started:
        import ray

        ray.shutdown()


def cluster_totals() -> tuple[float, float]:
    """(CPUs, GPUs) the cluster offers Ray, as Ray counts them (logical units)."""
    import ray

    res = ray.cluster_resources()
    return float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))


@dataclass
class Placement:
    """The workers of one model: how many, and what each reserves."""

    side: str  # "vision" | "music"
    count: int
    num_cpus: float
    num_gpus: float

    def describe(self) -> str:
        gpu = f", {self.num_gpus:g} GPU" if self.num_gpus else ""
        return f"{self.count} {self.side} worker{'s' if self.count != 1 else ''} ({self.num_cpus:g} CPU{gpu} each)"


def runs_torch(backend) -> bool:
    """Models that run on this torch (they take ``--device``) can use a GPU; API and builtin models cannot."""
    return "device" in type(backend).Options.model_fields


def plan(backends: dict, rc: RayConfig, cpus: float, gpus: float) -> dict[str, Placement]:
    """Workers per side for ``backends`` (``{"vision": describer, "music": composer}``) on ``cpus`` and ``gpus``.

    Raises :class:`InputError` (exit 2) when the workers asked for cannot fit, naming what the cluster has.
    """
    sides = list(backends)
    per_gpu: dict[str, float] = {}
    for side, backend in backends.items():
        wants_gpu = runs_torch(backend) and getattr(backend.options, "device", "auto") != "cpu"
        if not wants_gpu:
            per_gpu[side] = 0.0
        elif rc.gpus_per_model is not None:
            per_gpu[side] = float(rc.gpus_per_model)
        else:
            per_gpu[side] = 1.0 if gpus >= 1 else 0.0
    on_gpu = [s for s in sides if per_gpu[s] > 0]
    out = {}
    for side in sides:
        count = rc.workers
        if count is None:
            by_cpu = math.floor(cpus / (max(rc.cpus_per_model, 1.0) * len(sides)) + 1e-9)
            count = by_cpu
            if per_gpu[side] > 0:
                count = math.floor(gpus / (per_gpu[side] * len(on_gpu)) + 1e-9)
            count = max(1, count)
        out[side] = Placement(side, count, rc.cpus_per_model, per_gpu[side])
    while rc.workers is None and _need(out, "num_cpus") > cpus + 1e-9 and any(p.count > 1 for p in out.values()):
        max(out.values(), key=lambda p: p.count).count -= 1  # GPUs to spare but too few CPUs to drive them
    need_cpu, need_gpu = _need(out, "num_cpus"), _need(out, "num_gpus")
    if need_cpu > cpus + 1e-9 or need_gpu > gpus + 1e-9:
        asked = " and ".join(p.describe() for p in out.values())
        raise InputError(
            f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs; {asked} need {need_cpu:g} CPUs and "
            f"{need_gpu:g} GPUs",
            hint="lower --ray-workers, --ray-cpus-per-model or --ray-gpus-per-model (0.5 fits two models on a GPU), "
                 "or add nodes")
    return out


def _need(placements: dict[str, Placement], resource: str) -> float:
    return sum(p.count * getattr(p, resource) for p in placements.values())


def forwarded_env(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The variables of :data:`FORWARDED_ENV` (and ``extra``, e.g. a custom --api-key-env) set in this process."""
    return {name: os.environ[name] for name in (*FORWARDED_ENV, *extra) if name in os.environ}
