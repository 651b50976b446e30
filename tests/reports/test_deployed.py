"""The report's deployable operating points: test TPR/FPR at validation-chosen thresholds with
stratified-bootstrap CIs, per run and per leaderboard cell, in the HTML, CSV and Markdown; records
without them give empty cells."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from scipy.stats import binom

from benchmarks.core.metrics import calibration, operating_points
from benchmarks.core.storage import save_record
from reports.deployed import LEADERBOARD_POINT, rates, run_points
from reports.report import build_report
from reports.runs import load_runs
from reports.stats import bootstrap_mean_samples
from tests.reports.record_fixture import current_record, edited

CSV_TPR = "test_tpr_at_val_min_tpr_0.95"


def with_points(record: dict, seed: int, probability: bool = True) -> dict:
    """`record` (seed `seed`) with operating points from fabricated validation scores and calibration."""
    y, s = np.array(record["test_scores"]["y_true"]), np.array(record["test_scores"]["y_score"], dtype=float)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(y), 200)  # validation drawn like test, so thresholds fall among the test scores
    val_y, val_s = y[index], s[index] + rng.normal(0, s.std() / 10, 200)
    record = edited(record, "config.seed", seed)
    record.update(run_id=f"synthetic2d-alm-s{seed}-{seed:012d}", operating_points=operating_points(val_y, val_s, y, s),
                  calibration={"val": calibration(val_y, val_s), "test": calibration(y, s)} if probability else None)
    return record


def test_the_bootstrap_of_a_rate_is_binomial():
    # TPR at a fixed threshold with 3 of 4 positives above it: a resample's hits are Binomial(4, 3/4).
    samples = bootstrap_mean_samples([1, 1, 1, 0], n_boot=20000, seed=0)
    frequencies = [np.mean(samples == k / 4) for k in range(5)]
    assert frequencies == pytest.approx(binom.pmf(range(5), 4, 0.75), abs=0.01)
    assert np.array_equal(samples, bootstrap_mean_samples([1, 1, 1, 0], n_boot=20000, seed=0))


def test_a_cell_of_seeds_on_one_test_set_resamples_it_together(tmp_path):
    """Two seeds with the same scores and thresholds: the mean over them is the one run's rate, and
    so is its CI (resampled independently, the two would average out to a narrower interval)."""
    record = with_points(current_record(), seed=1)
    twin = {**record, "run_id": "synthetic2d-alm-s2-000000000002", "config": {**record["config"], "seed": 2}}
    for r in (record, twin):
        save_record(r, tmp_path)
    runs = load_runs(tmp_path).runs
    one, both = rates(runs[:1], *LEADERBOARD_POINT), rates(runs, *LEADERBOARD_POINT)
    expected = record["operating_points"]["min_tpr"]["0.95"]["test"]
    assert one["tpr"].mean == pytest.approx(expected["tpr"]) and one["fpr"].mean == pytest.approx(expected["fpr"])
    for rate in ("tpr", "fpr"):
        assert (both[rate].low, both[rate].high) == (one[rate].low, one[rate].high)
        assert both[rate].low <= both[rate].mean <= both[rate].high and both[rate].std == 0.0


def test_report_csv_and_markdown_show_the_operating_point(tmp_path):
    runs = tmp_path / "runs"
    for seed in (1, 2):
        save_record(with_points(current_record(), seed), runs)
    build_report(runs, tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert "at val TPR ≥ 0.95 threshold" in html and "Operating points chosen on validation" in html
    assert "expected calibration error (15 equal-width bins)" in html
    (line,) = [row for row in csv.DictReader((tmp_path / "leaderboard.csv").open()) if row["kind"] == "seeds"]
    run = next(run for run in load_runs(runs).runs if run.seed == 1)
    assert [p.label for p in run_points(run)] == ["val TPR ≥ 0.9", "val TPR ≥ 0.95", "val TPR ≥ 0.98",
                                                  "val FPR ≤ 0.01", "val FPR ≤ 0.05", "val FPR ≤ 0.1"]
    tprs = [r["operating_points"]["min_tpr"]["0.95"]["test"]["tpr"] for r in (with_points(current_record(), s) for s in (1, 2))]
    assert float(line[f"{CSV_TPR}_mean"]) == pytest.approx(np.mean(tprs), abs=1e-5) and 0 < np.mean(tprs) < 1
    assert float(line[f"{CSV_TPR}_ci95_low"]) <= float(line[f"{CSV_TPR}_mean"]) <= float(line[f"{CSV_TPR}_ci95_high"])
    assert line["test_ece_15_mean"] and line["test_brier_mean"]
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert "## Test TPR at the validation TPR ≥ 0.95 threshold" in markdown and "## Test FPR" in markdown


def test_records_without_operating_points_show_empty_cells(tmp_path):
    runs = tmp_path / "runs"
    save_record(current_record(), runs)  # the version 1 record: no operating_points, no calibration
    save_record(with_points(current_record(), seed=1, probability=False), runs / "other")
    html = build_report(runs, tmp_path / "report.html").read_text()
    assert "Not in this record (written before operating points were recorded)." in html
    assert "Not reported: this method&#39;s score is not a probability logit." in html
    lines = [row for row in csv.DictReader((tmp_path / "leaderboard.csv").open()) if row["kind"] == "seeds"]
    assert len(lines) == 1 and lines[0][f"{CSV_TPR}_mean"] and lines[0]["test_brier_mean"] == ""
    # the cell rests on the one run of two that has operating points, and says so
    assert lines[0][f"{CSV_TPR}_n_runs"] == "1" and lines[0]["n_seeds"] == "2"
    assert "(1 of 2 runs)" in (tmp_path / "leaderboard.md").read_text() and "(1 of 2 runs)" in html
    old = load_runs(runs).runs
    assert rates([run for run in old if "operating_points" not in run.record], *LEADERBOARD_POINT) is None


def test_a_record_with_only_older_runs_has_an_empty_column(tmp_path):
    save_record(current_record(), tmp_path / "runs")
    build_report(tmp_path / "runs", tmp_path / "report.html")
    (line,) = [row for row in csv.DictReader((tmp_path / "leaderboard.csv").open()) if row["kind"] == "seeds"]
    assert line[f"{CSV_TPR}_mean"] == "" and line[f"{CSV_TPR}_ci95_high"] == ""
    assert "| alm | — |" in (tmp_path / "leaderboard.md").read_text()
    assert not math.isnan(float(line["auc_mean"]))
