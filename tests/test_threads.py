"""The recipe's CPU thread count (`train.threads`): it holds while the run trains, the count
before comes back after, and OMP_NUM_THREADS set by the user wins."""

from __future__ import annotations

import torch

from cvaekit.runtime.device import cpu_threads
from cvaekit.training import train


def test_a_recipes_thread_count_holds_while_it_trains_and_is_restored_after(tiny_fashion, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    seen = []
    real_step = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tiny_fashion["train"].update(epochs=1, limit=64, threads=1)
        train(tiny_fashion, progress=False)
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_users_omp_num_threads_wins_over_the_recipe(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))
    with cpu_threads(torch.device("cpu"), 1):
        assert torch.get_num_threads() == before
    monkeypatch.delenv("OMP_NUM_THREADS")
    with cpu_threads(torch.device("cpu"), 1):
        assert torch.get_num_threads() == 1
    with cpu_threads(torch.device("cpu"), None):  # null: left as it is
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before
