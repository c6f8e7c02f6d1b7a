"""What the `cvaekit serve` page does, as plain Python: load runs once, and turn a request
(text, number of images, temperature, seed) into a picture or a clear error.

Nothing here imports Gradio, so it is tested without a browser; `cvaekit.page` only lays
these functions out on a page. A bad request raises a `CvaekitError` whose message the page
shows, out-of-range numbers included (the message names the range); nothing is cut down
silently.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cvaekit.assembly import TrainedRun, load_run
from cvaekit.core.guidance import check_guidance, check_guided_run
from cvaekit.core.prior import check_temperature
from cvaekit.core.sampling import (
    MAX_STEPS,
    check_texts,
    sample_rows,
    walk_seeds,
    walk_texts,
)
from cvaekit.errors import CvaekitError
from cvaekit.plugins.registry import Registry
from cvaekit.runtime.device import resolve_device
from cvaekit.serving.rows import labelled_rows, pixel_grid

MAX_IMAGES = 64  # per text and run: more is a slow page and a grid nobody can see
MAX_GUIDANCE = 10.0  # far past where pictures saturate (2 to 4 is where guidance is used)
MAX_TEMPERATURE = 2.0  # hotter than twice the prior's spread draws noise, not pictures
MAX_TEXT_CHARS = 1000  # a caption longer than this is a pasted document, not a caption


@dataclass
class ServedRun:
    """A run loaded once for the page, with what is shown beside its pictures."""

    label: str
    trained: TrainedRun

    @property
    def model(self):
        return self.trained.model

    @property
    def classes(self) -> list[str] | None:
        """The class words of a label run (its conditioner's `classes`), None for captions."""
        classes = getattr(self.model.conditioner, "classes", None)
        return list(classes) if classes else None

    @property
    def groups(self) -> int:
        """Latent groups of the model: 1 for a single latent vector, more for a hierarchy."""
        return self.model.group_count

    @property
    def recipe_text(self) -> str:
        return self.trained.run.recipe_file.read_text()

    def metrics(self) -> list[dict]:
        """The run's evaluation records (one per evaluated checkpoint), oldest first."""
        return [{k: v for k, v in r.items() if k != "kind"}
                for r in self.trained.run.records() if r.get("kind") == "eval"]

    def metrics_markdown(self) -> str:
        """The evaluation records as a Markdown table, or a line saying there are none."""
        return metrics_markdown(self.metrics(), "epoch") or "_No metrics recorded for this run._"

    def served_metrics(self) -> dict:
        """The metrics measured at the served checkpoint ({} when it was not evaluated)."""
        return next((r for r in reversed(self.metrics()) if r.get("epoch") == self.trained.epoch), {})


def metrics_markdown(rows: list[dict], first: str) -> str:
    """Records as a Markdown table, column `first` leading; '' for no records."""
    if not rows:
        return ""
    columns = [first] + sorted({k for r in rows for k in r} - {first, "epoch", "checkpoint", "step"})
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def compare_metrics_markdown(runs: list[ServedRun]) -> str:
    """One row per served run: its metrics at the checkpoint it serves."""
    return metrics_markdown([{"run": r.label, **r.served_metrics()} for r in runs], "run")


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


@dataclass
class Picture:
    """A grid as RGB pixels (H, W, 3 uint8), and a line to show under it."""

    image: np.ndarray
    note: str = ""
    name: str = "cvaekit"  # what a downloaded file is called, before .png

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the grid as a PNG in a fresh sub-folder of `folder` (so two requests never
        share a file); return its path."""
        path = Path(tempfile.mkdtemp(dir=folder)) / f"{self.name}.png"
        Image.fromarray(self.image).save(path)
        return path


# ---------------------------------------------------------------------------- loading

def split_run_arg(arg: str) -> tuple[str, str | None]:
    """'runs/x' or 'runs/x@EPOCH' (also @last): a folder and its checkpoint, so one run's
    checkpoints can be served side by side. 'user/name@v1' is a hub id at a revision."""
    if "@" in arg and not Path(arg).exists():
        path, checkpoint = arg.rsplit("@", 1)
        if checkpoint in ("", "last") or checkpoint.isdigit():
            return path, checkpoint or None
    return arg, None


def load_runs(args: list[str], checkpoint: str | None = None, device: str = "auto",
              registry: Registry | None = None, text_encoder: str | None = None) -> list[ServedRun]:
    """Each run (a run folder, an exported folder or a hub id) loaded once, on the GPU when
    there is one; a folder that is not a run, or a checkpoint it does not have, is an error
    before anything is served."""
    if not args:
        raise CvaekitError("Name at least one run folder to serve.")
    where = resolve_device(device, "--device")
    served, labels = [], set()
    for arg in args:
        path, own = split_run_arg(str(arg))
        trained = load_run(path, own or checkpoint, registry, device=where, text_encoder=text_encoder)
        name = Path(path).resolve().name if Path(path).exists() else path  # a hub id as it is
        label = f"{name} · epoch {trained.epoch}"
        n = 1
        while label in labels:
            n += 1
            label = f"{name} · epoch {trained.epoch} ({n})"
        labels.add(label)
        served.append(ServedRun(label, trained))
    return served


def find_run(runs: list[ServedRun], label: str | None) -> ServedRun:
    for run in runs:
        if run.label == label:
            return run
    if label is None and runs:
        return runs[0]
    raise CvaekitError(f"No run called '{label}' is served. Runs: {', '.join(r.label for r in runs)}.")


# ---------------------------------------------------------------------------- checks

def check_text(run: ServedRun, text: str | None) -> tuple[str, str]:
    """The text stripped, and a note when the model will not read all of it. Empty or blank
    text is an error by the rule `cvaekit generate` keeps too (`check_texts`); absurdly long
    text is an error on the page."""
    (text,) = check_texts(run.model, [text or ""])
    text = text.strip()
    if len(text) > MAX_TEXT_CHARS:
        raise CvaekitError(f"The text is {len(text):,} characters long; the page takes up to "
                           f"{MAX_TEXT_CHARS:,}. Shorten it to a caption.")
    limit = getattr(run.model.conditioner, "max_len", None)  # learned_text's word limit
    unknown = getattr(run.model.conditioner, "unknown_words", None)  # and its vocabulary
    n_words = len(re.findall(r"[A-Za-z0-9]+", text))
    notes = [f"The text has {n_words} words; this model reads only the first {limit}."
             if isinstance(limit, int) and n_words > limit else ""]
    if callable(unknown) and (new := unknown([text])):
        notes.append(f"This model never read {', '.join(repr(w) for w in new)} in its training captions; "
                     f"the picture follows only the other words.")
    return text, _join(*notes)


def count(value, least: int, most: int, what: str) -> int:
    """`value` as a whole number from `least` to `most`; anything else is refused with a
    message that names the range (never cut down silently)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (number.is_integer() and least <= number <= most):
        raise CvaekitError(f"The number of {what} must be a whole number from {least} to {most}; got {value!r}.")
    return int(number)


def whole(value, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise CvaekitError(f"The {what} must be a whole number, got {value!r}.") from None


def guidance_in_range(value) -> float:
    """The guidance scale as a number from 0 to `MAX_GUIDANCE`; anything else is refused."""
    scale = check_guidance(value)
    if scale > MAX_GUIDANCE:
        raise CvaekitError(f"The guidance scale must be a number from 0 to {MAX_GUIDANCE:g} (1: the model as "
                           f"trained; above 1 follows the text more closely); got {value!r}.")
    return scale


def temperature_in_range(value) -> float:
    """The temperature as a number from 0 to `MAX_TEMPERATURE`; anything else is refused."""
    try:
        temperature = check_temperature(float(value))
    except (TypeError, ValueError, CvaekitError):
        temperature = float("nan")
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise CvaekitError(f"The temperature must be a number from 0 to {MAX_TEMPERATURE:g} (1 samples the "
                           f"prior, lower is more typical, 0 its most typical z); got {value!r}.")
    return temperature


def _join(*notes: str) -> str:
    return " ".join(n for n in notes if n)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "cvaekit"


# ---------------------------------------------------------------------------- pictures

def generate_picture(run: ServedRun, text: str, n=8, temperature=1.0, seed=0, guidance=1.0) -> Picture:
    """`n` images for `text`: the same pictures as `cvaekit generate RUN TEXT -n N --seed S -g G`."""
    text, long_note = check_text(run, text)
    n, temperature = count(n, 1, MAX_IMAGES, "images"), temperature_in_range(temperature)
    guidance = guidance_in_range(guidance)
    check_guided_run(run.trained.recipe.train.cond_dropout, guidance)
    start = time.perf_counter()
    (images,) = sample_rows(run.model, [text], n, whole(seed, "seed"), temperature, guidance=guidance)
    took = time.perf_counter() - start
    return Picture(pixel_grid(images), _join(long_note, f"{n} images in {took:.2f} s."),
                   f"{_slug(text)}-seed{whole(seed, 'seed')}")


def compare_picture(runs: list[ServedRun], text: str, n=8, temperature=1.0, seed=0) -> Picture:
    """The same text, seed and temperature through every run: one row per run, labelled with
    its name and epoch (`labelled_rows`). A run that cannot read the text is left out and named in the note."""
    if not runs:
        raise CvaekitError("No runs are served.")
    n = count(n, 1, MAX_IMAGES, "images per run")
    seed, temperature = whole(seed, "seed"), temperature_in_range(temperature)
    rows, labels, failed = [], [], []
    for run in runs:
        try:
            clean, _ = check_text(run, text)
            rows.append(sample_rows(run.model, [clean], n, seed, temperature)[0])
            labels.append(run.label)
        except CvaekitError as exc:
            failed.append((run.label, str(exc)))
    if not rows:
        raise CvaekitError("No run could draw this text. " + " ".join(f"{label}: {msg}" for label, msg in failed))
    skipped = " ".join(f"Left out {label}: {msg}" for label, msg in failed)
    return Picture(labelled_rows(rows, labels), skipped, f"compare-{_slug(text)}-seed{seed}")


def walk_picture(run: ServedRun, mode: str, text_a: str, text_b: str = "", seed_a=0, seed_b=1,
                 steps=8, temperature=1.0, group=0) -> Picture:
    """A strip of `steps` images, at their own size like a generate grid (read left to right,
    row by row past `PER_ROW`), and a note that says what it walks: mode 'texts' moves the
    condition from `text_a` to `text_b` at a fixed z (from `seed_a`); mode 'seeds' moves z
    from `seed_a`'s draw to `seed_b`'s at the fixed `text_a`, for a hierarchical run the z of
    latent `group` (0, the top), the other groups held."""
    steps = count(steps, 2, MAX_STEPS, "steps (a walk's two ends included)")
    temperature, seed_a = temperature_in_range(temperature), whole(seed_a, "first seed")
    text_a, note_a = check_text(run, text_a)
    if mode == "texts":
        text_b, note_b = check_text(run, text_b)
        strip = walk_texts(run.model, text_a, text_b, steps, seed_a, temperature)
        what, name = f"From '{text_a}' to '{text_b}' at seed {seed_a}", f"walk-{_slug(text_a)}-to-{_slug(text_b)}"
    elif mode == "seeds":
        note_b, seed_b, group = "", whole(seed_b, "second seed"), whole(group, "latent group")
        strip = walk_seeds(run.model, text_a, seed_a, seed_b, steps, temperature, group)
        what, name = f"'{text_a}' from seed {seed_a} to {seed_b}", f"walk-{_slug(text_a)}-seed{seed_a}-to-{seed_b}"
        if run.groups > 1:
            what, name = f"{what} at latent group {group} of {run.groups} (0 the top)", f"{name}-group{group}"
    else:
        raise CvaekitError(f"Unknown walk '{mode}'; choose 'texts' or 'seeds'.")
    return Picture(pixel_grid(strip), _join(f"{what}, in {steps} steps.", note_a, note_b), name)
