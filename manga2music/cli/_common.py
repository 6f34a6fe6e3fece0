"""Shared option types, error handling and progress display for the CLI."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator, Optional

import typer


@contextmanager
def offline_env(offline: bool) -> Iterator[None]:
    """--offline for the libraries too, while the command runs: huggingface_hub and transformers read these
    variables before any request (the backends also pass ``local_files_only``)."""
    names = ("HF_HUB_OFFLINE", "MANGA2MUSIC_OFFLINE")
    before = {n: os.environ.get(n) for n in names}
    if offline:
        os.environ.update({n: "1" for n in names})
    try:
        yield
    finally:
        for n, v in before.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def plain_console(stderr: bool = False):
    """A rich console that prints names and paths as they are: no highlighting, no emoji codes (`Re:Zero:` was
    `Re0️⃣`)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, emoji=False)


def stderr_console():
    return plain_console(stderr=True)


def fail(message: str, hint: str | None = None, code: int = 1) -> "typer.Exit":
    from rich.markup import escape

    console = stderr_console()
    console.print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)  # escaped: "manga2music[ray]" stays
    if hint:
        console.print(f"[dim]{escape(hint)}[/]", soft_wrap=True)
    return typer.Exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``docker stop``, systemd, a cluster's job killer), raised where the command is, so that
    it stops as Ctrl-C stops it: the same kill-safe unwinding, one line, and the process's clean-up."""


#: how long the stop after a Ctrl-C or SIGTERM may take before the command ends itself at once (see
#: :func:`_ends_anyway_after_a_grace_time`); a stop waits for the pages being read, a few seconds at most
STOP_GRACE_SECONDS = 30.0
_ends_itself = False  # the console script's own process (see :func:`own_process`)
_grace_time_running = False  # the first stop signal started it (a signal put off for a moment comes again)


def own_process() -> None:
    """Called by the console script: this process is the command's, so a stop may end it (never a program that
    runs the app inside itself, such as a test's CliRunner)."""
    global _ends_itself
    _ends_itself = True


def _terminated(signum, frame) -> None:
    _stop(signum, frame, Terminated)


def _interrupted(signum, frame) -> None:
    _stop(signum, frame, KeyboardInterrupt)


#: the signal that stopped the command: a SIGTERM's stop may reach it as a plain KeyboardInterrupt (Ray's wait
#: raises its own when a signal handler raised inside it), and still ends as SIGTERM's (143, "Stopped (SIGTERM).")
_stopped_by: Optional[int] = None


def _stop(signum, frame, raised: type[KeyboardInterrupt]) -> None:
    """What the first Ctrl-C or SIGTERM does: start the grace time, then raise ``raised`` where the main thread is
    (a moment later when that is inside the import machinery); the next signal ends the process at once."""
    global _stopped_by
    _stopped_by = signum
    _ends_anyway_after_a_grace_time(signum)
    if _inside_the_import_machinery(frame):
        return _again_in_a_moment(signum)
    _next_signal_ends_at_once()
    raise raised()


def _inside_the_import_machinery(frame) -> bool:
    """Whether the main thread was stopped inside importlib's own code (a module lock taken, not yet released; a
    module lock's weak-reference callback, where an exception is printed and lost).  A stop raised there left a
    module lock held, and the threads importing after it (the composer's warm-up, the page readers) waited forever.
    The code of the module being imported is not importlib's: a stop there unwinds the import cleanly."""
    return frame is not None and frame.f_code.co_filename.startswith("<frozen importlib")


def _again_in_a_moment(signum) -> None:
    """The signal once more, a moment later, when the import step it met is over (a few milliseconds); dropped when
    the command's stop is no longer there by then: its block ended in those milliseconds (its work finished, or
    failed and said so), and Python's own handler would meet the signal outside it ("Aborted!", exit 1)."""

    def again() -> None:
        if signal.getsignal(signum) in (_interrupted, _terminated):
            os.kill(os.getpid(), signum)

    threading.Timer(0.02, again).start()


def _ends_anyway_after_a_grace_time(signum) -> None:
    """The stop that the signal starts may never finish: Python raises its KeyboardInterrupt wherever the main
    thread is, and inside the import machinery that left a module lock held, so the exit waited forever on a thread
    waiting for that lock; inside a weak-reference callback the interrupt was lost while page-reading threads
    waited on that lock (2 of ~120 Ctrl-Cs on a busy machine).  A second Ctrl-C ends such a command, but a second
    signal sent with the first is one signal, and a service manager sends one.  So the process ends itself at once
    after :data:`STOP_GRACE_SECONDS` if it is still there; our files are written whole or not at all.  It starts
    with the first signal, also one put off because it met the import machinery (:func:`_again_in_a_moment`)."""
    global _grace_time_running
    if not _ends_itself or _grace_time_running:
        return
    _grace_time_running = True

    def later() -> None:
        time.sleep(STOP_GRACE_SECONDS)
        _at_once(signum, None, why=f"The stop did not finish within {STOP_GRACE_SECONDS:g} s: stopped at once.")

    threading.Thread(target=later, name="stop-grace-time", daemon=True).start()


def _next_signal_ends_at_once() -> None:
    """After the first Ctrl-C or SIGTERM, which stops the command where it is (it waits for the pages being read,
    then writes the manifest of what was finished), a second one ends the process at once.  Left to Python, a
    second Ctrl-C during its shutdown ended it with page-reading threads still inside the text detector, and the
    process aborted (exit 134).  Our files are written whole or not at all, so ending at once loses nothing."""
    import signal

    signal.signal(signal.SIGINT, _at_once)
    signal.signal(signal.SIGTERM, _at_once)


def end_now(code: int, line: str) -> None:
    """Say ``line`` and end the command's own process at once with ``code`` (its worker threads with it: a
    download's would go on to the end of their files); in a program that runs the app inside itself, exit."""
    if not _ends_itself:
        typer.echo(line, err=True)
        raise typer.Exit(code)
    os.write(2, f"{line}\n".encode())
    os._exit(code)


def _at_once(signum, frame, why: str = "Stopped at once.") -> None:
    import os
    import signal

    os.write(2, f"{why} Finished files are kept; run the same command again to resume.\n".encode())
    os._exit(143 if signum == signal.SIGTERM else 130)


@contextmanager
def running(flags: dict, cfg) -> Iterator["RunDisplay"]:
    """What run, score, describe and compose run their work in: one-line errors (:func:`friendly_errors`),
    ``--offline`` for the libraries too, Ray's lines off stdout, and the progress display, which it yields."""
    with friendly_errors(flags["json_output"]), offline_env(cfg.offline), stdout_kept_for_results(cfg), \
            RunDisplay() as display:
        yield display


@contextmanager
def stdout_kept_for_results(cfg) -> Iterator[None]:
    """With ``--ray``, what Ray prints on the driver ("(raylet) A worker died or was killed ...", in colour) goes to
    stderr while the command runs: on stdout it came before `--json`'s manifest, which was then no JSON at all."""
    if cfg.ray is None:
        yield
        return
    from contextlib import redirect_stdout

    with redirect_stdout(sys.stderr):
        yield


@contextmanager
def friendly_errors(json_output: bool = False) -> Iterator[None]:
    """Known errors become one red line (exit 1, or 2 for bad input); MANGA2MUSIC_DEBUG=1 re-raises.  Ctrl-C and
    SIGTERM stop the command with one line that says how to resume (exit 130 and 143).  With ``json_output``
    (`--json`), an error that stopped a run after it wrote its manifest prints that manifest on stdout first."""
    import signal
    import threading

    from ..errors import Manga2MusicError
    from ..options import settings_named_as_flags
    from ..settings import debug_enabled

    global _stopped_by
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        _stopped_by = None
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    previous_int = signal.signal(signal.SIGINT, _interrupted) if main_thread else None
    stopped = False
    try:
        with settings_named_as_flags():  # messages name the flags (`--reading-speed`), not the API's fields
            yield
    except Manga2MusicError as exc:
        _print_what_was_finished(getattr(exc, "manifest", None), json_output)  # a script's manifest, traceback
        if debug_enabled():  # or not (MANGA2MUSIC_DEBUG=1 printed none)
            raise
        hint = exc.hint or ("Set MANGA2MUSIC_DEBUG=1 for the full traceback." if exc.traceback_helps else None)
        raise fail(exc.message, hint, exc.exit_code) from None
    except KeyboardInterrupt as exc:
        stopped = True  # a second signal, while Python shuts down, still ends the process at once
        _print_what_was_finished(getattr(exc, "manifest", None), json_output)
        terminated = isinstance(exc, Terminated) or _stopped_by == signal.SIGTERM
        what = "Stopped (SIGTERM)." if terminated else "Interrupted."
        again = ("run the same command again to start over, or without --force to keep what there is: the "
                 "sections this run did not reach keep what was made before" if "--force" in sys.argv[1:]
                 else "run the same command again to resume")
        if isinstance(getattr(exc, "nothing_made", None), str):  # before any work (queued behind another run, the
            # download question): nothing made, or to resume
            stderr_console().print(f"[yellow]{what}[/] {escape_markup(exc.nothing_made)}", soft_wrap=True)
        elif getattr(exc, "manifest", None) is not None and getattr(exc, "left_to_make", None) == []:  # a stop as the
            # command ended: "run the same command again to resume" of a run with nothing left to make
            stderr_console().print(f"[yellow]{what}[/] Everything this command was given was made first: nothing "
                                   "is left to resume.", soft_wrap=True)
        else:
            stderr_console().print(f"[yellow]{what}[/] Finished files are kept; {again}.", soft_wrap=True)
        raise typer.Exit(143 if terminated else 130) from None
    finally:
        if main_thread and not stopped:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
            signal.signal(signal.SIGINT, previous_int if previous_int is not None else signal.default_int_handler)


def _print_what_was_finished(manifest: dict | None, json_output: bool) -> None:
    """A run stopped midway (an error, Ctrl-C, SIGTERM) after it wrote its manifest: `--json` prints that manifest
    on stdout, and a pipe gets the lines of the sections it finished, as a run that ends gives them (a script's
    `> m.json` was left empty)."""
    if manifest is None or not (json_output or not sys.stdout.isatty()):
        return
    finished = [e for e in _this_run(manifest)  # not a section described again whose music the stop left old
                if manifest.get("command") == "describe" or not e.get("music_outdated")]
    with suppress(OSError, ValueError):  # stdout closed (a pipe's reader gone)
        sys.stdout.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n" if json_output
                         else _result_lines(manifest, finished))
        sys.stdout.flush()


def check_paths(paths) -> None:
    """The first PATH that is not there, as one line (exit 2): for the commands to call before their progress
    display starts."""
    with friendly_errors():
        from ..sections import check_paths_exist

        check_paths_exist(paths)


def _time_left_column():
    """``about 12:34 left`` at a bar's recent pace; nothing until it has one (or when the bar has no total)."""
    from datetime import timedelta

    from rich.progress import ProgressColumn
    from rich.text import Text

    class TimeLeft(ProgressColumn):
        def render(self, task) -> Text:
            left = task.time_remaining
            if left is None or task.finished:
                return Text("")
            return Text(f"about {str(timedelta(seconds=int(left)))} left", style="progress.remaining")

    return TimeLeft()


#: a step's words while a server is asked again after a rate limit or an error ("rate-limited (429): retry 1 of 3")
_RETRY_WAIT = re.compile(r": retry \d+ of \d+")


class RunDisplay:
    """Two rich bars on stderr (sections overall, current step) and log lines; quiet when not a terminal.

    Each bar shows its time so far and, once it has moved, the time left at its recent pace (MusicGen on a CPU
    takes minutes a cue); the step bar starts its estimate afresh with each new step (pages, then decoding)."""

    def __init__(self, quiet: bool | None = None, console=None, clock=None):
        self.console = console or stderr_console()
        self.quiet = (not self.console.is_terminal) if quiet is None else quiet
        self.progress = None
        self.clock = clock
        self._tasks: dict[str, int] = {}
        self._wait_said = ""

    def __enter__(self) -> "RunDisplay":
        if not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), _time_left_column(), console=self.console, transient=True,
                                     get_time=self.clock)
            self.progress.start()
            self._tasks["sections"] = self.progress.add_task("sections", total=None)
            self._tasks["step"] = self.progress.add_task("", total=None)
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The bars stopped while a question is asked on stderr, then started again."""
        if self.progress is None:
            yield
            return
        self.progress.stop()
        try:
            yield
        finally:
            self.progress.start()

    def _update(self, which: str, done: int, total: int, label: str) -> None:
        if self.progress is None:
            return
        task = self._tasks[which]
        shown = next(t for t in self.progress.tasks if t.id == task)
        if done < shown.completed or (total or None) != shown.total:  # a new step: its pace is not the last one's
            self.progress.reset(task, total=total or None, completed=done, description=label[:60])
        else:
            self.progress.update(task, completed=done, total=total or None, description=label[:60])

    def sections(self, done: int, total: int, label: str) -> None:
        self._update("sections", done, total, label)

    def step(self, done: int, total: int, label: str) -> None:
        if self.progress is None and _RETRY_WAIT.search(label) and label != self._wait_said:  # no bar to say it:
            self._wait_said = label  # a log stood still for minutes with no word why (a server's rate limit)
            self.log("info", label)
        self._update("step", done, total, label)

    def worker(self, name: str, label: str) -> None:
        """One line per worker of a distributed run (``--ray``): what it is doing, and for how long."""
        if self.progress is None:
            return
        key = "worker:" + name
        if key not in self._tasks:
            self._tasks[key] = self.progress.add_task("", total=None)
        self.progress.reset(self._tasks[key], total=None, description=f"  {name}: {label or 'idle'}"[:70])

    def log(self, level: str, message: str) -> None:
        from rich.markup import escape

        style = "yellow" if level == "warning" else "dim"
        self.console.print(f"[{style}]{escape(message)}[/]", soft_wrap=True)

    def callbacks(self):
        from ..pipeline import Callbacks

        return Callbacks(sections=self.sections, step=self.step, log=self.log, worker=self.worker)


def _plain(text: str) -> str:
    """One field of a tab-separated line: tabs, newlines and backslashes escaped."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def print_summary(manifest: dict, as_json: bool, output: Path) -> int:
    """Results on stdout; the exit code: 1 when any section failed.

    ``--json``: the manifest.  A terminal: a table (long names wrap, never cut).  Anything else (a pipe,
    a log file): one ``name<TAB>status<TAB>output or message`` line per section, names whole, and the
    closing sentence on stderr, so a script can read every line.  A reader that stops reading (``| head``) is
    not an error (the exit code is still the sections'); stdout that cannot be written (a full disk) is one line.
    """
    try:
        return _print_summary(manifest, as_json, output)
    except BrokenPipeError:
        _stdout_to_devnull()
        return _exit_code(_this_run(manifest))
    except OSError as exc:
        _stdout_to_devnull()
        why, manifest_file = exc.strerror or str(exc), output / "manifest.json"
        stderr_console().print(f"[red]Error:[/] cannot write to standard output ({escape_markup(why)}); the results "
                               f"are in {escape_markup(str(manifest_file))}", soft_wrap=True)
        return 1


def _stdout_to_devnull() -> None:
    """Python's own flush of stdout at exit would fail again (and print "Exception ignored"): what is left unwritten
    goes nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _this_run(manifest: dict) -> list[dict]:
    """The manifest's entries of the sections this run was given."""
    this_run = set(manifest.get("this_run", []))
    return [e for e in manifest["sections"] if e["name"] in this_run]


def _exit_code(entries: list[dict]) -> int:
    """1 when a section failed, else 0."""
    return 1 if any(e["status"] == "failed" for e in entries) else 0


#: the least width of the results table's output column: under it each section gets lines of its own instead
RESULTS_OUTPUT_MIN = 20


def _detail(manifest: dict, e: dict) -> str:
    """What the command made of a section: `describe` its description (a track there is older)."""
    if e["status"] == "failed":
        return e["message"] or ""
    if manifest.get("command") == "describe":
        return e["description"] or ""
    return ", ".join(e["tracks"] or [e["description"] or ""]) or ""


def _result_lines(manifest: dict, entries: list[dict]) -> str:
    """The tab-separated lines a pipe gets: name, status, what was made (or why it failed)."""
    return "".join(f"{_plain(e['name'])}\t{e['status']}\t{_plain(_detail(manifest, e))}\n" for e in entries)


def _print_summary(manifest: dict, as_json: bool, output: Path) -> int:
    entries = _this_run(manifest)
    failed = [e for e in entries if e["status"] == "failed"]
    ok = len(entries) - len(failed)
    done = f"{ok} of {len(entries)} sections done; everything is in {output}{os.sep}"

    detail = functools.partial(_detail, manifest)

    if as_json:
        sys.stdout.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    elif not sys.stdout.isatty():
        sys.stdout.write(_result_lines(manifest, entries))
        sys.stdout.flush()
        stderr_console().print(f"[dim]{escape_markup(done)}[/]", soft_wrap=True)
    else:
        from rich.measure import Measurement
        from rich.padding import Padding
        from rich.table import Table
        from rich.text import Text

        colours = {"ok": "green", "skipped": "cyan", "failed": "red"}
        table, names = Table(show_edge=False, pad_edge=False), Table(show_edge=False, pad_edge=False)
        for col in ("section", "status", "output"):
            table.add_column(col, overflow="fold")
        for col in ("section", "status"):
            names.add_column(col)
        for e in entries:
            table.add_row(Text(e["name"]), Text(e["status"], colours[e["status"]]), Text(detail(e)))
            names.add_row(Text(e["name"]), Text(e["status"]))
        console = plain_console()
        # the table when its names and statuses fit unbroken with room for the output (a long path there is folded)
        unbroken = Measurement.get(console, console.options.update_width(10**6), names).minimum
        if unbroken + 3 + RESULTS_OUTPUT_MIN <= console.width:
            console.print(table)
        else:  # a narrow terminal (under about 40 columns), where the table would break names and files mid-word
            for e in entries:
                console.print(Text.assemble((e["name"], "bold"), "  ", (e["status"], colours[e["status"]])))
                if detail(e):
                    console.print(Padding(Text(detail(e)), (0, 0, 0, 2)))  # wraps under itself
        console.print(escape_markup(done), soft_wrap=True)
    return _exit_code(entries)


def escape_markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)
