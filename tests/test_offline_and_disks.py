"""--offline means no network at all; full and read-only disks stop a run with one line (issue #13).

The network guard is a ``sitecustomize`` put first on the command's PYTHONPATH: any name lookup or
connection to a host other than this machine is logged and refused.  These tests unset
HF_HUB_OFFLINE (which every other test sets), so only the flag under test keeps the command offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from openai_server import openai_server  # noqa: F401  (a fixture)
from output_checks import cli, cli_env, one_line_error, record_mismatches, temp_files

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "samples"
BUILTIN = ("--vision-model", "builtin", "--music-model", "builtin")


@pytest.fixture
def guarded(tmp_path):
    """An environment for the real command in which the network is refused (and every attempt logged)."""
    log = tmp_path / "netguard.log"
    env = cli_env(NETGUARD_LOG=str(log), OPENAI_API_KEY="sk-test-not-a-real-key")
    env.pop("HF_HUB_OFFLINE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE / "netguard"), env["PYTHONPATH"]])
    env["HF_ENDPOINT"] = "https://huggingface.co"  # a real, remote endpoint: reaching for it would be logged
    return env, log


def attempts(log: Path) -> str:
    return log.read_text() if log.exists() else ""


def test_the_guard_itself_catches_a_lookup(guarded):
    env, log = guarded
    res = subprocess.run(["python", "-c", "import socket; socket.getaddrinfo('huggingface.co', 443)"],
                         env=env, capture_output=True, text=True)
    assert res.returncode != 0 and "huggingface.co" in attempts(log)


@pytest.mark.parametrize("args", [
    ("run", "--music-model", "musicgen-small", "--vision-model", "builtin"),
    ("run", "--vision-model", "llava-0.5b", "--music-model", "builtin"),
    ("compose", "--model", "musicgen-small"),
    ("describe", "--model", "qwen2-vl-2b"),
])
def test_offline_flag_fails_without_touching_the_network(guarded, tmp_path, args):
    env, log = guarded
    command, *rest = args
    target = SAMPLES / "calm" if command != "compose" else tmp_path / "d.txt"
    if command == "compose":
        target.write_text("calm piano 70 BPM")
    result = cli(command, target, "-o", tmp_path / "out", *rest, "--offline", env=env)
    assert result.returncode == 1 and one_line_error(result.stderr), result.stderr
    assert "offline" in result.stderr and "models pull" in result.stderr
    assert "will be downloaded" not in result.stderr
    assert attempts(log) == ""


def test_offline_refuses_a_remote_api_up_front(guarded, tmp_path):
    env, log = guarded
    result = cli("run", SAMPLES / "calm", "-o", tmp_path / "out", "--vision-model", "gpt-4o-mini",
                 "--music-model", "builtin", "--offline", env=env)
    assert result.returncode == 2 and one_line_error(result.stderr), result.stderr
    assert "--offline" in result.stderr
    assert attempts(log) == ""


def test_offline_refuses_a_local_servers_redirect_to_another_machine(guarded, tmp_path, openai_server):  # noqa: F811
    """With --offline, a server on 127.0.0.1 that answered 307 to another host had the pages sent there (the client
    follows redirects, and a 307 sends the body again); the error then blamed the local server."""
    from openai_server import Redirect

    env, log = guarded
    openai_server.queue(*[Redirect("http://192.0.2.1:9/v1/chat/completions")] * 4)
    result = cli("describe", SAMPLES / "calm", "-o", tmp_path / "out", "--model", "my-vlm", "--base-url",
                 openai_server.url, "--offline", "--timeout", "5", env=env)
    assert attempts(log) == ""  # nothing went to 192.0.2.1
    assert result.returncode == 1 and one_line_error(result.stderr), result.stderr
    assert "192.0.2.1" in result.stderr and "--offline" in result.stderr
    assert len(openai_server.requests) == 1  # not asked again: a redirect is no passing trouble


def test_offline_auto_run_and_doctor_stay_on_this_machine(guarded, tmp_path):
    env, log = guarded
    result = cli("run", SAMPLES, "-o", tmp_path / "out", "--duration", "1", "--offline", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert {e["vision_model"] for e in json.loads(result.stdout)["sections"]} == {"builtin"}
    doctor = cli("doctor", "--offline", "--json", env=env)
    assert doctor.returncode == 0, doctor.stderr
    pull = cli("models", "pull", "musicgen-small", "--offline", env=env)
    assert pull.returncode == 1 and one_line_error(pull.stderr)
    assert "without --offline" in pull.stderr  # the flag the user gave, not only the variable they may not have set
    assert attempts(log) == ""


# --- full and read-only disks (a real tmpfs) -------------------------------------------------------


def _mount_tmpfs(where: Path, size: str, readonly: bool = False) -> None:
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or 'mount failed'}); needs root")


@pytest.fixture
def tmpfs(tmp_path):
    mounted: list[Path] = []

    def mount(name: str, size: str, readonly: bool = False) -> Path:
        where = tmp_path / name
        _mount_tmpfs(where, size, readonly)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_full_disk_stops_with_one_line_and_a_rerun_resumes(tmpfs, four_sections):
    out = tmpfs("small", "900k")
    result = cli("run", four_sections, "-o", out, *BUILTIN, "--duration", "3", "--seed", "2")
    assert result.returncode == 1 and one_line_error(result.stderr), result.stderr
    assert "full" in result.stderr.lower() and str(out) in result.stderr
    assert temp_files(out) == [] and record_mismatches(out) == []
    subprocess.run(["mount", "-o", "remount,size=16m", str(out)], check=True)
    again = cli("run", four_sections, "-o", out, *BUILTIN, "--duration", "3", "--seed", "2", "--json")
    assert again.returncode == 0, again.stderr
    assert all(e["status"] in ("ok", "skipped") for e in json.loads(again.stdout)["sections"])
    assert temp_files(out) == [] and record_mismatches(out) == []


def test_a_read_only_output_folder_is_one_line(tmpfs, four_sections):
    out = tmpfs("ro", "1m", readonly=True)
    result = cli("run", four_sections, "-o", out, *BUILTIN, "--duration", "1")
    assert result.returncode == 2 and one_line_error(result.stderr), result.stderr
    assert "read-only" in result.stderr.lower() or "not writable" in result.stderr.lower()


def test_a_full_temporary_folder_is_named_when_an_archive_cannot_be_unpacked(tmpfs, tmp_path):
    """A .cb7 (unpacked into the temporary folder to be read) with TMPDIR full failed as "book.cb7: cannot read (No
    space left on device)": the user looked at the wrong disk, the one the archive is on."""
    from manga2music import other_archives

    tool = other_archives.bsdtar()
    if tool is None:
        pytest.skip("bsdtar (libarchive) is not installed")
    scratch = tmp_path / "scratch"
    shutil.copytree(SAMPLES / "calm", scratch / "ch")
    book = tmp_path / "book.cb7"
    subprocess.run([tool, "-c", "-f", str(book), "--format", "7zip", "ch"], cwd=scratch, check=True)
    full = tmpfs("tmp", "64k")
    result = cli("run", book, "-o", tmp_path / "out", *BUILTIN, "--duration", "1",
                 env={**cli_env(), "TMPDIR": str(full)})
    assert "Traceback" not in result.stderr and result.returncode == 1, result.stderr
    assert f"no room in the temporary folder {full} to unpack it (No space left on device)" in result.stderr, \
        result.stderr
    assert "TMPDIR" in result.stderr
