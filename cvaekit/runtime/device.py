"""Where training runs: the device, its precision, and this process's place under torchrun.

Training, evaluation and generation all take their device from here."""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext

import torch
import torch.distributed as dist
from rich.console import Console

from cvaekit.errors import RecipeError

console = Console(stderr=True)


@contextmanager
def flush_denormals(device: torch.device):
    """Treat subnormal floats as zero on the CPU while training.

    A ReLU unit that dies leaves Adam's running mean stuck at the smallest subnormals (0.9 x
    the smallest float rounds back to itself); about half the MLP's encoder units do, and CPU
    arithmetic on subnormals is slow. Flushing them keeps later epochs as fast as early ones."""
    flush = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flush:
            torch.set_flush_denormal(False)


@contextmanager
def cpu_threads(device: torch.device, threads: int | None):
    """Train with `threads` intra-op threads on the CPU (the recipe's `train.threads`), unless
    the user set OMP_NUM_THREADS; the count before is restored after. A recipe fixes its count,
    so a resumed run sums floats in the same order as the run it continues."""
    chosen = device.type == "cpu" and threads is not None and "OMP_NUM_THREADS" not in os.environ
    before = torch.get_num_threads()
    if chosen:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if chosen:
            torch.set_num_threads(before)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 in hardware (CUDA; AVX512-BF16 or AMX CPUs)."""
    if device.type == "cuda":
        return True
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so looked up softly
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def mixed_precision(device: torch.device, say: bool = True):
    """bfloat16 autocast for `train.amp`; on a CPU without native bf16 it would be slower
    than float32, so training stays in float32 there and says so (when `say`: once per run,
    not once per DDP process)."""
    if not native_bf16(device):
        if say:
            console.print(f"[yellow]train.amp: this {device.type} has no native bfloat16; training in float32.[/]")
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def resolve_device(name: str, what: str = "train.device") -> torch.device:
    """`name` as a torch device this machine has; anything else (a device torch does not
    know, a GPU that is not here) is an error naming the choices, before any work starts."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    choices = "Use 'auto' (the GPU when there is one), 'cpu', 'cuda' or 'cuda:N'"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise RecipeError(f"{what} is '{name}', not a device torch knows. {choices}.") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise RecipeError(f"{what} is '{name}', not a device cvaekit runs on. {choices}.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RecipeError(f"{what} is '{name}' but this machine has no CUDA device. Use 'auto' or 'cpu'.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise RecipeError(f"{what} is '{name}' but this machine has {torch.cuda.device_count()} CUDA devices "
                          f"(cuda:0 to cuda:{torch.cuda.device_count() - 1}).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RecipeError(f"{what} is '{name}' but this machine has no MPS device. Use 'auto' or 'cpu'.")
    return device


class Distributed:
    """This process's place under torchrun (rank 0 of 1 without it)."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = device
        if self.world > 1 and not dist.is_initialized():
            if device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
            backend = "nccl" if device.type == "cuda" else "gloo"
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
            if attempt is None:
                dist.init_process_group(backend)
            else:  # torchrun: its store outlives a restart; the peers' addresses of the group it replaced must not be read
                store, _, _ = next(dist.rendezvous("env://"))
                dist.init_process_group(backend, store=dist.PrefixStore(f"cvaekit/attempt-{attempt}", store),
                                        rank=self.rank, world_size=self.world)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, value):
        """Process 0's `value`, on every process."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, values: list[float]) -> list[float]:
        """Each of `values` summed over the processes (every process must ask at the same point)."""
        if self.world == 1:
            return list(values)
        box = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(box)
        return box.tolist()

    def gather(self, values: list[float]) -> list[list[float]]:
        """Every process's `values`, in rank order (every process must ask at the same point)."""
        if self.world == 1:
            return [list(values)]
        mine = torch.tensor(values, dtype=torch.float64, device=self.device)
        rows = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(rows, mine)
        return [row.tolist() for row in rows]

    def average_gradients(self, module: torch.nn.Module) -> None:
        """Each gradient of `module` averaged over the processes, in one all-reduce (for a
        module trained without the DDP wrapper, which only hooks `forward`)."""
        if self.world == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view_as(g))

    def same_weights(self, module: torch.nn.Module) -> None:
        """Process 0's weights of `module` in every process."""
        if self.world > 1:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This process's equal share of an epoch's order."""
        per = len(order) // self.world
        return order[self.rank * per:(self.rank + 1) * per] if self.world > 1 else order
