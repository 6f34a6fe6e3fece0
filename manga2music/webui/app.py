"""The Gradio page of ``manga2music ui``: the only module that imports gradio.

Layout: on the left the uploads (with thumbnails), the models and the
settings; on the right the results: one status line (which also carries the
progress bar), the player, the description and the downloads.  Errors a user
causes replace the results with one message saying what to do.  Nothing leaves
the machine except the OpenAI request when a GPT model is picked: Gradio's
telemetry is off, its fonts are local, and the server binds 127.0.0.1 unless
told otherwise.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

from ..audio import AUDIO_FORMATS
from ..errors import Manga2MusicError
from ..options import READING_SPEEDS
from ..pipeline import Callbacks
from ..threads import Stopped, stopping_on
from . import messages
from .progress_bar import OneBar
from .run import KEEP_RESULTS_S, MODES, UPLOAD_TYPES, generate, parse_seed, prune_results
from .server import JobStopped, ServerFolder, ServerStopping, stop_signals

PRIVACY_NOTE = ("Everything runs on this machine. Only a GPT vision model sends the pages to OpenAI "
                "(it needs `OPENAI_API_KEY`), or to the server `OPENAI_BASE_URL` names when it is set.")
READY = "Upload pages, choose the models, then press **Generate**."
KINDS = ("one track", "chapter score")
CSS = """
#downloads .label-clear-button { display: none !important; }  /* results are not the user's to remove */
#status { min-height: 4.5em; }
#thumbnails .grid-wrap { min-height: 0 !important; max-height: 26em; overflow-y: auto; }  /* as tall as the pages */
#thumbnails .grid-container { padding-top: 2em; }  /* below the label */
#uploads .file-preview-holder { max-height: 16em; overflow-y: auto; }  /* 60 pages listed pushed Generate and the
   results a page's height out of sight */
@media (max-width: 640px) {  /* a phone: the thumbnails wrap (5 fixed columns hid all but three) */
  #thumbnails .grid-container { grid-template-columns: repeat(auto-fill, minmax(90px, 1fr)) !important; }
}
#status.error { border-left: 4px solid #dc2626; padding-left: 0.75em; }
"""


#: the longest track the page asks for (the command line's --duration goes to 30 minutes): a chapter's reading;
#: a larger maximum would make the slider too coarse to drag to 10 s
MAX_UI_DURATION_S = 600


def model_choices(side: str) -> list[str]:
    from ..registry import known_models

    return [m.name for m in known_models(side)]


def takes_stages(vision_model: str) -> bool:
    """Whether the Mode (two-stage or single-stage) means anything for this vision model: builtin reads the pages
    itself, with no question asked; any other (a chat model) may."""
    from ..registry import lookup

    spec = lookup(vision_model or "")
    return not (spec is not None and spec.backend == "builtin-vision")


def _paths(files) -> list[str]:
    return [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]


#: the uploads' paths on the server, read in the browser from the upload box.  The listeners take these, not the
#: box: Gradio refuses to hand a function an upload whose name starts with a dot (`.cover.png`, a Mac's `._001.jpg`)
#: when the server was started in a folder that holds its temporary files (`/`), and the whole event failed: no
#: thumbnails, and Generate stuck at "Generating…".  The run says such a file is not read (run.hidden_uploads).
UPLOADED_PATHS = "(files) => [(Array.isArray(files) ? files : files ? [files] : []).map(f => f.path)]"  # the
# outer list holds the outputs (one): a list returned alone was read as one output a path


def uploaded_paths(value, upload_folder: Path) -> list[str]:
    """The paths the browser sent (:data:`UPLOADED_PATHS`) that are uploads: a request naming any other file on
    the server (its own files, another session's results) gets nothing from it, as Gradio's own check would."""
    paths = [p for p in (value if isinstance(value, list) else []) if isinstance(p, str)]
    return [p for p in paths if Path(p).resolve().is_relative_to(upload_folder.resolve())]


def build_app(folder: Optional[ServerFolder] = None):
    """The Gradio Blocks app (not launched); its files live in ``folder`` (a new one if None)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # also covers the calls Gradio makes outside Blocks
    folder = folder or ServerFolder()
    folder.give_gradio()  # before gradio is imported: some of its paths are read at import
    import gradio as gr

    from .models import current_probe, menu_info, suggestion
    from .thumbnails import preview

    probe = current_probe()
    suggested = {side: suggestion(side, probe) for side in ("vision", "music")}

    def on_upload(files):
        paths = uploaded_paths(files, folder.gradio)
        if not paths:
            return gr.update(value=None, visible=False), ""
        try:
            with folder.job():
                shown = preview(paths, folder.work, folder.hidden)
        except ServerStopping:
            return gr.update(), ""
        except Exception as exc:  # a bug: the page says so, the terminal has the traceback
            messages.log_for_server(exc, expected=False)
            return gr.update(value=None, visible=False), messages.bug_markdown(exc)
        return gr.update(value=shown.thumbnails or None, visible=bool(shown.thumbnails)), shown.note()

    def on_model(side: str):
        return lambda selected: gr.update(info=menu_info(side, selected, suggested[side]))

    generating: dict[str, list[str]] = {}  # tab -> the uploads (their paths) its Generate runs on
    in_the_box: dict[str, tuple[float, list[str]]] = {}  # tab -> (when they changed, the uploads in its box now)
    clicked: dict[str, float] = {}  # tab -> when its Generate was clicked

    def on_new_uploads(files, request):
        """Other pages than a running Generate's stop it; the same ones again do not (Gradio may report one upload
        twice, and a Stop then ended the Generate it had just started).  Uploads are told apart by their paths: a
        page added under a name the box had was said as "uploads were removed"."""
        tab = request.session_hash
        now = sorted(uploaded_paths(files, folder.gradio))
        in_the_box[tab] = (time.monotonic(), now)  # a Generate still queued reads it when it starts
        started = generating.get(tab)
        if started is not None and now != started:
            gone = not set(now) - set(started)  # nothing new: the user cleared the box, or removed a file
            folder.stop_asked(tab, why="the uploads were cleared while it ran" if not now else
                              "uploads were removed while it ran" if gone else "other pages were uploaded while it ran")

    on_new_uploads.__annotations__["request"] = gr.Request

    def on_generate(files, vision, music, mode, kind, duration, speed, longest, scenes, bridges, fmt, seed,
                    request, progress=gr.Progress()):
        tab = request.session_hash
        files = uploaded_paths(files, folder.gradio)
        generating[tab] = sorted(files)
        changed, box = in_the_box.get(tab, (0.0, generating[tab]))
        if changed > clicked.get(tab, 0.0) and box != generating[tab]:  # cleared or replaced after the click, while
            # it waited in the queue (behind another tab's Generate): it ran on the pages of the click, and showed
            # their music under the thumbnails of the new ones
            folder.stop_asked(tab, why="the uploads were cleared while it waited" if not box else
                              "other pages were uploaded while it waited")
        bar = OneBar(lambda fraction, text: progress(fraction, desc=text), passes=1 if kind == KINDS[1] else 2)
        began = []  # a section's work began: the results shown are no longer those of the pages and settings now

        def sections(done: int, total: int, label: str) -> None:
            folder.check(tab)
            began.append(True)
            bar.sections(done, total, label)

        def step(done: int, total: int, label: str) -> None:
            folder.check(tab)
            began.append(True)
            bar.step(done, total, label)

        def shown_error(text: str):  # the player emptied and its label back to "Track" (it named the last run's)
            return gr.update(value=text, elem_classes=["error"]), gr.update(value=None, label="Track"), "", None

        def said_before_any_work(text: str):  # a seed mistyped: the last results stay (they are of these pages)
            return gr.update(value=text, elem_classes=["error"]), gr.update(), gr.update(), gr.update()

        try:
            folder.check(tab)  # Stop pressed while this Generate waited in the queue
            gone = [p for p in _paths(files) if not os.path.exists(p)]
            if gone:  # Gradio deletes uploads an hour old (delete_cache): a tab left open lists them still
                return shown_error(f"**{len(gone)} of the uploaded files {'are' if len(gone) > 1 else 'is'} no longer "
                                   "on the server** (it keeps uploads for an hour): upload the pages again.")
            prune_results(folder.results)  # an hour's results stay; older ones would fill the disk
            with folder.job(), stopping_on(folder.stop_event(tab)):  # Stop reaches the work between its notes,
                # not only at its next progress report (a long builtin track reports none while it renders)
                result = generate(_paths(files), folder.results, vision_model=vision, music_model=music,
                                  single_stage=(mode == "single-stage"), duration=duration, fmt=fmt,
                                  seed=parse_seed(seed), callbacks=Callbacks(sections=sections, step=step),
                                  work_root=folder.work, hidden=folder.hidden, score=(kind == KINDS[1]),
                                  reading_speed=speed, longest_cue=float(longest) if longest else None,
                                  transitions="continue" if bridges else "crossfade", scenes=scenes or "")
        except Manga2MusicError as exc:
            messages.log_for_server(exc, expected=True)
            return (shown_error if began else said_before_any_work)(messages.error_markdown(exc))
        except ServerStopping:
            return shown_error("**The server is stopping.**")
        except (JobStopped, Stopped) as stopped:  # Stopped: at a stop point, by the tab's stop event
            if isinstance(stopped, Stopped) and folder.stopping.is_set():
                return shown_error("**The server is stopping.**")
            reason = stopped.args[0] if isinstance(stopped, JobStopped) and stopped.args else folder.stop_reason(tab)
            why = f" ({reason})" if reason else ""
            return shown_error(f"**Stopped**{why}. Nothing was made; press **Generate** to start again.")
        except Exception as exc:  # a bug: the user gets one message, the terminal the traceback
            messages.log_for_server(exc, expected=False)
            return shown_error(messages.bug_markdown(exc))
        finally:
            folder.generate_ended(tab)
            generating.pop(tab, None)
        return (gr.update(value=messages.status_markdown(result), elem_classes=[]),
                gr.update(value=str(result.audio), label=f"Track: {result.audio.name}") if result.audio else
                gr.update(value=None, label="Track"), result.description,
                [str(p) for p in result.downloads] or None)

    on_generate.__annotations__["request"] = gr.Request  # Gradio passes the request only to a parameter typed so
    # (this module's annotations are strings, which Gradio cannot read: gr is imported inside this function)

    def generate_clicked(request):
        """Told to the server at the click (see below), and the button says it is at work."""
        folder.generate_asked(request.session_hash)
        clicked[request.session_hash] = time.monotonic()
        return gr.update(value="Generating…", interactive=False)

    generate_clicked.__annotations__["request"] = gr.Request

    def per_tab(act):
        """A listener that calls ``act`` with the tab's session."""
        def listener(request):
            act(request.session_hash)
        listener.__annotations__["request"] = gr.Request
        return listener

    with gr.Blocks(title="manga2music", analytics_enabled=False, delete_cache=(600, KEEP_RESULTS_S)) as app:
        app.server_folder = folder  # lives as long as the app
        gr.Markdown(f"# manga2music\nTurn manga pages into music. {PRIVACY_NOTE}")
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Pages (images), comic archives (.cbz .zip .cbr .rar .cb7 .7z .cbt .tar), "
                                      "PDFs or EPUBs; a folder: zip it first", file_count="multiple",
                                file_types=UPLOAD_TYPES, type="filepath", elem_id="uploads")
                uploaded = gr.JSON(None, visible=False)  # the uploads' paths (UPLOADED_PATHS)
                thumbnails = gr.Gallery(label="Pages, in reading order", columns=5, fit_columns=False, height="auto",
                                        visible=False, object_fit="contain", interactive=False, buttons=[],
                                        elem_id="thumbnails")
                upload_note = gr.Markdown(elem_id="upload-note")
                vision = gr.Dropdown(model_choices("vision"), value=suggested["vision"][0], allow_custom_value=True,
                                     label="Vision model", info=suggested["vision"][1], elem_id="vision-model")
                music = gr.Dropdown(model_choices("music"), value=suggested["music"][0], allow_custom_value=True,
                                    label="Music model", info=suggested["music"][1], elem_id="music-model")
                mode = gr.Radio(list(MODES), value=MODES[0], label="Mode", elem_id="mode",
                                visible=takes_stages(suggested["vision"][0]),
                                info="two-stage: analyse the pages, then write the music description")
                kind = gr.Radio(list(KINDS), value=KINDS[0], label="Make", elem_id="kind",
                                info="a chapter score finds the scenes, gives each a cue as long as its pages take to "
                                     "read, and adds a read-along page")
                with gr.Row():
                    # twice the others' width: its label, number box and hint beside one another were squeezed into
                    # a column of one word a line
                    duration = gr.Slider(1, MAX_UI_DURATION_S, value=10, step=1, label="Duration (s)",
                                         info=f"up to {MAX_UI_DURATION_S // 60} minutes a track",
                                         elem_id="duration", scale=2, min_width=260)
                    speed = gr.Slider(*READING_SPEEDS, value=1.0, step=0.05, label="Reading speed (score)",
                                      info="2 reads twice as fast; a read-along page shows yours",
                                      elem_id="reading-speed", visible=False, scale=2, min_width=260)
                    fmt = gr.Dropdown(list(AUDIO_FORMATS), value="wav", label="Format")
                    seed = gr.Textbox(value="", label="Seed", placeholder="blank: random", elem_id="seed")
                longest = gr.Number(None, label="Longest cue (s, score)", elem_id="longest-cue", visible=False,
                                    info="8 to 1800; 0 or blank: each cue as long as its scene; a shorter "
                                    "cue loops to fill it (much quicker with MusicGen on a CPU)")
                scenes = gr.Textbox("", label="Scenes (score)", lines=3, elem_id="scenes", visible=False,
                                    placeholder="1\n6 1:10\n015.png",
                                    info="blank: found in the pages; else the pages where scenes start, one a line "
                                         "(numbers from 1, or file names; a part of one tall strip: 1 part 4), each maybe with its "
                                         "length (45 or 1:30)")
                bridges = gr.Checkbox(False, label="Bridges between scenes (MusicGen)", elem_id="bridges",
                                      visible=False, info="MusicGen carries each cue on into the next scene's music "
                                                          "instead of a crossfade")
                with gr.Row():
                    button = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
            with gr.Column():  # the results; a chapter score adds its scenes, read-along page and cue sheet
                status = gr.Markdown(READY, elem_id="status")
                audio = gr.Audio(label="Track", type="filepath", interactive=False, buttons=["download"],
                                 elem_id="track")  # no "share" button: it would post to Hugging Face
                description = gr.Textbox(label="Music description", lines=8, interactive=False,
                                         elem_id="description")
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
        files.change(None, files, uploaded, js=UPLOADED_PATHS, queue=False, show_progress="hidden")
        uploaded.change(on_upload, uploaded, [thumbnails, upload_note], show_progress="minimal",
                        show_progress_on=[thumbnails])
        files.change(lambda: (gr.update(value=READY, elem_classes=[]), gr.update(value=None, label="Track"), "",  # the
                              None), None,  # player's label named the last run's track: other pages, other results
                     [status, audio, description, downloads], show_progress="hidden")
        uploaded.change(on_new_uploads, uploaded, None, queue=False, show_progress="hidden")  # nor is a Generate of the
        # pages before: it stops (its results showed up under the new pages' thumbnails)
        vision.change(on_model("vision"), vision, vision, show_progress="hidden")
        # two-stage or single-stage: a choice for a track of a model that takes it (a score reads its chapter one
        # way, and ignored it)
        vision.change(lambda selected, k: gr.update(visible=takes_stages(selected) and k == KINDS[0], value=MODES[0]),
                      [vision, kind], mode, show_progress="hidden")
        music.change(on_model("music"), music, music, show_progress="hidden")
        kind.change(lambda k: (gr.update(visible=k == KINDS[0]),) + (gr.update(visible=k == KINDS[1]),) * 4, kind,
                    [duration, speed, longest, scenes, bridges], show_progress="hidden")
        kind.change(lambda k, selected: gr.update(visible=takes_stages(selected) and k == KINDS[0]), [kind, vision],
                    mode, show_progress="hidden")
        # Generate and Stop act on this tab's Generate alone.  Both are told to the server at once (not queued: a
        # Stop must reach it while a Generate runs or waits), and closing or reloading the tab is a Stop
        # the button says it is at work until the Generate ends: on a laptop's screen the progress bar (at the top
        # of the results) may be out of sight, and a click seemed to do nothing
        generating_event = button.click(generate_clicked, None, button, queue=False, show_progress="hidden").then(
            on_generate, [uploaded, vision, music, mode, kind, duration, speed, longest, scenes, bridges, fmt, seed],
            [status, audio, description, downloads], show_progress="full", show_progress_on=[status],
            concurrency_limit=1)
        for after in (generating_event.then, generating_event.failure):  # .then alone does not follow an event
            # Gradio itself failed (an upload it refused to hand over): the button stayed "Generating…" until a reload
            after(lambda: gr.update(value="Generate", interactive=True), None, button, queue=False,
                  show_progress="hidden")
        stop.click(per_tab(folder.stop_asked), None, None, queue=False, show_progress="hidden")
        app.unload(per_tab(folder.stop_asked))
    return app


def start(app, host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> None:
    """Serve ``app`` in the background (the tests use this too, so they see the page users see)."""
    app.queue()
    app.launch(server_name=host, server_port=port, share=share, show_error=False, quiet=True,
               prevent_thread_lock=True, css=CSS)


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> None:
    """Serve the UI until Ctrl-C or SIGTERM; either way everything the server wrote is removed."""
    folder = ServerFolder()
    app = None
    with stop_signals() as wait:
        try:
            app = build_app(folder)
            start(app, host, port, share)
            print(f"manga2music UI: {app.local_url}" + (f"  (public: {app.share_url})" if app.share_url else ""),
                  flush=True)
            print("Press Ctrl-C to stop.", flush=True)
            why = wait(lambda: app.is_running)
            print(f"Stopping ({why}); removing the uploads and results of this session.", flush=True)
        finally:
            folder.stopping.set()
            if app is not None:
                app.close()
            folder.remove()
