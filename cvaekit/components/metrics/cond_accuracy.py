"""Conditional accuracy: does a classifier trained on real images see the asked class?"""

from __future__ import annotations

import torch

from cvaekit.components.metrics.judge import Judge, accuracy, cached_judge
from cvaekit.errors import CvaekitError
from cvaekit.evaluation.context import EvalContext
from cvaekit.core.guidance import check_guidance, guidance_tag, guided
from cvaekit.recipe import NonNegativeFloat, PositiveInt


class ConditionalAccuracy:
    """Share of generated samples that a judge trained on real images classifies as asked.

    per_class: samples drawn for each class (5,000 in all for 500 and 10 classes: about +/-0.005).
    judge_epochs: epochs the judge trains on the real training split.
    judge_seed: the judge's seed; other seeds give other judges, to see how much a figure rests on one.
    guidance: the guidance scale of the samples (1: none; above 1 needs a run trained with train.cond_dropout; reported as cond_accuracy_g2 and so on).
    """

    def __init__(self, per_class: PositiveInt = 100, judge_epochs: PositiveInt = 2, judge_seed: int = 0,
                 guidance: NonNegativeFloat = 1.0):
        self.per_class = per_class
        self.judge_epochs = judge_epochs
        self.judge_seed = judge_seed
        self.guidance = check_guidance(guidance)

    def judge(self, ctx: EvalContext) -> Judge:
        """The cached judge for the run's data set."""
        classes = ctx.data.classes
        if not classes or not ctx.data.train.labelled:
            raise CvaekitError("Metric 'cond_accuracy' needs labelled data (such as fashion_mnist); "
                               "this data set has captions. Use a caption metric instead.")
        return cached_judge(ctx.data.train, len(classes), self.judge_epochs, self.judge_seed)

    def samples(self, ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor]:
        """`per_class` samples of every class, drawn with the run's seed, and their labels."""
        labels = torch.arange(len(ctx.data.classes)).repeat_interleave(self.per_class)
        gen = ctx.generator(1)
        samples = torch.cat([ctx.model.sample(labels[i:i + ctx.batch_size], generator=gen, **guided(self.guidance)).cpu()
                             for i in range(0, len(labels), ctx.batch_size)])
        return samples, labels

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        judge = self.judge(ctx)
        samples, labels = self.samples(ctx)
        real_images, real_labels = ctx.test.batch(torch.arange(len(ctx.test)))
        tag = guidance_tag(self.guidance)
        return {f"cond_accuracy{tag}": accuracy(judge, samples, labels),
                "judge_accuracy": accuracy(judge, real_images, real_labels)}
