"""`manga2music run`: describe every section, then compose a track for each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import _common as c
from .options import compose_options, describe_options, make_config


def run(
    paths: c.PathsArg,
    output: c.OutputOpt = Path("output"),
    vision_model: Annotated[str, typer.Option("--vision-model", help="Describer: auto, builtin, gpt-4o, llava-0.5b, a Hub id or a folder.")] = "auto",
    music_model: Annotated[str, typer.Option("--music-model", help="Composer: auto, builtin, musicgen-small, a Hub id or a folder.")] = "auto",
    duration: c.DurationOpt = 10.0,
    format: c.FormatOpt = "wav",
    device: c.DeviceOpt = "auto",
    precision: c.PrecisionOpt = "auto",
    seed: c.SeedOpt = None,
    force: c.ForceOpt = False,
    save_artifact: c.ArtifactOpt = False,
    variations: c.VariationsOpt = 1,
    loop: c.LoopOpt = False,
    batch_size: c.BatchOpt = None,
    no_normalize: c.NoNormalizeOpt = False,
    single_stage: c.SingleStageOpt = False,
    chunk_size: c.ChunkOpt = None,
    detail: c.DetailOpt = "auto",
    base_url: c.BaseUrlOpt = None,
    api_key_env: c.KeyEnvOpt = "OPENAI_API_KEY",
    timeout: c.TimeoutOpt = 120.0,
    trust_remote_code: c.RemoteCodeOpt = False,
    max_new_tokens: c.MaxTokensOpt = 512,
    top_k: c.TopKOpt = 250,
    top_p: c.TopPOpt = 0.0,
    temperature: c.TemperatureOpt = 1.0,
    guidance_scale: c.GuidanceOpt = 3.0,
    offline: c.OfflineOpt = False,
    json_output: c.JsonOpt = False,
    wait: c.WaitOpt = False,
) -> None:
    """Turn folders of manga pages into one music track per folder (describe + compose)."""
    from .. import api

    cfg = make_config(
        output, format, force, save_artifact, variations, not no_normalize,
        describe_options(device, precision, seed, single_stage, chunk_size, detail, base_url, api_key_env, timeout,
                         trust_remote_code, max_new_tokens, offline),
        compose_options(duration, device, precision, seed, top_k, top_p, temperature, guidance_scale, batch_size,
                        loop, offline),
    )
    cfg.wait = wait
    with c.friendly_errors(), c.RunDisplay() as display:
        manifest = api.run(paths, output, vision_model=vision_model, music_model=music_model, config=cfg,
                           callbacks=display.callbacks())
    if not json_output:
        c.stderr_console().print(f"[dim]Listening page: {output / 'index.html'}[/]")
    raise typer.Exit(c.print_summary(manifest, json_output, output))
