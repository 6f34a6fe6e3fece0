"""`manga2music ui`: the local web UI (Gradio, an optional extra)."""

from __future__ import annotations

from typing import Annotated

import typer

LOOPBACK = ("127.0.0.1", "localhost")


def ui(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 0.0.0.0 lets other machines in.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 7860,
    share: Annotated[bool, typer.Option("--share", help="Also make a public gradio.live link (your pages then pass through Gradio's servers).")] = False,
) -> None:
    """Open a web page to upload pages, pick models and listen (needs manga2music[ui]).

    Stop it with Ctrl-C or SIGTERM: the uploads and results of the session are removed.
    """
    from importlib.util import find_spec

    from . import _common as c

    if find_spec("gradio") is None:  # as `--ray` without Ray: could not start as given
        raise c.fail("the web UI needs Gradio, which is not installed", 'pip install "manga2music[ui]"', 2)
    if ":" in host:  # IPv6 (::1, ::, [::1]): Gradio writes its own address as http://::1:7860/ and fails on it
        raise c.fail(f"the web UI listens on IPv4 addresses only (not {host})",
                     "use --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (other machines too)", 2)
    from ..webui import launch
    from ..webui.server import port_problem

    problem = port_problem(host, port)  # before saying who can use it (it said so of an address not here)
    if problem:
        words, change = problem
        free = next((p for p in range(port + 1, min(port + 50, 65536)) if port_problem(host, p) is None), None)
        raise c.fail(words, ("choose another --port" + (f" (--port {free} is free)" if free else "")) if change ==
                     "port" else "choose another --host (127.0.0.1: this machine only)", 1 if change == "port" else 2)
    if host not in LOOPBACK:
        c.stderr_console().print(f"[yellow]Listening on {host}: other machines on the network can use this UI.[/]")
    if share:
        c.stderr_console().print("[yellow]--share: a public link; uploads travel through Gradio's share servers.[/]")
    with c.friendly_errors():
        try:
            launch(host=host, port=port, share=share)
        except OSError as exc:
            reason = str(exc).split(". ")[0]
            raise c.fail(f"cannot listen on {host}:{port} ({reason})", "choose another --port") from None
