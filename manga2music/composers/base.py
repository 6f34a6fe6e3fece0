"""The interface every composer implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from ..options import BackendOptions, make_options
from ..progress import ProgressFn

if TYPE_CHECKING:  # pragma: no cover
    from ..registry import ModelSpec


@dataclass
class ComposeRequest:
    """One track to make."""

    name: str  # the section name, e.g. "ch01/part2"
    text: str  # the music description
    duration: float
    seed: Optional[int] = None  # per-track seed (the pipeline derives it from --seed and --variations)
    #: a chapter theme every cue of a score shares: its motif as scale steps from the first note (builtin
    #: composer: the motif of every cue); composers that take audio get ``reference`` (the theme rendered) instead
    theme: Optional[tuple[int, ...]] = None
    # optional audio to follow (a melody / chapter theme): float samples shaped (frames,) or (frames, channels)
    # at ``reference_rate`` Hz.  Composers that cannot use it ignore it and say so in the track's warnings.
    reference: Optional[np.ndarray] = None
    reference_rate: Optional[int] = None
    #: audio this track carries on from, at the composer's sample rate, shaped (frames, channels); only for a
    #: composer whose ``continues`` is True (MusicGen: the new music starts where this audio ends; the track is
    #: only the new part, ``duration`` long).  Used for the bridges between a score's scenes.
    follows: Optional[np.ndarray] = None


@dataclass
class Track:
    """Audio a composer made: float32 samples shaped (frames, channels) in [-1, 1]."""

    audio: np.ndarray
    sample_rate: int
    midi: Optional[bytes] = None  # a Standard MIDI File, when the composer works in notes
    info: dict = field(default_factory=dict)  # e.g. {"tempo_bpm": 72, "key": "D major"}
    warnings: list[str] = field(default_factory=list)


#: extra audio a model composer makes for --loop, folded back over the start (at most)
LOOP_CROSSFADE_S = 1.0


def loop_crossfade(request: "ComposeRequest", loop: bool, longest: float = LOOP_CROSSFADE_S) -> float:
    """Seconds of extra audio a composer makes for ``--loop`` and folds back over the track's start: ``longest``, or
    the track's own length when shorter (a 0.5 s loop failed after composing: "a loop with a 1 s crossfade needs at
    least 2 s of audio"); 0 without ``loop``."""
    return min(float(longest), float(request.duration)) if loop else 0.0


#: ``made(index, track)``: a track made for ``requests[index]`` (see :meth:`Composer.compose`)
MadeFn = Callable[[int, "Track"], None]


def compose_keeping(composer: "Composer", requests: list[ComposeRequest], progress: ProgressFn | None,
                    made: MadeFn) -> list[Track]:
    """``composer.compose(requests)``, telling ``made`` of each track as it is made; a composer that does not take
    ``made`` (one written before it) tells of them all at its end."""
    import inspect

    if "made" in inspect.signature(composer.compose).parameters:
        return composer.compose(requests, progress=progress, made=made)
    tracks = composer.compose(requests, progress=progress)
    for i, track in enumerate(tracks):
        made(i, track)
    return tracks


class Composer(ABC):
    """Turns descriptions into tracks.  Built once per run, reused for every batch."""

    class Options(BackendOptions):
        """What a composer can be told; each backend's subclass adds its own fields (unknown ones are refused)."""

        loop: bool = False  # --loop: tracks whose end flows into their start

    #: what ``spec`` means when none is given
    default_model: str = "builtin"
    #: this class's key in :data:`manga2music.registry.BACKENDS`
    backend: str = ""
    #: the longest track this composer makes in one request, in seconds (checked before any work)
    max_duration: float = 600.0
    #: whether it can carry on from given audio (``ComposeRequest.follows``)
    continues: bool = False

    def __init__(self, spec: "ModelSpec | str | None" = None, options: "BackendOptions | dict | None" = None):
        from ..registry import as_spec

        #: the resolved model (:func:`manga2music.registry.resolve`): every backend receives one
        self.spec = as_spec(spec or self.default_model, "music", self.backend)
        #: the checkpoint or folder the backend loads
        self.model_id = self.spec.model_id or self.spec.name
        #: the name the user chose, recorded in manifests, records and tags (e.g. "musicgen-small")
        self.model_name = self.spec.name
        if not isinstance(options, self.Options):
            options = make_options(self.Options, dict(options or {}), model=self.model_name, side="music")
        self.options = options

    def preflight(self) -> None:
        """Fail fast (raise a Manga2MusicError) before any work, e.g. not enough memory."""

    def warm_up(self) -> None:
        """Get ready, off the main thread, what the first track will need and costs little memory (imports); ``run``
        and ``score`` call it on a background thread while the pages are read (in this process, not on Ray).
        Must not load a model: memory is for the describer until it is done.  Errors are ignored (the real call
        meets them again)."""

    @property
    def device(self) -> Optional[str]:
        """Where its model runs once loaded (``cpu``, ``cuda:0``, ``mps``); None before, or without a model."""
        return getattr(self, "_device", None)

    @abstractmethod
    def compose(self, requests: list[ComposeRequest], *, progress: ProgressFn | None = None,
                made: MadeFn | None = None) -> list[Track]:
        """Make one track per request, in order.  Raise ``BackendError`` for a failed batch.  ``made(index, track)``
        is called as each track is made, on the calling thread, before the next batch (a score keeps each cue at
        once: stopped part-way, its rerun does not compose them again); the tracks are returned all the same."""

    def settings_key(self) -> dict:
        """Settings that change the audio; a change recomposes on the next run."""
        from ..registry import model_identity, weights_stamp

        o = self.options
        return {**model_identity(self), "loop": o.loop, **weights_stamp(self)}

    def greedy_setting(self) -> Optional[str]:
        """The setting, in flag words, with which it samples nothing (every seed makes the same music: MusicGen at
        ``--temperature 0``), or None: it draws from its seed."""
        return None

    @property
    def tag_name(self) -> str:
        """The model as audio files' tags name it: a local folder by its name alone (its full path, in every MP3 a
        creator publishes, told the world their home folder's layout; the record keeps the path)."""
        from ..registry import folder_shown_name

        return folder_shown_name(self.model_name) if self.spec.about == "local folder" else self.model_name

    def _precision_key(self) -> str:
        """Its ``precision`` option as a settings key (:func:`manga2music.devices.precision_key`), for the composers
        that run torch."""
        from ..devices import pick_device, precision_key

        return precision_key(self.device or pick_device(getattr(self.options, "device", "auto")),
                             getattr(self.options, "precision", "auto"))

    def revision(self) -> Optional[str]:
        """The Hub commit whose weights make the music (recorded, not compared): see
        :func:`~manga2music.cache.hub_revision`."""
        from ..cache import hub_revision

        return hub_revision(self.spec)

    def close(self) -> None:
        """Release models and memory."""


def unknown_words_warning(tokenizer, ids: list[int], model_name: str) -> Optional[str]:
    """The warning for a description whose words its text encoder's tokenizer mostly does not know (MusicGen's and
    Stable Audio's T5 read Japanese or Korean as ``<unk>``: every such description made the same music, "ok"), or
    None.  Counts the pieces of ``ids`` that are neither special tokens nor a bare word-start mark."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:  # a byte-level tokenizer knows every text
        return None
    special = set(getattr(tokenizer, "all_special_ids", ()) or ()) - {unk}
    pieces = [i for i in ids if i not in special
              and (i == unk or str(tokenizer.convert_ids_to_tokens(i)).strip("\u2581 "))]
    unknown = sum(1 for i in pieces if i == unk)
    if not pieces or 2 * unknown < len(pieces):
        return None
    return (f"{model_name}'s text encoder does not know {'any' if unknown == len(pieces) else 'most'} of the "
            f"description's words ({unknown} of {len(pieces)} pieces unknown to its tokenizer): the music follows "
            f"{'no word of it' if unknown == len(pieces) else 'the few it knows'}; describe the music in English")
