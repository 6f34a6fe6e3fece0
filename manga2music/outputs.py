"""Where a section's files go, who wrote them, and the run manifest.

For section ``ch01/part2`` under ``-o out``::

    out/ch01/part2.txt    the music description
    out/ch01/part2.json   the record: analysis, pages + sha256, models, settings, seed, timings, outputs
    out/ch01/part2.wav    the track (``part2.take2.wav`` ... with --variations)
    out/ch01/part2.mid    the notes, when the composer works in notes (builtin)
    out/manifest.json     every section with its status

A file is replaced only when the record says this tool wrote it (its sha256
matches): nothing a user made or edited is overwritten.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__

TOOL = "manga2music"
RECORD_SCHEMA = 1
_BAD_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_part(part: str) -> str:
    """One path component that every file system accepts; Unicode (日本語) is kept."""
    cleaned = _BAD_CHARS.sub("_", part).strip().rstrip(". ")
    if not cleaned or cleaned in (".", ".."):
        cleaned = "_"
    if cleaned.split(".")[0].lower() in _RESERVED:
        cleaned = "_" + cleaned
    return cleaned[:200]


@dataclass(frozen=True)
class SectionFiles:
    """The output paths of one section."""

    base: Path  # out/ch01/part2 (no suffix)

    @classmethod
    def for_section(cls, output: Path, name: str) -> "SectionFiles":
        parts = [safe_part(p) for p in name.split("/") if p]
        return cls(output.joinpath(*parts) if parts else output / "_")

    @property
    def description(self) -> Path:
        return self.base.with_name(self.base.name + ".txt")

    @property
    def record(self) -> Path:
        return self.base.with_name(self.base.name + ".json")

    def track(self, fmt: str, take: int = 1) -> Path:
        suffix = f".take{take}" if take > 1 else ""
        return self.base.with_name(f"{self.base.name}{suffix}.{fmt}")

    def midi(self, take: int = 1) -> Path:
        return self.track("mid", take)

    def artifact(self) -> Path:
        """The stage-1 analysis alone, as readable JSON (--save-artifact)."""
        return self.base.with_name(self.base.name + ".analysis.json")


def file_sha256(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def fingerprint(data: Any) -> str:
    """A short stable hash of settings (sorted JSON)."""
    blob = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def read_record(path: Path) -> dict | None:
    """The record this tool wrote, or None (missing, unreadable, or not ours)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != TOOL:
        return None
    return data


def is_ours(path: Path, record: dict | None) -> bool:
    """True when ``path`` is missing, or is a file whose hash the record lists (we wrote it)."""
    if not path.exists():
        return True
    if record is None:
        return False
    known = record.get("files", {})
    return known.get(path.name) is not None and known.get(path.name) == file_sha256(path)


def new_record(section: str) -> dict:
    return {"tool": TOOL, "version": __version__, "schema": RECORD_SCHEMA, "section": section, "files": {}}


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_json_atomic(path: Path, data: Any) -> Path:
    from .audio import write_text_atomic

    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def update_manifest(output: Path, entries: list[dict], *, command: str) -> dict:
    """Merge this run's section entries into ``out/manifest.json`` (by section name) and write it."""
    path = output / "manifest.json"
    old = read_record(path) or {}
    by_name = {e["name"]: e for e in old.get("sections", []) if isinstance(e, dict) and "name" in e}
    for entry in entries:
        by_name[entry["name"]] = entry
    manifest = {
        "tool": TOOL,
        "version": __version__,
        "updated": now_iso(),
        "command": command,
        "sections": sorted(by_name.values(), key=lambda e: e["name"]),
        "this_run": [e["name"] for e in entries],
    }
    write_json_atomic(path, manifest)
    return manifest
