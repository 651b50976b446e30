"""The report shows a dataset's dose-responses: ALM's runs that differ only in mu0 as a figure
(metrics and the penalty's activity against mu0, log axis) with the table under it."""
from __future__ import annotations

import json
import re

from reports.dose_response import dose_points, failed_rows, markdown
from reports.report import build_report
from reports.runs import load_runs
from tests.reports.test_dose_response import alm_record, write


def dose_plots(html: str) -> dict[str, dict]:
    return {key: json.loads(body) for key, body in re.findall(r'data-plot="(ds-[^"]+-dose-[^"]+)">(.*?)</script>', html)}


def test_a_mu0_sweep_is_a_figure_and_its_table_in_the_datasets_section(tmp_path):
    records = [alm_record(1e-7, 0.7), alm_record(1e-5, 0.75, 0.01), alm_record(1e-3, 0.8, 0.5)]
    for record in records[1:]:  # a second response at delta 0.5: another group, its own heading
        other = alm_record(record["config"]["params"]["mu0"], 0.6, 0.2)
        other["config"]["params"]["delta"] = 0.5
        other["run_id"] += "-d05"
        records.append(other)
    folder = write(tmp_path / "runs", records)
    html = build_report(folder, tmp_path / "report.html").read_text()
    headings = re.findall(r"<h3>Dose-response: (.*?)</h3>", html)
    assert headings == ["alm by delta, seed 0, mu0=1e-05", "alm by delta, seed 0, mu0=0.001",  # the grid read both ways
                        "alm by mu0, seed 0, delta=0.25", "alm by mu0, seed 0, delta=0.5"]
    plots = dose_plots(html)
    assert len(plots) == 4
    figure = next(plot for key, plot in plots.items() if key.endswith("mu0-seed-0-delta-0-25"))
    by_name = {trace["name"]: trace for trace in figure["data"]}
    assert by_name["test AUC"]["x"] == [1e-7, 1e-5, 1e-3] and by_name["test AUC"]["y"] == [0.7, 0.75, 0.8]
    assert set(by_name) == {"val AUC", "test AUC", "test FPR@TPR=0.95", "test TPR@FPR=0.1", "term / loss (mean)"}
    assert by_name["term / loss (mean)"]["y"] == [None, 0.015, 0.75]  # the mu0 = 1e-7 record predates the figure
    assert figure["layout"]["xaxis2"]["type"] == "log" and figure["layout"]["xaxis2"]["title"]["text"] == "mu0"
    (response,) = [r for r in dose_points(load_runs(folder).runs, "alm", "mu0") if dict(r.fixed)["delta"] == 0.25]
    for line in markdown(response.points, "mu0").splitlines()[2:]:  # the table under it: the Markdown table's cells
        assert "<tr><td>" + "</td><td>".join(cell.strip() for cell in line.strip("| ").split(" | ")) + "</td></tr>" in html


def test_no_dose_response_without_two_values(tmp_path):
    folder = write(tmp_path / "runs", [alm_record(1e-3, 0.8, 0.5)])
    assert "Dose-response" not in build_report(folder, tmp_path / "report.html").read_text()


def test_a_diverged_dose_is_a_row_of_the_reports_table(tmp_path):
    """The report's table, like `python -m reports.dose_response`, lists a failed value (results/alm_dose: mu0 = 1e-2)."""
    folder = write(tmp_path / "runs", [alm_record(1e-5, 0.75, 0.01), alm_record(1e-4, 0.9, 0.1)])
    failure = {"record_version": 2, "run_id": "synthetic2d-alm-s0-failed", "status": "failed", "failure": "diverged",
               "reason": "DivergedError: training loss became nan in epoch 8", "config": alm_record(1e-2, 0.5)["config"]}
    (folder / "synthetic2d-alm-s0-failed.failed.json").write_text(json.dumps(failure))
    html = build_report(folder, tmp_path / "report.html").read_text()
    table = html[html.index('class="detail dose-table"'):]
    table = table[:table.index("</table>")]
    cells = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", table)
    assert [value for value, _ in cells] == ["1e-05", "0.0001", "0.01"]
    assert cells[2][1] == "failed: DivergedError: training loss became nan in epoch 8"


def test_a_diverged_doses_row_shows_the_epochs_it_finished_and_their_activity(tmp_path):
    """A failure record that kept its history (the epochs before the NaN) fills the row's epochs and
    ALM-activity cells from it: the penalty's weight that made the run diverge is in the table."""
    folder = write(tmp_path / "runs", [alm_record(1e-5, 0.75, 0.01), alm_record(1e-4, 0.9, 0.1)])
    diverged = alm_record(1e-2, 0.5, term_to_loss=40.0)
    failure = {"record_version": 2, "run_id": "synthetic2d-alm-s0-failed", "status": "failed", "failure": "diverged",
               "reason": "DivergedError: training loss became nan in epoch 3", "config": diverged["config"],
               "history": diverged["history"]}
    (folder / "synthetic2d-alm-s0-failed.failed.json").write_text(json.dumps(failure))
    (response,) = dose_points(load_runs(folder).runs, "alm", "mu0")
    row = markdown(response.points, "mu0", failed_rows(load_runs(folder).failures, response)).splitlines()[-1]
    cells = [cell.strip() for cell in row.strip("| ").split(" | ")]
    assert cells[:2] == ["0.01", "failed: DivergedError: training loss became nan in epoch 3"]
    assert cells[5] == "2 finished" and cells[6] == "—"  # epochs kept; no best epoch
    assert cells[7:] == ["0.02", "0.1", "0.2", "60", "80"]  # final mu, max multiplier, violated share, term/loss mean, max
