"""The benchopt pattern: registered datasets x registered methods train and score on tiny data.

Every method runs on both synthetic datasets (2D and 3D); every dataset adapter, fed a tiny
stand-in in its real on-disk format, runs under the three core methods. The full cross product
(12 x 16 runs) costs more CI time than it adds coverage: a method only sees a dataset through
the same in-memory tensors."""
import math

import pytest

from benchmarks.core.config import RunConfig
from benchmarks.methods import list_methods
from benchmarks.engine.pipeline import run_benchmark
from datasets import list_datasets
from tests.fakes import fake_source

CORE_METHODS = ("bce", "aucm", "alm")
PAIRS = sorted({(d, m) for d in ("synthetic2d", "synthetic3d") for m in list_methods()}
               | {(d, m) for d in list_datasets() for m in CORE_METHODS})


@pytest.mark.parametrize("dataset,method", PAIRS)
def test_dataset_and_method_train_and_score(dataset, method, tmp_path, monkeypatch):
    source = fake_source(dataset, tmp_path, monkeypatch)
    config = RunConfig(dataset=dataset, method=method, epochs=1, width=0.125, batch_size=16,
                       device="cpu", patience=0, **source)
    record = run_benchmark(config, progress=False)
    test = record["dataset"]["splits"]["test"]
    assert record["status"] == "complete"
    assert len(record["test_scores"]["y_score"]) == test["n"]
    assert sum(record["test_scores"]["y_true"]) == test["positives"]
    assert all(math.isfinite(s) for s in record["test_scores"]["y_score"])
    assert 0.0 <= record["test"]["auc"] <= 1.0


def test_every_registered_name_is_covered():
    assert {d for d, _ in PAIRS} == set(list_datasets())
    assert {m for _, m in PAIRS} == set(list_methods())
