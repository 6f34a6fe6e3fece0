"""`manga2music models list|pull|rm|path`: the model cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Known models and the local weight cache: list, pull, rm, path.", no_args_is_help=True)

ListJsonOpt = Annotated[bool, typer.Option("--json", help="Print the list as JSON on stdout.")]
NamesArg = Annotated[list[str], typer.Argument(help="Short names (musicgen-small) or Hub ids (owner/name).",
                                               show_default=False)]
NameArg = Annotated[str, typer.Argument(help="A short name (musicgen-small) or a Hub id (owner/name).", show_default=False)]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
PullOfflineOpt = Annotated[bool, typer.Option("--offline", help="Never touch the network (only checks the cache).")]


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


def model_rows() -> list[dict]:
    """One row per registry entry, then any other repo found in the cache."""
    from .. import cache, settings
    from ..registry import MODELS

    root = settings.model_cache_dir()
    found = {c.repo_id: c for c in cache.scan(root)}
    rows = []
    for m in MODELS:
        c = found.pop(m.model_id, None) if m.needs_weights else None
        rows.append({"name": m.name, "side": m.side, "backend": m.backend, "model_id": m.model_id,
                     "needs_download": m.needs_weights, "download_gb": m.download_gb,
                     "vram_gb": m.vram_gb, "ram_gb": m.ram_gb,
                     # nothing to download: null, not false (a script took builtin for a model it cannot use)
                     "cached": bool(c and c.complete) if m.needs_weights else None, "partial": bool(c and not c.complete),
                     "size_bytes": c.size_bytes if c else 0, "about": m.about,
                     "licence": m.licence, "commercial": m.commercial})
    for c in found.values():
        rows.append({"name": None, "side": None, "backend": None, "model_id": c.repo_id, "needs_download": True,
                     "download_gb": None, "vram_gb": None, "ram_gb": None, "cached": c.complete,
                     "partial": not c.complete, "size_bytes": c.size_bytes, "about": "found in the cache",
                     "licence": None, "commercial": None})
    return rows


def _licence_cell(row: dict) -> str:
    """'apache-2.0', 'cc-by-nc-4.0 (non-commercial)', 'mit (commercial use unclear)'."""
    licence = row.get("licence") or "?"
    if row.get("commercial") is False:
        return f"{licence} (non-commercial)"
    if row.get("commercial") is None and row.get("licence"):
        return f"{licence} (commercial use unclear)"
    return licence


#: the columns of `models list`, in its table and in its tab-separated lines into a pipe
LIST_COLUMNS = ("name", "side", "id", "download", "licence", "cached", "on disk")


def _list_cells(row: dict) -> list[str]:
    """One model's cells of `models list`, plain text: cached is yes/partial/no ("-": nothing to download)."""
    if not row["needs_download"]:
        state, download = "-", "none"
    else:
        state = "yes" if row["cached"] else ("partial" if row["partial"] else "no")
        download = f"{row['download_gb']:g} GB" if row["download_gb"] else "?"
    return [row["name"] or "-", row["side"] or "-", row["model_id"] or "(no weights)", download, _licence_cell(row),
            state, _human(row["size_bytes"]) if row["size_bytes"] else "-"]


def _print_models_to_terminal(rows: list[dict], cache_dir: str) -> None:
    """A table in a wide terminal; in a narrow one each model on two lines: name, side, download, cached (and
    size on disk), then its id and licence indented below, so that no name, id or size is broken mid-word.  Where
    the first line has no room for the cache state (40 columns), the state has a line of its own below it."""
    from rich.markup import escape
    from rich.measure import Measurement
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from ._common import plain_console

    console = plain_console()
    title = f"models (cache: {escape(cache_dir)})"
    styles = {"yes": "green", "partial": "yellow"}
    # a table only where every cell fits unbroken: one cut to fit broke what you type ("gpt-4o-min" over "i" in 80
    # columns, "ACE-Step/acestep-v15-xl-" over "turbo-diffusers" in 120-159, which a fixed 120 took as enough)
    t = Table(title=title, title_justify="left")
    for col in LIST_COLUMNS:
        t.add_column(col, no_wrap=True)
    for r in rows:
        name, side, model_id, download, licence, state, on_disk = _list_cells(r)
        t.add_row(Text(name), side, Text(model_id), download, Text(licence), Text(state, styles.get(state, "")),
                  "" if on_disk == "-" else on_disk)
    if Measurement.get(console, console.options.update_width(10_000), t).maximum <= console.width:
        console.print(t)
        return
    console.print(title, soft_wrap=True)
    width = max(len(r["name"] or "-") for r in rows)
    for r in rows:
        name, side, model_id, download, licence, state, on_disk = _list_cells(r)
        cached = {"-": "", "no": "not cached"}.get(state, state) + (f" ({on_disk})" if on_disk != "-" else "")
        line = Text(f"{name:<{width}}  {side:<6}  {download:>7}")
        line.stylize("bold", 0, len(name))
        alone = cached and len(line) + 2 + len(cached) > console.width  # 40 columns: the state on a line of its own
        if cached and not alone:
            line.append("  " + cached, styles.get(state, ""))
        console.print(line, no_wrap=True, overflow="ellipsis")
        if alone:
            console.print(Padding(Text(cached, styles.get(state, "")), (0, 0, 0, 4), expand=False))
        console.print(Padding(Text(f"{model_id} · {licence}", "dim"), (0, 0, 0, 4), expand=False))  # wraps under itself


@app.command("list")
def list_models(json_out: ListJsonOpt = False) -> None:
    """Known models with their Hub ids, download sizes, and what is already in the cache."""
    from .. import settings
    from ._common import friendly_errors

    with friendly_errors():  # a relative cache path taken from a current folder that is gone: one line
        rows = model_rows()
    if json_out:
        import json

        typer.echo(json.dumps({"cache_dir": str(settings.model_cache_dir()), "cache_source": settings.cache_source(),
                               "models": rows}, indent=2))
        return
    from rich.markup import escape

    from ._common import stderr_console

    cache_dir = str(settings.model_cache_dir())
    if sys.stdout.isatty():
        _print_models_to_terminal(rows, cache_dir)
    else:  # a pipe or a file: one tab-separated line per model, as `run` writes its results there
        from ._common import _plain

        sys.stdout.write("".join("\t".join(_plain(cell) for cell in _list_cells(r)) + "\n" for r in rows))
        sys.stdout.flush()
        stderr_console().print(f"[dim]models (cache: {escape(cache_dir)}): {escape(', '.join(LIST_COLUMNS))}[/]",
                               soft_wrap=True)
    problem = settings.cache_problem()
    if problem and problem.unreadable:  # "cached: no" everywhere would not say why
        stderr_console().print(f"[yellow]The model cache {escape(problem.text)}[/]: nothing in it can be seen or "
                               "loaded", soft_wrap=True)


@app.command("pull")
def pull(names: NamesArg, offline: PullOfflineOpt = False) -> None:
    """Download models into the cache (a pull stopped part-way keeps the files it finished)."""
    from .. import cache, settings
    from ._common import fail, friendly_errors

    codes = []  # of the names that failed: 2 for a name that is no model (bad input, as `rm` says it), else 1
    for name in names:
        spec = cache.find_by_name(name)
        if spec is not None and not spec.needs_weights:
            typer.echo(f"{spec.name} {spec.no_download_reason}: nothing to download.", err=True)
            continue
        if _local_folder(name):  # it was downloaded from the Hub by its path, or "unknown model './models/mg'"
            typer.echo(f"{name} is a model folder on this machine: nothing to download (the commands take it by "
                       "its path)", err=True)
            continue
        try:
            with friendly_errors():
                root, repo_id = settings.model_cache_dir(), cache.repo_id_for(name)
                off = offline or settings.offline_mode()
                if not off and settings.cache_problem(root) is None and not cache.is_cached(repo_id, root):  # a
                    # cache it cannot write is refused below, before anything is downloaded: not announced
                    size = f" ({spec.download_gb:g} GB)" if spec is not None and spec.download_gb else ""
                    typer.echo(f"{name}: downloading {repo_id}{size} into {root}; Ctrl-C stops it (the files finished "
                               "are kept)", err=True)  # a pull is silent for minutes otherwise
                path = _pull_stoppable(name, offline=off)
        except typer.Exit as exc:
            codes.append(exc.exit_code)
            continue
        typer.echo(f"{name}: {path}")
    if codes and len(names) > 1:
        raise fail(f"{len(codes)} of {len(names)} models could not be downloaded (see above)", code=max(codes))
    if codes:
        raise typer.Exit(codes[0])


@app.command("rm")
def rm(name: NameArg, yes: YesOpt = False) -> None:
    """Delete a model's weights from the cache."""
    from .. import cache, settings
    from ._common import fail, friendly_errors

    spec = cache.find_by_name(name)
    if spec is not None and not spec.needs_weights:
        typer.echo(f"{spec.name} {spec.no_download_reason}: nothing to remove.", err=True)
        return
    if _local_folder(name):  # "models/mg is not in the cache", of a folder the commands take
        raise fail(f"{name} is a model folder on this machine, not in the model cache: `models rm` removes only "
                   "what `models pull` downloaded", code=1, hint="delete the folder yourself if you no longer want it")
    with friendly_errors():
        root = settings.model_cache_dir()
        repo_id = cache.listed_repo_id(name, root) or cache.repo_id_for(name)
    problem = settings.cache_problem(root)
    if problem and problem.unreadable:  # "not in the cache" would be untrue
        raise fail(f"the model cache {problem}: nothing can be removed from it here", code=1)
    size = cache.cached_size(repo_id, root)
    if not size and not os.path.exists(root / cache.repo_folder_name(repo_id)):
        raise fail(f"{repo_id} is not in the cache ({root})", code=1)
    if not yes:
        try:
            sure = typer.confirm(f"Delete {repo_id} ({_human(size)}) from {root}?", default=False, err=True)
        except typer.Abort:  # no answer to read (< /dev/null, a script): it said a bare "Aborted!"
            typer.echo("", err=True)  # the question's line ends: the error is a line of its own
            raise fail(f"nothing deleted: no answer to \"Delete {repo_id}?\" could be read (no terminal?)", code=1,
                       hint=f"to delete it without a question: manga2music models rm {name} -y") from None
        if not sure:
            typer.echo("Nothing deleted.", err=True)
            raise typer.Exit(1)
    with friendly_errors():
        freed = cache.remove(repo_id, root)
    typer.echo(f"Deleted {repo_id}: {_human(freed)} freed.")


@app.command("path")
def path() -> None:
    """Print the cache folder, and (on stderr) which setting chose it."""
    from .. import settings
    from ._common import friendly_errors

    source = settings.cache_source()
    with friendly_errors():
        where = settings.model_cache_dir()
    typer.echo(str(where))
    rule = {"MANGA2MUSIC_CACHE": "MANGA2MUSIC_CACHE is set", "HF_HUB_CACHE": "HF_HUB_CACHE is set",
            "HF_HOME": "HF_HOME is set (HF_HOME/hub)"}.get(source, "default: the user cache dir (set MANGA2MUSIC_CACHE to move it)")
    typer.echo(f"chosen by: {rule}", err=True)


def _local_folder(name: str) -> bool:
    """Whether ``name`` is a model folder here (its config.json, or a pipeline's model_index.json), as the commands
    read a model named by a path: not a model of the list (a folder of that name in the current folder is not what
    `run --music-model musicgen-small` reads), nor a folder of the model cache itself."""
    from .. import cache, settings

    folder = os.path.expanduser(name)
    if cache.find_by_name(name) is not None or not os.path.isdir(folder):
        return False
    try:
        if Path(folder).resolve().is_relative_to(settings.model_cache_dir().resolve()):
            return False
    except OSError:
        pass
    return any(os.path.isfile(os.path.join(folder, f)) for f in ("config.json", "model_index.json"))


def _pull_stoppable(name: str, offline: bool):
    """``cache.pull`` on a thread of its own, so that Ctrl-C (or SIGTERM) ends the command at once: raised in the
    download's own wait, it waited for huggingface_hub's threads to finish their files (up to the 30 s grace)."""
    import signal
    from concurrent.futures import TimeoutError as NotYet
    from functools import partial

    from .. import cache
    from ..threads import on_thread
    from . import _common

    pulled = on_thread(partial(cache.pull, name, offline=offline), name="models-pull")
    while True:
        try:
            return pulled.result(timeout=0.2)  # its error, if it failed, raised here
        except NotYet:
            continue
        except KeyboardInterrupt:
            _common.end_now(143 if _common._stopped_by == signal.SIGTERM else 130,
                            f"Stopped. {name}: the files finished are kept; `manga2music models pull {name}` fetches "
                            "the rest.")
