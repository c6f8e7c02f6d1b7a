"""What the data sets of picture files say about the files they leave out: pictures that
cannot be decoded, files named (in a captions file) that do not exist, and files in a
labelled folder that are not pictures."""

from __future__ import annotations

import warnings
from collections.abc import Sequence


class SkippedImagesWarning(UserWarning):
    """Some images could not be read (or their files do not exist) and were left out."""


class IgnoredFilesWarning(SkippedImagesWarning):
    """Files in a picture folder that are not pictures by their extension were left out."""


def skipped_text(skipped: list[str], where: object, missing: Sequence[str] = ()) -> str:
    """How many images were skipped and the first few, the unreadable ones and the missing
    ones (named, but with no file on disk) apart; '' when none were."""
    gone = set(missing)
    unreadable, absent = [s for s in skipped if s not in gone], [s for s in skipped if s in gone]
    parts = []
    if unreadable:
        parts.append(f"{len(unreadable)} unreadable image(s) in '{where}': {_few(unreadable)}")
    if absent:
        parts.append(f"{len(absent)} missing image(s) in '{where}', named but not found on disk: {_few(absent)}")
    return "Skipped " + "; and ".join(parts) if parts else ""


def _few(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def warn_skipped(skipped: list[str], where: object, stacklevel: int = 3, missing: Sequence[str] = ()) -> None:
    """One warning naming how many images were skipped, and the first few (`skipped_text`)."""
    if skipped:
        warnings.warn(skipped_text(skipped, where, missing), SkippedImagesWarning, stacklevel=stacklevel)
