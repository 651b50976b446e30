"""`python -m benchmarks.run` and `python -m datasets.export` inputs that used to crash, train for
nothing or be silently accepted (issue 27 items 6, 7, 8 and the half ones), and the skip of a run
whose complete record is already in `--out`."""
from __future__ import annotations

import pytest

from benchmarks.methods import get_method, list_methods
from benchmarks.methods.base import Method
from benchmarks.run import main
from datasets import export
from tests.bad_input.conftest import assert_refused, invoke, snapshot  # and the `out` fixture

TINY = ["--epochs", "1", "--width", "0.125", "--size", "8", "--device", "cpu", "--quiet"]
SYNTHETIC = ["--dataset", "synthetic2d"]

# (argv, what the one line names)
REFUSED = [
    (SYNTHETIC + ["--method", "aucm_ce"], "--method aucm_ce trains in 2 stages (bce, aucm): needs --epochs >= 2, got 1"),
    (SYNTHETIC + ["--method", "autobalance"], "--method autobalance trains in 2 stages (search, retrain): needs --epochs"),
    (SYNTHETIC + ["--method", "ldam", "--param", "head=cosine"],
     "--method ldam trains its own head (cosine_pair), which --param head=cosine would not change (only the run id)"),
    (SYNTHETIC + ["--method", "alm+ldam", "--param", "head_scale=10"],
     "--method alm+ldam trains its own head (cosine_pair), which --param head_scale=10.0 would not change"),
    (["--dataset", "synthetic2d_mc", "--task", "multiclass", "--method", "ldam_ce", "--param", "head=cosine"],
     "--method ldam_ce trains its own head (cosine), which --param head=cosine would not change"),
    (["--dataset", "synthetic2d_mc", "--task", "multiclass", "--method", "ldam_ce", "--param", "head_scale=5"],
     "--method ldam_ce trains its own head (cosine), which --param head_scale=5.0 would not change"),
    (SYNTHETIC + ["--method", "bce", "--param", "n_trian=64"],
     "unknown parameter 'n_trian'; valid: base, head, head_scale, lr, lr_decay, max_norm, momentum, optimizer, preset, "
     "weight_decay for method bce, and n_train for dataset synthetic2d"),
    (["--dataset", "synthetic2d_mc", "--method", "bce", "--param", "critical=1+LOW BLOB"],
     "synthetic2d_mc: --param critical=1+LOW BLOB names label 1 'low blob' twice; name each label once"),
    (SYNTHETIC + ["--method", "bce", "--augment", "crop+crop"], "--augment crop+crop applies crop twice"),
    (SYNTHETIC + ["--method", "bce", "--augment", "crop_flip+flip"], "--augment crop_flip+flip applies flip twice"),
]


@pytest.mark.parametrize("argv,names", REFUSED, ids=[f"case{index}" for index in range(len(REFUSED))])
def test_a_bad_run_is_refused_before_the_data_loads(argv, names, out, capsys, trained, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the refusal")

    monkeypatch.setattr("benchmarks.engine.pipeline.load_dataset", no_data)
    before = snapshot(out)
    assert_refused(invoke(main, [*argv, *TINY, "--out", out], capsys), names)
    assert trained == [] and snapshot(out) == before


@pytest.mark.parametrize("name", list_methods())
def test_every_method_declares_its_stages_where_planning_sees_them(name):
    """The trainer's stages are `stage_plan(params)`, which `Method.skip` asks while planning: a
    method overriding the instance's `stages()` instead would split its epochs only inside the
    trainer, after the data loaded (`aucm_ce --epochs 1` crashed there)."""
    assert get_method(name).stages is Method.stages


def test_export_refuses_a_dataset_param_typo_before_loading(tmp_path, capsys):
    outcome = invoke(export.main, ["--dataset", "synthetic2d", "--to", tmp_path / "export", "--param", "n_trian=8"],
                     capsys)
    assert_refused(outcome, "dataset synthetic2d has no --param n_trian; valid: n_train")
    assert not (tmp_path / "export").exists()


def test_a_finished_run_is_not_retrained_unless_forced(tmp_path, capsys, trained):
    argv = [*SYNTHETIC, "--method", "bce", *TINY, "--out", tmp_path / "runs"]
    first = invoke(main, argv, capsys)
    record = first.out.strip().splitlines()[-1]
    assert first.code == 0 and len(trained) == 1
    again = invoke(main, argv, capsys)
    assert again.code == 0 and len(trained) == 1, again.err
    assert again.out.strip().splitlines()[-1] == record
    assert again.err.strip() == f"already complete, not retrained (add --force to train it again): {record}"
    forced = invoke(main, [*argv, "--force"], capsys)
    assert forced.code == 0 and len(trained) == 2 and forced.out.strip().splitlines()[-1] == record
    other = invoke(main, [*argv, "--seed", "1"], capsys)  # another run of the same dataset and method trains
    assert other.code == 0 and len(trained) == 3
