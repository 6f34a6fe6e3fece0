"""Two-stage prompting shared by every chat-model describer (OpenAI API, transformers VLMs).

A backend implements one method, :meth:`ChatDescriber._complete` (one user
turn: the images in order, then the prompt text).  :meth:`ChatDescriber.describe`
does the rest:

* pages are split into chunks of ``chunk_size`` (``options.chunk_size`` or the
  class's ``default_chunk_size``); every page lands in exactly one chunk;
* **two stage** (default): each chunk is analysed (stage 1, images + JSON
  schema).  An answer that cannot be read as JSON gets one retry with a
  "valid JSON only" reminder, then the section fails.  The chunk analyses are
  merged (:func:`~manga2music.describers.answers.merge_analyses`) and one
  text-only call (stage 2) writes the description;
* **single stage** (``options.single_stage``): each chunk is asked for a
  description directly; with more than one chunk, one more text-only call
  merges the chunk descriptions, in order, into one;
* every description is cleaned (:func:`~manga2music.describers.answers.clean_description`);
  refusals, empty answers and apologies raise ``BackendError``, so an error
  string never reaches a music model;
* a chunk that holds more pages than the model takes at once
  (:class:`~manga2music.errors.PagesDoNotFitError`: a local model ran out of
  memory, a server's image limit or context was exceeded) is sent again as
  parts of as many pages as the server said it takes, else as halves, and so
  on down to one page, whose failure is the section's.  The smaller size is
  kept for the rest of the section and the run (:meth:`ChatDescriber.request_size`);
  the record lists each request's pages, and a warning says why;
* token usage is summed over all calls; ``progress(done, total, label)`` is
  called after each call (a retry adds one to ``total``);
* given an :class:`~manga2music.answer_memo.AnswerMemo`, every accepted answer
  is kept as soon as it is read, and an answer kept by an earlier run that did
  not finish is taken instead of asking again (``memo.reused`` counts them; the
  tokens it cost, kept with it, still count: usage is what the description cost).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, TypeVar

from pydantic import Field

from ..analysis import ChunkRecord, DescribeResult, SectionAnalysis
from ..errors import (AnswerUnusableError, BackendError, Manga2MusicError, PagesDoNotFitError,
                      WordsDoNotFitError)
from ..options import flag
from ..progress import ProgressFn, report
from ..prompts import (
    PROMPT_VERSION,
    analysis_schema,
    merge_prompt,
    retry_json_prompt,
    single_stage_prompt,
    stage1_placeholders,
    stage1_prompt,
    stage2_prompt,
)
from .answers import (
    clean_description,
    drop_unfinished_end,
    merge_analyses,
    parse_analysis,
    repeats_analysis_request,
    repeats_request,
    saw_no_pages,
    strip_reasoning,
)
from .base import Describer, PageImage

if TYPE_CHECKING:  # pragma: no cover
    from ..answer_memo import AnswerMemo

#: stage 2 answers are about 60 words; this leaves room without letting a model ramble
DESCRIPTION_MAX_TOKENS = 200
#: what to do about an answer cut off at the token cap
def more_tokens(describer) -> str:
    """How to give an answer cut off at its token cap more room: raise --max-new-tokens, where above its default it
    also raises the description's own cap (said as "above 512" to a user who had given 1000, it is said so only to
    one who has not)."""
    asked = getattr(getattr(describer, "options", None), "max_new_tokens", None)
    if isinstance(asked, int) and asked > DEFAULT_MAX_NEW_TOKENS:
        return f"raise --max-new-tokens (it is {asked} now)"
    return (f"raise --max-new-tokens (above {DEFAULT_MAX_NEW_TOKENS} it also raises the description's own cap of "
            f"{DESCRIPTION_MAX_TOKENS})")


def cut_off_description(describer) -> str:
    """Said of a description cut off at the token cap (its unfinished end dropped: "... soft strings and.")."""
    return f"the description was cut off at the token limit; its unfinished end was dropped ({more_tokens(describer)})"


def retry_tokens(describer, tokens: int, cut_off: bool) -> int:
    """The token cap to ask again with: twice ``tokens`` after an answer cut off at it (the same cap would cut the
    same answer off again), unless the user gave --max-new-tokens (their cap holds)."""
    return tokens * 2 if cut_off and "max_new_tokens" not in describer.options.model_fields_set else tokens


@dataclass
class Completion:
    """What one chat turn answered."""

    text: str
    prompt_tokens: int | None = 0  # None: the server did not say
    completion_tokens: int | None = 0
    refusal: str | None = None
    warnings: list[str] = field(default_factory=list)  # things the section's record should mention
    finish_reason: str | None = None  # "length": the answer was cut off at the token cap (None: not known)

    @property
    def cut_off(self) -> bool:
        return self.finish_reason == "length"

    @property
    def usage(self) -> dict[str, int] | None:
        """The call's tokens as a record keeps them; ``None`` when the server did not say."""
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return {"prompt_tokens": int(self.prompt_tokens), "completion_tokens": int(self.completion_tokens)}


DEFAULT_MAX_NEW_TOKENS = 512  # --max-new-tokens when not given


def description_tokens(describer) -> int:
    """The cap on a music description's answer: DESCRIPTION_MAX_TOKENS (it is ~60 words), or --max-new-tokens when
    it is lower, or when it was raised above its default: a thinking model reasons before it answers, and a fixed
    cap failed every stage 2 with finish_reason=length whatever the user gave."""
    asked = int(describer.options.max_new_tokens)
    return asked if asked > DEFAULT_MAX_NEW_TOKENS else max(16, min(asked, DESCRIPTION_MAX_TOKENS))


#: the seed a describer that samples in this process (a local VLM) uses, when no --seed was given, for the section
#: being read: drawn by the caller (:func:`manga2music.describing.section_seed`), recorded, and kept with the
#: section's answers so that a resumed section goes on with it.  A context variable: each thread (a chapter on Ray,
#: a web UI job) reads its own section's.
_DRAWN_SEED: ContextVar[Optional[int]] = ContextVar("manga2music_drawn_seed", default=None)


@contextmanager
def drawn_seed(seed: Optional[int]) -> Iterator[None]:
    """Sample with ``seed`` where no --seed was given, until the block ends (``None``: unseeded)."""
    token = _DRAWN_SEED.set(seed)
    try:
        yield
    finally:
        _DRAWN_SEED.reset(token)


def sampling_seed(describer) -> Optional[int]:
    """The seed ``describer``'s model samples with now: its --seed, else the one drawn for this section where the
    model samples in this process (:attr:`ChatDescriber.samples_here`); ``None``: unseeded (a server's sampling is
    its own, and a seed it was not given is not sent)."""
    seed = getattr(getattr(describer, "options", None), "seed", None)
    if isinstance(seed, int):
        return int(seed)
    return _DRAWN_SEED.get() if getattr(describer, "samples_here", False) else None


def chat_request(describer, what: str, prompt: str, images: list[PageImage], max_tokens: int,
                 settings: Optional[dict] = None) -> Optional[dict]:
    """Everything that decides a chat model's answer, to keep it under (:mod:`manga2music.answer_memo`): what is
    asked, the describer's settings and seed, the token cap, the prompt and the pages' pixels; ``None`` when an image
    has no :attr:`~PageImage.key` (its pixels cannot be named, so its answer is not kept)."""
    if any(not image.key for image in images):
        return None
    options = getattr(describer, "options", None)
    seed = getattr(options, "seed", None)
    return {"what": what, "describer": settings if settings is not None else describer.settings_key(),
            "seed": seed if isinstance(seed, int) else None, "page_side": describer.page_side,
            "max_tokens": int(max_tokens), "prompt": prompt, "pages": [image.key for image in images]}


def json_tokens(describer, at_least: int) -> int:
    """The cap on a JSON answer that needs ``at_least`` tokens: more when --max-new-tokens was raised."""
    asked = int(describer.options.max_new_tokens)
    return max(at_least, asked) if asked > DEFAULT_MAX_NEW_TOKENS else at_least


def sum_usage(parts: Iterable[dict[str, int] | None]) -> dict[str, int] | None:
    """The tokens of several calls together (none: zero); ``None`` (unknown) once any of them is unknown."""
    total = {"prompt_tokens": 0, "completion_tokens": 0}
    for part in parts:
        if part is None:
            return None
        total = {key: total[key] + int(part.get(key) or 0) for key in total}
    return total


def finished_text(answer: Completion, describer, where: str) -> str:
    """A description's answer as it may be played: cut off at the token cap, less its unfinished end (a half-written
    last word would be played as a word); cut-off JSON is no description at all (BackendError)."""
    if not answer.cut_off:
        return answer.text
    text = strip_reasoning(answer.text)
    if not text.strip():  # a thinking model cut off inside its <think> block
        raise AnswerUnusableError(f"{describer.model_name} ran out of tokens before it answered ({where}): its "
                                  "reasoning took them all", hint=more_tokens(describer))
    if text.lstrip().startswith(("{", "```")):
        raise AnswerUnusableError(f"{describer.model_name} ran out of tokens writing the music description ({where})",
                                  hint=more_tokens(describer))
    return drop_unfinished_end(text)


def charge(exc: Manga2MusicError, *spent: dict | None) -> Manga2MusicError:
    """``exc`` (a failure) with the tokens already ``spent`` before it added to those its own call took: the
    failed section's manifest entry says them, since they were paid for (unknown once any part is unknown)."""
    exc.usage = sum_usage([*spent, exc.usage if exc.usage is not None else sum_usage([])])
    return exc


@dataclass
class _SectionCalls:
    """The bookkeeping of one section's calls: passed along, never kept on the describer."""

    progress: ProgressFn | None
    total: int
    done: int = 0
    usage: dict[str, int] | None = field(default_factory=lambda: sum_usage([]))
    warnings: list[str] = field(default_factory=list)
    memo: "Optional[AnswerMemo]" = None  # where answers are kept for a rerun
    settings: Optional[dict] = None  # the describer's settings_key, asked once

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def chunk_pages(pages: Iterable[PageImage], size: "int | Callable[[], int]") -> Iterator[list[PageImage]]:
    """Consecutive chunks of at most ``size`` pages, covering every page once, in order; one chunk is held at a time.
    ``size`` may be a function, asked again for each chunk."""
    next_size = size if callable(size) else (lambda: size)
    it = iter(pages)
    while chunk := list(islice(it, max(1, int(next_size())))):
        yield chunk


def _page_span(chunk: list[PageImage]) -> str:
    return chunk[0].name if len(chunk) == 1 else f"{chunk[0].name}..{chunk[-1].name}"


T = TypeVar("T")


def pages_word(count: int) -> str:
    return f"{count} page{'' if count == 1 else 's'}"


class ChatDescriber(Describer):
    """A describer built on a chat model that sees images; subclasses implement :meth:`_complete`."""

    class Options(Describer.Options):
        single_stage: bool = False  # ask for the description directly (no analysis stage)
        chunk_size: Optional[int] = Field(None, ge=1, le=256)  # pages per request; None: the backend's default
        seed: Optional[int] = None  # repeatable sampling where the model allows it
        max_new_tokens: int = Field(DEFAULT_MAX_NEW_TOKENS, ge=1, le=32768)  # cap on tokens per answer

    default_chunk_size: int = 8  # pages per request unless options.chunk_size
    chats = True
    #: the models a server said answered the questions of the section (or chapter) being read, in this run, each
    #: once (see :meth:`served_by`); a section starts with none (:meth:`new_section`)
    _served: tuple[str, ...] = ()
    #: True: the model samples in this process (a local VLM), so a section read without --seed gets a drawn seed,
    #: and the record names it (:func:`sampling_seed`)
    samples_here = False

    # --- what a backend implements ------------------------------------------------------------

    def _complete(
        self, prompt: str, images: list[PageImage], *, json_schema: dict | None, max_tokens: int
    ) -> Completion:
        """One chat turn: a user message with ``images`` (in order) then ``prompt`` text.

        ``json_schema``: ask for structured output when the backend supports it
        (backends that cannot just ignore it).  Raise ``BackendError`` on failure.
        """
        raise NotImplementedError

    def _estimate_cost(self, usage: dict[str, int]) -> float | None:
        """USD for ``usage``, when the backend knows its prices (``None`` otherwise)."""
        return None

    #: what a backend calls with a few words while a call waits (a rate limit): the progress shows them
    _on_wait: Optional[Callable[[str], None]] = None
    #: the most pages a request was found to take in this run (a server's stated limit, or the size that followed
    #: running out of memory), and why; None: ``chunk_size``
    _pages_limit: Optional[int] = None
    _pages_limit_reason: str = ""

    def request_size(self) -> int:
        """Pages to send a request: ``chunk_size``, or fewer once the model was found to take fewer."""
        return min(self.chunk_size, self._pages_limit or self.chunk_size)

    def smaller_parts(self, exc: PagesDoNotFitError, chunk: list[T]) -> list[list[T]]:
        """``chunk`` (more than one page) cut into parts to send after ``exc``: of as many pages as the server said
        it takes, else halves.  That size is kept for the rest of the run."""
        size = max(1, min(exc.fits or (len(chunk) + 1) // 2, len(chunk) - 1))
        if self._pages_limit is None or size < self._pages_limit:
            self._pages_limit, self._pages_limit_reason = size, exc.message
        return [chunk[i:i + size] for i in range(0, len(chunk), size)]

    def _requests(self, pages: list[PageImage], calls: _SectionCalls) -> Iterator[list[PageImage]]:
        """The section's pages in chunks of :meth:`request_size`, asked again for each chunk (a size lowered on
        one chunk holds for the next), one chunk held at a time; before each, the progress bar's total is set to
        the calls done and the calls the pages left will take at that size."""
        left, first = len(pages), True
        for chunk in chunk_pages(pages, self.request_size):
            size = self.request_size()
            last_call = self.two_stage or not (first and left <= size)  # stage 2, or the merge of several
            calls.total = calls.done + -(-left // size) + (1 if last_call else 0)
            left, first = left - len(chunk), False
            yield chunk

    def _in_parts_that_fit(self, chunk: list[PageImage], read: Callable[[list[PageImage]], T],
                           calls: _SectionCalls) -> list[tuple[list[PageImage], T]]:
        """``[(chunk, read(chunk))]``; when the chunk holds more pages than the model takes at once, its parts
        (:meth:`smaller_parts`), each read the same way (a warning says so, and the progress bar's total grows
        by the extra calls); one page that does not fit raises."""
        try:
            return [(chunk, read(chunk))]
        except PagesDoNotFitError as exc:
            if len(chunk) == 1:
                raise
            parts = self.smaller_parts(exc, chunk)
            calls.total += len(parts) - 1
            calls.warn(f"{_page_span(chunk)}: {exc.message}; sent again {pages_word(len(parts[0]))} at a time")
            return [done for part in parts for done in self._in_parts_that_fit(part, read, calls)]

    def waiting(self, label: str) -> None:
        if self._on_wait is not None:
            self._on_wait(label)

    # --- shared ---------------------------------------------------------------------------

    @property
    def two_stage(self) -> bool:  # type: ignore[override]
        return not self.options.single_stage

    @property
    def chunk_size(self) -> int:
        return max(1, int(self.options.chunk_size or self.default_chunk_size))

    def new_section(self) -> None:
        """A section (or chapter) starts: the models that answered the one before are not its own."""
        self._served = ()

    def served_by(self, model: str) -> None:
        """A server said ``model`` answered (a dated snapshot, an Ollama alias, a router's choice)."""
        if model not in self._served:
            self._served = (*self._served, model)

    @property
    def served_models(self) -> tuple[str, ...]:
        """The models the server said answered this section's questions so far (those of the answers kept from a
        run that did not finish too: :class:`~manga2music.answer_memo.AnswerMemo`)."""
        return self._served

    @property
    def served_model(self) -> Optional[str]:
        """The models that answered this section's questions, where one is not the model asked for (recorded by
        :func:`manga2music.cache.made_by`): each that answered, as a router answers with several; an answer kept
        from a run that did not finish names the one that gave it."""
        if not any(m != self.model_name for m in self._served):
            return None
        return ", ".join(self._served)

    def settings_key(self) -> dict:
        key = super().settings_key()
        key.update(prompt_version=PROMPT_VERSION, single_stage=bool(self.options.single_stage), chunk_size=self.chunk_size)
        return key

    def kept_settings(self) -> dict:
        """Settings given that do not change what the words are, so not in :meth:`settings_key`, that a rerun
        keeping this model keeps too (recorded as ``kept_settings``; see :func:`manga2music.api.keep_models`): a
        --max-new-tokens given (a thinking model needs room: every chapter added later was read with the default
        cap, cut off, and failed)."""
        given = self.options.model_fields_set
        kept = {"max_new_tokens": int(self.options.max_new_tokens)} if "max_new_tokens" in given else {}
        if "chunk_size" in given and self.options.chunk_size:  # given, not measured from the model's context (a
            # local model's measured one, kept as if given, was not measured again for a new --max-new-tokens)
            kept["chunk_size"] = int(self.options.chunk_size)
        return kept

    def describe(self, pages: list[PageImage], *, progress: ProgressFn | None = None,
                 memo: "Optional[AnswerMemo]" = None) -> DescribeResult:
        if not pages:
            raise BackendError("no pages to describe in this section")
        self.new_section()
        size = self.request_size()
        count = -(-len(pages) // size)
        calls = _SectionCalls(progress, count + (1 if self.two_stage or count > 1 else 0), memo=memo,
                              settings=self.settings_key() if memo is not None else None)
        if size < self.chunk_size and len(pages) > size:
            calls.warn(f"sent {pages_word(size)} a request, as earlier in this run: {self._pages_limit_reason}")
        chunks = self._requests(pages, calls)
        try:
            if self.two_stage:
                description, analysis, records = self._two_stage(chunks, calls)
            else:
                description, records = self._single_stage(chunks, calls)
                analysis = None
        except Manga2MusicError as exc:  # what was spent before the failure is said in the manifest
            exc.usage = calls.usage
            exc.cost_usd = None if calls.usage is None else self._estimate_cost(calls.usage)
            raise
        usage = calls.usage
        return DescribeResult(
            description=description,
            analysis=analysis,
            chunks=records,
            usage=usage,
            cost_usd=None if usage is None else self._estimate_cost(usage),
            prompt_version=PROMPT_VERSION,
            warnings=list(calls.warnings),
        )

    # --- the two flows --------------------------------------------------------------------

    def _two_stage(self, chunks: Iterable[list[PageImage]],
                   calls: _SectionCalls) -> tuple[str, SectionAnalysis, list[ChunkRecord]]:
        records, parts = [], []
        for pages in chunks:
            for chunk, analysis in self._in_parts_that_fit(pages, lambda part: self._analyse(part, calls), calls):
                records.append(ChunkRecord(pages=[p.name for p in chunk], analysis=analysis))
                parts.append((analysis, len(chunk)))
        analysis = merge_analyses(parts)
        description = self._description(stage2_prompt(analysis), [], "writing the description", "stage 2", calls)
        return description, analysis, records

    def _single_stage(self, chunks: Iterable[list[PageImage]], calls: _SectionCalls) -> tuple[str, list[ChunkRecord]]:
        records, descriptions = [], []

        def describe(chunk: list[PageImage]) -> str:
            span = _page_span(chunk)
            return self._description(single_stage_prompt(len(chunk)), chunk, f"describing {span}", span, calls)

        for pages in chunks:
            for chunk, description in self._in_parts_that_fit(pages, describe, calls):
                descriptions.append(description)
                records.append(ChunkRecord(pages=[p.name for p in chunk]))
        if len(descriptions) == 1:
            return descriptions[0], records
        calls.total = max(calls.total, calls.done + 1)  # one chunk read in parts needs the merge it had not planned
        return self._merged(descriptions, calls), records

    def _merged(self, descriptions: list[str], calls: _SectionCalls) -> str:
        """One description from several, in one request where they fit in the model's context together, else
        merged in halves first (a long section's many parts: the request went past the context without a word)."""
        if len(descriptions) == 1:
            return descriptions[0]
        try:
            return self._description(merge_prompt(descriptions), [], "merging the descriptions", "merge", calls)
        except WordsDoNotFitError as exc:
            if len(descriptions) < 3:  # two descriptions that do not fit: no smaller merge joins them
                raise BackendError(f"{self.model_name} cannot merge this section's descriptions ({exc})",
                                   hint=f"a smaller {flag('max_new_tokens')} (shorter descriptions), a larger "
                                        f"{flag('chunk_size')}, or a model with a longer context") from None
        halves = descriptions[:(len(descriptions) + 1) // 2], descriptions[(len(descriptions) + 1) // 2:]
        if not any("merged in" in w for w in calls.warnings):
            calls.warn(f"the {len(descriptions)} parts' descriptions did not fit in one request to "
                       f"{self.model_name}: merged in smaller groups first")
        calls.total += sum(len(half) > 1 for half in halves)  # the merge of the halves is the one counted before
        return self._merged([self._merged(list(half), calls) for half in halves], calls)

    # --- helpers --------------------------------------------------------------------------

    def _description_tokens(self) -> int:
        return description_tokens(self)

    def _request(self, what: str, prompt: str, images: list[PageImage], max_tokens: int,
                 calls: _SectionCalls) -> Optional[dict]:
        return chat_request(self, what, prompt, images, max_tokens, calls.settings) if calls.memo else None

    def _recalled(self, request: Optional[dict], read: Callable[[Any], Any], label: str, calls: _SectionCalls) -> Any:
        """The answer an earlier run kept for ``request`` (read by ``read``), counted as a call done, its tokens
        added; or ``None``."""
        kept = calls.memo.recall(request, read) if calls.memo is not None else None
        if kept is None:
            return None
        calls.usage = sum_usage([calls.usage, kept.usage])
        for warning in kept.warnings:  # what was said of it when it was given: the record and the terminal again
            calls.warn(warning)
        calls.done += 1
        report(calls.progress, calls.done, calls.total, f"{label} (answered before)")
        return kept.answer

    def _description(self, prompt: str, images: list[PageImage], label: str, where: str,
                     calls: _SectionCalls) -> str:
        """A music description: asked, cleaned and kept, or the one kept for the same request."""
        tokens = self._description_tokens()
        request = self._request("description", prompt, images, tokens, calls)
        kept = self._recalled(request, lambda text: clean_description(str(text)), label, calls)
        if kept is not None:
            return kept
        said_before = len(calls.warnings)
        answer = self._ask(prompt, images, None, tokens, label, calls)
        text = finished_text(answer, self, where)
        if answer.cut_off:
            calls.warn(f"{where}: {cut_off_description(self)}")
        if repeats_request(text, prompt):
            raise AnswerUnusableError(f"{self.model_name} repeated the request instead of answering it ({where}): "
                                      f"{' '.join(text.split())[:80]!r}...",
                                      hint="try a larger model, or --single-stage")
        text = self._clean(text, where, calls)
        if calls.memo is not None:
            calls.memo.keep(request, text, answer.usage, calls.warnings[said_before:])
        return text

    def _ask(self, prompt: str, images: list[PageImage], schema: dict | None, max_tokens: int, label: str,
             calls: _SectionCalls) -> Completion:
        """One call: count its tokens, report progress, turn a refusal into BackendError."""
        self._on_wait = lambda words: report(calls.progress, calls.done, calls.total, words)  # short: the bar
        # shows 60 characters
        try:
            answer = self._complete(prompt, images, json_schema=schema, max_tokens=max_tokens)
        finally:
            self._on_wait = None
        calls.usage = sum_usage([calls.usage, answer.usage])
        for warning in answer.warnings:
            calls.warn(warning)
        calls.done += 1
        report(calls.progress, calls.done, calls.total, label)
        if answer.refusal:
            raise AnswerUnusableError(f"{self.model_name} refused to answer ({label}): "
                                      f"{answer.refusal.strip()[:160]}")
        return answer

    def _analyse(self, chunk: list[PageImage], calls: _SectionCalls) -> SectionAnalysis:
        """Stage 1 for one chunk, with one retry when the answer is not readable JSON."""
        span = _page_span(chunk)
        schema = analysis_schema()
        tokens = int(self.options.max_new_tokens)
        request = self._request("analysis", stage1_prompt(len(chunk)), chunk, tokens, calls)
        kept = self._recalled(request, SectionAnalysis.model_validate, f"analysing {span}", calls)
        if kept is not None:
            return kept
        said_before = len(calls.warnings)
        answer = self._ask(stage1_prompt(len(chunk)), chunk, schema, tokens, f"analysing {span}", calls)
        try:
            return self._kept(request, self._read_analysis(answer, span, calls), answer.usage, calls, said_before)
        except ValueError as err:
            reason = str(err)
        first = answer.usage
        calls.total += 1
        tokens = retry_tokens(self, tokens, answer.cut_off)
        calls.warn(f"{span}: the first analysis could not be used ({reason}); asked again")
        answer = self._ask(retry_json_prompt(len(chunk), reason), chunk, schema, tokens, f"analysing {span} (retry)",
                           calls)
        try:
            return self._kept(request, self._read_analysis(answer, span, calls), sum_usage([first, answer.usage]),
                              calls, said_before)
        except ValueError as err:
            asked = "an analysis" if "repeated the request" in str(err) else "valid JSON"
            raise AnswerUnusableError(
                f"{self.model_name} did not answer {asked} for {span}, even after one retry ({err})",
                hint=more_tokens(self) if answer.cut_off
                else "try --single-stage, a smaller --chunk-size, or a larger model",
            ) from None

    @staticmethod
    def _read_analysis(answer: Completion, span: str, calls: _SectionCalls) -> SectionAnalysis:
        """A stage-1 answer read, or ValueError: one cut off at the token limit is not read (a repaired fragment
        would be taken for the model's answer); the fields it did not give are said, as the defaults used."""
        if answer.cut_off:
            raise ValueError("it was cut off at the token limit")
        missing: list[str] = []
        analysis = parse_analysis(answer.text, missing)
        echoed = repeats_analysis_request(analysis, stage1_placeholders())
        if echoed:  # a small model's answer with the request's own example or instructions: no reading of the pages
            raise ValueError(f"it repeated the request instead of analysing the pages, {echoed}")
        said = next((text for text in (analysis.atmosphere, analysis.plot) if saw_no_pages(text)), None)
        if said:  # not a reading of the pages: asking again would get the same
            raise BackendError(f"the model did not see the pages ({span}): its analysis says {said[:100]!r}",
                               hint="the model may take no images: use a vision model")
        if missing:
            calls.warn(f"{span}: the analysis gave no {', '.join(missing)}; the defaults were used")
        return analysis

    @staticmethod
    def _kept(request: Optional[dict], analysis: SectionAnalysis, usage: Optional[dict],
              calls: _SectionCalls, said_before: int) -> SectionAnalysis:
        """``analysis`` kept for a rerun, with what was said of it since ``said_before`` warnings."""
        if calls.memo is not None:
            calls.memo.keep(request, analysis.model_dump(), usage, calls.warnings[said_before:])
        return analysis

    def _clean(self, text: str, where: str, calls: _SectionCalls) -> str:
        said: list[str] = []
        try:
            text = clean_description(text, said)
        except ValueError as err:
            raise AnswerUnusableError(f"{self.model_name} gave no usable music description ({where}): {err}") \
                from None
        for line in said:
            calls.warn(f"{where}: {line}")
        return text
