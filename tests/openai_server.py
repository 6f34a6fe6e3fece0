"""A real, scriptable OpenAI-compatible HTTP server on 127.0.0.1 for tests.

It speaks ``POST /v1/chat/completions`` like the real API closely enough for
the ``openai`` SDK: it checks the request (model, messages, data-URL images
whose bytes match their MIME type, strict JSON schemas), records every body,
and answers from a queue of behaviours::

    server.queue(Reply('{"genre": ...}'), Fail(429, "Rate limit", retry_after_ms=10), Delay(2.0))

With an empty queue it answers by itself: a valid analysis for requests with
images, a music description for text-only ones.  ``reject_json_schema=True``
makes it a server without structured outputs (400 on ``response_format``
``json_schema``), like many local servers.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

DEFAULT_ANALYSIS = {
    "genre": "drama",
    "atmosphere": "quiet and tense",
    "focus": "visual",
    "pacing": "slow, long silent panels",
    "plot": "Someone waits at a train station in the rain.",
}
DEFAULT_DESCRIPTION = (
    "Slow cinematic ambient piece at 70 BPM in D minor, soft piano over warm string pads, "
    "distant rain textures, melancholic and hopeful."
)
_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/webp": b"RIFF", "image/gif": b"GIF8"}


@dataclass
class Reply:
    """A 200 answer."""

    content: str | list | None = None  # a list: content parts, as some servers send
    refusal: str | None = None
    prompt_tokens: int | None = 100  # None: no usage in the answer, as some servers do
    completion_tokens: int = 20
    finish_reason: str = "stop"
    served_as: str | None = None  # the model the answer says it came from (None: the one asked for)


@dataclass
class Fail:
    """An error status with an OpenAI-style error body."""

    status: int
    message: str
    retry_after_ms: int | None = 10
    param: str | None = None
    type: str = "server_error"
    retry_after_date: float | None = None  # seconds ahead, sent as Retry-After in its HTTP-date form instead


@dataclass
class Raw:
    """Any answer at all, as servers that are not quite OpenAI-compatible send: plain text, an HTML page, JSON
    without choices."""

    status: int
    body: str
    content_type: str = "text/plain"


@dataclass
class Redirect:
    """A redirect (307 keeps the method and body: the pages go where it points)."""

    location: str
    status: int = 307


@dataclass
class Delay:
    """Sleep, then behave like ``then`` (the client may have given up by then)."""

    seconds: float
    then: Reply | Fail = field(default_factory=Reply)


@dataclass
class Trickle:
    """Headers at once, then a space every ``every`` seconds for ``seconds``, then the answer: a server (or a proxy
    keeping a connection alive) that never goes quiet long enough for a read to time out."""

    seconds: float
    then: Reply | None = None  # None: the answer an empty queue gives
    every: float = 0.2


@dataclass
class Echo:
    """A 200 whose answer is the request's own text, as small local models sometimes answer."""


@dataclass
class Drop:
    """Headers and the start of a body, then the connection closed (a server that crashed mid-answer)."""


@dataclass
class Recorded:
    """One request the server received."""

    body: dict
    headers: dict

    @property
    def content_parts(self) -> list[dict]:
        content = self.body["messages"][-1]["content"]
        return [{"type": "text", "text": content}] if isinstance(content, str) else content

    @property
    def images(self) -> list[str]:
        """The image URLs, in order."""
        return [p["image_url"]["url"] for p in self.content_parts if p.get("type") == "image_url"]

    @property
    def image_details(self) -> list[str | None]:
        return [p["image_url"].get("detail") for p in self.content_parts if p.get("type") == "image_url"]

    @property
    def text(self) -> str:
        return "\n".join(p["text"] for p in self.content_parts if p.get("type") == "text")

    @property
    def response_format(self) -> dict | None:
        return self.body.get("response_format")


def _schema_error(schema: object, path: str = "schema") -> str | None:
    """What OpenAI's strict mode would reject in ``schema`` (closed objects, all properties required)."""
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            if schema.get("additionalProperties") is not False:
                return f"Invalid schema: In context={path}, 'additionalProperties' is required to be supplied and to be false."
            missing = set(schema.get("properties", {})) - set(schema.get("required", []))
            if missing:
                return f"Invalid schema: In context={path}, 'required' is missing {sorted(missing)}."
        if "default" in schema:
            return f"Invalid schema: In context={path}, 'default' is not permitted."
        for key, value in schema.items():
            error = _schema_error(value, f"{path}.{key}")
            if error:
                return error
    return None


def _request_error(body: dict, reject_json_schema: bool) -> tuple[str, str | None] | None:
    """(message, param) for a request a real server would refuse, else None."""
    if not body.get("model"):
        return "you must provide a model parameter", "model"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty array", "messages"
    fmt = body.get("response_format")
    if fmt and fmt.get("type") == "json_schema":
        if reject_json_schema:
            return "response_format of type 'json_schema' is not supported by this server", "response_format"
        spec = fmt.get("json_schema") or {}
        if not spec.get("name") or "schema" not in spec:
            return "json_schema needs a name and a schema", "response_format"
        if spec.get("strict"):
            error = _schema_error(spec["schema"])
            if error:
                return error, "response_format"
    content = messages[-1].get("content")
    for part in content if isinstance(content, list) else []:
        if part.get("type") != "image_url":
            continue
        url = part["image_url"]["url"]
        head, _, data = url.partition(";base64,")
        mime = head.removeprefix("data:")
        if not url.startswith("data:") or mime not in _MAGIC:
            return f"Invalid image URL or unsupported MIME type {mime!r}", "messages"
        raw = base64.b64decode(data)
        if not raw.startswith(_MAGIC[mime]):
            return f"Invalid image: bytes are not {mime}", "messages"
    return None


class FakeOpenAIServer:
    """The server; use the :func:`openai_server` fixture to get a running one."""

    def __init__(self, *, reject_json_schema: bool = False):
        self.requests: list[Recorded] = []
        self.reject_json_schema = reject_json_schema
        #: what GET /v1/models lists (as Ollama and vLLM do); None: that route is a 404, as on servers without it
        self.models: list[str] | None = ["my-vlm", "llava:13b"]
        self.model_list_status = 200  # 401: the key is refused there too
        self.model_list_raw: tuple[str, str] | None = None  # (body, content type) GET /v1/models answers, as is
        #: (most images, message, error type): a request with more images gets a 400 with that message, as vLLM
        #: answers past ``--limit-mm-per-prompt`` and llama.cpp past its context; None: any number is taken
        self.images_limit: tuple[int, str, str] | None = None
        self.images_limit_status = 400  # 413: a proxy's body size limit (nginx's client_max_body_size)
        self._queue: deque = deque()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def queue(self, *behaviours: Reply | Fail | Delay | Raw | Redirect | Trickle | Echo | Drop) -> None:
        with self._lock:
            self._queue.extend(behaviours)

    def start(self) -> "FakeOpenAIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- answering ----------------------------------------------------------------------

    def _next(self, record: Recorded) -> Reply | Fail | Delay | Raw | Redirect:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.default_reply(record)

    def default_reply(self, record: Recorded) -> Reply:
        """The answer to ``record`` when nothing is queued: an analysis for pages, a description for text."""
        if record.images:
            return Reply(json.dumps(DEFAULT_ANALYSIS))
        return Reply(DEFAULT_DESCRIPTION)

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, payload: dict | str, headers: dict | None = None,
                      content_type: str = "application/json") -> None:
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def do_GET(self):
                if self.path.rstrip("/") != "/v1/models" or server.models is None:
                    return self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                if server.model_list_raw is not None:  # a web page, or JSON of another shape
                    body, kind = server.model_list_raw
                    data = body.encode("utf-8")
                    self.send_response(200)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    return self.wfile.write(data)
                if server.model_list_status != 200:
                    error = {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}
                    return self._send(server.model_list_status, {"error": error})
                self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "me"}
                                                            for m in server.models]})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
                record = Recorded(body=body, headers={k.lower(): v for k, v in self.headers.items()})
                with server._lock:
                    server.requests.append(record)
                problem = _request_error(body, server.reject_json_schema)
                if problem:
                    message, param = problem
                    return self._send(400, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}})
                if server.images_limit is not None and len(record.images) > server.images_limit[0]:
                    _, message, kind = server.images_limit
                    status = server.images_limit_status
                    return self._send(status, {"error": {"message": message, "type": kind, "param": None,
                                                         "code": status}})
                behaviour = server._next(record)
                if isinstance(behaviour, Echo):
                    behaviour = Reply(record.text)
                if isinstance(behaviour, Drop):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "4000")
                    self.end_headers()
                    self.wfile.write(b'{"id": "chatcmpl-1", "object": "chat.comp')
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if isinstance(behaviour, Trickle):
                    return self._trickle(behaviour, body, behaviour.then or server.default_reply(record))
                if isinstance(behaviour, Delay):
                    time.sleep(behaviour.seconds)
                    behaviour = behaviour.then
                if isinstance(behaviour, Redirect):
                    return self._send(behaviour.status, "", {"Location": behaviour.location})
                if isinstance(behaviour, Raw):
                    return self._send(behaviour.status, behaviour.body, content_type=behaviour.content_type)
                if isinstance(behaviour, Fail):
                    headers = {"retry-after-ms": str(behaviour.retry_after_ms)} if behaviour.retry_after_ms else {}
                    if behaviour.retry_after_date is not None:
                        import email.utils

                        headers = {"retry-after": email.utils.formatdate(time.time() + behaviour.retry_after_date,
                                                                         usegmt=True)}
                    error = {"message": behaviour.message, "type": behaviour.type, "param": behaviour.param, "code": None}
                    return self._send(behaviour.status, {"error": error}, headers)
                self._send(200, self._completion(behaviour, body))

            def _completion(self, behaviour: Reply, body: dict) -> dict:
                message = {"role": "assistant", "content": behaviour.content, "refusal": behaviour.refusal}
                usage = None if behaviour.prompt_tokens is None else {
                    "prompt_tokens": behaviour.prompt_tokens,
                    "completion_tokens": behaviour.completion_tokens,
                    "total_tokens": behaviour.prompt_tokens + behaviour.completion_tokens,
                }
                return {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": behaviour.served_as or body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": behaviour.finish_reason, "logprobs": None}],
                    **({"usage": usage} if usage else {}),
                }

            def _trickle(self, behaviour: Trickle, body: dict, then: Reply) -> None:
                spaces = max(1, int(behaviour.seconds / behaviour.every))
                data = json.dumps(self._completion(then, body)).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(spaces + len(data)))
                    self.end_headers()
                    for _ in range(spaces):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(behaviour.every)
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up
                    pass

        return Handler


@pytest.fixture
def openai_server():
    """A running :class:`FakeOpenAIServer`, stopped after the test."""
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def openai_server_no_schema():
    """A running server that rejects ``response_format`` json_schema with a 400, like many local servers."""
    server = FakeOpenAIServer(reject_json_schema=True).start()
    yield server
    server.stop()
