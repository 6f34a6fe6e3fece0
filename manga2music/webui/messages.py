"""What the web UI says: errors in its own words, warnings without temporary paths or Python internals.

The library's messages are written for the command line: they name paths the
user typed and flags the user can pass.  In the UI the paths are temporary
copies of the uploads and there are no flags, so every message goes through
:func:`scrub` (and errors through :func:`for_user`) before it is shown.
"""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path
from typing import Iterable

from ..errors import InputError, Manga2MusicError, NeedsKeyError
from ..jobs import failed_line
from ..sections import ARCHIVE_NAMES


class Markdown(str):
    """Text the UI wrote as Markdown (its own hints); everything else is shown as plain text (:func:`shown`)."""


def shown(text: str | None) -> str:
    """``text`` as plain text inside the page's Markdown: names of chapters and pages come from the uploads (a
    folder inside a zip can be called ``<img src=https:host>`` or ``Chapter <i>2``), and Gradio's sanitizer keeps
    such an image (the browser would fetch it from that host) and the italics (the rest of the status in them).
    HTML's ``& < >`` become entities and Markdown's punctuation is escaped; :class:`Markdown` is kept as it is."""
    if not text:
        return ""
    if isinstance(text, Markdown):
        return str(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_PUNCTUATION.sub(r"\\\g<0>", text)


def code(text: str) -> str:
    """``text`` as a Markdown code span, fenced with more backticks than it holds (a name may hold some)."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


#: what Markdown reads as emphasis, code, links, images, headings, tables or strikethrough
_MARKDOWN_PUNCTUATION = re.compile(r"[\\`*_\[\]#!|~]")

#: the warnings the status lists, first first (then how many more)
WARNINGS_SHOWN = 10
UPLOAD_HINT = ("Upload page images (PNG, JPEG, WebP, AVIF, GIF, BMP or TIFF), or a comic archive "
               f"({ARCHIVE_NAMES}), .pdf or .epub that holds them.")
KEY_HINT = Markdown("Stop `manga2music ui` and start it again with the key set, e.g. "
                    "`OPENAI_API_KEY=sk-... manga2music ui`, or pick another vision model.")
CLI_ONLY = Markdown("that setting is not in the web UI: use `manga2music run` on the command line")

_OBJECT_REPR = re.compile(r"\s*<[^<>\n]*\bobject at 0x[0-9a-fA-F]+>")
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")
#: "(UnidentifiedImageError: ...)", "(OSError)": exception class names mean nothing to a user
_PYTHON_DETAIL = re.compile(r"\s*\((?:[A-Za-z_][\w.]*(?:Error|Exception|Warning)|BadZipFile)\b:?[^()]*\)")
_FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")
#: the flags the page has as settings of its own, by the names it shows them under
UI_NAMES = {"--scenes": "Scenes", "--longest-cue": "Longest cue", "--reading-speed": "Reading speed",
            "--seed": "Seed", "--duration": "Duration", "--transitions continue": "Bridges between scenes",
            "--transitions": "Bridges between scenes", "--single-stage": "Mode single-stage",
            "--vision-model": "Vision model", "--music-model": "Music model", "--format": "Format"}
_PATH_TAIL = r"(?:[/\\][^/\\!:;,'\"<>\n]+)*[/\\]?"  # a folder may be named "page #1" or "ch(1)"


def _path_pattern(roots: Iterable[str | Path]) -> re.Pattern | None:
    variants: set[str] = set()
    for root in roots:
        text = str(root).rstrip("/\\")
        if text:
            variants |= {text, str(Path(text).resolve())}
    if not variants:
        return None
    alternatives = "|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))
    return re.compile(f"(?:{alternatives})(?P<rest>{_PATH_TAIL})")


def _short_path(match: re.Match) -> str:
    rest = match.group("rest")
    core = rest.rstrip()
    parts = [p for p in re.split(r"[/\\]", core) if p.strip()]
    return (parts[-1].strip() if parts else "uploads") + rest[len(core):]


def scrub(text: str | None, hidden: Iterable[str | Path] = ()) -> str:
    """``text`` with each path under ``hidden`` cut to its last part, and Python internals removed."""
    if not text:
        return ""
    pattern = _path_pattern(hidden)
    if pattern is not None:
        text = pattern.sub(_short_path, text)
    text = _OBJECT_REPR.sub("", text)
    text = _PYTHON_DETAIL.sub("", text)
    text = _ERRNO.sub("", text)
    return " ".join(text.split())


#: the command line's advice to give an extracted folder, as the page can take it: its files (a folder is no upload)
_GIVE_FOLDER = re.compile(r"\b(?:and )?give (?:the|its) folder(?: too)?")


def _ui_names(text: str) -> str:
    """``text`` with the flags the page has named as the page names them, and its advice to give a folder (which no
    upload is) as the page takes what a folder holds: its files."""
    for flag, name in UI_NAMES.items():
        text = re.sub(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", name, text)
    return _GIVE_FOLDER.sub("and upload the files it holds", text)


def for_user(exc: Manga2MusicError, hidden: Iterable[str | Path], upload_names: list[str]) -> Manga2MusicError:
    """The same kind of error, said in the UI's terms (no temporary paths, no flags the UI lacks)."""
    hidden = list(hidden)
    message, hint = _ui_names(scrub(exc.message, hidden)), _ui_names(scrub(exc.hint, hidden)) or None
    if isinstance(exc, InputError) and exc.message.startswith("no pages found in "):
        from ..sections import SOURCE_EXTENSIONS, source_suffix

        dotted = [n for n in upload_names if n.startswith(".") and not n.startswith("._")]  # not a Mac's ._page.jpg
        if dotted and len(dotted) == len(upload_names):  # it was "none of the uploads is an image" of a PNG
            one = len(dotted) == 1
            return InputError(f"no page found in the uploads: {_names(dotted)} "
                              f"{'is a hidden file (its name starts' if one else 'are hidden files (their names start'}"
                              " with a dot), and hidden files are not read",
                              f"rename {'it' if one else 'them'} without the dot to read {'it' if one else 'them'}")
        books = [n for n in upload_names if source_suffix(n) in SOURCE_EXTENSIONS]
        if books:  # an archive holding no image is an archive all the same ("empty.zip is no comic archive")
            return InputError(f"no page found in the uploads ({_names(upload_names)}): "
                              f"{_names(books)} {'holds' if len(books) == 1 else 'hold'} no image", UPLOAD_HINT)
        return InputError(f"none of the uploads ({_names(upload_names)}) is an image, a comic archive, a .pdf or "
                          "an .epub",
                          UPLOAD_HINT)
    if isinstance(exc, NeedsKeyError):
        hint = KEY_HINT
    elif hint and "--base-url" in hint:  # the page's server address is OPENAI_BASE_URL's, read when it starts
        hint = Markdown("stop `manga2music ui` and start it again with the server's address, e.g. "
                        "`OPENAI_BASE_URL=http://localhost:11434/v1 manga2music ui` (a server's API address usually "
                        "ends in /v1)")
    elif message.startswith("Scenes gives the scenes of one chapter"):
        hint = "upload that chapter alone, or empty the Scenes box"
    elif hint and _FLAG.search(hint):
        hint = Markdown(f"{shown(hint)} ({CLI_ONLY})")
    elif not hint and _FLAG.search(message):  # a section's reason with its advice inline ("Try --chunk-size ...")
        hint = Markdown(f"{CLI_ONLY[:1].upper()}{CLI_ONLY[1:]}.")
    return type(exc)(message, hint)


def _names(names: list[str], most: int = 3, sep: str = ", ") -> str:
    shown = sep.join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def no_readable_page(skipped: list[str]) -> str:
    """The error when every upload was looked at and none is a page (``skipped``: 'fake.png: not a readable image')."""
    return f"none of the uploaded files is a readable image ({_names(skipped, sep='; ')})"


def run_warnings(log: list[tuple[str, str]], hidden: Iterable[str | Path], failed: Iterable[str] = ()) -> list[str]:
    """Warnings worth showing, scrubbed; skipped pages and the ``failed`` sections are shown from the manifest
    instead."""
    hidden = list(hidden)
    failures = tuple(failed_line(name, "") for name in failed)
    shown: list[str] = []
    for level, message in log:
        if (level != "warning" or message.startswith("Skipping ") and not message.endswith(": no pages in it")
                or ": skipping page " in message
                or ": skipping more pages " in message or message.startswith(failures)):
            continue
        text = _ui_names(scrub(message, hidden))  # the page's own names for its settings, as errors are said
        if text and text not in shown:
            shown.append(text)
    return shown


def scrub_manifest(manifest: dict, hidden: Iterable[str | Path]) -> dict:
    """A copy of ``manifest`` whose messages and skipped pages name no temporary folder."""
    hidden = list(hidden)
    sections = []
    for entry in manifest.get("sections", []):
        entry = dict(entry, message=scrub(entry.get("message"), hidden) or None)
        if entry.get("source"):  # a part that could not be read: its upload's name, not the server's copy
            entry["source"] = scrub(entry["source"], hidden)
        entry["skipped_pages"] = [dict(p, source=scrub(p.get("source"), hidden), error=scrub(p.get("error"), hidden))
                                  for p in entry.get("skipped_pages") or []]
        sections.append(entry)
    return dict(manifest, sections=sections)


# ------------------------------------------------------------------ what the page shows


def error_markdown(exc: Manga2MusicError) -> str:
    """One message: what went wrong and how to fix it."""
    message = exc.message
    first = re.match(r"[^\s:,(]*", message).group(0)
    if first.isalpha() and first.islower() and first != "builtin" \
            and not message[len(first):].startswith("://"):  # a word, not a model name (gpt-4o-mini, a Hub id) nor
        message = message[:1].upper() + message[1:]  # a server's address ("Http://127.0.0.1:8080/v1 rejected ...")
    message = shown(message.rstrip("."))
    return f"**Error:** {message}.\n\n{shown(exc.hint)}" if exc.hint else f"**Error:** {message}."


def bug_markdown(exc: BaseException) -> str:
    """An error that is not the user's: say so, and where the details are."""
    return (f"**Something went wrong inside manga2music** ({shown(scrub(str(exc))) or exc.__class__.__name__}).\n\n"
            "This is a bug: the terminal running `manga2music ui` shows the details; please report it.")


def _clock(seconds) -> str:
    total = int(round(float(seconds or 0)))
    return f"{total // 60}:{total % 60:02d}"


def status_markdown(result) -> str:
    """What was made, from which models and seed, what was skipped, and where everything is."""
    entries = result.entries
    ok = [e for e in entries if e.get("status") != "failed"]
    pages = sum(int(e.get("pages") or 0) for e in ok)
    first = ok[0] if ok else {}
    tracks = sum(len(e.get("tracks") or []) for e in ok)
    head = f"Made {tracks} track{'s' if tracks != 1 else ''}" if tracks else "Made the description"
    scenes = getattr(result, "scenes", None) or []
    counts = {}  # scenes per chapter scored, in order
    for scene in scenes:
        counts[scene.get("chapter")] = counts.get(scene.get("chapter"), 0) + 1
    if len(counts) == 1:
        head = f"Made a chapter score of {len(scenes)} scene{'s' if len(scenes) != 1 else ''}"
    elif counts:
        each = set(counts.values())
        head = f"Made {len(counts)} chapter scores " + (f"of {len(scenes) // len(counts)} scene"
                                                        f"{'s' if len(scenes) != len(counts) else ''} each"
                                                        if len(each) == 1 else f"({len(scenes)} scenes in all)")
    if len(ok) < len(entries):
        head += f" ({len(ok)} of {len(entries)} parts)"
    bits = [f"**{head}** from {pages} page{'s' if pages != 1 else ''}",
            f"{first.get('vision_model') or '-'} → {first.get('music_model') or '-'}"]
    if len(ok) == 1 and first.get("seed") is not None:
        bits.append(f"seed {first['seed']}")
    lines = [" · ".join(bits)]
    for entry in entries if len(entries) > 1 else []:
        if entry.get("status") == "failed":
            lines.append(f"- {shown(entry['name'])}: nothing made ({shown(scrub(entry.get('message')))})")
        else:
            seed = f" · seed {entry['seed']}" if entry.get("seed") is not None else ""
            count = int(entry.get("pages") or 0)
            lines.append(f"- {shown(entry['name'])}: {count} page{'s' if count != 1 else ''}{seed}")
    if tracks > 1 and getattr(result, "audio", None) is not None:
        lines.append(f"- the player plays {code(result.audio.name)}; the other tracks are in Downloads, and all of them "
                     "on the zip's listening page")
    for entry in entries:
        for skipped in entry.get("skipped_pages") or []:
            lines.append(f"- skipped {shown(scrub(skipped.get('error')))}")
    if getattr(result, "scenes", None):
        from ..cuesheet import scene_span

        several = len(counts) > 1
        sheets = "the scores' cue sheets; the read-along pages are" if several else \
            "the score's cue sheet; the read-along page is"
        lines.append(f"\n**Scenes** ({sheets} in the zip: unzip it and open the `.read.html` file):")
        for sc in result.scenes:
            if several and sc["index"] == 1:
                lines.append(f"\n**{shown(scrub(sc['chapter']))}**\n")
            pages = scene_span(sc)
            loops = sc.get("cue_s") is not None and sc["cue_s"] < sc["duration"]
            lines.append(f"{sc['index']}. {shown(scrub(sc['title']))}: {shown(pages)}, {_clock(sc['start'])}-{_clock(sc['end'])}, "
                         f"{round(sc['tempo_bpm'])} BPM" + (f", {_a_number(round(sc['cue_s'], 1))} s cue that loops"
                                                            if loops else ""))
    lines += [f"- {shown(w)}" for w in result.warnings[:WARNINGS_SHOWN]]
    if len(result.warnings) > WARNINGS_SHOWN:  # the rest went unsaid (the first ones, and a count was not given)
        more = len(result.warnings) - WARNINGS_SHOWN
        lines.append(f"- and {more} more warning{'s' if more != 1 else ''}")
    if result.archive is not None:
        lines.append(f"\n{code(result.archive.name)} holds everything, with a listening page (index.html) "
                     f"to open in a browser. Download what you want to keep: the results are deleted after "
                     f"{_kept_for()}, or when the server stops, and a reload of this page clears it.")
    return "\n".join(lines)


def _kept_for() -> str:
    """How long the server keeps a run's results: "an hour", "2 hours", "30 minutes"."""
    from .run import KEEP_RESULTS_S

    hours, minutes = divmod(round(KEEP_RESULTS_S / 60), 60)
    if minutes:
        return f"{hours * 60 + minutes} minutes"
    return "an hour" if hours == 1 else f"{hours} hours"


def _a_number(n: float) -> str:
    """"a 7", "an 8", "an 11", "a 7.5" (a cue of 7.5 s was "an 8 s cue"): the article as the number is said."""
    shown = f"{n:g}"
    return f"{'an' if shown.startswith('8') or int(n) in (11, 18) else 'a'} {shown}"


def log_for_server(exc: BaseException, *, expected: bool) -> None:
    """The server's terminal: one line for an error the user caused; the traceback for a bug or with debug on."""
    from ..settings import debug_enabled

    if expected and not debug_enabled():
        text = exc.message if isinstance(exc, Manga2MusicError) else str(exc)
        print(f"manga2music UI: shown to the user: {scrub(text)}", file=sys.stderr, flush=True)
        return
    traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.flush()
