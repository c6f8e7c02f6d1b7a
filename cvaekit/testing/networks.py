"""The encoder and decoder contracts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cvaekit.assembly import InjectionPlan
from cvaekit.core.condition import Condition
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import InjectionSpec
from cvaekit.testing.checker import (
    PROBE_INJECTION,
    ContractError,
    _Checker,
    _cond_to,
    _keeps_rng,
    _probe_condition,
    _run,
    _tensors,
)
from cvaekit.testing.hierarchy import check_top_down, is_top_down_network
from cvaekit.testing.probes import _WidenProbe


@_keeps_rng
def check_encoder(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                  image_shape: tuple[int, int, int] = (3, 32, 32), cond_dim: int = 8,
                  latent_dim: int = 4, batch: int = 2, registry: Registry | None = None,
                  seed: int = 0) -> nn.Module:
    """An encoder: forward(x, cond) -> (mu, logvar), each [B, latent_dim]; offers injections
    and uses their out_channels; images with a wrong channel count must raise."""
    return _check_network("encoder", name, params, image_shape, cond_dim, latent_dim, batch, registry, seed)


@_keeps_rng
def check_decoder(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                  image_shape: tuple[int, int, int] = (3, 32, 32), cond_dim: int = 8,
                  latent_dim: int = 4, batch: int = 2, registry: Registry | None = None,
                  seed: int = 0) -> nn.Module:
    """A decoder: forward(z, cond) -> logits [B, C, H, W]; offers injections and uses their
    out_channels; a latent of the wrong size must raise."""
    return _check_network("decoder", name, params, image_shape, cond_dim, latent_dim, batch, registry, seed)


def _check_network(kind, name, params, image_shape, cond_dim, latent_dim, batch, registry, seed) -> nn.Module:
    """Encoders and decoders share one contract; `kind` says which input the network is given."""
    c = _Checker(kind, name, params, registry)
    c.check_params()
    image_shape = tuple(image_shape)

    def build(specs: list[InjectionSpec], s: int = seed) -> tuple[nn.Module, InjectionPlan]:
        plan = InjectionPlan(specs, cond_dim, c.registry, kind)
        net = c.module(s, image_shape=image_shape, cond_dim=cond_dim, latent_dim=latent_dim, injections=plan)
        return net, plan

    m, plan = build([])
    if is_top_down_network(m):
        return check_top_down(c, kind, m, lambda s: build([], s)[0], image_shape, cond_dim, batch, seed)
    gen = torch.Generator().manual_seed(seed + 2)
    x = torch.rand(batch, *image_shape, generator=gen)
    z = torch.randn(batch, latent_dim, generator=gen)
    cond = _probe_condition(batch, cond_dim, seed=seed + 3)
    given = x if kind == "encoder" else z

    def run(mod: nn.Module, device: str = "cpu") -> Any:
        return mod(given.to(device), _cond_to(cond, device))

    out = _run(c, "output shape", run, m)
    _check_output_and_bad_input(c, kind, m, out, cond, batch, image_shape, latent_dim)
    _check_injections_used(c, kind, plan, run, out, image_shape, cond_dim, latent_dim, seed)

    c.round_trip(m, build([], seed + 1)[0], run)
    c.same("determinism", "two instances built under the same seed give different outputs",
           out, _run(c, "determinism", run, build([])[0]))
    c.moves(m, run, out)
    return m


def _check_output_and_bad_input(c: _Checker, kind: str, m: nn.Module, out: Any, cond: Condition, batch: int,
                                image_shape: tuple[int, ...], latent_dim: int) -> None:
    """The output must have the contract's shape and dtype, and input of the wrong size must raise
    here rather than fail obscurely deep inside training."""
    if kind == "encoder":
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            c.fail("output shape", f"forward(x, cond) must return (mu, logvar), got {type(out).__name__}")
        for what, t in zip(("mu", "logvar"), out):
            c.shape(what, t, (batch, latent_dim))
            c.floating(what, t, torch.float32)
        bad, what = torch.rand(batch, image_shape[0] + 1, *image_shape[1:]), "images"
    else:
        c.shape("forward(z, cond) logits", out, (batch, *image_shape))
        c.floating("forward(z, cond) logits", out, torch.float32)
        bad, what = torch.randn(batch, latent_dim + 1), "a latent"
    c.rejects(f"{what} of shape {tuple(bad.shape)} (built for {image_shape if kind == 'encoder' else latent_dim})",
              lambda: m(bad, cond))


def _check_injections_used(c: _Checker, kind: str, plan: InjectionPlan, run: Callable[..., Any], out: Any,
                           image_shape: tuple[int, ...], cond_dim: int, latent_dim: int, seed: int) -> None:
    """Every offered stage must build its next layer for the stack's out_channels, or a recipe
    that injects there would break; a probe that widens by 2 channels shows whether it does."""
    if not plan.offered:
        c.fail("injections", "it never calls injections.at(stage, channels); a network must offer at "
               "least stage 0 (its input) and use the returned stack's out_channels")
    probes = _registry_with_widen_probe(c.registry)
    for stage in sorted(set(plan.offered)):
        spec = InjectionSpec(PROBE_INJECTION, {}, at=stage, net=kind)
        probe_plan = InjectionPlan([spec], cond_dim, probes, kind)
        with c.point("injections"):
            torch.manual_seed(seed)
            net = c.registry.build(kind, c.name, c.params, image_shape=image_shape, cond_dim=cond_dim,
                                   latent_dim=latent_dim, injections=probe_plan).eval()
        try:
            probed = _run(c, "injections", run, net)
        except ContractError as exc:
            c.fail("injections", f"with an injection at stage {stage} that adds 2 channels, forward "
                   f"{exc.detail}; a network must build the layer after each stage for the returned "
                   f"stack's out_channels")
        for t, ref in zip(_tensors(probed), _tensors(out)):
            if t.shape != ref.shape:
                c.fail("injections", f"with an injection at stage {stage} the output shape changed "
                       f"to {tuple(t.shape)}")


def _registry_with_widen_probe(registry: Registry) -> Registry:
    """A copy of the registry whose probe injection is the widening one, leaving the caller's untouched."""
    probes = Registry(dict(registry.components))
    probes.components.pop(("injection", PROBE_INJECTION), None)
    probes.add("injection", PROBE_INJECTION, _WidenProbe, origin="cvaekit.testing")
    return probes
