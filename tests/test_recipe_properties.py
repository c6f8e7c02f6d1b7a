"""Property test: no recipe, however wrong, gives a traceback or starts training when invalid.

Keys and their types come from the schema (the recipe dataclasses and the components'
signatures); hypothesis draws a wrong value for a key, or any value at any key, and the
recipe goes through `cvaekit run` from a file or through `--set`. Training is replaced by a
marker at its first act (choosing the device), which only a valid recipe may reach."""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cvaekit.training import run as training
from cvaekit.cli import app
from cvaekit.plugins import load_registry
from cvaekit.recipe import AtLeast, ModelConfig, Recipe

runner = CliRunner()
BASE = {
    "name": "prop", "seed": 0, "data": {"name": "fashion_mnist"},
    "model": {"latent_dim": 8, "conditioner": {"name": "onehot"},
              "encoder": {"name": "mlp", "hidden": 16}, "decoder": {"name": "mlp", "hidden": 16}},
    "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "limit": 16},
    "eval": {"metrics": ["nelbo"], "limit": 8},
}
COMPONENT_KEYS = {("data",): "dataset", ("model", "conditioner"): "conditioner",
                  ("model", "encoder"): "encoder", ("model", "decoder"): "decoder"}


def schema() -> dict[tuple, typing.Any]:
    """Every settable key of BASE's recipe with its type hint."""
    keys = {}

    def walk(cls, prefix):
        for f in dataclasses.fields(cls):
            hint = typing.get_type_hints(cls, include_extras=True)[f.name]
            path = (*prefix, f.name)
            if dataclasses.is_dataclass(hint) and hint not in (Recipe,):
                walk(hint, path)
            elif path not in COMPONENT_KEYS and f.name not in ("injections", "prior", "metrics", "conditions"):
                keys[path] = hint

    walk(Recipe, ())
    walk(ModelConfig, ("model",))
    registry = load_registry()
    for path, kind in COMPONENT_KEYS.items():
        keys[(*path, "name")] = "component"
        name = BASE[path[0]]["name"] if len(path) == 1 else BASE["model"][path[1]]["name"]
        for pname, p in registry.get(kind, name).params().items():
            hint = typing.get_type_hints(registry.get(kind, name).factory.__init__
                                         if isinstance(registry.get(kind, name).factory, type)
                                         else registry.get(kind, name).factory, include_extras=True).get(pname)
            keys[(*path, pname)] = hint
    return {k: v for k, v in keys.items() if v is not None}


SCHEMA = schema()
SCHEMA[("log",)] = SCHEMA[("log",)] | None  # `log: null` reads as no trackers (recipe.validation._log_as_list)
junk = st.one_of(st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                 st.just({}), st.just([]))
non_finite = st.sampled_from([math.inf, -math.inf, math.nan])


def base_of(hint):
    """(type, bound, optional) of a hint such as `Annotated[int, AtLeast(1)] | None`."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType")):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    bound = None
    if typing.get_origin(hint) is typing.Annotated:
        bound = next((a for a in typing.get_args(hint)[1:] if isinstance(a, AtLeast)), None)
        hint = typing.get_args(hint)[0]
    return hint, bound, optional


def wrong_for(hint) -> st.SearchStrategy:
    """Values that no key of type `hint` may accept."""
    if hint == "component":
        return st.one_of(junk, st.integers(), st.just("no_such_part"))
    kind, bound, optional = base_of(hint)
    nothing = st.nothing() if optional else st.none()
    if kind is int:
        low = [] if bound is None else [st.integers(max_value=int(math.ceil(bound.bound)) - 1, min_value=-10)
                                         .filter(lambda v: not bound.allows(v))]
        return st.one_of(junk, non_finite, nothing, st.booleans(), st.text(alphabet="abcxyz", min_size=1, max_size=4),
                         st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: not float(v).is_integer()),
                         st.integers(min_value=2**63, max_value=2**80), *low)
    if kind is float:
        low = [] if bound is None else [st.floats(max_value=bound.bound, allow_nan=False, allow_infinity=False)
                                        .filter(lambda v: not bound.allows(v))]
        return st.one_of(junk, non_finite, nothing, st.booleans(), st.text(alphabet="abcxyz", min_size=1, max_size=4), *low)
    if kind is bool:
        return st.one_of(junk, nothing, st.integers(), st.text(alphabet="xyz", min_size=1, max_size=3))
    if kind is str:
        return st.one_of(junk, nothing, st.integers(), st.booleans(), st.floats())
    if typing.get_origin(kind) is list:
        strings = typing.get_args(kind) == (str,)  # a list of texts: wrong items are mappings, not texts
        items = (st.dictionaries(st.text(max_size=2), st.integers(), min_size=1, max_size=1) if strings
                 else st.text(max_size=2))
        return st.one_of(st.dictionaries(st.text(max_size=2), st.integers(), min_size=1, max_size=2), nothing,
                         st.integers(), st.booleans(), st.lists(items, min_size=1, max_size=2))
    return st.nothing()


WRONG_KEYS = sorted(k for k, h in SCHEMA.items() if not wrong_for(h).is_empty)
anything = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6)),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                        max_leaves=6)


class Started(Exception):
    """Training's first act was reached: the recipe was accepted."""


@pytest.fixture
def no_training(monkeypatch):
    def started(*_):
        raise Started

    monkeypatch.setattr(training, "resolve_device", started)


def run_with(tmp_path, path: tuple, value, through_set: bool):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    overrides = []
    dotted = ".".join(map(str, path))
    if through_set:
        text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
        overrides = ["--set", f"{dotted}={text.removesuffix('...').strip()}"]
    else:
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    file = tmp_path / "r.yaml"
    file.write_text(yaml.safe_dump(data))
    return runner.invoke(app, ["run", str(file), "-q", *overrides])


FAST = settings(max_examples=40, deadline=None, derandomize=True,  # the same examples on every CI run
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(key=st.sampled_from(WRONG_KEYS), data=st.data(), through_set=st.booleans())
def test_a_wrong_value_for_any_key_is_a_clean_error_naming_it(tmp_path, no_training, key, data, through_set):
    value = data.draw(wrong_for(SCHEMA[key]), label="value")
    result = run_with(tmp_path, key, value, through_set)
    assert not isinstance(result.exception, Started), f"{key}={value!r} started training"
    assert result.exit_code == 2 and isinstance(result.exception, (SystemExit, type(None))), result.exception
    assert "Traceback" not in result.output
    assert ".".join(map(str, key[:-1] if SCHEMA[key] == "component" else key)) in result.output


@FAST
@given(key=st.sampled_from(sorted(SCHEMA)), value=anything, through_set=st.booleans())
def test_any_value_at_any_key_is_accepted_or_refused_without_a_traceback(tmp_path, no_training, key, value, through_set):
    result = run_with(tmp_path, key, value, through_set)
    if not isinstance(result.exception, Started):
        assert result.exit_code == 2 and isinstance(result.exception, (SystemExit, type(None))), result.exception
        assert "Error:" in result.output and "Traceback" not in result.output
