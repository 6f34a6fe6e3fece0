"""A multi-page TIFF (a scanner's chapter in one file) is read page by page: it was read as its first page only."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from output_checks import cli
from PIL import Image

from manga2music.pages import decode_page, probe_page, travel_bytes
from manga2music.sections import find_sections

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
BUILTIN = ("--vision-model", "builtin", "--music-model", "builtin")


def scan(path: Path, folder: str = "action") -> Path:
    """The sample pages of ``folder`` saved as one multi-page TIFF, as a scanner's software saves a chapter."""
    frames = [Image.open(p).convert("L") for p in sorted((SAMPLES / folder).iterdir())]
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], compression="tiff_deflate")
    return path


def test_each_page_of_a_multi_page_tiff_is_a_page_of_its_own(tmp_path):
    scan(tmp_path / "ch" / "scan.tif")
    Image.open(SAMPLES / "calm" / "001.png").save(tmp_path / "ch" / "zz-last.png")
    (section,) = find_sections([tmp_path / "ch"])
    assert [p.name for p in section.pages] == [f"scan.tif (page {k})" for k in (1, 2, 3)] + ["zz-last.png"]
    assert section.pages[1].source == f"{tmp_path / 'ch' / 'scan.tif'}#2"
    shown = [np.asarray(decode_page(probe_page(p))[0].convert("L")) for p in section.pages[:3]]
    wanted = [np.asarray(Image.open(p).convert("L")) for p in sorted((SAMPLES / "action").iterdir())]
    for got, want in zip(shown, wanted):  # each page its own pixels, in the file's order
        assert got.shape == want.shape and np.array_equal(got, want)
    keys = {probe_page(p).key for p in section.pages}
    assert len(keys) == 4  # one file's bytes, three pages: resume and kept answers tell them apart
    info = probe_page(section.pages[1])  # as it travels to a Ray worker: that page alone, as the page it is
    sent = decode_page(info, max_side=512, data=travel_bytes(info, 512))
    here = decode_page(info, max_side=512)
    assert [t.size for t in sent] == [t.size for t in here]
    assert np.abs(np.asarray(sent[0], dtype=float) - np.asarray(here[0], dtype=float)).mean() < 10  # another page: 90+
    with zipfile.ZipFile(tmp_path / "ch.cbz", "w") as zf:  # in a comic archive too
        zf.write(tmp_path / "ch" / "scan.tif", "scan.tif")
    (packed,) = find_sections([tmp_path / "ch.cbz"])
    assert [p.name for p in packed.pages] == [f"scan.tif (page {k})" for k in (1, 2, 3)]
    assert np.array_equal(np.asarray(decode_page(probe_page(packed.pages[2]))[0].convert("L")), wanted[2])


def test_a_run_and_a_score_of_a_multi_page_tiff_read_every_page_and_resume(tmp_path):
    tiff = scan(tmp_path / "ch" / "scan.tif")
    out = tmp_path / "out"
    first = cli("run", tmp_path / "ch", "-o", out, *BUILTIN, "--json", timeout=240)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "multi-page TIFF" not in first.stderr
    record = json.loads((out / "ch.json").read_text(encoding="utf-8"))
    assert [(p["name"], p["frame"]) for p in record["pages"]] == [(f"scan.tif (page {k + 1})", k) for k in range(3)]
    assert {p["path"] for p in record["pages"]} == {str(tiff)}
    thumbs = sorted(f.name.split("-", 1)[1] for f in (out / ".manga2music" / "thumbs").glob("*.jpg"))
    assert thumbs == ["p1.jpg", "p2.jpg", "p3.jpg"]  # a picture of each page on the listening page
    again = cli("run", tmp_path / "ch", "-o", out, *BUILTIN, "--json", timeout=240)
    assert [s["status"] for s in json.loads(again.stdout)["sections"]] == ["skipped"], again.stderr[-2000:]
    scored = cli("score", tmp_path / "ch", "-o", tmp_path / "score", *BUILTIN, "--json", timeout=240)
    assert scored.returncode == 0, scored.stderr[-2000:]
    sheet = json.loads((tmp_path / "score" / "ch.cues.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in sheet["pages"]] == [f"scan.tif (page {k})" for k in (1, 2, 3)], sheet["pages"]


def test_a_multi_page_tiff_in_a_compressed_archive_is_said_to_be_read_as_its_first_page(tmp_path):
    """In a RAR, 7-Zip or compressed tar, counting a TIFF's pages would unpack the archive while a series is only
    listed: its first page is read, and the run says so."""
    import tarfile

    import pytest

    from manga2music.other_archives import bsdtar

    if bsdtar() is None:
        pytest.skip("bsdtar is not installed (scripts/install_bsdtar.sh)")
    scan(tmp_path / "scan.tif")
    with tarfile.open(tmp_path / "ch.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "scan.tif", "scan.tif")
    done = cli("describe", tmp_path / "ch.tar.gz", "-o", tmp_path / "out", "--model", "builtin", timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ch: scan.tif holds 3 pages (a multi-page TIFF); in a RAR, 7-Zip or compressed tar archive only its first" \
        in done.stderr, done.stderr


def _ifd_offsets(data: bytes) -> list[int]:
    """Where each frame's header (IFD) of a little-endian TIFF begins."""
    import struct

    offsets, at = [], struct.unpack_from("<I", data, 4)[0]
    while at and at < len(data):
        offsets.append(at)
        count = struct.unpack_from("<H", data, at)[0]
        at = struct.unpack_from("<I", data, at + 2 + 12 * count)[0]
    return offsets


def test_a_damaged_tiff_gives_its_pages_before_the_damage_and_says_so(tmp_path):
    """A TIFF whose third page's header pointer is broken was read as its first page only, in silence."""
    import struct

    tiff = scan(tmp_path / "ch" / "cut.tif")
    data = bytearray(tiff.read_bytes())
    second = _ifd_offsets(bytes(data))[1]
    count = struct.unpack_from("<H", data, second)[0]
    struct.pack_into("<I", data, second + 2 + 12 * count, len(data) - 3)  # the next header: past the end
    tiff.write_bytes(bytes(data))
    said = []
    (section,) = find_sections([tmp_path / "ch"], warn=said.append)
    assert [p.name for p in section.pages] == ["cut.tif (page 1)", "cut.tif (page 2)"], said
    assert any("damaged after its page 2" in line for line in said), said


def test_a_preview_frame_is_no_page_and_a_tiff_named_otherwise_is_read_page_by_page(tmp_path):
    """A scanner's TIFF with a small preview before its page was read as the preview (64 x 90); a multi-page TIFF
    saved as .png was read as its first page."""
    import struct

    from PIL import Image

    folder = tmp_path / "ch"
    folder.mkdir()
    Image.new("L", (64, 90), 200).save(folder / "thumb_then_page.tif", save_all=True,
                                       append_images=[Image.new("L", (640, 900), 90)], tiffinfo={254: 1})
    data = bytearray((folder / "thumb_then_page.tif").read_bytes())
    page = _ifd_offsets(bytes(data))[1]  # the page's NewSubfileType back to 0 (Pillow writes one for all frames)
    for k in range(struct.unpack_from("<H", data, page)[0]):
        entry = page + 2 + 12 * k
        if struct.unpack_from("<H", data, entry)[0] == 254:
            struct.pack_into("<I", data, entry + 8, 0)
    (folder / "thumb_then_page.tif").write_bytes(bytes(data))
    scan(tmp_path / "named.tif").rename(folder / "zz-scan.png")
    (section,) = find_sections([folder])
    assert [p.name for p in section.pages] == ["thumb_then_page.tif"] + [f"zz-scan.png (page {k})" for k in (1, 2, 3)]
    assert probe_page(section.pages[0]).size == (640, 900)  # the page, not its preview
    assert section.pages[0].frame == 1


def test_a_scenes_file_naming_what_several_tiff_pages_share_is_refused_not_taken_for_the_last(tmp_path):
    from manga2music.errors import InputError
    from manga2music.scenes import read_scenes_text

    names = [f"scan.tif (page {k})" for k in (1, 2, 3, 4)]
    assert read_scenes_text("1\nscan.tif (page 3)\n", "s.txt", names)[1][0] == 2
    import pytest

    with pytest.raises(InputError):
        read_scenes_text("1\nscan\n", "s.txt", names)  # "scan" is every page's stem: it names none of them


def test_the_web_ui_gallery_tells_a_tiffs_pages_apart(tmp_path):
    """Each caption read "scan.tif (pa…" (the gallery cuts a caption at its end): the pages could not be told apart."""
    from manga2music.webui.thumbnails import preview

    shown = preview([scan(tmp_path / "scan.tif")], tmp_path / "work")
    assert [caption for _, caption in shown.thumbnails] == [f"page {k} · scan.tif" for k in (1, 2, 3)]


def test_a_tiffs_bytes_kept_for_its_pages_are_let_go_when_the_command_ends(tmp_path):
    """The pages of one TIFF share its bytes while they are read; a web UI server kept the last file's (hundreds of
    MB for a scan) until another TIFF was read."""
    import manga2music
    from manga2music import pages

    scan(tmp_path / "ch" / "scan.tif")
    made = manga2music.describe([tmp_path / "ch"], tmp_path / "out", model="builtin")
    assert made["sections"][0]["status"] == "ok" and made["sections"][0]["pages"] == 3
    assert pages._SHARED_FILE == {}
