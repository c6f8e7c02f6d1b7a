"""cvaekit-bagofwords: a vocabulary-free text conditioner and a gated injection for cvaekit."""

from .char_ngram import CharNGram
from .gated_add import GatedAdd

__all__ = ["CharNGram", "GatedAdd"]
