"""What cvaekit's cache folder holds, and clearing it (`cvaekit cache`).

The root is $CVAEKIT_CACHE, else ~/.cache/cvaekit. Each entry found there is one cache:

    images   <kind>/<label>-<size>px-<key>/   pictures decoded once (images.u8 and meta.json)
    text     embeddings/<model key>/          captions a frozen text encoder encoded once
    data     data/<name>/, hf-datasets/       data set files extracted or downloaded
    judges   judges/<key>.pt                  judges the metrics trained once

Everything is rebuilt when next needed. Anything else under the root is listed as `other`
and never removed; nothing outside the root ever is, and a root that is neither the default
nor marked by cvaekit's CACHEDIR.TAG is not cleared at all.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from cvaekit.caches.paths import TAG, cache_root, default_root
from cvaekit.errors import CvaekitError

GROUPS = {"images": "decoded pictures", "text": "encoded captions", "data": "data set files",
          "judges": "trained judges"}
_IMAGE_FILES = ("meta.json", "partial.json", "images.u8", "partial.u8")


@dataclass
class CacheEntry:
    group: str  # one of GROUPS, or "other" (not cvaekit's to remove)
    path: Path
    size: int  # bytes
    holds: str


def size_of(path: Path) -> int:
    """The bytes of the files under `path` (links not followed)."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for base, _, files in os.walk(path):
        total += sum(os.lstat(os.path.join(base, f)).st_size for f in files)
    return total


def size_text(size: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def list_caches(root: Path | None = None) -> list[CacheEntry]:
    """Every cache under the root, by group then path."""
    root = root or cache_root()
    if not root.is_dir():
        return []
    found = []
    for top in sorted(root.iterdir()):
        if top.name == TAG:
            continue
        found += _entries(top)
    return sorted(found, key=lambda e: (list(GROUPS).index(e.group) if e.group in GROUPS else 9, str(e.path)))


def _entries(top: Path) -> list[CacheEntry]:
    if top.is_symlink() or not top.is_dir():
        return [CacheEntry("other", top, size_of(top), "not made by cvaekit; left alone")]
    if top.name == "embeddings":
        return [CacheEntry("text", p, size_of(p), f"captions encoded by {p.name.rsplit('-', 1)[0]} "
                           f"({len(list(p.glob('shard-*.pt')))} shard files)") for p in sorted(top.iterdir())]
    if top.name == "judges":
        return [CacheEntry("judges", p, size_of(p), "a caption judge caption_match trained" if p.name.startswith("caption-")
                           else "a classifier cond_accuracy or fashion_fidelity trained")
                for p in sorted(top.iterdir())]
    if top.name == "data":
        return [CacheEntry("data", p, size_of(p), f"a link to {os.readlink(p)} (clearing removes the link only)"
                           if p.is_symlink() else f"{p.name} files, extracted or downloaded")
                for p in sorted(top.iterdir())]
    if top.name == "hf-datasets":
        return [CacheEntry("data", top, size_of(top), "Hugging Face data sets the hf_dataset data set loaded")]
    return [_image_entry(top.name, p) if _is_image_cache(p) else
            CacheEntry("other", p, size_of(p), "not made by cvaekit; left alone") for p in sorted(top.iterdir())]


def _is_image_cache(path: Path) -> bool:
    return not path.is_symlink() and path.is_dir() and any((path / f).is_file() for f in _IMAGE_FILES)


def _image_entry(kind: str, path: Path) -> CacheEntry:
    try:
        meta = json.loads((path / "meta.json").read_text())
        holds = (f"{meta['count']:,} pictures, {meta['channels']}x{meta['size']}x{meta['size']} "
                 f"({meta['fit']}), from the {kind} data set")
        if meta.get("skipped"):
            holds += f"; {len(meta['skipped'])} skipped"
    except (OSError, ValueError, KeyError):
        holds = f"an unfinished decode from the {kind} data set (continued when next used)"
    return CacheEntry("images", path, size_of(path), holds)


def chosen(images: bool = False, text: bool = False, data: bool = False, judges: bool = False,
           everything: bool = False) -> set[str]:
    """The groups the flags name; none is an error naming them."""
    groups = set(GROUPS) if everything else {g for g, on in
                                            (("images", images), ("text", text), ("data", data), ("judges", judges)) if on}
    if not groups:
        raise CvaekitError("Say which caches to clear: --images (" + GROUPS["images"] + "), --text (" + GROUPS["text"]
                           + "), --data (" + GROUPS["data"] + "), --judges (" + GROUPS["judges"] + ") or --all. "
                           "`cvaekit cache` lists them with their sizes.")
    return groups


def check_clearable(root: Path) -> None:
    """Only cvaekit's own cache root is ever cleared."""
    tag = root / TAG
    ours = tag.is_file() and "cvaekit" in tag.read_text(errors="replace")
    if root.resolve() != default_root().resolve() and not ours:
        raise CvaekitError(f"'{root}' ($CVAEKIT_CACHE) has no CACHEDIR.TAG written by cvaekit, so cvaekit will not "
                           f"remove anything from it. Remove what you no longer want by hand, or run any cvaekit "
                           f"command that uses the cache there first (it writes the tag).")


def clear_caches(entries: list[CacheEntry], root: Path | None = None) -> int:
    """Remove `entries` (none of group `other`, each inside the root); return the bytes freed."""
    root = (root or cache_root()).resolve()
    check_clearable(root)
    freed = 0
    for entry in entries:
        inside = Path(os.path.abspath(entry.path)).parent.resolve()
        if entry.group not in GROUPS or not (inside == root or root in inside.parents):
            raise CvaekitError(f"'{entry.path}' is not one of cvaekit's caches under '{root}'; left alone.")
        if entry.path.is_symlink() or entry.path.is_file():
            entry.path.unlink(missing_ok=True)  # a link: the link only, never what it points to
        elif entry.path.is_dir():
            shutil.rmtree(entry.path)
        freed += entry.size
    return freed


def cache_table(entries: list[CacheEntry], title: str) -> Table:
    table = Table(title=title)
    for column, justify in (("cache", "left"), ("holds", "left"), ("size", "right")):
        table.add_column(column, justify=justify, overflow="fold")
    root = cache_root()
    for e in entries:
        name = os.path.relpath(e.path, root) if e.path.is_relative_to(root) else str(e.path)
        table.add_row(escape(f"{e.group}: {name}"), escape(e.holds), size_text(e.size))
    return table


def listing() -> list:
    """What `cvaekit cache` prints: every cache in a table (or a line saying there is none),
    then how to clear them."""
    found, root = list_caches(), cache_root()
    title = f"cvaekit's caches in {root}: {size_text(sum(e.size for e in found))}"
    return [cache_table(found, escape(title)) if found else f"No caches in {root} yet.",
            "Clear with: cvaekit cache clear --images | --text | --data | --judges | --all. Pretrained models "
            "live in Hugging Face's cache (~/.cache/huggingface) or their packages, not here."]


def to_clear(groups: set[str]) -> tuple[list[CacheEntry], Table | str]:
    """The caches of `groups`, and a table of them to show before they go (or a line saying
    there are none). A root cvaekit may not clear is an error here, before anything is asked."""
    doomed, root = [e for e in list_caches() if e.group in groups], cache_root()
    if not doomed:
        return [], f"No {', '.join(sorted(groups))} caches in {root}: nothing to clear."
    check_clearable(root)
    return doomed, cache_table(doomed, escape(f"To remove from {root}: {size_text(sum(e.size for e in doomed))}"))
