"""What a first report must get right: runs of different budgets in separate columns (never bold
across them), smoke suites labelled, the per-dataset verdict's paired test-FPR difference, the
LaTeX table, and the records as pandas DataFrames."""
from __future__ import annotations

import csv
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
from reports.leaderboard_table import leaderboard_table
from reports.paired import main as paired_main
from reports.report import build_report
from reports.runs import load_runs
from reports.verdicts import verdicts
from tests.conftest import write_suite
from tests.reports.record_fixture import current_record


def run_record(method: str, seed: int, quality: float, epochs: int = 2, command: str | None = None,
               y: np.ndarray | None = None) -> dict:
    """The fixture record as a run of `method`/`seed`/`epochs` with scores separated by `quality`,
    and operating points chosen on validation scores drawn like its test scores; `y` replaces its
    test labels."""
    record = current_record(f"synthetic2d-{method}-s{seed}-e{epochs}{seed:08d}")
    y = np.array(record["test_scores"]["y_true"]) if y is None else y
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
        f"{-d.mean():.3f}; ")
    low, high = verdict.difference.low, verdict.difference.high
    assert verdict.text.endswith(f"given this 1 paired seed's model, ΔFPR over test negatives [{low:+.3f}, {high:+.3f}], p < 0.001")


def test_the_verdict_says_in_how_many_seeds_the_fpr_moved_its_way(tmp_path):
    """The verdict leads with the training-seed view: each paired seed's own FPR difference (alm's
    false-positive share minus bce's), its t interval and t-test, and how many agree in sign with the
    mean, computed here by hand; then the interval and p over test negatives given the trained runs."""
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
    shown_p = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    seeds = (f"vs bce by {abs(np.mean(per_seed)):.3f}; over training seeds ΔFPR {np.mean(per_seed):+.3f} "
             f"[{low:+.3f}, {high:+.3f}] (95% t), {shown_p}")
    assert seeds in verdict.text, verdict.text
    assert f"{direction} in {agree} of 3 seeds; given these 3 paired seeds' models, ΔFPR over test negatives [" in verdict.text


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
    assert "; one seed: no interval over training seeds; given this 1 paired seed's model, " in verdict.text


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
    records[1] = {**records[1], "resumed_from_epoch": 2, "seconds": 5.0,
                  "history": [{**h, "seconds": 100.0} for h in records[1]["history"]]}
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
    assert runs.loc[records[1]["run_id"], "seconds"] == 5.0 + 2 * 100.0  # a resumed run: its earlier process's epochs too
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
    assert f"`python -m benchmarks.leaderboard --suite {suite} --seeds 0-4 --out {out}`" in err, err
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


def test_the_roc_note_names_each_rows_seeds_where_rows_differ(tmp_path):
    """The ROC figure draws each row's seed ensemble: one list of seeds where every row has the same
    seeds, else each row's own (an ensemble of more seeds differs by itself)."""
    for method, seeds in (("bce", (0, 1)), ("alm", (0, 1))):
        for seed in seeds:
            save_record(run_record(method, seed, 1.0), tmp_path / "same")
    for method, seeds in (("bce", (0, 1)), ("alm", (0,))):
        for seed in seeds:
            save_record(run_record(method, seed, 1.0), tmp_path / "differ")
    (same,) = build_leaderboard(load_runs(tmp_path / "same")).datasets
    (differ,) = build_leaderboard(load_runs(tmp_path / "differ")).datasets
    assert same.shared_test_set and same.roc_note == "seed-ensembled scores: mean test logit over seeds 0, 1"
    assert differ.roc_note == "seed-ensembled scores: mean test logit over each row's own seeds (bce: 0, 1; alm: 0)"


ONE_POSITIVE = np.r_[1, np.zeros(99, dtype=int)]  # a test set of 99 negatives and one positive


def test_one_test_positive_gives_no_interval_and_no_p_and_says_why(tmp_path, capsys):
    """With one test positive the DeLong term of the positives divides by m - 1 = 0 and the bootstrap
    cannot vary it: the pooled AUC stands, but its intervals, the paired p against bce and the test
    TPR's interval are none (—) rather than far too narrow, and the report, leaderboard.csv, the
    seed-by-seed table and reports.paired say why."""
    for seed in (0, 1):
        for method, quality in (("bce", 1.0), ("alm", 2.0)):
            save_record(run_record(method, seed, quality, y=ONE_POSITIVE), tmp_path / "runs")
    (summary,) = build_leaderboard(load_runs(tmp_path / "runs")).datasets
    alm = next(cell for row, cell in summary.cells.items() if row.method == "alm")
    assert summary.interval_note == "too few positives (1) for an interval"
    assert alm.pooled_auc is not None and (alm.delong, alm.bootstrap, alm.vs_baseline.p) == (None, None, None)
    rates = alm.deployed[LEADERBOARD_POINT]
    assert rates["tpr"].low is None and rates["fpr"].low is not None  # 99 negatives: the FPR keeps its interval
    build_report(tmp_path / "runs", tmp_path / "report.html")
    html = " ".join((tmp_path / "report.html").read_text().split())
    assert "No interval and no p (—): too few positives (1) for an interval, as the DeLong variance" in html
    assert "No DeLong interval and no p (—): too few positives (1) for an interval." in html
    with open(tmp_path / "leaderboard.csv", newline="") as file:
        line = next(row for row in csv.DictReader(file) if row["method"] == "alm" and row["kind"] == "seed_ensemble")
    assert line["pooled_auc"]
    assert line["pooled_auc_delong_low"] == line["pooled_auc_bootstrap_low"] == line["p_vs_bce"] == ""
    assert paired_main(["--runs", str(tmp_path / "runs"), "--method", "alm"]) == 0
    out = capsys.readouterr().out
    seeds = [line.split("|") for line in out.splitlines() if line.startswith(("| 0 |", "| 1 |"))]
    assert len(seeds) == 2 and all("[" not in cells[4] and cells[5].strip() == "—" for cells in seeds)
    assert "No DeLong interval and no p (—): too few positives (1) for an interval." in out


def test_one_test_negative_gives_the_verdict_no_interval_or_p(tmp_path):
    """The verdict's FPR difference is a mean over test negatives: with one, its variance is undefined
    (it was set to zero, which made any difference significant)."""
    for method, quality in (("bce", 1.0), ("alm", 2.0)):
        save_record(run_record(method, 0, quality, y=1 - ONE_POSITIVE), tmp_path / "runs")
    (verdict,) = verdicts(build_leaderboard(load_runs(tmp_path / "runs")))
    d = verdict.difference
    assert (d.low, d.high, d.p, d.no_interval) == (None, None, None, "too few negatives (1) for an interval")
    assert verdict.text.endswith("one seed: no interval over training seeds; given this 1 paired seed's model, no "
                                 "interval or p over test negatives (too few negatives (1) for an interval)")


def test_seed_ensembles_are_bolded_and_ranked_on_the_seeds_every_competing_row_has(tmp_path):
    """The review's case: bce at seeds 0-2, alm at 0-4. alm's five-seed ensemble beats bce's by its
    two extra (strong) seeds; on the three seeds both have bce's is the better, and that is what the
    ensemble block bolds and ranks, its hover text giving the compared value."""
    for seed in range(5):
        save_record(run_record("alm", seed, 5.0 if seed >= 3 else 0.5), tmp_path / "runs")
        if seed < 3:
            save_record(run_record("bce", seed, 1.5), tmp_path / "runs")
    board = build_leaderboard(load_runs(tmp_path / "runs"))
    (summary,) = board.datasets
    cells = {row.method: cell for row, cell in summary.cells.items()}
    assert summary.compared_seeds == {0, 1, 2} and cells["bce"].compared_ensemble == cells["bce"].ensemble
    assert cells["alm"].ensemble["auc"] > cells["bce"].ensemble["auc"]  # over each row's own seeds ...
    assert cells["alm"].compared_ensemble["auc"] < cells["bce"].compared_ensemble["auc"]  # ... and over the shared ones
    assert (cells["bce"].ensemble_rank, cells["alm"].ensemble_rank) == (1.0, 2.0)
    assert "auc" in cells["bce"].ensemble_best
    assert summary.roc_note == ("seed-ensembled scores: mean test logit over each row's own seeds "
                                "(bce: 0, 1, 2; alm: 0, 1, 2, 3, 4)")
    table = leaderboard_table(board, {})
    ensembles = {row.label: row.entries[0].metrics[0] for row in table.rows if row.kind == "ensemble"}
    assert ensembles["bce"].title == "" and ensembles["alm"].title == (
        f"bold and rank compare the ensembles of the 3 seeds every competing row has: "
        f"{cells['alm'].compared_ensemble['auc']:.3f} here")
    assert "bold and ranks compare the ensembles of the seeds every competing row has" in "".join(
        part.text for part in table.explained("markdown"))


def test_seed_ensembles_that_share_no_seed_are_neither_bolded_nor_ranked(tmp_path):
    for method, seed in (("bce", 0), ("alm", 1)):
        save_record(run_record(method, seed, 1.0), tmp_path / "runs")
    board = build_leaderboard(load_runs(tmp_path / "runs"))
    (summary,) = board.datasets
    assert summary.shared_test_set and summary.compared_seeds == frozenset()
    for cell in summary.cells.values():
        assert cell.ensemble and (cell.compared_ensemble, cell.ensemble_rank, cell.ensemble_best) == (None, None, set())
    titles = {row.entries[0].metrics[0].title for row in leaderboard_table(board, {}).rows if row.kind == "ensemble"}
    assert titles == {"not bolded or ranked: the competing rows share no seed"}


def test_the_verdict_says_when_nothing_competes_with_the_baseline(tmp_path):
    """bce(lr=0.001) beside the bce(lr=0.1) selected on validation (the baseline) does not compete:
    the verdict says so, not that the records carry no operating points."""
    for quality, lr in ((0.5, 0.001), (2.0, 0.1)):
        record = run_record("bce", 0, quality)
        record["config"]["params"] = {"lr": lr}
        record["run_id"] += f"-lr{lr}"
        save_record(record, tmp_path / "runs")
    (verdict,) = verdicts(build_leaderboard(load_runs(tmp_path / "runs")))
    assert verdict.text == ("nothing here competes with bce(lr=0.1): the other rows are shown beside it, not compared "
                            "(a preset row beside its tuned row, or a variant not selected on validation)")


def test_the_verdict_says_when_the_baselines_records_lack_operating_points(tmp_path):
    bce, alm = run_record("bce", 0, 1.0), run_record("alm", 0, 2.0)
    del bce["operating_points"]
    for record in (bce, alm):
        save_record(record, tmp_path / "runs")
    (verdict,) = verdicts(build_leaderboard(load_runs(tmp_path / "runs")))
    assert verdict.row.method == "alm" and verdict.text.endswith(
        ": bce's records carry no validation-chosen operating points to compare alm with")
