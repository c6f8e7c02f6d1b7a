"""A conditioner defined in this script, registered at run time (no package, no entry
point), checked against the contract, then named in a recipe and trained.

    python examples/register_at_runtime.py --epochs 1 --n-train 128
"""

from __future__ import annotations

import argparse
import re
import zlib

import torch
from torch import nn

from cvaekit import hookimpl
from cvaekit.errors import UnknownConditionError
from cvaekit.plugins import register_plugin
from cvaekit.recipe import load_recipe
from cvaekit.testing import check_component
from cvaekit.training import train


class HashedWords(nn.Module):
    """Each word hashed into one of `buckets` learned embeddings, averaged over the caption.

    buckets: how many embeddings the words are hashed into.
    dim: size of each embedding (the condition size D).
    """

    def __init__(self, *, data, buckets: int = 512, dim: int = 32):
        super().__init__()
        self.buckets, self.dim = buckets, dim
        self.embed = nn.EmbeddingBag(buckets, dim, mode="mean")

    def parse(self, texts: list[str]) -> list[str]:
        for text in texts:
            if not re.findall(r"\w+", text):
                raise UnknownConditionError(f"'hashed_words' needs at least one word, got {text!r}.")
        return list(texts)

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids, offsets = [], []
        for text in texts:
            offsets.append(len(ids))
            ids += [zlib.crc32(w.encode()) % self.buckets for w in re.findall(r"\w+", text.lower())]
        device = self.embed.weight.device
        return self.embed(torch.tensor(ids, device=device), torch.tensor(offsets, device=device))


class MyPlugin:
    """What an entry point would name; here it is handed to register_plugin directly."""

    @hookimpl
    def cvaekit_register(self, registry):
        registry.add("conditioner", "hashed_words", HashedWords)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--runs-dir", default="runs")
    args = parser.parse_args()

    register_plugin(MyPlugin(), name="examples")
    check_component("conditioner", "hashed_words")  # raises a ContractError naming what is wrong
    recipe = load_recipe({
        "name": "hashed_words_shapes",
        "runs_dir": args.runs_dir,
        "data": {"name": "shapes_captions", "n_train": args.n_train, "n_test": 64},
        "model": {"latent_dim": 8, "conditioner": {"name": "hashed_words", "dim": 32},
                  "encoder": {"name": "conv", "channels": [16, 32, 64]},
                  "decoder": {"name": "deconv", "channels": [16, 32, 64], "hidden": 256},
                  "injections": [{"name": "film", "at": 1, "net": "encoder"}]},
        "train": {"epochs": args.epochs, "batch_size": 64, "checkpoint_every": args.epochs},
        "eval": {"metrics": ["nelbo"], "limit": 64, "samples_per_condition": 4},
    })
    print(train(recipe, progress=False))


if __name__ == "__main__":
    main()
