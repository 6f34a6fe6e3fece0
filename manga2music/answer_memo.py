"""A chat model's answers for a section whose files are not written yet, kept in the output folder so that the
rerun after a failure, a stop or Ctrl-C does not ask (and pay) for them again.

A 40-page section asked of GPT-4o in chunks of 8 that fails on its 4th chunk (a timeout, a 500, a full quota) or
is stopped there used to send its first 3 chunks again on the rerun.  Now each answer, once read and accepted, is
kept under ``OUTPUT/.manga2music/answers/``; the rerun takes the answer kept for exactly the same request and asks
only the rest.  The tokens an answer cost are kept with it: a record's usage is what its description cost,
whichever run paid.  A request is named by everything that decides its answer: what is asked (analysis, description,
page entries...), the describer's settings and seed, the token cap, the prompt's words and the pages' pixels (their
hashes, :attr:`PageImage.key`).  An answer that could not be read is never kept, so a retry is a real retry.

When the section's files are written, :meth:`AnswerMemo.forget` removes its answers: a later run that describes
the pages again (``--force``, a deleted description, other pages) asks the model again, as the user expects.
A kept answer that cannot be read (a disk error, a killed write) is asked again: this is a cache, never a record.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Optional

#: where the answers live, under the output folder
MEMO_DIR = Path(".manga2music") / "answers"
#: a kept answer larger than this is not one of ours
MAX_ANSWER_BYTES = 4 * 1024 * 1024
#: where the seed drawn for a section (no --seed) is kept beside its answers; not a .json, so not taken for one
SEED_FILE = "drawn-seed"
#: drawn seeds are below this (any --seed up to api.MAX_SEED is taken as it is)
DRAWN_SEEDS = 2**31


class Kept(NamedTuple):
    """An answer kept, and the tokens it cost the run that asked (``None``: the server did not say)."""

    answer: Any
    usage: Optional[dict]
    warnings: tuple[str, ...] = ()  # what was said of the answer when it was given ("gave no pacing")


class AnswerMemo:
    """The answers kept for one section of one command (``run``'s description, ``score``'s reading and scenes)."""

    def __init__(self, output: Path, command: str, section: str, describer=None):
        from .outputs import fingerprint

        #: the chat describer asking (its ``served_models``, kept with each answer, are said to it again as the
        #: answer is given back: the model that gave an answer kept from a stopped run was in no record)
        self._describer = describer
        self.folder = Path(output) / MEMO_DIR / f"{command}-{fingerprint(section)}"
        #: how many answers this memo gave back (asked of the model by an earlier run)
        self.reused = 0
        #: the answers kept by this run: asked again in it (a chapter's scenes of one mood, two chunks of the same
        #: pages), one is given back, neither said to come from an earlier run nor paid for twice
        self._kept_now: set[str] = set()

    def _path(self, request: dict) -> Path:
        import hashlib

        blob = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "replace")
        return self.folder / f"{hashlib.sha256(blob).hexdigest()[:40]}.json"

    def recall(self, request: Optional[dict], read: Callable[[Any], Any] = lambda answer: answer) -> Optional[Kept]:
        """``read(answer)`` of the answer kept for ``request``, or ``None``: never asked, or it cannot be read (a
        damaged file, or an answer that ``read`` refuses, kept by another version): it is asked again."""
        if request is None:
            return None
        from .files import read_regular_file

        try:
            kept = json.loads(read_regular_file(self._path(request), MAX_ANSWER_BYTES, what="kept answer"))
            if not isinstance(kept, dict) or kept.get("request") != json.loads(json.dumps(request, default=str)) \
                    or kept.get("answer") is None:
                return None
            answer = read(kept["answer"])
        except Exception:  # noqa: BLE001 - a cache: a kept answer that cannot be read is asked again
            return None
        usage, said = kept.get("usage"), kept.get("warnings")
        if self._describer is not None and isinstance(kept.get("served"), list):
            for model in kept["served"]:
                if isinstance(model, str) and model:
                    self._describer.served_by(model)
        if self._path(request).name in self._kept_now:  # this run's: its tokens are counted once, where it was asked
            return Kept(answer, {"prompt_tokens": 0, "completion_tokens": 0})
        self.reused += 1
        return Kept(answer, usage if isinstance(usage, dict) else None,
                    tuple(w for w in said if isinstance(w, str)) if isinstance(said, list) else ())

    def keep(self, request: Optional[dict], answer: Any, usage: Optional[dict], warnings: Iterable[str] = ()) -> None:
        """Keep an accepted answer, with what was said of it (a failure to write it never fails the section: it is
        asked again next time)."""
        if request is None:
            return
        from .files import keep_cache_file
        from .outputs import now_iso

        served = list(getattr(self._describer, "served_models", ()))  # those of the section so far: a section's
        # answers given back together name the models that gave them
        data = json.dumps({"request": request, "answer": answer, "usage": usage, "warnings": list(warnings),
                           "served": served, "at": now_iso()}, ensure_ascii=False, default=str)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            keep_cache_file(self._path(request), data.encode("utf-8"))
            self._kept_now.add(self._path(request).name)
        except Exception:  # noqa: BLE001 - see above
            pass

    def drawn_seed(self) -> int:
        """The seed drawn for this section's sampling when no --seed was given: kept beside its answers, so that a
        rerun after a stop samples the rest with the seed the kept answers were made with (and the record names the
        seed that made all of them); drawn on first use."""
        import random

        from .files import keep_cache_file, read_regular_file

        path = self.folder / SEED_FILE
        try:
            seed = json.loads(read_regular_file(path, 1024, what="kept seed"))
            if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < DRAWN_SEEDS:
                return seed
        except Exception:  # noqa: BLE001 - none kept yet, or damaged: a new one (no answer was kept with it)
            pass
        for stale in self.folder.glob("*.json") if self.folder.is_dir() else ():  # answers made with a seed that
            stale.unlink(missing_ok=True)  # was lost would be mixed with this one's: asked again
        seed = random.SystemRandom().randrange(DRAWN_SEEDS)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            keep_cache_file(path, json.dumps(seed).encode("utf-8"))
        except Exception:  # noqa: BLE001 - a cache: not kept, the rerun draws again and asks again
            pass
        return seed

    def forget(self) -> None:
        """Remove this section's kept answers (its files are written, or the user asked for new answers)."""
        shutil.rmtree(self.folder, ignore_errors=True)
