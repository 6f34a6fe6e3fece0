"""The cues a score composed before it was stopped or failed, kept so that its rerun does not compose them again.

A chapter's cue files are written with its score, at the end: a 40-scene MusicGen score stopped (Ctrl-C, SIGTERM, a
later cue out of memory) at its 30th cue lost the 30 cues already made, and the rerun composed all 40 again.  Each cue
is now kept as the composer hands it over (``Composer.compose(made=...)``), in
``OUTPUT/.manga2music/cues/<chapter>/<cue key>.npz``: its samples as composed (float32, before loudness: exact), its
sample rate, its notes and its info.  A rerun takes a kept cue for any scene whose cue has the same key (what it is
made of: its description, the composer's settings, its length and rate, its seed, the chapter's theme: see
:func:`manga2music.scoring.compose_cues`), so the score it makes is the one an uninterrupted run makes; a chapter
renamed between the stop and the rerun finds its cues in its old name's folder.

When a chapter's score is written, its folder of kept cues goes, and the cues it took from another's (its old name's);
a stopped score's cues that a later score of the chapter did not take (another --seed, new words) go with them.  Cues
no score took for :data:`KEEP_DAYS` days (a chapter stopped and never scored again) are removed by the next score into
the folder.  A kept cue that cannot be read (a disk error, a killed write) is composed again: this is a cache, never a
record.  Beside the cues, ``settings.json`` holds the settings the stopped score was made with (seed, reading speed,
format, loudness, longest cue): a plain rerun resumes it with them, as the command said it would.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .composers.base import Track

CACHE_DIR = Path(".manga2music") / "cues"
#: kept cues no score took for this long are let go
KEEP_DAYS = 7


def _folder(output: Path, chapter: str) -> Path:
    from .outputs import fingerprint

    return Path(output) / CACHE_DIR / fingerprint(chapter)


def _found(output: Path, chapter: str, key: str) -> Optional[Path]:
    """The kept file of ``key``: in the chapter's folder, else in another's (the chapter renamed since)."""
    own = _folder(output, chapter) / f"{key[:40]}.npz"
    if own.is_file():
        return own
    return next(iter(sorted((Path(output) / CACHE_DIR).glob(f"*/{key[:40]}.npz"))), None)


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
        keep_cache_file(_folder(output, chapter) / f"{key[:40]}.npz", buf.getvalue())
    except Exception:  # noqa: BLE001 - a cache: see above
        pass


#: beside the kept cues: the settings the stopped score was made with, the ones a plain rerun resumes it with
SETTINGS = "settings.json"


def keep_settings(output: Path, chapter: str, settings: dict) -> None:
    """Keep what ``chapter``'s score is being made with (its seed, reading speed, format, loudness, longest cue):
    a plain rerun after a stop resumes it with them, and so takes its kept cues (it drew a new seed, read at speed 1
    and wrote a WAV, composing every cue again and letting the kept ones go)."""
    from .files import keep_cache_file

    try:
        _folder(output, chapter).mkdir(parents=True, exist_ok=True)
        keep_cache_file(_folder(output, chapter) / SETTINGS, json.dumps(settings, sort_keys=True).encode("utf-8"))
    except Exception:  # noqa: BLE001 - a cache: see above
        pass


def kept_settings(output: Path, chapter: str) -> dict:
    """The settings of ``chapter``'s score stopped with cues kept (:func:`keep_settings`), or ``{}``."""
    try:
        if not any(_folder(output, chapter).glob("*.npz")):  # nothing kept: nothing to resume
            return {}
    except OSError:
        return {}
    return stopped_settings(output, chapter)


def stopped_settings(output: Path, chapter: str) -> dict:
    """The settings of ``chapter``'s score stopped while it was made, whether or not a cue was kept yet (the model
    it was asked for: a first MusicGen cue on a CPU takes minutes), or ``{}``."""
    try:
        settings = json.loads((_folder(output, chapter) / SETTINGS).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}


def kept_cue(output: Path, chapter: str, key: str, sample_rate: int) -> Optional["Track"]:
    """The cue kept for ``key``, or None: never kept, unreadable, or made at another sample rate."""
    from .composers.base import Track

    path = _found(output, chapter, key)
    if path is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as kept:
            meta = json.loads(kept["meta"].tobytes().decode("utf-8"))
            audio = kept["audio"]
            midi = kept["midi"].tobytes() if bool(kept["has_midi"]) else None
        if int(meta["sample_rate"]) != int(sample_rate) or audio.ndim != 2 or audio.dtype != np.float32:
            return None
        return Track(audio, int(sample_rate), midi=midi, info=dict(meta.get("info") or {}))
    except Exception:  # noqa: BLE001 - a cache: composed again
        return None


def forget_cues(output: Path, chapter: str, keys: Iterable[str]) -> None:
    """After ``chapter``'s score is written: its folder of kept cues, and the cues of ``keys`` (its scenes') kept in
    another's (its old name's), with that folder's settings once it keeps no cue; the cues folder too once empty."""
    shutil.rmtree(_folder(output, chapter), ignore_errors=True)
    root = Path(output) / CACHE_DIR
    for key in keys:
        for path in root.glob(f"*/{key[:40]}.npz") if root.is_dir() else ():
            path.unlink(missing_ok=True)
            if not any(path.parent.glob("*.npz")):
                (path.parent / SETTINGS).unlink(missing_ok=True)
    _remove_empty(root)


def _remove_empty(root: Path) -> None:
    for folder in [*sorted(root.glob("*")), root] if root.is_dir() else ():
        try:
            folder.rmdir()  # only when empty
        except OSError:
            pass


def forget_stale_cues(output: Path, days: float = KEEP_DAYS) -> None:
    """Remove kept cues untouched for ``days`` (no score took them: their chapter was not scored again)."""
    root = Path(output) / CACHE_DIR
    if not root.is_dir():
        return
    before = time.time() - days * 86400
    for path in [*root.glob("*/*.npz"), *root.glob(f"*/{SETTINGS}")]:  # settings too: of a score that kept none
        try:
            if path.stat().st_mtime < before and (path.suffix == ".npz" or not any(path.parent.glob("*.npz"))):
                path.unlink()
        except OSError:
            pass
    _remove_empty(root)
