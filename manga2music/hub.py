"""The Hugging Face Hub: where it is and whether it answers (one short request).

Used by the doctor, by ``auto`` (only when a model is not cached) and by
``models pull`` (to fail in seconds instead of after huggingface_hub's retries).
Never called offline.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Optional


@dataclass
class HubStatus:
    endpoint: str
    checked: bool = False  # False: offline, or not probed yet
    reachable: Optional[bool] = None
    detail: str = "not checked"
    seconds: float = 0.0


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def probe_hub(endpoint: str | None = None, *, timeout: float = 3.0) -> HubStatus:
    """One ``HEAD /api/models?limit=1`` to the Hub; reachable when it answers below HTTP 500."""
    endpoint = (endpoint or hub_endpoint()).rstrip("/")
    start = time.monotonic()
    req = urllib.request.Request(f"{endpoint}/api/models?limit=1", method="HEAD",
                                 headers={"User-Agent": "manga2music-doctor"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            code, detail = resp.status, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        code, detail = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        text = "timed out" if "timed out" in str(reason).lower() else str(reason)
        return HubStatus(endpoint, True, False, text[:120], round(time.monotonic() - start, 3))
    return HubStatus(endpoint, True, code < 500, detail, round(time.monotonic() - start, 3))
