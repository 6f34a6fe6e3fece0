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
}


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

    @property
    def needs_weights(self) -> bool:
        return self.backend in ("transformers-vlm", "musicgen")

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


def _backend_for_config(config: dict, side: Side) -> str | None:
    model_type = str(config.get("model_type", ""))
    if side == "music":
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


def as_spec(spec: "ModelSpec | str", side: Side, backend: str) -> ModelSpec:
    """A spec as given; for a backend built by hand from a name (notebooks, tests), what :func:`resolve`
    makes of it when that is this backend, else the name taken as this backend's model id."""
    if isinstance(spec, ModelSpec):
        return spec
    name = str(spec).strip()
    try:
        found = resolve(name, side)
        if found.backend == backend:
            return found
    except UnknownModelError:
        pass
    return ModelSpec(name, side, backend, name, about="given directly")


def load_backend_class(backend: str):
    """Import the class behind a backend key (lazy: torch and friends load only here)."""
    module_name, _, class_name = BACKENDS[backend].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
