"""The OpenAI describer: gpt-4o, gpt-4o-mini, or any model of an OpenAI-compatible server.

With ``options.base_url`` (or ``OPENAI_BASE_URL``) any model name works:
Ollama (``http://localhost:11434/v1``), vLLM, LM Studio, llama.cpp's server.
The key comes from the environment variable named by ``options.api_key_env``
(default ``OPENAI_API_KEY``); custom servers may run without one.  The key is
never written anywhere: error texts are scrubbed before they leave this module.

Stage 1 asks for structured output (``response_format`` ``json_schema``, strict).
A server that rejects it with a 400 is remembered (per base URL and model, for
the whole process) and asked for plain text, which is then parsed as JSON.

Retries and backoff are the SDK's (``options.max_retries``, ``options.timeout``;
it honours ``retry-after`` headers), except a server error whose words say it
can never pass (Ollama's 500s for too many images, images to a text-only model,
or a model too big for the free memory: :func:`_is_refusal`); a 200 whose body is
a passing error (a gateway's busy or crashed upstream: :func:`_passes`) is asked
again the same way, within ``max_retries``.  What still fails
becomes a ``BackendError`` for that one section; more pages than the server
takes at once, a ``PagesDoNotFitError`` (sent again in parts); a server no
section can pass, ``ServerUnusableError`` (the run stops).
"""

from __future__ import annotations

import copy
import itertools
import os
import re
import time
from typing import Callable, Literal, Optional

from pydantic import Field

from .. import settings
from ..errors import (BackendError, InputError, NeedsKeyError, PagesDoNotFitError, ServerBusyError,
                      ServerUnusableError, WordsDoNotFitError)
from ..options import flag, switch
from .base import PageImage
from .chat import ChatDescriber, Completion
from .images import data_url

OFFICIAL_BASE_URL = "https://api.openai.com/v1"
#: sent as the key to servers that need none (the SDK insists on some value)
PLACEHOLDER_KEY = "not-needed"

#: USD per 1M tokens (input, output), standard tier, checked 2026-11 against the list
#: prices OpenAI publishes at https://platform.openai.com/docs/pricing.  Estimates only.
PRICES_CHECKED = "2026-11"
PRICES_USD_PER_1M: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
}

#: a server's words for a model that takes no images (llama.cpp without --mmproj, vLLM and Ollama text models)
_NO_IMAGES = re.compile(r"image input is not supported|mmproj|at most 0 images?\b|(?:does not|doesn't|cannot) "
                        r"(?:support|accept|take) "
                        r"(?:image|vision|multimodal)|(?:images?|vision|multimodal)(?: input)? (?:is|are) not supported"
                        r"|not a multimodal model|missing data required for image input", re.I)

#: a 400 saying a request held more images than the server takes at once (vLLM past --limit-mm-per-prompt:
#: "At most 1 image(s) may be provided in one prompt."), the number it takes in group 1; Ollama's 500 for
#: llama3.2-vision: "vision model only supports a single image per message" (group 2: one)
_IMAGE_LIMIT = re.compile(r"at most (\d+) images?\b|too many images|only supports (a single|one) image", re.I)
#: a 400 saying the request is longer than the model's context (OpenAI, vLLM, llama-server, LM Studio; vLLM past
#: --max-model-len: "The decoder prompt (length 9214) is longer than the maximum model length of 8192.")
_CONTEXT_EXCEEDED = re.compile(r"maximum context length|exceeds the available context|context[ _]length[ _]exceeded"
                               r"|exceeds? the context (?:window|size|length)|longer than the maximum model length",
                               re.I)

#: a 500 saying the server cannot load the model at all (Ollama: "model requires more system memory (8.1 GiB) than is
#: available (7.3 GiB)"): no request can pass until the user frees memory or picks another model
_CANNOT_LOAD = re.compile(r"model requires more system memory", re.I)
#: words of an error that says structured output is not supported (a 400 or 422, llama-cpp-python's 500: asked
#: again, it is refused again); the request without response_format is what follows
_STRUCTURED_OUTPUT_REFUSED = re.compile(r"response_format|json_schema|structured output|response format", re.I)

#: servers (base URL, model) that rejected response_format json_schema in this process
_NO_STRUCTURED_OUTPUT: set[tuple[str, str]] = set()
#: servers (base URL, model) that answered a request with response_format json_schema in this process: a later 400
#: in their own words ("Invalid request: upstream busy") is not about the schema
_STRUCTURED_OUTPUT_ANSWERED: set[tuple[str, str]] = set()
#: servers that refused a request with the schema once, in words that do not name it, and answered it without: the
#: schema is taken for the cause at the second time only
_SCHEMA_SUSPECTED: set[tuple[str, str]] = set()

_DETAILS = ("low", "high", "auto")


def price_for(model: str) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for a known model or its dated snapshot, else None."""
    for name, prices in PRICES_USD_PER_1M.items():  # "gpt-4o-mini" is checked before "gpt-4o"
        if model == name or re.fullmatch(rf"{re.escape(name)}-\d{{4}}-\d{{2}}-\d{{2}}", model):
            return prices
    return None


def strict_json_schema(schema: dict) -> dict:
    """A copy that OpenAI's strict mode accepts: every object closed and every property required.

    Strict mode also has no ``default``; ``title`` is dropped as noise.
    """
    schema = copy.deepcopy(schema)

    def fix(node):
        if isinstance(node, dict):
            node.pop("default", None)
            node.pop("title", None)
            if node.get("type") == "object" or "properties" in node:
                props = node.get("properties", {})
                node["additionalProperties"] = False
                node["required"] = list(props)
            for value in node.values():
                fix(value)
        elif isinstance(node, list):
            for item in node:
                fix(item)

    fix(schema)
    return schema


NO_STRUCTURED_OUTPUT_WARNING = "the server does not support structured output; parsed its JSON from plain text"


#: requests in a row that time out (each after its retries), with no answer between, that stop the run: one alone
#: may be a slow model on many pages (that section fails); two say the server is stuck
STUCK_AFTER_TIMEOUTS = 2

def _redirected(err) -> str:
    """", redirected to URL" where the answer came after a redirect (shown without its user name or query)."""
    response = getattr(err, "response", None)
    history = getattr(response, "history", None) or []
    url = getattr(getattr(response, "request", None), "url", None)
    if not history or url is None:
        return ""
    from ..settings import shown_url

    return f", redirected to {shown_url(str(url).split('?', 1)[0])}"


def base_url_hint() -> str:
    """What to check when the address answers, but not as the API."""
    return f"check {flag('base_url')}: a server's API address usually ends in /v1"


def network_forbidden(base_url: str | None, offline: bool = False) -> bool:
    """Whether a server at ``base_url`` may not be asked: offline (``offline``, ``--offline``,
    MANGA2MUSIC_OFFLINE=1) and not on this machine."""
    return (offline or settings.no_network()) and not _on_this_machine(base_url)


def _on_this_machine(base_url: str | None) -> bool:
    """True for a server on loopback (Ollama, llama.cpp on this machine): talking to it is not the network."""
    import ipaddress
    from urllib.parse import urlparse

    if not base_url:
        return False
    host = (urlparse(base_url).hostname or "").strip("[]")
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenAIDescriber(ChatDescriber):
    """Describes pages with the OpenAI chat completions API (or a compatible server)."""

    backend = "openai"
    run_wide_warnings = (NO_STRUCTURED_OUTPUT_WARNING,)

    class Options(ChatDescriber.Options):
        detail: Literal["low", "high", "auto"] = "auto"  # the image detail the API is asked for
        base_url: Optional[str] = None  # an OpenAI-compatible server; None: OPENAI_BASE_URL, else api.openai.com
        api_key_env: str = "OPENAI_API_KEY"  # the variable that holds the key
        timeout: float = Field(120.0, gt=0, le=3600)  # seconds per request
        max_retries: int = Field(3, ge=0, le=20)  # on rate limits, 5xx and timeouts

    def __init__(self, spec, options=None):
        super().__init__(spec, options)
        self.base_url = (self.options.base_url or os.environ.get("OPENAI_BASE_URL") or "").strip() or None
        self._client = None
        self._retries_seen = 0  # the answers to this call that the SDK asks again after (see _heard)
        self._asked_to_wait: float | None = None  # a Retry-After longer than the SDK waits (see _heard)
        self._chat_answers = 0  # answers of this run that were chat completions (see _not_an_answer)
        self._answered = False  # whether the server has answered any request of this run (see _backend_error)
        self._timeouts_since_answer = 0  # calls timed out (all their tries) since the server last answered

    # --- setup --------------------------------------------------------------------------

    @property
    def official(self) -> bool:
        """True when talking to api.openai.com (a key is then required)."""
        return self.base_url is None or self.base_url.rstrip("/") == OFFICIAL_BASE_URL

    @property
    def _kind(self) -> str:
        """Whose request failed, for an error line: the OpenAI API's, or another server's."""
        return "OpenAI" if self.official else "Server"

    @property
    def shown_url(self) -> str:
        """The server's address as messages and records give it (never a password in it)."""
        return settings.shown_url(self.base_url or OFFICIAL_BASE_URL)

    @property
    def page_side(self) -> int:  # type: ignore[override]
        """What is sent: 2048 px on the long side (high/auto detail), 512 (low)."""
        return 512 if self.detail == "low" else 2048

    @property
    def detail(self) -> str:
        detail = (self.options.detail or "auto").lower()
        return detail if detail in _DETAILS else "auto"

    def _api_key(self) -> str | None:
        value = os.environ.get(self.options.api_key_env or "OPENAI_API_KEY", "").strip()
        return value or None

    def preflight(self) -> None:
        """A missing key for the official API fails here, before any page is read; so does --offline with a
        server that is not on this machine, an address that is not http(s), and a key variable named but unset."""
        from urllib.parse import urlparse

        if self.base_url and (urlparse(self.base_url).scheme not in ("http", "https")
                              or not urlparse(self.base_url).hostname):
            raise InputError(f"{flag('base_url', self.shown_url)}: not an http:// or https:// address",
                             hint=f"for example {flag('base_url', 'http://127.0.0.1:11434/v1')}")
        if self.base_url and (urlparse(self.base_url).query or urlparse(self.base_url).fragment):
            # the client puts its path after the whole string: "/v1/?api-key=Xchat/completions", a 404 that said
            # "check the model name", and a key in the query reached the manifest when the server echoed the path
            raise InputError(f"{flag('base_url', self.shown_url.split('?', 1)[0].split('#', 1)[0])}: an address with a "
                             "query (?...) or fragment (#...) cannot be used; the client adds the path after it",
                             hint="give the server's address alone (http://HOST:PORT/v1); a key goes in "
                                  f"OPENAI_API_KEY (or {flag('api_key_env', 'NAME')})")
        env = self.options.api_key_env or "OPENAI_API_KEY"
        if network_forbidden(self.base_url, self.options.offline):  # first: no key makes such a run work (the
            # key's line came first, and once the key was set, this one)
            raise InputError(
                f"{self.model_name} sends the pages to {self.shown_url}, and {switch('offline', True)} forbids "
                "the network",
                hint=f"drop {switch('offline', True)}, or use a server on this machine "
                     f"({flag('base_url', 'http://127.0.0.1:PORT/v1')}) or the "
                     "builtin describer (the model `builtin`)",  # `describe` names it --model, `run` --vision-model
            )
        _check_key_characters(self._api_key(), env)
        if env != "OPENAI_API_KEY" and self._api_key() is None:  # a name given on purpose: a typo would send no key
            raise NeedsKeyError(f"{flag('api_key_env', env)}: ${env} is not set",
                                hint=f"export {env}=..., or check the variable's name")
        if self.official and self._api_key() is None:
            env = self.options.api_key_env or "OPENAI_API_KEY"
            raise NeedsKeyError(
                f"{self.model_name} needs an OpenAI API key, and ${env} is not set",
                hint=f"export {env}=sk-... (or pass {flag('api_key_env', 'NAME')} to read the key from another "
                     "variable)",
            )

    def _get_client(self):
        if self._client is None:
            self.preflight()
            from openai import DefaultHttpxClient, OpenAI

            # a server on this machine is reached directly: never through HTTP(S)_PROXY (with --offline that sent
            # the pages to the proxy; without it, a proxy cannot reach this machine's loopback anyway)
            here = _on_this_machine(self.base_url)
            http = DefaultHttpxClient(trust_env=not here, **_certificates_of_the_environment(here), event_hooks={
                "request": [self._staying_here, _started], "response": [self._within_timeout, self._heard]})
            self._client = OpenAI(
                api_key=self._api_key() or PLACEHOLDER_KEY,
                base_url=self.base_url or OFFICIAL_BASE_URL,
                timeout=float(self.options.timeout),
                max_retries=max(0, int(self.options.max_retries)),
                http_client=http,
            )
        return self._client

    def _staying_here(self, request) -> None:
        """Every HTTP request, before it is sent, redirects included: with --offline, one to another machine (a
        server on 127.0.0.1 answering 307 elsewhere: the SDK follows it, and a 307 sends the pages again) stops
        the run before it leaves."""
        if not (self.options.offline or settings.no_network()):
            return
        url = str(request.url)
        if not _on_this_machine(url):
            raise ServerUnusableError(
                f"{self.shown_url} redirected the request to {settings.shown_url(url)}, another machine, and "
                f"{switch('offline', True)} forbids the network",
                hint=f"drop {switch('offline', True)}, or fix the server's redirect")

    def _heard(self, response) -> None:
        """Every HTTP answer, before the SDK reads it: one it will ask again after (a rate limit, a server error)
        is said while it waits, else the progress stood still for up to a minute with no word why."""
        status = response.status_code
        if response.request.extensions.get(_STARTED) is None:  # no whole answer is waited for (_within_timeout)
            self._heard_whole()
        if status not in (408, 409, 429) and status < 500:
            return
        if status >= 500 and _is_refusal(response) or status == 429 and _no_quota(response) or status == 501:
            response.headers["x-should-retry"] = "false"  # the SDK's own header: asked again, it is refused again
            return  # (501: the address takes no such request, a plain web server's answer to a POST)
        wait = _retry_after(response.headers)
        if wait is not None and wait > _longest_retry_after() and _sdk_refuses_long_waits():  # the SDK does not ask
            # again: said with the error
            self._asked_to_wait = wait
            return
        self._retries_seen += 1
        allowed = max(0, int(self.options.max_retries))
        if self._retries_seen > allowed:  # the last one: the section fails with the server's words
            return
        why = "rate-limited (429)" if status == 429 else f"server error {status}"
        self.waiting(f"{why}: retry {self._retries_seen} of {allowed}{_retry_delay(response.headers)}")

    def _within_timeout(self, response) -> None:
        """Every HTTP answer, before its body is read: the whole answer must come within ``options.timeout`` of the
        request (the SDK's timeout bounds each read, so a server that sends a byte now and then, or a proxy keeping
        the connection alive, never timed out); past it the read is a timeout, which the SDK retries."""
        started = response.request.extensions.get(_STARTED)
        if started is not None:
            response.stream = _deadline_stream(response.stream, started + float(self.options.timeout), response.request,
                                               self._heard_whole)

    def _heard_whole(self) -> None:
        """A whole answer came (its body too): the server answers (see _backend_error).  Its headers alone were
        counted so, and a server that sent them and then a space now and then never stopped the run."""
        self._answered = True
        self._timeouts_since_answer = 0

    def _complete_once(self, kwargs: dict):
        self._retries_seen = 0
        self._asked_to_wait = None
        return self._get_client().chat.completions.create(**kwargs)

    def settings_key(self) -> dict:
        key = super().settings_key()
        # "http://host/v1/" is "http://host/v1"; a --seed is recorded beside the settings (describing.describer_seed)
        key.update(base_url=settings.shown_url(_server_url(self.base_url)), detail=self.detail)
        return key

    def kept_settings(self) -> dict:
        """Beside a --max-new-tokens given, the variable the key was read from where it is not OPENAI_API_KEY (its
        name, never its value): a rerun keeping the server kept from the records sent $OPENAI_API_KEY to it, the key
        --api-key-env LOCALKEY had kept out of its reach."""
        kept = super().kept_settings()
        if (self.options.api_key_env or "OPENAI_API_KEY") != "OPENAI_API_KEY":
            kept["api_key_env"] = self.options.api_key_env
        return kept

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- one call ----------------------------------------------------------------------

    @property
    def _server_key(self) -> tuple[str, str]:
        return ((self.base_url or OFFICIAL_BASE_URL).rstrip("/"), self.model_id)

    def _messages(self, prompt: str, images: list[PageImage]) -> list[dict]:
        if not images:  # plain string content: the widest-supported shape for text-only turns
            return [{"role": "user", "content": prompt}]
        parts: list[dict] = [
            {"type": "image_url", "image_url": {"url": data_url(page, self.detail), "detail": self.detail}}
            for page in images
        ]
        parts.append({"type": "text", "text": prompt})
        return [{"role": "user", "content": parts}]

    def _complete(self, prompt, images, *, json_schema, max_tokens) -> Completion:
        import openai

        self._get_client()  # a missing key or a bad address fails before any page is encoded
        kwargs: dict = {"model": self.model_id, "messages": self._messages(prompt, images)}
        # the official API prefers max_completion_tokens (required by reasoning models);
        # compatible servers know max_tokens
        kwargs["max_completion_tokens" if self.official else "max_tokens"] = int(max_tokens)
        if self.options.seed is not None:
            kwargs["seed"] = int(self.options.seed)
        if json_schema is not None and self._server_key not in _NO_STRUCTURED_OUTPUT:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "section_analysis", "schema": strict_json_schema(json_schema), "strict": True},
            }
        warnings = []
        if json_schema is not None and self._server_key in _NO_STRUCTURED_OUTPUT:
            warnings.append(NO_STRUCTURED_OUTPUT_WARNING)
        try:
            try:
                response = self._complete_once(kwargs)
            except (openai.BadRequestError, openai.UnprocessableEntityError, openai.InternalServerError) as err:
                # a 500 too: llama-cpp-python and ik_llama.cpp refuse a json_schema that way
                if "response_format" not in kwargs:
                    raise
                plain = {k: v for k, v in kwargs.items() if k != "response_format"}
                if not _mentions_structured_output(err):
                    said = _error_message(err)
                    if isinstance(err, openai.InternalServerError) or re.search(r"image|picture", said, re.I) \
                            or _NO_IMAGES.search(said) or _IMAGE_LIMIT.search(said) or _CONTEXT_EXCEEDED.search(said):
                        raise  # about the pages or their size, not the schema
                    answered = self._server_key in _STRUCTURED_OUTPUT_ANSWERED  # the schema worked here before: the
                    # same request once more (one such 400 turned structured output off for the whole process)
                    try:  # a 400 or 422 in the server's own words ("Invalid request"): without the schema once
                        response = self._complete_once(kwargs if answered else plain)
                    except openai.APIError:
                        err.m2m_without_schema_too = True  # (no --single-stage hint: it sends no schema either)
                        raise err from None  # not the schema, then: the first error is the one to say
                    if not answered and self._server_key not in _SCHEMA_SUSPECTED:  # the first such 400: this
                        # request without the schema, the next with it again (one passing 400, "upstream busy",
                        # turned structured output off for the run, with a false warning in every record)
                        _SCHEMA_SUSPECTED.add(self._server_key)
                        del kwargs["response_format"]
                        answered = True
                else:
                    answered = False
                    response = self._complete_once(plain)
                if not answered:
                    _NO_STRUCTURED_OUTPUT.add(self._server_key)
                    warnings.append(NO_STRUCTURED_OUTPUT_WARNING)
                    del kwargs["response_format"]
            if "response_format" in kwargs:
                _STRUCTURED_OUTPUT_ANSWERED.add(self._server_key)
            for attempt in itertools.count(1):
                try:
                    try:
                        completion = self._to_completion(response)
                    except _EmptyAnswer:  # nothing, though not cut off: a local server's glitch; the request again
                        completion = self._to_completion(self._complete_once(kwargs))
                    break
                except _PassingServerError as err:  # a 200 whose body is a busy or crashed upstream's error: asked
                    # again as a 429 or 5xx in the status line is (the SDK's backoff, within --max-retries)
                    allowed = max(0, int(self.options.max_retries))
                    if attempt > allowed:
                        raise BackendError(err.message + _after(allowed), hint=err.hint) from None
                    delay = min(8.0, 0.5 * 2 ** (attempt - 1))
                    self.waiting(f"{err.said}: retry {attempt} of {allowed} in {_seconds_in_words(delay)}")
                    time.sleep(delay)
                    response = self._complete_once(kwargs)
        except openai.APIError as err:
            # 400 (vLLM, llama-server), 500 (Ollama), 413 (a proxy)
            status = err.status_code if isinstance(err, openai.APIStatusError) else None
            said = _error_message(err)
            if images and status in (400, 500) and _NO_IMAGES.search(said):
                raise ServerUnusableError(
                    f"{self.model_name} at {self.shown_url} does not take images: {self._scrub(said)}",
                    hint="use a vision model (for example llava or qwen2.5vl; `ollama pull llava`), or start "
                         "llama-server with the model's --mmproj file") from None
            if status == 500 and _CANNOT_LOAD.search(said):
                raise ServerUnusableError(
                    f"{self.shown_url} cannot load {self.model_name}: {self._scrub(said)}",
                    hint="a smaller (or more quantised) model, or free memory: `ollama ps` lists the models loaded, "
                         "`ollama stop NAME` unloads one") from None
            if len(images) > 1 and status in (400, 413, 500):
                limit = _IMAGE_LIMIT.search(said)
                # 413: a proxy's limit on the body's size (nginx's default is 1 MB), which fewer pages keep under
                if limit or _CONTEXT_EXCEEDED.search(said) or status == 413:
                    fits = int(limit.group(1)) if limit and limit.group(1) else 1 if limit and limit.group(2) else None
                    raise PagesDoNotFitError(
                        f"{self.model_name} at {self.shown_url} did not take {len(images)} pages in one request "
                        f"({self._scrub(said).rstrip('.')})", fits=fits, hint=f"a smaller {flag('chunk_size')}") from None
            error = self._backend_error(err)
            if status in (400, 413, 500) and _CONTEXT_EXCEEDED.search(said):  # one page, or the words, too long
                error.hint = (f"the page does not fit in the model's context: {flag('detail', 'low')} sends it "
                              "smaller, or give "
                              if images else "the request does not fit in the model's context: give ") + \
                    "the server a longer context (vLLM --max-model-len, llama-server -c, Ollama num_ctx)"
                if not images and isinstance(error, BackendError):  # a merge of descriptions: in smaller groups
                    raise WordsDoNotFitError(error.message, hint=error.hint) from None
            if isinstance(err, openai.BadRequestError) and "response_format" in kwargs and error.hint is None \
                    and not getattr(err, "m2m_without_schema_too", False) and _mentions_structured_output(err):
                error.hint = ("a server that does not take structured output (response_format) works with "
                              + switch("single_stage", True))
            raise error from None
        except ValueError:  # a 200 whose body is not JSON though it says so (empty, a web page)
            raise self._not_an_answer(" (not JSON)") from None
        completion.warnings.extend(warnings)
        return completion

    def _not_an_answer(self, detail: str) -> BackendError:
        """The address answered, but not as the API does; ``detail`` follows the line (" (not JSON)", ": '<html>...'").
        Before any chat answer of this run it is the wrong address (a web page, another service), which no section
        gets past: the run stops (every section was sent to it, and failed the same way)."""
        line = f"{self.shown_url} sent back something that is not an OpenAI-compatible answer{detail}"
        if not self._chat_answers:
            return ServerUnusableError(line, hint=base_url_hint())
        return BackendError(line, hint=base_url_hint())

    def _to_completion(self, response) -> Completion:
        if isinstance(response, str):  # not JSON: a web page or another service at that address
            if re.match(r"\s*(data|event):", response):  # server-sent events: the address is right, the answer
                # was streamed though none was asked for ("check --base-url" sent the user to a right address)
                raise ServerUnusableError(f"{self.shown_url} answered as a stream (server-sent events), though the "
                                          "request asked for one whole answer",
                                          hint="turn off forced streaming in the server or proxy in front of it")
            raise self._not_an_answer(f": {self._scrub(' '.join(response.split()))[:120]!r}")
        if not getattr(response, "choices", None):
            error = getattr(response, "error", None)  # a 200 whose body is the server's error
            said = error.get("message") if isinstance(error, dict) else error
            said = self._scrub(' '.join(str(said).split()))[:200] if said else ""
            line = f"{self.model_name} returned no answer" + (f": {said}" if said else " (no choices in the response)")
            if error and _passes(error):
                raise _PassingServerError(line, said=f"the server said {said!r}" if said else "the server's error")
            raise BackendError(line)
        choices = response.choices
        choice = choices[0] if isinstance(choices, list) else None
        message = getattr(choice, "message", None)
        if message is None or not hasattr(message, "content"):  # a /completions answer ("text"), or no list at all
            raise self._not_an_answer(" (its answer holds no chat message)")
        self._chat_answers += 1
        served = getattr(response, "model", None)  # recorded (cache.made_by): the snapshot or model that answered
        if isinstance(served, str) and served.strip():
            self.served_by(" ".join(served.split())[:200])
        usage = getattr(response, "usage", None)
        refusal = getattr(message, "refusal", None)
        text = _content_text(message.content)
        reason = response.choices[0].finish_reason
        if not text.strip() and not refusal and reason != "length":  # an empty answer cut off at the cap (a
            # thinking model's reasoning apart, in reasoning_content, took every token) is a cut-off answer: asked
            # again with twice the room, as one with its <think> inline is (it failed the section at once)
            if reason == "content_filter":  # asked again, it is blocked again
                raise BackendError(f"the server's content filter blocked {self.model_name}'s answer "
                                   "(finish_reason=content_filter)",
                                   hint="another model, or a server without that filter, may describe these pages")
            raise _EmptyAnswer(f"{self.model_name} returned an empty answer (finish_reason={reason})")
        prompt_tokens, completion_tokens = (getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens",
                                                                                           None))
        return Completion(  # a server that does not say what the call used: unknown, not free
            text=text,
            prompt_tokens=int(prompt_tokens) if isinstance(prompt_tokens, (int, float)) else None,
            completion_tokens=int(completion_tokens) if isinstance(completion_tokens, (int, float)) else None,
            refusal=refusal, finish_reason=getattr(response.choices[0], "finish_reason", None),
        )

    # --- errors and money ------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """Remove the key (and anything key-shaped), a password in the server's address, and control characters (a
        server's error with terminal escapes in it recoloured or moved the terminal's text) from text that may be
        shown or saved."""
        key = self._api_key()
        if key:
            text = text.replace(key, "***")
        if self.base_url and self.shown_url != self.base_url:
            text = text.replace(self.base_url, self.shown_url)
        text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", "", re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]", "", text))
        return re.sub(r"\b(sk-[A-Za-z0-9_*\-]{3})[A-Za-z0-9_*\-]{6,}", r"\1***", text)

    def _backend_error(self, err) -> Exception:
        import openai

        retries = max(0, int(self.options.max_retries))
        where = self.shown_url
        if isinstance(err, openai.APITimeoutError):
            timed_out = f"{self._kind} request timed out after {self.options.timeout:g} s ({retries} retries) at {where}"
            if not self._answered:  # it takes requests and answers none: every section would wait as long (with
                # the defaults, 8 minutes each), so the run stops
                return ServerUnusableError(
                    f"{timed_out}, which has answered no request of this run",
                    hint=f"the server may be stuck or still loading the model: see its log; raise {flag('timeout')} "
                         f"if it is only slow, or send fewer pages per request with {flag('chunk_size')}")
            self._timeouts_since_answer += 1
            if self._timeouts_since_answer >= STUCK_AFTER_TIMEOUTS:  # it answered, then went quiet: a stuck server
                # cost every later section as long (a 100-chapter library: hours of waiting for nothing)
                return ServerUnusableError(
                    f"{timed_out}, and it has answered nothing since {self._timeouts_since_answer - 1} request"
                    f"{'s' if self._timeouts_since_answer > 2 else ''} before this one timed out too",
                    hint=f"the server may be stuck: see its log, or restart it; raise {flag('timeout')} if it is "
                         "only slow")
            return ServerBusyError(timed_out, hint=f"raise {flag('timeout')}, or send fewer pages per request with "
                                                f"{flag('chunk_size')}")
        if isinstance(err, openai.APIConnectionError) and _dropped(err):  # it was reached, and then went away
            return ServerUnusableError(
                f"{where} closed the connection before its answer was complete{_after(retries)}: "
                f"{self._scrub(str(err.__cause__))}",
                hint="the server may have crashed or run out of memory: see the server's log")
        if isinstance(err, openai.APIConnectionError):  # no other section would get through: the run stops
            why = _why_no_connection(err)
            plain = "WRONG_VERSION_NUMBER" in why and (self.base_url or "").lower().startswith("https://")
            return ServerUnusableError(
                f"cannot reach {where}{_after(retries)}: {self._scrub(why)}",
                hint=f"the server answers plain HTTP: give its address as http://... ({flag('base_url')})" if plain
                else f"is the server running? check {flag('base_url')}" if not self.official else "check your network",
            )
        status = getattr(err, "status_code", None)
        message = self._scrub(_error_message(err))
        if isinstance(err, openai.AuthenticationError):
            env = self.options.api_key_env or "OPENAI_API_KEY"
            if self._api_key() is None:  # the SDK sent its placeholder: the server wants a key of its own
                return NeedsKeyError(f"{where} needs an API key (401), and ${env} is not set",
                                     hint=f"export {env}=THE_SERVER'S_KEY, or pass {flag('api_key_env', 'NAME')}")
            return NeedsKeyError(
                f"{where} rejected the API key from ${env} (401): {message}",
                hint=f"check {env}, or pass {flag('api_key_env', 'NAME')} to use another variable",
            )
        body = getattr(err, "body", None)
        if status == 429 and isinstance(body, dict) and "insufficient_quota" in (body.get("code"), body.get("type")):
            return NeedsKeyError(f"{where}: the account behind the key has no quota left (429): {message}",
                                 hint="check your plan and billing details; no other section can succeed")
        said = message if status and message.startswith(str(status)) else f"{status or ''} {message}"
        failed = f"{self._kind} request failed: {said}".replace("  ", " ")
        if status == 404 and not _names_a_model(message, self.model_id):
            # no such address on that server: a plain-text 404 (Ollama), or a JSON one that names no model (vLLM,
            # FastAPI, llama.cpp and LM Studio answer an unknown route so: {"detail": "Not Found"})
            return ServerUnusableError(failed, hint=base_url_hint())
        if status in (405, 501):  # no chat completions here (a plain web server: 501; a POST a redirect made a GET,
            # http to https: 405): every section failed alike, after the retries, without a hint
            return ServerUnusableError(f"{failed} (the address takes no chat requests{_redirected(err)})",
                                       hint=base_url_hint())
        if status == 404:  # no such model; 403: the key may not use it (either way, for every section)
            return ServerUnusableError(failed, hint="check the model name (for Ollama: ollama pull MODEL)"
                                       if not self.official else "check the model name")
        if status == 403:
            return ServerUnusableError(failed, hint="check that the key may use this model")
        if status == 413:  # a proxy's or server's limit on one request: this section's pages, not every section's
            return BackendError(failed, hint=f"send fewer pages per request ({flag('chunk_size', 2)}) or smaller "
                                             f"ones ({flag('detail', 'low')})")
        if status in (408, 409, 429) or (status or 0) >= 500:  # the retries made (none, when the server refused
            # for good or asked to wait longer than the SDK waits), not those allowed
            made = min(retries, max(0, self._retries_seen - 1))
            wait = self._asked_to_wait
            line = f"{self._kind} request failed{_after(made)}: {said}".replace("  ", " ")
            if wait:  # longer than the client waits: every later section would ask again at once, against the
                # server's word, and fail the same way: the run stops
                return ServerUnusableError(f"{line} (the server asks to wait {_seconds_in_words(wait)} before asking "
                                           "again)", hint="run again later: finished sections are kept")
            return ServerBusyError(line)
        return BackendError(failed)

    def _estimate_cost(self, usage: dict[str, int]) -> float | None:
        prices = price_for(self.model_id)
        if prices is None:
            return None
        cost = usage.get("prompt_tokens", 0) * prices[0] + usage.get("completion_tokens", 0) * prices[1]
        return round(cost / 1_000_000, 6)


def _check_key_characters(key: str | None, env: str) -> None:
    """A key goes in a request's Authorization header, which carries printable ASCII only: a key pasted with a
    zero-width space, smart quotes or a line break inside failed deep in the HTTP client (as "not JSON" from the
    server, or a traceback in ``doctor``).  Said here, naming the character but never showing the key."""
    import unicodedata

    for position, char in enumerate(key or "", start=1):
        if not "!" <= char <= "~":
            name = unicodedata.name(char, "a control character" if unicodedata.category(char) == "Cc" else "")
            raise NeedsKeyError(f"${env} holds a character no request can carry: U+{ord(char):04X}"
                                + (f" ({name})" if name else "") + f", character {position} of the key",
                                hint=f"copy the key again (letters, digits, - and _ only, no quotes) and export "
                                     f"{env}=...")


def check_server(spec, base_url: str | None, *, offline: bool, timeout: float = 10.0) -> tuple[bool, str, list[str]]:
    """``doctor``'s check of a server model: (can it run, why, warnings).  The address, the key and --offline are
    checked as ``run`` checks them, then the server is asked for its models (``GET /models``: no page is sent), so a
    server that is down, or refuses the key, is said before a run finds it out."""
    import openai

    describer = OpenAIDescriber(spec, {"base_url": base_url, "offline": offline, "timeout": timeout, "max_retries": 0})
    describer.preflight()  # an address that is not http(s), no key, --offline: Manga2MusicError, as in run
    where, model = describer.shown_url, describer.model_id
    try:
        listed = _model_ids(describer._get_client().models.list().data)
    except (ValueError, TypeError, AttributeError):  # 200, but a web page (a web UI's address) or JSON of another
        # shape: the SDK's parse of it fails, or gives no list of models
        error = describer._not_an_answer(" to GET /models")
        return False, f"{error.message} ({error.hint})", []
    except openai.APIStatusError as err:
        error = describer._backend_error(err)
        if isinstance(error, NeedsKeyError):
            return False, error.message, []
        if err.status_code == 404:  # no model list there: is there a chat route? (an address without /v1 said "ok",
            # and run failed at its first page with "404 page not found")
            missing = _no_chat_route(describer)
            if missing is not None:
                return False, missing.message + (f" ({missing.hint})" if missing.hint else ""), []
        return True, f"{spec.name} via {where} (it answers; sends the pages there)", [
            f"{where} does not list its models ({err.status_code}): whether it serves {model} is known at the first "
            "page"]
    except openai.APITimeoutError:  # run's words named its --timeout and --chunk-size, which doctor has not
        return False, (f"{where} did not answer within {timeout:g} s when asked for its models (no page was sent); "
                       "a server still loading its model can be that slow: try again in a moment"), []
    except openai.APIError as err:
        error = describer._backend_error(err)
        return False, error.message + (f" ({error.hint})" if error.hint else ""), []
    finally:
        describer.close()
    if model in listed or ":" not in model and f"{model}:latest" in listed:  # Ollama: llava is llava:latest
        return True, f"{spec.name} via {where}: the server serves {model} (sends the pages there)", []
    shown = ", ".join(listed[:8]) + (f" and {len(listed) - 8} more" if len(listed) > 8 else "")
    return True, f"{spec.name} via {where} (it answers; sends the pages there)", [
        f"{where} does not list {model} (it lists: {shown or 'nothing'}); a server that answers to any name still "
        "works"]


def _no_chat_route(describer: OpenAIDescriber):
    """The error ``run`` would meet at its first page where the server has no chat completions route (a 404 that
    names no model), asked with a request no model answers (no messages: refused before any is run, so free);
    None where the route is there."""
    import openai

    try:
        describer._get_client().chat.completions.create(model=describer.model_id, messages=[], max_tokens=1)
    except openai.NotFoundError as err:
        if not _names_a_model(_error_message(err), describer.model_id):
            return describer._backend_error(err)
    except openai.APIError:
        pass  # a 400 or 422 for the empty request: the route is there
    return None


def _certificates_of_the_environment(here: bool) -> dict:
    """``verify=`` for a server on this machine, reached without the environment's proxy settings (trust_env off):
    the certificates SSL_CERT_FILE / SSL_CERT_DIR name are still trusted, as they are for any other server (a local
    server with its own certificate failed "its TLS certificate was not accepted" though the user had named it)."""
    cafile, capath = os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None
    if not here or not (cafile or capath):
        return {}
    import ssl

    try:
        return {"verify": ssl.create_default_context(cafile=cafile, capath=capath)}
    except (OSError, ssl.SSLError):  # a file that is not there or not certificates: as without it
        return {}


def _model_ids(data) -> list[str]:
    """The ids of a model list's ``data``; ValueError when it is not a list of models."""
    if not isinstance(data, list) or not all(isinstance(getattr(m, "id", None), str) for m in data):
        raise ValueError("not a list of models")
    return [m.id for m in data]


class _EmptyAnswer(BackendError):
    """An answer with no text, not cut off at the token limit (asked once more, see ``_complete``)."""


class _PassingServerError(BackendError):
    """A 200 whose body is an error that passes, asked again (see ``_complete``); ``said``: its words, for the
    line shown while waiting."""

    def __init__(self, message: str, said: str):
        super().__init__(message)
        self.said = said


#: the words of an error that passes (a busy, loading or crashed upstream), where a 200's body gives no status
_PASSING_WORDS = re.compile(r"rate.?limit|overload|try again|temporar|timed? ?out|unavailable|loading|busy|capacity",
                            re.I)


def _passes(error) -> bool:
    """Whether a 200's ``{"error": ...}`` is one that asking again may get past: a status-like code of 408, 409,
    429 or 5xx (OpenRouter's and LiteLLM's "code"), else words that say so; never one about the request itself."""
    if not isinstance(error, dict):
        return bool(_PASSING_WORDS.search(str(error)))
    for key in ("code", "status", "status_code"):
        try:
            code = int(error.get(key))
        except (TypeError, ValueError):
            continue
        return code in (408, 409, 429) or code >= 500
    return bool(_PASSING_WORDS.search(" ".join(str(error.get(k) or "") for k in ("type", "code", "message"))))


def _after(retries: int) -> str:
    """" after 3 retries"; nothing when none was allowed (`doctor` asks once)."""
    return f" after {retries} retries" if retries else ""


def _why_no_connection(err: BaseException) -> str:
    """Why the SDK's "Connection error." happened, in words ("127.0.0.1 refused the connection", "cannot look up
    HOST: ..."), from the socket error at the root of its chain; the SDK's own words when there is none."""
    from urllib.parse import urlsplit

    from ..hub import connect_host, why_unreachable

    seen, cause = set(), err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError):
            request = getattr(err, "request", None)
            if request is None:
                return why_unreachable(cause, "the server")
            url = str(request.url)  # a server on this machine is reached directly, whatever HTTP_PROXY says
            here = _on_this_machine(url) and (urlsplit(url).hostname or "").strip("[]")
            return why_unreachable(cause, here or connect_host(url))
        cause = cause.__cause__ or cause.__context__
    return str(err)


def _dropped(err) -> bool:
    """Whether a connection error is a server that was reached and closed the connection mid-answer (not one that
    could not be reached); by the names httpx and httpx2 (openai 3.x) give those errors."""
    return type(err.__cause__).__name__ in ("RemoteProtocolError", "ReadError")


def _content_text(content) -> str:
    """A message's text: a string, or (some servers) a list of parts whose text parts are joined."""
    if isinstance(content, list):
        parts = [p.get("text") if isinstance(p, dict) else getattr(p, "text", None) for p in content]
        return "".join(p for p in parts if isinstance(p, str))
    return content if isinstance(content, str) else ""


def _is_refusal(response) -> bool:
    """Whether a server error's body says the request can never pass as it is (Ollama's 500s for too many images,
    images to a text-only model, or a model too big for the free memory; a context too small for the pages): the
    SDK would ask again up to ``max_retries`` times, seconds apart, and be refused each time."""
    said = _answer_head(response)
    return any(words.search(said) for words in (_IMAGE_LIMIT, _NO_IMAGES, _CONTEXT_EXCEEDED, _CANNOT_LOAD,
                                                _STRUCTURED_OUTPUT_REFUSED))


def _no_quota(response) -> bool:
    """Whether a 429 says the account has no quota left (``insufficient_quota``): no wait makes it pass, so it is not
    asked again (it was, ``max_retries`` times, before the line saying so)."""
    return "insufficient_quota" in _answer_head(response)


def _answer_head(response) -> str:
    """The first 4 KB of an error answer's body, read in an event hook before the SDK reads it ("" when it cannot
    be read: the SDK meets that and reports it)."""
    try:
        return response.read()[:4096].decode("utf-8", "replace")
    except Exception:  # noqa: BLE001
        return ""


def _error_message(err) -> str:
    """The server's own one-line message (``error.message`` in the body), else the SDK's text."""
    body = getattr(err, "body", None)
    if isinstance(body, dict):  # OpenAI's {"message": ...}; FastAPI servers' {"detail": ...}
        text = body.get("message") or body.get("detail") or body.get("error")
    else:  # a plain-text error (Ollama's "404 page not found") is the server's own words too
        text = body if isinstance(body, str) else None
    if text and re.search(r"<(?:html|head|body|title|h1)\b", str(text), re.I):  # a proxy's error page: its title
        found = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S) or re.search(r"<h1[^>]*>(.*?)</h1>", text,
                                                                                      re.I | re.S)
        text = found.group(1) if found else re.sub(r"<[^>]*>", " ", text)
    text = str(text or getattr(err, "message", "") or err)
    return " ".join(text.split())[:200]


def _names_a_model(message: str, model_id: str) -> bool:
    """Whether a 404's words are about a model ("The model `x` does not exist", Ollama's "model \"x\" not found"),
    not about the address."""
    return "model" in message.lower() or bool(model_id) and model_id.lower() in message.lower()


def _mentions_structured_output(err) -> bool:
    return bool(_STRUCTURED_OUTPUT_REFUSED.search(f"{_error_message(err)} {getattr(err, 'param', '') or ''}"))


def _server_url(url: Optional[str]) -> Optional[str]:
    """``url`` as the server it names, for the settings a description was read with: without a last "/", and with
    its scheme and host in lower case, which name the same server in any case (``HTTP://LOCALHOST:8080/v1`` after
    ``http://localhost:8080/v1`` described every section again, "the describer's settings changed")."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    url = url.rstrip("/")
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    user, at, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=f"{user}{at}{host.lower()}"))


def _retry_after(headers) -> float | None:
    """The seconds an answer's Retry-After (-ms) asks to wait, as the SDK reads them: a number of seconds, or an HTTP
    date (RFC 9110; it was taken for no wait at all, so every section left asked at once, beyond a long wait the
    server had asked for, and failed); None when it names none."""
    import email.utils
    import time

    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            return float(headers["retry-after"])
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(headers["retry-after"])
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when.tzinfo is not None else None


def _seconds_in_words(seconds: float) -> str:
    return f"{max(1, round(seconds))} s" if seconds <= 90 else f"{seconds / 60:.1f} min".replace(".0 ", " ")


def _retry_delay(headers) -> str:
    """" in 20 s", from the answer's Retry-After (-ms) as the SDK reads it; "" when the server names no time (the
    SDK then waits about 0.5-8 s)."""
    seconds = _retry_after(headers)
    if seconds is None or not 0 < seconds <= _longest_retry_after():  # beyond it the SDK does not ask again
        return ""
    return f" in {_seconds_in_words(seconds)}"


def _sdk_refuses_long_waits() -> bool:
    """Whether the SDK gives up on an answer that asks to wait longer than it waits (openai 2.x-3.x: it names that
    longest wait); openai 1.x asks again after its own backoff instead."""
    try:
        from openai._constants import MAX_RETRY_AFTER_DELAY  # noqa: F401
    except ImportError:
        return False
    return True


def _longest_retry_after() -> float:
    """The longest Retry-After the SDK waits for (2 minutes in openai 2.x-3.x; 60 s before)."""
    try:
        from openai._constants import MAX_RETRY_AFTER_DELAY
    except ImportError:
        return 60.0
    return float(MAX_RETRY_AFTER_DELAY)


#: where a request's start time is kept (an extension of the httpx request; the transport ignores it)
_STARTED = "manga2music_started"


def _started(request) -> None:
    import time

    request.extensions[_STARTED] = time.monotonic()


def _deadline_stream(stream, deadline: float, request, whole: Callable[[], None] = lambda: None):
    """``stream`` (a response body) raising a ReadTimeout when a chunk arrives after ``deadline`` (time.monotonic);
    of the HTTP library the SDK uses (httpx, or httpx2 in openai 3.x), whose timeouts the SDK retries.  ``whole`` is
    called once the body has all come."""
    import sys
    import time

    http = sys.modules[type(request).__module__.partition(".")[0]]

    class Deadline(http.SyncByteStream):
        def __iter__(self):
            for chunk in stream:
                if time.monotonic() > deadline:
                    raise http.ReadTimeout("the whole answer did not come in time", request=request)
                yield chunk
            whole()

        def close(self) -> None:
            stream.close()

    return Deadline()
