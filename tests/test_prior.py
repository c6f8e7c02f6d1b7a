"""The prior p(z | c): N(0, I) as in the study, or a `prior` component such as `conditional`."""

import pytest
import torch
from torch import nn

from cvaekit.store.checkpoint import load_checkpoint
from cvaekit.components.priors.conditional import ConditionalPrior
from cvaekit.components.priors.flow import FlowPrior
from cvaekit.components.priors.mixture import MixturePrior
from cvaekit.core.condition import Condition
from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.core.prior import GaussianPrior, kl_divergence, kl_term, sample_latent
from cvaekit.recipe import load_recipe
from cvaekit.plugins.registry import Registry
from cvaekit.store.runs import RunDir
from cvaekit.assembly import load_run
from cvaekit.testing import ContractError, check_component
from cvaekit.training import TrainingInterrupted, TrainingLoop, train
from test_training_faults import stop_in_epoch


def normal_kl(mu, logvar, prior_mu, prior_logvar):
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(prior_mu, torch.exp(0.5 * prior_logvar))
    return torch.distributions.kl_divergence(q, p).sum()


def test_kl_matches_torch_distributions_for_both_priors():
    torch.manual_seed(0)
    mu, logvar, pmu, plogvar = torch.randn(4, 3, 5).unbind(0)
    zeros = torch.zeros_like(mu)
    assert torch.allclose(kl_divergence((mu, logvar), None), normal_kl(mu, logvar, zeros, zeros), rtol=1e-5)
    assert torch.allclose(kl_divergence((mu, logvar), (pmu, plogvar)), normal_kl(mu, logvar, pmu, plogvar), rtol=1e-5)


def test_conditional_prior_starts_as_the_standard_normal_and_samples_follow_it():
    prior = ConditionalPrior(cond_dim=10, latent_dim=4)
    cond = Condition.of(torch.eye(10)[[1, 7]])
    mu, logvar = prior(cond)
    assert mu.shape == logvar.shape == (2, 4) and not mu.any() and not logvar.any()
    no_prior = sample_latent(None, cond, 4, torch.Generator().manual_seed(0))
    assert torch.equal(sample_latent(prior, cond, 4, torch.Generator().manual_seed(0)), no_prior)
    with torch.no_grad():
        prior.net.bias[:4] = 100.0  # move every mean far away: the samples follow
    assert sample_latent(prior, cond, 4, torch.Generator().manual_seed(0)).min() > 90


def test_temperature_scales_the_spread_about_the_prior_mean_and_must_not_be_negative():
    prior = ConditionalPrior(cond_dim=10, latent_dim=4)
    with torch.no_grad():
        prior.net.bias[:4] = 3.0  # every mean at 3, unit spread
    cond = Condition.of(torch.eye(10)[[1, 7]])
    full = sample_latent(prior, cond, 4, torch.Generator().manual_seed(0))
    half = sample_latent(prior, cond, 4, torch.Generator().manual_seed(0), temperature=0.5)
    assert torch.allclose(half - 3.0, 0.5 * (full - 3.0))
    assert torch.equal(sample_latent(prior, cond, 4, temperature=0.0), torch.full((2, 4), 3.0))
    assert not sample_latent(None, cond, 4, temperature=0.0).any()  # N(0, I): the mean is 0
    with pytest.raises(CvaekitError, match=r"temperature must be 0 or more.*-0.5"):
        sample_latent(prior, cond, 4, temperature=-0.5)


def test_recipe_prior_is_a_component_or_null(tiny_fashion):
    assert load_recipe(tiny_fashion).model.prior is None
    assert load_recipe(tiny_fashion, ["model.prior=conditional"]).model.prior.name == "conditional"
    with pytest.raises(RecipeError, match=r"'model.prior.name': .*'conditonal'.*conditional"):
        load_recipe(tiny_fashion, ["model.prior=conditonal"])


def test_a_conditional_prior_learns_a_gaussian_per_class_and_samples_from_it(tiny_fashion):
    run = train(tiny_fashion, overrides=["model.prior=conditional", "train.epochs=3"], progress=False)
    losses = [r["loss"] for r in RunDir(run).records() if r["kind"] == "train"]
    assert losses[-1] < losses[0]
    model = load_run(run).model
    mu, logvar = model.prior(model.condition(torch.arange(10)))
    assert (mu[1:] - mu[0]).abs().amax(dim=1).min() > 1e-3  # every class has its own mean
    images = model.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 1, 28, 28) and 0 <= images.min() and images.max() <= 1


class OldContractPrior(nn.Module):
    """Written for the old contract: forward(cond) -> (mu, logvar), no log_prob or sample."""

    def __init__(self, *, cond_dim: int, latent_dim: int):
        super().__init__()
        self.net = nn.Linear(cond_dim, 2 * latent_dim)

    def forward(self, cond):
        return self.net(cond.vector).chunk(2, dim=1)


class UnseededPrior(GaussianPrior):
    """Broken on purpose: its samples ignore the generator."""

    def __init__(self, *, cond_dim: int, latent_dim: int):
        super().__init__()
        self.net = nn.Linear(cond_dim, 2 * latent_dim)

    def gaussian(self, cond):
        return self.net(cond.vector).chunk(2, dim=1)

    def sample(self, cond, generator=None, temperature=1.0):
        return super().sample(cond, None, temperature)


class PerDimLogProb(UnseededPrior):
    """Broken on purpose: log_prob not summed over z's dimensions."""

    def sample(self, cond, generator=None, temperature=1.0):
        return GaussianPrior.sample(self, cond, generator, temperature)

    def log_prob(self, z, cond):
        mu, logvar = self.gaussian(cond)
        return -0.5 * (logvar + (z - mu) ** 2 / logvar.exp())


@pytest.mark.parametrize("prior, point, says", [
    (OldContractPrior, "interface", "renaming forward to gaussian"),
    (UnseededPrior, "sample", "same seed differ"),
    (PerDimLogProb, "output shape", r"log_prob\(z, cond\) has shape \(2, 4\), expected \(2,\)"),
])
def test_a_broken_prior_fails_check_prior_at_the_right_point(prior, point, says):
    with pytest.raises(ContractError, match=rf"prior '{prior.__name__}' breaks the contract point '{point}': .*{says}"):
        check_component("prior", prior, registry=Registry())


@pytest.mark.parametrize("name, params", [("conditional", None), ("mixture", None), ("flow", None),
                                          ("flow", {"components": 3})])
def test_the_built_in_priors_pass_their_contract(name, params):
    check_component("prior", name, params)


def test_a_prior_written_for_the_old_contract_says_what_to_change_when_a_recipe_uses_it(tiny_fashion, registry):
    registry.add("prior", "old", OldContractPrior)
    tiny_fashion["model"]["prior"] = "old"
    with pytest.raises(CvaekitError, match=r"Prior 'old' has no log_prob or sample: .*GaussianPrior"):
        train(tiny_fashion, registry=registry, progress=False)


def test_monte_carlo_kl_agrees_with_the_analytic_kl_for_gaussians():
    torch.manual_seed(0)
    prior = ConditionalPrior(cond_dim=3, latent_dim=5)
    with torch.no_grad():
        prior.net.weight.normal_(0, 0.5)
        prior.net.bias.normal_(0, 0.5)
    cond = Condition.of(torch.eye(3)[[0, 1, 2, 1]])
    mu, logvar = torch.randn(4, 5), torch.randn(4, 5) * 0.3
    analytic = kl_term((mu, logvar), None, prior, cond)

    class AsDistribution(nn.Module):  # the same Gaussian, seen only through log_prob
        def log_prob(self, z, c):
            return prior.log_prob(z, c)

    n = 4000
    z = mu + torch.randn(n, 4, 5) * torch.exp(0.5 * logvar)
    draws = torch.stack([kl_term((mu, logvar), z[i], AsDistribution(), cond) for i in range(n)])
    error = draws.std() / n ** 0.5
    assert abs(draws.mean() - analytic) < 3 * error
    assert torch.allclose(kl_term((mu, logvar), None, None, cond), kl_divergence((mu, logvar), None))


def test_the_mixture_prior_log_prob_is_that_of_torch_mixture_same_family():
    torch.manual_seed(0)
    prior = MixturePrior(cond_dim=6, latent_dim=3, components=4, hidden=16)
    with torch.no_grad():
        for p in prior.parameters():
            p.normal_(0, 0.3)
    cond = Condition.of(torch.eye(6)[[0, 3, 5]])
    z = torch.randn(3, 3)
    logits, mu, log_std = prior.parts(cond)
    assert logits.shape == (3, 4) and mu.shape == log_std.shape == (3, 4, 3)
    assert not torch.allclose(logits[0], logits[1])  # the weights depend on the condition
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=logits),
        torch.distributions.Independent(torch.distributions.Normal(mu, log_std.exp()), 1))
    assert torch.allclose(prior.log_prob(z, cond), reference.log_prob(z), atol=1e-5)
    by_hand = torch.logsumexp(logits.log_softmax(-1) + torch.distributions.Normal(mu, log_std.exp())
                              .log_prob(z[:, None]).sum(-1), dim=-1)
    assert torch.allclose(prior.log_prob(z, cond), by_hand, atol=1e-5)


def test_mixture_samples_pick_a_component_by_its_weight_and_shrink_with_temperature():
    prior = MixturePrior(cond_dim=2, latent_dim=2, components=2, hidden=0)
    with torch.no_grad():  # condition 0: all weight on component 0 at (5, 5); sd 0.1
        prior.net[-1].weight.zero_()
        prior.net[-1].bias.zero_()
        prior.net[-1].weight[0, 0] = 20.0
        prior.net[-1].bias[2:4] = 5.0
        prior.net[-1].bias[6:] = -2.3
    cond = Condition.of(torch.eye(2)[[0] * 200])
    z = prior.sample(cond, torch.Generator().manual_seed(0))
    assert (z - 5).abs().max() < 0.6
    assert torch.allclose(prior.sample(cond, torch.Generator().manual_seed(0), temperature=0.0), torch.full((200, 2), 5.0))


def test_a_flow_prior_fitted_to_clustered_codes_samples_each_conditions_cluster():
    """Four clusters in 2-d, one per condition: the flow's samples land in the asked one."""
    torch.manual_seed(0)
    centres = torch.tensor([[3.0, 3.0], [-3.0, 3.0], [-3.0, -3.0], [3.0, -3.0]])
    labels = torch.arange(4).repeat(256)
    codes = centres[labels] + 0.3 * torch.randn(len(labels), 2)
    cond = Condition.of(torch.eye(4)[labels])
    prior = FlowPrior(cond_dim=4, latent_dim=2, transforms=2, hidden=32)
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    for _ in range(300):
        loss = -prior.log_prob(codes, cond).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    asked = torch.arange(4).repeat(50)
    with torch.no_grad():
        z = prior.sample(Condition.of(torch.eye(4)[asked]), torch.Generator().manual_seed(0))
    nearest = torch.cdist(z, centres).argmin(1)
    assert (nearest == asked).float().mean() > 0.95


def test_a_flow_from_a_mixture_base_keeps_one_conditions_two_clusters_apart():
    """Condition 0's codes sit in two clusters, condition 1's in one: from a mixture base the
    flow draws condition 0 into both clusters, about half each, and hardly ever between them;
    at temperature 0 each sample is the image of one component's mean."""
    torch.manual_seed(0)
    labels = torch.arange(2).repeat(512)
    side = torch.randint(0, 2, (len(labels),)) * 2 - 1
    centres = torch.where(labels[:, None] == 0, torch.stack([3.0 * side, 0 * side], 1), torch.tensor([0.0, 3.0]))
    codes = centres + 0.3 * torch.randn(len(labels), 2)
    prior = FlowPrior(cond_dim=2, latent_dim=2, transforms=2, hidden=32, context="vector", components=4)
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    for _ in range(300):
        loss = -prior.log_prob(codes, Condition.of(torch.eye(2)[labels])).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    prior.eval()
    cond = Condition.of(torch.eye(2)[[0] * 400])
    with torch.no_grad():
        z = prior.sample(cond, torch.Generator().manual_seed(0))
        again = prior.sample(cond, torch.Generator().manual_seed(0))
        modes = prior.sample(cond, torch.Generator().manual_seed(0), temperature=0.0)
    assert torch.equal(z, again)
    assert (z[:, 0].abs() < 1.5).float().mean() < 0.03  # between the clusters
    assert 0.3 < (z[:, 0] > 0).float().mean() < 0.7
    assert len(torch.unique(modes.round(decimals=4), dim=0)) <= 4


def test_a_flow_with_token_context_reads_what_the_pooled_vector_leaves_out():
    """The cluster is named by the second word only (the vector says nothing): the flow that
    reads the tokens puts its samples in the asked cluster, and padding changes nothing."""
    torch.manual_seed(0)
    centres = torch.tensor([[3.0, 3.0], [-3.0, 3.0], [-3.0, -3.0], [3.0, -3.0]])
    words = torch.eye(4)

    def condition(labels, pad=0):
        first = torch.ones(len(labels), 1, 4) / 2
        tokens = torch.cat([first, words[labels][:, None], torch.zeros(len(labels), pad, 4)], dim=1)
        mask = torch.ones(len(labels), 2 + pad, dtype=torch.bool)
        mask[:, 2:] = False
        return Condition(torch.zeros(len(labels), 4), tokens, mask)

    labels = torch.arange(4).repeat(256)
    codes = centres[labels] + 0.3 * torch.randn(len(labels), 2)
    prior = FlowPrior(cond_dim=4, latent_dim=2, transforms=2, hidden=32, context="tokens", heads=1)
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    for _ in range(300):
        loss = -prior.log_prob(codes, condition(labels)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    asked = torch.arange(4).repeat(50)
    with torch.no_grad():
        z = prior.sample(condition(asked), torch.Generator().manual_seed(0))
        padded = prior.log_prob(codes[:8], condition(labels[:8], pad=3))
        assert torch.allclose(padded, prior.log_prob(codes[:8], condition(labels[:8])), atol=1e-5)
    assert (torch.cdist(z, centres).argmin(1) == asked).float().mean() > 0.95


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mixture", "flow"])
def test_an_expressive_prior_trains_with_the_model_from_a_recipe(tiny_fashion, name):
    run = train(tiny_fashion, overrides=[f"model.prior={name}", "train.epochs=3"], progress=False)
    losses = [r["loss"] for r in RunDir(run).records() if r["kind"] == "train"]
    assert losses[-1] < losses[0]
    model = load_run(run).model
    assert type(model.prior).__name__ == {"mixture": "MixturePrior", "flow": "FlowPrior"}[name]
    images = model.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 1, 28, 28)


def test_a_resumed_run_with_a_flow_prior_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, tiny_fashion, monkeypatch):
    tiny_fashion["model"]["prior"] = "flow"
    tiny_fashion["train"].update(epochs=2, limit=512)
    straight = train(tiny_fashion, progress=False)
    original = stop_in_epoch(monkeypatch, 2)
    with pytest.raises(TrainingInterrupted):
        train(tiny_fashion, progress=False)
    monkeypatch.setattr(TrainingLoop, "_epoch", original)
    interrupted = next(p for p in (tmp_path / "runs").iterdir() if p != straight)
    resumed = train(None, resume=interrupted, progress=False)
    a = load_checkpoint(straight / "checkpoints/last.pt")["model"]
    b = load_checkpoint(resumed / "checkpoints/last.pt")["model"]
    assert any(k.startswith("prior.flow.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)


class UnitGaussian(nn.Module):
    """N(W c, I) through log_prob and sample alone (no gaussian): a correct prior, the base of
    the broken ones below."""

    def __init__(self, *, cond_dim: int, latent_dim: int):
        super().__init__()
        self.mean = nn.Linear(cond_dim, latent_dim)

    def log_prob(self, z, cond):
        return torch.distributions.Normal(self.mean(cond.vector), 1.0).log_prob(z).sum(-1)

    def sample(self, cond, generator=None, temperature=1.0):
        mu = self.mean(cond.vector)
        return mu + temperature * torch.randn(mu.shape, generator=generator)


class OffByAConstant(UnitGaussian):
    """Broken on purpose: log_prob forgets nothing but adds 0.3 nats."""

    def log_prob(self, z, cond):
        return super().log_prob(z, cond) + 0.3


class ShiftedSamples(UnitGaussian):
    """Broken on purpose: samples half a standard deviation away from the density."""

    def sample(self, cond, generator=None, temperature=1.0):
        return super().sample(cond, generator, temperature) + 0.5


class MeanNotMode(nn.Module):
    """Broken on purpose: two bumps (weights 0.7 and 0.3 at -2 and +2, sd 0.5); temperature 0
    gives the mixture's mean (-0.8, where there is hardly any density) instead of its mode."""

    def __init__(self, *, cond_dim: int, latent_dim: int):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(latent_dim))
        self.weights = torch.tensor([0.7, 0.3])

    def parts(self):
        means = torch.stack([self.shift - 2.0, self.shift + 2.0])  # [2, D]
        return torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(self.weights),
            torch.distributions.Independent(torch.distributions.Normal(means, 0.5), 1)), means

    def log_prob(self, z, cond):
        return self.parts()[0].log_prob(z)

    def sample(self, cond, generator=None, temperature=1.0):
        _, means = self.parts()
        n = cond.vector.shape[0]
        if temperature == 0:
            return (self.weights[:, None] * means).sum(0).expand(n, -1)
        pick = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return means[pick] + temperature * 0.5 * torch.randn(n, means.shape[1], generator=generator)


class DeafToTemperature(UnitGaussian):
    """Broken on purpose: any temperature above 0 samples the prior itself."""

    def sample(self, cond, generator=None, temperature=1.0):
        return super().sample(cond, generator, 1.0 if temperature > 0 else 0.0)


class RootTemperature(GaussianPrior):
    """Broken on purpose: a Gaussian whose spread scales with the square root of the temperature."""

    def __init__(self, *, cond_dim: int, latent_dim: int):
        super().__init__()
        self.net = nn.Linear(cond_dim, 2 * latent_dim)

    def gaussian(self, cond):
        mu, logvar = self.net(cond.vector).chunk(2, dim=1)
        return mu, logvar.clamp(-1, 1)

    def sample(self, cond, generator=None, temperature=1.0):
        return super().sample(cond, generator, temperature ** 0.5)


@pytest.mark.parametrize("prior, point, says", [
    (OffByAConstant, "normalised", r"integrates to 1\.35\d, not 1.*off by \+0\.300 nats"),
    (ShiftedSamples, "samples follow log_prob", r"the mean of sample\(cond\) is 0\.\d+ standard deviations"),
    (MeanNotMode, "temperature 0", r"temperature=0\) gives z = \[-0\.8\].*the most typical z, the prior's mode"),
    (DeafToTemperature, "temperature scaling", r"temperature=0\.5\) is spread 1\.0\d times as wide"),
    (RootTemperature, "temperature scaling", r"Gaussian prior is spread 0\.7\d times as wide .*not 0\.5"),
])
def test_check_prior_rejects_a_density_its_samples_or_its_temperature_that_do_not_hold(prior, point, says):
    with pytest.raises(ContractError, match=rf"prior '{prior.__name__}' breaks the contract point '{point}': .*{says}"):
        check_component("prior", prior, registry=Registry(), density_dim=2 if prior is not MeanNotMode else 1)
    check_component("prior", UnitGaussian, registry=Registry())  # the same prior without the fault passes


def test_check_prior_takes_a_density_dimension_of_1_or_2():
    check_component("prior", UnitGaussian, registry=Registry(), density_dim=1)
    with pytest.raises(ValueError, match=r"density_dim must be one of \(1, 2\).*got 3"):
        check_component("prior", UnitGaussian, registry=Registry(), density_dim=3)


def test_the_mixture_at_temperature_0_gives_its_mode_not_its_heaviest_components_mean():
    """Component A: weight 0.6 at (-3, -3), sd 2 (wide, a low peak); component B: weight 0.4 at
    (3, 3), sd 0.3 (a high peak). The mode is B's mean; a lower temperature gathers there."""
    prior = MixturePrior(cond_dim=2, latent_dim=2, components=2, hidden=0, context="vector")
    with torch.no_grad():
        last = prior.net[-1]
        last.weight.zero_()
        logits, means, sds = torch.tensor([0.6, 0.4]).log(), torch.tensor([-3.0, -3.0, 3.0, 3.0]), \
            torch.tensor([2.0, 2.0, 0.3, 0.3]).log()  # layout: K logits, K * D means, K * D log sds
        last.bias.copy_(torch.cat([logits, means, sds]))
    cond = Condition.of(torch.eye(2)[[0] * 400])
    with torch.no_grad():
        mode = prior.sample(cond, torch.Generator().manual_seed(0), temperature=0.0)
        cool = prior.sample(cond, torch.Generator().manual_seed(0), temperature=0.2)
        full = prior.sample(cond, torch.Generator().manual_seed(0))
    assert torch.allclose(mode, torch.full((400, 2), 3.0), atol=1e-3)
    near_b = lambda z: ((z - 3).norm(dim=1) < 1.5).float().mean().item()
    assert near_b(cool) > 0.97
    assert 0.3 < near_b(full) < 0.5  # at 1, B's own weight
    grid = torch.cartesian_prod(torch.linspace(-8, 8, 201), torch.linspace(-8, 8, 201))
    with torch.no_grad():
        best = prior.log_prob(grid, Condition.of(torch.eye(2)[[0] * len(grid)])).max()
        assert prior.log_prob(mode[:1], cond.index(torch.tensor([0]))) >= best - 1e-4


def test_the_flow_at_temperature_0_gives_the_same_mode_for_the_same_condition_and_it_is_a_peak():
    torch.manual_seed(0)
    prior = FlowPrior(cond_dim=4, latent_dim=3, transforms=2, hidden=16, context="vector").eval()
    cond = Condition.of(torch.eye(4)[[0, 1, 0]])
    with torch.no_grad():
        mode = prior.sample(cond, torch.Generator().manual_seed(0), temperature=0.0)
        again = prior.sample(cond, torch.Generator().manual_seed(5), temperature=0.0)
        assert torch.equal(mode, again) and torch.allclose(mode[0], mode[2], atol=1e-5)
        at_mode = prior.log_prob(mode, cond)
        nearby = torch.stack([prior.log_prob(mode + 0.05 * torch.randn(3, 3), cond) for _ in range(32)])
        draws = prior.log_prob(prior.sample(cond.index(torch.zeros(500, dtype=torch.long)),
                                            torch.Generator().manual_seed(1)), cond.index(torch.zeros(500, dtype=torch.long)))
    assert (nearby <= at_mode + 1e-4).all()
    assert at_mode[0] >= draws.max() - 1e-3
