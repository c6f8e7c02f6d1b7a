"""The `cvaekit serve` page, on Gradio: three tabs (Generate, Compare runs, Walk the latent
space) laid over the plain functions of `cvaekit.serving`.

Gradio is the optional extra `cvaekit[serve]`, imported only here. On the page, a request's
`CvaekitError` is shown in the note under the picture, in place of the picture and of the
last note, and the next good picture clears it; any other failure shows a short line there
and is logged by the server with its traceback. The same requests through the HTTP API
(`/generate`, `/compare`, `/walk`) fail with the message instead.
"""

from __future__ import annotations

import atexit
import functools
import html
import logging
import shutil
import tempfile
from pathlib import Path

from cvaekit.core.sampling import MAX_STEPS
from cvaekit.errors import CvaekitError
from cvaekit.runtime.optional import require
from cvaekit.runtime.threads import few_malloc_arenas
from cvaekit.serving.service import (
    MAX_IMAGES,
    MAX_GUIDANCE,
    MAX_TEMPERATURE,
    Picture,
    ServedRun,
    compare_metrics_markdown,
    compare_picture,
    find_run,
    generate_picture,
    walk_picture,
)

log = logging.getLogger("cvaekit.serve")

# A grid or walk strip holds images at their own size (28 or 32 px): shown as wide as its
# column, scaled up without blurring. The compare figure, labelled, is shown as drawn.
CSS = """.cvaekit-grid .image-frame { width: 100% !important; }
.cvaekit-grid img { width: 100% !important; height: auto !important; max-height: 75vh;
                    object-fit: contain; image-rendering: pixelated; }
.cvaekit-picture .icon-button-wrapper { position: static; width: fit-content; margin-left: auto; }
.cvaekit-note .cvaekit-error { border-left: 4px solid #dc2626; background: #fef2f2; color: #7f1d1d;
                               padding: 0.5em 0.75em; margin: 0; }"""
# Measured with benchmarks/serve_load.py (docs/performance.md): a request is mostly Gradio's
# queue and files, not the model, so a few at once keep the cores busy; the queue is bounded
# so that a flood of clients is told the queue is full rather than left waiting for minutes.
DRAWS = 4  # requests drawn at once (generate, compare and walk; page and API together)
QUEUE = {"default_concurrency_limit": 1, "max_size": 256}
CACHE_FOR = (600, 600)  # Gradio's copies of served pictures are deleted after 10 minutes
WALKS = {"From one text to another (fixed z)": "texts", "From one seed to another (fixed text)": "seeds"}
FAILED = "Something went wrong drawing this picture; the server's log says what."


def _gradio():
    return require("gradio", "serve", "cvaekit serve")


def note_html(text: str, error: bool = False) -> str:
    """A note, or an error (role 'alert'), as HTML with the text escaped."""
    if error:
        return f'<p class="cvaekit-error" role="alert"><strong>Error:</strong> {html.escape(text, quote=False)}</p>'
    return f"<p>{html.escape(text, quote=False)}</p>" if text else ""


def on_page(gr, folder: Path):
    """`show(fn, inputs, outputs, api_name, *triggers)`: each trigger runs `fn` for the page,
    which shows a `CvaekitError` in the note (the picture and download cleared, so nothing of
    an earlier request stays beside it). The HTTP API gets the same request as `api_name`, on
    a button the page never shows, and there an error is raised."""

    def drawn(picture: Picture):
        path = picture.save(folder)
        return picture.image, gr.update(value=str(path), visible=True)

    def for_page(fn, what: str):
        @functools.wraps(fn)
        def handler(*args):
            try:
                picture = fn(*args)
            except CvaekitError as exc:
                message = str(exc)
            except Exception:  # the page stays up; the log has the traceback
                log.exception("A %s request failed", what)
                message = FAILED
            else:
                return *drawn(picture), note_html(picture.note)
            return None, gr.update(value=None, visible=False), note_html(message, error=True)

        return handler

    def for_api(fn):
        """The picture once, with no second file for the download button: it would be the
        same PNG written, hashed and fetched again (a third of a request's time under load)."""
        @functools.wraps(fn)
        def handler(*args):
            try:
                picture = fn(*args)
            except CvaekitError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            return picture.image, None, picture.note

        return handler

    def show(fn, inputs, outputs, api_name, *triggers):
        limits = {"concurrency_id": "draw", "concurrency_limit": DRAWS}  # page and API share the cores
        for trigger in triggers:
            trigger(for_page(fn, api_name), inputs, outputs, api_visibility="private", **limits)
        gr.Button(visible=False, elem_id=f"api-{api_name}").click(for_api(fn), inputs, outputs, api_name=api_name,
                                                                  **limits)

    return show


def _run_panel(gr, first: ServedRun, prefix: str):
    """The chosen run's metrics and recipe, under its picture."""
    gr.Markdown("**Metrics by checkpoint**")
    metrics = gr.Markdown(first.metrics_markdown(), elem_id=f"{prefix}-metrics")
    with gr.Accordion("Recipe", open=False):
        recipe = gr.Code(first.recipe_text, language="yaml", elem_id=f"{prefix}-recipe")
    return metrics, recipe


def _outputs(gr, prefix: str, label: str, kind: str = "figure"):
    """The picture, its download button and the note beside it. Nothing sits on the picture:
    it has no label badge (that would cover its first image), and the fullscreen button has
    a strip of its own above it."""
    image = gr.Image(label=label, show_label=False, format="png", type="numpy", interactive=False,
                     buttons=["fullscreen"], elem_id=f"{prefix}-image", elem_classes=["cvaekit-picture", f"cvaekit-{kind}"])
    download = gr.DownloadButton("Download PNG", visible=False, elem_id=f"{prefix}-download")
    note = gr.HTML(elem_id=f"{prefix}-note", elem_classes=["cvaekit-note"], js_on_load=None)
    return image, download, note


def _temperature(gr, prefix: str):
    return gr.Number(1.0, step=0.05, label="Temperature", elem_id=f"{prefix}-temperature",
                     info=f"0 to {MAX_TEMPERATURE:g}: 1 samples the prior; lower is more typical; 0 its most typical z (its mode)")


def _sampling(gr, prefix: str):
    """Number boxes, not sliders: a slider moves a number out of its range back in silently,
    where the page should say that it is out of range."""
    n = gr.Number(8, step=1, label="Images", info=f"1 to {MAX_IMAGES}", elem_id=f"{prefix}-n")
    temperature = _temperature(gr, prefix)
    seed = gr.Number(0, precision=0, label="Seed", elem_id=f"{prefix}-seed")
    return n, temperature, seed


def _run_picker(gr, runs: list[ServedRun], prefix: str):
    """The run drop-down, across the tab, so that a run's whole name shows."""
    return gr.Dropdown([r.label for r in runs], value=runs[0].label, label="Run", elem_id=f"{prefix}-run")


def _describer(runs: list[ServedRun]):
    def describe(label):
        run = find_run(runs, label)
        return run.metrics_markdown(), run.recipe_text

    return describe


def _generate_tab(gr, runs: list[ServedRun], show) -> None:
    first = runs[0]

    def words_for(label):
        classes = find_run(runs, label).classes
        return gr.update(choices=classes or [], value=None, visible=bool(classes))

    run = _run_picker(gr, runs, "generate")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            words = gr.Dropdown(first.classes or [], value=None, label="Class words",
                                visible=bool(first.classes), elem_id="generate-words")
            text = gr.Textbox(label="Text", placeholder="a word of the run's classes, or a caption",
                              elem_id="generate-text")
            n, temperature, seed = _sampling(gr, "generate")
            guidance = gr.Number(1.0, step=0.5, label="Guidance", elem_id="generate-guidance",
                                 info=f"0 to {MAX_GUIDANCE:g}: 1 as trained; 2 or 3 follows the text more closely "
                                      "(runs trained with train.cond_dropout)")
            button = gr.Button("Generate", variant="primary", elem_id="generate-button")
        with gr.Column(scale=3):
            image, download, note = _outputs(gr, "generate", "Samples", "grid")
            metrics, recipe = _run_panel(gr, first, "generate")
    words.change(lambda w: w or gr.update(), words, text, api_visibility="private")
    run.change(words_for, run, words, api_visibility="private").then(
        _describer(runs), run, [metrics, recipe], api_visibility="private")
    show(lambda label, *args: generate_picture(find_run(runs, label), *args), [run, text, n, temperature, seed, guidance],
         [image, download, note], "generate", button.click, text.submit)


def _compare_tab(gr, runs: list[ServedRun], show) -> None:
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            text = gr.Textbox(label="Text", placeholder="the same text through every run", elem_id="compare-text")
            n, temperature, seed = _sampling(gr, "compare")
            button = gr.Button("Compare", variant="primary", elem_id="compare-button")
        with gr.Column(scale=3):
            image, download, note = _outputs(gr, "compare", "One row per run")
            gr.Markdown("**Metrics of each run, at the checkpoint served**")
            gr.Markdown(compare_metrics_markdown(runs), elem_id="compare-metrics")
    show(lambda *args: compare_picture(runs, *args), [text, n, temperature, seed], [image, download, note],
         "compare", button.click, text.submit)


def _walk_tab(gr, runs: list[ServedRun], show) -> None:
    run = _run_picker(gr, runs, "walk")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            mode = gr.Radio(list(WALKS), value=next(iter(WALKS)), label="Walk", elem_id="walk-mode")
            text_a = gr.Textbox(label="Text (from)", elem_id="walk-text-a")
            text_b = gr.Textbox(label="Text (to)", elem_id="walk-text-b")
            with gr.Row():
                seed_a = gr.Number(0, precision=0, label="Seed (from)", elem_id="walk-seed-a")
                seed_b = gr.Number(1, precision=0, label="Seed (to)", visible=False, elem_id="walk-seed-b")
            steps = gr.Number(8, step=1, label="Steps", info=f"2 to {MAX_STEPS}, the two ends included",
                              elem_id="walk-steps")
            temperature = _temperature(gr, "walk")
            group = gr.Number(0, precision=0, label="Latent group", visible=False, elem_id="walk-group",
                              info=_group_info(runs[0]))
            button = gr.Button("Walk", variant="primary", elem_id="walk-button")
        with gr.Column(scale=3):
            image, download, note = _outputs(gr, "walk", "Strip", "grid")
            metrics, recipe = _run_panel(gr, runs[0], "walk")

    def switch(choice, label):
        texts = WALKS[choice] == "texts"
        return (gr.update(label="Text (from)" if texts else "Text"), gr.update(visible=texts),
                gr.update(label="Seed" if texts else "Seed (from)"), gr.update(visible=not texts),
                group_for(choice, label))

    def group_for(choice, label):
        """The group box, for a seed walk of a hierarchical run only."""
        run = find_run(runs, label)
        return gr.update(visible=WALKS[choice] == "seeds" and run.groups > 1, info=_group_info(run))

    mode.change(switch, [mode, run], [text_a, text_b, seed_a, seed_b, group], api_visibility="private")
    run.change(_describer(runs), run, [metrics, recipe], api_visibility="private").then(
        group_for, [mode, run], group, api_visibility="private")
    show(lambda label, choice, *args: walk_picture(find_run(runs, label), WALKS[choice], *args),
         [run, mode, text_a, text_b, seed_a, seed_b, steps, temperature, group], [image, download, note], "walk",
         button.click)


def _group_info(run: ServedRun) -> str:
    return f"0 (the top) to {run.groups - 1}: the group the walk moves, the others held"


def build_page(runs: list[ServedRun], folder: str | Path | None = None):
    """The Gradio Blocks for `runs`; grids for download are written under `folder`."""
    gr = _gradio()
    show = on_page(gr, Path(folder or tempfile.mkdtemp(prefix="cvaekit-serve-")))
    with gr.Blocks(title="cvaekit", analytics_enabled=False, delete_cache=CACHE_FOR) as page:
        gr.Markdown("## cvaekit: try trained runs\nServed: " + ", ".join(f"`{r.label}`" for r in runs))
        with gr.Tab("Generate", elem_id="tab-generate"):
            _generate_tab(gr, runs, show)
        with gr.Tab("Compare runs", elem_id="tab-compare"):
            _compare_tab(gr, runs, show)
        with gr.Tab("Walk the latent space", elem_id="tab-walk"):
            _walk_tab(gr, runs, show)
    return page


def launch(runs: list[ServedRun], host: str = "127.0.0.1", port: int = 7860, block: bool = True,
           auth: list[tuple[str, str]] | None = None):
    """Serve the page on `host`:`port` (127.0.0.1 unless told otherwise); with `block`, until
    Ctrl-C; behind Gradio's login when `auth` names (user, password) pairs. Returns the
    Blocks (call `.close()` to stop a non-blocking one)."""
    few_malloc_arenas()  # before Gradio starts its threads
    folder = tempfile.mkdtemp(prefix="cvaekit-serve-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the grids offered for download
    page = build_page(runs, folder)
    page.queue(**QUEUE)
    try:
        page.launch(server_name=host, server_port=port, prevent_thread_lock=not block, css=CSS,
                    allowed_paths=[folder], ssr_mode=False, show_error=False, footer_links=[],
                    share=False, quiet=True, auth=auth or None)  # no public link, and no hint to make one: the CLI prints the address
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise CvaekitError(f"Cannot serve on {host}:{port} ({exc}). Pick another with --port, "
                           f"or check --host.") from None
    return page
