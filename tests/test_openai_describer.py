"""The OpenAI describer against a real local HTTP server speaking the chat completions API.

The real ``openai`` SDK talks to ``tests/openai_server.py`` on 127.0.0.1; no test reaches the internet.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from openai_server import (  # noqa: F401  (fixtures; pytest puts tests/ on sys.path)
    DEFAULT_ANALYSIS,
    DEFAULT_DESCRIPTION,
    Delay,
    Drop,
    Echo,
    Fail,
    Raw,
    Reply,
    Trickle,
    openai_server,
    openai_server_no_schema,
)
from PIL import Image, ImageDraw

from manga2music.analysis import SectionAnalysis
from manga2music.describers.base import PageImage
from manga2music.describers.openai_chat import OpenAIDescriber, price_for
from manga2music.errors import BackendError, NeedsKeyError, ServerUnusableError
from manga2music.options import settings_named_as_flags
from manga2music.prompts import PROMPT_VERSION

SECRET = "sk-test-DoNotLeakThis0123456789abcdef"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def line_art(name: str, size=(600, 850)) -> PageImage:
    """A clean black-and-white page: panel borders and a few strokes (PNG source)."""
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    w, h = size
    d.rectangle([10, 10, w - 10, h // 2 - 5], outline="black", width=4)
    d.rectangle([10, h // 2 + 5, w - 10, h - 10], outline="black", width=4)
    d.line([40, 60, w - 60, h // 2 - 40], fill="black", width=3)
    d.ellipse([w // 3, h // 2 + 60, w // 2, h // 2 + 200], outline="black", width=3)
    return PageImage(name=name, image=img, format="PNG")


def photo(name: str, size=(600, 850), fmt="JPEG") -> PageImage:
    """A colourful, noisy page (a colour scan)."""
    noise = Image.effect_noise(size, 80).convert("L")
    img = Image.merge("RGB", (noise, noise.rotate(90, expand=False), Image.linear_gradient("L").resize(size)))
    return PageImage(name=name, image=img, format=fmt)


def options(server, **kw) -> dict:
    kw.setdefault("timeout", 10.0)
    kw.setdefault("max_retries", 2)
    return {"base_url": server.url, **kw}


def decode(url: str) -> tuple[str, Image.Image, bytes]:
    head, _, data = url.partition(";base64,")
    raw = base64.b64decode(data)
    return head.removeprefix("data:"), Image.open(io.BytesIO(raw)), raw


# --- the two-stage flow -------------------------------------------------------------------


def test_two_stage_sends_images_and_schema_then_text_only(openai_server):
    pages = [line_art("001.png"), line_art("002.png"), photo("003.jpg")]
    d = OpenAIDescriber("gpt-4o-mini", options(openai_server, detail="high"))
    seen = []
    result = d.describe(pages, progress=lambda done, total, label: seen.append((done, total, label)))

    assert len(openai_server.requests) == 2
    stage1, stage2 = openai_server.requests
    assert stage1.body["model"] == "gpt-4o-mini"
    assert len(stage1.images) == 3 and stage1.image_details == ["high"] * 3
    assert [p["type"] for p in stage1.content_parts] == ["image_url"] * 3 + ["text"]  # images first, then the prompt
    fmt = stage1.response_format
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert set(schema["required"]) == set(SectionAnalysis.model_fields) == set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert schema["properties"]["focus"]["enum"] == ["dialogue", "visual"]
    assert "JSON" in stage1.text

    assert stage2.images == [] and stage2.response_format is None
    assert DEFAULT_ANALYSIS["atmosphere"] in stage2.text and "BPM" in stage2.text

    assert result.description == DEFAULT_DESCRIPTION
    assert result.analysis == SectionAnalysis(**DEFAULT_ANALYSIS)
    assert [c.pages for c in result.chunks] == [["001.png", "002.png", "003.jpg"]]
    assert result.usage == {"prompt_tokens": 200, "completion_tokens": 40}
    assert result.cost_usd == pytest.approx((200 * 0.15 + 40 * 0.60) / 1e6)
    assert result.prompt_version == PROMPT_VERSION
    assert d.model_name == "gpt-4o-mini"
    assert seen[-1][:2] == (2, 2) and [s[0] for s in seen] == [1, 2]
    assert stage1.headers["authorization"] == f"Bearer {SECRET}"


def test_chunks_cover_every_page_in_order(openai_server):
    pages = [line_art(f"{i:03d}.png", size=(300, 420)) for i in range(1, 6)]
    result = OpenAIDescriber("gpt-4o", options(openai_server, chunk_size=2)).describe(pages)

    stage1 = [r for r in openai_server.requests if r.images]
    assert [len(r.images) for r in stage1] == [2, 2, 1]
    assert all(r.response_format for r in stage1)
    assert len(openai_server.requests) == 4 and not openai_server.requests[-1].images
    assert [c.pages for c in result.chunks] == [["001.png", "002.png"], ["003.png", "004.png"], ["005.png"]]
    assert all(c.analysis is not None for c in result.chunks)
    assert result.usage == {"prompt_tokens": 400, "completion_tokens": 80}


def test_images_keep_the_right_mime_and_are_downscaled(openai_server):
    big_art = line_art("big.png", size=(1500, 2100))
    colour = photo("colour.jpg", size=(1200, 1700))
    OpenAIDescriber("gpt-4o", options(openai_server, detail="high")).describe([big_art, colour])
    (art_url, colour_url) = openai_server.requests[0].images
    mime, img, raw = decode(art_url)
    assert mime == "image/png" and raw.startswith(b"\x89PNG") and img.mode == "L"  # line art: lossless, gray
    assert min(img.size) == 768 and img.size[1] > img.size[0]
    mime, img, raw = decode(colour_url)
    assert mime == "image/jpeg" and raw.startswith(b"\xff\xd8") and img.mode == "RGB"
    assert min(img.size) <= 768

    OpenAIDescriber("gpt-4o", options(openai_server, detail="low")).describe([big_art])
    low = openai_server.requests[-2]
    assert low.image_details == ["low"]
    assert max(decode(low.images[0])[1].size) == 512


def test_colour_png_becomes_the_smaller_jpeg(openai_server):
    OpenAIDescriber("gpt-4o", options(openai_server)).describe([photo("noisy.png", fmt="PNG")])
    mime, _, raw = decode(openai_server.requests[0].images[0])
    assert mime == "image/jpeg" and raw.startswith(b"\xff\xd8")


def test_single_stage_describes_chunks_then_merges(openai_server):
    pages = [line_art(f"{i}.png", size=(300, 420)) for i in range(5)]
    openai_server.queue(Reply("Soft lo-fi piano at 75 BPM in F major, warm."),
                        Reply("Tense strings at 120 BPM in A minor, rising."),
                        Reply("Quiet ambient pads at 60 BPM in C major, calm."))
    d = OpenAIDescriber("gpt-4o-mini", options(openai_server, single_stage=True, chunk_size=2))
    result = d.describe(pages)

    reqs = openai_server.requests
    assert [len(r.images) for r in reqs] == [2, 2, 1, 0]
    assert all(r.response_format is None for r in reqs)
    assert "Tense strings at 120 BPM" in reqs[3].text and "Quiet ambient pads" in reqs[3].text
    assert result.description == DEFAULT_DESCRIPTION
    assert result.analysis is None and d.two_stage is False
    assert [c.pages for c in result.chunks] == [["0.png", "1.png"], ["2.png", "3.png"], ["4.png"]]
    assert result.usage["prompt_tokens"] == 400


def test_single_stage_merges_in_halves_where_the_server_says_the_descriptions_do_not_fit(openai_server):
    """A long section's parts' descriptions joined in one merge request that the server's context refuses (400
    "maximum context length"): the section failed, every page paid for.  They are merged in halves first."""
    pages = [line_art(f"{i}.png", size=(300, 420)) for i in range(4)]
    words = ["Soft lo-fi piano at 75 BPM in F major.", "Tense strings at 120 BPM in A minor.",
             "Quiet ambient pads at 60 BPM in C major.", "Bright brass fanfare at 110 BPM in D major."]
    too_long = Fail(400, "This model's maximum context length is 4096 tokens. However, your messages resulted in "
                         "5000 tokens.", retry_after_ms=None)
    openai_server.queue(*[Reply(w) for w in words], too_long, Reply("Piano into strings, A minor."),
                        Reply("Pads into brass, D major."), Reply("Piano, strings, pads and brass at 90 BPM."))
    d = OpenAIDescriber("gpt-4o-mini", options(openai_server, single_stage=True, chunk_size=1))
    result = d.describe(pages)
    merges = [r.text for r in openai_server.requests if not r.images]
    assert len(merges) == 4 and all(w in merges[0] for w in words)  # refused whole, then halves, then the two
    assert words[0] in merges[1] and words[1] in merges[1] and words[2] not in merges[1]
    assert words[2] in merges[2] and words[3] in merges[2]
    assert "Piano into strings" in merges[3] and "Pads into brass" in merges[3]
    assert result.description == "Piano, strings, pads and brass at 90 BPM."
    assert any("merged in smaller groups" in w for w in result.warnings), result.warnings


# --- sloppy answers, retries and failures ---------------------------------------------------


def test_sloppy_json_is_read_without_a_retry(openai_server):
    openai_server.queue(Reply("Sure!\n```json\n{'Genre': 'Comedy', 'Focus': 'Dialogue-driven', "
                              "'Emotional Atmosphere': 'playful',}\n```\nHope this helps."))
    result = OpenAIDescriber("gpt-4o", options(openai_server)).describe([line_art("1.png")])
    assert len(openai_server.requests) == 2
    assert (result.analysis.genre, result.analysis.focus, result.analysis.atmosphere) == ("comedy", "dialogue", "playful")
    assert result.analysis.pacing == "moderate"  # missing -> default
    assert "lo-fi" in openai_server.requests[1].text  # comedy / dialogue -> light accompaniment


def test_malformed_json_gets_one_retry(openai_server):
    openai_server.queue(Reply("The pages show two people talking in a kitchen."))
    result = OpenAIDescriber("gpt-4o", options(openai_server)).describe([line_art("1.png"), line_art("2.png")])
    first, retry, stage2 = openai_server.requests
    assert len(retry.images) == 2 and retry.response_format is not None
    assert "valid JSON only" in retry.text and "valid JSON only" not in first.text
    assert not stage2.images
    assert result.description == DEFAULT_DESCRIPTION
    assert any("asked again" in w for w in result.warnings)
    assert result.usage["prompt_tokens"] == 300


def test_malformed_json_twice_fails_the_section(openai_server):
    openai_server.queue(Reply("no json here"), Reply("still { not json"))
    with pytest.raises(BackendError, match="valid JSON"):
        OpenAIDescriber("gpt-4o", options(openai_server)).describe([line_art("1.png")])
    assert len(openai_server.requests) == 2  # no stage 2 after a failed analysis


def test_server_without_structured_output_falls_back_and_remembers(openai_server_no_schema):
    server = openai_server_no_schema
    pages = [line_art(f"{i}.png", size=(300, 420)) for i in range(3)]
    result = OpenAIDescriber("llava", options(server, chunk_size=2)).describe(pages)
    reqs = server.requests
    assert [r.response_format is not None for r in reqs] == [True, False, False, False]
    assert [len(r.images) for r in reqs] == [2, 2, 1, 0]
    assert result.analysis == SectionAnalysis(**DEFAULT_ANALYSIS)
    assert any("structured output" in w for w in result.warnings)
    OpenAIDescriber("llava", options(server)).describe(pages[:1])  # a new describer, same server: no new 400
    assert reqs[-2].response_format is None and len(reqs) == 6


def test_rate_limit_then_success(openai_server):
    openai_server.queue(Fail(429, "Rate limit reached for gpt-4o-mini", retry_after_ms=10, type="requests"))
    result = OpenAIDescriber("gpt-4o-mini", options(openai_server, max_retries=2)).describe([line_art("1.png")])
    assert len(openai_server.requests) == 3  # 429, stage 1 again, stage 2
    assert openai_server.requests[0].body == openai_server.requests[1].body
    assert result.description == DEFAULT_DESCRIPTION


def test_a_retry_after_given_as_a_date_is_the_same_wait(openai_server):
    """Retry-After may be an HTTP date (RFC 9110): ten minutes ahead, it was read as no wait at all, so each section
    left asked at once and failed, instead of the one line that stops the run and says how long to wait."""
    import re

    openai_server.queue(Fail(429, "Rate limit reached", retry_after_ms=None, retry_after_date=600, type="requests"))
    describer = OpenAIDescriber("gpt-4o-mini", options(openai_server, max_retries=3))
    with pytest.raises(BackendError) as info:
        describer.describe([line_art("1.png")])
    assert len(openai_server.requests) == 1
    assert re.search(r"429 Rate limit reached \(the server asks to wait (9\.9|10) min before asking again\)",
                     info.value.message), info.value.message


def test_a_retry_after_longer_than_the_client_waits_is_said_and_no_retry_is_claimed(openai_server):
    """A 429 asking to wait an hour (Retry-After: 3600, which the SDK does not wait) failed at once, as "failed after
    3 retries" with no retry made, and the bar had said "retry 1 of 3"; the wait the server asked for was said
    nowhere."""
    said = []
    openai_server.queue(Fail(429, "Rate limit reached", retry_after_ms=3600 * 1000, type="requests"))
    describer = OpenAIDescriber("gpt-4o-mini", options(openai_server, max_retries=3))
    describer.waiting = said.append
    with pytest.raises(BackendError) as info:
        describer.describe([line_art("1.png")])
    assert len(openai_server.requests) == 1 and not said
    assert "retries" not in info.value.message, info.value.message
    assert "429 Rate limit reached (the server asks to wait 60 min before asking again)" in info.value.message
    openai_server.queue(Fail(500, "down", retry_after_ms=10), Fail(500, "down", retry_after_ms=10))
    with pytest.raises(BackendError, match=r"failed after 1 retries: 500 down$"):  # the retries made
        OpenAIDescriber("gpt-4o-mini", options(openai_server, max_retries=1)).describe([line_art("1.png")])


def test_repeated_server_errors_fail_after_the_retries(openai_server):
    openai_server.queue(*[Fail(500, "The server had an error while processing your request")] * 3)
    with pytest.raises(BackendError, match=r"after 2 retries: 500 The server had an error"):
        OpenAIDescriber("gpt-4o-mini", options(openai_server, max_retries=2)).describe([line_art("1.png")])
    assert len(openai_server.requests) == 3


def test_timeout_fails_the_section(openai_server):
    openai_server.queue(Delay(2.0))
    with pytest.raises(BackendError, match="timed out after 0.3 s") as info:
        OpenAIDescriber("gpt-4o", options(openai_server, timeout=0.3, max_retries=0)).describe([line_art("1.png")])
    assert "raise timeout" in info.value.hint
    assert str(info.value).startswith("Server request timed out")  # a server of the user's, not OpenAI


def test_a_server_that_keeps_sending_bytes_times_out_on_the_whole_request(openai_server):
    """--timeout bounded each read, not the request: a server (or a proxy) that sends a byte now and then never
    timed out, so one stuck that way hung the run for ever (a 15 s answer took 15 s under --timeout 3)."""
    import time

    openai_server.queue(Trickle(seconds=8.0))
    started = time.monotonic()
    with pytest.raises(BackendError, match="timed out after 1 s"):
        OpenAIDescriber("gpt-4o", options(openai_server, timeout=1.0, max_retries=0)).describe([line_art("1.png")])
    assert time.monotonic() - started < 5


def test_a_server_that_sends_its_headers_then_trickles_counts_as_stuck_not_as_having_answered(openai_server):
    """A server that sends "200" and its headers, then a space now and then: each request timed out on the whole
    answer, but the headers counted as an answer, so the run never stopped (each section waited through all its
    tries: a library took hours), where a server that sends nothing stops it after the first."""
    describer = OpenAIDescriber("gpt-4o", options(openai_server, timeout=0.6, max_retries=0))
    openai_server.queue(Trickle(seconds=3.0))
    with pytest.raises(ServerUnusableError, match="which has answered no request") as info:
        describer.describe([line_art("1.png")])
    assert info.value.stops_run
    describer.describe([line_art("2.png")])  # a whole answer
    for _ in range(2):
        openai_server.queue(Trickle(seconds=3.0))
    with pytest.raises(BackendError) as info:
        describer.describe([line_art("3.png")])
    assert not isinstance(info.value, ServerUnusableError)
    with pytest.raises(ServerUnusableError, match="it has answered nothing since 1 request before this one"):
        describer.describe([line_art("4.png")])


def test_a_connection_dropped_mid_answer_is_said_as_dropped_not_unreachable(openai_server):
    """A server that crashed mid-answer (an Ollama runner out of memory) was "cannot reach ...: Connection error.
    is the server running?": it was running, and had answered."""
    openai_server.queue(Drop())
    with pytest.raises(ServerUnusableError) as info:
        OpenAIDescriber("my-vlm", options(openai_server, max_retries=0)).describe([line_art("1.png")])
    assert "closed the connection" in info.value.message and "cannot reach" not in info.value.message
    assert "server's log" in info.value.hint


def test_a_model_that_takes_no_images_stops_the_run_with_what_to_do(openai_server):
    """llama.cpp serving a text-only model answers 400 "image input is not supported ... mmproj": each section
    failed alone, with the hint to use --single-stage, which fails the same way."""
    openai_server.queue(Fail(400, "image input is not supported - hint: if this is unexpected, you may need to "
                                  "provide the mmproj", type="invalid_request_error"))
    with pytest.raises(ServerUnusableError) as info:
        OpenAIDescriber("my-llm", options(openai_server)).describe([line_art("1.png")])
    assert "does not take images" in info.value.message and "--single-stage" not in (info.value.hint or "")
    assert "--mmproj" in info.value.hint and len(openai_server.requests) == 1


VLLM_LIMIT = "At most {n} image(s) may be provided in one prompt."  # vLLM's 400 past --limit-mm-per-prompt
LLAMA_CPP_CONTEXT = "the request exceeds the available context size, try increasing it"  # llama-server's 400


def test_a_server_that_takes_one_image_a_request_gets_one_page_a_request(openai_server):
    """vLLM's default image limit, and NVIDIA's hosted vision endpoints, take one image a prompt: each section's
    8-page request was a 400 and every section failed.  Now the pages are sent as many at a time as the server
    says it takes, the record lists those requests, a warning says why, and the next section starts there."""
    openai_server.images_limit = (1, VLLM_LIMIT.format(n=1), "BadRequestError")
    d = OpenAIDescriber("my-vlm", options(openai_server))
    first = d.describe([line_art(f"{k}.png") for k in range(1, 4)])
    assert [c.pages for c in first.chunks] == [["1.png"], ["2.png"], ["3.png"]]
    assert [len(r.images) for r in openai_server.requests] == [3, 1, 1, 1, 0]  # refused, 3 pages, stage 2
    assert any("At most 1 image(s)" in w and "sent again 1 page at a time" in w for w in first.warnings)
    openai_server.requests.clear()
    second = d.describe([line_art("4.png"), line_art("5.png")])
    assert [len(r.images) for r in openai_server.requests] == [1, 1, 0]  # no refused request this time
    assert [c.pages for c in second.chunks] == [["4.png"], ["5.png"]]
    assert any("sent 1 page a request, as earlier in this run" in w for w in second.warnings)


def test_the_size_a_server_takes_holds_for_the_rest_of_the_section_and_the_bar_stays_true(openai_server):
    """Found on the first chunk, the server's limit holds for the section's next chunks too (no second refused
    request), and the progress bar's total follows: it never falls behind the calls made, and ends full."""
    openai_server.images_limit = (1, VLLM_LIMIT.format(n=1), "BadRequestError")
    seen = []
    d = OpenAIDescriber("my-vlm", options(openai_server, chunk_size=2))
    result = d.describe([line_art(f"{k}.png") for k in range(1, 6)],
                        progress=lambda done, total, label: seen.append((done, total)))
    assert [len(r.images) for r in openai_server.requests] == [2, 1, 1, 1, 1, 1, 0]
    assert [c.pages for c in result.chunks] == [[f"{k}.png"] for k in range(1, 6)]
    assert all(done <= total for done, total in seen) and seen[-1] == (6, 6)  # 5 pages, then stage 2


def test_a_server_whose_context_holds_two_pages_gets_them_in_halves(openai_server):
    """llama-server says only that the request exceeds its context: the pages are halved until they fit."""
    openai_server.images_limit = (2, LLAMA_CPP_CONTEXT, "exceed_context_size_error")
    d = OpenAIDescriber("my-vlm", options(openai_server, chunk_size=5))
    result = d.describe([line_art(f"{k}.png") for k in range(1, 6)])
    assert [len(r.images) for r in openai_server.requests] == [5, 3, 2, 1, 2, 0]
    assert [c.pages for c in result.chunks] == [["1.png", "2.png"], ["3.png"], ["4.png", "5.png"]]
    assert result.description == DEFAULT_DESCRIPTION


def test_vllm_whose_max_model_len_holds_two_pages_gets_them_in_halves(openai_server):
    """vLLM with a small --max-model-len (a VL model's pages cost a thousand tokens and more each) refuses a longer
    prompt with "The decoder prompt ... is longer than the maximum model length": every section failed."""
    openai_server.images_limit = (2, "The decoder prompt (length 9214) is longer than the maximum model length of "
                                     "8192. Make sure that `max_model_len` is no smaller than the number of text "
                                     "tokens plus multimodal tokens.", "BadRequestError")
    result = OpenAIDescriber("Qwen/Qwen2.5-VL-7B-Instruct", options(openai_server, chunk_size=4)).describe(
        [line_art(f"{k}.png") for k in range(1, 5)])
    assert [len(r.images) for r in openai_server.requests] == [4, 2, 2, 0]
    assert [c.pages for c in result.chunks] == [["1.png", "2.png"], ["3.png", "4.png"]]


def test_a_proxy_that_refuses_a_large_body_gets_the_pages_in_halves(openai_server):
    """nginx in front of a server refuses a body over 1 MB (its default client_max_body_size) with a 413; a chunk of
    pages can be that large, and fewer pages make a smaller body."""
    openai_server.images_limit = (1, "413 Request Entity Too Large", "invalid_request_error")
    openai_server.images_limit_status = 413
    result = OpenAIDescriber("my-vlm", options(openai_server, chunk_size=2)).describe(
        [line_art(f"{k}.png") for k in range(1, 4)])
    assert [len(r.images) for r in openai_server.requests] == [2, 1, 1, 1, 0]
    assert [c.pages for c in result.chunks] == [["1.png"], ["2.png"], ["3.png"]]
    assert any("413" in w and "sent again 1 page at a time" in w for w in result.warnings)


def test_a_page_that_does_not_fit_alone_fails_its_section_with_the_servers_words(openai_server):
    openai_server.images_limit = (0, LLAMA_CPP_CONTEXT, "exceed_context_size_error")
    with pytest.raises(BackendError, match="exceeds the available context size"):
        OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png"), line_art("2.png")])
    assert [len(r.images) for r in openai_server.requests] == [2, 1]


def test_a_server_that_takes_no_image_at_all_stops_the_run(openai_server):
    """vLLM serving a text-only model says "At most 0 image(s)": no section can be read, as with llama.cpp's
    "image input is not supported"."""
    openai_server.images_limit = (0, VLLM_LIMIT.format(n=0), "BadRequestError")
    with pytest.raises(ServerUnusableError, match="does not take images"):
        OpenAIDescriber("my-llm", options(openai_server)).describe([line_art("1.png"), line_art("2.png")])
    assert len(openai_server.requests) == 1


OLLAMA_ONE_IMAGE = "vision model only supports a single image per message"  # Ollama's 500 for llama3.2-vision
OLLAMA_NO_VISION = "this model is missing data required for image input"  # Ollama's 500 for a text-only model


def test_ollama_with_llama3_2_vision_gets_one_page_a_request_without_retrying_the_refusal(openai_server):
    """Ollama serving llama3.2-vision (mllama) refuses a message with more than one image with a 500: the SDK
    asked three more times (the same 500 each time, seconds apart) and then every section of several pages failed.
    Now the refusal is not asked again and the pages go one a request, as for vLLM's 400."""
    openai_server.images_limit = (1, OLLAMA_ONE_IMAGE, "api_error")
    openai_server.images_limit_status = 500
    waits = []
    d = OpenAIDescriber("llama3.2-vision", options(openai_server))
    d.waiting = waits.append
    result = d.describe([line_art(f"{k}.png") for k in range(1, 4)])
    assert [len(r.images) for r in openai_server.requests] == [3, 1, 1, 1, 0]  # refused once, then one by one
    assert [c.pages for c in result.chunks] == [["1.png"], ["2.png"], ["3.png"]]
    assert any(OLLAMA_ONE_IMAGE in w and "sent again 1 page at a time" in w for w in result.warnings)
    assert waits == []  # no "server error 500: retry 1 of 3"


def test_ollama_with_a_text_only_model_stops_the_run_at_once(openai_server):
    """Ollama answers images sent to a text-only model (llama3, qwen3) with a 500: each request was asked four
    times and every section failed with the same line; now the run stops on the first, saying what to do."""
    openai_server.images_limit = (0, OLLAMA_NO_VISION, "api_error")
    openai_server.images_limit_status = 500
    with pytest.raises(ServerUnusableError, match="does not take images") as info:
        OpenAIDescriber("llama3", options(openai_server)).describe([line_art("1.png"), line_art("2.png")])
    assert len(openai_server.requests) == 1 and "ollama pull" in info.value.hint


def test_ollama_without_the_memory_for_the_model_stops_the_run_at_once(openai_server):
    """Ollama answers a model too big for the free memory with a 500 on every request: the SDK asked three more times
    and every section failed the same way; now the run stops on the first, saying what to do."""
    openai_server.queue(Fail(500, "model requires more system memory (8.1 GiB) than is available (7.3 GiB)",
                             type="api_error"))
    with pytest.raises(ServerUnusableError, match=r"cannot load llama3.2-vision: model requires more system memory "
                                                  r"\(8.1 GiB\) than is available \(7.3 GiB\)") as info:
        OpenAIDescriber("llama3.2-vision", options(openai_server)).describe([line_art("1.png")])
    assert len(openai_server.requests) == 1 and "ollama stop" in info.value.hint


def test_other_server_errors_are_still_asked_again(openai_server):
    """Only the refusals above skip the retries: a 500 that may pass (a crashed runner) is still retried."""
    openai_server.queue(Fail(500, "llama runner process has terminated: exit status 2", type="api_error"))
    result = OpenAIDescriber("llava", options(openai_server)).describe([line_art("1.png")])
    assert [len(r.images) for r in openai_server.requests] == [1, 1, 0] and result.description == DEFAULT_DESCRIPTION


def test_a_server_error_500_about_the_json_schema_falls_back_to_plain_text(openai_server):
    """llama-cpp-python and ik_llama.cpp refuse a json_schema response_format with a 500, not a 400: every section
    failed after its retries instead of asking for plain text, as a 400 makes it do."""
    openai_server.queue(Fail(500, 'response_format type must be one of "text" or "json_object", but got: '
                                  'json_schema'))
    result = OpenAIDescriber("my-vlm-500", options(openai_server, max_retries=0)).describe([line_art("1.png")])
    assert result.description == DEFAULT_DESCRIPTION
    assert "response_format" not in openai_server.requests[1].body and any("structured" in w for w in result.warnings)


def test_a_server_asking_for_a_key_that_is_not_set_says_it_is_not_set(openai_server, monkeypatch):
    """With no key set, a 401 said "rejected the API key from $OPENAI_API_KEY (401): Incorrect API key provided:
    not-needed", a key the user never gave (the placeholder sent to servers without keys)."""
    monkeypatch.delenv("OPENAI_API_KEY")
    openai_server.queue(Fail(401, "Incorrect API key provided: not-needed", type="invalid_request_error"))
    with pytest.raises(NeedsKeyError) as info:
        OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])
    assert "needs an API key" in info.value.message and "$OPENAI_API_KEY is not set" in info.value.message
    assert "rejected" not in info.value.message


def test_an_answer_that_repeats_the_request_never_becomes_the_description(openai_server):
    """A small local model that answered stage 2 with the prompt itself ("Write one music description that ...
    Scene analysis: ... plot (for context only, do not retell it): ...") was composed from, status ok."""
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Echo(), Echo())
    with pytest.raises(BackendError, match="repeated the request"):
        OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])


def test_an_analysis_that_repeats_the_request_is_asked_again_never_taken_for_the_pages(openai_server):
    """A small model that answered stage 1 with the request itself (its example object, or its instructions cut off
    at the token limit) was taken as the analysis, no word said: "atmosphere: a few words", "pacing: slow|moderate|
    fast|frantic, and why", and the music was written from it."""
    from manga2music.prompts import stage1_prompt

    cut = stage1_prompt(1).split("Answer with one JSON object with these keys:\n", 1)[1][:150]
    blanks = Reply(json.dumps({**DEFAULT_ANALYSIS, "atmosphere": "<a few words>", "plot": "..."}))
    for echoed in (Echo(), Reply(cut), blanks):
        openai_server.requests.clear()
        openai_server.queue(echoed, Reply(json.dumps(DEFAULT_ANALYSIS)), Reply("Calm piano, 70 BPM, C major."))
        result = OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])
        assert len(openai_server.requests) == 3  # asked again, then stage 2
        assert result.analysis.atmosphere == DEFAULT_ANALYSIS["atmosphere"], result.analysis
        assert any("repeated the request" in w for w in result.warnings), result.warnings
    openai_server.requests.clear()
    openai_server.queue(Echo(), Echo())
    with pytest.raises(BackendError, match="repeated the request"):
        OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])
    assert len(openai_server.requests) == 2  # no music description written from it


def test_control_characters_in_an_answer_never_reach_the_description(openai_server, tmp_path):
    """A small model's description with stray control characters and U+FFFD was written as it came: its .txt then
    read as binary data, and the web UI threw the finished track away ("001.txt is not a text file")."""
    from manga2music.jobs import read_description

    noisy = "Calm \x01\x02piano\x1b with \ufffd\ufffd\ufffd soft strings\x7f, 70 BPM,\x00 C major."
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Reply(noisy))
    result = OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])
    assert result.description == "Calm piano with soft strings, 70 BPM, C major."
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Reply("Calm piano\x00strings, pads\x1b[31m, 70 BPM."))
    result = OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])
    assert result.description == "Calm piano strings, pads, 70 BPM."  # words kept apart, a colour code gone
    (tmp_path / "d.txt").write_text(result.description, encoding="utf-8")
    assert read_description(tmp_path / "d.txt") == result.description


def test_an_analysis_saying_the_model_saw_no_pages_fails_the_section(openai_server):
    """A model that got no images (a text-only model behind a server that drops them) answered the analysis with
    "I cannot see any images" and "No pages were provided": recorded as the scene's atmosphere and plot, status ok."""
    seen_nothing = {**DEFAULT_ANALYSIS, "atmosphere": "I cannot see any images; please describe them",
                    "plot": "No pages were provided."}
    openai_server.queue(Reply(json.dumps(seen_nothing)), Reply(json.dumps(seen_nothing)))
    with pytest.raises(BackendError, match="did not see the pages|error or a refusal"):
        OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])


def test_analysis_fields_that_are_not_text_are_missing_not_recorded_as_words(openai_server):
    """{"genre": 5, "plot": {"a": 1}} was recorded as genre "5" and plot "a: 1", with no warning about either."""
    odd = {"genre": 5, "atmosphere": "calm and warm", "focus": "both", "pacing": ["slow"], "plot": {"a": 1}}
    openai_server.queue(Reply(json.dumps(odd)))
    result = OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])
    assert result.analysis.genre != "5" and result.analysis.plot != "a: 1" and result.analysis.pacing == "slow"
    assert any("genre" in w and "plot" in w for w in result.warnings), result.warnings


def test_refusal_fails_the_section(openai_server):
    openai_server.queue(Reply(content=None, refusal="I'm sorry, I can't help with that request."))
    with pytest.raises(BackendError, match="refused"):
        OpenAIDescriber("gpt-4o", options(openai_server)).describe([line_art("1.png")])
    assert len(openai_server.requests) == 1


@pytest.mark.parametrize("answer", ["I'm sorry, but I can't describe these images.", "  ", "As an AI, I do not hear music."])
def test_an_apology_or_nothing_never_becomes_the_description(openai_server, answer):
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Reply(answer), Reply(answer))  # (nothing is asked twice)
    with pytest.raises(BackendError):
        OpenAIDescriber("gpt-4o", options(openai_server)).describe([line_art("1.png")])


def test_an_empty_answer_is_asked_once_more(openai_server):
    """A server that answered nothing once (`content: null`, finish_reason stop: a local server's glitch) failed the
    section at once; the same request asked again gets the answer."""
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Reply(content=None))
    result = OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])
    assert result.description == DEFAULT_DESCRIPTION and len(openai_server.requests) == 3
    assert openai_server.requests[1].body == openai_server.requests[2].body


def test_description_is_cleaned_and_capped(openai_server):
    rambling = ("Music description: \"Lo-fi hip hop at 80 BPM in D minor with dusty drums and soft Rhodes chords. "
                + "Warm vinyl crackle drifts under a lazy bass line while the melody wanders. " * 6 + "\"")
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Reply("\n\n" + rambling))
    result = OpenAIDescriber("gpt-4o", options(openai_server)).describe([line_art("1.png")])
    assert result.description.startswith("Lo-fi hip hop at 80 BPM")
    assert len(result.description.split()) <= 60 and result.description.endswith(".")
    assert "\n" not in result.description and '"' not in result.description


# --- keys ----------------------------------------------------------------------------------


def test_missing_key_for_the_official_api_fails_before_any_request(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    d = OpenAIDescriber("gpt-4o")
    with pytest.raises(NeedsKeyError) as info:
        d.preflight()
    text = f"{info.value} {info.value.hint}"  # a program calling the API reads the option it would set
    assert "export OPENAI_API_KEY=" in text and "api_key_env='NAME'" in text and "--api-key-env" not in text
    with settings_named_as_flags(), pytest.raises(NeedsKeyError) as info:  # the command line: its flag
        d.preflight()
    assert "--api-key-env NAME" in info.value.hint
    with pytest.raises(NeedsKeyError):  # describe() checks too, rather than calling api.openai.com
        d.describe([line_art("1.png")])


def test_custom_server_needs_no_key(openai_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    d = OpenAIDescriber("llava", options(openai_server))
    d.preflight()
    result = d.describe([line_art("1.png")])
    assert openai_server.requests[0].headers["authorization"] == "Bearer not-needed"
    assert result.cost_usd is None and result.usage["completion_tokens"] == 40


def test_key_from_another_variable_never_leaks(openai_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("MY_VISION_KEY", SECRET)
    d = OpenAIDescriber("gpt-4o-mini", options(openai_server, api_key_env="MY_VISION_KEY", max_retries=0))
    result = d.describe([line_art("1.png")])
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in result.model_dump_json() and SECRET not in json.dumps(d.settings_key())

    openai_server.queue(Fail(401, f"Incorrect API key provided: {SECRET}.", type="invalid_request_error"))
    with pytest.raises(NeedsKeyError) as info:
        d.describe([line_art("1.png")])
    assert "401" in str(info.value) and "MY_VISION_KEY" in str(info.value)
    assert SECRET not in f"{info.value} {info.value.hint} {info.value!r}" and "provided: ***" in str(info.value)

    openai_server.queue(Fail(500, f"upstream said {SECRET}"))
    with pytest.raises(BackendError) as info:
        d.describe([line_art("1.png")])
    assert SECRET not in f"{info.value} {info.value.hint}" and info.value.__cause__ is None


def test_settings_key_and_prices(openai_server):
    d = OpenAIDescriber("gpt-4o", options(openai_server, detail="low", chunk_size=4, single_stage=True))
    key = d.settings_key()
    assert key["model"] == "gpt-4o" and key["base_url"] == openai_server.url and key["detail"] == "low"
    assert (key["prompt_version"], key["single_stage"], key["chunk_size"]) == (PROMPT_VERSION, True, 4)
    assert OpenAIDescriber("gpt-4o", options(openai_server, detail="high")).settings_key() != key
    # a --seed is recorded beside the settings, not in them: adding one (for another take of the music) must not
    # pay for the pages again; nor must the server's address written with a trailing slash
    same = dict(detail="low", chunk_size=4, single_stage=True)
    assert OpenAIDescriber("gpt-4o", options(openai_server, seed=5, **same)).settings_key() == key
    slash = {**options(openai_server, **same), "base_url": openai_server.url + "/"}
    assert OpenAIDescriber("gpt-4o", slash).settings_key() == key
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini") != price_for("gpt-4o")
    assert price_for("llava") is None and price_for("gpt-4o-audio") is None


def test_a_password_in_the_servers_address_is_never_written_or_shown(openai_server, tmp_path):
    """`--base-url http://bob:PASSWORD@host/v1` (a server behind basic auth) put the password into the record, the
    manifest, the listening page, error lines and the doctor's report."""
    import socket
    from pathlib import Path

    from output_checks import cli, cli_env

    password = "Hunter2PassWord"

    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    with_login = openai_server.url.replace("http://", f"http://bob:{password}@")
    out = tmp_path / "out"
    made = cli("run", samples, "-o", out, "--vision-model", "gpt-4o-mini", "--base-url", with_login,
               "--music-model", "builtin", "--duration", "1")
    assert made.returncode == 0, made.stderr
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert record["describe"]["settings"]["base_url"] == with_login.replace(f"bob:{password}@", "***@")

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://bob:{password}@127.0.0.1:{s.getsockname()[1]}/v1"
    failed = cli("run", samples, "-o", tmp_path / "failed", "--vision-model", "gpt-4o-mini", "--base-url", closed,
                 "--music-model", "builtin", "--duration", "1", "--timeout", "2")
    assert failed.returncode == 1 and "cannot reach http://***@127.0.0.1" in failed.stderr, failed.stderr
    doctor = cli("doctor", "--json", env=cli_env(OPENAI_BASE_URL=with_login))
    assert doctor.returncode == 0 and "***@127.0.0.1" in doctor.stdout
    shown = made.stdout + made.stderr + failed.stdout + failed.stderr + doctor.stdout + doctor.stderr
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert password not in shown and password.encode() not in written


def test_a_thinking_models_reasoning_parts_and_a_missing_usage_are_read_as_meant(openai_server):  # noqa: F811
    """A thinking model's <think> block (llama.cpp, vLLM without a reasoning parser) reached the .txt, and stage 1
    read its JSON from inside the reasoning; content sent as a list of parts failed with an AttributeError; a
    server that sends no usage was recorded as 0 tokens costing $0.00."""
    analysis = {"genre": "action", "atmosphere": "fierce", "focus": "visual", "pacing": "fast", "plot": "A duel."}
    openai_server.queue(
        Reply('<think>A template: {"genre": "romance", "atmosphere": "placeholder"}</think>' + json.dumps(analysis),
              prompt_tokens=None),
        Reply([{"type": "text", "text": "<think>Fast and loud.</think>\n"},
               {"type": "text", "text": "Driving taiko drums at 150 BPM in C# minor."}], prompt_tokens=None))
    result = OpenAIDescriber("gpt-4o-mini", options(openai_server)).describe([line_art("1.png")])
    assert result.analysis.genre == "action" and result.analysis.atmosphere == "fierce"
    assert result.description == "Driving taiko drums at 150 BPM in C# minor."
    assert result.usage is None and result.cost_usd is None  # unknown, not free


def test_adding_a_seed_for_another_take_does_not_pay_for_the_pages_again(tmp_path, openai_server):  # noqa: F811
    """`run --seed 7` after a run without one (to hear another take), or with the server's address written with a
    trailing slash, sent every page again.  The description is kept; its record says it was made without a seed,
    the music's that it was made with 7; --force describes again, and then the record says 7."""
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    out = tmp_path / "out"
    base = ("run", samples, "-o", out, "--vision-model", "llava:13b", "--music-model", "builtin", "--duration", "1")
    assert cli(*base, "--base-url", openai_server.url).returncode == 0
    asked = len(openai_server.requests)
    again = cli(*base, "--base-url", openai_server.url + "/", "--seed", "7")
    assert again.returncode == 0, again.stderr
    assert len(openai_server.requests) == asked and "describing again" not in again.stderr
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert record["describe"]["seed"] is None and record["compose"]["seed"] == 7
    changed = cli(*base, "--base-url", openai_server.url, "--seed", "7", "--chunk-size", "1")
    assert "describing again: the describer's settings changed (chunk_size 8 \u2192 1)" in changed.stderr
    forced = cli(*base, "--base-url", openai_server.url, "--seed", "7", "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads((out / "calm.json").read_text(encoding="utf-8"))["describe"]["seed"] == 7


def test_the_model_a_server_says_answered_is_recorded_beside_the_one_asked_for(tmp_path, openai_server):  # noqa: F811
    """`--model gpt-4o` answered by a dated snapshot, an Ollama alias or a router's choice: the model that made the
    words was in no file, only the name asked for."""
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples"
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS), served_as="llava:13b-v1.6-q4_0"),
                        Reply("Calm piano, 70 BPM, C major.", served_as="llava:13b-v1.6-q4_0"),
                        Reply(json.dumps(DEFAULT_ANALYSIS)), Reply("Calm piano, 70 BPM, C major."))
    for section in ("calm", "action"):
        result = cli("describe", samples / section, "-o", tmp_path / "out", "--model", "llava:13b", "--base-url",
                     openai_server.url)
        assert result.returncode == 0, result.stderr
    calm, action = (json.loads((tmp_path / "out" / f"{name}.json").read_text(encoding="utf-8"))["describe"]
                    for name in ("calm", "action"))
    assert (calm["model"], calm["served_model"]) == ("llava:13b", "llava:13b-v1.6-q4_0")
    assert action["model"] == "llava:13b" and "served_model" not in action  # answered as the one asked for

    # one run of three sections: what answered each one is its own (the first's was said of the next, whose answers
    # named none), and a router
    # that answered one section's questions with two models names both (it named the last one only)
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS), served_as="llava:13b-v1.6-q4_0"),
                        Reply("Calm piano, 70 BPM, C major.", served_as="llava:13b-v1.6-q4_0"),
                        *(Raw(200, json.dumps({"id": "x", "object": "chat.completion", "created": 0,  # no model
                                                   "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                                       "role": "assistant", "content": text}}]}), "application/json")
                          for text in (json.dumps(DEFAULT_ANALYSIS), "Calm piano, 70 BPM, C major.")),
                        Reply(json.dumps(DEFAULT_ANALYSIS), served_as="gpt-4o-2024-08-06"),
                        Reply("Calm piano, 70 BPM, C major.", served_as="gpt-4o-mini-2024-07-18"))
    result = cli("describe", samples / "calm", samples / "action", samples / "webtoon", "-o", tmp_path / "one",
                 "--model", "llava:13b", "--base-url", openai_server.url)
    assert result.returncode == 0, result.stderr
    calm, action, webtoon = (json.loads((tmp_path / "one" / f"{name}.json").read_text(encoding="utf-8"))["describe"]
                             for name in ("calm", "action", "webtoon"))
    assert calm["served_model"] == "llava:13b-v1.6-q4_0" and "served_model" not in action
    assert webtoon["served_model"] == "gpt-4o-2024-08-06, gpt-4o-mini-2024-07-18"


def test_a_description_longer_than_asked_is_cut_near_its_length_and_said(tmp_path, openai_server):  # noqa: F811
    """An 88-word answer was cut to its first sentence (32 words) without a word, on screen or in the record."""
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples"
    long = ("Epic orchestral battle music at 150 BPM in C minor with thundering taiko drums, driving staccato strings, "
            "blaring French horns and trombones, a soaring choir on the climaxes, and fast snare rolls. The energy "
            "builds through the piece as the heroes clash with the giant monster, with sudden dynamic swells, "
            "dissonant brass stabs and a heroic trumpet melody that returns in the final section. Dark, tense, "
            "relentless and triumphant at once, like a film score for a huge fight on a ruined rooftop at night.")
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Reply(long))
    result = cli("describe", samples / "action", "-o", tmp_path / "out", "--model", "llava:13b", "--base-url",
                 openai_server.url)
    assert result.returncode == 0, result.stderr
    words = (tmp_path / "out" / "action.txt").read_text(encoding="utf-8").split()
    assert 50 <= len(words) <= 61 and long.split()[:50] == words[:50], words
    said = f"the music description was cut to its first {len(words)} of {len(long.split())} words"
    assert said in " ".join(result.stderr.split()), result.stderr
    record = json.loads((tmp_path / "out" / "action.json").read_text(encoding="utf-8"))
    assert any(said in w for w in record["describe"]["warnings"]), record["describe"]["warnings"]


def test_an_address_that_takes_no_chat_requests_stops_the_run_at_its_first_section(tmp_path, openai_server):  # noqa: F811
    """A plain web server (`python -m http.server`: 501 to a POST) failed every section, each after its retries,
    with "Server request failed after 3 retries: 501 Error response" and no hint; a 404 stopped the run at once
    with one."""
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples"
    openai_server.queue(*[Fail(501, "Unsupported method ('POST')", retry_after_ms=1) for _ in range(8)])
    result = cli("run", samples / "calm", samples / "action", "-o", tmp_path / "out", "--vision-model", "llava:13b",
                 "--base-url", openai_server.url, "--music-model", "builtin")
    said = " ".join(result.stderr.split())
    assert result.returncode != 0 and "(the address takes no chat requests)" in said, said
    assert "check --base-url" in said and len(openai_server.requests) == 1, said  # not asked again, nor the second
    # section


def test_https_to_a_plain_http_server_says_to_use_http(tmp_path, openai_server):  # noqa: F811
    """`--base-url https://127.0.0.1:PORT/v1` to a server that speaks plain HTTP: "[SSL: WRONG_VERSION_NUMBER]" and
    "is the server running?", though it was."""
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples"
    https = openai_server.url.replace("http://", "https://")
    result = cli("describe", samples / "calm", "-o", tmp_path / "out", "--model", "llava:13b", "--base-url", https)
    said = " ".join(result.stderr.split())
    assert result.returncode != 0 and "the server answers plain HTTP: give its address as http://" in said, said
    assert "is the server running" not in said


def test_a_long_japanese_description_is_cut_at_a_sentence_end_and_said_within_the_limit():
    """A CJK description (no spaces) past 400 characters was cut one character into a sentence, with an ASCII "."
    added after it, and said as "its first 401 of 840 characters"."""
    from manga2music.describers.answers import clean_description
    from manga2music.prompts import MAX_DESCRIPTION_CHARS

    said: list[str] = []
    text = clean_description("静かなピアノと弦楽器が悲しい雰囲気を作る。" * 40, said)
    assert text.endswith("作る。") and len(text) <= MAX_DESCRIPTION_CHARS
    assert said == [f"the music description was cut to its first {len(text)} of 840 characters"]


def test_a_failed_section_says_what_to_do(tmp_path, openai_server):  # noqa: F811
    """A section that failed on the server named the error but never its hint (on screen or in the manifest); a
    model the server does not have stops the run (no other section can get past it), and says what to do too."""
    from pathlib import Path

    from output_checks import cli

    openai_server.queue(Fail(404, "model 'llava:13b' not found", retry_after_ms=None))
    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    result = cli("describe", samples, "-o", tmp_path / "out", "--model", "llava:13b", "--base-url",
                 openai_server.url)
    assert result.returncode == 1 and "ollama pull MODEL" in result.stderr
    (entry,) = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))["sections"]
    assert entry["status"] == "failed" and "ollama pull MODEL" in entry["message"]


def test_a_server_on_this_machine_is_reached_directly_never_through_a_proxy(tmp_path, openai_server):  # noqa: F811
    """With HTTP_PROXY set (a corporate proxy), `--offline` against a server on 127.0.0.1 sent the pages to the
    proxy, and the server got nothing: --offline means no network."""
    import socket
    import threading
    from pathlib import Path

    from output_checks import cli, cli_env

    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(5)
    proxy.settimeout(60)
    heard: list[bytes] = []

    def listen() -> None:
        try:
            while True:
                conn, _ = proxy.accept()
                heard.append(conn.recv(200))
                conn.close()
        except OSError:
            return

    threading.Thread(target=listen, daemon=True).start()
    url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    try:
        result = cli("describe", samples, "-o", tmp_path / "out", "--model", "llava:13b", "--base-url",
                     openai_server.url, "--offline", "--timeout", "5",
                     env=cli_env(HTTP_PROXY=url, HTTPS_PROXY=url, ALL_PROXY=url, NO_PROXY=""))
    finally:
        proxy.close()
    assert result.returncode == 0, result.stderr
    assert heard == [] and len(openai_server.requests) == 2


def test_no_quota_stops_the_run_and_a_bad_address_or_key_variable_is_one_line_before_any_page(openai_server,  # noqa: F811
                                                                                              monkeypatch):
    """A 429 insufficient_quota was retried and repeated for every section; `--base-url 127.0.0.1:PORT/v1` (no
    http://) failed each section after its retries with "Connection error."; `--api-key-env MY_TYPO` (unset) sent
    no key and the server's 401 named the placeholder."""
    from manga2music.errors import InputError, NeedsKeyError

    openai_server.queue(Fail(429, "You exceeded your current quota", type="insufficient_quota", retry_after_ms=None))
    with pytest.raises(NeedsKeyError, match="no quota left") as info:
        OpenAIDescriber("gpt-4o-mini", options(openai_server, max_retries=0)).describe([line_art("1.png")])
    assert info.value.stops_run
    # asked again, an empty quota stays empty: it was retried max_retries times before the line said so
    openai_server.queue(*[Fail(429, "You exceeded your current quota", type="insufficient_quota",
                               retry_after_ms=None)] * 4)
    with pytest.raises(NeedsKeyError, match="no quota left"):
        OpenAIDescriber("gpt-4o-mini", options(openai_server, max_retries=3)).describe([line_art("1.png")])
    assert len(openai_server.requests) == 2
    bare = {**options(openai_server), "base_url": openai_server.url.removeprefix("http://")}
    with pytest.raises(InputError, match="not an http:// or https:// address"):
        OpenAIDescriber("llava", bare).preflight()
    # a key in the address's query went after the path the client adds ("/v1/?api-key=Xchat/completions"): a 404
    # that said "check the model name", and the key reached the manifest when the server echoed the path
    keyed = {**options(openai_server), "base_url": openai_server.url + "?api-key=sk-in-the-url"}
    with pytest.raises(InputError, match="query") as info:
        OpenAIDescriber("llava", keyed).preflight()
    assert "sk-in-the-url" not in info.value.message + info.value.hint
    monkeypatch.delenv("MY_TYPO_KEY", raising=False)
    with pytest.raises(NeedsKeyError, match=r"\$MY_TYPO_KEY is not set"):
        OpenAIDescriber("llava", options(openai_server, api_key_env="MY_TYPO_KEY")).preflight()
    assert len(openai_server.requests) == 2


def test_a_run_stopped_by_the_server_names_the_sections_it_did_not_start(tmp_path, openai_server):  # noqa: F811
    """A run that a server stopped (no quota left, a stuck server) listed the sections made and the one it stopped
    at, and said nothing of those it never started, nor that the same command goes on from there."""
    import shutil
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples"
    lib = tmp_path / "lib"
    for name in ("a", "b", "c"):
        shutil.copytree(samples / "calm", lib / name)
    openai_server.queue(*[Fail(429, "You exceeded your current quota", type="insufficient_quota",
                               retry_after_ms=None)] * 4)
    stopped = cli("run", lib, "-o", tmp_path / "out", "--vision-model", "my-vlm", "--base-url", openai_server.url,
                  "--music-model", "builtin", "--duration", "1")
    said = " ".join(stopped.stderr.split())
    assert stopped.returncode != 0 and "no quota left" in said, stopped.stderr
    assert "b and c: not started; the same command goes on from there" in said, stopped.stderr


def test_page_entries_numbered_from_zero_are_each_pages_own(openai_server):  # noqa: F811
    """A model that numbered its entries 0-2 had its first entry dropped and its last used twice, silently."""
    from manga2music.describers.chapter import page_entries

    moods = ["calm", "tense", "furious"]
    openai_server.queue(Reply(json.dumps({"pages": [
        {"page": k, "mood": mood, "intensity": k + 1, "scene_change": k == 2, "why": ""}
        for k, mood in enumerate(moods)]})))
    describer = OpenAIDescriber("llava", options(openai_server))
    entries, _ = page_entries(describer, [line_art(f"{k}.png") for k in (1, 2, 3)], 3)
    assert [(e["name"], e["mood"]) for e in entries] == [("1.png", "calm"), ("2.png", "tense"), ("3.png", "furious")]


def test_page_entries_all_numbered_alike_or_as_a_bare_list_are_each_pages_own(openai_server):  # noqa: F811
    """A model that numbered every entry "page": 1 had each chunk's first page take the last entry's mood and the
    others the defaults of their place, silently (the scenes came out wrong); a bare JSON list of entries failed
    the chapter ("1 validation error for PageEntries")."""
    from manga2music.describers.chapter import page_entries

    moods = ["calm", "tense", "furious"]
    listed = [{"page": 1, "mood": mood, "intensity": k + 1, "scene_change": k == 2, "why": ""}
              for k, mood in enumerate(moods)]
    describer = OpenAIDescriber("llava", options(openai_server))
    for answer in ({"pages": listed}, listed):
        openai_server.queue(Reply(json.dumps(answer)))
        entries, _ = page_entries(describer, [line_art(f"{k}.png") for k in (1, 2, 3)], 3)
        assert [(e["name"], e["mood"]) for e in entries] == [("1.png", "calm"), ("2.png", "tense"),
                                                             ("3.png", "furious")], answer


@pytest.mark.parametrize("answer, said", [
    (("Raw", 404, "404 page not found"), "failed: 404 page not found"),  # Ollama's address without /v1
    (("Raw", 200, "", "application/json"), "not an OpenAI-compatible answer"),  # says JSON, is nothing
    (("Raw", 200, "<html><body>Welcome to nginx!</body></html>", "text/html"), "not an OpenAI-compatible answer"),
    (("Raw", 200, '{"error": {"message": "model is loading, try again"}}', "application/json"),
     "model is loading, try again"),
    (("Raw", 200, 'data: {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "x"}}]}'
      '\n\ndata: [DONE]\n\n', "text/event-stream"), "answered as a stream (server-sent events)"),  # a proxy
    # that always streams: it was "check --base-url", though the address was right
])
def test_a_server_that_does_not_answer_like_openai_is_one_line_with_its_own_words(openai_server, answer,  # noqa: F811
                                                                                   said):
    """A plain-text 404 said only "404 Error code: 404"; an HTML page (the wrong port or path) failed with a raw
    JSONDecodeError; a 200 whose body is an error said "no choices in the response", hiding the server's words."""
    from openai_server import Raw

    openai_server.queue(Raw(*answer[1:]))
    with pytest.raises(BackendError) as info:
        OpenAIDescriber("llava", options(openai_server, max_retries=0)).describe([line_art("1.png")])
    assert said in str(info.value)
    if answer[1] == 404:
        assert "/v1" in info.value.hint  # no such address, not "check the model name"
    if answer[3:] == ("text/event-stream",):
        assert "--base-url" not in (info.value.hint or "") and "stream" in info.value.hint


def test_a_200_carrying_a_passing_server_error_is_asked_again_and_said(openai_server):  # noqa: F811
    """A gateway (OpenRouter, LiteLLM) that hits a busy or crashed upstream after sending its 200 puts the error in
    the body: {"error": {"code": 502, ...}}. The section failed at once on the first such answer, where a 502 or 429
    in the status line is asked again. Now it is asked again the same way (within --max-retries, said while waiting);
    an error that is about the request itself (a 400 code) is not."""
    from openai_server import Raw

    busy = '{"error": {"message": "Upstream provider overloaded", "code": 502}}'
    openai_server.queue(Raw(200, busy, "application/json"))
    describer = OpenAIDescriber("llava", options(openai_server, max_retries=2))
    waits: list[str] = []
    describer.waiting = waits.append
    result = describer.describe([line_art("1.png")])
    assert result.description == DEFAULT_DESCRIPTION
    assert len(openai_server.requests) == 3  # the error, the same request again, stage 2
    assert openai_server.requests[0].body == openai_server.requests[1].body
    assert len(waits) == 1 and "Upstream provider overloaded" in waits[0] and "retry 1 of 2" in waits[0], waits

    openai_server.queue(*[Raw(200, busy, "application/json")] * 3)
    with pytest.raises(BackendError) as info:
        OpenAIDescriber("llava", options(openai_server, max_retries=2)).describe([line_art("1.png")])
    assert len(openai_server.requests) == 6  # the first try and two retries, no more
    assert "Upstream provider overloaded" in str(info.value) and "after 2 retries" in str(info.value)

    openai_server.queue(Raw(200, '{"error": {"message": "image too small", "code": 400}}', "application/json"))
    with pytest.raises(BackendError) as info:
        OpenAIDescriber("llava", options(openai_server, max_retries=2)).describe([line_art("1.png")])
    assert len(openai_server.requests) == 7 and "image too small" in str(info.value)


def test_a_proxys_html_error_page_is_its_title_and_says_what_to_do(openai_server):  # noqa: F811
    """nginx's 413 page went whole into the one-line message (tags and all), with no word of what to do; a server
    that refused an argument without naming response_format failed the section (it gave a --single-stage hint, which
    `score` cannot use): the request is now asked once without the schema."""
    from openai_server import Raw

    page = ("<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 "
            "Request Entity Too Large</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>")
    openai_server.queue(Raw(413, page, "text/html"))
    with pytest.raises(BackendError) as info:
        OpenAIDescriber("llava", options(openai_server, max_retries=0)).describe([line_art("1.png")])
    assert str(info.value) == "Server request failed: 413 Request Entity Too Large"
    assert "chunk_size=2" in info.value.hint and "detail='low'" in info.value.hint
    openai_server.queue(Fail(400, "Unrecognized request argument supplied", type="invalid_request_error"))
    result = OpenAIDescriber("llava-args", options(openai_server, max_retries=0)).describe([line_art("1.png")])
    assert result.analysis.genre == DEFAULT_ANALYSIS["genre"]  # described (a second such 400 decides the schema is
    # the cause: see test_a_bare_400_to_structured_output_is_asked_once_without_it)
    openai_server.queue(*[Fail(400, "Unrecognized request argument supplied", type="invalid_request_error")] * 2)
    with pytest.raises(BackendError) as info:  # refused without the schema too: not the schema, and --single-stage
        # (no schema either) failed the same way, though the hint sent the user to it
        OpenAIDescriber("llava-args2", options(openai_server, max_retries=0)).describe([line_art("1.png")])
    assert "single_stage" not in (info.value.hint or "")
    openai_server.queue(*[Fail(400, "Invalid request", retry_after_ms=None)] * 2)  # a bare 400, twice: the same
    with pytest.raises(BackendError) as info:
        OpenAIDescriber("llava-bare", options(openai_server, max_retries=0)).describe([line_art("1.png")])
    assert "single_stage" not in (info.value.hint or "")


def test_one_passing_400_does_not_turn_structured_output_off_where_it_worked(openai_server):  # noqa: F811
    """A server whose structured output had answered sent one 400 in its own words ("Invalid request: upstream busy,
    try again"): the request asked again without the schema worked, so the server was taken for one without
    structured output for the rest of the process (the web UI's: every later Generate), and every later record
    said so.  Where the schema worked before, the same request is asked again with it."""
    describer = OpenAIDescriber("busy-once", options(openai_server, max_retries=0))
    first = describer.describe([line_art("1.png")])
    assert not any("structured output" in w for w in first.warnings)
    before = len(openai_server.requests)
    openai_server.queue(Fail(400, "Invalid request: upstream busy, try again", retry_after_ms=None))
    later = describer.describe([line_art("2.png")])
    assert not any("structured output" in w for w in later.warnings), later.warnings
    assert [r.response_format is not None for r in openai_server.requests[before:before + 2]] == [True, True]
    again = OpenAIDescriber("busy-once", options(openai_server, max_retries=0)).describe([line_art("3.png")])
    assert not any("structured output" in w for w in again.warnings), again.warnings


def test_a_server_error_rejecting_structured_output_falls_back_at_once(openai_server):  # noqa: F811
    """llama-cpp-python answers an unsupported response_format with a 500: it was asked again 3 times (every page
    sent each time, seconds apart) before the plain-JSON fallback."""
    openai_server.queue(Fail(500, "Unsupported response_format type: json_schema", retry_after_ms=10))
    result = OpenAIDescriber("llama-cpp", options(openai_server, max_retries=3)).describe([line_art("1.png")])
    assert result.analysis.genre == DEFAULT_ANALYSIS["genre"]
    reqs = openai_server.requests
    assert [r.response_format is not None for r in reqs] == [True, False, False]  # not asked again as it was


def test_offline_with_a_remote_server_names_no_flag_the_command_lacks(tmp_path):
    """`describe --offline --base-url http://remote/v1` said to use "--vision-model builtin", which `describe` has
    not (it is --model there): "No such option" when followed."""
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    for command, flag in (("describe", "--model"), ("run", "--vision-model")):
        result = cli(command, samples, "-o", tmp_path / command, flag, "llava:13b", "--base-url",
                     "http://192.0.2.1:8000/v1", "--offline")
        assert result.returncode == 2 and "--offline forbids the network" in result.stderr, result.stderr[-1500:]
        assert "--vision-model" not in result.stderr and "the builtin describer" in result.stderr
    # a key's variable not set: said after the offline refusal (set as asked, the run was refused for --offline)
    unset = cli("describe", samples, "-o", tmp_path / "key", "--model", "gpt-4o-mini", "--offline", "--api-key-env",
                "MANGA2MUSIC_TEST_UNSET_KEY")
    assert unset.returncode == 2 and "--offline forbids the network" in unset.stderr, unset.stderr[-1500:]


def test_a_plain_text_rejection_of_structured_output_falls_back_to_plain_json(openai_server):  # noqa: F811
    """A server that rejects response_format in plain text (or with 422) was a failed section, not the fallback."""
    from openai_server import Raw

    for model, rejection in (("llava", Raw(400, "Unsupported param: response_format")),
                             ("qwen", Raw(422, '{"detail": "json_schema is not supported"}', "application/json"))):
        openai_server.queue(rejection)
        result = OpenAIDescriber(model, options(openai_server, max_retries=0)).describe([line_art("1.png")])
        assert result.analysis.genre == DEFAULT_ANALYSIS["genre"]


def test_a_hub_id_with_only_openai_base_url_set_says_it_runs_here_and_how_to_ask_the_server(tmp_path):
    """OPENAI_BASE_URL set for a vLLM server, no --base-url: `--model Qwen/Qwen2-VL-2B-Instruct` went to local
    weights (a multi-GB download online) without a word about the server the user meant."""
    from pathlib import Path

    from output_checks import cli, cli_env

    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    done = cli("describe", samples, "-o", tmp_path / "out", "--model", "Qwen/Qwen2-VL-2B-Instruct", "--offline",
               env=cli_env(OPENAI_BASE_URL="http://127.0.0.1:9/v1"))
    assert "runs here (transformers), not on the server OPENAI_BASE_URL names" in done.stderr, done.stderr
    assert 'add --base-url "$OPENAI_BASE_URL"' in done.stderr


def test_a_bare_400_to_structured_output_is_asked_once_without_it(openai_server):  # noqa: F811
    """A server that refuses response_format with a bare "400 Invalid request" failed every section, with a hint
    (--single-stage) that `score` cannot use: its page entries send response_format all the same."""
    openai_server.queue(Fail(400, "Invalid request"))
    result = OpenAIDescriber("picky-400", options(openai_server, max_retries=0)).describe([line_art("1.png")])
    assert result.analysis.genre == DEFAULT_ANALYSIS["genre"]
    assert "response_format" in openai_server.requests[0].body and "response_format" not in \
        openai_server.requests[1].body
    # one such 400 may have been the server's passing trouble (it turned structured output off for the run, with a
    # false warning in every record): the next analysis asks with the schema again, and a second 400 decides
    assert not any("structured output" in w for w in result.warnings), result.warnings
    openai_server.requests.clear()
    openai_server.queue(Fail(400, "Invalid request"))
    result = OpenAIDescriber("picky-400", options(openai_server, max_retries=0)).describe([line_art("2.png")])
    assert "response_format" in openai_server.requests[0].body and "response_format" not in \
        openai_server.requests[1].body
    assert any("structured output" in w for w in result.warnings), result.warnings
    openai_server.requests.clear()
    OpenAIDescriber("picky-400", options(openai_server, max_retries=0)).describe([line_art("3.png")])
    assert "response_format" not in openai_server.requests[0].body  # decided: not asked with it again
    openai_server.requests.clear()
    openai_server.queue(Fail(400, "Invalid request"), Fail(400, "Invalid request: bad image"))  # not the schema
    with pytest.raises(BackendError, match="Invalid request"):
        OpenAIDescriber("picky-400b", options(openai_server, max_retries=0)).describe([line_art("1.png")])


def test_a_section_that_failed_part_way_asks_only_what_was_not_answered_on_the_rerun(tmp_path,  # noqa: F811
                                                                                     openai_server):
    """A section asked in chunks that failed on a later chunk (a 500, a timeout, an empty quota) or was stopped there
    sent its answered chunks again on the rerun, paying for those pages twice.  The rerun asks only the rest; the
    record's usage is what the description cost (the chunk answered before included); --force asks everything."""
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"  # 3 pages: 3 chunks of 1, then stage 2
    out = tmp_path / "out"
    args = ("describe", samples, "-o", out, "--model", "llava:13b", "--base-url", openai_server.url,
            "--chunk-size", "1")
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), *[Fail(500, "upstream exploded")] * 4)  # 3 retries
    failed = cli(*args)
    assert "calm failed: " in failed.stderr and "upstream exploded" in failed.stderr
    assert not (out / "calm.txt").exists()
    (entry,) = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]
    assert entry["status"] == "failed" and entry["usage"] == {"prompt_tokens": 100, "completion_tokens": 20}  # paid
    first = len(openai_server.requests)
    assert first == 5
    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    asked = openai_server.requests[first:]
    sent = [decode(url)[2] for r in asked for url in r.images]
    assert [len(r.images) for r in asked] == [1, 1, 0]  # pages 2 and 3, then the description: not page 1 again
    assert decode(openai_server.requests[0].images[0])[2] not in sent
    assert "1 answer the model gave a run that did not finish was used, not asked again" in resumed.stderr
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert record["describe"]["usage"] == {"prompt_tokens": 400, "completion_tokens": 80}  # 4 answers of 100 + 20
    assert [c["pages"] for c in record["describe"]["chunks"]] == [["001.png"], ["002.png"], ["003.jpg"]]
    assert not list((out / ".manga2music" / "answers").glob("*/*"))  # written: nothing kept any more
    before = len(openai_server.requests)
    forced = cli(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(openai_server.requests) - before == 4 and "not asked again" not in forced.stderr


def test_the_same_question_twice_in_one_run_is_neither_said_to_be_kept_nor_paid_twice(tmp_path,  # noqa: F811
                                                                                       openai_server):
    """Two chunks of the same pages in one new folder: the second was answered from the first's kept answer (right),
    but the run said "1 answer the model gave a run that did not finish was used" (there was none) and the record
    counted its tokens again (usage a third too high)."""
    import shutil
    from pathlib import Path

    from output_checks import cli

    page = Path(__file__).resolve().parent.parent / "samples" / "calm" / "001.png"
    pages = tmp_path / "twice"
    pages.mkdir()
    for name in ("001.png", "002.png"):  # the same page twice: two chunks of 1 ask the same question
        shutil.copy(page, pages / name)
    out = tmp_path / "out"
    done = cli("describe", pages, "-o", out, "--model", "llava:13b", "--base-url", openai_server.url,
               "--chunk-size", "1")
    assert done.returncode == 0, done.stderr
    assert len(openai_server.requests) == 2  # one analysis (the second chunk's is the same question), the description
    assert "did not finish" not in done.stderr, done.stderr
    record = json.loads((out / "twice.json").read_text(encoding="utf-8"))
    assert record["describe"]["usage"] == {"prompt_tokens": 200, "completion_tokens": 40}  # what was asked: 2 calls


def test_an_answer_kept_for_the_rerun_keeps_what_was_said_of_it(tmp_path, openai_server):  # noqa: F811
    """An analysis without pacing and plot said so ("the analysis gave no pacing, plot; the defaults were used") and
    the record kept it; when the section failed later and the rerun took the kept analysis, the record said nothing
    and no line said it, though its pacing was still the default."""
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    out = tmp_path / "out"
    args = ("describe", samples, "-o", out, "--model", "llava:13b", "--base-url", openai_server.url)
    partial = {k: v for k, v in DEFAULT_ANALYSIS.items() if k not in ("pacing", "plot")}
    openai_server.queue(Reply(json.dumps(partial)), Fail(400, "The description could not be made"))
    failed = cli(*args)
    assert failed.returncode != 0 and "could not be made" in failed.stderr
    said = "the analysis gave no pacing, plot; the defaults were used"
    resumed = cli(*args)  # the server answers the description now
    assert resumed.returncode == 0, resumed.stderr
    assert "1 answer the model gave a run that did not finish was used, not asked again" in resumed.stderr
    assert said in resumed.stderr
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert any(said in w for w in record["describe"]["warnings"]), record["describe"]


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_a_section_stopped_while_the_model_answers_resumes_from_the_chunk_it_was_on(tmp_path, openai_server,  # noqa: F811
                                                                                    sig):
    """Ctrl-C (or a kill) while the server answered a section's 2nd chunk: the rerun sent the 1st chunk again."""
    import signal
    import time
    from pathlib import Path

    from output_checks import cli, start_cli

    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    out = tmp_path / "out"
    args = ("describe", samples, "-o", out, "--model", "llava:13b", "--base-url", openai_server.url,
            "--chunk-size", "1")
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Delay(60.0))
    proc = start_cli(*args)
    deadline = time.monotonic() + 60
    while len(openai_server.requests) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert len(openai_server.requests) == 2, proc.communicate()[1]
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == "SIGINT" else -signal.SIGKILL), err
    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert [len(r.images) for r in openai_server.requests[2:]] == [1, 1, 0]  # pages 2 and 3, then the description
    assert "1 answer the model gave a run that did not finish was used" in resumed.stderr


def test_a_rate_limit_is_said_while_the_describer_waits(openai_server):  # noqa: F811
    """A 429 (or a 5xx) that the SDK waits out and asks again left the progress standing still, without a word, for
    up to a minute: the step says why it waits, how long, and which retry; the last failure is not announced as a
    retry (the section fails with the server's words)."""
    openai_server.queue(Fail(429, "Rate limit reached", retry_after_ms=1200, type="requests"),
                        Fail(503, "overloaded", retry_after_ms=None))
    said = []
    OpenAIDescriber("gpt-4o-mini", options(openai_server, max_retries=2)).describe(
        [line_art("1.png")], progress=lambda done, total, label: said.append(label))
    waits = [label for label in said if "retry" in label]
    assert waits == ["rate-limited (429): retry 1 of 2 in 1 s", "server error 503: retry 2 of 2"]
    openai_server.queue(*[Fail(500, "down", retry_after_ms=10)] * 2)
    said.clear()
    with pytest.raises(BackendError, match="down"):
        OpenAIDescriber("gpt-4o-mini", options(openai_server, max_retries=1)).describe(
            [line_art("1.png")], progress=lambda done, total, label: said.append(label))
    assert [label for label in said if "retry" in label] == ["server error 500: retry 1 of 1 in 1 s"]


def test_a_long_retry_after_is_said_too():
    """The SDK waits out a Retry-After of up to 2 minutes, but 61-120 s were shown as no time at all: the bar stood
    still for minutes without saying how long."""
    from manga2music.describers.openai_chat import _retry_delay

    assert _retry_delay({"retry-after": "120"}) == " in 2 min"
    assert _retry_delay({"retry-after": "75"}) == " in 75 s"
    assert _retry_delay({"retry-after-ms": "100000"}) == " in 1.7 min"
    assert _retry_delay({"retry-after": "600"}) == ""  # the SDK does not wait that long: it backs off on its own


# --- a server no section can get past ------------------------------------------------------------------------


def _entries(out) -> dict:
    return {e["name"]: e for e in json.loads((out / "manifest.json").read_text(encoding="utf-8"))["sections"]}


def test_a_key_rejected_mid_run_leaves_a_manifest_that_says_what_was_done(tmp_path, openai_server):  # noqa: F811
    """A 401 after the first section's answers: the manifest called the first section "ok" with no track (`run`
    describes every section before composing), the one the key failed on "skipped" with no message, and the
    listening page said the same."""
    from pathlib import Path

    from output_checks import cli, cli_env

    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Reply(DEFAULT_DESCRIPTION),
                        Fail(401, "Invalid API key", type="invalid_request_error"))
    samples = Path(__file__).resolve().parent.parent / "samples"
    out = tmp_path / "out"
    result = cli("run", samples, "-o", out, "--vision-model", "my-vlm", "--music-model", "builtin", "--base-url",
                 openai_server.url, "--duration", "1", env=cli_env(OPENAI_API_KEY=SECRET))
    assert result.returncode == 1 and "Invalid API key" in result.stderr
    entries = _entries(out)
    assert all(e["status"] != "ok" or e["tracks"] for e in entries.values()), entries  # "ok" is a made track
    assert entries["calm"]["status"] == "failed" and "Invalid API key" in entries["calm"]["message"]
    assert entries["action"]["status"] == "ok" and (out / entries["action"]["tracks"][0]).is_file()
    assert entries["calm"]["usage"] is None or entries["calm"]["usage"]["prompt_tokens"] == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "Invalid API key" in html
    rerun = cli("run", samples, "-o", out, "--vision-model", "my-vlm", "--music-model", "builtin", "--base-url",
                openai_server.url, "--duration", "1", env=cli_env(OPENAI_API_KEY=SECRET))
    assert rerun.returncode == 0, rerun.stderr
    # the section described before the key was refused was composed then (it had no track): the rerun keeps it
    assert {n: e["status"] for n, e in _entries(out).items()} == {"action": "skipped", "calm": "ok", "webtoon": "ok"}


@pytest.mark.parametrize("trouble", ["down", "no such model", "forbidden", "wait an hour", "a web page"])
def test_a_server_no_section_can_use_stops_the_run_at_the_first(tmp_path, openai_server, trouble):  # noqa: F811
    """A server that was down, a model it does not have (404) or a key it does not let use the model (403) failed
    every section with the same line, each after its retries: 100 chapters, 100 identical failures.  So did a 429
    asking to wait longer than the client waits (each section asked again at once, against the server's word), and
    an address that answers with a web page (nginx's welcome page: the wrong --base-url) before any answer."""
    import socket
    from pathlib import Path

    from output_checks import cli, cli_env, one_line_error

    url = openai_server.url
    if trouble == "down":
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    elif trouble == "wait an hour":
        openai_server.queue(*[Fail(429, "Rate limit reached", retry_after_ms=3600 * 1000, type="requests")] * 9)
    elif trouble == "a web page":
        from openai_server import Raw

        openai_server.queue(*[Raw(200, "<html><body><h1>Welcome to nginx!</h1></body></html>", "text/html")] * 9)
    else:
        status = 404 if trouble == "no such model" else 403
        openai_server.queue(*[Fail(status, f"model 'my-vlm' {trouble}", type="invalid_request_error")] * 9)
    samples = Path(__file__).resolve().parent.parent / "samples"
    out = tmp_path / "out"
    result = cli("describe", samples, "-o", out, "--model", "my-vlm", "--base-url", url, "--timeout", "5",
                 env=cli_env(OPENAI_API_KEY=SECRET))
    assert result.returncode == 1 and one_line_error(result.stderr), result.stderr
    entries = _entries(out)
    assert [e["status"] for e in entries.values()] == ["failed"], entries  # the first section, and no other
    assert len(openai_server.requests) <= 1


# --- answers that are not what they seem -----------------------------------------------------------------------


def test_an_answer_a_content_filter_blocked_is_said_so_and_not_asked_again(openai_server):  # noqa: F811
    """An answer blocked by the server's content filter (content null, finish_reason=content_filter) was "returned
    an empty answer", and the same pages were sent again, to be blocked again."""
    openai_server.queue(Reply(None, finish_reason="content_filter"), Reply(json.dumps(DEFAULT_ANALYSIS)),
                        Reply(DEFAULT_DESCRIPTION))
    with pytest.raises(BackendError) as info:
        OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])
    assert "content filter blocked my-vlm's answer" in info.value.message and "empty" not in info.value.message
    assert len(openai_server.requests) == 1


def test_the_cut_off_hint_speaks_of_the_max_new_tokens_the_user_gave(openai_server):
    """A description cut off at the cap said "raise --max-new-tokens (above 512 it also raises the description's
    own cap of 200)" to a user who had given --max-new-tokens 1000: it says the cap given."""
    analysis = Reply(json.dumps(DEFAULT_ANALYSIS))
    cut = Reply("Slow ambient piano at 70 BPM in D minor with soft str", finish_reason="length")
    openai_server.queue(analysis, cut)
    given = OpenAIDescriber("my-vlm", options(openai_server, max_new_tokens=1000)).describe([line_art("1.png")])
    [said] = [w for w in given.warnings if "cut off at the token limit" in w]
    assert "raise --max-new-tokens (it is 1000 now)" in said and "above 512" not in said, said
    openai_server.queue(analysis, cut)
    default = OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])
    [said] = [w for w in default.warnings if "cut off at the token limit" in w]
    assert "above 512 it also raises the description's own cap of 200" in said, said


def test_a_cut_off_or_json_description_is_not_played_as_it_came(openai_server):  # noqa: F811
    """A description cut off at the token cap ("... with soft str", finish_reason=length) was played word for word;
    a description answered as JSON became the music prompt braces and all, and so did cut-off JSON."""
    analysis = Reply(json.dumps(DEFAULT_ANALYSIS))
    describer = OpenAIDescriber("my-vlm", options(openai_server))

    openai_server.queue(analysis, Reply("Slow ambient piano at 70 BPM in D minor with soft str", finish_reason="length"))
    result = describer.describe([line_art("1.png")])
    assert result.description == "Slow ambient piano at 70 BPM in D minor with soft."
    assert any("cut off at the token limit" in w and "--max-new-tokens" in w for w in result.warnings)

    openai_server.queue(analysis, Reply('{"style": "ambient", "bpm": 70, "key": "D minor", '
                                        '"instruments": ["piano", "strings"], "mood": "melancholic"}'))
    result = describer.describe([line_art("1.png")])
    assert result.description == "ambient, 70 BPM, D minor, piano and strings, melancholic"

    openai_server.queue(analysis, Reply('{"description": "A tense drum pulse at 120 BPM, ominous strings above", '
                                        '"mood": "tense'))  # cut off after the description: the description
    assert describer.describe([line_art("1.png")]).description.startswith("A tense drum pulse at 120 BPM")

    openai_server.queue(analysis, Reply('{"genre": "drama", "atmosphere": "tense", "focus": "vis',
                                        finish_reason="length"))
    with pytest.raises(BackendError, match="ran out of tokens writing the music description") as info:
        describer.describe([line_art("1.png")])
    assert "--max-new-tokens" in info.value.hint

    openai_server.queue(analysis, Reply("<think>The pages are quiet, so the tempo should be", finish_reason="length"))
    with pytest.raises(BackendError, match="its reasoning took them all") as info:  # was "empty description", no hint
        describer.describe([line_art("1.png")])
    assert "--max-new-tokens" in info.value.hint


def test_an_empty_answer_cut_off_at_the_cap_is_asked_again_with_more_room(openai_server):  # noqa: F811
    """A thinking model behind vLLM --reasoning-parser, DeepSeek or Ollama's think puts its reasoning in
    reasoning_content: cut off at the cap, its content is empty (finish_reason=length). The section failed at once
    ("returned an empty answer"), where the same answer with its <think> inline was asked again with twice the room,
    as the README says."""
    openai_server.queue(Reply(None, finish_reason="length"))
    result = OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])
    assert result.analysis == SectionAnalysis(**DEFAULT_ANALYSIS)
    assert len(openai_server.requests) == 3  # asked again, then stage 2
    first, again = (openai_server.requests[k].body["max_tokens"] for k in (0, 1))
    assert again == 2 * first
    assert any("cut off at the token limit" in w and "asked again" in w for w in result.warnings)

    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS)), Reply(None, finish_reason="length"))  # the words
    with pytest.raises(BackendError, match="ran out of tokens before it answered") as info:
        OpenAIDescriber("my-vlm", options(openai_server)).describe([line_art("1.png")])
    assert "--max-new-tokens" in info.value.hint or "max_new_tokens" in info.value.hint


def test_a_cut_off_or_partial_analysis_is_not_taken_for_the_models(openai_server):  # noqa: F811
    """Stage 1 cut off at the token cap was "repaired" into an analysis and no retry asked; fields the answer did
    not give were recorded with invented values and no word."""
    describer = OpenAIDescriber("my-vlm", options(openai_server))
    openai_server.queue(Reply('{"genre": "drama", "atmosphere": "tense", "focus": "vis', finish_reason="length"))
    result = describer.describe([line_art("1.png")])
    assert len(openai_server.requests) == 3  # asked again, then stage 2
    assert result.analysis.pacing == DEFAULT_ANALYSIS["pacing"]  # the answer asked again, not the fragment
    assert any("cut off at the token limit" in w and "asked again" in w for w in result.warnings)
    first, again = (openai_server.requests[k].body["max_tokens"] for k in (0, 1))
    assert again == 2 * first  # the same cap would cut a model that writes the same answer off again
    given = OpenAIDescriber("my-vlm", options(openai_server, max_new_tokens=300))  # a cap the user gave holds
    openai_server.requests.clear()
    openai_server.queue(Reply('{"genre": "drama", "atm', finish_reason="length"))
    given.describe([line_art("1.png")])
    assert [r.body["max_tokens"] for r in openai_server.requests[:2]] == [300, 300]

    openai_server.queue(Reply('{"genre": "drama", "atmosphere": "tense"}'))
    result = describer.describe([line_art("1.png")])
    assert result.analysis.atmosphere == "tense"
    assert "1.png: the analysis gave no focus, pacing, plot; the defaults were used" in result.warnings


def test_debug_shows_where_a_sections_failure_was_raised(tmp_path, openai_server):  # noqa: F811
    """MANGA2MUSIC_DEBUG=1 is documented to add the traceback to a section's failure; one raised as a manga2music
    error (a server's 400 here) showed only the one line."""
    from pathlib import Path

    from output_checks import cli, cli_env

    openai_server.queue(Fail(400, "Invalid image data", type="invalid_request_error"))
    samples = Path(__file__).resolve().parent.parent / "samples" / "calm"
    args = ("describe", samples, "-o", tmp_path / "out", "--model", "my-vlm", "--base-url", openai_server.url)
    debug = cli(*args, env=cli_env(MANGA2MUSIC_DEBUG="1"))
    assert debug.returncode == 1 and "Invalid image data" in debug.stderr
    assert "Traceback" in debug.stderr and "openai_chat.py" in debug.stderr
    openai_server.queue(Fail(400, "Invalid image data", type="invalid_request_error"))
    plain = cli(*args, "--force")
    assert "Invalid image data" in plain.stderr and "Traceback" not in plain.stderr


@pytest.mark.parametrize("answer, said, hint", [
    # a completions API's answer (no message), and choices that are not a list: "AttributeError: 'NoneType' object
    # has no attribute 'content'" was the section's line
    (("Raw", 200, json.dumps({"id": "x", "object": "text_completion", "choices": [
        {"index": 0, "text": "hello", "finish_reason": "stop"}]}), "application/json"),
     "not an OpenAI-compatible answer (its answer holds no chat message)", "/v1"),
    (("Raw", 200, json.dumps({"id": "x", "choices": "nope"}), "application/json"),
     "not an OpenAI-compatible answer (its answer holds no chat message)", "/v1"),
    # vLLM, FastAPI, llama.cpp and LM Studio answer an unknown route with a JSON 404 that names no model: the
    # address lacks /v1 (it said "check the model name")
    (("Raw", 404, json.dumps({"detail": "Not Found"}), "application/json"), "404", "/v1"),
    (("Fail", 404, "The model `llava` does not exist."), "does not exist", "check the model name"),
    # a server's error with terminal escapes: they reached the terminal, recolouring it
    (("Fail", 500, "\x1b[31mCUDA error\x1b[0m: device lost\x07"), "500 CUDA error: device lost", ""),
    # an HTML error page's title holds the status too: "503 503 Service Temporarily Unavailable"
    (("Raw", 503, "<html><head><title>503 Service Temporarily Unavailable</title></head></html>", "text/html"),
     "failed: 503 Service Temporarily Unavailable", ""),
    # a server whose error is a string, not an object: it named the model, and was told to check the address
    (("Raw", 404, json.dumps({"error": "model llava not found"}), "application/json"), "not found",
     "check the model name"),
    # one page too big for the model's context: it said to use --single-stage, which fails the same way
    (("Fail", 400, "This model's maximum context length is 8192 tokens. However, your messages resulted in 9500 "
               "tokens."), "maximum context length", "detail='low'"),
])
def test_a_servers_odd_answer_or_error_says_what_to_change(openai_server, answer, said, hint):  # noqa: F811
    from openai_server import Fail, Raw

    kind, *args = answer
    openai_server.queue(Raw(*args) if kind == "Raw" else Fail(*args, type="invalid_request_error"))
    with pytest.raises(BackendError) as info:
        OpenAIDescriber("llava", options(openai_server, max_retries=0)).describe([line_art("1.png")])
    assert said in str(info.value) and "Error" not in str(info.value), str(info.value)
    assert hint in (info.value.hint or ""), info.value.hint
    assert "--single-stage" not in (info.value.hint or "") or hint == "--single-stage"


def test_a_server_that_never_answers_stops_the_run_but_one_that_has_answered_fails_the_section(openai_server):  # noqa: F811
    """A server that takes the connection and never answers cost --timeout times the tries for every section (with
    the defaults, 8 minutes each) and the run went on to the next; one that has answered this run may only be slow
    on these pages: that section fails alone, as before."""
    from openai_server import Delay

    describer = OpenAIDescriber("gpt-4o", options(openai_server, timeout=0.3, max_retries=0))
    openai_server.queue(Delay(2.0))
    with pytest.raises(ServerUnusableError, match="timed out after 0.3 s .*, which has answered no request") as info:
        describer.describe([line_art("1.png")])
    assert "raise timeout" in info.value.hint and info.value.stops_run
    describer.describe([line_art("2.png")])  # it answers now
    openai_server.queue(Delay(2.0))
    with pytest.raises(BackendError) as info:
        describer.describe([line_art("3.png")])
    assert not isinstance(info.value, ServerUnusableError) and "raise timeout" in info.value.hint
    # ... but a server that answered once, then times out on the next sections too, was waited on for every one of
    # them (a 100-chapter library: hours): the second in a row with no answer between stops the run
    openai_server.queue(Delay(2.0))
    with pytest.raises(ServerUnusableError, match="it has answered nothing since 1 request before this one") as info:
        describer.describe([line_art("4.png")])
    assert info.value.stops_run and "stuck" in info.value.hint


def test_save_artifact_with_single_stage_says_why_there_is_no_analysis_and_what_makes_one(tmp_path,
                                                                                          openai_server):  # noqa: F811
    """`describe --single-stage --save-artifact` said "ok" and wrote no NAME.analysis.json, without a word; the rerun
    then advised `--force`, which kept --single-stage (as the words there were made) and wrote none again."""
    import shutil
    from pathlib import Path

    from output_checks import cli

    chapter, out = tmp_path / "calm", tmp_path / "out"
    shutil.copytree(Path(__file__).resolve().parent.parent / "samples" / "calm", chapter)
    first = cli("describe", chapter, "-o", out, "--base-url", openai_server.url, "--model", "llava",
                "--single-stage", "--save-artifact")
    assert first.returncode == 0, first.stderr
    said = " ".join(first.stderr.split())
    assert "--save-artifact: no calm.analysis.json" in said and "--two-stage makes one" in said, said
    again = cli("describe", chapter, "-o", out, "--save-artifact")
    assert again.returncode == 0 and not (out / "calm.analysis.json").exists()
    assert "describe them again with --two-stage --force" in " ".join(again.stderr.split()), again.stderr
    made = cli("describe", chapter, "-o", out, "--save-artifact", "--two-stage", "--force")
    assert made.returncode == 0, made.stderr
    assert json.loads((out / "calm.analysis.json").read_text(encoding="utf-8"))["analysis"]


def test_a_plain_rerun_keeps_the_server_model_the_folder_was_described_with(tmp_path, openai_server):  # noqa: F811
    """`run LIB --base-url URL --vision-model llava:13b`, a chapter added, then the plain `run LIB` the README gives
    for it: the rerun went back to auto, which picks builtin here, and wrote builtin's words over every paid
    description ("describing again: describer llava:7b -> builtin").  A model left out is the one the folder's
    sections were made with, on the server it was made on; `--vision-model auto` lets the machine pick again."""
    import shutil
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples"
    lib, out = tmp_path / "lib", tmp_path / "out"
    shutil.copytree(samples / "calm", lib / "calm")
    made = cli("run", lib, "-o", out, "--vision-model", "llava:13b", "--base-url", openai_server.url,
               "--music-model", "builtin", "--duration", "1")
    assert made.returncode == 0, made.stderr
    words, asked = (out / "calm.txt").read_bytes(), len(openai_server.requests)
    shutil.copytree(samples / "action", lib / "action")  # a chapter added
    again = cli("run", lib, "-o", out, "--duration", "1")
    assert again.returncode == 0, again.stderr
    assert f"--vision-model llava:13b on {openai_server.url}, as the words there were made (--vision-model auto " \
           "lets this machine pick)" in " ".join(again.stderr.split()), again.stderr
    assert "describing again" not in again.stderr and (out / "calm.txt").read_bytes() == words
    assert len(openai_server.requests) > asked  # the new chapter was described by the server's model
    records = {name: json.loads((out / f"{name}.json").read_text(encoding="utf-8")) for name in ("calm", "action")}
    assert [records[n]["describe"]["model"] for n in ("calm", "action")] == ["llava:13b", "llava:13b"]
    assert records["calm"]["compose"]["model"] == "builtin"
    assert "--music-model builtin, as the music there was made" in again.stderr  # kept too: auto could pick a
    # non-commercial model once its weights are here, and make every track again as its music

    picked = cli("run", lib, "-o", out, "--duration", "1", "--vision-model", "auto")
    assert picked.returncode == 0, picked.stderr
    assert "describing again: describer llava:13b \u2192 builtin" in picked.stderr


def test_a_plain_rerun_keeps_the_reading_settings_the_folder_was_described_with(tmp_path, openai_server):  # noqa: F811
    """`run LIB --base-url URL --vision-model llava:13b --detail low --single-stage --chunk-size 2`, a chapter added,
    then the plain `run LIB`: it kept the model and server, but went back to --detail auto, two stages and 8 pages a
    request, so every section was described again ("the describer's settings changed"), paid again, and every track
    replaced.  The settings the words were read with are kept as the model is, and said."""
    import shutil
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples"
    lib, out = tmp_path / "lib", tmp_path / "out"
    shutil.copytree(samples / "calm", lib / "calm")
    made = cli("run", lib, "-o", out, "--vision-model", "llava:13b", "--base-url", openai_server.url,
               "--music-model", "builtin", "--duration", "1", "--detail", "low", "--single-stage", "--chunk-size", "2")
    assert made.returncode == 0, made.stderr
    words, track = (out / "calm.txt").read_bytes(), (out / "calm.wav").read_bytes()
    shutil.copytree(samples / "action", lib / "action")  # a chapter added
    again = cli("run", lib, "-o", out, "--duration", "1")
    assert again.returncode == 0, again.stderr
    said = " ".join(again.stderr.split())
    assert f"--vision-model llava:13b on {openai_server.url} with --detail low, --single-stage, --chunk-size 2, as " \
           "the words there were made" in said, said
    assert "describing again" not in said and "composing again" not in said, said
    assert (out / "calm.txt").read_bytes() == words and (out / "calm.wav").read_bytes() == track
    added = json.loads((out / "action.json").read_text(encoding="utf-8"))["describe"]["settings"]
    assert (added["detail"], added["single_stage"], added["chunk_size"]) == ("low", True, 2)
    named = cli("run", lib, "-o", out, "--duration", "1", "--vision-model", "llava:13b", "--base-url",
                openai_server.url)  # the same model named again (a shell's history): read as its words were
    assert named.returncode == 0 and "describing again" not in named.stderr, named.stderr
    assert "--detail low, --single-stage, --chunk-size 2, as the words there were read" in \
        " ".join(named.stderr.split()), named.stderr
    back = cli("run", lib, "-o", out, "--duration", "1", "--detail", "auto", "--two-stage", "--chunk-size", "8")
    assert back.returncode == 0 and "the describer's settings changed" in back.stderr, back.stderr  # given: taken


def test_a_plain_rerun_keeps_the_servers_key_variable_and_token_cap(tmp_path, openai_server):  # noqa: F811
    """`run LIB --base-url URL --vision-model M --api-key-env LOCALKEY --max-new-tokens 2048`, a chapter added, then
    the plain `run LIB`: it kept the model and the server from the records, but sent that server $OPENAI_API_KEY,
    the key --api-key-env had kept out of its reach, and read the new chapter with the default token cap (a
    thinking model's answers cut off). The variable's name (never its value) and the cap are recorded and kept."""
    import shutil
    from pathlib import Path

    from output_checks import cli, cli_env

    samples = Path(__file__).resolve().parent.parent / "samples"
    lib, out = tmp_path / "lib", tmp_path / "out"
    shutil.copytree(samples / "calm", lib / "calm")
    env = cli_env(LOCALKEY="local-token", OPENAI_API_KEY="sk-kept-from-that-server")
    made = cli("run", lib, "-o", out, "--vision-model", "llava:13b", "--base-url", openai_server.url,
               "--api-key-env", "LOCALKEY", "--max-new-tokens", "2048", "--music-model", "builtin", "--duration", "1",
               env=env)
    assert made.returncode == 0, made.stderr
    asked = len(openai_server.requests)
    shutil.copytree(samples / "action", lib / "action")  # a chapter added
    again = cli("run", lib, "-o", out, "--duration", "1", env=env)
    assert again.returncode == 0, again.stderr
    said = " ".join(again.stderr.split())
    assert f"--vision-model llava:13b on {openai_server.url} (its key from $LOCALKEY) with --max-new-tokens 2048, " \
           "as the words there were made" in said, said
    later = openai_server.requests[asked:]
    assert later, "the chapter added was described by the server's model"
    assert {r.headers.get("authorization") for r in openai_server.requests} == {"Bearer local-token"}
    assert {r.body["max_tokens"] for r in later} == {2048}
    for name in ("calm", "action"):
        text = (out / f"{name}.json").read_text(encoding="utf-8")
        assert json.loads(text)["describe"]["kept_settings"] == {"max_new_tokens": 2048, "api_key_env": "LOCALKEY"}
        assert "local-token" not in text and "sk-kept" not in text


def test_a_describe_stopped_before_its_words_resumes_with_the_server_it_was_asked_for(tmp_path,
                                                                                     openai_server):  # noqa: F811
    """`describe LIB --model M --base-url URL` stopped (Ctrl-C) before the model's first answer: the plain rerun
    described every section with what auto picks (builtin here), where a stopped `run` resumes with the model and
    server it was asked for."""
    import shutil
    from pathlib import Path

    import manga2music

    samples = Path(__file__).resolve().parent.parent / "samples"
    lib, out = tmp_path / "lib", tmp_path / "out"
    for name in ("calm", "action"):
        shutil.copytree(samples / name, lib / name)

    def stop(done, total, label):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manga2music.describe([lib], out, model="my-vlm", config=manga2music.RunConfig(
            vision_options={"base_url": openai_server.url, "detail": "low"}), callbacks=manga2music.Callbacks(step=stop))
    said = []
    made = manga2music.describe([lib], out, callbacks=manga2music.Callbacks(log=lambda level, m: said.append(m)))
    assert {e["vision_model"] for e in made["sections"]} == {"my-vlm"}, said
    assert any("my-vlm" in m and "as the run stopped before was asked" in m for m in said), said
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert record["describe"]["settings"]["detail"] == "low"  # read as it was asked
    again = manga2music.describe([lib], out)  # made: nothing stopped any more
    assert {e["status"] for e in again["sections"]} == {"skipped"}


def test_a_key_variable_kept_for_one_server_is_not_sent_to_another_named(tmp_path, openai_server):  # noqa: F811
    """After `run --base-url A --api-key-env HOSTED_KEY`, a run naming the model on server B (no --api-key-env)
    kept $HOSTED_KEY: without it set the run stopped ("$HOSTED_KEY is not set", a flag never given in that
    command); with it set, server B got A's key."""
    import shutil
    from pathlib import Path

    from openai_server import FakeOpenAIServer
    from output_checks import cli, cli_env

    samples = Path(__file__).resolve().parent.parent / "samples"
    out = tmp_path / "out"
    made = cli("run", samples / "calm", "-o", out, "--vision-model", "my-vlm", "--base-url", openai_server.url,
               "--api-key-env", "HOSTED_KEY", "--music-model", "builtin", "--duration", "1",
               env=cli_env(HOSTED_KEY="sk-hosted-secret"))
    assert made.returncode == 0, made.stderr
    other = FakeOpenAIServer().start()
    try:
        for env in (cli_env(), cli_env(HOSTED_KEY="sk-hosted-secret")):
            shutil.rmtree(out / ".manga2music" / "answers", ignore_errors=True)
            again = cli("run", samples / "calm", samples / "action", "-o", out, "--vision-model", "my-vlm",
                        "--base-url", other.url, "--music-model", "builtin", "--duration", "1", env=env)
            assert again.returncode == 0, again.stderr
            assert "HOSTED_KEY" not in again.stderr, again.stderr
        assert other.requests and all(r.headers.get("authorization") != "Bearer sk-hosted-secret"
                                      for r in other.requests)
    finally:
        other.stop()


def test_a_servers_model_named_by_a_path_is_the_servers_even_where_that_path_is_here(tmp_path, openai_server,
                                                                                     monkeypatch):  # noqa: F811
    """llama-server names its model by the .gguf it loaded: `--model models/x.gguf --base-url URL` said "is a file,
    not a model folder" where that file is on this machine; a Path naming vLLM's model (`Path("/models/X")`) was
    "no such folder" in the Python API.  With a base URL both are the server's model."""
    from pathlib import Path

    import manga2music

    samples = Path(__file__).resolve().parent.parent / "samples"
    gguf = tmp_path / "qwen2-vl-2b-q4.gguf"
    gguf.write_bytes(b"")
    for model in (str(gguf), Path("/models/Qwen2-VL-7B-Instruct")):
        made = manga2music.describe([samples / "calm"], tmp_path / f"out{len(str(model))}", model=model,
                                    config=manga2music.RunConfig(vision_options={"base_url": openai_server.url}))
        assert made["sections"][0]["status"] == "ok" and made["sections"][0]["vision_model"] == str(model), made
    assert openai_server.requests[-1].body["model"] == "/models/Qwen2-VL-7B-Instruct"


def test_the_key_variable_is_kept_for_the_server_openai_base_url_names(monkeypatch):
    """The server named by OPENAI_BASE_URL, not --base-url, was taken for another server than the one the words were
    made on: the rerun sent it $OPENAI_API_KEY, not the key --api-key-env had named."""
    from manga2music.api import _keep_key_variable
    from manga2music.pipeline import RunConfig

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    cfg = RunConfig()
    made = [{"settings": {"base_url": "http://127.0.0.1:8000/v1"}, "kept_settings": {"api_key_env": "MYKEY"}}]
    assert _keep_key_variable(cfg, made) == "MYKEY" and cfg.vision_options["api_key_env"] == "MYKEY"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9000/v1")  # another server: not its key
    assert _keep_key_variable(RunConfig(), made) == ""


def test_a_servers_model_named_by_an_absolute_path_is_kept_by_a_rerun(tmp_path, openai_server):  # noqa: F811
    """vLLM serves a model by the path it was loaded from (`vllm serve /models/Qwen2-VL-7B-Instruct`): after a run
    with it, every rerun said "the words there were made by the model in /models/Qwen2-VL-7B-Instruct, which is no
    longer there", taking the server's model id for a local folder moved away."""
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples"
    out, served = tmp_path / "out", str(tmp_path / "models" / "Qwen2-VL-7B-Instruct")  # not on this machine
    made = cli("run", samples / "calm", "-o", out, "--vision-model", served, "--base-url", openai_server.url,
               "--music-model", "builtin", "--duration", "1")
    assert made.returncode == 0, made.stderr
    asked = len(openai_server.requests)
    for flags in ([], ["--base-url", openai_server.url]):
        again = cli("run", samples / "calm", "-o", out, *flags)
        assert again.returncode == 0 and "no longer there" not in again.stderr, again.stderr
        on = "" if flags else f" on {openai_server.url}"  # the server said where it was not given
        assert f"--vision-model {served}{on}, as the words there were made" in " ".join(again.stderr.split()), \
            again.stderr
    assert len(openai_server.requests) == asked  # nothing read again


def test_a_run_stopped_before_its_first_words_resumes_reading_as_it_was_asked(tmp_path, openai_server):  # noqa: F811
    """`run LIB --single-stage --detail low` stopped (Ctrl-C, kill -9) before any section was described: the plain
    rerun kept the model and server "as the run stopped before was asked", but read every page in two stages at
    --detail auto, twice the requests, unsaid."""
    import shutil
    from pathlib import Path

    import manga2music

    samples = Path(__file__).resolve().parent.parent / "samples"
    lib, out = tmp_path / "lib", tmp_path / "out"
    shutil.copytree(samples / "calm", lib / "calm")

    def stop(level, line):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manga2music.run(lib, out, vision_model="llava:13b", music_model="builtin", callbacks=manga2music.Callbacks(
            step=lambda done, total, label: stop(None, label)), config=manga2music.RunConfig(
                duration=1.0, vision_options={"base_url": openai_server.url, "single_stage": True, "detail": "low"}))
    assert not (out / "calm.txt").exists()
    said: list[str] = []
    manga2music.run(lib, out, callbacks=manga2music.Callbacks(log=lambda level, line: said.append(line)))
    settings = json.loads((out / "calm.json").read_text(encoding="utf-8"))["describe"]["settings"]
    assert (settings["single_stage"], settings["detail"]) == (True, "low"), said
    assert any("detail='low'" in line and "single_stage=True" in line for line in said), said


def test_a_plain_rerun_of_sections_made_by_several_models_or_servers_is_one_line_and_changes_nothing(
        tmp_path, openai_server):  # noqa: F811
    """Sections described by builtin and by a server's model (or by one model name on two servers), then a plain
    rerun with nothing to do: auto (builtin) described the server's section again over its paid words, or the model
    name kept without its server sent the pages to api.openai.com.  Which one is meant is asked, before any work."""
    import shutil
    from pathlib import Path

    from output_checks import cli, one_line_error

    samples = Path(__file__).resolve().parent.parent / "samples"
    out = tmp_path / "out"
    assert cli("run", samples / "calm", "-o", out, "--vision-model", "builtin", "--music-model", "builtin",
               "--duration", "1").returncode == 0
    assert cli("run", samples / "action", "-o", out, "--vision-model", "my-vlm", "--base-url", openai_server.url,
               "--music-model", "builtin", "--duration", "1").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    mixed = cli("run", samples / "calm", samples / "action", "-o", out)
    assert mixed.returncode == 2 and one_line_error(mixed.stderr), mixed.stderr
    assert "the words there were made by builtin and my-vlm" in " ".join(mixed.stderr.split()), mixed.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    added = cli("run", samples / "webtoon", "-o", out)  # a new chapter alone: nothing else is made again
    assert added.returncode == 0, added.stderr
    assert "auto picks for the sections made now" in " ".join(added.stderr.split()), added.stderr
    assert all((out / name).read_bytes() == data for name, data in before.items() if name.startswith(("calm", "act")))

    two = tmp_path / "two"
    shutil.copytree(samples / "calm", tmp_path / "lib" / "calm")
    shutil.copytree(samples / "action", tmp_path / "lib" / "action")
    assert cli("run", tmp_path / "lib" / "calm", "-o", two, "--vision-model", "my-vlm", "--base-url",
               openai_server.url, "--music-model", "builtin", "--duration", "1").returncode == 0
    assert cli("run", tmp_path / "lib" / "action", "-o", two, "--vision-model", "my-vlm", "--base-url",
               openai_server.url.replace("127.0.0.1", "localhost"), "--music-model", "builtin", "--duration",
               "1").returncode == 0  # the same server by another name: two addresses in the records
    asked = len(openai_server.requests)
    servers = cli("run", tmp_path / "lib", "-o", two)
    assert servers.returncode == 2 and "made by my-vlm on several servers" in " ".join(servers.stderr.split())
    assert len(openai_server.requests) == asked


def test_a_run_stopped_while_a_server_described_resumes_with_that_server_model(tmp_path, openai_server):  # noqa: F811
    """`run --vision-model my-vlm --base-url URL` stopped while the server read the pages, then the plain rerun the
    stop line asks for: it described the pages with builtin (auto), not the model and server it was asked for."""
    from pathlib import Path

    import manga2music
    from manga2music.jobs import Callbacks
    from manga2music.options import RunConfig

    samples = Path(__file__).resolve().parent.parent / "samples"
    out = tmp_path / "out"

    def stop(done, total, label):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manga2music.run([samples / "calm"], out, vision_model="my-vlm", music_model="builtin",
                        config=RunConfig(duration=1.0, vision_options={"base_url": openai_server.url}),
                        callbacks=Callbacks(step=stop))
    assert not (out / "calm.txt").exists()
    asked = len(openai_server.requests)
    said = []
    manga2music.run([samples / "calm"], out, callbacks=Callbacks(log=lambda level, text: said.append(text)))
    record = json.loads((out / "calm.json").read_text(encoding="utf-8"))
    assert record["describe"]["model"] == "my-vlm" and len(openai_server.requests) > asked, said
    assert any(f"vision_model='my-vlm' on {openai_server.url}, as the run stopped before was asked" in s
               for s in said), said


def test_a_server_url_in_other_letter_case_is_the_same_server_and_describes_nothing_again(tmp_path, openai_server):  # noqa: F811,E501
    """`--base-url HTTP://127.0.0.1:PORT/v1` after `http://127.0.0.1:PORT/v1` (or LOCALHOST after localhost): the same
    server, as a scheme and host are in any case, but every section was described again ("the describer's settings
    changed (base_url http://... -> HTTP://...)") and paid for again."""
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples"
    out = tmp_path / "out"
    made = cli("describe", samples / "calm", "-o", out, "--model", "llava:13b", "--base-url", openai_server.url)
    assert made.returncode == 0, made.stderr
    asked = len(openai_server.requests)
    shouted = openai_server.url.replace("http://", "HTTP://") + "/"
    again = cli("describe", samples / "calm", "-o", out, "--model", "llava:13b", "--base-url", shouted)
    assert again.returncode == 0, again.stderr
    assert "describing again" not in again.stderr and len(openai_server.requests) == asked, again.stderr


def test_a_server_on_this_machine_with_its_own_certificate_is_trusted_as_ssl_cert_file_says(tmp_path, monkeypatch):
    """A local server over HTTPS with its own certificate, named in SSL_CERT_FILE: httpx alone took it, but the
    describer (which reaches this machine without the environment's proxy settings) ignored SSL_CERT_FILE too, and
    every section failed "its TLS certificate was not accepted (self-signed certificate)"."""
    import shutil
    import ssl
    import subprocess

    from openai_server import FakeOpenAIServer

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    server = FakeOpenAIServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server._httpd.socket = context.wrap_socket(server._httpd.socket, server_side=True)
    server.start()
    try:
        url = f"https://localhost:{server._httpd.server_address[1]}/v1"
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(BackendError, match="certificate"):
            OpenAIDescriber("my-vlm", {"base_url": url, "timeout": 10, "max_retries": 0}).describe([line_art("1.png")])
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        result = OpenAIDescriber("my-vlm", {"base_url": url, "timeout": 10, "max_retries": 0}).describe(
            [line_art("1.png")])
        assert result.description == DEFAULT_DESCRIPTION
    finally:
        server.stop()


def test_the_key_variable_is_kept_for_the_openai_api_too():
    """The variable --api-key-env named was kept only where a --base-url was recorded: a rerun against the OpenAI
    API itself (no --base-url) sent $OPENAI_API_KEY, not the key the first run was given."""
    from manga2music.api import _keep_key_variable
    from manga2music.pipeline import RunConfig

    cfg = RunConfig()
    said = _keep_key_variable(cfg, [{"model": "gpt-4o-mini", "settings": {"base_url": None},
                                     "kept_settings": {"api_key_env": "WORK_KEY"}}])
    assert cfg.vision_options["api_key_env"] == "WORK_KEY" and said == "WORK_KEY"  # the line says "(its key
    # from $WORK_KEY)": test_a_plain_rerun_keeps_the_servers_key_variable_and_token_cap
    cfg = RunConfig(vision_options={"api_key_env": "OTHER"})  # given: taken
    assert _keep_key_variable(cfg, [{"kept_settings": {"api_key_env": "WORK_KEY"}}]) == ""
    assert cfg.vision_options["api_key_env"] == "OTHER"


def test_the_model_that_gave_an_answer_kept_from_a_stopped_run_is_recorded(tmp_path, openai_server):  # noqa: F811
    """A section whose pages a dated snapshot read before the run stopped (no quota left), and whose description
    the rerun asked for, was recorded as made by the model asked for alone: the answer kept from the stopped run
    was used, and the model that gave it was in no file."""
    from pathlib import Path

    from output_checks import cli

    samples = Path(__file__).resolve().parent.parent / "samples"
    args = ("describe", samples / "calm", "-o", tmp_path / "out", "--model", "llava:13b", "--base-url",
            openai_server.url)
    openai_server.queue(Reply(json.dumps(DEFAULT_ANALYSIS), served_as="llava:13b-v1.6-q4_0"),
                        Fail(429, "You exceeded your current quota", type="insufficient_quota", retry_after_ms=None))
    stopped = cli(*args)
    assert stopped.returncode != 0 and "quota" in stopped.stderr, stopped.stderr
    openai_server.queue(Reply("Calm piano, 70 BPM, C major."))
    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 answer the model gave a run that did not finish was used" in resumed.stderr, resumed.stderr
    assert len(openai_server.requests) == 3  # the pages were not read again
    record = json.loads((tmp_path / "out" / "calm.json").read_text(encoding="utf-8"))["describe"]
    assert record["served_model"] == "llava:13b-v1.6-q4_0, llava:13b", record  # the pages, then the description
