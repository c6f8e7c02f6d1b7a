"""The recipe's schema: the dataclasses a YAML recipe is validated into.

A component's own parameters are its factory's signature; these are the engine's keys."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from cvaekit.recipe.types import Above, AtLeast, Below, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt


@dataclass
class ComponentSpec:
    """A component by name plus its parameters (everything but `name` in the YAML mapping)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class InjectionSpec(ComponentSpec):
    """An injection placed at stage `at` (0 = the input) of the encoder or decoder."""

    at: int = 0
    net: Literal["encoder", "decoder"] = "encoder"


@dataclass
class ModelConfig:
    conditioner: ComponentSpec
    encoder: ComponentSpec
    decoder: ComponentSpec
    latent_dim: PositiveInt = 20
    injections: list[InjectionSpec] = field(default_factory=list)
    prior: ComponentSpec | None = None
    likelihood: ComponentSpec | None = None  # what the decoder's output means: bernoulli (none given: the study's), gaussian, logistic_mixture; 8-bit likelihoods report bits per dimension


@dataclass
class TrainConfig:
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 128
    lr: PositiveFloat = 1e-3
    lr_schedule: Literal["constant", "cosine", "cooldown"] = "constant"  # constant: train.lr throughout; cosine: from train.lr down to 0 at the last step of train.epochs; cooldown: train.lr, then down to 0 in a straight line over the last train.cooldown of the steps
    cooldown: Annotated[float, Above(0)] = 0.2  # the share of the steps at the end over which lr_schedule: cooldown lowers the rate (1: all of them)
    weight_decay: NonNegativeFloat = 0.0
    part_lr: dict[str, float] = field(default_factory=dict)  # a factor on train.lr for a named part of the model, e.g. {encoder: 0.5}: that part learns at half the rate, the rest at train.lr (and the schedule scales both). Parts: conditioner, encoder, decoder, prior, ... (those with weights)
    adam_beta2: Annotated[float, Above(0), Below(1)] = 0.999  # Adam's decay of its average of squared gradients: lower (VDVAE's 0.9) follows a sudden large gradient at once, so that step moves the weights less
    kl_weight: NonNegativeFloat = 1.0
    kl_schedule: Literal["constant", "linear", "cyclical"] = "constant"  # constant: kl_weight throughout; linear: from 0 up to kl_weight over kl_warmup steps; cyclical: that ramp repeated kl_cycles times over training, rising for kl_ratio of each cycle (Fu et al. 2019)
    kl_warmup: PositiveInt = 1000  # steps of the linear warm-up of the KL weight
    kl_cycles: PositiveInt = 4  # cycles of the cyclical schedule over all the steps
    kl_ratio: Annotated[float, Above(0)] = 0.5  # the share of each cycle over which the cyclical schedule rises (1: all of it)
    free_bits: NonNegativeFloat = 0.0  # nats per latent dimension (batch mean) below which its KL costs nothing (Kingma et al. 2016); needs a Gaussian prior
    kl_balance: bool = False  # a hierarchy's groups each pay for the KL in proportion to their share of it (NVAE's KL balancing): information moves from the groups that hold most to those that hold little, such as a top group that decides a layout (elbo; a single latent: no effect)
    cond_dropout: Annotated[float, AtLeast(0), Below(1)] = 0.0  # the share of each batch's images trained with the empty condition (no text), so that sampling can weigh the text up with a guidance scale (classifier-free guidance, Ho and Salimans 2022; `generate --guidance`, caption_match's guidance); 0.1 is usual
    objective: Literal["elbo", "iwae"] = "elbo"  # elbo: the negative ELBO; iwae: the importance-weighted bound with iwae_k samples (Burda et al. 2016)
    iwae_k: PositiveInt = 5  # samples per image of the iwae objective
    checkpoint_every: PositiveInt = 10  # epochs between kept checkpoints; the last is always kept
    save_every_steps: PositiveInt | None = None  # also save checkpoints/last.pt every N steps inside an epoch, so a crash loses at most N steps (null: at the end of each epoch only; docs/performance.md gives the cost of a save)
    limit: PositiveInt | None = None  # train on the first N images only (quick runs, tests)
    shift: Annotated[int, AtLeast(0)] = 0  # each training picture moves by up to this many pixels each way, drawn anew at every step (edges repeated): a few hundred pictures look like more. Keep it small where captions name places (0: as loaded)
    device: str = "auto"  # auto, cpu, cuda, cuda:1, ...
    amp: bool = False  # bfloat16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX)
    data_on_device: bool | Literal["auto"] = "auto"  # training images and frozen conditions held on the device (auto: on a GPU, when they fit train.data_share)
    data_share: Annotated[float, Above(0)] = 0.3  # the most of the GPU's memory that resident training data may take (auto)
    channels_last: bool = False  # images and convolutions in NHWC memory order (faster convolutions on recent GPUs)
    compile: bool = False  # torch.compile the networks (the checkpoint format is unchanged)
    grad_clip: PositiveFloat | None = None
    ema: Annotated[float, Above(0), Below(1)] | None = None  # keep an exponential moving average of the weights with this decay per step (e.g. 0.999, about the last thousand steps; VDVAE's ema_rate): checkpoints hold it beside the trained weights, and evaluation, figures, generate, serve, export and fit-prior use it (null: the trained weights)
    skip_grad_factor: PositiveFloat | None = None  # skip the update of a step whose gradient norm is above this many times the running norm of the steps taken (VDVAE's skip, relative; null: never). metrics.jsonl counts the skipped steps; a run whose last 100 steps were all skipped has stopped moving and stops, as at a NaN
    blowup_factor: PositiveFloat | None = 1000.0  # stop, as at a NaN, at a step whose loss is above the lowest epoch mean loss so far by more than this many times its size: a finite blow-up (6e10 after 6,000) has diverged as surely (null: only infinite or NaN losses stop)
    rewinds: NonNegativeInt = 0  # at a diverged step (a NaN, infinite or blown-up loss, or steps skipped 100 in a row), go back to the weights, optimizer and loop state of two epoch ends before and go on with another batch order, at most this many times in a run (as PaLM restarted before loss spikes); 0: stop there
    threads: PositiveInt | None = None  # CPU threads of each training process (null: OpenMP's, all cores or the process's share); a small model of few large operations (the study's MLP) trains faster on one. OMP_NUM_THREADS set by the user wins
    processes: PositiveInt = 1  # CPU processes training data-parallel, each with an equal share of every batch and of the cores (a model of many small operations trains faster so); one process on a GPU


@dataclass
class EvalConfig:
    metrics: list[ComponentSpec] = field(default_factory=list)
    limit: PositiveInt | None = None  # evaluate on the first N test images only
    samples_per_condition: PositiveInt = 8
    conditions: list[str] | None = None  # texts for sample grids; default: the data's own


@dataclass
class FitPriorConfig:
    prior: ComponentSpec | None = None  # the prior to fit: a name, or a mapping with name and its parameters (left out: the model's own prior, `model.prior`, fitted again)
    epochs: PositiveInt = 14  # passes over the codes
    lr: PositiveFloat = 5e-3  # Adam learning rate of the fit (cosine-annealed over its epochs)
    batch_size: PositiveInt = 1024  # codes per step of the fit
    draws: PositiveInt = 4  # codes per training image, a caption drawn at random for each


FIT_PRIOR_DEFAULTS = {f.name: f.default for f in dataclasses.fields(FitPriorConfig) if f.name != "prior"}


@dataclass
class Recipe:
    name: str
    data: ComponentSpec
    model: ModelConfig
    seed: int = 0
    runs_dir: str = "runs"
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: list[ComponentSpec] = field(default_factory=list)  # trackers the run also logs to: tensorboard, mlflow, wandb, csv (`cvaekit list-components --kind logger`), process 0 only; the older `log: {tensorboard: true}` still reads
    fit_prior: FitPriorConfig | None = None  # a second stage: after training, fit this prior to the codes

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)



# Which registry kind each component-valued key is looked up in.
KIND_OF = {"data": "dataset", "conditioner": "conditioner", "encoder": "encoder",
           "decoder": "decoder", "prior": "prior", "injections": "injection", "metrics": "metric",
           "likelihood": "likelihood", "log": "logger"}


def to_plain(obj: Any) -> Any:
    """A Recipe as YAML-ready data, with component specs back in `{name: ..., **params}` form."""
    if isinstance(obj, ComponentSpec):
        out = {"name": obj.name}
        out.update({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
                    if f.name not in ("name", "params")})
        out.update(to_plain(obj.params))
        return out
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj

