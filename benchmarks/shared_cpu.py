"""Training on a shared CPU: one run alone, two at once, one beside a busy torch process, and
one run as two single-threaded processes (`train.processes: 2`).

Each run is `cvaekit run recipes/shapes_attention.yaml` cut to a few thousand images and two
epochs, in a process of its own; its images/s is the last epoch's, from its metrics.jsonl.
OpenMP busy-waits by default, so processes that share the cores stall each other; cvaekit
sets OMP_WAIT_POLICY=PASSIVE before torch loads (cvaekit/runtime/threads.py). `--wait active` runs
the same with OpenMP's busy waiting, to see what that setting buys. The last row is one run
of the same recipe split into two data-parallel processes of one thread each, which skips the
threads' waiting on each other.

    python benchmarks/shared_cpu.py                  # about 3 minutes on 2 cores
    python benchmarks/shared_cpu.py --wait active    # the same with busy waiting
    python benchmarks/shared_cpu.py --against ../old # one run alone, this code and an older checkout, in turns

Targets (issue 17): two runs at once together at least 0.8x one run alone; one run alone at
least 0.95x the speed of the code before (`--against` a checkout of it, e.g. made with
`git worktree add ../old COMMIT`: the runs alternate, so both meet the same load).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY = "import torch\na = torch.randn(384, 384)\nwhile True:\n    a = (a @ a).tanh()\n"


def start_run(recipe: Path, runs: Path, name: str, images: int, epochs: int, env: dict,
              extra: tuple[str, ...] = ()) -> subprocess.Popen:
    sets = [f"runs_dir={runs}", f"name={name}", f"data.n_train={images}", f"train.epochs={epochs}",
            f"train.checkpoint_every={epochs}", "eval.limit=64", "eval.metrics=[nelbo]", *extra]
    cmd = [sys.executable, "-m", "cvaekit", "run", str(recipe), "-q"] + [a for s in sets for a in ("--set", s)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def rate_of(runs: Path, name: str) -> float:
    """The last epoch's images/s of the run called `name`."""
    folder = next(p for p in runs.iterdir() if p.name.startswith(f"{name}-"))
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "train"][-1]["images_per_s"]


def against(args, env: dict, work: Path) -> None:
    """One run alone with this code and with the checkout `args.against`, taking turns."""
    old_env = {**env, "PYTHONPATH": os.pathsep.join([str(args.against.resolve()), env.get("PYTHONPATH", "")])}
    rates = {"this code": [], str(args.against): []}
    for turn in range(args.turns):
        for label, run_env in (("this code", env), (str(args.against), old_env)):
            rates[label].append(scenario(f"{label} {turn}", 1, False, args, run_env, work)[0])
    print("\n| code | images/s, one run alone, each turn | median |")
    print("|---|---|---|")
    medians = {label: sorted(r)[len(r) // 2] for label, r in rates.items()}
    for label, r in rates.items():
        print(f"| {label} | {', '.join(f'{x:,.0f}' for x in r)} | {medians[label]:,.0f} |")
    ratio = medians["this code"] / medians[str(args.against)]
    print(f"\nThis code at {ratio:.2f}x the older one (target at least 0.95x: {'met' if ratio >= 0.95 else 'not met'}).")


def scenario(label: str, n_runs: int, busy: bool, args, env: dict, work: Path, extra: tuple[str, ...] = ()) -> list[float]:
    runs = work / "".join(c if c.isalnum() else "_" for c in label)
    runs.mkdir()
    plain = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}  # a torch process as users start one
    neighbour = subprocess.Popen([sys.executable, "-c", BUSY], env=plain) if busy else None
    try:
        procs = [start_run(args.recipe, runs, f"run{i}", args.images, args.epochs, env, extra) for i in range(n_runs)]
        for p in procs:
            _, err = p.communicate()
            if p.returncode:
                raise SystemExit(f"{label}: a run failed:\n{err[-2000:]}")
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    return [rate_of(runs, f"run{i}") for i in range(n_runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "shapes_attention.yaml")
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--wait", choices=["passive", "active"], default="passive",
                        help="OMP_WAIT_POLICY of every process (cvaekit's default is passive)")
    parser.add_argument("--against", type=Path, help="a checkout of older cvaekit code: time one run alone with each, in turns")
    parser.add_argument("--turns", type=int, default=3, help="turns of each code with --against")
    args = parser.parse_args()
    env = {**os.environ, "OMP_WAIT_POLICY": args.wait.upper()}
    work = Path(tempfile.mkdtemp(prefix="cvaekit-shared-cpu-"))
    atexit.register(shutil.rmtree, work, True)  # the trained runs are measured, not kept
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the first run; "
          f"OMP_WAIT_POLICY={args.wait.upper()}; {args.images} images, {args.epochs} epochs per run ({work})")
    start = time.perf_counter()
    if args.against:
        against(args, env, work)
        print(f"({time.perf_counter() - start:.0f} s in all)")
        return
    alone = scenario("alone", 1, False, args, env, work)[0]
    pair = scenario("two at once", 2, False, args, env, work)
    beside = scenario("beside busy torch", 1, True, args, env, work)[0]
    split = scenario("two processes", 1, False, args, env, work, ("train.processes=2",))[0]
    print()
    print("| scenario | images/s per run | together | x one alone |")
    print("|---|---|---|---|")
    print(f"| one run alone | {alone:,.0f} | {alone:,.0f} | 1.00 |")
    print(f"| two runs at once | {' and '.join(f'{r:,.0f}' for r in pair)} | {sum(pair):,.0f} | {sum(pair) / alone:.2f} |")
    print(f"| one run beside a busy torch process | {beside:,.0f} | {beside:,.0f} | {beside / alone:.2f} |")
    print(f"| one run as two processes of one thread (train.processes=2) | {split:,.0f} | {split:,.0f} | {split / alone:.2f} |")
    print(f"\nTarget: two at once together at least 0.8x one alone: {'met' if sum(pair) >= 0.8 * alone else 'not met'}. "
          f"({time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()
