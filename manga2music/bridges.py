"""Bridges between scenes (``score --transitions continue``): where each goes, composed or reused.

For each scene change the composer continues the outgoing cue's last :data:`BRIDGE_PROMPT_S` seconds before a
bar line into the next scene's description (:func:`compose_bridges`); the bridge takes over a bar (or two beats,
or one) before the change and fades out under the next cue (:func:`manga2music.score_audio.join_cues`).

A bridge depends only on the cue it carries on from (and where), the next scene's description, its seed, its
length and the composer's settings; its key is a digest of exactly those (:func:`bridge_key`).  A score is rebuilt whenever any of its scenes
changes, so bridges already made are kept in ``OUTPUT/.manga2music/bridges/<key>.npy`` (float32, exact: a
reused bridge is the bridge that was made) and only the bridges next to a changed scene are composed again; a
missing or unreadable file only means the bridge is composed again.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

import numpy as np

from .composers.base import ComposeRequest
from .errors import BackendError
from .progress import report

if TYPE_CHECKING:  # pragma: no cover
    from .composers.base import Composer
    from .jobs import Callbacks, SectionJob
    from .scene_planning import ScenePlan

CACHE_DIR = Path(".manga2music") / "bridges"
BRIDGE_PROMPT_S = 10.0  # a bridge carries on from this much of the outgoing cue
BRIDGE_MAX_LEAD_S = 4.0  # and takes over at most this long before the scene change
BRIDGE_FADE_S = 0.05  # the linear crossfade from the outgoing cue into its own continuation
BRIDGE_SEED_OFFSET = 1_000_003  # a bridge's seed: its incoming scene's seed plus this


def bridge_key(cue_key: str, take: int, prompt: int, text: str, seed: int, samples: int,
               composer_settings: dict) -> str:
    """What a bridge is made from: the outgoing cue (its key says how it was composed: text, seed, length, model)
    and the part of it carried on, the next scene's description, the bridge's seed and length, the model.

    The cue is named by its key, not its samples: a cue reused on a rerun is decoded from its file (16-bit), and
    the bridge made when the cue was composed is the one a run from scratch makes."""
    from .outputs import fingerprint

    return fingerprint({"cue": cue_key, "take": int(take), "prompt": int(prompt), "text": text, "seed": int(seed),
                        "samples": int(samples), "composer": composer_settings})


def _path(output: Path, key: str) -> Path:
    return Path(output) / CACHE_DIR / f"{key[:40]}.npy"


def load_bridge(output: Path, key: str) -> Optional[np.ndarray]:
    try:
        return np.load(_path(output, key), allow_pickle=False)
    except (OSError, ValueError):
        return None


def keep_bridge(output: Path, key: str, audio: np.ndarray) -> None:
    """Keep a bridge just made (a failure to write it never fails the score)."""
    from .files import keep_cache_file

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(audio, dtype=np.float32), allow_pickle=False)
    try:
        keep_cache_file(_path(output, key), buf.getvalue())
    except Exception:  # noqa: BLE001 - a cache: the bridge is composed again next time
        pass


def forget_bridges(output: Path, keys: Iterable[str]) -> None:
    """Remove bridges no score uses any more."""
    for key in keys:
        try:
            _path(output, key).unlink(missing_ok=True)
        except OSError:
            pass


def _bridge_lead(prev, incoming_fade: int, sample_rate: int) -> int:
    """Samples before a scene change where its bridge takes over: a bar of the outgoing cue, or two beats or one
    when a bar is longer than :data:`BRIDGE_MAX_LEAD_S` or the back half of the scene; 0: no room for a bridge."""
    beat = 60.0 / max(20.0, prev.tempo_bpm)
    room = min(BRIDGE_MAX_LEAD_S, (prev.length - incoming_fade) / 2 / sample_rate)
    for beats in (4, 2, 1):
        if beats * beat <= room:
            return int(round(beats * beat * sample_rate))
    return 0


def compose_bridges(job: SectionJob, plans: list[ScenePlan], timings: list, composer: Composer, cb: Callbacks,
                    sample_rate: int, force: bool = False) -> Optional[list]:
    """A :class:`~manga2music.score_audio.Bridge` per scene change (None before the first scene or where a
    scene is too short for one): reused from :mod:`manga2music.bridge_cache` where nothing it depends on changed
    (unless ``force``), the others in one composer call; each plan before a bridge records it.  None when the
    composer failed (the scenes then crossfade)."""
    from .score_audio import Bridge, SceneAudio

    bridges: list = [None] * len(plans)
    places = []  # (k, lead, fade, where the bridge starts in the outgoing cue)
    for k in range(1, len(plans)):
        prev, t = timings[k - 1], timings[k]
        fade = min(prev.transition, t.length)
        incoming = min(timings[k - 2].transition, prev.length) if k >= 2 else 0
        lead = _bridge_lead(prev, incoming, sample_rate) if fade else 0
        if lead:
            places.append((k, lead, fade, prev.length - lead))
    if not places:
        return bridges
    # every bridge carries on from the same length of its cue, so that they share the composer's batches
    prompt = min(int(BRIDGE_PROMPT_S * sample_rate), min(take for *_, take in places))
    settings = composer.settings_key()
    made, wanted = [], []
    for k, lead, fade, take in places:
        seed = int(plans[k].seed) + BRIDGE_SEED_OFFSET
        follows = SceneAudio(plans[k - 1].audio, timings[k - 1], sample_rate).span(take - prompt, take)  # a cue
        # that loops to fill its scene is carried on from where its loop is at the scene change
        key = bridge_key(plans[k - 1].cue_key, take, prompt, plans[k].description, seed, lead + fade, settings)
        audio = None if force else load_bridge(job.output, key)
        (made if audio is not None else wanted).append((k, lead, key, audio, ComposeRequest(
            f"{job.name} bridge into scene {k + 1}", plans[k].description, (lead + fade) / sample_rate, seed,
            follows=follows)))
    report(cb.step, 0, 1, f"bridging {len(wanted)} of {len(places)} scene changes"
                          + (f" ({len(made)} unchanged)" if made else ""))
    if wanted:
        try:
            tracks = composer.compose([r for *_, r in wanted], progress=cb.step)
        except BackendError as exc:  # the cues are made: the chapter still gets its score, with crossfades
            cb.warn(f"{job.name}: the bridges between scenes could not be made ({exc.message}); the scenes "
                    f"crossfade instead (a rerun tries again)")
            return None
        for i, track in enumerate(tracks):
            k, lead, key, _, request = wanted[i]
            keep_bridge(job.output, key, track.audio)
            wanted[i] = (k, lead, key, track.audio, request)
    for k, lead, key, audio, request in made + wanted:
        bridges[k] = Bridge(audio, lead, int(BRIDGE_FADE_S * sample_rate))
        plans[k - 1].bridge = {"lead": lead, "seed": request.seed, "prompt": prompt, "key": key}
    return bridges


def forget_unused_bridges(job: SectionJob, old_score: dict, plans: list[ScenePlan]) -> None:
    """After a score's commit: the bridges its last version used and this one does not are removed."""
    used = {p.bridge["key"] for p in plans if p.bridge}
    before = {(s.get("bridge") or {}).get("key") for s in old_score.get("scenes", [])}
    forget_bridges(job.output, [key for key in before - used if key])
