"""Describe benchmark: seconds per page for 1, 4 and 16 pages with the real llava-interleave-qwen-0.5b shapes.

Runs :meth:`TransformersDescriber.describe` (two-stage prompting, chunking,
answer parsing: the project's own path) on the sample pages, cycled to the
page count, with random weights from :mod:`vlm_arch` and scripted answers of
realistic length.  One worker process per precision: it loads the model once,
describes one page to warm up, then times each page count.

    python benchmarks/describe_bench.py [--quick] [--device cpu] [--precision auto]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import REPO, cache_root, current_rss_mb, emit, median, run_worker, timed  # noqa: E402

MODEL_NAME = "llava-interleave-qwen-0.5b"
PAGE_COUNTS = (1, 4, 16)
REPEATS = {"quick": {1: 1, 4: 1}, "default": {1: 3, 4: 2, 16: 1}, "full": {1: 5, 4: 3, 16: 3},
           "gpu": {1: 3, 4: 2, 16: 2}}


def missing_modules() -> list[str]:
    """Packages the describe path needs beyond torch and transformers that are not installed."""
    import importlib.util

    return [name for name in ("PIL", "pydantic", "natsort") if importlib.util.find_spec(name) is None]


def model_folder() -> Path:
    return cache_root() / f"{MODEL_NAME}-realcfg-random"  # built from the real config, tokenizer and processor


def sample_pages(n: int) -> list:
    """``n`` pages as the pipeline hands them to a describer: the samples' pages and tiles, cycled."""
    from manga2music.describers.base import PageImage
    from manga2music.pages import load_page
    from manga2music.sections import find_sections

    pool = []
    for section in find_sections([REPO / "samples"]):
        for page in section.pages:
            loaded = load_page(page)
            for t, tile in enumerate(loaded.tiles):
                name = page.name if len(loaded.tiles) == 1 else f"{page.name}#{t + 1}"
                pool.append(PageImage(f"{section.name}/{name}", tile, loaded.format))
    return [pool[i % len(pool)] for i in range(n)]


def _peak_vram_mb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def worker(cfg: dict) -> None:
    """In a fresh process: load, warm up on one page, time each page count, release."""
    if cfg.get("build"):
        from vlm_arch import build_random_llava_interleave

        seconds, _ = timed(build_random_llava_interleave, cfg["folder"])
        emit({"built": cfg["folder"], "build_s": round(seconds, 1)})
        return
    import torch

    from manga2music.describers.transformers_vlm import TransformersDescriber
    from manga2music.devices import dtype_name
    from vlm_arch import scripted_generate_kwargs

    options = dict(device=cfg["device"], precision=cfg["precision"], seed=0, offline=True)
    describer = TransformersDescriber(cfg["folder"], options, generate_kwargs=scripted_generate_kwargs(cfg["folder"]))
    load_s, _ = timed(describer.load)
    rss_loaded = current_rss_mb()
    first_s, _ = timed(describer.describe, sample_pages(1))
    rows = []
    for n, repeats in sorted((int(k), v) for k, v in cfg["repeats"].items()):
        pages = sample_pages(n)
        times, usage = [], {}
        for _ in range(repeats):
            seconds, result = timed(describer.describe, pages)
            times.append(round(seconds, 2))
            usage = result.usage
        rows.append({"pages": n, "times_s": times, "median_s": round(median(times), 2),
                     "s_per_page": round(median(times) / n, 2), "requests": -(-n // describer.chunk_size) + 1,
                     "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens")})
    peak_vram = _peak_vram_mb()
    describer.close()
    emit({"model": MODEL_NAME, "device": describer.device, "precision": dtype_name(describer.dtype),
          "threads": torch.get_num_threads(), "load_s": round(load_s, 2), "first_call_s": round(first_s, 2),
          "tokens_per_page": describer.tokens_per_page, "chunk_size": describer.chunk_size,
          "rss_loaded_mb": rss_loaded, "rss_after_close_mb": current_rss_mb(), "peak_vram_mb": peak_vram,
          "rows": rows})


def run(*, mode: str = "default", device: str = "cpu", precisions: tuple[str, ...] = ("auto",),
        timeout: float = 3600) -> dict:
    """Build the model folder once (own process), then one worker per precision."""
    folder = model_folder()
    section: dict = {"model": MODEL_NAME, "folder": str(folder), "runs": []}
    if not (folder / "config.json").is_file():
        print(f"building the random {MODEL_NAME} (once, kept in {folder})", file=sys.stderr)
        built = run_worker("describe_bench.py", {"build": True, "folder": str(folder)}, timeout=timeout)
        section["build"] = built
        if "error" in built:
            return section
    for precision in precisions:
        print(f"describe: {MODEL_NAME} {device} {precision}", file=sys.stderr)
        config = {"folder": str(folder), "device": device, "precision": precision, "repeats": REPEATS[mode]}
        section["runs"].append(run_worker("describe_bench.py", config, timeout=timeout))
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1 and 4 pages, one run each")
    parser.add_argument("--full", action="store_true", help="more runs per figure")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", action="append", help="auto, fp32, bf16, fp16 (repeatable)")
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    mode = "quick" if args.quick else "full" if args.full else "default"
    result = run(mode=mode, device=args.device, precisions=tuple(args.precision or ["auto"]))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
