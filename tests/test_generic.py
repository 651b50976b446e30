"""The benchopt pattern: registered datasets x registered methods train and score on tiny data.

Every method runs on both synthetic datasets (2D and 3D); every dataset adapter, fed the tiny
stand-in it registers (its real on-disk format), runs under the three core methods. The full
cross product costs more CI time than it adds coverage: a method only sees a dataset through
the same in-memory tensors. The test knows no dataset by name beyond the synthetic pair.

CRITBENCH_TEST_DEVICE (default cpu) runs the same pairs on another device: benchmarks/gpu_session.sh
runs them on CUDA."""
import math
import os

import pytest

from benchmarks.core.config import RunConfig
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from benchmarks.core.records import record_problem
from benchmarks.methods import list_methods
from benchmarks.methods.base import methods_for_task
from datasets import create_dataset, dataset_fingerprint, get_dataset_entry, list_datasets

CORE_METHODS = ("bce", "aucm", "alm")
DEVICE = os.environ.get("CRITBENCH_TEST_DEVICE", "cpu")
# Every method on the synthetic pair of its task framing: binary on synthetic2d/3d, multi-class
# (--task multiclass) on synthetic2d_mc/3d_mc.
EVERY_METHOD = {(d, m) for d in ("synthetic2d", "synthetic3d") for m in methods_for_task("binary")} | \
    {(d, m) for d in ("synthetic2d_mc", "synthetic3d_mc") for m in methods_for_task("multiclass")}
PAIRS = sorted(EVERY_METHOD | {(d, m) for d in list_datasets() for m in CORE_METHODS})


def stand_in(name, folder, monkeypatch):
    """Write `name`'s registered stand-in under `folder` and apply its patches for this test."""
    written = get_dataset_entry(name).stand_in(folder)
    for mapping, key, value in written.patches:
        monkeypatch.setitem(mapping, key, value)
    return written


@pytest.mark.parametrize("dataset,method", PAIRS)
def test_dataset_and_method_train_and_score(dataset, method, tmp_path, monkeypatch):
    source = stand_in(dataset, tmp_path, monkeypatch)
    epochs = 2 if (dataset, method) in EVERY_METHOD else 1  # 2: a multi-stage method (aucm_ce) needs an epoch per stage
    task = "multiclass" if method in methods_for_task("multiclass") else "binary"
    config = RunConfig(dataset=dataset, method=method, epochs=epochs, width=0.125, batch_size=16,
                       device=DEVICE, patience=0, task=task, **source.run_kwargs())
    record = run_benchmark(resolve_config(config), progress=False)
    test = record["dataset"]["splits"]["test"]
    assert record["status"] == "complete" and record_problem(record) is None
    assert len(record["test_scores"]["y_score"]) == test["n"]
    assert sum(record["test_scores"]["y_true"]) == test["positives"]
    assert all(math.isfinite(s) for s in record["test_scores"]["y_score"])
    assert 0.0 <= record["test"]["auc"] <= 1.0
    if task == "multiclass":  # what MedMNIST v2 reports, on every label, and the test confusion matrix
        classes = record["multiclass"]
        assert 0.0 <= classes["test"]["acc"] <= 1.0 and 0.0 <= classes["test"]["auc"] <= 1.0
        assert sum(map(sum, classes["confusion_matrix"])) == test["n"] == sum(test["class_counts"])


@pytest.mark.parametrize("dataset", list_datasets())
def test_fingerprint_is_the_recorded_source_checksum(dataset, tmp_path, monkeypatch):
    kwargs = stand_in(dataset, tmp_path, monkeypatch).load_kwargs()
    loaded = create_dataset(dataset, **kwargs)
    assert dataset_fingerprint(dataset, **kwargs) == loaded.source_md5
    assert (get_dataset_entry(dataset).fingerprint is None) == (loaded.source_md5 is None)
    assert loaded.augment == get_dataset_entry(dataset).augment  # what resolve_config knows before loading


def test_every_registered_name_is_covered():
    assert {d for d, _ in PAIRS} == set(list_datasets())
    assert {m for _, m in PAIRS} == set(list_methods())


def test_every_registered_dataset_has_a_stand_in():
    assert [name for name in list_datasets() if get_dataset_entry(name).stand_in is None] == []
