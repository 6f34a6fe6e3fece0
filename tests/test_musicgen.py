"""MusicgenComposer end to end on a tiny random MusicGen (real transformers code, built offline)."""

from __future__ import annotations

import contextlib
import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from manga2music.composers.base import ComposeRequest  # noqa: E402
from manga2music.composers.musicgen import MusicgenComposer  # noqa: E402
from manga2music.errors import BackendError, ModelUnavailableError  # noqa: E402
from tiny_musicgen import build_tiny_musicgen  # noqa: E402

SR = 32000
HUB_ID = "tiny-test/musicgen-tiny"  # an id that exists only in the test's offline cache


def _as_hub_cache(model_dir, cache):
    """Lay a saved model out like the Hugging Face cache (models--owner--name/snapshots/<rev>/)."""
    rev = "0" * 40
    repo = cache / ("models--" + HUB_ID.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(rev)
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    for f in model_dir.iterdir():
        (snap / f.name).symlink_to(f)
    return cache


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's matrices are too small to share out: threads only add hand-off waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return build_tiny_musicgen(tmp_path_factory.mktemp("tiny_musicgen") / "model")


@pytest.fixture(scope="session")
def tiny_cache(tiny_dir, tmp_path_factory):
    return _as_hub_cache(tiny_dir, tmp_path_factory.mktemp("hub_cache"))


@pytest.fixture
def composer(tiny_cache, monkeypatch):
    """A composer that loads the tiny model by Hub id from the offline cache (the user's path)."""
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tiny_cache))
    made = []

    def make(**options) -> MusicgenComposer:
        options.setdefault("precision", "fp32")  # tiny matrices run faster in fp32 than in bf16 on CPUs
        c = MusicgenComposer(HUB_ID, {"offline": True, **options})
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def _req(text="calm piano at night", duration=1.0, seed=1, name="s") -> ComposeRequest:
    return ComposeRequest(name, text, duration, seed)


def test_a_track_leaves_the_programs_own_random_generators_as_they_were(composer):
    """Each MusicGen call seeded Python's, NumPy's and torch's global generators with its track's seed and left them
    so: a program calling the API drew the same numbers after every call.  They are put back as they were; the
    track still repeats for its seed."""
    import random

    import torch

    c = composer()
    first = c.compose([_req(seed=7)])[0].audio

    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    random.seed(123), np.random.seed(123), torch.manual_seed(123)
    expected = draws()
    random.seed(123), np.random.seed(123), torch.manual_seed(123)
    again = c.compose([_req(seed=7)])[0].audio
    assert draws() == expected
    assert np.array_equal(first, again)


def _watch_generate(c: MusicgenComposer, fail_when=None, keep: list | None = None) -> list[int]:
    """Wrap the loaded model's generate: record each call's batch size; optionally raise first.

    With ``keep``, also append ``(prompt_frames, audio)`` of every call to it.
    """
    c._load()
    real = c._model.generate
    calls: list[int] = []

    def generate(*args, **kwargs):
        batch = int(kwargs["input_ids"].shape[0])
        calls.append(batch)
        if fail_when is not None and fail_when(batch):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")  # simulated card
        audio = real(*args, **kwargs)
        if keep is not None:
            prompt = kwargs.get("decoder_input_ids")
            keep.append((0 if prompt is None else int(prompt.shape[-1]), audio.float().cpu().numpy().copy()))
        return audio

    c._model.generate = generate
    return calls


# --- long tracks: exact lengths, windows, seams, progress -------------------------------------------


@pytest.fixture(scope="module")
def long_run(tiny_cache):
    mp = pytest.MonkeyPatch()
    mp.setenv("MANGA2MUSIC_CACHE", str(tiny_cache))
    c = MusicgenComposer(HUB_ID, {"offline": True, "precision": "fp32"})
    calls: list[tuple[int, int, str]] = []
    windows: list[tuple[int, np.ndarray]] = []
    _watch_generate(c, keep=windows)
    reqs = [_req(duration=1.0, name="short"), _req("tense drums", 31.0, 2, "mid"), _req("dark drone", 75.0, 3, "long")]
    tracks = c.compose(reqs, progress=lambda d, t, label: calls.append((d, t, label)))
    c.close()
    mp.undo()
    return tracks, calls, windows


@pytest.mark.slow
def test_exact_sample_counts_and_windows(long_run):
    tracks = long_run[0]
    assert [t.audio.shape for t in tracks] == [(SR, 1), (31 * SR, 1), (75 * SR, 1)]
    assert all(t.audio.dtype == np.float32 and t.sample_rate == SR for t in tracks)
    # 30 s windows, then 18 s more per window after a 12 s prompt
    assert [t.info["windows"] for t in tracks] == [1, 2, 4]
    for t in tracks:
        x = t.audio[:, 0]
        assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
        tail = x[-SR // 2:]
        assert np.sqrt(np.mean(tail**2)) > 0.1 * np.sqrt(np.mean(x**2))  # audio right up to the end


@pytest.mark.slow
def test_no_jump_at_window_seams(long_run):
    x = long_run[0][2].audio[:, 0]
    step = np.abs(np.diff(x))
    seams = [30.0, 48.0, 66.0]  # where each window's audio ends and the next one takes over

    def region(t: float) -> slice:  # 2 s around a time, covering the crossfade before it
        return slice(int((t - 1.5) * SR), int((t + 0.5) * SR))

    # the normal step: the largest sample-to-sample change in a typical 2 s stretch away from seams
    normal = np.median([step[region(t)].max() for t in np.arange(4.0, 74.0, 2.0) if min(abs(t - s) for s in seams) > 3])
    for s in seams:
        jump = step[region(s)].max()
        assert jump <= 2 * normal, f"jump of {jump:.4f} near {s} s (normal largest step {normal:.4f})"
        before, after = x[int((s - 2) * SR):int((s - 1) * SR)], x[int(s * SR):int((s + 1) * SR)]
        assert 0.5 < np.std(after) / np.std(before) < 2.0  # no dip or bump in level either


@pytest.mark.slow
def test_each_window_continues_from_the_previous_windows_codes(long_run):
    windows = long_run[2][-4:]  # the 75 s track's four generate calls
    assert [prompt for prompt, _ in windows] == [0, 600, 600, 600]  # 12 s of codes at 50 frames/s
    hop = SR // 50
    assert [w.shape[-1] // hop for _, w in windows] == [1500, 600 + 900, 600 + 900, 600 + 450]
    for (_, before), (prompt, after) in zip(windows, windows[1:]):
        tail = before[..., -prompt * hop:]
        head = after[..., :prompt * hop]
        inner = slice(SR // 2, prompt * hop - SR // 2)  # EnCodec's edges aside, both decode the same codes
        # equal up to float rounding (GPUs convolve in TF32); a wrong prompt differs by the signal's own size
        assert np.abs(tail[..., inner] - head[..., inner]).max() < 0.01 * np.std(tail)


@pytest.mark.slow
def test_progress_moves_with_decoder_steps_and_reaches_total(long_run):
    calls = long_run[1]
    total = calls[-1][1]
    # 50 steps per second of audio plus a 3-step codebook delay per window:
    # 1 s -> 53; 31 s -> 1503 + 53; 75 s -> 1503 + 903 + 903 + 453
    assert total == 53 + 1556 + 3762
    assert calls[-1][0] == total
    done = [d for d, _, _ in calls]
    assert done == sorted(done)
    assert len(calls) >= total  # one call per decoder step (batches of 1 here)
    assert any("window 4/4" in label for _, _, label in calls)


# --- seeds, batching, memory ----------------------------------------------------------------------


def test_same_seed_same_audio_other_seed_other_audio(composer):
    c = composer()
    a = c.compose([_req(seed=7)])[0].audio
    b = c.compose([_req(seed=7)])[0].audio
    d = c.compose([_req(seed=8)])[0].audio
    assert np.array_equal(a, b)
    assert not np.allclose(a, d, atol=1e-3)
    fresh = composer()  # a second composer (new model load) repeats it too
    assert np.array_equal(fresh.compose([_req(seed=7)])[0].audio, a)


def test_equal_durations_share_one_generate_call(composer):
    c = composer()
    calls = _watch_generate(c)
    texts = ["calm piano", "fast drums and bass", "dark ambient drone"]
    tracks = c.compose([_req(t, 1.0, seed=i, name=f"s{i}") for i, t in enumerate(texts)])
    assert calls == [3]
    assert [t.info["batch_size"] for t in tracks] == [3, 3, 3]
    assert all(t.audio.shape == (SR, 1) for t in tracks)
    assert not np.allclose(tracks[0].audio, tracks[1].audio, atol=1e-3)
    calls.clear()
    mixed = c.compose([_req(duration=1.0), _req(duration=0.5), _req(duration=1.0)])
    assert sorted(calls) == [1, 2]  # one batch per duration
    assert [t.audio.shape[0] for t in mixed] == [SR, SR // 2, SR]


def test_explicit_batch_size_is_respected(composer):
    c = composer(batch_size=2)
    calls = _watch_generate(c)
    c.compose([_req(seed=i) for i in range(5)])
    assert calls == [2, 2, 1]


def test_each_batch_is_handed_over_as_it_is_made_before_a_later_batch_fails(composer):
    """A score keeps each cue as it is made (``made``): a later batch that fails (or a stop) loses only its own."""
    c = composer(batch_size=2)
    calls = _watch_generate(c, fail_when=lambda batch: batch == 1)  # the third track's batch, alone
    made: list = []
    with pytest.raises(Exception):
        c.compose([_req(seed=i, name=f"s{i}") for i in range(3)], made=lambda i, track: made.append((i, track)))
    assert calls[:1] == [2] and [i for i, _ in made] == [0, 1]
    alone = composer().compose([_req(seed=1, name="s1")])[0]
    assert np.array_equal(made[1][1].audio, alone.audio)  # the track of that request, as made alone


def test_out_of_memory_retries_at_half_size(composer):
    c = composer(batch_size=4)
    calls = _watch_generate(c, fail_when=lambda batch: batch > 1)
    progress: list[tuple[int, int, str]] = []
    tracks = c.compose([_req(seed=i) for i in range(3)], progress=lambda *a: progress.append(a))
    assert calls == [3, 1, 1, 1]
    assert [t.audio.shape for t in tracks] == [(SR, 1)] * 3
    assert [t.info["batch_size"] for t in tracks] == [1, 1, 1]
    assert any("out of memory" in label for *_, label in progress)
    assert progress[-1][0] == progress[-1][1]
    calls.clear()
    c.compose([_req(seed=i) for i in range(2)])
    assert calls == [1, 1]  # the lower batch size is remembered


def test_out_of_memory_at_batch_one_is_a_backend_error(composer):
    c = composer(batch_size=2)
    _watch_generate(c, fail_when=lambda batch: True)
    with pytest.raises(BackendError) as err:
        c.compose([_req(seed=1), _req(seed=2)])
    assert "out of memory" in err.value.message and "smaller model" in err.value.hint


# --- text, loop, stereo, settings -----------------------------------------------------------------


def test_long_descriptions_are_cut_with_a_warning(composer):
    c = composer()
    words = "slow piano with soft strings and a warm melancholic evening mood " * 40
    one, two, short = c.compose([_req(words + "ending in loud drums", seed=5),
                                 _req(words + "ending in silence", seed=5), _req("calm piano", seed=5)])
    assert any("cut" in w and "256 tokens" in w for w in one.warnings)
    assert short.warnings == []
    # both were cut before their different endings, so with the same seed they are the same music
    separate = c.compose([_req(words + "ending in loud drums", seed=5)])[0]
    assert np.array_equal(c.compose([_req(words + "ending in silence", seed=5)])[0].audio, separate.audio)


def test_loop_keeps_the_exact_length_and_joins_end_to_start(composer):
    c = composer(loop=True)
    x = c.compose([_req(duration=3.0, seed=4)])[0].audio
    assert x.shape == (3 * SR, 1)
    step = np.abs(np.diff(x[:, 0]))
    assert abs(float(x[-1, 0] - x[0, 0])) <= 1.2 * np.percentile(step, 99.9)
    assert c.settings_key()["loop"] is True


def test_stereo_model_gives_two_different_channels(tmp_path, monkeypatch):
    path = build_tiny_musicgen(tmp_path / "stereo", stereo=True)
    c = MusicgenComposer(str(path), {"offline": True})
    x = c.compose([_req(duration=1.0, seed=3)])[0].audio
    assert x.shape == (SR, 2)
    assert not np.allclose(x[:, 0], x[:, 1], atol=1e-4)
    c.close()


@pytest.fixture(scope="session")
def attentive_dir(tmp_path_factory):
    return build_tiny_musicgen(tmp_path_factory.mktemp("attentive_musicgen") / "model", attentive=True)


def test_a_continuation_carries_the_given_audio_on_from_its_next_sample(attentive_dir):
    """``follows``: the track is only the new music, exactly as long as asked; it depends on the audio it carries
    on (the prompt's codes start the decoder's sequence), and it is new music from its first sample (two seeds
    differ within the first 20 ms: the prompt's own audio is not handed back)."""
    c = MusicgenComposer(str(attentive_dir), {"offline": True, "precision": "fp32"})
    a, b = c.compose([_req(duration=4.0, seed=1), _req("fast action drums, heavy bass", duration=4.0, seed=2)])
    text = "fast action drums, heavy bass"
    same_a, from_b, other_seed, again, shorter = c.compose([
        ComposeRequest("x", text, 2.0, seed=5, follows=a.audio), ComposeRequest("y", text, 2.0, seed=5, follows=b.audio),
        ComposeRequest("z", text, 2.0, seed=6, follows=a.audio), ComposeRequest("w", text, 2.0, seed=5, follows=a.audio),
        ComposeRequest("v", text, 1.5, seed=5, follows=a.audio[-SR:]),
    ])
    assert [t.audio.shape for t in (same_a, from_b, other_seed, again, shorter)] == [(2 * SR, 1)] * 4 + [(SR * 3 // 2, 1)]
    assert np.array_equal(same_a.audio, again.audio)  # same audio, text and seed: the same bridge
    assert np.abs(same_a.audio - from_b.audio).mean() > 0.01  # what it carries on decides what comes next
    assert np.abs(same_a.audio[:640] - other_seed.audio[:640]).mean() > 0.01
    alone = c.compose([ComposeRequest("t", text, 2.0, seed=5)])[0]
    assert np.abs(same_a.audio - alone.audio).mean() > 0.01
    assert same_a.info["continues_s"] == 4.0 and shorter.info["continues_s"] == 1.0
    c.close()


@pytest.mark.parametrize("stereo", [False, True])
def test_a_continuation_is_what_transformers_makes_from_the_same_audio_prompt(tmp_path, stereo):
    """Against transformers' own audio-prompted generation (``generate(input_values=...)``, greedy): the same new
    audio, starting at the sample after the prompt (its codes made by the model's EnCodec, left/right
    interleaved for stereo)."""
    from transformers import MusicgenForConditionalGeneration, MusicgenProcessor

    from manga2music.composers.musicgen_windows import generate_continuation

    path = build_tiny_musicgen(tmp_path / "m", stereo=stereo, attentive=True)
    model = MusicgenForConditionalGeneration.from_pretrained(path).eval()
    processor = MusicgenProcessor.from_pretrained(path)
    channels, hop, frames = (2 if stereo else 1), 640, 40
    prompt = np.random.default_rng(0).normal(0.0, 0.2, (1, channels, 50 * hop)).astype(np.float32)
    inputs = dict(processor(text=["fast action drums"], return_tensors="pt"))
    greedy = {"do_sample": False, "guidance_scale": 1.0}
    with torch.inference_mode():
        ours = generate_continuation(model, inputs, prompt, [frames * hop], dict(greedy))[0]
        theirs = model.generate(**inputs, input_values=torch.from_numpy(prompt), **greedy,
                                max_new_tokens=frames + 3).float().cpu().numpy()[0]
    assert ours.shape == (channels, frames * hop)
    expected = theirs[:, prompt.shape[-1]:prompt.shape[-1] + frames * hop]
    assert expected.shape == ours.shape
    # away from the last frame (decoded here with no frame after it, there with the delay's leftovers)
    np.testing.assert_allclose(ours[:, :-hop], expected[:, :-hop], atol=1e-4)


def test_a_stereo_model_carries_stereo_audio_on(tmp_path):
    path = build_tiny_musicgen(tmp_path / "stereo", stereo=True)
    c = MusicgenComposer(str(path), {"offline": True, "precision": "fp32"})
    before = c.compose([_req(duration=2.0, seed=3)])[0].audio
    after = c.compose([ComposeRequest("x", "calm piano", 1.0, seed=4, follows=before)])[0].audio
    assert after.shape == (SR, 2) and not np.allclose(after[:, 0], after[:, 1], atol=1e-4)
    c.close()


def test_settings_key_tracks_what_changes_the_audio():
    base = MusicgenComposer("facebook/musicgen-small")
    key = base.settings_key()
    for field in ("top_k", "top_p", "temperature", "guidance_scale", "precision", "model_id"):
        assert field in key
    from manga2music.devices import dtype_name, pick_device, pick_dtype

    auto = dtype_name(pick_dtype(pick_device("auto"), "auto"))
    other = "fp32" if auto != "fp32" else "bf16"
    for change in ({"temperature": 0.8}, {"top_k": 50}, {"guidance_scale": 5.0}, {"precision": other}):
        assert MusicgenComposer("facebook/musicgen-small", change).settings_key() != key
    # the precision auto picks here, asked by name: the same music (each composed the other's again, minutes a track)
    assert MusicgenComposer("facebook/musicgen-small", {"precision": auto}).settings_key() == key


def test_precision_and_device_are_recorded(composer):
    from manga2music.devices import pick_device, pick_dtype, dtype_name

    assert composer(precision="fp32").compose([_req()])[0].info["precision"] == "fp32"
    auto = composer(precision="auto").compose([_req()])[0]
    device = pick_device("auto")
    assert auto.info["device"] == device and auto.info["precision"] == dtype_name(pick_dtype(device, "auto"))
    assert auto.audio.dtype == np.float32 and np.isfinite(auto.audio).all()


def test_decoding_on_cuda_leaves_cudnn_attention_out_unless_asked(monkeypatch):
    """cuDNN builds a plan per attention shape, and decoding makes a new shape every step (see decoding_attention)."""
    import torch

    from manga2music.devices import decoding_attention

    cuda = torch.backends.cuda
    flags = lambda: (cuda.cudnn_sdp_enabled(), cuda.flash_sdp_enabled(),  # noqa: E731
                     cuda.mem_efficient_sdp_enabled(), cuda.math_sdp_enabled())
    before = flags()
    cuda.enable_cudnn_sdp(True)  # torch's default, so that the checks below can fail
    try:
        with decoding_attention("cuda:0"):
            assert flags() == (False, *before[1:])
        assert flags() == (True, *before[1:])
        with decoding_attention("cpu"):
            assert flags() == (True, *before[1:])
        monkeypatch.setenv("MANGA2MUSIC_CUDNN_ATTENTION", "1")
        with decoding_attention("cuda"):
            assert flags() == (True, *before[1:])
    finally:
        cuda.enable_cudnn_sdp(before[0])


def test_music_is_generated_inside_the_decoding_attention_context(composer, monkeypatch):
    from manga2music import devices

    entered: list[str] = []
    inside = []

    @contextlib.contextmanager
    def recording(device):
        entered.append(device)
        inside.append(True)
        try:
            yield
        finally:
            inside.pop()

    monkeypatch.setattr(devices, "decoding_attention", recording)
    c = composer()
    c._load()
    real_generate = c._model.generate
    seen: list[bool] = []

    def generate(*args, **kwargs):
        seen.append(bool(inside))
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(c._model, "generate", generate)
    c.compose([_req()])
    assert entered == [c._device] and seen and all(seen)


# --- missing models ---------------------------------------------------------------------------------


def test_offline_missing_known_model_says_size_and_how_to_fetch():
    c = MusicgenComposer("facebook/musicgen-small", {"offline": True})
    for call in (c.preflight, lambda: c.compose([_req()])):
        with pytest.raises(ModelUnavailableError) as err:
            call()
        line = f"{err.value.message} {err.value.hint}"
        assert "musicgen-small" in line and "2.4 GB" in line and "offline" in line
        assert "manga2music models pull musicgen-small" in line
        assert "\n" not in line


def test_offline_missing_unknown_id_names_it():
    c = MusicgenComposer("someone/not-a-model", {"offline": True})
    with pytest.raises(ModelUnavailableError) as err:
        c.compose([_req()])
    assert "someone/not-a-model" in err.value.message and "manga2music models pull" in err.value.hint


def test_audiocraft_backend_says_what_to_install():
    from manga2music.composers.audiocraft import AudiocraftComposer

    try:
        import audiocraft  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - only where audiocraft is installed
        pytest.skip("audiocraft is installed here")
    with pytest.raises(ModelUnavailableError) as err:
        AudiocraftComposer("facebook/musicgen-small").compose([_req()])
    assert "audiocraft" in err.value.message and "pip install" in err.value.hint


# --- devices ---------------------------------------------------------------------------------------


def test_pick_dtype_overrides_and_cpu_choice():
    import platform
    from pathlib import Path

    from manga2music.devices import pick_device, pick_dtype

    assert pick_dtype("cpu", "fp32") is torch.float32
    assert pick_dtype("cpu", "fp16") is torch.float16
    assert pick_dtype("cuda", "bf16") is torch.bfloat16
    # the expectation comes from the CPU's own flags, read here, not from the function that decides
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines()
                      if line.split(":")[0].strip() in ("flags", "Features")), []))
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    native = bool(flags & ({"avx512_bf16", "amx_bf16"} if x86 else {"bf16"}))
    if info:
        assert pick_dtype("cpu", "auto") is (torch.bfloat16 if native else torch.float32)
    assert pick_dtype("mps", "auto") is torch.float32
    if not torch.cuda.is_available():
        assert pick_device("auto") in ("cpu", "mps")
        with pytest.raises(ModelUnavailableError):
            pick_device("cuda")


# --- the preallocated decoder cache -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.extended
def test_preallocated_cache_gives_the_same_music_as_transformers_default(composer, monkeypatch):
    """Two 31 s tracks in one batch (two windows each, the second prompted): same samples either way."""
    from manga2music.composers import kv_cache

    reqs = [_req("tense drums", 31.0, 5, "a"), _req("calm piano", 31.0, 6, "b")]
    at_release: list[list[tuple[int, int, int]]] = []  # per window: (buffer, capacity, positions held) per layer
    held_at_decoding: list[bool] = []
    real_release = kv_cache.DecoderCache.release

    def release(self):
        if self._cache is None:  # the default-cache run below
            return real_release(self)
        at_release.append([(layer._key_buffer.shape[-2], layer.capacity, layer.get_seq_length())
                           for layer in self._cache.self_attention_cache.layers])
        real_release(self)
        self_attention = self._cache.self_attention_cache
        held_at_decoding.append(self_attention.block.tensor is not None
                                or any(layer._key_buffer is not None for layer in self_attention.layers))

    monkeypatch.setattr(kv_cache.DecoderCache, "release", release)
    ours = composer().compose(reqs)
    assert len(at_release) == 2  # one cache per window, each released after its last step
    for layers in at_release:  # sized right up front: no layer had to grow its buffers during the window
        assert layers and all(buffer == capacity >= held > 0 for buffer, capacity, held in layers)
    assert held_at_decoding == [False, False]

    monkeypatch.setattr(kv_cache, "decoder_cache", kv_cache.default_decoder_cache)
    default = composer().compose(reqs)
    for a, b in zip(ours, default):
        assert a.audio.shape == b.audio.shape == (31 * SR, 1)
        np.testing.assert_allclose(a.audio, b.audio, atol=1e-5)
    assert not np.allclose(ours[0].audio, ours[1].audio, atol=1e-3)


def test_preallocated_layer_grows_past_its_plan_and_holds_every_step():
    """A window longer than planned still keeps every position, in order (the buffers double)."""
    from manga2music.composers.kv_cache import preallocated_cache

    cache = preallocated_cache(2, layers=1).self_attention_cache
    steps = [torch.randn(2, 3, 1, 4) for _ in range(5)]
    for step in steps:
        keys, values = cache.update(step, -step, 0)
    expected = torch.cat(steps, dim=-2)
    assert cache.get_seq_length() == 5
    assert torch.equal(keys, expected) and torch.equal(values, -expected)


def test_audio_is_decoded_one_item_at_a_time_with_the_same_result(composer, monkeypatch):
    """EnCodec sees one track at a time (its memory peak is one item's), and the tracks do not change."""
    from manga2music.composers import musicgen_windows

    reqs = [_req("calm piano", 1.0, 1, "a"), _req("fast drums", 1.0, 2, "b"), _req("dark drone", 1.0, 3, "c")]
    c = composer()
    c._load()
    encoder = c._model.audio_encoder
    class_decode = encoder.decode
    seen: list[int] = []

    def decode(audio_codes, *args, **kwargs):  # what EnCodec is asked to decode per call
        seen.append(int(audio_codes.shape[1]))
        return class_decode(audio_codes, *args, **kwargs)

    encoder.decode = decode
    ours = c.compose(reqs)
    assert seen == [1, 1, 1]
    assert encoder.decode is decode  # the wrapper found on the instance is put back afterwards

    monkeypatch.setattr(musicgen_windows, "decode_one_item_at_a_time", lambda model, frames=None: contextlib.nullcontext())
    seen.clear()
    batched = c.compose(reqs)
    assert seen == [3]
    for a, b in zip(ours, batched):
        np.testing.assert_allclose(a.audio, b.audio, atol=1e-5)


# --- records that tell the truth: a track's seed alone reproduces it (issue #13) -----------------------


def test_a_tracks_music_does_not_depend_on_its_batch_mates(composer):
    reqs = [_req("calm piano", 1.0, 11, "a"), _req("fast drums", 1.0, 22, "b"), _req("dark drone", 1.0, 33, "c")]
    batched = composer(batch_size=3).compose(reqs)
    alone = composer(batch_size=1)
    single = alone.compose([reqs[1]])
    assert batched[1].info["batch_size"] == 3 and single[0].info["batch_size"] == 1
    assert batched[1].info["seed"] == 22
    np.testing.assert_allclose(batched[1].audio, single[0].audio, atol=1e-4)
    other = alone.compose([_req("fast drums", 1.0, 23, "b")])  # the seed matters
    assert np.abs(other[0].audio - single[0].audio).max() > 1e-2


def test_batch_size_above_eight_is_honoured_by_the_pipeline(tiny_dir, tmp_path):
    import manga2music
    from manga2music.pipeline import RunConfig

    desc = tmp_path / "desc"
    desc.mkdir()
    for i in range(12):
        (desc / f"s{i:02d}.txt").write_text(f"calm piano number {i}")
    cfg = RunConfig(duration=0.2, seed=5, offline=True, music_options={"batch_size": 12, "precision": "fp32"})
    manifest = manga2music.compose([desc], tmp_path / "out", model=str(tiny_dir), config=cfg)
    assert [e["status"] for e in manifest["sections"]] == ["ok"] * 12
    import json

    record = json.loads((tmp_path / "out" / "s00.json").read_text(encoding="utf-8"))
    assert record["compose"]["takes"][0]["info"]["batch_size"] == 12


def test_the_recorded_and_tagged_model_is_the_name_the_user_typed(tiny_dir, tmp_path, monkeypatch):
    import json

    import manga2music
    from manga2music.audio import read_tags
    from manga2music.pipeline import RunConfig

    cache = tmp_path / "cache"
    rev = "1" * 40
    snap = cache / "models--facebook--musicgen-small" / "snapshots" / rev
    snap.mkdir(parents=True)
    (cache / "models--facebook--musicgen-small" / "refs").mkdir()
    (cache / "models--facebook--musicgen-small" / "refs" / "main").write_text(rev)
    for f in tiny_dir.iterdir():
        (snap / f.name).symlink_to(f)
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(cache))
    cfg = RunConfig(duration=0.2, seed=5, offline=True, music_options={"precision": "fp32"})
    manifest = manga2music.compose([], tmp_path / "out", text="calm piano", model="musicgen-small", config=cfg)
    entry = manifest["sections"][0]
    assert entry["status"] == "ok" and entry["music_model"] == "musicgen-small"
    record = json.loads((tmp_path / "out" / f"{entry['name']}.json").read_text(encoding="utf-8"))
    assert record["compose"]["model"] == "musicgen-small"
    assert record["compose"]["model_id"] == "facebook/musicgen-small"
    assert read_tags(tmp_path / "out" / entry["tracks"][0])["model"] == "musicgen-small"
    # the record names the snapshot that made the music: a Hub model's name alone does not locate its weights
    assert record["compose"]["takes"][0]["revision"] == rev
    newer = "2" * 40  # `models pull` brought a newer snapshot: what was made stays, and its record still names rev
    (cache / "models--facebook--musicgen-small" / "snapshots" / rev).rename(
        cache / "models--facebook--musicgen-small" / "snapshots" / newer)
    (cache / "models--facebook--musicgen-small" / "refs" / "main").write_text(newer)
    again = manga2music.compose([], tmp_path / "out", text="calm piano", model="musicgen-small", config=cfg)
    assert again["sections"][0]["status"] == "skipped"
    assert json.loads((tmp_path / "out" / f"{entry['name']}.json").read_text(encoding="utf-8"))["compose"]["takes"][
        0]["revision"] == rev
    remade = manga2music.compose([], tmp_path / "out", text="calm piano", model="musicgen-small",
                                 config=dataclasses.replace(cfg, force=True))
    assert remade["sections"][0]["status"] == "ok"
    assert json.loads((tmp_path / "out" / f"{entry['name']}.json").read_text(encoding="utf-8"))["compose"]["takes"][
        0]["revision"] == newer


def test_tracks_of_different_lengths_share_a_batch_and_each_is_what_it_would_be_alone(composer):
    """A chapter's cues differ in length: within one window they batch together (generated at the longest),
    and each track is exactly the track its seed makes alone, to its own length."""
    reqs = [_req("calm piano", 1.0, 41, "a"), _req("fast drums", 1.2, 42, "b"), _req("dark drone", 0.95, 43, "c")]
    together = composer(batch_size=3)
    calls = _watch_generate(together)
    batched = together.compose(reqs)
    assert calls == [3]  # one batch for three lengths
    assert [t.audio.shape[0] for t in batched] == [SR, int(1.2 * SR), int(0.95 * SR)]
    alone = composer(batch_size=1)
    for r, t in zip(reqs, batched):
        single = alone.compose([r])[0]
        np.testing.assert_allclose(t.audio, single.audio, atol=1e-4)


def test_length_groups_keep_windows_exact_and_batch_similar_short_lengths():
    from manga2music.composers.musicgen import length_groups

    window = 30 * SR
    items = [(0, 10 * SR, None), (1, 12 * SR, None), (2, 5 * SR, None), (3, 40 * SR, None), (4, 41 * SR, None),
             (5, 11 * SR, "melody")]
    groups = length_groups(items, window)
    assert groups[(12 * SR, None)] == [1, 0]  # within 30 %: one batch, generated at the longest
    assert groups[(5 * SR, None)] == [2]  # too short to share: its own batch
    assert groups[(40 * SR, None)] == [3] and groups[(41 * SR, None)] == [4]  # past one window: exact lengths only
    assert groups[(11 * SR, "melody")] == [5]  # another conditioning key never mixes


def test_a_model_folder_is_recorded_by_its_full_path_and_new_weights_in_it_compose_again(tmp_path, monkeypatch):
    """New weights saved into the same folder were taken for the same model: the rerun kept the old music and no
    record could tell which weights made it.  And `--model ./model` after `--model /abs/model` composed again, and
    recorded "model" as the bare folder name, which reads like a name from the model list."""
    import json

    import manga2music
    from manga2music.pipeline import RunConfig

    folder = build_tiny_musicgen(tmp_path / "lib" / "model", seed=0)
    monkeypatch.chdir(tmp_path / "lib")
    out = tmp_path / "out"
    cfg = dict(duration=0.2, seed=5, offline=True, music_options={"precision": "fp32"})

    def compose(model: str) -> tuple[dict, dict, bytes]:
        entry = manga2music.compose([], out, text="calm piano", model=model, config=RunConfig(**cfg))["sections"][0]
        record = json.loads((out / f"{entry['name']}.json").read_text(encoding="utf-8"))
        return entry, record, (out / f"{entry['name']}.wav").read_bytes()

    first, record, audio = compose(str(folder))
    assert first["status"] == "ok" and record["compose"]["model"] == str(folder.resolve()) == first["music_model"]
    again, _, same = compose("./model")  # the same folder, named another way: nothing to do
    assert again["status"] == "skipped" and same == audio
    build_tiny_musicgen(folder, seed=1)  # other weights, the same folder
    redone, after, new_audio = compose("./model")
    assert redone["status"] == "ok" and new_audio != audio
    assert after["compose"]["settings"]["weights"] != record["compose"]["settings"]["weights"]
    # its config.json edited (another activation: other music from the same weights): it was "skipped", the music
    # of the config before kept
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["decoder"]["activation_function"] = "relu"
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    edited, edited_record, _ = compose("./model")  # (this fixture's codebooks decode any codes alike: the audio
    assert edited["status"] == "ok"  # cannot tell; a helper's real-config build heard the difference)
    assert edited_record["compose"]["settings"]["configs"] != after["compose"]["settings"]["configs"]
    assert edited_record["compose"]["settings"]["weights"] == after["compose"]["settings"]["weights"]
    assert compose("./model")[0]["status"] == "skipped"


def test_a_model_folder_without_weights_or_with_a_weights_file_cut_short_stops_the_run_in_one_line(tiny_dir, tmp_path):
    """A MusicGen folder with no weights was told to `models pull` its path (which says "unknown model"), and one
    whose model.safetensors was cut short (a copy or download stopped midway) failed every section with
    "SafetensorError: Error while deserializing header"; the doctor called both "ok"."""
    import shutil

    import manga2music
    from manga2music.errors import Manga2MusicError
    from manga2music.pipeline import RunConfig
    from output_checks import cli

    empty = tmp_path / "empty"
    shutil.copytree(tiny_dir, empty)
    (empty / "model.safetensors").unlink()
    cut = tmp_path / "cut"
    shutil.copytree(tiny_dir, cut)
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    # without its tokenizer every word of a description became <unk>: the same music for any text, said "ok"; without
    # its feature extractor the line said to `models pull` the folder
    untokenized = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_dir, untokenized)
    for f in untokenized.glob("tokenizer*"):
        f.unlink()
    unprocessed = tmp_path / "no-processor"
    shutil.copytree(tiny_dir, unprocessed)
    for name in ("preprocessor_config.json", "processor_config.json"):
        (unprocessed / name).unlink(missing_ok=True)
    # a `git clone` without git-lfs (pointers in place of the weights), and a sharded folder copied without a shard:
    # the doctor said "ok", then every section failed with a library's error (or was told to `models pull` the path)
    pointer = tmp_path / "lfs-pointer"
    shutil.copytree(tiny_dir, pointer)
    (pointer / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "a" * 64 +
                                               "\nsize 2364427288\n")
    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_dir, sharded)
    (sharded / "model.safetensors").rename(sharded / "model-00001-of-00002.safetensors")
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": {
        "a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}}))
    unjoined = tmp_path / "shards-without-their-index"  # copied without model.safetensors.index.json: every
    shutil.copytree(tiny_dir, unjoined)  # section failed with "no file named model.safetensors", the doctor said ok
    (unjoined / "model.safetensors").rename(unjoined / "model-00001-of-00002.safetensors")
    shutil.copy(unjoined / "model-00001-of-00002.safetensors", unjoined / "model-00002-of-00002.safetensors")
    # a header damaged (its length is garbage: "SafetensorError: header too large" for every section), and a .bin
    # that is no PyTorch file (the library's message said to load it with weights_only=False: "arbitrary code")
    header = tmp_path / "damaged-header"
    shutil.copytree(tiny_dir, header)
    with open(header / "model.safetensors", "r+b") as f:
        f.write(b"\xff\xff\xff\xff\xff\xff\xff\x7f")
    garbage = tmp_path / "garbage-bin"
    shutil.copytree(tiny_dir, garbage)
    (garbage / "model.safetensors").unlink()
    (garbage / "pytorch_model.bin").write_bytes(bytes(range(256)) * 400)
    working = tmp_path / "bin-index-and-pointer-beside"  # what `models pull` of a repo with both formats leaves,
    shutil.copytree(tiny_dir, working)  # or a clone that pulled only the safetensors: the .bin is never loaded
    (working / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": {"a": "pytorch_model-1.bin"}}))
    (working / "pytorch_model.bin").write_text("version https://git-lfs.github.com/spec/v1\nsize 1\n")
    from manga2music.registry import missing_weights, resolve

    assert missing_weights(resolve(str(working), "music")) is None
    for folder, said in ((empty, "no weights in it"), (cut, "model.safetensors is damaged or cut short"),
                         (untokenized, "without its tokenizer (no tokenizer.json or spiece.model)"),
                         (unprocessed, "without its feature extractor (no preprocessor_config.json)"),
                         (pointer, "model.safetensors is a Git LFS pointer, not the weights"),
                         (sharded, "model-00002-of-00002.safetensors is missing (the weights' index lists them)"),
                         (unjoined, "its weights are in shards (model-00001-of-00002.safetensors and "
                                    "model-00002-of-00002.safetensors) but the index that joins them "
                                    "(model.safetensors.index.json) is missing"),
                         (header, "model.safetensors is damaged or cut short"),
                         (garbage, "pytorch_model.bin is damaged (it is no PyTorch file)")):
        with pytest.raises(Manga2MusicError) as caught:
            manga2music.compose([], tmp_path / "out", text="calm piano", model=str(folder),
                                config=RunConfig(duration=0.2, seed=1, offline=True))
        assert said in caught.value.message and "models pull" not in str(caught.value), caught.value
        assert "weights_only" not in str(caught.value)
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.wav"))
        doctor = cli("doctor", "--offline", "--music-model", str(folder))
        assert said in doctor.stdout + doctor.stderr, doctor.stdout + doctor.stderr


@pytest.mark.parametrize("damage", ["module-prefix", "one-more-layer"])
def test_weights_that_do_not_fit_the_config_stop_the_run_instead_of_making_noise_said_ok(tiny_dir, tmp_path, damage):
    """A fine-tune saved from a training wrapper (every key "module."-prefixed), or a config.json with one more layer
    than the weights: transformers made the missing layers random, the track was noise, and the run said "ok"
    (only an 88-line table on stderr told).  It stops in one line that says why, before any track is written."""
    import shutil

    from safetensors.torch import load_file, save_file

    import manga2music
    from manga2music.errors import Manga2MusicError
    from manga2music.pipeline import RunConfig

    folder = tmp_path / "fine-tune"
    shutil.copytree(tiny_dir, folder)
    if damage == "module-prefix":
        weights = load_file(folder / "model.safetensors")
        save_file({f"module.{k}": v.contiguous() for k, v in weights.items()}, folder / "model.safetensors",
                  metadata={"format": "pt"})
    else:
        config = json.loads((folder / "config.json").read_text())
        config["decoder"]["num_hidden_layers"] += 1
        (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(Manga2MusicError) as caught:
        manga2music.compose([], tmp_path / "out", text=["calm piano", "fast drums"], model=str(folder),
                            config=RunConfig(duration=0.2, seed=1, offline=True))
    said = str(caught.value)
    assert "do not fit its config.json" in said and "would be random" in said, said
    assert ("module." in said) == (damage == "module-prefix"), said
    assert not list((tmp_path / "out").glob("*.wav"))


def test_a_folder_here_named_as_a_hub_model_is_not_loaded_in_its_place(tiny_dir, tmp_path, monkeypatch):
    """`--model musicgen-stereo-small` run where ./facebook/musicgen-stereo-small is a folder (a `--local-dir`
    download, a folder of fine-tunes) loaded that folder: a mono track, offline checks passed without the model, and
    the record named the Hub model.  It is one line now, and the folder given as ./NAME is a local folder."""
    import shutil

    import manga2music
    from manga2music.errors import Manga2MusicError
    from manga2music.pipeline import RunConfig
    from output_checks import cli

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_dir, tmp_path / "facebook" / "musicgen-stereo-small")
    with pytest.raises(Manga2MusicError) as caught:
        manga2music.compose([], tmp_path / "out", text="calm piano", model="musicgen-stereo-small",
                            config=RunConfig(duration=0.2, seed=1, offline=True))
    assert "has the name of its Hub repo (facebook/musicgen-stereo-small)" in caught.value.message, caught.value
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.wav"))
    doctor = cli("doctor", "--offline", "--music-model", "musicgen-stereo-small", "--json")
    assert "has the name of its Hub repo" in json.loads(doctor.stdout)["checks"][0]["reason"], doctor.stdout
    made = manga2music.compose([], tmp_path / "out", text="calm piano", model="./facebook/musicgen-stereo-small",
                               config=RunConfig(duration=0.2, seed=1, offline=True))
    (entry,) = made["sections"]
    assert entry["status"] == "ok" and entry["music_model"] == str(tmp_path / "facebook" / "musicgen-stereo-small")


def test_weights_that_do_not_fit_the_config_are_one_line_without_the_librarys_table(tiny_dir, tmp_path):
    """A config.json of another model size beside the weights: transformers' "LOAD REPORT" (a row for every weight
    that did not fit: 96 lines for musicgen-small) came before the one line that says what it means."""
    import shutil

    from output_checks import cli

    folder = tmp_path / "mismatched"
    shutil.copytree(tiny_dir, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["decoder"]["ffn_dim"] = config["decoder"]["ffn_dim"] * 2  # another size of the same layers
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    result = cli("compose", "--text", "calm piano", "-o", tmp_path / "out", "--model", folder, "--offline",
                 "--duration", "0.2", timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "its weights do not fit its config.json" in result.stderr, result.stderr[-2000:]
    assert "LOAD REPORT" not in result.stderr and "MISMATCH" not in result.stderr, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) <= 4, result.stderr


def test_no_transformers_bars_or_config_complaints_on_a_stderr_that_is_not_a_terminal(tiny_dir, tmp_path):
    """`compose ... 2> log` filled the log with transformers' "Loading weights: 100%|████| 161/161" bar and, on
    every run, "[transformers] Model config: pad_token_id must be `None` or an integer within the vocabulary ...
    got 2048" (MusicGen's real config: the token one past the codebook is its pad), which the user can do nothing
    about; the README says the bars stay quiet when stderr is not a terminal."""
    from output_checks import cli

    result = cli("compose", "--text", "calm piano", "-o", tmp_path / "out", "--model", tiny_dir, "--offline",
                 "--duration", "0.2", "--precision", "fp32", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Loading weights" not in result.stderr and "|" not in result.stderr, result.stderr
    assert "must be `None` or an integer within the vocabulary" not in result.stderr, result.stderr


def test_weights_that_do_not_fit_the_config_fail_in_words(tiny_dir, tmp_path):
    """A folder whose config.json is another size's (a copy mixed up) failed each section with transformers'
    "RuntimeError: You set `ignore_mismatched_sizes` to `False`, thus raising an error. For details look at the
    above report!", which names no file and no fix."""
    import json
    import shutil

    import manga2music
    from manga2music.pipeline import RunConfig

    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_dir, mixed)
    config = json.loads((mixed / "config.json").read_text("utf-8"))
    config["decoder"]["ffn_dim"] *= 2
    (mixed / "config.json").write_text(json.dumps(config), "utf-8")
    manifest = manga2music.compose([], tmp_path / "out", text="calm piano", model=str(mixed),
                                   config=RunConfig(duration=0.2, seed=1, offline=True))
    (entry,) = manifest["sections"]
    assert entry["status"] == "failed" and "do not fit its config.json" in entry["message"], entry["message"]
    assert "ignore_mismatched_sizes" not in entry["message"]


def test_weights_that_do_not_fit_the_device_are_one_clear_error(composer, monkeypatch):
    """Moving the loaded weights to the device runs out of memory (here the CPU allocator's real error, for a
    petabyte): the user reads that the model does not fit, and what to pick instead, not torch's message."""
    import torch

    monkeypatch.setattr(torch.nn.Module, "to", lambda self, *a, **kw: torch.empty(2**50, dtype=torch.uint8))
    c = composer()
    with pytest.raises(ModelUnavailableError, match="does not fit in the free memory of cpu") as err:
        c.sample_rate
    assert "smaller model" in err.value.hint and "--device cpu" not in err.value.hint  # it is on the CPU already


def test_a_musicgen_folder_moved_and_given_at_its_new_place_keeps_the_music_it_made(tiny_dir, tmp_path):
    """`mv models/mg models/mg2`, then the new place given: every track was composed again ("composer ... -> ...")
    for the same weights.  The music is kept, and the records name the new place."""
    import json
    import shutil

    import manga2music
    from manga2music.pipeline import RunConfig

    first, moved = tmp_path / "models" / "mg", tmp_path / "models" / "mg2"
    shutil.copytree(tiny_dir, first)  # (copy2: the weights' times kept, as `mv` keeps them)
    out = tmp_path / "out"
    cfg = RunConfig(duration=0.2, seed=5, offline=True, music_options={"precision": "fp32"})
    manga2music.compose([], out, text="calm piano", model=str(first), config=cfg)
    track = next(out.glob("*.wav"))
    made = track.read_bytes()
    first.rename(moved)
    said: list[str] = []
    again = manga2music.compose([], out, text="calm piano", model=str(moved), config=cfg,
                                callbacks=manga2music.Callbacks(log=lambda level, line: said.append(line)))
    assert again["sections"][0]["status"] == "skipped", (again["sections"], said)
    assert track.read_bytes() == made
    assert any(f"moved from {first}" in line for line in said), said
    record = json.loads((out / f"{track.stem}.json").read_text(encoding="utf-8"))
    assert record["compose"]["model"] == str(moved)


def test_a_damaged_file_in_a_local_model_folder_is_said_as_the_folders_not_as_a_download(tiny_dir, tmp_path):
    """A local folder whose processor_config.json is damaged was "not in the model cache and this run is offline"
    (or "cannot load"), with "fetch it with `manga2music models pull /path`": a command that then said "unknown
    model". It is the folder's file, to copy again."""
    import shutil

    from output_checks import cli

    folder = tmp_path / "damaged"
    shutil.copytree(tiny_dir, folder)
    (folder / "processor_config.json").write_text('{"feature_size": ', encoding="utf-8")
    for offline in ([], ["--offline"]):
        result = cli("compose", "--text", "calm piano", "-o", tmp_path / "out", "--model", folder, *offline,
                     "--duration", "0.2", timeout=300)
        said = " ".join(result.stderr.split())
        assert result.returncode != 0 and f"{folder}: its processor_config.json is damaged" in said, said
        assert "models pull" not in said and "model cache" not in said, said
        assert "copy or download it again" in said.lower(), said
    doctor = cli("doctor", "--offline", "--music-model", str(folder), "--json")  # it said "ok"
    assert "its processor_config.json is damaged" in json.loads(doctor.stdout)["checks"][0]["reason"], doctor.stdout


def test_a_plain_rerun_keeps_the_sampling_settings_the_music_was_made_with(tiny_dir, tmp_path):
    """`run LIB --music-model FOLDER --top-k 50`, a chapter added, then the plain `run LIB`: the rerun kept the
    model and the length, but went back to --top-k 250 and made every track again ("the composer's settings
    changed"). The settings the music was made with are kept as the model is, and said where not the default."""
    import shutil

    from output_checks import cli

    from pathlib import Path

    samples = Path(__file__).resolve().parent.parent / "samples"
    lib, out = tmp_path / "lib", tmp_path / "out"
    shutil.copytree(samples / "calm", lib / "calm")
    made = cli("run", lib, "-o", out, "--vision-model", "builtin", "--music-model", tiny_dir, "--top-k", "50",
               "--guidance-scale", "2", "--duration", "0.2", "--device", "cpu", "--offline", timeout=300)
    assert made.returncode == 0, made.stderr
    track = (out / "calm.wav").read_bytes()
    shutil.copytree(samples / "action", lib / "action")  # a chapter added
    again = cli("run", lib, "-o", out, "--device", "cpu", "--offline", timeout=300)
    assert again.returncode == 0, again.stderr
    said = " ".join(again.stderr.split())
    assert "--top-k 50, --guidance-scale 2, as the music there was made" in said, said
    assert "composing again" not in said and (out / "calm.wav").read_bytes() == track
    added = json.loads((out / "action.json").read_text(encoding="utf-8"))["compose"]["settings"]
    assert (added["top_k"], added["guidance_scale"]) == (50, 2.0)
    named = cli("run", lib, "-o", out, "--device", "cpu", "--offline", "--music-model", tiny_dir, timeout=300)
    assert named.returncode == 0 and "composing again" not in named.stderr, named.stderr  # named again (a shell's
    # history): played as its music was, as a vision model named again reads as its words were
    assert "--top-k 50, --guidance-scale 2, as the music there was made" in " ".join(named.stderr.split())
    given = cli("run", lib, "-o", out, "--device", "cpu", "--offline", "--top-k", "250", timeout=300)
    assert given.returncode == 0 and "composing again: the composer's settings changed" in given.stderr  # taken


def test_music_left_as_it_was_after_a_failed_compose_is_named_by_the_model_that_made_it(tiny_dir, tmp_path):
    """A rerun with a model that failed (its config of another size) left the section's music as it was, and the
    manifest and listening page named the failed model as the music's ("music mismatched"), while the record said
    the music was builtin's."""
    import shutil

    import manga2music
    from manga2music.pipeline import RunConfig

    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_dir, mixed)
    config = json.loads((mixed / "config.json").read_text("utf-8"))
    config["decoder"]["ffn_dim"] *= 2
    (mixed / "config.json").write_text(json.dumps(config), "utf-8")
    out = tmp_path / "out"
    manga2music.compose([], out, text="calm piano", model="builtin", config=RunConfig(duration=1, seed=1))
    track = (out / "calm-piano.wav").read_bytes()
    manifest = manga2music.compose([], out, text="calm piano", model=str(mixed),
                                   config=RunConfig(duration=1, seed=1, offline=True))
    (entry,) = manifest["sections"]
    assert entry["status"] == "failed" and entry["tracks"] == ["calm-piano.wav"], entry
    assert entry["music_model"] == "builtin", entry
    assert (out / "calm-piano.wav").read_bytes() == track


def test_the_settings_a_rerun_keeps_are_read_where_each_model_records_them():
    """A diffusion model records its sampling settings under its settings' "options": a rerun kept none of them
    (--guidance-scale 2 went back to 7, and every track was made again)."""
    from manga2music.api import _keep_music_settings
    from manga2music.pipeline import RunConfig

    cfg = RunConfig()
    _keep_music_settings(cfg, [{"model": "sao", "settings": {"model": "sao", "options": {"guidance_scale": 2.0,
                                                                                         "steps": 20}}}])
    assert cfg.kept_music_settings == {"guidance_scale": 2.0, "steps": 20}
    cfg = RunConfig(music_options={"steps": 8})  # given: taken as given
    _keep_music_settings(cfg, [{"model": "sao", "settings": {"options": {"guidance_scale": 2.0, "steps": 20}}}])
    assert cfg.kept_music_settings == {"guidance_scale": 2.0}


def test_commercial_takes_a_local_folder_whose_model_card_allows_it(tiny_dir, tmp_path):
    """`--commercial` refused every local folder ("its licence is not recorded"), a copy of an Apache-2.0 model
    too, so a creator could not use a local model at all.  A folder's licence is read from its model card
    (README.md's `license:`, as the Hub writes it), recorded, and judged as the registry's models are."""
    import shutil

    from typer.testing import CliRunner

    from manga2music.audio import read_tags
    from manga2music.cli.app import app

    folder = tmp_path / "mg"
    shutil.copytree(tiny_dir, folder)

    def compose(name: str):
        return CliRunner().invoke(app, ["compose", "--text", "rain", "--model", str(folder), "--commercial",
                                        "--duration", "0.2", "--offline", "-o", str(tmp_path / name)])

    unknown = compose("unknown")
    assert unknown.exit_code == 2 and "licence is not recorded" in unknown.output, unknown.output
    assert "README.md" in unknown.output and "license:" in unknown.output, unknown.output
    (folder / "README.md").write_text("---\nlicense: cc-by-nc-4.0\ntags:\n- musicgen\n---\n# A model\n",
                                      encoding="utf-8")
    refused = compose("nc")
    assert refused.exit_code == 2 and "cc-by-nc-4.0" in refused.output and not (tmp_path / "nc").exists()
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# A model\n", encoding="utf-8")
    allowed = compose("ok")
    assert allowed.exit_code == 0, allowed.output
    record = json.loads((tmp_path / "ok" / "rain.json").read_text(encoding="utf-8"))
    assert record["compose"]["licence"] == "apache-2.0" and record["compose"]["commercial"] is True
    assert read_tags(tmp_path / "ok" / "rain.wav")["licence"] == "apache-2.0"
    # Stable Audio's card names its licence as `other` + `stable-audio-community`, the registry's
    # stability-ai-community (allowed there); a card of two licences is judged by both
    for card, allowed in (("license: other\nlicense_name: stable-audio-community", True),
                          ("license:\n- apache-2.0\n- mit", True), ("license:\n- apache-2.0\n- cc-by-nc-4.0", False)):
        (folder / "README.md").write_text(f"---\n{card}\n---\n", encoding="utf-8")
        result = compose(f"card-{len(card)}")
        assert (result.exit_code == 0) == allowed, (card, result.output)


def test_takes_of_a_composer_that_samples_nothing_are_said_to_be_the_same_music(tiny_dir, tmp_path):
    """`--temperature 0 --variations 3` wrote three identical takes under three recorded seeds, each "ok" with no
    word: greedy decoding draws nothing from a seed."""
    import soundfile as sf

    from output_checks import cli

    out = tmp_path / "out"
    result = cli("compose", "--text", "calm piano", "-o", out, "--model", tiny_dir, "--offline", "--duration", "0.2",
                 "--seed", "1", "--temperature", "0", "--variations", "2", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    said = " ".join(result.stderr.split())
    assert "at --temperature 0 picks the likeliest sound at each step: every take of a description is the same " \
           "music" in said, said
    first, second = (sf.read(str(p))[0] for p in (out / "calm-piano.wav", out / "calm-piano.take2.wav"))
    assert (first == second).all()  # what the warning says
    sampled = cli("compose", "--text", "calm piano", "-o", tmp_path / "sampled", "--model", tiny_dir, "--offline",
                  "--duration", "0.2", "--seed", "1", "--variations", "2", timeout=300)
    assert sampled.returncode == 0 and "likeliest sound" not in sampled.stderr, sampled.stderr[-2000:]


def test_a_hub_cache_snapshot_folder_is_named_by_its_repo_not_its_commit(tiny_dir, tmp_path):
    """`--music-model ~/.cache/huggingface/hub/models--facebook--musicgen-small/snapshots/<commit>` (the path `hf
    download` prints) was named by its 40-digit commit in every track's tags and on the listening page."""
    import shutil

    from manga2music.listening_page import _shown_model

    snapshot = tmp_path / "hub" / "models--facebook--musicgen-small" / "snapshots" / ("4b2a1d7e" * 5)
    shutil.copytree(tiny_dir, snapshot)
    assert MusicgenComposer(str(snapshot), {"device": "cpu"}).tag_name == "facebook/musicgen-small"
    assert _shown_model(str(snapshot)) == "facebook/musicgen-small"
    assert MusicgenComposer(str(tiny_dir), {"device": "cpu"}).tag_name == tiny_dir.name  # a folder: its name


def test_a_musicgen_folder_with_another_models_tokenizer_is_one_line_before_any_work(tiny_dir, tmp_path):
    """A VLM's tokenizer.json copied into a MusicGen folder: the doctor said "ok", then every section failed with
    a bare "IndexError: index out of range in self" (ids its text encoder has no embedding for)."""
    import shutil

    from output_checks import cli

    folder = tmp_path / "mg_tok"
    shutil.copytree(tiny_dir, folder)
    size = json.loads((folder / "config.json").read_text(encoding="utf-8"))["text_encoder"]["vocab_size"]
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["added_tokens"].append({"id": size + 50, "content": "<|image_pad|>", "single_word": False,
                                      "lstrip": False, "rstrip": False, "normalized": False, "special": True})
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    doctor = cli("doctor", "--offline", "--music-model", folder, "--json", timeout=120)
    (check,) = json.loads(doctor.stdout)["checks"]
    assert not check["ok"] and "tokenizer that fits its text encoder" in check["reason"], check
    made = cli("compose", "--text", "calm piano", "-o", tmp_path / "out", "--model", folder, "--offline",
               "--duration", "0.2", timeout=300)
    assert made.returncode != 0 and "tokenizer that fits its text encoder" in " ".join(made.stderr.split())
    assert "IndexError" not in made.stderr and not (tmp_path / "out").exists(), made.stderr[-1500:]
    assert _tokenizer_fits(tiny_dir)  # the fixture's own tokenizer fits


def _tokenizer_fits(folder) -> bool:
    from manga2music.registry import _tokenizer_past_text_encoder

    return _tokenizer_past_text_encoder(folder) is None
