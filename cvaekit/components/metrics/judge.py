"""The judge: a classifier of a labelled data set's classes, used to judge generated images.

It is a small CNN trained once per data set on its real training split and cached,
so every run and checkpoint is judged by the same classifier."""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import nn

from cvaekit.caches.judges import cached_judge_module
from cvaekit.core.data import Split

JUDGE_VERSION = 2


class Judge(nn.Module):
    """Two conv blocks and a small head; works for any image size and channel count."""

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(7), nn.Flatten(),
            nn.Linear(64 * 49, 128), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(128, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _key(split: Split, n_classes: int, epochs: int, seed: int) -> str:
    digest = hashlib.sha1(split.images.numpy().tobytes())
    digest.update(split.conditions.numpy().tobytes())
    digest.update(f"{n_classes}-{epochs}-{seed}-{JUDGE_VERSION}".encode())
    return digest.hexdigest()[:16]


def fit_judge(train: Split, n_classes: int, epochs: int = 2, seed: int = 0,
              batch_size: int = 128) -> Judge:
    """Train the judge on real labelled images (seconds to a minute on a CPU)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        judge = Judge(train.images.shape[1], n_classes)
        opt = torch.optim.Adam(judge.parameters(), lr=1e-3)
        judge.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(train), generator=gen).split(batch_size):
                images, labels = train.batch(idx)
                loss = F.cross_entropy(judge(images), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return judge.eval()


def cached_judge(train: Split, n_classes: int, epochs: int = 2, seed: int = 0) -> Judge:
    """The judge for this training split, trained on first use and loaded after."""
    return cached_judge_module(_key(train, n_classes, epochs, seed), lambda: Judge(train.images.shape[1], n_classes),
                               lambda: fit_judge(train, n_classes, epochs, seed))


@torch.no_grad()
def predictions(judge: Judge, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The judge's class for each image."""
    return torch.cat([judge(images[i:i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])


def accuracy(judge: Judge, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    return (predictions(judge, images, batch_size) == labels).sum().item() / len(images)
