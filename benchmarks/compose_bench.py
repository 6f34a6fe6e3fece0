"""Compose benchmark: audio seconds per wall second of MusicgenComposer.compose, beside the one-at-a-time baseline.

The baseline is how the original scripts ran: float32, one section at a
time, no batching.  Every other figure is measured in the same suite run and
shown as a ratio to the baseline of the same model and duration, so the ratio
holds on a noisy machine.  Models are the real musicgen-small / -medium /
-large shapes with random weights (:mod:`musicgen_arch`).

CPU: one fresh worker process per configuration, so its peak RSS is its own.
GPU: one worker per (model, precision); peak VRAM is reset before each run.
Workers print a RESULT line after every run, so a killed worker keeps what it
finished.

    python benchmarks/compose_bench.py [--quick | --full] [--gpu]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import cache_root, emit, median, run_worker, timed  # noqa: E402

#: musicgen-large's decoder (facebook/musicgen-large config.json): 48 layers x 2048, 32 heads, FF 8192
LARGE_DECODER = dict(hidden_size=2048, num_hidden_layers=48, num_attention_heads=32, ffn_dim=8192)

#: what the baseline is: the original scripts' way
BASELINE = {"precision": "fp32", "batch": 1, "one_at_a_time": True}


def _arch():
    """musicgen_arch, with the large decoder registered when that module does not define it."""
    import musicgen_arch

    musicgen_arch.DECODERS.setdefault("large", LARGE_DECODER)
    return musicgen_arch


def model_folder(size: str) -> Path:
    return cache_root() / f"musicgen-{size}-realcfg-random"  # built from the real config.json and tokenizer


# --- plans ------------------------------------------------------------------------------------


def run_spec(precision: str, batch: int | None, sections: int, duration: float, repeats: int,
             one_at_a_time: bool = False, attn: str | None = None, cache: str | None = None) -> dict:
    """One measured configuration.  ``batch=None``: the composer's own choice from free memory.

    Experiments, for this run only: ``attn`` switches the loaded decoder to this attention
    implementation (``"eager"`` or ``"sdpa"``); ``cache="default"`` lets ``generate`` build
    transformers' default growing cache instead of the composer's preallocated one.
    """
    spec = {"precision": precision, "batch": batch, "sections": sections, "duration": duration,
            "repeats": repeats, "one_at_a_time": one_at_a_time}
    if attn:
        spec["attn"] = attn
    if cache:
        spec["cache"] = cache
    return spec


def cpu_plan(mode: str) -> list[tuple[str, dict]]:
    """``(size, run)`` pairs for a CPU; each runs in its own process.  The target case: 4 sections of 5 s."""
    r = {"quick": 1, "default": 2, "full": 3}[mode]  # runs of the figures the targets read
    few = {"quick": 1, "default": 1, "full": 2}[mode]  # runs of the others
    # the baseline's 4 per-section samples are taken half at the start and half at the end of the
    # suite, so a slow spell on a shared machine weighs on both sides of the ratio
    baseline = ("small", run_spec("fp32", 1, 2, 5.0, 1, one_at_a_time=True))
    plan = [baseline,
            ("small", run_spec("bf16", 4, 4, 5.0, r)),
            ("small", run_spec("auto", None, 4, 5.0, few))]
    if mode == "quick":
        return plan + [baseline]
    plan += [("small", run_spec("bf16", 1, 1, 5.0, r)),
             ("small", run_spec("bf16", 8, 8, 5.0, few)),
             ("small", run_spec("fp32", 4, 4, 5.0, few)),
             ("small", run_spec("bf16", 4, 4, 5.0, r, attn="eager")),
             ("small", run_spec("fp32", 1, 1, 30.0, 1, one_at_a_time=True)),
             ("small", run_spec("bf16", 4, 4, 30.0, 1)),
             ("small", run_spec("bf16", 4, 4, 30.0, 1, cache="default")),
             # musicgen-medium (1.5B decoder): its own fp32 baseline, then bf16 alone and batched
             ("medium", run_spec("fp32", 1, 1, 5.0, 1, one_at_a_time=True)),
             ("medium", run_spec("bf16", 1, 1, 5.0, few)),
             ("medium", run_spec("bf16", 4, 4, 5.0, few))]
    if mode == "full":
        plan += [("small", run_spec("bf16", 4, 4, 30.0, 1, attn="eager")),
                 ("small", run_spec("fp32", 8, 8, 5.0, 1)),
                 ("small", run_spec("bf16", 1, 1, 30.0, 1)),
                 ("small", run_spec("bf16", 8, 8, 30.0, 1)),
                 ("medium", run_spec("fp32", 4, 4, 5.0, 1)),
                 ("medium", run_spec("bf16", 8, 8, 5.0, 1))]
    return plan + [baseline]


def gpu_plan(mode: str, half: str = "bf16") -> list[tuple[str, str, list[dict]]]:
    """``(size, precision, runs)`` in priority order: what matters most runs first (the run has a deadline)."""
    r = 1 if mode == "quick" else 2
    plan = []
    for size in ("small", "medium", "large"):
        plan.append((size, half, [run_spec(half, 1, 1, 10.0, r), run_spec(half, 8, 8, 10.0, r)]))
        plan.append((size, "fp32", [run_spec("fp32", 1, 1, 10.0, 1, one_at_a_time=True)]))
    other = "fp16" if half == "bf16" else "bf16"

    def halves(size: str) -> tuple:
        return (size, other, [run_spec(other, 1, 1, 10.0, 1), run_spec(other, 8, 8, 10.0, 1)])

    plan += [halves("small"),
             ("small", half, [run_spec(half, 8, 8, 30.0, 1), run_spec(half, None, 8, 10.0, 1)]),
             ("small", "fp32", [run_spec("fp32", 1, 1, 30.0, 1, one_at_a_time=True)]),
             ("small", half, [run_spec(half, 8, 8, 10.0, 1, attn="eager"), run_spec(half, 1, 1, 10.0, 1, attn="eager")]),
             ("small", half, [run_spec(half, 8, 8, 30.0, 1, cache="default")]),
             halves("medium"), halves("large"),
             ("medium", half, [run_spec(half, 8, 8, 30.0, 1)]),
             ("medium", "fp32", [run_spec("fp32", 1, 1, 30.0, 1, one_at_a_time=True)])]
    return plan


# --- the worker ---------------------------------------------------------------------------------


def _requests(n: int, duration: float, seed0: int = 0) -> list:
    from manga2music.composers.base import ComposeRequest

    texts = _arch().DESCRIPTIONS
    return [ComposeRequest(f"section{i + 1}", texts[i % len(texts)], duration, seed0 + i) for i in range(n)]


def _measure_run(composer, spec: dict, warmup_s: float) -> dict:
    """Warm up (short, same batch), then time ``repeats`` compose calls."""
    composer.options.batch_size = spec["batch"]
    # the loaded decoder (a private attribute: only the attention experiment changes it)
    decoder = getattr(getattr(composer, "_model", None), "decoder", None)
    default_attn = getattr(getattr(decoder, "config", None), "_attn_implementation", None)
    switch = bool(spec.get("attn")) and spec["attn"] != default_attn
    if switch:
        decoder.set_attn_implementation(spec["attn"])
    from manga2music.composers import kv_cache

    own_cache = kv_cache.decoder_cache
    if spec.get("cache") == "default":  # generate builds transformers' own DynamicCache
        kv_cache.decoder_cache = kv_cache.default_decoder_cache
    try:
        out = _timed_runs(composer, spec, warmup_s)
    finally:
        kv_cache.decoder_cache = own_cache
        if switch:
            decoder.set_attn_implementation(default_attn)
    out["attn_used"] = spec.get("attn") or default_attn
    return out


def _timed_runs(composer, spec: dict, warmup_s: float) -> dict:
    import torch

    cuda = torch.cuda.is_available() and composer.options.device != "cpu"
    n, duration = spec["sections"], spec["duration"]
    warm = 1 if spec["one_at_a_time"] else n
    composer.compose(_requests(warm, warmup_s, 1000))
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    import resource

    times, batch_used, precision = [], None, None
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for rep in range(spec["repeats"]):
        if spec["one_at_a_time"]:  # the original scripts' loop: each section its own call
            for request in _requests(n, duration, 100 * rep):
                seconds, tracks = timed(composer.compose, [request])
                times.append(round(seconds, 2))
                batch_used = tracks[0].info.get("batch_size")
                precision = tracks[0].info.get("precision")
        else:
            seconds, tracks = timed(composer.compose, _requests(n, duration, 100 * rep))
            times.append(round(seconds, 2))
            batch_used = max(t.info.get("batch_size", 0) for t in tracks)
            precision = tracks[0].info.get("precision")
            got = sum(t.audio.shape[0] / t.sample_rate for t in tracks)
            assert abs(got - n * duration) < 0.01 * n * duration, f"made {got:.2f} s of audio, not {n * duration}"
    cpu1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall0
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    per_call_audio = duration if spec["one_at_a_time"] else n * duration
    out = dict(spec, dtype=precision, times_s=times, median_s=round(median(times), 2),
               audio_s_per_s=round(per_call_audio / median(times), 3), batch_used=batch_used,
               wall_for_all_sections_s=round(median(times) * (n if spec["one_at_a_time"] else 1), 1),
               cpu_share=round(cpu_s / wall / max(1, torch.get_num_threads()), 2))
    if cuda:
        out["peak_vram_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def worker(cfg: dict) -> None:
    """In a fresh process: load the composer once, then measure each run (a RESULT line after each)."""
    if cfg.get("build"):
        import torch

        # on a GPU, random init happens there (seconds for musicgen-large instead of minutes on the CPU)
        where = "cuda" if cfg.get("device", "cpu").startswith("cuda") and torch.cuda.is_available() else "cpu"
        folder = Path(cfg["folder"])
        partial = folder.with_name(folder.name + ".partial")  # renamed when complete: a killed build leaves no folder
        try:
            with torch.device(where):
                seconds, _ = timed(_arch().build_random_musicgen, cfg["size"], torch.bfloat16, partial)
        except Exception as exc:  # random init on the GPU failed: the CPU is slower but sure
            if where == "cpu":
                raise
            print(f"building on cuda failed ({exc}); building on the CPU", file=sys.stderr)
            import shutil

            shutil.rmtree(partial, ignore_errors=True)
            where = "cpu"
            seconds, _ = timed(_arch().build_random_musicgen, cfg["size"], torch.bfloat16, partial)
        partial.rename(folder)
        emit({"built": cfg["folder"], "build_s": round(seconds, 1), "built_on": where})
        return
    import torch

    from manga2music.composers.musicgen import MusicgenComposer
    deadline = cfg.get("deadline")  # time.time() after which no new run starts
    options = dict(device=cfg["device"], precision=cfg["precision"], offline=True)
    composer = MusicgenComposer(cfg["folder"], options)
    load_s, _ = timed(lambda: composer.sample_rate)  # the public property that loads the model
    result = {"size": cfg["size"], "device": cfg["device"], "threads": torch.get_num_threads(),
              "load_s": round(load_s, 2), "runs": []}
    for spec in cfg["runs"]:
        if deadline and time.time() > deadline:
            result["runs"].append(dict(spec, skipped="time budget"))
            continue
        try:
            result["runs"].append(_measure_run(composer, spec, cfg.get("warmup_s", 1.0)))
        except Exception as exc:  # an out-of-memory batch must not lose the other runs
            result["runs"].append(dict(spec, error=f"{type(exc).__name__}: {str(exc)[:200]}"))
        emit(result)
    composer.close()
    emit(result)


# --- the parent ---------------------------------------------------------------------------------


def _ensure_model(size: str, timeout: float | None, device: str = "cpu") -> dict | None:
    """Build the random model folder in its own process (its memory must not count against a run)."""
    folder = model_folder(size)
    if (folder / "config.json").is_file():
        return None
    print(f"building the random musicgen-{size} (once, kept in {folder})", file=sys.stderr)
    config = {"build": True, "size": size, "folder": str(folder), "device": device}
    return run_worker("compose_bench.py", config, timeout=timeout)


def _flatten(size: str, result: dict) -> list[dict]:
    rows = []
    for run in result.get("runs", []):
        rows.append(dict(run, size=size, device=result.get("device"), load_s=result.get("load_s"),
                         peak_rss_mb=result.get("peak_rss_mb"), threads=result.get("threads")))
    if not result.get("runs") and "error" in result:
        rows.append({"size": size, "error": result["error"], **{k: v for k, v in result.get("config", {}).items()
                                                                 if k in ("precision",)}})
    return rows


def merge_baselines(rows: list[dict]) -> list[dict]:
    """One baseline row per (model, duration): the per-section samples of its parts, pooled."""
    merged: dict[tuple, dict] = {}
    out = []
    for r in rows:
        if not (r.get("one_at_a_time") and r.get("precision") == "fp32" and "times_s" in r):
            out.append(r)
            continue
        key = (r["size"], r["duration"])
        if key not in merged:
            merged[key] = dict(r, parts=1)
            out.append(merged[key])
            continue
        m = merged[key]
        m["times_s"] = m["times_s"] + r["times_s"]
        m["sections"] += r["sections"]
        m["parts"] += 1
        m["peak_rss_mb"] = max(m.get("peak_rss_mb") or 0, r.get("peak_rss_mb") or 0)
        m["cpu_share"] = round(min(m.get("cpu_share", 1), r.get("cpu_share", 1)), 2)
    for m in merged.values():
        med = median(m["times_s"])
        m.update(median_s=round(med, 2), audio_s_per_s=round(m["duration"] / med, 3),
                 wall_for_all_sections_s=round(med * m["sections"], 1))
    return out


def add_ratios(rows: list[dict]) -> None:
    """Each row's speed over the baseline of the same model and duration (fp32, one at a time)."""
    base = {(r["size"], r["duration"]): r["audio_s_per_s"] for r in rows
            if r.get("one_at_a_time") and r.get("precision") == "fp32" and "audio_s_per_s" in r}
    for r in rows:
        b = base.get((r.get("size"), r.get("duration")))
        if b and "audio_s_per_s" in r:
            r["baseline_audio_s_per_s"] = b
            r["speedup"] = round(r["audio_s_per_s"] / b, 2)


def run(*, mode: str = "default", gpu: bool = False, budget_s: float | None = None,
        on_progress=None, device: str | None = None) -> dict:
    """Measure the plan; ``budget_s`` (GPU) stops starting new work once spent.  Returns the section dict."""
    start = time.time()
    deadline = start + budget_s if budget_s else None
    device = device or ("cuda" if gpu else "cpu")  # device: only to rehearse the GPU plan on a CPU
    rows: list[dict] = []
    section = {"device": device, "rows": rows, "builds": {}}

    def left() -> float | None:
        return None if deadline is None else deadline - time.time()

    if gpu:
        jobs = [(size, [dict(s) for s in runs], precision) for size, precision, runs in gpu_plan(mode)]
    else:
        jobs = [(size, [spec], spec["precision"]) for size, spec in cpu_plan(mode)]
    for size, runs, precision in jobs:
        remaining = left()
        if remaining is not None and remaining < 20:
            rows.extend(dict(s, size=size, skipped="time budget") for s in runs)
            continue
        built = _ensure_model(size, remaining, device)
        if built is not None:
            section["builds"][size] = built
            if "error" in built:
                rows.extend(dict(s, size=size, error="model build failed") for s in runs)
                continue
        label = ", ".join(f"{s['precision']} b{s['batch'] or 'auto'} x{s['sections']} {s['duration']:g}s" for s in runs)
        print(f"compose: musicgen-{size} {device} {label}", file=sys.stderr)
        config = {"size": size, "folder": str(model_folder(size)), "device": device, "precision": precision,
                  "runs": runs, "deadline": deadline, "warmup_s": 1.0}
        remaining = left()
        result = run_worker("compose_bench.py", config, timeout=None if remaining is None else max(remaining, 10))
        if "error" in result and "runs" not in result:
            rows.extend(dict(s, size=size, error=result["error"]) for s in runs)
        else:
            rows.extend(_flatten(size, result))
            stopped = result.get("incomplete", "not run")
            rows.extend(dict(s, size=size, skipped=f"stopped: {stopped}") for s in runs[len(result.get("runs", [])):])
        add_ratios(rows)
        if on_progress is not None:
            on_progress(section)
    section["wall_s"] = round(time.time() - start, 1)
    section["rows"] = merge_baselines(rows)
    add_ratios(section["rows"])
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--budget", type=float, help="seconds after which no new configuration starts")
    parser.add_argument("--device", help=argparse.SUPPRESS)  # rehearse --gpu's plan on another device
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    mode = "quick" if args.quick else "full" if args.full else "default"
    print(json.dumps(run(mode=mode, gpu=args.gpu, budget_s=args.budget, device=args.device), indent=2))


if __name__ == "__main__":
    main()
