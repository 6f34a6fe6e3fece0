"""Drum grooves as sixteen-step grids, with fills and crashes at phrase starts.

Each groove maps a General MIDI drum note to a 16-step string for one 4/4 bar:
``X`` accent, ``x`` hit, ``o`` ghost note, ``.`` rest.  Energetic styles
double the hi-hats to sixteenths; the last bar of a phrase may get a fill.
"""

from __future__ import annotations

import numpy as np

KICK, STICK, SNARE, CLAP, HAT, PEDAL, OHAT = 36, 37, 38, 39, 42, 44, 46
LOW_TOM, MID_TOM, CRASH, RIDE, HIGH_TOM, SHAKER = 45, 47, 49, 51, 50, 70

GROOVES: dict[str, dict[int, str]] = {
    "rock": {KICK: "X.....x.X.x.....", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
    "pop": {KICK: "X.....x.x.......", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
    "electronic": {KICK: "X...X...X...X...", CLAP: "....X.......X...", OHAT: "..x...x...x...x.",
                   HAT: "o.o.o.o.o.o.o.o."},
    "lofi": {KICK: "X......x..x.....", SNARE: "....x.......x...", HAT: "x.o.x.o.x.o.x.oo"},
    "jazz": {RIDE: "x...x.x.x...x.x.", PEDAL: "....x.......x...", KICK: "o.......o.......",
             SNARE: "......o.......o."},
    "epic": {KICK: "X..x..x.X..x..x.", SNARE: "....X.......X...", LOW_TOM: "..x.....x.x.....",
             MID_TOM: "......x.......x."},
    "folk": {KICK: "x.......x.......", STICK: "....x.......x...", SHAKER: "x.o.x.o.x.o.x.o."},
}
_VEL = {"X": 1.0, "x": 0.82, "o": 0.45}
_FILLS = ((SNARE, SNARE, SNARE, SNARE), (HIGH_TOM, HIGH_TOM, MID_TOM, LOW_TOM), (SNARE, HIGH_TOM, MID_TOM, LOW_TOM))


def drum_bar(groove: str, bar_beats: float, energy: float, rng: np.random.Generator, *,
             fill: bool = False, crash: bool = False) -> list[tuple[float, int, int]]:
    """(onset beat, drum note, velocity) for one bar of ``groove``."""
    grid = dict(GROOVES.get(groove, GROOVES["pop"]))
    if energy >= 0.8 and HAT in grid and groove in ("rock", "pop", "epic"):
        grid[HAT] = "x" * 16  # sixteenth hats when it is frantic
    if groove == "epic" and energy >= 0.7:
        grid[HAT] = "x.x.x.x.x.x.x.x."
    base = 55 + 55 * energy
    hits: list[tuple[float, int, int]] = []
    last_step = int(min(16, round(bar_beats * 4)))
    fill_from = last_step - 4 if fill and last_step >= 8 else last_step
    for note, pattern in grid.items():
        for step, ch in enumerate(pattern[:fill_from]):
            if ch in _VEL:
                vel = base * _VEL[ch] + rng.normal(0, 5)
                hits.append((step / 4.0, note, int(np.clip(vel, 20, 127))))
    if fill_from < last_step:
        notes = _FILLS[int(rng.integers(len(_FILLS)))]
        for i, step in enumerate(range(fill_from, last_step)):
            vel = base * (0.7 + 0.1 * i) + rng.normal(0, 4)
            hits.append((step / 4.0, notes[i % 4], int(np.clip(vel, 20, 127))))
            if step == fill_from or energy > 0.6:
                hits.append((step / 4.0, KICK, int(np.clip(base * 0.8, 20, 127))))
    if crash:
        hits.append((0.0, CRASH, int(np.clip(base * 1.05, 30, 127))))
    return hits


def final_hit(energy: float) -> list[tuple[float, int, int]]:
    """The last chord's downbeat: kick and crash."""
    vel = int(np.clip(60 + 55 * energy, 30, 127))
    return [(0.0, KICK, vel), (0.0, CRASH, vel)]
