"""`manga2music score`: a soundtrack for reading each chapter: scenes, one cue each, one score, a read-along page."""

from __future__ import annotations

import typer

from . import _common as c
from . import consent
from . import flags as f


@f.with_flags(f.PATHS, f.RUN_MODELS, f.SCORE_MUSIC, f.DEVICE, f.SIDE_DEVICES, f.SCORE_VISION_BACKEND, f.MUSIC_BACKEND,
              f.OUTPUT, f.COMMERCIAL, f.RAY)
def score(**flags) -> None:
    """Score each chapter: scenes found in its pages, one cue per scene as long as it takes to read, one score,
    a cue sheet (NAME.cues.json), WebVTT chapters and a read-along page (NAME.read.html)."""
    with c.friendly_errors():  # from here on Ctrl-C is one line (the import takes a moment)
        from .. import api

        cfg = f.run_config(flags, side=None)
    c.check_paths(flags["paths"])  # a missing PATH is one line, before any progress bar is drawn
    with c.running(flags, cfg) as display:
        consent.let_auto_ask(cfg, display)
        manifest = api.score(flags["paths"], cfg.output, vision_model=flags["vision_model"],
                             music_model=flags["music_model"], config=cfg, callbacks=display.callbacks())
    if not flags["json_output"]:
        pages = read_along_pages(manifest, cfg.output)
        also = f" and {len(pages) - 1} more, one beside each score" if len(pages) > 1 else ""
        where = f"; read along: {pages[0]}{also}" if pages else ""
        c.stderr_console().print(f"[dim]Listening page: {c.escape_markup(str(cfg.output / 'index.html') + where)}[/]",
                                 soft_wrap=True)
    raise typer.Exit(c.print_summary(manifest, flags["json_output"], cfg.output))


def read_along_pages(manifest: dict, output) -> list:
    """The read-along pages this run left (``NAME.read.html`` beside each chapter's record)."""
    from ..outputs import SectionFiles

    this_run = set(manifest.get("this_run", []))
    pages = []
    for entry in manifest["sections"]:
        if entry["name"] in this_run and entry["status"] != "failed" and entry.get("record"):
            page = SectionFiles.of_record(output / entry["record"]).read_along
            if page.is_file():
                pages.append(page)
    return pages
