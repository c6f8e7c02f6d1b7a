"""How well samples follow their text, against the ceiling the decoder sets.

    python benchmarks/caption_fidelity.py RUN                     # a trained run
    python benchmarks/caption_fidelity.py recipes/shapes_best.yaml [--set k=v ...] [--fit-prior flow]
    python benchmarks/caption_fidelity.py recipes/shapes_best.yaml recipes/shapes_hier.yaml   # side by side

For caption runs it prints the share of images that the data set's checker accepts for
their caption (shapes_captions: the shapes checker, by number of shapes; fashion_captions: the
Fashion-MNIST judge cell by cell, by number of items), for: the real test images;
reconstructions (posterior mean); posterior samples (z drawn from q(z | x, c): what a perfect
prior would give, the yardstick for a prior); samples at temperatures 1, 0.5 and 0 (and, for a
hierarchy, the top group at 1 with the lower ones at 0.5 and at 0; with --guidance G, at guidance
scale G); and the
temperature-1 samples against shuffled captions (what a model that ignores the text scores).
For a hierarchy, also which group's prior loses the caption: the top k groups taken from
the test picture's posterior and the rest drawn from their priors, for each k.
Beside it, so that fidelity is never bought with collapse: how many of the 4 grid cells the
16 samples of one one-shape caption use, and `fid_random` of the samples. For labelled runs
(Fashion-MNIST) it prints conditional accuracy the same way, beside the judge's accuracy on
real test images and on reconstructions.

With a recipe it trains it first (and with --fit-prior fits that prior to the trained codes),
and prints the wall time of each step; other jobs on the machine change those times. Given
several runs or recipes (a single-latent one and a hierarchical one, say), it ends with one
table of them side by side: latent groups, training wall time and images/s, sampling images/s,
the judging's wall time, and the fidelity of posterior samples and of samples at temperature 1.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import cvaekit  # noqa: F401  (before torch: it has OpenMP wait passively, so runs can share the cores)
import torch

from cvaekit.components.datasets import fashion_captions as fashion
from cvaekit.components.datasets.shapes import COLOURS, parse_caption
from cvaekit.components.metrics.cond_accuracy import ConditionalAccuracy
from cvaekit.components.metrics.fashion_fidelity import fashion_judge, matches, read
from cvaekit.components.metrics.fid import FID
from cvaekit.components.metrics.judge import accuracy
from cvaekit.components.metrics.shapes_fidelity import check, colour_masks, failure, find_shape
from cvaekit.core.guidance import check_guidance, check_guided_run
from cvaekit.core.hierarchy import GroupDraw
from cvaekit.evaluation import EvalContext
from cvaekit.fit_prior import fit_prior
from cvaekit.plugins import get_registry
from cvaekit.recipe import FIT_PRIOR_DEFAULTS
from cvaekit.runs import load_run
from cvaekit.training import train

TEMPERATURES = (1.0, 0.5, 0.0)
LOWER_TEMPERATURES = (0.5, 0.0)  # a hierarchy's lower groups, its top group at 1
SAMPLING: dict[str, float] = {}


@torch.no_grad()
def images_by_mode(model, images: torch.Tensor, raw, seed: int, batch: int = 256,
                   guidance: tuple[float, ...] = ()) -> dict[str, torch.Tensor]:
    """Real, reconstructed, posterior-sampled and prior-sampled images for the same conditions
    (and samples at temperature 1 under each `guidance` scale, for a run trained with
    train.cond_dropout)."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, list[torch.Tensor]] = {"real": [images]}
    sampling = 0.0
    for i in range(0, len(images), batch):
        x, r = images[i:i + batch].to(model.device), raw[i:i + batch]
        cond = model.condition(r)
        out.setdefault("reconstructions", []).append(model.likelihood.mean(model.decode_mean(x, cond)).cpu())
        out.setdefault("posterior samples", []).append(model.likelihood.mean(posterior_output(model, x, cond, gen)).cpu())
        for t in TEMPERATURES:
            start = time.perf_counter()
            out.setdefault(f"samples, temperature {t:g}", []).append(model.sample(r, gen, temperature=t).cpu())
            sampling += (time.perf_counter() - start) * (t == 1.0)
        for t in LOWER_TEMPERATURES if model.group_count > 1 else ():  # the top group decides, the rest refine
            temps = [1.0] + [t] * (model.group_count - 1)
            out.setdefault(f"samples, top at 1, lower at {t:g}", []).append(model.sample(r, gen, temperature=temps).cpu())
        for g in guidance:
            out.setdefault(f"samples, guidance {g:g}", []).append(model.sample(r, gen, guidance=g).cpu())
    SAMPLING["images_per_s"] = len(images) / max(sampling, 1e-9)  # temperature 1, for the side-by-side table
    return {k: torch.cat(v) for k, v in out.items()}


def posterior_output(model, x: torch.Tensor, cond, gen: torch.Generator) -> torch.Tensor:
    """The decoder's output for z drawn from q(z | x, c) (every group's, for a hierarchical
    model), the draw seeded from `gen`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
        return model.posterior(x, cond).out


def cells_used(model, captions: list[str], seed: int, per_caption: int = 16) -> float:
    """Mean number of the 2x2 grid's cells that the samples of one one-shape caption put it in."""
    gen = torch.Generator().manual_seed(seed)
    counts = []
    for caption in captions:
        colour = next(iter(parse_caption(caption).shapes))
        samples = model.sample([caption] * per_caption, gen).cpu()
        size = samples.shape[-1]
        cells = set()
        for image in samples:
            found = find_shape(colour_masks(image)[list(COLOURS).index(colour)], min_pixels=4)
            if found is not None:
                y, x = found.centre
                cells.add((y >= size / 2, x >= size / 2))
        counts.append(len(cells))
    return sum(counts) / max(len(counts), 1)


class ShapesChecker:
    """shapes_captions: the shapes checker; a caption's size is its number of shapes."""

    unit = "shape"

    def passes(self, captions: list[str], images: torch.Tensor) -> list[bool]:
        return [check(c, im) for c, im in zip(captions, images)]

    def size(self, caption: str) -> int:
        return len(parse_caption(caption).shapes)

    def why(self, captions: list[str], images: torch.Tensor) -> list[str | None]:
        """Each image's first failure: a shape missing, of the wrong kind or size, or a relation."""
        return [failure(c, im) for c, im in zip(captions, images)]


class FashionChecker:
    """fashion_captions: the Fashion-MNIST judge cell by cell; a caption's size is its items."""

    unit = "item"

    def __init__(self):
        self.judge = fashion_judge()

    def passes(self, captions: list[str], images: torch.Tensor) -> list[bool]:
        return [matches(fashion.parse_caption(c), s) for c, s in zip(captions, read(self.judge, images))]

    def size(self, caption: str) -> int:
        return len(fashion.parse_caption(caption).items)


def caption_table(trained, data, n: int, seed: int, guidance: tuple[float, ...] = ()) -> dict:
    model = trained.model
    for scale in guidance:
        check_guided_run(trained.recipe.train.cond_dropout, check_guidance(scale))
    checker = FashionChecker() if trained.recipe.data.name == "fashion_captions" else ShapesChecker()
    test = data.test.head(n)
    images, captions = test.batch(torch.arange(len(test)), caption="first")
    shapes = [checker.size(c) for c in captions]
    modes = images_by_mode(model, images, captions, seed, guidance=guidance)
    groups = {"all": range(len(captions))} | {
        f"{k}-{checker.unit}": [i for i, s in enumerate(shapes) if s == k] for k in sorted(set(shapes))}
    print(f"\n{trained.run.path.name} (epoch {trained.epoch}, prior: {prior_name(trained)}), "
          f"{len(captions)} test captions")
    print(f"| images | {' | '.join(f'{g} ({len(ix)})' for g, ix in groups.items())} |")
    print("|---|" + "---|" * len(groups))
    passed = {}
    for mode, imgs in modes.items():
        ok = passed[mode] = checker.passes(captions, imgs)
        print(f"| {mode} | " + " | ".join(f"{sum(ok[i] for i in ix) / max(len(ix), 1):.3f}" for ix in groups.values()) + " |")
    shuffled = captions[1:] + captions[:1]
    t1 = modes["samples, temperature 1"]
    print(f"| samples against shuffled captions | {sum(checker.passes(shuffled, t1)) / len(t1):.3f} |")
    if isinstance(checker, ShapesChecker):
        reasons = ("missing", "kind", "size", "relation")
        print("\nWhy images fail (the first failure of each image; shares of all images):")
        print("| images | " + " | ".join(reasons) + " |\n|---|" + "---|" * len(reasons))
        for mode in ("reconstructions", "posterior samples", "samples, temperature 1",
                     *(f"samples, guidance {g:g}" for g in guidance)):
            found = checker.why(captions, modes[mode])
            print(f"| {mode} | " + " | ".join(f"{found.count(r) / len(found):.3f}" for r in reasons) + " |")
    if model.group_count > 1:
        group_table(model, checker, images, captions, seed)
    ones = list(dict.fromkeys(c for c, s in zip(captions, shapes) if s == 1))[:40]
    if ones and isinstance(checker, ShapesChecker):
        print(f"\nOne-shape captions: the 16 samples of a caption use {cells_used(model, ones, seed):.2f} "
              f"of the 4 cells on average ({len(ones)} captions; the data puts a shape in any cell).")
    fid = FID(features="random")(EvalContext(model, data, test, seed=seed))
    print(f"fid_random of temperature-1 samples: {fid['fid_random']:.2f}")
    ratio = sum(passed["samples, temperature 1"]) / max(sum(passed["posterior samples"]), 1)
    print(f"Samples at temperature 1 reach {ratio:.2f} of the posterior-sample fidelity.")
    return {mode: sum(passed[mode]) / len(captions) for mode in ("posterior samples", "samples, temperature 1")}


@torch.no_grad()
def group_table(model, checker, images: torch.Tensor, captions: list[str], seed: int, batch: int = 200) -> None:
    """Which group's prior loses the caption: the top k groups taken from the test picture's
    posterior and the rest drawn from their priors at temperature 1, for each k."""
    groups = model.group_count
    gens, out = [torch.Generator().manual_seed(seed) for _ in range(groups)], [[] for _ in range(groups)]
    for i in range(0, len(images), batch):
        x, cond = images[i:i + batch].to(model.device), model.condition(captions[i:i + batch])
        held = model.posterior(x, cond).groups  # one encoding serves every k
        for k in range(groups):
            draws = [GroupDraw(z=g.z) for g in held[:k]] + model.draws(1.0, gens[k])[k:]
            out[k].append(model.likelihood.mean(model.prior_sample(cond, draws).out).cpu())
    shares = [sum(checker.passes(captions, torch.cat(images_k))) / len(captions) for images_k in out]
    print("\nWhere the priors lose the caption: the top k groups from the picture's posterior, the rest "
          "drawn from their priors at temperature 1:")
    print("| top groups from the posterior | " + " | ".join(map(str, range(model.group_count))) + " |")
    print("|---|" + "---|" * model.group_count + "\n| samples that pass | " + " | ".join(f"{v:.3f}" for v in shares) + " |")


def label_table(trained, data, n: int, seed: int) -> None:
    model = trained.model
    metric = ConditionalAccuracy()
    ctx = EvalContext(model, data, data.test.head(n), seed=seed)
    judge = metric.judge(ctx)
    images, labels = ctx.test.batch(torch.arange(len(ctx.test)))
    modes = images_by_mode(model, images, labels, seed)
    print(f"\n{trained.run.path.name} (epoch {trained.epoch}, prior: {prior_name(trained)}), "
          f"{len(labels)} test images")
    print("| images | judge accuracy |\n|---|---|")
    for mode, imgs in modes.items():
        print(f"| {mode} | {accuracy(judge, imgs, labels):.3f} |")
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    print(f"| samples against shuffled labels | {accuracy(judge, modes['samples, temperature 1'], shuffled):.3f} |")
    return {mode: accuracy(judge, modes[mode], labels) for mode in ("posterior samples", "samples, temperature 1")}


def prior_name(trained) -> str:
    if trained.fitted_prior is not None:
        return f"fitted {type(trained.model.prior).__name__}"
    spec = trained.recipe.model.prior
    return "N(0, I)" if spec is None else spec.name


def measure(target: Path, args) -> dict:
    """Train `target` when it is a recipe (and fit a prior when asked), then judge it; its row
    of the side-by-side table."""
    row, start = {}, time.perf_counter()
    if target.is_dir():
        run = target
    else:
        run = train(target, overrides=args.overrides)
        row["train s"] = time.perf_counter() - start
        print(f"trained {run.name} in {row['train s']:.0f} s (a recipe's fit_prior stage included)")
    if args.fit_prior:
        fit = fit_prior(run, args.fit_prior, args.prior_set, epochs=args.fit_epochs, measure=False)
        print(f"fitted a {fit.prior} prior in {fit.seconds:.0f} s")
    registry = get_registry()
    trained = load_run(run, registry=registry)
    epochs = [r for r in trained.run.records() if r.get("kind") == "train" and "images_per_s" in r]
    if epochs:
        row["train images/s"] = sum(r["images_per_s"] * r["seconds"] for r in epochs) / sum(r["seconds"] for r in epochs)
    data = registry.build("dataset", trained.recipe.data.name, trained.recipe.data.params)
    start = time.perf_counter()
    table = label_table if data.train.labelled else caption_table
    row.update(table(trained, data, args.captions, args.seed, **({"guidance": tuple(args.guidance)} if table is caption_table else {})))
    row.update({"judging s": time.perf_counter() - start, "sample images/s": SAMPLING["images_per_s"],
                "run": run.name, "latent groups": trained.model.group_count, "prior": prior_name(trained)})
    return row


def side_by_side(rows: list[dict]) -> None:
    columns = ["run", "latent groups", "prior", "train s", "train images/s", "sample images/s", "judging s",
               "posterior samples", "samples, temperature 1"]
    print("\nSide by side (wall times on this machine, as loaded as it was):")
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    shares = ("posterior samples", "samples, temperature 1")
    for row in rows:
        cells = [f"{row[c]:.3f}" if c in shares else f"{row[c]:,.1f}" if isinstance(row.get(c), float) else
                 str(row.get(c, "")) for c in columns]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", help="run folders, or recipes to train first")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override (every recipe)")
    parser.add_argument("--fit-prior", default=None, help="fit this prior to the trained codes first")
    parser.add_argument("--prior-set", action="append", default=[], help="a parameter of the fitted prior")
    parser.add_argument("--fit-epochs", type=int, default=FIT_PRIOR_DEFAULTS["epochs"])
    parser.add_argument("-n", "--captions", type=int, default=600, help="test captions or images judged")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--guidance", type=float, action="append", default=[],
                        help="also samples at this guidance scale (repeat it; a run trained with train.cond_dropout)")
    args = parser.parse_args()
    random.seed(args.seed)
    torch.set_num_threads(torch.get_num_threads())
    rows = [measure(Path(target), args) for target in args.targets]
    if len(rows) > 1:
        side_by_side(rows)


if __name__ == "__main__":
    main()
