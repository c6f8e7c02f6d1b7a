"""pythae's side of `benchmarks/peers.py`: the study's MLP as pythae networks, its trainer at
its defaults, its own NLL estimator, and its trained models wrapped as cvaekit `CVAE`s so that
cvaekit's estimator can read them too. Imported only where pythae is installed."""

from __future__ import annotations

import contextlib
import io
import math
import time
from pathlib import Path

import torch
from torch import nn

from cvaekit.components.conditioners.none import NoCondition
from cvaekit.core.data import DataSource
from cvaekit.core.likelihood import Bernoulli
from cvaekit.core.model import CVAE
from cvaekit.evaluation import EvalContext

LATENT, HIDDEN, COMPONENTS, IWAE_K = 20, 400, 50, 5  # the study's MLP; pythae's VAMP and IWAE settings


def pythae_networks():
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Sequential(nn.Linear(784, HIDDEN), nn.ReLU())
            self.mu, self.logvar = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)

        def forward(self, x):
            h = self.hidden(x.reshape(x.shape[0], -1))
            return ModelOutput(embedding=self.mu(h), log_covariance=self.logvar(h))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 784))

        def logits(self, z):
            return self.net(z).reshape(z.shape[0], 1, 28, 28)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.logits(z)))

    return Encoder(), Decoder()


def pythae_model(kind: str, seed: int):
    from pythae.models import IWAE, VAE, VAMP, IWAEConfig, VAEConfig, VAMPConfig

    torch.manual_seed(seed)
    common = dict(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
    config = {"VAE": lambda: VAEConfig(**common), "IWAE": lambda: IWAEConfig(**common, number_samples=IWAE_K),
              "VAMP": lambda: VAMPConfig(**common, number_components=COMPONENTS)}[kind]()
    cls = {"VAE": VAE, "IWAE": IWAE, "VAMP": VAMP}[kind]
    encoder, decoder = pythae_networks()
    return cls(config, encoder=encoder, decoder=decoder)


def train_pythae(kind: str, args, data: DataSource, out: Path) -> dict:
    """Train one model with pythae's pipeline and trainer at their defaults (but the shared
    settings); images/s over each epoch's training steps, from a callback."""
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    class Timer(TrainingCallback):
        def __init__(self):
            self.seconds, self.start, self.last = 0.0, 0.0, 0.0

        def on_epoch_begin(self, training_config, **kwargs):
            self.start = self.last = time.perf_counter()

        def on_train_step_end(self, training_config, **kwargs):
            self.last = time.perf_counter()

        def on_epoch_end(self, training_config, **kwargs):
            self.seconds += self.last - self.start

    model = pythae_model(kind, args.seed)
    config = BaseTrainerConfig(output_dir=str(out), num_epochs=args.epochs, learning_rate=args.lr,
                               per_device_train_batch_size=args.batch_size, seed=args.seed,
                               keep_best_on_train=True, no_cuda=True)  # without eval data it keeps none otherwise
    images = data.train.head(args.train_images).images.float() / 255
    timer = Timer()
    with contextlib.redirect_stdout(io.StringIO()):
        TrainingPipeline(model=model, training_config=config)(train_data=images, callbacks=[timer])
    return {"rate": len(images) * args.epochs / timer.seconds, "model": model.eval()}


def pythae_per_image(model, ctx: EvalContext, samples: int) -> torch.Tensor:
    """pythae's own estimator (`get_nll`), one image per call to get each image's value."""
    images = torch.cat([x for x, _ in ctx.batches()])
    torch.manual_seed(ctx.seed)
    values = []
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):  # VAMP's get_nll prints as it goes
        for x in images:
            values.append(-model.get_nll(x[None], n_samples=samples, batch_size=samples))
    return torch.tensor(values, dtype=torch.float64)


class Wrapped(nn.Module):
    """A pythae network as a cvaekit encoder (x, cond) -> (mu, logvar) or decoder (z, cond) -> logits."""

    def __init__(self, net: nn.Module, decoder: bool):
        super().__init__()
        self.net, self.decoder = net, decoder

    def forward(self, x, cond):
        if self.decoder:
            return self.net.logits(x)
        out = self.net(x)
        return out.embedding, out.log_covariance


class PseudoInputPrior(nn.Module):
    """pythae's VampPrior as a cvaekit prior: its log p(z) with the Gaussian constant that pythae
    leaves out (its estimator drops it from q and p alike; cvaekit's keeps it in both)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def log_prob(self, z, cond):
        return self.model._log_p_z(z) - 0.5 * z.shape[-1] * math.log(2 * math.pi)

    def sample(self, cond, generator=None, temperature=1.0):
        raise NotImplementedError("only its density is needed here")


def as_cvae(model, data: DataSource) -> CVAE:
    info = data.info()
    prior = PseudoInputPrior(model) if model.model_name == "VAMP" else None
    return CVAE(NoCondition(data=info), Wrapped(model.encoder, False), Wrapped(model.decoder, True),
                LATENT, info, prior=prior, likelihood=Bernoulli()).eval()
