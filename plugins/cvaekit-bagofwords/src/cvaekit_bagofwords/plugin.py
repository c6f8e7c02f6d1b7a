"""The plugin module named by this package's entry point (group `cvaekit`).

Components are registered by import path with a summary, so `cvaekit list-components`
imports neither torch nor this package's modules; each is imported when first used."""

from cvaekit import hookimpl


@hookimpl
def cvaekit_register(registry):
    registry.add("conditioner", "char_ngram", "cvaekit_bagofwords.char_ngram:CharNGram",
                 summary="Hashed character n-grams of a caption or label word, L2-normalised, optionally projected.")
    registry.add("injection", "gated_add", "cvaekit_bagofwords.gated_add:GatedAdd",
                 summary="A projection of the condition vector, scaled by a learned per-channel gate, added to h.")
