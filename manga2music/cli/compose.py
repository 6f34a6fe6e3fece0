"""`manga2music compose`: make tracks from description files or --text."""

from __future__ import annotations

import typer

from . import _common as c
from . import consent
from . import flags as f


@f.with_flags(f.DESCRIPTION_PATHS, f.MUSIC_MODEL, f.MUSIC, f.DEVICE, f.MUSIC_BACKEND, f.OUTPUT, f.COMMERCIAL, f.RAY)
def compose(**flags) -> None:
    """Compose one track per description file and per --text."""
    if not flags["paths"] and not flags["text"]:
        raise c.fail("nothing to compose", 'pass description files or folders, or --text "..."', 2)
    with c.friendly_errors():  # from here on Ctrl-C is one line (the import takes a moment)
        from .. import api

        cfg = f.run_config(flags, side="music")
    with c.running(flags, cfg) as display:
        consent.let_auto_ask(cfg, display)
        manifest = api.compose(flags["paths"] or [], cfg.output, text=flags["text"], model=flags["music_model"],
                               config=cfg, callbacks=display.callbacks())
    raise typer.Exit(c.print_summary(manifest, flags["json_output"], cfg.output))
