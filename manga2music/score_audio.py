"""A chapter's cues joined into one score, and each cue as a seamless loop.

:func:`join_cues` lays the cues end to end at the sample positions the cue sheet
gives (:func:`manga2music.cuesheet.plan_timing`): scene ``k`` occupies exactly
``timing.length`` samples from ``timing.start``.  At every scene change the
outgoing cue's tail (composed one beat past its scene) fades out with
``cos`` while the incoming cue fades in with ``sin`` over the same samples: an
equal-power crossfade that starts on the bar line where the scene changes.  The
score's length is the sum of the scenes' lengths, to the sample.

With ``--transitions continue`` a scene change also gets a :class:`Bridge`: music
the composer carried on from the outgoing cue into the next scene's description.
It takes over from the outgoing cue on a bar line before the scene change (a short
linear crossfade between the cue and its own continuation), and it is what fades
out under the incoming cue, in place of the cue's tail.  Scene starts and the
score's length do not change.

A scene read for longer than the composer's longest track is longer than its cue
(``timing.cue_length < timing.length``): it plays the cue once, then its seamless
loop (:func:`cue_loop`, the loop file) again and again (:class:`SceneAudio`) until
the scene ends and on through its transition; each repeat starts where the previous
one's last sample left off, so no seam is heard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio import make_seamless_loop


def _fit(audio: np.ndarray, frames: int, channels: int) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[1] != channels:
        x = np.repeat(x[:, :1], channels, axis=1) if x.shape[1] == 1 else x[:, :channels]
    if len(x) < frames:
        x = np.pad(x, ((0, frames - len(x)), (0, 0)))
    return x[:frames]


@dataclass
class Bridge:
    """The way into a scene carried on from the previous cue (``--transitions continue``)."""

    audio: np.ndarray  # ``lead`` samples before the scene change, then the previous cue's transition length
    lead: int  # samples before the scene change where it takes over from the previous cue (a bar line)
    fade: int  # samples of the linear crossfade from the previous cue into its continuation


def _channels(audio: np.ndarray) -> int:
    return audio.shape[1] if audio.ndim == 2 else 1


class SceneAudio:
    """What plays from a scene's start: its cue over the scene and its transition tail (``length + transition``
    frames); for a scene longer than its cue, the cue once and then its loop again and again (see the module doc).

    Kept as pieces (the cue, the loop) rather than written out: a scene that loops for an hour is not an hour of
    samples in memory until it is in the score."""

    def __init__(self, audio: np.ndarray, timing, sample_rate: int, channels: int = 0):
        channels = channels or _channels(audio)
        self.frames = timing.length + timing.transition
        if not timing.loops:
            self.pieces = [(0, _fit(audio, self.frames, channels))]
            return
        x = _fit(audio, len(audio), channels)
        loop = _fit(cue_loop(x, timing.cue_length, sample_rate), timing.cue_length, channels)
        self.pieces = [(0, x[: timing.cue_length])]
        self.pieces += [(at, loop[: self.frames - at]) for at in range(timing.cue_length, self.frames,
                                                                         timing.cue_length)]

    def parts(self, start: int, stop: int):
        """``(offset from start, samples)`` covering frames ``start:stop`` (views, no copies)."""
        for at, piece in self.pieces:
            lo, hi = max(start, at), min(stop, at + len(piece))
            if lo < hi:
                yield lo - start, piece[lo - at:hi - at]

    def span(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` as one array."""
        parts = [piece for _, piece in self.parts(start, stop)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def add_to(self, out: np.ndarray, at: int, start: int, stop: int) -> None:
        """Add frames ``start:stop`` into ``out`` from index ``at``."""
        for offset, piece in self.parts(start, stop):
            out[at + offset:at + offset + len(piece)] += piece


def join_cues(cues: list[np.ndarray], timings: list, sample_rate: int,
              bridges: "list[Bridge | None] | None" = None, *, release: bool = False) -> np.ndarray:
    """The score: ``cues[k]`` (scene + tail) placed at ``timings[k].start``, crossfaded into the next scene.

    ``bridges[k]`` (k >= 1), where given, leads from scene ``k - 1`` into scene ``k`` (see the module doc).
    ``release``: the list is the caller's to give up; each entry is set to None as it is taken, so that a cue's
    samples go once the next scene is placed instead of all of them staying until the score is whole (a volume's
    cues are over a GB)."""
    channels = max(_channels(c) for c in cues)
    total = sum(t.length for t in timings)
    out = np.zeros((total, channels), dtype=np.float32)
    previous = None
    for k, t in enumerate(timings):
        scene = SceneAudio(cues[k], t, sample_rate, channels)
        if release:
            cues[k] = None
        x = 0
        if k > 0 and timings[k - 1].transition:
            prev = timings[k - 1]
            x = min(prev.transition, t.length)
            theta = np.linspace(0.0, np.pi / 2, x, endpoint=False, dtype=np.float32)[:, None]
            bridge = bridges[k] if bridges else None
            if bridge is None:
                outgoing = previous.span(prev.length, prev.length + x)
            else:
                lead, fade = bridge.lead, min(bridge.fade, bridge.lead)
                carried = _fit(bridge.audio, lead + x, channels)
                at = t.start - lead
                ramp = np.linspace(0.0, 1.0, fade + 2, dtype=np.float32)[1:-1, None]
                out[at:at + fade] = out[at:at + fade] * (1.0 - ramp) + carried[:fade] * ramp
                out[at + fade:t.start] = carried[fade:lead]
                outgoing = carried[lead:lead + x]
            # the incoming cue rises as the outgoing music falls
            out[t.start:t.start + x] += scene.span(0, x) * np.sin(theta) + outgoing * np.cos(theta)
        scene.add_to(out, t.start + x, x, t.length)
        previous = scene
    fade_out_end(out, sample_rate, timings[-1].length if timings else 0)
    return out


#: the score's last seconds fade to silence: the last cue's tail is not in the score (it would outlast the last
#: page), and cut off there the music stopped dead, mid-note, at the end of every chapter
FINAL_FADE_S = 2.0


def fade_out_end(out: np.ndarray, sample_rate: int, last_scene: int) -> None:
    """Fade the end of ``out`` to silence in place: FINAL_FADE_S, or a quarter of a shorter last scene."""
    n = min(int(FINAL_FADE_S * sample_rate), last_scene // 4, len(out))
    if n > 1:
        out[-n:] *= np.cos(np.linspace(0.0, np.pi / 2, n, dtype=np.float32))[:, None]


def cue_loop(audio: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    """A seamless loop of exactly ``length`` frames from a cue composed longer (its tail is folded over its start)."""
    x = np.asarray(audio, dtype=np.float32)
    x = x[:, None] if x.ndim == 1 else x
    extra = len(x) - length
    if extra <= 0:  # nothing to fold over: a short fade at both ends keeps the seam quiet
        x = _fit(x, length, x.shape[1]).copy()
        n = min(len(x) // 4, int(0.05 * sample_rate))
        if n:
            ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
            x[:n] *= ramp
            x[len(x) - n:] *= ramp[::-1]
        return x
    extra = min(extra, length)
    return make_seamless_loop(x[: length + extra], sample_rate, crossfade_s=extra / sample_rate)


def chroma(audio: np.ndarray, sample_rate: int, *, frame: int = 8192) -> np.ndarray:
    """The track's average chromagram: energy per pitch class (C..B), normalised to sum 1 (for comparing cues)."""
    x = np.asarray(audio, dtype=np.float64)
    x = x.mean(axis=1) if x.ndim == 2 else x
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    hops = range(0, len(x) - frame + 1, frame // 2)
    window = np.hanning(frame)
    freqs = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    keep = (freqs > 55.0) & (freqs < 4200.0)
    pitch_class = (np.round(12 * np.log2(freqs[keep] / 440.0)).astype(int) + 9) % 12  # 0 = C
    total = np.zeros(12)
    for start in hops:
        spectrum = np.abs(np.fft.rfft(x[start:start + frame] * window))[keep] ** 2
        total += np.bincount(pitch_class, weights=spectrum, minlength=12)
    return total / (total.sum() or 1.0)


def chroma_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two chroma vectors (1: the same pitch-class balance)."""
    return float(np.dot(a, b) / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))
