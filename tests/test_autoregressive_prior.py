"""Autoregressive priors over a latent map: each position sees only the positions before it,
sampling position by position draws what teacher forcing scores, positions drawn are no
longer independent, and a ladder with them trains with a falling loss."""

from __future__ import annotations

import json

import pytest
import torch
from test_hierarchy import LADDER

from cvaekit.core.autoregressive import AutoregressivePrior, MaskedConv2d
from cvaekit.core.condition import Condition
from cvaekit.core import hierarchy
from cvaekit.core.hierarchy import Group, GroupDraw
from cvaekit.training import train


def randomised(module: torch.nn.Module, std: float = 0.3) -> torch.nn.Module:
    """Weights as after training, not the zeros the prior's corrections start from."""
    torch.manual_seed(0)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=std)
    return module


@pytest.mark.parametrize("include_centre", [False, True])
def test_a_masked_convolution_sees_only_the_positions_before_its_own(include_centre):
    conv = MaskedConv2d(2, 3, 5, include_centre=include_centre)
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    conv(x)[0, :, 2, 3].sum().backward()
    seen = x.grad[0].abs().sum(0) > 0
    order = torch.arange(36).view(6, 6)
    here = order[2, 3]
    assert not seen[order > here].any()  # nothing after it, ever
    assert seen[2, 3].item() == include_centre
    assert seen[1, 1] and seen[2, 2]  # the positions before it, within the kernel


def test_sampling_position_by_position_draws_what_teacher_forcing_scores():
    prior = randomised(AutoregressivePrior(16, 4))
    h, mu, logvar = torch.randn(2, 16, 6, 6), torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6).clamp(max=1)
    eps = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        z = prior.sample(h, (mu, logvar), eps, max_logvar=2.0)
        shift, log_scale = prior(z, h)  # every position at once, from the z the sampler drew
    teacher_forced = mu + shift + eps * torch.exp(0.5 * (logvar + log_scale).clamp(-10, 2.0))
    assert torch.allclose(z, teacher_forced, atol=1e-4)


@pytest.mark.parametrize("autoregressive", [False, True])
def test_an_autoregressive_prior_draws_positions_that_depend_on_earlier_ones(autoregressive, monkeypatch):
    group = randomised(Group(8, 3, 2, autoregressive=autoregressive)).eval()
    cond = Condition(vector=torch.zeros(1, 2), tokens=torch.zeros(1, 1, 2))
    h = torch.randn(1, 8, 4, 4)
    first, second = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    second[..., 0, 0] = 3.0  # the same noise everywhere but at the first position

    def drawn(eps):
        monkeypatch.setattr(hierarchy, "noise", lambda *args: eps)
        with torch.no_grad():
            return group(h, cond, None, GroupDraw())[1].z

    a, b = drawn(first), drawn(second)
    assert not torch.equal(a[..., 0, 0], b[..., 0, 0])
    assert torch.equal(a[..., 3, 3], b[..., 3, 3]) != autoregressive


def test_a_ladder_with_autoregressive_priors_trains_with_a_falling_loss(tiny_fashion):
    tiny_fashion["model"] = {**LADDER, "decoder": {**LADDER["decoder"], "autoregressive_priors": True}}
    tiny_fashion["train"].update(epochs=3, limit=256)
    tiny_fashion["eval"].update(metrics=["nelbo"], limit=32)
    run = train(tiny_fashion, progress=False)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert losses[-1] < losses[0]
    assert (run / "samples").exists()


@pytest.mark.parametrize("levels, expected", [(0, [True] * 6), (1, [True, True, False, False, False, False]),
                                              (2, [True] * 4 + [False] * 2)])
def test_autoregressive_levels_gives_them_to_the_lowest_resolutions_only(levels, expected):
    from test_hierarchy import model

    built = model(levels=3, autoregressive_priors=True, autoregressive_levels=levels)
    assert [cell.autoregressive is not None for cell in built.decoder.cells] == expected
