"""What a conditioner's output becomes inside the model: a vector, and tokens for attention."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Condition:
    """The condition of a batch.

    `vector` [B, D] is what concatenation-style parts use; `tokens` [B, T, D] is what
    attention uses (a vector condition is one token); `mask` [B, T] is True for real tokens."""

    vector: torch.Tensor
    tokens: torch.Tensor
    mask: torch.Tensor | None = None

    @property
    def dim(self) -> int:
        return self.vector.shape[-1]

    @classmethod
    def of(cls, out: torch.Tensor | Condition) -> Condition:
        """A conditioner's output ([B, D], [B, T, D] or a Condition) as a Condition."""
        if isinstance(out, Condition):
            return out
        if out.dim() == 2:
            return cls(out, out.unsqueeze(1))
        if out.dim() == 3:
            return cls(out.mean(dim=1), out)
        raise ValueError(f"a conditioner must return [B, D] or [B, T, D], got shape {tuple(out.shape)}")

    def dropped(self, drop: torch.Tensor) -> Condition:
        """The rows where `drop` [B] is True replaced by the empty condition: a zero vector and
        one zero token (what classifier-free guidance trains the decoder to draw without text)."""
        keep = (~drop).to(self.vector.dtype)
        b, t, _ = self.tokens.shape
        mask = torch.ones(b, t, dtype=torch.bool, device=self.tokens.device) if self.mask is None else self.mask.bool()
        first_only = torch.zeros_like(mask)
        first_only[:, 0] = True
        return Condition(self.vector * keep[:, None], self.tokens * keep[:, None, None],
                         torch.where(drop[:, None].to(mask.device), first_only, mask))

    def empty(self) -> Condition:
        """Every row as the empty condition (see `dropped`)."""
        return self.dropped(torch.ones(self.vector.shape[0], dtype=torch.bool, device=self.vector.device))

    def index(self, idx: torch.Tensor) -> Condition:
        return Condition(self.vector[idx], self.tokens[idx],
                         None if self.mask is None else self.mask[idx])

    @classmethod
    def cat(cls, parts: list[Condition], device: torch.device | str | None = None) -> Condition:
        """Batches' conditions as one (on `device`, default each part's own), tokens padded to
        the longest batch and masked (a part without a mask is all real tokens)."""
        longest = max(p.tokens.shape[1] for p in parts)
        vectors, tokens, masks = [], [], []
        for p in parts:
            b, t, _ = p.tokens.shape
            mask = torch.ones(b, t, dtype=torch.bool, device=p.tokens.device) if p.mask is None else p.mask.bool()
            vectors.append(p.vector.to(device))
            tokens.append(torch.nn.functional.pad(p.tokens, (0, 0, 0, longest - t)).to(device))
            masks.append(torch.nn.functional.pad(mask, (0, longest - t), value=False).to(device))
        return cls(torch.cat(vectors), torch.cat(tokens), torch.cat(masks))
