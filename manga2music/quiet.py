"""Warnings of a library left unshown while our code runs it, in a way safe for threads and for the program that
called us.

``warnings.catch_warnings()`` swaps the process's whole filter list on entry and puts its copy back on exit: two
threads inside it at once can leave a filter behind (a catch-all "ignore" that silences the host program's
warnings for good) or drop one the host added meanwhile.  :func:`warnings_ignored` adds one filter of its own while
any thread is inside it, and removes that filter alone after the last one leaves.  Its message pattern carries a
marker, so it never equals (and so never replaces) a filter of the host's.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from typing import Iterator

_LOCK = threading.Lock()
_inside: dict[tuple, int] = {}  # filter -> threads inside warnings_ignored for it
_added: dict[tuple, tuple] = {}  # filter -> the entry of warnings.filters it added


@contextmanager
def warnings_ignored(*, message: str = "", category: type[Warning] = Warning, module: str = "") -> Iterator[None]:
    """Ignore the warnings ``warnings.filterwarnings`` would match with these arguments, during the block."""
    key = (message, category, module)
    with _LOCK:
        if not _inside.get(key):
            warnings.filterwarnings("ignore", message=message + "(?#manga2music)", category=category, module=module)
            _added[key] = warnings.filters[0]
        _inside[key] = _inside.get(key, 0) + 1
    try:
        yield
    finally:
        with _LOCK:
            _inside[key] -= 1
            if not _inside[key]:
                entry = _added.pop(key)
                if entry in warnings.filters:
                    warnings.filters.remove(entry)
                    getattr(warnings, "_filters_mutated", lambda: None)()  # as the warnings module does on a change
