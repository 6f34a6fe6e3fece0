"""The read-along page in a real headless Chromium, from file:// with no network (issue #17)."""

from __future__ import annotations

import json
import time

import pytest
from browser import browser, page  # noqa: F401  (pytest fixtures)
from chapters import make_chapter
from output_checks import cli

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    root = tmp_path_factory.mktemp("readalong")
    make_chapter(root / "ch", [("calm", 3), ("action", 3)], seed=6)
    out = root / "out"
    result = cli("score", root / "ch", "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
                 "--seed", "2", timeout=300)
    assert result.returncode == 0, result.stderr
    return out, json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))


def test_follow_me_switches_cues_exactly_at_scene_boundaries(chapter, page):  # noqa: F811
    out, sheet = chapter
    page.goto((out / "ch.read.html").as_uri())
    assert page.evaluate("document.body.dataset.page") == "1"
    page.click("#sound")
    page.wait_for_function("document.body.dataset.playing === '1'", timeout=20000)
    scene_of = {p["index"]: p["scene"] for p in sheet["pages"]}
    for number in range(2, len(sheet["pages"]) + 1):  # forward through every page, then back
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"document.body.dataset.page === '{number}'")
        # the next scene's loop is decoded while the first plays: its cue starts as its first page shows
        page.wait_for_function(f"document.body.dataset.playing === '{scene_of[number]}'", timeout=5000)
    first_of_second = sheet["scenes"][1]["first_page"]
    for number in range(len(sheet["pages"]) - 1, first_of_second - 2, -1):
        page.keyboard.press("ArrowLeft")
        page.wait_for_function(f"document.body.dataset.page === '{number}'")
        page.wait_for_function(f"document.body.dataset.playing === '{scene_of[number]}'", timeout=5000)
    assert page.evaluate("window.readAlong.buffers.length") == len(sheet["scenes"])  # every loop decoded
    assert all(u.startswith(("file://", "data:")) for u in page.requested), page.requested
    assert page.console_errors == []


def test_play_through_shows_the_page_the_cue_sheet_gives(chapter, page):  # noqa: F811
    out, sheet = chapter
    page.goto((out / "ch.read.html").as_uri())
    page.click("#through")
    page.wait_for_function("document.getElementById('score').readyState >= 1", timeout=20000)
    for p in sheet["pages"]:  # the playhead a moment into each page's time shows that page
        t = p["start"] + 0.05
        page.evaluate(f"document.getElementById('score').currentTime = {t}")
        page.wait_for_function(f"document.body.dataset.page === '{p['index']}'", timeout=5000)
    page.click("#sound")  # it plays: the clock moves
    page.wait_for_function("document.getElementById('score').currentTime > 0.2 || "
                           "document.getElementById('score').ended", timeout=20000)
    assert page.console_errors == []


def test_the_music_button_follows_the_score_when_it_ends_or_its_own_controls_are_used(chapter, page):  # noqa: F811
    """Play through: once the score ended, or was paused with the player's own controls, the button still said
    "Stop music" (a click then only "stopped" what was already silent)."""
    out, _ = chapter
    page.goto((out / "ch.read.html").as_uri())
    page.click("#through")
    page.wait_for_function("document.getElementById('score').readyState >= 1", timeout=20000)
    button = "document.getElementById('sound').textContent"
    page.click("#sound")
    page.wait_for_function(f"{button} === 'Stop music'")
    page.evaluate("document.getElementById('score').pause()")  # its own pause button
    page.wait_for_function(f"{button} === 'Start music'", timeout=5000)
    page.evaluate("document.getElementById('score').play()")  # ... and its own play button
    page.wait_for_function(f"{button} === 'Stop music'", timeout=5000)
    page.evaluate("const s = document.getElementById('score'); s.currentTime = s.duration - 0.3")
    page.wait_for_function("document.getElementById('score').ended", timeout=20000)
    page.wait_for_function(f"{button} === 'Start music'", timeout=5000)
    assert page.console_errors == []


def test_a_second_click_on_start_music_while_its_loop_decodes_leaves_the_button_saying_what_plays(chapter, page):  # noqa: F811
    """A long cue's loop takes seconds to decode, and the button kept saying "Start music" meanwhile: a second click
    stopped it, then the first start ended and said "Stop music" over silence."""
    out, _ = chapter
    page.goto((out / "ch.read.html").as_uri())
    page.evaluate("""() => {  // each loop takes a second and a half to decode, as a long cue's does
        const real = AudioContext.prototype.decodeAudioData;
        AudioContext.prototype.decodeAudioData = function (b) {
            return new Promise(r => setTimeout(r, 1500)).then(() => real.call(this, b)); };
    }""")
    button = "document.getElementById('sound').textContent"
    page.click("#sound")
    assert page.evaluate(button) == "Stop music"  # at once: it is starting
    page.click("#sound")  # the reader clicks again before it sounds
    assert page.evaluate(button) == "Start music"
    page.wait_for_timeout(2500)  # the first click's decode ends
    assert page.evaluate(button) == "Start music" and page.evaluate("document.body.dataset.playing || '0'") == "0"
    assert not page.evaluate("window.readAlong.started")
    assert page.console_errors == []


def test_play_through_without_the_score_file_beside_the_page_says_so(chapter, tmp_path, page):  # noqa: F811
    """The read-along page copied out of its folder (or its score moved): Play through's button said "Stop music"
    over silence, the pages never turned, and only the browser console knew why.  It says which file it needs;
    Follow me still plays (its loops are in the page)."""
    import shutil

    out, _ = chapter
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "ch.read.html", alone / "ch.read.html")
    page.goto((alone / "ch.read.html").as_uri())
    page.click("#through")
    page.click("#sound")
    note = page.locator("#note")
    note.wait_for(state="visible", timeout=10000)
    assert "Play through needs ch.score.wav beside this page" in note.inner_text()
    page.wait_for_function("document.getElementById('sound').textContent === 'Start music'", timeout=5000)
    page.click("#follow")  # the loops are in the page: it plays
    assert not note.is_visible()
    page.click("#sound")
    page.wait_for_function("document.body.dataset.playing === '1'", timeout=20000)
    assert [e for e in page.console_errors if "ch.score.wav" not in e and "ERR_FILE_NOT_FOUND" not in e] == []


def test_clicks_turn_pages_and_the_page_names_the_scene(chapter, page):  # noqa: F811
    out, sheet = chapter
    page.goto((out / "ch.read.html").as_uri())
    box = page.locator("#stage").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2)
    page.wait_for_function("document.body.dataset.page === '2'")
    page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
    page.wait_for_function("document.body.dataset.page === '1'")
    assert page.inner_text("#scene").startswith("Scene 1")


def test_only_the_loops_around_the_readers_scene_are_kept_decoded(tmp_path, page):  # noqa: F811
    """A decoded loop is big (5 minutes: 115 MB): the page keeps the reader's scene and its neighbours decoded and
    lets the others go, so a long chapter does not fill a phone's memory; going back decodes a scene again."""
    make_chapter(tmp_path / "ch", [("calm", 2), ("action", 2), ("calm", 2), ("action", 2)], seed=3)
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n3\n5\n7\n", encoding="utf-8")
    out = tmp_path / "out"
    result = cli("score", tmp_path / "ch", "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
                 "--seed", "2", "--scenes", scenes, timeout=300)
    assert result.returncode == 0, result.stderr
    page.goto((out / "ch.read.html").as_uri())
    decoded = "[0, 1, 2, 3].map(j => !!window.readAlong.buffers[j])"
    page.click("#sound")
    page.wait_for_function("document.body.dataset.playing === '1' && !!window.readAlong.buffers[1]", timeout=20000)
    assert page.evaluate(decoded) == [True, True, False, False]  # scene 1, and scene 2 ready for the page turn
    for _ in range(4):  # to page 5: scene 3
        page.keyboard.press("ArrowRight")
    page.wait_for_function("document.body.dataset.playing === '3' && !!window.readAlong.buffers[3]", timeout=20000)
    assert page.evaluate(decoded) == [False, True, True, True]  # scene 1 let go
    for _ in range(4):  # back to page 1: decoded again
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.body.dataset.playing === '1'", timeout=20000)
    page.wait_for_function("!window.readAlong.buffers[3]", timeout=20000)
    assert page.evaluate(decoded)[:2] == [True, True]
    assert page.console_errors == []


@pytest.fixture(scope="module")
def webtoon(tmp_path_factory):
    """A webtoon episode saved as one tall image (3 calm parts, then 3 action parts), then two action pages."""
    from chapters import make_webtoon

    root = tmp_path_factory.mktemp("webtoon")
    make_webtoon(root / "ch" / "001.png", [("calm", 3), ("action", 3)], seed=3)
    make_chapter(root / "more", [("action", 2)], seed=4)
    for k, p in enumerate(sorted((root / "more").glob("*.png")), start=2):
        p.rename(root / "ch" / f"{k:03d}.png")
    out = root / "out"
    result = cli("score", root / "ch", "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
                 "--seed", "2", timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))
    assert [(p["name"], p["part"]) for p in sheet["pages"]] == \
        [("001.png", k) for k in range(1, 7)] + [("002.png", None), ("003.png", None)]
    assert sheet["pages"][2]["scene"] != sheet["pages"][3]["scene"]  # a scene starts at the strip's part 4
    return out, sheet


def test_a_tall_strip_is_read_part_by_part_and_every_part_is_shown(webtoon, page):  # noqa: F811
    """A webtoon episode saved as one long image is cut into page-shaped parts when it is read; the read-along page
    showed only its first part, so the rest of the episode could not be read along at all.  Each part has its own
    time in the cue sheet, and a scene may start inside the strip: its music follows the reader there."""
    out, sheet = webtoon
    scene_of = [p["scene"] for p in sheet["pages"]]
    page.goto((out / "ch.read.html").as_uri())
    assert page.evaluate("document.body.dataset.scroll") == "true"  # a webtoon opens in Scroll ...
    page.click("#scroll")  # ... and here it is read a page at a time
    assert page.evaluate("document.body.dataset.scroll") == "false" and page.is_visible("#page")
    page.click("#sound")
    page.wait_for_function("document.body.dataset.playing === '1'", timeout=20000)
    seen = []
    for k in range(8):  # the strip's six parts, then the next two pages
        page.wait_for_function(f"document.body.dataset.playing === '{scene_of[k]}'", timeout=10000)
        seen.append((page.evaluate("document.body.dataset.page"), page.evaluate("document.body.dataset.part"),
                     page.inner_text("#where"), page.evaluate("document.getElementById('page').src")))
        page.keyboard.press("ArrowRight")
    assert [s[:2] for s in seen] == [("1", str(k)) for k in range(1, 7)] + [("2", "1"), ("3", "1")]
    assert seen[1][2] == "page 1 of 3, part 2 of 6" and seen[6][2] == "page 2 of 3"
    assert len({s[3] for s in seen}) == 8  # each part is its own picture
    # play through: each part at its cue-sheet time; the playhead just past a part's start shows that part
    page.click("#through")
    page.wait_for_function("document.getElementById('score').readyState >= 1", timeout=20000)
    for k in (1, 3, 4, 5):
        page.evaluate(f"window.readAlongSeek({sheet['pages'][k]['start'] + 0.05})")
        page.wait_for_function(f"document.body.dataset.page === '1' && document.body.dataset.part === '{k + 1}'",
                               timeout=5000)
    page.keyboard.press("ArrowLeft")  # turning by hand moves the music to that part's time
    page.wait_for_function("document.body.dataset.part === '5'")
    assert abs(page.evaluate("document.getElementById('score').currentTime") - sheet["pages"][4]["start"]) < 0.5
    assert page.console_errors == []


AT_LINE = """() => {  // the picture under the reading line, a third of the way down the column
  const c = document.getElementById("column"), r = c.getBoundingClientRect();
  const el = document.elementFromPoint(r.left + r.width / 2, r.top + c.clientHeight / 3);
  return el && el.dataset.view !== undefined ? +el.dataset.view : null;
}"""


def test_scroll_reads_a_webtoon_in_one_column_and_the_music_follows_the_reading_line(webtoon, page):  # noqa: F811
    """A webtoon is read by scrolling, not by turning pages: every page and part in one column, the scene at the
    reading line plays, play-through scrolls with the score, and a scroll by the reader moves the score."""
    out, sheet = webtoon
    scene_of = [p["scene"] for p in sheet["pages"]]
    page.goto((out / "ch.read.html").as_uri())
    assert page.evaluate("document.body.dataset.scroll") == "true" and not page.is_visible("#page")
    assert page.locator("#column img").count() == 8  # six parts and two pages
    page.click("#sound")
    page.wait_for_function("document.body.dataset.playing === '1'", timeout=20000)
    for k in (2, 3, 7, 0):  # scrolled (as a wheel or a finger does) until view k is at the reading line
        page.evaluate(f"""() => {{ const c = document.getElementById("column"), el = c.querySelectorAll("img")[{k}];
            c.scrollTop = el.offsetTop + el.offsetHeight / 2 - c.clientHeight / 3; }}""")
        page.wait_for_function(f"window.readAlong.view === {k}", timeout=5000)
        assert page.evaluate(AT_LINE) == k
        page.wait_for_function(f"document.body.dataset.playing === '{scene_of[k]}'", timeout=10000)
        shown = page.locator("#column img").nth(k)
        assert shown.get_attribute("src").startswith("data:image/jpeg")  # its picture is there
    page.keyboard.press("ArrowRight")  # keys still go a page (or part) at a time, and the column follows
    page.wait_for_function("window.readAlong.view === 1")
    assert page.evaluate(AT_LINE) == 1
    # play through: the column follows the score; a scroll by the reader moves the score where it stopped
    page.click("#through")
    page.wait_for_function("document.getElementById('score').readyState >= 1", timeout=20000)
    page.evaluate(f"window.readAlongSeek({sheet['pages'][4]['start'] + 0.05})")
    assert page.evaluate(AT_LINE) == 4 and page.evaluate("document.body.dataset.part") == "5"
    page.evaluate("""() => { const c = document.getElementById("column"), el = c.querySelectorAll("img")[6];
        c.scrollTop = el.offsetTop - c.clientHeight / 3 + 2; }""")  # the reader scrolls to page 2's top
    page.wait_for_function(f"Math.abs(document.getElementById('score').currentTime - {sheet['pages'][6]['start']})"
                           " < 0.5", timeout=5000)
    page.wait_for_timeout(800)  # the score has caught up: what plays is what the reader scrolled to
    assert page.evaluate("document.body.dataset.page") == "2" and page.evaluate(AT_LINE) == 6
    # the choice is the reader's: turned off, it stays off for the next chapter (and this one, reloaded)
    page.click("#scroll")
    page.reload()
    assert page.evaluate("document.body.dataset.scroll") == "false" and page.is_visible("#page")
    assert page.console_errors == []


def test_an_episode_downloaded_in_slices_opens_in_scroll_with_its_slices_touching(tmp_path, page):  # noqa: F811
    """Webtoon sites serve an episode as slices of one long picture: read a page at a time, or with gaps between
    them, the pictures are cut apart.  Slices of one width, taller than manga pages, open in Scroll and touch."""
    from chapters import make_webtoon
    from PIL import Image

    make_webtoon(tmp_path / "strip.png", [("calm", 3), ("action", 3)], seed=3)
    strip = Image.open(tmp_path / "strip.png")
    cuts = [0, 900, 1900, 2800, 3900, strip.height]  # slices 600 px wide, 900 to 1100 tall (1.5-1.8)
    (tmp_path / "ep").mkdir()
    for k, (top, bottom) in enumerate(zip(cuts, cuts[1:]), start=1):
        strip.crop((0, top, strip.width, bottom)).save(tmp_path / "ep" / f"{k:02d}.png")
    out = tmp_path / "out"
    result = cli("score", tmp_path / "ep", "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
                 "--seed", "2", timeout=300)
    assert result.returncode == 0, result.stderr
    page.goto((out / "ep.read.html").as_uri())
    assert page.evaluate("document.body.dataset.scroll") == "true"
    gaps = page.evaluate("""() => [...document.querySelectorAll("#column img")].slice(1).map(
        (el) => el.offsetTop - (el.previousElementSibling.offsetTop + el.previousElementSibling.offsetHeight))""")
    assert len(gaps) == 4 and all(abs(g) <= 1 for g in gaps)
    assert page.console_errors == []


def test_which_chapters_are_read_by_scrolling():
    from manga2music.readalong import webtoon_layout

    assert webtoon_layout([(1000, 1480)] * 20) == (False, False)  # manga pages
    assert webtoon_layout([(800, 1280)] * 3 + [(800, 900)]) == (True, True)  # slices of an episode
    assert webtoon_layout([(800, 1280), (800, 1290)]) == (False, False)  # two tall pages are not an episode
    assert webtoon_layout([(800, 1280), (700, 1280), (800, 1280)]) == (False, False)  # nor pages of three widths
    assert webtoon_layout([(1000, 1480), (800, 12000), (1000, 1480)]) == (True, False)  # a tall strip among pages
    assert webtoon_layout([]) == (False, False)


def test_right_to_left_turns_pages_the_japanese_way_and_is_remembered(chapter, page):  # noqa: F811
    out, _ = chapter
    page.goto((out / "ch.read.html").as_uri())
    box = page.locator("#stage").bounding_box()
    left_half = (box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
    page.mouse.click(*left_half)  # left to right (the default): the left half goes back, so page 1 stays
    assert page.evaluate("document.body.dataset.page") == "1"
    page.click("#rtl")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.body.dataset.page === '2'")
    page.mouse.click(*left_half)
    page.wait_for_function("document.body.dataset.page === '3'")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.body.dataset.page === '2'")
    page.keyboard.press(" ")  # space goes on either way
    page.wait_for_function("document.body.dataset.page === '3'")
    page.reload()  # the reader's choice is kept for the next chapter
    page.wait_for_function("document.body.dataset.rtl === 'true'")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.body.dataset.page === '2'")
    page.click("#rtl")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.body.dataset.page === '3'")
    assert page.console_errors == []


def test_a_chapter_lettered_in_vertical_columns_is_read_right_to_left():
    from manga2music.readalong import right_to_left

    assert right_to_left(300, 280)  # Japanese manga: its text in vertical columns
    assert not right_to_left(300, 0) and not right_to_left(300, 40)  # lettered in lines, a few tall captions
    assert not right_to_left(12, 12)  # a few characters in a column (a sign) say nothing
    assert not right_to_left(0, 0)


def _japanese_chapter(folder, pages: int = 3):
    """Pages of panels lettered in vertical Japanese columns, as manga are (at print size: 22 pixels, set solid)."""
    from pathlib import Path

    from PIL import Image, ImageDraw, ImageFont

    font_path = Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf")
    if not font_path.exists():
        pytest.skip("no Japanese font on this machine (scripts/install_browser.sh installs one)")
    font = ImageFont.truetype(str(font_path), 22)
    lines = ["きのうはどこにいたの", "駅でずっと待ってた", "電車が遅れたの", "ごめんね本当に"]
    folder.mkdir(parents=True)
    for n in range(pages):
        sheet = Image.new("RGB", (828, 1170), "white")
        d = ImageDraw.Draw(sheet)
        for top in (40, 600):
            d.rectangle([40, top, 788, top + 530], outline="black", width=4)
            for k, text in enumerate(lines):
                for i, ch in enumerate(text):
                    d.text((730 - k * 36, top + 30 + i * 22), ch, fill="black", font=font)
            d.ellipse([120 + 40 * n, top + 200, 320 + 40 * n, top + 450], outline="black", width=3)
        sheet.save(folder / f"{n + 1:03d}.png")


def test_japanese_manga_opens_right_to_left_and_the_readers_choice_is_kept_apart(chapter, tmp_path, page):  # noqa: F811
    """A chapter lettered in vertical columns opens turning pages the Japanese way; a reader who turns that off
    there keeps it off for such chapters, and a chapter lettered in lines still opens left to right."""
    _japanese_chapter(tmp_path / "jp")
    out = tmp_path / "out"
    result = cli("score", tmp_path / "jp", "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
                 "--seed", "2", timeout=300)
    assert result.returncode == 0, result.stderr
    japanese = (out / "jp.read.html").as_uri()
    page.goto(japanese)
    page.wait_for_function("document.body.dataset.rtl === 'true'")
    assert page.get_attribute("#rtl", "aria-pressed") == "true"
    page.keyboard.press("ArrowLeft")  # the left arrow goes on
    page.wait_for_function("document.body.dataset.page === '2'")
    page.click("#rtl")  # this reader reads left to right
    page.reload()
    page.wait_for_function("document.body.dataset.rtl === 'false'")
    latin, _ = chapter
    page.goto((latin / "ch.read.html").as_uri())  # a chapter lettered in lines
    page.wait_for_function("document.body.dataset.rtl === 'false'")
    page.click("#rtl")  # ... read right to left by choice: the Japanese chapter keeps its own choice
    page.goto(japanese)
    page.wait_for_function("document.body.dataset.rtl === 'false'")
    page.goto((latin / "ch.read.html").as_uri())
    page.wait_for_function("document.body.dataset.rtl === 'true'")
    page.click("#rtl")
    assert page.console_errors == []


def test_next_chapter_goes_on_to_the_next_read_along_page_of_the_series(tmp_path, page):  # noqa: F811
    """A reader of a series turns past a chapter's last page (a note first, then on) to the next chapter that has
    a read-along page, in reading order, skipping one that failed; at the last chapter, the listening page says
    so.  The way goes through index.html, which lists the chapters there are now, so no link goes stale."""
    volume = tmp_path / "series" / "Vol 1"
    make_chapter(volume / "Chapter 1", [("calm", 2)], seed=1)
    make_chapter(volume / "Chapter 10 – 夜", [("action", 2)], seed=2)
    (volume / "Chapter 2.cbz").write_bytes(b"PK\x03\x04 not really a zip")  # a chapter that fails
    out = tmp_path / "out"
    result = cli("score", tmp_path / "series", "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
                 "--seed", "2", timeout=300)
    assert result.returncode == 1 and "Chapter 2" in result.stderr, result.stderr
    page.goto((out / "Vol 1" / "Chapter 1.read.html").as_uri())
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.body.dataset.page === '2'")
    page.keyboard.press("ArrowRight")  # past the last page: a note, the page stays
    assert page.inner_text("#where") == "end of the chapter: turn again for the next one"
    assert page.evaluate("document.body.dataset.page") == "2"
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**/Chapter%2010%20%E2%80%93%20%E5%A4%9C.read.html", timeout=10000)
    page.wait_for_function("document.body.dataset.page === '1'")
    assert page.inner_text("h1") == "Vol 1/Chapter 10 – 夜"
    page.click("#next-chapter")  # the last chapter: the listening page says so, at that chapter
    page.wait_for_selector("#after", timeout=10000)
    assert page.inner_text("#after") == "Vol 1/Chapter 10 – 夜 is the last chapter with a read-along page here."
    assert page.url.split("?")[0] == (out / "index.html").as_uri()
    page.go_back()
    page.click("#all-chapters")
    page.wait_for_url((out / "index.html").as_uri(), timeout=10000)
    assert page.console_errors == []


def _read_pages(page, sheet, times_the_estimate: float = 0.0, seconds: float = 0.0) -> None:  # noqa: F811
    """From the first page, turn on through every page (and past the last), staying on each page this many times
    its estimated reading time in the cue sheet, or this many seconds (the page's clock is Playwright's, moved by
    hand)."""
    reading = {p["index"]: p["reading_seconds"] for p in sheet["pages"]}
    for number in range(2, len(sheet["pages"]) + 1):
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"document.body.dataset.page === '{number}'")
        page.clock.run_for(round(1000 * (seconds or times_the_estimate * reading[number])))
    page.keyboard.press("ArrowRight")  # past the last page: the reader has read it


def test_the_page_tells_readers_their_reading_speed_from_how_long_they_stay_on_pages(chapter, tmp_path, page):  # noqa: F811
    """The --reading-speed knob is only as good as the reader's guess: the read-along page times the pages the
    reader turns on from, against their estimated times, and shows the speed that matches them (kept across
    chapters). Pages flipped through, turned by the score, or read in a chapter scored at another speed are told
    apart."""
    out, sheet = chapter
    assert sheet["reading_speed"] == 1.0 and len(sheet["pages"]) >= 5
    page.clock.install()
    page.clock.pause_at(time.time() * 1000 + 60_000)  # the page's time moves only when the test moves it
    page.goto((out / "ch.read.html").as_uri())
    assert page.is_hidden("#pace")
    _read_pages(page, sheet, seconds=0.2)  # flipped through: nothing is learnt
    page.reload()
    page.click("#through")  # the score turns the pages: nothing is learnt from pages turned in this mode either
    _read_pages(page, sheet, 2.0)
    page.reload()
    assert page.is_hidden("#pace") and page.evaluate("window.readAlong.pace") is None
    assert page.evaluate("localStorage.getItem('manga2music.pace')") in (None, "[]")  # nothing kept, not even unshown
    page.clock.run_for(60_000)  # a minute on the page the chapter opened at (starting the music...): not timed
    _read_pages(page, sheet, 2.0)  # a reader who takes twice the estimate: they read at half its speed
    assert page.evaluate("window.readAlong.pace") == 0.5
    assert page.get_attribute("#pace", "title").startswith(f"From the last {len(sheet['pages']) - 1} pages")
    assert page.inner_text("#pace") == "your pace: --reading-speed 0.5"
    page.reload()  # kept for the next chapter; a page read again in a new visit adds its time
    assert page.inner_text("#pace") == "your pace: --reading-speed 0.5"

    # a chapter scored for a fast reader: its times are half the estimate, and this reader takes four times those
    faster = tmp_path / "fast"
    result = cli("score", out.parent / "ch", "-o", faster, "--vision-model", "builtin", "--music-model", "builtin",
                 "--seed", "2", "--reading-speed", "2", timeout=300)
    assert result.returncode == 0, result.stderr
    fast_sheet = json.loads((faster / "ch.cues.json").read_text(encoding="utf-8"))
    assert fast_sheet["reading_speed"] == 2.0
    page.goto((faster / "ch.read.html").as_uri())
    _read_pages(page, fast_sheet, 4.0)  # 4 x (estimate / 2) = 2 x the estimate: still half the estimate's speed
    assert page.evaluate("window.readAlong.pace") == 0.5
    assert "--reading-speed 2" in page.get_attribute("#pace", "title")
    assert page.console_errors == []


def test_keys_belong_to_the_control_that_has_focus(chapter, page):  # noqa: F811
    """Space on a focused button turned the page instead of pressing it ("Start music" left the music off); the
    score's own player lost its arrow keys (ArrowRight jumped to the next page's time, not a small seek); and
    Alt+ArrowLeft, the browser's Back, was taken as a page turn."""
    out, _ = chapter
    page.goto((out / "ch.read.html").as_uri())
    page.focus("#sound")
    page.keyboard.press("Space")
    page.wait_for_function("document.getElementById('sound').textContent === 'Stop music'", timeout=20000)
    assert page.evaluate("document.body.dataset.page") == "1"
    page.focus("#rtl")
    page.keyboard.press("Space")
    assert page.get_attribute("#rtl", "aria-pressed") == "true" and page.evaluate("document.body.dataset.page") == "1"
    page.keyboard.press("Space")  # back as it was (the choice is remembered in the browser)
    page.click("#through")
    page.wait_for_function("document.getElementById('score').readyState >= 1", timeout=20000)
    page.evaluate("const s = document.getElementById('score'); s.hidden = false; s.pause(); s.currentTime = 0")
    page.focus("#score")
    page.keyboard.press("ArrowRight")  # the player's own seek: a few seconds at most, and no page turned by us
    assert page.evaluate("document.getElementById('score').currentTime") < 6
    page.focus("#prev")
    page.keyboard.press("Alt+ArrowRight")
    assert page.evaluate("document.body.dataset.page") == "1"
    page.keyboard.press("ArrowRight")  # away from the controls that take keys, arrows still turn pages
    page.wait_for_function("document.body.dataset.page === '2'")
    assert page.console_errors == []


def test_a_screen_reader_hears_each_page_turn_and_the_end_of_the_chapter(chapter, page):  # noqa: F811
    """Nothing on the page was a live region: a turn changed "page 2 of 6" and the picture silently, and the end of
    the chapter ("turn again for the next one") was not heard before the next turn left for another chapter."""
    out, sheet = chapter
    page.goto((out / "ch.read.html").as_uri())
    assert page.get_attribute("#where", "aria-live") == "polite"
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.body.dataset.page === '2'")
    assert "page 2 of" in page.inner_text("#where")


def test_the_page_stays_in_sight_at_400_percent_zoom_and_on_a_phone(chapter, browser):  # noqa: F811
    """At 400 % zoom (a 320 x 256 CSS-pixel window) the header took the whole height and the page picture was 0
    pixels high: nothing of the manga could be seen."""
    out, _ = chapter
    for width, height, scale in ((320, 256, 4), (360, 740, 2), (1100, 900, 1)):
        context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=scale)
        try:
            pg = context.new_page()
            pg.goto((out / "ch.read.html").as_uri())
            pg.wait_for_function("document.getElementById('page').complete && "
                                 "document.getElementById('page').naturalWidth > 0", timeout=20000)
            box = pg.locator("#page").bounding_box()
            assert box is not None and box["height"] >= 0.4 * height, (width, height, box)
            assert pg.evaluate("document.documentElement.scrollWidth") <= width + 1
        finally:
            context.close()


def test_scroll_mode_keeps_the_column_reachable_and_its_focus_visible(webtoon, page):  # noqa: F811
    """A webtoon opened with focus in the column, whose outline was removed (focus invisible), and whose tabindex -1
    let nobody Tab back to it once they had left it."""
    out, _ = webtoon
    page.goto((out / "ch.read.html").as_uri())
    if page.evaluate("document.body.dataset.scroll") != "true":
        page.click("#scroll")
    assert page.get_attribute("#column", "tabindex") == "0"
    page.focus("#column")
    outline = page.evaluate("getComputedStyle(document.getElementById('column')).outlineStyle")
    assert outline not in ("none", ""), outline


def test_the_pressed_mode_is_seen_in_forced_colours_and_in_contrast(chapter, page):  # noqa: F811
    """With forced colours (Windows high contrast) "Follow me" (pressed) looked exactly like "Play through" (not):
    the pressed state was a background colour only.  Its text was 3.9:1 against that colour (4.5:1 needed)."""
    out, _ = chapter
    page.emulate_media(forced_colors="active")
    page.goto((out / "ch.read.html").as_uri())

    def look(selector: str) -> tuple:
        return page.evaluate(f"(() => {{ const s = getComputedStyle(document.querySelector('{selector}')); return "
                             "[s.outlineStyle, s.outlineWidth, s.textDecorationLine, s.borderWidth, s.fontWeight]; })()")

    assert look("#follow") != look("#through")
    page.emulate_media(forced_colors="none")
    bg = page.evaluate("getComputedStyle(document.getElementById('follow')).backgroundColor")
    fg = page.evaluate("getComputedStyle(document.getElementById('follow')).color")

    def luminance(css: str) -> float:
        r, g, b = (int(v) / 255 for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    light, dark = sorted((luminance(bg), luminance(fg)), reverse=True)
    assert (light + 0.05) / (dark + 0.05) >= 4.5, (bg, fg)
