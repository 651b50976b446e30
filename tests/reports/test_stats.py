"""DeLong variance and paired test against hand-computed values; bootstrap against DeLong; coverage."""
import math
import re

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from reports.stats import (bootstrap_auc_samples, bootstrap_ci, delong_ci, delong_components, delong_covariance,
                           delong_paired_test, interval_shortfall, z_test)

# Positives a = (0.9, 0.6, 0.4), negatives a = (0.7, 0.6, 0.2, 0.1): one tie (0.6 vs 0.6).
Y = np.array([1, 0, 1, 0, 1, 0, 0])
A = np.array([0.9, 0.7, 0.6, 0.6, 0.4, 0.2, 0.1])
B = np.array([0.8, 0.9, 0.3, 0.5, 0.7, 0.1, 0.2])  # positives (0.8, 0.3, 0.7), negatives (0.9, 0.5, 0.1, 0.2)

# Structural components by hand: psi(x, y) = 1 if x > y, 1/2 on a tie, else 0.
V10_A = [4 / 4, (0 + 0.5 + 1 + 1) / 4, (0 + 0 + 1 + 1) / 4]  # per positive: mean over the 4 negatives
V01_A = [(1 + 0 + 0) / 3, (1 + 0.5 + 0) / 3, 3 / 3, 3 / 3]  # per negative: mean over the 3 positives
V10_B = [3 / 4, 2 / 4, 3 / 4]
V01_B = [0 / 3, 2 / 3, 3 / 3, 3 / 3]
# S10 = var(V10_A) = (49 + 4 + 25) / 576 / 2, S01 = var(V01_A) = (81 + 25 + 49 + 49) / 576 / 3;
# var = S10 / 3 + S01 / 4 = 13/576 + 17/576 = 5/96.
VAR_A = 5 / 96
VAR_B = 1 / 16  # (24/576/2)/3 + (384/576/3)/4
COV_AB = (12 / 576 / 2) / 3 + (256 / 576 / 3) / 4  # = 280/6912


def test_delong_components_match_hand_computation():
    auc, v10, v01 = delong_components(Y, np.stack([A, B]))
    np.testing.assert_allclose(v10, [V10_A, V10_B])
    np.testing.assert_allclose(v01, [V01_A, V01_B])
    np.testing.assert_allclose(auc, [17 / 24, 2 / 3])
    np.testing.assert_allclose(auc, [roc_auc_score(Y, A), roc_auc_score(Y, B)])


def test_delong_variance_and_covariance_match_hand_computation():
    auc, cov = delong_covariance(Y, np.stack([A, B]))
    np.testing.assert_allclose(cov, [[VAR_A, COV_AB], [COV_AB, VAR_B]])
    interval = delong_ci(Y, A)
    se = math.sqrt(VAR_A)
    assert interval.se == pytest.approx(se)
    assert interval.low == pytest.approx(17 / 24 - 1.959964 * se, abs=1e-6)
    assert interval.high == pytest.approx(min(1.0, 17 / 24 + 1.959964 * se), abs=1e-6)


def test_paired_delong_matches_hand_computation():
    test = delong_paired_test(Y, A, B)
    z = (17 / 24 - 2 / 3) / math.sqrt(VAR_A + VAR_B - 2 * COV_AB)  # = (1/24) / sqrt(232/6912)
    assert test.diff == pytest.approx(1 / 24)
    assert test.z == pytest.approx(z)
    assert test.p == pytest.approx(2 * (1 - norm.cdf(z)))
    assert test.p == pytest.approx(0.8201, abs=1e-4)
    swapped = delong_paired_test(Y, B, A)
    assert swapped.z == pytest.approx(-z) and swapped.p == pytest.approx(test.p)


def test_auc_matches_sklearn_with_many_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(y, 1.0, (3, 300)), 1)  # heavy ties
    auc, _ = delong_covariance(y, scores)
    np.testing.assert_allclose(auc, [roc_auc_score(y, s) for s in scores])


def test_identical_classifiers_are_not_different():
    test = delong_paired_test(Y, A, A)
    assert test.diff == 0 and test.p == 1.0
    assert z_test(0.1, 0.0)[2] == 0.0


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match="positive and one negative"):
        delong_ci([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="finite"):
        delong_ci([0, 1], [0.1, math.nan])
    with pytest.raises(ValueError, match="disagree"):
        delong_ci([0, 1, 1], [0.1, 0.2])


@pytest.mark.parametrize("lone, why", [(1, "too few positives (1) for an interval"),
                                       (0, "too few negatives (1) for an interval")])
def test_one_positive_or_one_negative_gives_no_interval_and_no_p(lone, why):
    """The review's case: 99 negatives and one positive. The positives' DeLong term S10 divides by
    m - 1 = 0; set to zero it left se 0.032 where the AUC's SD over new draws of the positive is about
    0.23, and the bootstrap cannot vary a lone positive either. No interval and no p, saying why."""
    rng = np.random.default_rng(0)
    y = np.r_[lone, np.full(99, 1 - lone)]
    a, b = rng.normal(0, 1, 100) + 0.5 * (y == 1), rng.normal(0, 1, 100)
    assert interval_shortfall(y) == why
    assert np.isnan(delong_covariance(y, a)[1]).all()
    assert delong_ci(y, a) is None and bootstrap_ci(y, a) is None
    with pytest.raises(ValueError, match=re.escape(why)):
        bootstrap_auc_samples(y, a)
    test = delong_paired_test(y, a, b)
    assert test.diff == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    assert (test.se, test.z, test.p, test.significant) == (None, None, None, False)
    two = np.r_[lone, lone, np.full(98, 1 - lone)]  # two of each class: defined again
    assert interval_shortfall(two) == "" and delong_ci(two, a) is not None and bootstrap_ci(two, a) is not None


def binormal(rng, m, n, shift=1.0):
    """Positives N(shift, 1), negatives N(0, 1): true AUC = Phi(shift / sqrt(2))."""
    return np.r_[np.ones(m, int), np.zeros(n, int)], np.r_[rng.normal(shift, 1, m), rng.normal(0, 1, n)]


def test_bootstrap_agrees_with_delong():
    y, s = binormal(np.random.default_rng(1), 100, 400)
    delong, boot = delong_ci(y, s), bootstrap_ci(y, s, n_boot=4000, seed=0)
    assert boot.auc == delong.auc == pytest.approx(roc_auc_score(y, s))
    assert boot.se == pytest.approx(delong.se, rel=0.1)
    assert boot.low == pytest.approx(delong.low, abs=0.015)
    assert boot.high == pytest.approx(delong.high, abs=0.015)


def test_bootstrap_is_seeded_and_stratified():
    y, s = binormal(np.random.default_rng(2), 5, 50, shift=3.0)
    first, second = bootstrap_auc_samples(y, s, 500, seed=7), bootstrap_auc_samples(y, s, 500, seed=7)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, bootstrap_auc_samples(y, s, 500, seed=8))
    assert np.isfinite(first).all()  # stratified: every resample keeps 5 positives and 50 negatives


def test_bootstrap_matches_brute_force_resampling():
    """The multiplicity shortcut has the distribution of explicit resamples scored pair by pair."""
    y, s = binormal(np.random.default_rng(5), 30, 70)
    s = np.round(s, 1)  # ties
    fast = bootstrap_auc_samples(y, s, 3000, seed=1)
    rng = np.random.default_rng(2)
    pos, neg = rng.choice(s[y == 1], (3000, 30, 1)), rng.choice(s[y == 0], (3000, 1, 70))
    slow = ((pos > neg) + 0.5 * (pos == neg)).mean(axis=(1, 2))  # psi averaged over all pairs
    assert fast.mean() == pytest.approx(slow.mean(), abs=0.004)
    assert fast.std() == pytest.approx(slow.std(), rel=0.08)
    np.testing.assert_array_equal(bootstrap_auc_samples([0, 0, 1, 1], [1, 2, 3, 4], 50), 1.0)  # separable
    np.testing.assert_array_equal(bootstrap_auc_samples([0, 0, 1, 1], [2, 2, 2, 2], 50), 0.5)  # all tied


def test_confidence_interval_coverage():
    rng = np.random.default_rng(3)
    truth = norm.cdf(1 / math.sqrt(2))
    delong_hits, boot_hits = [], []
    for rep in range(200):
        y, s = binormal(rng, 40, 60)
        d = delong_ci(y, s)
        delong_hits.append(d.low <= truth <= d.high)
        if rep < 100:
            b = bootstrap_ci(y, s, n_boot=400, seed=rep)
            boot_hits.append(b.low <= truth <= b.high)
    assert 0.90 <= np.mean(delong_hits) <= 0.98
    assert 0.88 <= np.mean(boot_hits) <= 0.99


def test_paired_test_size_and_power():
    rng = np.random.default_rng(4)
    null_p, alt_p = [], []
    for _ in range(300):
        y = np.r_[np.ones(150, int), np.zeros(150, int)]
        signal = rng.normal(y, 1.0)
        a, b = signal + rng.normal(0, 1, 300), signal + rng.normal(0, 1, 300)  # equally good
        null_p.append(delong_paired_test(y, a, b).p)
        alt_p.append(delong_paired_test(y, signal, b).p)  # signal alone is better
    assert 0.02 <= np.mean(np.array(null_p) < 0.05) <= 0.09
    assert np.mean(np.array(alt_p) < 0.05) > 0.7
