"""Put on PYTHONPATH with $CVAEKIT_TEST_STEPS set, every Python process that starts (torchrun's,
and those `train.processes` spawns) slows each optimiser step by 100 ms and counts it in that
file (one line per step, the process's rank), so that a test can send a Ctrl-C in the middle of
an epoch of a tiny run."""

import os

if "CVAEKIT_TEST_STEPS" in os.environ:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as cvaekit would, before torch loads
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
