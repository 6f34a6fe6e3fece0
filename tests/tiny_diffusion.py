"""Tiny random diffusers pipelines (ACE-Step 1.5, Stable Audio Open, Stable Audio 3), built offline.

Each builder makes the pipeline's REAL component classes from small configs
(after diffusers' own ``get_dummy_components()`` in its test suite), trains a
tokenizer of the right class on a few sentences, and ``save_pretrained``s the
pipeline into a folder that ``PipelineClass.from_pretrained(folder)`` loads
like a Hub id.  Latent rates match the real models where it matters to the
composer (ACE-Step: 25 latent frames a second); sample rates are low so that
minutes of audio cost little.

Random weights hide behaviour: a random Oobleck decoder turns latents into
sample-to-sample noise, where a click at a seam cannot show.  So
:func:`make_oobleck_audible` shapes the decoder like ``tiny_musicgen`` shapes
EnCodec: upsampling becomes linear interpolation with channel mixing, the
residual branches are switched off and the biases removed.  The audio then
depends on every latent frame and moves smoothly between samples.
"""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "calm piano with soft strings, slow tempo, melancholic evening mood",
    "fast action drums, heavy bass and distorted guitars, tense and loud",
    "lofi hip hop beat with warm keys and vinyl crackle for a quiet talk",
    "bright comedic woodwinds and pizzicato strings, playful and light",
    "dark ambient drone, horror atmosphere, distant metallic echoes",
    "romantic acoustic guitar and gentle flute, warm and tender",
    "# Instruction Fill the audio semantic mask based on the given conditions: # Caption # Metas",
    "- bpm: N/A - timesignature: N/A - keyscale: N/A - duration: 30 seconds # Languages en # Lyric [Instrumental]",
]


def _bpe(special: list[str], vocab_size: int = 200):
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on the sentences above."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(SENTENCES * 4, trainer=trainer)
    return tok


def qwen_like_tokenizer():
    """A fast tokenizer with Qwen's special tokens (what ACE-Step's Qwen3-Embedding uses)."""
    from transformers import PreTrainedTokenizerFast

    tok = _bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   padding_side="left", model_max_length=32768)


def gemma_like_tokenizer():
    """A ``GemmaTokenizer`` (the class Stable Audio 3's T5Gemma uses) with a small trained BPE vocabulary."""
    import json

    from transformers import GemmaTokenizer

    special = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    data = json.loads(_bpe(special).to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["merges"]]
    return GemmaTokenizer(vocab=data["vocab"], merges=merges, model_max_length=256)


def _set_weight(conv, weight) -> None:
    """Set a weight-normed conv's effective weight (``g * v / |v|``) to ``weight``."""
    import torch

    if hasattr(conv, "weight_g"):
        g, v = conv.weight_g, conv.weight_v
    else:
        g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    dims = [d for d in range(weight.dim()) if g.shape[d] == 1]
    v.copy_(weight)
    g.copy_(torch.linalg.vector_norm(weight, dim=dims, keepdim=True))


def make_oobleck_audible(vae, level: float = 0.2) -> None:
    """Shape a random ``AutoencoderOobleck`` decoder so its audio is smooth, centred and depends on every latent."""
    import torch
    from diffusers.models.autoencoders.autoencoder_oobleck import OobleckDecoderBlock, OobleckResidualUnit

    decoder = vae.decoder
    with torch.no_grad():
        for name, param in decoder.named_parameters():
            if name.endswith("bias"):
                param.zero_()
        for module in decoder.modules():
            if isinstance(module, OobleckResidualUnit):
                module.conv2.weight_g.zero_()  # the unit returns its input
            elif isinstance(module, OobleckDecoderBlock):
                conv = module.conv_t1
                stride, size = conv.stride[0], conv.kernel_size[0]
                taps = 1.0 - (torch.arange(size) - (size - 1) / 2).abs() / (size / 2)  # a triangle: interpolation
                mix = torch.randn(conv.in_channels, conv.out_channels, 1) / conv.in_channels**0.5
                _set_weight(conv, mix * taps.clamp(min=0.0) * (2.0 / size) * stride)
        probe = torch.randn(1, vae.config.decoder_input_channels, 64)
        out = decoder(probe)
        _set_weight(decoder.conv2, decoder.conv2.weight * (level / float(out.std())))


def make_same_audible(vae) -> None:
    """Give a random ``AutoencoderSAME`` the weights its init leaves at zero, so its audio depends on the latents.

    Its transformer blocks start as identities (zero output projections), so the
    decoder's resampling blocks would output their learned new tokens whatever
    the latents say: every latent would decode to the same sound.
    """
    import torch

    with torch.no_grad():
        for name, param in vae.named_parameters():
            if name.endswith(("attn.to_out.weight", "ff.proj_out.weight")):
                param.normal_(0.0, 0.3)


def tiny_oobleck(*, sampling_rate: int, latent_dim: int, ratios=(4, 4, 4), seed: int = 0):
    import torch
    from diffusers import AutoencoderOobleck

    torch.manual_seed(seed)
    vae = AutoencoderOobleck(encoder_hidden_size=2 * latent_dim, downsampling_ratios=list(ratios), decoder_channels=4,
                             decoder_input_channels=latent_dim, audio_channels=2,
                             channel_multiples=[1] * len(ratios), sampling_rate=sampling_rate)
    make_oobleck_audible(vae)
    with torch.no_grad():  # without its biases the encoder's latents follow the sound, not the constant
        for name, param in vae.encoder.named_parameters():
            if name.endswith("bias"):
                param.zero_()
    return vae.eval()


def build_tiny_ace_step(path: Path, *, seed: int = 0) -> Path:
    """ACE-Step 1.5 (turbo) at the real 48 kHz and 1,920-sample latent hop (25 latent frames a second)."""
    import torch
    from diffusers import AceStepPipeline, FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import AceStepConditionEncoder
    from transformers import Qwen3Config, Qwen3Model

    acoustic = 8
    torch.manual_seed(seed)
    transformer = AceStepTransformer1DModel(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, in_channels=3 * acoustic, audio_acoustic_hidden_dim=acoustic, patch_size=2, rope_theta=10000.0,
        sliding_window=16, is_turbo=True,
    )
    tokenizer = qwen_like_tokenizer()
    text_encoder = Qwen3Model(Qwen3Config(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=512))
    condition_encoder = AceStepConditionEncoder(
        hidden_size=32, intermediate_size=64, text_hidden_dim=32, timbre_hidden_dim=acoustic,
        num_lyric_encoder_hidden_layers=1, num_timbre_encoder_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, rope_theta=10000.0, sliding_window=16,
    )
    with torch.no_grad():  # the real one holds encoded silence; random values keep the fixture honest
        condition_encoder.silence_latent.normal_(0.0, 0.5)
        # let the timbre encoder hear the difference between references
        condition_encoder.timbre_encoder.embed_tokens.weight.mul_(10.0)
    pipe = AceStepPipeline(
        vae=tiny_oobleck(sampling_rate=48000, latent_dim=acoustic, ratios=(8, 8, 30), seed=seed), text_encoder=text_encoder.eval(),
        tokenizer=tokenizer, transformer=transformer.eval(), condition_encoder=condition_encoder.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0),
    )
    return _save(pipe, path)


def build_tiny_stable_audio_open(path: Path, *, seed: int = 0, window_latents: int = 64) -> Path:
    """Stable Audio Open at the real 44.1 kHz and 2,048-sample latent hop, with a 64-frame window (2.97 s)."""
    import torch
    from diffusers import CosineDPMSolverMultistepScheduler, StableAudioDiTModel, StableAudioPipeline
    from diffusers.pipelines.stable_audio import StableAudioProjectionModel
    from transformers import T5Config, T5EncoderModel

    from tests.tiny_musicgen import _tokenizer

    latent = 8
    torch.manual_seed(seed)
    transformer = StableAudioDiTModel(
        sample_size=window_latents, in_channels=latent, num_layers=2, attention_head_dim=8,
        num_attention_heads=2, num_key_value_attention_heads=1, out_channels=latent, cross_attention_dim=16,
        time_proj_dim=8, global_states_input_dim=32, cross_attention_input_dim=16,
    )
    tokenizer = _tokenizer()
    tokenizer.model_max_length = 64
    text_encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                           num_heads=2, relative_attention_num_buckets=8))
    projection = StableAudioProjectionModel(text_encoder_dim=16, conditioning_dim=16, min_value=0, max_value=512)
    scheduler = CosineDPMSolverMultistepScheduler(solver_order=2, prediction_type="v_prediction", sigma_data=1.0,
                                                  sigma_schedule="exponential", sigma_min=0.3, sigma_max=500)
    pipe = StableAudioPipeline(
        vae=tiny_oobleck(sampling_rate=44100, latent_dim=latent, ratios=(8, 8, 32), seed=seed), text_encoder=text_encoder.eval(),
        projection_model=projection.eval(), tokenizer=tokenizer, transformer=transformer.eval(), scheduler=scheduler,
    )
    return _save(pipe, path)


def build_tiny_stable_audio_3(path: Path, *, seed: int = 0, distilled: bool = True) -> Path:
    """Stable Audio 3 at the real 44.1 kHz, SAME latents of 512 samples (real: 4,096), with the inpainting layers."""
    import torch
    from diffusers import AutoencoderSAME, FlowMatchEulerDiscreteScheduler, StableAudio3Pipeline
    from diffusers.models.transformers.transformer_stable_audio3 import StableAudio3DiTModel
    from diffusers.pipelines.stable_audio_3 import StableAudio3DurationEmbedder
    from transformers import T5GemmaConfig, T5GemmaEncoderModel, T5GemmaModuleConfig

    latent, cond = 8, 16
    torch.manual_seed(seed)
    transformer = StableAudio3DiTModel(
        io_channels=latent, patch_size=1, embed_dim=32, depth=2, num_heads=4, cond_token_dim=cond,
        global_cond_dim=cond, local_add_cond_dim=1 + latent, timestep_features_dim=16, ff_mult=2,
        num_memory_tokens=3, use_differential_attention=False,
    )
    vae = AutoencoderSAME(audio_channels=2, patch_size=256, encoder_channels=8, encoder_c_mults=(2,),
                          encoder_strides=(2,), encoder_transformer_depths=(1,), latent_dim=latent,
                          use_differential_attention=False, dim_heads=4, ff_mult=2, sampling_rate=44100)
    make_same_audible(vae)
    tokenizer = gemma_like_tokenizer()
    module = T5GemmaModuleConfig(vocab_size=len(tokenizer), hidden_size=cond, intermediate_size=32,
                                 num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                                 max_position_embeddings=512, sliding_window=64,
                                 layer_types=["full_attention", "full_attention"])
    text_encoder = T5GemmaEncoderModel(T5GemmaConfig(encoder=module.to_dict(), decoder=module.to_dict(),
                                                     is_encoder_decoder=False))
    pipe = StableAudio3Pipeline(
        vae=vae.eval(), text_encoder=text_encoder.eval(), tokenizer=tokenizer,
        duration_embedder=StableAudio3DurationEmbedder(output_dim=cond, fourier_dim=16).eval(),
        transformer=transformer.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0, stochastic_sampling=distilled),
    )
    return _save(pipe, path)


def _save(pipe, path: Path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(path)
    return path


def as_hub_cache(model_dir: Path, cache: Path, hub_id: str) -> Path:
    """Lay a saved pipeline out like the Hugging Face cache (models--owner--name/snapshots/<rev>/), by symlinks."""
    rev = "0" * 40
    repo = Path(cache) / ("models--" + hub_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(rev)
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    for f in Path(model_dir).iterdir():
        (snap / f.name).symlink_to(f.resolve())
    return cache
