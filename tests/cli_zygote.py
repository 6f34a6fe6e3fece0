"""A process that has imported the slow third-party libraries once and forks a fresh `python -m manga2music`
for each command a test runs (used by ``output_checks.cli``).

Why: each real process spent about 1.4 s of its 2-7 s importing scipy.signal, OpenCV, numpy and the like before
doing anything, and the suite starts hundreds of them.  A forked child is still a process of its own, with
its own exit status, stdout, stderr, environment, working folder and atexit handlers; what it shares with the
others is only those libraries, imported before any test's environment was known.  So this server only imports
libraries that read no setting of ours at import time, never manga2music itself (the child imports it, under the
test's environment), nor torch, transformers, huggingface_hub or Ray, nor onnxruntime (our text detector sets
ORT_DISABLE_TELEMETRY before importing it).

Protocol, one command per connection on a Unix socket: the client sends one JSON line
``{"argv", "env", "cwd", "stdin", "stdout", "stderr"}`` (the last three are paths of files); the child answers
``pid N`` as soon as it exists and ``exit N`` when the command is done.  A child killed by a signal answers
nothing more: the connection just closes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

PRELOADED = ("numpy", "scipy.signal", "scipy.ndimage", "pyloudnorm", "soundfile", "PIL.Image", "cv2",
             "pretty_midi", "mutagen", "pydantic", "psutil", "filelock", "natsort", "pypdfium2")


def _preload() -> None:
    import importlib

    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _run_command(request: dict, conn: socket.socket) -> int:
    import atexit
    import runpy
    import threading

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, mode in ((0, request["stdin"], os.O_RDONLY), (1, request["stdout"], os.O_WRONLY),
                           (2, request["stderr"], os.O_WRONLY)):
        opened = os.open(path, mode)
        os.dup2(opened, fd)
        os.close(opened)
    import numpy

    numpy.random.seed()  # a fresh process draws its own; a forked one would repeat the server's
    sys.argv = [request["argv0"], *request["argv"]]
    sys.path[0] = os.getcwd()  # what `python -m` puts first
    conn.sendall(f"pid {os.getpid()}\n".encode())
    try:
        try:
            runpy.run_module("manga2music", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        threading._shutdown()  # the interpreter waits for non-daemon threads before atexit, so do we
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    return code


def _child(listener: socket.socket, conn: socket.socket, request: dict) -> None:
    listener.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = 1
    try:
        code = _run_command(request, conn)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            conn.sendall(f"exit {code}\n".encode())
        finally:
            os._exit(code)


def serve(path: str) -> None:
    _preload()
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getppid()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel; the client hears their end
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    listener.settimeout(2.0)
    print("ready", flush=True)
    while True:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            if os.getppid() != parent:  # the test process is gone: so is our reason to be
                return
            continue
        conn.settimeout(None)
        with conn.makefile("rb") as lines:
            request = json.loads(lines.readline())
        if os.fork() == 0:
            _child(listener, conn, request)
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
