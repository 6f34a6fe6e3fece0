"""From what the user typed to a ready describer or composer: resolve, check the options, preflight.

One :class:`Machine` per run holds the hardware report (probed at most once, and
only when a model needs weights or ``auto`` must choose), so ``auto`` and every
preflight look at the same facts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Optional

from .errors import InputError
from .options import RunConfig, make_options, unused_flags
from .registry import ModelSpec, Side, load_backend_class, resolve


@dataclass
class Machine:
    """This machine, probed lazily once per run (``hardware.collect`` walks the cache and runs nvidia-smi)."""

    offline: Optional[bool] = None  # None: HF_HUB_OFFLINE decides
    _report: object = field(default=None, repr=False)

    @property
    def report(self):
        if self._report is None:
            from .hardware import collect

            self._report = collect(offline=self.offline, check_hub=False)
        return self._report


def pick_spec(name: str, side: Side, cfg: RunConfig, machine: Machine,
              info: Callable[[str], None] = lambda message: None) -> ModelSpec:
    """The model ``name`` means on ``side``: ``auto`` through the tier rules, anything else through the registry."""
    from . import tiers

    if name == "auto":
        spec, reason = tiers.resolve_auto(side, probe=machine.report)
        info(f"{side} model: {spec.name} ({reason})")
        return spec
    base_url = cfg.vision_options.get("base_url") or os.environ.get("OPENAI_BASE_URL") or None
    return resolve(name, side, base_url=base_url if side == "vision" else None)


def build(name: str, side: Side, cfg: RunConfig, machine: Machine, *, info=lambda m: None, warn=lambda m: None,
          preflight: bool = True):
    """A describer (``side="vision"``) or composer (``"music"``) ready to work: options checked, preflight done
    (``preflight=False``: not here, because the model runs on other machines, which preflight it themselves)."""
    from . import tiers

    spec = pick_spec(name, side, cfg, machine, info)
    cls = load_backend_class(spec.backend)
    options = make_options(cls.Options, cfg.side_options(side, cls.Options), model=spec.name, side=side,
                           run_wide=cfg.run_wide)
    if spec.needs_weights and preflight:
        for message in tiers.preflight(spec, device=getattr(options, "device", "auto"), probe=machine.report):
            warn(message)
    backend = cls(spec, options)
    if side == "music":
        limit = float(getattr(backend, "max_duration", cfg.duration))
        if cfg.duration > limit:
            raise InputError(f"--duration {cfg.duration:g} is more than {spec.name} makes in one track ({limit:g} s)",
                             hint="choose a shorter --duration")
    if preflight:
        backend.preflight()
    return backend


def check_shared_flags(cfg: RunConfig, *backends) -> None:
    """A flag given for "whichever model takes it" (``run --device``) that no chosen model takes is an error."""
    unused = unused_flags(cfg.options, *(type(b).Options for b in backends))
    if unused:
        names = " and ".join(f"{b.model_name} ({'vision' if hasattr(b, 'describe') else 'music'})" for b in backends)
        flags = ", ".join("--" + u.replace("_", "-") for u in unused)
        raise InputError(f"{flags} does not apply to the chosen models: {names}",
                         hint="drop it, or choose a model that runs on this machine's torch (`manga2music models list`)")
