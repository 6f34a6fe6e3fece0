"""Devices, precisions, memory and seeds: the helpers every local model shares.

``pick_device("auto")`` prefers CUDA, then Apple's MPS, then the CPU.
``pick_dtype(device, "auto")`` picks bf16 on CUDA cards that support it
(fp16 on older ones), bf16 on CPUs with native bf16 instructions, and float32
everywhere else.  torch is imported inside the functions, never at import time.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterator, Optional

from .errors import InputError, ModelUnavailableError
from .options import flag

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(requested: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"``, else ``"mps"``, else ``"cpu"``; explicit names are checked.

    Raises ``ModelUnavailableError`` when the named device is not usable here and
    ``InputError`` for a name torch does not know.
    """
    import torch

    name = (requested or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available():
            return "mps"
        return "cpu"
    kind, _, index = name.partition(":")
    if kind == "cpu":
        return "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ModelUnavailableError(
                f"{flag('device', requested)} was asked for, but torch sees no CUDA GPU here",
                hint=f"use {flag('device', 'auto')} or {flag('device', 'cpu')} (or install a CUDA build of torch).",
            )
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ModelUnavailableError(
                f"{flag('device', requested)}: there are only {torch.cuda.device_count()} CUDA device(s)",
                hint=f"use {flag('device', 'cuda')} or {flag('device', 'cuda:0')}.",
            )
        return name
    if kind == "mps":
        if not _mps_available():
            raise ModelUnavailableError(
                f"{flag('device', requested)} was asked for, but Apple's MPS backend is not available here",
                hint=f"use {flag('device', 'auto')} or {flag('device', 'cpu')}.",
            )
        return "mps"
    raise InputError(f"unknown device {requested!r}", hint="use auto, cpu, cuda, cuda:N or mps.")


def cpu_supports_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16, AMX-BF16 or ARM BF16); see
    :func:`manga2music.hardware.probe_cpu_bf16`, the one rule doctor and ``pick_dtype`` share.

    Without those instructions torch emulates bf16 and float32 is usually as
    fast and more exact, so ``pick_dtype`` then stays with float32.
    """
    from .hardware import probe_cpu_bf16

    return bool(probe_cpu_bf16()[0])


def pick_dtype(device: str, requested: str = "auto"):
    """The torch dtype to load and run a model in on ``device``.

    ``"fp32"``, ``"fp16"`` and ``"bf16"`` are taken as asked.  ``"auto"``: bf16 on
    CUDA cards that support it, fp16 on older cards; bf16 on CPUs with native
    bf16 (see :func:`cpu_supports_bf16`); float32 otherwise (MPS included).
    """
    import torch

    name = (requested or "auto").strip().lower()
    explicit = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16,
                "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if name in explicit:
        return explicit[name]
    if name != "auto":
        raise InputError(f"unknown precision {requested!r}", hint="use auto, fp32, fp16 or bf16.")
    kind = device.split(":", 1)[0]
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if kind == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return torch.float32


def precision_key(device: str, requested: str = "auto") -> str:
    """A composer's precision as its settings key: ``"auto"`` where the one asked for is what auto picks on
    ``device`` (``--precision bf16`` and no flag made the same bytes on a CPU with bf16, and each composed the other's
    music again), else the one asked for."""
    asked = (requested or "auto").strip().lower()
    if asked == "auto" or pick_dtype(device, asked) == pick_dtype(device, "auto"):
        return "auto"
    return asked


def dtype_name(dtype) -> str:
    """``torch.bfloat16`` -> ``"bf16"`` (the names users type)."""
    return {"torch.float32": "fp32", "torch.float16": "fp16", "torch.bfloat16": "bf16"}.get(str(dtype), str(dtype))


def free_memory_bytes(device: str) -> int:
    """Memory a model could still use on ``device``, in bytes (0 when unknown).

    CUDA: free memory on that card.  MPS: the recommended working-set limit less
    what the driver holds.  CPU: the OS's available RAM.
    """
    import torch

    from .hardware import available_ram_bytes

    kind = device.split(":", 1)[0]
    if kind == "cuda":
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    if kind == "mps":
        try:
            return max(0, int(torch.mps.recommended_max_memory()) - int(torch.mps.driver_allocated_memory()))
        except (AttributeError, RuntimeError):
            return available_ram_bytes()
    return available_ram_bytes()


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA, MPS or CPU allocator failure, whichever class torch raised it as (MPS and the CPU raise a plain
    ``RuntimeError``: "MPS backend out of memory", "DefaultCPUAllocator: can't allocate memory")."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def release_memory(device: Optional[str]) -> None:
    """Give back what dropped tensors held: Python's garbage, then the cached blocks of ``device``'s allocator
    (CUDA's or MPS's), so that a retry at a smaller size, or the next model, finds that memory free."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")  # not imported here: with none loaded there is nothing to give back, and
    # after a Ctrl-C inside torch's first import (a local model starting), importing it again on the way out
    # raised torch's own errors ("function 'istft' already has a docstring") over the stop: a traceback, exit 1
    if torch is None or getattr(getattr(torch, "__spec__", None), "_initializing", False):
        return
    kind = (device or "").split(":", 1)[0]
    if kind == "cuda":
        torch.cuda.empty_cache()
    elif kind == "mps" and _mps_available():
        torch.mps.empty_cache()


@contextmanager
def loading_onto(device: str, model_name: str) -> Iterator[None]:
    """The block loads ``model_name``'s weights onto ``device``: if that runs out of memory, what it held is given
    back and the user reads one :class:`ModelUnavailableError` saying that the model does not fit and what to pick
    instead, not the allocator's message."""
    try:
        yield
    except RuntimeError as exc:  # torch.cuda.OutOfMemoryError is one; MPS and the CPU raise RuntimeError itself
        if not is_out_of_memory(exc):
            raise
        release_memory(device)
        raise ModelUnavailableError(f"{model_name} does not fit in the free memory of {device}",
                                    hint=memory_hint(device)) from None


def memory_hint(device: str) -> str:
    """What to do when a model runs out of memory on ``device``."""
    if device.split(":", 1)[0] == "cpu":
        return "pick a smaller model, or close what else uses the memory"
    return f"pick a smaller model, or {flag('device', 'cpu')}"


def decoding_attention(device: str):
    """A context for step-by-step decoding on ``device``: on CUDA, attention without cuDNN's kernels.

    Decoding attends over one more position at every step, so every step is a new shape.  torch (2.5 and
    later) may hand attention to cuDNN on recent cards, and cuDNN builds an execution plan for every new
    shape, which can take tenths of a second each (modelscope/FunASR#3704, torch 2.11).  On an H200
    (benchmarks/results/gpu-h200-2026-11-29.md) the first 10 s MusicGen call in a process took 38.6 s and
    the same call again 11.0 s, while on a CPU new lengths cost almost nothing.  Flash, memory-efficient
    and math attention need no plan; the backends already switched on stay on, less cuDNN.  Not measured on
    a GPU yet (``benchmarks/gpu_check.sh`` does it).  ``MANGA2MUSIC_CUDNN_ATTENTION=1`` keeps torch's own
    choice.  On other devices nothing changes.  torch keeps these switches process-wide.
    """
    import contextlib

    from .settings import cudnn_attention_allowed

    if not str(device).startswith("cuda") or cudnn_attention_allowed():
        return contextlib.nullcontext()
    try:
        import torch
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch before 2.3
        return contextlib.nullcontext()
    cuda = torch.backends.cuda
    keep = [backend for backend, on in ((SDPBackend.FLASH_ATTENTION, cuda.flash_sdp_enabled()),
                                        (SDPBackend.EFFICIENT_ATTENTION, cuda.mem_efficient_sdp_enabled()),
                                        (SDPBackend.MATH, cuda.math_sdp_enabled())) if on]
    return sdpa_kernel(keep or [SDPBackend.MATH])


@contextmanager
def seeded(seed: Optional[int]) -> Iterator[None]:
    """Within it, Python's, NumPy's and torch's generators seeded from ``seed`` (:func:`seed_everything`; None:
    left as they are); after it, put back as they were: a program that calls the API keeps its own random state
    (each MusicGen or local VLM call set it back to the track's seed, so the program drew the same numbers after
    every call)."""
    if seed is None:
        yield
        return
    import numpy as np
    import torch

    python, numpy = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            seed_everything(seed)
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (all devices) from one integer."""
    import numpy as np
    import torch

    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA and MPS generators too
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def refuse_random_layers(name: str, info: dict) -> None:
    """After ``from_pretrained(..., output_loading_info=True)``: weights the model needs that the files do not hold
    (transformers makes them random: a fine-tune saved with a training wrapper's ``module.`` prefix, a config.json
    with more layers than the weights) raise :class:`~manga2music.errors.WeightsUnusableError`.  A checkpoint
    saved by ``save_pretrained`` lists none (tied and ignored weights are not listed)."""
    from .errors import WeightsUnusableError
    from .wording import listed

    missing = sorted(info.get("missing_keys") or [])
    if not missing:
        return
    unexpected = sorted(info.get("unexpected_keys") or [])
    wrapped = [k for k in unexpected if k.startswith("module.")]
    extra = f", and {len(unexpected)} in the files are not the model's (e.g. {listed(unexpected[:2])})" if unexpected \
        else ""
    raise WeightsUnusableError(
        f"{name}: its weights do not fit its config.json: {len(missing)} weights the model needs are not in its files "
        f"(e.g. {listed(missing[:2])}){extra}; those layers would be random and make noise",
        hint="the files' names start with `module.`, as a training wrapper (DDP) saves them: save the unwrapped model "
             "with save_pretrained" if wrapped else
             "save the model and its config together again (save_pretrained), or copy the whole folder again")


def damaged_weights(name: str, exc: Exception) -> Exception:
    """A weight file the library cannot read (safetensors' "Error while deserializing header", torch's
    "Weights only load failed", whose advice to load it with ``weights_only=False`` would run whatever the file
    holds) as one line that says the file is damaged; any other exception as it is."""
    from .errors import WeightsUnusableError

    if type(exc).__name__ not in ("SafetensorError", "UnpicklingError", "BadZipFile") and not (
            isinstance(exc, (RuntimeError, ValueError)) and "PytorchStreamReader" in str(exc)):
        return exc
    return WeightsUnusableError(f"{name}: a weight file is damaged and cannot be read ({type(exc).__name__}): copy "
                                "or download the folder again")


def load_failure(name: str, exc: Exception) -> Exception:
    """A model's load that failed on its weights, as one line that says what it means (:func:`damaged_weights`,
    :func:`weights_that_do_not_fit`); any other failure as it is."""
    error = damaged_weights(name, exc)
    return weights_that_do_not_fit(name, exc) if error is exc and isinstance(exc, RuntimeError) else error


def weights_that_do_not_fit(name: str, exc: RuntimeError) -> Exception:
    """transformers' "You set `ignore_mismatched_sizes` to `False`..." (a config.json of another model size beside
    the weights) as one line that says what it means and what to do; any other RuntimeError as it is."""
    from .errors import BackendError

    if "mismatched" not in str(exc):
        return exc
    return BackendError(f"{name}: its weights do not fit its config.json (the layers' sizes differ: a config.json of "
                        "another model size?); save the model and its config together again")
