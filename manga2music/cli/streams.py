"""The command's process before any work: file names read as UTF-8 whatever the locale, and messages whose reader has
gone (``2>&1 | head -1``) dropped instead of ending the run.  Standard library only: it runs before the command's
modules load."""

from __future__ import annotations

import os
import sys


def utf8_file_names() -> None:
    """Start the command again in Python's UTF-8 mode (PEP 540) where the locale reads file names in another
    encoding (``ja_JP.eucJP``, ``en_US.ISO-8859-1``): there a chapter folder named in UTF-8, as every current system
    writes names, came out garbled, could not name its output files ("'euc_jp' codec can't encode"), failed, and the
    summary ended in a traceback.  In UTF-8 mode its files get the very names a UTF-8 locale gives them; a name
    stored in the locale's own encoding is read in it (files.readable) and its files get its UTF-8 name; messages
    are still written in the locale's encoding.  ``PYTHONUTF8`` set (``0`` too) is the user's choice and is kept;
    so is a process without a known interpreter (embedded) and Windows, whose file names are Unicode already."""
    if sys.flags.utf8_mode or os.name != "posix" or "PYTHONUTF8" in os.environ:
        return
    if sys.getfilesystemencoding().replace("-", "").lower() == "utf8":
        return
    if not sys.executable or not os.path.isfile(sys.executable):
        return
    os.environ["PYTHONUTF8"] = "1"  # for this command's own Python processes (Ray workers) as well
    if sys.stdout is not None and sys.stdout.encoding:  # the terminal still reads the locale's encoding
        os.environ.setdefault("PYTHONIOENCODING", f"{sys.stdout.encoding}:backslashreplace")
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


class _MessagesEvenIfUnread:
    """``sys.stderr`` for the command: when the reader of the messages goes away (``run ... 2>&1 | head -1``), the
    messages that follow go nowhere and the run goes on.  The second message met the closed pipe, ended the command
    with exit 1 ("a section failed") and nothing was written; stdout's reader going away was already no error."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()

    def _gone(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())  # what is still buffered goes there too, at exit as well
        finally:
            os.close(devnull)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def messages_even_if_unread() -> None:
    """Install :class:`_MessagesEvenIfUnread` as ``sys.stderr`` (once)."""
    if sys.stderr is not None and not isinstance(sys.stderr, _MessagesEvenIfUnread):
        try:
            sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file (a test's capture): nothing to break
            return
        sys.stderr = _MessagesEvenIfUnread(sys.stderr)


def names_the_locale_cannot_show() -> None:
    """Results on stdout in a locale that cannot encode a name (``PYTHONUTF8=0 LC_ALL=C``, names in Japanese) are
    written with ``\\u7b2c`` escapes, as Python writes its own stderr, instead of ending in a traceback after the
    work was done."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and (sys.stdout.encoding or "").replace("-", "").lower() != "utf8":
        reconfigure(errors="backslashreplace")
