"""The conditioner contract."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.data import DataInfo
from cvaekit.errors import CvaekitError
from cvaekit.plugins.registry import Registry
from cvaekit.testing.checker import (
    PROBE_CAPTIONS,
    PROBE_CLASSES,
    _Checker,
    _keeps_rng,
    _run,
    _to,
)
from cvaekit.testing.probes import probe_data_info


@_keeps_rng
def check_conditioner(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                      data: DataInfo | None = None, texts: list[str] | None = None,
                      unknown: str | None = "zqxj-not-a-word", registry: Registry | None = None,
                      seed: int = 0) -> nn.Module:
    """A conditioner: `dim`, `parse` (unknown words -> UnknownConditionError naming the word;
    a label conditioner must reject them; `unknown=None` skips this for a conditioner that
    accepts every text, such as `none`), forward -> [B, D] / [B, T, D] / Condition, no frozen
    weights in its state_dict, a state_dict round trip into an instance built without texts
    (as when a trained run is loaded), determinism and a device move."""
    c = _Checker("conditioner", name, params, registry)
    c.check_params()
    data = data or probe_data_info()
    texts = list(texts or data.classes or PROBE_CLASSES)
    m = c.module(seed, data=data)
    dim = _require_conditioner_interface(c, m)

    def run(mod: nn.Module, device: str = "cpu") -> Condition:
        return Condition.of(mod(_to(mod.parse(list(texts)), device)))

    raw, cond = _check_parse_and_output(c, m, run, texts, dim)
    if unknown is not None:
        _check_unknown_text_refused(c, m, unknown)
    if not isinstance(raw, torch.Tensor):  # a text conditioner: probe the token path too
        with _probing():
            _check_token_path(c, m, dim)
    _forbid_frozen_weights(c, m)
    # A trained run is rebuilt from DataInfo without texts, then loads the state_dict.
    c.round_trip(m, c.module(seed + 1, data=DataInfo.from_dict(data.to_dict())), run)
    c.same("determinism", "two instances built under the same seed give different outputs",
           cond, _run(c, "determinism", run, c.module(seed, data=data)))
    c.moves(m, run, cond)
    return m


def _require_conditioner_interface(c: _Checker, m: nn.Module) -> int:
    """Networks are sized from `dim` and texts reach forward only through `parse`, so both must exist."""
    dim = getattr(m, "dim", None)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
        c.fail("interface", f"attribute 'dim' must be a positive int (the condition size D), got {dim!r}")
    if not callable(getattr(m, "parse", None)):
        c.fail("interface", "it has no method parse(texts: list[str]) -> raw conditions")
    return dim


def _check_parse_and_output(c: _Checker, m: nn.Module, run: Callable[..., Condition], texts: list[str],
                            dim: int) -> tuple[Any, Condition]:
    """One raw condition per text, and a Condition whose vector, tokens and mask line up with the batch."""
    with c.point("parse"):
        raw = m.parse(list(texts))
        if len(raw) != len(texts):
            c.fail("parse", f"parse() of {len(texts)} texts returned {len(raw)} raw conditions")
    cond = _run(c, "output shape", run, m)
    b = len(texts)
    c.shape("the condition vector", cond.vector, (b, dim))
    if cond.tokens.dim() != 3 or cond.tokens.shape[0] != b or cond.tokens.shape[2] != dim:
        c.fail("output shape", f"the condition tokens have shape {tuple(cond.tokens.shape)}, expected ({b}, T, {dim})")
    if cond.mask is not None:
        c.shape("the condition mask", cond.mask, tuple(cond.tokens.shape[:2]))
    c.floating("the condition vector", cond.vector)
    c.floating("the condition tokens", cond.tokens)
    return raw, cond


@contextmanager
def _probing() -> Iterator[None]:
    """The checker's probe texts hold words no model has read: a warning naming them is the
    conditioner doing its job, not a finding, so it is not shown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _check_unknown_text_refused(c: _Checker, m: nn.Module, unknown: str) -> None:
    """A text the conditioner cannot take must fail with an error naming it, not be silently mapped."""
    try:
        with _probing():
            accepted = m.parse([unknown])
    except CvaekitError as exc:
        if unknown not in str(exc):
            c.fail("bad input", f"the error for the unknown text '{unknown}' does not name it: {exc}")
    except Exception as exc:  # noqa: BLE001
        c.fail("bad input", f"parse(['{unknown}']) raised {type(exc).__name__} ({exc}); a text it "
               f"cannot take must raise cvaekit.errors.UnknownConditionError naming the text")
    else:
        if isinstance(accepted, torch.Tensor):
            c.fail("bad input", f"parse(['{unknown}']) gave label ids {accepted.tolist()}: a label "
                   f"conditioner must raise UnknownConditionError for a word outside its labels")


def _forbid_frozen_weights(c: _Checker, m: nn.Module) -> None:
    """Frozen weights in the module tree would be saved in every checkpoint."""
    frozen = [n for n, p in m.named_parameters() if not p.requires_grad]
    if frozen:
        c.fail("no frozen weights", f"frozen parameters {frozen[:3]} are in the module tree, so every "
               f"checkpoint would carry them; keep a frozen pretrained encoder outside the module "
               f"(e.g. in a plain attribute holder) and cache its outputs")


def _check_token_path(c: _Checker, m: nn.Module, dim: int) -> None:
    """Multi-word texts of different lengths: a bool mask, True for real tokens, of the tokens'
    shape; padding that leaves an attending layer's output for a text unchanged; an empty text
    refused with a CvaekitError or given a finite condition."""
    short, long = "a circle", max(PROBE_CAPTIONS, key=len) + " and a tiny green triangle"
    alone = _run(c, "token path", lambda: Condition.of(m(m.parse([short]))))
    both = _run(c, "token path", lambda: Condition.of(m(m.parse([short, long]))))
    if both.mask is not None:
        if both.mask.dtype != torch.bool or tuple(both.mask.shape) != tuple(both.tokens.shape[:2]):
            c.fail("token path", f"the mask must be a bool tensor of shape [B, T] = "
                   f"{list(both.tokens.shape[:2])}, got {both.mask.dtype} {list(both.mask.shape)}")
        real = both.mask.sum(1).tolist()
        if min(real) < 1 or real[0] > real[1]:
            c.fail("token path", f"the mask marks {real[0]} real tokens for {short!r} and {real[1]} for a "
                   f"longer text: it must be True for real tokens and False for padding")
    attend = nn.MultiheadAttention(dim, 1, batch_first=True).eval()
    query = torch.randn(1, 2, dim, generator=torch.Generator().manual_seed(0))

    def attended(cond: Condition) -> torch.Tensor:
        pad = None if cond.mask is None else ~cond.mask.cpu()
        with torch.no_grad():
            return attend(query, cond.tokens.cpu().float(), cond.tokens.cpu().float(), key_padding_mask=pad)[0]

    c.same("token path", f"attending to the tokens of {short!r} gives another result when it is batched "
           f"with a longer text (padding must be masked out: mask False for padded tokens)",
           attended(alone), attended(both.index(torch.tensor([0]))), exact=False)
    try:
        empty = Condition.of(m(m.parse([""])))
    except CvaekitError:
        return  # refusing an empty text, with a message, is fine
    except Exception as exc:  # noqa: BLE001
        c.fail("token path", f"an empty text raised {type(exc).__name__} ({exc}); refuse it with "
               f"cvaekit.errors.UnknownConditionError or give it a condition")
    c.shape("the condition vector of an empty text", empty.vector, (1, dim))
    c.floating("the condition of an empty text", empty.vector)
