"""What every diffusers text-to-music composer shares: loading, batching, seeds, windows, progress.

A model module (``ace_step.py``, ``stable_audio_open.py``, ``stable_audio_3.py``)
subclasses :class:`DiffusionComposer`, names its diffusers pipeline class, its
``Options`` (steps, guidance... with the model card's defaults) and implements
:meth:`DiffusionComposer._generate`: one pipeline call for one window of a batch.

- **Loading**: ``PipelineClass.from_pretrained(model_id)`` with the project's
  model cache, ``local_files_only`` offline, in the precision ``devices.pick_dtype``
  chooses; a Hub id and a local ``save_pretrained`` folder take the same path.
- **Seeds**: one CPU ``torch.Generator`` per request, seeded with the request's
  seed (or a fresh random one, recorded in ``track.info["seed"]``): a track's
  noise does not depend on which other requests share its batch, its place in
  it, or the device.  Where a pipeline would draw from torch's global generator
  (the VAE's posterior when audio is encoded), the posterior's mean is used.
- **Length**: exact to the sample.  Tracks longer than the model's window are
  made window by window; each later window starts with the last ``overlap_s``
  seconds of the track so far as context, which the model keeps while it fills
  in the rest (ACE-Step's *repaint*, Stable Audio 3's inpainting, Stable Audio
  Open's latents replaced step by step), and a short linear crossfade inside
  that overlap joins the two windows (no click, no level dip).
- **Batches**: requests of the same length (and reference) share pipeline
  calls, sized from free memory (``--batch-size`` overrides); out of memory
  halves the batch down to 1.
- **Rate**: audio stays at the model's own rate (44.1 or 48 kHz): every output
  format takes those rates (Opus gets 48 kHz), and resampling to 32 kHz would
  only throw away the top octave these models make.
"""

from __future__ import annotations

import random
from typing import Any, Callable, ClassVar, Optional

import numpy as np
from pydantic import Field

from .. import settings
from ..devices import loading_onto, release_memory
from ..errors import BackendError, InputError
from ..options import TorchOptions
from ..progress import ProgressFn, report
from ..quiet import truncation_notices_dropped
from .base import LOOP_CROSSFADE_S, Composer, ComposeRequest, MadeFn, Track, loop_crossfade, unknown_words_warning
from .batching import batch_size, in_batches
from .diffusion_windows import Window, crossfade_into, plan_windows

WINDOWING = "context-overlap-v1"  # change when the windowing changes the audio
MAX_BATCH = {"cpu": 4, "mps": 4, "cuda": 16}


#: what diffusers' loading makes huggingface_hub say on every load (an argument diffusers still passes, dropped)
_SYMLINKS_WARNING = "The `local_dir_use_symlinks` argument is deprecated"


class DiffusionOptions(Composer.Options, TorchOptions):
    """Settings every diffusion composer has; each model's ``Options`` adds its own (unknown ones are refused)."""

    steps: Optional[int] = Field(8, ge=1, le=1000)
    guidance_scale: float = Field(1.0, ge=0.0, le=50.0)
    overlap_s: float = Field(10.0, ge=1.0, le=60.0)  # context carried into the next window of a long track
    batch_size: Optional[int] = Field(None, ge=1, le=1024)  # None: from free memory


class DiffusionComposer(Composer):
    """Text-to-music through a diffusers pipeline; subclasses fill in the model's own parts."""

    pipeline_class: ClassVar[str] = ""  # a diffusers class name, e.g. "AceStepPipeline"
    Options = DiffusionOptions

    def __init__(self, spec, options=None):
        super().__init__(spec, options)
        self._pipe = None
        self._device: Optional[str] = None
        self._dtype = None
        self._batch_cap: Optional[int] = None

    # --- loading ---------------------------------------------------------------------------

    def preflight(self) -> None:
        """Check the device now; offline, check the pipeline's index is in the cache (no weights loaded)."""
        from ..devices import pick_device

        pick_device(self.options.device)
        if self.options.no_network and self._pipe is None:
            import diffusers

            from ..quiet import warnings_ignored

            try:
                with warnings_ignored(message=_SYMLINKS_WARNING, category=UserWarning):
                    diffusers.DiffusionPipeline.load_config(self.model_id, cache_dir=settings.model_cache_dir(),
                                                             local_files_only=True)
            except (OSError, ValueError) as exc:
                from .musicgen import unavailable_error

                raise unavailable_error(self.model_id, exc, True) from exc

    def _load(self) -> None:
        if self._pipe is not None:
            return
        try:
            import diffusers
        except ImportError as exc:  # pragma: no cover - diffusers is a dependency
            from ..errors import ModelUnavailableError

            raise ModelUnavailableError(f"{self.model_name} needs the diffusers package",
                                        hint='pip install "diffusers>=0.42.1,<0.43"') from exc
        from ..devices import pick_device, pick_dtype
        from .musicgen import unavailable_error

        self._device = pick_device(self.options.device)
        self._dtype = pick_dtype(self._device, self.options.precision)
        cls = getattr(diffusers, self.pipeline_class)
        bars = diffusers.utils.logging.is_progress_bar_enabled()
        diffusers.utils.logging.disable_progress_bar()  # no tqdm lines under the CLI's own progress bar
        from ..cache import load_cache_first
        from ..quiet import load_report_held, missing_weights, warnings_ignored

        # what a load says that the user can do nothing about, on every load: Stable Audio's Oobleck VAE is built with
        # torch's old weight_norm ("`torch.nn.utils.weight_norm` is deprecated in favor of ..."), and diffusers still
        # passes huggingface_hub an argument it has dropped ("The `local_dir_use_symlinks` argument is deprecated")
        with loading_onto(self._device, self.model_name), \
                warnings_ignored(message="`torch.nn.utils.weight_norm` is deprecated", category=FutureWarning), \
                warnings_ignored(message=_SYMLINKS_WARNING, category=UserWarning), load_report_held() as reports:
            try:
                pipe = load_cache_first(self.model_id, self.options.no_network, lambda local: cls.from_pretrained(
                    self.model_id, dtype=self._dtype, cache_dir=settings.model_cache_dir(), local_files_only=local),
                    refused=getattr(self, "download_refused", None))
            except (OSError, ValueError) as exc:  # not cached, no network, not a pipeline of this kind
                raise unavailable_error(self.model_id, exc, self.options.no_network) from exc
            finally:
                if bars:
                    diffusers.utils.logging.enable_progress_bar()
            missing = missing_weights(reports)  # a part's config with layers its weights lack: made random (noise,
            if missing:  # said "ok", another sound at each run of one seed), or left on the meta device
                from ..errors import WeightsUnusableError

                raise WeightsUnusableError(
                    f"{self.model_name}: its weights do not fit its config.json: {missing}; those layers would be "
                    "random and make noise",
                    hint="save the pipeline and its configs together again (save_pretrained), or copy the whole "
                         "folder again")
            pipe = pipe.to(self._device)
            pipe.set_progress_bar_config(disable=True)
            self._prepare(pipe)
        self._pipe = pipe

    def _prepare(self, pipe) -> None:
        """Adjust a freshly loaded pipeline (a subclass hook)."""

    @property
    def sample_rate(self) -> int:
        self._load()
        return int(self._pipe.vae.config.sampling_rate)

    @property
    def channels(self) -> int:
        self._load()
        return int(self._pipe.vae.config.audio_channels)

    # --- what a model module provides ----------------------------------------------------

    def max_window_samples(self) -> int:
        """The longest audio one pipeline call makes."""
        raise NotImplementedError

    def steps_per_window(self) -> int:
        return int(self.options.steps)

    def text_token_limit(self) -> int:
        """Tokens of the description the text encoder sees; longer ones are cut (with a warning)."""
        return 256

    def _memory_needs(self, samples: int) -> tuple[int, int]:
        """Rough peak bytes ``(per batch item, once per call)``: transformer activations and VAE decoding."""
        window = min(samples, self.max_window_samples())
        transformer = self._pipe.transformer.config
        hidden = int(getattr(transformer, "hidden_size", 0) or getattr(transformer, "embed_dim", 0)
                     or getattr(transformer, "num_attention_heads", 16) * getattr(transformer, "attention_head_dim", 64))
        tokens = window // max(1, self.latent_hop()) + 300  # latent frames + text and conditioning tokens
        from .musicgen import torch_itemsize

        itemsize = torch_itemsize(self._dtype)
        guidance = 2 if self.options.guidance_scale > 1.0 else 1
        activations = tokens * hidden * 24 * itemsize * guidance
        decode = window * self.channels * 128 * 4 * itemsize  # the VAE decoder's widest layers at full rate
        return int(activations + decode), 0

    def latent_hop(self) -> int:
        """Audio samples per latent frame."""
        return 2048

    def _generate(self, texts: list[str], window: Window, context: Optional[np.ndarray], generators: list,
                  reference: Optional[np.ndarray], on_step: Callable[[], None]) -> np.ndarray:
        """One pipeline call -> float32 ``(batch, channels, >= window.length)``.

        ``context`` is the track's audio ``(batch, channels, window.keep)`` the
        window must continue from (``None`` for the first window);
        ``reference`` a ``(channels, frames)`` melody/timbre reference at the
        model's rate, or ``None``.  Call ``on_step()`` once per diffusion step.
        """
        raise NotImplementedError

    def uses_reference(self) -> bool:
        return False

    def _batch_key(self, request: ComposeRequest) -> tuple:
        """What besides the length keeps two requests out of one pipeline call (a subclass hook)."""
        from .reference import reference_key

        return (reference_key(request) if self.uses_reference() else None,)

    # --- batching -----------------------------------------------------------------------------

    def _batch_size(self, samples: int) -> int:
        return batch_size(self._device, self.options.batch_size, lambda: self._memory_needs(samples), MAX_BATCH, 4,
                          self._batch_cap)

    # --- composing ----------------------------------------------------------------------------

    def _windows(self, samples: int) -> list[Window]:
        sr = self.sample_rate
        window = self.max_window_samples()
        overlap = min(int(round(self.options.overlap_s * sr)), window // 2)
        return plan_windows(samples, window, max(1, overlap))

    def compose(self, requests: list[ComposeRequest], *, progress: ProgressFn | None = None,
                made: MadeFn | None = None) -> list[Track]:
        """One track per request, in order; requests of the same length and reference share batches."""
        if not requests:
            return []
        for r in requests:
            if not r.duration or r.duration <= 0:
                raise InputError(f"{r.name}: duration must be more than 0 seconds (got {r.duration})")
        self._load()
        sr = self.sample_rate

        def gen_samples(r: ComposeRequest) -> int:
            return int(round((r.duration + loop_crossfade(r, self.options.loop, LOOP_CROSSFADE_S)) * sr))

        steps = self.steps_per_window()
        state = {"done": 0, "total": sum(len(self._windows(gen_samples(r))) * steps for r in requests),
                 "width": 1, "label": ""}

        def on_step() -> None:
            state["done"] += state["width"]
            report(progress, state["done"], state["total"], state["label"])

        def make(chunk: list[int]) -> list[Track]:  # requests of one length
            state["chunk_start"] = state["done"]
            with truncation_notices_dropped():  # said once by the track's own warning (_text_warnings)
                return self._compose_batch([requests[j] for j in chunk], gen_samples(requests[chunk[0]]), state,
                                           on_step)

        def halved(size: int) -> None:
            self._batch_cap = size
            state["done"] = state["chunk_start"]
            report(progress, state["done"], state["total"], f"out of memory: retrying at batch size {size}")

        def too_big(j: int) -> BackendError:
            return BackendError(
                f"out of memory on {self._device} generating one {requests[j].duration:g} s track with {self.model_id}",
                hint="use a smaller model, --precision bf16/fp16, a shorter --duration, or --device cpu.")

        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((gen_samples(r), *self._batch_key(r)), []).append(i)
        tracks: list[Optional[Track]] = [None] * len(requests)
        for (samples, *_), indices in groups.items():
            for j, track in in_batches(indices, self._batch_size(samples), make, device=self._device,
                                       too_big=too_big, halved=halved):
                tracks[j] = track
                if made is not None:
                    made(j, track)
        report(progress, state["total"], state["total"], "done")
        return [t for t in tracks if t is not None]

    def _text_warnings(self, texts: list[str]) -> list[list[str]]:
        tokenizer = getattr(self._pipe, "tokenizer", None)
        limit = self.text_token_limit()
        if tokenizer is None:
            return [[] for _ in texts]
        warnings = []
        for ids in tokenizer(texts)["input_ids"]:
            warnings.append([f"description cut from {len(ids)} to {limit} tokens, the most {self.model_name}'s "
                             f"text encoder takes"] if len(ids) > limit else [])
            unknown = unknown_words_warning(tokenizer, ids[:limit], self.model_name)
            if unknown:
                warnings[-1].append(unknown)
        return warnings

    def _compose_batch(self, reqs: list[ComposeRequest], samples: int, state: dict, on_step) -> list[Track]:
        import torch

        from ..devices import dtype_name
        from .reference import reference_for

        seeds = [r.seed if r.seed is not None else random.SystemRandom().randrange(2**31) for r in reqs]
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        texts = [r.text for r in reqs]
        warnings = self._text_warnings(texts)
        reference = None
        if reqs[0].reference is not None:
            if self.uses_reference():
                reference = reference_for(reqs[0], self.sample_rate, self.channels)
            else:
                for w in warnings:
                    w.append(f"{self.model_name} does not take reference audio; composed from the text alone "
                             "(musicgen-melody and ace-step do)")
        names = reqs[0].name + (f" (+{len(reqs) - 1})" if len(reqs) > 1 else "")
        state["width"] = len(reqs)
        sr, channels = self.sample_rate, self.channels
        windows = self._windows(samples)
        out = np.zeros((len(reqs), channels, samples), dtype=np.float32)
        for index, window in enumerate(windows):
            state["label"] = names if len(windows) == 1 else f"{names}, window {index + 1}/{len(windows)}"
            context = out[..., window.start:window.start + window.keep].copy() if window.keep else None
            with torch.inference_mode():
                audio = self._generate(texts, window, context, generators, reference, on_step)
            audio = np.asarray(audio, dtype=np.float32)
            if audio.shape[-1] < window.length:
                audio = np.pad(audio, ((0, 0), (0, 0), (0, window.length - audio.shape[-1])))
            if audio.shape[1] != channels:
                audio = np.repeat(audio[:, :1], channels, axis=1)
            crossfade_into(out, audio, window, sr)
        tracks = []
        for k, r in enumerate(reqs):
            x = np.ascontiguousarray(np.nan_to_num(out[k]).T, dtype=np.float32)  # (frames, channels)
            if self.options.loop:
                from ..audio import make_seamless_loop

                x = make_seamless_loop(x, sr, crossfade_s=loop_crossfade(r, True, LOOP_CROSSFADE_S))
            want = int(round(r.duration * sr))
            x = x[:want] if len(x) >= want else np.pad(x, ((0, want - len(x)), (0, 0)))
            info = {"windows": len(windows), "precision": dtype_name(self._dtype), "device": self._device,
                    "batch_size": len(reqs), "seed": seeds[k], "model_id": self.model_id,
                    "steps": self.steps_per_window(), "reference": reference is not None}
            tracks.append(Track(np.clip(x, -1.0, 1.0), sr, info=info, warnings=list(warnings[k])))
        return tracks

    def settings_key(self) -> dict:
        key = super().settings_key()
        key.update(precision=self._precision_key(), windowing=WINDOWING,
                   options=self.options.model_dump(mode="json", exclude={"offline", "device", "batch_size", "loop", "precision"}))
        return key

    def close(self) -> None:
        self._pipe = None
        if self._device is not None:
            release_memory(self._device)


# --- helpers the model modules share --------------------------------------------------------


def mean_posterior(vae):
    """A context in which ``vae.encode(...).latent_dist.sample()`` returns the posterior's mean.

    Pipelines sample the VAE posterior with torch's *global* generator when
    they encode audio (a repaint's source, a reference), which would tie a
    track to its batch and to whatever ran before; the mean is the same
    every time.
    """
    import contextlib

    @contextlib.contextmanager
    def context():
        encode = vae.encode
        had_own = "encode" in vars(vae)

        def deterministic(*args, **kwargs):
            output = encode(*args, **kwargs)
            dist = getattr(output, "latent_dist", None)
            if dist is not None and hasattr(dist, "mode"):
                dist.sample = lambda *a, **k: dist.mode()
            return output

        vae.encode = deterministic
        try:
            yield
        finally:
            if had_own:
                vae.encode = encode
            else:
                del vae.encode

    return context()


def step_callback(on_step: Callable[[], None]) -> Callable[..., dict]:
    """A ``callback_on_step_end`` that moves the progress bar and changes nothing."""

    def callback(pipe: Any, step: int, timestep: Any, kwargs: dict) -> dict:
        on_step()
        return {}

    return callback
