"""What a chat model (GPT, a local VLM) tells a chapter score: one entry per page, a direction, a scene's music.

Inside the usual two-stage shape (pages first, then text-only calls):

1. :func:`page_entries`: the pages in chunks, each answered as JSON with one entry per
   page: its mood, its intensity (1 calm, 2 moderate, 3 intense), whether it starts a
   new scene, and why.  Each chunk after the first is told how the page before it felt,
   so a scene change on a chunk's first page is judged against the right page.  A chunk
   that holds more pages than the model takes at once is asked again in parts.
2. :func:`chapter_direction` (text only): from all the entries, the chapter's home key,
   the instruments every scene shares, and its tempo range.
3. :func:`scene_description` (text only): per scene, one paragraph of music that follows
   the direction and fits the scene's entries.

An answer that is not the JSON asked for gets one retry, then the chapter fails (an
error string never becomes music).  ``SCORE_PROMPT_VERSION`` is part of the settings.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Iterable, Optional

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from ..errors import AnswerUnusableError, BackendError, Manga2MusicError, PagesDoNotFitError, ServerBusyError
from .answers import clean_description, parse_json_object, repeats_request, strip_fences, strip_reasoning
from .chat import (
    charge,
    chat_request,
    cut_off_description,
    description_tokens,
    finished_text,
    json_tokens,
    more_tokens,
    pages_word,
    retry_tokens,
    sum_usage,
)

#: bump on any change of wording below
SCORE_PROMPT_VERSION = "score-2026-11-1"
MAX_TOKENS = 900


def _plain_keys(data):
    """An answer's object with its keys as asked ("Page", "Scene change", "sceneChange" -> "scene_change")."""
    if not isinstance(data, dict):
        return data
    return {re.sub(r"(?<=[a-z])(?=[A-Z])", "_", str(k)).strip().lower().replace(" ", "_").replace("-", "_"): v
            for k, v in data.items()}


#: intensities in words, as models write them where a number was asked
_INTENSITY_WORDS = {"low": 1, "calm": 1, "mild": 1, "gentle": 1, "quiet": 1, "moderate": 2, "medium": 2, "mid": 2,
                    "high": 3, "intense": 3, "very high": 3, "extreme": 3, "strong": 3}


def _within(value, low: int, high: int, near: tuple[float, float]):
    """A number the model gave a little out of the range asked, brought into it (a tempo of 250 where 240 is the
    most, an intensity of 5 on a 1-3 scale): the answer was read, and asking again said only "validation error".
    A number outside ``near`` (a tempo of 0, an intensity of 1e999) is no answer: left to fail, and asked again."""
    import math

    if isinstance(value, bool):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        return value
    if not math.isfinite(number) or not near[0] <= number <= near[1]:
        return value
    return int(min(high, max(low, round(number))))


class _Answer(BaseModel):
    """An answer read as asked where a model wrote it otherwise: its keys (:func:`_plain_keys`), then what the
    class mends in its object (:meth:`_mended`)."""

    @model_validator(mode="before")
    @classmethod
    def _as_asked(cls, data):
        data = _plain_keys(data)
        return cls._mended(data) if isinstance(data, dict) else data

    @classmethod
    def _mended(cls, data: dict) -> dict:
        return data


class PageEntry(_Answer):
    page: int = Field(description="the page's number in this request, from 1")
    mood: str = Field(description="one or two words")
    intensity: int = Field(ge=1, le=3, description="1 calm, 2 moderate, 3 intense")
    scene_change: bool = Field(description="true when this page starts a new scene")
    why: str = Field("", description="a few words")

    @classmethod
    def _mended(cls, data: dict) -> dict:
        data.setdefault("scene_change", data.pop("new_scene", data.pop("starts_scene", None)))
        if isinstance(data.get("mood"), list):
            data["mood"] = ", ".join(str(m) for m in data["mood"])
        intensity = data.get("intensity")
        if isinstance(intensity, str) and intensity.strip().lower() in _INTENSITY_WORDS:
            data["intensity"] = _INTENSITY_WORDS[intensity.strip().lower()]
        elif intensity is not None:
            data["intensity"] = _within(intensity, 1, 3, near=(0, 10))
        return data


class PageEntries(_Answer):
    pages: list[PageEntry]

    @classmethod
    def _mended(cls, data: dict) -> dict:
        if "pages" not in data and len(data) == 1 \
                and isinstance(next(iter(data.values())), (list, dict)):  # {"entries": [...]}, {"Pages": ...}
            data = {"pages": next(iter(data.values()))}
        pages = data.get("pages")
        if isinstance(pages, dict) and all(str(k).strip().isdigit() and isinstance(v, dict)
                                           for k, v in pages.items()):  # {"1": {...}, "2": {...}}: by number
            data = {**data, "pages": [{"page": int(k), **_plain_keys(v)} for k, v in pages.items()]}
        return data


class ChapterDirection(_Answer):
    key: str = Field(description="one home key for the whole chapter, e.g. 'D minor'")
    instruments: list[str] = Field(description="3 to 5 instruments every scene shares, the lead first")
    tempo_low: int = Field(ge=30, le=220)
    tempo_high: int = Field(ge=30, le=240)

    @classmethod
    def _mended(cls, data: dict) -> dict:
        named = data.get("instruments")
        if isinstance(named, str) and re.search(r"[,;]|\band\b", named):  # "piano, strings and flute" (one word,
            # "none", stays no list: asked again)
            data["instruments"] = [w.strip() for w in re.split(r"[,;]|\band\b", named) if w.strip()]
        for name, high in (("tempo_low", 220), ("tempo_high", 240)):
            if name in data:
                data[name] = _within(data[name], 30, high, near=(20, 400))
        low, high = data.get("tempo_low"), data.get("tempo_high")
        if isinstance(low, int) and isinstance(high, int) and low > high:  # given the other way round
            data["tempo_low"], data["tempo_high"] = min(high, 220), max(low, 30)
        return data

    @field_validator("key")
    @classmethod
    def _named(cls, key: str) -> str:
        """A blank key is no answer (it is asked again): every scene must be told the same home key."""
        if not key.strip():
            raise ValueError("the key is empty")
        return key.strip()


def entries_prompt(count: int, before: Optional[str]) -> str:
    context = (f"The page just before these felt: {before}. Judge whether page 1 starts a new scene against it."
               if before else "Page 1 is the first page of the chapter: it always starts a scene.")
    return (f"These are {count} consecutive manga pages, in reading order. For each page give its mood (one or two "
            "words), its intensity (1 calm, 2 moderate, 3 intense), whether it starts a new scene (a new place, a "
            "jump in time, or a clear change of mood: true or false), and why in a few words. " + context +
            ' Answer with JSON only: {"pages": [{"page": 1, "mood": "...", "intensity": 1, "scene_change": true, '
            '"why": "..."}, ...]} with exactly one entry per page.')


def direction_prompt(entries: list[dict]) -> str:
    listing = "; ".join(f"page {i + 1}: {e['mood']} ({e['intensity']})" for i, e in enumerate(entries))
    return ("A manga chapter will get one continuous film score. Its pages' moods and intensities (1-3) in order: "
            f"{listing}. Give the score's direction so every scene sounds part of one piece: one home key, 3 to 5 "
            "instruments every scene shares (the lead first), and a tempo range in BPM wide enough for its calm and "
            'its intense scenes. Answer with JSON only: {"key": "D minor", "instruments": ["..."], "tempo_low": 60, '
            '"tempo_high": 150}')


def scene_prompt(entries: list[dict], direction: ChapterDirection) -> str:
    moods = ", ".join(f"{e['mood']} ({e['intensity']})" for e in entries)
    return (f"Write the music for one scene of a manga chapter's score. Its pages feel: {moods} (intensity 1 calm to "
            f"3 intense). Stay in the chapter's key, {direction.key}; use its instruments, "
            f"{', '.join(direction.instruments)}, adding at most two of your own; choose a tempo between "
            f"{direction.tempo_low} and {direction.tempo_high} BPM that fits the scene's intensity. Write one "
            "paragraph of at most 60 words for a text-to-music model: style, instruments, tempo in BPM, key and mood. "
            "Never mention the comic, its characters or its story.")


def _ask_json(describer, prompt: str, images: list, model, what: str, memo=None, check=None, warn=None):
    """One call (and one retry) whose answer must be JSON matching ``model`` (and pass ``check``, which raises
    ValueError saying what is wrong with it): the answer read, and the tokens asking took (those it took an earlier
    run, when ``memo`` kept the answer: see :mod:`manga2music.answer_memo`).  Only an answer that passes is kept.
    ``warn(line)`` is told what the server said of its answers (it takes no structured output)."""
    tokens = json_tokens(describer, MAX_TOKENS)
    request = chat_request(describer, model.__name__, prompt, images, tokens) if memo is not None else None
    kept = memo.recall(request, model.model_validate) if memo is not None else None
    if kept is not None:
        try:
            if check is not None:
                check(kept.answer)
            return kept.answer, kept.usage
        except ValueError:  # kept by a version that did not check it: asked again
            pass
    reason, usage = "", sum_usage([])
    try:
        for attempt in range(2):
            text = prompt if not attempt else f"{prompt}\nYour last answer could not be read ({reason}). JSON only."
            answer = describer._complete(text, images, json_schema=model.model_json_schema(), max_tokens=tokens)
            usage = sum_usage([usage, answer.usage])
            for line in getattr(answer, "warnings", None) or ():
                if warn is not None:
                    warn(line)
            if answer.refusal:
                raise AnswerUnusableError(f"{describer.model_name} refused to answer ({what}): "
                                          f"{answer.refusal.strip()[:160]}")
            if answer.cut_off:  # a fragment "repaired" into JSON would be taken for the model's answer
                reason = "it was cut off at the token limit"
                tokens = retry_tokens(describer, tokens, cut_off=True)
                continue
            if repeats_request(answer.text, prompt):  # the request's own example JSON, given back: taken for the
                # chapter's direction ("instruments": ["..."]) and kept for every rerun
                reason = "it repeated the request instead of answering it"
                continue
            try:
                parsed = model.model_validate(_object_of(answer.text, model))
                if check is not None:
                    check(parsed)
            except (ValueError, ValidationError) as exc:
                reason = str(exc).splitlines()[0][:160]
                continue
            if memo is not None:
                memo.keep(request, parsed.model_dump(), usage)
            return parsed, usage
        raise AnswerUnusableError(f"{describer.model_name} did not answer the JSON asked for ({what}), even after one "
                                  f"retry ({reason})",
                                  hint=more_tokens(describer) if reason.startswith("it was cut off") else
                                  "try a larger model, or --vision-model builtin for the score")
    except Manga2MusicError as exc:
        raise charge(exc, usage)


def _object_of(text: str, model) -> dict:
    """The JSON object of an answer; a bare list where ``model`` is one list (``[{...}, {...}]`` for the page
    entries: small models leave out the wrapping object) stands for that list."""
    lists = [name for name, f in model.model_fields.items() if getattr(f.annotation, "__origin__", None) is list]
    if len(model.model_fields) == 1 and lists:
        import json

        body = strip_fences(strip_reasoning(text)).strip()
        if body.startswith("["):
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, list):
                return {lists[0]: data}
    return parse_json_object(text)


def _entries_in_order(answer: PageEntries, count: int) -> list:
    """The answer's entry for each of ``count`` pages, by the page numbers it gave (from 1, or from 0), else in the
    order given; ValueError when it has too few."""
    by_number = {e.page: e for e in answer.pages}
    if len(by_number) < len(answer.pages):  # numbers given twice ("page": 1 for each): they say nothing
        by_number = {}
    if sorted(by_number) == list(range(count)):  # numbered from 0: the first page is "0"
        by_number = {number + 1: e for number, e in by_number.items()}
    found = [by_number.get(k) or (answer.pages[k - 1] if k - 1 < len(answer.pages) else None)
             for k in range(1, count + 1)]
    if None in found:
        raise ValueError(f"it gave {len(answer.pages)} entries for {count} pages")
    return found


def page_entries(describer, pages: Iterable, count: int, progress=None, memo=None,
                 warn=None) -> tuple[list[dict], dict]:
    """One entry per page (dicts: name, mood, intensity, scene_change, why), and the tokens used.  A chunk that
    holds more pages than the model takes at once is asked again in parts (``describer.smaller_parts``, down to one
    page); ``warn(line)`` is told."""
    from ..progress import report
    from ..reading import source_name

    usage: dict | None = sum_usage([])
    entries: list[dict] = []
    it, done = iter(pages), 0
    waiting: list[list] = []  # parts of a chunk that did not fit, still to ask, in order
    unread: Optional[Manga2MusicError] = None  # the last chunk whose answers could not be used
    neutral: list[str] = []  # the lines that say a chunk's pages were read as neutral
    files: dict[str, int] = {}  # each page file met, by its place: the lines count the user's files, not the parts
    # a tall strip is cut into ("pages 1-8" of a 6-file chapter)
    try:
        while chunk := (waiting.pop(0) if waiting else list(islice(it, describer.request_size()))):
            before = f"{entries[-1]['mood']} (intensity {entries[-1]['intensity']})" if entries else None
            for image in chunk:
                files.setdefault(source_name(image.name), len(files) + 1)
            span = f"pages {files[source_name(chunk[0].name)]}-{files[source_name(chunk[-1].name)]}"
            try:
                parsed, spent = _ask_json(describer, entries_prompt(len(chunk), before), chunk, PageEntries,
                                          span, memo,
                                          check=lambda answer, n=len(chunk): _entries_in_order(answer, n), warn=warn)
            except PagesDoNotFitError as exc:
                if len(chunk) == 1:
                    raise
                parts = describer.smaller_parts(exc, chunk)
                waiting[:0] = parts
                if warn is not None:
                    warn(f"{span}: {exc.message}; sent again {pages_word(len(parts[0]))} at a time")
                continue
            except BackendError as exc:  # one chunk's answers unusable (no JSON even after a retry, a refusal, a
                # content filter, a 4xx for its pages): its pages read as neutral, said, and the chapter goes on (one
                # such chunk failed a 50-page chapter whole); a chapter none of whose chunks answered fails with the
                # last one's words.  A server that failed for now (5xx after its retries, a timeout) fails the
                # chapter: its pages, read as neutral for good, were never asked again, and the rerun asks only for
                # them (the answers before are kept)
                if exc.stops_run or isinstance(exc, ServerBusyError):
                    raise
                unread, usage = exc, sum_usage([usage, exc.usage])
                neutral.append(f"{span}: {exc.message.rstrip('.')}; read as neutral pages")  # said once some
                # part is read: a chapter no part of which answered fails, and was said "read as neutral" first
                done += len(chunk)
                report(progress, done, count, f"reading the pages ({done}/{count})")
                continue
            usage = sum_usage([usage, spent])
            for image, e in zip(chunk, _entries_in_order(parsed, len(chunk))):
                entries.append({"name": image.name, "mood": e.mood.strip()[:40] or "neutral",
                                "intensity": e.intensity, "scene_change": bool(e.scene_change) or not entries,
                                "why": e.why.strip()[:120]})
            done += len(chunk)
            report(progress, done, count, f"reading the pages ({done}/{count})")
        if unread is not None and not entries:
            unread.usage = None
            if len(files) > 1:
                unread.message = f"no part of its {len(files)} pages was read: {unread.message}"
            raise unread
        if warn is not None:
            for line in neutral:
                warn(line)
    except Manga2MusicError as exc:  # the chunks asked before it were paid for
        raise charge(exc, usage)
    return entries, usage


def chapter_direction(describer, entries: list[dict], usage: dict | None = None,
                      memo=None, warn=None) -> tuple[ChapterDirection, dict | None]:
    """The chapter's direction, and ``usage`` with the call's tokens added (see :func:`chat.sum_usage`)."""
    try:
        direction, spent = _ask_json(describer, direction_prompt(entries), [], ChapterDirection,
                                     "the chapter's direction", memo, warn=warn)
    except Manga2MusicError as exc:  # the pages' entries were paid for
        raise charge(exc, usage)
    usage = sum_usage([usage, spent])
    if direction.tempo_high < direction.tempo_low:
        direction.tempo_low, direction.tempo_high = direction.tempo_high, direction.tempo_low
    direction.instruments = [i.strip() for i in direction.instruments if i.strip()][:5] or ["piano"]
    return direction, usage


def scene_description(describer, entries: list[dict], direction: ChapterDirection,
                      memo=None, warn=None) -> tuple[str, dict | None]:
    """A scene's music description, and the tokens its call used (``None``: the server did not say; kept with the
    answer when ``memo`` kept it from an earlier run).  ``warn(line)``: a description cut off at the token limit."""
    prompt, tokens = scene_prompt(entries, direction), description_tokens(describer)
    request = chat_request(describer, "scene", prompt, [], tokens) if memo is not None else None
    kept = memo.recall(request, lambda text: clean_description(str(text))) if memo is not None else None
    if kept is not None:
        for line in kept.warnings:
            if warn is not None:
                warn(line)
        return kept.answer, kept.usage
    answer = describer._complete(prompt, [], json_schema=None, max_tokens=tokens)
    said = []
    try:
        if answer.refusal:
            raise AnswerUnusableError(f"{describer.model_name} refused to describe a scene: "
                                      f"{answer.refusal.strip()[:160]}")
        text = finished_text(answer, describer, "a scene")
        if answer.cut_off:  # its unfinished end dropped: what is left may be "strings and."
            said.append(cut_off_description(describer))
        if repeats_request(text, prompt):
            raise AnswerUnusableError(f"{describer.model_name} repeated the request instead of describing a scene: "
                                      f"{' '.join(text.split())[:80]!r}...", hint="try a larger model")
        try:
            text = clean_description(text, said)
        except ValueError as exc:
            raise AnswerUnusableError(f"{describer.model_name} gave no usable music description for a scene "
                                      f"({exc})") from None
    except Manga2MusicError as exc:
        raise charge(exc, answer.usage)
    for line in said:
        if warn is not None:
            warn(line)
    if memo is not None:
        memo.keep(request, text, answer.usage, said)
    return text, answer.usage
