"""`manga2music run`: describe every section, then compose a track for each."""

from __future__ import annotations

import typer

from . import _common as c
from . import consent
from . import flags as f


@f.with_flags(f.PATHS, f.RUN_MODELS, f.MUSIC, f.ARTIFACT, f.DEVICE, f.SIDE_DEVICES, f.VISION_BACKEND, f.MUSIC_BACKEND,
              f.OUTPUT, f.COMMERCIAL, f.RAY)
def run(**flags) -> None:
    """Turn folders of manga pages into one music track per folder (describe + compose)."""
    with c.friendly_errors():  # from here on Ctrl-C is one line (the import takes a moment)
        from .. import api

        cfg = f.run_config(flags, side=None)
    c.check_paths(flags["paths"])  # a missing PATH is one line, before any progress bar is drawn
    with c.running(flags, cfg) as display:
        consent.let_auto_ask(cfg, display)
        manifest = api.run(flags["paths"], cfg.output, vision_model=flags["vision_model"],
                           music_model=flags["music_model"], config=cfg, callbacks=display.callbacks())
    if not flags["json_output"]:
        c.stderr_console().print(f"[dim]Listening page: {c.escape_markup(str(cfg.output / 'index.html'))}[/]", soft_wrap=True)
    raise typer.Exit(c.print_summary(manifest, flags["json_output"], cfg.output))
