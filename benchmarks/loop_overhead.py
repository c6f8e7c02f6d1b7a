"""The training loop against its floor: cvaekit's loop, its own bare step, and pythae's trainer,
for the study's MLP (recipes/fashion_onehot.yaml, or any recipe with --recipe), under OpenMP thread settings.

    python benchmarks/loop_overhead.py                         # cvaekit's setting and OpenMP's default
    python benchmarks/loop_overhead.py --settings cvaekit unset OMP_WAIT_POLICY=ACTIVE \\
        OMP_WAIT_POLICY=PASSIVE,GOMP_SPINCOUNT=10000 --at-once 1 2 --contestants loop

Contestants (each run in a process of its own, since OpenMP reads its settings when torch loads):

- loop: `cvaekit.train` on the recipe (its images/s: the last epoch's, from metrics.jsonl);
- bare: the same model (`cvaekit.assembly.build_model`, the same seed) trained in plain PyTorch
  on resident tensors: index a batch of the uint8 images and make it float (as the loop does:
  indexing a float copy of the images was slower), forward, backward, fused Adam, nothing else
  (subnormals flushed, as cvaekit's loop does); the last epoch timed;
- against: the loop of an older checkout (`--against DIR`), to see what a change to the loop buys;
- pythae: pythae's trainer at its defaults on an MLP of the same sizes (784-400-20,
  unconditional; `pip install pythae`); the last epoch's training steps timed by a callback.

Settings: `cvaekit` (no OpenMP variable set: cvaekit chooses, cvaekit/runtime/threads.py),
`unset` (OpenMP's own defaults: torch is loaded before cvaekit, so cvaekit's choice does not
apply), or variables the user sets (`OMP_WAIT_POLICY=ACTIVE,GOMP_SPINCOUNT=1000`; a value the
user set wins over cvaekit's). `--at-once 2` also runs two of each at once (images/s of each).
The configurations take turns round after round (`--rounds`), so that all meet the same load;
the table gives each one's median, and each one's ratio to the bare step in the same setting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "fashion_onehot.yaml"
OMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# --- the workers: one configuration in this process ------------------------------------------

def worker_loop(args, extra: Sequence[str] = ()) -> float:
    """The last epoch's images/s of `cvaekit.train` on the recipe (`extra`: more --set values)."""
    from cvaekit import train

    with tempfile.TemporaryDirectory(prefix="cvaekit-loop-") as runs:  # the run is measured, not kept
        sets = [f"train.epochs={args.epochs}", f"train.checkpoint_every={args.epochs}", "eval.metrics=[]",
                f"runs_dir={runs}"] + ([f"train.limit={args.images}"] if args.images else []) + list(extra)
        run = train(str(args.recipe), overrides=sets, progress=False)
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "train"][-1]["images_per_s"]


def bare_parts(recipe_path):
    """The recipe's data, model (its seed) and fused Adam, as a plain PyTorch loop would build them."""
    import torch

    from cvaekit.assembly import build_dataset, build_model
    from cvaekit.plugins import get_registry
    from cvaekit.recipe import load_recipe

    recipe = load_recipe(str(recipe_path))
    registry = get_registry()
    torch.manual_seed(recipe.seed)
    data = build_dataset(recipe, registry)
    model = build_model(recipe.model, data.info(), registry)
    return recipe, data, model, torch.optim.Adam(model.parameters(), lr=recipe.train.lr, fused=True)


def worker_bare(args) -> float:
    import torch

    recipe, data, model, optimizer = bare_parts(args.recipe)
    split = data.train.head(args.images)
    images, conditions = split.images, split.conditions  # uint8, a batch made float as the loop makes it
    if not split.labelled:  # captions: each image's first, given as text (the conditioner encodes it)
        conditions = [caps[0] for caps in conditions]
    torch.set_flush_denormal(True)
    generator = torch.Generator().manual_seed(recipe.seed)
    for _ in range(args.epochs):
        start = time.perf_counter()
        for index in torch.randperm(len(images), generator=generator).split(recipe.train.batch_size):
            batch = conditions[index] if split.labelled else [conditions[i] for i in index.tolist()]
            loss = model(images[index].float().div_(255), batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - start
    return len(images) / seconds


def worker_pythae(args) -> float:
    import logging

    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from peers import pythae_networks  # noqa: E402  (after torch: the setting is this process's)
    from pythae.models import VAE, VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    from cvaekit.components.datasets.fashion_mnist import fashion_mnist

    class LastEpoch(TrainingCallback):
        def on_epoch_begin(self, training_config, **kwargs):
            self.start = self.last = time.perf_counter()

        def on_train_step_end(self, training_config, **kwargs):
            self.last = time.perf_counter()

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)
    images = fashion_mnist().train.head(args.images).images.float() / 255
    torch.manual_seed(0)
    encoder, decoder = pythae_networks()
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=20, reconstruction_loss="bce"), encoder, decoder)
    timer = LastEpoch()
    with tempfile.TemporaryDirectory(prefix="pythae-") as out:  # pythae's checkpoints are measured, not kept
        config = BaseTrainerConfig(output_dir=out, num_epochs=args.epochs, learning_rate=1e-3,
                                   per_device_train_batch_size=128, seed=0, keep_best_on_train=True, no_cuda=True)
        TrainingPipeline(model=model, training_config=config)(train_data=images, callbacks=[timer])
    return len(images) / (timer.last - timer.start)


def worker(args) -> None:
    if args.setting == "unset":
        import torch  # noqa: F401  (OpenMP reads its defaults now; cvaekit's choice comes too late)
    import cvaekit  # noqa: F401

    rate = {"loop": worker_loop, "against": worker_loop, "bare": worker_bare, "pythae": worker_pythae}[args.worker](args)
    print(json.dumps({"images_per_s": rate, "omp": {k: os.environ.get(k) for k in OMP_VARIABLES}}))


# --- the parent: configurations in turns -----------------------------------------------------

def env_for(setting: str, code: Path = ROOT) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")])
    if setting not in ("cvaekit", "unset"):
        env.update(pair.split("=", 1) for pair in setting.split(","))
    return env


def start(contestant: str, setting: str, args) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--worker", contestant, "--setting", setting, "--epochs", str(args.epochs),
           "--recipe", str(args.recipe)]
    cmd += ["--images", str(args.images)] if args.images else []
    code = args.against.resolve() if contestant == "against" else ROOT
    return subprocess.Popen(cmd, env=env_for(setting, code), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def measure(contestant: str, setting: str, n: int, args) -> list[float]:
    procs = [start(contestant, setting, args) for _ in range(n)]
    rates = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"{contestant} ({setting}) failed:\n{err[-3000:]}")
        rates.append(json.loads(out.strip().splitlines()[-1])["images_per_s"])
    return rates


def neighbours() -> str:
    ps = subprocess.run(["ps", "-eo", "pid,pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    mine = {str(os.getpid())}
    others = [line[:110] for line in ps.splitlines()[1:] if "python" in line and line.split()[0] not in mine]
    return f"load average {os.getloadavg()[0]:.2f}; other python processes: {len(others)}\n  " + "\n  ".join(others[:6])


def configurations(args) -> list[tuple[str, str, int]]:
    configs = []
    for setting in args.settings:
        for contestant in args.contestants:
            own = "unset" if "unset" in args.settings else args.settings[0]  # pythae at its defaults
            if contestant == "pythae" and setting != own and not args.pythae_every_setting:
                continue
            configs += [(contestant, setting, n) for n in args.at_once if n == 1 or contestant == "loop"]
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", default=["cvaekit", "unset"])
    parser.add_argument("--contestants", nargs="+", default=["loop", "bare", "pythae"],
                        choices=["loop", "against", "bare", "pythae"])
    parser.add_argument("--against", type=Path, help="a checkout of older cvaekit code: its loop is the contestant "
                                                     "'against' (e.g. `git archive COMMIT | tar -x -C ../old`)")
    parser.add_argument("--at-once", type=int, nargs="+", default=[1], help="runs at once (2: the loop, two at once)")
    parser.add_argument("--pythae-every-setting", action="store_true", help="pythae in every setting, not only in 'unset' (its defaults; else the first)")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="the recipe (pythae trains only the study's MLP)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run; the last is timed")
    parser.add_argument("--images", type=int, default=None, help="the first N training images (all 60,000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if "pythae" in args.contestants and subprocess.run([sys.executable, "-c", "import pythae"],
                                                       capture_output=True).returncode:
        print("pythae is not installed; its row is skipped (pip install pythae, for this benchmark only).")
        args.contestants.remove("pythae")
    if "pythae" in args.contestants and args.recipe.resolve() != RECIPE.resolve():
        print("pythae trains only the study's MLP (recipes/fashion_onehot.yaml); its row is skipped for this recipe.")
        args.contestants.remove("pythae")
    if args.against and "against" not in args.contestants:
        args.contestants.append("against")
    configs = configurations(args)
    print(f"{os.cpu_count()} cores; {len(configs)} configurations x {args.rounds} rounds, {args.epochs} epochs of "
          f"{args.images or 60000} images each; before: {neighbours()}", flush=True)
    rates: dict[tuple, list[list[float]]] = {c: [] for c in configs}
    begun = time.perf_counter()
    for r in range(args.rounds):
        for c in configs[r % len(configs):] + configs[:r % len(configs)]:  # each round starts one further on
            rates[c].append(measure(*c, args))
            print(f"round {r + 1}: {c[0]} {c[1]} x{c[2]}: {', '.join(f'{x:,.0f}' for x in rates[c][-1])} images/s "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
    report(configs, rates)
    print(f"\n{time.perf_counter() - begun:.0f} s; after: {neighbours()}")


def report(configs, rates) -> None:
    print("\n| contestant | setting | runs at once | images/s of each run, each round | median | x bare step, same setting |")
    print("|---|---|---|---|---|---|")
    for contestant, setting, n in configs:
        each = rates[contestant, setting, n]
        median = statistics.median(x for run in each for x in run)
        bare = rates.get(("bare", setting, 1))
        ratio = f"{median / statistics.median(x for run in bare for x in run):.2f}" if bare else ""
        shown = "; ".join(", ".join(f"{x:,.0f}" for x in run) for run in each)
        print(f"| {contestant} | {setting} | {n} | {shown} | {median:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
