"""Errors a user can act on.

Library code raises these; the CLI prints ``message`` (and ``hint``) as one
line and exits 1.  Anything else is a bug and shows a traceback only with
``MANGA2MUSIC_DEBUG=1``.
"""

from __future__ import annotations


class Manga2MusicError(Exception):
    """Base class: ``str(err)`` is one line a user can read; ``hint`` says what to do."""

    exit_code = 1
    #: True for problems that no other section could escape (a full disk, a rejected key): the run stops,
    #: the manifest of what is done is written, and the command exits with ``exit_code``.  False: the
    #: error belongs to one section, which fails while the others go on.
    stops_run = False
    #: True when a traceback would help (a bug, a library failure); plain user mistakes have none worth showing
    traceback_helps = False
    #: the tokens a chat model's calls took before a section failed, and what they cost (set by the describer; the
    #: failed section's manifest entry says them: they were paid for)
    usage: dict | None = None
    cost_usd: float | None = None

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(Manga2MusicError):
    """The paths given cannot be used (missing, no images, unsafe archive)."""

    exit_code = 2


class PageError(Manga2MusicError):
    """One page cannot be read; the section goes on without it."""


class ArchiveError(PageError):
    """A page cannot be read because its whole archive cannot be unpacked (a password, a RAR that bsdtar cannot
    unpack): its section fails with this one line, not one line a page."""


class UnknownModelError(Manga2MusicError):
    """A model name that is neither a short name, a Hub id nor a local folder."""

    exit_code = 2


class NeedsKeyError(Manga2MusicError):
    """An API key is required and none was found (or the server rejected it): no section can succeed."""

    stops_run = True


class OutputError(Manga2MusicError):
    """The output folder cannot be used: it is a file, read-only, or holds a file of the user's we would replace."""

    exit_code = 2
    stops_run = True


class OutputBusyError(OutputError):
    """Another manga2music run is writing to the same output folder."""


class DiskFullError(Manga2MusicError):
    """The disk filled up mid-run: finished sections are kept, a rerun resumes."""

    stops_run = True


class CacheError(Manga2MusicError):
    """The model cache cannot be changed here: a read-only file system, no permission, an immutable file."""


class ModelUnavailableError(Manga2MusicError):
    """The model exists but cannot be loaded here (no weights offline, no memory, missing package)."""


class BackendError(Manga2MusicError):
    """A backend failed on one section (bad answer from a server, out of memory...)."""


class ServerBusyError(BackendError):
    """A server that failed for now (a 5xx or a rate limit after the client's retries, a timeout): a later try may
    pass, so what was asked is asked again at the rerun (a chapter's pages are not read as neutral for good)."""


class AnswerUnusableError(BackendError):
    """A chat model's answer that could not be used (it repeated the request, wrote no JSON or no description,
    refused, ran out of tokens): another sample may do, so a model that samples with a seed drawn for the section
    draws a new one at the rerun (:func:`manga2music.describing.forget_a_failed_take`)."""


class PagesDoNotFitError(BackendError):
    """One request held more pages than the model takes at once (a local model ran out of memory, a server's image
    limit or context was exceeded): the describer sends them again in smaller requests
    (:mod:`manga2music.describers.chat`); a single page that does not fit fails its section.  ``fits``: as many
    pages as the server said it takes, when it said."""

    def __init__(self, message: str, hint: str | None = None, fits: int | None = None):
        super().__init__(message, hint)
        self.fits = fits


class WordsDoNotFitError(BackendError):
    """A request without pages (the merge of a section's parts' descriptions) longer than the model's context: the
    describer merges them in smaller groups first (:mod:`manga2music.describers.chat`)."""


class WeightsUnusableError(BackendError):
    """A local model's weights cannot make what the model should: they do not fit its config (layers left random,
    which make noise that would be said "ok"), or a weight file is damaged.  Every section would fail the same way,
    or worse: the run stops in one line."""

    stops_run = True


class ServerUnusableError(BackendError):
    """A describer's server can describe no section: unreachable after its retries, no such model, a key not allowed
    to use it, or (with --offline) a redirect to another machine.  The run stops, as for a rejected key, rather than
    failing every section with the same line."""

    stops_run = True
