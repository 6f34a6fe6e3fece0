"""How much memory a local VLM needs for one request, from its config and the pages' token cost.

The weights are the big fixed part (``download_gb`` in the registry, for bf16
checkpoints); what grows with the chunk is the text model's key/value cache:
two tensors (key and value) per layer, each ``key/value heads x head size``
wide, for every prompt token.  A chunk of 8 pages is 8 x the page's image
tokens plus the prompt, so models without grouped-query attention pay a lot:

================================  ============  ================  ========  ==============
model (real config.json)          KV per token  tokens, 8 pages   KV cache  KV + prefill
================================  ============  ================  ========  ==============
llava-interleave-qwen-0.5b        96 KB         8 x 729 + 250     0.56 GB   0.70 GB
llava-interleave-qwen-7b          512 KB        8 x 729 + 250     2.97 GB   3.53 GB
Qwen2-VL-2B                       28 KB         8 x 2,225 + 250   0.48 GB   1.59 GB
Qwen2.5-VL-3B                     36 KB         8 x 2,225 + 250   0.62 GB   2.01 GB
SmolVLM2-256M                     22.5 KB       8 x 863 + 250     0.15 GB   0.25 GB
================================  ============  ================  ========  ==============

(Tokens per page measured with each checkpoint's real processor on a
1600 x 1100 page; see the README's model table.)  The prefill's other
temporaries are one layer's MLP activations, ``tokens x intermediate size``
a few times over, freed layer by layer.
"""

from __future__ import annotations


def _text_config(config):
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def kv_bytes_per_token(config, itemsize: int = 2) -> int:
    """Bytes of key/value cache one prompt token costs in the text model."""
    text = _text_config(config)
    heads = int(text.num_attention_heads)
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // heads)
    return 2 * int(text.num_hidden_layers) * kv_heads * head_dim * itemsize


def prefill_bytes(config, tokens: int, itemsize: int = 2) -> int:
    """Key/value cache for ``tokens`` plus the largest per-layer temporaries of their prefill (rough)."""
    text = _text_config(config)
    width = int(getattr(text, "intermediate_size", 0) or 4 * text.hidden_size)
    activations = tokens * (3 * width + 4 * int(text.hidden_size)) * itemsize
    return tokens * kv_bytes_per_token(config, itemsize) + activations


def patches_per_image_token(config) -> int:
    """Vision-tower patches behind one image token: merge size squared (Qwen), scale factor squared (SmolVLM)."""
    vision = getattr(config, "vision_config", None)
    merge = getattr(vision, "spatial_merge_size", None)
    if merge:
        return int(merge) ** 2
    scale = getattr(config, "scale_factor", None)
    return int(scale) ** 2 if scale else 1


def vision_bytes(config, image_tokens: int, itemsize: int = 2) -> int:
    """The vision tower's largest per-layer temporaries for ``image_tokens`` worth of pages (rough).

    The tower runs every patch of the chunk at once through each MLP (attention
    stays within an image or tile), so this grows with the chunk like the cache.
    """
    vision = getattr(config, "vision_config", None)
    if vision is None:
        return 0
    hidden = int(getattr(vision, "embed_dim", None) or vision.hidden_size)
    width = int(getattr(vision, "intermediate_size", None) or hidden * int(getattr(vision, "mlp_ratio", 4) or 4))
    patches = image_tokens * patches_per_image_token(config)
    return patches * (3 * width + 4 * hidden) * itemsize


def request_bytes(config, prompt_tokens: int, image_tokens: int, itemsize: int = 2) -> int:
    """Memory one request needs beyond the weights: the larger of the vision and text peaks.

    The vision tower finishes (and frees its temporaries) before the text model's
    prefill starts; the key/value cache then stays for the whole answer.
    ``prompt_tokens`` counts the image tokens too.
    """
    return max(prefill_bytes(config, prompt_tokens, itemsize), vision_bytes(config, image_tokens, itemsize))


def chunk_bytes(config, pages: int, tokens_per_page: int, prompt_tokens: int = 250, itemsize: int = 2) -> int:
    """:func:`request_bytes` of ``pages`` pages of ``tokens_per_page`` image tokens and a ``prompt_tokens`` prompt."""
    image_tokens = pages * tokens_per_page
    return request_bytes(config, image_tokens + prompt_tokens, image_tokens, itemsize)
