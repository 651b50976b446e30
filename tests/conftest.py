"""Shared test helpers: the real-data folder (skipped when absent) and tiny run configs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))

# The real data (medmnist/, cifar10-jpg/): $CRITBENCH_SHARED_DATA, else the $CRITBENCH_DATA the commands
# read (the tests themselves never see it: _no_env_data_dir), else ../shared/data beside the clone.
SHARED_DATA = Path(os.environ.get("CRITBENCH_SHARED_DATA") or os.environ.get("CRITBENCH_DATA")
                   or Path(__file__).resolve().parents[2] / "shared" / "data")
MEDMNIST_DIR = SHARED_DATA / "medmnist"
CIFAR10_DIR = SHARED_DATA / "cifar10-jpg"


def needs(path: Path):
    """Skip marker for tests that need a real file or folder from SHARED_DATA."""
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent")


# Small, fast settings for training runs in tests: a narrow network on tiny synthetic images.
TINY = dict(epochs=2, width=0.125, size=8, device="cpu", patience=0)
# The same as a suite: two methods on tiny synthetic data, 1 epoch (tests/sweep).
TINY_SUITE = """
seeds = [0, 1]
[run]
epochs = 1
width = 0.125
patience = 0
device = "cpu"
[[datasets]]
name = "synthetic2d"
size = 8
[[methods]]
name = "bce"
[[methods]]
name = "alm"
"""


def write_suite(folder: Path, text: str = TINY_SUITE, name: str = "tiny") -> Path:
    """`text` as the suite file `<folder>/<name>.toml`."""
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch):
    """Tests never see the developer's $CRITBENCH_DATA."""
    monkeypatch.delenv("CRITBENCH_DATA", raising=False)


@pytest.fixture(autouse=True)
def _own_cache_home(monkeypatch, tmp_path_factory):
    """Caches (CIFAR, NIfTI) and rescued records of tests go to a temporary folder, never ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache-home"))


@pytest.fixture
def one_thread():
    """Tiny networks train 4x faster on one thread than on two when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
