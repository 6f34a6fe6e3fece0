"""`manga2music compose`: make tracks from description files or --text."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import _common as c
from .options import compose_options, make_config


def compose(
    paths: Annotated[Optional[list[Path]], typer.Argument(help=".txt descriptions, or folders of them as describe writes.", show_default=False)] = None,
    output: c.OutputOpt = Path("output"),
    model: Annotated[str, typer.Option("--model", help="Composer: auto, builtin, musicgen-small|medium|large, musicgen-stereo-*, a Hub id or a folder.")] = "auto",
    text: Annotated[Optional[str], typer.Option("--text", help="Compose this description instead of reading files.")] = None,
    duration: c.DurationOpt = 10.0,
    format: c.FormatOpt = "wav",
    device: c.DeviceOpt = "auto",
    precision: c.PrecisionOpt = "auto",
    seed: c.SeedOpt = None,
    force: c.ForceOpt = False,
    variations: c.VariationsOpt = 1,
    loop: c.LoopOpt = False,
    batch_size: c.BatchOpt = None,
    no_normalize: c.NoNormalizeOpt = False,
    top_k: c.TopKOpt = 250,
    top_p: c.TopPOpt = 0.0,
    temperature: c.TemperatureOpt = 1.0,
    guidance_scale: c.GuidanceOpt = 3.0,
    offline: c.OfflineOpt = False,
    json_output: c.JsonOpt = False,
    wait: c.WaitOpt = False,
) -> None:
    """Compose one track per description file (or one from --text)."""
    from .. import api

    if not paths and text is None:
        raise c.fail("nothing to compose", 'pass description files or folders, or --text "..."', 2)
    cfg = make_config(
        output, format, force, False, variations, not no_normalize, None,
        compose_options(duration, device, precision, seed, top_k, top_p, temperature, guidance_scale, batch_size,
                        loop, offline),
    )
    cfg.wait = wait
    with c.friendly_errors(), c.RunDisplay() as display:
        manifest = api.compose(paths or [], output, text=text, model=model, config=cfg, callbacks=display.callbacks())
    raise typer.Exit(c.print_summary(manifest, json_output, output))
