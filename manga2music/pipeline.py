"""describe -> compose for many sections: the stages a run goes through, in order.

No typer, no rich: the CLI and notebooks drive this through :mod:`manga2music.api`,
which resolves the models (:mod:`manga2music.backends`) and holds the output
folder's lock around these stages.

1. :func:`manga2music.describing.describe_sections`: one :class:`~manga2music.jobs.SectionJob`
   per section, described (or reused), record written; the describer is closed after.
2. :func:`manga2music.composing.compose_jobs`: every job with a description gets its tracks.

Each stage is split at the model call, so another executor (:mod:`manga2music.distributed`, ``--ray``) can
run the call elsewhere and still write through the same code: :func:`plan_describe` -> ``describer.describe``
-> :func:`commit_describe`, and :func:`compose_requests` -> ``composer.compose`` -> :func:`write_group`
(or :func:`fail_group`).  :mod:`manga2music.execution` picks the executor.
3. :func:`manga2music.jobs.manifest_entry` per job, merged into ``manifest.json`` by the API.

* One bad page never kills a section, and **any** failure inside a section (ours,
  a library's ``ValueError``, an ``OSError`` while writing) fails that section
  alone (:func:`~manga2music.jobs.guarded`).  Only errors that no section could
  escape (``stops_run``: a full disk, a rejected API key) stop the run; the API
  still writes the manifest of what is done.
* Every file goes through :func:`manga2music.outputs.commit`, so a kill at any
  moment is finished by a plain rerun and never makes our files look like the user's.
"""

from __future__ import annotations

from .composing import (  # noqa: F401
    COMPOSE_GROUP,
    compose_jobs,
    compose_requests,
    fail_group,
    group_size,
    music_key,
    plan_compose,
    take_group,
    write_group,
    write_tracks,
)
from .describing import (  # noqa: F401
    DescribeWork,
    commit_describe,
    describe_section,
    describe_sections,
    page_payload,
    plan_describe,
)
from .jobs import Callbacks, SectionJob, guarded, manifest_entry, read_description, start_job  # noqa: F401
from .options import RunConfig  # noqa: F401
