"""The real musicgen-small / musicgen-medium architectures with random weights, built offline.

Compute cost does not depend on weight values, so a model with the
checkpoint's shapes times like the real one.  ``build_random_musicgen(size,
dtype)`` writes a folder that :class:`~manga2music.composers.musicgen.MusicgenComposer`
loads exactly like ``facebook/musicgen-small`` (or ``-medium``):

- text encoder: T5-base encoder, 12 layers x 768 wide (12 heads, FF 3072, ReLU),
  vocabulary 32,128;
- audio codec: EnCodec 32 kHz (64 filters, ratios 8-5-4-4 -> 640 samples per
  frame = 50 frames/s, 2 LSTM layers, 4 codebooks of 2048 codes at 2.2 kbps);
- decoder: 24 layers x 1024 wide, 16 heads, FF 4096 (small: 0.3 B parameters in
  the decoder) or 48 layers x 1536, 24 heads, FF 6144 (medium: 1.5 B); 4 codebooks.

(Shapes as in the checkpoints' ``config.json`` on the Hub.)

The tokenizer is the one thing that is not the real one (T5's SentencePiece
model cannot be downloaded here): a small Unigram vocabulary trained on music
descriptions.  The model's text vocabulary is still 32,128 wide, so the
embedding costs what it costs in the real model.  Random weights make noise,
not music: use these folders for time and memory, never for listening.

    python benchmarks/musicgen_arch.py small --dtype bf16 --seconds 2   # build + one smoke run
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

TEXT = dict(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12,
            relative_attention_num_buckets=32, n_positions=512, feed_forward_proj="relu", dropout_rate=0.1)
CODEC = dict(sampling_rate=32000, audio_channels=1, num_filters=64, num_residual_layers=1,
             upsampling_ratios=[8, 5, 4, 4], hidden_size=128, codebook_size=2048, codebook_dim=128,
             target_bandwidths=[2.2], num_lstm_layers=2, kernel_size=7, last_kernel_size=7,
             residual_kernel_size=3, dilation_growth_rate=2, use_causal_conv=False, pad_mode="reflect",
             compress=2, trim_right_ratio=1.0, norm_type="weight_norm", normalize=False,
             chunk_length_s=None, overlap=None, use_conv_shortcut=False)
DECODERS = {
    "small": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, ffn_dim=4096),
    "medium": dict(hidden_size=1536, num_hidden_layers=48, num_attention_heads=24, ffn_dim=6144),
}

DESCRIPTIONS = [
    "Driving cinematic orchestral action cue at 150 BPM in D minor: pounding taiko drums and staccato low strings "
    "under urgent brass stabs, rising tension with bursts of choir and cymbal swells.",
    "Gentle lo-fi hip hop with warm Rhodes chords, soft vinyl crackle and a lazy swung beat, calm and cosy, "
    "for a quiet conversation in a small cafe on a rainy afternoon.",
    "Dark ambient drone with distant metallic echoes, slow pulsing sub bass and eerie high strings, "
    "unsettling and cold, like an empty corridor at night.",
    "Bright playful comedy theme with pizzicato strings, bouncing bassoon and woodwinds, light percussion "
    "and quick silly runs on the xylophone.",
    "Tender romantic piece for acoustic guitar and flute over soft string pads, slow tempo, warm and intimate, "
    "with a hopeful melody that rises at the end.",
]


def build_tokenizer():
    """A T5 tokenizer with a Unigram vocabulary trained on music descriptions (no download)."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=600, special_tokens=["<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(DESCRIPTIONS * 8, trainer=trainer)
    vocab = [(piece, float(score)) for piece, score in json.loads(tok.to_str())["model"]["vocab"]]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def musicgen_config(size: str = "small"):
    """The MusicgenConfig of facebook/musicgen-``size`` (mono)."""
    from transformers import EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, T5Config

    if size not in DECODERS:
        raise ValueError(f"size must be one of {sorted(DECODERS)}")
    decoder = MusicgenDecoderConfig(vocab_size=2048, num_codebooks=4, audio_channels=1, max_position_embeddings=2048,
                                    activation_function="gelu", dropout=0.1, pad_token_id=2048, bos_token_id=2048,
                                    decoder_start_token_id=2048, **DECODERS[size])
    return MusicgenConfig(text_encoder=T5Config(**TEXT), audio_encoder=EncodecConfig(**CODEC), decoder=decoder)


def default_folder(size: str, dtype) -> Path:
    from manga2music.devices import dtype_name

    return Path(tempfile.gettempdir()) / "manga2music-bench" / f"musicgen-{size}-random-{dtype_name(dtype)}"


def build_random_musicgen(size: str = "small", dtype=None, path: Path | None = None) -> Path:
    """Build facebook/musicgen-``size``'s architecture with random weights in ``dtype``; save model + processor.

    Built directly in ``dtype`` (bf16 keeps peak memory near the model's size).
    Returns the folder (reused when it is already there).
    """
    import torch
    from transformers import (
        EncodecFeatureExtractor,
        GenerationConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
    )

    dtype = dtype or torch.bfloat16
    path = Path(path) if path else default_folder(size, dtype)
    weights = (path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file()
    if (path / "config.json").is_file() and weights:
        return path
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration._from_config(musicgen_config(size), dtype=dtype).eval()
    with torch.no_grad():  # EnCodec's codebooks start as zeros; give them values like a trained codec
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
    model.generation_config = GenerationConfig(decoder_start_token_id=2048, bos_token_id=2048, pad_token_id=2048,
                                               do_sample=True, guidance_scale=3.0, max_length=1500)
    processor = MusicgenProcessor(EncodecFeatureExtractor(feature_size=1, sampling_rate=32000, padding_value=0.0),
                                  build_tokenizer())
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _main() -> None:
    import torch

    from manga2music.composers.base import ComposeRequest
    from manga2music.composers.musicgen import MusicgenComposer
    from manga2music.devices import pick_dtype

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("size", choices=sorted(DECODERS), nargs="?", default="small")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    from manga2music.devices import pick_device

    device = pick_device(args.device)
    dtype = pick_dtype(device, args.dtype)
    t0 = time.perf_counter()
    folder = build_random_musicgen(args.size, dtype, args.folder)
    print(f"model folder {folder} ({time.perf_counter() - t0:.1f} s)")
    composer = MusicgenComposer(str(folder), dict(device=args.device, precision=args.dtype,
                                                            batch_size=args.batch, offline=True))
    reqs = [ComposeRequest(f"t{i}", DESCRIPTIONS[i % len(DESCRIPTIONS)], args.seconds, i) for i in range(args.batch)]
    t1 = time.perf_counter()
    tracks = composer.compose(reqs)
    wall = time.perf_counter() - t1
    audio_s = sum(t.audio.shape[0] / t.sample_rate for t in tracks)
    peak = ""
    if device.startswith("cuda"):
        peak = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    else:
        import resource

        peak = f", peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    print(f"{args.size} {tracks[0].info['precision']} on {tracks[0].info['device']}, batch {args.batch}: "
          f"{audio_s:.1f} s of audio in {wall:.1f} s = {audio_s / wall:.2f} audio s per wall s "
          f"(threads {torch.get_num_threads()}, cpus {os.cpu_count()}){peak}")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
    _main()
