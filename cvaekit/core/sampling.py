"""Sampling from a model: n images per text, and walks through the latent space (one text to
another at a fixed z, or one seed to another at a fixed text). Torch only; the commands that
load a run and write a picture are in `cvaekit.serving.generate`."""

from __future__ import annotations

import numbers

import torch

from cvaekit.core.condition import Condition
from cvaekit.core.guidance import guided
from cvaekit.core.hierarchy import GroupDraw
from cvaekit.core.model import CVAE
from cvaekit.core.latents import check_fix_top, temperatures
from cvaekit.errors import CvaekitError


def what_to_type(model: CVAE) -> str:
    """What a text for this model is: its class words (a label model) or a caption."""
    classes = getattr(model.conditioner, "classes", None)
    if not classes:
        return "a caption"
    shown = ", ".join(list(classes)[:12]) + (", ..." if len(classes) > 12 else "")
    return f"a class word ({shown})"


def check_texts(model: CVAE, texts) -> list[str]:
    """The one rule for the texts a picture is drawn from, kept by `generate`, `interpolate`,
    the serve page and `sample_rows` alike: at least one text, and no text empty or blank
    (white space only). A single string is one text. Returns the texts as a list."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise CvaekitError(f"Give at least one text to draw: {what_to_type(model)}.")
    for i, text in enumerate(texts):
        if isinstance(text, str) and not text.strip():
            which = "the text is" if len(texts) == 1 else f"text {i + 1} of {len(texts)} is"
            raise CvaekitError(f"Type {what_to_type(model)} first: {which} empty.")
    return texts


def check_count(n, what: str = "images per text", most: int | None = None) -> int:
    """`n` as a whole number of at least 1 (and at most `most`); anything else is an error
    naming the valid range."""
    if isinstance(n, bool) or not (isinstance(n, numbers.Integral) or isinstance(n, float) and n.is_integer()):
        raise CvaekitError(f"The number of {what} must be a whole number of 1 or more; got {n!r}.")
    if n < 1:
        raise CvaekitError(f"The number of {what} must be 1 or more; got {int(n)}.")
    if most is not None and n > most:
        raise CvaekitError(f"The number of {what} must be from 1 to {most} (a row of more is wider than "
                           f"a picture can be drawn); got {int(n)}.")
    return int(n)


@torch.no_grad()
def sample_rows(model: CVAE, texts: list[str], n: int, seed: int = 0,
                temperature: float | list[float] = 1.0, fix_top: int = 0, guidance: float = 1.0) -> list[torch.Tensor]:
    """`n` images per text. Texts are checked (`check_texts`) and parsed by the model's
    conditioner first, so an empty text or an unknown word fails before anything is
    generated. `temperature` below 1 trades variety for more typical images, 0 gives the
    prior's mode (see `cvaekit.core.prior`): one for all latent groups, or one per group from
    the top. The top `fix_top` groups are drawn once per text and shared by its `n` images.
    `guidance` above 1 weighs the text up (`cvaekit.core.guidance`)."""
    texts, n = check_texts(model, texts), check_count(n)
    temperature = temperatures(temperature, model.group_count)
    fix_top = check_fix_top(fix_top, model.group_count)
    raw = model.conditioner.parse(texts)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    rows = []
    for i in range(len(texts)):
        one = raw[i:i + 1]
        batch = one.repeat(n) if isinstance(one, torch.Tensor) else list(one) * n
        rows.append(model.sample(batch, generator=gen, temperature=temperature, fix_top=fix_top,
                                 **guided(guidance)).cpu())
    model.train(was_training)
    return rows


# ---------------------------------------------------------------------------- latent walks

MAX_PER_TEXT = 256  # one row of a generate grid: 256 images of up to 160 px fit a picture's width
MAX_STEPS = 64  # a strip longer than this is no longer a picture anyone can read


@torch.no_grad()
def decode_latents(model: CVAE, z: torch.Tensor, cond: Condition) -> torch.Tensor:
    """Images in [0, 1] for top-group codes `z` [B, prior_dim] under `cond` (a hierarchy's lower
    groups at their means), so a caller chooses z itself instead of the prior drawing it."""
    return model.likelihood.mean(model.decode_top(z.to(model.device), cond)).cpu()


def draw_latent(model: CVAE, cond: Condition, seed: int, temperature: float = 1.0) -> torch.Tensor:
    """One top-group z per condition from the model's prior, each drawn from `seed` afresh: the
    same seed gives the same draw under every condition (for N(0, I), the same z)."""
    draws = [GroupDraw(temperature, torch.Generator().manual_seed(seed), shared=True)] * model.group_count
    return model.prior_sample(cond, draws).groups[0].z.flatten(1)


def group_generator(seed: int, group: int) -> torch.Generator:
    """A walk's generator for one group: `seed` itself at the top, a seed of its own below, so
    each group's noise depends on the seed and the group alone."""
    return torch.Generator().manual_seed(seed if group == 0 else (seed * 1_000_003 + group) % 2 ** 63)


def blend(a: Condition, b: Condition, t: float) -> Condition:
    """The condition (1 - t) a + t b, for one-sample conditions. Token sequences of
    different lengths are padded with masked-out zeros to the longer one first."""
    length = max(a.tokens.shape[1], b.tokens.shape[1])

    def padded(c: Condition) -> tuple[torch.Tensor, torch.Tensor]:
        extra = length - c.tokens.shape[1]
        mask = c.mask if c.mask is not None else torch.ones(c.tokens.shape[:2], dtype=torch.bool,
                                                            device=c.tokens.device)
        return (torch.nn.functional.pad(c.tokens, (0, 0, 0, extra)),
                torch.nn.functional.pad(mask.bool(), (0, extra), value=False))

    (ta, ma), (tb, mb) = padded(a), padded(b)
    # A token that only one side has is kept while that side has any weight.
    mask = (ma & (t < 1)) | (mb & (t > 0))
    masked = None if a.mask is None and b.mask is None and bool(mask.all()) else mask
    return Condition(torch.lerp(a.vector, b.vector, t), torch.lerp(ta, tb, t), masked)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between codes (rows of `a` and `b`): the path a Gaussian latent
    space is walked along, so codes midway keep a typical length (a straight line would pass
    near the centre, where no sample lies)."""
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    cos = ((a * b).sum(-1, keepdim=True) / (na * nb).clamp_min(1e-12)).clamp(-1, 1)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    straight = so.abs() < 1e-6  # (anti)parallel or zero codes: a straight line is all there is
    wa = torch.where(straight, torch.full_like(so, 1 - t), torch.sin((1 - t) * omega) / so.where(~straight, 1))
    wb = torch.where(straight, torch.full_like(so, t), torch.sin(t * omega) / so.where(~straight, 1))
    return wa * a + wb * b


def _steps(steps: int) -> list[float]:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= MAX_STEPS:
        raise CvaekitError(f"A walk takes 2 to {MAX_STEPS} steps (its two ends included); got {steps}.")
    return [i / (steps - 1) for i in range(steps)]


@torch.no_grad()
def walk_texts(model: CVAE, text_a: str, text_b: str, steps: int = 8, seed: int = 0,
               temperature: float = 1.0) -> torch.Tensor:
    """Condition interpolation: z fixed by `seed`, the condition moving from `text_a` to
    `text_b` in `steps` steps; [steps, C, H, W]. Under a conditional prior the seed's draw
    is taken at each step's condition, so z follows the prior from one text to the other."""
    ts, temperature = _steps(steps), temperatures(temperature, model.group_count)
    raw = model.conditioner.parse(check_texts(model, [text_a, text_b]))
    was_training = model.training
    model.eval()
    a, b = (model.condition(raw[i:i + 1]) for i in (0, 1))
    conds = [blend(a, b, t) for t in ts]
    # the same noise at every step and group: each group follows its prior as the text moves
    images = [model.likelihood.mean(model.prior_sample(c, model.draws(temperature, torch.Generator().manual_seed(seed))).out).cpu()
              for c in conds]
    model.train(was_training)
    return torch.cat(images)


@torch.no_grad()
def walk_seeds(model: CVAE, text: str, seed_a: int, seed_b: int, steps: int = 8,
               temperature: float | list[float] = 1.0, group: int = 0) -> torch.Tensor:
    """Latent interpolation: the text fixed, the z of latent group `group` (0, the top, for a
    single latent vector) moving from seed `seed_a`'s draw to seed `seed_b`'s along a great circle
    around its prior's centre; the groups above it held at `seed_a`'s draw, those below it at
    `seed_a`'s noise (so they follow the moving group). [steps, C, H, W]."""
    group = check_group(model, group)
    ts, temps = _steps(steps), temperatures(temperature, model.group_count)
    raw = model.conditioner.parse(check_texts(model, [text]))
    was_training = model.training
    model.eval()
    cond = model.condition(raw)

    def draws(seed: int, temperature: float | None = None, z: torch.Tensor | None = None) -> list[GroupDraw]:
        held = [GroupDraw(t, group_generator(seed_a, i), shared=True) for i, t in enumerate(temps)]
        held[group] = GroupDraw(temps[group] if temperature is None else temperature,
                                group_generator(seed, group), z=z, shared=True)
        return held

    za, zb, centre = (model.prior_sample(cond, d).groups[group].z.flatten(1)
                      for d in (draws(seed_a), draws(seed_b), draws(seed_a, 0.0)))
    z = torch.cat([centre + slerp(za - centre, zb - centre, t) for t in ts])
    cond = cond.index(torch.zeros(len(ts), dtype=torch.long, device=cond.vector.device))
    images = model.likelihood.mean(model.prior_sample(cond, draws(seed_a, z=z)).out).cpu()
    model.train(was_training)
    return images


def check_group(model: CVAE, group) -> int:
    """A latent group's index, 0 (the top) to group_count - 1; anything else names the range."""
    groups = model.group_count
    if isinstance(group, bool) or not isinstance(group, int) or not 0 <= group < groups:
        what = ("one latent vector (group 0)" if groups == 1 else
                f"{groups} latent groups: 0 (the top) to {groups - 1}")
        raise CvaekitError(f"This model has {what}; there is no latent group {group!r} to walk.")
    return group
