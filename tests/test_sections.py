"""Finding sections and pages: folders, archives, PDFs, ordering, odd files, bad input."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from manga2music.errors import InputError, PageError
from manga2music.pages import MAX_PIXELS, decode_page, load_page, probe_page, to_rgb
from manga2music.sections import find_sections


def png(path: Path, size=(40, 60), mode="L", color=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def names(sections):
    return {s.name: [p.name for p in s.pages] for s in sections}


def test_nested_folders_natural_order_and_mixed_case(tmp_path):
    root = tmp_path / "chapter"
    for name in ("page10.PNG", "page2.jpg", "page1.Jpeg", "page3.webp"):
        png(root / "part1" / name, mode="RGB")
    png(root / "part1" / "deeper" / "a.TIF", mode="RGB")
    png(root / "cover.png")  # art beside the parts, not a one-page section (see the cover test below)
    png(root / "extra.png")
    found = names(find_sections([root]))
    assert found == {
        "chapter": ["cover.png", "extra.png"],  # not only covers: the folder's own pages
        "part1": ["page1.Jpeg", "page2.jpg", "page3.webp", "page10.PNG"],
        "part1/deeper": ["a.TIF"],
    }


def test_a_page_named_like_the_next_ones_start_comes_first(tmp_path):
    """strip2.jpg was read before strip.png (character order: "2" before "."), and a1.png before a.png."""
    for name in ("strip2.jpg", "strip.png", "strip10.png", "a1.png", "a.png"):
        png(tmp_path / "ch" / name, mode="RGB")
    assert names(find_sections([tmp_path / "ch"])) == {
        "ch": ["a.png", "a1.png", "strip.png", "strip2.jpg", "strip10.png"]}


def test_chapters_and_pages_numbered_in_kanji_are_read_in_number_order(tmp_path):
    """第三話 was read before 第二話, and 第十一話 before 第十話 (character order); pages 一.png, 二.png... too, so the
    score's cues and the read-along page's "next chapter" followed that order."""
    for chapter in ("第十話", "第二話", "第十一話", "第三話", "第二十話", "第百二話", "第一話"):
        for page in ("十.png", "二.png", "一.png", "三.png", "十一.png"):
            png(tmp_path / "series" / chapter / page, mode="RGB")
    found = names(find_sections([tmp_path / "series"]))
    assert list(found) == ["第一話", "第二話", "第三話", "第十話", "第十一話", "第二十話", "第百二話"]
    assert found["第二話"] == ["一.png", "二.png", "三.png", "十.png", "十一.png"]


def test_kanji_digits_written_one_by_one_read_as_their_number(tmp_path):
    """〇〇九 (009) before 〇一〇 (010), 二〇二五年 before 二〇二六年; Arabic and full-width digits as before."""
    for chapter in ("二〇二六年", "二〇二五年", "〇一〇", "〇〇九", "12", "８"):
        png(tmp_path / "s" / chapter / "001.png", mode="RGB")
    assert list(names(find_sections([tmp_path / "s"]))) == ["８", "〇〇九", "〇一〇", "12", "二〇二五年", "二〇二六年"]


def test_volumes_in_parts_and_formal_or_large_kanji_numbers_are_read_in_their_order(tmp_path):
    """上巻 中巻 下巻 (first, middle, last volume) were read 上 下 中, and 前編 中編 後編 read 中 前 後 (character
    order); 第弐話 (the formal 2, as on old and legal texts) was read after 第拾話 (10), and 一万 after 九千; among
    plain ones (第四話), the formal ones were read after them all."""
    for chapter in ("下巻", "上巻", "中巻", "後編", "前編", "中編", "第拾話", "第参話", "第弐話", "第壱話",
                    "第四話", "第伍話", "第六話", "第拾壱話", "第十二話", "一万二千", "九千九百", "二万"):
        png(tmp_path / "series" / chapter / "001.png", mode="RGB")
    found = list(names(find_sections([tmp_path / "series"])))
    assert [n for n in found if n.endswith("巻")] == ["上巻", "中巻", "下巻"], found
    assert [n for n in found if n.endswith("編")] == ["前編", "中編", "後編"], found
    assert [n for n in found if n.endswith("話")] == ["第壱話", "第弐話", "第参話", "第四話", "第伍話", "第六話",
                                                      "第拾話", "第拾壱話", "第十二話"], found  # formal and plain
    assert [n for n in found if n in ("一万二千", "九千九百", "二万")] == ["九千九百", "一万二千", "二万"], found


def test_a_chapters_cover_is_its_first_page_in_a_folder_and_in_an_archive(tmp_path):
    """cover.jpg beside 001.jpg... was read last (digits sort before letters): the cover's music closed the score."""
    pages = ("003.jpg", "cover.jpg", "001.jpg", "002.jpg", "back cover.jpg", "credits.jpg")
    for name in pages:
        png(tmp_path / "Ch 1" / name, mode="RGB")
    archive = tmp_path / "Ch 2.cbz"
    with zipfile.ZipFile(archive, "w") as z:
        for name in pages:
            z.write(tmp_path / "Ch 1" / name, f"Ch 2/{name}")
    expected = ["cover.jpg", "001.jpg", "002.jpg", "003.jpg", "back cover.jpg", "credits.jpg"]
    assert names(find_sections([tmp_path / "Ch 1", archive])) == {"Ch 1": expected, "Ch 2": expected}


def test_hidden_and_system_files_and_other_types_are_ignored(tmp_path):
    root = tmp_path / "sec"
    png(root / "01.png")
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "._01.png").write_bytes(b"apple double")
    (root / "Thumbs.db").write_bytes(b"x")
    (root / "notes.txt").write_text("hello")
    png(root / ".hidden" / "02.png")
    assert names(find_sections([root])) == {"sec": ["01.png"]}


def test_an_output_folder_inside_the_input_is_no_chapter_but_a_chapter_written_into_still_is(tmp_path):
    png(tmp_path / "pages" / "1.png")
    png(tmp_path / "output" / "cover.jpg")  # the album art a user put beside the music for a player
    (tmp_path / "output" / "Vol 1").mkdir()  # a folder the run made for its music: no "no pages in it" line
    said: list[str] = []
    found = names(find_sections([tmp_path], exclude=[tmp_path / "output"], warn=said.append))
    assert list(found) == ["pages"] and said == []
    png(tmp_path / "output" / "001.png")  # `-o` into a chapter folder (the music beside its pages): still a chapter
    found = names(find_sections([tmp_path], exclude=[tmp_path / "output"], warn=said.append))
    assert found == {"output": ["cover.jpg", "001.png"], "pages": ["1.png"]} and said == []


def test_single_image_and_several_paths_with_clashing_names(tmp_path):
    png(tmp_path / "a" / "calm" / "1.png")
    png(tmp_path / "b" / "calm" / "1.png")
    single = png(tmp_path / "loose.png")
    found = find_sections([tmp_path / "a", tmp_path / "b", single])
    assert [s.name for s in found] == ["a/calm", "b/calm", "loose"]  # named by the folders that tell them apart
    png(tmp_path / "c" / "x" / "calm" / "1.png")
    png(tmp_path / "d" / "x" / "calm" / "1.png")
    found = find_sections([tmp_path / "c" / "x", tmp_path / "d" / "x", tmp_path / "a"])
    assert [s.name for s in found] == ["c/x/calm", "d/x/calm", "a/calm"]  # as many folders as it takes


def test_a_folder_given_again_inside_its_parent_is_one_section(tmp_path):
    png(tmp_path / "mix" / "sub" / "1.png")
    png(tmp_path / "mix" / "2.png")
    found = find_sections([tmp_path / "mix" / "sub", tmp_path / "mix", tmp_path / "mix" / "sub" / "."])
    assert names(found) == {"sub": ["1.png"], "mix": ["2.png"]}


def test_cbz_sections_by_folder_without_extracting(tmp_path):
    archive = tmp_path / "vol1.cbz"
    buf = io.BytesIO()
    Image.new("L", (30, 40), 50).save(buf, format="PNG")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ch1/p10.png", buf.getvalue())
        zf.writestr("ch1/p2.png", buf.getvalue())
        zf.writestr("ch2/p1.png", buf.getvalue())
        zf.writestr("../../evil.png", buf.getvalue())
        zf.writestr("/abs.png", buf.getvalue())
        zf.writestr("__MACOSX/ch1/._p2.png", b"junk")
    found = find_sections([archive])
    assert names(found) == {"vol1/ch1": ["p2.png", "p10.png"], "vol1/ch2": ["p1.png"]}
    loaded = load_page(found[0].pages[0])
    assert loaded.tiles[0].mode == "RGB"
    assert not (tmp_path.parent / "evil.png").exists() and not Path("/abs.png").exists()


def test_zip_bomb_declared_size_is_refused(tmp_path, monkeypatch):
    import manga2music.sections as sections

    monkeypatch.setattr(sections, "MAX_ARCHIVE_BYTES", 10_000)
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("p1.png", b"\0" * 200_000)  # compresses to almost nothing
    [section] = find_sections([archive])  # a failed section, not a failed run
    assert section.pages == [] and "zip bomb" in section.error
    from test_epub import PICTURES, make_book  # an EPUB's pages too

    book = make_book(tmp_path / "bomb.epub", pictures={**PICTURES, "Images/zz-cover.png": b"\0" * 50_000_000})
    [section] = find_sections([book])
    assert section.pages == [] and section.error.startswith(f"{book}: pages add up to more than 0 GB uncompressed, "
                                                            "and to "), section.error
    assert "times the archive's own size; refusing it (zip bomb?)" in section.error, section.error


def test_a_big_archive_of_pages_that_do_not_compress_is_read(tmp_path, monkeypatch):
    """A volume of high-resolution pages stored in a 2.3 GB CBZ (pages add up to what the archive weighs) was
    refused as a "zip bomb?", with no way on: the same pages in a folder are read.  What a bomb is, is pages that
    unpack to many times the archive's size."""
    import io

    import numpy as np
    from PIL import Image

    import manga2music.sections as sections

    monkeypatch.setattr(sections, "MAX_ARCHIVE_BYTES", 100_000)  # 2 GB, scaled down with the pages
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 255, (120, 100, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "PNG", compress_level=0)
    archive = tmp_path / "Big Volume 01.cbz"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for i in range(1, 5):
            zf.writestr(f"{i:03d}.png", buffer.getvalue())
    assert sum(i.file_size for i in zipfile.ZipFile(archive).infolist()) > sections.MAX_ARCHIVE_BYTES
    [section] = find_sections([archive])
    assert section.error is None and [p.name for p in section.pages] == ["001.png", "002.png", "003.png", "004.png"]
    assert load_page(section.pages[3]).tiles[0].size == (100, 120)


def test_a_zip_entry_is_read_up_to_its_limit_and_not_a_byte_more(tmp_path):
    """The one bounded reader of comic-archive pages and EPUB documents: an entry of the limit is read whole, one byte
    more is refused (None), before it is unpacked."""
    from manga2music.files import read_zip_entry

    archive = tmp_path / "pages.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fits.png", b"\1" * 1000)
        zf.writestr("over.png", b"\1" * 1001)
    with zipfile.ZipFile(archive) as zf:
        assert read_zip_entry(zf, zf.getinfo("fits.png"), 1000) == b"\1" * 1000
        assert read_zip_entry(zf, zf.getinfo("over.png"), 1000) is None


def test_pdf_pages_are_rendered(tmp_path):
    pdf = tmp_path / "book.pdf"
    pages = [Image.new("RGB", (200, 300), c) for c in ("white", "gray")]
    pages[0].save(pdf, save_all=True, append_images=pages[1:])
    found = find_sections([pdf])
    assert names(found) == {"book": ["page 1", "page 2"]}
    tile = load_page(found[0].pages[1]).tiles[0]
    assert tile.mode == "RGB" and max(tile.size) > 1000


def test_missing_path_and_no_images_say_what_was_looked_for(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        find_sections([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(InputError, match="no pages found in .*jpg.*png"):
        find_sections([tmp_path / "empty"])


@pytest.mark.parametrize("mode", ["L", "P", "1", "LA", "RGBA", "I;16", "CMYK"])
def test_every_image_mode_becomes_rgb(tmp_path, mode):
    if mode == "I;16":
        img = Image.fromarray(np.linspace(0, 65535, 40 * 30, dtype=np.uint16).reshape(40, 30))
    else:
        img = Image.new(mode, (30, 40))
    fmt = "TIFF" if mode in ("I;16", "CMYK") else "PNG"
    path = tmp_path / f"p.{fmt.lower()}"
    img.save(path, format=fmt)
    (section,) = find_sections([path])
    rgb = load_page(section.pages[0]).tiles[0]
    assert rgb.mode == "RGB" and rgb.size == (30, 40)
    if mode == "I;16":  # 16-bit is scaled, not clipped to white
        arr = np.asarray(rgb)
        assert arr.min() < 10 and arr.max() > 245


# a phone photo or a camera scan: pixels stored sideways, the EXIF Orientation tag says how every viewer shows them
STORED_SIDEWAYS = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("orientation", sorted(STORED_SIDEWAYS))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_page_stored_sideways_is_read_upright_as_every_viewer_shows_it(tmp_path, orientation, fmt):
    upright = Image.new("L", (300, 400), 255)
    upright.paste(0, (0, 0, 60, 60))  # a black square in the top-left corner of the page as it is shown
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo.{fmt.lower()}"
    upright.transpose(STORED_SIDEWAYS[orientation]).save(path, format=fmt, exif=exif)
    (section,) = find_sections([path])
    info = probe_page(section.pages[0])
    assert info.size == (300, 400) and info.orientation == orientation
    tile = np.asarray(load_page(section.pages[0]).tiles[0].convert("L"))
    assert tile.shape == (400, 300)
    assert tile[:50, :50].mean() < 40 and tile[-50:, -50:].mean() > 215 and tile[:50, -50:].mean() > 215
    # the describers get it upright too, at their own size
    (small,) = decode_page(info, max_side=200)
    assert small.size == (150, 200) and np.asarray(small.convert("L"))[:20, :20].mean() < 40


def test_transparent_page_is_laid_on_white():
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert to_rgb(img).getpixel((5, 5)) == (255, 255, 255)


def test_a_float_page_with_a_few_nan_pixels_keeps_its_picture(recwarn):
    """A float TIFF page with a few NaN pixels (a scanner's or a converter's) was cast whole from NaN: its picture
    lost, and numpy's "invalid value encountered in cast" on the terminal."""
    values = np.zeros((60, 40), np.float32)
    values[:, 20:] = 1.0  # a black half and a white half
    values[:5, :5] = np.nan
    grey = np.asarray(to_rgb(Image.fromarray(values)).convert("L"))
    assert grey[30:, :20].max() < 10 and grey[30:, 20:].min() > 245
    assert not [w for w in recwarn if "invalid value" in str(w.message)]


def test_a_link_to_an_archive_that_is_not_there_says_where_it_leads(tmp_path):
    """A chapter's `.cbz` linked from a share not mounted was "not a regular file (a FIFO, device or broken link)",
    where a folder's link says where it leads."""
    png(tmp_path / "S" / "Ch 1" / "001.png")
    (tmp_path / "S" / "Ch 2.cbz").symlink_to(tmp_path / "nas" / "Ch 2.cbz")
    sections = {s.name: s for s in find_sections([tmp_path / "S"])}
    assert sections["Ch 1"].error is None
    assert sections["Ch 2"].error == (f"{tmp_path / 'S' / 'Ch 2.cbz'}: a link to {tmp_path / 'nas' / 'Ch 2.cbz'}, "
                                      "which is not there (a drive or share not mounted?)")


def test_gif_first_frame(tmp_path):
    frames = [Image.new("P", (20, 20), i) for i in (1, 2)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    (section,) = find_sections([tmp_path / "anim.gif"])
    assert load_page(section.pages[0]).tiles[0].size == (20, 20)


def test_tall_strip_is_cut_into_page_shaped_tiles_in_order(tmp_path):
    strip = Image.new("L", (960, 11000), 255)
    for i in range(8):  # mark each band so order can be checked
        strip.paste(i * 30, (0, i * 1375, 960, i * 1375 + 10))
    strip.save(tmp_path / "strip.png")
    (section,) = find_sections([tmp_path / "strip.png"])
    tiles = load_page(section.pages[0]).tiles
    assert len(tiles) >= 8
    assert all(t.size[1] / t.size[0] <= 1.6 for t in tiles)
    assert sum(t.size[1] for t in tiles) == 11000
    assert np.asarray(tiles[0])[0, 0, 0] == 0  # top of the strip is the first tile


def test_a_narrow_ornament_is_one_picture_not_a_strip_of_tiny_pages(tmp_path):
    """A 40-pixel-wide divider 3000 pixels tall was cut into 54 "pages" of 40 x 56 pixels: 54 panels to look at,
    81 s of reading time for a decoration (a 3-pixel rule became 1191 tiles and half an hour)."""
    from manga2music.reading import read_page

    Image.new("RGB", (40, 3000), (120, 80, 40)).save(tmp_path / "divider.png")
    Image.new("RGB", (3, 5000), (0, 0, 0)).save(tmp_path / "rule.png")
    (section,) = find_sections([tmp_path])
    for page in section.pages:
        tiles = load_page(page).tiles
        assert len(tiles) == 1
        reading = read_page(tiles)
        assert reading.panels == 1 and reading.seconds <= 2 * 1.5


def test_corrupt_page_and_decompression_bomb_raise_page_errors(tmp_path, monkeypatch):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    png(tmp_path / "big.png", size=(400, 400))
    png(tmp_path / "strip.png", size=(100, 1000))
    (section,) = find_sections([tmp_path])
    pages = {p.name: p for p in section.pages}
    with pytest.raises(PageError, match="bad.png: not a readable image"):
        load_page(pages["bad.png"])
    import manga2music.pages as pages_mod

    monkeypatch.setattr(pages_mod, "MAX_PIXELS", 90 * 90)
    with pytest.raises(PageError, match="decompression bomb.*cut into parts") as strip:  # what to do with a strip
        load_page(pages["strip.png"])
    assert "chapter folder" not in str(strip.value)  # the web page has no folders
    with pytest.raises(PageError, match="decompression bomb.*save it smaller") as square:  # a page is no strip
        load_page(pages["big.png"])
    assert "strip" not in str(square.value)
    assert MAX_PIXELS > 100_000_000  # the real limit allows any real page


def test_japanese_names_are_kept(tmp_path):
    png(tmp_path / "第1話" / "ページ1.png")
    assert names(find_sections([tmp_path])) == {"第1話": ["ページ1.png"]}


def test_an_avif_page_where_pillow_cannot_read_avif_says_so(tmp_path, monkeypatch):
    """Pillow reads AVIF only when built with libavif (its wheels are); an older or slimmer build must not call the
    page 'damaged'."""
    from PIL import Image

    Image.init()  # every plugin registered first, so that taking AVIF out below stays out
    if "AVIF" not in Image.SAVE:
        pytest.skip("this Pillow cannot write AVIF to test with")
    path = tmp_path / "ch" / "001.avif"
    path.parent.mkdir()
    Image.new("RGB", (60, 80), "white").save(path)
    monkeypatch.setattr(Image, "ID", [i for i in Image.ID if i != "AVIF"])
    (section,) = find_sections([path.parent])
    with pytest.raises(PageError, match="001.avif: this Pillow cannot read AVIF images .*pip install -U pillow"):
        probe_page(section.pages[0])


def test_a_jpeg_saved_by_a_browser_as_jfif_is_a_page(tmp_path):
    """Browsers on Windows save many JPEG pages as .jfif (and some tools as .jpe); such a page was left out of its
    chapter without a word."""
    root = tmp_path / "ch"
    root.mkdir()
    for name in ("001.jpg", "002.jfif", "003.JPE"):
        Image.new("RGB", (60, 80), (200, 30, 30)).save(root / name, format="JPEG")
    (section,) = find_sections([root])
    assert [p.name for p in section.pages] == ["001.jpg", "002.jfif", "003.JPE"]
    assert all(load_page(p).tiles[0].size == (60, 80) for p in section.pages)


def _zip_with_raw_names(archive: Path, names_and_bytes: dict[bytes, bytes]) -> None:
    """A zip whose entry names are the given raw bytes, without the UTF-8 flag: as Info-ZIP on Linux, old
    Windows tools (the local code page, Shift-JIS on a Japanese Windows) and many scanners' packers write them.
    Python's zipfile always flags a non-ASCII name as UTF-8, so each is written under an ASCII stand-in of the
    same length and the bytes are put in place afterwards (in the local header and the central directory)."""
    stand_ins = {}
    with zipfile.ZipFile(archive, "w") as zf:
        for i, (raw, data) in enumerate(names_and_bytes.items()):
            stand_in = f"{i:02d}".encode() + b"#" * (len(raw) - 2)
            stand_ins[stand_in] = raw
            zf.writestr(stand_in.decode(), data)
    blob = archive.read_bytes()
    for stand_in, raw in stand_ins.items():
        assert blob.count(stand_in) == 2
        blob = blob.replace(stand_in, raw)
    archive.write_bytes(blob)


def test_archive_names_without_the_utf8_flag_are_read_as_their_packer_wrote_them(tmp_path):
    buf = io.BytesIO()
    Image.new("L", (30, 40), 50).save(buf, format="PNG")
    page = buf.getvalue()
    archive = tmp_path / "vol.cbz"
    _zip_with_raw_names(archive, {
        "第2話/001.png".encode("utf-8"): page,  # Info-ZIP on Linux, macOS tools: UTF-8, no flag
        "第2話/002.png".encode("utf-8"): page,
        "第1話/表紙.png".encode("cp932"): page,  # a Japanese Windows packer; 表 ends in the byte of "\"
        "第1話/002.png".encode("cp932"): page,
        "Müller/01.png".encode("cp437"): page,  # the zip standard's own code page stays as it is
    })
    found = find_sections([archive])
    assert names(found) == {"vol/Müller": ["01.png"], "vol/第1話": ["002.png", "表紙.png"],
                            "vol/第2話": ["001.png", "002.png"]}
    first = next(s for s in found if s.name == "vol/第1話")
    assert first.pages[1].source.endswith("vol.cbz!第1話/表紙.png")
    for section in found:  # every page is still read from the archive by the name it is stored under
        for p in section.pages:
            assert load_page(p).tiles[0].size == (30, 40)


def test_archive_names_in_decomposed_unicode_are_shown_composed(tmp_path):
    import unicodedata

    buf = io.BytesIO()
    Image.new("L", (30, 40), 50).save(buf, format="PNG")
    archive = tmp_path / "mac.cbz"
    decomposed = unicodedata.normalize("NFD", "ダンジョン/01.png")  # how macOS spells names on disk
    _zip_with_raw_names(archive, {decomposed.encode("utf-8"): buf.getvalue()})
    [section] = find_sections([archive])
    assert section.former_names == ["mac/ダンジョン"]  # its one folder, composed (the section is named "mac")
    assert section.name == "mac" and load_page(section.pages[0]).tiles[0].size == (30, 40)


def test_archive_names_take_info_zips_unicode_path_field(tmp_path):
    import struct

    buf = io.BytesIO()
    Image.new("L", (30, 40), 50).save(buf, format="PNG")
    archive = tmp_path / "ru.cbz"
    stored, meant = b"????? 1/01.png", "Глава 1/01.png".encode("utf-8")  # a packer whose code page lacks Cyrillic
    info = zipfile.ZipInfo(stored.decode("ascii"))
    info.extra = struct.pack("<HHBI", 0x7075, 5 + len(meant), 1, zipfile.crc32(stored)) + meant
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, buf.getvalue())
        info2 = zipfile.ZipInfo("????? 2/01.png")  # a field made for another name is not believed
        info2.extra = struct.pack("<HHBI", 0x7075, 5 + len(meant), 1, zipfile.crc32(b"other")) + meant
        zf.writestr(info2, buf.getvalue())
    found = find_sections([archive])
    assert names(found) == {"ru/????? 2": ["01.png"], "ru/Глава 1": ["01.png"]}
    assert load_page(found[1].pages[0]).tiles[0].size == (30, 40)


def test_an_entry_whose_name_python_read_from_the_unicode_path_field_keeps_it():
    """Python 3.12 and later read Info-ZIP's Unicode Path field themselves: the entry's ``filename`` is then the
    UTF-8 name, its stored bytes only in ``orig_filename``. Reading that ``filename`` as the stored bytes (code page
    437) raised, and on those Pythons the whole archive was "not a readable comic archive". Built here as those
    Pythons build it, so the check runs on every Python."""
    import struct

    from manga2music.sections import member_name

    stored, meant = "????? 1/01.png", "Глава 1/01.png"
    info = zipfile.ZipInfo(meant)  # filename: what Python 3.12+ takes from the field
    info.orig_filename = stored  # the bytes stored as the name, as Python reads them (cp437)
    body = meant.encode("utf-8")
    info.extra = struct.pack("<HHBI", 0x7075, 5 + len(body), 1, zipfile.crc32(stored.encode("cp437"))) + body
    assert member_name(info) == meant
    cut = zipfile.ZipInfo("Глава 2/01.png")  # a name with a NUL in its bytes is cut there, as Python cuts it
    cut.orig_filename = ("Глава 2/01.png".encode("utf-8") + b"\x00/../../x").decode("cp437")
    assert member_name(cut) == "Глава 2/01.png"


def test_an_archive_of_archives_is_one_failed_section_that_says_to_extract_it(tmp_path):
    buf = io.BytesIO()
    Image.new("L", (30, 40), 50).save(buf, format="PNG")
    chapter = tmp_path / "ch.cbz"
    with zipfile.ZipFile(chapter, "w") as zf:
        zf.writestr("p1.png", buf.getvalue())
    pack = tmp_path / "series pack.zip"  # a series packed as chapter archives: "no pages found" said nothing useful
    with zipfile.ZipFile(pack, "w") as zf:
        for name in ("Vol 1/ch10.cbz", "Vol 1/ch2.cbz", "extra.pdf", "ch3.cbz", "ch4.cbz"):
            zf.write(chapter, name)
    png(tmp_path / "loose" / "1.png")
    found = find_sections([pack, tmp_path / "loose"])
    assert [(s.name, len(s.pages)) for s in found] == [("series pack", 0), ("loose", 1)]  # the other PATH goes on
    assert found[0].error == (f"{pack}: holds ch2.cbz, ch3.cbz, ch4.cbz and 2 more, not page images; an "
                              "archive or PDF inside an archive is not read: extract it and give the folder")


def test_a_series_is_found_in_reading_order_whatever_each_chapter_is_packed_in(tmp_path):
    """Chapters kept as folders, a .cbz and a PDF side by side are read 6, 8, 10, 14: not the archives first,
    and not "Chapter 14" before "Chapter 6"."""
    volume = tmp_path / "series" / "Vol 1"
    png(volume / "Chapter 6" / "01.png")
    png(volume / "Chapter 14" / "01.png")
    with zipfile.ZipFile(volume / "Chapter 8.cbz", "w") as zf:
        zf.writestr("01.png", (volume / "Chapter 6" / "01.png").read_bytes())
    Image.new("L", (40, 60), 128).save(volume / "Chapter 10.pdf")
    png(tmp_path / "series" / "Vol 2" / "Chapter 15" / "01.png")
    found = [s.name for s in find_sections([tmp_path / "series"])]
    assert found == ["Vol 1/Chapter 6", "Vol 1/Chapter 8", "Vol 1/Chapter 10", "Vol 1/Chapter 14",
                     "Vol 2/Chapter 15"]
    # several PATHs keep the order they were given in
    found = [s.name for s in find_sections([volume / "Chapter 14", volume / "Chapter 6"])]
    assert found == ["Chapter 14", "Chapter 6"]


def test_a_linked_chapter_inside_a_series_is_read_and_a_link_loop_is_not(tmp_path):
    """`series/Ch 2 -> /elsewhere/ch2` was left out of `run series/` without a word (exit 0, "2 of 2 done"), though
    a linked archive beside it was read.  Links are followed; one back up the tree (a loop) or to a folder already
    read is not read again."""
    png(tmp_path / "series" / "Ch 1" / "001.png")
    png(tmp_path / "store" / "ch2" / "001.png")
    png(tmp_path / "store" / "ch2" / "002.png")
    (tmp_path / "series" / "Ch 2").symlink_to(tmp_path / "store" / "ch2", target_is_directory=True)
    (tmp_path / "series" / "Ch 1" / "again").symlink_to(tmp_path / "series", target_is_directory=True)  # a loop
    (tmp_path / "series" / "Ch 3").symlink_to(tmp_path / "store" / "ch2", target_is_directory=True)  # read already
    assert names(find_sections([tmp_path / "series"])) == {"Ch 1": ["001.png"], "Ch 2": ["001.png", "002.png"]}


def test_a_linked_chapter_whose_drive_is_not_there_fails_in_one_line(tmp_path):
    """A library of links to chapters on a USB drive or NAS not mounted: the broken folder link was left out
    without a word (exit 0, "1 of 1 sections done"), where a broken link named `.cbz` failed its chapter; given
    alone, it was "not a folder, image, comic archive...", with the list of image types."""
    png(tmp_path / "series" / "Ch 1" / "001.png")
    gone = tmp_path / "media" / "usb" / "Ch 2"
    (tmp_path / "series" / "Ch 2").symlink_to(gone, target_is_directory=True)
    (tmp_path / "series" / "notes.txt").symlink_to(tmp_path / "media" / "notes.txt")  # no chapter: not said
    (tmp_path / "series" / "Ch.Extra").symlink_to(tmp_path / "media" / "extra")  # a chapter, named with a dot
    found = {s.name: s for s in find_sections([tmp_path / "series"])}
    assert set(found) == {"Ch 1", "Ch 2", "Ch.Extra"} and found["Ch 1"].error is None
    assert "a link to" in found["Ch.Extra"].error
    assert found["Ch 2"].pages == [] and found["Ch 2"].error == \
        f"{tmp_path / 'series' / 'Ch 2'}: a link to {gone}, which is not there (a drive or share not mounted?)"
    with pytest.raises(InputError, match="a link to .*, which is not there") as given:
        find_sections([tmp_path / "series" / "Ch 2"])
    assert "image types" not in str(given.value.hint or "")
    (tmp_path / "series" / "Ch 3").symlink_to("Ch 3")  # `ln -s "Ch 3" "series/Ch 3"`: a loop, no drive unmounted
    assert {s.name: s for s in find_sections([tmp_path / "series"])}["Ch 3"].error == \
        f"{tmp_path / 'series' / 'Ch 3'}: a link to Ch 3, which leads back to itself (a loop of links)"


def test_a_hidden_folder_that_holds_pages_is_said_and_one_in_an_archive_is_read(tmp_path):
    """`.hack//Legend of the Twilight` (a real title) in a library was left out without a word, and a .cbz whose
    pages sit in a folder of that name was "no pages found" though it holds them.  A folder whose name starts
    with a dot is hidden, and stays unread (a user's `.old` copy of a chapter), but one that holds pages is said;
    a repository's or a viewer's own hidden folders are not.  In an archive such a folder is read."""
    png(tmp_path / "lib" / ".hack Legend of the Twilight" / "Chapter 1" / "001.png")
    png(tmp_path / "lib" / "Naruto" / "Chapter 1" / "001.png")
    png(tmp_path / "lib" / ".thumbnails" / "normal" / "abc.png")  # an image viewer's
    png(tmp_path / "lib" / "Naruto" / "Chapter 1" / ".@__thumb" / "001.png")  # a QNAP NAS's
    png(tmp_path / "lib" / ".recycle" / "Old Chapter" / "001.png")  # a Samba share's
    (tmp_path / "lib" / ".git" / "objects").mkdir(parents=True)
    said: list[str] = []
    assert names(find_sections([tmp_path / "lib"], warn=said.append)) == {"Naruto/Chapter 1": ["001.png"]}
    assert said == [f"Skipping {tmp_path / 'lib' / '.hack Legend of the Twilight'}: a hidden folder (its name starts "
                    "with a dot) that holds pages; give it as a PATH to read it"], said
    given = find_sections([tmp_path / "lib" / ".hack Legend of the Twilight"])
    assert [s.name for s in given] == ["Chapter 1"]
    book = tmp_path / "hack vol1.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        for name in (".hack Legend of the Twilight/001.png", ".hack Legend of the Twilight/002.png"):
            buf = io.BytesIO()
            Image.new("L", (40, 60), 100).save(buf, "PNG")
            zf.writestr(name, buf.getvalue())
        zf.writestr("__MACOSX/.hack Legend of the Twilight/._001.png", b"apple double")
    (section,) = find_sections([book])
    assert [p.name for p in section.pages] == ["001.png", "002.png"], section
    kept = tmp_path / "ch6.cbz"  # beside the pages of a chapter, a hidden folder (a `.old` copy, a NAS's
    with zipfile.ZipFile(kept, "w") as zf:  # thumbnails) is no chapter: it was read as one after the change above
        for name in ("001.png", "002.png", ".old/001.png", ".@__thumb/001.png"):
            buf = io.BytesIO()
            Image.new("L", (40, 60), 100).save(buf, "PNG")
            zf.writestr(name, buf.getvalue())
    assert names(find_sections([kept])) == {"ch6": ["001.png", "002.png"]}


def test_a_link_to_a_chapter_of_the_series_leaves_the_chapter_where_it_is(tmp_path):
    """`S/Bonus/Favourite -> ../Vol 02/Chapter 2`: the link came first in reading order and took the chapter's name
    and place, and `Vol 02` was said to be "empty"; once the link broke, the chapter was made again as a new one."""
    png(tmp_path / "S" / "Vol 01" / "Chapter 1" / "001.png")
    png(tmp_path / "S" / "Vol 02" / "Chapter 2" / "001.png")
    (tmp_path / "S" / "Bonus").mkdir()
    (tmp_path / "S" / "Bonus" / "Favourite").symlink_to(Path("..") / "Vol 02" / "Chapter 2", target_is_directory=True)
    said: list[str] = []
    assert list(names(find_sections([tmp_path / "S"], warn=said.append))) == ["Vol 01/Chapter 1", "Vol 02/Chapter 2"]
    assert said == []  # neither Vol 02 nor Bonus is "empty"


def test_a_linked_folder_is_named_as_the_user_named_the_link(tmp_path, monkeypatch):
    """A library of links (``~/manga/Rasetsu Hunter -> /mnt/nas/scans/ja``) is named by the links, not by the
    folders they point at; ``.`` and ``..`` still stand for the folders they are."""
    png(tmp_path / "store" / "ja" / "001.png")
    png(tmp_path / "store" / "ja" / "sub" / "002.png")
    (tmp_path / "Rasetsu Hunter").symlink_to(tmp_path / "store" / "ja", target_is_directory=True)
    assert names(find_sections([tmp_path / "Rasetsu Hunter"])) == {"Rasetsu Hunter": ["001.png"], "sub": ["002.png"]}
    monkeypatch.chdir(tmp_path / "store" / "ja" / "sub")
    assert list(names(find_sections([Path("..")]))) == ["ja", "sub"]
    assert list(names(find_sections([Path(".")]))) == ["sub"]


def test_a_cover_beside_chapter_folders_is_not_a_chapter(tmp_path):
    """`S/cover.jpg` (or a volume's `folder.jpg`), as library managers keep them beside the chapters, was a chapter
    of one page with its own track, listed before the volume's chapters.  Given alone, or among pages, it is read."""
    for rel in ("S/cover.jpg", "S/Vol 01/folder.png", "S/Vol 01/Ch 1/001.png", "S/Vol 01/Ch 2/001.png",
                "S/Vol 02/Cover_vol2.jpg", "S/Vol 02/Ch 3.cbz", "S/oneshot/cover.png", "S/oneshot/002.png"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".cbz":
            with zipfile.ZipFile(path, "w") as zf:
                buf = io.BytesIO()
                Image.new("L", (30, 40), 50).save(buf, format="PNG")
                zf.writestr("001.png", buf.getvalue())
        else:
            Image.new("RGB", (30, 40), "white").save(path)
    found = find_sections([tmp_path / "S"])
    assert sorted(s.name for s in found) == ["Vol 01/Ch 1", "Vol 01/Ch 2", "Vol 02/Ch 3", "oneshot"]
    oneshot = next(s for s in found if s.name == "oneshot")
    assert [p.name for p in oneshot.pages] == ["cover.png", "002.png"]  # a chapter's own cover page stays, first
    assert [s.name for s in find_sections([tmp_path / "S" / "cover.jpg"])] == ["cover"]


def test_in_an_archive_a_cover_beside_chapters_is_not_a_chapter_and_its_own_top_folder_is_not_named_twice(tmp_path):
    """`nested.cbz` holding `Series/cover.jpg` beside `Series/Ep 2/` and `Series/Ep 10/` made the cover a chapter
    (a score of one page), though the same folders on disk do not; `Vol.03.cbz` holding `Vol.03/Ch 9/` was named
    `Vol.03/Vol.03/Ch 9` (as one chapter in `Ch 2.cbz/Ch 2/` is named `Ch 2`)."""
    def archive(path: Path, members: list[str]) -> Path:
        with zipfile.ZipFile(path, "w") as zf:
            for member in members:
                buf = io.BytesIO()
                Image.new("L", (30, 40), 50).save(buf, format="JPEG" if member.endswith(".jpg") else "PNG")
                zf.writestr(member, buf.getvalue())
        return path

    nested = archive(tmp_path / "nested.cbz", ["Series/cover.jpg", "Series/Ep 2/001.png", "Series/Ep 2/002.png",
                                               "Series/Ep 10/001.png"])
    assert names(find_sections([nested])) == {"nested/Series/Ep 2": ["001.png", "002.png"],
                                              "nested/Series/Ep 10": ["001.png"]}
    volume = archive(tmp_path / "Vol.03.cbz", ["Vol.03/folder.png", "Vol.03/Ch 9/001.png", "Vol.03/Ch 10/001.png"])
    found = find_sections([volume])
    assert names(found) == {"Vol.03/Ch 9": ["001.png"], "Vol.03/Ch 10": ["001.png"]}
    assert found[0].former_names == ["Vol.03/Vol.03/Ch 9"]  # outputs made under the old name are still found
    own = archive(tmp_path / "one.cbz", ["one/cover.jpg", "one/001.png"])  # a chapter's own cover stays a page
    assert names(find_sections([own])) == {"one": ["cover.jpg", "001.png"]}


def test_an_archive_with_no_pages_given_beside_other_chapters_is_named(tmp_path):
    """`run "Ch 5.cbz" "Ch 4.cbz"` with Ch 5 holding only ComicInfo.xml: said of in a folder, but given as a PATH
    itself it was passed over without a word ("1 of 1 sections done")."""
    with zipfile.ZipFile(tmp_path / "Ch 5.cbz", "w") as zf:
        zf.writestr("ComicInfo.xml", "<ComicInfo/>")
    png(tmp_path / "Ch 4" / "001.png")
    said = []
    assert [s.name for s in find_sections([tmp_path / "Ch 5.cbz", tmp_path / "Ch 4"], warn=said.append)] == ["Ch 4"]
    assert said == [f"Skipping {tmp_path / 'Ch 5.cbz'}: no pages in it"]
    said.clear()
    with pytest.raises(InputError, match="no pages found in"):  # alone: the error says it, once
        find_sections([tmp_path / "Ch 5.cbz"], warn=said.append)
    assert said == []


def test_a_chapter_of_pages_whose_names_start_with_a_dot_says_so(tmp_path):
    """A chapter whose pages all have names starting with a dot (`.001.png`: hidden, so not read) was "no pages in
    it (an empty folder)", with 3 images in it; given alone, "no pages found".  Both say the hidden pages and how
    to read them; a Mac's `._001.png` (its resource fork, not a page) is no page to rename."""
    for k in (1, 2):
        png(tmp_path / "S" / "Ch 1" / f"00{k}.png")
    for k in (1, 2, 3):
        png(tmp_path / "S" / "Ch 2" / f".00{k}.png")
    png(tmp_path / "S" / "Ch 2" / "._001.png")
    said = []
    assert [s.name for s in find_sections([tmp_path / "S"], warn=said.append)] == ["Ch 1"]
    assert said == [f"Skipping {tmp_path / 'S' / 'Ch 2'}: no pages in it (3 hidden pages, whose names start with a "
                    "dot: .001.png, .002.png, .003.png; rename them to read them)"], said
    with pytest.raises(InputError) as alone:
        find_sections([tmp_path / "S" / "Ch 2"])
    assert "3 hidden pages, whose names start with a dot: .001.png, .002.png, .003.png; rename them to read them" \
        in alone.value.message, alone.value.message


def test_a_chapter_folder_with_no_pages_is_named_not_passed_over(tmp_path):
    """A chapter folder with no page in it (its download failed; only a readme came) was passed over without a
    word: the run said "2 of 2 sections done" of a series of 4 chapters."""
    from output_checks import cli

    for k in (1, 3):
        png(tmp_path / "S" / f"ch{k}" / "001.png")
    (tmp_path / "S" / "ch2").mkdir()
    (tmp_path / "S" / "ch2" / "readme.txt").write_text("pages to follow")
    (tmp_path / "S" / "ch4").mkdir()
    said = []
    assert [s.name for s in find_sections([tmp_path / "S"], warn=said.append)] == ["ch1", "ch3"]
    assert said == [f"Skipping {tmp_path / 'S' / 'ch2'}: no pages in it (1 other file: readme.txt)",
                    f"Skipping {tmp_path / 'S' / 'ch4'}: no pages in it (an empty folder)"]
    done = cli("describe", tmp_path / "S", "-o", tmp_path / "out", "--model", "builtin")
    assert done.returncode == 0, done.stderr
    assert "ch2: no pages in it (1 other file: readme.txt)" in done.stderr, done.stderr
    assert "ch4: no pages in it (an empty folder)" in done.stderr


def test_an_empty_or_cut_short_archive_says_which(tmp_path):
    """A 0-byte .cbz and one cut short both said only "File is not a zip file"."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("001.png", b"\x89PNG" + bytes(4000))
    (tmp_path / "empty.cbz").write_bytes(b"")
    (tmp_path / "cut.cbz").write_bytes(buf.getvalue()[:2000])
    errors = {s.name: s.error for s in find_sections([tmp_path])}
    assert errors["empty"].endswith("it is empty (0 bytes)")
    assert errors["cut"].endswith("(damaged, or cut short?)")


def test_a_name_packed_twice_in_an_archive_is_one_page_said_not_two_of_the_same(tmp_path):
    """A CBZ holding two entries named 01.png: the second was read twice (for both entries) and the first never,
    so the record listed the same page twice and the page numbers after it were off by one, without a word."""
    import warnings

    from manga2music.describing import probe_pages
    from manga2music.pipeline import Callbacks

    pictures = []
    for shade in (30, 220, 120):
        buf = io.BytesIO()
        Image.new("RGB", (60, 80), (shade,) * 3).save(buf, format="PNG")
        pictures.append(buf.getvalue())
    with warnings.catch_warnings(), zipfile.ZipFile(tmp_path / "dup.cbz", "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name, as a packer's bug makes it
        zf.writestr("01.png", pictures[0])
        zf.writestr("01.png", pictures[1])
        zf.writestr("02.png", pictures[2])
    (section,) = find_sections([tmp_path / "dup.cbz"])
    said: list[str] = []
    infos, skipped = probe_pages(section, Callbacks(log=lambda level, line: said.append(line)))
    assert [(i.page.name, i.sha256) for i in infos] == [("01.png", _sha(pictures[1])), ("02.png", _sha(pictures[2]))]
    assert len(skipped) == 1 and "a later entry of the same name" in skipped[0]["error"]
    assert any("skipping page 01.png" in line for line in said)


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_an_archive_of_many_pages_is_opened_once_not_once_a_page(tmp_path, monkeypatch):
    """Each page of a .cbz opened the archive again and read its whole table of entries: time grew with the square
    of the pages (a 4000-entry omnibus: 56 s of table reading; 20000 entries: about 25 minutes)."""
    import manga2music

    book = tmp_path / "omnibus.cbz"
    page = io.BytesIO()
    Image.new("L", (60, 80), 255).save(page, format="PNG")
    with zipfile.ZipFile(book, "w") as zf:
        for k in range(120):
            zf.writestr(f"p{k:03d}.png", page.getvalue())
    reads = []
    real = zipfile.ZipFile._RealGetContents
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: (reads.append(1), real(self))[1])
    manifest = manga2music.describe(book, tmp_path / "out", model="builtin")
    assert [e["status"] for e in manifest["sections"]] == ["ok"] and manifest["sections"][0]["pages"] == 120
    assert len(reads) < 20, len(reads)  # the listing, the page reads (once per reading thread), the hashing


def test_archive_entries_named_outside_the_archive_are_said_not_dropped_without_a_word(tmp_path):
    """Entries named `../002.png`, `/003.jpg` or `a/../../004.png` are not read (their names lead out of the
    archive), and were left out without a word: "1 of 1 sections done", one page in the record."""
    page = io.BytesIO()
    Image.new("L", (60, 80), 255).save(page, format="PNG")
    book = tmp_path / "e.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        for name in ("001.png", "../002.png", "/003.jpg", "a/../../004.png", "../notes.txt"):
            zf.writestr(name, page.getvalue())
    said: list[str] = []
    (section,) = find_sections([book], warn=said.append)
    assert [p.name for p in section.pages] == ["001.png"]
    assert said == [f"{book}: skipping 3 pages whose names lead out of the archive (../002.png, /003.jpg and "
                    "a/../../004.png): they are not read; repack them inside it"]


def test_a_chapter_titled_with_a_colon_inside_an_archive_is_read_not_taken_for_a_drive(tmp_path):
    """`Vol 1 - Chapter 1: The Beginning/001.png` (a title as Linux and macOS tools and downloaders name a folder)
    was refused as "a name that leads out of the archive" whenever the colon was in the top folder's name: the
    archive then had "no pages found". Only a Windows drive (`C:/x.png`, `C:x.png`) leads out."""
    page = io.BytesIO()
    Image.new("L", (60, 80), 255).save(page, format="PNG")
    book = tmp_path / "v.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        for name in ("Vol 1 - Chapter 1: The Beginning/001.png", "Vol 1 - Chapter 1: The Beginning/002.png",
                     "Chapter 2: Rain/001.png", "C:/003.png", "d:004.png"):
            zf.writestr(name, page.getvalue())
    said: list[str] = []
    found = find_sections([book], warn=said.append)
    assert names(found) == {"v/Chapter 2: Rain": ["001.png"], "v/Vol 1 - Chapter 1: The Beginning": ["001.png",
                                                                                                   "002.png"]}
    assert said == [f"{book}: skipping 2 pages whose names lead out of the archive (C:/003.png and d:004.png): "
                    "they are not read; repack them inside it"]


def test_an_archive_packed_inside_an_archive_beside_pages_is_said_not_dropped_without_a_word(tmp_path):
    """`x.cbz` holding `000.png` and `extra.cbz` (a chapter packed inside the volume): the chapter was made of
    000.png alone and extra.cbz was never mentioned (an archive holding only archives was already one line)."""
    page = io.BytesIO()
    Image.new("L", (60, 80), 255).save(page, format="PNG")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("001.png", page.getvalue())
    book = tmp_path / "x.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        zf.writestr("000.png", page.getvalue())
        zf.writestr("extra.cbz", inner.getvalue())
        zf.writestr("bonus/art.pdf", b"%PDF-1.4")
    said: list[str] = []
    (section,) = find_sections([book], warn=said.append)
    assert [p.name for p in section.pages] == ["000.png"]
    assert said == [f"{book}: not reading art.pdf and extra.cbz inside it: an archive or PDF inside an archive is "
                    "not read; extract it and give its folder too"]


def test_a_kindle_book_is_named_with_what_to_do_not_passed_over(tmp_path):
    """A Kindle book (.mobi, .azw3) given or found among chapters was passed over as if it were a stray file
    ("no pages found in S"), or refused as "not a folder, image, comic archive..."; it is named, once, with how to
    read it."""
    from output_checks import cli

    png(tmp_path / "S" / "ch1" / "001.png")
    (tmp_path / "S" / "ch2").mkdir()
    (tmp_path / "S" / "ch2" / "Vol 2.azw3").write_bytes(b"\0" * 60 + b"BOOKMOBI")
    (tmp_path / "S" / "Vol 3.MOBI").write_bytes(b"\0" * 60 + b"BOOKMOBI")
    said = []
    assert [s.name for s in find_sections([tmp_path / "S"], warn=said.append)] == ["ch1"]
    assert said == [f"Skipping {tmp_path / 'S' / 'Vol 3.MOBI'}: a Kindle book, which manga2music cannot read; "
                    "convert it to EPUB or CBZ first (Calibre does, for a book without DRM)",
                    f"Skipping {tmp_path / 'S' / 'ch2' / 'Vol 2.azw3'}: a Kindle book, which manga2music cannot "
                    "read; convert it to EPUB or CBZ first (Calibre does, for a book without DRM)"]
    with pytest.raises(InputError) as given:
        find_sections([tmp_path / "S" / "Vol 3.MOBI"])
    assert given.value.message == (f"{tmp_path / 'S' / 'Vol 3.MOBI'}: a Kindle book, which manga2music cannot read; "
                                   "convert it to EPUB or CBZ first (Calibre does, for a book without DRM)")
    done = cli("describe", tmp_path / "S" / "ch2", "-o", tmp_path / "out", "--model", "builtin")
    assert done.returncode != 0
    assert "Vol 2.azw3: a Kindle book, which manga2music cannot read; convert it to EPUB or CBZ" in done.stderr
    assert done.stderr.count("Vol 2.azw3") == 1, done.stderr


def test_a_nas_boxs_thumbnail_and_recycle_folders_are_not_chapters(tmp_path):
    """A Synology share with photo indexing puts `@eaDir/<page>/SYNOPHOTO_THUMB_XL.jpg` beside every picture, and
    `#recycle` (QNAP: `@Recycle`) and `#snapshot` at its roots: each became a chapter of thumbnails or deleted
    pages, on disk and zipped from there (200 pages: about 200 sections, each described and composed)."""
    png(tmp_path / "S" / "Ch 1" / "001.png")
    png(tmp_path / "S" / "Ch 1" / "002.png")
    for junk in ("Ch 1/@eaDir/001.png/SYNOPHOTO_THUMB_XL.jpg", "Ch 1/@eaDir/002.png/SYNOPHOTO_THUMB_M.jpg",
                 "#recycle/old/001.png", "@Recycle/old/001.png", "#snapshot/GMT+00_2026.11.01/Ch 1/001.png"):
        png(tmp_path / "S" / junk)
    png(tmp_path / "S" / "Ch 2" / "001.png")
    assert names(find_sections([tmp_path / "S"])) == {"Ch 1": ["001.png", "002.png"], "Ch 2": ["001.png"]}
    book = tmp_path / "Ch 1.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        for page in sorted((tmp_path / "S" / "Ch 1").rglob("*.*")):
            zf.write(page, page.relative_to(tmp_path / "S").as_posix())
    assert names(find_sections([book])) == {"Ch 1": ["001.png", "002.png"]}


def test_a_drives_recycle_bin_and_lost_files_are_not_chapters(tmp_path):
    """A library on a USB drive or a disk of its own: Windows' `$RECYCLE.BIN` became a chapter of deleted pages, `lost+found` (what fsck recovered, pages without names) another, `System Volume
    Information` a folder said to be empty."""
    png(tmp_path / "Lib" / "Ch 1" / "001.png")
    for junk in ("$RECYCLE.BIN/S-1-5-21-1001/$RX1Y2Z3.png", "lost+found/#131073",
                 "System Volume Information/IndexerVolumeGuid.png"):
        png(tmp_path / "Lib" / f"{junk}.png").rename(tmp_path / "Lib" / junk)  # (lost+found's have no extension)
    png(tmp_path / "Lib" / "Recycler" / "001.png")  # a title (XP's RECYCLER is not skipped for it)
    said = []
    assert names(find_sections([tmp_path / "Lib"], warn=said.append)) == {"Ch 1": ["001.png"],
                                                                          "Recycler": ["001.png"]}
    assert said == []
    given = sorted((tmp_path / "Lib").iterdir())  # `run Lib/*`: the same
    assert names(find_sections(given, warn=said.append)) == {"Ch 1": ["001.png"], "Recycler": ["001.png"]}
    assert said == []


def test_a_shell_glob_over_a_series_passes_over_its_other_files(tmp_path, capsys):
    """`run S/*` where S holds, beside its chapters, Tachiyomi's `details.json`, `Thumbs.db` or `desktop.ini`:
    the whole run stopped on the first of them, "S/details.json: not a folder, image, comic archive", nothing
    made.  Among several PATHs each such file is passed over in a line (a system file unsaid, as in a folder);
    given alone it is refused, as before."""
    for chapter in ("Ch 1", "Ch 2"):
        png(tmp_path / "S" / chapter / "001.png")
    for other in ("details.json", "Thumbs.db", "desktop.ini"):
        (tmp_path / "S" / other).write_bytes(b"{}")
    said = []
    given = sorted((tmp_path / "S").iterdir())
    assert names(find_sections(given, warn=said.append)) == {"Ch 1": ["001.png"], "Ch 2": ["001.png"]}
    assert len(said) == 1 and "details.json: not a folder, image, comic archive" in said[0], said
    assert "passed over" in said[0]
    with pytest.raises(InputError, match="details.json: not a folder, image, comic archive"):
        find_sections([tmp_path / "S" / "details.json"])


def test_an_empty_folder_named_beside_others_is_said(tmp_path):
    """`score empty ch1`: the empty folder the user named was dropped without a word (alone, "no pages found")."""
    png(tmp_path / "ch1" / "001.png")
    (tmp_path / "empty").mkdir()
    said = []
    assert names(find_sections([tmp_path / "empty", tmp_path / "ch1"], warn=said.append)) == {"ch1": ["001.png"]}
    assert said == [f"Skipping {tmp_path / 'empty'}: no pages in it"], said


def test_pages_at_the_root_of_a_one_chapter_archive_are_that_chapters(tmp_path):
    """Scanlation releases put `credits.jpg` or `cover.jpg` at the root beside `Ch 004/`: the credits became a
    chapter of one page ("Ch 004") beside the pages ("Ch 004/Ch 004"), and a cover was dropped without a word as a
    volume's art. With one folder of pages, the root's pages are that chapter's, in reading order."""
    for book, root_page in (("Ch 004", "credits.png"), ("Ch 005", "cover.png"), ("Ch 006", "000.png")):
        with zipfile.ZipFile(tmp_path / f"{book}.cbz", "w") as zf:
            for member in (root_page, f"{book}/001.png", f"{book}/002.png"):
                page = io.BytesIO()
                Image.new("L", (60, 80), 255).save(page, format="PNG")
                zf.writestr(member, page.getvalue())
    found = find_sections([tmp_path / "Ch 004.cbz", tmp_path / "Ch 005.cbz", tmp_path / "Ch 006.cbz"])
    assert names(found) == {"Ch 004": ["001.png", "002.png", "credits.png"],
                            "Ch 005": ["cover.png", "001.png", "002.png"],
                            "Ch 006": ["000.png", "001.png", "002.png"]}
    with zipfile.ZipFile(tmp_path / "Ch 007.cbz", "w") as zf:  # a chapter at the root, a bonus folder beside it
        for member in ("001.png", "002.png", "003.png", "004.png", "extras/art.png"):
            page = io.BytesIO()
            Image.new("L", (60, 80), 255).save(page, format="PNG")
            zf.writestr(member, page.getvalue())
    assert names(find_sections([tmp_path / "Ch 007.cbz"])) == {"Ch 007": ["001.png", "002.png", "003.png", "004.png"],
                                                               "Ch 007/extras": ["art.png"]}


def test_pages_saved_under_a_browsers_or_downloaders_name_are_read_or_named(tmp_path):
    """``002.jpg_large`` (an image saved from Twitter/X) was left out of its chapter without a word, and so was a
    page whose download had not finished (``003.jpg.part``): the chapter was read with pages missing."""
    chapter = tmp_path / "Ch 1"
    png(chapter / "001.png")
    Image.new("RGB", (40, 60), "white").save(chapter / "002.jpg_large", format="JPEG")
    Image.new("RGB", (40, 60), "white").save(chapter / "003.png_orig", format="PNG")
    (chapter / "004.jpg.part").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (chapter / "005.webp.crdownload").write_bytes(b"RIFF")
    (chapter / "notes.txt").write_text("not a page, and not said to be one")
    said = []
    found = find_sections([chapter], warn=said.append)
    assert [p.name for p in found[0].pages] == ["001.png", "002.jpg_large", "003.png_orig"]
    assert said == [f"{chapter}: skipping 2 unfinished downloads (004.jpg.part and 005.webp.crdownload); "
                    "rerun once they are complete"]
    assert [load_page(p).size for p in found[0].pages[1:]] == [(40, 60), (40, 60)]


def test_a_picture_whose_name_does_not_end_as_a_page_is_named_and_a_trailing_space_is_read(tmp_path):
    """``002.png.1`` (wget's second copy), ``003.jpg?v=2`` (a URL saved as it was) and ``004.png `` (a trailing space)
    were left out of their chapter without a word: it was read with pages missing, "ok"."""
    chapter = tmp_path / "Ch 1"
    png(chapter / "001.png")
    for odd in ("002.png.1", "003.jpg?v=2", "004.png "):
        Image.new("L", (40, 60), 128).save(chapter / odd, format="PNG")
    (chapter / "notes.txt.bak").write_text("words, not a picture: not said")
    (chapter / "cover.png.txt").write_text("named like a page, but words: not said")
    said = []
    found = find_sections([chapter], warn=said.append)
    assert [p.name for p in found[0].pages] == ["001.png", "004.png "]
    assert said == [f"{chapter}: leaving out 2 pictures whose names do not end as a page's (002.png.1 and "
                    "003.jpg?v=2); rename them (to .png, .jpg...) to read them as pages"]


def test_a_chapter_mihon_is_still_downloading_is_named_not_read(tmp_path):
    """Mihon/Tachiyomi downloads a chapter into "Group_Chapter 12_tmp" (or "….cbz_tmp") and renames it when done:
    the half-downloaded chapter was read as a chapter of its own, and its name stuck to the finished one."""
    series = tmp_path / "Series"
    png(series / "Group_Chapter 11" / "001.png")
    png(series / "Group_Chapter 12_tmp" / "001.png")
    (series / "Group_Chapter 13.cbz_tmp").write_bytes(b"PK\x03\x04 cut short")
    said = []
    assert [s.name for s in find_sections([series], warn=said.append)] == ["Group_Chapter 11"]
    assert said == [f"{series}: skipping 2 unfinished downloads (Group_Chapter 13.cbz_tmp and Group_Chapter 12_tmp/); "
                    "rerun once they are complete"]
    assert [s.name for s in find_sections([series / "Group_Chapter 12_tmp"])] == ["Group_Chapter 12_tmp"]  # given


@pytest.mark.parametrize("layout", [
    # Mihon/Tachiyomi: "<scanlator>_<chapter>", ":" written "_", groups changing between chapters
    ["Asura Scans_Chapter 1_ The Beginning", "Asura Scans_Chapter 1.5_ Side Story", "Flame Scans_Chapter 2",
     "Asura Scans_Chapter 10"],
    ["第1話", "第1.5話", "第2話"],
    ["Ch.001 - Start", "Ch.001.5 - Omake", "Ch.002"],
    # volumes first, then the chapters not yet in a volume; a prologue first, an epilogue and extras last
    ["Prologue", "Vol. 01/Ch. 001", "Vol. 01/Ch. 002", "Vol. 02/Ch. 003", "Ch. 004", "Ch. 010", "Epilogue",
     "Extra"],
    ["Episode 1", "Episode 2", "Episode 10", "Side Story 1"],
    # a shelf of downloads from several sites: each names its chapters its own way (they were read word by word:
    # "c005, Ch. 2, Ch 3, Chapter 1, 第4話")
    ["Chapter 1", "Ch. 2", "Ch 3", "第4話", "c005", "Ch #6", "Episode 7", "Ch 10"],
    ["Asura Scans_Chapter 1", "Asura Scans_Chapter 2", "Reaper_Ch 3", "Flame Scans_Ch. 10"],
    # the first chapter saved without its number, the next ones with ("Episode 2" came first, and the listening
    # page's "Next chapter" went from it back to "Episode")
    ["Episode", "Episode 2", "Episode 3"],
    ["Chapter", "Chapter 2", "Chapter 10"],
    # numbers written as words ("3, One, Two"); a title that starts with one is a name ("Ten Thousand Years")
    ["Chapter One", "Chapter Two - Rain", "Chapter 3", "Chapter Eleven", "Chapter 12", "Chapter Twenty-One",
     "Chapter Twenty Two", "Chapter Thirty", "Chapter Ten Thousand Years"],
    # the series' title in front of every chapter's name ("Berserk c011" came before "Berserk Extra", "Berserk
    # Prologue" and the volume's chapters), and a scanlator's tag in brackets before it
    ["Berserk Prologue", "Berserk v01 c001", "Berserk v01 c002", "Berserk c011", "Berserk Extra"],
    ["[Zscans] Title - 009", "[ATeam] Title - 011", "[ATeam] Title - 012"],
    # a title with a number in it, one that starts with a word of the order, one with ß, and an extra without it
    ["20th Century Boys Prologue", "20th Century Boys 001", "20th Century Boys 002", "20th Century Boys Extra"],
    ["Mob Psycho 100 Prologue", "Mob Psycho 100 c001", "Mob Psycho 100 c002", "Mob Psycho 100 Extra"],
    ["Extra Life Prologue", "Extra Life 1", "Extra Life 2", "Extra Life Epilogue"],
    ["Weiße Tage Prologue", "Weiße Tage 1", "Weiße Tage 2", "Weiße Tage Extra"],
    ["Berserk Prologue", "Berserk c001", "Berserk c002", "Extra"],
], ids=["mihon", "kanji-decimal", "decimal", "volumes-then-chapters", "webtoon", "mixed-styles", "mihon-mixed",
        "first-unnumbered", "first-unnumbered-chapter", "number-words", "series-title", "bracketed-groups",
        "title-with-a-number", "title-number-alone", "title-of-an-order-word", "title-with-sz", "extra-untitled"])
def test_chapters_are_found_in_the_order_a_reader_reads_them(tmp_path, layout):
    """Chapter 1.5 came before chapter 1 ("." sorts before "_" and "話"), Mihon's scanlator prefixes put chapter 10
    before chapter 2 (another group's), loose new chapters came before the volume folders, and "Epilogue" and
    "Extra" before "Episode 1"."""
    for chapter in reversed(layout):
        png(tmp_path / "S" / chapter / "001.png")
    assert [s.name for s in find_sections([tmp_path / "S"])] == layout


def test_a_page_saved_without_an_extension_is_read(tmp_path):
    """`002` (a page a browser saved from a URL without an extension) beside `001.png` and `003.png` was left out
    of the chapter without a word; a file that is not an image (a `README`) is still not a page."""
    chapter = tmp_path / "Ch 1"
    for name in ("001.png", "003.png"):
        png(chapter / name)
    Image.new("RGB", (40, 60), "white").save(chapter / "002", format="JPEG")
    Image.new("RGB", (40, 60), "white").save(chapter / "004", format="WEBP")
    (chapter / "README").write_text("scanned by a group")
    [section] = find_sections([chapter])
    assert [p.name for p in section.pages] == ["001.png", "002", "003.png", "004"]
    assert [load_page(p).size for p in section.pages] == [(40, 60)] * 4


@pytest.mark.parametrize("suffix", [".cbz", ".cbt"])
def test_a_page_packed_without_an_extension_is_read(tmp_path, suffix):
    """The same page packed in a .cbz or .cbt (a scraper's archive of URLs without extensions) was still left out
    of its chapter without a word, though the folder read it; a `README` packed beside it is still not a page."""
    import tarfile

    files = {}
    for member, fmt in (("001.png", "PNG"), ("002", "JPEG"), ("003", "PNG"), ("004.png", "PNG")):
        page = io.BytesIO()
        Image.new("RGB", (40, 60 + int(member[:3])), "white").save(page, format=fmt)
        files[member] = page.getvalue()
    files.update({"README": b"scanned by a group", "empty": b""})
    archive = tmp_path / f"Ch 1{suffix}"
    if suffix == ".cbz":
        with zipfile.ZipFile(archive, "w") as zf:
            for member, data in files.items():
                zf.writestr(member, data)
    else:
        with tarfile.open(archive, "w", format=tarfile.USTAR_FORMAT) as tar:
            for member, data in files.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    [section] = find_sections([archive])
    assert [p.name for p in section.pages] == ["001.png", "002", "003", "004.png"]
    assert [load_page(p).size for p in section.pages] == [(40, 61), (40, 62), (40, 63), (40, 64)]


def test_a_volumes_own_pages_come_before_its_chapters(tmp_path):
    """`run "Vol 01"`: the volume's colour pages (in it, beside its chapter folders) were read after its chapters
    ("Vol 01" after "Ch 002"): a volume's name now comes before the chapters'.  (Sections are ordered by their
    names alone, as the manifest and the listening page order them.)"""
    png(tmp_path / "Vol 01" / "000-color.png")
    for chapter in ("Ch 001", "Ch 002"):
        png(tmp_path / "Vol 01" / chapter / "001.png")
    assert [s.name for s in find_sections([tmp_path / "Vol 01"])] == ["Vol 01", "Ch 001", "Ch 002"]


@pytest.mark.parametrize("layout", [
    ["V1_Ch1", "V1_Ch2", "V2_Ch1", "V2_Ch2"],
    ["Season 1_Episode 1", "Season 1_Episode 2", "Season 2_Episode 1"],
    ["第1巻_第1話", "第1巻_第2話", "第2巻_第1話"],
    ["Chapter 1", "Chapter 2", "Epilogue_1", "Extra_01", "Side Story_1"],
], ids=["volume-prefix", "season-prefix", "kanji-volume-prefix", "extras-prefix"])
def test_a_prefix_that_says_where_a_chapter_comes_is_not_taken_for_a_group_name(tmp_path, layout):
    """Mihon's "<group>_<chapter>" prefix is left out of the order; "V1_", "Season 1_", "第1巻_" and "Extra_" are
    not groups: V1's chapters were interleaved with V2's, and the extras came first."""
    for chapter in reversed(layout):
        png(tmp_path / "S" / chapter / "001.png")
    assert [s.name for s in find_sections([tmp_path / "S"])] == layout


def test_the_chapters_of_an_archive_given_alone_are_read_in_the_order_they_are_listed(tmp_path):
    """`run Book.cbz` (Prologue/, Chapter 1/, Chapter 2/ inside) read the prologue last, and listed it first."""
    book = tmp_path / "Book.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        for folder in ("Chapter 1", "Chapter 2", "Prologue"):
            zf.writestr(f"{folder}/001.png", png(tmp_path / "p.png").read_bytes())
    assert [s.name for s in find_sections([book])] == ["Book/Prologue", "Book/Chapter 1", "Book/Chapter 2"]


def test_an_empty_tar_is_said_to_hold_no_pages_not_to_be_damaged(tmp_path):
    """A valid tar with nothing in it (a packer run on an empty folder) was called "not a readable comic archive
    ... File is not a zip file (damaged, or cut short?)": its first block is the end-of-archive marker (zeros), not
    a ``ustar`` header, so it was taken for a damaged zip."""
    import tarfile

    png(tmp_path / "S" / "Ch 2" / "001.png")
    tarfile.open(tmp_path / "S" / "Ch 1.cbt", "w").close()
    said = []
    assert [s.name for s in find_sections([tmp_path / "S"], warn=said.append)] == ["Ch 2"]
    assert said == [f"Skipping {tmp_path / 'S' / 'Ch 1.cbt'}: no pages in it"], said
    (tmp_path / "zeros.cbt").write_bytes(bytes(1000))  # zeros, but no tar's length: still not readable
    assert "not a readable comic archive" in find_sections([tmp_path / "zeros.cbt"])[0].error
    for name in ("Ch 5.cbz", "Vol 2.cbr", "Ch 6.cbt"):  # a torrent's pre-allocated file, not downloaded yet: it
        # fails (a chapter missing from a run that says it is done would go unnoticed)
        (tmp_path / name).write_bytes(bytes(2 * 1024 * 1024))
        assert find_sections([tmp_path / name])[0].error, name


def test_an_empty_page_and_a_page_over_the_limit_in_an_archive_say_what_they_are(tmp_path, monkeypatch):
    """A 0-byte page was "unknown or damaged image data" where a 0-byte archive is "it is empty (0 bytes)"; a page
    over the limit in an archive was "larger than the page limit" where one on disk says its size and the limit."""
    from manga2music import sections

    png(tmp_path / "ch" / "001.png")
    (tmp_path / "ch" / "002.png").write_bytes(b"")
    (section,) = find_sections([tmp_path / "ch"])
    with pytest.raises(PageError, match=r"002\.png: not a readable image: it is empty \(0 bytes\)$"):
        load_page(section.pages[1])
    book = tmp_path / "book.cbz"
    with zipfile.ZipFile(book, "w") as zf:
        buf = io.BytesIO()
        Image.new("L", (400, 600), 7).save(buf, "PNG", compress_level=0)
        zf.writestr("001.png", buf.getvalue())
    monkeypatch.setattr(sections, "MAX_PAGE_BYTES", 128 * 1024)  # a page of 0.23 MB over a 0.125 MB limit
    (section,) = find_sections([book])
    with pytest.raises(PageError, match=r"001\.png: 0\.23 MB is more than the 0\.125 MB page limit$"):
        load_page(section.pages[0])


def test_a_prologue_and_an_epilogue_named_in_japanese_or_spanish_come_first_and_last():
    """プロローグ and 序章 were read after the numbered chapters, and エピローグ before プロローグ (only English words
    were known); Epílogo came before Prólogo."""
    from manga2music.sections import section_order

    def ordered(names):
        return sorted(names, key=section_order)

    jp = ordered(["第2話", "エピローグ", "第10話", "番外編", "プロローグ", "第1話"])
    assert jp[:4] == ["プロローグ", "第1話", "第2話", "第10話"] and set(jp[4:]) == {"エピローグ", "番外編"}, jp
    assert ordered(["第1話", "序章", "おまけ"]) == ["序章", "第1話", "おまけ"]
    assert ordered(["Capítulo 2", "Epílogo", "Capítulo 1", "Prólogo"]) == \
        ["Prólogo", "Capítulo 1", "Capítulo 2", "Epílogo"]
    assert ordered(["Chapter 1", "Prologue", "Epilogue"]) == ["Prologue", "Chapter 1", "Epilogue"]  # as before


def test_a_chapter_archive_or_pdf_saved_without_its_extension_is_said(tmp_path):
    """`Ch 1` (a .cbz whose extension was lost in a copy) and `Ch 3` (a PDF) beside `Ch 2/`: left out without a
    word, "1 of 1 sections done".  Each is said, with the name to give it; a named zip (`notes.docx`) is not."""
    png(tmp_path / "S" / "Ch 2" / "001.png")
    with zipfile.ZipFile(tmp_path / "S" / "Ch 1", "w") as zf:
        zf.writestr("001.png", (tmp_path / "S" / "Ch 2" / "001.png").read_bytes())
    Image.new("L", (40, 60), 128).save(tmp_path / "S" / "Ch 3", "PDF")
    with zipfile.ZipFile(tmp_path / "S" / "notes.docx", "w") as zf:
        zf.writestr("word/document.xml", "<w/>")
    said = []
    assert names(find_sections([tmp_path / "S"], warn=said.append)) == {"Ch 2": ["001.png"]}
    assert sorted(said) == [
        f"Skipping {tmp_path / 'S' / 'Ch 1'}: a zip archive whose name has no extension; rename it (to Ch 1.cbz) to "
        "read it",
        f"Skipping {tmp_path / 'S' / 'Ch 3'}: a PDF whose name has no extension; rename it (to Ch 3.pdf) to read it"]


def test_a_fifo_named_without_an_extension_does_not_hang_the_search(tmp_path):
    """A named pipe in a chapter folder (`Vol.03`, no extension): looking into it for an archive's first bytes would
    wait for a writer for ever."""
    import os
    import threading

    png(tmp_path / "S" / "Ch 1" / "001.png")
    os.mkfifo(tmp_path / "S" / "Vol.03")
    found = []
    worker = threading.Thread(target=lambda: found.append(names(find_sections([tmp_path / "S"]))), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert found == [{"Ch 1": ["001.png"]}]


def test_the_series_art_given_among_its_chapters_as_run_s_star_gives_them_is_no_chapter(tmp_path, monkeypatch):
    """`run S/*` (the README's own form) made `S/cover.jpg` a chapter of one page, where `run S` leaves the series'
    art out; a cover given alone, or beside a page that is no cover, is still read."""
    series = tmp_path / "S"
    png(series / "Ch 1" / "001.png")
    png(series / "cover.jpg")
    png(series / "folder.jpg")
    monkeypatch.chdir(series)
    star = sorted(Path(".").iterdir())
    assert names(find_sections(star)) == names(find_sections([Path(".")])) == {"Ch 1": ["001.png"]}
    assert list(names(find_sections([Path("cover.jpg")]))) == ["cover"]
    png(series / "001.png")  # a loose page beside the art: the folder's loose pictures are a chapter
    assert "cover" in names(find_sections(sorted(Path(".").iterdir())))
    (series / "001.png").unlink()
    (series / "folder.jpg").unlink()
    for page in (series / "Ch 1").iterdir():  # the chapters not downloaded yet: the art is all there is, and read
        page.unlink()
    assert list(names(find_sections(sorted(Path(".").iterdir())))) == ["cover"]


def test_a_hidden_image_given_by_name_is_read_as_a_hidden_folder_given_is(tmp_path):
    """`run .p.png` said ".p.png: not a folder, image, comic archive...", though it is a PNG; beside another PATH it
    was dropped without a word.  A Mac's `._001.png` given among pages is still no page."""
    png(tmp_path / ".p.png")
    png(tmp_path / "ch" / "001.png")
    (tmp_path / "._001.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (alone,) = find_sections([tmp_path / ".p.png"])
    assert [p.name for p in alone.pages] == [".p.png"] and alone.name == "p"  # its outputs are not hidden files
    found = find_sections([tmp_path / ".p.png", tmp_path / "ch", tmp_path / "._001.png"])
    assert [[p.name for p in s.pages] for s in found] == [[".p.png"], ["001.png"]]


def test_a_hidden_folder_given_by_name_writes_files_a_user_can_see(tmp_path):
    """`run .hack` wrote `.hack.wav`, `.hack.txt`...: hidden files, which a file manager and `ls` do not show, so
    the run seemed to have made nothing.  Its chapters inside keep their own names."""
    png(tmp_path / ".hack" / "001.png")
    png(tmp_path / ".arc" / "Chapter 1" / "001.png")
    (alone,) = find_sections([tmp_path / ".hack"])
    assert alone.name == "hack" and [p.name for p in alone.pages] == ["001.png"]
    assert ".hack" in alone.former_names  # the files an earlier version made for it are still its own
    (inside,) = find_sections([tmp_path / ".arc"])
    assert inside.name == "Chapter 1"


def test_a_pdf_with_no_pages_or_a_password_is_said_in_words_not_in_pdfiums(tmp_path):
    """"not a readable PDF (Failed to load document (PDFium: Success))" for a PDF of no pages, and "(PDFium:
    Incorrect password error)" with no advice for one with a password."""
    import pypdfium2 as pdfium

    empty = pdfium.PdfDocument.new()
    empty.save(tmp_path / "zero.pdf")
    empty.close()
    locked = Path(__file__).resolve().parent / "data" / "pdfs" / "password-protected.pdf"
    (zero,) = find_sections([tmp_path / "zero.pdf"])
    (secret,) = find_sections([locked])
    assert zero.error == "zero.pdf: not a readable PDF (it holds no pages, or is damaged)".replace(
        "zero.pdf", str(tmp_path / "zero.pdf")), zero.error
    assert "password-protected" in secret.error and "PDFium" not in secret.error, secret.error


def test_the_pixel_limit_said_is_the_one_applied(tmp_path):
    """A 179-megapixel page was refused as "179 megapixels, over the 180 MP limit": Pillow's own decompression-bomb
    refusal (at twice its 89.5 MP warning) came before the limit the README and the message name."""
    import re

    from PIL import Image

    for name, height in (("under.png", 222_000), ("over.png", 223_700)):
        Image.new("1", (800, height), 1).save(tmp_path / name)
    pages = {p.name: p for p in find_sections([tmp_path])[0].pages}
    assert probe_page(pages["under.png"]).size == (800, 222_000)  # 177.6 MP: read
    with pytest.raises(PageError) as over:
        probe_page(pages["over.png"])
    said = re.search(r"([\d.]+) megapixels, over the ([\d.]+) MP limit", str(over.value))
    assert said and float(said.group(1)) > float(said.group(2)), over.value
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert MAX_PIXELS // 1_000_000 == int(re.search(r"Images over (\d+) megapixels", readme).group(1))


def test_the_manifest_and_listening_page_list_a_series_in_the_order_it_is_read(tmp_path):
    """The manifest and the listening page list chapters whose names all begin with the series' title as they were
    read: a prologue first, the volume's chapters, the loose ones, the extras last."""
    from manga2music import api
    from manga2music.options import RunConfig

    layout = ["Berserk Prologue", "Berserk v01 c001", "Berserk c011", "Berserk Extra"]
    for chapter in reversed(layout):
        png(tmp_path / "S" / chapter / "001.png")
    manifest = api.run([tmp_path / "S"], tmp_path / "out", vision_model="builtin", music_model="builtin",
                       config=RunConfig(duration=1))
    assert [e["name"] for e in manifest["sections"]] == layout
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert [page.index(f"{name}.wav") for name in layout] == sorted(page.index(f"{name}.wav") for name in layout)


def test_an_archive_beside_a_folder_of_its_name_is_said(tmp_path):
    """`Ch 1.cbz` zipped from `Ch 1` and left beside it: a second chapter of the same pages, "Ch 1.cbz", made with
    other music and not a word."""
    png(tmp_path / "S" / "Ch 1" / "001.png")
    with zipfile.ZipFile(tmp_path / "S" / "Ch 1.cbz", "w") as zf:
        zf.write(tmp_path / "S" / "Ch 1" / "001.png", "Ch 1/001.png")
    said: list[str] = []
    names = [s.name for s in find_sections([tmp_path / "S"], warn=said.append)]
    assert names == ["Ch 1", "Ch 1.cbz"]
    assert any("Ch 1.cbz and the folder Ch 1 beside it share a name" in line for line in said), said
