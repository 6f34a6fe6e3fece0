"""Pages flow through a section: a describer holds a page or two at a time, never the whole section (issue #16)."""

from __future__ import annotations

import gc
import json
import re
import weakref
from pathlib import Path

import pytest
from chapters import make_chapter

import manga2music.pages as pages_mod
from manga2music.describers.builtin import BuiltinDescriber
from manga2music.pages import PageStream, probe_page
from manga2music.reading import reading_threads
from manga2music.sections import Page


@pytest.fixture
def twelve_pages(tmp_path) -> list[Path]:
    make_chapter(tmp_path / "ch", [("calm", 6), ("action", 6)], seed=12)
    return sorted((tmp_path / "ch").iterdir())


def test_the_builtin_describer_holds_at_most_a_page_per_reading_thread_and_one_more(twelve_pages, monkeypatch):
    refs: list = []
    real = pages_mod.decode_page

    def tracked(info, **kw):
        tiles = real(info, **kw)
        refs.extend(weakref.ref(tile) for tile in tiles)  # PIL images are unhashable: plain weak references
        return tiles

    monkeypatch.setattr(pages_mod, "decode_page", tracked)
    stream = PageStream([probe_page(Page(p.name, p)) for p in twelve_pages], max_side=1280)
    held = []

    def progress(done, total, label):
        gc.collect()
        held.append(sum(1 for r in refs if r() is not None))

    result = BuiltinDescriber().describe(stream, progress=progress)
    assert len(held) == 12 and result.features["pages"] == 12
    # a page per thread reading and the one being handed on, whatever the section's length (3 on two cores)
    assert max(held) <= reading_threads() + 1 < 12



def test_reading_page_files_holds_at_most_a_page_per_reading_thread_and_one_more(twelve_pages, monkeypatch):
    """The per-page API given a chapter's files decodes each when it is read, not the whole chapter first."""
    from manga2music.reading import read_pages

    refs: list = []
    real = pages_mod.decode_page

    def tracked(info, **kw):
        tiles = real(info, **kw)
        refs.extend(weakref.ref(tile) for tile in tiles)
        return tiles

    monkeypatch.setattr(pages_mod, "decode_page", tracked)
    held, seen = [], []

    def progress(done, total, name):
        gc.collect()
        held.append(sum(1 for r in refs if r() is not None))
        seen.append((done, total, name))

    readings = read_pages(twelve_pages, progress=progress)
    assert [r.name for r in readings] == [p.name for p in twelve_pages]
    assert seen == [(k, 12, p.name) for k, p in enumerate(twelve_pages, start=1)]
    assert max(held) <= reading_threads() + 1 < 12


def test_pages_read_on_several_threads_read_as_on_one(twelve_pages, monkeypatch):
    """Readings do not depend on how many cores the machine has: a chapter read on three threads, and a tall strip
    whose tiles are read side by side, give the readings of one thread, in the pages' order."""
    from PIL import Image

    import manga2music.reading as reading
    from manga2music.reading import read_pages

    strip = twelve_pages[0].parent / "strip.png"
    tiles = [Image.open(p).convert("RGB") for p in twelve_pages[:5]]
    joined = Image.new("RGB", (tiles[0].width, sum(t.height for t in tiles)), "white")
    for k, tile in enumerate(tiles):
        joined.paste(tile, (0, sum(t.height for t in tiles[:k])))
    joined.save(strip)
    files = [*twelve_pages, strip]

    monkeypatch.setattr(reading, "reading_threads", lambda: 1)
    alone = [r.to_dict() for r in read_pages(files)]
    monkeypatch.setattr(reading, "reading_threads", lambda: 3)
    side_by_side = [r.to_dict() for r in read_pages(files)]
    assert [r["name"] for r in side_by_side] == [p.name for p in files]
    assert len(alone[-1]["parts"]) > 1  # the strip was read as tiles
    assert side_by_side == alone


def test_probing_reads_headers_only_and_a_pdf_page_is_never_rendered(tmp_path, monkeypatch):
    from PIL import Image

    pdf = tmp_path / "book.pdf"
    Image.new("RGB", (600, 900), "white").save(pdf, save_all=True,
                                               append_images=[Image.new("RGB", (600, 900), "gray")])
    rendered = []
    monkeypatch.setattr(pages_mod, "render_pdf_page", lambda *a, **k: rendered.append(a) or Image.new("RGB", (8, 8)))
    from manga2music.sections import find_sections

    [section] = find_sections([pdf])
    infos = [probe_page(p) for p in section.pages]
    assert rendered == [] and len({i.sha256 for i in infos}) == 1  # the PDF file's hash, with the page number
    list(PageStream(infos, max_side=512))
    assert len(rendered) == 2  # once each, when described


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_probing_a_page_decodes_none_of_its_pixels_even_to_find_its_orientation(tmp_path, monkeypatch, fmt):
    from PIL import Image, ImageFile

    exif = Image.Exif()
    exif[0x0112] = 6
    for name, tag in (("plain", None), ("turned", exif)):
        Image.new("RGB", (60, 90), "gray").save(tmp_path / f"{name}.{fmt.lower()}", format=fmt,
                                                **({"exif": tag} if tag is not None else {}))
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.format) or real_load(self))
    plain = probe_page(Page("plain", tmp_path / f"plain.{fmt.lower()}"))
    turned = probe_page(Page("turned", tmp_path / f"turned.{fmt.lower()}"))
    assert decoded == []
    assert (plain.size, plain.orientation) == ((60, 90), 1) and (turned.size, turned.orientation) == ((90, 60), 6)


def test_one_image_opened_lazily_and_given_as_two_tiles_reads_every_time():
    """With the tiles read on threads, one Pillow image given twice (not yet decoded) was decoded by two threads at
    once: a bare AssertionError from inside Pillow about half the time."""
    from PIL import Image

    from manga2music.reading import read_pages

    page = Path(__file__).resolve().parent.parent / "samples" / "calm" / "001.png"
    for _ in range(8):
        image = Image.open(page)
        [reading] = read_pages([("a.png#1", image), ("a.png#2", image)])
        assert reading.name == "a.png" and len(reading.parts) == 2


def test_a_page_whose_name_ends_in_a_number_sign_and_digits_is_a_page_named_as_given():
    """ "issue #5" and "issue #6" were taken for tiles 5 and 6 of a strip "issue ": merged into one reading with the
    number cut off.  Only tiles numbered from #1, one after another, make a strip."""
    from PIL import Image

    from manga2music.reading import read_pages

    image = Image.open(Path(__file__).resolve().parent.parent / "samples" / "calm" / "001.png").convert("RGB")
    names = ["issue #5", "issue #6", "Vol.1 #03", "strip#1", "strip#2", "strip#4", "Page #1", "Page #2"]
    readings = read_pages(list(zip(names, [image] * len(names))))
    assert [r.name for r in readings] == ["issue #5", "issue #6", "Vol.1 #03", "strip", "strip#4", "Page #1",
                                          "Page #2"]  # ("Page #1", "Page #2": pages, not the tiles of "Page ")
    assert len(readings[3].parts) == 2 and not readings[0].parts and not readings[5].parts


def test_a_pil_image_reads_as_its_file_does_transparent_or_turned(tmp_path):
    """A caller's PIL image (read_pages, and read_page too) was read as it was: transparent paper as black (energy 0.15, no text found, where the
    file read 148 characters) and a page stored sideways with its EXIF orientation measured sideways."""
    import numpy as np
    from PIL import Image

    from manga2music.reading import read_page, read_pages

    page = Image.open(Path(__file__).resolve().parent.parent / "samples" / "calm" / "001.png").convert("L")
    ink = np.asarray(page) < 128
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[ink, 3] = 255  # black ink, and paper that is transparent
    transparent = tmp_path / "transparent.png"
    Image.fromarray(rgba, "RGBA").save(transparent)
    sideways = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    page.convert("RGB").transpose(Image.Transpose.ROTATE_90).save(sideways, exif=exif, quality=95)

    for path in (transparent, sideways):
        [from_file] = read_pages([path])
        [from_image] = read_pages([(path.name, Image.open(path))])
        assert from_file.text_chars > 20  # the text was found, so the comparison can tell a black page
        assert from_image.to_dict() == from_file.to_dict()
        assert read_page(Image.open(path), path.name).to_dict() == from_file.to_dict()  # one page alone too


def test_what_is_no_page_is_a_clear_error_and_one_image_alone_is_one_page():
    """read_pages([1]) and read_page(None) failed deep inside with "AttributeError: 'int' object has no attribute
    'mode'", a 0 x 0 image with ZeroDivisionError, and one image given alone with "not iterable"."""
    from PIL import Image

    from manga2music.reading import read_page, read_pages

    image = Image.open(Path(__file__).resolve().parent.parent / "samples" / "calm" / "001.png")
    assert [r.name for r in read_pages(image)] == ["001.png"]  # named after its file
    for bad, error, said in (([image, 1], TypeError, "page 2: a page is a PIL image"),
                             ([("cover", None)], TypeError, "cover: a page is a PIL image"),
                             ([Image.new("RGB", (0, 0))], ValueError, "page 1: an empty image (0 x 0 pixels)")):
        with pytest.raises(error, match=re.escape(said)):
            read_pages(bad)
    with pytest.raises(TypeError, match="not NoneType"):
        read_page(None)


def test_a_page_changed_after_it_was_probed_is_skipped_not_described_under_its_old_hash(tmp_path):
    """A page still being written when the run probed it (a downloader or a sync client finishing the chapter), or
    edited during the run, was described as it read later, while the record kept the hash of what was probed: the
    record did not locate what was described (and the thumbnail cache, keyed by that hash, kept the new picture
    under the old page's name).  Such a page is skipped, saying why; the next run reads it as it is."""
    import shutil

    import manga2music
    from manga2music.sections import file_sha256

    samples = Path(__file__).resolve().parent.parent / "samples"
    chapter = tmp_path / "ch"
    shutil.copytree(samples / "calm", chapter)
    page = chapter / "002.png"
    changed = []

    def step(done, total, label):
        if label == "pages read" and not changed:  # probed: now the page changes on disk, before it is decoded
            shutil.copy(samples / "action" / "002.png", page)
            changed.append(file_sha256(page))

    out = tmp_path / "out"
    manga2music.describe([chapter], out, model="builtin", callbacks=manga2music.Callbacks(step=step))
    assert changed, "the page was never changed: nothing was tested"
    record = json.loads((out / "ch.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in record["pages"]] == ["001.png", "003.jpg"]
    assert [s["error"] for s in record["skipped_pages"]] == [f"{page}: changed while this run read it (a file still "
                                                           "being written, or edited): run again to read it as it is"]
    again = manga2music.describe([chapter], out, model="builtin")
    assert again["sections"][0]["status"] == "ok"
    record = json.loads((out / "ch.json").read_text(encoding="utf-8"))
    assert {p["name"]: p["sha256"] for p in record["pages"]}["002.png"] == changed[0]


def png_page(path: Path, shade: int) -> None:
    from PIL import Image

    Image.new("RGB", (60, 80), (shade, shade, shade)).save(path)


def test_a_page_gone_before_its_bytes_travel_to_another_machine_is_a_skipped_page_there(tmp_path):
    """With --ray the driver sends each page's bytes to the worker that describes it; a page deleted (or changed)
    after it was probed raised out of the driver's loop instead of being a skipped page, as it is in a local run."""
    from manga2music.describing import DescribeWork, page_payload

    pages = [tmp_path / name for name in ("1.png", "2.png", "3.png")]
    for k, path in enumerate(pages):
        png_page(path, shade=40 * k)
    infos = [probe_page(Page(p.name, p)) for p in pages]
    pages[1].unlink()
    png_page(pages[2], shade=200)
    payload = page_payload(DescribeWork(infos, [], "key"), page_side=None)
    stream = PageStream(infos, datas=payload)
    assert [image.name for image in stream] == ["1.png"]
    assert [s["error"].split(": ", 1)[1] for s in stream.skipped] == [
        "cannot read (No such file or directory)",
        "changed while this run read it (a file still being written, or edited): run again to read it as it is"]


def test_a_webtoon_episode_saved_as_one_pdf_page_is_cut_into_the_tiles_its_picture_is(tmp_path):
    """A strip of 800 x 12000 points was rendered with its long side 1600 pixels: 107 pixels wide, too narrow to be
    cut, so it was read as one sliver ("12 panels a page") where the same strip as a PNG is 11 page-shaped parts."""
    from output_checks import cli
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (800, 12000), "white")
    draw = ImageDraw.Draw(strip)
    for k in range(12):  # a panel with lettering every 1000 pixels
        draw.rectangle([20, k * 1000 + 20, 780, k * 1000 + 900], outline="black", width=6)
        for j in range(8):
            draw.text((60, k * 1000 + 80 + j * 40), "WHAT?! No way... " * 3, fill="black")
    (tmp_path / "png").mkdir()
    strip.save(tmp_path / "png" / "ep1.png")
    strip.save(tmp_path / "ep1.pdf", resolution=72)  # one page of 800 x 12000 points
    strip.save(tmp_path / "ep600.pdf", resolution=600)  # 96 x 1440 points: narrow in points, a strip all the same
    found = {}
    for given, out in ((tmp_path / "png", "a"), (tmp_path / "ep1.pdf", "b"), (tmp_path / "ep600.pdf", "c")):
        result = cli("describe", given, "-o", tmp_path / out, "--model", "builtin", "--json", timeout=120)
        assert result.returncode == 0, result.stderr[-1500:]
        name = json.loads(result.stdout)["sections"][0]["name"]
        record = json.loads((tmp_path / out / f"{name}.json").read_text(encoding="utf-8"))
        (page,) = record["pages"]
        found[out] = page["tiles"], page["size"][0] >= 800, record["describe"]["analysis"]["pacing"].split(",")[0]
    assert found["c"][0] == found["b"][0] == found["a"][0] == 11 and found["b"][1] and found["c"][1]
    assert "1.0 panels a part" in record["describe"]["analysis"]["pacing"]
    # a record written before 2026-12-06 (the sliver): the rerun reads the page again, in tiles, and says why
    path = tmp_path / "b" / "ep1.json"
    old = json.loads(path.read_text(encoding="utf-8"))
    old["pages"][0].update(size=[107, 1600], tiles=1)
    path.write_text(json.dumps(old), encoding="utf-8")
    again = cli("describe", tmp_path / "ep1.pdf", "-o", tmp_path / "b", "--model", "builtin", "--json", timeout=120)
    assert json.loads(again.stdout)["sections"][0]["status"] == "ok", again.stderr[-1500:]
    assert "ep1: describing again: 1 page read in page-sized tiles now" in again.stderr
    assert json.loads(path.read_text(encoding="utf-8"))["pages"][0]["tiles"] == 11
    rerun = cli("describe", tmp_path / "ep1.pdf", "-o", tmp_path / "b", "--model", "builtin", "--json", timeout=120)
    assert json.loads(rerun.stdout)["sections"][0]["status"] == "skipped"


def test_a_page_read_alone_is_named_after_its_file_or_as_read_pages_names_it(tmp_path):
    """`read_page(Image.open("03.png"))` gave a reading named "" (and a plain image too), where `read_pages` names
    the same image "page 1": a program listing its readings had no name to show. An image opened from a file is
    named after it, by both."""
    from PIL import Image

    from manga2music.reading import read_page, read_pages

    Image.new("RGB", (300, 420), "white").save(tmp_path / "03.png")
    with Image.open(tmp_path / "03.png") as opened:
        assert read_page(opened).name == "03.png"
        assert [r.name for r in read_pages([opened, Image.new("RGB", (300, 420), "white")])] == ["03.png", "page 2"]
    assert read_page(Image.new("RGB", (300, 420), "white")).name == "page 1"
    assert read_page(Image.new("RGB", (300, 420), "white"), "cover").name == "cover"


def test_a_named_pair_or_a_folder_given_to_read_page_is_read_or_said_plainly(tmp_path):
    """`read_page(("p.png", image))`, a pair as read_pages takes, was refused with "for several page files use
    read_pages"; `read_pages("chapter")`, a folder as every command takes, was "not a regular file (not a file)"."""
    from PIL import Image

    from manga2music.errors import PageError
    from manga2music.reading import read_page, read_pages

    page = Image.new("RGB", (300, 420), "white")
    assert read_page(("p.png", page)).name == "p.png"
    (tmp_path / "chapter").mkdir()
    page.save(tmp_path / "chapter" / "001.png")
    for call in (read_pages, read_page):
        with pytest.raises(PageError, match="is a folder, not a page image: give its pages' files"):
            call(tmp_path / "chapter")
