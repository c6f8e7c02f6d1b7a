"""The model card of an exported model (its README.md): YAML front matter the Hugging Face
Hub reads (library_name: cvaekit, tags, the data set, the metrics as a model-index), above a
page a person reads: what the model does, its metrics, its samples, how to use it, its recipe."""

from __future__ import annotations

from typing import Any

import yaml

from cvaekit.recipe import Recipe
from cvaekit.store.exported import GRID, LIBRARY


def model_card(recipe: Recipe, config: dict[str, Any], recipe_text: str, model_id: str, has_grid: bool) -> str:
    """The whole card: front matter, then the body (see the module's docstring)."""
    body = [f"# {recipe.name}", "", what_it_does(recipe, config), ""]
    body += _metrics_section(config) + _samples_section(config, model_id, has_grid)
    body += _use_section(config, model_id) + _parts_section(config)
    body += ["## Recipe", "", "The resolved recipe (`recipe.yaml`), every default filled in: train your own "
             "with `cvaekit run recipe.yaml`.", "", "```yaml", recipe_text.rstrip(), "```", ""]
    return f"---\n{yaml.safe_dump(front_matter(recipe, config), sort_keys=False)}---\n\n" + "\n".join(body)


def front_matter(recipe: Recipe, config: dict[str, Any]) -> dict[str, Any]:
    data = recipe.data.name
    front: dict[str, Any] = {
        "library_name": LIBRARY,
        "pipeline_tag": "text-to-image",
        "tags": ["cvaekit", "text-to-image", "conditional-vae", data, recipe.model.conditioner.name],
        "datasets": [data],
    }
    metrics = config.get("metrics") or {}
    if metrics:
        front["model-index"] = [{"name": recipe.name, "results": [{
            "task": {"type": "text-to-image", "name": "Text-to-image"},
            "dataset": {"name": data, "type": data},
            "metrics": [{"type": k, "name": k, "value": float(v)} for k, v in metrics.items()],
        }]}]
    return front


def what_it_does(recipe: Recipe, config: dict[str, Any]) -> str:
    shape = "x".join(str(s) for s in config["data"]["image_shape"][1:])
    channels = {1: "grey", 3: "colour"}.get(config["data"]["image_shape"][0], f"{config['data']['image_shape'][0]}-channel")
    classes = config["data"].get("classes")
    given = (f"one of its {len(classes)} class words ({', '.join(f'`{c}`' for c in classes)})" if classes
             else "a caption")
    if config.get("fitted_prior"):
        prior = f"a `{config['fitted_prior']['name']}` prior fitted to its codes after training (`cvaekit fit-prior`)"
    else:
        prior = f"its `{recipe.model.prior.name}` prior" if recipe.model.prior else "its Gaussian prior"
    epochs = f"{config['epoch']} epoch{'s' if config['epoch'] != 1 else ''}"
    groups = config.get("latent_groups", 1)
    latent = (f"its {groups} latent groups, drawn top-down" if groups > 1
              else f"its {config['latent_dim']}-dimensional latent code")
    return (f"A text-to-image conditional variational autoencoder made with "
            f"[cvaekit](https://pypi.org/project/cvaekit/): given {given}, it draws {shape} {channels} pictures "
            f"of it, as many as asked, each from a new draw of {latent}. "
            f"Trained on `{recipe.data.name}` for {epochs}; the conditioner is "
            f"`{recipe.model.conditioner.name}`, the networks `{recipe.model.encoder.name}` and "
            f"`{recipe.model.decoder.name}` ({config['parameters']:,} parameters); it samples from {prior}.")


def _metrics_section(config: dict[str, Any]) -> list[str]:
    metrics = config.get("metrics") or {}
    if not metrics:
        return ["## Metrics", "", "No metrics were measured at this checkpoint (`cvaekit evaluate MODEL` measures them).", ""]
    lines = ["## Metrics", "", f"At epoch {config['epoch']}, sampling from the {config['prior']} prior "
             "(lower is better for losses and likelihoods, higher for accuracies):", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" for k, v in metrics.items()]
    return lines + [""]


def _samples_section(config: dict[str, Any], model_id: str, has_grid: bool) -> list[str]:
    if not has_grid:
        return []
    grid = config["grid"]
    lines = ["## Samples", "", f"![samples]({GRID})", ""]
    if grid["texts"]:
        texts = " ".join(_quote(t) for t in grid["texts"])
        lines += [f"One row per text, {grid['n']} samples each; the same pixels as "
                  f"`cvaekit generate {model_id} {texts} -n {grid['n']} --seed {grid['seed']}`.", ""]
    return lines


def _use_section(config: dict[str, Any], model_id: str) -> list[str]:
    texts = (config["grid"]["texts"] or config["data"].get("classes") or ["a caption"])[:2]
    shown = " ".join(_quote(t) for t in texts)
    packages = sorted({c["package"] for c in config.get("components", []) if c.get("package")})
    lines = ["## Use", "", "```bash", f"pip install {' '.join(packages) or 'cvaekit'}",
             f"cvaekit generate {model_id} {shown} -n 8 -o samples.png",
             f"cvaekit serve {model_id}                 # a page to try it",
             f"cvaekit evaluate {model_id}              # its metrics, in a local run folder",
             "```", "", "From Python:", "", "```python", "import cvaekit", "",
             f"trained = cvaekit.load_run({model_id!r})", f"rows = cvaekit.sample_rows(trained.model, {texts!r}, n=8)  "
             "# one [8, C, H, W] tensor in [0, 1] per text",
             f"cvaekit.generate({model_id!r}, {texts!r}, n=8, out='samples.png')", "```", ""]
    if config.get("text_encoder"):
        lines += [f"Its text encoder is `{config['text_encoder']}`, loaded through `transformers` (`pip install "
                  f"'cvaekit[text]'`). Offline, or to use a copy on disk, give its folder: `--text-encoder PATH` "
                  "(Python: `load_run(..., text_encoder=PATH)`).", ""]
    return lines


def _parts_section(config: dict[str, Any]) -> list[str]:
    lines = ["## Parts", "", "| kind | name | from |", "|---|---|---|"]
    lines += [f"| {c['kind']} | {c['name']} | {c['origin']} |" for c in config.get("components", [])]
    return lines + [""]


def _quote(text: str) -> str:
    return text if text.replace("-", "").replace("_", "").isalnum() else '"' + text.replace('"', '\\"') + '"'
