"""The command line: a thin typer/rich layer over manga2music.api."""


def main() -> None:
    """The console script.  Ctrl-C while the command's modules are still loading (its first half second) stops it
    with the same one line as later, not a traceback."""
    try:
        from .app import main as command
    except KeyboardInterrupt:
        import sys

        sys.stderr.write("Interrupted.\n")
        raise SystemExit(130) from None
    command()
