"""Errors a user can act on.

Library code raises these; the CLI prints ``message`` (and ``hint``) as one
line and exits 1.  Anything else is a bug and shows a traceback only with
``MANGA2MUSIC_DEBUG=1``.
"""

from __future__ import annotations


class Manga2MusicError(Exception):
    """Base class: ``str(err)`` is one line a user can read; ``hint`` says what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(Manga2MusicError):
    """The paths given cannot be used (missing, no images, unsafe archive)."""

    exit_code = 2


class PageError(Manga2MusicError):
    """One page cannot be read; the section goes on without it."""


class UnknownModelError(Manga2MusicError):
    """A model name that is neither a short name, a Hub id nor a local folder."""

    exit_code = 2


class NeedsKeyError(Manga2MusicError):
    """An API key is required and none was found."""


class ModelUnavailableError(Manga2MusicError):
    """The model exists but cannot be loaded here (no weights offline, no memory, missing package)."""


class BackendError(Manga2MusicError):
    """A backend failed on one section (bad answer from a server, out of memory...)."""
