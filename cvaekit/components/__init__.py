"""cvaekit's built-in components: a plugin like any other, named by the entry point
``builtin`` in the group ``cvaekit`` (see pyproject.toml). One subpackage per kind."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .conditioners.clip_text import clip_text
from .conditioners.learned_text import LearnedText
from .conditioners.onehot import OneHot
from .conditioners.sentence_transformer import sentence_transformer
from .datasets.coco import coco_captions
from .datasets.fashion_captions import fashion_captions
from .datasets.fashion_mnist import fashion_mnist
from .datasets.hf_dataset import hf_dataset
from .datasets.image_captions import image_captions
from .datasets.image_folder import image_folder
from .datasets.shapes import shapes_captions
from .datasets.torchvision_sets import torchvision_dataset
from .injections.concat import EarlyConcat, MidConcat
from .injections.cross_attention import CrossAttention
from .injections.film import FiLM
from .metrics.clip_score import CLIPScoreMetric
from .metrics.cond_accuracy import ConditionalAccuracy
from .metrics.fashion_fidelity import FashionFidelity
from .metrics.fid import FID
from .metrics.likelihood import NegativeELBO, Reconstruction
from .metrics.shapes_fidelity import ShapesFidelity
from .networks.conv import ConvEncoder, DeconvDecoder
from .networks.mlp import MLPDecoder, MLPEncoder
from .priors.conditional import ConditionalPrior
from .priors.flow import FlowPrior
from .priors.mixture import MixturePrior


@hookimpl
def cvaekit_register(registry):
    registry.add("conditioner", "onehot", OneHot)
    registry.add("conditioner", "clip_text", clip_text)
    registry.add("conditioner", "sentence_transformer", sentence_transformer)
    registry.add("conditioner", "learned_text", LearnedText)

    registry.add("injection", "early_concat", EarlyConcat)
    registry.add("injection", "mid", MidConcat)
    registry.add("injection", "cross_attention", CrossAttention)
    registry.add("injection", "film", FiLM)

    registry.add("encoder", "mlp", MLPEncoder)
    registry.add("encoder", "conv", ConvEncoder)
    registry.add("decoder", "mlp", MLPDecoder)
    registry.add("decoder", "deconv", DeconvDecoder)

    registry.add("prior", "conditional", ConditionalPrior)
    registry.add("prior", "mixture", MixturePrior)
    registry.add("prior", "flow", FlowPrior)

    registry.add("dataset", "fashion_mnist", fashion_mnist)
    registry.add("dataset", "coco_captions", coco_captions)
    registry.add("dataset", "shapes_captions", shapes_captions)
    registry.add("dataset", "fashion_captions", fashion_captions)
    registry.add("dataset", "image_folder", image_folder)
    registry.add("dataset", "image_captions", image_captions)
    registry.add("dataset", "hf_dataset", hf_dataset)
    registry.add("dataset", "torchvision", torchvision_dataset)

    registry.add("metric", "nelbo", NegativeELBO)
    registry.add("metric", "recon", Reconstruction)
    registry.add("metric", "cond_accuracy", ConditionalAccuracy)
    registry.add("metric", "fid", FID)
    registry.add("metric", "clip_score", CLIPScoreMetric)
    registry.add("metric", "shapes_fidelity", ShapesFidelity)
    registry.add("metric", "fashion_fidelity", FashionFidelity)
