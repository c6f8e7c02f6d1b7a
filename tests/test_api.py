"""The declared public surface: `cvaekit.__all__` (loaded lazily: `import cvaekit` imports no
torch), the version and its CHANGELOG entry, and every import path the docs, the examples,
the example plugin and the benchmarks have shown, kept working after the engine moved."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cvaekit

ROOT = Path(__file__).resolve().parents[1]

# (module, names): imports shown before 0.2 in docs/, examples/, benchmarks/, README.md and
# plugins/cvaekit-bagofwords.
SHOWN = [
    ("cvaekit", ["hookimpl"]),
    ("cvaekit.training", ["train"]),
    ("cvaekit.recipe", ["load_recipe", "read_yaml", "FIT_PRIOR_DEFAULTS", "ComponentSpec", "EvalConfig",
                        "InjectionSpec", "ModelConfig", "Recipe", "TrainConfig", "PositiveInt", "AtLeast",
                        "ExistingPath", "NonNegativeFloat"]),
    ("cvaekit.runs", ["load_run", "RunDir"]),
    ("cvaekit.plugins", ["get_registry", "load_registry", "register_plugin"]),
    ("cvaekit.errors", ["UnknownConditionError", "RecipeError", "CvaekitError"]),
    ("cvaekit.data", ["DataInfo", "DataSource", "Split"]),
    ("cvaekit.condition", ["Condition"]),
    ("cvaekit.page", ["launch"]),
    ("cvaekit.model", ["build_model", "elbo"]),
    ("cvaekit.evaluation", ["EvalContext"]),
    ("cvaekit.testing", ["check_component", "ContractError", "check_conditioner", "probe_data_source"]),
    ("cvaekit.testing.local", ["free_port", "only_local"]),
    ("cvaekit.sweep", ["sweep"]),
    ("cvaekit.serving", ["load_runs", "compare_picture", "generate_picture", "walk_picture"]),
    ("cvaekit.prior", ["GaussianPrior"]),
    ("cvaekit.prepare", ["prepare"]),
    ("cvaekit.image_cache", ["decode", "default_workers", "FileReader", "cached_images"]),
    ("cvaekit.generate", ["sample_rows", "interpolate", "walk_seeds", "walk_texts", "generate"]),
    ("cvaekit.fit_prior", ["fit_prior"]),
    ("cvaekit.figures", ["labelled_grid"]),
    ("cvaekit.evaluate", ["metrics_table", "evaluate"]),
    ("cvaekit.cli", ["app"]),
    ("cvaekit.device", ["flush_denormals"]),
    ("cvaekit.describe", ["describe_component", "recipe_reference"]),
    ("cvaekit.checkpoint", ["load_checkpoint"]),
]


@pytest.mark.parametrize("module, names", SHOWN, ids=[m for m, _ in SHOWN])
def test_every_import_the_docs_have_shown_still_imports(module, names):
    imported = importlib.import_module(module)
    missing = [n for n in names if not hasattr(imported, n)]
    assert not missing, f"{module} lacks {missing}"


def test_an_old_module_named_like_a_function_leaves_the_function_in_place():
    """`from cvaekit.generate import sample_rows` (an old path) must not turn
    `cvaekit.generate`, the public function, into a module."""
    importlib.import_module("cvaekit.generate")
    importlib.import_module("cvaekit.evaluate")
    assert callable(cvaekit.generate) and cvaekit.generate.__name__ == "generate"
    assert callable(cvaekit.evaluate) and cvaekit.evaluate.__module__ == "cvaekit.evaluation.checkpoints"


def test_every_public_name_resolves():
    for name in cvaekit.__all__:
        assert getattr(cvaekit, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        cvaekit.trian  # noqa: B018


def test_import_cvaekit_imports_no_torch():
    code = "import sys, cvaekit; print('torch' in sys.modules, cvaekit.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", cvaekit.__version__]


def test_the_version_is_the_changelogs_newest():
    newest = re.search(r"^## (\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), re.M).group(1)
    assert cvaekit.__version__ == newest


def test_the_api_doc_lists_every_public_name():
    text = (ROOT / "docs" / "api.md").read_text()
    missing = [n for n in cvaekit.__all__ if n != "__version__" and f"{n}" not in text]
    assert not missing, missing
