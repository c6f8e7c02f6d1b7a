"""The metric contract."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch

from cvaekit.core.data import DataSource
from cvaekit.core.model import CVAE
from cvaekit.errors import CvaekitError
from cvaekit.evaluation.context import EvalContext, run_metrics
from cvaekit.plugins.registry import Registry, metric_itself
from cvaekit.testing.checker import ContractError, _Checker, _keeps_rng, devices
from cvaekit.testing.probes import _probe_model, probe_data_source


@_keeps_rng
def check_metric(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                 data: DataSource | Literal["labels", "captions"] = "labels", model: CVAE | None = None,
                 registry: Registry | None = None, seed: int = 0) -> dict[str, float]:
    """A metric: metric(ctx) -> a non-empty mapping of names to finite numbers, the same on a
    second call, without changing the model; on data it cannot judge (labels vs captions)
    it must raise a CvaekitError that says so. Returns the values."""
    _refuse_the_metric_itself(name, registry)
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


def _refuse_the_metric_itself(name: str | Callable[..., Any], registry: Registry | None) -> None:
    """A metric given (or registered) as the metric itself, metric(ctx), instead of its factory."""
    if isinstance(name, str):
        if registry is None:
            from cvaekit.plugins.loading import get_registry

            registry = get_registry()
        found = registry.components.get(("metric", name))
        if found is None:
            return  # the checker says it is not registered
        factory, label = found.factory, name
    else:
        factory, label = name, getattr(name, "__name__", "metric")
    problem = metric_itself("metric", label, factory)
    if problem:
        raise ContractError("metric", label, "interface", problem)
