"""Operating points chosen on validation and read on test, and calibration (values worked out in the comments)."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from benchmarks.core.config import RunConfig
from benchmarks.core.metrics import calibration, expected_calibration_error, operating_points, validation_thresholds
from benchmarks.core.records import record_problem
from benchmarks.core.storage import json_safe
from benchmarks.engine.device import resolve_device
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import load_dataset, resolve_config
from benchmarks.engine.trainer import Trainer
from datasets.base import Split
from tests.conftest import TINY
from tests.reports.record_fixture import current_record, edited

# Validation: y = [0,0,1,0,1,1], scores ranked 1..6. ROC by threshold (positive iff score >= it):
# above 2.5 -> (FPR 0, TPR 0); 2.5 -> (0, 1/3); 1.5 -> (0, 2/3); 0.5 -> (1/3, 2/3); -0.5 -> (1/3, 1);
# -1.5 -> (2/3, 1); -2.5 -> (1, 1).
VAL_Y, VAL_S = [0, 0, 1, 0, 1, 1], [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]
# Test: a positive exactly at -0.5 (a tie with the threshold counts as positive).
TEST_Y, TEST_S = [1, 0, 1, 0], [-0.5, -0.6, 1.5, 1.6]


def flat(point: dict) -> dict:
    """{"threshold", "val": {"tpr", "fpr"}, "test": ...} -> {"threshold", "val.tpr", ...}, for pytest.approx."""
    return {"threshold": point["threshold"],
            **{f"{split}.{rate}": point[split][rate] for split in ("val", "test") for rate in ("tpr", "fpr")}}


def test_thresholds_and_test_rates_by_hand():
    points = operating_points(VAL_Y, VAL_S, TEST_Y, TEST_S)
    for level in ("0.9", "0.95", "0.98"):
        # The largest threshold with validation TPR >= 0.9 is -0.5 (TPR 1, FPR 1/3); on test it takes
        # the positives -0.5 and 1.5 and the negative 1.6: TPR 1, FPR 1/2.
        assert flat(points["min_tpr"][level]) == pytest.approx(
            {"threshold": -0.5, "val.tpr": 1, "val.fpr": 1 / 3, "test.tpr": 1, "test.fpr": 0.5})
    for level in ("0.01", "0.05", "0.1"):
        # The smallest threshold with validation FPR 0 is 1.5 (TPR 2/3); on test: 1.5 and 1.6 -> TPR 1/2, FPR 1/2.
        assert flat(points["max_fpr"][level]) == pytest.approx(
            {"threshold": 1.5, "val.tpr": 2 / 3, "val.fpr": 0, "test.tpr": 0.5, "test.fpr": 0.5})


def test_no_positive_prediction_is_just_above_the_highest_validation_score():
    # The top validation score is a negative, so FPR <= 0.01 predicts nothing positive on validation:
    # the threshold lies just above 2.0 (finite, unlike roc_curve's inf), and a test score of 2.0 is negative.
    points = operating_points([0, 1], [2.0, 1.0], [1, 0, 1], [2.0, 1.0, 3.0])
    point = points["max_fpr"]["0.01"]
    assert point["threshold"] == np.nextafter(2.0, np.inf) and math.isfinite(point["threshold"])
    assert point["val"] == {"tpr": 0.0, "fpr": 0.0} and point["test"] == {"tpr": 0.5, "fpr": 0.0}


def test_random_test_labels_leave_the_thresholds_unchanged():
    rng = np.random.default_rng(0)
    val_y = (rng.random(300) < 0.2).astype(int)
    val_s = val_y + rng.normal(0, 1, 300)
    test_y = (rng.random(400) < 0.2).astype(int)
    test_s = test_y + rng.normal(0, 1, 400)
    expected = validation_thresholds(val_y, val_s)
    for seed in range(3):
        random_y = np.random.default_rng(seed + 1).integers(0, 2, 400)
        points = operating_points(val_y, val_s, random_y, test_s)
        assert {kind: {level: p["threshold"] for level, p in levels.items()} for kind, levels in points.items()} == expected
        assert points["min_tpr"]["0.95"]["val"] == operating_points(val_y, val_s, test_y, test_s)["min_tpr"]["0.95"]["val"]


def test_non_finite_scores_give_nan_not_an_error():
    points = operating_points(VAL_Y, [math.nan] * 6, TEST_Y, TEST_S)
    assert math.isnan(points["min_tpr"]["0.95"]["threshold"]) and math.isnan(points["min_tpr"]["0.95"]["test"]["tpr"])
    points = operating_points(VAL_Y, VAL_S, TEST_Y, [math.inf, 0, 0, 0])
    assert points["min_tpr"]["0.95"]["threshold"] == -0.5 and math.isnan(points["min_tpr"]["0.95"]["test"]["fpr"])
    assert all(math.isnan(v) for v in calibration([0, 1], [math.nan, 0.0]).values())


def test_calibration_by_hand():
    # Logits 0 and ln 3: probabilities 1/2 and 3/4. Brier: ((1/2)^2 + (1/4)^2) / 2 for labels 0, 1.
    result = calibration([0, 1], [0.0, math.log(3)])
    assert result["brier"] == pytest.approx((0.25 + 0.0625) / 2)
    # 15 bins: 1/2 falls in [7/15, 8/15) with label 0 (gap 1/2), 3/4 in [11/15, 12/15) with label 1 (gap 1/4).
    assert result["ece_15"] == pytest.approx((0.5 + 0.25) / 2)
    # Both in one bin of 1: |mean label 1/2 - mean probability 5/8| = 1/8; probability 1 is in the last bin.
    assert expected_calibration_error(np.array([0, 1]), np.array([0.5, 0.75]), bins=1) == pytest.approx(0.125)
    assert expected_calibration_error(np.array([1]), np.array([1.0])) == 0.0


def tiny(method="bce"):
    return resolve_config(RunConfig(dataset="synthetic2d", method=method, **TINY))


def test_a_run_with_random_test_labels_chooses_the_same_thresholds():
    config = tiny()
    dataset = load_dataset(config)
    random_labels = torch.randint(0, 2, (len(dataset.test),), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    shuffled = dataclasses.replace(dataset, test=Split(dataset.test.x, random_labels))
    runs = [Trainer(config, data, resolve_device(config.device), progress=False).fit() for data in (dataset, shuffled)]
    thresholds = [{kind: {level: point["threshold"] for level, point in levels.items()}
                   for kind, levels in run["operating_points"].items()} for run in runs]
    assert thresholds[0] == thresholds[1]
    assert runs[0]["operating_points"]["min_tpr"]["0.95"]["val"] == runs[1]["operating_points"]["min_tpr"]["0.95"]["val"]
    assert runs[0]["calibration"]["val"] == runs[1]["calibration"]["val"]


@pytest.mark.parametrize("method, probability", [("bce", True), ("aucm", False)])
def test_a_run_record_has_operating_points_and_calibration_where_it_applies(method, probability):
    record = run_benchmark(tiny(method), progress=False)
    assert record_problem(json_safe(record)) is None
    points = record["operating_points"]
    assert set(points) == {"min_tpr", "max_fpr"}
    assert set(points["min_tpr"]) == {"0.9", "0.95", "0.98"} and set(points["max_fpr"]) == {"0.01", "0.05", "0.1"}
    point = points["min_tpr"]["0.95"]
    assert point["val"]["tpr"] >= 0.95 and set(point["test"]) == {"tpr", "fpr"}
    y, s = np.array(record["test_scores"]["y_true"]), np.array(record["test_scores"]["y_score"])
    assert point["test"]["tpr"] == pytest.approx((s[y == 1] >= point["threshold"]).mean())
    if probability:
        assert set(record["calibration"]) == {"val", "test"} and set(record["calibration"]["test"]) == {"brier", "ece_15"}
    else:
        assert record["calibration"] is None


def test_the_record_check_takes_the_keys_as_optional_but_typed():
    record = current_record()  # written before operating points: still a usable record
    assert "operating_points" not in record and record_problem(record) is None
    with_points = {**record, "operating_points": operating_points(VAL_Y, VAL_S, TEST_Y, TEST_S), "calibration": None}
    assert record_problem(json_safe(with_points)) is None
    assert record_problem(edited(with_points, "operating_points", "x")) == 'operating_points is "x", not an object'
    assert record_problem(edited(with_points, "operating_points.min_tpr", [])) == "operating_points.min_tpr is an array, not an object"
    assert record_problem({**with_points, "calibration": {"val": 1, "test": {}}}) == "calibration.val is 1, not an object"
