"""Model names -> specs: backend, checkpoint, memory needs, download size.

One table for both sides and one resolver (:func:`resolve`, rules in
:data:`RESOLVE_RULES`, tried in order).  ``--model`` accepts a short name from
here, a Hugging Face id, a local model folder, or ``BACKEND:ID`` (e.g.
``openai:llama3.2-vision``, ``hf:owner/name``, ``audiocraft:facebook/musicgen-small``).
Backends receive the resolved :class:`ModelSpec`; the cache commands ask
:func:`hub_repo`.  Backend classes are named as ``"module:Class"`` strings and
imported only when used, so ``--help`` never pays for torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from .errors import ModelUnavailableError, UnknownModelError
from .wording import first_few

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
    licence: str = ""  # of the weights (or the service's terms), SPDX-ish: "apache-2.0", "cc-by-nc-4.0", ...
    commercial: Optional[bool] = None  # may outputs/weights be used commercially per that licence (None: unclear)

    @property
    def needs_weights(self) -> bool:
        return self.backend in WEIGHT_BACKENDS

    @property
    def needs_network(self) -> bool:
        return self.backend == "openai"

    @property
    def no_download_reason(self) -> str:
        """Why there is nothing to download for this model ('' when there is)."""
        if self.needs_weights:
            return ""
        return "runs on the OpenAI API (or a compatible server)" if self.needs_network else "runs without weights"


MODELS: list[ModelSpec] = [
    # --- vision -------------------------------------------------------------------
    ModelSpec("builtin", "vision", "builtin-vision", "", about="offline: measures ink, lines, panels and colour; no weights"),
    ModelSpec("gpt-4o", "vision", "openai", "gpt-4o", about="OpenAI API (needs OPENAI_API_KEY)"),
    ModelSpec("gpt-4o-mini", "vision", "openai", "gpt-4o-mini", about="OpenAI API, cheaper (needs OPENAI_API_KEY)"),
    ModelSpec("llava-0.5b", "vision", "transformers-vlm", "llava-hf/llava-interleave-qwen-0.5b-hf",
              download_gb=1.8, vram_gb=3.0, ram_gb=3.5, about="LLaVA-NeXT-Interleave Qwen 0.5B (the original scripts' small model)"),
    ModelSpec("llava-7b", "vision", "transformers-vlm", "llava-hf/llava-interleave-qwen-7b-hf",
              download_gb=16.2, vram_gb=20.0, ram_gb=32.0, about="LLaVA-NeXT-Interleave Qwen 7B (the original scripts' large model)"),
    ModelSpec("llava-onevision-0.5b", "vision", "transformers-vlm", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
              download_gb=1.8, vram_gb=2.0, ram_gb=3.0, about="LLaVA-OneVision Qwen2 0.5B"),
    ModelSpec("llava-onevision-7b", "vision", "transformers-vlm", "llava-hf/llava-onevision-qwen2-7b-ov-hf",
              download_gb=16.2, vram_gb=16.0, ram_gb=32.0, about="LLaVA-OneVision Qwen2 7B"),
    ModelSpec("qwen2-vl-2b", "vision", "transformers-vlm", "Qwen/Qwen2-VL-2B-Instruct",
              download_gb=4.4, vram_gb=8.0, ram_gb=9.0, about="Qwen2-VL 2B Instruct"),
    ModelSpec("smolvlm", "vision", "transformers-vlm", "HuggingFaceTB/SmolVLM2-2.2B-Instruct",
              download_gb=4.5, vram_gb=6.0, ram_gb=9.0, about="SmolVLM2 2.2B Instruct"),
    # today's small VLMs (sizes, memory and licences: README "Model tiers"; licences also in MODEL_LICENCES)
    ModelSpec("qwen2.5-vl-3b", "vision", "transformers-vlm", "Qwen/Qwen2.5-VL-3B-Instruct",
              download_gb=7.5, vram_gb=10.0, ram_gb=11.0, about="Qwen2.5-VL 3B Instruct (research licence)"),
    ModelSpec("qwen3-vl-2b", "vision", "transformers-vlm", "Qwen/Qwen3-VL-2B-Instruct",
              download_gb=4.3, vram_gb=7.0, ram_gb=8.0, about="Qwen3-VL 2B Instruct"),
    ModelSpec("qwen3-vl-4b", "vision", "transformers-vlm", "Qwen/Qwen3-VL-4B-Instruct",
              download_gb=8.9, vram_gb=12.5, ram_gb=13.5, about="Qwen3-VL 4B Instruct"),
    ModelSpec("smolvlm2-256m", "vision", "transformers-vlm", "HuggingFaceTB/SmolVLM2-256M-Video-Instruct",
              download_gb=1.0, vram_gb=3.5, ram_gb=4.0, about="SmolVLM2 256M (13 tiles of 512 px a page)"),
    ModelSpec("smolvlm2-500m", "vision", "transformers-vlm", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct",
              download_gb=2.0, vram_gb=4.0, ram_gb=4.5, about="SmolVLM2 500M (13 tiles of 512 px a page)"),
    ModelSpec("mangalmm", "vision", "transformers-vlm", "hal-utokyo/MangaLMM",
              download_gb=16.6, vram_gb=21.0, ram_gb=22.0,
              about="MangaLMM: Qwen2.5-VL 7B tuned for manga OCR and questions"),
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
              licence="cc-by-nc-4.0", commercial=False),
    ModelSpec("ace-step", "music", "ace-step", "ACE-Step/acestep-v15-xl-turbo-diffusers",
              download_gb=12.0, vram_gb=14.0, ram_gb=16.0,
              about="ACE-Step 1.5 XL turbo (4.7B DiT, 8 steps), stereo 48 kHz, up to 10 min per call",
              licence="apache-2.0", commercial=True),
    ModelSpec("stable-audio-open", "music", "stable-audio-open", "stabilityai/stable-audio-open-1.0",
              download_gb=5.3, vram_gb=6.0, ram_gb=8.0,
              about="Stable Audio Open 1.0 (1.1B DiT, 100 steps), stereo 44.1 kHz, up to 47 s per call",
              licence="stability-ai-community", commercial=True),  # free under US$1M annual revenue
    ModelSpec("stable-audio-3-small", "music", "stable-audio-3", "stabilityai/stable-audio-3-small-music",
              download_gb=2.0, vram_gb=3.0, ram_gb=4.0,
              about="Stable Audio 3 Small Music (433M DiT, 8 steps), stereo 44.1 kHz, up to 120 s per call; "
                    "convert to diffusers format first",
              licence="stability-ai-community", commercial=True),  # free under US$1M annual revenue
]

#: (licence, commercial use allowed) per short name, from each Hub repo's licence tag (checked 2026-11).
#: Memory figures of the VLMs: vram_gb = weights in bf16 + one 8-page request (describers/vlm_memory.py,
#: with the image tokens each real processor gives a 1600 x 1100 page) + about 0.5 GB of CUDA context;
#: ram_gb the same + about 1 GB for Python and torch (tests/test_real_checkpoints.py recomputes them from
#: the real config.json where the repository has one).  Sources of every figure: README "Model tiers".
_APACHE, _QWEN_RESEARCH, _TONGYI_RESEARCH = ("apache-2.0", True), ("qwen-research", False), ("tongyi-qianwen-research", False)
MODEL_LICENCES: dict[tuple[str, str], tuple[str, Optional[bool]]] = {
    ("vision", "builtin"): ("mit", True),
    ("vision", "gpt-4o"): ("proprietary", True),  # OpenAI's terms: you own the output
    ("vision", "gpt-4o-mini"): ("proprietary", True),
    ("vision", "llava-0.5b"): _TONGYI_RESEARCH,
    ("vision", "llava-7b"): _TONGYI_RESEARCH,
    ("vision", "llava-onevision-0.5b"): _APACHE,
    ("vision", "llava-onevision-7b"): _APACHE,
    ("vision", "qwen2-vl-2b"): _APACHE,
    ("vision", "smolvlm"): _APACHE,
    ("vision", "qwen2.5-vl-3b"): _QWEN_RESEARCH,
    ("vision", "qwen3-vl-2b"): _APACHE,
    ("vision", "qwen3-vl-4b"): _APACHE,
    ("vision", "smolvlm2-256m"): _APACHE,
    ("vision", "smolvlm2-500m"): _APACHE,
    # the Hub tag says MIT, but the training data (MangaOCR/MangaVQA) comes from Manga109, licensed for academic use
    ("vision", "mangalmm"): ("mit", None),
    # MIT code + the TimGM6mb.sf2 SoundFont that ships inside pretty_midi (GPL-2.0); the audio is the program's output
    ("music", "builtin"): ("mit+gpl-2.0", True),
    **{("music", name): ("cc-by-nc-4.0", False) for name in (  # the weights; audiocraft's code is MIT
        "musicgen-small", "musicgen-medium", "musicgen-large",
        "musicgen-stereo-small", "musicgen-stereo-medium", "musicgen-stereo-large")},
}


def _with_licence(spec: ModelSpec) -> ModelSpec:
    licence, commercial = MODEL_LICENCES.get((spec.side, spec.name), (spec.licence, spec.commercial))
    return dataclasses.replace(spec, licence=licence, commercial=commercial)


MODELS = [_with_licence(m) for m in MODELS]

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


def lookup(name: str) -> Optional[ModelSpec]:
    """A registered model by short name (in any case) or Hub id, on either side (the first match)."""
    name = name.strip()
    return next((m for m in MODELS if name and name in (m.name, m.model_id)), None) or \
        next((m for m in MODELS if name and name.lower() == m.name.lower()), None)


def _local_config(path: Path) -> dict | None:
    """A local model folder's config: ``config.json`` (transformers) or ``model_index.json`` (diffusers); a config
    that is not JSON is one line saying so (it said "not a vision-language model (None)")."""
    if not path.is_dir():
        return None
    for filename in ("config.json", "model_index.json"):
        if (path / filename).is_file():
            try:
                data = json.loads((path / filename).read_text(encoding="utf-8"))
            except OSError:
                return {}
            except ValueError as exc:
                raise UnknownModelError(f"{path / filename}: {filename} is not valid JSON ({exc})",
                                        hint="the folder's config is damaged: copy it again from where the model "
                                             "came from") from None
            return data if isinstance(data, dict) else {}
    return None


#: transformers model types that are music or audio models, never a vision-language model
AUDIO_MODEL_TYPES = ("musicgen", "musicgen_melody", "encodec", "dac", "mimi", "audio-spectrogram-transformer",
                     "whisper", "wav2vec2", "clap")


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def _walked(root: Path) -> list[tuple[Path, list[str]]]:
    """Each folder of a model folder (itself and its subfolders) with the names of its files, both sorted."""
    return [(Path(folder), sorted(names)) for folder, _, names in sorted(os.walk(root, followlinks=True))]


def _weight_files(root: Path, walked: list[tuple[Path, list[str]]] | None = None) -> list[Path]:
    """A model folder's weight files (a diffusers pipeline's are in its subfolders), folders then names sorted: the
    order :func:`folder_weights` stamps them in.  ``walked``: :func:`_walked` of ``root``, when the caller has it."""
    return [folder / name for folder, names in (walked if walked is not None else _walked(root))
            for name in names if name.endswith(WEIGHT_SUFFIXES)]


#: a model folder's small files that change what its weights make (the architecture, the sampling defaults, the
#: scheduler, how text and pictures become inputs): stamped by their contents with the weights
CONFIG_FILES = ("config.json", "generation_config.json", "model_index.json", "scheduler_config.json",
                "preprocessor_config.json", "processor_config.json", "tokenizer_config.json", "chat_template.json",
                "chat_template.jinja")


def folder_weights(spec: ModelSpec) -> dict:
    """``{"weights": stamp, "configs": stamp}`` for a local model folder, ``{}`` for any other model: its weight
    files' names, sizes and modification times, hashed, and its :data:`CONFIG_FILES`' contents, hashed.  Part of a
    backend's settings key, so that new weights saved into the same folder (a fine-tune, another download), or its
    config.json or generation_config.json edited, make the music or descriptions again, and the record tells which
    made them; reading the weights' contents would take seconds a gigabyte on every run."""
    if spec.about != "local folder":
        return {}
    root = Path(spec.model_id)
    walked = _walked(root)  # once, for the weights and the configs
    lines = []
    for file in _weight_files(root, walked):
        try:
            stat = file.stat()
        except OSError:
            continue
        lines.append(f"{file.relative_to(root).as_posix()} {stat.st_size} {stat.st_mtime_ns}")
    configs = hashlib.sha256()
    for folder, names in walked:
        for name in (n for n in names if n in CONFIG_FILES):
            path = folder / name
            try:
                data = path.read_bytes() if path.stat().st_size <= 4 * 1024 * 1024 else b"large"
            except OSError:
                continue
            configs.update(f"{path.relative_to(root).as_posix()} {len(data)}\n".encode("utf-8") + data)
    return {"weights": hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16],
            "configs": configs.hexdigest()[:16]}


def model_identity(backend) -> dict:
    """``{"model": ..., "model_id": ...}`` as a backend's settings (its settings key) name its model: its own name,
    or, for a local folder moved since the output folder's records were made (the same weights and configs), the
    name those records' settings give (``recorded_as``, see :func:`manga2music.api.follow_moved_models`), so that
    their words and music, and every fingerprint made of them, stay its own: all was made again."""
    moved = getattr(backend, "recorded_as", None)
    return dict(moved) if moved else {"model": backend.model_name, "model_id": backend.model_id}


def weights_stamp(backend) -> dict:
    """:func:`folder_weights` of a backend's model, worked out once per backend: its settings key is asked for several
    times a section, and a folder walk each time added up over a series."""
    stamp = backend.__dict__.get("_weights_stamp")
    if stamp is None:
        stamp = backend.__dict__["_weights_stamp"] = folder_weights(backend.spec)
    return stamp


def _pipeline_index(path: Path) -> dict | None:
    """A local diffusers pipeline folder's ``model_index.json``, read; ``None`` when the folder has none, ``{}``
    when it cannot be read."""
    index = path / "model_index.json"
    if not (path.is_dir() and index.is_file()):
        return None
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _local_pipeline(path: Path) -> str | None:
    """The ``_class_name`` of a local diffusers pipeline folder (its model_index.json), else ``None``."""
    index = _pipeline_index(path)
    return None if index is None else str(index.get("_class_name", ""))


def _backend_for_config(config: dict, side: Side) -> str | None:
    """Which backend loads a local folder, from its ``model_type`` (or a diffusers pipeline's ``_class_name``)."""
    model_type = str(config.get("model_type", ""))
    pipeline = str(config.get("_class_name", ""))
    if side == "music":
        if model_type == "musicgen_melody":
            return "musicgen-melody"
        if model_type.startswith("musicgen"):
            return "musicgen"
        return DIFFUSERS_PIPELINES.get(pipeline)
    if not model_type or model_type.startswith(AUDIO_MODEL_TYPES) or not _sees_images(config):
        return None
    return "transformers-vlm"


def _sees_images(config: dict) -> bool:
    """Whether a transformers config is a vision-language model's: it has a vision tower or image tokens
    (``vision_config``, ``image_token_id``, ``mm_vision_tower``...).  A text-only LLM (``qwen2``, ``llama``) has
    none, and was taken for one, to fail on every section with "Qwen2Tokenizer has no attribute tokenizer"."""
    words = ("vision", "image", "visual", "mm_")
    return any(w in str(key).lower() for key in config for w in words) or \
        any(w in str(a).lower() for a in config.get("architectures") or [] for w in ("vision", "imagetext", "vl"))


#: diffusers pipeline class -> backend
DIFFUSERS_PIPELINES: dict[str, str] = PIPELINE_BACKENDS
#: owners whose ids a typo is checked against
_KNOWN_OWNERS = {m.model_id.split("/")[0].lower() for m in MODELS if "/" in m.model_id}


def _by_registry(name: str, side: Side, base_url: str | None) -> Optional[ModelSpec]:
    # a short name in any case (`--music-model Builtin` was "a vision model, not a music model": builtin is on both
    # sides); a Hub id as written
    return find_spec(name, side) or next((m for m in MODELS if m.side == side and m.name.lower() == name.lower()),
                                         None)


def _by_prefix(name: str, side: Side, base_url: str | None) -> Optional[ModelSpec]:
    prefix, sep, rest = name.partition(":")
    if not (sep and prefix in PREFIXES and rest):
        return None
    if prefix == "openai" and side == "vision":  # named as given where the bare name is a local model's
        # (openai:llava-0.5b is a server's model, llava-0.5b the local one): a record's model then says which.  A
        # Hub id with --base-url is the server's anyway (backends.served_name): it keeps its bare name
        known = find_spec(rest, side)
        shown = name if known is not None and known.backend != "openai" and "/" not in rest else rest
        return ModelSpec(shown, side, "openai", rest, about="OpenAI-compatible server")
    if prefix == "audiocraft" and side == "music":
        return ModelSpec(name, side, "audiocraft", rest, about="audiocraft (optional backend)")
    if prefix == "hf":
        return find_spec(rest, side) or _by_folder(rest, side, None) or _by_hub_id(rest, side, None, typos=False)
    raise UnknownModelError(f"{prefix}: names a {'music' if side == 'vision' else 'vision'} backend; "
                            f"{name!r} cannot be a {side} model")


#: what only a path looks like: /abs, ./rel, ../up, ~/home, C:\\ or a backslash (not a Hub id's owner/name)
_PATH_LIKE = re.compile(r"^(/|\./|\.\./|~|[A-Za-z]:[\\/])|\\")


#: what a file given as a model, not its folder, is named: weights, a config
_MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".json")


def _by_folder(name: str, side: Side, base_url: str | None) -> Optional[ModelSpec]:
    path = Path(os.path.expanduser(name))
    if _PATH_LIKE.search(name) and not path.exists():  # a path with a typo was "unknown vision model", listing names
        where = "" if str(path.resolve()) == name else f" ({path.resolve()})"
        raise UnknownModelError(f"{name}: no such folder{where}",
                                hint="give the folder save_pretrained wrote (its config.json inside), or a model name")
    if path.is_file() and not (base_url and side == "vision") \
            and (path.suffix.lower() in _MODEL_FILE_SUFFIXES or (path.parent / "config.json").is_file()
                           or (path.parent / "model_index.json").is_file()):  # a file of a model folder: it was
        # "unknown music model '/models/mg/config.json'"
        raise UnknownModelError(f"{name} is a file, not a model folder",
                                hint=f"give the folder that holds it ({path.parent}): the files save_pretrained "
                                     "writes, config.json among them")
    pipeline = _local_pipeline(path)
    if pipeline is not None and side == "music":
        if pipeline not in PIPELINE_BACKENDS:
            raise UnknownModelError(
                f"{name} is a diffusers pipeline folder, but not one manga2music composes with "
                f"(_class_name={pipeline!r})",
                hint=f"use a folder of one of: {', '.join(PIPELINE_BACKENDS)}.")
        return _with_card_licence(ModelSpec(str(path.resolve()), side, PIPELINE_BACKENDS[pipeline],
                                            str(path.resolve()), about="local folder"), path)
    config = _local_config(path)
    if config is None:
        if path.is_dir():
            raise UnknownModelError(f"{name} is a folder, but there is no model in it (no config.json or "
                                    "model_index.json)", hint="give the folder save_pretrained wrote, or a model name")
        return None
    backend = _backend_for_config(config, side)
    if backend is None:
        kind = "MusicGen or diffusers music" if side == "music" else "vision-language"
        found = config.get("model_type") or config.get("_class_name")
        what = f"its config.json says {found!r}" if found else "its config.json names no model_type"
        raise UnknownModelError(f"{name} is a model folder, but not a {kind} model ({what})")
    # named by its full path: `./model` and `/abs/model` are one model, and a record's name locates it
    return _with_card_licence(ModelSpec(str(path.resolve()), side, backend, str(path.resolve()), about="local folder"),
                              path)


#: licences whose weights' output may be used commercially, as the Hub's model cards name them (``license:``)
PERMISSIVE_LICENCES = frozenset({"apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-4.0",
                                 "cc-by-sa-4.0", "openrail", "openrail++", "creativeml-openrail-m", "bigscience-openrail-m"})


def _with_card_licence(spec: ModelSpec, folder: Path) -> ModelSpec:
    """A local folder's licence, from its model card (README.md's front matter, ``license:``, or ``license_name:``
    for ``other``, as the Hub writes it): ``--commercial`` refused every local folder, a copy of an Apache-2.0 model
    too, "its licence is not recorded".  A licence the registry's models carry is judged as theirs are; one not
    known is "unclear" (refused by --commercial, as is a card without a licence)."""
    card = folder / "README.md"
    if not card.is_file():
        return spec
    try:
        from huggingface_hub.repocard import metadata_load

        meta = metadata_load(card) or {}
    except Exception:  # a card that is not YAML: no licence recorded
        return spec
    licence = meta.get("license")
    if licence == "other" and isinstance(meta.get("license_name"), str):
        licence = meta["license_name"]
    named = [licence] if isinstance(licence, str) else licence if isinstance(licence, list) else []
    named = [CARD_LICENCES.get(n.strip().lower(), n.strip().lower()) for n in named if isinstance(n, str) and n.strip()]
    if not named:
        return spec
    known = {m.licence: m.commercial for m in MODELS if m.licence and m.licence != "proprietary"}
    known.update({lic: commercial for lic, commercial in MODEL_LICENCES.values() if lic != "proprietary"})

    def allows(name: str) -> Optional[bool]:
        if name in PERMISSIVE_LICENCES:
            return True
        return False if known.get(name) is None and "-nc" in name else known.get(name)  # cc-by-nc-*: no

    judged = [allows(n) for n in named]  # several (`license: [apache-2.0, mit]`): the weights under each
    commercial = False if False in judged else None if None in judged else True
    return dataclasses.replace(spec, licence=", ".join(dict.fromkeys(named)), commercial=commercial)


#: licence names of the Hub's cards that are the registry's under another name
CARD_LICENCES = {"stable-audio-community": "stability-ai-community"}


def shadowing_folder(spec: ModelSpec) -> str | None:
    """For a Hub model (``facebook/musicgen-small``) where the current folder holds a folder of that name (a
    ``--local-dir facebook/musicgen-small`` download, a folder of fine-tunes), the line that says so: transformers
    and diffusers load a folder of the name they are given before the Hub's model, so that folder ran, offline checks
    passed without the model, and the record named the Hub model and its cached commit.  None otherwise."""
    if spec.about == "local folder" or not spec.needs_weights or spec.backend == "openai" or not spec.model_id:
        return None
    if not os.path.isdir(spec.model_id):
        return None
    return (f"{spec.name}: the folder {os.path.abspath(spec.model_id)} has the name of its Hub repo "
            f"({spec.model_id}), and the model libraries would load that folder instead of the model: give it as "
            f"./{spec.model_id} to use it, or run from another folder")


#: a folder of the Hugging Face cache: ``.../models--owner--name/snapshots/<commit>`` (what `hf download` prints)
_HUB_SNAPSHOT = re.compile(r"models--(?P<repo>[^/\\]+)[/\\]snapshots[/\\][0-9a-f]{6,64}[/\\]?$")


def folder_shown_name(path: str) -> str:
    """A local model folder as files shared with others name it: by its name, not its place (which says the user's
    name and folders); a Hub cache's snapshot folder by its repo (``facebook/musicgen-small``), not its commit."""
    snapshot = _HUB_SNAPSHOT.search(str(path))
    if snapshot:
        return snapshot.group("repo").replace("--", "/", 1)
    return Path(str(path).rstrip("/\\")).name or str(path)


def unusable_folder(spec: ModelSpec) -> ModelUnavailableError | None:
    """Why ``spec``'s model folder cannot run, before any work (every command, ``doctor``, the web UI's menus): a
    folder here named as the Hub model (:func:`shadowing_folder`), or a local folder without weights or processor
    files, or with a file cut short (:func:`missing_weights`); None when neither."""
    shadowed = shadowing_folder(spec)  # the libraries would load it instead of the Hub model
    if shadowed:
        return ModelUnavailableError(shadowed)
    damaged = missing_weights(spec)
    if damaged:
        return ModelUnavailableError(damaged, hint="give the folder save_pretrained wrote, weights included")
    return None


def missing_weights(spec: ModelSpec) -> str | None:
    """For a local model folder with no weights in it, or with a ``.safetensors`` file cut short (a copy or a
    download stopped midway), the line that says so (``doctor``, and every command before any work); None
    otherwise."""
    path = Path(spec.model_id)
    if spec.about != "local folder" or not path.is_dir():
        return None
    files = _weight_files(path)
    if not files:
        return f"{spec.name} is a model folder with no weights in it (no .safetensors or .bin file)"
    for file in loaded_weight_files(path):
        if _is_lfs_pointer(file):  # a `git clone` of a Hub repo without git-lfs: each section failed with
            # "SafetensorError: Error while deserializing header: header too large", and the doctor said "ok"
            return (f"{spec.name}: its {file.relative_to(path).as_posix()} is a Git LFS pointer, not the weights (the "
                    "repo was cloned without git-lfs): run `git lfs install` and `git lfs pull` in the folder")
        if file.name.endswith(".bin") and not _torch_file(file):  # the library's own message advised loading it
            # with weights_only=False, which runs whatever a file holds
            return (f"{spec.name}: its {file.relative_to(path).as_posix()} is damaged (it is no PyTorch file): copy "
                    "or download it again")
    for file in files:
        if file.name.endswith(".safetensors") and _cut_short(file):
            return (f"{spec.name}: its {file.relative_to(path).as_posix()} is damaged or cut short (it holds less than "
                    "its header lists): copy or download it again")
    missing = missing_shards(path)
    if missing:
        return (f"{spec.name}: its {first_few(missing)} {'is' if len(missing) == 1 else 'are'} missing (the weights' "
                "index lists them): copy or download the whole folder again")
    unjoined = _shards_without_index(files)
    if unjoined:  # every section failed with the library's "no file named model.safetensors", the doctor said "ok"
        return (f"{spec.name}: its weights are in shards ({first_few(unjoined)}) but the index that joins them "
                f"({unjoined[0].split('-00')[0]}.{'safetensors' if unjoined[0].endswith('.safetensors') else 'bin'}"
                ".index.json) is missing: copy it from where the shards came from")
    damaged = _damaged_settings_file(path)
    if damaged:  # a tokenizer.json cut short: each section failed "not a vision-language model transformers can
        # load here: Expecting property name ...", and the doctor said "ok"
        return (f"{spec.name}: its {damaged} is damaged (it is not valid JSON): copy or download it again")
    lacking = _missing_processor_files(path, spec.backend)
    if lacking:
        return (f"{spec.name} is a model folder without {lacking}: save the processor beside the model "
                "(`processor.save_pretrained(folder)`), or copy the model's whole Hub repo")
    lacking = _missing_pipeline_parts(path)
    if lacking:
        return (f"{spec.name} is a diffusers pipeline folder without {first_few(lacking)} (its model_index.json "
                "names them): copy or download the whole folder again")
    return None


def _missing_pipeline_parts(path: Path) -> list[str]:
    """What a diffusers pipeline folder lacks of the parts its ``model_index.json`` names, in words: a part's
    folder, a model's config or weights, a scheduler's config, a tokenizer's files.  Without its tokenizer
    diffusers built an empty one and every description became <unk> (the same music for any text, "ok"); without
    another part every section failed in a line that named another file and a `models pull` that cannot work."""
    lacking = []
    for part, value in (_pipeline_index(path) or {}).items():
        if part.startswith("_") or not isinstance(value, list) or len(value) != 2 or not all(value):
            continue  # "_class_name", or a part the pipeline does without ([null, null])
        library, kind, folder = str(value[0]), str(value[1]), path / part
        if not folder.is_dir():
            lacking.append(f"{part}/")
        elif "Scheduler" in kind:
            if not (folder / "scheduler_config.json").is_file():
                lacking.append(f"{part}/scheduler_config.json")
        elif library == "transformers" and "Tokenizer" in kind:  # not ACE-Step's audio tokenizer: a model
            if not any((folder / name).is_file() for name in TOKENIZER_FILES):
                lacking.append(f"{part}/'s tokenizer (no tokenizer.json or spiece.model)")
        elif any(word in kind for word in ("FeatureExtractor", "Processor")):
            continue
        elif not (folder / "config.json").is_file():
            lacking.append(f"{part}/config.json")
        elif not _weight_files(folder):
            lacking.append(f"{part}/'s weights")
    return lacking


#: the files a tokenizer is saved as (fast, SentencePiece, BPE, WordPiece, tiktoken)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.json",
                   "vocab.txt", "tokenizer.tiktoken")


def _missing_processor_files(path: Path, backend: str) -> str | None:
    """What a transformers model folder lacks of its processor, in words: without a tokenizer, transformers builds
    an empty one and every word of a description becomes <unk> (MusicGen made the same music for any text, "ok");
    without MusicGen's feature extractor it cannot load at all."""
    if backend not in ("musicgen", "musicgen-melody", "transformers-vlm"):
        return None
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        return "its tokenizer (no tokenizer.json or spiece.model)"
    if backend.startswith("musicgen"):
        unfit = _tokenizer_past_text_encoder(path)
        if unfit:
            return unfit
    processor_files = ("preprocessor_config.json", "processor_config.json")
    if backend.startswith("musicgen") and not any((path / name).is_file() for name in processor_files):
        return "its feature extractor (no preprocessor_config.json)"
    if backend == "transformers-vlm":  # without them every section failed ("Can't load image processor", "this
        # processor does not have a chat template"), and the doctor said "ok"
        if not any((path / name).is_file() for name in processor_files):
            return "its image processor (no preprocessor_config.json or processor_config.json)"
        if not _has_chat_template(path):
            return "its chat template (no chat_template.jinja or chat_template.json)"
        templates = _chat_templates(path)
        if templates and not any("image" in template for template in templates):  # a text model's template:
            # every section failed ("Found total 0 <image> tokens and 2 images"), and the doctor said "ok"
            return "a chat template that shows pages (its template has no place for an image: a text model's?)"
    return None


def _tokenizer_past_text_encoder(path: Path) -> str | None:
    """For a MusicGen folder whose ``tokenizer.json`` gives ids its text encoder has no embedding for (another
    model's tokenizer copied in: every section failed with "IndexError: index out of range in self", and the doctor
    said "ok"), what it lacks, in words; else None (or when either cannot be read)."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        size = int(config["text_encoder"]["vocab_size"])
        tokenizer = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    vocab = (tokenizer.get("model") or {}).get("vocab") if isinstance(tokenizer, dict) else None
    ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab))) if isinstance(vocab, list) else []
    ids += [t.get("id") for t in tokenizer.get("added_tokens") or [] if isinstance(t, dict)]
    highest = max((i for i in ids if isinstance(i, int) and not isinstance(i, bool)), default=-1)
    if highest < size:
        return None
    return (f"a tokenizer that fits its text encoder (tokenizer.json has ids up to {highest}, its text encoder "
            f"{size} words: another model's tokenizer?)")


def _chat_templates(path: Path) -> list[str]:
    """The text of each chat template the processor may use (``chat_template.jinja``, ``chat_template.json``, the
    processor config's, ``additional_chat_templates/``)."""
    texts = []
    for file in [path / "chat_template.jinja", *sorted((path / "additional_chat_templates").glob("*.jinja"))]:
        if file.is_file():
            texts.append(_read_text(file))
    for file in (path / "chat_template.json", path / "processor_config.json"):
        try:
            template = json.loads(file.read_text(encoding="utf-8")).get("chat_template")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(template, str):
            texts.append(template)
        elif isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
            texts.extend(str(item.get("template", "")) for item in template if isinstance(item, dict))
    return texts


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return "image"  # unreadable here: the library's own load says what is wrong with it


def _has_chat_template(path: Path) -> bool:
    if any((path / name).exists() for name in ("chat_template.jinja", "chat_template.json", "additional_chat_templates")):
        return True
    try:  # inside the processor's config; not tokenizer_config.json's: the processor does not use that one
        return bool(json.loads((path / "processor_config.json").read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return False


#: what a Git LFS pointer file starts with (a repo cloned without git-lfs holds these in place of its weights)
LFS_POINTER = b"version https://git-lfs"


def _is_lfs_pointer(file: Path) -> bool:
    try:
        with open(file, "rb") as f:
            return f.read(len(LFS_POINTER)) == LFS_POINTER
    except OSError:
        return False


def _damaged_settings_file(path: Path) -> str | None:
    """The first JSON file the libraries read from the folder (its config, tokenizer, processor and chat template
    files; a pipeline's too) that does not parse, as a path inside the folder; None when all do."""
    folders = [path, *(folder for folder in _loaded_folders(path) if folder != path)]
    for folder in folders:
        for file in sorted(folder.glob("*.json")):
            if not _read_by_the_libraries(file.name):  # a Mac's ._config.json, a trainer_state.json: not read
                continue
            try:
                if file.stat().st_size > 64 * 2**20:  # no settings file is this big: not read here
                    continue
                json.loads(file.read_bytes())
            except ValueError:  # UnicodeDecodeError too
                return file.relative_to(path).as_posix()
            except OSError:
                continue
    return None


#: JSON files a model's libraries read from its folder, besides any ``*config.json`` and a weights' ``*.index.json``
_SETTINGS_FILES = {"tokenizer.json", "special_tokens_map.json", "added_tokens.json", "chat_template.json",
                   "model_index.json", "vocab.json"}


def _read_by_the_libraries(name: str) -> bool:
    return not name.startswith(".") and (name in _SETTINGS_FILES or name.endswith(("config.json", ".index.json")))


def _loaded_folders(path: Path) -> list[Path]:
    """The folders a model's weights are loaded from: a diffusers pipeline's components named in its
    ``model_index.json`` (its top level may hold another library's checkpoint, ``model.ckpt``), else the folder."""
    try:
        index = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [path]
    if not isinstance(index, dict):
        return [path]
    return [path / name for name, value in index.items() if isinstance(value, list) and (path / name).is_dir()]


def _loaded_format(folder: Path) -> str:
    """".safetensors" when the folder has any (transformers and diffusers load those first), else ".bin"."""
    return ".safetensors" if any(folder.glob("*.safetensors")) else ".bin"


def loaded_weight_files(path: Path) -> list[Path]:
    """The weight files the loaders read (a .bin beside the safetensors, as `huggingface-cli download --include
    "*.safetensors"` or a clone that pulled only those leaves it, is not read: a pointer there is no fault)."""
    return [file for folder in _loaded_folders(path) for file in sorted(folder.glob(f"*{_loaded_format(folder)}"))]


def _shards_without_index(files: list[Path]) -> list[str]:
    """The shards (``model-00001-of-00002.safetensors``) of a folder of ``files`` that has no weights file whole and
    no ``*.index.json`` beside them: copied without the index, they cannot be loaded."""
    shards = [f for f in files if re.search(r"-\d{5}-of-\d{5}\.(safetensors|bin)$", f.name)]
    if not shards or len(shards) < len(files):
        return []
    if next(shards[0].parent.glob("*.index.json"), None) is not None:
        return []
    return sorted(f.name for f in shards)


def missing_shards(path: Path) -> list[str]:
    """The weight shards the loaded format's ``*.index.json`` lists that are not there (a copy that left one out);
    the other format's index is not read (`models pull` keeps a .bin index without its shards)."""
    missing: set[str] = set()
    for index in [i for folder in _loaded_folders(path) for i in folder.glob(f"*{_loaded_format(folder)}.index.json")]:
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            continue
        missing |= {name for name in shards if isinstance(name, str) and not (index.parent / name).is_file()}
    return sorted(missing)


def _torch_file(file: Path) -> bool:
    """Whether a ``.bin`` starts as ``torch.save`` writes: a zip (since PyTorch 1.6), or a pickle (before)."""
    try:
        with open(file, "rb") as f:
            head = f.read(4)
    except OSError:
        return True  # loading it will say
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


def _cut_short(file: Path) -> bool:
    """Whether a safetensors file is smaller than its header says (8 bytes of header length, the JSON header, then
    the tensors up to the largest ``data_offsets`` end): read from its first bytes, not its data."""
    try:
        with open(file, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return True
            length = int.from_bytes(head, "little")
            if length > file.stat().st_size - 8:
                return True  # a header longer than the file: its first bytes are damaged
            if length > 100 * 1024 * 1024:
                return False  # not a header this check can read; loading it will say
            header = json.loads(f.read(length))
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
        return file.stat().st_size < 8 + length + end
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return True  # a header that is not JSON: damaged too


def _by_server(name: str, side: Side, base_url: str | None) -> Optional[ModelSpec]:
    if base_url and side == "vision":  # Ollama's "llava:13b", vLLM's "Qwen/Qwen2-VL-7B-Instruct"...
        from .settings import shown_url

        return ModelSpec(name, side, "openai", name, about=f"OpenAI-compatible server at {shown_url(base_url)}")
    return None


#: OpenAI's own model names (dated snapshots such as gpt-4o-2024-08-06, newer models): the OpenAI API
_OPENAI_NAME = re.compile(r"(?:gpt-|chatgpt-|o\d)[a-z0-9.\-]*", re.I)


def _by_openai_name(name: str, side: Side, base_url: str | None) -> Optional[ModelSpec]:
    if side != "vision" or not _OPENAI_NAME.fullmatch(name):
        return None
    return ModelSpec(name, side, "openai", name, about="OpenAI API (needs OPENAI_API_KEY)", licence="proprietary",
                     commercial=True)


def _by_hub_id(name: str, side: Side, base_url: str | None, *, typos: bool = True) -> Optional[ModelSpec]:
    owner, sep, repo = name.partition("/")
    if not (sep and owner and repo) or "/" in repo or name.startswith((".", "/", "~")) or Path(name).exists():
        return None
    close = _near_miss(name, side) if typos else None
    if close is not None:
        raise UnknownModelError(f"unknown {side} model {name!r}: did you mean {close.model_id} ({close.name})?",
                                hint=f"prefix it with hf: (hf:{name}) if it really is a Hugging Face id.")
    backend = "musicgen" if side == "music" else "transformers-vlm"
    return ModelSpec(name, side, backend, name, about="Hugging Face id")


def _near_miss(name: str, side: Side) -> Optional[ModelSpec]:
    """A registered id that ``name`` misspells (same owner, a character or two apart), if any."""
    import difflib

    if name.split("/")[0].lower() not in _KNOWN_OWNERS:
        return None
    ids = {m.model_id.lower(): m for m in known_models(side) if "/" in m.model_id}
    typed = name.lower()
    for candidate in difflib.get_close_matches(typed, list(ids), n=3, cutoff=0.9):
        if candidate == typed:
            return None
        edits = difflib.SequenceMatcher(None, typed, candidate).get_opcodes()
        changed = "".join(typed[a:b] + candidate[c:d] for tag, a, b, c, d in edits if tag != "equal")
        if not any(ch.isdigit() for ch in changed):  # "7B" for "2B" is another size, not a typo
            return ids[candidate]
    return None


#: the rules of :func:`resolve`, in the order they are tried; the first that answers wins
RESOLVE_RULES = (
    ("a short name or a known Hub id (the table above)", _by_registry),
    ("BACKEND:ID: openai:NAME (a server's model), hf:OWNER/NAME (always a Hub id), audiocraft:ID", _by_prefix),
    ("a local folder: config.json's model_type or model_index.json's pipeline picks the backend", _by_folder),
    ("vision with a base URL (--base-url or OPENAI_BASE_URL): any other name is that server's model", _by_server),
    ("vision: an OpenAI model name (gpt-..., o1/o3/o4..., a dated snapshot): the OpenAI API", _by_openai_name),
    ("OWNER/NAME: a Hugging Face id (MusicGen for music, a transformers VLM for vision); near misses of known "
     "ids are refused as typos", _by_hub_id),
)


def resolve(name: str, side: Side, *, base_url: str | None = None) -> ModelSpec:
    """Turn what the user typed into a spec by :data:`RESOLVE_RULES`, or raise UnknownModelError.

    This is the only place a model name is interpreted: the commands, the cache,
    the doctor and every backend go through it.  ``auto`` is resolved before this,
    by the tier rules (``tiers.resolve_auto``).
    """
    name = name.strip()
    other_side: Side = "music" if side == "vision" else "vision"
    theirs = next((m for m in known_models(other_side) if m.model_id and m.model_id.lower() == name.lower()
                   and not (base_url and side == "vision")), None)
    if theirs is not None and find_spec(name, side) is None:  # `compose --model llava-hf/llava-...`: offered to
        # fetch a vision model for compose
        named = name if name.lower() == theirs.name.lower() else f"{name} ({theirs.name})"
        raise UnknownModelError(f"{named} is a {other_side} model, not a {side} model",
                                hint=f"give a {side} model here (`manga2music models list` says which is which)")
    for _, rule in RESOLVE_RULES:
        spec = rule(name, side, base_url)
        if spec is not None:
            return spec
    import difflib

    other: Side = "music" if side == "vision" else "vision"
    theirs = next((m for m in known_models(other) if m.name.lower() == name.lower()), None)
    if theirs is not None:  # `compose --model llava-0.5b`: compose's --model names the music model (it said
        # "unknown music model", though `models list` lists it)
        raise UnknownModelError(f"{theirs.name} is a {other} model, not a {side} model",
                                hint=f"give a {side} model here (`manga2music models list` says which is which)")
    names = [m.name for m in known_models(side)]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    known = ", ".join(["auto"] + names)
    hint = "give one of those, a Hugging Face id (owner/name) or a local model folder"  # a sentence of its own
    if side == "vision":
        from .options import flag

        hint = ("give one of those, a Hugging Face id (owner/name), a local model folder, or any model of an "
                f"OpenAI-compatible server with {flag('base_url')}")
    guess = f" (did you mean {close[0]}?)" if close else ""
    raise UnknownModelError(f"unknown {side} model {name!r}{guess}; known models: {known}", hint=hint + ".")


def hub_repo(name: str) -> str:
    """The Hub repository behind a short name, ``hf:owner/name`` or ``owner/name`` (for the cache commands).

    Raises UnknownModelError for unknown names and for models that need no download.
    """
    name = name.strip()
    spec = lookup(name)
    if spec is not None:
        if not spec.needs_weights:
            raise UnknownModelError(f"{spec.name} {spec.no_download_reason}: nothing to download")
        return spec.model_id
    bare = name[3:] if name.startswith("hf:") else name
    owner, sep, repo = bare.partition("/")
    if sep and owner and repo and "/" not in repo and not bare.startswith((".", "/", "~")):
        return bare
    import difflib

    names = sorted({m.name for m in MODELS if m.needs_weights})
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)  # as `run --music-model` says it
    guess = f" (did you mean {close[0]}?)" if close else ""
    raise UnknownModelError(f"unknown model {name!r}{guess}; known models: {', '.join(names)}",
                            hint="give one of those or a Hugging Face id (owner/name).")


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
