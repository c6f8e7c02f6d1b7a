"""Peers: pythae and cvaekit side by side on statically binarized Fashion-MNIST.

    python benchmarks/peers.py [--epochs 3] [--samples 100] [--test-images 1000] [--tiny]

The same data for both (Fashion-MNIST binarized once: each pixel a Bernoulli draw of its grey
value, from a generator seeded with `--seed`), the same networks (the study's MLP, 784-400-20,
ReLU, unconditional: cvaekit's `none` conditioner), epochs, batch, learning rate (Adam) and
seed, for a plain VAE, IWAE (k = 5) and the VampPrior (50 pseudo-inputs). For each: training
images/s (the epochs' training time only, each library timed by its own loop: cvaekit's
metrics.jsonl, pythae's trainer through a callback), and the test NLL by importance sampling
with `--samples` samples per image on the first `--test-images` test images, in nats:

- each library's estimator on its own model (pythae's `model.get_nll`, called image by image
  to get each image's value; cvaekit's `nll` metric),
- cvaekit's estimator (`cvaekit.core.objectives.log_weights`, through the `nll` metric) on
  pythae's model, its networks wrapped into a `CVAE`,
- the paired difference of the two estimators on pythae's model (same images), with its
  standard error.

pythae is not a dependency of cvaekit: without it (`pip install pythae`) its columns are
skipped. cvaekit's VampPrior is the built-in prior `vamp` (equal weights, as pythae's, with
the same number of pseudo-inputs). `--hier` adds cvaekit's hierarchical model (the `ladder`
networks of `fashion_hier.yaml`, unconditional, its KL warm-up, free bits and skipped steps;
pythae has none) beside them. Every row gives its wall time (training and the NLL). `--tiny` (a
few hundred images, 1 epoch, 10 samples) is for CI.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from pythae_side import (
    COMPONENTS,
    HIDDEN,
    IWAE_K,
    LATENT,
    as_cvae,
    pythae_per_image,
    train_pythae,
)
from rich.console import Console
from rich.table import Table

import cvaekit  # noqa: F401  (before torch: its thread settings apply to both libraries alike)
from cvaekit import hookimpl, load_run, register_plugin, train
from cvaekit.components.datasets.fashion_mnist import fashion_mnist
from cvaekit.components.metrics.nll import ImportanceSampledNLL
from cvaekit.core.data import DataSource, Split
from cvaekit.core.model import CVAE
from cvaekit.evaluation import EvalContext
from cvaekit.plugins import get_registry

try:
    import pythae
except ImportError:
    pythae = None
INSTALL = "pip install pythae  (for this benchmark only; cvaekit does not depend on it)"
DATASET = "peers_binarized_fashion"
HIER = {"latent_dim": 4, "encoder": {"name": "ladder", "width": 48, "levels": 3, "final_side": 4},  # fashion_hier.yaml's
        "decoder": {"name": "ladder", "width": 48, "levels": 3, "groups": 2, "final_side": 4}}
HIER_TRAIN = {"kl_schedule": "linear", "kl_warmup": 2000, "free_bits": 0.02, "grad_clip": 200.0, "skip_grad_factor": 10.0}
console = Console(width=150)


def binarized(seed: int) -> DataSource:
    """Fashion-MNIST, each pixel drawn once from Bernoulli(grey value) with a seeded generator;
    uint8 0 or 255, so that both libraries read exactly 0 or 1."""
    data = fashion_mnist()
    gen = torch.Generator().manual_seed(seed)
    splits = [Split(torch.bernoulli(s.images.float() / 255, generator=gen).to(torch.uint8) * 255, s.conditions)
              for s in (data.train, data.test)]
    return DataSource(*splits, classes=data.classes)


class Plugin:
    def __init__(self, data: DataSource):
        self.data = data

    @hookimpl
    def cvaekit_register(self, registry):
        def peers_binarized_fashion() -> DataSource:
            """Statically binarized Fashion-MNIST (benchmarks/peers.py)."""
            return self.data

        registry.add("dataset", DATASET, peers_binarized_fashion)


def context(model: CVAE, data: DataSource, n: int, seed: int) -> EvalContext:
    return EvalContext(model, data, data.test.head(n), seed=seed)


def cvaekit_per_image(model: CVAE, ctx: EvalContext, samples: int) -> torch.Tensor:
    """cvaekit's `nll` metric, image by image, as `run_metrics` runs it (eval mode, seeded)."""
    model.eval()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(ctx.seed)
        return ImportanceSampledNLL(samples=samples).per_image(ctx).double()


def vamp_prior_name() -> str | None:
    names = {name for kind, name in get_registry().components if kind == "prior"}
    return next((n for n in ("vamp", "vampprior", "vamp_prior") if n in names), None)


def train_cvaekit(kind: str, args, runs: Path) -> dict | None:
    """Train one model with cvaekit; its images/s and the model (None if cvaekit lacks it)."""
    model = {"latent_dim": LATENT, "conditioner": "none",
             "encoder": {"name": "mlp", "hidden": HIDDEN}, "decoder": {"name": "mlp", "hidden": HIDDEN}}
    objective = {"objective": "iwae", "iwae_k": IWAE_K} if kind == "IWAE" else {}
    if kind == "HIER":
        model, objective = {**HIER, "conditioner": "none"}, HIER_TRAIN
    if kind == "VAMP":
        name = vamp_prior_name()
        if name is None:
            return None
        model["prior"] = {"name": name, "pseudo_inputs": COMPONENTS, "conditional_weights": False} \
            if name == "vamp" else name
    recipe = {"name": f"peers_{kind.lower()}", "seed": args.seed, "runs_dir": str(runs), "data": {"name": DATASET},
              "model": model, "eval": {"metrics": []},
              "train": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                        "checkpoint_every": args.epochs, "limit": args.train_images, **objective}}
    run = train(recipe, progress=False)
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in epochs if r["kind"] == "train"]
    rate = sum(r["images_per_s"] * r["seconds"] for r in epochs) / sum(r["seconds"] for r in epochs)
    return {"rate": rate, "model": load_run(run).model}


# --- pythae ---------------------------------------------------------------------------------

# --- the table ------------------------------------------------------------------------------

def mean_se(values: torch.Tensor, digits: int = 1) -> str:
    se = values.std().item() / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{values.mean().item():.{digits}f} ± {se:.{digits}f}"


def neighbours() -> str:
    """What else runs on the machine: the load average and other python processes."""
    ps = subprocess.run(["ps", "-eo", "pid,pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    others = [line[:110] for line in ps.splitlines()[1:] if "python" in line and str(os.getpid()) not in line.split()[0]]
    return f"load average {os.getloadavg()}; other python processes: {len(others)}\n  " + "\n  ".join(others[:6])


def measure(kind: str, lib: str, args, data: DataSource, work: Path) -> dict | None:
    started = time.perf_counter()
    if lib == "cvaekit":
        result = train_cvaekit(kind, args, work / "runs")
        if result is not None:
            ctx = context(result["model"], data, args.test_images, args.seed)
            result["own"] = cvaekit_per_image(result["model"], ctx, args.samples)
    else:
        result = train_pythae(kind, args, data, work / f"pythae-{kind}")
        ctx = context(as_cvae(result["model"], data), data, args.test_images, args.seed)
        result["own"] = pythae_per_image(result["model"], ctx, args.samples)
        result["cvaekit"] = cvaekit_per_image(ctx.model, ctx, args.samples)
    if result is not None:
        result["wall"] = time.perf_counter() - started
        console.print(f"{kind} {lib}: {result['wall']:.0f} s", highlight=False)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=100, help="importance samples per test image")
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--train-images", type=int, default=None, help="the first N training images (all)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="300 images, 1 epoch, 10 samples on 50 test images (CI)")
    parser.add_argument("--hier", action="store_true", help="add cvaekit's hierarchical model (ladder networks)")
    args = parser.parse_args()
    if args.tiny:
        args.epochs, args.samples, args.test_images, args.train_images = 1, 10, 50, 300
    for name in list(logging.root.manager.loggerDict):  # pythae logs its settings at INFO to stdout
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if pythae is None:
        console.print(f"pythae is not installed, so its columns are skipped. To compare with it: {INSTALL}",
                      highlight=False)
    work = Path(tempfile.mkdtemp(prefix="cvaekit-peers-"))
    atexit.register(shutil.rmtree, work, True)  # the trained runs are measured, not kept
    console.print(f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} "
                  f"(both libraries, one process); {neighbours()}", highlight=False)
    data = binarized(args.seed)
    register_plugin(Plugin(data), name="peers")
    libs = ["pythae", "cvaekit"] if pythae is not None else ["cvaekit"]
    results = {}
    for i, kind in enumerate(("VAE", "IWAE", "VAMP")):
        for lib in libs if i % 2 == 0 else libs[::-1]:  # each library first in turn
            results[kind, lib] = measure(kind, lib, args, data, work)
    if args.hier:
        results["HIER", "cvaekit"] = measure("HIER", "cvaekit", args, data, work)
    print_table(results, libs, args)
    console.print(f"After: {neighbours()}", highlight=False)


def print_table(results: dict, libs: list[str], args) -> None:
    train_images = args.train_images or 60000
    table = Table(title=f"Statically binarized Fashion-MNIST, MLP 784-{HIDDEN}-{LATENT}, {args.epochs} epochs of "
                        f"{train_images} images, batch {args.batch_size}, Adam {args.lr:g}; test NLL in nats "
                        f"(± standard error), {args.samples} importance samples, {args.test_images} test images")
    for column in ("model", "library", "train images/s", "NLL, its own estimator", "NLL, cvaekit's estimator",
                   "cvaekit's - own (paired)", "wall s"):
        table.add_column(column, justify="left" if column in ("model", "library") else "right")
    for kind, lib in [(k, lib) for k in ("VAE", "IWAE", "VAMP") for lib in ("pythae", "cvaekit")] + \
            [("HIER", "cvaekit")] * (("HIER", "cvaekit") in results):
        if lib not in libs:
            table.add_row(kind, lib, "not installed", INSTALL.split("  ")[0], "", "", "")
            continue
        r = results[kind, lib]
        if r is None:
            table.add_row(kind, lib, "not built in yet", "", "", "", "")
        elif lib == "cvaekit":
            table.add_row(kind, lib, f"{r['rate']:,.0f}", mean_se(r["own"]), "(the same)", "", f"{r['wall']:.0f}")
        else:
            table.add_row(kind, lib, f"{r['rate']:,.0f}", mean_se(r["own"]), mean_se(r["cvaekit"]),
                          mean_se(r["cvaekit"] - r["own"], 2), f"{r['wall']:.0f}")
    if ("HIER", "cvaekit") in results:
        table.caption = (f"HIER: cvaekit's ladder networks (fashion_hier.yaml's: {HIER['decoder']['levels']} "
                         f"resolutions x {HIER['decoder']['groups']} groups of {HIER['latent_dim']} channels, width "
                         f"{HIER['decoder']['width']}), unconditional; pythae has no hierarchical VAE.")
    console.print(table)


if __name__ == "__main__":
    main()
