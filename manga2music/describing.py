"""The describe stage: read a section's pages, ask the describer, write the description and the record.

Reuses what is on disk when the pages and the describer's settings are unchanged,
and keeps a description the user wrote or edited.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .cache import made_by
from .describers.base import Describer
from .errors import ArchiveError, BackendError, Manga2MusicError, PageError
from .files import readable
from .jobs import Callbacks, SectionJob, each_section, read_description, read_edited_description
from .options import RunConfig, flag, switch
from .outputs import Staged, file_sha256, fingerprint, is_ours, now_iso, to_json
from .pages import PageInfo, PageStream, probe_page
from .progress import report
from .sections import Section


def probe_pages(section: Section, cb: Callbacks) -> tuple[list[PageInfo], list[dict]]:
    """Hash every page and read its size, decoding nothing (what resume compares); unreadable pages are skipped.
    Raises :class:`ArchiveError` when the pages' archive cannot be unpacked at all."""
    infos, skipped, pdf_hashes = [], [], {}
    for i, page in enumerate(section.pages):
        report(cb.step, i, len(section.pages), f"reading {page.name}")
        try:
            infos.append(probe_page(page, pdf_hashes=pdf_hashes))
            if infos[-1].pages_held > 1:
                cb.warn(f"{section.name}: {page.name} holds {infos[-1].pages_held} pages (a multi-page TIFF); in a "
                        "RAR, 7-Zip or compressed tar archive only its first is read: unpack the archive (a TIFF's "
                        "pages are then read one by one)")
        except ArchiveError:  # the whole archive: the section fails with this one line (see readable_pages)
            raise
        except PageError as exc:
            skipped.append({"name": page.name, "source": page.source, "error": exc.message})
            cb.skipped_page(section.name, page.name, exc.message)
    report(cb.step, len(section.pages), len(section.pages), "pages read")
    return infos, skipped


def page_entry(info: PageInfo) -> dict:
    from .files import exact_bytes_hex

    page = info.page
    entry = {"name": page.name, "source": page.source, "path": readable(os.path.realpath(page.path)),
             "member": readable(page.member) if page.member is not None else None,
             "pdf_index": page.pdf_index, "sha256": info.sha256, "size": list(info.size), "tiles": info.tiles}
    if page.frame is not None:
        entry["frame"] = page.frame  # a page of a multi-page TIFF (0-based); sha256 is the whole file's
    if page.alone:
        entry["given_alone"] = True  # given by itself, not with its folder: the record's name stays with this file
    if info.orientation != 1:
        entry["orientation"] = info.orientation  # the EXIF turn it was read with; "size" is after it
    raw = exact_bytes_hex(Path(os.path.realpath(page.path)))
    if raw:
        entry["path_bytes"] = raw  # the exact bytes of a name that is not UTF-8
    raw = exact_bytes_hex(page.member) if page.member is not None else None
    if raw:
        entry["member_bytes"] = raw  # the same for a name in an archive (a tar packed with Latin-1 names)
    return entry


def page_stream(section: Section, infos: list[PageInfo], describer: Describer, output: Path,
                cb: Callbacks) -> PageStream:
    """The pages as the describer wants them (decoded one at a time, at its ``page_side``), thumbnails on the way.
    Pages about to be read: the composer's warm-up starts (:func:`~manga2music.execution.work_ahead`)."""
    from .execution import work_ahead
    from .thumbnails import save_thumbnail

    work_ahead()

    def decoded(info: PageInfo, first_tile) -> None:
        save_thumbnail(output, info.sha256, info.page.index, first_tile, info.orientation)

    def skipped(info: PageInfo, why: str) -> None:
        cb.skipped_page(section.name, info.page.name, why)

    return PageStream(infos, max_side=describer.page_side, on_decoded=decoded, on_skip=skipped)


def _artifact(job: SectionJob, analysis: dict | None, chunks: list, cfg: RunConfig, cb: Callbacks,
              staged: Staged) -> None:
    """Stage NAME.analysis.json (--save-artifact) unless a file of the user's is in its place.  Without it (or
    without an analysis: --single-stage), one written before is removed: it was of the pages as they were, and the
    record and manifest went on naming it beside the new words."""
    path = job.files.artifact()
    if not cfg.save_artifact or analysis is None:
        if path.exists() and is_ours(path, job.record):
            staged.remove(path)
        if cfg.save_artifact:
            cb.warn(f"{job.name}: {flag('save_artifact')}: no {path.name}, as no analysis of the pages was made "
                    f"({_single_stage_words()})")
        return
    if not is_ours(path, job.record):
        cb.warn(f"{job.name}: not writing {path.name}: a file of yours is there (move it to get the analysis)")
        return
    staged.add_bytes(path, to_json({"section": job.name, "analysis": analysis, "chunks": chunks}).encode("utf-8"))


def page_key(info: PageInfo) -> str:
    """What identifies a page's pixels for resume (:attr:`PageInfo.key`)."""
    return info.key


def describe_key(pages: list[str], describer_settings) -> str:
    """What a description was made from: its pages (:func:`page_key`) and the describer's settings."""
    return fingerprint({"pages": pages, "describer": describer_settings})


@dataclass
class DescribeWork:
    """What describing one section needs from a describer (its pages, probed here) and what it will record."""

    infos: list[PageInfo]
    skipped: list[dict]
    key: str  # the describe fingerprint


def readable_pages(section: Section, job: SectionJob, cb: Callbacks) -> Optional[list[PageInfo]]:
    """The section's pages that can be read (the others in ``job.skipped_pages``); ``None``, with the job failed
    in one line, when the section itself or every page of it cannot be read."""
    if section.error:
        job.fail(section.error, cb)
        return None
    if section.pages and not os.path.lexists(section.origin):  # not a line for each of its pages, then "none read"
        job.fail(f"{readable(section.origin)} is gone (moved or deleted since the run started)", cb)
        return None
    try:
        infos, skipped = probe_pages(section, cb)
    except ArchiveError as exc:
        job.fail(exc.message, cb)
        return None
    job.skipped_pages = skipped
    if not infos:
        job.fail(no_readable_page(len(section.pages), skipped), cb)
        return None
    return infos


def none_decoded(job: SectionJob, undecoded: list[dict], readable: int, skipped: list[dict]) -> None:
    """After the describer failed on ``readable`` pages (``skipped`` did not open): the pages that opened but did
    not decode (``undecoded``: a PNG cut short) go to the record's skipped pages, and where that was every page,
    the failure is said as :func:`readable_pages` says it (it was "none of the pages could be measured", and
    ``score``'s manifest, and any on Ray, listed none of them)."""
    if undecoded:
        job.skipped_pages = [*(job.skipped_pages or []), *undecoded]
        if len(undecoded) >= readable:
            raise BackendError(no_readable_page(readable + len(skipped), [*skipped, *undecoded])) from None


def _saved_again(txt: Path, job: SectionJob) -> bool:
    """Our description saved again by an editor with its words unchanged (other line ends, a byte-order mark, a
    last line end added): still ours, its new bytes taken as the ones written.  It was kept as the user's words for
    good, so pages replaced later were never described again."""
    words = (job.record.get("describe") or {}).get("words")
    if not words or txt.name not in job.record.get("files", {}):
        return False
    try:
        if fingerprint(read_description(txt)) != words:
            return False
    except (Manga2MusicError, OSError):
        return False  # not text, or not readable: what the user's words would be is said as for theirs
    job.record["files"] = {**job.record["files"], txt.name: file_sha256(txt)}
    return True


def no_readable_page(count: int, skipped: list[dict]) -> str:
    """The line for a section none of whose ``count`` pages could be read, with the first reasons."""
    reasons = "; ".join(s["error"] for s in skipped[:2])
    return f"no readable page among {count}" + (f" ({reasons})" if reasons else "")


def plan_describe(section: Section, job: SectionJob, describer: Describer, cfg: RunConfig,
                  cb: Callbacks) -> Optional[DescribeWork]:
    """Everything before the model: probe the pages, then keep, reuse or fail; ``None`` when no model call is needed."""
    infos = readable_pages(section, job, cb)
    if infos is None:
        return None
    skipped = job.skipped_pages
    pages = [page_key(info) for info in infos]
    key = describe_key(pages, describer.settings_key())
    txt = job.files.description
    old = job.record.get("describe", {})
    if txt.exists() and not is_ours(txt, job.record) and not _saved_again(txt, job):
        job.description = read_edited_description(txt, cb.warn)
        job.status = "skipped"
        made = job.record.get("compose") or {}
        if made.get("takes") and isinstance(made.get("description"), str) and made["description"] != job.description:
            job.music_outdated = True  # the user's words, beside the music of the ones before: said on the page
        listed = job.record.get("pages") == [page_entry(info) for info in infos]  # by a rerun before this one
        changed = describe_key(pages, old.get("settings")) != old.get("fingerprint") if old else \
            isinstance(job.record.get("pages"), list)  # words written before its pages were read: listed since
        if not listed and (changed or not old):  # the record now lists the pages the section's music is for (once:
            # each rerun wrote it again, "ok" for good); words written before the section had pages (a chapter's
            # words written ahead, a hand-added section) list them now, for a change to be seen
            cb.warn(f"{section.name}: {readable(txt)} was written or edited by you, and the pages have changed since "
                    f"it was {'described' if old else 'kept'}; keeping it (delete it to describe these pages)"
                    if changed else f"{section.name}: {readable(txt)} was written by you before these pages were "
                    "read; keeping it (delete it to describe them)")
            infos = _decodable(section, job, infos, cb)
            job.commit(Staged(), {"pages": [page_entry(info) for info in infos], "skipped_pages": job.skipped_pages})
            if changed and cfg.save_artifact and not job.files.artifact().exists():
                cb.warn(f"{section.name}: {flag('save_artifact')}: no {job.files.artifact().name}, as these pages were not "
                        f"analysed ({readable(txt.name)} is yours; delete it to describe and analyse them)")
        else:
            cb.warn(f"{section.name}: {readable(txt)} was written or edited by you; keeping it")
            _artifact_on_a_rerun(section, job, infos, cfg, cb)
        return None
    if not cfg.force and txt.exists() and old.get("fingerprint") == key and not _cut_otherwise(job, infos):
        job.description = read_description(txt)
        job.status = "skipped"
        relocate_pages(job, infos)
        _artifact_on_a_rerun(section, job, infos, cfg, cb)
        if job.record.get("skipped_pages", []) != job.skipped_pages:  # a bad page removed, or bad pages added: the
            job.note({"skipped_pages": job.skipped_pages})  # record lists those of now, as the manifest does
        return None
    if old.get("fingerprint") and not cfg.force and txt.exists():  # described before: say what changed
        cb.info(f"{section.name}: describing again: {describe_changes(job, infos, describer)}"
                + left_as_it_was(job, infos, "score"))
    elif old.get("fingerprint") and not cfg.force:  # deleted, as the line for an emptied description tells a user to
        cb.info(f"{section.name}: describing again: {readable(txt.name)} is gone")
    return DescribeWork(infos, skipped, key)


def _artifact_on_a_rerun(section: Section, job: SectionJob, infos: list[PageInfo], cfg: RunConfig,
                         cb: Callbacks) -> None:
    """A section described before, its pages as they were: its pages that did not decode said again, and
    --save-artifact written from the record's analysis (or said why not)."""
    still_undecodable(section, job, infos, cb)
    artifact, old = job.files.artifact(), job.record.get("describe") or {}
    if not cfg.save_artifact or (artifact.exists() and is_ours(artifact, job.record)
                                 and _artifact_analysis(artifact) == old.get("analysis")):
        return
    if old.get("analysis") is None:
        single = (old.get("settings") or {}).get("single_stage") if isinstance(old.get("settings"), dict) else None
        again = (f"{switch('single_stage', False)} {switch('force', True)}" if single else switch('force', True))
        cb.warn(f"{section.name}: {flag('save_artifact')}: no {artifact.name}, as its record holds no analysis of the "
                f"pages (describe them again with {again} to have one)")
        return
    staged = Staged()
    _artifact(job, old.get("analysis"), old.get("chunks", []), cfg, cb, staged)
    if staged.items:
        job.commit(staged, {})


def _artifact_analysis(path: Path):
    """The analysis NAME.analysis.json holds (None where it cannot be read): one older than the record's words is
    written again from the record (--save-artifact kept one of pages since changed)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("analysis")
    except (OSError, ValueError, AttributeError):
        return None


def _single_stage_words() -> str:
    return f"{switch('single_stage', True)} asks for the description directly; {switch('single_stage', False)} makes one"


def _decodable(section: Section, job: SectionJob, infos: list[PageInfo], cb: Callbacks) -> list[PageInfo]:
    """``infos`` less the pages that do not decode (a JPEG cut short), added to ``job.skipped_pages`` and said.
    Only the pages new or changed since the record are decoded: the others decoded when they were described."""
    from .pages import decode_page

    known = {(p.get("source"), p.get("sha256")) for p in job.record.get("pages") or [] if isinstance(p, dict)}
    readable_infos, skipped = [], list(job.skipped_pages or [])
    for info in infos:
        if (info.page.source, info.sha256) not in known:
            try:
                decode_page(info, max_side=256)
            except PageError as exc:
                cb.skipped_page(section.name, info.page.name, exc.message)
                skipped.append({"name": info.page.name, "source": info.page.source, "error": exc.message})
                continue
        readable_infos.append(info)
    job.skipped_pages = skipped
    return readable_infos


def _names(names: list[str], what: str) -> str:
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"{len(names)} page{'s' if len(names) != 1 else ''} {what} ({shown})"


def describe_changes(job: SectionJob, infos: list[PageInfo], describer: Describer) -> str:
    """Why a section described before is described again, as a user would say it: its pages added, removed or
    changed since, or another describer or settings."""
    why = page_changes(job, infos) + describer_change(job.record.get("describe") or {}, describer)
    if not why and job.record.get("score"):
        why.append("its record holds `score`'s reading of the pages, not this command's")
    return "; ".join(why) or "its record is from an older version"


def describer_change(old: dict, describer: Describer) -> list[str]:
    """Another describer than the one that made the reading ``old`` (a record's ``describe`` or
    ``chapter_reading``), or its settings changed, in words; ``[]`` when neither."""
    from .outputs import fingerprint

    if old.get("model") and old.get("model") != describer.model_name:
        return [f"describer {old.get('model')} \u2192 {describer.model_name}"]
    if fingerprint(old.get("settings")) != fingerprint(describer.settings_key()):
        return ["the describer's settings changed" + _changed_settings(old.get("settings"), describer.settings_key())]
    return []


def _cut_otherwise(job: SectionJob, infos: list[PageInfo]) -> list[str]:
    """The section's PDF pages its record says were read in another number of tiles: a tall strip saved as one PDF
    page was read as one sliver before 2026-12-06, and is cut into page-sized tiles now."""
    recorded = {(p.get("sha256"), p.get("pdf_index")): p.get("tiles")
                for p in job.record.get("pages") or [] if isinstance(p, dict)}
    return [i.page.name for i in infos if i.page.pdf_index is not None
            and isinstance(tiles := recorded.get((i.sha256, i.page.pdf_index)), int) and tiles != i.tiles]


def page_changes(job: SectionJob, infos: list[PageInfo]) -> list[str]:
    """The section's pages added, removed, renamed, changed or mended since its record was written, in words."""
    pages = [p for p in job.record.get("pages") or [] if isinstance(p, dict)]
    skipped = [s for s in job.record.get("skipped_pages") or [] if isinstance(s, dict)]
    # pages told apart by their names in the section (a chapter folder moved or renamed keeps them: its pages are
    # not "renamed 001.jpg -> 001.jpg"), or by where they were where a name is missing or given twice
    names = [p.get("name") for p in pages] + [s.get("name") for s in skipped]
    by_name = all(isinstance(n, str) for n in names) and len(set(names)) == len(names) \
        and len({i.page.name for i in infos}) == len(infos)
    key = "name" if by_name else "source"
    before = {p.get(key): p for p in pages}
    unreadable = {s.get(key) for s in skipped}
    now = {(info.page.name if by_name else info.page.source): info for info in infos}
    new = {src: info for src, info in now.items() if src not in before and src not in unreadable}
    gone = {src: p for src, p in before.items() if src not in now}
    renamed = []  # a page gone and a page added with the same bytes: one page under another name
    for src, info in list(new.items()):
        old = next((o for o, p in gone.items() if p.get("sha256") == info.sha256), None)
        if old is not None:
            renamed.append(f"{gone.pop(old).get('name') or old} \u2192 {info.page.name}")
            del new[src]
    added = [info.page.name for info in new.values()]
    broken_now = {s.get(key) for s in job.skipped_pages or [] if isinstance(s, dict)}  # there, and unreadable now
    broken = [str(p.get("name") or src) for src, p in gone.items() if src in broken_now]
    removed = [str(p.get("name") or src) for src, p in gone.items() if src not in broken_now]
    changed = [info for src, info in now.items() if src in before and info.sha256 != before[src].get("sha256")]
    pictures = {p.get("sha256") for p in pages if p.get("pdf_index") is None}  # (a PDF's pages: the file's hash)
    reordered = [info.page.name for info in changed if info.sha256 in pictures]  # files swapped: the same pictures
    changed = [info.page.name for info in changed if info.sha256 not in pictures]
    mended = [info.page.name for src, info in now.items() if src not in before and src in unreadable]
    said = [_names(names, what) for names, what in ((added, "added"), (removed, "removed"), (renamed, "renamed"),
                                                   (reordered, "in another order"), (changed, "changed"),
                                                   (mended, "now readable"), (broken, "no longer readable")) if names]
    if not said and [p.get(key) for p in pages] != [src for src in now if src in before]:  # the same pages in
        said.append("its pages are in another order")  # another order (an EPUB's reading order mended)
    tiled = _cut_otherwise(job, infos)
    if tiled:
        said.append(_names(tiled, "read in page-sized tiles now (a tall strip in a PDF)"))
    return said


def relocate_pages(job: SectionJob, infos: list[PageInfo]) -> None:
    """A section whose pages are as described (the same bytes in the same order) but renamed or moved since (a
    chapter folder renamed, the library moved): its record is made to locate them where they are now, so that a
    recorded path keeps finding what the music was made from.  Nothing is described or composed again."""
    pages = [p for p in job.record.get("pages") or [] if isinstance(p, dict)]
    unused = list(infos)  # in reading order: of two pages with the same bytes, the first recorded is the first
    moved = []
    for entry in pages:
        info = next((i for i in unused if i.key == _recorded_key(entry)), None)
        if info is None:
            return  # not the pages the record lists (cannot be, as the fingerprint matched): left as it is
        unused.remove(info)
        now = page_entry(info)
        moved.append({**{k: v for k, v in entry.items() if k not in _WHERE}, **{k: now[k] for k in _WHERE if k in now}})
    if moved != pages:
        job.note({"pages": moved, **_renamed_in_chunks(job.record, pages, moved)})  # the record follows the pages


def _renamed_in_chunks(record: dict, before: list[dict], now: list[dict]) -> dict:
    """The record's ``describe`` with its chunks' page names as the pages are named now (``{}`` if none changed): a
    chapter's pages renamed (001.png to p01.png) kept their old names there, beside the new ones in ``pages``.  A
    tall strip's parts (``x.png#2``) follow their page."""
    renamed = {b.get("name"): n.get("name") for b, n in zip(before, now) if b.get("name") != n.get("name")}
    described = record.get("describe")
    if not renamed or not isinstance(described, dict) or not isinstance(described.get("chunks"), list):
        return {}

    def now_named(name):
        if not isinstance(name, str):
            return name
        page, mark, part = name.rpartition("#") if "#" in name and name not in renamed else (name, "", "")
        return f"{renamed.get(page, page)}{mark}{part}"

    chunks = [{**c, "pages": [now_named(n) for n in c["pages"]]} if isinstance(c, dict)
              and isinstance(c.get("pages"), list) else c for c in described["chunks"]]
    return {"describe": {**described, "chunks": chunks}} if chunks != described["chunks"] else {}


#: what in a record's page entry says where the page is (the rest says what it is)
_WHERE = ("name", "source", "path", "member", "pdf_index", "frame", "path_bytes")


def _recorded_key(entry: dict) -> str:
    """:attr:`PageInfo.key` of a record's page entry."""
    from .pages import pixels_key

    index = entry.get("pdf_index") if entry.get("pdf_index") is not None else entry.get("frame")
    return pixels_key(str(entry.get("sha256")), index, entry.get("orientation", 1))


def pages_key(entries) -> str:
    """What a record's page entries are, as pictures (renamed or moved pages are the same pages): recorded with
    the music made of them, to tell music of pages changed since (:func:`of_pages_before`)."""
    return fingerprint([_recorded_key(e) for e in entries if isinstance(e, dict)])


def of_pages_before(record: dict, part: str) -> bool:
    """Whether the record's ``"score"`` or ``"describe"`` (which `run`'s track was made from) is of other pages than
    the record's pages now: `run` or `score` read changed pages since, and left the other command's music as it was.
    False where it cannot be told (made before 2026-12-06: no ``pages_key``), and for a track of the user's own
    words (kept for the pages now: `run` would keep them)."""
    made = record.get(part)
    pages = record.get("pages")
    if not isinstance(made, dict) or not isinstance(pages, list) or not made.get("pages_key"):
        return False
    if part == "describe":
        composed = (record.get("compose") or {}).get("description")
        if not isinstance(composed, str) or fingerprint(composed) != made.get("words"):
            return False  # composed from other words than the model's (the user's), or not composed
    return made["pages_key"] != pages_key(pages)


def left_as_it_was(job: SectionJob, infos: list[PageInfo], part: str) -> str:
    """The words that say the other command's music (``part``: ``"score"``, or ``"describe"`` for `run`'s track)
    stays of the pages before, once this command has read ``infos``; "" when it is of these pages, or not there."""
    made = job.record.get("score" if part == "score" else "compose") or {}
    if not (made.get("outputs") if part == "score" else made.get("takes")):
        return ""
    if not of_pages_before({**job.record, "pages": [page_entry(i) for i in infos]}, part):
        return ""
    return (" (its chapter score stays of the pages before: `manga2music score` makes it again)" if part == "score"
            else " (its track stays of the pages before: `manga2music run` makes it again)")


def describer_seed(describer: Describer):
    """The seed a describer that samples (a local VLM, a server) read with, for the record: its --seed, or the one
    drawn for this section (:func:`section_seed`; a local VLM).  It says how to ask again, but it is not part of
    what decides whether to describe again (a run that adds --seed for another take of the music would pay for the
    pages again)."""
    from .describers.chat import sampling_seed

    return sampling_seed(describer) if getattr(describer, "chats", False) else None


def draws_seeds(describer: Describer) -> bool:
    """Whether the describer samples here (a local VLM) without a --seed: it reads each section with a drawn one."""
    return bool(getattr(describer, "samples_here", False)) and getattr(describer.options, "seed", None) is None


def section_seed(describer: Describer, memo=None) -> Optional[int]:
    """The seed to read one section with when no --seed was given and the model samples here (a local VLM), for
    :func:`~manga2music.describers.chat.drawn_seed`: the one kept with the section's answers by a run that did not
    finish (``memo``), else a new one; ``None``: the describer does not draw one."""
    if not draws_seeds(describer):
        return None
    if memo is not None:
        return memo.drawn_seed()
    import random

    from .answer_memo import DRAWN_SEEDS

    return random.SystemRandom().randrange(DRAWN_SEEDS)


def _changed_settings(before, now) -> str:
    """"chunk_size 8 → 2, detail": which of the describer's settings differ."""
    if not isinstance(before, dict) or not isinstance(now, dict):
        return ""
    keys = [k for k in dict.fromkeys([*before, *now]) if before.get(k) != now.get(k)]
    shown = [f"{k} {before[k]} → {now[k]}" if isinstance(before.get(k), (int, float, str, bool))
             and isinstance(now.get(k), (int, float, str, bool)) else k for k in keys[:3]]
    return f" ({', '.join(shown)})" if shown else ""


def still_undecodable(section: Section, job: SectionJob, infos: list[PageInfo], cb: Callbacks) -> None:
    """Pages that hash but do not decode (a JPEG cut short) are found only while describing; a rerun that skips
    describing (the same pages, byte for byte) lists and says them again from the record, as it does the pages it
    cannot even hash."""
    here = {info.page.source: info.page.name for info in infos}
    said = {s["source"] for s in job.skipped_pages or []}
    again = [s for s in job.record.get("skipped_pages") or []
             if isinstance(s, dict) and s.get("source") in here and s.get("source") not in said]
    for entry in again:
        cb.skipped_page(section.name, here[entry["source"]], entry.get("error"))
    job.skipped_pages = list(job.skipped_pages or []) + again


def commit_describe(job: SectionJob, work: DescribeWork, result, describer: Describer, cfg: RunConfig,
                    cb: Callbacks, seconds: float, decode_skipped: list[dict] = ()) -> None:
    """Write what the describer returned for ``work`` (.txt, record, --save-artifact) in the kill-safe order.

    ``decode_skipped``: pages that could be hashed but not decoded while describing (not part of what was described).
    """
    infos, skipped = work.infos, work.skipped
    if decode_skipped:
        skipped = skipped + list(decode_skipped)
        job.skipped_pages = skipped
        gone = {s["source"] for s in decode_skipped}
        infos = [info for info in infos if info.page.source not in gone]
        if not infos:
            job.fail(f"no readable page among {len(infos) + len(skipped)}", cb)
            return
    description = readable(result.description).strip()
    if not description:
        job.fail("the describer returned an empty description", cb)
        return
    analysis = result.analysis.model_dump() if result.analysis else None
    chunks = [c.model_dump() for c in result.chunks]
    named = too_little_music(description) if describer.chats else None
    if named:
        result.warnings.append(NO_MUSIC_WORDS.format(names=named, model=describer.model_name,
                                                     file=job.files.description.name))
    staged = Staged()
    staged.add_bytes(job.files.description, (description + "\n").encode("utf-8"))
    _artifact(job, analysis, chunks, cfg, cb, staged)
    pages = [page_entry(info) for info in infos]
    job.commit(staged, {
        "pages": pages,
        "skipped_pages": skipped,
        "describe": {
            "model": describer.model_name,
            "model_id": describer.model_id,
            "fingerprint": work.key,
            "settings": describer.settings_key(),
            "seed": describer_seed(describer),
            **made_by(describer),
            # what it was made of, and its words (of_pages_before: a track of the user's words is not the model's)
            "pages_key": pages_key(pages), "words": fingerprint(description),
            "prompt_version": result.prompt_version,
            "analysis": analysis,
            "chunks": chunks,
            "features": result.features,
            "usage": result.usage,
            "cost_usd": result.cost_usd,
            "warnings": result.warnings,
            "seconds": round(seconds, 3),
            "at": now_iso(),
        },
        "description": description,
    })
    job.description = description
    if describer.chats:  # what the model got wrong (a description cut off, fields it did not give) is heard, not
        for warning in result.warnings:  # only kept in the record (the builtin describer says its own as it reads)
            if warning in describer.run_wide_warnings:
                cb.warn_once(warning)
            else:
                cb.warn(f"{job.name}: {warning}")


def describe_section(section: Section, job: SectionJob, describer: Describer, cfg: RunConfig, cb: Callbacks) -> None:
    """Describe one section (or reuse its description) and write .txt + .json: plan, model call, commit."""
    work = plan_describe(section, job, describer, cfg, cb)
    if work is None:
        return
    stream = page_stream(section, work.infos, describer, job.output, cb)
    memo = answer_memo(job, "run", describer, cfg)
    started = time.perf_counter()
    from .describers.chat import drawn_seed

    with drawn_seed(section_seed(describer, memo)):  # the record names the seed it was read with
        try:
            result = describer.describe(stream, progress=cb.step, **({"memo": memo} if memo else {}))
        except Manga2MusicError as error:
            none_decoded(job, stream.skipped, len(work.infos), work.skipped)
            forget_a_failed_take(error, describer, memo)
            raise
        said_reused(job, memo, cb)
        commit_describe(job, work, result, describer, cfg, cb, time.perf_counter() - started, stream.skipped)
    if memo is not None and job.status != "failed":
        memo.forget()


def forget_a_failed_take(error: Exception, describer: Describer, memo) -> None:
    """A section (or chapter) whose model's answer could not be used (:class:`~manga2music.errors.AnswerUnusableError`),
    read with a seed drawn for it (a local VLM without --seed): its seed and kept answers are forgotten, so that the
    rerun asks again with a new one.  The rerun sampled with the kept seed, got the same answer, and failed alike
    at every rerun (`--force` was the only way on).  A stop, or a failure that is not the answer's (memory), keeps
    them: the rerun goes on with what was asked."""
    from .errors import AnswerUnusableError

    if memo is not None and isinstance(error, AnswerUnusableError) and draws_seeds(describer):
        memo.forget()


def answer_memo(job: SectionJob, command: str, describer: Describer, cfg: RunConfig):
    """Where a chat model's answers for this section are kept until its files are written (``None``: a describer
    that does not chat); ``--force`` asks every question again."""
    if not getattr(describer, "chats", False):
        return None
    from .answer_memo import AnswerMemo

    memo = AnswerMemo(job.output, command, job.name, describer)
    if cfg.force:
        memo.forget()
    return memo


def said_reused(job: SectionJob, memo, cb: Callbacks) -> None:
    """Say on screen how many answers an earlier run had paid for (not asked again; their tokens still count in the
    record's usage, which is what the description cost)."""
    if memo is not None and memo.reused:
        n = memo.reused
        cb.info(f"{job.name}: {n} answer{'s' if n != 1 else ''} the model gave a run that did not finish "
                f"{'were' if n != 1 else 'was'} used, not asked again")


#: said (and kept in the record's warnings) of a chat model's answer that names nothing a composer plays from: a
#: small or badly quantised model that captions the page ("The image shows a manga page with two girls talking")
#: or answers word salad made music from it, "ok"
NO_MUSIC_WORDS = ("the description {names}: {model} may not be following the prompt (its words are kept and composed "
                  "from; edit {file}, or try a larger model)")


#: words that only a description of music uses, beside the builtin composer's table (which lacks many a style and
#: instrument a chat model names: a tango with bandoneon, a march on snare drums, Gregorian chant, taiko)
_MUSIC_VOCABULARY = re.compile(
    r"(?<![a-z])(?:music(?:al)?|song|melod(?:y|ies|ic)|tune|rhythm(?:ic)?|beats?|drum(?:s|ming)?|percussi(?:on|ve)|"
    r"chords?|harmon(?:y|ies|ic)|tempo|bpm|instrument(?:s|al)?|ensemble|choir|chant|hymn|anthem|march|waltz|"
    r"tango|bolero|requiem|sonata|fugue|riff|groove|bassline|staccato|legato|crescendo|pizzicato|arpeggi(?:o|os|ated)|"
    r"ostinato|synth\w*|taiko|snare|cymbals?|gong|bells?|bandoneon|accordion|horns?|strings?|brass|woodwinds?|"
    r"vocals?|singing|sung|soundtrack|lullaby|ballad|overture|fanfare|motif|refrain)"
    r"(?![a-z])|音楽|曲|旋律|メロディ|リズム|伴奏|演奏|楽器|和音|太鼓|合唱|歌", re.IGNORECASE)


def music_words(description: str) -> list[str]:
    """The words of ``description`` a composer plays from (the builtin composer's table: genre, instrument, tempo,
    key, mood, in English or Japanese), or else the words only music is described with."""
    from .music.text_to_style import parse_style

    return parse_style(description).words or [m.group(0) for m in _MUSIC_VOCABULARY.finditer(description)]


def too_little_music(description: str) -> Optional[str]:
    """How ``description`` names too little music to be a model's answer to the prompt (for :data:`NO_MUSIC_WORDS`),
    or None: no music word at all, or one or two in word salad, which a model that is not following the prompt
    writes, holding a mood word now and then ("Concord todd Angels Bone incubated UX stations lazy Norris Eden ...").
    Salad is told from prose by its lack of the little words every English sentence has ("the", "a", "for", "of"):
    a prose description may name its music in one or two words ("A tense, suspenseful piece for the scene ...")."""
    found = sorted(set(music_words(description)))
    if not found:
        return "names no genre, instrument, tempo, key or mood"
    words = re.findall(r"[a-z']+", description.lower())
    if len(found) < 3 and len(words) >= SALAD_WORDS and sum(w in FUNCTION_WORDS for w in words) * 20 < len(words):
        return f"names almost no music (only {', '.join(map(repr, found))} among {len(description.split())} words)"
    return None


#: the fewest words a text must have to be told word salad (:func:`too_little_music`): a short answer without
#: little words is a list of styles ("Epic orchestral, taiko drums"), not salad
SALAD_WORDS = 12
#: English's commonest little words, which prose holds one word in a few of, and word salad drawn from a model's
#: vocabulary hardly ever (fewer than one in 20 words: salad)
FUNCTION_WORDS = frozenset("the a an of and or to in on at for with as by from is are was be that this it its his her "
                           "their while when where into over under through".split())


def page_payload(work: DescribeWork, page_side: Optional[int]) -> list[bytes | str]:
    """The pages as they travel to a describer in another process (``--ray``): their file bytes (PDF pages
    rendered once, at ``page_side``, as PNG); the worker decodes them with :class:`~manga2music.pages.PageStream`.
    A page that can no longer be read as probed (deleted or changed since) travels as why: a skipped page there."""
    from .pages import travel_bytes

    def payload(info) -> bytes | str:
        try:
            return travel_bytes(info, page_side)
        except PageError as exc:
            return exc.message

    return [payload(info) for info in work.infos]


def describe_sections(sections: list[Section], output: Path, describer: Describer, cfg: RunConfig,
                      cb: Callbacks, jobs: Optional[list] = None) -> list[SectionJob]:
    """Describe every section with one describer, then free its memory (before any composer loads); each job is
    added to ``jobs`` as it starts (see :func:`~manga2music.jobs.each_section`)."""
    try:
        return each_section(sections, output, cb, "describing", "described",
                            lambda section, job: describe_section(section, job, describer, cfg, cb), jobs)
    finally:
        describer.close()


