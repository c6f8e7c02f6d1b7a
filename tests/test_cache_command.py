"""`cvaekit cache`: each cache under the root listed with what it holds and its size, and
`cvaekit cache clear` removing only the groups asked for, after asking, never anything outside
the root nor anything cvaekit did not make."""

from __future__ import annotations

import warnings

import pytest
from typer.testing import CliRunner

from cvaekit.caches.images import SkippedImagesWarning
from cvaekit.caches.paths import TAG, cache_dir
from cvaekit.cli import app
from cvaekit.components.datasets.image_folder import image_folder
from own_pictures import write_labelled_folder

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    """Tables one line per row, so that the tests read them."""
    from cvaekit import cli

    monkeypatch.setattr(cli.out, "width", 250)


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A cache root with one of each kind of cache, something of the user's, and a link out."""
    root = tmp_path / "cache"
    monkeypatch.setenv("CVAEKIT_CACHE", str(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)
        image_folder(str(write_labelled_folder(tmp_path / "pics", per_class=4)), image_size=8, progress=False)
    (cache_dir("embeddings", "all-MiniLM-L6-v2-0123456789ab") / "shard-1.pt").write_bytes(b"x" * 3000)
    (cache_dir("judges") / "125756ceb467b189.pt").write_bytes(b"j" * 2000)
    (cache_dir("data", "fashion-mnist") / "train-images").write_bytes(b"d" * 5000)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    (root / "data" / "linked").symlink_to(precious, target_is_directory=True)
    (root / "notes.txt").write_text("the user's own file")
    return root


def test_cache_lists_each_cache_with_what_it_holds_and_its_size(root):
    result = runner.invoke(app, ["cache"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"cvaekit's caches in {root}" in out
    assert out.count("images: image_folder/pics_") == 2  # the train and test splits
    assert "11 pictures, 3x8x8 (crop), from the image_folder data set" in out
    assert "text: embeddings/all-MiniLM-L6-v2-0123456789ab" in out and "captions encoded by all-MiniLM-L6-v2" in out
    assert "3.0 kB" in out and "judges: judges/125756ceb467b189.pt" in out and "2.0 kB" in out
    assert "data: data/fashion-mnist" in out and "5.0 kB" in out
    assert "data: data/linked" in out and "(clearing removes the link only)" in out
    assert "other: notes.txt" in out and "not made by cvaekit; left alone" in out
    assert "cvaekit cache clear --images | --text | --data | --judges | --all" in out
    assert runner.invoke(app, ["cache"]).exit_code == 0


def test_clear_asks_which_and_asks_first(root):
    none = runner.invoke(app, ["cache", "clear"])
    assert none.exit_code == 2 and "Say which caches to clear: --images" in none.output and "--all" in none.output
    declined = runner.invoke(app, ["cache", "clear", "--images"], input="n\n")
    assert declined.exit_code == 1 and "Nothing removed." in declined.output and "To remove from" in declined.output
    assert len(list((root / "image_folder").iterdir())) == 2
    accepted = runner.invoke(app, ["cache", "clear", "--images"], input="y\n")
    assert accepted.exit_code == 0 and "Removed 2 caches" in accepted.output
    assert not list((root / "image_folder").iterdir())
    assert (root / "embeddings").is_dir() and (root / "judges" / "125756ceb467b189.pt").is_file()
    again = runner.invoke(app, ["cache", "clear", "--images", "--yes"])
    assert again.exit_code == 0 and "nothing to clear" in again.output


def test_clear_all_removes_only_cvaekits_caches_inside_the_root(root, tmp_path):
    result = runner.invoke(app, ["cache", "clear", "--all", "--yes"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "precious" / "keep.txt").read_text() == "mine"  # a link is removed, never what it points to
    assert not (root / "data" / "linked").exists() and not (root / "data" / "fashion-mnist").exists()
    assert not list((root / "embeddings").iterdir()) and not list((root / "judges").iterdir())
    assert (root / "notes.txt").read_text() == "the user's own file" and (root / TAG).is_file()
    listed = runner.invoke(app, ["cache"])
    assert "other: notes.txt" in listed.output and "images:" not in listed.output


def test_a_root_cvaekit_did_not_mark_is_never_cleared(tmp_path, monkeypatch):
    foreign = tmp_path / "home"
    (foreign / "data" / "thesis").mkdir(parents=True)
    (foreign / "data" / "thesis" / "chapter1.tex").write_text("years of work")
    monkeypatch.setenv("CVAEKIT_CACHE", str(foreign))
    result = runner.invoke(app, ["cache", "clear", "--data", "--yes"])
    assert result.exit_code == 2 and "has no CACHEDIR.TAG written by cvaekit" in result.output
    assert (foreign / "data" / "thesis" / "chapter1.tex").read_text() == "years of work"
    monkeypatch.setenv("CVAEKIT_CACHE", str(tmp_path / "nothing-yet"))
    empty = runner.invoke(app, ["cache"])
    assert empty.exit_code == 0 and "No caches in" in empty.output
