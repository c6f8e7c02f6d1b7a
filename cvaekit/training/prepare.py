"""`cvaekit prepare RECIPE`: fill the caches a recipe will use before it trains.

Building the recipe's data set decodes its images into the memory-mapped cache; a
conditioner with a `prepare(texts, device, progress)` method (the frozen text encoders,
CLIP and sentence-transformers, and any plugin that offers one) then encodes every distinct
caption of the training and test splits once, on the recipe's device (the GPU when there is
one). Both caches save as they go, so an interrupted prepare loses nothing and a second
one continues where the first stopped; a training run that follows finds everything ready.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cvaekit.assembly import build_conditioner, build_dataset
from cvaekit.plugins.loading import get_registry
from cvaekit.plugins.registry import Registry
from cvaekit.recipe import Recipe, load_recipe
from cvaekit.runtime.device import resolve_device


@dataclass
class Prepared:
    """What `prepare` found and did."""

    dataset: str
    train_images: int
    test_images: int
    image_shape: tuple[int, int, int]
    conditioner: str
    captions: dict[str, int] | None = None  # distinct, cached (before), encoded (now); None: nothing to encode
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """What `cvaekit prepare` prints: the images, then the captions."""
        c, h, w = self.image_shape
        lines = [f"Images ({self.dataset}, {c}x{h}x{w}): {self.train_images:,} train, {self.test_images:,} test, "
                 f"in the cache ({self.seconds['images']:.1f} s)."]
        if self.captions is None:
            return lines + [f"Captions ({self.conditioner}): nothing to encode."]
        n = self.captions
        return lines + [f"Captions ({self.conditioner}): {n['distinct']:,} distinct: {n['cached']:,} already cached, "
                        f"{n['encoded']:,} encoded now ({self.seconds['captions']:.1f} s)."]


def prepare(recipe: Recipe | str | os.PathLike, *, overrides: list[str] = (), registry: Registry | None = None,
            device: str | None = None, progress: bool = True) -> Prepared:
    """Decode the recipe's images and encode its captions into their caches (see the module)."""
    registry = registry or get_registry()
    where = resolve_device(device, "--device") if device else None  # checked before any work
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(Path(recipe), overrides, registry)
    start = time.perf_counter()
    data = build_dataset(recipe, registry)
    seconds = {"images": time.perf_counter() - start}
    spec = recipe.model.conditioner
    conditioner = build_conditioner(recipe.model, data.info(), registry)
    report = Prepared(recipe.data.name, len(data.train), len(data.test), data.image_shape, spec.name,
                      seconds=seconds)
    encode = getattr(conditioner, "prepare", None)
    texts = data.train.texts() + data.test.texts()
    if callable(encode) and texts:
        start = time.perf_counter()
        report.captions = encode(texts, where or resolve_device(recipe.train.device), progress)
        seconds["captions"] = time.perf_counter() - start
    return report
