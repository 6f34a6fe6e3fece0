"""Accompaniment patterns: how the harmony instrument and the bass play one bar.

Each function returns ``(onset beat, beats, MIDI pitch, velocity)`` tuples for
one bar of ``beats`` beats (4, or fewer for a short last bar); notes that
would start after the bar are dropped and long ones are cut at its end.

Harmony ("comp") patterns: pad (held chord), arp (broken chord), strum
(guitar strokes, strings staggered), stabs (lo-fi), jazz (Charleston comping),
power (rock power chords in eighths), ostinato (orchestral repeated chords).
Bass patterns: sustain, root_fifth, pop, eighths, walking, offbeat, lofi.
"""

from __future__ import annotations

import numpy as np

Note = tuple[float, float, int, int]

_JAZZ = (((0, 1.0), (1.5, 0.5)), ((0.5, 0.5), (2, 1.0)), ((1, 0.5), (2.5, 1.0)), ((0, 1.5), (3, 0.5)))
_STABS = (((0, 1.5), (2.5, 1.0)), ((0, 0.75), (1.5, 1.0), (3, 0.5)), ((0, 2.0), (2.5, 1.5)))


def _vel(base: float, rng: np.random.Generator, accent: bool = False) -> int:
    return int(np.clip(base + (8 if accent else 0) + rng.normal(0, 4), 15, 127))


def _cut(notes: list[Note], beats: float) -> list[Note]:
    return [(on, min(dur, beats - on), p, v) for on, dur, p, v in notes if on < beats - 1e-6]


def comp_bar(kind: str, voicing: list[int], beats: float, energy: float, base_vel: float,
             rng: np.random.Generator) -> list[Note]:
    notes: list[Note] = []
    if kind == "arp":
        seq = voicing + [voicing[0] + 12]
        order = [0, 1, 2, 3, 2, 1, 2, 3] if len(seq) >= 4 else [0, 1, 2, 1, 0, 1, 2, 1]
        step = 0.5 if energy > 0.12 else 1.0
        for i in range(int(4 / step)):
            p = seq[order[i % len(order)] % len(seq)]
            notes.append((i * step, step * 2.5, p, _vel(base_vel * 0.9, rng, i % int(2 / step) == 0)))
    elif kind == "strum":
        strokes = (0, 1, 1.5, 2.5, 3, 3.5) if energy >= 0.45 else (0, 1.5, 2, 3)
        for k, on in enumerate(strokes):
            up = on % 1 != 0
            nxt = strokes[k + 1] if k + 1 < len(strokes) else 4
            order = list(reversed(voicing)) if up else voicing
            for j, p in enumerate(order):
                notes.append((on + 0.03 * j, nxt - on - 0.03 * j, p, _vel(base_vel * (0.8 if up else 1), rng, on == 0)))
    elif kind in ("stabs", "jazz"):
        patterns = _STABS if kind == "stabs" else _JAZZ
        for on, dur in patterns[int(rng.integers(len(patterns)))]:
            for p in voicing:
                notes.append((on, dur * 0.95, p, _vel(base_vel, rng, on == 0)))
    elif kind == "power":
        root = voicing[0]
        while root > 52:
            root -= 12
        while root < 40:
            root += 12
        step = 0.5 if energy >= 0.5 else 1.0
        for i in range(int(4 / step)):
            for p in (root, root + 7, root + 12):
                notes.append((i * step, step * 0.8, p, _vel(base_vel, rng, i * step in (0, 2))))
    elif kind == "ostinato" and energy >= 0.5:
        step = 0.25 if energy >= 0.85 else 0.5
        for i in range(int(4 / step)):
            for p in voicing:
                notes.append((i * step, step * 0.9, p, _vel(base_vel * 0.9, rng, i * step in (0, 2))))
    else:  # pad, and a calm ostinato
        notes = [(0.0, 4.0, p, _vel(base_vel, rng)) for p in voicing]
    return _cut(notes, beats)


def bass_bar(kind: str, root: int, fifth: int, third: int, next_root: int, beats: float,
             base_vel: float, rng: np.random.Generator) -> list[Note]:
    v = lambda accent=False: _vel(base_vel, rng, accent)  # noqa: E731
    if kind == "root_fifth":
        notes = [(0, 2, root, v(True)), (2, 2, fifth, v())]
    elif kind == "pop":
        notes = [(0, 1, root, v(True)), (1.5, 0.5, root, v()), (2, 1, root, v()), (3, 0.5, fifth, v()),
                 (3.5, 0.5, root, v())]
    elif kind == "eighths":
        notes = [(i * 0.5, 0.45, root, v(i % 4 == 0)) for i in range(8)]
    elif kind == "walking":
        approach = next_root + (1 if rng.random() < 0.5 else -1)
        notes = [(0, 1, root, v(True)), (1, 1, third, v()), (2, 1, fifth, v()), (3, 1, approach, v())]
    elif kind == "offbeat":
        notes = [(i + 0.5, 0.45, root + (12 if i % 2 else 0), v()) for i in range(4)]
        notes.insert(0, (0, 0.45, root, v(True)))
    elif kind == "lofi":
        notes = [(0, 1.5, root, v(True)), (2.5, 0.5, root, v()), (3, 1, fifth, v())]
    else:  # sustain
        notes = [(0, 4, root, v())]
    return _cut([(float(a), float(b), int(c), d) for a, b, c, d in notes], beats)
