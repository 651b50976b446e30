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


def test_the_alm_paper_estimator_follows_its_branches():
    """alm-dnn utils/final_ensembling_results.py: `if fpr[tpr == tpr_int].size != 0: ... elif
    fpr[np.where(np.around(tpr, decimals=2) == tpr_int)].size != 0: ... else: avg_interesting_fpr = 0`.

    Hand-computed cases on roc_curve's default (drop_intermediate=True) points."""
    # Exact hit: 20 positives, TPR steps of 0.05; 19 positives above every negative, then a negative,
    # then the last positive: TPR 0.95 exactly at FPR 0 (CritBench's estimator agrees).
    y = [1] * 19 + [0] + [1] + [0] * 9
    s = list(range(30, 0, -1))
    m = binary_metrics(y, s)
    assert m["fpr_at_tpr_alm_paper"]["0.95"] == 0.0 and m["fpr_at_tpr"]["0.95"] == 0.0
    # Rounded hit: 101 positives; 95 lead, then 2 negatives, 1 positive (TPR 96/101 = 0.9505, rounds to
    # 0.95, a corner at FPR 0.2 that roc_curve keeps), 2 negatives, 5 positives, 6 negatives.
    y = [1] * 95 + [0] * 2 + [1] + [0] * 2 + [1] * 5 + [0] * 6
    m = binary_metrics(y, list(range(len(y), 0, -1)))
    assert m["fpr_at_tpr_alm_paper"]["0.95"] == pytest.approx(0.2) and m["fpr_at_tpr"]["0.95"] == pytest.approx(0.2)


def test_the_alm_paper_estimator_falls_back_to_zero():
    """`else: avg_interesting_fpr = 0`: with 4 positives TPR is 0, 0.25, ..., 1 and no rounded TPR
    is 0.98 (nor 0.97 and 0.99): the paper reports FPR 0, the sound estimator the real FPR."""
    m = binary_metrics([0, 0, 1, 0, 1, 1, 0, 1], [8, 7, 6, 5, 4, 3, 2, 1])
    assert m["fpr_at_tpr_alm_paper"]["0.98"] == 0.0
    assert m["fpr_at_tpr"]["0.98"] == 1.0
    # The same with a point that roc_curve's drop_intermediate removes: 95 positives, 4 negatives,
    # 6 positives, 6 negatives. TPR 96/101 (rounds to 0.95) lies inside the vertical segment at FPR
    # 0.4 and is dropped; 0.95 - 0.01 never equals a rounded TPR; so the paper reports 0, not 0.4.
    y = [1] * 95 + [0] * 4 + [1] * 6 + [0] * 6
    m = binary_metrics(y, list(range(len(y), 0, -1)))
    assert m["fpr_at_tpr_alm_paper"]["0.95"] == 0.0 and m["fpr_at_tpr"]["0.95"] == pytest.approx(0.4)
