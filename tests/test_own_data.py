"""The data sets of a user's own pictures, on data the tests write: a labelled folder
(ImageFolder layout, one corrupt image), a captioned imagefolder (metadata.jsonl), CSV
metadata, a `datasets` data set saved with save_to_disk and as a local imagefolder, and a
fake torchvision MNIST root; the shared decode cache (reused, resumed, the same from a pool
of processes); clear errors that name the file and column."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cvaekit.caches import images as image_cache
from cvaekit.components.datasets.hf_dataset import hf_dataset
from cvaekit.components.datasets.image_captions import image_captions
from cvaekit.components.datasets.image_folder import image_folder
from cvaekit.components.datasets.torchvision_sets import torchvision_dataset
from cvaekit.errors import DataError, RecipeError
from cvaekit.caches.images import FileReader, IgnoredFilesWarning, SkippedImagesWarning, cached_images
from own_pictures import (COLOURS, captions_of, picture, write_caption_folder, write_hf_dataset,
                          write_labelled_folder, write_mnist_root)


def quiet(factory, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)
        return factory(*args, progress=False, **kwargs)


# ---------------------------------------------------------------------------- image_folder

def test_image_folder_classes_labels_and_the_corrupt_image(tmp_path):
    root = write_labelled_folder(tmp_path / "pics", per_class=6, corrupt=1)
    with pytest.warns(SkippedImagesWarning, match=r"Skipped 1 unreadable image.*broken0\.jpg"):
        data = image_folder(str(root), image_size=16, test_fraction=0.2, progress=False)
    assert data.classes == sorted(COLOURS)  # the folder names, as ImageFolder orders them
    assert len(data.train) + len(data.test) == 18  # 19 files, one unreadable
    assert data.train.images.shape[1:] == (3, 16, 16) and data.train.images.dtype == torch.uint8
    for split in (data.train, data.test):  # each image's colour is its folder's
        for image, label in zip(split.images.float(), split.conditions.tolist()):
            rgb = image.mean(dim=(1, 2))
            assert data.classes[label] == list(COLOURS)[int(rgb.argmax())]


def test_image_folder_split_is_fixed_by_seed_and_a_test_folder_wins(tmp_path):
    root = write_labelled_folder(tmp_path / "pics", per_class=10)
    a, b, c = (quiet(image_folder, str(root), image_size=8, test_fraction=0.2, seed=s) for s in (0, 0, 1))
    assert len(a.test) == 6 and torch.equal(a.test.images, b.test.images)
    assert not torch.equal(a.test.images, c.test.images)
    split = write_labelled_folder(tmp_path / "split", per_class=8, split=True)
    d = quiet(image_folder, str(split), image_size=8)
    assert (len(d.train), len(d.test)) == (24, 6)
    (split / "test" / "purple").mkdir()
    picture("red", 0).save(split / "test" / "purple" / "x.png")
    with pytest.raises(DataError, match=r"classes that .*train' lacks: purple"):
        quiet(image_folder, str(split), image_size=8)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match=r"'.*nowhere' \(data\.root\) does not exist.*root/<class>/<image>"):
        image_folder(str(tmp_path / "nowhere"))
    (tmp_path / "flat").mkdir()
    picture("red", 0).save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match=r"not a labelled image folder"):
        image_folder(str(tmp_path / "flat"))
    with pytest.raises(RecipeError, match="test_fraction"):
        image_folder(str(tmp_path / "flat"), test_fraction=1.5)


def test_files_that_are_not_pictures_are_named_not_dropped_silently(tmp_path):
    root = write_labelled_folder(tmp_path / "pics", per_class=4)
    (root / "red" / "notes.txt").write_text("shot on a phone")
    (root / "README.md").write_text("my pictures")  # outside any class folder
    (root / "blue" / ".DS_Store").write_bytes(b"\0")  # hidden: left out quietly
    with pytest.warns(IgnoredFilesWarning) as caught:
        data = image_folder(str(root), image_size=8, test_fraction=0.25, progress=False)
    (message,) = [str(w.message) for w in caught if w.category is IgnoredFilesWarning]
    assert message.startswith(f"Ignored 2 file(s) in '{root}' that are not pictures by their extension (.jpg .jpeg .png")
    assert message.endswith("or lie outside a class folder: README.md, red/notes.txt")
    assert len(data.train) + len(data.test) == 12 and data.classes == sorted(COLOURS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredFilesWarning)  # a clean folder says nothing
        quiet(image_folder, str(write_labelled_folder(tmp_path / "clean", per_class=4)), image_size=8)


# ---------------------------------------------------------------------------- image_captions

def test_image_captions_from_metadata_jsonl(tmp_path):
    root = write_caption_folder(tmp_path / "caps", n=20, corrupt=1)
    with pytest.warns(SkippedImagesWarning, match="broken0.jpg"):
        data = image_captions(str(root), image_size=16, test_fraction=0.25, progress=False)
    assert len(data.train) + len(data.test) == 20 and data.classes is None
    everything = data.train.conditions + data.test.conditions
    assert all(len(caps) == 3 for caps in everything)  # a list of captions per image
    assert captions_of("red", 0) in everything
    assert data.test.caption == "first" and data.info().texts
    images, texts = data.train.batch(torch.arange(4), caption="first")
    assert images.shape == (4, 3, 16, 16) and all(isinstance(t, str) for t in texts)


def test_a_missing_file_is_reported_as_missing_and_a_broken_one_as_unreadable(tmp_path):
    root = write_caption_folder(tmp_path / "caps", n=8, corrupt=1)
    with (root / "metadata.jsonl").open("a") as f:
        f.write(json.dumps({"file_name": "gone.jpg", "text": "a picture never copied"}) + "\n")
    expected = (r"Skipped 1 unreadable image\(s\) in '.*metadata\.jsonl': broken0\.jpg; and 1 missing image\(s\) "
                r"in '.*metadata\.jsonl', named but not found on disk: gone\.jpg$")
    with pytest.warns(SkippedImagesWarning, match=expected):
        data = image_captions(str(root), image_size=8, test_fraction=0.25, progress=False)
    assert len(data.train) + len(data.test) == 8
    with pytest.warns(SkippedImagesWarning, match=expected):  # the same from the cache
        image_captions(str(root), image_size=8, test_fraction=0.25, progress=False)
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    (nowhere / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f"{k}.jpg", "text": "x"}) + "\n"
                                                    for k in range(3)))
    with pytest.raises(DataError, match=r"No image in .* could be read \(2 listed\)\. Skipped 2 missing image\(s\)"):
        image_captions(str(nowhere), image_size=8, test_fraction=0.34, progress=False)


def test_csv_rows_of_one_image_are_its_captions_and_paths_are_relative_to_the_file(tmp_path):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    lines = ["image,caption"]
    for k in range(6):
        picture("blue", k).save(pictures / f"{k}.png")
        lines += [f"pictures/{k}.png,a blue one", f"pictures/{k}.png,\"blue, with a square\""]
    (tmp_path / "captions.csv").write_text("\n".join(lines) + "\n")
    data = quiet(image_captions, metadata=str(tmp_path / "captions.csv"), image_column="image",
                 caption_column="caption", image_size=8, test_fraction=0.5)
    assert len(data.train) == 3 and len(data.test) == 3
    assert data.train.conditions[0] == ["a blue one", "blue, with a square"]


def test_grey_and_padded(tmp_path):
    """A wide red picture, padded: black bars above and below, red across the middle."""
    root = tmp_path / "wide"
    root.mkdir()
    for k in range(4):
        Image.fromarray(np.full((20, 60, 3), (200, 0, 0), np.uint8)).save(root / f"{k}.png")
    (root / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f"{k}.png", "text": "red"}) + "\n"
                                                 for k in range(4)))
    padded = quiet(image_captions, str(root), image_size=30, fit="pad", test_fraction=0.25)
    img = padded.train.images[0].float()
    assert img[0, 15].mean() > 150 and img[:, :3].max() == 0 and img[:, -3:].max() == 0
    grey = quiet(image_captions, str(root), image_size=30, channels=1, test_fraction=0.25)
    assert grey.train.images.shape[1:] == (1, 30, 30)
    assert abs(grey.train.images.float().mean() - 0.299 * 200) < 3  # luma of the red, cropped full


def test_broken_metadata_and_missing_columns_are_named(tmp_path):
    root = write_caption_folder(tmp_path / "caps", n=4)
    meta = root / "metadata.jsonl"
    good = meta.read_text()
    meta.write_text(good + '{"file_name": "000.jpg", "text": \n')
    with pytest.raises(DataError, match=r"Line 5 of '.*metadata\.jsonl' is not JSON"):
        image_captions(str(root), progress=False)
    meta.write_text(good)
    with pytest.raises(DataError, match=r"'.*metadata\.jsonl' has no column 'caption' \(data\.caption_column\); "
                                        r"its columns: file_name, text"):
        image_captions(str(root), caption_column="caption", progress=False)
    meta.write_text("".join(json.dumps({"file_name": f"{k:03d}.jpg", "text": ""}) + "\n" for k in range(4)))
    with pytest.raises(DataError, match=r"caption column 'text' of '.*metadata\.jsonl' holds no text \(found e\.g\. ''\)"):
        image_captions(str(root), progress=False)
    meta.unlink()
    with pytest.raises(DataError, match=r"has no metadata\.jsonl or metadata\.csv"):
        image_captions(str(root), progress=False)
    with pytest.raises(RecipeError, match="needs 'data.root'"):
        image_captions()


# ---------------------------------------------------------------------------- hf_dataset

def test_hf_dataset_saved_to_disk_with_a_class_label(tmp_path):
    path = write_hf_dataset(tmp_path / "saved", n=12)
    data = quiet(hf_dataset, str(path), label_column="label", image_size=16)
    assert data.classes == list(COLOURS)  # the ClassLabel's names
    assert (len(data.train), len(data.test)) == (12, 3)  # its own test split
    assert data.train.conditions.tolist() == [k % 3 for k in range(12)]
    red = data.train.images[0].float().mean(dim=(1, 2))
    assert int(red.argmax()) == 0


def test_hf_dataset_captions_and_a_local_imagefolder(tmp_path):
    saved = write_hf_dataset(tmp_path / "saved", n=9, captions=True)
    data = quiet(hf_dataset, str(saved), caption_column="caption", image_size=8)
    assert data.classes is None and data.train.conditions[0] == [captions_of("red", 0)[0]]
    folder = write_caption_folder(tmp_path / "folder", n=10)  # loaded by load_dataset as an imagefolder
    local = quiet(hf_dataset, str(folder), caption_column="text", image_size=8, test_fraction=0.2)
    assert (len(local.train), len(local.test)) == (8, 2)
    assert sorted(map(tuple, local.train.conditions + local.test.conditions)) == sorted(
        tuple(captions_of(list(COLOURS)[k % 3], k)) for k in range(10))


def test_hf_dataset_errors_name_the_split_and_column(tmp_path):
    path = write_hf_dataset(tmp_path / "saved", n=6)
    with pytest.raises(DataError, match=r"no column 'picture' \(data\.image_column\).*Its columns: 'image', 'label'"):
        hf_dataset(str(path), image_column="picture", label_column="label", progress=False)
    with pytest.raises(DataError, match=r"no split 'validation' \(data\.test_split\).*'test', 'train'"):
        hf_dataset(str(path), test_split="validation", label_column="label", progress=False)
    with pytest.raises(RecipeError, match="exactly one of 'data.label_column'"):
        hf_dataset(str(path), progress=False)
    with pytest.raises(DataError, match=r"'nobody/nothing'.*could not be loaded"):
        hf_dataset("nobody/nothing", label_column="label", progress=False)


# ---------------------------------------------------------------------------- torchvision

def test_torchvision_set_by_name_from_a_local_root(tmp_path):
    root = write_mnist_root(tmp_path / "tv", n_train=20, n_test=10)
    data = quiet(torchvision_dataset, "MNIST", str(root))
    assert data.train.images.shape == (20, 1, 28, 28) and len(data.test) == 10  # its own size and colour
    assert data.classes[3] == "3 - three" and data.aliases["seven"] == "7 - seven"
    assert data.train.conditions.tolist() == [k % 10 for k in range(20)]
    bar = data.train.images[3, 0].float() / 255  # label 3: a bar 8 rows high
    assert bar[-8:, 8:20].min() == 1 and bar[:-8].max() == 0
    bigger = quiet(torchvision_dataset, "MNIST", str(root), image_size=32, channels=3)
    assert bigger.train.images.shape[1:] == (3, 32, 32)


def test_torchvision_errors_say_where_the_files_go(tmp_path):
    with pytest.raises(DataError, match=r"torchvision's KMNIST .*not found in '.*empty'.*"
                                        r"train-images-idx3-ubyte.*empty/KMNIST/raw.*'data\.download: true'"):
        torchvision_dataset("KMNIST", str(tmp_path / "empty"), progress=False)
    with pytest.raises(RecipeError, match=r"'MNSIT' is not one of torchvision's.*Did you mean 'MNIST'"):
        torchvision_dataset("MNSIT", str(tmp_path))


# ---------------------------------------------------------------------------- the shared cache

def test_a_second_load_decodes_nothing(tmp_path, monkeypatch):
    root = write_labelled_folder(tmp_path / "pics", per_class=4)
    first = quiet(image_folder, str(root), image_size=8)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached split must not be decoded again")

    monkeypatch.setattr(image_cache, "decode", no_decoding)
    again = quiet(image_folder, str(root), image_size=8)
    assert torch.equal(first.train.images, again.train.images)
    assert torch.equal(first.train.conditions, again.train.conditions)


def test_a_pool_of_processes_decodes_the_same_images(tmp_path, monkeypatch):
    monkeypatch.setattr(image_cache, "CHUNK", 4)
    files = [tmp_path / f"{k}.png" for k in range(40)]
    for k, f in enumerate(files):
        picture(list(COLOURS)[k % 3], k).save(f)
    files[7].write_bytes(b"broken")

    def load(workers):
        return cached_images("pool", f"w{workers}", ["pool", workers], lambda: (FileReader(files), list(range(40))),
                             size=12, progress=False, workers=workers)

    one, two = load(1), load(2)
    assert torch.equal(one.images, two.images) and one.images.shape == (39, 3, 12, 12)
    assert one.conditions == two.conditions == [k for k in range(40) if k != 7]
    assert one.skipped == two.skipped == ["7.png"]


def test_an_interrupted_decode_continues_where_it_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(image_cache, "SAVE_SECONDS", 0.0)  # record progress after every chunk
    monkeypatch.setattr(image_cache, "CHUNK", 2)
    files = [tmp_path / f"{k}.png" for k in range(10)]
    for k, f in enumerate(files):
        picture(list(COLOURS)[k % 3], k).save(f)
    opened = []

    class Flaky(FileReader):
        def open(self, i):
            if i == 6 and not opened.count("stop"):
                opened.append("stop")
                raise KeyboardInterrupt
            opened.append(i)
            return super().open(i)

    def load():
        return cached_images("resume", "r", ["resume"], lambda: (Flaky(files), list(range(10))),
                             size=8, progress=False, workers=1)

    with pytest.raises(KeyboardInterrupt):
        load()
    assert opened == [0, 1, 2, 3, 4, 5, "stop"]
    resumed = load()
    assert opened[7:] == [6, 7, 8, 9]  # nothing before the interruption decoded again
    fresh = cached_images("resume", "fresh", ["fresh"], lambda: (FileReader(files), list(range(10))),
                          size=8, progress=False, workers=1)
    assert torch.equal(resumed.images, fresh.images) and resumed.conditions == list(range(10))


# ---------------------------------------------------------------------------- figures

def test_the_reconstruction_figure_spreads_over_the_classes_and_captions(tmp_path):
    from cvaekit.evaluation.progress import ProgressFigures
    from cvaekit.recipe import load_recipe

    folder = write_labelled_folder(tmp_path / "pics", per_class=8, split=True)  # test/: sorted by class
    labelled = quiet(image_folder, str(folder), image_size=8)
    assert labelled.test.conditions[:6].tolist() == [0, 0, 1, 1, 2, 2]  # the first eight would be 3 of each
    recipe = load_recipe(str(Path(__file__).resolve().parents[1] / "recipes" / "own_labelled.yaml"),
                         [f"data.root={folder}"])
    figures = ProgressFigures(labelled, recipe)
    assert figures.real_raw.tolist() == [0, 1, 2, 0, 1, 2]  # every class, in turn
    captioned = quiet(image_captions, str(write_caption_folder(tmp_path / "caps", n=40)), image_size=8,
                      test_fraction=0.5)
    shown = ProgressFigures(captioned, recipe).real_raw
    assert len(shown) == 8 and set(shown) == {"a red picture", "a green picture", "a blue picture"}
    assert shown[0] == captioned.test.conditions[0][0]
    assert captioned.default_prompts() == shown  # the sample grid's captions: the same spread
