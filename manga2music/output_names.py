"""Which name each section writes under in an output folder that already holds records.

A section's outputs are named after its folder (``ch1.wav``), numbered when two PATHs of one run give the same name
(``ch1-2.wav``).  Names alone would let the folders behind them swap between runs: ``run b/ch1 a/ch1`` after
``run a/ch1 b/ch1`` would write b over a's files, and ``run b/ch1`` alone would too.  So a name already in the
output folder stays with the source its record was made from (the folder, archive or PDF its pages came from):

1. a section takes the name whose record was made from its own source (its files of the last run);
2. else the first of ``ch1``, ``ch1-2``, ... that no other source holds.  A name whose source is gone from the disk
   and from this run is free: that is a chapter moved or renamed, and its record is the moved chapter's (a rerun
   finds its pages unchanged and redoes nothing).

Records without pages (``compose`` of a description file) hold no source.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Callable

from .outputs import SectionFiles, read_record
from .sections import Section, output_key, page_container


def record_source(output: Path, name: str) -> str | None:
    """The source the record of ``name`` in ``output`` was made from, or None (no record, or no pages in it)."""
    record = read_record(SectionFiles.for_section(output, name).record)
    pages = (record or {}).get("pages")
    if not isinstance(pages, list) or not pages or not isinstance(pages[0], dict):
        return None
    first = pages[0]
    if not isinstance(first.get("path"), str):
        return None
    return page_container(first["path"], first.get("member"), first.get("pdf_index"))


def claim_names(sections: list[Section], output: Path, note: Callable[[str], None] = lambda message: None) -> None:
    """Give each section the output name that keeps its files apart from every other source's (see the module
    docstring); ``note`` hears about a section written under a new number because its name is another's."""
    holders: dict[str, str | None] = {}

    def holder(name: str) -> str | None:
        if name not in holders:
            holders[name] = record_source(output, name)
        return holders[name]

    in_run = {s.source for s in sections}
    taken: set[str] = set()
    for section in sections:
        base = section.given_name or section.name
        mine = section.source

        def candidates():
            return (n for n in itertools.chain([base], (f"{base}-{k}" for k in itertools.count(2)))
                    if output_key(n) not in taken)

        def free(name: str) -> bool:
            other = holder(name)
            return other is None or other == mine or (other not in in_run and not os.path.exists(other))

        own = None
        for n in candidates() if mine is not None else ():  # its files of an earlier run: ch1, ch1-2... up to
            if holder(n) in (mine, None):  # the first name no source holds
                own = n if holder(n) == mine else None
                break
        name = own or next(n for n in candidates() if free(n))
        if own is None and name != base and holder(base) not in (None, mine):
            note(f"{base} from {mine}: written as {name} ({base} in the output folder is from {holder(base)})")
        taken.add(output_key(name))
        section.name = name
