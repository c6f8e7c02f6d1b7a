"""Loading plugins: every entry point in the group ``cvaekit``, the built-ins included.

Each plugin is imported and registered on its own, so one that fails is reported (one
line on stderr, and a row in `cvaekit list-components`) while the others still load.
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from cvaekit.plugins import hookspecs
from cvaekit.plugins.registry import NameTaken, PluginFailure, Registrar, Registry

GROUP = "cvaekit"

_manager: pluggy.PluginManager | None = None
_registry: Registry | None = None


def origin_of(ep: EntryPoint) -> str:
    """'distribution version' of the package that declares the entry point."""
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else ep.value.split(":")[0]


def load_registry(group: str = GROUP) -> Registry:
    """A fresh registry filled from every entry point in `group`."""
    global _manager
    _manager = pluggy.PluginManager(hookspecs.PROJECT)
    _manager.add_hookspecs(hookspecs)
    registry = Registry()
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name != "builtin", e.name)):
        origin = origin_of(ep)
        try:
            plugin = ep.load()
            _manager.register(plugin, name=f"{origin}:{ep.name}")
            _register_one(registry, plugin, origin)
        except Exception as exc:  # noqa: BLE001 - any plugin error must not stop the rest
            _report(registry, ep.name, origin, ep.value.split(":")[0], exc)
    return registry


def _register_one(registry: Registry, plugin: Any, origin: str) -> None:
    """Call `plugin`'s hook alone, so its components get its origin and its errors stay its own."""
    registrar = Registrar(registry, origin)
    caller = _manager.subset_hook_caller(
        "cvaekit_register", remove_plugins=[p for p in _manager.get_plugins() if p is not plugin])
    caller(registry=registrar)
    registrar.commit()


def _report(registry: Registry, name: str, origin: str, module: str, exc: Exception) -> None:
    """One line on stderr (the registry loads once per process, so once per command)."""
    if isinstance(exc, NameTaken):  # the plugin loaded, less the components whose names were taken
        registry.failures.append(PluginFailure(name, origin, str(exc), partial=True))
        print(f"cvaekit: plugin '{name}' from {origin}: {exc}", file=sys.stderr)
        return
    error = f"{type(exc).__name__}: {exc}"
    registry.failures.append(PluginFailure(name, origin, error))
    print(f"cvaekit: plugin '{name}' from {origin} was not loaded: {error} "
          f"(the whole error: python -c \"import {module}\")", file=sys.stderr)


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = load_registry()
    return _registry


def reset_registry() -> None:
    """Forget the loaded registry (after installing a plugin, or in tests)."""
    global _registry
    _registry = None


def register_plugin(plugin: Any, name: str | None = None) -> None:
    """Register a plugin object at run time, without a package: its hook is called at once.

    `plugin` is a module or object with a ``@hookimpl def cvaekit_register(registry)``."""
    registry = get_registry()
    origin = f"runtime:{name or getattr(plugin, '__name__', type(plugin).__name__)}"
    _manager.register(plugin, name=origin)
    try:
        _register_one(registry, plugin, origin)
    except Exception:
        _manager.unregister(plugin)
        raise
