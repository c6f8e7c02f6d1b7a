"""Recipes: YAML that names the parts of a run, validated before anything runs.

The schema is the dataclasses below; a component's parameters are its factory's
signature. Every error names the key, the bad value and the valid choices.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from .errors import RecipeError, UnknownComponentError, choices_text, did_you_mean
from .registry import Registry

# A parameter annotated with ExistingPath must name a file or folder that exists.
ExistingPath = Annotated[str, "existing path"]


@dataclass(frozen=True)
class AtLeast:
    """A bound on a number key, checked with the recipe: `Annotated[int, AtLeast(1)]`."""

    bound: float

    def allows(self, value: float) -> bool:
        return value >= self.bound

    def __str__(self) -> str:
        return f"at least {self.bound:g}"


@dataclass(frozen=True)
class Above(AtLeast):
    """A strict lower bound: `Annotated[float, Above(0)]`."""

    def allows(self, value: float) -> bool:
        return value > self.bound

    def __str__(self) -> str:
        return f"above {self.bound:g}"


# The usual ranges, for the engine's keys and for components' parameters alike.
PositiveInt = Annotated[int, AtLeast(1)]
PositiveFloat = Annotated[float, Above(0)]
NonNegativeFloat = Annotated[float, AtLeast(0)]


@dataclass
class ComponentSpec:
    """A component by name plus its parameters (everything but `name` in the YAML mapping)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class InjectionSpec(ComponentSpec):
    """An injection placed at stage `at` (0 = the input) of the encoder or decoder."""

    at: int = 0
    net: Literal["encoder", "decoder"] = "encoder"


@dataclass
class ModelConfig:
    conditioner: ComponentSpec
    encoder: ComponentSpec
    decoder: ComponentSpec
    latent_dim: PositiveInt = 20
    injections: list[InjectionSpec] = field(default_factory=list)
    prior: ComponentSpec | None = None


@dataclass
class TrainConfig:
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 128
    lr: PositiveFloat = 1e-3
    lr_schedule: Literal["constant", "cosine", "cooldown"] = "constant"  # constant: train.lr throughout; cosine: from train.lr down to 0 at the last step of train.epochs; cooldown: train.lr, then down to 0 in a straight line over the last train.cooldown of the steps
    cooldown: Annotated[float, Above(0)] = 0.2  # the share of the steps at the end over which lr_schedule: cooldown lowers the rate (1: all of them)
    weight_decay: NonNegativeFloat = 0.0
    kl_weight: NonNegativeFloat = 1.0
    checkpoint_every: PositiveInt = 10  # epochs between kept checkpoints; the last is always kept
    limit: PositiveInt | None = None  # train on the first N images only (quick runs, tests)
    device: str = "auto"  # auto, cpu, cuda, cuda:1, ...
    amp: bool = False  # bfloat16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX)
    data_on_device: bool | Literal["auto"] = "auto"  # training images and frozen conditions held on the device (auto: on a GPU, when they fit train.data_share)
    data_share: Annotated[float, Above(0)] = 0.3  # the most of the GPU's memory that resident training data may take (auto)
    channels_last: bool = False  # images and convolutions in NHWC memory order (faster convolutions on recent GPUs)
    compile: bool = False  # torch.compile the networks (the checkpoint format is unchanged)
    grad_clip: PositiveFloat | None = None
    processes: PositiveInt = 1  # CPU processes training data-parallel, each with an equal share of every batch and of the cores (a model of many small operations trains faster so); one process on a GPU


@dataclass
class EvalConfig:
    metrics: list[ComponentSpec] = field(default_factory=list)
    limit: PositiveInt | None = None  # evaluate on the first N test images only
    samples_per_condition: PositiveInt = 8
    conditions: list[str] | None = None  # texts for sample grids; default: the data's own


@dataclass
class FitPriorConfig:
    prior: ComponentSpec  # the prior to fit: a name, or a mapping with name and its parameters
    epochs: PositiveInt = 14  # passes over the codes
    lr: PositiveFloat = 5e-3  # Adam learning rate of the fit (cosine-annealed over its epochs)
    batch_size: PositiveInt = 1024  # codes per step of the fit
    draws: PositiveInt = 4  # codes per training image, a caption drawn at random for each


FIT_PRIOR_DEFAULTS = {f.name: f.default for f in dataclasses.fields(FitPriorConfig) if f.name != "prior"}


@dataclass
class LogConfig:
    tensorboard: bool = False


@dataclass
class Recipe:
    name: str
    data: ComponentSpec
    model: ModelConfig
    seed: int = 0
    runs_dir: str = "runs"
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    fit_prior: FitPriorConfig | None = None  # a second stage: after training, fit this prior to the codes

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)


# Which registry kind each component-valued key is looked up in.
_KIND_OF = {"data": "dataset", "conditioner": "conditioner", "encoder": "encoder",
            "decoder": "decoder", "prior": "prior", "injections": "injection", "metrics": "metric"}


# ---------------------------------------------------------------------------- loading

def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"Recipe file '{path}' does not exist.")
    try:
        data = yaml.safe_load(path.read_text())
    except UnicodeDecodeError as exc:
        raise RecipeError(f"Recipe file '{path}' is not UTF-8 text: {exc}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"Recipe file '{path}' is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"Recipe file '{path}' must hold a mapping of keys, got {type(data).__name__}.")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=c` overrides (values parsed as YAML) to a copy of `data`."""
    data = yaml.safe_load(yaml.safe_dump(data))  # deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"Override '{item}' must look like key.path=value, e.g. train.epochs=5.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise RecipeError(f"Override '{item}': the value is not valid YAML ({exc}). "
                              f"Quote a string that holds YAML syntax.") from None
        node = data
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise RecipeError(f"Override '{item}': '{part}' is not an index of the "
                                      f"{len(node)}-item list at '{'.'.join(parts[:i])}'.")
                part = int(part)
            elif isinstance(node, dict):
                if isinstance(node.get(part), str) and not last:
                    node[part] = {"name": node[part]}  # `encoder: mlp` -> mapping form
                if not last:
                    node.setdefault(part, {})
            else:
                raise RecipeError(f"Override '{item}': '{'.'.join(parts[:i])}' holds a value, not keys.")
            if last:
                node[part] = value
            else:
                node = node[part]
    return data


def load_recipe(source: str | os.PathLike | dict[str, Any], overrides: list[str] = (),
                registry: Registry | None = None) -> Recipe:
    """Read (a path) or take (a dict) a recipe, apply overrides and validate it."""
    from .plugins import get_registry

    data = source if isinstance(source, dict) else read_yaml(source)
    data = apply_overrides(data, list(overrides))
    return validate(data, registry or get_registry())


# ---------------------------------------------------------------------------- validation

def validate(data: dict[str, Any], registry: Registry) -> Recipe:
    """Turn plain recipe data into a `Recipe`, or raise a `RecipeError` naming the problem."""
    recipe = _build(Recipe, data, "", registry)
    if not recipe.name.strip() or recipe.name in (".", "..") or any(c in recipe.name for c in "/\\"):
        raise RecipeError(f"'name' names the run folder (runs/<name>-<time>), so it must be a plain "
                          f"non-empty name without slashes, got {recipe.name!r}.")
    if not 0 <= recipe.seed < 2**63:
        raise RecipeError(f"'seed' must be a whole number from 0 to 2**63 - 1, got {recipe.seed}.")
    return recipe


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
        if name in _KIND_OF:
            values[name] = _component_value(hints[name], data[name], key, _KIND_OF[name], registry)
        else:
            values[name] = _check(data[name], hints[name], key, registry)
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
        return [_component(spec_cls, v, f"{key}.{i}", kind, registry) for i, v in enumerate(value)]
    return _component(hint, value, key, kind, registry)


def _component(spec_cls: type, value: Any, key: str, kind: str, registry: Registry) -> ComponentSpec:
    """`mlp` or `{name: mlp, hidden: 400}` -> a spec whose params the factory accepts."""
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
                f"Unknown key '{key}.{pname}' for {kind} '{comp.name}'.{did_you_mean(pname, valid)} "
                f"Valid keys: {choices_text(valid)}.")
        ann = accepted[pname].annotation
        checked[pname] = pvalue if ann is inspect.Parameter.empty else _check(
            pvalue, _resolve_annotation(comp.factory, pname, ann), f"{key}.{pname}", registry)
    for pname, p in accepted.items():
        if pname not in checked:
            if p.default is inspect.Parameter.empty:
                raise RecipeError(f"Missing key '{key}.{pname}' ({kind} '{comp.name}' needs it).")
            checked[pname] = p.default
    hints = typing.get_type_hints(spec_cls)
    extra = {k: _check(v, hints[k], f"{key}.{k}", registry) for k, v in extra.items()}
    return spec_cls(name=comp.name, params=checked, **extra)


def _resolve_annotation(factory: Any, pname: str, ann: Any) -> Any:
    if isinstance(ann, str):  # `from __future__ import annotations` in the component's module
        target = factory.__init__ if inspect.isclass(factory) else factory
        try:
            return typing.get_type_hints(target, include_extras=True).get(pname, Any)
        except Exception:  # noqa: BLE001 - an unresolvable hint is not the user's problem
            return Any
    return ann


def _check(value: Any, hint: Any, key: str, registry: Registry) -> Any:
    """`value` if it fits `hint` (coercing the harmless cases), else a RecipeError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        _refuse_non_finite(value, key)
        return value
    if origin is Annotated:
        value = _check(value, args[0], key, registry)
        if "existing path" in args[1:] and value is not None and not _exists(value):
            raise RecipeError(f"'{key}': the path '{value}' does not exist.")
        for bound in (a for a in args[1:] if isinstance(a, AtLeast)):
            if not bound.allows(value):
                raise RecipeError(f"'{key}' must be {bound}, got {value!r}.")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check(value, arg, key, registry)
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
        return [_check(v, item, f"{key}.{i}", registry) for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"'{key}' must be a mapping, got {value!r}.")
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
    names = [getattr(a, "__name__", str(a)) for a in typing.get_args(hint)]
    return " or ".join("null" if n == "NoneType" else n for n in names)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _to_plain(obj: Any) -> Any:
    """A Recipe as YAML-ready data, with component specs back in `{name: ..., **params}` form."""
    if isinstance(obj, ComponentSpec):
        out = {"name": obj.name}
        out.update({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
                    if f.name not in ("name", "params")})
        out.update(_to_plain(obj.params))
        return out
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def dump_recipe(recipe: Recipe, path: str | os.PathLike) -> None:
    Path(path).write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
