"""Optional libraries: imported when a component that needs them is built, never before,
so a plain install still loads every built-in; a missing one says which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from cvaekit.errors import CvaekitError


def require(module: str, extra: str, needed_for: str) -> ModuleType:
    """`module`, imported; or an error naming what needs it and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise CvaekitError(f"{needed_for} needs the '{module.split('.')[0]}' package, which is not "
                           f"installed ({exc}). Install it with: pip install 'cvaekit[{extra}]'.") from None
