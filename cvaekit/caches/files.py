"""Cache files that processes share and that a crash cannot spoil.

One process fills a cache at a time (a file lock, `.lock` in the cache's folder; the others
wait for it, then read what it wrote); every file is written whole (a temporary file, then a
rename); and each file's size and checksum are kept in a manifest that is checked before the
file is read. A file a crash or a full disk cut short, or whose bytes changed, is found,
said (`CacheRepairedWarning`) and built again, never read as garbage. A file whose checksum
was verified once gets a stamp beside it (`.NAME.verified`: its size, inode and mtime); while
those are unchanged, later loads skip reading it whole again (about 1 s per GB). As git does
with its index, a stamp taken within a few seconds of the file's last write is not trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

from filelock import FileLock

LOCK = ".lock"  # beside what it guards; a dot file, so listings of a cache leave it out
CHUNK = 8 << 20
RACY_NS = 3_000_000_000  # a write this close before a stamp may share the file's mtime tick


class CacheRepairedWarning(UserWarning):
    """A cache file failed its size or checksum check; it is built again."""


def locked(folder: Path) -> FileLock:
    """The lock of the cache in `folder`: held by the one process that fills it."""
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(folder / LOCK, is_singleton=True)  # one per path in a process: re-entrant there


def write_atomic(path: Path, data: bytes) -> None:
    """`path` holds `data` whole, or what it held before: never a part of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value).encode())


def checksum(source: Path | bytes) -> str:
    """The sha256 of a file (read in chunks) or of bytes, in hex."""
    digest = hashlib.sha256()
    if isinstance(source, (bytes, bytearray, memoryview)):
        digest.update(source)
        return digest.hexdigest()
    with open(source, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(source: Path | bytes) -> dict[str, Any]:
    """What `damage` checks a file against: its size in bytes and its checksum."""
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    return {"bytes": size, "sha256": checksum(source)}


def damage(source: Path | bytes, expected: dict[str, Any], name: str = "") -> str | None:
    """What is wrong with a file (or its bytes) against its manifest, or None when nothing
    is. A manifest without a checksum (a cache an older cvaekit wrote) checks the size only."""
    name = name or (source.name if isinstance(source, Path) else "the file")
    if isinstance(source, Path) and not source.is_file():
        return f"{name} is missing"
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size != expected["bytes"]:
        return f"{name} is {size:,} bytes where its manifest says {expected['bytes']:,} (cut short by a crash or a full disk?)"
    if expected.get("sha256") and not _stamped(source, expected["sha256"]):
        if not checksum(source).startswith(expected["sha256"]):  # or its prefix
            return f"{name} does not match its checksum (its bytes changed since it was written)"
        _stamp(source, expected["sha256"])
    return None


def _stat_key(path: Path, sha256: str) -> dict[str, Any]:
    st = path.stat()
    return {"sha256": sha256, "bytes": st.st_size, "ino": st.st_ino, "mtime_ns": st.st_mtime_ns}


def _stamp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def _stamped(source: Path | bytes, sha256: str) -> bool:
    """Whether the file was verified against this checksum and has not been written since."""
    if not isinstance(source, Path):
        return False
    try:
        stamp = json.loads(_stamp_path(source).read_text())
        at = stamp.pop("at")
        return stamp == _stat_key(source, sha256) and stamp["mtime_ns"] < at - RACY_NS
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _stamp(source: Path | bytes, sha256: str) -> None:
    """Remember that the file matched its checksum, as its stat says now."""
    if isinstance(source, Path):
        try:
            write_json(_stamp_path(source), {**_stat_key(source, sha256), "at": time.time_ns()})
        except OSError:  # a read-only cache is checked in full each time
            pass


def say_repaired(what: str, problem: str, action: str) -> None:
    """Say that a damaged cache file was found and what is done about it."""
    warnings.warn(f"{what}: {problem}; {action}.", CacheRepairedWarning, stacklevel=3)
