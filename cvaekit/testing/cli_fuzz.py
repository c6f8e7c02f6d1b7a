"""Fuzzed `cvaekit` command lines: every command's arguments and options given values of
every wrong kind (numbers out of range, wrong types, missing and unreadable paths, run
folders with a missing or corrupt checkpoint or recipe), for `benchmarks/cli_fuzz.py` and a
test, which run them through typer's CliRunner and count any traceback as a bug.

`Places` makes the folders and files once, from one small trained run; `command_lines`
draws seeded command lines, each a working one with one to three things broken.
"""

from __future__ import annotations

import random
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import yaml

INTS = ["0", "-3", "-1", "1", "2", "65", "100000", "99999999999999999999999", "2.5", "abc", "", "nan", "1e999"]
FLOATS = ["-1", "0", "1", "0.5", "nan", "inf", "-inf", "1e308", "1e999", "abc", "", "-0.0", "3"]
VALUES = {
    "int": INTS, "float": FLOATS,
    "temperatures": ["1", "0.5", "1,0.5", "1,0.5,0", "1,,2", "a,b", ",", "-1", "nan", "inf", "1e999", ""],
    "device": ["tpu", "cuda", "cuda:7", "cuda:-1", "meta", "mps", "xla", "", "cpu", "auto", "cpu:0", "gpu", "cuda:x"],
    "checkpoint": ["last", "0", "1", "-1", "99", "abc", "", "{garbage}", "{missing}", "{empty_dir}", "{run}"],
    "checkpoints": ["all", "last", "1", "0", "1,1", "99", "-1", "a,b", "", ",", "1,,2"],
    "text": ["sneaker", "bag", "", " ", "apple", "x" * 3000, "é ∞ 😀", "--", "a\tb", "\x00"],
    "model": ["{run}", "{missing}", "{file}", "{empty_dir}", "{no_checkpoint}", "{corrupt_checkpoint}",
              "{truncated_checkpoint}", "{no_recipe}", "{corrupt_recipe}", "{run}@99", "{run}@abc", "{run}@1",
              "user/name", "a@b@c", "/dev/null", "", ".", "{recipe}"],
    "recipe": ["{recipe}", "{bad_yaml}", "{missing}", "{file}", "{empty_dir}", "/dev/null", "quickstart", "nope",
               "{run}", "", "{empty_yaml}"],
    "out": ["{fresh}.png", "{fresh}.jpg", "{fresh}", "{empty_dir}", "{file}/x.png", "/proc/x.png", "", "{fresh}.txt"],
    "folder": ["{fresh}", "{empty_dir}", "{file}", "{run}", "/proc/x", "", "{file}/x"],
    "kind": ["prior", "conditioner", "encoder", "metric", "", "nope", "PRIOR", "priors"],
    "name": ["flow", "mlp", "nelbo", "", "nope", "../x", "onehot"],
    "set": ["transforms=2", "train.epochs=1", "=", "a", "a=b=c", "train.epochs=-1", "x.y=1", "train.lr=abc",
            "model.latent_dim=0", "train.limit=", ""],
    "grid": ["model.latent_dim=2,3", "model.latent_dim=", "model.latent_dim", "nope=1,2", "train.lr=a,b", "=",
             "model.latent_dim=2,2", "train.epochs=0,1"],
    "metrics": ["nelbo", "", ",", "nope", "nelbo,nope", "nelbo,nelbo"],
    "prior": ["auto", "trained", "fitted", "nope", "", "flow", "gaussian", "vamp"],
    "port": ["0", "-1", "65536", "70000", "abc", "", "80", "7860", "1.5"],
    "host": ["127.0.0.1", "0.0.0.0", "localhost", "", "999.1.1.1", "not a host", "::1", "example.invalid"],
    "auth": ["user:pass", "user", ":", "user:", ":pass", "", "a:b:c"],
    "repo": ["user/name", "", "nope", "a/b/c", "user/name@v1", "/"],
    "jobs": ["1", "2", "0", "-1", "1000", "abc"],
    "space": ["{space}", "{bad_yaml}", "{empty_yaml}", "{missing}", "{recipe}", "{empty_dir}", ""],
    "storage": ["sqlite:///{fresh}.db", "postgresql://nobody@127.0.0.1:1/none", "nope://x", "", "sqlite:///{file}/x.db",
                "sqlite:///{empty_dir}"],
    "run_name": ["fuzzed", "", "../up", "a/b", ".", "x" * 300, "{run}"],
}
FAST_FIT = ["--epochs", "1", "--draws", "1", "--device", "cpu", "-q", "--set", "transforms=1"]
FAST_EVAL = ["--metrics", "nelbo", "--limit", "16", "--no-figures", "--device", "cpu", "--checkpoints", "last"]

# Each command: its positional arguments as (slot, working value), then its options as
# (flag, slot, working value); slot None is a flag without a value.
COMMANDS: dict[tuple[str, ...], tuple[list, list]] = {
    ("generate",): ([("model", "{run}"), ("text", "sneaker")],
                    [("-n", "int", "2"), ("-o", "out", "{fresh}.png"), ("--checkpoint", "checkpoint", None),
                     ("--seed", "int", None), ("-t", "temperatures", None), ("--interpolate", None, None),
                     ("--fix-top", "int", None),
                     ("--text-encoder", "folder", None)]),
    ("evaluate",): ([("model", "{run}")],
                    [("--metrics", "metrics", "nelbo"), ("--limit", "int", "16"), ("--no-figures", None, ""),
                     ("--device", "device", "cpu"), ("--checkpoints", "checkpoints", "last"),
                     ("--prior", "prior", None), ("--into", "folder", None), ("--figures", None, None)]),
    ("fit-prior",): ([("model", "{run}")],
                     [("--epochs", "int", "1"), ("--draws", "int", "1"), ("--device", "device", "cpu"), ("-q", None, ""),
                      ("--set", "set", "transforms=1"), ("--prior", "name", None), ("--lr", "float", None),
                      ("--batch-size", "int", None), ("--checkpoint", "checkpoint", None), ("--into", "folder", None)]),
    ("sweep",): ([("recipe", "{recipe}")],
                 [("--grid", "grid", "model.latent_dim=2,3"), ("-q", None, ""), ("--jobs", "jobs", None),
                  ("--set", "set", None)]),
    ("run",): ([("recipe", "{recipe}")], [("-q", None, ""), ("--set", "set", None), ("--resume", "model", None),
                                          ("--run-name", "run_name", None)]),
    ("tune",): ([("recipe", "{recipe}")],
                [("--space", "space", "{space}"), ("--trials", "int", "1"), ("--storage", "storage", "sqlite:///{fresh}.db"),
                 ("--study", "name", None), ("--jobs", "jobs", None), ("--set", "set", None),
                 ("--heartbeat", "int", None), ("-q", None, "")]),
    ("prepare",): ([("recipe", "{recipe}")], [("-q", None, ""), ("--set", "set", None), ("--device", "device", None)]),
    ("serve",): ([("model", "{run}")],
                 [("--port", "port", None), ("--host", "host", None), ("--device", "device", "cpu"),
                  ("--checkpoint", "checkpoint", None), ("--auth", "auth", None), ("--auth-file", "folder", None),
                  ("--text-encoder", "folder", None)]),
    ("export",): ([("model", "{run}"), ("folder", "{fresh}")], [("--checkpoint", "checkpoint", None)]),
    ("push",): ([("model", "{run}"), ("repo", "user/name")],
                [("--checkpoint", "checkpoint", None), ("--revision", "name", None), ("--private", None, None)]),
    ("describe",): ([("kind", "prior"), ("name", "flow")], []),
    ("list-components",): ([], [("--kind", "kind", None), ("--json", None, None)]),
    ("recipes",): ([], []),
    ("recipes", "show"): ([("name", "quickstart")], []),
    ("cache",): ([], []),
    ("cache", "clear"): ([], [("--images", None, None), ("--text", None, None), ("--all", None, None),
                              ("--yes", None, "")]),
}


def tiny_recipe(runs_dir: Path) -> dict:
    """A Fashion-MNIST MLP that trains in seconds."""
    return {"name": "fuzz", "seed": 0, "runs_dir": str(runs_dir), "data": {"name": "fashion_mnist"},
            "model": {"latent_dim": 4, "conditioner": "onehot", "encoder": {"name": "mlp", "hidden": 16},
                      "decoder": {"name": "mlp", "hidden": 16}},
            "train": {"epochs": 1, "batch_size": 64, "checkpoint_every": 1, "limit": 128},
            "eval": {"metrics": ["nelbo"], "limit": 32, "samples_per_condition": 1}}


@dataclass
class Places:
    """The folders and files command lines name, made once under `root` from a trained run."""

    root: Path
    run: Path
    fresh_count: int = 0

    @classmethod
    def make(cls, root: Path, run: Path) -> Places:
        root.mkdir(parents=True, exist_ok=True)
        (root / "empty").mkdir(exist_ok=True)
        (root / "file.txt").write_text("not a run\n")
        (root / "garbage.pt").write_bytes(b"\x80\x02garbage" * 10)
        (root / "recipe.yaml").write_text(yaml.safe_dump(tiny_recipe(root / "runs")))
        (root / "bad.yaml").write_text("name: [unclosed\n")
        (root / "empty.yaml").write_text("")
        (root / "space.yaml").write_text(yaml.safe_dump({"metric": "nelbo", "params": {"train.lr": [1.0e-3, 1.0e-2]}}))
        broken = {"no_checkpoint": lambda d: [p.unlink() for p in d.glob("checkpoints/*.pt")],
                  "corrupt_checkpoint": lambda d: [p.write_bytes(b"PK\x03\x04 junk") for p in d.glob("checkpoints/*.pt")],
                  "truncated_checkpoint": lambda d: [p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
                                                     for p in d.glob("checkpoints/*.pt")],
                  "no_recipe": lambda d: (d / "recipe.yaml").unlink(),
                  "corrupt_recipe": lambda d: (d / "recipe.yaml").write_text("model: {{{\n")}
        for name, breaking in broken.items():
            if not (root / name).exists():
                shutil.copytree(run, root / name)
                breaking(root / name)
        return cls(root, run)

    def fill(self, value: str) -> str:
        """`value` with its {place} named; every {fresh} is a path not yet used."""
        if "{fresh}" in value:
            self.fresh_count += 1
            value = value.replace("{fresh}", str(self.root / "out" / f"new-{self.fresh_count}"))
        places = {"run": self.run, "missing": self.root / "missing", "file": self.root / "file.txt",
                  "empty_dir": self.root / "empty", "garbage": self.root / "garbage.pt",
                  "recipe": self.root / "recipe.yaml", "bad_yaml": self.root / "bad.yaml",
                  "empty_yaml": self.root / "empty.yaml", "space": self.root / "space.yaml",
                  **{k: self.root / k for k in ("no_checkpoint", "corrupt_checkpoint", "truncated_checkpoint",
                                                "no_recipe", "corrupt_recipe")}}
        for key, path in places.items():
            value = value.replace("{" + key + "}", str(path))
        return value


def working_line(command: tuple[str, ...]) -> tuple[list[list[str]], list[tuple]]:
    """The command's working line as [positionals] + [option groups], and what can change."""
    positionals, options = COMMANDS[command]
    parts = [[value] for _, value in positionals]
    for flag, slot, value in options:
        if value is not None:
            parts.append([flag] if slot is None else [flag, value])
    return parts, positionals + options


def mutate(parts: list[list[str]], command: tuple[str, ...], rng: random.Random) -> list[list[str]]:
    """One thing broken: a value of its own kind or another, a part dropped, an option unknown
    or given twice, or a flag given a value."""
    positionals, options = COMMANDS[command]
    how = rng.choice(["own", "own", "own", "add", "add", "other", "drop", "unknown"])
    if how in ("own", "other") and positionals:
        i = rng.randrange(len(positionals))
        slot = positionals[i][0] if how == "own" else rng.choice(sorted(VALUES))
        if i < len(parts):  # (an earlier drop may have taken it)
            parts[i] = [rng.choice(VALUES[slot])]
    elif how == "add" and options:
        flag, slot, _ = rng.choice(options)
        parts.append([flag] if slot is None else [flag, rng.choice(VALUES[slot])])
    elif how == "drop" and parts:
        parts.pop(rng.randrange(len(parts)))
    else:
        parts.append(rng.choice([["--nope"], ["-z", "1"], ["extra"], ["--help"], ["--version"]]))
    return parts


def command_lines(places: Places, n: int, seed: int = 0) -> list[list[str]]:
    """`n` seeded command lines, each a command's working line with one to three things broken."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        command = rng.choice(sorted(COMMANDS))
        parts, _ = working_line(command)
        for _ in range(rng.randint(1, 3)):
            parts = mutate(parts, command, rng)
        lines.append([*command, *(places.fill(v) for part in parts for v in part)])
    return lines


def outcome(result) -> str:
    """'ran', 'clean' (an error as a message, exit code not 0) or 'traceback', for a
    CliRunner result."""
    if "Traceback (most recent call last)" in (result.output or ""):
        return "traceback"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback"
    return "ran" if result.exit_code == 0 else "clean"


class TookTooLong(BaseException):
    """Raised by the alarm in `run_line`: the line was still running (it ran)."""


def _alarm(signum, frame):
    raise TookTooLong


def run_line(runner, app, argv: list[str], timeout: int = 20):
    """Run one command line through `runner` (typer's CliRunner), stopped after `timeout`
    seconds (a working line that trains, say): its `outcome` (or 'cut short') and result."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    try:
        result = runner.invoke(app, argv)
    except TookTooLong:
        return "cut short", None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return ("cut short" if isinstance(result.exception, TookTooLong) else outcome(result)), result
