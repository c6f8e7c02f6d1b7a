
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cvaekit.store.checkpoint import load_checkpoint
from cvaekit.cli import app
from cvaekit.errors import RecipeError, UnknownConditionError
from cvaekit.serving.generate import generate
from cvaekit.core.sampling import sample_rows
from cvaekit.store.runs import RunDir
from cvaekit.assembly import load_run
from cvaekit.runtime.device import native_bf16
from cvaekit.training import TrainingInterrupted, TrainingLoop, learning_rate, train
from test_training_faults import stop_in_epoch

runner = CliRunner()


def losses(run):
    return [r["loss"] for r in RunDir(run).records() if r["kind"] == "train"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One short real run shared by the generate tests."""
    from conftest import fashion_recipe

    tmp = tmp_path_factory.mktemp("trained")
    return train(fashion_recipe(tmp), progress=False)


def test_short_run_learns_and_writes_its_files(tmp_path, tiny_fashion):
    tiny_fashion["train"]["epochs"] = 3
    tiny_fashion["eval"]["metrics"] = ["nelbo", {"name": "cond_accuracy", "per_class": 10, "judge_epochs": 1}]
    run = train(tiny_fashion, progress=False)
    assert run.parent == tmp_path / "runs" and run.name.startswith("tiny_fashion-")
    trace = losses(run)
    assert len(trace) == 3 and trace[-1] < trace[0] - 10
    for f in ["recipe.yaml", "metrics.jsonl", "loss_curve.png", "checkpoints/last.pt",
              "checkpoints/epoch-0001.pt", "checkpoints/epoch-0003.pt",
              "samples/epoch-0003.png", "reconstructions/epoch-0003.png"]:
        assert (run / f).is_file(), f
    evals = [r for r in RunDir(run).records() if r["kind"] == "eval"]
    assert [r["epoch"] for r in evals] == [1, 2, 3]
    assert 0 <= evals[-1]["cond_accuracy"] <= 1 and evals[-1]["judge_accuracy"] > 0.5
    assert 150 < evals[-1]["nelbo"] < 600
    width, height = Image.open(run / "samples/epoch-0003.png").size
    assert height > width / 2  # ten labelled rows of four samples
    state = load_checkpoint(run / "checkpoints/last.pt")  # loads with weights_only=True
    assert state["epoch"] == 3 and set(state["rng"]) >= {"torch", "order"}


def test_checkpoints_every_n_epochs_and_the_last(tmp_path, tiny_fashion):
    tiny_fashion["train"].update(epochs=3, checkpoint_every=2)
    run = train(tiny_fashion, progress=False)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0002.pt", "epoch-0003.pt", "last.pt"]


def test_same_seed_same_losses(tiny_fashion):
    a, b = (train(tiny_fashion, progress=False) for _ in range(2))
    assert a != b
    assert losses(a) == losses(b)
    tiny_fashion["seed"] = 1
    assert losses(train(tiny_fashion, progress=False)) != losses(a)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "cooldown"])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, tiny_fashion, monkeypatch, schedule):
    tiny_fashion["train"].update(epochs=3, lr_schedule=schedule)
    straight = train(tiny_fashion, progress=False)

    original = stop_in_epoch(monkeypatch, 3)
    with pytest.raises(TrainingInterrupted, match="cvaekit run --resume") as info:
        train(tiny_fashion, progress=False)
    interrupted = next(p for p in (tmp_path / "runs").iterdir() if p != straight)
    assert str(interrupted) in str(info.value)
    assert load_checkpoint(interrupted / "checkpoints/last.pt")["epoch"] == 2
    monkeypatch.setattr(TrainingLoop, "_epoch", original)

    resumed = train(None, resume=interrupted, progress=False)
    assert resumed == interrupted
    assert losses(resumed) == losses(straight)
    a = load_checkpoint(straight / "checkpoints/last.pt")["model"]
    b = load_checkpoint(resumed / "checkpoints/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_cosine_schedule_falls_from_train_lr_to_zero_over_the_recipes_steps(tiny_fashion):
    assert learning_rate(0.01, "cosine", 0, 100) == 0.01
    assert learning_rate(0.01, "cosine", 50, 100) == pytest.approx(0.005)
    assert learning_rate(0.01, "cosine", 100, 100) == pytest.approx(0.0)
    assert learning_rate(0.01, "constant", 99, 100) == 0.01
    assert learning_rate(0.01, "cooldown", 79, 100, cooldown=0.2) == 0.01  # held for 80% of the steps
    assert learning_rate(0.01, "cooldown", 90, 100, cooldown=0.2) == pytest.approx(0.005)
    assert learning_rate(0.01, "cooldown", 100, 100, cooldown=0.2) == pytest.approx(0.0)
    assert learning_rate(0.01, "cooldown", 50, 100, cooldown=1.0) == pytest.approx(0.005)
    tiny_fashion["train"].update(epochs=2, lr_schedule="cosine")
    run = train(tiny_fashion, progress=False)
    steps = load_checkpoint(run / "checkpoints/last.pt")["step"]
    last_lr = load_checkpoint(run / "checkpoints/last.pt")["optimizer"]["param_groups"][0]["lr"]
    assert last_lr == pytest.approx(learning_rate(tiny_fashion["train"]["lr"], "cosine", steps - 1, steps))
    assert 0 < last_lr < 0.01 * tiny_fashion["train"]["lr"]
    with pytest.raises(RecipeError, match=r"'train.lr_schedule' must be one of 'constant', 'cooldown', 'cosine', got 'cosin'"):
        train({**tiny_fashion, "train": {**tiny_fashion["train"], "lr_schedule": "cosin"}}, progress=False)


def test_resume_can_extend_training_and_rejects_a_different_model(tmp_path, tiny_fashion):
    run = train(tiny_fashion, progress=False)
    train(None, resume=run, overrides=["train.epochs=3"], progress=False)
    assert [r["epoch"] for r in RunDir(run).records() if r["kind"] == "train"] == [1, 2, 3]
    result = runner.invoke(app, ["run", "--resume", str(run), "--set", "model.latent_dim=4"])
    assert result.exit_code == 2 and "model differ" in result.output


def test_resuming_a_finished_run_changes_nothing_and_says_how_to_train_further(tmp_path, tiny_fashion, capsys):
    run = train(tiny_fashion, progress=False)
    files = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert train(None, resume=run, progress=False) == run
    assert "already trained all 2 epochs" in capsys.readouterr().err
    with pytest.raises(RecipeError, match=r"already trained 2 epochs, more than 'train.epochs' \(1\).*"
                                          r"--set train.epochs=12"):
        train(None, resume=run, overrides=["train.epochs=1"], progress=False)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == files


def test_cli_run_with_overrides(tmp_path, tiny_fashion):
    import yaml

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_fashion))
    result = runner.invoke(app, ["run", str(path), "-q", "--set", "train.epochs=1", "--set", "model.latent_dim=5"])
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs").iterdir())
    saved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert saved["train"]["epochs"] == 1 and saved["model"]["latent_dim"] == 5
    assert load_run(run).model.latent_dim == 5


def test_generate_accepts_class_names_and_common_variants(trained_run, tmp_path):
    out = generate(trained_run, ["sneaker", "BAG", "T-shirt", "tshirt", "top", "pants",
                                 "trousers", "ankle boot", "boot", "Sneakers"], n=3, out=tmp_path / "g.png")
    assert out.is_file()
    raw = load_run(trained_run).model.conditioner.parse(["T-shirt", "tshirt", "top", "pants", "boot"])
    assert raw.tolist() == [0, 0, 0, 1, 9]


def test_generate_cli_writes_a_labelled_grid(trained_run, tmp_path):
    out = tmp_path / "out.png"
    result = runner.invoke(app, ["generate", str(trained_run), "sneaker", "bag", "T-shirt", "-n", "8", "-o", str(out)])
    assert result.exit_code == 0, result.output
    w, h = Image.open(out).size
    assert w > h  # three rows of eight


def test_generate_at_temperature_zero_draws_each_class_mean_and_rejects_a_negative_one(trained_run, tmp_path):
    model = load_run(trained_run).model
    cold = sample_rows(model, ["sneaker", "bag"], n=3, temperature=0.0)
    warm = sample_rows(model, ["sneaker", "bag"], n=3)
    assert all(torch.allclose(row[0], row[i], atol=1e-6) for row in cold for i in (1, 2))
    assert not torch.equal(warm[0][0], warm[0][1])
    assert not torch.equal(cold[0][0], cold[1][0])
    out = tmp_path / "cold.png"
    result = runner.invoke(app, ["generate", str(trained_run), "sneaker", "-n", "4", "-t", "0.5", "-o", str(out)])
    assert result.exit_code == 0 and out.is_file(), result.output
    bad = tmp_path / "bad.png"
    result = runner.invoke(app, ["generate", str(trained_run), "sneaker", "--temperature", "-1", "-o", str(bad)])
    assert result.exit_code == 2 and "temperature must be 0 or more" in result.output
    assert not bad.exists()


def test_word_outside_the_label_set_is_an_error_listing_the_valid_words(trained_run, tmp_path):
    out = tmp_path / "hat.png"
    result = runner.invoke(app, ["generate", str(trained_run), "sneaker", "hat", "-o", str(out)])
    assert result.exit_code == 2
    assert "'hat' is not a class" in result.output and "'Sneaker'" in result.output and "'Bag'" in result.output
    assert not out.exists()
    with pytest.raises(UnknownConditionError, match="Did you mean 'sneaker'"):
        load_run(trained_run).model.conditioner.parse(["sneeker"])


def test_generate_from_a_missing_checkpoint_names_the_kept_ones(trained_run):
    result = runner.invoke(app, ["generate", str(trained_run), "bag", "--checkpoint", "7"])
    assert result.exit_code == 2 and "Kept epochs: 1, 2" in result.output


def test_generate_rejects_a_folder_that_is_not_a_run(tmp_path):
    result = runner.invoke(app, ["generate", str(tmp_path), "bag"])
    assert result.exit_code == 2 and "not a cvaekit run folder" in result.output


def test_progress_figures_reuse_the_models_seen_in_training(tmp_path, tiny_fashion, monkeypatch):
    import cvaekit.evaluation.progress as evaluate_module

    reads = []
    original = evaluate_module.read_training_checkpoint
    monkeypatch.setattr(evaluate_module, "read_training_checkpoint", lambda p: reads.append(p) or original(p))
    run = train(tiny_fashion, progress=False)
    assert reads == []  # every checkpoint was drawn while it was in memory
    assert (run / "samples_by_epoch.png").is_file() and (run / "reconstructions_by_epoch.png").is_file()
    train(None, resume=run, overrides=["train.epochs=3"], progress=False)
    assert sorted(p.name for p in reads) == ["epoch-0001.pt", "epoch-0002.pt"]  # from before the resume


def test_training_on_cpu_flushes_subnormals_and_restores_the_default(tiny_fashion, monkeypatch):
    subnormal = torch.tensor([1e-40])
    seen = []
    original = TrainingLoop.fit
    monkeypatch.setattr(TrainingLoop, "fit", lambda self, *a: seen.append((subnormal * 1.0).item()) or original(self, *a))
    assert (subnormal * 1.0).item() != 0.0
    train(tiny_fashion, progress=False)
    assert seen == [0.0]  # inside the loop: a dead unit's Adam state costs nothing
    assert (subnormal * 1.0).item() != 0.0  # the process gets its default back


@pytest.mark.skipif(not native_bf16(torch.device("cpu")), reason="this CPU has no native bfloat16")
def test_amp_on_a_bf16_cpu_trains_in_bfloat16_and_learns(tiny_fashion, monkeypatch):
    from cvaekit.components.networks.mlp import MLPDecoder

    dtypes = set()
    original = MLPDecoder.forward
    monkeypatch.setattr(MLPDecoder, "forward", lambda self, z, c: (out := original(self, z, c), dtypes.add(out.dtype))[0])
    run = train(tiny_fashion, overrides=["train.amp=true", "train.epochs=3"], progress=False)
    assert torch.bfloat16 in dtypes
    loss = losses(run)
    assert loss[-1] < loss[0]


def test_amp_on_a_cpu_without_bf16_stays_in_float32(monkeypatch):
    import cvaekit.runtime.device as device

    monkeypatch.setattr(device, "native_bf16", lambda device: False)
    with device.mixed_precision(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_the_float32_message_is_said_only_where_asked(monkeypatch):
    """Under DDP only process 0 says it, not every process."""
    import cvaekit.runtime.device as device

    monkeypatch.setattr(device, "native_bf16", lambda device: False)
    with device.console.capture() as said:
        device.mixed_precision(torch.device("cpu"))
    assert "no native bfloat16; training in float32" in said.get()
    with device.console.capture() as quiet:
        device.mixed_precision(torch.device("cpu"), say=False)
    assert quiet.get() == ""
