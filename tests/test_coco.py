"""coco_captions: pycocotools over a COCO-format tree the test writes (one image corrupt),
subset fraction, crop and resize, the memory-mapped decode cache, clear errors, and the
study's three COCO recipes training a step on it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cvaekit.caches import images as image_cache
from cvaekit.components.datasets import coco
from cvaekit.components.datasets.coco import SkippedImagesWarning, coco_captions
from cvaekit.errors import DataError, RecipeError
from cvaekit.recipe import load_recipe
from tiny_coco import write_split, write_tiny_coco

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.fixture
def tree(tmp_path):
    return write_tiny_coco(tmp_path / "coco", n_train=12, n_val=4, corrupt=1)


def quiet_load(**params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)
        return coco_captions(progress=False, **params)


def test_loads_images_and_captions_and_skips_the_corrupt_one(tree):
    with pytest.warns(SkippedImagesWarning, match=r"Skipped 1 unreadable image.*000000000012\.jpg"):
        data = coco_captions(root=str(tree), image_size=16, progress=False)
    assert data.train.images.shape == (11, 3, 16, 16) and data.train.images.dtype == torch.uint8
    assert data.test.images.shape == (4, 3, 16, 16)
    assert len(data.train.conditions) == 11
    assert all(len(caps) == 5 for caps in data.train.conditions)
    assert data.train.conditions[0][0] == "a cat on a red background"  # stripped, in file order
    images, texts = data.train.batch(torch.arange(3), caption="first")
    assert images.shape == (3, 3, 16, 16) and 0 <= images.min() and images.max() <= 1
    assert texts == [caps[0] for caps in data.train.conditions[:3]]
    assert data.classes is None and data.info().texts  # captions feed the text conditioners


def test_centre_crop_and_resize(tmp_path):
    """A wide image with blue sides and a red centre square: the crop keeps only the red."""
    root = tmp_path / "coco"
    write_split(root, "train", 1)
    write_split(root, "val", 1, first_id=500)
    side = np.zeros((40, 100, 3), np.uint8)
    side[:] = (0, 0, 255)
    side[:, 30:70] = (255, 0, 0)
    Image.fromarray(side).save(root / "train2017" / "000000000001.jpg", quality=100)
    data = quiet_load(root=str(root), image_size=24)
    img = data.train.images[0].float()
    assert img.shape == (3, 24, 24)
    assert img[0].mean() > 200 and img[2].mean() < 40  # red everywhere, no blue margin left


def test_subset_is_a_fixed_fraction_chosen_by_seed(tmp_path):
    root = write_tiny_coco(tmp_path / "coco", n_train=40, n_val=2, corrupt=0)
    a = quiet_load(root=str(root), subset=0.25, image_size=8, seed=0)
    b = quiet_load(root=str(root), subset=0.25, image_size=8, seed=0)
    c = quiet_load(root=str(root), subset=0.25, image_size=8, seed=1)
    assert len(a.train) == 10 and len(a.test) == 2
    assert a.train.conditions == b.train.conditions
    assert a.train.conditions != c.train.conditions
    assert len(quiet_load(root=str(root), subset=1.0, image_size=8).train) == 40


def test_decoded_images_are_cached_memory_mapped_and_reused(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("CVAEKIT_CACHE", str(tmp_path / "cache"))
    first = quiet_load(root=str(tree), image_size=16)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached split must not be decoded again")

    monkeypatch.setattr(image_cache, "decode", no_decoding)
    monkeypatch.setattr(coco, "select_images", no_decoding)
    with pytest.warns(SkippedImagesWarning, match="Skipped 1"):  # still reported from the cache
        again = coco_captions(root=str(tree), image_size=16, progress=False)
    assert torch.equal(first.train.images, again.train.images)
    assert again.train.conditions == first.train.conditions
    folders = sorted((tmp_path / "cache" / "coco").iterdir())
    assert [f.name.split("-")[:2] for f in folders] == [["train2017", "16px"], ["val2017", "16px"]]
    assert sorted(p.name for p in folders[0].iterdir() if not p.name.startswith(".")) == ["images.u8", "meta.json"]
    assert (folders[0] / "images.u8").stat().st_size == 11 * 3 * 16 * 16


def test_a_different_size_or_subset_is_a_different_cache(tree):
    a = quiet_load(root=str(tree), image_size=16)
    b = quiet_load(root=str(tree), image_size=8)
    assert a.train.images.shape[-1] == 16 and b.train.images.shape[-1] == 8


def test_missing_folder_is_a_clear_error(tmp_path, tree):
    (tree / "val2017").rename(tmp_path / "elsewhere")
    with pytest.raises(DataError, match=r"test images .*val2017' does not exist.*cocodataset\.org"):
        coco_captions(root=str(tree), progress=False)
    with pytest.raises(RecipeError, match="needs 'data.root'"):
        coco_captions(progress=False)


def test_a_recipe_without_coco_on_disk_says_how_to_get_it_before_making_a_run(tmp_path, monkeypatch):
    from cvaekit.training import train

    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(RECIPES / "coco_midinject.yaml")
    with pytest.raises(DataError, match=r"COCO folder 'data/coco' \(data\.root\) does not exist.*cocodataset\.org"
                                        r".*--set data\.root="):
        train(recipe, progress=False)
    with pytest.raises(DataError, match=r"COCO folder '/nowhere/coco'"):
        train(load_recipe(RECIPES / "coco_midinject.yaml", ["data.root=/nowhere/coco"]), progress=False)
    assert not (tmp_path / "runs").exists()


def test_a_file_that_is_not_coco_captions_is_a_clear_error(tree):
    (tree / "annotations" / "captions_val2017.json").write_text(json.dumps({"images": "nope"}))
    with pytest.raises(DataError, match="not a COCO captions file"):
        quiet_load(root=str(tree), image_size=8)


def coco_overrides(tree: Path, clip: str, **extra: str) -> list[str]:
    sets = {"data.root": tree, "data.subset": 1.0, "data.image_size": 32, "data.progress": "false",
            "model.conditioner.model": clip, "model.latent_dim": 8,
            "train.epochs": 1, "train.batch_size": 4, "train.limit": 4, "train.checkpoint_every": 1,
            "eval.metrics": f"[nelbo, {{name: clip_score, model: '{clip}', n: 4}}]",
            "eval.limit": 4, "eval.samples_per_condition": 2, **extra}
    return [f"{k}={v}" for k, v in sets.items()]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["coco_early", "coco_midinject", "coco_attention"])
def test_coco_recipes_validate_and_train_a_step(recipe, tree, tiny_clip_path, tmp_path):
    from cvaekit.store.runs import RunDir
    from cvaekit.training import train

    spec = load_recipe(RECIPES / f"{recipe}.yaml", coco_overrides(tree, tiny_clip_path))
    assert spec.model.latent_dim == 8 and spec.data.params["subset"] == 1.0
    faithful = load_recipe(RECIPES / f"{recipe}.yaml", coco_overrides(tree, tiny_clip_path)[:1]).to_dict()
    assert faithful["data"]["image_size"] == 224 and faithful["data"]["subset"] == 0.1
    assert faithful["model"]["latent_dim"] == 128 and faithful["train"]["batch_size"] == 64
    assert faithful["train"]["lr"] == 1e-4 and faithful["train"]["epochs"] == 20
    assert faithful["model"]["conditioner"]["model"] == "openai/clip-vit-base-patch32"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)
        run = RunDir(train(spec, registry=None, progress=False))
    records = run.records()
    assert [r["step"] for r in records if r["kind"] == "train"] == [1]
    evals = [r for r in records if r["kind"] == "eval"]
    assert np.isfinite(evals[0]["nelbo"]) and "clip_cosine" in evals[0]
    assert run.samples(1).is_file()
