"""Training throughput of the long-text CVAE: the study's loop against cvaekit's, side by side.

It writes its own COCO-format set (N synthetic 640x480 JPEGs, 5 captions each) and a CLIP of
ViT-B/32's text dimensions with random weights (saved with save_pretrained, so the text cost
is real), then trains `coco_midinject` and `coco_early` a few epochs each way and prints one
table: images/s of the last epoch, peak device memory, and model FLOP utilisation (the FLOPs
of one training step, counted with torch.utils.flop_counter, over the device's peak), for

  study loop      a DataLoader decoding JPEGs per item with workers, the CLIP text tower on
                  every batch, float32: the loop as the study wrote it (written here);
  cvaekit         the recipe as it is, batches from the host;
  + on device     train.data_on_device: images and caption table on the device;
  + bf16          and train.amp;
  + channels_last and train.channels_last;
  + compile       and train.compile;
  bare step       the model's step on one resident batch, repeated: the ceiling.

cvaekit decodes each image and encodes each caption once (its caches); that one-time cost is
printed apart. On a CPU it runs at a small size (the default 64 px); on a GPU use --size 224.

    python benchmarks/throughput.py                       # CPU: 256 images at 64 px
    python benchmarks/throughput.py --size 224 --images 4096 --epochs 3      # a GPU
    python benchmarks/throughput.py --tiny                # seconds: what the test suite runs
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cvaekit  # noqa: F401  (before torch: it has OpenMP wait passively, so runs can share the cores)
import numpy as np
import torch
import yaml
from PIL import Image
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the offline CLIP builder the tests use

import tiny_clip  # noqa: E402

from cvaekit.condition import Condition  # noqa: E402
from cvaekit.data import DataInfo  # noqa: E402
from cvaekit.model import build_model  # noqa: E402
from cvaekit.plugins import get_registry  # noqa: E402
from cvaekit.recipe import load_recipe  # noqa: E402
from cvaekit.runs import RunDir  # noqa: E402

console = Console(width=130)

# Dense peak TFLOP/s by device name (bf16, fp32), from the vendors' data sheets.
PEAKS = {"H100": (989.0, 67.0), "H200": (989.0, 67.0), "A100": (312.0, 19.5), "L4": (121.0, 30.3),
         "A10": (125.0, 31.2), "V100": (125.0, 15.7), "T4": (65.0, 8.1)}


def write_coco(root: Path, n: int, n_val: int, seed: int = 0) -> Path:
    """COCO 2017's layout: train2017/, val2017/ and annotations/captions_*2017.json, with
    smooth random 640x480 JPEGs (so decoding costs what a photo costs) and 5 captions each."""
    rng = np.random.default_rng(seed)
    words = ["a cat", "two dogs", "a red bus", "a kite", "people", "a plate of food", "a train", "a boat"]
    places = ["on a street", "in a park", "near the water", "on a table", "in a kitchen", "under a blue sky"]
    for split, count, first in (("train", n, 1), ("val", n_val, 100_000)):
        folder = root / f"{split}2017"
        folder.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for k in range(count):
            small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
            picture = Image.fromarray(small).resize((640, 480), Image.BICUBIC)
            name = f"{first + k:012d}.jpg"
            picture.save(folder / name, quality=90)
            images.append({"id": first + k, "file_name": name, "width": 640, "height": 480})
            for j in range(5):
                text = (f"{words[rng.integers(len(words))]} {places[rng.integers(len(places))]}, "
                        f"picture {first + k} take {j}")  # every caption distinct, as in COCO
                annotations.append({"id": (first + k) * 10 + j, "image_id": first + k, "caption": text})
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"captions_{split}2017.json").write_text(
            json.dumps({"images": images, "annotations": annotations, "licenses": [], "info": {}}))
    return root


def write_clip(folder: Path, tiny: bool) -> Path:
    """ViT-B/32's text tower (512 wide, 12 layers, 8 heads, 512-d projection), random weights;
    the vision tower stays tiny (only the text tower runs here)."""
    if tiny:
        return tiny_clip.build_tiny_clip(folder, seed=0)
    return tiny_clip.build_tiny_clip(folder, seed=0, hidden=512, layers=12, heads=8, projection_dim=512,
                                     vision_hidden=32, vision_layers=1)


def recipe_for(name: str, root: Path, clip: Path, size: int, epochs: int, runs: Path, batch_size: int) -> dict:
    data = yaml.safe_load((ROOT / "recipes" / f"{name}.yaml").read_text())
    data["data"].update(root=str(root), subset=1.0, image_size=size)
    data["model"]["conditioner"]["model"] = str(clip)
    data["train"].update(epochs=epochs, checkpoint_every=epochs, batch_size=batch_size)
    data["eval"] = {"metrics": ["nelbo"], "limit": 16, "samples_per_condition": 1}
    data["runs_dir"] = str(runs)
    return data


def peak_flops(device: torch.device, bf16: bool) -> float:
    """The device's peak FLOP/s: the data sheet's for a known GPU, else a large matmul's."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (b, f) in PEAKS.items():
            if key in name:
                return (b if bf16 else f) * 1e12
    a = torch.randn(1024, 1024, device=device)
    for _ in range(2):
        a @ a
    start, reps = time.perf_counter(), 20
    for _ in range(reps):
        a @ a
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * 1024 ** 3 * reps / (time.perf_counter() - start)


def step_flops(model, images: torch.Tensor, cond: Condition) -> int:
    """FLOPs of one training step (forward and backward) on this batch."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(images, cond)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


class JpegCaptions(torch.utils.data.Dataset):
    """The study's data path: each item decoded from its JPEG, resized and cropped, every epoch."""

    def __init__(self, root: Path, size: int):
        from pycocotools.coco import COCO
        from torchvision import transforms

        with open(os.devnull, "w") as quiet, _redirect(quiet):
            coco = COCO(str(root / "annotations" / "captions_train2017.json"))
        self.root, self.ids, self.coco = root / "train2017", sorted(coco.imgs), coco
        self.transform = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor()])

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        image_id = self.ids[i]
        image = Image.open(self.root / self.coco.imgs[image_id]["file_name"]).convert("RGB")
        captions = [a["caption"] for a in self.coco.imgToAnns[image_id]]
        return self.transform(image), random.choice(captions)


class _redirect:
    def __init__(self, target):
        self.target = target

    def __enter__(self):
        self.saved, sys.stdout = sys.stdout, self.target

    def __exit__(self, *exc):
        sys.stdout = self.saved


def study_loop(recipe: dict, clip: Path, epochs: int, device: torch.device, workers: int) -> dict:
    """The study's training loop: JPEGs decoded per item, CLIP's text tower on every batch, float32."""
    from transformers import CLIPModel, CLIPTokenizer

    registry = get_registry()
    spec = load_recipe(recipe, registry=registry)
    data = JpegCaptions(Path(recipe["data"]["root"]), recipe["data"]["image_size"])
    loader = torch.utils.data.DataLoader(data, batch_size=spec.train.batch_size, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0, pin_memory=device.type == "cuda")
    tokenizer = CLIPTokenizer.from_pretrained(clip)
    text = CLIPModel.from_pretrained(clip).to(device).eval()
    info = DataInfo(data[0][0].shape, None, {}, ["a caption"])
    model = build_model(spec.model, info, registry).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.train.lr)
    rate = 0.0
    for _ in range(epochs):
        seen, start = 0, time.perf_counter()
        for images, captions in loader:
            images = images.to(device, non_blocking=True)
            with torch.no_grad():
                tokens = tokenizer(list(captions), padding=True, truncation=True, return_tensors="pt").to(device)
                out = text.text_model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
                cond = Condition.of(text.text_projection(out.pooler_output))
            loss = model(images, cond)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += images.shape[0]
        if device.type == "cuda":
            torch.cuda.synchronize()
        rate = seen / (time.perf_counter() - start)
    return {"images_per_s": rate}


def bare_step(recipe: dict, device: torch.device, steps: int) -> tuple[dict, object, torch.Tensor, Condition]:
    """The model's step on one batch already on the device, repeated: nothing but the model."""
    registry = get_registry()
    spec = load_recipe(recipe, registry=registry)
    size, b = recipe["data"]["image_size"], spec.train.batch_size
    info = DataInfo((3, size, size), None, {}, ["a caption"])
    model = build_model(spec.model, info, registry).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.train.lr)
    images = torch.rand(b, 3, size, size, device=device)
    cond = Condition.of(torch.randn(b, model.conditioner.dim, device=device))
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        loss = model(images, cond)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"images_per_s": steps * b / (time.perf_counter() - start)}, model, images, cond


def cvaekit_run(recipe: dict, sets: dict) -> dict:
    """cvaekit's own loop with these train keys: the last epoch's images/s."""
    from cvaekit.training import train

    data = {**recipe, "train": {**recipe["train"], **sets}}
    run = train(data, progress=False)
    last = [r for r in RunDir(run).records() if r["kind"] == "train"][-1]
    return {"images_per_s": last["images_per_s"]}


def measure(device: torch.device, fn, *args) -> dict:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    out = fn(*args)
    if device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=256, help="training JPEGs written")
    parser.add_argument("--size", type=int, default=64, help="image side the models train at (the study: 224)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per way (the last one is timed)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="the study loop's DataLoader workers")
    parser.add_argument("--recipes", nargs="+", default=["coco_midinject", "coco_early"])
    parser.add_argument("--skip-compile", action="store_true", help="leave out the train.compile row")
    parser.add_argument("--tiny", action="store_true", help="a tiny CLIP, 32 images at 32 px, one epoch: seconds")
    args = parser.parse_args()
    if args.tiny:
        args.images, args.size, args.epochs, args.batch_size, args.workers = 32, 32, 1, 16, 1
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    work = Path(tempfile.mkdtemp(prefix="cvaekit-throughput-"))
    atexit.register(shutil.rmtree, work, True)  # the trained runs are measured, not kept
    os.environ["CVAEKIT_CACHE"] = str(work / "cache")  # every cache starts empty: the one-time cost is real
    random.seed(0)
    torch.manual_seed(0)
    started = time.perf_counter()
    root = write_coco(work / "coco", args.images, max(8, args.images // 16))
    clip = write_clip(work / "clip", args.tiny)
    console.print(f"Wrote {args.images} JPEGs and a CLIP text tower in {time.perf_counter() - started:.0f} s "
                  f"({work}); device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, "
                  f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at the start.")
    ways = [("cvaekit", {"data_on_device": False}), ("+ on device", {"data_on_device": True}),
            ("+ bf16", {"data_on_device": True, "amp": True}),
            ("+ channels_last", {"data_on_device": True, "amp": True, "channels_last": True})]
    if not args.skip_compile:
        ways.append(("+ compile", {"data_on_device": True, "amp": True, "channels_last": True, "compile": True}))
    table = Table(title=f"Training throughput at {args.size} px, batch {args.batch_size}, {device.type} "
                        f"(last of {args.epochs} epochs)")
    for column in ("recipe", "way", "images/s", "x study loop", "x bare step", "peak GiB", "MFU"):
        table.add_column(column, justify="left" if column in ("recipe", "way") else "right")
    for name in args.recipes:
        recipe = recipe_for(name, root, clip, args.size, args.epochs, work / "runs", args.batch_size)
        from cvaekit.prepare import prepare

        prep = prepare(load_recipe(recipe), progress=False)
        console.print(f"{name}: decoding the images and encoding the captions once took "
                      f"{sum(prep.seconds.values()):.1f} s (cvaekit's caches; the study loop does it every epoch).")
        bare, model, images, cond = bare_step(recipe, device, steps=max(4, 2 * args.images // args.batch_size))
        flops = step_flops(model, images, cond) / images.shape[0]
        rows = [("study loop", measure(device, study_loop, recipe, clip, args.epochs, device, args.workers), False)]
        rows += [(way, measure(device, cvaekit_run, recipe, sets), sets.get("amp", False)) for way, sets in ways]
        rows.append(("bare step", bare, False))
        study = rows[0][1]["images_per_s"]
        peaks = {bf16: peak_flops(device, bf16) for bf16 in (False, True)}
        for way, result, bf16 in rows:
            rate = result["images_per_s"]
            mfu = rate * flops / peaks[bf16]
            peak = f"{result['peak_gib']:.2f}" if "peak_gib" in result else "-"
            table.add_row(name, way, f"{rate:,.0f}", f"{rate / study:.2f}", f"{rate / bare['images_per_s']:.2f}",
                          peak, f"{mfu:.1%}")
    console.print(table)
    console.print(f"FLOPs per image per step are counted with torch.utils.flop_counter; MFU is over "
                  f"{'the data sheet peak' if device.type == 'cuda' else 'a 1024x1024 float32 matmul measured here'}. "
                  f"On a CPU without native bf16, train.amp trains in float32. Total {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
