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


def language_of(text: object) -> "str | None":
    """The language a screen reader should read ``text`` in, where its script says it alone: ``ja`` for kana
    (hiragana, katakana), ``ko`` for hangul.  ``None`` otherwise: the page's English, or kanji/hanzi alone, which are
    Chinese as well as Japanese (guessing would make a reader mispronounce one or the other)."""
    for char in str(text or ""):
        code = ord(char)
        if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9D:
            return "ja"
        if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            return "ko"
    return None


def lang_attribute(text: object) -> str:
    """`` lang="ja"`` for an HTML element that shows ``text`` (see :func:`language_of`), else ``""``."""
    language = language_of(text)
    return f' lang="{language}"' if language else ""
