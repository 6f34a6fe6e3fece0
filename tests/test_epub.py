"""EPUB books (Kindle Comic Converter's, a publisher's fixed-layout manga): pages in the book's reading order."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from output_checks import cli

from manga2music.sections import find_sections

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
PICTURES = {  # named so that name order is not reading order
    "Images/zz-cover.png": (SAMPLES / "calm" / "001.png").read_bytes(),
    "Images/b-first.png": (SAMPLES / "calm" / "002.png").read_bytes(),
    "Images/a page 2.jpg": (SAMPLES / "calm" / "003.jpg").read_bytes(),
    "Images/0-third.png": (SAMPLES / "action" / "001.png").read_bytes(),
    "Images/c-fourth.png": (SAMPLES / "action" / "002.png").read_bytes(),
    "Images/logo.png": (SAMPLES / "action" / "003.png").read_bytes(),  # the publisher's: shown by no document
}
#: what a reader sees, in order: (picture, how its document shows it)
READING_ORDER = [("zz-cover.png", "img"), ("b-first.png", "svg"), ("a page 2.jpg", "img"), ("0-third.png", "spine"),
                 ("c-fourth.png", "svg")]

CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""


def _document(picture: str, how: str) -> str:
    src = "../Images/" + picture.replace(" ", "%20")
    if how == "svg":  # Kindle Comic Converter's page: the picture in an SVG that scales it
        body = (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                f'viewBox="0 0 800 1100"><image width="800" height="1100" xlink:href="{src}"/></svg>')
    else:
        body = f'<div><img src="{src}" alt="page"/></div>'
    return ('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml">'
            f"<head><title>p</title></head><body>{body}</body></html>")


def make_book(path: Path, *, order=READING_ORDER, extra: dict | None = None, package: str | None = None,
              direction: str = "rtl", pictures: dict | None = None) -> Path:
    """An EPUB 3 whose spine shows ``order`` (of ``pictures``, by default :data:`PICTURES`) and turns its pages in
    ``direction``; besides it a table of contents kept out of the reading order (linear="no"), a style sheet and
    the publisher's logo that no document shows."""
    items, spine = [], []
    files = {"META-INF/container.xml": CONTAINER}
    for k, (picture, how) in enumerate(order):
        items.append(f'<item id="img{k}" href="Images/{picture.replace(" ", "%20")}" media-type="image/'
                     f'{"jpeg" if picture.endswith(".jpg") else "png"}"/>')
        if how == "spine":
            spine.append(f'<itemref idref="img{k}"/>')
            continue
        files[f"OEBPS/Text/page{k}.xhtml"] = _document(picture, how)
        items.append(f'<item id="page{k}" href="Text/page{k}.xhtml" media-type="application/xhtml+xml"/>')
        spine.append(f'<itemref idref="page{k}"/>')
    files["OEBPS/Text/toc.xhtml"] = _document("logo.png", "img")  # a page of its own only if the reader asks
    items += ['<item id="toc" href="Text/toc.xhtml" media-type="application/xhtml+xml" properties="nav"/>',
              '<item id="css" href="Styles/style.css" media-type="text/css"/>',
              '<item id="logo" href="Images/logo.png" media-type="image/png"/>']
    spine.insert(1, '<itemref idref="toc" linear="no"/>')
    files["OEBPS/Styles/style.css"] = "img { width: 100% }"
    files["OEBPS/content.opf"] = package or (
        '<?xml version="1.0" encoding="utf-8"?>\n<package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Book</dc:title>'
        f'</metadata><manifest>{"".join(items)}</manifest>'
        f'<spine page-progression-direction="{direction}">{"".join(spine)}'
        "</spine></package>")
    files.update(extra or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")  # first and stored, as EPUB asks
        for name, data in files.items():
            zf.writestr(name, data)
        for name, data in (pictures or PICTURES).items():
            zf.writestr("OEBPS/" + name, data)
    return path


def _pages(section) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in section.pages]


EXPECTED = [(picture, PICTURES["Images/" + picture]) for picture, _ in READING_ORDER]


def test_an_epub_is_read_in_the_books_reading_order(tmp_path):
    """An .epub was "not a folder, image, comic archive ... or .pdf", and left out of a series folder without a
    word.  Its pages are the pictures its spine shows (an <img>, an SVG <image>, a picture as a spine entry
    itself), in the spine's order, not their names' order; the table of contents kept out of the reading order and
    the logo no document shows are not pages."""
    book = make_book(tmp_path / "Vol 1.epub")
    [section] = find_sections([book])
    assert (section.name, section.error) == ("Vol 1", None)
    assert _pages(section) == EXPECTED
    assert section.pages[2].source == f"{book}!OEBPS/Images/a page 2.jpg"  # a record locates the page
    series = tmp_path / "series"
    series.mkdir()
    make_book(series / "Vol 1.epub")
    make_book(series / "Vol 2.epub", order=READING_ORDER[::-1])
    assert [(s.name, _pages(s)) for s in find_sections([series])] == [("Vol 1", EXPECTED),
                                                                        ("Vol 2", EXPECTED[::-1])]
    described = cli("describe", book, "-o", tmp_path / "out", "--model", "builtin", "--json")
    assert described.returncode == 0, described.stderr
    [record] = json.loads(described.stdout)["sections"]
    assert (record["name"], record["status"]) == ("Vol 1", "ok")
    pages = json.loads((tmp_path / "out" / "Vol 1.json").read_text())["pages"]  # the section's record
    assert [(p["name"], p["member"]) for p in pages] == [(name, "OEBPS/Images/" + name) for name, _ in EXPECTED]


def test_an_encrypted_epub_fails_alone_in_one_line_and_obfuscated_fonts_do_not_count(tmp_path):
    """A book with DRM (its pictures encrypted, listed in META-INF/encryption.xml) fails its own section in one
    line that says so, beside a chapter that is read; a book whose only encrypted entries are fonts (obfuscated the
    EPUB way, which is no DRM, or encrypted) is read: its pictures are plain."""

    def encryption(algorithm: str, uri: str) -> dict:
        return {"META-INF/encryption.xml": (
            '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
            'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
            f'<enc:EncryptionMethod Algorithm="{algorithm}"/><enc:CipherData><enc:CipherReference URI="{uri}"/>'
            "</enc:CipherData></enc:EncryptedData></encryption>")}

    locked = make_book(tmp_path / "locked.epub", extra=encryption("http://www.w3.org/2001/04/xmlenc#aes128-cbc",
                                                                  "OEBPS/Images/b-first.png"))
    fonts = make_book(tmp_path / "fonts.epub", extra=encryption("http://www.idpf.org/2008/embedding",
                                                                "OEBPS/Fonts/face.otf"))
    locked_fonts = make_book(tmp_path / "locked fonts.epub", extra=encryption(
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc", "OEBPS/Fonts/face.woff2"))
    sections = find_sections([locked, fonts, locked_fonts, SAMPLES / "calm"])
    assert [s.name for s in sections] == ["locked", "fonts", "locked fonts", "calm"]
    assert sections[0].error == f"{locked}: the book is encrypted (DRM), so its pages cannot be read; give a copy " \
                                "without DRM, or its pages"
    assert [(s.error, _pages(s)) for s in sections[1:3]] == [(None, EXPECTED)] * 2
    ran = cli("describe", locked, SAMPLES / "calm", "-o", tmp_path / "out", "--model", "builtin", "--json")
    assert ran.returncode == 1, ran.stderr  # one section failed, the other was made
    assert {s["name"]: s["status"] for s in json.loads(ran.stdout)["sections"]} == {"locked": "failed",
                                                                                    "calm": "ok"}
    assert "encrypted (DRM)" in ran.stderr


def test_a_book_of_text_and_a_broken_epub_each_say_what_they_are(tmp_path):
    """A novel (no picture in its spine) is not pages; a file named .epub that is not a zip says so; a picture a
    document shows that the book does not hold, or that lies outside the book (another server, ``..`` past the
    top), is no page, and the missing one is named."""
    novel = tmp_path / "novel.epub"
    with zipfile.ZipFile(novel, "w") as zf:
        zf.writestr("META-INF/container.xml", CONTAINER)
        zf.writestr("OEBPS/content.opf", '<package xmlns="http://www.idpf.org/2007/opf"><manifest>'
                    '<item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/></manifest>'
                    '<spine><itemref idref="c1"/></spine></package>')
        zf.writestr("OEBPS/c1.xhtml", "<html><body><p>It was a dark and stormy night.</p></body></html>")
    broken = tmp_path / "broken.epub"
    broken.write_bytes(b"<html>a web page saved as .epub</html>")
    strays = make_book(tmp_path / "strays.epub", extra={
        "OEBPS/Text/page1.xhtml": '<html><body><img src="http://example.com/ad.png"/><img src="../../../secret.png"/>'
                                  '<img src="../Images/gone.png"/><img src="../Images/b-first.png"/></body></html>'})
    warnings: list[str] = []
    novel_s, broken_s, strays_s = find_sections([novel, broken, strays], warn=warnings.append)
    assert novel_s.error == f"{novel}: no page pictures in this EPUB (a book of text?); manga2music reads books " \
                            "whose pages are pictures"
    assert broken_s.error == f"{broken}: not a readable EPUB (an EPUB is a zip): File is not a zip file"
    assert strays_s.error is None and _pages(strays_s) == EXPECTED
    assert warnings == [f"{strays}: 1 picture the book shows is not in it (OEBPS/Images/gone.png): left out"]


def test_an_epub_without_a_reading_order_is_read_in_name_order_and_says_so(tmp_path):
    """A book whose container names no package (or whose package has no spine) is still a zip of pictures: read in
    their names' order, with a line that says the book's own order was not found."""
    book = make_book(tmp_path / "book.epub", package='<package xmlns="http://www.idpf.org/2007/opf"><manifest/>'
                                                     "<spine/></package>")
    warnings: list[str] = []
    [section] = find_sections([book], warn=warnings.append)
    assert [p.name for p in section.pages] == ["0-third.png", "a page 2.jpg", "b-first.png", "c-fourth.png",
                                               "logo.png", "zz-cover.png"]
    assert warnings == [f"{book}: no reading order found (its package file OEBPS/content.opf has no spine (no "
                        "reading order)); its pictures are read in name order"]


def test_a_score_of_an_epub_turns_its_pages_the_way_the_book_says(tmp_path):
    """The read-along page found which way pages turn from the text alone (vertical Japanese columns): a wordless
    manga whose book says it turns right to left (page-progression-direction="rtl") opened left to right.  The
    same wordless pages in a book that says "ltr" open left to right."""
    import re

    from chapters import quiet_page

    pictures = {}
    for n in range(3):
        quiet_page(n).save(tmp_path / f"{n}.png")
        pictures[f"Images/{n}.png"] = (tmp_path / f"{n}.png").read_bytes()
    pictures["Images/logo.png"] = PICTURES["Images/logo.png"]
    order = [(f"{n}.png", "svg") for n in range(3)]
    for direction in ("rtl", "ltr"):
        book = make_book(tmp_path / f"{direction}.epub", order=order, direction=direction, pictures=pictures)
        scored = cli("score", book, "-o", tmp_path / "out", "--vision-model", "builtin", "--music-model", "builtin",
                     "--seed", "1", "--longest-cue", "8", timeout=300)
        assert scored.returncode == 0, scored.stderr
        html = (tmp_path / "out" / f"{direction}.read.html").read_text(encoding="utf-8")
        assert re.findall(r'"rtl":\s*(true|false)', html) == ["true" if direction == "rtl" else "false"], direction


def _unpack(book: Path, folder: Path) -> Path:
    with zipfile.ZipFile(book) as zf:
        zf.extractall(folder)
    return folder


def test_an_epub_unpacked_into_a_folder_is_read_in_the_books_reading_order(tmp_path):
    """An EPUB unzipped into a folder (to look at its pictures, or as some tools leave it) was read as folders of
    pictures in their names' order: "Vol 1/OEBPS/Images" of six pages, the publisher's logo among them, the cover
    last.  It is the book: one section named after its folder, its pages in the spine's order, a record that
    locates each picture file; the book's way of turning pages is found from any of its pictures."""
    from manga2music.sections import book_page_progression

    series = tmp_path / "series"
    _unpack(make_book(tmp_path / "v1.epub"), series / "Vol 1")
    _unpack(make_book(tmp_path / "v2.epub", direction="ltr"), series / "Vol 2")
    (series / "Vol 3").mkdir()
    for page in sorted((SAMPLES / "action").iterdir()):
        (series / "Vol 3" / page.name).write_bytes(page.read_bytes())
    vol1, vol2, vol3 = find_sections([series])
    assert [(s.name, s.error) for s in (vol1, vol2, vol3)] == [("Vol 1", None), ("Vol 2", None), ("Vol 3", None)]
    assert _pages(vol1) == EXPECTED and _pages(vol2) == EXPECTED
    assert vol1.pages[2].source == str(series / "Vol 1" / "OEBPS" / "Images" / "a page 2.jpg")
    assert [book_page_progression(s.pages[0]) for s in (vol1, vol2, vol3)] == ["rtl", "ltr", None]
    [alone] = find_sections([series / "Vol 1"])  # given itself
    assert (alone.name, _pages(alone)) == ("Vol 1", EXPECTED)
    described = cli("describe", series / "Vol 1", "-o", tmp_path / "out", "--model", "builtin", "--json")
    assert described.returncode == 0, described.stderr
    pages = json.loads((tmp_path / "out" / "Vol 1.json").read_text())["pages"]
    assert [Path(p["path"]).name for p in pages] == [name for name, _ in EXPECTED]


def test_an_unpacked_epub_with_drm_or_without_a_reading_order_says_so(tmp_path):
    """An unpacked book with DRM fails alone in one line; one whose package has no spine is read as folders of
    pictures, with a line that says its order was not found; a text book says it has no page pictures."""
    locked = _unpack(make_book(tmp_path / "l.epub", extra={"META-INF/encryption.xml": (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:EncryptionMethod '
        'Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/><enc:CipherData><enc:CipherReference '
        'URI="OEBPS/Images/b-first.png"/></enc:CipherData></enc:EncryptedData></encryption>')}), tmp_path / "locked")
    loose = _unpack(make_book(tmp_path / "o.epub", package='<package xmlns="http://www.idpf.org/2007/opf">'
                                                           "<manifest/><spine/></package>"), tmp_path / "loose")
    warnings: list[str] = []
    [locked_s] = find_sections([locked], warn=warnings.append)
    assert locked_s.pages == [] and locked_s.error == f"{locked}: the book is encrypted (DRM), so its pages cannot " \
                                                      "be read; give a copy without DRM, or its pages"
    [loose_s] = find_sections([loose], warn=warnings.append)
    assert loose_s.name == "OEBPS/Images" and loose_s.pages[0].name == "0-third.png"
    assert warnings == [f"{loose}: an unpacked EPUB, but no reading order found (its package file OEBPS/content.opf "
                        "has no spine (no reading order)); its pictures are read in name order"]  # not a line for
    # each of its folders without pictures (META-INF, Text, Styles)


def test_an_unpacked_epub_whose_files_cannot_be_read_fails_alone(tmp_path, monkeypatch):
    """A disk error reading an unpacked book's package (the tests run as root, whom permissions do not stop: an
    input/output error put in its way) is that book's failure in one line; the chapter beside it is read."""
    import errno

    from manga2music import epub

    series = tmp_path / "series"
    _unpack(make_book(tmp_path / "v1.epub"), series / "Vol 1")
    (series / "Vol 2").mkdir()
    (series / "Vol 2" / "001.png").write_bytes((SAMPLES / "calm" / "001.png").read_bytes())

    def failing(self, info):
        raise OSError(errno.EIO, "Input/output error", str(self.folder / info.filename))

    monkeypatch.setattr(epub.UnpackedBook, "open", failing)
    vol1, vol2 = find_sections([series])
    assert (vol1.pages, vol1.error) == ([], f"{series / 'Vol 1'}: the book cannot be read (Input/output error)")
    assert (vol2.name, [p.name for p in vol2.pages]) == ("Vol 2", ["001.png"])


def test_an_epub_renamed_cbz_is_read_as_the_book_it_is(tmp_path):
    """`Vol 1.epub` renamed `Vol 1.cbz` (to open it in a comic reader) was read as a plain zip: its pictures in
    name order, the logo no document shows among them, without a word."""
    book = make_book(tmp_path / "Vol 1.cbz")
    [section] = find_sections([book])
    assert (section.name, section.error) == ("Vol 1", None)
    assert _pages(section) == EXPECTED


def test_an_epub_whose_pages_are_css_backgrounds_is_read_in_its_order(tmp_path):
    """A fixed-layout book that shows each page as a <div>'s background (in its style attribute, or a style sheet's
    rule for the div's class or id) was read as having no pages.  A background behind a page's <img> (a paper
    texture) is decoration, not a page."""
    order = [p for p, _ in READING_ORDER]
    sheet = (f"/* pages */ body {{ margin: 0 }}\n.pg1, div.pg1b {{ background: #fff url('../Images/{order[1]}') "
             f"no-repeat; }}\n#pg3 {{ background-image: url(../Images/{order[3]}) }}")
    head = '<link rel="stylesheet" type="text/css" href="../Styles/pages.css"/>'
    style = f"<style>.last {{ background-image:url(\"../Images/{order[4]}\") }}</style>"
    bodies = [f'<div style="width:100%; background-image: url(../Images/{order[0].replace(" ", "%20")})"></div>',
              '<div class="page pg1"></div>',
              f'<body style="background: url(../Images/logo.png)"><img src="../Images/{order[2].replace(" ", "%20")}"/>',
              '<div id="pg3"></div>', '<div class="last"></div>']
    files = {"META-INF/container.xml": CONTAINER, "OEBPS/Styles/pages.css": sheet}
    items, spine = [], []
    for k, body in enumerate(bodies):
        files[f"OEBPS/Text/p{k}.xhtml"] = (
            '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
            f"{head}{style}</head><body>{body}</body></html>")
        items.append(f'<item id="p{k}" href="Text/p{k}.xhtml" media-type="application/xhtml+xml"/>')
        spine.append(f'<itemref idref="p{k}"/>')
    files["OEBPS/content.opf"] = (
        '<?xml version="1.0"?>\n<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><manifest>'
        f'{"".join(items)}</manifest><spine>{"".join(spine)}</spine></package>')
    book = tmp_path / "fixed.epub"
    with zipfile.ZipFile(book, "w") as zf:
        for name, data in {**files, **{"OEBPS/" + n: d for n, d in PICTURES.items()}}.items():
            zf.writestr(name, data)
    said = []
    [section] = find_sections([book], warn=said.append)
    assert _pages(section) == EXPECTED and said == []


def test_a_book_whose_reading_order_was_mended_is_read_again_and_says_why(tmp_path):
    """The same pictures, the spine put right in Sigil or Calibre: the rerun read the pages again in their new
    order, but said "its record is from an older version" (the same version made it)."""
    book = make_book(tmp_path / "book.epub")
    args = ("describe", book, "-o", tmp_path / "out", "--model", "builtin", "--json")
    assert cli(*args, timeout=120).returncode == 0
    make_book(book, order=[READING_ORDER[k] for k in (2, 0, 1, 3, 4)])
    again = cli(*args, timeout=120)
    assert again.returncode == 0
    assert "book: describing again: its pages are in another order" in again.stderr, again.stderr
    record = json.loads((tmp_path / "out" / "book.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in record["pages"]][:3] == ["a page 2.jpg", "zz-cover.png", "b-first.png"]


def test_pictures_from_the_books_top_are_pages_and_pictures_written_into_a_page_are_said(tmp_path):
    """`<img src="/OEBPS/Images/p.png">` (a path from the book's top, as EPUB 3.3 resolves it) and a picture
    written into its page as a data: URL were both left out without a word: a book of such pages failed with "no
    page pictures in this EPUB (a book of text?)".  The first is read; the second is said."""
    import base64

    inline = base64.b64encode(PICTURES["Images/c-fourth.png"]).decode()
    book = make_book(tmp_path / "Vol 1.epub", extra={
        "OEBPS/Text/page2.xhtml": _document("a page 2.jpg", "img").replace('src="../Images/a%20page%202.jpg"',
                                                                           'src="/OEBPS/Images/a%20page%202.jpg"'),
        "OEBPS/Text/page4.xhtml": _document("c-fourth.png", "img").replace('src="../Images/c-fourth.png"',
                                                                           f'src="data:image/png;base64,{inline}"')})
    said: list[str] = []
    [section] = find_sections([book], warn=said.append)
    assert _pages(section) == EXPECTED[:4]
    assert len(said) == 1 and "1 picture the book shows is written into its pages' documents (data: URLs), which " \
                              "are not read: left out" in said[0], said
