"""The one progress convention the library uses: ``callback(done, total, label)``.

Library code calls it; the CLI turns it into a rich bar.  ``None`` means quiet.
"""

from __future__ import annotations

from typing import Callable, Optional

ProgressFn = Callable[[int, int, str], None]


def report(progress: Optional[ProgressFn], done: int, total: int, label: str = "") -> None:
    """Call ``progress`` if there is one; never let a UI error break the work."""
    if progress is None:
        return
    try:
        progress(done, total, label)
    except Exception:  # pragma: no cover - a broken bar must not kill a run
        pass
