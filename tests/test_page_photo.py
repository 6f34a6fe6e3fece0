"""A photo of a page is read as the page: the sheet found on its background, straightened, its light evened.

The photos are made from real pages (Pepper&Carrot, CC BY 4.0, tests/data/pages) by the simulated phone camera of
``benchmarks/photo_pages.py``: the sheet on a table, in perspective, a shadow across it, a little blur, JPEG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from repo_scripts import load_script

import manga2music.describers.page_photo as page_photo
from manga2music import reading_cache
from manga2music.describers.base import PageImage
from manga2music.describers.builtin import BuiltinDescriber
from manga2music.describers.page_photo import as_scanned, find_sheet
from manga2music.reading import read_page

PAGES = Path(__file__).parent / "data" / "pages"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
camera = load_script("benchmarks/photo_pages.py")
photographed, sheet_corners = camera.photographed, camera.sheet_corners


def mood(image: Image.Image) -> tuple[str, int]:
    features = BuiltinDescriber().describe([PageImage("p.jpg", image, "JPEG")]).features
    return features["mood"], features["tempo_bpm"]


@pytest.mark.parametrize("page", ["pc-e06-calm/E06P01.jpg", "pc-e06-action/E06P07.jpg", "pc-e08-tense/E08P05.jpg"])
def test_a_photo_of_a_page_sounds_like_the_page(page, monkeypatch):
    scan = Image.open(PAGES / page).convert("RGB")
    photo = photographed(scan)
    with monkeypatch.context() as m, reading_cache.paused():  # read as it was before: the table is black ink, the
        m.setattr(page_photo, "as_scanned", lambda image: None)  # shadow a dark mood (not the reader's own reading)
        as_taken = mood(photo)
    assert as_taken[0] != mood(scan)[0]
    assert mood(photo) == pytest.approx(mood(scan), abs=3)


def test_the_reading_of_a_photo_is_the_reading_of_its_page():
    scan = Image.open(PAGES / "pc-e06-calm" / "E06P03.jpg").convert("RGB")
    page, photo = read_page(scan, "scan"), read_page(photographed(scan, shadow=0.35), "photo")
    assert photo.cut_out and not page.cut_out
    assert photo.panels == page.panels
    assert photo.brightness == pytest.approx(page.brightness, abs=0.03)
    assert photo.measures["black"] == pytest.approx(page.measures["black"], abs=0.02)
    assert photo.measures["width"] / photo.measures["height"] == pytest.approx(850 / 1200, rel=0.03)


def test_the_sheet_is_cut_out_straight_and_evenly_lit():
    scan = Image.new("RGB", (850, 1200), "white")
    draw = ImageDraw.Draw(scan)
    for top in (60, 620):  # two framed panels with a little art, paper all round
        draw.rectangle((60, top, 790, top + 520), outline="black", width=6)
        draw.ellipse((300, top + 150, 550, top + 400), fill=(40, 40, 40))
    sheet = as_scanned(photographed(scan, shadow=0.4))
    assert sheet is not None
    assert sheet.width / sheet.height == pytest.approx(850 / 1200, rel=0.03)
    gray = np.asarray(sheet.convert("L"), dtype=np.float32) / 255
    h, w = gray.shape
    corners = [gray[int(h * fy) - 10:int(h * fy) + 10, int(w * fx) - 10:int(w * fx) + 10].mean()
               for fx, fy in ((0.5, 0.03), (0.5, 0.97), (0.03, 0.5), (0.97, 0.5))]  # paper between frame and edge
    assert min(corners) > 0.9 and max(corners) - min(corners) < 0.06  # the shadow took 0.4 off one end


@pytest.mark.parametrize("table", [(60, 55, 50), (120, 85, 55), (30, 30, 35)])
def test_the_sheet_is_found_on_dark_and_wooden_tables(table):
    scan = Image.open(PAGES / "pc-e14-calm" / "E14P02.jpg").convert("RGB")
    photo = photographed(scan, table=table)
    corners = find_sheet(np.asarray(photo))
    assert corners is not None
    assert np.abs(corners - sheet_corners(scan.size)).max() < 0.01 * 1200


def test_no_scan_is_taken_for_a_photo():
    pages = sorted(PAGES.glob("*/*.jpg")) + sorted(p for p in SAMPLES.glob("*/*") if p.suffix in (".png", ".jpg"))
    assert len(pages) >= 35
    for path in pages:
        assert as_scanned(Image.open(path).convert("RGB")) is None, path


def test_a_page_with_black_gutters_or_art_to_its_edges_is_not_cut():
    black = Image.new("RGB", (850, 1200), "black")  # white panels between black gutters
    draw = ImageDraw.Draw(black)
    for top in (40, 430, 820):
        draw.rectangle((40, top, 810, top + 340), fill="white")
        draw.line((80, top + 300, 700, top + 40), fill="black", width=5)
    bleed = Image.new("RGB", (850, 1200), (70, 70, 90))  # night art to the edges with a bright moon
    ImageDraw.Draw(bleed).ellipse((200, 300, 650, 750), fill=(235, 235, 225))
    for page in (black, bleed):
        assert as_scanned(page) is None
        assert not read_page(page).cut_out


@pytest.mark.parametrize("size", [(1, 1), (60, 80), (900, 1200)])
def test_blank_tiny_and_black_images_are_read_as_they_are(size):
    for colour in ("white", "black"):
        assert as_scanned(Image.new("RGB", size, colour)) is None


def test_a_scan_with_a_dark_surround_is_read_without_it():
    """A flatbed scan with the lid open: the yellowed sheet on black.  The surround is not the page's black ink."""
    page = Image.new("RGB", (850, 1200), (232, 214, 168))
    draw = ImageDraw.Draw(page)
    for top in (40, 420, 800):
        draw.rectangle((40, top, 810, top + 360), outline=(20, 20, 20), width=5, fill=(225, 205, 160))
        draw.ellipse((320, top + 80, 530, top + 290), fill=(60, 90, 160))
    scanned = Image.new("RGB", (910, 1260), (25, 22, 20))
    scanned.paste(page, (30, 30))
    alone, surrounded = read_page(page), read_page(scanned)
    assert surrounded.cut_out
    assert surrounded.panels == alone.panels == 3
    assert surrounded.measures["black"] == pytest.approx(alone.measures["black"], abs=0.01)


def test_a_dark_panel_on_a_black_page_is_not_taken_for_a_sheet():
    """A night panel on a black page has no paper margin round it: it is art, not a sheet on a table."""
    page = Image.new("RGB", (850, 1200), "black")
    draw = ImageDraw.Draw(page)
    draw.rectangle((60, 80, 790, 1120), fill=(38, 40, 52))
    for x in range(100, 760, 40):
        draw.line((x, 120, x + 200, 1080), fill=(120, 120, 140), width=2)
    assert as_scanned(page) is None


def test_the_photo_benchmark_reports_what_the_reader_hears(tmp_path, capsys, monkeypatch):
    import sys

    (tmp_path / "pages").mkdir()
    for name in ("pc-e06-calm/E06P01.jpg", "pc-e08-tense/E08P05.jpg"):
        (tmp_path / "pages" / Path(name).name).write_bytes((PAGES / name).read_bytes())
    monkeypatch.setattr(sys, "argv", ["photo_pages.py", str(tmp_path / "pages")])
    camera.main()
    out = capsys.readouterr().out
    assert "read as taken: same mood as the scan 0/2" in out
    assert "read now: same mood as the scan 2/2" in out and "sheet found and cut out: 2/2" in out


def test_the_sheet_is_found_on_a_stained_table():
    """A grainy table leaves patches that no flood reaches; one against the sheet bends its outline, which is still
    read as the sheet's four corners, not as a five-cornered something else."""
    scan = Image.open(PAGES / "pc-e14-calm" / "E14P02.jpg").convert("RGB")
    photo = photographed(scan, table=(110, 78, 50), shadow=0.15, border=0.25)
    corners = sheet_corners(scan.size, border=0.25)
    x, y = (float(v) for v in corners[[0, 3]].mean(axis=0))  # halfway down the sheet's left side
    draw = ImageDraw.Draw(photo)
    draw.ellipse((x - 150, y - 250, x + 4, y + 250), fill=(165, 130, 95))  # a lighter stain against the sheet
    draw.ellipse((20, 30, 70, 80), fill=(60, 40, 25))  # a knot in the corner
    found = find_sheet(np.asarray(photo))
    assert found is not None
    assert np.abs(found - corners).max() < 0.015 * 1200


@pytest.mark.parametrize("angle", [-20, 12, 20])
def test_a_sheet_photographed_askew_comes_out_upright(angle):
    page = Image.new("RGB", (850, 1200), "white")
    ImageDraw.Draw(page).rectangle((60, 60, 300, 300), fill=(20, 20, 20))  # a black block in the top-left
    photo = photographed(page, tilt=(0, 0, 0, 0), border=0.2).rotate(angle, expand=True, fillcolor=(60, 55, 50))
    sheet = as_scanned(photo)
    assert sheet is not None and sheet.width / sheet.height == pytest.approx(850 / 1200, rel=0.04)
    gray = np.asarray(sheet.convert("L"), dtype=np.float32) / 255
    h, w = gray.shape
    assert gray[int(0.1 * h):int(0.2 * h), int(0.1 * w):int(0.25 * w)].mean() < 0.3  # the block is still top-left
    assert gray[int(0.8 * h):int(0.9 * h), int(0.75 * w):int(0.9 * w)].mean() > 0.8
