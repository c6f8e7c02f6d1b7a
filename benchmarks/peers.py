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
import contextlib
import io
import json
import logging
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

import cvaekit  # noqa: F401  (before torch: its thread settings apply to both libraries alike)
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from cvaekit import hookimpl, load_run, register_plugin, train
from cvaekit.components.conditioners.none import NoCondition
from cvaekit.components.datasets.fashion_mnist import fashion_mnist
from cvaekit.components.metrics.nll import ImportanceSampledNLL
from cvaekit.core.data import DataSource, Split
from cvaekit.core.likelihood import Bernoulli
from cvaekit.core.model import CVAE
from cvaekit.evaluation import EvalContext
from cvaekit.plugins import get_registry

try:
    import pythae  # noqa: F401
except ImportError:
    pythae = None
INSTALL = "pip install pythae  (for this benchmark only; cvaekit does not depend on it)"
DATASET = "peers_binarized_fashion"
LATENT, HIDDEN, COMPONENTS, IWAE_K = 20, 400, 50, 5
HIER = {"latent_dim": 4, "encoder": {"name": "ladder", "width": 48, "levels": 3, "final_side": 4},  # fashion_hier.yaml's
        "decoder": {"name": "ladder", "width": 48, "levels": 3, "groups": 2, "final_side": 4}}
HIER_TRAIN = {"kl_schedule": "linear", "kl_warmup": 2000, "free_bits": 0.02, "grad_clip": 200.0, "skip_grad_norm": 2000.0}
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

def pythae_networks():
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Sequential(nn.Linear(784, HIDDEN), nn.ReLU())
            self.mu, self.logvar = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)

        def forward(self, x):
            h = self.hidden(x.reshape(x.shape[0], -1))
            return ModelOutput(embedding=self.mu(h), log_covariance=self.logvar(h))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 784))

        def logits(self, z):
            return self.net(z).reshape(z.shape[0], 1, 28, 28)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.logits(z)))

    return Encoder(), Decoder()


def pythae_model(kind: str, seed: int):
    from pythae.models import IWAE, VAE, VAMP, IWAEConfig, VAEConfig, VAMPConfig

    torch.manual_seed(seed)
    common = dict(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
    config = {"VAE": lambda: VAEConfig(**common), "IWAE": lambda: IWAEConfig(**common, number_samples=IWAE_K),
              "VAMP": lambda: VAMPConfig(**common, number_components=COMPONENTS)}[kind]()
    cls = {"VAE": VAE, "IWAE": IWAE, "VAMP": VAMP}[kind]
    encoder, decoder = pythae_networks()
    return cls(config, encoder=encoder, decoder=decoder)


def train_pythae(kind: str, args, data: DataSource, out: Path) -> dict:
    """Train one model with pythae's pipeline and trainer at their defaults (but the shared
    settings); images/s over each epoch's training steps, from a callback."""
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    class Timer(TrainingCallback):
        def __init__(self):
            self.seconds, self.start, self.last = 0.0, 0.0, 0.0

        def on_epoch_begin(self, training_config, **kwargs):
            self.start = self.last = time.perf_counter()

        def on_train_step_end(self, training_config, **kwargs):
            self.last = time.perf_counter()

        def on_epoch_end(self, training_config, **kwargs):
            self.seconds += self.last - self.start

    model = pythae_model(kind, args.seed)
    config = BaseTrainerConfig(output_dir=str(out), num_epochs=args.epochs, learning_rate=args.lr,
                               per_device_train_batch_size=args.batch_size, seed=args.seed,
                               keep_best_on_train=True, no_cuda=True)  # without eval data it keeps none otherwise
    images = data.train.head(args.train_images).images.float() / 255
    timer = Timer()
    with contextlib.redirect_stdout(io.StringIO()):
        TrainingPipeline(model=model, training_config=config)(train_data=images, callbacks=[timer])
    return {"rate": len(images) * args.epochs / timer.seconds, "model": model.eval()}


def pythae_per_image(model, ctx: EvalContext, samples: int) -> torch.Tensor:
    """pythae's own estimator (`get_nll`), one image per call to get each image's value."""
    images = torch.cat([x for x, _ in ctx.batches()])
    torch.manual_seed(ctx.seed)
    values = []
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):  # VAMP's get_nll prints as it goes
        for x in images:
            values.append(-model.get_nll(x[None], n_samples=samples, batch_size=samples))
    return torch.tensor(values, dtype=torch.float64)


class Wrapped(nn.Module):
    """A pythae network as a cvaekit encoder (x, cond) -> (mu, logvar) or decoder (z, cond) -> logits."""

    def __init__(self, net: nn.Module, decoder: bool):
        super().__init__()
        self.net, self.decoder = net, decoder

    def forward(self, x, cond):
        if self.decoder:
            return self.net.logits(x)
        out = self.net(x)
        return out.embedding, out.log_covariance


class PseudoInputPrior(nn.Module):
    """pythae's VampPrior as a cvaekit prior: its log p(z) with the Gaussian constant that pythae
    leaves out (its estimator drops it from q and p alike; cvaekit's keeps it in both)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def log_prob(self, z, cond):
        return self.model._log_p_z(z) - 0.5 * z.shape[-1] * math.log(2 * math.pi)

    def sample(self, cond, generator=None, temperature=1.0):
        raise NotImplementedError("only its density is needed here")


def as_cvae(model, data: DataSource) -> CVAE:
    info = data.info()
    prior = PseudoInputPrior(model) if model.model_name == "VAMP" else None
    return CVAE(NoCondition(data=info), Wrapped(model.encoder, False), Wrapped(model.decoder, True),
                LATENT, info, prior=prior, likelihood=Bernoulli()).eval()


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
