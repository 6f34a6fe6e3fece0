"""MusicGen through transformers: text -> music, any length, in batches.

``MusicgenComposer("facebook/musicgen-small", options)`` loads the model once,
on the first ``compose()``, in the precision ``devices.pick_dtype`` chooses,
and reuses it for every batch.  ``model_id`` is a Hub id or a local folder
(anything ``from_pretrained`` accepts).

Reproducibility: every track draws its codes from its own random generator,
seeded with its request's seed (:mod:`manga2music.composers.sampling`), so a
track does not depend on which other tracks share its batch: its recorded seed,
text, length and settings make it again on the same device and precision.
Batched matrix products may round differently from unbatched ones in the last
bits, which can flip a sampled code: on this CPU alone equals batched (tested),
on an H200 the same tests failed (benchmarks/results/gpu-h200-2026-11-29.md).
The record says which device, batch size and precision made each track.

A little over 400 lines: loading, memory-sized batches, windows and continuations all act on the one loaded
model and its settings; the window and cache mechanics already live in ``musicgen_windows`` and ``kv_cache``.
"""

from __future__ import annotations

import os
import random
from typing import Optional

from pydantic import Field

from .. import settings
from ..devices import load_failure, loading_onto, refuse_random_layers, release_memory
from ..errors import BackendError, InputError, ModelUnavailableError
from ..options import BackendOptions, TorchOptions
from ..progress import ProgressFn, report
from ..quiet import load_report_held
from .base import LOOP_CROSSFADE_S, Composer, ComposeRequest, MadeFn, Track, loop_crossfade, unknown_words_warning
from .batching import batch_size, in_batches

MAX_TEXT_TOKENS = 256  # MusicGen's T5 conditioner never saw longer descriptions
WINDOWING = "extend-stride-18s-v1"  # change when the windowing changes the audio
MAX_BATCH = {"cpu": 8, "mps": 8, "cuda": 32}


def unavailable_error(model_id: str, exc: BaseException, offline: bool) -> ModelUnavailableError:
    """One line naming the model, its download size and how to get it."""
    from ..registry import find_spec

    spec = find_spec(model_id, "music")
    if spec is not None and spec.about == "local folder" or spec is None and os.path.isdir(os.path.expanduser(
            model_id)):  # not fetched: a folder the user gave, part of it missing or damaged (find_spec knows only
        # the registry's models: a damaged folder was "not in the model cache", to be fetched with `models pull`)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return ModelUnavailableError(f"cannot load the model folder {model_id}: {reason}",
                                     hint="copy or download the whole model folder again")
    name = spec.name if spec else model_id
    what = f"{spec.name} ({spec.model_id}, {spec.download_gb:g} GB download)" if spec else model_id
    hint = (f"fetch it with `manga2music models pull {name}`, or run once with network"
            + (" (without --offline / HF_HUB_OFFLINE=1)." if offline else "."))
    if offline:
        return ModelUnavailableError(f"{what} is not in the model cache and this run is offline", hint=hint)
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ModelUnavailableError(f"cannot load {what}: {reason}", hint=hint)


class StepProgress:
    """Decoder steps done out of all the requests' steps; one step of a batch of N counts N."""

    def __init__(self, progress: ProgressFn | None, total: int):
        self.progress, self.total = progress, total
        self.done, self.width, self.label = 0, 1, ""

    def step(self) -> None:
        self.done += self.width
        report(self.progress, self.done, self.total, self.label)

    def rewind(self, done: int, label: str) -> None:
        self.done = done
        report(self.progress, self.done, self.total, label)

    def finish(self) -> None:
        report(self.progress, self.total, self.total, "done")


class SamplingOptions(BackendOptions):
    """MusicGen's sampling, with the original audiocraft defaults."""

    top_k: int = Field(250, ge=0, le=2048)
    top_p: float = Field(0.0, ge=0.0, le=1.0)  # > 0: nucleus sampling instead of top-k
    temperature: float = Field(1.0, ge=0.0, le=10.0)  # 0: greedy
    guidance_scale: float = Field(3.0, ge=1.0, le=50.0)  # classifier-free guidance; 1: none (below 1 every
    # section failed in transformers' generate with "IndexError: index out of range in self")


def _hush_codebook_token_ids() -> None:
    """Leave out transformers' "Model config: pad_token_id must be `None` or an integer within the vocabulary ...
    got 2048" on every load: MusicGen's own config gives its pad, bos and decoder-start tokens the id one past the
    codebook (2048), as it means to; the user can do nothing about it.  Its other warnings stay."""
    import logging

    class CodebookTokenIds(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            text = record.getMessage()
            return not ("token_id must be `None` or an integer within the vocabulary" in text and "got 2048" in text)

    logger = logging.getLogger("transformers.configuration_utils")
    if not any(type(f).__name__ == "CodebookTokenIds" for f in logger.filters):
        logger.addFilter(CodebookTokenIds())


class MusicgenComposer(Composer):
    """Text-to-music with any MusicGen checkpoint (mono or stereo) via transformers."""

    backend = "musicgen"
    #: 10 minutes: windowed continuation makes any length, but on a CPU 10 minutes already take an hour or more
    max_duration = 600.0
    model_class = "MusicgenForConditionalGeneration"  # the transformers class that loads the checkpoint
    continues = True  # carries given audio on from its codes (ComposeRequest.follows)

    class Options(Composer.Options, SamplingOptions, TorchOptions):
        batch_size: Optional[int] = Field(None, ge=1, le=1024)  # None: from free memory

    def __init__(self, spec, options=None):
        super().__init__(spec, options)
        self._model = None
        self._processor = None
        self._device: Optional[str] = None
        self._dtype = None
        self._batch_cap: Optional[int] = None  # lowered after an out-of-memory retry

    # --- loading ---------------------------------------------------------------------------

    def preflight(self) -> None:
        """Check the device now; offline, check the model is in the cache (config only, no weights loaded)."""
        from ..devices import pick_device

        pick_device(self.options.device)
        if self.options.no_network and self._model is None:
            from transformers import AutoConfig

            _hush_codebook_token_ids()

            try:
                AutoConfig.from_pretrained(self.model_id, cache_dir=settings.model_cache_dir(), local_files_only=True)
            except (OSError, ValueError) as exc:
                raise unavailable_error(self.model_id, exc, True) from exc

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        import transformers

        from ..devices import pick_device, pick_dtype

        self._device = pick_device(self.options.device)
        self._dtype = pick_dtype(self._device, self.options.precision)
        from ..cache import load_cache_first

        _hush_codebook_token_ids()

        def load(local: bool):
            common = {"cache_dir": settings.model_cache_dir(), "local_files_only": local}
            return self._load_processor(common), *getattr(transformers, self.model_class).from_pretrained(
                self.model_id, dtype=self._dtype, output_loading_info=True, **common,
                **({"device_map": self._device} if self._device != "cpu" else {}),
            )

        with loading_onto(self._device, self.model_name):
            try:
                with load_report_held():  # dropped when the load fails: the line below says what it means
                    processor, model, info = load_cache_first(self.model_id, self.options.no_network, load,
                                                              refused=getattr(self, "download_refused", None))
                    refuse_random_layers(self.model_name, info)
            except OSError as exc:  # LocalEntryNotFoundError, RepositoryNotFoundError, no network...
                raise unavailable_error(self.model_id, exc, self.options.no_network) from exc
            except Exception as exc:  # a config.json of another size, a damaged weight file: named, with the fix
                error = load_failure(self.model_name, exc)
                if error is exc:
                    raise
                raise error from None
            # EnCodec only turns codes into audio once per window: keep it in float32, because
            # bf16 would leave a noise floor near -48 dB in quiet passages.
            model.audio_encoder.to(torch.float32)
            self._model = model.to(self._device).eval()
            for module in model.audio_encoder.modules():
                if isinstance(module, torch.nn.LSTM):
                    module.flatten_parameters()  # the dtype change split cuDNN's weight buffer: join it again
        self._processor = processor

    def _load_processor(self, common: dict):
        """The checkpoint's processor (tokenizer + feature extractor); ``common`` holds cache_dir and friends."""
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(self.model_id, **common)

    @property
    def sample_rate(self) -> int:
        self._load()
        return int(self._model.config.audio_encoder.sampling_rate)

    # --- batching -----------------------------------------------------------------------------

    def _memory_needs(self, samples: int) -> tuple[int, int]:
        """Rough peak bytes: ``(per batch item, once per batch)``.

        Per item: the decoder's key/value cache (x2 for guidance), with room for
        the step's temporaries.  Once: EnCodec decoding of one window, because
        ``generate_long`` decodes the items one after another.
        """
        from .musicgen_windows import WINDOW_S

        cfg = self._model.config
        frame_rate = int(cfg.audio_encoder.frame_rate)
        frames = min(samples * frame_rate // cfg.audio_encoder.sampling_rate, int(WINDOW_S * frame_rate)) + 8
        itemsize = torch_itemsize(self._dtype)
        dec = cfg.decoder
        kv = 2 * dec.num_hidden_layers * dec.hidden_size * frames * 2 * itemsize
        window_samples = frames * cfg.audio_encoder.sampling_rate // frame_rate
        # the last EnCodec layers hold ~4 float32 tensors of num_filters channels at the full sample rate
        decode = window_samples * cfg.audio_encoder.num_filters * 4 * 4 * dec.audio_channels
        return int(kv * 1.5), int(decode)

    def _batch_size(self, samples: int) -> int:
        return batch_size(self._device, self.options.batch_size, lambda: self._memory_needs(samples), MAX_BATCH, 8,
                          self._batch_cap)

    # --- composing ----------------------------------------------------------------------------

    def _generation_kwargs(self, seeds: list[int]) -> dict:
        """Sampling with one generator per track (audiocraft's rule: top_p in (0, 1) replaces top-k)."""
        from .sampling import sampling_kwargs

        o = self.options
        return sampling_kwargs(seeds, self._model.decoder.num_codebooks, temperature=float(o.temperature),
                               top_k=int(o.top_k), top_p=float(o.top_p), guidance_scale=float(o.guidance_scale),
                               device=self._device)

    def greedy_setting(self) -> Optional[str]:
        from ..options import flag

        o = self.options
        if float(o.temperature) <= 0:
            return flag("temperature", float(o.temperature))
        if int(o.top_k) == 1 and not 0.0 < float(o.top_p) < 1.0:  # the likeliest code alone (see sampling_kwargs)
            return flag("top_k", 1)
        return None

    def _text_token_limit(self) -> int:
        """The most tokens of a description the text encoder takes (the rest is cut, with a warning)."""
        tokenizer = self._processor.tokenizer
        t5 = self._model.config.text_encoder
        limit = min(MAX_TEXT_TOKENS, int(getattr(t5, "n_positions", MAX_TEXT_TOKENS) or MAX_TEXT_TOKENS))
        if 0 < getattr(tokenizer, "model_max_length", 0) < limit:
            limit = int(tokenizer.model_max_length)
        return limit

    def _encode_texts(self, texts: list[str]) -> tuple[dict, list[list[str]]]:
        """Tokenize, cutting long descriptions to what the text encoder takes (with a warning each)."""
        tokenizer = self._processor.tokenizer
        limit = self._text_token_limit()
        warnings: list[list[str]] = []
        for ids in tokenizer(texts)["input_ids"]:
            cut = len(ids) > limit
            warnings.append([f"description cut from {len(ids)} to {limit} tokens, the most MusicGen's "
                             f"text encoder takes"] if cut else [])
            unknown = unknown_words_warning(tokenizer, ids[:limit], self.model_name)
            if unknown:
                warnings[-1].append(unknown)
        inputs = self._processor(text=texts, padding=True, truncation=True, max_length=limit, return_tensors="pt")
        return {k: v.to(self._device) for k, v in inputs.items()}, warnings

    def _batch_key(self, request: ComposeRequest):
        """What besides the length keeps two requests out of one batch (nothing, for text-only MusicGen)."""
        return None

    def _encode_inputs(self, reqs: list[ComposeRequest]) -> tuple[dict, list[list[str]]]:
        """The model inputs for one batch, and each request's warnings."""
        inputs, warnings = self._encode_texts([r.text for r in reqs])
        if any(r.reference is not None for r in reqs):
            for w in warnings:
                w.append(f"{self.model_name} does not take reference audio; composed from the text alone "
                         "(musicgen-melody and ace-step do)")
        return inputs, warnings

    def compose(self, requests: list[ComposeRequest], *, progress: ProgressFn | None = None,
                made: MadeFn | None = None) -> list[Track]:
        """One track per request, in order; requests of the same length share batches."""
        if not requests:
            return []
        for r in requests:
            if not r.duration or r.duration <= 0:
                raise InputError(f"{r.name}: duration must be more than 0 seconds (got {r.duration})")
        self._load()
        from .musicgen_windows import plan_windows, steps_for

        sr = self.sample_rate
        frame_rate = int(self._model.config.audio_encoder.frame_rate)
        delay = self._model.decoder.num_codebooks // self._model.decoder.config.audio_channels - 1

        def gen_samples(r: ComposeRequest) -> int:
            return int(round((r.duration + (0.0 if r.follows is not None else loop_crossfade(r, self.options.loop, LOOP_CROSSFADE_S)))
                             * sr))

        def steps(r: ComposeRequest) -> int:
            frames = max(-(-gen_samples(r) * frame_rate // sr), delay + 1)
            if r.follows is not None:  # one window after its prompt
                return frames + delay
            return sum(steps_for(w, delay) for w in plan_windows(frames, frame_rate))

        def batch_key(r: ComposeRequest):
            # continuations batch with continuations of prompts as long (their codes form one tensor; a track
            # never depends on its batch mates)
            return self._batch_key(r), None if r.follows is None else len(r.follows)

        from .musicgen_windows import WINDOW_S

        one_window = int(WINDOW_S * sr)
        groups = length_groups([(i, gen_samples(r), batch_key(r)) for i, r in enumerate(requests)], one_window)
        steps_done = StepProgress(progress, sum(steps(requests[g[0]]) * len(g) for g in groups.values()))
        tracks: list[Optional[Track]] = [None] * len(requests)
        done_before = 0

        def make(chunk: list[int]) -> list[Track]:
            nonlocal done_before
            done_before = steps_done.done
            lengths = [gen_samples(requests[j]) for j in chunk]
            return self._compose_batch([requests[j] for j in chunk], max(lengths), steps_done, lengths)

        def halved(size: int) -> None:
            self._batch_cap = size
            steps_done.rewind(done_before, f"out of memory: retrying at batch size {size}")

        def too_big(j: int) -> BackendError:
            return BackendError(
                f"out of memory on {self._device} generating one {requests[j].duration:g} s track with {self.model_id}",
                hint="use a smaller model (e.g. musicgen-small), --precision bf16/fp16, or --device cpu.")

        for (samples, _), indices in groups.items():
            for j, track in in_batches(indices, self._batch_size(samples), make, device=self._device,
                                       too_big=too_big, halved=halved):
                tracks[j] = track
                if made is not None:
                    made(j, track)
        steps_done.finish()
        return [t for t in tracks if t is not None]

    def _compose_batch(self, reqs: list[ComposeRequest], samples: int, steps_done: "StepProgress",
                       item_samples: Optional[list[int]] = None) -> list[Track]:
        import numpy as np

        from ..devices import decoding_attention, dtype_name, seeded
        from .musicgen_windows import generate_long

        seeds = [r.seed if r.seed is not None else random.SystemRandom().randrange(2**31) for r in reqs]
        inputs, warnings = self._encode_inputs(reqs)
        names = reqs[0].name + (f" (+{len(reqs) - 1})" if len(reqs) > 1 else "")
        steps_done.width = len(reqs)

        def on_window(index: int, count: int) -> None:
            steps_done.label = names if count == 1 else f"{names}, window {index + 1}/{count}"

        import torch

        continuing = reqs[0].follows is not None
        with seeded(seeds[0]), decoding_attention(self._device), torch.inference_mode():  # (seeded: anything else
            # random in generate; the codes come from per-track generators)
            mixed = item_samples is not None and len(set(item_samples)) > 1
            if continuing:
                audio = self._continue(reqs, inputs, item_samples or [samples] * len(reqs), seeds, steps_done)
                windows = 1
            else:
                audio, windows = generate_long(self._model, inputs, samples, self._generation_kwargs(seeds),
                                               on_step=steps_done.step, on_window=on_window,
                                               item_samples=item_samples if mixed else None)
        sr = self.sample_rate
        tracks = []
        for k, r in enumerate(reqs):
            x = np.ascontiguousarray(audio[k].T, dtype=np.float32)  # (frames, channels)
            if item_samples is not None:
                x = x[:item_samples[k]]  # its own length (a shorter item in a batch of longer ones)
            if self.options.loop and not continuing:
                from ..audio import make_seamless_loop

                x = make_seamless_loop(x, sr, crossfade_s=loop_crossfade(r, True, LOOP_CROSSFADE_S))
            want = int(round(r.duration * sr))
            x = x[:want] if len(x) >= want else np.pad(x, ((0, want - len(x)), (0, 0)))
            info = {"windows": windows, "precision": dtype_name(self._dtype), "device": self._device,
                    **({"continues_s": round(len(r.follows) / sr, 3)} if continuing else {}),
                    "batch_size": len(reqs), "seed": seeds[k], "model_id": self.model_id,
                    "sampling": "per-track generator", "batch_generated_s": round(samples / sr, 3)}
            tracks.append(Track(np.clip(x, -1.0, 1.0), sr, info=info, warnings=list(warnings[k])))
        return tracks

    def _continue(self, reqs: list[ComposeRequest], inputs: dict, new_samples: list[int], seeds: list[int],
                  steps_done: "StepProgress") -> list:
        """Each request's new audio after its ``follows`` audio (channels, samples), one batch."""
        import numpy as np

        from .musicgen_windows import generate_continuation

        prompts = np.stack([np.asarray(r.follows, dtype=np.float32).reshape(len(r.follows), -1).T for r in reqs])
        return generate_continuation(self._model, inputs, prompts, new_samples, self._generation_kwargs(seeds),
                                     on_step=steps_done.step)

    def settings_key(self) -> dict:
        o = self.options
        key = super().settings_key()
        key.update(top_k=o.top_k, top_p=o.top_p, temperature=o.temperature, guidance_scale=o.guidance_scale,
                   precision=self._precision_key(), windowing=WINDOWING)
        return key

    def close(self) -> None:
        self._model = None
        self._processor = None
        if self._device is not None:
            release_memory(self._device)


#: requests within one window whose lengths differ by at most this factor share a batch (generated at the longest)
MAX_LENGTH_SPREAD = 1.3


def length_groups(items: list[tuple[int, int, object]], one_window: int) -> dict[tuple, list[int]]:
    """Batches of requests: ``(index, samples, key)`` -> ``{(samples to generate, key): [indices]}``.

    Requests that fit one window share a batch when their lengths are within :data:`MAX_LENGTH_SPREAD` of
    the longest (each still gets exactly its own audio, see ``generate_long``): a chapter's cues, all of
    different lengths, then batch.  Longer requests keep to exact lengths (their windows must line up).
    """
    found: dict[tuple, list[int]] = {}
    short = sorted((it for it in items if it[1] <= one_window), key=lambda it: -it[1])
    for index, samples, key in (it for it in items if it[1] > one_window):
        found.setdefault((samples, key), []).append(index)
    open_by_key: dict[object, tuple] = {}
    for index, samples, key in short:
        current = open_by_key.get(key)
        if current is None or current[0] > MAX_LENGTH_SPREAD * samples:
            current = (samples, key)
            open_by_key[key] = current
            found[current] = []
        found[current].append(index)
    # in the order of the requests (a group goes where its first request was)
    return dict(sorted(found.items(), key=lambda kv: min(kv[1])))


def torch_itemsize(dtype) -> int:
    """Bytes per element of a torch dtype."""
    import torch

    return torch.empty((), dtype=dtype).element_size()
