"""Caption match: does a picture pick out its own caption among others? An offline judge for
any captioned set (a user's own included), where CLIP is not at hand.

The judge is a small contrastive image-text model (CLIP's loss, Radford et al. 2021): the run's
own text encoder (the conditioner's vectors, held fixed) and a small CNN image tower, trained
on the run's training pairs and cached per data set and text encoder. A picture picks the
candidate caption whose embedding is nearest its own. The metric reports that share for
generated pictures, for real held-out ones (the ceiling) and for real ones paired with
shuffled captions (chance, about 1 / candidates).
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import nn

from cvaekit.caches.judges import cached_judge_module
from cvaekit.core.data import Split, shifted
from cvaekit.core.guidance import check_guidance, guidance_tag, guided
from cvaekit.core.prior import check_temperature
from cvaekit.evaluation.context import EvalContext
from cvaekit.recipe import AtLeast, NonNegativeFloat, PositiveInt

VERSION = 2  # 2: shifts and flips, kept with the other judges


class MatchJudge(nn.Module):
    """An image tower (three conv blocks, pooled) and a text tower (one linear layer on the
    conditioner's vector), both to unit vectors of `dim`."""

    def __init__(self, channels: int, cond_dim: int, dim: int = 64):
        super().__init__()
        blocks, width = [], channels
        for out in (32, 64, 128):
            blocks += [nn.Conv2d(width, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
            width = out
        self.image_tower = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, dim))
        self.text_tower = nn.Sequential(nn.Linear(cond_dim, 128), nn.ReLU(), nn.Linear(128, dim))
        self.log_scale = nn.Parameter(torch.tensor(2.6))  # CLIP's starting temperature, 1/0.07

    def images(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_tower(x), dim=-1)

    def texts(self, vectors: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_tower(vectors), dim=-1)


def caption_table(ctx: EvalContext, split: Split) -> tuple[list[str], torch.Tensor]:
    """Every distinct caption (or class word) of `split` and its fixed text vector."""
    if split.labelled:
        words = list(ctx.data.classes)
        raw = [torch.tensor([i]) for i in range(len(words))]
    else:
        words = sorted({c for caps in split.conditions for c in caps})
        raw = [[w] for w in words]
    with torch.no_grad():
        vectors = [ctx.model.condition(r).vector.float().cpu() for r in raw]
    return words, torch.cat(vectors)


def captions_of(split: Split, words: list[str], draw: torch.Generator | None) -> torch.Tensor:
    """One caption id per image: a random one of its captions (the first, without `draw`)."""
    index = {w: i for i, w in enumerate(words)}
    if split.labelled:
        return split.conditions.long().clone()
    picks = []
    for caps in split.conditions:
        j = 0 if draw is None else int(torch.randint(len(caps), (1,), generator=draw))
        picks.append(index[caps[j]])
    return torch.tensor(picks)


SIDEWAYS = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def flips_allowed(words: list[str]) -> bool:
    """A horizontal flip keeps a picture's caption true unless a caption says left or right."""
    return not any(SIDEWAYS.search(w) for w in words)


def augment(images: torch.Tensor, shift: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Each picture moved by up to `shift` pixels each way (edges repeated) and, with `flip`,
    mirrored left to right half the time. Never turned upside down: captions say above and below."""
    if flip:
        mirror = torch.rand(len(images), generator=gen) < 0.5
        images = torch.where(mirror[:, None, None, None], images.flip(-1), images)
    return shifted(images, shift, gen)


def fit(train: Split, vectors: torch.Tensor, words: list[str], epochs: int, seed: int, shift: int = 0,
        batch_size: int = 128) -> MatchJudge:
    """CLIP's symmetric loss on the training pairs, pictures shifted by up to `shift` pixels
    (and flipped where no caption says left or right); pairs that share a caption count as matches."""
    gen = torch.Generator().manual_seed(seed)
    flip = flips_allowed(words)
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        judge = MatchJudge(train.images.shape[1], vectors.shape[1])
        opt = torch.optim.Adam(judge.parameters(), lr=1e-3)
        judge.train()
        for _ in range(epochs):
            ids = captions_of(train, words, gen)
            for idx in torch.randperm(len(train), generator=gen).split(batch_size):
                images = augment(train.images[idx].float() / 255, shift, flip, gen)
                logits = judge.log_scale.exp().clamp(max=100) * judge.images(images) @ judge.texts(vectors[ids[idx]]).T
                same = (ids[idx][:, None] == ids[idx][None, :]).float()
                target = same / same.sum(1, keepdim=True)
                loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return judge.eval()


def cached_judge(train: Split, vectors: torch.Tensor, words: list[str], epochs: int, seed: int,
                 shift: int = 0) -> MatchJudge:
    """The judge for this training split and text encoder, trained on first use and loaded after."""
    digest = hashlib.sha1(train.images.numpy().tobytes())
    digest.update("\n".join(words).encode())
    digest.update(vectors.numpy().round(4).tobytes())
    digest.update(f"{epochs}-{seed}-{shift}-{VERSION}".encode())
    return cached_judge_module(f"caption-{digest.hexdigest()[:16]}", lambda: MatchJudge(train.images.shape[1], vectors.shape[1]),
                               lambda: fit(train, vectors, words, epochs, seed, shift))


class CaptionMatch:
    """How often a generated picture picks out its own caption among `candidates`, beside real pictures (ceiling), their reconstructions (the decoder's ceiling) and shuffled captions (chance).

    n: test captions to generate a picture for (and real test pictures to judge).
    candidates: captions each picture chooses among, its own included.
    judge_epochs: epochs the judge trains on the run's training pairs.
    judge_seed: the judge's seed; other seeds give other judges.
    judge_shift: pixels a training picture may move each way (small shifts keep a caption true).
    temperature: the prior's temperature for the generated pictures (1: the prior itself; below 1: what `generate --temperature` draws, reported as caption_match_t0.8 and so on).
    guidance: the guidance scale of the generated pictures (1: none; above 1 weighs the text up, what `generate --guidance` draws; needs a run trained with train.cond_dropout; reported as caption_match_g2 and so on)."""

    def __init__(self, n: PositiveInt = 200, candidates: PositiveInt = 10, judge_epochs: PositiveInt = 40,
                 judge_seed: int = 0, judge_shift: Annotated[int, AtLeast(0)] = 2,
                 temperature: NonNegativeFloat = 1.0, guidance: NonNegativeFloat = 1.0):
        self.n, self.candidates, self.epochs, self.seed, self.shift = n, candidates, judge_epochs, judge_seed, judge_shift
        self.temperature, self.guidance = check_temperature(temperature), check_guidance(guidance)

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        train = ctx.data.train
        words, vectors = caption_table(ctx, train)
        test_words, test_vectors = caption_table(ctx, ctx.test)
        judge = cached_judge(train, vectors, words, self.epochs, self.seed, self.shift)
        n = min(self.n, len(ctx.test))
        own = captions_of(ctx.test.head(n), test_words, None)
        gen = ctx.generator(7)
        rival = _rivals(own, len(test_words), self.candidates, gen)
        raw = self._raw(ctx, own, test_words)
        real_images = ctx.test.images[:n].float() / 255
        with torch.no_grad():
            text = judge.texts(test_vectors)
            real = judge.images(real_images)
            fake = judge.images(self._samples(ctx, raw))
            recon = judge.images(self._reconstructions(ctx, real_images, raw))
        shuffled = own[torch.randperm(n, generator=gen)]
        shares = {"caption_match": _share(fake, text, own, rival), "caption_match_real": _share(real, text, own, rival),
                  "caption_match_recon": _share(recon, text, own, rival),
                  "caption_match_shuffled": _share(real, text, shuffled, _rivals(shuffled, len(test_words), self.candidates, gen))}
        shares["caption_match_share"] = shares["caption_match"] / max(shares["caption_match_real"], 1e-9)
        tag = ("" if self.temperature == 1 else f"_t{self.temperature:g}") + guidance_tag(self.guidance)
        for key in ("caption_match", "caption_match_share"):  # their own columns, beside the plain ones in the table
            shares[f"{key}{tag}"] = shares.pop(key)
        return shares

    @staticmethod
    def _raw(ctx: EvalContext, own: torch.Tensor, words: list[str]) -> Any:
        return own if ctx.test.labelled else [words[i] for i in own.tolist()]

    def _samples(self, ctx: EvalContext, raw: Any) -> torch.Tensor:
        gen = ctx.generator(8)
        return torch.cat([ctx.model.sample(raw[i:i + ctx.batch_size], generator=gen,
                                           temperature=self.temperature, **guided(self.guidance)).float().cpu()
                          for i in range(0, len(raw), ctx.batch_size)])

    @staticmethod
    def _reconstructions(ctx: EvalContext, images: torch.Tensor, raw: Any) -> torch.Tensor:
        """The pictures decoded from their posterior means, each with its own caption."""
        b = ctx.batch_size
        return torch.cat([ctx.model.reconstruct(images[i:i + b], raw[i:i + b]).float().cpu()
                          for i in range(0, len(raw), b)])


def _rivals(own: torch.Tensor, vocabulary: int, candidates: int, gen: torch.Generator) -> torch.Tensor:
    """For each picture, candidates - 1 caption ids other than its own, drawn without repeats."""
    k = min(candidates, vocabulary) - 1
    rows = []
    for i in own.tolist():
        others = torch.randperm(vocabulary - 1, generator=gen)[:k]
        rows.append(others + (others >= i).long())  # skip the picture's own caption
    return torch.stack(rows) if rows else torch.zeros(0, k, dtype=torch.long)


def _share(images: torch.Tensor, texts: torch.Tensor, own: torch.Tensor, rivals: torch.Tensor) -> float:
    """The share of pictures whose own caption scores above every rival."""
    own_score = (images * texts[own]).sum(-1)
    rival_score = torch.einsum("nd,nkd->nk", images, texts[rivals])
    return (own_score[:, None] > rival_score).all(1).float().mean().item()
