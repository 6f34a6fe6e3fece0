"""A plain-Python byte-level BPE tokenizer: the reference the rebuilt fast tokenizers are checked against.

This is the algorithm the "slow" (pure Python) GPT-2 / Qwen2 tokenizers ran
before transformers 5 dropped them, written from its description, reading
only ``vocab.json``, ``merges.txt`` and the added tokens:

1. cut the text at added (special) tokens, longest first; each is one id;
2. normalise the rest to Unicode NFC (Qwen2) and split it with the model's
   pre-tokenizer regex (Qwen2's, or GPT-2's after cutting digits one by one for
   SmolLM2);
3. map each piece's UTF-8 bytes to GPT-2's printable byte alphabet;
4. merge adjacent symbols, lowest merge rank first, until no pair is in
   ``merges.txt``; look each symbol up in ``vocab.json``.

It shares no code with ``tokenizers`` (Rust), so agreement on English,
Japanese and special-token strings means the rebuilt ``tokenizer.json`` encodes
like the files it was built from.
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from pathlib import Path

import regex

#: Qwen2's pre-tokenizer: contractions, letters (with one leading non-letter), single digits, punctuation runs,
#: newlines, spaces
QWEN2_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                 r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
#: GPT-2's pre-tokenizer (SmolLM2 runs it after splitting every digit off on its own)
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def byte_alphabet() -> dict[int, str]:
    """GPT-2's byte -> printable character map: printable Latin-1 bytes stay, the rest shift past 255."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class SlowBPE:
    """Encode text to ids with plain Python, from the files of a byte-level BPE tokenizer."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], added: dict[str, int], *,
                 pattern: str = QWEN2_PATTERN, nfc: bool = True, split_digits: bool = False):
        self.vocab = vocab
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.added = added
        self.pattern = regex.compile(pattern)
        self.nfc = nfc
        self.split_digits = split_digits
        self.bytes = byte_alphabet()
        self._specials = regex.compile("|".join(regex.escape(t) for t in sorted(added, key=len, reverse=True)))

    @classmethod
    def from_files(cls, folder: str | Path, added: dict[str, int], **kwargs) -> "SlowBPE":
        folder = Path(folder)
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
        merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
        return cls(vocab, merges, added, **kwargs)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        start = 0
        for match in self._specials.finditer(text):
            ids += self._encode_plain(text[start:match.start()])
            ids.append(self.added[match.group()])
            start = match.end()
        return ids + self._encode_plain(text[start:])

    def _encode_plain(self, text: str) -> list[int]:
        if self.nfc:
            text = unicodedata.normalize("NFC", text)
        pieces = regex.split(r"(\d)", text) if self.split_digits else [text]
        ids: list[int] = []
        for piece in pieces:
            for word in self.pattern.findall(piece):
                mapped = "".join(self.bytes[b] for b in word.encode("utf-8"))
                ids += [self.vocab[symbol] for symbol in self._merge(mapped)]
        return ids

    @lru_cache(maxsize=None)  # noqa: B019 - a test helper; instances live for the session
    def _merge(self, word: str) -> tuple[str, ...]:
        symbols = list(word)
        while len(symbols) > 1:
            pairs = [(self.ranks.get(pair, len(self.ranks)), i) for i, pair in enumerate(zip(symbols, symbols[1:]))]
            rank, i = min(pairs)
            if rank == len(self.ranks):
                break
            symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
        return tuple(symbols)
