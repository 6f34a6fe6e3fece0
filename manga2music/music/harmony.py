"""Scales, diatonic chords, chord progressions and voice-led voicings.

Pitches are handled as *scale degrees* (0 = tonic, 7 = tonic an octave up,
negative = below) so a melody can be transposed diatonically; :func:`to_midi`
turns a degree into a MIDI note.  In minor the cadence chord is the major
dominant (harmonic minor): its chord carries ``raise_seventh``.
"""

from __future__ import annotations

from dataclasses import dataclass

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
}

#: four-bar progressions as 0-based scale degrees (0 = I/i, 4 = V/v ...), per mode
PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 5, 4), (5, 3, 0, 4), (0, 2, 3, 4), (0, 3, 0, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 6, 2), (0, 5, 3, 4), (0, 6, 5, 6), (0, 3, 5, 4), (5, 6, 0, 0)),
    "dorian": ((0, 3, 0, 3), (0, 6, 3, 0), (0, 2, 3, 0), (0, 3, 6, 3)),
    "mixolydian": ((0, 6, 3, 0), (0, 3, 6, 0), (0, 6, 3, 4)),
    "phrygian": ((0, 1, 0, 6), (0, 1, 6, 0), (0, 5, 1, 0)),
    "lydian": ((0, 1, 0, 1), (0, 1, 4, 0), (0, 1, 5, 1)),
}

#: the chord that leads home to the tonic (last bar before the end, or before the loop restarts)
CADENCE: dict[str, int] = {"major": 4, "minor": 4, "dorian": 3, "mixolydian": 6, "phrygian": 1, "lydian": 1}


@dataclass(frozen=True)
class Chord:
    """A diatonic chord: its root degree and its chord-tone degrees (mod 7)."""

    degree: int
    tones: tuple[int, ...]  # scale degrees mod 7, root first
    raise_seventh: bool = False  # harmonic-minor dominant: degree 6 a semitone up


def make_chord(mode: str, degree: int, *, seventh: bool = False, dominant: bool = False) -> Chord:
    d = degree % 7
    tones = (d, (d + 2) % 7, (d + 4) % 7) + (((d + 6) % 7,) if seventh else ())
    return Chord(d, tones, raise_seventh=dominant and mode in ("minor", "phrygian") and d == 4)


def to_midi(tonic: int, mode: str, degree: int, *, octave_base: int = 60, raised: bool = False) -> int:
    """MIDI note of a scale degree; degree 0 is the tonic in the octave from ``octave_base``."""
    scale = SCALES[mode]
    root = octave_base + (tonic % 12)
    if tonic % 12 > 6:
        root -= 12  # keep the tonic near the centre
    pitch = root + 12 * (degree // 7) + scale[degree % 7]
    if raised and degree % 7 == 6:
        pitch += 1
    return pitch


def chord_midi(tonic: int, mode: str, chord: Chord, degree: int) -> int:
    """MIDI note of a degree as it sounds over ``chord`` (the raised leading tone in minor V)."""
    return to_midi(tonic, mode, degree, raised=chord.raise_seventh)


def nearest_chord_tone(degree: int, chord: Chord) -> int:
    """The chord-tone degree closest to ``degree`` (ties go down)."""
    for dist in range(0, 4):
        for cand in (degree - dist, degree + dist):
            if cand % 7 in chord.tones[:3]:
                return cand
    return degree


def voice(tonic: int, mode: str, chord: Chord, prev: list[int] | None,
          lo: int = 52, hi: int = 76) -> list[int]:
    """A close voicing of ``chord`` inside [lo, hi], moving as little as possible from ``prev``."""
    pcs = [chord_midi(tonic, mode, chord, t) % 12 for t in chord.tones]
    n = len(pcs)
    candidates = []
    for inv in range(n):
        order = pcs[inv:] + pcs[:inv]
        for base in range(lo, hi):
            if base % 12 != order[0]:
                continue
            notes = [base]
            for pc in order[1:]:
                nxt = notes[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                notes.append(nxt)
            if notes[-1] <= hi:
                candidates.append(notes)
    if not candidates:  # range too narrow: stack from lo
        return sorted(lo + (pc - lo) % 12 for pc in pcs)
    centre = (lo + hi) / 2.0
    if not prev:
        return min(candidates, key=lambda c: abs(sum(c) / len(c) - centre))
    return min(candidates, key=lambda c: (sum(min(abs(p - q) for q in prev) for p in c),
                                          abs(sum(c) / len(c) - centre)))


def bass_note(tonic: int, mode: str, chord: Chord, step: int = 0, lo: int = 33, hi: int = 55) -> int:
    """Root (step 0), third (1) or fifth (2) of ``chord`` placed in the bass range."""
    degree = chord.tones[min(step, len(chord.tones) - 1)]
    pitch = chord_midi(tonic, mode, chord, degree) % 12
    p = lo + (pitch - lo) % 12
    return p if p <= hi else p - 12
