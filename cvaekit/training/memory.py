"""The memory guard: will the model a recipe describes fit this machine, asked before allocating?

The networks (encoder, decoder, their injections, the prior) are built on PyTorch's `meta`
device, which records shapes without allocating, and one batch runs through them there to
measure the activations kept for the backward pass. A recipe whose widths ask for terabytes
then gets a RecipeError with the numbers and the keys behind them, not an allocator crash.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.data import DataInfo, RawConditions
from cvaekit.errors import ComponentError, CvaekitError, RecipeError
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import ComponentSpec, ModelConfig

# Bytes per parameter while training: the float32 weight, its gradient and Adam's two moments.
TRAINING_BYTES_PER_PARAMETER = 4 * 4


@dataclass
class MemoryEstimate:
    parameters: dict[str, int]  # by recipe key: model.conditioner, model.encoder, ...
    activations: int | None  # bytes one batch keeps for backward; None when it could not be measured
    batch_size: int

    @property
    def total_parameters(self) -> int:
        return sum(self.parameters.values())

    @property
    def bytes(self) -> int:
        return self.total_parameters * TRAINING_BYTES_PER_PARAMETER + (self.activations or 0)


def estimate(config: ModelConfig, data_info: DataInfo, conditioner: nn.Module, registry: Registry,
             raw: RawConditions, batch_size: int) -> MemoryEstimate | None:
    """Parameters by part and one batch's activations, or None when the networks cannot be
    built on the meta device (then the real build says what is wrong)."""
    from cvaekit.assembly import build_model

    try:
        with torch.device("meta"):
            model = build_model(config, data_info, registry, conditioner=conditioner)
    except ComponentError as exc:
        if isinstance(exc.__cause__, CvaekitError) or exc.__cause__ is None:
            raise  # a recipe mistake: the real build would say the same
        if config.prior is None:
            return None
        # a prior that cannot be built on meta (zuko's flows): estimate the networks without it
        return estimate(dataclasses.replace(config, prior=None), data_info, conditioner, registry, raw, batch_size)
    except CvaekitError:
        raise
    except Exception:  # noqa: BLE001 - a part that cannot be built without memory: no estimate
        return None
    parameters = {"model.conditioner": _count(conditioner)}
    for key in ("encoder", "decoder", "prior"):
        part = getattr(model, key)
        if part is not None:
            parameters[f"model.{key}"] = _count(part)
    return MemoryEstimate(parameters, _activations(model, data_info, conditioner, raw, batch_size), batch_size)


def _count(module: nn.Module) -> int:
    return sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())


def _activations(model: nn.Module, data_info: DataInfo, conditioner: nn.Module, raw: RawConditions,
                 batch_size: int) -> int | None:
    """Bytes of every layer output in one meta forward pass of the encoder and decoder."""
    total = 0

    def add(_module, _inputs, output):
        nonlocal total
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    leaves = [m for net in (model.encoder, model.decoder) for m in net.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(add) for m in leaves]
    try:
        with torch.no_grad():
            cond = Condition.of(conditioner(raw))
            n = cond.vector.shape[0]
            meta = Condition(cond.vector.float().to("meta"), cond.tokens.float().to("meta"),
                             None if cond.mask is None else cond.mask.to("meta"))
            x = torch.empty(n, *data_info.image_shape, device="meta")
            model.decode_mean(x, meta)
    except Exception:  # noqa: BLE001 - a network that cannot run on meta: parameters only
        return None
    finally:
        for h in hooks:
            h.remove()
    return total * batch_size // max(n, 1)


def available(device: torch.device) -> tuple[int, str]:
    """Bytes free for training on `device`, and how to name it in a message."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free, f"{device} has {_size(free)} free"
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        free = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return free, f"this machine has {_size(free)} of RAM available"


def check_fits(est: MemoryEstimate | None, config: ModelConfig, device: torch.device,
               free: tuple[int, str] | None = None) -> None:
    """Raise a RecipeError when `est` needs more than `device` has free."""
    if est is None:
        return
    free_bytes, where = free or available(device)
    if est.bytes <= free_bytes:
        return
    parts = sorted(est.parameters.items(), key=lambda kv: -kv[1])
    biggest = ", ".join(f"{key} {_spec_text(_spec(config, key))}: {n:,} parameters"
                        for key, n in parts if n)
    acts = ("" if est.activations is None else
            f" and one batch of {est.batch_size} ('train.batch_size') keeps about "
            f"{_size(est.activations)} of activations for the backward pass")
    raise RecipeError(
        f"The model does not fit: it has {est.total_parameters:,} parameters "
        f"({_size(est.total_parameters * TRAINING_BYTES_PER_PARAMETER)} for weights, gradients and "
        f"Adam's moments){acts}, {_size(est.bytes)} in all, but {where}. By part: {biggest}. "
        f"Lower the widths of the largest part, 'model.latent_dim' or 'train.batch_size'.")


def _spec(config: ModelConfig, key: str) -> ComponentSpec | None:
    return getattr(config, key.split(".", 1)[1], None)


def _spec_text(spec: ComponentSpec | None) -> str:
    """`'mlp' (hidden=1000000)`: the component and its numeric settings, which drive its size."""
    if spec is None:
        return ""
    sizes = [f"{k}={v}" for k, v in spec.params.items()
             if isinstance(v, (int, float, list)) and not isinstance(v, bool)]
    return f"'{spec.name}'" + (f" ({', '.join(sizes)})" if sizes else "")


def _size(n: float) -> str:
    """Bytes in decimal units: '1.08e+02 TB' rather than a 15-digit number."""
    units = ("B", "KB", "MB", "GB", "TB", "PB")
    i = 0
    while abs(n) >= 1000 and i < len(units) - 1:
        n, i = n / 1000, i + 1
    return f"{n:.3g} {units[i]}"
