"""Vision-language models with random weights in the real checkpoints' shapes, built offline from their files.

Compute cost does not depend on weight values, so a model with the
checkpoint's exact shapes times like the real one.  ``build_random_vlm(name,
folder)`` writes a folder that
:class:`~manga2music.describers.transformers_vlm.TransformersDescriber` loads
exactly like the Hub id: the real ``config.json``, tokenizer, processor
settings, chat template and generation config from ``tests/data/checkpoints``
(how faithful each file is: ``SOURCES.md`` there), plus random weights.

======================  ==========================================  =======================================
name                    checkpoint                                  shapes (from its config.json)
======================  ==========================================  =======================================
``llava-0.5b``          llava-hf/llava-interleave-qwen-0.5b-hf      SigLIP 26 x 1152 at 384 px, Qwen1.5 24 x 1024
``llava-7b``            llava-hf/llava-interleave-qwen-7b-hf        same vision, Qwen1.5-7B 32 x 4096 (0.5b's
                                                                    tokenizer and processor: same family)
``qwen2-vl-2b``         Qwen/Qwen2-VL-2B-Instruct                   ViT 32 x 1280, Qwen2 28 x 1536
``qwen2.5-vl-3b``       Qwen/Qwen2.5-VL-3B-Instruct                 ViT 32 x 1280 (windowed), Qwen2.5 36 x 2048
``smolvlm2-256m``       HuggingFaceTB/SmolVLM2-256M-Video-Instruct  SigLIP 12 x 768 at 512 px tiles, 30 x 576
======================  ==========================================  =======================================

Random weights write gibberish, which the describer would rightly refuse; the
benchmark therefore passes :class:`ScriptedAnswers` as a logits processor: it
forces a realistic JSON analysis for requests with pages and a realistic
description for text-only requests, then the model's end-of-turn token.  The
answers are tokenized by the real tokenizer, so their lengths are the real
model's.  Every other step (processor, vision tower, prefill, sampling loop,
parsing) is the real path.

    python benchmarks/vlm_arch.py qwen2-vl-2b --pages 2   # build once, then describe 2 sample pages
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # real_checkpoints

#: short name -> (real_checkpoints name of the files, real_checkpoints folder of the config, if another)
MODELS = {
    "llava-0.5b": ("llava-interleave-qwen-0.5b", None),
    "llava-7b": ("llava-interleave-qwen-0.5b", "llava-hf__llava-interleave-qwen-7b-hf"),
    "qwen2-vl-2b": ("qwen2-vl-2b", None),
    "qwen2.5-vl-3b": ("qwen2.5-vl-3b", None),
    "smolvlm2-256m": ("smolvlm2-256m", None),
}

#: what a small VLM typically answers (lengths as the real model's answers: ~70 and ~60 words)
ANALYSIS_ANSWER = json.dumps({
    "genre": "action",
    "atmosphere": "tense, urgent and determined, with a flash of fear",
    "focus": "visual",
    "pacing": "fast, because the panels jump between the chase on the rooftops and close-ups of the faces",
    "plot": "A young courier is chased across the rooftops of a rainy city at night by two armed men; "
            "she leaps a gap between buildings and escapes into a crowded market below.",
})
DESCRIPTION_ANSWER = (
    "Driving cinematic orchestral action cue at 150 BPM in D minor: pounding taiko drums and staccato low "
    "strings under urgent brass stabs, a racing ostinato on synth arpeggios, rising tension with bursts of "
    "choir and cymbal swells, relentless and heroic, building to a bold, triumphant climax before a sudden "
    "hush of sustained strings and a single distant piano note."
)


def vlm_config(name: str):
    """The checkpoint's config, read from its real config.json."""
    from transformers import AutoConfig

    import real_checkpoints

    files, config_folder = MODELS[name]
    folder = real_checkpoints.DATA / config_folder if config_folder else real_checkpoints.CHECKPOINTS[files].path
    return AutoConfig.from_pretrained(str(folder))


def build_random_vlm(name: str, folder: str | Path, dtype: str = "bf16") -> Path:
    """Write the random-weight model beside the real files in ``folder`` (skipped when already there)."""
    folder = Path(folder)
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return folder
    import torch
    from transformers import AutoModelForImageTextToText

    import real_checkpoints

    files, _ = MODELS[name]
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    real_checkpoints.real_files(files, tmp)
    torch.manual_seed(0)
    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
    model = AutoModelForImageTextToText.from_config(vlm_config(name), dtype=torch_dtype)
    model.save_pretrained(tmp)
    shutil.copyfile(real_checkpoints.committed_files(files)["generation_config.json"], tmp / "generation_config.json")
    tmp.rename(folder)
    return folder


def build_random_llava_interleave(folder: str | Path, dtype: str = "bf16") -> Path:
    """llava-interleave-qwen-0.5b (what describe_bench times)."""
    return build_random_vlm("llava-0.5b", folder, dtype)


class ScriptedAnswers:
    """A logits processor that makes a random model answer like a real one.

    Requests that carry pages (the prompt holds the image token) get
    :data:`ANALYSIS_ANSWER`; text-only requests get :data:`DESCRIPTION_ANSWER`;
    then the end-of-turn token.  A new request is recognised by a sequence length
    that is not the previous one plus one.
    """

    def __init__(self, tokenizer, image_token_id: int, eos_token_id: int):
        self.image_token_id = int(image_token_id)
        encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        self.scripts = {True: encode(ANALYSIS_ANSWER) + [eos_token_id],
                        False: encode(DESCRIPTION_ANSWER) + [eos_token_id]}
        self._last_len = -1
        self._start = 0
        self._script: list[int] = []

    def __call__(self, input_ids, scores):
        length = int(input_ids.shape[1])
        if length != self._last_len + 1:  # a new request
            self._start = length
            self._script = self.scripts[bool((input_ids[0] == self.image_token_id).any())]
        self._last_len = length
        step = min(length - self._start, len(self._script) - 1)
        forced = scores.new_full(scores.shape, float("-inf"))
        forced[:, self._script[step]] = 0.0
        return forced


def scripted_generate_kwargs(folder: str | Path) -> dict:
    """``generate_kwargs`` for TransformersDescriber that script the answers (see :class:`ScriptedAnswers`)."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig, LogitsProcessorList

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    config = AutoConfig.from_pretrained(str(folder))
    eos = GenerationConfig.from_pretrained(str(folder)).eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    image_id = getattr(config, "image_token_id", None) or config.image_token_index
    return {"logits_processor": LogitsProcessorList([ScriptedAnswers(tokenizer, image_id, eos)])}


def _main() -> None:
    import resource

    import torch

    from describe_bench import sample_pages
    from manga2music.describers.transformers_vlm import TransformersDescriber
    from measure import cache_root

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(MODELS), nargs="?", default="llava-0.5b")
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    folder = cache_root() / f"{args.name}-realcfg-random"
    t0 = time.perf_counter()
    build_random_vlm(args.name, folder)
    print(f"model folder {folder} ({time.perf_counter() - t0:.1f} s)")
    options = dict(device=args.device, precision=args.precision, seed=0, offline=True)
    describer = TransformersDescriber(str(folder), options, generate_kwargs=scripted_generate_kwargs(folder))
    t1 = time.perf_counter()
    describer.load()
    load_s = time.perf_counter() - t1
    pages = sample_pages(args.pages)
    t2 = time.perf_counter()
    result = describer.describe(pages)
    wall = time.perf_counter() - t2
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{args.name} {str(describer.dtype).replace('torch.', '')} on {describer.device}: load {load_s:.1f} s, "
          f"{len(pages)} pages in {wall:.1f} s ({wall / len(pages):.1f} s a page), "
          f"{describer.tokens_per_page} tokens a page (planned), chunk {describer.chunk_size}, "
          f"prompt tokens {result.usage['prompt_tokens']}, answer tokens {result.usage['completion_tokens']}, "
          f"peak RSS {peak:.2f} GiB (threads {torch.get_num_threads()})")


if __name__ == "__main__":
    _main()
