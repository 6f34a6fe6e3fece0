"""The listening page: ``OUT/index.html``, one self-contained page to hear every section.

For each section, in natural order: page thumbnails (small JPEGs embedded as
data URIs), the analysis, the music description, the models and seed, a player
and a waveform per track, and links to the tracks and ``.mid`` files.  Audio is
linked by relative URL, so the page works from ``file://`` and keeps working
when the whole folder is moved.  No CDN, no external font or script; every
text that came from a model or a file name is escaped.  Opened as
``index.html?after=NAME`` (a read-along page's *Next chapter*), it goes on to the
read-along page of the first chapter after NAME that has one, or says NAME is the last.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import quote

from . import __version__
from .outputs import in_reading_order, read_record
from .thumbnails import THUMB_HEIGHT, thumbnail_uri  # noqa: F401  (THUMB_HEIGHT: the page's CSS uses it)
from .wording import lang_attribute

#: at most this many thumbnails per section; the rest are counted
MAX_THUMBS = 48
#: points in a waveform's peak envelope
WAVE_POINTS = 400
ANALYSIS_FIELDS = (("genre", "Genre"), ("atmosphere", "Mood"), ("focus", "Focus"), ("pacing", "Pacing"),
                   ("plot", "Plot"))



def e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def url_for(rel: str) -> str:
    """A relative URL for a path relative to OUT (each part percent-encoded: spaces, 日本語, #, ?)."""
    path = Path(rel)
    if path.is_absolute():
        return path.as_uri()
    return "/".join(quote(part, safe="") for part in rel.replace("\\", "/").split("/") if part)


# ------------------------------------------------------------------ thumbnails and waveforms


READ_FRAMES = 1 << 20  # frames read at a time for a waveform (8 MB of stereo float32)


def peak_envelope(path: Path, points: int = WAVE_POINTS):
    """Peak amplitude (0-1) of ``points`` equal slices of an audio file, all channels together."""
    import numpy as np
    import soundfile as sf

    with sf.SoundFile(str(path)) as fh:
        frames = fh.frames
        if frames <= 0:
            return np.zeros(0, dtype=np.float32)
        size = max(1, -(-frames // points))
        per_read = size * max(1, READ_FRAMES // size)  # whole slices a read: a read per slice cost 40 ms a track
        # (15 of the 16 s a rerun of a 300-chapter library took), and a track is never held whole
        peaks: list[float] = []
        for block in fh.blocks(blocksize=per_read, dtype="float32", always_2d=True):
            loudest = np.abs(block).max(axis=1)
            whole = len(loudest) // size * size
            peaks.extend(loudest[:whole].reshape(-1, size).max(axis=1).tolist())
            if whole < len(loudest):  # the last slice, cut short by the end of the file
                peaks.append(float(loudest[whole:].max()))
    return np.clip(np.asarray(peaks, dtype=np.float32), 0.0, 1.0)


def waveform_svg(path: Path, points: int = WAVE_POINTS) -> str | None:
    """A small inline SVG of a track's peak envelope, mirrored around the middle; None if unreadable."""
    try:
        peaks = peak_envelope(path, points)
    except (RuntimeError, OSError, ValueError):  # soundfile's LibsndfileError is a RuntimeError
        return None
    if peaks.size == 0:
        return None
    top = peak = float(peaks.max()) or 1.0
    n = len(peaks)
    upper = " ".join(f"{i * 400 / max(1, n - 1):.1f},{20 - 19 * p / top:.2f}" for i, p in enumerate(peaks))
    lower = " ".join(f"{i * 400 / max(1, n - 1):.1f},{20 + 19 * p / top:.2f}" for i, p in reversed(list(enumerate(peaks))))
    return (f'<svg class="wave" viewBox="0 0 400 40" preserveAspectRatio="none" role="img" '
            f'aria-label="waveform, peak {peak:.2f}"><polygon points="{upper} {lower}"/>'
            f'<rect class="played" x="0" y="0" width="0" height="40"/></svg>')


# ------------------------------------------------------------------ one section


def _description(output: Path, entry: dict, record: dict | None) -> str:
    from .errors import Manga2MusicError
    from .jobs import read_description

    rel = entry.get("description")
    if rel:
        try:  # the file wins: the user may have edited it (in any encoding: as the composer read it)
            return read_description(output / rel)
        except (OSError, Manga2MusicError):
            pass
    return str((record or {}).get("description") or "")


def _thumbs(output: Path, record: dict | None) -> str:
    pages = (record or {}).get("pages") or []
    if not pages:
        return ""
    items = []
    for k, page in enumerate(pages[:MAX_THUMBS], start=1):
        name = e(page.get("name", "?"))
        speaks = lang_attribute(page.get("name"))
        uri = thumbnail_uri(output, page)
        if uri is None:
            items.append(f'<figure class="thumb missing" title="{e(page.get("source", ""))}">'
                         f'<div class="placeholder">page not found</div><figcaption{speaks}>{name}</figcaption>'
                         '</figure>')
        else:
            items.append(f'<figure class="thumb"><img src="{uri}" alt="page {k} of {len(pages)}" loading="lazy">'
                         f'<figcaption{speaks}>{name}</figcaption></figure>')
    more = len(pages) - MAX_THUMBS
    if more > 0:
        items.append(f'<figure class="thumb more"><div class="placeholder">+{more} more</div></figure>')
    return f'<div class="thumbs">{"".join(items)}</div>'


def _analysis(record: dict | None) -> str:
    analysis = ((record or {}).get("describe") or {}).get("analysis")
    if not isinstance(analysis, dict):
        return ""
    rows = "".join(f"<dt>{label}</dt><dd>{e(analysis[key])}</dd>"
                   for key, label in ANALYSIS_FIELDS if analysis.get(key))
    return f'<dl class="analysis">{rows}</dl>' if rows else ""


def _takes(record: dict | None) -> dict[str, dict]:
    takes = ((record or {}).get("compose") or {}).get("takes") or []
    return {str(t.get("audio")): t for t in takes if isinstance(t, dict)}


def _info_text(take: dict | None, seed_shown=None) -> str:
    """A take's seed and what its composer says of it: the seed left out where the line above says it already
    ("seed 5" twice over one track), and the mode where the key says it ("key: D minor · mode: minor")."""
    if not take:
        return ""
    seed = take.get("seed")
    bits = [f"seed {seed}"] if seed is not None and seed != seed_shown else []
    info = take.get("info") or {}
    for key, value in info.items():
        if key == "seed" or key == "mode" and str(value).lower() in str(info.get("key", "")).lower().split():
            continue  # the take's seed is said above (or on the line of models)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            bits.append(f"{key.replace('_', ' ')}: {value}")
    return " · ".join(bits[:6])


def _tracks(output: Path, entry: dict, record: dict | None, name: str | None = None, seed_shown=None) -> str:
    tracks = entry.get("tracks") or []
    midi = {Path(m).with_suffix("").as_posix(): m for m in entry.get("midi") or []}
    takes = _takes(record)
    whose = entry.get("name") or (record or {}).get("section") or ""
    blocks = []
    for i, rel in enumerate(tracks, start=1):
        path = Path(rel) if Path(rel).is_absolute() else output / rel
        plain = name or (f"take {i}" if len(tracks) > 1 else "track")
        label = e(plain)
        wave = waveform_svg(path) or ""
        links = [f'<a href="{e(url_for(rel))}" download>{e(Path(rel).name)}</a>']
        mid = midi.get(Path(rel).with_suffix("").as_posix())
        if mid:
            links.append(f'<a href="{e(url_for(mid))}" download>{e(Path(mid).name)}</a>')
        info = _info_text(takes.get(Path(rel).name), seed_shown)
        missing = "" if path.exists() else ' <span class="error">(file missing)</span>'
        blocks.append(
            f'<div class="track"><div class="track-head"><span class="label">{label}</span>'
            f'<span class="info">{e(info)}</span></div>{wave}'
            f'<audio controls preload="metadata" src="{e(url_for(rel))}" '
            f'aria-label="{e(f"{whose}: {plain}" if whose else plain)}"></audio>'
            f'<div class="links">{" · ".join(links)}{missing}</div></div>'
        )
    return "".join(blocks)


def _shown_seed(entry: dict, record: dict | None):
    """The seed the section's line of models says."""
    return entry.get("seed", ((record or {}).get("compose") or {}).get("seed"))


def _shown_model(model) -> str:
    """A local model's folder by its name, not its place: the page is shared, and its place says the user's name
    and folders (``/home/alice/models/my-vlm``); the records keep the place."""
    from .registry import folder_shown_name

    model = str(model)
    return folder_shown_name(model) if os.path.isabs(model) else model


def _models(entry: dict, record: dict | None) -> str:
    record = record or {}
    vision = entry.get("vision_model") or (record.get("describe") or {}).get("model")  # the entry's: `score`'s
    music = entry.get("music_model") or (record.get("compose") or {}).get("model")  # or `run`'s
    seed = _shown_seed(entry, record)
    bits = []
    if vision:
        bits.append(f"vision <b>{e(_shown_model(vision))}</b>")
    if music:
        bits.append(f"music <b>{e(_shown_model(music))}</b>")
    if seed is not None:
        bits.append(f"seed <b>{e(seed)}</b>")
    if entry.get("cost_usd"):
        bits.append(f"cost <b>${float(entry['cost_usd']):.4f}</b>")
    return f'<p class="models">{" · ".join(bits)}</p>' if bits else ""


def _skipped_line(skipped: dict) -> str:
    """'chBad/007.jpg: not a readable image (...)': the page's name once (the reader's errors start with it)."""
    source, error = str(skipped.get("source") or ""), str(skipped.get("error") or "")
    return error if source and error.startswith(f"{source}:") else f"{source}: {error}"


def render_section(output: Path, entry: dict, index: int) -> str:
    """The HTML block of one manifest entry."""
    record = read_record(output / entry["record"]) if entry.get("record") else None
    status = str(entry.get("status") or "ok")
    # "skipped" (the manifest's word for music made before that this run found as asked) read to a listener as a
    # chapter left out: its music is there, as an ok one's is
    shown, title = ("ok", ' title="made before; this run found nothing to change"') if status == "skipped" \
        else (status, "")
    parts = [f'<section class="section {e(shown)}" id="s{index}" data-name="{e(entry.get("name"))}">',
             f'<h2><span{lang_attribute(entry.get("name"))}>{e(entry.get("name"))}</span> '
             f'<span class="status"{title}>{e(shown)}</span></h2>']
    if status == "failed":
        parts.append(f'<p class="error">{e(entry.get("message") or "failed")}</p>')
        if entry.get("tracks"):
            parts.append('<p class="info">The music below was made before, and is left as it was.</p>')
    if entry.get("pages_gone"):
        pages = (record or {}).get("pages") or [{}]
        where = str(Path(str(pages[0].get("path") or "")).parent)
        parts.append(f'<p class="error">Its pages are no longer in {e(where)} (renamed, moved or deleted): this is '
                     'the music of an earlier run. Delete its files here to drop it from this page.</p>')
    if entry.get("music_outdated") and entry.get("tracks"):
        parts.append('<p class="info">Described again (or the description edited) since this music was made: '
                     '<code>manga2music compose</code> of this folder makes it from the new description.</p>')
    parts.append(_thumbs(output, record))
    skipped = entry.get("skipped_pages") or []
    if skipped:
        items = "".join(f"<li>{e(_skipped_line(s))}</li>" for s in skipped if isinstance(s, dict))
        parts.append(f'<details class="skipped"><summary>{len(skipped)} page(s) skipped</summary><ul>{items}</ul></details>')
    is_score = _is_score(entry, record)
    if not is_score:  # a chapter's score: its scenes (below) say what each cue is; the chapter's own analysis and
        parts.append(_analysis(record))  # description are of `run`'s track (shown below, when it was made)
        text = _description(output, entry, record)
        if text:
            parts.append(f'<blockquote class="description"{lang_attribute(text)}>{e(text)}</blockquote>')
    parts.append(_models(entry, record))
    parts.append(_tracks(output, entry, record, name="chapter score" if is_score else None,
                         seed_shown=_shown_seed(entry, record)))
    parts.append(_other_commands_music(output, entry, record, is_score))
    parts.append(_scenes(output, entry, record))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _other_commands_music(output: Path, entry: dict, record: dict | None, is_score: bool) -> str:
    """`run` and `score` into one folder: the music the other command made of the section (its files still there
    and ours), which the entry of the last command does not list: the score after a `run`, the track after a
    `score`."""
    from .outputs import is_ours

    rec = entry.get("record")
    if not record or not rec:
        return ""
    folder = Path(rec).parent

    def here(name) -> bool:
        path = output / folder / str(name)
        return bool(name) and path.is_file() and is_ours(path, record)

    if is_score:
        takes = [t for t in ((record.get("compose") or {}).get("takes") or [])
                 if isinstance(t, dict) and here(t.get("audio"))]
        if not takes:
            return ""
        other = {"tracks": [(folder / t["audio"]).as_posix() for t in takes],
                 "midi": [(folder / t["midi"]).as_posix() for t in takes if here(t.get("midi"))]}
        text = _description(output, entry, record)  # its .txt (the user's edit wins), else the record's words
        words = f'<blockquote class="description"{lang_attribute(text)}>{e(text)}</blockquote>' if text else ""
        return (f'<p class="info">The section\'s track (<code>run</code>):</p>{words}' + _tracks(output, other, record)
                + _of_pages_before(record, "describe", "run"))
    outputs = (record.get("score") or {}).get("outputs") or []
    from .audio import AUDIO_FORMATS

    scores = [n for n in outputs if isinstance(n, str) and Path(Path(n).stem).suffix == ".score"
              and Path(n).suffix.lstrip(".") in AUDIO_FORMATS and here(n)]
    if not scores:
        return ""
    return (_tracks(output, {"tracks": [(folder / n).as_posix() for n in scores]}, record, name="chapter score")
            + _of_pages_before(record, "score", "score"))


def _of_pages_before(record: dict, part: str, command: str) -> str:
    """A line under the other command's music when it was made of the section's pages before they changed."""
    from .describing import of_pages_before

    if not of_pages_before(record, part):
        return ""
    return (f'<p class="info">This {"score" if part == "score" else "track"} was made from the pages before they '
            f'changed: <code>manga2music {command}</code> makes it again from these.</p>')


def _is_score(entry: dict, record: dict | None) -> bool:
    """Whether the entry is `score`'s (its track is the record's score), not `run`'s into the same folder."""
    outputs = set(((record or {}).get("score") or {}).get("outputs") or [])
    return any(Path(str(t)).name in outputs for t in entry.get("tracks") or [])


def _scenes(output: Path, entry: dict, record: dict | None) -> str:
    """A chapter score's scenes (when it has one) and the links to its read-along page, cue sheet and chapters."""
    import json

    from .cuesheet import scene_span

    score = (record or {}).get("score") or {}
    rec = entry.get("record")
    if not score or not rec:
        return ""
    folder = Path(rec).parent
    base = Path(rec).name[: -len(".json")]
    try:
        sheet = json.loads((output / folder / f"{base}.cues.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""

    def link(name: str, label: str, kind: str = "", of: str = "") -> str:  # of: what the link is of, for a screen
        css = f' class="{kind}"' if kind else ""  # reader's list of links, where ten "cue" links said nothing more
        named = f' aria-label="{e(label)} of {e(of)}"' if of else ""
        return f'<a{css}{named} href="{e(url_for((folder / name).as_posix()))}">{e(label)}</a>'

    chapter = str(entry.get("name") or base)

    def loops(sc: dict) -> str:  # a scene longer than its cue repeats the cue's loop
        cue_s, duration = sc.get("cue_s"), sc.get("duration")
        looped = isinstance(cue_s, (int, float)) and isinstance(duration, (int, float)) and cue_s < duration
        return f" ({e(round(cue_s))} s, repeated to fill the scene)" if looped else ""

    rows = "".join(
        f"<li><b{lang_attribute(sc.get('title'))}>{e(sc.get('title'))}</b> &middot; {e(scene_span(sc))} &middot; "
        f"{e(_clock(sc.get('start', 0)))}-{e(_clock(sc.get('end', 0)))} &middot; "
        f"{link(sc.get('cue_file', ''), 'cue', of=f'{chapter} scene {k}')} &middot; "
        f"{link(sc.get('loop_file', ''), 'loop', of=f'{chapter} scene {k}')}{loops(sc)}"
        f"<br><span class=\"info\"{lang_attribute(sc.get('description'))}>{e(sc.get('description'))}</span></li>"
        for k, sc in enumerate(sheet.get("scenes", []), start=1))
    links = " &middot; ".join(x for x in (
        link(sheet["read_along_file"], "Read along", "read-along", of=chapter) if sheet.get("read_along_file") else "",
        link(f"{base}.cues.json", "cue sheet", of=chapter),
        link(sheet.get("vtt_file", ""), "WebVTT chapters", of=chapter)) if x)
    return f'<div class="scenes"><p class="links">{links}</p><ol>{rows}</ol></div>'


def _clock(seconds) -> str:
    total = int(round(float(seconds or 0)))
    return f"{total // 60}:{total % 60:02d}"


# ------------------------------------------------------------------ the page


CSS = """
:root { color-scheme: light dark; --bg: #fafaf8; --fg: #1d1d1f; --muted: #6b6b70; --card: #ffffff;
  --line: #e2e2e0; --accent: #3b6fd8; --wave: #6a8bd4; --played: #3b6fd8; --bad: #c62828; }
@media (prefers-color-scheme: dark) { :root { --bg: #151517; --fg: #ececef; --muted: #9a9aa2; --card: #1f1f23;
  --line: #34343a; --accent: #8fb0ff; --wave: #6a82b8; --played: #8fb0ff; --bad: #ff8a80; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.5;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", "Hiragino Sans", "Yu Gothic", "Noto Sans CJK JP", sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem 1rem 4rem; }
header h1 { margin: 0 0 .25rem; font-size: 1.6rem; }
header p, .models, .info, figcaption, .links { color: var(--muted); font-size: .9rem; }
nav ul { display: flex; flex-wrap: wrap; gap: .4rem 1rem; padding: 0; list-style: none; }
a { color: var(--accent); }
.section { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 1rem 1.25rem;
  margin: 1.25rem 0; }
.section h2 { margin: 0 0 .75rem; font-size: 1.25rem; word-break: break-word; }
.status { font-size: .75rem; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; padding: .1rem .5rem;
  border-radius: 999px; border: 1px solid var(--line); color: var(--muted); vertical-align: middle; }
.failed { border-color: var(--bad); }
.failed .status, .error { color: var(--bad); }
.thumbs { display: flex; gap: .5rem; overflow-x: auto; padding-bottom: .5rem; }
.thumb { margin: 0; flex: none; text-align: center; }
.thumb img, .placeholder { height: 180px; border-radius: 4px; border: 1px solid var(--line); display: block; }
.placeholder { width: 128px; display: flex; align-items: center; justify-content: center; font-size: .75rem;
  color: var(--muted); background: repeating-linear-gradient(45deg, transparent 0 6px, var(--line) 6px 7px); }
dl.analysis { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .75rem 0; }
dl.analysis dt { color: var(--muted); }
dl.analysis dd { margin: 0; }
.description { margin: .75rem 0; padding: .5rem 1rem; border-left: 3px solid var(--accent); white-space: pre-wrap; }
.track { margin: .75rem 0; }
.track-head { display: flex; gap: 1rem; align-items: baseline; }
.label { font-weight: 600; }
.wave { display: block; width: 100%; height: 40px; cursor: pointer; }
.wave polygon { fill: var(--wave); }
.wave .played { fill: var(--played); opacity: .35; }
audio { width: 100%; margin-top: .25rem; }
details.skipped { color: var(--muted); font-size: .9rem; }
footer { color: var(--muted); font-size: .8rem; text-align: center; }
"""

# clicking a waveform seeks its track; the played part is shaded while it plays
SCRIPT = """
// index.html?after=NAME (a read-along page's "Next chapter"): on to the read-along page of the first chapter after
// NAME that has one; else back here, at NAME, saying so
(function () {
  var after = new URLSearchParams(location.search).get('after');
  if (after === null) return;
  var sections = Array.prototype.slice.call(document.querySelectorAll('section.section'));
  var at = sections.findIndex(function (s) { return s.dataset.name === after; });
  for (var i = at + 1; at >= 0 && i < sections.length; i++) {
    var link = sections[i].querySelector('a.read-along');
    if (link) { location.replace(link.href); return; }
  }
  var note = document.createElement('p');
  note.id = 'after';
  note.textContent = at < 0 ? after + ' is no longer listed here; the chapters there are:'
                            : after + ' is the last chapter with a read-along page here.';
  document.querySelector('header').appendChild(note);
  if (at >= 0) sections[at].scrollIntoView();
})();
document.querySelectorAll('.track').forEach(function (t) {
  var a = t.querySelector('audio'), w = t.querySelector('.wave');
  if (!a || !w) return;
  var r = w.querySelector('.played');
  a.addEventListener('timeupdate', function () {
    if (a.duration) r.setAttribute('width', String(400 * a.currentTime / a.duration));
  });
  w.addEventListener('click', function (ev) {
    var box = w.getBoundingClientRect();
    if (a.duration) { a.currentTime = a.duration * (ev.clientX - box.left) / box.width; pauseAllBut(a); quietly(a.play()); }
  });
});
// one player at a time: another starting pauses the one playing.  A waveform's click pauses the others at once; the
// 'play' event (a player's own button) comes later, and one of a player paused since then is old news: it paused
// the player started after it, and the two ended both silent
function quietly(played) {  // a play() cut short by a pause (another click) is no error of the page's
  if (played && played.catch) played.catch(function () {});
}
function pauseAllBut(playing) {
  document.querySelectorAll('audio').forEach(function (other) { if (other !== playing) other.pause(); });
}
document.addEventListener('play', function (ev) { if (!ev.target.paused) pauseAllBut(ev.target); }, true);
"""


def render_listening_page(output: Path, manifest: dict) -> str:
    """The whole page as a string (see :func:`write_listening_page`)."""
    output = Path(output)
    entries = [s for s in manifest.get("sections", []) if isinstance(s, dict) and s.get("name")]
    entries = in_reading_order(entries)
    counts = {k: sum(1 for s in entries if s.get("status") == k) for k in ("ok", "skipped", "failed")}
    summary = f"{len(entries)} section(s)"
    if counts["failed"]:
        summary += f", {counts['failed']} failed"
    nav = ""
    if len(entries) > 1:
        nav = "<nav><ul>" + "".join(f'<li><a href="#s{i}"{lang_attribute(s["name"])}>{e(s["name"])}</a></li>'
                                    for i, s in enumerate(entries)) + "</ul></nav>"
    body = "\n".join(render_section(output, s, i) for i, s in enumerate(entries))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>manga2music · {e(output.resolve().name)}</title><style>{CSS}</style></head>\n<body><main>"
        f'<header><h1>manga2music</h1><p>{e(summary)} · updated {e(manifest.get("updated", ""))}</p></header>'
        f"{nav}\n{body}\n"
        f'<footer>made by manga2music {e(manifest.get("version", __version__))}</footer>'
        f"</main><script>{SCRIPT}</script></body></html>\n"
    )


def write_listening_page(output: Path, manifest: dict) -> Path:
    """Write ``OUTPUT/index.html`` (atomically) for every section in ``manifest``; return its path."""
    from .audio import write_text_atomic

    output = Path(output)
    return write_text_atomic(output / "index.html", render_listening_page(output, manifest))
