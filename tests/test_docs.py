"""The docs stay true: their Python snippets run (in order, one namespace per page, in a
temp folder holding a copy of recipes/; a block that defines `test_*` functions is a test
file, so they are called as pytest would), their YAML parses, and the recipe reference in
docs/recipes.md is what the code generates."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from cvaekit.recipe.reference import BEGIN, END, recipe_reference, recipe_sections

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
LANGUAGES = {"python", "bash", "yaml", "toml", "text"}


def blocks(page: Path) -> list[tuple[str, str]]:
    return FENCE.findall(page.read_text())


def test_the_docs_exist():
    assert {p.name for p in DOCS} >= {"getting-started.md", "recipes.md", "writing-plugins.md", "study.md"}


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_python_snippets_run(page, tmp_path):
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    namespace = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for i, (lang, code) in enumerate(blocks(page)):
        if lang == "python":
            before = set(namespace)
            exec(compile(code, f"{page.name} (python block {i + 1})", "exec"), namespace)  # noqa: S102
            for name in sorted(set(namespace) - before):
                if name.startswith("test_") and callable(namespace[name]):
                    namespace[name]()


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_block_says_its_language_and_yaml_parses(page):
    for lang, code in blocks(page):
        assert lang in LANGUAGES, f"{page.name}: a code block marked '{lang or '(none)'}'; use one of {LANGUAGES}"
        if lang == "yaml":
            yaml.safe_load(code)


def test_recipe_reference_is_generated_from_the_code():
    text = (ROOT / "docs" / "recipes.md").read_text()
    assert BEGIN in text and END in text
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert generated == recipe_reference().strip(), (
        "docs/recipes.md is out of date with the code; run: python -m cvaekit.recipe.reference docs/recipes.md")


def test_recipes_md_lists_every_component_key_where_it_lists_them():
    from cvaekit.recipe.reference import component_keys

    text = " ".join((ROOT / "docs" / "recipes.md").read_text().split())
    listed = text.split("A **component key** (", 1)[1].split(")", 1)[0]
    for key in component_keys():
        assert key in listed, f"docs/recipes.md's list of component keys leaves out {key}"
    generated = text.split("A component key (", 1)[1].split(") takes", 1)[0]
    assert all(key in generated for key in component_keys())


def test_recipe_reference_names_every_key():
    text = (ROOT / "docs" / "recipes.md").read_text()
    for path, _, rows in recipe_sections():
        section = text.split(f"### `{path}`", 1)[1].split("###", 1)[0]
        missing = [r["key"] for r in rows if f"| `{r['key']}` |" not in section]
        assert not missing, f"docs/recipes.md section '{path}' lacks keys {missing}"


def test_study_names_every_recipe_and_only_real_ones():
    text = (ROOT / "docs" / "study.md").read_text()
    recipes = {p.relative_to(ROOT).as_posix() for p in (ROOT / "recipes").glob("*.yaml")}
    named = set(re.findall(r"(?:plugins/[\w-]+/(?:src/\w+/)?)?recipes/[\w-]+\.yaml", text))
    assert not recipes - named, f"docs/study.md does not say which study variant these are: {sorted(recipes - named)}"
    assert all((ROOT / n).is_file() for n in named), sorted(n for n in named if not (ROOT / n).is_file())
