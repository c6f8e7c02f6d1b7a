"""`python -m cvaekit` with every optimiser step slowed by 100 ms and counted in the file
$CVAEKIT_TEST_STEPS (one line per step, the process's rank), so that a test can send a Ctrl-C
in the middle of an epoch of a tiny run under torchrun."""

import os
import time

import torch

_step = torch.optim.Adam.step


def _slow_step(self, *args, **kwargs):
    time.sleep(0.1)
    out = _step(self, *args, **kwargs)
    with open(os.environ["CVAEKIT_TEST_STEPS"], "a") as f:
        f.write(os.environ.get("RANK", "0") + "\n")
    return out


torch.optim.Adam.step = _slow_step

from cvaekit.cli import app  # noqa: E402

app(prog_name="cvaekit")
