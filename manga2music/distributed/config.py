"""What ``--ray`` and its companion flags mean, checked before anything touches the disk."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Optional

from ..errors import InputError, Manga2MusicError

#: ``ray`` versions the tests pass on (2.40.0 and 2.60.0; pyproject's ``ray`` extra pins the same range)
RAY_VERSIONS = ">=2.40,<3"
INSTALL = f'pip install "manga2music[ray]" (or pip install "ray{RAY_VERSIONS}", the version your cluster runs)'
#: addresses ``ray.init`` understands: auto, local, host:port (GCS), ray://host:port (Ray Client)
ADDRESS = re.compile(r"^(auto|local|ray://\S+|[A-Za-z0-9_.\-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5})$")
#: a head's IP address (or localhost) given without its port
HOST_ALONE = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|localhost|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f]*(:[0-9A-Fa-f]*){2,}"
                        r"|([A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*)$", re.IGNORECASE)  # ...or head.example.com


class ClusterError(Manga2MusicError):
    """The Ray cluster cannot be reached or cannot hold the workers asked for: no section could run."""

    stops_run = True


def _bracketed(host: str) -> str:
    """An IPv6 address as it is written with a port: ``[::1]``."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass
class RayConfig:
    """Where and how wide a run spreads.  ``address=None``: the cluster this machine belongs to (``ray start``
    or ``RAY_ADDRESS``), else a new Ray instance on this machine."""

    address: Optional[str] = None
    workers: Optional[int] = None  # copies of each model; None: as many as the cluster's CPUs/GPUs hold
    gpus_per_model: Optional[float] = None  # None: 1 for torch models on a cluster with GPUs, else 0
    cpus_per_model: float = 1.0
    retries: int = 2  # times a section is tried again on a fresh worker after its worker died

    def check(self) -> None:
        """Bad values and a missing ``ray`` package are one line each (exit 2)."""
        if self.address is not None and not ADDRESS.match(self.address):
            web = self.address.lower().startswith(("http://", "https://"))  # the dashboard's, as Ray Jobs takes
            raise InputError(f"--ray {self.address!r} is not a Ray address",
                             hint="an http:// address is the dashboard's; give the head's HOST:6379 or "
                                  "ray://HOST:10001" if web else
                                  f"add the port: {_bracketed(self.address)}:6379 (the head's, as `ray start --head` "
                                  f"says), or ray://{_bracketed(self.address)}:10001" if HOST_ALONE.match(self.address)
                                  else
                                  "use auto, local, HOST:PORT or ray://HOST:10001 (write --ray=ADDRESS, or put "
                                  "--ray after the paths)")
        if self.workers is not None and not 1 <= self.workers <= 10_000:
            raise InputError("--ray-workers must be between 1 and 10000")
        for name, value in (("--ray-gpus-per-model", self.gpus_per_model), ("--ray-cpus-per-model",
                                                                           self.cpus_per_model)):
            if value is not None and (not math.isfinite(value) or value < 0 or value > 1024):
                raise InputError(f"{name} must be a number from 0 to 1024 (a fraction shares a device: 0.5)")
        if not 0 <= self.retries <= 100:
            raise InputError("Ray retries must be between 0 and 100")
        if self.address is None and os.environ.get("RAY_ADDRESS", "").strip().lower().startswith(("http://",
                                                                                                  "https://")):
            raise InputError(f"RAY_ADDRESS={os.environ['RAY_ADDRESS'].strip()} is not a Ray address for --ray",
                             hint="an http:// address is the dashboard's (for `ray job submit`); give the head's "
                                  "HOST:6379 (--ray HOST:6379), or unset RAY_ADDRESS to start Ray here")
        require_ray()


def require_ray():
    """The ``ray`` module, or the one line that says how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError(f"--ray needs Ray, which is not installed: {INSTALL}") from None
    return ray
