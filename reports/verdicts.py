"""One sentence per dataset: who wins on the critical class, as a deployed model would be used.

At the leaderboard's operating point (each run's threshold chosen on validation for TPR >= 0.95,
then applied to test), the competing row with the lowest mean *validation* FPR there (chosen without
test data, so its test difference is not the best of several on test) is compared with the baseline
on the same test negatives: the paired difference in test FPR, first in the training-seed view (the t
interval and one-sample t-test of the per-seed differences, in how many seeds the sign holds), then
with a bootstrap CI and a p-value over the test negatives given the trained runs. Written here because
no library pairs two classifiers' rates at their own thresholds; the resampling and the normal test
are reports/stats.py's, the t-test scipy's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import ttest_1samp

from benchmarks.core.cli import counted
from reports.deployed import LEADERBOARD_POINT, hits, threshold
from reports.display import interval_text, number, p_value, signed
from reports.leaderboard import BASELINE, Cell, DatasetSummary, Leaderboard, RowKey
from reports.published import seed_interval
from reports.settings import LEVEL_TEXT, N_BOOTSTRAP, SIGNIFICANCE
from reports.stats import bootstrap_mean_samples, percentile_interval, too_few, z_test


@dataclass(frozen=True)
class FprDifference:
    """Test FPR of a row minus the baseline's, at each run's validation-chosen threshold, paired on
    the same test negatives: its mean, percentile-bootstrap CI and two-sided p-value (over test
    negatives, given the trained runs), and each paired seed's own difference (how often the sign
    holds from one training seed to the next). Below two test negatives there is no interval and no
    p (None), and `no_interval` says why."""

    diff: float
    low: float | None
    high: float | None
    p: float | None
    seeds: int
    per_seed: tuple[float, ...] = ()
    no_interval: str = ""


def negative_hits(cell: Cell, test_set: str, seeds: set[int]) -> np.ndarray | None:
    """Per test negative, the share of the cell's runs (of `seeds`, on `test_set`) calling it positive
    at their own validation-chosen threshold."""
    found = []
    for run in cell.runs:
        cut = threshold(run, *LEADERBOARD_POINT)
        if run.seed in seeds and run.test_set == test_set and run.usable and cut is not None:
            found.append(hits(run, cut)["fpr"])
    return np.mean(found, axis=0) if found else None


def seeds_with_point(cell: Cell, test_set: str) -> set[int]:
    return {run.seed for run in cell.runs
            if run.test_set == test_set and run.usable and threshold(run, *LEADERBOARD_POINT) is not None}


def fpr_difference(summary: DatasetSummary, row: RowKey, seed: int = 0) -> FprDifference | None:
    """The paired test-FPR difference of `row` vs the baseline over the seeds both have on each test
    set (an ensemble of more seeds would differ by itself); test sets combine as in
    reports.leaderboard.pooled_estimates: the mean of their differences, variances added."""
    cell, base = summary.cells[row], summary.cells[summary.baseline]
    means, variances, samples, seeds, per_seed, short = [], [], [], set(), [], []
    for index, test_set in enumerate(summary.test_sets):
        common = seeds_with_point(cell, test_set) & seeds_with_point(base, test_set)
        if not common:
            continue
        d = negative_hits(cell, test_set, common) - negative_hits(base, test_set, common)
        per_seed += [float((negative_hits(cell, test_set, {s}) - negative_hits(base, test_set, {s})).mean())
                     for s in sorted(common)]
        means.append(float(d.mean()))
        seeds |= common
        if why := too_few("negatives", len(d)):  # one negative's variance is undefined, not zero
            short.append(why)
            continue
        variances.append(float(d.var(ddof=1)) / len(d))
        samples.append(bootstrap_mean_samples(d, N_BOOTSTRAP, seed + index))
    if not means:
        return None
    diff = float(np.mean(means))
    if short:
        return FprDifference(diff, None, None, None, len(seeds), tuple(per_seed), "; ".join(dict.fromkeys(short)))
    interval = percentile_interval(diff, np.mean(samples, axis=0))
    _, _, p = z_test(diff, sum(variances) / len(means) ** 2)
    return FprDifference(diff, interval.low, interval.high, p, len(seeds), tuple(per_seed))


def validation_fpr(cell: Cell) -> float | None:
    """The mean over the cell's runs of the validation FPR at their leaderboard-point threshold (the
    record's `operating_points`), None where no run has it."""
    kind, level = LEADERBOARD_POINT
    values = [(((run.record.get("operating_points") or {}).get(kind) or {}).get(level) or {}).get("val", {}).get("fpr")
              for run in cell.runs if run.usable and threshold(run, kind, level) is not None]
    values = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def lowest_fpr_row(summary: DatasetSummary) -> RowKey | None:
    """The competing non-baseline row with the lowest mean validation FPR at the leaderboard's point:
    chosen on validation, as a user would choose what to deploy; picking the lowest test FPR and then
    testing it on the same test set would report the best of several noisy differences."""
    candidates = [(fpr, row) for row, cell in summary.cells.items()
                  if row != summary.baseline and cell.competes and (fpr := validation_fpr(cell)) is not None]
    return min(candidates, key=lambda item: item[0])[1] if candidates else None


@dataclass(frozen=True)
class Verdict:
    """A dataset's one-line verdict, and the comparison behind it (None where there is none)."""

    dataset: str  # the column's label
    anchor: str
    text: str
    row: RowKey | None = None
    difference: FprDifference | None = None


def verdict(summary: DatasetSummary) -> Verdict:
    level = LEADERBOARD_POINT[1]
    where = f"on the critical class ({summary.facts.get('critical_class')}), at the val-chosen TPR ≥ {level} threshold"
    label, anchor = summary.key.label, summary.key.anchor
    if summary.baseline is None:
        return Verdict(label, anchor, f"no {BASELINE} runs here, so no comparison with the baseline")
    if len(summary.cells) == 1:
        return Verdict(label, anchor, f"only {BASELINE} ran here: nothing to compare with it")
    if not any(row != summary.baseline and cell.competes for row, cell in summary.cells.items()):
        return Verdict(label, anchor, f"nothing here competes with {summary.baseline.label}: the other rows are shown "
                                      f"beside it, not compared (a preset row beside its tuned row, or a variant not "
                                      f"selected on validation)")
    row = lowest_fpr_row(summary)
    if row is None:
        return Verdict(label, anchor, f"{where}: no competing row's records carry validation-chosen operating points")
    base = summary.cells[summary.baseline]
    if not any(seeds_with_point(base, test_set) for test_set in summary.test_sets):
        return Verdict(label, anchor, f"{where}: {summary.baseline.label}'s records carry no validation-chosen "
                                      f"operating points to compare {row.label} with", row)
    difference = fpr_difference(summary, row)
    if difference is None:
        return Verdict(label, anchor, f"{where}: {row.label} and {BASELINE} share no seed whose records both carry "
                                      f"validation-chosen operating points", row)
    return Verdict(label, anchor, f"{where}: {row.label} {change_text(difference)}{tpr_note(summary.cells[row])}",
                   row, difference)


def change_text(d: FprDifference) -> str:
    """The training-seed view first, then the test-negative one given the trained models: "lowers test
    FPR vs bce by 0.120; over training seeds ΔFPR -0.120 [-0.210, -0.030] (95% t), p = 0.030, lower in
    3 of 3 seeds; given these 3 paired seeds' models, ΔFPR over test negatives [-0.190, -0.050], p = 0.002"."""
    if d.diff < 0:
        change = f"lowers test FPR vs {BASELINE} by {number(-d.diff)}"
    elif d.diff > 0:
        change = f"raises test FPR vs {BASELINE} by {number(d.diff)}"
    else:
        change = f"has the test FPR of {BASELINE}"
    models = f"these {counted(d.seeds, 'paired seed')}' models" if d.seeds > 1 else "this 1 paired seed's model"
    if d.p is None:
        fixed = f"no interval or p over test negatives ({d.no_interval})"
    else:
        significance = "" if d.p < SIGNIFICANCE else ", not significant"
        fixed = f"ΔFPR over test negatives {interval_text(d.low, d.high, signed)}, {p_text(d.p)}{significance}"
    return f"{change}; {seed_view(d)}; given {models}, {fixed}"


def p_text(p: float) -> str:
    """"p = 0.030", or "p < 0.001"."""
    shown = p_value(p)
    return f"p < {shown[1:]}" if shown.startswith("<") else f"p = {shown}"


def seed_view(d: FprDifference) -> str:
    """The training-seed view of the difference: the Student-t interval and one-sample t-test of the
    paired seeds' own differences, and in how many of them the FPR moved the way the mean did (the
    interval and p over test negatives hold the trained models fixed; this one holds the spread
    between seeds)."""
    if len(d.per_seed) < 2:
        return "one seed: no interval over training seeds"
    interval = seed_interval(list(d.per_seed), bounds=(-1.0, 1.0))
    spread = float(np.std(d.per_seed, ddof=1))
    p = float(ttest_1samp(d.per_seed, 0.0).pvalue) if spread > 0 else None
    over = f"over training seeds ΔFPR {signed(interval.auc)} {interval_text(interval.low, interval.high, signed)} ({LEVEL_TEXT} t)"
    tested = f", {p_text(p)}{'' if p < SIGNIFICANCE else ', not significant'}" if p is not None else ""
    if d.diff == 0:
        return over + tested
    agree = sum(value < 0 if d.diff < 0 else value > 0 for value in d.per_seed)
    return f"{over}{tested}, {'lower' if d.diff < 0 else 'higher'} in {agree} of {len(d.per_seed)} seeds"


def tpr_note(cell: Cell) -> str:
    """A warning where the row's test TPR misses the validation target it was chosen for."""
    level = LEADERBOARD_POINT[1]
    tpr = cell.deployed[LEADERBOARD_POINT]["tpr"].mean
    return f"; its test TPR {number(tpr)} misses {level}" if tpr < float(level) else ""


def verdicts(board: Leaderboard) -> list[Verdict]:
    return [verdict(summary) for summary in board.datasets]
