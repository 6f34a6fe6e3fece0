"""`manga2music describe`: write a music description per section (no audio)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import _common as c
from .options import describe_options, make_config


def describe(
    paths: c.PathsArg,
    output: c.OutputOpt = Path("output"),
    model: Annotated[str, typer.Option("--model", help="Describer: auto, builtin, gpt-4o, gpt-4o-mini, llava-0.5b, a Hub id or a folder.")] = "auto",
    save_artifact: c.ArtifactOpt = False,
    force: c.ForceOpt = False,
    device: c.DeviceOpt = "auto",
    precision: c.PrecisionOpt = "auto",
    seed: c.SeedOpt = None,
    single_stage: c.SingleStageOpt = False,
    chunk_size: c.ChunkOpt = None,
    detail: c.DetailOpt = "auto",
    base_url: c.BaseUrlOpt = None,
    api_key_env: c.KeyEnvOpt = "OPENAI_API_KEY",
    timeout: c.TimeoutOpt = 120.0,
    trust_remote_code: c.RemoteCodeOpt = False,
    max_new_tokens: c.MaxTokensOpt = 512,
    offline: c.OfflineOpt = False,
    json_output: c.JsonOpt = False,
    wait: c.WaitOpt = False,
) -> None:
    """Describe each section's pages as a music description (OUTPUT/NAME.txt + NAME.json)."""
    from .. import api

    cfg = make_config(
        output, "wav", force, save_artifact, 1, True,
        describe_options(device, precision, seed, single_stage, chunk_size, detail, base_url, api_key_env, timeout,
                         trust_remote_code, max_new_tokens, offline),
        None,
    )
    cfg.wait = wait
    with c.friendly_errors(), c.RunDisplay() as display:
        manifest = api.describe(paths, output, model=model, config=cfg, callbacks=display.callbacks())
    raise typer.Exit(c.print_summary(manifest, json_output, output))
