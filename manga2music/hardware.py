"""Probes for ``manga2music doctor`` and preflight: what this machine can run.

Everything is read without importing torch, because ``import torch`` alone
takes ~1.3 s (measured: 1.26 s on 2 CPU cores, vs 0.08 s for a bare Python) and
doctor must answer in under 1.5 s:

* versions come from ``importlib.metadata``; whether torch was built with CUDA
  comes from ``torch/version.py`` read as text (``cuda = '12.8'`` or ``None``);
* CUDA devices from ``nvidia-smi --query-gpu`` (name, compute capability,
  total and free memory; honours ``CUDA_VISIBLE_DEVICES``).  Only when
  ``nvidia-smi`` is missing but the NVIDIA driver is loaded
  (``/proc/driver/nvidia/gpus``) do we import torch and ask it;
* Apple MPS is assumed on macOS arm64 with torch installed (torch >= 2 ships
  MPS for Apple Silicon; importing torch to confirm would cost a second);
* CPU bf16 from ``/proc/cpuinfo`` flags (``avx512_bf16``, ``amx_bf16``; ``bf16``
  on aarch64) or ``sysctl hw.optional.arm.FEAT_BF16`` on macOS; else unknown;
* RAM from psutil, else ``/proc/meminfo`` (the report says which);
* the Hub with one ``HEAD {HF_ENDPOINT}/api/models?limit=1`` (3 s timeout),
  skipped offline.

:class:`HardwareReport` is a plain dataclass, so tests build one by hand.
"""

from __future__ import annotations

import os
import platform as _platform
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Literal, Optional

from . import settings
from .cache import CachedModel, disk_free_bytes, scan
from .hub import HubStatus, hub_endpoint, probe_hub

GB = 1024**3
Accelerator = Literal["cuda", "mps", "cpu"]
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass
class GpuInfo:
    index: int
    name: str
    total_gb: float
    free_gb: float
    compute_capability: Optional[str] = None  # "9.0"


@dataclass
class HardwareReport:
    """What the probes found.  Build one by hand in tests (every field has a harmless default)."""

    python: str = _platform.python_version()
    platform: str = f"{_platform.system()}-{_platform.machine()}"
    packages: dict[str, Optional[str]] = field(default_factory=dict)  # name -> version or None
    torch_cuda: Optional[str] = None  # CUDA version torch was built with; None = CPU-only build
    accelerator: Accelerator = "cpu"
    gpus: list[GpuInfo] = field(default_factory=list)
    gpu_source: str = "none"  # nvidia-smi | torch | none
    gpu_note: str = ""  # e.g. "an NVIDIA GPU is present but torch is a CPU-only build"
    cpu_cores: int = 1
    cpu_bf16: Optional[bool] = None
    cpu_bf16_source: str = "unknown"
    ram_total_gb: float = 0.0
    ram_available_gb: float = 0.0
    ram_source: str = "unknown"  # psutil | /proc/meminfo | unknown
    cache_dir: str = ""
    cache_source: str = "default"
    cache_problem: Optional[str] = None  # why weights cannot be kept there (settings.cache_problem)
    cache_unreadable: bool = False  # ... because it cannot be read at all: its weights are out of reach too
    disk_free_gb: float = 0.0
    cached: list[CachedModel] = field(default_factory=list)
    openai_key_set: bool = False
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    openai_base_url_source: str = "default"
    offline: bool = False
    hub: HubStatus = field(default_factory=lambda: HubStatus(hub_endpoint()))

    @property
    def best_gpu(self) -> Optional[GpuInfo]:
        """The GPU with the most free memory (the one a single-GPU run should use)."""
        return max(self.gpus, key=lambda g: g.free_gb, default=None)

    @property
    def has_torch(self) -> bool:
        return bool(self.packages.get("torch"))

    def is_cached(self, repo_id: str) -> bool:
        return any(c.repo_id == repo_id and c.complete for c in self.cached)

    def hub_reachable(self, timeout: float = 3.0) -> bool:
        """Whether weights can be downloaded now; probes the Hub once (memoised), never when offline."""
        if self.offline:
            return False
        if not self.hub.checked:
            self.hub = probe_hub(self.hub.endpoint, timeout=timeout)
        return bool(self.hub.reachable)


# --- single probes ----------------------------------------------------------------


def package_versions(names: tuple[str, ...] = ("torch", "transformers", "huggingface_hub", "openai")) -> dict:
    out: dict[str, Optional[str]] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def torch_cuda_version() -> Optional[str]:
    """The CUDA version torch was built with, read from torch/version.py without importing torch."""
    spec = find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        text = (Path(list(spec.submodule_search_locations)[0]) / "version.py").read_text(encoding="utf-8")
    except OSError:
        return None
    return cuda_in_version_file(text)


def cuda_in_version_file(text: str) -> Optional[str]:
    """``cuda = '12.8'`` (or ``cuda: Optional[str] = '12.8'``) in torch/version.py -> "12.8"; None for CPU builds."""
    m = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return m.group(1) if m else None


def _visible(indices: list[int]) -> list[int]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return indices
    wanted = [s.strip() for s in env.split(",") if s.strip()]
    if not wanted or wanted[0] == "-1":
        return []
    if all(w.isdigit() for w in wanted):
        return [i for i in indices if str(i) in wanted]
    return indices  # UUIDs or MIG names: keep all rather than guess


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """Parse ``index, name, compute_cap, memory.total, memory.free`` CSV lines (MiB, no units)."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5:
            continue
        idx, name, cap, total, free = parts[:5]
        try:
            gpus.append(GpuInfo(int(idx), name, round(float(total) / 1024, 2), round(float(free) / 1024, 2),
                                None if cap in ("", "[N/A]", "N/A") else cap))
        except ValueError:
            continue
    keep = set(_visible([g.index for g in gpus]))
    return [g for g in gpus if g.index in keep]


def probe_nvidia_smi(timeout: float = 3.0) -> Optional[list[GpuInfo]]:
    """GPUs from nvidia-smi, or None when nvidia-smi is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    for fields in ("index,name,compute_cap,memory.total,memory.free", "index,name,index,memory.total,memory.free"):
        try:
            res = subprocess.run([exe, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.SubprocessError):
            return None
        if res.returncode == 0:
            gpus = parse_nvidia_smi(res.stdout)
            if "compute_cap" not in fields:  # old driver: the third column was a placeholder
                for g in gpus:
                    g.compute_capability = None
            return gpus
    return None


def probe_cuda_torch() -> list[GpuInfo]:
    """GPUs as torch sees them (costs the torch import, ~1 s)."""
    try:
        import torch
    except Exception:
        return []
    if not torch.cuda.is_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        major, minor = torch.cuda.get_device_capability(i)
        gpus.append(GpuInfo(i, torch.cuda.get_device_name(i), round(total / GB, 2), round(free / GB, 2),
                            f"{major}.{minor}"))
    return gpus


def probe_cpu_bf16() -> tuple[Optional[bool], str]:
    """(native bf16 support, where that came from)."""
    if sys.platform.startswith("linux"):
        try:
            text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None, "unknown"
        flags: set[str] = set()
        for line in text.splitlines():
            key = line.split(":", 1)[0].strip().lower()
            if key in ("flags", "features"):
                flags.update(line.split(":", 1)[1].split())
                break
        # x86 names native bf16 avx512_bf16 / amx_bf16; ARM names it bf16 (on x86 a bare "bf16" means nothing)
        native = {"avx512_bf16", "amx_bf16"} if _platform.machine().lower() in ("x86_64", "amd64", "i686", "i386") \
            else {"bf16"}
        return bool(flags & native), "/proc/cpuinfo"
    if sys.platform == "darwin" and _platform.machine() == "arm64":
        try:
            res = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True,
                                 timeout=2)
            if res.returncode == 0 and res.stdout.strip() in ("0", "1"):
                return res.stdout.strip() == "1", "sysctl"
        except (OSError, subprocess.SubprocessError):
            pass
    return None, "unknown"


def available_ram_bytes() -> int:
    """RAM the OS could give a new model now, in bytes (0 when unknown)."""
    return int(probe_memory()[1] * GB)


def probe_memory() -> tuple[float, float, str]:
    """(total GB, available GB, source)."""
    try:
        import psutil

        vm = psutil.virtual_memory()
        return round(vm.total / GB, 2), round(vm.available / GB, 2), "psutil"
    except Exception:
        pass
    try:
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            info[key] = int(rest.split()[0]) * 1024
        return round(info["MemTotal"] / GB, 2), round(info.get("MemAvailable", info["MemFree"]) / GB, 2), \
            "/proc/meminfo"
    except (OSError, KeyError, ValueError, IndexError):
        return 0.0, 0.0, "unknown"


def cpu_cores() -> int:
    """CPU cores this process may use (the affinity mask in containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_budget() -> int:
    """Threads this process should work on: ``OMP_NUM_THREADS`` where it is set to a positive whole number (Ray sets
    it to a worker's CPUs, 1 by default, where the affinity mask still shows every core of the node), else
    :func:`cpu_cores`."""
    try:
        asked = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        asked = 0
    return asked if asked > 0 else cpu_cores()


def openai_settings() -> tuple[bool, str, str]:
    """(a key is set, base URL, which variable set it).  Never the key itself."""
    key_set = bool(os.environ.get("OPENAI_API_KEY", "").strip())
    base = settings.openai_base_url()
    return key_set, (settings.shown_url(base) or DEFAULT_OPENAI_BASE_URL), ("OPENAI_BASE_URL" if base else "default")


# --- everything together -------------------------------------------------------------


def collect(*, offline: bool | None = None, check_hub: bool = True, hub_timeout: float = 3.0) -> HardwareReport:
    """Run every probe.  ``offline`` defaults to ``HF_HUB_OFFLINE``; offline never probes the Hub."""
    offline = settings.offline_mode() if offline is None else offline
    hub_result: list[HubStatus] = []
    hub_thread = None
    if check_hub and not offline:  # the request overlaps the local probes (nvidia-smi takes ~0.1-0.3 s)
        hub_thread = threading.Thread(target=lambda: hub_result.append(probe_hub(timeout=hub_timeout)), daemon=True)
        hub_thread.start()
    packages = package_versions()
    report = HardwareReport(packages=packages, offline=offline)
    report.torch_cuda = torch_cuda_version() if packages.get("torch") else None

    gpus = probe_nvidia_smi()
    if gpus is not None:
        report.gpus, report.gpu_source = gpus, "nvidia-smi"
    elif packages.get("torch") and report.torch_cuda and Path("/proc/driver/nvidia/gpus").is_dir():
        report.gpus, report.gpu_source = probe_cuda_torch(), "torch"
    if report.gpus and packages.get("torch") and report.torch_cuda:
        report.accelerator = "cuda"
    elif report.gpus:
        report.gpu_note = ("an NVIDIA GPU is present but torch is a CPU-only build; install a CUDA build of torch"
                           if packages.get("torch") else "an NVIDIA GPU is present but torch is not installed")
    elif packages.get("torch") and sys.platform == "darwin" and _platform.machine() == "arm64":
        report.accelerator = "mps"

    report.cpu_cores = cpu_cores()
    report.cpu_bf16, report.cpu_bf16_source = probe_cpu_bf16()
    report.ram_total_gb, report.ram_available_gb, report.ram_source = probe_memory()

    cache_dir = settings.model_cache_dir()
    report.cache_dir, report.cache_source = str(cache_dir), settings.cache_source()
    problem = settings.cache_problem(cache_dir)
    report.cache_problem, report.cache_unreadable = (problem.text, problem.unreadable) if problem else (None, False)
    report.disk_free_gb = round(disk_free_bytes(cache_dir) / GB, 2)
    report.cached = scan(cache_dir)

    report.openai_key_set, report.openai_base_url, report.openai_base_url_source = openai_settings()
    if hub_thread is not None:
        hub_thread.join(hub_timeout + 1.0)
        report.hub = hub_result[0] if hub_result else HubStatus(hub_endpoint(), True, False, "timed out", hub_timeout)
    elif offline:
        report.hub.detail = "offline"
    return report
