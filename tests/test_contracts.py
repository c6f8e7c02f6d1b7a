"""cvaekit.testing: every built-in passes its kind's contract, and broken components fail
it with a message that names the component and the contract point."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cvaekit.core.data import DataSource, Split
from cvaekit.errors import UnknownConditionError
from cvaekit.plugins import load_registry
from cvaekit.plugins.registry import Registry
from cvaekit.testing import ContractError, check_component, probe_data_source


# How to check a built-in that cannot use the defaults: its params and the check's options.
# A new built-in is checked with the defaults; give it an entry here if it needs data or a model.
def _tiny_coco(request, tmp_path):
    from tiny_coco import write_tiny_coco

    root = write_tiny_coco(tmp_path / "coco", n_train=8, n_val=4, corrupt=0)
    return {"params": {"root": str(root), "image_size": 16, "progress": False}}


def _own(kind: str):
    """Params for the data sets of a user's own pictures, on data written in tmp_path."""
    import own_pictures as own

    def setup(request, tmp_path):
        quick = {"progress": False}
        if kind == "image_folder":
            return {"params": {"root": str(own.write_labelled_folder(tmp_path / "p", per_class=6)),
                               "image_size": 16, **quick}}
        if kind == "image_captions":
            return {"params": {"root": str(own.write_caption_folder(tmp_path / "p", n=16)), "image_size": 16, **quick}}
        if kind == "hf_dataset":
            return {"params": {"path": str(own.write_hf_dataset(tmp_path / "p", n=12)), "label_column": "label",
                               "image_size": 16, **quick}}
        return {"params": {"root": str(own.write_mnist_root(tmp_path / "p")), **quick}}

    return setup


def _shapes_data(request, tmp_path):
    return {"data": load_registry().build("dataset", "shapes_captions",
                                          {"n_train": 32, "n_test": 16, "max_shapes": 2})}


SETUP = {
    ("conditioner", "clip_text"): lambda r, t: {"params": {"model": r.getfixturevalue("tiny_clip_path")}},
    ("conditioner", "none"): lambda r, t: {"unknown": None},
    ("dataset", "shapes_captions"): lambda r, t: {"params": {"n_train": 64, "n_test": 16}},
    ("dataset", "coco_captions"): _tiny_coco,
    **{("dataset", k): _own(k) for k in ("image_folder", "image_captions", "hf_dataset", "torchvision")},
    ("metric", "cond_accuracy"): lambda r, t: {"params": {"per_class": 4}},
    ("metric", "clip_score"): lambda r, t: {"params": {"model": r.getfixturevalue("tiny_clip_path"), "n": 8},
                                            "data": "captions"},
    ("metric", "fid"): lambda r, t: {"params": {"features": "random", "n": 12}},
    ("metric", "shapes_fidelity"): lambda r, t: {"params": {"n_captions": 8}, **_shapes_data(r, t)},
    ("dataset", "fashion_captions"): lambda r, t: {"params": {"n_train": 64, "n_test": 16}},
    ("metric", "fashion_fidelity"): lambda r, t: {"params": {"n_captions": 8}, "data": load_registry().build(
        "dataset", "fashion_captions", {"n_train": 32, "n_test": 16})},
}


SLOW = {("metric", "fid"), ("logger", "mlflow"), ("logger", "wandb")}  # over ~10 s on 2 cores, or a tracker's start-up


def _builtins() -> list:
    return [pytest.param(c.kind, c.name, marks=[pytest.mark.slow] if (c.kind, c.name) in SLOW else [])
            for c in load_registry().of_kind() if c.origin.split()[0] == "cvaekit"]


@pytest.mark.parametrize("kind,name", _builtins())
def test_builtin_meets_its_contract(kind, name, request, tmp_path):
    options = SETUP.get((kind, name), lambda r, t: {})(request, tmp_path)
    check_component(kind, name, options.pop("params", {}), **options)


# ---------------------------------------------------------------------------- broken on purpose

def _fails(point: str, kind: str, name, params=None, **options) -> ContractError:
    with pytest.raises(ContractError) as info:
        check_component(kind, name, params, registry=Registry(), **options)
    err = info.value
    label = name if isinstance(name, str) else name.__name__
    assert err.point == point, str(err)
    assert str(err).startswith(f"{kind} '{label}' breaks the contract point '{point}': ")
    return err


class GoodLabels(nn.Module):
    """A correct label conditioner the broken ones below change one thing of."""

    def __init__(self, *, data, width: int = 4):
        super().__init__()
        self.classes = list(data.classes)
        self.dim = width
        self.embed = nn.Embedding(len(self.classes), width)

    def parse(self, texts):
        for t in texts:
            if t not in self.classes:
                raise UnknownConditionError(f"'{t}' is not one of {self.classes}")
        return torch.tensor([self.classes.index(t) for t in texts])

    def forward(self, labels):
        return self.embed(labels.to(self.embed.weight.device))


def test_a_good_component_passes_and_the_callers_rng_is_untouched():
    state = torch.get_rng_state()
    check_component("conditioner", GoodLabels, registry=Registry())
    assert torch.equal(torch.get_rng_state(), state)


def test_missing_dim_is_an_interface_failure():
    class NoDim(GoodLabels):
        def __init__(self, *, data):
            super().__init__(data=data)
            del self.dim

    err = _fails("interface", "conditioner", NoDim)
    assert "attribute 'dim'" in str(err)


def test_wrong_output_width():
    class TooWide(GoodLabels):
        def __init__(self, *, data):
            super().__init__(data=data)
            self.dim = 3  # the embedding gives 4

    err = _fails("output shape", "conditioner", TooWide)
    assert "shape (3, 4), expected (3, 3)" in str(err)


def test_label_conditioner_accepting_unknown_words():
    class Lenient(GoodLabels):
        def parse(self, texts):
            return torch.tensor([self.classes.index(t) if t in self.classes else 0 for t in texts])

    err = _fails("bad input", "conditioner", Lenient)
    assert "UnknownConditionError" in str(err)


def test_frozen_encoder_inside_the_module_tree():
    class Frozen(GoodLabels):
        def __init__(self, *, data):
            super().__init__(data=data)
            self.embed.weight.requires_grad_(False)

    err = _fails("no frozen weights", "conditioner", Frozen)
    assert "embed.weight" in str(err)


def test_vocabulary_kept_outside_the_state_dict():
    class Vocab(nn.Module):
        """Word ids from the training captions, kept in a plain attribute: lost on reload."""

        def __init__(self, *, data):
            super().__init__()
            self.words = sorted({w for t in (data.texts or []) for w in t.split()})
            self.dim = 8
            self.embed = nn.EmbeddingBag(64, 8)

        def parse(self, texts):
            return list(texts)

        def forward(self, texts):
            ids = [[self.words.index(w) if w in self.words else 63 for w in t.split()] or [63] for t in texts]
            return torch.stack([self.embed(torch.tensor([i])).squeeze(0) for i in ids])

    err = _fails("state_dict round trip", "conditioner", Vocab)
    assert "loaded with the first's state_dict" in str(err)


def test_initialised_outside_torch_seeding():
    class NumpyInit(GoodLabels):
        def __init__(self, *, data):
            super().__init__(data=data)
            self.embed.weight.data = torch.from_numpy(np.random.randn(len(self.classes), 4)).float()

    _fails("determinism", "conditioner", NumpyInit)


def test_unannotated_parameter():
    class Loose(GoodLabels):
        def __init__(self, *, data, width=4):
            super().__init__(data=data, width=width)

    err = _fails("recipe parameters", "conditioner", Loose)
    assert "'width' has no type annotation" in str(err)


def test_factory_that_raises_on_build():
    def exploding(*, data):
        raise RuntimeError("out of ideas")

    err = _fails("build", "conditioner", exploding)
    assert "RuntimeError: out of ideas" in str(err)


class Shift(nn.Module):
    """Adds the condition's mean: broadcasts over any batch, so a mismatch goes unnoticed."""

    def __init__(self, *, cond_dim: int, channels: int):
        super().__init__()
        self.out_channels = channels

    def forward(self, h, cond):
        return h + cond.vector.mean()


def test_injection_accepting_a_mismatched_condition():
    err = _fails("bad input", "injection", Shift)
    assert "accepted silently" in str(err)


def test_injection_reporting_wrong_out_channels():
    class Liar(Shift):
        def __init__(self, *, cond_dim: int, channels: int):
            super().__init__(cond_dim=cond_dim, channels=channels)
            self.out_channels = channels + 1

    err = _fails("output shape", "injection", Liar)
    assert "expected (2, 17, 8, 8)" in str(err)


class FixedWidthEncoder(nn.Module):
    """Offers stage 0 but builds its first layer for `channels`, not the stack's out_channels."""

    def __init__(self, *, image_shape, cond_dim: int, latent_dim: int, injections):
        super().__init__()
        c, h, w = image_shape
        self.inject = injections.at(0, c)
        self.conv = nn.Conv2d(c, 4, 3, padding=1)
        self.head = nn.Linear(4 * h * w, 2 * latent_dim)

    def forward(self, x, cond):
        return self.head(self.conv(self.inject(x, cond)).flatten(1)).chunk(2, dim=1)


def test_encoder_ignoring_injection_channels():
    err = _fails("injections", "encoder", FixedWidthEncoder)
    assert "with an injection at stage 0 that adds 2 channels" in str(err)
    assert "expected input[2, 5, 32, 32] to have 3 channels" in str(err)


def test_encoder_offering_no_injections():
    class Deaf(FixedWidthEncoder):
        def __init__(self, *, image_shape, cond_dim: int, latent_dim: int, injections):
            nn.Module.__init__(self)
            c, h, w = image_shape
            self.inject = nn.Identity()
            self.conv = nn.Conv2d(c, 4, 3, padding=1)
            self.head = nn.Linear(4 * h * w, 2 * latent_dim)

        def forward(self, x, cond):
            return self.head(self.conv(x).flatten(1)).chunk(2, dim=1)

    err = _fails("injections", "encoder", Deaf)
    assert "never calls injections.at" in str(err)


def test_dataset_with_float_images():
    def floats() -> DataSource:
        src = probe_data_source("labels")
        return DataSource(Split(src.train.images.float() / 255, src.train.conditions), src.test, src.classes)

    err = _fails("output dtype", "dataset", floats)
    assert "uint8" in str(err)


def test_metric_with_a_nan():
    class Broken:
        def __call__(self, ctx):
            return {"score": float("nan")}

    err = _fails("output dtype", "metric", Broken)
    assert "'score': nan" in str(err)


def test_metric_crashing_on_data_it_cannot_judge():
    class LabelsOnly:
        def __call__(self, ctx):
            return {"first_label": float(ctx.test.conditions[0])}  # captions: a TypeError/ValueError

    err = _fails("bad input", "metric", LabelsOnly)
    assert "must raise a CvaekitError" in str(err)


def test_a_bare_metric_function_is_told_that_a_metric_factory_returns_the_metric(tiny_fashion):
    from cvaekit.errors import RecipeError
    from cvaekit.evaluation import EvalContext
    from cvaekit.plugins import load_registry
    from cvaekit.recipe import load_recipe

    def image_count(ctx):
        return {"images": float(len(ctx.test))}

    def typed(context: EvalContext, scale: float = 1.0):
        return {"images": scale * len(context.test)}

    err = _fails("interface", "metric", image_count)
    assert ("'image_count' takes 'ctx' itself, so it is the metric, but a metric factory returns the metric: "
            "register a factory that builds it, e.g. registry.add(\"metric\", \"image_count\", "
            "lambda: image_count)") in str(err)
    assert "Missing key" not in str(err)
    assert "takes 'context' itself" in str(_fails("interface", "metric", typed))
    check_component("metric", lambda: image_count, registry=Registry())  # its factory passes
    registry = load_registry()
    registry.add("metric", "image_count", image_count, origin="test-pkg 1.0")
    tiny_fashion["eval"]["metrics"] = ["nelbo", "image_count"]
    with pytest.raises(RecipeError, match=r"'eval.metrics.1': the metric 'image_count' \(from test-pkg 1.0\) "
                                          r"cannot be built: 'image_count' takes 'ctx' itself"):
        load_recipe(tiny_fashion, registry=registry)
    with pytest.raises(ContractError, match=r"metric 'image_count' breaks the contract point 'interface'"):
        check_component("metric", "image_count", registry=registry)


def test_check_component_validates_params_the_way_a_recipe_does():
    from cvaekit.errors import RecipeError

    with pytest.raises(RecipeError, match=r"'params.hidden' must be an integer, got 'wide'"):
        check_component("encoder", "mlp", {"hidden": "wide"})
    with pytest.raises(RecipeError, match=r"Unknown key 'params.hiden' for encoder 'mlp'. Did you mean 'hidden'"):
        check_component("encoder", "mlp", {"hiden": 8})


class UnmaskedWords(nn.Module):
    """One embedding per word, zero-padded to the longest text but without a mask."""

    def __init__(self, *, data, dim: int = 4):
        super().__init__()
        self.dim = dim
        self.embed = nn.Embedding(64, dim)

    def parse(self, texts):
        return list(texts)

    def forward(self, texts):
        words = [[sum(map(ord, w)) % 64 for w in t.split()] or [0] for t in texts]
        longest = max(map(len, words))
        ids = torch.tensor([w + [0] * (longest - len(w)) for w in words])
        keep = torch.tensor([[1.0] * len(w) + [0.0] * (longest - len(w)) for w in words])
        return self.embed(ids) * keep[..., None]


def test_a_text_conditioner_that_pads_without_a_mask_breaks_the_token_path():
    with pytest.raises(ContractError) as info:
        check_component("conditioner", UnmaskedWords, registry=Registry())
    assert info.value.point == "token path" and "padding must be masked out" in str(info.value)
