"""Reading what chat models answer: sloppy JSON analyses, chunk merges, clean descriptions.

Shared by every chat describer (OpenAI, transformers VLMs).  Models answer in
many shapes; these functions accept the usual sloppiness and refuse what must
never reach a music model (errors, apologies, empty text), raising
``ValueError`` with a short reason the caller turns into a ``BackendError``.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from typing import Optional, Sequence

from ..analysis import GENRES, SectionAnalysis
from ..prompts import MAX_DESCRIPTION_CHARS, MAX_DESCRIPTION_WORDS
from ..wording import listed

#: other names models use for the analysis keys (compared after :func:`_norm_key`)
KEY_ALIASES = {
    "genre": ("genre", "category", "genre_category", "story_genre", "type"),
    "atmosphere": ("atmosphere", "emotional_atmosphere", "emotion", "emotions", "mood", "tone", "feeling"),
    "focus": ("focus", "scene_focus", "driven", "driven_by"),
    "pacing": ("pacing", "pace", "tempo", "rhythm"),
    "plot": ("plot", "summary", "story", "plot_summary", "what_happens"),
}
_ALIAS_TO_KEY = {alias: key for key, aliases in KEY_ALIASES.items() for alias in aliases}

#: what a missing field becomes (a missing focus follows the genre instead)
DEFAULTS = {"genre": "drama", "atmosphere": "neutral", "pacing": "moderate", "plot": ""}

_GENRE_SYNONYMS = {
    "science fiction": "sci-fi", "sci fi": "sci-fi", "scifi": "sci-fi", "romantic": "romance",
    "comedic": "comedy", "funny": "comedy", "humorous": "humor", "humour": "humor",
    "dialogue": "conversation", "slice of life": "conversation", "fight": "action", "battle": "action",
}

_FIELD_LIMITS = {"genre": 40, "atmosphere": 160, "pacing": 160, "plot": 500}
_MERGED_LIMITS = {"atmosphere": 200, "pacing": 200, "plot": 700}

_ERROR_PATTERNS = [
    r"\b(?:i'm|i am|im) (?:sorry|unable|not able)\b",
    r"\bi (?:cannot|can't|can not|won't|apologi[sz]e)\b(?! help but\b)",  # "I can't help but imagine ..." is music
    r"\bas an ai\b",
    r"\b(?:ai|large) language model\b",
    r"^(?:sorry\b|error\s*[:\d(]|exception\s*[:(]|traceback\b|warning\s*:)",  # "Warning sirens open ..." is music
    r"\b(?:internal server error|rate limit|status code \d{3}|api key|bad request)\b",
    r"\bunable to (?:view|see|process|analy[sz]e|help|assist|comply|provide)\b",
]


# --- what is not the answer -----------------------------------------------------------------

#: a thinking model's reasoning before its answer (Qwen3, QwQ, DeepSeek-R1 on servers without a reasoning parser)
_REASONING = re.compile(r"<(think|thinking|reasoning)>.*?(?:</\1>|$)", re.S | re.I)
#: special tokens a server left in the text (ChatML, Llama, Gemma): never music words
_SPECIAL_TOKENS = re.compile(r"<\|[a-z_]{2,20}\|>|</?s>|<(?:eos|bos|end_of_turn|start_of_turn|pad)>", re.I)


def strip_reasoning(text: str) -> str:
    """The answer without a thinking model's reasoning and a server's special tokens.  A reasoning block the model
    did not finish (cut off by its token limit) leaves nothing; a closing tag with no opening one (the chat
    template opened it in the prompt) ends the reasoning."""
    text = _REASONING.sub("", str(text or ""))
    closing = re.search(r"</(?:think|thinking|reasoning)>", text, re.I)
    if closing:
        text = text[closing.end():]
    return _SPECIAL_TOKENS.sub("", text).strip()


# --- JSON analyses -------------------------------------------------------------------------


def _norm_key(key: object) -> str:
    return re.sub(r"[^a-z]+", "_", str(key).lower()).strip("_")


def strip_fences(text: str) -> str:
    """The inside of the first ``` block, or the text itself."""
    m = re.search(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)(?:```|$)", text, re.S)
    return m.group(1) if m else text


def _object_candidates(text: str) -> list[str]:
    """The first ``{...}`` in the text (balanced, string-aware), or its truncated start closed up."""
    start = text.find("{")
    if start < 0:
        return []
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'" and (ch == '"' or not text[i - 1].isalpha()):  # an apostrophe inside a word is no quote
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return [text[start : i + 1]]
    rest = text[start:].rstrip().rstrip(",")
    return [rest + "}", rest + '"}', rest]  # cut off by a token limit


def _requote(text: str) -> str:
    """Turn single-quoted strings into JSON strings; an apostrophe inside a word does not end them."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            j = i + 1
            while j < n:
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == ch and (ch == '"' or re.match(r"\s*(?:[:,}\]]|$)", text[j + 1 :])):
                    break
                j += 1
            inner = text[i + 1 : j]
            out.append(text[i : j + 1] if ch == '"' else json.dumps(inner.replace("\\'", "'")))
            i = j + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _loads_tolerant(candidate: str) -> dict | None:
    """json.loads, then the usual repairs: trailing commas, single quotes, bare keys, Python literals."""
    text = candidate.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'").replace("\u2019", "'")
    no_trailing = re.sub(r",\s*([}\]])", r"\1", text)
    attempts = [
        lambda: json.loads(text),
        lambda: json.loads(no_trailing),
        lambda: ast.literal_eval(re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", text)))),
    ]
    requoted = _requote(no_trailing)
    attempts.append(lambda: json.loads(requoted))
    bare = re.sub(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_ \-]*?)\s*:", r'\1"\2":', requoted)
    attempts.append(lambda: json.loads(bare))
    for attempt in attempts:
        try:
            value = attempt()
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_json_object(text: str) -> dict:
    """The first JSON object in a model's answer (fences, prose, single quotes, trailing commas tolerated).

    Raises ValueError when there is none.
    """
    body = strip_fences(strip_reasoning(str(text or "")))
    for candidate in _object_candidates(body):
        data = _loads_tolerant(candidate)
        if data is not None:
            return data
    raise ValueError("no JSON object in the answer")


def _key_lines(text: str) -> dict:
    """``Genre: comedy`` style lines (small models often answer like a form)."""
    found = {}
    pattern = r"^\s*(?:[-*\u2022]|\d+[.)])?\s*[*_\"']*\s*([A-Za-z][A-Za-z _-]{1,30}?)\s*[*_\"']*\s*[:=]\s*(.+?)\s*$"
    for m in re.finditer(pattern, text, re.M):
        key = _ALIAS_TO_KEY.get(_norm_key(m.group(1)))
        if key and key not in found:
            found[key] = m.group(2).strip(" *_\"',")
    return found if len(found) >= 2 else {}


def _as_text(value: object) -> str:
    """A field's words: a string, or a list of strings joined; anything else (a number, an object, true) is no
    words: ``{"genre": 5}`` or ``{"plot": {"a": 1}}`` is a field the answer did not give, not "5" or "a: 1"."""
    if isinstance(value, (list, tuple)):
        return ", ".join(_as_text(v) for v in value if isinstance(v, str))
    return " ".join(value.split()) if isinstance(value, str) else ""


def _trim(text: str, limit: int) -> str:
    """Cut at a word boundary so the text fits ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:-") + "\u2026"


def normalize_genre(value: str) -> str:
    """The closest of :data:`GENRES` found in ``value``, else its first words (lowercase)."""
    text = value.lower().strip(" .!\"'")
    for word, genre in _GENRE_SYNONYMS.items():
        text = re.sub(rf"\b{re.escape(word)}\b", genre, text)
    hits = [(text.find(g), g) for g in GENRES if re.search(rf"(?<![\w-]){re.escape(g)}(?![\w-])", text)]
    if hits:
        return min(hits)[1]
    return " ".join(text.split()[:3]) or DEFAULTS["genre"]


def normalize_focus(value: str, genre: str) -> str:
    """``dialogue`` or ``visual`` from phrases like "Dialogue-driven"; a missing focus follows the genre."""
    text = value.lower()
    if re.search(r"dialog|conversation|talk|text|speech|word", text):
        return "dialogue"
    if re.search(r"visual|action|image|art|picture|motion", text):
        return "visual"
    return "dialogue" if genre == "conversation" else "visual"


def analysis_from_dict(data: dict, missing: list[str] | None = None) -> SectionAnalysis:
    """Build the analysis from whatever keys a model used; raise ValueError when none is known.  The fields the
    answer did not give (filled with defaults) are appended to ``missing`` when it is given."""
    fields: dict[str, str] = {}
    for raw_key, value in data.items():
        key = _ALIAS_TO_KEY.get(_norm_key(raw_key))
        if key and key not in fields:
            fields[key] = _as_text(value)
    if not (fields.get("genre") or fields.get("atmosphere")):
        raise ValueError("no genre or atmosphere in the answer")
    if missing is not None:
        missing.extend(key for key in KEY_ALIASES if not fields.get(key, "").strip())
    genre = normalize_genre(fields.get("genre") or DEFAULTS["genre"])
    out = {"genre": genre, "focus": normalize_focus(fields.get("focus", ""), genre)}
    for key in ("atmosphere", "pacing", "plot"):
        out[key] = _trim(fields.get(key) or DEFAULTS[key], _FIELD_LIMITS[key])
    out["genre"] = _trim(out["genre"], _FIELD_LIMITS["genre"])
    return SectionAnalysis(**out)


def parse_analysis(text: str, missing: list[str] | None = None) -> SectionAnalysis:
    """Read a stage-1 answer: JSON (possibly fenced, sloppy, wrapped in prose) or ``Key: value`` lines (``missing``:
    see :func:`analysis_from_dict`)."""
    text = strip_reasoning(text)
    if not text:
        raise ValueError("empty answer")
    body = strip_fences(text)
    for candidate in _object_candidates(body) or _object_candidates(text):
        data = _loads_tolerant(candidate)
        if data is not None:
            if len(data) == 1 and isinstance(next(iter(data.values())), dict):  # {"analysis": {...}}
                data = next(iter(data.values()))
            return analysis_from_dict(data, missing)
    lines = _key_lines(body)
    if lines:
        return analysis_from_dict(lines, missing)
    raise ValueError("no JSON object found" if "{" not in text else "the JSON object could not be parsed")


# --- merging chunks ------------------------------------------------------------------------


def _weighted_choice(values: Sequence[tuple[str, int]]) -> str:
    """The value with the most pages; ties go to the one seen first."""
    weights: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for i, (value, pages) in enumerate(values):
        weights[value] += pages
        first_seen.setdefault(value, i)
    return max(weights, key=lambda v: (weights[v], -first_seen[v]))


def _join_unique(values: Sequence[str], sep: str) -> str:
    seen, out = set(), []
    for v in values:
        key = v.strip().lower().rstrip(".")
        if v.strip() and key not in seen:
            seen.add(key)
            out.append(v.strip())
    return sep.join(out)


def merge_analyses(parts: Sequence[tuple[SectionAnalysis, int]]) -> SectionAnalysis:
    """One analysis for a section from its chunks' ``(analysis, page_count)``, in reading order.

    Rule: genre and focus are the majority weighted by pages (ties: the earlier
    chunk); atmospheres and pacings are joined with "; " and plots with " ", in
    order and without exact repeats; long fields are trimmed at a word boundary.
    """
    if not parts:
        raise ValueError("nothing to merge")
    if len(parts) == 1:
        return parts[0][0]
    genre = _weighted_choice([(a.genre, n) for a, n in parts])
    focus = _weighted_choice([(a.focus, n) for a, n in parts])
    atmosphere = _join_unique([a.atmosphere for a, _ in parts], "; ")
    pacing = _join_unique([a.pacing for a, _ in parts], "; ")
    plot = _join_unique([a.plot for a, _ in parts], " ")
    return SectionAnalysis(
        genre=genre,
        focus=focus,
        atmosphere=_trim(atmosphere, _MERGED_LIMITS["atmosphere"]),
        pacing=_trim(pacing, _MERGED_LIMITS["pacing"]),
        plot=_trim(plot, _MERGED_LIMITS["plot"]),
    )


# --- descriptions --------------------------------------------------------------------------

_PREFIXES = [
    r"^(?:sure|certainly|okay|ok|of course|absolutely|alright)\b[^\n:]{0,40}?[!.,:]\s*",
    r"^here(?:'s| is| are)\b[^:\n]{0,80}:\s*",
    r"^(?:the\s+)?(?:(?:final|merged|music(?:al)?|background|scene)\s+)*"
    r"(?:description|prompt|answer|output|cue)\s*(?:\([^)]*\))?\s*[:\-\u2013\u2014]\s*",
]
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb"
#: a chat model's sign-off after the description ("Hope this helps! Let me know ...")
_SIGN_OFF = re.compile(r"(?:(?<=[.!?])|^)\s*(?:i\s+)?\b(?:hope (?:this|that|it) helps|let me know\b|feel free to\b|would you like\b|"
                       r"if you(?:'d| would)? (?:like|want|need)\b|enjoy\b[^.!?]{0,30}[.!?]\s*$)[^\n]*$", re.I)
#: a description in a script without spaces between words (Japanese, Chinese): at least this many characters
MIN_CJK_CHARS = 6


#: an analysis whose model saw no page (a text-only model, or a server that dropped the images)
_SAW_NOTHING = re.compile(r"\bno (?:images?|pages?|pictures?|panels?) (?:were|was|are|is|have been|has been) "
                          r"(?:provided|given|attached|included|shown|shared|uploaded)\b|\b(?:cannot|can't|can not|"
                          r"could not|couldn't|unable to) (?:see|view|access|open) (?:any|the|these) (?:images?|pages?)",
                          re.I)


def saw_no_pages(text: str) -> bool:
    """True for an analysis field saying the model got no page to look at ("No pages were provided.")."""
    return bool(_SAW_NOTHING.search(text.replace("\u2019", "'")))


#: words in a row of one of a prompt's instruction sentences, found in an answer, from at least two such sentences:
#: the model repeated the request (one alone may be a phrase a description rightly takes: "light and unobtrusive
#: ambient, lo-fi or soft acoustic accompaniment")
ECHO_WORDS = 8


def repeats_request(answer: str, prompt: str) -> bool:
    """True when ``answer`` holds :data:`ECHO_WORDS` words in a row from two or more of ``prompt``'s instruction
    sentences (of its ``- field: value`` lines the label only, and not the ``1. ...`` descriptions a merge lists:
    words an answer may rightly take): a small model that answered with the request itself."""
    def runs(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[^\W_]+", text.lower())
        return {tuple(words[i:i + ECHO_WORDS]) for i in range(len(words) - ECHO_WORDS + 1)}

    said = runs(answer)
    lines = [line.split(": ", 1)[0] if line.lstrip().startswith("- ") else line  # "- plot (...): VALUE": its label
             for line in prompt.splitlines() if line.strip() and not re.match(r"\s*\d+\.\s", line)]
    sentences = [part for line in lines for part in re.split(r"(?<=[.!?])\s+", line)]
    return sum(1 for sentence in sentences if runs(sentence) & said) >= 2


#: an analysis field this long, or longer, that begins one of the request's own phrases repeats the request (cut
#: off: "the emotional atmosphere, i"); a shorter one must be the whole phrase ("slow" begins "slow|moderate|...")
ECHO_PREFIX_CHARS = 16


def repeats_analysis_request(analysis, placeholders: list[str]) -> Optional[str]:
    """The field of a stage-1 ``analysis`` that says what the request says of it (``placeholders``, see
    :func:`manga2music.prompts.stage1_placeholders`): "atmosphere: a few words", "pacing: slow|moderate|fast|frantic,
    and why"; None for an analysis of the pages."""
    for field in ("atmosphere", "pacing", "plot"):
        raw = " ".join(str(getattr(analysis, field, "") or "").lower().split())
        value = raw.strip("<>[]{}").rstrip(".;").strip()
        if value and any(value == p or (len(value) >= ECHO_PREFIX_CHARS and p.startswith(value))
                         for p in placeholders) or raw in ("...", "\u2026", "<...>", "<\u2026>"):
            return f"{field}: {raw!r}"  # "<a few words>", "...": a template's blank, not filled
    return None


def looks_like_error(text: str) -> bool:
    """True for apologies, refusals and error strings, which must never become a music prompt."""
    t = text.lower().replace("\u2019", "'").strip(_QUOTES + " ")
    return any(re.search(p, t) for p in _ERROR_PATTERNS)


def _from_json(text: str) -> str:
    """``{"description": "..."}`` answers: take the string inside.  JSON without such a string (``{"style":
    "ambient", "bpm": 70, "instruments": ["piano", "strings"]}``) is said in words ("ambient, 70 BPM, piano and
    strings"): the JSON itself was the description, braces and all.  JSON that cannot be read is ValueError."""
    body = strip_fences(text)
    for candidate in _object_candidates(body):
        data = _loads_tolerant(candidate)
        if data:
            for key, value in data.items():
                if isinstance(value, str) and re.search(r"description|prompt|music|text", str(key), re.I):
                    return value
            words = _json_words(data)
            if words:
                return words
    if body.lstrip().startswith("{"):
        raise ValueError(f"the answer is JSON that cannot be read, not a music description: {_trim(body, 60)!r}")
    return text


def _json_words(data: dict) -> str:
    """The values of a JSON answer as words: texts as they are, lists joined, a tempo number in BPM."""
    words = []
    for key, value in data.items():
        if isinstance(value, list):
            items = [str(v).strip() for v in value if isinstance(v, (str, int, float)) and str(v).strip()]
            value = listed(items)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = f"{value:g} BPM" if re.search(r"bpm|tempo", str(key), re.I) else f"{key} {value:g}"
        if isinstance(value, str) and value.strip():
            words.append(value.strip())
    return ", ".join(words)


def drop_unfinished_end(text: str) -> str:
    """A description cut off at the token limit, less its unfinished end: up to its last full sentence when that
    keeps most of it, else without its last (maybe half-written) word."""
    t = text.rstrip()
    ends = [m.end() for m in re.finditer(r"[.!?\u3002\uff01\uff1f](?=\s|$)", t)]
    if ends and ends[-1] >= len(t) * 0.4:
        return t[: ends[-1]]
    if not re.search(r"\s", t):
        return t
    return t.rsplit(None, 1)[0].rstrip(" ,;:-\u2013\u2014") + "."


def shorten(text: str, max_words: int = MAX_DESCRIPTION_WORDS, max_chars: int = MAX_DESCRIPTION_CHARS) -> str:
    """Cut to ``max_words`` / ``max_chars``, at a sentence end when one is near, else at a word."""
    words = text.split()
    if len(words) <= max_words and len(text) <= max_chars:
        return text
    cut = " ".join(words[:max_words])
    if len(cut) > max_chars:
        cut = cut[:max_chars].rsplit(" ", 1)[0]
    ends = [m.end() for m in re.finditer(r"[.!?;](?=\s|$)|[\u3002\uff01\uff1f]", cut)]  # (。！？: no space after)
    if ends and ends[-1] >= len(cut) * 0.6:  # (at 0.4, an 88-word answer kept its first sentence: 32 words)
        return cut[: ends[-1]].rstrip(";").rstrip() + ("" if cut[ends[-1] - 1] in ".!?\u3002\uff01\uff1f" else ".")
    return cut.rstrip(" ,;:-\u2013\u2014\u3001") + "."


#: characters no description holds: C0/C1 controls (whitespace aside, which is folded), DEL, U+FFFD
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]+")
#: a terminal's escape sequences (colours: "\x1b[31m"), left whole by a model that echoes a log
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def clean_description(text: str | None, said: Optional[list] = None) -> str:
    """One clean paragraph a music model can take, or ValueError (empty, error, apology).  ``said`` gets a line
    where it was cut to the description's length (a model that wrote 88 words lost 56 of them without a word)."""
    t = _from_json(strip_reasoning(text))
    fenced = re.search(r"```[a-zA-Z0-9_-]*[ \t]*\n(.*?)```", t, re.S)
    t = fenced.group(1) if fenced else strip_fences(t) if t.lstrip().startswith("```") else t  # the block, not
    # the chatter around it
    body = re.sub(r"(?m)^\s*#{1,6}\s+[^\n]{0,40}$\n?", "", t)  # a short markdown heading line ("## Music")
    t = re.sub(r"(?m)^\s*#{1,6}\s+", "", body if body.strip() else t)  # ... unless it is all there is
    t = re.sub(r"\*{1,3}|(?<![^\W_])_{1,3}|_{1,3}(?![^\W_])", "", t)  # emphasis; "C#" and "lo_fi" stay as they are
    t = re.sub(r"(?m)^\s*(?:[-\u2022]|\d+[.)])\s+", "", t)  # list bullets
    t = _SIGN_OFF.sub("", " ".join(t.split()))
    if _CONTROLS.search(t):  # a small model's stray control characters, terminal colours and undecodable bytes
        # (U+FFFD) are no words: the description file would read as binary data
        t = _CONTROLS.sub(" ", _ANSI.sub("", t))
        t = re.sub(r" +([,.;:!?])", r"\1", " ".join(t.split()))
    for _ in range(3):
        before = t
        for pattern in _PREFIXES:
            t = re.sub(pattern, "", t, flags=re.I).strip()
        t = t.strip(_QUOTES + " ")
        if t == before:
            break
    if not t:
        raise ValueError("empty description")
    if looks_like_error(t):
        raise ValueError(f"the answer looks like an error or a refusal: {_trim(t, 80)!r}")
    cjk = len(re.findall(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]", t))
    if len(re.findall(r"[^\W\d_]{2,}", t)) < 2 and cjk < MIN_CJK_CHARS:
        raise ValueError(f"the answer is too short to be a music description: {t!r}")
    short = shorten(t)
    if short != t and said is not None:
        whole, kept = len(t.split()), len(short.split())
        said.append(f"the music description was cut to its first {kept} of {whole} words (at most "
                    f"{MAX_DESCRIPTION_WORDS} are asked for)" if kept < whole else
                    f"the music description was cut to its first {len(short.rstrip('.'))} of {len(t)} characters")
    return short
