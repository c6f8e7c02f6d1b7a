"""The objectives through a real training: KL schedules, free bits and 8-bit likelihoods resume
bit-identically from a Ctrl-C mid-epoch; IWAE and the `none` conditioner train; on a trained
model the importance-sampled NLL is at most the NELBO."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_training_faults import same_weights, straight_and_resumed

from cvaekit.assembly import load_run
from cvaekit.core.sampling import sample_rows
from cvaekit.errors import RecipeError
from cvaekit.store.checkpoint import load_checkpoint
from cvaekit.training import train


def records(run, kind="train"):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_a_kl_schedule_with_free_bits_and_a_learned_gaussian_resumes_bit_identical(tmp_path, tiny_fashion, monkeypatch):
    tiny_fashion["train"].update(kl_schedule="cyclical", kl_cycles=3, free_bits=0.25, limit=1024)
    tiny_fashion["model"]["likelihood"] = {"name": "gaussian", "learned": True}
    straight, resumed = straight_and_resumed(tmp_path, tiny_fashion, monkeypatch, 21)  # the second of 3 cycles over 32 steps
    assert [r["loss"] for r in records(resumed)] == [r["loss"] for r in records(straight)]
    assert same_weights(straight, resumed)
    assert "likelihood.log_scale" in load_checkpoint(straight / "checkpoints/last.pt")["model"]


def test_a_linear_warm_up_lowers_the_first_epochs_loss_below_the_constant_weights(tiny_fashion):
    constant = records(train(tiny_fashion, progress=False))[0]
    tiny_fashion["train"].update(kl_schedule="linear", kl_warmup=64)
    warm = records(train(tiny_fashion, progress=False))[0]
    assert warm["loss"] < constant["loss"]  # the KL weighs less during the warm-up


def test_iwae_trains_and_its_nll_is_at_most_the_nelbo(tiny_fashion):
    tiny_fashion["train"].update(objective="iwae", iwae_k=4, epochs=2)
    tiny_fashion["eval"].update(metrics=["nelbo", {"name": "nll", "samples": 64}], limit=200)
    run = train(tiny_fashion, progress=False)
    losses = [r["loss"] for r in records(run)]
    assert losses[-1] < losses[0]
    measured = records(run, "eval")[-1]
    assert measured["nll"] <= measured["nelbo"] + 2 * measured["nll_se"]
    assert measured["nll_se"] > 0


def test_the_none_conditioner_trains_a_plain_vae_that_samples_from_any_text(tiny_fashion):
    tiny_fashion["model"]["conditioner"] = "none"
    run = train(tiny_fashion, progress=False)
    losses = [r["loss"] for r in records(run)]
    assert losses[-1] < losses[0]
    model = load_run(run).model
    rows = sample_rows(model, ["anything", "sneaker"], 2, seed=0)
    assert torch.equal(rows[0], sample_rows(model, ["something else", "x"], 2, seed=0)[0])  # text means nothing


def test_free_bits_with_a_prior_that_has_no_per_dimension_kl_is_refused(tiny_fashion):
    tiny_fashion["train"]["free_bits"] = 0.5
    tiny_fashion["model"]["prior"] = {"name": "mixture", "components": 2}
    with pytest.raises(RecipeError, match="free_bits.*Gaussian prior.*mixture"):
        train(tiny_fashion, progress=False)


def test_kl_balancing_with_the_iwae_objective_is_refused(tiny_fashion):
    tiny_fashion["train"].update(kl_balance=True, objective="iwae")
    with pytest.raises(RecipeError, match="'train.kl_balance' applies to the elbo objective, not 'iwae'"):
        train(tiny_fashion, progress=False)


def test_free_bits_with_a_flow_on_a_hierarchys_top_group_count_per_group(tiny_fashion):
    tiny_fashion["train"].update(free_bits=0.5, epochs=1, limit=128)
    tiny_fashion["model"].update(latent_dim=2, prior={"name": "flow", "transforms": 1, "hidden": 8},
                                 encoder={"name": "ladder", "width": 8, "levels": 1, "top_vector": 3},
                                 decoder={"name": "ladder", "width": 8, "levels": 1, "groups": 1, "top_vector": 3})
    measured = records(train(tiny_fashion, progress=False), "eval")[-1]
    assert measured["kl_group0"] > 0 and math.isfinite(measured["nelbo"])


def test_a_logistic_mixture_run_reports_bits_per_dimension(tiny_fashion):
    tiny_fashion["model"]["likelihood"] = {"name": "logistic_mixture", "components": 2}
    tiny_fashion["train"].update(epochs=1, limit=512)
    tiny_fashion["eval"].update(metrics=["nelbo", {"name": "nll", "samples": 8}, "recon"], limit=64)
    measured = records(train(tiny_fashion, progress=False), "eval")[-1]
    assert 0 < measured["nelbo_bpd"] < 8 and 0 < measured["nll_bpd"] <= measured["nelbo_bpd"] + 0.05
    assert "recon_nll" in measured and "recon_bce" not in measured
