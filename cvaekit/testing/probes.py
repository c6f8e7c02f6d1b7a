"""Small stand-ins the checks build with: probe data, a probe model, the probe injection."""

from __future__ import annotations

import math
import zlib
from typing import Any, Literal

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.data import DataInfo, DataSource, Split
from cvaekit.core.model import CVAE
from cvaekit.testing.checker import PROBE_CAPTIONS, PROBE_CLASSES


def probe_data_info(image_shape: tuple[int, int, int] = (3, 32, 32)) -> DataInfo:
    """What a conditioner is built from in the checks: class names (with an alias) and captions,
    so label and caption conditioners both build."""
    return DataInfo(tuple(image_shape), list(PROBE_CLASSES), {"ring": "circle"},
                    PROBE_CAPTIONS + PROBE_CLASSES)


class _WidenProbe(nn.Module):
    """The injection placed at every stage a network offers: it adds two channels, so a
    network that ignores `InjectionStack.out_channels` fails at its next layer."""

    def __init__(self, *, cond_dim: int, channels: int):
        super().__init__()
        self.out_channels = channels + 2

    def forward(self, h: torch.Tensor, cond: Condition) -> torch.Tensor:
        extra = cond.vector[:, :2].reshape(h.shape[0], 2, *([1] * (h.dim() - 2)))
        return torch.cat([h, extra.expand(-1, -1, *h.shape[2:]).to(h.dtype)], dim=1)


class _ProbeConditioner(nn.Module):
    """Label ids -> one-hot, captions -> hashed bag of words: enough to make a probe model."""

    def __init__(self, n_classes: int, dim: int = 16):
        super().__init__()
        self.n_classes, self.dim = n_classes, dim

    def parse(self, texts: list[str]) -> list[str]:
        return list(texts)

    def forward(self, raw: Any) -> torch.Tensor:
        if isinstance(raw, torch.Tensor):
            return nn.functional.one_hot(raw.long().cpu(), self.dim).float()
        out = torch.zeros(len(raw), self.dim)
        for i, text in enumerate(raw):
            for word in text.lower().split():
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        return out


class _ProbeEncoder(nn.Module):
    def __init__(self, image_shape, cond_dim, latent_dim):
        super().__init__()
        self.net = nn.Linear(math.prod(image_shape) + cond_dim, 2 * latent_dim)

    def forward(self, x, cond):
        return self.net(torch.cat([x.flatten(1), cond.vector], 1)).chunk(2, dim=1)


class _ProbeDecoder(nn.Module):
    def __init__(self, image_shape, cond_dim, latent_dim):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.net = nn.Linear(latent_dim + cond_dim, math.prod(image_shape))

    def forward(self, z, cond):
        return self.net(torch.cat([z, cond.vector], 1)).view(-1, *self.image_shape)


def probe_data_source(kind: Literal["labels", "captions"] = "labels", n_train: int = 48, n_test: int = 12,
                      image_shape: tuple[int, int, int] = (3, 32, 32), seed: int = 0) -> DataSource:
    """A small synthetic data set: each class is a bright square at its own place."""
    gen = torch.Generator().manual_seed(seed)
    ch, hgt, wid = image_shape
    size = hgt // 2

    def split(n: int) -> Split:
        labels = torch.arange(n) % len(PROBE_CLASSES)
        images = (torch.rand(n, ch, hgt, wid, generator=gen) * 40).to(torch.uint8)
        for i, k in enumerate(labels.tolist()):
            top, left = (k % 2) * (hgt - size), (k // 2) * (wid - size)
            images[i, :, top:top + size, left:left + size] = 255
        if kind == "labels":
            return Split(images, labels)
        return Split(images, [[f"a {PROBE_CLASSES[k]}", f"one white {PROBE_CLASSES[k]}"] for k in labels.tolist()])

    classes = list(PROBE_CLASSES) if kind == "labels" else None
    return DataSource(split(n_train), split(n_test), classes=classes)


def _probe_model(data: DataSource, latent_dim: int = 4) -> CVAE:
    info = data.info()
    cond = _ProbeConditioner(len(data.classes or PROBE_CLASSES))
    return CVAE(cond, _ProbeEncoder(info.image_shape, cond.dim, latent_dim),
                _ProbeDecoder(info.image_shape, cond.dim, latent_dim), latent_dim, info).eval()


def probe_model(cond_dim: int, latent_dim: int, image_shape: tuple[int, int, int] = (1, 8, 8)) -> CVAE:
    """A small CVAE of the given sizes (linear encoder and decoder on 8x8 images): what a prior
    with `attach(model)` is attached to in `check_prior`."""
    info = probe_data_info(image_shape)
    cond = _ProbeConditioner(len(PROBE_CLASSES), dim=cond_dim)
    return CVAE(cond, _ProbeEncoder(image_shape, cond_dim, latent_dim),
                _ProbeDecoder(image_shape, cond_dim, latent_dim), latent_dim, info).eval()
