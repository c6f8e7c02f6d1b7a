"""Caches that processes share: one fills, the others wait and read it; nothing is decoded or
encoded twice; a damaged cache file is found by its manifest and built again, never read."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cvaekit.caches.files import CacheRepairedWarning
from cvaekit.caches.images import FileReader, cached_images
from cvaekit.caches.text import EmbeddingCache

CAPTIONS = [f"a caption number {i % 12}" for i in range(30)]  # 12 distinct


class CountingReader(FileReader):
    """Images from files, each open counted in a file (one line per decode, any process)."""

    def __init__(self, paths, counter: str):
        super().__init__(paths)
        self.counter = counter

    def open(self, i):
        with open(self.counter, "a") as f:
            f.write(f"{i}\n")
        time.sleep(0.005)  # slow enough that the other process arrives while this one decodes
        return super().open(i)


def counting_encode(texts, device):
    with open(os.environ["TEST_ENCODED"], "a") as f:
        f.writelines(f"{t}\n" for t in texts)
    time.sleep(0.05)
    return [torch.full((1, 3), float(len(t))) + torch.arange(3.0) for t in texts]


def pictures(folder: Path, n: int = 24) -> list[Path]:
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [folder / f"{i}.png" for i in range(n)]
    for p in paths:
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(p)
    return paths


def images(paths, counter: str):
    return cached_images("shared", "pics", ["shared"], lambda: (CountingReader(paths, counter), list(range(len(paths)))),
                         size=8, progress=False, workers=1)


def _fill_both(start, paths, counter, text_way, out):
    start.wait()  # both processes start filling at the same moment
    cache = images(paths, counter)
    texts = EmbeddingCache("shared-text", counting_encode, batch_size=4)
    if text_way == "prepare":
        texts.precompute(CAPTIONS, progress=False)
    rows = texts.get(CAPTIONS)
    out.put((cache.images.numpy().copy(), torch.stack(rows).numpy()))  # numpy: pickled whole, not shared


@pytest.mark.parametrize("text_way", ["prepare", "run"])
def test_two_processes_filling_the_same_caches_at_once_decode_and_encode_each_item_once(tmp_path, monkeypatch,
                                                                                       text_way):
    """Two processes (two `prepare`s, or two `run`s meeting captions as batches do) fill the
    same image and text caches at once: one decodes, the other waits for the lock and reads."""
    monkeypatch.setenv("CVAEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TEST_ENCODED", str(tmp_path / "encoded.txt"))
    paths, counter = pictures(tmp_path / "pics"), str(tmp_path / "decoded.txt")
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(2), context.SimpleQueue()
    workers = [context.Process(target=_fill_both, args=(start, paths, counter, text_way, out)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    (images_a, rows_a), (images_b, rows_b) = out.get(), out.get()
    assert sorted(map(int, Path(counter).read_text().split())) == list(range(len(paths)))  # each decoded once
    assert sorted((tmp_path / "encoded.txt").read_text().splitlines()) == sorted(set(CAPTIONS))  # each encoded once
    assert np.array_equal(images_a, images_b) and np.array_equal(rows_a, rows_b)
    folder = next((Path(os.environ["CVAEKIT_CACHE"]) / "shared").iterdir())
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["images.u8", "meta.json"]


def test_a_truncated_image_cache_is_found_said_and_decoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("CVAEKIT_CACHE", str(tmp_path / "cache"))
    paths, counter = pictures(tmp_path / "pics", 6), str(tmp_path / "decoded.txt")
    first = images(paths, counter).images.clone()
    data = next((tmp_path / "cache" / "shared").iterdir()) / "images.u8"
    os.truncate(data, data.stat().st_size // 2)  # a crash or a full disk
    with pytest.warns(CacheRepairedWarning, match=r"images.u8 is 576 bytes where its manifest says 1,152 .*decoding"):
        again = images(paths, counter)
    assert torch.equal(again.images, first) and len(Path(counter).read_text().split()) == 12
    with open(data, "r+b") as f:  # one byte flipped: the size is right, the checksum is not
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.warns(CacheRepairedWarning, match="images.u8 does not match its checksum"):
        assert torch.equal(images(paths, counter).images, first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # intact now: read, not checked into a rebuild again
        assert torch.equal(images(paths, counter).images, first)


def test_a_text_shard_with_flipped_bytes_is_removed_said_and_encoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("CVAEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TEST_ENCODED", str(tmp_path / "encoded.txt"))
    first = torch.stack(EmbeddingCache("t", counting_encode).get(CAPTIONS))
    (shard,) = (tmp_path / "cache" / "embeddings" / "t").glob("shard-*.pt")
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # in the tensor's bytes: torch.load alone would read it as garbage
    shard.write_bytes(data)
    with pytest.warns(CacheRepairedWarning, match=r"shard-.*\.pt does not match its checksum.*encoded again"):
        again = torch.stack(EmbeddingCache("t", counting_encode).get(CAPTIONS))
    assert torch.equal(again, first)
    assert len((tmp_path / "encoded.txt").read_text().splitlines()) == 2 * len(set(CAPTIONS))
    assert not shard.exists()


def test_two_runs_started_in_the_same_second_get_different_folders(tmp_path, monkeypatch):
    from cvaekit.store import runs

    monkeypatch.setattr(runs.time, "strftime", lambda fmt: "20250101-000000")  # the same second for all
    start, made = threading.Barrier(8), []

    def one():
        start.wait()
        made.append(runs.new_folder(tmp_path / "runs", "same"))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8 and all(p.is_dir() for p in made)
    assert sorted(p.name for p in made)[:2] == ["same-20250101-000000", "same-20250101-000000-2"]


def test_a_verified_cache_file_is_not_read_whole_again_until_it_changes(tmp_path, monkeypatch):
    from cvaekit.caches import files

    data = tmp_path / "images.u8"
    data.write_bytes(b"x" * 1000)
    old = time.time_ns() - 10 * 10**9  # written well before it is checked: a stamp is trusted
    os.utime(data, ns=(old, old))
    expected = files.manifest(data)
    reads, whole = [], files.checksum
    monkeypatch.setattr(files, "checksum", lambda source: reads.append(source) or whole(source))
    assert files.damage(data, expected) is None and len(reads) == 1
    assert files.damage(data, expected) is None and len(reads) == 1  # stamped: not read again
    with open(data, "r+b") as f:  # a byte flipped: the mtime moves, the stamp no longer holds
        f.write(b"y")
    assert "does not match its checksum" in files.damage(data, expected) and len(reads) == 2
    fresh = tmp_path / "fresh.u8"
    fresh.write_bytes(b"z" * 10)  # written just now: its stamp could share the write's mtime tick
    fresh_expected = {"bytes": 10, "sha256": whole(fresh)}
    for _ in range(2):
        assert files.damage(fresh, fresh_expected) is None
    assert len(reads) == 4
