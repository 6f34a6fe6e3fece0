"""Words shared by messages and descriptions."""

from __future__ import annotations

from typing import Sequence


def listed(words: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``; ``""`` for none."""
    words = list(words)
    return " and ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def first_few(words: Sequence[str], few: int = 3) -> str:
    """``a, b, c`` (:func:`listed` up to ``few``), or ``a, b, c and 4 more`` past them."""
    words = list(words)
    return listed(words) if len(words) <= few else f"{', '.join(words[:few])} and {len(words) - few} more"
