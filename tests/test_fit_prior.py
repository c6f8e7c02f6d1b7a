"""`cvaekit fit-prior`: a prior fitted to a trained run's codes, saved in the run and used by
generate and evaluate."""

import pytest
import torch
from typer.testing import CliRunner

from cvaekit.cli import app
from cvaekit.errors import RecipeError
from cvaekit.evaluation.checkpoints import evaluate
from cvaekit.training.fit_prior import fit_prior
from cvaekit.serving.generate import generate
from cvaekit.assembly import load_run
from cvaekit.training import train
from cvaekit.recipe import load_recipe

runner = CliRunner()


@pytest.fixture
def tiny_run(tiny_fashion):
    tiny_fashion["train"].update(epochs=1, limit=1000)
    tiny_fashion["eval"]["limit"] = 200
    return train(tiny_fashion, progress=False)


def test_fit_prior_saves_a_prior_that_generate_and_evaluate_use(tiny_run):
    as_trained = evaluate(tiny_run, figures=False).rows[0]["nelbo"]
    result = fit_prior(tiny_run, "flow", ["transforms=2", "hidden=32"], epochs=3, progress=False)
    assert result.path == tiny_run / "checkpoints" / "epoch-0001.prior.pt" and result.path.is_file()
    assert set(result.before) == set(result.after) == {"nelbo"}
    assert result.before["nelbo"] == pytest.approx(as_trained, rel=1e-5)  # training's figure for the checkpoint
    assert result.figure.is_file()

    fitted = load_run(tiny_run)
    assert fitted.fitted_prior == result.path and type(fitted.model.prior).__name__ == "FlowPrior"
    assert load_run(tiny_run, fitted_prior=False).model.prior is None  # the recipe's N(0, I)
    z_fitted = fitted.model.prior.sample(fitted.model.condition(torch.tensor([0, 1])), torch.Generator().manual_seed(0))
    assert not torch.allclose(z_fitted, torch.randn(2, 8, generator=torch.Generator().manual_seed(0)))

    out = generate(tiny_run, ["bag"], n=4, out=tiny_run / "bag.png")
    assert out.is_file()
    rows = evaluate(tiny_run, figures=False).rows
    assert rows[0]["nelbo"] == pytest.approx(result.after["nelbo"], rel=0.05)  # measured with the fitted prior
    assert rows[0]["prior"] == "fitted"
    trained = evaluate(tiny_run, prior="trained", figures=False)
    assert trained.rows[0]["nelbo"] == pytest.approx(as_trained, rel=1e-5) and trained.rows[0]["prior"] == "trained"
    assert evaluate(tiny_run, prior="fitted", figures=False).rows[0]["nelbo"] == rows[0]["nelbo"]
    assert [r["prior"] for r in trained.table] == ["fitted", "trained"]  # both kept, each saying which


def test_fit_prior_measures_before_itself_when_training_wrote_no_figures_for_the_checkpoint(tiny_run):
    as_trained = evaluate(tiny_run, figures=False).rows[0]["nelbo"]
    (tiny_run / "metrics.jsonl").write_text("")
    result = fit_prior(tiny_run, "mixture", ["components=2"], epochs=1, progress=False)
    assert result.before["nelbo"] == pytest.approx(as_trained, rel=1e-5)


def test_fit_prior_names_a_bad_parameter_and_the_valid_ones(tiny_run):
    with pytest.raises(RecipeError, match=r"fit-prior --prior flow: Unknown key 'transfroms' for prior 'flow'\. "
                                          r"Did you mean 'transforms'\? Valid keys: .*'transforms'"):
        fit_prior(tiny_run, "flow", ["transfroms=2"], epochs=1, progress=False, measure=False)
    with pytest.raises(RecipeError, match=r"fit-prior --prior flow: 'transforms' must be an integer, got 'x'"):
        fit_prior(tiny_run, "flow", ["transforms=x"], epochs=1, progress=False, measure=False)
    with pytest.raises(RecipeError, match=r"--set 'transforms' must look like key=value, e\.g\. --set transforms=4"):
        fit_prior(tiny_run, "flow", ["transforms"], epochs=1, progress=False, measure=False)
    with pytest.raises(RecipeError, match=r"Unknown prior 'flwo'.*flow"):
        fit_prior(tiny_run, "flwo", epochs=1, progress=False, measure=False)
    assert not list((tiny_run / "checkpoints").glob("*.prior.pt"))


def test_the_fit_prior_command_prints_the_metrics_before_and_after(tiny_run):
    result = runner.invoke(app, ["fit-prior", str(tiny_run), "--prior", "mixture", "--set", "components=3",
                                 "--epochs", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert "as trained" in result.output and "fitted mixture" in result.output and "nelbo" in result.output
    assert (tiny_run / "checkpoints" / "epoch-0001.prior.pt").is_file()
    bad = runner.invoke(app, ["fit-prior", str(tiny_run), "--epochs", "0"])
    assert bad.exit_code == 2 and "'epochs' must be a whole number of at least 1" in bad.output
    typo = runner.invoke(app, ["fit-prior", str(tiny_run), "--prior", "mixture", "--set", "component=3"])
    said = " ".join(typo.output.split())
    assert typo.exit_code == 2 and "Unknown key 'component' for prior 'mixture'. Did you mean 'components'?" in said
    assert "model.prior" not in said and "Traceback" not in said


def test_codes_keep_each_batchs_tokens_padded_to_the_longest_and_masked():
    from cvaekit.core.condition import Condition

    short = Condition(torch.ones(2, 3), torch.ones(2, 1, 3), torch.tensor([[True], [True]]))
    long = Condition(torch.zeros(1, 3), torch.full((1, 4, 3), 2.0), torch.tensor([[True, True, True, False]]))
    both = Condition.cat([short, long], device="cpu")
    assert both.vector.shape == (3, 3) and both.tokens.shape == (3, 4, 3)
    assert both.mask.tolist() == [[True, False, False, False]] * 2 + [[True, True, True, False]]
    assert torch.equal(both.tokens[0, 1:], torch.zeros(3, 3)) and torch.equal(both.tokens[2], long.tokens[0])


def test_each_process_fits_on_an_equal_disjoint_share_of_the_images():
    from cvaekit.core.data import Split

    split = Split(torch.arange(7).view(7, 1, 1, 1).to(torch.uint8), [[f"caption {i}"] for i in range(7)])
    parts = [split.part(rank, 3) for rank in range(3)]
    assert [len(p) for p in parts] == [2, 2, 2]  # the seventh image is left out, so every process takes as many steps
    assert sorted(int(i) for p in parts for i in p.images.flatten()) == list(range(6))
    assert [p.conditions for p in parts][1] == [["caption 1"], ["caption 4"]]
    assert split.part(0, 1) is split


def test_a_recipe_with_a_fit_prior_stage_fits_it_after_training_and_a_resume_fits_what_is_missing(tiny_fashion):
    from cvaekit.store.runs import RunDir

    tiny_fashion["train"].update(epochs=1, limit=600)
    tiny_fashion["eval"]["limit"] = 100
    tiny_fashion["fit_prior"] = {"prior": {"name": "mixture", "components": 3}, "epochs": 2}
    run = train(tiny_fashion, progress=False)
    fitted = run / "checkpoints" / "epoch-0001.prior.pt"
    assert fitted.is_file() and type(load_run(run).model.prior).__name__ == "MixturePrior"
    record = next(r for r in RunDir(run).records() if r["kind"] == "fit_prior")
    assert record["prior"] == "mixture" and set(record["before"]) == set(record["after"]) == {"nelbo"}

    fitted.unlink()  # as if the fit had been interrupted: resuming the finished run fits it
    assert train(None, resume=run, progress=False) == run and fitted.is_file()
    mtime = fitted.stat().st_mtime_ns
    train(None, resume=run, progress=False)  # fitted already: nothing to do
    assert fitted.stat().st_mtime_ns == mtime


def test_a_model_trained_with_a_flow_prior_gets_a_fresh_flow_fitted_and_keeps_its_own(tiny_fashion):
    """shapes_best's two stages: the flow trained with the model stays in the checkpoint, and
    samples come from the flow fitted afterwards to the final codes."""
    flow = {"name": "flow", "transforms": 1, "hidden": 16, "context": "vector"}
    tiny_fashion["model"]["prior"] = flow
    tiny_fashion["train"].update(epochs=1, limit=300)
    tiny_fashion["eval"]["limit"] = 50
    tiny_fashion["fit_prior"] = {"prior": dict(flow), "epochs": 1}
    run = train(tiny_fashion, progress=False)
    fitted, own = load_run(run), load_run(run, fitted_prior=False)
    assert fitted.fitted_prior == run / "checkpoints" / "epoch-0001.prior.pt"
    assert type(fitted.model.prior).__name__ == type(own.model.prior).__name__ == "FlowPrior"
    cond = own.model.condition(torch.tensor([0, 1]))
    z = torch.zeros(2, own.model.latent_dim)
    assert not torch.allclose(fitted.model.prior.log_prob(z, cond), own.model.prior.log_prob(z, cond))
    assert generate(run, ["bag"], n=2, out=run / "bag.png").is_file()


def test_a_bad_fit_prior_section_is_a_recipe_error_naming_the_key(tiny_fashion):
    tiny_fashion["fit_prior"] = {"prior": {"name": "flow", "hiden": 3}}
    with pytest.raises(RecipeError, match=r"'fit_prior.prior.hiden'.*hidden"):
        train(tiny_fashion, progress=False)
    tiny_fashion["fit_prior"] = {"prior": "flow", "epochs": 0}
    with pytest.raises(RecipeError, match=r"'fit_prior.epochs' must be at least 1"):
        train(tiny_fashion, progress=False)


def test_a_fit_prior_stage_without_its_own_prior_fits_the_models_prior_again(tiny_fashion):
    flow = {"name": "flow", "transforms": 1, "hidden": 16}
    tiny_fashion["model"]["prior"] = flow
    tiny_fashion["fit_prior"] = {"epochs": 3}
    recipe = load_recipe(tiny_fashion)
    assert recipe.fit_prior.prior == recipe.model.prior and recipe.fit_prior.prior.params["hidden"] == 16
    assert recipe.fit_prior.epochs == 3
    tiny_fashion["fit_prior"] = {"prior": "mixture"}  # a named prior still wins
    assert load_recipe(tiny_fashion).fit_prior.prior.name == "mixture"


def test_a_fit_prior_stage_with_no_prior_to_fit_names_the_choices(tiny_fashion):
    tiny_fashion["model"].pop("prior", None)  # N(0, I)
    tiny_fashion["fit_prior"] = {"epochs": 3}
    with pytest.raises(RecipeError, match=r"names none and the model has none.*'fit_prior.prior'.*'flow'"):
        load_recipe(tiny_fashion)
