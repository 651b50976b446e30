"""Shared test helpers: the real-data folder (skipped when absent) and tiny run configs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED_DATA = Path(os.environ.get("CRITBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MEDMNIST_DIR = SHARED_DATA / "medmnist"
CIFAR10_DIR = SHARED_DATA / "cifar10-jpg"


def needs(path: Path):
    """Skip marker for tests that need a real file or folder from ../shared/data."""
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent")


# Small, fast settings for training runs in tests: a narrow network on tiny synthetic images.
TINY = dict(epochs=2, width=0.125, size=8, device="cpu", patience=0)


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch):
    """Tests never see the developer's $CRITBENCH_DATA."""
    monkeypatch.delenv("CRITBENCH_DATA", raising=False)
