"""Recipe fuzz: mutate working recipes N times and run each through `cvaekit run`.

    python benchmarks/recipe_fuzz.py [-n 500] [--seed 0] [--show 5]

Each case takes one of two small working recipes (Fashion-MNIST with the MLP, shapes with
conv networks and FiLM), applies one to three mutations (a value of every wrong kind, a
key deleted, renamed or added, a mapping where a name goes and back, raw YAML garbage),
given through the file or through `--set`, and runs it with the CLI. Training stops after
its first optimiser step, so "ran" means: validated, data and model built, one step taken.
Prints how many gave a clean error (exit 2, one paragraph), ran, or ended in a Python
traceback (the target is 0), and the first tracebacks with the mutation that caused them.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cvaekit  # noqa: F401  (before torch: it has OpenMP wait passively, so runs can share the cores)
import torch
import yaml
from rich.console import Console
from rich.progress import track
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cvaekit.cli import app  # noqa: E402

BASES = {
    "fashion_mlp": {
        "name": "fuzz_fashion", "seed": 0, "data": {"name": "fashion_mnist"},
        "model": {"latent_dim": 8, "conditioner": "onehot",
                  "encoder": {"name": "mlp", "hidden": 32}, "decoder": {"name": "mlp", "hidden": 32}},
        "train": {"epochs": 1, "batch_size": 32, "lr": 1e-3, "checkpoint_every": 1, "limit": 256},
        "eval": {"metrics": ["nelbo"], "limit": 64, "samples_per_condition": 2},
    },
    "shapes_film": {
        "name": "fuzz_shapes", "seed": 0,
        "data": {"name": "shapes_captions", "image_size": 16, "n_train": 128, "n_test": 32},
        "model": {"latent_dim": 4, "conditioner": {"name": "learned_text", "dim": 16},
                  "encoder": {"name": "conv", "channels": [8, 16], "final_side": 4},
                  "decoder": {"name": "deconv", "channels": [8, 16], "hidden": 32, "final_side": 4},
                  "injections": [{"name": "film", "at": 1, "net": "encoder"},
                                 {"name": "film", "at": 0, "net": "decoder"}]},
        "train": {"epochs": 1, "batch_size": 32, "lr": 1e-3, "limit": 64},
        "eval": {"metrics": ["nelbo"], "limit": 32, "samples_per_condition": 2},
    },
}

# Values of every kind: wrong types, bounds, non-finite numbers, huge sizes, names as mappings.
WRONG = [None, "", "garbage", "mlp", "256", "1e-3", "-1", 0, -1, 2.5, 10**15, 10**30, 1e999,
         float("-inf"), float("nan"), True, [1, 2], [], {}, {"name": "mlp"}, {"a": 1}, [{"name": 1}],
         "a\0b", "x" * 300]
GARBAGE = ["name: [unclosed", "{{{", "- a\n- b", "\t: :", "!!python/object:os.system ls", "", "42",
           "name: a\nname: b\n", "data: &a [*a]", "\x00\x01\x02", "model: {encoder: }", "…: ∞"]


def paths(node, prefix=()):
    """Every key path in a recipe, mappings and list items included."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from paths(v, (*prefix, i))


def parent(data, path):
    for part in path[:-1]:
        data = data[part]
    return data


def mutate(data: dict, rng: random.Random) -> tuple[dict, list[str], str]:
    """(the recipe for the file, --set overrides, a description) after 1-3 mutations."""
    data = copy.deepcopy(data)
    sets, said = [], []
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(list(paths(data)))
        node, key = parent(data, path), path[-1]
        dotted = ".".join(map(str, path))
        how = rng.choice(["value", "value", "value", "set", "set", "delete", "rename", "add", "shorthand"])
        value = rng.choice(WRONG)
        if how == "value":
            node[key] = value
            said.append(f"{dotted}={value!r}")
        elif how == "set":
            raw = rng.choice([yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip(),
                              rng.choice(GARBAGE), str(value)])
            sets.append(f"{dotted}={raw}")
            said.append(f"--set {dotted}={raw!r}")
        elif how == "delete":
            if isinstance(node, list):
                node.pop(key)
            else:
                del node[key]
            said.append(f"del {dotted}")
            break  # the paths changed
        elif how == "rename" and isinstance(node, dict):
            node[f"{key}x" if rng.random() < 0.5 else str(key)[:-1]] = node.pop(key)
            said.append(f"rename {dotted}")
            break
        elif how == "add" and isinstance(node[key], dict):
            node[key][rng.choice(["extra", "hidden", "name", "at", "net", "dim"])] = value
            said.append(f"{dotted}.+={value!r}")
        elif how == "shorthand":
            node[key] = node[key].get("name", "x") if isinstance(node[key], dict) else {"name": node[key]}
            said.append(f"shorthand {dotted}")
    return data, sets, "; ".join(said)


class _FirstStep(Exception):
    """Raised after the first optimiser step: the case ran."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=5, help="How many tracebacks to print.")
    args = parser.parse_args()
    console = Console()
    rng = random.Random(args.seed)
    step = torch.optim.Adam.step

    def first_step_only(self, *a, **k):
        step(self, *a, **k)
        raise _FirstStep

    torch.optim.Adam.step = first_step_only
    runner = CliRunner()
    counts, tracebacks = Counter(), []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        for i in track(range(args.n), description="fuzzing recipes", console=console):
            base = BASES[rng.choice(sorted(BASES))]
            data, sets, said = mutate({**base, "runs_dir": f"{tmp}/runs"}, rng)
            path = Path(tmp) / f"case-{i}.yaml"
            if rng.random() < 0.05:
                text = rng.choice(GARBAGE)
                said = f"file holds {text!r}"
                path.write_text(text)
            else:
                path.write_text(yaml.safe_dump(data, allow_unicode=True))
            argv = ["run", str(path), "-q", *[x for s in sets for x in ("--set", s)]]
            result = runner.invoke(app, argv)
            if result.exit_code == 0 or isinstance(result.exception, _FirstStep):
                counts["ran"] += 1
            elif result.exit_code == 2 and (result.exception is None or isinstance(result.exception, SystemExit)):
                counts["clean"] += 1
            else:
                counts["traceback"] += 1
                tracebacks.append((said, f"{type(result.exception).__name__}: {result.exception}"[:300]))
    seconds = time.perf_counter() - start
    console.print(f"{args.n} mutated recipes (seed {args.seed}, {seconds:.0f} s): "
                  f"{counts['clean']} clean errors, {counts['ran']} ran, {counts['traceback']} tracebacks")
    for said, error in tracebacks[:args.show]:
        console.print(f"  [red]{error}[/]  after: {said}", markup=True, highlight=False)


if __name__ == "__main__":
    main()
