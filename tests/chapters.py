"""Chapters with known scenes, drawn here: runs of calm pages and action pages in the samples' styles.

The pages come from ``scripts/make_samples.py``'s drawing code with other seeds, so every page
differs from every other while its kind (light, talky, few panels / dark, dense, speed lines)
is the kind it is labelled.  A chapter's true scene starts are where the kind changes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from repo_scripts import load_script


@lru_cache(maxsize=1)
def _samples():
    return load_script("scripts/make_samples.py")


def calm_page(n: int, *, talk: bool = True):
    """A light slice-of-life page (one of the samples' three layouts, seed ``n``); ``talk=False``: the same kind of
    quiet panels with no speech balloons."""
    from PIL import Image

    m = _samples()
    rng = np.random.default_rng(1000 + n)
    img = Image.new("L", (m.W, m.H), 255)
    margin, gutter = 34, 16
    iw, ih = m.W - 2 * margin, m.H - 2 * margin
    for (fx0, fy0, fx1, fy1), scene, bubbles in m.CALM_LAYOUTS[1 + n % 3]:
        box = (margin + fx0 * iw + (gutter / 2 if fx0 > 0 else 0), margin + fy0 * ih + (gutter / 2 if fy0 > 0 else 0),
               margin + fx1 * iw - (gutter / 2 if fx1 < 1 else 0), margin + fy1 * ih - (gutter / 2 if fy1 < 1 else 0))
        m.calm_panel(img, tuple(int(v) for v in box), rng, scene, bubbles if talk else 0)
    return img


def quiet_page(n: int):
    """A light page of the same quiet places and people as :func:`calm_page`, without a word (seed ``n``)."""
    return calm_page(n, talk=False)


def action_page(n: int):
    """A dark action page with slanted panels and speed lines (seed ``n``)."""
    return _samples().action_page(10 + n)


def make_chapter(folder: Path, layout: list[tuple[str, int]], seed: int = 0) -> list[int]:
    """Draw the pages of ``layout`` (e.g. ``[("calm", 4), ("action", 5), ("calm", 3)]``; kinds: calm, quiet, action)
    into ``folder`` as 001.png, 002.png...; return the true scene starts (0-based page indices, the first page excluded)."""
    folder.mkdir(parents=True, exist_ok=True)
    draw = {"calm": calm_page, "quiet": quiet_page, "action": action_page}
    starts, index = [], 0
    for run, (kind, count) in enumerate(layout):
        if run:
            starts.append(index)
        for k in range(count):
            index += 1
            draw[kind](seed * 100 + index).convert("RGB").save(folder / f"{index:03d}.png")
    return starts


def make_webtoon(path: Path, layout: list[tuple[str, int]], seed: int = 0, width: int = 600) -> list[int]:
    """A webtoon episode saved as one tall image at ``path``: the pages of ``layout`` drawn as :func:`make_chapter`
    draws them, each scaled to ``width`` x 1.38 ``width`` (a little squatter than a tile, 1:1.4) and stacked top to
    bottom, so that the strip is read in exactly one part per drawn page.  Returns the true scene starts (0-based
    parts, the first excluded)."""
    import tempfile

    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        starts = make_chapter(Path(tmp), layout, seed)
        height = round(width * 1.38)
        pages = [Image.open(p).convert("RGB").resize((width, height)) for p in sorted(Path(tmp).glob("*.png"))]
    strip = Image.new("RGB", (width, height * len(pages)), "white")
    for k, page in enumerate(pages):
        strip.paste(page, (0, k * height))
    path.parent.mkdir(parents=True, exist_ok=True)
    strip.save(path)
    return starts


def chat_score_replies(calm: int, action: int) -> list:
    """A chat model's answers to ``score`` for a chapter of ``calm`` then ``action`` pages, in the order asked: its
    page entries (a scene change where the action starts), a direction in E minor, then one description per scene."""
    import json

    from openai_server import Reply

    entries = [{"page": k, "mood": "calm" if k <= calm else "fierce", "intensity": 1 if k <= calm else 3,
                "scene_change": k in (1, calm + 1), "why": "a fight" if k == calm + 1 else "same room"}
               for k in range(1, calm + action + 1)]
    return [Reply(json.dumps({"pages": entries})),
            Reply(json.dumps({"key": "E minor", "instruments": ["koto", "strings"], "tempo_low": 66,
                              "tempo_high": 160})),
            Reply("Gentle koto and soft strings, 68 BPM in E minor."),
            Reply("Pounding taiko drums with fierce koto, 156 BPM in E minor.")]


def queue_chat_score(server, calm: int, action: int) -> None:
    """Queue :func:`chat_score_replies` at the local OpenAI-compatible server."""
    server.queue(*chat_score_replies(calm, action))
