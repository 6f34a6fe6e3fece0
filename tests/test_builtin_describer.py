"""The offline builtin describer: page measurements, text detection, the mood table, and the sample sections."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from manga2music.analysis import GENRES
from manga2music.describers.base import PageImage
from manga2music.describers import builtin as builtin_module
from manga2music.describers.builtin import MOODS, RULES_VERSION, BuiltinDescriber, Scores, choose_mood, music_description
from manga2music.describers.page_features import measure_page
from manga2music.pages import tile_strip
from manga2music.errors import InputError
from manga2music.reading import READING_MODEL_VERSION, PageReading, read_page
from manga2music.registry import load_backend_class, resolve

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
TEMPO = re.compile(r"\b(\d{2,3}) BPM\b")
KEY = re.compile(r"\bin ([A-G][#b]?) (major|minor|dorian)\b")


def load_section(folder: Path) -> list[PageImage]:
    """Pages as the pipeline hands them over: RGB, tall strips cut into tiles named "x.png#1", "x.png#2"..."""
    pages = []
    for path in sorted(folder.iterdir()):
        with Image.open(path) as raw:
            image = raw.convert("RGB")
            fmt = raw.format or "PNG"
        tiles = tile_strip(image)
        if len(tiles) == 1:
            pages.append(PageImage(path.name, image, format=fmt))
        else:
            pages += [PageImage(f"{path.name}#{i + 1}", tile, format=fmt) for i, tile in enumerate(tiles)]
    return pages


def describe(pages: list[PageImage], **kwargs):
    return BuiltinDescriber().describe(pages, **kwargs)


def tempo_key(description: str) -> tuple[int, str, str]:
    tempo, key = TEMPO.search(description), KEY.search(description)
    assert tempo and key, description
    return int(tempo.group(1)), key.group(1), key.group(2)


@pytest.fixture(scope="module")
def calm():
    return describe(load_section(SAMPLES / "calm"))


@pytest.fixture(scope="module")
def action():
    return describe(load_section(SAMPLES / "action"))


# --------------------------------------------------------------------------- synthetic pages
def blank(size=(600, 850), colour=(255, 255, 255)) -> Image.Image:
    return Image.new("RGB", size, colour)


def grid_page(rows=2, cols=2, margin=30, gutter=20) -> Image.Image:
    img = blank()
    d = ImageDraw.Draw(img)
    w, h = img.size
    cw, ch = (w - 2 * margin - (cols - 1) * gutter) / cols, (h - 2 * margin - (rows - 1) * gutter) / rows
    for r in range(rows):
        for c in range(cols):
            x0, y0 = margin + c * (cw + gutter), margin + r * (ch + gutter)
            d.rectangle([x0, y0, x0 + cw, y0 + ch], outline=(0, 0, 0), width=3)
    return img


def text_page(lines: int = 8, size: int = 26) -> Image.Image:
    """A bordered panel holding free-floating lines of real lettering (no balloons at all)."""
    from PIL import ImageFont

    img = blank((850, 1200))
    d = ImageDraw.Draw(img)
    d.rectangle([30, 30, 820, 1170], outline=(0, 0, 0), width=3)
    font = ImageFont.load_default(size=size)
    for i in range(lines):
        d.text((70, 80 + i * 130), TALK[i % len(TALK)], fill=(0, 0, 0), font=font)
    return img


TALK = ["Where were you last night?", "I waited at the station", "for two hours, you know.", "Sorry, the train was late",
        "and my phone battery died.", "You could have called me!", "I said my phone was dead!", "Fine. Let us just go home."]


def dot_tone_page() -> Image.Image:
    """A page whose big panel is filled with a regular dot screen (screentone), and nothing else."""
    img = grid_page(1, 1)
    arr = np.asarray(img).copy()
    yy, xx = np.mgrid[0:arr.shape[0], 0:arr.shape[1]]
    dots = ((xx % 7) - 3) ** 2 + ((yy % 7) - 3) ** 2 < 5
    inside = (yy > 40) & (yy < 810) & (xx > 40) & (xx < 560)
    arr[dots & inside] = 60
    return Image.fromarray(arr)


def hatched_page() -> Image.Image:
    """Short cross-hatching strokes all over one panel: shading, not speed lines."""
    img = grid_page(1, 1)
    d = ImageDraw.Draw(img)
    for y in range(50, 800, 14):
        for x in range(50, 540, 30):
            d.line([(x, y), (x + 12, y + 8)], fill=(0, 0, 0), width=1)
            d.line([(x + 12, y), (x, y + 8)], fill=(0, 0, 0), width=1)
    return img


def line_page() -> Image.Image:
    """One bordered panel full of dense parallel motion lines."""
    img = blank()
    panel = Image.new("RGB", (540, 790), (255, 255, 255))
    d = ImageDraw.Draw(panel)
    for off in range(-900, 900, 9):
        d.line([(0, off), (540, off + 350)], fill=(0, 0, 0), width=2)
    img.paste(panel, (30, 30))
    ImageDraw.Draw(img).rectangle([30, 30, 570, 820], outline=(0, 0, 0), width=3)
    return img


def noise_page() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((850, 600)) * 255).astype(np.uint8)).convert("RGB")


def chatty_grid() -> Image.Image:
    """Six small panels, each with a speech ellipse: a talkative, bright page."""
    img = grid_page(3, 2)
    d = ImageDraw.Draw(img)
    for r in range(3):
        for c in range(2):
            cx, cy = 165 + c * 280, 140 + r * 265
            d.ellipse([cx - 70, cy - 50, cx + 70, cy + 50], fill=(255, 255, 255), outline=(0, 0, 0), width=2)
            d.line([(cx - 30, cy), (cx + 30, cy)], fill=(0, 0, 0), width=2)
            d.rectangle([cx - 100, cy + 90, cx + 100, cy + 100], fill=(200, 200, 200))  # a floor in each panel
    return img


def half_black() -> Image.Image:
    img = blank()
    ImageDraw.Draw(img).rectangle([0, 0, 299, 849], fill=(0, 0, 0))
    return img


def scene_page(fill, shapes) -> Image.Image:
    img = blank(colour=fill)
    d = ImageDraw.Draw(img)
    for k, colour in enumerate(shapes):
        d.ellipse([60 + 150 * k, 300, 190 + 150 * k, 430], fill=colour, outline=(30, 30, 30), width=2)
    return img


# --------------------------------------------------------------------------- features
def test_blank_page_has_no_ink_one_panel_no_lines():
    f = measure_page(blank())
    assert f["ink"] < 0.001 and f["brightness"] > 0.99
    assert f["panel_count"] == 1 and f["panel_area"] == 1.0
    assert f["speed_lines"] == 0.0 and f["tone"] == 0.0
    assert f["is_colour"] is False


def test_grid_of_bordered_panels_is_counted_on_white_and_on_yellowed_paper():
    assert measure_page(grid_page(2, 2))["panel_count"] == 4
    assert measure_page(grid_page(3, 2))["panel_count"] == 6
    white = grid_page(3, 2)
    plain = measure_page(white)
    for tint in ([0.93, 0.86, 0.62], [0.85, 0.75, 0.45]):  # cream, and badly yellowed old newsprint
        aged = Image.fromarray((np.asarray(white) * np.array(tint)).astype(np.uint8))
        yellowed = measure_page(aged)
        assert yellowed["panel_count"] == 6  # the tinted gutters are still found
        assert abs(yellowed["brightness"] - plain["brightness"]) < 0.02  # the paper colour is divided out
        assert yellowed["is_colour"] is False and yellowed["warmth"] == 0.0
        assert yellowed["paper"][2] < 0.7  # and recorded


def test_panels_joined_across_the_gutter_are_still_two():
    """A balloon or a figure laid over the gutter joins two panels into one region; the gutter's straight run
    across it still separates them.  A white bay cut into a frameless panel's edge does not split it."""
    def two_panels(bridge) -> Image.Image:
        page = grid_page(2, 1)
        d = ImageDraw.Draw(page)
        d.rectangle([33, 33, 567, 412], fill=(150, 150, 150))  # the art of both panels
        d.rectangle([33, 438, 567, 817], fill=(150, 150, 150))
        bridge(d)
        return page

    assert measure_page(grid_page(2, 1))["panel_count"] == 2
    balloon = two_panels(lambda d: d.ellipse([240, 370, 360, 480], fill=(255, 255, 255), outline=(0, 0, 0), width=3))
    assert measure_page(balloon)["panel_count"] == 2
    figure = two_panels(lambda d: d.rectangle([120, 380, 200, 470], fill=(20, 20, 20)))  # breaking out of both frames
    assert measure_page(figure)["panel_count"] == 2
    frameless = blank()
    d = ImageDraw.Draw(frameless)
    d.rectangle([30, 30, 570, 820], fill=(150, 150, 150))
    for k in range(6):  # clouds of white sky open into the margin along the right edge
        d.ellipse([380 + 10 * k, 100 + 120 * k, 620, 180 + 120 * k], fill=(255, 255, 255))
    d.rectangle([150, 380, 620, 420], fill=(255, 255, 255))  # and one white band half across it
    assert measure_page(frameless)["panel_count"] == 1


def test_panels_of_a_page_whose_art_runs_off_every_edge_are_counted_by_their_frames():
    """Full-bleed pages (real manga draw many: OpenMantra's *boureisougi* and *tojime_no_siora*): the white ground of
    the panels reaches the page's edge, so the paper "connected to the edge" floods them and no gutter cuts them apart,
    and a figure and a balloon cross the gutters that are there.  Their frame lines still enclose them."""
    page = blank()
    d = ImageDraw.Draw(page)
    panels = [(-10, -10, 610, 270), (-10, 290, 290, 560), (310, 290, 610, 560), (-10, 580, 290, 860),
              (310, 580, 610, 860)]
    for x0, y0, x1, y1 in panels:  # line art on white, each panel's frame off the page on its outer sides
        d.rectangle([x0, y0, x1, y1], outline=(0, 0, 0), width=3)
        for x in range(max(x0, 0) + 120, min(x1, 600) - 20, 12):  # short hatching strokes: a shadow
            for y in range(max(y0, 0) + 20, min(y1, 850) - 50, 45):
                d.line([(x, y), (x - 12, y + 35)], fill=(40, 40, 40), width=2)
        d.ellipse([max(x0, 0) + 20, max(y0, 0) + 40, max(x0, 0) + 100, max(y0, 0) + 120], outline=(0, 0, 0), width=3)
    d.rectangle([420, 200, 500, 650], fill=(30, 30, 30))  # a figure standing across both gutters
    d.ellipse([240, 380, 360, 470], fill=(255, 255, 255), outline=(0, 0, 0), width=3)  # a balloon across one
    assert measure_page(page)["panel_count"] == 5
    reading = read_page(page, "bleed.png")
    assert reading.panels == 5 and reading.seconds >= 5 * 1.5  # each panel's picture is looked at: 1.5 s a panel


def test_panels_are_found_inside_a_thin_border_line_and_between_black_gutters():
    """Real pages: a scan or export with a 1-pixel dark line round the image (it cut every gutter off the page
    edge: one panel), and flashback pages whose panels sit on a black page (black gutters)."""
    cells = [(30 + c * 280, 30 + r * 273, 30 + c * 280 + 260, 30 + r * 273 + 253) for r in range(3) for c in range(2)]
    hatching = blank()
    d = ImageDraw.Draw(hatching)
    for x in range(-100, 600, 40):  # grey art, so no panel is paper-white inside
        d.line([(x, 0), (x + 100, 850)], fill=(120, 120, 120), width=9)
    lined = blank()
    for box in cells:
        lined.paste(hatching.crop(box), box[:2])
        ImageDraw.Draw(lined).rectangle(box, outline=(0, 0, 0), width=3)
    assert measure_page(lined)["panel_count"] == 6
    ImageDraw.Draw(lined).rectangle([0, 0, 599, 849], outline=(10, 10, 10), width=1)  # the thin line round the image
    assert measure_page(lined)["panel_count"] == 6

    black = Image.new("RGB", (600, 850), (8, 8, 8))
    d = ImageDraw.Draw(black)
    for x0, y0, x1, y1 in cells:  # white panels with their line art, on a black page
        d.rectangle([x0, y0, x1, y1], fill=(250, 250, 250))
        d.line([(x0 + 20, y0 + 200), (x0 + 130, y0 + 40), (x0 + 240, y0 + 220)], fill=(0, 0, 0), width=4)
        d.ellipse([x0 + 90, y0 + 90, x0 + 170, y0 + 170], outline=(0, 0, 0), width=3)
    assert measure_page(black)["panel_count"] == 6
    # one dark splash bleeding off every edge, with bright shapes in it, stays one panel
    splash = Image.new("RGB", (600, 850), (15, 15, 15))
    d = ImageDraw.Draw(splash)
    for k in range(5):
        d.ellipse([60 + 90 * k, 100 + 130 * k, 200 + 90 * k, 260 + 130 * k], fill=(240, 240, 240))
    assert measure_page(splash)["panel_count"] == 1
    # one framed picture whose frame is the image's edge, dark shapes on white inside it, stays one panel
    framed = blank()
    d = ImageDraw.Draw(framed)
    d.rectangle([0, 0, 599, 849], outline=(0, 0, 0), width=2)
    for k in range(4):
        d.ellipse([50 + 120 * k, 150 + 150 * k, 200 + 120 * k, 330 + 150 * k], fill=(20, 20, 20))
    assert measure_page(framed)["panel_count"] == 1


def test_panels_of_real_pages_joined_across_the_gutter():
    pages = Path(__file__).resolve().parent / "data" / "pages"
    attack = measure_page(Image.open(pages / "pc-e06-action" / "E06P07.jpg").convert("RGB"))
    assert attack["panel_count"] == 3  # claws and "BAM!" bridge the gutter under the first panel
    frameless = measure_page(Image.open(pages / "pc-e06-calm" / "E06P02.jpg").convert("RGB"))
    assert frameless["panel_count"] == 4  # a frameless first panel whose clouds open into the margin


def test_free_floating_text_is_found_without_any_balloon():
    reading = read_page(text_page(), "talk.png")
    assert reading.text_boxes >= 6 and reading.text_detected
    true_chars = sum(len(line) for line in TALK)
    assert 0.6 * true_chars <= reading.text_chars <= 1.5 * true_chars  # estimated from box geometry
    assert reading.dialogue > 0.6  # carried by its words
    empty = read_page(grid_page(2, 2), "empty.png")
    assert empty.text_boxes == 0 and empty.text_chars == 0 and empty.dialogue == 0.0
    assert reading.seconds > empty.seconds


def test_speed_lines_are_told_apart_from_screentone_and_hatching():
    lines, tone, hatch, noise = (measure_page(p()) for p in (line_page, dot_tone_page, hatched_page, noise_page))
    assert lines["speed_lines"] > 3.0
    assert tone["tone"] > 0.5 and tone["speed_lines"] < 0.2  # dots: a periodic pattern, no strokes
    assert hatch["speed_lines"] < 0.2  # short strokes in two directions
    assert noise["speed_lines"] < 0.05 * lines["speed_lines"] and noise["tone"] < 0.1  # pixel noise: no bundles to speak of


def test_colour_and_warmth():
    gray = measure_page(Image.open(SAMPLES / "calm" / "001.png").convert("RGB"))
    orange = measure_page(scene_page((255, 150, 40), [(255, 200, 120), (230, 90, 40)]))
    blue = measure_page(scene_page((40, 90, 230), [(120, 170, 255), (40, 200, 220)]))
    assert gray["is_colour"] is False and gray["colourfulness"] == 0.0
    assert orange["is_colour"] and blue["is_colour"]
    assert orange["warmth"] > 0.5 > -0.5 > blue["warmth"]


# --------------------------------------------------------------------------- sections
def test_calm_and_action_sections_sound_different(calm, action):
    calm_tempo, _, calm_mode = tempo_key(calm.description)
    action_tempo, _, action_mode = tempo_key(action.description)
    assert calm_tempo <= 90 and action_tempo >= 130 and action_tempo - calm_tempo >= 40
    assert calm_mode == "major" and action_mode == "minor"
    assert re.search(r"piano|strings", calm.description) and re.search(r"drums|brass", action.description)
    assert calm.analysis.focus == "dialogue" and action.analysis.focus == "visual"
    assert calm.analysis.genre == "conversation" and action.analysis.genre == "action"
    cr, ar = calm.features["readings"], action.features["readings"]
    assert min(r["text_boxes"] for r in cr) >= 10 and max(r["text_boxes"] for r in ar) <= 2
    assert max(r["energy"] for r in cr) < 0.2 < 0.45 < min(r["energy"] for r in ar)
    assert min(r["measures"]["speed_lines"] for r in ar) > 3 * max(r["measures"]["speed_lines"] for r in cr)


def test_labels_agree(calm, action):
    """Genre, mood, pacing and plot come from one decision: no 'drama' over a 'calm' plot, no 'slow' action."""
    assert calm.features["mood"] == "calm" and action.features["mood"] == "action"
    assert calm.analysis.pacing.startswith("slow") and "calm" in calm.analysis.plot
    assert action.analysis.pacing.startswith(("fast", "frantic")) and "intense" in action.analysis.plot
    assert "Dialogue-led" in calm.analysis.plot and "Wordless" in action.analysis.plot


def test_description_has_the_stage_two_shape(calm, action):
    assert calm.chunks[0].pages == ["001.png", "002.png", "003.jpg"]
    assert action.chunks[0].pages == ["001.png", "002.png", "003.png"]
    for result in (calm, action):
        text = result.description
        assert len(text.split()) < 60
        assert not re.search(r"manga|comic|page|panel", text, re.I)
        assert "3 pages" in result.analysis.plot
        assert result.features["tempo_bpm"] == tempo_key(text)[0]
        assert result.features["rules_version"] == RULES_VERSION
        assert [r["name"] for r in result.features["readings"]] == result.chunks[0].pages
        readings = [PageReading.from_dict(r) for r in result.features["readings"]]
        assert result.features["reading_seconds"] == pytest.approx(sum(r.seconds for r in readings), abs=0.05)


def test_same_pages_same_result():
    first = describe(load_section(SAMPLES / "action")).model_dump()
    second = describe(load_section(SAMPLES / "action")).model_dump()
    assert first == second


def test_webtoon_strip_counts_as_one_page():
    pages = load_section(SAMPLES / "webtoon")
    assert len(pages) == 6 and pages[0].name == "001.png#1"
    result = describe(pages)
    assert result.features["pages"] == 1
    (reading,) = result.features["readings"]
    assert reading["name"] == "001.png" and reading["tiles"] == 6
    assert "across 1 page (a long strip)" in result.analysis.plot
    # the pacing counts the strip as the panels are counted, in page-sized parts: not "slow (about 80 s to read a
    # page, 3.0 panels a page)", which put a whole strip's time beside one part's panels
    seconds = float(re.search(r"about (\d+) s to read each page-sized part", result.analysis.pacing).group(1))
    assert seconds == pytest.approx(reading["seconds"] / 6, abs=0.5), result.analysis.pacing
    assert "panels a part" in result.analysis.pacing
    assert len(result.chunks[0].pages) == 6  # the record still lists what was sent
    assert result.features["mood"] == "calm" and result.analysis.focus == "dialogue"  # a talky, quiet strip


def test_single_page_and_twenty_pages_with_progress():
    one = describe([PageImage("only.png", grid_page(2, 2))])
    assert one.features["pages"] == 1 and "1 page," in one.analysis.plot
    assert one.features["energy_trend"] == 0.0
    calm_page = load_section(SAMPLES / "calm")[0].image
    action_page = load_section(SAMPLES / "action")[0].image
    pages = [PageImage(f"{i:03d}.png", calm_page if i < 10 else action_page) for i in range(20)]
    calls = []
    result = describe(pages, progress=lambda done, total, label: calls.append((done, total, label)))
    assert calls == [(i + 1, 20, f"{i:03d}.png") for i in range(20)]
    assert len(result.chunks) == 1 and len(result.chunks[0].pages) == 20
    assert result.features["energy_trend"] > 0.2 and "building" in result.description


def test_a_quiet_page_does_not_make_a_fight_calm():
    """A section's energy is that of its liveliest half: a fight page then a quiet page is an action section,
    while one fight page among four quiet ones does not turn the section into action."""
    fight = load_section(SAMPLES / "action")[0]
    quiet = load_section(SAMPLES / "calm")
    mixed = describe([fight, quiet[0]])
    assert mixed.features["mood"] == "action" and tempo_key(mixed.description)[0] >= 140
    mostly_quiet = describe([fight] + [PageImage(f"q{i}.png", quiet[i % 3].image) for i in range(4)])
    assert mostly_quiet.features["mood"] != "action"
    assert describe(quiet).features["mood"] == "calm"


def eight_panel_page(lines) -> Image.Image:
    """Eight panels, each with a figure (a circle) and the text ``lines(row, column)`` in its corner."""
    from PIL import ImageFont

    img = grid_page(4, 2)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=18)
    w, h = img.size
    cw, ch = (w - 60 - 20) / 2, (h - 60 - 60) / 4
    for r in range(4):
        for c in range(2):
            x0, y0 = 30 + c * (cw + 20), 30 + r * (ch + 20)
            d.ellipse([x0 + cw * 0.55, y0 + ch * 0.45, x0 + cw * 0.85, y0 + ch * 0.9], outline=(0, 0, 0), width=2)
            for k, line in enumerate(lines(r, c)):
                d.text((x0 + 12, y0 + 12 + 24 * k), line, fill=(0, 0, 0), font=font)
    return img


def test_many_panels_of_talk_are_a_conversation_not_a_gag():
    """Manga cut a conversation into many panels (6-7 a page is ordinary for a talky drama page), so many panels
    alone do not make a section comedy: many wordless panels are quick visual gags, many panels of talk are calm."""
    def talk(r, c):  # two lines of the conversation in each panel
        return [TALK[(2 * r + c + k) % len(TALK)] for k in range(2)]

    talky = describe([PageImage(f"t{i}.png", eight_panel_page(talk)) for i in range(2)])
    gags = describe([PageImage(f"g{i}.png", eight_panel_page(lambda r, c: [])) for i in range(2)])
    assert talky.features["readings"][0]["panels"] >= 6 and gags.features["readings"][0]["panels"] >= 6
    assert talky.analysis.focus == "dialogue" and talky.features["mood"] == "calm"
    assert tempo_key(talky.description)[0] < 100
    assert gags.analysis.focus == "visual" and gags.features["mood"] == "comedy"


def test_many_quiet_panels_with_a_few_words_are_calm_not_a_gag():
    """A quiet sequence cut into many small panels with a few words in them (a bus ride, thoughts in captions) is
    calm: only wordless quick cuts read as a visual gag.  Such pages of a real manga chapter were comedy at 108 BPM."""
    thoughts = ["Still staring...", "Is it the horns?", "Just ignore it."]

    def page(n: int) -> Image.Image:  # a short thought in every third panel
        return eight_panel_page(lambda r, c: [thoughts[r % 3]] if (r + c + n) % 3 == 0 else [])

    quiet = describe([PageImage(f"q{i}.png", page(i)) for i in range(2)])
    assert quiet.features["readings"][0]["panels"] >= 6
    assert quiet.analysis.focus == "visual" and quiet.features["mood"] == "calm"
    assert tempo_key(quiet.description)[0] < 100
    assert "Mostly visual scenes with some text" in quiet.analysis.plot


def motion_line_page(ink: bool) -> Image.Image:
    """Six panels of the same motion lines, drawn light (grey strokes on open paper) or in hard light and shadow
    (black strokes over a dark gradient that fills the lower half of each panel)."""
    img = grid_page(3, 2)
    arr = np.asarray(img).astype(np.float32)
    cw, ch = (600 - 60 - 20) / 2, (850 - 60 - 40) / 3
    for r in range(3):
        for c in range(2):
            x0, y0 = int(30 + c * (cw + 20)) + 4, int(30 + r * (ch + 20)) + 4
            x1, y1 = int(x0 + cw) - 8, int(y0 + ch) - 8
            panel = Image.new("L", (x1 - x0, y1 - y0), 255)
            d = ImageDraw.Draw(panel)
            for off in range(-400, 400, 20):
                d.line([(0, off), (x1 - x0, off + 120)], fill=0 if ink else 150, width=2)
            p = np.asarray(panel).astype(np.float32)
            if ink:
                fall = np.linspace(0, 1, p.shape[0])[:, None]
                p = np.minimum(p, np.clip((1 - fall) * 2 - 0.4, 0.25, 1) * 255)
            arr[y0:y1, x0:x1] = p[..., None]
    return Image.fromarray(arr.astype(np.uint8))


def test_lively_pages_in_hard_light_and_shadow_are_a_fight_not_a_gag():
    """The same lively motion lines in six panels: drawn light they are a gag (comedy), drawn in hard light and shadow
    they are a fight.  Sword fights of a real black-and-white manga (OpenMantra's rasetugari) were comedy at 111 BPM."""
    light = describe([PageImage(f"l{i}.png", motion_line_page(ink=False)) for i in range(2)])
    dark = describe([PageImage(f"d{i}.png", motion_line_page(ink=True)) for i in range(2)])
    for section in (light, dark):  # lively, in many small straight panels: neither loud enough nor laid out as action
        assert builtin_module.LIVELY <= section.features["scores"]["energy"] < builtin_module.INTENSE
        assert section.features["readings"][0]["panels"] == 6 and section.features["scores"]["slant"] == 0
    assert light.features["mood"] == "comedy" and dark.features["mood"] == "action"
    assert tempo_key(dark.description)[0] >= 140 and tempo_key(light.description)[0] < 130


@pytest.mark.parametrize("scores, mood, genre", [
    (dict(energy=0.6, dialogue=0.1, brightness=0.4, contrast=0.4, panels=7), "action", "action"),
    (dict(energy=0.3, dialogue=0.3, brightness=0.7, contrast=0.2, panels=2.5), "action", "action"),  # big, loud panels
    (dict(energy=0.3, dialogue=0.5, brightness=0.7, contrast=0.2, panels=7), "comedy", "comedy"),
    # lively in many panels whose frames are tilted: a layout drawn for urgency (an emergency), not a gag
    (dict(energy=0.3, dialogue=0.3, brightness=0.8, contrast=0.28, panels=6, slant=0.55), "action", "action"),
    # lively in many straight panels drawn in sharp light and shadow: an ink-drawn fight, not a gag
    (dict(energy=0.3, dialogue=0.4, brightness=0.75, contrast=0.33, panels=4.6, slant=0.05), "action", "action"),
    (dict(energy=0.1, dialogue=0.2, brightness=0.75, contrast=0.2, panels=6), "comedy", "comedy"),
    (dict(energy=0.1, dialogue=0.1, brightness=0.45, contrast=0.3, panels=3), "tense", "drama"),
    (dict(energy=0.1, dialogue=0.1, brightness=0.3, contrast=0.35, panels=3), "tense", "horror"),
    (dict(energy=0.05, dialogue=0.1, brightness=0.45, contrast=0.2, panels=3), "sad", "drama"),
    (dict(energy=0.1, dialogue=0.6, brightness=0.8, contrast=0.2, panels=4), "calm", "conversation"),
    (dict(energy=0.1, dialogue=0.1, brightness=0.8, contrast=0.2, panels=4), "calm", "slice of life"),
])
def test_every_mood_is_reached(scores, mood, genre):
    s = Scores(seconds=10.0, colour=0.0, warmth=0.0, **scores)
    chosen = choose_mood(s)
    assert chosen.name == mood and builtin_module.genre_of(chosen, s) == genre
    warm = Scores(**{**s.__dict__, "colour": 1.0, "warmth": 0.6})  # colour never changes the mood
    assert choose_mood(warm).name == mood


def test_every_mood_yields_a_parseable_description():
    scores = Scores(energy=0.5, dialogue=0.5, brightness=0.5, contrast=0.2, panels=4, seconds=10, colour=0, warmth=0)
    for mood in MOODS:
        tempo, key, mode = tempo_key(music_description(mood, scores, 0.0))
        assert mood.tempo[0] <= tempo <= mood.tempo[1] and mode == mood.mode and key in mood.keys
        assert mood.genre in GENRES
    assert MOODS[-1].test(scores)  # the last mood catches everything
    calm = next(m for m in MOODS if m.name == "calm")
    assert calm.tempo[1] < 100  # calm music stays under 100 BPM
    documented = re.findall(r"^   ([a-z-]+) {3,}", builtin_module.__doc__, re.M)
    assert documented[1:] == [mood.name for mood in MOODS]  # the docstring table is in the order that runs


def test_registry_settings_and_errors():
    spec = resolve("builtin", "vision")
    cls = load_backend_class(spec.backend)
    assert cls is BuiltinDescriber
    describer = cls(spec)
    assert describer.model_name == "builtin"
    assert describer.settings_key()["rules"] == RULES_VERSION
    assert describer.settings_key()["reading"] == READING_MODEL_VERSION
    with pytest.raises(InputError):
        describer.describe([])


def test_unusual_images_do_not_break_it():
    tiny = PageImage("tiny.png", blank((8, 5)))
    wide = PageImage("wide.png", grid_page(1, 1).resize((2000, 300)))
    result = describe([tiny, wide])
    assert result.features["pages"] == 2
    assert all(math.isfinite(v) for v in result.features["scores"].values())
    tiny_reading = result.features["readings"][0]
    assert tiny_reading["text_detected"] is False and tiny_reading["panels"] >= 1  # no text reading, the rest kept
    assert any("tiny.png: no text reading" in w for w in result.warnings)


def test_a_broken_text_detector_costs_the_text_only(monkeypatch):
    """If the detector cannot run, every page keeps its other readings and the section still gets music."""
    from manga2music.describers import text_detect

    def broken(*args, **kwargs):
        raise RuntimeError("onnxruntime: invalid model")

    monkeypatch.setattr(text_detect.detector(), "__call__", broken, raising=False)
    monkeypatch.setattr(text_detect, "detector", lambda: broken)
    result = describe(load_section(SAMPLES / "action"))
    assert result.features["pages"] == 3 and len(result.warnings) == 3
    assert all("text detection failed" in w for w in result.warnings)
    assert result.features["mood"] == "action"  # the artwork alone still reads as action


def test_builtin_composer_reads_the_descriptions(calm, action):
    """The music side's text reader gets the tempo and mode we wrote (skipped until it exists)."""
    text_to_style = pytest.importorskip("manga2music.music.text_to_style")
    for result in (calm, action):
        style = text_to_style.parse_style(result.description)
        tempo, _, mode = tempo_key(result.description)
        assert round(style.tempo_bpm) == tempo and style.mode == mode


def colourised(image: Image.Image) -> Image.Image:
    """A crude machine colouring: a cool sky over the top half, warm tones below, on a cream paper."""
    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    h = gray.shape[0]
    tint = np.where(np.arange(h)[:, None, None] < h // 2, np.array([0.75, 0.9, 1.15]), np.array([1.15, 0.95, 0.7]))
    paper = np.array([1.0, 0.97, 0.9])
    rgb = np.where(gray[..., None] > 0.97, paper, gray[..., None] * tint)
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))


@pytest.mark.parametrize("section", ["calm", "action"])
def test_colouring_the_same_pages_does_not_change_the_music(section):
    pages = load_section(SAMPLES / section)
    plain = describe(pages)
    coloured = describe([PageImage(p.name, colourised(p.image)) for p in pages])
    assert any(r["colour"] for r in coloured.features["readings"])
    assert coloured.features["mood"] == plain.features["mood"]
    assert coloured.analysis.genre == plain.analysis.genre
    assert abs(coloured.features["tempo_bpm"] - plain.features["tempo_bpm"]) <= 15
