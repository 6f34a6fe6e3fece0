"""Words shared by messages and descriptions."""

from __future__ import annotations

from typing import Sequence


def listed(words: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``; ``""`` for none."""
    words = list(words)
    return " and ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)
