"""Which name each section writes under in an output folder that already holds records.

A section's outputs are named after its folder (``ch1.wav``), numbered when two PATHs of one run give the same name
(``ch1-2.wav``).  Names alone would let the folders behind them swap between runs: ``run b/ch1 a/ch1`` after
``run a/ch1 b/ch1`` would write b over a's files, and ``run b/ch1`` alone would too.  So a name already in the
output folder stays with the source its record was made from (the folder, archive or PDF its pages came from):

1. a section takes the name whose record was made from its own source (its files of the last run): its name,
   numbered or not, or an archive's or PDF's other form (``Ch 1.cbz`` while a folder ``Ch 1`` was beside it,
   ``Ch 1`` before), or its name less the folders above (``Chapter 1`` for ``Vol 10/Chapter 1``, as ``run
   "S/Vol 10/Chapter 1"`` named it); a record whose name differs only in case holds the name too (``Ch 1.json``
   for ``ch 1``);
2. else the files its source made under another name (listed in the manifest), or else those of a source gone from
   the disk whose pages it has (at least half of them): a chapter folder renamed since (``Chapter 9`` to
   ``Chapter 09``) keeps its files, its seed and its music, under the name they have, and ``note`` says so;
3. else the first of ``ch1``, ``ch1-2``, ... that no other source holds.  A name whose source is not in this run is
   free when that source is gone from the disk (a chapter moved) or when at least half of the pages its record
   lists are among this section's (a copy of the chapter, with the output folder copied beside it): its record is
   this chapter's, and a rerun that finds the pages unchanged redoes nothing.

Records without pages hold no source, except music composed from words given as ``--text`` or from a description
file elsewhere: those words are the user's, and a chapter of the same name added later is numbered beside them
(``run LIB/action`` after ``compose --text "Action"`` replaced that track and its words without a word).
Music composed from the section's own description file in the output folder (a hand-written ``calm.txt``) is the
section's, as before.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Callable

from .files import name_key
from .outputs import MANIFEST, SectionFiles, folder_key, read_record, safe_part
from .sections import (
    Section,
    TakenNames,
    own_file_stem,
    written_as,
    container_path,
    folders_above,
    is_image_name,
    output_key,
    page_container,
    reserved_keys,
    section_order,
)


def _record_file(output: Path, name: str, listings: dict[Path, dict[str, str]] | None = None) -> Path:
    """The record of ``name`` in ``output``; on a case-sensitive file system also one whose name differs only in
    case or Unicode form (``Ch 1.json`` for ``ch 1``): names are told apart as case-insensitive file systems tell
    them (:func:`.files.name_key`), so that one holds the name too.  ``listings`` keeps each folder's entries by
    folded name between calls (one ``claim_names`` looks up several names per section: read once, not once a
    name)."""
    exact = SectionFiles.for_section(output, name).record
    if exact.exists():
        return exact
    listings = {} if listings is None else listings
    here = output
    for part in exact.relative_to(output).parts:
        if here not in listings:
            try:
                entries = sorted(os.listdir(here))
            except OSError:
                entries = []
            listings[here] = {}
            for entry in entries:  # the first in sorted order, as one name folds to it
                listings[here].setdefault(name_key(entry), entry)
        match = listings[here].get(name_key(part))
        if match is None:
            return exact
        here = here / match
    return here


def _stored_form(output: Path, name: str, listings: dict[Path, dict[str, str]]) -> str:
    """``name`` as the files it keeps are spelt where they differ only in case or Unicode form: a chapter whose
    folder was renamed so (``ガード`` decomposed by a copy through a Mac) kept its music under its own name, but was
    made again under the new spelling beside it, on a file system that tells them apart."""
    found = _record_file(output, name, listings)
    parts = [p for p in name.split("/") if p]
    if found == SectionFiles.for_section(output, name).record or not found.exists() \
            or any(safe_part(p) != p for p in parts):
        return name
    stored = list(found.relative_to(output).parts)
    stored[-1] = stored[-1].removesuffix(".json")
    if len(stored) == len(parts) and all(name_key(a) == name_key(b) for a, b in zip(stored, parts)):
        return "/".join(stored)
    return name


#: the start of a "source" that is words, not pages: music composed from ``--text`` or from a file elsewhere
WORDS = "words:"


def record_source(output: Path, name: str,
                  listings: dict[Path, dict[str, str]] | None = None) -> tuple[str | None, frozenset]:
    """The source the record of ``name`` in ``output`` was made from (None: no record, or no pages in it), and the
    hashes of the pages it lists (``listings``: see :func:`_record_file`).  Music composed from words given as text
    or from a description file outside its own place is ``words:`` and the words' place (``words:--text``)."""
    path = _record_file(output, name, listings)
    record = read_record(path)
    pages = (record or {}).get("pages")
    if not isinstance(pages, list) or not pages or not all(isinstance(p, dict) for p in pages):
        return _words_source(output, path, record), frozenset()
    first = pages[0]
    if not isinstance(first.get("path"), str):
        return None, frozenset()
    hashes = frozenset(p["sha256"] for p in pages if isinstance(p.get("sha256"), str))
    return page_container(first["path"], first.get("member"), first.get("pdf_index"),
                          first.get("given_alone") is True), hashes


def _words_source(output: Path, record_file: Path, record: dict | None) -> str | None:
    """``words:PLACE`` for a record of music composed from other words than its own description file beside it."""
    from .jobs import TEXT_GIVEN

    made = (record or {}).get("compose")
    was = made.get("description_file") if isinstance(made, dict) and not (record or {}).get("describe") else None
    if not isinstance(was, str) or not was:
        return None
    own = record_file.with_suffix(".txt")
    if was != TEXT_GIVEN and os.path.realpath(Path(output) / was) == os.path.realpath(own):
        return None
    return WORDS + was


def _held_by(source: str | None, output: Path) -> str:
    """How a note names what holds a name: a chapter's pages, or words given as text, or a file."""
    from .jobs import TEXT_GIVEN
    from .options import flag

    if source and source.startswith(WORDS):
        was = source[len(WORDS):]
        return f"music composed from words given as {flag('text')}" if was == TEXT_GIVEN else \
            f"music composed from {os.path.normpath(Path(output) / was)}"
    return f"from {source}"


def _other_forms(section: Section, base: str) -> list[str]:
    """The other name an archive or PDF goes by: ``Ch 1.cbz`` while a folder ``Ch 1`` sits beside it, ``Ch 1``
    alone (see :func:`manga2music.sections._source_names`); its files keep the name they were made under."""
    origin = Path(section.origin)
    if not origin.suffix or not section.pages or section.pages[0].member is None and section.pages[0].pdf_index is None:
        return []
    try:
        depth = len(origin.relative_to(section.root).parts) - 1
    except ValueError:
        depth = 0  # the archive given itself: its name is its first part
    parts = base.split("/")
    if depth >= len(parts) or parts[depth] not in (origin.stem, origin.name):
        return []
    parts[depth] = origin.name if parts[depth] == origin.stem else origin.stem
    return ["/".join(parts)]


def _folder_forms(section: Section) -> list[str]:
    """The names a section goes by when another PATH's section has its name: "b/ch1", "x/b/ch1"... for ch1 of
    ``x/b`` (see :func:`manga2music.sections._names_by_folder`), and "ch1" for a section named so: ``run b/ch1``
    alone finds the files of ``run a/ch1 b/ch1``, and the other way round."""
    plain = section.plain_name or section.name
    return [plain, *_prefixed_forms(section, plain)]


def _shorter_forms(base: str) -> list[str]:
    """"Arc A/Ch 2" and "Ch 2" for "Vol 01/Arc A/Ch 2": the names ``run "S/Vol 01/Arc A/Ch 2"`` (or its volume) gave
    the chapter's files, found by ``run S`` afterwards (only where the record there was made from this very source:
    see :func:`claim_names`)."""
    parts = base.split("/")
    return ["/".join(parts[k:]) for k in range(1, len(parts))]


def _prefixed_forms(section: Section, plain: str) -> list[str]:
    """``plain`` under the folders above the section's PATH, nearest first: "Vol 01/Arc A/Ch 2" and "S/Vol 01/Arc
    A/Ch 2" for "Arc A/Ch 2" of ``run "S/Vol 01"``, whose files ``run S`` made under those names."""
    above = folders_above(section)
    return ["/".join([*above[-k:], plain]) for k in range(1, len(above) + 1)]


def _folders_named(sections: list[Section], holder: Callable[[str], str | None]) -> dict:
    """PATH -> the folders this output folder names its sections under ("Vol 01/" for ``run "S/Vol 01"`` into the
    output of ``run S``), found from the first of its sections whose files of an earlier run are under them: a new
    or failed section of that PATH is named as its siblings are, not beside the whole series."""
    prefixes: dict = {}
    for section in sections:
        if section.root in prefixes or section.source is None or section.plain_name:
            continue
        plain = section.given_name or section.name
        for form in _prefixed_forms(section, plain):
            if holder(form) == section.source:
                prefixes[section.root] = form[: len(form) - len(plain)]
                break
    return prefixes


def _page_hashes(section: Section) -> frozenset:
    from .errors import Manga2MusicError
    from .pages import probe_page

    hashes, pdf_hashes = set(), {}
    for page in section.pages:
        try:
            hashes.add(probe_page(page, pdf_hashes=pdf_hashes).sha256)
        except Manga2MusicError:
            continue  # an unreadable page: the run skips it, saying why
    return frozenset(hashes)


def _holds_pages(source: str) -> bool:
    """Whether a source is still on the disk: an archive or PDF there, or a folder with pages in it (not one whose
    pages have moved into a folder inside it, as 7-Zip's "Extract to Ch 1\\" leaves ``Ch 1/Ch 1``)."""
    if not os.path.isdir(source):
        return os.path.exists(source)
    try:
        return any(is_image_name(entry) for entry in os.listdir(source))
    except OSError:
        return True  # a folder that cannot be read: its pages may be there


def _written_here(output: Path, name: str, listings: dict) -> bool:
    """Whether the record of ``name`` was written where it is (not copied or moved here with its chapters since, nor
    written before 2026-12-07, when records began to say where): a chapter whose pages are those of such a
    record's source, still on disk, is another source, not that chapter's copy."""
    path = _record_file(output, name, listings)
    folder = (read_record(path) or {}).get("folder")
    return isinstance(folder, str) and folder == folder_key(path.parent)


#: the manifest's entries that name the sections a stopped command left to make (under their "sections" or
#: "chapters"): made in part (described), they are listed nowhere else until the stop is resumed
STOPS = ("stopped_with", "score_stopped_with", "describe_stopped_with", "score_reading_stopped_with")


def _listed_names(output: Path) -> list[str]:
    """The names of the sections the output folder's manifest lists, and of those a stopped command left to make
    (a chapter described before a stop, then renamed, was made as a new one, its files left behind)."""
    manifest = read_record(output / MANIFEST) or {}
    names = [e["name"] for e in manifest.get("sections") or []
             if isinstance(e, dict) and isinstance(e.get("name"), str)]
    for key in STOPS:
        stop = manifest.get(key)
        for left in (stop.get("sections"), stop.get("chapters")) if isinstance(stop, dict) else ():
            names += [n for n in left or [] if isinstance(n, str)] if isinstance(left, list) else []
    return list(dict.fromkeys(names))


def _source_of(section: Section) -> str | None:
    """Where a section's pages come from, as its record stores it; for one that cannot be read at all (an archive
    damaged since its last run), its file, as its record names it: the chapter keeps its name and files (it was
    "Ch 2 from None: written as Ch 2-2", and stayed listed twice after it was mended)."""
    return section.source or section.unreadable_file


def claim_names(sections: list[Section], output: Path, note: Callable[[str], None] = lambda message: None) -> None:
    """Give each section the output name that keeps its files apart from every other source's (see the module
    docstring); ``note`` hears about a section written under a new number because its name is another's."""
    records: dict[str, tuple[str | None, frozenset]] = {}
    listings: dict[Path, dict[str, str]] = {}  # the output folder's entries, read once (see _record_file)

    def holder(name: str) -> str | None:
        if name not in records:
            records[name] = record_source(output, name, listings)
        return records[name][0]

    def source_of(section: Section) -> str | None:
        """:func:`_source_of`; for an archive that cannot be read, the source its record names where that is a
        folder in it (``Ch 2.cbz!Ch 2``, the common way a chapter is packed): the chapter keeps its name."""
        mine = _source_of(section)
        if section.source is None and mine is not None:
            held = holder(section.given_name or section.name)
            if held is not None and held.startswith(mine + "!"):
                return held
        return mine

    in_run = {source_of(s) for s in sections}
    # the archives this run reads folders of: a folder of one that no section of this run comes from is gone from it
    # (a chapter folder renamed or moved inside its volume archive)
    archives_read = {container_path(source) for source in in_run if source and "!" in source}
    listed: list[list[str]] = []  # the manifest's names, read when a section first finds no files of its own

    def earlier() -> list[str]:
        if not listed:
            listed.append(_listed_names(output))
        return listed[0]

    def gone(name: str) -> bool:
        """Whether the source of ``name``'s files is neither in this run nor on the disk."""
        source = holder(name)
        if source is None or source in in_run or source.startswith(WORDS):  # words stay the user's
            return False
        where = container_path(source)
        return not _holds_pages(where) or where != source and where in archives_read

    shared: list[frozenset] = []  # pages in more than one record: a group's credits, read when first needed
    index: list[tuple[dict, dict]] = []  # see kept_clash

    def in_several() -> frozenset:
        if not shared:
            seen: set = set()
            twice: set = set()
            for n in earlier():
                holder(n)
                twice |= seen & records[n][1]
                seen |= records[n][1]
            shared.append(frozenset(twice))
        return shared[0]

    taken = TakenNames(reserved_keys())  # "manifest": its record would be the run's manifest.json
    this_run: dict = {}  # the names this run's sections took so far: output key -> source
    shown: dict = {}  # ... output key -> the name
    prefixes = _folders_named(sections, holder)
    # the sections whose files are there under the very name they come as first: one whose name ends like another's
    # files (`Ch 1.take2`, made alone, then `run S` beside `Ch 1`) was made again as `Ch 1.take2-2`, as `Ch 1` had
    # taken the names of its takes first; the new one beside it is numbered instead
    # and then the names written as they are (`Ch_1` beside `Ch:1`, written `Ch_1` too: the one whose file name
    # needed no change lost it)
    for section in sorted(sections, key=lambda s: (holder(s.given_name or s.name) != source_of(s)
                                                   or source_of(s) is None,
                                                   written_as(s.given_name or s.name) != (s.given_name or s.name))):
        base = section.given_name or section.name
        mine = source_of(section)
        ours: list[frozenset] = []  # this section's page hashes, read only when a name's holder is in question

        def numbered(first: str):
            return (n for n in itertools.chain([first], (f"{first}-{k}" for k in itertools.count(2)))
                    if output_key(n) not in taken)

        def same_pages(name: str) -> bool:
            """Whether at least half of the pages ``name`` was made from are this section's, leaving out the pages
            other records have too (a scanlation group's credits and recruitment pages, in every chapter)."""
            theirs = records[name][1] - in_several() or records[name][1]  # all shared (a chapter of credit pages,
            # a second scan of one chapter): all count
            if not ours:
                ours.append(_page_hashes(section))
            return bool(theirs) and 2 * len(theirs & ours[0]) >= len(theirs)

        def free(name: str) -> bool:  # a source still on disk keeps its name where its record was written:
            # another copy of its chapter (a page added) took it, and each run of either took it back, every time
            # describing and composing again
            other = holder(name)
            return (other in (None, mine) or gone(name) or other not in in_run and
                    not _written_here(output, name, listings) and same_pages(name)) and kept_clash(name) is None

        def kept_clash(name: str) -> str | None:
            """The section of another source there whose files ``name``'s would share names with (`score Ep.cues`
            into a folder that holds Ep: its record merged into Ep's cue sheet, Ep.cues.json)."""
            if not index:  # the listed names by their key, and by the key whose files theirs would be (read once)
                by_key: dict[str, list[str]] = {}
                by_stem: dict[str, list[str]] = {}
                for listed in earlier():
                    key = output_key(listed)
                    by_key.setdefault(key, []).append(listed)
                    if own_file_stem(key) is not None:
                        by_stem.setdefault(own_file_stem(key), []).append(listed)
                index.append((by_key, by_stem))
            by_key, by_stem = index[0]
            key = output_key(name)
            stem = own_file_stem(key)
            near = by_stem.get(key, []) + (by_key.get(stem, []) if stem is not None else [])
            return next((n for n in near if holder(n) not in (None, mine) and not gone(n)), None)

        own = None
        forms = dict.fromkeys([base, *_other_forms(section, base), *_folder_forms(section), *section.former_names,
                               *_shorter_forms(base)])
        for first in (forms if mine is not None else []):
            for n in numbered(first):  # its files of an earlier run: ch1, ch1-2... up to the first name no source holds
                if holder(n) in (mine, None):
                    own = n if holder(n) == mine else None
                    break
            if own:
                break
        if own is None and mine is not None and holder(base) is not None and output_key(base) not in taken \
                and gone(base) and same_pages(base):  # its own name, whose source is gone: the library moved (or its
            # folder above renamed), as every chapter's did; it keeps it (another chapter gone that shares pages
            # with it, a group's credits, took it, and the swap stuck)
            own = base
        if own is None and mine is not None:  # its files under a name of its folder's before it was renamed
            own = next((n for n in earlier() if holder(n) == mine and output_key(n) not in taken), None)
            if own is None and (own := next((n for n in earlier() if n != base and gone(n)
                                             and output_key(n) not in taken and same_pages(n)), None)) \
                    and name_key(own) != name_key(base):  # not the same name in another Unicode form (a Mac's)
                note(f"{base}: the pages of {own}, whose folder is gone (renamed?): its files keep the name {own} "
                     f"(remove them from the output folder to make them again as {base})")  # not "and its music":
                # a --force or a changed setting makes it again, under that name
        if own is None and section.root in prefixes and not section.plain_name:  # a new chapter of a volume (or
            # one that failed) whose siblings' files this folder names under the volume: beside them
            base = prefixes[section.root] + base
        name = _stored_form(output, own, listings) if own else next(n for n in numbered(base) if free(n))
        if own is None and name != base and holder(base) not in (None, mine):
            note(f"{base} from {mine}: written as {name} ({base} in the output folder is {_held_by(holder(base), output)})")
        elif own is None and name != base and output_key(base) in this_run and mine is not None:  # two PATHs of
            # one name (`run X.pdf X.cbz`): which is which was only in the records
            other = shown.get(output_key(base), base)
            same = f"{base} is {this_run[output_key(base)]}, given before it" if other == base else \
                f"its files would be named {written_as(base)}, as those of {other} from {this_run[output_key(base)]} are"
            note(f"{base} from {mine}: written as {name} ({same})")
        elif own is None and name != base and mine is not None and (
                clash := taken.clashing(output_key(base)) or kept_clash(base)):
            other = shown.get(clash, clash)
            named = f"{other} here is named" if len(other) > len(base) else f"{base} is named"
            if clash in reserved_keys():  # "manifest is named like a file of manifest's own"
                note(f"{base} from {mine}: written as {name} (its record would be the output folder's own "
                     f"{clash}.json, the list of everything made there)")
            else:
                note(f"{base} from {mine}: written as {name} ({named} like a file of "
                     f"{base if len(other) > len(base) else other}'s own, as its take 2 or cue sheet is)")
        taken.add(output_key(name))
        shown[output_key(name)] = name
        this_run.setdefault(output_key(name), mine)
        if name.count("/") < section.name.count("/") and section_order(name) != section_order(section.name):
            section.read_as = section.name  # listed where its pages come, not where its name would put it (a loose
            # "Chapter 1" after every volume's chapters)
        section.name = name
