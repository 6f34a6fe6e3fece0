"""The suite's results as Markdown tables (README-ready) and a target check."""

from __future__ import annotations

import math

#: a run whose worker got less than this share of its threads' CPU time was slowed by other processes
CONTENDED = 0.9


def _f(value, digits: int = 2, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}{unit}"


def _gb(mb) -> str:
    return "-" if not mb else f"{mb / 1024:.2f}"


def machine_line(m: dict) -> str:
    parts = [f"{m.get('cpu', '?')}, {m.get('cpu_cores', '?')} cores ({m.get('torch_threads', '?')} torch threads)",
             f"{m.get('ram_gb', '?')} GB RAM",
             f"native bf16: {'yes' if m.get('cpu_native_bf16') else 'no'}"]
    if m.get("gpu"):
        parts.append(f"GPU: {m['gpu']} ({m.get('gpu_memory_gb')} GB)")
    parts.append(f"torch {m.get('torch', '?')}, transformers {m.get('transformers', '?')}, Python {m.get('python', '?')}")
    load = m.get("load_avg_at_start")
    if load:
        parts.append(f"load average at start {load[0]:.1f}")
    return "; ".join(parts)


def _config(r: dict) -> str:
    if r.get("one_at_a_time"):
        return f"**baseline**: {r.get('precision')}, one section at a time"
    batch = r.get("batch")
    chosen = f" (chose {r['batch_used']})" if batch is None and r.get("batch_used") else ""
    prec = r.get("precision")
    if prec == "auto" and r.get("dtype"):
        prec = f"auto ({r['dtype']})"
    attn = f", {r['attn']} attention (experiment)" if r.get("attn") else ""
    cache = ", transformers' default growing KV cache (experiment)" if r.get("cache") == "default" else ""
    return f"{prec}, batch {batch if batch else 'auto'}{chosen}{attn}{cache}"


def _ms_per_step(r: dict) -> float | None:
    """Decoder steps of one compose call: 50 frames per second plus the 3-step codebook delay (one window)."""
    duration = r.get("duration") or 0
    if not 0 < duration <= 30 or not r.get("median_s"):
        return None
    return 1000 * r["median_s"] / (round(duration * 50) + 3)


def compose_table(section: dict, gpu: bool = False) -> list[str]:
    rows = section.get("rows", [])
    mem = "peak VRAM GB" if gpu else "peak RSS GB"
    speed = "real-time factor (audio s per wall s)" if gpu else "audio s per wall s"
    lines = [f"| model | audio | configuration | wall s (median; runs) | ms per step | {speed} | x baseline | {mem} |"
             + ("" if gpu else " CPU share |"),
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |" + ("" if gpu else " ---: |")]
    order = sorted(rows, key=lambda r: (("small", "medium", "large").index(r.get("size", "small"))
                                        if r.get("size") in ("small", "medium", "large") else 9,
                                        r.get("duration") or 0, not r.get("one_at_a_time"), r.get("sections") or 0))
    for r in order:
        audio = f"{r.get('sections', '?')} x {r.get('duration', 0):g} s"
        head = f"| musicgen-{r.get('size')} | {audio} | {_config(r)} |"
        if "audio_s_per_s" not in r:
            why = r.get("skipped") or r.get("error") or "not measured"
            lines.append(head + f" {why} | | | | |" + ("" if gpu else " |"))
            continue
        runs = len(r.get("times_s", []))
        wall = r.get("wall_for_all_sections_s") if r.get("one_at_a_time") else r.get("median_s")
        per = f" ({_f(r.get('median_s'), 1)} per section)" if r.get("one_at_a_time") else ""
        ratio = "1.00x" if r.get("one_at_a_time") else _f(r.get("speedup"), unit="x")
        memory = _gb(r.get("peak_vram_mb")) if gpu else _gb(r.get("peak_rss_mb"))
        line = (f"{head} {_f(wall, 1)}{per}; {runs} | {_f(_ms_per_step(r), 0)} | {_f(r['audio_s_per_s'], 3)} | "
                f"{ratio} | {memory} |")
        share = r.get("cpu_share")
        flag = " (contended)" if share is not None and share < CONTENDED else ""
        lines.append(line + ("" if gpu else f" {_f(share)}{flag} |"))
    return lines


def describe_table(section: dict) -> list[str]:
    lines = ["| pages | precision | requests | prompt tokens | answer tokens | wall s (median; runs) | s per page |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for run in section.get("runs", []):
        if "rows" not in run:
            lines.append(f"| - | - | {run.get('error', 'failed')} | | | | |")
            continue
        for row in run["rows"]:
            lines.append(f"| {row['pages']} | {run.get('precision')} ({run.get('device')}) | {row['requests']} | "
                         f"{row['prompt_tokens']} | {row['completion_tokens']} | {_f(row['median_s'], 1)}; "
                         f"{len(row['times_s'])} | {_f(row['s_per_page'], 2)} |")
    return lines


def builtin_lines(section: dict) -> list[str]:
    ip, cmd = section.get("in_process", {}), section.get("command", {})
    lines = ["| what | median s | budget |", "| --- | ---: | ---: |"]
    if "warm_median_s" in ip:
        n = ip.get("sections")
        lines.append(f"| `api.run(samples/)`, builtin, {n} sections of {ip.get('duration_s') or 10:g} s, in one process "
                     f"(warm; first call {_f(ip.get('cold_s'))} s) | {_f(ip['warm_median_s'])} | 3.0 |")
    if "median_s" in cmd:
        lines.append(f"| `manga2music run samples/ --vision-model builtin --music-model builtin` (whole command) | "
                     f"{_f(cmd['median_s'])} | |")
    for row in section.get("startup", []):
        budget = _f(row["budget_s"], 1) if row.get("budget_s") else ""
        lines.append(f"| `{row['command']}` | {_f(row['median_s'], 3)} | {budget} |")
    return lines


def _experiment(r: dict) -> bool:
    """A row that changes something the composer does not do (attention kernel, cache): not a target figure."""
    return bool(r.get("attn") or r.get("cache"))


def targets(results: dict) -> list[dict]:
    """The issue's targets, measured: ``{"target", "measured", "ok"}`` each (ok None = not measured)."""
    out = []
    compose = results.get("compose", {}).get("rows", [])
    batched = [r for r in compose if r.get("size") == "small" and r.get("sections") == 4 and r.get("duration") == 5.0
               and not r.get("one_at_a_time") and "speedup" in r and not _experiment(r)]
    best = max(batched, key=lambda r: r["speedup"], default=None)
    out.append({"target": "musicgen-small, 4 sections of 5 s: batched best precision >= 3.5x the fp32 one-at-a-time "
                          "baseline",
                "measured": f"{best['speedup']:.2f}x ({_config(best)})" if best else "-",
                "ok": None if best is None else best["speedup"] >= 3.5})
    small = [r for r in compose if r.get("size") == "small" and r.get("peak_rss_mb") and not r.get("one_at_a_time")
             and r.get("precision") != "fp32" and r.get("duration") == 5.0 and not _experiment(r)]
    if best is not None:
        out.append({"target": "peak RSS of that musicgen-small compose < 3 GB",
                     "measured": f"{best['peak_rss_mb'] / 1024:.2f} GB (largest of the bf16/auto runs: "
                                 f"{max(r['peak_rss_mb'] for r in small) / 1024:.2f} GB)" if small else "-",
                     "ok": best["peak_rss_mb"] < 3 * 1024})
    startup = {r["command"]: r for r in results.get("builtin", {}).get("startup", [])}
    for name, budget in (("manga2music --help", 0.5), ("manga2music doctor --offline", 1.5),
                         ("manga2music doctor (Hub probe)", 1.5)):
        r = startup.get(name)
        out.append({"target": f"`{name}` < {budget} s", "measured": f"{r['median_s']:.3f} s" if r else "-",
                    "ok": None if r is None else r["median_s"] < budget})
    ip = results.get("builtin", {}).get("in_process", {})
    if "warm_median_s" in ip:
        out.append({"target": "builtin `run samples/` < 3 s excluding Python start-up (api.run in one process)",
                    "measured": f"{ip['warm_median_s']:.2f} s warm, {ip['cold_s']:.2f} s first call",
                    "ok": ip["cold_s"] < 3.0})
    return out


def markdown(results: dict) -> str:
    m = results.get("machine", {})
    gpu = results.get("mode") == "gpu"
    title = "GPU" if gpu else f"CPU, {results.get('mode')} mode"
    lines = [f"# manga2music benchmarks ({title})", "",
             f"Run {results.get('started')} with `{results.get('command')}` ({results.get('wall_s', 0) / 60:.1f} min).",
             "", f"Machine: {machine_line(m)}.", "",
             "Models are the real architectures with random weights (compute does not depend on weight values). "
             "Each figure is the median of the runs shown; every compose figure sits beside the baseline measured "
             "in the same suite run: float32, one section at a time, no batching (how the original scripts ran).", ""]
    checks = targets(results)
    if any(c["ok"] is not None for c in checks) and not gpu:
        lines += ["## Targets", "", "| target | measured | met |", "| --- | --- | --- |"]
        lines += [f"| {c['target']} | {c['measured']} | {'-' if c['ok'] is None else 'yes' if c['ok'] else 'NO'} |"
                  for c in checks]
        lines.append("")
    if results.get("compose"):
        lines += ["## Compose (MusicgenComposer.compose)", "", *compose_table(results["compose"], gpu=gpu), ""]
        if not gpu:
            lines += ["CPU share: CPU seconds the worker got per wall second per torch thread while timed; under "
                      f"{CONTENDED} (marked contended) means other processes took the cores during that run, so its "
                      "figure is slower than the machine can do (rerun it, e.g. `--only compose`).", ""]
    if results.get("describe"):
        d = results["describe"]
        runs = [r for r in d.get("runs", []) if "rows" in r]
        if d.get("skipped"):
            lines += ["## Describe", "", f"Skipped: {d['skipped']}.", ""]
        else:
            lines += ["## Describe (TransformersDescriber.describe, llava-interleave-qwen-0.5b shapes)", ""]
            lines += describe_table(d)
        if runs:
            r = runs[0]
            lines += ["", f"Two-stage prompting: one request per chunk of up to {r.get('chunk_size')} pages "
                          f"({r.get('tokens_per_page')} prompt tokens per page) plus one text-only request. "
                          f"Load {_f(r.get('load_s'), 1)} s; peak RSS {_gb(r.get('peak_rss_mb'))} GB; RSS after "
                          f"`close()` {_gb(r.get('rss_after_close_mb'))} GB (what is left for MusicGen)."]
        lines.append("")
    if results.get("builtin"):
        lines += ["## Builtin tier and start-up", "", *builtin_lines(results["builtin"]), ""]
    return "\n".join(lines)
