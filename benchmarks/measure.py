"""Shared plumbing for the benchmark suite: workers in fresh processes, medians, machine facts.

Every measured configuration runs in its own ``python benchmarks/<bench>.py
--worker CONFIG_JSON`` process, so one configuration's memory never pollutes
another's peak: the worker reports its own peak RSS (``ru_maxrss`` of a
process that did nothing else).  The worker prints one line ``RESULT {json}`` on stdout; everything else it prints
goes to the parent's stderr.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULT_PREFIX = "RESULT "


def cache_root() -> Path:
    """Where the random-weight model folders are kept between runs (``M2M_BENCH_CACHE`` overrides)."""
    root = Path(os.environ.get("M2M_BENCH_CACHE") or Path(tempfile.gettempdir()) / "manga2music-bench")
    root.mkdir(parents=True, exist_ok=True)
    return root


def worker_env() -> dict[str, str]:
    """Offline, own model cache (no platformdirs needed), the repo importable."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", MANGA2MUSIC_OFFLINE="1", TRANSFORMERS_VERBOSITY="error",
               HF_HUB_DISABLE_PROGRESS_BARS="1", TOKENIZERS_PARALLELISM="false")
    env.setdefault("MANGA2MUSIC_CACHE", str(cache_root() / "hub"))
    env["MANGA2MUSIC_READING_CACHE"] = "off"  # every page read, as timed: no reading kept from a run before (run.py
    # times builtin_bench's worker, whose own main() is not run)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), str(BENCH_DIR), env.get("PYTHONPATH", "")) if p)
    return env


def run_worker(script: str, config: dict, *, timeout: float | None = None) -> dict:
    """Run ``benchmarks/<script> --worker CONFIG`` in a fresh process; its last RESULT dict.

    A worker that fails (or times out) gives ``{"error": "..."}`` instead of raising,
    so one broken configuration does not stop the suite.
    """
    flags = ["-S"] if sys.flags.no_site else []  # same interpreter flags as the suite (a bare-machine rehearsal)
    cmd = [sys.executable, *flags, str(BENCH_DIR / script), "--worker", json.dumps(config)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=worker_env(), cwd=str(REPO),
                            text=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        timed_out = True
    wall = time.perf_counter() - start
    lines = [line for line in (out or "").splitlines() if line.startswith(RESULT_PREFIX)]
    if not lines:
        why = f"timed out after {timeout:.0f} s" if timed_out else f"worker exited with {proc.returncode}"
        return {"error": why, "stderr_tail": _tail(err), "config": config}
    result = json.loads(lines[-1][len(RESULT_PREFIX):])  # workers report after each run: keep the latest
    if timed_out or proc.returncode != 0:
        result["incomplete"] = "timed out" if timed_out else f"worker exited with {proc.returncode}"
        result["stderr_tail"] = _tail(err)
    result["process_wall_s"] = round(wall, 2)
    return result


def _tail(text: str | None, lines: int = 6) -> str:
    """The last lines of a worker's stderr (progress bars and warnings dropped)."""
    kept = [line for line in (text or "").splitlines() if line.strip() and "it/s]" not in line]
    return "\n".join(kept[-lines:])


def emit(result: dict) -> None:
    """The worker's last word: one RESULT line on stdout."""
    result.setdefault("peak_rss_mb", peak_rss_mb())
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def current_rss_mb() -> float:
    """Resident memory right now, in MB."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    try:
        import psutil

        return round(psutil.Process().memory_info().rss / 2**20, 1)
    except ImportError:
        return float("nan")


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    """``(seconds, result)`` of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """The facts a reader needs to compare figures: CPU, cores, RAM, bf16, GPU, library versions, load."""
    info: dict = {
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        # GiB (2**30 bytes), as doctor and the peak-memory figures count them
        info["ram_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        info["load_avg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import torch
        import transformers

        from manga2music.devices import cpu_supports_bf16

        info.update(torch=torch.__version__, transformers=transformers.__version__,
                    torch_threads=torch.get_num_threads(), cpu_native_bf16=cpu_supports_bf16())
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                        gpu_bf16=torch.cuda.is_bf16_supported())
    except ImportError as exc:
        info["import_error"] = str(exc)
    return info
