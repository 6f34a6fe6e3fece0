"""Stable Audio Open 1.0 through diffusers' ``StableAudioPipeline``: 44.1 kHz stereo, up to 47.55 s a call.

The pipeline: a T5-base text encoder, a projection of text and timing
(``seconds_start``/``seconds_total``), a DiT over Oobleck-VAE latents, and a
cosine DPM-Solver++ (SDE) scheduler.  Defaults are the model card's: 100 steps,
guidance 7.  The DiT always denoises its whole window (its ``sample_size``,
47.55 s) and the audio is cut to the requested length, so any track up to
47 s costs the same.

The pipeline has no inpainting, so longer tracks continue by replacement
(the "RePaint" idea): in each later window, after every solver step, the
latent frames of the ``overlap_s`` seconds of context are set to the
context's own latents noised to the step's noise level; the model fills the
rest of the window around them, and at the last step they are exactly the
context again.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import Field

from .diffusion import DiffusionComposer, DiffusionOptions, Window


class StableAudioOpenComposer(DiffusionComposer):
    """Text-to-audio with Stable Audio Open (or any checkpoint of ``StableAudioPipeline``)."""

    backend = "stable-audio-open"
    pipeline_class = "StableAudioPipeline"

    class Options(DiffusionOptions):
        steps: int = Field(100, ge=1, le=1000)  # the model card's example
        guidance_scale: float = Field(7.0, ge=0.0, le=50.0)
        negative_prompt: str = ""  # e.g. "Low quality."; empty: the unconditional embedding
        overlap_s: float = Field(10.0, gt=0.0, le=60.0)

    def max_window_samples(self) -> int:
        pipe = self._pipe
        return int(pipe.transformer.config.sample_size) * int(pipe.vae.hop_length)

    def latent_hop(self) -> int:
        return int(self._pipe.vae.hop_length)

    def text_token_limit(self) -> int:
        return int(self._pipe.tokenizer.model_max_length)

    def _generate(self, texts: list[str], window: Window, context: Optional[np.ndarray], generators: list,
                  reference: Optional[np.ndarray], on_step) -> np.ndarray:
        o = self.options
        pipe = self._pipe
        sr = self.sample_rate
        keep_latents = window.keep // self.latent_hop()
        replace = None
        if context is not None and keep_latents > 0:
            replace = self._context_latents(context, keep_latents, generators)

        def callback(step: int, timestep, latents) -> None:
            if replace is not None:
                known, noise = replace
                sigma = pipe.scheduler.sigmas[pipe.scheduler.step_index].to(latents.device)
                latents[..., :keep_latents] = (known + sigma * noise).to(latents.dtype)
            on_step()

        from ..quiet import warnings_ignored

        # torchsde's Brownian interval warns when the solver asks for sigma_max + float rounding
        with warnings_ignored(message="Should have t", category=UserWarning):
            audio = pipe(
                prompt=list(texts), negative_prompt=[o.negative_prompt] * len(texts) if o.negative_prompt else None,
                audio_start_in_s=0.0, audio_end_in_s=window.length / sr, num_inference_steps=int(o.steps),
                guidance_scale=float(o.guidance_scale), generator=list(generators), callback=callback,
                callback_steps=1, output_type="pt",
            ).audios
        return audio.float().cpu().numpy()

    def _context_latents(self, context: np.ndarray, frames: int, generators: list):
        """The context's VAE latents (posterior mean) over ``frames`` latent frames, and a fixed noise per item."""
        import torch

        pipe = self._pipe
        vae = pipe.vae
        x = torch.from_numpy(np.ascontiguousarray(context[..., :frames * self.latent_hop()]))
        x = x.to(device=self._device, dtype=vae.dtype)
        known = vae.encode(x).latent_dist.mode()[..., :frames]
        noise = torch.cat([torch.randn((1, *known.shape[1:]), generator=g, dtype=torch.float32) for g in generators])
        return known, noise.to(device=known.device, dtype=known.dtype)
