"""The pipeline through the Python API with the builtin tier: outputs, resume, ownership, bad pages."""

from __future__ import annotations

import json
import re
import os
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from PIL import Image

import manga2music
from manga2music.errors import InputError
from manga2music.pipeline import RunConfig

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def cfg(duration=2.0, **kw) -> RunConfig:
    return RunConfig(duration=duration, seed=kw.pop("seed", 7), **kw)


def run(paths, out, **kw):
    return manga2music.run(paths, out, vision_model="builtin", music_model="builtin", config=cfg(**kw))


def statuses(manifest):
    return {e["name"]: e["status"] for e in manifest["sections"] if e["name"] in manifest["this_run"]}


@pytest.fixture
def pages(tmp_path) -> Path:
    """A copy of two sample sections the test may change."""
    root = tmp_path / "in"
    for name in ("calm", "action"):
        shutil.copytree(SAMPLES / name, root / name)
    return root


def test_run_writes_description_record_track_midi_and_manifest(pages, tmp_path):
    out = tmp_path / "out"
    manifest = run([pages], out, duration=3.0)
    assert statuses(manifest) == {"action": "ok", "calm": "ok"}
    for name in ("calm", "action"):
        text = (out / f"{name}.txt").read_text(encoding="utf-8").strip()
        assert "BPM" in text
        record = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        assert [p["name"] for p in record["pages"]] == sorted(p.name for p in (pages / name).iterdir())
        assert all(len(p["sha256"]) == 64 for p in record["pages"])
        assert record["describe"]["model"] == "builtin" and record["compose"]["seed"] == 7
        info = sf.info(str(out / f"{name}.wav"))
        assert abs(info.duration - 3.0) < 0.05
        assert (out / f"{name}.mid").stat().st_size > 0
    on_disk = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert {e["name"]: e["tracks"] for e in on_disk["sections"]} == {"action": ["action.wav"], "calm": ["calm.wav"]}
    assert (out / "index.html").exists()


def test_rerun_skips_unchanged_redoes_changed_and_force_redoes_all(pages, tmp_path):
    out = tmp_path / "out"
    run([pages], out)
    section_files = lambda: {p.name: p.stat().st_mtime_ns for p in out.iterdir()  # noqa: E731
                             if p.suffix in (".txt", ".json", ".wav", ".mid") and p.name != "manifest.json"}
    before = section_files()
    assert statuses(run([pages], out)) == {"action": "skipped", "calm": "skipped"}
    assert section_files() == before  # nothing rewritten
    Image.new("L", (300, 400), 0).save(pages / "calm" / "004.png")  # a new, black page
    assert statuses(run([pages], out)) == {"action": "skipped", "calm": "ok"}
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert len(record["pages"]) == 4
    assert statuses(run([pages], out, force=True)) == {"action": "ok", "calm": "ok"}


def test_a_rerun_with_nothing_to_make_does_not_warm_the_composer_up(pages, tmp_path):
    """A rerun with every track up to date spent 1.1 of its 3 s waiting for the composer's warm-up (importing what
    writing a track needs, on a thread started before the pages were looked at). It starts now only when pages are
    about to be read; a run that reads them still warms the composer up while it does."""
    import subprocess
    import sys

    script = ("import sys, threading, manga2music; from manga2music.pipeline import RunConfig\n"
              "started = []\n"
              "real = threading.Thread.start\n"
              "def start(self):\n"
              "    started.append(self.name)\n"
              "    real(self)\n"
              "threading.Thread.start = start\n"
              "manga2music.run([sys.argv[1]], sys.argv[2], config=RunConfig(duration=2.0, seed=7))\n"
              "print('composer-warm-up' in started)\n")
    out = tmp_path / "out"
    said = [subprocess.run([sys.executable, "-c", script, str(pages), str(out)], capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    assert [s.stdout.split()[-1:] for s in said] == [["True"], ["False"]], [s.stderr[-2000:] for s in said]


def test_a_deleted_description_is_made_again_and_said(pages, tmp_path):
    """A description deleted (as the line for an emptied one tells a user to do) was made again without a word,
    where every other reason to describe again is said."""
    out = tmp_path / "out"
    run([pages], out)
    (out / "calm.txt").unlink()
    said: list[str] = []
    manifest = manga2music.run([pages], out, vision_model="builtin", music_model="builtin", config=cfg(),
                               callbacks=manga2music.Callbacks(log=lambda level, line: said.append(line)))
    assert statuses(manifest)["calm"] == "ok" and (out / "calm.txt").exists()
    assert "calm: describing again: calm.txt is gone" in said


def test_changed_compose_settings_recompose_without_redescribing(pages, tmp_path):
    out = tmp_path / "out"
    run([pages], out)
    text_before = (out / "calm.txt").stat().st_mtime_ns
    manifest = run([pages], out, duration=4.0)
    assert statuses(manifest) == {"action": "ok", "calm": "ok"}
    assert (out / "calm.txt").stat().st_mtime_ns == text_before
    assert abs(sf.info(str(out / "calm.wav")).duration - 4.0) < 0.05


def test_without_a_seed_music_composed_again_keeps_the_seed_it_had_and_force_draws_a_new_one(pages, tmp_path):
    """No --seed: the first run draws one and records it.  Asking only for a longer track composed it from a new
    random seed, so the music the user had was gone; it keeps its seed now (the piece made longer), and --force,
    the way to ask for a new take, draws a new one."""
    out = tmp_path / "out"
    seed = lambda: json.loads((out / "calm.json").read_text(encoding="utf-8"))["compose"]["seed"]  # noqa: E731
    run([pages], out, seed=None)
    first = seed()
    assert statuses(run([pages], out, seed=None, duration=4.0)) == {"action": "ok", "calm": "ok"}
    assert seed() == first
    again = tmp_path / "again"  # the recorded seed makes that track again
    run([pages], again, seed=first, duration=4.0)
    assert sf.read(again / "calm.wav")[0].tobytes() == sf.read(out / "calm.wav")[0].tobytes()
    run([pages], out, seed=None, duration=4.0, force=True)
    assert seed() != first
    # a take asked for with --seed, then a run without one: that take is what it asks for (it composed the same
    # music again, saying its description had changed)
    assert statuses(run([pages], out, seed=7, duration=4.0)) == {"action": "ok", "calm": "ok"}
    assert statuses(run([pages], out, seed=None, duration=4.0)) == {"action": "skipped", "calm": "skipped"}
    assert seed() == 7


def test_user_files_are_never_overwritten(pages, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "calm.wav").write_bytes(b"my own recording")
    manifest = run([pages], out)
    assert statuses(manifest) == {"action": "ok", "calm": "failed"}
    entry = next(e for e in manifest["sections"] if e["name"] == "calm")
    assert "not written by manga2music" in entry["message"]
    assert (out / "calm.wav").read_bytes() == b"my own recording"
    (out / "calm.mid").write_bytes(b"my own notes")  # files in the way were named one a run: move one, run, meet
    manifest = run([pages], out)  # the next
    entry = next(e for e in manifest["sections"] if e["name"] == "calm")
    assert "calm.wav exists and was not written by manga2music (and 1 more of this section's: calm.mid); move " \
           "them" in entry["message"], entry["message"]


def test_the_config_s_output_folder_is_used_and_one_path_may_be_a_string(pages, tmp_path, monkeypatch):
    """`run(paths, config=RunConfig(output=...))` wrote to ./output and changed the caller's config; a path given as
    one string was read letter by letter ("c: no such file or folder")."""
    monkeypatch.chdir(tmp_path)
    config = cfg(duration=1.0, output=tmp_path / "mine")
    manifest = manga2music.run(str(pages / "calm"), vision_model="builtin", music_model="builtin", config=config)
    assert statuses(manifest) == {"calm": "ok"}
    assert (tmp_path / "mine" / "calm.wav").is_file() and not (tmp_path / "output").exists()
    assert config.output == tmp_path / "mine"
    manifest = manga2music.run(pages / "action", tmp_path / "other", vision_model="builtin", music_model="builtin",
                               config=config)  # the argument, when given, is the folder
    assert statuses(manifest) == {"action": "ok"} and (tmp_path / "other" / "action.wav").is_file()
    assert config.output == tmp_path / "mine"
    described = manga2music.describe(str(pages / "calm"), model="builtin", config=cfg(output=tmp_path / "d", seed=None))
    assert statuses(described) == {"calm": "ok"} and (tmp_path / "d" / "calm.txt").is_file()
    composed = manga2music.compose(str(tmp_path / "d" / "calm.txt"), model="builtin",
                                   config=cfg(duration=1.0, output=tmp_path / "c"))
    assert statuses(composed) == {"calm": "ok"} and (tmp_path / "c" / "calm.wav").is_file()


def test_a_deleted_midi_file_is_made_again(pages, tmp_path):
    """A deleted ``calm.mid`` stayed gone: the rerun skipped, its record still listing the file (a deleted .wav was
    made again).  It is made again from the recorded seed: the same notes, the same track."""
    out = tmp_path / "out"
    run([pages], out, seed=3)
    notes, track = (out / "calm.mid").read_bytes(), (out / "calm.wav").read_bytes()
    (out / "calm.mid").unlink()
    said = []
    manifest = manga2music.run([pages], out, vision_model="builtin", music_model="builtin", config=cfg(seed=3),
                               callbacks=manga2music.Callbacks(log=lambda level, message: said.append(message)))
    assert statuses(manifest) == {"calm": "ok", "action": "skipped"}
    assert (out / "calm.mid").read_bytes() == notes and (out / "calm.wav").read_bytes() == track
    assert any("calm: composing again: its MIDI file is missing" in m for m in said), said


def test_an_edited_description_is_kept_and_composed_from(pages, tmp_path):
    out = tmp_path / "out"
    run([pages], out)
    (out / "calm.txt").write_text("Frantic rock with drums and electric guitar at 170 BPM in E minor\n", encoding="utf-8")
    manifest = run([pages], out, force=True)
    assert statuses(manifest)["calm"] == "ok"
    assert (out / "calm.txt").read_text(encoding="utf-8").startswith("Frantic rock")
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert record["compose"]["takes"][0]["info"]["tempo_bpm"] == pytest.approx(170, abs=1)


def test_an_edited_description_whose_pages_changed_is_kept_and_says_so(pages, tmp_path):
    """The hand-edited text stays (it is the user's), but the run says the pages are no longer the ones it was
    written for, and the record and listening page show the pages the section holds now, not the old ones."""
    out = tmp_path / "out"
    run([pages / "calm"], out)
    (out / "calm.txt").write_text("Solo harp lullaby at 60 BPM in F major\n", encoding="utf-8")
    for old in (pages / "calm").iterdir():
        old.unlink()
    for new in (SAMPLES / "action").iterdir():
        shutil.copy(new, pages / "calm" / new.name)
    said = []
    manga2music.run([pages / "calm"], out, vision_model="builtin", music_model="builtin", config=cfg(seed=3),
                    callbacks=manga2music.Callbacks(log=lambda level, message: said.append(message)))
    assert (out / "calm.txt").read_text(encoding="utf-8").startswith("Solo harp lullaby")
    (line,) = [m for m in said if "calm.txt" in m]
    assert "pages have changed" in line, said
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert [Path(p["path"]).name for p in record["pages"]] == sorted(n.name for n in (SAMPLES / "action").iterdir())
    assert "003.png" in (out / "index.html").read_text(encoding="utf-8")


def test_an_emptied_description_is_one_line_and_loses_nothing(pages, tmp_path):
    """A description the user empties (to write their own later, or by a slip) said "keeping it and composing from
    it" while the old music stayed and the record kept the old text: nothing said what happened.  It is now that
    section's one clear line, the other sections go on, and its music is left as it was."""
    out = tmp_path / "out"
    run([pages], out)
    before = (out / "calm.wav").read_bytes()
    (out / "calm.txt").write_text("  \n", encoding="utf-8")
    manifest = run([pages], out, force=True)
    assert statuses(manifest) == {"action": "ok", "calm": "failed"}
    message = next(e for e in manifest["sections"] if e["name"] == "calm")["message"]
    assert "calm.txt is empty" in message
    assert (out / "calm.wav").read_bytes() == before and (out / "calm.txt").read_text(encoding="utf-8") == "  \n"
    # the manifest (and so the listening page) still lists that music: it said "tracks": [] beside a calm.wav
    failed = next(e for e in json.loads((out / "manifest.json").read_text("utf-8"))["sections"] if e["name"] == "calm")
    assert failed["status"] == "failed" and failed["tracks"] == ["calm.wav"] and failed["midi"] == ["calm.mid"]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "calm.wav" in page and "The music below was made before, and is left as it was." in page


def test_bad_pages_are_skipped_and_a_section_without_pages_fails_alone(pages, tmp_path):
    out = tmp_path / "out"
    (pages / "calm" / "000-broken.png").write_bytes(b"not an image")
    (pages / "empty").mkdir()
    (pages / "empty" / "1.jpg").write_bytes(b"\xff\xd8 truncated")
    manifest = run([pages], out)
    assert statuses(manifest) == {"action": "ok", "calm": "ok", "empty": "failed"}
    calm = next(e for e in manifest["sections"] if e["name"] == "calm")
    assert calm["skipped_pages"][0]["source"].endswith("000-broken.png")
    assert "no readable page" in next(e for e in manifest["sections"] if e["name"] == "empty")["message"]


def test_interrupted_run_leaves_no_partial_file_and_resumes(pages, tmp_path, monkeypatch):
    import manga2music.audio as audio

    out = tmp_path / "out"
    real_encode = audio.encode_audio
    calls = []

    def encode_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(audio, "encode_audio", encode_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run([pages], out)
    monkeypatch.setattr(audio, "encode_audio", real_encode)
    leftovers = [p.name for p in out.rglob("*") if ".tmp" in p.name]
    assert leftovers == []
    # one track written whole, the other not at all (which one is first depends on the two render threads: on a
    # busy machine calm's may finish first)
    made = [name for name in ("action", "calm") if (out / f"{name}.wav").exists()]
    assert len(made) == 1, made
    assert statuses(run([pages], out)) == {name: "skipped" if name in made else "ok" for name in ("action", "calm")}


@pytest.mark.parametrize("made_before_the_stop", [0, 1])
def test_a_plain_rerun_of_a_stopped_run_resumes_its_format_seed_loop_and_level(pages, tmp_path, made_before_the_stop,
                                                                                monkeypatch):
    """`run LIB --format flac --seed 9 --loop --no-normalize` stopped, then the plain `run LIB` a user makes to finish
    it: the sections left were made as WAVs with new seeds, unlooped and at -14 LUFS, unsaid (stopped after one
    section, the music there kept its format and loop, but the seed was lost all the same)."""
    out = tmp_path / "out"
    asked = RunConfig(duration=2.0, seed=9, fmt="flac", loop=True, normalize=False)

    import manga2music.audio as audio

    real_encode, calls = audio.encode_audio, []

    def stopped_at_a_track(*args, **kwargs):  # Ctrl-C while a track is written
        calls.append(1)
        if len(calls) > made_before_the_stop:
            raise KeyboardInterrupt
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(audio, "encode_audio", stopped_at_a_track)
    with pytest.raises(KeyboardInterrupt):
        manga2music.run([pages], out, vision_model="builtin", music_model="builtin", config=asked)
    monkeypatch.setattr(audio, "encode_audio", real_encode)
    assert len(list(out.glob("*.flac"))) == made_before_the_stop
    lines: list[str] = []
    again = manga2music.run([pages], out, callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
    assert sorted(again["this_run"]) == ["action", "calm"]
    for name in ("action", "calm"):
        made = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))["compose"]
        assert (made["format"], made["seed"], made["settings"]["loop"], made["normalize"]) == ("flac", 9, True, False)
        assert (out / f"{name}.flac").is_file() and not (out / f"{name}.wav").exists()
    resumed = [line for line in lines if "as the run stopped before was asked" in line and "seed=9" in line]
    assert resumed, lines
    if made_before_the_stop == 0:  # nothing was made: the words of what the stop asked, not of "the music there"
        assert "fmt='flac'" in resumed[0] and "loop=True" in resumed[0] and "normalize=False" in resumed[0], lines
        assert not any("as the music there" in line for line in lines), lines
    assert "stopped_with" not in json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_a_chapter_added_between_a_stop_and_its_resume_is_not_made_as_the_stop_asked(pages, tmp_path, monkeypatch):
    """`run LIB --seed 9 --format flac` stopped after one section, then `run BONUS` into the folder: the bonus
    chapter was made with --seed 9 "as the run stopped before was asked" (it was never given to that run), the
    stop's settings were then dropped, and the stopped run's own sections left were made with new seeds."""
    import manga2music.audio as audio

    out = tmp_path / "out"
    real_encode, calls = audio.encode_audio, []

    def stopped_after_one(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(audio, "encode_audio", stopped_after_one)
    with pytest.raises(KeyboardInterrupt):
        manga2music.run([pages], out, vision_model="builtin", music_model="builtin",
                        config=RunConfig(duration=2.0, seed=9, fmt="wav"))
    monkeypatch.setattr(audio, "encode_audio", real_encode)
    made = {p.stem for p in out.glob("*.wav")}
    assert len(made) == 1
    shutil.copytree(SAMPLES / "webtoon", tmp_path / "bonus" / "webtoon")
    lines: list[str] = []
    said = manga2music.Callbacks(log=lambda level, line: lines.append(line))
    manga2music.run([tmp_path / "bonus"], out, config=RunConfig(duration=2.0), callbacks=said)
    assert json.loads((out / "webtoon.json").read_text(encoding="utf-8"))["compose"]["seed"] != 9
    assert not any("stopped before" in line for line in lines), lines
    lines.clear()
    manga2music.run([pages], out, callbacks=said)  # the plain resume of the stopped run
    for name in ("action", "calm"):
        assert json.loads((out / f"{name}.json").read_text(encoding="utf-8"))["compose"]["seed"] == 9, lines
    assert any("seed=9, as the run stopped before was asked" in line for line in lines), lines
    assert "stopped_with" not in json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_the_manifest_and_page_list_finished_sections_while_the_run_goes_on(pages, tmp_path, monkeypatch):
    """A series scored for hours (MusicGen on a CPU) left manifest.json and index.html as the run before had them until
    its very end: nothing to listen to while it ran, and after a kill -9 (a power cut) the page listed none of the
    chapters it had finished.  They are brought up to date as sections finish (here at once: the pause between two
    updates, a few seconds, is made 0)."""
    from manga2music import api
    from manga2music.jobs import Callbacks

    monkeypatch.setattr(api, "UPDATE_AFTER_S", 0.0)
    monkeypatch.setattr(api, "UPDATE_COST_FACTOR", 0)  # a busy machine's slow first write put off the second
    shutil.copytree(SAMPLES / "webtoon", pages / "webtoon")
    out, seen = tmp_path / "out", []

    def sections(done: int, total: int, label: str) -> None:
        if label.startswith("scoring ") and done:  # a chapter scored, the next one begun: what a reader finds now
            manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            listed = {e["name"]: e["tracks"] for e in manifest["sections"]}
            page = (out / "index.html").read_text(encoding="utf-8")
            seen.append((done, listed, all((out / t).is_file() and t in page for ts in listed.values() for t in ts)))

    manga2music.score([pages], out, vision_model="builtin", music_model="builtin",
                      config=RunConfig(longest_cue=8.0), callbacks=Callbacks(sections=sections))
    assert [(done, len(listed)) for done, listed, _ in seen] == [(1, 1), (2, 2)], seen
    assert all(tracks for _, listed, _ in seen for tracks in listed.values()) and all(ok for _, _, ok in seen)


def test_music_made_again_mid_run_is_not_listed_as_old_while_the_run_goes_on(pages, tmp_path, monkeypatch):
    """A `run` after every chapter's pages changed lists each chapter, once described again, as "music_outdated"
    (its music is of the old words); once its new music was made, the manifest kept saying so until another chapter
    finished, as it was rewritten only when more chapters had finished."""
    from manga2music import api
    from manga2music.jobs import Callbacks

    out = tmp_path / "out"
    run([pages], out)
    for chapter in ("calm", "action"):
        shutil.copy(SAMPLES / "webtoon" / sorted(os.listdir(SAMPLES / "webtoon"))[0], pages / chapter / "000.png")
    monkeypatch.setattr(api, "UPDATE_AFTER_S", 0.0)
    monkeypatch.setattr(api, "UPDATE_COST_FACTOR", 0)
    seen = []

    def sections(done: int, total: int, label: str) -> None:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        seen.append({e["name"]: bool(e.get("music_outdated")) for e in manifest["sections"]
                     if (out / f"{e['name']}.json").is_file()
                     and json.loads((out / f"{e['name']}.json").read_text(encoding="utf-8"))["compose"]["description"]
                     == json.loads((out / f"{e['name']}.json").read_text(encoding="utf-8"))["description"]})

    manga2music.run([pages], out, vision_model="builtin", music_model="builtin", config=cfg(),
                    callbacks=Callbacks(sections=sections))
    assert not any(outdated for state in seen for outdated in state.values()), seen  # made from its words: not old


def test_output_inside_input_is_not_read_back(pages, tmp_path, monkeypatch):
    monkeypatch.chdir(pages)
    run(["."], "output")
    manifest = run(["."], "output")
    assert set(statuses(manifest)) == {"action", "calm"}


def test_unicode_and_unsafe_section_names(tmp_path):
    root = tmp_path / "in"
    shutil.copytree(SAMPLES / "calm", root / "第1話")
    shutil.copytree(SAMPLES / "calm", root / 'bad:name?')
    out = tmp_path / "out"
    manifest = run([root], out)
    assert set(statuses(manifest)) == {"第1話", "bad:name?"}
    assert (out / "第1話.wav").exists() and (out / "bad_name_.wav").exists()


def test_variations_write_several_takes_with_their_seeds(pages, tmp_path):
    out = tmp_path / "out"
    manifest = run([pages / "calm"], out, variations=2, duration=8.0)
    entry = manifest["sections"][0]
    assert entry["tracks"] == ["calm.wav", "calm.take2.wav"]
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert [t["seed"] for t in record["compose"]["takes"]] == [7, 8]
    a, _ = sf.read(str(out / "calm.wav"))
    b, _ = sf.read(str(out / "calm.take2.wav"))
    assert a.shape == b.shape and abs(a - b).max() > 0.01


def test_more_or_fewer_variations_keep_the_takes_already_made(pages, tmp_path):
    """Asking for 3 takes after 1 (no --seed: the seed was drawn at random) keeps take 1 as it is and adds takes 2
    and 3 with the next seeds; asking for 2 afterwards keeps takes 1 and 2 and removes take 3.  Before, each change
    composed every take again from a new random seed: the take the user liked was gone."""
    out = tmp_path / "out"

    said = []

    def takes_made(variations: int) -> tuple[dict, list]:
        manifest = manga2music.run([pages / "calm"], out, vision_model="builtin", music_model="builtin",
                                   config=RunConfig(duration=2.0, variations=variations),
                                   callbacks=manga2music.Callbacks(log=lambda level, text: said.append(text)))
        record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
        return manifest["sections"][0], record["compose"]["takes"]

    _, (first,) = takes_made(1)
    take1 = (out / "calm.wav").read_bytes()
    entry, takes = takes_made(3)
    assert entry["tracks"] == ["calm.wav", "calm.take2.wav", "calm.take3.wav"]
    assert [t["seed"] for t in takes] == [first["seed"], first["seed"] + 1, first["seed"] + 2]
    assert (out / "calm.wav").read_bytes() == take1
    take2 = (out / "calm.take2.wav").read_bytes()
    assert take2 != take1
    entry, takes = takes_made(2)
    assert entry["status"] == "ok" and entry["tracks"] == ["calm.wav", "calm.take2.wav"]
    assert [t["seed"] for t in takes] == [first["seed"], first["seed"] + 1]
    assert (out / "calm.wav").read_bytes() == take1 and (out / "calm.take2.wav").read_bytes() == take2
    assert not (out / "calm.take3.wav").exists() and not (out / "calm.take3.mid").exists()
    assert any("removing calm.take3.wav and calm.take3.mid" in line for line in said), said  # its notes named too
    assert takes_made(2)[0]["status"] == "skipped"


def test_every_section_keeps_all_its_takes_when_they_fill_more_than_one_compose_group(tmp_path):
    """3 sections x 3 takes = 9 requests, more than one group of 8: the third section's takes once were split
    over two groups, and its second half overwrote its first (one take left, with the third take's seed)."""
    out = tmp_path / "out"
    manifest = run([SAMPLES], out, variations=3, duration=0.5)
    assert len(manifest["sections"]) == 3
    for entry in manifest["sections"]:
        name = entry["name"]
        assert entry["tracks"] == [f"{name}.wav", f"{name}.take2.wav", f"{name}.take3.wav"]
        record = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        assert [t["seed"] for t in record["compose"]["takes"]] == [7, 8, 9]
        assert all((out / t).exists() for t in entry["tracks"])


def test_compose_reads_a_describe_tree_and_text(pages, tmp_path):
    out = tmp_path / "out"
    manifest = manga2music.describe([pages], out, model="builtin")
    assert statuses(manifest) == {"action": "ok", "calm": "ok"}
    assert not list(out.glob("*.wav"))
    manifest = manga2music.compose([out], out, model="builtin", config=cfg())
    assert statuses(manifest) == {"action": "ok", "calm": "ok"}
    assert (out / "calm.wav").exists()
    manifest = manga2music.compose([], tmp_path / "t", text="slow ambient piano, 60 BPM", model="builtin", config=cfg())
    assert manifest["sections"][0]["tracks"] == ["slow-ambient-piano-60-bpm.wav"]


@pytest.mark.parametrize("fmt", ["opus", "wav"])
def test_a_track_of_a_few_milliseconds_is_refused_not_made_broken(tmp_path, fmt):
    """--duration 0.00001 was "ok": a WAV of 0 frames, an Opus file no player opens (mp3 failed with mutagen's
    "can't sync to MPEG frame")."""
    from manga2music.errors import InputError

    with pytest.raises(InputError) as refused:
        manga2music.compose([], tmp_path / "out", text="calm piano", model="builtin", config=cfg(duration=0.00001,
                                                                                                 fmt=fmt))
    assert refused.value.message == "duration=1e-05 is shorter than the 0.1 s a track lasts at least"
    assert not (tmp_path / "out").exists()
    manga2music.compose([], tmp_path / "out", text="calm piano", model="builtin", config=cfg(duration=0.1, fmt=fmt))
    audio, rate = sf.read(str(tmp_path / "out" / f"calm-piano.{fmt}"))
    assert abs(len(audio) / rate - 0.1) < 0.01 and abs(audio).max() > 0.01


def test_the_listening_page_follows_compose_and_describe(pages, tmp_path):
    """After an edited description was composed (`compose OUT -o OUT`), OUT/index.html still showed the old
    description and seed: only `run` and `score` wrote it."""
    out = tmp_path / "out"
    run([pages], out, duration=2.0)
    (out / "calm.txt").write_text("Dark tense strings at 70 BPM, in D minor", encoding="utf-8")
    manga2music.compose([out], out, model="builtin", config=cfg(duration=2.0, seed=11))
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Dark tense strings at 70 BPM" in page
    assert statuses(run([pages], out, duration=2.0, seed=11)) == {"calm": "skipped", "action": "skipped"}  # the
    # page is still known as ours (run would refuse to replace it otherwise)
    (out / "index.html").write_text("<p>my own page</p>", encoding="utf-8")  # the user's: never replaced
    manga2music.compose([out], out, model="builtin", config=cfg(duration=3.0))
    assert (out / "index.html").read_text(encoding="utf-8") == "<p>my own page</p>"


@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_a_manifest_deleted_or_emptied_is_said_so_and_the_way_on_given(pages, tmp_path, damage):
    """manifest.json deleted (or emptied, cut short): every rerun was refused with "OUT/index.html was not written
    by manga2music" (it was) or "manifest.json was not written by manga2music", and nothing said what had happened
    or what to do.  The line says the listing is gone or damaged; doing what it says, the rerun goes on and keeps
    every track."""
    from output_checks import cli

    out = tmp_path / "out"
    run([pages], out, duration=2.0)
    tracks = {p.name: p.read_bytes() for p in out.glob("*.wav")}
    if damage == "deleted":
        (out / "manifest.json").unlink()
    else:
        (out / "manifest.json").write_bytes(b"")
    told = cli("run", pages, "-o", out, "--vision-model", "builtin", "--music-model", "builtin", "--duration", "2")
    assert told.returncode != 0
    said = " ".join(told.stderr.split())
    if damage == "deleted":
        assert "index.html is not listed in a manifest.json (there is none: deleted?)" in said, said
        assert "if it is manga2music's own listening page, delete it (the run writes it again)" in said, said
        (out / "index.html").unlink()
    else:
        assert "manifest.json is empty or damaged (no JSON manga2music can read)" in said, said
        assert "delete it and index.html: the run lists the sections it is given again" in said, said
        (out / "manifest.json").unlink()
        (out / "index.html").unlink()
    again = cli("run", pages, "-o", out, "--vision-model", "builtin", "--music-model", "builtin", "--duration", "2")
    assert again.returncode == 0, again.stderr
    assert {p.name: p.read_bytes() for p in out.glob("*.wav")} == tracks  # nothing made again
    listed = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]
    assert sorted(e["name"] for e in listed) == ["action", "calm"]


def test_a_sections_record_lists_the_pages_it_skips_now_when_nothing_else_changed(tmp_path):
    """A bad page removed (or bad pages added) and a rerun that had nothing to make: the manifest listed the pages
    skipped now, the section's record those of the run before (a removed junk file still "not a readable image";
    5 bad pages added beside 1, "its record's skipped_pages lists each", and it listed 1)."""
    import shutil

    chapter = tmp_path / "lib" / "Ch"
    shutil.copytree(SAMPLES / "calm", chapter)
    (chapter / "zz.png").write_bytes(b"junk")
    out = tmp_path / "out"

    def skipped() -> tuple[list, list]:
        record = json.loads((out / "Ch.json").read_text(encoding="utf-8"))["skipped_pages"]
        listed = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"][0]["skipped_pages"]
        return sorted(Path(s["source"]).name for s in record), sorted(Path(s["source"]).name for s in listed)

    run([tmp_path / "lib"], out, duration=1.0)
    assert skipped() == (["zz.png"], ["zz.png"])
    (chapter / "zz.png").unlink()
    assert statuses(run([tmp_path / "lib"], out, duration=1.0)) == {"Ch": "skipped"}
    assert skipped() == ([], [])
    for k in range(3):
        (chapter / f"zz{k}.png").write_bytes(b"junk")
    assert statuses(run([tmp_path / "lib"], out, duration=1.0)) == {"Ch": "skipped"}
    assert skipped() == (["zz0.png", "zz1.png", "zz2.png"],) * 2


def test_music_made_by_an_older_builtin_composer_is_made_again_saying_why(tmp_path, monkeypatch):
    """A new version of the builtin composer's algorithm: every rerun said "composing again: the composer's settings
    changed", and a user looked for a flag they had changed."""
    from manga2music.composers import builtin
    from manga2music.jobs import Callbacks

    now = builtin.ALGORITHM_VERSION
    monkeypatch.setattr(builtin, "ALGORITHM_VERSION", "builtin-music-0")
    run([SAMPLES / "calm"], tmp_path / "out", duration=1.0)
    monkeypatch.undo()
    said = []
    manga2music.run([SAMPLES / "calm"], tmp_path / "out", config=cfg(duration=1.0),
                    callbacks=Callbacks(log=lambda level, text: said.append(text)))
    assert f"calm: composing again: a new version of the composer's music (builtin-music-0 \u2192 {now})" in said, said


def test_compose_of_an_output_folder_reads_a_hidden_named_sections_description(tmp_path):
    """`run lib/.hidden` (a hidden folder given as a PATH, as the README allows) wrote .hidden.txt; after it was
    edited, `compose OUT -o OUT` (the README's rerun) said only "1 of 1 sections done": the edit was never read."""
    import shutil

    shutil.copytree(SAMPLES / "calm", tmp_path / "lib" / ".hidden")
    out = tmp_path / "out"
    run([tmp_path / "lib" / ".hidden"], out, duration=1.0)  # its files are hidden.txt...: not hidden files
    (out / "hidden.txt").write_text("Dark tense strings at 70 BPM, in D minor", encoding="utf-8")
    (out / ".stray.txt").write_text("calm piano", encoding="utf-8")  # a hidden file of the user's: still not read
    manifest = manga2music.compose([out], out, model="builtin", config=cfg(duration=1.0))
    assert statuses(manifest) == {"hidden": "ok"}, manifest["this_run"]
    record = json.loads((out / "hidden.json").read_text(encoding="utf-8"))
    assert record["compose"]["description"].startswith("Dark tense strings")


def test_compose_reads_a_description_whatever_the_case_of_its_extension(tmp_path):
    """UPPER.TXT (as old Windows tools and some phones name files) was left out of a folder without a word; a folder
    holding only it was "no .txt description found"; given alone, it was composed."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "UPPER.TXT").write_text("calm piano, 70 BPM", encoding="utf-8")
    manifest = manga2music.compose([tmp_path / "d"], tmp_path / "out", model="builtin", config=cfg(duration=1.0))
    assert statuses(manifest) == {"UPPER": "ok"}


def test_compose_never_writes_over_another_sections_track(tmp_path):
    """`compose O --text "calm" -o O` named the text "calm", took the described chapter calm's place and wrote over
    calm.wav (its record then paired the word with the chapter's pages), and the chapter's own calm.txt went to a
    new "calm-2" with no pages.  `compose O/ch1/calm.txt -o O` likewise updated the chapter O/calm, not O/ch1/calm."""
    import hashlib

    for rel in ("calm", "ch1/calm"):
        shutil.copytree(SAMPLES / "calm", tmp_path / "in" / rel)
    out = tmp_path / "out"
    run([tmp_path / "in"], out, duration=2.0)
    digest = lambda path: hashlib.sha256(path.read_bytes()).hexdigest()  # noqa: E731
    chapter, nested = digest(out / "calm.wav"), digest(out / "ch1" / "calm.wav")

    manifest = manga2music.compose([out], out, text="calm", model="builtin", config=cfg(duration=2.0))
    assert statuses(manifest) == {"calm": "skipped", "ch1/calm": "skipped", "calm-2": "ok"}
    assert digest(out / "calm.wav") == chapter
    assert json.loads((out / "calm-2.json").read_text(encoding="utf-8"))["description"] == "calm"
    assert json.loads((out / "calm.json").read_text(encoding="utf-8"))["description"] != "calm"

    (out / "ch1" / "calm.txt").write_text("slow sad cello, 60 BPM", encoding="utf-8")
    manifest = manga2music.compose([out / "ch1" / "calm.txt"], out, model="builtin", config=cfg(duration=2.0))
    assert statuses(manifest) == {"ch1/calm": "ok"}
    assert digest(out / "calm.wav") == chapter and digest(out / "ch1" / "calm.wav") != nested
    assert not (out / "calm-3.json").exists()
    again = manga2music.compose([], out, text="calm", model="builtin", config=cfg(duration=2.0))
    assert statuses(again) == {"calm-2": "skipped"}  # the same words: the same track, not one more


def test_a_callback_that_raises_never_breaks_the_run(pages, tmp_path):
    """A log callback that raised stopped the run half-way (a description written, no track, no manifest), where a
    step or sections callback that raised was ignored: no callback error breaks the work now."""
    from manga2music.pipeline import Callbacks

    def boom(*args):
        raise ZeroDivisionError("the caller's own bug")

    out = tmp_path / "out"
    manifest = manga2music.run([pages], out, vision_model="builtin", music_model="builtin",
                               config=RunConfig(duration=1.0), callbacks=Callbacks(sections=boom, step=boom, log=boom))
    assert statuses(manifest) == {"action": "ok", "calm": "ok"}
    again = manga2music.run([pages], out, vision_model="builtin", music_model="builtin",  # says why it composes again
                            config=RunConfig(duration=2.0), callbacks=Callbacks(log=boom))
    assert statuses(again) == {"action": "ok", "calm": "ok"}
    assert sf.info(out / "calm.wav").duration == 2.0


def test_numpy_numbers_are_numbers_to_the_api_and_recorded_as_plain_ones(pages, tmp_path):
    """RunConfig(seed=np.int64(3)) was refused ("the seed must be a whole number"), and so was duration=np.float32(2):
    a script that draws its seeds or lengths with numpy had to convert them first."""
    import numpy as np

    out = tmp_path / "out"
    manifest = manga2music.run([pages], out, vision_model="builtin", music_model="builtin",
                               config=RunConfig(seed=np.int64(3), duration=np.float32(1.5), variations=np.int32(1)))
    assert statuses(manifest) == {"action": "ok", "calm": "ok"}
    again = manga2music.run([pages], out, vision_model="builtin", music_model="builtin",
                            config=RunConfig(seed=3, duration=1.5))
    assert statuses(again) == {"action": "skipped", "calm": "skipped"}  # the same settings as plain numbers
    for entry in manifest["sections"]:
        record = json.loads((out / entry["record"]).read_text())
        assert record["compose"]["duration"] == 1.5 and type(record["compose"]["duration"]) is float


def test_numpys_yes_and_no_are_yes_and_no_and_a_reading_speed_a_number(pages, tmp_path):
    """numpy 2 names its bool type "bool", not "bool_": RunConfig(loop=np.bool_(True)) was refused, "loop must be
    True, False or None (got np.True_, a bool)"; a page's reading_seconds(speed=np.float32(1.5)) was "reading speed
    must be a positive number"."""
    import numpy as np

    from manga2music.reading import read_page

    manifest = manga2music.run([pages / "calm"], tmp_path / "out", vision_model="builtin", music_model="builtin",
                               config=RunConfig(duration=1.0, loop=np.bool_(True), normalize=np.bool_(False)))
    record = json.loads((tmp_path / "out" / manifest["sections"][0]["record"]).read_text())
    assert (record["compose"]["settings"]["loop"], record["compose"]["normalize"]) == (True, False)
    page = read_page(pages / "calm" / sorted(p.name for p in (pages / "calm").iterdir())[0])
    assert page.reading_seconds(speed=np.float32(2.0)) == pytest.approx(page.reading_seconds(speed=2.0))
    assert page.reading_seconds(speed=np.int64(2)) == pytest.approx(page.reading_seconds(speed=2))


@pytest.mark.parametrize("config, said", [
    (RunConfig(new_duration=1900), "new_duration=1900 is more than the 1800 s"),
    (RunConfig(new_duration="x"), "new_duration must be a number of seconds (got 'x', a str)"),
    (RunConfig(new_variations=0), "new_variations must be between 1 and 100 (got 0)"),
    (RunConfig(output=""), "an empty output folder"),
    (RunConfig(auto_download="yes"), "auto_download must be True, False, None"),  # it meant no, silently
    (RunConfig(auto_download=1), "auto_download must be True, False, None"),
])
def test_every_setting_a_program_may_give_is_checked_before_any_work(tmp_path, monkeypatch, config, said):
    """RunConfig(new_duration=1900) wrote a 1900 s track (duration=1900 is refused), new_duration=5000 a 611 MB
    file, "x" failed inside with Python's "could not convert string to float"; output="" wrote every file into the
    current folder (a web service's empty form field: the server's own folder)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=re.escape(said)):
        manga2music.compose(text="calm piano", model="builtin", config=config)
    assert list(tmp_path.iterdir()) == []


def test_a_local_model_folder_may_be_given_as_a_path(tmp_path):
    """model=Path("/models/mg") was a TypeError ("must be a model name (a str...)"), though the README says a model
    may be a local folder and every other path setting takes a Path."""
    from manga2music.errors import UnknownModelError

    with pytest.raises(UnknownModelError, match="no such folder"):
        manga2music.compose(text="calm piano", output=tmp_path / "out", model=tmp_path / "no-model-here")


def test_score_takes_a_config_whose_duration_it_does_not_use(tmp_path):
    """score(config=RunConfig(duration=3600)) was refused for a duration of more than 30 minutes, which score never
    uses (each cue is as long as its scene takes to read)."""
    manifest = manga2music.score([SAMPLES / "calm"], tmp_path / "out", vision_model="builtin", music_model="builtin",
                                 config=RunConfig(duration=3600))
    assert [e["status"] for e in manifest["sections"]] == ["ok"]


@pytest.mark.parametrize("setting, said", [({"seed": "5"}, "the seed must be a whole number (got '5', a str)"),
                                           ({"duration": "5"}, "duration must be a number of seconds (got '5', a str)"),
                                           ({"variations": 2.5}, "variations must be a whole number between 1 and 100 (got 2.5)"),
                                           # -1 and 2**64 were recorded as given: the builtin composer folds seeds, so
                                           # two recorded seeds made the same music; diffusion failed on 2**64
                                           ({"seed": -1}, "the seed must be a whole number from 0 to 4294967295 "
                                                          "(got -1)"),
                                           ({"seed": 2**64}, "the seed must be a whole number from 0 to 4294967295 "
                                                             "(got 18446744073709551616)"),
                                           # normalize="false" normalized (a non-empty string is true) and was
                                           # recorded as "false": the record said what was not done
                                           ({"normalize": "false"}, "normalize must be True, False or None (as "
                                                                    "the music there was made) (got 'false', a str)"),
                                           ({"force": 1}, "force must be True or False (got 1, an int)")])
def test_the_api_checks_the_type_of_each_setting_before_any_work(pages, tmp_path, setting, said):
    """RunConfig(seed="5") failed every section with "TypeError: can only concatenate str (not "int") to str", and
    duration="5" was "must be a number of seconds above 0 (got 5)"."""
    from manga2music.errors import InputError

    with pytest.raises(InputError) as refused:
        manga2music.run([pages], tmp_path / "out", vision_model="builtin", music_model="builtin",
                        config=RunConfig(**{"duration": 1.0, **setting}))
    assert refused.value.message == said
    assert not (tmp_path / "out").exists()


def test_a_deleted_record_is_said_not_taken_for_files_of_the_users(pages, tmp_path):
    """With calm.json deleted, every later run failed calm with "calm.wav exists and was not written by manga2music"
    and said "calm.txt was written or edited by you": both false, and nothing said what had happened or what to do."""
    out = tmp_path / "out"
    run([pages], out)
    (out / "calm.json").unlink()
    said: list[str] = []
    manga2music.run([pages], out, vision_model="builtin", music_model="builtin", config=cfg(),
                    callbacks=manga2music.Callbacks(log=lambda level, line: said.append(line)))
    assert any(line.startswith("calm: its record calm.json is gone") and "delete them" in line for line in said), said
    assert (out / "calm.wav").exists()  # still nothing replaced


def test_describe_after_run_and_score_keeps_their_music_in_the_manifest_and_on_the_page(pages, tmp_path):
    """`describe` into a folder with music dropped every track (and a score's cue sheet) from manifest.json and
    index.html, though the files were still there; after new pages it must say the music is of the old ones."""
    out = tmp_path / "out"
    run([pages / "calm"], out)
    manga2music.score([pages / "action"], out, vision_model="builtin", music_model="builtin", config=cfg())
    before = {e["name"]: e for e in json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]}
    assert before["calm"]["tracks"] == ["calm.wav"] and before["action"]["cue_sheet"] == "action.cues.json"

    manga2music.describe([pages], out, model="builtin")  # nothing changed: both described already
    after = {e["name"]: e for e in json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]}
    for name, key in (("calm", "tracks"), ("calm", "midi"), ("calm", "music_model"), ("action", "tracks"),
                      ("action", "cue_sheet"), ("action", "read_along"), ("action", "chapters")):
        assert after[name][key] == before[name][key], (name, key, after[name])
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "calm.wav" in page and "action.score.wav" in page
    assert "music_outdated" not in after["calm"] and "Described again (or the description edited) since" not in page

    for old in (pages / "calm").iterdir():  # new pages: a new description, and the music is of the old one
        old.unlink()
    for new in (SAMPLES / "action").iterdir():
        shutil.copy(new, pages / "calm" / new.name)
    manga2music.describe([pages / "calm"], out, model="builtin")
    calm = {e["name"]: e for e in json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]}["calm"]
    assert calm["tracks"] == ["calm.wav"] and calm["music_outdated"] is True
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "calm.wav" in page and "Described again (or the description edited) since" in page
    manga2music.compose([out], out, model="builtin", config=cfg())  # composed from the new words: up to date
    calm = {e["name"]: e for e in json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]}["calm"]
    assert calm["status"] == "ok" and "music_outdated" not in calm
    assert "Described again (or the description edited) since" not in (out / "index.html").read_text(encoding="utf-8")


def test_a_run_that_describes_and_composes_again_does_not_call_its_new_music_outdated(pages, tmp_path):
    """`run` again after a page changed made a new description and new music from it, yet the manifest said
    "music_outdated" and the listening page "Described again since this music was made: compose makes it from the
    new description" of the music just made from it."""
    out = tmp_path / "out"
    run([pages / "calm"], out)
    shutil.copy(SAMPLES / "action" / sorted(os.listdir(SAMPLES / "action"))[0], pages / "calm" / "000.png")
    again = run([pages / "calm"], out)
    (calm,) = again["sections"]
    assert calm["status"] == "ok" and "music_outdated" not in calm
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert record["compose"]["description"] == record["description"]
    assert "Described again (or the description edited) since" not in (out / "index.html").read_text(encoding="utf-8")


def test_a_run_stopped_between_describing_and_composing_says_the_music_is_of_the_words_before(pages, tmp_path,
                                                                                             monkeypatch):
    """A run stopped (Ctrl-C, or an error that stops the run: a server that refused the key) after a section's new
    description was written, before its music: the manifest and the listening page showed the new description
    beside the music of the old one, as if made from it."""
    from manga2music.composers.builtin import BuiltinComposer

    out = tmp_path / "out"
    run([pages / "calm"], out)
    shutil.copy(SAMPLES / "action" / sorted(os.listdir(SAMPLES / "action"))[0], pages / "calm" / "000.png")

    def stopped(self, *args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(BuiltinComposer, "compose", stopped)
    with pytest.raises(KeyboardInterrupt):
        run([pages / "calm"], out)
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert record["compose"]["description"] != record["description"]  # the words are new, the music is not
    (calm,) = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]
    assert calm["tracks"] == ["calm.wav"] and calm["music_outdated"] is True
    assert "Described again (or the description edited) since" in (out / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("stop", ["out of memory", "ctrl-c"])
def test_sections_composed_before_the_composer_fails_or_is_stopped_are_written(pages, tmp_path, monkeypatch, stop):
    """Up to eight sections are composed in one call: when it failed on the last of them (a long track out of
    memory), or the run was stopped there, the sections already composed were failed or lost with it, and composed
    again by the rerun.  Each section is now written as soon as its music is made."""
    from manga2music.composers import builtin
    from manga2music.errors import BackendError

    shutil.copytree(SAMPLES / "calm", pages / "quiet")
    monkeypatch.setattr(builtin, "PARALLEL_TRACKS", 1)  # one track after another
    real, calls = builtin.BuiltinComposer.compose_one, []

    def third_fails(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise BackendError("out of memory on cuda:0") if stop == "out of memory" else KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(builtin.BuiltinComposer, "compose_one", third_fails)
    out = tmp_path / "out"
    if stop == "ctrl-c":
        with pytest.raises(KeyboardInterrupt):
            run([pages], out, duration=2.0, seed=1)
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    else:
        manifest = run([pages], out, duration=2.0, seed=1)
    done = {e["name"] for e in manifest["sections"] if e["status"] == "ok"}
    assert len(done) == 2 and all((out / f"{name}.wav").is_file() for name in done), manifest["sections"]
    (last,) = {"action", "calm", "quiet"} - done
    assert not (out / f"{last}.wav").exists()
    if stop == "out of memory":
        assert statuses(manifest)[last] == "failed"
    calls.clear()
    monkeypatch.setattr(builtin.BuiltinComposer, "compose_one", real)
    again = run([pages], out, duration=2.0, seed=1)
    assert statuses(again) == {**{name: "skipped" for name in done}, last: "ok"}  # the rerun composes only that one


def test_one_sections_words_that_fail_the_composer_fail_that_section_alone(pages, tmp_path, monkeypatch):
    """Up to eight sections are composed in one call, and when it failed on the first of them, every section of
    the call was failed with that section's error, though none of the others had been tried.  They are composed
    again one at a time; where the composer fails alone on two sections in a row the same way before it has made
    any music, the failure is its own (a model that does not load), and the rest fail with it untried (not one
    failure per section, each minutes long on a GPU)."""
    from manga2music.composers import builtin
    from manga2music.errors import BackendError

    shutil.copytree(SAMPLES / "calm", pages / "quiet")
    monkeypatch.setattr(builtin, "PARALLEL_TRACKS", 1)  # one track after another
    real, calls = builtin.BuiltinComposer.compose_one, []
    out = tmp_path / "out"
    manga2music.describe([pages], out, model="builtin")
    (out / "action.txt").write_text("Battle drums, 150 BPM, with a sound this composer cannot make\n", "utf-8")

    def fails_on_its_words(self, text, *args, **kwargs):
        calls.append(text)
        if "cannot make" in text or fail_all:
            raise BackendError("the synthesizer has no such sound")
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(builtin.BuiltinComposer, "compose_one", fails_on_its_words)
    fail_all = False
    lines: list[str] = []
    keep = manga2music.Callbacks(log=lambda level, line: lines.append(line))
    made = manga2music.compose(out, out, model="builtin", config=RunConfig(duration=2.0, seed=1), callbacks=keep)
    assert statuses(made) == {"action": "failed", "calm": "ok", "quiet": "ok"}, lines
    assert all((out / f"{name}.wav").is_file() for name in ("calm", "quiet")) and not (out / "action.wav").exists()
    assert "builtin failed on action, calm and quiet together (the synthesizer has no such sound): composing " \
        "them one at a time" in lines, lines
    assert any(line.startswith("action") and "the synthesizer has no such sound" in line for line in lines), lines
    # a composer that has made music fails only what it fails on, two sections in a row the same way too (two
    # descriptions too long for a text encoder): the sections after them are made (they were failed untried)
    shutil.copytree(SAMPLES / "calm", pages / "zz")
    manga2music.describe([pages], out, model="builtin")
    for name in ("calm", "quiet"):
        (out / f"{name}.txt").write_text("Strings and a sound this composer cannot make, 60 BPM\n", "utf-8")
    (out / "action.txt").write_text("Battle drums, 150 BPM in E minor\n", "utf-8")
    lines.clear()
    twice = manga2music.compose(out, out, model="builtin", config=RunConfig(duration=2.0, seed=1), callbacks=keep)
    assert statuses(twice) == {"action": "ok", "calm": "failed", "quiet": "failed", "zz": "ok"}, lines
    fail_all, calls[:] = True, []  # now the composer fails on anything: two tried alone, the others not
    for name in ("more", "most"):
        shutil.copytree(SAMPLES / "action", pages / name)
    lines.clear()
    again = run([pages], out, duration=2.0, seed=1, force=True)
    assert set(statuses(again).values()) == {"failed"} and len(calls) == 1 + 2, (calls, lines)
    untried = [e["message"] for e in again["sections"] if e["name"] not in ("action", "calm")]
    assert len(untried) == 4
    assert untried and all(m.startswith("not composed: builtin failed the same way on action and calm alone")
                           for m in untried), again["sections"]


def test_describe_after_a_hand_edit_says_the_music_is_of_the_words_before(pages, tmp_path):
    """`run`, then the description edited by hand, then `describe`: the manifest and the listening page showed the
    user's new words beside the music of the old ones, as if made from them."""
    out = tmp_path / "out"
    run([pages / "calm"], out)
    (out / "calm.txt").write_text("Frantic heavy metal battle, 180 BPM in E minor, drums", encoding="utf-8")
    import manga2music

    manifest = manga2music.describe([pages / "calm"], out, model="builtin")
    (calm,) = manifest["sections"]
    assert calm["music_outdated"] is True and calm["tracks"] == ["calm.wav"]
    assert "Described again (or the description edited) since" in (out / "index.html").read_text(encoding="utf-8")
    again = run([pages / "calm"], out)  # run composes from the user's words: the music is theirs now
    assert "music_outdated" not in again["sections"][0]


@pytest.mark.parametrize("name", ["Ch 1: Start?", "CON", "trailing.", "a" * 200])
def test_compose_after_describe_of_a_chapter_whose_name_was_changed_on_disk_is_that_chapter(tmp_path, name):
    """A chapter whose name cannot be a file name as it is (":" "?", a reserved or over-long name) is written
    under a safe one; compose named it by that file name, and the manifest listed a second, phantom section."""
    out = tmp_path / "out"
    shutil.copytree(SAMPLES / "calm", tmp_path / "in" / name)
    manga2music.describe([tmp_path / "in"], out, model="builtin")
    manga2music.compose([out], out, model="builtin", config=cfg())
    sections = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]
    assert [e["name"] for e in sections] == [name], sections
    assert sections[0]["status"] == "ok" and len(sections[0]["tracks"]) == 1


def test_a_description_reached_through_a_link_to_the_output_folder_is_that_section(pages, tmp_path):
    """`compose link/ -o out` with link -> out composed every section as one "from elsewhere": calm-2, action-2."""
    out = tmp_path / "out"
    manga2music.describe([pages], out, model="builtin")
    (tmp_path / "link").symlink_to(out, target_is_directory=True)
    manga2music.compose([tmp_path / "link"], out, model="builtin", config=cfg())
    manga2music.compose([tmp_path / "link" / "calm.txt"], out, model="builtin", config=cfg())
    sections = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]
    assert sorted(e["name"] for e in sections) == ["action", "calm"]
    assert sorted(p.name for p in out.glob("*.wav")) == ["action.wav", "calm.wav"]


def test_a_description_given_twice_is_composed_once(pages, tmp_path):
    """`compose out out/calm.txt -o out` (the folder and one of its files) made calm-2, a copy of calm's track."""
    out = tmp_path / "out"
    manga2music.describe([pages / "calm"], out, model="builtin")
    mine = tmp_path / "mine.txt"
    mine.write_text("Solo harp at 60 BPM", encoding="utf-8")
    manga2music.compose([out, out / "calm.txt", mine, mine], out, model="builtin", config=cfg())
    assert sorted(p.name for p in out.glob("*.wav")) == ["calm.wav", "mine.wav"]


def test_score_takes_numpy_numbers_and_the_api_takes_a_format_as_the_command_line_does(tmp_path):
    """score(config=RunConfig(longest_cue=np.int64(60))) was refused ("must be from 8 to 1800 (got 60)"), and
    RunConfig(fmt="FLAC") or ".flac" was "unknown audio format" where `--format FLAC` works."""
    import numpy as np

    manifest = manga2music.score([SAMPLES / "calm"], tmp_path / "out", vision_model="builtin", music_model="builtin",
                                 config=RunConfig(longest_cue=np.int64(60), reading_speed=np.float32(2.0), fmt=".FLAC"))
    assert [e["status"] for e in manifest["sections"]] == ["ok"]
    assert manifest["sections"][0]["tracks"] == ["calm.score.flac"]
    manifest = manga2music.run([SAMPLES / "calm"], tmp_path / "run", vision_model="builtin", music_model="builtin",
                               config=RunConfig(duration=1, fmt="WAV"))
    assert manifest["sections"][0]["tracks"] == ["calm.wav"]


@pytest.mark.parametrize("setting", [{"reading_speed": -5}, {"transitions": "bogus"}, {"longest_cue": 30},
                                     {"scenes_file": "scenes.txt"}])
@pytest.mark.parametrize("command", ["run", "describe"])
def test_run_and_describe_refuse_a_setting_only_score_uses(pages, tmp_path, setting, command):
    """run(config=RunConfig(reading_speed=-5)) or transitions="bogus" ran as if nothing had been asked."""
    from manga2music.errors import InputError

    with pytest.raises(InputError) as refused:
        if command == "run":
            manga2music.run([pages], tmp_path / "out", vision_model="builtin", music_model="builtin",
                            config=RunConfig(duration=1, **setting))
        else:
            manga2music.describe([pages], tmp_path / "out", model="builtin", config=RunConfig(**setting))
    (name,) = setting
    assert f"{name} is a setting of score()" in refused.value.message
    assert not (tmp_path / "out").exists()


def test_a_program_that_cancels_a_run_with_its_own_exception_still_gets_the_manifest_of_what_was_finished(pages,
                                                                                                      tmp_path):
    """A host's own cancel (a BaseException, as a web server's stop or asyncio's CancelledError is) raised from a
    callback left no manifest, where Ctrl-C leaves the one of the sections finished."""
    from manga2music.pipeline import Callbacks

    class Cancelled(BaseException):
        pass

    def cancel_after_the_first(done, total, name):
        if name == "composed" and done >= 1:  # tracks were written
            raise Cancelled()

    out = tmp_path / "out"
    with pytest.raises(Cancelled):
        manga2music.run([pages], out, vision_model="builtin", music_model="builtin", config=cfg(duration=1.0),
                        callbacks=Callbacks(sections=cancel_after_the_first))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    listed = [e["name"] for e in manifest["sections"]]
    assert listed and all((out / t).is_file() for e in manifest["sections"] for t in e["tracks"]), manifest
    assert (out / "index.html").is_file()


@pytest.mark.parametrize("call, said", [
    (lambda out: manga2music.run([SAMPLES / "calm"], out, vision_model=b"builtin", music_model="builtin"),
     "vision_model must be a model name"),
    (lambda out: manga2music.describe([SAMPLES / "calm"], out, model=3), "model must be a model name"),
    (lambda out: manga2music.compose(text=["calm piano", None], output=out, model="builtin"),
     r"text must be a description \(a str\)"),
    (lambda out: manga2music.score([SAMPLES / "calm"], out, vision_model="builtin", music_model="builtin",
                                   config=RunConfig(scenes_file=3)),  # "expected str, bytes or os.PathLike object"
     r"scenes_file must be a path \(a str or a Path\) or \"auto\", not int"),
    (lambda out: manga2music.run([SAMPLES / "calm", 7], out, vision_model="builtin", music_model="builtin"),
     "a path must be a str or a Path, not int"),
    # each of these was Python's word from inside: "'NoneType' object is not iterable", "replace() should be called
    # on dataclass instances", bytes read as numbers ("not int (99)"), "'builtin_function_or_method' object has no
    # attribute 'info'"
    (lambda out: manga2music.run(None, out, vision_model="builtin", music_model="builtin"),
     "paths must be a path .* or a list of them, not NoneType"),
    (lambda out: manga2music.compose(text="calm piano", output=out, model="builtin", config={"duration": 5}),
     "config must be a manga2music.RunConfig, not dict"),
    (lambda out: manga2music.compose(text=b"calm piano", output=out, model="builtin"),
     r"text must be a description \(a str\) or a list of them, not bytes"),
    (lambda out: manga2music.compose(text="calm piano", output=out, model="builtin", callbacks=print),
     "callbacks must be a manga2music.Callbacks .*, not builtin_function_or_method")])
def test_a_wrong_type_given_to_the_api_is_a_type_error_that_says_which_argument(tmp_path, call, said):
    """vision_model=None was "AttributeError: 'NoneType' object has no attribute 'strip'" (None is "left out" now:
    as the folder's music was made), text=[None] a TypeError from deep inside; neither said which argument was
    wrong."""
    with pytest.raises(TypeError, match=said):
        call(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_empty_path_given_to_the_api_is_refused_as_the_command_line_refuses_it(tmp_path, monkeypatch):
    """describe("") read the whole current folder (a web service's empty form field: the server's own folder)."""
    from manga2music.errors import InputError

    shutil.copytree(SAMPLES / "calm", tmp_path / "here" / "calm")
    monkeypatch.chdir(tmp_path / "here")
    for empty in ("", "  ", b""):
        with pytest.raises(InputError, match="an empty path"):
            manga2music.describe(empty, tmp_path / "out", model="builtin")
    assert not (tmp_path / "out").exists()


def test_a_path_given_as_bytes_is_the_file_systems_name(tmp_path):
    """run([b"pages/calm"]) was a TypeError: bytes are how a program holds a name that is not UTF-8."""
    manifest = manga2music.run([os.fsencode(SAMPLES / "calm")], tmp_path / "out", vision_model="builtin",
                               music_model="builtin", config=RunConfig(duration=1))
    assert statuses(manifest) == {"calm": "ok"}


def test_run_and_score_into_one_folder_each_keep_the_others_music_in_the_manifest(tmp_path):
    """`run` and `score` may share an output folder (README), but the manifest entry of the last one dropped the
    other's files: after `run`, a script found no cue sheet nor score; after `score`, no track of `run`."""
    out = tmp_path / "out"
    manga2music.score([SAMPLES / "calm"], out, vision_model="builtin", music_model="builtin", config=cfg())

    def entry():
        (only,) = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]
        return only

    manga2music.run([SAMPLES / "calm"], out, vision_model="builtin", music_model="builtin", config=cfg())
    after_run = entry()
    assert after_run["tracks"] == ["calm.wav"] and after_run["score_tracks"] == ["calm.score.wav"]
    assert after_run["cue_sheet"] == "calm.cues.json" and after_run["read_along"] == "calm.read.html"
    assert after_run["chapters"] == "calm.score.vtt" and after_run["score_midi"]
    manga2music.score([SAMPLES / "calm"], out, vision_model="builtin", music_model="builtin", config=cfg(seed=8))
    after_score = entry()
    assert after_score["tracks"] == ["calm.score.wav"] and after_score["cue_sheet"] == "calm.cues.json"
    assert after_score["run_tracks"] == ["calm.wav"] and after_score["run_midi"] == ["calm.mid"]
    assert "score_tracks" not in after_score
    (out / "calm.wav").unlink()  # deleted by the user: no longer listed
    (out / "calm.mid").unlink()
    manga2music.score([SAMPLES / "calm"], out, vision_model="builtin", music_model="builtin", config=cfg(seed=8))
    assert "run_tracks" not in entry() and "run_midi" not in entry()


def test_an_infinite_reading_speed_is_told_the_range(pages, tmp_path):
    """`reading_speed=inf` was told "must be a number above 0 (got inf)": infinity is above 0."""
    from manga2music.errors import InputError

    with pytest.raises(InputError, match=r"reading_speed must be a number from 0\.05 to 20 \(got inf\)"):
        manga2music.score([pages], tmp_path / "out", vision_model="builtin", music_model="builtin",
                          config=RunConfig(reading_speed=float("inf")))


def test_the_records_name_the_hub_commit_of_the_weights_that_made_each_output(pages, tmp_path, monkeypatch):
    """A Hub model's name does not say which of its versions made an output: a `models pull` of a newer snapshot
    changed the music under the same name.  Each describe record, take and cue names the commit its weights came
    from (the cache's lookup itself is tested with a real cache layout in test_musicgen).  Here builtin stands in
    for a Hub model: the commits are what a cached snapshot would give."""
    from manga2music.composers.base import Composer
    from manga2music.describers.base import Describer

    monkeypatch.setattr(Describer, "revision", lambda self: "d" * 40)
    monkeypatch.setattr(Composer, "revision", lambda self: "c" * 40)
    run(pages, tmp_path / "out")
    record = json.loads((tmp_path / "out" / "calm.json").read_text(encoding="utf-8"))
    assert record["describe"]["revision"] == "d" * 40 and record["compose"]["takes"][0]["revision"] == "c" * 40
    manga2music.score(pages / "calm", tmp_path / "score", vision_model="builtin", music_model="builtin",
                      config=cfg(duration=None))
    scored = json.loads((tmp_path / "score" / "calm.json").read_text(encoding="utf-8"))
    assert scored["chapter_reading"]["revision"] == "d" * 40
    assert {s["info"].get("revision") for s in scored["score"]["scenes"]} == {"c" * 40}
    monkeypatch.setattr(Composer, "revision", lambda self: "e" * 40)  # a newer snapshot: kept cues keep their own
    manga2music.score(pages / "calm", tmp_path / "score", vision_model="builtin", music_model="builtin",
                      config=cfg(duration=None))
    kept = json.loads((tmp_path / "score" / "calm.json").read_text(encoding="utf-8"))
    assert {s["info"].get("revision") for s in kept["score"]["scenes"]} == {"c" * 40}


def test_the_record_keeps_the_words_its_music_was_made_from_when_describe_writes_new_ones(pages, tmp_path):
    """After `describe` wrote new words over a section that has music, its record's description was the new text,
    while its compose entry (and the track) were of the old one, and nothing in the record said so."""
    out = tmp_path / "out"
    run(pages, out)
    made = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert made["compose"]["description"] == made["description"] == (out / "calm.txt").read_text("utf-8").strip()
    shutil.copy(pages / "action" / sorted(os.listdir(pages / "action"))[0], pages / "calm" / "000.png")
    manga2music.describe(pages, out, model="builtin", config=cfg(seed=None))
    after = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert after["description"] != made["description"]  # the new words...
    assert after["compose"]["description"] == made["description"]  # ...and the ones its music is of
    run(pages, out)
    composed = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert composed["compose"]["description"] == composed["description"] == after["description"]


def test_a_rerun_without_a_format_keeps_the_format_the_music_is_in(pages, tmp_path):
    """After `compose --format flac`, editing one description and a plain `compose` turned every other section's
    FLAC into a WAV (and an MP3 back into WAV was composed again from its seeds), where a left-out --duration or
    --seed keeps what was made."""
    out = tmp_path / "out"
    run(pages, out, fmt="flac")
    flacs = {p.name: p.read_bytes() for p in out.glob("*.flac")}
    assert set(flacs) == {"calm.flac", "action.flac"}
    (out / "calm.txt").write_text("slow solo cello, 60 BPM, D minor\n", encoding="utf-8")
    again = manga2music.compose(out, out, model="builtin", config=RunConfig(seed=None))
    assert statuses(again) == {"calm": "ok", "action": "skipped"}
    assert not list(out.glob("*.wav")) and (out / "action.flac").read_bytes() == flacs["action.flac"]
    assert json.loads((out / "calm.json").read_text(encoding="utf-8"))["compose"]["format"] == "flac"
    assert statuses(run(pages, out, fmt=None)) == {"calm": "skipped", "action": "skipped"}
    made = run(pages / "calm", out, fmt="wav")  # asked for: another format
    assert {e["name"]: e["tracks"] for e in made["sections"]}["calm"] == ["calm.wav"]
    assert not (out / "calm.flac").exists()
    # a folder of several formats: each section keeps its own (a plain rerun made them all wav, FLACs deleted)
    lines: list[str] = []
    mixed = manga2music.run(pages, out, vision_model="builtin", music_model="builtin", config=cfg(fmt=None),
                            callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
    assert statuses(mixed) == {"calm": "skipped", "action": "skipped"}
    assert (out / "action.flac").read_bytes() == flacs["action.flac"] and (out / "calm.wav").is_file()
    assert "fmt left out: the music there stays flac and wav, each section in its own, and a new section is wav " \
        "(fmt chooses one for all)" in lines, lines
    (out / "action.txt").write_text("fast drums, 150 BPM\n", encoding="utf-8")  # composed again: still a FLAC
    assert statuses(manga2music.compose(out, out, model="builtin", config=RunConfig(seed=None)))["action"] == "ok"
    assert (out / "action.flac").is_file() and not (out / "action.wav").exists()
    only_flac = tmp_path / "flac"  # all in one format: a new section is made in it too (it was made wav after a
    run(pages / "calm", only_flac, fmt="flac")  # line that said the music stays flac)
    shutil.copytree(pages / "action", pages / "new")
    added = run([pages / "calm", pages / "new"], only_flac, fmt=None)
    assert {e["name"]: e["tracks"] for e in added["sections"]} == {"calm": ["calm.flac"], "new": ["new.flac"]}
    shutil.copytree(pages / "action", pages / "newer")  # a new chapter given alone (it was a WAV, the folder mixed
    alone = run(pages / "newer", only_flac, fmt=None)  # for good), and a description given as --text
    assert {e["name"]: e["tracks"] for e in alone["sections"]}["newer"] == ["newer.flac"]
    told = manga2music.compose([], only_flac, text="soft piano", model="builtin", config=RunConfig(seed=1))
    assert [e["tracks"] for e in told["sections"] if e["name"] in told["this_run"]] == [["soft-piano.flac"]]
    scored = tmp_path / "scored"
    manga2music.score(pages / "calm", scored, vision_model="builtin", music_model="builtin",
                      config=RunConfig(seed=3, fmt="mp3"))
    kept = manga2music.score(pages / "calm", scored, vision_model="builtin", music_model="builtin",
                             config=RunConfig(seed=3))
    assert statuses(kept) == {"calm": "skipped"} and kept["sections"][0]["tracks"] == ["calm.score.mp3"]


def test_a_plain_rerun_keeps_the_loop_and_the_loudness_the_music_there_was_made_with(pages, tmp_path):
    """After `run --loop --no-normalize`, a plain rerun (to add a chapter) composed every looped track again,
    without its loop and at -14 LUFS, and said only "the composer's settings changed", where a left-out --format,
    --duration or --seed keeps what was made."""
    out = tmp_path / "out"
    run(pages, out, loop=True, normalize=False)
    made = {p.name: p.read_bytes() for p in out.glob("*.wav")}
    lines: list[str] = []
    keep = manga2music.Callbacks(log=lambda level, line: lines.append(line))
    again = manga2music.run(pages, out, vision_model="builtin", music_model="builtin", config=cfg(), callbacks=keep)
    assert statuses(again) == {"calm": "skipped", "action": "skipped"}, lines
    assert {p.name: p.read_bytes() for p in out.glob("*.wav")} == made
    assert "loop=True and normalize=False, as the music there was made" in " ".join(lines), lines
    shutil.copytree(pages / "action", pages / "new")  # a new chapter is made as the others were
    assert statuses(run(pages, out)) == {"calm": "skipped", "action": "skipped", "new": "ok"}
    new = json.loads((out / "new.json").read_text(encoding="utf-8"))["compose"]
    assert new["settings"]["loop"] is True and new["normalize"] is False
    lines.clear()  # asked for: composed again, and said so
    unlooped = manga2music.run(pages / "calm", out, vision_model="builtin", music_model="builtin",
                               config=cfg(loop=False), callbacks=keep)
    assert statuses(unlooped) == {"calm": "ok"}
    assert "calm: composing again: a track that ends, not a loop" in lines, lines
    assert json.loads((out / "calm.json").read_text(encoding="utf-8"))["compose"]["settings"]["loop"] is False
    lines.clear()  # the folder now mixed: a section given alone keeps its own (it was composed again, unlooped)
    alone = manga2music.run(pages / "action", out, vision_model="builtin", music_model="builtin", config=cfg(),
                            callbacks=keep)
    assert statuses(alone) == {"action": "skipped"} and "loop=True and normalize=False" in " ".join(lines), lines
    lines.clear()  # sections given made both ways: the loop is left at its default (off), and that is said; every
    mixed = manga2music.run(pages, out, vision_model="builtin", music_model="builtin", config=cfg(),  # section
                            callbacks=keep)  # still keeps the model's level, so that stays
    assert statuses(mixed) == {"calm": "skipped", "action": "ok", "new": "ok"}, lines
    said = " ".join(lines)
    assert "normalize=False, as the music there was made" in said and "loop=True and" not in said, lines
    assert "loop left out: some of this music loops and some does not" in said, lines
    assert json.loads((out / "action.json").read_text(encoding="utf-8"))["compose"]["normalize"] is False


def test_giving_the_recorded_seed_of_music_made_without_one_composes_nothing(pages, tmp_path):
    """Music made without --seed records the seed it drew; a rerun given that seed composed the same music again
    and called the section "ok" (new music) on every later run."""
    out = tmp_path / "out"
    run(pages, out, seed=None)
    recorded = json.loads((out / "calm.json").read_text(encoding="utf-8"))["compose"]["seed"]
    audio = (out / "calm.wav").read_bytes()
    assert statuses(run(pages / "calm", out, seed=recorded)) == {"calm": "skipped"}
    assert (out / "calm.wav").read_bytes() == audio
    assert statuses(run(pages / "calm", out, seed=recorded + 1)) == {"calm": "ok"}  # another seed: other music
    assert (out / "calm.wav").read_bytes() != audio


def test_a_rerun_without_variations_keeps_the_takes_each_section_has(pages, tmp_path):
    """After `run --variations 2`, editing one description and a plain `compose OUT -o OUT` removed every section's
    second take (the untouched ones too), as --variations 1 would, where a left-out --duration keeps the length."""
    out = tmp_path / "out"
    run(pages, out, variations=2)
    takes = {p.name: p.read_bytes() for p in out.glob("*.take2.*")}
    assert set(takes) == {"calm.take2.wav", "calm.take2.mid", "action.take2.wav", "action.take2.mid"}
    (out / "calm.txt").write_text("slow solo cello, 60 BPM, D minor\n", encoding="utf-8")
    again = manga2music.compose(out, out, model="builtin", config=RunConfig(seed=None))
    assert statuses(again) == {"calm": "ok", "action": "skipped"}
    assert (out / "action.take2.wav").read_bytes() == takes["action.take2.wav"]
    assert (out / "calm.take2.wav").read_bytes() != takes["calm.take2.wav"]  # both of calm's takes made again
    assert {e["name"]: len(e["tracks"]) for e in again["sections"]} == {"calm": 2, "action": 2}
    assert statuses(run(pages, out, seed=None, variations=None)) == {"calm": "skipped", "action": "skipped"}
    fewer = run(pages / "action", out, seed=None, variations=1)  # asked for: one take
    assert fewer["sections"][0]["tracks"] == ["action.wav"] and not (out / "action.take2.wav").exists()
    (out / "calm.take2.wav").write_bytes(b"my own edit")  # the user's now: kept, and said to be kept, not removed
    lines: list[str] = []
    manga2music.run(pages / "calm", out, vision_model="builtin", music_model="builtin", config=cfg(variations=1),
                    callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
    assert (out / "calm.take2.wav").read_bytes() == b"my own edit" and not (out / "calm.take2.mid").exists()
    said = next(line for line in lines if "keeping the first take(s)" in line)
    assert said == ("calm: variations=1: keeping the first take(s), removing calm.take2.mid; calm.take2.wav changed "
                    "since manga2music wrote it: left as it is"), said


def test_raising_from_the_step_callback_cancels_a_wait_for_another_run(pages, tmp_path):
    """The README says a host program cancels `wait` by raising from its step callback; an ordinary exception was
    swallowed and the call went on waiting (only KeyboardInterrupt stopped it)."""
    import time

    from output_checks import another_run_holds

    from manga2music.pipeline import Callbacks

    def step(done: int, total: int, label: str) -> None:
        if label.startswith("waiting"):
            raise RuntimeError("the user cancelled")

    out = tmp_path / "out"
    with another_run_holds(out):
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="the user cancelled"):
            manga2music.run([pages / "calm"], out, vision_model="builtin", music_model="builtin",
                            config=cfg(wait=True), callbacks=Callbacks(step=step))
        assert time.monotonic() - started < 10


def test_a_program_told_of_a_busy_or_foreign_output_folder_is_named_its_settings_not_the_commands_flags(pages,
                                                                                                     tmp_path):
    """The Python API's messages said "pass --wait ... or choose another folder with -o": no such flag in a
    program; it is told of ``wait`` and of the output folder it passes."""
    from output_checks import another_run_holds

    from manga2music.errors import OutputBusyError, OutputError

    out = tmp_path / "out"
    with another_run_holds(out):
        with pytest.raises(OutputBusyError) as busy:
            run([pages / "calm"], out)
    said = f"{busy.value.message} {busy.value.hint}"
    assert "pass RunConfig(wait=True) to queue behind it" in said and "another output folder" in said, said
    assert "--wait" not in said and " -o" not in said, said
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "manifest.json").write_text("my own notes", encoding="utf-8")
    with pytest.raises(OutputError) as foreign:
        run([pages / "calm"], theirs)
    assert " -o" not in foreign.value.hint and "another output folder" in foreign.value.hint, foreign.value.hint


def test_a_duration_just_over_the_longest_is_said_as_given_not_rounded(pages, tmp_path):
    """`--duration 1800.0001` was refused as "1800 is more than the 1800 s a track may be"."""
    from manga2music.errors import InputError

    with pytest.raises(InputError) as over:
        run([pages / "calm"], tmp_path / "out", duration=1800.0001)
    assert over.value.message.startswith("duration=1800.0001 is more than the 1800 s"), over.value.message
    with pytest.raises(InputError) as whole:
        run([pages / "calm"], tmp_path / "out", duration=2400.0)
    assert whole.value.message.startswith("duration=2400 is more than"), whole.value.message


def test_a_whole_number_duration_from_a_program_is_the_same_setting_as_the_command_lines(pages, tmp_path):
    """`RunConfig(duration=4)` (the README's own example writes `duration=30`) and `--duration 4` (a float) were two
    settings: each composed the other's music again, byte for byte the same, saying "its description changed"."""
    first = run([pages / "calm"], tmp_path / "out", duration=4, seed=5)
    assert statuses(first) == {"calm": "ok"}
    again = run([pages / "calm"], tmp_path / "out", duration=4.0, seed=5)  # what the command line passes
    assert statuses(again) == {"calm": "skipped"}


def test_a_section_new_to_the_folder_is_made_as_long_and_in_as_many_takes_as_the_music_there(pages, tmp_path):
    """After `run LIB --duration 300` was stopped, the rerun it asks for (the same command without the flags a user
    does not retype: a plain `run LIB`) made the sections not yet made 10 s long, beside 300 s ones, where a
    left-out --format or --loop keeps what the music there was made with; and a new chapter added to a folder of
    2-take sections got one take."""
    out = tmp_path / "out"
    run(pages / "calm", out, duration=4.0, variations=2)
    lines: list[str] = []
    said = manga2music.Callbacks(log=lambda level, line: lines.append(line))
    again = manga2music.run(pages, out, vision_model="builtin", music_model="builtin",
                            config=RunConfig(seed=7), callbacks=said)
    assert statuses(again) == {"calm": "skipped", "action": "ok"}, lines
    for name in ("calm", "action"):
        takes = sorted(out.glob(f"{name}*.wav"))
        assert [p.name for p in takes] == [f"{name}.take2.wav", f"{name}.wav"], takes
        assert all(abs(sf.info(str(p)).duration - 4.0) < 0.05 for p in takes), [sf.info(str(p)) for p in takes]
    assert "duration=4 and variations=2, as the music there is made" in " ".join(lines), lines
    mixed = tmp_path / "mixed"  # lengths that differ: a new section is the default length, said
    run(pages / "calm", mixed, duration=4.0)
    run(pages / "action", mixed, duration=3.0)
    shutil.copytree(pages / "action", pages / "new")
    lines.clear()
    added = manga2music.run(pages, mixed, vision_model="builtin", music_model="builtin",
                            config=RunConfig(seed=7), callbacks=said)
    assert statuses(added) == {"calm": "skipped", "action": "skipped", "new": "ok"}, lines
    assert abs(sf.info(str(mixed / "new.wav")).duration - 10.0) < 0.05
    assert abs(sf.info(str(mixed / "calm.wav")).duration - 4.0) < 0.05
    assert any("duration left out" in line and "a new section is 10 s" in line for line in lines), lines


def test_a_track_a_user_retagged_is_left_alone_by_a_rerun_with_nothing_to_do(pages, tmp_path):
    """A tagger (Picard, beets) or a player that writes tags into calm.wav made every later rerun fail that
    section ("calm.wav was changed since manga2music wrote it, and this run would replace it"), exit 1, though
    nothing about it was to be made again.  The run skips it, the user's file as they left it; only a rerun that
    would replace it stops, as before."""
    import mutagen
    from mutagen.id3 import TPE1

    out = tmp_path / "out"
    run(pages, out)
    tagged = mutagen.File(out / "calm.wav")  # the WAV holds our ID3 tags: one more frame
    tagged.tags.add(TPE1(encoding=3, text="Me"))
    tagged.save()
    mine = (out / "calm.wav").read_bytes()
    assert statuses(run(pages, out)) == {"calm": "skipped", "action": "skipped"}
    assert statuses(manga2music.compose(out, out, model="builtin", config=cfg())) == {"calm": "skipped",
                                                                                      "action": "skipped"}
    assert (out / "calm.wav").read_bytes() == mine
    more = run(pages / "calm", out, variations=2)  # a take added: the retagged first one is kept, not written
    assert statuses(more) == {"calm": "ok"}, more["sections"]
    assert (out / "calm.wav").read_bytes() == mine and (out / "calm.take2.wav").is_file()
    (out / "calm.txt").write_text("slow solo cello, 60 BPM, D minor\n", encoding="utf-8")
    again = manga2music.compose(out, out, model="builtin", config=cfg())
    failed = {e["name"]: e for e in again["sections"]}["calm"]
    assert failed["status"] == "failed" and "was changed since manga2music wrote it" in failed["message"], failed
    assert (out / "calm.wav").read_bytes() == mine


def test_one_callbacks_object_given_to_several_calls_hears_each_calls_skipped_pages(pages, tmp_path):
    """A service that kept one Callbacks for its calls heard a chapter's broken pages on the first call only: the
    count of pages said skipped (and the warnings said once) lived on the caller's object, for good."""
    for k in range(12):  # more than a call names one by one
        (pages / "calm" / f"broken{k:02d}.png").write_bytes(b"not an image")
    lines: list[str] = []
    kept = manga2music.Callbacks(log=lambda level, line: lines.append(line))
    for k in range(3):
        lines.clear()
        manga2music.describe(pages / "calm", tmp_path / f"out{k}", model="builtin", callbacks=kept)
        assert any(line.startswith("calm: skipping page broken00.png") for line in lines), (k, lines)
        assert "calm: skipping more pages (its record's skipped_pages lists each, with why)" in lines, (k, lines)


def test_an_empty_model_name_is_said_empty_not_a_folder_without_a_model(tmp_path):
    """`os.environ.get("M2M_MODEL", "")` as a model name was looked for as the folder "" (the current one):
    "' is a folder, but there is no model in it", a line that starts with a stray quote."""
    from manga2music.errors import UnknownModelError

    for call in (lambda: manga2music.run(SAMPLES / "calm", tmp_path / "a", vision_model="", music_model="builtin"),
                 lambda: manga2music.compose([], tmp_path / "b", text="soft piano", model=" ")):
        with pytest.raises(UnknownModelError, match=r"^(vision_model|model) is empty \(an unset variable"):
            call()
    with pytest.raises(InputError, match=r"got .8., a str\)"):
        manga2music.score(SAMPLES / "calm", tmp_path / "c", vision_model="builtin", music_model="builtin",
                          config=RunConfig(longest_cue="8"))


def test_a_chapter_of_the_same_name_never_replaces_music_composed_from_words_given_or_a_file_elsewhere(tmp_path):
    """`compose --text "Action"` then `run LIB/action` into the same folder: the chapter took the name "action",
    composed "again: its description changed" over the track, and the words given were in no file any more; a file
    from elsewhere (`compose ext/calm.txt`) the same.  The chapter is numbered now, said, as the other way round;
    music composed from the section's own hand-written description file there is still the chapter's."""
    out = tmp_path / "out"
    lines: list[str] = []
    said = manga2music.Callbacks(log=lambda level, line: lines.append(line))
    manga2music.compose([], out, text="Action", model="builtin", config=cfg())
    track = (out / "action.wav").read_bytes()
    made = manga2music.run([SAMPLES / "action"], out, vision_model="builtin", music_model="builtin", config=cfg(),
                           callbacks=said)
    assert made["this_run"] == ["action-2"] and statuses(made) == {"action-2": "ok"}
    listed = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]
    assert sorted(e["name"] for e in listed) == ["action", "action-2"]  # both on the listening page
    assert (out / "action.wav").read_bytes() == track
    assert json.loads((out / "action.json").read_text(encoding="utf-8"))["compose"]["description"] == "Action"
    assert f"action from {SAMPLES / 'action'}: written as action-2 (action in the output folder is music composed " \
        "from words given as text)" in lines, lines  # the API's name, not the flag
    again = manga2music.run([SAMPLES / "action"], out, config=cfg())  # its own name from now on
    assert again["this_run"] == ["action-2"] and statuses(again)["action-2"] == "skipped"
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "calm.txt").write_text("Soft piano at 70 BPM in C major\n", encoding="utf-8")
    manga2music.compose([tmp_path / "ext" / "calm.txt"], out, model="builtin", config=cfg())
    lines.clear()
    made = manga2music.run([SAMPLES / "calm"], out, config=cfg(), callbacks=said)
    assert made["this_run"] == ["calm-2"]
    assert any(f"(calm in the output folder is music composed from {tmp_path / 'ext' / 'calm.txt'})" in line
               for line in lines), lines
    mine = tmp_path / "mine"  # a description written by hand in the output folder, composed: the chapter's own
    mine.mkdir()
    (mine / "webtoon.txt").write_text("Bright synth pop at 120 BPM\n", encoding="utf-8")
    manga2music.compose([mine], mine, model="builtin", config=cfg())
    made = manga2music.run([SAMPLES / "webtoon"], mine, vision_model="builtin", config=cfg())
    assert made["this_run"] == ["webtoon"]
    assert (mine / "webtoon.txt").read_text(encoding="utf-8") == "Bright synth pop at 120 BPM\n"  # kept, as before


def test_two_paths_of_one_name_in_one_run_say_which_is_numbered(tmp_path):
    """`run X.pdf X.cbz` wrote X and X-2 by the order of the PATHs, with no line: which is
    which was only in the records."""
    import zipfile

    from PIL import Image

    with zipfile.ZipFile(tmp_path / "X.cbz", "w") as cbz:
        for page in sorted((SAMPLES / "action").iterdir()):
            cbz.write(page, page.name)
    calm = [Image.open(p).convert("RGB") for p in sorted((SAMPLES / "calm").iterdir())]
    calm[0].save(tmp_path / "X.pdf", save_all=True, append_images=calm[1:])
    given = [tmp_path / "X.pdf", tmp_path / "X.cbz"]
    lines: list[str] = []
    said = manga2music.Callbacks(log=lambda level, line: lines.append(line))
    made = manga2music.run(given, tmp_path / "out", vision_model="builtin", music_model="builtin", config=cfg(),
                           callbacks=said)
    assert made["this_run"] == ["X", "X-2"]
    assert f"X from {tmp_path / 'X.cbz'}: written as X-2 (X is {tmp_path / 'X.pdf'}, given before it)" in lines, lines
    lines.clear()
    again = manga2music.run(given, tmp_path / "out", config=cfg(), callbacks=said)
    assert statuses(again) == {"X": "skipped", "X-2": "skipped"}
    assert not any("written as" in line for line in lines), lines  # said once, when the name was given


def test_a_series_moved_whole_keeps_each_chapters_name_when_chapters_share_pages(tmp_path):
    """A series whose chapters all end with the group's credits page, beside a `credits` folder holding that page,
    moved to another drive: Chapter 1 took the name "credits" (a gone name half of whose pages it has), the credits'
    own pages became "credits-2", Chapter 1 was "pages gone", and the swap stuck on every rerun."""
    lib = tmp_path / "lib"
    for k in (1, 2, 3):
        chapter = lib / "S" / f"Chapter {k}"
        chapter.mkdir(parents=True)
        shutil.copy(sorted((SAMPLES / "action").iterdir())[k - 1], chapter / "001.png")
        shutil.copy(SAMPLES / "webtoon" / "001.png", chapter / "999 credits.png")
    (lib / "S" / "credits").mkdir()
    shutil.copy(SAMPLES / "webtoon" / "001.png", lib / "S" / "credits" / "credits.png")
    out = tmp_path / "out"
    made = run([lib], out)
    names = sorted(made["this_run"])
    tracks = {n: (out / f"{n}.wav").read_bytes() for n in names}
    lib.rename(tmp_path / "moved")
    again = run([tmp_path / "moved"], out)
    assert sorted(again["this_run"]) == names and set(statuses(again).values()) == {"skipped"}, again["this_run"]
    assert {n: (out / f"{n}.wav").read_bytes() for n in names} == tracks
    for n in names:
        first = json.loads((out / f"{n}.json").read_text(encoding="utf-8"))["pages"][0]["path"]
        assert first.startswith(str(tmp_path / "moved" / n)), (n, first)  # located where they are now


def test_a_programs_lines_name_the_settings_it_sets_not_command_line_flags(pages, tmp_path):
    """`manga2music.run(config=RunConfig(fmt="flac"))` after WAVs said "calm.wav is replaced (--format wav brings it
    back)", a flag the program never typed."""
    out = tmp_path / "out"
    run([pages / "calm"], out)
    lines: list[str] = []
    manga2music.run([pages / "calm"], out, config=RunConfig(fmt="flac"),
                    callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
    replaced = [line for line in lines if "is replaced" in line]
    assert replaced and "(fmt='wav' brings it back)" in replaced[0], lines
    assert not any("--" in line for line in lines), lines


def test_a_chapter_removed_from_its_volume_archive_is_listed_as_its_pages_gone(tmp_path):
    """A volume .cbz rewritten without one chapter's folder: that chapter stayed "ok" on the listening page, made
    from pages still there as far as the manifest said, where a chapter folder deleted is "pages gone"."""
    import zipfile

    pages = sorted((SAMPLES / "action").iterdir())
    volume = tmp_path / "lib" / "Vol.02.cbz"
    volume.parent.mkdir()
    with zipfile.ZipFile(volume, "w") as zf:
        for k, page in enumerate(pages, start=41):
            zf.write(page, f"Vol.02/Ch {k}/001.png")
    out = tmp_path / "out"
    assert len(run([tmp_path / "lib"], out)["this_run"]) == 3
    with zipfile.ZipFile(volume, "w") as zf:  # Ch 43 taken out
        for k, page in list(enumerate(pages, start=41))[:2]:
            zf.write(page, f"Vol.02/Ch {k}/001.png")
    run([tmp_path / "lib"], out)
    listed = {e["name"]: e for e in json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]}
    assert {n: bool(e.get("pages_gone")) for n, e in listed.items()} == {
        "Vol.02/Ch 41": False, "Vol.02/Ch 42": False, "Vol.02/Ch 43": True}, listed


def test_a_description_of_the_same_name_from_elsewhere_never_replaces_music_composed_from_another(tmp_path):
    """`compose A/theme.txt B/theme.txt` made theme and theme-2; then `compose B/theme.txt` alone composed B's words
    as theme, over A's music, saying "its description changed": A's track and words were gone from every file.
    Two --text whose first six words are the same did the same.  Each is numbered now, said; the same file (edited)
    or the same words are still the section they made."""
    out = tmp_path / "out"
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    (tmp_path / "A" / "theme.txt").write_text("Rainy night piano, 60 BPM in A minor\n", encoding="utf-8")
    (tmp_path / "B" / "theme.txt").write_text("Sunny morning ukulele, 120 BPM in C major\n", encoding="utf-8")

    def compose(*paths, text=None):
        lines: list[str] = []
        made = manga2music.compose(list(paths), out, text=text, model="builtin", config=cfg(),
                                   callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
        return {e["name"]: e for e in made["sections"]}, made["this_run"], lines

    compose(tmp_path / "A" / "theme.txt", tmp_path / "B" / "theme.txt")
    words = lambda name: json.loads((out / f"{name}.json").read_text(encoding="utf-8"))["description"]  # noqa: E731
    assert words("theme").startswith("Rainy") and words("theme-2").startswith("Sunny")
    rainy = (out / "theme.wav").read_bytes()
    sections, this_run, lines = compose(tmp_path / "B" / "theme.txt")
    assert this_run == ["theme-2"] and sections["theme-2"]["status"] == "skipped", (this_run, lines)
    assert (out / "theme.wav").read_bytes() == rainy and words("theme").startswith("Rainy")
    assert not any("composed as" in line for line in lines), lines  # B's own section: nothing to say
    (tmp_path / "C").mkdir()
    (tmp_path / "C" / "theme.txt").write_text("Stormy sea, brass and timpani, 140 BPM\n", encoding="utf-8")
    _, this_run, lines = compose(tmp_path / "C" / "theme.txt")
    assert this_run == ["theme-3"] and f"{tmp_path / 'C' / 'theme.txt'}: theme in {out} is composed from " \
        f"{tmp_path / 'A' / 'theme.txt'}: composed as theme-3" in lines, lines
    (tmp_path / "A" / "theme.txt").write_text("Rainy night piano, 50 BPM in A minor\n", encoding="utf-8")
    sections, this_run, _ = compose(tmp_path / "A" / "theme.txt")  # the same file, edited: its section again
    assert this_run == ["theme"] and sections["theme"]["status"] == "ok" and "50 BPM" in words("theme")
    first = "Sad piano ballad, 70 BPM in A minor, rain at night"
    compose(text=first)
    sad = (out / "sad-piano-ballad-70-bpm-in.wav").read_bytes()
    _, this_run, _ = compose(text="Sad piano ballad, 70 BPM in A minor, sunrise hope")
    assert this_run == ["sad-piano-ballad-70-bpm-in-2"], this_run
    assert (out / "sad-piano-ballad-70-bpm-in.wav").read_bytes() == sad
    sections, this_run, _ = compose(text=first)  # the same words: the same track
    assert this_run == ["sad-piano-ballad-70-bpm-in"] and sections[this_run[0]]["status"] == "skipped"
    moved = tmp_path / "moved"  # the project moved whole (a renamed parent, another machine): its sections
    moved.mkdir()  # are still its descriptions' (an absolute path in the record made a numbered copy of each)
    for part in ("A", "B", "out"):
        shutil.move(str(tmp_path / part), str(moved / part))
    again = manga2music.compose([moved / "A" / "theme.txt", moved / "B" / "theme.txt"], moved / "out",
                                model="builtin", config=cfg())
    assert statuses(again) == {"theme": "skipped", "theme-2": "skipped"}, again["this_run"]
    assert json.loads((moved / "out" / "theme.json").read_text("utf-8"))["compose"]["description_file"] == \
        "../A/theme.txt"


def test_messages_to_a_program_name_its_settings_not_the_command_lines_flags(pages, tmp_path):
    """A program was told "-o out.wav is a file ... choose a folder with -o" and "read at --reading-speed 2, as its
    last score was": flags it never saw."""
    from manga2music.errors import OutputError

    (tmp_path / "out.wav").write_bytes(b"")
    with pytest.raises(OutputError) as told:
        run(pages, tmp_path / "out.wav")
    assert str(told.value).startswith("the output folder ") and told.value.hint == "choose another output folder"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "calm.json").write_text("{}", encoding="utf-8")  # a file of the user's in the way
    made = run(pages / "calm", tmp_path / "mine")
    (failed,) = [e["message"] for e in made["sections"]]
    assert failed.endswith("move it or choose another output folder") and " -o" not in failed, failed
    lines: list[str] = []
    for speed in (2.0, None):
        manga2music.score(pages / "calm", tmp_path / "scored", vision_model="builtin", music_model="builtin",
                          config=RunConfig(seed=1, reading_speed=speed),
                          callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
    assert "calm: read at reading_speed=2, as its last score was (reading_speed=1: the usual pace)" in lines, lines


def test_composing_an_output_folder_into_another_says_where_the_music_goes(pages, tmp_path, monkeypatch):
    """`describe LIB -o desc`, edit, `compose desc`: the music went to ./output with new seeds, and nothing said
    that desc/ got no music."""
    from output_checks import cli

    manga2music.describe(pages / "calm", tmp_path / "desc", model="builtin")
    monkeypatch.chdir(tmp_path)
    told = cli("compose", "desc", "--model", "builtin")
    assert told.returncode == 0, told.stderr
    assert "composing the descriptions of desc into output, another folder (-o desc composes them beside their " \
           "pages' records)" in told.stderr, told.stderr
    assert (tmp_path / "output" / "calm.wav").is_file()


def test_score_refuses_single_stage_which_its_chapter_reading_does_not_use(tmp_path):
    """`score --single-stage` was taken and did nothing (the chapter is read page by page into its own JSON) but
    make the chapter be read again: it is refused, as a setting that does not apply is elsewhere.  And `score
    --help` listed it ("default two-stage") among the options score takes."""
    from output_checks import cli

    for given in ("--single-stage", "--two-stage"):
        told = cli("score", SAMPLES / "calm", "-o", tmp_path / "o", "--vision-model", "builtin", "--music-model",
                   "builtin", given)
        assert told.returncode == 2 and f"{given} does not apply to score" in told.stderr, told.stderr
    helped = cli("score", "--help")
    assert helped.returncode == 0 and "--reading-speed" in helped.stdout and "stage" not in helped.stdout
    with pytest.raises(InputError, match="single_stage does not apply to score"):
        manga2music.score(SAMPLES / "calm", tmp_path / "p", vision_model="builtin", music_model="builtin",
                          config=RunConfig(vision_options={"single_stage": False}))


def test_the_manifest_lists_the_analysis_save_artifact_wrote(pages, tmp_path):
    """`save_artifact=True` wrote NAME.analysis.json and its record listed it, but neither the manifest nor the
    call's return value did: a program could not find it there."""
    out = tmp_path / "out"
    made = run(pages / "calm", out, save_artifact=True)
    assert (out / "calm.analysis.json").is_file()
    assert [e.get("analysis") for e in made["sections"]] == ["calm.analysis.json"]
    (out / "calm.analysis.json").unlink()
    again = run(pages / "action", out)  # another section's run: calm's entry no longer names the file
    assert {e["name"]: e.get("analysis") for e in again["sections"]} == {"calm": None, "action": None}


def test_an_analysis_of_pages_since_changed_is_not_kept_beside_the_new_words(pages, tmp_path):
    """`run --save-artifact`, a page added, then a plain `run`: the section was described again, but
    calm.analysis.json kept the old pages' analysis (conversation, calm) beside words of action, and the record and
    manifest went on naming it; `--save-artifact` then did not write it again."""
    out = tmp_path / "out"
    run(pages / "calm", out, save_artifact=True)
    before = json.loads((out / "calm.analysis.json").read_text(encoding="utf-8"))["analysis"]
    for page in sorted((SAMPLES / "action").iterdir()):
        shutil.copy(page, pages / "calm" / f"x{page.name}")
    again = run(pages / "calm", out)
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert record["describe"]["analysis"] != before  # the pages read otherwise now
    assert not (out / "calm.analysis.json").exists()
    assert "calm.analysis.json" not in record["files"] and again["sections"][0].get("analysis") is None
    kept = run(pages / "calm", out, save_artifact=True)
    written = json.loads((out / "calm.analysis.json").read_text(encoding="utf-8"))["analysis"]
    assert written == record["describe"]["analysis"] and kept["sections"][0]["analysis"] == "calm.analysis.json"
    before = (out / "calm.analysis.json").stat().st_mtime_ns
    assert statuses(run(pages / "calm", out, save_artifact=True)) == {"calm": "skipped"}  # up to date: left as it is
    assert (out / "calm.analysis.json").stat().st_mtime_ns == before


@pytest.mark.parametrize("answer, music", [
    ("A passionate tango with bandoneon and a military march on snare drums.", True),
    ("A solemn Gregorian chant echoing in a cathedral.", True),
    ("Thunderous taiko drumming.", True),
    ("The image shows a manga page with two girls talking in a classroom. One of them is smiling.", False),
    ("The picture shows a boy standing on a bridge at night, a band of rebels behind him.", False),
])
def test_an_answer_is_said_to_name_no_music_only_when_it_names_none(answer, music):
    """The warning that a model's answer names no music fired on real music descriptions the builtin composer's
    word table lacks (a tango with bandoneon, a march on snare drums, Gregorian chant, taiko), telling the user
    their model was broken."""
    from manga2music.describing import music_words

    assert bool(music_words(answer)) is music, music_words(answer)


def test_a_score_after_a_run_read_changed_pages_says_its_pages_changed_not_its_version(pages, tmp_path):
    """score, a page replaced, run (which reads the new page), score: "reading the pages again: its version
    changed", though nothing's version had."""
    out = tmp_path / "out"
    score = lambda lines: manga2music.score(  # noqa: E731
        pages / "calm", out, vision_model="builtin", music_model="builtin", config=RunConfig(seed=3),
        callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
    score([])
    shutil.copy(pages / "action" / sorted(os.listdir(pages / "action"))[0], pages / "calm" / "002.png")
    run(pages / "calm", out)
    lines: list[str] = []
    score(lines)
    said = [line for line in lines if "reading the pages again" in line]
    assert said and "version" not in said[0] and "its pages changed since its last score" in said[0], lines


def test_an_edited_description_beside_changed_pages_settles_to_skipped(pages, tmp_path):
    """A description the user wrote, then a page replaced: every later rerun said the pages had changed, rewrote the
    record and reported the section "ok", for good, though nothing was made."""
    out = tmp_path / "out"
    run(pages / "calm", out)
    (out / "calm.txt").write_text("Slow solo cello, 60 BPM (my words)\n", encoding="utf-8")
    shutil.copy(pages / "action" / sorted(os.listdir(pages / "action"))[0], pages / "calm" / "002.png")
    lines: list[str] = []
    said = manga2music.Callbacks(log=lambda level, line: lines.append(line))
    manga2music.run(pages / "calm", out, vision_model="builtin", music_model="builtin", config=cfg(), callbacks=said)
    assert any("the pages have changed since it was described" in line for line in lines), lines
    lines.clear()
    again = manga2music.run(pages / "calm", out, vision_model="builtin", music_model="builtin", config=cfg(),
                            callbacks=said)
    assert statuses(again) == {"calm": "skipped"}, lines
    assert (out / "calm.txt").read_text(encoding="utf-8") == "Slow solo cello, 60 BPM (my words)\n"


def test_a_score_asked_for_an_analysis_artifact_says_it_writes_none(tmp_path):
    """score(config=RunConfig(save_artifact=True)) wrote no NAME.analysis.json and said nothing ("ok"), where run()
    writes one; a setting score() does not use is refused, as loop and variations are."""
    with pytest.raises(InputError, match="a score writes no analysis artifact"):
        manga2music.score([SAMPLES / "calm"], tmp_path / "out", vision_model="builtin", music_model="builtin",
                          config=RunConfig(save_artifact=True))
    assert not (tmp_path / "out").exists()


def test_words_written_before_a_chapters_pages_existed_list_its_pages_and_see_them_change(pages, tmp_path):
    """A chapter's words written ahead (OUT/NAME.txt), then its pages added to the library: run kept the words but
    never listed the pages (the record had none, the manifest said 0 pages), so a page changed later went unseen
    and the listening page had no pages.  The pages are listed now, and a later change to them is said."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "calm.txt").write_text("Koto and shakuhachi, 80 BPM in A minor\n", encoding="utf-8")
    lines: list[str] = []
    said = manga2music.Callbacks(log=lambda level, line: lines.append(line))
    first = manga2music.run(pages / "calm", out, vision_model="builtin", music_model="builtin", config=cfg(),
                            callbacks=said)
    assert any("calm.txt was written by you before these pages were read; keeping it" in line for line in lines)
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in record["pages"]] == sorted(os.listdir(pages / "calm"))
    assert first["sections"][0]["pages"] == len(record["pages"])
    shutil.copy(pages / "action" / sorted(os.listdir(pages / "action"))[0], pages / "calm" / "002.png")
    lines.clear()
    manga2music.run(pages / "calm", out, vision_model="builtin", music_model="builtin", config=cfg(), callbacks=said)
    assert any("the pages have changed since it was kept" in line for line in lines), lines
    assert (out / "calm.txt").read_text(encoding="utf-8") == "Koto and shakuhachi, 80 BPM in A minor\n"
    lines.clear()
    again = manga2music.run(pages / "calm", out, vision_model="builtin", music_model="builtin", config=cfg(),
                            callbacks=said)
    assert statuses(again) == {"calm": "skipped"}, lines


@pytest.mark.parametrize("settings, said", [
    (dict(options=["device"]), "options must be a dict of the models' options"),
    (dict(vision_options="device=cpu"), "vision_options must be a dict of the models' options"),
    (dict(ray="auto"), "ray must be a manga2music.distributed.RayConfig"),
    (dict(output=None), "the output folder must be a path (a str or a Path), not NoneType"),
])
def test_a_setting_of_the_wrong_type_is_a_type_error_that_names_it(tmp_path, settings, said):
    """RunConfig(options=["device"]), vision_options="device=cpu", ray="auto" or output=None raised Python's own
    AttributeError or TypeError ("'str' object has no attribute 'check'") from the middle of the run."""
    with pytest.raises(TypeError) as caught:
        manga2music.run(SAMPLES / "calm", None, vision_model="builtin", music_model="builtin",
                        config=RunConfig(**{"output": tmp_path / "o", **settings}))
    assert str(caught.value).startswith(said), caught.value


def test_options_left_none_are_no_options(tmp_path):
    made = manga2music.run(SAMPLES / "calm", tmp_path / "o", vision_model="builtin", music_model="builtin",
                           config=RunConfig(duration=1.0, seed=1, options=None, music_options=None))
    assert statuses(made) == {"calm": "ok"}


def test_a_folder_busy_with_another_call_of_the_same_program_says_so(tmp_path):
    """Two threads of one program into one folder: "being written by another manga2music run (pid <its own pid>
    ...)"; and a wait=0.5 run out still said to pass RunConfig(wait=True), as if it had not waited."""
    from output_checks import another_run_holds

    from manga2music.errors import OutputBusyError

    out = tmp_path / "out"
    with another_run_holds(out):  # a thread of this very process holds it
        with pytest.raises(OutputBusyError) as busy:
            run(SAMPLES / "calm", out)
        assert "another call of this very program" in str(busy.value) and "pid" not in str(busy.value), busy.value
        with pytest.raises(OutputBusyError) as waited:
            run(SAMPLES / "calm", out, wait=0.5)
        assert "still after the 0.5 s it waited" in str(waited.value), waited.value
        assert "to queue behind it as long as it takes" in waited.value.hint, waited.value.hint


def test_a_description_saved_again_with_the_same_words_is_still_ours(pages, tmp_path):
    """A description opened in a Windows editor and saved unchanged (CRLF line ends, a byte-order mark) was taken
    for the user's own words: kept for good, so a page replaced later was never described again ("written or edited
    by you ... keeping it").  The same words are the same description: the section is described again as usual."""
    out = tmp_path / "out"
    run(pages / "calm", out)
    words = (out / "calm.txt").read_text(encoding="utf-8")
    (out / "calm.txt").write_bytes(b"\xef\xbb\xbf" + words.replace("\n", "\r\n").encode("utf-8"))
    lines: list[str] = []
    said = manga2music.Callbacks(log=lambda level, line: lines.append(line))
    again = manga2music.run(pages / "calm", out, vision_model="builtin", music_model="builtin", config=cfg(),
                            callbacks=said)
    assert statuses(again) == {"calm": "skipped"} and not any("by you" in line for line in lines), lines
    for page in (pages / "calm").iterdir():
        page.unlink()
    for page in (SAMPLES / "action").iterdir():
        shutil.copy(page, pages / "calm" / page.name)
    lines.clear()
    manga2music.run(pages / "calm", out, vision_model="builtin", music_model="builtin", config=cfg(), callbacks=said)
    assert not any("by you" in line for line in lines), lines
    assert (out / "calm.txt").read_text(encoding="utf-8") != words  # the action pages' own description
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert record["compose"]["description"] == (out / "calm.txt").read_text(encoding="utf-8").strip()


def test_pages_swapped_are_said_to_be_in_another_order_not_changed(pages, tmp_path):
    """Two pages whose files were swapped (a chapter's pages renumbered by hand) were said as "2 pages changed", as
    if their pictures were new; they are the same pictures in another order, said so."""
    out = tmp_path / "out"
    run(pages / "calm", out)
    first, second = sorted((pages / "calm").iterdir())[:2]
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    lines: list[str] = []
    manga2music.run(pages / "calm", out, vision_model="builtin", music_model="builtin", config=cfg(),
                    callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
    assert f"calm: describing again: 2 pages in another order ({first.name}, {second.name})" in lines, lines


@pytest.mark.parametrize("call", ["run", "score", "describe", "compose"])
def test_a_cancel_from_the_first_callback_still_carries_a_manifest(pages, tmp_path, call):
    """A program's cancel raised from the very first callback (the line saying which model auto picked) came out
    without `exc.manifest`, which the README promises: the program's own `except KeyboardInterrupt as exc:
    exc.manifest` failed with AttributeError.  It is None there: the call finished nothing."""
    def cancel(level, line):
        raise KeyboardInterrupt

    args = ([pages / "calm"], tmp_path / "out") if call != "compose" else ([], tmp_path / "out")
    kwargs = {"text": "Soft piano at 70 BPM"} if call == "compose" else {}
    with pytest.raises(KeyboardInterrupt) as stopped:
        getattr(manga2music, call)(*args, config=cfg(), callbacks=manga2music.Callbacks(log=cancel), **kwargs)
    assert stopped.value.manifest is None


def test_a_program_cancels_a_long_builtin_track_from_its_callback_before_the_track_is_made(tmp_path):
    """The README: raise KeyboardInterrupt from a callback and the call stops as Ctrl-C stops a command.  While the
    builtin composer made one long track no callback was called: the cancel waited for the whole track (12 s for
    10 minutes here), which was then written.  The step callback is called again, as it was, while a piece is
    made, so that a cancel from it stops the call at once."""
    calls = []

    def step(done, total, label):
        calls.append((done, total, label))
        if len(calls) > 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as cancelled:
        manga2music.compose(text="calm piano", output=tmp_path / "out", model="builtin",
                            config=RunConfig(duration=600, seed=1), callbacks=manga2music.Callbacks(step=step))
    assert calls[0] == calls[1], calls  # the same step, said again
    assert not (tmp_path / "out" / "calm-piano.wav").exists()  # stopped before the track was made
    assert not any(e.get("tracks") for e in cancelled.value.manifest["sections"]), cancelled.value.manifest


def test_model_names_given_with_spaces_or_as_paths_are_read_as_meant(tmp_path):
    """`music_model="auto "` (a form field, a line read from a file) was "unknown music model 'auto'; known models:
    auto, builtin...", though " builtin " was taken; a Path to a folder that is not there was looked up as a model
    name ("unknown music model 'tiny_mgg'") or on the Hub, where the str "./models/mg" says "no such folder"; and
    the output folder refused bytes, which the input paths take."""
    from manga2music.errors import UnknownModelError

    made = manga2music.run([SAMPLES / "calm"], tmp_path / "o", vision_model="builtin", music_model="auto \n",
                           config=RunConfig(duration=1, seed=1))
    assert made["sections"][0]["status"] == "ok"
    for missing in (Path("models") / "mg", Path("tiny_mgg")):
        with pytest.raises(UnknownModelError) as nowhere:
            manga2music.compose(text="x", output=tmp_path / "o2", model=missing)
        assert f"{missing}: no such folder" in nowhere.value.message, nowhere.value.message
    as_bytes = manga2music.run(os.fsencode(SAMPLES / "calm"), os.fsencode(tmp_path / "o3"), vision_model="builtin",
                               music_model="builtin", config=RunConfig(duration=1, seed=1))
    assert as_bytes["sections"][0]["status"] == "ok" and (tmp_path / "o3" / "calm.wav").exists()


def test_a_chapter_renamed_after_a_stop_keeps_its_files_and_what_the_stop_asked(tmp_path, monkeypatch):
    """`run S --format flac --duration 3` stopped once every chapter was described, then `Ch 2` renamed `Ch 02` and
    the plain rerun: `Ch 02` was made as a new chapter (described again, a 10 s WAV), and `Ch 2`'s files were left
    behind, listed nowhere; after a run that ended, the same rename keeps the chapter's files and name."""
    import manga2music.audio as audio

    series = tmp_path / "S"
    for k, name in enumerate(("Ch 1", "Ch 2", "Ch 3")):
        shutil.copytree(SAMPLES / "calm", series / name)
        shutil.copy(SAMPLES / "action" / f"00{k + 1}.png", series / name / "004.png")  # each chapter its own
    out = tmp_path / "out"
    real_encode = audio.encode_audio

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(audio, "encode_audio", stopped)
    with pytest.raises(KeyboardInterrupt):
        manga2music.run([series], out, vision_model="builtin", music_model="builtin",
                        config=RunConfig(duration=3.0, fmt="flac"))
    monkeypatch.setattr(audio, "encode_audio", real_encode)
    described = (out / "Ch 2.txt").stat().st_mtime_ns
    (series / "Ch 2").rename(series / "Ch 02")
    again = manga2music.run([series], out)
    assert sorted(again["this_run"]) == ["Ch 1", "Ch 2", "Ch 3"], again["this_run"]
    assert not list(out.glob("Ch 02*")), sorted(p.name for p in out.iterdir())
    assert (out / "Ch 2.txt").stat().st_mtime_ns == described  # not described again
    for name in ("Ch 1", "Ch 2", "Ch 3"):
        assert sf.info(str(out / f"{name}.flac")).duration == pytest.approx(3.0, abs=0.01)
    assert "stopped_with" not in json.loads((out / "manifest.json").read_text(encoding="utf-8"))
