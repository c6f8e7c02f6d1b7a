"""Where training stands: the loop's state that a checkpoint saves beside the weights, and
the plan of the epoch under way."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

SKIP_WARMUP = 50  # steps that set the running gradient norm before any is skipped
SKIP_DECAY = 0.99  # the running norm's memory: about the last hundred steps taken


@dataclass
class LoopState:
    """Where training stands beyond the weights: what a checkpoint saves to resume exactly."""

    order: torch.Generator  # draws each epoch's order and caption picks
    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps taken
    position: dict[str, Any] | None = None  # inside the next epoch: where a Ctrl-C stopped it
    grad_level: float | None = None  # the running gradient norm of taken steps (`skip_grad_factor`)
    lowest_loss: float | None = None  # the lowest epoch mean loss so far (`blowup_factor`)
    skipped: int = 0  # steps whose update was skipped (`skip_grad_factor`), in all
    skipped_in_row: int = 0  # of them, the last ones in a row (none taken since)
    rewinds: int = 0  # times the run went back before a divergence (`train.rewinds`)

    def blown_up(self, loss: float, factor: float | None) -> bool:
        """Whether a finite step loss is so far above the lowest epoch mean that training has
        diverged: above it by more than `factor` times its size. A loss of 6e10 after epochs
        near 6,000 is finite, and a run left to go on wastes all its remaining epochs."""
        low = self.lowest_loss
        return factor is not None and low is not None and loss - low > factor * abs(low)

    def epoch_done(self, mean_loss: float) -> None:
        """Keep the lowest epoch mean loss, the level a blown-up step is measured against."""
        if math.isfinite(mean_loss) and (self.lowest_loss is None or mean_loss < self.lowest_loss):
            self.lowest_loss = mean_loss

    def too_steep(self, norm: float, factor: float) -> bool:
        """Whether a step whose gradient norm is `norm` is skipped: above `factor` times the
        running norm of the steps taken (VDVAE's skip, made relative so that one factor suits a
        loss in nats per image at any image size; one spike in a deep hierarchy's gradients
        otherwise undoes many steps). The first `SKIP_WARMUP` steps set the level and are
        taken; a non-finite norm is always steep. A step taken moves the running norm."""
        level = self.grad_level
        if not math.isfinite(norm) or (level is not None and self.step >= SKIP_WARMUP and norm > factor * level):
            self.skipped, self.skipped_in_row = self.skipped + 1, self.skipped_in_row + 1
            return True
        self.skipped_in_row = 0
        self.grad_level = norm if level is None else SKIP_DECAY * level + (1 - SKIP_DECAY) * norm
        return False

    def state_dict(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "order": self.order.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"epoch": self.epoch, "step": self.step, "rng": rng, "position": self.position,
                "grad_level": self.grad_level, "lowest_loss": self.lowest_loss,
                "skipped": [self.skipped, self.skipped_in_row], "rewinds": self.rewinds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order.set_state(state["rng"]["order"])
        torch.set_rng_state(state["rng"]["torch"])
        if torch.cuda.is_available() and state["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.epoch, self.step, self.position = state["epoch"], state["step"], state.get("position")
        self.grad_level, self.lowest_loss = state.get("grad_level"), state.get("lowest_loss")
        self.skipped, self.skipped_in_row = state.get("skipped", (0, 0))  # none in checkpoints before 0.19
        self.rewinds = state.get("rewinds", 0)  # none in checkpoints before 0.21


@dataclass
class EpochPlan:
    """One epoch's order and caption draws (whole, and this process's share), and its totals."""

    order: torch.Tensor
    draws: torch.Tensor
    shard: torch.Tensor  # this process's share of `order`
    batches: list[torch.Tensor]
    batch_draws: list[torch.Tensor]
    done: int  # batches done before a Ctrl-C stopped the epoch
    seen: int  # images seen by this process
    totals: list[float]  # loss, recon, kl, summed over the images seen (float64, step after step)

    @property
    def size(self) -> int:
        """Images in this process's share of the epoch."""
        return len(self.shard)

    def position(self, epoch: int, batches_done: int) -> dict[str, Any]:
        """Where this epoch stands after `batches_done` batches: what a checkpoint saved inside
        it holds to continue it exactly (the whole epoch's order, so every process finds its share)."""
        return {"epoch": epoch, "batches": batches_done, "of": len(self.batches), "order": self.order,
                "draws": self.draws, "seen": self.seen, "totals": torch.tensor(self.totals, dtype=torch.float64)}
