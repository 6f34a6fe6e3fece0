"""Short model names -> backend classes, Hub ids and memory needs.

One table for both sides.  ``--model`` accepts a short name from here, a
Hugging Face id, a local model folder, or ``BACKEND:ID`` (e.g.
``openai:llama3.2-vision``, ``audiocraft:facebook/musicgen-small``).  Backend
classes are named as ``"module:Class"`` strings and imported only when used, so
``--help`` never pays for torch.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from .errors import UnknownModelError

Side = Literal["vision", "music"]

BACKENDS: dict[str, str] = {
    # vision
    "builtin-vision": "manga2music.describers.builtin:BuiltinDescriber",
    "openai": "manga2music.describers.openai_chat:OpenAIDescriber",
    "transformers-vlm": "manga2music.describers.transformers_vlm:TransformersDescriber",
    # music
    "builtin-music": "manga2music.composers.builtin:BuiltinComposer",
    "musicgen": "manga2music.composers.musicgen:MusicgenComposer",
    "audiocraft": "manga2music.composers.audiocraft:AudiocraftComposer",
    "musicgen-melody": "manga2music.composers.musicgen_melody:MusicgenMelodyComposer",
    "ace-step": "manga2music.composers.ace_step:AceStepComposer",
    "stable-audio-open": "manga2music.composers.stable_audio_open:StableAudioOpenComposer",
    "stable-audio-3": "manga2music.composers.stable_audio_3:StableAudio3Composer",
}

#: diffusers pipeline class (``_class_name`` in a folder's model_index.json) -> backend
PIPELINE_BACKENDS: dict[str, str] = {
    "AceStepPipeline": "ace-step",
    "StableAudioPipeline": "stable-audio-open",
    "StableAudio3Pipeline": "stable-audio-3",
}

#: backends that load weights from the model cache (transformers or diffusers)
WEIGHT_BACKENDS = ("transformers-vlm", "musicgen", "musicgen-melody", "ace-step", "stable-audio-open",
                   "stable-audio-3")


@dataclass(frozen=True)
class ModelSpec:
    """A known model: what it is called, where its weights live, what it needs."""

    name: str  # short name users type
    side: Side
    backend: str  # a key of BACKENDS
    model_id: str  # Hub id, API model name, or "" for builtin
    download_gb: float = 0.0  # weights on disk
    vram_gb: float = 0.0  # memory to run on a GPU (fp16/bf16), rough
    ram_gb: float = 0.0  # memory to run on a CPU (bf16/fp32), rough
    about: str = ""
    licence: str = ""  # the weights' licence, as its model card names it
    commercial: bool | None = None  # may the output be used commercially? None: not recorded

    @property
    def needs_weights(self) -> bool:
        return self.backend in WEIGHT_BACKENDS

    @property
    def needs_network(self) -> bool:
        return self.backend == "openai"


MODELS: list[ModelSpec] = [
    # --- vision -------------------------------------------------------------------
    ModelSpec("builtin", "vision", "builtin-vision", "", about="offline: measures ink, lines, panels and colour; no weights"),
    ModelSpec("gpt-4o", "vision", "openai", "gpt-4o", about="OpenAI API (needs OPENAI_API_KEY)"),
    ModelSpec("gpt-4o-mini", "vision", "openai", "gpt-4o-mini", about="OpenAI API, cheaper (needs OPENAI_API_KEY)"),
    ModelSpec("llava-0.5b", "vision", "transformers-vlm", "llava-hf/llava-interleave-qwen-0.5b-hf",
              download_gb=1.8, vram_gb=2.0, ram_gb=3.0, about="LLaVA-NeXT-Interleave Qwen 0.5B (the original scripts' small model)"),
    ModelSpec("llava-7b", "vision", "transformers-vlm", "llava-hf/llava-interleave-qwen-7b-hf",
              download_gb=16.2, vram_gb=16.0, ram_gb=32.0, about="LLaVA-NeXT-Interleave Qwen 7B (the original scripts' large model)"),
    ModelSpec("llava-onevision-0.5b", "vision", "transformers-vlm", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
              download_gb=1.8, vram_gb=2.0, ram_gb=3.0, about="LLaVA-OneVision Qwen2 0.5B"),
    ModelSpec("llava-onevision-7b", "vision", "transformers-vlm", "llava-hf/llava-onevision-qwen2-7b-ov-hf",
              download_gb=16.2, vram_gb=16.0, ram_gb=32.0, about="LLaVA-OneVision Qwen2 7B"),
    ModelSpec("qwen2-vl-2b", "vision", "transformers-vlm", "Qwen/Qwen2-VL-2B-Instruct",
              download_gb=4.4, vram_gb=6.0, ram_gb=9.0, about="Qwen2-VL 2B Instruct"),
    ModelSpec("smolvlm", "vision", "transformers-vlm", "HuggingFaceTB/SmolVLM2-2.2B-Instruct",
              download_gb=4.5, vram_gb=6.0, ram_gb=9.0, about="SmolVLM2 2.2B Instruct"),
    # --- music --------------------------------------------------------------------
    ModelSpec("builtin", "music", "builtin-music", "", about="offline: chords, melody, bass and drums rendered with a General MIDI SoundFont"),
    ModelSpec("musicgen-small", "music", "musicgen", "facebook/musicgen-small",
              download_gb=2.4, vram_gb=2.0, ram_gb=3.0, about="MusicGen 300M, mono 32 kHz"),
    ModelSpec("musicgen-medium", "music", "musicgen", "facebook/musicgen-medium",
              download_gb=8.0, vram_gb=8.0, ram_gb=12.0, about="MusicGen 1.5B, mono 32 kHz"),
    ModelSpec("musicgen-large", "music", "musicgen", "facebook/musicgen-large",
              download_gb=13.0, vram_gb=16.0, ram_gb=24.0, about="MusicGen 3.3B, mono 32 kHz"),
    ModelSpec("musicgen-stereo-small", "music", "musicgen", "facebook/musicgen-stereo-small",
              download_gb=2.4, vram_gb=2.5, ram_gb=3.5, about="MusicGen 300M, stereo 32 kHz"),
    ModelSpec("musicgen-stereo-medium", "music", "musicgen", "facebook/musicgen-stereo-medium",
              download_gb=8.0, vram_gb=9.0, ram_gb=13.0, about="MusicGen 1.5B, stereo 32 kHz"),
    ModelSpec("musicgen-stereo-large", "music", "musicgen", "facebook/musicgen-stereo-large",
              download_gb=13.0, vram_gb=17.0, ram_gb=25.0, about="MusicGen 3.3B, stereo 32 kHz"),
    ModelSpec("musicgen-melody", "music", "musicgen-melody", "facebook/musicgen-melody",
              download_gb=6.5, vram_gb=8.0, ram_gb=12.0, about="MusicGen 1.5B with melody conditioning, mono 32 kHz",
              licence="CC-BY-NC-4.0", commercial=False),
    ModelSpec("ace-step", "music", "ace-step", "ACE-Step/acestep-v15-xl-turbo-diffusers",
              download_gb=12.0, vram_gb=14.0, ram_gb=16.0,
              about="ACE-Step 1.5 XL turbo (4.7B DiT, 8 steps), stereo 48 kHz, up to 10 min per call",
              licence="Apache-2.0", commercial=True),
    ModelSpec("stable-audio-open", "music", "stable-audio-open", "stabilityai/stable-audio-open-1.0",
              download_gb=5.3, vram_gb=6.0, ram_gb=8.0,
              about="Stable Audio Open 1.0 (1.1B DiT, 100 steps), stereo 44.1 kHz, up to 47 s per call",
              licence="Stability AI Community License (free under US$1M annual revenue)", commercial=True),
    ModelSpec("stable-audio-3-small", "music", "stable-audio-3", "stabilityai/stable-audio-3-small-music",
              download_gb=2.0, vram_gb=3.0, ram_gb=4.0,
              about="Stable Audio 3 Small Music (433M DiT, 8 steps), stereo 44.1 kHz, up to 120 s per call; "
                    "convert to diffusers format first",
              licence="Stability AI Community License (free under US$1M annual revenue)", commercial=True),
]

#: prefix -> backend, for "BACKEND:ID" names
PREFIXES = {"openai": "openai", "hf": None, "audiocraft": "audiocraft"}


def known_models(side: Side | None = None) -> list[ModelSpec]:
    return [m for m in MODELS if side is None or m.side == side]


def find_spec(name: str, side: Side) -> Optional[ModelSpec]:
    """The registered spec for a short name or a known Hub id on one side."""
    for m in MODELS:
        if m.side == side and (m.name == name or (m.model_id and m.model_id == name)):
            return m
    return None


def _local_config(path: Path) -> dict | None:
    cfg = path / "config.json"
    if path.is_dir() and cfg.is_file():
        try:
            return json.loads(cfg.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
    return None


def _local_pipeline(path: Path) -> str | None:
    """The ``_class_name`` of a local diffusers pipeline folder (its model_index.json), else ``None``."""
    index = path / "model_index.json"
    if not (path.is_dir() and index.is_file()):
        return None
    try:
        return str(json.loads(index.read_text(encoding="utf-8")).get("_class_name", ""))
    except (OSError, ValueError):
        return ""


def _backend_for_config(config: dict, side: Side) -> str | None:
    model_type = str(config.get("model_type", ""))
    if side == "music":
        if model_type == "musicgen_melody":
            return "musicgen-melody"
        return "musicgen" if model_type.startswith("musicgen") else None
    return "transformers-vlm" if model_type else None


def resolve(name: str, side: Side, *, base_url: str | None = None) -> ModelSpec:
    """Turn what the user typed into a spec, or raise UnknownModelError listing the known names.

    ``auto`` is resolved elsewhere (the tier logic in ``tiers.py``) before this is called.
    """
    name = name.strip()
    spec = find_spec(name, side)
    if spec is not None:
        return spec
    backend_prefix, sep, rest = name.partition(":")
    if sep and backend_prefix in PREFIXES and rest:
        if backend_prefix == "openai" and side == "vision":
            return ModelSpec(rest, side, "openai", rest, about="OpenAI-compatible server")
        if backend_prefix == "audiocraft" and side == "music":
            return ModelSpec(name, side, "audiocraft", rest, about="audiocraft (optional backend)")
        if backend_prefix == "hf":
            name = rest
    path = Path(os.path.expanduser(name))
    pipeline = _local_pipeline(path)
    if pipeline is not None and side == "music":
        if pipeline not in PIPELINE_BACKENDS:
            raise UnknownModelError(
                f"{name} is a diffusers pipeline folder, but not one manga2music composes with "
                f"(_class_name={pipeline!r})",
                hint=f"use a folder of one of: {', '.join(PIPELINE_BACKENDS)}.")
        return ModelSpec(str(path), side, PIPELINE_BACKENDS[pipeline], str(path.resolve()), about="local folder")
    config = _local_config(path)
    if config is not None:
        backend = _backend_for_config(config, side)
        if backend is None:
            raise UnknownModelError(
                f"{name} is a model folder, but not a {'MusicGen' if side == 'music' else 'vision-language'} model "
                f"(model_type={config.get('model_type')!r})"
            )
        return ModelSpec(str(path), side, backend, str(path.resolve()), about="local folder")
    if base_url and side == "vision":
        # with --base-url any name is a model of that OpenAI-compatible server (Ollama, vLLM, ...)
        return ModelSpec(name, side, "openai", name, about=f"OpenAI-compatible server at {base_url}")
    if "/" in name and not path.exists() and not name.startswith((".", "/", "~")):
        # a Hugging Face id we do not know by name: MusicGen ids on the music side, VLMs otherwise
        if side == "music":
            return ModelSpec(name, side, "musicgen", name, about="Hugging Face id")
        return ModelSpec(name, side, "transformers-vlm", name, about="Hugging Face id")
    known = ", ".join(["auto"] + [m.name for m in known_models(side)])
    hint = "or a Hugging Face id (owner/name), a local model folder"
    if side == "vision":
        hint += ", or any model of an OpenAI-compatible server with --base-url"
    raise UnknownModelError(f"unknown {side} model {name!r}; known models: {known}", hint=hint + ".")


def load_backend_class(backend: str):
    """Import the class behind a backend key (lazy: torch and friends load only here)."""
    module_name, _, class_name = BACKENDS[backend].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
