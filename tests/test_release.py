"""A release: the wheel and the sdist `python -m build` makes install into a fresh virtual
environment and run the quickstart by name, from a folder with no recipes/ in it.

Offline, without reinstalling torch: the fresh environment sees this one's third-party
packages through a .pth file naming a folder of links to them (cvaekit itself, and its
editable install, left out), so pip checks every dependency is there and installs only
cvaekit, with --no-index. `build` runs with --no-isolation for the same reason."""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def sh(*args, cwd=None, timeout=600) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what the venv holds
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    if importlib.util.find_spec("build") is None:
        pytest.skip("the release test builds with `python -m build`: pip install build")
    tmp = tmp_path_factory.mktemp("release")
    src = tmp / "src"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "*.egg-info", "build", "dist", "__pycache__", "runs", ".venv", "venv", ".pytest_cache", ".hypothesis"))
    sh(sys.executable, "-m", "build", "--no-isolation", "--outdir", tmp / "dist", src)
    return tmp / "dist"


def fresh_venv(folder: Path) -> Path:
    """A new virtual environment that sees this one's third-party packages, not cvaekit."""
    sh(sys.executable, "-m", "venv", "--without-pip", folder / "venv")
    deps = folder / "deps"
    deps.mkdir()
    for base in site.getsitepackages():
        for entry in Path(base).iterdir():
            name = entry.name.lower()
            if not (name.startswith(("cvaekit", "__editable__", "_cvaekit")) or name.endswith(".pth")
                    or (deps / entry.name).exists()):
                (deps / entry.name).symlink_to(entry)
    (site_packages,) = (folder / "venv" / "lib").glob("python3*/site-packages")
    (site_packages / "deps.pth").write_text(f"{deps}\n")
    return folder / "venv" / "bin"


@pytest.mark.parametrize("kind", ["whl", "tar.gz"])
def test_the_release_installs_fresh_and_runs_the_quickstart_by_name(dist, kind, tmp_path):
    (archive,) = dist.glob(f"cvaekit-*.{kind}")
    bin_ = fresh_venv(tmp_path)
    sh(sys.executable, "-m", "pip", "--python", bin_ / "python", "install", "--no-index", "--no-build-isolation", archive)
    where = sh(bin_ / "python", "-c", "import cvaekit; print(cvaekit.__file__)")
    assert where.startswith(str(tmp_path / "venv")), where  # this install, not the checkout
    from cvaekit import __version__

    assert sh(bin_ / "cvaekit", "--version").strip() == f"cvaekit {__version__}"
    assert "quickstart" in sh(bin_ / "cvaekit", "recipes")
    work = tmp_path / "work"
    work.mkdir()
    out = sh(bin_ / "cvaekit", "run", "quickstart", "-q", "--set", "train.epochs=1", "--set", "train.limit=256",
             "--set", "eval.limit=64", "--set", f"runs_dir={work / 'runs'}", cwd=work)
    (run,) = (work / "runs").iterdir()
    assert "Run folder:" in out and (run / "checkpoints" / "last.pt").is_file()
    assert "Wrote" in sh(bin_ / "cvaekit", "generate", run, "Bag", "-n", "2", "-o", work / "bag.png", cwd=work)
