"""Tiny random vision-language models, one per family the transformers describer supports.

Each builder writes a folder with ``save_pretrained`` (config, weights,
tokenizer, image processor, chat template) that loads back exactly like a Hub
id.  Everything is built offline in a second or two: a byte-level BPE trained
with ``tokenizers`` on a few sentences, 2-layer models with hidden size 32 and
32-pixel images, a few hundred KB on disk.  The weights are random, so the
models write gibberish: the tests check the plumbing, not the prose.

Families:

- ``llava_onevision``: LLaVA-OneVision (SigLIP + Qwen2), the nested multi-image
  path.  Per page in multi-image mode: ``(32/8)**2 + 1 = 17`` image tokens
  (16 patches + the image-newline token; the real model: 729 + 1 = 730).
- ``llava``: LLaVA-NeXT-Interleave as converted by llava-hf (``model_type
  "llava"``, SigLIP + Qwen2, ``vision_feature_select_strategy "full"``): 16
  image tokens per page (the real model: 729).
- ``qwen2_vl``: Qwen2-VL, pages resized to at most 32x32 px: 16 image tokens
  per 32x32 page ((32/4)**2 patches merged 2x2).
- ``qwen3_vl``: Qwen3-VL (its own vision tower with DeepStack features and
  interleaved M-RoPE, Qwen2-VL's image processor), the same 16 tokens a page.
  No real Qwen3-VL files were available: this one only shows the family runs
  through the describer and its processor loads without torchvision.

The real checkpoints' tokenizers, processors and chat templates are in
``tests/real_tiny.py`` (``build_tiny(name, folder)``).
"""

from __future__ import annotations

import json
from pathlib import Path

#: a few sentences for the tokenizer (JSON-ish text too, so answers tokenize compactly)
CORPUS = [
    "The hero runs across the rooftops at night while rain falls on the city.",
    "Two friends talk quietly in a cafe; soft piano and warm strings.",
    '{"genre": "action", "atmosphere": "tense", "focus": "visual", "pacing": "fast", "plot": "a chase"}',
    "Look at these manga pages and describe the music: tempo, key, mood and instruments.",
    "Slow ambient pads in D minor at 70 BPM, gentle and melancholic.",
]

#: image tokens per page each tiny family puts in the prompt (see the module docstring)
IMAGE_TOKENS_PER_PAGE = {"llava_onevision": 17, "llava": 16, "qwen2_vl": 16, "qwen3_vl": 16}

#: context length of the tiny text models (small, so chunk-size arithmetic is visible)
TINY_CONTEXT = 1024

#: ChatML-style templates with image entries, like the real checkpoints' (shortened)
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>\n{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN2_VL_CHAT_TEMPLATE = LLAVA_CHAT_TEMPLATE.replace(
    "<image>\n", "<|vision_start|><|image_pad|><|vision_end|>"
)

IMAGE_SIZE = 32
PATCH = 8


def qwen2_tokenizer(special_tokens: list[str], named: dict[str, str]):
    """A byte-level BPE (Qwen2's scheme) trained on :data:`CORPUS`, with the given special tokens.

    ``named`` become tokenizer attributes (e.g. ``image_token`` -> ``tokenizer.image_token``),
    which is how v5 processors find their image token.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1000,  # the corpus runs out of merges at about 450
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]  # tuples, not lists
    tokenizer = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=merges,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=named,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", *special_tokens]})
    return tokenizer


def _text_config(vocab_size: int, **extra):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=TINY_CONTEXT,
        tie_word_embeddings=True,
        **extra,
    )


def _siglip_config():
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH,
        vision_use_head=False,
    )


def _save(model, processor, tokenizer, folder: Path, video_config: dict | None = None) -> Path:
    """save_pretrained both, under the stock processor class name (as on the Hub).

    ``video_config``: the video processor's settings, written as the Hub checkpoints
    have them (``video_preprocessor_config.json``), so stock ``AutoProcessor`` loads the
    folder where torchvision works; building the video processor itself needs torchvision.
    """
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tokenizer.pad_token_id
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    # built with our torchvision-free subclass (vlm_processors): record the stock class, like a Hub checkpoint
    for name in ("processor_config.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if "processor_class" in data:
                data["processor_class"] = data["processor_class"].replace("ImageOnlyProcessor", "Processor")
                path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    if video_config is not None:
        (folder / "video_preprocessor_config.json").write_text(json.dumps(video_config, indent=2), encoding="utf-8")
    return folder


def build_llava_onevision(folder: Path) -> Path:
    """LLaVA-OneVision (SigLIP + Qwen2): anyres for one image, 16+1 tokens per page for several."""
    import torch
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
        LlavaOnevisionImageProcessorPil,
    )

    from manga2music.describers.vlm_processors import image_only_processors

    tokenizer = qwen2_tokenizer(["<image>", "<video>"], {"image_token": "<image>", "video_token": "<video>"})
    pinpoints = [[IMAGE_SIZE, IMAGE_SIZE], [IMAGE_SIZE, 2 * IMAGE_SIZE], [2 * IMAGE_SIZE, IMAGE_SIZE], [2 * IMAGE_SIZE, 2 * IMAGE_SIZE]]
    image_processor = LlavaOnevisionImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_grid_pinpoints=pinpoints
    )
    processor = image_only_processors()["LlavaOnevisionProcessor"](
        image_processor=image_processor,
        tokenizer=tokenizer,
        num_image_tokens=(IMAGE_SIZE // PATCH) ** 2,
        vision_feature_select_strategy="full",
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    config = LlavaOnevisionConfig(
        vision_config=_siglip_config(),
        text_config=_text_config(len(tokenizer)),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full",
    )
    torch.manual_seed(0)
    video = {"video_processor_type": "LlavaOnevisionVideoProcessor", "size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE}}
    return _save(LlavaOnevisionForConditionalGeneration(config), processor, tokenizer, folder, video)


def build_llava_interleave(folder: Path) -> Path:
    """LLaVA-NeXT-Interleave as llava-hf converted it: model_type "llava", one image = 16 tokens."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    tokenizer = qwen2_tokenizer(["<image>"], {"image_token": "<image>"})
    image_processor = SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="full",
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config=_siglip_config(),
        text_config=_text_config(len(tokenizer)),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    return _save(LlavaForConditionalGeneration(config), processor, tokenizer, folder)


def build_qwen2_vl(folder: Path) -> Path:
    """Qwen2-VL: dynamic resolution, pages capped at 32x32 px -> 16 merged patches each."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from manga2music.describers.vlm_processors import image_only_processors

    specials = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = qwen2_tokenizer(specials, {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"})
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=16 * 16, max_pixels=IMAGE_SIZE * IMAGE_SIZE, patch_size=4, merge_size=2, temporal_patch_size=2
    )
    processor = image_only_processors()["Qwen2VLProcessor"](
        image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN2_VL_CHAT_TEMPLATE
    )
    ids = tokenizer.convert_tokens_to_ids
    text = _text_config(len(tokenizer)).to_dict()
    text.update(model_type="qwen2_vl_text", rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
    config = Qwen2VLConfig(
        text_config=text,
        vision_config=dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=4, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    video = {
        "video_processor_type": "Qwen2VLVideoProcessor",
        "size": {"shortest_edge": 16 * 16, "longest_edge": IMAGE_SIZE * IMAGE_SIZE},
        "patch_size": 4,
        "merge_size": 2,
        "temporal_patch_size": 2,
    }
    return _save(Qwen2VLForConditionalGeneration(config), processor, tokenizer, folder, video)


def build_qwen3_vl(folder: Path) -> Path:
    """Qwen3-VL: Qwen2-VL's image processor and tokens, its own vision tower; 16 merged patches a 32x32 page."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from manga2music.describers.vlm_processors import image_only_processors

    specials = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = qwen2_tokenizer(specials, {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"})
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=16 * 16, max_pixels=IMAGE_SIZE * IMAGE_SIZE, patch_size=4, merge_size=2, temporal_patch_size=2
    )
    processor = image_only_processors()["Qwen3VLProcessor"](
        image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN2_VL_CHAT_TEMPLATE
    )
    ids = tokenizer.convert_tokens_to_ids
    text = _text_config(len(tokenizer)).to_dict()
    text.update(model_type="qwen3_vl_text", head_dim=16,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [3, 3, 2],
                                 "mrope_interleaved": True})
    config = Qwen3VLConfig(
        text_config=text,
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=4,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32,
                           num_position_embeddings=64, deepstack_visual_indexes=[1]),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    video = {"video_processor_type": "Qwen3VLVideoProcessor", "size": {"shortest_edge": 16 * 16,
             "longest_edge": IMAGE_SIZE * IMAGE_SIZE}, "patch_size": 4, "merge_size": 2, "temporal_patch_size": 2}
    return _save(Qwen3VLForConditionalGeneration(config), processor, tokenizer, folder, video)


BUILDERS = {
    "llava_onevision": build_llava_onevision,
    "llava": build_llava_interleave,
    "qwen2_vl": build_qwen2_vl,
    "qwen3_vl": build_qwen3_vl,
}


def build_all(root: Path) -> dict[str, Path]:
    """Every tiny family under ``root/<family>``."""
    return {family: build(root / family) for family, build in BUILDERS.items()}
