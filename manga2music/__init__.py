"""manga2music: turn folders of manga pages into music.

The library API (no typer, no rich)::

    import manga2music
    manifest = manga2music.run("samples/", "output")  # what manifest.json holds
    manga2music.describe(["samples/"], "descriptions", model="builtin")
    manga2music.compose("descriptions/", "tracks", model="builtin",
                        config=manga2music.RunConfig(duration=20, fmt="flac"))
    manga2music.score("samples/calm", "scores")  # a chapter's score, cue sheet and read-along page

Paths may be one path or a list; the output folder is the second argument, else ``config.output``.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "run", "score", "describe", "compose", "RunConfig", "Callbacks"]


def __dir__():  # the lazy names too: a notebook's tab completion and dir() listed none of them
    return sorted({*globals(), *__all__})


def __getattr__(name):  # lazy: importing the package stays cheap
    if name in ("run", "score", "describe", "compose", "RunConfig", "Callbacks"):
        from . import api

        return getattr(api, name)
    if name in ("errors", "reading"):  # the modules the README names (manga2music.errors.InputError): reachable
        # after a plain `import manga2music`, as the README writes them (it was an AttributeError until a call)
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(name)
