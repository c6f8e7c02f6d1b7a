"""Checkpoints: the one owner of their format. Written atomically, read with
`torch.load(weights_only=True)`, and upgraded on reading when an older cvaekit wrote them.

A training checkpoint (`checkpoints/last.pt`, `epoch-NNNN.pt`) holds:

    format      FORMAT (absent in format 1)
    model, optimizer        state_dicts of the plain model and its optimizer
    epoch, step             completed epochs, optimizer steps
    rng                     {"torch", "order", "cuda"?}: the generators' states
    data_info, recipe       what rebuilds the model without the data set
    position                only inside an epoch (a Ctrl-C, or train.save_every_steps): the epoch's order, caption draws,
                            batches done, images seen and running totals
    grad_level              only with train.skip_grad_factor: the running gradient norm of the steps taken
    lowest_loss             the lowest epoch mean loss so far (absent before an epoch ended, and in older checkpoints)
    skipped                 only once a step was skipped (train.skip_grad_factor): [steps skipped in all, of them the
                            last ones in a row]
    ema, ema_updates        only with train.ema: the averaged weights (a state_dict of the plain model) and the
                            steps averaged; where they are, they are the weights the run is used with
    rewinds                 only once a run went back before a divergence (train.rewinds): how many times

A fitted prior (`epoch-NNNN.prior.pt`) holds: prior {name, params}, state, epoch, fitted_to,
before, after.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from cvaekit.errors import CvaekitError, DiskFullError


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file,
    and processes writing the same file at once never mix their bytes. A full disk leaves
    the previous `path` as it was and raises DiskFullError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch's zip writer reports a failed write as RuntimeError
        tmp.unlink(missing_ok=True)
        if not is_disk_full(exc, path.parent):
            raise
        raise DiskFullError(f"No space left to write '{path}' ({exc}); "
                            f"{'the previous one is intact' if path.is_file() else 'nothing was written'}.") from None


def keep_copy(source: Path, target: Path) -> None:
    """`target` becomes a copy of the checkpoint `source`, whole or not at all: a hard link
    (`source` is only ever replaced by a rename, so the link keeps this copy intact), or a
    copied file on a file system without hard links."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        try:
            shutil.copyfile(source, tmp)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
    tmp.replace(target)


def is_disk_full(exc: BaseException, folder: Path, need: int = 1 << 20) -> bool:
    """Whether `exc` is a write that failed for lack of space in `folder`."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, RuntimeError) and "write" in str(exc):
        try:
            return shutil.disk_usage(folder).free < need
        except OSError:
            return False
    return False


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CvaekitError(f"Checkpoint '{path}' does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - say which file is bad, not a pickle traceback
        raise CvaekitError(f"Checkpoint '{path}' cannot be read ({type(exc).__name__}: {exc}).") from None


FORMAT = 2  # 1: before the format was written; position had no caption draws


def write_training_checkpoint(path: str | os.PathLike, *, model: dict, optimizer: dict, epoch: int, step: int,
                              rng: dict, data_info: dict, recipe: dict, position: dict | None = None,
                              grad_level: float | None = None, lowest_loss: float | None = None,
                              skipped: list[int] | None = None, ema: dict | None = None,
                              ema_updates: int = 0, rewinds: int = 0) -> None:
    """A training checkpoint in the current format (see the module's docstring)."""
    state = {"format": FORMAT, "model": model, "optimizer": optimizer, "epoch": epoch, "step": step,
             "rng": rng, "data_info": data_info, "recipe": recipe}
    if position is not None:
        state["position"] = position
    if grad_level is not None:
        state["grad_level"] = grad_level
    if lowest_loss is not None:
        state["lowest_loss"] = lowest_loss
    if skipped and skipped[0]:
        state["skipped"] = list(skipped)
    if ema is not None:
        state["ema"], state["ema_updates"] = ema, ema_updates
    if rewinds:
        state["rewinds"] = rewinds
    save_checkpoint(state, path)


def weights_in_use(state: dict[str, Any]) -> dict[str, Any]:
    """The weights a trained model is used with (evaluated, sampled, served, exported): the
    average of its weights where the run kept one (train.ema), else the trained weights."""
    return state["ema"] if "ema" in state else state["model"]


def read_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A training checkpoint in the current format, whichever format it was written in."""
    state = load_checkpoint(path)
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise CvaekitError(f"'{path}' is not a cvaekit training checkpoint (it has no model and epoch).")
    version = state.get("format", 1)
    if version > FORMAT:
        raise CvaekitError(f"Checkpoint '{path}' was written in format {version} by a newer cvaekit; "
                           f"this one reads formats 1 to {FORMAT}. Upgrade cvaekit.")
    return upgrade(state)


def upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """Format 1 to 2: an epoch stopped part-way gets the caption draws it would have drawn,
    from the order generator's saved state (exactly what training drew next)."""
    if state.get("format", 1) < 2:
        position = state.get("position")
        if position is not None and position.get("draws") is None:
            gen = torch.Generator()
            gen.set_state(state["rng"]["order"])
            position["draws"] = torch.rand(len(position["order"]), generator=gen)
            state["rng"]["order"] = gen.get_state()
        state["format"] = 2
    return state


def write_fitted_prior(path: str | os.PathLike, *, name: str, params: dict, state: dict, epoch: int,
                       fitted_to: str, before: dict, after: dict) -> None:
    """A prior fitted to a checkpoint's codes (`cvaekit fit-prior`), saved beside it."""
    save_checkpoint({"format": FORMAT, "prior": {"name": name, "params": params}, "state": state,
                     "epoch": epoch, "fitted_to": fitted_to, "before": before, "after": after}, path)


def read_fitted_prior(path: str | os.PathLike) -> dict[str, Any]:
    saved = load_checkpoint(path)
    if not isinstance(saved, dict) or "prior" not in saved or "state" not in saved:
        raise CvaekitError(f"'{path}' is not a fitted prior (it has no prior and state).")
    return saved
