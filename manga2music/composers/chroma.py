"""The chromagram MusicGen-melody is conditioned on, computed with torch alone.

transformers' ``MusicgenMelodyFeatureExtractor`` takes its spectrogram from
torchaudio, which has no build for the torch this project pins, so this module
computes the same features from the checkpoint's ``preprocessor_config.json``:
a power spectrogram (Hann window of ``n_fft``, hop ``hop_length``, centred,
reflect-padded, normalised by the window's energy, as torchaudio's
``Spectrogram(normalized=True)``), folded into ``num_chroma`` pitch classes by
transformers' own ``chroma_filter_bank``, then one-hot on the strongest pitch
class of each frame.  Audio is cut to ``chunk_length`` seconds.
"""

from __future__ import annotations

import numpy as np


def melody_chroma(audio: np.ndarray, config: dict):
    """``audio`` float mono at ``config["sampling_rate"]`` -> float32 tensor ``(1, frames, num_chroma)``."""
    import torch
    from transformers.audio_utils import chroma_filter_bank

    rate = int(config.get("sampling_rate", 32000))
    n_fft = int(config.get("n_fft", 16384))
    hop = int(config.get("hop_length", 4096))
    chroma = int(config.get("num_chroma", 12))
    limit = int(config.get("chunk_length", 30)) * rate
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32)[:limit])
    if x.shape[-1] < n_fft:  # as the extractor does: centre short audio in zeros
        pad = n_fft - x.shape[-1]
        x = torch.nn.functional.pad(x, (pad // 2, pad - pad // 2))
    window = torch.hann_window(n_fft)
    spec = torch.stft(x, n_fft, hop_length=hop, win_length=n_fft, window=window, center=True, pad_mode="reflect",
                      normalized=False, onesided=True, return_complex=True)
    power = (spec / window.pow(2).sum().sqrt()).abs().pow(2)
    filters = torch.from_numpy(chroma_filter_bank(sampling_rate=rate, num_frequency_bins=n_fft, tuning=0,
                                                  num_chroma=chroma)).float()
    raw = torch.einsum("cf,ft->ct", filters, power)
    norm = torch.nn.functional.normalize(raw, p=float("inf"), dim=0, eps=1e-6).T  # (frames, chroma)
    onehot = torch.zeros_like(norm)
    onehot.scatter_(-1, norm.argmax(-1, keepdim=True), 1.0)
    return onehot[None]
