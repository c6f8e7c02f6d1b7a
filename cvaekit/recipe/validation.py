"""Recipe validation: plain data to a `Recipe`, or a RecipeError that names the key, the bad
value and the valid choices. A component's parameters are checked against its factory's
signature (annotations, defaults and bounds such as `AtLeast`)."""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from cvaekit.errors import (
    RecipeError,
    UnknownComponentError,
    choices_text,
    did_you_mean,
)
from cvaekit.plugins.registry import Registry, metric_itself
from cvaekit.recipe.schema import KIND_OF, ComponentSpec, Recipe
from cvaekit.recipe.guided import guided_metrics_trained
from cvaekit.recipe.types import Bound


def validate(data: dict[str, Any], registry: Registry) -> Recipe:
    """Turn plain recipe data into a `Recipe`, or raise a `RecipeError` naming the problem."""
    recipe = _build(Recipe, _log_as_list(data), "", registry)
    if not recipe.name.strip() or recipe.name in (".", "..") or any(c in recipe.name for c in "/\\"):
        raise RecipeError(f"'name' names the run folder (runs/<name>-<time>), so it must be a plain "
                          f"non-empty name without slashes, got {recipe.name!r}.")
    if not 0 <= recipe.seed < 2**63:
        raise RecipeError(f"'seed' must be a whole number from 0 to 2**63 - 1, got {recipe.seed}.")
    guided_metrics_trained([(m.name, m.params) for m in recipe.eval.metrics], recipe.train.cond_dropout, "eval.metrics")
    return _fit_prior_named(recipe, registry)


def _fit_prior_named(recipe: Recipe, registry: Registry) -> Recipe:
    """A `fit_prior` stage without its own `prior` fits the model's prior again (the usual
    second stage: the same flow, fitted to the trained codes); a model without one has nothing
    to fit, so the stage must name it."""
    stage = recipe.fit_prior
    if stage is None or stage.prior is not None:
        return recipe
    if recipe.model.prior is None:
        raise RecipeError(f"'fit_prior' fits a prior, but it names none and the model has none (N(0, I)) to "
                          f"fit again: give 'fit_prior.prior' (or 'model.prior'), e.g. fit_prior: {{prior: flow}}. "
                          f"Priors: {choices_text(registry.names('prior'))}.")
    return dataclasses.replace(recipe, fit_prior=dataclasses.replace(stage, prior=recipe.model.prior))


def _log_as_list(data: Any) -> Any:
    """`log` as the list of trackers it is now: the older `log: {tensorboard: true}` (a switch
    per tracker) keeps meaning what it did, and one tracker alone (`log: csv`) is a list of one."""
    log = data.get("log") if isinstance(data, dict) else None
    if isinstance(log, str) or (isinstance(log, dict) and "name" in log):
        return {**data, "log": [log]}
    if isinstance(log, dict):
        unknown = [k for k in log if k != "tensorboard"]
        if unknown:
            raise RecipeError(f"Unknown key 'log.{unknown[0]}'. 'log' lists trackers, e.g. log: [tensorboard, csv] "
                              f"(`cvaekit list-components --kind logger`); of the older switches only "
                              f"'log.tensorboard: true' is still read.")
        if not isinstance(log.get("tensorboard", False), bool):
            raise RecipeError(f"'log.tensorboard' must be true or false, got {log['tensorboard']!r}.")
        return {**data, "log": ["tensorboard"] if log.get("tensorboard") else []}
    if "log" in (data if isinstance(data, dict) else {}) and log is None:
        return {**data, "log": []}
    return data


def _build(cls: type, data: Any, path: str, registry: Registry) -> Any:
    if not isinstance(data, dict):
        raise RecipeError(f"'{path or 'recipe'}' must be a mapping of keys, got {data!r}.")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise RecipeError(f"Unknown key '{_join(path, key)}'.{did_you_mean(key, fields)} "
                              f"Valid keys here: {choices_text(fields)}.")
    values = {}
    for name, f in fields.items():
        key = _join(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecipeError(f"Missing key '{key}'.")
            continue
        if name in KIND_OF:
            values[name] = _component_value(hints[name], data[name], key, KIND_OF[name], registry)
        else:
            values[name] = check_value(data[name], hints[name], key, registry)
    return cls(**values)


def _component_value(hint: Any, value: Any, key: str, kind: str, registry: Registry) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # optional: null means none
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is list:
        if not isinstance(value, list):
            raise RecipeError(f"'{key}' must be a list of {kind} entries, got {value!r}.")
        spec_cls = typing.get_args(hint)[0]
        return [component_spec(spec_cls, v, f"{key}.{i}", kind, registry) for i, v in enumerate(value)]
    return component_spec(hint, value, key, kind, registry)


def component_spec(spec_cls: type, value: Any, key: str, kind: str, registry: Registry) -> ComponentSpec:
    """`mlp` or `{name: mlp, hidden: 400}` -> a spec whose params the factory accepts. Messages
    name each parameter as `key.param` (as `param` alone when `key` is empty)."""

    def at(pname: str) -> str:
        return f"{key}.{pname}" if key else pname

    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or "name" not in value:
        raise RecipeError(f"'{key}' must be a {kind} name or a mapping with 'name', got {value!r}. "
                          f"Valid {kind} names: {choices_text(registry.names(kind))}.")
    if not isinstance(value["name"], str):
        raise RecipeError(f"'{key}.name' must be a string naming the {kind}, got {value['name']!r}. "
                          f"Valid {kind} names: {choices_text(registry.names(kind))}.")
    engine_keys = {f.name for f in dataclasses.fields(spec_cls)} - {"name", "params"}
    params = {k: v for k, v in value.items() if k not in engine_keys | {"name"}}
    extra = {k: v for k, v in value.items() if k in engine_keys}
    try:
        comp = registry.get(kind, value["name"])
    except UnknownComponentError as exc:
        raise RecipeError(f"'{key}.name': {exc}") from None
    itself = metric_itself(kind, comp.name, comp.factory)
    if itself:
        raise RecipeError(f"'{key}': the {kind} '{comp.name}' (from {comp.origin}) cannot be built: {itself}.")
    accepted = comp.params()
    takes_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(comp.factory).parameters.values())
    checked = {}
    for pname, pvalue in params.items():
        if pname not in accepted:
            if takes_any:
                checked[pname] = pvalue
                continue
            valid = list(accepted) + sorted(engine_keys)
            raise RecipeError(
                f"Unknown key '{at(pname)}' for {kind} '{comp.name}'.{did_you_mean(pname, valid)} "
                f"Valid keys: {choices_text(valid)}.")
        ann = accepted[pname].annotation
        checked[pname] = pvalue if ann is inspect.Parameter.empty else check_value(
            pvalue, resolve_annotation(comp.factory, pname, ann), at(pname), registry)
    for pname, p in accepted.items():
        if pname not in checked:
            if p.default is inspect.Parameter.empty:
                raise RecipeError(f"Missing key '{at(pname)}' ({kind} '{comp.name}' needs it).")
            checked[pname] = p.default
    hints = typing.get_type_hints(spec_cls)
    extra = {k: check_value(v, hints[k], f"{key}.{k}", registry) for k, v in extra.items()}
    return spec_cls(name=comp.name, params=checked, **extra)


def resolve_annotation(factory: Any, pname: str, ann: Any) -> Any:
    if isinstance(ann, str):  # `from __future__ import annotations` in the component's module
        target = factory.__init__ if inspect.isclass(factory) else factory
        try:
            return typing.get_type_hints(target, include_extras=True).get(pname, Any)
        except Exception:  # noqa: BLE001 - an unresolvable hint is not the user's problem
            return Any
    return ann


def check_value(value: Any, hint: Any, key: str, registry: Registry) -> Any:
    """`value` if it fits `hint` (coercing the harmless cases), else a RecipeError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        _refuse_non_finite(value, key)
        return value
    if origin is Annotated:
        value = check_value(value, args[0], key, registry)
        if "existing path" in args[1:] and value is not None and not _exists(value):
            raise RecipeError(f"'{key}': the path '{value}' does not exist.")
        for bound in (a for a in args[1:] if isinstance(a, Bound)):
            if not bound.allows(value):
                raise RecipeError(f"'{key}' must be {bound}, got {value!r}.")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return check_value(value, arg, key, registry)
            except RecipeError as exc:
                errors.append(str(exc))
        raise RecipeError(errors[0] if len(errors) == 1 else
                          f"'{key}' must be {_describe(hint)}, got {value!r}.")
    if origin is Literal:
        if value not in args:
            raise RecipeError(f"'{key}' must be one of {choices_text(map(str, args))}, got {value!r}.")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"'{key}' must be a list, got {value!r}.")
        item = args[0] if args else Any
        return [check_value(v, item, f"{key}.{i}", registry) for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"'{key}' must be a mapping, got {value!r}.")
        if len(args) == 2:  # dict[str, X]: each value an X, named by its key
            return {k: check_value(v, args[1], f"{key}.{k}", registry) for k, v in value.items()}
        _refuse_non_finite(value, key)
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key, registry)
    if hint is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"'{key}' must be true or false, got {value!r}.")
        return value
    if hint is int:
        return _integer(value, key)
    if hint is float:
        return _number(value, key)
    if hint in (str, Path):
        if not isinstance(value, str):
            raise RecipeError(f"'{key}' must be a string, got {value!r}.")
        if "\0" in value:
            raise RecipeError(f"'{key}' must not hold a NUL character, got {value!r}.")
        return value
    _refuse_non_finite(value, key)
    return value


def _refuse_non_finite(value: Any, key: str) -> None:
    """Infinity or NaN anywhere in a value whose type the component left open."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RecipeError(f"'{key}' must be a finite number, got {value!r}.")
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _refuse_non_finite(v, f"{key}.{i}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _refuse_non_finite(v, f"{key}.{k}")


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _number(value: Any, key: str) -> float:
    """A finite number; a number string ('1e-3', which PyYAML reads as a string, or '256')
    counts as the number it spells, for int and float keys alike."""
    given = value
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecipeError(f"'{key}' must be a number, got {given!r}.")
    if not math.isfinite(value):
        raise RecipeError(f"'{key}' must be a finite number, got {given!r}.")
    return float(value)


def _integer(value: Any, key: str) -> int:
    """A whole number that fits in 64 bits (what torch takes): 256, '256' and 256.0 alike;
    2.5, 'five', inf and nan are refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    else:
        try:
            number = _number(value, key)
        except RecipeError:
            raise RecipeError(f"'{key}' must be an integer, got {value!r}.") from None
        if not number.is_integer():
            raise RecipeError(f"'{key}' must be an integer, got {value!r}.")
        number = int(number)
    if not -2**63 <= number < 2**63:
        raise RecipeError(f"'{key}' must be an integer that fits in 64 bits, got {value!r}.")
    return number


def _describe(hint: Any) -> str:
    """A union's choices as a recipe writes them: `true or false or static or dynamic`."""
    def name(a: Any) -> str:
        if typing.get_origin(a) is Literal:
            return " or ".join(map(str, typing.get_args(a)))
        plain = getattr(a, "__name__", str(a))
        return {"NoneType": "null", "bool": "true or false"}.get(plain, plain)
    return " or ".join(name(a) for a in typing.get_args(hint))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key

