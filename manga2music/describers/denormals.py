"""Run the text models with denormal floats flushed to zero, as every GPU and most inference engines do.

PP-OCR's detector, run by onnxruntime on the thread that calls it (one intra-op
thread), meets denormal numbers (floats below 1.2e-38) in two of its 1x1
convolutions; an Intel CPU handles each such number in a slow microcode assist.
Measured on a 2-core Intel Xeon (Sapphire Rapids), one 736 x 512 page: 0.37 s as it
was, 0.09 s with the CPU told to treat denormals as zero (the same boxes; the
network's output was identical to the bit); an AMD EPYC ran it unflushed in 0.08 s.
onnxruntime's own ``session.set_denormal_as_zero`` reaches only its thread-pool
threads, not the caller's, so :func:`flushed` sets the two MXCSR bits (FTZ: flush
results, DAZ: read inputs as zero) on the calling thread for the duration of a
``with`` block and puts the thread's floating-point state back afterwards, so the
rest of the program (audio rendering, where a bit-exact track is a tested promise)
computes as before.

The state is read and written through the C maths library's ``fegetenv``/``fesetenv``
(C99, found with ctypes; nothing compiled here).  Only x86-64 Linux and macOS
are handled, where the position of the MXCSR copy in ``fenv_t`` is known (tested on
Linux; macOS's layout is taken from its ``<fenv.h>``, untested here), and only when the
value read there looks like an MXCSR; anywhere else (ARM, whose CPUs handle
denormals at full speed, Windows, an unknown libc) :func:`flushed` changes nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
import sys
import threading
from typing import Iterator, Optional

FTZ_DAZ = 0x8040  # MXCSR bit 15 (flush to zero) and bit 6 (denormals are zero)
_MASKS = 0x1F80  # MXCSR's exception masks, all set unless a program asked for floating-point traps
#: where the MXCSR copy lies in ``fenv_t``, and the struct's size: glibc/musl x86-64 (the x87 environment, 28
#: bytes, then mxcsr) and macOS x86-64 (control word, status word, mxcsr, 8 reserved bytes)
_LAYOUTS = {"linux": (28, 32), "darwin": (4, 16)}
_lock = threading.Lock()


class _State:
    libc: Optional[ctypes.CDLL] = None
    layout: Optional[tuple[int, int]] = None
    checked = False


def _libc() -> Optional[tuple[ctypes.CDLL, tuple[int, int]]]:
    """The C library and ``fenv_t``'s layout, or None where this module does nothing."""
    with _lock:
        if not _State.checked:
            _find_libc()
    return (_State.libc, _State.layout) if _State.libc is not None else None


def _find_libc() -> None:
    _State.checked = True
    layout = _LAYOUTS.get(sys.platform)
    if not layout or platform.machine().lower() not in ("x86_64", "amd64"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("m") or ctypes.util.find_library("c"))  # glibc: in libm
        libc.fegetenv.argtypes = libc.fesetenv.argtypes = [ctypes.c_void_p]
        _State.libc, _State.layout = libc, layout
        if _mxcsr_of(_get()) is None:  # not the layout we expect: leave the CPU alone
            _State.libc = None
    except (OSError, AttributeError):
        _State.libc = None


def _get() -> ctypes.Array:
    libc, (_, size) = _State.libc, _State.layout
    env = ctypes.create_string_buffer(size + 32)  # room to spare, whatever the libc's fenv_t holds beyond ours
    if libc.fegetenv(env) != 0:
        raise OSError("fegetenv failed")
    return env


def _mxcsr_of(env: ctypes.Array) -> Optional[int]:
    offset = _State.layout[0]
    value = int.from_bytes(env.raw[offset:offset + 4], sys.byteorder)
    return value if value < 0x10000 and value & _MASKS == _MASKS else None


def supported() -> bool:
    """Whether :func:`flushed` can flush denormals on this machine (x86-64 Linux or macOS)."""
    return _libc() is not None


def denormals_flushed() -> bool:
    """Whether the calling thread now treats denormal floats as zero (False where this module does nothing)."""
    if _libc() is None:
        return False
    mxcsr = _mxcsr_of(_get())
    return mxcsr is not None and mxcsr & FTZ_DAZ == FTZ_DAZ


@contextlib.contextmanager
def flushed() -> Iterator[None]:
    """Inside the block, the calling thread treats denormal floats as zero; afterwards, as before."""
    if _libc() is None:
        yield
        return
    before = _get()
    mxcsr = _mxcsr_of(before)
    if mxcsr is None or mxcsr & FTZ_DAZ == FTZ_DAZ:  # unexpected, or flushed already (by the caller)
        yield
        return
    offset = _State.layout[0]
    env = ctypes.create_string_buffer(before.raw, len(before))
    env[offset:offset + 4] = (mxcsr | FTZ_DAZ).to_bytes(4, sys.byteorder)
    _State.libc.fesetenv(env)
    try:
        yield
    finally:
        _State.libc.fesetenv(before)
