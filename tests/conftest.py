"""Shared fixtures. Every test gets its own cvaekit cache under a session temp folder (so
judges and embeddings are cached across tests but never touch ~/.cache), runs write into
the test's temp folder, and the Hugging Face hub is offline."""

from __future__ import annotations

import pytest

from cvaekit.plugins import load_registry, reset_registry


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("cvaekit-cache")


@pytest.fixture(autouse=True)
def isolated(cache_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CVAEKIT_CACHE", str(cache_root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no test may reach a model hub
    monkeypatch.chdir(tmp_path)
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def registry():
    """A registry freshly loaded from the installed entry points."""
    return load_registry()


def fashion_recipe(tmp_path, **train) -> dict:
    """A small Fashion-MNIST recipe: the study's MLP on 2,000 images, judged on 500."""
    return {
        "name": "tiny_fashion",
        "seed": 0,
        "runs_dir": str(tmp_path / "runs"),
        "data": {"name": "fashion_mnist"},
        "model": {"latent_dim": 8, "conditioner": "onehot",
                  "encoder": {"name": "mlp", "hidden": 64}, "decoder": {"name": "mlp", "hidden": 64}},
        "train": {"epochs": 2, "batch_size": 64, "lr": 1e-3, "checkpoint_every": 1, "limit": 2000, **train},
        "eval": {"metrics": ["nelbo"], "limit": 500, "samples_per_condition": 4},
    }


@pytest.fixture
def tiny_fashion(tmp_path):
    return fashion_recipe(tmp_path)


@pytest.fixture(scope="session")
def tiny_clip_path(tmp_path_factory):
    """A tiny, seeded CLIP (model, tokenizer, image processor) saved in a temp folder,
    loadable by path like `openai/clip-vit-base-patch32` but with no download."""
    from tiny_clip import build_tiny_clip

    return str(build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"), seed=0))
