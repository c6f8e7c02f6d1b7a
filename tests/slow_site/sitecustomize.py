"""Put on PYTHONPATH, every Python process that starts (torchrun's, and those `train.processes`
spawns) takes faults from the environment, so that a test can interrupt a tiny run in the
middle of an epoch:

CVAEKIT_TEST_STEPS=FILE   slows each optimiser step by 100 ms and counts it in FILE (one line
                          per step, the process's rank), for a test to send a Ctrl-C.
CVAEKIT_TEST_KILL=R:N     the process of rank R SIGKILLs itself right after its optimiser step
                          N, in torchrun's first start of the group only (not after a restart).
"""

import os

if "CVAEKIT_TEST_STEPS" in os.environ or "CVAEKIT_TEST_KILL" in os.environ:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as cvaekit would, before torch loads
    import signal
    import time

    import torch

    _step = torch.optim.Adam.step
    _taken = 0
    _kill = os.environ.get("CVAEKIT_TEST_KILL", "").split(":")

    def _slow_step(self, *args, **kwargs):
        global _taken
        if "CVAEKIT_TEST_STEPS" in os.environ:
            time.sleep(0.1)
        out = _step(self, *args, **kwargs)
        _taken += 1
        if "CVAEKIT_TEST_STEPS" in os.environ:
            with open(os.environ["CVAEKIT_TEST_STEPS"], "a") as f:
                f.write(os.environ.get("RANK", "0") + "\n")
        first_start = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if _kill != [""] and first_start and os.environ.get("RANK") == _kill[0] and _taken == int(_kill[1]):
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    torch.optim.Adam.step = _slow_step
