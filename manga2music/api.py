"""The Python API: ``run``, ``describe`` and ``compose``.

Each returns the manifest (a dict, also written to ``OUTPUT/manifest.json``).
Sections that fail are listed with ``status: "failed"`` and a message; the
call itself raises only for problems that stop everything (bad PATH, unknown
model, missing key, weights not obtainable, the output folder busy or not
writable, a full disk).  A run-stopping error mid-run still writes the manifest
of what was done before it is raised.

Order of a call: check the values (before anything touches the disk), find the
sections, resolve and preflight the models, then take the output folder's lock,
remove stale temporary files of an interrupted run, refuse to replace a
``manifest.json``/``index.html`` we did not write, and do the work.  Where the
model calls run is the executor's business (:mod:`manga2music.execution`): in this
process, or on a Ray cluster with ``config.ray``; the files are always written here.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Optional, Sequence

from .audio import AUDIO_FORMATS, DEFAULT_FORMAT
from .backends import check_named, check_shared_flags, not_used_by_auto
from .errors import InputError, Manga2MusicError
from .execution import open_executor
from .files import from_current_folder, place_from_output, readable, remove_stale_temps
from .jobs import TEXT_GIVEN, Callbacks, SectionJob, failed_line, manifest_entry, read_description, start_job
from .options import READING_SPEEDS, SCENES_FOUND, RunConfig, flag, on_command_line, switch
from .output_names import claim_names
from .outputs import check_output_is_ours, has_our_page, merged_manifest, stopped_for, write_manifest
from .progress import report
from .sections import find_sections, is_hidden, is_image_name, natural_key, unique_names
from .wording import first_few

#: the longest track any composer is asked for, in seconds (each composer may allow less: ``max_duration``)
MAX_DURATION = 1800.0
#: the shortest: a few milliseconds made 0-frame WAVs and an Opus file no player opens, all called "ok"
MIN_DURATION = 0.1
#: the largest --seed: every composer and describer takes it as it is (the builtin composer folded larger ones, so
#: two recorded seeds made the same music; torch refuses 2**64), and so do a run's seed + take and seed + scene
MAX_SEED = 2**32 - 1
#: while a command runs, manifest.json and the listening page are brought up to date as sections finish, at most
#: once every this many seconds (see _ManifestUpdates)
UPDATE_AFTER_S = 5.0
#: ... and on a long manifest, only once the time since the last write is this many times what that write took
UPDATE_COST_FACTOR = 20


def check_config(cfg: RunConfig, *, composing: bool, uses_duration: bool = True) -> None:
    """The run's own values, checked before anything touches the disk (backend options: see build).  A numpy number
    is a number, made a plain one here (``cfg`` is the run's own copy), so that records hold plain numbers."""
    import numbers

    if cfg.ray is not None:
        cfg.ray.check()  # includes: is Ray installed
    if cfg.seed is not None and (isinstance(cfg.seed, bool) or not isinstance(cfg.seed, numbers.Integral)):
        raise InputError(f"the seed must be a whole number (got {cfg.seed!r}, a {type(cfg.seed).__name__})")
    _as_plain_number(cfg, "seed", int)
    if cfg.seed is not None and not 0 <= cfg.seed <= MAX_SEED:  # a seed a composer would fold into another
        raise InputError(f"the seed must be a whole number from 0 to {MAX_SEED} (got {cfg.seed})",
                         hint=f"leave {flag('seed')} out for a random one (it is recorded)" if on_command_line()
                         else "set seed=None for a random one (it is recorded)")
    as_made = ("normalize", "loop")  # None: as the music there was made (keep_switches)
    for name in ("normalize", "force", "loop", "save_artifact", "offline", "commercial"):  # the yes/no settings
        value = getattr(cfg, name)
        if value is None and name in as_made:
            continue
        if _numpy_bool(value):  # a yes or no all the same
            setattr(cfg, name, value := bool(value))
        if not isinstance(value, bool):  # normalize="false" would normalize (a non-empty string is true)
            kind = type(value).__name__
            either = "True, False or None (as the music there was made)" if name in as_made else "True or False"
            raise InputError(f"{name} must be {either} (got {value!r}, {'an' if kind[0] in 'aeiou' else 'a'} "
                             f"{kind})")
    if cfg.auto_download is not None and not isinstance(cfg.auto_download, bool) and not callable(
            cfg.auto_download):  # auto_download=1 or "yes" meant no, with a note saying to pass --download
        if _numpy_bool(cfg.auto_download):
            cfg.auto_download = bool(cfg.auto_download)
        else:
            raise InputError(f"auto_download must be True, False, None (ask, or as remembered) or a function that "
                             f"answers (got {cfg.auto_download!r})")
    if not isinstance(cfg.wait, (bool, numbers.Real)) or (not isinstance(cfg.wait, bool) and
                                                          not (math.isfinite(cfg.wait) and cfg.wait >= 0)):
        raise InputError(f"wait must be True, False or a number of seconds (got {cfg.wait!r})")
    if cfg.output.exists() and not cfg.output.is_dir():  # before any model loads (the lock says it again)
        from .lock import not_a_folder

        raise not_a_folder(cfg.output)
    if not composing:
        return
    if isinstance(cfg.fmt, str):  # as --format takes it: "FLAC", ".flac"
        cfg.fmt = cfg.fmt.strip().lower().lstrip(".")
    if cfg.fmt is not None and cfg.fmt not in AUDIO_FORMATS:
        raise InputError(f"unknown audio format {cfg.fmt!r}; choose one of: {', '.join(AUDIO_FORMATS)}")
    for name in ("variations", "new_variations"):  # new_*: what a stopped run asked, for the sections it did not
        # compose (keep_lengths), or a program's own: checked as the others
        _as_plain_number(cfg, name, int)
        v = getattr(cfg, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 100):
            kind = "a whole number " if isinstance(v, float) else ""
            of = "" if isinstance(v, (int, float)) and not isinstance(v, bool) else f", a {type(v).__name__}"
            raise InputError(f"{flag(name)} must be {kind}between 1 and 100 (got {v!r}{of})")
    if not uses_duration:  # score: each cue is as long as its scene takes to read
        return
    for name in ("duration", "new_duration"):  # None: each section's length made before, or the default
        if getattr(cfg, name) is not None:  # (composing.track_seconds)
            _check_duration(cfg, name)


def _numpy_bool(value) -> bool:
    """Whether ``value`` is numpy's bool (its type is named ``bool`` since numpy 2, ``bool_`` before)."""
    return type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool")


def _check_duration(cfg: RunConfig, name: str) -> None:
    import numbers

    _as_plain_number(cfg, name, float)
    d = getattr(cfg, name)
    if isinstance(d, bool) or not isinstance(d, numbers.Real):
        raise InputError(f"{flag(name)} must be a number of seconds (got {d!r}, a {type(d).__name__})")
    if not math.isfinite(d) or d <= 0:
        raise InputError(f"{flag(name)} must be a number of seconds above 0 (got {d})")
    if d < MIN_DURATION:
        raise InputError(f"{flag(name, float(d))} is shorter than the {MIN_DURATION:g} s a track lasts at least")
    if d > MAX_DURATION:
        raise InputError(f"{flag(name, float(d))} is more than the {MAX_DURATION:g} s (30 minutes) a track "
                         "may last",
                         hint="for music as long as a chapter takes to read, score it ("
                              + ("`manga2music score`" if on_command_line() else "score()")
                              + ": its cues loop past a composer's limit); each composer's limit is in the README")


def _as_plain_number(cfg: RunConfig, name: str, kind: type[int] | type[float]) -> None:
    """A numpy number given for ``name`` is a number: made the plain ``kind`` here, so that records hold plain
    numbers, and a whole number given for a float is that float (a program's ``duration=4`` and the command line's
    ``--duration 4`` made two settings, each composing the other's music again "as its description changed");
    anything else is left as it is, for the checks to refuse."""
    import numbers

    value = getattr(cfg, name)
    wanted = numbers.Integral if kind is int else numbers.Real
    if isinstance(value, wanted) and not isinstance(value, bool) and type(value) is not kind:
        setattr(cfg, name, kind(value))


def _builders(cfg: RunConfig, cb: Callbacks, executor, kept: Sequence[str] = (), **models: str):
    """``make(name, side)``; ``models`` (side -> name) lets the ``auto`` sides be decided together; ``kept``: the
    sides whose model was left out and kept as the output folder's sections were made (see :func:`keep_models`)."""
    from .backends import Machine, build

    machine = Machine(offline=True if cfg.offline else None,
                      auto_sides=tuple(side for side, name in models.items() if name == "auto"))

    def make(name: str, side: str):
        return build(executor.resolve(name, side), side, cfg, machine, info=cb.info, warn=cb.warn,
                     preflight=executor.preflight_here, both_sides=len(models) == 2, kept=side in kept,
                     auto=name == "auto")

    return make


def _claim_names(sections: list, cfg: RunConfig, cb: Callbacks) -> None:
    """Each section's output name (:func:`~manga2music.output_names.claim_names`), and no folder inside the output
    folder that another run going on writes among the folders they go into (refused, or waited for with --wait)."""
    claim_names(sections, cfg.output, cb.info)
    _refuse_busy_folders_of([s.name for s in sections if not s.error], cfg, cb)


def _names_as_claimed(sections: list, cfg: RunConfig) -> list[str]:
    """The output names the sections will take (:func:`_claim_names`, under the lock, says and takes them), for what
    is decided before: a chapter renamed since a stop keeps its files' name, and what the stop asked is its too (it
    was "not in that run, as any new chapter", made as a 10 s WAV among the stop's FLACs)."""
    import copy

    trial = [copy.copy(s) for s in sections if not s.error]
    try:
        claim_names(trial, cfg.output)
    except Exception:  # noqa: BLE001 - a folder that cannot be read: said when the names are claimed
        return [s.name for s in sections if not s.error]
    return [s.name for s in trial]


def _refuse_busy_folders_of(names: Iterable[str], cfg: RunConfig, cb: Callbacks) -> None:
    """:func:`~manga2music.lock.refuse_busy_folders_within` for the folders the sections ``names`` go into."""
    from .lock import refuse_busy_folders_within

    refuse_busy_folders_within(cfg.output, {(cfg.output / name).parent for name in names}, wait=cfg.wait,
                               note=cb.info)


@contextmanager
def _holding(cfg: RunConfig, command: str, *, page: bool, cb: Callbacks) -> Iterator[None]:
    from .lock import output_lock
    from .other_archives import unpacked_for_a_run

    def waiting() -> None:  # a host program may cancel the wait by raising from its callback (report() would
        # swallow what it raises: the wait went on)
        if cb.step is not None:
            cb.step(0, 0, "waiting for another run of this output folder")

    with output_lock(cfg.output, wait=cfg.wait, command=command, note=cb.info, waiting=waiting), \
            unpacked_for_a_run():
        removed = remove_stale_temps(cfg.output)
        if removed:
            cb.info(f"removed {len(removed)} temporary file(s) left by an interrupted run")
        check_output_is_ours(cfg.output, page=page)
        try:
            yield
        finally:
            from .pages import forget_shared_file

            forget_shared_file()  # a multi-page TIFF's bytes, kept for its pages: not past the command


def _finish(jobs: list[SectionJob], cfg: RunConfig, command: str, vision: Optional[str], music: Optional[str],
            page: bool, stopped: bool = False, left: Sequence[str] = (), running: bool = False) -> dict:
    """Write the manifest (and the listening page) of ``jobs``.  ``stopped``: True where a stop cut the run short,
    whose settings asked for are kept in the manifest (``stopped_with``, ``score_stopped_with``) for the sections
    it did not make (``left``), until they are made (:func:`resume_stopped`, :func:`keep_lengths`,
    :func:`manga2music.scoring.not_started`); the writes while the run goes on (``running``) keep them too (a run
    killed without warning is resumed as one stopped)."""
    entries = [manifest_entry(j, cfg.output, vision, music, command) for j in jobs]
    old, manifest = merged_manifest(cfg.output, entries, command=command)
    _keep_what_was_asked(old, manifest, cfg, command, vision, music, stopped, [j.name for j in jobs] + list(left),
                         left, running=running)
    html = None
    if page or has_our_page(cfg.output, old):  # describe and compose keep a page that is there up to date
        from .listening_page import render_listening_page

        html = render_listening_page(cfg.output, manifest)
    return write_manifest(cfg.output, old, manifest, html)


def _keep_what_was_asked(old: dict, manifest: dict, cfg: RunConfig, command: str, vision: Optional[str],
                         music: Optional[str], stopped: bool, this_run: list[str], left: Sequence[str],
                         running: bool = False) -> None:
    """The manifest's ``stopped_with`` (``run``, ``compose``) or ``score_stopped_with`` (``score``) after this
    command (:func:`_keep_what_a_stop_asked`): what it was asked, where it is ``stopped`` (or still ``running``)
    with the sections ``left`` to make."""
    mine = f"{os.getpid()}:{id(cfg)}"  # this command's writes (one RunConfig from its start to its end)
    asked = {k: getattr(cfg, k) for k in (*LENGTHS, *RESUMED) if getattr(cfg, k) is not None}
    if music:  # the models a plain rerun resumes with (keep_models), and the server of the words
        asked["music_model"] = music
    if vision:
        from .settings import shown_url

        asked["vision_model"] = vision
        url = cfg.vision_options.get("base_url") or os.environ.get("OPENAI_BASE_URL")
        if url:
            asked["base_url"] = shown_url(url.rstrip("/"))
        for key in KEPT_READING_SETTINGS:  # how its pages are read, kept with the model (_keep_reading_settings)
            value = cfg.vision_options.get(key, cfg.options.get(key))
            if value is not None:
                asked[key] = value
    if command in ("run", "compose"):  # describe and score make no track: what a stop
        # asked for stays
        _keep_what_a_stop_asked(old, manifest, "stopped_with", "sections", asked if stopped else {}, this_run, left,
                                mine if running else None, mine, own_only=bool(cfg.stopped_sections))
    if command in ("describe", "score"):  # the sections a stopped describe or score did not read are read with the
        # model (and server) it was asked for (_stopped_with_models): a plain rerun read them with what auto picks.
        # Apart from a score's other settings, which another score's stop would have taken for its own chapters
        reading = {k: asked[k] for k in ("vision_model", "base_url", *KEPT_READING_SETTINGS) if k in asked}
        _keep_what_a_stop_asked(old, manifest, READING_STOPPED_WITH[command], "sections", reading if stopped else {},
                                this_run, left, mine if running else None, mine)
    if command == "score":  # the chapters a stopped score did not start are made with
        # what it was asked (scoring.not_started): a plain rerun made them at the usual pace, in WAV; and read with
        # the model (and server) it was asked for (_stopped_with_models), not what auto picks
        given = {k: getattr(cfg, k) for k in SCORE_RESUMED if getattr(cfg, k) is not None}
        if music:  # the chapters it did not start are made by the model it was asked for (_stopped_with_models)
            given["music_model"] = music
        _keep_what_a_stop_asked(old, manifest, "score_stopped_with", "chapters", given if stopped else {}, this_run,
                                left, mine if running else None, mine)


def _keep_what_is_asked_while_it_runs(cfg: RunConfig, command: str, vision: Optional[str], music: Optional[str],
                                      given: list[str]) -> None:
    """What the command was asked kept in the manifest as it starts on the sections ``given``, as a stop keeps it
    (:func:`_keep_what_was_asked`); only that: the manifest's entries are as the run before left them, until a
    section finishes.  A run killed without warning (kill -9, the out-of-memory killer, a power cut) was resumed
    by a plain rerun with the defaults: WAVs with new seeds beside the FLACs it made with ``--seed``."""
    from .outputs import MANIFEST, TOOL, Staged, commit, read_record, settle

    path = cfg.output / MANIFEST
    old = read_record(path)
    if old is None and path.exists():
        return  # not ours: the end of the run says so
    old = settle(old, cfg.output) if old is not None else {"tool": TOOL, "files": {}, "sections": []}
    manifest = dict(old)
    _keep_what_was_asked(old, manifest, cfg, command, vision, music, True, given, given, running=True)
    if any(manifest.get(key) != old.get(key) for key in ("stopped_with", "score_stopped_with",
                                                           *READING_STOPPED_WITH.values())):
        commit(path, old, Staged(), manifest)


class _ManifestUpdates:
    """The manifest (and the listening page) of the sections finished so far, written while the command runs: a
    reader can listen to a series' first chapters while the rest are made, and a run killed without warning (kill
    -9, a power cut) leaves them listed, and what it was asked for the rest.  Called on every progress report of the
    sections; it keeps what was asked once the sections given are known, and writes the manifest when a section has
    finished since the last write, :data:`UPDATE_AFTER_S` after it (or the start), and, on a long manifest,
    only when the time since is 20 times what the last write took.  Chapters scored side by side (``--ray``)
    report from their threads: one writes, the others go on."""

    def __init__(self, jobs: list[SectionJob], cfg: RunConfig, command: str, models, page: bool,
                 left: Callable[[list[SectionJob]], list[str]]):
        import threading
        import time

        self.jobs, self.cfg, self.command, self.models, self.page, self.left = jobs, cfg, command, models, page, left
        self.last, self.cost = time.monotonic(), 0.0
        self.listed: set[tuple[str, bool]] = set()  # (section, music_outdated) of the sections last written
        self.writing = threading.Lock()
        self.asked_kept = False  # what the command was asked is in the manifest (see __call__)

    def _due(self) -> bool:
        """Whether a write may happen now: long enough after the last one (see above)."""
        import time

        since = time.monotonic() - self.last
        return since >= UPDATE_AFTER_S and since >= UPDATE_COST_FACTOR * self.cost

    def __call__(self) -> None:
        import time

        if not (self._due() or not self.asked_kept) or not self.writing.acquire(blocking=False):
            return
        try:
            finished = [j for j in list(self.jobs) if _finished(j, self.command)]
            now = {(j.name, j.music_outdated) for j in finished}
            if not self.asked_kept and self.left(finished):  # once the sections given are known
                _keep_what_is_asked_while_it_runs(self.cfg, self.command, *self.models(), self.left(finished))
                self.asked_kept = True
            if now - self.listed and self._due():  # a section finished, or its new music made since it was listed
                # as old
                started = time.monotonic()
                _finish(finished, self.cfg, self.command, *self.models(), page=self.page, stopped=True,
                        left=self.left(finished), running=True)
                self.last, self.cost, self.listed = time.monotonic(), time.monotonic() - started, now
        except (Manga2MusicError, OSError):
            pass  # the end of the run writes it, and says what is wrong
        finally:
            self.writing.release()

    def around(self, cb: Callbacks) -> Callbacks:
        """``cb`` with its sections' progress calling this first."""
        theirs = cb.sections

        def sections(done: int, total: int, label: str) -> None:
            self()
            if theirs is not None:
                theirs(done, total, label)

        return replace(cb, sections=sections)


@contextmanager
def _manifest_even_if_stopped(jobs: list[SectionJob], cfg: RunConfig, command: str, models, page: bool,
                              cb: Callbacks, given: Optional[list[str]] = None) -> Iterator[Callbacks]:
    """A run-stopping error (full disk, rejected key) still leaves the manifest of what was done; so do Ctrl-C and
    SIGTERM, for the sections finished (the others keep their entries of the run before: their files are as that
    run left them), so that neither the manifest nor the listening page names a file this run has replaced.  So does
    any other exception: a host program's own cancel, or a bug.  While the command runs, the manifest is kept up to
    date as sections finish (:class:`_ManifestUpdates`): the block is given ``cb`` with that added.  ``given``: the
    names of the sections the command was given (filled in once they are claimed), of which those not finished are
    what a stop leaves to make (a job is made only when its section starts)."""

    def left(finished: list[SectionJob], stopped_at: Iterable[str] = ()) -> list[str]:
        done = {j.name for j in finished} - set(stopped_at)
        started = [j.name for j in jobs]
        return [n for n in dict.fromkeys([*(given or []), *started]) if n not in done]

    try:
        yield _ManifestUpdates(jobs, cfg, command, models, page, left).around(cb)
    except Manga2MusicError as exc:
        if exc.stops_run and jobs:  # as for a stop: the sections finished, and the one it stopped at (failed)
            finished = [j for j in jobs if _finished(j, command)]
            stopped_at = [j.name for j in jobs if j.status == "failed" and j.message and exc.message
                          and j.message.startswith(exc.message)]
            # failed by the stop itself (a key refused, a full disk): left to make as the stop asked (a rerun made
            # it "not in that run, as any new chapter", with another seed)
            try:  # kept with the error: `--json` prints it, as a run that ends does
                exc.manifest = _finish(finished, cfg, command, *models(), page=page, stopped=True,
                                       left=left(finished, stopped_at))
            except (Manga2MusicError, OSError):
                pass  # the disk may be full: the error below is what the user needs
            unstarted = [n for n in left(finished) if n not in {j.name for j in jobs}]
            if unstarted:  # never said: the table lists those made and the one it stopped at
                from .wording import listed

                exc.hint = "; ".join(filter(None, [exc.hint, f"{listed(unstarted[:5])}"
                                                   f"{f' and {len(unstarted) - 5} more' if len(unstarted) > 5 else ''}"
                                                   ": not started; the same command goes on from there"]))
        raise
    except BaseException as exc:  # Ctrl-C, SIGTERM, a host program's own cancel (asyncio's, a server's stop), a bug
        finished = [j for j in jobs if _finished(j, command)]
        if jobs or isinstance(exc, (KeyboardInterrupt, SystemExit)):  # the others' entries stay, less any file the
            # stop left gone (see outputs.merged_manifest); a stop before any section started (Ray's workers
            # starting) prints the manifest too, as `--json` promises
            try:  # kept with the stop, as with an error: the command prints what was finished
                exc.manifest = _finish(finished, cfg, command, *models(), page=page, stopped=True,
                                       left=left(finished))
                exc.left_to_make = left(finished)  # none: the stop came once all was made (said so, not "resume")
            except (Manga2MusicError, OSError, AttributeError):  # AttributeError: an exception without a __dict__
                pass  # the stop is what the user asked for; the next run writes them
        raise


def _finished(job: SectionJob, command: str) -> bool:
    """Whether ``job`` got to the end of ``command`` (failing is an end too), or wrote what the manifest must tell of
    a stopped run: new words beside the music of the old ones (``music_outdated``)."""
    if job.status == "failed" or job.music_outdated:
        return True
    if command == "describe":
        return job.files.description.exists() and (job.status == "skipped" or job.did_work)
    return bool(job.tracks) and all(t.exists() for t in job.tracks)


def _settings(config: Optional[RunConfig], output: str | Path | None) -> RunConfig:
    """The call's settings: a copy of ``config`` (the caller's object is left as it was), writing to ``output`` when
    it is given, else to the config's own output folder (``output`` by default)."""
    if config is not None and not isinstance(config, RunConfig):  # a dict: "replace() should be called on dataclass
        raise TypeError(f"config must be a manga2music.RunConfig, not {type(config).__name__} "  # instances"
                        "(RunConfig(duration=20, seed=1), for example)")
    cfg = replace(config) if config is not None else RunConfig()
    folder = output if output is not None else cfg.output
    if isinstance(folder, bytes):  # as the input paths are taken
        folder = os.fsdecode(folder)
    if not isinstance(folder, (str, os.PathLike)):  # RunConfig(output=None): "expected str, bytes or os.PathLike"
        raise TypeError(f"the output folder must be a path (a str or a Path), not {type(folder).__name__} "
                        f"({folder!r})")
    if isinstance(folder, str) and not folder.strip():  # "" wrote into the current folder (a web
        # service's empty form field: the server's own folder), as an empty input path read it; the command line
        # refuses both
        raise InputError("an empty output folder (an unset variable or form field?)",
                         hint="give the folder to write to, or leave output out for ./output")
    cfg.output = Path(folder)
    from_current_folder(cfg.output)
    for name in ("options", "vision_options", "music_options"):  # options=None was "'NoneType' object has no
        value = getattr(cfg, name)  # attribute 'items'", in the middle of the models' build
        if value is None:
            setattr(cfg, name, {})
        elif not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a dict of the models' options ({name}={{\"device\": \"cpu\"}}, for "
                            f"example), not {type(value).__name__} ({value!r})")
        else:
            setattr(cfg, name, dict(value))
    from .distributed.config import RayConfig  # light: Ray itself is imported only for a run on it

    if cfg.ray is not None and not isinstance(cfg.ray, RayConfig):  # ray="auto": "'str' object has no attribute
        # 'check'"
        raise TypeError(f"ray must be a manga2music.distributed.RayConfig (RayConfig(address=\"auto\"), for example) "
                        f"or None, not {type(cfg.ray).__name__} ({cfg.ray!r})")
    return cfg


def _path_list(paths) -> list:
    """One path given alone (a string or a Path) is a list of one, not a string of letters to read one by one; a
    path given as bytes is the file system's name (``os.fsdecode``); anything else is a TypeError."""
    if not isinstance(paths, (str, bytes, os.PathLike, Iterable)):  # None, a number: "object is not iterable"
        raise TypeError(f"paths must be a path (a str or a Path) or a list of them, not {type(paths).__name__}")
    paths = [paths] if isinstance(paths, (str, bytes, os.PathLike)) else list(paths)
    for path in paths:
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"a path must be a str or a Path, not {type(path).__name__} ({path!r})")
        if isinstance(path, (str, bytes)) and not path.strip():  # "" read the whole current folder (a web
            # service's empty form field: the server's own folder); the command line refuses it
            raise InputError("an empty path (an unset variable or form field?)",
                             hint="give a folder of pages, an image, a comic archive, a .pdf or an .epub")
        from_current_folder(os.fsdecode(path) if isinstance(path, bytes) else path)
    return [os.fsdecode(p) if isinstance(p, bytes) else p for p in paths]


def _callbacks(callbacks: Optional[Callbacks]) -> Callbacks:
    """The caller's :class:`Callbacks`, or quiet ones; anything else (``callbacks=print``) is a TypeError saying so,
    not an AttributeError in the middle of the run.  The call's own copy: what a call said once (a warning, a
    section's skipped pages) is said again by the next call given the same object (a service that kept one
    heard a chapter's broken pages on its first call only)."""
    if callbacks is None:
        return Callbacks()
    if not isinstance(callbacks, Callbacks):
        raise TypeError("callbacks must be a manga2music.Callbacks (Callbacks(log=lambda level, message: "
                        f"print(message)), for example), not {type(callbacks).__name__}")
    return replace(callbacks, said=set(), skips={})


def _model_names(**names) -> list:
    """The models given, in order: a local model folder given as a Path is its path (``model=Path("/models/mg")``
    was a TypeError, though every other path setting takes a Path); a model given as something else than its name
    (``vision_model=1``) is a TypeError saying so."""
    given = []
    for what, name in names.items():
        if isinstance(name, os.PathLike):  # a folder: written as a path, so that one not there is said so (it was
            name = os.fspath(name)  # looked up as a model name, or on the Hub); with a base URL, a server's model
            if isinstance(name, str) and not os.path.isabs(name) and not name.startswith(("./", "../", "~")) \
                    and not os.path.exists(os.path.expanduser(name)):  # (vLLM serves one by its path)
                name = f"./{name}"
        elif isinstance(name, str) and name.strip() == "auto":  # "auto " of a form field or a file's line, as
            name = "auto"  # " builtin " is taken
        given.append(name)
        if name is None:  # left out: as the output folder's sections were made, else auto (keep_models)
            continue
        if not isinstance(name, str):
            raise TypeError(f"{what} must be a model name (a str, \"auto\" to let the machine decide), not "
                            f"{type(name).__name__} ({name!r})")
        if not name.strip():  # an unset variable or form field: it was looked for as the folder "" (the current one)
            from .errors import UnknownModelError

            raise UnknownModelError(f"{flag(what)} is empty (an unset variable or form field?)",
                                    hint="name a model, or \"auto\" to let the machine decide (`manga2music models` "
                                         "lists them)")
    return given


class _Heartbeat:
    """A program's ``step`` callback called again with what it was last told, at most every :attr:`EVERY` seconds,
    at the stop points of work on the calling thread (the builtin renderer's notes): the README's cancel, an
    exception raised from a callback, waited for a whole track (12 s for 10 minutes of music) while no callback was
    called.  Not ``sections``: a host acts on each section begun or done (a test reads the manifest there)."""

    EVERY = 0.5

    def __init__(self, callbacks) -> None:
        self.thread, self.last, self.told, self.callbacks = threading.get_ident(), 0.0, None, None
        self.said: Optional[Callable[[int, int, str], None]] = None
        if isinstance(callbacks, Callbacks) and callbacks.step is not None:
            self.said = callbacks.step
            self.callbacks = replace(callbacks, step=self._told(callbacks.step))

    def _told(self, said):
        def telling(done: int, total: int, label: str) -> None:
            self.told, self.last = (done, total, label), time.monotonic()
            said(done, total, label)

        return telling

    def __call__(self) -> None:  # at every stop point (each note the builtin renderer plays): no import here
        if self.told is None or threading.get_ident() != self.thread or time.monotonic() - self.last < self.EVERY:
            return
        self.last = time.monotonic()
        report(self.said, *self.told)  # a cancel (KeyboardInterrupt) is raised; a broken bar's error is not


def _stops_carry_a_manifest(call):
    """``call`` (run, score, describe, compose) with every stop it raises (a cancel from a callback, Ctrl-C) carrying
    ``manifest``, as the README promises: ``None`` where the call stopped before its work began (at the first
    callback, the line saying which model auto picked), which a program's ``except KeyboardInterrupt as exc:
    exc.manifest`` met as an AttributeError."""
    import functools

    @functools.wraps(call)
    def carrying(*args, **kwargs):
        from .threads import beating

        heartbeat = _Heartbeat(kwargs.get("callbacks"))
        if heartbeat.callbacks is not None:
            kwargs["callbacks"] = heartbeat.callbacks
        try:
            with beating(heartbeat):
                return call(*args, **kwargs)
        except Exception:
            raise
        except BaseException as exc:
            if not hasattr(exc, "manifest"):
                try:
                    exc.manifest = None
                except AttributeError:  # an exception without a __dict__
                    pass
            raise

    return carrying


@_stops_carry_a_manifest
def run(paths: Iterable[str | Path] | str | Path, output: str | Path | None = None, *,
        vision_model: Optional[str] = None, music_model: Optional[str] = None, config: Optional[RunConfig] = None,
        callbacks: Optional[Callbacks] = None) -> dict:
    """Describe every section under ``paths`` and compose one track each.  A model left out (None) is the one the
    output folder's sections were made with (see :func:`keep_models`), else ``"auto"``."""
    vision_model, music_model = _model_names(vision_model=vision_model, music_model=music_model)
    cfg = _settings(config, output)
    paths = _path_list(paths)
    cb = _callbacks(callbacks)
    check_config(cfg, composing=True)
    refuse_score_settings(cfg, "run")
    sections = find_sections(paths, exclude=[cfg.output], warn=cb.warn)
    return _with_both_models("run", sections, cfg, cb, vision_model, music_model)


def _records_there(cfg: RunConfig, names: list[str], manifest: Optional[dict] = None) -> list[tuple[Path, dict]]:
    """The records of ``names`` and of every other section the output folder's manifest lists (``manifest``, when
    the caller has read it), each settled as a killed run left it: (path, record)."""
    from .outputs import MANIFEST, SectionFiles, read_record, settle

    records = {SectionFiles.for_section(cfg.output, name).record for name in names}
    if manifest is None:
        manifest = read_record(cfg.output / MANIFEST) or {}
    for section in manifest.get("sections") or []:  # the folder's other sections:
        # a new chapter added to a folder of FLACs was a WAV, and the folder stayed mixed for good
        if isinstance(section, dict) and isinstance(section.get("record"), str):
            records.add(cfg.output / section["record"])
    return [(record, settle(dict(read_record(record) or {}), record.parent)) for record in sorted(records)]


#: the settings a section not composed yet takes from the music there (keep_lengths)
LENGTHS = ("duration", "variations")
#: the other settings of a stopped run that its plain rerun resumes with (resume_stopped)
RESUMED = ("fmt", "seed", "loop", "normalize")
#: the settings of a stopped score that its plain rerun gives the chapters it did not start
SCORE_RESUMED = ("seed", "reading_speed", "fmt", "longest_cue", "transitions")


#: the manifest's key for the model (and server) a stopped describe or score was asked to read with
READING_STOPPED_WITH = {"describe": "describe_stopped_with", "score": "score_reading_stopped_with"}
#: under a stop's settings in the manifest while another command runs: the stop before it, and whose writes these are
#: (its process and settings), put back where that command ends without a stop (see _keep_what_a_stop_asked)
KEPT_ASIDE = "before_this_run"


def _keep_what_a_stop_asked(old: dict, manifest: dict, key: str, names_key: str, asked: dict, this_run: list[str],
                            left: Sequence[str], running: Optional[str] = None, mine: str = "",
                            own_only: bool = False) -> None:
    """The manifest's ``key`` (what a stopped command was asked, and under ``names_key`` the sections it left to
    make) after this command: a stop (``asked``) keeps what it asked for the sections it left, over an earlier
    stop's settings for the sections that one left and this one was not given (a second stop asking only
    --format lost the first one's --seed for the chapters neither made); a command that ends (``asked`` empty)
    keeps an earlier stop's for the sections it left that this one did not make, and drops it once none is left.
    A stop's settings go to its own sections only: a chapter added between a stop and its resume took them, said
    "as the run stopped before was asked", and the stopped run's own sections then lost them.  While a command
    runs (``running``: its mark, ``mine``), what it is asked is written as a stop's (a kill is resumed so), with
    the earlier stop kept aside (:data:`KEPT_ASIDE`): a command between a stop and its resume (``run LIB/A``, made
    already) wrote its own --format and --loop over the stop's, and the resume made the chapters left as WAVs that
    end, "as the run stopped before was asked"."""
    before = old.get(key) if isinstance(old.get(key), dict) else {}
    aside = before.get(KEPT_ASIDE)
    if isinstance(aside, dict) and aside.get("by") == mine and isinstance(aside.get("stop"), dict):
        before = aside["stop"]  # this command's own writes: the stop before it
    else:
        before = {k: v for k, v in before.items() if k != KEPT_ASIDE}  # a command killed while it ran: its own
    earlier = before.get(names_key)
    done = set(this_run) - set(left)  # a plain resume stopped again (it asked nothing) keeps the earlier stop's
    still = [n for n in earlier if isinstance(n, str) and n not in done] if isinstance(earlier, list) else []
    names = set(left) | set(still)
    if own_only and isinstance(earlier, list):  # a resume of an earlier stop beside chapters added since (its
        # settings went to its own sections only): stopped again, the added ones took that stop's seed and format
        names &= set(earlier)
    if running and isinstance(earlier, list) and set(left) - set(earlier):  # while it runs, sections an earlier
        # stop did not leave are not listed under that stop's settings (`score S/Ch 3` after a stopped `score S/Ch 2
        # --reading-speed 0.5` made Ch 3 at 0.5, "as the score stopped before was asked"); a kill leaves them to a
        # plain resume
        names -= set(left) - set(earlier)
    if asked and names:
        manifest[key] = {**{k: v for k, v in before.items() if k != names_key}, **asked, names_key: sorted(names)}
        if running and before:
            manifest[key][KEPT_ASIDE] = {"by": running, "stop": before}
    elif still:
        manifest[key] = {**before, names_key: still}
        old.pop(key, None)
    else:
        old.pop(key, None)


def resume_stopped(cfg: RunConfig, names: list[str], command: str, cb: Callbacks) -> None:
    """A ``run`` or ``compose`` stopped before its music was all made (Ctrl-C, SIGTERM) is resumed by a plain rerun
    with the format, seed, loop and level it was asked for (the manifest's ``stopped_with``), each left out: the
    rerun made the sections left as WAVs with new seeds, unlooped and normalised, beside the FLACs made with --seed
    before the stop, and said nothing of it.  A setting is resumed only where the music of the sections given that
    is made already was made so (a section made by an earlier run with another seed is not composed again for it);
    else the music there decides, as for any rerun (keep_switches, keep_as_made)."""
    from .outputs import MANIFEST, SectionFiles, read_record, settle

    if command not in ("run", "compose"):
        return
    stopped = (read_record(cfg.output / MANIFEST) or {}).get("stopped_with")
    if not isinstance(stopped, dict):
        return
    made, new = [], []
    for name in names:
        path = SectionFiles.for_section(cfg.output, name).record
        music = settle(dict(read_record(path) or {}), path.parent).get("compose")
        if isinstance(music, dict) and music.get("takes"):
            made.append(music)
        else:
            new.append(name)
    if not new:
        return  # nothing left to make (what was made decides)
    if stopped_for(stopped, new) is None:
        _resume_beside_new_sections(cfg, stopped, new, made, cb)
        return
    resumed = []
    for setting, value in _resumable(cfg, stopped, made).items():
        setattr(cfg, setting, value)
        resumed.append(switch(setting, value) if setting in ("loop", "normalize") else flag(setting, value))
    if resumed:
        cb.info(f"{', '.join(resumed)}, {_as_the_stop_asked(cfg)} (give a setting to change it)")


#: the settings a stopped run's resume takes for the sections it left: how each is checked, and read from music made
_RESUMED_CHECKS = {
    "fmt": (lambda v: v in AUDIO_FORMATS, lambda m: m.get("format")),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63, lambda m: m.get("seed")),
    "loop": (lambda v: isinstance(v, bool),
             lambda m: m["settings"].get("loop") if isinstance(m.get("settings"), dict) else None),
    "normalize": (lambda v: isinstance(v, bool), lambda m: m.get("normalize")),
}


def _resumable(cfg: RunConfig, stopped: dict, made: list[dict]) -> dict:
    """Of the format, seed, loop and level the stopped run was asked, those left out here that the music made
    among the sections given was made with too, and not the default."""
    resumed = {}
    for setting, (usable, of) in _RESUMED_CHECKS.items():
        value = stopped.get("format" if setting == "fmt" and "fmt" not in stopped else setting)
        if getattr(cfg, setting) is not None or not usable(value) or any(of(m) != value for m in made):
            continue
        if setting in ("loop", "normalize") and value == (setting == "normalize"):
            continue  # the default: nothing to resume, nothing to say
        resumed[setting] = value
    return resumed


def _resume_beside_new_sections(cfg: RunConfig, stopped: dict, new: list[str], made: list[dict],
                                cb: Callbacks) -> None:
    """Sections a stopped run left, made beside sections it was not given (a chapter added since): those it left
    are made as it was asked, each (``cfg.stopped_sections``; --loop, a composer's setting, for all), and the others
    as new ones.  The stopped run's settings were all dropped, and it was never said (--duration 300 --format flac
    --seed 3 came back 10 s WAVs with new seeds)."""
    left = [n for n in new if n in _stopped_sections(stopped)]
    if not left:
        return
    resumed = _resumable(cfg, stopped, made)
    if not resumed:
        return
    said = [switch(k, v) if k in ("loop", "normalize") else flag(k, v) for k, v in resumed.items()]
    if "loop" in resumed:
        cfg.loop = resumed.pop("loop")
    _give_stopped_sections(cfg, left, resumed, new, said, cb)


def _give_stopped_sections(cfg: RunConfig, names: list[str], settings: dict, new: list[str], said: list[str],
                           cb: Callbacks) -> None:
    """``settings`` for each of ``names`` (the sections a stopped run left, among ``new``, those not composed yet)
    in ``cfg.stopped_sections``, and ``said`` of them.  A new dict: the RunConfig a program passed (copied field by
    field) shares the old one, and a later call with it would take them."""
    cfg.stopped_sections = {**cfg.stopped_sections,
                            **{name: {**cfg.stopped_sections.get(name, {}), **settings} for name in names}}
    others = [n for n in new if n not in names]
    cb.info(f"{first_few(names)}: {', '.join(said)}, {_as_the_stop_asked(cfg)}; {first_few(others)}, not "
            "in that run, as any new chapter")


def _stopped_sections(stopped) -> list[str]:
    """The sections a manifest's ``stopped_with`` names as left by its run."""
    left = stopped.get("sections") if isinstance(stopped, dict) else None
    return [n for n in left if isinstance(n, str)] if isinstance(left, list) else []


def keep_as_made(cfg: RunConfig, names: list[str], command: str, cb: Callbacks, composer) -> None:
    """The settings left out that the music in the output folder decides: its format (:func:`keep_formats`) and,
    for a section not composed yet, its length and takes (:func:`keep_lengths`); the folder's records read once."""
    from .outputs import MANIFEST, read_record

    manifest = read_record(cfg.output / MANIFEST) or {}
    records = _records_there(cfg, names, manifest)
    keep_formats(cfg, records, command, cb, names)
    if command != "score":  # a cue is as long as its scene takes to read
        keep_lengths(cfg, names, records, cb, getattr(composer, "max_duration", None), manifest.get("stopped_with"))


def keep_lengths(cfg: RunConfig, names: list[str], records: list[tuple[Path, dict]], cb: Callbacks,
                 limit, stopped) -> None:
    """--duration and --variations left out: a section composed before keeps its own (composing.track_seconds,
    job_config), and one not composed yet (``names`` without music) is made as the music there is, where all of it
    is one length or one number of takes, else the default, said.  After ``run LIB --duration 300`` was stopped,
    the plain rerun a user makes to finish it made the sections left 10 s long beside the 300 s ones, and a chapter
    added to a folder of 2-take sections got one.  ``stopped``: the manifest's ``stopped_with``, what a run stopped
    before its music was all made was asked for, taken for the sections not composed yet where it left them all
    (:func:`_asked_by_the_stop`): those composed keep their own."""
    from .options import DEFAULT_DURATION
    from .outputs import SectionFiles

    composed = {path: data["compose"] for path, data in records if isinstance(data.get("compose"), dict)}
    new = [name for name in names if SectionFiles.for_section(cfg.output, name).record not in composed]
    made = list(composed.values())
    if not new:
        return  # every section given has its own
    asked = _asked_by_the_stop(stopped, new)
    if not asked:
        _lengths_beside_new_sections(cfg, stopped, new, limit, cb)
    resumed = []
    if cfg.duration is None and "duration" in asked:  # for the sections not composed yet only: those composed keep
        # their own (a stop's settings, merged with another's, reached a chapter it never asked a length of)
        cfg.new_duration = min(asked["duration"], float(limit)) if isinstance(limit, (int, float)) \
            else asked["duration"]
        resumed.append(flag("duration", float(cfg.new_duration)))
    if cfg.variations is None and "variations" in asked:
        cfg.new_variations = asked["variations"]
        resumed.append(flag("variations", asked["variations"]))
    if resumed:
        cb.info(f"{' and '.join(resumed)}, {_as_the_stop_asked(cfg)} ({flag('duration')} and "
                f"{flag('variations')} choose others)")
    if not made:
        return  # no music there to follow

    def one(values: list, default, setting: str, unit: str):
        found = set(values)
        if len(found) == 1 and (value := next(iter(found))) != default:
            return value
        if len(found) > 1:
            cb.info(f"{flag(setting)} left out: the music there is not all one {unit}; each section made keeps "
                    f"its own, and a new section is {default:g}{' s' if setting == 'duration' else ' take'} "
                    f"({flag(setting)} chooses one for all)")
        return None

    kept = []
    if cfg.duration is None and cfg.new_duration is None:
        lengths = [m.get("duration") for m in made]
        usable = [d for d in lengths if not isinstance(d, bool) and isinstance(d, (int, float)) and 0 < d < math.inf]
        length = one(usable, DEFAULT_DURATION, "duration", "length")
        if length is not None:
            cfg.duration = min(length, float(limit)) if isinstance(limit, (int, float)) else length
            kept.append(flag("duration", float(cfg.duration)))
    if cfg.variations is None and cfg.new_variations is None:
        takes = one([n for m in made if 1 <= (n := len(m.get("takes") or [])) <= 100], 1, "variations", "number of takes")
        if takes is not None:
            cfg.variations = takes
            kept.append(flag("variations", takes))
    if kept:
        cb.info(f"{' and '.join(kept)}, as the music there is made ({flag('duration')} and {flag('variations')} "
                "choose others)")


def _lengths_beside_new_sections(cfg: RunConfig, stopped, new: list[str], limit, cb: Callbacks) -> None:
    """The --duration and --variations a stopped run was asked, for the sections it left where this run makes
    others too (a chapter added since: made as a new one), each left out here (``cfg.stopped_sections``)."""
    left = [n for n in new if n in _stopped_sections(stopped)]
    asked = _asked_by_the_stop(stopped, left) if left else {}
    mine = {}
    if cfg.duration is None and "duration" in asked:
        mine["duration"] = min(asked["duration"], float(limit)) if isinstance(limit, (int, float)) \
            else asked["duration"]
    if cfg.variations is None and "variations" in asked:
        mine["variations"] = asked["variations"]
    if not mine:
        return
    _give_stopped_sections(cfg, left, mine, new, [" and ".join(flag(k, v) for k, v in mine.items())], cb)


def _asked_by_the_stop(stopped, new: list[str]) -> dict:
    """The --duration and --variations a stopped run was asked (the manifest's ``stopped_with``) for the sections
    not composed yet (``new``), where it left them all: they win over the music there (counted beside it, the
    stopped run's 2 s next to the folder's 3 s tracks was "not all one length", and the chapter it left came out
    at the default 10 s)."""
    stopped = stopped_for(stopped, new)
    if not isinstance(stopped, dict):
        return {}
    asked = {}
    duration, takes = stopped.get("duration"), stopped.get("variations")  # (hand-edited values left out)
    if isinstance(duration, (int, float)) and not isinstance(duration, bool) and MIN_DURATION <= duration <= MAX_DURATION:
        asked["duration"] = float(duration)
    if isinstance(takes, int) and not isinstance(takes, bool) and 1 <= takes <= 100:
        asked["variations"] = takes
    return asked


def keep_formats(cfg: RunConfig, records: list[tuple[Path, dict]], command: str, cb: Callbacks,
                 names: Sequence[str] = ()) -> None:
    """With no format given, each section's music is made in the format it is in (composing.job_config,
    scoring.chapter_settings), as a left-out --duration keeps each track's length: after ``--format flac``, editing
    one description and a plain ``compose`` turned every other FLAC into a WAV, and an MP3 back into a WAV was
    composed again from its seeds.  Where the music there is all in one format, a new section is made in it too;
    where it is in several, a new one is DEFAULT_FORMAT.  Said once, when the music there is not all wav.  A score
    of one of ``names`` (the chapters given) that was stopped is in the format it was asked (kept_cues.
    stopped_settings, scoring.not_started): resumed after another chapter was scored in WAV, it became a WAV."""
    from .kept_cues import stopped_settings
    from .outputs import SectionFiles
    from .scoring import not_started_with, switched_format
    from .wording import listed

    if cfg.fmt is not None:
        return
    entry = "score" if command == "score" else "compose"
    given = {SectionFiles.for_section(cfg.output, name).record: name for name in names} if command == "score" else {}
    found, stopped_in = set(), set()
    for record, data in records:
        stopped = (stopped_settings(cfg.output, given[record]) or not_started_with(cfg.output, given[record], data)) \
            if record in given else {}
        if stopped.get("format") in AUDIO_FORMATS:
            stopped_in.add(stopped["format"])
            continue
        made = data.get(entry)
        switched = switched_format(data, record) if command == "score" else None  # a switch a stop cut short
        if switched or isinstance(made, dict) and made.get("format") in AUDIO_FORMATS:
            found.add(switched or made["format"])
    if found:  # music there: a stopped score's format is its chapter's (with no music there, the score's own
        found |= stopped_in  # settings resume it, scoring.chapter_settings)
    if len(found) == 1:
        cfg.fmt = next(iter(found))
        if cfg.fmt != DEFAULT_FORMAT:
            cb.info(f"{flag('fmt', cfg.fmt)}, as the music there ({flag('fmt')} chooses another)")
    elif found:
        what = "score" if command == "score" else "section"
        stopped = " (the chapters a stopped score left, as it was asked)" if stopped_in else ""
        cb.info(f"{flag('fmt')} left out: the music there stays {listed(sorted(found))}, each {what} in its own"
                f"{stopped}, and a new {what} is {DEFAULT_FORMAT} ({flag('fmt')} chooses one for all)")


#: the record entries that say which model made a section's words and music, by command: (vision, music)
MODEL_ENTRIES = {"run": ("describe", "compose"), "describe": ("describe", None), "compose": (None, "compose"),
                 "score": ("chapter_reading", "score")}
#: the entries a section's track was made with, by side: a score's models where no score was made (keep_models)
TRACK_ENTRIES = {"vision": "describe", "music": "compose"}


def keep_models(cfg: RunConfig, names: list[str], command: str, cb: Callbacks, *, vision: Optional[str] = None,
                music: Optional[str] = None, flags: tuple[str, str] = ("vision_model", "music_model")) -> tuple:
    """A model left out (None) is the one the sections given (``names``) were made with, or, where none of them was
    made yet, the one the output folder's were, as a left-out --duration or --format is: after ``run --music-model
    musicgen-small``, a plain rerun to add a chapter, or the README's edit-one-description-then-compose, composed
    every track again with what ``auto`` picks (builtin, with no weights), and a server's paid descriptions were
    written over by builtin's.  builtin too: once MusicGen's weights were cached, a builtin folder's rerun made
    every track again as non-commercial MusicGen music.  A run stopped before its first section was made keeps the
    model it was asked for (the manifest's ``stopped_with``; a score's kept settings).  A server's model keeps its
    server (the recorded --base-url) unless one is given.  Sections made by several models, or by one model on
    several servers, are refused in one line: whichever one ``auto`` took would make the others again.  A score of
    chapters never scored keeps the models their tracks were made with (``run CH --vision-model M``, then the
    README's ``score CH``, read the chapter with what auto picks).  Returns
    (vision, music), ``auto`` where nothing was made."""
    from .outputs import MANIFEST, read_record
    from .wording import listed

    read = vision is None or music is None or any(MODEL_ENTRIES[command])  # (a model named: its settings are kept
    manifest = read_record(cfg.output / MANIFEST) or {} if read else {}  # reading settings are kept, see below)
    records = _records_there(cfg, names, manifest) if read else []
    chosen = []
    for side, name, entry, setting in (("vision", vision, MODEL_ENTRIES[command][0], flags[0]),
                                       ("music", music, MODEL_ENTRIES[command][1], flags[1])):
        if name is not None or entry is None:
            if name is not None and entry is not None and _named_again(name, made := _made_with(
                    cfg, names, command, manifest, records, entry, side)[0]):  # the model named again, as from a
                # shell's history: read as its words were, played as its music was
                if side == "vision":
                    key_env = _keep_key_variable(cfg, made)
                    kept = [said for said in (key_env and f"its key from ${key_env}",
                                              _keep_reading_settings(cfg, made, command).removeprefix(" with "))
                            if said]
                    if kept:
                        cb.info(f"{'; '.join(kept)}, as the words there were read (give a setting to change it)")
                else:
                    _keep_music_settings(cfg, made)
            chosen.append(name if name is not None else "auto")
            continue
        made, mine, stopped = _made_with(cfg, names, command, manifest, records, entry, side)
        of_tracks = False  # the models of the sections' tracks, for a score of chapters never scored
        if command == "score" and not mine:  # no score made of these chapters yet: their tracks' models (after
            # `run CH --vision-model M`, the README's `score CH` read the chapter with what auto picks)
            track = _made_with(cfg, names, command, manifest, records, TRACK_ENTRIES[side], side)
            if track[1] or not made:
                (made, mine, stopped), of_tracks = track, True
        models = {m["model"] for m in made}
        urls = {(m.get("settings") or {}).get("base_url") or None for m in made if isinstance(m.get("settings"), dict)}
        what, were = ("the words", "were") if side == "vision" else ("the music", "was")
        if len(models) > 1 or side == "vision" and len(urls) > 1:
            several = listed(sorted(models)) if len(models) > 1 else \
                f"{next(iter(models))} on several servers ({listed(sorted(u or 'api.openai.com' for u in urls))})"
            if of_tracks:  # no score is made again, whichever one is taken
                cb.info(f"{flag(setting)} left out: the chapters' tracks were made by {several}; auto picks for "
                        f"their scores ({flag(setting)} chooses one)")
                chosen.append("auto")
                continue
            if not mine:  # only new sections given: none of the others is made again, whichever one is taken
                cb.info(f"{flag(setting)} left out: {what} there {were} made by {several}; auto picks for the "
                        f"sections made now ({flag(setting)} chooses one)")
                chosen.append("auto")
                continue
            raise InputError(f"{what} there {were} made by {several}; a run without {flag(setting)} would make the "
                             "others again with one of them",
                             hint=f"name the model for this run: {flag(setting)} NAME ({flag(setting, 'auto')} lets "
                                  "this machine pick)" if len(models) > 1 else
                             f"name the server for this run: {flag('base_url')} URL {flag(setting)} "
                             f"{next(iter(models))}, or give the sections of each server on their own")
        if not models:
            chosen.append("auto")
            continue
        (model,) = models
        if os.path.isabs(model) and not os.path.exists(model) and not any(urls):  # a local model's folder, moved
            # or deleted since (not a server's model id: vLLM serves a model by the path it loaded it from)
            raise InputError(f"{what} there {were} made by the model in {model}, which is no longer there",
                             hint=f"give its new place ({flag(setting)} FOLDER), or {flag(setting, 'auto')} to let "
                                  "this machine pick (every section it made is then made again by that model)")
        url = next(iter(urls)) if urls else None
        server = ""
        if side == "vision" and isinstance(url, str) and url and not cfg.vision_options.get("base_url"):
            if "***" in url:  # its user name and password were not recorded
                raise InputError(f"the words there were made by {model} on the server {url}, whose password is not "
                                 "recorded: give it again to go on with that model",
                                 hint=f"add {flag('base_url')} URL, or {flag(setting, 'auto')} to let this machine "
                                      "pick")
            cfg.vision_options = {**cfg.vision_options, "base_url": url}  # over OPENAI_BASE_URL: the server it was
            server = f" on {url}"  # made on, not another one set for other work
        if side == "vision":
            key_env = _keep_key_variable(cfg, made)
            server += (f" (its key from ${key_env})" if key_env else "") + _keep_reading_settings(cfg, made, command)
        else:
            _keep_music_settings(cfg, made)
        how = f"as {what} there {were} made" if stopped < len(made) else _as_the_stop_asked(cfg)
        cb.info(f"{flag(setting, model)}{server}, {how} ({flag(setting, 'auto')} lets this machine pick)")
        chosen.append(model)
    return tuple(chosen)


#: the settings of a composer, recorded with its music (its settings_key), that a rerun keeping the model keeps where
#: they are left out (see backends.build, which gives them to the model that takes them and says those not at
#: their default)
KEPT_MUSIC_SETTINGS = ("top_k", "top_p", "temperature", "guidance_scale", "precision", "steps", "shift", "lyrics",
                       "vocal_language", "logsnr_min", "logsnr_max")


def _keep_music_settings(cfg: RunConfig, made: list[dict]) -> None:
    """The composer's sampling settings the music there was made with (``made``: the record entries of the kept
    model), each left out: after ``run LIB --music-model musicgen-small --top-k 50``, the plain rerun that adds a
    chapter kept the model but went back to --top-k 250, and made every track again ("the composer's settings
    changed").  Kept on ``cfg.kept_music_settings`` for :func:`manga2music.backends.build`."""
    kept = {}
    for key in KEPT_MUSIC_SETTINGS:
        if key in cfg.music_options or key in cfg.options:
            continue
        values = {json.dumps(held[key]) for m in made if isinstance(m.get("settings"), dict)
                  for held in (m["settings"], m["settings"].get("options"))  # a diffusion model's, nested
                  if isinstance(held, dict) and key in held}
        if len(values) == 1:
            kept[key] = json.loads(values.pop())
    cfg.kept_music_settings = kept


#: the settings of a describer, recorded with the words it read (its settings_key), that a rerun keeps where they
#: are left out, with the value each takes when none is given (a setting at it goes unsaid)
KEPT_READING_SETTINGS = {"detail": "auto", "single_stage": False, "chunk_size": 8, "max_new_tokens": 512,
                         "precision": "auto"}


def _made_with(cfg: RunConfig, names: list[str], command: str, manifest: dict, records: list[tuple[Path, dict]],
               entry: str, side: str) -> tuple[list[dict], bool, int]:
    """The record entries (``entry``) that name the model ``side``'s words or music were made with: those of the
    sections given (``names``), with what a run stopped before they were made was asked (resumed with the model it
    was asked for), else the output folder's (``records``); whether they are the sections given's; how many came
    from a stop."""
    from .outputs import SectionFiles

    given = {SectionFiles.for_section(cfg.output, name).record for name in names}
    stopped, remade = _stopped_with_models(cfg.output, names, command, manifest, side)
    remade_records = {SectionFiles.for_section(cfg.output, name).record for name in remade}  # made before by
    # another model, which the stopped run was making again: its model, not theirs (a plain rerun after a stopped
    # `--music-model` switch was refused, "made by A and B")
    made = [(path in given, data[entry]) for path, data in records if isinstance(data.get(entry), dict)
            and isinstance(data[entry].get("model"), str) and data[entry]["model"] and path not in remade_records]
    made += [(True, m) for m in stopped]
    mine = [m for is_mine, m in made if is_mine]
    return mine or [m for _, m in made], bool(mine), len(stopped)


def _keep_key_variable(cfg: RunConfig, made: list[dict]) -> str:
    """The variable the key was read from where the words there were made (their ``kept_settings``: its name, never
    its value), where none is given: a rerun keeping the server (the OpenAI API's, too) sent it $OPENAI_API_KEY, the
    key --api-key-env had kept out of its reach.  Returns the variable's name kept ("" for none)."""
    if cfg.vision_options.get("api_key_env") or cfg.options.get("api_key_env"):
        return ""
    from .describers.openai_chat import _server_url

    given = cfg.vision_options.get("base_url") or cfg.options.get("base_url") or os.environ.get("OPENAI_BASE_URL") \
        or None  # the server this run reads with
    servers = {(m.get("settings") or {}).get("base_url") or None for m in made if isinstance(m.get("settings"), dict)}
    if any(_server_url(url) != _server_url(given) for url in servers):  # another server named: the key for the one
        return ""  # the words were made on is not sent to it (it was, and without it set the run stopped)
    key_envs = {(m.get("kept_settings") or {}).get("api_key_env") for m in made
                if isinstance(m.get("kept_settings") or {}, dict)}
    if len(key_envs) != 1 or None in key_envs:
        return ""
    (key_env,) = key_envs
    cfg.vision_options = {**cfg.vision_options, "api_key_env": key_env}
    return key_env


def _as_the_stop_asked(cfg: RunConfig) -> str:
    """How the settings taken from the manifest's ``stopped_with`` are said: those of a run that stopped, or, for a
    command that will wait (``wait``), of the run at work there now, which keeps them there while it goes on."""
    from .lock import held_by_another_run

    if cfg.wait and held_by_another_run(cfg.output):
        return "as the run going on there was asked"
    return "as the run stopped before was asked"


def _said_first_if_busy(cfg: RunConfig) -> None:
    """:class:`~manga2music.errors.OutputBusyError` now where another run writes the output folder (without
    ``wait``): before the lines saying which models are kept or picked, which came before the error."""
    if not cfg.wait:
        from .lock import refuse_if_busy

        refuse_if_busy(cfg.output)


def _named_again(name: str, made: list[dict]) -> bool:
    """Whether ``name`` is the one model the words or music there were made with (``made``, see :func:`_made_with`),
    named again: its settings are kept as when it is left out (named again, it read the pages at --detail auto in
    two stages, and played at the default --top-k, so every section was made again).  A local folder is that
    model at its full path, or at its new place when the recorded one is gone (moved)."""
    models = {m["model"] for m in made}
    if len(models) != 1:
        return False
    (model,) = models
    local = os.path.isdir(os.path.expanduser(name))
    return model == name or local and (os.path.abspath(os.path.expanduser(name)) == model
                                       or os.path.isabs(model) and not os.path.exists(model))


def _keep_reading_settings(cfg: RunConfig, made: list[dict], command: str) -> str:
    """The describer's settings the words there were read with (``made``: the record entries of the kept model),
    each left out, kept as the model is: after ``run LIB --detail low --single-stage``, the plain rerun that adds a
    chapter described every section again at --detail auto in two stages ("the describer's settings changed"),
    paid for every page again, and replaced every track.  Returns how the line that says the model names them."""
    kept = {}
    for key in KEPT_READING_SETTINGS:
        if key in cfg.vision_options or key in cfg.options or command == "score" and key == "single_stage":
            continue  # a score reads a chapter in one way
        given_only = key in ("chunk_size", "max_new_tokens", "precision")  # only where given (kept_settings, since 2026-12-07):
        # a local model's settings hold the chunk size measured from its context, and its default token cap, which
        # kept as if given no longer doubled for an answer cut off
        values = {json.dumps(held[key]) for m in made
                  for held in ((m.get("kept_settings"),) if given_only and "kept_settings" in m
                               else (m.get("settings"), m.get("kept_settings")))
                  if isinstance(held, dict) and key in held}
        value = json.loads(values.pop()) if len(values) == 1 else None
        if value is not None and not (given_only and value == KEPT_READING_SETTINGS[key]):  # a record of before
            kept[key] = value
    cfg.vision_options = {**cfg.vision_options, **kept}
    measured = {held["chunk_size"] for m in made if isinstance(held := m.get("settings"), dict)
                and isinstance(held.get("chunk_size"), int) and not isinstance(held["chunk_size"], bool)}
    cfg.kept_chunk_size = measured.pop() if len(measured) == 1 else None  # (backends.build: the model's files gone)
    said = [switch(key, value) if key == "single_stage" else flag(key, value)
            for key, value in kept.items() if value != KEPT_READING_SETTINGS[key]]
    return f" with {', '.join(said)}" if said else ""


#: the record entries that hold a side's settings (a describer's, a composer's)
SETTINGS_ENTRIES = {"vision": ("describe", "chapter_reading"), "music": ("compose", "score")}


def follow_moved_models(cfg: RunConfig, names: list[str], cb: Callbacks, **backends) -> None:
    """A local model folder moved since the output folder's sections were made with it, and given at its new place
    (as the line for a recorded folder that is no longer there asks): its weights and configs the same, its words
    and music are its own.  Every section was described and composed again ("describer /models/a -> /models/b"),
    hours of a local model, with new seeds.  The backend keeps the name the records' settings give it
    (:func:`manga2music.registry.model_identity`), so that every fingerprint made of them stays; the records name
    the new place (the model a plain rerun keeps, :func:`keep_models`), said once.  ``backends``: side -> backend."""
    from .outputs import Staged, commit
    from .registry import weights_stamp

    records: Optional[dict[Path, dict]] = None  # read once, and only for a local folder: as on disk after each write
    for side, backend in backends.items():
        now = weights_stamp(getattr(backend, "_local", backend)) if backend is not None else {}  # (not its whole
        # settings key: a local VLM's measures its processor, which a section's work meets, in its own guard)
        if not now.get("weights") or not now.get("configs"):
            continue  # not a local folder
        if records is None:
            records = dict(_records_there(cfg, names))
        moved: dict[str, object] = {}
        found: dict[Path, list[str]] = {}  # the records, and their entries, made by the folder at its old place
        for path, record in records.items():
            for key in SETTINGS_ENTRIES[side]:
                made = record.get(key)
                settings = made.get("settings") if isinstance(made, dict) else None
                was = settings.get("model") if isinstance(settings, dict) else None
                if isinstance(was, str) and was != backend.model_name and os.path.isabs(was) \
                        and not os.path.exists(was) and settings.get("weights") == now["weights"] \
                        and settings.get("configs") == now["configs"]:
                    moved[was] = settings.get("model_id", was)
                    found.setdefault(path, []).append(key)
        if len(moved) != 1:
            continue  # none, or several folders gone: each section as it is
        (was, was_id), = moved.items()
        backend.recorded_as = {"model": was, "model_id": was_id}
        relocated = 0
        for path, keys in found.items():
            record = records[path]
            named = {key: {**record[key], "model": backend.model_name, "model_id": backend.model_id}
                     for key in keys if record[key].get("model") != backend.model_name}
            if named:
                records[path] = commit(path, record, Staged(), named)
                relocated += 1
        if relocated:
            what = "words" if side == "vision" else "music"
            cb.info(f"{backend.model_name} is the model the {what} there {'were' if side == 'vision' else 'was'} "
                    f"made with, moved from {was} (the same weights and configs): what it made is kept")


def _stopped_with_models(output: Path, names: list[str], command: str, manifest: dict,
                         side: str) -> tuple[list[dict], set[str]]:
    """What a run stopped before its words or music were made was asked for on ``side``, as a record's entry would
    say it (``{"model": ..., "settings": {"base_url": ...}}``): the manifest's ``stopped_with`` (``run``,
    ``compose``), or a stopped score's kept settings (its music model), whether or not a cue was kept, and its
    ``score_reading_stopped_with`` (its vision model and server) for chapters not read yet;
    ``describe_stopped_with`` likewise for ``describe``.  Also those of ``names`` it left that another model had
    made before (it was making them again: theirs is its model now)."""
    if command == "score" and side == "music":  # a chapter's own stopped score, else the stop of one not started
        from .kept_cues import stopped_settings
        from .outputs import stopped_for

        before = manifest.get("score_stopped_with")
        asked = {name: m for name in names
                 if isinstance(m := stopped_settings(output, name).get("music_model")
                               or (stopped_for(before, [name], "chapters") or {}).get("music_model"), str) and m}
        return [{"model": m} for m in asked.values()], {n for n, m in asked.items() if _made_by(output, n, "score")
                                                        not in (None, m)}
    stopped = manifest.get(READING_STOPPED_WITH.get(command, "stopped_with"))
    if command in ("score", "describe"):  # the sections it did not read (`stopped_with`: run's, compose's)
        from .outputs import SectionFiles, read_record

        read = "chapter_reading" if command == "score" else "describe"
        todo = [n for n in names if not isinstance((read_record(SectionFiles.for_section(output, n).record) or {})
                                                   .get(read), dict)]
        left = stopped.get("sections") if isinstance(stopped, dict) else None
        stopped = stopped if isinstance(left, list) and set(todo) & set(left) else None
    remade: set[str] = set()
    if command in ("run", "compose") and isinstance(stopped, dict) and isinstance(stopped.get("sections"), list):
        # where its own sections are among those to make (one model makes a run's music: a chapter added since
        # too): not made, or made before by another model, which it was making them again with
        asked = stopped.get(f"{side}_model")
        entry = "describe" if side == "vision" else "compose"
        left = {n: _made_by(output, n, entry) for n in names if n in _stopped_sections(stopped)}
        remade = {n for n, m in left.items() if m is not None and m != asked}
        stopped = stopped if any(m != asked for m in left.values()) else None
    model = stopped.get(f"{side}_model") if isinstance(stopped, dict) else None
    if not isinstance(model, str) or not model:
        return [], set()
    url = stopped.get("base_url") if side == "vision" else None
    reading = {k: stopped[k] for k in KEPT_READING_SETTINGS if side == "vision" and k in stopped}
    return [{"model": model, "settings": {"base_url": url if isinstance(url, str) else None, **reading}}], remade


def _made_by(output: Path, name: str, entry: str) -> Optional[str]:
    """The model the section ``name``'s record says made its ``entry`` (``compose``, ``describe``, ``score``), or
    None where it was not made."""
    from .outputs import SectionFiles, read_record

    made = (read_record(SectionFiles.for_section(output, name).record) or {}).get(entry)
    model = made.get("model") if isinstance(made, dict) else None
    return model if isinstance(model, str) and model else None


def keep_switches(cfg: RunConfig, names: list[str], command: str, cb: Callbacks) -> None:
    """``loop`` and ``normalize`` left out (None): as the music of the sections given (``names``) was made, or,
    where none of them was made yet, as the music in the output folder was, as a left-out format is (after ``run
    --loop --no-normalize``, a plain rerun to add a chapter composed every looped track again, unlooped and at -14
    LUFS).  Where that music is made both ways, the default (loop off, normalised), said.  Settled before the
    composer is built: its loop is one for the run."""
    from .options import switch

    if cfg.loop is not None and cfg.normalize is not None:
        return
    from .kept_cues import stopped_settings
    from .outputs import SectionFiles

    entry = "score" if command == "score" else "compose"
    given = {SectionFiles.for_section(cfg.output, name).record for name in names}
    stopped = {SectionFiles.for_section(cfg.output, name).record: settings for name in names  # a score stopped while
               if command == "score" and (settings := stopped_settings(cfg.output, name))}  # it composed: resumed as
    made = [(path in given, stopped.get(path) or data[entry]) for path, data in _records_there(cfg, names)  # it was
            if path in stopped or isinstance(data.get(entry), dict)]  # being made

    def as_made(value: Callable[[dict], object]) -> set:
        """The values the given sections were made with, else (none made yet) the folder's."""
        found = [(mine, value(m)) for mine, m in made]
        found = [(mine, v) for mine, v in found if isinstance(v, bool)]
        return {v for mine, v in found if mine} or {v for _, v in found}

    kept: list[tuple[str, bool]] = []  # (setting, as made)
    if cfg.loop is None:
        loops = set() if command == "score" else as_made(
            lambda m: m["settings"].get("loop") if isinstance(m.get("settings"), dict) else None)
        cfg.loop = loops == {True}
        if cfg.loop:
            kept.append(("loop", True))
        elif len(loops) > 1:
            cb.info(f"{flag('loop')} left out: some of this music loops and some does not; what is made again "
                    f"ends instead ({switch('loop', True)} loops it all)")
    if cfg.normalize is None:
        levels = as_made(lambda m: m.get("normalize"))
        cfg.normalize = levels != {False}
        if not cfg.normalize:
            kept.append(("normalize", False))
        elif len(levels) > 1:
            cb.info(f"{flag('normalize')} left out: some of this music is at -14 LUFS and some at its model's "
                    f"level; what is made again is at -14 LUFS ({switch('normalize', False)} keeps it all at the "
                    "model's level)")
    if kept:
        cb.info(f"{' and '.join(switch(k, on) for k, on in kept)}, as the music there was made "
                f"({', '.join(switch(k, not on) for k, on in kept)} to change it)")


def _with_both_models(command: str, sections: list, cfg: RunConfig, cb: Callbacks, vision_model: str,
                      music_model: str, check_composer=None) -> dict:
    """``run`` or ``score``: build both models (before any work: a missing key or model fails fast), place them
    where the executor runs them, then the command's stage under the output folder's lock."""
    names = _names_as_claimed(sections, cfg)
    _said_first_if_busy(cfg)
    left_out = None in (vision_model, music_model)
    kept = [side for side, name in (("vision", vision_model), ("music", music_model)) if name is None]
    vision_model, music_model = keep_models(cfg, names, command, cb, vision=vision_model, music=music_model)
    check_named(cfg, vision=vision_model, music=music_model)  # a misspelt name before Ray starts, or auto is said
    resume_stopped(cfg, names, command, cb)
    keep_switches(cfg, names, command, cb)
    with open_executor(cfg, cb) as executor:
        make = _builders(cfg, cb, executor, kept, vision=vision_model, music=music_model)
        describer = make(vision_model, "vision")
        composer = make(music_model, "music")
        check_shared_flags(cfg, describer, composer, auto="auto" in (vision_model, music_model), kept=left_out,
                           warn=cb.warn)
        if check_composer is not None:
            check_composer(composer)
        jobs: list[SectionJob] = []
        given: list[str] = []
        with _holding(cfg, command, page=True, cb=cb):  # before the models load where they run (Ray's workers): a
            # busy folder is said before, not after; a stop while they start still prints the manifest (--json)
            with _manifest_even_if_stopped(jobs, cfg, command, lambda: (describer.model_name, composer.model_name),
                                           page=True, cb=cb, given=given) as cb:
                describer, composer = executor.place(describer, composer)
                _claim_names(sections, cfg, cb)
                given[:] = [s.name for s in sections if not s.error]
                follow_moved_models(cfg, given, cb, vision=describer, music=composer)
                keep_as_made(cfg, [s.name for s in sections if not s.error], command, cb, composer)
                getattr(executor, command)(sections, jobs, describer, composer, cfg, cb)
                return _finish(jobs, cfg, command, describer.model_name, composer.model_name, page=True)


@_stops_carry_a_manifest
def score(paths: Iterable[str | Path] | str | Path, output: str | Path | None = None, *,
          vision_model: Optional[str] = None, music_model: Optional[str] = None, config: Optional[RunConfig] = None,
          callbacks: Optional[Callbacks] = None) -> dict:
    """Score every chapter under ``paths``: scenes found in its pages, one cue per scene as long as its reading,
    one continuous score, a cue sheet, WebVTT chapters and a read-along page (see :mod:`manga2music.scoring`).
    ``config.duration`` is not used (each cue is as long as its scene takes to read); ``loop`` and ``variations``
    are refused, as the command has no such flags.  A model left out (None): as in :func:`run`."""
    vision_model, music_model = _model_names(vision_model=vision_model, music_model=music_model)
    cfg = _settings(config, output)
    paths = _path_list(paths)
    cb = _callbacks(callbacks)
    check_config(cfg, composing=True, uses_duration=False)
    cfg.duration = None  # not used
    check_score_config(cfg)
    stages = {**(cfg.options or {}), **(cfg.vision_options or {})}.get("single_stage")
    if stages is not None:  # a chapter is read page by page into its own JSON, whatever it says: it was taken,
        # and only made the chapter be read again
        given = ("--single-stage" if stages else "--two-stage") if on_command_line() else "single_stage"
        raise InputError(f"{given} does not apply to score: a chapter's pages are read as a story, page by page, "
                         "in one way", hint=f"drop {given} (it applies to run and describe)")
    sections = find_sections(paths, exclude=[cfg.output], warn=cb.warn)
    loose = [p for p in paths if Path(p).is_file() and is_image_name(Path(p).name)]
    if len(loose) > 1:  # `score ch/*.jpg`: the shell gave the pages one by one
        cb.warn(f"{len(loose)} page images were given one by one: each is scored as a chapter of its own; give "
                "their folder (or an archive) to score them as one chapter")
    if cfg.scenes_file is not None and cfg.scenes_file != SCENES_FOUND:
        _check_scenes_file(cfg, sections)

    def check_composer(composer) -> None:
        if cfg.transitions == "continue" and not composer.continues:
            raise InputError(f"{flag('transitions', 'continue')} needs a "
                             "composer that carries audio on (MusicGen small, medium or large, or a stereo "
                             f"one); {composer.model_name} joins cues with crossfades",
                             hint=f"pick one with {flag('music_model')}, or drop {flag('transitions')}")

    return _with_both_models("score", sections, cfg, cb, vision_model, music_model, check_composer)


#: the settings of a score alone, with the value that means "not asked for"
SCORE_SETTINGS = {"reading_speed": RunConfig.reading_speed, "longest_cue": RunConfig.longest_cue,
                  "scenes_file": RunConfig.scenes_file, "transitions": RunConfig.transitions}


def refuse_score_settings(cfg: RunConfig, command: str) -> None:
    """A setting only ``score`` uses, given to another command, is an error: it would be ignored without a word."""
    for name, default in SCORE_SETTINGS.items():
        if getattr(cfg, name) != default:
            raise InputError(f"{name} is a setting of score(); {command}() does not use it "
                             f"(got {getattr(cfg, name)!r})",
                             hint=f"leave {name} out of the RunConfig given to {command}(), or call score()")


def check_score_config(cfg: RunConfig) -> None:
    # what `score` has no flag for (its cues loop already; one score a chapter); ``duration`` is not used either: each
    # cue is as long as its scene takes to read
    if cfg.loop:
        raise InputError("a score takes no loop setting: each of its cues is also written as a seamless loop "
                         "(NAME.cueNN.loop.*)", hint="leave loop out of the RunConfig given to score()")
    if cfg.variations not in (None, 1):
        raise InputError(f"a score is one take of its chapter (variations={cfg.variations} asked for more): give "
                         "each take its own seed and output folder", hint="leave variations out of the RunConfig "
                         "given to score()")
    if cfg.save_artifact:  # it has no such flag: a chapter's readings are in its record (NAME.json)
        raise InputError("a score writes no analysis artifact (save_artifact=True): each page's reading is in the "
                         "chapter's record, NAME.json", hint="leave save_artifact out of the RunConfig given to "
                         "score(), or call run() or describe() for NAME.analysis.json")
    if cfg.scenes_file is not None and not isinstance(cfg.scenes_file, (str, os.PathLike)):
        raise TypeError(f"scenes_file must be a path (a str or a Path) or \"auto\", not "
                        f"{type(cfg.scenes_file).__name__} ({cfg.scenes_file!r})")
    _as_plain_number(cfg, "reading_speed", float)
    _as_plain_number(cfg, "longest_cue", float)
    if cfg.reading_speed is not None:  # None: each chapter's speed before, else 1 (scoring.chapter_settings)
        _check_reading_speed(cfg.reading_speed)
    from .cuesheet import MIN_CUE_S

    longest = cfg.longest_cue
    if longest is not None and (not isinstance(longest, (int, float)) or not math.isfinite(longest)
                                or not MIN_CUE_S <= longest <= MAX_DURATION):
        raise InputError(f"{flag('longest_cue')} must be from {MIN_CUE_S:g} to {MAX_DURATION:g} seconds "
                         f"(got {longest!r}{'' if isinstance(longest, (int, float)) else ', a ' + type(longest).__name__})")
    if cfg.transitions is not None and cfg.transitions not in TRANSITIONS:
        raise InputError(f"{flag('transitions')} must be one of {', '.join(TRANSITIONS)} (got {cfg.transitions!r})")


def _check_reading_speed(speed) -> None:
    slowest, fastest = READING_SPEEDS
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed) or speed <= 0:
        raise InputError(f"{flag('reading_speed')} must be a number from {slowest:g} to {fastest:g} (got {speed!r}); "
                         "1 is the estimate's pace, 2 reads twice as fast")
    if speed > fastest:
        raise InputError(f"{flag('reading_speed', float(speed))} is more than {fastest:g} times the estimate's pace")
    if speed < slowest:  # a chapter read 20 times slower than the estimate is already hours of music
        raise InputError(f"{flag('reading_speed', float(speed))} is less than a twentieth of the estimate's pace "
                         f"({slowest:g} reads {1 / slowest:g} times slower)")


#: how a score's cues hand over at scene changes (``--transitions``)
TRANSITIONS = ("crossfade", "continue")


def _check_scenes_file(cfg: RunConfig, sections: list) -> None:
    """--scenes names pages of one chapter: check them now, before any work (one line for a bad entry)."""
    from .scenes import read_scenes_file

    chapters = [s for s in sections if not s.error]
    if len(chapters) != 1:
        raise InputError(f"{flag('scenes_file')} gives the scenes of one chapter, and {len(chapters)} chapters were "
                         f"found ({', '.join(c.name for c in chapters[:3])}{', ...' if len(chapters) > 3 else ''})",
                         hint="score that chapter alone: pass its own folder, archive or PDF (a chapter inside an "
                              "archive of several: unpack that chapter's folder and pass it)")
    def parts() -> list[int]:  # only when a line names a part of a tall strip: each page's size from its header
        from .pages import probe_page

        counts = []
        for page in chapters[0].pages:
            try:
                counts.append(probe_page(page).tiles)
            except Manga2MusicError:
                counts.append(1)  # an unreadable page: the run skips it, saying why
        return counts

    try:
        read_scenes_file(cfg.scenes_file, [p.name for p in chapters[0].pages], parts)
    except Manga2MusicError as exc:
        raise InputError(exc.message, hint=exc.hint) from None



@_stops_carry_a_manifest
def describe(paths: Iterable[str | Path] | str | Path, output: str | Path | None = None, *,
             model: Optional[str] = None, config: Optional[RunConfig] = None,
             callbacks: Optional[Callbacks] = None) -> dict:
    """Write a music description (and record) per section, no audio.  ``model`` left out (None): as in
    :func:`run`."""
    (model,) = _model_names(model=model)
    cfg = _settings(config, output)
    paths = _path_list(paths)
    cb = _callbacks(callbacks)
    check_config(cfg, composing=False)
    refuse_score_settings(cfg, "describe")
    sections = find_sections(paths, exclude=[cfg.output], warn=cb.warn)
    _said_first_if_busy(cfg)
    left_out = model is None
    model, _ = keep_models(cfg, _names_as_claimed(sections, cfg), "describe", cb, vision=model,
                           flags=("model", "model"))
    with open_executor(cfg, cb) as executor:
        describer = _builders(cfg, cb, executor, ["vision"] if left_out else [], vision=model)(model, "vision")
        check_shared_flags(cfg, describer, auto=model == "auto", kept=left_out, warn=cb.warn)
        if cfg.seed is not None and "seed" not in type(describer).Options.model_fields:  # no music here: the seed
            if left_out or model == "auto":  # is the describer's, and this one does not sample
                cb.warn(not_used_by_auto(["seed"], [describer.model_name], kept=model != "auto"))
            else:
                raise InputError(f"{flag('seed')} does not apply to {describer.model_name} (the vision model)",
                                 hint=f"drop {flag('seed')}, or choose a vision model that samples: a local VLM or a "
                                      "server (`manga2music models list`)")
        jobs: list[SectionJob] = []
        with _holding(cfg, "describe", page=False, cb=cb):  # before the model loads (see _with_both_models)
            (describer,) = executor.place(describer)
            given: list[str] = []  # those a stop leaves: every section not described yet, as for run (only the one
            # in progress was kept, and the plain rerun was refused: "made by builtin and my-vlm")
            with _manifest_even_if_stopped(jobs, cfg, "describe", lambda: (describer.model_name, None), page=False,
                                           cb=cb, given=given) as cb:
                _claim_names(sections, cfg, cb)
                given[:] = [s.name for s in sections if not s.error]
                follow_moved_models(cfg, given, cb, vision=describer)
                executor.describe(sections, jobs, describer, cfg, cb)
                return _finish(jobs, cfg, "describe", describer.model_name, None, page=False)


def find_descriptions(paths: Iterable[str | Path], output: str | Path | None = None) -> list[tuple[str, Path]]:
    """``(section name, .txt path)`` for description files, or folder trees of them as ``describe`` writes.

    A file inside ``output`` (the folder being composed into) is named by its place there, ``ch1/calm`` for
    ``OUT/ch1/calm.txt``, however it was given: it is that section's description.  Others are named by their
    place under the folder given (a file given alone: by its name)."""
    found: list[tuple[str, Path]] = []
    inside = Path(os.path.realpath(output)) if output is not None else None

    def name_of(txt: Path, where: Path, under: Path) -> str:
        """``where``: the real path of ``txt`` (a link to the output folder leads to its own sections)."""
        if inside is not None and where.is_relative_to(inside):
            return _section_written_as(where, inside) or readable(where.relative_to(inside).with_suffix("").as_posix())
        return readable(txt.relative_to(under).with_suffix("").as_posix())

    seen: set[Path] = set()  # a file given twice (a folder and a file in it) is one description, composed once
    scenes: list[Path] = []  # a score's scene descriptions, left to `score`

    def add(txt: Path, under: Path) -> None:
        where = Path(os.path.realpath(txt))
        if where not in seen:
            seen.add(where)
            found.append((name_of(txt, where, under), txt))

    for raw in paths:
        path = Path(raw)
        if not os.path.lexists(path):
            raise InputError(f"{readable(path)}: no such file or folder")
        if not path.is_dir():
            if path.suffix.lower() != ".txt":
                raise InputError(f"{readable(path)}: compose reads .txt description files (or a folder of them)")
            scene = _scores_scene_text(path)
            if scene:  # composed alone it made a stray track beside the cue, which stayed as it was
                raise InputError(f"{readable(path.name)} is scene {int(scene[1])} of the score of {scene[0]}, whose cue "
                                 "is as long as its scene's pages take to read",
                                 hint="score the chapter again into that folder: your edits to the scene "
                                 "descriptions are kept and composed")
            add(path, path.parent)
            continue
        texts = (t for t in path.rglob("*") if t.suffix.lower() == ".txt" and not t.is_dir())  # NOTES.TXT too
        for txt in sorted(texts, key=lambda p: natural_key(p.as_posix())):
            rel = txt.relative_to(path)
            if any(is_hidden(part) for part in rel.parts) and not _made_here(txt):  # a hidden folder's section
                continue  # (`run lib/.hidden`) has hidden-named files of its own: its words are read
            if _scores_scene_text(txt):
                scenes.append(txt)
                continue
            add(txt, path)
    if not found and scenes:  # a score's folder: its scenes' words are composed again by `score`, which times them
        raise InputError(f"{', '.join(readable(p) for p in paths)} holds only the scene descriptions of a score "
                         f"({readable(scenes[0].name)}...), which compose does not read: each cue's length comes "
                         "from its scene's pages", hint="score the chapter again into that folder (your edits to "
                         "the scene descriptions are kept), or give compose other description files")
    if not found:
        raise InputError(f"no .txt description found in {', '.join(readable(p) for p in paths)}",
                         hint='run "manga2music describe PATH" first, or pass ' + _text_example())
    return found


def _say_descriptions_gone(paths: list, output: Path, composing: set[str], cb: Callbacks) -> None:
    """``compose OUT -o OUT``: a section of OUT whose description the user deleted is not composed (its music stays),
    and is said; it was left out without a word."""
    from .outputs import MANIFEST, SectionFiles, read_record

    if not any(os.path.realpath(p) == os.path.realpath(output) for p in paths):
        elsewhere = [p for p in paths if Path(p).is_dir() and read_record(Path(p) / MANIFEST) is not None]
        if elsewhere:  # `describe LIB -o desc`, then `compose desc`: the music went to ./output, unsaid
            into = f"-o {readable(elsewhere[0])}" if on_command_line() else f"output={readable(elsewhere[0])!r}"
            cb.info(f"composing the descriptions of {readable(elsewhere[0])} into {readable(output)}, another folder "
                    f"({into} composes them beside their pages' records)")
        return
    for entry in (read_record(Path(output) / MANIFEST) or {}).get("sections") or []:
        name, record = entry.get("name"), entry.get("record")
        if not isinstance(name, str) or name in composing or not isinstance(record, str):
            continue
        made = read_record(Path(output) / record) or {}
        description = SectionFiles.for_section(output, name).description
        if made.get("describe") and not description.exists():
            stays = " (its music stays)" if (made.get("compose") or {}).get("takes") else ""  # none made yet
            cb.info(f"{name}: {description.name} is gone, so it is not composed{stays}; "
                    "`manga2music describe` of its pages writes it again")


def _section_written_as(txt: Path, output: Path) -> Optional[str]:
    """The section whose description ``txt`` (in ``output``) is, as its record names it: a chapter named
    ``Ch 1: Start?`` is written as ``Ch 1_ Start_.txt``, and composing it must not make a section of that name."""
    from .outputs import read_record

    record = read_record(txt.with_name(txt.name[: -len(txt.suffix)] + ".json"))
    name = record.get("section") if record else None
    if not isinstance(name, str) or not name:
        return None
    return name if _is_description_of(output, name, txt) else None


def _is_description_of(output: Path, name: str, txt: Path) -> bool:
    """Whether ``txt`` is section ``name``'s own description file in ``output`` (through links too)."""
    from .outputs import SectionFiles

    return os.path.realpath(SectionFiles.for_section(output, name).description) == os.path.realpath(txt)


def _made_here(txt: Path) -> bool:
    """Whether ``txt`` is the description of a section manga2music made there (its record beside it)."""
    from .outputs import read_record

    record = read_record(txt.with_suffix(".json"))
    return isinstance(record, dict) and isinstance(record.get("description"), str)


def _scores_scene_text(txt: Path) -> Optional[tuple[str, str]]:
    """``ch.scene01.txt`` beside ``ch.json`` whose record has a score: a scene of that chapter's score (the words
    its cue is composed from, edited or not), not a section's description to compose on its own.  Its chapter (as
    its record names it) and scene number, else None."""
    from .outputs import read_record

    match = re.fullmatch(r"(.+)\.scene(\d{2,})\.txt", txt.name)
    if not match:
        return None
    record = read_record(txt.with_name(f"{match.group(1)}.json"))
    if not (record and record.get("score")):
        return None
    return readable(str(record.get("section") or match.group(1))), match.group(2)


def _names_of_their_own(items: list[tuple[str, str, Optional[Path]]], output: Path,
                        say: Callable[[str], None]) -> list[str]:
    """Each description's section name in ``output``, numbered ``-2``, ``-3``... where it would take another
    section's place: one of the same name made from pages (``describe``, ``run``) whose description file this is
    not, or one composed from another description file (``A/theme.txt`` then ``B/theme.txt``), or from other words
    given as text (two ``--text`` whose first six words are the same).  A ``--text`` of the words "calm" is not the
    chapter calm, and its track must not replace the chapter's; nor did B's theme A's, whose words were then gone
    from every file.  Music composed before descriptions' files were recorded (no ``description_file``) is the
    section of its name, as it was."""
    from .outputs import SectionFiles, read_record

    def made_from(name: str, source: Optional[Path], words: str) -> Optional[str]:
        """What section ``name`` there was made from where it is another than these words (pages, a file, other
        words), else None."""
        if source is not None and _is_description_of(output, name, source):
            return None
        record = read_record(SectionFiles.for_section(output, name).record) or {}
        if record.get("pages") or record.get("describe"):
            return "pages"
        made = record.get("compose") if isinstance(record.get("compose"), dict) else {}
        was = made.get("description_file")
        if not isinstance(was, str):
            return None
        if was == TEXT_GIVEN:
            return None if source is None and made.get("description") == words else TEXT_GIVEN
        return None if source is not None and was == place_from_output(source, output) else was

    names = unique_names([name for name, _, _ in items],
                         lambda i, name: made_from(name, items[i][2], items[i][1]) is not None)
    for (name, words, source), free in zip(items, names):
        other = made_from(name, source, words) if free != name else None
        if other is None:
            continue
        if isinstance((read_record(SectionFiles.for_section(output, free).record) or {}).get("compose"), dict):
            continue  # composed as that number before: said then (it was said at every rerun)
        if other not in ("pages", TEXT_GIVEN):
            other = os.path.normpath(Path(output) / other)  # as the record places it, from the output folder
        given = readable(source) if source is not None else flag("text")
        if other == "pages":
            mine = readable(SectionFiles.for_section(output, name).description)
            say(f"{given}: {name} in {readable(output)} is a section made from pages: composed as {free} (to "
                f"compose that section again, edit {mine})")
        else:
            was = f"other words given as {flag('text')}" if other == TEXT_GIVEN else readable(other)
            say(f"{given}: {name} in {readable(output)} is composed from {was}: composed as {free}")
    return names


def _text_example() -> str:
    return '--text "..."' if on_command_line() else 'text="..."'


def _slug(text: str) -> str:
    words = re.findall(r"\w+", text.lower())[:6]
    return "-".join(words) or "track"


@_stops_carry_a_manifest
def compose(paths: Iterable[str | Path] | str | Path = (), output: str | Path | None = None, *,
            text: Optional[str | list[str]] = None, model: Optional[str] = None, config: Optional[RunConfig] = None,
            callbacks: Optional[Callbacks] = None) -> dict:
    """Compose tracks from description files and ``text`` (one description, or a list: a track each).  ``model``
    left out (None): as in :func:`run`."""
    (model,) = _model_names(model=model)
    cfg = _settings(config, output)
    paths = _path_list(paths)
    cb = _callbacks(callbacks)
    check_config(cfg, composing=True)
    refuse_score_settings(cfg, "compose")
    items: list[tuple[str, str, Optional[Path]]] = []  # (name, description, its file)
    if text is not None and not isinstance(text, (str, list, tuple)):  # bytes were read as numbers one by one
        raise TypeError(f"text must be a description (a str) or a list of them, not {type(text).__name__}")
    for given in [text] if isinstance(text, str) else list(text or []):
        if not isinstance(given, str):
            raise TypeError(f"text must be a description (a str) or a list of them, not {type(given).__name__} "
                            f"({given!r})")
        given = readable(given).strip()
        if not given:
            raise InputError(f"{flag('text')} is empty")
        items.append((_slug(given), given, None))
    unusable: list[tuple[str, str]] = []  # (section, why): a section's own description in the output folder,
    # emptied or unreadable, fails that section (as in `run`); another file is only skipped
    if paths:
        for name, txt in find_descriptions(paths, cfg.output):
            try:
                content = read_description(txt, cb.warn)
                why = None if content else f"{readable(txt.name)} is empty: write the music description in it"
            except Manga2MusicError as exc:
                why = exc.message
            if why is None:
                items.append((name, content, txt))
            elif _is_description_of(cfg.output, name, txt):
                unusable.append((name, why))
            else:
                cb.warn(f"Skipping {readable(txt)}: {why}")
    if not items:
        for name, why in unusable:
            cb.warn(failed_line(name, why))
        if unusable:  # the files were given: their words are what is wrong ("pass description files" misled)
            raise InputError("nothing to compose: no description given holds words to compose from (see above)",
                             hint="write the music description in each file, as text")
        raise InputError("nothing to compose", hint="pass description files or " + _text_example())
    names = _names_of_their_own(items, cfg.output, cb.info)
    items = [(name, content, source) for name, (_, content, source) in zip(names, items)]
    names = [name for name, _, _ in items] + [name for name, _ in unusable]
    _said_first_if_busy(cfg)
    left_out = model is None
    _, model = keep_models(cfg, names, "compose", cb, music=model, flags=("model", "model"))
    resume_stopped(cfg, names, "compose", cb)
    keep_switches(cfg, names, "compose", cb)
    with open_executor(cfg, cb) as executor:
        composer = _builders(cfg, cb, executor, ["music"] if left_out else [], music=model)(model, "music")
        check_shared_flags(cfg, composer, auto=model == "auto", kept=left_out, warn=cb.warn)
        jobs: list[SectionJob] = []
        with _holding(cfg, "compose", page=False, cb=cb):  # before the model loads (see _with_both_models)
            (composer,) = executor.place(composer)
            with _manifest_even_if_stopped(jobs, cfg, "compose", lambda: (None, composer.model_name), page=False,
                                           cb=cb, given=[name for name, _, _ in items]) as cb:
                _refuse_busy_folders_of(names, cfg, cb)  # as run's (see _claim_names)
                follow_moved_models(cfg, [name for name, _, _ in items], cb, music=composer)
                for name, content, source in items:
                    job = start_job(name, cfg.output, cb)
                    job.description = content
                    job.description_file = place_from_output(source, cfg.output) if source is not None else \
                        TEXT_GIVEN
                    jobs.append(job)
                for name, why in unusable:  # as `run` fails it: its music is left as it was
                    jobs.append(start_job(name, cfg.output, cb))
                    jobs[-1].fail(why, cb)
                keep_as_made(cfg, [job.name for job in jobs], "compose", cb, composer)
                _say_descriptions_gone(paths, cfg.output, {job.name for job in jobs}, cb)
                executor.compose(jobs, composer, cfg, cb)
                return _finish(jobs, cfg, "compose", None, composer.model_name, page=False)


__all__ = ["run", "score", "describe", "compose", "find_descriptions", "check_config", "RunConfig", "Callbacks"]
