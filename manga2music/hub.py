"""The Hugging Face Hub: where it is and whether it answers (one short request).

Used by the doctor, by ``auto`` (only when a model is not cached) and by
``models pull`` (to fail in seconds instead of after huggingface_hub's retries).
Never called offline.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.parse
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
    """One ``HEAD /api/models?limit=1`` to the Hub; reachable when its answer is the Hub's (:func:`hub_answered`) and
    not a page it was redirected to: a firewall or captive portal that answers for huggingface.co was taken for it,
    and ``auto`` picked models whose download then failed in every section."""
    endpoint = (endpoint or hub_endpoint()).rstrip("/")
    start = time.monotonic()
    req = urllib.request.Request(f"{endpoint}/api/models?limit=1", method="HEAD",
                                 headers={"User-Agent": "manga2music-doctor"})
    landed = None
    try:
        with urllib.request.build_opener().open(req, timeout=timeout) as resp:  # proxies as the environment says now
            code, detail, landed = resp.status, f"HTTP {resp.status}", resp.geturl()
    except urllib.error.HTTPError as exc:
        code, detail = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        text = why_unreachable(getattr(exc, "reason", exc), connect_host(endpoint))
        return HubStatus(endpoint, True, False, text[:120], round(time.monotonic() - start, 3))
    seconds = round(time.monotonic() - start, 3)
    if landed and urllib.parse.urlsplit(landed).path != urllib.parse.urlsplit(req.full_url).path:  # a captive
        # portal's login page, a proxy's block page: redirected elsewhere, then answered 200
        shown = urllib.parse.urlsplit(landed)
        return HubStatus(endpoint, True, False, f"{detail} from {shown.netloc}{shown.path[:60]} after a redirect: not "
                         "the Hub (a captive portal or proxy login?)", seconds)
    answered = hub_answered(code, endpoint)
    if not answered and code < 500:
        detail += ": refused, or not the Hub; a firewall or proxy answering for it?"
    return HubStatus(endpoint, True, answered, detail, seconds)


def hub_answered(code: int, endpoint: str) -> bool:
    """Whether an HTTP ``code`` to the probe is the Hub's (or a mirror's) answer: below 400, or 429 (slow down).
    A 4xx from huggingface.co is someone else answering for it (a firewall's 403, a portal's 404: ``auto`` picked
    models whose download failed in every section); a mirror (``HF_ENDPOINT``) may want a token for its listing
    (401) or have none (404) and still serve the files, so only 403 and 407 (a proxy's login) say it is not there."""
    if code < 400 or code == 429:
        return True
    if code >= 500:
        return False
    official = urllib.parse.urlsplit(endpoint).hostname in ("huggingface.co", "www.huggingface.co")
    return not official and code in (401, 404)


def connect_host(url: str) -> str:
    """The host a request to ``url`` connects to, for saying why it failed: "the proxy HOST" when the environment
    (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY) sends it through one, as urllib and httpx both do."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or url
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        return f"the proxy {urllib.parse.urlsplit(proxy).hostname or proxy}"
    return host


def why_unreachable(reason: object, host: str) -> str:
    """Why a request to ``host`` got no answer, in words: the user reads it on every first run without a network
    ("the Hub is unreachable (...)"), where Python says "[Errno -2] Name or service not known"."""
    import errno
    import socket
    import ssl

    if isinstance(reason, socket.gaierror):
        return f"cannot look up {host}: no network, or no such name"
    if isinstance(reason, TimeoutError) or "timed out" in str(reason).lower():
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return f"{host} refused the connection"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"its TLS certificate was not accepted ({reason.verify_message or reason.reason})"
    if isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"no route to {host} (network unreachable)"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror  # without Python's "[Errno N]"
    return str(reason)
