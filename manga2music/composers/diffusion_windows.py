"""Long tracks for diffusion composers: windows that start with context, and the crossfade that joins them.

A window is one pipeline call.  The first makes up to the model's maximum
length; each later one starts ``overlap`` samples before the end of what is
made so far, keeps those samples as context (the model regenerates only the
rest) and adds ``window - overlap`` new samples.  :func:`crossfade_into` then
joins it to the track inside the overlap, where both windows hold the same
music.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROSSFADE_S = 0.5  # the linear crossfade between two windows, inside their overlap
EDGE_S = 0.25  # how far the crossfade stays from the previous window's end


@dataclass(frozen=True)
class Window:
    """One pipeline call: ``keep`` samples of context from the track, then new audio up to ``length``."""

    start: int  # the window's first sample in the track
    keep: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length


def plan_windows(total: int, window: int, overlap: int) -> list[Window]:
    """The windows that make ``total`` samples, each at most ``window`` long, later ones with ``overlap`` context."""
    if window <= 0 or not 0 < overlap < window:
        raise ValueError("the overlap must be shorter than the window")
    windows = [Window(0, 0, min(total, window))]
    made = windows[0].length
    while made < total:
        new = min(window - overlap, total - made)
        windows.append(Window(made - overlap, overlap, overlap + new))
        made += new
    return windows


def crossfade_into(out: np.ndarray, audio: np.ndarray, window: Window, sample_rate: int) -> None:
    """Write one window's ``audio`` ``(batch, channels, length)`` into ``out`` at its place.

    The first window is copied.  A later one replaces the track from a
    crossfade inside its context on: the fade ends ``EDGE_S`` before the
    previous window's last sample and lasts ``CROSSFADE_S`` (both shrink with
    short overlaps), so both signals are whole where they are mixed.
    """
    if window.keep == 0:
        out[..., window.start:window.end] = audio[..., :window.length]
        return
    edge = min(int(EDGE_S * sample_rate), window.keep // 4)
    fade = max(1, min(int(CROSSFADE_S * sample_rate), window.keep // 2))
    fade_start = window.start + window.keep - edge - fade
    ramp = np.linspace(0.0, 1.0, fade + 2, dtype=np.float32)[1:-1]
    a = fade_start - window.start
    out[..., fade_start:fade_start + fade] *= 1.0 - ramp
    out[..., fade_start:fade_start + fade] += audio[..., a:a + fade] * ramp
    out[..., fade_start + fade:window.end] = audio[..., a + fade:window.length]
