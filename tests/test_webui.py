"""The local web UI: its core without Gradio, the `ui` command, and one end-to-end run in headless Chromium."""

from __future__ import annotations

import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from browser import browser, page, save_screenshot  # noqa: F401  (pytest fixtures)
from manga2music.errors import InputError
from manga2music.outputs import read_record
from manga2music.webui import generate, parse_seed

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
TWO_PAGES = [SAMPLES / "calm" / "001.png", SAMPLES / "calm" / "002.png"]


def test_generate_keeps_results_and_removes_the_uploads(tmp_path):
    result = generate(TWO_PAGES, tmp_path / "results", duration=3, seed=5)
    assert result.folder.parent == tmp_path / "results"
    assert result.audio == result.folder / "pages.wav"
    assert abs(sf.info(str(result.audio)).duration - 3.0) <= 0.05
    text = (result.folder / "pages.txt").read_text(encoding="utf-8").strip()
    assert text and result.description == text
    record = read_record(result.folder / "pages.json")
    assert [p["name"] for p in record["pages"]] == ["001.png", "002.png"]
    assert record["compose"]["seed"] == 5
    assert not Path(record["pages"][0]["path"]).exists()  # the copy of the upload is gone
    assert all(p.exists() for p in TWO_PAGES)  # the user's own files are untouched
    assert not list(result.folder.rglob("*.png"))  # no page image kept among the results
    names = {p.name for p in result.downloads}
    assert {"pages.wav", "pages.txt"} <= names and any(n.endswith(".zip") for n in names)
    with zipfile.ZipFile(next(p for p in result.downloads if p.suffix == ".zip")) as zf:
        assert {"index.html", "manifest.json", "pages.wav", "pages.txt"} <= set(zf.namelist())


def test_generate_from_a_cbz_with_two_chapters(tmp_path):
    cbz = tmp_path / "book.cbz"
    with zipfile.ZipFile(cbz, "w") as zf:
        for chapter, folder in (("ch1", "calm"), ("ch2", "action")):
            zf.write(SAMPLES / folder / "001.png", f"{chapter}/001.png")
    result = generate([cbz], tmp_path / "results", duration=2, fmt="flac", seed=1)
    names = [e["name"] for e in result.manifest["sections"]]
    assert names == ["book/ch1", "book/ch2"]
    assert result.audio.suffix == ".flac" and abs(sf.info(str(result.audio)).duration - 2.0) <= 0.05
    assert result.description.startswith("[book/ch1]\n") and "\n\n[book/ch2]\n" in result.description
    assert sum(p.suffix == ".flac" for p in result.downloads) == 2


def test_generate_without_pages_says_what_to_upload(tmp_path):
    with pytest.raises(InputError, match="upload some pages"):
        generate([], tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a page", encoding="utf-8")
    with pytest.raises(InputError, match="no pages found in uploads ") as err:
        generate([notes], tmp_path / "results")
    assert "manga2music-upload" not in err.value.message  # no temporary path in what the user reads
    assert not (tmp_path / "results").exists()


def test_seed_box():
    assert parse_seed("") is None and parse_seed("  ") is None and parse_seed(None) is None
    assert parse_seed(" 42 ") == 42
    with pytest.raises(InputError, match="whole number"):
        parse_seed("4.5")


def test_cli_start_does_not_import_gradio():
    code = "import sys, manga2music.cli.app; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False"


def test_ui_without_gradio_says_how_to_install(monkeypatch):
    from typer.testing import CliRunner

    from manga2music.cli.app import app

    monkeypatch.setitem(sys.modules, "gradio", None)  # what an install without the [ui] extra looks like
    result = CliRunner().invoke(app, ["ui", "--port", "7999"])
    assert result.exit_code == 1
    shown = result.output + (getattr(result, "stderr", "") or "")
    assert 'pip install "manga2music[ui]"' in shown


# ------------------------------------------------------------------ end to end in Chromium


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def running_app():
    pytest.importorskip("gradio", reason='Gradio is not installed (pip install "manga2music[ui]")')
    from manga2music.webui import build_app

    app = build_app()
    app.queue()
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


DECODED_DURATION = """async (url) => {
    const data = await (await fetch(url)).arrayBuffer();
    const audio = await new OfflineAudioContext(1, 1, 44100).decodeAudioData(data);
    return audio.duration;
}"""


@pytest.mark.slow
@pytest.mark.browser
def test_webui_end_to_end_in_chromium(running_app, page, tmp_path):
    page.goto(running_app)
    page.wait_for_selector("#generate")
    page.locator("#uploads input[type=file]").set_input_files([str(p) for p in TWO_PAGES])
    page.wait_for_function("document.querySelector('#uploads').innerText.replace(/\\s/g, '').includes('002.png')")
    duration = page.locator("#duration input[type=number]")
    duration.fill("3")
    duration.press("Enter")
    page.locator("#seed textarea, #seed input").first.fill("11")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#description textarea').value.trim().length > 0", timeout=90_000)
    link = page.locator("#track a[download]")
    link.wait_for(timeout=30_000)
    href = link.get_attribute("href")
    assert href.startswith(running_app) and href.endswith("pages.wav")
    assert abs(page.evaluate(DECODED_DURATION, href) - 3.0) <= 0.05  # the browser decodes 3 s of audio
    description = page.locator("#description textarea").input_value()
    assert "BPM" in description or "bpm" in description  # the builtin describer names a tempo
    downloads = "".join(page.locator("#downloads").inner_text().split())  # Gradio splits stem and suffix
    assert "pages.wav" in downloads and "pages.txt" in downloads and ".zip" in downloads
    status = page.locator("#status").inner_text()
    assert "1 of 1 section(s) done" in status and "seed 11" in status
    # nothing left the machine: every request went to the local server
    assert all(u.startswith((running_app, "data:", "blob:")) for u in page.requested), \
        sorted({u for u in page.requested if not u.startswith(running_app)})
    save_screenshot(page, tmp_path / "webui.png", Path("/tmp/webui.png"))
