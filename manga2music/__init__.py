"""manga2music: turn folders of manga pages into music.

The library API (no typer, no rich)::

    import manga2music
    manifest = manga2music.run(["samples/"], output="output")
    manga2music.describe(["samples/"], model="builtin")
    manga2music.compose(["output/"], model="builtin",
                        config=manga2music.RunConfig(duration=20, music_options={"device": "cpu"}))
"""

__version__ = "0.1.0"

__all__ = ["__version__", "run", "score", "describe", "compose", "RunConfig", "Callbacks"]


def __getattr__(name):  # lazy: importing the package stays cheap
    if name in ("run", "score", "describe", "compose", "RunConfig", "Callbacks"):
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
