"""Training data held on the device (`train.data_on_device`): the same batches, the same
training, conditions indexed from one table; on the CPU the resident path is exercised as is."""

from __future__ import annotations

import types

import pytest
import torch

from cvaekit.components.datasets.shapes import shapes_captions
from cvaekit.core.condition import Condition
from cvaekit.core.data import Split, pick_captions
from cvaekit.training.batches import HostBatches, ResidentSplit, encode_table, place
from cvaekit.training import train
from test_training_faults import losses, same_weights, straight_and_resumed


def shapes_recipe(tmp_path, conditioner, **train_keys) -> dict:
    return {"name": "tiny_shapes", "seed": 0, "runs_dir": str(tmp_path / "runs"),
            "data": {"name": "shapes_captions", "image_size": 16, "n_train": 256, "n_test": 64},
            "model": {"latent_dim": 4, "conditioner": conditioner,
                      "encoder": {"name": "conv", "channels": [8, 16]},
                      "decoder": {"name": "deconv", "channels": [8, 16], "hidden": 32}},
            "train": {"epochs": 2, "batch_size": 32, "lr": 1e-3, "checkpoint_every": 2, **train_keys},
            "eval": {"metrics": ["nelbo"], "limit": 64, "samples_per_condition": 2}}


def test_each_caption_of_an_image_is_picked_and_the_pick_is_the_same_on_host_and_device():
    counts = torch.tensor([1, 2, 3, 5])
    u = torch.rand(4000, 4, generator=torch.Generator().manual_seed(0))
    picks = pick_captions(u, counts.expand(4000, 4))
    for col, n in enumerate(counts.tolist()):
        seen = torch.bincount(picks[:, col], minlength=n)
        assert len(seen) == n and (seen > 0.8 * 4000 / n).all()  # about equally often, never past the last
    data = shapes_captions(image_size=16, n_train=64, n_test=8)
    index, draws = torch.randperm(64)[:16], torch.rand(16)
    host = data.train.batch(index, draws=draws)
    resident = ResidentSplit(data.train, torch.nn.Linear(1, 1), torch.device("cpu")).batch(index, draws)
    assert torch.equal(host[0], resident[0]) and host[1] == resident[1]


def test_a_frozen_conditioners_table_holds_each_captions_condition():
    class Frozen(torch.nn.Module):  # one token per word, no parameters: a pure function of the text
        def forward(self, texts):
            rows = [torch.tensor([[float(len(w)), float(i)] for i, w in enumerate(t.split())]) for t in texts]
            tokens = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
            mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(r), dtype=torch.bool) for r in rows], batch_first=True)
            return Condition(tokens.sum(1), tokens, mask)

    split = Split(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), [["a b", "ccc"], ["dd e f"], ["a b"]])
    resident = ResidentSplit(split, Frozen(), torch.device("cpu"), batch_size=2)
    assert resident.table.vector.shape == (3, 2) and resident.table.tokens.shape == (3, 3, 2)  # 3 distinct captions
    _, cond = resident.batch(torch.tensor([1, 0, 2]), torch.tensor([0.0, 0.9, 0.0]))
    want = Frozen()(["dd e f", "ccc", "a b"])
    assert torch.equal(cond.vector, want.vector) and cond.tokens.shape[1] == 3  # the batch's longest
    _, short = resident.batch(torch.tensor([0, 2]), torch.tensor([0.9, 0.0]))
    assert short.tokens.shape[1] == 2 and short.mask.tolist() == [[True, False], [True, True]]
    for row, n in enumerate([3, 1, 2]):
        assert cond.mask[row].sum() == n and torch.equal(cond.tokens[row, :n], want.tokens[row, :n])
    table = encode_table(Frozen(), ["a", "b c d"], torch.device("cpu"), 1)
    assert table.mask.tolist() == [[True, False, False], [True, True, True]]


@pytest.mark.parametrize("kind", ["labels", "learned captions"])
def test_training_with_the_data_on_the_device_equals_training_from_the_host(tmp_path, tiny_fashion, kind):
    if kind == "labels":
        recipe = tiny_fashion
        recipe["train"]["epochs"] = 1
    else:
        recipe = shapes_recipe(tmp_path, {"name": "learned_text", "dim": 8})
    host = train({**recipe, "train": {**recipe["train"], "data_on_device": False}}, progress=False)
    device = train({**recipe, "train": {**recipe["train"], "data_on_device": True}}, progress=False)
    assert losses(host) == losses(device) and same_weights(host, device)


def test_ctrl_c_mid_epoch_with_resident_data_resumes_bit_identical(tmp_path, monkeypatch):
    recipe = shapes_recipe(tmp_path, {"name": "learned_text", "dim": 8}, data_on_device=True)
    straight, resumed = straight_and_resumed(tmp_path, recipe, monkeypatch, 11)  # the 3rd step of epoch 2 (8 steps an epoch)
    assert losses(resumed) == losses(straight) and same_weights(straight, resumed)


def test_auto_indexes_the_images_where_they_are_on_a_cpu_and_keeps_them_on_the_host_of_a_gpu_too_small(monkeypatch):
    data = shapes_captions(image_size=16, n_train=64, n_test=8)
    frozen = torch.nn.Linear(1, 1)  # trained, so no caption table: images only
    cpu = place("auto", data.train, frozen, torch.device("cpu"), 0.3)
    assert cpu.resident and "index the images where they are" in cpu.reason  # nothing copied
    assert ResidentSplit(data.train, frozen, torch.device("cpu")).images.data_ptr() == data.train.images.data_ptr()
    assert place(True, data.train, frozen, torch.device("cpu"), 0.3).resident
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: types.SimpleNamespace(total_memory=100_000))
    small = place("auto", data.train, torch.nn.Linear(1, 1), torch.device("cuda"), 0.3)
    assert small.bytes == 64 * 3 * 16 * 16 and not small.resident and "more than train.data_share (0.3)" in small.reason
    assert place("auto", data.train, torch.nn.Linear(1, 1), torch.device("cuda"), 0.9).resident


def test_host_batches_on_the_cpu_are_the_splits_own(tiny_fashion):
    split = Split(torch.randint(0, 255, (8, 1, 4, 4), dtype=torch.uint8), torch.arange(8))
    images, labels = HostBatches(split, torch.device("cpu")).batch(torch.tensor([3, 1]))
    assert torch.equal(images, split.images[[3, 1]].float() / 255) and labels.tolist() == [3, 1]


def test_channels_last_trains_to_the_same_losses_within_rounding(tmp_path):
    recipe = shapes_recipe(tmp_path, {"name": "learned_text", "dim": 8}, epochs=1)
    plain = train(recipe, progress=False)
    nhwc = train({**recipe, "train": {**recipe["train"], "channels_last": True}}, progress=False)
    assert losses(nhwc) == pytest.approx(losses(plain), rel=1e-3)


@pytest.mark.slow
@pytest.mark.skipif(not __import__("shutil").which("cc"), reason="torch.compile on a CPU needs a C compiler")
def test_compile_trains_the_same_model_and_keeps_the_checkpoint_format(tiny_fashion):
    from cvaekit.store.checkpoint import load_checkpoint

    tiny_fashion["train"].update(epochs=1, limit=256)
    tiny_fashion["eval"]["limit"] = 64
    plain = train(tiny_fashion, progress=False)
    compiled = train({**tiny_fashion, "train": {**tiny_fashion["train"], "compile": True}}, progress=False)
    assert losses(compiled) == pytest.approx(losses(plain), rel=1e-3)
    a, b = (load_checkpoint(r / "checkpoints/last.pt")["model"] for r in (plain, compiled))
    assert a.keys() == b.keys()  # no _orig_mod. prefixes: a compiled run loads like any other
