"""What every contract check shares: the checker that builds a component through the registry
and turns any failure into a `ContractError` naming the point, and the probe inputs."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import (
    ComponentSpec,
    check_value,
    component_spec,
    resolve_annotation,
)

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
            from cvaekit.plugins.loading import get_registry

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
        self.params = self.validated(self.params)

    def validated(self, params: dict[str, Any]) -> dict[str, Any]:
        """`params` checked the way a recipe's are (a RecipeError names the bad one), so a
        string where an int goes is refused here instead of reaching torch."""
        spec = component_spec(ComponentSpec, {**params, "name": self.name}, "params", self.kind, self.registry)
        return {k: spec.params[k] for k in params}

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
            hint = resolve_annotation(self.component.factory, pname, p.annotation)
            try:
                check_value(p.default, hint, pname, self.registry)
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
