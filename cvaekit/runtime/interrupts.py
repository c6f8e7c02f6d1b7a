"""Ctrl-C during training: noted, and acted on between optimiser steps.

So that weights and optimiser are never caught half-updated and a mid-epoch checkpoint can be
saved (cvaekit/training.py saves it and stops).
"""

from __future__ import annotations

import signal
import threading
import time


class Interrupts:
    """Ctrl-C during an epoch's steps is noted and acted on between steps, so weights and
    optimiser are never caught half-updated and a mid-epoch checkpoint can be saved; a second
    Ctrl-C, or one outside the steps (evaluation, figures), stops at once as usual.

    Under torchrun a Ctrl-C reaches each process twice (from the terminal, and from torchrun,
    which may send SIGTERM instead): SIGTERM counts too, and a repeat within `grace` seconds
    of the first is the same Ctrl-C.

    A KeyboardInterrupt raised inside a C extension can come out as another error (matplotlib's
    renderer turns it into "ValueError: Invalid affine transformation matrix"); leaving the block
    with any error after a Ctrl-C was raised is still a Ctrl-C."""

    def __init__(self, defer: bool = True, distributed: bool = False, grace: float = 2.0):
        self.defer = defer and threading.current_thread() is threading.main_thread()
        self.signals = (signal.SIGINT, signal.SIGTERM) if distributed else (signal.SIGINT,)
        self.grace = grace if distributed else 0.0
        self.in_steps = False
        self.requested = False
        self._first = 0.0
        self.raised = False
        self._previous = {}

    def __enter__(self) -> Interrupts:
        if self.defer:
            self._previous = {s: signal.signal(s, self._handle) for s in self.signals}
        return self

    def __exit__(self, kind, error, trace) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        if self.raised and kind is not None and not issubclass(kind, KeyboardInterrupt):
            raise KeyboardInterrupt from error

    def _handle(self, signum, frame) -> None:
        if self.in_steps and not self.requested:
            self.requested, self._first = True, time.monotonic()
            return
        if self.requested and time.monotonic() - self._first < self.grace:
            return
        self.raised = True
        raise KeyboardInterrupt
