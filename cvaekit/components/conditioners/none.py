"""No condition: a plain (unconditional) VAE, to compare with unconditional peers like for like."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cvaekit.core.data import DataInfo


class NoCondition(nn.Module):
    """No condition at all: every image gets the same constant vector, so the model is a plain VAE.

    Any text (a class word, a caption, an empty string) is accepted and means nothing: samples
    come from the prior alone. The vector is one zero, so networks that read the condition
    build as usual and learn nothing from it."""

    dim = 1

    def __init__(self, *, data: DataInfo):
        super().__init__()
        self.register_buffer("zero", torch.zeros(1, 1), persistent=False)  # follows the model's device

    def parse(self, texts: list[str]) -> torch.Tensor:
        """Every text is accepted and stands for the one empty condition."""
        return torch.zeros(len(texts), dtype=torch.long)

    def forward(self, raw: Any) -> torch.Tensor:
        return self.zero.expand(len(raw), 1)
