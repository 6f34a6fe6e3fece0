"""The command line: a thin typer/rich layer over manga2music.api."""
