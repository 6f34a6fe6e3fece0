"""Hostile inputs through the real command: special files, odd names and encodings, huge values,
user files in the way, broken archives, failures inside one section (issue #13)."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import soundfile as sf
from output_checks import cli, one_line_error, record_mismatches, sha256, temp_files

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
BUILTIN = ("--vision-model", "builtin", "--music-model", "builtin")


def statuses(stdout: str) -> dict:
    manifest = json.loads(stdout)
    return {e["name"]: e["status"] for e in manifest["sections"] if e["name"] in manifest["this_run"]}


@pytest.fixture
def two_sections(tmp_path) -> Path:
    root = tmp_path / "in"
    for name in ("calm", "action"):
        shutil.copytree(SAMPLES / name, root / name)
    return root


# --- special files --------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
def test_a_fifo_and_a_link_to_dev_zero_are_skipped_pages_not_a_hang(two_sections, tmp_path):
    os.mkfifo(two_sections / "calm" / "004.png")
    os.symlink("/dev/zero", two_sections / "calm" / "006.png")
    os.mkfifo(two_sections / "stuck.cbz")
    os.mkfifo(two_sections / "stuck.txt")
    out = tmp_path / "out"
    result = cli("run", two_sections, "-o", out, *BUILTIN, "--duration", "1", "--json", timeout=90)
    assert "Traceback" not in result.stderr
    found = statuses(result.stdout)
    assert found["calm"] == "ok" and found["action"] == "ok"
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    skipped = {Path(s["source"]).name: s["error"] for s in record["skipped_pages"]}
    assert set(skipped) == {"004.png", "006.png"} and all("regular file" in e for e in skipped.values())
    assert found["stuck"] == "failed" and result.returncode == 1


def test_a_link_loop_named_like_a_page_is_a_skipped_page_not_the_end_of_the_run(two_sections, tmp_path):
    """`self.png -> self.png` (or a.png -> b.png -> a.png) in a chapter ended the whole run before any work, with a
    traceback ("RuntimeError: Symlink loop"), every other chapter lost."""
    os.symlink("self.png", two_sections / "calm" / "self.png")
    os.symlink("b.png", two_sections / "action" / "a.png")
    os.symlink("a.png", two_sections / "action" / "b.png")
    os.symlink("loop.cbz", two_sections / "loop.cbz")  # a chapter archive that is a loop fails alone
    out = tmp_path / "out"
    result = cli("run", two_sections, "-o", out, *BUILTIN, "--duration", "1", "--json", timeout=90)
    assert "Traceback" not in result.stderr and result.returncode == 1, result.stderr
    assert statuses(result.stdout) == {"calm": "ok", "action": "ok", "loop": "failed"}
    skipped = json.loads((out / "action.json").read_text(encoding="utf-8"))["skipped_pages"]
    assert {Path(s["source"]).name for s in skipped} == {"a.png", "b.png"}


def _without_root_override() -> list[str]:
    """A command prefix under which a folder's permissions hold (root reads every folder otherwise)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be tried")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
@pytest.mark.parametrize("command", ["run", "score"])
def test_a_chapter_folder_that_cannot_be_read_is_a_failed_chapter_not_left_out(two_sections, tmp_path, command):
    """A chapter folder the user may not read (`chmod 000`) was left out without a word: "1 of 1 sections done",
    exit 0, and nothing in the manifest said a chapter was missing."""
    import subprocess
    import sys

    from output_checks import cli_env

    locked = two_sections / "action"
    locked.chmod(0)
    try:
        out = tmp_path / "out"
        result = subprocess.run([*_without_root_override(), sys.executable, "-m", "manga2music", command,
                                 str(two_sections), "-o", str(out), *BUILTIN, "--json",
                                 *(("--duration", "1") if command == "run" else ())],
                                capture_output=True, text=True, env=cli_env(), timeout=120)
    finally:
        locked.chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert statuses(result.stdout) == {"calm": "ok", "action": "failed"}
    entry = next(e for e in json.loads(result.stdout)["sections"] if e["name"] == "action")
    assert "cannot be read" in entry["message"] and "ermission" in entry["message"], entry
    assert "action" in result.stderr and "Traceback" not in result.stderr


def test_a_shortened_output_path_is_the_same_whichever_way_the_output_folder_is_named(tmp_path):
    """A chapter deep enough to have its output path shortened: given through a link to the output folder (or with
    `cd OUT && -o .`), the path was measured from the name given, not shortened, and every such chapter was made
    again beside its first files."""
    from manga2music.outputs import SectionFiles

    real = tmp_path.joinpath(*[f"{k}" + "d" * 199 for k in range(7)])  # about 1,400 bytes of folders
    real.mkdir(parents=True)
    link = tmp_path / "out"
    link.symlink_to(real)
    name = "/".join(f"{k:02d}" + "x" * 198 for k in range(12))  # 2,412 bytes: past the limit from the real path only
    through_link = SectionFiles.for_section(link, name).base.relative_to(link)
    direct = SectionFiles.for_section(real, name).base.relative_to(real)
    assert through_link == direct and len(direct.parts) == 3, direct


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
@pytest.mark.parametrize("given", ["series", "chapter"])
def test_a_chapter_folder_that_can_be_listed_but_not_entered_is_a_failed_chapter_not_a_traceback(two_sections,
                                                                                               tmp_path, given):
    """`chmod 644` on a folder (its names may be listed, its files not reached): the run ended before any work in
    "PermissionError: [Errno 13] Permission denied" and a traceback, the series given or the chapter itself."""
    import subprocess
    import sys

    from output_checks import cli_env

    volume = two_sections / "Vol 1"
    volume.mkdir()
    (two_sections / "action").rename(volume / "action")
    locked = volume if given == "series" else two_sections / "calm"
    locked.chmod(0o644)
    try:
        out = tmp_path / "out"
        result = subprocess.run([*_without_root_override(), sys.executable, "-m", "manga2music", "run",
                                 str(two_sections if given == "series" else locked), "-o", str(out), *BUILTIN,
                                 "--json", "--duration", "1"], capture_output=True, text=True, env=cli_env(),
                                timeout=120)
    finally:
        locked.chmod(0o755)
    assert "Traceback" not in result.stderr and result.returncode == 1, result.stderr
    expected = {"Vol 1": "failed", "calm": "ok"} if given == "series" else {"calm": "failed"}
    assert statuses(result.stdout) == expected, result.stdout
    entry = next(e for e in json.loads(result.stdout)["sections"] if e["status"] == "failed")
    assert f"{locked.name}: this folder cannot be read (Permission denied)" in entry["message"], entry


def test_a_chapter_deeper_than_a_path_can_name_is_a_failed_chapter_beside_the_others(two_sections, tmp_path):
    """Folders nested past the longest path the system takes (4096 bytes on Linux): "OSError: [Errno 36] File name
    too long" and a traceback ended the run before any work."""
    here = os.open(two_sections, os.O_RDONLY)
    try:
        for level in range(24):  # 24 names of 200 characters: opened one inside the other, as no path reaches
            os.mkdir(f"{level:02d}" + "x" * 198, dir_fd=here)
            inner = os.open(f"{level:02d}" + "x" * 198, os.O_RDONLY, dir_fd=here)
            os.close(here)
            here = inner
        page = os.open("001.png", os.O_WRONLY | os.O_CREAT, dir_fd=here)
        os.write(page, (SAMPLES / "calm" / "001.png").read_bytes())
        os.close(page)
    finally:
        os.close(here)
    result = cli("run", two_sections, "-o", tmp_path / "out", *BUILTIN, "--duration", "1", "--json", timeout=120)
    assert "Traceback" not in result.stderr and result.returncode == 1, result.stderr
    made = statuses(result.stdout)
    assert made["calm"] == made["action"] == "ok" and list(made.values()).count("failed") == 1, made
    entry = next(e for e in json.loads(result.stdout)["sections"] if e["status"] == "failed")
    assert "File name too long" in entry["message"], entry


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_a_finished_output_folder_made_read_only_is_one_line(two_sections, tmp_path):
    """`chmod 555` on a finished output folder (to protect it), then a rerun into it: a traceback ending in
    "PermissionError: ... .manga2music.lock.json.tmp-..." (its lock file was there from the first run)."""
    import subprocess
    import sys

    from output_checks import cli_env

    out = tmp_path / "out"
    assert cli("run", two_sections / "calm", "-o", out, *BUILTIN, "--duration", "1").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    out.chmod(0o555)
    try:
        result = subprocess.run([*_without_root_override(), sys.executable, "-m", "manga2music", "run",
                                 str(two_sections), "-o", str(out), *BUILTIN, "--duration", "1"],
                                capture_output=True, text=True, env=cli_env(), timeout=120)
    finally:
        out.chmod(0o755)
    assert result.returncode == 2 and one_line_error(result.stderr), result.stderr
    assert f"cannot write into the output folder {out} (Permission denied)" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
@pytest.mark.parametrize("locked", ["calm.json", "calm.wav"])
def test_an_output_file_that_cannot_be_read_is_said_so_not_called_the_users(two_sections, tmp_path, locked):
    """`chmod 000 OUT/calm.json` (or calm.wav), then a rerun: "calm.json exists and was not written by manga2music"
    and "calm.wav was changed since manga2music wrote it", both untrue: the files could not be read."""
    import subprocess
    import sys

    from output_checks import cli_env

    out = tmp_path / "out"
    assert cli("run", two_sections / "calm", "-o", out, *BUILTIN, "--duration", "1").returncode == 0
    (out / locked).chmod(0)
    try:
        result = subprocess.run([*_without_root_override(), sys.executable, "-m", "manga2music", "run",
                                 str(two_sections / "calm"), "-o", str(out), *BUILTIN, "--duration", "2"],
                                capture_output=True, text=True, env=cli_env(), timeout=120)
    finally:
        (out / locked).chmod(0o644)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"cannot read {out / locked} (Permission denied)" in result.stderr, result.stderr
    assert "not written by manga2music" not in result.stderr and "was changed" not in result.stderr


# --- names and encodings ---------------------------------------------------------------------------


def test_names_that_are_not_utf8_work_and_what_we_write_is_utf8(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    bad_dir = os.path.join(os.fsencode(root), b"caf\xe9")  # Latin-1 bytes: not UTF-8
    os.mkdir(bad_dir)
    for i, src in enumerate(sorted((SAMPLES / "calm").iterdir())):
        shutil.copy(src, os.path.join(bad_dir, b"p\xff%d" % i + os.fsencode(src.suffix)))
    shutil.copytree(SAMPLES / "action", root / "action")
    out = tmp_path / "out"
    result = cli("run", root, "-o", out, *BUILTIN, "--duration", "1", "--json")
    assert result.returncode == 0, result.stderr
    names = set(statuses(result.stdout))
    assert "action" in names and len(names) == 2
    manifest_bytes = (out / "manifest.json").read_bytes()
    manifest_bytes.decode("utf-8")  # strict: no surrogates, no stray bytes
    (out / "index.html").read_bytes().decode("utf-8")
    odd = next(n for n in names if n != "action")
    assert odd.startswith("caf")
    record_path = out / (odd + ".json")
    record = json.loads(record_path.read_bytes().decode("utf-8"))
    # the record still locates the exact files that were read
    raw = [bytes.fromhex(p["path_bytes"]) if p.get("path_bytes") else os.fsencode(p["path"]) for p in record["pages"]]
    assert all(os.path.exists(r) for r in raw) and len(raw) == 3


@pytest.mark.parametrize("command", ["run", "score"])
def test_a_chapter_name_as_long_as_the_file_system_allows_is_made_in_full(tmp_path, command):
    """A chapter folder named in 248 bytes (83 characters of Japanese; ext4 allows 255) failed with "File name too
    long": the hidden temporary file beside its description added 14 bytes, and a score's NAME.cue01.loop.wav 16."""
    name = "第1話 " + "長い題名のテスト" * 10
    assert len(name.encode()) == 248
    root = tmp_path / "in"
    shutil.copytree(SAMPLES / "calm", root / name)
    out = tmp_path / "out"
    result = cli(command, root, "-o", out, *BUILTIN, *(("--duration", "1") if command == "run" else ()), "--json",
                 timeout=120)
    assert result.returncode == 0, result.stderr
    assert statuses(result.stdout) == {name: "ok"}  # the section keeps its whole name
    written = [p for p in out.rglob("*") if p.is_file()]
    track = [p for p in written if p.suffix == ".wav" and ".cue" not in p.name]
    assert len(track) == 1 and track[0].name.startswith("第1話 長い題名のテスト")
    assert sf.info(track[0]).duration > 0.5
    assert all(len(os.fsencode(p.name)) <= 255 for p in written)
    assert record_mismatches(out) == [] and temp_files(out) == []


def test_two_chapters_whose_long_names_differ_only_at_the_end_get_files_of_their_own(tmp_path):
    """Two chapters named with the same first 200 characters (a series title, then the chapter's number): the run
    hung for ever, numbering the second "-2", "-3"... in a part of its name that was cut off."""
    root = tmp_path / "in"
    names = ["A tale " * 33 + "chapter 1", "A tale " * 33 + "chapter 2"]
    for name in names:
        shutil.copytree(SAMPLES / "calm", root / name)
    out = tmp_path / "out"
    result = cli("run", root, "-o", out, *BUILTIN, "--duration", "1", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    assert statuses(result.stdout) == {names[0]: "ok", names[1]: "ok"}
    manifest = json.loads(result.stdout)
    tracks = [e["tracks"][0] for e in manifest["sections"]]
    assert len(set(tracks)) == 2 and all((out / t).is_file() for t in tracks)
    assert tracks[0].endswith("chapter 1.wav") and tracks[1].endswith("chapter 2.wav")
    assert record_mismatches(out) == []


@pytest.mark.parametrize("encoding", ["shift_jis", "latin-1", "utf-16", "latin-1-short", "cp1252-short"])
def test_a_description_saved_in_another_encoding_is_kept_and_composed(tmp_path, encoding):
    """A short Western text (a few accented letters) was taken for GBK or Shift-JIS: "Berceuse tr鋊 douce" was
    composed and shown."""
    text = {"shift_jis": "静かなピアノ、ゆっくり 70 BPM", "latin-1": "Café piano, très calme, 70 BPM",
            "utf-16": "静かなピアノ 70 BPM café", "latin-1-short": "Berceuse très douce, 50 BPM, harpe",
            "cp1252-short": "Fête joyeuse, Ça va"}[encoding]
    encoding = encoding.removesuffix("-short")
    desc = tmp_path / "desc"
    desc.mkdir()
    (desc / "edited.txt").write_bytes(text.encode(encoding))
    before = sha256(desc / "edited.txt")
    out = tmp_path / "out"
    result = cli("compose", desc, "-o", out, "--model", "builtin", "--duration", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert sha256(desc / "edited.txt") == before
    record = json.loads((out / "edited.json").read_bytes().decode("utf-8"))
    assert record["description"] == text
    from manga2music.audio import read_tags

    assert read_tags(out / "edited.wav")["comment"] == text


def test_a_short_japanese_description_saved_in_shift_jis_is_read_as_shift_jis():
    """Short kana-rich Shift-JIS texts were read as GB18030 ("斶偟偄僺傾僲偲僠僃儘"): composed in the default style,
    and recorded so.  Chinese saved in GBK is not taken for Shift-JIS (read so, it gives half-width katakana, no
    kana)."""
    import re

    from manga2music.files import decode_text

    for text in ("悲しいピアノとチェロ、テンポ60", "暗いシンセとベース、テンポ90", "静かな雨の音とピアノ"):
        assert decode_text(text.encode("shift_jis")) == text
    for text in ("激烈的战斗音乐，160 BPM，紧张", "安静的钢琴，慢", "悲伤的大提琴和小提琴"):
        assert not re.search("[\u3041-\u30ff]", decode_text(text.encode("gbk")))


def test_an_encoding_guessed_for_a_description_is_said_with_its_words_as_read(tmp_path):
    """A short Chinese description saved in GBK was read as Korean (EUC-KR), and composed from, "ok", with no word:
    the guess, and the words as read, are said now, so that a wrong one shows; UTF-8 and UTF-16 with a BOM are no
    guess and say nothing."""
    desc = tmp_path / "desc"
    desc.mkdir()
    (desc / "battle.txt").write_bytes("激烈的战斗音乐，160 BPM，紧张".encode("gbk"))
    (desc / "calm.txt").write_text("Soft piano, 70 BPM", encoding="utf-8")
    (desc / "rain.txt").write_text("静かな雨、60 BPM", encoding="utf-16")
    result = cli("compose", desc, "-o", tmp_path / "out", "--model", "builtin", "--duration", "1")
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "is not UTF-8" in line]
    assert len(said) == 1 and said[0].startswith(f"{desc / 'battle.txt'} is not UTF-8: read as "), result.stderr
    words = json.loads((tmp_path / "out" / "battle.json").read_text(encoding="utf-8"))["description"]
    assert f'a guess ("{words}"); if its words read wrong, save it as UTF-8' in said[0]  # as composed from


@pytest.mark.parametrize("encoding", ["shift_jis", "latin-1", "utf-16", "utf-8-sig"])
def test_a_description_edited_in_another_encoding_in_the_output_folder_is_shown_on_the_listening_page(tmp_path,
                                                                                                    encoding):
    """The track was composed from an edited NAME.txt saved in Shift-JIS, Latin-1 or UTF-16, then the listening page
    read it as UTF-8: a traceback, no manifest, and every later run into the folder crashed the same way.  A UTF-8
    file with a BOM (Notepad) showed the BOM on the page."""
    import html

    text = {"latin-1": "Café accordion waltz, très calme, 90 BPM"}.get(encoding, "静かなピアノ、70 BPM、ハ長調。")
    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    out = tmp_path / "out"
    args = ("run", samples, "-o", out, "--duration", "1", "--seed", "1")
    assert cli(*args).returncode == 0
    (out / "calm.txt").write_bytes((text + "\r\n").encode(encoding))
    for _ in range(2):  # the run that composes from it, and the one after
        result = cli(*args)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        page = (out / "index.html").read_text(encoding="utf-8")
        spoken = "" if encoding == "latin-1" else ' lang="ja"'  # kana: read in a Japanese voice
        assert f'class="description"{spoken}>{html.escape(text)}<' in page.replace("\ufeff", "BOM")
    assert json.loads((out / "calm.json").read_bytes().decode("utf-8"))["description"] == text


def test_a_chapter_named_manifest_does_not_write_its_record_into_the_runs_manifest(tmp_path):
    """A chapter folder named "manifest" wrote its record to OUTPUT/manifest.json, the run's manifest: one file
    with the keys of both (a script reading the manifest found the chapter's pages and files at its top)."""
    import shutil

    samples = Path(__file__).resolve().parent.parent / "samples"
    shutil.copytree(samples / "calm", tmp_path / "S" / "manifest")
    shutil.copytree(samples / "action", tmp_path / "S" / "Ch 2")
    out = tmp_path / "out"
    for attempt in range(2):  # and a rerun finds its files under the same name
        result = cli("run", tmp_path / "S", "-o", out, "--duration", "1", "--json")
        assert result.returncode == 0, result.stderr
        if attempt == 0:  # said as what it is ("manifest is named like a file of manifest's own")
            assert "its record would be the output folder's own manifest.json" in " ".join(result.stderr.split())
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert "pages" not in manifest and set(manifest["files"]) <= {"index.html"}
    assert {e["name"]: e["status"] for e in manifest["sections"]} == {"Ch 2": "skipped", "manifest-2": "skipped"}
    assert json.loads((out / "manifest-2.json").read_text(encoding="utf-8"))["pages"][0]["name"] == "001.png"
    assert (out / "manifest-2.wav").is_file()


def test_compose_text_with_an_invalid_byte(tmp_path):
    out = tmp_path / "out"
    arg = os.fsdecode(b"calm piano \xff at night")
    result = cli("compose", "--text", arg, "-o", out, "--model", "builtin", "--duration", "1", "--json")
    assert result.returncode == 0, result.stderr
    (out / "manifest.json").read_bytes().decode("utf-8")
    assert any(out.glob("*.wav"))


# --- limits checked before any work ----------------------------------------------------------------


@pytest.mark.parametrize("flag,value,expect", [
    ("--duration", "1e9", "--duration"), ("--duration", "100000", "--duration"), ("--duration", "inf", "--duration"),
    ("--duration", "nan", "--duration"), ("--device", "tpu", "--device"), ("--precision", "fp8", "--precision"),
    ("--batch-size", "0", "--batch-size"),
])
def test_impossible_values_are_refused_up_front(two_sections, tmp_path, flag, value, expect):
    out = tmp_path / "out"
    result = cli("run", two_sections, "-o", out, *BUILTIN, flag, value, timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and expect in result.stderr
    assert not out.exists() or not any(out.iterdir())  # no work was done


# --- user files in the way ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["manifest.json", "index.html"])
def test_a_users_manifest_or_index_is_never_replaced(two_sections, tmp_path, name):
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_text("my own notes\n")
    result = cli("run", two_sections, "-o", out, *BUILTIN, "--duration", "1")
    assert (out / name).read_text() == "my own notes\n"
    assert result.returncode == 2 and one_line_error(result.stderr), result.stderr
    assert name in result.stderr and "-o" in result.stderr


def test_a_users_analysis_file_is_never_replaced_and_save_artifact_works_on_a_rerun(two_sections, tmp_path):
    out = tmp_path / "out"
    first = cli("run", two_sections, "-o", out, *BUILTIN, "--duration", "1")
    assert first.returncode == 0, first.stderr
    assert not (out / "calm.analysis.json").exists()
    (out / "action.analysis.json").write_text("mine\n")
    again = cli("run", two_sections, "-o", out, *BUILTIN, "--duration", "1", "--save-artifact")
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "calm.analysis.json").read_text(encoding="utf-8"))["analysis"]["genre"]
    assert (out / "action.analysis.json").read_text() == "mine\n"
    assert "action.analysis.json" in again.stderr


def test_output_that_is_a_file_is_one_line(two_sections, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    result = cli("run", two_sections, "-o", target, *BUILTIN, "--duration", "1")
    assert result.returncode == 2 and one_line_error(result.stderr), result.stderr
    assert target.read_text() == "x"


def test_a_user_file_where_a_section_folder_must_go_fails_that_section_only(tmp_path):
    root = tmp_path / "in"
    shutil.copytree(SAMPLES / "calm", root / "ch01" / "part1")
    shutil.copytree(SAMPLES / "action", root / "ch02")
    out = tmp_path / "out"
    out.mkdir()
    (out / "ch01").write_text("a file of mine")
    result = cli("run", root, "-o", out, *BUILTIN, "--duration", "1", "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert statuses(result.stdout) == {"ch01/part1": "failed", "ch02": "ok"}
    assert (out / "ch01").read_text() == "a file of mine"
    assert (out / "index.html").exists()


# --- broken archives never kill the run ------------------------------------------------------------


def _zip_bomb(path: Path) -> None:
    """An archive whose entries claim 900 MB each (what a zip bomb's headers say), built in milliseconds."""
    import struct

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"{i:03d}.png", b"\0" * 1024)
    data = bytearray(path.read_bytes())
    huge = struct.pack("<I", 900 * 1024**2)
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := data.find(sig, start)) >= 0:
            data[start + offset:start + offset + 4] = huge
            start += 4
    path.write_bytes(bytes(data))


def test_broken_archives_and_pdfs_fail_alone(two_sections, tmp_path):
    (two_sections / "broken.cbz").write_bytes(b"PK\x03\x04 this is not a zip")
    (two_sections / "broken.pdf").write_bytes(b"%PDF-1.4 nothing else")
    _zip_bomb(two_sections / "bomb.cbz")
    out = tmp_path / "out"
    result = cli("run", two_sections, "-o", out, *BUILTIN, "--duration", "1", "--json", timeout=180)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    found = statuses(result.stdout)
    assert found["calm"] == "ok" and found["action"] == "ok"
    # two sources share the stem "broken": each keeps its extension, so the user can tell them apart
    assert found["broken.cbz"] == "failed" and found["broken.pdf"] == "failed" and found["bomb"] == "failed"
    assert (out / "index.html").exists()


def _encrypted_zip(path: Path, pages: list[Path], only: set[str] | None = None) -> None:
    """A .cbz whose members (those named in ``only``, else all) are marked encrypted (ZipCrypto), as `zip -P secret`
    makes them: Python cannot write one, so each member's "encrypted" flag is set in its local header and in the
    central directory."""
    with zipfile.ZipFile(path, "w") as zf:
        for page in pages:
            zf.write(page, page.name)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    marked = [only is None or info.filename in only for info in infos]
    for info, mark in zip(infos, marked):
        if mark:
            data[info.header_offset + 6] |= 1  # local file header: general purpose flags
    at = -4
    for mark in marked:  # central directory entries, in the same order
        at = data.find(b"PK\x01\x02", at + 4)
        if mark:
            data[at + 8] |= 1
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert [bool(info.flag_bits & 1) for info in zf.infolist()] == marked


def test_one_password_protected_page_among_plain_ones_is_one_page_skipped_not_a_failed_chapter(two_sections,
                                                                                                 tmp_path):
    """`zip m.cbz 001.png 003.png`, then `zip -P pw m.cbz 002.png`: the whole chapter failed "password-protected",
    though two of its three pages could be read."""
    _encrypted_zip(two_sections / "m.cbz", sorted((SAMPLES / "calm").iterdir())[:3], only={"002.png"})
    out = tmp_path / "out"
    result = cli("run", two_sections, "-o", out, *BUILTIN, "--duration", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert statuses(result.stdout) == {"calm": "ok", "action": "ok", "m": "ok"}
    record = json.loads((out / "m.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in record["pages"]] == ["001.png", "003.jpg"]
    (skipped,) = record["skipped_pages"]
    assert skipped["source"].endswith("m.cbz!002.png") and "password-protected" in skipped["error"], skipped
    info = two_sections / "ComicInfo.xml"  # every page with a password, beside a plain ComicInfo.xml: the chapter's
    info.write_text("<ComicInfo/>", encoding="utf-8")  # one line, not one line a page
    _encrypted_zip(two_sections / "locked.cbz", [info, *sorted((SAMPLES / "calm").iterdir())],
                   only={p.name for p in (SAMPLES / "calm").iterdir()})
    info.unlink()
    result = cli("run", two_sections / "locked.cbz", "-o", tmp_path / "out2", *BUILTIN, "--duration", "1")
    assert result.returncode == 1 and "locked.cbz: password-protected; unpack it" in result.stderr, result.stderr
    assert "this page is password-protected" not in result.stderr, result.stderr


def test_a_password_protected_cbz_is_one_failed_chapter_in_one_line_that_says_so(two_sections, tmp_path):
    """Each page printed a line with Python's object text ("File <ZipInfo filename='E08P05.jpg' compress_type=deflate
    ...> is encrypted, password required for extraction"), then the chapter's failure repeated them all: a
    200-page chapter made 201 lines."""
    _encrypted_zip(two_sections / "Ch 05 locked.cbz", sorted((SAMPLES / "calm").iterdir()))
    result = cli("run", two_sections, "-o", tmp_path / "out", *BUILTIN, "--duration", "1", "--json")
    assert result.returncode == 1, result.stderr
    assert statuses(result.stdout) == {"calm": "ok", "action": "ok", "Ch 05 locked": "failed"}
    assert len(result.stderr.strip().splitlines()) == 1 and "ZipInfo" not in result.stderr, result.stderr
    assert "Ch 05 locked.cbz: password-protected" in result.stderr, result.stderr


@pytest.mark.parametrize("command", ["run", "score"])
def test_a_jpeg_cut_short_is_still_named_as_skipped_by_a_rerun_that_redoes_nothing(tmp_path, command):
    """A JPEG whose header reads but whose data is cut short is found only while the pages are decoded: the first
    run said so, but a rerun that reused everything printed nothing and its manifest and listening page listed no
    skipped page (the record still did)."""
    chapter = tmp_path / "ch"
    shutil.copytree(SAMPLES / "calm", chapter)
    data = (chapter / "003.jpg").read_bytes()
    (chapter / "003.jpg").write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    for attempt in ("first", "rerun"):
        result = cli(command, chapter, "-o", out, *BUILTIN, "--json", *(("--duration", "1") if command == "run" else ()))
        assert result.returncode == 0, result.stderr
        (entry,) = json.loads(result.stdout)["sections"]
        assert entry["status"] == ("ok" if attempt == "first" else "skipped")
        assert [s["source"].rsplit("/", 1)[-1] for s in entry["skipped_pages"]] == ["003.jpg"], (attempt, entry)
        assert result.stderr.count("skipping page 003.jpg") == 1, (attempt, result.stderr)
        assert "003.jpg" in (out / "index.html").read_text(encoding="utf-8")


def test_a_page_with_a_cut_short_exif_block_is_read_without_pythons_warnings_on_the_screen(tmp_path):
    """Photoshop writes a whole TIFF copy of a scan into a JPEG's EXIF; the JPEG format holds 64 kB of it, so the
    block ends in the middle of its entry table (four Chinese picture-story scans found on GitHub are like this).
    Pillow still reads the tags that are there but says so with a Python warning, twice a page: 'TiffImagePlugin.py:
    950: UserWarning: Truncated File Read' and the source line, on the user's screen."""
    import struct

    from PIL import Image

    section = tmp_path / "in" / "scans"
    section.mkdir(parents=True)
    for name in ("001", "002"):
        shutil.copy(SAMPLES / "calm" / f"{name}.png", section / f"{name}.png")
    # 21 entries announced, one there: Orientation 6 (as stored, turn 90 degrees clockwise to show)
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00" + struct.pack("<H", 21) + struct.pack("<HHII", 0x0112, 3, 1, 6)
    page = Image.open(SAMPLES / "calm" / "003.jpg").convert("RGB")
    page.transpose(Image.Transpose.ROTATE_90).save(section / "003.jpg", quality=92, exif=exif)
    out = tmp_path / "out"
    result = cli("run", tmp_path / "in", "-o", out, *BUILTIN, "--duration", "1", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "warnings.warn" not in result.stderr, result.stderr
    record = json.loads((out / "scans.json").read_text(encoding="utf-8"))
    third = record["pages"][2]
    assert third["orientation"] == 6 and third["size"] == list(page.size)  # the tag that was there is obeyed
    assert not record.get("skipped_pages")


@pytest.mark.skipif(not __import__("PIL.features", fromlist=["check"]).check("avif"), reason="Pillow without AVIF")
def test_avif_pages_are_read_and_a_phone_photo_in_heic_is_named_not_dropped(tmp_path):
    """Manga sites serve AVIF pages and iPhones save photos as HEIC.  A chapter folder with such pages lost them
    without a word (only .jpg, .png, .webp, .gif, .bmp and .tif were looked at): the track was made from the other
    pages, and a folder of AVIF pages alone was 'no pages found'."""
    from PIL import Image

    section = tmp_path / "in" / "ch1"
    section.mkdir(parents=True)
    shutil.copy(SAMPLES / "calm" / "001.png", section / "001.png")
    Image.open(SAMPLES / "calm" / "002.png").convert("RGB").save(section / "002.avif")
    (section / "003.heic").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    shutil.copy(SAMPLES / "calm" / "003.jpg", section / "004.jpg")
    out = tmp_path / "out"
    result = cli("describe", tmp_path / "in", "-o", out, "--model", "builtin", timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    record = json.loads((out / "ch1.json").read_text(encoding="utf-8"))
    assert [Path(p["source"]).name for p in record["pages"]] == ["001.png", "002.avif", "004.jpg"]
    (skipped,) = record["skipped_pages"]
    assert Path(skipped["source"]).name == "003.heic" and "HEIC" in skipped["error"] and "JPEG" in skipped["error"]
    assert "003.heic" in result.stderr  # said on the screen too, in one line


def test_jpeg_2000_and_other_page_types_pillow_reads_are_pages_and_a_painting_programs_file_is_named(tmp_path):
    """Archive.org's comic scans are JPEG 2000 (.jp2): a chapter of them vanished from a series without a word (and
    .tga, .pcx, .ppm pages with it).  A painting program's file left among the pages is named, not dropped."""
    from PIL import Image, features

    if not features.check("jpg_2000"):
        pytest.skip("this Pillow has no JPEG 2000 decoder")
    series = tmp_path / "series"
    scans, mixed = series / "Ch 1 scans", series / "Ch 2"
    scans.mkdir(parents=True)
    mixed.mkdir()
    pages = [Image.open(p).convert("RGB") for p in sorted((SAMPLES / "calm").iterdir())]
    pages[0].save(scans / "001.jp2")
    pages[1].save(scans / "002.jp2")
    pages[0].save(mixed / "001.tga")
    pages[1].save(mixed / "002.pcx")
    pages[2].save(mixed / "003.ppm")
    (mixed / "004.kra").write_bytes(b"PK\x03\x04" + bytes(60))  # Krita's file: a zip
    out = tmp_path / "out"
    result = cli("describe", series, "-o", out, "--model", "builtin", "--json", timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert {e["name"]: e["pages"] for e in json.loads(result.stdout)["sections"]} == {"Ch 1 scans": 2, "Ch 2": 3}
    (skipped,) = json.loads((out / "Ch 2.json").read_text(encoding="utf-8"))["skipped_pages"]
    assert Path(skipped["source"]).name == "004.kra" and "Krita" in skipped["error"] and "PNG" in skipped["error"]


def test_cbr_cb7_and_rar_chapters_are_read_when_they_are_zips_and_named_when_they_cannot_be_read(two_sections,
                                                                                                  tmp_path):
    """Comic archives come as .cbr (RAR), .cb7 (7-Zip) and .cbt (tar) too, and many a .cbr is a zip under another
    name.  In a series folder such a chapter was left out without a word, so a reader's soundtrack skipped it."""
    page = (SAMPLES / "calm" / "001.png").read_bytes()
    with zipfile.ZipFile(two_sections / "ch03.cbr", "w") as zf:  # a zip named .cbr, as many are
        zf.writestr("001.png", page)
        zf.writestr("002.png", page)
    (two_sections / "ch04.cbr").write_bytes(b"Rar!\x1a\x07\x01\x00" + bytes(200))  # RAR 5
    (two_sections / "ch05.cb7").write_bytes(b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(200))
    (two_sections / "extras.rar").write_bytes(b"Rar!\x1a\x07\x00" + bytes(200))  # RAR 4
    import tarfile

    with tarfile.open(two_sections / "ch06.cbt", "w") as tf:
        tf.add(SAMPLES / "calm" / "001.png", arcname="001.png")
    out = tmp_path / "out"
    result = cli("describe", two_sections, "-o", out, "--model", "builtin", "--json", timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    manifest = json.loads(result.stdout)
    found = {e["name"]: e for e in manifest["sections"]}
    assert found["ch03"]["status"] == "ok" and found["calm"]["status"] == "ok" and found["action"]["status"] == "ok"
    assert found["ch06"]["status"] == "ok"  # a tar is read (and a real RAR or 7-Zip: see test_other_archives.py)
    for name, kind in (("ch04", "RAR"), ("ch05", "7-Zip"), ("extras", "RAR")):  # damaged ones, each one line
        assert found[name]["status"] == "failed", found[name]
        assert kind + " archive" in found[name]["message"] and "\n" not in found[name]["message"], found[name]
    assert result.returncode == 1


# --- any failure inside a section stays in it -------------------------------------------------------


def test_an_unexpected_error_in_one_section_fails_only_that_section(two_sections, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "calm.wav").mkdir()  # a folder where calm's track must go: the write raises IsADirectoryError
    result = cli("run", two_sections, "-o", out, *BUILTIN, "--duration", "1", "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert statuses(result.stdout) == {"calm": "failed", "action": "ok"}
    assert (out / "index.html").exists() and (out / "action.wav").exists()
    assert temp_files(out) == [] and record_mismatches(out) == []


def test_a_library_error_in_one_section_is_named_and_the_rest_finish(two_sections, tmp_path, monkeypatch):
    """Any exception class, not only ours: the section fails with its cause, the run goes on."""
    import manga2music
    from manga2music.describers import builtin
    from manga2music.pipeline import RunConfig

    real = builtin.BuiltinDescriber.describe

    def describe(self, pages, **kw):
        pages = list(pages)
        if any(p.name == "001.png" for p in pages) and len(pages) == 3 and pages[2].name == "003.jpg":
            raise ValueError("a library said no")
        return real(self, pages, **kw)

    monkeypatch.setattr(builtin.BuiltinDescriber, "describe", describe)
    manifest = manga2music.run([two_sections], tmp_path / "out", vision_model="builtin", music_model="builtin",
                               config=RunConfig(duration=1.0))
    by_name = {e["name"]: e for e in manifest["sections"]}
    assert by_name["action"]["status"] == "ok"
    assert by_name["calm"]["status"] == "failed" and "ValueError: a library said no" in by_name["calm"]["message"]
    assert (tmp_path / "out" / "index.html").exists()


# --- records that tell the truth -------------------------------------------------------------------


def test_nested_midi_paths_survive_a_rerun_that_skips(tmp_path):
    root = tmp_path / "in"
    shutil.copytree(SAMPLES / "calm", root / "ch01" / "part1")
    out = tmp_path / "out"
    first = cli("run", root, "-o", out, *BUILTIN, "--duration", "1", "--json")
    again = cli("run", root, "-o", out, *BUILTIN, "--duration", "1", "--json")
    for result in (first, again):
        entry = json.loads(result.stdout)["sections"][0]
        assert entry["midi"] == ["ch01/part1.mid"], entry
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="ch01/part1.mid"' in page


def test_changing_only_the_format_reencodes_the_same_music(two_sections, tmp_path):
    out = tmp_path / "out"
    first = cli("run", two_sections, "-o", out, *BUILTIN, "--duration", "2")
    assert first.returncode == 0
    wav, _ = sf.read(out / "calm.wav")
    midi = (out / "calm.mid").read_bytes()
    again = cli("run", two_sections, "-o", out, *BUILTIN, "--duration", "2", "--format", "flac")
    assert again.returncode == 0, again.stderr
    flac, _ = sf.read(out / "calm.flac")
    assert abs(wav - flac).max() < 1e-3  # the same music, in the new format
    assert (out / "calm.mid").read_bytes() == midi
    assert not (out / "calm.wav").exists()  # the old format was ours: it is replaced, as the README says
    assert record_mismatches(out) == []


def test_the_recorded_model_is_the_name_the_user_chose(two_sections, tmp_path):
    out = tmp_path / "out"
    result = cli("run", two_sections, "-o", out, *BUILTIN, "--duration", "1", "--json")
    entry = json.loads(result.stdout)["sections"][0]
    assert entry["vision_model"] == "builtin" and entry["music_model"] == "builtin"


def test_a_jpeg_cut_short_beside_an_edited_description_is_a_skipped_page_not_one_of_its_pages(tmp_path):
    """With a description of the user's, the pages are not decoded (nothing is described), yet a page added since
    that cannot be decoded was recorded as one of the section's pages and the manifest listed no skipped page;
    a rerun with the same pages then forgot the one it had said."""
    chapter = tmp_path / "ch"
    shutil.copytree(SAMPLES / "calm", chapter)
    out = tmp_path / "out"
    assert cli("run", chapter, "-o", out, *BUILTIN, "--duration", "1").returncode == 0
    (out / "ch.txt").write_text("Solo harp lullaby at 60 BPM in F major\n", encoding="utf-8")
    data = (SAMPLES / "calm" / "003.jpg").read_bytes()
    (chapter / "004.jpg").write_bytes(data[: len(data) // 3])
    for attempt in ("pages changed", "rerun"):
        result = cli("run", chapter, "-o", out, *BUILTIN, "--duration", "1", "--json")
        assert result.returncode == 0, result.stderr
        (entry,) = json.loads(result.stdout)["sections"]
        assert [s["source"].rsplit("/", 1)[-1] for s in entry["skipped_pages"]] == ["004.jpg"], (attempt, entry)
        assert result.stderr.count("skipping page 004.jpg") == 1, (attempt, result.stderr)
        record = json.loads((out / "ch.json").read_text(encoding="utf-8"))
        assert "004.jpg" not in [Path(p["path"]).name for p in record["pages"]], attempt
        assert entry["pages"] == 3


def test_save_artifact_beside_an_edited_description_writes_the_analysis_or_says_why_not(tmp_path):
    """`--save-artifact` on a section whose description the user edited did nothing and said nothing."""
    chapter = tmp_path / "ch"
    shutil.copytree(SAMPLES / "calm", chapter)
    out = tmp_path / "out"
    assert cli("run", chapter, "-o", out, *BUILTIN, "--duration", "1").returncode == 0
    (out / "ch.txt").write_text("Solo harp lullaby at 60 BPM in F major\n", encoding="utf-8")
    result = cli("run", chapter, "-o", out, *BUILTIN, "--duration", "1", "--save-artifact")
    assert result.returncode == 0, result.stderr
    analysis = json.loads((out / "ch.analysis.json").read_text(encoding="utf-8"))  # of these very pages
    record = json.loads((out / "ch.json").read_text(encoding="utf-8"))
    assert analysis["analysis"] == record["describe"]["analysis"]

    (out / "ch.analysis.json").unlink()
    shutil.copy(SAMPLES / "action" / "001.png", chapter / "004.png")  # the analysis is of the pages before
    result = cli("run", chapter, "-o", out, *BUILTIN, "--duration", "1", "--save-artifact")
    assert result.returncode == 0, result.stderr
    assert not (out / "ch.analysis.json").exists()
    assert "--save-artifact" in result.stderr and "ch.analysis.json" in result.stderr, result.stderr


def test_a_section_none_of_whose_pages_reads_counts_all_of_them(tmp_path):
    """Three pages that are not images and one JPEG cut short: "no readable page among 1" (only the one that got
    as far as decoding was counted), with four pages skipped."""
    chapter = tmp_path / "in" / "bad"
    chapter.mkdir(parents=True)
    for name in ("001.png", "002.png", "003.png"):
        (chapter / name).write_bytes(b"not an image at all")
    data = (SAMPLES / "calm" / "003.jpg").read_bytes()
    (chapter / "004.jpg").write_bytes(data[: len(data) // 3])
    result = cli("run", chapter.parent, "-o", tmp_path / "out", *BUILTIN, "--duration", "1", "--json")
    (entry,) = json.loads(result.stdout)["sections"]
    assert entry["status"] == "failed" and len(entry["skipped_pages"]) == 4
    assert entry["message"].startswith("no readable page among 4"), entry["message"]


def _psd(path: Path, image) -> None:
    """A Photoshop file as Photoshop writes one with "maximise compatibility": header, no resources, no layers, the
    merged RGB image (raw planes)."""
    import struct

    import numpy as np

    pixels = np.asarray(image.convert("RGB"))
    height, width = pixels.shape[:2]
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)  # version 1, 3 channels, 8 bits, RGB
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, image resources, layers: none
    planes = b"".join(pixels[:, :, c].tobytes() for c in range(3))
    path.write_bytes(header + sections + struct.pack(">H", 0) + planes)  # 0: raw, not compressed


def test_a_photoshop_page_is_read_as_a_page_and_one_that_does_not_read_is_named(tmp_path):
    """A webtoon artist's `003.psd` among the pages was left out without a word (not even counted among the pages)
    while `.clip` and `.kra` files were named: Pillow reads the merged image a Photoshop file carries."""
    from PIL import Image

    chapter = tmp_path / "ch"
    shutil.copytree(SAMPLES / "calm", chapter)
    _psd(chapter / "004.psd", Image.open(SAMPLES / "action" / "001.png"))
    (chapter / "005.psd").write_bytes(b"8BPS" + bytes(40))  # cut short
    out = tmp_path / "out"
    result = cli("describe", chapter, "-o", out, "--model", "builtin", "--json", timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    record = json.loads((out / "ch.json").read_text(encoding="utf-8"))
    assert [Path(p["source"]).name for p in record["pages"]] == ["001.png", "002.png", "003.jpg", "004.psd"]
    assert record["pages"][-1]["size"] == list(Image.open(SAMPLES / "action" / "001.png").size)
    assert [Path(p["source"]).name for p in record["skipped_pages"]] == ["005.psd"]


def test_another_output_folder_inside_the_library_is_not_read_as_chapters(tmp_path):
    """`run S -o S/music2` after `run S -o S/output`: every run said "Skipping S/output/...: no pages in it" for each
    folder of the other output, as if it were a chapter with no pages."""
    lib = tmp_path / "S"
    for name in ("Ch 1", "Ch 2"):
        shutil.copytree(SAMPLES / "calm", lib / "Vol 1" / name)
    first = cli("run", lib, "-o", lib / "output", *BUILTIN, "--duration", "1")
    assert first.returncode == 0, first.stderr
    second = cli("run", lib, "-o", lib / "music2", *BUILTIN, "--duration", "1", "--json")
    assert second.returncode == 0, second.stderr
    assert "output" not in second.stderr.replace(str(lib / "music2"), ""), second.stderr
    assert statuses(second.stdout) == {"Vol 1/Ch 1": "ok", "Vol 1/Ch 2": "ok"}


def test_a_binary_file_named_txt_is_not_composed_as_a_description(tmp_path):
    """Random bytes saved as `notes.txt` were composed: the record kept mojibake as the description, and the only
    sign was "no music words recognised"."""
    given = tmp_path / "given"
    given.mkdir()
    (given / "calm.txt").write_text("soft piano, 70 BPM\n", encoding="utf-8")
    (given / "noise.txt").write_bytes(bytes(range(256)) * 12)  # every byte value: no text encoding reads it
    made = cli("compose", given, "-o", tmp_path / "out", "--model", "builtin", "--duration", "1", "--json")
    assert made.returncode == 0, made.stderr
    assert [e["name"] for e in json.loads(made.stdout)["sections"]] == ["calm"]
    assert "Skipping" in made.stderr and "noise.txt is not a text file" in made.stderr
    own = tmp_path / "out" / "calm.txt"  # a section's own description turned binary fails that section, in words
    own.write_bytes(os.urandom(3000).replace(b"\x00", b"") + b"\x00\x01\x02")
    again = cli("compose", tmp_path / "out", "-o", tmp_path / "out", "--model", "builtin", "--json")
    assert again.returncode == 2 and "calm failed: calm.txt is not a text file" in again.stderr, again.stderr
    assert (tmp_path / "out" / "calm.wav").is_file()  # its music is left as it was


def test_a_chapter_of_many_unreadable_pages_says_the_first_ones_and_keeps_all_in_its_record(tmp_path):
    """An archive of 4000 broken entries printed 4000 "skipping page" lines: the first ten are said, then one line
    for the rest; the record (and listening page) still list every one, with why."""
    book = tmp_path / "omnibus.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        zf.writestr("p000.png", (SAMPLES / "calm" / "001.png").read_bytes())
        for k in range(1, 31):
            zf.writestr(f"p{k:03d}.png", b"not a page")
    out = tmp_path / "out"
    result = cli("run", book, "-o", out, *BUILTIN, "--duration", "1")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("omnibus: skipping page ") == 10, result.stderr
    assert result.stderr.count("omnibus: skipping more pages (its record's skipped_pages lists each, with why)") == 1
    assert len(json.loads((out / "omnibus.json").read_text(encoding="utf-8"))["skipped_pages"]) == 30


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
@pytest.mark.parametrize("locked", ["a folder above it", "the cache folder itself"])
def test_a_model_cache_that_cannot_be_read_leaves_auto_on_builtin_and_every_command_working(tmp_path, locked):
    """A cron job run as another user with HOME still /root (or HF_HOME another user's 700 folder): `run`, `doctor`
    and `models list` ended in a traceback ("PermissionError: ... /root/.cache/manga2music/models"), so not even a
    builtin run could be made."""
    import subprocess
    import sys

    from output_checks import cli_env

    private = tmp_path / "someone-elses"
    (private / "cache" / "models" / "models--facebook--musicgen-small").mkdir(parents=True)
    env = cli_env(MANGA2MUSIC_CACHE=str(private / "cache" / "models"))
    if locked == "the cache folder itself":
        private = private / "cache" / "models"
    private.chmod(0)

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*_without_root_override(), sys.executable, "-m", "manga2music", *args],
                              capture_output=True, text=True, env=env, timeout=120)

    try:
        made = command("run", str(SAMPLES / "calm"), "-o", str(tmp_path / "out"), "--duration", "1", "--offline")
        doctor = command("doctor", "--offline")
        listed = command("models", "list")
        removed = command("models", "rm", "musicgen-small", "--yes")
    finally:
        private.chmod(0o755)
    assert made.returncode == 0 and "Traceback" not in made.stderr, made.stderr
    assert sf.info(tmp_path / "out" / "calm.wav").duration > 0.9
    assert "its weights are out of reach: the model cache" in made.stderr and "(Permission denied)" in made.stderr
    assert removed.returncode == 1 and one_line_error(removed.stderr), removed.stderr
    assert "cannot be read here" in removed.stderr and "not in the cache" not in removed.stderr
    for result in (doctor, listed):
        assert "Traceback" not in result.stderr, result.stderr
        assert "cache" in result.stdout + result.stderr and "ermission" in result.stdout + result.stderr, result


def _run_in_a_folder_deleted_while_in_use(tmp_path, command: list, env: dict):
    """The command, run as its installed script runs it, in a folder removed after the process started.  A script
    file, not ``python -c``: with ``-c`` the current folder is on sys.path, and Python 3.13.0-3.13.2 then fail to
    import numpy or pydantic from a removed folder (CPython gh-130932), before manga2music runs at all."""
    import subprocess
    import sys

    gone = tmp_path / "gone"
    gone.mkdir()
    launcher = tmp_path / "launch.py"
    launcher.write_text(f"import os, runpy, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
                        f"sys.argv = ['manga2music', *{command!r}]; runpy.run_module('manga2music', "
                        "run_name='__main__')\n", encoding="utf-8")
    return subprocess.run([sys.executable, str(launcher)], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("args, env", [
    (("run", "{samples}"), {}),  # -o output, the default: taken from the current folder
    (("compose", "--text", "calm piano", "--duration", "1"), {}),
    (("run", "{samples}", "-o", "{out}"), {"MANGA2MUSIC_CACHE": "models"}),
    (("doctor", "--offline"), {"MANGA2MUSIC_CACHE": "models"}),
    (("models", "list"), {"MANGA2MUSIC_CACHE": "models"}),
    (("models", "path"), {"MANGA2MUSIC_CACHE": "models"}),
    (("models", "rm", "musicgen-small", "--yes"), {"MANGA2MUSIC_CACHE": "models"}),
], ids=["run", "compose", "relative-cache", "doctor", "models-list", "models-path", "models-rm"])
def test_a_current_folder_deleted_while_in_use_is_one_line_where_a_path_is_taken_from_it(tmp_path, args, env):
    """`mkdir d; cd d; rmdir ../d; manga2music run samples/` ended in a traceback ("FileNotFoundError" from
    Path.resolve); a relative MANGA2MUSIC_CACHE did even with a whole -o, and `doctor` too."""
    from output_checks import cli_env

    command = [a.format(samples=SAMPLES / "calm", out=tmp_path / "out") for a in args]
    result = _run_in_a_folder_deleted_while_in_use(tmp_path, command, cli_env(**env))
    assert result.returncode == 2 and one_line_error(result.stderr), result.stderr
    assert "the folder this command runs in is gone" in result.stderr, result.stderr


def test_whole_paths_still_work_from_a_current_folder_deleted_while_in_use(tmp_path):
    from output_checks import cli_env

    command = ["run", str(SAMPLES / "calm"), "-o", str(tmp_path / "out"), "--duration", "1"]
    result = _run_in_a_folder_deleted_while_in_use(tmp_path, command, cli_env())
    assert result.returncode == 0, result.stderr
    assert sf.info(tmp_path / "out" / "calm.wav").duration > 0.9


def test_a_chapter_folder_moved_away_during_the_run_is_one_line_that_says_so(two_sections, tmp_path):
    """A chapter moved (or deleted) while the run works on another said a line for each of its pages ("cannot read
    (No such file or directory)"), then failed as "no readable page among 3" naming two of them: nothing said that
    the folder itself was gone."""
    import manga2music

    lines: list[tuple[str, str]] = []
    moved = tmp_path / "calm moved"

    def section_started(done, total, name):
        if (two_sections / "calm").exists() and name.endswith(" action"):  # "describing action"
            (two_sections / "calm").rename(moved)

    result = manga2music.describe([two_sections], tmp_path / "out", model="builtin",
                                  callbacks=manga2music.Callbacks(sections=section_started,
                                                                  log=lambda level, m: lines.append((level, m))))
    assert moved.exists(), "the folder was never moved: nothing was tested"
    entries = {e["name"]: e for e in result["sections"]}
    assert entries["action"]["status"] == "ok"
    assert entries["calm"]["status"] == "failed"
    assert entries["calm"]["message"] == f"{two_sections / 'calm'} is gone (moved or deleted since the run started)"
    said = [m for _, m in lines if "calm" in m and "action" not in m]
    assert len(said) == 1, said


def test_a_chapter_scored_into_its_own_folder_is_still_read_with_the_rest_of_the_library(tmp_path):
    """`score "Ch 1" -o "Ch 1"` (the music beside the pages), then `run LIBRARY`: the run left Ch 1 out without a
    word, for the lock file in it marked it as another run's output folder, whose folders hold no chapters.  Its
    own pages are still a chapter; the output's subfolders are still not read as chapters."""
    lib = tmp_path / "S"
    for name in ("Ch 1", "Ch 2"):
        shutil.copytree(SAMPLES / "calm", lib / "Vol 1" / name)
    shutil.copytree(SAMPLES / "action", lib / "Vol 1" / "Ch 1" / "extras" / "omake")  # a chapter inside it
    beside = cli("score", lib / "Vol 1" / "Ch 1", "-o", lib / "Vol 1" / "Ch 1", *BUILTIN)
    assert beside.returncode == 0, beside.stderr
    assert (lib / "Vol 1" / "Ch 1" / ".manga2music.lock").exists()
    whole = cli("run", lib, "-o", tmp_path / "music", *BUILTIN, "--duration", "1", "--json")
    assert whole.returncode == 0, whole.stderr
    chapters = {"Vol 1/Ch 1": "ok", "Vol 1/Ch 1/extras/omake": "ok", "Vol 1/Ch 2": "ok"}
    assert statuses(whole.stdout) == chapters, whole.stderr
    assert "no pages in it" not in whole.stderr, whole.stderr
    into = cli("run", lib, "-o", lib / "Vol 1" / "Ch 2", *BUILTIN, "--duration", "1", "--json")  # into a chapter
    assert into.returncode == 0, into.stderr
    assert statuses(into.stdout) == chapters, into.stderr
    again = cli("run", lib, "-o", lib / "Vol 1" / "Ch 2", *BUILTIN, "--duration", "1", "--json")
    assert again.returncode == 0 and "no pages in it" not in again.stderr, again.stderr  # its music folders: no line
    assert statuses(again.stdout) == dict.fromkeys(chapters, "skipped"), again.stderr


def _damage_deflated(archive: Path, member: str) -> None:
    """Flip 40 bytes near the start of ``member``'s compressed data, as a bad sector or a download resumed wrongly
    does: unpacking it is then zlib's own error (``invalid distance too far back``), not a bad CRC-32."""
    import zlib

    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 2  # its code tables
    for k in range(start, start + 40):
        data[k] ^= 0xFF
    archive.write_bytes(bytes(data))
    with zipfile.ZipFile(archive) as zf, pytest.raises(zlib.error):
        zf.read(member)


def test_damaged_compressed_data_in_a_cbz_or_an_epub_loses_that_page_not_the_chapter_or_the_run(tmp_path):
    """zlib's error is not an OSError: a damaged page of a deflated CBZ failed its chapter in a line that named no
    page; a damaged page document of an EPUB, or a damaged page named without an extension, ended the whole run
    with a traceback while the sections were being found (no manifest, no listening page, other chapters lost)."""
    from PIL import Image
    from test_epub import make_book

    lib = tmp_path / "lib"
    lib.mkdir()
    pages = {}
    for k, source in enumerate(sorted((SAMPLES / "calm").iterdir()), start=1):
        raw = tmp_path / f"{k}.png"
        Image.open(source).save(raw, compress_level=0)  # pixels the zip itself compresses (a deflate stream)
        pages[k] = raw.read_bytes()
    with zipfile.ZipFile(lib / "Ch 1.cbz", "w", zipfile.ZIP_DEFLATED) as zf:
        for k, data in pages.items():
            zf.writestr(f"{k:03d}.png", data)
    _damage_deflated(lib / "Ch 1.cbz", "002.png")
    with zipfile.ZipFile(lib / "Ch 2.cbz", "w", zipfile.ZIP_DEFLATED) as zf:  # pages named without extensions
        for k, data in pages.items():
            zf.writestr(f"{k:03d}", data)
    _damage_deflated(lib / "Ch 2.cbz", "001")
    book = make_book(lib / "Vol 1.epub")
    _damage_deflated(book, "OEBPS/Text/page2.xhtml")  # shows the third picture of the reading order
    shutil.copytree(SAMPLES / "action", lib / "Ch 3")
    out = tmp_path / "out"
    result = cli("run", lib, "-o", out, *BUILTIN, "--duration", "1", "--json", timeout=180)
    assert "Traceback" not in result.stderr and result.returncode == 0, result.stderr[-2000:]
    assert statuses(result.stdout) == {"Ch 1": "ok", "Ch 2": "ok", "Vol 1": "ok", "Ch 3": "ok"}

    def read(name):
        record = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        return [p["name"] for p in record["pages"]], [s["name"] for s in record["skipped_pages"]]

    assert read("Ch 1") == (["001.png", "003.png"], ["002.png"])
    assert read("Ch 2") == (["002", "003"], ["001"])
    assert read("Vol 1")[0] == ["zz-cover.png", "b-first.png", "0-third.png", "c-fourth.png"]  # "a page 2.jpg" gone
    assert "Ch 1: skipping page 002.png" in result.stderr and "Ch 2: skipping page 001" in result.stderr
    assert "page2.xhtml cannot be read" in result.stderr and "left out" in result.stderr
    assert (out / "index.html").exists()


def test_a_page_hundreds_of_times_wider_than_tall_gets_a_thumbnail_and_the_run_its_listening_page(tmp_path):
    """A webtoon's spacer slice (1000 x 2) made a 90,000-pixel-wide thumbnail that JPEG cannot hold: every run and
    score of the chapter ended after its music in a traceback, with no manifest and no listening page."""
    from PIL import Image

    chapter = tmp_path / "strip" / "ch1"
    shutil.copytree(SAMPLES / "calm", chapter)
    Image.new("RGB", (1000, 2), "white").save(chapter / "002b.png")
    for command in ("run", "score"):
        out = tmp_path / command
        result = cli(command, tmp_path / "strip", "-o", out, *BUILTIN, *(("--duration", "1") if command == "run"
                                                                           else ()), "--json", timeout=180)
        assert "Traceback" not in result.stderr and result.returncode == 0, result.stderr[-2000:]
        assert statuses(result.stdout) == {"ch1": "ok"}
        listening = (out / "index.html").read_text(encoding="utf-8")
        assert listening.count("data:image/jpeg;base64,") >= 4  # every page, the spacer too


def test_a_description_saved_again_with_windows_line_ends_is_the_same_description(tmp_path):
    """Only the line ends changed (saved in a Windows editor): "composing again: its description changed", and the
    same words made other music."""
    desc = tmp_path / "desc"
    desc.mkdir()
    (desc / "calm.txt").write_bytes(b"Slow sad piano ballad\n90 BPM in A minor\n")
    args = ("compose", desc, "-o", tmp_path / "out", "--model", "builtin", "--duration", "1", "--seed", "5",
            "--json")
    assert cli(*args).returncode == 0
    made = sha256(tmp_path / "out" / "calm.wav")
    for ends in (b"\r\n", b"\r"):
        (desc / "calm.txt").write_bytes(b"Slow sad piano ballad" + ends + b"90 BPM in A minor" + ends)
        again = cli(*args)
        assert [e["status"] for e in json.loads(again.stdout)["sections"]] == ["skipped"], again.stderr
        assert sha256(tmp_path / "out" / "calm.wav") == made


def test_compose_of_emptied_descriptions_says_the_words_are_missing_not_to_pass_files(tmp_path):
    """`compose out -o out` after the user emptied calm.txt: "calm failed: calm.txt is empty", then "Error: nothing
    to compose / pass description files or --text": they were passed."""
    out = tmp_path / "out"
    made = cli("run", SAMPLES / "calm", "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
               "--duration", "1")
    assert made.returncode == 0, made.stderr
    (out / "calm.txt").write_text("   \n", encoding="utf-8")
    again = cli("compose", out, "-o", out, "--model", "builtin", "--duration", "1")
    assert again.returncode == 2 and "calm.txt is empty" in again.stderr, again.stderr
    assert "no description given holds words" in again.stderr and "pass description files" not in again.stderr
    assert (out / "calm.wav").exists()  # the music there is left as it was


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_a_pdf_or_archive_that_cannot_be_read_says_so_not_that_it_is_damaged(tmp_path):
    """A chapter's PDF or CBZ the user may not read (`chmod 000`) was "not a readable PDF (Failed to load document
    (PDFium: File access error))" and "not a readable comic archive ...": the user looked for damage. It is said
    as a page or folder that cannot be read is."""
    import subprocess
    import sys
    import zipfile

    from PIL import Image

    from output_checks import cli_env

    series = tmp_path / "S"
    series.mkdir()
    page = Image.new("RGB", (300, 420), "white")
    page.save(series / "Ch 1.pdf")
    with zipfile.ZipFile(series / "Ch 2.cbz", "w") as zf:
        for k in (1, 2):
            with zf.open(f"{k:03d}.png", "w") as f:
                page.save(f, "PNG")
    for locked in series.iterdir():
        locked.chmod(0)
    result = subprocess.run([*_without_root_override(), sys.executable, "-m", "manga2music", "run", str(series),
                             "-o", str(tmp_path / "out"), *BUILTIN, "--json", "--duration", "1"],
                            capture_output=True, text=True, env=cli_env(), timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    messages = {e["name"]: e["message"] for e in json.loads(result.stdout)["sections"]}
    assert set(messages) == {"Ch 1", "Ch 2"}, messages
    for message in messages.values():
        assert "cannot read (Permission denied)" in message and "not a readable" not in message, messages
