"""Contract checks for components, to call from a plugin's own tests.

    from cvaekit.testing import check_component

    def test_my_conditioner():
        check_component("conditioner", "char_ngram", {"n": [2, 3]})

A check builds the component through the registry exactly as the engine does, feeds it a
small batch and checks what the engine relies on: the interface, output shapes and dtypes,
a device move, a state_dict round trip, determinism under a seed, and a clear error for
bad input. The first broken point raises a `ContractError` that names the component and
the point, so a failing test says what to fix.
"""

from __future__ import annotations

import functools
import inspect
import math
import zlib
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import nn

from .condition import Condition
from .data import DataInfo, DataSource, Split
from .errors import CvaekitError, RecipeError
from .evaluation import EvalContext, run_metrics
from .model import CVAE, InjectionPlan
from .recipe import InjectionSpec, _check, _resolve_annotation
from .registry import KINDS, Registry

__all__ = ["ContractError", "check_component", "check_conditioner", "check_injection",
           "check_encoder", "check_decoder", "check_prior", "check_dataset", "check_metric",
           "probe_data_info", "probe_data_source", "devices"]

PROBE_CLASSES = ["circle", "square", "triangle"]
PROBE_CAPTIONS = ["a red circle", "a small blue square", "a green triangle on the left",
                  "two yellow circles", "a square above a circle"]
PROBE_INJECTION = "cvaekit_testing_widen"  # the probe injection placed in networks under test


class ContractError(AssertionError):
    """A component breaks a point of its kind's contract; the message says which and why."""

    def __init__(self, kind: str, name: str, point: str, detail: str):
        self.kind, self.name, self.point, self.detail = kind, name, point, detail
        super().__init__(f"{kind} '{name}' breaks the contract point '{point}': {detail}")


def devices() -> list[str]:
    """The devices a check moves components to: cpu, and cuda when this machine has it."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# ---------------------------------------------------------------------------- the checker

def _keeps_rng(check: Callable[..., Any]) -> Callable[..., Any]:
    """A check seeds torch as it builds; the caller's random state is left as it was."""

    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch.random.fork_rng(devices=[]):
            return check(*args, **kwargs)

    return wrapper


class _Checker:
    """One component under check: builds it, and turns any failure into a ContractError."""

    def __init__(self, kind: str, name: str | Callable[..., Any], params: dict[str, Any] | None,
                 registry: Registry | None):
        self.kind = kind
        if registry is None:
            from .plugins import get_registry

            registry = get_registry()
        if not isinstance(name, str):  # a bare factory: check it before registering it
            factory, name = name, getattr(name, "__name__", "component")
            registry = Registry(dict(registry.components))
            registry.components.pop((kind, name), None)
            registry.add(kind, name, factory, origin="cvaekit.testing")
        self.name, self.registry, self.params = name, registry, dict(params or {})
        try:
            self.component = registry.get(kind, name)
        except CvaekitError as exc:
            self.fail("registered", str(exc))

    def fail(self, point: str, detail: str):
        raise ContractError(self.kind, self.name, point, detail)

    @contextmanager
    def point(self, point: str):
        """Any exception inside becomes a ContractError for `point`."""
        try:
            yield
        except ContractError:
            raise
        except Exception as exc:  # noqa: BLE001 - the component's failure is the finding
            raise ContractError(self.kind, self.name, point,
                                f"raised {type(exc).__name__}: {exc}") from exc

    def check_params(self) -> None:
        """Recipe parameters must be annotated, and their defaults must pass recipe validation."""
        for pname, p in self.component.params().items():
            if p.annotation is inspect.Parameter.empty:
                self.fail("recipe parameters", f"parameter '{pname}' has no type annotation, so a "
                          f"recipe value for it cannot be validated (annotate it: int, float, str, ...)")
            if p.default is inspect.Parameter.empty:
                continue
            hint = _resolve_annotation(self.component.factory, pname, p.annotation)
            try:
                _check(p.default, hint, pname, self.registry)
            except RecipeError as exc:
                self.fail("recipe parameters", f"the default of '{pname}' does not fit its annotation: {exc}")

    def build(self, seed: int = 0, **engine_args: Any) -> Any:
        with self.point("build"):
            torch.manual_seed(seed)
            return self.registry.build(self.kind, self.name, self.params, **engine_args)

    def module(self, seed: int = 0, **engine_args: Any) -> nn.Module:
        m = self.build(seed, **engine_args)
        if not isinstance(m, nn.Module):
            self.fail("interface", f"the factory must return a torch.nn.Module, got {type(m).__name__}")
        return m.eval()

    def shape(self, what: str, tensor: Any, expected: tuple[int, ...]) -> None:
        if not isinstance(tensor, torch.Tensor):
            self.fail("output shape", f"{what} must be a torch.Tensor, got {type(tensor).__name__}")
        if tuple(tensor.shape) != tuple(expected):
            self.fail("output shape", f"{what} has shape {tuple(tensor.shape)}, expected {tuple(expected)}")

    def floating(self, what: str, tensor: torch.Tensor, dtype: torch.dtype | None = None) -> None:
        if not tensor.is_floating_point() or (dtype is not None and tensor.dtype != dtype):
            self.fail("output dtype", f"{what} has dtype {tensor.dtype}, expected {dtype or 'a float dtype'}")
        if not torch.isfinite(tensor).all():
            self.fail("output dtype", f"{what} holds NaN or infinite values")

    def same(self, point: str, what: str, a: Any, b: Any, exact: bool = True) -> None:
        """Tensors (or tuples of them) equal: exactly, or closely after a device move."""
        for x, y in zip(_tensors(a), _tensors(b)):
            x, y = x.detach().cpu().float(), y.detach().cpu().float()
            ok = x.shape == y.shape and (torch.equal(x, y) if exact else
                                         torch.allclose(x, y, rtol=1e-3, atol=1e-4))
            if not ok:
                diff = (x - y).abs().max().item() if x.shape == y.shape else "shapes differ"
                self.fail(point, f"{what} (largest difference {diff})")

    def rejects(self, what: str, call: Callable[[], Any]) -> None:
        """`call` is given bad input: it must raise, with a message a person can act on."""
        try:
            out = call()
        except Exception as exc:  # noqa: BLE001 - any exception type is fine if it explains
            if not str(exc).strip():
                self.fail("bad input", f"{what} raised {type(exc).__name__} with an empty message")
            return
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        self.fail("bad input", f"{what} was accepted silently (returned {shape}) instead of raising "
                  f"an error that says what is wrong")

    def round_trip(self, m: nn.Module, fresh: nn.Module, run: Callable[[nn.Module], Any]) -> None:
        """A second instance that loads `m`'s state_dict gives identical outputs."""
        with self.point("state_dict round trip"):
            fresh.load_state_dict(m.state_dict())
            fresh.eval()
        self.same("state_dict round trip", "a second instance loaded with the first's state_dict "
                  "gives different outputs", _run(self, "state_dict round trip", run, m),
                  _run(self, "state_dict round trip", run, fresh))

    def moves(self, m: nn.Module, run: Callable[[nn.Module, str], Any], reference: Any) -> None:
        """`.to(device)` moves everything the module computes with; outputs stay the same."""
        for dev in devices():
            with self.point("device move"):
                out = run(m.to(dev), dev)
            self.same("device move", f"outputs after .to('{dev}') differ from those on cpu",
                      reference, out, exact=False)
        m.to("cpu")


def _tensors(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, Condition):
        return [x.vector, x.tokens] + ([] if x.mask is None else [x.mask])
    return [t for item in x for t in _tensors(item)]


@torch.no_grad()
def _run(checker: _Checker, point: str, fn: Callable[..., Any], *args: Any) -> Any:
    with checker.point(point):
        return fn(*args)


def _to(raw: Any, device: str) -> Any:
    return raw.to(device) if isinstance(raw, torch.Tensor) else raw


def _probe_condition(batch: int, cond_dim: int, tokens: int = 3, seed: int = 1) -> Condition:
    gen = torch.Generator().manual_seed(seed)
    toks = torch.randn(batch, tokens, cond_dim, generator=gen)
    return Condition(toks.mean(1), toks, torch.ones(batch, tokens, dtype=torch.bool))


def _cond_to(cond: Condition, device: str) -> Condition:
    return Condition(cond.vector.to(device), cond.tokens.to(device),
                     None if cond.mask is None else cond.mask.to(device))


# ---------------------------------------------------------------------------- conditioner

def probe_data_info(image_shape: tuple[int, int, int] = (3, 32, 32)) -> DataInfo:
    """What a conditioner is built from in the checks: class names (with an alias) and captions,
    so label and caption conditioners both build."""
    return DataInfo(tuple(image_shape), list(PROBE_CLASSES), {"ring": "circle"},
                    PROBE_CAPTIONS + PROBE_CLASSES)


@_keeps_rng
def check_conditioner(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                      data: DataInfo | None = None, texts: list[str] | None = None,
                      unknown: str = "zqxj-not-a-word", registry: Registry | None = None,
                      seed: int = 0) -> nn.Module:
    """A conditioner: `dim`, `parse` (unknown words -> UnknownConditionError naming the word;
    a label conditioner must reject them), forward -> [B, D] / [B, T, D] / Condition, no
    frozen weights in its state_dict, a state_dict round trip into an instance built
    without texts (as when a trained run is loaded), determinism and a device move."""
    c = _Checker("conditioner", name, params, registry)
    c.check_params()
    data = data or probe_data_info()
    texts = list(texts or data.classes or PROBE_CLASSES)
    m = c.module(seed, data=data)
    dim = getattr(m, "dim", None)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
        c.fail("interface", f"attribute 'dim' must be a positive int (the condition size D), got {dim!r}")
    if not callable(getattr(m, "parse", None)):
        c.fail("interface", "it has no method parse(texts: list[str]) -> raw conditions")

    def run(mod: nn.Module, device: str = "cpu") -> Condition:
        return Condition.of(mod(_to(mod.parse(list(texts)), device)))

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

    try:
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

    frozen = [n for n, p in m.named_parameters() if not p.requires_grad]
    if frozen:
        c.fail("no frozen weights", f"frozen parameters {frozen[:3]} are in the module tree, so every "
               f"checkpoint would carry them; keep a frozen pretrained encoder outside the module "
               f"(e.g. in a plain attribute holder) and cache its outputs")
    # A trained run is rebuilt from DataInfo without texts, then loads the state_dict.
    c.round_trip(m, c.module(seed + 1, data=DataInfo.from_dict(data.to_dict())), run)
    c.same("determinism", "two instances built under the same seed give different outputs",
           cond, _run(c, "determinism", run, c.module(seed, data=data)))
    c.moves(m, run, cond)
    return m


# ---------------------------------------------------------------------------- injection

@_keeps_rng
def check_injection(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                    cond_dim: int = 8, channels: int = 16, spatial: tuple[int, ...] | None = (8, 8),
                    tokens: int = 3, batch: int = 2, registry: Registry | None = None,
                    seed: int = 0) -> nn.Module:
    """An injection: `out_channels`, forward(h [B, C, *spatial], cond) -> [B, out_channels,
    *spatial] in h's dtype (spatial=None checks the MLP layout [B, C]); a condition whose
    batch does not match h must raise; state_dict round trip, determinism, device move."""
    c = _Checker("injection", name, params, registry)
    c.check_params()
    m = c.module(seed, cond_dim=cond_dim, channels=channels)
    out_channels = getattr(m, "out_channels", None)
    if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels <= 0:
        c.fail("interface", f"attribute 'out_channels' must be a positive int, got {out_channels!r}")
    space = tuple(spatial or ())
    h = torch.randn(batch, channels, *space, generator=torch.Generator().manual_seed(seed + 2))
    cond = _probe_condition(batch, cond_dim, tokens, seed + 3)

    def run(mod: nn.Module, device: str = "cpu") -> torch.Tensor:
        return mod(h.to(device), _cond_to(cond, device))

    out = _run(c, "output shape", run, m)
    c.shape("forward(h, cond)", out, (batch, out_channels, *space))
    c.floating("forward(h, cond)", out, h.dtype)
    c.rejects(f"a condition of batch {batch + 1} with h of batch {batch}",
              lambda: m(h, _probe_condition(batch + 1, cond_dim, tokens, seed)))
    c.round_trip(m, c.module(seed + 1, cond_dim=cond_dim, channels=channels), run)
    c.same("determinism", "two instances built under the same seed give different outputs",
           out, _run(c, "determinism", run, c.module(seed, cond_dim=cond_dim, channels=channels)))
    c.moves(m, run, out)
    return m


# ---------------------------------------------------------------------------- prior

@_keeps_rng
def check_prior(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                cond_dim: int = 8, latent_dim: int = 4, tokens: int = 3, batch: int = 2,
                registry: Registry | None = None, seed: int = 0) -> nn.Module:
    """A prior: forward(cond) -> (mu, logvar), each [B, latent_dim] and finite, so the engine
    can sample z and take the KL; state_dict round trip, determinism, device move."""
    c = _Checker("prior", name, params, registry)
    c.check_params()
    m = c.module(seed, cond_dim=cond_dim, latent_dim=latent_dim)
    cond = _probe_condition(batch, cond_dim, tokens, seed + 3)

    def run(mod: nn.Module, device: str = "cpu"):
        return mod(_cond_to(cond, device))

    out = _run(c, "output shape", run, m)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        c.fail("output shape", f"forward(cond) must return (mu, logvar), got {type(out).__name__}")
    for what, t in zip(("mu", "logvar"), out):
        c.shape(what, t, (batch, latent_dim))
        c.floating(what, t)
    c.round_trip(m, c.module(seed + 1, cond_dim=cond_dim, latent_dim=latent_dim), run)
    c.same("determinism", "two instances built under the same seed give different outputs",
           out, _run(c, "determinism", run, c.module(seed, cond_dim=cond_dim, latent_dim=latent_dim)))
    c.moves(m, run, out)
    return m


class _WidenProbe(nn.Module):
    """The injection placed at every stage a network offers: it adds two channels, so a
    network that ignores `InjectionStack.out_channels` fails at its next layer."""

    def __init__(self, *, cond_dim: int, channels: int):
        super().__init__()
        self.out_channels = channels + 2

    def forward(self, h: torch.Tensor, cond: Condition) -> torch.Tensor:
        extra = cond.vector[:, :2].reshape(h.shape[0], 2, *([1] * (h.dim() - 2)))
        return torch.cat([h, extra.expand(-1, -1, *h.shape[2:]).to(h.dtype)], dim=1)


# ---------------------------------------------------------------------------- networks

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
    c = _Checker(kind, name, params, registry)
    c.check_params()
    image_shape = tuple(image_shape)

    def build(specs: list[InjectionSpec], s: int = seed) -> tuple[nn.Module, InjectionPlan]:
        plan = InjectionPlan(specs, cond_dim, c.registry, kind)
        net = c.module(s, image_shape=image_shape, cond_dim=cond_dim, latent_dim=latent_dim, injections=plan)
        return net, plan

    m, plan = build([])
    gen = torch.Generator().manual_seed(seed + 2)
    x = torch.rand(batch, *image_shape, generator=gen)
    z = torch.randn(batch, latent_dim, generator=gen)
    cond = _probe_condition(batch, cond_dim, seed=seed + 3)
    given = x if kind == "encoder" else z

    def run(mod: nn.Module, device: str = "cpu") -> Any:
        return mod(given.to(device), _cond_to(cond, device))

    out = _run(c, "output shape", run, m)
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

    if not plan.offered:
        c.fail("injections", "it never calls injections.at(stage, channels); a network must offer at "
               "least stage 0 (its input) and use the returned stack's out_channels")
    probes = Registry(dict(c.registry.components))
    probes.components.pop(("injection", PROBE_INJECTION), None)
    probes.add("injection", PROBE_INJECTION, _WidenProbe, origin="cvaekit.testing")
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

    c.round_trip(m, build([], seed + 1)[0], run)
    c.same("determinism", "two instances built under the same seed give different outputs",
           out, _run(c, "determinism", run, build([])[0]))
    c.moves(m, run, out)
    return m


# ---------------------------------------------------------------------------- dataset

@_keeps_rng
def check_dataset(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                  bad_params: dict[str, Any] | None = None, registry: Registry | None = None,
                  inspect_items: int = 2000) -> DataSource:
    """A dataset: a DataSource of uint8 [N, C, H, W] splits with a label id (within
    `classes`) or a non-empty caption list per image; batches are floats in [0, 1];
    building twice gives the same data; with `bad_params` it must raise a CvaekitError."""
    c = _Checker("dataset", name, params, registry)
    c.check_params()
    src = c.build()
    if not isinstance(src, DataSource):
        c.fail("interface", f"the factory must return a cvaekit.data.DataSource, got {type(src).__name__}")
    for split_name in ("train", "test"):
        split = getattr(src, split_name)
        if not isinstance(split, Split):
            c.fail("interface", f"'{split_name}' must be a cvaekit.data.Split, got {type(split).__name__}")
        _check_split(c, src, split, split_name, inspect_items)
    if src.train.images.shape[1:] != src.test.images.shape[1:]:
        c.fail("output shape", f"train images are {tuple(src.train.images.shape[1:])} but test images "
               f"are {tuple(src.test.images.shape[1:])}")
    with c.point("interface"):
        prompts = src.default_prompts()
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        c.fail("interface", f"default_prompts() must give non-empty texts, got {prompts!r}")

    again = c.build()
    for split_name in ("train", "test"):
        a, b = getattr(src, split_name), getattr(again, split_name)
        idx = torch.arange(min(len(a), 64))
        same = len(a) == len(b) and torch.equal(a.images[idx], b.images[idx]) and (
            torch.equal(a.conditions[idx], b.conditions[idx]) if a.labelled
            else a.conditions[:64] == b.conditions[:64])
        if not same:
            c.fail("determinism", f"building it twice with the same parameters gives a different "
                   f"{split_name} split")
    if bad_params is not None:
        try:
            c.registry.build("dataset", c.name, {**c.params, **bad_params})
        except CvaekitError:
            pass
        except Exception as exc:  # noqa: BLE001
            c.fail("bad input", f"parameters {bad_params} raised {type(exc).__name__} ({exc}); it must "
                   f"raise a cvaekit.errors.DataError (or another CvaekitError) that says what is wrong")
        else:
            c.fail("bad input", f"parameters {bad_params} were accepted; they must raise a DataError")
    return src


def _check_split(c: _Checker, src: DataSource, split: Split, which: str, inspect_items: int) -> None:
    images = split.images
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        c.fail("output dtype", f"{which} images must be a uint8 tensor [N, C, H, W], got "
               f"{getattr(images, 'dtype', type(images).__name__)} of shape {tuple(getattr(images, 'shape', ()))}")
    n = images.shape[0]
    if n == 0 or images.shape[1] not in (1, 3):
        c.fail("output shape", f"{which} images have shape {tuple(images.shape)}: need N > 0 and 1 or 3 channels")
    if split.labelled:
        labels = split.conditions
        if labels.dtype != torch.long or tuple(labels.shape) != (n,):
            c.fail("output dtype", f"{which} labels must be a LongTensor [N={n}], got {labels.dtype} {tuple(labels.shape)}")
        if not src.classes or labels.min() < 0 or labels.max() >= len(src.classes):
            c.fail("interface", f"{which} label ids must index 'classes' ({src.classes!r})")
    else:
        if len(split.conditions) != n:
            c.fail("output shape", f"{which} has {n} images but {len(split.conditions)} caption lists")
        for i, caps in enumerate(split.conditions[:inspect_items]):
            if not isinstance(caps, (list, tuple)) or not caps or not all(isinstance(t, str) and t for t in caps):
                c.fail("output dtype", f"{which} image {i} must have a non-empty list of caption strings, got {caps!r}")
    with c.point("interface"):
        x, raw = split.batch(torch.arange(min(4, n)), generator=torch.Generator().manual_seed(0))
    if x.dtype != torch.float32 or x.min() < 0 or x.max() > 1:
        c.fail("output dtype", f"{which} batches must be float32 images in [0, 1]")
    if len(raw) != x.shape[0]:
        c.fail("output shape", f"a {which} batch of {x.shape[0]} images has {len(raw)} conditions")


# ---------------------------------------------------------------------------- metric

class _ProbeConditioner(nn.Module):
    """Label ids -> one-hot, captions -> hashed bag of words: enough to make a probe model."""

    def __init__(self, n_classes: int, dim: int = 16):
        super().__init__()
        self.n_classes, self.dim = n_classes, dim

    def parse(self, texts: list[str]) -> list[str]:
        return list(texts)

    def forward(self, raw: Any) -> torch.Tensor:
        if isinstance(raw, torch.Tensor):
            return nn.functional.one_hot(raw.long().cpu(), self.dim).float()
        out = torch.zeros(len(raw), self.dim)
        for i, text in enumerate(raw):
            for word in text.lower().split():
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        return out


class _ProbeEncoder(nn.Module):
    def __init__(self, image_shape, cond_dim, latent_dim):
        super().__init__()
        self.net = nn.Linear(math.prod(image_shape) + cond_dim, 2 * latent_dim)

    def forward(self, x, cond):
        return self.net(torch.cat([x.flatten(1), cond.vector], 1)).chunk(2, dim=1)


class _ProbeDecoder(nn.Module):
    def __init__(self, image_shape, cond_dim, latent_dim):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.net = nn.Linear(latent_dim + cond_dim, math.prod(image_shape))

    def forward(self, z, cond):
        return self.net(torch.cat([z, cond.vector], 1)).view(-1, *self.image_shape)


def probe_data_source(kind: Literal["labels", "captions"] = "labels", n_train: int = 48, n_test: int = 12,
                      image_shape: tuple[int, int, int] = (3, 32, 32), seed: int = 0) -> DataSource:
    """A small synthetic data set: each class is a bright square at its own place."""
    gen = torch.Generator().manual_seed(seed)
    ch, hgt, wid = image_shape
    size = hgt // 2

    def split(n: int) -> Split:
        labels = torch.arange(n) % len(PROBE_CLASSES)
        images = (torch.rand(n, ch, hgt, wid, generator=gen) * 40).to(torch.uint8)
        for i, k in enumerate(labels.tolist()):
            top, left = (k % 2) * (hgt - size), (k // 2) * (wid - size)
            images[i, :, top:top + size, left:left + size] = 255
        if kind == "labels":
            return Split(images, labels)
        return Split(images, [[f"a {PROBE_CLASSES[k]}", f"one white {PROBE_CLASSES[k]}"] for k in labels.tolist()])

    classes = list(PROBE_CLASSES) if kind == "labels" else None
    return DataSource(split(n_train), split(n_test), classes=classes)


def _probe_model(data: DataSource, latent_dim: int = 4) -> CVAE:
    info = data.info()
    cond = _ProbeConditioner(len(data.classes or PROBE_CLASSES))
    return CVAE(cond, _ProbeEncoder(info.image_shape, cond.dim, latent_dim),
                _ProbeDecoder(info.image_shape, cond.dim, latent_dim), latent_dim, info).eval()


@_keeps_rng
def check_metric(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                 data: DataSource | Literal["labels", "captions"] = "labels", model: CVAE | None = None,
                 registry: Registry | None = None, seed: int = 0) -> dict[str, float]:
    """A metric: metric(ctx) -> a non-empty mapping of names to finite numbers, the same on a
    second call, without changing the model; on data it cannot judge (labels vs captions)
    it must raise a CvaekitError that says so. Returns the values."""
    c = _Checker("metric", name, params, registry)
    c.check_params()
    if isinstance(data, str):
        data = probe_data_source(data, seed=seed)
    torch.manual_seed(seed)
    model = model or _probe_model(data)
    metric = c.build(seed)
    if not callable(metric):
        c.fail("interface", f"the factory must return a callable metric(ctx), got {type(metric).__name__}")

    def evaluate(on: DataSource, mdl: CVAE) -> dict[str, float]:
        ctx = EvalContext(mdl, on, on.test, batch_size=16, seed=seed)
        with torch.no_grad():
            raw_out = metric(ctx)
        if not isinstance(raw_out, Mapping) or not raw_out:
            c.fail("output shape", f"metric(ctx) must return a non-empty mapping of names to numbers, got {raw_out!r}")
        values = run_metrics([metric], ctx)
        bad = {k: v for k, v in values.items() if not isinstance(k, str) or not math.isfinite(v)}
        if bad:
            c.fail("output dtype", f"values must be finite numbers under string names, got {bad}")
        return values

    before = [p.detach().clone() for p in model.parameters()]
    with c.point("output shape"):
        values = evaluate(data, model)
    if any(not torch.equal(a, b) for a, b in zip(before, model.parameters())):
        c.fail("model untouched", "evaluating changed the model's parameters")
    with c.point("determinism"):
        again = evaluate(data, model)
    if values != again:
        c.fail("determinism", f"two evaluations of the same model gave {values} and {again}")

    other = probe_data_source("captions" if data.train.labelled else "labels", seed=seed)
    try:
        evaluate(other, _probe_model(other))
    except ContractError as exc:
        c.fail("bad input", f"on {'caption' if data.train.labelled else 'labelled'} data: {exc.detail}")
    except CvaekitError as exc:
        if not str(exc).strip():
            c.fail("bad input", "the CvaekitError for data it cannot judge has an empty message")
    except Exception as exc:  # noqa: BLE001
        c.fail("bad input", f"on {'caption' if data.train.labelled else 'labelled'} data it raised "
               f"{type(exc).__name__} ({exc}); data it cannot judge must raise a CvaekitError saying so")

    for dev in devices()[1:]:
        with c.point("device move"):
            moved = evaluate(data, model.to(dev))
        model.to("cpu")
        if set(moved) != set(values):
            c.fail("device move", f"on {dev} it reports {sorted(moved)} instead of {sorted(values)}")
    return values


# ---------------------------------------------------------------------------- one entry

_CHECKS = {"conditioner": check_conditioner, "injection": check_injection, "encoder": check_encoder,
           "decoder": check_decoder, "prior": check_prior, "dataset": check_dataset, "metric": check_metric}


def check_component(kind: str, name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                    registry: Registry | None = None, **options: Any) -> Any:
    """Check the `kind` component `name` (built with recipe `params`) against its kind's contract.

    `options` go to the kind's check: the engine's arguments (data=, cond_dim=, channels=,
    image_shape=, latent_dim=) and probe settings (texts=, spatial=, bad_params=, ...).
    Returns what was built (the module, data source or metric values)."""
    if kind not in _CHECKS:
        raise ValueError(f"Unknown kind '{kind}'. Valid kinds: {', '.join(KINDS)}.")
    return _CHECKS[kind](name, params, registry=registry, **options)
