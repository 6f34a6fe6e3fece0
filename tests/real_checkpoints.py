"""The real non-weight files of six checkpoints, assembled into folders that load like the Hub's.

``tests/data/checkpoints/<owner>__<model>/`` holds the configs, tokenizers,
processor settings and chat templates of real checkpoints (how faithful each
file is: ``SOURCES.md`` there).  Files two checkpoints share are stored once
and named in :data:`CHECKPOINTS`; the few that are too big to commit are
rebuilt here from smaller committed inputs:

- Qwen2-VL-2B's ``merges.txt`` is Qwen2.5-VL-3B's with the ``#version: 0.2``
  header line the Qwen2-VL copy carries (its hash is checked against the real
  file's in ``test_real_checkpoints.py``);
- SmolVLM2's ``tokenizer.json`` (3.5 MB) is its skeleton (every field but the
  vocabulary and merges) filled with ``vocab.json`` and ``merges.txt``, byte
  for byte (hash checked too);
- the Qwen tokenizers' ``tokenizer.json`` (7 MB on the Hub, absent from every
  copy found) is rebuilt from ``vocab.json`` + ``merges.txt`` +
  ``tokenizer_config.json`` by transformers' own converter, and checked token
  for token against an independent byte-level BPE (:mod:`slow_bpe`);
- MusicGen's T5 ``tokenizer.json`` is not committed at all: transformers builds
  the fast tokenizer from the byte-exact ``spiece.model``.

``real_files(name, folder)`` writes one checkpoint's files into ``folder``;
``tests/real_tiny.py`` adds tiny random weights beside them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "checkpoints"


@dataclass(frozen=True)
class Checkpoint:
    """One real checkpoint's files: its own folder, plus files shared with another folder."""

    hub_id: str
    folder: str  # under DATA
    shared: dict[str, str] = field(default_factory=dict)  # file name -> "other_folder/file"
    tokenizer: str = ""  # how tokenizer.json comes to be: "qwen-bpe", "skeleton" or "" (none needed)

    @property
    def path(self) -> Path:
        return DATA / self.folder


QWEN25 = "Qwen__Qwen2.5-VL-3B-Instruct"
MUSICGEN = "facebook__musicgen-small"

CHECKPOINTS: dict[str, Checkpoint] = {
    "llava-interleave-qwen-0.5b": Checkpoint(
        "llava-hf/llava-interleave-qwen-0.5b-hf", "llava-hf__llava-interleave-qwen-0.5b-hf",
        shared={"vocab.json": f"{QWEN25}/vocab.json"}, tokenizer="qwen-bpe"),
    "qwen2-vl-2b": Checkpoint(
        "Qwen/Qwen2-VL-2B-Instruct", "Qwen__Qwen2-VL-2B-Instruct",
        shared={"vocab.json": f"{QWEN25}/vocab.json"}, tokenizer="qwen-bpe"),
    "qwen2.5-vl-3b": Checkpoint("Qwen/Qwen2.5-VL-3B-Instruct", QWEN25, tokenizer="qwen-bpe"),
    "smolvlm2-256m": Checkpoint(
        "HuggingFaceTB/SmolVLM2-256M-Video-Instruct", "HuggingFaceTB__SmolVLM2-256M-Video-Instruct",
        tokenizer="skeleton"),
    "musicgen-small": Checkpoint("facebook/musicgen-small", MUSICGEN),
    "musicgen-stereo-small": Checkpoint(
        "facebook/musicgen-stereo-small", "facebook__musicgen-stereo-small",
        shared={name: f"{MUSICGEN}/{name}" for name in (
            "generation_config.json", "special_tokens_map.json", "tokenizer_config.json", "spiece.model")}),
}

#: the same BPE as a Qwen merges.txt with the "#version: 0.2" header (Qwen2-VL's and llava-interleave's copies)
VERSIONED_MERGES = {"llava-interleave-qwen-0.5b", "qwen2-vl-2b"}

VLM_NAMES = ["llava-interleave-qwen-0.5b", "qwen2-vl-2b", "qwen2.5-vl-3b", "smolvlm2-256m"]
MUSICGEN_NAMES = ["musicgen-small", "musicgen-stereo-small"]


def git_blob_sha1(data: bytes) -> str:
    """``git hash-object``: the id Git and the Hugging Face cache give a non-LFS file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def qwen_merges(versioned: bool) -> bytes:
    """Qwen's merges.txt: Qwen2.5-VL's bytes, with the "#version: 0.2" header line for Qwen2-VL's copy."""
    plain = (DATA / QWEN25 / "merges.txt").read_bytes()
    return b"#version: 0.2\n" + plain if versioned else plain


def smolvlm_tokenizer_json() -> bytes:
    """SmolVLM2's tokenizer.json, rebuilt byte for byte from its skeleton, vocab.json and merges.txt."""
    folder = CHECKPOINTS["smolvlm2-256m"].path
    data = json.loads((folder / "tokenizer.skeleton.json").read_text(encoding="utf-8"))
    data["model"]["vocab"] = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    data["model"]["merges"] = [line.split(" ") for line in lines if line and not line.startswith("#version")]
    return json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")


def committed_files(name: str) -> dict[str, Path]:
    """File name -> committed path for ``name``, shared files included (derived ones are not)."""
    cp = CHECKPOINTS[name]
    files = {p.name: p for p in sorted(cp.path.iterdir()) if p.is_file() and p.name != "tokenizer.skeleton.json"}
    files.update({dest: DATA / src for dest, src in cp.shared.items()})
    return files


@functools.lru_cache(maxsize=None)
def _qwen_tokenizer_json(name: str) -> bytes:
    """The fast tokenizer transformers builds from vocab.json + merges.txt + tokenizer_config.json.

    Built by the class tokenizer_config.json names (Qwen2Tokenizer): ``AutoTokenizer``
    on a llava folder without tokenizer.json picks the generic backend, which cannot
    convert BPE files (on the Hub the folder has its tokenizer.json).
    """
    import tempfile

    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    with tempfile.TemporaryDirectory() as tmp:
        _copy_sources(name, Path(tmp))
        config = json.loads((Path(tmp) / "tokenizer_config.json").read_text(encoding="utf-8"))
        tokenizer = tokenizer_class_from_name(config["tokenizer_class"]).from_pretrained(tmp)
        return tokenizer.backend_tokenizer.to_str(pretty=True).encode("utf-8")


def _copy_sources(name: str, folder: Path) -> None:
    for dest, src in committed_files(name).items():
        shutil.copyfile(src, folder / dest)
    if name in VERSIONED_MERGES:
        (folder / "merges.txt").write_bytes(qwen_merges(versioned=True))
    elif CHECKPOINTS[name].tokenizer == "qwen-bpe" and not (folder / "merges.txt").exists():
        (folder / "merges.txt").write_bytes(qwen_merges(versioned=False))


def real_files(name: str, folder: str | Path, *, with_tokenizer_json: bool = True) -> Path:
    """Write checkpoint ``name``'s real non-weight files into ``folder`` (created), as the Hub lays them out.

    ``with_tokenizer_json=False`` leaves out the rebuilt ``tokenizer.json``, so
    transformers builds the fast tokenizer from vocab.json + merges.txt itself
    (the slow way a folder without tokenizer.json loads).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _copy_sources(name, folder)
    kind = CHECKPOINTS[name].tokenizer
    if with_tokenizer_json and kind == "qwen-bpe":
        (folder / "tokenizer.json").write_bytes(_qwen_tokenizer_json(name))
    elif kind == "skeleton":
        (folder / "tokenizer.json").write_bytes(smolvlm_tokenizer_json())
    return folder


def real_config(name: str) -> dict:
    """The checkpoint's config.json as a dict."""
    return json.loads((CHECKPOINTS[name].path / "config.json").read_text(encoding="utf-8"))
