"""The project against real checkpoints' configs, tokenizers, processors and chat templates (no weights).

``tests/data/checkpoints`` holds those files (``SOURCES.md`` there says how
faithful each is); ``real_checkpoints.py`` assembles them into folders and
``real_tiny.py`` adds tiny random weights.  These tests check that

- the committed and rebuilt files are the recorded bytes, and the rebuilt fast
  tokenizers encode like a plain-Python BPE (or sentencepiece) on the same files;
- the tiny fixtures keep the real tokenizer, chat template, processor settings
  and the config values that matter (a drift fails here);
- a page costs the measured number of image tokens with each real processor, and
  the describer plans its chunks and the registry its memory from those numbers;
- ``describe`` and ``compose`` run end to end through the CLI on each fixture.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import real_checkpoints as rc
from manga2music import registry
from manga2music.cli.app import app
from manga2music.describers.transformers_vlm import PROMPT_RESERVE, TransformersDescriber
from manga2music.describers.vlm_memory import chunk_bytes
from manga2music.describers.vlm_processors import load_processor
from manga2music.prompts import stage1_prompt
from slow_bpe import GPT2_PATTERN, SlowBPE

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
HASHES = json.loads((rc.DATA / "hashes.json").read_text(encoding="utf-8"))

#: English, Japanese and special-token strings (ChatML and the image placeholders of each family)
TEXTS = [
    "Gentle lo-fi piano at 72 BPM in D minor, with soft strings and vinyl crackle.",
    "静かな夜、二人は屋上で話す。「また明日ね！」ドカーン！！",
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe these 3 pages.<|im_end|>\n"
    "<|im_start|>assistant\n",
    "<image><image>\nWhat happens? <|endoftext|>",
    "User:<fake_token_around_image><global-img><image><fake_token_around_image>Describe.<end_of_utterance>\nAssistant:",
    'It\'s 12345, they\'ll say "no"   twice\n\n\ttabs 🎵 café',
]

#: image tokens one more page costs, measured with the real processors on a 1600 x 1100 spread, a 900 x 1400 page
#: and an 800 x 1120 tile of a tall strip; the README's model table shows the same numbers
PAGE_SIZES = [(1600, 1100), (900, 1400), (800, 1120)]
MEASURED = {
    "llava-interleave-qwen-0.5b": [729, 729, 729],
    "qwen2-vl-2b": [2225, 1602, 1162],
    "qwen2.5-vl-3b": [2225, 1602, 1162],
    "smolvlm2-256m": [862, 863, 863],
}
#: the registry entry each checkpoint here stands for
REGISTRY_NAME = {"llava-interleave-qwen-0.5b": "llava-0.5b", "qwen2-vl-2b": "qwen2-vl-2b",
                 "qwen2.5-vl-3b": "qwen2.5-vl-3b", "smolvlm2-256m": "smolvlm2-256m"}

runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads; on a busy shared CPU, OpenMP's spinning makes them crawl."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def real_folder(tmp_path_factory):
    """``real_folder(name)``: the real files alone (no weights), assembled once."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = rc.real_files(name, tmp_path_factory.mktemp("real") / name)
        return built[name]

    return get


@functools.lru_cache(maxsize=None)
def processor_of(folder: Path):
    """The processor of a model folder, loaded once per session (tokenizer.json alone is 7 MB)."""
    return load_processor(str(folder), local_files_only=True)


def slow_reference(name: str, folder: Path, tokenizer) -> SlowBPE:
    added = {token.content: i for i, token in tokenizer.added_tokens_decoder.items()}
    if name.startswith("smolvlm"):  # SmolLM2's pre-tokenizer: digits one by one, then GPT-2's regex, no NFC
        return SlowBPE.from_files(folder, added, pattern=GPT2_PATTERN, nfc=False, split_digits=True)
    return SlowBPE.from_files(folder, added)


# --- the files themselves ----------------------------------------------------------------------


def test_committed_files_are_the_recorded_bytes():
    committed = {str(p.relative_to(rc.DATA)): rc.git_blob_sha1(p.read_bytes())
                 for p in rc.DATA.rglob("*") if p.is_file() and p.suffix not in (".md", ".txt")
                 and p.name != "hashes.json"}
    assert committed == HASHES["committed"]
    # the SHA-1s SOURCES.md calls byte-exact are the Hugging Face blob ids of the anchors
    assert committed["Qwen__Qwen2-VL-2B-Instruct/chat_template.json"].startswith("732bd68b")
    assert committed["facebook__musicgen-small/spiece.model"] == "4e28ff6ebdf584f5372d9de68867399142435d9a"


def test_rebuilt_files_are_byte_exact_copies():
    rebuilt = HASHES["rebuilt"]
    assert rc.git_blob_sha1(rc.qwen_merges(versioned=True)) == rebuilt["Qwen__Qwen2-VL-2B-Instruct/merges.txt"]
    assert (rc.git_blob_sha1(rc.smolvlm_tokenizer_json())
            == rebuilt["HuggingFaceTB__SmolVLM2-256M-Video-Instruct/tokenizer.json"])


@pytest.mark.parametrize("name", rc.VLM_NAMES)
def test_rebuilt_fast_tokenizer_encodes_like_the_slow_bpe(name, real_folder):
    from transformers import AutoTokenizer

    folder = real_folder(name)
    fast = AutoTokenizer.from_pretrained(str(folder))
    assert fast.is_fast and (folder / "tokenizer.json").is_file()
    slow = slow_reference(name, folder, fast)
    for text in TEXTS:
        ids = fast.encode(text, add_special_tokens=False)
        assert ids == slow.encode(text), text
        assert fast.decode(ids) == text
    assert len(fast) == len(set(slow.vocab.values()) | set(slow.added.values()))  # nothing lost or invented


def test_musicgen_fast_tokenizer_encodes_like_sentencepiece(real_folder):
    import sentencepiece
    from transformers import AutoTokenizer

    folder = real_folder("musicgen-small")
    assert not (folder / "tokenizer.json").exists()  # built from spiece.model by transformers
    fast = AutoTokenizer.from_pretrained(str(folder))
    slow = sentencepiece.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
    for text in TEXTS[:2] + ["Epic orchestral battle, 150 BPM: taiko drums & brass!", "  two  spaces  "]:
        assert fast(text)["input_ids"] == slow.encode(text) + [fast.eos_token_id], text
    assert fast.convert_tokens_to_ids("<extra_id_0>") == 32099 and len(fast) == 32100


# --- the tiny fixtures keep the real files ----------------------------------------------------


@pytest.mark.parametrize("name", rc.VLM_NAMES + rc.MUSICGEN_NAMES)
def test_tiny_fixture_keeps_every_real_file_but_the_shrunk_config(name, real_tiny, real_folder):
    tiny, real = real_tiny(name), real_folder(name)
    real_files = {p.name for p in real.iterdir()}
    tiny_files = {p.name for p in tiny.iterdir()}
    assert tiny_files == real_files | {"model.safetensors"}
    for file_name in real_files - {"config.json"}:
        assert (tiny / file_name).read_bytes() == (real / file_name).read_bytes(), file_name

    tiny_cfg, real_cfg = json.loads((tiny / "config.json").read_text()), rc.real_config(name)
    for key in ("model_type", "image_token_id", "image_token_index", "video_token_id", "vision_start_token_id",
                "vision_end_token_id", "scale_factor", "vision_feature_select_strategy", "vision_feature_layer"):
        assert tiny_cfg.get(key) == real_cfg.get(key), key


@pytest.mark.parametrize("name", rc.VLM_NAMES)
def test_tiny_vlm_loads_the_real_tokenizer_template_and_processor(name, real_tiny, real_folder):
    from transformers import AutoConfig

    tiny, real = processor_of(real_tiny(name)), processor_of(real_folder(name))
    template = json.loads((rc.CHECKPOINTS[name].path / "chat_template.json").read_text(encoding="utf-8"))
    assert tiny.chat_template == real.chat_template == template["chat_template"]
    assert tiny.image_processor.to_dict() == real.image_processor.to_dict()
    assert tiny.tokenizer.get_vocab() == real.tokenizer.get_vocab()
    assert tiny.tokenizer.added_tokens_decoder == real.tokenizer.added_tokens_decoder
    assert tiny.tokenizer.all_special_tokens == real.tokenizer.all_special_tokens
    assert tiny.image_token_id == real.image_token_id

    small, big = AutoConfig.from_pretrained(str(real_tiny(name))), AutoConfig.from_pretrained(str(real_folder(name)))
    for part in ("get_text_config", "vision_config"):
        a = getattr(small, part)() if part == "get_text_config" else getattr(small, part)
        b = getattr(big, part)() if part == "get_text_config" else getattr(big, part)
        for key in ("vocab_size", "max_position_embeddings", "image_size", "patch_size", "spatial_merge_size",
                    "temporal_patch_size", "window_size"):
            assert getattr(a, key, None) == getattr(b, key, None), (part, key)
        assert a.hidden_size < b.hidden_size  # only widths and depths shrink


# --- measured numbers --------------------------------------------------------------------------


@pytest.mark.parametrize("name", rc.VLM_NAMES)
def test_image_tokens_per_page_and_chunk_size_with_the_real_processor(name, real_folder):
    describer = TransformersDescriber(str(real_folder(name)), {"device": "cpu", "offline": True})
    describer.prepare()  # processor and config only: no weights here
    costs = [describer.page_cost(size) for size in PAGE_SIZES]
    assert costs == MEASURED[name]
    assert describer.tokens_per_page == max(costs[:2])  # the probe sizes: the spread and the page
    room = (describer.context_length - PROMPT_RESERVE - describer.options.max_new_tokens) // describer.tokens_per_page
    assert describer.chunk_size == min(8, room) == 8

    # the stage-1 prompt of 8 pages in the real chat template (images aside) fits the reserve
    prompt_tokens = describer._encode(stage1_prompt(8), [])["input_ids"].shape[1]
    assert 150 < prompt_tokens <= PROMPT_RESERVE

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if f"`{REGISTRY_NAME[name]}`" in line and "|" in line)
    assert " / ".join(f"{n:,}" for n in costs) in row, row


@pytest.mark.parametrize("name", rc.VLM_NAMES + ["llava-interleave-qwen-7b"])
def test_registry_memory_covers_the_weights_and_an_8_page_request(name, real_folder):
    """vram_gb >= bf16 weights + one 8-page request, from the real config; download_gb = the weights' bytes."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    if name.endswith("7b"):
        config, spec, per_page = (AutoConfig.from_pretrained(str(rc.DATA / "llava-hf__llava-interleave-qwen-7b-hf")),
                                  registry.find_spec("llava-7b", "vision"), MEASURED["llava-interleave-qwen-0.5b"][0])
    else:
        config = AutoConfig.from_pretrained(str(real_folder(name)))
        spec, per_page = registry.find_spec(REGISTRY_NAME[name], "vision"), MEASURED[name][0]
    with torch.device("meta"):
        params = sum(p.numel() for p in AutoModelForImageTextToText.from_config(config).parameters())
    stored = 4 if name.startswith("smolvlm") else 2  # SmolVLM2's safetensors are float32, the others bf16
    assert spec.download_gb == pytest.approx(params * stored / 1e9, rel=0.05)
    need = (params * 2 + chunk_bytes(config, 8, per_page)) / 1e9
    assert need <= spec.vram_gb + 0.3, f"{spec.name}: weights + 8 pages = {need:.1f} GB"
    assert spec.vram_gb <= need + 1.5  # and not padded far beyond it


# --- end to end through the CLI ----------------------------------------------------------------

DESCRIPTION = "Slow ambient pads in D minor at 70 BPM, gentle and melancholic, with a lonely piano."


def generation_prompt(processor) -> str:
    """What the chat template appends for the assistant's turn ("<|im_start|>assistant\\n", "Assistant:")."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
    with_prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return with_prompt[len(processor.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)):]


def answering(name: str, real_tiny, tmp_path: Path, answer: str) -> Path:
    """A copy of the tiny ``name`` model that answers ``answer`` to every chat prompt, decoded by its real
    tokenizer (see real_tiny.script_answer)."""
    from real_tiny import script_answer

    folder = shutil.copytree(real_tiny(name), tmp_path / name)
    processor = processor_of(real_tiny(name))
    eos = json.loads((folder / "generation_config.json").read_text())["eos_token_id"]
    eos = processor.tokenizer.convert_ids_to_tokens(eos[0] if isinstance(eos, list) else eos)
    script_answer(folder, answer, after=generation_prompt(processor), end=eos)
    return folder


@pytest.mark.parametrize("name", rc.VLM_NAMES)
def test_describe_end_to_end_through_the_cli(name, real_tiny, tmp_path):
    folder = answering(name, real_tiny, tmp_path, DESCRIPTION)

    out = tmp_path / "out"
    result = runner.invoke(app, ["describe", str(SAMPLES / "calm"), "-o", str(out), "--model", str(folder),
                                 "--offline", "--seed", "1", "--single-stage", "--json"])
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["sections"][0]
    assert entry["status"] == "ok" and entry["vision_model"] == str(folder)
    assert (out / "calm.txt").read_text(encoding="utf-8").strip() == DESCRIPTION  # decoded by the real tokenizer
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    describe = record["describe"]
    assert describe["chunks"][0]["pages"] == ["001.png", "002.png", "003.jpg"]  # one request, all 3 pages
    assert describe["warnings"] == []  # words a composer plays from: nothing said of them
    assert describe["usage"]["prompt_tokens"] > 3 * min(MEASURED[name]) / 4  # the pages went in as image tokens


def test_a_local_models_answer_cut_off_at_the_cap_is_known_as_a_servers_is(real_tiny, tmp_path):
    """A local model's answer that used every token it was allowed was never known to be cut off: the description
    was kept ending mid-phrase ("... with a lonely") with no warning, and cut-off JSON was patched up into an
    analysis ("the hero chases a thief"). It is now a cut-off answer, as a server's finish_reason=length is: the
    description loses its unfinished end (said), and cut-off JSON is never read as an analysis."""
    name = rc.VLM_NAMES[0]
    folder = answering(name, real_tiny, tmp_path, DESCRIPTION)
    out = tmp_path / "out"
    result = runner.invoke(app, ["describe", str(SAMPLES / "calm"), "-o", str(out), "--model", str(folder),
                                 "--offline", "--seed", "1", "--single-stage", "--max-new-tokens", "12"])
    assert result.exit_code == 0, result.output
    words = (out / "calm.txt").read_text(encoding="utf-8").strip()
    assert DESCRIPTION.startswith(words.rstrip(".")) and len(words) < len(DESCRIPTION) - 10, words
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))["describe"]
    assert any("cut off at the token limit" in w for w in record["warnings"]), record["warnings"]

    analysis = json.dumps({"genre": "action", "atmosphere": "tense and dark", "focus": "visual", "pacing": "fast",
                           "plot": "the hero chases a thief across the rooftops at night while the rain falls"})
    folder = answering(name, real_tiny, tmp_path / "json", analysis)
    out = tmp_path / "out-json"
    result = runner.invoke(app, ["describe", str(SAMPLES / "calm"), "-o", str(out), "--model", str(folder),
                                 "--offline", "--seed", "1", "--max-new-tokens", "30"])  # a cap given holds
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "calm failed" in said and "cut off at the token limit" in said, said
    assert "Raise --max-new-tokens" in said and not (out / "calm.txt").exists()


@pytest.mark.parametrize("name", rc.MUSICGEN_NAMES)
def test_compose_end_to_end_through_the_cli(name, real_tiny, tmp_path):
    import sentencepiece
    import soundfile as sf

    folder = real_tiny(name)
    long_text = " ".join(["Driving orchestral battle music with taiko drums, staccato strings and brass."] * 30)
    out = tmp_path / "out"
    result = runner.invoke(app, ["compose", "--text", long_text, "-o", str(out), "--model", str(folder),
                                 "--duration", "1", "--offline", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    audio = next(out.glob("*.wav"))
    info = sf.info(str(audio))
    assert info.samplerate == 32000 and abs(info.duration - 1.0) < 0.01
    assert info.channels == (2 if "stereo" in name else 1)
    if info.channels == 2:  # stereo-small's 8 codebooks are 4 per channel: the two channels are different audio
        left, right = sf.read(str(audio))[0].T
        assert abs(left - right).mean() > 0.1 * abs(left).mean()
    # the real T5 tokenizer counts the description: cut to the 256 tokens MusicGen's conditioner takes
    tokens = len(sentencepiece.SentencePieceProcessor(model_file=str(folder / "spiece.model")).encode(long_text)) + 1
    record = json.loads(next(out.glob("*.json")).read_text(encoding="utf-8")) if list(out.glob("*.json")) else {}
    text = json.dumps(record) + result.stdout
    assert f"description cut from {tokens} to 256 tokens" in text


# --- the registry: new models, licences ---------------------------------------------------------

NEW_MODELS = {  # name -> (what `models list` shows for the download, for the licence)
    "qwen2.5-vl-3b": ("7.5 GB", "qwen-research (non-commercial)"),
    "smolvlm2-256m": ("1 GB", "apache-2.0"),
    "smolvlm2-500m": ("2 GB", "apache-2.0"),
    "qwen3-vl-2b": ("4.3 GB", "apache-2.0"),
    "qwen3-vl-4b": ("8.9 GB", "apache-2.0"),
    "mangalmm": ("16.6 GB", "mit (commercial use unclear)"),
}


def test_models_list_shows_every_new_model_with_its_size_and_licence():
    listed = runner.invoke(app, ["models", "list"])  # into a pipe: one tab-separated line per model
    assert listed.exit_code == 0, listed.output
    lines = {cells[0]: cells for cells in (ln.split("\t") for ln in listed.stdout.splitlines())}
    for name, (size, licence) in NEW_MODELS.items():
        assert name in lines, sorted(lines)
        assert size in lines[name] and licence in lines[name], lines[name]
    rows = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)["models"]
    by_name = {(r["side"], r["name"]): r for r in rows}
    assert by_name[("music", "musicgen-small")]["commercial"] is False  # CC-BY-NC-4.0 weights
    assert by_name[("vision", "qwen2-vl-2b")]["licence"] == "apache-2.0"


def test_every_registry_entry_has_a_licence():
    for spec in registry.MODELS:
        assert spec.licence, spec.name
        assert spec.commercial in (True, False, None)
    assert registry.find_spec("builtin", "music").licence == "mit+gpl-2.0"  # the TimGM6mb SoundFont is GPL-2.0
    assert registry.find_spec("llava-0.5b", "vision").commercial is False  # tongyi-qianwen-research


def test_a_prose_description_naming_its_music_in_a_word_or_two_is_not_called_salad(real_tiny, tmp_path):
    """A chat model's prose ("A tense, suspenseful piece for the scene where the hero sneaks through the enemy castle
    ...": two music words among forty) was said to name "almost no music", as word salad is."""
    prose = ("A tense, suspenseful piece for the scene where the hero sneaks through the enemy castle at night, "
             "hiding behind pillars as guards pass by, holding his breath, knowing that a single mistake will cost "
             "him everything he has fought for.")
    folder = answering(rc.VLM_NAMES[0], real_tiny, tmp_path, prose)
    result = runner.invoke(app, ["describe", str(SAMPLES / "calm"), "-o", str(tmp_path / "out"), "--model",
                                 str(folder), "--offline", "--seed", "1", "--single-stage"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "calm.txt").read_text(encoding="utf-8").strip() == prose
    said = " ".join(result.output.split())
    assert "names almost no music" not in said and "may not be following the prompt" not in said, said


@pytest.mark.parametrize("caption", [
    "The image shows a drawing with two girls talking in a classroom. One of them is smiling.",
    # word salad that happens to hold one mood word ("lazy") among twenty: it passed, "ok", unsaid
    "Concord todd Angels Bone incubated UX stations lazy Norris Eden Nationalism spree quantum Oslo brick lantern "
    "forty wisdom pixel Hartford"], ids=["caption", "salad"])
def test_an_answer_that_names_no_music_is_said_not_passed_as_a_description(real_tiny, tmp_path, caption):
    """A small local model that captioned the page ("The image shows a manga page...") or answered word salad: its
    words were saved as the description, "ok", and MusicGen composed from them, nothing said.  The words are kept
    (the user may edit them) but a line, and the record's warnings, say that they name no music."""
    folder = answering(rc.VLM_NAMES[0], real_tiny, tmp_path, caption)
    out = tmp_path / "out"
    result = runner.invoke(app, ["describe", str(SAMPLES / "calm"), "-o", str(out), "--model", str(folder),
                                 "--offline", "--seed", "1", "--single-stage"])
    assert result.exit_code == 0, result.output
    assert (out / "calm.txt").read_text(encoding="utf-8").strip() == caption
    names = "names no genre, instrument, tempo, key or mood" if "classroom" in caption else \
        "names almost no music (only 'lazy' among 20 words)"
    said = f"calm: the description {names}: {folder} may not be following the prompt (its words are kept and " \
           "composed from; edit calm.txt, or try a larger model)"
    assert said in " ".join(result.output.split()), result.output
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert any(names in w for w in record["describe"]["warnings"]), record["describe"]


def test_a_description_musicgen_cannot_read_is_said_not_made_ok_unsaid(real_tiny, tmp_path):
    """MusicGen's T5 tokenizer reads Japanese as `<unk>`: "静かなピアノ" and "激しい戦闘のドラム" made the same
    music, each "ok" with no warning. A description mostly unknown to its tokenizer is said; English is not."""
    from manga2music.composers.base import ComposeRequest
    from manga2music.composers.musicgen import MusicgenComposer

    composer = MusicgenComposer(str(real_tiny("musicgen-small")), {"device": "cpu", "precision": "fp32"})
    try:
        quiet, fierce, calm = composer.compose([ComposeRequest(name, text, 0.2, 5) for name, text in (
            ("quiet", "静かなピアノ"), ("fierce", "激しい戦闘のドラム"), ("calm", "calm piano, 70 BPM, C major"))])
    finally:
        composer.close()
    for track in (quiet, fierce):
        assert any("does not know any of the description's words" in w for w in track.warnings), track.warnings
    assert not any("does not know" in w for w in calm.warnings), calm.warnings
