"""Plugins: the registry of components by kind, the one hook every plugin implements, and
loading every entry point in the group ``cvaekit`` (the built-ins included)."""

from cvaekit.plugins.hookspecs import hookimpl
from cvaekit.plugins.loading import (
    get_registry,
    load_registry,
    register_plugin,
    reset_registry,
)
from cvaekit.plugins.registry import KINDS, Registry

__all__ = ["KINDS", "Registry", "get_registry", "hookimpl", "load_registry", "register_plugin", "reset_registry"]
