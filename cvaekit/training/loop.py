"""The training loop: epochs of steps, a checkpoint at the recipe's pace (last.pt also every
`save_every_steps` steps inside an epoch, so a crash loses little), and a stop that saves
where it stands (Ctrl-C) or says where the loss went wrong (NaN, infinite or blown up).

`train` (run.py) builds the parts from the recipe; the loop only trains them. Its state
(`LoopState`) is what a checkpoint saves besides the weights, so a resumed run continues
bit-identically.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from torch.optim.swa_utils import AveragedModel

from cvaekit.core.data import DataSource
from cvaekit.core.model import CVAE
from cvaekit.core.objectives import Objective
from cvaekit.evaluation.context import EvalContext, run_metrics
from cvaekit.evaluation.figures import loss_curve
from cvaekit.evaluation.progress import (
    ProgressFigures,
    draw_figures,
    write_progress_figures,
)
from cvaekit.recipe import Recipe
from cvaekit.runtime.device import Distributed, console, mixed_precision
from cvaekit.runtime.interrupts import Interrupts
from cvaekit.store.checkpoint import keep_copy, write_training_checkpoint
from cvaekit.store.runs import RunDir
from cvaekit.training.averaging import average_state
from cvaekit.training.batches import HostBatches, ResidentSplit, place, prefetched, step_generator
from cvaekit.training.blame import trial_draw, watched
from cvaekit.training.divergence import TrainingDiverged, clip_or_skip, diverged
from cvaekit.training.rewinding import Rewinder
from cvaekit.training.schedules import epoch_order, kl_weight, learning_rate
from cvaekit.training.state import EpochPlan, LoopState


@dataclass
class LoopParts:
    """What the loop trains and where it writes, built by `train` from the recipe."""

    recipe: Recipe
    run: RunDir
    model: CVAE
    net: torch.nn.Module  # what the steps call: the model, wrapped for DDP or compiled
    optimizer: torch.optim.Optimizer
    data: DataSource
    metrics: list[Any]
    ddp: Distributed
    interrupts: Interrupts
    first_step_parts: dict[torch.nn.Module, Any] | None = None  # named if one fails at the first step
    progress: bool = True
    trackers: Any = field(default=None)  # the run's Trackers: the recipe's loggers, the tuner's reports
    average: AveragedModel | None = None  # train.ema: the weights' moving average, updated after every step


class TrainingLoop:
    def __init__(self, parts: LoopParts, state: LoopState):
        self.recipe, self.run, self.model, self.ddp = parts.recipe, parts.run, parts.model, parts.ddp
        self.net, self.optimizer, self.data, self.metrics = parts.net, parts.optimizer, parts.data, parts.metrics
        self.interrupts, self.trackers = parts.interrupts, parts.trackers
        self.first_step_parts, self.average = parts.first_step_parts, parts.average
        self.in_use = self.average.module if self.average is not None else self.model  # measured, drawn, saved for use
        self.state = state
        self.save_every = parts.recipe.train.save_every_steps  # mid-epoch saves of last.pt (None: none)
        self.lr: float | None = None  # the learning rate the optimizer has now (set by the first step)
        self.progress = parts.progress and self.ddp.main
        self.train_split = replace(self.data.train.head(self.recipe.train.limit), shift=self.recipe.train.shift)
        self.test_split = self.data.test.head(self.recipe.eval.limit)
        self.source = self._batches()
        self.rewinder = Rewinder(self.recipe, self.run, self.model, self.optimizer, self.average,
                                 len(self.train_split), self.ddp.main)
        self.figures = ProgressFigures(self.data, self.recipe) if self.ddp.main else None  # drawn at the end
        amp = self.recipe.train.amp
        self.autocast = mixed_precision(self.ddp.device, say=self.ddp.main) if amp else nullcontext()

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

    def fit(self) -> None:
        """Train from the state's epoch to the recipe's last (continuing one a Ctrl-C stopped)."""
        cfg = self.recipe.train
        columns = [TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                   TaskProgressColumn(), TextColumn("loss {task.fields[loss]:.2f}"),
                   TextColumn("{task.fields[ips]:,.0f} img/s"), TimeRemainingColumn()]
        with Progress(*columns, console=console, disable=not self.progress) as bar:
            fields = dict(epoch=self.state.epoch, epochs=cfg.epochs, loss=0.0, ips=0.0)
            task = bar.add_task("train", total=len(self.train_split), **fields)
            while self.state.epoch < cfg.epochs:
                epoch = self.state.epoch + 1
                bar.reset(task, total=len(self.train_split), **{**fields, "epoch": epoch})
                try:
                    record = self._epoch(epoch, bar, task)
                except TrainingDiverged as error:  # stops the run unless train.rewinds allows going back
                    self._went_back(self.rewinder.rewind(error, self.state))
                    continue
                self.state.epoch_done(record["loss"])
                self.state.epoch, self.state.position = epoch, None
                if self.ddp.main:
                    self._save_last()
                    self.rewinder.epoch_saved()
                    self.run.log(record)
                    if self.trackers:
                        self.trackers.epoch(record)
                    if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
                        self._checkpoint(epoch)
                self.ddp.barrier()
        self.rewinder.finished()
        if self.ddp.main:
            write_progress_figures(self.in_use, self.data, self.recipe, self.run, self.figures)

    def _went_back(self, record: dict[str, Any]) -> None:
        """After a rewind: last.pt holds where the run went back to, and metrics.jsonl says so."""
        self.lr = None  # the next step sets the rate the schedule gives at the restored step
        if self.ddp.main:
            self._save_last()
            self.run.log(record)
        self.ddp.barrier()

    def _plan(self) -> EpochPlan:
        """A fresh epoch's order, or the saved one of the epoch a Ctrl-C stopped (the whole
        epoch's, so a resume under torchrun finds every process's share)."""
        position = self.state.position
        if position is None:
            order, draws = epoch_order(len(self.train_split), self.state.order)
            done, seen, totals = 0, 0, [0.0, 0.0, 0.0]
        else:
            order, draws, done, seen = position["order"], position["draws"], position["batches"], position["seen"]
            totals = position["totals"].tolist()
        cfg = self.recipe.train
        share = cfg.batch_size // self.ddp.world if cfg.processes > 1 else cfg.batch_size  # torchrun: each its own
        shard = self.ddp.shard(order)
        batches, batch_draws = shard.split(share), self.ddp.shard(draws).split(share)
        return EpochPlan(order, draws, shard, list(batches), list(batch_draws), done, seen, totals)

    def _objective(self, total_steps: int) -> Objective:
        """This step's loss: its KL weight follows the recipe's schedule, a function of the step."""
        cfg = self.recipe.train
        weight = kl_weight(cfg.kl_weight, cfg.kl_schedule, self.state.step, total_steps,
                           cfg.kl_warmup, cfg.kl_cycles, cfg.kl_ratio)
        return Objective.from_train(cfg, weight)

    def _step(self, images: torch.Tensor, raw: Any, total_steps: int) -> dict[str, torch.Tensor]:
        """One optimizer step on a batch; the loss terms (nats per image)."""
        cfg = self.recipe.train
        first, self.first_step_parts = self.first_step_parts, None
        with watched(first, self.model.conditioner) if first else nullcontext():
            with self.autocast:
                terms = self.net(images, raw, self._objective(total_steps))
            self.optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if first:
                trial_draw(self.model, raw)
        clip_or_skip(self.model, self.optimizer, self.state, self.recipe, self.run.last)
        lr = learning_rate(cfg.lr, cfg.lr_schedule, self.state.step, total_steps, cfg.cooldown)
        if lr != self.lr:  # set when it changes: a constant rate is set once
            for group in self.optimizer.param_groups:
                group["lr"] = lr * group.get("lr_factor", 1.0)  # train.part_lr
            self.lr = lr
        self.optimizer.step()
        if self.average is not None:
            self.average.update_parameters(self.model)
        self.state.step += 1
        return terms

    def _epoch(self, epoch: int, bar: Progress, task: TaskID) -> dict[str, Any]:
        """One epoch (or its rest, after a Ctrl-C); its record for metrics.jsonl."""
        self.net.train()
        plan = self._plan()
        total_steps = self.recipe.train.epochs * len(plan.batches)
        every = 1 if self.ddp.device.type == "cpu" else 32  # a check costs a sync on a GPU
        pending: list[tuple] = []  # the steps since the last check: their loss terms (on the device), images
        start = shown = time.perf_counter()
        seen_at_start = plan.seen
        self.interrupts.in_steps = True
        try:
            for b, images, raw in prefetched(self.source, plan.batches, plan.batch_draws, plan.done):
                if self.train_split.drawn_per_step:
                    images = self.train_split.drawn(images, step_generator(images.device, self.recipe.seed,
                                                                           self.state.step, self.ddp.rank))
                if self.recipe.train.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                terms = self._step(images, raw, total_steps)
                pending.append((terms["loss"].detach(), terms["recon"].detach(), terms["kl"].detach(), len(images)))
                alone_asked = self.ddp.world == 1 and self.interrupts.requested  # one process stops at any step
                save = self.save_every and self.state.step % self.save_every == 0 and b < len(plan.batches) - 1
                if self.state.step % every == 0 or b == len(plan.batches) - 1 or alone_asked or save:
                    bad_step, bad_loss = self._fold(plan, pending)
                    pending = []
                    agree = self.ddp.world > 1 or bad_step >= 0 or alone_asked  # alone, nothing to exchange
                    if agree and self._agree(epoch, bad_step, bad_loss):
                        self._stop_inside(plan, epoch, b + 1)
                    if save and self.ddp.main:  # a crash loses at most save_every_steps steps
                        self.state.position = plan.position(epoch, b + 1)
                        self._save_last()
                        self.state.position = None
                now = time.perf_counter()
                if self.progress and (now - shown > 0.25 or plan.seen == plan.size):
                    shown = now
                    bar.update(task, completed=plan.seen * self.ddp.world, loss=plan.totals[0] / max(plan.seen, 1),
                               ips=(plan.seen - seen_at_start) * self.ddp.world / (now - start))
        finally:
            self.interrupts.in_steps = False
        return self._record(plan, epoch, start, seen_at_start)

    def _fold(self, plan: EpochPlan, pending: list[tuple]) -> tuple[int, float]:
        """Add the steps since the last check to the epoch's totals, one step after another in
        float64 (so where the checks fall, and a resume, change nothing); the first of those
        steps whose loss is infinite, NaN or blown up, as (step, loss), else (-1, 0.0)."""
        values = torch.stack([t for row in pending for t in row[:3]]).tolist()  # one sync on a device
        first = self.state.step - len(pending) + 1
        bad, factor = (-1, 0.0), self.recipe.train.blowup_factor
        for i, row in enumerate(pending):
            terms, n = values[3 * i:3 * i + 3], row[3]
            if bad[0] < 0 and (not math.isfinite(terms[0]) or self.state.blown_up(terms[0], factor)):
                bad = (first + i, terms[0])
            plan.totals = [total + value * n for total, value in zip(plan.totals, terms)]
            plan.seen += n
        return bad

    def _record(self, plan: EpochPlan, epoch: int, start: float, seen_at_start: int) -> dict[str, Any]:
        """The epoch's means, after checking that their sums stayed finite in every process."""
        overflowed = not all(math.isfinite(t) for t in plan.totals)  # a sum overflowed though each loss was finite
        self._agree(epoch, self.state.step if overflowed else -1, plan.totals[0])
        seconds = time.perf_counter() - start
        loss, recon, kl = (total / max(plan.seen, 1) for total in plan.totals)
        skipped = {"skipped_steps": self.state.skipped} if self.recipe.train.skip_grad_factor else {}  # in all
        return {"kind": "train", "epoch": epoch, "step": self.state.step, "loss": loss, "recon": recon, "kl": kl,
                **skipped, "images_per_s": (plan.seen - seen_at_start) * self.ddp.world / seconds, "seconds": seconds}

    def _stop_inside(self, plan: EpochPlan, epoch: int, batches_done: int) -> None:
        """Ctrl-C: save where this epoch stands, then stop (every process after the save)."""
        if self.ddp.main:
            self.state.position = plan.position(epoch, batches_done)
            self._save_last()
        self.ddp.barrier()  # no process leaves (and gets its peers killed) before the save
        raise KeyboardInterrupt

    def _agree(self, epoch: int, bad_step: int | torch.Tensor, bad_loss: float | torch.Tensor) -> bool:
        """Where the processes compare (every step on a CPU, every 32 on a GPU), in one exchange:
        stop with the error if a loss became infinite or NaN in any of them (`bad_step` >= 0),
        naming the first; otherwise whether a Ctrl-C in any of them stops all after this step.
        Each process sees only its share of the batch, so one alone cannot decide."""
        rows = self.ddp.gather([float(bad_step), float(bad_loss), float(self.interrupts.requested)])
        bad = [(s, v) for s, v, _ in rows if s >= 0]
        if bad:
            first, value = min(bad, key=lambda row: row[0])
            raise diverged(self.recipe, self.state, self.run.last, epoch, int(first), value)
        return any(asked for _, _, asked in rows)

    def _save_last(self) -> None:
        """checkpoints/last.pt: the weights, the optimizer and the loop's state."""
        write_training_checkpoint(self.run.last, model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                                  data_info=self.model.data_info.to_dict(), recipe=self.recipe.to_dict(),
                                  **self.state.state_dict(), **average_state(self.average))

    def _checkpoint(self, epoch: int) -> None:
        """Keep this epoch's checkpoint, measure it, and draw its figures."""
        target = self.run.checkpoint(epoch)
        keep_copy(self.run.last, target)
        results = run_metrics(self.metrics, EvalContext(self.in_use, self.data, self.test_split, seed=self.recipe.seed))
        self.run.log({"kind": "eval", "epoch": epoch, "step": self.state.step,
                      "checkpoint": str(target.relative_to(self.run.path)), **results})
        self.figures.add(epoch, self.in_use)
        draw_figures(self.in_use, self.recipe, self.run, epoch, self.figures)
        loss_curve(self.run.records(), self.run.loss_curve)
        if self.ddp.main and self.progress:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in results.items())
            console.print(f"[bold]epoch {epoch}[/] checkpoint saved  {shown}")
        if self.trackers:  # last: the tuner's report may stop the run here (a pruned trial)
            self.trackers.checkpoint(epoch, results, {"samples": self.run.samples(epoch),
                                                      "reconstructions": self.run.reconstructions(epoch)})
