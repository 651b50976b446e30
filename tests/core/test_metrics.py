"""Metrics against hand-computed ROC curves (values worked out in the comments)."""
import math

import numpy as np
import pytest

from benchmarks.core.metrics import binary_metrics

# y = [0,0,1,0,1,1], logits ranked 1..6 (shifted so 0 sits between ranks 3 and 4).
# ROC points, threshold descending: (0,1/3) (0,2/3) (1/3,2/3) (1/3,1) (2/3,1) (1,1).
# AUC: positives beat 2 + 3 + 3 of 9 negative pairs = 8/9.
Y = [0, 0, 1, 0, 1, 1]
S = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]


def test_auc_and_operating_points_without_ties():
    m = binary_metrics(Y, S)
    assert m["auc"] == pytest.approx(8 / 9)
    # FPR 0 is reachable with TPR 2/3 (the two top scores are positives).
    assert m["tpr_at_fpr"] == pytest.approx({"0.01": 2 / 3, "0.05": 2 / 3, "0.1": 2 / 3})
    # TPR 1 first reached at FPR 1/3.
    assert m["fpr_at_tpr"] == pytest.approx({"0.9": 1 / 3, "0.95": 1 / 3, "0.98": 1 / 3})
    # Logit >= 0 predicts indices 3,4,5: correct on 0,1,4,5 -> 4/6.
    assert m["acc"] == pytest.approx(4 / 6)
    # Partial area to FPR 0.1 is 0.1 * 2/3; McClish: 0.5 * (1 + (A - 0.005) / (0.1 - 0.005)).
    assert m["spauc_0.1"] == pytest.approx(0.5 * (1 + (0.1 * 2 / 3 - 0.005) / 0.095))


def test_ties_count_half_and_only_real_thresholds_are_used():
    # A positive ties a negative at 0.5: AUC = (0.5 + 1 + 2) / 4.
    y, s = [0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]
    m = binary_metrics(y, s)
    assert m["auc"] == pytest.approx(0.875)
    # Thresholds: 0.9 -> (0, 0.5); 0.5 -> (0.5, 1). No threshold gives TPR 1 at FPR 0.
    assert m["tpr_at_fpr"]["0.1"] == pytest.approx(0.5)
    assert m["fpr_at_tpr"]["0.95"] == pytest.approx(0.5)


def test_all_tied_scores_are_chance():
    m = binary_metrics([0, 1, 0, 1], [1.0, 1.0, 1.0, 1.0])
    assert m["auc"] == 0.5
    assert m["tpr_at_fpr"]["0.1"] == 0.0  # only FPR 0 point is "reject all"
    assert m["fpr_at_tpr"]["0.9"] == 1.0


def test_perfect_and_reversed_rankings():
    assert binary_metrics([0, 0, 1, 1], [1, 2, 3, 4])["auc"] == 1.0
    reversed_ = binary_metrics([0, 0, 1, 1], [4, 3, 2, 1])
    assert reversed_["auc"] == 0.0 and reversed_["fpr_at_tpr"]["0.9"] == 1.0


def test_non_finite_scores_give_nan_not_an_exception():
    m = binary_metrics([0, 1, 0, 1], [0.1, np.nan, 0.3, 0.2])
    assert math.isnan(m["auc"]) and math.isnan(m["tpr_at_fpr"]["0.1"]) and math.isnan(m["acc"])
