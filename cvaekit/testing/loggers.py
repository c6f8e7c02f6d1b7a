"""The logger contract: a tracker told about a short run without raising, whatever it records."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from cvaekit.plugins.registry import Registry
from cvaekit.testing.checker import _Checker

POINTS = ("start", "epoch", "checkpoint", "close")


def check_logger(name: str | Callable[..., Any], params: dict[str, Any] | None = None, *,
                 registry: Registry | None = None, folder: str | Path | None = None) -> Any:
    """A logger: built from recipe parameters; start(run, params), epoch, checkpoint (with two
    PNGs) and close('finished', checkpoint) on a made-up run in `folder` (a temporary one if
    none), each without raising. Returns the logger, for the plugin's test to read back."""
    c = _Checker("logger", name, params, registry)
    c.check_params()
    logger = c.build()
    missing = [p for p in POINTS if not callable(getattr(logger, p, None))]
    if missing:
        c.fail("interface", f"a logger needs the methods {', '.join(POINTS)}; "
                            f"{type(logger).__name__} lacks {', '.join(missing)}")
    with tempfile.TemporaryDirectory() as spare:
        run = Path(folder or spare) / "probe-run"
        (run / "checkpoints").mkdir(parents=True, exist_ok=True)
        images = {}
        for what, colour in (("samples", (200, 40, 40)), ("reconstructions", (40, 40, 200))):
            images[what] = run / what / "epoch-0001.png"
            images[what].parent.mkdir(exist_ok=True)
            Image.new("RGB", (16, 8), colour).save(images[what])
        checkpoint = run / "checkpoints" / "last.pt"
        checkpoint.write_bytes(b"probe checkpoint")
        with c.point("start"):
            logger.start(run, {"name": "probe", "train.lr": 0.001, "model.latent_dim": 8, "log.0.name": "probe"})
        for epoch in (1, 2):
            with c.point("epoch"):
                logger.epoch(epoch, {"train/loss": 10.0 / epoch, "train/kl": 1.0})
            with c.point("checkpoint"):
                logger.checkpoint(epoch, {"eval/nelbo": 12.0 / epoch}, images)
        with c.point("close"):
            logger.close("finished", checkpoint)
    return logger
