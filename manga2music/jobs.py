"""A section's journey through a run: its job, its record, failures that stay inside it, its manifest entry.

Every stage (:mod:`manga2music.describing`, :mod:`manga2music.composing`) works on
:class:`SectionJob` objects.  ``job.record`` is always what is on disk; a stage
changes it only through :meth:`SectionJob.commit` (the kill-safe write order of
:func:`manga2music.outputs.commit`).  :func:`guarded` runs one step of one
section: any failure except a run-stopping one fails that section alone.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .errors import InputError, Manga2MusicError
from .files import decode_text, raise_for_disk, read_regular_file, readable
from .options import another_output
from .outputs import SectionFiles, Staged, cannot_read, commit, new_record, read_record, settle
from .progress import ProgressFn

LogFn = Callable[[str, str], None]  # (level: "info" | "warning", message)
#: a section's skipped pages said one by one; past them, one line says its record lists the rest
SKIPS_SAID = 10

#: a description file larger than this is not a description
MAX_DESCRIPTION_BYTES = 1024 * 1024


def failed_line(name: str, message: str) -> str:
    """What a run says when section ``name`` fails (the others go on): not "Skipping", which a rerun says of a section
    with nothing to do."""
    return f"{name} failed: {message}"


@dataclass
class Callbacks:
    sections: Optional[ProgressFn] = None  # overall: (done, total, section name)
    step: Optional[ProgressFn] = None  # current step: pages, tokens, decoder steps
    log: Optional[LogFn] = None
    #: runs spread over workers (``--ray``): what each worker is doing, ``(worker, label)``; ``""`` when idle
    worker: Optional[Callable[[str, str], None]] = None

    #: the warnings said by :meth:`warn_once` (shared by the copies :func:`dataclasses.replace` makes)
    said: set = field(default_factory=set, repr=False, compare=False)
    #: pages said skipped, by section (:meth:`skipped_page`), shared alike
    skips: dict = field(default_factory=dict, repr=False, compare=False)

    def info(self, message: str) -> None:
        self._say("info", message)

    def warn_once(self, message: str, key: str | None = None) -> None:
        """:meth:`warn`, once per run for each ``key`` (default: the message): what every section would say alike."""
        key = message if key is None else key
        if key not in self.said:
            self.said.add(key)
            self.warn(message)

    def warn(self, message: str) -> None:
        self._say("warning", message)

    def skipped_page(self, section: str, page: str, why: str) -> None:
        """"SECTION: skipping page PAGE: WHY" for a section's first :data:`SKIPS_SAID` pages, then one line for the
        rest: an archive of 4000 broken entries printed 4000 lines.  Its record lists every one, with why."""
        said = self.skips[section] = self.skips.get(section, 0) + 1
        if said <= SKIPS_SAID:
            self.warn(f"{section}: skipping page {page}: {why}")
        elif said == SKIPS_SAID + 1:
            self.warn(f"{section}: skipping more pages (its record's skipped_pages lists each, with why)")

    def _say(self, level: str, message: str) -> None:
        """``log(level, message)``; as for the progress callbacks (:func:`~manga2music.progress.report`), an error
        in the caller's callback never breaks the work (a Ctrl-C still stops it)."""
        if self.log is None:
            return
        try:
            self.log(level, message)
        except Exception:  # noqa: BLE001 - the caller's display, not the run
            pass


#: a record's ``compose.description_file`` for music composed from words given as text (``--text``)
TEXT_GIVEN = "--text"


@dataclass
class SectionJob:
    """One section moving through the run.  ``record`` is always what is on disk."""

    name: str
    files: SectionFiles
    record: dict
    output: Path = Path("output")
    description: Optional[str] = None
    status: str = "pending"  # pending | ok | skipped | failed
    message: Optional[str] = None
    did_work: bool = False
    tracks: list[Path] = field(default_factory=list)
    midi: list[Path] = field(default_factory=list)
    skipped_pages: Optional[list[dict]] = None  # pages this run could not read (None: not read this run)
    seed: Optional[int] = None  # the seed of what this command made (a score's); None: the record's compose seed
    kept_takes: list[dict] = field(default_factory=list)  # takes already made that this run's new ones go after
    #: a failed section's: the tokens its model calls took before it failed, and their cost (see ``guarded``)
    spent: Optional[tuple[Optional[dict], Optional[float]]] = None
    music_outdated: bool = False  # a new description, and the music there is of the one before (see ``commit``)
    source: Optional[str] = None  # the file of a section that could not be read at all (see each_section)
    read_as: str = ""  # where it is listed in reading order, when not by its name (Section.read_as)
    #: ``compose``: the description file its music is composed from (from the output folder, through links:
    #: ``files.place_from_output``), or TEXT_GIVEN for words given
    #: as text; None for a section of pages (``run``), whose record then names none
    description_file: Optional[str] = None

    def fail(self, message: str, cb: Callbacks) -> None:  # the run goes on with the other sections
        self.status, self.message = "failed", message
        cb.warn(failed_line(self.name, message))

    def note(self, updates: dict) -> None:
        """Write ``updates`` to the record with nothing made (the pages' new places, the pages skipped now, a score's
        settings): the section's status stays as it was ("skipped" when that is all a rerun did)."""
        worked = self.did_work
        self.commit(Staged(), updates)
        self.did_work = worked

    def commit(self, staged: Staged, updates: dict) -> None:
        before = self.record
        self.record = commit(self.files.record, self.record, staged, updates)
        self.did_work = True
        if "description" in updates and "compose" not in updates and (before.get("compose") or {}).get("takes") \
                and updates["description"] != before.get("description"):
            self.music_outdated = True  # `describe` wrote new words; the section's music is of the ones before
        elif "compose" in updates:  # `run` composed from them after: its music is new (it was still called old)
            self.music_outdated = False


def start_job(name: str, output: Path, cb: Callbacks) -> SectionJob:
    """A job for section ``name``: its record as a killed run may have left it, folded back to a settled state."""
    files = SectionFiles.for_section(output, name)
    old = read_record(files.record)
    job = SectionJob(name, files, record=settle(dict(old), files.record.parent) if old else new_record(name),
                     output=Path(output))
    why = cannot_read(files.record) if files.record.exists() and old is None else None
    if why:
        job.fail(f"cannot read {readable(files.record)} ({why}), so what was made for {name} is not known; give read "
                 f"access back (chmod u+r), or choose {another_output()}", cb)
    elif files.record.exists() and old is None:
        job.fail(f"{readable(files.record)} exists and was not written by manga2music; move it or choose "
                 f"{another_output()}", cb)
    elif old is None and files.description.exists() and _record_was_here(output, name):
        cb.warn(f"{name}: its record {files.record.name} is gone, so the files manga2music made for it can no longer "
                "be told from yours and none is replaced; delete them (or move them away) to make them again")
    return job


def start_section_job(section, output: Path, cb: Callbacks) -> SectionJob:
    """:func:`start_job` for ``section`` (a :class:`~manga2music.sections.Section`), here or on Ray: a section that
    fails names its folder, archive or PDF in its entry, so that a later run drops the entry once that is gone (a
    failed download deleted since stayed "failed" on the page for good)."""
    job = start_job(section.name, output, cb)
    job.source, job.read_as = section.container_path, section.read_as
    if job.status != "failed":
        blocking = _file_in_the_way(job)
        if blocking is not None:  # "cannot write its files: FileExistsError: [Errno 17] File exists: 'Vol 1.cbz'"
            import os

            own = job.source is not None and os.path.realpath(blocking) == os.path.realpath(job.source)
            job.fail(f"its files go in the folder {readable(blocking.relative_to(job.output).as_posix())}/ of the "
                     f"output folder, but {readable(blocking.name)} there is "
                     + (f"the archive its pages are read from; choose {another_output()}" if own
                        else f"a file; move it or choose {another_output()}"), cb)
    return job


def _file_in_the_way(job: SectionJob) -> Optional[Path]:
    """The file (not folder) where one of the folders a section's files go in must be (a chapter of `Vol 1.cbz`
    written into the library itself, beside the archive; a file of the user's named as a volume), else None."""
    folder = job.files.base.parent
    try:
        inside = folder.relative_to(job.output)
    except ValueError:
        return None
    path = job.output
    for part in inside.parts:
        path = path / part
        if path.exists() and not path.is_dir():
            return path
        if not path.exists():
            return None
    return None


def _record_was_here(output: Path, name: str) -> bool:
    """Whether the output folder's manifest lists ``name`` with the record that is gone (a user deleted it)."""
    from .outputs import MANIFEST

    manifest = read_record(Path(output) / MANIFEST) or {}
    return any(isinstance(e, dict) and e.get("name") == name and e.get("record") for e in manifest.get("sections", []))


def _write_error_words(exc: OSError) -> str:
    """A failed write said by the file it was to be (not its hidden temporary name, nor Python's exception type):
    `chattr +i calm.json` was "PermissionError: [Errno 1] Operation not permitted: '/out/.calm.json.tmp-1fb8346f'
    -> '/out/calm.json'"."""
    from .files import TEMP_NAME

    target = exc.filename2 if exc.filename2 is not None else exc.filename
    if target is None or not exc.strerror:
        return describe_error(exc)
    name = os.fsdecode(os.path.basename(os.fspath(target)))
    if TEMP_NAME.match(name):  # ".calm.json.tmp-1fb8346f": the file it was written for
        name = name[1:].rsplit(".tmp-", 1)[0]
    return f"{readable(name)} could not be written there ({exc.strerror})"


def describe_error(exc: BaseException) -> str:
    """One line naming an unexpected error's type and message (no object reprs, no temp paths)."""
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {readable(text)}" if text else type(exc).__name__


def each_section(sections: list, output: Path, cb: Callbacks, doing: str, done: str,
                 work: Callable[..., None], jobs: Optional[list] = None) -> list[SectionJob]:
    """One section after another: its job started (:func:`start_job`), then ``work(section, job)`` unless the job
    already failed, any failure kept in its section (:func:`guarded`); the progress says ``doing NAME``, then
    ``done``.  Returns the jobs in the sections' order, each added to ``jobs`` (when given) as it starts, so that a
    stopped command still knows the ones it finished."""
    from .progress import report

    jobs = [] if jobs is None else jobs
    for i, section in enumerate(sections):
        report(cb.sections, i, len(sections), f"{doing} {section.name}")
        job = start_section_job(section, output, cb)
        jobs.append(job)
        if job.status != "failed":
            guarded(job, cb, lambda s=section, j=job: work(s, j))
    report(cb.sections, len(sections), len(sections), done)
    return jobs


def guarded(job: SectionJob, cb: Callbacks, step: Callable[[], None]) -> None:
    """Run one section's step; any failure except a run-stopping one fails just that section."""
    try:
        step()
    except Manga2MusicError as exc:
        job.spent = (exc.usage, exc.cost_usd) if exc.usage is not None else None
        hint = (exc.hint or "").strip().rstrip(".")
        message = exc.message.rstrip(".") + (f". {hint[0].upper()}{hint[1:]}" if hint else "")  # what to do, as a
        # run-stopping error says it
        if exc.stops_run:  # said once, as the run's error; the manifest names the section it stopped at
            job.status, job.message = "failed", message
            raise
        job.fail(message, cb)
        _debug_traceback(cb)  # where a server's or a library's failure was raised: what a bug report needs
    except OSError as exc:
        raise_for_disk(exc, job.files.base.parent)
        job.fail(f"cannot write its files: {_write_error_words(exc)}", cb)
        _debug_traceback(cb)
    except Exception as exc:  # noqa: BLE001 - whatever a library raises stays inside the section
        job.fail(_unnameable(exc) or describe_error(exc), cb)
        _debug_traceback(cb)


def _unnameable(exc: Exception) -> Optional[str]:
    """The words for a name the file system's encoding cannot write (``PYTHONUTF8=0 LC_ALL=C``, a Japanese name;
    the command line starts itself in UTF-8 mode otherwise: cli/streams.py), else None."""
    encoding = sys.getfilesystemencoding()
    if not isinstance(exc, UnicodeEncodeError) or exc.encoding != encoding:
        return None
    return (f"its name cannot be a file name in this locale's encoding ({encoding}): use a UTF-8 locale, or Python's "
            "UTF-8 mode (PYTHONUTF8=1)")


def _debug_traceback(cb: Callbacks) -> None:
    from .settings import debug_enabled

    if debug_enabled():
        cb.warn(traceback.format_exc())


def read_description(path: Path, warn: Optional[Callable[[str], None]] = None) -> str:
    """A description file as text, whatever encoding the user saved it in; only regular files, size-checked.  Not
    text (a NUL, or more than one character in 50 a control character: random bytes, a saved image) is an
    :class:`InputError`: it was composed from mojibake, said only as "no music words recognised".  ``warn`` hears
    the encoding guessed for a file that is not UTF-8, with its first words as read: a short Chinese description
    in GBK was read as Korean and composed from, unsaid."""
    guessed: list = []
    text = decode_text(read_regular_file(path, MAX_DESCRIPTION_BYTES, what="description"), guessed)
    if guessed and warn is not None:
        start = " ".join(text.split())
        start = start if len(start) <= 40 else start[:40] + "..."
        warn(f"{readable(path)} is not UTF-8: read as {guessed[0]}, a guess (\"{start}\"); if its words read wrong, "
             "save it as UTF-8")
    controls = sum(1 for c in text if (c < " " and c not in "\t\n\r\f") or c in "\x7f\ufffd")
    if "\x00" in text or controls * 50 > len(text):
        raise InputError(f"{readable(path.name)} is not a text file (it holds binary data)",
                         hint="write the music description in it as text")
    # Windows' (and old Macs') line ends are the same words: saving the file in another editor is no new description
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def read_edited_description(path: Path, warn: Optional[Callable[[str], None]] = None) -> str:
    """A description the user wrote or edited, to compose from (:func:`read_description`).  An empty one is an
    :class:`InputError`: composing from no words would make music nobody asked for, under a record that says ""."""
    text = read_description(path, warn)
    if not text:
        raise InputError(f"{path.name} is empty: write the music description in it, or delete it to have the "
                         "pages described again")
    return text


def _words_seed(job: SectionJob, command: str) -> Optional[int]:
    """For ``describe``, of a section with no music: the seed its words were read with (a local VLM's, given or
    drawn), which ``--seed`` makes them again with; the manifest said null, even under ``--seed``."""
    seed = (job.record.get("describe") or {}).get("seed") if command == "describe" else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def manifest_entry(job: SectionJob, output: Path, vision: str | None, music: str | None, command: str = "run") -> dict:
    status = job.status
    if status in ("pending", "skipped"):
        status = "ok" if job.did_work else "skipped"

    def rel(p: Path | str) -> str:
        try:
            return readable(Path(p).relative_to(output).as_posix())
        except ValueError:
            return readable(p)

    describe = job.record.get("describe", {})
    if command == "score":  # what the score's words took: its reading of the pages and its scenes' descriptions
        score = job.record.get("score") or {}
        reading = job.record.get("chapter_reading") or describe
        describe = {"model": reading.get("model"), "usage": score.get("usage", reading.get("usage")),
                    "cost_usd": score.get("cost_usd", reading.get("cost_usd"))}
    tracks, midi = job.tracks, job.midi
    left = False  # the music listed is the one made before (not this run's composer's)
    if status == "failed":  # this run's calls: what a failed section took before it failed (paid for), not the
        # usage of a description made before
        describe = {**describe, "usage": job.spent[0] if job.spent else None,
                    "cost_usd": job.spent[1] if job.spent else None}
        if not tracks:  # its music is left as it was: listed (and played on the listening page), not "tracks": []
            tracks, midi = _music_left(job, command)
            left = bool(tracks)
    elif job.music_outdated and not tracks:  # described again, stopped before its music: the music there, said old
        tracks, midi = _music_left(job, command)
        left = bool(tracks)
    # a record there that is not ours (the section failed on it): neither it nor the words beside it are the
    # section's (a user's calm.json and calm.txt were listed as its record and words, and the rerun after the json
    # was moved away said the files "manga2music made for it" could no longer be told from the user's)
    theirs = status == "failed" and job.files.record.exists() and read_record(job.files.record) is None
    if left:  # named by the model that made it: the page said "music mg_wide" of the music mg made, mg_wide
        # having failed
        made = job.record.get("score" if command == "score" else "compose") or {}
        music = made.get("model") if isinstance(made.get("model"), str) else music
    return {
        "name": job.name,
        "command": command,  # which command made the entry (`run` and `score` may share an output folder)
        "status": status,
        "message": readable(job.message) if job.message else None,
        "description": rel(job.files.description) if job.files.description.exists() and not theirs else None,
        "record": rel(job.files.record) if job.files.record.exists() and not theirs else None,
        "tracks": [rel(t) for t in tracks],
        "midi": [rel(m) for m in midi],
        "pages": len(job.record.get("pages", [])),
        "skipped_pages": job.skipped_pages if job.skipped_pages is not None else job.record.get("skipped_pages", []),
        "vision_model": describe.get("model") or vision,  # the describer that made the description used
        "music_model": music,
        "seed": job.seed if job.seed is not None else job.record.get("compose", {}).get("seed",
                                                                                       _words_seed(job, command)),
        "usage": describe.get("usage") or None,
        "cost_usd": describe.get("cost_usd"),
        **(_score_files(job, rel) if command == "score" else {}),
        **({"music_outdated": True} if job.music_outdated else {}),
        **({"source": job.source} if job.source and status == "failed" else {}),
        **({"read_as": job.read_as} if job.read_as else {}),
        **({"analysis": rel(job.files.artifact())} if job.files.artifact().name in job.record.get("files", {})
           and job.files.artifact().exists() else {}),  # --save-artifact's, where ours (one of the user's is kept)
    }


def _music_left(job: SectionJob, command: str) -> tuple[list[Path], list[Path]]:
    """The music a failed section's record names, where its files are still there: (tracks, MIDI)."""
    folder = job.files.base.parent
    if command == "score":
        made = job.record.get("score") or {}
        if not isinstance(made.get("format"), str):
            return [], []
        from .scoring import ScoreFiles

        score = ScoreFiles(job, made["format"]).score
        return ([score] if score.exists() else []), []
    takes = [t for t in (job.record.get("compose") or {}).get("takes") or [] if isinstance(t, dict)]
    tracks = [folder / t["audio"] for t in takes if isinstance(t.get("audio"), str)]
    midi = [folder / t["midi"] for t in takes if isinstance(t.get("midi"), str)]
    return [p for p in tracks if p.exists()], [p for p in midi if p.exists()]


def _score_files(job: SectionJob, rel: Callable[[Path], str]) -> dict:
    """A chapter score's other files, for a script that reads the manifest (``tracks`` holds the score itself)."""
    files = {"cue_sheet": job.files.cue_sheet, "read_along": job.files.read_along, "chapters": job.files.chapters}
    return {key: rel(path) if path.exists() else None for key, path in files.items()}
