"""The transformers describer on tiny random VLMs built offline (tests/tiny_vlms.py).

Random weights write gibberish, so the happy-path tests steer ``generate`` with
:class:`Script`: a real ``LogitsProcessor`` (passed through the describer's
``generate_kwargs``) that lets only the next token of a fixed answer through,
one answer per ``generate`` call.  A forward pre-hook on the real model records
what each call received (prompt ids, pixel tensors), so the tests check the
messages the model actually saw.  Unsteered runs check the gibberish path.
"""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import LogitsProcessor, LogitsProcessorList

import tiny_vlms
from manga2music import registry
from manga2music.analysis import SectionAnalysis
from manga2music.describers.base import PageImage
from manga2music.describers.transformers_vlm import PROMPT_RESERVE, TransformersDescriber
from manga2music.describers.vlm_processors import load_processor, torchvision_usable
from manga2music.errors import BackendError, ModelUnavailableError

FAMILIES = list(tiny_vlms.BUILDERS)

ANALYSIS = {"genre": "action", "atmosphere": "tense", "focus": "visual", "pacing": "fast", "plot": "a chase"}
DESCRIPTION = "Slow ambient pads in D minor at 70 BPM, gentle and melancholic."


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads; on a busy shared CPU, OpenMP's spinning makes them crawl."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """Every tiny family, built once per test session."""
    return tiny_vlms.build_all(tmp_path_factory.mktemp("tiny_vlms"))


def make_pages(n: int) -> list[PageImage]:
    """Square pages of different greys; grayscale ("L") like many scans."""
    return [PageImage(f"{i + 1:03d}.png", Image.new("L", (64, 64), 30 + 40 * i)) for i in range(n)]


class Script(LogitsProcessor):
    """Steers generate to write ``answers[k]`` on the k-th call and records what each call received."""

    def __init__(self, describer: TransformersDescriber, answers: list[str]):
        describer.load()
        self.tokenizer = describer.processor.tokenizer
        eos = describer.model.generation_config.eos_token_id  # <|im_end|>, or SmolVLM's <end_of_utterance>
        eos = eos[0] if isinstance(eos, list) else eos
        self.answers = [self.tokenizer.encode(a, add_special_tokens=False) + [eos] for a in answers]
        self.calls: list[list[int]] = []  # per generate call: the prompt ids the model received
        describer.model.register_forward_pre_hook(self._on_forward, with_kwargs=True)
        describer.generate_kwargs["logits_processor"] = LogitsProcessorList([self])

    def _on_forward(self, module, args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[1] > 1:  # the prefill of a new generate call (decoding feeds 1 token)
            self.calls.append(ids[0].tolist())
            self.start = ids.shape[1]

    def __call__(self, input_ids, scores):
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        token = answer[min(input_ids.shape[1] - self.start, len(answer) - 1)]
        forced = torch.full_like(scores, float("-inf"))
        forced[:, token] = 0.0
        return forced



def record_inputs(module) -> list:
    """What ``module`` (e.g. a vision tower) receives on each call: its positional tensors' shapes."""
    seen: list = []
    module.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append([tuple(a.shape) for a in args if hasattr(a, "shape")]
                                            + [tuple(v.shape) for v in kwargs.values() if hasattr(v, "shape")]),
        with_kwargs=True,
    )
    return seen


def describer(folder, **options) -> TransformersDescriber:
    options.setdefault("device", "cpu")
    options.setdefault("seed", 0)
    return TransformersDescriber(str(folder), options)


@pytest.mark.parametrize("family", FAMILIES)
def test_two_stage_sends_every_page_of_a_chunk_in_one_chat_message(tiny_models, family):
    d = describer(tiny_models[family], chunk_size=2, max_new_tokens=120)
    script = Script(d, [json.dumps(ANALYSIS)] * 3 + [DESCRIPTION])
    result = d.describe(make_pages(5))

    # 5 pages in chunks of 2: three stage-1 calls with images, then one text-only stage-2 call
    assert len(script.calls) == 4
    image_token_id = d.model.config.image_token_id
    per_page = tiny_vlms.IMAGE_TOKENS_PER_PAGE[family]
    for ids, n_pages in zip(script.calls, [2, 2, 1]):
        prompt = script.tokenizer.decode(ids)
        assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\n")
        assert prompt.count("<|im_start|>") == 2  # one user turn, then the assistant's
        assert f"these {n_pages} consecutive manga pages" in prompt or n_pages == 1
        if n_pages > 1 or family != "llava_onevision":  # one page alone gets LLaVA-OneVision's anyres view
            assert ids.count(image_token_id) == per_page * n_pages
    stage2 = script.calls[3]
    assert image_token_id not in stage2
    assert "genre: action" in script.tokenizer.decode(stage2)

    assert result.description == DESCRIPTION
    assert result.analysis == SectionAnalysis(**ANALYSIS)
    assert [c.pages for c in result.chunks] == [["001.png", "002.png"], ["003.png", "004.png"], ["005.png"]]
    assert result.usage["prompt_tokens"] == sum(len(ids) for ids in script.calls)
    assert result.usage["completion_tokens"] > 0


def test_llava_onevision_pages_go_in_nested_multi_image_mode(tiny_models):
    d = describer(tiny_models["llava_onevision"], chunk_size=3, max_new_tokens=120)
    script = Script(d, [json.dumps(ANALYSIS), DESCRIPTION])
    seen = record_inputs(d.model.model.vision_tower)
    pages = make_pages(3)
    d.describe(pages)
    # one 32x32 base view per page reaches the vision tower, not anyres tiles (64x64 pages would give 5 views each)
    assert seen[0][0] == (3, 3, tiny_vlms.IMAGE_SIZE, tiny_vlms.IMAGE_SIZE)
    assert script.calls[0].count(d.model.config.image_token_id) == 3 * tiny_vlms.IMAGE_TOKENS_PER_PAGE["llava_onevision"]
    inputs = d._encode("Describe.", [p.image.convert("RGB") for p in pages])
    assert inputs["batch_num_images"].tolist() == [3]

    # the flat form the describer avoids: every page tiled separately, far more tokens
    flat = d.processor(text=["<image>" * 3], images=[p.image.convert("RGB") for p in pages], return_tensors="pt")
    assert flat["pixel_values"].shape[:2] == (3, 5)
    assert flat["input_ids"].shape[1] > 3 * tiny_vlms.IMAGE_TOKENS_PER_PAGE["llava_onevision"]


def test_qwen2_vl_gets_one_image_grid_per_page(tiny_models):
    d = describer(tiny_models["qwen2_vl"], chunk_size=4, max_new_tokens=120)
    Script(d, [json.dumps(ANALYSIS), DESCRIPTION])
    seen = record_inputs(d.model.model.visual)
    d.describe(make_pages(4))
    grid = [shape for shape in seen[0] if len(shape) == 2 and shape[1] == 3]
    assert grid == [(4, 3)]  # image_grid_thw: one (t, h, w) row per page


def test_a_page_thinner_than_qwens_processor_takes_is_padded_not_a_failed_section(tiny_models):
    """Qwen2-VL's processor refuses a picture longer than 200 times its width ("absolute aspect ratio must be
    smaller than 200"): a section with a thin spacer strip between a webtoon's panels (800 x 3) failed whole with
    that raw line. The page is padded white to 1:150, and the section is described."""
    d = describer(tiny_models["qwen2_vl"], chunk_size=4, max_new_tokens=120)
    Script(d, [json.dumps(ANALYSIS), DESCRIPTION])
    pages = make_pages(2) + [PageImage("003.png", Image.new("L", (800, 3), 255)),
                             PageImage("004.png", Image.new("L", (3, 900), 255))]
    result = d.describe(pages)
    assert result.description == DESCRIPTION and [c.pages for c in result.chunks] == [[p.name for p in pages]]


def test_running_out_of_memory_preparing_the_pages_reads_them_in_halves(tiny_models, monkeypatch):
    """A machine short of memory ran out while the processor made the pages' arrays (before the model ran): a raw
    "MemoryError: Unable to allocate 2.00 MiB" failed the section, where running out in the model reads the pages
    again in halves. It reads them in halves too."""
    d = describer(tiny_models["llava"], chunk_size=4, max_new_tokens=120)
    script = Script(d, [json.dumps(ANALYSIS)] * 2 + [DESCRIPTION])
    encode = d._encode

    def short_of_memory(prompt, images):
        if len(images) > 2:
            raise MemoryError("Unable to allocate 2.00 MiB for an array with shape (512, 512)")
        return encode(prompt, images)

    monkeypatch.setattr(d, "_encode", short_of_memory)
    result = d.describe(make_pages(4))
    assert [chunk.pages for chunk in result.chunks] == [["001.png", "002.png"], ["003.png", "004.png"]]
    assert result.description == DESCRIPTION and len(script.calls) == 3
    assert any("ran out of memory preparing 4 pages" in w for w in result.warnings), result.warnings


def test_single_stage_merges_chunk_descriptions(tiny_models):
    d = describer(tiny_models["llava_onevision"], chunk_size=2, max_new_tokens=120, single_stage=True)
    script = Script(d, [DESCRIPTION] * 4)
    result = d.describe(make_pages(3))
    assert len(script.calls) == 3  # two chunks, then one text-only merge
    assert result.description == DESCRIPTION and result.analysis is None


def test_gibberish_gets_one_retry_then_fails_the_section(tiny_models):
    """Random weights never answer JSON: chat.py retries once, then raises BackendError."""
    d = describer(tiny_models["llava"], chunk_size=4, max_new_tokens=24)
    d.load()
    calls = []
    d.model.register_forward_pre_hook(
        lambda m, a, kw: calls.append(1) if kw["input_ids"].shape[1] > 1 else None, with_kwargs=True
    )
    with pytest.raises(BackendError, match="valid JSON"):
        d.describe(make_pages(3))
    assert len(calls) == 2


def test_seed_repeats_sampling(tiny_models):
    pages = make_pages(2)

    def sample(seed):
        d = describer(tiny_models["llava"], seed=seed, max_new_tokens=24)
        d.generate_kwargs["min_new_tokens"] = 24  # no early end-of-text: 24 sampled tokens every time
        return d._complete("Describe the music.", pages, json_schema=None, max_tokens=24).text

    first = sample(7)
    assert first and sample(7) == first
    assert sample(8) != first  # sampling is on (temperature 0.7), so another seed writes other tokens
    # the seed is recorded beside the describe settings (describing.describer_seed), not in them
    assert describer(tiny_models["llava"], seed=7).settings_key() == describer(tiny_models["llava"]).settings_key()


@pytest.mark.parametrize("precision,expected", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_device_and_precision(tiny_models, precision, expected):
    d = describer(tiny_models["llava_onevision"], precision=precision)
    d.load()
    assert d.device == "cpu" and d.dtype == expected
    assert {p.dtype for p in d.model.parameters()} == {expected}
    assert {p.device.type for p in d.model.parameters()} == {"cpu"}
    assert d.settings_key()["precision"] == str(expected).replace("torch.", "")
    assert d.settings_key()["max_new_tokens"] == 512


def test_default_chunk_size_follows_the_context(tiny_models):
    folder = tiny_models["llava_onevision"]
    roomy = describer(folder, max_new_tokens=40)
    assert roomy.chunk_size == 8  # plenty of room: capped at 8 pages per request
    per_page = roomy.tokens_per_page
    assert per_page >= tiny_vlms.IMAGE_TOKENS_PER_PAGE["llava_onevision"]

    tight = describer(folder, max_new_tokens=tiny_vlms.TINY_CONTEXT - PROMPT_RESERVE - 3 * per_page)
    assert tight.chunk_size == 3
    assert tight.settings_key()["chunk_size"] == 3
    assert describer(folder, chunk_size=5).chunk_size == 5  # --chunk-size wins


def test_a_measured_chunk_size_is_measured_again_on_a_rerun_not_kept_as_if_given(tiny_models):
    """The chunk size a local model's context allowed (for the --max-new-tokens of then) was recorded with its
    words, and a rerun kept it as if the user had given it: `--max-new-tokens 4000` on a rerun sent 8 pages where a
    fresh run sent 4, past the model's context. Only a --chunk-size given is kept (records since 2026-12-07 say
    which); a record of before keeps its settings' as it did."""
    from manga2music.api import _keep_reading_settings
    from manga2music.pipeline import RunConfig

    folder = tiny_models["llava_onevision"]
    measured = describer(folder, max_new_tokens=40)
    given = describer(folder, max_new_tokens=40, chunk_size=5)
    assert "chunk_size" not in measured.kept_settings() and given.kept_settings()["chunk_size"] == 5

    def kept(entry: dict) -> dict:
        cfg = RunConfig()
        _keep_reading_settings(cfg, [entry], "describe")
        return cfg.vision_options

    assert "chunk_size" not in kept({"settings": measured.settings_key(), "kept_settings": measured.kept_settings()})
    assert kept({"settings": given.settings_key(), "kept_settings": given.kept_settings()})["chunk_size"] == 5
    assert kept({"settings": {**measured.settings_key(), "chunk_size": 3}})["chunk_size"] == 3  # a record of before
    # the default token cap a local model's settings record: not kept as if given (a plain rerun recorded
    # max_new_tokens 512 as given, and an answer cut off was no longer asked again with twice the room)
    assert "max_new_tokens" not in kept({"settings": measured.settings_key(), "kept_settings": {}})
    assert "max_new_tokens" not in kept({"settings": {**measured.settings_key(), "max_new_tokens": 512}})
    assert kept({"settings": {**measured.settings_key(), "max_new_tokens": 1024}})["max_new_tokens"] == 1024


def test_a_precision_given_is_kept_by_a_plain_rerun(tiny_models):
    """`run LIB --vision-model FOLDER --precision fp32`, then the plain rerun: "describing again: the describer's
    settings changed (precision float32 -> bfloat16)" on a CPU with bf16, every section's words and music made
    again.  A --precision given is recorded with the words and kept, as the other reading settings are."""
    from manga2music.api import _keep_reading_settings
    from manga2music.pipeline import RunConfig

    folder = tiny_models["llava_onevision"]
    given = describer(folder, max_new_tokens=40, precision="fp32")
    assert given.kept_settings()["precision"] == "fp32"
    assert "precision" not in describer(folder, max_new_tokens=40).kept_settings()
    cfg = RunConfig()
    said = _keep_reading_settings(cfg, [{"settings": given.settings_key(), "kept_settings": given.kept_settings()}],
                                  "run")
    assert cfg.vision_options["precision"] == "fp32" and "precision='fp32'" in said, said  # the line says it
    assert describer(folder, **{"max_new_tokens": 40, **cfg.vision_options}).settings_key() == given.settings_key()
    cfg = RunConfig(vision_options={"precision": "bf16"})  # given again: taken
    _keep_reading_settings(cfg, [{"settings": given.settings_key(), "kept_settings": given.kept_settings()}], "run")
    assert cfg.vision_options["precision"] == "bf16"


def test_loaded_once_and_close_frees_the_weights(tiny_models):
    d = describer(tiny_models["llava"], chunk_size=4, max_new_tokens=120)
    Script(d, [json.dumps(ANALYSIS), DESCRIPTION] * 2)
    model = d.model
    d.describe(make_pages(2))
    d.describe(make_pages(2))  # a second section reuses the same weights
    assert d.model is model
    ref = weakref.ref(model)
    del model
    d.close()
    gc.collect()
    assert d.model is None and ref() is None


def test_offline_without_weights_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    d = TransformersDescriber("llava-0.5b", {"device": "cpu"})
    assert d.model_id == "llava-hf/llava-interleave-qwen-0.5b-hf"
    for attempt in (d.preflight, lambda: d.describe(make_pages(1))):
        with pytest.raises(ModelUnavailableError) as info:
            attempt()
        err = info.value
        assert "llava-0.5b" in str(err) and "1.8 GB" in str(err) and "offline" in str(err)
        assert "manga2music models pull llava-0.5b" in err.hint
        assert "\n" not in str(err)
        assert err.__context__ is None or err.__suppress_context__  # no chained transformers traceback


def test_names_and_registry(tiny_models):
    by_name = TransformersDescriber("llava-onevision-0.5b")
    by_id = TransformersDescriber("llava-hf/llava-onevision-qwen2-0.5b-ov-hf")
    assert by_name.model_name == by_id.model_name == "llava-onevision-0.5b"
    assert by_name.model_id == by_id.model_id == "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
    folder = str(tiny_models["qwen2_vl"])
    spec = registry.resolve(folder, "vision")
    assert registry.load_backend_class(spec.backend) is TransformersDescriber
    assert TransformersDescriber(folder).model_name == folder


@pytest.mark.skipif(torchvision_usable(), reason="the image-only processor is used only without torchvision")
@pytest.mark.parametrize("family", ["llava_onevision", "qwen2_vl", "qwen3_vl"])
def test_processor_leaves_video_out_without_torchvision(tiny_models, family):
    folder = tiny_models[family]
    saved = json.loads((folder / "processor_config.json").read_text())
    assert saved["processor_class"] in ("LlavaOnevisionProcessor", "Qwen2VLProcessor", "Qwen3VLProcessor")  # as on the Hub
    processor = load_processor(str(folder), local_files_only=True)
    assert not hasattr(processor, "video_processor")
    assert type(processor.image_processor).__name__.endswith("Pil")
    assert processor.chat_template  # saved settings came back through the subclass's explicit __init__


def test_a_text_only_model_folder_is_not_a_vision_model(tiny_models, tmp_path):
    """A text-only LLM's folder (Qwen2ForCausalLM) was taken for a vision model: the doctor said "ok", then every
    section failed, the first with "AttributeError: Qwen2Tokenizer has no attribute tokenizer"."""
    from manga2music.errors import UnknownModelError
    from manga2music.registry import resolve

    folder = tmp_path / "text-llm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                                                    "hidden_size": 32, "vocab_size": 100}), encoding="utf-8")
    with pytest.raises(UnknownModelError, match="not a vision-language model .its config.json says 'qwen2'.") as info:
        resolve(str(folder), "vision")
    assert "text-llm" in info.value.message
    for name, model in tiny_models.items():  # every vision model the tests build is still one
        assert resolve(str(model), "vision").backend == "transformers-vlm", name


def test_a_vision_folder_without_its_chat_template_or_image_processor_is_one_line_before_any_work(tiny_models,
                                                                                                   tmp_path):
    """Without its chat template, or its image processor's config, every section failed ("ValueError: Cannot use
    apply_chat_template because this processor does not have a chat template", "Can't load image processor") and
    the doctor said "ok"; a MusicGen folder lacking its processor files was already one line."""
    import shutil

    import manga2music
    from manga2music.errors import Manga2MusicError
    from manga2music.pipeline import RunConfig
    from output_checks import cli

    untemplated = tmp_path / "no-template"
    shutil.copytree(tiny_models["llava"], untemplated)
    template = (untemplated / "chat_template.jinja").read_text(encoding="utf-8")
    (untemplated / "chat_template.jinja").unlink()
    config = json.loads((untemplated / "processor_config.json").read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    (untemplated / "processor_config.json").write_text(json.dumps(config), encoding="utf-8")
    config = json.loads((untemplated / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["chat_template"] = template  # the tokenizer's: the processor does not use it (every section failed)
    (untemplated / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    unprocessed = tmp_path / "no-image-processor"
    shutil.copytree(tiny_models["llava"], unprocessed)
    (unprocessed / "processor_config.json").unlink()
    pages = tmp_path / "pages"
    pages.mkdir()
    make_pages(1)[0].image.save(pages / "001.png")
    for folder, said in ((untemplated, "without its chat template"), (unprocessed, "without its image processor")):
        with pytest.raises(Manga2MusicError) as caught:
            manga2music.describe([pages], tmp_path / "out", model=str(folder), config=RunConfig(offline=True))
        assert said in caught.value.message, caught.value
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.txt"))
        doctor = cli("doctor", "--offline", "--vision-model", str(folder), "--json")
        assert said in json.loads(doctor.stdout)["checks"][0]["reason"], doctor.stdout
    for name, model in tiny_models.items():  # every folder save_pretrained writes has both
        from manga2music.registry import missing_weights, resolve

        assert missing_weights(resolve(str(model), "vision")) is None, name


def test_a_chat_template_that_leaves_the_pages_out_stops_before_any_section_is_read(tiny_models, tmp_path):
    """A text model's chat template beside vision weights (or one that knows images only as "image_url"): every
    section failed with the processor's "Found total 0 <image> tokens and 2 images", and the doctor said "ok"."""
    import shutil

    from output_checks import cli

    text_only = tmp_path / "text-only-template"
    shutil.copytree(tiny_models["llava"], text_only)
    (text_only / "chat_template.jinja").write_text(
        "{% for message in messages %}{{ message['role'] }}: {% for item in message['content'] %}"
        "{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}", encoding="utf-8")
    other_kind = tmp_path / "image-url-template"
    shutil.copytree(tiny_models["llava"], other_kind)
    template = (other_kind / "chat_template.jinja").read_text(encoding="utf-8")
    assert "item['type'] == 'image'" in template
    (other_kind / "chat_template.jinja").write_text(template.replace("item['type'] == 'image'",
                                                                     "item['type'] == 'image_url'"), encoding="utf-8")
    pages = tmp_path / "pages"
    for name in ("a", "b"):
        (pages / name).mkdir(parents=True)
        make_pages(2)[0].image.save(pages / name / "001.png")
    doctor = cli("doctor", "--offline", "--vision-model", str(text_only), "--json")
    assert "a chat template that shows pages" in json.loads(doctor.stdout)["checks"][0]["reason"], doctor.stdout
    for folder, said in ((text_only, "a chat template that shows pages"),
                         (other_kind, "its chat template leaves the pages out of the prompt")):
        out = tmp_path / f"out-{folder.name}"
        result = cli("describe", pages, "-o", out, "--model", folder, "--offline", timeout=300)
        assert result.returncode == 1, result.stderr[-2000:]
        assert said in result.stderr and "<image> tokens" not in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        assert not out.exists() or not list(out.glob("*.txt"))
        if out.exists():  # the run stopped at its first section: the second was not tried
            manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            assert len(manifest["sections"]) == 1, manifest["sections"]


def test_a_vision_folder_with_its_tokenizer_cut_short_is_one_line_that_names_the_file(tiny_models, tmp_path):
    """A tokenizer.json cut short (a copy stopped midway): each section failed with "is not a vision-language model
    transformers can load here: Expecting property name enclosed in double quotes", and the doctor said "ok"."""
    import shutil

    from output_checks import cli

    folder = tmp_path / "cut-short"
    shutil.copytree(tiny_models["qwen2_vl"], folder)
    (folder / "._config.json").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")  # a Mac's,
    (folder / "trainer_state.json").write_text('{"step": ', encoding="utf-8")  # and a trainer's: not read
    ok = cli("doctor", "--offline", "--vision-model", str(folder), "--json")
    assert json.loads(ok.stdout)["checks"][0]["reason"].endswith("can run here"), ok.stdout
    whole = (folder / "tokenizer.json").read_bytes()
    (folder / "tokenizer.json").write_bytes(whole[:len(whole) // 2])
    pages = tmp_path / "pages"
    pages.mkdir()
    make_pages(1)[0].image.save(pages / "001.png")
    result = cli("describe", pages, "-o", tmp_path / "out", "--model", folder, "--offline", timeout=300)
    said = " ".join(result.stderr.split())
    assert result.returncode == 1 and f"{folder}: its tokenizer.json is damaged" in said, said
    assert "not a vision-language model" not in said and "Expecting" not in said, said
    doctor = cli("doctor", "--offline", "--vision-model", str(folder), "--json")
    assert "its tokenizer.json is damaged" in json.loads(doctor.stdout)["checks"][0]["reason"], doctor.stdout


def test_weights_that_do_not_fit_the_config_are_one_clear_error_without_the_librarys_table(tiny_models, tmp_path):
    """A config.json of another model size beside a vision model's weights failed the section with a raw
    "RuntimeError: You set `ignore_mismatched_sizes` to `False`...", after transformers' LOAD REPORT table."""
    import shutil

    from output_checks import cli

    folder = tmp_path / "mismatched"
    shutil.copytree(tiny_models["llava"], folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["text_config"]["intermediate_size"] = config["text_config"]["intermediate_size"] * 2
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    pages = tmp_path / "pages"
    pages.mkdir()
    make_pages(1)[0].image.save(pages / "001.png")
    result = cli("describe", pages, "-o", tmp_path / "out", "--model", folder, "--offline", timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "its weights do not fit its config.json" in result.stderr, result.stderr[-2000:]
    assert "LOAD REPORT" not in result.stderr and "RuntimeError" not in result.stderr, result.stderr[-2000:]


def test_a_fine_tune_saved_with_its_training_wrappers_prefix_stops_the_run_instead_of_reading_with_random_layers(
        tiny_models, tmp_path):
    """A vision fine-tune saved from DDP (every key "module."-prefixed) loaded as a random model: the description
    was made by noise, "ok", only transformers' table on stderr telling.  The run stops in one line, and says why."""
    import shutil

    from output_checks import cli
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "ddp-fine-tune"
    shutil.copytree(tiny_models["llava"], folder)
    (weights,) = folder.glob("*.safetensors")
    tensors = load_file(weights)
    save_file({f"module.{k}": v.contiguous() for k, v in tensors.items()}, weights, metadata={"format": "pt"})
    pages = tmp_path / "pages"
    for name in ("a", "b"):
        (pages / name).mkdir(parents=True)
        make_pages(1)[0].image.save(pages / name / "001.png")
    result = cli("describe", pages, "-o", tmp_path / "out", "--model", folder, "--offline", timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "its weights do not fit its config.json" in result.stderr and "training wrapper" in result.stderr, \
        result.stderr[-2000:]
    assert "LOAD REPORT" not in result.stderr and not list((tmp_path / "out").glob("*.txt")), result.stderr[-2000:]


def test_incomplete_model_folder_is_one_clear_error(tiny_models, tmp_path):
    folder = tmp_path / "half-copied"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny_models["llava"] / "config.json").read_bytes())
    with pytest.raises(ModelUnavailableError, match="could not load the model folder") as info:
        describer(folder).describe(make_pages(1))
    assert "save_pretrained" in info.value.hint


def _allocate_beyond_memory(*_args, **_kwargs):
    """What torch's CPU allocator raises for a request the machine cannot hold (a petabyte here): the same
    RuntimeError a VLM meets when a request's pages need more RAM than is free (on a Mac, MPS raises its own
    RuntimeError, "MPS backend out of memory")."""
    torch.empty(2**50, dtype=torch.uint8)


def _pages_beyond(limit: int):
    """A forward pre-hook for the vision tower: encoding more than ``limit`` page images runs out of memory."""
    def hook(module, args, kwargs):
        pixels = args[0] if args else kwargs["pixel_values"]
        if pixels.shape[0] > limit:
            _allocate_beyond_memory()
    return hook


def test_pages_that_do_not_fit_one_request_are_read_in_smaller_ones(tiny_models):
    """Five pages in one request run out of memory where two fit: the describer reads them again, halved until each
    request fits (3 pages, then 2 + 1, then 2), says so, and the section is described; the record lists the pages
    of each request as it was read."""
    d = describer(tiny_models["llava"], chunk_size=5, max_new_tokens=120)
    d.load()
    tower = d.model.model.vision_tower
    seen = record_inputs(tower)
    tower.register_forward_pre_hook(_pages_beyond(2), with_kwargs=True)
    script = Script(d, [json.dumps(ANALYSIS)] * 3 + [DESCRIPTION])  # images are encoded before Script sees a call
    progress = []
    result = d.describe(make_pages(5), progress=lambda done, total, label: progress.append((done, total)))
    assert [chunk.pages for chunk in result.chunks] == [["001.png", "002.png"], ["003.png"], ["004.png", "005.png"]]
    assert result.description == DESCRIPTION and len(script.calls) == 4  # 3 analyses and the description
    assert [shapes[0][0] for shapes in seen] == [5, 3, 2, 1, 2]  # two requests ran out of memory before the three that fit
    assert any("ran out of memory on 5 pages" in w and "sent again 3 pages at a time" in w for w in result.warnings)
    assert progress[-1] == (4, 4)  # the bar ends full: the extra calls were added to its total


def test_a_chunk_size_given_above_what_the_context_holds_is_sent_in_requests_that_fit(tiny_models):
    """``--chunk-size 5`` where the context holds 3 pages and the answer: the five were sent whole, and the model read
    past its context (only transformers' "Token indices sequence length is longer than the specified maximum" on
    stderr).  They are sent again fewer at a time, said, and every page is read once."""
    folder = tiny_models["llava_onevision"]
    big = [PageImage(f"{i + 1:03d}.png", Image.new("L", (1100, 1600), 30 + 40 * i)) for i in range(5)]  # scans
    roomy = describer(folder, chunk_size=5, max_new_tokens=120)
    script = Script(roomy, [json.dumps(ANALYSIS), DESCRIPTION])
    assert [len(c.pages) for c in roomy.describe(big).chunks] == [5]  # 5 pages and 120 tokens of answer fit
    five = len(script.calls[0])  # the prompt's tokens with the 5 pages
    # an answer of as many tokens as leave room for 3 of the pages: the context is the tiny model's real one
    d = describer(folder, chunk_size=5, max_new_tokens=tiny_vlms.TINY_CONTEXT - five + 2 * roomy.tokens_per_page)
    assert d.chunk_size == 5  # given: kept, as the user asked
    script = Script(d, [json.dumps(ANALYSIS)] * 2 + [DESCRIPTION])
    result = d.describe(big)
    assert [chunk.pages for chunk in result.chunks] == [["001.png", "002.png", "003.png"], ["004.png", "005.png"]]
    assert max(len(ids) for ids in script.calls) + d.options.max_new_tokens <= tiny_vlms.TINY_CONTEXT
    assert any("context holds" in w and "3 pages at a time" in w for w in result.warnings), result.warnings
    assert result.description == DESCRIPTION and len(script.calls) == 3


def test_single_stage_merges_descriptions_too_long_for_one_request_in_parts_that_fit(tiny_models):
    """A long section read in single stage: its parts' descriptions were joined in one merge request, whatever
    their length, and a request past the model's context was sent whole (the model read past its context without
    a word).  Descriptions that do not fit together are merged in halves first, each request within the context."""
    long = ("Sparse solo piano in A minor at 64 BPM over soft rain, a cello answering each phrase, hushed and "
            "wistful, the melody rising once where the two friends meet on the bridge and falling back to a single "
            "held note as the page turns; brushed snare enters late, then fades with the streetlights. ") * 2
    d = describer(tiny_models["llava"], chunk_size=1, max_new_tokens=200, single_stage=True)
    script = Script(d, [long] * 6 + [DESCRIPTION] * 4)
    progress = []
    result = d.describe(make_pages(6), progress=lambda done, total, label: progress.append((done, total)))
    assert result.description == DESCRIPTION
    assert max(len(ids) for ids in script.calls) + d.options.max_new_tokens <= tiny_vlms.TINY_CONTEXT
    assert len(script.calls) > 7  # six pages, then more than one merge
    assert progress[-1][0] == progress[-1][1] == len(script.calls)
    assert any("merged in" in w for w in result.warnings), result.warnings


def test_single_stage_reads_a_chunk_that_does_not_fit_in_halves_and_merges_them(tiny_models):
    d = describer(tiny_models["llava"], chunk_size=4, max_new_tokens=120, single_stage=True)
    d.load()
    d.model.model.vision_tower.register_forward_pre_hook(_pages_beyond(2), with_kwargs=True)
    script = Script(d, [DESCRIPTION] * 3)
    progress = []
    result = d.describe(make_pages(4), progress=lambda done, total, label: progress.append((done, total)))
    assert [chunk.pages for chunk in result.chunks] == [["001.png", "002.png"], ["003.png", "004.png"]]
    assert len(script.calls) == 3 and result.description == DESCRIPTION  # two halves, then the merge they need
    assert progress[-1] == (3, 3)


def test_a_chapters_pages_that_do_not_fit_are_asked_in_halves_told_how_the_page_before_felt(tiny_models):
    """The chapter score's page entries (``score`` with a local VLM): four pages in one request run out of memory
    where two fit; they are asked as two requests of two, in order, and the second is told the mood of the first
    request's last page, as a next chunk would be."""
    from manga2music.describers.chapter import page_entries

    def answer(moods):
        return json.dumps({"pages": [{"page": k, "mood": mood, "intensity": 1 + k, "scene_change": k == 1, "why": ""}
                                     for k, mood in enumerate(moods, start=1)]})

    d = describer(tiny_models["llava"], chunk_size=4, max_new_tokens=300)
    d.load()
    d.model.model.vision_tower.register_forward_pre_hook(_pages_beyond(2), with_kwargs=True)
    script = Script(d, [answer(["quiet", "wistful"]), answer(["tense", "furious"])])
    warned = []
    entries, _usage = page_entries(d, make_pages(4), 4, warn=warned.append)
    assert [(e["name"], e["mood"]) for e in entries] == [("001.png", "quiet"), ("002.png", "wistful"),
                                                         ("003.png", "tense"), ("004.png", "furious")]
    assert len(script.calls) == 2
    assert "wistful (intensity 3)" in script.tokenizer.decode(script.calls[1])  # the page before the second half
    assert len(warned) == 1
    assert "ran out of memory on 4 pages" in warned[0] and "sent again 2 pages at a time" in warned[0]


def test_one_page_that_does_not_fit_fails_its_section_in_one_clear_line(tiny_models):
    d = describer(tiny_models["llava"], chunk_size=4, max_new_tokens=24)
    d.load()
    d.model.model.vision_tower.register_forward_pre_hook(_pages_beyond(0), with_kwargs=True)
    with pytest.raises(BackendError, match="ran out of memory on 1 page ") as err:
        d.describe(make_pages(2))
    assert "smaller model" in err.value.hint and "--device cpu" not in err.value.hint  # on the CPU already
    assert "DefaultCPUAllocator" not in str(err.value)


def test_a_model_too_big_to_load_is_one_clear_error(tiny_models, monkeypatch):
    import transformers

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained",
                        classmethod(lambda cls, *a, **kw: _allocate_beyond_memory()))
    d = describer(tiny_models["llava"])
    with pytest.raises(ModelUnavailableError, match="does not fit in the free memory of cpu") as err:
        d.load()
    assert "smaller model" in err.value.hint


def _read_calm(folder, out, **config):
    """``describe`` of samples/calm (3 pages, one request each) with a local VLM folder, answered in single stage
    (random weights write no JSON): the record, and the description written."""
    import manga2music
    from manga2music.options import RunConfig

    options = {"single_stage": True, "max_new_tokens": 40, "chunk_size": 1, "device": "cpu"}
    samples = Path(__file__).resolve().parent.parent / "samples"
    for attempt in range(8):
        manifest = manga2music.describe([samples / "calm"], out, model=str(folder),
                                        config=RunConfig(offline=True, vision_options=options, **config))
        entry = manifest["sections"][0]
        if entry["status"] == "ok" or "seed" in config or not _random_words(entry):
            break
        # random weights write a few stray characters under about 1 seed in 20 ("too short to be a music
        # description"): a take of its own, not what these tests are about; a fresh folder draws another seed
        out = out.with_name(f"{out.name}-{attempt + 1}")
    if entry["status"] != "ok":
        return entry, None, None
    record = json.loads((out / "calm.json").read_text())
    return entry, record["describe"]["seed"], (out / "calm.txt").read_text()


def _random_words(entry: dict) -> bool:
    """Whether a section failed because random weights wrote no usable words (not the failure a test made)."""
    return "gave no usable music description" in str(entry.get("message"))


@pytest.mark.slow
def test_a_section_read_without_a_seed_records_the_one_it_sampled_with_and_it_gives_the_same_words(tiny_models,
                                                                                                   tmp_path):
    """A local VLM samples (temperature 0.7): without --seed the record said ``seed: null``, so no record could say
    how to ask for the same description again.  Each section now draws a seed, and the recorded one repeats it."""
    model = tiny_models["llava"]
    entry, first_seed, first = _read_calm(model, tmp_path / "first")
    assert entry["seed"] == first_seed  # the manifest named none (null), even under --seed
    _, other_seed, other = _read_calm(model, tmp_path / "other")
    assert isinstance(first_seed, int) and isinstance(other_seed, int) and first_seed != other_seed
    assert first != other  # two runs without --seed are two takes
    _, again_seed, again = _read_calm(model, tmp_path / "again", seed=first_seed)
    assert again_seed == first_seed and again == first


@pytest.mark.slow
def test_a_model_folder_moved_and_given_at_its_new_place_keeps_what_it_made(tiny_models, tmp_path):
    """A model folder moved (`mv models/a models/b`), then the new place given as the line for a recorded folder
    that is gone asks: every section was described again ("describer /models/a -> /models/b") with a new seed, and
    its music made again: hours of a local model for the same weights.  What it made is kept, the records name the
    new place, and a plain rerun goes on with it."""
    import shutil

    import manga2music
    from manga2music.options import RunConfig

    samples = Path(__file__).resolve().parent.parent / "samples"
    options = {"single_stage": True, "max_new_tokens": 40, "chunk_size": 1, "device": "cpu"}
    first, moved = tmp_path / "models" / "a", tmp_path / "models" / "b"
    shutil.copytree(tiny_models["llava"], first)  # (copy2: the weights' times kept, as `mv` keeps them)
    out = tmp_path / "out"
    said: list[str] = []

    def describe(model, **config):
        said.clear()
        return manga2music.describe([samples / "calm"], out, model=model, callbacks=manga2music.Callbacks(
            log=lambda level, line: said.append(line)), config=RunConfig(offline=True, vision_options=options,
                                                                      seed=5, **config))

    assert describe(str(first))["sections"][0]["status"] == "ok"  # (seed 5: random weights write usable words)
    words = (out / "calm.txt").read_bytes()
    first.rename(moved)
    again = describe(str(moved))
    assert not any("describing again" in line for line in said), said
    assert f"{moved} is the model the words there were made with, moved from {first} (the same weights and " \
           "configs): what it made is kept" in said, said
    assert (out / "calm.txt").read_bytes() == words and again["sections"][0]["status"] == "skipped"
    assert json.loads((out / "calm.json").read_text())["describe"]["model"] == str(moved)
    plain = describe(None)
    assert any(line.startswith(f"model={str(moved)!r}") for line in said), said  # kept, at its new place
    assert not any("describing again" in line or "no longer there" in line for line in said), said
    assert plain["sections"][0]["status"] == again["sections"][0]["status"]


def test_another_models_processor_files_in_a_folder_stop_the_run_in_one_line(tiny_models, tmp_path):
    """A Qwen2-VL folder holding LLaVA's preprocessor_config.json and processor_config.json (files mixed up while
    mending a folder): every section failed with "AttributeError: 'SiglipImageProcessor...' object has no attribute
    'merge_size'".  The run stops in one line that says what is wrong and where to look."""
    import shutil

    from output_checks import cli

    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_models["qwen2_vl"], mixed)
    for name in ("preprocessor_config.json", "processor_config.json"):
        if (tiny_models["llava"] / name).exists():
            shutil.copy(tiny_models["llava"] / name, mixed / name)
    samples = Path(__file__).resolve().parent.parent / "samples"
    told = cli("describe", samples / "calm", samples / "action", "-o", tmp_path / "out", "--model", mixed,
               "--single-stage", "--offline", "--max-new-tokens", "8")
    assert told.returncode == 1, told.stderr
    assert f"Error: {mixed}: its processor does not fit its model (AttributeError: " in told.stderr, told.stderr
    assert "another model's" in told.stderr and "Traceback" not in told.stderr


def test_a_program_calling_the_api_gets_no_loading_bar_on_its_stderr(tiny_models, tmp_path, capfd):
    """`manga2music.describe(..., model=FOLDER)` printed transformers' "Loading weights: 100%|███|" bar on the
    program's stderr (the command line's own display says the load)."""
    import manga2music
    from manga2music.options import RunConfig

    samples = Path(__file__).resolve().parent.parent / "samples"
    manga2music.describe([samples / "calm"], tmp_path / "out", model=str(tiny_models["llava"]),
                         config=RunConfig(offline=True, vision_options={"single_stage": True, "max_new_tokens": 8,
                                                                        "device": "cpu"}))
    assert "Loading weights" not in capfd.readouterr().err


@pytest.mark.slow
def test_the_one_seed_a_run_shows_makes_its_words_and_its_music_again(tiny_models, tmp_path):
    """`run` with a local VLM and no --seed drew one seed to read the pages with and another for the music, and the
    manifest and listening page showed only the music's: `run --seed N` with it wrote other words and so other
    music, and no one seed could make the section again.  Its first music now takes its words' seed."""
    import manga2music
    from manga2music.options import RunConfig

    samples = Path(__file__).resolve().parent.parent / "samples"
    options = {"single_stage": True, "max_new_tokens": 40, "chunk_size": 1, "device": "cpu"}

    def run(out, seed=None):
        return manga2music.run([samples / "calm"], out, vision_model=str(tiny_models["llava"]), music_model="builtin",
                               config=RunConfig(offline=True, vision_options=options, duration=2.0, seed=seed))

    for attempt in range(8):  # random weights write no usable words under about 1 seed in 20: another take
        out = tmp_path / f"first-{attempt}"
        (entry,) = run(out)["sections"]
        if entry["status"] == "ok" or not _random_words(entry):
            break
    assert entry["status"] == "ok", entry
    record = json.loads((out / "calm.json").read_text())
    assert record["compose"]["seed"] == record["describe"]["seed"] == entry["seed"], (record, entry)
    (again,) = run(tmp_path / "again", seed=entry["seed"])["sections"]
    assert again["status"] == "ok", again
    assert (tmp_path / "again" / "calm.txt").read_text() == (out / "calm.txt").read_text()
    assert (tmp_path / "again" / "calm.wav").read_bytes() == (out / "calm.wav").read_bytes()


@pytest.mark.slow
def test_a_section_stopped_part_way_goes_on_with_its_seed_and_its_record_repeats_it(tiny_models, tmp_path,
                                                                                     monkeypatch):
    """The answers a stopped section kept were made with the seed drawn for it: the rerun samples the rest with that
    seed (not a new one), so the one seed recorded makes every answer of the description."""
    from manga2music.describers.transformers_vlm import TransformersDescriber as VLM

    model, out = tiny_models["llava"], tmp_path / "out"
    real, calls = VLM._complete, []

    def counted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3 and failing:
            raise BackendError("stopped by the test")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(VLM, "_complete", counted)
    for attempt in range(8):  # a seed under which random weights write no usable words: another folder, another seed
        folder_out = out.with_name(f"{out.name}-{attempt}")
        failing, calls[:] = True, []
        entry, _, _ = _read_calm(model, folder_out, seed=None)  # (seed=None: no retry inside, see _read_calm)
        if _random_words(entry):
            continue
        assert entry["status"] == "failed" and len(calls) == 3, entry  # pages 1 and 2 answered and kept; page 3
        failing, calls[:] = False, []  # failed
        entry, seed, resumed = _read_calm(model, folder_out, seed=None)
        if not _random_words(entry):
            break
    assert entry["status"] == "ok" and isinstance(seed, int), entry
    assert len(calls) == 2  # page 3, then the merge: the kept answers were not asked again
    _, again_seed, again = _read_calm(model, tmp_path / "again", seed=seed)
    assert again_seed == seed and again == resumed


@pytest.mark.slow
def test_a_section_whose_answer_could_not_be_used_is_asked_again_with_a_new_seed(tiny_models, tmp_path, monkeypatch):
    """A local VLM's answer that could not be used (it repeated the request, wrote no JSON, refused) failed its
    section, and the plain rerun sampled with the seed drawn for it, kept with the answers before it: the same
    answer again, the same failure at every rerun (`--force` was the only way on).  The rerun now asks again
    with a new seed; a failure that is not the answer's (a stop, memory) keeps the seed and answers
    (test_a_section_stopped_part_way_goes_on_with_its_seed_and_its_record_repeats_it)."""
    import manga2music
    from manga2music.describers.chat import Completion, sampling_seed
    from manga2music.describers.transformers_vlm import TransformersDescriber as VLM
    from manga2music.options import RunConfig

    real, seeds = VLM._complete, []

    def answering(self, prompt, images, **kwargs):
        seeds.append(sampling_seed(self))
        if echo and len(seeds) == 3:  # page 3: the request itself for an answer
            return Completion(text=prompt, prompt_tokens=10, completion_tokens=40)
        return real(self, prompt, images, **kwargs)

    monkeypatch.setattr(VLM, "_complete", answering)
    options = {"single_stage": True, "max_new_tokens": 40, "chunk_size": 1, "device": "cpu"}
    samples = Path(__file__).resolve().parent.parent / "samples"

    def describe(out):
        seeds.clear()
        return manga2music.describe([samples / "calm"], out, model=str(tiny_models["llava"]),
                                    config=RunConfig(offline=True, vision_options=options))["sections"][0]

    for attempt in range(8):  # random weights write no usable words under about 1 seed in 20: another folder
        out, echo = tmp_path / f"out-{attempt}", True
        entry = describe(out)
        if not _random_words(entry):
            break
    assert entry["status"] == "failed" and "repeated the request" in entry["message"], entry
    first = seeds[0]
    assert isinstance(first, int) and seeds == [first] * 3
    echo = False
    again = describe(out)
    assert again["status"] == "ok" or _random_words(again), again
    assert len(seeds) >= 3 and len(set(seeds)) == 1 and seeds[0] != first  # every page asked again, with a new seed


@pytest.mark.slow
def test_a_chapter_scored_without_a_seed_asks_every_question_with_the_seed_its_record_names(tiny_models, tmp_path,
                                                                                            monkeypatch):
    """``score`` asks a local VLM for page entries, the chapter's direction and each scene's words: every call is
    seeded with the one seed drawn for the chapter, kept across a stop, and named by the record (the reading's and
    each scene's)."""
    import manga2music
    from chapters import chat_score_replies, make_chapter
    from manga2music.describers.chat import Completion, sampling_seed
    from manga2music.describers.transformers_vlm import TransformersDescriber as VLM
    from manga2music.options import RunConfig

    make_chapter(tmp_path / "ch", [("calm", 2), ("action", 2)], seed=9)
    seeds: list = []
    replies: list = []

    def answers(self, prompt, images, *, json_schema, max_tokens):  # the real model loaded, a chapter's answers
        self.load()
        seeds.append(sampling_seed(self))
        if fail_on == len(seeds):
            raise BackendError("stopped by the test")
        return Completion(replies.pop(0).content, 10, 5)

    monkeypatch.setattr(VLM, "_complete", answers)

    def score(out, kept=0, **config):
        replies[:] = chat_score_replies(2, 2)[kept:]
        seeds.clear()
        manifest = manga2music.score([tmp_path / "ch"], out, vision_model=str(tiny_models["llava"]),
                                     music_model="builtin",
                                     config=RunConfig(offline=True, duration=1, vision_options={"chunk_size": 4},
                                                      **config))  # the 4 pages in one request, as replied
        return manifest["sections"][0]["status"]

    fail_on = 2  # the direction: the page entries were answered and kept
    assert score(tmp_path / "out") == "failed"
    first = seeds[0]
    assert isinstance(first, int)
    fail_on = 0
    assert score(tmp_path / "out", kept=1) == "ok"
    assert seeds == [first] * 3  # the direction and two scenes: the kept entries were not asked again
    record = json.loads((tmp_path / "out" / "ch.json").read_text())
    assert record["chapter_reading"]["seed"] == first
    assert [s["describer_seed"] for s in record["score"]["scenes"]] == [first, first]
    assert score(tmp_path / "out") == "skipped" and seeds == []  # up to date: nothing asked, and nothing kept to
    assert not list((tmp_path / "out" / ".manga2music" / "answers").glob("*/*"))  # resume (no drawn seed left)
    assert score(tmp_path / "again", force=True) == "ok" and len(set(seeds)) == 1 and seeds[0] != first


def test_a_chapter_direction_that_repeats_the_request_is_not_taken(tiny_models, tmp_path, monkeypatch):
    """A small VLM that gives the request back: its echo of the direction request (whose example is valid JSON)
    was taken as the chapter's direction ("instruments": ["..."]), kept, and the finished score recorded the lead
    "...".  It is an answer that cannot be used: the chapter fails, and the rerun asks again."""
    import manga2music
    from manga2music.describers.chat import Completion
    from manga2music.describers.transformers_vlm import TransformersDescriber as VLM
    from manga2music.options import RunConfig

    samples = Path(__file__).resolve().parent.parent / "samples"

    def answers(self, prompt, images, *, json_schema, max_tokens):
        self.load()
        if images:
            return Completion(json.dumps({"pages": [{"page": i + 1, "mood": "calm", "intensity": 1,
                                                     "scene_change": i == 0} for i in range(len(images))]}), 10, 40)
        if echo:
            return Completion(prompt, 10, 40)
        if "direction" in prompt.lower() and "json" in prompt.lower():
            return Completion(json.dumps({"key": "D minor", "instruments": ["piano", "strings"], "tempo_low": 60,
                                          "tempo_high": 90}), 10, 40)
        return Completion("Slow ambient piano piece at 70 BPM in D minor, soft strings, calm.", 10, 40)

    monkeypatch.setattr(VLM, "_complete", answers)

    def score():
        return manga2music.score([samples / "calm"], tmp_path / "out", vision_model=str(tiny_models["llava"]),
                                 music_model="builtin", config=RunConfig(offline=True, vision_options={
                                     "max_new_tokens": 200, "device": "cpu"}))["sections"][0]

    echo = True
    failed = score()
    assert failed["status"] == "failed" and "repeated the request" in failed["message"], failed
    echo = False
    made = score()
    assert made["status"] == "ok", made
    record = json.loads((tmp_path / "out" / "calm.json").read_text())
    assert record["score"]["theme"]["lead"] != "..." and "..." not in json.dumps(record["score"]["theme"])


def test_a_model_family_transformers_does_not_know_stops_the_run_at_the_first_section(tiny_models, tmp_path):
    """A folder whose config names a family this transformers does not know (a newer model) failed every section
    with the same line, each after its own try to load the model: 100 chapters, 100 identical failures. The run
    stops at the first, in one line."""
    import shutil

    from output_checks import cli

    folder = tmp_path / "newer"
    shutil.copytree(tiny_models["llava"], folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["model_type"] = "qwen9_vl"
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    samples = Path(__file__).resolve().parent.parent / "samples"
    result = cli("run", samples, "-o", tmp_path / "out", "--vision-model", folder, "--music-model", "builtin",
                 "--duration", "1", "--offline", "--device", "cpu", timeout=300)
    assert result.returncode == 1, result.stderr
    said = " ".join(result.stderr.split())
    assert said.count("is not a vision-language model transformers can load here") == 1, said
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert [e["status"] for e in manifest["sections"]] == ["failed"]  # the one it stopped at; the others left


def test_a_rerun_with_nothing_to_make_does_not_need_the_kept_vision_models_files(tiny_models, tmp_path, monkeypatch):
    """After `models rm`, an offline rerun with nothing to make stopped: "llava-0.5b: weights not in the cache and
    offline mode is on", as the kept model's processor was needed to measure how many pages it reads at a time, a
    setting of what its words were made with.  The measure its records hold is taken, and the model is needed only
    where a section is to be read: a new section still stops the run in that one line."""
    import shutil

    import manga2music
    from fake_hub import fake_repo
    from manga2music.options import RunConfig

    monkeypatch.setenv("MANGA2MUSIC_CACHE", str(tmp_path / "cache"))
    folder = tiny_models["llava"]
    fake_repo(tmp_path / "cache", "llava-hf/llava-interleave-qwen-0.5b-hf",
              {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
    samples = Path(__file__).resolve().parent.parent / "samples"
    out = tmp_path / "out"
    said: list[str] = []

    def describe(model, *sections):
        said.clear()
        return manga2music.describe([samples / s for s in sections], out, model=model, config=RunConfig(
            offline=True, seed=5, vision_options={"single_stage": True, "max_new_tokens": 40, "device": "cpu"}),
            callbacks=manga2music.Callbacks(log=lambda level, line: said.append(line)))

    first = describe("llava-0.5b", "calm")
    assert first["sections"][0]["status"] == "ok", first["sections"][0]
    words = (out / "calm.txt").read_bytes()
    assert "chunk_size" not in (json.loads((out / "calm.json").read_text())["describe"].get("kept_settings") or {})
    shutil.rmtree(tmp_path / "cache")  # what `models rm llava-0.5b` leaves
    again = describe(None, "calm")
    assert again["sections"][0]["status"] == "skipped", again["sections"][0]
    assert (out / "calm.txt").read_bytes() == words
    with pytest.raises(ModelUnavailableError, match="llava-0.5b.*not in .*offline"):
        describe(None, "calm", "action")
    assert not (out / "action.txt").exists() and (out / "calm.txt").read_bytes() == words
