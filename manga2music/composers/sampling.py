"""Sampling MusicGen's codes with one random generator per track, so a batch never changes a track.

transformers samples a whole batch from torch's one global generator: the
codes a track gets depend on which other tracks share its batch, and its
recorded seed alone cannot make it again.  :class:`PerTrackSampler` is a logits
processor that does the sampling itself, after classifier-free guidance, with
the same temperature / top-k / top-p rules as transformers' warpers, drawing
each track's rows from that track's own ``torch.Generator`` seeded with its
seed.  It returns scores in which only the drawn token is finite, and the
model's ``generate`` runs greedy (``do_sample=False``), so greedy search takes
exactly the drawn token.

:func:`sampling_kwargs` builds the ``generate`` arguments.  MusicGen appends
its guidance processor to the list it is given; :class:`_SamplerStaysLast`
keeps our sampler after it.
"""

from __future__ import annotations


def _processor_classes():
    from transformers import LogitsProcessor, LogitsProcessorList

    class PerTrackSampler(LogitsProcessor):
        """Draw each track's codes from its own generator (rows ``t * R .. t * R + R - 1`` are track ``t``)."""

        def __init__(self, seeds: list[int], rows_per_track: int, *, temperature: float, top_k: int, top_p: float,
                     device):
            import torch

            self.generators = [torch.Generator(device=device).manual_seed(int(s) % 2**63) for s in seeds]
            self.rows = int(rows_per_track)
            self.temperature = float(temperature)
            self.top_k = int(top_k)
            self.top_p = float(top_p)

        def __call__(self, input_ids, scores):
            import torch

            x = scores.float() / max(self.temperature, 1e-6)
            if self.top_k > 0:
                k = min(self.top_k, x.shape[-1])
                kth = torch.topk(x, k, dim=-1).values[..., -1:]
                x = x.masked_fill(x < kth, float("-inf"))
            if 0.0 < self.top_p < 1.0:  # nucleus: keep the smallest set whose probability passes top_p
                ordered, order = torch.sort(x, descending=False, dim=-1)
                cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
                drop = cumulative <= (1.0 - self.top_p)
                drop[..., -1:] = False
                x = x.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
            probs = x.softmax(dim=-1)
            if probs.shape[0] != self.rows * len(self.generators):
                raise RuntimeError(f"sampler expected {self.rows * len(self.generators)} rows, got {probs.shape[0]}")
            chosen = torch.empty(probs.shape[0], dtype=torch.long, device=probs.device)
            for t, generator in enumerate(self.generators):
                rows = slice(t * self.rows, (t + 1) * self.rows)
                chosen[rows] = torch.multinomial(probs[rows], 1, generator=generator).squeeze(1)
            out = torch.full_like(scores, float("-inf"))
            return out.scatter_(1, chosen[:, None], 0.0)

    class _SamplerStaysLast(LogitsProcessorList):
        """A processor list in which anything appended later still runs before the sampler.

        The same list serves every window of a long track, and MusicGen appends its guidance
        processor on each ``generate`` call: a processor of a type already in the list replaces it.
        """

        def append(self, item):  # noqa: D401 - list API
            for i, present in enumerate(self):
                if type(present) is type(item):
                    self[i] = item
                    return
            if len(self) and isinstance(self[-1], PerTrackSampler):
                self.insert(len(self) - 1, item)
            else:
                super().append(item)

    return PerTrackSampler, _SamplerStaysLast


def sampling_kwargs(seeds: list[int], rows_per_track: int, *, temperature: float, top_k: int, top_p: float,
                    guidance_scale: float, device) -> dict:
    """``generate`` keyword arguments: per-track sampling when ``temperature > 0``, greedy otherwise.

    audiocraft's rule for top-k/top-p is kept: ``top_p`` in (0, 1) means nucleus sampling instead of top-k.
    """
    kwargs = {"do_sample": False, "guidance_scale": float(guidance_scale)}
    if temperature > 0:
        PerTrackSampler, SamplerList = _processor_classes()
        nucleus = 0.0 < top_p < 1.0
        sampler = PerTrackSampler(seeds, rows_per_track, temperature=temperature, top_k=0 if nucleus else top_k,
                                  top_p=top_p if nucleus else 1.0, device=device)
        kwargs["logits_processor"] = SamplerList([sampler])
    return kwargs
