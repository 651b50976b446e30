"""Confidence intervals and paired tests for the ROC AUC.

DeLong et al. (1988) estimate the variance of the empirical AUC (the Mann-Whitney statistic) from
its structural components: for positive i, V10_i = mean over negatives j of psi(x_i, y_j), and for
negative j, V01_j = mean over positives i of psi(x_i, y_j), where psi = 1 if x > y, 1/2 on a tie,
0 otherwise. Sun & Xu (2014) compute them in O(N log N) from midranks, which is done here.
Written by hand because scikit-learn and scipy offer no DeLong variance or paired DeLong test
(R's pROC does). The stratified bootstrap resamples positives and negatives separately, with a
seeded numpy Generator, so both class counts stay fixed as in the test set itself. Below two of
either class neither is defined (S10 divides by m - 1; a lone positive is in every resample), so a
test set with one positive or one negative gives no interval and no p (None), not a narrow one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata

from reports.settings import LEVEL, N_BOOTSTRAP, SIGNIFICANCE

BOOTSTRAP_ELEMENTS = 2_000_000  # resampled scores per chunk (bounds memory to ~50 MB)
MIN_PER_CLASS = 2  # samples of each class a DeLong variance or a stratified bootstrap needs


@dataclass(frozen=True)
class Interval:
    """An AUC estimate with its standard error and two-sided confidence interval."""

    auc: float
    se: float
    low: float
    high: float


@dataclass(frozen=True)
class PairedTest:
    """Paired DeLong test of AUC(a) - AUC(b) = 0 on one test set."""

    auc_a: float
    auc_b: float
    diff: float
    se: float | None  # se, z and p: None where the test set has too few of a class (`interval_shortfall`)
    z: float | None
    p: float | None

    @property
    def significant(self) -> bool:
        """Whether p is below the report's significance level (highlighted)."""
        return self.p is not None and self.p < SIGNIFICANCE


def too_few(name: str, count: int) -> str:
    """Why `count` samples of a class give no interval ("too few positives (1) for an interval"), else ""."""
    return f"too few {name} ({count}) for an interval" if count < MIN_PER_CLASS else ""


def interval_shortfall(y_true) -> str:
    """Why a test set's AUC has no DeLong or bootstrap interval and no paired p, "" where it has them."""
    y = np.asarray(y_true)
    return too_few("positives", int((y == 1).sum())) or too_few("negatives", int((y == 0).sum()))


def _split(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """Scores as (k, N) float arrays, split into positives (k, m) and negatives (k, n)."""
    y = np.asarray(y_true)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if y.ndim != 1 or s.shape[1] != y.shape[0]:
        raise ValueError(f"labels {y.shape} and scores {s.shape} disagree")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if y.sum() == 0 or y.sum() == len(y):
        raise ValueError("the AUC needs at least one positive and one negative")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    positive = y == 1
    return s[:, positive], s[:, ~positive]


def delong_components(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs (k,), positive components V10 (k, m) and negative components V01 (k, n).

    `scores` is one score vector (N,) or k vectors (k, N) on the same samples (fast DeLong, Sun & Xu 2014)."""
    pos, neg = _split(y_true, scores)
    m, n = pos.shape[1], neg.shape[1]
    ranks_all = rankdata(np.concatenate([pos, neg], axis=1), axis=1)  # midranks: ties count 1/2
    ranks_pos = rankdata(pos, axis=1)
    ranks_neg = rankdata(neg, axis=1)
    auc = (ranks_all[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v10 = (ranks_all[:, :m] - ranks_pos) / n  # negatives scored below positive i (ties 1/2)
    v01 = 1.0 - (ranks_all[:, m:] - ranks_neg) / m  # positives scored above negative j
    return auc, v10, v01


def delong_covariance(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and their DeLong covariance matrix (k, k): S10 / m + S01 / n, NaN below two
    positives or negatives (that term's variance is undefined, not zero)."""
    auc, v10, v01 = delong_components(y_true, scores)
    undefined = np.full((len(auc), len(auc)), np.nan)
    s10, s01 = (np.atleast_2d(np.cov(v)) if v.shape[1] >= MIN_PER_CLASS else undefined for v in (v10, v01))
    return auc, s10 / v10.shape[1] + s01 / v01.shape[1]


def normal_interval(auc: float, variance: float, level: float = LEVEL) -> Interval | None:
    """Wald interval auc +- z * se, clipped to [0, 1]; None where the variance is undefined (NaN)."""
    if math.isnan(variance):
        return None
    se = math.sqrt(max(variance, 0.0))
    z = norm.ppf(0.5 + level / 2)
    return Interval(float(auc), se, max(0.0, auc - z * se), min(1.0, auc + z * se))


def delong_ci(y_true, y_score, level: float = LEVEL) -> Interval | None:
    """AUC with its DeLong standard error and Wald confidence interval (None: `interval_shortfall`)."""
    auc, cov = delong_covariance(y_true, y_score)
    return normal_interval(auc[0], cov[0, 0], level)


def z_test(diff: float, variance: float) -> tuple[float | None, float | None, float | None]:
    """(se, z, two-sided p) of a normal test of diff = 0; a zero variance gives p = 1 only if diff = 0,
    an undefined one (NaN) no test (None, None, None)."""
    if math.isnan(variance):
        return None, None, None
    se = math.sqrt(max(variance, 0.0))
    if se == 0.0:
        return 0.0, (0.0 if diff == 0 else math.copysign(math.inf, diff)), (1.0 if diff == 0 else 0.0)
    z = diff / se
    return se, z, float(2 * norm.sf(abs(z)))


def delong_paired_test(y_true, score_a, score_b) -> PairedTest:
    """Paired DeLong test of two classifiers scored on the same samples (DeLong et al. 1988)."""
    auc, cov = delong_covariance(y_true, np.stack([np.asarray(score_a, float), np.asarray(score_b, float)]))
    diff = float(auc[0] - auc[1])
    se, z, p = z_test(diff, cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    return PairedTest(float(auc[0]), float(auc[1]), diff, se, z, p)


def bootstrap_auc_samples(y_true, y_score, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """AUCs of `n_boot` stratified bootstrap resamples (positives and negatives resampled separately).

    A resample is a vector of multiplicities, so its AUC is sum_i w_i (negatives below x_i + ties / 2)
    / (m n), read from cumulative negative weights at each positive's place among the sorted
    negatives: O(m + n) per resample, no sorting. Refused below two positives or negatives."""
    pos, neg = (part[0] for part in _split(y_true, y_score))
    if why := interval_shortfall(y_true):
        raise ValueError(why)
    m, n = len(pos), len(neg)
    neg = np.sort(neg)
    below, not_above = np.searchsorted(neg, pos, side="left"), np.searchsorted(neg, pos, side="right")
    rng = np.random.default_rng(seed)
    chunk = max(1, BOOTSTRAP_ELEMENTS // (m + n))
    aucs = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        w_pos, w_neg = (_multiplicities(rng, size, b) for size in (m, n))
        cum = np.zeros((b, n + 1))
        np.cumsum(w_neg, axis=1, out=cum[:, 1:])
        aucs.append((w_pos * (cum[:, below] + cum[:, not_above])).sum(axis=1) / (2 * m * n))
    return np.concatenate(aucs)


def _multiplicities(rng: np.random.Generator, size: int, b: int) -> np.ndarray:
    """(b, size) counts of each item in b samples of `size` draws with replacement."""
    draws = rng.integers(0, size, (b, size)) + size * np.arange(b)[:, None]
    return np.bincount(draws.ravel(), minlength=b * size).reshape(b, size)


def percentile_interval(auc: float, samples: np.ndarray, level: float = LEVEL) -> Interval:
    """Percentile bootstrap interval around the point estimate `auc`."""
    low, high = np.quantile(samples, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(float(auc), float(np.std(samples, ddof=1)), float(low), float(high))


def bootstrap_ci(y_true, y_score, level: float = LEVEL, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> Interval | None:
    """AUC with a stratified percentile-bootstrap confidence interval (None: `interval_shortfall`)."""
    auc = delong_components(y_true, y_score)[0][0]
    if interval_shortfall(y_true):
        return None
    return percentile_interval(auc, bootstrap_auc_samples(y_true, y_score, n_boot, seed), level)


def bootstrap_mean_samples(values, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """Means of `n_boot` bootstrap resamples of `values` (as many draws, with replacement).

    The counts of each distinct value in a resample are multinomial, so a resample costs O(distinct
    values), not O(N): exact for a rate at a fixed threshold (0/1 hits), and for its mean over seeds
    on one test set (hits averaged over the seeds' runs). Applied to the positives' hits (TPR) and
    the negatives' (FPR) separately, it is the stratified bootstrap."""
    levels, counts = np.unique(np.asarray(values, dtype=np.float64), return_counts=True)
    draws = np.random.default_rng(seed).multinomial(counts.sum(), counts / counts.sum(), size=n_boot)
    return draws @ levels / counts.sum()
