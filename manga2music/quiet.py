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


#: what transformers calls its table of the weights that did not load as saved (one row a weight)
LOAD_REPORT = "LOAD REPORT"


@contextmanager
def load_report_held() -> Iterator[None]:
    """transformers' "... LOAD REPORT" logged while a model loads on this thread is held: dropped when the load fails
    (a config of another model size printed 96 lines of MISMATCH rows above the one line that says what it means),
    shown as it was when the model loads (a folder missing some weights: the user should see which)."""
    import logging

    thread, held = threading.get_ident(), []

    class Hold(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if record.thread == thread and (LOAD_REPORT in str(record.msg) or DIFFUSERS_MISSING in str(record.msg)):
                held.append(record)
                return False
            return True

    from transformers.utils import logging as transformers_logging

    bars = transformers_logging.is_progress_bar_enabled()  # its "Loading weights: 100%|███|" bar off too: a program
    transformers_logging.disable_progress_bar()  # calling the API got it on its stderr; the command's own display
    logger, hold = logging.getLogger("transformers.modeling_utils"), Hold()  # says the load
    logger.addFilter(hold)  # one filter a load, for its own thread's records: loads on other threads are their own
    parts = logging.getLogger("diffusers.models.modeling_utils")  # a diffusers pipeline's own models' word of it
    parts.addFilter(hold)
    try:
        yield held
    finally:
        logger.removeFilter(hold)
        parts.removeFilter(hold)
        if bars:
            transformers_logging.enable_progress_bar()
    handlers = logging.getLogger("transformers").handlers or logging.getLogger().handlers  # the library's own
    for record in held:  # reached only when the load did not raise
        for handler in handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


#: what diffusers says of a model whose weights lack some of its layers (made random)
DIFFUSERS_MISSING = "were not initialized from the model checkpoint"


def missing_weights(held: list) -> str:
    """What the load reports ``held`` (see :func:`load_report_held`) say is missing from the weights, in words
    ("text_encoder/: 11 weights ... (e.g. layers.2.mlp.up_proj.weight)"); "" where nothing is missing."""
    import re
    from pathlib import Path

    for record in held:
        text = re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage())
        keys = re.findall(r"^\s*(\S+)\s*\|\s*MISSING", text, re.M)
        if not keys and DIFFUSERS_MISSING in text:
            keys = re.findall(r"'([^']+)'", text.split("newly initialized", 1)[-1])
        if not keys:
            continue
        where = re.search(r"(?:from:|checkpoint at) (\S+)", text)
        part = f"{Path(where.group(1)).name}/: " if where else ""
        return f"{part}{len(keys)} weights the model needs are not in its files (e.g. {', '.join(sorted(keys)[:2])})"
    return ""


#: what transformers and diffusers say of a text longer than a text encoder takes (the tokenizer's "Token indices
#: sequence length is longer...", a pipeline's "The following part of your input was truncated...": the cut words,
#: hundreds of them, or a blob of <unk>); the composer's own line says it once ("description cut from N to M tokens")
TRUNCATION_NOTICES = ("Token indices sequence length is longer", "was truncated because")


@contextmanager
def truncation_notices_dropped() -> Iterator[None]:
    """transformers' and diffusers' :data:`TRUNCATION_NOTICES` logged on this thread are not shown during the block."""
    import logging

    thread = threading.get_ident()

    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not (record.thread == thread and any(n in str(record.msg) for n in TRUNCATION_NOTICES))

    drop = Drop()
    handlers = [h for name in ("transformers", "diffusers", "") for h in logging.getLogger(name).handlers]
    for handler in handlers:  # a logger's filter misses its children's records: a handler's sees them all
        handler.addFilter(drop)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(drop)
