"""A chapter's scenes and what each one's music should be: the direction they share, one description each.

Scenes come from ``--scenes``, else from a chat model's scene changes, else from the
readings (:func:`manga2music.scenes.find_scenes`, neighbours with the same music joined:
:func:`manga2music.scenes.merge_same_music`).  The direction (home key, lead
instrument, theme) is the chapter's; each scene keeps its own mood, tempo and
instruments.  A scene description the user edited (``NAME.sceneNN.txt``) is kept for its
scene number; when that number now holds other pages, a line says where its pages went.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .chapter_reading import ChapterReading
from .describers.base import Describer
from .describers.chat import charge
from .describing import describer_seed
from .errors import Manga2MusicError
from .files import readable
from .jobs import Callbacks, SectionJob, read_edited_description
from .options import RunConfig
from .outputs import fingerprint, is_ours
from .pages import PageStream
from .reading import PageReading, split_tile_name
from .wording import listed


@dataclass
class Direction:
    """What every scene of a chapter shares."""

    tonic: str  # "D"
    lead: str  # the instrument that carries the theme in every cue
    theme: tuple[int, ...]  # the motif, as scale steps from its first note
    mood: str  # the chapter's overall mood
    chat: Optional[object] = None  # a chat model's ChapterDirection (key, instruments, tempo range), when one gave it

    def sentence(self) -> str:
        return (f"Part of one chapter score: keep {self.tonic} as the home key and let the {self.lead} "
                "return with the chapter's theme.")


@dataclass
class ScenePlan:
    index: int  # 1-based
    pages: list[int]  # indices into the chapter's units (its pages, a tall strip's parts in its place)
    description: str
    mood: Optional[str]
    key: str  # what decides its description (pages, describer, direction)
    user_text: bool = False
    seed: int = 0
    cue_key: str = ""
    #: the composer's track it is made of, whatever the loudness (a stopped score's cues are kept as composed,
    #: by this key: a rerun given --no-normalize takes them too)
    track_key: str = ""
    audio: Optional[np.ndarray] = None  # the composed cue (scene + tail)
    midi: Optional[bytes] = None
    info: dict = field(default_factory=dict)
    #: ``--transitions continue``: the bridge out of this scene (``lead`` samples before its end, ``seed``, and
    #: ``prompt``: the samples of this cue before it that it carries on from)
    bridge: Optional[dict] = None
    given_s: Optional[float] = None  # its length from the scenes file (None: its pages' reading time)
    #: the tokens its description's call used (a chat model's; None: unknown, or no call)
    usage: Optional[dict] = None
    #: the seed the model that wrote its description sampled with (a local VLM's --seed or drawn one; None: none)
    describer_seed: Optional[int] = None


def theme_for(seed: int) -> tuple[int, ...]:
    """A chapter's theme: a one-bar motif contour drawn from its seed (the builtin composer's own motif maker)."""
    from .music.melody import make_motif

    return tuple(int(c) for c in make_motif(np.random.default_rng([int(seed) % 2**63, 7]), "medium").contour)


def lead_instrument(instruments, default: str = "piano") -> str:
    """The instrument that carries the chapter's theme: the first of ``instruments`` that plays notes (drums and
    percussion cannot carry a melody, and named in a calm scene's description they would bring in a drum kit) and,
    of those the builtin composer knows, one it gives melodies to (it plays "strings" as chords only, so a strings
    lead never played the theme); ``default`` when none is named."""
    from .music.text_to_style import DRUM_WORDS, INSTRUMENTS, parse_style

    pitched = [i for i in instruments if not set(i.lower().split()) & set(DRUM_WORDS)]

    def sings(instrument: str) -> bool:
        known = [INSTRUMENTS[w][1] for w in parse_style(instrument).words if w in INSTRUMENTS]
        return not known or any("m" in roles for roles in known)

    return ([i for i in pitched if sings(i)] or pitched or list(instruments) or [default])[0]


def chapter_direction(readings: list[PageReading], seed: int) -> Direction:
    from .describers.builtin import Scores, choose_mood, tempo_and_key

    scores = Scores.from_readings(readings)
    mood = choose_mood(scores)
    _, tonic = tempo_and_key(mood, scores)
    return Direction(tonic=tonic, lead=lead_instrument(mood.instruments).split()[-1], theme=theme_for(seed),
                     mood=mood.name)


def scene_music(readings: list[PageReading]):
    """``music(start, end)``: the mood and tempo the builtin describer gives pages ``start`` .. ``end - 1`` of
    ``readings`` (what :func:`manga2music.scenes.merge_same_music` compares)."""
    from .describers.builtin import Scores, choose_mood, tempo_and_key

    def music(start: int, end: int) -> tuple[str, float]:
        scores = Scores.from_readings(readings[start:end])
        mood = choose_mood(scores)
        return mood.name, float(tempo_and_key(mood, scores)[0])

    return music


def found_scenes(readings: list[PageReading]) -> list:
    """The scenes ``score`` finds in a chapter's readings (its pages, a tall strip's parts in its place) when none
    are given: cut where the readings move, neighbours with the same music joined."""
    from .scenes import find_scenes, merge_same_music, page_vector

    return merge_same_music(find_scenes([page_vector(r) for r in readings]), scene_music(readings))


def builtin_scene_description(readings: list[PageReading], direction: Direction) -> tuple[str, str]:
    """(description, mood) of one scene from its readings, in the chapter's home key, with its lead instrument."""
    from .describers.builtin import Scores, choose_mood, tempo_and_key

    scores = Scores.from_readings(readings)
    mood = choose_mood(scores)
    tempo, _ = tempo_and_key(mood, scores)
    instruments = list(mood.instruments)
    named = [i for i in instruments if direction.lead in i]  # "... theme": the composer gives it the melody, first
    # named or not (a piano named first lost it to a clarinet named after, which plays melodies only)
    instruments = ([f"{named[0]} theme"] + [i for i in instruments if i != named[0]] if named
                   else [f"{direction.lead} theme"] + instruments[:-1])
    text = (f"{mood.style} with {listed(tuple(instruments))}, {tempo} BPM in {direction.tonic} {mood.mode}, "
            f"{mood.atmosphere}, {mood.melody}, returning to the chapter's theme.")
    return text, mood.name


def _starts_from_entries(entries: list[dict], min_pages: int = 2) -> list[int]:
    """Scene starts where a chat model said a page starts a scene, merging scenes shorter than ``min_pages``."""
    starts = [i for i, e in enumerate(entries) if i and e.get("scene_change")]
    kept: list[int] = []
    for s in starts:
        if s - (kept[-1] if kept else 0) >= min_pages and len(entries) - s >= min_pages:
            kept.append(s)
    return kept


def _moved_from(before: Optional[list], pages: list[int], k: int, chapter: ChapterReading, scenes: list,
                old_pages: list[dict], file_of) -> Optional[str]:
    """When scene ``k``'s edited description was last used for other pages than the scene has now (pages put in
    front, a scene found again), where those pages are now, in a sentence; None when they are the same pages.
    ``file_of(j)``: the name of scene ``j``'s description file (what to rename it to).

    Pages are told apart by content (each page's sha256 in the record), not by name: pages put in front of a
    chapter are numbered, and often named, again."""
    if not before:
        return None
    units = chapter.units
    then_sha = {p.get("name"): p.get("sha256") for p in old_pages}
    now_sha = {i.page.name: i.sha256 for i in chapter.infos}

    def identity(name: str, sha: dict) -> Optional[tuple]:
        page, part = split_tile_name(name)
        return (sha[page], part) if sha.get(page) else None

    then = [identity(name, then_sha) for name in before]
    if None in then:  # no content recorded for them: the names alone must match
        same = list(before) == [units[i].name for i in pages]
    else:
        same = then == [identity(units[i].name, now_sha) for i in pages]
    if same:
        return None

    def span(first: int, last: int) -> str:  # "pages 4-6", "page 3 parts 1-2", "page 1 part 4 to page 2 part 1"
        a, b = units[first], units[last]
        if a.part is None and b.part is None:
            return f"page {a.number}" if a.number == b.number else f"pages {a.number}-{b.number}"
        if a.number == b.number:
            return f"page {a.number} part {a.part}" if a.part == b.part else f"page {a.number} parts {a.part}-{b.part}"
        return " to ".join(f"page {u.number}" + (f" part {u.part}" if u.part else "") for u in (a, b))

    def shown(name: str) -> str:  # a strip's part as the cue sheet says it: "002.png part 3", not "002.png#3"
        page, part = split_tile_name(name)
        return f"{page} part {part}" if part else page

    found = _first_run([identity(u.name, now_sha) for u in units], then)
    named = f"pages {shown(before[0])} to {shown(before[-1])}" if len(before) > 1 else f"page {shown(before[0])}"
    if None in found:  # a page edited in place is still there (its content is another): not said to be gone
        still = {u.name for u in units}
        missing = [name for name, at in zip(before, found) if at is None]
        now = "some of which were changed since" if all(n in still for n in missing) else \
            "some of which are no longer in the chapter" if not any(n in still for n in missing) else \
            "some of which were changed since or are no longer in the chapter"
    else:
        homes = sorted({j for j, scene in enumerate(scenes, start=1) for n in found if n in scene.pages})
        rename = f": rename it {file_of(homes[0])} if it belongs to them" if homes != [k] and len(homes) == 1 else ""
        now = f"now in scene {' and '.join(map(str, homes))} ({span(min(found), max(found))}{rename})"
    return f"It was last used for {named}, {now}; scene {k} is now {span(pages[0], pages[-1])}."


def _first_run(now: list, then: list) -> list[Optional[int]]:
    """Where the pages ``then`` are among ``now`` (each page's identity): the first place they all stand in a row,
    else each one's first place (None: gone).  Mapping each page to one place put a fight at its copies in a later
    recap, or among repeated blank pages."""
    for start in range(len(now) - len(then) + 1):
        if now[start:start + len(then)] == then:
            return list(range(start, start + len(then)))
    first: dict = {}
    for n, page in enumerate(now):
        first.setdefault(page, n)
    return [first.get(page) for page in then]


def _part_counts(chapter: ChapterReading) -> list[int]:
    """How many parts each page of the chapter is read in (1 for a page that could not be read)."""
    counts = {r.name: len(r.parts) or 1 for r in chapter.readings}
    return [counts.get(name, 1) for name in chapter.page_names]


def _scene_starts(chapter: ChapterReading, listed: list[tuple[int, int, Optional[float]]], job: SectionJob,
                  cb: Callbacks) -> list[tuple[int, Optional[float]]]:
    """The scenes file's (page, part, length) as (first unit, length): a scene said to start on a page that could
    not be read starts on the next page that could, and a line says so."""
    at = {(u.number - 1, u.part or 1): k for k, u in enumerate(chapter.units)}
    starts = []
    for page, part, length in listed:
        unit = at.get((page, part))
        if unit is None:
            unit = next((k for k, u in enumerate(chapter.units) if u.number - 1 > page), None)
            number = chapter.units[unit].number if unit is not None else None
            instead = f"page {number} ({chapter.page_names[number - 1]})" if number else \
                "nowhere: no page after it could be read"
            cb.warn(f"{job.name}: a scene was to start on page {page + 1} ({chapter.page_names[page]}), which could "
                    f"not be read; it starts on {instead}")
            if unit is None:
                continue
        starts.append((unit, length))
    return starts


def plan_scenes(chapter: ChapterReading, job: SectionJob, describer: Describer, cfg: RunConfig, cb: Callbacks,
                seed: int, memo=None, given_scenes: Optional[dict] = None) -> tuple[list[ScenePlan], Direction]:
    """The chapter's scenes and each one's description.  ``given_scenes``: the scenes file that sets them, as
    :func:`manga2music.scoring.chapter_settings` gives it (``{"file": name, "text": text, "label": how a message
    names it}``); None: found in the pages."""
    from .scenes import SCENES_VERSION, read_scenes_text, scenes_from_starts

    units = chapter.units  # the pages, each tall strip in parts: scenes may start inside a strip
    readings = [u.reading for u in units]
    features = chapter.describe.get("features") or {}
    entries = features.get("page_entries")  # a chat model's, one per unit
    given: dict[int, float] = {}  # first unit -> the scene's length, where the scenes file gives one
    if given_scenes is not None:
        gone: list[str] = []

        def part_gone(page: str, part: int, count: int) -> None:  # a kept file's scene in a strip saved shorter
            gone.append(f"{page} part {part} (it has {count} now)")
        read = read_scenes_text(given_scenes["text"], given_scenes["label"], chapter.page_names,
                                _part_counts(chapter), part_gone if given_scenes.get("kept") else None,
                                said=lambda line: cb.warn(f"{job.name}: {line}"))
        if gone:  # as a kept scene whose first page is gone (scoring.kept_scenes)
            cb.warn(f"{job.name}: {', '.join(gone)}, where {'scenes' if len(gone) > 1 else 'a scene'} of "
                    f"{given_scenes['label']} started, {'are' if len(gone) > 1 else 'is'} gone; "
                    + ("the scenes before run on" if read else "the scenes are found in the pages"))
        starts = _scene_starts(chapter, read, job, cb)
        given = {start: length for start, length in starts if length is not None}
        if starts and starts[0][0] > 0:  # the first page always starts a scene: one the file did not list, said
            first = units[starts[0][0]]
            where = f"page {first.number}" + (f" part {first.part}" if (first.part or 1) > 1 else "")
            cb.info(f"{job.name}: the scenes file's first scene starts on {where}; what comes before it is a scene "
                    "of its own, as long as it takes to read (list page 1 to give it a length)")
        scenes = scenes_from_starts([start for start, _ in starts], len(readings)) if starts else \
            found_scenes(readings)
    elif entries and len(entries) == len(readings):
        scenes = scenes_from_starts(_starts_from_entries(entries), len(readings))
    else:
        scenes = found_scenes(readings)
    direction = chapter_direction(chapter.readings, seed)  # the chapter's pages, as its description reads them
    if features.get("direction"):
        from .describers.chapter import ChapterDirection
        from .music.text_to_style import key_tonic

        chat = ChapterDirection.model_validate(features["direction"])  # its key in words ("C sharp minor") was
        # recorded as "C", and the theme played in it
        direction = Direction(tonic=key_tonic(chat.key) or chat.key.split()[0], lead=lead_instrument(chat.instruments, direction.lead),
                              theme=theme_for(seed),
                              mood=direction.mood, chat=chat)
    builtin = describer.backend == "builtin-vision"

    def entries_mood(pages: list[int]) -> str:  # a chat model's scene: the mood most of its pages' entries give
        return Counter(entries[i]["mood"] for i in pages).most_common(1)[0][0]

    old = {s.get("index"): s for s in (job.record.get("score") or {}).get("scenes", [])}
    plans = []
    spent: list = []  # the tokens of each scene described in this run
    for k, scene in enumerate(scenes, start=1):
        pages = list(scene.pages)
        key = fingerprint({"pages": [readings[i].to_dict() for i in pages], "describer": describer.settings_key(),
                           "direction": {k: v for k, v in direction.__dict__.items() if k != "chat"},
                           "chat": direction.chat.model_dump() if direction.chat is not None else None,
                           "entries": [entries[i] for i in pages] if entries else None, "scenes": SCENES_VERSION})
        txt = job.files.sibling(f".scene{k:02d}.txt")
        previous = old.get(k, {})
        if txt.exists() and not is_ours(txt, job.record):
            text = read_edited_description(txt, cb.warn)
            moved = _moved_from(previous.get("pages"), pages, k, chapter, scenes, job.record.get("pages") or [],
                                lambda j: job.files.sibling(f".scene{j:02d}.txt").name)
            if moved or cfg.force or previous.get("description") != text:
                # new words: said once, not on every rerun that finds them as the last score used them (nor for
                # ours with only spaces or lines added by an editor: the same words); and again under --force,
                # which makes every cue again (from these words)
                cb.warn(f"{job.name}: scene {k}: {txt.name} was written or edited by you; composing from it"
                        + (f". {moved}" if moved else ""))
            mood = previous.get("mood")
            if moved or not previous.get("mood"):  # the mood recorded was its old pages' (or none was: the words
                # were written before the scene was first made): say its pages' own
                mood = (entries_mood(pages) if entries
                        else scene_music(readings)(pages[0], pages[-1] + 1)[0] if builtin else None)
            plans.append(ScenePlan(k, pages, text, mood, key, user_text=True))
            continue
        if not cfg.force and previous.get("key") == key and previous.get("description") \
                and not previous.get("user_text"):  # a text the user has since moved or deleted is not reused
            plans.append(ScenePlan(k, pages, previous["description"], previous.get("mood"), key,
                                   usage=previous.get("usage"), describer_seed=previous.get("describer_seed")))
            continue
        usage, said_seed = None, None
        try:
            if builtin:
                text, mood = builtin_scene_description([readings[i] for i in pages], direction)
            elif direction.chat is not None and entries:  # a chat model: the scene's entries and the direction
                from .describers.chapter import scene_description

                scene_entries = [entries[i] for i in pages]
                text, usage = scene_description(describer, scene_entries, direction.chat, memo=memo,
                                                warn=lambda line, k=k: cb.warn(f"{job.name}: scene {k}: {line}"))
                mood, said_seed = entries_mood(pages), describer_seed(describer)
            else:  # ask the describer about this scene's pages, then hold it to the chapter's direction
                from .execution import work_ahead

                work_ahead()
                stream = PageStream([chapter.infos[i] for i in dict.fromkeys(units[u].page for u in pages)],
                                    max_side=describer.page_side)
                result = describer.describe(stream, progress=cb.step)
                text, usage = readable(result.description).strip(), result.usage or None
                text, mood, said_seed = f"{text} {direction.sentence()}", None, describer_seed(describer)
        except Manga2MusicError as exc:  # the scenes described before it in this run were paid for
            raise charge(exc, *spent)
        spent.append(usage)
        plans.append(ScenePlan(k, pages, text, mood, key, usage=usage, describer_seed=said_seed))
    for plan in plans:
        plan.given_s = given.get(plan.pages[0])
    return plans, direction
