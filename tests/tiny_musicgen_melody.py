"""A tiny random MusicGen-melody, built offline and saved like a Hub checkpoint.

The same 32 kHz / 50 Hz / 4 x 2048 code layout, T5 text encoder and audible
EnCodec as :mod:`tests.tiny_musicgen`, with the melody model's 12-bin
chromagram conditioning (``MusicgenMelodyFeatureExtractor``, real STFT sizes).
"""

from __future__ import annotations

import json
from pathlib import Path

PREPROCESSOR = {
    "chunk_length": 30, "feature_extractor_type": "MusicgenMelodyFeatureExtractor", "feature_size": 12,
    "hop_length": 4096, "n_fft": 16384, "num_chroma": 12, "padding_side": "left", "padding_value": 0.0,
    "processor_class": "MusicgenMelodyProcessor", "return_attention_mask": True, "sampling_rate": 32000,
    "stem_indices": [3, 2],
}


def build_tiny_musicgen_melody(path: Path, *, seed: int = 0) -> Path:
    import torch
    from transformers import (
        GenerationConfig,
        MusicgenMelodyConfig,
        MusicgenMelodyDecoderConfig,
        MusicgenMelodyForConditionalGeneration,
    )

    from tests.tiny_musicgen import _make_codec_audible, _tokenizer, tiny_musicgen_config

    tokenizer = _tokenizer()
    base = tiny_musicgen_config(text_vocab_size=len(tokenizer))
    decoder = MusicgenMelodyDecoderConfig(
        vocab_size=2048, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, ffn_dim=32, num_codebooks=4,
        audio_channels=1, max_position_embeddings=2048, pad_token_id=2048, bos_token_id=2048,
        decoder_start_token_id=2048,
    )
    config = MusicgenMelodyConfig(text_encoder=base.text_encoder, audio_encoder=base.audio_encoder, decoder=decoder,
                                  num_chroma=12, chroma_length=235)
    torch.manual_seed(seed)
    model = MusicgenMelodyForConditionalGeneration(config).eval()
    _make_codec_audible(model.audio_encoder)
    with torch.no_grad():  # at init (std 0.02) the chroma barely moves the logits: let it steer them
        model.audio_enc_to_dec_proj.weight.normal_(0.0, 2.0)
        for layer in model.decoder.model.decoder.layers:
            layer.self_attn.k_proj.weight.normal_(0.0, 0.5)
            layer.self_attn.q_proj.weight.normal_(0.0, 0.5)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=2048, bos_token_id=2048, pad_token_id=2048,
        do_sample=True, guidance_scale=3.0, max_length=1500, top_k=250,
    )
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    # the real checkpoint's feature-extractor settings (the extractor class itself needs torchaudio)
    (path / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2))
    return path
