"""Which models ``auto`` picks on this machine, and preflight checks before loading one.

Memory needs live in :mod:`manga2music.registry` (``vram_gb``, ``ram_gb``,
``download_gb``); the figures ``auto`` chooses between are, roughly:

==================  =========  ========  ===========
model               VRAM (GB)  RAM (GB)  download GB
==================  =========  ========  ===========
llava-0.5b          3          3.5       1.8
qwen2.5-vl-3b       10         11        7.5
llava-7b            20         32        16.2
musicgen-small      2          3         2.4
musicgen-medium     8          12        8.0
musicgen-large      16         24        13.0
==================  =========  ========  ===========

The VLM figures hold the weights plus one 8-page request, computed from the
checkpoints' real config.json and the image tokens their real processors give
a page (:mod:`manga2music.describers.vlm_memory`): llava-7b has no
grouped-query attention, so 8 pages cost it 3 GB of key/value cache on top of
16.3 GB of weights.  qwen2.5-vl-3b sits between the two LLaVA-Interleave
models because its model card reports DocVQA 93.9 and MMMU 53.1 at 3 B
parameters (LLaVA-NeXT-Interleave 7B: TextVQA 63.2, AI2D 73.9 in its paper),
and it fits a 16 GB card, where the 7 B model does not.

The rules of :func:`resolve_auto`, per side (vision and music are loaded one
after the other, never together, so each side may use the whole device):

1. A neural model is *obtainable* when its weights are complete in the cache,
   or when we are online (not ``HF_HUB_OFFLINE=1`` / ``--offline``), a download
   is allowed (``allow_download``), the Hub answers, and its download fits the
   free disk of the cache.  Neural models also need torch installed.  Whether a
   run may download is decided by :mod:`manga2music.downloads`, which resolves
   once with downloads allowed to learn what they would be, and again without
   when nobody agreed.
2. *CUDA*: the biggest model of the ladder (vision: llava-7b, qwen2.5-vl-3b, llava-0.5b;
   music: musicgen-large, medium, small) whose ``vram_gb`` plus a margin
   (the larger of 1 GB and 10 % of the card) fits the free VRAM of the GPU with
   the most free memory, and that is obtainable.  If not even the small one
   fits, the CPU rule applies (run with ``--device cpu``).
3. *Apple MPS*: unified memory, so the RAM rule with the small models only
   (llava-0.5b, musicgen-small).
4. *CPU only*: llava-0.5b + musicgen-small when obtainable and their
   ``ram_gb`` plus the margin fits the available RAM.
5. Otherwise ``builtin``; the reason names the model it would use with
   weights and how to get them (``manga2music models pull musicgen-small``).
6. Vision: an ``OPENAI_API_KEY`` never makes auto choose GPT (it costs money and
   sends the pages away); the reason says so and how to ask for it.

:func:`preflight` respects explicit choices: it returns warnings, and raises
:class:`ModelUnavailableError` only when the model certainly cannot run here.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from pathlib import Path
from typing import Literal, NamedTuple, Optional

from .errors import ModelUnavailableError
from .hardware import GB, HardwareReport, collect
from .options import flag
from .registry import ModelSpec, Side, find_spec

#: biggest first; the models auto chooses between
LADDER: dict[str, tuple[str, ...]] = {
    "vision": ("llava-7b", "qwen2.5-vl-3b", "llava-0.5b"),
    "music": ("musicgen-large", "musicgen-medium", "musicgen-small"),
}
#: what CPU and MPS machines get
SMALL: dict[str, str] = {"vision": "llava-0.5b", "music": "musicgen-small"}
#: with ``--commercial``: only models whose licence lets their output be used commercially (registry ``commercial``).
#: Music: ACE-Step 1.5 (Apache-2.0) and Stable Audio Open (Stability's community licence: free under US$1M revenue)
#: instead of MusicGen (CC-BY-NC-4.0); vision: Apache-2.0 VLMs instead of the research-licensed LLaVA/Qwen2.5 ones.
COMMERCIAL_LADDER: dict[str, tuple[str, ...]] = {
    "vision": ("qwen3-vl-4b", "qwen2-vl-2b", "smolvlm2-500m"),
    "music": ("ace-step", "stable-audio-open"),
}
COMMERCIAL_SMALL: dict[str, str] = {"vision": "smolvlm2-256m", "music": "stable-audio-open"}
def _openai_note() -> str:
    return ("OPENAI_API_KEY is set, but auto never picks GPT (it costs money and sends the pages away); "
            f"ask for it with {flag('vision_model', 'gpt-4o-mini')}")


def margin_gb(total_gb: float) -> float:
    """Headroom kept free on a device: 1 GB or 10 % of it, whichever is larger."""
    return max(1.0, 0.1 * total_gb)


def _spec(name: str, side: Side) -> ModelSpec:
    spec = find_spec(name, side)
    assert spec is not None, name
    return spec


def _builtin(side: Side) -> ModelSpec:
    return _spec("builtin", side)


def _download_fits(spec: ModelSpec, probe: HardwareReport) -> bool:
    return spec.download_gb * 1.05 + 0.5 <= probe.disk_free_gb


#: how :func:`resolve_auto` says a download was not allowed (see :mod:`manga2music.downloads`)
NOT_ALLOWED = "not cached, and downloading was not allowed"


class _Weights(NamedTuple):
    """Whether a model's weights can be had here, how (in words), and which case that is."""

    ok: bool
    how: str
    kind: Literal["cached", "download", "out_of_reach", "offline", "not_allowed", "disk", "hub"]


def _obtainable(spec: ModelSpec, probe: HardwareReport, allow_download: bool = True) -> _Weights:
    """Can we have its weights, and how ('weights cached' / 'N GB download on first use' / why not)."""
    if probe.is_cached(spec.model_id):
        return _Weights(True, "weights cached", "cached")
    if probe.cache_unreadable:  # run as another user, HOME still the owner's
        return _Weights(False, f"out of reach: the model cache {probe.cache_problem}", "out_of_reach")
    if probe.offline:
        return _Weights(False, "not cached and offline mode is on", "offline")
    if not allow_download:
        return _Weights(False, NOT_ALLOWED, "not_allowed")
    if not _download_fits(spec, probe):
        return _Weights(False, f"not cached, and its {spec.download_gb:g} GB download does not fit the disk", "disk")
    if not probe.hub_reachable():
        return _Weights(False, f"not cached and the Hub is unreachable ({probe.hub.detail})", "hub")
    return _Weights(True, f"{spec.download_gb:g} GB download on first use", "download")


def torch_install(probe: HardwareReport) -> str:
    """How to install torch on this machine: where no NVIDIA GPU is found (Linux, Windows), the CPU build, since a
    plain ``pip install torch`` takes the CUDA one there (about 4 GB more, of no use without the GPU)."""
    if probe.gpus or sys.platform == "darwin":
        return "pip install torch"
    return "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def _fits_gpu(spec: ModelSpec, probe: HardwareReport) -> bool:
    gpu = probe.best_gpu
    return gpu is not None and spec.vram_gb + margin_gb(gpu.total_gb) <= gpu.free_gb


def _fits_ram(spec: ModelSpec, probe: HardwareReport) -> bool:
    return spec.ram_gb + margin_gb(probe.ram_total_gb) <= probe.ram_available_gb


def _candidates(side: Side, probe: HardwareReport,
                commercial: bool = False) -> tuple[list[ModelSpec], str, bool]:
    """The models that fit this machine's memory (biggest first), where they run, and whether on a GPU."""
    gpu = probe.best_gpu
    ladder, smallest = (COMMERCIAL_LADDER, COMMERCIAL_SMALL) if commercial else (LADDER, SMALL)
    if probe.accelerator == "cuda" and gpu is not None:
        fitting = [s for s in (_spec(n, side) for n in ladder[side]) if _fits_gpu(s, probe)]
        if fitting:
            return fitting, f"on {gpu.name}", True
    small = _spec(smallest[side], side)
    where = ("on Apple MPS" if probe.accelerator == "mps"
             else f"on the CPU ({flag('device', 'cpu')}: the GPU has {gpu.free_gb:g} GB free)" if gpu is not None
             else "on the CPU")
    return ([small] if _fits_ram(small, probe) else []), where, False


def _room(spec: ModelSpec, probe: HardwareReport, on_gpu: bool) -> str:
    """'needs ~16 GB VRAM, 79.2 GB free' and the like."""
    if on_gpu and probe.best_gpu is not None:
        return f"needs ~{spec.vram_gb:g} GB VRAM, {probe.best_gpu.free_gb:g} GB free"
    memory = "unified memory" if probe.accelerator == "mps" else "RAM"
    return f"needs ~{spec.ram_gb:g} GB {memory}, {probe.ram_available_gb:g} GB available"


def licence_note(spec: ModelSpec) -> str:
    """'licence cc-by-nc-4.0: not for commercial use' and the like ('' for a model without one recorded)."""
    if not spec.licence:
        return ""
    use = {True: "commercial use allowed", False: "not for commercial use", None: "commercial use unclear"}
    return f"licence {spec.licence}: {use[spec.commercial]}"


def resolve_auto(side: Side, *, probe: HardwareReport | None = None,
                 offline: bool | None = None, allow_download: bool = True,
                 commercial: bool = False) -> tuple[ModelSpec, str]:
    """:func:`_resolve_auto`, with the pick's licence in the reason."""
    spec, reason = _resolve_auto(side, probe=probe, offline=offline, allow_download=allow_download,
                                 commercial=commercial)
    note = licence_note(spec)
    if note and spec.commercial is False:
        note += " (--commercial picks only models whose music you may publish commercially)"
    # named, since the reason may first explain why another model was skipped
    return spec, f"{reason}; {spec.name}'s {note}" if note else reason


def _resolve_auto(side: Side, *, probe: HardwareReport | None = None,
                  offline: bool | None = None, allow_download: bool = True,
                  commercial: bool = False) -> tuple[ModelSpec, str]:
    """The spec ``auto`` means here for one side, and a one-line reason.

    ``probe`` defaults to a fresh :func:`manga2music.hardware.collect` (the Hub
    is probed only if a model is not cached); ``offline`` overrides the probe's.
    ``allow_download=False`` keeps to weights already cached (then builtin) and
    never touches the network: what a run does when nobody agreed to a download
    (:mod:`manga2music.downloads` decides; this function never asks anyone).
    """
    if probe is None:
        probe = collect(offline=offline, check_hub=False)
    elif offline is not None and offline != probe.offline:
        probe = dataclasses.replace(probe, offline=offline)
    from .settings import no_network

    note = f"; {_openai_note()}" if side == "vision" and probe.openai_key_set and not no_network() else ""  # --offline:
    # no API to suggest (HF_HUB_OFFLINE alone keeps only the Hub away)

    missing = [name for name, there in (("torch", probe.has_torch), ("transformers", probe.packages.get("transformers")))
               if not there]
    if missing:
        fitting, where, _ = _candidates(side, probe, commercial)
        which = f"{fitting[0].name} would run {where} with" if fitting else "neural models need"
        are = "which is" if len(missing) == 1 else "which are"
        how = torch_install(probe) if "torch" in missing else "pip install"
        how += "; pip install transformers" if missing == ["torch", "transformers"] else \
            " transformers" if missing == ["transformers"] else ""
        return _builtin(side), f"{which} {' and '.join(missing)}, {are} not installed ({how}){note}"
    fitting, where, on_gpu = _candidates(side, probe, commercial)
    if not fitting:
        small = _spec((COMMERCIAL_SMALL if commercial else SMALL)[side], side)
        return _builtin(side), f"too little free memory for {small.name} {where}: {_room(small, probe, False)}{note}"
    missed: list[tuple[ModelSpec, _Weights]] = []
    for spec in fitting:
        weights = _obtainable(spec, probe, allow_download)
        if weights.ok:
            what = ("the small model" if not on_gpu else "the biggest available that fits" if missed
                    else "the biggest that fits")
            reason = f"{what} {where}: {_room(spec, probe, on_gpu)}; {weights.how}"
            if missed:
                big, why = missed[0]
                pull = "" if why.kind in ("disk", "out_of_reach") else f" (`manga2music models pull {big.name}`)"
                reason += f"; {big.name} would fit too, but its weights are {why.how}{pull}"
            return spec, reason + note
        missed.append((spec, weights))
    best, why = missed[0]
    how = why.how
    get = ("point MANGA2MUSIC_CACHE at a folder you may read (`manga2music doctor` shows the cache)"
           if why.kind == "out_of_reach" else f"get them with `manga2music models pull {best.name}`"
           + (" while online" if why.kind == "offline" else ""))
    return _builtin(side), f"{best.name} would run {where}, but its weights are {how}; {get}{note}"


def suggest(probe: HardwareReport) -> dict[str, tuple[ModelSpec, str]]:
    """``resolve_auto`` for both sides."""
    return {side: resolve_auto(side, probe=probe) for side in ("vision", "music")}


def _device(device: str, probe: HardwareReport) -> tuple[str, Optional[int]]:
    device = (device or "auto").lower()
    if device == "auto":
        return probe.accelerator, None
    kind, _, index = device.partition(":")
    return kind, int(index) if index.isdigit() else None


def _fallback_hint(spec: ModelSpec, probe: HardwareReport, commercial: bool = False) -> str:
    """What the doctor would suggest instead (memory only: no network on the failure path); with ``commercial``,
    only models whose output may be published commercially (--commercial was given)."""
    if spec.side not in LADDER:
        return "run `manga2music doctor` to see what runs here"
    fitting, where, _ = _candidates(spec.side, probe, commercial)
    others = [m for m in fitting if m.name != spec.name]
    ready = [m for m in others if probe.is_cached(m.model_id)]
    if ready:  # one that runs now
        return (f"name {ready[0].name} for this run: it is cached and runs here {where}; or builtin, which runs "
                "anywhere, with no weights; `manga2music doctor` shows what runs here")
    # not the model that just failed; and what runs right now comes first (said as what to do: "builtin runs here
    # now" read as if builtin were taking over)
    later = f"; {others[0].name} would run {where} once its weights are pulled" if others else ""
    return f"name the model builtin for this run: it runs here now, with no weights{later}; `manga2music doctor` " \
           "shows what runs here"


def preflight(spec: ModelSpec, *, device: str = "auto", probe: HardwareReport | None = None,
              offline: bool | None = None, device_flag: str = "device", commercial: bool = False,
              download_refused: bool = False) -> list[str]:
    """Check ``spec`` against this machine before loading it (``device_flag``: how messages name the device
    setting, ``vision_device`` when the user gave ``--vision-device``; ``commercial``: what it suggests instead is
    only what --commercial allows).

    Returns warnings (free memory tight, a large download ahead); raises
    ModelUnavailableError when it certainly cannot run (needs more memory than
    the device has in total, no weights offline, no such device, no torch).
    """
    if not spec.needs_weights:
        return []
    if probe is None:
        probe = collect(offline=offline, check_hub=False)
    elif offline is not None and offline != probe.offline:
        probe = dataclasses.replace(probe, offline=offline)
    hint = _fallback_hint(spec, probe, commercial)
    warnings: list[str] = []
    if not probe.has_torch:
        raise ModelUnavailableError(f"{spec.name} needs torch, which is not installed", hint=torch_install(probe))
    kind, index = _device(device, probe)
    if kind in ("cuda", "mps") and probe.accelerator != kind:
        if not spec.ram_gb or not probe.ram_total_gb or _fits_ram(spec, probe):  # the model asked for, on the CPU
            hint = (f"{flag(device_flag, 'cpu')} runs {spec.name} here, more slowly; `manga2music doctor` shows what "
                    "runs here")
        if kind == "cuda":
            why = probe.gpu_note or "no NVIDIA GPU found"
            asked = "cuda" if index is None else f"cuda:{index}"  # as given (cuda:1 was said as cuda)
            raise ModelUnavailableError(f"{flag(device_flag, asked)} asked, but CUDA is not usable here: {why}",
                                        hint=hint)
        raise ModelUnavailableError(f"{flag(device_flag, 'mps')} asked, but Apple MPS is not available here", hint=hint)

    if kind == "cuda":
        gpus = [g for g in probe.gpus if index is None or g.index == index]
        gpu = max(gpus, key=lambda g: g.free_gb, default=None)
        if gpu is None:
            raise ModelUnavailableError(f"{flag(device_flag, device)}: no such GPU here", hint=hint)
        if spec.vram_gb and spec.vram_gb > gpu.total_gb:
            raise ModelUnavailableError(
                f"{spec.name} needs ~{spec.vram_gb:g} GB of VRAM; {gpu.name} has {gpu.total_gb:g} GB in total",
                hint=hint)
        if spec.vram_gb and spec.vram_gb + margin_gb(gpu.total_gb) > gpu.free_gb:
            warnings.append(f"{spec.name} needs ~{spec.vram_gb:g} GB of VRAM and {gpu.name} has "
                            f"{gpu.free_gb:g} GB free: it may run out of memory")
    elif spec.ram_gb and probe.ram_total_gb:
        where = "unified memory" if kind == "mps" else "RAM"
        if spec.ram_gb > probe.ram_total_gb:
            raise ModelUnavailableError(
                f"{spec.name} needs ~{spec.ram_gb:g} GB of {where}; this machine has {probe.ram_total_gb:g} GB in total",
                hint=hint)
        if not _fits_ram(spec, probe):
            warnings.append(f"{spec.name} needs ~{spec.ram_gb:g} GB of {where} and {probe.ram_available_gb:g} GB "
                            f"is available: it may swap or run out of memory")

    local = bool(spec.model_id) and Path(spec.model_id).expanduser().is_dir()
    if not local and not probe.is_cached(spec.model_id) and not download_refused:  # refused: no download ahead
        # to size or reach (the model's load says so, where a section needs it: backends.build)
        folder = _local_folder_of_that_name(spec.model_id)
        size = f"{spec.download_gb:g} GB" if spec.download_gb else "its weights"
        if probe.offline:
            raise ModelUnavailableError(
                f"{spec.name}: weights not in {probe.cache_dir} and offline mode is on",
                hint=f"{folder}run `manga2music models pull {spec.name}` while online; {hint}")
        if spec.download_gb and spec.download_gb > probe.disk_free_gb:
            raise ModelUnavailableError(
                f"{spec.name}: {size} to download but only {probe.disk_free_gb:g} GB free in {probe.cache_dir}",
                hint=f"free some disk or set MANGA2MUSIC_CACHE to a bigger disk; {hint}")
        if not probe.hub_reachable():  # one short request, only when a download is ahead
            raise ModelUnavailableError(
                f"{spec.name}: weights not cached and the Hub at {probe.hub.endpoint} is unreachable "
                f"({probe.hub.detail})", hint=folder + hint)
        if spec.download_gb and not _download_fits(spec, probe):
            warnings.append(f"{spec.name}: the {size} download leaves little free disk in {probe.cache_dir}")
        warnings.append(f"{spec.name} is not cached: {size} will be downloaded to {probe.cache_dir}")
    return warnings


def _local_folder_of_that_name(model_id: Optional[str]) -> str:
    """The start of a hint for a Hub id ``owner/name`` that is a mistyped local path (``models/smoll``, with a folder
    ``models`` here): it was told only that the Hub is unreachable, or to pull it.  ``""`` where none is here."""
    if not model_id or model_id.count("/") != 1:
        return ""
    owner, name = model_id.split("/")
    here = Path(owner)
    try:
        inside = sorted(p.name for p in here.iterdir() if p.is_dir() and ((p / "config.json").is_file()
                                                                          or (p / "model_index.json").is_file()))
    except OSError:
        return ""
    if not inside:
        return ""
    near = difflib.get_close_matches(name, inside, n=1)
    shown = f"./{owner}/{near[0] if near else inside[0]}"
    return (f"{owner}/ here is a folder of models ({', '.join(inside[:3])}{', ...' if len(inside) > 3 else ''}), "
            f"but {model_id} is not one of them: for a folder, give its path ({shown}); ")


def check(spec: ModelSpec, *, device: str = "auto", probe: HardwareReport,
          offline: bool = False) -> tuple[bool, str, list[str]]:
    """(can it run, why, warnings) for ``doctor --vision-model/--music-model``; ``offline``: ``doctor --offline``,
    which forbids the network as ``run --offline`` does (HF_HUB_OFFLINE alone keeps only the Hub away)."""
    if spec.needs_network:
        from .describers.openai_chat import network_forbidden

        if network_forbidden(probe.openai_base_url, offline):  # as `run --offline`
            return False, (f"{spec.name} sends the pages to {probe.openai_base_url}, and offline mode forbids "
                           "network use"), []
        if not probe.openai_key_set and probe.openai_base_url_source == "default":
            return False, f"{spec.name} needs OPENAI_API_KEY (or OPENAI_BASE_URL of a server that needs no key)", []
        return True, f"{spec.name} via {probe.openai_base_url} (sends the pages there)", []
    if not spec.needs_weights:
        warnings = builtin_reading_warnings() if spec.backend == "builtin-vision" else []
        return True, f"{spec.name} runs anywhere, offline", warnings
    try:
        warnings = preflight(spec, device=device, probe=probe)
    except ModelUnavailableError as exc:
        return False, exc.message + (f" ({exc.hint})" if exc.hint else ""), []
    note = licence_note(spec)
    return True, f"{spec.name} can run here" + (f"; {note}" if note else ""), warnings


def builtin_reading_warnings() -> list[str]:
    """What the builtin describer cannot read here, said by doctor and as a run builds it (``run`` and ``score`` said
    nothing: only each record held "no text reading"): its text detector missing or failing to import, or the
    recogniser that tells titles from sound effects."""
    from .describers.text_detect import problem
    from .describers.text_recognition import problem as recognition_problem

    missing = problem(importing=True)
    if missing:
        return [f"text detection will be skipped ({missing}): pages are read from their pixels only"]
    if missing := recognition_problem():
        return [f"titles and credits will count as loud lettering ({missing})"]
    return []


__all__ = ["LADDER", "SMALL", "GB", "NOT_ALLOWED", "margin_gb", "resolve_auto", "suggest", "preflight", "check"]
