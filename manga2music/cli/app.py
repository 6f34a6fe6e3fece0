"""The `manga2music` command: assembles the sub-commands, nothing else."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from .. import __version__
from ._common import own_process
from .compose import compose
from .describe import describe
from .doctor import doctor
from .flags import RayCommand
from .models import app as models_app
from .run import run
from .score import score

app = typer.Typer(
    name="manga2music",
    help="Turn manga pages into music: a vision model describes each section, a music model composes its track.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},  # every command's, as most tools take either
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"manga2music {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    """manga2music: one track per folder of manga pages."""


app.command("run", cls=RayCommand)(run)
app.command("score", cls=RayCommand)(score)
app.command("describe", cls=RayCommand)(describe)
app.command("compose", cls=RayCommand)(compose)
app.command("doctor")(doctor)
app.add_typer(models_app, name="models")


def _register_ui() -> None:
    from importlib.util import find_spec

    if find_spec("manga2music.cli.ui") is not None:
        from .ui import ui

        app.command("ui")(ui)


_register_ui()


def main() -> None:
    own_process()  # a stop that cannot finish ends the process after a grace time
    if not sys.stderr.isatty():  # transformers' and the Hub's tqdm bars ("Loading weights: 100%|███|") in a log
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # file; our own bars are quiet there too
    app()
