"""A tiny random MusicGen, built offline, saved like a Hub checkpoint.

The real architecture's shapes where they matter to the composer (32 kHz,
50 frames/s, 4 codebooks of 2048 codes, a T5 text encoder, the codebook
delay pattern), with a few thousand weights instead of 300 million: a few MB
on disk and sub-second generation, so tests can run the real transformers
code path end to end.
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
]


def _tokenizer():
    """A T5 tokenizer whose Unigram vocabulary is trained on a few sentences (no download)."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=120, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(SENTENCES * 4, trainer=trainer)
    vocab = [(piece, float(score)) for piece, score in json.loads(tok.to_str())["model"]["vocab"]]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def tiny_musicgen_config(*, stereo: bool = False, text_vocab_size: int = 128):
    """A MusicgenConfig with the real 32 kHz / 50 Hz / 4x2048 code layout and tiny layers."""
    from transformers import EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, T5Config

    text = T5Config(
        vocab_size=text_vocab_size, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, n_positions=512,
    )
    audio = EncodecConfig(
        sampling_rate=32000, audio_channels=1, num_filters=4, num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 4], hidden_size=8, codebook_size=2048, codebook_dim=8,
        target_bandwidths=[2.2], num_lstm_layers=1, use_causal_conv=False, normalize=False,
        chunk_length_s=None, overlap=None,
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=2048, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, ffn_dim=32,
        num_codebooks=8 if stereo else 4, audio_channels=2 if stereo else 1, max_position_embeddings=2048,
        pad_token_id=2048, bos_token_id=2048, decoder_start_token_id=2048,
    )
    return MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder)


def _set_weight(conv, weight) -> None:
    """Set a weight-normed conv's effective weight (g * v / |v|) to ``weight``."""
    import torch

    wn = conv.parametrizations.weight
    g = wn.original0
    dims = [d for d in range(weight.dim()) if g.shape[d] == 1]
    wn.original1.copy_(weight)
    g.copy_(torch.linalg.vector_norm(weight, dim=dims, keepdim=True))


def _make_codec_audible(codec) -> None:
    """Shape the random EnCodec decoder so its audio behaves like sound, not like its init.

    At random init every codebook vector is zero (all codes decode to the same
    sound) and the biases swamp everything.  Here each code gets its own
    vector, the biases go, residual branches are switched off and every
    upsampling layer becomes linear interpolation.  The result: audio that
    depends on every code, moves smoothly from sample to sample (so a badly
    joined seam shows as a jump), has no DC offset and a standard deviation
    near 0.2; and its encoder turns different audio into different codes.
    """
    import torch
    from transformers.models.encodec.modeling_encodec import EncodecConvTranspose1d, EncodecResnetBlock

    with torch.no_grad():
        for layer in codec.quantizer.layers:
            layer.codebook.embed.normal_(0.0, 1.0)
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
        for name, param in codec.decoder.named_parameters():
            if name.endswith("bias"):
                param.zero_()
        for module in codec.decoder.layers:
            if isinstance(module, EncodecResnetBlock):
                module.block[-1].conv.parametrizations.weight.original0.zero_()  # output = shortcut(x)
            elif isinstance(module, EncodecConvTranspose1d):
                conv = module.conv
                stride, size = conv.stride[0], conv.kernel_size[0]
                taps = 1.0 - (torch.arange(size) - (size - 1) / 2).abs() / (size / 2)  # a triangle: linear interpolation
                mix = torch.randn(conv.in_channels, conv.out_channels, 1) / conv.in_channels**0.5
                _set_weight(conv, mix * taps.clamp(min=0.0) * (2.0 / size) * stride)
        # the encoder: no biases, and outputs scaled to the codebooks' unit spread, so that different audio gets
        # different codes (at random init every input lands on the same few codes: a prompt could not matter)
        for name, param in codec.encoder.named_parameters():
            if name.endswith("bias"):
                param.zero_()
        sound = torch.randn(4, 1, codec.config.sampling_rate) * 0.2
        spread = codec.encoder(sound).std(dim=(0, 2))
        encoder_last = codec.encoder.layers[-1].conv
        _set_weight(encoder_last, encoder_last.weight / spread[:, None, None])
        last = codec.decoder.layers[-1].conv
        probe = torch.randint(0, codec.config.codebook_size, (1, 1, codec.quantizer.get_num_quantizers_for_bandwidth(
            codec.config.target_bandwidths[-1]), 200))
        out = codec.decode(probe, [None]).audio_values
        _set_weight(last, last.weight * (0.2 / out.std()))
        last.bias.fill_(-float(codec.decode(probe, [None]).audio_values.mean()))


#: ``attentive`` models: the decoder's matrices scaled by this much (see :func:`build_tiny_musicgen`)
ATTENTIVE_SCALE = 20.0


def build_tiny_musicgen(path: Path, *, stereo: bool = False, seed: int = 0, attentive: bool = False) -> Path:
    """Build a random tiny MusicGen and ``save_pretrained`` model + processor into ``path``.

    The folder then loads through ``from_pretrained(path)`` exactly like a Hub id.
    ``attentive``: the decoder's matrices are scaled up so that each next code depends on the codes before it
    (and on the text) about as much as on the sampler's random draw; at random init the draw decides nearly
    alone, so a test could not tell whether a prompt was used (measured: two different prompts gave the same
    continuation to 1e-7 at scale 1, differing by 0.17 mean absolute at scale 20, against 0.18 for two seeds).
    """
    import torch
    from transformers import (
        EncodecFeatureExtractor,
        GenerationConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
    )

    path = Path(path)
    tokenizer = _tokenizer()
    config = tiny_musicgen_config(stereo=stereo, text_vocab_size=len(tokenizer))
    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(config).eval()
    _make_codec_audible(model.audio_encoder)
    if attentive:
        with torch.no_grad():
            for name, weight in model.decoder.named_parameters():
                if weight.dim() == 2 and any(part in name for part in ("embed_tokens", "proj", "fc", "lm_heads")):
                    weight.mul_(ATTENTIVE_SCALE)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=2048, bos_token_id=2048, pad_token_id=2048,
        do_sample=True, guidance_scale=3.0, max_length=1500, top_k=250,
    )
    extractor = EncodecFeatureExtractor(feature_size=2 if stereo else 1, sampling_rate=32000, padding_value=0.0)
    processor = MusicgenProcessor(feature_extractor=extractor, tokenizer=tokenizer)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
