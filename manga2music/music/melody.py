"""A melody that states a one-bar motif and develops it over four-bar phrases.

Phrase shape (bars 1-4): the motif; the motif in sequence (moved to the next
chord); a variation (inversion, retrograde or a new rhythm on the same
contour); an answer that ends on a long chord tone.  A repeated phrase is
developed further (moved up, or its last bar rewritten), a contrasting
phrase uses the inverted motif on a new rhythm.  Notes that fall on beats 1
and 3 are moved to the nearest chord tone; the rest stay in the scale.
Everything is in scale degrees (see :mod:`.harmony`), so transposition is
diatonic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .harmony import Chord, nearest_chord_tone

#: one-bar rhythms as (onset, duration) in beats, from sparse to dense
RHYTHMS: dict[str, tuple[tuple[tuple[float, float], ...], ...]] = {
    "sparse": (((0, 2), (2, 2)), ((0, 3), (3, 1)), ((0, 1), (1, 1), (2, 2)), ((0, 2), (2, 1), (3, 1)),
               ((0, 1.5), (1.5, 0.5), (2, 2))),
    "medium": (((0, 1), (1, 1), (2, 1), (3, 1)), ((0, 1.5), (1.5, 0.5), (2, 2)),
               ((0, 1), (1, 0.5), (1.5, 0.5), (2, 2)), ((0, 0.5), (0.5, 0.5), (1, 1), (2, 2)),
               ((0, 1), (1, 1), (2, 2)), ((0, 1.5), (1.5, 0.5), (2, 1), (3, 1))),
    "dense": (tuple((i * 0.5, 0.5) for i in range(8)),
              ((0, 0.5), (0.5, 0.5), (1, 1), (2, 0.5), (2.5, 0.5), (3, 1)),
              ((0, 0.75), (0.75, 0.75), (1.5, 0.5), (2, 1), (3, 1)),
              ((0, 0.25), (0.25, 0.25), (0.5, 0.5), (1, 1), (2, 0.5), (2.5, 0.5), (3, 1))),
}
_STEPS = np.array([-3, -2, -1, 0, 1, 2, 3])
_STEP_P = np.array([0.05, 0.15, 0.25, 0.1, 0.25, 0.15, 0.05])


@dataclass(frozen=True)
class Motif:
    rhythm: tuple[tuple[float, float], ...]
    contour: tuple[int, ...]  # scale steps from the first note

    def inverted(self) -> "Motif":
        return Motif(self.rhythm, tuple(-c for c in self.contour))

    def retrograde(self) -> "Motif":
        last = self.contour[-1]
        return Motif(self.rhythm, tuple(c - last for c in reversed(self.contour)))

    def with_rhythm(self, rhythm) -> "Motif":
        """The same contour on another rhythm (cut or extended by repeating its tail)."""
        contour = list(self.contour[: len(rhythm)])
        while len(contour) < len(rhythm):
            contour.append(contour[-1] + (1 if len(contour) % 2 else -1))
        return Motif(tuple(rhythm), tuple(contour))


def density_name(energy: float, tempo: float = 100.0, ambient: bool = False) -> str:
    """Rhythm density: energy decides, but slow tempos move one step busier (except ambient)."""
    level = 0 if energy < 0.3 else 1 if energy < 0.65 else 2
    if tempo < 84 and not ambient:
        level = min(level + 1, 2)
    return ("sparse", "medium", "dense")[level]


def make_motif(rng: np.random.Generator, density: str) -> Motif:
    cells = RHYTHMS[density]
    rhythm = cells[int(rng.integers(len(cells)))]
    contour = [0]
    for _ in range(len(rhythm) - 1):
        step = int(rng.choice(_STEPS, p=_STEP_P))
        nxt = contour[-1] + step
        if abs(nxt) > 5:
            nxt = contour[-1] - step
        contour.append(nxt)
    if len(contour) > 1 and contour[-1] == contour[0] and contour[1] == contour[0]:
        contour[1] += 1  # avoid a flat, repeated-note motif
    return Motif(tuple(rhythm), tuple(contour))


def rhythm_variant(motif: Motif, rng: np.random.Generator) -> Motif:
    """Split the longest note in two, or merge the last two notes."""
    rhythm = list(motif.rhythm)
    contour = list(motif.contour)
    longest = max(range(len(rhythm)), key=lambda i: rhythm[i][1])
    on, dur = rhythm[longest]
    if dur >= 1 and (rng.random() < 0.6 or len(rhythm) < 3):
        rhythm[longest: longest + 1] = [(on, dur / 2), (on + dur / 2, dur / 2)]
        contour.insert(longest + 1, contour[longest] + (1 if rng.random() < 0.5 else -1))
    elif len(rhythm) >= 2:
        (on, _), (on2, dur2) = rhythm[-2], rhythm[-1]
        rhythm[-2:] = [(on, on2 + dur2 - on)]
        contour = contour[:-1]
    return Motif(tuple(rhythm), tuple(contour))


def _fold(degree: int, centre: int, span: int = 5) -> int:
    while degree > centre + span:
        degree -= 7
    while degree < centre - span:
        degree += 7
    return degree


def _place(motif: Motif, bar_start: float, anchor: int, chord: Chord, bar_beats: float) -> list[tuple]:
    notes = []
    for (on, dur), step in zip(motif.rhythm, motif.contour):
        if on >= bar_beats:
            break
        deg = anchor + step
        if on in (0, 2):
            deg = nearest_chord_tone(deg, chord)
        notes.append((bar_start + on, min(dur, bar_beats - on), deg))
    return notes


def phrase_melody(motif: Motif, chords: list[Chord], bar_starts: list[float], bar_beats: list[float],
                  rng: np.random.Generator, *, centre: int = 7, develop: int = 0,
                  ending: str = "answer") -> list[tuple[float, float, int]]:
    """Melody notes (start beat, beats, degree) for one phrase of up to four bars.

    ``develop`` 0 states the phrase; 1 and more develop it (higher, varied).
    ``ending``: "answer" (long chord tone), "open" (keep going) or "lead" (ends on a step
    that leads back to the tonic: the bar before the final chord or the loop restart).
    """
    out: list[tuple[float, float, int]] = []
    anchor = nearest_chord_tone(centre + (2 if develop % 2 else 0), chords[0])
    variant = [motif.inverted(), motif.retrograde(), rhythm_variant(motif, rng)][int(rng.integers(3))]
    if develop >= 2:
        variant = rhythm_variant(variant, rng)
    shift = int(rng.choice([-2, -1, 1, 2]))
    for i, (chord, start, beats) in enumerate(zip(chords, bar_starts, bar_beats)):
        last = i == len(chords) - 1
        if i == 0:
            m = motif
        elif i == 1:
            m = motif
            anchor = nearest_chord_tone(_fold(anchor + shift, centre), chord)
        elif i == 2 and not last:
            m = variant
            anchor = nearest_chord_tone(_fold(anchor - shift, centre), chord)
        else:
            m = motif
            anchor = nearest_chord_tone(_fold(anchor, centre), chord)
        if last and ending != "open" and len(chords) > 1:
            # first half of the motif, then a long note
            head = [(on, dur) for on, dur in m.rhythm if on < 2] or [m.rhythm[0]]
            m = Motif(tuple(head), m.contour[: len(head)])
            notes = _place(m, start, anchor, chord, min(beats, 2))
            if beats > 2:
                target = nearest_chord_tone(_fold(notes[-1][2] if notes else anchor, centre), chord)
                if ending == "lead":  # a step away from the tonic, if the chord has one
                    steps = [d for d in range(target - 3, target + 4) if d % 7 in (1, 6) and d % 7 in chord.tones]
                    target = min(steps, key=lambda d: abs(d - target)) if steps else target
                notes.append((start + 2, beats - 2, target))
            out += notes
        else:
            out += _place(m, start, anchor, chord, beats)
    return out


def resolve_to_tonic(last_degree: int) -> int:
    """The tonic degree nearest the melody's last note (for the final chord)."""
    return 7 * round(last_degree / 7)
