"""The study's likelihood, a component like the others: `model.likelihood: bernoulli`. The
engine uses the same likelihood when a recipe names none."""

from __future__ import annotations

from cvaekit.core.likelihood import Bernoulli as EngineBernoulli


class Bernoulli(EngineBernoulli):
    """Each pixel value a Bernoulli probability, the decoder's output its logit (the study's
    likelihood; exact for binarized images, a proxy for grey or colour values)."""

    def __init__(self, *, image_shape=None):
        super().__init__(image_shape=image_shape)
