"""manga2music: turn folders of manga pages into music.

The library API (no typer, no rich)::

    import manga2music
    manifest = manga2music.run(["samples/"], output="output")
    manga2music.describe(["samples/"], model="builtin")
    manga2music.compose(["output/"], model="builtin", duration=20)
"""

__version__ = "0.1.0"

__all__ = ["__version__", "run", "describe", "compose"]


def __getattr__(name):  # lazy: importing the package stays cheap
    if name in ("run", "describe", "compose"):
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
