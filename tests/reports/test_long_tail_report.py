"""Long-tailed CIFAR-10 in the report: top-1 of the last epoch and of the checkpoint selected on
validation, many/medium/few-shot group and per-class accuracies, and Cao et al.'s published top-1
rows (reports/published.toml) beside the CritBench rows that run their recipe, compared on the last
epoch's test top-1 with the JPEG caveat. The records are one real stand-in run's, fabricated into
full-recipe runs (200 epochs, width 1) with chosen per-class accuracies."""
from __future__ import annotations

import copy
import csv
import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.metrics import group_accuracies, shot_groups
from benchmarks.core.storage import save_record
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from benchmarks.methods.registry import resolve_params
from datasets import get_dataset_entry
from datasets.cifar_lt import reference_counts
from reports.display import mean_pm_std
from reports.leaderboard import build_leaderboard, mean_std
from reports.leaderboard_table import leaderboard_table
from reports.published import load_references, published_comparisons
from reports.report import build_report
from reports.runs import load_runs
from reports.validation import table_rows

SHOTS = (1000, 200)  # the record's shot_thresholds: many above 1000 training images, few below 200
JPEG = "JPEG re-encoding, about 8/255 RMS from the official pixels"
# method, params, seed, rho, the test recall per class at the last epoch, and the selected checkpoint's
# shift of it (validation picked an earlier, slightly worse checkpoint)
RUNS = (
    ("ce", {}, 0, 100, [0.96, 0.97, 0.85, 0.75, 0.70, 0.62, 0.60, 0.55, 0.52, 0.51], -0.02),
    ("ce", {}, 1, 100, [0.95, 0.98, 0.86, 0.76, 0.72, 0.62, 0.62, 0.56, 0.52, 0.53], -0.01),
    ("ce", {}, 2, 100, [0.97, 0.96, 0.86, 0.76, 0.71, 0.61, 0.61, 0.54, 0.51, 0.50], -0.03),  # top-1 0.703, 0.712, 0.703
    ("ldam_ce", {"drw": True}, 0, 100, [0.93, 0.96, 0.82, 0.70, 0.78, 0.70, 0.76, 0.72, 0.70, 0.73], 0.0),
    ("ce", {}, 0, 10, [0.95, 0.97, 0.88, 0.80, 0.86, 0.80, 0.88, 0.88, 0.90, 0.88], 0.0),
)


@pytest.fixture(scope="module")
def real_record(tmp_path_factory) -> dict:
    """One real cifar10_lt run on the stand-in data (1 epoch, width 0.125): a record of today's shape."""
    stand_in = get_dataset_entry("cifar10_lt").stand_in(tmp_path_factory.mktemp("data"))
    config = RunConfig(dataset="cifar10_lt", method="ce", task="multiclass", epochs=1, width=0.125, device="cpu",
                       **stand_in.run_kwargs())
    return run_benchmark(resolve_config(config), progress=False)


def class_results(recall: list[float], groups: dict) -> dict:
    return {"acc": float(np.mean(recall)), "auc": 0.9, "balanced_accuracy": float(np.mean(recall)),
            "recall": recall, "groups": group_accuracies(recall, groups)}


def full_recipe(real: dict, method: str, params: dict, seed: int, rho: int, recall: list[float], shift: float) -> dict:
    """`real` as a run of Cao et al.'s recipe (200 epochs, ResNet-32 at width 1) on long-tailed
    CIFAR-10 at `rho` (the default 100 leaves dataset_params empty), with the given test recall at
    the last epoch and `shift` added to it at the checkpoint selected on validation."""
    record = copy.deepcopy(real)
    record["config"].update(method=method, seed=seed, epochs=200, width=1.0, dataset_params={} if rho == 100 else {"rho": rho},
                            params={**resolve_params(method, {**params, "preset": "cifar_lt"})})
    counts = reference_counts(5000, 10, rho, "exp")
    groups = shot_groups(counts, SHOTS)
    record["dataset"].update(rho=float(rho), profile="exp", shot_thresholds={"many_above": SHOTS[0], "few_below": SHOTS[1]},
                             splits={**record["dataset"]["splits"], "train": {"n": sum(counts), "positives": counts[9],
                                                                              "class_counts": counts}})
    record["run_id"] = f"cifar10_lt-rho{rho}-{method}-s{seed}"
    record["multiclass"].update(test=class_results([r + shift for r in recall], groups),
                                last_epoch={"epoch": 200, "val": class_results(recall, groups),
                                            "test": class_results(recall, groups)})
    return record


@pytest.fixture(scope="module")
def long_tail_runs(real_record, tmp_path_factory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("long_tail")
    records = [full_recipe(real_record, *run) for run in RUNS]
    for record in records:
        save_record(record, root / "runs")
    return root, records


def test_published_rows_compare_on_the_last_epochs_top1_on_their_rho_only(long_tail_runs):
    root, records = long_tail_runs
    board = build_leaderboard(load_runs(root / "runs"))
    published = published_comparisons(board)
    rho100, rho10 = (published[d.key.anchor] for d in board.datasets)
    assert {ref.label for ref in rho100.references} == {f"Cao et al. 2019 {name} (rho=100)" for name in (
        "ERM", "Focal", "LDAM", "CB RS", "CB RW", "CB Focal", "LDAM-DRW", "DRW")}
    assert all(ref.label.endswith("(rho=10)") for ref in rho10.references)
    ce, ldam = rho100.comparisons  # ERM = ce and LDAM-DRW = ldam_ce drw=true; CB RW has no match
    assert (ce.reference.label, ldam.reference.label) == ("Cao et al. 2019 ERM (rho=100)", "Cao et al. 2019 LDAM-DRW (rho=100)")
    last = [np.mean(r["multiclass"]["last_epoch"]["test"]["recall"]) for r in records[:3]]
    assert ce.n == 3 and ce.mean == pytest.approx(np.mean(last)) and ce.interval.low < 0.7036 < ce.interval.high
    assert ce.verdict == "consistent"
    assert ce.selected == pytest.approx(np.mean([r["multiclass"]["test"]["acc"] for r in records[:3]]))
    assert ldam.n == 1 and ldam.verdict == "one seed: no CI" and ldam.mean == pytest.approx(0.78)
    (ce10,) = rho10.comparisons
    assert ce10.reference.label == "Cao et al. 2019 ERM (rho=10)" and ce10.reference.acc == 0.8639
    assert not [row for row in leaderboard_table(board, published).rows if row.kind == "published"]  # no AUC to show


def test_a_record_without_its_last_epoch_has_no_top1_to_compare(real_record):
    (erm,) = [ref for ref in load_references() if ref.label == "Cao et al. 2019 ERM (rho=100)"]
    older = copy.deepcopy(real_record)
    del older["multiclass"]["last_epoch"]
    assert np.isnan(erm.run_value(older)) and erm.selected_value(older) == real_record["multiclass"]["test"]["acc"]


def test_the_report_shows_top1_groups_per_class_and_the_caveated_verdicts(long_tail_runs):
    root, records = long_tail_runs
    html = build_report(root / "runs", root / "report.html").read_text()
    section = html[html.index("<h3>Long tail: top-1 and shot groups</h3>"):]
    table = section[:section.index("</table>")]
    ce = records[:3]
    for checkpoint in ("last_epoch", "selected"):
        tests = [r["multiclass"]["last_epoch"]["test"] if checkpoint == "last_epoch" else r["multiclass"]["test"] for r in ce]
        assert f"<td>{mean_pm_std(mean_std([t['acc'] for t in tests]))}</td>" in table
        for group in ("many", "medium", "few"):
            assert f"<td>{mean_pm_std(mean_std([t['groups'][group]['acc'] for t in tests]))}</td>" in table
    assert "many (&gt; 1000 train images): airplane, automobile, bird, cat" in section
    per_class = section[section.index("Per-class test accuracy"):]
    per_class = per_class[:per_class.index("</table>")]
    assert f"<td>{mean_pm_std(mean_std([r['multiclass']['last_epoch']['test']['recall'][9] for r in ce]))}</td>" in per_class
    published = html[html.index("<h3>Published results</h3>"):]
    published = published[:published.index('<p class="note">A CritBench row')]
    assert "last-epoch test top-1" in published and JPEG in published and "one seed: no CI" in published
    assert re.search(r"Classes \(balanced test set\).*?<th>truck</th><td class=\"num\">50</td>", html, re.S)


def test_csv_markdown_and_validation_table_carry_the_top1_comparison(long_tail_runs):
    root, _ = long_tail_runs
    build_report(root / "runs", root / "report.html")
    lines = [r for r in csv.DictReader((root / "leaderboard.csv").open()) if r["kind"] == "vs_published"]
    erm = next(line for line in lines if line["published"] == "Cao et al. 2019 ERM (rho=100)")
    assert float(erm["top1_last_epoch_ci95_low"]) < float(erm["published_top1"]) < float(erm["top1_last_epoch_ci95_high"])
    assert erm["top1_selected_mean"] and JPEG in erm["caveat"] and not erm["auc_mean"]
    published = [r for r in csv.DictReader((root / "leaderboard.csv").open()) if r["kind"] == "published"]
    assert {"Cao et al. 2019 CB RW (rho=100)", "Cao et al. 2019 CB RW (rho=10)"} <= {r["method"] for r in published}
    markdown = (root / "leaderboard.md").read_text()
    assert "| last-epoch test top-1 |" in markdown and JPEG in markdown
    rows = {(row[0], row[1]): row for row in table_rows(root / "runs")}
    text = rows["cifar10_lt · rho 100 · 32px", "ce"][4]
    assert text.startswith("0.7036 Cao et al. 2019 ERM (rho=100) (consistent), vs last-epoch test top-1 0.7060 ")
    assert "(selected on validation: " in text and JPEG in text


def test_every_top1_row_is_one_minus_its_printed_error():
    """Cao et al. print top-1 error; each row's `source` quotes it and `acc` is 1 - error."""
    rows = [ref for ref in load_references() if ref.top1]
    assert len(rows) == 16
    for ref in rows:
        (error,) = re.findall(r"top-1 error ([0-9.]+)% as printed", ref.source)
        assert ref.acc == pytest.approx(1 - float(error) / 100, abs=1e-9) and ref.auc is None
        assert JPEG in ref.caveat and ref.dataset_facts["rho"] in (100, 10)
    matched = {ref.label for ref in rows if ref.match}
    assert matched == {f"Cao et al. 2019 {name} (rho={rho})" for name in ("ERM", "Focal", "DRW", "LDAM", "LDAM-DRW")
                       for rho in (100, 10)}


@pytest.mark.parametrize("drw, row", [(False, "Cao et al. 2019 ERM (rho=100)"), (True, "Cao et al. 2019 DRW (rho=100)")])
def test_ce_with_and_without_drw_matches_its_own_published_row(real_record, drw, row):
    """Table 2's ERM is cifar_train.py's train_rule None, Table 5's DRW its train_rule DRW: one row each."""
    record = full_recipe(real_record, "ce", {"drw": drw}, seed=0, rho=100, recall=[0.7] * 10, shift=0.0)
    assert {ref.label for ref in load_references() if ref.matches(record)} == {row}


@pytest.mark.parametrize("body,message", [
    ('acc = 0.7\nauc = 0.9\n', 'scored = "top-1 accuracy" needs acc and no auc'),
    ('auc = 0.9\n', 'scored = "top-1 accuracy" needs acc and no auc'),
    ('acc = 0.7\nmatch = { method = "ce" }\n', 'a top-1 accuracy matches only --task multiclass runs'),
])
def test_a_bad_top1_reference_is_refused(tmp_path, body, message):
    path = tmp_path / "published.toml"
    path.write_text('[[reference]]\ndataset = "cifar10_lt"\nsize = 32\nlabel = "x"\nsource = "s"\nprotocol = "p"\n'
                    f'scored = "top-1 accuracy"\n{body}')
    with pytest.raises(CritBenchError, match=re.escape(message)):
        load_references(path)
