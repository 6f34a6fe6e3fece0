"""Compose a :class:`Style` into a four-part :class:`pretty_midi.PrettyMIDI` of an exact length.

Form: bars of 4/4 grouped into four-bar phrases in an A A B A cycle (B uses a
second progression); pieces of 24 bars and more open with an accompaniment-only
intro, and long ones get a breakdown phrase (no melody, no drums) after each
cycle while the motif keeps developing.  The last bar before the end holds the
cadence chord (V, or the mode's own leading chord) and the piece ends on the
tonic chord held to the exact end.  A loop instead ends on the cadence chord
in its last bar, so it leads back to bar 1, and its tempo is nudged so it holds
a whole number of bars (or beats, when very short).

Parts: melody, harmony (chords), bass and, when the style has them, drums; each
part is one instrument track named after its role.  Note times are snapped to
the MIDI tick grid so the written file holds exactly the notes rendered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import drums as drumkit
from .accompaniment import bass_bar, comp_bar
from .harmony import CADENCE, PROGRESSIONS, Chord, bass_note, chord_midi, make_chord, voice
from .melody import Motif, density_name, make_motif, phrase_melody, resolve_to_tonic, rhythm_variant
from .text_to_style import MAX_BPM, MIN_BPM, Style

RESOLUTION = 960  # MIDI ticks per beat
#: (low, high) MIDI range of a melody instrument, by General MIDI program
MELODY_RANGE = {9: (72, 96), 10: (72, 96), 14: (60, 79), 24: (52, 76), 25: (52, 76), 27: (55, 79),
                29: (55, 79), 40: (60, 88), 41: (55, 79), 42: (48, 72), 52: (55, 76), 56: (58, 82),
                57: (46, 70), 60: (50, 74), 61: (53, 77), 65: (53, 79), 68: (60, 84), 70: (43, 67),
                71: (52, 79), 72: (72, 96), 73: (64, 91), 77: (60, 84), 79: (64, 88)}
_LEGATO = {40, 41, 42, 48, 49, 52, 60, 61, 68, 70, 71, 73, 77, 88, 89}
#: sustained sounds (strings, choir, organ, pads) hold chords instead of arpeggiating or strumming
_SUSTAINED = {16, 17, 18, 19, 20, 48, 49, 50, 51, 52, 53, 54, 88, 89, 90, 91, 92, 93, 94, 95}


@dataclass
class Bar:
    start: float  # beats from the beginning
    beats: float
    chord: Chord
    phrase: int
    kind: str  # intro, A, B, C (breakdown), end (the final tonic chord)


@dataclass
class Arrangement:
    midi: "object"  # pretty_midi.PrettyMIDI
    tempo_bpm: float
    duration: float
    programs: dict[str, int]  # role -> General MIDI program (drums: the kit)


def loop_tempo(tempo: float, duration: float) -> float:
    """A tempo near ``tempo`` that fits a whole number of bars (else beats) into ``duration``, inside the tempi the
    composer plays (MIN_BPM-MAX_BPM: 220 BPM looped in 2 s was played at 240) where a whole number of beats is."""
    for unit in (240.0, 60.0):  # a bar, a beat: seconds x BPM
        count = duration * tempo / unit
        nearest = max(1, round(count))
        other = max(1, nearest + (1 if count > nearest else -1))
        for fitted in (unit * n / duration for n in (nearest, other)):
            if 0.8 <= fitted / tempo <= 1.25 and MIN_BPM - 1e-9 <= fitted <= MAX_BPM + 1e-9:
                return fitted
    low, high = math.ceil(MIN_BPM * duration / 60.0 - 1e-9), math.floor(MAX_BPM * duration / 60.0 + 1e-9)
    beats = max(1, round(duration * tempo / 60.0))  # the whole beats nearest, inside the range where one fits
    return 60.0 * (min(max(beats, low), high) if 1 <= low <= high else beats) / duration


def _bars(total_beats: float, loop: bool) -> tuple[list[tuple[float, float]], float]:
    """(start, beats) of each body bar, and the beat where the final tonic chord starts."""
    if loop:
        body = float(round(total_beats))
    elif total_beats < 3:
        body = 0.0
    elif total_beats < 6:
        body = float(int(total_beats / 2))
    else:
        body = 4.0 * int((total_beats - 2) / 4)
    spans, t = [], 0.0
    while t < body - 1e-9:
        spans.append((t, min(4.0, body - t)))
        t += 4.0
    return spans, body


def _plan(style: Style, spans: list[tuple[float, float]], rng: np.random.Generator) -> list[Bar]:
    progs = PROGRESSIONS[style.mode]
    picks = rng.permutation(len(progs))
    prog_a, prog_b = progs[int(picks[0])], progs[int(picks[1 % len(progs)])]
    n_phrases = (len(spans) + 3) // 4
    kinds: list[str] = []
    if n_phrases >= 6:
        kinds.append("intro")
    cycle = ["A", "A", "B", "A"] + (["C"] if n_phrases >= 10 else [])
    while len(kinds) < n_phrases:
        kinds += cycle
    seventh = style.comp in ("stabs", "jazz")
    bars = []
    for i, (start, beats) in enumerate(spans):
        kind = kinds[i // 4]
        degree = (prog_b if kind == "B" else prog_a)[i % 4]
        bars.append(Bar(start, beats, make_chord(style.mode, degree, seventh=seventh), i // 4, kind))
    if len(bars) >= 2:  # the cadence chord leads home (to the final tonic or to bar 1 of a loop)
        bars[-1].chord = make_chord(style.mode, CADENCE[style.mode], seventh=seventh, dominant=True)
    return bars


def _melody(style: Style, bars: list[Bar], rng: np.random.Generator,
            theme: tuple[int, ...] | None = None) -> list[tuple[float, float, int]]:
    density = density_name(style.energy, style.tempo_bpm, ambient=style.genre == "ambient")
    motif = make_motif(rng, density)
    if theme:  # a chapter's shared theme: its contour on this cue's rhythm (the rng advanced the same either way)
        motif = Motif(motif.rhythm, tuple(int(c) for c in theme)).with_rhythm(motif.rhythm)
    out: list[tuple[float, float, int]] = []
    seen: dict[str, int] = {}
    for p in sorted({b.phrase for b in bars}):
        group = [b for b in bars if b.phrase == p]
        kind = group[0].kind
        if kind in ("intro", "C"):
            continue
        count = seen.get(kind, 0)
        seen[kind] = count + 1
        if kind == "A" and count and count % 4 == 0:
            motif = rhythm_variant(motif, rng)  # the motif itself keeps developing in long pieces
        m = motif.inverted().with_rhythm(make_motif(rng, density).rhythm) if kind == "B" else motif
        last = group[-1] is bars[-1]
        out += phrase_melody(m, [b.chord for b in group], [b.start for b in group],
                             [b.beats for b in group], rng, develop=count,
                             ending="lead" if last else "answer")
    return out


def _melody_shift(style: Style) -> tuple[int, int, int]:
    """(octave shift in semitones, low, high) that puts the melody in its instrument's range."""
    lo, hi = MELODY_RANGE.get(style.melody, (60, 84))
    ref = chord_midi(style.tonic, style.mode, make_chord(style.mode, 0), 7)
    shift = 12 * round(((lo + hi) / 2 - ref) / 12)
    return shift, lo, hi


def _fit(p: int, lo: int, hi: int) -> int:
    while p > hi:
        p -= 12
    while p < lo:
        p += 12
    return p


def arrange(style: Style, duration: float, rng: np.random.Generator, *, loop: bool = False,
            theme: tuple[int, ...] | None = None) -> Arrangement:
    """Compose ``duration`` seconds of ``style``.  Deterministic for a given rng state."""
    tempo = loop_tempo(style.tempo_bpm, duration) if loop else float(style.tempo_bpm)
    # a whole number of microseconds per beat, as MIDI stores it (the epsilon survives
    # pretty_midi's int() truncation when it writes the tempo)
    tempo = 60e6 / (round(60e6 / tempo) + 1e-6)
    spb = 60.0 / tempo
    total = duration / spb
    spans, final_at = _bars(total, loop)
    bars = _plan(style, spans, rng)
    tonic_chord = make_chord(style.mode, 0, seventh=style.comp in ("stabs", "jazz"))
    energy = style.energy
    parts: dict[str, list[tuple[float, float, int, int]]] = {"melody": [], "harmony": [], "bass": []}

    # melody
    mel = _melody(style, bars, rng, theme)
    shift, lo, hi = _melody_shift(style)
    mel_vel = 62 + 40 * energy
    def chord_at(beat: float) -> Chord:
        if beat >= final_at - 1e-9:
            return tonic_chord
        return next((b.chord for b in reversed(bars) if b.start <= beat + 1e-9), tonic_chord)

    legato = 0.98 if style.melody in _LEGATO else 0.9
    if not loop and total - final_at > 1e-6:  # the melody comes home on the final chord
        mel.append((final_at, total - final_at, resolve_to_tonic(mel[-1][2] if mel else 7)))
    for on, dur, deg in mel:
        p = _fit(chord_midi(style.tonic, style.mode, chord_at(on), deg) + shift, lo, hi)
        vel = int(np.clip(mel_vel + (6 if on % 2 == 0 else 0) + rng.normal(0, 4), 20, 127))
        parts["melody"].append((on, dur if on >= final_at else dur * legato, p, vel))

    # harmony and bass, bar by bar
    h_hi = int(np.clip((lo + hi) // 2 + 1, 62, 76))  # chords sit under the melody
    h_lo = h_hi - (24 if style.comp == "arp" else 22)
    b_lo, b_hi = (28, 50) if style.bass in range(32, 40) or style.bass in (43, 58, 70) else (36, 55)
    prev: list[int] | None = None
    comp = "pad" if style.comp in ("arp", "strum") and style.harmony in _SUSTAINED else style.comp
    for i, bar in enumerate(bars + ([Bar(final_at, total - final_at, tonic_chord, -1, "end")] if not loop else [])):
        vo = voice(style.tonic, style.mode, bar.chord, prev, h_lo, h_hi)
        prev = vo
        root = bass_note(style.tonic, style.mode, bar.chord, 0, b_lo, b_hi)
        third = bass_note(style.tonic, style.mode, bar.chord, 1, b_lo, b_hi)
        fifth = bass_note(style.tonic, style.mode, bar.chord, 2, b_lo, b_hi)
        if bar.kind == "end":
            parts["harmony"] += [(bar.start + 0.02 * j * (comp in ("arp", "strum")), bar.beats, p,
                                  int(50 + 35 * energy)) for j, p in enumerate(vo)]
            parts["bass"].append((bar.start, bar.beats, root, int(60 + 30 * energy)))
            continue
        nxt = bars[i + 1].chord if i + 1 < len(bars) else (bars[0].chord if loop else tonic_chord)
        next_root = bass_note(style.tonic, style.mode, nxt, 0, b_lo, b_hi)
        for on, dur, p, v in comp_bar(comp, vo, bar.beats, energy, 50 + 35 * energy, rng):
            parts["harmony"].append((bar.start + on, dur, p, v))
        kind = "sustain" if bar.kind == "intro" and style.bassline != "walking" else style.bassline
        for on, dur, p, v in bass_bar(kind, root, fifth, third, next_root, bar.beats, 60 + 35 * energy, rng):
            parts["bass"].append((bar.start + on, dur, p, v))

    # drums
    hits: list[tuple[float, int, int]] = []
    if style.drums:
        for i, bar in enumerate(bars):
            if bar.kind in ("intro", "C"):
                continue
            pos = i % 4
            fill = pos == 3 and (bar.phrase % 2 == 1 or energy > 0.75) and i != len(bars) - 1
            crash = pos == 0 and (bar.phrase % 2 == 0 or i == 0)
            for on, note, vel in drumkit.drum_bar(style.groove, bar.beats, energy, rng, fill=fill, crash=crash):
                hits.append((bar.start + on, note, vel))
        if not loop and total - final_at > 0:
            hits += [(final_at + on, note, vel) for on, note, vel in drumkit.final_hit(energy)]
    return _assemble(style, tempo, spb, total, parts, hits, duration)


def _assemble(style: Style, tempo: float, spb: float, total: float, parts: dict, hits: list,
              duration: float) -> Arrangement:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(resolution=RESOLUTION, initial_tempo=tempo)
    tick = spb / RESOLUTION

    def at(beat: float) -> float:
        if style.swing and abs(beat % 1 - 0.5) < 1e-6:
            beat += style.swing / 6.0
        return round(min(beat, total) * spb / tick) * tick

    programs = {"melody": style.melody, "harmony": style.harmony, "bass": style.bass}
    pans = {"melody": 74, "harmony": 52, "bass": 64, "drums": 64}
    for role, notes in parts.items():
        inst = pretty_midi.Instrument(program=programs[role], name=role)
        inst.control_changes.append(pretty_midi.ControlChange(10, pans[role], 0.0))
        for on, dur, pitch, vel in notes:
            start, end = at(on), at(min(on + dur, total))
            if end - start >= tick and 0 <= pitch <= 127:
                inst.notes.append(pretty_midi.Note(int(vel), int(pitch), start, end))
        pm.instruments.append(inst)
    if hits:
        kit = pretty_midi.Instrument(program=style.kit, is_drum=True, name="drums")
        kit.control_changes.append(pretty_midi.ControlChange(10, pans["drums"], 0.0))
        for on, note, vel in hits:
            start = at(on)
            length = 1.5 if note == drumkit.CRASH else 0.25
            kit.notes.append(pretty_midi.Note(int(vel), int(note), start, min(at(on + length), at(total))))
        kit.notes = [n for n in kit.notes if n.end > n.start]
        pm.instruments.append(kit)
        programs["drums"] = style.kit
    for inst in pm.instruments:
        _untangle(inst)
    return Arrangement(pm, tempo, duration, programs)


def _untangle(inst) -> None:
    """End each note before the next one of the same pitch starts: MIDI cannot hold overlapping
    repeats of one key on one channel, and the file must hold exactly what is rendered."""
    last: dict[int, object] = {}
    kept = []
    for note in sorted(inst.notes, key=lambda n: (n.start, n.pitch, -n.end)):
        prev = last.get(note.pitch)
        if prev is not None and prev.end > note.start:
            if note.start <= prev.start:
                continue  # the same key struck twice at once: keep one
            prev.end = note.start
        last[note.pitch] = note
        kept.append(note)
    inst.notes = [n for n in kept if n.end > n.start]
