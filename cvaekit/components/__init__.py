"""cvaekit's built-in components: a plugin like any other, named by the entry point
``builtin`` in the group ``cvaekit`` (see pyproject.toml)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .fashion_mnist import fashion_mnist
from .judge import ConditionalAccuracy
from .likelihood import NegativeELBO
from .mlp import MLPDecoder, MLPEncoder
from .onehot import OneHot


@hookimpl
def cvaekit_register(registry):
    registry.add("conditioner", "onehot", OneHot)
    registry.add("encoder", "mlp", MLPEncoder)
    registry.add("decoder", "mlp", MLPDecoder)
    registry.add("dataset", "fashion_mnist", fashion_mnist)
    registry.add("metric", "nelbo", NegativeELBO)
    registry.add("metric", "cond_accuracy", ConditionalAccuracy)
