"""Output folders on filesystems that keep no file locks.

``flock`` fails on some filesystems a user writes to: NFS mounted without a running lock daemon ("No locks
available", ENOLCK: a container or a cluster node mounting a NAS), Lustre mounted without ``-o flock`` ("Function
not implemented", ENOSYS: the scratch space of many clusters), some FUSE mounts ("Operation not supported").  None of
those can be made here (no NFS server, no Lustre, and FUSE needs privileges CI need not have), so each test's
processes are real but load a ``sitecustomize`` that makes ``fcntl.flock`` answer as such a filesystem does, with
the errno the kernel gives there.  Everything else (the command, its files, the processes and signals) is real.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from output_checks import REPO, cli, cli_env, kill, record_mismatches, start_cli, temp_files

SAMPLES = REPO / "samples"
BUILTIN = ("--vision-model", "builtin", "--music-model", "builtin")

NO_FLOCK = '''\
import errno, fcntl, os
_code = getattr(errno, os.environ["M2M_TEST_FLOCK_ERRNO"])
def flock(fd, operation):
    raise OSError(_code, os.strerror(_code))
fcntl.flock = flock
'''


def lockless_env(tmp_path: Path, errno_name: str = "ENOLCK", **extra: str) -> dict:
    """The environment of a process whose every ``flock`` fails with ``errno_name``, as on such a filesystem."""
    shim = tmp_path / "no-flock"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(NO_FLOCK, encoding="utf-8")
    return cli_env(PYTHONPATH=os.pathsep.join([str(REPO), str(shim)]), M2M_TEST_FLOCK_ERRNO=errno_name, **extra)


def _wait_for_holder(out: Path, proc: subprocess.Popen, timeout: float = 60.0) -> dict:
    """The holder record of the run ``proc`` once it holds ``out``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads((out / ".manga2music.lock.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it held the folder: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    pytest.fail("the run never held the folder")


@pytest.mark.parametrize("errno_name", ["ENOLCK", "ENOSYS", "EOPNOTSUPP"])
def test_a_run_into_a_folder_on_a_filesystem_without_locks_works_and_says_so_in_one_line(tmp_path, errno_name):
    """NFS without its lock daemon refused every run ("cannot lock the output folder ... (No locks available)",
    with a hint to choose a folder one can write to, which it was); on Lustre the run went on but printed Python's
    own warning, two lines with a path inside filelock."""
    out = tmp_path / "out"
    done = cli("run", SAMPLES, "-o", out, *BUILTIN, env=lockless_env(tmp_path, errno_name))
    assert done.returncode == 0, done.stderr
    assert "3 of 3 sections done" in done.stderr, done.stderr
    said = [line for line in done.stderr.splitlines() if "file locks" in line]
    assert len(said) == 1 and os.strerror(getattr(__import__("errno"), errno_name)) in said[0], done.stderr
    assert "Warning" not in done.stderr and "filelock" not in done.stderr, done.stderr
    assert (out / ".manga2music.lock").exists()  # still marked as an output folder: a parent's run leaves it alone
    assert not (out / ".manga2music.lock.json").exists()
    assert temp_files(out) == [] and record_mismatches(out) == []
    again = cli("run", SAMPLES, "-o", out, *BUILTIN, "--json", env=lockless_env(tmp_path, errno_name))
    assert again.returncode == 0, again.stderr
    assert {e["status"] for e in json.loads(again.stdout)["sections"]} == {"skipped"}


@pytest.mark.parametrize("errno_name", ["ENOLCK", "ENOSYS"])
def test_without_locks_a_second_run_is_still_kept_out_and_a_killed_run_does_not_keep_the_folder(four_sections,
                                                                                                   tmp_path,
                                                                                                   errno_name):
    """The stand-in lock must do what the kernel's does: keep a second run out while the first runs (at once, not
    after a wait: the holder runs on this machine, and is seen alive), and not outlive its run killed with SIGKILL
    (the out-of-memory killer, a job's time limit)."""
    out = tmp_path / "out"
    env = lockless_env(tmp_path, errno_name)
    for i in range(4, 12):  # long enough to be killed midway
        shutil.copytree(four_sections / f"sec{i % 4:03d}", four_sections / f"sec{i:03d}")
    first = start_cli("run", four_sections, "-o", out, *BUILTIN, "--duration", "30", "--seed", "1", env=env)
    try:
        holder = _wait_for_holder(out, first)
        start = time.monotonic()
        refused = cli("run", four_sections, "-o", out, *BUILTIN, "--duration", "30", "--seed", "1", env=env)
        assert refused.returncode == 2, refused.stderr
        assert f"being written by another manga2music run (pid {holder['pid']} " in refused.stderr, refused.stderr
        assert time.monotonic() - start < 15, "a holder on this machine, alive, is known at once"
        assert first.poll() is None, "the first run ended before it was killed: nothing was tested"
    finally:
        kill(first, signal.SIGKILL)
        first.communicate(timeout=60)
    again = cli("run", four_sections, "-o", out, *BUILTIN, "--duration", "30", "--seed", "1", "--json", env=env,
                timeout=300)
    assert again.returncode == 0, again.stderr
    assert "watching its lock file" not in again.stderr, "a dead holder on this machine is known dead at once"
    assert {e["status"] for e in json.loads(again.stdout)["sections"]} <= {"ok", "skipped"}
    assert temp_files(out) == [] and record_mismatches(out) == []


HOLD_ON_ANOTHER_MACHINE = '''\
import socket, sys, time
socket.gethostname = lambda: "node-b"  # the holder runs on another machine of the cluster, sharing the folder
from pathlib import Path
import manga2music.lock as lock
lock.LEASE_SECONDS = float(sys.argv[2])
with lock.output_lock(Path(sys.argv[1]), note=lambda line: print(line, flush=True)):
    print("held", flush=True)
    time.sleep(600)
'''


@pytest.mark.parametrize("holder_alive", [True, False])
def test_without_locks_a_run_held_from_another_machine_is_waited_on_for_one_lease(tmp_path, monkeypatch,
                                                                                   holder_alive):
    """A holder on another machine cannot be asked whether it is alive: a run keeps renewing its lock file, and a
    lock file not renewed for one lease is one whose run is gone (its machine crashed, or the job was killed).  The
    second run watches for one lease: the holder alive, it is refused, naming it; the holder gone (stopped here with
    SIGSTOP, which also stops its renewals), it takes the folder."""
    import manga2music.lock as lock
    from manga2music.errors import OutputBusyError

    lease = 2.0
    env = lockless_env(tmp_path, "ENOLCK")
    out = tmp_path / "out"
    script = tmp_path / "hold.py"
    script.write_text(HOLD_ON_ANOTHER_MACHINE, encoding="utf-8")
    holder = subprocess.Popen([sys.executable, str(script), str(out), str(lease)], stdout=subprocess.PIPE, text=True,
                              env=env)
    notes: list[str] = []
    try:
        said = holder.stdout.readline()
        assert "keeps no file locks (No locks available)" in said, said
        assert holder.stdout.readline().strip() == "held"
        if not holder_alive:
            holder.send_signal(signal.SIGSTOP)
        import errno
        import fcntl

        def no_flock(fd, operation):
            raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

        monkeypatch.setattr(fcntl, "flock", no_flock)
        monkeypatch.setattr(lock, "LEASE_SECONDS", lease)
        start = time.monotonic()
        if holder_alive:
            with pytest.raises(OutputBusyError) as refused:
                with lock.output_lock(out, note=notes.append):
                    pass
            assert f"pid {holder.pid} of " in str(refused.value) and " on node-b, " in str(refused.value)
            assert lease <= time.monotonic() - start < lease + 10
        else:
            with lock.output_lock(out, note=notes.append):
                took = time.monotonic() - start
                holder.send_signal(signal.SIGCONT)  # the lost run wakes up: it is told, and leaves our record alone
                said = holder.stdout.readline()
                assert "warning: the lock file of" in said and "another run may now be writing" in said, said
                holder.send_signal(signal.SIGINT)
                holder.wait(30)
                assert json.loads((out / ".manga2music.lock.json").read_text())["pid"] == os.getpid()
            assert lease <= took < lease + 10
        assert any("node-b" in n and "file locks" in n for n in notes), notes
    finally:
        holder.send_signal(signal.SIGCONT)
        kill(holder)
        holder.wait(30)
