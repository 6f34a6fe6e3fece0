"""Optional backend: Meta's audiocraft package (``--music-model audiocraft:facebook/musicgen-small``).

audiocraft is not a dependency of manga2music (it pins its own torch); the
transformers backend (``musicgen.py``) is the supported way to run MusicGen.
This class only exists for users who already have audiocraft installed.  It
is not exercised by the test suite, which runs without audiocraft.
"""

from __future__ import annotations

from ..errors import ModelUnavailableError
from ..options import TorchOptions
from ..progress import ProgressFn, report
from .base import Composer, ComposeRequest, MadeFn, Track
from .musicgen import SamplingOptions


def _require_audiocraft():
    try:
        from audiocraft.models import MusicGen
    except ImportError as exc:
        raise ModelUnavailableError(
            "the audiocraft backend needs the audiocraft package, which is not installed",
            hint="pip install audiocraft (it pins its own torch), or use the built-in transformers "
                 "backend: --music-model musicgen-small.",
        ) from exc
    return MusicGen


class AudiocraftComposer(Composer):
    """MusicGen through audiocraft: its own windowing (extend_stride 18 s) and sampling."""

    backend = "audiocraft"

    class Options(Composer.Options, SamplingOptions, TorchOptions):
        pass

    def preflight(self) -> None:
        _require_audiocraft()

    def compose(self, requests: list[ComposeRequest], *, progress: ProgressFn | None = None,
                made: MadeFn | None = None) -> list[Track]:
        MusicGen = _require_audiocraft()
        from ..devices import pick_device, seeded

        o = self.options
        if getattr(self, "_model", None) is None:
            self._model = MusicGen.get_pretrained(self.model_id, device=pick_device(o.device))
        model = self._model
        tracks: list[Track] = []
        for i, r in enumerate(requests):  # one at a time: audiocraft batches only equal prompts cleanly
            model.set_generation_params(duration=r.duration, top_k=o.top_k, top_p=o.top_p,
                                        temperature=o.temperature, cfg_coef=o.guidance_scale, extend_stride=18)
            model.set_custom_progress_callback(lambda done, total, i=i: report(progress, done, total, requests[i].name))
            with seeded(r.seed):
                wav = model.generate([r.text], progress=False)[0]  # (channels, samples)
            audio = wav.float().cpu().numpy().T[: int(round(r.duration * model.sample_rate))]
            tracks.append(Track(audio.copy(), int(model.sample_rate), info={"backend": "audiocraft", "seed": r.seed}))
            if made is not None:
                made(i, tracks[-1])
        return tracks

    def close(self) -> None:
        self._model = None
