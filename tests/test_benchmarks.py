"""The throughput benchmark runs end to end at a tiny size (its figures are for people, not asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_throughput_benchmark_prints_every_way_for_a_recipe(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--tiny", "--skip-compile",
                           "--recipes", "coco_early"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout[done.stdout.index("Training throughput"):]
    for way in ("study loop", "cvaekit", "+ on device", "+ bf16", "+ channels_last", "bare step"):
        assert f"│ {way} " in table, way
    assert "decoding the images and encoding the captions once took" in done.stdout


@pytest.mark.slow
def test_the_own_captions_benchmark_prints_both_ways(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "own_captions.py"), "--tiny", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checkerboard" in done.stdout and "bits/dim" in done.stdout
    assert done.stdout.count("/samples/") == 2
    assert len(list((tmp_path / "pictures").glob("*.png"))) == 64
