"""The resize-then-convolve decoder leaves no checkerboard where the transposed convolution
does, and decodes to the encoder's sizes, odd ones included."""

from __future__ import annotations

import pytest
import torch

from cvaekit.components.networks.conv import DeconvDecoder
from cvaekit.components.networks.upsample import UpsampleDecoder
from cvaekit.core.condition import Condition
from cvaekit.evaluation.spectra import period_two_share
from cvaekit.testing import check_component


class NoInjections:
    def at(self, stage, channels):
        from cvaekit.core.model import InjectionStack

        return InjectionStack([], channels)


@pytest.mark.parametrize("decoder, checkerboard", [(DeconvDecoder, True), (UpsampleDecoder, False)])
def test_a_constant_grid_decodes_with_or_without_a_checkerboard(decoder, checkerboard):
    torch.manual_seed(0)
    net = decoder(image_shape=(1, 32, 32), cond_dim=1, latent_dim=2, injections=NoInjections(),
                  channels=[8, 8, 8], hidden=16, final_side=4)
    h = torch.ones(1, *net.grid)
    with torch.no_grad():
        for stage in net.stages:
            h = stage(h)
    energy = period_two_share(h, border=4)  # the borders' padding is not the decoder's pattern
    assert (energy > 0.05) if checkerboard else (energy < 1e-6), energy


@pytest.mark.parametrize("side", [28, 32, 33])
def test_the_upsample_decoder_lands_on_the_image_size(side):
    net = UpsampleDecoder(image_shape=(3, side, side), cond_dim=4, latent_dim=2, injections=NoInjections(),
                          channels=[8, 8, 8], hidden=16)
    out = net(torch.zeros(2, 2), Condition.of(torch.zeros(2, 4)))
    assert out.shape == (2, 3, side, side)


def test_the_upsample_decoder_keeps_the_decoder_contract():
    check_component("decoder", "upsample", {"channels": [8, 16, 16], "hidden": 32}, image_shape=(3, 32, 32))
