"""Where classifier-free guidance acts, measured on a run trained with train.cond_dropout.

    python benchmarks/guidance.py RUN [--checkpoint 100] [--scales 1.25,1.5,2,3] [-n 200]

For each scale it prints the caption judge's figure (`caption_match`, its share of real
pictures' figure) for samples guided three ways, the same z noise in each:

- output: the decoder's output (the likelihood's parameters) moved away from its output
  without text, at the same z: what `generate --guidance` does;
- image: the same on the pictures shown (the likelihood's means), clipped to [0, 1];
- latent: z itself, the prior's draw given the text moved away from its draw without text
  from the same noise (a single-latent model with a prior given the text, such as a flow).
"""

from __future__ import annotations

import argparse

import cvaekit  # noqa: F401  (before torch: OpenMP waits passively, so runs can share the cores)
import torch

from cvaekit.assembly import build_dataset, load_run
from cvaekit.components.metrics.caption_match import CaptionMatch
from cvaekit.core.hierarchy import GroupDraw
from cvaekit.core.prior import sample_latent
from cvaekit.evaluation.context import EvalContext, run_metrics
from cvaekit.plugins import get_registry


def output_guided(model, raw, gen, scale):
    return model.sample(raw, generator=gen, guidance=scale)


def image_guided(model, raw, gen, scale):
    cond = model.condition(raw)
    drawn = model.prior_sample(cond, model.draws(1.0, gen))
    plain = model.prior_sample(cond.empty(), [GroupDraw(z=g.z) for g in drawn.groups]).out
    return torch.lerp(model.likelihood.mean(plain), model.likelihood.mean(drawn.out), scale).clamp(0, 1)


def latent_guided(model, raw, gen, scale):
    cond, state = model.condition(raw), gen.get_state()
    z = sample_latent(model.prior, cond, model.prior_dim, gen)
    z_plain = sample_latent(model.prior, cond.empty(), model.prior_dim, torch.Generator().set_state(state))
    return model.likelihood.mean(model.decode_top(torch.lerp(z_plain, z, scale), cond))


WAYS = {"output": output_guided, "image": image_guided, "latent": latent_guided}


class GuidedMatch(CaptionMatch):
    """caption_match with its samples drawn by one of `WAYS` at one scale."""

    def __init__(self, way, scale: float, n: int):
        super().__init__(n=n)
        self.way, self.scale = way, scale

    def _samples(self, ctx, raw):
        gen = ctx.generator(8)
        with torch.no_grad():
            return torch.cat([self.way(ctx.model, raw[i:i + ctx.batch_size], gen, self.scale).float().cpu()
                              for i in range(0, len(raw), ctx.batch_size)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--checkpoint", default=None, help="an epoch (default: the last)")
    parser.add_argument("--scales", default="1.25,1.5,2,3")
    parser.add_argument("-n", type=int, default=200, help="test captions judged")
    args = parser.parse_args()
    registry = get_registry()
    trained = load_run(args.run, args.checkpoint, registry)
    data = build_dataset(trained.recipe, registry)
    ctx = EvalContext(trained.model, data, data.test.head(args.n), seed=trained.recipe.seed)
    plain = run_metrics([CaptionMatch(n=args.n)], ctx)
    print(f"{args.run} (epoch {trained.epoch}): real {plain['caption_match_real']:.3f}, reconstructions "
          f"{plain['caption_match_recon']:.3f}, samples {plain['caption_match']:.3f} "
          f"({plain['caption_match_share']:.3f} of real) without guidance")
    scales = [float(s) for s in args.scales.split(",")]
    print("| guided in | " + " | ".join(f"scale {s:g}" for s in scales) + " |\n|---|" + "---|" * len(scales))
    for name, way in WAYS.items():
        if name == "latent" and trained.model.group_count > 1:
            continue
        shares = [run_metrics([GuidedMatch(way, s, args.n)], ctx)["caption_match_share"] for s in scales]
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in shares) + " |")


if __name__ == "__main__":
    main()
