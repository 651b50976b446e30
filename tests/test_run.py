"""`python -m benchmarks.run`'s summary: a run scoring below chance on validation says why it may."""
import json

import pytest

import benchmarks.run as run_command
from tests.reports.record_fixture import current_record

ARGS = ["--dataset", "synthetic2d", "--method", "bce", "--epochs", "1", "--width", "0.125", "--size", "8",
        "--device", "cpu", "--quiet"]


@pytest.mark.parametrize("val_auc,warned", [(0.3, True), (0.5, False), (0.71, False)])
def test_a_below_chance_validation_auc_gets_a_warning_line(val_auc, warned, tmp_path, monkeypatch, capsys):
    record = current_record()
    record["val"]["auc"] = val_auc
    record["history"] = record["history"][:2]
    record["config"]["batch_size"] = 32
    record["dataset"]["splits"]["train"]["n"] = 128  # 2 epochs x 4 steps
    monkeypatch.setattr(run_command, "run_benchmark", lambda config, **kwargs: record)
    assert run_command.main(ARGS + ["--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert ("warning: validation AUC 0.300 is below chance. After about 8 optimizer steps the batch-norm running "
            "statistics hold only 57% of the data's" in err) == warned
    assert json.loads((tmp_path / f"{record['run_id']}.json").read_text())["val"]["auc"] == val_auc
