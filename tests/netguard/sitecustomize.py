"""Loaded by every Python process whose PYTHONPATH starts with this folder: no network except loopback.

Any connection or name lookup for a host that is not this machine is written to
``$NETGUARD_LOG`` and refused, so a test can assert that a command never tried.
"""

import ipaddress
import os
import socket

_LOG = os.environ.get("NETGUARD_LOG")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]")
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str, target) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(f"{what} {target!r} pid={os.getpid()}\n")
    raise OSError(101, f"netguard: network access to {target!r} refused in this test")


_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def getaddrinfo(host, *args, **kwargs):
    if not _is_local(host):
        _refuse("getaddrinfo", host)
    return _real_getaddrinfo(host, *args, **kwargs)


def _target_host(address):
    if isinstance(address, tuple) and address:
        return address[0]
    return None  # AF_UNIX paths are local


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(_target_host(address)):
        _refuse("connect", address)
    return _real_connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(_target_host(address)):
        _refuse("connect", address)
    return _real_connect_ex(self, address)


socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect
socket.socket.connect_ex = connect_ex


# The disk as the test says: with FAKE_DISK_FREE_GB set, every disk in this process has that much free,
# so what `auto` picks and what a download is allowed does not depend on the test machine's disk.
_FAKE_FREE = os.environ.get("FAKE_DISK_FREE_GB")
if _FAKE_FREE:
    import shutil

    _real_disk_usage = shutil.disk_usage

    def disk_usage(path):
        real = _real_disk_usage(path)
        free = int(float(_FAKE_FREE) * 1024**3)
        return type(real)(max(real.total, free), max(real.total, free) - free, free)

    shutil.disk_usage = disk_usage
