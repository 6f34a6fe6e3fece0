"""Where a section's files go, who wrote them, and the run manifest.

For section ``ch01/part2`` under ``-o out``::

    out/ch01/part2.txt    the music description
    out/ch01/part2.json   the record: analysis, pages + sha256, models, settings, seed, timings, outputs
    out/ch01/part2.wav    the track (``part2.take2.wav`` ... with --variations)
    out/ch01/part2.mid    the notes, when the composer works in notes (builtin)
    out/manifest.json     every section with its status
    out/index.html        the listening page

**Who wrote a file.** A record lists the sha256 of every file it made (``files``).
A file is replaced only when its bytes hash to what a record lists: nothing a user
made or edited is overwritten.

**Write order that survives a kill at any moment** (:func:`commit`): new files are
first written in full under hidden temporary names; then the record is rewritten
with their hashes under ``pending``; then they are renamed into place; then the
record is written again with the step's results and the hashes moved to
``files``.  Killed before the first record write: the temporaries are stale and the
next run removes them.  Killed after it: every file in place hashes either to
``files`` (the old version) or to ``pending`` (the new one), so the next run knows
both are ours, and since the step's fingerprint was not yet recorded, it redoes the
step.  Files that are replaced by nothing (an old format) are removed before the
last write, so a record never forgets a file that is still there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional

from . import __version__
from .errors import Manga2MusicError, OutputError
from .files import fill, readable, temp_beside, write_text_atomic
from .options import another_output
from .sections import reading_keys

TOOL = "manga2music"
RECORD_SCHEMA = 2
MANIFEST = "manifest.json"
LISTENING_PAGE = "index.html"
_BAD_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


#: the most bytes of one part of an output name: a file system allows 255 a name, a section's files add up to 17
#: (``.cue100.loop.flac``) and the hidden temporary file each is written to first 14 more (``.NAME.tmp-1a2b3c4d``)
MAX_PART_BYTES = 200
#: the characters a part cut to fit keeps of its end, after "…": where names that share a long start differ (a
#: chapter's number), and where a second section of one name gets its ``-2``
_KEPT_END = 12


def safe_part(part: str) -> str:
    """One path component that every file system accepts, as valid UTF-8; Unicode (日本語) is kept.  A part of more
    than :data:`MAX_PART_BYTES` bytes keeps its start and its end: ``A tale of…chapter 12``."""
    cleaned = _BAD_CHARS.sub("_", readable(part)).strip().rstrip(". ")
    if not cleaned or cleaned in (".", ".."):
        cleaned = "_"
    if cleaned.split(".")[0].lower() in _RESERVED:
        cleaned = "_" + cleaned
    if len(cleaned.encode("utf-8", "replace")) <= MAX_PART_BYTES:
        return cleaned
    end = cleaned[-_KEPT_END:]
    room = MAX_PART_BYTES - len(f"\u2026{end}".encode("utf-8", "replace"))
    return cleaned.encode("utf-8", "replace")[:room].decode("utf-8", "ignore") + "\u2026" + end


#: the most bytes of an output path, suffixes and temporary names aside: Linux takes 4,096, macOS 1,024
MAX_PATH_BYTES = 1000 if sys.platform == "darwin" else 3800


def _within_a_path(output: Path, parts: list[str], name: str) -> list[str]:
    """``parts`` as they are, or, where a chapter lies so deep that its output path would be longer than a system
    takes (``OSError: File name too long`` ended the run), its first folder and its own name with one part that
    stands for the folders between (``…`` and a hash of the whole name, so two such chapters never share it).
    Measured from the folder's real path: the same folder given through a link gives the same names."""
    used = len(os.fsencode(os.path.realpath(output))) + sum(len(part.encode("utf-8")) + 1 for part in parts)
    if used <= MAX_PATH_BYTES or len(parts) < 3:
        return parts
    between = "\u2026" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return [parts[0], between, parts[-1]]


@dataclass(frozen=True)
class SectionFiles:
    """The output paths of one section."""

    base: Path  # out/ch01/part2 (no suffix)

    @classmethod
    def for_section(cls, output: Path, name: str) -> "SectionFiles":
        parts = [safe_part(p) for p in name.split("/") if p]
        return cls(output.joinpath(*_within_a_path(output, parts, name)) if parts else output / "_")

    def sibling(self, suffix: str) -> Path:
        return self.base.with_name(self.base.name + suffix)

    @property
    def description(self) -> Path:
        return self.sibling(".txt")

    @property
    def record(self) -> Path:
        return self.sibling(".json")

    def track(self, fmt: str, take: int = 1) -> Path:
        return self.sibling((f".take{take}" if take > 1 else "") + f".{fmt}")

    def midi(self, take: int = 1) -> Path:
        return self.track("mid", take)

    def artifact(self) -> Path:
        """The stage-1 analysis alone, as readable JSON (--save-artifact)."""
        return self.sibling(".analysis.json")

    @classmethod
    def of_record(cls, record: Path) -> "SectionFiles":
        """The files beside a section's record (``out/ch01/part2.json``)."""
        return cls(record.with_suffix(""))

    # a chapter's score files (manga2music score), beside its record
    @property
    def read_along(self) -> Path:
        return self.sibling(".read.html")

    @property
    def cue_sheet(self) -> Path:
        return self.sibling(".cues.json")

    @property
    def chapters(self) -> Path:
        """The score's chapters as WebVTT."""
        return self.sibling(".score.vtt")


def file_sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def fingerprint(data: Any) -> str:
    """A short stable hash of settings (sorted JSON)."""
    blob = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8", "replace")
    return hashlib.sha256(blob).hexdigest()[:16]


def read_record(path: Path) -> dict | None:
    """The record this tool wrote, or None (missing, unreadable, or not ours)."""
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != TOOL:
        return None
    return data


def is_ours(path: Path, record: dict | None) -> bool:
    """True when ``path`` is missing, or is a file whose hash the record lists (written or about to be)."""
    if not os.path.lexists(path):
        return True
    if record is None or not Path(path).is_file():
        return False
    known = {record.get("files", {}).get(path.name), record.get("pending", {}).get(path.name)} - {None}
    return bool(known) and file_sha256(path) in known


def cannot_read(path: Path) -> Optional[str]:
    """Why an existing file cannot be opened for reading (``Permission denied``), or None: a file of ours made
    unreadable (chmod 000) is said so, not called the user's or changed since it was written."""
    try:
        with open(path, "rb"):
            return None
    except IsADirectoryError:
        return None  # not a file: the callers say what is in the way
    except OSError as exc:
        return exc.strerror or str(exc)


def refuse_theirs(paths, record: dict | None, *, edited: bool = True) -> None:
    """Nothing of the user's is replaced: the files among ``paths`` (about to be written) that exist and that
    ``record`` does not list as ours (:func:`is_ours`) stop their section with one line, the first named and the
    others counted (named one a run, a user moved one, ran again, and met the next).  ``edited=False``: only the
    files that were never ours (one of ours retagged since is refused later, once it is known to be written: a rerun
    with nothing to make leaves it as it is)."""
    files = (record or {}).get("files", {})
    theirs = [path for path in paths if not is_ours(path, record) and (edited or Path(path).name not in files)]
    if not theirs:
        return
    path, more = theirs[0], theirs[1:]
    why = cannot_read(path) if Path(path).is_file() else None
    if why:
        raise Manga2MusicError(f"cannot read {readable(path)} ({why}), so it cannot be told from a file of yours; give "
                               f"read access back (chmod u+r), or choose {another_output()}")
    also = (f" (and {len(more)} more of this section's: {', '.join(Path(p).name for p in more[:3])}"
            f"{', ...' if len(more) > 3 else ''})") if more else ""
    it = "them" if more else "it"
    if record is not None and Path(path).name in record.get("files", {}):  # ours once: edited since
        raise Manga2MusicError(f"{readable(path)} was changed since manga2music wrote it, and this run would replace "
                               f"it{also}; move your version{'s' if more else ''} away (or delete {it}), or choose "
                               f"{another_output()}")
    raise Manga2MusicError(f"{readable(path)} exists and was not written by manga2music{also}; move {it} or choose "
                           f"{another_output()}")


def settle(record: dict, folder: Path) -> dict:
    """Fold the ``pending`` hashes of a killed run into ``files`` where those files did land; drop the rest."""
    pending = record.pop("pending", None)
    if pending:
        files = dict(record.get("files", {}))
        for name, digest in pending.items():
            if file_sha256(folder / name) == digest:
                files[name] = digest
        record["files"] = files
    return record


def new_record(section: str) -> dict:
    return {"tool": TOOL, "version": __version__, "schema": RECORD_SCHEMA, "section": readable(section), "files": {}}


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def write_json_atomic(path: Path, data: Any) -> Path:
    return write_text_atomic(path, to_json(data))


@dataclass
class Staged:
    """New files written in full under hidden temporary names, waiting for :func:`commit`."""

    items: list[tuple[Path, Path, str]] = field(default_factory=list)  # (target, temporary, sha256)
    removals: list[Path] = field(default_factory=list)  # files of ours that the step replaces by nothing

    def add_bytes(self, target: Path, data: bytes) -> str:
        with temp_beside(target) as tmp:
            fill(tmp, data)
        digest = hashlib.sha256(data).hexdigest()
        self.items.append((Path(target), tmp, digest))
        return digest

    def add_written(self, target: Path, write: Callable[[BinaryIO], None]) -> str:
        """:meth:`add_bytes` for a file too big to hold in memory as bytes: ``write(fh)`` fills the temporary file,
        open for reading and writing (``w+b``)."""
        with temp_beside(target) as tmp:
            with open(tmp, "w+b") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
                fh.seek(0)
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
        self.items.append((Path(target), tmp, digest))
        return digest

    def remove(self, target: Path) -> None:
        self.removals.append(Path(target))

    def discard(self) -> None:
        for _, tmp, _ in self.items:
            try:
                tmp.unlink()
            except OSError:
                pass
        self.items.clear()


def folder_key(folder: Path) -> str:
    """Which folder a record was written in, as a record keeps it: a hash of the folder's real path (its path itself
    would name a web UI's temporary folder in the results it hands over, and the user's folders in a record shared)."""
    import hashlib

    return hashlib.sha256(os.fsencode(os.path.realpath(folder))).hexdigest()[:16]


def commit(record_path: Path, record: dict, staged: Staged, updates: dict) -> dict:
    """Put ``staged`` files in place and write ``record`` + ``updates``, in the kill-safe order (module doc).

    Returns the record now on disk.  All staged files must sit next to ``record_path``.
    """
    folder = record_path.parent
    try:
        for target, _, _ in staged.items:
            if target.parent != folder:
                raise ValueError(f"{target} is not beside {record_path}")
        if staged.items:
            pending = dict(record.get("pending", {}))
            pending.update({target.name: digest for target, _, digest in staged.items})
            write_json_atomic(record_path, {**record, "pending": pending})
        known = record.get("files", {})
        for target, tmp, digest in staged.items:
            if known.get(target.name) == digest and target.is_file() and file_sha256(target) == digest:
                os.unlink(tmp)  # the same bytes: the file stays as it was (its time too: an editing program that
                continue  # watches it does not import it again)
            os.replace(tmp, target)
    except BaseException:
        staged.discard()
        raise
    for target in staged.removals:
        try:
            target.unlink()
        except FileNotFoundError:
            pass
    files = {k: v for k, v in record.get("files", {}).items() if folder / k not in staged.removals}
    files.update({target.name: digest for target, _, digest in staged.items})
    new = {k: v for k, v in {**record, **updates}.items() if k != "pending"}
    new["files"] = files
    new["folder"] = folder_key(folder)  # where it was written: one copied or moved is told (output_names)
    write_json_atomic(record_path, new)
    staged.items.clear()
    return new


# ---------------------------------------------------------------- the manifest and the listening page


def check_output_is_ours(output: Path, *, page: bool) -> None:
    """Before any work: a ``manifest.json`` (or, when ``page``, an ``index.html``) that we did not write
    stops the run with one line, so nothing of the user's is replaced."""
    manifest_path = output / MANIFEST
    manifest = read_record(manifest_path)
    from .options import on_command_line

    how = f"move it away, or choose another folder with -o (e.g. -o {readable(output)}-music)" if on_command_line() \
        else f"move it away, or choose another output folder (e.g. {readable(output)}-music)"
    if manifest_path.exists() and manifest is None:
        if _damaged_json(manifest_path):  # emptied or cut short (a disk that filled, a copy stopped midway)
            raise OutputError(f"{readable(manifest_path)} is empty or damaged (no JSON manga2music can read)",
                              hint=f"if manga2music wrote it, delete it and {LISTENING_PAGE}: the run lists the "
                                   f"sections it is given again, and keeps their music; else {how}")
        raise OutputError(f"{readable(manifest_path)} was not written by manga2music; it would be replaced", hint=how)
    if page and (output / LISTENING_PAGE).exists() and not is_ours(output / LISTENING_PAGE, manifest):
        if not manifest_path.exists():  # deleted: what says the page is ours went with it
            raise OutputError(f"{readable(output / LISTENING_PAGE)} is not listed in a manifest.json (there is none: "
                              "deleted?), so it may be yours; the listening page would replace it",
                              hint="if it is manga2music's own listening page, delete it (the run writes it again); "
                                   f"else {how}")
        raise OutputError(f"{readable(output / LISTENING_PAGE)} was not written by manga2music; the listening page "
                          "would replace it", hint=how)


def _damaged_json(path: Path) -> bool:
    """Whether ``path`` holds no JSON at all: empty, blank, or cut short (another tool's JSON is not damaged)."""
    try:
        json.loads(Path(path).read_bytes().decode("utf-8", "replace"))
    except ValueError:
        return True
    except OSError:
        return False
    return False


def has_our_page(output: Path, manifest: dict | None) -> bool:
    """Whether ``output`` has a listening page that ``manifest`` (the one on disk) says we wrote."""
    return (output / LISTENING_PAGE).is_file() and is_ours(output / LISTENING_PAGE, manifest)


def _pages_gone(output: Path, entry: dict, members: dict | None = None) -> bool:
    """Whether none of the pages the entry's record was made from is where it was read any more: its file gone, or,
    for a page of a zip (a .cbz volume), its entry gone from the zip (a chapter folder removed from its volume
    archive was listed as made from pages still there).  ``members``: the zips' entry names, read once a call."""
    rec = entry.get("record")
    record = read_record(output / rec) if isinstance(rec, str) else None
    pages = (record or {}).get("pages")
    if not isinstance(pages, list) or not pages:
        return False
    members = {} if members is None else members
    for page in pages:
        if not isinstance(page, dict) or not isinstance(page.get("path"), str):
            return False
        raw = page.get("path_bytes")
        try:
            path = bytes.fromhex(raw) if isinstance(raw, str) else os.fsencode(page["path"])
        except ValueError:
            return False
        if not os.path.lexists(path):
            continue
        member = page.get("member")
        if not isinstance(member, str) or _zip_names(path, members) is None or member in _zip_names(path, members):
            return False  # there (or an archive whose entries are not read here: taken as there)
    return True


def _zip_names(path: bytes, members: dict) -> set | None:
    """The entry names of the zip at ``path`` (None: not a zip, or unreadable), kept in ``members``."""
    if path not in members:
        import zipfile

        try:
            with zipfile.ZipFile(os.fsdecode(path)) as zf:
                members[path] = set(zf.namelist())
        except (OSError, zipfile.BadZipFile, ValueError):
            members[path] = None
    return members[path]


#: a manifest entry's keys that only the commands that make music write (``describe`` keeps them as they were)
MUSIC_KEYS = ("tracks", "midi", "music_model", "seed", "cue_sheet", "read_along", "chapters", "run_tracks",
              "run_midi", "score_tracks", "score_midi")


#: `run` and `score` into one folder: the music the other command made of a section, listed beside its own
OTHER_COMMANDS_LISTS = ("run_tracks", "run_midi", "score_tracks", "score_midi")


def _other_commands_music(before: dict, *, scoring: bool) -> dict:
    """What an entry of ``score`` (``scoring``) or of ``run``/``compose`` keeps of ``before``, the section's entry
    until now: the other command's music (``run_tracks``/``run_midi`` in a score's entry; ``score_tracks``,
    ``score_midi`` and the cue sheet, read-along page and chapters in a track's)."""
    was_score = before.get("command") == "score" if "command" in before else \
        "cue_sheet" in before and "score_tracks" not in before  # an entry written before entries named it
    if scoring:
        return ({"run_tracks": before.get("run_tracks", []), "run_midi": before.get("run_midi", [])} if was_score
                else {"run_tracks": before.get("tracks", []), "run_midi": before.get("midi", [])})
    if was_score:
        return {"score_tracks": before.get("tracks", []), "score_midi": before.get("midi", []),
                **{k: before.get(k) for k in ("cue_sheet", "read_along", "chapters")}}
    return {k: before[k] for k in ("score_tracks", "score_midi", "cue_sheet", "read_along", "chapters") if k in before}


def in_reading_order(entries: list[dict]) -> list[dict]:
    """Manifest entries in the order they are listed: by their names, or where their pages come when their files
    kept another name (``read_as``), a series' title the names all begin with left out (:func:`reading_keys`)."""
    def read_as(entry: dict) -> str:
        name = entry.get("read_as")
        return name if isinstance(name, str) and name else str(entry["name"])

    keys = reading_keys(read_as(e) for e in entries)
    return sorted(entries, key=lambda e: keys[read_as(e)])


def merged_manifest(output: Path, entries: list[dict], *, command: str) -> tuple[dict, dict]:
    """(the manifest on disk or a new one, the manifest after merging this run's entries by section name)."""
    old = read_record(output / MANIFEST)
    if old is None:
        if (output / MANIFEST).exists():
            raise OutputError(f"{readable(output / MANIFEST)} was not written by manga2music; it would be replaced",
                              hint=f"move it away, or choose {another_output()}")
        old = {"tool": TOOL, "files": {}}
    settle(old, output)
    members: dict = {}  # the zips named by the entries' pages: their entry names, read once
    by_name = {e["name"]: e for e in old.get("sections", []) if isinstance(e, dict) and "name" in e}
    for name, entry in list(by_name.items()):  # an earlier run's section: its pages renamed, moved or deleted since
        entry.pop("pages_gone", None)  # (said on the page), or its files deleted (it is dropped)
        if isinstance(entry.get("record"), str) and not (output / entry["record"]).exists():
            del by_name[name]
        elif entry.get("status") == "failed" and not entry.get("record") and not entry.get("tracks") \
                and isinstance(entry.get("source"), str) and not os.path.lexists(entry["source"]):
            del by_name[name]  # an archive that could not be read, deleted since (a bad download): nothing of it
            # is here, and it stayed "failed" on the page for good
        elif _pages_gone(output, entry, members):
            entry["pages_gone"] = True
    for entry in entries:
        before = by_name.get(entry["name"])
        if command == "describe" and before:  # describe makes no music: the music there stays listed, as the
            entry = {**entry, **{k: before[k] for k in MUSIC_KEYS if k in before}}  # entry of the command that made it
            entry["command"] = before.get("command", entry["command"])
            if entry.pop("music_outdated", None) or before.get("music_outdated"):
                entry["music_outdated"] = True
        elif before:
            entry = {**entry, **_other_commands_music(before, scoring=command == "score")}
        if before and "read_as" in before and "read_as" not in entry:  # `run "S/Vol 1"` after `run S`: its name is
            entry = {**entry, "read_as": before["read_as"]}  # read in the whole library's order, as that run said
        by_name[entry["name"]] = entry
    for entry in by_name.values():  # an entry of an earlier run never names a file that is gone (a stopped run had
        # replaced it with another format, or a user removed it)
        for key in ("tracks", "midi", *OTHER_COMMANDS_LISTS):
            if isinstance(entry.get(key), list):
                entry[key] = [f for f in entry[key] if isinstance(f, str) and (output / f).exists()]
                if key in OTHER_COMMANDS_LISTS and not entry[key]:
                    del entry[key]
        for key in ("description", "cue_sheet", "read_along", "chapters"):  # a description: a user deleted it
            if isinstance(entry.get(key), str) and not (output / entry[key]).exists():
                entry[key] = None
        if isinstance(entry.get("analysis"), str) and not (output / entry["analysis"]).exists():
            del entry["analysis"]  # --save-artifact's, deleted since
    manifest = {
        "tool": TOOL,
        "version": __version__,
        "updated": now_iso(),
        "command": command,
        "sections": in_reading_order(list(by_name.values())),
        "this_run": [e["name"] for e in entries],
    }
    return old, manifest


def write_manifest(output: Path, old: dict, manifest: dict, page_html: str | None = None) -> dict:
    """Write the manifest (and the listening page, when given) in the kill-safe order; return what is on disk."""
    staged = Staged()
    if page_html is not None:
        if not is_ours(output / LISTENING_PAGE, old):
            raise OutputError(f"{readable(output / LISTENING_PAGE)} was not written by manga2music",
                              hint=f"move it away, or choose {another_output()}")
        staged.add_bytes(output / LISTENING_PAGE, page_html.encode("utf-8", "replace"))
    return commit(output / MANIFEST, old, staged, manifest)


def update_manifest(output: Path, entries: list[dict], *, command: str) -> dict:
    """Merge this run's section entries into ``out/manifest.json`` and write it (no listening page)."""
    old, manifest = merged_manifest(output, entries, command=command)
    return write_manifest(output, old, manifest)


def stopped_for(stopped, names: list[str], names_key: str = "sections") -> dict | None:
    """``stopped`` (a manifest's ``stopped_with``) where it is of the sections ``names`` to make: all of them among
    those the stopped command left (or it names none: written before 2026-12-07), else None."""
    if not isinstance(stopped, dict):
        return None
    left = stopped.get(names_key)
    if isinstance(left, list) and not set(names) <= set(left):
        return None
    return stopped
