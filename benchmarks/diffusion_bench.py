"""Diffusion composers on their real architectures (random weights): audio seconds per wall second on this CPU.

Each model runs in its own worker process through the project's composer
(``compose()``: text encoding, every diffusion step, VAE decoding), in bf16,
batch 1, beside musicgen-small measured in the same run.  Weights are random,
so only the speed means anything.

Where the configurations come from:

- **ACE-Step 1.5 turbo (non-XL; 1.6B DiT parameters counted)**: diffusers 0.42.1's ``AceStepTransformer1DModel`` and
  ``AceStepConditionEncoder`` defaults, which diffusers' converter
  (``scripts/convert_ace_step_to_diffusers.py``) says are the non-XL turbo/base shapes (hidden 2048, condition
  encoder 2048); text encoder: Qwen3-Embedding-0.6B's published shape (hidden 1024, 28 layers, 16 heads, 8 KV heads,
  head dim 128, FF 3072, vocab 151669); VAE: Oobleck (128 channels, x1/2/4/8/16, 64 latent channels) with the
  1,920-sample hop of 48 kHz / 25 Hz (diffusers' ACE-Step docs).  The XL turbo that ``ace-step`` downloads has a 4.7B
  DiT (hidden 2560, 32 layers, FF 9728): about 2.3x the DiT work per step (scaled, not measured).
- **Stable Audio Open 1.0**: ``StableAudioDiTModel``, ``AutoencoderOobleck`` defaults (the SAO 1.0 shapes: 24 layers,
  24 heads of 64, 1024-frame window of 2048-sample latents) and t5-base (../shared/real-configs musicgen-small's
  text encoder is t5-base).  The model card's 100 steps at guidance 7 take too long on 2 cores, so a few steps
  are timed and the rest extrapolated from the measured time per step (said so in the table).
- **Stable Audio 3 Small Music**: Stability's own MLX port of it (github.com/Stability-AI/stable-audio-3, MIT,
  commit 636f906: ``optimized/mlx/models/defs/dit_mlx.py``, ``same_s_decoder.py``, ``t5gemma_mlx.py``) states its
  shapes: DiT 20 layers x 1024, 16 heads of 64, GLU FF 4096, plain (not differential) attention, 64 memory tokens,
  256 latent channels, conditions of 768; SAME-S autoencoder 6 blocks x 768, 12 heads, FF x3, 4,096 samples a latent
  (diffusers' ``AutoencoderSAME`` defaults); T5Gemma encoder 12 x 768, 12 heads, FF 2048, vocabulary 256,000.
  Distilled: 8 steps.  Timed at 10 s and 60 s (``sa3``, ``sa3-60``).

    python benchmarks/diffusion_bench.py            # writes benchmarks/results/diffusion.json and prints a table
    python benchmarks/diffusion_bench.py musicgen sa3 sa3-60   # a subset -> diffusion-musicgen-sa3-sa3-60.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PROMPT = "calm piano with soft strings, slow tempo, melancholic evening mood"


def _bf16_construction():
    import contextlib

    import torch

    @contextlib.contextmanager
    def ctx():
        before = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)
        try:
            yield
        finally:
            torch.set_default_dtype(before)

    return ctx()


def _attach(composer, pipe):
    """Hand an in-memory pipeline to a composer, as its ``_load`` would (no 5-10 GB save and reload)."""
    import torch

    pipe.set_progress_bar_config(disable=True)
    composer._device, composer._dtype = "cpu", torch.bfloat16
    composer._prepare(pipe)
    composer._pipe = pipe


def _run(composer, seconds: float) -> dict:
    from manga2music.composers.base import ComposeRequest

    stamps: list[float] = []
    start = time.perf_counter()
    (track,) = composer.compose([ComposeRequest("bench", PROMPT, seconds, 1)],
                             progress=lambda d, t, label: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - start
    per_window = composer.steps_per_window() if hasattr(composer, "steps_per_window") else len(stamps)
    steps = [b - a for a, b in zip(stamps, stamps[1:])][: per_window - 1]
    return {"wall_s": wall, "audio_s": seconds, "step_s": sorted(steps)[len(steps) // 2] if steps else None,
            "first_step_at_s": stamps[0] - start if stamps else None, "samples": int(track.audio.shape[0])}


def worker_ace(seconds: float) -> dict:
    import torch
    from diffusers import AceStepPipeline, AutoencoderOobleck, FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import AceStepConditionEncoder
    from transformers import Qwen3Config, Qwen3Model

    from manga2music.composers.ace_step import AceStepComposer
    from tests.tiny_diffusion import qwen_like_tokenizer

    t0 = time.perf_counter()
    with _bf16_construction(), torch.no_grad():
        transformer = AceStepTransformer1DModel(is_turbo=True)
        condition = AceStepConditionEncoder()
        text = Qwen3Model(Qwen3Config(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                                      num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                                      vocab_size=151669, max_position_embeddings=32768))
        vae = AutoencoderOobleck(downsampling_ratios=[2, 4, 4, 6, 10], sampling_rate=48000)
    pipe = AceStepPipeline(vae=vae.eval(), text_encoder=text.eval(), tokenizer=qwen_like_tokenizer(),
                           transformer=transformer.eval(), condition_encoder=condition.eval(),
                           scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0))
    params = sum(p.numel() for p in transformer.parameters())
    composer = AceStepComposer("bench/ace-step-turbo", {"precision": "bf16"})
    _attach(composer, pipe)
    built = time.perf_counter() - t0
    result = _run(composer, seconds)
    result.update(model="ace-step 1.5 turbo shape (diffusers defaults)", steps=8, dit_params_m=round(params / 1e6),
                  build_s=built)
    return result


def worker_sao(steps: int) -> dict:
    import torch
    from diffusers import AutoencoderOobleck, CosineDPMSolverMultistepScheduler, StableAudioDiTModel
    from diffusers import StableAudioPipeline
    from diffusers.pipelines.stable_audio import StableAudioProjectionModel
    from transformers import T5Config, T5EncoderModel

    from manga2music.composers.stable_audio_open import StableAudioOpenComposer
    from tests.tiny_musicgen import _tokenizer

    t0 = time.perf_counter()
    with _bf16_construction(), torch.no_grad():
        transformer = StableAudioDiTModel()
        vae = AutoencoderOobleck()
        text = T5EncoderModel(T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12,
                                       num_heads=12))
        projection = StableAudioProjectionModel(text_encoder_dim=768, conditioning_dim=768, min_value=0,
                                                max_value=512)
    tokenizer = _tokenizer()
    tokenizer.model_max_length = 128
    scheduler = CosineDPMSolverMultistepScheduler(sigma_min=0.3, sigma_max=500, solver_order=2,
                                                  prediction_type="v_prediction", sigma_data=1.0,
                                                  sigma_schedule="exponential")
    pipe = StableAudioPipeline(vae=vae.eval(), text_encoder=text.eval(), projection_model=projection.eval(),
                               tokenizer=tokenizer, transformer=transformer.eval(), scheduler=scheduler)
    params = sum(p.numel() for p in transformer.parameters())
    composer = StableAudioOpenComposer("bench/stable-audio-open", {"precision": "bf16", "steps": steps})
    _attach(composer, pipe)
    built = time.perf_counter() - t0
    window = composer.max_window_samples() / composer.sample_rate
    result = _run(composer, round(window - 0.05, 2))
    result.update(model="stable-audio-open 1.0", steps=steps, dit_params_m=round(params / 1e6), build_s=built)
    return result


def worker_sa3(seconds: float) -> dict:
    """Stable Audio 3 Small Music: shapes from Stability's own MLX port (github.com/Stability-AI/stable-audio-3,
    MIT, optimized/mlx/models/defs): DiT 20 x 1024, 16 heads of 64, GLU FF 4096, plain attention, 64 memory tokens,
    256 latent channels; SAME-S (diffusers' ``AutoencoderSAME`` defaults: 6 blocks x 768, 12 heads, ff x3,
    differential attention, 4,096 samples a latent); T5Gemma encoder 12 x 768, 12 heads of 64, FF 2048, vocabulary
    256,000, prompts padded to 256 tokens."""
    import torch
    from diffusers import AutoencoderSAME, FlowMatchEulerDiscreteScheduler, StableAudio3Pipeline
    from diffusers.models.transformers.transformer_stable_audio3 import StableAudio3DiTModel
    from diffusers.pipelines.stable_audio_3 import StableAudio3DurationEmbedder
    from transformers import T5GemmaConfig, T5GemmaEncoderModel, T5GemmaModuleConfig

    from manga2music.composers.stable_audio_3 import StableAudio3Composer
    from tests.tiny_diffusion import gemma_like_tokenizer

    t0 = time.perf_counter()
    with _bf16_construction(), torch.no_grad():
        transformer = StableAudio3DiTModel(io_channels=256, embed_dim=1024, depth=20, num_heads=16, ff_mult=4.0,
                                           num_memory_tokens=64, use_differential_attention=False)
        vae = AutoencoderSAME()
        module = T5GemmaModuleConfig(vocab_size=256000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                                     num_attention_heads=12, num_key_value_heads=12, head_dim=64,
                                     attn_logit_softcapping=50.0, query_pre_attn_scalar=64)
        text = T5GemmaEncoderModel(T5GemmaConfig(encoder=module.to_dict(), decoder=module.to_dict(),
                                                 is_encoder_decoder=False))
        duration = StableAudio3DurationEmbedder()
    tokenizer = gemma_like_tokenizer()
    tokenizer.model_max_length = 256
    pipe = StableAudio3Pipeline(vae=vae.eval(), text_encoder=text.eval(), tokenizer=tokenizer,
                                duration_embedder=duration.eval(), transformer=transformer.eval(),
                                scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0,
                                                                          stochastic_sampling=True))
    params = sum(p.numel() for p in transformer.parameters())
    composer = StableAudio3Composer("bench/stable-audio-3-small", {"precision": "bf16"})
    _attach(composer, pipe)
    built = time.perf_counter() - t0
    result = _run(composer, seconds)
    result.update(model="stable-audio-3 small music shape", steps=composer.steps_per_window(),
                  dit_params_m=round(params / 1e6), build_s=built)
    return result


def worker_musicgen(seconds: float) -> dict:
    import torch

    from manga2music.composers.musicgen import MusicgenComposer
    from musicgen_arch import build_random_musicgen

    path = build_random_musicgen("small", torch.bfloat16)
    composer = MusicgenComposer(str(path), {"precision": "bf16", "offline": True})
    composer._load()
    result = _run(composer, seconds)
    result.update(model="musicgen-small", steps=int(seconds * 50) + 3)
    return result


WORKERS = {"musicgen": (worker_musicgen, 5.0), "ace": (worker_ace, 10.0), "sao": (worker_sao, 3),
           "sa3": (worker_sa3, 10.0), "sa3-60": (worker_sa3, 60.0)}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        fn, arg = WORKERS[sys.argv[2]]
        print("RESULT " + json.dumps(fn(arg)), flush=True)
        return
    results = []
    names = sys.argv[1:] or ["musicgen", "ace", "sao", "sa3", "sa3-60"]
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--worker", name], capture_output=True, text=True,
                              env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(f"{name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(line[7:]))
        print(results[-1], flush=True)
    base = next((r for r in results if r["model"] == "musicgen-small"), None)
    for r in results:
        if r["model"].startswith("stable-audio-open") and r.get("step_s"):
            # the model card's 100 steps: the measured run less its own steps, plus 100 steps at the measured rate
            r["wall_100_steps_s"] = r["wall_s"] - r["steps"] * r["step_s"] + 100 * r["step_s"]
        wall = r.get("wall_100_steps_s", r["wall_s"])
        r["audio_s_per_wall_s"] = r["audio_s"] / wall
        if base:
            r["vs_musicgen_small"] = r["audio_s_per_wall_s"] / (base["audio_s"] / base["wall_s"])
    # the full set writes diffusion.json; a subset (``diffusion_bench.py musicgen sa3``) its own file
    stem = "diffusion" if not sys.argv[1:] else "diffusion-" + "-".join(names)
    out = ROOT / "benchmarks" / "results" / f"{stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print("| model | audio s | steps | wall s | audio s per wall s | vs musicgen-small |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        wall = r.get("wall_100_steps_s", r["wall_s"])
        note = f" (100 steps extrapolated from {r['steps']} timed)" if "wall_100_steps_s" in r else ""
        print(f"| {r['model']}{note} | {r['audio_s']:g} | {100 if note else r['steps']} | {wall:.1f} | "
              f"{r['audio_s_per_wall_s']:.2f} | {r.get('vs_musicgen_small', float('nan')):.2f}x |")


if __name__ == "__main__":
    main()
