"""Stable Audio 3 (Small Music, Medium) through diffusers' ``StableAudio3Pipeline``: 44.1 kHz stereo.

The pipeline: a T5Gemma text encoder, a duration embedder, a rectified-flow
DiT over SAME-autoencoder latents, and a flow-matching Euler scheduler (with
"ping-pong" re-noising for the distilled checkpoints).  Defaults are the model
card's for the distilled checkpoints: the scheduler's own step count (8),
guidance off (it is distilled into the weights), log-SNR range -6.2..2.
The DiT works on the requested length only, so short tracks are cheap.

Stable Audio 3 Small makes up to 120 s in one call (Medium 380 s: set
``max_window_s``).  Longer tracks continue with the model's own inpainting
(``StableAudio3InpaintPipeline`` built from the same components): the next
window keeps the track's last ``overlap_s`` seconds and fills in the rest.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import Field

from ..errors import BackendError
from .diffusion import DiffusionComposer, DiffusionOptions, Window, step_callback


class StableAudio3Composer(DiffusionComposer):
    """Text-to-audio with Stable Audio 3 checkpoints converted to diffusers format."""

    backend = "stable-audio-3"
    pipeline_class = "StableAudio3Pipeline"

    class Options(DiffusionOptions):
        steps: Optional[int] = Field(None, ge=1, le=1000)  # None: 8 for distilled checkpoints, 100 for base ones (their scheduler says)
        guidance_scale: float = Field(1.0, ge=0.0, le=50.0)  # off: distilled into the weights; > 1 only for the base checkpoints
        logsnr_min: float = -6.2
        logsnr_max: float = 2.0
        max_window_s: float = Field(120.0, gt=0.0, le=600.0)  # Stable Audio 3 Small; Medium makes up to 380 s
        overlap_s: float = Field(10.0, gt=0.0, le=60.0)

    def _prepare(self, pipe) -> None:
        self._inpaint = None

    def steps_per_window(self) -> int:
        if self.options.steps is not None:
            return int(self.options.steps)
        self._load()
        return 8 if self._pipe.scheduler.config.stochastic_sampling else 100

    def max_window_samples(self) -> int:
        return int(round(self.options.max_window_s * self.sample_rate))

    def latent_hop(self) -> int:
        return int(self._pipe.vae.downsampling_ratio)

    def close(self) -> None:
        self._inpaint = None
        super().close()

    def _inpaint_pipeline(self):
        if getattr(self, "_inpaint", None) is None:
            import diffusers

            if not getattr(self._pipe.transformer.config, "local_add_cond_dim", None):
                raise BackendError(f"{self.model_id} has no inpainting layers, so it cannot continue a track past "
                                   f"{self.options.max_window_s:g} s",
                                   hint="ask for a shorter --duration, or a checkpoint converted with its "
                                        "inpainting weights.")
            self._inpaint = diffusers.StableAudio3InpaintPipeline(**self._pipe.components)
            self._inpaint.set_progress_bar_config(disable=True)
        return self._inpaint

    def _generate(self, texts: list[str], window: Window, context: Optional[np.ndarray], generators: list,
                  reference: Optional[np.ndarray], on_step) -> np.ndarray:
        import torch

        o = self.options
        sr = self.sample_rate
        # ask for a little more than the window: the pipeline cuts at int(duration * rate)
        seconds = (window.length + 1) / sr
        common = dict(prompt=list(texts), duration=seconds, num_inference_steps=self.steps_per_window(),
                      logsnr_min=float(o.logsnr_min), logsnr_max=float(o.logsnr_max), generator=list(generators),
                      callback_on_step_end=step_callback(on_step), output_type="pt")
        if context is None:
            audio = self._pipe(guidance_scale=float(o.guidance_scale), **common).audios
        else:
            source = np.zeros((len(texts), context.shape[1], window.length), dtype=np.float32)
            source[..., :window.keep] = context
            audio = self._inpaint_pipeline()(
                audio=torch.from_numpy(source).to(self._device), mask_start_seconds=window.keep / sr,
                mask_end_seconds=seconds, **common).audios
        return audio.float().cpu().numpy()
