"""The interface every composer implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..progress import ProgressFn

if TYPE_CHECKING:  # pragma: no cover
    from ..registry import ModelSpec


@dataclass
class ComposeOptions:
    """Settings shared by all composers; each backend reads the ones it uses."""

    duration: float = 10.0  # seconds
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | fp16 | bf16
    seed: Optional[int] = None
    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    guidance_scale: float = 3.0
    batch_size: Optional[int] = None  # None = chosen from free memory
    loop: bool = False
    offline: bool = False


@dataclass
class ComposeRequest:
    """One track to make."""

    name: str  # the section name, e.g. "ch01/part2"
    text: str  # the music description
    duration: float
    seed: Optional[int] = None  # per-track seed (the pipeline derives it from --seed and --variations)


@dataclass
class Track:
    """Audio a composer made: float32 samples shaped (frames, channels) in [-1, 1]."""

    audio: np.ndarray
    sample_rate: int
    midi: Optional[bytes] = None  # a Standard MIDI File, when the composer works in notes
    info: dict = field(default_factory=dict)  # e.g. {"tempo_bpm": 72, "key": "D major"}
    warnings: list[str] = field(default_factory=list)


class Composer(ABC):
    """Turns descriptions into tracks.  Built once per run, reused for every batch."""

    #: what ``spec`` means when none is given
    default_model: str = "builtin"
    #: this class's key in :data:`manga2music.registry.BACKENDS`
    backend: str = ""
    #: the longest track this composer makes in one request, in seconds (checked before any work)
    max_duration: float = 600.0

    def __init__(self, spec: "ModelSpec | str | None" = None, options: ComposeOptions | None = None):
        from ..registry import as_spec

        #: the resolved model (:func:`manga2music.registry.resolve`): every backend receives one
        self.spec = as_spec(spec or self.default_model, "music", self.backend)
        #: the checkpoint or folder the backend loads
        self.model_id = self.spec.model_id or self.spec.name
        #: the name the user chose, recorded in manifests, records and tags (e.g. "musicgen-small")
        self.model_name = self.spec.name
        self.options = options or ComposeOptions()

    def preflight(self) -> None:
        """Fail fast (raise a Manga2MusicError) before any work, e.g. not enough memory."""

    @abstractmethod
    def compose(self, requests: list[ComposeRequest], *, progress: ProgressFn | None = None) -> list[Track]:
        """Make one track per request, in order.  Raise ``BackendError`` for a failed batch."""

    def settings_key(self) -> dict:
        """Settings that change the audio; a change recomposes on the next run."""
        o = self.options
        return {"model": self.model_name, "model_id": self.model_id, "loop": o.loop}

    def close(self) -> None:
        """Release models and memory."""
