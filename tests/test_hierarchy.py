"""The hierarchical CVAE (ladder encoder and decoder): groups agree in shape on both paths,
the KL is the groups' sum, the text reaches every group, temperature 0 repeats itself, and a
tiny model trains and resumes bit-identically."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_training import stop_in_epoch

from cvaekit.assembly import build_model
from cvaekit.core.data import DataInfo
from cvaekit.core.hierarchy import GroupDraw
from cvaekit.core.sampling import sample_rows, walk_seeds, walk_texts
from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.plugins import get_registry
from cvaekit.recipe import load_recipe
from cvaekit.store.checkpoint import load_checkpoint
from cvaekit.training import LoopState, TrainingInterrupted, TrainingLoop, train
from cvaekit.training.state import SKIP_WARMUP

LADDER = {"latent_dim": 3, "conditioner": "onehot", "encoder": {"name": "ladder", "width": 8},
          "decoder": {"name": "ladder", "width": 8, "groups": 2}}


def model(**decoder):
    spec = {**LADDER, "decoder": {**LADDER["decoder"], **decoder}}
    recipe = load_recipe({"name": "t", "data": "fashion_mnist", "model": spec})
    return build_model(recipe.model, DataInfo((1, 28, 28), ["a", "b"]), get_registry())


def test_the_posterior_and_the_prior_paths_agree_in_shape_at_every_group():
    net = model()
    cond = net.condition(torch.tensor([0, 1]))
    posterior = net.posterior(torch.rand(2, 1, 28, 28), cond).groups
    prior = net.prior_sample(cond, net.draws()).groups
    assert len(posterior) == len(prior) == 6  # 3 resolutions x 2 groups
    assert [g.z.shape for g in posterior] == [g.z.shape for g in prior]
    assert {g.z.shape[-1] for g in posterior} == {4, 7, 14}


def test_the_kl_is_the_sum_of_the_groups_kls():
    net = model()
    torch.manual_seed(0)
    terms = net(torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 0, 1]))
    assert terms["kl"].item() == pytest.approx(terms["kl_groups"].sum().item(), rel=1e-6)
    assert terms["kl_groups"].shape == (6,)


def test_the_caption_reaches_every_group_and_temperature_0_repeats():
    net = model()
    for group in net.decoder.cells:  # trained weights, not the zeros every group starts from
        torch.nn.init.normal_(group.film.weight, std=0.5)
        torch.nn.init.normal_(group.prior.weight, std=0.5)
    cond = net.condition(torch.tensor([0, 1]))
    _, groups = net.decoder.top_down(cond, None, [GroupDraw(temperature=0.0)] * net.group_count)
    assert all(not torch.allclose(g.z[0], g.z[1]) for g in groups)
    a = net.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(1), temperature=0.0)
    b = net.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(2), temperature=0.0)
    assert torch.equal(a, b)
    per_group = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]  # the top groups vary, the lower ones at their mean
    c = net.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(1), temperature=per_group)
    assert c.shape == a.shape


def test_with_the_text_at_the_top_only_the_lower_groups_never_read_it():
    net = model(text="top")
    assert net.decoder.cells[0].film is not None and all(g.film is None for g in net.decoder.cells[1:])
    cond = net.condition(torch.tensor([0, 1]))
    lower = [GroupDraw(temperature=0.0)] * (net.group_count - 1)
    out = net.prior_sample(cond, [GroupDraw(z=torch.ones(2, net.prior_dim)), *lower]).out
    assert torch.equal(out[0], out[1])  # the same top z: the caption changes nothing below it
    every = model()
    for group in every.decoder.cells[1:]:
        torch.nn.init.normal_(group.film.weight, std=0.5)
    out = every.prior_sample(cond, [GroupDraw(z=torch.ones(2, net.prior_dim)), *lower]).out
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("spatial", [False, True])
def test_spatial_priors_tell_apart_the_positions_a_resize_copied(spatial):
    torch.manual_seed(0)
    net = model(spatial_priors=spatial)
    for p in net.decoder.parameters():  # trained weights, not the zeros that priors and cells start from
        torch.nn.init.normal_(p, std=0.3)
    cond = net.condition(torch.tensor([0, 1]))
    groups = net.prior_sample(cond, net.draws(temperature=0.0)).groups
    finer = groups[4].z  # the first group at 14x14, whose map was copied from 7x7
    assert torch.allclose(finer[..., 0, 0], finer[..., 0, 1]) != spatial


def test_a_ladder_decoder_needs_a_ladder_encoder():
    with pytest.raises(RecipeError, match="pair hierarchical networks"):
        recipe = load_recipe({"name": "t", "data": "fashion_mnist", "model": {**LADDER, "encoder": "mlp"}})
        build_model(recipe.model, DataInfo((1, 28, 28), ["a", "b"]), get_registry())


def top_vector_model(encoder_top: int = 5, decoder_top: int = 5, prior=None):
    spec = {**LADDER, "prior": prior, "encoder": {**LADDER["encoder"], "top_vector": encoder_top},
            "decoder": {**LADDER["decoder"], "top_vector": decoder_top}}
    recipe = load_recipe({"name": "t", "data": "fashion_mnist", "model": spec})
    return build_model(recipe.model, DataInfo((1, 28, 28), ["a", "b"]), get_registry())


def test_a_top_vector_is_the_top_group_and_its_value_reaches_the_picture():
    net = top_vector_model()
    assert net.group_shapes[0] == (5, 1, 1) and net.prior_dim == 5 and net.group_count == 7
    cond = net.condition(torch.tensor([0, 0]))
    posterior = net.posterior(torch.rand(2, 1, 28, 28), cond).groups
    assert [g.z.shape for g in posterior] == [g.z.shape for g in net.prior_sample(cond, net.draws()).groups]
    lower = [GroupDraw(temperature=0.0)] * 6
    a = net.prior_sample(cond, [GroupDraw(z=torch.zeros(2, 5)), *lower]).out
    b = net.prior_sample(cond, [GroupDraw(z=torch.ones(2, 5)), *lower]).out
    assert not torch.allclose(a, b)
    with pytest.raises(RecipeError, match="same 'levels' and 'top_vector'"):
        top_vector_model(encoder_top=0).posterior(torch.rand(2, 1, 28, 28), cond)


@pytest.mark.parametrize("prior", ["flow", "vamp"])
def test_a_model_prior_on_a_hierarchy_is_its_top_groups_and_trains_with_it(prior):
    net = top_vector_model(prior=prior)
    torch.manual_seed(0)
    torch.nn.init.normal_(net.decoder.top.group.posterior.weight, std=0.5)  # q starts as p: the encoder then counts
    terms = net(torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 0, 1]))
    terms["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.prior.parameters())
    cond = net.condition(torch.tensor([0, 1]))
    top = net.posterior(torch.rand(2, 1, 28, 28), cond).groups[0]
    expected = top.log_q - net.prior.log_prob(top.z.flatten(1), cond)
    assert torch.allclose(top.kl, expected, atol=1e-5)


def test_a_tiny_hierarchical_model_trains_and_resumes_bit_identical(tmp_path, tiny_fashion, monkeypatch):
    tiny_fashion["model"] = dict(LADDER)
    tiny_fashion["train"].update(epochs=3, limit=256, kl_schedule="linear", kl_warmup=8, free_bits=0.01)
    tiny_fashion["eval"].update(metrics=["nelbo", {"name": "nll", "samples": 4}], limit=32)
    straight = train(tiny_fashion, progress=False)
    records = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert losses[-1] < losses[0]
    assert records[-1]["nll"] <= records[-1]["nelbo"] + 3 * records[-1]["nll_se"]
    original = stop_in_epoch(monkeypatch, 3)
    with pytest.raises(TrainingInterrupted):
        train(tiny_fashion, progress=False)
    monkeypatch.setattr(TrainingLoop, "_epoch", original)
    interrupted = next(p for p in (tmp_path / "runs").iterdir() if p != straight)
    resumed = train(None, resume=interrupted, progress=False)
    a = load_checkpoint(straight / "checkpoints/last.pt")["model"]
    b = load_checkpoint(resumed / "checkpoints/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def trained_weights(net):
    """Weights as after training, not the zeros every group's FiLM and prior start from."""
    torch.manual_seed(0)
    for group in net.decoder.cells:
        torch.nn.init.normal_(group.film.weight, std=0.5)
        torch.nn.init.normal_(group.prior.weight, std=0.5)
    return net.eval()


def test_a_temperature_per_group_and_the_top_groups_held():
    net = trained_weights(model())
    cond = net.condition(torch.tensor([0, 0, 0]))
    held = net.prior_sample(cond, net.draws([1.0, 1.0, 0.5, 0.5, 0.0, 0.0], torch.Generator().manual_seed(0),
                                            fix_top=2)).groups
    assert all(torch.equal(g.z[0], g.z[i]) for g in held[:2] for i in (1, 2))  # one draw for every image
    assert all(not torch.equal(g.z[0], g.z[1]) for g in held[2:4])  # drawn per image
    zero = [0.0] * 6  # every group at its prior's mean: the same image whatever the seed
    a, b = (sample_rows(net, ["a", "b"], 2, seed=s, temperature=zero) for s in (1, 2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(CvaekitError, match=r"6 latent groups: give one temperature for all, or one per group"):
        sample_rows(net, ["a"], 2, temperature=[1.0, 0.5])
    with pytest.raises(CvaekitError, match=r"6 latent groups: hold 0 to 5 of them"):
        sample_rows(net, ["a"], 2, fix_top=6)


def test_a_single_latent_model_is_the_one_group_case_and_says_what_it_has(tiny_fashion):
    single = build_model(load_recipe(tiny_fashion).model, DataInfo((1, 28, 28), ["a", "b"]), get_registry())
    assert single.group_shapes == [(8,)] and single.prior_dim == 8
    with pytest.raises(CvaekitError, match=r"one latent vector \(a single-latent model\): give one temperature; got 3"):
        sample_rows(single, ["a"], 2, temperature=[1.0, 0.7, 0.5])
    with pytest.raises(CvaekitError, match="one latent vector .* no top groups to hold: leave out --fix-top"):
        sample_rows(single, ["a"], 2, fix_top=1)
    with pytest.raises(CvaekitError, match=r"one latent vector \(group 0\); there is no latent group 1"):
        walk_seeds(single, "a", 0, 1, group=1)


def test_walks_at_a_chosen_group_move_that_group_alone():
    net = trained_weights(model())
    assert walk_texts(net, "a", "b", steps=3, seed=0).shape == (3, 1, 28, 28)
    for group in (0, 3, 5):
        strip = walk_seeds(net, "a", 0, 1, steps=4, group=group)
        assert strip.shape == (4, 1, 28, 28) and not torch.equal(strip[0], strip[-1])
        still = walk_seeds(net, "a", 7, 7, steps=3, group=group)  # one seed: the other groups held, nothing moves
        assert all(torch.allclose(still[0], image, atol=1e-6) for image in still[1:])
    with pytest.raises(CvaekitError, match=r"6 latent groups: 0 \(the top\) to 5; there is no latent group 6"):
        walk_seeds(net, "a", 0, 1, group=6)


def test_nelbo_reports_each_groups_kl_and_steep_steps_are_skipped_after_the_warm_up(tiny_fashion):
    tiny_fashion["model"] = dict(LADDER)
    tiny_fashion["train"].update(epochs=1, limit=480, batch_size=8, skip_grad_factor=1e-9)  # every step after the first 50 is too steep
    tiny_fashion["eval"].update(metrics=["nelbo"], limit=32)
    run = train(tiny_fashion, progress=False)
    measured = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    kls = [measured[f"kl_group{i}"] for i in range(6)]
    assert all(k >= 0 for k in kls)
    saved = load_checkpoint(run / "checkpoints/last.pt")
    assert {float(s["step"]) for s in saved["optimizer"]["state"].values()} == {float(SKIP_WARMUP)}  # 60 steps, 50 taken
    assert saved["skipped"] == [10, 10]
    epoch = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][0]
    assert epoch["kind"] == "train" and epoch["skipped_steps"] == 10


def test_a_step_is_skipped_when_far_above_the_running_norm_of_the_steps_taken():
    state = LoopState(torch.Generator())
    for _ in range(SKIP_WARMUP):  # the warm-up sets the level, whatever the norms
        assert not state.too_steep(100.0, 10.0)
        state.step += 1
    assert state.grad_level == pytest.approx(100.0)
    assert state.too_steep(1001.0, 10.0) and state.too_steep(math.inf, 10.0) and state.too_steep(math.nan, 10.0)
    assert state.grad_level == pytest.approx(100.0)  # skipped steps leave the level alone
    assert (state.skipped, state.skipped_in_row) == (3, 3)
    restored = LoopState(torch.Generator())
    restored.load_state_dict(state.state_dict())  # a resume keeps the level and the count
    assert (restored.grad_level, restored.skipped, restored.skipped_in_row) == (state.grad_level, 3, 3)
    assert not state.too_steep(999.0, 10.0)
    assert state.grad_level == pytest.approx(0.99 * 100 + 0.01 * 999)
    assert (state.skipped, state.skipped_in_row) == (3, 0)  # a step taken ends the row


def test_fit_prior_fits_the_top_group_and_generate_takes_a_temperature_per_group(tiny_fashion):
    from typer.testing import CliRunner

    from cvaekit.assembly import load_run
    from cvaekit.cli import app
    from cvaekit.training.fit_prior import fit_prior

    tiny_fashion["model"] = dict(LADDER)
    tiny_fashion["train"].update(epochs=1, limit=128)
    tiny_fashion["eval"].update(metrics=["nelbo"], limit=32)
    run = train(tiny_fashion, progress=False)
    result = fit_prior(run, "mixture", ["components=2"], epochs=1, progress=False)
    assert result.path.is_file() and result.after["nelbo"] > 0
    fitted = load_run(run).model
    assert type(fitted.prior).__name__ == "MixturePrior" and fitted.prior_dim == 3 * 4 * 4  # the top group's z
    cond = fitted.condition(torch.tensor([0, 1]))
    top = fitted.prior_sample(cond, fitted.draws(1.0, torch.Generator().manual_seed(0))).groups[0].z
    again = fitted.prior.sample(cond, torch.Generator().manual_seed(0)).view(top.shape)
    assert torch.equal(top, again)  # the top group from the fitted prior, the rest from the decoder's

    cli = CliRunner()
    done = cli.invoke(app, ["generate", str(run), "sneaker", "bag", "-n", "3", "-t", "1,1,0.7,0.7,0.3,0",
                            "--fix-top", "2", "-o", "grid.png"])
    assert done.exit_code == 0, done.output
    wrong = cli.invoke(app, ["generate", str(run), "bag", "-t", "1,0.5"])
    assert wrong.exit_code != 0 and "6 latent groups: give one temperature for all" in " ".join(wrong.output.split())


@pytest.mark.slow
def test_torchrun_trains_a_hierarchical_run_and_a_resume_ends_bit_identical(tmp_path, tiny_fashion):
    """Two CPU processes (gloo): the per-group KL, free bits and the skipped-step check agree across
    them; a run stopped after epoch 1 and resumed to epoch 2 ends as one trained straight."""
    import shutil
    import subprocess
    import sys

    import yaml

    torchrun = (shutil.which("torchrun") or f"{sys.executable} -m torch.distributed.run").split()
    tiny_fashion["model"] = dict(LADDER)
    tiny_fashion["train"].update(epochs=2, limit=512, free_bits=0.01, skip_grad_factor=10.0)
    tiny_fashion["eval"].update(metrics=["nelbo"], limit=32)

    def run(folder, *args):
        folder.mkdir(exist_ok=True)
        recipe = folder / "r.yaml"
        recipe.write_text(yaml.safe_dump({**tiny_fashion, "runs_dir": str(folder / "runs")}))
        done = subprocess.run([*torchrun, "--standalone", "--nproc_per_node", "2", "-m", "cvaekit", "run", *args,
                               "-q"], capture_output=True, text=True, timeout=300, cwd=folder)
        assert done.returncode == 0, done.stderr[-3000:]
        return next((folder / "runs").iterdir())

    straight = run(tmp_path / "straight", str(tmp_path / "straight" / "r.yaml"))
    stopped = run(tmp_path / "stopped", str(tmp_path / "stopped" / "r.yaml"), "--set", "train.epochs=1")
    resumed = run(tmp_path / "stopped", "--resume", str(stopped), "--set", "train.epochs=2")
    records = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert "kl_group5" in records[-1]
    a = load_checkpoint(straight / "checkpoints/last.pt")["model"]
    b = load_checkpoint(resumed / "checkpoints/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_pages_seed_walk_names_the_group_it_moves():
    from types import SimpleNamespace

    from cvaekit.serving.service import ServedRun, walk_picture

    run = ServedRun("hier", SimpleNamespace(model=trained_weights(model())))
    picture = walk_picture(run, "seeds", "a", seed_a=0, seed_b=1, steps=3, group=2)
    assert picture.note == "'a' from seed 0 to 1 at latent group 2 of 6 (0 the top), in 3 steps."
    assert picture.name.endswith("-group2")
    with pytest.raises(CvaekitError, match="no latent group 9"):
        walk_picture(run, "seeds", "a", group=9)


def test_the_dense_ladder_is_a_hierarchy_of_vectors_that_learns():
    spec = {"latent_dim": 4, "conditioner": "onehot",
            "encoder": {"name": "dense_ladder", "hidden": 32, "width": 16, "levels": 2},
            "decoder": {"name": "dense_ladder", "hidden": 32, "width": 16, "levels": 2, "groups": 2}}
    recipe = load_recipe({"name": "t", "data": "fashion_mnist", "model": spec})
    torch.manual_seed(0)
    net = build_model(recipe.model, DataInfo((1, 28, 28), ["a", "b"]), get_registry())
    x, labels = (torch.rand(16, 1, 28, 28) > 0.5).float(), torch.arange(16) % 2
    groups = net.posterior(x, net.condition(labels)).groups
    assert [tuple(g.z.shape) for g in groups] == [(16, 4, 1, 1)] * 4
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        terms = net(x, labels)
        assert terms["kl"].item() == pytest.approx(terms["kl_groups"].sum().item(), rel=1e-5)
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        losses.append(terms["loss"].item())
    assert losses[-1] < 0.9 * losses[0]
