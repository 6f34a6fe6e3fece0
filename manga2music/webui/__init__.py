"""The local web UI (``manga2music ui``): upload pages, pick models, get a track.

- :mod:`.run`: one Generate click without Gradio (stage the uploads, run, collect the downloads)
- :mod:`.messages`: what the page and the server's terminal say
- :mod:`.models`: the model menus' suggestions and problems, in the UI's words
- :mod:`.thumbnails`: the uploaded pages as the run will read them
- :mod:`.progress_bar`: the sections' progress and their steps as one bar
- :mod:`.server`: the one folder the server owns, and stopping on SIGINT/SIGTERM
- :mod:`.app`: the Gradio page (the only module that imports gradio)
"""

from __future__ import annotations

from .run import UiResult, generate, parse_seed, upload_name

__all__ = ["UiResult", "generate", "parse_seed", "upload_name", "build_app", "launch"]


def build_app(folder=None):
    """The Gradio app, not launched (see :func:`.app.build_app`)."""
    from .app import build_app as _build

    return _build(folder)


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> None:
    """Serve the UI until Ctrl-C or SIGTERM (see :func:`.app.launch`)."""
    from .app import launch as _launch

    _launch(host=host, port=port, share=share)
