"""Shared fixtures: every test gets its own user/cache dirs and no network credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Point caches at a temp folder and hide the developer's keys and Hub settings."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(home / "models"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("MANGA2MUSIC_CONFIG_DIR", str(home / "config"))  # remembered answers (settings.json)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_HOME", "HF_HUB_CACHE", "MANGA2MUSIC_DEBUG", "HF_TOKEN",
                 "MANGA2MUSIC_AUTO_DOWNLOAD"):
        monkeypatch.delenv(name, raising=False)
    yield home


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def real_tiny(tmp_path_factory):
    """``real_tiny(name)``: a tiny random model with a real checkpoint's files (tests/real_tiny.py), built once."""
    from real_tiny import build_tiny

    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build_tiny(name, tmp_path_factory.mktemp(name.replace(".", "_")) / name)
        return built[name]

    return get
