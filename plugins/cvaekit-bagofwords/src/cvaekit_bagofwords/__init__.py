"""cvaekit-bagofwords: a vocabulary-free text conditioner and a gated injection for cvaekit.

The classes are imported on first access (PEP 562), so loading the plugin imports no torch."""

import importlib

_WHERE = {"CharNGram": ".char_ngram", "GatedAdd": ".gated_add"}
__all__ = list(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
