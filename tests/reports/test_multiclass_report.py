"""A report over --task multiclass runs: the dataset section shows MedMNIST v2's test ACC and AUC per
method row (mean ± std over seeds) and the seed-summed test confusion matrix, drawn by plotly."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks.core.config import RunConfig
from benchmarks.core.storage import save_record
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from reports.display import mean_pm_std
from reports.leaderboard import mean_std
from reports.report import build_report
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
