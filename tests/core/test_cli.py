"""`python -m benchmarks.run`: one-line errors with exit code 2, --list, the record path."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.core.cli import counted
from benchmarks.run import main
from datasets import list_datasets
from benchmarks.methods import list_methods

REPO = Path(__file__).resolve().parents[2]
TINY_ARGS = ["--epochs", "1", "--width", "0.125", "--size", "8", "--device", "cpu", "--quiet"]


@pytest.mark.parametrize("argv,expected", [
    (["--dataset", "mnist", "--method", "bce"], "unknown dataset 'mnist'; valid: adrenalmnist3d, bloodmnist, breastmnist"),
    (["--dataset", "synthetic2d", "--method", "svm"], "unknown method 'svm'; valid: "),
    (["--dataset", "synthetic2d", "--method", "alm", "--param", "delta"], "--param expects key=value"),
    (["--dataset", "synthetic2d", "--method", "alm", "--param", "gamma=1"], "unknown parameter 'gamma'"),
    (["--dataset", "synthetic2d", "--method", "alm", "--param", "delta=x"], "delta='x' is not a valid float"),
    (["--dataset", "synthetic2d", "--method", "bce", "--size", "7"], "--size 7 is not available for synthetic2d; valid:"),
    (["--dataset", "synthetic2d", "--method", "bce", "--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--dataset", "synthetic2d", "--method", "bce", "--device", "tpu"], "unknown --device 'tpu'; valid: auto, cpu, cuda"),
    (["--dataset", "synthetic2d"], "--dataset and --method are required"),
    (["--dataset", "synthetic2d", "--method", "bce", "--epochs", "ten"], "argument --epochs: invalid int value"),
])
def test_bad_input_is_one_line_with_exit_code_2(argv, expected, capsys, tmp_path):
    with pytest.raises(SystemExit) as code:
        sys.exit(main(argv + ["--out", str(tmp_path)]))
    err = capsys.readouterr().err
    assert code.value.code == 2
    assert expected in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not list(tmp_path.iterdir())


def test_list_shows_every_dataset_and_method(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in list_datasets() + list_methods():
        assert f"  {name} " in out


def test_a_run_prints_its_record_path_last(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--dataset", "synthetic3d", "--method", "alm",
         "--param", "delta=0.5", "--out", str(tmp_path), *TINY_ARGS],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip().splitlines()[-1])
    record = json.loads(path.read_text())
    assert path.parent == tmp_path and record["config"]["params"]["delta"] == 0.5
    assert record["config"]["method"] == "alm" and "test AUC" in result.stderr


@pytest.mark.parametrize("n,expected", [(0, "0 runs"), (1, "1 run"), (2, "2 runs")])
def test_counted_is_singular_only_for_one(n, expected):
    assert counted(n, "run") == expected
