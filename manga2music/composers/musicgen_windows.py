"""Long MusicGen tracks: windowed continuation on audio codes, and seamless stitching.

MusicGen was trained on 30 s clips.  Longer tracks follow audiocraft's
``extend_stride`` scheme: generate a 30 s window, then again and again take the
last ``window - stride`` seconds (12 s) of audio *codes* as the prompt for the
next window, which adds ``stride`` (18 s) of new music each time.  Codes are
passed straight back to ``generate(decoder_input_ids=...)``: no audio is
re-encoded between windows.

Everything here works on one batch; torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np

WINDOW_S = 30.0  # MusicGen's training clip length
EXTEND_STRIDE_S = 18.0  # audiocraft's default: each new window adds 18 s after a 12 s code prompt
CROSSFADE_S = 0.5  # length of the linear crossfade inside the overlap
EDGE_S = 0.5  # how far the crossfade stays from the window end (EnCodec edge effects reach ~0.1 s)


@dataclass(frozen=True)
class Window:
    """One generate() call: ``prompt`` frames re-used from the track, then ``new`` frames made."""

    start: int  # first frame of this window in the track (where the prompt starts)
    prompt: int
    new: int

    @property
    def end(self) -> int:
        return self.start + self.prompt + self.new


def plan_windows(total_frames: int, frame_rate: int, *, window_s: float = WINDOW_S,
                 stride_s: float = EXTEND_STRIDE_S) -> list[Window]:
    """The windows that make ``total_frames`` frames of codes (the first has no prompt)."""
    window = int(round(window_s * frame_rate))
    stride = int(round(stride_s * frame_rate))
    prompt = window - stride
    if not 0 < stride <= window or prompt * 1.0 / frame_rate < 2 * (EDGE_S + CROSSFADE_S):
        raise ValueError("the continuation prompt must leave room for the crossfade")
    windows = [Window(0, 0, min(total_frames, window))]
    made = windows[0].new
    while made < total_frames:
        new = min(stride, total_frames - made)
        windows.append(Window(made - prompt, prompt, new))
        made += new
    return windows


def steps_for(window: Window, delay: int) -> int:
    """Decoder steps one window takes: its new frames plus the codebook delay."""
    return window.new + delay


class StepWatcher:
    """A ``StoppingCriteria`` that never stops: it keeps the latest token sequence and counts steps.

    ``generate`` hands the stopping criteria the whole sequence after every new
    token, so the last one seen is the raw (still delayed) code sequence that
    ``generate`` then decodes; ``on_step`` moves the progress bar, and
    ``after_last_step`` runs once the ``last_step``-th token is made.
    """

    def __init__(self, on_step: Optional[Callable[[], None]] = None, *, last_step: int = 0,
                 after_last_step: Optional[Callable[[], None]] = None):
        self.sequence = None
        self.on_step = on_step
        self.steps = 0
        self.last_step = last_step
        self.after_last_step = after_last_step  # e.g. free the decoder cache before audio decoding

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        self.sequence = input_ids
        self.steps += 1
        if self.on_step is not None:
            self.on_step()
        if self.after_last_step is not None and self.steps == self.last_step:
            self.after_last_step()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def codes_from_sequence(model, sequence, prompt_codes, batch_size: int):
    """Undo the codebook delay of a raw generated sequence -> codes ``(batch, codebooks, frames)``.

    Uses the model's own delay-pattern helpers, exactly as ``generate`` does
    before decoding, so the prompt frames come back unchanged.
    """
    import torch

    decoder = model.decoder
    pad = model.generation_config.pad_token_id
    start_id = model.generation_config.decoder_start_token_id
    codebooks = decoder.num_codebooks
    first = torch.full((batch_size * codebooks, 1), start_id, dtype=torch.long, device=sequence.device)
    if prompt_codes is not None:
        first = torch.cat([first, prompt_codes.reshape(batch_size * codebooks, -1)], dim=-1)
    _, mask = decoder.build_delay_pattern_mask(first, start_id, max_length=sequence.shape[-1])
    sequence = decoder.apply_delay_pattern_mask(sequence, mask)
    return sequence[sequence != pad].reshape(batch_size, codebooks, -1)


@contextlib.contextmanager
def decode_one_item_at_a_time(model, frames: Optional[list[int]] = None) -> Iterator[None]:
    """While open, ``generate``'s EnCodec decoding takes the batch one item at a time.

    EnCodec's decoder holds several float32 tensors of 64+ channels at the full
    sample rate per item: decoding 4 x 30 s at once peaks at several GB, while
    the decoder steps before it need far less.  One at a time, the peak is one
    item's; the audio is the same (each item is decoded on its own anyway) and
    the time nearly so (decoding is a few percent of a window).
    """
    encoder = model.audio_encoder
    batched = encoder.decode
    wrapped_already = "decode" in vars(encoder)  # someone (a test, a profiler) wraps it on the instance

    def decode(audio_codes, audio_scales=None, *args, **kwargs):
        count = audio_codes.shape[1]  # (frames, batch, codebooks, length)
        if count <= 1 and frames is None:
            return batched(audio_codes, audio_scales, *args, **kwargs)
        outputs = []
        for i in range(count):
            scales = None if audio_scales is None else [
                scale[i:i + 1] if hasattr(scale, "shape") else scale for scale in audio_scales]
            codes = audio_codes[:, i:i + 1]
            if frames is not None:  # an item generated longer than it asked for: decode only its own codes
                codes = codes[..., :frames[i]]
            outputs.append(batched(codes, scales, *args, **kwargs))
        import torch

        longest = max(o.audio_values.shape[-1] for o in outputs)
        values = [torch.nn.functional.pad(o.audio_values, (0, longest - o.audio_values.shape[-1])) for o in outputs]
        return type(outputs[0])(audio_values=torch.cat(values, dim=0))

    encoder.decode = decode
    try:
        yield
    finally:
        if wrapped_already:
            encoder.decode = batched
        else:
            del encoder.decode  # the class's method again


def _fade_into(out: np.ndarray, audio: np.ndarray, at: int, fade_start: int, fade_len: int) -> None:
    """Write ``audio`` (placed at sample ``at``) over ``out`` from ``fade_start`` on, fading in linearly."""
    ramp = np.linspace(0.0, 1.0, fade_len + 2, dtype=np.float32)[1:-1]
    a = fade_start - at
    out[..., fade_start:fade_start + fade_len] *= 1.0 - ramp
    out[..., fade_start:fade_start + fade_len] += audio[..., a:a + fade_len] * ramp
    end = min(out.shape[-1], at + audio.shape[-1])
    out[..., fade_start + fade_len:end] = audio[..., a + fade_len:end - at]


def generate_long(
    model,
    inputs: dict,
    total_samples: int,
    gen_kwargs: dict,
    *,
    on_step: Optional[Callable[[], None]] = None,
    on_window: Optional[Callable[[int, int], None]] = None,
    item_samples: Optional[list[int]] = None,
) -> tuple[np.ndarray, int]:
    """Generate ``total_samples`` of audio per batch item -> (float32 ``(batch, channels, samples)``, windows).

    ``item_samples``: items that asked for less than ``total_samples`` (one window only).  They are generated
    with the batch, and each is decoded from exactly its own frames: its codes are those it would get alone
    (the decoder is causal and each item samples from its own generator), and so is its audio.

    Seams: every window after the first starts by decoding the previous
    window's last 12 s of codes again.  Both windows therefore decode the *same*
    codes over that overlap and agree there, except within ~0.1 s of either
    window's edge (EnCodec's convolution padding at the ends and its LSTM
    starting cold).  A short linear crossfade placed inside the overlap, away
    from both edges, joins two nearly identical signals: no click and no
    level dip.  Decoding all codes at once would be exact as well, but
    EnCodec's decoder needs memory in proportion to the track (gigabytes for
    five minutes), while ``generate`` already decodes each 30 s window.
    """
    from transformers import StoppingCriteriaList

    from .kv_cache import decoder_cache

    audio_cfg = model.config.audio_encoder
    sample_rate = int(audio_cfg.sampling_rate)
    frame_rate = int(audio_cfg.frame_rate)
    hop = sample_rate // frame_rate
    channel_codebooks = model.decoder.num_codebooks // model.decoder.config.audio_channels
    delay = channel_codebooks - 1
    batch_size = int(inputs["input_ids"].shape[0])
    # the delay pattern is only applied from ``2 * codebooks - 1`` positions on: make at least that many
    total_frames = max(math.ceil(total_samples / hop), channel_codebooks)
    windows = plan_windows(total_frames, frame_rate)
    own_frames = None
    if item_samples is not None:
        if len(windows) != 1:
            raise ValueError("items of different lengths share a batch only within one window")
        own_frames = [max(math.ceil(n / hop), channel_codebooks) for n in item_samples]

    out: Optional[np.ndarray] = None
    prompt_codes = None
    for index, window in enumerate(windows):
        if on_window is not None:
            on_window(index, len(windows))
        extra = {} if prompt_codes is None else {
            "decoder_input_ids": prompt_codes.reshape(batch_size * model.decoder.num_codebooks, -1)}
        steps = steps_for(window, delay)
        # the decoder start token, the prompt and the new steps: the cache is sized once for all of them
        with decoder_cache(model, 1 + window.prompt + steps) as cache, decode_one_item_at_a_time(model, own_frames):
            watcher = StepWatcher(on_step, last_step=steps, after_last_step=cache.release)
            audio = model.generate(
                **inputs, **extra, **gen_kwargs, **cache.kwargs,
                max_new_tokens=steps,
                stopping_criteria=StoppingCriteriaList([watcher]),
            )
        audio = audio.float().cpu().numpy()
        if out is None:
            out = np.zeros((batch_size, audio.shape[1], total_frames * hop), dtype=np.float32)
            out[..., : audio.shape[-1]] = audio[..., : out.shape[-1]]
        else:
            overlap_end = window.start + window.prompt  # where the previous window's audio ends
            fade_len = int(CROSSFADE_S * sample_rate)
            fade_start = overlap_end * hop - int(EDGE_S * sample_rate) - fade_len
            _fade_into(out, audio, window.start * hop, fade_start, fade_len)
        if index + 1 < len(windows):
            codes = codes_from_sequence(model, watcher.sequence, prompt_codes, batch_size)
            nxt = windows[index + 1]
            prompt_codes = codes[..., codes.shape[-1] - nxt.prompt:]
    assert out is not None
    return out[..., :total_samples], len(windows)


def encode_prompt(model, audio: np.ndarray):
    """Audio ``(batch, channels, samples)`` at the model's rate -> its codes ``(batch, codebooks, frames)``.

    The model's own EnCodec, channel by channel for stereo checkpoints, with the
    codebooks interleaved left/right as MusicGen's decoder expects them (what
    ``generate(input_values=...)`` does before it continues a prompt).
    """
    import torch

    encoder = model.audio_encoder
    param = next(encoder.parameters())
    x = torch.as_tensor(np.ascontiguousarray(audio, dtype=np.float32)).to(param.device, dtype=param.dtype)
    channels = int(model.decoder.config.audio_channels)
    if x.shape[1] != channels:  # mono audio for a stereo model, or the other way round
        x = x[:, :1].expand(-1, channels, -1) if x.shape[1] == 1 else x.mean(dim=1, keepdim=True)
    per_channel = [encoder.encode(input_values=x[:, c:c + 1], return_dict=True).audio_codes[0]
                   for c in range(channels)]  # each (batch, codebooks, frames)
    if channels == 1:
        return per_channel[0]
    left, right = per_channel
    codes = left.new_empty((left.shape[0], 2 * left.shape[1], left.shape[2]))
    codes[:, ::2], codes[:, 1::2] = left, right
    return codes


def generate_continuation(
    model,
    inputs: dict,
    prompts: np.ndarray,
    new_samples: list[int],
    gen_kwargs: dict,
    *,
    on_step: Optional[Callable[[], None]] = None,
) -> list[np.ndarray]:
    """Carry each prompt on: ``prompts`` ``(batch, channels, samples)`` -> each item's new audio only,
    float32 ``(channels, new_samples[i])``, starting at the sample after its prompt.

    The prompt becomes codes (:func:`encode_prompt`) that ``generate`` takes as the
    start of the sequence, as a later window of :func:`generate_long` takes the
    previous window's codes: the new music follows from them.  ``prompts`` are cut
    at the front to whole code frames, so the prompt's last sample is the last
    sample before the new audio.  Prompt and new audio fit one window.
    """
    from transformers import StoppingCriteriaList

    from .kv_cache import decoder_cache

    audio_cfg = model.config.audio_encoder
    sample_rate, frame_rate = int(audio_cfg.sampling_rate), int(audio_cfg.frame_rate)
    hop = sample_rate // frame_rate
    channel_codebooks = model.decoder.num_codebooks // model.decoder.config.audio_channels
    delay = channel_codebooks - 1
    batch_size = prompts.shape[0]
    prompt_frames = prompts.shape[-1] // hop
    if prompt_frames < channel_codebooks:
        raise ValueError(f"a continuation prompt needs at least {channel_codebooks * hop} samples")
    new_frames = [max(math.ceil(n / hop), 1) for n in new_samples]
    if (prompt_frames + max(new_frames)) / frame_rate > WINDOW_S:
        raise ValueError("a continuation and its prompt must fit one window")
    codes = encode_prompt(model, prompts[..., prompts.shape[-1] - prompt_frames * hop:])[..., :prompt_frames]
    steps = max(new_frames) + delay
    own_frames = [prompt_frames + n for n in new_frames]
    with decoder_cache(model, 1 + prompt_frames + steps) as cache, decode_one_item_at_a_time(model, own_frames):
        watcher = StepWatcher(on_step, last_step=steps, after_last_step=cache.release)
        audio = model.generate(
            **inputs, decoder_input_ids=codes.reshape(batch_size * model.decoder.num_codebooks, -1),
            **gen_kwargs, **cache.kwargs, max_new_tokens=steps, stopping_criteria=StoppingCriteriaList([watcher]),
        )
    audio = audio.float().cpu().numpy()
    start = prompt_frames * hop
    return [audio[i, :, start:start + n] for i, n in enumerate(new_samples)]
