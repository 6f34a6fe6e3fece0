"""Turning CLI flags into the library's option objects (imported lazily: it pulls numpy)."""

from __future__ import annotations

from pathlib import Path


def describe_options(device, precision, seed, single_stage, chunk_size, detail, base_url, api_key_env, timeout,
                     trust_remote_code, max_new_tokens, offline):
    from ..describers.base import DescribeOptions

    return DescribeOptions(device=device, precision=precision, seed=seed, single_stage=single_stage,
                           chunk_size=chunk_size, detail=detail, base_url=base_url, api_key_env=api_key_env,
                           timeout=timeout, trust_remote_code=trust_remote_code, max_new_tokens=max_new_tokens,
                           offline=offline)


def compose_options(duration, device, precision, seed, top_k, top_p, temperature, guidance_scale, batch_size, loop,
                    offline):
    from ..composers.base import ComposeOptions

    return ComposeOptions(duration=duration, device=device, precision=precision, seed=seed, top_k=top_k, top_p=top_p,
                          temperature=temperature, guidance_scale=guidance_scale, batch_size=batch_size, loop=loop,
                          offline=offline)


def make_config(output: Path, fmt: str, force: bool, save_artifact: bool, variations: int, normalize: bool,
                describe, compose):
    from ..pipeline import RunConfig

    cfg = RunConfig(output=output, fmt=fmt.lower().lstrip("."), force=force, save_artifact=save_artifact,
                    variations=variations, normalize=normalize)
    if describe is not None:
        cfg.describe = describe
    if compose is not None:
        cfg.compose = compose
    return cfg
