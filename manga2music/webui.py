"""The local web UI (``manga2music ui``): upload pages, pick models, get a track.

A Gradio app around :func:`manga2music.api.run`.  Uploads are copied to a
temporary folder that is removed after the run; results are copied to a
per-run folder under this app's own temporary folder (removed when the app
exits) so Gradio can serve them.  Nothing leaves the machine except the OpenAI
request when a GPT model is picked: Gradio's telemetry is off, its fonts are
local, and the server binds 127.0.0.1 unless told otherwise.

Gradio is imported only inside :func:`build_app` / :func:`launch`; the core,
:func:`generate`, needs only the library.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .audio import AUDIO_FORMATS
from .errors import Manga2MusicError
from .pipeline import Callbacks

UPLOAD_TYPES = ["image", ".cbz", ".zip", ".pdf"]
#: the folder the uploads go into; it names the section (and so the files: pages.wav, pages.txt)
UPLOAD_FOLDER = "pages"
MODES = ("two-stage", "single-stage")
PRIVACY_NOTE = ("Everything runs on this machine. Only a GPT vision model sends the pages to OpenAI "
                "(it needs `OPENAI_API_KEY`).")


@dataclass
class UiResult:
    """What one Generate click produced."""

    folder: Path  # the output folder (served by Gradio)
    manifest: dict
    audio: Optional[Path]  # the first track, for the player
    description: str  # all descriptions; headed by section name when there are several
    downloads: list[Path] = field(default_factory=list)  # tracks, descriptions, MIDI, and a zip of everything
    log: list[str] = field(default_factory=list)


def suggestions() -> dict[str, tuple[str, str]]:
    """``{side: (model name, reason)}`` from the ``auto`` rules; builtin with the error as reason if they fail."""
    out = {}
    try:
        from .hardware import collect
        from .tiers import resolve_auto

        probe = collect(check_hub=False)
        for side in ("vision", "music"):
            spec, reason = resolve_auto(side, probe=probe)
            out[side] = (spec.name, reason)
    except Exception as exc:  # a broken probe must not stop the UI: builtin always works
        for side in ("vision", "music"):
            out.setdefault(side, ("builtin", f"no suggestion ({exc.__class__.__name__}: {exc})"))
    return out


def parse_seed(text: object) -> Optional[int]:
    """The seed box: blank means random (None); anything else must be a whole number."""
    from .errors import InputError

    value = str(text if text is not None else "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"the seed must be a whole number (got {value!r}); leave it blank for a random one") from None


def model_choices(side: str) -> list[str]:
    from .registry import known_models

    return [m.name for m in known_models(side)]


def _copy_uploads(uploads: list[str | Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for src in uploads:
        src = Path(src)
        target = folder / src.name
        n = 1
        while target.exists():  # two uploads of the same name: keep both
            n += 1
            target = folder / f"{src.stem}-{n}{src.suffix}"
        shutil.copyfile(src, target)


def _zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                zf.write(path, path.relative_to(folder).as_posix())
    return target


def generate(uploads: list[str | Path], results_root: Path, *, vision_model: str = "builtin",
             music_model: str = "builtin", single_stage: bool = False, duration: float = 10.0, fmt: str = "wav",
             seed: Optional[int] = None, callbacks: Optional[Callbacks] = None) -> UiResult:
    """Run the pipeline on uploaded files; results land in a new folder under ``results_root``.

    Raises :class:`Manga2MusicError` (e.g. no pages among the uploads, a missing API key).
    """
    from . import api
    from .composers.base import ComposeOptions
    from .describers.base import DescribeOptions
    from .errors import InputError
    from .pipeline import RunConfig

    if not uploads:
        raise InputError("upload some pages first (images, a .cbz/.zip or a .pdf)")
    log: list[str] = []
    cb = callbacks or Callbacks()
    user_log = cb.log

    def keep(level: str, message: str) -> None:
        log.append(message if level == "info" else f"{level}: {message}")
        if user_log is not None:
            user_log(level, message)

    cfg = RunConfig(fmt=fmt, describe=DescribeOptions(seed=seed, single_stage=single_stage),
                    compose=ComposeOptions(duration=float(duration), seed=seed))
    results = Path(results_root) / f"manga2music-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    with tempfile.TemporaryDirectory(prefix="manga2music-upload-") as tmp:
        pages = Path(tmp) / UPLOAD_FOLDER
        _copy_uploads(uploads, pages)
        out = Path(tmp) / "out"
        try:
            manifest = api.run([pages], out, vision_model=vision_model, music_model=music_model, config=cfg,
                               callbacks=Callbacks(sections=cb.sections, step=cb.step, log=keep))
        except Manga2MusicError as exc:  # say "uploads", not the temporary folder's path
            raise type(exc)(exc.message.replace(str(pages), "uploads"), exc.hint) from None
        shutil.copytree(out, results)  # the index.html already holds the thumbnails; the uploads can go
    return _collect(results, manifest, log)


def _collect(folder: Path, manifest: dict, log: list[str]) -> UiResult:
    entries = [e for e in manifest.get("sections", []) if e.get("name") in set(manifest.get("this_run", []))]
    texts, downloads, audio = [], [], None
    for entry in entries:
        if entry.get("status") == "failed":
            log.append(f"{entry['name']} failed: {entry.get('message')}")
        description = folder / entry["description"] if entry.get("description") else None
        if description and description.is_file():
            text = description.read_text(encoding="utf-8").strip()
            texts.append(f"[{entry['name']}]\n{text}" if len(entries) > 1 else text)
            downloads.append(description)
        for rel in entry.get("tracks") or []:
            audio = audio or folder / rel
            downloads.append(folder / rel)
        downloads.extend(folder / rel for rel in entry.get("midi") or [])
    if downloads:
        downloads.append(_zip_folder(folder, folder.with_suffix(".zip")))
    return UiResult(folder, manifest, audio, "\n\n".join(texts), [p for p in downloads if p.is_file()], log)


def _status_markdown(result: UiResult) -> str:
    entries = [e for e in result.manifest.get("sections", []) if e.get("name") in set(result.manifest.get("this_run", []))]
    ok = sum(e.get("status") != "failed" for e in entries)
    lines = [f"**{ok} of {len(entries)} section(s) done.** The zip holds the listening page (index.html)."]
    for entry in entries:
        bits = [entry["name"], str(entry.get("status"))]
        if entry.get("vision_model") or entry.get("music_model"):
            bits.append(f"{entry.get('vision_model') or '-'} → {entry.get('music_model') or '-'}")
        if entry.get("seed") is not None:
            bits.append(f"seed {entry['seed']}")
        lines.append("- " + " · ".join(bits))
    lines += [f"- {m}" for m in result.log[-12:]]
    return "\n".join(lines)


# ------------------------------------------------------------------ the Gradio app


def build_app():
    """The Gradio Blocks app (not launched)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # also covers the calls Gradio makes outside Blocks
    import gradio as gr

    results_root = tempfile.TemporaryDirectory(prefix="manga2music-ui-")  # removed when the app goes away
    suggested = suggestions()

    def on_generate(files, vision, music, mode, duration, fmt, seed, progress=gr.Progress()):
        where = {"label": ""}

        def sections(done: int, total: int, label: str) -> None:
            where["label"] = label
            progress((done, total), desc=label)

        def step(done: int, total: int, label: str) -> None:
            progress((done, total), desc=f"{where['label']} · {label}" if where["label"] else label)

        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        try:
            result = generate(paths, Path(results_root.name), vision_model=vision, music_model=music,
                              single_stage=(mode == "single-stage"), duration=duration, fmt=fmt,
                              seed=parse_seed(seed), callbacks=Callbacks(sections=sections, step=step))
        except Manga2MusicError as exc:
            raise gr.Error(exc.message + (f" ({exc.hint})" if exc.hint else "")) from None
        audio = str(result.audio) if result.audio else None
        return audio, result.description, [str(p) for p in result.downloads], _status_markdown(result)

    with gr.Blocks(title="manga2music", analytics_enabled=False, delete_cache=(3600, 86400)) as app:
        app.results_root = results_root  # lives as long as the app
        gr.Markdown(f"# manga2music\nTurn manga pages into music. {PRIVACY_NOTE}")
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Pages (images), or a .cbz / .zip / .pdf", file_count="multiple",
                                file_types=UPLOAD_TYPES, type="filepath", elem_id="uploads")
                vision = gr.Dropdown(model_choices("vision"), value=suggested["vision"][0], allow_custom_value=True,
                                     label="Vision model", info=f"Suggested here: {suggested['vision'][0]} "
                                     f"({suggested['vision'][1]})", elem_id="vision-model")
                music = gr.Dropdown(model_choices("music"), value=suggested["music"][0], allow_custom_value=True,
                                    label="Music model", info=f"Suggested here: {suggested['music'][0]} "
                                    f"({suggested['music'][1]})", elem_id="music-model")
                mode = gr.Radio(list(MODES), value=MODES[0], label="Mode",
                                info="two-stage: analyse the pages, then write the music description")
                with gr.Row():
                    duration = gr.Slider(1, 120, value=10, step=1, label="Duration (s)", elem_id="duration")
                    fmt = gr.Dropdown(list(AUDIO_FORMATS), value="wav", label="Format")
                    seed = gr.Textbox(value="", label="Seed", placeholder="blank: random", elem_id="seed")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                audio = gr.Audio(label="Track", type="filepath", interactive=False, buttons=["download"],
                                 elem_id="track")  # no "share" button: it would post to Hugging Face
                description = gr.Textbox(label="Music description", lines=8, interactive=False,
                                         elem_id="description")
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
                status = gr.Markdown(elem_id="status")
        button.click(on_generate, [files, vision, music, mode, duration, fmt, seed],
                     [audio, description, downloads, status], concurrency_limit=1)
    return app


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> None:
    """Build the app, print its address and serve it until Ctrl-C."""
    app = build_app()
    app.queue()
    app.launch(server_name=host, server_port=port, share=share, show_error=True, quiet=True,
               prevent_thread_lock=True)
    print(f"manga2music UI: {app.local_url}" + (f"  (public: {app.share_url})" if app.share_url else ""), flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        app.block_thread()
    finally:
        app.close()
