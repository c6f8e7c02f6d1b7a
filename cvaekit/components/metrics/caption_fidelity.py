"""What every caption-fidelity metric does around its data set's checker: sample one image per
test caption, and score the samples, the samples against shuffled captions (chance) and the
real test images (the ceiling)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from cvaekit.core.guidance import guidance_tag, guided
from cvaekit.errors import CvaekitError, UnknownConditionError
from cvaekit.evaluation.context import EvalContext

Fidelity = Callable[[list[str], torch.Tensor], float]  # (captions, images) -> share that pass


def caption_fidelity(ctx: EvalContext, n_captions: int, parse: Callable[[str], object], fidelity: Fidelity,
                     metric: str, dataset: str, guidance: float = 1.0) -> dict[str, float]:
    """The three shares; with `guidance` other than 1, the samples' two carry `_g<scale>` (their
    own columns beside the unguided ones)."""
    n = min(n_captions, len(ctx.test))
    real, captions = ctx.test.batch(torch.arange(n), caption="first")
    try:
        [parse(c) for c in captions]
    except (UnknownConditionError, AttributeError):
        raise CvaekitError(f"Metric '{metric}' needs the captions of the '{dataset}' data set.") from None
    gen = ctx.generator(2)
    samples = torch.cat([ctx.model.sample(captions[i:i + ctx.batch_size], generator=gen, **guided(guidance)).cpu()
                         for i in range(0, n, ctx.batch_size)])
    shuffled = captions[1:] + captions[:1]
    tag = guidance_tag(guidance)
    return {f"fidelity{tag}": fidelity(captions, samples), f"fidelity_shuffled{tag}": fidelity(shuffled, samples),
            "fidelity_real": fidelity(captions, real)}
