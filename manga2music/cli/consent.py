"""Asking, in a terminal, whether `auto` may download the models it picked (once; the answer is remembered).

The library decides *when* to ask (:mod:`manga2music.downloads`); this module only asks.  It is
used when neither ``--download``/``--no-download``, ``MANGA2MUSIC_AUTO_DOWNLOAD`` nor a remembered
answer decides, and only when both stdin and stderr are a terminal.  Without a terminal nothing is
asked and nothing is downloaded: the library says in one line how to allow it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..downloads import DownloadPlan
    from ._common import RunDisplay


def interactive() -> bool:
    """Someone can answer: stdin and stderr (where the question goes) are both a terminal."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def question(plan: "DownloadPlan", remembered_in: str) -> list[str]:
    """The lines shown before the question (rich markup; paths escaped)."""
    from rich.markup import escape

    lines = ["[bold]auto picked models that are not on this machine yet:[/]"]
    for item in plan.items:
        lines.append(f"  {item.side}: [cyan]{item.spec.name}[/], a {item.spec.download_gb:g} GB download "
                     f"({escape(item.spec.model_id)}), to run {escape(item.where)}")
    total = f"{plan.total_gb:g} GB in all, into" if len(plan.items) > 1 else "Into"
    lines.append(f"{total} {escape(plan.cache_dir)} ({plan.disk_free_gb:.0f} GB free there).")
    estimate = plan.cpu_estimate()
    if estimate:
        lines.append(escape(estimate[:1].upper() + estimate[1:]) + ".")
    lines.append(f"If you say no: {escape(plan.instead())}, with nothing downloaded "
                 f"(`{escape(plan.pull_command)}` fetches them later).")
    lines.append(f"[dim]Your answer is remembered in {escape(remembered_in)}; --download / --no-download "
                 "decide for one run.[/]")
    return lines


def ask(plan: "DownloadPlan", display: "RunDisplay") -> bool:
    """Show the plan on stderr, ask yes/no (Enter: no), remember the answer; Ctrl-D is no, not remembered."""
    from rich.markup import escape

    from .. import settings
    from ..errors import Manga2MusicError

    console = display.console
    with display.paused():
        for line in question(plan, str(settings.settings_file())):
            console.print(line, soft_wrap=True, highlight=False)
        answer = None
        while answer is None:
            try:
                reply = console.input("Download them now? \\[y/N] ")
            except EOFError:
                console.print()
                return False
            except KeyboardInterrupt as exc:  # said as what it is: "Finished files are kept; ... resume" misled
                console.print()
                exc.nothing_made = "It was still asking whether to download: nothing was made, and no answer was " \
                                   "remembered."
                raise
            answer = settings.parse_bool(reply) if reply.strip() else False
        try:
            settings.set_setting(settings.AUTO_DOWNLOAD, answer,
                                 note=lambda line: console.print(f"[yellow]{escape(line)}[/]", soft_wrap=True))
        except (OSError, Manga2MusicError) as exc:
            why = exc.message if isinstance(exc, Manga2MusicError) else \
                f"cannot write {settings.settings_file()} ({exc.strerror or exc})"
            console.print(f"[yellow]Could not remember the answer: {escape(why)}; you will be asked again.[/]",
                          soft_wrap=True)
    return answer


def let_auto_ask(cfg, display: "RunDisplay") -> None:
    """When nothing on the command line decides, let `auto` ask through ``display`` (in a terminal only)."""
    if cfg.auto_download is None and interactive():
        cfg.auto_download = lambda plan: ask(plan, display)
