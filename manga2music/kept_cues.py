"""The cues a score composed before it was stopped or failed, kept so that its rerun does not compose them again.

A chapter's cue files are written with its score, at the end: a 40-scene MusicGen score stopped (Ctrl-C, SIGTERM, a
later cue out of memory) at its 30th cue lost the 30 cues already made, and the rerun composed all 40 again.  Each cue
is now kept as the composer hands it over (``Composer.compose(made=...)``), in
``OUTPUT/.manga2music/cues/<cue key>.npz``: its samples as composed (float32, before loudness: exact), its sample
rate, its notes and its info.  A rerun takes a kept cue for any scene whose cue has the same key (what it is made of:
its description, the composer's settings, its length and rate, its seed, the chapter's theme: see
:func:`manga2music.scoring.compose_cues`), so the score it makes is the one an uninterrupted run makes, and a chapter
renamed between the stop and the rerun finds its cues too.

When a chapter's score is written, the cues kept for its scenes are removed (its cue files are then what a rerun
reuses); cues no score took for :data:`KEEP_DAYS` days (a chapter stopped and never scored again, its descriptions
changed since) are removed by the next score into the folder.  A kept cue that cannot be read (a disk error, a
killed write) is composed again: this is a cache, never a record.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .composers.base import Track

CACHE_DIR = Path(".manga2music") / "cues"
#: kept cues no score took for this long are let go
KEEP_DAYS = 7


def _path(output: Path, key: str) -> Path:
    return Path(output) / CACHE_DIR / f"{key[:40]}.npz"


def keep_cue(output: Path, key: str, track: "Track") -> None:
    """Keep a cue just composed (a failure to write it never fails the score: it is composed again after a stop)."""
    from .files import keep_cache_file

    meta = json.dumps({"sample_rate": int(track.sample_rate), "info": track.info}, default=str).encode("utf-8")
    buf = io.BytesIO()
    np.savez(buf, audio=np.ascontiguousarray(track.audio, dtype=np.float32),
             midi=np.frombuffer(track.midi or b"", dtype=np.uint8), has_midi=np.array(track.midi is not None),
             meta=np.frombuffer(meta, dtype=np.uint8))
    try:
        (Path(output) / CACHE_DIR).mkdir(parents=True, exist_ok=True)
        keep_cache_file(_path(output, key), buf.getvalue())
    except Exception:  # noqa: BLE001 - a cache: see above
        pass


def kept_cue(output: Path, key: str, sample_rate: int) -> Optional["Track"]:
    """The cue kept for ``key``, or None: never kept, unreadable, or made at another sample rate."""
    from .composers.base import Track

    try:
        with np.load(_path(output, key), allow_pickle=False) as kept:
            meta = json.loads(kept["meta"].tobytes().decode("utf-8"))
            audio = kept["audio"]
            midi = kept["midi"].tobytes() if bool(kept["has_midi"]) else None
        if int(meta["sample_rate"]) != int(sample_rate) or audio.ndim != 2 or audio.dtype != np.float32:
            return None
        return Track(audio, int(sample_rate), midi=midi, info=dict(meta.get("info") or {}))
    except Exception:  # noqa: BLE001 - a cache: composed again
        return None


def forget_cues(output: Path, keys: Iterable[str]) -> None:
    """Remove the cues kept for ``keys`` (the cues of a chapter whose score is written)."""
    for key in keys:
        try:
            _path(output, key).unlink(missing_ok=True)
        except OSError:
            pass


def forget_stale_cues(output: Path, days: float = KEEP_DAYS) -> None:
    """Remove kept cues untouched for ``days`` (no score took them: their chapter was not scored again)."""
    folder = Path(output) / CACHE_DIR
    if not folder.is_dir():
        return
    before = time.time() - days * 86400
    for path in folder.glob("*.npz"):
        try:
            if path.stat().st_mtime < before:
                path.unlink()
        except OSError:
            pass
