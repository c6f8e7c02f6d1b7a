"""The evaluation metrics on tiny data made here: FID, CLIP score, reconstruction error."""

from __future__ import annotations

import warnings

import pytest
import torch

from cvaekit.components.metrics.clip_score import CLIPScoreMetric, clip_cosines, scores, to_clip_pixels
from cvaekit.components.metrics.fid import FID, random_features
from cvaekit.core.data import DataSource, Split
from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.evaluation import EvalContext, run_metrics

COLOURS = {"red": (1.0, 0.0, 0.0), "blue": (0.0, 0.0, 1.0)}


def squares(colour: str, n: int, size: int = 28) -> torch.Tensor:
    """`n` squares of one colour on black, each shifted a little, floats in [0, 1]."""
    x = torch.zeros(n, 3, size, size)
    for i in range(n):
        o = i % 8
        x[i, :, 4 + o:14 + o, 4 + o:14 + o] = torch.tensor(COLOURS[colour]).view(3, 1, 1)
    return x


class Painter:
    """A stand-in generator: paints the square its caption (or label) names, or the other one."""

    device = torch.device("cpu")

    def __init__(self, swap: bool = False, shift: float = 0.0):
        self.swap, self.shift = swap, shift

    def sample(self, raw, generator=None) -> torch.Tensor:
        names = ["red" if ("red" in r) != self.swap else "blue" for r in raw] if isinstance(raw, list) \
            else ["red" if (int(r) == 0) != self.swap else "blue" for r in raw]
        return torch.cat([squares(c, 1) for c in names]).add(self.shift).clamp(0, 1)

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    training = False


def caption_data(n: int = 16) -> DataSource:
    colours = ["red", "blue"] * (n // 2)
    images = torch.cat([squares(c, 1) for c in colours]).mul(255).to(torch.uint8)
    split = Split(images, [[f"a {c} square"] for c in colours], caption="first")
    return DataSource(split, split)


def labelled_data(n: int = 64) -> DataSource:
    labels = torch.arange(n) % 2
    images = torch.cat([squares("red" if l == 0 else "blue", 1) for l in labels]).mul(255).to(torch.uint8)
    split = Split(images, labels)
    return DataSource(split, split, classes=["red square", "blue square"])


# ---------------------------------------------------------------------------- FID

def test_fid_near_zero_for_identical_sets_and_larger_when_shifted():
    from torchmetrics.image.fid import FrechetInceptionDistance

    real = torch.rand(100, 1, 28, 28)

    def fid(fake):
        metric = FrechetInceptionDistance(feature=random_features(1), normalize=True)
        metric.update(real, real=True)
        metric.update(fake, real=False)
        return metric.compute().item()

    same, shifted, far = fid(real.clone()), fid((real + 0.2).clamp(0, 1)), fid((real + 0.5).clamp(0, 1))
    assert abs(same) < 1e-3
    assert shifted > 100 * max(abs(same), 1e-6)
    assert far > shifted


def test_fid_metric_ranks_a_faithful_generator_first_and_names_its_features():
    data = caption_data(32)
    ctx = lambda model: EvalContext(model, data, data.test, batch_size=8)  # noqa: E731
    metric = FID(features="random")
    good = metric(ctx(Painter()))
    bad = metric(ctx(Painter(shift=0.3)))
    assert set(good) == {"fid_random"}
    assert good["fid_random"] < 1e-3 < bad["fid_random"]


def test_fid_auto_uses_the_judge_for_labelled_data_offline(monkeypatch):
    import cvaekit.components.metrics.fid as fid_module

    monkeypatch.setattr(fid_module, "cached_inception_weights", lambda: None)
    data = labelled_data()
    result = FID()(EvalContext(Painter(), data, data.test, batch_size=16))
    assert list(result) == ["fid_judge"] and result["fid_judge"] < 1e-2
    assert FID().extractor_name(EvalContext(Painter(), caption_data(), caption_data().test)) == "random"


def test_fid_judge_on_caption_data_and_unknown_features_are_clear_errors():
    data = caption_data()
    with pytest.raises(CvaekitError, match="needs labelled data"):
        FID(features="judge")(EvalContext(Painter(), data, data.test))
    with pytest.raises(RecipeError, match="'inception'"):
        FID(features="inceptoin")


def test_fid_inception_without_weights_offline_says_how_to_get_them(monkeypatch, tmp_path):
    import cvaekit.components.metrics.fid as fid_module

    monkeypatch.setattr(fid_module, "cached_inception_weights", lambda: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("no network")))
    data = caption_data()
    with pytest.raises(CvaekitError, match="inception_weights"), pytest.warns(fid_module.SmallSampleWarning):
        FID(features="inception")(EvalContext(Painter(), data, data.test))


def test_fid_with_inception_features_warns_below_2048_images(monkeypatch):
    """Its covariance is singular below the features' size: not comparable with published FIDs."""
    import cvaekit.components.metrics.fid as fid_module

    data = caption_data()
    original = FID._new_metric
    monkeypatch.setattr(FID, "_new_metric", lambda self, ctx, name: original(self, ctx, "random"))
    with pytest.warns(fid_module.SmallSampleWarning, match=rf"on {len(data.test)} images: below 2048"):
        FID(features="inception")(EvalContext(Painter(), data, data.test))
    with warnings.catch_warnings():
        warnings.simplefilter("error", fid_module.SmallSampleWarning)
        FID(features="random")(EvalContext(Painter(), data, data.test))  # other features: no warning


# ---------------------------------------------------------------------------- CLIP score

@pytest.fixture(scope="module")
def colour_clip(tiny_clip_path, tmp_path_factory):
    """The tiny CLIP after 50 contrastive steps on red and blue squares and their captions,
    saved to a folder: a fixed CLIP that has a real (if small) opinion about colour."""
    from transformers import CLIPModel, CLIPProcessor

    model, processor = CLIPModel.from_pretrained(tiny_clip_path), CLIPProcessor.from_pretrained(tiny_clip_path)
    images = torch.cat([squares("red", 8), squares("blue", 8)])
    pixels = processor(images=to_clip_pixels(images), return_tensors="pt")["pixel_values"]
    tokens = processor(text=["a red square", "a blue square"], return_tensors="pt", padding=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only contend
    try:
        torch.manual_seed(0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        for step in range(50):
            idx = torch.tensor([step % 8, 8 + step % 8])
            loss = model(pixel_values=pixels[idx], input_ids=tokens["input_ids"],
                         attention_mask=tokens["attention_mask"], return_loss=True).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    folder = tmp_path_factory.mktemp("colour-clip")
    model.eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


def test_caption_matched_images_score_above_mismatched(colour_clip):
    from transformers import CLIPModel, CLIPProcessor

    model, processor = CLIPModel.from_pretrained(colour_clip), CLIPProcessor.from_pretrained(colour_clip)
    images = torch.cat([squares("red", 4), squares("blue", 4)])
    texts = ["a red square"] * 4 + ["a blue square"] * 4
    matched = clip_cosines(model, processor, images, texts)
    mismatched = clip_cosines(model, processor, images, texts[4:] + texts[:4])
    assert (matched > mismatched).all()


def test_clip_score_metric_prefers_the_faithful_generator(colour_clip):
    data = caption_data()
    metric = CLIPScoreMetric(model=colour_clip)
    good = metric(EvalContext(Painter(), data, data.test, batch_size=8))
    bad = metric(EvalContext(Painter(swap=True), data, data.test, batch_size=8))
    assert set(good) == {"clip_cosine", "clip_score", "clip_cosine_real", "clip_cosine_shuffled"}
    assert good["clip_cosine"] > bad["clip_cosine"]
    assert good["clip_cosine_real"] > good["clip_cosine_shuffled"]  # the scale: ceiling above chance
    assert good["clip_cosine_real"] == bad["clip_cosine_real"]  # it does not depend on the model
    assert good["clip_score"] == pytest.approx(max(100 * good["clip_cosine"], 0))


def test_clip_score_on_labelled_data_uses_class_names_in_the_template(colour_clip):
    data = labelled_data(8)
    metric = CLIPScoreMetric(model=colour_clip)
    ctx = EvalContext(Painter(), data, data.test)
    assert metric.captions(ctx, torch.tensor([0, 1])) == ["a photo of a red square", "a photo of a blue square"]
    good, bad = metric(ctx), metric(EvalContext(Painter(swap=True), data, data.test))
    assert good["clip_cosine"] > bad["clip_cosine"]


def test_clip_score_matches_torchmetrics_clipscore(colour_clip):
    """The same number as torchmetrics' CLIPScore given the same CLIP (its feature calls
    adapted to transformers 5, where they return a ModelOutput)."""
    from torchmetrics.multimodal.clip_score import CLIPScore
    from transformers import CLIPModel, CLIPProcessor

    model, processor = CLIPModel.from_pretrained(colour_clip).eval(), CLIPProcessor.from_pretrained(colour_clip)

    class Tensors(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip, self.config = clip, clip.config

        def get_image_features(self, *a, **k):
            return self.clip.get_image_features(*a, **k).pooler_output

        def get_text_features(self, *a, **k):
            return self.clip.get_text_features(*a, **k).pooler_output

    images = torch.cat([squares("red", 3), squares("blue", 3)])
    texts = ["a red square", "a blue square", "a blue square", "a blue square", "a red square", "a blue square"]
    reference = CLIPScore(model_name_or_path=lambda: (Tensors(model), processor))
    reference.update(torch.stack(to_clip_pixels(images)), texts)
    ours = scores(clip_cosines(model, processor, images, texts))
    assert ours["clip_score"] == pytest.approx(reference.compute().item(), abs=1e-3)


def test_clip_score_uses_the_clip_that_the_clip_text_conditioner_loaded(colour_clip, registry, monkeypatch):
    import transformers

    from cvaekit.core.data import DataInfo

    cond = registry.build("conditioner", "clip_text", {"model": colour_clip}, data=DataInfo((3, 28, 28)))
    cond(["a red square"])
    monkeypatch.setattr(transformers.CLIPModel, "from_pretrained",
                        classmethod(lambda *a, **k: pytest.fail("CLIP loaded a second time")))
    data = caption_data()
    assert CLIPScoreMetric(model=colour_clip)(EvalContext(Painter(), data, data.test))["clip_cosine"] > 0


def test_clip_score_with_an_unloadable_model_is_a_clear_error(tmp_path):
    data = caption_data()
    with pytest.raises(CvaekitError, match="CLIP model folder '.*no-clip' does not exist"):
        CLIPScoreMetric(model=str(tmp_path / "no-clip"))(EvalContext(Painter(), data, data.test))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CvaekitError, match="'.*empty' cannot be loaded.*save_pretrained"):
        CLIPScoreMetric(model=str(tmp_path / "empty"))(EvalContext(Painter(), data, data.test))


# ---------------------------------------------------------------------------- recon

def test_recon_is_lower_after_some_training(registry, tiny_fashion):
    from cvaekit.components.metrics.likelihood import Reconstruction
    from cvaekit.assembly import build_model
    from cvaekit.recipe import load_recipe

    recipe = load_recipe(tiny_fashion, registry=registry)
    data = registry.build("dataset", "fashion_mnist", {})
    test = data.test.head(300)
    torch.manual_seed(0)
    model = build_model(recipe.model, data.info(), registry)
    before = run_metrics([Reconstruction()], EvalContext(model, data, test))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for idx in torch.arange(1024).split(64):
        loss = model.loss(*data.train.batch(idx))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = run_metrics([Reconstruction()], EvalContext(model, data, test))
    assert set(after) == {"recon_bce", "recon_mse"}
    assert after["recon_bce"] < before["recon_bce"] and after["recon_mse"] < before["recon_mse"]
    assert 0 < after["recon_mse"] < 0.25


def test_cond_accuracy_judges_the_samples_it_draws_per_class():
    from cvaekit.components.metrics.cond_accuracy import ConditionalAccuracy, accuracy

    data = labelled_data()
    metric = ConditionalAccuracy(per_class=5, judge_epochs=30)
    ctx = EvalContext(Painter(), data, data.test, batch_size=4)
    samples, labels = metric.samples(ctx)
    assert samples.shape == (10, 3, 28, 28) and labels.tolist() == [0] * 5 + [1] * 5
    assert torch.equal(samples[0], squares("red", 1)[0]) and torch.equal(samples[-1], squares("blue", 1)[0])
    judge = metric.judge(ctx)
    assert metric(ctx)["cond_accuracy"] == accuracy(judge, samples, labels) == 1.0
    assert metric(EvalContext(Painter(swap=True), data, data.test))["cond_accuracy"] == 0.0
    with pytest.raises(CvaekitError, match="needs labelled data"):
        metric.judge(EvalContext(Painter(), caption_data(), caption_data().test))


def test_cond_accuracy_judge_seed_picks_another_judge_and_each_is_cached():
    from cvaekit.caches.paths import cache_dir
    from cvaekit.components.metrics.cond_accuracy import ConditionalAccuracy
    from cvaekit.components.metrics.judge import _key

    data = labelled_data()
    ctx = EvalContext(Painter(), data, data.test, batch_size=4)
    first, again, other = (ConditionalAccuracy(per_class=2, judge_epochs=1, judge_seed=s).judge(ctx)
                           for s in (0, 0, 1))
    weight = lambda judge: judge.head[-1].weight
    assert torch.equal(weight(first), weight(again))
    assert not torch.equal(weight(first), weight(other))
    for seed in (0, 1):
        assert (cache_dir("judges") / f"{_key(data.train, 2, 1, seed)}.pt").is_file()
