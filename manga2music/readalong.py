"""``NAME.read.html``: read the chapter one page at a time with its soundtrack, from ``file://``, offline.

Two modes:

* **Follow me** (default): the scene's cue loops for as long as the reader stays in
  it; turning to a page of another scene crossfades to that scene's cue.  The loops
  are decoded with Web Audio from copies embedded in the page (Ogg Vorbis, which Web
  Audio decodes without a gap at the loop point; nothing is fetched: browsers refuse
  to ``fetch`` ``file://`` URLs), the reader's scene first, then the scenes on either
  side of it; loops further away are let go, so a long chapter does not fill the
  browser's memory.
* **Play through**: the score plays (an ``<audio>`` element linked relatively to
  ``NAME.score.<fmt>``) and the pages turn at the cue sheet's times; turning a page by
  hand moves the music to that page's time.

Keys (arrows, space, Page Up/Down), clicks on the page's left or right half,
swipes and the buttons turn pages; *Right to left* turns them the Japanese way (the
left arrow, a click on the left half and a swipe to the right go on); a chapter lettered
in vertical columns (Japanese manga) opens that way (see :func:`right_to_left`; an EPUB that says which way
its pages turn is opened that way, see :func:`manga2music.sections.book_page_progression`), and the
page remembers the reader's choice, apart for such chapters and for the others.  A tall
strip (a webtoon episode saved as one image) is shown part by part, as it was read
(page-shaped tiles), each part at its own time in the cue sheet (a scene may start inside
a strip).  *Scroll* shows every page and part in one column, as a webtoon is read (a
webtoon opens in it unless the reader chose otherwise, and the choice is remembered: see
:func:`webtoon_layout`): the page at the reading line, a
third of the way down, is the reader's page, *Follow me* plays its scene, and *Play
through* scrolls the column with the score (a scroll by the reader moves the score to
where they stopped).  Pictures are decoded only near the reading line, so a long
chapter does not fill the browser's memory.  Pages are embedded JPEGs, so the file can be
moved with the score.  The page times the pages the reader turns on from in *Follow me* against their
estimated reading times and shows the ``--reading-speed`` that matches the reader (kept across chapters in
localStorage; see the script's "reader's pace").  *Next chapter* (or turning past the last page: a note, then on)
goes to the output folder's listening page with ``?after=NAME``, which goes on to the
next chapter's read-along page (see :mod:`manga2music.listening_page`); *All chapters*
opens the listening page.  ``window.readAlong`` exposes the state (page, scene, mode)
for tests and for curious readers.
"""

from __future__ import annotations

import base64
import html
import io
import json
from urllib.parse import quote

from .wording import lang_attribute

PAGE_QUALITY = 80


def page_jpeg(image, long_side: int) -> str:
    """A data URI of a page at ``long_side`` pixels (JPEG)."""
    from PIL import Image

    img = image.convert("RGB")
    scale = long_side / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=PAGE_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def loop_ogg(audio, sample_rate: int) -> str:
    """A data URI of a loop as Ogg Vorbis at its own rate (small, gapless when Web Audio decodes it, and four
    times quicker to encode than Opus: a 20-page chapter's loops take about a second)."""
    from .audio import encode_audio

    data = encode_audio(audio, sample_rate, fmt="ogg", normalize=False)
    return "data:audio/ogg;base64," + base64.b64encode(data).decode("ascii")


#: pages at least this many times as tall as wide, all of one width, are slices of a webtoon episode (manga pages
#: are 1.4-1.5; an episode downloaded from a webtoon site comes in slices of 1.6 and taller)
SLICE_ASPECT = 1.55


#: a chapter whose text is mostly (this share of its characters) in vertical CJK columns, and at least
#: RTL_MIN_CHARS of them, is Japanese (or traditional Chinese) manga: its pages turn right to left
RTL_SHARE = 0.5
RTL_MIN_CHARS = 20


def right_to_left(text_chars: int, cjk_chars: int) -> bool:
    """Whether a chapter with this many characters of text, ``cjk_chars`` of them in vertical columns (see
    :class:`manga2music.reading.PageReading`), is read right to left: lettered in vertical columns, as Japanese
    manga are.  A chapter with little or no text, or lettered in horizontal lines, is read left to right."""
    return cjk_chars >= RTL_MIN_CHARS and cjk_chars >= RTL_SHARE * text_chars


def webtoon_layout(sizes: list[tuple[int, int]]) -> tuple[bool, bool]:
    """(read by scrolling, pages touching) for a chapter of pages of these sizes (width, height as shown): a tall
    strip among them is read by scrolling; so are slices of one episode (three or more pages of one width, within
    1 %, at least :data:`SLICE_ASPECT` times as tall as wide, as a median), which also touch: one picture cut up."""
    from statistics import median

    from .pages import tile_count

    if not sizes:
        return False, False
    widths = [w for w, _ in sizes]
    slices = (len(sizes) >= 3 and max(widths) <= 1.01 * min(widths)
              and median(h / max(1, w) for w, h in sizes) >= SLICE_ASPECT)
    return slices or any(tile_count(w, h) > 1 for w, h in sizes), slices


def render(chapter: str, sheet: dict, pages: list[list[tuple[str, int, int]]], loop_uris: list[str],
           score_file: str, *, scroll: bool = False, touching: bool = False, rtl: bool = False,
           listening_page: str | None = None, section: str | None = None) -> str:
    """The page: the cue sheet (scenes, page times), the pages and the loops, all in one file.  ``pages``: per
    page, its parts as (data URI, width, height in pixels): one part, or the tiles of a tall strip, top to
    bottom.  ``scroll``: the page opens in *Scroll* (unless the reader chose); ``touching``: there the pages touch,
    as slices of one picture do (see :func:`webtoon_layout`).  ``rtl``: the pages turn right to left (unless the
    reader chose otherwise for chapters lettered this way; see :func:`right_to_left`).  ``listening_page``: the
    output folder's ``index.html``, relative to this page ("../index.html"), and ``section`` this chapter's name in
    it: the page links to every chapter and to the next one (the listening page, which always lists the chapters
    there are, goes on to the read-along page of the chapter after ``section``; see
    :mod:`manga2music.listening_page`)."""
    at = {index: k for k, index in enumerate(dict.fromkeys(p["index"] for p in sheet["pages"]))}
    data = {
        "chapter": chapter,
        "score": "/".join(quote(part) for part in score_file.split("/")),
        "scenes": [{"index": s["index"], "title": s["title"], "start": s["start"], "end": s["end"],
                    "first": s["first_page"], "last": s["last_page"]} for s in sheet["scenes"]],
        # "at": the page's place among the pictures (a page that could not be read has none, but keeps its number)
        "pages": [{"index": p["index"], "at": at[p["index"]], "name": p["name"], "scene": p["scene"],
                   "start": p["start"], "reading": p["reading_seconds"], "part": p.get("part"),
                   "parts": p.get("parts")} for p in sheet["pages"]],
        "speed": sheet["reading_speed"],
        "count": max([p["index"] for p in sheet["pages"]], default=0),
        "loops": loop_uris,
        "images": [[uri for uri, _, _ in parts] for parts in pages],
        "heights": [[max(1, int(height)) for _, _, height in parts] for parts in pages],
        "widths": [[max(1, int(width)) for _, width, _ in parts] for parts in pages],
        "scroll": bool(scroll),
        "touching": bool(touching),
        "rtl": bool(rtl),
        "next": f"{listening_page}?after={quote(section, safe='')}" if listening_page and section else "",
    }
    blob = json.dumps(data, ensure_ascii=True).replace("</", "<\\/")
    title = html.escape(chapter)
    links = ""
    if data["next"]:
        links = (f'<a class="chapters" id="all-chapters" href="{html.escape(listening_page, quote=True)}">All chapters</a>'
                 f'<a class="chapters" id="next-chapter" href="{html.escape(data["next"], quote=True)}">'
                 "Next chapter</a>")
    return _TEMPLATE.replace("__TITLE_LANG__", lang_attribute(chapter)).replace("__TITLE__", title).replace(
        "__DATA__", blob).replace("__SCORE__", html.escape(data["score"], quote=True)).replace("__CHAPTERS__", links)


_TEMPLATE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="manga2music read-along">
<title>__TITLE__: read along</title>
<style>
  :root { color-scheme: dark; }
  body { margin: 0; background: #111; color: #eee; font: 15px/1.4 system-ui, sans-serif; display: flex;
         flex-direction: column; height: 100vh; }
  header { display: flex; gap: 12px; align-items: center; padding: 8px 12px; background: #1c1c1c; flex-wrap: wrap; }
  header h1 { font-size: 16px; margin: 0 12px 0 0; }
  button { background: #333; color: #eee; border: 1px solid #555; border-radius: 6px; padding: 4px 10px;
           cursor: pointer; font: inherit; }
  button[aria-pressed="true"] { background: #2f5bd3; border-color: #2f5bd3; }
  @media (forced-colors: active) {  /* high contrast: colours are the system's, so the pressed mode is underlined */
    button[aria-pressed="true"] { text-decoration: underline; border-width: 3px; font-weight: 700; }
  }
  /* flex-basis 50vh: at 400 % zoom the header wraps over most of the window, and the page is still shown */
  #stage { flex: 1 0 50vh; display: flex; align-items: center; justify-content: center; overflow: hidden;
           position: relative; user-select: none; }
  #page { max-width: 100%; max-height: 100%; object-fit: contain; box-shadow: 0 0 24px #000; }
  #column { flex: 1 0 50vh; overflow-y: auto; position: relative; }
  #column:focus-visible { outline: 2px solid #9bb8ff; outline-offset: -2px; }
  #column img { display: block; width: min(100%, 800px); height: auto; margin: 0 auto; background: #222; }
  #column img.page-start { margin-top: 24px; }
  body[data-scroll="true"] #stage, body[data-scroll="false"] #column { display: none; }
  #where { margin-left: auto; opacity: .8; }
  #scene { font-weight: 600; }
  audio { height: 32px; }
  a.chapters { color: #9bb8ff; }
  .hint { opacity: .6; font-size: 13px; }
</style></head>
<body>
<header>
  <h1__TITLE_LANG__>__TITLE__</h1>
  <button id="follow" aria-pressed="true" title="the scene's music loops while you read it">Follow me</button>
  <button id="through" aria-pressed="false" title="the score plays and the pages turn by themselves">Play through</button>
  <button id="prev" aria-label="previous page">&larr;</button>
  <button id="next" aria-label="next page">&rarr;</button>
  <button id="rtl" aria-pressed="false" title="turn pages the Japanese way: left arrow, left half and a swipe to the right go on">Right to left</button>
  <button id="scroll" aria-pressed="false" title="every page in one column, scrolled as a webtoon is read; the music follows the page a third of the way down">Scroll</button>
  <button id="sound">Start music</button>
  <audio id="score" src="__SCORE__" preload="metadata" controls hidden></audio>
  <span id="scene"></span><span id="where" aria-live="polite"></span>
  <span id="pace" hidden></span>
  <span id="note" role="status" hidden></span>
  __CHAPTERS__
</header>
<div id="stage"><img id="page" alt=""></div>
<div id="column" tabindex="0" aria-label="the pages, one under the other"></div>
<p class="hint" style="margin:4px 12px">Arrows, space or a click on either half of the page turn it; swipe on a touch screen; in Scroll, scroll.</p>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const state = { page: 0, part: 0, view: 0, scene: 1, mode: "follow", playingScene: 0, started: false, buffers: [] };
window.readAlong = state;
const img = document.getElementById("page"), score = document.getElementById("score");
let ctx = null, current = null;
const FADE = 1.0;

// what the reader turns through: every page, and every part of a tall strip; each with its time in the score
// and its scene (the cue sheet times each part of a strip; one that does not shares the strip's time by heights)
const views = [];
D.pages.forEach((p, j) => {
  const i = p.at, heights = D.heights[i] || [1];
  const end = j + 1 < D.pages.length ? D.pages[j + 1].start : D.scenes[D.scenes.length - 1].end;
  if (p.part) {
    views.push({ page: i, number: p.index, part: p.part - 1, parts: p.parts, start: p.start, scene: p.scene,
                 name: p.name, reading: p.reading });
    return;
  }
  const total = heights.reduce((a, b) => a + b, 0);
  let above = 0;
  heights.forEach((h, k) => {
    views.push({ page: i, number: p.index, part: k, parts: heights.length,
                 start: p.start + (end - p.start) * above / total, scene: p.scene, name: p.name,
                 reading: p.reading * h / total });
    above += h;
  });
});
// The reader's pace: how long they stay on each page they turn on from in the page view (reached by turning on,
// the tab in view), against its estimated reading time in the cue sheet, as the --reading-speed that would have
// timed that page to them.  The median of their last PACE_KEEP such pages, over every chapter read in this
// browser, is shown once there are PACE_MIN of them: the value to score their next chapters with.
const PACE_KEY = "manga2music.pace", PACE_KEEP = 60, PACE_MIN = 5, MIN_STAY = 0.5, MAX_STAY = 600;
let paces = [];
try { paces = (JSON.parse(localStorage.getItem(PACE_KEY) || "[]") || []).filter(Number.isFinite); }
catch (e) { paces = []; }
const timed = new Set();  // the views already timed in this visit (a page read again is not a first reading)
let stay = { view: -1, since: 0, on: false, away: false }, turning = 0;
document.addEventListener("visibilitychange", () => { if (document.hidden) stay.away = true; });
function showPace() {
  const el = document.getElementById("pace");
  if (paces.length < PACE_MIN) { el.hidden = true; return; }
  const sorted = paces.slice().sort((a, b) => a - b), m = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
  state.pace = Number(median.toPrecision(2));
  document.body.dataset.pace = String(state.pace);
  el.textContent = "your pace: --reading-speed " + state.pace;
  el.title = "From the last " + paces.length + " pages you turned on from (here and in other chapters): the " +
    "reading speed at which the estimated times match yours. This chapter was scored at --reading-speed " + D.speed +
    "; score your next chapters with --reading-speed " + state.pace + " to time their music to your reading.";
  el.hidden = false;
}
function timeLeavingPage() {  // the reader turns on from the page they are on
  const v = stay.view, seconds = (performance.now() - stay.since) / 1000;
  if (v !== state.view || !stay.on || stay.away || timed.has(v) || state.mode !== "follow" || state.scroll) return;
  timed.add(v);
  if (seconds < MIN_STAY || seconds > MAX_STAY || !(views[v].reading > 0)) return;
  paces.push(Math.min(20, Math.max(0.05, D.speed * views[v].reading / seconds)));
  paces = paces.slice(-PACE_KEEP);
  try { localStorage.setItem(PACE_KEY, JSON.stringify(paces)); } catch (e) {}
  showPace();
}
function show(v, fromScore, fromScroll) {
  v = Math.max(0, Math.min(views.length - 1, v));
  const before = state.scene, view = views[v], i = view.page;
  state.view = v; state.page = i; state.part = view.part; state.scene = view.scene;
  img.src = D.images[i][view.part]; img.alt = view.name;
  const s = D.scenes[state.scene - 1];
  document.getElementById("scene").textContent = s.title;
  document.getElementById("where").textContent = "page " + view.number + " of " + D.count +
    (view.parts > 1 ? ", part " + (view.part + 1) + " of " + view.parts : "");
  document.body.dataset.page = String(view.number); document.body.dataset.part = String(view.part + 1);
  document.body.dataset.scene = String(state.scene);
  if (state.mode === "follow" && state.started && state.scene !== before) playScene(state.scene);
  if (state.mode === "through" && !fromScore && !fromScroll) { score.currentTime = view.start + 0.001; }
  if (state.scroll && !fromScore && !fromScroll) placeColumn(v, 0);
  if (stay.view !== v) stay = { view: v, since: performance.now(), on: turning === 1, away: document.hidden };
}
const decoding = [];  // per scene, the promise of its decoded loop: each is decoded once, when first wanted
function loopOf(k) {
  if (!decoding[k - 1]) {
    const bytes = Uint8Array.from(atob(D.loops[k - 1].split(",")[1]), c => c.charCodeAt(0));
    decoding[k - 1] = ctx.decodeAudioData(bytes.buffer).then(b => (state.buffers[k - 1] = b));
  }
  return decoding[k - 1];
}
const KEEP = 1;  // decoded loops kept on each side of the reader's scene (a decoded loop is big: 5 minutes, 115 MB)
async function decodeAround(k) {  // the next scene first, then the one before; the loops far away are let go
  for (let j = 0; j < D.loops.length; j++) {
    if (Math.abs(j + 1 - k) > KEEP) { decoding[j] = undefined; state.buffers[j] = undefined; }
  }
  for (const j of [k + 1, k - 1]) {
    if (j < 1 || j > D.loops.length || state.wanted !== k) continue;
    try { await loopOf(j); } catch (e) { console.warn("scene " + j + "'s loop did not decode", e); }
  }
}
async function playScene(k) {
  if (!ctx) return;
  state.wanted = k;
  let buffer;
  try { buffer = await loopOf(k); } catch (e) { console.warn("scene " + k + "'s loop did not decode", e); return; }
  if (!state.started || state.mode !== "follow" || state.wanted !== k) return;  // the reader moved on meanwhile
  const now = ctx.currentTime, gain = ctx.createGain(), src = ctx.createBufferSource();
  src.buffer = buffer; src.loop = true;
  src.connect(gain).connect(ctx.destination);
  gain.gain.setValueAtTime(0.0001, now); gain.gain.exponentialRampToValueAtTime(1.0, now + FADE);
  src.start(now);
  if (current) {
    const old = current;
    old.gain.gain.cancelScheduledValues(now);
    old.gain.gain.setValueAtTime(old.gain.gain.value || 1.0, now);
    old.gain.gain.exponentialRampToValueAtTime(0.0001, now + FADE);
    old.src.stop(now + FADE + 0.05);
  }
  current = { src, gain, scene: k };
  state.playingScene = k; document.body.dataset.playing = String(k);
  decodeAround(k);
}
function stopFollow() {
  if (current) { try { current.src.stop(); } catch (e) {} current = null; }
  state.playingScene = 0; document.body.dataset.playing = "0";
}
// the score file is not beside the page (the page copied out of its folder, the score moved or deleted): Play
// through says so, rather than a button that reads "Stop music" over silence (Follow me plays the loops it holds)
function scoreMissing() {
  const el = document.getElementById("note");
  el.textContent = "Play through needs " + decodeURIComponent(score.getAttribute("src")) +
    " beside this page, and it is not there; Follow me plays without it";
  el.hidden = false; document.body.dataset.scoreMissing = "true";
}
score.addEventListener("error", () => {
  state.scoreMissing = true;
  if (state.mode === "through") { if (state.started) stop(); scoreMissing(); }
});
async function start() {
  // the button says what a click on it will do from the click on: a second click while a loop decodes (a long
  // cue takes seconds) stops the music, and the first click's start, ending later, does not start it again
  state.started = true; document.getElementById("sound").textContent = "Stop music";
  if (state.mode === "follow") {  // resumed in the click, where browsers let sound start; plays once decoded
    if (!ctx) ctx = new (window.AudioContext || window.webkitAudioContext)();
    if (ctx.state === "suspended") await ctx.resume();
    if (state.started) await playScene(state.scene);
  }
  else if (state.scoreMissing) { stop(); scoreMissing(); }
  else {
    score.currentTime = views[state.view].start + 0.001;
    score.play().catch(() => {  // its file missing (not a pause that came first): said, and the button as it was
      if (state.mode === "through" && (score.error || score.networkState === score.NETWORK_NO_SOURCE)) {
        stop(); scoreMissing();
      }
    });
  }
}
function stop() {
  state.started = false; stopFollow(); score.pause();
  document.getElementById("sound").textContent = "Start music";
}
function setMode(mode) {
  const was = state.started; stop(); state.mode = mode;
  document.getElementById("follow").setAttribute("aria-pressed", String(mode === "follow"));
  document.getElementById("through").setAttribute("aria-pressed", String(mode === "through"));
  score.hidden = mode !== "through"; document.body.dataset.mode = mode;
  if (mode === "through" && state.scoreMissing) scoreMissing();
  else document.getElementById("note").hidden = true;
  if (was) start();
}
function viewAt(t) {
  let v = 0;
  while (v + 1 < views.length && views[v + 1].start <= t + 1e-6) v++;
  return v;
}
// the score's own controls, and its end: the button says what a click on it will do
score.addEventListener("pause", () => { if (state.mode === "through" && state.started) stop(); });
score.addEventListener("play", () => {
  if (state.mode !== "through" || state.started) return;
  state.started = true; document.getElementById("sound").textContent = "Stop music";
});
score.addEventListener("timeupdate", () => {
  if (state.mode !== "through") return;
  if (state.scroll && performance.now() - readerScrolled < 600) return;  // the reader scrolls: the score follows
  const v = viewAt(score.currentTime);
  if (v !== state.view) show(v, true);
});
window.readAlongSeek = (t) => {
  score.currentTime = t; show(viewAt(t), true);
  if (state.scroll) placeAtTime(t);
  return views[state.view].number;
};
// +1 when the right-hand side goes on (left to right), -1 when the left-hand side does (right to left)
const ahead = () => state.rtl ? -1 : 1;
function setRtl(on) {
  state.rtl = on; document.body.dataset.rtl = String(on);
  document.getElementById("rtl").setAttribute("aria-pressed", String(on));
  document.getElementById("prev").setAttribute("aria-label", on ? "next page" : "previous page");
  document.getElementById("next").setAttribute("aria-label", on ? "previous page" : "next page");
}
// the reader's choice is kept apart for chapters lettered in vertical columns (they open right to left) and others
const rtlKey = D.rtl ? "manga2music.rtl.vertical" : "manga2music.rtl";
document.getElementById("rtl").onclick = () => {
  setRtl(!state.rtl);
  try { localStorage.setItem(rtlKey, state.rtl ? "1" : "0"); } catch (e) {}
};
// past the last page: a note, then the next chapter (the listening page knows which one that is)
function turn(delta) {
  if (delta === 1) timeLeavingPage();
  if (state.view + delta < views.length || !D.next) {
    state.atEnd = false; turning = delta; show(state.view + delta); turning = 0; return;
  }
  if (state.atEnd) { location.href = D.next; return; }
  state.atEnd = true;
  document.getElementById("where").textContent = "end of the chapter: turn again for the next one";
}
document.getElementById("prev").onclick = () => turn(-ahead());
document.getElementById("next").onclick = () => turn(ahead());
document.getElementById("follow").onclick = () => setMode("follow");
document.getElementById("through").onclick = () => setMode("through");
document.getElementById("sound").onclick = () => state.started ? stop() : start();
document.getElementById("stage").onclick = (e) => {
  const r = e.currentTarget.getBoundingClientRect();
  turn((e.clientX - r.left < r.width / 2 ? -1 : 1) * ahead());
};
document.addEventListener("keydown", (e) => {
  // keys of the browser (Alt+Left is Back) and of the control that has focus are theirs: space presses a button,
  // the score's player seeks with the arrows
  if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
  const t = e.target instanceof Element ? e.target : null;
  if (t && t.closest("audio, video, input, select, textarea")) return;
  if (e.key === " " && t && t.closest("button, a[href], summary")) return;
  if (["PageDown", " "].includes(e.key)) { e.preventDefault(); turn(1); }
  if (e.key === "PageUp") { e.preventDefault(); turn(-1); }
  if (e.key === "ArrowRight") { e.preventDefault(); turn(ahead()); }
  if (e.key === "ArrowLeft") { e.preventDefault(); turn(-ahead()); }
});
let touchX = null;
document.getElementById("stage").addEventListener("touchstart", (e) => { touchX = e.touches[0].clientX; });
document.getElementById("stage").addEventListener("touchend", (e) => {
  if (touchX === null) return;
  const dx = e.changedTouches[0].clientX - touchX; touchX = null;
  if (Math.abs(dx) > 40) turn((dx < 0 ? 1 : -1) * ahead());
});
// Scroll: every page and part in one column, as a webtoon is read.  The view at the reading line (a third of the
// way down) is the reader's page: Follow me plays its scene; Play through scrolls the column with the score, and a
// scroll by the reader moves the score to where the reading line stopped.
const column = document.getElementById("column"), tiles = [];
views.forEach((view, v) => {
  const el = document.createElement("img");
  el.alt = view.name + (view.parts > 1 ? ", part " + (view.part + 1) : "");
  el.dataset.view = String(v);
  el.style.aspectRatio = D.widths[view.page][view.part] + " / " + D.heights[view.page][view.part];
  if (v && view.part === 0 && !D.touching) el.classList.add("page-start");  // pages apart; parts, slices touch
  column.appendChild(el); tiles.push(el);
});
// pictures are decoded only near the reading line (a chapter of 300 pages would hold gigabytes of pixels)
const near = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const view = views[+e.target.dataset.view];
    if (e.isIntersecting) e.target.src = D.images[view.page][view.part];
    else e.target.removeAttribute("src");
  }
}, { root: column, rootMargin: "150% 0px" });
tiles.forEach((el) => near.observe(el));
const line = () => column.clientHeight / 3;
let placedTop = -1, readerScrolled = 0, settle = null;
function placeColumn(v, frac) {  // view v's point ``frac`` of the way down, on the reading line
  const top = Math.max(0, Math.round(tiles[v].offsetTop + frac * tiles[v].offsetHeight - line() + 1));
  column.scrollTop = top; placedTop = column.scrollTop;
}
function viewAtLine() {
  const y = column.scrollTop + line();
  let lo = 0, hi = tiles.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (tiles[mid].offsetTop <= y) lo = mid; else hi = mid - 1; }
  return lo;
}
function timeAtLine() {  // the score's time at the reading line: within a view, in proportion to its height
  const v = viewAtLine(), el = tiles[v], view = views[v];
  const end = v + 1 < views.length ? views[v + 1].start : D.scenes[D.scenes.length - 1].end;
  const frac = Math.min(1, Math.max(0, (column.scrollTop + line() - el.offsetTop) / Math.max(1, el.offsetHeight)));
  return view.start + frac * (end - view.start);
}
column.addEventListener("scroll", () => {
  if (!state.scroll) return;
  const ours = Math.abs(column.scrollTop - placedTop) < 2;
  const v = viewAtLine();
  if (v !== state.view) show(v, ours, true);
  if (ours || state.mode !== "through") return;
  readerScrolled = performance.now();  // the reader scrolls: the score follows when they stop
  clearTimeout(settle);
  settle = setTimeout(() => { score.currentTime = timeAtLine(); readerScrolled = performance.now(); }, 250);
});
function placeAtTime(t) {  // the column where the score is: the view playing, as far down as its time has gone
  const v = viewAt(t), view = views[v];
  const end = v + 1 < views.length ? views[v + 1].start : D.scenes[D.scenes.length - 1].end;
  placeColumn(v, Math.min(1, Math.max(0, (t - view.start) / Math.max(0.001, end - view.start))));
}
function scrollWithScore() {
  if (state.scroll && state.mode === "through" && !score.paused && performance.now() - readerScrolled > 600) {
    placeAtTime(score.currentTime);
  }
  requestAnimationFrame(scrollWithScore);
}
requestAnimationFrame(scrollWithScore);
function setScroll(on) {
  state.scroll = on; document.body.dataset.scroll = String(on);
  document.getElementById("scroll").setAttribute("aria-pressed", String(on));
  if (on) { placeColumn(state.view, 0); column.focus({ preventScroll: true }); } else show(state.view, true);
}
document.getElementById("scroll").onclick = () => {
  setScroll(!state.scroll);
  try { localStorage.setItem("manga2music.scroll", state.scroll ? "1" : "0"); } catch (e) {}
};
document.body.dataset.mode = "follow";
let remembered = null, scrolled = null;
try { remembered = localStorage.getItem(rtlKey); scrolled = localStorage.getItem("manga2music.scroll"); }
catch (e) {}
setRtl(remembered === null ? D.rtl : remembered === "1");
show(0, true);
showPace();
setScroll(scrolled === null ? D.scroll : scrolled === "1");
</script>
</body></html>
"""
