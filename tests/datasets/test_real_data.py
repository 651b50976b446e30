"""Short runs on the real files in tests.conftest.SHARED_DATA: $CRITBENCH_SHARED_DATA, else
$CRITBENCH_DATA, else ../shared/data (skipped when absent)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MEDMNIST_DIR, needs

REPO = Path(__file__).resolve().parents[2]


def run(tmp_path, *args):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--data-dir", str(MEDMNIST_DIR), "--out", str(tmp_path),
         "--device", "cpu", "--quiet", *args],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(Path(result.stdout.strip().splitlines()[-1]).read_text())


@needs(MEDMNIST_DIR / "pneumoniamnist.npz")
def test_short_pneumoniamnist_run(tmp_path):
    record = run(tmp_path, "--dataset", "pneumoniamnist", "--method", "bce", "--epochs", "1",
                 "--max-train-samples", "256", "--width", "0.25")
    dataset = record["dataset"]
    assert dataset["source_md5"] == "28209eda62fecd6e6a2d98b1501bb15f"
    assert dataset["splits"]["train"]["n"] == 256 and dataset["splits"]["test"] == {"n": 624, "positives": 390}
    assert len(record["test_scores"]["y_score"]) == 624
    assert record["test"]["auc"] > 0.6, "even one small epoch learns pneumonia vs normal"


@needs(MEDMNIST_DIR / "vesselmnist3d.npz")
def test_short_vesselmnist3d_run(tmp_path):
    record = run(tmp_path, "--dataset", "vesselmnist3d", "--method", "alm", "--epochs", "1",
                 "--max-train-samples", "64", "--stem", "standard", "--width", "0.25")
    assert record["dataset"]["critical_class"] == "aneurysm"
    assert record["dataset"]["splits"]["test"] == {"n": 382, "positives": 43}
    assert record["config"]["batch_size"] == 32 and record["dataset"]["shape"] == [1, 28, 28, 28]
