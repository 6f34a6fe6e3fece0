"""A run spread over a Ray cluster (``--ray``): the same outputs and guarantees as a local run.

The process that runs the command (the *driver*) keeps everything that touches the
output folder: it takes the folder's lock, reads the pages, decides what needs doing
(fingerprints, ownership, resume) and writes every file through the same
:mod:`manga2music.pipeline` code as a local run.  Ray *workers* only compute: each is
an actor that holds one loaded describer or composer and answers model calls
(pages in, a :class:`~manga2music.analysis.DescribeResult` out; requests in, tracks
out).  So no worker ever races the lock, no shared file system is needed, and a
worker killed mid-section leaves nothing half-written: its section is tried again
on a fresh worker, or fails alone.

Modules: :mod:`.config` (the settings, and the one-line error without Ray),
:mod:`.cluster` (connecting, and how many workers of what size),
:mod:`.worker` (the actor), :mod:`.pool` (the driver's handle on a model's workers),
:mod:`.executor` (the driver loop).  Ray is imported only when ``--ray`` is used.
"""

from .config import ClusterError, RayConfig, require_ray

__all__ = ["RayConfig", "ClusterError", "require_ray"]
