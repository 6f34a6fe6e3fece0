"""One progress bar for a Generate: the sections' progress and each section's own steps, as one fraction.

The pipeline reports two levels (:class:`manga2music.pipeline.Callbacks`):
``sections`` (section 3 of 12 starts, or is composed) and ``step`` (page 5 of
8 read).  Shown one after the other on one bar, the bar ran from 0 to 100 % for
every section's pages and fell back at the next; here a section's steps fill
that section's share of the bar.  A Generate that makes several passes over the
sections (``run`` describes every section, then composes them: ``passes=2``)
gives each pass its share of the bar, so that it never falls back (it fell from
72 % to 0 % when composing began); a pass beyond those starts the bar again.
A section's steps may come in several runs (its pages hashed, then read): each
fills half of what is left of the section's share, so that the bar moves
through all of them.
"""

from __future__ import annotations

from typing import Callable


class OneBar:
    """Feeds ``show(fraction, text)``, a fraction in [0, 1], from ``sections`` and ``step`` reports."""

    def __init__(self, show: Callable[[float, str], None], passes: int = 1):
        self._show = show
        self._passes, self._pass = max(1, passes), 0
        self._done, self._total, self._label = 0, 0, ""
        self._shown = 0.0  # the bar never goes back, but at a pass beyond the ones expected
        self._pass_over = False
        self._runs = 0  # runs of steps in this section so far (a new one starts when the steps count from 0 again)
        self._last_part = 0.0

    def _next_pass(self) -> None:
        if self._pass + 1 < self._passes:
            self._pass += 1
        else:
            self._shown = 0.0

    def sections(self, done: int, total: int, label: str) -> None:
        if done < self._done or self._pass_over:  # a new pass
            self._next_pass()
        self._done, self._total, self._label = done, total, label
        self._pass_over = bool(total) and done >= total
        self._runs, self._last_part = 0, 0.0
        self._report(done / total if total else 0.0, label)

    def step(self, done: int, total: int, label: str) -> None:
        if self._pass_over and self._pass + 1 >= self._passes:  # after the work (its results packed into a zip):
            # the bar stays full, its words say what is done and how far (it restarted from 0, as if the work had)
            part = min(max(done / total, 0.0), 1.0) if total else 0.0
            self._show(self._shown, f"{label} · {round(100 * part)}%" if total else label)
            return
        if self._pass_over:  # the steps of the next pass come before its first sections report
            self._next_pass()
            self._done, self._label, self._pass_over = 0, "", False
            self._runs, self._last_part = 0, 0.0
        part = min(max(done / total, 0.0), 1.0) if total else 0.0
        if self._runs == 0 or part < self._last_part:
            self._runs += 1
        self._last_part = part
        within = 1.0 - 0.5 ** (self._runs - 1) * (1.0 - part / 2)  # run k fills [1 - 2^-(k-1), 1 - 2^-k]
        text = f"{self._label} · {label}" if self._label else label
        self._report((self._done + within) / self._total if self._total else part, text)

    def _report(self, fraction: float, text: str) -> None:
        self._shown = max(self._shown, (self._pass + min(fraction, 1.0)) / self._passes)
        self._show(self._shown, text)
