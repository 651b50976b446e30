"""A report over --task multiclass runs: the dataset section shows MedMNIST v2's test ACC and AUC per
method row (mean ± std over seeds) and the seed-summed test confusion matrix, drawn by plotly; MedMNIST
v2's all-class published rows compare with multiclass ce runs at its recipe on their macro AUC."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.storage import save_record
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from reports.display import mean_pm_std
from reports.leaderboard import build_leaderboard, mean_std
from reports.leaderboard_table import leaderboard_table
from reports.published import load_references, published_comparisons
from reports.report import build_report
from reports.runs import load_runs
from tests.conftest import TINY
from tests.reports.test_reports import CHROMIUM

RUNS = (("ce", 0), ("ce", 1), ("focal_ce", 0))


@pytest.fixture(scope="module")
def multiclass_report(tmp_path_factory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("multiclass")
    records = [run_benchmark(resolve_config(RunConfig(dataset="synthetic2d_mc", method=method, task="multiclass",
                                                      seed=seed, **TINY)), progress=False) for method, seed in RUNS]
    for record in records:
        save_record(record, root / "runs")
    return build_report(root / "runs", root / "report.html"), records


def confusion_plot(html: str) -> dict:
    (found,) = re.findall(r'data-plot="confusion-[^"]+">(.*?)</script>', html)
    return json.loads(found)


def test_the_section_shows_medmnist_acc_and_auc_per_row(multiclass_report):
    path, records = multiclass_report
    html = path.read_text()
    assert "All classes (MedMNIST v2 metrics)" in html and "test AUC (macro one-vs-rest)" in html
    table = html[html.index('class="detail medmnist-table"'):]
    table = table[:table.index("</table>")]
    ce = [record["multiclass"]["test"] for record in records[:2]]
    for key in ("acc", "auc"):
        assert f"<td>{mean_pm_std(mean_std([test[key] for test in ce]))}</td>" in table  # ce: two seeds
        assert f"<td>{mean_pm_std(mean_std([records[2]['multiclass']['test'][key]]))}</td>" in table


def test_the_confusion_matrix_sums_each_rows_seeds_and_names_the_classes(multiclass_report):
    path, records = multiclass_report
    figure = confusion_plot(path.read_text())
    ce, focal = figure["data"]
    assert (ce["name"], focal["name"]) == ("ce", "focal_ce")
    summed = np.add(*(record["multiclass"]["confusion_matrix"] for record in records[:2]))
    assert ce["text"] == summed.tolist() and focal["text"] == records[2]["multiclass"]["confusion_matrix"]
    assert np.allclose(np.asarray(ce["z"]).sum(axis=1), 1, atol=1e-4)  # coloured by the share of the true class
    assert figure["layout"]["yaxis"]["ticktext"] == ["noise", "low blob", "middle blob", "<b>high blob</b>"]  # critical bold
    assert [note["text"] for note in figure["layout"]["annotations"]] == ["<b>ce</b> (2 seeds summed)", "<b>focal_ce</b> (1 seed)"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (install Debian's chromium to run the browser test)")
def test_the_confusion_matrix_renders_in_chromium(multiclass_report):
    from playwright.sync_api import sync_playwright  # the dev extra; `playwright install` is never needed

    path, _ = multiclass_report
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_selector("[id^='confusion-'].js-plotly-plot .heatmaplayer", timeout=30_000)
            drawn = page.evaluate("""() => { const plot = document.querySelector("[id^='confusion-'].js-plotly-plot");
              return {heatmaps: plot.querySelectorAll(".heatmaplayer image").length,
                      counts: Array.from(plot.querySelectorAll(".heatmaplayer text")).map(t => t.textContent),
                      ticks: Array.from(plot.querySelectorAll(".ytick text")).map(t => t.textContent)}; }""")
        finally:
            browser.close()
    assert drawn["heatmaps"] == 2
    assert "high blob" in drawn["ticks"]


def as_dermamnist(record: dict, **config) -> dict:
    """The record as a DermaMNIST run at MedMNIST v2's recipe (100 epochs, no early stop, selected on
    the validation AUC over every label), or with `config`."""
    record = copy.deepcopy(record)
    record["config"].update({"dataset": "dermamnist", "size": 28, "epochs": 100, "patience": 0, "width": 1.0,
                             "batch_size": 128, "select_on": "all_classes", **config})
    record["run_id"] = f"dermamnist-{record['config']['method']}-s{record['config']['seed']}-p{record['config']['patience']}"
    return record


def test_medmnists_all_class_rows_compare_with_multiclass_ce_runs_on_their_macro_auc(multiclass_report, tmp_path):
    _, records = multiclass_report
    runs = [as_dermamnist(record) for record in records]
    runs.append(as_dermamnist(records[0], seed=5, patience=10))  # early stopping: not MedMNIST v2's recipe
    runs.append(as_dermamnist(records[0], seed=6, select_on="critical"))  # selected on the critical class: neither
    for record in runs:
        save_record(record, tmp_path / "runs")
    board = build_leaderboard(load_runs(tmp_path / "runs"))
    (refs,) = published_comparisons(board).values()
    assert [(ref.label, ref.auc, ref.acc, ref.scored) for ref in refs.references] == [
        ("MedMNIST v2 ResNet-18 (28)", 0.917, 0.735, "all classes"), ("MedMNIST v2 ResNet-18 (224)", 0.920, 0.754, "all classes")]
    (comparison,) = refs.comparisons  # not focal_ce, nor ce with patience 10, nor the upsampled 224 row
    assert comparison.row.label == "ce(patience=0, select_on=all_classes)" and comparison.reference.label.endswith("(28)")
    assert comparison.mean == pytest.approx(np.mean([r["multiclass"]["test"]["auc"] for r in records[:2]]))
    assert not [row for row in leaderboard_table(board, published_comparisons(board)).rows if row.kind == "published"]


def test_an_all_class_reference_must_match_multiclass_runs_only(tmp_path):
    path = tmp_path / "published.toml"
    path.write_text('[[reference]]\ndataset = "dermamnist"\nsize = 28\nlabel = "x"\nauc = 0.9\nsource = "s"\nprotocol = "p"\n'
                    'scored = "all classes"\nmatch = { method = "ce" }\n')
    with pytest.raises(CritBenchError, match='matches only --task multiclass runs: add task = "multiclass"'):
        load_references(path)
    path.write_text(path.read_text().replace('"all classes"', '"every class"'))
    with pytest.raises(CritBenchError, match="scored = 'every class'; valid: critical class, all classes"):
        load_references(path)


def test_the_training_figure_draws_the_auc_that_selected_each_checkpoint(multiclass_report, tmp_path):
    """A run selected on every label's validation AUC (--select-on all_classes) is drawn on that
    curve, its star on the selected epoch's value; a default run on the critical class's."""
    _, records = multiclass_report
    critical, every_label = copy.deepcopy(records[0]), copy.deepcopy(records[1])
    every_label["config"]["select_on"] = "all_classes"
    for record in (critical, every_label):
        save_record(record, tmp_path / "runs")
    html = build_report(tmp_path / "runs", tmp_path / "report.html").read_text()
    (figure,) = [json.loads(body) for body in re.findall(r'data-plot="training-[^"]+">(.*?)</script>', html)]
    lines = {trace["hovertemplate"].split("<br>")[0].split("seed ")[1]: trace for trace in figure["data"]
             if trace["mode"] == "lines"}
    assert lines[str(critical["config"]["seed"])]["y"] == [h["val_auc"] for h in critical["history"]]
    drawn = lines[str(every_label["config"]["seed"])]
    assert drawn["y"] == [h["val_class_auc"] for h in every_label["history"]] and "every label" in drawn["hovertemplate"]
    starred = [y for trace in figure["data"] if trace["mode"] == "markers" for y in trace["y"]]
    best = next(h for h in every_label["history"] if h["epoch"] == every_label["best_epoch"])
    assert best["val_class_auc"] in starred
