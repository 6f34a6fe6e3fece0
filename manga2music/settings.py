"""Where things live: user dirs, the model cache, environment switches.

Model weights go to ``platformdirs.user_cache_dir("manga2music")/models`` unless
``MANGA2MUSIC_CACHE`` is set, or the user already chose a shared Hugging Face
cache with ``HF_HUB_CACHE`` / ``HF_HOME`` (then we use theirs).
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "manga2music"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def debug_enabled() -> bool:
    """``MANGA2MUSIC_DEBUG=1``: show full tracebacks."""
    return _truthy(os.environ.get("MANGA2MUSIC_DEBUG"))


def offline_mode() -> bool:
    """``HF_HUB_OFFLINE=1`` (or ``MANGA2MUSIC_OFFLINE=1``): never touch the network for weights."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("MANGA2MUSIC_OFFLINE"))


def no_network() -> bool:
    """``MANGA2MUSIC_OFFLINE=1`` (what ``--offline`` sets): no network at all, APIs included.

    ``HF_HUB_OFFLINE=1`` alone only keeps the Hugging Face Hub away (weights come from the cache).
    """
    return _truthy(os.environ.get("MANGA2MUSIC_OFFLINE"))


def user_cache_dir() -> Path:
    from platformdirs import user_cache_dir as _ucd

    return Path(_ucd(APP_NAME, appauthor=False))


def model_cache_dir() -> Path:
    """The folder ``from_pretrained(cache_dir=...)`` uses for weights.

    Order: ``MANGA2MUSIC_CACHE``; then ``HF_HUB_CACHE``; then ``HF_HOME/hub``;
    then our own user cache dir.
    """
    env = os.environ
    if env.get("MANGA2MUSIC_CACHE"):
        return Path(env["MANGA2MUSIC_CACHE"]).expanduser()
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    return user_cache_dir() / "models"


def cache_source() -> str:
    """Which rule chose :func:`model_cache_dir` (for ``doctor`` and ``models path``)."""
    env = os.environ
    for name in ("MANGA2MUSIC_CACHE", "HF_HUB_CACHE", "HF_HOME"):
        if env.get(name):
            return name
    return "default"
