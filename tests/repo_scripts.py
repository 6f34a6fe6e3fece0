"""The repository's own scripts (benchmarks/, scripts/), loaded by path for the tests that run them: they are not
part of the installed package."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def load_script(relative: str) -> ModuleType:
    """The module of the script at ``relative`` (to the repository root), e.g. ``"benchmarks/photo_pages.py"``."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
