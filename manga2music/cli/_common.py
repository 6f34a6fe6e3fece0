"""Shared option types, error handling and progress display for the CLI."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

OutputOpt = Annotated[Path, typer.Option("-o", "--output", help="Folder for descriptions, records and tracks.")]
DurationOpt = Annotated[float, typer.Option("--duration", min=0.1, help="Track length in seconds.")]
FormatOpt = Annotated[str, typer.Option("--format", help="Audio format: wav, mp3, ogg, flac or opus.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps (auto: cuda, then mps, then cpu).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="auto, fp32, fp16 or bf16.")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Make sampling repeatable (recorded in each .json).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo every section, even unchanged ones.")]
ArtifactOpt = Annotated[bool, typer.Option("--save-artifact", help="Also write the stage-1 analysis as NAME.analysis.json.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the manifest as JSON on stdout.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="If another run is writing to the same output folder, wait for it instead of exiting.")]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Never touch the network; use cached weights only.")]
LoopOpt = Annotated[bool, typer.Option("--loop", help="Make tracks that loop seamlessly.")]
VariationsOpt = Annotated[int, typer.Option("--variations", min=1, help="Takes per description (seed, seed+1, ...).")]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Sections per MusicGen batch (default: from free memory).")]
NoNormalizeOpt = Annotated[bool, typer.Option("--no-normalize", help="Keep the model's level (no -14 LUFS loudness).")]
TopKOpt = Annotated[int, typer.Option("--top-k", help="MusicGen sampling: top-k.")]
TopPOpt = Annotated[float, typer.Option("--top-p", help="MusicGen sampling: top-p (0 = off).")]
TemperatureOpt = Annotated[float, typer.Option("--temperature", help="MusicGen sampling temperature.")]
GuidanceOpt = Annotated[float, typer.Option("--guidance-scale", help="MusicGen classifier-free guidance.")]
SingleStageOpt = Annotated[bool, typer.Option("--single-stage", help="Ask for the music description directly (no analysis stage).")]
DetailOpt = Annotated[str, typer.Option("--detail", help="OpenAI image detail: low, high or auto.")]
ChunkOpt = Annotated[Optional[int], typer.Option("--chunk-size", min=1, help="Pages per model request (long chapters are chunked).")]
BaseUrlOpt = Annotated[Optional[str], typer.Option("--base-url", envvar="OPENAI_BASE_URL", show_envvar=False,
                                                   help="An OpenAI-compatible server, e.g. http://localhost:11434/v1 (Ollama).")]
KeyEnvOpt = Annotated[str, typer.Option("--api-key-env", help="The environment variable that holds the API key.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per API request before retrying.")]
RemoteCodeOpt = Annotated[bool, typer.Option("--trust-remote-code", help="Allow a Hub model's own Python code to run.")]
MaxTokensOpt = Annotated[int, typer.Option("--max-new-tokens", help="Cap on tokens a local vision model writes per answer.")]

PathsArg = Annotated[list[Path], typer.Argument(help="Folders, images, .cbz/.zip archives or PDFs.", show_default=False)]


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def fail(message: str, hint: str | None = None, code: int = 1) -> "typer.Exit":
    console = stderr_console()
    console.print(f"[bold red]Error:[/] {message}", soft_wrap=True)
    if hint:
        console.print(f"[dim]{hint}[/]", soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Known errors become one red line (exit 1, or 2 for bad input); MANGA2MUSIC_DEBUG=1 re-raises."""
    from ..errors import Manga2MusicError
    from ..settings import debug_enabled

    try:
        yield
    except Manga2MusicError as exc:
        if debug_enabled():
            raise
        hint = exc.hint or ("Set MANGA2MUSIC_DEBUG=1 for the full traceback." if exc.traceback_helps else None)
        raise fail(exc.message, hint, exc.exit_code) from None
    except KeyboardInterrupt:
        stderr_console().print("[yellow]Interrupted.[/] Finished files are kept; run the same command again to resume.")
        raise typer.Exit(130) from None


class RunDisplay:
    """Two rich bars on stderr (sections overall, current step) and log lines; quiet when not a terminal."""

    def __init__(self, quiet: bool | None = None):
        self.console = stderr_console()
        self.quiet = (not self.console.is_terminal) if quiet is None else quiet
        self.progress = None
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> "RunDisplay":
        if not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=self.console, transient=True)
            self.progress.start()
            self._tasks["sections"] = self.progress.add_task("sections", total=None)
            self._tasks["step"] = self.progress.add_task("", total=None)
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def _update(self, which: str, done: int, total: int, label: str) -> None:
        if self.progress is not None:
            self.progress.update(self._tasks[which], completed=done, total=total or None, description=label[:60])

    def sections(self, done: int, total: int, label: str) -> None:
        self._update("sections", done, total, label)

    def step(self, done: int, total: int, label: str) -> None:
        self._update("step", done, total, label)

    def log(self, level: str, message: str) -> None:
        from rich.markup import escape

        style = "yellow" if level == "warning" else "dim"
        self.console.print(f"[{style}]{escape(message)}[/]", soft_wrap=True)

    def callbacks(self):
        from ..pipeline import Callbacks

        return Callbacks(sections=self.sections, step=self.step, log=self.log)


def print_summary(manifest: dict, as_json: bool, output: Path) -> int:
    """Results on stdout (a table, or JSON with --json); the exit code: 1 when any section failed."""
    this_run = set(manifest.get("this_run", []))
    entries = [e for e in manifest["sections"] if e["name"] in this_run]
    failed = [e for e in entries if e["status"] == "failed"]
    if as_json:
        sys.stdout.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_edge=False, pad_edge=False)
        for col in ("section", "status", "output"):
            table.add_column(col)
        for e in entries:
            colour = {"ok": "green", "skipped": "cyan", "failed": "red"}[e["status"]]
            detail = e["message"] if e["status"] == "failed" else ", ".join(e["tracks"] or [e["description"] or ""])
            table.add_row(e["name"], f"[{colour}]{e['status']}[/]", detail or "")
        console = Console(highlight=False)
        console.print(table)
        ok = len(entries) - len(failed)
        console.print(f"{ok} of {len(entries)} sections done; everything is in {output}{os.sep}")
    return 1 if failed else 0
