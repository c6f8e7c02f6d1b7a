"""The one hook every plugin implements, built-in or third-party.

A plugin is a module (or object) named by an entry point in the group ``cvaekit``. It
defines a function decorated with ``@cvaekit.hookimpl``::

    from cvaekit import hookimpl

    @hookimpl
    def cvaekit_register(registry):
        registry.add("conditioner", "bag_of_words", BagOfWords, summary="...")
"""

from __future__ import annotations

import pluggy

PROJECT = "cvaekit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def cvaekit_register(registry):
    """Add this plugin's components with ``registry.add(kind, name, factory, summary=...)``."""
