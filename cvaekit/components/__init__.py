"""cvaekit's built-in components: a plugin like any other, named by the entry point
``builtin`` in the group ``cvaekit`` (see pyproject.toml). One subpackage per kind.

Each is registered by import path with its summary, so listing them imports none of their
modules (nor torch); a component's module is imported when a recipe or `describe` first
uses it. `tests/test_plugins.py` checks each summary against its factory's docstring."""

from __future__ import annotations

from cvaekit.plugins.hookspecs import hookimpl

# kind, name, where (module:factory under cvaekit.components), summary
BUILTINS = [
    ("conditioner", "onehot", "conditioners.onehot:OneHot",
     "One-hot vector of the class a label or word names (the study's short-text condition)."),
    ("conditioner", "clip_text", "conditioners.clip_text:clip_text",
     "CLIP text features of each caption (frozen, encoded once per caption)."),
    ("conditioner", "sentence_transformer", "conditioners.sentence_transformer:sentence_transformer",
     "Sentence-transformers embedding of each caption (frozen, encoded once per caption)."),
    ("conditioner", "learned_text", "conditioners.learned_text:LearnedText",
     "Word embeddings trained with the CVAE, pooled by a bidirectional GRU or by a mean."),

    ("conditioner", "none", "conditioners.none:NoCondition",
     "No condition at all: every image gets the same constant vector, so the model is a plain VAE."),

    ("injection", "early_concat", "injections.concat:EarlyConcat",
     "The condition vector broadcast over H x W and concatenated as channels at the input."),
    ("injection", "mid", "injections.concat:MidConcat",
     "The condition broadcast and concatenated as channels after stage k."),
    ("injection", "cross_attention", "injections.cross_attention:CrossAttention",
     "Image features attend to the condition's tokens, with a residual and a norm."),
    ("injection", "film", "injections.film:FiLM",
     "Per-channel scale and shift from the condition vector: h * (1 + gamma(c)) + beta(c)."),

    ("encoder", "mlp", "networks.mlp:MLPEncoder",
     "[flattened image, condition] -> hidden (ReLU) -> mu, logvar."),
    ("encoder", "conv", "networks.conv:ConvEncoder",
     "Stride-2 convs (kernel 3, LeakyReLU) to a small grid, flatten, linear mu and logvar."),

    ("encoder", "ladder", "networks.ladder:LadderEncoder",
     "Bottom-up residual cells, keeping a feature map at each latent resolution (for the `ladder` decoder)."),
    ("encoder", "dense_ladder", "networks.dense_ladder:DenseLadderEncoder",
     "[flattened image, condition] -> hidden, then one layer per group level, top last (for the `dense_ladder` decoder)."),

    ("decoder", "mlp", "networks.mlp:MLPDecoder",
     "[z, condition] -> hidden (ReLU) -> image logits."),
    ("decoder", "deconv", "networks.conv:DeconvDecoder",
     "[z, c] -> linear layers to a small grid -> stride-2 transposed convs -> image logits."),
    ("decoder", "upsample", "networks.upsample:UpsampleDecoder",
     "[z, c] -> linear layers to a small grid -> resize-then-conv stages with residual blocks -> the image's parameters."),

    ("likelihood", "bernoulli", "likelihoods.bernoulli:Bernoulli",
     "Each pixel value a Bernoulli probability, the decoder's output its logit (the study's likelihood; exact for binarized images, a proxy for grey or colour values)."),
    ("likelihood", "gaussian", "likelihoods.gaussian:Gaussian",
     "N(mean, scale) per pixel value over dequantised 8-bit values, the decoder giving the mean."),
    ("likelihood", "logistic_mixture", "likelihoods.logistic_mixture:LogisticMixture",
     "Discretized mixture of logistics over 8-bit values, channels coupled (PixelCNN++)."),

    ("decoder", "ladder", "networks.ladder:LadderDecoder",
     "Latent groups generated top-down over several resolutions, each with a prior given the groups above and the text."),
    ("decoder", "dense_ladder", "networks.dense_ladder:DenseLadderDecoder",
     "Latent vectors generated top-down, each with a prior given the groups above and the text; then hidden -> image."),

    ("prior", "conditional", "priors.conditional:ConditionalPrior",
     "N(mu(c), diag exp(logvar(c))), linear in the condition vector; starts as N(0, I)."),
    ("prior", "mixture", "priors.mixture:MixturePrior",
     'A mixture of `components` diagonal Gaussians whose weights, means and scales depend on the condition through an MLP with one hidden layer of `hidden` units (0: linear).'),
    ("prior", "vamp", "priors.vamp:VampPrior",
     "A mixture of the encoder's posteriors q(z | u_k, c) at `pseudo_inputs` learned pseudo-images u_k, weighted by the condition (the VampPrior)."),
    ("prior", "flow", "priors.flow:FlowPrior",
     'A zuko flow p(z | c): neural spline (`nsf`) or affine autoregressive (`maf`) transforms of a standard normal (or of a mixture of Gaussians), each conditioned on the condition.'),

    ("dataset", "fashion_mnist", "datasets.fashion_mnist:fashion_mnist",
     "Fashion-MNIST 28x28 grey, 60k train / 10k test, 10 labelled classes."),
    ("dataset", "coco_captions", "datasets.coco:coco_captions",
     "MS-COCO images with their captions (5 per image), centre-cropped to `image_size`."),
    ("dataset", "shapes_captions", "datasets.shapes:shapes_captions",
     'Synthetic coloured shapes with captions, such as "a small red circle above a large blue square".'),
    ("dataset", "fashion_captions", "datasets.fashion_captions:fashion_captions",
     'Fashion-MNIST items on a 64x64 canvas with captions such as "a sneaker to the left of a bag".'),
    ("dataset", "image_folder", "datasets.image_folder:image_folder",
     'Pictures sorted into one folder per class; the folder names are the class names.'),
    ("dataset", "image_captions", "datasets.image_captions:image_captions",
     'Captioned pictures: an `imagefolder` folder (`root`) or a CSV/JSONL file (`metadata`).'),
    ("dataset", "hf_dataset", "datasets.hf_dataset:hf_dataset",
     'A `datasets` data set: a hub id or a local path (a save_to_disk folder, an imagefolder).'),
    ("dataset", "torchvision", "datasets.torchvision_sets:torchvision_dataset",
     'A torchvision labelled image data set by class name.'),

    ("metric", "nelbo", "metrics.likelihood:NegativeELBO",
     "Test negative ELBO (-log p(x | z) summed over pixels + KL), nats per image; lower is better."),
    ("metric", "nll", "metrics.nll:ImportanceSampledNLL",
     "Test -log p(x | c) by importance sampling from q(z | x, c), with its standard error."),
    ("metric", "recon", "metrics.likelihood:Reconstruction",
     "Test reconstruction error from the posterior mean: -log p(x | z = mu) (nats/image; BCE under the Bernoulli likelihood, so it compares with nelbo) and MSE (per pixel)."),
    ("metric", "cond_accuracy", "metrics.cond_accuracy:ConditionalAccuracy",
     "Share of generated samples that a judge trained on real images classifies as asked."),
    ("metric", "caption_match", "metrics.caption_match:CaptionMatch",
     "How often a generated picture picks out its own caption among `candidates`, beside real pictures (ceiling), their reconstructions (the decoder's ceiling) and shuffled captions (chance)."),
    ("metric", "fid", "metrics.fid:FID",
     "FID of generated vs held-out real images; the key names the features (fid_judge, ...)."),
    ("metric", "clip_score", "metrics.clip_score:CLIPScoreMetric",
     "CLIP cosine of generated images and their captions, and torchmetrics' CLIPScore."),
    ("metric", "shapes_fidelity", "metrics.shapes_fidelity:ShapesFidelity",
     "Caption fidelity on shapes_captions: the share of generated images that match their caption."),
    ("metric", "fashion_fidelity", "metrics.fashion_fidelity:FashionFidelity",
     "Caption fidelity on fashion_captions: the share of generated images the judge reads as asked."),

    ("logger", "tensorboard", "loggers.tensorboard_log:TensorBoardLog",
     "TensorBoard event files in the run folder: every figure per epoch, the grids as images."),
    ("logger", "mlflow", "loggers.mlflow_log:MLflowLog",
     "An MLflow run: the recipe as parameters, every figure per epoch, the grids as artifacts."),
    ("logger", "wandb", "loggers.wandb_log:WandbLog",
     "A W&B run in the run folder (wandb/offline-run-*; `wandb sync` uploads it later): the recipe as config, every figure per epoch, the grids as images."),
    ("logger", "csv", "loggers.csv_log:CSVLog",
     "CSV files in the run folder: params.csv (key, value), figures.csv (epoch, name, value), images.csv."),
]


@hookimpl
def cvaekit_register(registry):
    for kind, name, where, summary in BUILTINS:
        registry.add(kind, name, f"{__name__}.{where}", summary=summary)
