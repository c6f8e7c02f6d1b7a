"""cvaekit's built-in components: a plugin like any other, named by the entry point
``builtin`` in the group ``cvaekit`` (see pyproject.toml)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .clip_score import CLIPScoreMetric
from .clip_text import clip_text
from .coco import coco_captions
from .conv import ConvEncoder, DeconvDecoder
from .fashion_mnist import fashion_mnist
from .fid import FID
from .injections import CrossAttention, EarlyConcat, FiLM, MidConcat
from .judge import ConditionalAccuracy
from .learned_text import LearnedText
from .likelihood import NegativeELBO, Reconstruction
from .mlp import MLPDecoder, MLPEncoder
from .onehot import OneHot
from .priors import ConditionalPrior
from .sentence_transformer import sentence_transformer
from .shapes import ShapesFidelity, shapes_captions


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
    registry.add("conditioner", "learned_text", LearnedText)
    registry.add("encoder", "conv", ConvEncoder)
    registry.add("decoder", "deconv", DeconvDecoder)
    registry.add("injection", "early_concat", EarlyConcat)
    registry.add("injection", "mid", MidConcat)
    registry.add("injection", "cross_attention", CrossAttention)
    registry.add("injection", "film", FiLM)
    registry.add("dataset", "shapes_captions", shapes_captions)
    registry.add("metric", "shapes_fidelity", ShapesFidelity)
    registry.add("prior", "conditional", ConditionalPrior)
