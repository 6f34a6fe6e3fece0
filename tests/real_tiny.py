"""Tiny random-weight models with real checkpoints' tokenizers, processors, chat templates and configs.

``build_tiny(name, folder)`` writes a model folder that loads through the same
``from_pretrained(folder)`` path as the Hub id: every non-weight file is the
real one (:func:`real_checkpoints.real_files`), and ``config.json`` is the
real config with only depths and widths shrunk (:data:`SHRINK`).  The
vocabulary size, special and image token ids, context length, image size,
patch and merge sizes, MusicGen's codebooks and sample rate all stay real, so a
page costs exactly as many image tokens as on the real model, and the prompt
is tokenized by the real tokenizer.  Weights are random (a 151,936 x 32
embedding is the biggest part: about 20 MB), so answers are gibberish unless a
test scripts them (:func:`script_answer`).

Names: see :data:`real_checkpoints.CHECKPOINTS` (``llava-interleave-qwen-0.5b``,
``qwen2-vl-2b``, ``qwen2.5-vl-3b``, ``smolvlm2-256m``, ``musicgen-small``,
``musicgen-stereo-small``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import real_checkpoints

#: tiny widths and depths; everything not named here keeps the checkpoint's value
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)


def _set(obj, **values) -> None:
    for key, value in values.items():
        setattr(obj, key, value)
    layer_types = getattr(obj, "layer_types", None)
    if "num_hidden_layers" in values and layer_types:  # one entry per layer (full / sliding attention)
        obj.layer_types = list(layer_types[: values["num_hidden_layers"]])


def _shrink_llava(config) -> None:
    # Qwen1.5 has as many key/value heads as query heads: keep it so
    _set(config.text_config, **TEXT, num_key_value_heads=TEXT["num_attention_heads"])
    _set(config.vision_config, **VISION)


def _shrink_qwen_text(text) -> None:
    _set(text, **TEXT, num_key_value_heads=1)
    # M-RoPE splits each head's rotary half into (time, height, width) sections: 16:24:24 of 64 on the
    # real model, the same 2:3:3 ratio of the tiny head's 8
    head_half = TEXT["hidden_size"] // TEXT["num_attention_heads"] // 2
    section = [head_half * 2 // 8, head_half * 3 // 8, head_half * 3 // 8]
    text.rope_parameters = dict(text.rope_parameters, mrope_section=section)


def _shrink_qwen2_vl(config) -> None:
    _shrink_qwen_text(config.text_config)
    _set(config.vision_config, depth=1, embed_dim=32, num_heads=2, hidden_size=TEXT["hidden_size"])


def _shrink_qwen2_5_vl(config) -> None:
    _shrink_qwen_text(config.text_config)
    _set(config.vision_config, depth=2, hidden_size=32, intermediate_size=64, num_heads=2,
         out_hidden_size=TEXT["hidden_size"], fullatt_block_indexes=[1])


def _shrink_smolvlm(config) -> None:
    _set(config.text_config, **TEXT, num_key_value_heads=1,
         head_dim=TEXT["hidden_size"] // TEXT["num_attention_heads"])
    _set(config.vision_config, **VISION)


def _shrink_musicgen(config) -> None:
    _set(config.text_encoder, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    _set(config.audio_encoder, num_filters=4, hidden_size=8, codebook_dim=8, num_lstm_layers=1)
    _set(config.decoder, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, ffn_dim=32)


SHRINK = {
    "llava": _shrink_llava,
    "qwen2_vl": _shrink_qwen2_vl,
    "qwen2_5_vl": _shrink_qwen2_5_vl,
    "smolvlm": _shrink_smolvlm,
    "musicgen": _shrink_musicgen,
}


def tiny_config(name: str, folder: str | Path):
    """The real config.json of ``name`` (already in ``folder``) with depths and widths shrunk."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(folder))
    SHRINK[config.model_type](config)
    return config


def build_tiny(name: str, folder: str | Path, *, seed: int = 0) -> Path:
    """Real files + a shrunk config + random weights in ``folder``; loads like the Hub id."""
    import torch

    folder = real_checkpoints.real_files(name, folder)
    config = tiny_config(name, folder)
    torch.manual_seed(seed)
    if config.model_type == "musicgen":
        from tiny_musicgen import _make_codec_audible
        from transformers import MusicgenForConditionalGeneration

        model = MusicgenForConditionalGeneration(config).eval()
        _make_codec_audible(model.audio_encoder)
    else:
        from transformers import AutoModelForImageTextToText

        model = AutoModelForImageTextToText.from_config(config).eval()
    model.save_pretrained(folder)
    # save_pretrained rewrote generation_config.json from the model: put the checkpoint's own back
    for file_name, source in real_checkpoints.committed_files(name).items():
        if file_name == "generation_config.json":
            shutil.copyfile(source, folder / file_name)
    return folder


def script_answer(folder: str | Path, text: str, *, after: str, end: str) -> None:
    """Make the model in ``folder`` answer ``text`` to every prompt that ends with ``after``.

    Writes a ``sequence_bias`` into the folder's generation_config.json: for
    each token of the answer, a large bias when the input ends with ``after``
    and the answer so far.  It is an ordinary generation setting, so the model
    answers this way through any path (CLI, API) that loads the folder, with
    sampling on.  ``end`` is the end-of-turn token that closes the answer.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    anchor = tokenizer.encode(after, add_special_tokens=False)
    answer = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.convert_tokens_to_ids(end)]
    bias = [[anchor + answer[: i + 1], 1000.0] for i in range(len(answer))]
    path = Path(folder) / "generation_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["sequence_bias"] = bias
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
