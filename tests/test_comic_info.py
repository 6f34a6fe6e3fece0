"""A comic archive's ComicInfo.xml (the metadata ComicRack, Komga, Kavita and most manga downloaders write) says
which way its pages turn: ``<Manga>YesAndRightToLeft</Manga>``."""

from __future__ import annotations

import io
import re
import tarfile
import zipfile
from pathlib import Path

from output_checks import cli

from manga2music.sections import book_page_progression, find_sections

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def comic_info(manga: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<ComicInfo xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<Series>Test</Series><Manga>{manga}</Manga></ComicInfo>").encode()


def cbz(path: Path, info: bytes | None, info_name: str = "ComicInfo.xml", pages_under: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for k, page in enumerate(sorted((SAMPLES / "calm").iterdir()), start=1):
            zf.write(page, f"{pages_under}{k:03d}{page.suffix}")
        if info is not None:
            zf.writestr(info_name, info)
    return path


def direction_of(path: Path) -> str | None:
    sections = find_sections([path])
    return book_page_progression(sections[0].pages[0])


def test_the_way_a_comic_archive_turns_its_pages_is_read_from_its_comic_info(tmp_path):
    assert direction_of(cbz(tmp_path / "rtl.cbz", comic_info("YesAndRightToLeft"))) == "rtl"
    assert direction_of(cbz(tmp_path / "ltr.cbz", comic_info("No"))) == "ltr"  # not a manga: a Western comic
    for unsaid in ("Yes", "Unknown", ""):  # a manga that does not say which way: the text decides, as before
        assert direction_of(cbz(tmp_path / f"unsaid-{unsaid}.cbz", comic_info(unsaid))) is None
    assert direction_of(cbz(tmp_path / "none.cbz", None)) is None
    assert direction_of(cbz(tmp_path / "lower.cbz", comic_info("YesAndRightToLeft"), "comicinfo.xml")) == "rtl"
    # a chapter's pages in a folder of the archive, its ComicInfo.xml beside them
    assert direction_of(cbz(tmp_path / "nested.cbz", comic_info("YesAndRightToLeft"), "Ch 1/ComicInfo.xml",
                            pages_under="Ch 1/")) == "rtl"
    for bad in (b"<ComicInfo><Manga>YesAndRightToLeft", b"\xff\xfe not xml", b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>"):
        assert direction_of(cbz(tmp_path / "bad.cbz", bad)) is None  # unreadable metadata: as if there were none
    with tarfile.open(tmp_path / "rtl.cbt", "w") as tf:
        for k, page in enumerate(sorted((SAMPLES / "calm").iterdir()), start=1):
            tf.add(page, f"{k:03d}{page.suffix}")
        data = comic_info("YesAndRightToLeft")
        member = tarfile.TarInfo("ComicInfo.xml")
        member.size = len(data)
        tf.addfile(member, io.BytesIO(data))
    assert direction_of(tmp_path / "rtl.cbt") == "rtl"
    folder = tmp_path / "folder"  # pages unpacked into a folder, with their ComicInfo.xml
    with zipfile.ZipFile(cbz(tmp_path / "unpack.cbz", comic_info("YesAndRightToLeft"))) as zf:
        zf.extractall(folder)
    assert direction_of(folder) == "rtl"


def test_a_score_of_a_wordless_manga_archive_opens_right_to_left_as_its_comic_info_says(tmp_path):
    """The read-along page found which way pages turn from the text alone (vertical Japanese columns): a wordless
    manga chapter whose ComicInfo.xml says YesAndRightToLeft opened left to right."""
    for manga, rtl in (("YesAndRightToLeft", "true"), ("Unknown", "false")):
        book = cbz(tmp_path / f"{manga}.cbz", comic_info(manga))
        scored = cli("score", book, "-o", tmp_path / "out", "--vision-model", "builtin", "--music-model", "builtin",
                     "--seed", "1", "--longest-cue", "8", timeout=300)
        assert scored.returncode == 0, scored.stderr
        html = (tmp_path / "out" / f"{manga}.read.html").read_text(encoding="utf-8")
        assert re.findall(r'"rtl":\s*(true|false)', html) == [rtl], manga


def test_a_comic_info_added_after_the_score_turns_the_pages_its_way_on_the_next_run(tmp_path):
    """A ComicInfo.xml added (or edited) after a chapter was scored was not read: the chapter was skipped, its
    read-along page left to right until --force composed everything again."""
    folder = tmp_path / "ch"
    with zipfile.ZipFile(cbz(tmp_path / "ch.cbz", None)) as zf:
        zf.extractall(folder)
    args = ("score", folder, "-o", tmp_path / "out", "--vision-model", "builtin", "--music-model", "builtin",
            "--seed", "1", "--longest-cue", "8")
    assert cli(*args, timeout=300).returncode == 0
    html = tmp_path / "out" / "ch.read.html"
    assert re.findall(r'"rtl":\s*(true|false)', html.read_text(encoding="utf-8")) == ["false"]
    (folder / "ComicInfo.xml").write_bytes(comic_info("YesAndRightToLeft"))
    again = cli(*args, "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    assert re.findall(r'"rtl":\s*(true|false)', html.read_text(encoding="utf-8")) == ["true"]
    assert "composing" not in again.stderr, again.stderr  # its cues are reused
