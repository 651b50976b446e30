"""The one check of a complete record (`record_problem`), the reader built on it, and what the suite's
resume makes of a record file it cannot use (issue 13, item 6)."""
from __future__ import annotations

import json

import pytest

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import DivergedError
from benchmarks.core import records
from benchmarks.core.records import RECORD_VERSION, FailureRecord, RunRecord, failure_record, record_problem
from benchmarks.core.storage import read_record, record_path, record_state, save_record, write_problem
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from benchmarks.sweep.plan import make_plan
from benchmarks.sweep.suite import expand, load_suite
from tests.conftest import TINY, write_suite
from tests.reports.record_fixture import REMOVE, V1_RECORD, current_record, edited


def test_a_fresh_record_and_older_ones_pass_the_check():
    """What the pipeline writes today passes its own reader's check (else a suite would re-run it for
    ever), and so do version 1 records, which may lack the split md5s and the finish time. Every key
    of the record is declared by its type (ALM's report adds none)."""
    record = run_benchmark(resolve_config(RunConfig("synthetic2d", "alm", **TINY)), progress=False, command="run it")
    fresh = json.loads(json.dumps(record))
    assert fresh["record_version"] == RECORD_VERSION and record_problem(fresh) is None
    assert set(fresh) == set(RunRecord.__annotations__) - {"multiclass"} and fresh["command"] == "run it"  # binary
    assert record_problem(json.loads(V1_RECORD.read_text())) is None
    assert record_problem(current_record()) is None


@pytest.mark.parametrize("path", ["test", "test.auc", "val", "test_scores.y_score", "history", "config.seed",
                                  "dataset.split_md5", "finished_at", "dataset.splits.test.n"])
def test_a_record_missing_a_key_is_not_complete(path):
    assert record_problem(edited(current_record(), path)) == f"missing {path}"


@pytest.mark.parametrize("value, problem", [
    (REMOVE, "missing trained_on"),
    ("yesterday", 'trained_on is "yesterday", not an integer'),
    (None, "trained_on is null, not an integer"),
])
def test_a_field_declared_in_the_record_type_is_checked_by_its_path(monkeypatch, value, problem):
    """A new field is declared once, in the record's type: from then on a record missing it or
    holding the wrong type is reported by its key path, like every field of the nested types."""

    class Extended(RunRecord):
        trained_on: int

    monkeypatch.setattr(records, "RunRecord", Extended)
    record = current_record()
    assert record_problem(record if value is REMOVE else {**record, "trained_on": value}) == problem
    assert record_problem({**record, "trained_on": 3}) is None
    assert record_problem(edited({**record, "trained_on": 3}, "test.auc", "0.9")) == 'test.auc is "0.9", not a number or null'


def test_a_failure_record_holds_the_keys_of_its_type():
    failure = failure_record(RunConfig("synthetic2d", "bce"), "x", RuntimeError("boom"), 1.0, command="run it")
    assert list(failure) == [key for key in FailureRecord.__annotations__ if key != "history"]  # a crash keeps none
    assert failure["failure"] == "crashed" and failure["reason"] == "RuntimeError: boom"
    epochs = [{"epoch": 1, "train_loss": 0.5}]
    diverged = failure_record(RunConfig("synthetic2d", "bce"), "x", DivergedError("nan", epochs), 1.0, command="run it")
    assert list(diverged) == list(FailureRecord.__annotations__) and diverged["history"] == epochs
    assert diverged["failure"] == "diverged"


def test_version_1_may_lack_what_version_2_requires():
    old = dict(edited(current_record(), "finished_at"), record_version=1)
    assert record_problem(old) is None
    assert record_problem(dict(old, finished_at=5)) == "finished_at is 5, not a string"  # checked when present


def test_nan_literals_read_as_null_and_a_byte_order_mark_is_ignored(tmp_path):
    record = current_record()
    text = json.dumps(record).replace(f'"auc": {record["test"]["auc"]}', '"auc": NaN', 1)
    path = tmp_path / "r.json"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    loaded, problem = read_record(path)
    assert problem is None and loaded["test"]["auc"] is None


BROKEN = {
    "empty": "",
    "truncated": json.dumps(current_record())[:200],
    "a list": "[]",
    "null": "null",
    "metrics removed": json.dumps(edited(current_record("x"), "test")),
    "a string score": json.dumps(current_record("x") | {"test_scores": {"y_true": [0, 1], "y_score": [0.1, "0.9"]}}),
    "another run's record": json.dumps(current_record("y")),
    "an older version, metrics removed": json.dumps(edited(dict(current_record("x"), record_version=1), "val.auc")),
}


@pytest.mark.parametrize("text", BROKEN.values(), ids=BROKEN)
def test_the_resume_reruns_a_record_it_cannot_use(tmp_path, text):
    record_path(tmp_path, "x").write_text(text)
    assert record_state(tmp_path, "x") is None
    record_path(tmp_path, "x", failed=True).write_text(json.dumps({"status": "failed", "run_id": "x"}))
    assert record_state(tmp_path, "x") == "failed"  # the last attempt failed: --no-retry-failed keeps it


def test_a_usable_record_is_complete_and_a_newer_one_is_never_run_over(tmp_path):
    save_record(current_record("x"), tmp_path)
    assert record_state(tmp_path, "x") == "complete"
    record_path(tmp_path, "y").write_text(json.dumps({"record_version": RECORD_VERSION + 1, "status": "complete",
                                                      "run_id": "y", "new_schema": {}}))
    assert record_state(tmp_path, "y") == "complete"
    record_path(tmp_path, "z").mkdir()
    assert record_state(tmp_path, "z") is None


def test_the_planner_reruns_a_broken_complete_record(tmp_path):
    """The leaderboard's planner: a complete record counts as done; the same file with its test
    metrics removed (or holding `[]`) is planned again."""
    runs = expand(load_suite(str(write_suite(tmp_path))))
    out = tmp_path / "runs"
    first = make_plan(runs, out, retry_failed=True).tasks[0]
    save_record(current_record(first.run_id), out)
    plan = make_plan(runs, out, retry_failed=True)
    assert plan.complete == 1 and first.run_id not in [task.run_id for task in plan.tasks]
    for text, why in ((json.dumps(edited(current_record(first.run_id), "test")), "missing test"),
                      ("[]", "holds an array")):
        record_path(out, first.run_id).write_text(text)
        plan = make_plan(runs, out, retry_failed=False)
        assert plan.complete == 0 and first.run_id in [task.run_id for task in plan.tasks]
        [line] = plan.unusable  # the leaderboard prints it: "re-running: <file> <why>"
        assert line.startswith(str(record_path(out, first.run_id))) and why in line, line


def test_write_problem_finds_unwritable_outputs_without_writing(tmp_path):
    (tmp_path / "file").write_text("x")
    assert write_problem(tmp_path / "new" / "deeper" / "r.html") is None
    assert not (tmp_path / "new").exists()
    assert write_problem(tmp_path) == f"{tmp_path} is a folder"
    assert write_problem(tmp_path / "file" / "sub" / "r.html") == f"{tmp_path / 'file'} is a file, not a folder"
    assert write_problem("/sys/r.html").startswith("cannot write in /sys (")  # read-only even for root
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the probe leaves nothing
