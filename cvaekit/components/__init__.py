"""cvaekit's built-in components: a plugin like any other, named by the entry point
``builtin`` in the group ``cvaekit`` (see pyproject.toml)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .clip_score import CLIPScoreMetric
from .clip_text import clip_text
from .coco import coco_captions
from .fashion_mnist import fashion_mnist
from .fid import FID
from .judge import ConditionalAccuracy
from .likelihood import NegativeELBO, Reconstruction
from .mlp import MLPDecoder, MLPEncoder
from .onehot import OneHot
from .sentence_transformer import sentence_transformer


@hookimpl
def cvaekit_register(registry):
    registry.add("conditioner", "onehot", OneHot)
    registry.add("conditioner", "clip_text", clip_text)
    registry.add("conditioner", "sentence_transformer", sentence_transformer)
    registry.add("encoder", "mlp", MLPEncoder)
    registry.add("decoder", "mlp", MLPDecoder)
    registry.add("dataset", "fashion_mnist", fashion_mnist)
    registry.add("dataset", "coco_captions", coco_captions)
    registry.add("metric", "nelbo", NegativeELBO)
    registry.add("metric", "cond_accuracy", ConditionalAccuracy)
    registry.add("metric", "recon", Reconstruction)
    registry.add("metric", "fid", FID)
    registry.add("metric", "clip_score", CLIPScoreMetric)
