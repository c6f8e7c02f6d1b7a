"""The `cvaekit serve` page, on Gradio: three tabs (Generate, Compare runs, Walk the latent
space) laid over the plain functions of `cvaekit.serving`.

Gradio is the optional extra `cvaekit[serve]`, imported only here. A `CvaekitError` from a
request is shown on the page as its message; any other failure shows a short 'Error' there
(Gradio keeps tracebacks out of the page) and is logged by the server.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from cvaekit.core.sampling import MAX_STEPS
from cvaekit.errors import CvaekitError
from cvaekit.runtime.optional import require
from cvaekit.serving.service import (
    MAX_IMAGES,
    Picture,
    ServedRun,
    compare_metrics_markdown,
    compare_picture,
    find_run,
    generate_picture,
    walk_picture,
)

# A generate grid holds images at their own size (28 or 32 px): shown as wide as its column,
# scaled up without blurring. Labelled figures (compare, walk) are shown as drawn.
CSS = """.cvaekit-grid .image-frame { width: 100% !important; }
.cvaekit-grid img { width: 100% !important; height: auto !important; max-height: 75vh;
                    object-fit: contain; image-rendering: pixelated; }"""
WALKS = {"From one text to another (fixed z)": "texts", "From one seed to another (fixed text)": "seeds"}


def _gradio():
    return require("gradio", "serve", "cvaekit serve")


def on_page(gr, folder: Path):
    """A handler that shows a `CvaekitError` on the page and returns (image, download, note)."""

    def wrap(fn):
        @functools.wraps(fn)
        def handler(*args):
            try:
                picture: Picture = fn(*args)
            except CvaekitError as exc:
                raise gr.Error(str(exc), duration=None, print_exception=False) from None
            path = picture.save(folder)
            return picture.image, gr.update(value=str(path), visible=True), picture.note

        return handler

    return wrap


def _run_panel(gr, first: ServedRun, prefix: str):
    """The chosen run's metrics and recipe, under its picture."""
    gr.Markdown("**Metrics by checkpoint**")
    metrics = gr.Markdown(first.metrics_markdown(), elem_id=f"{prefix}-metrics")
    with gr.Accordion("Recipe", open=False):
        recipe = gr.Code(first.recipe_text, language="yaml", elem_id=f"{prefix}-recipe")
    return metrics, recipe


def _outputs(gr, prefix: str, label: str, kind: str = "figure"):
    """The picture, its download button and the note beside it."""
    image = gr.Image(label=label, format="png", type="numpy", interactive=False,
                     buttons=["fullscreen"], elem_id=f"{prefix}-image", elem_classes=[f"cvaekit-{kind}"])
    download = gr.DownloadButton("Download PNG", visible=False, elem_id=f"{prefix}-download")
    note = gr.Markdown(elem_id=f"{prefix}-note")
    return image, download, note


def _sampling(gr, prefix: str):
    n = gr.Slider(1, MAX_IMAGES, value=8, step=1, label="Images", elem_id=f"{prefix}-n")
    temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="Temperature",
                            info="1 samples the prior; lower is more typical; 0 its most typical z (its mode)")
    seed = gr.Number(0, precision=0, label="Seed", elem_id=f"{prefix}-seed")
    return n, temperature, seed


def _describer(runs: list[ServedRun]):
    def describe(label):
        run = find_run(runs, label)
        return run.metrics_markdown(), run.recipe_text

    return describe


def _generate_tab(gr, runs: list[ServedRun], shown) -> None:
    labels, first = [r.label for r in runs], runs[0]

    def words_for(label):
        classes = find_run(runs, label).classes
        return gr.update(choices=classes or [], value=None, visible=bool(classes))

    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            run = gr.Dropdown(labels, value=first.label, label="Run", elem_id="generate-run")
            words = gr.Dropdown(first.classes or [], value=None, label="Class words",
                                visible=bool(first.classes), elem_id="generate-words")
            text = gr.Textbox(label="Text", placeholder="a word of the run's classes, or a caption",
                              elem_id="generate-text")
            n, temperature, seed = _sampling(gr, "generate")
            button = gr.Button("Generate", variant="primary", elem_id="generate-button")
        with gr.Column(scale=3):
            image, download, note = _outputs(gr, "generate", "Samples", "grid")
            metrics, recipe = _run_panel(gr, first, "generate")
    words.change(lambda w: w or gr.update(), words, text, api_visibility="private")
    run.change(words_for, run, words, api_visibility="private").then(
        _describer(runs), run, [metrics, recipe], api_visibility="private")
    go = shown(lambda label, *args: generate_picture(find_run(runs, label), *args))
    button.click(go, [run, text, n, temperature, seed], [image, download, note], api_name="generate")
    text.submit(go, [run, text, n, temperature, seed], [image, download, note], api_visibility="private")


def _compare_tab(gr, runs: list[ServedRun], shown) -> None:
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            text = gr.Textbox(label="Text", placeholder="the same text through every run", elem_id="compare-text")
            n, temperature, seed = _sampling(gr, "compare")
            button = gr.Button("Compare", variant="primary", elem_id="compare-button")
        with gr.Column(scale=3):
            image, download, note = _outputs(gr, "compare", "One row per run")
            gr.Markdown("**Metrics of each run, at the checkpoint served**")
            gr.Markdown(compare_metrics_markdown(runs), elem_id="compare-metrics")
    compare = shown(lambda *args: compare_picture(runs, *args))
    button.click(compare, [text, n, temperature, seed], [image, download, note], api_name="compare")
    text.submit(compare, [text, n, temperature, seed], [image, download, note], api_visibility="private")


def _walk_tab(gr, runs: list[ServedRun], shown) -> None:
    labels, first = [r.label for r in runs], runs[0]
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            run = gr.Dropdown(labels, value=first.label, label="Run", elem_id="walk-run")
            mode = gr.Radio(list(WALKS), value=next(iter(WALKS)), label="Walk", elem_id="walk-mode")
            text_a = gr.Textbox(label="Text (from)", elem_id="walk-text-a")
            text_b = gr.Textbox(label="Text (to)", elem_id="walk-text-b")
            with gr.Row():
                seed_a = gr.Number(0, precision=0, label="Seed (from)", elem_id="walk-seed-a")
                seed_b = gr.Number(1, precision=0, label="Seed (to)", visible=False, elem_id="walk-seed-b")
            steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="Steps", elem_id="walk-steps")
            temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="Temperature")
            button = gr.Button("Walk", variant="primary", elem_id="walk-button")
        with gr.Column(scale=3):
            image, download, note = _outputs(gr, "walk", "Strip")
            metrics, recipe = _run_panel(gr, first, "walk")

    def switch(choice):
        texts = WALKS[choice] == "texts"
        return (gr.update(label="Text (from)" if texts else "Text"), gr.update(visible=texts),
                gr.update(label="Seed" if texts else "Seed (from)"), gr.update(visible=not texts))

    mode.change(switch, mode, [text_a, text_b, seed_a, seed_b], api_visibility="private")
    run.change(_describer(runs), run, [metrics, recipe], api_visibility="private")
    walk = shown(lambda label, choice, *args: walk_picture(find_run(runs, label), WALKS[choice], *args))
    button.click(walk, [run, mode, text_a, text_b, seed_a, seed_b, steps, temperature],
                 [image, download, note], api_name="walk")


def build_page(runs: list[ServedRun], folder: str | Path | None = None):
    """The Gradio Blocks for `runs`; grids for download are written under `folder`."""
    gr = _gradio()
    shown = on_page(gr, Path(folder or tempfile.mkdtemp(prefix="cvaekit-serve-")))
    with gr.Blocks(title="cvaekit", analytics_enabled=False) as page:
        gr.Markdown("## cvaekit: try trained runs\nServed: " + ", ".join(f"`{r.label}`" for r in runs))
        with gr.Tab("Generate", elem_id="tab-generate"):
            _generate_tab(gr, runs, shown)
        with gr.Tab("Compare runs", elem_id="tab-compare"):
            _compare_tab(gr, runs, shown)
        with gr.Tab("Walk the latent space", elem_id="tab-walk"):
            _walk_tab(gr, runs, shown)
    return page


def launch(runs: list[ServedRun], host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Serve the page on `host`:`port` (127.0.0.1 unless told otherwise); with `block`, until
    Ctrl-C. Returns the Blocks (call `.close()` to stop a non-blocking one)."""
    folder = tempfile.mkdtemp(prefix="cvaekit-serve-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the grids offered for download
    page = build_page(runs, folder)
    page.queue(default_concurrency_limit=1)  # one model, one request at a time: no oversubscribed cores
    try:
        page.launch(server_name=host, server_port=port, prevent_thread_lock=not block, css=CSS,
                    allowed_paths=[folder], ssr_mode=False, show_error=False, quiet=not block,
                    footer_links=[])
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise CvaekitError(f"Cannot serve on {host}:{port} ({exc}). Pick another with --port, "
                           f"or check --host.") from None
    return page
