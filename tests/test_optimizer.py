"""The optimizer: a part of the model at its own rate (`train.part_lr`), Adam's beta2."""

import pytest
import torch
from torch import nn

from cvaekit.errors import RecipeError
from cvaekit.recipe import load_recipe
from cvaekit.store.checkpoint import load_checkpoint
from cvaekit.training import learning_rate, train
from cvaekit.training.optimizer import build_optimizer, restore_optimizer


class TwoParts(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 4)
        self.decoder = nn.Linear(4, 4)
        self.likelihood = nn.Identity()  # a part without weights


def stepped(part_lr, steps=20):
    """How far each part's weights moved after `steps` Adam steps on random gradients."""
    torch.manual_seed(0)
    model = TwoParts()
    recipe = load_recipe({"name": "t", "data": {"name": "fashion_mnist"},
                          "model": {"conditioner": "onehot", "encoder": "mlp", "decoder": "mlp"},
                          "train": {"lr": 1e-2, "part_lr": part_lr}})
    start = {k: v.clone() for k, v in model.state_dict().items()}
    opt = build_optimizer(recipe, model, torch.device("cpu"))
    for _ in range(steps):
        for p in model.parameters():
            p.grad = torch.randn_like(p)
        opt.step()
    return {part: max((model.state_dict()[k] - start[k]).abs().max().item() for k in start if k.startswith(part))
            for part in ("encoder", "decoder")}


def test_a_part_named_in_part_lr_moves_at_its_factor_of_the_rate_and_the_rest_at_the_rate():
    moved = stepped({"decoder": 1e-4})
    assert moved["decoder"] <= 20 * 1e-2 * 1e-4 * 1.01  # Adam moves a weight by at most about lr a step
    assert moved["encoder"] > 100 * moved["decoder"]
    even = stepped({})
    assert even["encoder"] == pytest.approx(moved["encoder"])  # the rest trains as without part_lr


def test_part_lr_naming_no_part_of_the_model_says_which_parts_there_are():
    with pytest.raises(RecipeError, match=r"'train.part_lr' names 'encodr', which is not a part of this model with "
                                          r"weights; its parts are 'decoder', 'encoder'"):
        stepped({"encodr": 0.5})
    with pytest.raises(RecipeError, match=r"'train.part_lr.encoder' must be a number above 0 .*got -1"):
        stepped({"encoder": -1})


def test_the_schedule_keeps_each_groups_factor_and_beta2_reaches_adam(tiny_fashion):
    tiny_fashion["train"].update(epochs=2, lr_schedule="cosine", part_lr={"encoder": 0.25}, adam_beta2=0.95)
    run = train(tiny_fashion, progress=False)
    saved = load_checkpoint(run / "checkpoints/last.pt")
    encoder, rest = saved["optimizer"]["param_groups"]
    lr = learning_rate(tiny_fashion["train"]["lr"], "cosine", saved["step"] - 1, saved["step"])
    assert rest["lr"] == pytest.approx(lr) and encoder["lr"] == pytest.approx(0.25 * lr)
    assert encoder["betas"] == rest["betas"] == (0.9, 0.95)
    assert len(encoder["params"]) == 6  # the MLP encoder's hidden, mu and logvar layers: a weight and a bias each


def test_a_part_lr_factor_that_is_no_number_is_refused_with_the_recipe_naming_its_key(tiny_fashion):
    tiny_fashion["train"]["part_lr"] = {"encoder": "half"}
    with pytest.raises(RecipeError, match=r"'train.part_lr.encoder' must be a number, got 'half'"):
        load_recipe(tiny_fashion)


def test_a_resume_with_other_factors_keeps_each_weights_moments_under_its_new_factor():
    """Adam's own loading needs the same groups (1 here, 2 saved) and would keep the old factors."""
    torch.manual_seed(0)
    model = TwoParts()
    recipes = [load_recipe({"name": "t", "data": {"name": "fashion_mnist"},
                            "model": {"conditioner": "onehot", "encoder": "mlp", "decoder": "mlp"},
                            "train": {"part_lr": part_lr}}) for part_lr in ({"encoder": 0.5}, {"decoder": 3.0})]
    before = build_optimizer(recipes[0], model, torch.device("cpu"))
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    before.step()
    after = build_optimizer(recipes[1], model, torch.device("cpu"))
    restore_optimizer(after, before.state_dict(), model, {"encoder": 0.5}, {"decoder": 3.0})
    assert [g["lr_factor"] for g in after.param_groups] == [3.0, 1.0]
    assert [len(g["params"]) for g in after.param_groups] == [2, 2]  # decoder; encoder with the rest
    for p in model.parameters():
        assert torch.equal(after.state[p]["exp_avg"], before.state[p]["exp_avg"])
        assert torch.equal(after.state[p]["exp_avg_sq"], before.state[p]["exp_avg_sq"])


def test_resuming_a_run_with_part_lr_removed_trains_on_at_the_common_rate(tiny_fashion):
    tiny_fashion["train"].update(epochs=1, limit=640, part_lr={"encoder": 0.5})
    run = train(tiny_fashion, progress=False)
    train(None, resume=run, overrides=["train.epochs=2", "train.part_lr={}"], progress=False)
    groups = load_checkpoint(run / "checkpoints/last.pt")["optimizer"]["param_groups"]
    assert [(g["lr_factor"], g["lr"]) for g in groups] == [(1.0, tiny_fashion["train"]["lr"])]
