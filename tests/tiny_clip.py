"""A tiny CLIP made offline: a `CLIPConfig` with small towers, a byte-level BPE tokenizer
whose vocabulary is just the 256 byte symbols (so any text tokenizes), and a 32-px image
processor, all saved with `save_pretrained` so it loads by path like a hub model.

Used by the tests and benchmarks that exercise `clip_text` and CLIP score without a download.
"""

from __future__ import annotations

import json
from pathlib import Path


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) map from each byte to a printable unicode character."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def write_bpe_files(folder: Path) -> tuple[Path, Path]:
    """vocab.json and merges.txt: every byte symbol, its word-final `</w>` form and the two
    special tokens, with no merges (each character is one token)."""
    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab))
    merges_file.write_text("#version: 0.2\n")
    return vocab_file, merges_file


def build_tiny_clip(folder: str | Path, *, seed: int = 0, hidden: int = 32, layers: int = 2,
                    projection_dim: int = 16, image_size: int = 32, patch: int = 8,
                    max_positions: int = 77, heads: int = 2, vision_hidden: int | None = None,
                    vision_layers: int | None = None) -> Path:
    """Save a randomly initialised (seeded) tiny CLIP, its tokenizer and processor in `folder`."""
    import torch
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor,
                              CLIPTokenizer)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_bpe_files(folder)
    tokenizer = CLIPTokenizer.from_pretrained(folder, model_max_length=max_positions)

    def tower(width: int, depth: int, n_heads: int) -> dict:
        return dict(hidden_size=width, intermediate_size=(4 if width >= 256 else 2) * width,
                    num_hidden_layers=depth, num_attention_heads=n_heads)

    vision = tower(vision_hidden or hidden, vision_layers or layers, 2 if vision_hidden else heads)
    config = CLIPConfig(
        text_config=dict(tower(hidden, layers, heads), vocab_size=len(tokenizer), max_position_embeddings=max_positions,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(vision, image_size=image_size, patch_size=patch),
        projection_dim=projection_dim,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder
