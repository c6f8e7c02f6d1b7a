"""What a prior reads of the condition: its vector, or its vector and its tokens.

A model whose decoder attends to the caption's words can leave its pooled vector short of what
a long caption says (a three-shape caption's third shape), so a prior of such a model does
better reading the words themselves.
"""

from __future__ import annotations

import torch
from torch import nn

from cvaekit.core.attention import attend
from cvaekit.core.condition import Condition


class TokenSummary(nn.Module):
    """The condition vector beside `queries` learned attention read-outs of the caption's tokens.

    A model whose decoder attends to the words can leave its pooled vector short of what a long
    caption says (a three-shape caption's third shape); the prior reads the words themselves."""

    def __init__(self, dim: int, queries: int, heads: int):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, dim) / dim ** 0.5)
        self.attend = nn.MultiheadAttention(dim, heads if dim % heads == 0 else 1, batch_first=True)
        self.out_dim = dim * (1 + queries)

    def forward(self, cond: Condition) -> torch.Tensor:
        tokens = cond.tokens.float()
        q = self.queries.expand(tokens.shape[0], -1, -1)
        pad = None if cond.mask is None else ~cond.mask.bool()
        read = attend(self.attend, q, tokens, pad)
        return torch.cat([cond.vector.float(), read.flatten(1)], dim=1)


def context_reader(kind: str, cond_dim: int, queries: int, heads: int) -> TokenSummary | None:
    """The reader for `context: tokens`, or None for `context: vector`."""
    return TokenSummary(cond_dim, queries, heads) if kind == "tokens" else None


def read_context(reader: TokenSummary | None, cond: Condition) -> torch.Tensor:
    return cond.vector.float() if reader is None else reader(cond)
