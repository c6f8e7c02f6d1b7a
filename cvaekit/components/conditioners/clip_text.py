"""CLIP text conditioner: a caption -> CLIP's text embedding (the study's long-text condition).

transformers' `CLIPModel` and tokenizer, by hub id or local folder. The vector is what
`CLIPModel.get_text_features` computes (the end-of-text token's hidden state through the
text projection: 512-d for ViT-B/32); with `tokens: true` every token's last hidden state
comes too (projected the same way unless `project: false`), for attention. Frozen, run
once per distinct caption (cvaekit.text_cache), and kept out of the model's state_dict.
"""

from __future__ import annotations

import torch

from cvaekit.caches.pretrained import DEFAULT_CLIP, load_clip
from cvaekit.caches.text import FrozenTextConditioner, model_key, shared_cache
from cvaekit.core.data import DataInfo
from cvaekit.recipe import PositiveInt


def clip_text(*, data: DataInfo, model: str = DEFAULT_CLIP, tokens: bool = False,
              project: bool = True, max_length: PositiveInt = 77, precompute: bool = False,
              batch_size: PositiveInt = 256) -> FrozenTextConditioner:
    """CLIP text features of each caption (frozen, encoded once per caption).

    model: the CLIP, a hub id or a local folder saved with save_pretrained.
    tokens: also give every token's hidden state (true), for attention; else one vector per caption.
    project: map the features through CLIP's text projection; false keeps the text tower's hidden size.
    max_length: the most tokens read from a caption (capped at the model's limit, 77 for CLIP).
    precompute: encode every training caption up front, instead of as batches meet it.
    batch_size: captions encoded per pass of the model."""
    clip, tokenizer = load_clip(model, "Conditioner 'clip_text'")
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
