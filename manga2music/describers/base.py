"""The interface every describer implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ..analysis import DescribeResult
from ..options import BackendOptions, make_options
from ..progress import ProgressFn

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from ..registry import ModelSpec


@dataclass
class PageImage:
    """One page (or one tile of a tall strip) ready for a model: an RGB PIL image."""

    name: str  # e.g. "003.png" or "strip.png#2" for the second tile
    image: "Image"
    format: str = "PNG"  # the source format (JPEG, PNG, WEBP...), for MIME types
    #: what identifies these pixels (the page's hash, its tile, the side it was decoded at): a chat model's answer
    #: about them is kept under it (:mod:`manga2music.answer_memo`); "" (pages given without one): never kept
    key: str = ""


class Describer(ABC):
    """Turns a section's pages into a :class:`DescribeResult`.

    Backends are built once per run (``__init__`` may load weights lazily) and
    reused for every section; ``close()`` releases memory before a composer loads.
    """

    class Options(BackendOptions):
        """What a describer can be told; each backend's subclass adds its own fields (unknown ones are refused)."""

    #: True when stage 1 (the JSON analysis) exists, so --save-artifact has something to save
    two_stage: bool = True
    #: the long side, in pixels, of the pages this describer looks at: pages are decoded straight to it
    #: (None: full size).  Pages arrive one at a time (``pages`` may be a one-pass stream with a ``len``).
    page_side: Optional[int] = None
    #: what ``spec`` means when none is given
    default_model: str = "builtin"
    #: this class's key in :data:`manga2music.registry.BACKENDS`
    backend: str = ""
    #: a chat model (``_complete`` answers a prompt with images): ``score`` asks it for one entry per page
    chats: bool = False
    #: its warnings that every section of a run would give alike (said once a run; each record keeps them)
    run_wide_warnings: tuple[str, ...] = ()

    def __init__(self, spec: "ModelSpec | str | None" = None, options: "BackendOptions | dict | None" = None):
        from ..registry import as_spec

        #: the resolved model (:func:`manga2music.registry.resolve`): every backend receives one
        self.spec = as_spec(spec or self.default_model, "vision", self.backend)
        #: the checkpoint, API model name or folder the backend loads
        self.model_id = self.spec.model_id or self.spec.name
        #: the name the user chose, recorded in manifests, records and tags (e.g. "llava-0.5b")
        self.model_name = self.spec.name
        if not isinstance(options, self.Options):
            options = make_options(self.Options, dict(options or {}), model=self.model_name, side="vision")
        self.options = options

    def preflight(self) -> None:
        """Fail fast (raise a Manga2MusicError) before any section is read, e.g. a missing key."""

    @abstractmethod
    def describe(self, pages: list[PageImage], *, progress: ProgressFn | None = None) -> DescribeResult:
        """Describe one section.  Raise ``BackendError`` to fail just this section."""

    def settings_key(self) -> dict:
        """Settings that change the output; a change re-describes on the next run."""
        from ..registry import model_identity, weights_stamp

        return {**model_identity(self), **weights_stamp(self)}

    def revision(self) -> Optional[str]:
        """The Hub commit whose weights make the descriptions (recorded, not compared): see
        :func:`~manga2music.cache.hub_revision`."""
        from ..cache import hub_revision

        return hub_revision(self.spec)

    def close(self) -> None:
        """Release models and memory."""
