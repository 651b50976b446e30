"""The two-way partial AUC and average precision against hand-computed values (worked out in the
comments) and against LibAUC's own two-way estimator."""
import math

import numpy as np
import pytest
from libauc.metrics import pauc_roc_score
from sklearn.metrics import roc_curve

from benchmarks.core.metrics import TWO_WAY_MAX_FPR, TWO_WAY_MIN_TPR, binary_metrics, two_way_partial_auc


def two_way(y, s, min_tpr, max_fpr):
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return two_way_partial_auc(fpr, tpr, min_tpr, max_fpr)


def test_area_above_alpha_left_of_beta_over_the_region_s_area():
    # Positives 0.9 0.8 0.6 0.35, negatives 0.7 0.5 0.3 0.1. ROC: (0,0) (0,.25) (0,.5) (.25,.5)
    # (.25,.75) (.5,.75) (.5,1) ... With alpha = beta = 0.5: TPR - 0.5 is 0 on FPR [0, .25] and
    # .25 on [.25, .5]: area .0625, over the region's .5 x .5 = .25.
    y, s = [1, 1, 1, 1, 0, 0, 0, 0], [0.9, 0.8, 0.6, 0.35, 0.7, 0.5, 0.3, 0.1]
    assert two_way(y, s, 0.5, 0.5) == pytest.approx(0.25)


def test_a_tie_is_a_diagonal_cut_where_it_crosses_alpha_and_at_beta():
    # One positive tied with one negative: the ROC is the diagonal TPR = FPR. alpha 0.5: the
    # triangle above TPR 0.5 between FPR 0.5 and 1 has area 1/8, over 0.5 x 1; cut at beta 0.75
    # it has area 0.25^2 / 2 = 1/32, over 0.5 x 0.75.
    assert two_way([1, 0], [0.5, 0.5], 0.5, 1.0) == pytest.approx(0.25)
    assert two_way([1, 0], [0.5, 0.5], 0.5, 0.75) == pytest.approx((1 / 32) / 0.375)


def test_binary_metrics_reports_it_at_the_sota_s_recipe_s_levels():
    """config_tpauc_Cifar10.yaml: `metric_kwargs: - max_fpr: 0.3 min_tpr: 0.7`."""
    assert (TWO_WAY_MIN_TPR, TWO_WAY_MAX_FPR) == (0.7, 0.3)
    assert binary_metrics([0, 0, 1, 1], [1, 2, 3, 4])["pauc_two_way"] == 1.0
    # y = [0,0,1,0,1,1] ranked 1..6: TPR is 2/3 < 0.7 up to FPR 1/3 > 0.3: no area.
    assert binary_metrics([0, 0, 1, 0, 1, 1], [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])["pauc_two_way"] == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_without_ties_it_equals_libauc_s_estimator(seed):
    """libauc/metrics/metrics.py `pauc_roc_score`: the AUC of the `round(n_pos * (1 - min_tpr))`
    lowest positives against the `round(n_neg * max_fpr)` highest negatives (here 6 and 15, whole)."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(20), np.zeros(50)].astype(int)
    s = rng.normal(size=70) + 3 * y
    expected = pauc_roc_score(y, s, max_fpr=0.3, min_tpr=0.7)
    assert 0 < expected < 1
    assert binary_metrics(y, s)["pauc_two_way"] == pytest.approx(expected)


def test_average_precision_is_the_mean_precision_at_each_positive():
    # Ranked: P P N P N N -> precisions 1, 1, 3/4 at the positives.
    assert binary_metrics([0, 0, 1, 0, 1, 1], [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])["ap"] == pytest.approx(11 / 12)


def test_non_finite_scores_give_nan():
    m = binary_metrics([0, 1, 0, 1], [0.1, np.nan, 0.3, 0.2])
    assert math.isnan(m["pauc_two_way"]) and math.isnan(m["ap"])
