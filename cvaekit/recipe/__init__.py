"""Recipes: YAML that names the parts of a run, validated before anything runs.

`types` (parameter types, no torch), `schema` (the engine's keys), `validation` (data to a
`Recipe`, or an error naming the key and the valid choices), `files` (YAML, `--set`,
loading and writing). `describe` renders a component's parameters as recipe keys.
"""

from cvaekit.recipe.files import apply_overrides, dump_recipe, load_recipe, read_yaml
from cvaekit.recipe.schema import (
                                   FIT_PRIOR_DEFAULTS,
                                   KIND_OF,
                                   ComponentSpec,
                                   EvalConfig,
                                   FitPriorConfig,
                                   InjectionSpec,
                                   ModelConfig,
                                   Recipe,
                                   TrainConfig,
                                   to_plain,
)
from cvaekit.recipe.types import (
                                   Above,
                                   AtLeast,
                                   Below,
                                   Bound,
                                   ExistingPath,
                                   NonNegativeFloat,
                                   NonNegativeInt,
                                   PositiveFloat,
                                   PositiveInt,
)
from cvaekit.recipe.guided import guided_metrics_trained
from cvaekit.recipe.validation import (
                                   check_value,
                                   component_spec,
                                   resolve_annotation,
                                   validate,
)

__all__ = ["Above", "AtLeast", "Below", "Bound", "ComponentSpec", "EvalConfig", "ExistingPath", "FIT_PRIOR_DEFAULTS",
           "FitPriorConfig", "InjectionSpec", "KIND_OF", "ModelConfig", "NonNegativeFloat",
           "NonNegativeInt", "PositiveFloat", "PositiveInt", "Recipe", "TrainConfig", "apply_overrides", "check_value",
           "component_spec", "dump_recipe", "guided_metrics_trained", "load_recipe", "read_yaml", "resolve_annotation", "to_plain",
           "validate"]
