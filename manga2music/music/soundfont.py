"""A small SoundFont 2 reader: presets, zones and 16-bit sample data as numpy.

Reads the RIFF chunks of an ``.sf2`` file (the ``pdta`` hydra and the ``smpl``
sample block) into plain dataclasses the sampler in :mod:`.render` plays.  It
understands what a General MIDI font needs: key/velocity ranges, sample loops,
root key and tuning, the volume envelope, pan and attenuation.  Modulators and
the filter/LFO generators are ignored (the sampler does not model them).

:func:`load_soundfont` caches by path, so a process parses a font once.  The
default font is ``TimGM6mb.sf2``, the General MIDI font that ships inside
``pretty_midi``.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelUnavailableError

# generator numbers from the SoundFont 2.01 specification (section 8.1.2)
START_OFS, END_OFS, STARTLOOP_OFS, ENDLOOP_OFS, START_COARSE = 0, 1, 2, 3, 4
END_COARSE, PAN = 12, 17
DELAY_VOL, ATTACK_VOL, HOLD_VOL, DECAY_VOL, SUSTAIN_VOL, RELEASE_VOL = 33, 34, 35, 36, 37, 38
INSTRUMENT, KEY_RANGE, VEL_RANGE, STARTLOOP_COARSE = 41, 43, 44, 45
ATTENUATION, ENDLOOP_COARSE, COARSE_TUNE, FINE_TUNE = 48, 50, 51, 52
SAMPLE_ID, SAMPLE_MODES, SCALE_TUNING, EXCLUSIVE_CLASS, ROOT_KEY = 53, 54, 56, 57, 58

_RANGES = (KEY_RANGE, VEL_RANGE)
#: generators a preset zone adds to its instrument zones (timecents, cents, centibels...)
_ADDITIVE = (PAN, DELAY_VOL, ATTACK_VOL, HOLD_VOL, DECAY_VOL, SUSTAIN_VOL, RELEASE_VOL,
             ATTENUATION, COARSE_TUNE, FINE_TUNE)
_DEFAULTS = {DELAY_VOL: -12000, ATTACK_VOL: -12000, HOLD_VOL: -12000, DECAY_VOL: -12000,
             RELEASE_VOL: -12000, SCALE_TUNING: 100, ROOT_KEY: -1}


@dataclass(frozen=True)
class Zone:
    """One playable layer: a sample, where it applies, and how it is played."""

    key_lo: int
    key_hi: int
    vel_lo: int
    vel_hi: int
    start: int  # absolute indices into SoundFont.samples
    end: int
    loop_start: int
    loop_end: int
    loop: bool  # sampleModes 1 or 3
    sample_rate: int
    root_key: int
    tune_cents: float  # coarse*100 + fine + the sample's pitch correction
    scale_tuning: float  # cents per key (100 normally, 0 for fixed-pitch drums)
    attenuation_cb: float
    pan: float  # -0.5 (left) .. 0.5 (right)
    delay_s: float
    attack_s: float
    hold_s: float
    decay_s: float
    sustain_cb: float  # attenuation of the sustain level, 0 = full
    release_s: float
    exclusive_class: int = 0


@dataclass
class Preset:
    name: str
    bank: int
    program: int
    zones: list[Zone] = field(default_factory=list)

    def zones_for(self, key: int, velocity: int) -> list[Zone]:
        return [z for z in self.zones
                if z.key_lo <= key <= z.key_hi and z.vel_lo <= velocity <= z.vel_hi]


@dataclass
class SoundFont:
    path: str
    samples: np.ndarray  # float32 in [-1, 1], every sample of the font back to back
    presets: dict[tuple[int, int], Preset]  # (bank, program) -> preset

    def preset(self, program: int, *, drums: bool = False) -> Preset:
        """The GM preset for a program (bank 0) or the drum kit (bank 128), with fallbacks."""
        if drums:
            for key in ((128, program), (128, 0)):
                if key in self.presets:
                    return self.presets[key]
            kits = [p for (bank, _), p in self.presets.items() if bank == 128]
            if kits:
                return kits[0]
        key = (0, int(program) & 127)
        if key in self.presets:
            return self.presets[key]
        return self.presets.get((0, 0)) or next(iter(self.presets.values()))


def default_soundfont_path() -> Path:
    """``TimGM6mb.sf2`` inside the installed ``pretty_midi`` package."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def _chunks(data: bytes, offset: int, end: int):
    """Yield (id, start, size) of the RIFF sub-chunks in data[offset:end]."""
    while offset + 8 <= end:
        cid, size = struct.unpack_from("<4sI", data, offset)
        yield cid, offset + 8, size
        offset += 8 + size + (size & 1)


def _timecents(tc: float) -> float:
    return 0.0 if tc <= -12000 else float(2.0 ** (tc / 1200.0))


def _records(data: bytes, where: tuple[int, int], fmt: str) -> list[tuple]:
    start, size = where
    rec = struct.calcsize(fmt)
    return [struct.unpack_from(fmt, data, start + i * rec) for i in range(size // rec)]


def _zone_gens(bags, gens, first: int, last: int, terminal: int) -> tuple[dict, list[dict]]:
    """Split bags[first:last] into (global generators, [generators of each zone])."""
    glob: dict[int, int] = {}
    zones: list[dict[int, int]] = []
    for b in range(first, last):
        g0, g1 = bags[b][0], bags[b + 1][0]
        z = {oper: amount for oper, amount in gens[g0:g1]}
        if terminal in z:
            zones.append(z)
        elif b == first:
            glob = z
    return glob, zones


def _gen_value(oper: int, raw: int):
    """Decode a generator's 16-bit amount: ranges as (lo, hi), the rest signed."""
    if oper in _RANGES:
        return (raw & 0xFF, (raw >> 8) & 0xFF)
    if oper in (INSTRUMENT, SAMPLE_ID, SAMPLE_MODES):
        return raw
    return raw - 0x10000 if raw >= 0x8000 else raw


def _parse(path: str) -> SoundFont:
    data = Path(path).read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise ModelUnavailableError(f"{path} is not a SoundFont 2 file")
    lists: dict[bytes, tuple[int, int]] = {}
    for cid, start, size in _chunks(data, 12, len(data)):
        if cid == b"LIST":
            lists[data[start:start + 4]] = (start + 4, start + size)
    hydra: dict[bytes, tuple[int, int]] = {}
    for cid, start, size in _chunks(data, *lists[b"pdta"]):
        hydra[cid] = (start, size)
    smpl = next((s, n) for c, s, n in _chunks(data, *lists[b"sdta"]) if c == b"smpl")
    samples = (np.frombuffer(data, dtype="<i2", count=smpl[1] // 2, offset=smpl[0])
               .astype(np.float32) / 32768.0)

    def gens(chunk: bytes) -> list[tuple[int, object]]:
        return [(o, _gen_value(o, a)) for o, a in _records(data, hydra[chunk], "<HH")]

    phdr = _records(data, hydra[b"phdr"], "<20sHHHIII")
    pbag, ibag = _records(data, hydra[b"pbag"], "<HH"), _records(data, hydra[b"ibag"], "<HH")
    pgen, igen = gens(b"pgen"), gens(b"igen")
    inst = _records(data, hydra[b"inst"], "<20sH")
    shdr = _records(data, hydra[b"shdr"], "<20sIIIIIBbHH")

    presets: dict[tuple[int, int], Preset] = {}
    for i in range(len(phdr) - 1):  # the last record is the terminal "EOP"
        name, program, bank, bag0 = phdr[i][:4]
        preset = Preset(name.split(b"\0")[0].decode("latin-1"), bank, program)
        pglob, pzones = _zone_gens(pbag, pgen, bag0, phdr[i + 1][3], INSTRUMENT)
        for pz in pzones:
            pz = {**pglob, **pz}
            ii = pz[INSTRUMENT]
            if ii + 1 >= len(inst):
                continue
            iglob, izones = _zone_gens(ibag, igen, inst[ii][1], inst[ii + 1][1], SAMPLE_ID)
            for iz in izones:
                zone = _make_zone({**_DEFAULTS, **iglob, **iz}, pz, shdr)
                if zone is not None:
                    preset.zones.append(zone)
        presets[(bank, program)] = preset
    return SoundFont(str(path), samples, presets)


def _intersect(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return max(a[0], b[0]), min(a[1], b[1])


def _make_zone(g: dict, pg: dict, shdr: list[tuple]) -> Zone | None:
    sid = g[SAMPLE_ID]
    if sid >= len(shdr) - 1:
        return None
    _, s_start, s_end, s_ls, s_le, s_rate, s_pitch, s_corr, _, s_type = shdr[sid]
    if s_type & 0x8000:  # ROM samples are not in the file
        return None
    keys = _intersect(g.get(KEY_RANGE, (0, 127)), pg.get(KEY_RANGE, (0, 127)))
    vels = _intersect(g.get(VEL_RANGE, (0, 127)), pg.get(VEL_RANGE, (0, 127)))
    if keys[0] > keys[1] or vels[0] > vels[1]:
        return None

    def val(oper: int) -> float:
        return float(g.get(oper, 0)) + (float(pg.get(oper, 0)) if oper in _ADDITIVE else 0.0)

    start = s_start + int(val(START_OFS) + 32768 * val(START_COARSE))
    end = s_end + int(val(END_OFS) + 32768 * val(END_COARSE))
    ls = s_ls + int(val(STARTLOOP_OFS) + 32768 * val(STARTLOOP_COARSE))
    le = s_le + int(val(ENDLOOP_OFS) + 32768 * val(ENDLOOP_COARSE))
    if end - start < 2:
        return None
    loop = int(g.get(SAMPLE_MODES, 0)) & 1 == 1 and start <= ls < le <= end and le - ls >= 2
    root = int(g[ROOT_KEY]) if int(g[ROOT_KEY]) >= 0 else int(s_pitch)
    if root > 127:
        root = 60
    return Zone(
        key_lo=keys[0], key_hi=keys[1], vel_lo=vels[0], vel_hi=vels[1],
        start=start, end=end, loop_start=ls if loop else start, loop_end=le if loop else end, loop=loop,
        sample_rate=max(int(s_rate), 1), root_key=root,
        tune_cents=100.0 * val(COARSE_TUNE) + val(FINE_TUNE) + float(s_corr),
        scale_tuning=float(g[SCALE_TUNING]),
        attenuation_cb=max(0.0, val(ATTENUATION)),
        pan=float(np.clip(val(PAN) / 1000.0, -0.5, 0.5)),
        delay_s=_timecents(val(DELAY_VOL)), attack_s=_timecents(val(ATTACK_VOL)),
        hold_s=_timecents(val(HOLD_VOL)), decay_s=_timecents(val(DECAY_VOL)),
        sustain_cb=float(np.clip(val(SUSTAIN_VOL), 0.0, 1440.0)),
        release_s=_timecents(val(RELEASE_VOL)),
        exclusive_class=int(g.get(EXCLUSIVE_CLASS, 0)),
    )


@functools.lru_cache(maxsize=4)
def load_soundfont(path: str | None = None) -> SoundFont:
    """Parse a SoundFont once per process (``None``: the font inside pretty_midi)."""
    p = Path(path) if path else default_soundfont_path()
    if not p.is_file():
        raise ModelUnavailableError(
            f"SoundFont not found: {p}",
            hint="reinstall pretty_midi (it ships TimGM6mb.sf2) or pass a .sf2 path",
        )
    try:
        return _parse(str(p))
    except (struct.error, KeyError, StopIteration, ValueError) as err:
        raise ModelUnavailableError(f"cannot read SoundFont {p}: {err}") from err
