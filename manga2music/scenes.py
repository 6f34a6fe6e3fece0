"""Scenes: runs of consecutive pages with one mood, found in a chapter's per-page readings (or given by the user).

**Finding them.**  Each page becomes a point in a small space of what a reader
notices (:func:`page_vector`): how intense the artwork is, how light or dark,
how much of it is text, how sharp its light and shadow.  The chapter is then cut
where that point moves, by optimal partitioning: of every way to cut the pages
into runs of at least :data:`MIN_SCENE_PAGES`, the one that minimises the spread
of the points inside each run plus :data:`PENALTY` per run (the penalty is what
stops noise from splitting a scene; dynamic programming finds the exact minimum
in O(pages^2)).  The scales in :data:`SCALES` put one unit roughly where a reader
would call two pages different; they are fixed, not fitted to each chapter, so a
chapter with one mood stays one scene.

**How big a change is a scene change.**  Cutting two runs of ``a`` and ``b``
pages whose means differ by ``d`` units lowers the spread by ``a*b/(a+b) * d**2``,
so with ``PENALTY = 2`` two runs of two pages are cut apart when they differ by
more than 1.4 units (a little more than one difference a reader notices), two
runs of three by more than 1.15.  On real pages a scene change is that size:
1.3 to 2 units between the labelled scenes of Pepper&Carrot episodes, and an
emergency among the calm pages of a medical manga.  The first value, 6, was set
on drawn chapters whose scenes differ by 4 to 5 units, and kept every real
chapter tried as one scene.

**Same music, one scene.**  Scene finding cuts where the pages change, and some
changes do not change the music: talk, then the same quiet places without a word,
are two runs of pages that the describer reads as the same calm mood at the same
tempo, and with the chapter's one key and lead their two descriptions were the
same words.  Two cues there only swap one calm piece for another, so neighbouring
scenes with the same mood and tempos within :data:`SAME_TEMPO_BPM` are joined
(:func:`merge_same_music`) when the pages joined still read as that mood.  A bigger
step within one mood (a fight that grows frantic, from 149 to 170 BPM) stays a scene change.
Scenes given by the user or by a chat model are never joined.

**Giving them.**  A plain text file lists the pages where scenes start, one per
line, as a page number (1 is the first page found; a page that cannot be read keeps
its number, and a scene said to start there starts on the next page that can) or a
page's file name; blank lines
and ``#`` comments are ignored (a ``#`` in a page's name is part of the name); the first page always starts a scene
(:func:`read_scenes_file`).  A line may end with the scene's length, in seconds
or [hours:]minutes:seconds (``5 45``, ``012.png 1:30``; a tab before it does too), for a video whose pages are shown
for as long as its editor chose: that scene then lasts that long (in whole bars; in
a run of such scenes each scene change is within half a bar of where the lengths put
it, unless a scene is given less than a bar) instead of its reading time.

**Tall strips.**  A webtoon episode saved as one tall image is read in page-shaped
parts (:func:`manga2music.pages.tile_strip`), and the score treats each part as a
page: scenes are found, and may start, inside a strip.  A scenes file names a part
as ``PAGE part K`` (``1 part 4``, ``episode.png part 12 0:45``); parts are numbered
from 1, top to bottom, as the read-along page and the cue sheet number them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from .errors import InputError
from .files import decode_text, name_key, read_regular_file, readable

#: a scene is at least this many pages (a one-page chapter is one scene)
MIN_SCENE_PAGES = 2
#: the cost of one more scene, in squared units of SCALES (bigger: fewer, longer scenes); see the module docstring
PENALTY = 2.0
#: reading -> (field, scale): one unit of each is a difference a reader notices
SCALES = (("energy", 0.15), ("brightness", 0.12), ("dialogue", 0.25), ("contrast", 0.06))
#: neighbouring scenes of one mood whose tempos are this close (BPM) are one scene (see merge_same_music).  A choice,
#: not fitted: a third of a mood's tempo range (24-30 BPM wide), about 7 % of an action tempo, 14 % of a calm one
SAME_TEMPO_BPM = 10.0
#: bump when the method or a number above changes (scene boundaries are recorded)
SCENES_VERSION = "scenes-3"


@dataclass(frozen=True)
class Scene:
    """Pages ``start`` .. ``end - 1`` (0-based) of a chapter."""

    start: int
    end: int

    @property
    def pages(self) -> range:
        return range(self.start, self.end)

    def __len__(self) -> int:
        return self.end - self.start


def _value(reading, key: str) -> float:
    if isinstance(reading, dict):
        return float(reading.get(key, (reading.get("measures") or {}).get(key, 0.0)) or 0.0)
    value = getattr(reading, key, None)
    return float(value if value is not None else reading.measures.get(key, 0.0))


def page_vector(reading) -> list[float]:
    """What the segmentation compares: a page's reading (a PageReading or its dict) on :data:`SCALES`."""
    return [_value(reading, field) / scale for field, scale in SCALES]


def find_scenes(vectors: Sequence[Sequence[float]], *, penalty: float = PENALTY,
                min_pages: int = MIN_SCENE_PAGES) -> list[Scene]:
    """The optimal partition of pages into scenes (see the module docstring)."""
    n = len(vectors)
    if n == 0:
        return []
    if n < 2 * min_pages:
        return [Scene(0, n)]
    dims = len(vectors[0])
    # prefix sums of the vectors and of their squares: a run's spread in O(dims)
    pre = [[0.0] * dims]
    pre2 = [0.0]
    for v in vectors:
        pre.append([a + b for a, b in zip(pre[-1], v)])
        pre2.append(pre2[-1] + sum(x * x for x in v))

    def spread(i: int, j: int) -> float:  # sum of squared distances to the mean over pages i..j-1
        count = j - i
        total = [b - a for a, b in zip(pre[i], pre[j])]
        return (pre2[j] - pre2[i]) - sum(t * t for t in total) / count

    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for j in range(min_pages, n + 1):
        for i in range(0, j - min_pages + 1):
            if i and i < min_pages:
                continue
            if best[i] == float("inf"):
                continue
            cost = best[i] + spread(i, j) + penalty
            if cost < best[j]:
                best[j], cut[j] = cost, i
    scenes, j = [], n
    while j > 0:
        scenes.append(Scene(cut[j], j))
        j = cut[j]
    return list(reversed(scenes))


def merge_same_music(scenes: Sequence[Scene], music: Callable[[int, int], tuple[str, float]], *,
                     tempo_step: float = SAME_TEMPO_BPM) -> list[Scene]:
    """``scenes`` with each run of neighbours that have the same music joined into one scene.

    ``music(start, end)`` is the mood and tempo (BPM) of pages ``start`` .. ``end - 1``.  A scene joins the one before
    it (itself maybe already joined) when both have the same mood, their tempos are at most ``tempo_step`` apart, and
    the joined pages still have that mood (a section's energy comes from its liveliest pages, so joining can change
    it)."""
    joined: list[Scene] = []
    for scene in scenes:
        if joined:
            before = joined[-1]
            (mood, tempo), (next_mood, next_tempo) = music(before.start, before.end), music(scene.start, scene.end)
            if mood == next_mood and abs(tempo - next_tempo) <= tempo_step \
                    and music(before.start, scene.end)[0] == mood:
                joined[-1] = Scene(before.start, scene.end)
                continue
        joined.append(scene)
    return joined


def scenes_from_starts(starts: Sequence[int], pages: int) -> list[Scene]:
    """Scenes from the 0-based pages where they start (the first page always starts one)."""
    edges = sorted({0, *[s for s in starts if 0 < s < pages]}) + [pages]
    return [Scene(a, b) for a, b in zip(edges, edges[1:]) if b > a]


MIN_GIVEN_S, MAX_GIVEN_S = 2.0, 4 * 3600.0  # a scene's length in a scenes file: from 2 s to 4 hours
_LENGTH = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d+)?)s?$")  # 45, 45s, 1:30, 1:02:03.5
_PART = re.compile(r"^(.*\S)\s+part\s+(\d+)$", re.IGNORECASE)  # "3 part 2", "episode.png part 12"


def parse_length(text: str) -> Optional[float]:
    """Seconds from ``45``, ``45s``, ``12.5``, ``1:30`` or ``0:01:30`` (as video editors write times); None when it
    is not a length."""
    match = _LENGTH.match(text.strip().lower())
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    if (minutes is not None and float(seconds) >= 60) or (hours is not None and int(minutes) >= 60):
        return None
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


def read_scenes_file(path: Path, page_names: Sequence[str],
                     parts: "Sequence[int] | Callable[[], Sequence[int]] | None" = None
                     ) -> list[tuple[int, int, Optional[float]]]:
    """``(page, part, length in seconds or None)`` per line of a scenes file (see the module doc): the page as a
    0-based index into ``page_names`` (every page of the chapter, in order, so that "4" is the fourth page found
    whether or not an earlier one can be read), the part 1-based (1 for a whole page); one clear line for a bad
    entry.  ``parts[i]`` is how many parts page ``i`` is read in (1, or the tiles of a tall strip), or a function
    that gives them, called only when a line names a part past the first; without it, part numbers are not
    checked."""
    return read_scenes_text(scenes_file_text(path), readable(path), page_names, parts)


def scenes_file_text(path: Path) -> str:
    """A scenes file's text (at most 1 MB, any of the encodings :func:`~manga2music.files.decode_text` reads)."""
    return decode_text(read_regular_file(Path(path), 1024 * 1024, what="scenes file"))


def read_scenes_text(text: str, label: str, page_names: Sequence[str],
                     parts: "Sequence[int] | Callable[[], Sequence[int]] | None" = None,
                     part_gone: "Callable[[str, int, int], None] | None" = None,
                     said: "Callable[[str], None] | None" = None) -> list[tuple[int, int, Optional[float]]]:
    """:func:`read_scenes_file` of a scenes file's ``text``; ``label`` names it in a message ("s.txt, line 2").
    With ``part_gone``, a line naming a part its page no longer has (a kept file, the strip saved shorter since) is
    left out and told to it (page name, part, parts now) instead of refused.  ``said(line)`` hears of a number that
    counts pages where a page is named by it too (``4`` is the 4th page, ``3.png``, not ``4.png``)."""
    by_name = {name_key(name): i for i, name in enumerate(page_names)}
    stems = [name_key(Path(name).stem) for name in page_names]
    # a stem several pages share ("scan" of a multi-page TIFF's "scan.tif (page 2)"...) names none of them
    shared = {stem for stem, n in Counter(stems).items() if n > 1}
    by_stem = {stem: i for i, stem in enumerate(stems) if stem not in shared}
    counts: Optional[Sequence[int]] = None

    def part_counts() -> Optional[Sequence[int]]:
        nonlocal counts
        if counts is None and parts is not None:
            counts = list(parts() if callable(parts) else parts)
        return counts

    def page_of(entry: str) -> Optional[int]:
        padded = entry.isdigit() and entry.startswith("0")  # "003", where pages are numbered
        if padded and any(stem.isdigit() and len(stem) == len(entry) for stem in stems):  # 000.jpg...: the name of
            return by_stem.get(name_key(entry))  # 003.jpg, or none (it was the 4th page, 002.jpg, unsaid)
        if entry.isdigit():
            return int(entry) - 1
        return by_name.get(name_key(entry), by_stem.get(name_key(entry)))

    def place(entry: str) -> Optional[tuple[int, int]]:
        """(page, part) that an entry names ("3", "012.png", "3 part 2"), or None."""
        index = page_of(entry)
        if index is not None:
            return index, 1
        match = _PART.match(entry)
        if match and page_of(match.group(1)) is not None:
            return page_of(match.group(1)), int(match.group(2))
        return None

    def without_comment(raw: str) -> str:
        """The line before its ``#`` comment; a ``#`` that is part of a page's name ("Vol.1 #03.png") is kept."""
        for end in [len(raw)] + [i for i in range(len(raw) - 1, -1, -1) if raw[i] == "#"]:  # longest first
            entry = raw[:end].strip()
            head, _, tail = entry.rpartition(" ")
            if entry and (place(entry) is not None
                          or (head.strip() and place(head.strip()) is not None and parse_length(tail) is not None)):
                return entry
        return raw.split("#", 1)[0].strip()

    scenes, lines = [], []  # the entries so far, and the lines they are on
    dropped = 0  # lines left out for a part their page no longer has (see part_gone)
    for number, raw in enumerate(text.splitlines(), start=1):
        raw = raw.replace("\t", " ")  # a tab before the length: pasted from a spreadsheet or a marker list
        entry = without_comment(raw) if "#" in raw else raw.strip()
        if not entry:
            continue
        where = f"{label}, line {number}"
        found, length = place(entry), None
        head, _, tail = entry.rpartition(" ")
        if found is None and head and place(head.strip()) is not None:  # a page, then the scene's length
            found, length = place(head.strip()), parse_length(tail)
            if length is None:
                raise InputError(f"{where}: {tail!r} is not a length (seconds, like 45, or minutes:seconds, "
                                 "like 1:30, or hours:minutes:seconds, like 0:01:30)")
            if not MIN_GIVEN_S <= length <= MAX_GIVEN_S:
                raise InputError(f"{where}: a scene lasts from {MIN_GIVEN_S:g} s to {MAX_GIVEN_S / 3600:g} hours "
                                 f"(got {tail})")
        if found is None:
            first, *rest = entry.split()
            if len(rest) > 1 and place(first) is not None and all(parse_length(r) is not None for r in rest):
                raise InputError(f"{where}: one length a line (got {', '.join(rest[:-1])} and {rest[-1]} after page "
                                 f"{first})")
            shown = ", ".join(page_names[:4]) + (", ..." if len(page_names) > 4 else "")
            if head.strip() and parse_length(tail) is not None:  # "009.png 15": a page that is not there, then a
                # length (it was "no page named '009.png 15'", as if the length were part of the name)
                raise InputError(f"{where}: no page named {head.strip()!r} in the chapter (its pages: {shown}); "
                                 f"{tail} is read as its scene's length")
            raise InputError(f"{where}: no page named {entry!r} in the chapter (its pages: {shown})")
        index, part = found
        said_page = entry.split()[0] if entry.split() else ""
        named = by_stem.get(name_key(said_page)) if said_page.isdigit() else None  # a page named as the number is
        if not 0 <= index < len(page_names):
            raise InputError(f"{where}: page {index + 1} does not exist (the chapter has {len(page_names)} pages, "
                             "numbered from 1)" + (f"; the page named {page_names[named]} is page {named + 1}: write "
                                                   f"{page_names[named]} to name it" if named is not None else ""))
        if named is not None and named != index and said is not None:  # it took the 4th page, unsaid
            said(f"{where}: {said_page} is page {said_page} ({page_names[index]}); the page named "
                 f"{page_names[named]} is page {named + 1} (write {page_names[named]} to name it)")
        if part < 1:
            raise InputError(f"{where}: parts are numbered from 1")
        known = part_counts() if part > 1 else None
        if known is not None and part > max(1, int(known[index])):
            count = max(1, int(known[index]))
            if part_gone is not None:
                part_gone(page_names[index], part, count)
                dropped += 1
                continue
            raise InputError(f"{where}: page {index + 1} has no part {part} ("
                             + ("it is an ordinary page, read whole; only a tall strip is read in parts)"
                                if count == 1 else f"it is read in {count} parts)"))
        if scenes and (index, part) <= scenes[-1][:2]:  # the same start twice, or out of order: a typo, likely
            (before, before_part, _), said = scenes[-1], lines[-1]
            shown = f"page {index + 1}" + (f" part {part}" if part > 1 else "")
            earlier = f"page {before + 1}" + (f" part {before_part}" if before_part > 1 else "")
            raise InputError(f"{where}: {shown} " + (f"starts a scene already (line {said})" if (index, part) == (
                before, before_part) else f"comes before the scene start on line {said} ({earlier})"),
                hint="list each scene's first page once, in reading order")
        scenes.append((index, part, length))
        lines.append(number)
    if not scenes and dropped:  # a kept file's every scene gone: the scenes are found in the pages
        return scenes
    if not scenes:  # an empty file would silently stand for "one scene", not for the scenes found in the pages
        from .options import flag

        raise InputError(f"{label} lists no scene (one page per line where a scene starts)",
                         hint="write the first page of each scene on a line, or give "
                              f"{flag('scenes_file', 'auto')} to have them found in the pages")
    return scenes
