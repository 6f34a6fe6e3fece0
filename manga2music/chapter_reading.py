"""A chapter as the score sees it: every page's reading, and (with a chat model) its entries and direction.

:func:`read_chapter` reuses the record's readings when the pages and the describer are
unchanged; otherwise the builtin describer makes them while describing the chapter, and
a chat model reads the pages in chunks (one entry per page, then the chapter's direction:
:mod:`manga2music.describers.chapter`) beside the builtin reader, which times them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Optional

from .cache import made_by
from .describers.base import Describer
from .describing import describer_seed, none_decoded, page_key, page_stream, readable_pages, still_undecodable
from .errors import Manga2MusicError
from .files import readable
from .jobs import Callbacks, SectionJob
from .options import RunConfig
from .outputs import fingerprint, now_iso
from .pages import PageInfo, PageStream
from .reading import READING_MODEL_VERSION, PageReading, renamed
from .sections import Section


def _readings_pass(section: Section, infos: list[PageInfo], cb: Callbacks) -> list[PageReading]:
    """Readings of every page with the builtin reader (for describers that do not make them)."""
    from .reading import iter_groups, iter_readings

    stream = PageStream(infos, max_side=1280)
    readings = []
    for name, outcome in iter_readings(iter_groups(stream)):
        if isinstance(outcome, Exception):
            cb.warn(f"{section.name}: no reading for page {name}: {outcome}")
            continue
        readings.append(outcome)
    return readings


@dataclass(frozen=True)
class ChapterUnit:
    """What the score times and cuts into scenes: a page, or one part of a tall strip (a webtoon episode saved as
    one image is read in page-shaped parts, and scenes may start inside it)."""

    reading: PageReading  # the page's reading, or the part's own (named "strip.png#3")
    page: int  # 0-based index of its page among the chapter's readings (the pages that could be read)
    part: Optional[int] = None  # 1-based part of a tall strip, top to bottom (None: a whole page)
    parts: int = 1  # how many parts its page is read in
    number: int = 0  # its page's number in the chapter, 1 for the first page found (a page that could not be read
    # keeps its number: 004.png stays page 4 when 002.png is damaged)

    @property
    def name(self) -> str:
        return self.reading.name


def chapter_units(readings: list[PageReading], numbers: Optional[list[int]] = None) -> list[ChapterUnit]:
    """The chapter's pages in order, each tall strip replaced by its parts.  ``numbers``: each reading's page
    number in the chapter (default: 1, 2, 3...)."""
    units = []
    for i, reading in enumerate(readings):
        number = numbers[i] if numbers else i + 1
        parts = reading.part_readings()
        if len(parts) > 1:
            units += [ChapterUnit(part, i, k, len(parts), number) for k, part in enumerate(parts, start=1)]
        else:
            units.append(ChapterUnit(reading, i, number=number))
    return units


@dataclass
class ChapterReading:
    readings: list[PageReading]
    infos: list[PageInfo]
    describe: dict  # what the record keeps of this reading (its "chapter_reading", see earlier_reading)
    description: str  # the chapter as a whole, in one paragraph
    fresh: bool  # made now (False: reused from the record)
    #: the names of every page of the chapter, in order, read or not: what page numbers count (a scenes file's
    #: "4", the cue sheet's pages)
    page_names: list[str]

    @property
    def numbers(self) -> list[int]:
        """Each reading's page number in the chapter (1-based, counting pages that could not be read)."""
        position = {name: k for k, name in enumerate(self.page_names, start=1)}
        return [position.get(r.name, i + 1) for i, r in enumerate(self.readings)]

    @cached_property
    def units(self) -> list[ChapterUnit]:
        """Its pages, each tall strip in parts: what scenes are made of (see :class:`ChapterUnit`)."""
        return chapter_units(self.readings, self.numbers)


def read_chapter(section: Section, job: SectionJob, describer: Describer, cfg: RunConfig,
                 cb: Callbacks, memo=None) -> Optional[ChapterReading]:
    """The chapter's per-page readings and overall description, reused when pages and describer are unchanged;
    ``memo``: where a chat model's answers are kept until the score is written (:mod:`manga2music.answer_memo`)."""
    infos = readable_pages(section, job, cb)
    if infos is None:
        return None
    skipped = job.skipped_pages
    from .describers.chapter import SCORE_PROMPT_VERSION

    key = fingerprint({"pages": [page_key(i) for i in infos], "describer": describer.settings_key(),
                       "reading": READING_MODEL_VERSION,
                       "score_prompts": SCORE_PROMPT_VERSION if _is_chat(describer) else None,
                       # a strip's parts are read since 2026-11-30: a chapter with a strip is read again, once
                       **({"parts": 1} if any(i.tiles > 1 for i in infos) else {})})
    old = earlier_reading(job.record)
    old_readings = (old.get("features") or {}).get("readings")
    if not cfg.force and old.get("fingerprint") == key and old_readings:
        readings = [PageReading.from_dict(d) for d in old_readings]
        if len(readings) == len(infos):  # the same pixels in the same order: named as the pages are now (renamed
            # since, the cue sheet kept naming files that were gone); a page that did not decode keeps the old way
            readings = [renamed(r, info.page.name) for r, info in zip(readings, infos)]
        names = {r.name for r in readings}
        still_undecodable(section, job, infos, cb)
        description = old.get("description", job.record.get("description"))
        return ChapterReading(readings, [i for i in infos if i.page.name in names], old, str(description or ""),
                              fresh=False, page_names=[p.name for p in section.pages])
    if isinstance(job.record.get("chapter_reading"), dict) and old.get("fingerprint") and not cfg.force:  # read
        # by a score before (not `run`'s reading, which a first score does not take): say what changed, as run does
        from .describing import describer_change, left_as_it_was, page_changes

        listed = bool(job.record.get("pages"))  # a score stopped before it was written lists none: every page
        # was "added"
        why = (page_changes(job, infos) if listed else []) + describer_change(old, describer)
        cb.info(f"{section.name}: reading the pages again: " + ("; ".join(why) or (
                "its pages changed since its last score (a run read them since), or the way they are read did"
                if listed else "its pages, or the way they are read, changed since the score stopped before it "
                "was written"))  # it said "its version changed"
                + left_as_it_was(job, infos, "describe"))
    if _is_chat(describer):
        return _read_chapter_with_chat(section, job, describer, infos, skipped, key, cb, memo)
    stream = page_stream(section, infos, describer, job.output, cb)
    started = time.perf_counter()
    try:
        result = describer.describe(stream, progress=cb.step)
    except Manga2MusicError:
        none_decoded(job, stream.skipped, len(infos), skipped)
        raise
    if stream.skipped:
        gone = {s["source"] for s in stream.skipped}
        infos = [i for i in infos if i.page.source not in gone]
        job.skipped_pages = skipped + stream.skipped
    features = result.features or {}
    if features.get("readings"):
        readings = [PageReading.from_dict(d) for d in features["readings"]]
    else:
        readings = _readings_pass(section, infos, cb)
        features = {**features, "readings": [r.to_dict() for r in readings]}
    if not readings:
        job.fail(f"no page of {section.name} could be read", cb)
        return None
    names = {r.name for r in readings}
    infos = [i for i in infos if i.page.name in names]
    entry = {"model": describer.model_name, "model_id": describer.model_id, "fingerprint": key,
             "settings": describer.settings_key(), "seed": describer_seed(describer), **made_by(describer),
             "prompt_version": result.prompt_version,
             "analysis": result.analysis.model_dump() if result.analysis else None,
             "features": features, "usage": result.usage, "cost_usd": result.cost_usd, "warnings": result.warnings,
             "seconds": round(time.perf_counter() - started, 3), "at": now_iso()}
    return ChapterReading(readings, infos, entry, readable(result.description).strip(), fresh=True,
                          page_names=[p.name for p in section.pages])


def earlier_reading(record: dict) -> dict:
    """What ``score`` read of the chapter last time (its record's ``chapter_reading``, kept apart from ``run``'s and
    ``describe``'s ``describe``, so that neither command takes the other's reading for a change of pages).  Records
    made before 2026-12-02 kept it in ``describe``: the key the caller compares tells whose it is."""
    reading = record.get("chapter_reading")
    if isinstance(reading, dict):
        return reading
    describe = record.get("describe")
    return describe if isinstance(describe, dict) and (describe.get("features") or {}).get("readings") else {}


def usage_cost(describer, usage: dict | None) -> float | None:
    """What ``usage`` cost in USD, when the describer knows its prices and the tokens are known."""
    estimate = getattr(describer, "_estimate_cost", None)
    return estimate(usage) if usage is not None and estimate is not None else None


def _is_chat(describer: Describer) -> bool:
    return bool(getattr(describer, "chats", False))  # also a chat model on Ray workers (a stand-in here)


def _read_chapter_with_chat(section: Section, job: SectionJob, describer, infos: list[PageInfo], skipped: list,
                            key: str, cb: Callbacks, memo=None) -> Optional[ChapterReading]:
    """A chat model reads the pages (one entry each, then the chapter's direction); the builtin reader times them."""
    from .describers.chapter import SCORE_PROMPT_VERSION, chapter_direction, page_entries
    from .reading import source_name

    started = time.perf_counter()
    describer.new_section()
    readings = _readings_pass(section, infos, cb)
    if not readings:
        job.fail(f"no page of {section.name} could be read", cb)
        return None
    names = {r.name for r in readings}
    infos = [i for i in infos if i.page.name in names]
    stream = PageStream(infos, max_side=describer.page_side)
    warnings: list[str] = []

    def warn(line: str) -> None:
        if line in warnings:  # once a chapter (the server's lack of structured output: said of each answer)
            return
        warnings.append(line)
        if line in describer.run_wide_warnings:  # of the server, not the chapter: once a run, as `run` says it
            cb.warn_once(line)
        else:
            cb.warn(f"{section.name}: {line}")

    tile_entries, usage = page_entries(describer, stream, len(stream), progress=cb.step, memo=memo, warn=warn)
    entries: dict[str, dict] = {}
    for e in tile_entries:  # the tiles of a tall strip speak for one page: its first tile's scene change, the
        page = source_name(e["name"])  # highest intensity
        if page in entries:
            entries[page]["intensity"] = max(entries[page]["intensity"], e["intensity"])
        else:
            entries[page] = {**e, "name": page}
    direction, usage = chapter_direction(describer, list(entries.values()), usage, memo=memo, warn=warn)
    # one entry per unit of the score: a page, or each part of a tall strip (its tile's own entry)
    by_tile = {e["name"]: e for e in tile_entries}
    ordered = [by_tile.get(u.name, entries.get(u.name)) or {"name": u.name, "mood": "neutral", "intensity": 1,
                                                            "scene_change": False, "why": ""}
               for u in chapter_units(readings)]
    description = (f"A chapter score in {direction.key} for {', '.join(direction.instruments)}, "
                   f"{direction.tempo_low}-{direction.tempo_high} BPM.")
    entry = {"model": describer.model_name, "model_id": describer.model_id, "fingerprint": key,
             "settings": describer.settings_key(), "seed": describer_seed(describer), **made_by(describer),
             "prompt_version": SCORE_PROMPT_VERSION, "analysis": None,
             "features": {"readings": [r.to_dict() for r in readings], "page_entries": ordered,
                          "direction": direction.model_dump()},
             "usage": usage, "cost_usd": usage_cost(describer, usage), "warnings": warnings,
             "seconds": round(time.perf_counter() - started, 3),
             "at": now_iso()}
    job.skipped_pages = skipped + stream.skipped
    return ChapterReading(readings, infos, entry, description, fresh=True, page_names=[p.name for p in section.pages])
