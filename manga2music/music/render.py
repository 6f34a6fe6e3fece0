"""Render a :class:`pretty_midi.PrettyMIDI` to stereo audio with a SoundFont, in numpy.

A small sample player, not a full SoundFont synthesizer: for each note it picks
the matching zones of the instrument's General MIDI preset, resamples the zone's
sample by the pitch ratio (linear interpolation, sustain loops honoured), shapes
it with the SF2 volume envelope (delay, attack, hold, decay, sustain, release),
scales it by velocity and attenuation and pans it (zone pan + the channel's
CC10).  Channel volume comes from CC7.  Hi-hat style exclusive classes choke
each other.  A synthetic convolution reverb adds the room.  Not modelled:
modulators, filter and LFO generators, pitch bends.

Identical notes are rendered once per call and reused (drums and repeated
chords), so ten seconds of a four-part arrangement render in a fraction of a
second; ten minutes take a few seconds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..threads import stop_point
from .soundfont import SoundFont, Zone, load_soundfont

RELEASE_CAP_S = 2.5  # longest release tail rendered
FLOOR_DB = -60.0  # a voice stops once its envelope falls this low
CHOKE_FADE_S = 0.01


@dataclass(frozen=True)
class _Voice:
    """One note to play: what, where (samples) and how loud."""

    start: int
    length: int  # held samples (note-on to note-off)
    key: int
    velocity: int
    limit: int | None  # choke: the voice must stop after this many samples


def _envelope(z: Zone, n_on: int, n: int, sr: int) -> np.ndarray:
    """The SF2 volume envelope as linear gain over n samples (note-off at n_on), float32.

    Piecewise linear in dB (decay to the sustain level, then the release from
    wherever the note-off finds it), turned into gain with one ``exp``.
    """
    t = np.arange(n, dtype=np.float32) * np.float32(1.0 / sr)
    if z.decay_s > 0:
        db = np.maximum(t - np.float32(z.delay_s + z.attack_s + z.hold_s), np.float32(0.0))
        db *= np.float32(-100.0 / z.decay_s)
        np.maximum(db, np.float32(-z.sustain_cb / 10.0), out=db)
    else:
        db = np.where(t > np.float32(z.delay_s + z.attack_s + z.hold_s), np.float32(-z.sustain_cb / 10.0),
                      np.float32(0.0))
    if n > n_on:
        level = db[n_on - 1] if n_on > 0 else np.float32(0.0)
        rel = max(z.release_s, 0.005)
        db[n_on:] = level - (t[n_on:] - t[n_on]) * np.float32(100.0 / rel)
    gain = np.exp(db * np.float32(np.log(10.0) / 20.0))
    if z.attack_s > 0 or z.delay_s > 0:
        gain *= np.clip((t - np.float32(z.delay_s)) * np.float32(1.0 / max(z.attack_s, 1e-4)), 0.0, 1.0)
    return gain


def _play_zone(sf: SoundFont, z: Zone, key: int, n_on: int, sr: int) -> np.ndarray:
    """One zone's sample for one key, n_on samples held plus its release (unit velocity)."""
    cents = (key - z.root_key) * z.scale_tuning + z.tune_cents
    ratio = 2.0 ** (cents / 1200.0) * z.sample_rate / sr
    rel = min(max(z.release_s, 0.005), RELEASE_CAP_S)
    n = n_on + int(rel * (-FLOOR_DB / 100.0) * sr) + 1
    if not z.loop:
        n = min(n, int((z.end - z.start - 1) / ratio))
    if n <= 1:
        return np.zeros(1, dtype=np.float32)
    pos = np.arange(n, dtype=np.float64) * ratio
    idx = pos.astype(np.int64)
    frac = (pos - idx).astype(np.float32)
    nxt = idx + 1
    if z.loop:
        ls, le = z.loop_start - z.start, z.loop_end - z.start
        span = le - ls
        over = idx >= le
        idx[over] = ls + (idx[over] - ls) % span
        nxt = idx + 1
        nxt[nxt >= le] -= span
    data = sf.samples
    a = data[z.start + idx]
    b = data[z.start + nxt]
    wave = a + (b - a) * frac
    wave *= _envelope(z, min(n_on, n), n, sr)
    return wave


@functools.lru_cache(maxsize=8)
def _reverb_ir(sr: int, seconds: float) -> np.ndarray:
    """A stereo room: decaying, darkened noise (fixed seed; not part of the music)."""
    rng = np.random.default_rng(20240531)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    decay = np.exp(-6.9 * t / seconds)  # -60 dB at `seconds`
    noise = rng.standard_normal((n, 2))
    # darken: a one-pole low-pass whose cutoff falls as the tail goes on
    from scipy.signal import lfilter

    noise = lfilter([0.35], [1.0, -0.65], noise, axis=0)
    ir = noise * decay[:, None]
    ir[: int(0.012 * sr)] = 0.0  # pre-delay
    ir /= np.sqrt(np.sum(ir ** 2, axis=0, keepdims=True))
    return ir.astype(np.float32)


REVERB_CHUNK = 1 << 20  # frames convolved at a time (33 s at 32 kHz; the reverb's tail is under 3 s)


def add_reverb(audio: np.ndarray, sr: int, *, wet: float, seconds: float = 1.8) -> np.ndarray:
    """Mix a convolution reverb into (frames, 2) audio; wet in [0, 1]."""
    if wet <= 0 or len(audio) == 0:
        return audio
    from scipy.signal import oaconvolve

    ir = _reverb_ir(sr, float(seconds))
    out = audio.copy()
    n = len(audio)
    for ch in range(audio.shape[1]):
        for start in range(0, n, REVERB_CHUNK):  # a piece at a time, each one's tail added on: oaconvolve holds the
            # spectra of all its blocks at once (a 30-minute track: about 1 GB)
            stop_point()
            tail = oaconvolve(audio[start:start + REVERB_CHUNK, ch], ir[:, ch % 2])[: n - start]  # float32 in and out
            tail *= np.float32(wet)
            out[start:start + len(tail), ch] += tail
    return out


def _channel_settings(inst) -> tuple[float, float]:
    """(volume gain, pan -0.5..0.5) from the first CC7 / CC10 of a pretty_midi instrument."""
    volume, pan = 100, 64
    for cc in sorted(inst.control_changes, key=lambda c: c.time):
        if cc.number == 7 and volume == 100:
            volume = cc.value
        elif cc.number == 10 and pan == 64:
            pan = cc.value
    return (volume / 127.0) ** 2, (pan - 64) / 128.0


def _voices(inst, sr: int, sf: SoundFont) -> list[_Voice]:
    notes = sorted(inst.notes, key=lambda n: (n.start, n.pitch))
    voices = []
    for note in notes:
        start = int(round(note.start * sr))
        voices.append(_Voice(start, max(1, int(round(note.end * sr)) - start),
                             int(note.pitch), int(note.velocity), None))
    if inst.is_drum:  # exclusive classes (open/closed hi-hat): a new hit stops the last one
        preset = sf.preset(inst.program, drums=True)
        last: dict[int, int] = {}
        for i, v in enumerate(voices):
            classes = {z.exclusive_class for z in preset.zones_for(v.key, v.velocity)} - {0}
            for c in classes:
                if c in last:
                    j = last[c]
                    prev = voices[j]
                    voices[j] = _Voice(prev.start, prev.length, prev.key, prev.velocity,
                                       max(1, v.start - prev.start))
                last[c] = i
    return voices


def render_midi(midi, n_frames: int, sample_rate: int = 32000, *, soundfont: str | None = None,
                reverb: float = 0.15, reverb_seconds: float = 1.8) -> np.ndarray:
    """Render every instrument of ``midi`` into float32 stereo audio of exactly n_frames.

    Notes still sounding at the end are cut there (the caller fades); notes may
    start anywhere, including past the end (ignored).
    """
    sf = load_soundfont(soundfont)
    sr = int(sample_rate)
    size = n_frames + int(RELEASE_CAP_S * sr) + sr
    left, right = np.zeros(size, dtype=np.float32), np.zeros(size, dtype=np.float32)
    cache: dict[tuple, np.ndarray] = {}
    for inst in midi.instruments:
        preset = sf.preset(inst.program, drums=inst.is_drum)
        volume, chan_pan = _channel_settings(inst)
        for v in _voices(inst, sr, sf):
            stop_point()
            if v.start >= n_frames:
                continue
            vel_gain = volume * (max(1, min(127, v.velocity)) / 127.0) ** 1.8
            for z in preset.zones_for(v.key, v.velocity):
                ck = (id(z), v.key, v.length)
                wave = cache.get(ck)
                if wave is None:
                    wave = cache[ck] = _play_zone(sf, z, v.key, v.length, sr)
                if v.limit is not None and v.limit < len(wave):
                    fade = min(int(CHOKE_FADE_S * sr), v.limit)
                    wave = wave[: v.limit].copy()
                    wave[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
                seg = wave[: size - v.start]
                gain = vel_gain * 10.0 ** (-0.4 * z.attenuation_cb / 200.0)
                p = (min(0.5, max(-0.5, z.pan + chan_pan)) + 0.5) * (np.pi / 2)  # 0 = left .. pi/2 = right
                end = v.start + len(seg)
                left[v.start:end] += seg * np.float32(gain * np.cos(p))
                right[v.start:end] += seg * np.float32(gain * np.sin(p))
    out = np.stack([left, right], axis=1)
    del left, right
    out = add_reverb(out, sr, wet=reverb, seconds=reverb_seconds)
    return out[:n_frames]


def master(audio: np.ndarray, *, peak: float = 0.89) -> np.ndarray:
    """Gentle soft-clip and peak-normalise (about -1 dBFS); silence stays silence."""
    top = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
    if top < 1e-9:
        return audio.astype(np.float32)
    x = audio.astype(np.float32)  # one copy, worked on in place (a 30-minute track is 460 MB a copy)
    x *= np.float32(1.2 / top)
    np.tanh(x, out=x)
    x *= np.float32(peak / np.tanh(1.2))
    return x


def balance(midi, levels: dict[str, float], *, soundfont: str | None = None, excerpt_s: float = 16.0) -> None:
    """Set each instrument's CC7 so the parts sound at ``levels[instrument.name]`` (relative RMS).

    Each part's opening ``excerpt_s`` seconds are rendered alone (16 kHz, dry) and
    measured; the loudest part then gets CC7 = 127.  The values are written into
    the MIDI, so the file plays back with the same mix as the audio.
    """
    import pretty_midi

    gains = {}
    for i, inst in enumerate(midi.instruments):
        inst.control_changes = [c for c in inst.control_changes if c.number != 7]
        solo = pretty_midi.PrettyMIDI(initial_tempo=120)
        solo.instruments.append(inst)
        audio = render_midi(solo, int(excerpt_s * 16000), 16000, soundfont=soundfont, reverb=0.0)
        rms = float(np.sqrt(np.mean(audio ** 2))) if audio.size else 0.0
        gains[i] = levels.get(inst.name, 0.7) / max(rms, 1e-4)
    top = max(gains.values(), default=1.0)
    for i, inst in enumerate(midi.instruments):
        value = int(round(127 * np.sqrt(gains[i] / top)))
        inst.control_changes.insert(0, pretty_midi.ControlChange(7, max(1, min(127, value)), 0.0))
