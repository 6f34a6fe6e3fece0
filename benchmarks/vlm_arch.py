"""The real llava-interleave-qwen-0.5b architecture with random weights, built offline.

Compute cost does not depend on weight values, so a model with the checkpoint's
exact shapes times like the real one.  ``build_random_llava_interleave(folder)``
writes a folder that :class:`~manga2music.describers.transformers_vlm.TransformersDescriber`
loads exactly like ``llava-hf/llava-interleave-qwen-0.5b-hf``:

- vision: SigLIP so400m, 26 layers x 1152 wide (16 heads, MLP 4304), 384 px
  images in 14 px patches -> 27 x 27 = 729 image tokens per page;
- projector: 2-layer GELU MLP 1152 -> 1024 -> 1024;
- text: Qwen1.5-0.5B (``model_type`` qwen2), 24 layers x 1024 wide, 16 heads
  (16 KV heads), MLP 2816, vocabulary 152,000 (tied embeddings), 32k context.

(Taken from the checkpoint's ``config.json`` on the Hub; 0.87 B parameters, 1.73 GB in bf16.)

The tokenizer is the one thing that is not the real one (its vocabulary cannot
be downloaded here): a byte-level BPE trained on the project's own prompts and
typical answers, so prompt and answer token counts stay close to Qwen's (about
one token per word).  The model's vocabulary is still 152,000 wide, so the
output layer costs what it costs on the real model.

Random weights write gibberish, which the describer would rightly refuse; the
benchmark therefore passes :class:`ScriptedAnswers` as a logits processor: it
forces a realistic JSON analysis for requests with pages and a realistic
description for text-only requests, then the end-of-turn token.  Every other
step (processor, vision tower, prefill, sampling loop, parsing) is the real path.
"""

from __future__ import annotations

import json
from pathlib import Path

#: the checkpoint's shapes (config.json of llava-hf/llava-interleave-qwen-0.5b-hf)
TEXT = dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=24, num_attention_heads=16,
            num_key_value_heads=16, vocab_size=152000, max_position_embeddings=32768,
            rope_theta=1000000.0, tie_word_embeddings=True)
VISION = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=26, num_attention_heads=16,
              image_size=384, patch_size=14, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
              vision_use_head=False)
IMAGE_TOKENS_PER_PAGE = (384 // 14) ** 2  # 729

#: the checkpoint's chat template: images first, then the text, ChatML turns
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{% endif %}{{'<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

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


def _corpus() -> list[str]:
    """Text the benchmark tokenizer is trained on: our prompts and typical answers."""
    from manga2music.analysis import SectionAnalysis
    from manga2music.prompts import merge_prompt, single_stage_prompt, stage1_prompt, stage2_prompt

    analysis = SectionAnalysis(**json.loads(ANALYSIS_ANSWER))
    return [stage1_prompt(1), stage1_prompt(8), stage2_prompt(analysis), single_stage_prompt(4),
            merge_prompt([DESCRIPTION_ANSWER]), ANALYSIS_ANSWER, DESCRIPTION_ANSWER] * 3


def build_tokenizer():
    """A Qwen2-style byte-level BPE with ChatML and ``<image>`` special tokens, trained offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=4000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    bpe.train_from_iterator(_corpus(), trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, eos_token="<|im_end|>",
                               pad_token="<|endoftext|>", extra_special_tokens={"image_token": "<image>"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<image>"]})
    return tokenizer


def llava_interleave_config(image_token_index: int, eos_token_id: int):
    """The checkpoint's LlavaConfig (see the module docstring)."""
    from transformers import LlavaConfig, Qwen2Config, SiglipVisionConfig

    return LlavaConfig(
        vision_config=SiglipVisionConfig(**VISION),
        text_config=Qwen2Config(**TEXT, eos_token_id=eos_token_id),
        image_token_index=image_token_index,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_seq_length=IMAGE_TOKENS_PER_PAGE,
        tie_word_embeddings=True,
    )


def build_random_llava_interleave(folder: str | Path, dtype: str = "bf16") -> Path:
    """Write the random-weight model, processor and tokenizer to ``folder`` (skipped when already there)."""
    folder = Path(folder)
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return folder
    import torch
    from transformers import GenerationConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    tokenizer = build_tokenizer()
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    image_processor = SiglipImageProcessorPil(size={"height": 384, "width": 384})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                               vision_feature_select_strategy="full", chat_template=CHAT_TEMPLATE)
    torch.manual_seed(0)
    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
    model = LlavaForConditionalGeneration._from_config(llava_interleave_config(image_id, eos_id), dtype=torch_dtype)
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=tokenizer.pad_token_id)
    tmp = folder.with_name(folder.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    tmp.rename(folder)
    return folder


class ScriptedAnswers:
    """A logits processor that makes a random model answer like a real one.

    Requests that carry pages (the prompt holds the image token) get
    :data:`ANALYSIS_ANSWER`; text-only requests get :data:`DESCRIPTION_ANSWER`;
    then the end-of-turn token.  A new request is recognised by a sequence length
    that is not the previous one plus one.
    """

    def __init__(self, tokenizer, image_token_id: int):
        self.image_token_id = int(image_token_id)
        eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
        encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        self.scripts = {True: encode(ANALYSIS_ANSWER) + [eos], False: encode(DESCRIPTION_ANSWER) + [eos]}
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
    from transformers import AutoTokenizer, LogitsProcessorList

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    return {"logits_processor": LogitsProcessorList([ScriptedAnswers(tokenizer, image_id)])}
