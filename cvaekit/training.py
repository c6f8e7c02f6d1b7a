"""Training a recipe: the loop, checkpoints at the recipe's pace, evaluation and figures.

Runs on CPU or CUDA; under `torchrun` each process trains on its share of every epoch
(DistributedDataParallel) and process 0 writes the run folder.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from .blame import parts_of, watched
from .checkpoint import is_disk_full, load_checkpoint, save_checkpoint
from .data import DataSource
from .errors import CvaekitError, DiskFullError, RecipeError
from .device import Distributed, console, flush_denormals, mixed_precision, resolve_device
from .evaluation import EvalContext, run_metrics
from .figures import loss_curve
from .interrupts import Interrupts
from .memory import check_fits, estimate
from .model import build_model, elbo
from .plugins import get_registry
from .processes import check_processes, launched, run_in_processes
from .progress_figures import ProgressFigures, draw_figures, write_progress_figures
from .recipe import Recipe, dump_recipe, load_recipe
from .registry import Registry, named_failures
from .resident import HostBatches, ResidentSplit, place, prefetched
from .runs import RunDir, fitted_prior_path


class TrainingInterrupted(CvaekitError):
    """Ctrl-C during training: what is saved stays saved, and the run can be resumed."""

    exit_code = 130


class TrainingDiverged(CvaekitError):
    """The loss became infinite or NaN; training stopped at that step."""


def train(recipe: Recipe | str | os.PathLike, *, overrides: list[str] = (), resume: str | os.PathLike | None = None,
          registry: Registry | None = None, progress: bool = True) -> Path:
    """Train what `recipe` describes (a Recipe, or a YAML path) and return its run folder.

    With `resume`, continue that run from its last checkpoint; the recipe defaults to the
    run's own, and its model and data must match it."""
    registry = registry or get_registry()
    run = RunDir.open(resume) if resume is not None else None
    if not isinstance(recipe, Recipe):
        source = recipe if recipe is not None else (run.recipe_file if run else None)
        if source is None:
            raise RecipeError("Give a recipe file, or --resume RUN to continue a run.")
        recipe = load_recipe(source, overrides, registry)
    state = None
    if run is not None:
        _check_resumable(recipe, run, registry)
        state = load_checkpoint(run.last)
        if state["epoch"] >= recipe.train.epochs:  # before any data or model is built
            path = _already_trained(run, state["epoch"], recipe.train.epochs, recipe.fit_prior is not None)
            _second_stage(recipe, run, progress)  # under torchrun, each process fits its share
            return path

    device = resolve_device(recipe.train.device)
    check_processes(recipe.train.processes, recipe.train.batch_size)
    if recipe.train.processes > 1 and device.type == "cpu" and not launched():
        args = (recipe.to_dict(), run.path if run else None, progress)
        return Path(run_in_processes(_train_launched, args, recipe.train.processes))  # the fit_prior stage too
    ddp = Distributed(device)
    torch.manual_seed(recipe.seed)
    with named_failures():  # a part that raises while being built is named in the error
        data = registry.build("dataset", recipe.data.name, recipe.data.params)
        model = _build_checked(recipe, data, registry, ddp.device)
        metrics = [registry.build("metric", m.name, m.params) for m in recipe.eval.metrics]
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.train.lr, weight_decay=recipe.train.weight_decay,
                                 fused=ddp.device.type in ("cpu", "cuda"))  # one kernel per step: ~25% faster here
    order_gen = torch.Generator().manual_seed(recipe.seed)
    epoch = step = 0
    position = None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        order_gen.set_state(state["rng"]["order"])
        torch.set_rng_state(state["rng"]["torch"])
        if torch.cuda.is_available() and state["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        epoch, step = state["epoch"], state["step"]
        position = state.get("position")  # where in an epoch a Ctrl-C stopped, if it did
    created = run is None
    if ddp.main:
        if run is None:
            run = RunDir.create(recipe)
        else:
            run.truncate_records(epoch)
            dump_recipe(recipe, run.recipe_file)  # the resumed run may train for more epochs
    run = RunDir(Path(ddp.share(str(run.path) if ddp.main else None)))

    loop = _Loop(recipe, run, model, _network(model, recipe, ddp), optimizer, data, metrics, order_gen, ddp, progress)
    try:
        with flush_denormals(ddp.device), Interrupts(distributed=ddp.world > 1) as interrupts:
            loop.interrupts = interrupts
            loop.parts = parts_of(model, recipe, registry)  # named if one fails at the first step
            loop.fit(epoch, step, position)
    except KeyboardInterrupt:
        _drop_if_unsaved(run, created, ddp)
        raise TrainingInterrupted(_interrupted_text(run, loop)) from None
    except (OSError, RuntimeError) as exc:
        _drop_if_unsaved(run, created, ddp)
        if not is_disk_full(exc, run.path):
            raise
        raise DiskFullError(f"No space left on the device while writing into '{run.path}' ({exc}). "
                            + _resume_text(run, "Free some space, then continue with")) from None
    except CvaekitError as exc:
        _drop_if_unsaved(run, created, ddp)
        if isinstance(exc, DiskFullError):
            raise DiskFullError(f"{exc} " + _resume_text(run, "Free some space, then continue with")) from None
        raise
    else:
        _second_stage(recipe, run, progress)  # with several processes, each fits on its share of the codes
    finally:
        if ddp.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return run.path


def _train_launched(recipe: dict, resume: Path | None, progress: bool) -> str:
    """What each process of `train.processes` runs: its share of the training."""
    try:
        return str(train(recipe, resume=resume, progress=progress))
    except KeyboardInterrupt:  # before training began: nothing of this run was saved by it
        raise TrainingInterrupted("Interrupted before training began.") from None


def _second_stage(recipe: Recipe, run: RunDir, progress: bool) -> None:
    """The recipe's `fit_prior` stage, once training is done; an interrupt there loses no training."""
    if recipe.fit_prior is None:
        return
    from .fit_prior import second_stage

    try:
        second_stage(run, recipe.fit_prior, recipe.train.device, progress)
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"Interrupted while fitting the prior (the recipe's fit_prior stage); the trained "
                                  f"model is saved in '{run.path}'. Fit it with: cvaekit run --resume {run.path}") from None


def _network(model: torch.nn.Module, recipe: Recipe, ddp: Distributed) -> torch.nn.Module:
    """What the steps call: the model (its weights in channels-last order if asked), wrapped for
    DDP, compiled if asked. The checkpoint always saves the plain model's state_dict."""
    if recipe.train.channels_last:
        model.to(memory_format=torch.channels_last)
    net = ddp.wrap(model)
    return torch.compile(net) if recipe.train.compile else net


def _build_checked(recipe: Recipe, data: DataSource, registry: Registry, device: torch.device):
    """The recipe's model on `device`, after the memory guard found that it fits there."""
    info = data.info()
    spec = recipe.model.conditioner
    conditioner = registry.build("conditioner", spec.name, spec.params, data=info)
    raw = _sample_conditions(data, recipe.train.batch_size)
    if raw is not None:
        state = torch.get_rng_state()  # the guard must not change what training draws
        est = estimate(recipe.model, info, conditioner, registry, raw, recipe.train.batch_size)
        torch.set_rng_state(state)
        check_fits(est, recipe.model, device)
    return build_model(recipe.model, info, registry, conditioner=conditioner).to(device)


def _sample_conditions(data: DataSource, batch_size: int):
    """A few training conditions for the memory guard's trial pass (None for an empty split)."""
    n = min(len(data.train), batch_size, 16)
    if n == 0:
        return None
    return data.train.batch(torch.arange(n), generator=torch.Generator().manual_seed(0))[1]


def _drop_if_unsaved(run: RunDir | None, created: bool, ddp: Distributed) -> None:
    """A run this call created that stopped before its first checkpoint leaves no folder."""
    if run is not None and created and ddp.main and not run.last.is_file():
        shutil.rmtree(run.path, ignore_errors=True)


def _resume_text(run: RunDir, lead: str) -> str:
    if not run.last.is_file():
        return "Nothing had been saved yet, so the run folder was removed; start the run again."
    state = load_checkpoint(run.last)
    where = f"epoch {state['epoch']}" if "position" not in state else (
        f"step {state['step']} (batch {state['position']['batches']} of epoch {state['position']['epoch']})")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    command = f"torchrun --nproc_per_node {world} -m cvaekit" if world > 1 and not launched() else "cvaekit"
    return f"The last checkpoint ({where}) is intact. {lead}: {command} run --resume {run.path}"


def _interrupted_text(run: RunDir, loop: _Loop) -> str:
    if not run.last.is_file():
        return ("Interrupted before anything was saved; the run folder was removed. "
                "Start the run again to train.")
    done = max((e for e, _ in run.checkpoints()), default=None)
    return (f"Interrupted. Everything saved stays in '{run.path}' (kept checkpoints up to epoch "
            f"{done or 'none'}). " + _resume_text(run, "Continue with"))


def _already_trained(run: RunDir, done: int, epochs: int, second_stage: bool = False) -> Path:
    """Resuming a run that has trained all its epochs trains nothing (it may still fit the
    recipe's prior); fewer epochs than it has is a mistake."""
    more = f"cvaekit run --resume {run.path} --set train.epochs={done + 10}"
    if done > epochs:
        raise RecipeError(f"Run '{run.path}' has already trained {done} epochs, more than "
                          f"'train.epochs' ({epochs}) and is left as it is. To train further: {more}")
    pending = second_stage and not fitted_prior_path(run, done).is_file()
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one process says it
        rest = "fitting the recipe's prior" if pending else "nothing to do"
        console.print(f"Run '{run.path}' has already trained all {done} epochs of its recipe; {rest}. "
                      f"To train further: {more}", markup=False, highlight=False)
    return run.path


def _check_resumable(recipe: Recipe, run: RunDir, registry: Registry) -> None:
    if not run.last.is_file():
        raise CvaekitError(f"Run '{run.path}' has no checkpoint to resume from (checkpoints/last.pt).")
    saved = load_recipe(run.recipe_file, registry=registry).to_dict()
    new = recipe.to_dict()
    differ = [k for k in ("model", "data", "seed") if saved[k] != new[k]]
    if differ:
        raise RecipeError(f"Cannot resume '{run.path}' with this recipe: its {', '.join(differ)} "
                          f"differ from the run's. Resume without a recipe to use the run's own.")


def epoch_order(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """An epoch: image indices in their shuffled order, and one uniform draw per index that picks
    its caption. Every process draws the same (the same seed) and takes its share of both
    (`Distributed.shard`), so the shares of the processes are disjoint."""
    return torch.randperm(n, generator=generator), torch.rand(n, generator=generator)


def learning_rate(base: float, schedule: str, step: int, total: int, cooldown: float = 0.2) -> float:
    """The learning rate of optimizer step `step` (0-based) of `total`. A function of the step
    alone, so a resumed run continues on the same curve with nothing more saved. `cooldown`
    holds the rate, then lowers it over the last share of the steps: a short run keeps its
    high rate for most of its steps and still ends at a low one."""
    step = min(step, total)
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * step / total))
    if schedule == "cooldown":
        start = total * (1 - min(cooldown, 1.0))
        return base if step < start else base * (total - step) / (total - start)
    return base


class _Loop:
    def __init__(self, recipe, run, model, net, optimizer, data: DataSource, metrics, order_gen, ddp, progress):
        self.recipe, self.run, self.model, self.net = recipe, run, model, net
        self.optimizer, self.data, self.metrics = optimizer, data, metrics
        self.order_gen, self.ddp, self.progress = order_gen, ddp, progress and ddp.main
        self.train_split = data.train.head(recipe.train.limit)
        self.test_split = data.test.head(recipe.eval.limit)
        self.source = self._batches()
        self.interrupts = Interrupts(defer=False)
        self.parts = None  # the model's components, watched during the first step
        self.figures = None
        self.board = None
        if ddp.main:
            self.figures = ProgressFigures(data, recipe)  # filled at each checkpoint, drawn at the end
        if recipe.log.tensorboard and ddp.main:
            from .tensorboard import TensorBoardLog

            self.board = TensorBoardLog(run.path / "tensorboard")
        self.autocast = mixed_precision(ddp.device, say=ddp.main) if recipe.train.amp else nullcontext()

    def _batches(self) -> ResidentSplit | HostBatches:
        """Where training batches come from: the split held on the device, or the host."""
        cfg = self.recipe.train
        placed = place(cfg.data_on_device, self.train_split, self.model.conditioner, self.ddp.device, cfg.data_share)
        if placed.resident:
            source = ResidentSplit(self.train_split, self.model.conditioner, self.ddp.device)
        else:
            source = HostBatches(self.train_split, self.ddp.device)
        if self.ddp.main and self.progress and self.ddp.device.type != "cpu":
            where = "on the device" if placed.resident else "from pinned host memory"
            console.print(f"Training data {where}: {placed.reason}.", highlight=False)
        return source

    def fit(self, epoch: int, step: int, position: dict | None = None) -> None:
        """Train from `epoch` (completed) to the recipe's last; `position` continues an epoch
        that a Ctrl-C stopped part-way."""
        cfg = self.recipe.train
        columns = [TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                   TaskProgressColumn(), TextColumn("loss {task.fields[loss]:.2f}"),
                   TextColumn("{task.fields[ips]:,.0f} img/s"), TimeRemainingColumn()]
        with Progress(*columns, console=console, disable=not self.progress) as bar:
            task = bar.add_task("train", total=len(self.train_split), epoch=epoch, epochs=cfg.epochs, loss=0.0, ips=0.0)
            while epoch < cfg.epochs:
                epoch += 1
                bar.reset(task, total=len(self.train_split), epoch=epoch, epochs=cfg.epochs, loss=0.0, ips=0.0)
                record, step = self._epoch(epoch, step, bar, task, position)
                position = None
                if self.ddp.main:
                    self._save_last(epoch, step)
                    self.run.log(record)
                    if self.board:
                        self.board.epoch(record)
                    if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
                        self._checkpoint(epoch, step)
                self.ddp.barrier()
        if self.ddp.main:
            self._finish()

    def _finish(self) -> None:
        """Samples and reconstructions at every kept checkpoint, each in one figure."""
        write_progress_figures(self.model, self.data, self.recipe, self.run, self.figures)
        if self.board:
            self.board.close()

    def _epoch(self, epoch: int, step: int, bar: Progress, task, position: dict | None = None) -> tuple[dict, int]:
        cfg = self.recipe.train
        self.net.train()
        if position is None:
            full_order, full_draws = epoch_order(len(self.train_split), self.order_gen)
            done, seen = 0, 0
            totals = torch.zeros(3, device=self.ddp.device)  # summed on the device: no sync per batch
        else:  # the whole epoch's order is saved, so a resume under torchrun finds every share
            full_order, done, seen = position["order"], position["batches"], position["seen"]
            full_draws = position.get("draws")
            if full_draws is None:  # a checkpoint from before caption picks were drawn per epoch
                full_draws = torch.rand(len(full_order), generator=self.order_gen)
            totals = position["totals"].to(self.ddp.device)
        order, draws = self.ddp.shard(full_order), self.ddp.shard(full_draws)
        share = cfg.batch_size // self.ddp.world if cfg.processes > 1 else cfg.batch_size  # torchrun: each its own
        batches, batch_draws = order.split(share), draws.split(share)
        bad_step = torch.full((), -1, dtype=torch.long, device=self.ddp.device)  # the first non-finite loss
        bad_loss = torch.zeros((), device=self.ddp.device)
        sync_every = 1 if self.ddp.device.type == "cpu" else 32  # a check costs a sync on a GPU
        start = shown = time.perf_counter()
        seen_at_start = seen
        self.interrupts.in_steps = True
        try:
            for b, images, raw in prefetched(self.source, batches, batch_draws, done):
                if self.recipe.train.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                first, self.parts = self.parts, None
                with watched(first, self.model.conditioner) if first else nullcontext():
                    with self.autocast:
                        terms = elbo(*self.net(images, raw), images, cfg.kl_weight)
                    self.optimizer.zero_grad(set_to_none=True)
                    terms["loss"].backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                for group in self.optimizer.param_groups:
                    group["lr"] = learning_rate(cfg.lr, cfg.lr_schedule, step, cfg.epochs * len(batches), cfg.cooldown)
                self.optimizer.step()
                step += 1
                loss = terms["loss"].detach().float()
                new = (bad_step < 0) & ~torch.isfinite(loss)
                bad_step, bad_loss = torch.where(new, step, bad_step), torch.where(new, loss, bad_loss)
                n = images.shape[0]
                totals += torch.stack([terms["loss"], terms["recon"], terms["kl"]]).detach() * n
                seen += n
                compare = step % sync_every == 0 or b == len(batches) - 1
                alone_asked = self.ddp.world == 1 and self.interrupts.requested  # one process stops at any step
                if (compare or alone_asked) and self._agree(epoch, bad_step, bad_loss):
                    if self.ddp.main:  # Ctrl-C: save where this epoch stands, then stop
                        self._save_last(epoch - 1, step, position={
                            "epoch": epoch, "batches": b + 1, "of": len(batches), "order": full_order,
                            "draws": full_draws, "seen": seen, "totals": totals.cpu()})
                    self.ddp.barrier()  # no process leaves (and gets its peers killed) before the save
                    raise KeyboardInterrupt
                now = time.perf_counter()
                if self.progress and (now - shown > 0.25 or seen == len(order)):  # a few updates a second
                    shown = now
                    bar.update(task, completed=seen * self.ddp.world, loss=totals[0].item() / seen,
                               ips=(seen - seen_at_start) * self.ddp.world / (now - start))
        finally:
            self.interrupts.in_steps = False
        totals = totals.cpu()
        overflowed = not torch.isfinite(totals).all()  # a product overflowed though each loss was finite
        self._agree(epoch, torch.tensor(step if overflowed else -1), totals[0])
        seconds = time.perf_counter() - start
        loss, recon, kl = (totals / max(seen, 1)).tolist()
        return {"kind": "train", "epoch": epoch, "step": step, "loss": loss, "recon": recon, "kl": kl,
                "images_per_s": (seen - seen_at_start) * self.ddp.world / seconds, "seconds": seconds}, step

    def _agree(self, epoch: int, bad_step: torch.Tensor, bad_loss: torch.Tensor) -> bool:
        """Where the processes compare (every step on a CPU, every 32 on a GPU), in one exchange:
        stop with the error if a loss became infinite or NaN in any of them (`bad_step` >= 0),
        naming the first; otherwise whether a Ctrl-C in any of them stops all after this step.
        Each process sees only its share of the batch, so one alone cannot decide."""
        rows = self.ddp.gather([float(bad_step.item()), bad_loss.item(), float(self.interrupts.requested)])
        bad = [(s, v) for s, v, _ in rows if s >= 0]
        if bad:
            first, value = min(bad, key=lambda row: row[0])
            self._diverged(epoch, int(first), value)
        return any(asked for _, _, asked in rows)

    def _diverged(self, epoch: int, step: int, value: float) -> None:
        cfg = self.recipe.train
        kept = (f"The last good checkpoint stays '{self.run.last}'." if self.run.last.is_file()
                else "Nothing had been saved yet.")
        clip = f"lower 'train.grad_clip' (now {cfg.grad_clip:g})" if cfg.grad_clip else "set 'train.grad_clip' (e.g. 1.0)"
        raise TrainingDiverged(
            f"The loss became {value} at epoch {epoch}, step {step}: training diverged and stopped there. "
            f"{kept} Lower 'train.lr' (now {cfg.lr:g}) or {clip}.")

    def _save_last(self, epoch: int, step: int, position: dict | None = None) -> None:
        """Save after `epoch` complete epochs; `position` marks a checkpoint inside the next one."""
        rng = {"torch": torch.get_rng_state(), "order": self.order_gen.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "epoch": epoch, "step": step, "rng": rng,
                 "data_info": self.model.data_info.to_dict(),
                 "recipe": self.recipe.to_dict()}
        if position is not None:
            state["position"] = position
        save_checkpoint(state, self.run.last)

    def _checkpoint(self, epoch: int, step: int) -> None:
        """Keep this epoch's checkpoint, measure it, and draw its figures."""
        target = self.run.checkpoint(epoch)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.unlink(missing_ok=True)
        try:  # last.pt is only ever replaced by a rename, so a hard link keeps this copy intact
            os.link(self.run.last, tmp)
        except OSError:  # a file system without hard links
            try:
                shutil.copyfile(self.run.last, tmp)
            except OSError:
                tmp.unlink(missing_ok=True)
                raise
        tmp.replace(target)
        ctx = EvalContext(self.model, self.data, self.test_split, seed=self.recipe.seed)
        results = run_metrics(self.metrics, ctx)
        self.run.log({"kind": "eval", "epoch": epoch, "step": step,
                      "checkpoint": str(target.relative_to(self.run.path)), **results})
        self.figures.add(epoch, self.model)
        draw_figures(self.model, self.recipe, self.run, epoch, self.figures)
        if self.board:
            self.board.checkpoint(epoch, results, [self.run.samples(epoch), self.run.reconstructions(epoch)])
        loss_curve(self.run.records(), self.run.loss_curve)
        shown = "  ".join(f"{k} {v:.4g}" for k, v in results.items())
        if self.ddp.main and self.progress:
            console.print(f"[bold]epoch {epoch}[/] checkpoint saved  {shown}")
