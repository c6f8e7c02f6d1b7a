"""FID: the Fréchet distance between features of generated and of held-out real images.

The distance is torchmetrics' `FrechetInceptionDistance`; which network gives the
features is a recipe choice (`features`), and its name is part of the result's key, so
numbers from different extractors never end up in one column:

- `fid_inception`: the standard FID, torch-fidelity's Inception v3 (2048-d pool features).
  Its weights come from `inception_weights` (a local file) or torch-fidelity's download
  cache; without either and without network, it fails with a message saying so.
- `fid_judge`: the penultimate layer (128-d) of the data set's judge classifier (the CNN
  `cond_accuracy` trains once per data set on real images). Labelled data only; offline.
- `fid_random`: a fixed, seeded, randomly initialised conv net (128-d). Random-network
  features still separate image distributions (Naeem et al., 2020), so it ranks
  checkpoints and settings of one data set, offline, for any data (captions too); its
  values are comparable within cvaekit, not with published FIDs.
- `fid_<name>`: a TorchScript module at a path (float images in [0, 1] -> [N, d]).

`auto` (the default) takes Inception when its weights are on disk, else the judge for
labelled data, else the random net.

Generated images are sampled for the same conditions as the real ones (each test image's
label, or its first caption), so both sides follow the test split's condition mix.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from cvaekit.components.metrics.judge import cached_judge
from cvaekit.errors import CvaekitError, RecipeError, choices_text
from cvaekit.evaluation.context import EvalContext
from cvaekit.recipe import ExistingPath, PositiveInt
from cvaekit.runtime.optional import require

EXTRACTORS = ("auto", "inception", "judge", "random")
INCEPTION_DIM = 2048  # Inception's pool features: FID needs at least this many images per side
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name


def cached_inception_weights() -> Path | None:
    """torch-fidelity's Inception weights when already downloaded (torch hub cache)."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    return path if path.is_file() else None


class FeatureNet(nn.Module):
    """A feature extractor as torchmetrics wants a custom one: float images in [0, 1]
    (`normalize=True`) -> [N, num_features]. Frozen and always in eval mode."""

    def __init__(self, net: nn.Module, num_features: int):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.num_features = num_features

    def train(self, mode: bool = True) -> FeatureNet:
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.float()).flatten(1)


class _Centre(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1


def random_features(channels: int, seed: int = 0) -> FeatureNet:
    """Three strided conv blocks with seeded random (He-normal) weights, average-pooled to
    128-d. He init keeps activations near unit scale, so FIDs read like small integers."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        convs = [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
                 for c_in, c_out in ((channels, 32), (32, 64), (64, 128))]
        for conv in convs:
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        net = nn.Sequential(_Centre(), *(m for conv in convs for m in (conv, nn.ReLU())),
                            nn.AdaptiveAvgPool2d(1))
    return FeatureNet(net, 128)


def judge_features(ctx: EvalContext, judge_epochs: int) -> FeatureNet:
    """The judge classifier up to its last hidden layer (128-d, before the dropout and head)."""
    if not ctx.data.classes or not ctx.data.train.labelled:
        raise CvaekitError("FID with 'features: judge' needs labelled data (such as fashion_mnist): "
                           "the judge is a classifier of the data set's classes, and this data set "
                           "has captions. Use 'features: random' (offline) or 'inception'.")
    judge = cached_judge(ctx.data.train, len(ctx.data.classes), judge_epochs)
    return FeatureNet(judge.features, judge.head[-1].in_features)


def torchscript_features(path: str, channels: int) -> FeatureNet:
    try:
        net = torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - name the file, not a loader traceback
        raise CvaekitError(f"FID 'features: {path}' is not a TorchScript module that can be loaded "
                           f"({type(exc).__name__}: {exc}). Valid: 'auto', 'inception', 'judge', "
                           f"'random', or the path of a TorchScript file.") from None
    with torch.no_grad():
        dim = net(torch.rand(2, channels, 32, 32)).flatten(1).shape[1]
    return FeatureNet(net, dim)


class SmallSampleWarning(UserWarning):
    """FID on fewer images than its features have dimensions: not comparable with published figures."""


class FID:
    """FID of generated vs held-out real images; the key names the features (fid_judge, ...).

    Lower is better. Real-image features are kept between calls on the same test split,
    so evaluating many checkpoints extracts them once.

    features: 'auto', 'inception', 'judge', 'random', or the path of a TorchScript extractor.
    inception_weights: a local file of torch-fidelity's Inception weights; with it, 'auto' picks Inception.
    n: how many test images (the first ones) are used, with one sample for each one's condition.
    judge_epochs: epochs the judge trains on the real training split, for the judge's features.
    seed: the seed of the random net's weights, for `features: random`."""

    def __init__(self, features: str = "auto", inception_weights: ExistingPath | None = None,
                 n: PositiveInt = 1000, judge_epochs: PositiveInt = 2, seed: int = 0):
        if features not in EXTRACTORS and not Path(features).is_file():
            raise RecipeError(f"FID 'features' must be one of {choices_text(EXTRACTORS)} or the path "
                              f"of a TorchScript file, got '{features}'.")
        self.features = features
        self.inception_weights = inception_weights
        self.n = n
        self.judge_epochs = judge_epochs
        self.seed = seed
        self._metric = None
        self._real_key = None  # which real images the cached metric already holds

    def extractor_name(self, ctx: EvalContext) -> str:
        if self.features != "auto":
            return self.features
        if self.inception_weights or cached_inception_weights():
            return "inception"
        return "judge" if ctx.data.classes and ctx.data.train.labelled else "random"

    def _new_metric(self, ctx: EvalContext, name: str):
        FrechetInceptionDistance = require(
            "torchmetrics.image.fid", "metrics", "Metric 'fid'").FrechetInceptionDistance

        channels = ctx.test.images.shape[1]
        if name == "inception":
            weights = self.inception_weights or cached_inception_weights()
            try:
                return FrechetInceptionDistance(feature=INCEPTION_DIM, reset_real_features=False,
                                                feature_extractor_weights_path=str(weights) if weights else None)
            except Exception as exc:  # noqa: BLE001 - most likely no network for the download
                raise CvaekitError(
                    f"FID with Inception features needs torch-fidelity's weights ({INCEPTION_FILE}), "
                    f"which could not be loaded ({type(exc).__name__}: {exc}). Give the file as "
                    f"'inception_weights', put it in {Path(torch.hub.get_dir()) / 'checkpoints'}, or "
                    f"use 'features: judge' (labelled data) or 'features: random' (offline).") from None
        if name == "judge":
            net = judge_features(ctx, self.judge_epochs)
        elif name == "random":
            net = random_features(channels, self.seed)
        elif Path(name).is_file():
            net = torchscript_features(name, channels)
        else:
            raise CvaekitError(f"FID features file '{name}' does not exist.")
        return FrechetInceptionDistance(feature=net, reset_real_features=False, normalize=True)

    def _prepare(self, images: torch.Tensor, name: str) -> torch.Tensor:
        """Inception takes uint8 RGB (any size; it resizes to 299); ours take floats."""
        if name != "inception":
            return images.float()
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return images.clamp(0, 1).mul(255).round().to(torch.uint8)

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        name = self.extractor_name(ctx)
        real = ctx.test.head(self.n)
        if len(real) < 2:
            raise CvaekitError(f"FID needs at least 2 test images; the test split has {len(real)}.")
        if name == "inception" and len(real) < INCEPTION_DIM:
            warnings.warn(f"FID with Inception features on {len(real)} images: below {INCEPTION_DIM} (the "
                          f"features' size) their covariance is singular, and the figure is not comparable "
                          f"with published FIDs. Use n: {INCEPTION_DIM} or more test images.",
                          SmallSampleWarning, stacklevel=2)
        key = (name, id(ctx.test.images), len(real), str(ctx.device))
        if key != self._real_key:
            self._metric = self._new_metric(ctx, name).to(ctx.device)
            for images, _ in ctx.batches(real):
                self._metric.update(self._prepare(images, name), real=True)
            self._real_key = key
        metric = self._metric
        metric.reset()  # forgets the generated images only (reset_real_features=False)
        gen = ctx.generator(2)
        for _, raw in ctx.batches(real):
            metric.update(self._prepare(ctx.model.sample(raw, generator=gen), name), real=False)
        label = name if name in EXTRACTORS else Path(name).stem
        return {f"fid_{label}": float(metric.compute())}
