"""MusicGen-melody through transformers: text, and optionally a melody to follow.

Everything MusicGen does (exact lengths, 30 s windows continued on audio
codes, batches, the preallocated decoder cache, ``--loop``) comes from
:class:`~manga2music.composers.musicgen.MusicgenComposer`; this class loads
``MusicgenMelodyForConditionalGeneration`` instead and, when a request carries
``reference`` audio (a melody, a chapter theme), hands its chromagram to the
model, which then follows the reference's pitch classes frame by frame.  The
reference is brought to 32 kHz mono first and cut to 30 s; every window of a
long track hears the same reference.  Requests with different references
never share a batch.  The chromagram is computed by :mod:`.chroma` (the
transformers feature extractor needs torchaudio, which the pinned torch lacks).
"""

from __future__ import annotations

from .base import ComposeRequest
from .musicgen import MusicgenComposer


class _TextProcessor:
    """What MusicgenComposer asks of a processor (``tokenizer``, ``__call__(text=...)``), plus the chroma settings."""

    def __init__(self, tokenizer, features: dict):
        self.tokenizer = tokenizer
        self.features = features

    def __call__(self, text, **kwargs):
        return self.tokenizer(text, **kwargs)


class MusicgenMelodyComposer(MusicgenComposer):
    """Text (+ melody) to music with facebook/musicgen-melody or any MusicGen-melody checkpoint."""

    backend = "musicgen-melody"
    model_class = "MusicgenMelodyForConditionalGeneration"
    continues = False  # its decoder takes the melody as a prefix: carrying audio on is not wired up here

    def _load_processor(self, common: dict):
        from transformers import AutoTokenizer, FeatureExtractionMixin

        features, _ = FeatureExtractionMixin.get_feature_extractor_dict(self.model_id, **common)
        return _TextProcessor(AutoTokenizer.from_pretrained(self.model_id, **common), features)

    def _batch_key(self, request: ComposeRequest):
        from .reference import reference_key

        # the melody's chroma is put before the text's encoding, padding included: a description padded to a
        # longer neighbour's length made other music, so its recorded seed did not give it back alone.  Only
        # descriptions of the same token count share a call (nothing is padded), as in ACE-Step
        tokens = len(self._processor.tokenizer(request.text)["input_ids"])
        return reference_key(request), min(tokens, self._text_token_limit())

    def _encode_inputs(self, reqs: list[ComposeRequest]) -> tuple[dict, list[list[str]]]:
        inputs, warnings = self._encode_texts([r.text for r in reqs])
        if reqs[0].reference is None:
            return inputs, warnings
        from .chroma import melody_chroma
        from .reference import reference_for

        features = self._processor.features
        melody = reference_for(reqs[0], int(features.get("sampling_rate", 32000)), 1)[0]  # mono
        chroma = melody_chroma(melody, features).expand(len(reqs), -1, -1)
        inputs["input_features"] = chroma.to(self._device, dtype=self._dtype)
        return inputs, warnings
