"""Tracks made several to a model call: how many fit the device, and what running out of memory does.

MusicGen (:mod:`.musicgen`) and the diffusers composers (:mod:`.diffusion`) make the
tracks of one length in shared calls.  The first batch is sized from the device's free
memory and the model's needs (``--batch-size`` overrides it, and a device kind's cap bounds
it).  When a call runs out of memory, what it held is freed and the same tracks are tried
again at half the batch, down to one track; a single track that does not fit is a
:class:`~manga2music.errors.BackendError` with the composer's hint.  The lowered size is
kept by the composer for its later calls (the ``halved`` callback), so the next section
does not run out of memory first.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional, Sequence, TypeVar

from ..devices import is_out_of_memory, release_memory

T = TypeVar("T")

#: the share of free memory a batch may plan to use (the rest: the allocator's slack, other tensors)
MEMORY_SHARE = 0.6


def batch_size(device: str, asked: Optional[int], needs: Callable[[], tuple[int, int]], caps: dict[str, int],
               default_cap: int, lowered: Optional[int] = None) -> int:
    """Tracks per call: ``asked`` when given, else as many as :data:`MEMORY_SHARE` of the free memory holds at
    ``needs()`` = (bytes per track, bytes once per call), at most ``caps[device kind]`` (``default_cap`` for a kind
    not listed), and at least one; never above ``lowered``, a size an out-of-memory retry came down to."""
    from ..devices import free_memory_bytes

    if asked:
        size = max(1, int(asked))
    else:
        free = free_memory_bytes(device)
        cap = caps.get(device.split(":")[0], default_cap)
        per_item, once = needs()
        size = max(1, min(cap, (int(free * MEMORY_SHARE) - once) // max(1, per_item))) if free else 1
    return min(size, lowered) if lowered else size


def in_batches(indices: Sequence[int], size: int, compose: Callable[[list[int]], list[T]], *, device: Optional[str],
               too_big: Callable[[int], Exception], halved: Callable[[int], None]) -> Iterator[tuple[int, T]]:
    """``(index, track)`` for every index, made ``size`` at a time by ``compose(chunk)`` (one track per index, in
    order).  Out of memory: memory is freed, ``halved(new_size)`` is told (to keep the size and rewind progress),
    and the same chunk is tried at half its size; with one track left, ``too_big(index)`` is raised.  Any other
    error is raised as it is."""
    i = 0
    while i < len(indices):
        chunk = list(indices[i:i + size])
        try:
            made = compose(chunk)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            release_memory(device)
            if len(chunk) == 1:
                raise too_big(chunk[0]) from exc
            size = max(1, len(chunk) // 2)
            halved(size)
            continue
        yield from zip(chunk, made)
        i += len(chunk)
