"""What a first report must get right: runs of different budgets in separate columns (never bold
across them), smoke suites labelled, the per-dataset verdict's paired test-FPR difference, the
LaTeX table, and the records as pandas DataFrames."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from scipy.stats import norm, t as t_distribution

from benchmarks import leaderboard
from benchmarks.core.metrics import binary_metrics, operating_points
from benchmarks.core.storage import save_record
from reports import load_runs as load_frames
from reports.deployed import LEADERBOARD_POINT
from reports.leaderboard import build_leaderboard
from reports.report import build_report
from reports.runs import load_runs
from reports.verdicts import verdicts
from tests.conftest import write_suite
from tests.reports.record_fixture import current_record


def run_record(method: str, seed: int, quality: float, epochs: int = 2, command: str | None = None) -> dict:
    """The fixture record as a run of `method`/`seed`/`epochs` with scores separated by `quality`,
    and operating points chosen on validation scores drawn like its test scores."""
    record = current_record(f"synthetic2d-{method}-s{seed}-e{epochs}{seed:08d}")
    y = np.array(record["test_scores"]["y_true"])
    rng = np.random.default_rng([seed, epochs, sum(map(ord, method))])
    scores = quality * y + rng.normal(0, 1, len(y))
    val_y = np.concatenate([y, y])
    val_scores = quality * val_y + rng.normal(0, 1, len(val_y))
    record["config"].update(method=method, seed=seed, epochs=epochs)
    record.update(test=binary_metrics(y, scores), val=binary_metrics(val_y, val_scores),
                  test_scores={"y_true": y.tolist(), "y_score": scores.tolist()},
                  operating_points=operating_points(val_y, val_scores, y, scores))
    if command:
        record["command"] = command
    return record


def test_runs_of_different_epochs_never_share_a_column(tmp_path):
    """The issue's case: alm for 3 epochs and aucm for 2 on the same data were one column, and aucm
    took the bold. Each budget is its own column, labelled with the field that differs."""
    for record in (run_record("bce", 0, 1.0), run_record("aucm", 0, 2.0), run_record("alm", 0, 1.0, epochs=3)):
        save_record(record, tmp_path / "runs")
    board = build_leaderboard(load_runs(tmp_path / "runs"))
    columns = {d.key.label: sorted(row.method for row in d.cells) for d in board.datasets}
    assert columns == {"synthetic2d · 8px · 2 epochs": ["aucm", "bce"], "synthetic2d · 8px · 3 epochs": ["alm"]}
    two = board.datasets[0]
    assert {row.method for row, cell in two.cells.items() if "auc" in cell.best} == {"aucm"}
    build_report(tmp_path / "runs", tmp_path / "report.html")
    lines = (tmp_path / "leaderboard.csv").read_text().splitlines()
    header = lines[0].split(",")
    epochs = {line.split(",")[header.index("method")]: line.split(",")[header.index("epochs")] for line in lines[1:]}
    assert epochs == {"bce": "2", "aucm": "2", "alm": "3"}


def test_a_smoke_suite_is_labelled_as_such(tmp_path, capsys):
    quick = "python -m benchmarks.leaderboard --suite quick --out runs/quick"
    for record in (run_record("bce", 0, 1.0, command=quick), run_record("alm", 0, 2.0, command=quick)):
        save_record(record, tmp_path / "runs")
    (summary,) = build_leaderboard(load_runs(tmp_path / "runs")).datasets
    assert summary.key.label == "synthetic2d · 8px · smoke test (quick suite)"
    build_report(tmp_path / "runs", tmp_path / "report.html", summary=sys.stderr)
    err = capsys.readouterr().err
    assert "columns marked 'smoke test' check the pipeline, they are not results" in err
    assert "--seeds 0-4" not in err  # more seeds of a smoke test are not the next step


def test_the_verdict_is_the_paired_test_fpr_difference_at_the_validation_threshold(tmp_path):
    """Per test negative, alm's false positive minus bce's (each at its own threshold chosen on
    validation for TPR >= 0.95): their mean is the FPR difference, and p is the normal test of it."""
    bce, alm = run_record("bce", 0, 0.5), run_record("alm", 0, 3.0)
    for record in (bce, alm):
        save_record(record, tmp_path / "runs")
    (verdict,) = verdicts(build_leaderboard(load_runs(tmp_path / "runs")))
    y = np.array(bce["test_scores"]["y_true"])
    hits = {name: (np.array(r["test_scores"]["y_score"]) >= r["operating_points"]["min_tpr"]["0.95"]["threshold"])[y == 0]
            for name, r in (("bce", bce), ("alm", alm))}
    d = hits["alm"].astype(float) - hits["bce"]
    assert verdict.difference.diff == pytest.approx(d.mean())
    assert verdict.difference.p == pytest.approx(2 * norm.sf(abs(d.mean()) / (d.std(ddof=1) / math.sqrt(len(d)))))
    assert verdict.difference.low < d.mean() < verdict.difference.high and verdict.difference.seeds == 1
    assert d.mean() < 0 and verdict.text.startswith(
        f"on the critical class (blob), at the val-chosen TPR ≥ 0.95 threshold: alm lowers test FPR vs bce by "
        f"{-d.mean():.3f} [")


def test_the_verdict_says_in_how_many_seeds_the_fpr_moved_its_way(tmp_path):
    """The verdict's interval and p are over test negatives given the trained runs; beside them, each
    paired seed's own FPR difference (alm's false-positive share minus bce's), and how many agree
    in sign with the mean, computed here by hand."""
    records = {(method, seed): run_record(method, seed, quality) for seed in (0, 1, 2)
               for method, quality in (("bce", 1.0), ("alm", 1.1))}
    for record in records.values():
        save_record(record, tmp_path / "runs")
    (verdict,) = verdicts(build_leaderboard(load_runs(tmp_path / "runs")))
    y = np.array(records["bce", 0]["test_scores"]["y_true"])

    def false_positives(r: dict) -> np.ndarray:
        return (np.array(r["test_scores"]["y_score"]) >= r["operating_points"]["min_tpr"]["0.95"]["threshold"])[y == 0]

    per_seed = [float((false_positives(records["alm", s]).astype(float) - false_positives(records["bce", s])).mean())
                for s in (0, 1, 2)]
    assert verdict.difference.per_seed == pytest.approx(per_seed)
    assert verdict.difference.diff == pytest.approx(np.mean(per_seed))
    direction = "lower" if verdict.difference.diff < 0 else "higher"
    agree = sum((d < 0) == (verdict.difference.diff < 0) and d != 0 for d in per_seed)
    half = t_distribution.ppf(0.975, 2) * np.std(per_seed, ddof=1) / math.sqrt(3)
    low, high = np.mean(per_seed) - half, np.mean(per_seed) + half
    p = 2 * t_distribution.sf(abs(np.mean(per_seed)) / (np.std(per_seed, ddof=1) / math.sqrt(3)), 2)
    assert "over test negatives given 3 paired seeds' models; over training seeds ΔFPR " in verdict.text
    shown_p = "<0.001" if p < 0.001 else f"{p:.3f}"
    assert f"{np.mean(per_seed):+.3f} [{low:+.3f}, {high:+.3f}] (95% t), p = {shown_p}" in verdict.text, verdict.text
    assert verdict.text.endswith(f"{direction} in {agree} of 3 seeds")


def test_the_verdict_row_is_chosen_on_validation_not_on_test(tmp_path):
    """Of two competing rows, the verdict compares with bce the one whose validation FPR at its
    validation-chosen threshold is lower, even when the other one's test FPR is lower: choosing on
    test and then testing on it would report the best of two noisy differences."""
    records = [run_record("bce", 0, 1.0), run_record("aucm", 0, 1.5), run_record("alm", 0, 1.5)]
    point = {"aucm": (0.2, 0.9), "alm": (0.6, 0.1)}  # (validation FPR, test FPR) at the TPR >= 0.95 point
    for record in records:
        method = record["config"]["method"]
        if method in point:
            values = record["operating_points"]["min_tpr"]["0.95"]
            values["val"]["fpr"] = point[method][0]
            # the test FPR the leaderboard shows comes from the scores: move the threshold for it
            y, scores = np.array(record["test_scores"]["y_true"]), np.array(record["test_scores"]["y_score"])
            values["threshold"] = float(np.quantile(scores[y == 0], 1 - point[method][1]))
        save_record(record, tmp_path / "runs")
    (summary,) = build_leaderboard(load_runs(tmp_path / "runs")).datasets
    fpr = {row.method: cell.deployed[LEADERBOARD_POINT]["fpr"].mean for row, cell in summary.cells.items()}
    assert fpr["alm"] < fpr["aucm"]  # alm has the lower test FPR ...
    (verdict,) = verdicts(build_leaderboard(load_runs(tmp_path / "runs")))
    assert verdict.row.method == "aucm" and ": aucm " in verdict.text  # ... aucm the lower validation FPR
    assert verdict.text.endswith("; one seed: no interval over training seeds")


def test_latex_table_beside_csv_and_markdown(tmp_path):
    for record in (run_record("bce", 0, 1.0), run_record("alm", 0, 2.0), run_record("bce", 1, 1.0), run_record("alm", 1, 2.0)):
        save_record(record, tmp_path / "runs")
    build_report(tmp_path / "runs", tmp_path / "report.html")
    tex = (tmp_path / "leaderboard.tex").read_text()
    assert "\\toprule" in tex and "\\multicolumn{5}{c}{synthetic2d, 8px}" in tex
    alm = next(line for line in tex.splitlines() if line.startswith("alm &"))
    assert alm.count("\\textbf{") >= 1 and "$\\pm$" in alm and "±" not in tex


def test_load_runs_gives_a_table_of_runs_and_one_of_epochs(tmp_path):
    records = [run_record("bce", 0, 1.0), run_record("alm", 1, 2.0, epochs=3)]
    for record in records:
        save_record(record, tmp_path / "runs")
    (tmp_path / "runs" / "broken.json").write_text("{")
    runs, epochs = load_frames(tmp_path / "runs")
    runs = runs.set_index("run_id")
    for record in records:
        line = runs.loc[record["run_id"]]
        assert (line["method"], line["seed"], line["epochs"]) == (record["config"]["method"], record["config"]["seed"],
                                                                  record["config"]["epochs"])
        assert line["test.auc"] == record["test"]["auc"] and line["val.auc"] == record["val"]["auc"]
        assert line["params.delta"] == record["config"]["params"]["delta"]
        history = epochs[epochs["run_id"] == record["run_id"]]
        assert history["epoch"].tolist() == [h["epoch"] for h in record["history"]]
        assert history["val_auc"].tolist() == [h["val_auc"] for h in record["history"]]
    assert list(epochs.columns[:4]) == ["run_id", "dataset", "method", "seed"]
    (tmp_path / "empty").mkdir()
    no_runs, no_epochs = load_frames(tmp_path / "empty")
    assert no_runs.empty and no_epochs.empty and list(no_epochs.columns) == ["run_id", "dataset", "method", "seed"]


def test_the_leaderboard_ends_with_the_table_verdicts_and_next_steps(tmp_path, capsys):
    """`python -m benchmarks.leaderboard` prints its leaderboard and verdicts on stderr, then the
    report's path as the last stdout line."""
    suite, out = write_suite(tmp_path), tmp_path / "runs"
    assert leaderboard.main(["--suite", str(suite), "--out", str(out), "--seeds", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1] == str(out / "report.html")
    err = captured.err.split("complete records in")[1]  # what follows the suite's closing line
    assert "\nsynthetic2d · 8px\n  method seeds test AUC" in err
    assert "\n  bce " in err and "\n  alm " in err and "\n  verdict: " in err
    assert "next:\n  - open the report in a browser:" in err
    assert f"`python -m benchmarks.leaderboard --suite {suite} --seeds 0-4`" in err
    assert not (out / ".claims").exists() and not (out / "checkpoints").exists()  # emptied, then removed


def test_the_baseline_is_the_bce_variant_selected_on_validation(tmp_path):
    """With two bce variants on a dataset, the other rows compare with the one selected on
    validation (its validation AUC is higher), not with whichever sorts first."""
    for quality, lr in ((0.5, 0.001), (2.0, 0.1)):  # the lr=0.001 row sorts first and validates worse
        record = run_record("bce", 0, quality)
        record["config"]["params"] = {"lr": lr}
        record["run_id"] += f"-lr{lr}"
        save_record(record, tmp_path / "runs")
    save_record(run_record("alm", 0, 1.0), tmp_path / "runs")
    (summary,) = build_leaderboard(load_runs(tmp_path / "runs")).datasets
    assert [row.label for row in summary.cells if row.method == "bce"] == ["bce(lr=0.001)", "bce(lr=0.1)"]
    assert summary.baseline.label == "bce(lr=0.1)" and summary.cells[summary.baseline].selected


def test_the_roc_note_names_the_seeds_only_where_every_row_has_them(tmp_path):
    """The ROC figure draws each row's seed ensemble: one list of seeds where every row has the same
    seeds, else a note that each row averages its own (an ensemble of more seeds differs by itself)."""
    for method, seeds in (("bce", (0, 1)), ("alm", (0, 1))):
        for seed in seeds:
            save_record(run_record(method, seed, 1.0), tmp_path / "same")
    for method, seeds in (("bce", (0, 1)), ("alm", (0,))):
        for seed in seeds:
            save_record(run_record(method, seed, 1.0), tmp_path / "differ")
    (same,) = build_leaderboard(load_runs(tmp_path / "same")).datasets
    (differ,) = build_leaderboard(load_runs(tmp_path / "differ")).datasets
    assert same.shared_test_set and same.roc_note == "seed-ensembled scores: mean test logit over seeds 0, 1"
    assert "each row's own seeds" in differ.roc_note and "0, 1" not in differ.roc_note
