"""`python -m reports.dose_response`: ALM's runs by mu0, with whether the constraint acted."""
import copy
import json

from reports.dose_response import dose_points, main, markdown
from reports.runs import load_runs
from tests.reports.record_fixture import current_record


def alm_record(mu0, test_auc, term_to_loss=None, epochs=2):
    record = current_record(run_id=f"synthetic2d-alm-s0-{int(mu0 * 1e9):012d}")
    record["config"] = copy.deepcopy(record["config"]) | {"epochs": epochs}
    record["config"]["params"]["mu0"] = mu0
    record["test"]["auc"] = test_auc
    for index, epoch in enumerate(record["history"]):
        epoch.update(mu=mu0 * 2 ** index, multiplier_max=10 * mu0)
        if term_to_loss is not None:
            epoch.update(violated_pair_share=0.2, term_to_loss=term_to_loss * (index + 1))
    return record


def write(folder, records):
    folder.mkdir()
    for record in records:
        (folder / f"{record['run_id']}.json").write_text(json.dumps(record))
    return folder


def test_runs_differing_only_in_mu0_form_one_response_in_value_order(tmp_path):
    folder = write(tmp_path / "runs", [alm_record(1e-3, 0.8, 0.5), alm_record(1e-7, 0.7),  # older: no activity
                                       alm_record(1e-5, 0.75, 0.01), alm_record(1e-4, 0.9, 0.1, epochs=3)])
    found = dose_points(load_runs(folder).runs, "alm", "mu0")
    (response,) = found  # the 3-epoch run is another protocol: left out
    points = response.points
    assert (response.dataset, response.seed) == ("synthetic2d", 0) and [p.value for p in points] == [1e-7, 1e-5, 1e-3]
    table = markdown(points, "mu0").splitlines()
    assert table[0].startswith("| mu0 | val AUC | test AUC | test FPR@TPR=0.95 | test TPR@FPR=0.1 | epochs |")
    assert table[2].startswith("| 1e-07 |") and table[2].endswith("| 2e-07 | 1e-06 | — | — | — |")
    assert table[4].endswith("| 0.002 | 0.01 | 0.2 | 0.75 | 1 |")  # term/loss mean of 0.5 and 1.0, max 1.0


def test_no_response_is_one_line_and_exit_2(tmp_path, capsys):
    folder = write(tmp_path / "runs", [alm_record(1e-3, 0.8)])
    assert main(["--runs", str(folder), "--method", "alm", "--param", "mu0"]) == 2
    assert capsys.readouterr().err.startswith("error: no alm runs that differ only in mu0")


def test_a_failed_value_is_a_row_that_says_so(tmp_path, capsys):
    """ALM at a large mu0 diverges (results/alm_dose: 1e-2): its failure record is a row of the
    response, in value order, not a silently missing dose; a failure of another protocol is not."""
    folder = write(tmp_path / "runs", [alm_record(1e-5, 0.75, 0.01), alm_record(1e-4, 0.9, 0.1)])
    for mu0, epochs in ((1e-2, 2), (1e-1, 3)):
        config = copy.deepcopy(alm_record(mu0, 0.5)["config"]) | {"epochs": epochs}
        failure = {"record_version": 2, "run_id": f"synthetic2d-alm-s0-failed-{epochs}", "status": "failed",
                   "failure": "diverged", "reason": "DivergedError: training loss became nan in epoch 8", "config": config}
        (folder / f"{failure['run_id']}.failed.json").write_text(json.dumps(failure))
    assert main(["--runs", str(folder), "--method", "alm", "--param", "mu0"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0") or line.startswith("| 1e")]
    assert [row.split(" | ")[0] for row in rows] == ["| 1e-05", "| 0.0001", "| 0.01"]  # the 3-epoch failure: another protocol
    assert rows[2].startswith("| 0.01 | failed: DivergedError: training loss became nan in epoch 8 | — |")
