"""The command line: a thin typer/rich layer over manga2music.api."""


def main() -> None:
    """The console script.  Ctrl-C while the command's modules are still loading (its first half second) stops it
    with the same one line as later, not a traceback."""
    from .streams import messages_even_if_unread, names_the_locale_cannot_show, utf8_file_names

    utf8_file_names()
    messages_even_if_unread()
    names_the_locale_cannot_show()
    try:
        from .app import main as command
    except KeyboardInterrupt:
        import sys

        sys.stderr.write("Interrupted.\n")
        raise SystemExit(130) from None
    command()
