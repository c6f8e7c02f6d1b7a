"""Frozen text encoders, run once per distinct caption.

A pretrained text encoder (CLIP, sentence-transformers) never changes during training, so
each caption's embedding is computed once, kept in memory, and written to disk under
`cache_dir("embeddings", <model key>)`, where later runs find it. Every entry is a 2-D
tensor: row 0 is the caption's vector and, for token conditioners, rows 1.. its tokens.

On disk the cache is a folder of shard files, each written whole (temporary file, then
rename) and named with its size and checksum, checked before it is read: a damaged shard is
said, removed and its captions encoded again. Processes that share the cache (torchrun ranks,
parallel runs, a `prepare` beside a `run`) encode under its lock, after reading what the
others wrote, so no caption is encoded twice (files.py).
"""

from __future__ import annotations

import atexit
import hashlib
import io
import re
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from cvaekit.caches.files import checksum, damage, locked, say_repaired, write_atomic
from cvaekit.caches.paths import cache_dir
from cvaekit.core.condition import Condition
from cvaekit.errors import UnknownConditionError

# encode(texts, device) -> one CPU tensor [L, D] per text (row 0 the vector, then tokens)
Encode = Callable[[list[str], torch.device], list[torch.Tensor]]


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def model_key(name: str, *options: object) -> str:
    """A folder name for one model and its options: readable, and unique to the weights
    when `name` is a local folder (its files' sizes and times are part of the key)."""
    path = Path(name).expanduser()
    parts = [str(path.resolve()) if path.exists() else name, *map(str, options)]
    if path.is_dir():
        for f in sorted(path.rglob("*")):
            if f.is_file() and f.suffix in (".safetensors", ".bin", ".json", ".txt"):
                st = f.stat()
                parts.append(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}")
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.name or name)[-40:]
    return f"{slug}-{hashlib.sha1('|'.join(parts).encode()).hexdigest()[:12]}"


class EmbeddingCache:
    """Caption -> embedding, computed by `encode` at most once per caption and model."""

    def __init__(self, key: str, encode: Encode, batch_size: int = 256, flush_rows: int = 4096,
                 flush_seconds: float = 30.0, max_shards: int = 32):
        self.key, self.encode, self.batch_size = key, encode, batch_size
        self.flush_rows, self.flush_seconds, self.max_shards = flush_rows, flush_seconds, max_shards
        self.memory: dict[str, torch.Tensor] = {}
        self.pending: dict[str, torch.Tensor] = {}
        self.encoded = 0  # captions run through the encoder by this process
        self.folder: Path | None = None
        self.read: set[str] = set()  # the shards on disk whose entries are in memory
        self.last_flush = time.monotonic()
        _live.add(self)

    def get(self, texts: Sequence[str], device: torch.device | str = "cpu") -> list[torch.Tensor]:
        """The embeddings of `texts` (CPU tensors), encoding on `device` those not yet cached
        (under the cache's lock, after reading what other processes wrote meanwhile)."""
        self._first_look()
        keys = [text_key(t) for t in texts]
        if any(k not in self.memory for k in keys):
            with locked(self.folder):
                self._refresh(repair=True)
                missing = list({k: t for k, t in zip(keys, texts) if k not in self.memory}.items())
                for start in range(0, len(missing), self.batch_size):
                    self._encode(missing[start:start + self.batch_size], torch.device(device))
                self.flush()  # before the lock is let go: a process waiting for it finds them
        return [self.memory[k] for k in keys]

    def precompute(self, texts: Sequence[str], device: torch.device | str = "cpu",
                   progress: bool = True) -> int:
        """Encode every caption of `texts` not cached yet, batched, with a progress bar;
        returns how many. What is encoded is written to disk as it goes (and on an
        interrupt), so running it again continues where it stopped."""
        with locked(self._folder()):  # one process encodes; the others wait, then find it done
            self._refresh(repair=True)
            return self._precompute(texts, device, progress)

    def _precompute(self, texts: Sequence[str], device: torch.device | str, progress: bool) -> int:
        todo = self.missing(texts)
        columns = [TextColumn("encoding captions"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]:,.0f}/s"), TimeRemainingColumn()]
        started = time.perf_counter()
        try:
            with Progress(*columns, console=Console(stderr=True), disable=not progress or not todo,
                          transient=True) as bar:
                task = bar.add_task("encode", total=len(todo), rate=0.0)
                for start in range(0, len(todo), self.batch_size):
                    chunk = todo[start:start + self.batch_size]
                    self._encode(chunk, torch.device(device))
                    done = start + len(chunk)
                    bar.update(task, completed=done, rate=done / max(time.perf_counter() - started, 1e-9))
                    if self._flush_due():
                        self.flush()
        finally:
            self.flush()
        return len(todo)

    def missing(self, texts: Sequence[str]) -> list[tuple[str, str]]:
        """(key, text) of each distinct caption of `texts` not cached yet."""
        self._first_look()
        return list({text_key(t): t for t in texts if text_key(t) not in self.memory}.items())

    def _flush_due(self) -> bool:
        return bool(self.pending) and (sum(v.shape[0] for v in self.pending.values()) >= self.flush_rows
                                       or time.monotonic() - self.last_flush > self.flush_seconds)

    def _encode(self, items: list[tuple[str, str]], device: torch.device) -> None:
        with torch.no_grad():
            rows = self.encode([t for _, t in items], device)
        self.encoded += len(items)
        for (k, _), row in zip(items, rows):
            row = row.detach().float().cpu().contiguous()
            self.memory[k] = self.pending[k] = row

    def flush(self) -> None:
        """Write what was encoded since the last flush as one new shard."""
        self.last_flush = time.monotonic()
        if not self.pending or self.folder is None:
            return
        self.read.add(_write_shard(self.folder, self.pending).name)
        self.pending = {}

    def _folder(self) -> Path:
        if self.folder is None:
            self.folder = cache_dir("embeddings", self.key)
        return self.folder

    def _first_look(self) -> None:
        """Read the shards on disk once; many of them, or any without a checksum (an older
        cvaekit's), are merged into one, under the lock."""
        if self.folder is not None:
            return
        self._refresh(repair=False)
        if len(self.read) > self.max_shards or any(not SHARD.fullmatch(name) for name in self.read):
            with locked(self.folder):
                self._refresh(repair=True)
                old = [self.folder / name for name in self.read]
                self.read = {_write_shard(self.folder, self.memory).name}
                for shard in old:
                    shard.unlink(missing_ok=True)

    def _refresh(self, repair: bool) -> None:
        """Read the shards not read yet (what other processes wrote since). With `repair` (under
        the lock) a damaged shard is said and removed: its captions are encoded again."""
        for shard in sorted(self._folder().glob("shard-*.pt")):
            if shard.name in self.read:
                continue
            entries, problem = _read_shard(shard)
            if problem and repair:
                say_repaired(f"The text-embedding cache '{self.folder}'", problem,
                             "removed it; its captions are encoded again")
                shard.unlink(missing_ok=True)
            elif entries is not None:
                self.memory.update(entries)
                self.read.add(shard.name)


SHARD = re.compile(r"shard-\d+-[0-9a-f]{8}-(\d+)-([0-9a-f]{32})\.pt")  # the bytes and checksum it holds


def _write_shard(folder: Path, entries: dict[str, torch.Tensor]) -> Path:
    keys = list(entries)
    rows = [entries[k] for k in keys]
    state = {"keys": keys, "lengths": torch.tensor([r.shape[0] for r in rows]),
             "data": torch.cat(rows) if rows else torch.empty(0)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    path = folder / f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}-{len(data)}-{checksum(data)[:32]}.pt"
    write_atomic(path, data)
    return path


def _read_shard(path: Path) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """A shard's entries, after checking its bytes against the size and checksum in its name
    (one without them, an older cvaekit's, is read as it is); (None, what is wrong) when it
    is damaged, (None, None) when it is gone (merged by another process)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    named = SHARD.fullmatch(path.name)
    problem = damage(data, {"bytes": int(named[1]), "sha256": named[2]}, path.name) if named else None
    if problem:
        return None, problem
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        return dict(zip(state["keys"], state["data"].split(state["lengths"].tolist()))), None
    except (RuntimeError, KeyError, ValueError, EOFError, AttributeError) as exc:
        return None, f"{path.name} cannot be read ({type(exc).__name__})"


_live: weakref.WeakSet[EmbeddingCache] = weakref.WeakSet()
_shared: dict[tuple[str, str], EmbeddingCache] = {}


@atexit.register
def _flush_all() -> None:
    for cache in list(_live):
        try:
            cache.flush()
        except OSError:
            pass


def shared_cache(key: str, encode: Encode, batch_size: int = 256) -> EmbeddingCache:
    """The process's one cache for `key` under the current cache root (so two conditioners
    on the same model share what was encoded)."""
    ident = (str(cache_dir()), key)
    if ident not in _shared:
        _shared[ident] = EmbeddingCache(key, encode, batch_size)
    return _shared[ident]


class FrozenTextConditioner(nn.Module):
    """Captions -> a Condition through an EmbeddingCache. The encoder itself lives outside
    the module tree (so checkpoints never carry its weights); only an empty, non-persistent
    buffer follows the model's device, to say where outputs belong."""

    def __init__(self, cache: EmbeddingCache, dim: int, tokens: bool):
        super().__init__()
        self.cache, self.dim, self.tokens = cache, dim, tokens
        self.register_buffer("device_probe", torch.empty(0), persistent=False)

    def prepare(self, texts: Sequence[str], device: torch.device | str = "cpu",
                progress: bool = True) -> dict[str, int]:
        """Encode (and store) every distinct caption of `texts` ahead of training, as
        `cvaekit prepare` does: how many distinct ones, how many were cached already, how
        many were encoded now."""
        distinct = len(set(texts))
        encoded = self.cache.precompute(texts, device, progress)
        return {"distinct": distinct, "cached": distinct - encoded, "encoded": encoded}

    def parse(self, texts: list[str]) -> list[str]:
        """Captions are taken as they are; anything but text is an error."""
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise UnknownConditionError(f"This conditioner takes captions (text), got {bad[0]!r}.")
        return list(texts)

    def forward(self, texts: Sequence[str]) -> torch.Tensor | Condition:
        device = self.device_probe.device
        rows = self.cache.get(list(texts), device)
        vector = torch.stack([r[0] for r in rows]).to(device, non_blocking=True)
        if not self.tokens:
            return vector
        tokens = pad_sequence([r[1:] for r in rows], batch_first=True).to(device, non_blocking=True)
        lengths = torch.tensor([r.shape[0] - 1 for r in rows], device=device)
        mask = torch.arange(tokens.shape[1], device=device)[None, :] < lengths[:, None]
        return Condition(vector, tokens, mask)
