"""One-at-a-time experiments behind benchmarks/README.md "What we tried" (musicgen-small shapes, CPU).

Each experiment changes one thing and alternates the two variants (A B A B)
in one process, so a slow spell on a shared machine hits both:

- ``attention``: SDPA (transformers' default) against eager attention in MusicGen's decoder;
- ``vlm_attention``: the same in the describer's VLM;
- ``overhead``: where compose's wall time goes: decoder steps, T5, EnCodec
  decoding, and the rest (generate's loop: logits processors, sampling, cache
  bookkeeping), the most that trimming per-step Python work could save;
- ``release``: peak RSS of describe (VLM) then compose (MusicGen) in one
  process, with and without ``describer.close()`` in between (fresh process each);
- ``kv_cache``: milliseconds per decoder step along one 30 s window (bf16,
  batch 4) with the composer's preallocated cache and with transformers'
  default growing cache (fresh process each: the allocator's state matters).

    python benchmarks/experiments.py [attention] [vlm_attention] [overhead] [release] [kv_cache]
    -> benchmarks/results/experiments-latest.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import emit, machine_info, median, run_worker, timed  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "experiments-latest.json"


def _composer(precision: str, batch: int):
    from compose_bench import model_folder
    from manga2music.composers.musicgen import MusicgenComposer

    options = dict(device="cpu", precision=precision, batch_size=batch, offline=True)
    composer = MusicgenComposer(str(model_folder("small")), options)
    composer.compose(_requests(batch, 1.0))  # load + warm up
    return composer


def _requests(n: int, duration: float):
    from compose_bench import _requests as make

    return make(n, duration)


def attention(rounds: int = 2) -> list[dict]:
    """SDPA vs eager on the loaded decoder, alternating, for a few precisions, batches and lengths."""
    out = []
    for precision, batch, duration in (("bf16", 4, 5.0), ("bf16", 1, 5.0), ("fp32", 1, 5.0), ("bf16", 4, 15.0)):
        composer = _composer(precision, batch)
        decoder = composer._model.decoder  # experiment only: switch the attention kernel of the loaded model
        times: dict[str, list[float]] = {"sdpa": [], "eager": []}
        for _ in range(rounds if duration <= 5 else 1):
            for impl in ("sdpa", "eager"):
                decoder.set_attn_implementation(impl)  # EnCodec has no SDPA path; T5 runs once per batch
                seconds, _ = timed(composer.compose, _requests(batch, duration))
                times[impl].append(round(seconds, 2))
        composer.close()
        out.append({"config": f"musicgen-small {precision}, {batch} x {duration:g} s", "times_s": times,
                    "eager_over_sdpa": round(median(times["eager"]) / median(times["sdpa"]), 3)})
        print(out[-1], file=sys.stderr)
    return out


def vlm_attention(rounds: int = 2) -> list[dict]:
    """The same switch on the describer's VLM (SigLIP + Qwen2), alternating, for 1 and 4 pages (bf16)."""
    from describe_bench import model_folder as vlm_folder
    from describe_bench import sample_pages
    from manga2music.describers.transformers_vlm import TransformersDescriber
    from vlm_arch import scripted_generate_kwargs

    folder = str(vlm_folder())
    describer = TransformersDescriber(folder, dict(device="cpu", precision="bf16", seed=0, offline=True),
                                      generate_kwargs=scripted_generate_kwargs(folder))
    describer.describe(sample_pages(1))  # load + warm up
    out = []
    for pages, n_rounds in ((1, rounds), (4, 1)):
        times: dict[str, list[float]] = {"sdpa": [], "eager": []}
        for _ in range(n_rounds):
            for impl in ("sdpa", "eager"):
                describer.model.set_attn_implementation(impl)
                seconds, _ = timed(describer.describe, sample_pages(pages))
                times[impl].append(round(seconds, 2))
        out.append({"config": f"llava-interleave-qwen-0.5b bf16, {pages} page(s)", "times_s": times,
                    "eager_over_sdpa": round(median(times["eager"]) / median(times["sdpa"]), 3)})
        print(out[-1], file=sys.stderr)
    describer.close()
    return out


def _time_calls(obj, name: str, box: dict) -> callable:
    """Wrap ``obj.name`` so its calls add their wall time to ``box["s"]``; returns an undo function."""
    original = getattr(obj, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            box["s"] += time.perf_counter() - t0
            box["calls"] += 1

    setattr(obj, name, wrapper)
    return lambda: setattr(obj, name, original)


def overhead(duration: float = 5.0) -> dict:
    """Where compose's wall time goes (bf16, batch 1 and 4): decoder steps, T5, EnCodec, and the rest.

    The rest is generate's own loop (logits processors, sampling, cache and stopping
    bookkeeping) plus our windowing: the most that trimming per-step Python work could save.
    """
    out = {}
    for batch in (1, 4):
        composer = _composer("bf16", batch)
        model = composer._model  # experiment only: time its parts
        parts = {"decoder": {"s": 0.0, "calls": 0}, "text_encoder": {"s": 0.0, "calls": 0},
                 "encodec_decode": {"s": 0.0, "calls": 0}}
        undo = [_time_calls(model.decoder, "forward", parts["decoder"]),
                _time_calls(model.text_encoder, "forward", parts["text_encoder"]),
                _time_calls(model.audio_encoder, "decode", parts["encodec_decode"])]
        wall, _ = timed(composer.compose, _requests(batch, duration))
        for u in undo:
            u()
        steps = parts["decoder"]["calls"]
        rest = wall - sum(p["s"] for p in parts.values())
        out[f"batch {batch}"] = {"wall_s": round(wall, 2), "steps": steps,
                                 "ms_per_step": round(1000 * parts["decoder"]["s"] / max(1, steps), 1),
                                 **{f"{k}_s": round(v["s"], 2) for k, v in parts.items()},
                                 "generate_loop_rest_s": round(rest, 2), "rest_share": round(rest / wall, 3)}
        composer.close()
    return out


def release_worker(cfg: dict) -> None:
    """Describe one page with the VLM, optionally close it, then compose 4 x 5 s (bf16); report peak RSS."""
    from compose_bench import model_folder
    from describe_bench import model_folder as vlm_folder
    from describe_bench import sample_pages
    from manga2music.composers.musicgen import MusicgenComposer
    from manga2music.describers.transformers_vlm import TransformersDescriber
    from measure import current_rss_mb, peak_rss_mb
    from vlm_arch import scripted_generate_kwargs

    folder = str(vlm_folder())
    describer = TransformersDescriber(folder, dict(device="cpu", precision="bf16", seed=0, offline=True),
                                      generate_kwargs=scripted_generate_kwargs(folder))
    describer.describe(sample_pages(1))
    after_describe, peak_describe = current_rss_mb(), peak_rss_mb()
    if cfg["close"]:
        describer.close()
    before_compose = current_rss_mb()
    composer = MusicgenComposer(str(model_folder("small")),
                                dict(device="cpu", precision="bf16", batch_size=4, offline=True))
    composer.compose(_requests(4, 5.0))
    emit({"close": cfg["close"], "rss_after_describe_mb": after_describe, "peak_rss_describe_mb": peak_describe, "rss_before_compose_mb": before_compose,
          "rss_end_mb": current_rss_mb(), "peak_rss_mb": peak_rss_mb()})


def release() -> dict:
    runs = {("with close()" if close else "without close()"): run_worker("experiments.py", {"close": close})
            for close in (True, False)}
    return runs


def kv_cache_worker(cfg: dict) -> None:
    """One 4 x 30 s compose (bf16); the time of every decoder step, summarised by position in the window."""
    from manga2music.composers import kv_cache as cache_module
    from measure import peak_rss_mb

    if cfg["cache"] == "default":  # generate builds transformers' DynamicCache, as before the change
        cache_module.decoder_cache = cache_module.default_decoder_cache
    composer = _composer("bf16", 4)
    stamps: list[float] = []
    seconds, _ = timed(composer.compose, _requests(4, cfg["duration"]),
                       progress=lambda done, total, label: stamps.append(time.perf_counter()))
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    by_range = {f"{lo}-{lo + 250}": round(1000 * median(steps[lo:lo + 250]), 1) for lo in range(0, len(steps), 250)}
    emit({"cache": cfg["cache"], "wall_s": round(seconds, 1), "steps": len(stamps),
          "ms_per_step_by_position": by_range, "peak_rss_mb": peak_rss_mb()})


def kv_cache(duration: float = 30.0) -> dict:
    return {name: run_worker("experiments.py", {"experiment": "kv_cache", "cache": name, "duration": duration})
            for name in ("preallocated", "default")}


EXPERIMENTS = {"attention": attention, "vlm_attention": vlm_attention, "overhead": overhead, "release": release,
               "kv_cache": kv_cache}
WORKERS = {"release": release_worker, "kv_cache": kv_cache_worker}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(EXPERIMENTS)} (default: all)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        cfg = json.loads(args.worker)
        WORKERS[cfg.get("experiment", "release")](cfg)
        return
    unknown = [n for n in args.names if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment(s): {', '.join(unknown)}")
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["machine"] = machine_info()
    for name in args.names or list(EXPERIMENTS):
        print(f"experiment: {name}", file=sys.stderr)
        results[name] = EXPERIMENTS[name]()
        results[name + "_when"] = time.strftime("%Y-%m-%d %H:%M %Z")
        RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(json.dumps({name: results[name]}, indent=2))


if __name__ == "__main__":
    main()
