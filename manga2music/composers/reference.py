"""Reference audio (a melody, a chapter theme) brought to the shape and rate a model wants.

``ComposeRequest.reference`` is float audio shaped ``(frames,)`` or
``(frames, channels)`` at ``ComposeRequest.reference_rate`` Hz.  Composers
call :func:`reference_for` to get it as float32 ``(channels, frames)`` at their
own rate and channel count, and :func:`reference_key` to keep requests with
different references out of one batch (pipelines take one reference per call).
"""

from __future__ import annotations

import hashlib
from math import gcd
from typing import Optional

import numpy as np

from ..errors import InputError
from .base import ComposeRequest


def reference_key(request: ComposeRequest) -> Optional[str]:
    """A short fingerprint of the request's reference audio and rate (``None`` without one)."""
    if request.reference is None:
        return None
    x = np.ascontiguousarray(request.reference, dtype=np.float32)
    digest = hashlib.sha256(x.tobytes() + str((x.shape, request.reference_rate)).encode()).hexdigest()
    return digest[:16]


def reference_for(request: ComposeRequest, sample_rate: int, channels: int) -> Optional[np.ndarray]:
    """The reference as float32 ``(channels, frames)`` at ``sample_rate``, or ``None`` without one.

    Mono is copied to every channel, stereo is averaged to mono for a mono
    model, and the rate is changed with a polyphase filter.  An empty
    reference, one without a rate or with NaNs is an ``InputError``.
    """
    if request.reference is None:
        return None
    x = np.asarray(request.reference, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0 or not 1 <= x.shape[1] <= 8:
        raise InputError(f"{request.name}: reference audio must be shaped (frames,) or (frames, channels), "
                         f"got {np.shape(request.reference)}")
    if not request.reference_rate or request.reference_rate <= 0:
        raise InputError(f"{request.name}: reference audio was given without its sample rate",
                         hint="set ComposeRequest.reference_rate to the reference's rate in Hz.")
    if not np.isfinite(x).all():
        raise InputError(f"{request.name}: reference audio holds NaN or infinite samples")
    if x.shape[1] != channels:
        x = np.repeat(x[:, :1], channels, axis=1) if x.shape[1] == 1 else np.repeat(
            x.mean(axis=1, keepdims=True), channels, axis=1)
    rate = int(request.reference_rate)
    if rate != sample_rate:
        from scipy.signal import resample_poly

        g = gcd(sample_rate, rate)
        x = resample_poly(x, sample_rate // g, rate // g, axis=0)
    return np.ascontiguousarray(x.T, dtype=np.float32)
