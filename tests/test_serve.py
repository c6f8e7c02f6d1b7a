"""`cvaekit serve`'s functions as plain Python (no browser), the latent walks of
`cvaekit.core.sampling`, and `cvaekit generate --interpolate`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.core.condition import Condition
from cvaekit.errors import CvaekitError, UnknownConditionError
from cvaekit.core.sampling import MAX_STEPS, blend, decode_latents, draw_latent, sample_rows, slerp, walk_seeds, walk_texts
from cvaekit.serving.service import MAX_IMAGES, MAX_TEMPERATURE, MAX_TEXT_CHARS, compare_metrics_markdown, compare_picture, generate_picture, load_runs, pixel_grid, split_run_arg, walk_picture
from cvaekit.training import train

runner = CliRunner()


def caption_recipe(tmp_path) -> dict:
    """A tiny shapes-captions run: learned text tokens into cross-attention, 16 px."""
    return {
        "name": "tiny_shapes", "seed": 0, "runs_dir": str(tmp_path / "runs"),
        "data": {"name": "shapes_captions", "image_size": 16, "n_train": 256, "n_test": 64},
        "model": {"latent_dim": 4, "conditioner": {"name": "learned_text", "dim": 16, "tokens": True},
                  "encoder": {"name": "conv", "channels": [8, 16]},
                  "decoder": {"name": "deconv", "channels": [8, 16], "hidden": 32},
                  "injections": [{"name": "cross_attention", "at": 1, "net": "decoder"}]},
        "train": {"epochs": 1, "batch_size": 64, "checkpoint_every": 1},
        "eval": {"metrics": ["nelbo"], "limit": 64, "samples_per_condition": 2},
    }


@pytest.fixture(scope="module")
def label_run(tmp_path_factory):
    from conftest import fashion_recipe

    recipe = fashion_recipe(tmp_path_factory.mktemp("serve-label"), epochs=1, limit=256)
    recipe["eval"]["limit"] = 128
    return train(recipe, progress=False)


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory):
    return train(caption_recipe(tmp_path_factory.mktemp("serve-caption")), progress=False)


@pytest.fixture(scope="module")
def served(label_run, caption_run):
    return load_runs([str(label_run), str(caption_run)], device="cpu")


def test_a_generate_grid_is_the_same_pictures_as_cvaekit_generate(served):
    label = served[0]
    picture = generate_picture(label, "sneaker", n=5, temperature=0.8, seed=3)
    (expected,) = sample_rows(label.model, ["sneaker"], 5, seed=3, temperature=0.8)
    assert np.array_equal(picture.image, pixel_grid(expected))
    assert picture.image.shape == (28 + 4, 5 * 30 + 2, 3)
    assert "5 images in" in picture.note
    other = generate_picture(label, "sneaker", n=5, temperature=0.8, seed=4)
    assert not np.array_equal(picture.image, other.image)


def test_free_text_goes_through_the_word_map_and_an_unknown_word_says_the_classes(served):
    label = served[0]
    assert label.classes[:2] == ["T-shirt/top", "Trouser"]
    a = generate_picture(label, "Sneakers", n=2, seed=0).image
    assert np.array_equal(a, generate_picture(label, "sneaker", n=2, seed=0).image)
    with pytest.raises(UnknownConditionError, match="'hat' is not a class.*'Sneaker'"):
        generate_picture(label, "hat")


def test_bad_requests_are_errors_never_a_crash(served):
    label, caption = served
    with pytest.raises(CvaekitError, match="text is empty"):
        generate_picture(label, "   ")
    with pytest.raises(CvaekitError, match=f"up to {MAX_TEXT_CHARS:,}"):
        generate_picture(caption, "a red circle " * 200)
    long = generate_picture(caption, " ".join(["a red circle"] * 20), n=1)
    assert "this model reads only the first 48" in long.note
    with pytest.warns(UserWarning, match="'leather'"):
        unknown = generate_picture(caption, "a red leather circle", n=1)
    assert "never read 'leather' in its training captions" in unknown.note
    assert "never read" not in generate_picture(caption, "a red circle", n=1).note
    with pytest.raises(CvaekitError, match="seed must be a whole number"):
        generate_picture(label, "bag", seed="x")


@pytest.mark.parametrize("n", [0, -3, 65, 500, 10_000, 2.5, "x", None])
def test_a_number_of_images_out_of_range_is_refused_with_the_range(served, n):
    with pytest.raises(CvaekitError, match=f"number of images must be a whole number from 1 to {MAX_IMAGES}; got"):
        generate_picture(served[0], "bag", n=n)
    with pytest.raises(CvaekitError, match=f"number of images per run must be a whole number from 1 to {MAX_IMAGES}"):
        compare_picture(served, "bag", n=n)


@pytest.mark.parametrize("temperature", [-1, -0.01, 2.01, 10, float("nan"), "hot"])
def test_a_temperature_out_of_range_is_refused_with_the_range(served, temperature):
    label = served[0]
    with pytest.raises(CvaekitError, match=f"temperature must be a number from 0 to {MAX_TEMPERATURE:g}.*got"):
        generate_picture(label, "bag", temperature=temperature)
    with pytest.raises(CvaekitError, match="temperature must be a number from 0 to 2"):
        compare_picture(served, "bag", temperature=temperature)
    with pytest.raises(CvaekitError, match="temperature must be a number from 0 to 2"):
        walk_picture(label, "seeds", "bag", temperature=temperature)


@pytest.mark.parametrize("guidance", [-0.5, 10.5, float("nan"), "strong", None])
def test_a_guidance_scale_out_of_range_is_refused_and_an_unguided_run_names_its_setting(served, guidance):
    with pytest.raises(CvaekitError, match="guidance scale must be"):
        generate_picture(served[0], "bag", guidance=guidance)
    with pytest.raises(CvaekitError, match="trained with train.cond_dropout"):
        generate_picture(served[0], "bag", guidance=2)


def test_the_ends_of_the_ranges_are_served(served):
    label = served[0]
    full = generate_picture(label, "bag", n=MAX_IMAGES, temperature=MAX_TEMPERATURE)
    assert full.image.shape[0] == (MAX_IMAGES // 8) * 30 + 2 and f"{MAX_IMAGES} images in" in full.note
    assert generate_picture(label, "bag", n="3", temperature=0).image.shape == (32, 3 * 30 + 2, 3)
    assert walk_picture(label, "seeds", "bag", steps=2).image.shape == (32, 2 * 30 + 2, 3)
    assert walk_picture(label, "seeds", "bag", steps=MAX_STEPS).image.shape[0] == (MAX_STEPS // 8) * 30 + 2


def test_compare_draws_every_run_and_names_the_ones_that_cannot_read_the_text(served, label_run):
    both = load_runs([str(label_run), f"{label_run}@1"], device="cpu")
    assert [r.label for r in both] == [f"{label_run.name} · epoch 1", f"{label_run.name} · epoch 1 (2)"]
    picture = compare_picture(both, "bag", n=3, seed=1)
    assert picture.image.ndim == 3 and picture.image.shape[2] == 3 and picture.note == ""
    mixed = compare_picture(served, "a red circle", n=3)
    assert "Left out" in mixed.note and served[0].label in mixed.note and "not a class" in mixed.note
    with pytest.raises(CvaekitError, match="No run could draw"):
        compare_picture(served[:1], "a red circle")


def test_loading_names_a_missing_folder_and_a_missing_checkpoint(tmp_path, label_run):
    with pytest.raises(CvaekitError, match="not a cvaekit run folder"):
        load_runs([str(tmp_path / "nope")])
    with pytest.raises(CvaekitError, match="no checkpoint '9'.*Kept epochs: 1"):
        load_runs([f"{label_run}@9"])
    assert split_run_arg("runs/x@12") == ("runs/x", "12")
    assert split_run_arg(str(label_run)) == (str(label_run), None)


def test_the_page_shows_recipe_and_metrics(served):
    label = served[0]
    assert "fashion_mnist" in label.recipe_text
    table = label.metrics_markdown()
    assert table.startswith("| epoch | nelbo |") and "\n| 1 | " in table
    side_by_side = compare_metrics_markdown(served)
    assert side_by_side.startswith("| run | nelbo |") and f"| {served[1].label} | " in side_by_side


def test_a_text_walk_starts_and_ends_at_each_texts_own_picture(served):
    caption = served[1]
    model = caption.model
    strip = walk_texts(model, "a red circle", "a large blue square below a small green triangle", steps=5, seed=2)
    assert strip.shape == (5, 3, 16, 16)
    for text, image in (("a red circle", strip[0]), ("a large blue square below a small green triangle", strip[-1])):
        cond = model.condition(model.conditioner.parse([text]))
        assert torch.allclose(image, decode_latents(model, draw_latent(model, cond, 2), cond)[0], atol=1e-5)
    assert not torch.allclose(strip[0], strip[-1])
    label_strip = walk_texts(served[0].model, "sneaker", "bag", steps=3)
    assert label_strip.shape == (3, 1, 28, 28)
    with pytest.raises(CvaekitError, match="2 to 64 steps"):
        walk_texts(model, "a red circle", "a blue square", steps=1)


def test_a_seed_walk_keeps_the_text_and_moves_z_between_the_two_draws(served):
    model = served[0].model
    strip = walk_seeds(model, "bag", 0, 1, steps=4)
    cond = model.condition(model.conditioner.parse(["bag"]))
    for seed, image in ((0, strip[0]), (1, strip[-1])):
        assert torch.allclose(image, decode_latents(model, draw_latent(model, cond, seed), cond)[0], atol=1e-5)
    assert not torch.allclose(strip[1], strip[2])


def test_blend_pads_token_sequences_and_slerp_keeps_the_length():
    a = Condition(torch.zeros(1, 2), torch.zeros(1, 1, 2), torch.ones(1, 1, dtype=torch.bool))
    b = Condition(torch.ones(1, 2), torch.ones(1, 3, 2), torch.ones(1, 3, dtype=torch.bool))
    assert blend(a, b, 0.0).mask.tolist() == [[True, False, False]]
    mid = blend(a, b, 0.5)
    assert mid.tokens.shape == (1, 3, 2) and mid.mask.all() and torch.allclose(mid.vector, torch.full((1, 2), 0.5))
    za, zb = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert torch.allclose(slerp(za, zb, 0.5).norm(), torch.tensor(3.0))
    assert torch.allclose(slerp(za, za, 0.3), za)


def test_walk_pictures_and_their_errors(served):
    label, caption = served
    texts = walk_picture(caption, "texts", "a red circle", "a blue square", steps=6)
    assert texts.image.shape == (16 + 4, 6 * 18 + 2, 3)  # the images at their own size, one row
    assert "walk-a-red-circle-to-a-blue-square" == texts.name
    assert texts.note == "From 'a red circle' to 'a blue square' at seed 0, in 6 steps."
    seeds = walk_picture(label, "seeds", "bag", seed_a=0, seed_b=5, steps=12)
    assert seeds.image.shape == (2 * 30 + 2, 8 * 30 + 2, 3)  # rows of 8, like a generate grid
    assert seeds.note == "'bag' from seed 0 to 5, in 12 steps."
    assert np.array_equal(seeds.image, pixel_grid(walk_seeds(label.model, "bag", 0, 5, steps=12)))
    for steps in (1, 65, 100):
        with pytest.raises(CvaekitError, match=f"steps .* must be a whole number from 2 to {MAX_STEPS}; got {steps}"):
            walk_picture(label, "seeds", "bag", steps=steps)
    with pytest.raises(CvaekitError, match="text is empty"):
        walk_picture(caption, "texts", "a red circle", "")
    with pytest.raises(UnknownConditionError, match="'hat' is not a class"):
        walk_picture(label, "texts", "bag", "hat")


def test_generate_interpolate_writes_the_strip(label_run, tmp_path):
    out = tmp_path / "walk.png"
    result = runner.invoke(app, ["generate", str(label_run), "sneaker", "bag", "--interpolate", "-n", "8", "-o", str(out)])
    assert result.exit_code == 0, result.output
    w, h = Image.open(out).size
    assert w > 3 * h  # one row of eight
    result = runner.invoke(app, ["generate", str(label_run), "sneaker", "--interpolate", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "exactly two texts" in result.output


@pytest.mark.parametrize("n", ["0", "-3"])
def test_generate_refuses_a_count_below_one_and_names_the_range(label_run, tmp_path, n):
    out = tmp_path / "none.png"
    result = runner.invoke(app, ["generate", str(label_run), "bag", "-n", n, "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert f"The number of images per text must be 1 or more; got {n}." in result.output
    assert "Traceback" not in result.output and not out.exists()
    walk = runner.invoke(app, ["generate", str(label_run), "bag", "coat", "--interpolate", "-n", n, "-o", str(out)])
    assert walk.exit_code == 2 and "A walk takes 2 to 64 steps" in walk.output and not out.exists()


def test_the_python_generate_keeps_the_same_rules(label_run, tmp_path):
    import cvaekit

    for bad, message in ((0, "must be 1 or more; got 0"), (-3, "got -3"), (2.5, "whole number of 1 or more; got 2.5"),
                         ("8", "whole number")):
        with pytest.raises(CvaekitError, match=message):
            cvaekit.generate(label_run, ["bag"], n=bad, out=tmp_path / "x.png")
    with pytest.raises(CvaekitError, match="Give at least one text"):
        cvaekit.generate(label_run, [], out=tmp_path / "x.png")
    with pytest.raises(CvaekitError, match="A walk takes 2 to 64 steps"):
        cvaekit.interpolate(label_run, "bag", "coat", steps=1, out=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    one = cvaekit.generate(label_run, "bag", n=2, out=tmp_path / "bag.png")  # one string is one text, not 3 letters
    listed = cvaekit.generate(label_run, ["bag"], n=2, out=tmp_path / "listed.png")
    assert np.array_equal(np.asarray(Image.open(one)), np.asarray(Image.open(listed)))


def test_an_empty_or_blank_text_is_refused_by_generate_and_the_page_with_one_message(served, label_run, caption_run,
                                                                                    tmp_path):
    label, caption = served
    for run, served_run, text in ((caption_run, caption, ""), (caption_run, caption, "  "), (label_run, label, " ")):
        with pytest.raises(CvaekitError) as page:
            generate_picture(served_run, text)
        result = runner.invoke(app, ["generate", str(run), text, "-o", str(tmp_path / "x.png")])
        assert result.exit_code == 2 and not (tmp_path / "x.png").exists()
        assert " ".join(result.output.split()) == f"Error: {page.value}"
    assert str(page.value).startswith("Type a class word (T-shirt/top, Trouser, ") and "the text is empty" in str(page.value)
    second = runner.invoke(app, ["generate", str(caption_run), "a red circle", "", "-o", str(tmp_path / "x.png")])
    assert second.exit_code == 2 and "Type a caption first: text 2 of 2 is empty." in second.output
    with pytest.raises(CvaekitError, match="Type a caption first"):
        sample_rows(caption.model, ["a red circle", "\t"], 1)


def test_serve_names_a_missing_run_before_serving(tmp_path):
    result = runner.invoke(app, ["serve", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "not a cvaekit run folder" in result.output


@pytest.mark.slow  # imports Gradio and starts a server: seconds
def test_the_page_needs_the_serve_extra_and_a_free_port(served, monkeypatch):
    import socket

    from cvaekit.serving.page import build_page, launch

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CvaekitError, match=f"Cannot serve on 127.0.0.1:{port}.*--port"):
            launch(served, port=port, block=False)
    monkeypatch.setitem(__import__("sys").modules, "gradio", None)
    with pytest.raises(CvaekitError, match=r"pip install 'cvaekit\[serve\]'"):
        build_page(served)


@pytest.mark.slow  # starts `cvaekit serve` in a process of its own: seconds
def test_serve_prints_its_address_and_no_share_hint(label_run):
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from cvaekit.testing.local import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "cvaekit.cli", "serve", str(label_run), "--port", str(port),
                               "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=5).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.communicate()[0]
                time.sleep(0.5)
        time.sleep(1)  # anything printed after the server is up
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert f"on http://127.0.0.1:{port}" in output
    assert "share" not in output.lower() and "public link" not in output


@pytest.mark.slow  # imports Gradio
def test_on_the_page_an_error_is_the_note_and_clears_the_picture_and_the_api_raises_it(tmp_path, caplog):
    import gradio as gr

    from cvaekit.serving.page import FAILED, on_page
    from cvaekit.serving.service import Picture

    def draw(text="ok"):
        if text == "bad":
            raise CvaekitError("No <b>such</b> word.")
        if text == "bug":
            raise RuntimeError("a bug")
        return Picture(np.zeros((4, 4, 3), np.uint8), "4 images in 0.01 s.")

    handlers = []
    with gr.Blocks() as blocks:
        on_page(gr, tmp_path)(draw, [], [], "draw", lambda handler, *args, **kwargs: handlers.append(handler))
    (page,) = handlers
    (api,) = [f.fn for f in blocks.fns.values() if f.api_name == "draw"]  # on a button the page never shows
    image, download, note = page("ok")
    assert image.shape == (4, 4, 3) and download["visible"] and note == "<p>4 images in 0.01 s.</p>"
    image, download, note = page("bad")
    assert image is None and download == {"__type__": "update", "value": None, "visible": False}
    assert note == '<p class="cvaekit-error" role="alert"><strong>Error:</strong> No &lt;b&gt;such&lt;/b&gt; word.</p>'
    image, download, note = page("bug")
    assert image is None and FAILED in note and "a bug" not in note
    assert "A draw request failed" in caplog.text and "RuntimeError: a bug" in caplog.text
    assert api("ok")[2] == "4 images in 0.01 s."
    with pytest.raises(gr.Error, match="No <b>such</b> word."):
        api("bad")
