"""The cues a score composed before it was stopped or failed, kept so that its rerun does not compose them again.

A chapter's cue files are written with its score, at the end: a 40-scene MusicGen score stopped (Ctrl-C, SIGTERM, a
later cue out of memory) at its 30th cue lost the 30 cues already made, and the rerun composed all 40 again.  Each cue
is now kept as the composer hands it over (``Composer.compose(made=...)``), in
``OUTPUT/.manga2music/cues/<chapter>/<cue key>.npz``: its samples as composed (float32, before loudness: exact), its
sample rate, its notes and its info.  The rerun takes a kept cue for the scene whose cue has the same key (what it is
made of: its description, the composer's settings, its length and rate, its seed, the chapter's theme: see
:func:`manga2music.scoring.compose_cues`), so the score it makes is the one an uninterrupted run makes.

When the chapter's score is written, its kept cues are removed (its cue files are then what a rerun reuses); a kept
cue that cannot be read (a disk error, a killed write) is composed again: this is a cache, never a record.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .composers.base import Track

CACHE_DIR = Path(".manga2music") / "cues"


def _folder(output: Path, chapter: str) -> Path:
    from .outputs import fingerprint

    return Path(output) / CACHE_DIR / fingerprint(chapter)


def _path(output: Path, chapter: str, key: str) -> Path:
    return _folder(output, chapter) / f"{key[:40]}.npz"


def keep_cue(output: Path, chapter: str, key: str, track: "Track") -> None:
    """Keep a cue just composed for ``chapter`` (a failure to write it never fails the score: it is composed again
    after a stop)."""
    from .files import keep_cache_file

    meta = json.dumps({"sample_rate": int(track.sample_rate), "info": track.info}, default=str).encode("utf-8")
    buf = io.BytesIO()
    np.savez(buf, audio=np.ascontiguousarray(track.audio, dtype=np.float32),
             midi=np.frombuffer(track.midi or b"", dtype=np.uint8), has_midi=np.array(track.midi is not None),
             meta=np.frombuffer(meta, dtype=np.uint8))
    try:
        _folder(output, chapter).mkdir(parents=True, exist_ok=True)
        keep_cache_file(_path(output, chapter, key), buf.getvalue())
    except Exception:  # noqa: BLE001 - a cache: see above
        pass


def kept_cue(output: Path, chapter: str, key: str, sample_rate: int) -> Optional["Track"]:
    """The cue kept for ``key``, or None: never kept, unreadable, or made at another sample rate."""
    from .composers.base import Track

    try:
        with np.load(_path(output, chapter, key), allow_pickle=False) as kept:
            meta = json.loads(kept["meta"].tobytes().decode("utf-8"))
            audio = kept["audio"]
            midi = kept["midi"].tobytes() if bool(kept["has_midi"]) else None
        if int(meta["sample_rate"]) != int(sample_rate) or audio.ndim != 2 or audio.dtype != np.float32:
            return None
        return Track(audio, int(sample_rate), midi=midi, info=dict(meta.get("info") or {}))
    except Exception:  # noqa: BLE001 - a cache: composed again
        return None


def forget_cues(output: Path, chapter: str) -> None:
    """Remove the cues kept for ``chapter`` (its score is written, or it is not composed any more)."""
    shutil.rmtree(_folder(output, chapter), ignore_errors=True)
