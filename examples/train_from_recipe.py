"""Train from a Recipe built in Python (no YAML): the offline caption model of the study.

    python examples/train_from_recipe.py                      # 5 epochs on 2,000 shapes
    python examples/train_from_recipe.py --epochs 1 --n-train 128

Prints the run folder last, so `generate_from_run.py` can pick it up.
"""

from __future__ import annotations

import argparse

from cvaekit.recipe import ComponentSpec, EvalConfig, InjectionSpec, ModelConfig, Recipe, TrainConfig, load_recipe
from cvaekit.training import train


def make_recipe(epochs: int, n_train: int, runs_dir: str) -> Recipe:
    """Captioned shapes, a text encoder learned with the model, the caption concatenated to
    the image at the encoder's input (the study's "early concat")."""
    return Recipe(
        name="shapes_from_python",
        runs_dir=runs_dir,
        data=ComponentSpec("shapes_captions", {"image_size": 32, "n_train": n_train, "n_test": 64}),
        model=ModelConfig(
            conditioner=ComponentSpec("learned_text", {"dim": 32}),
            encoder=ComponentSpec("conv", {"channels": [16, 32, 64]}),
            decoder=ComponentSpec("deconv", {"channels": [16, 32, 64], "hidden": 256}),
            latent_dim=8,
            injections=[InjectionSpec("early_concat", {"proj_dim": 8}, at=0, net="encoder")],
        ),
        train=TrainConfig(epochs=epochs, batch_size=64, lr=1e-3, checkpoint_every=epochs),
        eval=EvalConfig(metrics=[ComponentSpec("nelbo")], limit=64, samples_per_condition=4),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--runs-dir", default="runs")
    args = parser.parse_args()
    recipe = make_recipe(args.epochs, args.n_train, args.runs_dir)
    # Optional, but it catches typos before anything runs: validate the plain form like a YAML
    # recipe (this also fills in every component's default parameters).
    recipe = load_recipe(recipe.to_dict())
    run = train(recipe, progress=False)
    print(run)


if __name__ == "__main__":
    main()
