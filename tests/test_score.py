"""`manga2music score`: scenes found in the pages, cues as long as the reading, one score, a cue sheet (issue #17)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from chapters import make_chapter
from openai_server import openai_server  # noqa: F401  (fixture)
from output_checks import cli, cli_env, one_line_error, record_mismatches, sha256, temp_files

from manga2music.audio import read_chapters
from manga2music.cuesheet import CueSheet

BUILTIN = ("--vision-model", "builtin", "--music-model", "builtin")
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
KEEP_LEVEL = ("--seed", "5", "--no-normalize")


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A 12-page chapter (4 calm, 5 action, 3 calm pages) scored once with the builtin models.

    ``--no-normalize``: the score is then exactly the cue files joined, which the seam tests check sample by sample.
    """
    root = tmp_path_factory.mktemp("score")
    truth = make_chapter(root / "in" / "ch1", [("calm", 4), ("action", 5), ("calm", 3)], seed=1)
    out = root / "out"
    result = cli("score", root / "in" / "ch1", "-o", out, *BUILTIN, *KEEP_LEVEL, "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = CueSheet.model_validate(json.loads((out / "ch1.cues.json").read_text(encoding="utf-8")))
    return root, out, truth, sheet, json.loads(result.stdout)


def test_force_without_a_seed_makes_a_new_take(tmp_path):
    """`score --force` used the recorded seed again: the same music byte for byte, where the README says --force
    draws a new seed (a new take), as `run --force` does."""
    make_chapter(tmp_path / "ch", [("calm", 2)], seed=5)
    out = tmp_path / "out"
    assert cli("score", tmp_path / "ch", "-o", out, *BUILTIN, timeout=300).returncode == 0
    before = json.loads((out / "ch.json").read_text(encoding="utf-8"))["score"]["seed"]
    forced = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--force", timeout=300)
    assert forced.returncode == 0, forced.stderr
    after = json.loads((out / "ch.json").read_text(encoding="utf-8"))["score"]["seed"]
    assert after != before  # a new take (one chance in 2**31 of drawing the same)
    again = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--json", timeout=300)  # and it is kept
    assert [e["status"] for e in json.loads(again.stdout)["sections"]] == ["skipped"]


def _scene_seeds(out: Path, name: str) -> list[int]:
    return [s["seed"] for s in json.loads((out / f"{name}.json").read_text(encoding="utf-8"))["score"]["scenes"]]


def test_a_page_saved_again_with_the_same_picture_keeps_its_scenes_music(tmp_path):
    """A page whose file changed but not its picture (a tag added, saved again losslessly as WebP) made its scene's
    cue again as new music, "its pages' pictures changed", and the same --seed gave two scores: a scene's seed
    followed the page files' bytes, while `run` kept its track.  Its seed now follows what the page shows."""
    from PIL import PngImagePlugin

    chapter, out = tmp_path / "ch", tmp_path / "out"
    make_chapter(chapter, [("calm", 3), ("action", 3)], seed=2)
    args = ("score", chapter, "-o", out, *BUILTIN, "--seed", "5")
    assert cli(*args, timeout=300).returncode == 0
    seeds, score = _scene_seeds(out, "ch"), sha256(out / "ch.score.wav")
    first, last = sorted(chapter.iterdir())[0], sorted(chapter.iterdir())[-1]
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "retagged")
    with Image.open(first) as im:
        im.load()
        im.save(first, pnginfo=info)  # the same pixels, other bytes
    with Image.open(last) as im:
        im.load()
        im.save(last.with_suffix(".webp"), lossless=True)  # the same pixels, another format
    last.unlink()
    result = cli(*args, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "pictures changed" not in result.stderr and "composing" not in result.stderr, result.stderr
    assert _scene_seeds(out, "ch") == seeds and sha256(out / "ch.score.wav") == score
    fresh = tmp_path / "fresh"  # the same --seed into another folder: the same score
    assert cli("score", chapter, "-o", fresh, *BUILTIN, "--seed", "5", timeout=300).returncode == 0
    assert _scene_seeds(fresh, "ch") == seeds and sha256(fresh / "ch.score.wav") == score
    with Image.open(SAMPLES / "calm" / "002.png") as im:  # another picture: its scene's music is new
        im.convert("RGB").save(first)
    result = cli(*args, timeout=300)
    assert result.returncode == 0, result.stderr
    now = _scene_seeds(out, "ch")
    assert now[0] != seeds[0] and now[1:] == seeds[1:], (seeds, now)


def test_a_scene_of_your_words_given_other_pages_is_said_to_have_other_pages(tmp_path):
    """A scene whose words are the user's, given other pages by a scenes file: "composing again: scene 1 (its
    pages' pictures changed)", though no page was touched."""
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=2)
    out, scenes = tmp_path / "out", tmp_path / "scenes.txt"
    scenes.write_text("1\n4\n", encoding="utf-8")
    args = ("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "5")
    assert cli(*args, "--scenes", scenes, timeout=300).returncode == 0
    (out / "ch.scene01.txt").write_text("Solo harp, 70 BPM in D major, still.\n", encoding="utf-8")
    assert cli(*args, "--scenes", scenes, timeout=300).returncode == 0  # composed from the user's words
    scenes.write_text("1\n3\n", encoding="utf-8")
    result = cli(*args, "--scenes", scenes, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "pictures changed" not in result.stderr
    assert "ch: composing every cue again (the scenes changed)" in result.stderr, result.stderr


def test_a_scenes_tempo_the_builtin_composer_does_not_play_is_said(tmp_path):
    """A scene's words asking for 400 BPM were played at 220 without a word (`compose` says it), and the scene
    lasts whole bars of the tempo played."""
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=2)
    out = tmp_path / "out"
    args = ("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "5")
    result = cli(*args, timeout=300)
    assert result.returncode == 0 and "BPM is" not in result.stderr, result.stderr  # its own words: nothing to say
    (out / "ch.scene02.txt").write_text("Frantic drum and bass, 400 BPM in F minor.\n", encoding="utf-8")
    result = cli(*args, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "ch: scene 2: 400 BPM is faster than the builtin composer plays: played at 220 BPM" in result.stderr, \
        result.stderr
    sheet = json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))
    assert sheet["scenes"][1]["tempo_bpm"] == 220
    first = out / "ch.scene01.txt"  # an editor's trailing space and line on our words: the same words, nothing said
    first.write_text(first.read_text(encoding="utf-8").rstrip("\n") + " \n\n", encoding="utf-8")
    for _ in range(2):
        result = cli(*args, "--json", timeout=300)
        assert result.returncode == 0 and "ch.scene01.txt" not in result.stderr, result.stderr
        assert [e["status"] for e in json.loads(result.stdout)["sections"]] == ["skipped"]


def test_a_resume_with_another_music_model_says_its_kept_cues_are_composed_again(tmp_path):
    """A score stopped while a local MusicGen composed, then a plain rerun (auto, or another --precision): "resuming
    the score stopped before, with --seed 5 ... as it was made", and then every kept cue was let go and composed
    by the other model without a word."""
    from manga2music.kept_cues import _folder, keep_settings

    make_chapter(tmp_path / "ch", [("calm", 3)], seed=2)
    out = tmp_path / "out"
    keep_settings(out, "ch", {"seed": 5, "reading_speed": 1.0, "format": "wav", "normalize": True,
                              "longest_cue": None, "transitions": "crossfade", "music_model": "musicgen-small",
                              "composer": "0123456789abcdef"})
    (_folder(out, "ch") / "0123.npz").write_bytes(b"a cue the other model made")  # a cue kept (not this one's)
    result = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "ch: the cues kept from the score stopped before were made by musicgen-small; builtin composes them " \
           "again (with --seed 5, --reading-speed 1, --format wav as that score was made)" in result.stderr, \
        result.stderr
    assert "as it was made" not in result.stderr
    assert json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))["seed"] == 5


def test_a_jpeg_page_exported_as_png_shows_the_same_picture(tmp_path):
    """What a page shows (its scene's seed) was read from a JPEG decoded at an eighth of its size, whose pixels are
    not those of the same picture saved as PNG: a JPEG chapter and its PNG export gave two scores of one --seed."""
    from manga2music.pages import picture_key, probe_page
    from manga2music.sections import find_sections

    with Image.open(SAMPLES / "calm" / "003.jpg") as im:
        im.convert("RGB").save(tmp_path / "a.png")
        im.convert("RGB").save(tmp_path / "b.webp", lossless=True)
    shutil.copy(SAMPLES / "calm" / "003.jpg", tmp_path / "c.jpg")
    with Image.open(SAMPLES / "calm" / "003.jpg") as im:  # another picture: a panel inked over
        drawn = im.convert("RGB")
    drawn.paste((0, 0, 0), (100, 100, 300, 300))
    drawn.save(tmp_path / "d.png")
    [section] = find_sections([tmp_path])
    keys = {page.name: picture_key(probe_page(page)) for page in section.pages}
    assert keys["a.png"] == keys["b.webp"] == keys["c.jpg"] is not None and keys["d.png"] != keys["a.png"], keys


def test_one_page_of_a_pdf_drawn_again_makes_only_its_scenes_music_again(tmp_path):
    """A PDF chapter with one page edited: every page's key was the whole file's hash and its place, so every
    scene's seed moved and every cue was composed again as new music."""
    from PIL import ImageDraw

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    names = [("calm", "001.png"), ("calm", "002.png"), ("action", "001.png"), ("action", "002.png")]
    pages = [Image.open(SAMPLES / kind / name).convert("RGB") for kind, name in names]
    pages[0].save(lib / "ch.pdf", save_all=True, append_images=pages[1:])
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n3\n", encoding="utf-8")
    args = ("score", lib / "ch.pdf", "-o", out, *BUILTIN, "--seed", "5", "--scenes", scenes)
    assert cli(*args, timeout=300).returncode == 0
    seeds = _scene_seeds(out, "ch")
    cue1 = sha256(out / "ch.cue01.wav")
    ImageDraw.Draw(pages[3]).rectangle((20, 20, 200, 200), fill="black")
    pages[0].save(lib / "ch.pdf", save_all=True, append_images=pages[1:])
    result = cli(*args, timeout=300)
    assert result.returncode == 0, result.stderr
    now = _scene_seeds(out, "ch")
    assert now[0] == seeds[0] and now[1] != seeds[1], (seeds, now)
    assert sha256(out / "ch.cue01.wav") == cue1


def test_one_part_of_a_webtoon_strip_drawn_again_makes_only_its_scenes_music_again(tmp_path):
    """A webtoon episode saved as one tall image, a balloon in its last part mended: the whole image's picture was
    every part's seed key, so every scene of the episode was composed again as new music.  Each part has its own
    key now; a strip scored before its parts had keys keeps its music while it is unchanged."""
    from chapters import make_webtoon
    from PIL import ImageDraw

    make_webtoon(tmp_path / "ep" / "episode.png", [("calm", 3), ("action", 3)], seed=3)
    out, scenes = tmp_path / "out", tmp_path / "scenes.txt"
    scenes.write_text("1\n1 part 4\n", encoding="utf-8")
    args = ("score", tmp_path / "ep", "-o", out, *BUILTIN, "--seed", "5", "--scenes", scenes)
    assert cli(*args, timeout=300).returncode == 0
    seeds, cues = _scene_seeds(out, "ep"), [sha256(out / f"ep.cue0{k}.wav") for k in (1, 2)]
    strip = Image.open(tmp_path / "ep" / "episode.png").convert("RGB")
    ImageDraw.Draw(strip).rectangle((40, 100, 300, 300), fill="black")  # in part 1, scene 1's
    strip.save(tmp_path / "ep" / "episode.png")
    result = cli(*args, timeout=300)
    assert result.returncode == 0, result.stderr
    now = _scene_seeds(out, "ep")
    assert now[0] != seeds[0] and now[1] == seeds[1], (seeds, now)  # the edited part's scene, not the other
    (again,) = [line for line in result.stderr.splitlines() if "composing again" in line]
    assert "scene 1 (" in again and "scene 2" not in again, result.stderr
    assert sha256(out / "ep.cue02.wav") == cues[1]
    seeds, cue1 = now, sha256(out / "ep.cue01.wav")
    ImageDraw.Draw(strip).rectangle((40, strip.height - 300, 300, strip.height - 100), fill="black")  # part 6
    strip.save(tmp_path / "ep" / "episode.png")
    result = cli(*args, timeout=300)
    assert result.returncode == 0, result.stderr
    now = _scene_seeds(out, "ep")
    assert now[0] == seeds[0] and now[1] != seeds[1], (seeds, now)
    assert sha256(out / "ep.cue01.wav") == cue1

    record_path = out / "ep.json"  # as a score made before parts had keys records the strip
    record = json.loads(record_path.read_text(encoding="utf-8"))
    (entry,) = record["score"]["pictures"].values()
    assert len(entry) == 3 and len(entry[2]) == 6 and len({part for part, _ in entry[2]}) == 6
    record["score"]["pictures"] = {key: [entry[0], "whole"] for key in record["score"]["pictures"]}
    record_path.write_text(json.dumps(record), encoding="utf-8")
    again = cli(*args, "--force", timeout=300)
    assert again.returncode == 0, again.stderr
    legacy = _scene_seeds(out, "ep")
    assert legacy != now  # made from the key it recorded...
    assert cli(*args, "--force", timeout=300).returncode == 0
    assert _scene_seeds(out, "ep") == legacy  # ...and kept while the strip is unchanged


def test_the_manifest_names_every_file_of_the_score(scored):
    """A score's manifest entry named only the score: a script had to guess the cue sheet's, the read-along page's
    and the chapters' file names."""
    _, out, _, sheet, manifest = scored
    (entry,) = manifest["sections"]
    assert entry["tracks"] == [sheet.score_file]
    assert (entry["cue_sheet"], entry["read_along"], entry["chapters"]) == ("ch1.cues.json", sheet.read_along_file,
                                                                            sheet.vtt_file)
    assert all((out / entry[key]).is_file() for key in ("cue_sheet", "read_along", "chapters"))


def test_scenes_start_where_the_pages_change(scored):
    _, _, truth, sheet, _ = scored
    assert [s.first_page - 1 for s in sheet.scenes[1:]] == truth
    assert [s.mood for s in sheet.scenes] == ["calm", "action", "calm"]
    action = sheet.scenes[1]
    assert action.tempo_bpm > max(sheet.scenes[0].tempo_bpm, sheet.scenes[2].tempo_bpm)


def test_the_score_is_the_scenes_end_to_end_to_the_sample(scored):
    _, out, _, sheet, _ = scored
    score, sr = sf.read(out / sheet.score_file, dtype="float32", always_2d=True)
    loops = [sf.info(str(out / s.loop_file)) for s in sheet.scenes]  # each loop is exactly its scene's length
    assert sr == sheet.sample_rate and all(info.samplerate == sr for info in loops)
    assert len(score) == sum(info.frames for info in loops)
    start = 0
    for scene, info in zip(sheet.scenes, loops):
        assert abs(scene.start - start / sr) < 0.05  # every scene starts within 50 ms of its cue-sheet time
        start += info.frames
    cues = [sf.info(str(out / s.cue_file)) for s in sheet.scenes]
    assert all(c.frames > l.frames for c, l in zip(cues, loops))  # a cue is its scene plus the tail that fades out


def test_the_manifest_lists_the_cues_midi_files(scored, tmp_path):
    """A score's manifest entry said "midi": [] beside its .cueNN.mid files; a rerun that skips lists them too."""
    import shutil

    root, out, _, sheet, manifest = scored
    (entry,) = manifest["sections"]
    wanted = [Path(s.cue_file).with_suffix(".mid").name for s in sheet.scenes]
    assert entry["midi"] == wanted and all((out / m).is_file() for m in entry["midi"])
    work = shutil.copytree(out, tmp_path / "out")
    again = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    (entry,) = json.loads(again.stdout)["sections"]
    assert entry["status"] == "skipped" and entry["midi"] == wanted


def test_a_deleted_cue_midi_is_made_again_and_only_its_cue(scored, tmp_path):
    """A deleted ``.cue02.mid`` stayed gone (the rerun skipped, saying nothing), while a deleted loop came back: it is
    made again, the same notes, by composing that one cue again from its seed."""
    import shutil

    root, out, _, sheet, _ = scored
    work = shutil.copytree(out, tmp_path / "out")
    lost = work / Path(sheet.scenes[1].cue_file).with_suffix(".mid")
    notes = lost.read_bytes()
    lost.unlink()
    again = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    (entry,) = json.loads(again.stdout)["sections"]
    assert entry["status"] == "ok" and lost.name in entry["midi"]
    assert lost.read_bytes() == notes
    assert (work / sheet.score_file).read_bytes() == (out / sheet.score_file).read_bytes()


def test_each_scenes_first_page_starts_exactly_when_its_scene_does(scored):
    """Page starts were rounded to the millisecond and scene starts to the microsecond: a scene's first page started
    after its scene (109.091 against 109.090906), so seeking a player or the read-along page to a scene's start
    showed the previous scene's last page; and a scene's end could differ from the next one's start by 1 us."""
    _, _, _, sheet, _ = scored
    for scene in sheet.scenes:
        first = next(p for p in sheet.pages if p.scene == scene.index)
        assert first.start == scene.start, (scene.index, first.start, scene.start)
        assert [p.start for p in sheet.pages if p.scene == scene.index] == sorted(
            p.start for p in sheet.pages if p.scene == scene.index)
    assert all(a.end == b.start for a, b in zip(sheet.scenes, sheet.scenes[1:]))
    assert sheet.scenes[-1].end == sheet.duration


def test_an_opus_scores_cue_sheet_gives_the_files_sample_rate(tmp_path):
    """Opus holds 48 kHz, not the builtin composer's 32 kHz: the cue sheet said 32000 beside a 48 kHz file, so
    `start * sample_rate` pointed 1.5 times too early."""
    make_chapter(tmp_path / "ch", [("calm", 1), ("action", 1)], seed=2)
    out = tmp_path / "out"
    result = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "1", "--format", "opus", timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = CueSheet.model_validate(json.loads((out / "ch.cues.json").read_text(encoding="utf-8")))
    info = sf.info(str(out / sheet.score_file))
    assert sheet.sample_rate == info.samplerate == 48000
    assert abs(info.frames - sheet.duration * sheet.sample_rate) < 0.01 * sheet.sample_rate


def test_cue_lengths_follow_the_reading_time_in_whole_bars(scored):
    _, _, _, sheet, _ = scored
    for scene in sheet.scenes:
        bar = 4 * 60.0 / scene.tempo_bpm
        assert abs(scene.duration - scene.bars * bar) < 0.002  # whole bars: the next scene starts on a bar line
        assert abs(scene.duration - max(scene.reading_seconds, 8.0)) <= bar / 2 + 1e-6
        pages = [p for p in sheet.pages if p.scene == scene.index]
        assert pages[0].start == pytest.approx(scene.start, abs=1e-3)
        assert all(a.start < b.start for a, b in zip(pages, pages[1:]))


def _jumps(x: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(x, axis=0)).max(axis=1)


def test_each_seam_is_an_equal_power_crossfade_from_the_bar_line(scored):
    """At a scene change the outgoing cue's tail fades out (cos) as the incoming cue fades in (sin), starting
    exactly at the scene's time; elsewhere the score is the cues themselves (checked against the cue files), but for
    its last seconds, which fade out (cos) to silence."""
    from manga2music.score_audio import FINAL_FADE_S

    _, out, _, sheet, _ = scored
    score, sr = sf.read(out / sheet.score_file, dtype="float32", always_2d=True)
    cues = [sf.read(out / s.cue_file, dtype="float32", always_2d=True)[0] for s in sheet.scenes]
    lengths = [sf.info(str(out / s.loop_file)).frames for s in sheet.scenes]  # exact scene lengths in samples
    starts = np.cumsum([0] + lengths[:-1])
    quantum = 2.0 / 32768  # both files are 16-bit
    for k, scene in enumerate(sheet.scenes):
        at, length = int(starts[k]), lengths[k]
        assert abs(at / sr - scene.start) < 0.002
        fade = len(cues[k - 1]) - lengths[k - 1] if k else 0  # the outgoing cue's tail
        end = length if k < len(sheet.scenes) - 1 else length - min(int(FINAL_FADE_S * sr), length // 4)
        body = slice(at + fade, at + end)
        assert np.abs(score[body] - cues[k][fade:end]).max() <= quantum
        if end < length:  # the score's end: the last cue fading out
            n = length - end
            ramp = np.cos(np.linspace(0.0, np.pi / 2, n))[:, None]
            assert np.abs(score[at + end:at + length] - cues[k][end:length] * ramp).max() <= 3 * quantum
        if fade:
            assert abs(fade / sr - sheet.scenes[k - 1].transition_s) < 0.002
            theta = (np.arange(fade) * (np.pi / 2) / fade)[:, None]
            prev_len = lengths[k - 1]
            expected = cues[k - 1][prev_len:prev_len + fade] * np.cos(theta) + cues[k][:fade] * np.sin(theta)
            assert np.abs(score[at:at + fade] - expected).max() <= 3 * quantum
            bare_cut = np.concatenate([cues[k - 1][prev_len - 1:prev_len], cues[k][:1]])
            assert np.abs(np.diff(score[at - 1:at + 1], axis=0)).max() <= np.abs(np.diff(bare_cut, axis=0)).max() + quantum


def test_no_click_at_any_seam(scored):
    """The largest sample step around each seam is no larger than the music's own largest steps elsewhere."""
    _, out, _, sheet, _ = scored
    score, sr = sf.read(out / sheet.score_file, dtype="float32", always_2d=True)
    step = _jumps(score)
    seams = [s.start for s in sheet.scenes[1:]]
    stretches = [step[int(t * sr):int((t + 0.5) * sr)].max() for t in np.arange(1.0, sheet.duration - 1, 0.5)
                 if min(abs(t - s) for s in seams) > 2]
    normal = np.median(stretches)
    for t in seams:
        around = step[int((t - 0.1) * sr):int((t + 0.4) * sr)].max()
        assert around <= 2 * normal, (t, around, normal)


def test_cue_loops_join_their_end_to_their_start_without_a_click(scored):
    _, out, _, sheet, _ = scored
    for scene in sheet.scenes:
        loop, _ = sf.read(out / scene.loop_file, dtype="float32", always_2d=True)
        twice = np.concatenate([loop, loop])
        seam = _jumps(twice[len(loop) - 200:len(loop) + 200]).max()
        assert seam <= 1.5 * np.quantile(_jumps(loop), 0.999) + 1e-3


def test_a_chapter_named_with_an_arrow_or_a_line_break_keeps_its_webvtt_readable():
    """A chapter folder named "a --> b" wrote "NOTE a --> b: ..." (WebVTT forbids "-->" in a comment: players read a
    broken cue); a name with a blank line in it ended the NOTE block early."""
    from types import SimpleNamespace

    from manga2music.cuesheet import webvtt

    text = webvtt(SimpleNamespace(chapter="a --> b\n\nc", scenes=[]))
    blocks = text.split("\n\n")
    assert blocks[0] == "WEBVTT" and blocks[1].strip() == "NOTE a -> b c: 0 scenes, made by manga2music", text
    assert "-->" not in webvtt(SimpleNamespace(chapter="Love ---> War ----> Peace", scenes=[]))


def test_chapters_in_tags_and_webvtt_match_the_cue_sheet(scored):
    _, out, _, sheet, _ = scored
    marks = read_chapters(out / sheet.score_file)
    assert [round(t, 2) for t, _ in marks] == [round(s.start, 2) for s in sheet.scenes]
    assert [title for _, title in marks] == [s.title for s in sheet.scenes]
    vtt = (out / sheet.vtt_file).read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == len(sheet.scenes)
    assert "00:00:00.000 -->" in vtt


def test_scene_descriptions_share_the_chapters_key_and_are_files(scored):
    _, out, _, sheet, manifest = scored
    keys = {s.description.split(" BPM in ")[1].split()[0] for s in sheet.scenes}
    assert len(keys) == 1  # one home key for the whole chapter
    for scene in sheet.scenes:
        assert (out / scene.description_file).read_text(encoding="utf-8").strip() == scene.description
    entry = manifest["sections"][0]
    assert entry["status"] == "ok" and entry["tracks"] == ["ch1.score.wav"]
    assert temp_files(out) == [] and record_mismatches(out) == []


def test_the_listening_page_and_the_score_s_tags_describe_the_scenes_not_one_track_for_the_chapter(scored):
    """The chapter's own description (music for it as one track: "action" for this calm-action-calm chapter) was
    shown above the scenes and written into the score file's comment tag, though no such music was made."""
    import html

    from manga2music.audio import read_tags

    _, out, _, sheet, _ = scored
    whole = json.loads((out / "ch1.json").read_text(encoding="utf-8"))["chapter_reading"]["description"]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert whole not in page and 'class="description"' not in page
    assert all(html.escape(s.description) in page for s in sheet.scenes)
    comment = read_tags(out / sheet.score_file)["comment"]
    assert whole not in comment
    assert [s.title in comment for s in sheet.scenes] == [True] * len(sheet.scenes) and "3 scenes" in comment


def test_a_rerun_skips_and_a_changed_page_redoes_only_its_scenes_cue(scored, tmp_path):
    import shutil

    root, out, _, sheet, _ = scored
    chapter, work = tmp_path / "ch1", tmp_path / "out"
    shutil.copytree(root / "in" / "ch1", chapter)
    shutil.copytree(out, work)
    again = cli("score", chapter, "-o", work, *BUILTIN, *KEEP_LEVEL, "--json", timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout)["sections"][0]["status"] == "skipped"
    cues = {s.index: sha256(work / s.cue_file) for s in sheet.scenes}
    midi = {s.index: sha256(work / s.cue_file.replace(".wav", ".mid")) for s in sheet.scenes}  # the builtin's notes
    from chapters import action_page

    action_page(77).convert("RGB").save(chapter / "007.png")  # another action page in the action scene
    changed = cli("score", chapter, "-o", work, *BUILTIN, *KEEP_LEVEL, "--json", timeout=300)
    assert changed.returncode == 0, changed.stderr
    after = CueSheet.model_validate(json.loads((work / "ch1.cues.json").read_text(encoding="utf-8")))
    assert [s.first_page for s in after.scenes] == [s.first_page for s in sheet.scenes]
    assert sha256(work / sheet.scenes[0].cue_file) == cues[1] and sha256(work / sheet.scenes[2].cue_file) == cues[3]
    assert sha256(work / sheet.scenes[1].cue_file) != cues[2]
    for scene in (sheet.scenes[0], sheet.scenes[2]):  # a cue that is kept keeps its MIDI file (it was deleted)
        assert sha256(work / scene.cue_file.replace(".wav", ".mid")) == midi[scene.index]
    assert record_mismatches(work) == [] and temp_files(work) == []
    # the score and loops are those a first run on these pages makes, byte for byte: the kept cues were joined as
    # their 16-bit files hold them, new ones as composed (up to 2 LSB apart), so the recorded seed did not remake them
    fresh = cli("score", chapter, "-o", tmp_path / "fresh", *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    for name in [after.score_file] + [s.loop_file for s in after.scenes]:
        assert sf.read(work / name)[0].tobytes() == sf.read(tmp_path / "fresh" / name)[0].tobytes(), name


def test_a_scene_split_in_two_keeps_every_other_scenes_cue(scored, tmp_path):
    """A scenes file that cut the first scene in two composed every later scene again ("other pages"), with other
    seeds: the fight music a video creator had approved changed, though its pages had not."""
    root, out, _, sheet, _ = scored
    work = tmp_path / "out"
    shutil.copytree(out, work)
    starts = [s.first_page for s in sheet.scenes]
    assert len(starts) >= 2 and starts[1] - starts[0] >= 2, starts
    split = tmp_path / "split.txt"
    split.write_text("\n".join(map(str, [starts[0], starts[0] + 1, *starts[1:]])) + "\n", encoding="utf-8")
    cues = [sf.read(work / s.cue_file)[0].tobytes() for s in sheet.scenes]
    result = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, "--scenes", split, timeout=300)
    assert result.returncode == 0, result.stderr
    after = CueSheet.model_validate(json.loads((work / "ch1.cues.json").read_text(encoding="utf-8")))
    assert [s.first_page for s in after.scenes] == [starts[0], starts[0] + 1, *starts[1:]]
    # the same music, one scene later (its file's tags say "scene 3" now)
    assert [sf.read(work / s.cue_file)[0].tobytes() for s in after.scenes[2:]] == cues[1:]
    assert [s.seed for s in after.scenes[2:]] == [s.seed for s in sheet.scenes[1:]]
    assert "composing again: scene 1 (other pages); scene 2 (other pages)\n" in result.stderr, result.stderr
    assert record_mismatches(work) == [] and temp_files(work) == []
    # what the record says reproduces it: the same pages, scenes file and seed in a new folder, byte for byte
    fresh = cli("score", root / "in" / "ch1", "-o", tmp_path / "fresh", *BUILTIN, *KEEP_LEVEL, "--scenes", split,
                timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    for name in [after.score_file] + [s.cue_file for s in after.scenes]:
        assert sf.read(work / name)[0].tobytes() == sf.read(tmp_path / "fresh" / name)[0].tobytes(), name


def test_pages_renamed_since_the_score_are_named_as_they_are_now(scored, tmp_path):
    """Renaming a chapter's pages (p001.png -> img_001.png) and scoring again said "skipped", and the cue sheet, the
    record and the read-along page kept naming files that no longer existed: a script that finds each page's image
    by the cue sheet's name broke.  Even a score made again with a scenes file in the new names kept the old ones."""
    root, out, _, sheet, _ = scored
    chapter, work = tmp_path / "ch1", tmp_path / "out"
    shutil.copytree(root / "in" / "ch1", chapter)
    shutil.copytree(out, work)
    for page in sorted(chapter.iterdir()):
        page.rename(chapter / f"img_{page.name}")
    again = cli("score", chapter, "-o", work, *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "composing" not in again.stderr and "reading the pages again" not in again.stderr, again.stderr
    after = json.loads((work / "ch1.cues.json").read_text(encoding="utf-8"))
    now = sorted(p.name for p in chapter.iterdir())
    assert [p["name"] for p in after["pages"]] == now
    assert sorted(n for s in after["scenes"] for n in s["pages"]) == now
    assert all(name in (work / sheet.read_along_file).read_text(encoding="utf-8") for name in now)
    assert [sf.read(work / s["cue_file"])[0].tobytes() for s in after["scenes"]] == \
        [sf.read(out / s.cue_file)[0].tobytes() for s in sheet.scenes]  # the same music


def test_a_scene_description_written_before_the_first_score_keeps_the_mood_its_pages_read_as(scored, tmp_path):
    """Words for scene 2 written before the chapter was first scored: its mood was recorded as none and its title
    was "Scene 2: scene (your description)" on the read-along page, the chapters and the tags, for good."""
    root, _, _, sheet, _ = scored
    out = tmp_path / "out"
    out.mkdir()
    (out / "ch1.scene02.txt").write_text("Slow solo cello lament, 60 BPM in E minor, mournful.\n", encoding="utf-8")
    result = cli("score", root / "in" / "ch1", "-o", out, *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert result.returncode == 0, result.stderr
    made = CueSheet.model_validate(json.loads((out / "ch1.cues.json").read_text(encoding="utf-8")))
    assert made.scenes[1].description.startswith("Slow solo cello lament")
    assert made.scenes[1].mood == sheet.scenes[1].mood == "action"
    assert made.scenes[1].title == "Scene 2: action (your description)"
    assert "Scene 2: action (your description)" in (out / made.vtt_file).read_text(encoding="utf-8")
    # a score made so by an earlier version (its record says no mood): the rerun writes the titles again
    record = json.loads((out / "ch1.json").read_text(encoding="utf-8"))
    record["score"]["scenes"][1]["mood"] = None
    (out / "ch1.json").write_text(json.dumps(record), encoding="utf-8")
    again = cli("score", root / "in" / "ch1", "-o", out, *BUILTIN, *KEEP_LEVEL, "--json", timeout=300)
    assert [e["status"] for e in json.loads(again.stdout)["sections"]] == ["ok"]
    assert json.loads((out / "ch1.json").read_text(encoding="utf-8"))["score"]["scenes"][1]["mood"] == "action"


def test_an_edited_scene_description_is_composed_from(scored, tmp_path):
    import shutil

    root, out, _, sheet, _ = scored
    work = tmp_path / "out"
    shutil.copytree(out, work)
    edited = work / sheet.scenes[1].description_file
    edited.write_text("Slow solo cello lament, 60 BPM in E minor, mournful.\n", encoding="utf-8")
    result = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert result.returncode == 0, result.stderr
    after = CueSheet.model_validate(json.loads((work / "ch1.cues.json").read_text(encoding="utf-8")))
    assert after.scenes[1].description.startswith("Slow solo cello lament") and after.scenes[1].tempo_bpm == 60
    assert edited.read_text(encoding="utf-8") == "Slow solo cello lament, 60 BPM in E minor, mournful.\n"
    assert "edited by you" in result.stderr
    assert "ch1: composing again: scene 2 (your description)" in result.stderr  # which cues, and why (said nothing)
    rerun = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, "--json", timeout=300)
    assert [e["status"] for e in json.loads(rerun.stdout)["sections"]] == ["skipped"]
    assert "edited by you" not in rerun.stderr  # "composing from it" on every rerun, though nothing was composed
    # its title said "Scene 2: action" above the cello lament in the chapters, tags and pages: the pages still read
    # as action (its mood), and the title says the music is the user's
    assert after.scenes[1].mood == "action"
    assert after.scenes[1].title == "Scene 2: action (your description)"
    assert "Scene 2: action (your description)" in (work / after.vtt_file).read_text(encoding="utf-8")
    assert [s.title for s in after.scenes[::2]] == [s.title for s in sheet.scenes[::2]]
    # --force makes every cue again: that the user's words are kept and composed from is said again (it was not)
    forced = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, "--force", timeout=300)
    assert forced.returncode == 0 and "scene 2: ch1.scene02.txt was written or edited by you; composing from it" \
        in forced.stderr, forced.stderr


@pytest.fixture(scope="module")
def fight_edited(scored, tmp_path_factory):
    """A copy of the scored chapter whose fight (scene 2) has a description edited by the user and scored with it,
    made once: ``(folder of ch1/ and out/, the first cue sheet)``."""
    root, out, _, sheet, _ = scored
    base = tmp_path_factory.mktemp("fight_edited")
    pages, work = base / "ch1", base / "out"
    shutil.copytree(root / "in" / "ch1", pages)
    shutil.copytree(out, work)
    (work / sheet.scenes[1].description_file).write_text("Slow solo cello lament, 60 BPM in E minor.\n",
                                                         encoding="utf-8")
    assert cli("score", pages, "-o", work, *BUILTIN, *KEEP_LEVEL, timeout=300).returncode == 0
    return base, sheet


def _fight_edited_then_three_pages_put_in_front(fight_edited, tmp_path):
    """A copy of ``fight_edited`` with three action pages put in front (001.png becomes 004.png...):
    ``(pages, output, the first cue sheet)``."""
    from chapters import action_page

    base, sheet = fight_edited
    pages, work = tmp_path / "ch1", tmp_path / "out"
    shutil.copytree(base / "ch1", pages)
    shutil.copytree(base / "out", work)
    for page in sorted(pages.iterdir(), reverse=True):
        page.rename(pages / f"{int(page.stem) + 3:03d}.png")
    for k in range(3):
        action_page(900 + k).convert("RGB").save(pages / f"{k + 1:03d}.png")
    return pages, work, sheet


def test_where_an_edited_scenes_pages_went_is_found_when_the_same_pages_come_again_later(fight_edited, tmp_path):
    """The line that says where an edited scene's pages went mapped each page's content to one place, the last: with
    copies of the fight's pages later in the chapter (a recap, repeated blank or credit pages), it named those."""
    pages, work, sheet = _fight_edited_then_three_pages_put_in_front(fight_edited, tmp_path)
    first, last = sheet.scenes[1].first_page, sheet.scenes[1].last_page
    count = len(list(pages.iterdir())) - 3
    for k, number in enumerate(range(first, last + 1)):  # and the fight again at the end, as a recap
        shutil.copy(pages / f"{number + 3:03d}.png", pages / f"{count + 4 + k:03d}.png")
    result = cli("score", pages, "-o", work, *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert result.returncode == 0, result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if "scene 2" in ln and "edited by you" in ln]
    assert f"now in scene 3 (pages {first + 3}-{last + 3}" in line, line


def test_an_edited_scene_whose_page_was_drawn_again_says_it_changed_not_that_it_is_gone(fight_edited, tmp_path):
    """A page of an edited scene redrawn in place (same name): "It was last used for pages ..., some of which are no
    longer in the chapter", though every page was still there, one of them changed."""
    from chapters import action_page

    base, sheet = fight_edited
    pages, work = tmp_path / "ch1", tmp_path / "out"
    shutil.copytree(base / "ch1", pages)
    shutil.copytree(base / "out", work)
    page = pages / f"{sheet.scenes[1].first_page:03d}.png"
    action_page(777).convert("RGB").save(page)
    result = cli("score", pages, "-o", work, *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert "It was last used for" in said and "some of which were changed since" in said, said
    assert "no longer in the chapter" not in said, said


def test_an_edited_description_whose_scene_now_has_other_pages_says_where_its_pages_went(fight_edited, tmp_path):
    """A creator edits the fight's description (scene 2), then puts three more pages in front of the chapter: the
    scenes are numbered again, the fight is now scene 3 and scene 2 is the calm opening.  The edited file is still
    composed for scene 2 (its name says so, and it is never overwritten), but the run said only "composing from it",
    and the cue sheet called the calm pages "action" (the mood recorded for scene 2 before).  Now the cue sheet gives
    scene 2 the mood of its pages, and a line says which pages the text was last used for and where they are now."""
    pages, work, sheet = _fight_edited_then_three_pages_put_in_front(fight_edited, tmp_path)
    fight = [f"{p:03d}.png" for p in range(sheet.scenes[1].first_page, sheet.scenes[1].last_page + 1)]
    result = cli("score", pages, "-o", work, *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert result.returncode == 0, result.stderr
    after = CueSheet.model_validate(json.loads((work / "ch1.cues.json").read_text(encoding="utf-8")))
    assert [s.mood for s in after.scenes] == ["action", "calm", "action", "calm"]
    assert after.scenes[1].description.startswith("Slow solo cello lament")  # still the file's scene
    now = f"{int(fight[0][:3]) + 3:03d}.png"  # the fight's first page, renamed
    assert after.scenes[2].first_page == int(now[:3])
    (line,) = [ln for ln in result.stderr.splitlines() if "scene 2" in ln and "edited by you" in ln]
    assert f"last used for pages {fight[0]} to {fight[-1]}" in line and "now in scene 3" in line, line
    assert "rename it ch1.scene03.txt" in line
    (work / "ch1.scene02.txt").rename(work / "ch1.scene03.txt")  # as the line says: the fight's text follows it
    assert cli("score", pages, "-o", work, *BUILTIN, *KEEP_LEVEL, timeout=300).returncode == 0
    moved = CueSheet.model_validate(json.loads((work / "ch1.cues.json").read_text(encoding="utf-8")))
    assert moved.scenes[2].description.startswith("Slow solo cello lament")
    assert not moved.scenes[1].description.startswith("Slow solo cello lament")  # scene 2 is described again
    assert (work / "ch1.scene02.txt").read_text(encoding="utf-8").strip() == moved.scenes[1].description


def test_an_emptied_scene_description_is_one_line_and_loses_nothing(scored, tmp_path):
    """An emptied scene description was composed from as it was: a cue from no words at all, and a cue sheet whose
    scene said "" for its music.  Now the chapter stops with one line that names the file; the score stays."""
    import shutil

    root, out, _, sheet, _ = scored
    work = tmp_path / "out"
    shutil.copytree(out, work)
    (work / sheet.scenes[0].description_file).write_text("", encoding="utf-8")
    before = sha256(work / sheet.score_file)
    result = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert f"ch1 failed: {sheet.scenes[0].description_file} is empty: write the music description in it, or " \
           "delete it" in result.stderr
    assert sha256(work / sheet.score_file) == before
    kept = CueSheet.model_validate(json.loads((work / "ch1.cues.json").read_text(encoding="utf-8")))
    assert all(s.description for s in kept.scenes)
    failed = json.loads((work / "manifest.json").read_text("utf-8"))["sections"][0]
    assert failed["status"] == "failed" and failed["tracks"] == [sheet.score_file]  # it said [] beside the score
    assert failed["cue_sheet"] == "ch1.cues.json"


def test_a_score_and_a_cue_a_user_retagged_are_left_alone_by_a_rerun_with_nothing_to_do(scored, tmp_path):
    """A tagger or player that writes tags into NAME.score.wav (or a cue) made every later `score` of the chapter
    fail ("was changed since manga2music wrote it"), exit 1, though nothing was to be made again: it is skipped,
    the user's files as they left them."""
    import mutagen
    from mutagen.id3 import TPE1

    root, out, _, sheet, _ = scored
    work = tmp_path / "out"
    shutil.copytree(out, work)
    mine = {}
    for name in (sheet.score_file, sheet.scenes[1].cue_file):
        tagged = mutagen.File(work / name)
        tagged.tags.add(TPE1(encoding=3, text="Me"))
        tagged.save()
        mine[name] = (work / name).read_bytes()
    result = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert result.returncode == 0 and "ch1\tskipped" in result.stdout, (result.stdout, result.stderr)
    assert {name: (work / name).read_bytes() for name in mine} == mine


@pytest.mark.parametrize("mine", ["score", "loop"])
def test_a_score_or_cue_file_of_the_users_is_never_replaced(scored, tmp_path, mine):
    """A creator masters the score in an audio editor and saves it over NAME.score.wav (or trims a cue's loop), then
    scores again after a change: the run wrote its own files over theirs without a word.  Now the chapter stops
    with one line naming the file, before composing anything, and the user's file is as they left it."""
    import shutil

    root, out, _, sheet, _ = scored
    work = tmp_path / "out"
    shutil.copytree(out, work)
    theirs = work / (sheet.score_file if mine == "score" else sheet.scenes[1].loop_file)
    theirs.write_bytes(b"RIFF my mastered version")
    result = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, "--reading-speed", "1.5",
                 timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert f"ch1 failed: {theirs} was changed since manga2music wrote it, and this run would replace it" in \
        result.stderr  # it said "was not written by manga2music", of a file it had written (and the user edited)
    assert theirs.read_bytes() == b"RIFF my mastered version"
    assert CueSheet.model_validate(json.loads((work / "ch1.cues.json").read_text(encoding="utf-8"))).reading_speed == 1


def test_a_scenes_file_overrides_and_bad_entries_are_one_line(tmp_path):
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=2)
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("# where scenes start\n003.png\n5\n", encoding="utf-8")
    out = tmp_path / "out"
    result = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--scenes", scenes, timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))
    assert [s["first_page"] for s in sheet["scenes"]] == [1, 3, 5]
    said = " ".join(result.stderr.split())
    assert f"read along: {out / 'ch.read.html'}" in said  # the page to open, named
    # pages 1-2 were a scene the file did not list, without a word
    assert "ch: the scenes file's first scene starts on page 3; what comes before it is a scene of its own" in said
    scenes.write_text("2\n9\n", encoding="utf-8")
    bad = cli("score", tmp_path / "ch", "-o", tmp_path / "out2", *BUILTIN, "--scenes", scenes)
    assert bad.returncode == 2 and one_line_error(bad.stderr) and "page 9 does not exist" in bad.stderr
    assert not (tmp_path / "out2").exists()
    scenes.write_text("# nothing yet\n\n", encoding="utf-8")  # was one silent scene for the whole chapter
    empty = cli("score", tmp_path / "ch", "-o", tmp_path / "out2", *BUILTIN, "--scenes", scenes)
    assert empty.returncode == 2 and one_line_error(empty.stderr) and "lists no scene" in empty.stderr


def test_a_scene_can_start_inside_a_webtoon_episode_saved_as_one_image(tmp_path):
    """A webtoon episode saved as one tall image is read in page-shaped parts, but the score took it as one page:
    one scene, one cue, however its mood changed down the strip.  Each part is timed and cut into scenes now."""
    from chapters import make_webtoon

    truth = make_webtoon(tmp_path / "ep" / "episode.png", [("calm", 3), ("action", 3)], seed=3)
    out = tmp_path / "out"
    result = cli("score", tmp_path / "ep", "-o", out, *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = CueSheet.model_validate(json.loads((out / "ep.cues.json").read_text(encoding="utf-8")))
    assert [(p.name, p.part, p.parts) for p in sheet.pages] == [("episode.png", k, 6) for k in range(1, 7)]
    assert [(s.first_page, s.first_part, s.last_page, s.last_part) for s in sheet.scenes] == \
        [(1, None, 1, truth[0]), (1, truth[0] + 1, 1, None)]
    assert [s.mood for s in sheet.scenes] == ["calm", "action"]
    assert sheet.scenes[1].tempo_bpm > sheet.scenes[0].tempo_bpm
    assert [p.scene for p in sheet.pages] == [1, 1, 1, 2, 2, 2]
    assert sheet.pages[3].start == pytest.approx(sheet.scenes[1].start, abs=0.001)  # the cut is on its part
    starts = [p.start for p in sheet.pages]
    assert starts == sorted(starts) and len(set(starts)) == 6  # every part at its own time
    vtt = (out / sheet.vtt_file).read_text(encoding="utf-8")
    assert "(page 1 up to part 3)" in vtt and "(page 1 from part 4)" in vtt
    score, sr = sf.read(out / sheet.score_file, dtype="float32", always_2d=True)
    assert abs(len(score) / sr - sheet.duration) < 0.01



def test_a_kept_scene_in_a_strip_saved_shorter_is_left_out_not_the_chapter_failed(tmp_path):
    """A scenes file kept from the last score named "1 part 5" of an episode saved as one tall image; once the strip
    was saved shorter (3 parts), every rerun failed the chapter ("page 1 has no part 5"), where a kept scene whose
    first page is gone is left out in one line and the scenes before run on."""
    from chapters import make_webtoon
    from PIL import Image

    make_webtoon(tmp_path / "ep" / "episode.png", [("calm", 3), ("action", 3)], seed=3)
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n1 part 5\n", encoding="utf-8")
    out = tmp_path / "out"
    made = cli("score", tmp_path / "ep", "-o", out, *BUILTIN, "--scenes", scenes, "--seed", "1", timeout=300)
    assert made.returncode == 0, made.stderr[-1500:]
    strip = Image.open(tmp_path / "ep" / "episode.png")
    strip.crop((0, 0, strip.width, strip.height // 2)).save(tmp_path / "ep" / "episode.png")
    again = cli("score", tmp_path / "ep", "-o", out, *BUILTIN, "--seed", "1", timeout=300)
    assert again.returncode == 0, again.stderr[-1500:]
    assert "episode.png part 5 (it has 3 now), where a scene of scenes.txt (kept from the last score) started, is " \
        "gone; the scenes before run on" in " ".join(again.stderr.split()), again.stderr[-1500:]
    sheet = CueSheet.model_validate(json.loads((out / "ep.cues.json").read_text(encoding="utf-8")))
    assert [p.parts for p in sheet.pages] == [3, 3, 3]


def test_page_files_with_a_hash_in_their_names_are_each_a_page(tmp_path):
    """A tall strip's parts are named "episode.png#2" inside the reader, and any "#" in a file name was taken for
    that: six pages named "Vol.1 #01.png"... were read as one page called "Vol.1 " (the cue sheet listed that one
    page, twice, and the describer said "1 page").  Only a "#" and a number at the very end name a part."""
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=5)
    for page in sorted((tmp_path / "ch").iterdir()):
        page.rename(page.with_name(f"Vol.1 #{page.stem}.png"))
    names = sorted(p.name for p in (tmp_path / "ch").iterdir())
    out = tmp_path / "out"
    result = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = CueSheet.model_validate(json.loads((out / "ch.cues.json").read_text(encoding="utf-8")))
    assert [(p.name, p.part) for p in sheet.pages] == [(n, None) for n in names]
    assert [(s.pages, s.mood) for s in sheet.scenes] == [(names[:3], "calm"), (names[3:], "action")]
    readings = json.loads((out / "ch.json").read_text(encoding="utf-8"))["chapter_reading"]["features"]["readings"]
    assert [r["name"] for r in readings] == names

def test_a_scenes_file_names_a_part_of_a_tall_strip(tmp_path):
    from chapters import make_webtoon

    make_webtoon(tmp_path / "ep" / "001.png", [("calm", 4)], seed=4)
    make_chapter(tmp_path / "pages", [("calm", 2)], seed=4)
    (tmp_path / "pages" / "001.png").rename(tmp_path / "ep" / "002.png")
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n1 part 3 0:20  # the second half of the episode, for a 20 s shot\n002.png\n",
                      encoding="utf-8")
    out = tmp_path / "out"
    result = cli("score", tmp_path / "ep", "-o", out, *BUILTIN, "--scenes", scenes, timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = json.loads((out / "ep.cues.json").read_text(encoding="utf-8"))
    assert [(s["first_page"], s["first_part"], s["last_part"]) for s in sheet["scenes"]] == \
        [(1, None, 2), (1, 3, None), (2, None, None)]
    assert sheet["scenes"][1]["given_s"] == 20 and abs(sheet["scenes"][1]["duration"] - 20) < 2.0
    for line, said in (("1 part 7", "page 1 has no part 7 (it is read in 4 parts)"),
                       ("2 part 2", "page 2 has no part 2 (it is an ordinary page"),
                       ("1 part 0", "parts are numbered from 1")):
        scenes.write_text(f"1\n{line}\n", encoding="utf-8")
        bad = cli("score", tmp_path / "ep", "-o", tmp_path / "bad", *BUILTIN, "--scenes", scenes)
        assert bad.returncode == 2 and one_line_error(bad.stderr) and said in " ".join(bad.stderr.split())
        assert not (tmp_path / "bad").exists()  # said before any work


def test_page_numbers_count_a_page_that_could_not_be_read(tmp_path):
    """"4" in a scenes file is the fourth page found, as the check before the run counts it, and 004.png is page 4
    in the cue sheet: with 002.png damaged, the scene started on 005.png, and the cue sheet, the WebVTT chapters
    and the read-along page called every page after it one lower than the chapter does."""
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=2)
    (tmp_path / "ch" / "002.png").write_bytes(b"not a png")
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n4\n", encoding="utf-8")
    out = tmp_path / "out"
    result = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--scenes", scenes, timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))
    assert [(s["first_page"], s["pages"][0]) for s in sheet["scenes"]] == [(1, "001.png"), (4, "004.png")]
    assert [(p["index"], p["name"]) for p in sheet["pages"]] == [(1, "001.png")] + \
        [(k, f"{k:03d}.png") for k in range(3, 7)]
    assert "(pages 4-6)" in (out / "ch.score.vtt").read_text(encoding="utf-8")
    scenes.write_text("1\n2\n", encoding="utf-8")  # a scene said to start on the damaged page starts after it
    result = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--scenes", scenes, timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))
    assert [(s["first_page"], s["pages"][0]) for s in sheet["scenes"]] == [(1, "001.png"), (3, "003.png")]
    assert "a scene was to start on page 2 (002.png), which could not be read; it starts on page 3 (003.png)" in \
        " ".join(result.stderr.split())


def test_the_summary_and_manifest_give_the_scores_seed(tmp_path):
    """A score's seed reproduces it: the summary (``--json``) and ``manifest.json`` said ``seed: null`` for every
    score, given or drawn, and the web page then showed no seed at all."""
    make_chapter(tmp_path / "ch", [("calm", 2)], seed=3)
    out = tmp_path / "out"
    given = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "7", "--json", timeout=300)
    assert given.returncode == 0, given.stderr
    assert json.loads(given.stdout)["sections"][0]["seed"] == 7
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"][0]["seed"] == 7
    drawn = cli("score", tmp_path / "ch", "-o", tmp_path / "drawn", *BUILTIN, "--json", timeout=300)
    record = json.loads((tmp_path / "drawn" / "ch.json").read_text(encoding="utf-8"))
    assert json.loads(drawn.stdout)["sections"][0]["seed"] == record["score"]["seed"] is not None
    again = cli("score", tmp_path / "ch", "-o", tmp_path / "drawn", *BUILTIN, "--json", timeout=300)
    entry = json.loads(again.stdout)["sections"][0]
    assert entry["status"] == "skipped" and entry["seed"] == record["score"]["seed"]  # skipped: still its seed
    # `--seed` "makes the score repeatable (recorded in the cue sheet)": the cue sheet held only each scene's seed,
    # made from the chapter's, and a scene's seed given to --seed made other music
    assert json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))["seed"] == 7
    sheet_seed = json.loads((tmp_path / "drawn" / "ch.cues.json").read_text(encoding="utf-8"))["seed"]
    assert sheet_seed == record["score"]["seed"]
    made = cli("score", tmp_path / "ch", "-o", tmp_path / "again", *BUILTIN, "--seed", str(sheet_seed), timeout=300)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "again" / "ch.score.wav").read_bytes() == (tmp_path / "drawn" / "ch.score.wav").read_bytes()


def test_a_scenes_file_can_give_each_scene_its_length_for_a_video(tmp_path):
    """A recap video shows pages for as long as its editor chose: ``5 0:45`` makes the scene starting at page 5
    last 45 s (whole bars, as close as they come) instead of its reading time; its pages share that time as they
    share their reading time, and the score is as long as the scenes."""
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=2)
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1  60  # the opening, a minute\n003.png\n5 0:45\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "3", "--scenes", scenes)
    result = cli(*args, timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = CueSheet.model_validate(json.loads((out / "ch.cues.json").read_text(encoding="utf-8")))
    first, middle, last = sheet.scenes
    assert (first.given_s, middle.given_s, last.given_s) == (60.0, None, 45.0)
    for scene, wanted in ((first, 60.0), (middle, max(middle.reading_seconds, 8.0)), (last, 45.0)):
        assert abs(scene.duration - wanted) <= 2 * 60 / scene.tempo_bpm + 1e-6  # within half a bar
    assert abs(first.reading_seconds - 60.0) > 10 and abs(last.reading_seconds - 45.0) > 10  # not the reading time
    pages = [p for p in sheet.pages if p.scene == 3]
    share = pages[0].reading_seconds / (pages[0].reading_seconds + pages[1].reading_seconds)
    assert abs(pages[1].start - (last.start + share * last.duration)) < 0.01  # its pages share its 45 s
    assert abs(sf.info(str(out / sheet.score_file)).duration - sheet.duration) < 1e-3
    again = cli(*args, "--json", timeout=300)
    assert json.loads(again.stdout)["sections"][0]["status"] == "skipped"
    scenes.write_text("1 60\n003.png\n5 1:15\n", encoding="utf-8")  # a new length: made again
    longer = cli(*args, "--json", timeout=300)
    assert json.loads(longer.stdout)["sections"][0]["status"] == "ok"
    assert abs(json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))["scenes"][2]["duration"] - 75) < 2


def test_scene_lengths_from_a_scenes_file_keep_every_scene_change_within_half_a_bar_of_its_time(tmp_path):
    """Each scene is whole bars, so each is up to half a bar off its given length; a video cut to those lengths
    needs the scene changes where it put them: the bars' rounding must not add up from one scene to the next."""
    make_chapter(tmp_path / "ch", [("calm", 2), ("calm", 2), ("action", 2), ("action", 2)], seed=5)
    scenes = tmp_path / "scenes.txt"
    lengths = [43.0, 43.0, 41.0, 37.5]  # at 64 BPM a bar is 3.75 s: 43 s is 11 bars, 1.75 s short
    scenes.write_text("".join(f"{2 * k + 1} {s}\n" for k, s in enumerate(lengths)), encoding="utf-8")
    out = tmp_path / "out"
    result = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "3", "--scenes", scenes, timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = CueSheet.model_validate(json.loads((out / "ch.cues.json").read_text(encoding="utf-8")))
    assert [s.given_s for s in sheet.scenes] == lengths
    wanted_end = 0.0
    for scene, length in zip(sheet.scenes, lengths):
        wanted_end += length
        assert abs(scene.end - wanted_end) <= 2 * 60 / scene.tempo_bpm + 1e-6, (scene.index, scene.end, wanted_end)


def test_a_file_made_again_with_the_same_bytes_is_left_as_it_was(scored, tmp_path):
    """Cues made again to the same bytes (a rerun with --force, another scene's length changed) were written again:
    new modification times made a video editor that watches them import them again."""
    import shutil

    root, out, _, sheet, _ = scored
    work = tmp_path / "out"
    shutil.copytree(out, work)
    cues = [work / s.cue_file for s in sheet.scenes]
    before = {c.name: (c.stat().st_mtime_ns, c.stat().st_ino) for c in cues}
    again = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, "--force", timeout=300)
    assert again.returncode == 0, again.stderr
    assert {c.name: (c.stat().st_mtime_ns, c.stat().st_ino) for c in cues} == before
    assert record_mismatches(work) == [] and temp_files(work) == []


def test_another_format_says_that_the_scores_files_are_replaced(scored, tmp_path):
    """Scoring again with --format flac deleted ch1.score.wav and every cue's .wav without a word: a video timeline
    that used them pointed at missing files."""
    import shutil

    root, out, _, sheet, _ = scored
    work = tmp_path / "out"
    shutil.copytree(out, work)
    result = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, "--format", "flac", timeout=300)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert "ch1: the score and its cues are flac files now; the wav ones (ch1.score.wav and " in said, said
    assert "are replaced (--format wav brings them back)" in said
    assert not (work / sheet.score_file).exists() and (work / "ch1.score.flac").exists()


def test_an_edited_scene_description_for_a_scene_now_gone_is_said_to_be_unused(tmp_path):
    """The user wrote their own words into ch.scene03.txt, then gave the chapter two scenes: the file was kept (good)
    but nothing said that it was no longer used."""
    make_chapter(tmp_path / "ch", [("calm", 2), ("action", 2)], seed=6)
    scenes, out = tmp_path / "scenes.txt", tmp_path / "out"
    scenes.write_text("1\n2\n3\n", encoding="utf-8")
    assert cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--scenes", scenes, timeout=300).returncode == 0
    (out / "ch.scene03.txt").write_text("My own words for the fight", encoding="utf-8")
    used = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--scenes", scenes, timeout=300)  # the words are
    assert used.returncode == 0 and "ch.scene03.txt" in used.stderr  # played: then the file is no output of ours,
    # and a text that had been used was dropped without a word
    scenes.write_text("1\n3\n", encoding="utf-8")
    again = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--scenes", scenes, timeout=300)
    assert again.returncode == 0, again.stderr
    assert ("ch: ch.scene03.txt holds your words for a scene the chapter no longer has (it has 2 now): kept as it "
            "is, not used") in " ".join(again.stderr.split())
    assert (out / "ch.scene03.txt").read_text(encoding="utf-8") == "My own words for the fight"


def test_a_new_home_key_for_the_chapter_is_said_when_every_cue_is_made_again(tmp_path):
    """The chapter's home key and lead come from all its pages: a page changed in the last scene made every cue
    again, in a new key with a new lead, with nothing said about the scenes whose pages were as they were."""
    from chapters import action_page

    make_chapter(tmp_path / "ch", [("calm", 2), ("action", 1)], seed=4)
    out = tmp_path / "out"
    first = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "3", timeout=300)
    assert first.returncode == 0, first.stderr
    was = json.loads((out / "ch.json").read_text(encoding="utf-8"))["score"]["theme"]
    for k in (2, 3):  # the chapter turns to action: its mood, and with it its key and lead
        action_page(40 + k).convert("RGB").save(tmp_path / "ch" / f"00{k}.png")
    again = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "3", timeout=300)
    assert again.returncode == 0, again.stderr
    now = json.loads((out / "ch.json").read_text(encoding="utf-8"))["score"]["theme"]
    assert (now["home_key"], now["lead"]) != (was["home_key"], was["lead"])
    assert (f"ch: the chapter's home key and lead, from all its pages, are now {now['home_key']} and {now['lead']} "
            f"(were {was['home_key']} and {was['lead']}): every scene's cue is composed again") in \
        " ".join(again.stderr.split())
    assert "ch: reading the pages again: 2 pages changed (002.png, 003.png)" in again.stderr  # `run` said why; score
    # read the chapter again without a word
    other = tmp_path / "other"
    assert cli("run", tmp_path / "ch", "-o", other, *BUILTIN, "--duration", "1").returncode == 0
    first_score = cli("score", tmp_path / "ch", "-o", other, *BUILTIN, timeout=300)
    assert first_score.returncode == 0 and "reading the pages again" not in first_score.stderr  # run's reading is
    # not the score's: its first reading is no reading "again"


def test_a_quick_scene_lasts_the_least_a_scene_lasts_whatever_its_tempo():
    """--reading-speed 20 made scenes of 7.4 and 7.5 s where the README says a scene lasts at least 8 s: a scene read
    in 3 s was brought up to 8 s, then rounded to the nearest whole bar, down as often as up."""
    from manga2music.cuesheet import MIN_CUE_S, bar_seconds, scene_bars

    for tempo in (64, 90, 120, 150, 165, 200):
        bars, _ = scene_bars(3.0, tempo)
        assert MIN_CUE_S <= bars * bar_seconds(tempo) < MIN_CUE_S + bar_seconds(tempo), tempo
    assert scene_bars(3.0, 64, given=3.0)[0] == 1  # a length the scenes file gives is not held to it


def test_scenes_shorter_than_a_bar_are_said_to_push_the_scene_changes_later():
    """Six 3 s scenes at 64 BPM (a bar is 3.75 s): each lasts a bar at least, so the fourth started 2.25 s after where
    the lengths put it, past the half bar the README promised, without a word.  The promise holds for scenes of a
    bar or more; a shorter one is said, with how far the changes land from their times."""
    from manga2music.cuesheet import missed_given_lengths, plan_timing

    sr = 32000
    for given, missed in (([3.0] * 6, (5, 4.5)),  # 6 bars of 3.75 s: 22.5 s, not 18
                          ([2.0], (0, 1.75)),  # one scene of 2 s lasts a bar: within half a bar, but not what
                          # was given, and the README says a line says so
                          ([5.0] * 6, None), ([43.0, 43.0, 41.0, 37.5], None)):
        timings = plan_timing([10.0] * len(given), [64.0] * len(given), sr, given=given)
        found = missed_given_lengths(timings, given, sr)
        assert (found if found is None else (found[0], round(found[1], 2))) == missed, (given, found)
    # 30 s at 140 BPM is 17.5 bars: the scene lasts 18 (or 17), exactly half a bar off, which the README allows;
    # a rounding to whole samples made it 1/32000 s more, and a line said "some scenes are given less"
    for given in ([30.0], [30.0, 30.0], [60.0, 30.0, 30.0]):
        timings = plan_timing([10.0] * len(given), [140.0] * len(given), sr, given=given)
        assert missed_given_lengths(timings, given, sr) is None, given


@pytest.mark.parametrize("line, said", [("5 abc", "'abc' is not a length (seconds, like 45"),
                                        ("5 1", "a scene lasts from 2 s to 4 hours (got 1)"),
                                        ("5 9:99", "'9:99' is not a length"),
                                        ("7 30", "page 7 does not exist"),
                                        ("nine 30", "no page named 'nine' in the chapter"),  # not 'nine 30'
                                        ("009.png 15", "no page named '009.png' in the chapter (its pages: 001.png, "
                                                       "002.png, 003.png, 004.png, ...); 15 is read as its scene's "
                                                       "length")])
def test_a_bad_length_in_a_scenes_file_is_one_line_naming_it(tmp_path, line, said):
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=2)
    scenes = tmp_path / "scenes.txt"
    scenes.write_text(f"1\n{line}\n", encoding="utf-8")
    bad = cli("score", tmp_path / "ch", "-o", tmp_path / "out", *BUILTIN, "--scenes", scenes)
    assert bad.returncode == 2 and one_line_error(bad.stderr) and "line 2" in bad.stderr
    assert said in " ".join(bad.stderr.split()), bad.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, said", [("1 30\n4 20\n004.png 40\n", "line 3: page 4 starts a scene already (line 2"),
                                        ("1\n5\n2\n", "line 3: page 2 comes before the scene start on line 2 (page 5)"),
                                        ("1\n1\n", "line 2: page 1 starts a scene already (line 1")])
def test_a_scenes_file_that_names_a_start_twice_or_out_of_order_is_one_line(tmp_path, text, said):
    """The same page given twice with two lengths took the last one without a word, and lines out of order were
    sorted: a typo ("51" for "15") moved a scene silently."""
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=2)
    scenes = tmp_path / "scenes.txt"
    scenes.write_text(text, encoding="utf-8")
    bad = cli("score", tmp_path / "ch", "-o", tmp_path / "out", *BUILTIN, "--scenes", scenes)
    assert bad.returncode == 2 and one_line_error(bad.stderr), bad.stderr
    assert said in " ".join(bad.stderr.split()), bad.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("speed", ["0", "-1", "nan", "0.001", "25"])
def test_reading_speed_must_be_positive_and_within_twenty_times_the_estimate(tmp_path, speed):
    """0.001 would make a 20-page chapter days of music (hours of memory) before saying anything."""
    make_chapter(tmp_path / "ch", [("calm", 2)], seed=3)
    result = cli("score", tmp_path / "ch", "-o", tmp_path / "out", *BUILTIN, "--reading-speed", speed)
    assert result.returncode == 2 and one_line_error(result.stderr) and "--reading-speed" in result.stderr


@pytest.mark.parametrize("setting", [{"loop": True}, {"variations": 2}])
def test_the_api_refuses_the_settings_a_score_cannot_take_as_the_command_does(tmp_path, setting):
    """`score` has no --loop or --variations (its cues loop already; one score a chapter), but
    `manga2music.score(config=RunConfig(loop=True, variations=2))` took them without a word: the takes were never
    made, and loop changed the music and was recorded."""
    import manga2music
    from manga2music.errors import InputError
    from manga2music.options import RunConfig

    make_chapter(tmp_path / "ch", [("calm", 1)], seed=3)
    with pytest.raises(InputError, match="score") as refused:
        manga2music.score(tmp_path / "ch", tmp_path / "out", vision_model="builtin", music_model="builtin",
                          config=RunConfig(**setting))
    assert next(iter(setting)) in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_one_page_is_one_scene_and_an_unreadable_chapter_fails_alone(tmp_path):
    make_chapter(tmp_path / "in" / "single", [("action", 1)], seed=4)
    (tmp_path / "in" / "broken").mkdir()
    (tmp_path / "in" / "broken" / "001.png").write_bytes(b"not an image")
    whole = io.BytesIO()  # pages that open but are cut short: "none of the pages could be measured", and the
    Image.new("L", (400, 600), 90).save(whole, "PNG", compress_level=0)  # manifest listed none of them
    for k in (1, 2):
        (tmp_path / "in" / "cut" / f"00{k}.png").parent.mkdir(exist_ok=True)
        (tmp_path / "in" / "cut" / f"00{k}.png").write_bytes(whole.getvalue()[:len(whole.getvalue()) // (k + 1)])
    out = tmp_path / "out"
    result = cli("score", tmp_path / "in", "-o", out, *BUILTIN, "--json", timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    status = {e["name"]: e["status"] for e in json.loads(result.stdout)["sections"]}
    assert status == {"single": "ok", "broken": "failed", "cut": "failed"}
    broken = next(e for e in json.loads(result.stdout)["sections"] if e["name"] == "broken")
    assert broken["message"].startswith("no readable page among 1 (")  # and why, as `run` says it
    cut = next(e for e in json.loads(result.stdout)["sections"] if e["name"] == "cut")
    assert cut["message"].startswith("no readable page among 2 (") and "truncated" in cut["message"], cut
    assert [p["name"] for p in cut["skipped_pages"]] == ["001.png", "002.png"], cut
    sheet = json.loads((out / "single.cues.json").read_text(encoding="utf-8"))
    assert len(sheet["scenes"]) == 1 and sheet["scenes"][0]["duration"] >= 8.0
    listening = (out / "index.html").read_text(encoding="utf-8")
    assert "Scene 1: action</b> &middot; page 1 &middot;" in listening  # not "pages 1-1"
    from manga2music.audio import measure_loudness

    audio, sr = sf.read(out / "single.score.wav", dtype="float32", always_2d=True)
    assert abs(measure_loudness(audio, sr) + 14.0) < 1.0  # normalised like every track


def test_the_documented_schema_is_the_models():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "cue-sheet.md").read_text(encoding="utf-8")
    block = doc.split("```json", 1)[1].split("```", 1)[0]
    assert json.loads(block) == CueSheet.model_json_schema()


def score_with_chat_model(chapter: Path, out: Path, server) -> dict:
    """``score`` one chapter with a chat model at the local OpenAI-compatible server and the builtin composer; its
    cue sheet."""
    result = cli("score", chapter, "-o", out, "--base-url", server.url, "--vision-model", "llava:13b",
                 "--music-model", "builtin", "--seed", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads((out / f"{chapter.name}.cues.json").read_text(encoding="utf-8"))


def test_a_chat_model_reads_the_pages_gives_the_direction_and_each_scenes_music(tmp_path, openai_server):  # noqa: F811
    """GPT or any OpenAI-compatible server: one entry per page (scene changes included), a direction, a scene each."""
    from openai_server import Reply

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=9)
    entries = [{"page": k, "mood": "calm" if k <= 3 else "fierce", "intensity": 1 if k <= 3 else 3,
                "scene_change": k in (1, 4), "why": "a fight begins" if k == 4 else "same room"} for k in range(1, 7)]
    openai_server.queue(
        Reply(json.dumps({"pages": entries})),
        Reply(json.dumps({"key": "E minor", "instruments": ["koto", "taiko drums", "strings"],
                          "tempo_low": 66, "tempo_high": 160})),
        Reply("Gentle koto and soft strings, 68 BPM in E minor, quiet and warm."),
        Reply("Pounding taiko drums with fierce koto and strings, 156 BPM in E minor, urgent."))
    sheet = score_with_chat_model(tmp_path / "ch", tmp_path / "out", openai_server)
    assert [s["first_page"] for s in sheet["scenes"]] == [1, 4]  # where the model said the scene changes
    assert [s["mood"] for s in sheet["scenes"]] == ["calm", "fierce"]
    assert sheet["scenes"][1]["description"].startswith("Pounding taiko drums") and sheet["scenes"][1]["tempo_bpm"] == 156
    bodies = openai_server.requests
    assert [len(r.images) for r in bodies] == [6, 0, 0, 0]  # the pages once, then text only
    assert "E minor" in bodies[2].text and "koto, taiko drums, strings" in bodies[2].text


def test_a_chat_models_answers_in_other_shapes_and_a_key_in_words_are_read(tmp_path, openai_server):  # noqa: F811
    """A server without structured output answers as it likes: "Pages" keyed by number with "Intensity": "high",
    a tempo range over the most asked for, a key in words.  The chapter failed ("1 validation error for
    ChapterDirection", and the retry said only that), and a key "C sharp minor" was recorded as home key "C", a
    semitone off every cue, and the theme played in it."""
    from openai_server import Reply

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=9)
    entries = {str(k): {"Mood": "calm" if k <= 3 else "fierce", "Intensity": "low" if k <= 3 else "high",
                        "Scene change": k in (1, 4)} for k in range(1, 7)}
    openai_server.queue(
        Reply(json.dumps({"Pages": entries})),
        Reply(json.dumps({"Key": "C sharp minor", "Instruments": "koto, taiko drums and strings",
                          "tempo_low": 66, "tempo_high": 250})),
        Reply("Gentle koto and soft strings, 68 BPM in C sharp minor, quiet and warm."),
        Reply("Pounding taiko drums with fierce koto, 156 BPM in C sharp minor."))
    sheet = score_with_chat_model(tmp_path / "ch", tmp_path / "out", openai_server)
    assert len(openai_server.requests) == 4  # each answer read the first time
    assert [(s["first_page"], s["mood"]) for s in sheet["scenes"]] == [(1, "calm"), (4, "fierce")]
    assert sheet["theme"]["home_key"] == "C#"
    record = json.loads((tmp_path / "out" / "ch.json").read_text(encoding="utf-8"))
    assert [s["info"]["key"] for s in record["score"]["scenes"]] == ["C# minor", "C# minor"]
    assert "between 66 and 240 BPM" in openai_server.requests[2].text


def test_keys_in_any_case_are_read_and_a_direction_out_of_all_reason_is_asked_again():
    """"C Sharp Minor" and "B Flat Major" (as models write them in JSON) were still C and B; an answer of tempos 0
    and 0, instruments "none", or a tempo of 1e999 (an OverflowError that failed the chapter) was taken or crashed
    where it must be asked again."""
    import pydantic

    from manga2music.describers.chapter import ChapterDirection, PageEntries
    from manga2music.music.text_to_style import key_tonic, parse_style

    assert [key_tonic(k) for k in ("C Sharp Minor", "c# minor", "B Flat Major", "E-flat", "Bb", "D",
                                   "home key F# minor", "banana")] == ["C#", "C#", "Bb", "Eb", "Bb", "D", "F#", None]
    assert parse_style("Calm piano, 70 BPM in B Flat Major, warm.").key_name == "Bb major"
    for answer in ({"key": "D minor", "instruments": ["piano"], "tempo_low": 60, "tempo_high": float("inf")},
                   {"key": "D minor", "instruments": "none", "tempo_low": 60, "tempo_high": 150},
                   {"key": "D minor", "instruments": ["piano"], "tempo_low": 0, "tempo_high": 0}):
        with pytest.raises(pydantic.ValidationError):
            ChapterDirection.model_validate(answer)
    with pytest.raises(pydantic.ValidationError):
        PageEntries.model_validate({"pages": [{"page": 1, "mood": "a", "intensity": float("inf"),
                                               "scene_change": True}]})


def test_a_chat_model_starts_a_scene_inside_a_webtoon_episode_saved_as_one_image(tmp_path, openai_server):  # noqa: F811
    """The model sees a tall strip part by part and answers one entry per part; where it says a part starts a
    scene, the scene starts there (its entries were merged into one per page, so a strip was always one scene)."""
    from chapters import make_webtoon
    from openai_server import Reply

    make_webtoon(tmp_path / "ep" / "episode.png", [("calm", 3), ("action", 3)], seed=5)
    entries = [{"page": k, "mood": "calm" if k <= 3 else "fierce", "intensity": 1 if k <= 3 else 3,
                "scene_change": k in (1, 4), "why": "a fight begins" if k == 4 else "same room"} for k in range(1, 7)]
    openai_server.queue(
        Reply(json.dumps({"pages": entries})),
        Reply(json.dumps({"key": "E minor", "instruments": ["koto", "strings"], "tempo_low": 66, "tempo_high": 160})),
        Reply("Gentle koto and soft strings, 68 BPM in E minor."),
        Reply("Pounding taiko drums with fierce koto, 156 BPM in E minor."))
    sheet = score_with_chat_model(tmp_path / "ep", tmp_path / "out", openai_server)
    assert [(s["first_part"], s["last_part"], s["mood"]) for s in sheet["scenes"]] == [(None, 3, "calm"),
                                                                                          (4, None, "fierce")]
    assert sheet["scenes"][1]["tempo_bpm"] == 156
    assert [len(r.images) for r in openai_server.requests] == [6, 0, 0, 0]  # the strip's parts once, then text


# --- --transitions continue: bridges carried on from the outgoing cue (MusicGen) -----------------------------------

@pytest.fixture(scope="module")
def bridged(tmp_path_factory):
    """A 3-scene chapter scored with a tiny MusicGen whose next codes follow the codes before them, with bridges."""
    pytest.importorskip("transformers")
    from tiny_musicgen import build_tiny_musicgen

    root = tmp_path_factory.mktemp("bridged")
    model = build_tiny_musicgen(root / "model", attentive=True)
    make_chapter(root / "in" / "ch1", [("calm", 3), ("action", 3), ("calm", 2)], seed=1)
    out = root / "out"
    args = ("score", root / "in" / "ch1", "-o", out, "--vision-model", "builtin", "--music-model", model,
            "--reading-speed", "3", *KEEP_LEVEL)
    result = cli(*args, "--transitions", "continue", timeout=600)
    assert result.returncode == 0, result.stderr
    sheet = CueSheet.model_validate(json.loads((out / "ch1.cues.json").read_text(encoding="utf-8")))
    return root, out, sheet, args


def test_a_model_composing_much_music_on_a_cpu_points_at_longest_cue(tmp_path, monkeypatch):
    """MusicGen on a CPU makes at best 0.4 s of music a second: a chapter's cues take half an hour, and the run says
    that --longest-cue exists before it starts (not after, nor when the user already chose a limit)."""
    pytest.importorskip("transformers")
    import manga2music
    from manga2music import scoring
    from manga2music.jobs import Callbacks
    from manga2music.options import RunConfig
    from tiny_musicgen import build_tiny_musicgen

    monkeypatch.setattr(scoring, "SLOW_ON_CPU_HINT_S", 10.0)  # stands for 3 minutes of music
    model = build_tiny_musicgen(tmp_path / "model")
    make_chapter(tmp_path / "ch", [("calm", 2)], seed=2)
    hints = {}
    for out, limit in (("out", None), ("limited", 8.0)):
        said = []
        manga2music.score([tmp_path / "ch"], tmp_path / out, vision_model="builtin", music_model=str(model),
                          config=RunConfig(seed=1, reading_speed=1.5, longest_cue=limit),
                          callbacks=Callbacks(log=lambda level, text: said.append((level, text))))
        hints[limit] = [text for _, text in said if "longest_cue=60" in text]
    (hint,) = hints[None]
    assert f"{model.name} composes " in hint and "on this CPU" in hint and "--" not in hint  # a program's words
    assert hints[8.0] == []  # the user chose a limit


def test_a_bridge_takes_over_on_a_beat_line_and_fades_out_under_the_next_cue(bridged):
    """Each scene change gets a bridge: from a bar (or beat) line before the change the score is no longer the
    outgoing cue but its continuation, which then fades out under the incoming cue; everywhere else the score is
    the cue files themselves, scene starts and the score's length are unchanged, and no seam clicks."""
    _, out, sheet, _ = bridged
    score, sr = sf.read(out / sheet.score_file, dtype="float32", always_2d=True)
    cues = [sf.read(out / s.cue_file, dtype="float32", always_2d=True)[0] for s in sheet.scenes]
    lengths = [sf.info(str(out / s.loop_file)).frames for s in sheet.scenes]
    assert len(score) == sum(lengths)
    assert [s.transition for s in sheet.scenes] == ["continuation", "continuation", "end"]
    starts = np.cumsum([0] + lengths[:-1])
    quantum = 2.0 / 32768
    step = _jumps(score)
    normal = np.median([step[i:i + sr // 2].max() for i in range(sr, len(score) - sr, sr // 2)])
    for k, scene in enumerate(sheet.scenes[:-1]):
        beats = scene.bridge_s * scene.tempo_bpm / 60.0
        assert min(abs(beats - b) for b in (1, 2, 4)) < 0.01, beats  # it takes over on a beat line
        assert scene.bridge_seed is not None
        at, end = int(starts[k]), int(starts[k + 1])
        lead = int(round(scene.bridge_s * sr))
        fade_in = len(cues[k - 1]) - lengths[k - 1] if k else 0
        body = slice(at + fade_in, end - lead)  # the cue itself, up to where the bridge takes over
        assert np.abs(score[body] - cues[k][fade_in:end - lead - at]).max() <= quantum
        carried = score[end - lead + sr // 20:end]  # after the short hand-over: the bridge, not the cue
        assert np.abs(carried - cues[k][end - lead + sr // 20 - at:end - at]).mean() > 0.01
        for seam in (end - lead, end):  # where the bridge takes over, and the scene change
            assert step[seam - sr // 10:seam + sr // 10].max() <= 2 * normal, (k, seam, normal)


def test_bridges_are_recorded_and_switching_back_reuses_the_cues(bridged, tmp_path):
    import shutil

    root, out, sheet, args = bridged
    record = json.loads((out / "ch1.json").read_text(encoding="utf-8"))
    assert record["score"]["transitions"] == "continue"
    assert [s["bridge"]["seed"] if s["bridge"] else None for s in record["score"]["scenes"]] == \
        [s.bridge_seed for s in sheet.scenes]
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    cue_hashes = {s.cue_file: sha256(copy / s.cue_file) for s in sheet.scenes}
    score_hash = sha256(copy / sheet.score_file)
    args = tuple(copy if a == out else a for a in args)
    result = cli(*args, "--transitions", "crossfade", timeout=600)
    assert result.returncode == 0, result.stderr
    again = CueSheet.model_validate(json.loads((copy / "ch1.cues.json").read_text(encoding="utf-8")))
    assert [s.transition for s in again.scenes] == ["crossfade", "crossfade", "end"]
    assert {s.cue_file: sha256(copy / s.cue_file) for s in again.scenes} == cue_hashes  # the cues were reused
    assert sha256(copy / again.score_file) != score_hash
    assert record_mismatches(copy) == []


def test_a_changed_scene_recomposes_only_the_bridge_into_it(bridged, tmp_path):
    """Edit the last scene's description: its cue and the bridge into it are made again, the bridge between the
    first two scenes is reused exactly as made (the score is the same sample for sample up to where the second
    bridge takes over), and the bridge no score uses any more leaves the cache."""
    import shutil

    import manga2music
    from manga2music.jobs import Callbacks
    from manga2music.options import RunConfig

    root, out, sheet, args = bridged
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    cache = copy / ".manga2music" / "bridges"
    assert len(list(cache.glob("*.npy"))) == 2
    (copy / sheet.scenes[2].description_file).write_text("Soft harp and flute, 84 BPM in C major, at peace.\n",
                                                        encoding="utf-8")
    steps: list[str] = []
    said: list[str] = []
    model = args[args.index("--music-model") + 1]
    manga2music.score([root / "in" / "ch1"], copy, vision_model="builtin", music_model=str(model),
                      config=RunConfig(seed=5, normalize=False, reading_speed=3.0),  # transitions left out: kept
                      callbacks=Callbacks(step=lambda done, total, label: steps.append(label),
                                          log=lambda level, text: said.append(text)))
    assert "bridging 1 of 2 scene changes (1 unchanged)" in steps, sorted(set(steps))
    assert "ch1: bridges between scenes, as its last score's (transitions='crossfade' joins the cues with " \
           "crossfades)" in said, said
    after = CueSheet.model_validate(json.loads((copy / "ch1.cues.json").read_text(encoding="utf-8")))
    assert after.scenes[2].description.startswith("Soft harp")
    assert [s.transition for s in after.scenes] == ["continuation", "continuation", "end"]
    old, sr = sf.read(out / sheet.score_file, dtype="float32", always_2d=True)
    new, _ = sf.read(copy / after.score_file, dtype="float32", always_2d=True)
    second_bridge = int(round(after.scenes[2].start * sr)) - int(round(after.scenes[1].bridge_s * sr))
    # cue 1, bridge 1, cue 2: as before, but for rounding (the reused cues come back from their 16-bit files,
    # and where two of them cross-fade both roundings add up: a few 16-bit steps, about -72 dBFS)
    assert np.abs(old[:second_bridge] - new[:second_bridge]).max() <= 8.0 / 32768
    assert not np.array_equal(old[second_bridge:], new[second_bridge:len(old)])
    assert len(list(cache.glob("*.npy"))) == 2  # the old bridge into scene 3 is gone, the new one kept
    mismatches = record_mismatches(copy)  # the description the user edited is theirs now; everything else matches
    assert len(mismatches) == 1 and sheet.scenes[2].description_file in mismatches[0], mismatches


def test_a_rerun_with_nothing_to_do_does_not_load_the_model(bridged, tmp_path, monkeypatch):
    """MusicGen knows its sample rate only once loaded: a rerun that skips every chapter must not pay for that
    (seconds for musicgen-small, a minute for -large). With loading made to fail, the rerun still skips."""
    import manga2music
    from manga2music.composers.musicgen import MusicgenComposer
    from manga2music.options import RunConfig

    root, out, sheet, args = bridged
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    model = args[args.index("--music-model") + 1]

    def load(self):
        raise AssertionError("the rerun loaded the model")

    monkeypatch.setattr(MusicgenComposer, "_load", load)
    from manga2music.jobs import Callbacks

    said = []
    manifest = manga2music.score([root / "in" / "ch1"], copy, vision_model="builtin", music_model=str(model),
                                 config=RunConfig(seed=5, normalize=False, reading_speed=3.0, transitions="continue"),
                                 callbacks=Callbacks(log=lambda level, m: said.append(m)))
    assert [e["status"] for e in manifest["sections"]] == ["skipped"], said


def test_continue_needs_a_composer_that_carries_audio_on(tmp_path):
    make_chapter(tmp_path / "ch", [("calm", 2)], seed=2)
    result = cli("score", tmp_path / "ch", "-o", tmp_path / "out", *BUILTIN, "--transitions", "continue")
    assert result.returncode == 2 and one_line_error(result.stderr) and "carries audio on" in result.stderr
    assert not (tmp_path / "out" / "ch.cues.json").exists()
    result = cli("score", tmp_path / "ch", "-o", tmp_path / "out", *BUILTIN, "--transitions", "morph")
    assert result.returncode == 2 and one_line_error(result.stderr) and "crossfade, continue" in result.stderr


def test_bridges_that_fail_leave_crossfades_and_a_warning(tmp_path):
    """The cues are made; a composer that fails on the bridges costs the chapter its bridges, not its score."""
    from types import SimpleNamespace

    from manga2music.composers.base import Composer
    from manga2music.cuesheet import plan_timing
    from manga2music.errors import BackendError
    from manga2music.jobs import Callbacks
    from manga2music.bridges import compose_bridges
    from manga2music.scene_planning import ScenePlan

    class FailsOnBridges(Composer):
        backend = "builtin-music"
        continues = True

        def compose(self, requests, *, progress=None):
            assert all(r.follows is not None for r in requests)
            raise BackendError("out of memory")

    sr = 32000
    timings = plan_timing([12.0, 12.0], [90.0, 90.0], sr)
    plans = [ScenePlan(k + 1, [k], "calm piano", "calm", str(k), seed=k, audio=np.zeros((t.length + t.transition, 1),
                                                                                    np.float32))
             for k, t in enumerate(timings)]
    said = []
    cb = Callbacks(log=lambda level, message: said.append((level, message)))
    assert compose_bridges(SimpleNamespace(name="ch1", output=tmp_path), plans, timings, FailsOnBridges(), cb,
                           sr) is None
    assert said and said[0][0] == "warning" and "crossfade instead" in said[0][1]
    assert all(p.bridge is None for p in plans)


def test_longest_cue_composes_short_cues_that_loop_to_fill_each_scene(tmp_path):
    """MusicGen on a laptop makes a second of music in seconds: ``--longest-cue 12`` composes every cue at most
    12 s (whole bars, and the tail that fades into the next scene) and loops it, and the scenes and pages keep
    their reading times.  A changed limit makes the score again."""
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=2)
    out = tmp_path / "out"
    args = ("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "4")
    full = cli(*args, "-o", tmp_path / "whole", timeout=300)
    assert full.returncode == 0, full.stderr
    whole = CueSheet.model_validate(json.loads((tmp_path / "whole" / "ch.cues.json").read_text(encoding="utf-8")))
    result = cli(*args, "--longest-cue", "12", timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = CueSheet.model_validate(json.loads((out / "ch.cues.json").read_text(encoding="utf-8")))
    assert [(s.first_page, s.duration) for s in sheet.scenes] == [(s.first_page, s.duration) for s in whole.scenes]
    assert [p.start for p in sheet.pages] == [p.start for p in whole.pages]  # the same reading times
    assert all(s.duration > 20 for s in sheet.scenes)  # every scene is longer than the limit ...
    for scene in sheet.scenes:  # ... and its cue is not
        assert scene.cue_s <= 12.0 and sf.info(str(out / scene.cue_file)).duration <= 14.0  # and its tail
        assert scene.cue_s > 12.0 - 4 * 60 / scene.tempo_bpm  # as many whole bars as 12 s hold
        assert abs(sf.info(str(out / scene.loop_file)).duration - scene.cue_s) < 1e-3
    assert abs(sf.info(str(out / sheet.score_file)).duration - sheet.duration) < 1e-3
    assert result.stderr.count("(--longest-cue), so it plays once, then repeats") == len(sheet.scenes)
    assert json.loads((out / "ch.json").read_text(encoding="utf-8"))["score"]["longest_cue"] == 12  # to remake it
    again = cli(*args, "--longest-cue", "12", "--json", timeout=300)
    assert json.loads(again.stdout)["sections"][0]["status"] == "skipped"
    longer = cli(*args, "--longest-cue", "16", "--json", timeout=300)
    assert json.loads(longer.stdout)["sections"][0]["status"] == "ok"
    after = CueSheet.model_validate(json.loads((out / "ch.cues.json").read_text(encoding="utf-8")))
    assert all(a.cue_s <= 16 for a in after.scenes)  # whole bars within 16 s
    assert sum(a.cue_s for a in after.scenes) > sum(b.cue_s for b in sheet.scenes)  # longer cues, composed again
    kept = cli(*args, "--json", timeout=300)  # left out: the limit the score was made with, as --reading-speed is
    assert json.loads(kept.stdout)["sections"][0]["status"] == "skipped", kept.stderr
    lifted = cli(*args, "--longest-cue", "1800", "--json", timeout=300)  # the help's way to lift it
    assert json.loads(lifted.stdout)["sections"][0]["status"] == "ok"
    unlimited = CueSheet.model_validate(json.loads((out / "ch.cues.json").read_text(encoding="utf-8")))
    assert [s.cue_s for s in unlimited.scenes] == [s.cue_s for s in whole.scenes]  # as made with no limit
    assert (out / unlimited.score_file).read_bytes() == (tmp_path / "whole" / whole.score_file).read_bytes()


@pytest.mark.parametrize("seconds", ["4", "2000", "nan"])
def test_longest_cue_out_of_range_is_one_line(tmp_path, seconds):
    make_chapter(tmp_path / "ch", [("calm", 2)], seed=3)
    result = cli("score", tmp_path / "ch", "-o", tmp_path / "out", *BUILTIN, "--longest-cue", seconds)
    assert result.returncode == 2 and one_line_error(result.stderr) and "--longest-cue must be from 8" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_read_along_page_embeds_at_most_a_few_minutes_of_each_scenes_loop(tmp_path, monkeypatch):
    """The browser decodes a scene's loop into memory before it plays it (a 30-minute loop: 5.6 s to sound): the
    page embeds the cue's first whole bars up to a limit, made seamless, and the loop file itself for shorter cues."""
    import base64
    import io
    import re

    import manga2music
    from manga2music import scoring
    from manga2music.options import RunConfig

    monkeypatch.setattr(scoring, "READ_ALONG_MAX_LOOP_S", 25.0)  # stands for 5 minutes
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 1)], seed=4)
    manga2music.score([tmp_path / "ch"], tmp_path / "out", vision_model="builtin", music_model="builtin",
                      config=RunConfig(seed=1, normalize=False))
    out = tmp_path / "out"
    sheet = CueSheet.model_validate(json.loads((out / "ch.cues.json").read_text(encoding="utf-8")))
    page = (out / "ch.read.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1)
                      .replace("<\\/", "</"))
    long_scene = [k for k, s in enumerate(sheet.scenes) if s.cue_s > 25]
    short_scene = [k for k, s in enumerate(sheet.scenes) if s.cue_s <= 25]
    assert long_scene and short_scene, [s.cue_s for s in sheet.scenes]  # the test needs both
    for k, scene in enumerate(sheet.scenes):
        embedded, sr = sf.read(io.BytesIO(base64.b64decode(data["loops"][k].split(",", 1)[1])), dtype="float32",
                               always_2d=True)
        seconds = len(embedded) / sr
        bar = 4 * 60 / scene.tempo_bpm
        if k in long_scene:
            assert seconds <= 25.0 + 1e-3 and abs(seconds / bar - round(seconds / bar)) < 1e-3  # whole bars
            cue, _ = sf.read(out / scene.cue_file, dtype="float32", always_2d=True)
            half = slice(len(embedded) // 2, len(embedded))  # past the fold: the cue's own opening bars
            assert np.corrcoef(embedded[half, 0], cue[half, 0])[0, 1] > 0.95
        else:
            assert abs(seconds - scene.cue_s) < 1e-3  # the loop file, as it is
        twice = np.concatenate([embedded, embedded])
        seam = _jumps(twice[len(embedded) - 200:len(embedded) + 200]).max()
        assert seam <= 1.5 * np.quantile(_jumps(embedded), 0.999) + 2e-3  # no click where it loops


def test_a_bridge_out_of_a_scene_that_loops_its_cue_carries_on_from_the_loop(tmp_path):
    """``--transitions continue`` after a scene longer than its cue: the bridge carries on from the music playing
    at the scene change (the cue's loop, some way into its third time round), not from past the cue's end."""
    from types import SimpleNamespace

    from manga2music.bridges import compose_bridges
    from manga2music.composers.base import Composer, Track
    from manga2music.cuesheet import plan_timing
    from manga2music.jobs import Callbacks
    from manga2music.scene_planning import ScenePlan

    class Continues(Composer):
        backend = "builtin-music"
        continues = True
        asked: list = []

        def compose(self, requests, *, progress=None):
            self.asked.extend(requests)
            return [Track(np.zeros((int(r.duration * sr), 1), np.float32), sr) for r in requests]

    sr = 8000
    timings = plan_timing([60.0, 12.0], [120.0, 120.0], sr, max_cue_s=20.0)  # 30 bars of 2 s, a cue of 9 bars
    assert timings[0].loops and timings[0].cue_length == 18 * sr and timings[0].length == 60 * sr
    composed = [np.arange(18 * sr + sr // 2, dtype=np.float32)[:, None] / sr,  # each sample says where it is
                np.zeros((timings[1].cue_length + sr // 2, 1), np.float32)]
    plans = [ScenePlan(k + 1, [k], "calm piano", "calm", str(k), seed=k, audio=composed[k]) for k in range(2)]
    bridges = compose_bridges(SimpleNamespace(name="ch1", output=tmp_path), plans, timings, Continues(), Callbacks(),
                              sr)
    (asked,) = Continues.asked
    lead = plans[0].bridge["lead"]
    assert bridges[1] is not None and lead == 2 * sr  # a bar before the change
    follows = np.rint(asked.follows[:, 0] * sr)  # where in the composed cue each sample carried on from came from
    at_change = (60 - 18) * sr % (18 * sr)  # the scene changes 6 s into the loop's third time round
    where = (np.arange(at_change - lead - len(follows), at_change - lead)) % (18 * sr)
    folded = where < sr // 2  # the loop's first half second is the cue's tail folded over its start
    assert len(follows) == 10 * sr and not folded[-1]
    assert np.array_equal(follows[~folded], where[~folded])


@pytest.mark.parametrize("episode, sections, start", [
    ("15", ["pc-e15-comedy", "pc-e15-tense"], 2),  # silly visions in a bright room, then a dark cave and a spider
    ("08", ["pc-e08-sad", "pc-e08-tense"], 2),  # waiting alone in the rain, then a storm of anger and demons
])
def test_real_pages_change_scene_where_their_mood_changes(episode, sections, start):
    """On real pages a scene change moves the readings by one to two noticeable units, not the four or five of the
    drawn chapters above: a real chapter must still be cut where its mood changes."""
    from PIL import Image

    from manga2music.reading import read_page
    from manga2music.scenes import find_scenes, page_vector

    pages = Path(__file__).parent / "data" / "pages"
    files = [p for name in sections for p in sorted((pages / name).glob("*.jpg"))]
    readings = [read_page(Image.open(p).convert("RGB"), p.name) for p in files]
    assert [s.start for s in find_scenes([page_vector(r) for r in readings])] == [0, start]


@pytest.mark.parametrize("sections", [["pc-e15-comedy", "pc-e15-tense"], ["pc-e08-sad", "pc-e08-tense"]])
def test_real_pages_stacked_into_one_strip_change_scene_in_the_part_where_their_mood_changes(sections):
    """The same real pages as above, stacked into one tall strip as a webtoon episode is saved: the strip's parts do
    not line up with the pages (the mood changes 2.5 parts down), and the scene changes in the part next to it."""
    from PIL import Image

    from manga2music.pages import tile_strip
    from manga2music.reading import read_page
    from manga2music.scenes import find_scenes, page_vector

    pages = Path(__file__).parent / "data" / "pages"
    drawn = [Image.open(p).convert("RGB") for name in sections for p in sorted((pages / name).glob("*.jpg"))]
    drawn = [im.resize((800, round(im.height * 800 / im.width))) for im in drawn]
    strip = Image.new("RGB", (800, sum(im.height for im in drawn)), "white")
    for k, im in enumerate(drawn):
        strip.paste(im, (0, sum(d.height for d in drawn[:k])))
    tiles = tile_strip(strip)
    change = sum(im.height for im in drawn[:2]) / (strip.height / len(tiles))  # in parts from the top
    assert len(tiles) == 5 and change == pytest.approx(2.5, abs=0.1)
    parts = read_page(tiles, "strip.png").part_readings()
    assert [s.start for s in find_scenes([page_vector(r) for r in parts])][1:] in ([2], [3])


def test_a_scene_read_for_longer_than_five_minutes_gets_music_as_long_as_its_reading(tmp_path):
    """A long calm stretch (25 pages of talk, a webtoon episode read as one scene) takes more than five minutes to
    read.  Its cue was cut to 300 s whatever the composer could make (the builtin one makes 30 minutes), and the cue
    sheet squeezed the scene's pages into those 300 s: the read-along turned them faster than anyone reads."""
    make_chapter(tmp_path / "ch", [("calm", 3)], seed=4)
    out = tmp_path / "out"
    result = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--reading-speed", "0.08", "--seed", "2", "--json",
                 timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = CueSheet.model_validate(json.loads((out / "ch.cues.json").read_text(encoding="utf-8")))
    (scene,) = sheet.scenes
    assert scene.reading_seconds > 360  # the test is about a scene read for longer than 300 s
    bar = 4 * 60 / scene.tempo_bpm
    assert abs(scene.duration - scene.reading_seconds) <= bar / 2 + 1e-6  # whole bars, as close as they come
    for page, start in zip(sheet.pages, (0.0, sheet.pages[0].reading_seconds,
                                         sheet.pages[0].reading_seconds + sheet.pages[1].reading_seconds)):
        assert abs(page.start - start * scene.duration / scene.reading_seconds) < 0.02  # times kept to 0.01 s
    assert abs(sf.info(str(out / "ch.score.wav")).duration - scene.duration) < 1e-3


def test_a_scene_longer_than_the_composers_longest_track_repeats_its_cue_as_a_seamless_loop(tmp_path, monkeypatch):
    """Past the composer's longest track (30 minutes builtin, 10 MusicGen) a scene's cue plays once and then its
    loop repeats until the scene ends: the pages keep their reading times (they were squeezed into the cue, and the
    read-along ran ahead of the reader), and the music goes on through the scene change without a seam."""
    import manga2music
    from manga2music.composers.builtin import BuiltinComposer
    from manga2music.jobs import Callbacks
    from manga2music.options import RunConfig

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 2)], seed=4)
    monkeypatch.setattr(BuiltinComposer, "max_duration", 20.0)  # a composer whose longest track is 20 s
    said = []
    manga2music.score([tmp_path / "ch"], tmp_path / "out", vision_model="builtin", music_model="builtin",
                      config=RunConfig(seed=1, normalize=False),
                      callbacks=Callbacks(log=lambda level, text: said.append((level, text))))
    out = tmp_path / "out"
    sheet = CueSheet.model_validate(json.loads((out / "ch.cues.json").read_text(encoding="utf-8")))
    first, second = sheet.scenes[:2]
    bar = 4 * 60 / first.tempo_bpm
    assert first.reading_seconds > 40 and abs(first.duration - first.reading_seconds) <= bar / 2 + 1e-6  # not squeezed
    pages = [p for p in sheet.pages if p.scene == 1]
    assert abs(pages[-1].start - sum(p.reading_seconds for p in pages[:-1])) < 0.5 + bar / 2  # turned when read
    assert first.cue_s <= 18 and first.cue_s < first.duration / 2  # composed for at most the 20 s the composer makes
    looped = [text for level, text in said if "repeats as a seamless loop" in text]
    assert len(looped) == sum(s.cue_s < s.duration for s in sheet.scenes)  # the user is told, once a scene
    read, cue = round(first.reading_seconds, 1), round(first.cue_s, 1)  # a 7.5 s cue was "8 s"
    assert f"scene 1 takes {read:g} s to read; its cue is {cue:g} s (the most builtin makes at once)" in looped[0]
    listening = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert f"loop</a> ({round(first.cue_s)} s, repeated to fill the scene)" in listening

    score, sr = sf.read(out / sheet.score_file, dtype="float32", always_2d=True)
    cue, _ = sf.read(out / first.cue_file, dtype="float32", always_2d=True)
    loop, _ = sf.read(out / first.loop_file, dtype="float32", always_2d=True)
    cue_len, length = round(first.cue_s * sr), round(first.duration * sr)
    assert len(cue) <= 20 * sr and len(loop) == cue_len and len(score) == round(sheet.duration * sr)
    quantum = 2.0 / 32768  # 16-bit files
    assert np.abs(score[:cue_len] - cue[:cue_len]).max() <= quantum  # the cue once, as composed
    for at in range(cue_len, length, cue_len):  # then its loop, again and again, to the scene change
        n = min(cue_len, length - at)
        assert np.abs(score[at:at + n] - loop[:n]).max() <= quantum
    # into the next scene: the loop carries on under the incoming cue's fade-in, the same crossfade as any scene's
    fade = round(first.transition_s * sr)
    carried = np.concatenate([loop, loop])[(length - cue_len) % cue_len:][:fade]
    incoming, _ = sf.read(out / second.cue_file, dtype="float32", always_2d=True)
    theta = (np.arange(fade) * (np.pi / 2) / fade)[:, None]
    assert np.abs(score[length:length + fade] - (carried * np.cos(theta) + incoming[:fade] * np.sin(theta))).max() \
        <= 3 * quantum
    step = _jumps(score[:length])  # no click where the cue hands over to its loop or the loop to itself
    for at in range(cue_len, length, cue_len):
        assert step[at - 200:at + 200].max() <= 1.5 * np.quantile(step, 0.999) + 1e-3

    said.clear()
    monkeypatch.setattr(BuiltinComposer, "max_duration", 1800.0)
    manga2music.score([tmp_path / "ch"], tmp_path / "out2", vision_model="builtin", music_model="builtin",
                      config=RunConfig(seed=1), callbacks=Callbacks(log=lambda level, text: said.append((level, text))))
    assert not [text for _, text in said if "seamless loop" in text]  # a scene that fits is composed whole
    again = CueSheet.model_validate(json.loads((tmp_path / "out2" / "ch.cues.json").read_text(encoding="utf-8")))
    assert again.scenes[0].cue_s == again.scenes[0].duration == first.duration


def test_joining_with_release_lets_each_cue_go_and_makes_the_same_score():
    """The score of a volume is over a GB, and so are its cues: joined with ``release``, the caller's list lets each
    cue go as the score fills (the score itself must not change by a sample)."""
    from manga2music.cuesheet import SceneTiming
    from manga2music.score_audio import join_cues

    sr, rng = 8000, np.random.default_rng(2)
    timings = [SceneTiming(0, 3 * sr, 2, 80.0, sr // 2, 3.0, 3 * sr),
               SceneTiming(3 * sr, 5 * sr, 3, 80.0, sr // 2, 5.0, 2 * sr),  # a scene that loops its cue
               SceneTiming(8 * sr, 2 * sr, 1, 80.0, 0, 2.0, 2 * sr)]
    cues = [(0.1 * rng.standard_normal((t.cue_length + t.transition, 2))).astype(np.float32) for t in timings]
    kept = join_cues(list(cues), timings, sr)
    given = list(cues)
    released = join_cues(given, timings, sr, release=True)
    assert np.array_equal(kept, released) and len(released) == 10 * sr
    assert given == [None, None, None]


def test_a_piano_led_chapter_s_theme_stays_on_the_piano_in_scenes_that_name_a_melody_instrument_too():
    """A chapter whose lead is the piano (Pepper&Carrot episode 6: calm, comedy, action): its comedy cue was written
    "...with piano theme, pizzicato strings, clarinet and marimba" and the builtin composer gave the melody to the
    clarinet (it plays melodies only; a piano plays chords too), so the chapter's shared theme was lost."""
    from PIL import Image

    from manga2music.music.text_to_style import parse_style
    from manga2music.reading import read_page
    from manga2music.scene_planning import Direction, builtin_scene_description

    pages = Path(__file__).resolve().parent / "data" / "pages"
    direction = Direction(tonic="C", lead="piano", theme=(0, 2, 4), mood="calm")
    piano = parse_style("piano").melody
    texts = []
    for scene in ("pc-e06-calm", "pc-e06-comedy", "pc-e06-action"):
        readings = [read_page(Image.open(p).convert("RGB"), p.name) for p in sorted((pages / scene).iterdir())]
        texts.append(builtin_scene_description(readings, direction)[0])
    assert any(parse_style(t.replace("piano theme", "")).melody != piano for t in texts), texts  # a scene names
    # an instrument that would take the melody from the piano
    assert [parse_style(t).melody for t in texts] == [piano] * 3, texts


def test_a_calm_scene_of_an_action_chapter_has_no_drums_and_its_theme_is_played_by_an_instrument_with_notes():
    """The chapter's theme returns in every cue on the chapter's lead instrument.  In a chapter that is mostly a
    fight, the lead was the action mood's first instrument, "pounding drums": its calm scenes were then described as
    "...acoustic piece with drums theme, soft piano..." and composed with a drum kit (a real 54-page manga chapter's
    25-page calm cue at 70 BPM had 991 drum hits), and a drum kit cannot carry a melody."""
    from chapters import action_page, calm_page

    from manga2music.music.text_to_style import parse_style
    from manga2music.reading import read_page
    from manga2music.scene_planning import builtin_scene_description, chapter_direction

    calm = [read_page(calm_page(n).convert("RGB"), f"c{n}.png") for n in range(2)]
    fight = [read_page(action_page(n).convert("RGB"), f"a{n}.png") for n in range(6)]
    direction = chapter_direction(calm + fight, seed=3)
    assert direction.mood == "action"
    calm_text, calm_mood = builtin_scene_description(calm, direction)
    fight_text, fight_mood = builtin_scene_description(fight, direction)
    assert (calm_mood, fight_mood) == ("calm", "action")
    assert not parse_style(calm_text).drums, calm_text
    assert parse_style(fight_text).drums  # the fight keeps its drums
    for text in (calm_text, fight_text):  # the lead is named in both cues, as an instrument that plays notes
        assert direction.lead in text and direction.lead not in ("drums", "drum", "percussion", "taiko")
    # ... and plays their melody: "bold brass, staccato strings" gave the melody to the brass though the lead was
    # the strings, and no cue of the chapter played its theme on the lead
    lead_program = parse_style(direction.lead).melody
    assert [parse_style(text).melody for text in (calm_text, fight_text)] == [lead_program] * 2, (calm_text,
                                                                                                  fight_text)
    # a chat model's direction: its first instrument that plays notes leads; none named, the pages' own lead does
    from manga2music.scene_planning import lead_instrument

    assert lead_instrument(["taiko drums", "shakuhachi", "koto"]) == "shakuhachi"
    assert lead_instrument([], direction.lead) == direction.lead


def test_a_chat_models_direction_without_a_key_or_with_drums_first_still_scores_the_chapter(tmp_path, openai_server):  # noqa: F811,E501
    """A model that leaves the key empty (valid JSON, a blank string) made the chapter fail with "IndexError: list
    index out of range"; now a blank key is no answer and is asked again, as unreadable JSON is.  One that names
    drums first made them the lead of every cue; now the first instrument that plays notes leads."""
    from openai_server import Reply

    make_chapter(tmp_path / "ch", [("calm", 2), ("action", 2)], seed=4)
    entries = [{"page": k, "mood": "calm" if k <= 2 else "fierce", "intensity": 1 if k <= 2 else 3,
                "scene_change": k in (1, 3), "why": "-"} for k in range(1, 5)]
    openai_server.queue(
        Reply(json.dumps({"pages": entries})),
        Reply(json.dumps({"key": " ", "instruments": ["taiko drums", "shakuhachi"], "tempo_low": 60,
                          "tempo_high": 150})),
        Reply(json.dumps({"key": "D minor", "instruments": ["taiko drums", "shakuhachi"], "tempo_low": 60,
                          "tempo_high": 150})),
        Reply("Quiet shakuhachi, 64 BPM, still."),
        Reply("Taiko drums and shakuhachi, 150 BPM, fierce."))
    sheet = score_with_chat_model(tmp_path / "ch", tmp_path / "out", openai_server)
    assert sheet["theme"]["lead"] == "shakuhachi" and sheet["theme"]["home_key"] == "D"
    asked = [r.text for r in openai_server.requests]
    assert "could not be read" in asked[2] and "D minor" in asked[3]  # asked again, then each scene told the key


def test_neighbouring_runs_of_pages_with_the_same_music_are_one_scene(tmp_path):
    """Talk, then the same quiet places without a word: the readings move (the dialogue share drops from about 0.65
    to 0), so scene finding cut there, but both runs are calm at the same tempo and their two descriptions were the
    same words.  The reader heard one calm piece crossfade into another for no reason on the page, and the cue sheet
    listed "Scene 1: calm", "Scene 2: calm" (a real 46-page chapter had four calm scenes in a row, 67-68 BPM, and
    three action ones, 149-158 BPM).  A scene is a run of pages with one music: those runs are one scene."""
    make_chapter(tmp_path / "ch", [("calm", 3), ("quiet", 3), ("action", 3)], seed=2)
    result = cli("score", tmp_path / "ch", "-o", tmp_path / "out", *BUILTIN, "--seed", "3", timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = CueSheet.model_validate(json.loads((tmp_path / "out" / "ch.cues.json").read_text(encoding="utf-8")))
    assert [(s.first_page, s.last_page, s.mood) for s in sheet.scenes] == [(1, 6, "calm"), (7, 9, "action")]
    assert (tmp_path / "out" / "ch.scene01.txt").exists() and not (tmp_path / "out" / "ch.scene03.txt").exists()


def _fight_pages(energies):
    from manga2music.reading import PageReading

    return [PageReading(name=f"{k}.png", energy=e, text_boxes=2, text_area=0.02, text_chars=40, dialogue=0.3,
                        panels=4, colour=False, brightness=0.4, seconds=8.0, measures={"contrast": 0.35})
            for k, e in enumerate(energies)]


def test_a_change_of_tempo_within_one_mood_is_still_a_scene_change():
    """Joining is for runs whose music would be the same: a fight that grows frantic, from 149 to 170 BPM, stays two
    cues; two runs of one fight a few BPM apart become one."""
    from dataclasses import replace

    from manga2music.scene_planning import scene_music
    from manga2music.scenes import Scene, merge_same_music

    growing = _fight_pages([0.3, 0.3, 0.3, 1.0, 1.0, 1.0])
    music = scene_music(growing)
    assert [music(0, 3), music(3, 6)] == [("action", 149), ("action", 170)]
    assert merge_same_music([Scene(0, 3), Scene(3, 6)], music) == [Scene(0, 3), Scene(3, 6)]
    level = _fight_pages([0.3, 0.3, 0.3, 0.4, 0.4, 0.4])
    assert [scene_music(level)(0, 3), scene_music(level)(3, 6)] == [("action", 149), ("action", 152)]
    assert merge_same_music([Scene(0, 3), Scene(3, 6)], scene_music(level)) == [Scene(0, 6)]
    # two calm runs, each with one lively page: together their liveliest half is lively, and would read as comedy
    pages = [replace(r, brightness=0.8, panels=6, measures={"contrast": 0.2})
             for r in _fight_pages([0.4, 0.0, 0.0, 0.4, 0.0, 0.0])]
    music = scene_music(pages)
    assert [music(0, 3)[0], music(3, 6)[0], music(0, 6)[0]] == ["calm", "calm", "comedy"]
    assert merge_same_music([Scene(0, 3), Scene(3, 6)], music) == [Scene(0, 3), Scene(3, 6)]


def test_one_chunk_whose_answers_cannot_be_read_leaves_its_pages_neutral_not_the_chapter_unscored(  # noqa: F811
        tmp_path, openai_server):
    """A chat model that answered prose for one chunk of a chapter's pages (twice: the retry too) failed the whole
    chapter, "did not answer the JSON asked for (pages 4-6)": on a 50-page chapter one misbehaving chunk threw away
    every other chunk's answers, paid for. That chunk's pages are read as neutral, said, and the chapter is scored;
    a chapter none of whose chunks answered still fails with the model's words."""
    import json as _json

    from openai_server import Reply

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=9)
    entries = [{"page": k, "mood": "calm", "intensity": 1, "scene_change": k == 1, "why": "same room"}
               for k in (1, 2, 3)]
    prose = Reply("The pages show a girl walking in the rain.")
    direction = Reply(_json.dumps({"key": "E minor", "instruments": ["koto"], "tempo_low": 66, "tempo_high": 150}))
    openai_server.queue(Reply(_json.dumps({"pages": entries})), prose, prose, direction)
    made = cli("score", tmp_path / "ch", "-o", tmp_path / "out", "--base-url", openai_server.url, "--vision-model",
               "llava:13b", "--music-model", "builtin", "--seed", "1", "--chunk-size", "3", timeout=300)
    assert made.returncode == 0, made.stderr[-1500:]
    said = " ".join(made.stderr.split())
    assert "ch: pages 4-6: llava:13b did not answer the JSON asked for (pages 4-6)" in said, said
    assert "read as neutral pages" in said
    record = _json.loads((tmp_path / "out" / "ch.json").read_text(encoding="utf-8"))
    assert record["score"]["model"] == "builtin" and any("read as neutral pages" in w
                                                          for w in record["chapter_reading"]["warnings"])
    assert [e["mood"] for e in record["chapter_reading"]["features"]["page_entries"]] == ["calm"] * 3 + ["neutral"] * 3

    openai_server.queue(prose, prose, prose, prose)  # no chunk answered: the chapter fails, in the model's words
    failed = cli("score", tmp_path / "ch", "-o", tmp_path / "out2", "--base-url", openai_server.url,
                 "--vision-model", "llava:13b", "--music-model", "builtin", "--seed", "1", "--chunk-size", "3",
                 timeout=300)
    said = " ".join(failed.stderr.split())
    assert failed.returncode == 1 and "ch failed: no part of its 6 pages was read: llava:13b did not answer the " \
        "JSON asked for" in said, failed.stderr[-1500:]
    assert "read as neutral pages" not in said  # said of each part, though no part was read so, and it failed


def test_a_chapter_with_a_tall_strip_is_said_in_its_files_not_the_parts_the_strip_is_cut_into(tmp_path,
                                                                                               openai_server):  # noqa: F811
    """A chapter of a tall strip and two pages, none of whose chunks a chat model answered, was said as "no part of
    its 8 pages was read ... (pages 1-8)": the strip's parts counted as pages, numbers that match no file."""
    import shutil

    from openai_server import Reply

    chapter = tmp_path / "ch"
    chapter.mkdir()
    shutil.copy(SAMPLES / "webtoon" / "001.png", chapter / "001.png")  # 720 x 6000: read in parts
    shutil.copy(SAMPLES / "calm" / "001.png", chapter / "002.png")
    shutil.copy(SAMPLES / "calm" / "002.png", chapter / "003.png")
    openai_server.queue(*[Reply("The pages show a girl walking in the rain.") for _ in range(8)])
    failed = cli("score", chapter, "-o", tmp_path / "out", "--base-url", openai_server.url, "--vision-model",
                 "llava:13b", "--music-model", "builtin", "--chunk-size", "32", timeout=300)
    said = " ".join(failed.stderr.split())
    assert failed.returncode == 1 and "ch failed: no part of its 3 pages was read" in said, failed.stderr[-1500:]
    assert "(pages 1-3)" in said, said


def test_a_server_that_fails_on_one_chunk_fails_the_chapter_and_its_rerun_asks_only_that_chunk(
        tmp_path, openai_server):  # noqa: F811
    """A server down for a moment (502 after every retry) while a chapter's pages were read was taken for answers
    that could not be used: those pages were read as neutral for good, the chapter said ok, and its rerun, with the
    server back, never asked again. The chapter fails, saying so, and its rerun asks only for what was not
    answered; a model's unusable answer still leaves its pages neutral (the test above)."""
    import json as _json

    from openai_server import Fail, Reply

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=9)
    entries = [{"page": k, "mood": mood, "intensity": 2, "scene_change": k == 1, "why": "x"}
               for k, mood in ((1, "calm"), (2, "calm"), (3, "calm"))]
    down = Fail(502, "Bad Gateway", retry_after_ms=1)
    openai_server.queue(Reply(_json.dumps({"pages": entries})), down, down, down, down)
    args = ("score", tmp_path / "ch", "-o", tmp_path / "out", "--base-url", openai_server.url, "--vision-model",
            "llava:13b", "--music-model", "builtin", "--seed", "1", "--chunk-size", "3")
    failed = cli(*args, timeout=300)
    said = " ".join(failed.stderr.split())
    assert failed.returncode == 1 and "ch failed:" in said and "502" in said, failed.stderr[-1500:]
    assert "read as neutral pages" not in said
    assert not (tmp_path / "out" / "ch.score.wav").exists()
    asked = len(openai_server.requests)
    action = [{"page": k, "mood": "action", "intensity": 3, "scene_change": k == 1, "why": "y"} for k in (1, 2, 3)]
    openai_server.queue(Reply(_json.dumps({"pages": action})),
                        Reply(_json.dumps({"key": "E minor", "instruments": ["koto"], "tempo_low": 66,
                                           "tempo_high": 150})))
    again = cli(*args, timeout=300)
    assert again.returncode == 0, again.stderr[-1500:]
    pages_asked = [r for r in openai_server.requests[asked:] if "For each page give its mood" in r.text]
    assert [len(r.images) for r in pages_asked] == [3]  # pages 4-6 only: the answer for 1-3 was kept
    record = _json.loads((tmp_path / "out" / "ch.json").read_text(encoding="utf-8"))
    assert [e["mood"] for e in record["chapter_reading"]["features"]["page_entries"]] == ["calm"] * 3 + ["action"] * 3
    assert not any("neutral" in w for w in record["chapter_reading"].get("warnings") or [])

    # a chunk the server will refuse again as it is (its content filter, a 400 for its pages) is still read as
    # neutral pages, said, and the chapter scored: failed, it failed at every rerun
    for refused in (Reply("", finish_reason="content_filter"),
                    Fail(400, "Invalid image: the image could not be processed", type="invalid_request_error")):
        out = tmp_path / f"refused-{len(openai_server.requests)}"
        openai_server.queue(Reply(_json.dumps({"pages": entries})), refused,
                            Reply(_json.dumps({"key": "E minor", "instruments": ["koto"], "tempo_low": 66,
                                               "tempo_high": 150})))
        made = cli(*args[:3], out, *args[4:], timeout=300)
        assert made.returncode == 0 and "read as neutral pages" in " ".join(made.stderr.split()), made.stderr[-1500:]


def test_a_plain_score_after_run_reads_the_chapter_with_the_model_its_words_were_made_with(tmp_path,
                                                                                             openai_server):  # noqa: F811
    """`run CH --base-url URL --vision-model llava:13b --music-model M`, then the plain `score CH` (the README's next
    step): the score was read by what auto picks (builtin here), not by the model the user had chosen for these
    pages, and the server was never asked.  A score's models left out are those of the chapter's track, where no
    score was made yet."""
    from chapters import queue_chat_score

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=9)
    out = tmp_path / "out"
    made = cli("run", tmp_path / "ch", "-o", out, "--base-url", openai_server.url, "--vision-model", "llava:13b",
               "--music-model", "builtin", "--duration", "2", timeout=300)
    assert made.returncode == 0, made.stderr
    asked = len(openai_server.requests)
    queue_chat_score(openai_server, 3, 3)
    scored = cli("score", tmp_path / "ch", "-o", out, timeout=300)
    assert scored.returncode == 0, scored.stderr
    said = " ".join(scored.stderr.split())
    assert f"--vision-model llava:13b on {openai_server.url}, as the words there were made" in said, said
    assert "--music-model builtin, as the music there was made" in said, said
    assert len(openai_server.requests) == asked + 4  # the chapter read by the server's model
    record = json.loads((out / "ch.json").read_text(encoding="utf-8"))
    assert record["chapter_reading"]["model"] == "llava:13b"
    assert record["score"]["model"] == "builtin"

    make_chapter(tmp_path / "lib" / "b", [("calm", 2)], seed=3)  # chapters whose tracks two models made: no score
    shutil.copytree(tmp_path / "ch", tmp_path / "lib" / "a")  # is made again whichever one reads them
    assert cli("run", tmp_path / "lib" / "a", "-o", tmp_path / "two", "--base-url", openai_server.url,
               "--vision-model", "llava:13b", "--music-model", "builtin", "--duration", "2").returncode == 0
    assert cli("run", tmp_path / "lib" / "b", "-o", tmp_path / "two", "--vision-model", "builtin",
               "--music-model", "builtin", "--duration", "2").returncode == 0
    both = cli("score", tmp_path / "lib", "-o", tmp_path / "two", timeout=300)
    assert both.returncode == 0, both.stderr  # it was refused: "a run without --vision-model would make the others
    said = " ".join(both.stderr.split())  # again with one of them"
    assert "--vision-model left out: the chapters' tracks were made by builtin and llava:13b; auto picks" in said


def test_run_and_score_into_one_output_folder_each_keep_their_reading(tmp_path, openai_server):  # noqa: F811
    """`run` and `score` read a chapter differently (a description for one track; page entries and a direction for
    scenes): one after the other into the same folder, neither asks the model again for what the other did not
    change (each took the other's reading for a change of pages and paid for the pages again)."""
    from chapters import queue_chat_score

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=9)
    out = tmp_path / "out"

    def run() -> str:
        result = cli("run", tmp_path / "ch", "-o", out, "--base-url", openai_server.url, "--vision-model",
                     "llava:13b", "--music-model", "builtin", "--seed", "1", "--duration", "2", timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stderr

    def score() -> dict:
        queue_chat_score(openai_server, 3, 3)
        return score_with_chat_model(tmp_path / "ch", out, openai_server)

    run()
    described = (out / "ch.txt").read_bytes()
    asked = len(openai_server.requests)
    assert asked >= 1
    first = score()
    asked_by_score = len(openai_server.requests) - asked
    assert asked_by_score == 4
    said = run()
    assert len(openai_server.requests) == asked + asked_by_score, said  # nothing asked again
    assert "describing again" not in said and (out / "ch.txt").read_bytes() == described
    page = (out / "index.html").read_text(encoding="utf-8")
    assert described.decode().strip()[:40] in page  # the listening page shows run's track with its description
    result = cli("score", tmp_path / "ch", "-o", out, "--base-url", openai_server.url, "--vision-model", "llava:13b",
                 "--music-model", "builtin", "--seed", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(openai_server.requests) == asked + asked_by_score, result.stderr
    assert json.loads((out / "ch.cues.json").read_text(encoding="utf-8")) == first
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [e["vision_model"] for e in manifest["sections"]] == ["llava:13b"]
    # a record written by `score` before the readings were kept apart holds its reading under "describe"
    record = json.loads((out / "ch.json").read_text(encoding="utf-8"))
    reading = record.pop("chapter_reading")
    record["description"] = reading.pop("description")
    record["describe"] = reading
    (out / "ch.json").write_text(json.dumps(record), encoding="utf-8")
    result = cli("score", tmp_path / "ch", "-o", out, "--base-url", openai_server.url, "--vision-model", "llava:13b",
                 "--music-model", "builtin", "--seed", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(openai_server.requests) == asked + asked_by_score, result.stderr
    assert json.loads((out / "ch.cues.json").read_text(encoding="utf-8")) == first


def test_a_plain_rerun_of_a_score_keeps_its_chunk_size(tmp_path, openai_server):  # noqa: F811
    """`score CH --chunk-size 12` then the plain `score CH` (the README's rerun): "reading the pages again: the
    describer's settings changed (chunk_size 12 -> 8)", every page sent to the server again and every cue made
    again.  A --chunk-size given is kept by a score's rerun as by a run's."""
    from chapters import queue_chat_score

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=9)
    out = tmp_path / "out"
    queue_chat_score(openai_server, 3, 3)
    made = cli("score", tmp_path / "ch", "-o", out, "--base-url", openai_server.url, "--vision-model", "llava:13b",
               "--music-model", "builtin", "--seed", "1", "--chunk-size", "12", timeout=300)
    assert made.returncode == 0, made.stderr
    asked, cues = len(openai_server.requests), (out / "ch.cues.json").read_bytes()
    again = cli("score", tmp_path / "ch", "-o", out, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(openai_server.requests) == asked, again.stderr  # nothing read again
    assert "again" not in again.stderr and "--chunk-size 12" in again.stderr, again.stderr
    assert (out / "ch.cues.json").read_bytes() == cues


def test_a_score_stopped_before_its_first_reading_resumes_with_the_server_it_was_asked_for(tmp_path,  # noqa: F811
                                                                                             openai_server):
    """`score CH --vision-model M --base-url URL` stopped (Ctrl-C) before the model's first answer: the plain rerun
    read the chapter with what auto picks (builtin here) and said only "vision model: builtin", where a stopped
    `run` resumes with the model and server it was asked for."""
    import manga2music
    from chapters import queue_chat_score

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=9)
    out = tmp_path / "out"

    def stop(done, total, label):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manga2music.score([tmp_path / "ch"], out, vision_model="llava:13b", music_model="builtin",
                          config=manga2music.RunConfig(vision_options={"base_url": openai_server.url}),
                          callbacks=manga2music.Callbacks(step=stop))
    asked = len(openai_server.requests)
    queue_chat_score(openai_server, 3, 3)
    said = []
    made = manga2music.score([tmp_path / "ch"], out, callbacks=manga2music.Callbacks(
        log=lambda level, message: said.append(message)))
    assert made["sections"][0]["status"] == "ok", made
    assert made["sections"][0]["vision_model"] == "llava:13b", said
    assert len(openai_server.requests) > asked
    assert any("llava:13b" in m and "as the run stopped before was asked" in m for m in said), said


def test_a_chat_models_reading_is_kept_when_the_score_fails_and_the_manifest_counts_every_call(tmp_path,  # noqa: F811
                                                                                             openai_server):
    """A chapter whose score failed after the model read its pages (here its first scene's call; Ctrl-C while
    composing is the same) kept nothing: the rerun sent every page again.  And the manifest counted only the page
    entries' call: the direction's and the scenes' tokens and their cost were left out."""
    from chapters import chat_score_replies
    from openai_server import Fail

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=9)
    out = tmp_path / "out"
    args = ("score", tmp_path / "ch", "-o", out, "--base-url", openai_server.url, "--vision-model", "gpt-4o-mini",
            "--music-model", "builtin", "--seed", "1")
    replies = chat_score_replies(3, 3)
    openai_server.queue(*replies[:2], Fail(400, "The scene could not be described"))
    failed = cli(*args, timeout=300, env=cli_env(OPENAI_API_KEY="sk-test-not-a-real-key-1234"))
    assert failed.returncode != 0 and "could not be described" in failed.stderr
    assert len(openai_server.requests) == 3
    (entry,) = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]
    assert entry["status"] == "failed" and entry["usage"] == {"prompt_tokens": 200, "completion_tokens": 40}  # the
    # pages' reading was paid for: the failed chapter's entry said null
    openai_server.queue(*replies[2:])
    made = cli(*args, timeout=300, env=cli_env(OPENAI_API_KEY="sk-test-not-a-real-key-1234"))
    assert made.returncode == 0, made.stderr
    again = openai_server.requests[3:]
    assert [len(r.images) for r in again] == [0, 0]  # the two scenes' words only: the pages were read once
    (entry,) = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]
    assert entry["usage"] == {"prompt_tokens": 400, "completion_tokens": 80}  # 2 calls reading, 2 describing
    assert entry["cost_usd"] == pytest.approx((400 * 0.15 + 80 * 0.60) / 1e6)


def test_compose_of_a_scored_folder_does_not_take_the_scenes_for_sections(scored, tmp_path):
    """`compose OUT -o OUT` after `score` composed each scene's text as a section of its own (`ch1.scene01.wav`,
    `.json`, `.mid` and a manifest entry): they are the score's cues' words, not descriptions of sections."""
    import shutil

    _, out, _, _, _ = scored
    work = shutil.copytree(out, tmp_path / "out")
    (work / "notes.txt").write_text("Soft piano at 70 BPM in C major, warm and slow.\n", encoding="utf-8")
    result = cli("compose", work, "-o", work, "--model", "builtin", "--duration", "1", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["this_run"] == ["notes"]
    assert not list(work.glob("ch1.scene01.json")) and not list(work.glob("ch1.scene01.wav"))


def test_the_score_fades_out_at_its_end_instead_of_stopping_dead(scored):
    """The last cue's tail is not in the score (it would outlast the last page), and the score stopped there at full
    level, mid-note: a click and a cut-off at the end of every chapter."""
    _, out, _, sheet, _ = scored
    score, sr = sf.read(out / sheet.score_file, dtype="float32", always_2d=True)
    level = lambda a: float(np.sqrt(np.mean(a ** 2)))  # noqa: E731
    before = level(score[-5 * sr:-3 * sr])
    assert before > 0.01  # music plays up to the fade
    assert level(score[-sr // 10:]) < 0.1 * before and float(np.abs(score[-1]).max()) < 1e-3


def test_pages_given_one_by_one_are_told_to_be_chapters_of_their_own(tmp_path):
    """`score ch/*.jpg` (the shell gives the pages one by one) made seven one-page scores without a word."""
    make_chapter(tmp_path / "ch", [("calm", 2)], seed=2)
    pages = sorted((tmp_path / "ch").iterdir())
    result = cli("score", *pages, "-o", tmp_path / "out", *BUILTIN, "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "2 page images were given one by one" in " ".join(result.stderr.split())


def test_a_score_that_failed_on_a_later_scene_asks_only_that_scenes_music_again(tmp_path, openai_server):  # noqa: F811
    """A chat model's score that failed (or was stopped) after its first scene's music was written asked for every
    scene's words again on the rerun; it asks for the scene that has none, and its usage still counts every call."""
    from chapters import chat_score_replies
    from openai_server import Fail

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=9)
    out = tmp_path / "out"
    args = ("score", tmp_path / "ch", "-o", out, "--base-url", openai_server.url, "--vision-model", "llava:13b",
            "--music-model", "builtin", "--seed", "1")
    replies = chat_score_replies(3, 3)
    openai_server.queue(*replies[:3], Fail(400, "The scene could not be described"))
    failed = cli(*args, timeout=300)
    assert failed.returncode != 0 and "could not be described" in failed.stderr
    assert len(openai_server.requests) == 4
    openai_server.queue(replies[3])
    made = cli(*args, timeout=300)
    assert made.returncode == 0, made.stderr
    (again,) = openai_server.requests[4:]  # the second scene's words only
    assert not again.images and "fierce" in json.dumps(again.body)
    assert "1 answer the model gave a run that did not finish was used, not asked again" in made.stderr
    sheet = json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))
    assert "Gentle koto" in json.dumps(sheet) and "Pounding taiko" in json.dumps(sheet)
    (entry,) = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]
    assert entry["usage"] == {"prompt_tokens": 400, "completion_tokens": 80}  # 4 calls, each 100 + 20
    assert not list((out / ".manga2music" / "answers").glob("*/*"))


def test_too_few_page_entries_are_asked_once_more_and_never_kept_for_a_rerun(tmp_path, openai_server):  # noqa: F811
    """A chat model that gave 1 entry for 3 pages failed the chapter, and its answer was kept: every rerun replayed
    it and failed the same way without asking the model (fixed server or not) until --force.  It is now asked once
    more, as for an answer that is not JSON, and an answer short of entries is never kept."""
    import json as _json

    from chapters import chat_score_replies
    from openai_server import Reply

    make_chapter(tmp_path / "ch", [("calm", 3)], seed=9)
    out = tmp_path / "out"
    args = ("score", tmp_path / "ch", "-o", out, "--base-url", openai_server.url, "--vision-model", "llava:13b",
            "--music-model", "builtin", "--seed", "1")
    short = Reply(_json.dumps({"pages": [{"page": 1, "mood": "calm", "intensity": 1, "scene_change": True,
                                          "why": "a room"}]}))
    openai_server.queue(short, short)
    failed = cli(*args, timeout=300)
    assert failed.returncode != 0 and "gave 1 entries for 3 pages" in failed.stderr, failed.stderr[-1500:]
    assert len(openai_server.requests) == 2  # asked once more
    assert "3 pages" in _json.dumps(openai_server.requests[1].body)
    openai_server.queue(short, *chat_score_replies(3, 0)[:3])  # short once, then right
    made = cli(*args, timeout=300)
    assert made.returncode == 0, made.stderr[-1500:]
    assert len(openai_server.requests) == 2 + 4  # the kept answer was not replayed: asked, retried, then the rest
    assert "was used, not asked again" not in made.stderr


def test_a_chat_scores_cut_off_answers_and_a_server_without_structured_output_are_said(tmp_path,  # noqa: F811
                                                                                        openai_server):
    """`score` with a chat model kept a scene description cut off at the token limit ("... strings and.") without
    a word, asked a direction cut off again with the same room (cut off again), and never said that the server takes
    no structured output (`describe` says each of these)."""
    import json as _json

    from chapters import chat_score_replies
    from openai_server import Fail, Reply

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=9)
    entries, direction, calm, fierce = chat_score_replies(3, 3)
    openai_server.queue(Fail(400, "response_format is not supported"), entries,
                        Reply('{"key": "E minor", "instruments": ["koto"', finish_reason="length"), direction,
                        Reply("Gentle koto and soft strings, 68 BPM in E minor, with a slow", finish_reason="length"),
                        fierce)
    made = cli("score", tmp_path / "ch", "-o", tmp_path / "out", "--base-url", openai_server.url, "--vision-model",
               "llava:13b", "--music-model", "builtin", "--seed", "1", timeout=300)
    assert made.returncode == 0, made.stderr[-1500:]
    assert made.stderr.count("the server does not support structured output") == 1, made.stderr  # of the server:
    # said once a run, not once a chapter, as `run` says it
    caps = [r.body.get("max_tokens") or r.body.get("max_completion_tokens") for r in openai_server.requests]
    assert caps[3] == 2 * caps[2], caps  # the direction cut off: asked again with twice the room
    assert "ch: scene 1: the description was cut off at the token limit" in made.stderr, made.stderr
    text = (tmp_path / "out" / "ch.scene01.txt").read_text(encoding="utf-8")
    assert "with a slow" not in text and text.startswith("Gentle koto")
    record = _json.loads((tmp_path / "out" / "ch.json").read_text(encoding="utf-8"))
    assert any("structured output" in w for w in record["chapter_reading"]["warnings"])


def test_a_scene_text_the_user_deleted_is_not_left_in_the_record(tmp_path):
    """Deleting NAME.scene03.txt (the way to get the tool's words back) while the chapter also lost that scene's
    pages left the record listing NAME.scene03.txt, gone, for good: a record lists the files that are there."""
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3), ("calm", 3)], seed=4)
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n4\n7\n", encoding="utf-8")
    out = tmp_path / "out"
    made = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--scenes", scenes, "--seed", "1", timeout=300)
    assert made.returncode == 0, made.stderr[-1500:]
    assert (out / "ch.scene03.txt").exists() and not record_mismatches(out)
    (out / "ch.scene03.txt").unlink()
    for page in ("007.png", "008.png", "009.png"):
        (tmp_path / "ch" / page).unlink()
    again = cli("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "1", timeout=300)
    assert again.returncode == 0, again.stderr[-1500:]
    assert record_mismatches(out) == [], again.stderr[-1500:]


def test_a_format_switch_cut_short_is_finished_by_a_plain_rerun(tmp_path):
    """`score --format flac` killed (or stopped) while it removed the WAVs left a record that named the old format
    (the FLACs only as landed): a rerun without --format went back to WAV, and the folder held both sets for good."""
    from manga2music.outputs import file_sha256

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=5)
    out = tmp_path / "out"
    args = ("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "1")
    assert cli(*args, timeout=300).returncode == 0
    wav_record = (out / "ch.json").read_text(encoding="utf-8")
    wavs = {p.name: p.read_bytes() for p in out.glob("ch.*.wav")}
    assert cli(*args, "--format", "flac", timeout=300).returncode == 0
    flacs = sorted(p.name for p in out.glob("ch.*.flac"))
    # as the kill left it: the FLACs in place and pending, the score and one cue of WAV not yet removed, the record
    # of the WAV score
    for name in ("ch.score.wav", "ch.cue01.wav"):
        (out / name).write_bytes(wavs[name])
    record = json.loads(wav_record)
    record["pending"] = {p.name: file_sha256(p) for p in out.glob("ch.*")  # every file the switch wrote
                         if p.name != "ch.json" and p.suffix != ".wav"}
    (out / "ch.json").write_text(json.dumps(record), encoding="utf-8")
    again = cli(*args, timeout=300)
    assert again.returncode == 0, again.stderr[-1500:]
    assert not list(out.glob("ch.*.wav")), sorted(p.name for p in out.iterdir())
    assert sorted(p.name for p in out.glob("ch.*.flac")) == flacs
    assert json.loads((out / "ch.json").read_text(encoding="utf-8"))["score"]["format"] == "flac"
    assert record_mismatches(out) == []


def test_turning_normalisation_on_or_off_makes_the_cues_again(tmp_path):
    """A rerun with --no-normalize added (or --normalize) wrote the score at the new loudness but kept the cues, their
    loops and the read-along page's audio at the old one: the score was joined from cues of the other setting."""
    import pyloudnorm

    make_chapter(tmp_path / "in" / "ch", [("calm", 2), ("action", 2)], seed=3)
    out = tmp_path / "out"

    def lufs(path: Path) -> float:
        audio, sr = sf.read(path, dtype="float64", always_2d=True)
        return pyloudnorm.Meter(sr).integrated_loudness(audio)

    def cues() -> list[Path]:
        return sorted(out.glob("ch.cue0?.wav"))

    first = cli("score", tmp_path / "in" / "ch", "-o", out, *BUILTIN, "--seed", "5", "--no-normalize", timeout=300)
    assert first.returncode == 0, first.stderr
    assert len(cues()) == 2 and all(abs(lufs(c) + 14.0) > 0.5 for c in cues())  # as composed: the test can fail
    assert json.loads((out / "ch.json").read_text(encoding="utf-8"))["score"]["normalize"] is False
    second = cli("score", tmp_path / "in" / "ch", "-o", out, *BUILTIN, "--seed", "5", "--normalize", timeout=300)
    assert second.returncode == 0, second.stderr
    assert [round(lufs(c), 1) for c in cues()] == [-14.0, -14.0]
    assert json.loads((out / "ch.json").read_text(encoding="utf-8"))["score"]["normalize"] is True
    third = cli("score", tmp_path / "in" / "ch", "-o", out, *BUILTIN, "--seed", "5", "--no-normalize", timeout=300)
    assert third.returncode == 0, third.stderr
    assert all(abs(lufs(c) + 14.0) > 0.5 for c in cues())
    made = {c.name: c.read_bytes() for c in cues()}  # left out: as the score there was made (a plain rerun
    plain = cli("score", tmp_path / "in" / "ch", "-o", out, *BUILTIN, "--seed", "5", timeout=300)  # made its
    assert plain.returncode == 0 and "--no-normalize, as the music there was made" in plain.stderr, plain.stderr
    assert {c.name: c.read_bytes() for c in cues()} == made  # cues again at -14 LUFS)


def test_a_chapter_named_after_anothers_files_does_not_write_over_them(tmp_path):
    """Chapters X and X.cues: X's cue sheet X.cues.json was written over by the record of X.cues (both "ok"), and
    every later run failed X with "X.cues.json was changed since manga2music wrote it"."""
    make_chapter(tmp_path / "in" / "X", [("calm", 1)], seed=1)
    make_chapter(tmp_path / "in" / "X.cues", [("action", 1)], seed=2)
    out = tmp_path / "out"
    first = cli("score", tmp_path / "in", "-o", out, *BUILTIN, "--json", timeout=300)
    assert first.returncode == 0, first.stderr
    names = sorted(e["name"] for e in json.loads(first.stdout)["sections"])
    assert names == ["X", "X.cues-2"]
    CueSheet.model_validate(json.loads((out / "X.cues.json").read_text(encoding="utf-8")))  # X's, as it was written
    assert json.loads((out / "X.cues-2.json").read_text(encoding="utf-8"))["section"] == "X.cues-2"
    again = cli("score", tmp_path / "in", "-o", out, *BUILTIN, "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    assert [e["status"] for e in json.loads(again.stdout)["sections"]] == ["skipped", "skipped"]


def test_a_rerun_that_composes_every_cue_again_says_why(scored, tmp_path):
    """`score` again with another --seed composed every cue again and said nothing: the "composing again" line was
    only for a rerun that keeps some cues.  A user who changed a setting should see that the whole score is made
    again, and which setting made it."""
    import shutil

    root, out, _, sheet, _ = scored
    work = tmp_path / "out"
    shutil.copytree(out, work)
    reseeded = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, *KEEP_LEVEL, "--seed", "77", timeout=300)
    assert reseeded.returncode == 0, reseeded.stderr
    assert "ch1: composing every cue again (a new seed)" in reseeded.stderr
    louder = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, "--seed", "77", "--normalize", timeout=300)
    assert louder.returncode == 0, louder.stderr
    assert "ch1: composing every cue again (loudness normalisation turned on)" in louder.stderr
    several = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, "--seed", "77", "--no-normalize",
                  "--reading-speed", "0.5", "--longest-cue", "20", timeout=300)  # each change said, not the first
    assert several.returncode == 0, several.stderr
    assert "ch1: composing every cue again (loudness normalisation turned off, the reading speed changed (1 → 0.5), " \
           "the longest cue changed)" in " ".join(several.stderr.split()), several.stderr
    # a page's picture changed (its scene's seed comes from its pages' pixels), the chapter's seed as it was: said
    # as such, not "a new seed", which read as a random re-roll
    chapter = tmp_path / "ch"
    shutil.copytree(root / "in" / "ch1", chapter)
    first = cli("score", chapter, "-o", tmp_path / "o2", *BUILTIN, "--seed", "5", timeout=300)
    assert first.returncode == 0, first.stderr
    page = sorted(p for p in chapter.iterdir() if p.suffix == ".png")[-1]
    from PIL import Image

    Image.open(page).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(page)
    edited = cli("score", chapter, "-o", tmp_path / "o2", *BUILTIN, timeout=300)
    assert edited.returncode == 0, edited.stderr
    assert "(its pages' pictures changed)" in edited.stderr and "a new seed" not in edited.stderr, edited.stderr
    again = cli("score", root / "in" / "ch1", "-o", work, *BUILTIN, "--seed", "77", timeout=300)
    assert again.returncode == 0 and "composing" not in again.stderr  # nothing changed: nothing said


def test_a_lossy_score_whose_one_scene_was_edited_says_why_the_others_are_made_again(tmp_path):
    """An mp3 score with one scene description edited said "scene 1 (a new file format); scene 2 (your
    description)...", though the format was mp3 before and after: an mp3 cue is not joined again from its file (its
    samples are not the ones composed), so it is made again from its seed, the same music."""
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n3\n", encoding="utf-8")  # two scenes of a short chapter (kept in the record for the rerun)
    out = tmp_path / "out"
    first = cli("score", SAMPLES / "action", "-o", out, *BUILTIN, *KEEP_LEVEL, "--format", "mp3", "--scenes", scenes,
                timeout=300)
    assert first.returncode == 0, first.stderr
    scene = out / "action.scene02.txt"
    scene.write_text("a lone flute, 70 BPM\n", encoding="utf-8")
    again = cli("score", SAMPLES / "action", "-o", out, *BUILTIN, *KEEP_LEVEL, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "a new file format" not in again.stderr and "scene 2 (your description)" in again.stderr, again.stderr
    assert "scene 1 (the same music again: an mp3 cue is not joined from its file)" in again.stderr, again.stderr


def test_a_score_made_again_with_other_scenes_says_the_scenes_changed(tmp_path):
    """`score ch --scenes s.txt`, then `score ch` (the scenes found by reading): every cue was made again "(its
    description changed)", which the user had not touched; what changed is which pages each scene has."""
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n3\n", encoding="utf-8")
    out = tmp_path / "out"
    given = cli("score", SAMPLES / "action", "-o", out, *BUILTIN, "--scenes", scenes, timeout=300)
    assert given.returncode == 0, given.stderr
    read = cli("score", SAMPLES / "action", "-o", out, *BUILTIN, "--scenes", "auto", timeout=300)
    assert read.returncode == 0, read.stderr
    assert "action: composing every cue again (the scenes changed)" in read.stderr, read.stderr
    assert "description changed" not in read.stderr


def test_a_scenes_file_edited_since_is_said_when_its_kept_scenes_are_used(tmp_path):
    """`score ch --scenes s.txt`, s.txt edited, then `score ch`: "the scenes given before (s.txt) are kept" and
    the edit was not used, the line naming the file as if it had been read.  It now says the file was edited
    and how to read it again; the scenes read then stay (a rerun keeps what the chapter was made with)."""
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n3\n", encoding="utf-8")
    make_chapter(tmp_path / "lib" / "ch", [("calm", 3), ("action", 3)], seed=2)
    out = tmp_path / "out"
    args = ("score", tmp_path / "lib" / "ch", "-o", out, *BUILTIN)
    assert cli(*args, "--scenes", scenes, timeout=300).returncode == 0
    again = cli(*args, "--json", timeout=300)
    assert "ch: the scenes given before (scenes.txt) are kept" in again.stderr, again.stderr  # not edited
    scenes.write_text("1\n3\n5\n", encoding="utf-8")
    again = cli(*args, "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    assert [e["status"] for e in json.loads(again.stdout)["sections"]] == ["skipped"], again.stderr
    assert "ch: scenes.txt was edited since its scenes were read from it: the scenes read then are kept " \
           f"(--scenes {scenes} reads it again; --scenes auto finds them in the pages)" in again.stderr, again.stderr
    read = cli(*args, "--scenes", scenes, timeout=300)
    assert read.returncode == 0, read.stderr
    sheet = json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))
    assert [s["first_page"] for s in sheet["scenes"]] == [1, 3, 5]


def test_a_rerun_without_scenes_or_reading_speed_keeps_those_it_was_made_with(tmp_path):
    """`score ch --scenes s.txt --reading-speed 1.5`, then `score ch` after editing something else: the scenes went
    back to those found in the pages and the speed to 1, every cue was composed again, and the lengths the scenes
    file gave a video were lost, for a flag left out (`run` keeps a --duration left out)."""
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n002.png 0:20\n", encoding="utf-8")
    out = tmp_path / "out"
    given = cli("score", SAMPLES / "action", "-o", out, *BUILTIN, "--scenes", scenes, "--reading-speed", "1.5",
                timeout=300)
    assert given.returncode == 0, given.stderr
    sheet = json.loads((out / "action.cues.json").read_text(encoding="utf-8"))
    scenes.unlink()  # kept in the record, not read again from where it was
    again = cli("score", SAMPLES / "action", "-o", out, *BUILTIN, "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    assert [e["status"] for e in json.loads(again.stdout)["sections"]] == ["skipped"], again.stderr
    assert "action: the scenes given before (scenes.txt) are kept; --scenes auto finds them in the pages" \
        in again.stderr, again.stderr
    assert "action: read at --reading-speed 1.5, as its last score was" in again.stderr, again.stderr  # said too
    assert json.loads((out / "action.cues.json").read_text(encoding="utf-8")) == sheet
    # a new reading speed alone keeps the scenes; --scenes auto goes back to those found in the pages
    faster = cli("score", SAMPLES / "action", "-o", out, *BUILTIN, "--reading-speed", "2", timeout=300)
    assert faster.returncode == 0, faster.stderr
    now = json.loads((out / "action.cues.json").read_text(encoding="utf-8"))
    assert [s["first_page"] for s in now["scenes"]] == [1, 2] and abs(now["scenes"][1]["duration"] - 20) < 2
    found = cli("score", SAMPLES / "action", "-o", out, *BUILTIN, "--scenes", "auto", timeout=300)
    assert found.returncode == 0, found.stderr
    now = json.loads((out / "action.cues.json").read_text(encoding="utf-8"))
    assert now["reading_speed"] == 2 and [s["first_page"] for s in now["scenes"]] != [1, 2]
    assert "are kept" not in found.stderr


def test_the_joining_step_of_a_score_reaches_its_end():
    """A progress bar fed by the step callback stopped at "joining 1 cues 0/1": the step never reached 1/1."""
    import tempfile

    import manga2music
    from manga2music.pipeline import Callbacks

    steps: list[tuple[int, int, str]] = []
    with tempfile.TemporaryDirectory() as out:
        manga2music.score([Path(__file__).resolve().parent.parent / "samples" / "calm"], out, vision_model="builtin",
                          music_model="builtin", callbacks=Callbacks(step=lambda *a: steps.append(a)))
    joining = [s for s in steps if s[2].startswith(("joining", "joined"))]
    assert joining[0][0] == 0 and joining[-1][0] == joining[-1][1] > 0, joining
    assert all(a[0] < b[0] for a, b in zip(joining, joining[1:])), joining  # it moves at each cue, to the score's file
    assert len(joining) >= 4, joining


def test_stop_reaches_a_score_while_its_cues_are_joined_not_only_at_its_end(tmp_path):
    """The web UI's Stop during a score's last steps (each cue's files and loop, the join, the score's loudness and
    encoding: half of a builtin score's time) was honoured only when the score was done; its bar sat at the end."""
    import threading

    import manga2music
    from manga2music.pipeline import Callbacks
    from manga2music.threads import Stopped, stopping_on

    stop = threading.Event()
    labels: list[str] = []

    def step(done: int, total: int, label: str) -> None:
        labels.append(label)
        if label.startswith("joining"):
            stop.set()  # the Stop button, pressed once the cues are made

    out = tmp_path / "out"
    with stopping_on(stop), pytest.raises(Stopped):
        manga2music.score([Path(__file__).resolve().parent.parent / "samples" / "action"], out,
                          vision_model="builtin", music_model="builtin", callbacks=Callbacks(step=step))
    assert not [label for label in labels if label.startswith("joined")], labels
    assert not list(out.glob("*.score.*")) and not list(out.glob("*.read.html"))
    again = cli("score", Path(__file__).resolve().parent.parent / "samples" / "action", "-o", out,
                "--vision-model", "builtin", "--music-model", "builtin", "--json")
    assert again.returncode == 0, again.stderr
    assert [e["status"] for e in json.loads(again.stdout)["sections"]] == ["ok"] and list(out.glob("*.score.wav"))


def test_a_chapter_moved_since_its_score_is_located_where_it_is_now(tmp_path):
    """`mv lib library` and `score library -o OUT` again: nothing to redo, and the record kept locating every page
    under lib/, which was gone."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    shutil.copytree(Path(__file__).resolve().parent.parent / "samples" / "calm", lib / "ch")
    first = cli("score", lib, "-o", out, "--vision-model", "builtin", "--music-model", "builtin", "--json")
    assert first.returncode == 0, first.stderr
    lib.rename(tmp_path / "library")
    again = cli("score", tmp_path / "library", "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
                "--json")
    assert again.returncode == 0, again.stderr
    assert [e["status"] for e in json.loads(again.stdout)["sections"]] == ["skipped"]
    pages = json.loads((out / "ch.json").read_text(encoding="utf-8"))["pages"]
    assert pages and all(Path(p["source"]).is_file() and "library" in p["source"] for p in pages)


def test_compose_on_a_score_folder_says_its_scene_descriptions_are_for_score(tmp_path):
    """`compose OUT -o OUT` on a score's folder said "no .txt description found in OUT", though OUT held the scenes'
    descriptions (`ch.scene01.txt`...), which compose leaves to `score`."""
    out = tmp_path / "out"
    made = cli("score", Path(__file__).resolve().parent.parent / "samples" / "calm", "-o", out, "--vision-model",
               "builtin", "--music-model", "builtin")
    assert made.returncode == 0, made.stderr
    assert list(out.glob("*.scene01.txt"))
    said = cli("compose", out, "-o", out, "--model", "builtin")
    assert said.returncode == 2 and one_line_error(said.stderr), said.stderr
    assert "holds only the scene descriptions of a score" in said.stderr and "score the chapter again" in said.stderr
    # one scene's file given alone made a stray track of its own (calm.scene01.wav), beside a cue left as it was
    scene = next(out.glob("*.scene01.txt"))
    alone = cli("compose", scene, "-o", out, "--model", "builtin")
    assert alone.returncode == 2 and one_line_error(alone.stderr), alone.stderr
    assert f"{scene.name} is scene 1 of the score of calm" in alone.stderr and "score the chapter again" in alone.stderr
    assert not list(out.glob("*.scene01.wav"))


def test_scenes_kept_from_the_last_score_start_on_the_same_pages_after_pages_are_added_or_removed(tmp_path):
    """A scenes file gave "1" and "3" to a chapter missing its page 002: scene 2 started on 004.png.  Once 002.png
    came, a rerun (the scenes kept) started scene 2 on 003.png, the page now third, with no word; a page removed
    moved them the other way."""
    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=2)
    missing = tmp_path / "002.png"
    shutil.move(tmp_path / "ch" / "002.png", missing)
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n3 40\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "3")

    def scenes_made() -> list[list[str]]:
        return [s["pages"] for s in json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))["scenes"]]

    assert cli(*args, "--scenes", scenes, timeout=300).returncode == 0
    assert scenes_made() == [["001.png", "003.png"], ["004.png", "005.png", "006.png"]]
    shutil.move(missing, tmp_path / "ch" / "002.png")
    added = cli(*args, timeout=300)
    assert added.returncode == 0, added.stderr
    assert scenes_made() == [["001.png", "002.png", "003.png"], ["004.png", "005.png", "006.png"]]
    assert json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))["scenes"][1]["given_s"] == 40
    (tmp_path / "ch" / "003.png").unlink()
    removed = cli(*args, timeout=300)
    assert removed.returncode == 0, removed.stderr
    assert scenes_made() == [["001.png", "002.png"], ["004.png", "005.png", "006.png"]]
    (tmp_path / "ch" / "004.png").unlink()  # the page the second scene started on
    gone = cli(*args, timeout=300)
    assert gone.returncode == 0, gone.stderr
    assert "ch: 004.png, where a scene of scenes.txt (kept from the last score) started, is gone; the scenes " \
           "before run on" in " ".join(gone.stderr.split()), gone.stderr
    assert scenes_made() == [["001.png", "002.png", "005.png", "006.png"]]


def test_scenes_kept_from_the_last_score_stay_on_their_pages_when_the_pages_are_renamed(tmp_path):
    """Pages renamed (001.png -> page_001.png): the kept scenes file's pages were said to be gone and its scenes
    found in the pages instead, every cue composed again."""
    make_chapter(tmp_path / "ch", [("calm", 2), ("action", 2)], seed=4)
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("1\n3\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ("score", tmp_path / "ch", "-o", out, *BUILTIN, "--seed", "3")
    assert cli(*args, "--scenes", scenes, timeout=300).returncode == 0
    for page in sorted((tmp_path / "ch").glob("*.png")):
        page.rename(page.with_name("page_" + page.name))
    again = cli(*args, timeout=300)
    assert again.returncode == 0 and "gone" not in again.stderr, again.stderr
    made = [s["pages"] for s in json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))["scenes"]]
    assert made == [["page_001.png", "page_002.png"], ["page_003.png", "page_004.png"]]


def test_cues_kept_from_a_stopped_score_that_no_score_took_for_a_week_are_let_go(tmp_path):
    """A score stopped while composing keeps its cues (float32: a 40-cue MusicGen chapter's are hundreds of MB);
    one never scored again (or scored with other descriptions since) kept them for good, unseen in a hidden folder."""
    import os
    import time

    from manga2music.composers.base import Track
    from manga2music.kept_cues import forget_stale_cues, keep_cue, kept_cue

    track = Track(np.full((32000, 2), 0.25, np.float32), 32000, midi=b"MThd", info={"tempo_bpm": 90})
    keep_cue(tmp_path, "Ch 1", "old-chapter-cue", track)
    keep_cue(tmp_path, "Ch 2", "this-weeks-cue", track)
    week_ago = time.time() - 8 * 86400
    old = next((tmp_path / ".manga2music" / "cues").glob("*/old-chapter-cue*"))
    os.utime(old, (week_ago, week_ago))
    forget_stale_cues(tmp_path)
    assert kept_cue(tmp_path, "Ch 1", "old-chapter-cue", 32000) is None
    again = kept_cue(tmp_path, "Ch 3", "this-weeks-cue", 32000)  # Ch 2 renamed since: found in its old folder
    assert again is not None and np.array_equal(again.audio, track.audio) and again.midi == b"MThd"
    assert again.info == {"tempo_bpm": 90} and kept_cue(tmp_path, "Ch 2", "this-weeks-cue", 44100) is None  # rate


def test_a_written_score_lets_go_of_the_cues_a_stopped_score_of_its_chapter_kept_that_it_did_not_take(tmp_path):
    """A score stopped, then the chapter scored with another --seed: the stopped score's cue stayed (float32, tens
    of MB a cue with MusicGen), and a later run with the first seed said a cue was "kept from the score that did
    not finish" after a score had finished."""
    from manga2music.composers.base import Track
    from manga2music.kept_cues import forget_cues, keep_cue, kept_cue

    track = Track(np.zeros((3200, 1), np.float32), 32000)
    keep_cue(tmp_path, "ch1", "seed-7-scene-1", track)
    keep_cue(tmp_path, "old name", "seed-8-scene-2", track)  # kept under the chapter's name before a rename
    keep_cue(tmp_path, "ch2", "another-chapters-cue", track)
    forget_cues(tmp_path, "ch1", ["seed-8-scene-1", "seed-8-scene-2"])  # ch1 scored with --seed 8: written
    assert kept_cue(tmp_path, "ch1", "seed-7-scene-1", 32000) is None
    assert kept_cue(tmp_path, "ch1", "seed-8-scene-2", 32000) is None  # taken from its old name's folder: gone too
    assert kept_cue(tmp_path, "ch2", "another-chapters-cue", 32000) is not None  # another chapter's stays
    forget_cues(tmp_path, "ch2", [])
    assert not (tmp_path / ".manga2music" / "cues").exists()  # no empty folder left behind


@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_a_lossy_scores_cue_loop_and_score_files_decode_under_the_ceiling_from_clipped_music(tmp_path, monkeypatch,
                                                                                              fmt):
    """A composer's take with sharp, clipped hits over a quiet bed (drums; an untrained diffusion model's crackle):
    limited to the lossy -2 dBFS ceiling before encoding, its cues, loops and score decoded at up to +2 dBFS (a
    tiny ACE-Step's MP3 loop at -0.32), and players that decode to integers clip them.  Every file is checked as
    decoded."""
    import manga2music
    from manga2music.composers.builtin import BuiltinComposer
    from manga2music.options import RunConfig

    played = BuiltinComposer.compose

    def distorted(self, requests, *, progress=None):  # the builtin composer's takes, with a 3 ms hit every beat
        tracks, rng = played(self, requests, progress=progress), np.random.default_rng(5)
        for track in tracks:
            x, hit = track.audio * 0.3, 3 * track.sample_rate // 1000
            for at in range(0, len(x), track.sample_rate // 4):
                x[at:at + hit] += rng.normal(0, 3, x[at:at + hit].shape)
            track.audio = np.clip(x, -1, 1).astype(np.float32)
        return tracks

    monkeypatch.setattr(BuiltinComposer, "compose", distorted)
    make_chapter(tmp_path / "ch", [("calm", 2), ("action", 2)], seed=3)
    manifest = manga2music.score([tmp_path / "ch"], tmp_path / "out", vision_model="builtin", music_model="builtin",
                                 config=RunConfig(seed=2, fmt=fmt, longest_cue=8.0))
    assert manifest["sections"][0]["status"] == "ok", manifest["sections"][0]
    files = sorted((tmp_path / "out").glob(f"ch.*.{fmt}"))
    assert any(".loop." in f.name for f in files) and any(".score." in f.name for f in files)
    for path in files:
        audio, _ = sf.read(path, dtype="float32", always_2d=True)
        assert -6.0 < 20 * np.log10(np.abs(audio).max()) <= -1.0, path.name


def test_a_score_cancelled_from_its_progress_keeps_the_cue_the_progress_said_was_made(tmp_path):
    """A host program cancels from its progress callback (the documented way), right after "1 of 2 cues made":
    the builtin composer told the progress before it handed the cue over to be kept, so that cue was lost, and with
    none kept the plain rerun drew a new seed and made another score, without a "resuming" line."""
    import manga2music
    from manga2music.jobs import Callbacks
    from manga2music.kept_cues import _folder
    from manga2music.options import RunConfig

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=2)
    out = tmp_path / "out"

    def step(done, total, label):
        if label.startswith("ch scene") and done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manga2music.score([tmp_path / "ch"], out, vision_model="builtin", music_model="builtin",
                          config=RunConfig(seed=5), callbacks=Callbacks(step=step))
    assert len(list(_folder(out, "ch").glob("*.npz"))) == 1
    said = []
    manga2music.score([tmp_path / "ch"], out, vision_model="builtin", music_model="builtin",
                      callbacks=Callbacks(log=lambda level, text: said.append(text)))
    assert any("resuming the score stopped before, with seed=5" in s for s in said), said
    assert json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))["seed"] == 5


def _a_score_stopped_at_its_first_cue(tmp_path: Path, monkeypatch, config=None) -> Path:
    """The output folder of a score of ``tmp_path/ch`` (two scenes, three pages each) stopped by Ctrl-C as its first
    cue was composed: nothing of its music made."""
    import manga2music
    from manga2music.composers.builtin import BuiltinComposer

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3)], seed=2)
    out = tmp_path / "out"

    def stopped(self, requests, *, progress=None, made=None):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(BuiltinComposer, "compose", stopped)
        with pytest.raises(KeyboardInterrupt):
            manga2music.score([tmp_path / "ch"], out, vision_model="builtin", music_model="builtin", config=config)
    return out


def test_a_score_stopped_during_its_first_cue_resumes_with_its_seed_and_longest_cue(tmp_path, monkeypatch):
    """Ctrl-C while the first cue was composed (a minute of MusicGen on a CPU): no cue was kept yet, so the plain
    rerun the stop line asks for drew a new seed and dropped --longest-cue, and made another score than the one
    asked for, without a word."""
    import manga2music
    from manga2music.jobs import Callbacks
    from manga2music.options import RunConfig

    out = _a_score_stopped_at_its_first_cue(tmp_path, monkeypatch, RunConfig(seed=9, longest_cue=10.0))
    said = []
    manga2music.score([tmp_path / "ch"], out, vision_model="builtin", music_model="builtin",
                      callbacks=Callbacks(log=lambda level, text: said.append(text)))
    assert any("resuming the score stopped before, with seed=9" in s and "longest_cue=10" in s for s in said), said
    sheet = json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))
    assert sheet["seed"] == 9 and all(s["cue_s"] <= 10.0 + 1e-6 for s in sheet["scenes"]), sheet["scenes"]


def test_a_page_changed_after_a_stopped_score_is_not_said_to_be_every_page_added(tmp_path, monkeypatch):
    """A score stopped before it was written, one page replaced, then the rerun: "reading the pages again: 6 pages
    added (001.png, 002.png, ...)": the stopped score's record lists no pages to compare with."""
    import shutil

    import manga2music
    from manga2music.jobs import Callbacks

    out = _a_score_stopped_at_its_first_cue(tmp_path, monkeypatch)
    pages = sorted((tmp_path / "ch").iterdir())
    shutil.copy(pages[-1], pages[1])  # one page replaced
    said = []
    manga2music.score([tmp_path / "ch"], out, vision_model="builtin", music_model="builtin",
                      callbacks=Callbacks(log=lambda level, text: said.append(text)))
    again = [s for s in said if "reading the pages again" in s]
    assert again and not any("added" in s for s in again), said


def test_a_chapter_named_like_a_file_of_a_chapter_there_does_not_write_over_it(tmp_path):
    """`score src/Ep`, then `score src/Ep.cues`: the second chapter's record was merged into Ep's cue sheet
    (Ep.cues.json), which no longer read as one, and Ep's next score failed "Ep.cues.json was changed since
    manga2music wrote it"; the other way round, Ep failed "Ep.cues.json exists and was not written by manga2music".
    The chapter that comes second is numbered, as it is when both are given at once."""
    import manga2music
    from manga2music.cuesheet import CueSheet

    shutil.copytree(SAMPLES / "action", tmp_path / "src" / "Ep")
    shutil.copytree(SAMPLES / "calm", tmp_path / "src" / "Ep.cues")
    builtin = dict(vision_model="builtin", music_model="builtin", config=manga2music.RunConfig(seed=1))
    def score(out, *chapters) -> list:
        manifest = manga2music.score([tmp_path / "src" / c for c in chapters], out, **builtin)
        return sorted((e["name"], e["status"]) for e in manifest["sections"] if e["name"] in manifest["this_run"])

    for first, second, out in (("Ep", "Ep.cues", tmp_path / "out"), ("Ep.cues", "Ep", tmp_path / "out2")):
        assert score(out, first) == [(first, "ok")]
        assert score(out, second) == [(f"{second}-2", "ok")]
        ep = "Ep" if first == "Ep" else "Ep-2"
        CueSheet.model_validate(json.loads((out / f"{ep}.cues.json").read_text(encoding="utf-8")))  # Ep's cue sheet
        assert score(out, first, second) == sorted([(first, "skipped"), (f"{second}-2", "skipped")])


def test_a_stopped_scores_settings_do_not_go_to_a_chapter_another_command_scores(tmp_path, monkeypatch):
    """A finished score in the folder, then `score S/Ch 2 --reading-speed 0.5` stopped, then `score S/Ch 3`: Ch 3,
    never in the stopped run, was scored at 0.5 "as the score stopped before was asked" (music 2 times as long as
    its reading).  The stop's settings stay its own chapter's: Ch 2's resume still takes them."""
    import manga2music
    import manga2music.audio as audio

    for k, name in enumerate(("calm", "action", "calm"), start=1):
        shutil.copytree(SAMPLES / name, tmp_path / "S" / f"Ch {k}")
    out = tmp_path / "out"
    builtin = dict(vision_model="builtin", music_model="builtin")
    manga2music.score([tmp_path / "S" / "Ch 1"], out, **builtin)
    real_encode = audio.encode_audio

    def stopped(*args, **kwargs):  # Ctrl-C while the chapter's files are written
        raise KeyboardInterrupt

    monkeypatch.setattr(audio, "encode_audio", stopped)
    with pytest.raises(KeyboardInterrupt):
        manga2music.score([tmp_path / "S" / "Ch 2"], out, **builtin, config=manga2music.RunConfig(reading_speed=0.5))
    monkeypatch.setattr(audio, "encode_audio", real_encode)
    lines: list[str] = []
    manga2music.score([tmp_path / "S" / "Ch 3"], out, callbacks=manga2music.Callbacks(
        log=lambda level, line: lines.append(line)))
    made = json.loads((out / "Ch 3.json").read_text(encoding="utf-8"))["score"]
    assert made["reading_speed"] == 1.0, lines
    assert not any("as the score stopped before was asked" in line for line in lines), lines
    manga2music.score([tmp_path / "S" / "Ch 2"], out)
    assert json.loads((out / "Ch 2.json").read_text(encoding="utf-8"))["score"]["reading_speed"] == 0.5


def test_a_plain_rerun_of_a_stopped_score_makes_the_chapters_it_did_not_start_as_it_was_asked(tmp_path, monkeypatch):
    """`score S --reading-speed 0.5 --format flac` stopped in its first chapter, then the plain `score S` a user makes
    to finish it: the first chapter resumed at 0.5 in FLAC (its own stopped settings), and the chapters it had not
    started were made at the usual pace, in WAV: one series at two paces and in two formats, unsaid."""
    import manga2music
    import manga2music.audio as audio

    for name in ("calm", "action"):
        shutil.copytree(SAMPLES / name, tmp_path / "S" / f"Ch {1 if name == 'calm' else 2}")
    out = tmp_path / "out"
    real_encode = audio.encode_audio

    def stopped(*args, **kwargs):  # Ctrl-C while the first chapter's files are written
        raise KeyboardInterrupt

    monkeypatch.setattr(audio, "encode_audio", stopped)
    with pytest.raises(KeyboardInterrupt):
        manga2music.score([tmp_path / "S"], out, vision_model="builtin", music_model="builtin",
                          config=manga2music.RunConfig(reading_speed=0.5, fmt="flac"))
    monkeypatch.setattr(audio, "encode_audio", real_encode)
    assert not list(out.glob("*.score.*"))
    lines: list[str] = []
    manga2music.score([tmp_path / "S"], out, callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
    for chapter in ("Ch 1", "Ch 2"):
        made = json.loads((out / f"{chapter}.json").read_text(encoding="utf-8"))["score"]
        assert (made["reading_speed"], made["format"]) == (0.5, "flac"), (chapter, lines)
        assert (out / f"{chapter}.score.flac").is_file() and not (out / f"{chapter}.score.wav").exists()
    assert "Ch 2: reading_speed=0.5, fmt='flac', as the score stopped before was asked (give a setting to change " \
        "it)" in lines, lines
    assert "score_stopped_with" not in json.loads((out / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("given", ["file", "auto"])
def test_a_plain_resume_of_a_stopped_score_keeps_the_scenes_it_was_given(tmp_path, monkeypatch, given):
    """`score ch --scenes sc.txt` stopped with its cues kept, then the plain `score ch` the stop line allows: it said
    "resuming the score stopped before ... as it was made", found scenes of its own in the pages, and let the cues
    kept for the user's scenes go; and `--scenes auto` over a file given to an earlier score was resumed with that
    file's scenes."""
    import manga2music
    import manga2music.audio as audio

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3), ("calm", 3)], seed=4)
    (tmp_path / "sc.txt").write_text("1\n5\n", encoding="utf-8")  # the user's scenes: pages 1-4 and 5-9
    out = tmp_path / "out"
    builtin = {"vision_model": "builtin", "music_model": "builtin"}
    if given == "auto":  # the last score was given the file; the stopped one was asked to find the scenes
        manga2music.score([tmp_path / "ch"], out, **builtin,
                          config=manga2music.RunConfig(seed=2, scenes_file=tmp_path / "sc.txt"))
        (tmp_path / "ch" / "010.png").write_bytes((tmp_path / "ch" / "009.png").read_bytes())  # a page added
    real_encode = audio.encode_audio

    def stopped(*args, **kwargs):  # Ctrl-C once every cue is composed and kept, while the files are written
        raise KeyboardInterrupt

    monkeypatch.setattr(audio, "encode_audio", stopped)
    asked = tmp_path / "sc.txt" if given == "file" else "auto"
    with pytest.raises(KeyboardInterrupt):
        manga2music.score([tmp_path / "ch"], out, **builtin, config=manga2music.RunConfig(seed=5, scenes_file=asked))
    monkeypatch.setattr(audio, "encode_audio", real_encode)
    lines: list[str] = []
    manga2music.score([tmp_path / "ch"], out, callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
    firsts = [s["first_page"] for s in json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))["scenes"]]
    if given == "file":
        assert firsts == [1, 5], lines
        assert any("cues to compose kept from a score of it that was stopped" in line for line in lines), lines
    else:
        assert firsts != [1, 5] and "given_scenes" not in json.loads((out / "ch.json").read_text())["score"], lines


def test_a_setting_that_changes_nothing_now_is_recorded_for_the_next_scores(tmp_path):
    """`score ch --longest-cue N` where no cue reaches N, or `--scenes FILE` giving the scenes found, was "skipped"
    and not recorded: the next rerun (the pages read slower) composed cues past the limit asked, or lost the
    user's scenes, with nothing said."""
    import manga2music

    make_chapter(tmp_path / "ch", [("calm", 3), ("action", 3), ("calm", 3)], seed=4)
    out = tmp_path / "out"
    manga2music.score([tmp_path / "ch"], out, vision_model="builtin", music_model="builtin",
                      config=manga2music.RunConfig(seed=1))
    sheet = json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))
    longest = max(s["cue_s"] for s in sheet["scenes"]) + 5.0
    firsts = [s["first_page"] for s in sheet["scenes"]]
    (tmp_path / "sc.txt").write_text("".join(f"{p}\n" for p in firsts), encoding="utf-8")  # the scenes found
    lines: list[str] = []
    said = manga2music.Callbacks(log=lambda level, line: lines.append(line))
    again = manga2music.score([tmp_path / "ch"], out, callbacks=said,
                              config=manga2music.RunConfig(longest_cue=longest, scenes_file=tmp_path / "sc.txt"))
    assert [s["status"] for s in again["sections"]] == ["skipped"]  # the score is as they make it: nothing made again
    assert f"ch: longest_cue={longest:g} and the scenes of sc.txt kept for its next scores (this one is already " \
        "as they make it)" in lines, lines
    recorded = json.loads((out / "ch.json").read_text(encoding="utf-8"))["score"]
    assert recorded["longest_cue"] == longest and recorded["given_scenes"]["file"] == "sc.txt"
    manga2music.score([tmp_path / "ch"], out, config=manga2music.RunConfig(reading_speed=0.25))  # 4 times the time
    sheet = json.loads((out / "ch.cues.json").read_text(encoding="utf-8"))
    assert max(s["cue_s"] for s in sheet["scenes"]) <= longest  # the limit asked, though nothing was made then
    assert sum(s["duration"] for s in sheet["scenes"]) > 2 * longest  # the scenes, read slower, are longer


def test_two_stops_in_a_row_keep_the_first_ones_settings_for_the_chapters_neither_made(tmp_path, monkeypatch):
    """`score S --seed 5 --reading-speed 0.5` stopped, then `score S --format ogg` stopped after a chapter: the
    second stop's record held only --format, and the plain rerun made the last chapters at the usual pace with new
    seeds, unsaid; a plain resume stopped before it made a chapter dropped the first stop's settings as well."""
    import manga2music
    import manga2music.audio as audio

    for k in range(1, 5):
        shutil.copytree(SAMPLES / "calm", tmp_path / "S" / f"Chapter {k}")
    out = tmp_path / "out"
    real_encode = audio.encode_audio

    def stop_after(chapters: int, config):
        written: list[str] = []

        def encode(*args, **kwargs):
            data = real_encode(*args, **kwargs)
            written.append(1)
            return data

        def sections(done, total, label):
            if label.startswith("scoring") and done >= chapters:
                raise KeyboardInterrupt

        monkeypatch.setattr(audio, "encode_audio", encode)
        with pytest.raises(KeyboardInterrupt):
            manga2music.score([tmp_path / "S"], out, vision_model="builtin", music_model="builtin", config=config,
                              callbacks=manga2music.Callbacks(sections=sections))
        monkeypatch.setattr(audio, "encode_audio", real_encode)

    stop_after(0, manga2music.RunConfig(seed=5, reading_speed=0.5))  # before any chapter was made
    stop_after(0, manga2music.RunConfig())  # the plain resume, stopped as soon: it asked nothing of its own
    stop_after(1, manga2music.RunConfig(fmt="ogg"))
    lines: list[str] = []
    manga2music.score([tmp_path / "S"], out, callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
    for k in range(1, 5):
        made = json.loads((out / f"Chapter {k}.json").read_text(encoding="utf-8"))["score"]
        assert (made["reading_speed"], made["seed"], made["format"]) == (0.5, 5, "ogg"), (k, lines)
    assert "score_stopped_with" not in json.loads((out / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("when", ["composing", "writing"])
def test_a_stopped_scores_format_is_resumed_after_another_chapter_was_scored_in_the_folder(tmp_path, monkeypatch,
                                                                                           when):
    """`score ch --format ogg --seed 3` stopped (while composing: its cues kept; or while writing its files), then
    `score other` into the same folder (a WAV), then the plain `score ch` that finishes it: ch came out as a WAV, its
    seed resumed and its format not, unsaid, since the folder's music was all WAV by then."""
    import manga2music
    import manga2music.audio as audio
    from manga2music.composers.builtin import BuiltinComposer

    shutil.copytree(SAMPLES / "action", tmp_path / "ch")
    out = tmp_path / "out"
    with monkeypatch.context() as patched:
        def stopped(*args, **kwargs):
            raise KeyboardInterrupt

        patched.setattr(*((BuiltinComposer, "compose") if when == "composing" else (audio, "encode_audio")), stopped)
        with pytest.raises(KeyboardInterrupt):
            manga2music.score([tmp_path / "ch"], out, vision_model="builtin", music_model="builtin",
                              config=manga2music.RunConfig(seed=3, fmt="ogg"))
    manga2music.score([SAMPLES / "calm"], out, vision_model="builtin", music_model="builtin")
    assert (out / "calm.score.wav").is_file()
    lines: list[str] = []
    manga2music.score([tmp_path / "ch"], out, callbacks=manga2music.Callbacks(log=lambda level, line: lines.append(line)))
    made = json.loads((out / "ch.json").read_text(encoding="utf-8"))["score"]
    assert (made["format"], made["seed"]) == ("ogg", 3), lines
    assert (out / "ch.score.ogg").is_file() and not (out / "ch.score.wav").exists()
    assert any("fmt='ogg'" in line and "seed=3" in line for line in lines), lines


def test_a_score_without_a_cue_limit_is_not_said_to_keep_one(tmp_path):
    """After `score --longest-cue 1800` (the most there is: no limit), the plain rerun said "cues of at most
    --longest-cue 1800 s, as its last score's (--longest-cue 1800 lifts the limit)"; a real limit is still said."""
    import manga2music
    from manga2music.jobs import Callbacks
    from manga2music.options import RunConfig

    make_chapter(tmp_path / "ch", [("calm", 2)], seed=2)
    for limit, kept in ((1800.0, False), (20.0, True)):
        out = tmp_path / f"out{int(limit)}"
        for config in (RunConfig(seed=1, longest_cue=limit), RunConfig()):
            said = []
            manga2music.score([tmp_path / "ch"], out, vision_model="builtin", music_model="builtin", config=config,
                              callbacks=Callbacks(log=lambda level, text: said.append(text)))
        assert any("cues of at most" in text for text in said) == kept, said
