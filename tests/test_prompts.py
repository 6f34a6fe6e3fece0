"""Prompts, reading answers (sloppy JSON, descriptions), merging chunks, image sizes."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from manga2music.analysis import GENRES, SectionAnalysis
from manga2music.describers.answers import clean_description, looks_like_error, merge_analyses, parse_analysis
from manga2music.describers.base import PageImage
from manga2music.describers.chat import chunk_pages
from manga2music.describers.images import target_size
from manga2music.describers.openai_chat import strict_json_schema
from manga2music.prompts import (
    MAX_DESCRIPTION_CHARS,
    MAX_DESCRIPTION_WORDS,
    PROMPT_VERSION,
    analysis_schema,
    merge_prompt,
    retry_json_prompt,
    single_stage_prompt,
    stage1_prompt,
    stage2_prompt,
)


def analysis(**kw) -> SectionAnalysis:
    base = dict(genre="drama", atmosphere="tense", focus="visual", pacing="slow", plot="A door opens.")
    base.update(kw)
    return SectionAnalysis(**base)


# --- prompt texts ---------------------------------------------------------------------------


def test_prompt_version_is_dated():
    assert re.fullmatch(r"20\d\d-(0[1-9]|1[0-2])-\d+", PROMPT_VERSION)


def test_stage1_asks_for_every_schema_field_and_genre():
    schema = analysis_schema()
    assert schema == SectionAnalysis.model_json_schema()
    text = stage1_prompt(3)
    for field in schema["properties"]:
        assert f'"{field}"' in text
    for genre in GENRES:
        assert genre in text
    assert "3 consecutive manga pages" in text and "this manga page" in stage1_prompt(1)
    retry = retry_json_prompt(3, "no JSON object found")
    assert retry.startswith(text) and "valid JSON only" in retry and "no JSON object found" in retry


def test_stage2_states_the_music_rules_and_the_analysis():
    a = analysis(genre="action", atmosphere="furious and desperate", pacing="frantic chase", focus="visual")
    text = stage2_prompt(a)
    for value in ("action", "furious and desperate", "frantic chase", "A door opens."):
        assert value in text
    assert f"at most {MAX_DESCRIPTION_WORDS} words" in text and "BPM" in text and "key or mode" in text
    assert "Never mention manga, comics" in text
    assert "amplify" in text and "lo-fi" not in text
    light = stage2_prompt(analysis(genre="comedy", focus="visual"))
    talky = stage2_prompt(analysis(genre="drama", focus="dialogue"))
    assert "lo-fi" in light and "lo-fi" in talky and "amplify" not in talky
    for t in (text, light, single_stage_prompt(2), merge_prompt(["a", "b"])):
        assert not re.search(r"\{[a-z_]+\}", t)  # no unfilled placeholders


def test_single_stage_and_merge_prompts():
    text = single_stage_prompt(4)
    assert "4 consecutive manga pages" in text and "BPM" in text and "JSON" not in text
    merged = merge_prompt(["Soft piano at 70 BPM.", "Loud drums at 140 BPM."])
    assert "1. Soft piano at 70 BPM." in merged and "2. Loud drums at 140 BPM." in merged


def test_strict_schema_closes_objects_and_requires_everything():
    strict = strict_json_schema(analysis_schema())
    assert strict["additionalProperties"] is False
    assert strict["required"] == list(SectionAnalysis.model_fields)
    assert "default" not in str(strict) and "title" not in strict
    assert "plot" not in analysis_schema()["required"]  # the original is untouched


# --- reading stage-1 answers --------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"genre": "horror", "atmosphere": "dread", "focus": "visual", "pacing": "slow", "plot": "x"}',
         dict(genre="horror", atmosphere="dread", focus="visual", pacing="slow", plot="x")),
        ('```json\n{"genre": "action", "atmosphere": "tense", "focus": "visual", "pacing": "fast"}\n```',
         dict(genre="action", focus="visual", pacing="fast", plot="")),
        ("Here you go:\n{'Genre': 'Romantic Comedy', 'Emotional Atmosphere': \"warm, it's sweet\", "
         "'Focus': 'Dialogue-driven',}\nHope it helps!",
         dict(genre="romance", atmosphere="warm, it's sweet", focus="dialogue", pacing="moderate")),
        ("{genre: 'Science Fiction', mood: 'cold awe', focus: 'Visuals', pace: 'slow'}",
         dict(genre="sci-fi", atmosphere="cold awe", focus="visual", pacing="slow")),
        ("**Genre:** Conversation\n**Emotional atmosphere:** calm\n**Plot:** Two friends chat.",
         dict(genre="conversation", atmosphere="calm", focus="dialogue", plot="Two friends chat.")),
        ('{"analysis": {"Category": ["Drama"], "Emotions": ["sad", "quiet"], "FOCUS": "VISUAL"}}',
         dict(genre="drama", atmosphere="sad, quiet", focus="visual")),
        ('{"genre": "action", "atmosphere": "tense", "focus": "visual", "pacing": "fast", "plot": "They fight and',
         dict(genre="action", plot="They fight and")),
        ('{"genre": "Thriller", "atmosphere": "paranoid"}', dict(genre="thriller", focus="visual")),
    ],
)
def test_sloppy_json_is_read(text, expected):
    got = parse_analysis(text).model_dump()
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "The pages show a comedy, I think.", '{"error": "model overloaded"}', "{ this is not json at all"]
)
def test_unreadable_answers_raise(text):
    with pytest.raises(ValueError):
        parse_analysis(text)


def test_long_fields_are_trimmed():
    got = parse_analysis('{"genre": "drama", "atmosphere": "%s", "plot": "%s"}' % ("sad " * 100, "word " * 300))
    assert len(got.atmosphere) <= 161 and len(got.plot) <= 501 and got.plot.endswith("\u2026")


# --- merging chunks -----------------------------------------------------------------------


def test_merge_weights_genre_and_focus_by_pages_and_joins_the_rest():
    a = analysis(genre="comedy", focus="dialogue", atmosphere="light", pacing="fast", plot="They joke.")
    b = analysis(genre="action", focus="visual", atmosphere="Light.", pacing="frantic", plot="They run.")
    merged = merge_analyses([(a, 2), (b, 3)])
    assert (merged.genre, merged.focus) == ("action", "visual")
    assert merged.atmosphere == "light" and merged.pacing == "fast; frantic"
    assert merged.plot == "They joke. They run."
    tie = merge_analyses([(a, 2), (b, 2)])
    assert (tie.genre, tie.focus) == ("comedy", "dialogue")  # ties: the earlier chunk
    assert merge_analyses([(b, 5)]) == b
    long = merge_analyses([(analysis(plot="word " * 100), 1), (analysis(plot="more " * 100), 1)])
    assert len(long.plot) <= 701


def test_chunks_cover_all_pages():
    pages = [PageImage(name=str(i), image=None) for i in range(7)]
    chunks = list(chunk_pages(pages, 3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [p.name for c in chunks for p in c] == [str(i) for i in range(7)]
    assert len(list(chunk_pages(pages, 0))) == 7
    # a one-pass stream of pages is read one chunk at a time, not all at once
    seen = []

    def stream():
        for page in pages:
            seen.append(page.name)
            yield page

    first = next(chunk_pages(stream(), 3))
    assert [p.name for p in first] == ["0", "1", "2"] and seen == ["0", "1", "2"]


# --- cleaning descriptions ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('Music description: "Lo-fi hip hop at 80 BPM in D minor, soft Rhodes, calm."',
         "Lo-fi hip hop at 80 BPM in D minor, soft Rhodes, calm."),
        ("Sure! Here's a music description for the scene:\n\n**Upbeat jazz** at 120 BPM in B flat major,\nbright brass.",
         "Upbeat jazz at 120 BPM in B flat major, bright brass."),
        ('```\n{"description": "Dark ambient drones at 60 BPM in C minor."}\n```', "Dark ambient drones at 60 BPM in C minor."),
        ("\u201cGentle acoustic guitar at 90 BPM in G major, warm.\u201d", "Gentle acoustic guitar at 90 BPM in G major, warm."),
    ],
)
def test_descriptions_are_cleaned(raw, expected):
    assert clean_description(raw) == expected


def test_long_descriptions_are_cut_at_a_sentence():
    one = "Epic orchestral score at 140 BPM in E minor with pounding taiko drums and low brass swells rising slowly."
    two = "Strings answer in long arcs while choir voices gather behind the percussion and the cymbals crash hard."
    three = "Everything builds toward a heroic climax with the full orchestra playing together at maximum volume now."
    four = "Then it falls silent except for a single held note on the horns."
    kept = f"{one} {two} {three}"
    assert len(kept.split()) < MAX_DESCRIPTION_WORDS < len(f"{kept} {four}".split()) and len(kept) < MAX_DESCRIPTION_CHARS
    assert clean_description(f"{kept} {four}") == kept
    no_stop = clean_description("slow " * 200)
    assert len(no_stop.split()) == MAX_DESCRIPTION_WORDS and no_stop.endswith("slow.")
    wide = clean_description("Supercalifragilistic " * 50)
    assert len(wide) <= MAX_DESCRIPTION_CHARS + 1 and wide.endswith("c.")


@pytest.mark.parametrize(
    "raw",
    [
        "", "   ", '""', "I'm sorry, but I can't help with that.", "I cannot see the images you sent.",
        "As an AI language model, I do not have ears.", "Error: 500 Internal Server Error",
        "Sorry, something went wrong.", "I\u2019m unable to process these pages.", "ok",
    ],
)
def test_errors_and_apologies_are_refused(raw):
    with pytest.raises(ValueError):
        clean_description(raw)


@pytest.mark.parametrize(
    "raw, expected",
    [  # what servers really send (a helper's fake server, modelled on llama.cpp, vLLM and Ollama answers)
        ("<think> The pages show a fight. Maybe {\"genre\": \"romance\"} </think> Driving orchestral action cue "
         "at 150 BPM in D minor.", "Driving orchestral action cue at 150 BPM in D minor."),
        ("The user wants music.</think>\n\nCalm koto at 70 BPM in E minor.", "Calm koto at 70 BPM in E minor."),
        ("<thinking>I cannot see colours, but the lines are calm.</thinking>Soft piano at 64 BPM in F major.",
         "Soft piano at 64 BPM in F major."),
        ("Tense strings at 100 BPM in C# minor, a lo_fi hiss under them.<|im_end|>",
         "Tense strings at 100 BPM in C# minor, a lo_fi hiss under them."),
        ("## Music\n**Warm** _jazz_ at 90 BPM in F# major.</s>", "Warm jazz at 90 BPM in F# major."),
        ("# Soft piano, 60 BPM in C# minor", "Soft piano, 60 BPM in C# minor"),  # a heading that is the answer
        ("Here is the description:\n```\nCalm piano at 60 BPM in C major, soft and unhurried.\n```\n"
         "Hope this helps! Let me know if you want any changes.", "Calm piano at 60 BPM in C major, soft and unhurried."),
        ("Warm strings at 72 BPM in G major, gentle and slow. I hope this helps!",
         "Warm strings at 72 BPM in G major, gentle and slow."),
        ("Warning sirens open a frantic synthwave track at 150 BPM in A minor.",
         "Warning sirens open a frantic synthwave track at 150 BPM in A minor."),
        ("Error-laden glitch beats at 128 BPM in B minor, stuttering synths.",
         "Error-laden glitch beats at 128 BPM in B minor, stuttering synths."),
        ("I can't help but imagine a slow cello at 60 BPM in D minor.",
         "I can't help but imagine a slow cello at 60 BPM in D minor."),
        ("静かなピアノと弦楽器、70 BPM、ホ短調、穏やかで温かい。", "静かなピアノと弦楽器、70 BPM、ホ短調、穏やかで温かい。"),
    ],
)
def test_reasoning_markup_and_chatter_are_removed_and_music_words_kept(raw, expected):
    """A thinking model's reasoning, a server's special tokens and chatty trailers reached the .txt (and the music
    model); a sharp key lost its '#', "lo_fi" its underscore; a description starting "Warning sirens" or in
    Japanese was refused."""
    assert clean_description(raw) == expected


def test_an_answer_that_is_only_reasoning_is_refused_and_json_is_read_after_it():
    with pytest.raises(ValueError):
        clean_description("<think>Let me look at the pages. The first shows")  # cut off while thinking
    answer = ('<think>A template would be {"genre": "romance", "atmosphere": "placeholder"}</think>'
              '{"genre": "action", "atmosphere": "fierce", "focus": "visual", "pacing": "fast", "plot": "A duel."}')
    assert parse_analysis(answer).genre == "action"


def test_music_words_are_not_mistaken_for_errors():
    assert not looks_like_error("Melancholic piano at 60 BPM in A minor, a sorrowful error-free waltz feel.")
    assert looks_like_error("Unfortunately I am unable to view images.")


# --- image sizes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, detail, expected",
    [
        ((1500, 2100), "high", (768, 1075)),
        ((1500, 2100), "auto", (768, 1075)),
        ((800, 6000), "high", (273, 2048)),  # tall strip: the 2048 box first
        ((1500, 2100), "low", (366, 512)),
        ((400, 300), "high", (400, 300)),  # never upscaled
    ],
)
def test_target_size(size, detail, expected):
    assert target_size(*size, detail) == expected


def test_gray_scan_with_noise_is_sent_as_gray():
    from manga2music.describers.images import prepare

    img = Image.merge("RGB", [Image.effect_noise((200, 300), 40).convert("L")] * 3)
    assert prepare(PageImage("a.png", img), "high").mode == "L"
    colour = Image.new("RGB", (200, 300), (200, 30, 30))
    assert prepare(PageImage("b.png", colour), "high").mode == "RGB"


def test_a_description_that_takes_a_phrase_of_the_rules_is_not_taken_for_the_request_repeated():
    """The check against a model answering with its own request must not refuse a good description that borrows one
    phrase of the instructions, nor a merge that keeps a chunk's description word for word; the whole request
    said back is caught, for each kind of request."""
    from manga2music.describers.answers import repeats_request
    from manga2music.prompts import merge_prompt, single_stage_prompt, stage2_prompt

    talk = SectionAnalysis(genre="comedy", atmosphere="warm", focus="dialogue", pacing="slow", plot="Two friends talk.")
    stage2, single = stage2_prompt(talk), single_stage_prompt(3)
    chunk = "Slow ambient pads in D minor at 70 BPM, gentle and melancholic."
    merge = merge_prompt([chunk, "Soft piano and warm strings in D minor at 72 BPM, tender and calm."])
    assert not repeats_request("Light and unobtrusive ambient, lo-fi or soft acoustic accompaniment at 70 BPM in C "
                               "major, with gentle piano.", stage2)
    assert not repeats_request("Keep it broad and atmospheric, like the brief for a film-score cue: warm strings at "
                               "80 BPM in D major.", single)
    assert not repeats_request(chunk, merge)
    for prompt in (stage2, single, merge):
        assert repeats_request(prompt, prompt)
        assert repeats_request("Sure! " + " ".join(prompt.split()[:40]), prompt)
