"""The local web UI: its core without Gradio, the `ui` command, and the page as a user meets it in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from browser import browser, page, save_screenshot  # noqa: F401  (pytest fixtures)
from manga2music import other_archives
from manga2music.errors import InputError, ModelUnavailableError, NeedsKeyError
from manga2music.hardware import HardwareReport, HubStatus
from manga2music.outputs import read_record
from manga2music.pipeline import Callbacks
from manga2music.webui import generate, parse_seed, upload_name
from manga2music.webui import messages
from manga2music.webui.messages import log_for_server, scrub
from manga2music.webui.models import model_problem, suggestion
from manga2music.webui.run import UPLOAD_TYPES, stage_uploads
from manga2music.webui.thumbnails import preview
from rar5 import write_rar5

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
TWO_PAGES = [SAMPLES / "calm" / "001.png", SAMPLES / "calm" / "002.png"]
#: what a user must never read: temporary folders and Python internals
LEAKS = re.compile(r"manga2music-(upload|ui|preview)-|/gradio/|object at 0x|Errno|[A-Za-z]+Error\b|Traceback")


@pytest.fixture
def not_images(tmp_path) -> list[Path]:
    """A text file renamed .png and random bytes named .png: what a user uploads by mistake."""
    fake = tmp_path / "fake.png"
    fake.write_text("not an image at all", encoding="utf-8")
    noise = tmp_path / "noise.png"
    noise.write_bytes(os.urandom(2048))
    return [fake, noise]


def test_generate_names_outputs_after_the_upload_and_removes_the_copies(tmp_path):
    result = generate(TWO_PAGES, tmp_path / "results", duration=3, seed=5, work_root=tmp_path / "work")
    assert result.folder.name == "calm" and result.folder.parent.parent == tmp_path / "results"
    assert result.audio == result.folder / "calm.wav"
    assert abs(sf.info(str(result.audio)).duration - 3.0) <= 0.05
    text = (result.folder / "calm.txt").read_text(encoding="utf-8").strip()
    assert text and result.description == text
    record = read_record(result.folder / "calm.json")
    assert [p["name"] for p in record["pages"]] == ["001.png", "002.png"]
    assert [p["path"] for p in record["pages"]] == ["001.png", "002.png"]  # not the deleted temporary copy
    assert record["compose"]["seed"] == 5
    with zipfile.ZipFile(result.archive) as zf:
        records = [zf.read(n).decode("utf-8") for n in zf.namelist() if n.endswith(".json")]
    assert records and not any(LEAKS.search(text) for text in records)
    assert not list((tmp_path / "work").iterdir())  # the staged copies of the uploads are gone
    assert all(p.exists() for p in TWO_PAGES)  # the user's own files are untouched
    assert not list(result.folder.rglob("*.png"))  # no page image kept among the results
    assert [p.name for p in result.downloads] == ["calm.wav", "calm.txt", "calm.mid", "calm-music.zip"]
    with zipfile.ZipFile(result.archive) as zf:
        assert {"index.html", "manifest.json", "calm.wav", "calm.txt"} <= set(zf.namelist())
        # the results only: not the caches (the pages' thumbnails, kept answers), whose pages the user did not ask for
        assert not [n for n in zf.namelist() if any(part.startswith(".") for part in n.split("/"))]


def test_a_folder_unzipped_from_the_download_goes_on_with_the_command_line(tmp_path):
    """The page's results, unzipped, were refused by `manga2music run ... -o FOLDER`: "index.html was not written
    by manga2music", for the manifest kept the digest of the listening page from before the UI took the temporary
    paths out of it."""
    import hashlib

    from output_checks import cli

    result = generate(TWO_PAGES, tmp_path / "results", duration=3, seed=5, work_root=tmp_path / "work")
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(result.archive) as zf:
        zf.extractall(folder)
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert manifest["files"]["index.html"] == hashlib.sha256((folder / "index.html").read_bytes()).hexdigest()
    pages = tmp_path / "calm"
    pages.mkdir()
    for each in TWO_PAGES:
        shutil.copy(each, pages / each.name)
    again = cli("run", pages, "-o", folder, "--vision-model", "builtin", "--music-model", "builtin", "--duration", "3",
                "--format", "flac")
    assert again.returncode == 0, again.stderr
    assert (folder / "calm.flac").is_file() and "calm" in (folder / "index.html").read_text("utf-8")


def test_the_results_zip_stores_audio_as_it_is_the_bar_moves_while_packing_and_a_stop_keeps_nothing(tmp_path):
    """A 40-minute webtoon score's zip compressed 770 MB of WAV by 7% in a minute, the bar at 100% and Stop unheard
    all the while.  Audio is stored as it is (the words and pages compressed), the bar says it is packing, and a Stop
    there leaves no half-made results."""
    from manga2music.webui.server import JobStopped

    packing: list[tuple[int, int]] = []

    def step(done: int, total: int, label: str) -> None:
        if label.startswith("packing"):
            packing.append((done, total))

    result = generate(TWO_PAGES, tmp_path / "results", duration=3, seed=5, work_root=tmp_path / "work",
                      callbacks=Callbacks(step=step))
    with zipfile.ZipFile(result.archive) as zf:
        kinds = {n.rsplit(".", 1)[-1]: zf.getinfo(n).compress_type for n in zf.namelist()}
        assert zf.read("calm.wav") == (result.folder / "calm.wav").read_bytes()
    assert kinds["wav"] == zipfile.ZIP_STORED and kinds["json"] == kinds["html"] == zipfile.ZIP_DEFLATED
    assert len(packing) >= 3 and packing[0][0] == 0 and packing[-1][0] < packing[-1][1]  # file by file

    def stop_while_packing(done: int, total: int, label: str) -> None:
        if label.startswith("packing") and done:
            raise JobStopped("Stop pressed")

    with pytest.raises(JobStopped):
        generate(TWO_PAGES, tmp_path / "stopped", duration=3, seed=5, work_root=tmp_path / "work",
                 callbacks=Callbacks(step=stop_while_packing))
    assert list((tmp_path / "stopped").iterdir()) == []


def test_generate_from_a_cbz_with_two_chapters(tmp_path):
    cbz = tmp_path / "book.cbz"
    with zipfile.ZipFile(cbz, "w") as zf:
        for chapter, folder in (("ch1", "calm"), ("ch2", "action")):
            zf.write(SAMPLES / folder / "001.png", f"{chapter}/001.png")
    result = generate([cbz], tmp_path / "results", duration=2, fmt="flac", seed=1)
    assert [e["name"] for e in result.entries] == ["book/ch1", "book/ch2"]
    assert result.audio.suffix == ".flac" and abs(sf.info(str(result.audio)).duration - 2.0) <= 0.05
    assert result.description.startswith("[book/ch1]\n") and "\n\n[book/ch2]\n" in result.description
    assert sum(p.suffix == ".flac" for p in result.downloads) == 2
    assert result.archive.name == "book-music.zip"  # not the name of the book the user uploaded
    from manga2music.webui.messages import status_markdown

    said = status_markdown(result)  # one player for two tracks: which one it plays, and where the other is
    assert "the player plays `ch1.flac`; the other tracks are in Downloads" in said and "page(s)" not in said


def test_two_chapters_of_one_name_in_two_volumes_download_under_names_that_tell_them_apart(tmp_path):
    """Saga.zip with "Vol 1/Chapter 1" and "Vol 2/Chapter 1": Downloads listed two "Chapter 1.wav" (and .txt, .mid)
    of different music, which a browser saves as "Chapter 1.wav" and "Chapter 1 (1).wav"."""
    book = tmp_path / "Saga.zip"
    with zipfile.ZipFile(book, "w") as zf:
        for volume, folder in (("Vol 1", "calm"), ("Vol 2", "action")):
            for page in ("001.png", "002.png"):
                zf.write(SAMPLES / folder / page, f"{volume}/Chapter 1/{page}")
    result = generate([book], tmp_path / "results", duration=1, seed=4)
    wavs = [p for p in result.downloads if p.suffix == ".wav"]
    assert [p.name for p in wavs] == ["Vol 1 - Chapter 1.wav", "Vol 2 - Chapter 1.wav"]
    names = [p.name for p in result.downloads]
    assert len(set(names)) == len(names), names
    made = {e["name"]: e for e in result.entries}
    for wav, volume in zip(wavs, ("Vol 1", "Vol 2")):
        (track,) = made[f"Saga/{volume}/Chapter 1"]["tracks"]
        assert wav.read_bytes() == (result.folder / track).read_bytes()  # each its own chapter's music
    assert wavs[0].read_bytes() != wavs[1].read_bytes()


def test_an_archive_with_no_page_uploaded_beside_good_ones_is_named_not_dropped(tmp_path):
    """`Ch 5.cbz` holding only ComicInfo.xml (a download that failed) beside a good chapter: neither the preview nor
    the results said a word of it ("Made 1 track from 3 pages"), and the README says such an archive is named."""
    empty = tmp_path / "Ch 5.cbz"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("ComicInfo.xml", "<ComicInfo/>")
    good = tmp_path / "Ch 4.cbz"
    with zipfile.ZipFile(good, "w") as zf:
        for page in sorted((SAMPLES / "calm").iterdir()):
            zf.write(page, page.name)
    assert "Will be skipped: Ch 5.cbz: no pages in it" in preview([good, empty], tmp_path / "work").note()
    result = generate([good, empty], tmp_path / "results", duration=1, seed=2)
    assert [e["status"] for e in result.entries] == ["ok"]
    assert any("Ch 5.cbz: no pages in it" in w for w in result.warnings), result.warnings
    alone = preview([empty], tmp_path / "work").note()
    assert "Ch 5.cbz: no pages in it" in alone and "is an image, comic archive" not in alone, alone


def test_a_hidden_page_uploaded_is_said_not_read_and_names_nothing(tmp_path):
    """`.cover.png` uploaded beside `page.png`: left out without a word ("Made 1 track from 1 page"), and the
    downloads were named after it (cover.wav, cover-music.zip), music made from page.png."""
    import shutil

    cache = tmp_path / "gradio"  # as Gradio keeps uploads: its folder means nothing to the user
    cache.mkdir()
    shutil.copy(SAMPLES / "action" / "001.png", cache / ".cover.png")
    shutil.copy(SAMPLES / "calm" / "001.png", cache / "page.png")
    uploads = [cache / ".cover.png", cache / "page.png"]
    assert ".cover.png: a hidden file" in preview(uploads, tmp_path / "work", hidden=[cache]).note()
    result = generate(uploads, tmp_path / "results", duration=1, seed=3, hidden=[cache])
    assert any(w.startswith(".cover.png: a hidden file") for w in result.warnings), result.warnings
    assert [p.name for p in result.downloads] == ["page.wav", "page.txt", "page.mid", "page-music.zip"]


def test_a_hidden_upload_beside_two_pages_of_one_name_is_not_read_either(tmp_path):
    """Two pages named `001.png` (of two folders) number every upload in front of its name: `.cover.png` became
    `001 .cover.png`, no longer hidden, and was read as page 1 ("Made 1 track from 3 pages"), while the page said
    it was skipped."""
    cache = tmp_path / "gradio"
    for folder, name in (("a", ".cover.png"), ("b", "001.png"), ("c", "001.png")):
        (cache / folder).mkdir(parents=True)
    shutil.copy(SAMPLES / "action" / "002.png", cache / "a" / ".cover.png")
    shutil.copy(SAMPLES / "calm" / "001.png", cache / "b" / "001.png")
    shutil.copy(SAMPLES / "action" / "001.png", cache / "c" / "001.png")
    uploads = [cache / "a" / ".cover.png", cache / "b" / "001.png", cache / "c" / "001.png"]
    result = generate(uploads, tmp_path / "results", duration=1, seed=3, hidden=[cache])
    assert any(w.startswith(".cover.png: a hidden file") for w in result.warnings), result.warnings
    record = read_record(result.folder / result.entries[0]["record"])
    assert [p["name"] for p in record["pages"]] == ["002 001.png", "003 001.png"], record["pages"]


def test_a_warning_of_the_run_names_the_pages_settings_not_command_line_flags(tmp_path):
    """Two chapters read alike: "without --seed each section draws a seed of its own" on a page that has no
    --seed, only a box called Seed (errors were said in the page's names; warnings were not)."""
    book = tmp_path / "Twins.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        for chapter in ("Ch 1", "Ch 2"):
            for page in sorted((SAMPLES / "calm").iterdir()):
                zf.write(page, f"{chapter}/{page.name}")
    result = generate([book], tmp_path / "results", duration=1, seed=5)
    same = [w for w in result.warnings if "the same music" in w]
    assert same and "--seed" not in same[0] and "Seed" in same[0], result.warnings


def test_the_results_zip_keeps_a_dotted_name_whole(tmp_path):
    """`Vol.03.cbz` gave `Vol.zip` and `Ch.12.5.cbz` `Ch.12.zip`: chapter 12.5 and 12.6 downloaded under one name."""
    cbz = tmp_path / "Ch.12.5.cbz"
    with zipfile.ZipFile(cbz, "w") as zf:
        zf.write(SAMPLES / "calm" / "001.png", "001.png")
    result = generate([cbz], tmp_path / "results", duration=1, seed=1)
    assert result.audio.name == "Ch.12.5.wav" and result.archive.name == "Ch.12.5-music.zip"


def test_an_unreadable_file_beside_a_book_is_a_skipped_page_not_a_failed_part(tmp_path):
    """book.cbz and a text file named bad.png: the preview said bad.png would be skipped, but the results showed a
    failed part "book" (its one page unreadable) and the track as "book-2"."""
    cbz = tmp_path / "book.cbz"
    with zipfile.ZipFile(cbz, "w") as zf:
        for page in sorted((SAMPLES / "action").iterdir()):
            zf.write(page, page.name)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert "Will be skipped: bad.png" in preview([cbz, bad], tmp_path / "work").note()
    result = generate([cbz, bad], tmp_path / "results", duration=1, seed=7)
    assert [(e["name"], e["status"]) for e in result.entries] == [("book", "ok")]
    assert [p.name for p in result.downloads if p.suffix == ".wav"] == ["book.wav"]
    assert any("bad.png" in w and "not a readable image" in w for w in result.warnings), result.warnings


def test_a_password_protected_archive_is_said_once_not_once_a_page(tmp_path):
    """"No readable page among the uploads (enc.cbz: password-protected; ...; enc.cbz: password-protected; ...;
    enc.cbz: password-protected; ...)": the archive's reason, once for each of its pages."""
    from test_hostile_inputs import _encrypted_zip

    locked = tmp_path / "enc.cbz"
    _encrypted_zip(locked, sorted((SAMPLES / "calm").iterdir()))
    note = preview([locked], tmp_path / "work").note()
    assert note.count("password-protected") == 1, note


def test_an_unreadable_book_beside_readable_pages_is_skipped_not_a_failed_part(tmp_path):
    """p01.png and a text file named notes.pdf: the preview said notes.pdf would be skipped, but the results said
    "Made 1 track (1 of 2 parts) ... notes: nothing made", and the track was pages.wav, not p01.wav."""
    page = tmp_path / "p01.png"
    page.write_bytes((SAMPLES / "calm" / "001.png").read_bytes())
    bad = tmp_path / "notes.pdf"
    bad.write_text("not a PDF")
    assert "Will be skipped: notes.pdf" in preview([page, bad], tmp_path / "work").note()
    result = generate([page, bad], tmp_path / "results", duration=1, seed=7, hidden=[tmp_path])  # (Gradio's
    assert [e["status"] for e in result.entries] == ["ok"], result.entries  # upload folder: not the music's name)
    assert [p.name for p in result.downloads if p.suffix in (".wav", ".zip")] == ["p01.wav", "p01-music.zip"]
    assert any("notes.pdf" in w and "not a readable PDF" in w for w in result.warnings), result.warnings


def test_a_damaged_archive_beside_a_good_one_is_skipped_not_a_failed_part(tmp_path):
    """full.cbz and trunc.cbz (its first half): the preview said "Will be skipped: trunc.cbz: not a readable comic
    archive", but the results said "Made 1 track (1 of 2 parts) ... trunc: nothing made", and the zip's listening
    page listed trunc as FAILED."""
    full = tmp_path / "full.cbz"
    with zipfile.ZipFile(full, "w") as zf:
        for page in sorted((SAMPLES / "calm").iterdir())[:3]:
            zf.write(page, page.name)
    trunc = tmp_path / "trunc.cbz"
    trunc.write_bytes(full.read_bytes()[:full.stat().st_size // 2])
    assert "Will be skipped: trunc.cbz" in preview([full, trunc], tmp_path / "work").note()
    result = generate([full, trunc], tmp_path / "results", duration=1, seed=7)
    assert [(e["name"], e["status"]) for e in result.entries] == [("full", "ok")], result.entries
    status = messages.status_markdown(result)
    assert "parts" not in status and "nothing made" not in status, status
    assert any(w.startswith("Skipped trunc.cbz") for w in result.warnings), result.warnings
    with zipfile.ZipFile(result.archive) as zf:
        listening = zf.read("index.html").decode("utf-8")
    assert "trunc" not in listening  # not listed as a part that failed


def _packed(book: Path) -> Path:
    """Two one-page chapters packed as ``book`` (its suffix says how)."""
    pages = {"ch1/001.png": (SAMPLES / "calm" / "001.png").read_bytes(),
             "ch2/001.png": (SAMPLES / "action" / "001.png").read_bytes()}
    if book.suffix == ".cbr":
        return write_rar5(book, pages)
    import io
    import tarfile

    with tarfile.open(book, "w") as tf:
        for name, data in pages.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return book


# a .tar upload was "not a readable image", though the file box offered .tar
@pytest.mark.parametrize("name", [
    pytest.param("book.cbr", marks=pytest.mark.skipif(other_archives.bsdtar() is None,
                                                      reason="bsdtar (libarchive) is not installed")),
    "book.tar"])
def test_a_cbr_or_tar_upload_is_previewed_and_made_as_a_cbz_is(tmp_path, name):
    book = _packed(tmp_path / name)
    assert book.suffix in UPLOAD_TYPES
    shown = preview([book], tmp_path / "work")
    assert [caption for _, caption in shown.thumbnails] == ["ch1 · 001.png", "ch2 · 001.png"] and shown.note() == ""
    result = generate([book], tmp_path / "results", duration=2, fmt="flac", seed=1)
    assert [(e["name"], e["status"]) for e in result.entries] == [("book/ch1", "ok"), ("book/ch2", "ok")]
    assert sum(p.suffix == ".flac" for p in result.downloads) == 2


def test_an_epub_upload_is_previewed_in_the_books_reading_order_and_made(tmp_path):
    from test_epub import READING_ORDER, make_book

    book = make_book(tmp_path / "Vol 1.epub")
    assert book.suffix in UPLOAD_TYPES
    shown = preview([book], tmp_path / "work")
    assert [caption for _, caption in shown.thumbnails] == [name for name, _ in READING_ORDER] and shown.note() == ""
    result = generate([book], tmp_path / "results", duration=1, seed=1)
    assert [(e["name"], e["status"], e["pages"]) for e in result.entries] == [("Vol 1", "ok", len(READING_ORDER))]


def test_the_upload_hint_names_every_archive_the_file_box_offers():
    """The file box offered .rar, .7z and .tar; the hint shown after a bad upload named neither."""
    from manga2music.sections import SOURCE_EXTENSIONS

    assert all(t in UPLOAD_TYPES and t in messages.UPLOAD_HINT for t in SOURCE_EXTENSIONS), messages.UPLOAD_HINT


def test_the_upload_box_takes_every_kind_of_page_the_command_reads(tmp_path):
    """The box took "image", which Gradio checks against the server's MIME database: a .tga or .j2k page (and a
    .kra, which the command takes as a page that says how to export it) was refused with Gradio's "Invalid file
    type", and what passed depended on the machine's /etc/mime.types."""
    is_valid_file = pytest.importorskip(  # the check Gradio makes of every upload
        "gradio_client.utils", reason="Gradio is not installed (scripts/install_browser.sh installs it)").is_valid_file
    from PIL import Image

    from manga2music.sections import IMAGE_EXTENSIONS, SOURCE_EXTENSIONS, UNREADABLE_IMAGE_TYPES

    kinds = IMAGE_EXTENSIONS | set(UNREADABLE_IMAGE_TYPES) | SOURCE_EXTENSIONS
    refused = sorted(k for k in kinds if not (is_valid_file(f"page{k}", UPLOAD_TYPES)
                                              and is_valid_file(f"PAGE{k.upper()}", UPLOAD_TYPES)))
    assert refused == []
    tga = tmp_path / "001.tga"
    Image.open(SAMPLES / "calm" / "001.png").convert("RGB").save(tga)
    shown = preview([tga], tmp_path / "work")
    assert [caption for _, caption in shown.thumbnails] == ["001.tga"] and shown.note() == ""


def test_a_chapter_score_with_musicgen_bridges(tmp_path):
    """The UI's "Bridges between scenes" box: MusicGen carries each cue on into the next scene; the cue sheet
    in the downloads says so. Any other composer is one message in the UI's words, and nothing is left behind."""
    pytest.importorskip("transformers")
    from chapters import make_chapter
    from tiny_musicgen import build_tiny_musicgen

    make_chapter(tmp_path / "ch", [("calm", 2), ("action", 2)], seed=8)
    pages = sorted((tmp_path / "ch").glob("*.png"))
    with pytest.raises(InputError) as refused:
        generate(pages, tmp_path / "results", score=True, transitions="continue", work_root=tmp_path / "work")
    assert "carries audio on" in refused.value.message and not LEAKS.search(refused.value.message)
    assert not list((tmp_path / "work").iterdir()) and not (tmp_path / "results").exists()

    model = build_tiny_musicgen(tmp_path / "model", attentive=True)
    result = generate(pages, tmp_path / "results", music_model=str(model), score=True, transitions="continue",
                      reading_speed=1.5, longest_cue=8.0, seed=2, work_root=tmp_path / "work")
    sheet = json.loads(next(p for p in result.downloads if p.name.endswith(".cues.json")).read_text("utf-8"))
    assert [s["transition"] for s in sheet["scenes"]] == ["continuation", "end"]
    assert sheet["scenes"][0]["bridge_s"] > 0
    assert all(s["cue_s"] <= 8 < s["duration"] for s in sheet["scenes"])  # the cues loop
    # the description box shows what each scene's cue was composed from
    assert result.description == "\n\n".join(f"Scene {s['index']}: {s['description']}" for s in sheet["scenes"])
    assert "BPM" in result.description


def test_the_scenes_box_takes_a_page_by_the_name_it_was_uploaded_with_when_pages_were_numbered(tmp_path):
    """action/001.png, action/003.png and calm/001.png uploaded: two share a name, so each page is numbered in front
    of its name (001 001.png, 002 003.png, 003 001.png), and Scenes "003.png" was refused: "no page named '003.png'
    in the chapter", a page the user had uploaded."""
    import shutil

    for folder in ("a", "c"):
        (tmp_path / folder).mkdir()
    shutil.copy(SAMPLES / "action" / "001.png", tmp_path / "a" / "001.png")
    shutil.copy(SAMPLES / "action" / "003.png", tmp_path / "a" / "003.png")
    shutil.copy(SAMPLES / "calm" / "001.png", tmp_path / "c" / "001.png")
    pages = [tmp_path / "a" / "001.png", tmp_path / "a" / "003.png", tmp_path / "c" / "001.png"]
    result = generate(pages, tmp_path / "results", score=True, scenes="1\n003.png 0:20\n", seed=3,
                      work_root=tmp_path / "work")
    sheet = json.loads(next(p for p in result.downloads if p.name.endswith(".cues.json")).read_text("utf-8"))
    assert [(s["first_page"], s["given_s"]) for s in sheet["scenes"]] == [(1, None), (2, 20.0)]
    with pytest.raises(InputError) as refused:  # uploaded twice: which one is meant is not known
        generate(pages, tmp_path / "results", score=True, scenes="1\n001.png\n", work_root=tmp_path / "work")
    assert "no page named '001.png'" in refused.value.message and "002 003.png" in refused.value.message


def test_the_scenes_box_takes_a_page_name_written_in_another_case_when_pages_were_numbered(tmp_path):
    """calm/001.png, action/001.png and action/003.png uploaded, Scenes "1\n003.PNG": "no page named '003.PNG' in
    the chapter (its pages: 001 001.png, 002 001.png, 003 003.png)", though 003.PNG was taken when no two pages
    shared a name (names are matched whatever their case everywhere else)."""
    pages = [SAMPLES / "calm" / "001.png", SAMPLES / "action" / "001.png", SAMPLES / "action" / "003.png"]
    result = generate(pages, tmp_path / "results", score=True, scenes="1\n003.PNG", seed=3,
                      work_root=tmp_path / "work")
    sheet = json.loads(next(p for p in result.downloads if p.name.endswith(".cues.json")).read_text("utf-8"))
    assert [s["first_page"] for s in sheet["scenes"]] == [1, 3]


def test_the_scenes_box_takes_what_a_scenes_file_holds_and_its_errors_name_the_box(tmp_path):
    from chapters import make_chapter

    make_chapter(tmp_path / "ch", [("calm", 2), ("action", 2)], seed=8)
    pages = sorted((tmp_path / "ch").glob("*.png"))
    result = generate(pages, tmp_path / "results", score=True, scenes="1\n\n004.png 0:40  # the fight\n", seed=3,
                      work_root=tmp_path / "work")
    sheet = json.loads(next(p for p in result.downloads if p.name.endswith(".cues.json")).read_text("utf-8"))
    assert [(s["first_page"], s["last_page"], s["given_s"]) for s in sheet["scenes"]] == [(1, 3, None), (4, 4, 40.0)]
    bar = 240 / sheet["scenes"][1]["tempo_bpm"]
    assert abs(sheet["scenes"][1]["duration"] - 40) <= bar / 2 + 0.01
    assert not list((tmp_path / "work").iterdir())
    for bad, said in (("1\nseven", "Scenes, line 2: no page named 'seven' in the chapter"),
                      ("3 0:01", "Scenes, line 1: a scene lasts from")):
        with pytest.raises(InputError) as refused:
            generate(pages, tmp_path / "results", score=True, scenes=bad, work_root=tmp_path / "work")
        assert refused.value.message.startswith(said) and not LEAKS.search(refused.value.message)
    book = tmp_path / "book.cbz"  # two chapters in one upload: which one the box means is not known
    with zipfile.ZipFile(book, "w") as zf:
        for k, p in enumerate(pages):
            zf.write(p, f"ch{1 + k // 2}/{p.name}")
    with pytest.raises(InputError) as refused:
        generate([book], tmp_path / "results", score=True, scenes="1", work_root=tmp_path / "work")
    assert refused.value.message == "Scenes gives the scenes of one chapter, and 2 chapters were found (book/ch1, book/ch2)"
    assert refused.value.hint == "upload that chapter alone, or empty the Scenes box"
    with pytest.raises(InputError) as refused:  # the page's own names for its settings, not the command's flags
        generate(pages, tmp_path / "results", score=True, longest_cue=3.0, work_root=tmp_path / "work")
    assert refused.value.message.startswith("Longest cue must be from 8")
    assert not list((tmp_path / "work").iterdir()) and len(list((tmp_path / "results").iterdir())) == 1


def test_two_chapters_scored_at_once_are_shown_as_two_scores(tmp_path):
    """Two chapters uploaded as one book and scored: the page said "Made a chapter score of 2 scenes" and listed
    "1. ..., 1. ...", as if one score had two scene 1s, and the description box the same."""
    from chapters import make_chapter

    make_chapter(tmp_path / "ch", [("calm", 1), ("action", 1)], seed=8)
    book = tmp_path / "book.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        for k, page in enumerate(sorted((tmp_path / "ch").glob("*.png")) * 2):
            zf.write(page, f"ch{1 + k // 2}/{page.name}")
    result = generate([book], tmp_path / "results", score=True, seed=3, work_root=tmp_path / "work")
    status = messages.status_markdown(result)
    assert status.startswith("**Made 2 chapter scores of 1 scene each** from 4 pages"), status
    assert "the scores' cue sheets; the read-along pages are in the zip" in status
    first, second = status.index("**book/ch1**"), status.index("**book/ch2**")
    assert first < status.index("1. Scene 1", first) < second < status.index("1. Scene 1", second)
    assert result.description.startswith("[book/ch1]\nScene 1: ") and "\n\n[book/ch2]\nScene 1: " in \
        result.description


def test_the_progress_bar_fills_once_and_never_falls_back(tmp_path):
    """The bar ran from 0 to 100 % for each chapter's pages and fell back at the next chapter: with 12 chapters
    it said nothing about how far the Generate was.  Then it fell back once, from 72 % to 0 % when composing
    started, which a user took for a restart: describing now fills the first half, composing the second."""
    from manga2music.pipeline import Callbacks
    from manga2music.webui.progress_bar import OneBar

    book = tmp_path / "book.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        for k in range(1, 4):
            for n in (1, 2):
                zf.write(TWO_PAGES[n - 1], f"ch{k}/00{n}.png")
    shown = []
    bar = OneBar(lambda fraction, text: shown.append((fraction, text)), passes=2)
    generate([book], tmp_path / "results", duration=2, seed=1, callbacks=Callbacks(sections=bar.sections,
                                                                                   step=bar.step))
    fractions = [f for f, _ in shown]
    assert all(0 <= f <= 1 for f in fractions) and fractions[-1] == 1
    assert fractions == sorted(fractions), shown  # never back
    composing = next(i for i, (_, text) in enumerate(shown) if text.startswith("composing"))
    assert max(fractions[:composing]) <= 0.5 <= fractions[composing], shown
    assert any("ch2" in text and "reading 002.png" in text for _, text in shown)
    assert len({round(f, 3) for f in fractions[:composing]}) >= 6  # the pages move it, not only the chapters


def test_upload_names():
    assert upload_name([Path("/home/me/Spy Family: vol 1?.cbz")]) == "Spy Family_ vol 1"
    assert upload_name([SAMPLES / "calm" / "002.png", SAMPLES / "calm" / "001.png"]) == "calm"
    gradio_cache = Path("/srv/ui/gradio")  # a folder the user never chose: the first page's stem instead
    assert upload_name([gradio_cache / "ab12" / "p10.png", gradio_cache / "cd34" / "p9.png"], [gradio_cache]) == "p9"
    assert upload_name([Path("/x/..."), Path("/x/.png")], [Path("/x")]) == "pages"  # nothing usable left
    assert upload_name([Path("/x/a.cbz"), Path("/x/b.cbz")]) == "a"


def test_several_books_and_a_file_that_is_no_page_are_named_after_a_book(tmp_path):
    """calm.cbz, action.pdf and a bad.png the run skipped: the zip was bad-music.zip."""
    bad = tmp_path / "bad.png"
    bad.write_text("hello\n", encoding="utf-8")
    assert upload_name([tmp_path / "calm.cbz", tmp_path / "action.pdf", bad]) == "calm"
    assert upload_name([tmp_path / "calm.cbz", tmp_path / "action.pdf", bad, SAMPLES / "calm" / "001.png"]) == "calm"


def test_the_outputs_are_not_named_after_a_book_that_does_not_open_beside_good_pages(tmp_path):
    """Two good pages and a PDF cut short: the music was the pages' (pages.wav), the zip trunc-music.zip."""
    (tmp_path / "trunc.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<<")
    (tmp_path / "empty.zip").write_bytes(b"")
    pages = [SAMPLES / "calm" / "001.png", SAMPLES / "calm" / "002.png"]
    assert upload_name([tmp_path / "trunc.pdf", *pages]) == "calm"
    assert upload_name([tmp_path / "empty.zip", *pages]) == "calm"
    assert upload_name([tmp_path / "trunc.pdf"]) == "trunc"  # nothing else to name it after


def test_the_outputs_are_not_named_after_an_upload_that_is_skipped(tmp_path):
    """a_broken.png (not an image: "Will be skipped") uploaded with b_page.png made "a_broken.wav" and
    "a_broken-music.zip" of b_page's music."""
    cache = tmp_path / "gradio"
    (cache / "1").mkdir(parents=True)
    (cache / "2").mkdir()
    (cache / "1" / "a_broken.png").write_text("garbage")
    shutil.copy(SAMPLES / "calm" / "001.png", cache / "2" / "b_page.png")
    assert upload_name([cache / "1" / "a_broken.png", cache / "2" / "b_page.png"], [cache]) == "b_page"


def test_pages_of_one_name_from_two_folders_keep_the_order_they_were_uploaded_in(tmp_path):
    """calm/001.png, calm/002.png then action/001.png: the second 001.png was staged as 001-2.png, which sorts first,
    so the action page became page 1 without a word."""
    from manga2music.sections import find_sections
    from manga2music.webui.run import upload_order_note

    uploads = [SAMPLES / "calm" / "001.png", SAMPLES / "calm" / "002.png", SAMPLES / "action" / "001.png"]
    (section,) = find_sections([stage_uploads(uploads, tmp_path / "staged")])
    assert [p.path.read_bytes() for p in section.pages] == [u.read_bytes() for u in uploads]
    assert "001.png" in upload_order_note(uploads) and "order" in upload_order_note(uploads)
    assert upload_order_note(uploads[:2]) is None
    shown = preview(uploads, work_root=tmp_path / "preview")
    assert [caption.split()[0] for _, caption in shown.thumbnails] == ["001", "002", "003"]
    assert "the order you uploaded them" in shown.note()
    (section,) = find_sections([stage_uploads(uploads[1::-1], tmp_path / "unique")])  # names alone: name order
    assert [p.name for p in section.pages] == ["001.png", "002.png"]


def test_errors_about_settings_the_page_has_name_them_as_the_page_does():
    """Single-stage with the builtin describer, or bridges with the builtin composer: the error said "that setting is
    not in the web UI", though the page has both settings."""
    from manga2music.webui.messages import CLI_ONLY, for_user

    for message, hint, shown in (
            ("--single-stage does not apply to builtin (the vision model)", "drop --single-stage, or pick a model "
             "with --vision-model", "Mode single-stage"),
            ("--transitions continue needs a composer that carries audio on", "pick one with --music-model, or drop "
             "--transitions", "Bridges between scenes")):
        said = for_user(InputError(message, hint), [], ["001.png"])
        assert shown in f"{said.message} {said.hint}" and "--" not in f"{said.message} {said.hint}"
        assert CLI_ONLY not in said.hint


def test_a_wrong_server_address_says_how_to_give_the_web_ui_another():
    """A vision model's server at the wrong address (a web page answered): "Check --base-url ... That setting is not
    in the web UI: use manga2music run", where the page takes the address from OPENAI_BASE_URL when it starts."""
    from manga2music.describers.openai_chat import base_url_hint
    from manga2music.errors import ServerUnusableError
    from manga2music.options import settings_named_as_flags
    from manga2music.webui.messages import CLI_ONLY, for_user

    with settings_named_as_flags():  # as the page runs its work
        hint = base_url_hint()
    said = for_user(ServerUnusableError("http://127.0.0.1:8765/v1 sent back something that is not an "
                                        "OpenAI-compatible answer: '<html>...'", hint), [], ["001.png"])
    assert CLI_ONLY not in said.hint and "--base-url" not in said.hint, said.hint
    assert "OPENAI_BASE_URL=" in said.hint and "manga2music ui" in said.hint and "/v1" in said.hint, said.hint


def test_an_error_keeps_a_model_name_as_it_is_written():
    """"Gpt-4o-mini sends the pages..." : the first letter was raised, and model names are written in lower case."""
    from manga2music.webui.messages import error_markdown

    text = error_markdown(NeedsKeyError("gpt-4o-mini sends the pages to OpenAI and needs an API key", "set it"))
    assert text.startswith("**Error:** gpt-4o-mini sends the pages")
    assert error_markdown(InputError("no pages uploaded yet")).startswith("**Error:** No pages uploaded yet")
    server = error_markdown(InputError("http://127.0.0.1:8080/v1 rejected the API key from $OPENAI_API_KEY (401)"))
    assert server.startswith("**Error:** http://127.0.0.1:8080/v1 rejected"), server  # it read "Http://..."


def test_no_pages_says_what_to_upload(tmp_path):
    with pytest.raises(InputError, match="no pages uploaded yet") as err:
        generate([], tmp_path)
    assert "PNG, JPEG" in err.value.hint
    notes = tmp_path / "notes.txt"
    notes.write_text("not a page", encoding="utf-8")
    with pytest.raises(InputError, match=r"none of the uploads \(notes.txt\) is an image") as err:
        generate([notes], tmp_path / "results")
    assert not LEAKS.search(err.value.message + err.value.hint)
    assert not (tmp_path / "results").exists()


def test_unreadable_uploads_are_one_error_in_plain_words(tmp_path, not_images):
    with pytest.raises(InputError) as err:
        generate(not_images, tmp_path / "results", work_root=tmp_path / "work")
    message = err.value.message
    assert message.startswith("none of the uploaded files is a readable image")
    assert "(fake.png: not a readable image (unknown or damaged image data); noise.png: not a readable image" in message
    assert not LEAKS.search(message), message
    assert not (tmp_path / "results").exists() and not list((tmp_path / "work").iterdir())


def test_a_skipped_page_is_a_warning_without_temporary_paths(tmp_path, not_images):
    result = generate([TWO_PAGES[0], not_images[0]], tmp_path / "results", duration=1, seed=2)
    skipped = result.entries[0]["skipped_pages"]
    assert [s["error"] for s in skipped] == ["fake.png: not a readable image (unknown or damaged image data)"]
    from manga2music.webui.messages import status_markdown

    status = status_markdown(result)
    assert "skipped fake.png: not a readable image" in status and not LEAKS.search(status), status


def test_the_downloaded_manifest_and_listening_page_name_no_temporary_folder(tmp_path, not_images):
    """The status said "skipped fake.png", but the manifest.json and index.html the user downloads (in the zip)
    named the server's temporary copy: /tmp/manga2music-ui-.../work/manga2music-upload-.../001/fake.png."""
    import zipfile

    for score in (False, True):
        result = generate([TWO_PAGES[0], not_images[0]], tmp_path / "results", duration=1, seed=2,
                          work_root=tmp_path / "work", score=score)
        (archive,) = [p for p in result.downloads if p.suffix == ".zip"]
        with zipfile.ZipFile(archive) as zf:
            shown = {name: zf.read(name).decode("utf-8") for name in zf.namelist()
                     if name.endswith(("manifest.json", "index.html", ".read.html", ".json"))}
        assert len(shown) >= 3, shown.keys()
        for name, text in shown.items():
            assert not LEAKS.search(text) and str(tmp_path / "work") not in text, (name, LEAKS.search(text))
        assert all("fake.png" in shown[name] for name in shown if name.endswith(("manifest.json", "index.html")))


def test_scrub_hides_temporary_folders_and_python_internals():
    upload = "/tmp/manga2music-upload-k2x9/pages"
    text = (f"pages: skipping page fake.png: {upload}/fake.png: not a readable image (UnidentifiedImageError: "
            "cannot identify image file <_io.BytesIO object at 0x7f3508620090>)")
    assert scrub(text, ["/tmp/manga2music-upload-k2x9"]) == \
        "pages: skipping page fake.png: fake.png: not a readable image"
    assert scrub(f"{upload}/book.cbz!ch1/001.png: cannot read (File is not a zip file)", [upload]) == \
        "book.cbz!ch1/001.png: cannot read (File is not a zip file)"
    assert scrub(f"no pages found in {upload} (looked for x)", [upload]) == "no pages found in uploads (looked for x)"
    assert scrub("the Hub is unreachable ([Errno -2] Name or service not known)") == \
        "the Hub is unreachable (Name or service not known)"
    for folder in ("page #1", "ch(1)"):  # the loose pages' folder, named after the first page: not shown as a folder
        assert scrub(f"{upload}/{folder}/bad.png: not a readable image", [upload]) == "bad.png: not a readable image"


def _probe(tmp_path, **changes) -> HardwareReport:
    """This machine as the tier rules see it: enough RAM and torch, nothing cached, the Hub unreachable."""
    fields = dict(packages={"torch": "2.13.0", "transformers": "5.24.0"}, ram_total_gb=24.0, ram_available_gb=20.0,
                  cache_dir=str(tmp_path / "models"), disk_free_gb=100.0,
                  hub=HubStatus("https://huggingface.co", True, False, "[Errno -2] Name or service not known"))
    fields.update(changes)
    return HardwareReport(**fields)


def test_model_hints_say_the_fix_in_plain_words(tmp_path):
    probe = _probe(tmp_path)
    problem = model_problem("llava-0.5b", "vision", probe)
    assert isinstance(problem, ModelUnavailableError)
    assert problem.message == "llava-0.5b is not downloaded yet and there is no internet connection"
    assert "`manga2music models pull llava-0.5b`" in problem.hint and str(tmp_path / "models") in problem.hint
    name, text = suggestion("music", probe)
    assert name == "builtin" and "musicgen-small is not downloaded yet and there is no internet connection" in text
    assert "`manga2music models pull musicgen-small`" in text
    assert "Errno" not in text and "unreachable" not in text
    offline = model_problem("musicgen-small", "music", _probe(tmp_path, offline=True))
    assert "offline mode is on" in offline.message and "models pull musicgen-small" in offline.hint
    assert model_problem("builtin", "music", probe) is None


def test_a_local_model_folder_without_weights_is_said_under_its_menu(tmp_path):
    """A folder typed in a model menu that holds a config but no weights showed no ⚠ under the menu (a missing or
    empty folder did); Generate then failed with "... is a model folder with no weights in it"."""
    import json as json_module

    folder = tmp_path / "my musicgen"
    folder.mkdir()
    (folder / "config.json").write_text(json_module.dumps({"model_type": "musicgen"}))
    problem = model_problem(str(folder), "music", _probe(tmp_path))
    assert isinstance(problem, ModelUnavailableError), problem
    assert problem.message.endswith("is a model folder with no weights in it (no .safetensors or .bin file)")


def test_gpt_without_a_key_says_to_restart_the_server(tmp_path):
    problem = model_problem("gpt-4o-mini", "vision", _probe(tmp_path))
    assert isinstance(problem, NeedsKeyError)
    assert "OPENAI_API_KEY" in problem.message
    assert "start it again" in problem.hint and "OPENAI_API_KEY=sk-... manga2music ui" in problem.hint
    assert "--api-key-env" not in problem.message + problem.hint
    assert model_problem("gpt-4o-mini", "vision", _probe(tmp_path, openai_key_set=True)) is None
    name, text = suggestion("vision", _probe(tmp_path, openai_key_set=True))
    assert name == "builtin" and "--vision-model" not in text and "gpt-4o-mini" in text


def test_a_server_started_offline_says_so_in_its_own_terms(tmp_path, monkeypatch):
    """`MANGA2MUSIC_OFFLINE=1 OPENAI_API_KEY=... manga2music ui`: the menu offered gpt-4o-mini without a warning,
    and Generate failed with "--offline forbids the network. drop --offline" (the page has no --offline; the user
    gave none); a model not downloaded was said to be offline "(HF_HUB_OFFLINE)", which was not set."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("MANGA2MUSIC_OFFLINE", "1")
    probe = _probe(tmp_path, openai_key_set=True, offline=True)
    problem = model_problem("gpt-4o-mini", "vision", probe)
    assert problem is not None and "started offline (MANGA2MUSIC_OFFLINE=1)" in problem.message, problem
    assert "--offline" not in problem.message + problem.hint and "builtin" in problem.hint
    name, text = suggestion("vision", probe)
    assert "gpt-4o-mini and gpt-4o work too" not in text
    weights = model_problem("musicgen-small", "music", probe)
    assert "offline mode is on (MANGA2MUSIC_OFFLINE)" in weights.message, weights.message
    with pytest.raises(ModelUnavailableError, match="started offline"):
        generate(TWO_PAGES[:1], tmp_path / "results", vision_model="gpt-4o-mini", work_root=tmp_path / "work")


def test_a_model_menu_cleared_to_spaces_is_builtin_and_flags_in_a_failure_are_said_in_the_pages_terms(tmp_path):
    """"   " in the Music model menu failed with "Error: is a folder, but there is no model in it" (the name left
    out: the server's own folder was looked at); a failed part's reason named flags the page does not have."""
    from manga2music.errors import BackendError
    from manga2music.webui.messages import for_user

    result = generate(TWO_PAGES[:1], tmp_path / "results", vision_model=" ", music_model="   ", duration=1, seed=1)
    assert result.audio is not None and result.entries[0]["status"] == "ok"
    said = for_user(BackendError("no track was made: llava did not answer valid JSON for 001.png, even after one "
                                 "retry. Try --single-stage, a smaller --chunk-size, or a larger model"), [], [])
    assert "Mode single-stage" in said.message and "--single-stage" not in said.message
    assert "not in the web UI" in said.hint and "manga2music run" in said.hint


def test_preview_reads_pages_as_the_run_will(tmp_path, not_images):
    cbz = tmp_path / "book.cbz"
    with zipfile.ZipFile(cbz, "w") as zf:
        zf.write(SAMPLES / "calm" / "002.png", "ch2/001.png")
        zf.write(SAMPLES / "calm" / "001.png", "ch1/001.png")
    shown = preview([cbz], tmp_path / "work")
    assert [caption for _, caption in shown.thumbnails] == ["ch1 · 001.png", "ch2 · 001.png"]
    assert all(max(image.size) <= 320 for image, _ in shown.thumbnails) and shown.note() == ""
    bad = preview(not_images, tmp_path / "work")
    assert not bad.thumbnails and bad.note().startswith("No readable page among the uploads (fake.png")
    assert not LEAKS.search(bad.note())
    assert not list((tmp_path / "work").iterdir())


def test_an_upload_that_cannot_be_opened_is_named_at_upload(tmp_path):
    """A damaged PDF or archive among the uploads was passed over without a word when the thumbnails were shown:
    the user learned of it only after Generate."""
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 garbage")
    alone = preview([broken], tmp_path / "work")
    assert not alone.thumbnails and alone.note().startswith("No readable page among the uploads (broken.pdf: ")
    beside = preview([broken, SAMPLES / "calm" / "001.png"], tmp_path / "work")
    assert len(beside.thumbnails) == 1 and beside.note().startswith("Will be skipped: broken.pdf: ")
    assert ".)" not in beside.note()  # pdfium's own full stop inside the brackets
    assert not LEAKS.search(alone.note() + beside.note())


def test_stop_reaches_a_long_track_between_its_notes_not_only_at_its_next_progress_report(tmp_path):
    """A Generate of one long builtin track (10 minutes) reports no progress while it renders, and Stop (or the
    server stopping) waited for the whole track: 5-25 s.  The tab's stop event now ends the work at its next note."""
    import threading

    import manga2music
    from manga2music.pipeline import RunConfig
    from manga2music.threads import Stopped, stopping_on
    from manga2music.webui.server import ServerFolder

    folder = ServerFolder(tmp_path)
    outcome: list = []

    def generate():
        try:
            with stopping_on(folder.stop_event("tab")):
                outcome.append(manga2music.compose([], tmp_path / "out", text="calm piano", model="builtin",
                                                   config=RunConfig(duration=600, seed=1)))
        except BaseException as exc:  # noqa: BLE001 - what the Generate would see
            outcome.append(exc)

    try:
        folder.generate_asked("tab")
        worker = threading.Thread(target=generate)
        worker.start()
        while not list(tmp_path.glob("out/*.lock.json")) and not list(tmp_path.glob("out/.manga2music*")):
            assert worker.is_alive(), outcome
            time.sleep(0.05)
        time.sleep(1.0)  # the track is rendering now
        folder.stop_asked("tab")
        worker.join(60)
        assert not worker.is_alive() and isinstance(outcome[0], Stopped), outcome
        assert not list((tmp_path / "out").glob("*.wav"))
        assert folder.stop_reason("tab") == ""  # the Stop button's
    finally:
        folder.generate_ended("tab")
        folder.remove(wait_s=0.0)


def test_a_killed_servers_folder_is_removed_when_another_server_starts(tmp_path):
    """`manga2music ui` killed (SIGKILL, the out-of-memory killer while MusicGen ran) left its temporary folder, with
    the user's uploaded pages and music, for good.  The next server removes the folders of servers that are gone,
    and only those."""
    import os

    from manga2music.webui.server import ServerFolder

    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # a process that ran and is gone: its pid is free
    dead = tmp_path / f"manga2music-ui-{killed.pid}-abc123"
    (dead / "work").mkdir(parents=True)
    (dead / "work" / "page.png").write_bytes(b"the user's page")
    alive = tmp_path / f"manga2music-ui-{os.getppid()}-def456"  # a server still running (this test's parent)
    alive.mkdir()
    older = tmp_path / "manga2music-ui-xyz"  # named by an earlier version: not known to be dead, kept
    older.mkdir()
    folder = ServerFolder(tmp_path)
    try:
        assert not dead.exists() and alive.is_dir() and older.is_dir()
        assert folder.root.name.startswith(f"manga2music-ui-{os.getpid()}-")
    finally:
        folder.remove(wait_s=0.0)


def test_stop_reaches_a_second_generate_of_the_tab_after_the_first_ends(tmp_path):
    """Generate pressed twice: the second waits behind the first.  When the first ended, the tab was taken for idle,
    and a Stop pressed then no longer reached the second."""
    from manga2music.webui.server import JobStopped, ServerFolder

    folder = ServerFolder(tmp_path)
    try:
        folder.generate_asked("tab")
        folder.generate_asked("tab")
        folder.generate_ended("tab")  # the first ends; the second runs now
        folder.stop_asked("tab")
        with pytest.raises(JobStopped):
            folder.check("tab")
        folder.check("other tab")  # another tab's Generate runs on
        folder.generate_ended("tab")
        folder.check("tab")  # nothing left to stop: the next Generate is not stopped by it
        folder.stop_asked("tab")  # a Stop with no Generate asked for is for none
        folder.generate_asked("tab")
        folder.check("tab")
    finally:
        folder.remove(wait_s=0)


def test_seed_box():
    assert parse_seed("") is None and parse_seed("  ") is None and parse_seed(None) is None
    assert parse_seed(" 42 ") == 42
    with pytest.raises(InputError, match="whole number"):
        parse_seed("4.5")


def test_server_log_is_one_line_for_a_user_error(capsys, monkeypatch):
    error = InputError("none of the uploaded files is a readable image (fake.png)", "upload images")
    log_for_server(error, expected=True)
    assert capsys.readouterr().err == "manga2music UI: shown to the user: none of the uploaded files is a " \
        "readable image (fake.png)\n"
    monkeypatch.setenv("MANGA2MUSIC_DEBUG", "1")
    try:
        raise error
    except InputError as exc:
        log_for_server(exc, expected=True)
    assert "Traceback" in capsys.readouterr().err


def test_cli_start_does_not_import_gradio():
    code = "import sys, manga2music.cli.app, manga2music.webui; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


def test_ui_without_gradio_says_how_to_install(monkeypatch):
    from typer.testing import CliRunner

    from manga2music.cli.app import app

    monkeypatch.setitem(sys.modules, "gradio", None)  # what an install without the [ui] extra looks like
    result = CliRunner().invoke(app, ["ui", "--port", "7999"])
    assert result.exit_code == 2  # could not start as given, as `--ray` without Ray (it was a bare line and 1)
    shown = result.output + (getattr(result, "stderr", "") or "")
    assert 'pip install "manga2music[ui]"' in shown and "Error: the web UI needs Gradio" in shown


# ------------------------------------------------------------------ in Chromium: one server for the module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER_FOLDERS = {}  # the running_app URL: the folder its server writes in


@pytest.fixture(scope="module")
def running_app(tmp_path_factory):
    """One UI server for this module's browser tests; no model cached and the Hub refusing connections."""
    pytest.importorskip("gradio", reason='Gradio is not installed (pip install "manga2music[ui]")')
    from manga2music.webui.app import build_app, start
    from manga2music.webui.server import ServerFolder

    home = tmp_path_factory.mktemp("ui-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MANGA2MUSIC_CACHE", str(home / "models"))
        mp.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: "no internet connection"
        for name in ("HF_HUB_OFFLINE", "OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_HOME", "HF_HUB_CACHE"):
            mp.delenv(name, raising=False)
        folder = ServerFolder(home)
        app = build_app(folder)
    port = free_port()
    start(app, port=port)
    SERVER_FOLDERS[f"http://127.0.0.1:{port}/"] = folder
    yield f"http://127.0.0.1:{port}/"
    app.close()
    folder.remove()
    assert not folder.root.exists()


def upload(page, paths, thumbnails: int | None = None) -> None:
    page.locator("#uploads input[type=file]").set_input_files([str(p) for p in paths])
    last = "".join(Path(paths[-1]).name.split())
    page.wait_for_function(f"document.querySelector('#uploads').innerText.replace(/\\s/g, '').includes('{last}')")
    if thumbnails is not None:
        page.wait_for_function(f"document.querySelectorAll('#thumbnails img').length === {thumbnails}")


#: counts the progress bars on the page after every change, and keeps the most seen at once
COUNT_PROGRESS_BARS = """() => {
    window.mostBars = 0;
    new MutationObserver(() => {
        const bars = [...document.querySelectorAll('.progress-level, .eta-bar')].filter(e => e.offsetParent !== null);
        window.mostBars = Math.max(window.mostBars, bars.length);
    }).observe(document.body, {subtree: true, childList: true, attributes: true});
}"""

DECODED_DURATION = """async (url) => {
    const data = await (await fetch(url)).arrayBuffer();
    const audio = await new OfflineAudioContext(1, 1, 44100).decodeAudioData(data);
    return audio.duration;
}"""


@pytest.mark.browser
@pytest.mark.skipif(other_archives.bsdtar() is None, reason="bsdtar (libarchive) is not installed")
def test_a_cbr_and_a_cb7_upload_in_chromium_show_their_pages(running_app, page, tmp_path):
    """Gradio checks each upload's type: a .cbr and a .cb7 get through, and their pages show as thumbnails."""
    cbr = write_rar5(tmp_path / "book.cbr", {"ch1/001.png": (SAMPLES / "calm" / "001.png").read_bytes(),
                                             "ch1/002.png": (SAMPLES / "calm" / "002.png").read_bytes()})
    page.goto(running_app)
    page.wait_for_selector("#generate")
    upload(page, [cbr], thumbnails=2)
    assert "001.png" in page.locator("#thumbnails").inner_text()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "001.png").write_bytes((SAMPLES / "action" / "001.png").read_bytes())
    subprocess.run([other_archives.bsdtar(), "-c", "-f", str(tmp_path / "ep.cb7"), "--format", "7zip", "001.png"],
                   cwd=scratch, check=True)
    page.reload()
    page.wait_for_selector("#generate")
    upload(page, [tmp_path / "ep.cb7"], thumbnails=1)
    assert not LEAKS.search(page.locator("body").inner_text())


@pytest.mark.slow
@pytest.mark.browser
def test_webui_end_to_end_in_chromium(running_app, page, tmp_path, not_images):
    page.goto(running_app)
    page.wait_for_selector("#generate")
    vision_info = page.locator("#vision-model").inner_text()
    assert "Suggested for this machine" in vision_info and not LEAKS.search(vision_info), vision_info
    upload(page, [*TWO_PAGES, not_images[0]], thumbnails=2)
    captions = page.locator("#thumbnails").inner_text()
    assert "001.png" in captions and "002.png" in captions
    assert "Will be skipped: fake.png: not a readable image" in page.locator("#upload-note").inner_text()
    duration = page.locator("#duration input[type=number]")
    duration.fill("300")  # a 5-minute track for a chapter's reading was cut to 120 s without a word
    duration.press("Tab")
    page.wait_for_timeout(500)
    assert duration.input_value() == "300" and "up to 10 minutes" in page.locator("#duration").inner_text()
    duration.fill("3")
    duration.press("Enter")
    page.locator("#seed textarea, #seed input").first.fill("11")
    page.evaluate(COUNT_PROGRESS_BARS)
    page.click("#generate")
    page.wait_for_function("document.querySelector('#description textarea').value.trim().length > 0", timeout=90_000)
    link = page.locator("#track a[download]")
    link.wait_for(timeout=30_000)
    href = link.get_attribute("href")
    assert href.startswith(running_app) and href.endswith("/001.wav")  # named after the first page
    assert abs(page.evaluate(DECODED_DURATION, href) - 3.0) <= 0.05  # the browser decodes 3 s of audio
    assert "BPM" in page.locator("#description textarea").input_value()  # the builtin describer names a tempo
    downloads = "".join(page.locator("#downloads").inner_text().split())  # Gradio splits stem and suffix
    assert all(name in downloads for name in ("001.wav", "001.txt", "001.mid", "001-music.zip")), downloads
    assert page.locator("#downloads [aria-label='Remove this file']:visible").count() == 0
    assert page.locator("#uploads [aria-label='Remove this file']:visible").count() == 3  # uploads stay removable
    assert page.evaluate("window.mostBars") == 1  # one progress display, not one per output
    status = page.locator("#status").inner_text()
    assert "Made 1 track" in status and "seed 11" in status and "001-music.zip" in status
    assert "skipped fake.png: not a readable image" in status
    assert not LEAKS.search(page.locator("body").inner_text())
    # nothing left the machine: every request went to the local server
    assert all(u.startswith((running_app, "data:", "blob:")) for u in page.requested), \
        sorted({u for u in page.requested if not u.startswith(running_app)})
    save_screenshot(page, tmp_path / "webui.png", Path("/tmp/webui.png"))
    page.locator("#seed textarea, #seed input").first.fill("abc")  # a seed mistyped after a track: said, and the
    assert "seed" in _generate_and_read_status(page).lower()  # last results stay (they are of these pages; they
    assert "001.wav" in page.locator("#track").inner_text() and page.locator("#track audio").count() > 0  # were
    assert "001-music.zip" in "".join(page.locator("#downloads").inner_text().split())  # wiped, out of reach)
    # other pages: the results of the last ones are no longer offered as theirs (the track, its words, downloads)
    page.locator("#uploads input[type=file]").set_input_files([str(TWO_PAGES[1])])
    page.wait_for_function("document.querySelector('#status').innerText.includes('press Generate')", timeout=30_000)
    assert page.locator("#description textarea").input_value() == ""
    assert "001.wav" not in page.locator("#downloads").inner_text() and page.locator("#track audio").count() == 0
    assert "001.wav" not in page.locator("#track").inner_text()  # its label named the last run's track


def _generate_and_read_status(page) -> str:
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Error')", timeout=60_000)
    return page.locator("#status").inner_text()


@pytest.mark.slow
@pytest.mark.browser
def test_unreadable_uploads_show_one_error_with_the_fix(running_app, page, tmp_path, not_images):
    page.goto(running_app)
    page.wait_for_selector("#generate")
    upload(page, not_images)
    page.wait_for_function("document.querySelector('#upload-note').innerText.includes('No readable page')")
    status = _generate_and_read_status(page)
    assert "None of the uploaded files is a readable image (fake.png: not a readable image (unknown or damaged image data); noise.png" in status
    assert "Upload page images (PNG, JPEG" in status
    body = page.locator("body").inner_text()
    assert "section(s) done" not in body and ".zip holds" not in body
    assert page.locator("#downloads a").count() == 0 and page.locator("#track audio").count() == 0
    assert page.locator(".toast-body").count() == 0  # the message is on the page, once, not in a pop-up too
    assert not LEAKS.search(body)
    save_screenshot(page, tmp_path / "webui-error.png", Path("/tmp/webui-error.png"))


@pytest.mark.browser
def test_names_from_an_uploaded_archive_are_shown_as_text_not_made_into_html(running_app, page, tmp_path):
    """A folder inside an uploaded zip named `<img src=https:tracker.invalid>` made the page fetch that host
    (Gradio's sanitizer keeps such an image: opening a shared comic told a third party), and `Chapter <i>2` set the
    rest of the status in italics: names went into the status and the upload note as Markdown. They are text."""
    book = tmp_path / "book.zip"
    page_png = (SAMPLES / "calm" / "001.png").read_bytes()
    with zipfile.ZipFile(book, "w") as zf:
        zf.writestr("<img src=https:tracker.invalid>/001.png", page_png)
        zf.writestr("Chapter <i>2 [x](https:tracker.invalid) *b*/001.png", page_png)
        zf.writestr("Chapter <i>2 [x](https:tracker.invalid) *b*/<b>bad</b>.png", b"not an image")
    page.goto(running_app)
    page.wait_for_selector("#generate")
    upload(page, [book], thumbnails=2)
    page.wait_for_function("document.querySelector('#upload-note').innerText.includes('Will be skipped')")
    assert "<b>bad</b>.png: not a readable image" in page.locator("#upload-note").inner_text()
    page.locator("#duration input[type=number]").fill("2")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Made 2 tracks')", timeout=90_000)
    status = page.locator("#status").inner_text()
    assert "book/<img src=https:tracker.invalid>: 1 page" in status, status
    assert "book/Chapter <i>2 [x](https:tracker.invalid) *b*: 1 page" in status, status
    assert "<b>bad</b>.png: not a readable image" in status, status
    for where in ("#status", "#upload-note"):  # no element made of a name
        assert page.locator(f"{where} img, {where} i, {where} b, {where} em, {where} a").count() == 0, where
    assert all(u.startswith((running_app, "data:", "blob:")) for u in page.requested), \
        sorted({u for u in page.requested if not u.startswith(running_app)})


@pytest.mark.slow
@pytest.mark.browser
def test_gpt_without_a_key_says_to_restart_the_server_in_chromium(running_app, page):
    page.goto(running_app)
    page.wait_for_selector("#generate")
    upload(page, TWO_PAGES[:1], thumbnails=1)
    # builtin (preselected here) reads the pages itself: no stage to choose (single-stage was offered, and refused
    # after Generate)
    assert not page.locator("#mode").is_visible()
    choice = page.locator("#vision-model input")
    choice.fill("gpt-4o-mini")
    choice.press("Enter")
    page.wait_for_function("document.querySelector('#vision-model').innerText.includes('start it again')")
    page.locator("#mode").wait_for(state="visible")
    page.locator("#kind").get_by_text("chapter score", exact=True).click()  # a score reads its chapter one way: no stage to
    page.locator("#mode").wait_for(state="hidden")  # choose (the choice was shown, and ignored)
    page.locator("#kind").get_by_text("one track", exact=True).click()
    page.locator("#mode").wait_for(state="visible")
    status = _generate_and_read_status(page)
    assert "needs an API key" in status and "OPENAI_API_KEY=sk-... manga2music ui" in status
    assert "--api-key-env" not in page.locator("body").inner_text()


# ------------------------------------------------------------------ a real `manga2music ui`, stopped by a signal


def _start_ui(tmp_path: Path) -> tuple[subprocess.Popen, str, Path]:
    """`manga2music ui` in its own temporary folder (TMPDIR) and working folder, both empty at the start."""
    temp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    temp.mkdir()
    cwd.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(temp), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("GRADIO_TEMP_DIR", None)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "manga2music", "ui", "--port", str(port)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = proc.stdout.readline()
    assert f"127.0.0.1:{port}" in first, first + proc.stdout.read()
    return proc, f"http://127.0.0.1:{port}/", temp


def test_a_port_in_use_is_said_in_words(tmp_path):
    """`manga2music ui` on a port another program listens on said "cannot listen on 127.0.0.1:7860 (Cannot find
    empty port in range: 7860-7860)", Gradio's words, and left the temporary folder it had made."""
    pytest.importorskip("gradio")
    held = []  # a port in use, and the one after it too: the hint named that one
    while len(held) < 2:
        for s in held:
            s.close()
        held = [socket.socket()]
        held[0].bind(("127.0.0.1", 0))
        port = held[0].getsockname()[1]
        held.append(socket.socket())
        try:
            held[1].bind(("127.0.0.1", port + 1))
        except OSError:
            held.pop().close()
    with held[0] as taken, held[1] as next_one:
        taken.listen()
        next_one.listen()
        env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path), HF_HUB_OFFLINE="1")
        done = subprocess.run([sys.executable, "-m", "manga2music", "ui", "--port", str(port)], env=env,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"Error: port {port} on 127.0.0.1 is in use (another program, or another manga2music ui, listens " \
           "there)" in done.stderr, done.stderr
    said = " ".join(done.stderr.split())
    assert "choose another --port (--port " in said and f"--port {port + 1} " not in said, said
    assert not list(tmp_path.iterdir())


def test_a_host_that_is_not_here_asks_for_another_host_even_when_its_name_holds_port(tmp_path):
    """The hint was chosen by looking for "port" in the message: `ui --host support.invalid` was told to
    "choose another --port", which cannot help."""
    pytest.importorskip("gradio")
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "manga2music", "ui", "--host", "support.invalid", "--port",
                           str(free_port())], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr  # bad input, as an IPv6 host is
    assert "Error: support.invalid is not an address of this machine" in done.stderr, done.stderr
    assert "choose another --host" in done.stderr and "--port" not in done.stderr.split("Error:")[1], done.stderr
    assert "other machines on the network can use this UI" not in done.stderr  # said of an address not here
    assert not list(tmp_path.iterdir())


def _stop(proc: subprocess.Popen, sig: signal.Signals, temp: Path) -> str:
    created = list(temp.iterdir())
    assert created and list(created[0].rglob("*.png")), created  # the server did write uploads here
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the server did not exit after {sig.name}")
    assert proc.returncode == 0, out
    assert not list(temp.iterdir()), list(temp.rglob("*"))[:10]  # nothing left in its temporary folder
    assert not list((temp.parent / "cwd").iterdir())  # nor in its working folder
    return out


@pytest.mark.slow
@pytest.mark.browser
def test_sigterm_removes_uploads_and_results(tmp_path, page):
    pytest.importorskip("gradio", reason='Gradio is not installed (pip install "manga2music[ui]")')
    proc, url, temp = _start_ui(tmp_path)
    try:
        page.goto(url)
        page.wait_for_selector("#generate")
        upload(page, TWO_PAGES, thumbnails=2)
        page.locator("#duration input[type=number]").fill("2")
        page.click("#generate")
        page.locator("#track a[download]").wait_for(timeout=60_000)
        assert list(temp.rglob("results/*/001/001.wav"))  # a result on disk, about to be removed
        out = _stop(proc, signal.SIGTERM, temp)
    finally:
        proc.kill()
    assert "Stopping (SIGTERM)" in out and "Traceback" not in out


@pytest.mark.slow
@pytest.mark.browser
def test_ctrl_c_removes_everything_and_user_errors_stay_one_line(tmp_path, page, not_images):
    pytest.importorskip("gradio", reason='Gradio is not installed (pip install "manga2music[ui]")')
    proc, url, temp = _start_ui(tmp_path)
    try:
        page.goto(url)
        page.wait_for_selector("#generate")
        upload(page, not_images)
        assert "readable image" in _generate_and_read_status(page)
        out = _stop(proc, signal.SIGINT, temp)
    finally:
        proc.kill()
    assert "Stopping (SIGINT)" in out
    assert "manga2music UI: shown to the user: none of the uploaded files is a readable image" in out
    assert "Traceback" not in out, out


@pytest.mark.slow
@pytest.mark.browser
def test_a_chapter_score_from_the_ui_shows_scenes_and_offers_the_read_along_page(running_app, page, tmp_path):
    from chapters import make_chapter

    make_chapter(tmp_path / "ch", [("calm", 2), ("action", 2)], seed=8)
    pages = sorted((tmp_path / "ch").glob("*.png"))
    page.goto(running_app)
    page.wait_for_selector("#generate")
    upload(page, pages, thumbnails=4)
    assert not page.locator("#bridges").is_visible()  # for a chapter score only
    page.locator("#kind label", has_text="chapter score").click()
    page.locator("#reading-speed").wait_for(state="visible")
    assert not page.locator("#duration").is_visible()  # a score's length comes from the reading, not a slider
    page.locator("#bridges").wait_for(state="visible")  # shown by the same update, which may land a moment later
    assert not page.locator("#bridges input").is_checked()
    page.locator("#longest-cue input").fill("8")  # both scenes take longer to read: each cue loops
    page.locator("#scenes textarea").fill("1\n3 0:40")  # the second scene lasts 40 s, not its reading time
    speed = page.locator("#reading-speed input[type=number]")  # the pace a read-along page says is the reader's
    speed.fill("6")  # (it may say up to 20; the slider stopped at 4)
    speed.press("Enter")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Scenes')", timeout=120_000)
    status = page.locator("#status").inner_text()
    assert "Made a chapter score of 2 scenes" in status
    assert "Scene 1: calm: pages 1-2" in status and "Scene 2: action: pages 3-4" in status, status
    assert status.count(" s cue that loops") == 2 and "a 8 s" not in status, status
    start_m, start_s, end_m, end_s = map(int, re.search(r"Scene 2: action: pages 3-4, (\d+):(\d\d)-(\d+):(\d\d)",
                                                        status).groups())
    assert abs((end_m * 60 + end_s) - (start_m * 60 + start_s) - 40) <= 2, status  # from the Scenes box
    assert re.search(r"seed \d+", status), status  # a score's seed is shown, as a track's is
    described = page.locator("#description textarea").input_value()
    assert described.startswith("Scene 1: ") and "\n\nScene 2: " in described and "BPM" in described
    downloads = "".join(page.locator("#downloads").inner_text().split())
    assert all(name in downloads for name in ("001.score.wav", "001.cues.json", "001.score.vtt", "001-music.zip")), \
        downloads
    assert "001.read.html" not in downloads  # alone it plays nothing (the score is beside it): it is in the zip
    assert "read-along page is in the zip" in status
    cues = page.locator("#downloads a[href$='001.cues.json']").first.get_attribute("href")
    assert json.loads(page.request.get(cues).text())["reading_speed"] == 6  # scored at the speed given
    assert not LEAKS.search(page.locator("body").inner_text())


@pytest.mark.slow
@pytest.mark.browser
def test_stop_ends_a_long_generate_and_the_next_one_runs_at_once(running_app, page, tmp_path):
    """There was no way to stop a Generate (a whole series at 120 s a track: minutes, or with MusicGen on a CPU,
    hours): the next upload waited behind it.  Stop ends it at its next progress report; nothing is kept."""
    import time
    import zipfile

    book = tmp_path / "series.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        for k in range(1, 13):
            zf.write(TWO_PAGES[k % 2], f"ch{k:02d}/001.png")
    page.goto(running_app)
    page.wait_for_selector("#generate")
    upload(page, [book], thumbnails=12)
    duration = page.locator("#duration input[type=number]")
    duration.fill("120")
    duration.press("Enter")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').innerText.includes('ch0')", timeout=60_000)  # the
    # progress names one (the thumbnails' captions name them too: waiting on the whole page was no wait at all)
    generate = page.locator("#generate")  # it says it is at work (on a laptop the bar may be out of sight)
    assert generate.is_disabled() and "Generating" in generate.inner_text()
    asked = time.monotonic()
    page.click("#stop")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Stopped')", timeout=60_000)
    assert time.monotonic() - asked < 30
    assert page.locator("#track audio").count() == 0 and "series" not in page.locator("#downloads").inner_text()
    duration.fill("2")
    duration.press("Enter")
    started = time.monotonic()
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Made 12 tracks')", timeout=60_000)
    assert time.monotonic() - started < 40  # at once, not behind the stopped one (which alone took over a minute)
    page.wait_for_function("!document.querySelector('#generate').disabled", timeout=30_000)
    assert generate.inner_text().strip() == "Generate"


@pytest.mark.browser
def test_a_hidden_file_uploaded_in_chromium_is_said_not_read_and_the_good_page_is_made(running_app, page, tmp_path,
                                                                                        monkeypatch):
    """`.cover.png` uploaded beside `page.png` to a server started from `/` (a container's working folder): no
    thumbnail, an empty note, and Generate showed Gradio's red "Error" and stayed "Generating…" until a reload, for
    Gradio refuses to hand a function a dotfile under the server's working folder."""
    monkeypatch.chdir("/")  # the server runs in this process: its uploads are now under its working folder
    cover = tmp_path / ".cover.png"
    cover.write_bytes((SAMPLES / "action" / "001.png").read_bytes())
    good = tmp_path / "page.png"
    good.write_bytes((SAMPLES / "calm" / "001.png").read_bytes())
    page.goto(running_app)
    page.wait_for_selector("#generate")
    upload(page, [cover, good], thumbnails=1)
    page.wait_for_function("document.querySelector('#upload-note').innerText.includes('.cover.png')")
    assert "rename it to read it" in page.locator("#upload-note").inner_text()
    page.locator("#duration input[type=number]").fill("2")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Made 1 track')", timeout=90_000)
    assert ".cover.png: a hidden file" in page.locator("#status").inner_text()
    assert "page.wav" in page.locator("#track").inner_text()
    button = page.locator("#generate")
    page.wait_for_function("document.querySelector('#generate').innerText.trim() === 'Generate'")
    assert button.is_enabled()
    assert not LEAKS.search(page.locator("body").inner_text())


def test_new_uploads_stop_the_generate_of_the_pages_before(running_app, page, tmp_path):
    """Uploads changed while a Generate ran: the thumbnails and results were cleared for the new pages, then the old
    run's results ("Made 12 tracks", series.* downloads) appeared under them."""
    import time

    page.goto(running_app)
    page.wait_for_selector("#generate")
    upload(page, [twelve_chapters(tmp_path / "series.cbz")], thumbnails=12)
    duration = page.locator("#duration input[type=number]")
    duration.fill("120")
    duration.press("Enter")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').innerText.includes('ch0')", timeout=60_000)
    changed = time.monotonic()
    page.locator("#uploads input[type=file]").set_input_files([str(TWO_PAGES[0])])
    page.wait_for_function("document.querySelector('#status').innerText.includes('Stopped')", timeout=60_000)
    assert time.monotonic() - changed < 30
    assert page.locator("#track audio").count() == 0 and "series" not in page.locator("#downloads").inner_text()
    assert "other pages were uploaded" in page.locator("#status").inner_text()  # not a Stop the user never pressed


def twelve_chapters(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(1, 13):
            zf.write(TWO_PAGES[k % 2], f"ch{k:02d}/001.png")
    return path


def tab_with(browser, url: str, uploads: list, seconds: int, thumbnails: int):
    """Another browser tab (its own Gradio session) with ``uploads`` on it and the track length set."""
    tab = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    tab.goto(url)
    tab.wait_for_selector("#generate")
    upload(tab, uploads, thumbnails=thumbnails)
    duration = tab.locator("#duration input[type=number]")
    duration.fill(str(seconds))
    duration.press("Enter")
    return tab


@pytest.mark.slow
@pytest.mark.browser
def test_many_pages_keep_generate_in_reach_and_a_phone_shows_every_thumbnail(running_app, browser, tmp_path):
    """60 pages uploaded listed every file at full height: Generate sat 4,700 px down and the results above the
    screen.  On a phone the thumbnails kept 5 columns of 100 px in a 308 px box: all but three were out of sight."""
    from PIL import Image

    pages = []
    for k in range(30):
        pages.append(tmp_path / f"p{k:02d}.png")
        Image.new("L", (60, 84), 60 + 5 * k).save(pages[-1])
    for (width, height), given in (((1280, 800), pages), ((390, 844), pages[:5])):
        tab = browser.new_context(viewport={"width": width, "height": height}).new_page()
        tab.goto(running_app)
        tab.wait_for_selector("#generate")
        upload(tab, given, thumbnails=len(given))
        listed = tab.evaluate("document.querySelector('#uploads').getBoundingClientRect().height")
        assert listed < 400, listed  # the list scrolls in its box
        grid = tab.evaluate("(() => { const g = document.querySelector('#thumbnails .grid-container'); "
                            "return [g.scrollWidth, g.clientWidth]; })()")
        assert grid[0] <= grid[1] + 1, grid  # every thumbnail within the box's width (they wrap)
        tab.context.close()


def status_says(tab, words: str, timeout_s: float = 60) -> None:
    tab.wait_for_function(f"document.querySelector('#status').innerText.includes('{words}')",
                          timeout=timeout_s * 1000)


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.browser
def test_stop_pressed_before_the_generate_starts_still_stops_it(running_app, browser, tmp_path):
    """A Generate waits in the queue while another tab's runs.  Stop pressed then was lost (the Generate, on
    starting, cleared it, and ran to the end), and it stopped the other tab's Generate instead."""
    first = tab_with(browser, running_app, [twelve_chapters(tmp_path / "series.cbz")], seconds=15, thumbnails=12)
    second = tab_with(browser, running_app, [TWO_PAGES[0]], seconds=2, thumbnails=1)
    first.click("#generate")
    status_says(first, "ch0")  # it runs
    second.click("#generate")  # waits behind it
    second.click("#stop")
    status_says(second, "Stopped", timeout_s=120)
    status_says(first, "Made 12 tracks", timeout_s=120)  # the other tab's Stop was not for it
    assert second.locator("#track audio").count() == 0
    first.context.close()
    second.context.close()


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.browser
def test_new_uploads_stop_a_generate_still_waiting_in_the_queue(running_app, browser, tmp_path):
    """A Generate waiting behind another tab's, other pages uploaded meanwhile: when its turn came it ran on the
    pages of the click, and showed their music under the thumbnails of the new ones ("Made 1 track"); only a Generate
    already running was stopped by new uploads."""
    first = tab_with(browser, running_app, [twelve_chapters(tmp_path / "series.cbz")], seconds=8, thumbnails=12)
    second = tab_with(browser, running_app, [TWO_PAGES[0]], seconds=2, thumbnails=1)
    first.click("#generate")
    status_says(first, "ch0")  # it runs
    second.click("#generate")  # waits behind it
    status_says(second, "queue:")  # it waits with the pages of the click (uploads that came first, it would run on)
    upload(second, [TWO_PAGES[1]])
    status_says(second, "Stopped", timeout_s=300)
    assert "other pages were uploaded while it waited" in second.locator("#status").inner_text()
    assert second.locator("#track audio").count() == 0
    second.click("#generate")  # the new pages, asked for again: made
    status_says(second, "Made 1 track", timeout_s=120)
    first.context.close()
    second.context.close()


@pytest.mark.slow
@pytest.mark.browser
def test_uploads_the_server_no_longer_has_are_said_in_words(running_app, page, tmp_path):
    """Gradio deletes uploads an hour old; a tab left open still listed them, and Generate said "Something went wrong
    inside manga2music (No such file or directory: '/tmp/.../gradio/.../p.png'). This is a bug"."""
    page.goto(running_app)
    page.wait_for_selector("#generate")
    own = tmp_path / "an hour ago.png"
    own.write_bytes(TWO_PAGES[0].read_bytes())
    upload(page, [own], thumbnails=1)
    server = SERVER_FOLDERS[running_app]
    for kept in server.root.rglob("an hour ago.png"):  # as Gradio's delete_cache removes them
        kept.unlink()
    page.click("#generate")
    status_says(page, "no longer on the server")
    said = page.locator("#status").inner_text()
    assert "upload the pages again" in said and "This is a bug" not in said and str(server.root) not in said


@pytest.mark.slow
@pytest.mark.browser
def test_closing_the_tab_stops_its_generate(running_app, browser, tmp_path, monkeypatch):
    """A tab closed (or reloaded) during a long Generate left it running in the background: minutes or hours
    (MusicGen on a CPU) of a busy machine making tracks nobody would hear."""
    import time

    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "1")  # Gradio notices a closed tab by its heartbeat (15 s)
    server = SERVER_FOLDERS[running_app]
    before = set(server.root.rglob("*.wav"))  # the earlier tests' results
    tracks = lambda: len(set(server.root.rglob("*.wav")) - before)  # noqa: E731  (made, or being made)
    closed = tab_with(browser, running_app, [twelve_chapters(tmp_path / "series.cbz")], seconds=30, thumbnails=12)
    closed.click("#generate")
    status_says(closed, "ch02")  # it made one track, at least
    closed.context.close()
    deadline = time.monotonic() + 60  # the Generate ends (its staging folder goes) at its next progress report
    while any(server.work.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(server.work.iterdir())
    assert tracks() == 0  # stopped, it kept nothing (run on, it made all 12: about 2 s each here)
    other = tab_with(browser, running_app, [TWO_PAGES[0]], seconds=2, thumbnails=1)
    other.click("#generate")
    status_says(other, "Made 1 track")
    other.context.close()


def test_a_book_and_a_loose_page_are_two_parts_named_apart_without_the_temporary_folder(tmp_path):
    """book.cbz uploaded with one loose page: the two parts were both "book", told apart by the staging folder's
    temporary name ("manga2music-upload-v9wupxg_/book"), which reached the status, the descriptions, the zip and its
    manifest; the downloads were two book.wav, two book.txt."""
    cbz = tmp_path / "book.cbz"
    with zipfile.ZipFile(cbz, "w") as zf:
        for page in sorted((SAMPLES / "action").iterdir()):
            zf.write(page, page.name)
    result = generate([SAMPLES / "calm" / "001.png", cbz], tmp_path / "results", duration=1, seed=2,
                      work_root=tmp_path / "work")
    assert [(e["name"], e["status"]) for e in result.entries] == [("book", "ok"), ("pages", "ok")]
    names = [p.name for p in result.downloads]
    assert len(names) == len(set(names)) and {"book.wav", "pages.wav"} <= set(names)
    assert not LEAKS.search(result.description) and not any(LEAKS.search(w) for w in result.warnings)
    with zipfile.ZipFile(result.archive) as zf:
        assert not [n for n in zf.namelist() if LEAKS.search(n)]
        assert not LEAKS.search(zf.read("manifest.json").decode("utf-8"))
    shown = preview([SAMPLES / "calm" / "001.png", cbz], tmp_path / "work")
    assert not LEAKS.search(shown.note())


def test_an_unknown_model_and_a_seed_out_of_range_are_said_in_the_pages_words(tmp_path):
    """The unknown-model error went on in a second line that began mid-sentence ("or a Hugging Face id ...") and
    named --base-url, which the page does not have; a seed of -5 was told to "leave Seed out"."""
    from manga2music.errors import InputError, UnknownModelError
    from manga2music.webui.run import parse_seed

    with pytest.raises(UnknownModelError) as info:
        generate(TWO_PAGES, tmp_path / "results", vision_model="nonexistent-model", work_root=tmp_path / "work")
    assert info.value.hint.startswith("pick one from the menu") and "--" not in info.value.hint
    with pytest.raises(InputError) as info:
        parse_seed("-5")
    assert info.value.hint == "leave it blank for a random one" and "4294967295" in info.value.message


def test_an_upload_whose_only_page_is_cut_short_names_it_when_generating(tmp_path):
    """A PNG cut short (it hashes, but does not decode) as the only upload: Generate said only "No track was made:
    none of the pages could be measured", and the manifest listed no skipped page."""
    from manga2music.errors import InputError

    cut = tmp_path / "corrupt.png"
    cut.write_bytes((SAMPLES / "calm" / "001.png").read_bytes()[:500])
    with pytest.raises(InputError) as info:
        generate([cut], tmp_path / "results", duration=1, work_root=tmp_path / "work")
    assert "corrupt.png" in info.value.message and "truncated" in info.value.message
    assert info.value.hint == messages.UPLOAD_HINT


def test_results_older_than_an_hour_are_removed(tmp_path):
    """Results were never deleted while the server ran: 1.1 GB in 15 minutes of use, none reachable once the page
    moved on."""
    from manga2music.webui.run import KEEP_RESULTS_S, prune_results

    results = tmp_path / "results"
    old, new = results / "20261202-100000-aaaaaa", results / "20261202-110500-bbbbbb"
    for folder in (old, new):
        (folder / "book").mkdir(parents=True)
        (folder / "book" / "book.wav").write_bytes(b"RIFF")
    now = 1_800_000_000.0
    os.utime(old, (now - KEEP_RESULTS_S - 60, now - KEEP_RESULTS_S - 60))
    os.utime(new, (now - 60, now - 60))
    assert prune_results(results, now=now) == [old]
    assert not old.exists() and (new / "book" / "book.wav").exists()


@pytest.mark.parametrize("host", ["::1", "[::1]", "::"])
def test_an_ipv6_host_is_refused_in_one_line(tmp_path, host):
    """`ui --host ::1` (or `::`) ended in a traceback (httpx.InvalidURL: Invalid port: ':1:7969'): Gradio writes its
    own address without IPv6's brackets; `--host [::1]` was told "other machines on the network can use this UI",
    then that ::1 is not an address here. Each is one line naming the IPv4 host to use."""
    pytest.importorskip("gradio")
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "manga2music", "ui", "--host", host, "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"Error: the web UI listens on IPv4 addresses only (not {host})" in done.stderr, done.stderr
    assert "--host 127.0.0.1 (this machine only)" in done.stderr and "other machines on the network" not in \
        done.stderr
    assert not list(tmp_path.iterdir())


def test_a_cue_length_is_shown_as_it_is_not_rounded_to_a_whole_second():
    """Longest cue 8 gave "an 8 s cue that loops" for a cue of 7.5 s (whole bars)."""
    from manga2music.webui.messages import _a_number

    assert [_a_number(n) for n in (7.5, 8, 8.5, 11, 18.2, 7)] == ["a 7.5", "an 8", "an 8.5", "an 11", "an 18.2",
                                                                   "a 7"]


def test_an_archive_without_pages_is_said_to_hold_none_not_to_be_no_archive():
    """An uploaded zip holding only notes.txt was "none of the uploads (empty.zip) is an image, a comic archive or
    a .pdf": it is a comic archive, without a page in it."""
    from manga2music.errors import InputError

    said = messages.for_user(InputError("no pages found in /tmp/up/empty.zip"), [], ["empty.zip"])
    assert said.message == "no page found in the uploads (empty.zip): empty.zip holds no image", said.message
    loose = messages.for_user(InputError("no pages found in /tmp/up"), [], ["notes.txt"])
    assert loose.message == "none of the uploads (notes.txt) is an image, a comic archive, a .pdf or an .epub"
    # a hidden image was "none of the uploads (.cover.png) is an image": it is one, left out for its name
    hidden = messages.for_user(InputError("no pages found in /tmp/up"), [], [".cover.png"])
    assert hidden.message.endswith(".cover.png is a hidden file (its name starts with a dot), and hidden files are "
                                   "not read")
    assert "rename it" in hidden.hint
    for system in (["Thumbs.db", "desktop.ini"], ["._001.png"]):  # no page, and no dot to take away
        said = messages.for_user(InputError("no pages found in /tmp/up"), [], system)
        assert "none of the uploads" in said.message and "rename" not in (said.hint or ""), said


def test_every_warning_of_a_run_is_listed_or_counted(tmp_path):
    """Eleven hidden pages uploaded beside a page: the status listed the last 8 warnings, and three hidden pages
    (and any warning before them) went unsaid, with no "and N more"."""
    from manga2music.webui.messages import WARNINGS_SHOWN, status_markdown

    cache = tmp_path / "gradio"
    cache.mkdir()
    uploads = []
    for k in range(1, 12):
        shutil.copy(SAMPLES / "calm" / "001.png", cache / f".h{k}.png")
        uploads.append(cache / f".h{k}.png")
    shutil.copy(SAMPLES / "action" / "001.png", cache / "p.png")
    result = generate([*uploads, cache / "p.png"], tmp_path / "results", duration=1, seed=3, hidden=[cache])
    said = status_markdown(result)
    listed = re.findall(r"\.h(\d+)\\?\.png: a hidden file", said)
    more = re.search(r"and (\d+) more warnings?", said)
    assert ".h1" in said and more, said
    assert len(listed) + int(more.group(1)) == len(result.warnings) and len(listed) == WARNINGS_SHOWN, said


def test_the_player_names_its_track_as_the_downloads_do(tmp_path):
    """Two volumes' `Chapter 1` in one upload: the downloads are "Vol 1 - Chapter 1.wav" and "Vol 2 - Chapter
    1.wav", but the player and the status named "Chapter 1.wav", a file in none of them."""
    from manga2music.webui.messages import status_markdown

    saga = tmp_path / "Saga.cbz"
    with zipfile.ZipFile(saga, "w") as zf:
        zf.write(SAMPLES / "calm" / "001.png", "Vol 1/Chapter 1/001.png")
        zf.write(SAMPLES / "action" / "001.png", "Vol 2/Chapter 1/001.png")
    result = generate([saga], tmp_path / "results", duration=1, seed=3)
    names = [p.name for p in result.downloads]
    assert result.audio is not None and result.audio.name in names and result.audio.is_file(), (result.audio, names)
    assert "Chapter 1.wav" not in names
    assert f"`{result.audio.name}`" in status_markdown(result)


def test_a_damaged_archive_beside_an_archive_with_no_page_is_said_damaged(tmp_path):
    """`empty.zip` (no image in it) and `trunc.cbz` (cut short) uploaded together: the preview said trunc.cbz was
    damaged, but Generate said "empty.zip, trunc.cbz hold no image": the damaged one was dropped as if a readable
    book were beside it."""
    (tmp_path / "up").mkdir()
    with zipfile.ZipFile(tmp_path / "up" / "empty.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with zipfile.ZipFile(tmp_path / "whole.cbz", "w") as zf:
        zf.write(SAMPLES / "calm" / "001.png", "001.png")
    whole = (tmp_path / "whole.cbz").read_bytes()
    (tmp_path / "up" / "trunc.cbz").write_bytes(whole[: len(whole) // 2])
    from manga2music.errors import Manga2MusicError

    with pytest.raises(Manga2MusicError) as refused:
        generate([tmp_path / "up" / "empty.zip", tmp_path / "up" / "trunc.cbz"], tmp_path / "results", duration=1)
    said = refused.value.message + " " + (refused.value.hint or "")
    assert "trunc.cbz" in said and "cut short" in said, said


def test_advice_to_give_a_folder_is_said_as_the_page_takes_uploads(tmp_path):
    """An archive in an uploaded zip is not read: "extract it and give its folder too", advice the page cannot take
    (its upload box says a folder must be zipped, which makes the same zip again)."""
    nest = tmp_path / "nest.zip"
    inner = tmp_path / "Vol1.cbz"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.write(SAMPLES / "calm" / "001.png", "001.png")
    with zipfile.ZipFile(nest, "w") as zf:
        zf.write(inner, "Vol1.cbz")
        zf.write(SAMPLES / "action" / "001.png", "extras/cover.png")
    result = generate([nest], tmp_path / "results", duration=1, seed=3)
    inside = [w for w in result.warnings if "Vol1.cbz" in w]
    assert inside and all("give" not in w and "upload the files it holds" in w for w in inside), result.warnings
