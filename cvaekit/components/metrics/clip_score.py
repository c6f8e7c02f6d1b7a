"""CLIP score: how well a generated image matches its caption, in CLIP's judgement.

For a fixed set of captions (the first caption of each of the first `n` test images), one
image is generated per caption, and CLIP's image features of it are compared with CLIP's
text features of the caption. Two numbers come back:

- `clip_cosine`: the mean cosine similarity, the study's number (its best was 0.2023);
- `clip_score`: torchmetrics' `CLIPScore` convention, max(100 * mean cosine, 0).

Labelled data has no captions; its class names are put in a template ("a photo of a
{}" by default), so a Fashion-MNIST run is scored on "a photo of a Sneaker" and so on.

The CLIP is the one `clip_text` loads (cvaekit.pretrained), so a caption run keeps one
copy in memory. Generated images go through the model's own CLIP image processor (resize to its
shortest edge, centre crop, CLIP mean and std), as uint8 RGB so the processor's 1/255
rescale is right. torchmetrics' `CLIPScore` is not called at run time: with transformers
5 its feature extraction fails (`get_image_features` returns a ModelOutput; torchmetrics
PR #3428), so the features are taken here and the tests check the numbers agree with it.
"""

from __future__ import annotations

import torch

from cvaekit.caches.pretrained import DEFAULT_CLIP, load_clip, load_clip_processor
from cvaekit.errors import CvaekitError
from cvaekit.evaluation.context import EvalContext
from cvaekit.recipe import PositiveInt


def _features(out) -> torch.Tensor:
    """transformers 4 returns the projected features; 5 a ModelOutput holding them."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def to_clip_pixels(images: torch.Tensor) -> list[torch.Tensor]:
    """Images [N, C, H, W] in [0, 1] (grey or RGB) -> uint8 RGB, as CLIP processors expect."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return list(images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu())


@torch.no_grad()
def image_features(model, processor, images: torch.Tensor) -> torch.Tensor:
    pixels = processor(images=to_clip_pixels(images), return_tensors="pt")["pixel_values"]
    feats = _features(model.get_image_features(pixel_values=pixels.to(model.device)))
    return torch.nn.functional.normalize(feats.float(), dim=-1)


@torch.no_grad()
def text_features(model, processor, texts: list[str]) -> torch.Tensor:
    limit = model.config.text_config.max_position_embeddings
    tokens = processor(text=list(texts), return_tensors="pt", padding=True, truncation=True, max_length=limit)
    feats = _features(model.get_text_features(input_ids=tokens["input_ids"].to(model.device),
                                              attention_mask=tokens["attention_mask"].to(model.device)))
    return torch.nn.functional.normalize(feats.float(), dim=-1)


def clip_cosines(model, processor, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
    """Cosine similarity of each image with its own text, [N]."""
    if len(images) != len(texts):
        raise ValueError(f"{len(images)} images but {len(texts)} texts")
    return (image_features(model, processor, images) * text_features(model, processor, texts)).sum(-1).cpu()


def scores(cosines: torch.Tensor) -> dict[str, float]:
    """The study's mean cosine, and torchmetrics' CLIPScore (its `compute`: max(100 * mean, 0))."""
    mean = cosines.double().mean().item()
    return {"clip_cosine": mean, "clip_score": max(100 * mean, 0.0)}


class CLIPScoreMetric:
    """CLIP cosine of generated images and their captions, and torchmetrics' CLIPScore.

    Higher is better. Beside it, the cosine of real test images with their own captions (the
    ceiling) and with shuffled ones (chance), so a figure such as the study's 0.2023 can be
    read on a scale.

    model: the CLIP, a hub id or a local folder with a saved CLIP.
    n: how many test images (the first ones) are scored, with one sample for each one's caption.
    template: the caption for labelled data, with `{}` where the class name goes."""

    def __init__(self, model: str = DEFAULT_CLIP, n: PositiveInt = 500,
                 template: str = "a photo of a {}"):
        if "{}" not in template:
            raise CvaekitError(f"clip_score 'template' must contain '{{}}' where the class name goes, got '{template}'.")
        self.model = model
        self.n = n
        self.template = template

    def captions(self, ctx: EvalContext, raw) -> list[str]:
        texts = ctx.data.describe(raw)
        return [self.template.format(t) for t in texts] if isinstance(raw, torch.Tensor) else texts

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        """The samples' score, with its scale: `clip_cosine_real` (real test images with their
        captions, the ceiling) and `clip_cosine_shuffled` (the same images with another image's
        caption, the chance level)."""
        clip, _ = load_clip(self.model, "Metric 'clip_score'")  # the same copy clip_text uses
        processor = load_clip_processor(self.model, "Metric 'clip_score'")
        clip.to(ctx.device)
        gen = ctx.generator(3)
        sampled, real, texts = [], [], []
        for images, raw in ctx.batches(ctx.test.head(self.n)):
            captions = self.captions(ctx, raw)
            sampled.append(clip_cosines(clip, processor, ctx.model.sample(raw, generator=gen), captions))
            real.append(image_features(clip, processor, images).cpu())
            texts.append(text_features(clip, processor, captions).cpu())
        real_f, text_f = torch.cat(real), torch.cat(texts)
        shuffled = text_f.roll(1, dims=0)
        return {**scores(torch.cat(sampled)),
                "clip_cosine_real": (real_f * text_f).sum(-1).double().mean().item(),
                "clip_cosine_shuffled": (real_f * shuffled).sum(-1).double().mean().item()}
