"""Readings kept between runs: a page is read once while its pixels and the reader stay the same, and a reading
found is the reading the page would get now."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from PIL import ImageDraw

from manga2music import reading, reading_cache
from manga2music.reading import read_pages
from test_reading import _page_with_big_line, talk_page


@pytest.fixture
def tiles_read(monkeypatch) -> list:
    """Every tile the reader reads (detection and measures), as it is read."""
    seen: list = []
    real = reading._read_tile

    def counted(tile):
        seen.append(tile.size)
        return real(tile)

    monkeypatch.setattr(reading, "_read_tile", counted)
    return seen


@pytest.fixture(autouse=True)
def fresh_reader(monkeypatch):
    """Each test computes the reader's key and prunes as a new process would."""
    monkeypatch.setattr(reading_cache, "_reader", None)
    monkeypatch.setattr(reading_cache, "_pruned", False)


def kept_files() -> list:
    return sorted(reading_cache.folder().glob("*/*.json"))


def test_a_page_read_before_is_not_read_again_and_reads_the_same(tiles_read):
    pages = [talk_page(n) for n in (1, 4, 8)]
    first = read_pages([(f"{i}.png", p) for i, p in enumerate(pages)])
    assert len(tiles_read) == 3 and len(kept_files()) == 3
    again = read_pages([(f"renamed {i}.png", p.copy()) for i, p in enumerate(pages)])
    assert len(tiles_read) == 3  # nothing read this time
    assert [r.name for r in again] == ["renamed 0.png", "renamed 1.png", "renamed 2.png"]
    for old, new in zip(first, again):
        assert new.to_dict() == {**old.to_dict(), "name": new.name}

    ImageDraw.Draw(pages[1]).rectangle([100, 700, 600, 900], outline="black", width=6)  # one page edited
    edited = read_pages([(f"{i}.png", p) for i, p in enumerate(pages)])
    assert len(tiles_read) == 4  # that page alone is read
    assert edited[1].panels != first[1].panels or edited[1].measures != first[1].measures
    assert [r.to_dict() for r in edited[::2]] == [r.to_dict() for r in first[::2]]


def test_a_strip_is_found_under_its_new_name_with_its_parts(tiles_read):
    tiles = [talk_page(3), talk_page(6)]
    first = read_pages([("strip.png#1", tiles[0]), ("strip.png#2", tiles[1])])
    again = read_pages([("episode 2.png#1", tiles[0]), ("episode 2.png#2", tiles[1])])
    assert len(tiles_read) == 2
    (old,), (new,) = first, again
    assert new.name == "episode 2.png" and new.tiles == 2
    assert [p["name"] for p in new.parts] == ["episode 2.png#1", "episode 2.png#2"]
    assert [{**p, "name": 0} for p in new.parts] == [{**p, "name": 0} for p in old.parts]


def test_a_page_at_another_size_is_read_again(tiles_read):
    page = talk_page(5)
    read_pages([("p.png", page)])
    read_pages([("p.png", page.resize((360, 500)))])
    assert len(tiles_read) == 2


def test_a_reading_made_while_the_detector_failed_is_not_kept(monkeypatch, tiles_read):
    from manga2music.describers import text_detect

    def failing(rgb):
        raise text_detect.TextDetectionError("the detector's model is damaged")

    page = talk_page(6)
    with monkeypatch.context() as m:
        m.setattr(text_detect, "detect_text", failing)
        (degraded,) = read_pages([("p.png", page)])
    assert not degraded.text_detected and "damaged" in degraded.warning
    assert kept_files() == []
    (mended,) = read_pages([("p.png", page)])  # the detector works again: the page is read, not the degraded reading
    assert len(tiles_read) == 2 and mended.text_detected and mended.text_boxes >= 6


def test_a_reading_made_while_the_recogniser_failed_is_not_kept(monkeypatch, tiles_read):
    from manga2music.describers import text_recognition

    def broken(*args, **kwargs):
        raise RuntimeError("no recognition model")

    page = _page_with_big_line("THE QUIET VILLAGE")
    with monkeypatch.context() as m:
        m.setattr(text_recognition, "recogniser", broken)
        (unread,) = read_pages([("p.png", page)])
    assert kept_files() == []
    (read,) = read_pages([("p.png", page)])
    assert len(tiles_read) == 2
    assert read.loud_text < unread.loud_text  # the heading read as words this time: not loud
    assert len(kept_files()) == 1


def test_another_reader_reads_the_pages_again(monkeypatch, tiles_read):
    page = talk_page(4)
    read_pages([("p.png", page)])
    monkeypatch.setattr(reading, "READING_MODEL_VERSION", reading.READING_MODEL_VERSION + "-next")
    monkeypatch.setattr(reading_cache, "_reader", None)  # a new process, with the new version
    read_pages([("p.png", page)])
    assert len(tiles_read) == 2 and len(kept_files()) == 2


def test_the_reader_key_changes_with_its_code_and_libraries(monkeypatch, tmp_path):
    from importlib import metadata

    base = reading_cache._reader_fingerprint()
    package = tmp_path / "package"
    for module in reading_cache.READER_MODULES:  # a copy of the reader's code, one function edited
        (package / module).parent.mkdir(parents=True, exist_ok=True)
        (package / module).write_bytes((reading_cache.Path(reading.__file__).parent / module).read_bytes())
    monkeypatch.setattr(reading_cache, "__file__", str(package / "reading_cache.py"))
    assert reading_cache._reader_fingerprint() == base
    features = package / "describers" / "page_features.py"
    features.write_text(features.read_text().replace("def ", "def _edited_", 1))
    assert reading_cache._reader_fingerprint() != base
    monkeypatch.setattr(reading_cache, "__file__", reading_cache.Path(reading.__file__).with_name("reading_cache.py"))
    real_version = metadata.version
    with monkeypatch.context() as m:
        m.setattr(metadata, "version", lambda name: "99.0" if name == "onnxruntime" else real_version(name))
        assert reading_cache._reader_fingerprint() != base
    assert reading_cache._reader_fingerprint() == base
    monkeypatch.setattr(reading_cache.platform, "machine", lambda: "arm64")  # the same folder seen from a Mac
    assert reading_cache._reader_fingerprint() != base


def test_the_cache_can_be_turned_off_or_put_elsewhere(monkeypatch, tmp_path, tiles_read):
    page = talk_page(4)
    monkeypatch.setenv("MANGA2MUSIC_READING_CACHE", "off")
    read_pages([("p.png", page)])
    read_pages([("p.png", page)])
    assert len(tiles_read) == 2
    monkeypatch.setenv("MANGA2MUSIC_READING_CACHE", str(tmp_path / "readings"))
    read_pages([("p.png", page)])
    read_pages([("p.png", page)])
    assert len(tiles_read) == 3 and len(list((tmp_path / "readings").glob("*/*.json"))) == 1


def test_a_damaged_or_unwritable_cache_only_means_reading_again(monkeypatch, tmp_path, tiles_read):
    page = talk_page(4)
    (first,) = read_pages([("p.png", page)])
    (kept,) = kept_files()
    kept.write_text('{"reading": {"name": "p.png", "energ')  # cut short (a full disk, another version)
    (again,) = read_pages([("p.png", page)])
    assert len(tiles_read) == 2 and again == first
    assert json.loads(kept.read_text())["reading"]["name"] == "p.png"  # kept anew
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MANGA2MUSIC_READING_CACHE", str(blocker / "readings"))
    (third,) = read_pages([("p.png", page)])
    assert third == first and len(tiles_read) == 3


def test_the_least_recently_used_readings_go_when_there_are_too_many(monkeypatch, tiles_read):
    pages = [talk_page(n) for n in range(1, 6)]
    read_pages([(f"{i}.png", p) for i, p in enumerate(pages)])
    files = {f.name: f for f in kept_files()}
    assert len(files) == 5
    now = time.time()
    first = reading_cache._path(reading_cache.page_key([pages[0]]))
    for age, path in enumerate(sorted(files.values())):
        old = now - (2000 if path == first else 1000 - age)  # the first page's reading is the oldest
        os.utime(path, (old, old))
    read_pages([("again.png", pages[0])])  # used now: the last to go
    assert len(tiles_read) == 5
    monkeypatch.setattr(reading_cache, "MAX_ENTRIES", 4)
    monkeypatch.setattr(reading_cache, "_pruned", False)  # a new process
    read_pages([("new.png", talk_page(9))])
    left = kept_files()
    assert len(left) <= 4
    assert sum(path.name in files for path in left) == len(left) - 1  # the new one is kept
    read_pages([("again.png", pages[0])])
    assert len(tiles_read) == 6  # the recently used page was not pruned: found, not read


def test_a_second_run_finds_the_readings_the_first_made_and_records_the_same(tmp_path, samples):
    """Two real runs into two folders: the second reads no page (its readings are the first's, used now) and
    records the same readings and descriptions."""
    import shutil

    book = tmp_path / "book"
    shutil.copytree(samples / "calm", book / "calm")
    env = {**os.environ}

    def run(out):
        done = subprocess.run([sys.executable, "-m", "manga2music", "run", str(book), "-o", str(out),
                               "--duration", "2"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads((out / "calm.json").read_text())

    first = run(tmp_path / "one")
    kept = {p: p.stat().st_mtime_ns for p in kept_files()}
    assert len(kept) == len(list((book / "calm").iterdir()))
    time.sleep(0.05)
    second = run(tmp_path / "two")
    assert {p: p.stat().st_mtime_ns for p in kept_files()}.keys() == kept.keys()
    assert all(p.stat().st_mtime_ns > t for p, t in kept.items())  # each one used by the second run
    assert second["describe"]["features"]["readings"] == first["describe"]["features"]["readings"]
    assert second["description"] == first["description"]


def test_doctor_says_where_readings_are_kept_and_how_many(monkeypatch):
    from manga2music.doctor import build_report

    read_pages([(f"{n}.png", talk_page(n)) for n in (2, 5)])
    kept = build_report(offline=True)["page_readings"]
    assert kept["folder"] == str(reading_cache.folder()) and kept["count"] == 2
    assert kept["bytes"] == sum(f.stat().st_size for f in kept_files())
    assert kept["problem"] is None
    monkeypatch.setenv("MANGA2MUSIC_READING_CACHE", "off")
    assert build_report(offline=True)["page_readings"] == {"folder": None, "count": 0, "bytes": 0, "problem": None}


def test_a_reader_changed_at_run_time_neither_finds_nor_keeps(monkeypatch, tiles_read):
    """benchmarks/photo_pages.py reads each photo once with the sheet finder switched off: that reading is not the
    reader's, so it must not be kept under the reader's key, nor be given a kept one."""
    from manga2music.describers import page_photo

    page = talk_page(5)
    read_pages([("p.png", page)])
    with reading_cache.paused(), monkeypatch.context() as m:
        m.setattr(page_photo, "as_scanned", lambda image: None)
        read_pages([("p.png", page)])
        read_pages([("q.png", talk_page(2))])
    assert len(tiles_read) == 3 and len(kept_files()) == 1
    read_pages([("p.png", page)])
    assert len(tiles_read) == 3


def test_doctors_table_says_how_many_readings_are_kept_and_where(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from manga2music.cli.app import app

    read_pages([(f"{n}.png", talk_page(n)) for n in (3, 7, 9)])

    def table() -> str:
        result = CliRunner().invoke(app, ["doctor", "--offline"], env={"COLUMNS": "250"})
        assert result.exit_code == 0
        return " ".join(result.stdout.replace("\u2502", " ").split())

    assert f"page readings 3 kept in {reading_cache.folder()}" in table()
    monkeypatch.setenv("MANGA2MUSIC_READING_CACHE", "off")
    assert "page readings not kept (MANGA2MUSIC_READING_CACHE=off): every page is read every time" in table()
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder goes")  # readings silently not kept: doctor says why
    monkeypatch.setenv("MANGA2MUSIC_READING_CACHE", str(blocker / "readings"))
    assert (f"page readings {blocker / 'readings'} cannot be made: {blocker} is a file, not a folder: every page is "
            "read every time") in table()


def test_a_fifo_where_a_reading_belongs_never_hangs_the_run(tiles_read):
    page = talk_page(4)
    key = reading_cache.page_key([page])
    path = reading_cache._path(key)
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    started = time.monotonic()
    (reading,) = read_pages([("p.png", page)])
    assert time.monotonic() - started < 60 and reading.text_boxes >= 4 and len(tiles_read) == 1


def test_a_temporary_file_left_by_a_killed_write_is_removed_by_a_later_run(tmp_path):
    """A process killed between writing a reading's temporary file and renaming it into place leaves the temporary
    file behind, and nothing else would ever remove it (the readings folder belongs to no run's output folder); a
    later run removes it once it is old, and leaves alone one that another process may be writing right now."""
    from output_checks import cli, cli_env

    from manga2music.files import TEMP_NAME, _create_temp

    talk_page(3).save(tmp_path / "3.png")
    killed_at_rename = (  # a real run of read_pages, killed (SIGKILL) where it renames a reading into place
        "import os, signal, sys\n"
        "from manga2music.reading import read_pages\n"
        "rename = os.replace\n"
        "def replace(src, dst):\n"
        "    if str(dst).endswith('.json'):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return rename(src, dst)\n"
        "os.replace = replace\n"
        "read_pages([sys.argv[1]])\n")
    done = subprocess.run([sys.executable, "-c", killed_at_rename, str(tmp_path / "3.png")], env=cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    left = [p for p in reading_cache.folder().glob("*/*") if TEMP_NAME.match(p.name)]
    assert len(left) == 1 and left[0].stat().st_size > 0 and not kept_files()
    abandoned = left[0]
    hours_ago = time.time() - 2 * 3600
    os.utime(abandoned, (hours_ago, hours_ago))
    being_written = _create_temp(abandoned.parent / "another.json")  # another process, writing now

    talk_page(5).save(tmp_path / "5.png")
    done = cli("describe", tmp_path / "5.png", "-o", tmp_path / "out", "--model", "builtin")
    assert done.returncode == 0, done.stderr
    assert not abandoned.exists()
    assert being_written.exists()
    assert len(kept_files()) == 1  # the second run's page


def test_read_page_finds_what_a_run_kept_and_keeps_what_it_reads(tmp_path, tiles_read):
    page = talk_page(6)
    page.save(tmp_path / "6.png")
    first = reading.read_page(tmp_path / "6.png")  # a page file, read as a run reads it
    assert len(tiles_read) == 1 and len(kept_files()) == 1
    found = read_pages([tmp_path / "6.png"])[0]
    again = reading.read_page(page.copy(), name="six.png")
    assert len(tiles_read) == 1  # neither read it again
    assert found.to_dict() == first.to_dict()
    assert again.to_dict() == {**first.to_dict(), "name": "six.png"}
