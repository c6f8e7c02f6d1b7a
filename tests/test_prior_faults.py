"""A prior that fails is named like any other part, and the engine checks the temperature
before any prior sees it."""

import re
import typing

import pytest
import torch
import yaml
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.components.priors.conditional import ConditionalPrior
from cvaekit.core.condition import Condition
from cvaekit.core.prior import sample_latent
from cvaekit.core.sampling import sample_rows, walk_seeds, walk_texts
from cvaekit.errors import ComponentError, CvaekitError
from cvaekit.plugins import load_registry
from cvaekit.serving.generate import generate
from cvaekit.training import run as training
from cvaekit.training import train
from cvaekit.training.fit_prior import fit_prior

runner = CliRunner()


class FailsInLogProb(ConditionalPrior):
    def gaussian(self, cond):  # a Gaussian prior's KL goes through gaussian, so fail there too
        raise ValueError("log_prob of a strange z")

    def log_prob(self, z, cond):
        raise ValueError("log_prob of a strange z")


class FailsInSample(ConditionalPrior):
    def sample(self, cond, generator=None, temperature=1.0):
        raise RuntimeError("no sampler for this condition")


class RefusesNegative(ConditionalPrior):
    """A prior that checks the temperature itself, with a plain ValueError, and records it."""

    seen: typing.ClassVar[list[float]] = []

    def sample(self, cond, generator=None, temperature=1.0):
        RefusesNegative.seen.append(temperature)
        if temperature < 0:
            raise ValueError("negative temperature")
        return super().sample(cond, generator, temperature)


@pytest.fixture
def with_priors(monkeypatch):
    registry = load_registry()
    for factory in (FailsInLogProb, FailsInSample, RefusesNegative):
        registry.add("prior", factory.__name__.lower(), factory, origin="test-pkg 1.0")
    monkeypatch.setattr(training, "get_registry", lambda: registry)
    return registry


def small(recipe, prior=None):
    recipe["train"].update(epochs=1, limit=256)
    recipe["eval"]["limit"] = 64
    if prior:
        recipe["model"]["prior"] = prior
    return recipe


@pytest.mark.parametrize("prior, method, error", [
    ("failsinlogprob", "gaussian", "ValueError: log_prob of a strange z"),
    ("failsinsample", "sample", "RuntimeError: no sampler for this condition"),
])
def test_a_prior_that_raises_at_the_first_step_is_named_in_one_paragraph(tmp_path, tiny_fashion, with_priors,
                                                                          prior, method, error):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(small(tiny_fashion, prior)))
    result = runner.invoke(app, ["run", str(path), "-q"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert (f"Error: The prior '{prior}' (from test-pkg 1.0) raised in {method} at the first training step: "
            f"{error} (--debug shows the whole traceback)") in text
    assert "Traceback" not in text
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())  # no epoch was spent


def test_a_prior_whose_log_prob_raises_is_named_without_a_gaussian(tiny_fashion, with_priors):
    class OnlyLogProb(torch.nn.Module):
        def __init__(self, *, cond_dim: int, latent_dim: int):
            super().__init__()
            self.inner = FailsInLogProb(cond_dim=cond_dim, latent_dim=latent_dim)

        def log_prob(self, z, cond):
            return self.inner.log_prob(z, cond)

        def sample(self, cond, generator=None, temperature=1.0):
            return ConditionalPrior.sample(self.inner, cond, generator, temperature)

    with_priors.add("prior", "only_log_prob", OnlyLogProb, origin="test-pkg 1.0")
    with pytest.raises(ComponentError, match=r"The prior 'only_log_prob' \(from test-pkg 1.0\) raised in log_prob "
                                             r"at the first training step: ValueError: log_prob of a strange z"):
        train(small(tiny_fashion, "only_log_prob"), registry=with_priors, progress=False)


def test_fit_prior_names_a_prior_that_raises_before_it_fits(tiny_fashion, with_priors):
    run = train(small(tiny_fashion), registry=with_priors, progress=False)
    with pytest.raises(ComponentError, match=r"The prior 'failsinsample' \(from test-pkg 1.0\) raised in sample at "
                                             r"the first step of fit-prior: RuntimeError: no sampler"):
        fit_prior(run, "failsinsample", epochs=1, registry=with_priors, progress=False, measure=False)
    assert not list((run / "checkpoints").glob("*.prior.pt"))


def test_the_engine_refuses_a_bad_temperature_before_any_prior_sees_it(tiny_fashion, with_priors):
    run = train(small(tiny_fashion, "refusesnegative"), registry=with_priors, progress=False)
    from cvaekit.assembly import load_run

    model = load_run(run, registry=with_priors).model
    RefusesNegative.seen.clear()
    cond = model.condition(torch.tensor([0, 1]))
    for bad in (-1.0, float("nan"), float("inf"), "warm"):
        for call in (lambda t: sample_latent(model.prior, cond, model.latent_dim, temperature=t),
                     lambda t: sample_rows(model, ["bag"], 2, temperature=t),
                     lambda t: walk_texts(model, "bag", "sneaker", 3, temperature=t),
                     lambda t: walk_seeds(model, "bag", 0, 1, 3, temperature=t),
                     lambda t: generate(run, ["bag"], temperature=t, registry=with_priors)):
            with pytest.raises(CvaekitError, match=r"The sampling temperature must be .*0 or more"):
                call(bad)
    assert RefusesNegative.seen == []
    sample_rows(model, ["bag"], 2, temperature=0)
    assert RefusesNegative.seen == [0.0]


def test_cvaekit_generate_with_a_negative_temperature_is_one_paragraph(tmp_path, tiny_fashion):
    run = train(small(tiny_fashion), progress=False)
    result = runner.invoke(app, ["generate", str(run), "bag", "-t", "-0.5", "-o", str(tmp_path / "x.png")])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert re.search(r"Error: The sampling temperature must be 0 or more \(1 samples the prior itself, 0 gives "
                     r"its mode\); got -0\.5\.", text), text
    assert "Traceback" not in text and not (tmp_path / "x.png").exists()


def test_sample_latent_checks_the_temperature_for_the_standard_normal_too():
    cond = Condition.of(torch.zeros(2, 3))
    with pytest.raises(CvaekitError, match="must be 0 or more"):
        sample_latent(None, cond, 4, temperature=-1)
    assert not sample_latent(None, cond, 4, temperature=0).any()


def test_the_temperature_has_one_definition_in_the_help_and_the_docs():
    from pathlib import Path

    import cvaekit.core.prior as prior_module

    assert "0 gives the most typical z itself: the prior's mode" in " ".join(prior_module.__doc__.split())
    import inspect

    from cvaekit import cli

    help_text = inspect.signature(cli.generate_cmd).parameters["temperature"].default.help
    assert "0, the most typical z itself (the prior's mode)" in help_text
    docs = Path(__file__).resolve().parents[1] / "docs"
    for page in docs.glob("*.md"):
        text = " ".join(page.read_text().split())
        assert "prior's mean)" not in text and "0 gives its mean" not in text, page.name


def test_prior_log_prob_is_the_standard_normal_without_a_prior_component():
    from cvaekit.core.prior import prior_log_prob

    z, cond = torch.randn(3, 4), Condition.of(torch.zeros(3, 2))
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert torch.allclose(prior_log_prob(None, z, cond), expected, atol=1e-6)
    prior = ConditionalPrior(cond_dim=2, latent_dim=4)
    assert torch.allclose(prior_log_prob(prior, z, cond), prior.log_prob(z, cond))
