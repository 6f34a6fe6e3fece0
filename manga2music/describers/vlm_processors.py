"""Loading a vision-language model's processor, with or without torchvision.

transformers 5.x pairs several VLM processors (LLaVA-OneVision, Qwen2-VL,
Qwen2.5-VL, Qwen3-VL, SmolVLM) with a *video* processor, and every video processor needs
torchvision.  manga2music never sends video, and CPU-only installs often have
no torchvision (or one built for another torch, which fails on import).  So
when torchvision is unusable we load the same processor minus its
``video_processor`` part (the ``...ImageOnlyProcessor`` subclasses below) and
ask for the PIL ("slow") image processor instead of the torchvision ("fast")
one.  With a working torchvision, plain ``AutoProcessor`` is used.

Why explicit subclasses rather than one generic wrapper: transformers finds a
processor's parts from its ``__init__`` signature (``get_attributes``), saves
only the parameters named there (``to_dict``), and passes saved settings back
only when they appear in ``__init__``'s *code object* (``from_args_and_dict``
reads ``__code__.co_varnames``).  So each subclass spells out every parameter
but ``video_processor`` and hands ``None`` for it to the original ``__init__``;
``ProcessorMixin.__init__`` then zips the parts given with the parts declared,
the ``None`` video part falls away, and ``processor(...)`` never touches video.

SmolVLM's processor also refuses to start without the ``num2words`` package
(LGPL), which it uses only to write "sixteen frames" into *video* prompts.  The
image-only SmolVLM processor starts without it (:func:`_num2words_only_for_video`),
so manga2music needs neither num2words nor torchvision for SmolVLM; the stock
processor is used whenever both are installed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from typing import Any


@functools.lru_cache(maxsize=1)
def torchvision_usable() -> bool:
    """True when ``import torchvision`` works (installed *and* built for this torch)."""
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401
    except Exception:  # a torchvision built for another torch fails in many ways
        return False
    return True


@functools.lru_cache(maxsize=1)
def image_only_processors() -> dict[str, type]:
    """Processor class name -> the same processor without its video part (built on first use)."""
    from transformers import (
        LlavaOnevisionProcessor,
        ProcessorMixin,
        Qwen2_5_VLProcessor,
        Qwen2VLProcessor,
        Qwen3VLProcessor,
        SmolVLMProcessor,
    )

    class LlavaOnevisionImageOnlyProcessor(LlavaOnevisionProcessor):
        """LLaVA-OneVision's processor without the (torchvision-only) video processor."""

        def __init__(
            self,
            image_processor=None,
            tokenizer=None,
            num_image_tokens=None,
            vision_feature_select_strategy=None,
            chat_template=None,
            image_token="<image>",
            video_token="<video>",
            vision_aspect_ratio="anyres_max_9",
            **kwargs,
        ):
            super().__init__(
                image_processor,
                tokenizer,
                None,
                num_image_tokens=num_image_tokens,
                vision_feature_select_strategy=vision_feature_select_strategy,
                chat_template=chat_template,
                image_token=image_token,
                video_token=video_token,
                vision_aspect_ratio=vision_aspect_ratio,
                **kwargs,
            )

    class Qwen2VLImageOnlyProcessor(Qwen2VLProcessor):
        """Qwen2-VL's processor without the (torchvision-only) video processor."""

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    class Qwen2_5_VLImageOnlyProcessor(Qwen2_5_VLProcessor):
        """Qwen2.5-VL's processor without the (torchvision-only) video processor."""

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    class Qwen3VLImageOnlyProcessor(Qwen3VLProcessor):
        """Qwen3-VL's processor without the (torchvision-only) video processor."""

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    class SmolVLMImageOnlyProcessor(SmolVLMProcessor):
        """SmolVLM's processor without the (torchvision-only) video processor, and without num2words."""

        def __init__(self, image_processor, tokenizer, image_seq_len: int = 169, chat_template=None, **kwargs):
            with _num2words_only_for_video():
                super().__init__(image_processor, tokenizer, None, image_seq_len=image_seq_len,
                                 chat_template=chat_template, **kwargs)

        def apply_chat_template(self, conversation, chat_template=None, **kwargs):
            # SmolVLMProcessor's own version reads the video processor's frame settings first
            return ProcessorMixin.apply_chat_template(self, conversation, chat_template, **kwargs)

    return {
        "LlavaOnevisionProcessor": LlavaOnevisionImageOnlyProcessor,
        "Qwen2VLProcessor": Qwen2VLImageOnlyProcessor,
        "Qwen2_5_VLProcessor": Qwen2_5_VLImageOnlyProcessor,
        "Qwen3VLProcessor": Qwen3VLImageOnlyProcessor,
        "SmolVLMProcessor": SmolVLMImageOnlyProcessor,
    }


@contextlib.contextmanager
def _num2words_only_for_video():
    """Let SmolVLM's processor start without num2words, which it needs only for video prompts.

    ``SmolVLMProcessor.__init__`` raises ImportError when its module-level
    ``num2words`` is None.  For the duration of ``__init__`` that name points at
    a function that would raise the same advice if a video prompt ever called it.
    """
    from transformers.models.smolvlm import processing_smolvlm

    if processing_smolvlm.num2words is not None:
        yield
        return

    def num2words(*_args, **_kwargs):  # pragma: no cover - only video prompts call it
        raise ImportError("SmolVLM video prompts need num2words: pip install num2words")

    processing_smolvlm.num2words = num2words
    try:
        yield
    finally:
        processing_smolvlm.num2words = None


def processor_class_for(model_id: str, **load_kwargs: Any) -> type | None:
    """The processor class ``AutoProcessor`` maps ``model_id``'s config to (None if there is none)."""
    from transformers import AutoConfig
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

    config = AutoConfig.from_pretrained(model_id, **load_kwargs)
    return PROCESSOR_MAPPING.get(type(config), None)


def load_processor(model_id: str, **load_kwargs: Any):
    """``AutoProcessor.from_pretrained`` that also works where torchvision does not.

    ``load_kwargs`` are the usual ``from_pretrained`` arguments (``cache_dir``,
    ``local_files_only``, ``trust_remote_code``).  Where torchvision works the
    stock processor is used; if its video part still cannot be loaded (a folder
    saved without it), the image-only processor is the fallback.
    """
    from transformers import AutoProcessor

    if load_kwargs.get("trust_remote_code"):
        # remote-code processors are the model author's own classes: leave them alone
        return AutoProcessor.from_pretrained(model_id, **load_kwargs)
    if torchvision_usable():
        try:
            return AutoProcessor.from_pretrained(model_id, **load_kwargs)
        except (OSError, ImportError) as err:
            image_only = _image_only_for(model_id, **load_kwargs)
            reason = str(err).lower()
            if image_only is None or ("video" not in reason and "num2words" not in reason):
                raise
            return image_only.from_pretrained(model_id, **load_kwargs)
    image_only = _image_only_for(model_id, **load_kwargs)
    if image_only is None:
        # no video part to leave out (e.g. LLaVA / LLaVA-Interleave): the stock processor, with
        # the PIL image processor (torchvision may be installed but broken: then the default would fail)
        return AutoProcessor.from_pretrained(model_id, backend="pil", **load_kwargs)
    # backend="pil": the slow image processor (PIL + numpy); the fast one imports torchvision
    return image_only.from_pretrained(model_id, backend="pil", **load_kwargs)


def _image_only_for(model_id: str, **load_kwargs: Any) -> type | None:
    """The image-only processor class for ``model_id``'s family, or None if it has no video part."""
    processor_cls = processor_class_for(model_id, **load_kwargs)
    return image_only_processors().get(getattr(processor_cls, "__name__", ""))
