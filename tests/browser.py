"""Headless Chromium for tests: Debian's ``chromium`` driven by Playwright's Python client.

Playwright's own browser download does not work everywhere, so we point it at
the system Chromium (``MANGA2MUSIC_CHROMIUM`` overrides the path).  When either
is missing, tests that need a browser skip with a reason saying how to get it
(``scripts/install_browser.sh``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
INSTALL_HINT = "run scripts/install_browser.sh (apt-get install chromium; pip install playwright)"


def chromium_path() -> str | None:
    """The Chromium binary to drive, or None."""
    env = os.environ.get("MANGA2MUSIC_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(name).exists():
            return name
    return shutil.which("chromium") or shutil.which("chromium-browser")


def why_no_browser() -> str | None:
    """None when a browser test can run, else the reason it cannot."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"Playwright is not installed; {INSTALL_HINT}"
    if chromium_path() is None:
        return f"no Chromium found at /usr/bin/chromium (or MANGA2MUSIC_CHROMIUM); {INSTALL_HINT}"
    return None


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for the module; skips the test with a reason when there is none."""
    reason = why_no_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        except Error as exc:
            pytest.skip(f"Chromium would not start: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page (own context) that records console errors and every URL it requests."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    pg = context.new_page()
    pg.console_errors = []
    pg.requested = []
    pg.on("console", lambda msg: pg.console_errors.append(msg.text) if msg.type == "error" else None)
    pg.on("request", lambda req: pg.requested.append(req.url))
    yield pg
    context.close()


def save_screenshot(pg, *paths: Path) -> None:
    """Full-page screenshot into each path (the test's tmp_path and a copy for humans in /tmp)."""
    first = None
    for path in paths:
        path = Path(path)
        if first is None:
            pg.screenshot(path=str(path), full_page=True)
            first = path
        else:
            try:
                shutil.copyfile(first, path)
            except OSError:
                pass
