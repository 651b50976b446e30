"""`--imbalance R` on any dataset: exactly floor(negatives / R) training positives, every negative
kept, val and test untouched, seeded, and which positives were kept is recorded."""
import pytest
import torch

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from datasets import create_dataset
from datasets.base import seeded_generator
from datasets.subsample import imbalance_index
from tests.conftest import MEDMNIST_DIR, TINY, needs


@pytest.mark.parametrize("ratio, positives", [(10, 24), (20, 12), (24, 10), (25, 9), (240, 1), (1000, 1)])
def test_counts_are_exact_and_only_train_changes(ratio, positives):
    full = create_dataset("synthetic2d", size=8)  # train: 240 negatives, 24 positives
    cut = create_dataset("synthetic2d", size=8, imbalance=ratio)
    assert cut.train.positives == positives and len(cut.train) - cut.train.positives == 240
    for split in ("val", "test"):
        assert torch.equal(cut.splits[split].x, full.splits[split].x)
        assert torch.equal(cut.splits[split].y, full.splits[split].y)
    record = cut.record()
    assert record["imbalance"] == ratio
    assert record["imbalance_positives"]["available"] == 24 and record["imbalance_positives"]["kept"] == positives


def test_kept_positives_are_recorded_seeded_and_are_the_trained_ones():
    full = create_dataset("synthetic3d", size=8)
    a, b = (create_dataset("synthetic3d", size=8, imbalance=40) for _ in range(2))
    kept = a.notes["imbalance_positives"]["kept_index"]
    assert len(kept) == 6 and all(full.train.y[i] == 1 for i in kept)
    assert kept == b.notes["imbalance_positives"]["kept_index"] and a.tensor_md5() == b.tensor_md5()
    assert torch.equal(a.train.x[a.train.y == 1], full.train.x[kept])
    negatives = (full.train.y == 0).nonzero().flatten()
    assert torch.equal(a.train.x[a.train.y == 0], full.train.x[negatives])  # every negative, in order


def test_ratio_is_floored_exactly_for_decimal_ratios():
    y = torch.tensor([0] * 7 + [1] * 150, dtype=torch.uint8)
    keep = imbalance_index(y, 0.07, seeded_generator(0))  # 7 / 0.07 is 99.99999999999999 in floating point
    assert int(y[keep].sum()) == 100 and int((y[keep] == 0).sum()) == 7
    draws = {tuple(imbalance_index(y, 1.5, seeded_generator(seed)).tolist()) for seed in range(5)}
    assert len(draws) == 5 and all(len(d) == 7 + 4 for d in draws)


def test_impossible_or_invalid_ratios_are_refused():
    with pytest.raises(CritBenchError, match=r"--imbalance 5 needs 48 positives but train has only 24; .* 1:10.0"):
        create_dataset("synthetic2d", size=8, imbalance=5)
    with pytest.raises(CritBenchError, match=r"--imbalance must be positive"):
        create_dataset("synthetic2d", size=8, imbalance=0)


@needs(MEDMNIST_DIR / "vesselmnist3d.npz")
def test_vesselmnist3d_at_1_to_100_seeded():
    dataset = create_dataset("vesselmnist3d", data_dir=MEDMNIST_DIR, imbalance=100)
    kept = [create_dataset("vesselmnist3d", data_dir=MEDMNIST_DIR, imbalance=100, seed=seed).notes["imbalance_positives"]["kept_index"]
            for seed in (0, 1)]
    assert kept[0] == dataset.notes["imbalance_positives"]["kept_index"] != kept[1]  # same data, other draw
    assert {s: part.summary() for s, part in dataset.splits.items()} == {
        "train": {"n": 1185 + 11, "positives": 11},  # floor(1185 / 100); val and test as published
        "val": {"n": 191, "positives": 22},
        "test": {"n": 382, "positives": 43},
    }


def test_imbalance_then_subset_in_a_run_record():
    config = RunConfig(dataset="synthetic2d", method="bce", imbalance=20, batch_size=32, **TINY)
    record = run_benchmark(resolve_config(config), progress=False)
    assert record["config"]["imbalance"] == 20
    assert record["dataset"]["splits"]["train"] == {"n": 252, "positives": 12}
    assert record["dataset"]["imbalance_positives"]["kept"] == 12
