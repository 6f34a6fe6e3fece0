"""The offline composer: any music description -> a SoundFont-rendered sketch, no weights.

``text -> Style`` (:mod:`manga2music.music.text_to_style`), ``Style -> MIDI``
(:mod:`manga2music.music.arranger`), ``MIDI -> audio`` with the General MIDI
SoundFont that ships in pretty_midi (:mod:`manga2music.music.render`).  Output:
stereo float32 at 32 kHz (MusicGen's rate), exactly ``round(duration * 32000)``
frames, plus the Standard MIDI File of the notes rendered.  Same text and seed
give the same notes and samples; no GPU, no network, no model download.
"""

from __future__ import annotations

import io
import math
import zlib
from typing import Callable, Sequence, TypeVar

import numpy as np

from ..errors import BackendError
from ..progress import ProgressFn, report
from .base import Composer, ComposeRequest, MadeFn, Track

T = TypeVar("T")
R = TypeVar("R")

#: bump when the composition or rendering changes, so cached tracks are recomposed.  3: words said no to ("no piano")
#: are not played; keys named in Japanese.  4: instruments a describer names that General MIDI has a kin of (erhu,
#: banjo, timpani, 三味線) are played.  5: a melody instrument named after another plays a part ("piano, violin and
#: cello": violin, piano, cello; it was not played); tempo ranges after "tempo", "テンポ160", keys as "F#m", and
#: Japanese genre and instrument words (ロック, ジャズ, エレキギター, 弦楽器).  6: "Flat" and "Sharp" in a key in any
#: case ("B Flat Major" was B major).  7: a key's letter in lower case ("in d minor" was A minor); "beats per minute"
#: is a tempo, not a drum beat.  8: a loop fitted to whole bars or beats stays inside 40-220 BPM (300 BPM looped in
#: 2 s played at 240)
ALGORITHM_VERSION = "builtin-music-9"
SAMPLE_RATE = 32000
CHANNELS = 2
LOOP_CROSSFADE_S = 1.0
#: relative loudness of each part (the melody leads)
MIX_LEVELS = {"melody": 1.0, "harmony": 0.55, "bass": 0.6, "drums": 0.8}
#: tracks made at once, one per CPU core (OMP_NUM_THREADS where it is set: a Ray worker's CPUs) up to this many
#: (numpy lets go of the interpreter while it works: 4 one-minute tracks take 0.56-0.75 of the time on 2 cores,
#: benchmarks/builtin_bench.py --side-by-side)
PARALLEL_TRACKS = 4
#: ... holding at most this many seconds of music between them: rendering takes memory in proportion to the music
#: (a 30-minute track peaks at 1.29 GB, README "Speed"), so tracks made side by side never need more than the
#: longest track made alone.  A longer track is made alone.
PARALLEL_SECONDS = 600.0


def _rng(seed: int, text: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) % (2 ** 63), zlib.crc32(text.encode("utf-8", "replace"))])


def _fade(audio: np.ndarray, n_in: int, n_out: int) -> None:
    """Raised-cosine fade in/out, in place."""
    n_in, n_out = min(n_in, len(audio)), min(n_out, len(audio))
    if n_in > 0:
        audio[:n_in] *= (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n_in, dtype=np.float32)))[:, None]
    if n_out > 0:
        audio[len(audio) - n_out:] *= (0.5 + 0.5 * np.cos(np.linspace(0, np.pi, n_out, dtype=np.float32)))[:, None]


def _with_wrap(midi, period: float, extra: float):
    """A copy of ``midi`` whose opening notes are repeated after ``period`` (what follows the loop end)."""
    import copy

    wrapped = copy.deepcopy(midi)
    for inst in wrapped.instruments:
        repeats = [n for n in inst.notes if n.start < extra]
        for n in repeats:
            inst.notes.append(type(n)(n.velocity, n.pitch, n.start + period, n.end + period))
    return wrapped


def render_side_by_side(make: Callable[[T], R], items: Sequence[T], seconds: Sequence[float], workers: int, *,
                        done: Callable[[int, int], None] | None = None) -> list[R]:
    """``[make(item) for item in items]``, up to ``workers`` at a time on threads, at most :data:`PARALLEL_SECONDS`
    of music (``seconds`` per item) in the making at once; an item longer than that is made alone.  ``done(index,
    count)`` is called on this thread as each one is made (in the order they finish).  The first error, or a stop
    (Ctrl-C), is raised here at once and nothing more starts; the tracks already in the making end at their next
    :func:`manga2music.threads.stop_point` (the renderer has one at each note and each block of reverb)."""
    import threading
    from concurrent.futures import FIRST_COMPLETED, wait

    from ..threads import on_thread, stop_point

    results: list = [None] * len(items)
    if workers <= 1 or len(items) <= 1:
        for i, item in enumerate(items):
            results[i] = make(item)
            if done is not None:
                done(i, i + 1)
        return results
    running: dict = {}  # future -> index
    following, finished = 0, 0
    stop = threading.Event()
    try:
        while following < len(items) or running:
            while following < len(items) and len(running) < workers and (
                    not running or sum(seconds[i] for i in running.values()) + seconds[following] <= PARALLEL_SECONDS):
                running[on_thread(make, items[following], name=f"builtin-render-{following}", stop=stop)] = following
                following += 1
            ready, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            stop_point()  # a stop asked of this thread (the web UI's Stop): the tracks were given an event of their
            # own, so it was seen only once a whole track was made (20 s for a chapter of 10-minute tracks)
            failed = None
            for future in sorted(ready, key=running.get):  # the tracks made are handed over before an error of
                i = running.pop(future)  # another that ended with them is raised (a score keeps them)
                if future.exception() is not None:
                    failed = failed or future
                    continue
                results[i] = future.result()
                finished += 1
                if done is not None:
                    done(i, finished)
            if failed is not None:
                failed.result()  # the first error is raised here
    except BaseException:
        stop.set()  # the tracks still in the making are not wanted any more
        raise
    return results


def midi_bytes(midi) -> bytes:
    buf = io.BytesIO()
    midi.write(buf)
    return buf.getvalue()


class BuiltinComposer(Composer):
    """Rule-based chords, motif melody, bass and drums, played on a General MIDI SoundFont."""

    backend = "builtin-music"

    #: 30 minutes: about 30 s of work and 3 GB of memory on 2 CPU cores (measured)
    max_duration = 1800.0
    sample_rate = SAMPLE_RATE

    def __init__(self, spec=None, options=None):
        soundfont = spec if isinstance(spec, str) and spec.lower().endswith(".sf2") else None
        super().__init__(None if soundfont else spec, options)
        self.soundfont = soundfont

    def preflight(self) -> None:
        from ..music.soundfont import load_soundfont

        load_soundfont(self.soundfont)  # raises ModelUnavailableError with a hint

    def warm_up(self) -> None:
        import pretty_midi  # noqa: F401 - what the renderer and the writer import, done while the pages are read
        import scipy.signal  # noqa: F401 - 0.6-0.8 s of the first track here

    def settings_key(self) -> dict:
        key = super().settings_key()
        key.update(algorithm=ALGORITHM_VERSION, sample_rate=SAMPLE_RATE, channels=CHANNELS)
        return key

    def compose(self, requests: list[ComposeRequest], *, progress: ProgressFn | None = None,
                made: MadeFn | None = None) -> list[Track]:
        """One track per request, in order; several at once on a machine with more than one core (see
        :func:`render_side_by_side`): each track is the same, to the sample, as made alone."""
        from ..hardware import thread_budget
        from ..music.soundfont import load_soundfont

        finished: dict[int, Track] = {}

        def one(i: int) -> Track:
            req = requests[i]
            finished[i] = self.compose_one(req.text, req.duration, seed=req.seed, loop=self.options.loop,
                                           theme=req.theme)
            if req.reference is not None:  # as the other composers that cannot follow one say (it was dropped
                # without a word, though ComposeRequest's contract says it is said)
                finished[i].warnings.append(f"{self.model_name} does not take reference audio; composed from the "
                                            "text alone (musicgen-melody and ace-step do)")
            return finished[i]

        def done(i: int, count: int) -> None:
            track = finished.pop(i)
            if made is not None:  # kept before the progress hears of it: a host that cancels from its progress
                made(i, track)  # callback ("1 of 2 cues made") loses none of what it was told is made
            report(progress, count, len(requests), requests[i].name)

        workers = min(PARALLEL_TRACKS, thread_budget(), len(requests))
        if requests:  # the step begins: a host told of it hears it again while the tracks are made (see
            report(progress, 0, len(requests), requests[0].name)  # manga2music.threads.beating)
        if workers > 1:
            load_soundfont(self.soundfont)  # parsed once, before the threads share it
        return render_side_by_side(one, list(range(len(requests))), [float(r.duration) for r in requests], workers,
                                   done=done)

    def render(self, midi, duration: float, *, reverb: float = 0.15, loop: bool = False) -> np.ndarray:
        """Play ``midi`` to exactly ``round(duration * 32000)`` stereo frames: faded ends, or a seamless loop."""
        from ..music.render import master, render_midi

        n_frames = int(round(duration * SAMPLE_RATE))
        room = dict(soundfont=self.soundfont, reverb=reverb, reverb_seconds=1.2 + 1.6 * reverb)
        if loop:
            xf = min(LOOP_CROSSFADE_S, duration / 2)
            n_xf = int(round(xf * SAMPLE_RATE))
            audio = render_midi(_with_wrap(midi, duration, xf + 0.05), n_frames + n_xf, SAMPLE_RATE, **room)
            from ..audio import make_seamless_loop

            audio = make_seamless_loop(audio, SAMPLE_RATE, crossfade_s=n_xf / SAMPLE_RATE)
        else:
            audio = render_midi(midi, n_frames, SAMPLE_RATE, **room)
            _fade(audio, int(0.005 * SAMPLE_RATE), int(min(0.6, duration / 4) * SAMPLE_RATE))
        audio = master(audio)[:n_frames]
        if len(audio) < n_frames:  # not expected: the contract is the exact length
            audio = np.pad(audio, ((0, n_frames - len(audio)), (0, 0)))
        return np.ascontiguousarray(audio, dtype=np.float32)

    def compose_one(self, text: str, duration: float, *, seed: int | None = None, loop: bool = False,
                    theme: tuple[int, ...] | None = None) -> Track:
        """One track of exactly ``round(duration * 32000)`` stereo frames."""
        from ..music.arranger import arrange
        from ..music.render import balance
        from ..music.text_to_style import parse_style

        try:
            duration = float(duration)
        except (TypeError, ValueError):
            duration = float("nan")
        if not math.isfinite(duration) or duration <= 0:
            raise BackendError(f"duration must be a positive number of seconds, not {duration!r}")
        text = str(text or "")
        seed = 0 if seed is None else int(seed)
        style = parse_style(text)
        arrangement = arrange(style, duration, _rng(seed, text), loop=loop, theme=theme)
        midi = arrangement.midi
        balance(midi, MIX_LEVELS, soundfont=self.soundfont, excerpt_s=min(duration, 16.0))
        import pretty_midi

        data = midi_bytes(midi)  # render what the file holds, to the tick
        audio = self.render(pretty_midi.PrettyMIDI(io.BytesIO(data)), duration, reverb=style.reverb, loop=loop)

        names = {role: ("Drums" if role == "drums" else pretty_midi.program_to_instrument_name(p))
                 for role, p in arrangement.programs.items()}
        info = {
            "tempo_bpm": round(arrangement.tempo_bpm, 3),
            "key": style.key_name,
            "mode": style.mode,
            "instruments": [f"{names[r]} ({r})" for r in arrangement.programs],
            "programs": dict(arrangement.programs),
            "style": style.genre,
            "energy": round(style.energy, 3),
            "reverb": style.reverb,
            "drums": "drums" in arrangement.programs,
            "seed": seed,
            "loop": bool(loop),
            "algorithm": ALGORITHM_VERSION,
            "words": style.words,
            "theme": list(theme) if theme else None,
        }
        warnings = [*style.notes] if style.words else [
            *style.notes, "no music words recognised in the description; used the default style"]
        if loop and abs(arrangement.tempo_bpm - style.tempo_bpm) >= 0.5:
            bars = arrangement.tempo_bpm * duration / 240.0
            holds = "whole bars" if abs(bars - round(bars)) < 1e-3 else "whole beats (no number of bars fits)"
            warnings.append(f"played at {arrangement.tempo_bpm:.0f} BPM instead of {style.tempo_bpm:.0f} BPM: a "
                            f"seamless loop of {duration:g} s holds {holds}")
        return Track(audio=audio, sample_rate=SAMPLE_RATE,
                     midi=data, info=info, warnings=warnings)
