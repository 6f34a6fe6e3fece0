"""The interface every composer implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..progress import ProgressFn


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
    # optional audio to follow (a melody / chapter theme): float samples shaped (frames,) or (frames, channels)
    # at ``reference_rate`` Hz.  Composers that cannot use it ignore it and say so in the track's warnings.
    reference: Optional[np.ndarray] = None
    reference_rate: Optional[int] = None


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

    model_name: str = "composer"

    def __init__(self, model_id: str, options: ComposeOptions | None = None):
        self.model_id = model_id
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
