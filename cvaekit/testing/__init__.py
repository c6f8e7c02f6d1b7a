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

from collections.abc import Callable
from typing import Any

from cvaekit.plugins.registry import KINDS, Registry
from cvaekit.testing.checker import ContractError, devices
from cvaekit.testing.conditioners import check_conditioner
from cvaekit.testing.datasets import check_dataset
from cvaekit.testing.injections import check_injection
from cvaekit.testing.likelihoods import check_likelihood
from cvaekit.testing.loggers import check_logger
from cvaekit.testing.metrics import check_metric
from cvaekit.testing.networks import check_decoder, check_encoder
from cvaekit.testing.priors import check_prior
from cvaekit.testing.probes import probe_data_info, probe_data_source

__all__ = ["ContractError", "check_component", "check_conditioner", "check_injection",
           "check_encoder", "check_decoder", "check_likelihood", "check_prior", "check_dataset", "check_metric",
           "check_logger",
           "probe_data_info", "probe_data_source", "devices"]


_CHECKS = {"conditioner": check_conditioner, "injection": check_injection, "encoder": check_encoder,
           "decoder": check_decoder, "likelihood": check_likelihood, "prior": check_prior, "dataset": check_dataset, "metric": check_metric,
           "logger": check_logger}


def check_component(kind: str, name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                    registry: Registry | None = None, **options: Any) -> Any:
    """Check the `kind` component `name` (built with recipe `params`) against its kind's contract.

    `options` go to the kind's check: the engine's arguments (data=, cond_dim=, channels=,
    image_shape=, latent_dim=) and probe settings (texts=, spatial=, bad_params=, ...).
    Returns what was built (the module, data source or metric values)."""
    if kind not in _CHECKS:
        raise ValueError(f"Unknown kind '{kind}'. Valid kinds: {', '.join(KINDS)}.")
    return _CHECKS[kind](name, params, registry=registry, **options)
