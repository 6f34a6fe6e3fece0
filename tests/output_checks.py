"""What a healthy output folder looks like, checked from the outside (used by the crash and hostile tests)."""

from __future__ import annotations

import hashlib
import json
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
    """Run the real command in its own process; text output, never raises on a non-zero exit."""
    return subprocess.run([sys.executable, "-m", "manga2music", *map(str, args)], capture_output=True, text=True,
                          env=env or cli_env(), timeout=timeout, input=input, errors="replace")


def start_cli(*args, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "manga2music", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or cli_env(), errors="replace")


def one_line_error(stderr: str) -> bool:
    """A user-facing failure: no traceback, and an 'Error:' line."""
    return "Traceback" not in stderr and "Error:" in stderr


def kill(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
