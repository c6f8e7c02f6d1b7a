"""The built-in VampPrior: its components are the model's own posteriors at learned
pseudo-images, its weights follow the condition, and a model trains with it."""

from __future__ import annotations

import json

import torch

from cvaekit.assembly import load_run
from cvaekit.core.prior import gaussian_log_prob
from cvaekit.training import train


def test_a_vamp_prior_is_the_mixture_of_the_encoders_posteriors_and_trains(tiny_fashion):
    tiny_fashion["model"]["prior"] = {"name": "vamp", "pseudo_inputs": 4}
    tiny_fashion["train"].update(epochs=2, limit=512)
    tiny_fashion["eval"].update(metrics=["nelbo", {"name": "nll", "samples": 8}], limit=64)
    run = train(tiny_fashion, progress=False)
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "train"]
    assert losses[-1] < losses[0]
    model = load_run(run).model
    prior = model.prior
    assert sorted(k for k in model.state_dict() if k.startswith("prior.")) == [
        "prior.pseudo_logits", "prior.weights.bias", "prior.weights.weight"]  # no copy of the encoder
    cond = model.condition(torch.tensor([2, 5]))
    z = torch.randn(2, 8)
    u = torch.sigmoid(prior.pseudo_logits)
    expected = []
    for i in range(2):
        mu, logvar = model.encoder(u, cond.index(torch.tensor([i] * 4)))
        logw = torch.log_softmax(prior.weights(cond.vector[i]), -1)
        expected.append(torch.logsumexp(logw + gaussian_log_prob(z[i], mu, logvar), 0))
    assert torch.allclose(prior.log_prob(z, cond), torch.stack(expected), atol=1e-4)
    assert not torch.allclose(prior.weights(cond.vector[0]), prior.weights(cond.vector[1]))  # weights follow the label
