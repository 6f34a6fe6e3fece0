"""The listening page (OUT/index.html): its HTML, its waveforms, and how it behaves in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from browser import browser, page, save_screenshot  # noqa: F401  (pytest fixtures)
from manga2music.listening_page import peak_envelope, render_listening_page, write_listening_page
from manga2music.outputs import SectionFiles, new_record, update_manifest, write_json_atomic

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SR = 32000
DURATION = 3.0
EVIL = '<script>alert("x")</script> & \'quotes\''


def tone(path: Path, seconds: float = DURATION, freq: float = 220.0, amp: float = 0.5) -> None:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)


def page_entries(folder: Path) -> list[dict]:
    import hashlib

    return [{"name": p.name, "source": str(p), "path": str(p.resolve()), "member": None, "pdf_index": None,
             "sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "tiles": 1} for p in sorted(folder.iterdir())]


def make_section(out: Path, name: str, pages: list[dict], *, takes: int = 1, midi: bool = False,
                 description: str = "", analysis: dict | None = None) -> dict:
    """Write what the pipeline writes for one finished section; return its manifest entry."""
    files = SectionFiles.for_section(out, name)
    files.base.parent.mkdir(parents=True, exist_ok=True)
    files.description.write_text(description + "\n", encoding="utf-8")
    tracks, mids, take_list = [], [], []
    for t in range(1, takes + 1):
        tone(files.track("wav", t), freq=220.0 * t)
        entry = {"take": t, "audio": files.track("wav", t).name, "seed": 41 + t, "info": {"tempo_bpm": 72 + t}}
        tracks.append(files.track("wav", t).relative_to(out).as_posix())
        if midi:
            files.midi(t).write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60MTrk\x00\x00\x00\x04\x00\xff\x2f\x00")
            entry["midi"] = files.midi(t).name
            mids.append(files.midi(t).relative_to(out).as_posix())
        take_list.append(entry)
    record = new_record(name)
    record.update({"pages": pages, "skipped_pages": [], "description": description,
                   "describe": {"model": "builtin", "analysis": analysis},
                   "compose": {"model": "builtin", "seed": 42, "takes": take_list}})
    write_json_atomic(files.record, record)
    return {"name": name, "status": "ok", "message": None,
            "description": files.description.relative_to(out).as_posix(),
            "record": files.record.relative_to(out).as_posix(), "tracks": tracks, "midi": mids,
            "pages": len(pages), "skipped_pages": [], "vision_model": "builtin", "music_model": "builtin",
            "seed": 42, "usage": None, "cost_usd": None}


@pytest.fixture
def handmade(tmp_path) -> tuple[Path, dict]:
    """An output folder as a run leaves it: two good sections (one Japanese, one with takes + MIDI), one failed."""
    out = tmp_path / "out"
    gone = {"name": "lost.png", "source": str(tmp_path / "lost.png"), "path": str(tmp_path / "lost.png"),
            "member": None, "pdf_index": None, "sha256": "0" * 64, "tiles": 1}
    entries = [
        make_section(out, "ch10 calm", page_entries(SAMPLES / "calm"), takes=2, midi=True,
                     description=f"Soft piano, slow strings. {EVIL}",
                     analysis={"genre": "drama", "atmosphere": "quiet evening", "focus": "visual",
                               "pacing": "slow, long panels", "plot": f"Two friends talk. {EVIL}"}),
        make_section(out, "第1話 夜", page_entries(SAMPLES / "action") + [gone],
                     description="Taiko drums and fast strings under a night chase.",
                     analysis={"genre": "action", "atmosphere": "tense", "focus": "visual", "pacing": "fast",
                               "plot": "A chase over rooftops."}),
        {"name": "ch2 broken", "status": "failed", "message": f"no readable page among 1 {EVIL}", "description": None,
         "record": None, "tracks": [], "midi": [], "pages": 0,
         "skipped_pages": [{"source": "in/ch2 broken/001.png", "error": "not a readable image"},
                           {"source": "in/ch2 broken/002.png",  # the reader's errors start with the page's name
                            "error": "in/ch2 broken/002.png: not a readable image (image file is truncated)"}],
         "vision_model": "builtin", "music_model": "builtin", "seed": None, "usage": None, "cost_usd": None},
    ]
    manifest = update_manifest(out, entries, command="run")
    return out, manifest


class PageParser(HTMLParser):
    """Collects what a reader of the page meets: sections, audio sources, images, and all visible text."""

    def __init__(self):
        super().__init__()
        self.sections, self.audio, self.images, self.text, self.links = [], [], [], [], []
        self.audio_names, self.alts = [], []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a)
        elif tag == "audio":
            self.audio.append(a["src"])
            self.audio_names.append(a.get("aria-label"))
        elif tag == "img":
            self.images.append(a["src"])
            self.alts.append(a.get("alt"))
        elif tag == "a":
            self.links.append(a.get("href", ""))
        elif tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def parse(html_text: str) -> PageParser:
    parser = PageParser()
    parser.feed(html_text)
    return parser


# ------------------------------------------------------------------ without a browser


def test_page_has_one_block_per_section_in_natural_order(handmade):
    out, manifest = handmade
    path = write_listening_page(out, manifest)
    assert path == out / "index.html"
    doc = parse(path.read_text(encoding="utf-8"))
    names = [s["data-name"] for s in doc.sections]
    assert names == ["第1話 夜", "ch2 broken", "ch10 calm"]  # by chapter number, whatever word comes before it
    assert "failed" in doc.sections[1]["class"]  # ch2 broken
    text = "".join(doc.text)  # each skipped page named once: "002.png: 002.png: not a readable image" said it twice
    assert "in/ch2 broken/001.png: not a readable image" in text
    assert text.count("in/ch2 broken/002.png") == 1 and "002.png: not a readable image (image file" in text


def test_a_local_models_folder_is_named_without_where_it_lies_on_this_machine(handmade):
    """A section made by a model in a local folder showed "vision /home/alice/models/my-vlm" on the page a reader
    shares with friends: the user's name and folders.  The page names the folder; the records keep its place."""
    out, manifest = handmade
    for entry in manifest["sections"]:
        if entry["status"] == "ok":
            entry["vision_model"], entry["music_model"] = "/home/alice/models/my-vlm", "/home/alice/models/mg/"
    text = "".join(parse(write_listening_page(out, manifest).read_text(encoding="utf-8")).text)
    assert "alice" not in text
    assert text.count("vision my-vlm") == 2 and text.count("music mg") == 2, text


def test_audio_and_midi_links_point_at_real_files(handmade):
    out, manifest = handmade
    doc = parse(write_listening_page(out, manifest).read_text(encoding="utf-8"))
    assert len(doc.audio) == 3  # two takes + one track
    assert any("%E7%AC%AC1%E8%A9%B1%20%E5%A4%9C" in src for src in doc.audio)  # 第1話 夜, percent-encoded
    for src in doc.audio + [h for h in doc.links if h.endswith(".mid")]:
        assert not src.startswith(("http:", "https:", "/"))
        assert (out / unquote(src)).is_file(), src
    assert sum(h.endswith(".mid") for h in doc.links) == 2


def test_each_player_is_named_for_its_section_and_take(handmade):
    """A screen reader heard three players named '' (Audio, play, audio time scrubber) and could not tell whose
    music each one plays."""
    out, manifest = handmade
    doc = parse(write_listening_page(out, manifest).read_text(encoding="utf-8"))
    assert sorted(doc.audio_names) == ["ch10 calm: take 1", "ch10 calm: take 2", "第1話 夜: track"]


def test_a_thumbnail_says_which_page_it_is_and_its_caption_its_name(handmade):
    """Each thumbnail's text was its file name twice (alt, then caption): a screen reader read "001.png, 001.png"
    and never heard where in the chapter the page is."""
    out, manifest = handmade
    doc = parse(write_listening_page(out, manifest).read_text(encoding="utf-8"))
    assert doc.alts == ["page 1 of 4", "page 2 of 4", "page 3 of 4",  # action (第1話), whose 4th page is lost
                        "page 1 of 3", "page 2 of 3", "page 3 of 3"], doc.alts  # calm


def test_model_text_is_escaped(handmade):
    out, manifest = handmade
    html_text = render_listening_page(out, manifest)
    assert "<script>alert" not in html_text
    text = "".join(parse(html_text).text)
    assert EVIL in text  # shown to the reader literally, in the description, the plot and the error
    assert text.count(EVIL) == 3


def test_thumbnails_are_embedded_and_a_lost_page_gets_a_placeholder(handmade):
    out, manifest = handmade
    html_text = render_listening_page(out, manifest)
    doc = parse(html_text)
    assert len(doc.images) == 6  # 3 calm + 3 action pages; lost.png has none
    for src in doc.images:
        assert src.startswith("data:image/jpeg;base64,")
        thumb = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert thumb.height == 180 and thumb.width > 20
    assert html_text.count("page not found") == 1
    assert "http://" not in html_text and "https://" not in html_text  # nothing fetched from anywhere


def test_peak_envelope_follows_the_audio(tmp_path):
    path = tmp_path / "half.wav"
    loud = 0.5 * np.sin(2 * np.pi * 330 * np.arange(SR) / SR)
    sf.write(str(path), np.concatenate([loud, np.zeros(SR)]).astype(np.float32), SR)
    peaks = peak_envelope(path, points=400)
    assert 395 <= len(peaks) <= 400
    assert np.allclose(peaks[: len(peaks) // 2 - 2], 0.5, atol=0.01)
    assert np.all(peaks[len(peaks) // 2 + 2:] == 0.0)


@pytest.mark.parametrize("frames", [SR * 3 + 7, 2_500_003])
def test_peak_envelope_is_the_loudest_sample_of_each_slice_to_the_last(tmp_path, frames, monkeypatch):
    """Each point is the loudest sample (of either channel) in its slice of the track, the last slice (cut short
    by the end of the file) too, whether the track is read in one piece or in several."""
    import manga2music.listening_page as listening_page

    rng = np.random.default_rng(7)
    audio = (rng.uniform(-0.3, 0.3, (frames, 2)) * np.linspace(0.2, 1.0, frames)[:, None]).astype(np.float32)
    audio[-1, 1] = -0.95  # the file's very last sample, on the right channel
    path = tmp_path / "track.wav"
    sf.write(str(path), audio, SR, subtype="FLOAT")
    size = -(-frames // 400)
    expected = [np.abs(audio[i:i + size]).max() for i in range(0, frames, size)]
    if frames < listening_page.READ_FRAMES:  # several reads of whole slices each (the long track: as it is)
        monkeypatch.setattr(listening_page, "READ_FRAMES", size * 3 + 1)
    assert np.array_equal(peak_envelope(path, points=400), np.asarray(expected, dtype=np.float32))
    assert peak_envelope(path, points=400)[-1] == np.float32(0.95)


# ------------------------------------------------------------------ in Chromium


def open_page(pg, out: Path) -> None:
    pg.goto((out / "index.html").resolve().as_uri())
    pg.wait_for_function("Array.from(document.images).every(i => i.complete)")
    pg.wait_for_function("Array.from(document.querySelectorAll('audio')).every(a => a.readyState >= 1)",
                         timeout=15000)


def check_in_browser(pg, out: Path, expected_sections: list[str], duration: float) -> dict:
    """What a listener sees: loaded thumbnails, playable tracks of the right length, the texts."""
    open_page(pg, out)
    state = pg.evaluate("""() => ({
        names: Array.from(document.querySelectorAll('section h2')).map(h => h.firstChild.textContent.trim()),
        images: Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight]),
        audio: Array.from(document.querySelectorAll('audio')).map(a => [a.readyState, a.duration, a.error]),
        text: document.body.innerText,
    })""")
    assert state["names"] == expected_sections
    assert state["images"] and all(w > 0 and h == 180 for w, h in state["images"])
    assert state["audio"]
    for ready, length, error in state["audio"]:
        assert error is None and ready >= 1
        assert abs(length - duration) <= 0.2, length
    assert all(u.startswith(("file:", "data:")) for u in pg.requested), [u for u in pg.requested if "://" in u]
    assert not pg.console_errors
    return state


@pytest.mark.browser
def test_listening_page_in_chromium(handmade, page, tmp_path):
    out, manifest = handmade
    write_listening_page(out, manifest)
    state = check_in_browser(page, out, ["第1話 夜", "ch2 broken", "ch10 calm"], DURATION)
    text = state["text"]
    for shown in ("quiet evening", "slow, long panels", "Taiko drums and fast strings", "A chase over rooftops.",
                  f"no readable page among 1 {EVIL}", "page not found", "calm.take2.wav", "calm.mid"):
        assert shown in text, shown
    assert page.locator("section.failed .error").is_visible()
    # clicking the middle of a waveform seeks its track to the middle
    wave = page.locator("section[data-name='第1話 夜'] .wave")
    box = wave.bounding_box()
    wave.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    at = page.evaluate("document.querySelector(\"section[data-name='第1話 夜'] audio\").currentTime")
    assert abs(at - DURATION / 2) < 0.3
    save_screenshot(page, tmp_path / "listening_page.png", Path("/tmp/listening_page.png"))
    assert (tmp_path / "listening_page.png").stat().st_size > 10_000


def _contrast(a: list[float], b: list[float]) -> float:
    """WCAG 2's contrast ratio of two sRGB colours (0-255 each)."""
    def luminance(rgb: list[float]) -> float:
        c = [x / 255 for x in rgb]
        c = [x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_waveform_stands_out_from_its_card_in_light_and_dark(handmade, page, scheme):
    """The waveform, which is also the control that seeks, was pale blue on white (2.1:1; dark: 2.5:1): WCAG asks
    3:1 of the graphics one needs to see and of controls. Measured as Chromium paints them."""
    out, manifest = handmade
    write_listening_page(out, manifest)
    page.emulate_media(color_scheme=scheme)
    open_page(page, out)
    fill, card = page.evaluate("""() => {
        const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
        const wave = document.querySelector('.wave polygon');
        return [rgb(getComputedStyle(wave).fill), rgb(getComputedStyle(wave.closest('section')).backgroundColor)];
    }""")
    assert _contrast(fill, card) >= 3.0, (scheme, fill, card, round(_contrast(fill, card), 2))


# ------------------------------------------------------------------ after a real run (builtin tier)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> tuple[Path, dict]:
    """`manga2music.run` (builtin tier) on two sample sections, one under a Japanese name, and a broken one."""
    import manga2music
    from manga2music.pipeline import RunConfig

    tmp = tmp_path_factory.mktemp("real_run")
    src = tmp / "in"
    shutil.copytree(SAMPLES / "calm", src / "calm")
    shutil.copytree(SAMPLES / "action", src / "第1話 夜")
    (src / "broken").mkdir()
    (src / "broken" / "001.png").write_bytes(b"not a png at all")
    out = tmp / "out"
    manifest = manga2music.run([src], out, vision_model="builtin", music_model="builtin",
                               config=RunConfig(duration=DURATION, seed=3))
    return out, manifest


@pytest.mark.slow
def test_real_run_writes_the_page(real_run):
    out, manifest = real_run
    assert [(s["name"], s["status"]) for s in manifest["sections"]] == [
        ("第1話 夜", "ok"), ("broken", "failed"), ("calm", "ok")]  # a numbered chapter first
    doc = parse((out / "index.html").read_text(encoding="utf-8"))
    assert [s["data-name"] for s in doc.sections] == ["第1話 夜", "broken", "calm"]
    assert len(doc.audio) == 2 and len(doc.images) == 6
    for src in doc.audio:
        assert (out / unquote(src)).is_file()
    text = "".join(doc.text)
    for entry in manifest["sections"]:
        if entry["status"] == "ok":
            assert (out / entry["description"]).read_text(encoding="utf-8").strip() in text


@pytest.mark.slow
@pytest.mark.browser
def test_real_run_page_plays_in_chromium(real_run, page, tmp_path):
    out, manifest = real_run
    state = check_in_browser(page, out, ["第1話 夜", "broken", "calm"], DURATION)
    for entry in manifest["sections"]:
        if entry["status"] == "ok":
            assert (out / entry["description"]).read_text(encoding="utf-8").strip() in state["text"]
    assert "no readable page" in page.locator("section.failed .error").inner_text()
    save_screenshot(page, tmp_path / "listening_page.png", Path("/tmp/listening_page.png"))


@pytest.mark.slow
@pytest.mark.browser
def test_one_player_plays_at_a_time_and_a_tracks_seed_is_said_once(real_run, page):
    """Two tracks started one after the other played on top of each other; and each track's line said its seed
    twice ("seed 3 · ... · seed: 3"), under the section's line that says it already."""
    out, _ = real_run
    open_page(page, out)
    waves = page.locator("section.ok .wave")
    assert waves.count() == 2
    for k in range(2):  # a click on a waveform plays its track (a listener's gesture, as the browser asks)
        box = waves.nth(k).bounding_box()
        waves.nth(k).click(position={"x": box["width"] / 10, "y": box["height"] / 2})
        page.wait_for_function(f"!document.querySelectorAll('section.ok audio')[{k}].paused")
    playing = page.evaluate("Array.from(document.querySelectorAll('section.ok audio')).map(a => !a.paused)")
    assert playing == [False, True]
    lines = page.evaluate("Array.from(document.querySelectorAll('section.ok')).map(s => "
                          "[s.querySelector('.models').innerText, s.querySelector('.track .info').innerText])")
    for models, info in lines:
        assert "seed 3" in models and "seed" not in info, (models, info)
        assert "key:" in info and "mode:" not in info  # "key: D minor", not "· mode: minor" after it


@pytest.mark.slow
@pytest.mark.browser
def test_a_track_started_right_after_another_plays_and_the_first_stops(real_run, page):
    """Two waveforms clicked in quick succession (before the first one's 'play' event came): that late event paused
    the track started after it, then the second's paused the first, and nothing played."""
    out, _ = real_run
    errors = []
    page.on("pageerror", lambda error: errors.append(error))  # a play() cut short by the pause was an uncaught error of the page
    open_page(page, out)
    page.evaluate("""() => document.querySelectorAll('section.ok .wave').forEach(w => {
        const box = w.getBoundingClientRect();
        w.dispatchEvent(new MouseEvent('click', {clientX: box.left + box.width / 10, clientY: box.top + 5}));
    })""")
    page.wait_for_timeout(500)  # both 'play' events have come by now
    playing = page.evaluate("Array.from(document.querySelectorAll('section.ok audio')).map(a => !a.paused)")
    assert playing == [False, True]
    assert errors == []


def test_a_rerun_that_changed_nothing_shows_its_chapters_as_ok_not_skipped(tmp_path):
    """After a plain rerun that found everything made, each chapter's heading said "SKIPPED" (the manifest's word):
    to a reader, a chapter left out, though its music is there and plays."""
    import re

    import manga2music

    manga2music.run([SAMPLES / "calm"], tmp_path / "out", vision_model="builtin", music_model="builtin",
                    config=manga2music.RunConfig(duration=1))
    again = manga2music.run([SAMPLES / "calm"], tmp_path / "out", config=manga2music.RunConfig(duration=1))
    assert [s["status"] for s in again["sections"]] == ["skipped"]  # the manifest keeps its word for scripts
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert re.findall(r'<span class="status"[^>]*>([^<]*)</span>', html) == ["ok"]
    assert "nothing to change" in html and len(parse(html).audio) == 1


def test_run_and_score_into_one_folder_each_leave_the_others_music_on_the_page(tmp_path):
    """`run` and `score` may share an output folder, but the listening page played only the last command's audio:
    after `score`, the section's track was on it nowhere; after `run`, the chapter's score was not, though its
    scenes, cues and read-along page were."""
    from output_checks import cli

    chapter, out = tmp_path / "ch", tmp_path / "out"
    shutil.copytree(SAMPLES / "calm", chapter)
    args = ("-o", out, "--vision-model", "builtin", "--music-model", "builtin", "--seed", "1")
    assert cli("run", chapter, *args, "--duration", "2").returncode == 0
    description = (out / "ch.txt").read_text(encoding="utf-8").strip()
    for command in ("score", "run"):
        extra = ("--duration", "2") if command == "run" else ()
        result = cli(command, chapter, *args, *extra, timeout=300)
        assert result.returncode == 0, result.stderr
        html = (out / "index.html").read_text(encoding="utf-8")
        doc = parse(html)
        assert {unquote(src) for src in doc.audio} == {"ch.wav", "ch.score.wav"}, command
        assert all((out / unquote(src)).is_file() for src in doc.audio)
        assert description[:40] in html.replace("&#x27;", "'")  # the track's words beside it
        assert "ch.read.html" in html and html.count('class="section') == 1


def test_the_other_commands_music_of_pages_changed_since_is_said_to_be_of_the_pages_before(tmp_path):
    """`score`, then a page redrawn, then `run`: the page listed the chapter score of the old pages beside the new
    track as if it were of these pages (and `run`'s track after a `score` of changed pages the same).  Each is now
    said to be of the pages before, with the command that makes it again; pages only renamed are the same pages."""
    from output_checks import cli

    chapter, out = tmp_path / "ch", tmp_path / "out"
    shutil.copytree(SAMPLES / "calm", chapter)
    args = ("-o", out, "--vision-model", "builtin", "--music-model", "builtin", "--seed", "1")
    said = "made from the pages before they changed"

    def page_text() -> str:
        return (out / "index.html").read_text(encoding="utf-8")

    assert cli("score", chapter, *args, timeout=300).returncode == 0
    assert cli("run", chapter, *args, "--duration", "2").returncode == 0
    assert said not in page_text()  # the same pages
    first = sorted(chapter.iterdir())[0]
    first.rename(first.with_name("0-" + first.name))  # renamed only: the same pixels
    assert cli("run", chapter, *args, "--duration", "2").returncode == 0
    assert said not in page_text()
    with Image.open(SAMPLES / "action" / "001.png") as im:  # another picture in its place
        im.save(sorted(chapter.iterdir())[1])
    result = cli("run", chapter, *args, "--duration", "2")
    assert "ch: describing again: 1 page changed (002.png) (its chapter score stays of the pages before: " \
           "`manga2music score` makes it again)" in result.stderr, result.stderr
    html = page_text()
    assert html.count(said) == 1 and "<code>manga2music score</code>" in html
    assert html.index(said) > html.index("chapter score")  # said of the score, not of the new track
    with Image.open(SAMPLES / "action" / "002.png") as im:  # and again, scored: the score of these pages now,
        im.convert("RGB").save(sorted(chapter.iterdir())[2])  # the track of the pages before
    result = cli("score", chapter, *args, timeout=300)
    assert "(its track stays of the pages before: `manga2music run` makes it again)" in result.stderr, result.stderr
    html = page_text()
    assert html.count(said) == 1 and "<code>manga2music run</code>" in html
    assert cli("run", chapter, *args, "--duration", "2").returncode == 0  # both of these pages
    assert said not in page_text()


def test_music_of_these_pages_is_not_said_to_be_of_the_pages_before(tmp_path):
    """A chapter with a page cut short (it probes, it does not decode), and a track of the user's own words kept
    for changed pages: `score` said `run`'s track was "made from the pages before they changed", and `run` only
    said "skipped"."""
    from output_checks import cli

    chapter, out = tmp_path / "ch", tmp_path / "out"
    shutil.copytree(SAMPLES / "calm", chapter)
    (chapter / "004.png").write_bytes((SAMPLES / "action" / "001.png").read_bytes()[:3000])
    args = ("-o", out, "--vision-model", "builtin", "--music-model", "builtin", "--seed", "1")
    for command in ("run", "score", "run", "score"):
        extra = ("--duration", "2") if command == "run" else ()
        assert cli(command, chapter, *args, *extra, timeout=300).returncode == 0
        assert "pages before they changed" not in (out / "index.html").read_text(encoding="utf-8"), command
    (out / "ch.txt").write_text("Solo harp, 70 BPM in D major.\n", encoding="utf-8")  # the user's words
    assert cli("run", chapter, *args, "--duration", "2").returncode == 0
    with Image.open(SAMPLES / "action" / "002.png") as im:
        im.save(chapter / "002.png")
    assert cli("run", chapter, *args, "--duration", "2").returncode == 0  # keeps the user's words
    assert cli("score", chapter, *args, timeout=300).returncode == 0
    assert "pages before they changed" not in (out / "index.html").read_text(encoding="utf-8")


def test_a_removed_chapter_is_said_to_be_gone_and_its_deleted_files_drop_it_from_the_page(tmp_path):
    """A chapter moved out of the library or deleted stayed in the manifest and on the page for ever, as up to date
    as the others: the page says its pages are gone, and deleting its files drops it.  (A chapter renamed in the
    library keeps its files: test_a_renamed_chapter_folder_keeps_its_music_its_seed_and_one_entry.)"""
    from output_checks import cli

    series, out = tmp_path / "S", tmp_path / "out"
    shutil.copytree(SAMPLES / "calm", series / "Chapter 9")
    shutil.copytree(SAMPLES / "action", series / "Chapter 10")
    args = (series, "-o", out, "--duration", "1", "--seed", "1")
    assert cli("run", *args).returncode == 0
    (series / "Chapter 9").rename(tmp_path / "Chapter 9")
    assert cli("run", *args).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    gone = {e["name"]: bool(e.get("pages_gone")) for e in manifest["sections"]}
    assert gone == {"Chapter 9": True, "Chapter 10": False}
    html = (out / "index.html").read_text(encoding="utf-8")
    assert html.count("no longer in") == 1 and html.index("no longer in") > html.index('data-name="Chapter 9"')
    for path in out.glob("Chapter 9.*"):
        path.unlink()
    assert cli("run", *args).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [e["name"] for e in manifest["sections"]] == ["Chapter 10"]
    assert "no longer in" not in (out / "index.html").read_text(encoding="utf-8")


def test_japanese_names_are_marked_japanese_and_each_link_of_a_score_says_what_it_is_of(tmp_path):
    """A screen reader read a chapter named in kana with the page's English voice (`<html lang="en">` and nothing
    else), and a reader's list of links held "cue", "loop", "cue", "loop"... and "Read along", "cue sheet" once per
    chapter, each saying nothing of which one it was."""
    from output_checks import cli

    chapter, out = tmp_path / "in" / "第1話 ねこ", tmp_path / "out"
    chapter.mkdir(parents=True)
    for k, picture in enumerate(sorted((SAMPLES / "calm").iterdir()) + sorted((SAMPLES / "action").iterdir()), 1):
        shutil.copy(picture, chapter / (f"{k:02d} ねこ.png" if k == 1 else f"{k:02d}.png"))
    shutil.copytree(SAMPLES / "calm", tmp_path / "in" / "第2話 夜")  # kanji alone: Chinese as well as Japanese
    result = cli("score", tmp_path / "in", "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
                 timeout=300)
    assert result.returncode == 0, result.stderr

    class Marks(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.marked, self.link_names = [], [], []

        def handle_starttag(self, tag, attrs):
            if tag == "a" and not dict(attrs).get("href", "#").startswith("#"):
                self.link_names.append(dict(attrs).get("aria-label"))
            if tag not in ("img", "br", "meta", "link", "input", "source", "wbr", "hr"):  # no end tag
                self.stack.append(dict(attrs).get("lang"))

        def handle_endtag(self, tag):
            if tag not in ("img", "br", "meta", "link", "input", "source", "wbr", "hr"):
                self.stack.pop()

        def handle_data(self, data):
            if data.strip():
                self.marked.append((data.strip(), next((lang for lang in reversed(self.stack) if lang), None)))

    html_text = (out / "index.html").read_text(encoding="utf-8")
    marks = Marks()
    marks.feed(html_text)
    spoken = dict(marks.marked)
    assert spoken["第1話 ねこ"] == "ja" and spoken["01 ねこ.png"] == "ja"  # heading, contents and caption
    assert spoken["第2話 夜"] == "en" and spoken["02.png"] == "en"  # no guess: the page's language
    from manga2music.wording import language_of

    assert language_of("밤") == "ko" and language_of("Night") is None
    scene_links = [name for name in marks.link_names if name and " scene " in name]
    assert scene_links and len(set(scene_links)) == len(scene_links), scene_links
    assert "cue of 第1話 ねこ scene 1" in scene_links and "Read along of 第1話 ねこ" in marks.link_names
    assert "cue sheet of 第2話 夜" in marks.link_names
    read_along = next(out.rglob("第1話 ねこ*.read.html")).read_text(encoding="utf-8")
    assert '<h1 lang="ja">第1話 ねこ</h1>' in read_along
