"""Audio files a user gets: formats, tags, loudness, loops, atomic writes.

Every test writes real files with the real encoders (soundfile's libsndfile)
and reads them back with soundfile, mutagen and pyloudnorm.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import mutagen
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from manga2music import __version__
from manga2music import audio as audio_mod
from manga2music.audio import (
    AUDIO_FORMATS,
    LOSSY_FORMATS,
    make_seamless_loop,
    normalize_loudness,
    read_tags,
    write_audio,
    write_bytes_atomic,
    write_text_atomic,
)
from manga2music.errors import InputError

SR = 32000
LOSSLESS = ("wav", "flac")
# Duration after a round trip.  Measured with soundfile 0.14 / libsndfile 1.2.2: every
# format comes back to the sample (MP3 through its LAME gapless header, Opus through its
# pre-skip and end granule; Opus at 48 kHz is off by < 0.03 ms from rounding the rate
# change).  A decoder that ignored the gapless info would add ~25-50 ms, which fails this.
DURATION_TOLERANCE_S = 0.001
TAGS = {"title": "第3話 夜の屋上", "comment": "静かなピアノ、雨の音", "model": "musicgen-small", "seed": "1234"}


def tone(seconds: float = 2.0, sr: int = SR, freq: float = 440.0, amp: float = 0.1, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    cols = [amp * np.sin(2 * np.pi * freq * (1 + 0.5 * c) * t) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def spiky(seconds: float = 2.0, sr: int = SR, seed: int = 3) -> np.ndarray:
    """A quiet pad with loud clicks: crest factor ~19 dB, so -14 LUFS needs the limiter."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    x = 0.02 * np.sin(2 * np.pi * 110 * t) + 0.05 * rng.standard_normal(n) * np.sin(np.pi * 0.5 * t) ** 2
    for k in range(0, n, sr // 4):
        length = min(2000, n - k)
        x[k : k + length] += 0.2 * np.exp(-np.arange(length) / 200) * rng.standard_normal(length)
    return np.stack([x, 0.7 * x], axis=1).astype(np.float32)


def lufs(x: np.ndarray, sr: int) -> float:
    return pyloudnorm.Meter(sr).integrated_loudness(np.asarray(x, dtype=np.float64))


def peak_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.max(np.abs(x)))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


# ---------------------------------------------------------------- formats and tags


@pytest.mark.parametrize("channels", [1, 2], ids=["mono", "stereo"])
@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_every_format_round_trips_duration_channels_and_tags(tmp_path, fmt, channels):
    path = write_audio(tmp_path / f"part2.{fmt}", tone(channels=channels), SR, tags=TAGS)

    assert path == tmp_path / f"part2.{fmt}"
    data, rate = sf.read(path, always_2d=True)
    assert rate == (48000 if fmt == "opus" else SR)  # Opus only takes 8/12/16/24/48 kHz
    assert data.shape[1] == channels
    assert abs(len(data) / rate - 2.0) <= DURATION_TOLERANCE_S
    assert sf.info(path).format == {"wav": "WAV", "flac": "FLAC", "mp3": "MP3", "ogg": "OGG", "opus": "OGG"}[fmt]
    assert read_tags(path) == {**TAGS, "software": f"manga2music {__version__}"}
    assert leftovers(tmp_path) == []


def test_tags_use_each_formats_own_fields(tmp_path):
    mp3 = mutagen.File(write_audio(tmp_path / "a.mp3", tone(), SR, tags=TAGS))
    assert str(mp3.tags["TIT2"]) == TAGS["title"]
    assert str(mp3.tags["TXXX:model"]) == "musicgen-small"
    assert mp3.tags.version[:2] == (2, 3)
    wav = mutagen.File(write_audio(tmp_path / "a.wav", tone(), SR, tags=TAGS))
    assert str(wav.tags["TXXX:seed"]) == "1234"
    opus = mutagen.File(write_audio(tmp_path / "a.opus", tone(), SR, tags=TAGS))
    assert type(opus).__name__ == "OggOpus"
    assert opus.tags["TITLE"] == [TAGS["title"]] and opus.tags["SEED"] == ["1234"]
    ogg = mutagen.File(write_audio(tmp_path / "a.ogg", tone(), SR, tags=TAGS))
    assert type(ogg).__name__ == "OggVorbis" and ogg.tags["COMMENT"] == [TAGS["comment"]]


def test_tags_are_in_the_file_before_it_appears(tmp_path, monkeypatch):
    seen = {}
    real_replace = os.replace

    def spying_replace(src, dst):
        seen["tags"] = read_tags(Path(src))
        seen["name"] = Path(src).name
        return real_replace(src, dst)

    import manga2music.files as files_mod

    monkeypatch.setattr(files_mod.os, "replace", spying_replace)
    write_audio(tmp_path / "part2.flac", tone(), SR, tags=TAGS)
    assert seen["tags"]["title"] == TAGS["title"]
    assert seen["name"].startswith(".part2.flac.tmp-")


def test_mono_1d_input_stays_mono_and_stereo_stays_stereo(tmp_path):
    mono = write_audio(tmp_path / "m.wav", tone()[:, 0], SR)
    stereo = write_audio(tmp_path / "s.wav", tone(channels=2), SR)
    assert sf.info(mono).channels == 1
    assert sf.info(stereo).channels == 2


def test_format_from_name_or_argument(tmp_path):
    assert write_audio(tmp_path / "take", tone(), SR, fmt="mp3") == tmp_path / "take.mp3"
    assert write_audio(tmp_path / "ch1.v2", tone(), SR, fmt="FLAC").name == "ch1.v2.flac"
    assert sf.info(write_audio(tmp_path / "x.ogg", tone(), SR, fmt="opus")).subtype == "OPUS"
    with pytest.raises(InputError, match="Unknown audio format 'aac'"):
        write_audio(tmp_path / "a.aac", tone(), SR, fmt="aac")
    with pytest.raises(InputError, match="Cannot tell the audio format"):
        write_audio(tmp_path / "a.aac", tone(), SR)
    with pytest.raises(ValueError, match="does not match"):
        write_audio(tmp_path / "a.wav", tone(), SR, fmt="mp3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ch1.v2.flac", "take.mp3", "x.ogg"]


def test_opus_resamples_44k1_to_48k_keeping_pitch_and_length(tmp_path):
    path = write_audio(tmp_path / "a.opus", tone(sr=44100, freq=1000.0, amp=0.3), 44100, normalize=False)
    data, rate = sf.read(path)
    assert rate == 48000
    assert abs(len(data) / rate - 2.0) <= DURATION_TOLERANCE_S
    spectrum = np.abs(np.fft.rfft(data[4800:-4800]))
    assert abs(np.argmax(spectrum) * rate / len(data[4800:-4800]) - 1000.0) < 2.0


@pytest.mark.parametrize("seconds", [7.777, 2.0, 0.123])
def test_a_track_resampled_for_opus_keeps_its_exact_length(tmp_path, seconds):
    """7.777 s at 44.1 kHz became one frame too many at 48 kHz (373297 for 373296): the resampler rounds up."""
    frames = round(seconds * 44100)
    path = write_audio(tmp_path / "a.opus", np.zeros((frames, 2), np.float32) + 0.01, 44100, normalize=False)
    assert sf.info(path).frames == round(frames * 48000 / 44100)


def test_samples_are_clipped_not_wrapped(tmp_path):
    x = np.full((SR, 1), 1.7, dtype=np.float32)
    x[::2] = -1.7
    data, _ = sf.read(write_audio(tmp_path / "loud.wav", x, SR, normalize=False))
    assert np.all(data[1::2] > 0.99) and np.all(data[::2] < -0.99)


# ---------------------------------------------------------------- loudness


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_written_file_is_at_minus_14_lufs_under_the_ceiling(tmp_path, fmt):
    data, rate = sf.read(write_audio(tmp_path / f"a.{fmt}", spiky(), SR))
    assert abs(lufs(data, rate) - (-14.0)) <= 1.0
    # what a player decodes peaks under -1 dBFS in every format: a lossy decoder overshoots the encoder's input
    # (from a -1 dBFS ceiling: mp3 -0.84, ogg -1.14, opus -0.98 dBFS here; a builtin track's opus -0.55), so those
    # are limited to -2 dBFS before encoding
    assert peak_db(data) <= -1.0 + 0.01  # 16-bit rounding only


def distorted(seconds: float = 3.0, sr: int = SR) -> np.ndarray:
    """A hard-clipped, dense take (a distorted guitar, or what an untrained diffusion model makes): most of its
    samples sit at the limiter's ceiling, and a lossy codec's decoder overshoots such audio by dBs, not tenths."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * sr)) / sr
    x = np.sign(np.sin(2 * np.pi * 3000 * t)) + rng.normal(0, 1.0, len(t))
    return np.clip(x, -1, 1).astype(np.float32)[:, None].repeat(2, axis=1)


@pytest.mark.parametrize("fmt", LOSSY_FORMATS)
def test_a_lossy_file_of_clipped_audio_decodes_under_the_ceiling(tmp_path, fmt):
    """The -2 dBFS lossy ceiling is not enough for every take: clipped noise limited to -2 dBFS decoded at up to
    +4 dBFS (a tiny ACE-Step score's loop at -0.32), clipped by every player that decodes to integers.  A lossy
    file's decoded peak is what is kept under -1 dBFS."""
    data, rate = sf.read(write_audio(tmp_path / f"a.{fmt}", distorted(), SR, normalize="peaks"))
    assert peak_db(data) <= -1.0
    assert peak_db(data) > -3.0  # brought down to the ceiling, not to silence
    assert len(data) / rate == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("fmt", LOSSY_FORMATS)
def test_a_lossy_file_normalised_decodes_under_the_ceiling(tmp_path, fmt):
    """A 60 Hz sawtooth brought to -14 LUFS decoded from Opus at over 0 dBFS: its last frames ring once coded.  That
    overshoot does not scale with the level (lowered 4.6 dB, it fell 10 dB), so the file ends up quieter than the
    target: a few dB, not silenced."""
    t = np.arange(3 * SR) / SR
    saw = (2 * ((60 * t) % 1) - 1).astype(np.float32)[:, None].repeat(2, axis=1)
    data, rate = sf.read(write_audio(tmp_path / f"a.{fmt}", saw, SR))
    assert peak_db(data) <= -1.0
    assert lufs(data, rate) > -20.0


def test_limiter_reaches_target_where_plain_gain_could_not():
    x = spiky()
    plain_gain_db = -14.0 - lufs(x, SR)
    assert peak_db(x) + plain_gain_db > 0  # plain gain to -14 LUFS would clip
    y = normalize_loudness(x, SR)
    assert abs(lufs(y, SR) + 14.0) < 0.2
    assert peak_db(y) <= -1.0 + 1e-4
    assert y.shape == x.shape and y.dtype == np.float32


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_no_normalize_keeps_the_level(tmp_path, fmt):
    x = tone(amp=0.05, channels=2)
    data, rate = sf.read(write_audio(tmp_path / f"a.{fmt}", x, SR, normalize=False))
    assert abs(lufs(data, rate) - lufs(x, SR)) < 0.3
    assert lufs(data, rate) < -20  # far from the -14 a normalized file would have


@pytest.mark.parametrize("rate,channels", [(32000, 2), (44100, 1), (48000, 5)])
def test_loudness_measured_a_chunk_at_a_time_is_pyloudnorms(rate, channels):
    """A chapter's score is measured in pieces (pyloudnorm's own K-weighting copies the whole track four to five
    times); the number must be pyloudnorm's, gates and all: a loud part, a quiet part under the relative gate, a
    silence under the absolute one, across many pieces and a length that is no whole number of blocks."""
    rng = np.random.default_rng(channels)
    n = int(41.37 * rate)
    t = np.arange(n) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t)[:, None] + 0.05 * rng.standard_normal((n, channels))
    x[: n // 4] *= 0.02  # 34 dB down: under the relative gate
    x[n // 2: n // 2 + 3 * rate] = 0.0  # silence: under the absolute gate
    x = x.astype(np.float32)
    assert n > 4 * audio_mod._CHUNK
    expected = pyloudnorm.Meter(rate).integrated_loudness(x.astype(np.float64))
    assert abs(audio_mod.measure_loudness(x, rate) - expected) < 1e-6
    for short in (int(0.41 * rate), int(1.03 * rate)):  # one block; a few
        assert abs(audio_mod.measure_loudness(x[-short:], rate)
                   - pyloudnorm.Meter(rate).integrated_loudness(x[-short:].astype(np.float64))) < 1e-6
    assert audio_mod.measure_loudness(np.zeros((2 * rate, channels), np.float32), rate) == float("-inf")


def test_a_long_tracks_limiter_works_in_pieces_and_lets_no_peak_through():
    """The limiter's gain curve is made a piece at a time (scipy's filters take float64 buffers as long as the whole
    line: 1 GB for a 20-minute score at 48 kHz); it must be the curve scipy makes of the whole track, so a click
    just across a piece's edge, as far as the filters reach, is held down like any other."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    rate = 48000
    w = int(0.02 * rate) | 1
    rng = np.random.default_rng(5)
    n = 3 * audio_mod._CHUNK + 12345
    x = (0.05 * rng.standard_normal((n, 2))).astype(np.float32)  # quiet: needs no limiting, but for the clicks
    edges = range(audio_mod._CHUNK, n, audio_mod._CHUNK)
    for edge, offset in zip(edges, (-(w - 5), w + w // 2 - 5, 0)):  # a click just in reach of each piece's edge
        x[edge + offset] = 0.99
    x[0] = x[-1] = -0.98  # and at both ends of the track
    need = np.minimum(1.0, 0.5 / np.maximum(np.abs(2.0 * x).max(axis=1), 1e-12)).astype(np.float32)
    whole = uniform_filter1d(minimum_filter1d(need, size=2 * w - 1, mode="nearest"), size=w, mode="nearest")
    curve = audio_mod._gain_curve(need, w)
    assert np.abs(curve - whole).max() < 1e-6
    assert curve is need  # made where the need was: no second frame's float of a volume's score (400 MB)
    limited = audio_mod._limiter(x, rate, 0.5, gain=2.0).apply(x)
    assert limited.dtype == np.float32 and np.abs(limited).max() <= 0.5
    assert np.abs(limited - 2.0 * x * whole[:, None]).max() < 1e-6  # the whole track's limiter, no clipping


def test_normalizing_in_place_gives_the_same_track_and_leaves_a_callers_track_alone_otherwise():
    """A chapter's score is normalised where it lies (a volume's score is over a GB a copy); the result must be the
    copy's to the bit, and a caller that did not give its track up must get it back unchanged."""
    x = spiky()  # loud peaks: the limiter's curve is used, and the gain is tried more than once
    kept = x.copy()
    copied = normalize_loudness(x, SR)
    assert np.array_equal(x, kept) and not np.shares_memory(copied, x)
    scaled = normalize_loudness(x, SR, in_place=True)
    assert np.shares_memory(scaled, x) and np.array_equal(scaled, copied)
    assert abs(lufs(scaled, SR) + 14.0) < 0.2
    frozen = kept.copy()
    frozen.flags.writeable = False  # a track that cannot be written is copied even when given up
    assert np.array_equal(normalize_loudness(frozen, SR, in_place=True), copied)
    mono = kept[:, 0].copy()
    assert np.shares_memory(normalize_loudness(mono, SR, in_place=True), mono)


def test_silence_and_short_audio_do_not_blow_up():
    silence = np.zeros((SR, 2), dtype=np.float32)
    assert np.array_equal(normalize_loudness(silence, SR), silence)
    assert normalize_loudness(np.zeros(0, dtype=np.float32), SR).shape == (0,)
    # 0.1 s is shorter than pyloudnorm's 0.4 s block: a steady tone gets the same level as a long one
    short = normalize_loudness(tone(0.1)[:, 0], SR)
    long = normalize_loudness(tone(2.0)[:, 0], SR)
    assert short.shape == (3200,)
    assert abs(peak_db(short) - peak_db(long)) < 0.3


def test_near_silence_is_lifted_at_most_30_db():
    rng = np.random.default_rng(0)
    hiss = (1e-3 * rng.standard_normal((2 * SR, 1))).astype(np.float32)
    out = normalize_loudness(hiss, SR)
    assert abs(20 * np.log10(np.std(out) / np.std(hiss)) - 30.0) < 0.01
    assert lufs(out, SR) < -20


def test_silent_file_writes_fine(tmp_path):
    data, _ = sf.read(write_audio(tmp_path / "s.mp3", np.zeros((SR, 1), np.float32), SR))
    assert len(data) == SR and np.max(np.abs(data)) < 1e-3


# ---------------------------------------------------------------- loops


def brown_noise(seconds: float, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.standard_normal((int(seconds * SR), 2)), axis=0)
    walk -= walk.mean(axis=0)
    return (0.5 * walk / np.max(np.abs(walk))).astype(np.float32)


def seam_jump(x: np.ndarray) -> float:
    return float(np.max(np.abs(x[-1] - x[0])))


def typical_step(x: np.ndarray) -> float:
    return float(np.median(np.abs(np.diff(x, axis=0))))


@pytest.mark.parametrize("make", [lambda: tone(3.0, freq=437.3, amp=0.3, channels=2), lambda: brown_noise(3.0)],
                         ids=["tone", "noise"])
def test_loop_has_no_jump_at_the_seam(tmp_path, make):
    x = make()
    naive = x[: len(x) - SR]
    assert seam_jump(naive) > 5 * typical_step(x)  # just cutting the end would click

    loop = make_seamless_loop(x, SR, crossfade_s=1.0)
    assert loop.shape == (len(x) - SR, 2)
    assert seam_jump(loop) <= 3 * typical_step(x)
    twice = np.concatenate([loop, loop])  # no click anywhere when it repeats, fade included
    assert np.max(np.abs(np.diff(twice, axis=0))) <= 1.5 * np.max(np.abs(np.diff(x, axis=0)))

    # and the file a user gets keeps it
    data, _ = sf.read(write_audio(tmp_path / "loop.flac", loop, SR), always_2d=True)
    assert seam_jump(data) <= 3 * typical_step(data)


@pytest.mark.parametrize("crossfade_s", [0.5, 1.0, 0.0123, 0.0])
def test_loop_length_contract(crossfade_s):
    duration = 2.0
    x = tone(duration + crossfade_s)
    loop = make_seamless_loop(x, SR, crossfade_s)
    assert len(loop) == len(x) - round(crossfade_s * SR) == round(duration * SR)
    assert make_seamless_loop(x[:, 0], SR, crossfade_s).ndim == 1


def test_loop_fade_sits_in_the_quiet_gap():
    rng = np.random.default_rng(2)
    x = (0.3 * rng.standard_normal((4 * SR, 1))).astype(np.float32)
    c = SR  # 1 s overlap: the head x[:c] and the tail x[-c:] share a silent gap at 0.40-0.95 s
    gap = slice(int(0.40 * c), int(0.95 * c))
    x[gap] = 0
    x[len(x) - c :][gap] = 0
    loop = make_seamless_loop(x, SR, 1.0)
    tail, head = x[len(x) - c :], x[:c]
    assert np.array_equal(loop[: gap.start], tail[: gap.start])  # still the tail before the gap
    assert np.array_equal(loop[gap.stop : c], head[gap.stop :])  # the real opening after it
    assert np.array_equal(loop[c:], x[c : len(x) - c])


def test_loop_needs_twice_the_crossfade():
    with pytest.raises(ValueError, match="at least 2 s"):
        make_seamless_loop(tone(1.5), SR, 1.0)


# ---------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()], ids=["oserror", "ctrl-c"])
def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch, error):
    import manga2music.files as files_mod

    real_fill = files_mod.fill

    def half_write(tmp, data):  # the disk write dies after writing part of the file
        real_fill(tmp, data[: len(data) // 2])
        assert Path(tmp).parent == tmp_path and Path(tmp).name.startswith(".part2.")
        raise error

    monkeypatch.setattr(files_mod, "fill", half_write)
    with pytest.raises(type(error)):
        write_audio(tmp_path / "part2.wav", tone(), SR)
    assert list(tmp_path.iterdir()) == []

    old = tmp_path / "part2.ogg"
    old.write_bytes(b"the user's earlier take")
    with pytest.raises(type(error)):
        write_audio(old, tone(), SR)
    assert old.read_bytes() == b"the user's earlier take"
    assert [p.name for p in tmp_path.iterdir()] == ["part2.ogg"]


def test_invalid_format_or_tag_writes_nothing(tmp_path):
    with pytest.raises(InputError):
        write_audio(tmp_path / "a.wav", tone(), SR, fmt="wma")
    with pytest.raises(ValueError, match="tag names"):
        write_audio(tmp_path / "a.wav", tone(), SR, tags={"bad key=": "x"})
    assert list(tmp_path.iterdir()) == []


def test_write_text_and_bytes_atomic(tmp_path):
    text_path = write_text_atomic(tmp_path / "new" / "deep" / "part2.txt", "雨の夜\nquiet piano\n")
    assert text_path.read_bytes() == "雨の夜\nquiet piano\n".encode("utf-8")
    midi = bytes(range(256)) * 4
    assert write_bytes_atomic(tmp_path / "part2.mid", midi).read_bytes() == midi
    write_text_atomic(text_path, "replaced")
    assert text_path.read_text(encoding="utf-8") == "replaced"
    assert leftovers(tmp_path) == [] and leftovers(text_path.parent) == []


def test_failure_inside_atomic_path_keeps_the_old_text(tmp_path):
    target = write_text_atomic(tmp_path / "part2.json", '{"old": true}')
    with pytest.raises(RuntimeError):
        with audio_mod.atomic_path(target) as tmp:
            tmp.write_text("{half", encoding="utf-8")
            raise RuntimeError("serialiser crashed")
    assert target.read_text(encoding="utf-8") == '{"old": true}'
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_written_files_follow_the_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_audio(tmp_path / "a.wav", tone(), SR)
        text = write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
    assert text.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("fmt", ["ogg", "opus", "mp3", "flac", "wav"])
def test_long_tracks_encode_in_every_format(fmt):
    """libsndfile's Vorbis encoder crashes the process when handed more than about a minute at once: a chapter
    score is minutes long.  Run in a child process, so a crash is a failed test, not a dead test run."""
    import subprocess
    import sys

    code = (
        "import numpy as np, io, soundfile as sf\n"
        "from manga2music.audio import encode_audio\n"
        "t = np.arange(32000 * 100) / 32000\n"
        "x = (0.3 * np.sin(2 * np.pi * 220 * t)[:, None] * np.ones((1, 2))).astype(np.float32)\n"
        f"data = encode_audio(x, 32000, fmt='{fmt}', normalize=False)\n"
        "y, sr = sf.read(io.BytesIO(data))\n"
        "print(len(y) / sr)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (res.returncode, res.stderr[-500:])
    assert abs(float(res.stdout.strip()) - 100.0) < 0.1


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_stop_while_encoding_stops_the_command_instead_of_failing_the_section(monkeypatch, signum):
    """soundfile writes to memory through callbacks that C calls back into Python: Ctrl-C landing in one was printed
    as "Exception ignored from cffi callback ... KeyboardInterrupt", lost, and libsndfile's failed write came out as
    an AssertionError, so a `score` stopped with Ctrl-C while encoding said "Skipping NAME: AssertionError" and went
    on to the next chapter.  A stop that arrives while encoding now stops the command as soon as the file is made."""
    import io
    import signal

    class Stopped(KeyboardInterrupt):
        pass

    def stop(*_):
        raise Stopped()

    previous = signal.signal(signal.SIGTERM, stop)  # as the command line's own handler does
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, whatever ran before here
    sent = []

    class SignalOnFirstWrite(io.BytesIO):  # the stop arrives inside soundfile's write callback
        def write(self, data):
            if not sent:
                sent.append(True)
                os.kill(os.getpid(), getattr(signal, signum))
            return super().write(data)

    monkeypatch.setattr(audio_mod.io, "BytesIO", SignalOnFirstWrite)
    try:
        with pytest.raises(KeyboardInterrupt):
            audio_mod.encode_audio(np.zeros((32000 * 20, 2), np.float32), 32000, fmt="wav", normalize=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    assert sent


def test_a_stop_while_a_long_track_is_encoded_is_heard_at_the_next_block_and_a_program_hears_its_beat():
    """A stop that arrived while a track was encoded was held until the whole file was made (a 30-minute MP3: 40 to
    70 s, a second Ctrl-C held too; and then the track was thrown away), and a program's callback was not said
    again meanwhile, so its cancel waited as long.  The stop is held only inside each block's call into the encoder,
    and a program's beat is said between blocks."""
    import io
    import signal

    from manga2music.threads import beating

    track = np.zeros((32000 * 40, 2), np.float32)
    writes = []

    class Counted(io.BytesIO):
        def write(self, data):
            writes.append(len(data))
            return super().write(data)

    real = audio_mod.io.BytesIO
    audio_mod.io.BytesIO = Counted
    try:
        beats = []
        with beating(lambda: beats.append(1)):
            audio_mod.encode_audio(track, 32000, fmt="wav", normalize=False)
        whole = len(writes)
        assert len(beats) >= 20  # a block is 32768 frames: 40 s of 32 kHz is 39 of them
        writes.clear()

        class SignalOnFirstWrite(Counted):
            def write(self, data):
                if not writes:
                    os.kill(os.getpid(), signal.SIGINT)
                return super().write(data)

        audio_mod.io.BytesIO = SignalOnFirstWrite
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with pytest.raises(KeyboardInterrupt):
                audio_mod.encode_audio(track, 32000, fmt="wav", normalize=False)
        finally:
            signal.signal(signal.SIGINT, previous)
    finally:
        audio_mod.io.BytesIO = real
    assert whole > 20 and len(writes) < whole / 4, (len(writes), whole)  # it stopped within a block or two


def test_a_stop_while_reading_a_track_back_from_memory_stops_the_command():
    """`score` reads each cue back as its file holds it (audio.as_stored) through soundfile's read callbacks: a
    Ctrl-C landing in one was printed as "Exception ignored from cffi callback" and lost, and the score went on to
    exit 0 (1 of ~30 Ctrl-Cs sent to a real `score`, found by a helper).  It now stops the command."""
    import io
    import signal

    sent = []
    real = io.BytesIO

    class SignalOnFirstRead(real):  # the encode writes into one, the read back reads from the next
        def read(self, *args):
            if not sent:
                sent.append(True)
                os.kill(os.getpid(), signal.SIGINT)
            return super().read(*args)

        def readinto(self, b):
            if not sent:
                sent.append(True)
                os.kill(os.getpid(), signal.SIGINT)
            return super().readinto(b)

    audio = np.zeros((32000 * 5, 2), np.float32)
    encoded = audio_mod.encode_audio(audio, 32000, fmt="wav", normalize=False)

    class Reading:  # io.BytesIO as audio.py sees it: the encoded bytes come back through the signalling reader
        def __call__(self, data=b""):
            return SignalOnFirstRead(data)

    original = audio_mod.encode_audio
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, whatever ran before here
    try:
        audio_mod.io.BytesIO = Reading()
        audio_mod.encode_audio = lambda *a, **k: encoded
        with pytest.raises(KeyboardInterrupt):
            audio_mod.as_stored(audio, 32000, "wav")
    finally:
        audio_mod.io.BytesIO = real
        audio_mod.encode_audio = original
        signal.signal(signal.SIGINT, previous_int)
    assert sent


@pytest.mark.parametrize("fmt", ["ogg", "mp3"])
def test_a_stop_while_a_lossy_file_is_checked_stops_the_command(fmt):
    """A lossy file is decoded once written, to check its peaks (audio._decoded_peak), through soundfile's read
    callbacks: a Ctrl-C landing there was printed as "Exception ignored from cffi callback" and lost, so the stop
    waited for the 30 s grace time to end the process hard.  It now stops the command as the file is checked."""
    import io
    import signal

    sent = []

    class SignalOnFirstReadBack(io.BytesIO):  # written first; the stop arrives as the check reads it back
        def read(self, *args):
            if not sent and self.tell() == 0:
                sent.append(True)
                os.kill(os.getpid(), signal.SIGINT)
            return super().read(*args)

    rng = np.random.default_rng(2)
    track = (0.3 * rng.standard_normal((48000 * 3, 2))).astype(np.float32)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, whatever ran before here
    try:
        with pytest.raises(KeyboardInterrupt):
            audio_mod.write_encoded(track, 48000, SignalOnFirstReadBack(), fmt=fmt)
    finally:
        signal.signal(signal.SIGINT, previous_int)
    assert sent


@pytest.mark.parametrize("fmt", ["ogg", "opus"])
def test_the_same_track_encodes_to_the_same_ogg_bytes_and_each_track_has_its_own_stream_serial(fmt):
    """A rerun with the same --seed made the same audio, but Ogg/Opus files differed byte for byte (libsndfile drew
    each stream's serial number at random), so a checksum could not tell that a take was reproduced.  The serial
    now comes from the audio: the same track gives the same bytes, another track another serial (two files joined
    into one chained Ogg stream stay two streams), and every page's checksum is right (players decode it)."""
    from manga2music.audio import encode_audio

    rng = np.random.default_rng(4)
    track = (0.2 * rng.standard_normal((48000 * 2, 2))).astype(np.float32)
    other = (0.2 * rng.standard_normal((48000 * 2, 2))).astype(np.float32)
    first = encode_audio(track, 48000, fmt=fmt, tags={"title": "calm"})
    assert encode_audio(track, 48000, fmt=fmt, tags={"title": "calm"}) == first
    assert encode_audio(other, 48000, fmt=fmt, tags={"title": "calm"})[14:18] != first[14:18]
    decoded, rate = sf.read(io.BytesIO(first), dtype="float32", always_2d=True)  # libsndfile checks every page's CRC
    assert rate == 48000 and abs(len(decoded) - len(track)) <= 960
    assert mutagen.File(io.BytesIO(first))["title"] == ["calm"]  # mutagen reads the tags (and checks the pages)


def test_wav_and_flac_of_one_track_hold_the_same_samples():
    """The same seed gave WAV and FLAC files whose samples differed by 1 on half of them: libsndfile turns floats
    into 16-bit integers one way for WAV and another for FLAC.  A lossless format is the same audio in either."""
    import io

    from manga2music.audio import encode_audio

    rng = np.random.default_rng(3)
    track = (0.4 * rng.standard_normal((32000, 2))).astype(np.float32)
    decoded = [sf.read(io.BytesIO(encode_audio(track, 32000, fmt=fmt, normalize=False)), dtype="int16")[0]
               for fmt in ("wav", "flac")]
    assert np.array_equal(decoded[0], decoded[1])
    expected = np.clip(np.round(track.astype(np.float64) * 32768), -32768, 32767)  # to the nearest, at the scale
    assert np.array_equal(decoded[0], expected.astype(np.int16))  # files are read back with (n / 32768)
    again = sf.read(io.BytesIO(encode_audio(decoded[0] / 32768.0, 32000, fmt="wav", normalize=False)),
                    dtype="int16")[0]
    assert np.array_equal(again, decoded[0])  # a file read and written again is unchanged


@pytest.mark.parametrize("fmt", ["mp3", "flac", "ogg"])
def test_a_huge_description_does_not_make_a_huge_file(fmt):
    """A 900 kB description made a 2 s MP3 of 1.8 MB: the whole text went into its comment tag, CRLFs and NULs
    included."""
    from manga2music.audio import TAG_MAX_CHARS, encode_audio

    track = np.zeros((64000, 2), dtype=np.float32)
    small = len(encode_audio(track, 32000, fmt=fmt, tags={"comment": "calm piano"}))
    data = encode_audio(track, 32000, fmt=fmt, tags={"comment": "slow piano\r\n\x00" * 60_000})
    assert len(data) < small + 3 * TAG_MAX_CHARS
    comment = mutagen.File(io.BytesIO(data)).tags
    text = str(comment["COMM::eng"] if fmt == "mp3" else comment["comment"][0])
    assert text.endswith("…") and "\r" not in text and "\x00" not in text and text.startswith("slow piano\nslow")


# ---------------------------------------------------------------- written straight into a file


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_a_track_written_into_a_file_is_the_same_file_as_encoded_in_memory(tmp_path, fmt):
    """A chapter's score is encoded straight into its temporary file (write_encoded): byte for byte what
    encode_audio makes in memory, tags and chapter marks included."""
    from manga2music.audio import encode_audio, write_encoded

    x = tone(3.0, channels=2)
    marks = [(0.0, 1.5, "scene 1"), (1.5, 3.0, "scene 2")]
    in_memory = encode_audio(x, SR, fmt=fmt, tags=TAGS, chapters=marks)
    with open(tmp_path / f"score.{fmt}", "w+b") as fh:
        write_encoded(x.copy(), SR, fh, fmt=fmt, tags=TAGS, chapters=marks, in_place=True)
    assert (tmp_path / f"score.{fmt}").read_bytes() == in_memory
    assert read_tags(tmp_path / f"score.{fmt}")["title"] == TAGS["title"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_a_full_disk_under_the_encoder_is_raised_as_the_disk_error_it_is(fmt, capfd):
    """libsndfile writes through Python callbacks: an OSError raised in one was printed by cffi as a traceback and
    lost, leaving the encoder's own vaguer error.  The disk's error is what the caller gets (as a full disk it stops
    the run with one line), and nothing is printed."""
    import errno

    from manga2music.audio import write_encoded

    with pytest.raises(OSError) as caught, open("/dev/full", "w+b") as fh:
        write_encoded(tone(5.0, channels=2), SR, fh, fmt=fmt, normalize=False)
    assert caught.value.errno == errno.ENOSPC
    assert capfd.readouterr().err == ""
