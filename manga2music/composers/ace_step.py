"""ACE-Step 1.5 through diffusers' ``AceStepPipeline``: 48 kHz stereo, up to 10 minutes a call.

The pipeline: a Qwen3-Embedding text encoder, a condition encoder (text,
lyrics, timbre), a flow-matching DiT over 25 Hz Oobleck-VAE latents.  Defaults
are the model card's for the turbo checkpoint (8 steps, shift 3, guidance
distilled into the weights; ``guidance_scale`` only matters for the base/SFT
checkpoints).  Descriptions are instrumental unless ``lyrics`` says otherwise.

Tracks longer than ``max_window_s`` (10 minutes) continue with ACE-Step's own
*repaint* task: the next window's source audio is the track's last
``overlap_s`` seconds followed by room to fill, and only that room is
regenerated.  A request's ``reference`` audio conditions the timbre encoder
(the pipeline's ``reference_audio``).  Descriptions share a pipeline call only
when they have the same number of tokens: the DiT attends to the conditions'
padding, so batching different lengths would change the music.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import Field

from .diffusion import DiffusionComposer, DiffusionOptions, Window, mean_posterior, step_callback


class AceStepComposer(DiffusionComposer):
    """Text-to-music with any ACE-Step 1.5 checkpoint in diffusers format (turbo, base, SFT)."""

    backend = "ace-step"
    pipeline_class = "AceStepPipeline"

    class Options(DiffusionOptions):
        steps: int = Field(8, ge=1, le=1000)  # the turbo checkpoint is distilled for 8 steps
        guidance_scale: float = Field(7.0, ge=0.0, le=50.0)  # base/SFT only: turbo checkpoints ignore it
        shift: float = Field(3.0, gt=0.0, le=10.0)  # the timestep schedule's shift (1, 2 or 3 on the model card)
        lyrics: str = "[Instrumental]"  # background music: no singing unless asked
        vocal_language: str = "en"
        max_window_s: float = Field(600.0, gt=0.0, le=600.0)  # ACE-Step 1.5 makes 10 s to 10 minutes in one call
        overlap_s: float = Field(10.0, gt=0.0, le=60.0)

    def is_turbo(self) -> bool:
        """Whether the checkpoint is a turbo one, whose guidance is distilled into its weights (the pipeline runs it
        at guidance 1 whatever ``guidance_scale`` says): from the pipeline loaded, else its transformer's
        ``config.json`` (a local folder's, or the model cache's), which the settings a rerun compares need before
        any weights are loaded."""
        if self._pipe is not None:
            return bool(self._pipe.is_turbo)
        if self.__dict__.get("_turbo") is None:
            config = _transformer_config(self.model_id)
            self._turbo = bool(config.get("is_turbo") or config.get("model_version") == "turbo")
        return self._turbo

    def settings_key(self) -> dict:
        key = super().settings_key()
        if self.is_turbo():  # not recorded where not played: a record of a turbo said 7.0, and another
            del key["options"]["guidance_scale"]  # --guidance-scale made every track again, each the same
        return key

    def unused_options(self) -> dict[str, str]:
        """The options this checkpoint takes no notice of, with why (said when given)."""
        return {"guidance_scale": "a turbo checkpoint has its guidance in its weights"} if self.is_turbo() else {}

    def _prepare(self, pipe) -> None:
        # The text encoder runs without an attention mask; padding on the right keeps a causal
        # model's states for the real tokens the same whatever else shares the batch (the mask
        # handed on to the condition encoder hides the pads).
        pipe.tokenizer.padding_side = "right"

    def max_window_samples(self) -> int:
        return int(round(self.options.max_window_s * self.sample_rate))

    def latent_hop(self) -> int:
        return int(round(self.sample_rate / self._pipe.latents_per_second))

    def uses_reference(self) -> bool:
        return True

    def _batch_key(self, request) -> tuple:
        # The DiT's cross-attention sees the condition encoder's padding (the pipeline passes no mask
        # there), so a prompt padded to a longer neighbour's length makes different music.  Only
        # descriptions of the same token count share a call: then nothing is padded.
        tokens = len(self._pipe.tokenizer(request.text)["input_ids"])
        return (*super()._batch_key(request), min(tokens, self.text_token_limit()))

    def _generate(self, texts: list[str], window: Window, context: Optional[np.ndarray], generators: list,
                  reference: Optional[np.ndarray], on_step) -> np.ndarray:
        import torch

        o = self.options
        pipe = self._pipe
        sr = self.sample_rate
        kwargs = {}
        if context is not None:
            source = np.zeros((len(texts), context.shape[1], window.length), dtype=np.float32)
            source[..., :window.keep] = context
            kwargs.update(task_type="repaint", src_audio=torch.from_numpy(source).to(self._device),
                          repainting_start=window.keep / sr, repainting_end=window.length / sr)
        if reference is not None:
            kwargs["reference_audio"] = torch.from_numpy(reference).to(self._device)
        with mean_posterior(pipe.vae):
            audio = pipe(
                prompt=list(texts), lyrics=[o.lyrics] * len(texts), vocal_language=o.vocal_language,
                audio_duration=window.length / sr, num_inference_steps=int(o.steps),
                guidance_scale=1.0 if pipe.is_turbo else float(o.guidance_scale), shift=float(o.shift), generator=list(generators),
                max_text_length=self.text_token_limit(), callback_on_step_end=step_callback(on_step),
                output_type="pt", **kwargs,
            ).audios
        return audio.float().cpu().numpy()


def _transformer_config(model_id: str) -> dict:
    """The ``transformer/config.json`` of a pipeline: a local folder's, or the model cache's copy of a Hub model's
    (``{}`` when neither is there, or it cannot be read)."""
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        found = folder / "transformer" / "config.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        from .. import settings

        cached = try_to_load_from_cache(model_id, "transformer/config.json", cache_dir=str(settings.model_cache_dir()))
        if not isinstance(cached, str):
            return {}
        found = Path(cached)
    try:
        config = json.loads(found.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}
