"""What a healthy output folder looks like, checked from the outside (used by the crash and hostile tests)."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import locale
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: the hidden temporary names our atomic writes use: ".NAME.tmp-1a2b3c4d"
TEMP_NAME = re.compile(r"^\..+\.tmp-[0-9a-f]{8}$")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temp_files(out: Path) -> list[Path]:
    return [p for p in Path(out).rglob(".*") if TEMP_NAME.match(p.name)]


def records(out: Path) -> dict[Path, dict]:
    """Every section record under ``out`` (JSON files our tool wrote that name a section)."""
    found = {}
    for path in Path(out).rglob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("tool") == "manga2music" and "section" in data:
            found[path] = data
    return found


def record_mismatches(out: Path) -> list[str]:
    """Files a record lists whose bytes are not what it says (or that are missing)."""
    bad = []
    for path, record in records(out).items():
        for name, digest in record.get("files", {}).items():
            target = path.parent / name
            if not target.exists():
                bad.append(f"{target}: listed in {path.name} but missing")
            elif sha256(target) != digest:
                bad.append(f"{target}: does not match the hash in {path.name}")
    return bad


def cli_env(**extra: str) -> dict:
    """The environment for a real ``python -m manga2music`` process running this checkout's code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def cli(*args, env: dict | None = None, timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
    """Run the real command in its own process; text output, never raises on a non-zero exit.

    The process is forked from one that has the slow libraries imported already (tests/cli_zygote.py), which saves
    about 1.4 s a command; there is one such process for each set of the settings Python and those libraries read
    at start-up (``_READ_AT_START``). ``M2M_TEST_FORK=0`` runs a fresh ``python -m manga2music`` each time."""
    argv, env = [str(a) for a in args], env or cli_env()
    forked = _zygote_for(env)
    if forked is not None:
        return forked.run(argv, env, timeout, input)
    return subprocess.run([sys.executable, "-m", "manga2music", *argv], capture_output=True, text=True,
                          env=env, timeout=timeout, input=input, errors="replace")


#: settings Python, numpy or OpenCV read once, at start-up or import: a command asking for other values than a
#: forking process started with is forked from another one, started with them
_READ_AT_START = ("PYTHON", "LANG", "LC_", "OMP_", "OPENBLAS_", "MKL_", "OPENCV_", "NPY_", "SCIPY_")
#: the forking processes of this test process by those settings, the most recently started last
_zygotes: dict[tuple, _Zygote] = {}
MAX_ZYGOTES = 3


class _Zygote:
    """A forking process of this test process, started at the first command that needs its settings."""

    def __init__(self, env: dict):
        import tempfile

        self.folder = Path(tempfile.mkdtemp(prefix="m2m-zygote-"))
        self.socket = str(self.folder / "socket")
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("cli_zygote.py")), self.socket],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)
        if self.process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the forking test process did not start")
        atexit.register(self.stop)

    def stop(self) -> None:
        import shutil

        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def run(self, argv: list[str], env: dict, timeout: float | None, input: str | None):
        import socket
        import tempfile

        command = [sys.executable, "-m", "manga2music", *argv]  # what the CompletedProcess says was run
        with tempfile.TemporaryDirectory(dir=self.folder) as tmp:
            files = {name: Path(tmp, name) for name in ("stdin", "stdout", "stderr")}
            files["stdin"].write_text(input or "", encoding=locale.getpreferredencoding(False))  # as subprocess does
            files["stdout"].touch()
            files["stderr"].touch()
            request = {"argv": argv, "argv0": str(REPO / "manga2music" / "__main__.py"), "env": env,
                       "cwd": os.getcwd(), **{name: str(path) for name, path in files.items()}}
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(self.socket)
                conn.sendall(json.dumps(request).encode() + b"\n")
                conn.settimeout(timeout)
                answers = conn.makefile("rb")
                last = answers.readline().split()  # "pid N", or "exit 1" from a child that could not even start
                if last[:1] == [b"pid"]:
                    try:
                        last = answers.readline().split()
                    except (socket.timeout, TimeoutError):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(last[1]), signal.SIGKILL)
                        raise subprocess.TimeoutExpired(command, timeout) from None
                # no "exit N": the command was killed by a signal (which the kernel, not we, saw)
                code = int(last[1]) if last[:1] == [b"exit"] else -signal.SIGKILL
            # as subprocess's text mode reads them: the locale's encoding, universal newlines
            read = {name: files[name].read_bytes().decode(locale.getpreferredencoding(False), "replace")
                    .replace("\r\n", "\n").replace("\r", "\n") for name in ("stdout", "stderr")}
        return subprocess.CompletedProcess(command, code, read["stdout"], read["stderr"])


def _zygote_for(env: dict) -> _Zygote | None:
    """The forking process for a command with this environment, started if there is none yet."""
    if os.environ.get("M2M_TEST_FORK", "1") == "0" or not hasattr(os, "fork"):
        return None
    key = _start_settings(env)
    zygote = _zygotes.get(key)
    if zygote is not None and zygote.process.poll() is not None:
        _zygotes.pop(key).stop()
        zygote = None
    if zygote is None:
        while len(_zygotes) >= MAX_ZYGOTES:
            _zygotes.pop(next(iter(_zygotes))).stop()
        zygote = _zygotes[key] = _Zygote(env)
    return zygote


def _start_settings(env: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(_READ_AT_START)))


def start_cli(*args, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "manga2music", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or cli_env(), errors="replace")


def read_until(proc: subprocess.Popen, words: str, timeout: float = 120) -> str:
    """``proc``'s stderr (of :func:`start_cli`) read line by line until a line holds ``words``: what was read.  A
    fixed sleep before looking missed a start slowed by a busy machine (the run had not reached the lock yet)."""
    import threading

    read: list[str] = []
    seen = threading.Event()

    def reader():
        for line in proc.stderr:
            read.append(line)
            if words in " ".join("".join(read).split()):
                seen.set()
                return
        seen.set()

    threading.Thread(target=reader, daemon=True).start()
    seen.wait(timeout)
    return "".join(read)


def one_line_error(stderr: str) -> bool:
    """A user-facing failure: no traceback, and an 'Error:' line."""
    return "Traceback" not in stderr and "Error:" in stderr


def kill(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)


@contextlib.contextmanager
def another_run_holds(out):
    """While the block runs, the output folder ``out`` is held by another run (a thread holding its lock)."""
    import threading

    from manga2music.lock import output_lock

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with output_lock(out):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10), "the other run never took the folder"
        yield
    finally:
        release.set()
        holder.join(30)
