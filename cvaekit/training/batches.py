"""Training batches from data held on the device, or from pinned host memory.

On a GPU the loop should never wait on the CPU. When the training split fits in a share of
the device's memory (`train.data_on_device`, `train.data_share`) its uint8 images go there
once, and so do its conditions: labels as a tensor, and for a frozen text encoder every
distinct caption encoded once into one table that a batch indexes. Each image's captions
are a row of caption ids, so the random caption of each image is a tensor operation, with
no Python per caption in the hot loop. Otherwise batches are gathered on the host, pinned,
and copied without blocking while the previous step runs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.data import RawConditions, Split, pick_captions
from cvaekit.errors import CvaekitError


@dataclass
class Placement:
    resident: bool
    reason: str  # why, for the log line at the start of training
    bytes: int  # what the resident data takes (or would take) on the device


def is_frozen(conditioner: nn.Module) -> bool:
    """A conditioner with nothing to train gives each text the same output every time."""
    return not any(p.requires_grad for p in conditioner.parameters())


def estimate_bytes(split: Split, conditioner: nn.Module) -> int:
    """The device memory the split would take resident: images, plus a frozen conditioner's
    table of distinct captions (its size per caption measured on a few of them)."""
    total = split.images.numel() * split.images.element_size()
    if split.labelled:
        return total + split.conditions.numel() * 8
    distinct = list(dict.fromkeys(c for caps in split.conditions for c in caps))
    if not distinct or not is_frozen(conditioner):
        return total
    with torch.no_grad():
        probe = Condition.of(conditioner(distinct[:16]))
    per = (probe.vector[0].numel() + probe.tokens[0].numel()) * probe.vector.element_size() + probe.tokens.shape[1]
    return total + per * len(distinct)


def place(setting: bool | str, split: Split, conditioner: nn.Module, device: torch.device, share: float) -> Placement:
    """Whether the training split lives on `device`: `setting` is true, false or "auto" (on a
    GPU when it takes at most `share` of the device's memory; on the CPU when the caption
    table, all it adds there, takes at most `share` of the memory)."""
    if setting is False:
        return Placement(False, "train.data_on_device is false", 0)
    size = estimate_bytes(split, conditioner)
    if setting is True:
        return Placement(True, "train.data_on_device is true", size)
    if device.type == "cpu":  # the images are in memory already: only the caption table is extra
        extra = size - split.images.numel() * split.images.element_size()
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if extra > share * ram:
            return Placement(False, f"its caption table would take {extra / 2**30:.1f} GiB, more than "
                                    f"train.data_share ({share:g}) of the {ram / 2**30:.0f} GiB of memory", size)
        return Placement(True, "on the CPU batches index the images where they are, and the caption table", size)
    if device.type != "cuda":
        return Placement(False, f"on {device.type} batches come from the host", size)
    capacity = torch.cuda.get_device_properties(device).total_memory
    if size > share * capacity:
        return Placement(False, f"it takes {size / 2**30:.1f} GiB, more than train.data_share ({share:g}) of the "
                                f"device's {capacity / 2**30:.0f} GiB", size)
    return Placement(True, f"it takes {size / 2**30:.2f} GiB of the device's {capacity / 2**30:.0f} GiB", size)


class ResidentSplit:
    """A training split on the device: a batch is one index of its tensors."""

    def __init__(self, split: Split, conditioner: nn.Module, device: torch.device, batch_size: int = 256):
        self.device, self.labels, self.table, self.texts = device, None, None, None
        self.first = split.caption == "first"  # a split that always uses each image's first caption
        self.images = split.images.to(device)
        if split.labelled:
            self.labels = split.conditions.to(device)
            return
        distinct: dict[str, int] = {}
        rows = [[distinct.setdefault(c, len(distinct)) for c in caps] for caps in split.conditions]
        if any(not r for r in rows):
            raise CvaekitError("An image of the training split has no caption.")
        self.counts = torch.tensor([len(r) for r in rows])
        self.caption_ids = torch.zeros(len(rows), int(self.counts.max()), dtype=torch.long)
        for i, r in enumerate(rows):
            self.caption_ids[i, :len(r)] = torch.tensor(r)
        texts = list(distinct)
        if is_frozen(conditioner):
            self.table = encode_table(conditioner, texts, device, batch_size)
        else:
            self.texts = texts  # a trained text encoder reads the words at every step

    def batch(self, index: torch.Tensor, draws: torch.Tensor | None = None) -> tuple[torch.Tensor, RawConditions]:
        """Float images on the device and their conditions: label ids, rows of the caption
        table (a Condition), or the drawn captions' texts for a conditioner being trained."""
        on_device = index.to(self.device, non_blocking=True)
        images = self.images[on_device].float().div_(255)
        if self.labels is not None:
            return images, self.labels[on_device]
        u = torch.rand(len(index)) if draws is None else draws
        picks = torch.zeros(len(index), dtype=torch.long) if self.first else pick_captions(u, self.counts[index])
        ids = self.caption_ids[index, picks]
        if self.table is not None:
            cond = self.table.index(ids.to(self.device, non_blocking=True))
            if self.device.type == "cpu":  # no longer than the batch's longest caption, as from the host
                longest = int(cond.mask.sum(1).max())
                cond = Condition(cond.vector, cond.tokens[:, :longest], cond.mask[:, :longest])
            return images, cond
        return images, [self.texts[i] for i in ids.tolist()]


@torch.no_grad()
def encode_table(conditioner: nn.Module, texts: list[str], device: torch.device, batch_size: int) -> Condition:
    """Every text's condition, in one Condition on `device` (tokens padded to the longest, masked)."""
    return Condition.cat([Condition.of(conditioner(texts[i:i + batch_size])) for i in range(0, len(texts), batch_size)],
                         device=device)


class HostBatches:
    """Batches gathered on the host; on a GPU pinned and copied without blocking, the next one
    prepared while the device runs the current step."""

    def __init__(self, split: Split, device: torch.device):
        self.split, self.device = split, device
        self.pin = device.type == "cuda"

    def batch(self, index: torch.Tensor, draws: torch.Tensor | None = None) -> tuple[torch.Tensor, RawConditions]:
        raw = self.split.conditions_at(index, draws=draws)
        if not self.pin:
            return self.split.images[index].float().div_(255).to(self.device), raw
        images = self.split.images[index].pin_memory().to(self.device, non_blocking=True)  # uint8: a quarter of the bytes
        if isinstance(raw, torch.Tensor):
            raw = raw.pin_memory().to(self.device, non_blocking=True)
        return images.float().div_(255), raw


def step_generator(device: torch.device, seed: int, step: int, rank: int) -> torch.Generator:
    """The generator of one training step's own draws (a dynamically binarized or shifted batch): seeded
    by the run's seed, the step and the process, so a resumed run draws the same pixels."""
    key = hashlib.blake2b(f"{seed}/{step}/{rank}".encode(), digest_size=8).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(key, "little") >> 1)


def prefetched(source, batches: list[torch.Tensor], draws: list[torch.Tensor], start: int):
    """(b, images, raw) for b from `start`, each batch made one step ahead of its use, so that
    its gathering and its copy overlap the device's work on the one before."""
    if start >= len(batches):
        return
    ahead = source.batch(batches[start], draws[start])
    for b in range(start, len(batches)):
        current = ahead
        if b + 1 < len(batches):
            ahead = source.batch(batches[b + 1], draws[b + 1])
        yield (b, *current)
