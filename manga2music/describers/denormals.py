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
import functools
import platform
import sys
from typing import Iterator, NamedTuple, Optional

FTZ_DAZ = 0x8040  # MXCSR bit 15 (flush to zero) and bit 6 (denormals are zero)
_MASKS = 0x1F80  # MXCSR's exception masks, all set unless a program asked for floating-point traps
#: where the MXCSR copy lies in ``fenv_t``, and the struct's size: glibc/musl x86-64 (the x87 environment, 28
#: bytes, then mxcsr) and macOS x86-64 (control word, status word, mxcsr, 8 reserved bytes)
_LAYOUTS = {"linux": (28, 32), "darwin": (4, 16)}


class _Fenv(NamedTuple):
    libm: ctypes.CDLL
    offset: int  # of the MXCSR copy in fenv_t
    size: int  # of fenv_t

    def get(self) -> ctypes.Array:
        env = ctypes.create_string_buffer(self.size + 32)  # room to spare, whatever else the libc's fenv_t holds
        if self.libm.fegetenv(env) != 0:
            raise OSError("fegetenv failed")
        return env

    def mxcsr(self, env: ctypes.Array) -> Optional[int]:
        value = int.from_bytes(env.raw[self.offset:self.offset + 4], sys.byteorder)
        return value if value < 0x10000 and value & _MASKS == _MASKS else None


@functools.cache
def _fenv() -> Optional[_Fenv]:
    """The C maths library and ``fenv_t``'s layout, or None where this module does nothing."""
    layout = _LAYOUTS.get(sys.platform)
    if not layout or platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or ctypes.util.find_library("c"))  # glibc: in libm
        libm.fegetenv.argtypes = libm.fesetenv.argtypes = [ctypes.c_void_p]
        fenv = _Fenv(libm, *layout)
        return fenv if fenv.mxcsr(fenv.get()) is not None else None  # not the layout we expect: leave the CPU be
    except (OSError, AttributeError):
        return None


def supported() -> bool:
    """Whether :func:`flushed` can flush denormals on this machine (x86-64 Linux or macOS)."""
    return _fenv() is not None


def denormals_flushed() -> bool:
    """Whether the calling thread now treats denormal floats as zero (False where this module does nothing)."""
    fenv = _fenv()
    mxcsr = fenv.mxcsr(fenv.get()) if fenv else None
    return mxcsr is not None and mxcsr & FTZ_DAZ == FTZ_DAZ


@contextlib.contextmanager
def flushed() -> Iterator[None]:
    """Inside the block, the calling thread treats denormal floats as zero; afterwards, as before."""
    fenv = _fenv()
    before = fenv.get() if fenv else None
    mxcsr = fenv.mxcsr(before) if fenv else None
    if mxcsr is None or mxcsr & FTZ_DAZ == FTZ_DAZ:  # nothing to do here, or flushed already (by the caller)
        yield
        return
    env = ctypes.create_string_buffer(before.raw, len(before))
    env[fenv.offset:fenv.offset + 4] = (mxcsr | FTZ_DAZ).to_bytes(4, sys.byteorder)
    fenv.libm.fesetenv(env)
    try:
        yield
    finally:
        fenv.libm.fesetenv(before)
