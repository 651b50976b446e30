"""The benchopt pattern: every registered dataset x every registered method trains on tiny data."""
import math

import pytest

from benchmarks.config import RunConfig
from benchmarks.methods import list_methods
from benchmarks.runner import run_benchmark
from datasets import list_datasets
from tests.fakes import fake_source


@pytest.mark.parametrize("method", list_methods())
@pytest.mark.parametrize("dataset", list_datasets())
def test_every_dataset_and_method_trains_and_scores(dataset, method, tmp_path, monkeypatch):
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
