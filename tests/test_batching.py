"""How many tracks one model call makes, and what running out of memory does (composers/batching.py).

The composers' own tests (test_musicgen.py, test_diffusion_composers.py) run these paths with real tiny models and
``--batch-size``; here the size taken from free memory, which those cannot set, is checked with the device's free
memory given."""

import pytest

pytest.importorskip("torch")

from manga2music.composers import batching  # noqa: E402
from manga2music.errors import BackendError  # noqa: E402

GB = 1024**3
CAPS = {"cpu": 8, "cuda": 32}


def _free(monkeypatch, free_bytes):
    import manga2music.devices

    monkeypatch.setattr(manga2music.devices, "free_memory_bytes", lambda device: free_bytes)


def test_the_batch_fits_in_six_tenths_of_free_memory_under_the_device_cap(monkeypatch):
    _free(monkeypatch, 10 * GB)  # 6 GB may be planned: 0.5 GB for the call, then 1 GB a track
    assert batching.batch_size("cpu", None, lambda: (GB, GB // 2), CAPS, 4) == 5
    assert batching.batch_size("cuda:1", None, lambda: (GB // 8, 0), CAPS, 4) == 32  # 48 fit; CUDA's cap is 32
    assert batching.batch_size("mps", None, lambda: (GB // 8, 0), CAPS, 4) == 4  # a kind not listed: the default cap
    assert batching.batch_size("cpu", None, lambda: (GB, GB // 2), CAPS, 4, lowered=2) == 2  # after running out
    assert batching.batch_size("cpu", None, lambda: (8 * GB, 0), CAPS, 4) == 1  # not even one fits: still one


def test_an_asked_batch_size_is_kept_and_unknown_free_memory_means_one(monkeypatch):
    def needs():
        raise AssertionError("the model's needs are not worked out when the size was asked for")

    _free(monkeypatch, 10 * GB)
    assert batching.batch_size("cpu", 3, needs, CAPS, 4) == 3
    assert batching.batch_size("cpu", 3, needs, CAPS, 4, lowered=2) == 2
    _free(monkeypatch, None)
    assert batching.batch_size("cuda", None, lambda: (1, 0), CAPS, 4) == 1


def _runner(fits: int, other_error_at: int | None = None):
    calls: list[list[int]] = []

    def compose(chunk: list[int]) -> list[str]:
        calls.append(chunk)
        if other_error_at in chunk:
            raise ValueError("a bad request")
        if len(chunk) > fits:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [f"track {j}" for j in chunk]

    return compose, calls


def test_out_of_memory_halves_the_chunk_and_every_track_comes_back_in_order():
    compose, calls = _runner(fits=2)
    halved: list[int] = []
    made = list(batching.in_batches([4, 5, 6, 7, 8], 5, compose, device="cpu", too_big=BackendError,
                                    halved=halved.append))
    assert made == [(j, f"track {j}") for j in (4, 5, 6, 7, 8)]
    assert calls == [[4, 5, 6, 7, 8], [4, 5], [6, 7], [8]]  # 5 did not fit, 2 did and stayed the size
    assert halved == [2]


def test_one_track_that_does_not_fit_raises_the_composers_error_and_other_errors_pass_through():
    compose, calls = _runner(fits=0)
    with pytest.raises(BackendError, match="one track: 3") as err:
        list(batching.in_batches([3, 9], 2, compose, device="cpu",
                                 too_big=lambda j: BackendError(f"one track: {j}"), halved=lambda size: None))
    assert calls == [[3, 9], [3]]
    assert "out of memory" in str(err.value.__cause__)
    compose, calls = _runner(fits=4, other_error_at=9)
    with pytest.raises(ValueError):
        list(batching.in_batches([3, 9], 2, compose, device="cpu", too_big=BackendError, halved=lambda size: None))
    assert calls == [[3, 9]]  # not retried: only running out of memory is


def test_what_counts_as_out_of_memory():
    import torch

    from manga2music.devices import is_out_of_memory

    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 8 GB)"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA error"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))  # not an allocator's error class


@pytest.mark.parametrize("device,emptied", [("cuda:1", ["cuda"]), ("cuda", ["cuda"]), ("mps", ["mps"]),
                                            ("cpu", []), (None, [])])
def test_released_memory_goes_back_to_the_devices_own_allocator(monkeypatch, device, emptied):
    """After running out of memory (composers and VLMs alike) and on close: the cache of the device the model is
    on is emptied, MPS's on a Mac as CUDA's on a card, and no other device's allocator is touched."""
    import torch

    import manga2music.devices as devices

    calls = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("cuda"))
    monkeypatch.setattr(torch.mps, "empty_cache", lambda: calls.append("mps"))
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    devices.release_memory(device)
    assert calls == emptied


def test_releasing_memory_never_imports_torch_on_the_way_out():
    """A Ctrl-C inside torch's first import (a local vision model starting: 4 to 7 s in, here) was followed by the
    describer's close, which imported torch again: torch's own errors ("function 'istft' already has a docstring",
    "duplicate registrations") were printed as a 150-line traceback over the stop, exit 1.  With no torch loaded
    there is nothing to give back, and it is not imported."""
    import subprocess
    import sys

    code = ("import sys; from manga2music.devices import release_memory; release_memory('cpu'); "
            "release_memory('cuda'); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stdout + result.stderr
