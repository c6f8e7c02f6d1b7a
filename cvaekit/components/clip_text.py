"""CLIP text conditioner: a caption -> CLIP's text embedding (the study's long-text condition).

transformers' `CLIPModel` and tokenizer, by hub id or local folder. The vector is what
`CLIPModel.get_text_features` computes (the end-of-text token's hidden state through the
text projection: 512-d for ViT-B/32); with `tokens: true` every token's last hidden state
comes too (projected the same way unless `project: false`), for attention. Frozen, run
once per distinct caption (cvaekit.text_cache), and kept out of the model's state_dict.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from ..data import DataInfo
from ..errors import CvaekitError
from ..optional import require
from ..text_cache import FrozenTextConditioner, model_key, shared_cache

DEFAULT_MODEL = "openai/clip-vit-base-patch32"


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or "\\" in name


def resolve_pretrained(name: str, what: str, loader):
    """`loader(path, local_files_only)` on a local folder, or on a hub id: from the local
    Hugging Face cache first, then (unless HF_HUB_OFFLINE is set) from the hub. Failure is
    a CvaekitError that says how to get the model."""
    local = Path(name).expanduser()
    if local.exists():
        try:
            return loader(str(local), True)
        except (OSError, ValueError) as exc:
            raise CvaekitError(f"The {what} folder '{name}' cannot be loaded ({exc}). It must hold "
                               f"a model saved with save_pretrained.") from None
    if _looks_like_path(name):
        raise CvaekitError(f"The {what} folder '{name}' does not exist. Give an existing folder "
                           f"(saved with save_pretrained) or a Hugging Face hub id.")
    try:
        return loader(name, True)
    except (OSError, ValueError):
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    error = "HF_HUB_OFFLINE is set"
    if not offline:
        try:
            return loader(name, False)
        except (OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    raise CvaekitError(
        f"The {what} '{name}' is not in the local Hugging Face cache and could not be downloaded "
        f"({error}). Download it where there is a network (`hf download {name}`) and copy the "
        f"cache (~/.cache/huggingface) here, or save it with save_pretrained into a folder and "
        f"give that folder's path instead of the hub id: a local path works the same.")


@functools.lru_cache(maxsize=4)
def load_clip(name: str = DEFAULT_MODEL):
    """(CLIPModel, tokenizer), frozen and in eval mode; loaded once per process."""
    transformers = require("transformers", "text", "Conditioner 'clip_text'")
    AutoTokenizer, CLIPModel = transformers.AutoTokenizer, transformers.CLIPModel

    def loader(path: str, local_only: bool):
        model = CLIPModel.from_pretrained(path, local_files_only=local_only)
        return model, AutoTokenizer.from_pretrained(path, local_files_only=local_only)

    model, tokenizer = resolve_pretrained(name, "CLIP model", loader)
    model.eval().requires_grad_(False)
    return model, tokenizer


def clip_text(*, data: DataInfo, model: str = DEFAULT_MODEL, tokens: bool = False,
              project: bool = True, max_length: int = 77, precompute: bool = False,
              batch_size: int = 256) -> FrozenTextConditioner:
    """CLIP text features of each caption (frozen, encoded once per caption).

    `tokens: true` adds the per-token hidden states, for attention. `model` is a hub id or a local folder saved with save_pretrained. `project: false` gives
    the text tower's hidden states (hidden size) instead of the projected ones. With
    `precompute`, every training caption is encoded up front instead of as batches meet it."""
    clip, tokenizer = load_clip(model)
    limit = min(max_length, clip.config.text_config.max_position_embeddings)

    def encode(texts: list[str], device: torch.device) -> list[torch.Tensor]:
        clip.to(device)
        batch = tokenizer(texts, padding=True, truncation=True, max_length=limit,
                          return_tensors="pt").to(device)
        out = clip.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        vector, hidden = out.pooler_output, out.last_hidden_state
        if project:
            vector, hidden = clip.text_projection(vector), clip.text_projection(hidden)
        if not tokens:
            return list(vector.unsqueeze(1).cpu())
        lengths = batch["attention_mask"].sum(1).tolist()
        return [torch.cat([v[None], h[:n]]).cpu() for v, h, n in zip(vector, hidden, lengths)]

    dim = clip.config.projection_dim if project else clip.config.text_config.hidden_size
    key = model_key(model, "clip_text", "tokens" if tokens else "vector", project, limit)
    cache = shared_cache(key, encode, batch_size)
    if precompute and data.texts:
        cache.precompute(data.texts, "cuda" if torch.cuda.is_available() else "cpu")
    return FrozenTextConditioner(cache, dim, tokens)
