"""Everything about the audio files a user gets: loudness, loops, formats, tags, atomic writes.

Encoding goes through soundfile's bundled libsndfile (WAV, FLAC, Ogg Vorbis,
Ogg Opus, MP3; no ffmpeg), loudness through pyloudnorm (ITU-R BS.1770), tags
through mutagen.  A file is encoded and tagged in memory (:func:`encode_audio`),
then written in one go by :mod:`manga2music.files`, so a full disk reports itself
as one (libsndfile would only say "System error") and a reader never sees half a file.

About 500 lines: loudness, loops, encoding and tags are each small, and they are one job (a track as
the user gets it) that every composer and the score share.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from math import gcd
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from . import __version__
from .errors import InputError, Manga2MusicError
from .files import atomic_path, readable, write_bytes_atomic, write_text_atomic  # noqa: F401  (re-exported)

AUDIO_FORMATS = ("wav", "mp3", "ogg", "flac", "opus")
#: the format of music made with none given, where no music is there yet (see composing.job_config)
DEFAULT_FORMAT = "wav"

# format -> (libsndfile major format, subtype).  16-bit PCM is plenty for generated music.
_SNDFILE = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
_SUFFIX_FORMAT = {"wav": "wav", "flac": "flac", "ogg": "ogg", "oga": "ogg", "opus": "opus", "mp3": "mp3"}
# Sample rates the encoders accept; anything else is resampled (see _encoder_rate).
_OPUS_RATES = {8000, 12000, 16000, 24000, 48000}
_MP3_RATES = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}

WRITE_BLOCK = 1 << 15  # frames handed to the encoder at a time
_BLOCK_S = 0.4  # pyloudnorm's gating block: shorter audio cannot be measured directly
_CHUNK = 1 << 18  # frames of a long track measured or limited at a time (8 s at 32 kHz)
_MAX_GAIN_DB = 30.0  # never lift near-silence into loud noise
_MAX_LIMIT_DB = 6.0  # the most the limiter may take off the music to reach the target
_LIMITER_WINDOW_S = 0.02

_ID3_FRAMES = {"title": "TIT2", "comment": "COMM", "software": "TSSE"}
_VORBIS_KEYS = {"software": "ENCODER"}


# ---------------------------------------------------------------- loudness


def _frames(audio: np.ndarray) -> np.ndarray:
    """``audio`` as float32 (frames, channels); NaN/inf become 0.  Not a copy when ``audio`` already is that (a
    chapter's score is hundreds of MB a copy): never write into it."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or not 1 <= x.shape[1] <= 8:
        raise ValueError(f"audio must be shaped (frames, channels) with 1-8 channels, got {x.shape}")
    finite = all(np.isfinite(x[i:i + _CHUNK]).all() for i in range(0, len(x), _CHUNK))  # no track-long mask
    return x if finite else np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _like_input(x: np.ndarray, audio: np.ndarray) -> np.ndarray:
    return x[:, 0] if np.ndim(audio) == 1 else x


def measure_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (``-inf`` for silence).

    Audio shorter than pyloudnorm's 0.4 s block is measured repeated end to end
    up to one block (a steady sound keeps its loudness that way; padding with
    silence would under-read it).
    """
    return _loudness_of(_frames(audio), sample_rate)


def _loudness_of(x: np.ndarray, sample_rate: int, scale: "_Scale | None" = None) -> float:
    """:func:`measure_loudness` of ``x`` as ``scale`` would make it, without making it (a piece at a time)."""
    if len(x) == 0:
        return float("-inf")
    block = int(np.ceil(_BLOCK_S * sample_rate)) + 1
    if len(x) < block:  # short: made, then repeated end to end (np.resize repeats the data)
        x = scale.apply(x) if scale is not None else x
        x, scale = np.resize(x.T, (x.shape[1], block)).T, None
    return _integrated_loudness(x, sample_rate, scale)


def _integrated_loudness(x: np.ndarray, sample_rate: int, scale: "_Scale | None" = None) -> float:
    """pyloudnorm's ``Meter(sample_rate).integrated_loudness(x)`` (BS.1770-4: K-weighting, 400 ms blocks every
    100 ms, the -70 LUFS and relative gates), with its filters and its block bounds, but filtered
    :data:`_CHUNK` frames at a time: pyloudnorm filters a float64 copy of the whole track, four to five
    copies at its peak, 1.3 GB for a 20-minute stereo score.  A test holds the two to within a millionth of a dB."""
    import pyloudnorm
    from scipy.signal import lfilter

    meter = pyloudnorm.Meter(sample_rate)
    n, channels = len(x), min(x.shape[1], 5)  # up to 5 channels, as BS.1770; more is not what we write
    size, hop = meter.block_size, meter.block_size * (1.0 - meter.overlap)
    count = int(np.round((n / sample_rate - size) / hop)) + 1
    j = np.arange(count)
    lows = (size * (j * (1.0 - meter.overlap)) * sample_rate).astype(np.int64)  # pyloudnorm's own expressions
    highs = np.minimum((size * (j * (1.0 - meter.overlap) + 1) * sample_rate).astype(np.int64), n)
    points = np.unique(np.concatenate([[0], lows, highs]))  # the track cut where any block starts or ends
    energy = np.zeros((len(points), channels))  # squared K-weighted samples from each point to the next
    # pyloudnorm's K-weighting stages (its Meter keeps them in ``_filters``; the test against integrated_loudness
    # fails if a release changes them)
    stages = [(f.b, f.a, f.passband_gain) for f in meter._filters.values()]
    state = [np.zeros((max(len(a), len(b)) - 1, channels)) for b, a, _ in stages]
    for start in range(0, n, _CHUNK):
        piece = x[start:start + _CHUNK] if scale is None else scale.piece(x, start, start + _CHUNK)
        y = piece[:, :channels].astype(np.float64)
        for k, (b, a, gain) in enumerate(stages):
            y, state[k] = lfilter(b, a, y, axis=0, zi=state[k])
            y *= gain  # pyloudnorm scales each stage's output
        inside = points[(points > start) & (points < start + len(y))] - start
        first = int(np.searchsorted(points, start, side="right")) - 1
        sums = np.add.reduceat(y * y, np.concatenate([[0], inside]).astype(np.int64), axis=0)
        energy[first:first + len(sums)] += sums
    total = np.concatenate([np.zeros((1, channels)), np.cumsum(energy, axis=0)])
    at_low, at_high = np.searchsorted(points, lows), np.searchsorted(points, highs)
    z = (total[at_high] - total[at_low]) / (size * sample_rate)  # (blocks, channels) mean squares
    weights = np.array([1.0, 1.0, 1.0, 1.41, 1.41][:channels])
    with np.errstate(divide="ignore"):
        level = -0.691 + 10.0 * np.log10(z @ weights)
        gated = level >= -70.0
        if not gated.any():
            return float("-inf")
        relative = -0.691 + 10.0 * np.log10(z[gated].mean(axis=0) @ weights) - 10.0
        kept = (level > relative) & (level > -70.0)
        mean = z[kept].mean(axis=0) if kept.any() else np.zeros(channels)
        return float(-0.691 + 10.0 * np.log10(mean @ weights))


def _peaks(x: np.ndarray) -> np.ndarray:
    """The largest absolute sample of each frame, without a copy of the whole track.

    Channel by channel: numpy's ``max(axis=1)`` over a (frames, 2) array runs one tiny reduction per frame, 50 times
    slower (1.5 s for a 12-minute stereo score, measured, and a score's loudness takes it 16 times)."""
    out = np.abs(x[:, 0])
    for start in range(0, len(x), _CHUNK):  # a piece at a time: no second track-long array of one channel
        piece = out[start:start + _CHUNK]
        for c in range(1, x.shape[1]):
            np.maximum(piece, np.abs(x[start:start + _CHUNK, c]), out=piece)
    return out


class _Scale:
    """What the limiter does to a track at one gain: ``gain``, or (where that would push a peak over ``ceiling``) a
    per-frame ``curve`` that already holds the gain.  Kept as the curve, not as the scaled track, so that trying a
    gain costs a frame's float, not a copy of the whole track (a volume's score is over a GB a copy)."""

    def __init__(self, gain: np.float32, curve: np.ndarray | None, ceiling: float):
        self.gain, self.curve, self.ceiling = gain, curve, ceiling

    def piece(self, x: np.ndarray, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Frames ``start:stop`` of the scaled track (into ``out`` when given, which may be ``x``'s own frames)."""
        if self.curve is None:
            return np.multiply(x[start:stop], self.gain, out=out)
        y = np.multiply(x[start:stop], self.curve[start:stop, None], out=out)
        return np.clip(y, -self.ceiling, self.ceiling, out=y)  # the clip only catches float rounding

    def apply(self, x: np.ndarray, in_place: bool = False) -> np.ndarray:
        """The scaled track: a new float32 array, or ``x`` itself scaled when ``in_place``."""
        out = x if in_place else np.empty_like(x)
        for start in range(0, len(x), _CHUNK):
            self.piece(x, start, start + _CHUNK, out=out[start:start + _CHUNK])
        return out


def _limiter(x: np.ndarray, sample_rate: int, ceiling: float, gain: float = 1.0, loop: bool = False) -> _Scale:
    """``x`` times ``gain`` through a soft look-ahead limiter: a smooth gain curve that keeps every sample within
    ``ceiling`` (``.apply(x)`` makes it).

    The gain each frame needs is min-filtered over 2W and averaged over W
    (W = 20 ms, zero-phase since we have the whole track): the average of
    values that are all <= the need at the centre frame cannot exceed it, so no
    peak gets through, and the gain moves over tens of ms instead of clipping.
    Channels share one gain so the stereo image does not shift.  ``loop``: the
    track plays again from its start after its end, so the curve is made round
    (its end leads into its start): a loop limited as a track clicked at every
    repeat, the gain at its end not the gain at its start.
    """
    gain = np.float32(gain)
    if len(x) == 0:
        return _Scale(gain, None, ceiling)
    level = _peaks(x)
    level *= gain  # in place, here and below: a frame's float for a volume's score is 600 MB an array
    if level.max() <= ceiling:
        return _Scale(gain, None, ceiling)
    need = np.maximum(level, np.float32(1e-12), out=level)
    np.divide(np.float32(ceiling), need, out=need)
    np.minimum(np.float32(1.0), need, out=need)
    w = max(1, int(_LIMITER_WINDOW_S * sample_rate)) | 1  # odd, so both filters are centred
    if loop:  # each end sees the other beyond it, as the loop plays
        halo = min(len(need), w + w // 2 + 2)
        curve = _gain_curve(np.concatenate([need[len(need) - halo:], need, need[:halo]]), w)[halo:halo + len(need)]
    else:
        curve = _gain_curve(need, w)
    del level, need
    curve *= gain
    return _Scale(gain, np.ascontiguousarray(curve), ceiling)


def _gain_curve(need: np.ndarray, w: int) -> np.ndarray:
    """``need`` min-filtered over 2w - 1 frames, then averaged over w (edges: the nearest frame), made where ``need``
    lies (returned), a piece at a time: scipy.ndimage filters a line through float64 buffers as long as the line (a
    20-minute score at 48 kHz: 1 GB), and a second frame's float of a volume's score is another 400 MB."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    halo = w + w // 2 + 2  # how far a frame's result reaches: (2w - 1) // 2, then w // 2
    before = need[:0].copy()  # the frames just before this piece as they were (the last piece's result is there now)
    for start in range(0, len(need), _CHUNK):
        stop = min(len(need), start + _CHUNK)
        lo, hi = max(0, start - halo), min(len(need), stop + halo)
        line = np.concatenate([before[len(before) - (start - lo):], need[start:hi]])
        part = uniform_filter1d(minimum_filter1d(line, size=2 * w - 1, mode="nearest"), size=w, mode="nearest")
        before = need[max(0, stop - halo):stop].copy()
        need[start:stop] = part[start - lo:stop - lo]
    return need


#: the highest peak a normalised track has, in dBFS, where a player decodes it
CEILING_DB = -1.0
#: MP3, Vorbis and Opus decode to peaks above the encoder's input (up to 0.6 dB measured on builtin tracks: the
#: codec drops what it cannot hear, and the rest no longer adds up to the same peaks), so they are limited this much
#: lower, for what a player decodes to stay under CEILING_DB (as streaming services ask of lossy masters)
LOSSY_CEILING_DB = -2.0
LOSSY_FORMATS = ("mp3", "ogg", "opus")


def ceiling_db(fmt: str) -> float:
    """The highest peak a file of ``fmt`` is made with, in dBFS (lower for lossy formats: see LOSSY_CEILING_DB)."""
    return LOSSY_CEILING_DB if fmt in LOSSY_FORMATS else CEILING_DB


def limit_peaks(audio: np.ndarray, sample_rate: int, peak_ceiling_db: float = CEILING_DB, *, loop: bool = False,
                in_place: bool = False) -> np.ndarray:
    """``audio`` with no sample above ``peak_ceiling_db`` dBFS, its loudness otherwise as it is: for audio normalised
    before that something raised (a loop's fold of two sounds, a lossy format's lower ceiling).  ``loop``: see
    :func:`_limiter`."""
    x = _frames(audio)
    scale = _limiter(x, sample_rate, 10.0 ** (peak_ceiling_db / 20.0), loop=loop)
    if scale.curve is None:
        return audio
    own = (in_place and x.flags.writeable) or not np.may_share_memory(x, np.asarray(audio))
    return _like_input(scale.apply(x, in_place=own), audio)


def normalize_loudness(
    audio: np.ndarray, sample_rate: int, target_lufs: float = -14.0, peak_ceiling_db: float = CEILING_DB, *,
    in_place: bool = False, loop: bool = False
) -> np.ndarray:
    """Bring ``audio`` to ``target_lufs`` integrated loudness, no sample above ``peak_ceiling_db`` dBFS.

    Peaks that the loudness gain pushes over the ceiling go through a soft
    limiter (:func:`_limiter`), not plain gain reduction, so music with a
    high crest factor still reaches the target; the gain is re-measured and
    corrected a few times because limiting lowers loudness a little.  The
    limiter takes at most 6 dB off the music (a very spiky track ends up
    quieter than the target rather than squashed), the gain is capped at
    +30 dB, and silence comes back unchanged.  Returns float32 in the input's
    shape: a new array, or with ``in_place`` (for a caller that has no more use
    for ``audio``: a chapter's score) ``audio`` itself where it is float32 and
    finite.  Each try is measured a piece at a time; only the last is made.
    ``loop``: a seamless loop, limited as one (see :func:`_limiter`).
    """
    x = _frames(audio)
    loudness = _loudness_of(x, sample_rate)  # x is already _frames(audio)
    if not np.isfinite(loudness):
        return _like_input(x.copy(), audio)
    ceiling = 10.0 ** (peak_ceiling_db / 20.0)
    # Limit at most _MAX_LIMIT_DB into the music (its loudest 0.1% of frames may go deeper, so one
    # stray click does not hold the whole track down); past that the track stays below the target.
    loud_frames = float(np.quantile(_peaks(x), 0.999, overwrite_input=True))  # the peaks are a copy already
    max_gain_db = min(_MAX_GAIN_DB, peak_ceiling_db + _MAX_LIMIT_DB - 20.0 * np.log10(max(loud_frames, 1e-9)))
    gain_db = min(target_lufs - loudness, max_gain_db)
    for _ in range(4):  # limiting only ever loses loudness, so these steps approach the target from below
        scale = None  # the last try's curve goes before the next is made
        scale = _limiter(x, sample_rate, ceiling, 10.0 ** (gain_db / 20.0), loop=loop)
        miss = target_lufs - _loudness_of(x, sample_rate, scale)
        if not np.isfinite(miss) or miss < 0.1 or gain_db >= max_gain_db:
            break
        gain_db = min(gain_db + miss, max_gain_db)
    # scaled where it lies when the caller gave it up, or when ``x`` is our own copy (``audio`` was not float32)
    own = (in_place and x.flags.writeable) or not np.may_share_memory(x, np.asarray(audio))
    return _like_input(scale.apply(x, in_place=own), audio)


# ---------------------------------------------------------------- loops


def make_seamless_loop(audio: np.ndarray, sample_rate: int, crossfade_s: float = 1.0) -> np.ndarray:
    """Return audio ``round(crossfade_s * sample_rate)`` frames shorter whose end flows into its start.

    Length contract: a caller that wants a D-second loop generates
    D + crossfade_s seconds and gets exactly ``len(audio) - round(crossfade_s * sr)``
    frames back.  The last C frames (what would follow the loop's final frame)
    are laid over the first C frames: the file starts on the tail, exactly where
    its own last frame left off, and hands over to the real opening with an
    equal-power (cos/sin) fade.  The fade takes half the overlap and sits where
    head and tail are quietest together (RMS searched across the overlap), so
    the hand-over hides between notes when there is a gap.

    Needs at least 2 x C frames.  Mono 1-D input gives 1-D output.
    """
    x = _frames(audio)
    c = int(round(crossfade_s * sample_rate))
    if c <= 0:
        return _like_input(x.copy(), audio)
    n = len(x)
    m = n - c
    if m < c:
        raise ValueError(f"a loop with a {crossfade_s:g} s crossfade needs at least {2 * crossfade_s:g} s of audio")
    head, tail = x[:c].astype(np.float64), x[m:].astype(np.float64)
    fade = max(1, c // 2)
    energy = np.mean(head**2 + tail**2, axis=1)
    window = np.convolve(energy, np.ones(fade), mode="valid")  # energy of each possible fade position
    start = int(np.argmin(window))  # first quietest position; 0 when all are equal
    theta = np.full(c, np.pi / 2)
    theta[:start] = 0.0
    theta[start : start + fade] = np.linspace(0.0, np.pi / 2, fade)
    out = x[:m].copy()
    out[:c] = (tail * np.cos(theta)[:, None] + head * np.sin(theta)[:, None]).astype(np.float32)
    return _like_input(out, audio)


# ---------------------------------------------------------------- formats


def _resolve_format(path: Path, fmt: str | None) -> tuple[str, Path]:
    suffix_fmt = _SUFFIX_FORMAT.get(path.suffix.lower().lstrip("."))
    if fmt is None:
        if suffix_fmt is None:
            raise InputError(
                f"Cannot tell the audio format of '{path.name}'", hint=f"use one of: {', '.join(AUDIO_FORMATS)}"
            )
        return suffix_fmt, path
    fmt = fmt.lower().lstrip(".")
    if fmt not in AUDIO_FORMATS:
        raise InputError(f"Unknown audio format '{fmt}'", hint=f"use one of: {', '.join(AUDIO_FORMATS)}")
    if suffix_fmt is None:
        return fmt, path.with_name(f"{path.name}.{fmt}")
    if suffix_fmt != fmt and not (fmt == "opus" and suffix_fmt == "ogg"):  # Opus in .ogg is legitimate
        raise ValueError(f"file name {path.name} does not match format {fmt}")
    return fmt, path


def _check_available(fmt: str) -> tuple[str, str]:
    import soundfile

    major, subtype = _SNDFILE[fmt]
    if major not in soundfile.available_formats() or subtype not in soundfile.available_subtypes(major):
        raise Manga2MusicError(
            f"This libsndfile cannot write {fmt} (soundfile {soundfile.__version__})",
            hint="pip install -U 'soundfile>=0.13' (its wheels bundle MP3 and Opus), or choose wav or flac",
        )
    return major, subtype


def file_rate(fmt: str, sample_rate: int) -> int:
    """The sample rate a file of ``fmt`` holds audio made at ``sample_rate`` in (see :func:`_encoder_rate`)."""
    allowed = {"opus": _OPUS_RATES, "mp3": _MP3_RATES}.get(fmt.lower().lstrip("."))
    return sample_rate if allowed is None or sample_rate in allowed else 48000


def _encoder_rate(fmt: str, x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """Resample when the encoder refuses the rate.

    Opus only takes 8/12/16/24/48 kHz, so MusicGen's 32 kHz (and 44.1 kHz)
    becomes 48 kHz with ``scipy.signal.resample_poly`` (3/2 resp. 160/147,
    polyphase with a Kaiser anti-alias filter).  MP3 takes the MPEG 1/2/2.5
    rates; anything else goes to 48 kHz too.  Vorbis, FLAC and WAV take any rate.
    """
    if file_rate(fmt, sample_rate) == sample_rate:
        return x, sample_rate
    from scipy.signal import resample_poly

    g = gcd(48000, sample_rate)
    y = resample_poly(x, 48000 // g, sample_rate // g, axis=0)
    frames = int(round(len(x) * 48000 / sample_rate))  # the resampler rounds up: one frame more than the track's
    return y[:frames].astype(np.float32, copy=False), 48000


# ---------------------------------------------------------------- tags


#: the longest a tag's text may be: a 900 kB description made a 2 s MP3 of 1.8 MB (the whole text in its comment)
TAG_MAX_CHARS = 4000


def _clean_tags(tags: dict[str, str] | None) -> dict[str, str]:
    out = {"software": f"manga2music {__version__}"}
    for key, value in (tags or {}).items():
        if not (key and key.isascii() and key.replace("_", "a").isalnum() and key[0].isalpha()):
            raise ValueError(f"tag names are lowercase ASCII words, got {key!r}")
        if value is not None and str(value) != "":
            text = readable(str(value)).replace("\r\n", "\n").replace("\x00", "")
            out[key.lower()] = text if len(text) <= TAG_MAX_CHARS else text[:TAG_MAX_CHARS - 1] + "…"
    return out


def _id3_frames(tags: dict[str, str]) -> list:
    from mutagen.id3 import COMM, TIT2, TSSE, TXXX

    frames = []
    for key, value in tags.items():
        if key == "title":
            frames.append(TIT2(encoding=3, text=[value]))
        elif key == "comment":
            frames.append(COMM(encoding=3, lang="eng", desc="", text=[value]))
        elif key == "software":
            frames.append(TSSE(encoding=3, text=[value]))
        else:
            frames.append(TXXX(encoding=3, desc=key, text=[value]))
    return frames


def _write_tags(buf: BinaryIO, fmt: str, tags: dict[str, str],
                chapters: list[tuple[float, float, str]] | None = None) -> None:
    """Tag the encoded file held in ``buf`` (in memory, or a temporary file: tags are in before it is in place).

    ``chapters`` (start s, end s, title): ID3 chapter frames (CHAP + a top-level CTOC) in WAV/MP3, and the
    ``CHAPTER001=HH:MM:SS.mmm`` / ``CHAPTER001NAME`` Vorbis comments in FLAC, Ogg and Opus.
    """
    buf.seek(0)
    chapters = chapters or []
    if fmt in ("wav", "mp3"):
        from mutagen.id3 import CHAP, CTOC, TIT2, CTOCFlags
        from mutagen.mp3 import MP3
        from mutagen.wave import WAVE

        f = (WAVE if fmt == "wav" else MP3)(buf)  # WAV: an "id3 " chunk, read by most players
        if f.tags is None:
            f.add_tags()
        for frame in _id3_frames(tags):
            f.tags.add(frame)
        if chapters:
            ids = [f"ch{i + 1}" for i in range(len(chapters))]
            f.tags.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=ids,
                            sub_frames=[TIT2(encoding=3, text=["Scenes"])]))
            for cid, (start, end, title) in zip(ids, chapters):
                f.tags.add(CHAP(element_id=cid, start_time=int(round(start * 1000)), end_time=int(round(end * 1000)),
                                sub_frames=[TIT2(encoding=3, text=[readable(title)])]))
        buf.seek(0)
        f.save(buf, v2_version=3)  # v2.3 (UTF-16 text) is what Windows Explorer and older players read
        return
    from mutagen.flac import FLAC
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis

    f = {"flac": FLAC, "ogg": OggVorbis, "opus": OggOpus}[fmt](buf)
    if f.tags is None:
        f.add_tags()
    for key, value in tags.items():
        f.tags[_VORBIS_KEYS.get(key, key.upper())] = [value]  # Vorbis comments are UTF-8
    for i, (start, _end, title) in enumerate(chapters, start=1):
        f.tags[f"CHAPTER{i:03d}"] = [_hms(start)]
        f.tags[f"CHAPTER{i:03d}NAME"] = [readable(title)]
    buf.seek(0)
    f.save(buf)


def read_tags(path: Path) -> dict[str, str]:
    """Text tags of an audio file, lower-case keys: title, comment, model, seed, software, ...

    Works for every format :func:`write_audio` writes; ``{}`` for an untagged file.
    """
    import mutagen
    from mutagen.id3 import ID3

    f = mutagen.File(path)
    if f is None or f.tags is None:
        return {}
    out: dict[str, str] = {}
    if isinstance(f.tags, ID3):
        names = {v: k for k, v in _ID3_FRAMES.items()}
        for frame in f.tags.values():
            if frame.FrameID == "TXXX":
                out[frame.desc.lower()] = str(frame.text[0]) if frame.text else ""
            elif frame.FrameID == "COMM" and frame.desc == "":
                out["comment"] = str(frame.text[0]) if frame.text else ""
            elif frame.FrameID in names:
                out[names[frame.FrameID]] = str(frame.text[0]) if frame.text else ""
        return out
    names = {v: k for k, v in _VORBIS_KEYS.items()}
    for key, values in f.tags.items():
        out[names.get(key.upper(), key.lower())] = values[0] if values else ""
    return out


# ---------------------------------------------------------------- writing


def write_audio(
    path: Path,
    audio: np.ndarray,
    sample_rate: int,
    *,
    fmt: str | None = None,
    tags: dict[str, str] | None = None,
    normalize: bool = True,
) -> Path:
    """Write ``audio`` (float32, (frames, channels) or 1-D mono) as wav/mp3/ogg/flac/opus; return the path.

    ``fmt`` defaults to the file's extension; a name without an audio extension
    gets ``.{fmt}`` appended.  With ``normalize`` the track is brought to
    -14 LUFS, its decoded peaks under -1 dBFS (see LOSSY_CEILING_DB).  Samples are clipped to [-1, 1];
    mono stays mono, stereo stays stereo.  Tags (title, comment, model, seed, plus
    software = "manga2music <version>") go in as ID3 (wav, mp3) or Vorbis
    comments (flac, ogg, opus).  The write is atomic (see :func:`atomic_path`).
    """
    fmt, path = _resolve_format(Path(path), fmt)
    return write_bytes_atomic(path, encode_audio(audio, sample_rate, fmt=fmt, tags=tags, normalize=normalize))


def _hms(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def read_chapters(path: Path) -> list[tuple[float, str]]:
    """(start s, title) of the chapter marks in an audio file (ID3 CHAP frames or CHAPTERnnn comments)."""
    import mutagen
    from mutagen.id3 import ID3

    f = mutagen.File(path)
    if f is None or f.tags is None:
        return []
    if isinstance(f.tags, ID3):
        chaps = [fr for fr in f.tags.values() if fr.FrameID == "CHAP"]
        out = []
        for fr in sorted(chaps, key=lambda c: c.start_time):
            title = next((str(sub.text[0]) for sub in fr.sub_frames.values() if sub.FrameID == "TIT2"), "")
            out.append((fr.start_time / 1000.0, title))
        return out
    out, i = [], 1
    while f"CHAPTER{i:03d}" in f.tags:
        h, m, sec = f.tags[f"CHAPTER{i:03d}"][0].split(":")
        out.append((int(h) * 3600 + int(m) * 60 + float(sec), (f.tags.get(f"CHAPTER{i:03d}NAME") or [""])[0]))
        i += 1
    return out


@contextmanager
def stops_held() -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM that arrive inside the block are held, then handled as it ends.

    soundfile writes to memory through callbacks that C calls back into Python.  An exception raised in one (the
    KeyboardInterrupt of Ctrl-C) is printed as "Exception ignored from cffi callback" and lost, and the stop with it:
    the command went on, or the write failed and took its section with it.  Held, the stop comes a moment later, at
    a point where it unwinds as usual.  Only on the main thread (the only one Python runs signal handlers on)."""
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {signum: signal.signal(signum, lambda number, _: held.append(number))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if held:
            handler = previous[held[0]]
            if callable(handler):
                handler(held[0], None)  # Python's own KeyboardInterrupt, or the command's SIGTERM handler
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), held[0])  # the default action, now that it is back


def as_stored(audio: np.ndarray, sample_rate: int, fmt: str) -> np.ndarray:
    """``audio`` as a lossless (16-bit) file of ``fmt`` holds it: what a later run reading that file back gets."""
    import soundfile

    data = encode_audio(audio, sample_rate, fmt=fmt, normalize=False)
    with stops_held():  # read back through soundfile's callbacks too (see stops_held)
        stored, _ = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return stored


class _KeptError:
    """``out`` as libsndfile's callbacks see it: the first OSError of a write or seek (a full disk) is kept for
    :meth:`check` to raise, instead of escaping from a cffi callback, where it is printed as a traceback and lost
    (libsndfile then goes on, or fails with a vaguer error of its own)."""

    def __init__(self, out: BinaryIO):
        self.out, self.error = out, None

    def _guarded(self, call, failed):
        if self.error is None:
            try:
                return call()
            except OSError as exc:
                self.error = exc
        return failed

    def write(self, data) -> int:
        return self._guarded(lambda: self.out.write(data), 0)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._guarded(lambda: self.out.seek(offset, whence), 0)

    def tell(self) -> int:
        return self._guarded(self.out.tell, 0)

    def read(self, count: int = -1) -> bytes:
        return self._guarded(lambda: self.out.read(count), b"")

    def check(self) -> None:
        if self.error is not None:
            raise self.error


def encode_audio(audio: np.ndarray, sample_rate: int, *, fmt: str, tags: dict[str, str] | None = None,
                 normalize: bool | str = True, chapters: list[tuple[float, float, str]] | None = None,
                 in_place: bool = False, loop: bool = False) -> bytes:
    """The bytes of a tagged wav/mp3/ogg/flac/opus file (see :func:`write_audio`), made in memory.  With
    ``in_place`` the loudness is set in ``audio`` itself (for a caller done with it: saves a copy of the track).
    ``normalize``: True, to -14 LUFS under the format's peak ceiling; ``"peaks"``, audio normalised before whose
    peaks are only kept under the format's ceiling (a lossy file of a normalised take, a loop); False, as it is.
    ``loop``: a seamless loop, limited as one."""
    buf = io.BytesIO()
    write_encoded(audio, sample_rate, buf, fmt=fmt, tags=tags, normalize=normalize, chapters=chapters,
                  in_place=in_place, loop=loop)
    return buf.getvalue()


def write_encoded(audio: np.ndarray, sample_rate: int, out: BinaryIO, *, fmt: str,
                  tags: dict[str, str] | None = None, normalize: bool | str = True,
                  chapters: list[tuple[float, float, str]] | None = None, in_place: bool = False,
                  loop: bool = False) -> None:
    """:func:`encode_audio` into ``out``, an empty file open for reading and writing (``w+b``) or a BytesIO: a
    chapter's score goes straight into its temporary file instead of being held in memory as bytes first (a
    volume's score is hundreds of MB of WAV)."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in AUDIO_FORMATS:
        raise InputError(f"Unknown audio format '{fmt}'", hint=f"use one of: {', '.join(AUDIO_FORMATS)}")
    major, subtype = _check_available(fmt)
    clean_tags = _clean_tags(tags)
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    # resample first, so the peak ceiling holds at the rate the encoder sees
    x, rate = _encoder_rate(fmt, _frames(audio), int(sample_rate))
    ours = in_place or not np.may_share_memory(x, np.asarray(audio))  # a resampled track is ours to change
    if normalize == "peaks":
        x = limit_peaks(x, rate, ceiling_db(fmt), loop=loop, in_place=ours)
    elif normalize:
        x = normalize_loudness(x, rate, peak_ceiling_db=ceiling_db(fmt), in_place=ours, loop=loop)
    data = x[:, 0] if x.shape[1] == 1 else x
    owned = data.flags.writeable and (ours or not np.may_share_memory(x, np.asarray(audio)))
    for attempt in range(_LOSSY_TRIES):
        _encode_samples(data, rate, out, major, subtype)
        if not normalize or fmt not in LOSSY_FORMATS:
            break
        over = _decoded_peak(out) / 10.0 ** (CEILING_DB / 20.0)
        if over <= 1.0 or attempt == _LOSSY_TRIES - 1:
            break
        # the decoder overshot even the lower lossy ceiling (clipped, dense audio: dBs, not tenths): the whole take
        # a little under the ceiling by that much, and encoded again
        factor = np.float32(10.0 ** (-_LOSSY_MARGIN_DB / 20.0) / over)
        data = np.multiply(data, factor, out=data if owned else None)
        owned = True
        out.seek(0)
        out.truncate()
    _write_tags(out, fmt, clean_tags, chapters)
    if major == "OGG":  # compressed: the whole file is a few % of the samples
        out.seek(0)
        steady = steady_ogg_serial(out.read())
        out.seek(0)
        out.write(steady)
        out.truncate()


#: how often a lossy file is encoded again, lower, when what it decodes to overshoots CEILING_DB, and how far under
#: the ceiling the next try aims (a codec's overshoot scales with the take's level, give or take its rounding)
_LOSSY_TRIES = 4
_LOSSY_MARGIN_DB = 0.2


def _encode_samples(data: np.ndarray, rate: int, out: BinaryIO, major: str, subtype: str) -> None:
    """``data`` (frames, or frames x channels) encoded into ``out`` as ``major``/``subtype``, untagged."""
    import soundfile

    from .threads import stop_point

    channels = 1 if data.ndim == 1 else data.shape[1]
    sink = _KeptError(out)
    try:
        # in blocks: libsndfile's Vorbis encoder crashes the whole process when handed more than about a minute at
        # once (and each block is clipped on its own, not a copy of the whole track).  A stop is held only inside
        # each call into libsndfile (see stops_held), and heard between blocks: held for the whole file, a
        # 30-minute MP3 took a minute to stop, and a second Ctrl-C was held too
        with stops_held():
            sound = soundfile.SoundFile(sink, "w", rate, channels, format=major, subtype=subtype)
        try:
            for start in range(0, len(data), WRITE_BLOCK):
                sink.check()
                stop_point()  # a program's beat (its cancel), the web UI's Stop
                block = np.clip(data[start:start + WRITE_BLOCK], -1.0, 1.0)
                if subtype == "PCM_16":  # made integers here: libsndfile rounds floats down for WAV and to the
                    # nearest for FLAC, and one track is to hold the same samples in either.  The scale is the one
                    # files are read back with (a sample n reads as n / 32768), so that a file read and written
                    # again is unchanged
                    block = np.clip(np.round(block * 32768.0), -32768, 32767).astype(np.int16)
                with stops_held():
                    sound.write(block)
        finally:
            with stops_held():
                sound.close()
    except Exception:
        sink.check()  # the file's own error (a full disk), not what libsndfile made of it
        raise
    sink.check()


def _decoded_peak(out: BinaryIO) -> float:
    """The largest absolute sample the encoded file in ``out`` decodes to (as a player decodes it, before it clips
    to its integers), read a block at a time."""
    import soundfile

    from .threads import stop_point

    out.seek(0)
    peak = 0.0
    with stops_held():  # read through soundfile's callbacks (a stop held inside each call, heard between blocks)
        sound = soundfile.SoundFile(_KeptError(out))
    try:
        while True:
            stop_point()
            with stops_held():
                block = sound.read(WRITE_BLOCK, dtype="float32")
            if not len(block):
                return peak
            peak = max(peak, float(np.abs(block).max(initial=0.0)))
    finally:
        with stops_held():
            sound.close()


#: bytes with their bits in reverse order: Ogg's CRC-32 is zlib's on bit-reversed bytes (see :func:`_ogg_crc`)
_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes) -> int:
    """An Ogg page's checksum (CRC-32, polynomial 0x04C11DB7, not reflected, no initial or final XOR), by zlib's
    reflected CRC-32 on the bit-reversed bytes: the same polynomial, read from the other end."""
    import zlib

    reflected = zlib.crc32(page.translate(_BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def steady_ogg_serial(data: bytes) -> bytes:
    """An Ogg file with its stream's serial number drawn from its contents instead of at random (libsndfile's), so
    that the same track encodes to the same bytes; every page's checksum is made again.  A file that is not one
    plain Ogg stream is returned as it is."""
    import hashlib
    import struct

    pages, off = [], 0
    while off < len(data):
        if data[off:off + 4] != b"OggS" or off + 27 > len(data):
            return data
        segments = data[off + 26]
        end = off + 27 + segments + sum(data[off + 27:off + 27 + segments])
        if end > len(data):
            return data
        pages.append((off, end))
        off = end
    if not pages or len({data[a + 14:a + 18] for a, _ in pages}) != 1:  # several streams: leave them be
        return data
    out = bytearray(data)
    for a, _ in pages:
        out[a + 14:a + 18] = b"\0\0\0\0"
        out[a + 22:a + 26] = b"\0\0\0\0"
    serial = hashlib.sha256(out).digest()[:4]
    for a, b in pages:
        out[a + 14:a + 18] = serial
        out[a + 22:a + 26] = struct.pack("<I", _ogg_crc(bytes(out[a:b])))
    return bytes(out)
