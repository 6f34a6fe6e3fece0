"""What a newcomer reads (issue #21): whole section names in a log, one line for a missing path,
and outputs that say which of two same-stem archives they came from."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from output_checks import cli, cli_env, one_line_error
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

from manga2music.cli.app import app

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
BUILTIN = ("--vision-model", "builtin", "--music-model", "builtin", "--duration", "1", "--seed", "1")
MODELS = ("--vision-model", "builtin", "--music-model", "builtin")


def test_piped_output_has_every_section_name_whole(tmp_path):
    root = tmp_path / "The Long Chapter Name of a Series With Many Words - Volume 01"
    long_names = [
        "Part One - In Which the Heroes Leave the Village and Walk for a Very Long Time/Scene 1 at Dawn",
        "Part One - In Which the Heroes Leave the Village and Walk for a Very Long Time/Scene 2 at Dusk",
        "Part Two - The Storm Over the Mountain Pass That Nobody Expected to Come So Early",
    ]
    for i, name in enumerate(long_names):
        shutil.copytree(SAMPLES / ("calm", "action", "webtoon")[i], root / name)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "manga2music", "run", str(root), "-o", str(out), *BUILTIN],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[0] for r in rows] == long_names, result.stdout  # whole, in order, nothing cut with "…"
    assert all(len(r) == 3 and r[1] == "ok" for r in rows)
    for name, (_, _, track) in zip(long_names, rows):
        assert (out / track).is_file() and track.startswith(name)
    assert "…" not in result.stdout and "3 of 3 sections done" in result.stderr  # the sentence is not a row


def test_a_missing_path_is_exactly_one_line(tmp_path):
    result = cli("run", "missing-folder", "-o", tmp_path / "out", env=cli_env())
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == ["Error: missing-folder: no such file or folder"], result.stderr


def _pages(dark: bool) -> list[Image.Image]:
    return [Image.new("L", (300, 420), 30 if dark else 225) for _ in range(2)]


def _cbz(path: Path, dark: bool) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for i, page in enumerate(_pages(dark)):
            buf = io.BytesIO()
            page.save(buf, format="PNG")
            zf.writestr(f"{i + 1:02d}.png", buf.getvalue())


def test_same_stem_archives_get_outputs_a_user_can_tell_apart_and_keep_them(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _cbz(src / "unmerged.cbz", dark=True)
    pages = _pages(dark=False)
    pages[0].save(src / "unmerged.pdf", save_all=True, append_images=pages[1:])
    out = tmp_path / "out"
    runner = CliRunner()

    def run() -> dict:
        result = runner.invoke(app, ["run", str(src), "-o", str(out), *BUILTIN, "--json"])
        assert result.exit_code == 0, result.output
        manifest = json.loads(result.stdout)
        return {e["name"]: e for e in manifest["sections"] if e["name"] in manifest["this_run"]}

    first = run()
    assert sorted(first) == ["unmerged.cbz", "unmerged.pdf"]
    for name, source in (("unmerged.cbz", "unmerged.cbz"), ("unmerged.pdf", "unmerged.pdf")):
        record = json.loads((out / f"{name}.json").read_text())
        assert {Path(p["path"]).name for p in record["pages"]} == {source}  # the name says where it came from
        assert (out / f"{name}.wav").is_file()
    tracks = {n: (out / f"{n}.wav").read_bytes() for n in first}

    again = run()  # a rerun: same names, nothing redone
    assert {n: e["status"] for n, e in again.items()} == {"unmerged.cbz": "skipped", "unmerged.pdf": "skipped"}

    _cbz(src / "unmerged.zip", dark=False)  # a third source with the same stem renames neither of the first two
    third = run()
    assert {n: e["status"] for n, e in third.items()} == {
        "unmerged.cbz": "skipped", "unmerged.pdf": "skipped", "unmerged.zip": "ok"}
    assert {n: (out / f"{n}.wav").read_bytes() for n in first} == tracks


def test_a_file_where_a_sections_folder_goes_is_one_clear_line_and_the_others_are_made(tmp_path):
    """A volume's archive beside a folder of its name (its chapters are told apart as `Vol 1.cbz/...`) written
    into the library itself (`-o .`: its chapters' files go in a folder of the archive's name), or a file of the
    user's named as a volume in the output folder: each of its chapters failed "cannot write its files:
    FileExistsError: [Errno 17] File exists: 'Vol 1.cbz'"."""
    lib = tmp_path / "lib"
    (lib / "Vol 1" / "Ch 1").mkdir(parents=True)
    for name in ("001.png", "002.png"):
        shutil.copy(SAMPLES / "calm" / name, lib / "Vol 1" / "Ch 1" / name)
    with zipfile.ZipFile(lib / "Vol 1.cbz", "w") as z:
        for name in ("001.png", "002.png"):
            z.write(SAMPLES / "action" / name, f"Ch 1/{name}")
            z.write(SAMPLES / "calm" / name, f"Ch 2/{name}")
    before = (lib / "Vol 1.cbz").read_bytes()
    args = ("--vision-model", "builtin", "--music-model", "builtin", "--duration", "1")
    result = cli("run", lib, "-o", lib, *args)
    assert result.returncode == 1
    for chapter in ("Ch 1", "Ch 2"):
        assert (f"Vol 1.cbz/{chapter} failed: its files go in the folder Vol 1.cbz/ of the output folder, but "
                "Vol 1.cbz there is the archive its pages are read from; choose another -o") in result.stderr, \
            result.stderr
    assert "Errno" not in result.stderr and (lib / "Vol 1.cbz").read_bytes() == before
    assert (lib / "Vol 1" / "Ch 1.wav").is_file()
    out = tmp_path / "out"
    out.mkdir()
    (out / "Vol 1").write_text("my notes\n", encoding="utf-8")
    result = cli("run", lib, "-o", out, *args)
    assert ("Vol 1/Ch 1 failed: its files go in the folder Vol 1/ of the output folder, but Vol 1 there is a file; "
            "move it or choose another -o") in result.stderr, result.stderr
    assert (out / "Vol 1").read_text(encoding="utf-8") == "my notes\n" and (out / "Vol 1.cbz" / "Ch 2.wav").is_file()


def test_a_file_that_cannot_be_replaced_is_named_not_its_temporary_file(tmp_path, monkeypatch):
    """`chattr +i calm.json` (a file the system will not let be replaced), then a rerun that rewrites it: "cannot
    write its files: PermissionError: [Errno 1] Operation not permitted: '/out/.calm.json.tmp-1fb8346f' ->
    '/out/calm.json'".  It names calm.json and why, in words."""
    import errno
    import os as real_os

    out = tmp_path / "out"
    runner = CliRunner()
    made = runner.invoke(app, ["run", str(SAMPLES / "calm"), "-o", str(out), *BUILTIN])
    assert made.exit_code == 0, made.output
    replace = real_os.replace

    def immutable(src, dst, *args, **kwargs):  # what the kernel says of a file made immutable (chattr +i)
        if Path(dst).name == "calm.json":
            raise PermissionError(errno.EPERM, "Operation not permitted", str(src), None, str(dst))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(real_os, "replace", immutable)
    again = runner.invoke(app, ["run", str(SAMPLES / "calm"), "-o", str(out), *BUILTIN, "--duration", "2"])
    assert again.exit_code == 1, again.output
    line = " ".join(again.output.split())
    assert "calm failed: cannot write its files: calm.json could not be written there (Operation not permitted)" \
        in line, again.output
    assert ".tmp-" not in again.output and "PermissionError" not in again.output


def test_a_chapter_whose_name_is_written_as_it_is_keeps_it_beside_one_written_the_same(tmp_path):
    """`S/Ch_1` beside `S/Ch:1` (written `Ch_1` too, as `:` is refused by some file systems): the folder named
    exactly Ch_1 was written as `Ch_1-2`, said as "Ch_1 is S/Ch:1, given before it" of two folders of one PATH."""
    for name, mood in (("Ch_1", "calm"), ("Ch:1", "action")):
        (tmp_path / "S" / name).mkdir(parents=True)
        shutil.copy(SAMPLES / mood / "001.png", tmp_path / "S" / name / "001.png")
    runner = CliRunner()
    for attempt in range(2):
        result = runner.invoke(app, ["run", str(tmp_path / "S"), "-o", str(tmp_path / "out"), *BUILTIN, "--json"])
        assert result.exit_code == 0, result.output
        made = {e["name"]: e["tracks"] for e in json.loads(result.stdout)["sections"]}
        assert made == {"Ch_1": ["Ch_1.wav"], "Ch:1-2": ["Ch_1-2.wav"]}, made
    record = json.loads((tmp_path / "out" / "Ch_1.json").read_text(encoding="utf-8"))
    assert {Path(p["path"]).parent.name for p in record["pages"]} == {"Ch_1"}


def test_a_users_json_where_a_record_would_go_is_not_listed_as_the_sections(tmp_path):
    """A user's own calm.json (and calm.txt) in the output folder: the section failed, as it should, but the
    manifest listed both as its record and words, the listening page showed the user's text as its description,
    and after the user moved calm.json away as told, the rerun said "its record calm.json is gone, so the files
    manga2music made for it can no longer be told from yours": it had made none."""
    out = tmp_path / "music"
    out.mkdir()
    (out / "calm.json").write_text('{"my": "playlist"}\n', encoding="utf-8")
    (out / "calm.txt").write_text("shopping list: milk, eggs\n", encoding="utf-8")
    runner = CliRunner()
    failed = runner.invoke(app, ["run", str(SAMPLES / "calm"), "-o", str(out), *BUILTIN])
    assert failed.exit_code == 1 and "calm.json exists and was not written by manga2music" in failed.output
    [entry] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]
    assert entry["status"] == "failed" and entry["record"] is None and entry["description"] is None, entry
    assert "shopping list" not in (out / "index.html").read_text(encoding="utf-8")
    (out / "calm.json").rename(tmp_path / "calm.json")
    again = runner.invoke(app, ["run", str(SAMPLES / "calm"), "-o", str(out), *BUILTIN])
    assert again.exit_code == 0, again.output
    assert "is gone" not in again.output and "files manga2music made" not in again.output, again.output
    assert (out / "calm.txt").read_text(encoding="utf-8") == "shopping list: milk, eggs\n"  # the user's, kept


def test_a_chapter_named_like_a_file_of_another_keeps_its_files_made_alone(tmp_path):
    """`run "S/Ch 1.take2"`, then `run S` beside `S/Ch 1`: the chapter made first was described and composed again
    as `Ch 1.take2-2`, listed twice in the manifest, and with `--variations 2` its neighbour `Ch 1` failed: "Ch
    1.take2.wav exists and was not written by manga2music" (its own take 2 would be that file).  A chapter keeps
    the name its files were made under; the new one beside it is numbered, and said so."""
    series, out = tmp_path / "S", tmp_path / "out"
    shutil.copytree(SAMPLES / "calm", series / "Ch 1")
    shutil.copytree(SAMPLES / "action", series / "Ch 1.take2")
    runner = CliRunner()

    def run(path, *more) -> tuple[dict, str]:
        result = runner.invoke(app, ["run", str(path), "-o", str(out), *BUILTIN, "--json", *more])
        assert result.exit_code == 0, result.output
        manifest = json.loads(result.stdout)
        return {e["name"]: e["status"] for e in manifest["sections"]}, result.stderr

    alone, _ = run(series / "Ch 1.take2")
    assert alone == {"Ch 1.take2": "ok"}
    made = (out / "Ch 1.take2.wav").read_bytes()
    both, said = run(series)
    assert both == {"Ch 1-2": "ok", "Ch 1.take2": "skipped"}, both
    assert "Ch 1" in said and "written as Ch 1-2" in said and "Ch 1.take2" in said, said
    assert (out / "Ch 1.take2.wav").read_bytes() == made and not list(out.glob("Ch 1.take2-2*"))
    takes, _ = run(series, "--variations", "2")
    assert takes == {"Ch 1-2": "ok", "Ch 1.take2": "ok"}, takes
    assert (out / "Ch 1-2.take2.wav").is_file() and (out / "Ch 1.take2.take2.wav").is_file()
    assert json.loads((out / "Ch 1.take2.json").read_text(encoding="utf-8"))["section"] == "Ch 1.take2"


def test_chapters_of_one_name_from_two_folders_each_keep_their_outputs_whatever_is_run(tmp_path):
    """`run a/ch1 b/ch1` (as a shell's `*/ch1` gives them) writes a/ch1 and b/ch1: named by the folder that tells
    them apart, as `run` of their parent names them, not ch1 and ch1-2 in the order given.  Later runs of either
    alone, of both in the other order, or after a hand edit must find each chapter's own files: no redo, nothing of
    one written over the other's."""
    for parent, mood in (("a", "calm"), ("b", "action")):
        (tmp_path / parent / "ch1").mkdir(parents=True)
        shutil.copy(SAMPLES / mood / "001.png", tmp_path / parent / "ch1" / "001.png")
    a, b, out = tmp_path / "a" / "ch1", tmp_path / "b" / "ch1", tmp_path / "out"
    runner = CliRunner()

    def run(*paths, into=None) -> dict:
        result = runner.invoke(app, ["run", *map(str, paths), "-o", str(into or out), *BUILTIN, "--json"])
        assert result.exit_code == 0, result.output
        manifest = json.loads(result.stdout)
        return {e["name"]: e["status"] for e in manifest["sections"] if e["name"] in manifest["this_run"]}

    def made_from() -> dict:
        return {n: {str(Path(p["path"]).parent) for p in json.loads((out / f"{n}.json").read_text())["pages"]}
                for n in ("a/ch1", "b/ch1")}

    assert run(b, a) == {"a/ch1": "ok", "b/ch1": "ok"}
    assert made_from() == {"a/ch1": {str(a.resolve())}, "b/ch1": {str(b.resolve())}}
    tracks = {n: (out / f"{n}.wav").read_bytes() for n in ("a/ch1", "b/ch1")}

    assert run(b) == {"b/ch1": "skipped"}  # b alone: its own files, a's left alone
    assert run(tmp_path / "b") == {"b/ch1": "skipped"}  # ... and given as its parent: the same name
    assert run(a, b) == {"b/ch1": "skipped", "a/ch1": "skipped"}  # the other order: nothing swapped, nothing redone
    assert made_from() == {"a/ch1": {str(a.resolve())}, "b/ch1": {str(b.resolve())}}
    assert {n: (out / f"{n}.wav").read_bytes() for n in tracks} == tracks

    (out / "a" / "ch1.txt").write_text("Solo harp lullaby, 60 BPM, F major", encoding="utf-8")  # edited by hand
    run(b, a)
    assert made_from() == {"a/ch1": {str(a.resolve())}, "b/ch1": {str(b.resolve())}}
    assert json.loads((out / "a" / "ch1.json").read_text())["description"].startswith("Solo harp lullaby")
    assert (out / "b" / "ch1.wav").read_bytes() == tracks["b/ch1"]

    alone = tmp_path / "alone"
    assert run(a, into=alone) == {"ch1": "ok"}
    moved = tmp_path / "c" / "ch1"  # a chapter moved elsewhere is still the one its outputs were made from
    moved.parent.mkdir()
    shutil.move(str(a), str(moved))
    assert run(moved, into=alone) == {"ch1": "skipped"}
    copy = tmp_path / "d" / "ch1"  # ... and so is a copy of it, with the output folder copied too
    shutil.copytree(moved, copy)
    shutil.copytree(alone, tmp_path / "alone-copy")
    assert run(copy, into=tmp_path / "alone-copy") == {"ch1": "skipped"}
    # a copy with a page added (a new download of the chapter), run into the same output folder while the chapter
    # is still there: it took the chapter's name and wrote over its files, and each later run of either took it
    # back, describing and composing it again every time. It is written under a new number, said
    shutil.copy(SAMPLES / "action" / "002.png", copy / "002.png")
    track = (alone / "ch1.wav").read_bytes()
    said = runner.invoke(app, ["run", str(copy), "-o", str(alone), *BUILTIN, "--json"])
    assert said.exit_code == 0, said.output
    assert f"ch1 from {copy}: written as ch1-2 (ch1 in the output folder is from {moved}" in \
        " ".join(said.output.split()), said.output
    assert run(moved, into=alone) == {"ch1": "skipped"} and (alone / "ch1.wav").read_bytes() == track
    assert run(copy, into=alone) == {"ch1-2": "skipped"}


def test_a_library_copied_with_its_output_folder_keeps_its_files_after_a_command_wrote_into_the_copy(tmp_path):
    """A library and its output folder copied together, one chapter described again into the copy, then the copy
    run: the other chapter, its source still on disk in the original library, was written as `action-2` and made
    again (the copy's manifest said, after the describe, that it had been written there). Each record says where it
    was written; one copied here with its chapter keeps its name for the copy."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    for name in ("calm", "action"):
        shutil.copytree(SAMPLES / name, lib / name)
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(lib), "-o", str(out), *BUILTIN]).exit_code == 0
    shutil.copytree(lib, tmp_path / "lib-copy")
    shutil.copytree(out, tmp_path / "out-copy")
    described = runner.invoke(app, ["describe", str(tmp_path / "lib-copy" / "calm"), "-o", str(tmp_path / "out-copy"),
                                    "--model", "builtin"])
    assert described.exit_code == 0, described.output
    result = runner.invoke(app, ["run", str(tmp_path / "lib-copy"), "-o", str(tmp_path / "out-copy"), *BUILTIN,
                                 "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert {e["name"]: e["status"] for e in manifest["sections"]} == {"action": "skipped", "calm": "skipped"}, \
        result.output


def test_a_chapter_keeps_its_name_when_the_source_it_was_told_apart_from_is_removed(tmp_path):
    """A folder `Ch 1` beside `Ch 1.cbz` names the archive `Ch 1.cbz`; with the folder deleted, the archive took
    the folder's old name `Ch 1` (written over its files), was described and composed again with a new seed, and
    left its own `Ch 1.cbz.*` behind.  Likewise `ch 1` numbered `ch 1-2` beside `Ch 1` took `ch 1` once `Ch 1` was
    gone.  Each keeps the name its files have."""
    series, out = tmp_path / "series", tmp_path / "out"
    for name, mood in (("Ch 1", "calm"), ("ch 1", "action")):
        (series / name).mkdir(parents=True)
        shutil.copy(SAMPLES / mood / "001.png", series / name / "001.png")
    _cbz(series / "Ch 1.cbz", dark=True)

    def run() -> dict:
        result = CliRunner().invoke(app, ["run", str(series), "-o", str(out), *BUILTIN, "--json"])
        assert result.exit_code == 0, result.output
        manifest = json.loads(result.stdout)
        return {e["name"]: e["status"] for e in manifest["sections"] if e["name"] in manifest["this_run"]}

    assert run() == {"Ch 1": "ok", "ch 1-2": "ok", "Ch 1.cbz": "ok"}
    kept = {n: (out / f"{n}.wav").read_bytes() for n in ("ch 1-2", "Ch 1.cbz")}
    gone = (out / "Ch 1.wav").read_bytes()
    shutil.rmtree(series / "Ch 1")
    assert run() == {"ch 1-2": "skipped", "Ch 1.cbz": "skipped"}
    assert {n: (out / f"{n}.wav").read_bytes() for n in kept} == kept
    assert (out / "Ch 1.wav").read_bytes() == gone  # the deleted chapter's files are left as they were
    shutil.rmtree(series / "ch 1")  # no folder left to tell the archive apart from: it still keeps its files
    assert run() == {"Ch 1.cbz": "skipped"}
    assert (out / "Ch 1.cbz.wav").read_bytes() == kept["Ch 1.cbz"] and (out / "Ch 1.wav").read_bytes() == gone


def test_chapters_whose_names_differ_only_in_unicode_form_keep_files_of_their_own(tmp_path):
    """`ガード` typed (composed) beside `ガード` saved by macOS (decomposed) made two sections shown the same, with
    files whose names differ only in their bytes: one file to macOS, so one chapter's music wrote over the
    other's there, and two look-alike rows everywhere.  They are told apart as names differing in case are."""
    import unicodedata

    series, out = tmp_path / "series", tmp_path / "out"
    composed, decomposed = unicodedata.normalize("NFC", "ガード"), unicodedata.normalize("NFD", "ガード")
    assert composed != decomposed
    for name, mood in ((composed, "calm"), (decomposed, "action")):
        (series / name).mkdir(parents=True)
        shutil.copy(SAMPLES / mood / "001.png", series / name / "001.png")

    def run() -> dict:
        result = CliRunner().invoke(app, ["run", str(series), "-o", str(out), *BUILTIN, "--json"])
        assert result.exit_code == 0, result.output
        manifest = json.loads(result.stdout)
        return {unicodedata.normalize("NFC", e["name"]): e["status"] for e in manifest["sections"]}

    assert run() == {composed: "ok", f"{composed}-2": "ok"}
    made = sorted(unicodedata.normalize("NFC", n) for n in os.listdir(out) if n.endswith(".wav"))
    assert made == [f"{composed}-2.wav", f"{composed}.wav"]
    assert run() == {composed: "skipped", f"{composed}-2": "skipped"}


def test_a_chapter_renamed_only_in_its_unicode_form_keeps_its_files(tmp_path):
    """`ガード` made, then its folder's name decomposed (a copy through a Mac, rsync --iconv): the rerun made it
    again without a word under the decomposed name, beside its files under the composed one, and listed both."""
    import unicodedata

    series, out = tmp_path / "series", tmp_path / "out"
    composed, decomposed = unicodedata.normalize("NFC", "ガード"), unicodedata.normalize("NFD", "ガード")
    for chapter in (composed, "Ch 2"):
        (series / chapter).mkdir(parents=True)
        shutil.copy(SAMPLES / "calm" / "001.png", series / chapter / "001.png")
    (series / "Ch 2" / "001.png").write_bytes((SAMPLES / "action" / "001.png").read_bytes())

    def run() -> list:
        result = CliRunner().invoke(app, ["run", str(series), "-o", str(out), *BUILTIN, "--duration", "1", "--json"])
        assert result.exit_code == 0, result.output
        return sorted((e["name"], e["status"]) for e in json.loads(result.stdout)["sections"])

    assert run() == [("Ch 2", "ok"), (composed, "ok")]
    made = sorted(os.listdir(out))
    os.rename(series / composed, series / decomposed)
    assert run() == [("Ch 2", "skipped"), (composed, "skipped")]
    assert sorted(os.listdir(out)) == made  # no second set of files under the decomposed name


def test_a_rerun_says_why_it_does_a_section_again(tmp_path):
    """A rerun that redid a section said only "ok": not that a page had been added, nor that --duration changed."""
    chapter, out = tmp_path / "ch", tmp_path / "out"
    shutil.copytree(SAMPLES / "calm", chapter)
    BASE = ("--vision-model", "builtin", "--music-model", "builtin", "--seed", "1")

    def rerun(*extra) -> str:
        result = cli("run", chapter, "-o", out, *BASE, *extra)
        assert result.returncode == 0, result.stderr
        return result.stderr

    said = rerun("--duration", "1")
    assert "again" not in said  # the first run: nothing to explain
    assert "ch: composing again: --duration 1 \u2192 2 s" in rerun("--duration", "2")
    shutil.copy(SAMPLES / "action" / "001.png", chapter / "004.png")
    said = rerun("--duration", "2")
    assert "ch: describing again: 1 page added (004.png)" in said and "ch: composing again" in said
    (chapter / "001.png").unlink()
    assert "ch: describing again: 1 page removed (001.png)" in rerun("--duration", "2")
    assert "again" not in rerun("--duration", "2")  # nothing changed: nothing said
    assert "again" not in rerun("--duration", "2", "--force")  # asked for: no reason to give
    rerun("--duration", "2", "--variations", "3")
    said = rerun("--duration", "2", "--variations", "2", "--format", "flac")  # was: "its description changed"
    assert "description changed" not in said
    assert "ch: composing again: --variations 3 → 2; --format wav → flac" in said, said
    (chapter / "005.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")  # a broken page, then a good one in its place
    assert "skipping page 005.png" in rerun("--duration", "2", "--force")  # described with the page unreadable
    shutil.copy(SAMPLES / "action" / "002.png", chapter / "005.png")
    assert "ch: describing again: 1 page now readable (005.png)" in rerun("--duration", "2")  # not "an older version"
    (chapter / "002.png").write_bytes(b"garbage")  # a page damaged in place: still there, no longer readable
    said = rerun("--duration", "2")
    assert "ch: describing again: 1 page no longer readable (002.png)" in said and "removed" not in said, said


def test_an_output_folder_that_is_a_file_is_refused_before_any_model_is_chosen(tmp_path):
    """Before, the models were picked (and a local one would have loaded, for minutes) and only then did the run
    say that -o names a file."""
    afile = tmp_path / "out"
    afile.write_text("mine", encoding="utf-8")
    result = cli("run", SAMPLES, "-o", afile, env=cli_env())
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0].startswith("Error: -o ") and "is a file" in result.stderr
    assert "model" not in result.stderr and afile.read_text(encoding="utf-8") == "mine"


def test_a_series_is_listed_in_reading_order_in_the_table_and_the_manifest(tmp_path):
    """The table printed at the end, --json and manifest.json list chapter 6 before chapter 14 (and an archive
    where its number puts it), as the listening page does."""
    volume = tmp_path / "series" / "Vol 1"
    shutil.copytree(SAMPLES / "calm", volume / "Chapter 6")
    shutil.copytree(SAMPLES / "action", volume / "Chapter 14")
    _cbz(volume / "Chapter 8.cbz", dark=False)
    out = tmp_path / "out"
    result = cli("run", tmp_path / "series", "-o", out, *BUILTIN, env=cli_env())
    assert result.returncode == 0, result.stderr
    in_order = ["Vol 1/Chapter 6", "Vol 1/Chapter 8", "Vol 1/Chapter 14"]
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == in_order, result.stdout
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [e["name"] for e in manifest["sections"]] == in_order
    assert manifest["this_run"] == in_order  # the order they were made in
    # a later run after chapter 10 came out files it between 8 and 14
    shutil.copytree(SAMPLES / "calm", volume / "Chapter 10")
    result = cli("run", tmp_path / "series", "-o", out, *BUILTIN, "--json", env=cli_env())
    assert result.returncode == 0, result.stderr
    assert [e["name"] for e in json.loads(result.stdout)["sections"]] == [
        "Vol 1/Chapter 6", "Vol 1/Chapter 8", "Vol 1/Chapter 10", "Vol 1/Chapter 14"]


def test_one_volume_run_into_the_series_folder_finds_and_files_its_chapters_as_the_series_run_did(tmp_path):
    """`run "S/Vol 01"` after `run S` (the README's case) made a second copy of a chapter in a subfolder of the
    volume ("Arc A/Ch 2" beside "Vol 01/Arc A/Ch 2"), put a new chapter at the top ("Ch 3", made again as
    "Vol 01/Ch 3" by the next series run) and gave a chapter that failed a second manifest entry."""
    volume = tmp_path / "S" / "Vol 01"
    shutil.copytree(SAMPLES / "calm", volume / "Ch 1")
    shutil.copytree(SAMPLES / "action", volume / "Arc A" / "Ch 2")
    (volume / "Ch 4.cbz").write_bytes(b"")  # a download that failed: the chapter fails, alone
    out = tmp_path / "out"

    def run(path) -> dict:
        result = cli("run", path, "-o", out, *BUILTIN, "--json", env=cli_env())
        assert result.returncode == 1, result.stderr  # Ch 4
        return {e["name"]: e["status"] for e in json.loads(result.stdout)["sections"]}

    series = ["Vol 01/Ch 1", "Vol 01/Ch 4", "Vol 01/Arc A/Ch 2"]  # chapters by number; the arc's folder after them
    assert list(run(tmp_path / "S")) == series
    assert run(volume) == {"Vol 01/Arc A/Ch 2": "skipped", "Vol 01/Ch 1": "skipped", "Vol 01/Ch 4": "failed"}
    shutil.copytree(SAMPLES / "webtoon", volume / "Ch 3")
    assert run(volume)["Vol 01/Ch 3"] == "ok"
    assert run(tmp_path / "S")["Vol 01/Ch 3"] == "skipped"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [e["name"] for e in manifest["sections"]] == ["Vol 01/Ch 1", "Vol 01/Ch 3", "Vol 01/Ch 4",
                                                          "Vol 01/Arc A/Ch 2"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav")) == [
        "Vol 01/Arc A/Ch 2.wav", "Vol 01/Ch 1.wav", "Vol 01/Ch 3.wav"]


def test_composing_again_keeps_the_describer_in_the_manifest(tmp_path):
    """`compose D -o D` after `run ... -o D` wrote `vision_model: null` into the manifest's section, though its record
    says the builtin describer made the description the music comes from."""
    out = tmp_path / "D"
    assert invoke_ok("run", SAMPLES / "calm", "-o", out, *BUILTIN)
    assert invoke_ok("compose", out, "-o", out, "--model", "builtin", "--duration", "2")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "compose"
    (section,) = manifest["sections"]
    assert (section["vision_model"], section["music_model"]) == ("builtin", "builtin")
    hand_written = tmp_path / "mine.txt"
    hand_written.write_text("Slow solo piano, rain, 60 BPM")
    assert invoke_ok("compose", hand_written, "-o", tmp_path / "E", "--model", "builtin", "--duration", "1")
    (section,) = json.loads((tmp_path / "E" / "manifest.json").read_text())["sections"]
    assert section["vision_model"] is None  # written by hand: no describer made it


def invoke_ok(*args) -> bool:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return True


def test_an_archive_with_its_pages_in_one_folder_is_named_after_the_archive(tmp_path):
    """`Ch 004.cbz` holding `Ch 004/001.jpg` (as scanlation releases pack chapters) wrote `Ch 004/Ch 004.wav`, the
    same chapter zipped without the folder `Ch 004.wav`.  One folder inside is the archive's: `Ch 004.wav`.  Files
    made under the old name are still found (the archive once held a second folder, here)."""
    import zipfile

    series, out = tmp_path / "S", tmp_path / "out"
    series.mkdir()
    pages = sorted((SAMPLES / "calm").iterdir())
    for name, folder in (("Ch 004", "Ch 004/"), ("Ch 005", "")):
        with zipfile.ZipFile(series / f"{name}.cbz", "w") as zf:
            for k, page in enumerate(pages, start=1):
                zf.write(page, f"{folder}{k:03d}{page.suffix}")
    with zipfile.ZipFile(series / "Vol 2.cbz", "w") as zf:  # two folders: one section each, as before
        for folder in ("Ch 1", "Ch 2"):
            zf.write(pages[0], f"{folder}/001.png")
    result = CliRunner().invoke(app, ["run", str(series), "-o", str(out), *BUILTIN, "--json"])
    assert result.exit_code == 0, result.output
    names = [e["name"] for e in json.loads(result.stdout)["sections"]]
    assert names == ["Vol 2/Ch 1", "Vol 2/Ch 2", "Ch 004", "Ch 005"]  # a volume before the chapters not in one
    assert (out / "Ch 004.wav").is_file() and not (out / "Ch 004").exists()
    with zipfile.ZipFile(series / "Vol 2.cbz", "w") as zf:  # repacked with one folder: its files keep their name
        zf.write(pages[0], "Ch 1/001.png")
    result = CliRunner().invoke(app, ["run", str(series / "Vol 2.cbz"), "-o", str(out), *BUILTIN, "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert {e["name"]: e["status"] for e in manifest["sections"] if e["name"] in manifest["this_run"]} == {
        "Vol 2/Ch 1": "skipped"}


def test_the_readmes_first_command_outside_the_source_folder_says_where_the_samples_are(tmp_path):
    """`manga2music run samples/` in an empty folder said only "samples: no such file or folder"."""
    import subprocess
    import sys

    from output_checks import cli_env

    result = subprocess.run([sys.executable, "-m", "manga2music", "run", "samples/"], cwd=tmp_path, text=True,
                            capture_output=True, env=cli_env(), timeout=60)
    assert result.returncode == 2 and "samples: no such file or folder" in result.stderr
    assert "source folder" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "output").exists()


def test_compose_of_an_emptied_description_fails_that_section_as_run_does(tmp_path):
    """`compose OUT -o OUT` with one description emptied said "Skipping calm.txt: it is empty", then "1 of 1
    sections done", exit 0, and the manifest still called the section ok; `run` fails it (exit 1)."""
    out = tmp_path / "out"
    for name in ("calm", "action"):
        shutil.copytree(SAMPLES / name, tmp_path / "in" / name)
    assert cli("run", tmp_path / "in", "-o", out, *BUILTIN, "--duration", "1").returncode == 0
    before = (out / "calm.wav").read_bytes()
    (out / "calm.txt").write_text("  \n", encoding="utf-8")
    result = cli("compose", out, "-o", out, "--model", "builtin", "--duration", "1", "--seed", "4", "--json")
    assert result.returncode == 1, result.stderr
    entries = {e["name"]: e for e in json.loads(result.stdout)["sections"]}
    assert entries["calm"]["status"] == "failed" and "calm.txt is empty" in entries["calm"]["message"]
    assert entries["action"]["status"] == "ok"
    assert (out / "calm.wav").read_bytes() == before  # its music is left as it was
    again = cli("compose", out, "-o", out, "--model", "builtin", "--duration", "1", "--seed", "4")
    assert again.returncode == 1 and "1 of 2 sections done" in again.stderr, again.stderr
    assert again.stderr.count("calm.txt is empty") == 1, again.stderr


def test_compose_of_an_output_folder_says_which_descriptions_are_gone(tmp_path):
    """`rm OUT/action.txt; compose OUT -o OUT`: action was left out without a word (its music stays)."""
    out = tmp_path / "out"
    for name in ("calm", "action"):
        shutil.copytree(SAMPLES / name, tmp_path / "in" / name)
    assert cli("run", tmp_path / "in", "-o", out, *BUILTIN, "--duration", "1").returncode == 0
    (out / "action.txt").unlink()
    result = cli("compose", out, "-o", out, "--model", "builtin", "--duration", "1")
    assert result.returncode == 0, result.stderr
    assert "action: action.txt is gone, so it is not composed (its music stays); `manga2music describe` of its " \
           "pages writes it again" in result.stderr, result.stderr
    assert (out / "action.wav").is_file()
    entry = next(e for e in json.loads((out / "manifest.json").read_text("utf-8"))["sections"] if e["name"] == "action")
    assert entry["description"] is None and entry["tracks"] == ["action.wav"]  # it named the deleted file
    described = tmp_path / "described"  # described, never composed: "(its music stays)" of no music
    assert cli("describe", tmp_path / "in", "-o", described, "--model", "builtin").returncode == 0
    (described / "calm.txt").unlink()
    result = cli("compose", described, "-o", described, "--model", "builtin", "--duration", "1")
    assert result.returncode == 0, result.stderr
    assert "calm: calm.txt is gone, so it is not composed; `manga2music describe` of its pages writes it again" \
        in " ".join(result.stderr.split()), result.stderr


def test_compose_again_says_the_description_changed_also_when_a_setting_changed_too(tmp_path):
    """`compose` after the user edited a description and changed --duration said "composing again: --duration 1
    → 2 s" only: the edit, the main reason the music changes, went unsaid."""
    chapter, out = tmp_path / "ch", tmp_path / "out"
    shutil.copytree(SAMPLES / "calm", chapter)
    assert cli("run", chapter, "-o", out, *BUILTIN, "--duration", "1", "--seed", "1").returncode == 0
    said = cli("compose", out, "-o", out, "--model", "builtin", "--duration", "2").stderr
    assert "ch: composing again: --duration 1 \u2192 2 s" in said and "description" not in said, said
    (out / "ch.txt").write_text("Solo harp lullaby at 60 BPM in F major\n", encoding="utf-8")
    said = cli("compose", out, "-o", out, "--model", "builtin", "--duration", "3", "--seed", "2").stderr
    assert "ch: composing again: its description changed; --duration 2 \u2192 3 s; --seed 2" in said, said
    said = cli("compose", out, "-o", out, "--model", "builtin", "--duration", "3", "--seed", "2").stderr
    assert "composing again" not in said, said
    # a format switched with a length: its files went without a word (a format switched alone says so)
    said = cli("compose", out, "-o", out, "--model", "builtin", "--duration", "4", "--format", "ogg").stderr
    assert "ch: composing again: --duration 3 \u2192 4 s; --format wav \u2192 ogg (ch.wav is replaced)" \
        in " ".join(said.split()), said
    assert not (out / "ch.wav").exists() and (out / "ch.ogg").is_file()


def test_a_rerun_without_duration_keeps_the_length_each_section_was_made_with(tmp_path):
    """After `run --duration 15`, one edited description and `compose OUT -o OUT` composed every section again at
    the default 10 s ("composing again: --duration 15 → 10 s"), the untouched ones too, and `run` without
    --duration did the same. As the seed, a length not given is the one each section was made with."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    for name in ("calm", "action"):
        shutil.copytree(SAMPLES / name, lib / name)
    first = cli("run", lib, "-o", out, *MODELS, "--duration", "3")
    assert first.returncode == 0, first.stderr
    made = {name: (out / f"{name}.wav").read_bytes() for name in ("calm", "action")}
    again = cli("run", lib, "-o", out, *MODELS)
    assert again.returncode == 0 and "composing again" not in again.stderr, again.stderr
    (out / "calm.txt").write_text("Solo harp lullaby at 60 BPM in F major\n", encoding="utf-8")
    said = cli("compose", out, "-o", out, "--model", "builtin").stderr
    assert "calm: composing again: its description changed" in said and "--duration" not in said, said
    assert "action" not in said.replace("2 of 2", ""), said
    assert (out / "action.wav").read_bytes() == made["action"]
    assert sf.info(out / "calm.wav").duration == pytest.approx(3.0, abs=0.01)
    assert json.loads((out / "calm.json").read_text(encoding="utf-8"))["compose"]["duration"] == 3.0
    fresh = cli("run", SAMPLES / "calm", "-o", tmp_path / "new", *MODELS)  # nothing made before: 10 s
    assert fresh.returncode == 0 and sf.info(tmp_path / "new" / "calm.wav").duration == pytest.approx(10.0, abs=0.01)
    shorter = cli("run", lib, "-o", out, *MODELS, "--duration", "2")  # given: as asked, and said
    assert "calm: composing again: --duration 3 \u2192 2 s" in shorter.stderr, shorter.stderr


def test_pages_renamed_or_moved_are_located_by_the_record_and_said_as_renamed(tmp_path):
    """After `mv 001.png p001.png` (or moving the whole library), a rerun skipped the section, as nothing in it had
    changed, and its record kept locating the page at a path that was gone; two pages renamed and swapped were said
    as "2 pages added (...); 2 pages removed (...)"."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    shutil.copytree(SAMPLES / "calm", lib / "ch")

    def rerun(where: Path) -> str:
        result = cli("run", where, "-o", out, *BUILTIN)
        assert result.returncode == 0, result.stderr
        return result.stderr

    def recorded() -> list[str]:
        return [p["source"] for p in json.loads((out / "ch.json").read_text(encoding="utf-8"))["pages"]]

    rerun(lib)
    track = (out / "ch.wav").read_bytes()
    (lib / "ch" / "001.png").rename(lib / "ch" / "000.png")  # still first in reading order: the same section
    said = rerun(lib)
    assert "again" not in said and (out / "ch.wav").read_bytes() == track, said
    assert recorded()[0] == str(lib / "ch" / "000.png") and all(Path(s).is_file() for s in recorded())
    chunks = json.loads((out / "ch.json").read_text(encoding="utf-8"))["describe"]["chunks"]
    assert [c["pages"] for c in chunks] == [["000.png", "002.png", "003.jpg"]]  # the pages described, as named now
    moved = tmp_path / "library"
    lib.rename(moved)
    assert "again" not in rerun(moved)
    assert all(Path(s).is_file() for s in recorded()) and recorded()[0] == str(moved / "ch" / "000.png")
    (moved / "ch" / "000.png").rename(moved / "ch" / "zz.png")  # now read last: the order changed
    said = rerun(moved)
    assert "ch: describing again: 1 page renamed (000.png \u2192 zz.png)" in said, said
    assert "added" not in said and "removed" not in said


def test_a_renamed_chapter_folder_keeps_its_music_its_seed_and_one_entry(tmp_path):
    """`mv "Chapter 9" "Chapter 09"`, then the same run: the chapter was made again from the start with a new seed
    (other music, minutes of a model's time) as "Chapter 09", and "Chapter 9" stayed in the manifest beside it with
    its pages gone.  The renamed folder's pages are the ones "Chapter 9" was made from: it keeps those files."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    shutil.copytree(SAMPLES / "calm", lib / "Chapter 9")
    shutil.copytree(SAMPLES / "action", lib / "Chapter 10")
    args = ("run", lib, "-o", out, "--vision-model", "builtin", "--music-model", "builtin", "--duration", "1")
    assert cli(*args).returncode == 0
    seed = json.loads((out / "Chapter 9.json").read_text("utf-8"))["compose"]["seed"]
    track = (out / "Chapter 9.wav").read_bytes()
    (lib / "Chapter 9").rename(lib / "Chapter 09")
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert "Chapter 09: the pages of Chapter 9" in again.stderr, again.stderr
    assert not list(out.glob("Chapter 09*")) and (out / "Chapter 9.wav").read_bytes() == track
    record = json.loads((out / "Chapter 9.json").read_text("utf-8"))
    assert record["compose"]["seed"] == seed and all(Path(p["source"]).parent == lib / "Chapter 09" for p in record["pages"])
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert {e["name"]: (e["status"], bool(e.get("pages_gone"))) for e in manifest["sections"]} == {
        "Chapter 9": ("skipped", False), "Chapter 10": ("skipped", False)}
    shutil.copytree(lib / "Chapter 09", lib / "Chapter 9")  # a copy where the first one was: files of its own
    assert cli(*args).returncode == 0
    assert (out / "Chapter 9.wav").read_bytes() == track and not list(out.glob("Chapter 09*"))
    assert json.loads((out / "Chapter 9-2.json").read_text("utf-8"))["pages"][0]["source"].startswith(
        str(lib / "Chapter 9" / ""))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_results_that_cannot_be_written_to_stdout_are_one_line_and_a_closed_pipe_keeps_the_exit_code(tmp_path):
    """`run ... > /dev/full` ended in a Python traceback; `run ... --json | head -c 0` exited 1 ("some section
    failed") without a word, though every section was done."""
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "manga2music", "run", str(SAMPLES / "calm"), "-o",
                                 str(tmp_path / "a"), *BUILTIN], stdout=full, stderr=subprocess.PIPE, text=True,
                                env=cli_env(), timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot write to standard output" in result.stderr and "manifest.json" in result.stderr
    assert (tmp_path / "a" / "calm.wav").is_file()
    piped = subprocess.Popen([sys.executable, "-m", "manga2music", "run", str(SAMPLES / "calm"), "-o",
                              str(tmp_path / "b"), *BUILTIN, "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=cli_env())
    piped.stdout.close()  # the reader has gone, as `| head -c 0` goes
    _, err = piped.communicate(timeout=120)
    assert piped.returncode == 0 and b"Traceback" not in err and b"Exception ignored" not in err, err


@pytest.mark.parametrize("both", [False, True], ids=["stderr", "stdout-and-stderr"])
def test_a_reader_of_the_messages_that_goes_away_does_not_stop_the_run(tmp_path, both):
    """`run samples/ -o X 2>&1 | head -1` printed one line, exited 1 ("a section failed") and wrote nothing: the
    second message met the closed pipe and ended the command.  The messages now go nowhere and the run finishes."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "manga2music", "run", str(SAMPLES), "-o", str(out), *BUILTIN],
                            stdout=subprocess.PIPE if both else subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=cli_env())
    first = proc.stderr.readline()  # `| head -1`: one line read, then the reader is gone
    proc.stderr.close()
    if both:
        proc.stdout.close()
    assert proc.wait(timeout=120) == 0, first
    for name in ("action", "calm", "webtoon"):
        assert sf.info(out / f"{name}.wav").duration > 0.9, name
    assert json.loads((out / "manifest.json").read_text())["sections"][0]["status"] == "ok"


def _euc_jp_locale(where: Path) -> dict | None:
    """The environment of a Japanese EUC-JP locale built into ``where`` (None where localedef cannot build it)."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        made = subprocess.run(["localedef", "-i", "ja_JP", "-f", "EUC-JP", str(where / "ja_JP.eucJP")],
                              capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if made.returncode not in (0, 1) or not (where / "ja_JP.eucJP").exists():  # 1: warnings only
        return None
    env = {k: v for k, v in cli_env().items() if not k.startswith(("LC_", "LANG", "PYTHONUTF8", "PYTHONIOENCODING"))}
    return {**env, "LOCPATH": str(where), "LC_ALL": "ja_JP.eucJP"}


def test_a_chapter_named_in_japanese_is_made_in_a_locale_that_reads_names_in_another_encoding(tmp_path):
    """In a ja_JP.eucJP locale a chapter folder named in UTF-8 came out garbled, failed ("'euc_jp' codec can't
    encode character"), a finished one was marked failed, and the summary ended in a traceback."""
    env = _euc_jp_locale(tmp_path / "locales")
    if env is None:
        pytest.skip("localedef cannot build a ja_JP.eucJP locale here")
    probe = subprocess.run([sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"],
                           capture_output=True, text=True, env=env)
    assert probe.stdout.strip() == "euc_jp"  # the situation of the report, or the test proves nothing
    shutil.copytree(SAMPLES / "calm", tmp_path / "lib" / "第一話")
    done = subprocess.run([sys.executable, "-m", "manga2music", "run", str(tmp_path / "lib"), "-o",
                           str(tmp_path / "out"), *BUILTIN], capture_output=True, env=env, timeout=120)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode("utf-8", "replace")
    assert done.stdout.decode("euc_jp").startswith("第一話\tok\t第一話.wav")  # the terminal's encoding
    made = {n for n in os.listdir(os.fsencode(tmp_path / "out")) if not n.startswith(b".")}
    assert made == {n.encode("utf-8") for n in ("index.html", "manifest.json", "第一話.json", "第一話.mid", "第一話.txt",
                                                "第一話.wav")}  # the names a UTF-8 locale gives them, byte for byte
    again = subprocess.run([sys.executable, "-m", "manga2music", "run", str(tmp_path / "lib"), "-o",
                            str(tmp_path / "out"), *BUILTIN], capture_output=True, env=cli_env(), timeout=120)
    assert again.stdout.decode("utf-8").startswith("第一話\tskipped"), again.stderr  # and the other way round


def test_a_chapter_named_in_the_locales_own_encoding_keeps_its_name(tmp_path):
    """On an EUC-JP system a folder named 第二話 is stored in EUC-JP bytes: started again in UTF-8 mode, its files
    were named "������.wav" and the table said the same (the bytes are not UTF-8).  The name is read in the
    locale's own encoding; its files get the UTF-8 name (as the listening page and the records need), and the
    terminal is written in the locale's encoding."""
    env = _euc_jp_locale(tmp_path / "locales")
    if env is None:
        pytest.skip("localedef cannot build a ja_JP.eucJP locale here")
    lib = os.fsencode(tmp_path / "lib")
    chapter = os.path.join(lib, "第二話".encode("euc_jp"))
    shutil.copytree(os.fsencode(SAMPLES / "calm"), chapter)
    done = subprocess.run([sys.executable, "-m", "manga2music", "run", str(tmp_path / "lib"), "-o",
                           str(tmp_path / "out"), *BUILTIN], capture_output=True, env=env, timeout=120)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode("euc_jp", "replace")
    assert done.stdout.decode("euc_jp").startswith("第二話\tok\t第二話.wav"), done.stdout
    assert "第二話.wav".encode("utf-8") in os.listdir(os.fsencode(tmp_path / "out"))
    record = json.loads((tmp_path / "out" / "第二話.json").read_text(encoding="utf-8"))
    assert record["section"] == "第二話"


def test_a_name_the_locale_cannot_encode_fails_its_section_in_one_line_when_utf8_mode_is_refused(tmp_path):
    """`PYTHONUTF8=0 LC_ALL=C`: the user's choice is kept, so a Japanese name cannot be written; its section failed
    with "UnicodeEncodeError: 'ascii' codec..." and the summary ended in a traceback."""
    shutil.copytree(SAMPLES / "calm", tmp_path / "lib" / "第一話")
    shutil.copytree(SAMPLES / "calm", tmp_path / "lib" / "ch2")
    env = {k: v for k, v in cli_env().items() if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING"))}
    done = subprocess.run([sys.executable, "-m", "manga2music", "run", str(tmp_path / "lib"), "-o",
                           str(tmp_path / "out"), *BUILTIN], capture_output=True, text=True, errors="replace",
                          env={**env, "LC_ALL": "C", "PYTHONUTF8": "0"}, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "its name cannot be a file name in this locale's encoding (ascii): use a UTF-8 locale" in done.stderr
    assert "\\u7b2c\\u4e00\\u8a71\tfailed" in done.stdout and "ch2\tok" in done.stdout, done.stdout


def test_a_seed_given_to_a_library_says_which_sections_will_sound_the_same(tmp_path):
    """`run lib --seed 7` gave every chapter seed 7, and chapters read alike (the same description) came out as the
    same music, which a user found only by listening. It is said, with what to do."""
    lib = tmp_path / "lib"
    for name in ("Ch 1", "Ch 2", "Ch 3"):
        shutil.copytree(SAMPLES / ("action" if name == "Ch 3" else "calm"), lib / name)
    said = cli("run", lib, "-o", tmp_path / "out", *MODELS, "--duration", "1", "--seed", "7")
    assert said.returncode == 0, said.stderr
    assert "Ch 1, Ch 2: the same description and seed 7 make the same music; without --seed" in said.stderr, \
        said.stderr
    assert (sf.read(tmp_path / "out" / "Ch 1.wav")[0] == sf.read(tmp_path / "out" / "Ch 2.wav")[0]).all()
    assert "Ch 3" not in said.stderr.split("Listening page")[0]
    unseeded = cli("run", lib, "-o", tmp_path / "out2", *MODELS, "--duration", "1")
    assert "same music" not in unseeded.stderr


def test_a_chapter_run_alone_first_keeps_its_files_when_the_series_is_run(tmp_path):
    """`run "S/Vol 10/Chapter 1"` then `run S` into the same folder described and composed that chapter again with
    a new seed, as `Vol 10/Chapter 1`, and the manifest listed two tracks of the same pages."""
    series, out = tmp_path / "S", tmp_path / "out"
    for vol in ("Vol 9", "Vol 10"):
        shutil.copytree(SAMPLES / "calm", series / vol / "Chapter 1")
    alone = cli("run", series / "Vol 10" / "Chapter 1", "-o", out, *BUILTIN)
    assert alone.returncode == 0, alone.stderr
    made = (out / "Chapter 1.wav").read_bytes()
    whole = cli("run", series, "-o", out, *BUILTIN, "--json")
    assert whole.returncode == 0, whole.stderr
    manifest = json.loads(whole.stdout)
    statuses = {e["name"]: e["status"] for e in manifest["sections"]}
    assert statuses == {"Vol 9/Chapter 1": "ok", "Chapter 1": "skipped"}, statuses
    assert (out / "Chapter 1.wav").read_bytes() == made and not (out / "Vol 10").exists()


def test_a_chapter_that_kept_its_shorter_name_is_listed_in_reading_order(tmp_path):
    """After `run "S/Vol 1/Chapter 1"` then `run S`, the first chapter keeps its files as `Chapter 1`, and the
    run's table, the manifest and the listening page put it last, after every volume's chapters (loose chapters go
    after volumes): a reader looking for the first chapter found it at the bottom."""
    series, out = tmp_path / "S", tmp_path / "out"
    for vol, chapter in (("Vol 1", "Chapter 1"), ("Vol 1", "Chapter 2"), ("Vol 2", "Chapter 3")):
        shutil.copytree(SAMPLES / "calm", series / vol / chapter)
    assert cli("run", series / "Vol 1" / "Chapter 1", "-o", out, *BUILTIN, "--duration", "1").returncode == 0
    whole = cli("run", series, "-o", out, *BUILTIN, "--duration", "1", "--json")
    assert whole.returncode == 0, whole.stderr
    in_order = ["Chapter 1", "Vol 1/Chapter 2", "Vol 2/Chapter 3"]
    assert [e["name"] for e in json.loads(whole.stdout)["sections"]] == in_order, whole.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["name"] for e in manifest["sections"]] == in_order
    page = (out / "index.html").read_text()
    assert page.index('"Chapter%201.wav"') < page.index('"Vol%201/Chapter%202.wav"') \
        < page.index('"Vol%202/Chapter%203.wav"')
    table = cli("run", series, "-o", out, *BUILTIN, "--duration", "1")
    assert [line.split("\t")[0] for line in table.stdout.splitlines()] == in_order, table.stdout
    volume = cli("run", series / "Vol 1", "-o", out, *BUILTIN, "--duration", "1")  # one volume again: its
    assert volume.returncode == 0, volume.stderr  # chapters stay before the next volume's
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["name"] for e in manifest["sections"]] == in_order


def test_describe_lists_the_description_it_wrote_not_the_track_it_left_behind(tmp_path):
    """`describe` into a folder `run` made listed "calm  ok  calm.wav": the track of the words before, which the
    new description does not match, and not the description the command wrote."""
    out = tmp_path / "out"
    assert cli("run", SAMPLES / "calm", "-o", out, *BUILTIN).returncode == 0
    described = cli("describe", SAMPLES / "calm", "-o", out, "--model", "builtin", "--force")
    assert described.returncode == 0, described.stderr
    assert described.stdout.splitlines() == ["calm\tok\tcalm.txt"], described.stdout


def test_an_output_folder_given_as_pages_is_said_to_be_one(tmp_path):
    """`run OUT -o other`, OUT a folder manga2music wrote, said "no pages found in OUT (looked for avif, bmp...)",
    as if the pages were missing: the user had given the wrong folder."""
    out = tmp_path / "out"
    assert cli("run", SAMPLES / "calm", "-o", out, *BUILTIN, "--duration", "1").returncode == 0
    result = cli("run", out, "-o", tmp_path / "other", *BUILTIN)
    assert result.returncode == 2 and one_line_error(result.stderr), result.stderr
    assert f"{out} is a folder manga2music wrote (its manifest.json), not pages" in result.stderr, result.stderr
    assert str(SAMPLES / "calm") in result.stderr  # where its pages were
    both = tmp_path / "both"  # several sections: the folder that holds them all (it named the first one's)
    assert cli("run", SAMPLES / "calm", SAMPLES / "action", "-o", both, *BUILTIN).returncode == 0
    said = cli("run", both, "-o", tmp_path / "other", *BUILTIN)
    assert said.returncode == 2 and f"its pages were in {SAMPLES}\n" in said.stderr + "\n", said.stderr


def test_the_results_in_a_20_column_terminal_break_no_name_status_or_file_name(tmp_path):
    """In a very narrow terminal (20 columns: a split pane on a phone) the results table broke every word: "actio"
    over "n", "stat" over "us", "calm." over "wav". Where the table cannot fit its words, each section is a line of
    its own (name and status) with what it made below it."""
    from test_first_run import in_terminal

    out = tmp_path / "out"
    code, shown = in_terminal(["run", SAMPLES, "-o", out, *BUILTIN], cli_env(COLUMNS="20"), tmp_path)
    assert code == 0, shown
    results = shown.split("Listening page:", 1)[1].splitlines()
    for name in ("action", "calm", "webtoon"):
        (line,) = [ln for ln in results if ln.split()[:1] == [name]]
        assert line.split()[1:] == ["ok"], results
        assert any(ln.strip() == f"{name}.wav" for ln in results), results  # the file it made, whole
    assert not any(ch in "".join(results) for ch in "┃│━"), results

    wide, shown = in_terminal(["run", SAMPLES, "-o", out, *BUILTIN], cli_env(COLUMNS="80"), tmp_path)
    rows = [[cell.strip() for cell in ln.split("│")] for ln in shown.splitlines() if "│" in ln]
    assert wide == 0 and ["action", "skipped", "action.wav"] in rows, shown  # 80 columns: still the table


def test_a_page_given_alone_gets_files_of_its_own_and_leaves_its_chapters_alone(tmp_path):
    """A page given alone ("try one page") into the output folder of its chapter took the chapter's name: the
    chapter's record, description and music were replaced by the one page's ("describing again: 2 pages removed"),
    and the next run of the series made the chapter again. Its folder was taken for its source, so it held every
    name its folder's files had. The chapter's pages given one by one (`ch/*.png`) swapped names on each identical
    run, each run making all of them again. A page given alone is its own source."""
    lib, out = tmp_path / "S", tmp_path / "out"
    shutil.copytree(SAMPLES / "calm", lib / "Chapter 1")
    flags = ("-o", out, "--vision-model", "builtin", "--music-model", "builtin", "--duration", "1")
    assert cli("run", lib, *flags).returncode == 0
    chapter = {f.name: f.read_bytes() for f in out.glob("Chapter 1.*")}
    one = cli("run", lib / "Chapter 1" / "002.png", *flags)
    assert one.returncode == 0 and "Chapter 1" not in one.stderr, one.stderr
    assert {f.name: f.read_bytes() for f in out.glob("Chapter 1.*")} == chapter
    assert [p["name"] for p in json.loads((out / "002.json").read_text("utf-8"))["pages"]] == ["002.png"]
    again = cli("run", lib, *flags, "--json")
    assert again.returncode == 0 and "again" not in again.stderr, again.stderr
    assert {e["name"]: e["status"] for e in json.loads(again.stdout)["sections"]}["Chapter 1"] == "skipped"
    pages = sorted((lib / "Chapter 1").iterdir())
    for run in range(2):  # the pages one by one, twice: each keeps one name, the second run makes nothing
        each = cli("run", *pages, *flags, "--json")
        assert each.returncode == 0, each.stderr
        made = {e["name"]: e["status"] for e in json.loads(each.stdout)["sections"] if e["name"] != "Chapter 1"}
        assert made == {"001": "ok", "002": "skipped", "003": "ok"} if run == 0 else \
            {"001": "skipped", "002": "skipped", "003": "skipped"}, (run, made, each.stderr)
        for page in pages:
            assert [p["name"] for p in json.loads((out / f"{page.stem}.json").read_text("utf-8"))["pages"]] == \
                [page.name]
    assert {f.name: f.read_bytes() for f in out.glob("Chapter 1.*")} == chapter
    first = tmp_path / "out2"  # the other way round: a page first, then its folder
    assert cli("run", pages[0], "-o", first, *flags[2:]).returncode == 0
    folder = cli("run", lib / "Chapter 1", "-o", first, *flags[2:], "--json")
    assert folder.returncode == 0, folder.stderr
    assert {e["name"]: e["status"] for e in json.loads(folder.stdout)["sections"]} == {"001": "ok", "Chapter 1": "ok"}
    assert [p["name"] for p in json.loads((first / "001.json").read_text("utf-8"))["pages"]] == ["001.png"]


def _page(path: Path, text: str) -> Path:
    """A page whose pixels are its own (``text`` drawn on it)."""
    from PIL import ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (300, 420), "white")
    ImageDraw.Draw(image).text((20, 20), text, fill="black")
    image.save(path)
    return path


def _sources(out: Path) -> dict[str, list[str]]:
    """Each record's name -> the pages it was made from, as the record locates them."""
    return {str(r.relative_to(out).with_suffix("")): [p.get("member") or Path(p["source"]).name
                                                      for p in json.loads(r.read_text("utf-8"))["pages"]]
            for r in out.rglob("*.json") if r.name != "manifest.json"}


def test_a_chapter_added_to_a_volume_archive_gets_its_own_files(tmp_path):
    """`Vol 02.cbz` held Ch 003 and Ch 004; Ch 002.5 was added to it: all three were made again, Ch 002.5's music
    written as "Ch 003", Ch 003's as "Ch 004", Ch 004's as "Ch 004-2" (every chapter of an archive had the archive
    as its source, so the first new chapter took the first name the archive held)."""
    pages = {c: _page(tmp_path / "pages" / c / "001.png", c) for c in ("Ch 003", "Ch 004", "Ch 002.5")}
    (tmp_path / "S").mkdir()
    volume, out = tmp_path / "S" / "Vol 02.cbz", tmp_path / "out"
    with zipfile.ZipFile(volume, "w") as zf:
        for c in ("Ch 003", "Ch 004"):
            zf.write(pages[c], f"{c}/001.png")
    args = ("run", tmp_path / "S", "-o", out, *BUILTIN, "--json")
    assert cli(*args).returncode == 0
    tracks = {c: (out / "Vol 02" / f"{c}.wav").read_bytes() for c in ("Ch 003", "Ch 004")}
    with zipfile.ZipFile(volume, "a") as zf:
        zf.write(pages["Ch 002.5"], "Ch 002.5/001.png")
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    status = {e["name"]: e["status"] for e in json.loads(again.stdout)["sections"]}
    assert status == {"Vol 02/Ch 002.5": "ok", "Vol 02/Ch 003": "skipped", "Vol 02/Ch 004": "skipped"}
    assert _sources(out) == {f"Vol 02/{c}": [f"{c}/001.png"] for c in ("Ch 002.5", "Ch 003", "Ch 004")}
    assert all((out / "Vol 02" / f"{c}.wav").read_bytes() == track for c, track in tracks.items())


def test_a_new_chapter_sharing_credit_pages_does_not_take_a_deleted_chapters_files(tmp_path):
    """Mihon's "delete after reading": Chapter 1 deleted, Chapter 3 downloaded, each chapter with the group's
    credits and recruitment pages.  Chapter 3 took Chapter 1's files ("the pages of Chapter 1, whose folder is
    gone"): half of Chapter 1's pages were the shared ones.  Its music replaced Chapter 1's."""
    lib, out = tmp_path / "L", tmp_path / "out"
    shared = [_page(tmp_path / "credits.png", "credits"), _page(tmp_path / "recruit.png", "recruit")]
    for chapter, count in (("Chapter 1", 2), ("Chapter 2", 1), ("Chapter 3", 3)):
        where = lib if chapter != "Chapter 3" else tmp_path / "new"
        for k in range(count):
            _page(where / chapter / f"{k + 1:03d}.png", f"{chapter} page {k + 1}")
        for page in shared:
            shutil.copy(page, where / chapter / page.name)
    args = ("run", lib, "-o", out, *BUILTIN, "--json")
    assert cli(*args).returncode == 0
    track = (out / "Chapter 1.wav").read_bytes()
    shutil.rmtree(lib / "Chapter 1")
    shutil.move(tmp_path / "new" / "Chapter 3", lib / "Chapter 3")
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert "whose folder is gone" not in again.stderr, again.stderr
    entries = {e["name"]: (e["status"], bool(e.get("pages_gone"))) for e in json.loads(again.stdout)["sections"]}
    assert entries == {"Chapter 1": ("ok", True), "Chapter 2": ("skipped", False), "Chapter 3": ("ok", False)}
    assert (out / "Chapter 1.wav").read_bytes() == track
    assert _sources(out)["Chapter 3"] == ["001.png", "002.png", "003.png", "credits.png", "recruit.png"]


@pytest.mark.parametrize("how", ["into a volume folder", "extracted into a folder of its name"])
def test_a_chapter_moved_into_a_folder_keeps_its_files(tmp_path, how):
    """`mkdir "Vol 01" && mv "Chapter 1" "Vol 01/"`, or `Ch 1.cbz` extracted by 7-Zip's "Extract to Ch 1\\" (into
    `Ch 1/Ch 1/`): the chapter was made again under its new name with a new seed, its old files left behind."""
    lib, out = tmp_path / "V", tmp_path / "out"
    for chapter in ("Chapter 1", "Chapter 2"):
        for k in (1, 2):
            _page(lib / chapter / f"{k:03d}.png", f"{chapter} page {k}")
    args = ("run", lib, "-o", out, *BUILTIN, "--json")
    assert cli(*args).returncode == 0
    tracks = {c: (out / f"{c}.wav").read_bytes() for c in ("Chapter 1", "Chapter 2")}
    if how == "into a volume folder":
        (lib / "Vol 01").mkdir()
        for chapter in ("Chapter 1", "Chapter 2"):
            shutil.move(lib / chapter, lib / "Vol 01" / chapter)
    else:
        shutil.move(lib / "Chapter 1", tmp_path / "Chapter 1")
        shutil.move(tmp_path / "Chapter 1", lib / "Chapter 1" / "Chapter 1")
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert {e["status"] for e in json.loads(again.stdout)["sections"]} == {"skipped"}, again.stdout
    assert sorted(p.name for p in out.rglob("*.wav")) == ["Chapter 1.wav", "Chapter 2.wav"]
    assert all((out / f"{c}.wav").read_bytes() == track for c, track in tracks.items())


def test_a_chapter_renamed_with_a_page_added_says_only_the_page_added(tmp_path):
    """Mihon's `Chapter 12_tmp` renamed `Chapter 12` once its last page came: "describing again: 1 page added
    (002.png); 1 page renamed (001.png \u2192 001.png)": a page that kept its name is not renamed."""
    lib, out = tmp_path / "T", tmp_path / "out"
    _page(lib / "Chapter 12 (partial)" / "001.png", "page 1")
    args = ("run", lib, "-o", out, *BUILTIN)
    assert cli(*args).returncode == 0
    (lib / "Chapter 12 (partial)").rename(lib / "Chapter 12")
    _page(lib / "Chapter 12" / "002.png", "page 2")
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert "Chapter 12 (partial): describing again: 1 page added (002.png)\n" in again.stderr, again.stderr


def test_a_chapter_folder_renamed_inside_its_volume_archive_keeps_its_files(tmp_path):
    """`Vol 01.cbz` repacked with `Chapter 2/` renamed `Chapter 002/`: made again under the new name, a new seed,
    the old files left behind with no word (a folder on the disk renamed keeps its files)."""
    pages = {c: [_page(tmp_path / "p" / c / f"{k}.png", f"{c} {k}") for k in (1, 2)] for c in ("Chapter 1", "Chapter 2")}
    (tmp_path / "lib").mkdir()
    volume, out = tmp_path / "lib" / "Vol 01.cbz", tmp_path / "out"

    def pack(names: dict[str, str]) -> None:
        with zipfile.ZipFile(volume, "w") as zf:
            for chapter, inside in names.items():
                for page in pages[chapter]:
                    zf.write(page, f"{inside}/00{page.stem}.png")

    pack({"Chapter 1": "Chapter 1", "Chapter 2": "Chapter 2"})
    args = ("run", tmp_path / "lib", "-o", out, *BUILTIN, "--json")
    assert cli(*args).returncode == 0
    track = (out / "Vol 01" / "Chapter 2.wav").read_bytes()
    pack({"Chapter 1": "Chapter 1", "Chapter 2": "Chapter 002"})
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert {e["name"]: e["status"] for e in json.loads(again.stdout)["sections"]} == {
        "Vol 01/Chapter 1": "skipped", "Vol 01/Chapter 2": "skipped"}, again.stdout
    assert "Vol 01/Chapter 002: the pages of Vol 01/Chapter 2" in again.stderr, again.stderr
    assert (out / "Vol 01" / "Chapter 2.wav").read_bytes() == track and not list(out.rglob("Chapter 002*"))


def test_a_chapter_of_shared_pages_renamed_keeps_its_files(tmp_path):
    """A notice chapter made only of the group's credit pages (which every chapter has), renamed: made again
    under its new name, since pages other records have did not count at all."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    credits = [_page(tmp_path / "c" / f"90{k}.png", f"credits {k}") for k in (1, 2)]
    for chapter in ("Ch 1", "Ch 2", "Ch 2.5 Notice"):
        if chapter != "Ch 2.5 Notice":
            _page(lib / chapter / "001.png", chapter)
        for page in credits:
            (lib / chapter).mkdir(parents=True, exist_ok=True)
            shutil.copy(page, lib / chapter / page.name)
    args = ("run", lib, "-o", out, *BUILTIN, "--json")
    assert cli(*args).returncode == 0
    (lib / "Ch 2.5 Notice").rename(lib / "Ch 2.5")
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    statuses = {e["name"]: e["status"] for e in json.loads(again.stdout)["sections"]}
    assert statuses == {"Ch 1": "skipped", "Ch 2": "skipped", "Ch 2.5 Notice": "skipped"}, again.stdout


def test_a_stopped_runs_pipe_lines_leave_out_a_section_whose_music_the_stop_left_old(capsys):
    """A run stopped after it described a section again, before its music: the pipe said "a<TAB>ok<TAB>a.wav" of
    music never made (a.wav is the old one).  `--json` keeps the entry, with music_outdated."""
    from manga2music.cli._common import _print_what_was_finished

    manifest = {"command": "run", "this_run": ["a", "b"], "sections": [
        {"name": "a", "status": "ok", "tracks": ["a.wav"], "description": "a.txt", "music_outdated": True},
        {"name": "b", "status": "ok", "tracks": ["b.wav"], "description": "b.txt"}]}
    _print_what_was_finished(manifest, json_output=False)  # capsys: stdout is not a terminal
    assert capsys.readouterr().out == "b\tok\tb.wav\n"
    _print_what_was_finished(manifest, json_output=True)
    assert json.loads(capsys.readouterr().out)["sections"][0]["music_outdated"] is True


@pytest.mark.parametrize("inside", ["", "Ch 2/"], ids=["pages-at-its-root", "pages-in-a-folder"])
def test_an_archive_damaged_since_its_last_run_fails_under_its_own_name_and_is_whole_again_when_mended(tmp_path,
                                                                                                      inside):
    """`Ch 2.cbz` made, then cut short (a bad copy): "Ch 2 from None: written as Ch 2-2", a failed `Ch 2-2` beside
    `Ch 2` in the manifest and on the listening page for good, even after the archive was mended.  The same for an
    archive whose pages are in a folder in it, the common way (`Ch 2 from .../Ch 2.cbz: written as Ch 2-2 (Ch 2 in
    the output folder is from .../Ch 2.cbz!Ch 2)`)."""
    samples = Path(__file__).resolve().parent.parent / "samples"
    series = tmp_path / "S"
    (series / "Ch 1").mkdir(parents=True)
    shutil.copy(samples / "action" / "001.png", series / "Ch 1" / "001.png")
    with zipfile.ZipFile(series / "Ch 2.cbz", "w") as zf:
        for name in ("001.png", "002.png"):
            zf.write(samples / "calm" / name, inside + name)
    whole = (series / "Ch 2.cbz").read_bytes()
    args = ("run", series, "-o", tmp_path / "out", "--vision-model", "builtin", "--music-model", "builtin",
            "--duration", "2", "--json")
    assert cli(*args).returncode == 0
    (series / "Ch 2.cbz").write_bytes(whole[: len(whole) // 2])
    damaged = cli(*args)
    assert damaged.returncode == 1 and "from None" not in damaged.stderr and "Ch 2-2" not in damaged.stderr
    assert [(e["name"], e["status"]) for e in json.loads(damaged.stdout)["sections"]] == [("Ch 1", "skipped"),
                                                                                          ("Ch 2", "failed")]
    (series / "Ch 2.cbz").write_bytes(whole)
    mended = cli(*args)
    assert mended.returncode == 0, mended.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert [(e["name"], e["status"]) for e in manifest["sections"]] == [("Ch 1", "skipped"), ("Ch 2", "skipped")]


def test_a_failed_download_deleted_since_leaves_the_manifest_and_the_page(tmp_path):
    """A chapter archive that was no archive (a failed download) failed, was deleted, and stayed "failed" in the
    manifest, on the listening page and in every later `--json`, for good: nothing of it was there to delete."""
    series = tmp_path / "S"
    (series / "Ch 1").mkdir(parents=True)
    shutil.copy(SAMPLES / "calm" / "001.png", series / "Ch 1" / "001.png")
    (series / "Ch 2.cbz").write_bytes(b"not a zip")
    (series / "Ch 3").mkdir()  # a chapter folder whose only page is no image (stayed "failed" too)
    (series / "Ch 3" / "001.png").write_bytes(b"an error page the site sent instead")
    args = ("run", series, "-o", tmp_path / "out", "--vision-model", "builtin", "--music-model", "builtin",
            "--duration", "1", "--json")
    first = cli(*args)
    assert [(e["name"], e["status"]) for e in json.loads(first.stdout)["sections"]] == [
        ("Ch 1", "ok"), ("Ch 2", "failed"), ("Ch 3", "failed")]
    (series / "Ch 2.cbz").unlink()
    shutil.rmtree(series / "Ch 3")
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert [e["name"] for e in json.loads(again.stdout)["sections"]] == ["Ch 1"]
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "Ch 2" not in page and "Ch 3" not in page
