"""The plugin module named by this package's entry point (group `cvaekit`)."""

from cvaekit import hookimpl

from .char_ngram import CharNGram
from .gated_add import GatedAdd


@hookimpl
def cvaekit_register(registry):
    registry.add("conditioner", "char_ngram", CharNGram)
    registry.add("injection", "gated_add", GatedAdd)
