"""A small text encoder trained with the CVAE: no download, vocabulary from the training captions.

The vocabulary is part of the module's state_dict (a byte buffer), so a trained run loads
and generates without its data set. Words it never saw map to <unk>.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn

from cvaekit.core.condition import Condition
from cvaekit.core.data import DataInfo
from cvaekit.errors import RecipeError, UnknownConditionError
from cvaekit.recipe import PositiveInt

PAD, UNK = "<pad>", "<unk>"
SHOWN_WORDS = 12  # known words a warning lists before "..."


class UnknownWordsWarning(UserWarning):
    """A caption asked of a trained model has words its training captions never had."""


def words(text: str) -> list[str]:
    """Lower-case words and numbers; punctuation and spacing do not matter."""
    return re.findall(r"[a-z0-9]+", text.lower())


def build_vocabulary(texts: Iterable[str], min_count: int = 1, max_words: int | None = None) -> list[str]:
    """<pad>, <unk>, then the words seen at least `min_count` times, most frequent first."""
    counts = Counter(w for t in texts for w in words(t))
    ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return [PAD, UNK] + ranked[:max_words]


class LearnedText(nn.Module):
    """Word embeddings trained with the CVAE, pooled by a bidirectional GRU or by a mean.

    With the GRU word order matters ("a circle above a square" is not "a square above a
    circle"); the mean is a bag of words. The vocabulary is the training captions' words; a
    word outside it reads as `<unk>`, so any caption with a word in it can be asked for.

    dim: the width of the word embeddings and of the condition vector (even, for the GRU).
    pool: 'gru' (a bidirectional GRU over the words) or 'mean' (their average).
    tokens: also give per-word features (true), for attention; else one vector per caption.
    min_count: how often a word must occur in the training captions to enter the vocabulary.
    max_vocab: keep at most this many words, the most frequent (null: every word).
    max_len: the most words read from a caption; later ones are dropped."""

    def __init__(self, *, data: DataInfo, dim: PositiveInt = 64, pool: Literal["gru", "mean"] = "gru",
                 tokens: bool = False, min_count: PositiveInt = 1, max_vocab: PositiveInt | None = None,
                 max_len: PositiveInt = 48):
        super().__init__()
        if dim < 2 or (pool == "gru" and dim % 2):
            raise RecipeError(f"'dim' of learned_text must be an even number of at least 2, got {dim}.")
        if max_len < 1:
            raise RecipeError(f"'max_len' of learned_text must be positive, got {max_len}.")
        self.dim, self.pool, self.tokens, self.max_len = dim, pool, tokens, max_len
        self._set_vocabulary(build_vocabulary(data.texts or [], min_count, max_vocab))
        if pool == "gru":
            self.rnn = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(dim, dim)

    def _set_vocabulary(self, vocab: list[str]) -> None:
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        old = getattr(self, "embed", None)
        device = old.weight.device if old is not None else None
        # The vocabulary as UTF-8 bytes: a plain tensor in the state_dict, loadable with weights_only.
        self.register_buffer("vocab_bytes", torch.tensor(list("\n".join(self.vocab).encode()),
                                                         dtype=torch.uint8, device=device))
        if old is None or old.num_embeddings != len(self.vocab):
            self.embed = nn.Embedding(len(self.vocab), self.dim, padding_idx=0, device=device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Take the saved vocabulary first, so the embedding has its size when it is loaded."""
        saved = state_dict.get(prefix + "vocab_bytes")
        if saved is not None:
            self._set_vocabulary(bytes(saved.cpu().tolist()).decode().split("\n"))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def parse(self, texts: list[str]) -> list[str]:
        """Captions are their own raw condition; unknown words become <unk> in `forward`, with a
        warning that names them (the picture follows only the words the model knows). A text
        with no word in it says nothing to draw, so it is refused."""
        for text in texts:
            if not isinstance(text, str) or not words(text):
                raise UnknownConditionError(f"Conditioner 'learned_text' takes captions with at least one "
                                            f"word, got {text!r}.")
        self._warn_unknown(texts)
        return list(texts)

    def unknown_words(self, texts: list[str]) -> list[str]:
        """The words of `texts` the training captions never had (read as <unk>), sorted; none
        before a vocabulary exists."""
        if len(self.vocab) <= 2:
            return []
        return sorted({w for t in texts for w in words(t) if w not in self.index})

    def _warn_unknown(self, texts: list[str]) -> None:
        known = self.vocab[2:]
        unknown = self.unknown_words(texts)
        if unknown:
            shown = ", ".join(sorted(known)[:SHOWN_WORDS]) + (", ..." if len(known) > SHOWN_WORDS else "")
            warnings.warn(f"The model never read {', '.join(repr(w) for w in unknown)} in its training captions: "
                          f"read as unknown, so the picture follows only the other words. It knows {len(known)} "
                          f"words: {shown}", UnknownWordsWarning, stacklevel=3)

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Word ids [B, T] (0-padded) and lengths [B]; an empty text is one <unk>."""
        unk = self.index[UNK]
        ids = [[self.index.get(w, unk) for w in words(t)][:self.max_len] or [unk] for t in texts]
        lengths = torch.tensor([len(i) for i in ids])
        padded = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
        for row, i in enumerate(ids):
            padded[row, :len(i)] = torch.tensor(i)
        return padded, lengths

    def forward(self, texts: list[str]) -> torch.Tensor | Condition:
        ids, lengths = self.encode(list(texts))
        device = self.embed.weight.device
        mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).to(device)
        x = self.embed(ids.to(device))
        if self.pool == "gru":
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, last = self.rnn(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
            pooled = torch.cat([last[0], last[1]], dim=1)  # final forward and backward states
        else:
            pooled = (x * mask[..., None]).sum(1) / lengths.to(device)[:, None]
        vector = self.out(pooled)
        if not self.tokens:
            return vector
        return Condition(vector, self.out(x), mask)
