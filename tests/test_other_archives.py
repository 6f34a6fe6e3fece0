"""RAR (.cbr), 7-Zip (.cb7) and tar (.cbt) comic archives: read like a .cbz, or one failed section that says why."""

from __future__ import annotations

import io
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from output_checks import cli, cli_env, start_cli
from rar5 import renamed, write_rar5

from manga2music import other_archives
from manga2music.errors import PageError
from manga2music.sections import find_sections

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ARCHIVES = Path(__file__).resolve().parent / "data" / "archives"
BSDTAR = other_archives.bsdtar()
needs_bsdtar = pytest.mark.skipif(BSDTAR is None, reason="bsdtar (libarchive) is not installed: "
                                  "apt install libarchive-tools")
BUILTIN = ("--vision-model", "builtin", "--music-model", "builtin", "--duration", "1", "--seed", "1")

#: a chapter as its packer left it: two folders, a page whose name is not ASCII, and files that are not pages
PAGES = {
    "Vol 1/Chapter 1/001.png": (SAMPLES / "calm" / "001.png").read_bytes(),
    "Vol 1/Chapter 1/002.png": (SAMPLES / "calm" / "002.png").read_bytes(),
    "Vol 1/Chapter 1/003 ページ.jpg": (SAMPLES / "calm" / "003.jpg").read_bytes(),
    "Vol 1/Chapter 2/001.png": (SAMPLES / "action" / "001.png").read_bytes(),
    "Vol 1/Chapter 2/002.png": (SAMPLES / "action" / "002.png").read_bytes(),
    "ComicInfo.xml": b"<ComicInfo/>",
    "Vol 1/Chapter 2/.hidden.png": b"not a page",
}


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in PAGES.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in PAGES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _7z(path: Path, scratch: Path) -> Path:
    """A 7-Zip archive written by bsdtar (LZMA2, solid) from the pages laid out in ``scratch``."""
    for name, data in PAGES.items():
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / name).write_bytes(data)
    subprocess.run([BSDTAR, "-c", "-f", str(path), "--format", "7zip", *PAGES], cwd=scratch, check=True,
                   env={**os.environ, "LC_ALL": "C.UTF-8"})
    return path


def _found(sections) -> dict[str, dict[str, bytes]]:
    return {s.name: {p.name: p.read_bytes() for p in s.pages} for s in sections}


@needs_bsdtar
def test_rar_7zip_and_tar_comics_are_read_like_a_cbz(tmp_path):
    """The same chapter packed as .cbz, .cbr, .cb7 and .cbt: the same sections, pages in the same order, and
    each page's bytes exactly as packed."""
    books = {
        "zip": _zip(tmp_path / "book.cbz"),
        "rar": write_rar5(tmp_path / "book.cbr", PAGES),
        "7z": _7z(tmp_path / "book.cb7", tmp_path / "scratch"),
        "tar": _tar(tmp_path / "book.cbt"),
    }
    expected = {
        "book/Vol 1/Chapter 1": {"001.png": PAGES["Vol 1/Chapter 1/001.png"], "002.png": PAGES["Vol 1/Chapter 1/002.png"],
                                 "003 ページ.jpg": PAGES["Vol 1/Chapter 1/003 ページ.jpg"]},
        "book/Vol 1/Chapter 2": {"001.png": PAGES["Vol 1/Chapter 2/001.png"], "002.png": PAGES["Vol 1/Chapter 2/002.png"]},
    }
    for kind, book in books.items():
        sections = find_sections([book])
        assert [s.error for s in sections] == [None, None], kind
        found = _found(sections)
        assert found == expected, kind
        assert [list(pages) for pages in found.values()] == [list(p) for p in expected.values()], kind  # in order
        assert sections[0].pages[2].source == f"{book}!Vol 1/Chapter 1/003 ページ.jpg"


def test_a_comic_packed_as_a_plain_tar_is_read_as_its_cbt_is(tmp_path):
    """`Ch 1.tar` was refused ("not a folder, image, comic archive ... or .pdf") and left out of a folder without a
    word, where the README and the web UI's file box name .tar beside .cbt."""
    expected = _found(find_sections([_tar(tmp_path / "book.cbt")]))
    assert _found(find_sections([_tar(tmp_path / "book.tar")])) == expected
    series = tmp_path / "series"
    series.mkdir()
    _tar(series / "book.tar")
    assert _found(find_sections([series])) == expected  # found in a folder too, under the same names
    described = cli("describe", tmp_path / "book.tar", "-o", tmp_path / "out", "--model", "builtin", "--json")
    assert described.returncode == 0, described.stderr
    assert [(s["name"], s["status"]) for s in json.loads(described.stdout)["sections"]] == [
        ("book/Vol 1/Chapter 1", "ok"), ("book/Vol 1/Chapter 2", "ok")]


@needs_bsdtar
def test_a_compressed_tar_comic_is_read_and_a_damaged_one_is_not_called_a_bad_zip(tmp_path):
    """A .cbt compressed with gzip, bzip2 or xz failed as "not a readable comic archive (zip, RAR, 7-Zip or tar):
    File is not a zip file (damaged, or cut short?)"."""
    import bz2
    import gzip
    import lzma

    plain = _tar(tmp_path / "book.cbt").read_bytes()
    expected = _found(find_sections([tmp_path / "book.cbt"]))
    for name, pack in (("gz.cbt", gzip.compress), ("bz2.tar", bz2.compress), ("xz.cbt", lzma.compress)):
        book = tmp_path / name
        book.write_bytes(pack(plain))
        sections = find_sections([book])
        assert [s.error for s in sections] == [None, None], name
        assert list(_found(sections).values()) == list(expected.values()), name
    cut = tmp_path / "cut.cbt"
    cut.write_bytes(gzip.compress(plain)[:400])
    (failed,) = find_sections([cut])
    assert "gzip-compressed tar" in failed.error and "zip file" not in failed.error, failed.error
    assert "unrar" not in failed.error, failed.error


def _crc32s(name: str) -> dict[str, int]:
    """Each file's CRC32 in an archive of tests/data/archives, as rarfile's own listing of it records."""
    return {"rar5-solid-qo.rar": {"somedir/stest1.txt": 0xC5B7E6A2, "stest1.txt": 0xC5B7E6A2,
                                  "somedir/stest2.txt": 0xC5B7E6A2, "stest2.txt": 0xC5B7E6A2}}[name]


@needs_bsdtar
def test_a_compressed_solid_rar_is_unpacked_once_to_the_right_bytes(tmp_path, monkeypatch):
    """A solid RAR made by WinRAR (each file depends on the ones before it) is unpacked once for the whole
    chapter, not once a page, and each file comes out as its CRC32 says."""
    runs = []
    real_popen = subprocess.Popen

    def counting_popen(command, *args, **kwargs):
        runs.append(command)
        return real_popen(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", counting_popen)
    archive = shutil.copy(ARCHIVES / "rar5-solid-qo.rar", tmp_path / "solid.cbr")
    members = other_archives.list_members(Path(archive), "RAR", 10**9)
    crcs = _crc32s("rar5-solid-qo.rar")
    assert [m.name for m in members] == list(crcs)
    for member in reversed(members):  # the last first: nothing may depend on reading in order
        data = other_archives.read_member(Path(archive), "RAR", member.name, 10**9, 10**8)
        assert len(data) == 2048 and zlib.crc32(data) == crcs[member.name]
    unpacked = [command for command in runs if "-c" in command]
    assert len(unpacked) == 1, runs  # listing it read its headers; reading its files unpacked it once


@needs_bsdtar
def test_an_archive_bomb_is_refused_before_it_fills_the_disk(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "001.png").write_bytes(bytes(64 * 1024**2))  # 64 MB of zeros: a few kB packed
    subprocess.run([BSDTAR, "-c", "-f", str(tmp_path / "bomb.cb7"), "--format", "7zip", "001.png"], cwd=scratch,
                   check=True)
    (member,) = other_archives.list_members(tmp_path / "bomb.cb7", "7-Zip", limit=1024**2)  # headers only
    runs, real_popen = [], subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda command, *a, **k: runs.append(command) or real_popen(command, *a, **k))
    for _ in range(2):  # refused, and not unpacked again for the next page
        with pytest.raises(PageError, match="unpacked; refusing it"):
            other_archives.read_member(tmp_path / "bomb.cb7", "7-Zip", member.name, 1024**2, 1024**2)
    assert len(runs) == 1, runs
    kept = other_archives._conversions.folder
    assert kept is None or all(p.stat().st_size < 32 * 1024**2 for p in kept.glob("*.tar"))  # nothing left behind


@needs_bsdtar
def test_a_series_of_cbr_files_is_scored_and_one_that_cannot_be_read_is_one_line(tmp_path):
    """Through the real command: a .cbr chapter becomes a track whose record locates each page inside it; a RAR
    that libarchive cannot unpack (an old solid RAR) is one failed chapter that says why and what to do, and the
    chapters around it are made."""
    series = tmp_path / "series"
    series.mkdir()
    write_rar5(series / "Chapter 1.cbr", {k.split("/")[-1]: v for k, v in PAGES.items() if "Chapter 1/" in k})
    shutil.copy(ARCHIVES / "rar3-solid.rar", series / "Chapter 2.cbr")
    _zip(series / "Chapter 3.cbz")
    out = tmp_path / "out"
    result = cli("run", series, "-o", out, *BUILTIN, env={**cli_env(), "LC_ALL": "C"})  # a locale without UTF-8
    assert result.returncode == 1, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(r[0], r[1]) for r in rows] == [("Chapter 1", "ok"), ("Chapter 2", "failed"),
                                           ("Chapter 3/Vol 1/Chapter 1", "ok"), ("Chapter 3/Vol 1/Chapter 2", "ok")]
    assert "Chapter 2.cbr: cannot read this RAR archive (RAR solid archive support unavailable)" in rows[1][2]
    assert "Traceback" not in result.stderr
    record = json.loads((out / "Chapter 1.json").read_text(encoding="utf-8"))
    sources = [p["source"] if isinstance(p, dict) else p for p in record["pages"]]
    assert [s.split("!")[-1] for s in sources] == ["001.png", "002.png", "003 ページ.jpg"], sources
    assert (out / "Chapter 1.wav").stat().st_size > 1000


def test_without_bsdtar_a_rar_is_one_failed_chapter_that_says_what_to_install(tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    write_rar5(series / "Chapter 1.cbr", {"001.png": PAGES["Vol 1/Chapter 1/001.png"]})
    _zip(series / "Chapter 2.cbz")
    empty = tmp_path / "no-tools"
    empty.mkdir()
    result = cli("run", series, "-o", tmp_path / "out", *BUILTIN, env={**cli_env(), "PATH": str(empty)})
    assert result.returncode == 1, result.stderr
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in result.stdout.splitlines()}
    assert rows["Chapter 1"][0] == "failed"
    assert "a RAR archive; reading it needs bsdtar, which this machine lacks" in rows["Chapter 1"][1]
    assert "apt install libarchive-tools" in result.stderr
    assert [v[0] for k, v in rows.items() if k.startswith("Chapter 2/")] == ["ok", "ok"]
    doctor = cli("doctor", "--json", "--offline", env={**cli_env(), "PATH": str(empty)})
    assert json.loads(doctor.stdout)["bsdtar"] is None
    doctor = cli("doctor", "--offline", env={**cli_env(), "PATH": str(empty), "COLUMNS": "200"})
    assert "RAR (.cbr), 7-Zip (.cb7) and compressed tars need bsdtar" in doctor.stdout
    assert "libarchive-tools" in doctor.stdout


@needs_bsdtar
def test_what_a_killed_run_left_unpacked_is_removed_by_the_next_run(tmp_path):
    """The unpacked copy of a .cbr lives in a private temporary folder, removed when the run ends; a run killed
    with SIGKILL cannot remove it, so the next run removes it (the pages are the user's, they must not linger)."""
    series = tmp_path / "series"
    series.mkdir()
    write_rar5(series / "Chapter 1.cbr", {k.split("/")[-1]: v for k, v in PAGES.items() if "Chapter 1/" in k})
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**cli_env(), "TMPDIR": str(temp)}
    process = start_cli("run", series, "-o", tmp_path / "out", *BUILTIN, env=env)
    deadline = time.monotonic() + 60
    while not list(temp.glob("manga2music-archives-*/*.tar")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    (left,) = temp.glob("manga2music-archives-*")
    assert list(left.glob("*.tar")), "the killed run had unpacked the archive"
    result = cli("run", series, "-o", tmp_path / "out", *BUILTIN, env=env)
    assert result.returncode == 0, result.stderr
    assert not left.exists() and not list(temp.glob("manga2music-archives-*"))  # and its own is gone at its end


@needs_bsdtar
def test_a_password_protected_cbr_is_one_failed_chapter_in_one_line_that_says_so(tmp_path):
    """Its names can be listed, its pages cannot be unpacked: the chapter fails with one line (not one a page), and
    that line gives a reason the user can act on (bsdtar itself says only "(null)")."""
    series = tmp_path / "series"
    series.mkdir()
    locked = renamed((ARCHIVES / "rar5-psw.rar").read_bytes(), {"stest1.txt": "page01.png", "stest2.txt": "page02.png"})
    (series / "Chapter 1.cbr").write_bytes(locked)
    _zip(series / "Chapter 2.cbz")
    assert [m.name for m in other_archives.list_members(series / "Chapter 1.cbr", "RAR", 10**9)] == [
        "page01.png", "page02.png"]
    result = cli("score", series, "-o", tmp_path / "out", "--vision-model", "builtin", "--music-model", "builtin",
                 "--seed", "1", env=cli_env())
    assert result.returncode == 1, result.stderr
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in result.stdout.splitlines()}
    status, said = rows["Chapter 1"]
    assert status == "failed" and "null" not in said and "password-protected" in said, said
    assert "Chapter 1.cbr: cannot read this RAR archive (" in said, said
    assert result.stderr.count("password-protected") == 1, result.stderr  # one line, not one a page
    assert [v[0] for k, v in rows.items() if k.startswith("Chapter 2/")] == ["ok", "ok"]


@needs_bsdtar
def test_names_a_mac_packed_in_decomposed_form_are_shown_composed_and_still_read(tmp_path):
    """macOS stores "ペ" as "ヘ" + a combining mark; shown composed (as a .cbz's names are), read by the stored name."""
    import unicodedata

    stored = unicodedata.normalize("NFD", "第1話/ページ1.png")
    assert stored != "第1話/ページ1.png"
    book = write_rar5(tmp_path / "book.cbr", {stored: PAGES["Vol 1/Chapter 1/001.png"]})
    (section,) = find_sections([book])
    assert section.former_names == ["book/第1話"] and [p.name for p in section.pages] == ["ページ1.png"]
    assert section.pages[0].read_bytes() == PAGES["Vol 1/Chapter 1/001.png"]


@needs_bsdtar
def test_a_program_that_goes_on_after_a_run_keeps_no_unpacked_archive(tmp_path):
    """The unpacked copy of a .cbr was removed only when the process ended: a program (the web UI, a notebook)
    that goes on after `manga2music.run` kept the pages of the user's archives in the temporary folder."""
    series = tmp_path / "series"
    series.mkdir()
    write_rar5(series / "Chapter 1.cbr", {k.split("/")[-1]: v for k, v in PAGES.items() if "Chapter 1/" in k})
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = ("import sys, manga2music; from pathlib import Path\n"
              "m = manga2music.run([sys.argv[1]], sys.argv[2], vision_model='builtin', music_model='builtin', "
              "config=manga2music.RunConfig(duration=1, seed=1))\n"
              "print([e['status'] for e in m['sections']])\n"
              "print(sorted(str(p) for p in Path(sys.argv[3]).rglob('*')))\n")
    result = subprocess.run([sys.executable, "-c", script, series, tmp_path / "out", temp], capture_output=True,
                            text=True, env={**cli_env(), "TMPDIR": str(temp)}, timeout=120)
    assert result.returncode == 0, result.stderr
    statuses, left = result.stdout.strip().splitlines()
    assert statuses == "['ok']" and left == "[]", result.stdout


def _zstd_frame(data: bytes) -> bytes:
    """``data`` as a Zstandard frame of raw (stored) blocks: what a zstd zip entry holds, built without a zstd
    library (RFC 8878: magic, a single-segment header with a 4-byte content size, then blocks of at most 128 KiB)."""
    import struct

    frame = struct.pack("<IBI", 0xFD2FB528, 0xA0, len(data))
    blocks = [data[i:i + 128 * 1024] for i in range(0, len(data), 128 * 1024)] or [b""]
    for n, block in enumerate(blocks):
        last = n == len(blocks) - 1
        frame += (len(block) << 3 | last).to_bytes(3, "little") + block  # block type 0: raw
    return frame


def _zip_with_methods(path: Path, entries: list[tuple[str, bytes, int]]) -> Path:
    """A zip whose entries use the compression methods given (8 deflate, 9 Deflate64, 93 Zstandard, 95 xz), written by
    hand: Python's zipfile writes none but stored, deflate, bzip2 and LZMA."""
    import struct

    local, central = b"", b""
    for name, data, method in entries:
        packed = (_zstd_frame(data) if method == 93 else lzma.compress(data, format=lzma.FORMAT_XZ) if method == 95
                  else zlib.compress(data)[2:-4] if method in (8, 9) else data)
        raw = name.encode("utf-8")
        fields = (63, 0x800, method, 0, 0x21, zlib.crc32(data), len(packed), len(data), len(raw))
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 63, *fields, 0, 0, 0, 0, 0, len(local)) + raw
        local += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fields, 0) + raw + packed
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


@needs_bsdtar
def test_a_cbz_compressed_with_zstandard_is_read_through_bsdtar(tmp_path):
    """7-Zip and WinZip can compress a zip's files with Zstandard (zip method 93) or xz (95), which Python's zip
    reader (before 3.14) cannot unpack: each page was skipped with "That compression method is not supported" and the chapter
    failed. bsdtar reads them; a page packed with plain deflate beside them still reads as before."""
    pages = [("001.png", PAGES["Vol 1/Chapter 1/001.png"], 93), ("002.png", PAGES["Vol 1/Chapter 1/002.png"], 8),
             ("003 ページ.png", PAGES["Vol 1/Chapter 2/001.png"], 93), ("004.png", PAGES["Vol 1/Chapter 2/002.png"], 95)]
    book = _zip_with_methods(tmp_path / "zstd.cbz", pages)
    (section,) = find_sections([book])
    assert [(p.name, p.read_bytes()) for p in section.pages] == [(name, data) for name, data, _ in pages]


def test_a_page_packed_with_deflate64_is_one_page_skipped_with_what_to_do(tmp_path, monkeypatch):
    """Deflate64 (zip method 9; Windows' own zip writes it for big files) is read by neither Python nor bsdtar: the
    page is skipped with a line that names it and says what to do, not "That compression method is not supported";
    the other pages are read. A Zstandard page without bsdtar says to install it."""
    pages = [("001.png", PAGES["Vol 1/Chapter 1/001.png"], 9), ("002.png", PAGES["Vol 1/Chapter 1/002.png"], 8),
             ("003.png", PAGES["Vol 1/Chapter 2/001.png"], 93)]
    (section,) = find_sections([_zip_with_methods(tmp_path / "big.cbz", pages)])
    with pytest.raises(PageError) as deflate64:
        section.pages[0].read_bytes()
    assert "Deflate64" in str(deflate64.value) and "7-Zip" in str(deflate64.value), deflate64.value
    assert section.pages[1].read_bytes() == pages[1][1]
    monkeypatch.setattr(other_archives, "bsdtar", lambda: None)
    with pytest.raises(PageError) as zstd:
        section.pages[2].read_bytes()
    assert "Zstandard" in str(zstd.value) and "install bsdtar" in str(zstd.value), zstd.value


def test_an_archive_whose_every_page_is_deflate64_is_one_failed_chapter_in_one_line(tmp_path):
    """Windows' "Compressed (zipped) folder" packs a zip of over about 2 GB, a whole volume or series, with Deflate64:
    each of its pages printed its own line, then the chapter's failure repeated them all."""
    series = tmp_path / "series"
    series.mkdir()
    shutil.copytree(SAMPLES / "calm", series / "calm")
    pages = [(f"{n:03}.png", PAGES["Vol 1/Chapter 1/001.png"], 9) for n in range(1, 6)]
    _zip_with_methods(series / "Vol 2.cbz", pages + [("ComicInfo.xml", b"<ComicInfo/>", 8),
                                                     ("__MACOSX/._001.png", b"Mac resource fork", 8)])  # not pages
    result = cli("run", series, "-o", tmp_path / "out", *BUILTIN, "--json")
    assert result.returncode == 1, result.stderr
    assert {e["name"]: e["status"] for e in json.loads(result.stdout)["sections"]} == {"calm": "ok", "Vol 2": "failed"}
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Vol 2.cbz: its pages are packed with Deflate64" in result.stderr and "7-Zip" in result.stderr


@needs_bsdtar
def test_no_chapter_of_a_series_and_no_page_of_a_chapter_is_left_out_without_a_word(tmp_path):
    """Four ways chapters or pages went missing from a series in silence: an empty archive (a download that failed)
    and one holding only ComicInfo.xml gave no line, where an empty folder does; `Ch 2.tar.gz` and `Ch 3.tgz` were
    passed over (their last suffix, .gz, is no comic's); a tar's hard- and symlinked pages were dropped; a
    scanner's 5-page TIFF was read as one page."""
    from PIL import Image

    series = tmp_path / "S"
    shutil.copytree(SAMPLES / "calm", series / "Ch 1")
    zipfile.ZipFile(series / "Ch 0.cbz", "w").close()
    with zipfile.ZipFile(series / "Ch 0.5.cbz", "w") as zf:
        zf.writestr("ComicInfo.xml", "<ComicInfo/>")
    for name, mode in (("Ch 2.tar.gz", "w:gz"), ("Ch 3.tgz", "w:gz"), ("Ch 4.tar.bz2", "w:bz2")):
        with tarfile.open(series / name, mode) as tf:
            tf.add(SAMPLES / "action" / "001.png", "001.png")
    with tarfile.open(series / "Ch 5.cbt", "w") as tf:
        for k, page in enumerate(sorted((SAMPLES / "action").iterdir())[:2], start=1):
            tf.add(page, f"{k:03d}.png")
        link = tarfile.TarInfo("003.png")
        link.type, link.linkname = tarfile.LNKTYPE, "001.png"  # the same picture stored once
        tf.addfile(link)
        link = tarfile.TarInfo("004.png")
        link.type, link.linkname = tarfile.SYMTYPE, "002.png"
        tf.addfile(link)
        link = tarfile.TarInfo("005.png")  # out of the archive: no page, and said
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    (series / "Ch 7.tar.gz.part").write_bytes((series / "Ch 2.tar.gz").read_bytes()[:100])  # still downloading
    frames = [Image.open(p).convert("RGB") for p in sorted((SAMPLES / "calm").iterdir())]
    (series / "Ch 6").mkdir()
    frames[0].save(series / "Ch 6" / "scan.tif", save_all=True, append_images=frames[1:])
    out = tmp_path / "out"
    result = cli("run", series, "-o", out, *BUILTIN, "--json", timeout=240)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    made = {e["name"]: e["status"] for e in json.loads(result.stdout)["sections"]}
    assert made == dict.fromkeys(["Ch 1", "Ch 2", "Ch 3", "Ch 4", "Ch 5", "Ch 6"], "ok")
    assert "S/Ch 0.cbz: no pages in it" in result.stderr
    assert "S/Ch 0.5.cbz: no pages in it" in result.stderr
    record = json.loads((out / "Ch 5.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in record["pages"]] == ["001.png", "002.png", "003.png", "004.png"]
    shas = [p["sha256"] for p in record["pages"]]
    assert shas[2] == shas[0] and shas[3] == shas[1] != shas[0]  # each link read as the page it stands for
    assert [s["name"] for s in record["skipped_pages"]] == ["005.png"] and "Ch 5: skipping page 005.png" in result.stderr
    assert "unfinished download (Ch 7.tar.gz.part)" in result.stderr
    six = json.loads((out / "Ch 6.json").read_text(encoding="utf-8"))  # a multi-page TIFF: read page by page
    assert [p["name"] for p in six["pages"]] == [f"scan.tif (page {k})" for k in (1, 2, 3)]
    assert "multi-page TIFF" not in result.stderr
    alone = cli("describe", series / "Ch 3.tgz", "-o", tmp_path / "alone", "--model", "builtin", "--json",
                timeout=120)
    assert alone.returncode == 0 and json.loads(alone.stdout)["sections"][0]["name"] == "Ch 3"


def test_a_page_packed_under_a_latin1_name_in_a_tar_is_located_by_its_record(tmp_path):
    """A tar written with Latin-1 names (`Épisode/001.png`): the record's member was `\\ufffdpisode/001.png`, which
    names nothing, so once the thumbnail cache was cleared the listening page had no page pictures."""
    book = tmp_path / "in" / "Bonjour.cbt"
    book.parent.mkdir()
    with tarfile.open(book, "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tf:
        for k, page in enumerate(sorted((SAMPLES / "calm").iterdir())[:2], start=1):
            tf.add(page, f"\u00c9pisode/{k:03d}.png")
    out = tmp_path / "out"
    assert cli("run", book.parent, "-o", out, *BUILTIN, timeout=120).returncode == 0
    record = json.loads((out / "Bonjour.json").read_text(encoding="utf-8"))
    assert [bytes.fromhex(p["member_bytes"]) for p in record["pages"]] == [b"\xc9pisode/001.png",
                                                                            b"\xc9pisode/002.png"]
    shutil.rmtree(out / ".manga2music" / "thumbs")  # a cache: the page's pictures are made again from the record
    assert cli("run", book.parent, "-o", out, *BUILTIN, timeout=120).returncode == 0
    assert (out / "index.html").read_text(encoding="utf-8").count("data:image/jpeg;base64,") == 2


@needs_bsdtar
def test_a_volume_packed_as_a_tar_gz_is_named_once_as_the_same_volume_as_a_tar_is(tmp_path):
    """`Vol.06.tar.gz` holding `Vol.06/Ch 9/`: its chapters were named `Vol.06/Vol.06/Ch 9` (the volume's own folder
    was compared with `Vol.06.tar`), where `Vol.06.tar` gives `Vol.06/Ch 9`."""
    stage = tmp_path / "stage"
    for chapter in ("Ch 9", "Ch 10"):
        shutil.copytree(SAMPLES / "calm", stage / "Vol.06" / chapter)
    names = {}
    for ending, mode in ((".tar", "w"), (".tar.gz", "w:gz"), (".tar.xz", "w:xz")):
        book = tmp_path / f"Vol.06{ending}"
        with tarfile.open(book, mode) as tf:
            tf.add(stage / "Vol.06", "Vol.06")
        names[ending] = [s.name for s in find_sections([book])]
    assert names[".tar"] == names[".tar.gz"] == names[".tar.xz"] == ["Vol.06/Ch 9", "Vol.06/Ch 10"]


@needs_bsdtar
def test_names_bsdtar_lists_escaped_are_read_as_packed_in_a_7z_and_a_compressed_tar(tmp_path):
    """bsdtar lists a Latin-1 name as `Caf\\351 1.png`, a tab as `\\t` and a backslash as `\\\\`: the tar.gz of
    `Café 1.png`, `Café 2.png` failed "no readable page among 2", and a 7z holding `002 tab<TAB>x.png` gained a
    false chapter `c/Ch 1/002 tab` (failed) and lost the page, while a zip or a plain tar read them."""
    page = (SAMPLES / "calm" / "001.png").read_bytes()
    latin = tmp_path / "in" / "latin.tar.gz"
    latin.parent.mkdir()
    with tarfile.open(latin, "w:gz", format=tarfile.GNU_FORMAT, encoding="latin-1") as tf:
        for name in ("Caf\u00e9 1.png", "Caf\u00e9 2.png"):
            info = tarfile.TarInfo(name)
            info.size = len(page)
            tf.addfile(info, io.BytesIO(page))
    scratch = tmp_path / "scratch" / "Ch 1"
    scratch.mkdir(parents=True)
    for name in ("001.png", "002 tab\tx.png", "003 new\nline.png"):
        (scratch / name).write_bytes(page)
    subprocess.run([BSDTAR, "-c", "-f", str(tmp_path / "in" / "c.cb7"), "--format", "7zip", "Ch 1"],
                   cwd=scratch.parent, check=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    sections = {s.name: s for s in find_sections([latin.parent])}
    assert sorted(sections) == ["c", "latin"], sorted(sections)
    assert [p.name for p in sections["c"].pages] == ["001.png", "002 tab\tx.png", "003 new\nline.png"]
    assert [p.member.encode("utf-8", "surrogateescape") for p in sections["latin"].pages] == [
        b"Caf\xe9 1.png", b"Caf\xe9 2.png"]
    assert all(p.read_bytes() == page for s in sections.values() for p in s.pages)


@needs_bsdtar
def test_pages_without_an_extension_are_read_from_a_7z_and_a_compressed_tar_as_from_a_zip(tmp_path):
    """`001`, `002` and `003.png` packed in a 7z or a tar.gz: only `003.png` was read, without a word (bsdtar's
    listing gives no sizes, and a page without an extension was looked at only when its size was known)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for name, sample in (("001", "001.png"), ("002", "002.png"), ("003.png", "003.jpg")):
        (scratch / name).write_bytes((SAMPLES / "calm" / sample).read_bytes())
    (scratch / "README").write_text("scanned by someone\n", encoding="utf-8")  # no page, and not one
    books = tmp_path / "in"
    books.mkdir()
    subprocess.run([BSDTAR, "-c", "-f", str(books / "a.cb7"), "--format", "7zip", "001", "002", "003.png", "README"],
                   cwd=scratch, check=True)
    subprocess.run([BSDTAR, "-c", "-z", "-f", str(books / "b.tar.gz"), "001", "002", "003.png", "README"],
                   cwd=scratch, check=True)
    with zipfile.ZipFile(books / "c.cbz", "w") as zf:
        for name in ("001", "002", "003.png", "README"):
            zf.write(scratch / name, name)
    found = {s.name: [p.name for p in s.pages] for s in find_sections([books])}
    assert found == {"a": ["001", "002", "003.png"], "b": ["001", "002", "003.png"],
                     "c": ["001", "002", "003.png"]}, found


def test_a_fifo_or_device_named_as_a_page_in_a_tar_is_a_page_skipped_in_words_as_in_a_compressed_tar(tmp_path):
    """A plain tar dropped them without a word (its record said no page was skipped); a tar.gz named each."""
    page = (SAMPLES / "calm" / "001.png").read_bytes()
    book = tmp_path / "in" / "odd.cbt"
    book.parent.mkdir()
    with tarfile.open(book, "w") as tf:
        info = tarfile.TarInfo("001.png")
        info.size = len(page)
        tf.addfile(info, io.BytesIO(page))
        for name, kind in (("002.png", tarfile.FIFOTYPE), ("003.png", tarfile.CHRTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            tf.addfile(info)
    out = tmp_path / "out"
    result = cli("run", book.parent, "-o", out, *BUILTIN, timeout=120)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "odd.json").read_text(encoding="utf-8"))
    assert [Path(s["source"]).name for s in record["skipped_pages"]] == ["odd.cbt!002.png", "odd.cbt!003.png"]
    assert "002.png" in result.stderr and "not a plain file" in result.stderr, result.stderr


@needs_bsdtar
def test_a_7z_with_a_japanese_name_is_read_where_the_locale_asked_for_is_not_installed(tmp_path):
    """`LANG=en_US.UTF-8` from a Mac over ssh, on a server that has only C.UTF-8: every 7z and tar.gz whose names
    are not ASCII failed "cannot read this 7-Zip archive (Failed to set default locale); extract it with another
    program"."""
    chapter = tmp_path / "scratch" / "\u7b2c1\u8a71"
    chapter.mkdir(parents=True)
    for k in (1, 2):
        (chapter / f"\u30da\u30fc\u30b8{k}.png").write_bytes((SAMPLES / "calm" / f"00{k}.png").read_bytes())
    books = tmp_path / "in"
    books.mkdir()
    subprocess.run([BSDTAR, "-c", "-f", str(books / "ch.cb7"), "--format", "7zip", chapter.name],
                   cwd=chapter.parent, check=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    env = {k: v for k, v in cli_env().items() if k != "LANG" and not k.startswith("LC_")}
    missing = subprocess.run([BSDTAR, "--version"], capture_output=True, env={**env, "LANG": "xx_XX.UTF-8"})
    assert b"Failed to set default locale" in missing.stderr  # a locale no machine has
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "manga2music", "run", str(books), "-o", str(out), *BUILTIN,
                             "--json"], capture_output=True, text=True, env={**env, "LANG": "xx_XX.UTF-8"},
                            timeout=120)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "ch.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in record["pages"]] == ["\u30da\u30fc\u30b81.png", "\u30da\u30fc\u30b82.png"]
