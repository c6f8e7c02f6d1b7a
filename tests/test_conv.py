"""The conv encoder and transposed-conv decoder: stages follow the image size, outputs fit it."""

from __future__ import annotations

import pytest
import torch

from cvaekit.components.networks.conv import ConvEncoder, DeconvDecoder, stage_sizes
from cvaekit.core.condition import Condition
from cvaekit.errors import RecipeError
from cvaekit.assembly import InjectionPlan
from cvaekit.recipe import InjectionSpec


def plan(registry, specs=(), net="encoder", cond_dim=6):
    return InjectionPlan(list(specs), cond_dim, registry, net)


@pytest.mark.parametrize("size, channels, stages, final", [
    (28, 1, 2, 7), (32, 3, 3, 4), (64, 3, 4, 4), (128, 3, 5, 4), (224, 3, 5, 7)])
def test_encoder_and_decoder_shapes(registry, size, channels, stages, final):
    cond = Condition.of(torch.randn(2, 6))
    enc_plan, dec_plan = plan(registry), plan(registry, net="decoder")
    encoder = ConvEncoder(image_shape=(channels, size, size), cond_dim=6, latent_dim=10, injections=enc_plan)
    decoder = DeconvDecoder(image_shape=(channels, size, size), cond_dim=6, latent_dim=10,
                            injections=dec_plan, hidden=32)
    assert len(encoder.stages) == stages == len(decoder.stages)
    assert sorted(set(enc_plan.offered)) == list(range(stages + 1))  # input and after each stage
    assert sorted(set(dec_plan.offered)) == list(range(stages))  # not after the image layer
    mu, logvar = encoder(torch.rand(2, channels, size, size), cond)
    assert mu.shape == logvar.shape == (2, 10)
    width = [32, 64, 128, 256, 512][stages - 1]
    assert encoder.mu.in_features == width * final * final
    assert decoder(mu, cond).shape == (2, channels, size, size)


def test_study_encoder_ends_at_512_by_7_by_7(registry):
    encoder = ConvEncoder(image_shape=(3, 224, 224), cond_dim=6, latent_dim=128, injections=plan(registry))
    h = torch.rand(1, 3, 224, 224)
    for stage in encoder.stages:
        h = stage(h)
    assert h.shape == (1, 512, 7, 7)


def test_odd_sizes_come_back_exactly():
    assert stage_sizes(50, 30) == [(50, 30), (25, 15), (13, 8), (7, 4)]
    decoder = DeconvDecoder(image_shape=(3, 50, 30), cond_dim=4, latent_dim=5, hidden=16,
                            injections=InjectionPlan([], 4, None, "decoder"))
    assert decoder(torch.randn(2, 5), Condition.of(torch.randn(2, 4))).shape == (2, 3, 50, 30)


def test_injections_change_the_next_layer_width(registry):
    specs = [InjectionSpec("early_concat", {}, 0), InjectionSpec("mid", {"proj_dim": 3}, 1)]
    encoder = ConvEncoder(image_shape=(3, 32, 32), cond_dim=6, latent_dim=4, channels=[8, 16, 32],
                          injections=plan(registry, specs))
    assert encoder.stages[0][0].in_channels == 3 + 6
    assert encoder.stages[1][0].in_channels == 8 + 3
    mu, _ = encoder(torch.rand(2, 3, 32, 32), Condition.of(torch.randn(2, 6)))
    assert mu.shape == (2, 4)


def test_too_few_channels_is_a_clear_error(registry):
    with pytest.raises(RecipeError, match="needs 5 conv stages.*'channels' has only 3"):
        ConvEncoder(image_shape=(3, 224, 224), cond_dim=6, latent_dim=4, channels=[8, 16, 32],
                    injections=plan(registry))
