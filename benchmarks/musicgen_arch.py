"""MusicGen with random weights in the real checkpoints' shapes, built offline from their config.json.

Compute cost does not depend on weight values, so a model with the
checkpoint's shapes times like the real one.  ``build_random_musicgen(size,
dtype)`` writes a folder that :class:`~manga2music.composers.musicgen.MusicgenComposer`
loads exactly like ``facebook/musicgen-small`` (or another size):

- ``small`` and ``stereo-small``: the real ``config.json``, tokenizer
  (t5-base's ``spiece.model``), feature extractor and generation config of
  facebook/musicgen-small and facebook/musicgen-stereo-small, from
  ``tests/data/checkpoints`` (how faithful each file is: ``SOURCES.md`` there).
  T5-base text encoder (12 x 768, vocabulary 32,128), EnCodec 32 kHz (640
  samples a frame = 50 frames/s, 4 codebooks of 2048), decoder 24 x 1024, 16
  heads, FF 4096 (stereo: 8 codebooks, 2 audio channels);
- ``medium`` (and ``large``, which compose_bench registers): no copy of those
  checkpoints' files was found, so small's real config with the decoder
  widths of :data:`DECODERS` (48 x 1536, 24 heads, FF 6144 for medium, as in
  facebook/musicgen-medium's config.json on the Hub).

Random weights make noise, not music: use these folders for time and memory,
never for listening.

    python benchmarks/musicgen_arch.py small --dtype bf16 --seconds 2   # build + one smoke run
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # real_checkpoints

#: decoders of the checkpoints whose config.json is not in tests/data/checkpoints (typed from the Hub's)
DECODERS = {
    "medium": dict(hidden_size=1536, num_hidden_layers=48, num_attention_heads=24, ffn_dim=6144),
}
#: the sizes whose real files are here: name -> real_checkpoints name
REAL = {"small": "musicgen-small", "stereo-small": "musicgen-stereo-small"}
SIZES = sorted(set(REAL) | set(DECODERS))

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


def _real_name(size: str) -> str:
    if size not in REAL and size not in DECODERS:
        raise ValueError(f"size must be one of {sorted(set(REAL) | set(DECODERS))}")
    return REAL.get(size, "musicgen-small")


def musicgen_config(size: str = "small"):
    """The MusicgenConfig of facebook/musicgen-``size``: the real config.json, decoder widths swapped for medium/large."""
    from transformers import MusicgenConfig

    import real_checkpoints

    config = MusicgenConfig.from_pretrained(str(real_checkpoints.CHECKPOINTS[_real_name(size)].path))
    for key, value in DECODERS.get(size, {}).items():
        setattr(config.decoder, key, value)
    return config


def default_folder(size: str, dtype) -> Path:
    from manga2music.devices import dtype_name

    root = Path(os.environ.get("M2M_BENCH_CACHE") or Path(tempfile.gettempdir()) / "manga2music-bench")
    return root / f"musicgen-{size}-realcfg-random-{dtype_name(dtype)}"


def build_random_musicgen(size: str = "small", dtype=None, path: Path | None = None) -> Path:
    """Build facebook/musicgen-``size``'s architecture with random weights in ``dtype``, beside its real files.

    Built directly in ``dtype`` (bf16 keeps peak memory near the model's size).
    Returns the folder (reused when it is already there).
    """
    import torch
    from transformers import MusicgenForConditionalGeneration

    import real_checkpoints

    dtype = dtype or torch.bfloat16
    path = Path(path) if path else default_folder(size, dtype)
    weights = (path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file()
    if (path / "config.json").is_file() and weights:
        return path
    name = _real_name(size)
    real_checkpoints.real_files(name, path)  # tokenizer, feature extractor, generation config: the real ones
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration._from_config(musicgen_config(size), dtype=dtype).eval()
    with torch.no_grad():  # EnCodec's codebooks start as zeros; give them values like a trained codec
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
    model.save_pretrained(path)
    shutil.copyfile(real_checkpoints.committed_files(name)["generation_config.json"], path / "generation_config.json")
    return path


def _main() -> None:
    import torch

    from manga2music.composers.base import ComposeRequest
    from manga2music.composers.musicgen import MusicgenComposer
    from manga2music.devices import pick_dtype

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("size", choices=SIZES, nargs="?", default="small")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--repeat", type=int, default=1,
                        help="compose this many times in this process (the first call pays one-off costs)")
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
    walls = []
    for _ in range(max(1, args.repeat)):
        t1 = time.perf_counter()
        tracks = composer.compose(reqs)
        walls.append(time.perf_counter() - t1)
    wall = walls[-1]
    audio_s = sum(t.audio.shape[0] / t.sample_rate for t in tracks)
    peak = ""
    if device.startswith("cuda"):
        peak = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    else:
        import resource

        peak = f", peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    print(f"{args.size} {tracks[0].info['precision']} on {tracks[0].info['device']}, batch {args.batch}: "
          f"{audio_s:.1f} s of audio in {wall:.1f} s = {audio_s / wall:.2f} audio s per wall s "
          f"(each call: {', '.join(f'{w:.1f} s' for w in walls)}) "
          f"(threads {torch.get_num_threads()}, cpus {os.cpu_count()}){peak}")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
    _main()
