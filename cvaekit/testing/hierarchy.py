"""The contract of hierarchical (top-down) networks: an encoder that gives feature maps, and a
`TopDownDecoder` that holds its latent groups (core/hierarchy.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cvaekit.core.hierarchy import GroupDraw, TopDownDecoder
from cvaekit.testing.checker import _Checker, _cond_to, _probe_condition, _run


def is_top_down_network(m: nn.Module) -> bool:
    return isinstance(m, TopDownDecoder) or bool(getattr(m, "top_down", False))


def check_top_down(c: _Checker, kind: str, m: nn.Module, build: Callable[[int], nn.Module],
                   image_shape: tuple[int, int, int], cond_dim: int, batch: int, seed: int) -> nn.Module:
    """An encoder: forward(x, cond) -> a list of feature maps [B, C, h, w]. A decoder: top_down
    on the prior path -> [B, C, H, W] and one term per group, the same for the same seed,
    temperature 0 the same whatever the seed; a state_dict round trip, determinism, device move."""
    cond = _probe_condition(batch, cond_dim, seed=seed + 3)
    x = torch.rand(batch, *image_shape, generator=torch.Generator().manual_seed(seed + 2))

    def run(mod: nn.Module, device: str = "cpu", temperature: float = 1.0, draw_seed: int = seed) -> Any:
        if kind == "encoder":
            return mod(x.to(device), _cond_to(cond, device))
        draws = [GroupDraw(temperature, torch.Generator().manual_seed(draw_seed))] * len(mod.group_shapes)
        return mod.top_down(_cond_to(cond, device), None, draws)[0]

    out = _run(c, "output shape", run, m)
    if kind == "encoder":
        if not isinstance(out, (list, tuple)) or not all(isinstance(t, torch.Tensor) and t.dim() == 4 for t in out):
            c.fail("output shape", f"a top-down encoder's forward(x, cond) must return a list of feature maps "
                                   f"[B, C, h, w], got {type(out).__name__}")
        for t in out:
            c.floating("a feature map", t)
    else:
        c.shape("top_down(cond) on the prior path", out, (batch, *image_shape))
        _, terms = _run(c, "group shapes", lambda mod: mod.top_down(cond, None, [GroupDraw()] * len(mod.group_shapes)), m)
        if [tuple(t.z.shape[1:]) for t in terms] != [tuple(s) for s in m.group_shapes]:
            c.fail("group shapes", f"group_shapes says {list(m.group_shapes)} but the groups' z are "
                                   f"{[tuple(t.z.shape[1:]) for t in terms]}")
        c.floating("top_down(cond)", out)
        c.same("temperature 0", "two draws at temperature 0 with different seeds differ",
               _run(c, "temperature 0", run, m, "cpu", 0.0, seed), _run(c, "temperature 0", run, m, "cpu", 0.0, seed + 9))
    c.round_trip(m, build(seed + 1), run)
    c.same("determinism", "two instances built under the same seed give different outputs",
           out, _run(c, "determinism", run, build(seed)))
    c.moves(m, run, out)
    return m
