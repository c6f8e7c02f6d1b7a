"""The benchmarks run end to end at a tiny size (their figures are for people, not asserted)."""

import importlib.util
import os
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
    assert len(list((tmp_path / "pictures" / "train").glob("*.png"))) == 64
    assert len(list((tmp_path / "pictures" / "test").glob("*.png"))) == 16
    assert "recon" in done.stdout


@pytest.mark.slow
def test_the_decoders_benchmark_trains_the_recipe_both_ways(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "decoders.py"), str(ROOT / "recipes" / "fashion_conv.yaml"),
                           "--set", "train.limit=256", "--set", "train.epochs=1", "--set", "eval.limit=64",
                           "--set", "eval.metrics=[nelbo]", "--set", "model.encoder.channels=[8, 8]",
                           "--set", "model.decoder.channels=[8, 8]", "--n", "16", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for figure in ("nelbo", "checkerboard", "seconds"):
        assert f"│ {figure} " in done.stdout, figure
    assert (tmp_path / "deconv").is_dir() and (tmp_path / "upsample").is_dir()


def run_peers(tmp_path, hide_pythae: bool, *flags: str) -> str:
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    if hide_pythae:  # a `pythae` that fails to import, ahead of any installed one
        stub = tmp_path / "hidden" / "pythae"
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text("raise ImportError('hidden for this test')\n")
        env["PYTHONPATH"] = os.pathsep.join([str(stub.parent), str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--tiny", *flags], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not list((tmp_path / "tmp").glob("cvaekit-peers-*"))  # its trained models are measured, not kept
    return done.stdout


def rows(out: str) -> dict[tuple[str, str], list[str]]:
    table = out[out.index("Statically binarized Fashion-MNIST"):]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in table.splitlines() if line.startswith("│")]
    return {(c[0], c[1]): c[2:] for c in cells}


@pytest.mark.slow
def test_the_peers_benchmark_compares_with_pythae_where_it_is_installed(tmp_path):
    table = rows(run_peers(tmp_path, False, "--hier"))
    assert set(table) == {(m, lib) for m in ("VAE", "IWAE", "VAMP") for lib in ("pythae", "cvaekit")} | {("HIER", "cvaekit")}
    for model in ("VAE", "IWAE", "VAMP", "HIER"):
        rate, own, _, _, wall = table[model, "cvaekit"]
        assert float(rate.replace(",", "")) > 0 and "±" in own and float(wall) >= 0
    if importlib.util.find_spec("pythae") is not None:
        for model in ("VAE", "IWAE", "VAMP"):
            rate, own, theirs_by_ours, paired, _ = table[model, "pythae"]
            assert float(rate.replace(",", "")) > 0 and "±" in own and "±" in theirs_by_ours and "±" in paired


@pytest.mark.slow
def test_the_peers_benchmark_without_pythae_says_how_to_install_it(tmp_path):
    out = run_peers(tmp_path, hide_pythae=True)
    assert "pythae is not installed" in out and "pip install pythae" in out
    table = rows(out)
    assert table["VAE", "pythae"][0] == "not installed"
    assert "±" in table["IWAE", "cvaekit"][1]


def test_the_save_cost_benchmark_prints_ms_per_save_and_per_step(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "save_cost.py"), "--saves", "1", "--steps", "1",
                           "--recipes", "fashion_onehot", "--dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    header, row = done.stdout.strip().splitlines()
    assert "ms/save" in header and "ms/step" in header and row.startswith("fashion_onehot")


def test_the_step_floor_benchmark_counts_a_steps_flops_against_the_matrix_product(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "step_floor.py"), "--steps", "1",
                           "--recipe", str(ROOT / "recipes" / "fashion_onehot.yaml")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    step = next(line for line in done.stdout.splitlines() if line.startswith("| the training step"))
    gflop, seconds, rate = (float(v) for v in step.split("|")[2:5])
    assert gflop > 0 and seconds > 0 and rate == pytest.approx(gflop / seconds, rel=0.05)
    assert "1024x1024 matrix product" in done.stdout and "aten.addmm" in done.stdout


def test_the_ema_cost_benchmark_prints_both_medians_and_their_ratio(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ema_cost.py"), "--rounds", "1", "--epochs", "1",
                           "--images", "256"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "without: median" in done.stdout and "ema 0.999: median" in done.stdout
    assert "ratio with/without: " in done.stdout


@pytest.mark.slow
def test_the_caption_fidelity_benchmark_trains_a_guided_run_and_prints_its_guided_samples(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "caption_fidelity.py"),
                           str(ROOT / "recipes" / "shapes_best.yaml"), "--set", "train.limit=256", "--set", "train.epochs=1",
                           "--set", "data.n_test=64", "--set", "eval.limit=64", "--set", "train.cond_dropout=0.1", "--set", "train.processes=1",
                           "--set", f"runs_dir={tmp_path}", "--set", "fit_prior=null", "-n", "64", "--guidance", "2"],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| samples, guidance 2 |" in done.stdout and "| samples, temperature 1 |" in done.stdout


@pytest.mark.slow
def test_the_guidance_benchmark_prints_each_way_at_each_scale(tmp_path):
    from cvaekit.training import train

    run = train(ROOT / "recipes" / "shapes_best.yaml", overrides=[
        "train.epochs=1", "train.processes=1", "train.cond_dropout=0.2", "data.n_train=256", "data.n_test=32",
        "eval.metrics=[nelbo]", "eval.limit=32", "fit_prior=null", f"runs_dir={tmp_path}"], progress=False)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "guidance.py"), str(run), "-n", "32",
                           "--scales", "1.5,2"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for way in ("output", "image", "latent"):
        assert f"| {way} | " in done.stdout
    assert "| guided in | scale 1.5 | scale 2 |" in done.stdout
