"""User-facing errors: each says what is wrong and what would be right.

The CLI prints a `CvaekitError` as one paragraph and exits with code 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CvaekitError(Exception):
    """A problem with the user's input (recipe, data, words), not with cvaekit."""


class RecipeError(CvaekitError):
    """A recipe key, value or type is wrong."""


class UnknownComponentError(CvaekitError):
    """A recipe names a component that no plugin registered."""


class DuplicateComponentError(CvaekitError):
    """Two plugins registered the same kind and name."""


class ComponentError(CvaekitError):
    """A component raised while the engine built or ran it: names it, its origin and the error."""


class DiskFullError(CvaekitError):
    """A file could not be written for lack of space; what was saved before stays intact."""


class DataError(CvaekitError):
    """A data set is missing or unreadable."""


class UnknownConditionError(CvaekitError):
    """A word or condition is outside what the model was trained on."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the nearest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def choices_text(choices: Iterable[str]) -> str:
    return ", ".join(f"'{c}'" for c in sorted(choices)) or "(none)"
