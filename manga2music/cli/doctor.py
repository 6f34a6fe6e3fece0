"""`manga2music doctor`: what this machine can run, on one screen (or as JSON)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

DoctorJsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout (for scripts).")]
DoctorOfflineOpt = Annotated[bool, typer.Option(
    "--offline", help="No network: skip the Hugging Face Hub probe (HF_HUB_OFFLINE=1 does too) and check an API "
                      "describer as run --offline would.")]
DoctorBaseUrlOpt = Annotated[Optional[str], typer.Option(
    "--base-url", metavar="URL", help="Check --vision-model on this OpenAI-compatible server, as run --base-url "
                                      "would ask it (OPENAI_BASE_URL also works).")]
VisionOpt = Annotated[Optional[str], typer.Option("--vision-model", metavar="NAME",
                                                  help="Also check whether this vision model can run here (exit 1 if not).")]
MusicOpt = Annotated[Optional[str], typer.Option("--music-model", metavar="NAME",
                                                 help="Also check whether this music model can run here (exit 1 if not).")]


def _gb(x: float) -> str:
    """A size the probes give in GiB (1024**3 bytes)."""
    return f"{x:.1f} GiB"


def _device_line(r: dict) -> str:
    if r["accelerator"] == "cuda":
        parts = [f"CUDA {r['torch_cuda']}:"]
        for g in r["gpus"]:
            cc = f", compute {g['compute_capability']}" if g["compute_capability"] else ""
            parts.append(f"[{g['index']}] {g['name']}{cc}, {_gb(g['free_gb'])} free of {_gb(g['total_gb'])}")
        return " ".join(parts) + f" ({r['gpu_source']})"
    if r["accelerator"] == "mps":
        return "Apple MPS (unified memory: see RAM)"
    return "CPU only" + (f" ({r['gpu_note']})" if r["gpu_note"] else "")


def _table(r: dict):
    from rich.markup import escape
    from rich.table import Table

    def yes(v) -> str:
        return "unknown" if v is None else ("yes" if v else "no")

    pk = r["packages"]
    t = Table(title="manga2music doctor", show_header=False, title_justify="left", expand=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    t.add_row("versions", f"manga2music {r['manga2music']}, Python {r['python']} ({r['platform']}), "
              + ", ".join(f"{k} {v or 'not installed'}" for k, v in pk.items()))
    t.add_row("device", escape(_device_line(r)))
    t.add_row("CPU", f"{r['cpu_cores']} cores, native bf16: {yes(r['cpu_bf16'])} ({r['cpu_bf16_source']})")
    t.add_row("RAM", f"{_gb(r['ram_available_gb'])} available of {_gb(r['ram_total_gb'])} ({r['ram_source']})")
    if r["cache_problem"]:
        t.add_row("model cache", f"[red]{escape(r['cache_problem'])}[/]: no model can be downloaded (from "
                  f"{escape(r['cache_source'])}; point it at a folder)")
    else:
        t.add_row("model cache", escape(f"{r['cache_dir']} (from {r['cache_source']}), {_gb(r['disk_free_gb'])} "
                                        "free on disk"))
    cached = [f"{c['name'] or c['repo_id']} {c['size_bytes'] / 1024**3:.2f} GiB" + ("" if c["complete"] else " (incomplete)")
              for c in r["cached"]]
    t.add_row("cached models", escape(", ".join(cached) or "none"))
    key = "key set (OPENAI_API_KEY)" if r["openai_key_set"] else "no OPENAI_API_KEY"
    from ..other_archives import INSTALL_BSDTAR

    if r["bsdtar"]:
        t.add_row("comic archives", escape(f"zip, tar; RAR, 7-Zip and compressed tars through {r['bsdtar']}"))
    else:
        t.add_row("comic archives", "zip, tar; [yellow]RAR (.cbr), 7-Zip (.cb7) and compressed tars need bsdtar[/]: "
                  + escape(INSTALL_BSDTAR))
    kept = r["page_readings"]
    size = (f"{kept['bytes'] / 1024**2:.1f} MiB" if kept["bytes"] >= 1024**2 else f"{kept['bytes'] / 1024:.0f} KiB")
    if kept["problem"]:
        t.add_row("page readings", f"[yellow]{escape(kept['problem'])}[/]: every page is read every time "
                  "(MANGA2MUSIC_READING_CACHE=FOLDER keeps them elsewhere)")
    else:
        t.add_row("page readings", escape(f"{kept['count']} kept in {kept['folder']} ({size})")
                  if kept["folder"] else "not kept (MANGA2MUSIC_READING_CACHE=off): every page is read every time")
    t.add_row("OpenAI", escape(f"{key}; base URL {r['openai_base_url']} ({r['openai_base_url_source']})"))
    hub = r["hub"]
    if hub["checked"]:
        state = "[green]reachable[/]" if hub["reachable"] else "[red]unreachable[/]"
        t.add_row("Hugging Face Hub", f"{state} {escape(hub['endpoint'])} ({escape(hub['detail'])}, {hub['seconds']:.2f} s)")
    else:
        t.add_row("Hugging Face Hub", f"not checked: {escape(hub['detail'])}")
    for side in ("vision", "music"):
        s = r["suggested"][side]
        t.add_row(f"auto {side}", f"[cyan]{escape(s['model'])}[/]: {escape(s['reason'])}")
    allowed, source = r["auto_download"]["allowed"], r["auto_download"]["source"]
    answer = {True: "yes", False: "no"}.get(allowed, "asked once in a terminal, never without one")
    t.add_row("auto downloads", escape(f"{answer} ({source}); --download / --no-download decide for one run"))
    for c in r["checks"]:
        mark = "[green]ok[/]" if c["ok"] else "[red]cannot run[/]"
        extra = "".join(f"\n[yellow]warning:[/] {escape(w)}" for w in c["warnings"])
        # the model on a line of its own beside the flag: a long folder path as the label (which never wraps) left
        # the values a column of one letter a line at 80 columns (1117 lines)
        t.add_row(f"--{c['side']}-model", f"{escape(c['model'])}\n{mark}: {escape(c['reason'])}{extra}")
    t.caption = f"checked in {r['seconds']:.2f} s"
    return t


def doctor(
    json_out: DoctorJsonOpt = False,
    offline: DoctorOfflineOpt = False,
    vision_model: VisionOpt = None,
    music_model: MusicOpt = None,
    base_url: DoctorBaseUrlOpt = None,
) -> None:
    """Show what this machine can run: versions, GPU/CPU, memory, cache, Hub and the models `auto` picks."""
    from ._common import fail, friendly_errors, offline_env

    with friendly_errors(), offline_env(offline):  # --offline as `run --offline` means it: no network at all
        from ..doctor import build_report

        report = build_report(offline=offline, vision_model=vision_model, music_model=music_model,
                              base_url=base_url)
    if json_out:
        import json

        typer.echo(json.dumps(report, indent=2))
    else:
        from ._common import plain_console

        plain_console().print(_table(report))
    failed = [c for c in report["checks"] if not c["ok"]]
    if failed:
        raise fail("; ".join(_cannot_run(c['model'], c['reason']) for c in failed),
                   "`manga2music doctor` without --vision-model/--music-model shows what auto picks.")


def _cannot_run(model: str, reason: str) -> str:
    """``MODEL cannot run here: REASON``, or the reason alone where it begins with the model's name already (it said
    "./mg cannot run here: ./mg is a folder, but there is no model in it")."""
    if reason.startswith(model + ": "):
        reason = reason[len(model) + 2:]
    elif reason.startswith(model + " "):
        return reason
    return f"{model} cannot run here: {reason}"
