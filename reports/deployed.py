"""Deployable operating points in the report: the test TPR and FPR at the thresholds each run chose
on validation (the record's `operating_points`), with stratified-bootstrap 95% CIs over the test
set, per run and per leaderboard cell (mean over seeds), and the runs' calibration.

Records written before operating points were recorded have none: their cells stay empty."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from benchmarks.core.metrics import ECE_BINS, FPR_LEVELS, TPR_LEVELS
from reports.runs import Run
from reports.settings import N_BOOTSTRAP
from reports.stats import bootstrap_mean_samples, percentile_interval, too_few

RATES = ("tpr", "fpr")
RATE_CLASSES = {"tpr": "positives", "fpr": "negatives"}  # the test samples a rate is the mean over
# (kind, level, label) of every recorded operating point: a validation TPR target or FPR bound.
POINTS = (*((("min_tpr", f"{t:g}", f"val TPR ≥ {t:g}")) for t in TPR_LEVELS),
          *((("max_fpr", f"{f:g}", f"val FPR ≤ {f:g}")) for f in FPR_LEVELS))
CALIBRATION_KEYS = ("brier", f"ece_{ECE_BINS}")
LEADERBOARD_POINT = ("min_tpr", "0.95")  # the leaderboard's column group: the validation TPR >= 0.95 threshold


@dataclass(frozen=True)
class Rate:
    """A test rate at validation-chosen thresholds: mean and std over the runs (seeds), and the
    stratified-bootstrap 95% percentile interval of that mean over the test set(s): None where a
    test set has fewer than two of the rate's class (a lone positive is in every resample)."""

    mean: float
    std: float | None
    low: float | None
    high: float | None
    runs: int


def threshold(run: Run, kind: str, level: str) -> float | None:
    """The run's validation-chosen threshold, or None where the record has none (older records)."""
    point = ((run.record.get("operating_points") or {}).get(kind) or {}).get(level)
    value = point.get("threshold") if isinstance(point, dict) else None
    finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if finite else None


def hits(run: Run, cut: float) -> dict[str, np.ndarray]:
    """Which test positives ("tpr") and negatives ("fpr") score >= `cut` (0/1 each)."""
    positive = (run.y_score >= cut).astype(np.float64)
    return {"tpr": positive[run.y_true == 1], "fpr": positive[run.y_true == 0]}


def rates(runs: list[Run], kind: str, level: str, seed: int = 0) -> dict[str, Rate] | None:
    """The test TPR and FPR at each run's threshold for (`kind`, `level`), over the runs that have
    one: the mean over runs, and its bootstrap CI (none below two of the rate's class). Runs on one
    test set are resampled together (their hits averaged, then resampled), different test sets
    independently, weighted by runs."""
    by_set: dict[str, list[dict]] = {}
    for run in runs:
        cut = threshold(run, kind, level)
        if cut is not None and run.usable:
            by_set.setdefault(run.test_set, []).append(hits(run, cut))
    if not by_set:
        return None
    total = sum(len(found) for found in by_set.values())
    out = {}
    for rate in RATES:
        per_run = [h[rate].mean() for group in by_set.values() for h in group]
        mean, std = float(np.mean(per_run)), (float(np.std(per_run, ddof=1)) if len(per_run) > 1 else None)
        if any(too_few(RATE_CLASSES[rate], len(group[0][rate])) for group in by_set.values()):
            out[rate] = Rate(mean, std, None, None, total)
            continue
        samples = sum(len(group) / total * bootstrap_mean_samples(np.mean([h[rate] for h in group], axis=0),
                                                                  N_BOOTSTRAP, seed + index)
                      for index, group in enumerate(by_set.values()))
        interval = percentile_interval(mean, samples)
        out[rate] = Rate(mean, std, interval.low, interval.high, total)
    return out


def cell_rates(runs: list[Run]) -> dict[tuple[str, str], dict[str, Rate]]:
    """`rates` of every operating point that some of `runs` recorded."""
    found = {(kind, level): rates(runs, kind, level) for kind, level, _ in POINTS}
    return {point: value for point, value in found.items() if value}


def calibration_means(runs: list[Run]) -> dict[str, tuple[float, float | None]]:
    """Test Brier score and ECE: (mean, std) over the runs whose record has calibration."""
    out = {}
    for key in CALIBRATION_KEYS:
        values = [((run.record.get("calibration") or {}).get("test") or {}).get(key) for run in runs]
        values = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if values:
            out[key] = (float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None)
    return out


@dataclass(frozen=True)
class RunPoint:
    """One operating point of one run, for its page."""

    label: str
    threshold: float
    val: dict
    test: dict[str, Rate]
    holds: bool  # whether test meets the validation target (TPR >= t, FPR <= f)


def run_points(run: Run) -> list[RunPoint]:
    """Every operating point of the run's record, with test CIs (none for an older record)."""
    out = []
    for kind, level, label in POINTS:
        found = rates([run], kind, level)
        if found is None:
            continue
        val = run.record["operating_points"][kind][level].get("val") or {}
        rate = found["tpr" if kind == "min_tpr" else "fpr"].mean
        holds = rate >= float(level) - 1e-12 if kind == "min_tpr" else rate <= float(level) + 1e-12
        out.append(RunPoint(label, threshold(run, kind, level), val if isinstance(val, dict) else {}, found, holds))
    return out
