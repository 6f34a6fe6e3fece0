"""Local vision-language models through transformers: LLaVA-Interleave, LLaVA-OneVision, Qwen2-VL, SmolVLM...

One class for every family: the Auto classes (``AutoModelForImageTextToText``,
``AutoProcessor``) pick the right model and processor from the checkpoint's
config, so a new family costs a registry line, not a module.

Each request is one chat turn: a single user message holding every page of
the chunk, in reading order, then the prompt text, rendered with the model's
own chat template.  The pages go to the processor nested as one sample
(``images=[[p1, p2, ...]]``), which is the families' multi-image mode.  For
LLaVA-OneVision that means the base 384 px view of each page, 729 + 1 = 730
image tokens per page, instead of anyres tiling of every page (about 5,000-7,000
tokens each).  Per family, measured with the real checkpoints' processors and
chat templates (``tests/data/checkpoints``) on a 1600 x 1100 two-page spread, a
900 x 1400 page and an 800 x 1120 tile of a tall strip:

==========================  =====================  =======  ============================
family (checkpoint)         image tokens a page    context  pages a request (512 answer)
==========================  =====================  =======  ============================
LLaVA-Interleave (llava-*)  729 / 729 / 729        32,768   8 (the cap; 43 would fit)
Qwen2-VL-2B                 2,225 / 1,602 / 1,162  32,768   8 (the cap; 14 would fit)
Qwen2.5-VL-3B               2,225 / 1,602 / 1,162  128,000  8 (the cap)
SmolVLM2-256M               863 / 863 / 863        8,192    8 (8.2 would fit)
LLaVA-OneVision             730 (27 x 27 + 1)      32,768   8 (no real processor files here)
==========================  =====================  =======  ============================

Qwen's processors keep a page's own resolution (28 x 28 pixels a token, up to
12.8 megapixels), so their cost follows the page's size; SmolVLM cuts every
page into 512 px tiles after scaling its long side to 2,048 (12 tiles + one
global view, 64 tokens each); the LLaVA families resize to 384 x 384.  The
stage-1 prompt and chat template add 225-242 tokens (``PROMPT_RESERVE`` keeps
600).

The pages per request are measured, not tabled: the processor renders a
prompt with two and with three blank pages of each of :data:`PROBE_PAGE_SIZES`,
the largest difference is the cost of a page, and a chunk holds as many pages
as fit in the text model's context after the prompt and the answer, at most
:data:`MAX_PAGES_PER_CHUNK` (more pages per request mean more attention memory
and vaguer answers).  The memory a chunk needs beyond the weights (mostly the
key/value cache of its prompt) is estimated by :mod:`.vlm_memory`.

Sampling follows the original scripts: ``do_sample=True, temperature=0.7``
(other sampling settings come from the checkpoint's generation config); a
every request is seeded with ``--seed``, or without it with a seed drawn for the
section and recorded (``describe.seed``), so a section's answers can be asked again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from .. import registry, settings
from ..devices import is_out_of_memory, load_failure, loading_onto, memory_hint, refuse_random_layers, release_memory
from ..errors import BackendError, ModelUnavailableError, PagesDoNotFitError, WordsDoNotFitError
from ..options import TorchOptions, flag
from ..quiet import load_report_held
from .base import PageImage
from .chat import ChatDescriber, Completion, pages_word
from .vlm_processors import load_processor

#: the original scripts' sampling temperature
TEMPERATURE = 0.7
#: most pages in one request, whatever the context length allows
MAX_PAGES_PER_CHUNK = 8
#: tokens kept for the prompt text and the chat template around the pages (measured: 225-242)
PROMPT_RESERVE = 600
#: blank pages used to measure a page's token cost: a two-page spread scan and a single page; a tile of a
#: tall strip (about 800 x 1120) never costs more than the single page on any family measured
PROBE_PAGE_SIZES = ((1600, 1100), (900, 1400))
#: measured prompt tokens of one more page, per (processor settings, page size): once a process, since a page's
#: cost depends only on the processor's class and settings, its chat template and its tokenizer
_PAGE_COSTS: dict[tuple[str, tuple[int, int]], int] = {}


class TransformersDescriber(ChatDescriber):
    """A local VLM from the Hugging Face Hub (or a local folder) describing pages on this machine.

    ``generate_kwargs`` are passed to ``model.generate`` on every request (for
    advanced use: e.g. ``repetition_penalty``, or a ``logits_processor`` list).
    """

    backend = "transformers-vlm"
    samples_here = True  # do_sample on this machine: a section read without --seed is seeded and the seed recorded
    #: pages are decoded to this long side; the processors resize further (LLaVA to 384-pixel tiles, Qwen to its
    #: pixel budget), and 1536 keeps lettering legible while a chunk of 8 pages holds ~40 MB of pixels
    page_side = 1536

    class Options(ChatDescriber.Options, TorchOptions):
        trust_remote_code: bool = False  # let a Hub model run its own Python code

    default_chunk_size: int = MAX_PAGES_PER_CHUNK
    #: set by backends.build for the output folder's kept model whose files are gone and cannot be fetched: why its
    #: load fails, and the pages a request its words there were read with
    download_refused: Optional[Exception] = None
    recorded_chunk_size: Optional[int] = None

    def __init__(
        self,
        spec: "registry.ModelSpec | str",
        options=None,
        *,
        generate_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(spec, options)
        self.generate_kwargs = dict(generate_kwargs or {})
        self.model = None
        self.processor = None
        self.device: str | None = None
        self.dtype = None  # torch.dtype once loaded
        self.tokens_per_page: int | None = None
        self.context_length: int | None = None

    # --- loading ---------------------------------------------------------------------------

    def _load_kwargs(self, local: bool) -> dict[str, Any]:
        return {
            "cache_dir": str(settings.model_cache_dir()),
            "local_files_only": local,
            "trust_remote_code": bool(self.options.trust_remote_code),
        }

    def _cache_first(self, load: Callable[[dict[str, Any]], Any]) -> Any:
        """``load(kwargs)`` from the cache alone when the model is whole in it (see :func:`cache.load_cache_first`)."""
        from ..cache import load_cache_first

        return load_cache_first(self.model_id, self.options.no_network, lambda local: load(self._load_kwargs(local)),
                                refused=getattr(self, "download_refused", None))

    def _size_phrase(self) -> str:
        if self.spec is not None and self.spec.download_gb:
            return f"{self.model_id}, {self.spec.download_gb:g} GB"
        return self.model_id

    def _pull_hint(self, offline: bool = True) -> str:
        name = self.spec.name if self.spec is not None else self.model_id
        if not offline:  # said to a user who was not offline, it sent them looking for a setting never made
            return f"fetch it once with `manga2music models pull {name}`"
        return f"fetch it once while online with `manga2music models pull {name}` (or run without offline mode)"

    def _unavailable(self, err: BaseException) -> ModelUnavailableError:
        """Turn a loading failure into one line a user can act on."""
        reason = " ".join(str(err).split())
        first = reason.split(". ")[0][:200]
        error = None
        if isinstance(err, ImportError):
            error = ModelUnavailableError(
                f"{self.model_name} needs a package that is not installed: {first}",
                hint="install the package named above (pip install ...) and try again",
            )
        elif "trust_remote_code" in reason:
            error = ModelUnavailableError(
                f"{self.model_name} runs code from its own repository, which is off by default",
                hint="pass --trust-remote-code if you trust that repository",
            )
        elif isinstance(err, ValueError):
            error = ModelUnavailableError(
                f"{self.model_name} is not a vision-language model transformers can load here: {first}",
                hint="pick one from `manga2music models list`, or upgrade transformers for a newer family",
            )
        if error is not None:  # the same for every section (each failed with this line after its own try to
            # load the model): the run stops at the first
            error.stops_run = True
            return error
        if Path(self.model_id).expanduser().is_dir():
            return ModelUnavailableError(
                f"could not load the model folder {self.model_id}: {first}",
                hint="a model folder needs the files save_pretrained writes (config, weights, processor, tokenizer)",
            )
        if self.options.no_network:
            return ModelUnavailableError(
                f"{self.model_name} ({self._size_phrase()}) is not in the model cache and offline mode is on",
                hint=self._pull_hint(),
            )
        error = ModelUnavailableError(
            f"could not load {self.model_name} ({self._size_phrase()}): {first}",
            hint="check the network and the model name; " + self._pull_hint(offline=False),
        )
        error.stops_run = True  # the same for every section (each said the same long line): the run stops at the
        return error  # first, and a rerun goes on from there

    def preflight(self) -> None:
        """Offline with nothing cached: fail before any section is read."""
        if Path(self.model_id).expanduser().is_dir() or not self.options.no_network:
            return
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(self.model_id, "config.json", cache_dir=str(settings.model_cache_dir()))
        if not isinstance(found, str):
            raise ModelUnavailableError(
                f"{self.model_name} ({self._size_phrase()}) is not in the model cache and offline mode is on",
                hint=self._pull_hint(),
            )

    def prepare(self) -> None:
        """Load the processor and config (small files) and plan the pages per request; no weights yet."""
        if self.processor is not None:
            return
        from transformers import AutoConfig

        try:
            processor, config = self._cache_first(lambda kwargs: (load_processor(self.model_id, **kwargs),
                                                                  AutoConfig.from_pretrained(self.model_id, **kwargs)))
        except (OSError, ValueError, ImportError) as err:
            raise self._unavailable(err) from None
        _refuse_a_template_without_pages(self.model_name, processor, self.messages("x", 1))
        self.processor = processor
        self.context_length = _context_length(config)
        self.tokens_per_page = self._measure_tokens_per_page()

    def load(self) -> None:
        """Load the weights once (the first download shows huggingface_hub's progress bar)."""
        if self.model is not None:
            return
        from transformers import AutoModelForImageTextToText

        from ..devices import pick_device, pick_dtype

        self.prepare()
        device = pick_device(self.options.device)
        dtype = pick_dtype(device, self.options.precision)
        with loading_onto(device, self.model_name):
            try:
                with load_report_held():  # dropped when the load fails: the line below says what it means
                    model, info = self._cache_first(lambda kwargs: AutoModelForImageTextToText.from_pretrained(
                        self.model_id, dtype=dtype, device_map=None if device == "cpu" else device,
                        output_loading_info=True, **kwargs))
                    refuse_random_layers(self.model_name, info)
            except Exception as err:  # a config.json of another size, a damaged weight file: named, with the fix
                error = load_failure(self.model_name, err)
                if error is err and isinstance(err, (OSError, ValueError, ImportError)):
                    error = self._unavailable(err)
                if error is err:
                    raise
                raise error from None
        model.eval()
        self.model, self.device, self.dtype = model, device, dtype

    @property
    def chunk_size(self) -> int:
        """``--chunk-size`` if given, else as many pages as fit the model's context (see the module docstring)."""
        if self.options.chunk_size:
            return max(1, int(self.options.chunk_size))
        if self.processor is None and self.download_refused is not None and self.recorded_chunk_size:
            return self.recorded_chunk_size  # the kept model's files gone, not to be fetched: as its words there
            # were read (backends.build); its load says why where a section is to be read
        self.prepare()
        return self.pages_that_fit()

    def _measure_tokens_per_page(self) -> int:
        """What one more page costs at most, over :data:`PROBE_PAGE_SIZES`."""
        return max(1, *(self.page_cost(size) for size in PROBE_PAGE_SIZES))

    def page_cost(self, size: tuple[int, int]) -> int:
        """Prompt tokens of three blank pages of ``size`` minus two: one more page in multi-image mode."""
        from PIL import Image

        self.prepare()
        key = (_processor_key(self.processor), tuple(size))
        if key not in _PAGE_COSTS:
            blank = Image.new("RGB", tuple(size), "white")
            lengths = [self._encode("x", [blank] * n)["input_ids"].shape[1] for n in (2, 3)]
            _PAGE_COSTS[key] = lengths[1] - lengths[0]
        return _PAGE_COSTS[key]

    def pages_that_fit(self) -> int:
        """Pages per request: what the context holds after the prompt and the answer, 1 to MAX_PAGES_PER_CHUNK."""
        if not self.context_length or not self.tokens_per_page:
            return MAX_PAGES_PER_CHUNK
        room = self.context_length - PROMPT_RESERVE - self.options.max_new_tokens
        return max(1, min(MAX_PAGES_PER_CHUNK, room // self.tokens_per_page))

    # --- one chat turn ---------------------------------------------------------------------

    def messages(self, prompt: str, n_images: int) -> list[dict]:
        """One user message: every page of the chunk in order, then the prompt."""
        content: list[dict] = [{"type": "image"} for _ in range(n_images)]
        content.append({"type": "text", "text": prompt})
        return [{"role": "user", "content": content}]

    def _encode(self, prompt: str, images: list):
        """The model's inputs: chat template applied, pages nested as one multi-image sample."""
        try:
            text = self.processor.apply_chat_template(
                self.messages(prompt, len(images)), add_generation_prompt=True, tokenize=False
            )
            if images:
                return self.processor(text=[text], images=[images], return_tensors="pt")
            return self.processor(text=[text], return_tensors="pt")
        except AttributeError as err:  # another model's image processor in the folder ("'SiglipImageProcessor' object
            # has no attribute 'merge_size'"): every section failed with that line
            from ..errors import WeightsUnusableError

            raise WeightsUnusableError(
                f"{self.model_name}: its processor does not fit its model ({type(err).__name__}: {err})",
                hint="its preprocessor_config.json or processor_config.json may be another model's: take them from "
                     "the model's own repository") from None

    def _complete(
        self, prompt: str, images: list[PageImage], *, json_schema: dict | None, max_tokens: int
    ) -> Completion:
        # json_schema: local models have no constrained decoding here; the prompt already shows the answer's shape
        import torch

        from ..devices import decoding_attention, seeded
        from .chat import sampling_seed

        self.load()
        pictures = [_within_aspect(page.image.convert("RGB")) for page in images]  # grayscale/RGBA pages break some
        # processors, and so does a strip thinner than 1:200 (Qwen's)
        try:
            inputs = self._encode(prompt, pictures).to(self.device, self.dtype)
        except MemoryError:  # the processor's arrays for many pages, on a machine short of memory: fewer at a time,
            # as when the model itself runs out (it was a raw MemoryError that failed the section)
            what = pages_word(len(images)) if images else "a request without pages"
            error = PagesDoNotFitError if len(images) > 1 else BackendError
            raise error(f"{self.model_name} ran out of memory preparing {what}",
                        hint=memory_hint(self.device)) from None
        prompt_tokens = int(inputs["input_ids"].shape[1])
        # the cap asked for; above --max-new-tokens only where it was not given (an answer cut off is asked again
        # with twice the room: chat.retry_tokens), as a server is asked
        given = "max_new_tokens" in self.options.model_fields_set
        cap = max(1, min(max_tokens, self.options.max_new_tokens) if given else max_tokens)
        self._refuse_more_than_the_context(len(images), prompt_tokens, min(cap, self.options.max_new_tokens))
        seed = sampling_seed(self)  # --seed, or the one drawn for this section (recorded): the answers repeat
        try:
            with seeded(seed), decoding_attention(self.device), torch.inference_mode():
                output = self.model.generate(
                    **inputs,
                    max_new_tokens=cap,
                    do_sample=True,
                    temperature=TEMPERATURE,
                    **self.generate_kwargs,
                )
        except RuntimeError as err:
            if not is_out_of_memory(err):
                raise
            release_memory(self.device)
            from .vlm_memory import request_bytes

            config = self.model.config
            image_id = getattr(config, "image_token_id", None)
            image_tokens = int((inputs["input_ids"] == image_id).sum()) if image_id is not None else 0
            itemsize = torch.empty((), dtype=self.dtype).element_size()
            need = request_bytes(config, prompt_tokens, image_tokens, itemsize)
            what = pages_word(len(images)) if images else "a request without pages"
            error = PagesDoNotFitError if images else BackendError  # pages can be sent fewer at a time; words cannot
            raise error(f"{self.model_name} ran out of memory on {what} ({prompt_tokens:,} prompt tokens, about "
                        f"{need / 2**30:.1f} GB beyond the weights)", hint=memory_hint(self.device)) from None
        new_tokens = output[0, prompt_tokens:]
        text = self.processor.decode(new_tokens, skip_special_tokens=True).strip()
        return Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=int(new_tokens.shape[0]),
                          finish_reason=self._finish_reason(new_tokens, cap))

    def _refuse_more_than_the_context(self, pages: int, prompt_tokens: int, answer_tokens: int) -> None:
        """Pages that leave no room for the answer in the model's context (an explicit ``--chunk-size`` above what
        fits; the default never is): sent again fewer at a time, as when a server says so.  They were sent whole,
        the model read past its context with only transformers' "Token indices sequence length is longer than the
        specified maximum" on stderr.  So were words alone (the merge of a long section's descriptions): merged in
        smaller groups now (:class:`~manga2music.errors.WordsDoNotFitError`); a single page that does not fit fails
        its section in one line."""
        if not self.context_length or prompt_tokens + answer_tokens <= self.context_length:
            return
        said = (f"{prompt_tokens:,} prompt tokens, and {self.model_name}'s context holds {self.context_length:,} "
                f"with the answer's {answer_tokens:,}")
        if pages == 0:  # words alone (a merge of descriptions): merged in smaller groups, as a server's 400 is
            raise WordsDoNotFitError(f"the request takes {said}")
        if pages == 1:  # read past its context, without a word
            raise BackendError(f"the page takes {said}", hint=f"a smaller {flag('max_new_tokens')}, or a model with "
                                                              "a longer context")
        over = prompt_tokens + answer_tokens - self.context_length
        per_page = self.tokens_per_page or -(-prompt_tokens // pages)  # at most, for a page of any size
        fits = max(1, pages - -(-over // per_page))
        raise PagesDoNotFitError(f"{pages_word(pages)} take {said}", fits=min(fits, pages - 1))

    def _finish_reason(self, new_tokens, cap: int) -> str:
        """"length" where the answer took every token it was allowed and did not end (no end-of-sequence token
        last), as a server says it: a cut-off description loses its unfinished end (said), and cut-off JSON is
        asked again rather than patched up; a local model's answers were never known to be cut off."""
        ends = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ends = {int(e) for e in (ends if isinstance(ends, (list, tuple)) else [ends]) if e is not None}
        if int(new_tokens.shape[0]) >= cap and (not ends or int(new_tokens[-1]) not in ends):
            return "length"
        return "stop"

    # --- bookkeeping -----------------------------------------------------------------------

    def settings_key(self) -> dict:
        from ..devices import pick_device, pick_dtype

        key = dict(super().settings_key())
        device = self.device or pick_device(self.options.device)
        dtype = self.dtype or pick_dtype(device, self.options.precision)
        key.update(
            precision=str(dtype).replace("torch.", ""),
            max_new_tokens=self.options.max_new_tokens,
        )
        return key

    def kept_settings(self) -> dict:
        """As :meth:`ChatDescriber.kept_settings`, and a --precision given: a plain rerun read at auto's (bf16 on a
        CPU that has it) and described every section again after ``--precision fp32``."""
        kept = super().kept_settings()
        if "precision" in self.options.model_fields_set and self.options.precision:
            kept["precision"] = str(self.options.precision)
        return kept

    def close(self) -> None:
        """Release the weights (and the GPU memory they held); the small processor stays."""
        self.model = None
        release_memory(self.device)


def _refuse_a_template_without_pages(name: str, processor, messages: list[dict]) -> None:
    """A chat template that leaves the page out of the prompt (it knows no content of type "image"): every section
    failed with the processor's "Found total 0 <image> tokens and 2 images".  The run stops, in one line."""
    token = getattr(processor, "image_token", None)
    if not isinstance(token, str) or not token:
        return
    try:
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception:  # noqa: BLE001 - the library's own error is said where the prompt is made
        return
    if token not in text:
        error = ModelUnavailableError(
            f"{name}: its chat template leaves the pages out of the prompt (it has no place for an image: a text "
            "model's template?)",
            hint="use the chat template of the vision model the folder was made from (its chat_template.jinja)")
        error.stops_run = True
        raise error


def _processor_key(processor) -> str:
    """What a page's token cost depends on: the processor's class and settings, chat template and vocabulary."""
    tokenizer = processor.tokenizer
    added = sorted((i, str(t)) for i, t in tokenizer.added_tokens_decoder.items())
    return repr((type(processor).__name__, processor.image_processor.to_dict(), processor.chat_template,
                 len(tokenizer), added))


def _context_length(config) -> int | None:
    """The text model's context length (``max_position_embeddings``), if the config says."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text_config, "max_position_embeddings", None)
    return int(value) if value else None


#: the longest side a page may be, in multiples of its shortest, for every model's processor: Qwen2-VL's and
#: Qwen2.5-VL's refuse more than 200 ("absolute aspect ratio must be smaller than 200"), and a section with a thin
#: spacer strip between a webtoon's panels failed whole
MAX_ASPECT = 150


def _within_aspect(image):
    """``image``, padded with white on its short side where it is thinner than 1:``MAX_ASPECT``."""
    from PIL import Image

    width, height = image.size
    if max(width, height) <= MAX_ASPECT * min(width, height):
        return image
    size = (width, -(-width // MAX_ASPECT)) if width > height else (-(-height // MAX_ASPECT), height)
    padded = Image.new("RGB", size, "white")
    padded.paste(image, ((padded.width - width) // 2, (padded.height - height) // 2))
    return padded
