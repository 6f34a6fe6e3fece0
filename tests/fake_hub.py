"""A Hugging Face Hub and cache that never leave this machine, for the cache, doctor and tier tests.

``fake_repo`` lays out a repository the way huggingface_hub caches it; ``local_http``
serves a handler on 127.0.0.1; ``fake_hub`` speaks the few endpoints
``huggingface_hub.snapshot_download`` uses; ``answer`` is a canned reply.
"""

from __future__ import annotations

import hashlib
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

from manga2music import cache

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_repo(cache_dir: Path, repo_id: str, files: dict[str, bytes], *, incomplete: bool = False) -> Path:
    """Lay out ``repo_id`` the way huggingface_hub does: blobs, snapshot symlinks, refs/main."""
    repo = cache_dir / cache.repo_folder_name(repo_id)
    snap = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    if incomplete:
        (repo / "blobs" / ("f" * 64 + ".incomplete")).write_bytes(b"x" * 10)
    return repo


MUSICGEN_FILES = {"config.json": b'{"model_type": "musicgen"}', "model.safetensors": b"\0" * 50_000,
                  "generation_config.json": b"{}"}
#: what a fake repo occupies: each blob once (snapshot symlinks are free) plus refs/main
MUSICGEN_BYTES = sum(len(v) for v in MUSICGEN_FILES.values()) + len(COMMIT)


@contextmanager
def local_http(handler: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[tuple[str, list[str]]]:
    """Serve ``handler`` for every GET/HEAD on 127.0.0.1; yield (base URL, log of "METHOD path")."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _any(self):
            seen.append(f"{self.command} {self.path}")
            handler(self)

        do_GET = do_HEAD = _any

        def log_message(self, *args):  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def answer(code: int, body: bytes = b"", headers: dict | None = None) -> Callable:
    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(code)
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(body)

    return handle


def fake_hub(repo_id: str, files: dict[str, bytes]) -> Callable:
    """The endpoints snapshot_download calls: repo info, tree listing, and resolve (HEAD + GET)."""

    def handle(req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?")[0]
        if path.startswith(f"/api/models/{repo_id}/revision/"):
            body = {"id": repo_id, "sha": COMMIT, "siblings": [{"rfilename": n} for n in files]}
            return answer(200, json.dumps(body).encode(), {"Content-Type": "application/json"})(req)
        if path.startswith(f"/api/models/{repo_id}/tree/"):
            body = [{"type": "file", "path": n, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                    for n, d in files.items()]
            return answer(200, json.dumps(body).encode(), {"Content-Type": "application/json"})(req)
        prefix = f"/{repo_id}/resolve/"
        if path.startswith(prefix):
            name = path[len(prefix):].split("/", 1)[1]
            if name in files:
                data = files[name]
                return answer(200, data, {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                                          "Content-Type": "application/octet-stream"})(req)
        if path == "/api/models":
            return answer(200, b"[]")(req)
        return answer(404, b'{"error": "not found"}', {"X-Error-Code": "EntryNotFound"})(req)

    return handle
