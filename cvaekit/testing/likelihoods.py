"""The likelihood contract."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cvaekit.core.likelihood import CONTRACT
from cvaekit.plugins.registry import Registry
from cvaekit.testing.checker import _Checker, _keeps_rng, _run

VALUES = torch.arange(256, dtype=torch.float32) / 255  # every 8-bit value


@_keeps_rng
def check_likelihood(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                     image_shape: tuple[int, int, int] = (3, 4, 4), batch: int = 2,
                     registry: Registry | None = None, seed: int = 0) -> nn.Module:
    """A likelihood: `out_channels(C)` a positive int; `log_prob(x, out)` -> [B], finite,
    differentiable in the decoder's output, and normalised over the values of one pixel
    (the 256 8-bit values when `bits`, 0 and 1 otherwise); `sample` and `mean` -> images in
    [0, 1] of x's shape; state_dict round trip, determinism, device move."""
    c = _Checker("likelihood", name, params, registry)
    c.check_params()
    m = c.module(seed, image_shape=image_shape)
    missing = [f for f in ("out_channels", "log_prob", "sample", "mean") if not callable(getattr(m, f, None))]
    if missing or not isinstance(getattr(m, "bits", None), bool):
        c.fail("interface", f"it lacks {', '.join(missing) or 'a bool attribute bits'}: {CONTRACT}")
    channels = m.out_channels(image_shape[0])
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        c.fail("interface", f"out_channels({image_shape[0]}) must be a positive int, got {channels!r}")
    gen = torch.Generator().manual_seed(seed + 1)
    out = torch.randn(batch, channels, *image_shape[1:], generator=gen, requires_grad=True)
    x = (torch.randint(0, 256, (batch, *image_shape), generator=gen) / 255).float()
    if not m.bits:
        x = x.round()
    with c.point("log_prob"):
        logp = m.log_prob(x, out)
    c.shape("log_prob(x, out)", logp, (batch,))
    c.floating("log_prob(x, out)", logp)
    logp.sum().backward()
    if out.grad is None or not out.grad.any():
        c.fail("log_prob", "log_prob(x, out) gives no gradient to the decoder's output, so nothing trains")
    _check_normalised(c, m, image_shape[0], seed)
    for what in ("sample", "mean"):
        drawn = _run(c, what, m.sample, out.detach(), torch.Generator().manual_seed(seed)) if what == "sample" \
            else _run(c, what, m.mean, out.detach())
        c.shape(f"{what}(out)", drawn, tuple(x.shape))
        if drawn.min() < 0 or drawn.max() > 1:
            c.fail(what, f"{what}(out) must give pixel values in [0, 1], got {drawn.min():.3g} to {drawn.max():.3g}")
    c.same("sample", "two samples with generators of the same seed differ",
           m.sample(out.detach(), torch.Generator().manual_seed(seed)), m.sample(out.detach(), torch.Generator().manual_seed(seed)))

    def run(mod: nn.Module, device: str = "cpu") -> torch.Tensor:
        torch.manual_seed(seed)  # a dequantising likelihood draws noise in log_prob
        return mod.log_prob(x.to(device), out.detach().to(device))

    c.round_trip(m, c.module(seed + 1, image_shape=image_shape), run)
    c.moves(m, run, run(m))
    return m


def _check_normalised(c: _Checker, m: nn.Module, channels: int, seed: int) -> None:
    """exp(log_prob) sums to 1 over every value one pixel can take, for a few decoder outputs:
    the 256 8-bit values (or 0 and 1 when not `bits`), of one channel, and of two at once
    (65,536 pairs) when the images have more, so a coupling between channels is checked too."""
    levels = VALUES if m.bits else torch.tensor([0.0, 1.0])
    free = min(channels, 2)
    x = torch.tensor(list(itertools.product(levels.tolist(), repeat=free))).view(-1, free, 1, 1)
    pixel = c.module(seed, image_shape=(free, 1, 1))
    for k in range(3):
        out = torch.randn(1, pixel.out_channels(free), 1, 1, generator=torch.Generator().manual_seed(seed + k))
        with c.point("normalised"):
            total = pixel.log_prob(x, out.expand(len(x), -1, -1, -1)).double().exp().sum().item()
        if not abs(total - 1) < 0.01:
            c.fail("normalised", f"exp(log_prob) over every value of one {free}-channel pixel sums to {total:.4f}, "
                                 f"not 1 (log_prob must be a log-probability of the values, in nats)")
