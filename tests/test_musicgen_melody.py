"""MusicgenMelodyComposer on a tiny random MusicGen-melody (real transformers classes, built offline)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from manga2music.composers.base import ComposeRequest  # noqa: E402
from manga2music.composers.chroma import melody_chroma  # noqa: E402
from manga2music.composers.musicgen_melody import MusicgenMelodyComposer  # noqa: E402
from tests.tiny_diffusion import as_hub_cache  # noqa: E402
from tests.tiny_musicgen_melody import PREPROCESSOR, build_tiny_musicgen_melody  # noqa: E402

SR = 32000
HUB_ID = "tiny-test/musicgen-melody"


def _tone(freq: float, seconds: float = 3.0, rate: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's matrices are too small to share out: threads only add hand-off waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def composer(tmp_path_factory):
    folder = build_tiny_musicgen_melody(tmp_path_factory.mktemp("tiny_melody") / "model")
    cache = as_hub_cache(folder, tmp_path_factory.mktemp("melody_cache"), HUB_ID)
    mp = pytest.MonkeyPatch()
    mp.setenv("MANGA2MUSIC_CACHE", str(cache))
    mp.setenv("HF_HUB_OFFLINE", "1")
    c = MusicgenMelodyComposer(HUB_ID, {"offline": True, "precision": "fp32"})
    c._load()  # now, by Hub id from this cache (each test's own user dirs come later)
    yield c
    c.close()
    mp.undo()


def _req(seed=1, name="s", duration=0.4, **kw) -> ComposeRequest:
    return ComposeRequest(name, "calm piano at night", duration, seed, **kw)


def test_chroma_names_the_pitch_class_of_a_tone():
    """A (440 Hz) is pitch class 9 counting from C; E flat (311 Hz) is 3: the one-hot follows the note."""
    for freq, pitch_class in ((440.0, 9), (311.13, 3), (261.63, 0)):
        chroma = melody_chroma(_tone(freq), PREPROCESSOR)[0]
        assert chroma.shape == (int(3 * SR) // 4096 + 1, 12)
        assert (chroma.argmax(-1) == pitch_class).float().mean() > 0.9
        assert torch.equal(chroma.sum(-1), torch.ones(len(chroma)))


def test_a_melody_steers_the_music_and_repeats(composer):
    plain = composer.compose([_req()])[0].audio
    a = composer.compose([_req(reference=_tone(440.0), reference_rate=SR)])[0].audio
    again = composer.compose([_req(reference=_tone(440.0), reference_rate=SR)])[0].audio
    other = composer.compose([_req(reference=_tone(311.13), reference_rate=SR)])[0].audio
    assert a.shape == plain.shape == (int(0.4 * SR), 1)
    np.testing.assert_array_equal(a, again)
    assert np.abs(a - plain).max() > 1e-3 and np.abs(a - other).max() > 1e-3


def test_reference_at_another_rate_in_stereo_is_the_same_melody(composer):
    """A 44.1 kHz stereo copy of the 32 kHz tone is resampled and mixed down to the same chroma and music."""
    stereo = np.stack([_tone(440.0, rate=44100)] * 2, axis=1)
    a = composer.compose([_req(reference=_tone(440.0), reference_rate=SR)])[0].audio
    b = composer.compose([_req(reference=stereo, reference_rate=44100)])[0].audio
    np.testing.assert_array_equal(a, b)


def test_different_melodies_never_share_a_batch(composer):
    tracks = composer.compose([_req(1, "a", reference=_tone(440.0), reference_rate=SR),
                               _req(2, "b", reference=_tone(311.13), reference_rate=SR),
                               _req(3, "c", reference=_tone(440.0), reference_rate=SR), _req(4, "d")])
    assert [t.info["batch_size"] for t in tracks] == [2, 1, 2, 1]


@pytest.mark.parametrize("melody", [False, True])
def test_a_tracks_music_does_not_depend_on_the_descriptions_beside_it_in_a_call(composer, melody):
    """"calm piano" composed beside a longer description was padded to its length, and the padding (put after the
    melody's chroma) changed the music: its recorded seed did not give the same take back alone.  Descriptions of
    other token counts now go in calls of their own."""
    reference = dict(reference=_tone(440.0), reference_rate=SR) if melody else {}
    short = ComposeRequest("a", "calm piano", 0.4, 5, **reference)
    long = ComposeRequest("b", "fast action drums, heavy bass and distorted guitars, tense and loud, with sharp "
                               "brass hits", 0.4, 5, **reference)
    beside = composer.compose([short, long])
    alone = composer.compose([short])[0]
    np.testing.assert_array_equal(beside[0].audio, alone.audio)
    assert np.abs(beside[0].audio - beside[1].audio).max() > 1e-3  # the words still make the music
    same = composer.compose([short, ComposeRequest("c", "calm piano", 0.4, 6, **reference)])
    assert [t.info["batch_size"] for t in same] == [2, 2]  # descriptions as long still share a call


def test_plain_musicgen_says_it_ignored_a_reference(tmp_path, monkeypatch):
    from manga2music.composers.musicgen import MusicgenComposer
    from tests.tiny_musicgen import build_tiny_musicgen

    c = MusicgenComposer(str(build_tiny_musicgen(tmp_path / "m")), {"offline": True, "precision": "fp32"})
    track = c.compose([_req(duration=0.2, reference=_tone(440.0), reference_rate=SR)])[0]
    assert any("musicgen-melody" in w for w in track.warnings)
    c.close()


def test_local_melody_folder_routes_to_the_melody_backend(tmp_path):
    from manga2music.registry import resolve

    folder = build_tiny_musicgen_melody(tmp_path / "melody")
    assert resolve(str(folder), "music").backend == "musicgen-melody"
