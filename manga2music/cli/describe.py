"""`manga2music describe`: write a music description per section (no audio)."""

from __future__ import annotations

import typer

from . import _common as c
from . import consent
from . import flags as f


@f.with_flags(f.PATHS, f.VISION_MODEL, f.ARTIFACT, f.VISION_SEED, f.DEVICE, f.VISION_BACKEND, f.OUTPUT, f.VISION_COMMERCIAL,
              f.RAY)
def describe(**flags) -> None:
    """Describe each section's pages as a music description (OUTPUT/NAME.txt + NAME.json)."""
    with c.friendly_errors():  # from here on Ctrl-C is one line (the import takes a moment)
        from .. import api

        cfg = f.run_config(flags, side="vision")
    c.check_paths(flags["paths"])  # a missing PATH is one line, before any progress bar is drawn
    with c.running(flags, cfg) as display:
        consent.let_auto_ask(cfg, display)
        manifest = api.describe(flags["paths"], cfg.output, model=flags["vision_model"], config=cfg,
                                callbacks=display.callbacks())
    raise typer.Exit(c.print_summary(manifest, flags["json_output"], cfg.output))
