"""Bad input to `python -m reports.build` (issue 13, items 1, 6 and 9): every record file it cannot
use is skipped with one line on stderr naming it and why, counted in the report's header and in
leaderboard.csv, and left unchanged; a bad --runs or --out is refused before any record is read, with
one line naming the flag; Ctrl-C and a failing disk end with one line, never a traceback."""
from __future__ import annotations

import csv
import errno
import json
import os
from pathlib import Path

import pytest

from benchmarks.core.records import RECORD_VERSION
from benchmarks.core.storage import save_record
from reports import build, report
from reports.build import main
from tests.bad_input.conftest import assert_refused, invoke, snapshot
from tests.reports.record_fixture import V1_RECORD, current_record, edited

ODD_NAME = "synthetic2d-bce-s9-0123456789ab.json"  # named like a record, so a user expects it to count
AS_ROOT = os.geteuid() == 0  # root reads and writes whatever the permissions say


def text(content: str | bytes):
    return lambda record: content if isinstance(content, bytes) else content.encode()


def changed(path, value=None, remove: bool = False):
    """The good record with one key changed (or removed), as the bytes of a file."""
    return lambda record: json.dumps(edited(record, path) if remove else edited(record, path, value)).encode()


def removed(path):
    return changed(path, remove=True)


# (case, the odd file's bytes from a good record, what its skip line says)
ODD_RECORDS = [
    ("empty", text(""), "is empty"),
    ("blank", text(" \n\t"), "is empty"),
    ("truncated", lambda record: json.dumps(record).encode()[:300], "is not valid JSON"),
    ("not json", text("{not json"), "is not valid JSON (Expecting property name"),
    ("trailing garbage", lambda record: json.dumps(record).encode() + b"}", "is not valid JSON (Extra data"),
    ("latin-1", text('{"run_id": "caf\xe9"}'.encode("latin-1")), "is not UTF-8 text (byte 0xe9"),
    ("binary", text(b"\x89PNG\r\n\x1a\n\x00\x00"), "is not UTF-8 text (byte 0x89 at offset 0)"),
    ("nested too deeply", text("[" * 100_000 + "]" * 100_000), "is nested too deeply"),
    ("empty list", text("[]"), "holds an array, not a run record"),
    ("null", text("null"), "holds null, not a run record"),
    ("a number", text("42"), "holds a number, not a run record"),
    ("a string", text('"complete"'), "holds a string, not a run record"),
    ("true", text("true"), "holds true, not a run record"),
    ("a list of records", lambda record: json.dumps([record]).encode(), "holds an array"),
    ("no record_version", removed("record_version"), "missing record_version"),
    ("record_version as text", changed("record_version", "2"), 'record_version "2" is not a CritBench record version'),
    ("record_version 0", changed("record_version", 0), "record_version 0 is not a CritBench record version"),
    ("record_version float", changed("record_version", 2.0), "record_version 2.0 is not"),
    ("record_version true", changed("record_version", True), "record_version true is not"),
    ("from the future", changed("record_version", RECORD_VERSION + 1),
     f"record_version {RECORD_VERSION + 1} is newer than this CritBench reads"),
    ("no status", removed("status"), "missing status"),
    ("status running", changed("status", "running"), 'status "running", not "complete"'),
    ("status null", changed("status", None), 'status null, not "complete"'),
    ("no run_id", removed("run_id"), "missing run_id"),
    ("run_id a number", changed("run_id", 5), "run_id is 5, not a string"),
    ("metrics removed", removed("test"), "missing test"),
    ("test empty", changed("test", {}), "missing test.auc"),
    ("test a list", changed("test", []), "test is an array, not an object"),
    ("auc as text", changed("test.auc", "0.9"), 'test.auc is "0.9", not a number or null'),
    ("auc NaN string", changed("test.auc", "NaN"), 'test.auc is "NaN", not a number'),
    ("auc a list", changed("test.auc", [0.5]), "test.auc is an array, not a number"),
    ("tpr as text", changed(("test", "tpr_at_fpr", "0.1"), "high"), 'test.tpr_at_fpr.0.1 is "high"'),
    ("metrics too deep", changed(("test", "tpr_at_fpr", "0.1"), {"x": 1}), "test.tpr_at_fpr.0.1 is an object"),
    ("no val", removed("val"), "missing val"),
    ("val auc removed", removed("val.auc"), "missing val.auc"),
    ("val auc true", changed("val.auc", True), "val.auc is true, not a number"),
    ("no test scores", removed("test_scores"), "missing test_scores"),
    ("scores as text", changed("test_scores.y_score", "abc"), 'test_scores.y_score is "abc", not a list'),
    ("a score as text", changed("test_scores.y_score.3", "0.3"), 'test_scores.y_score[3] is "0.3", not a number'),
    ("a score NaN string", changed("test_scores.y_score.0", "NaN"), 'test_scores.y_score[0] is "NaN"'),
    ("fewer scores", lambda record: changed("test_scores.y_score", record["test_scores"]["y_score"][:-1])(record),
     "labels (y_true) but"),
    ("label 2", changed("test_scores.y_true.0", 2), "test_scores.y_true[0] is 2, not 0 or 1"),
    ("label as text", changed("test_scores.y_true.1", "1"), 'test_scores.y_true[1] is "1", not 0 or 1'),
    ("no history", removed("history"), "missing history"),
    ("history an object", changed("history", {}), "history is an object, not a list"),
    ("history entry a number", changed("history.0", 5), "history[0] is 5, not an object"),
    ("history without epoch", removed("history.1.epoch"), "missing history[1].epoch"),
    ("history loss as text", changed("history.0.train_loss", "low"), 'history[0].train_loss is "low"'),
    ("history state an object", changed("history.0.mu", {"a": 1}), "history[0].mu is an object"),
    ("no config", removed("config"), "missing config"),
    ("config as text", changed("config", "bce"), 'config is "bce", not an object'),
    ("no method", removed("config.method"), "missing config.method"),
    ("seed as text", changed("config.seed", "0"), 'config.seed is "0", not an integer'),
    ("imbalance as text", changed("config.imbalance", "1:100"), 'config.imbalance is "1:100", not a number or null'),
    ("size a fraction", changed("config.size", 8.5), "config.size is 8.5, not an integer"),
    ("dataset_params a list", changed("config.dataset_params", []), "config.dataset_params is an array, not an object"),
    ("params null", changed("config.params", None), "config.params is null, not an object"),
    ("no dataset", removed("dataset"), "missing dataset"),
    ("no data checksum", changed("dataset.tensor_md5", None), "dataset has neither source_md5 nor tensor_md5"),
    ("no split md5", removed("dataset.split_md5"), "missing dataset.split_md5"),
    ("split md5 a number", changed("dataset.split_md5.test", 7), "dataset.split_md5.test is 7, not a string"),
    ("splits as text", changed("dataset.splits", "all"), 'dataset.splits is "all", not an object'),
    ("split size as text", changed("dataset.splits.test.n", "120"), 'dataset.splits.test.n is "120"'),
    ("shape a number", changed("dataset.shape", 8), "dataset.shape is 8, not a list"),
    ("no finish time", removed("finished_at"), "missing finished_at"),
    ("env null", changed("env", None), "env is null, not an object"),
    ("seconds as text", changed("seconds", "12s"), 'seconds is "12s", not a number or null'),
    ("best epoch as text", changed("best_epoch", "1"), 'best_epoch is "1", not an integer'),
    ("version 1 without metrics", lambda record: json.dumps(edited(json.loads(V1_RECORD.read_text()), "test.auc")).encode(),
     "missing test.auc"),
]


@pytest.fixture
def good(tmp_path) -> tuple[Path, dict]:
    """A runs folder holding one usable record."""
    record = current_record("synthetic2d-alm-s0-000000000001")
    save_record(record, tmp_path / "runs")
    return tmp_path / "runs", record


def build_report(tmp_path: Path, runs: Path, capsys):
    return invoke(main, ["--runs", runs, "--out", tmp_path / "report" / "r.html"], capsys)


def assert_skipped(outcome, tmp_path: Path, expected: list[tuple[Path, str]]) -> None:
    """Built (exit 0, no traceback), with one stderr line per skipped file naming it and why, and the
    count in the report's header and in leaderboard.csv."""
    assert "Traceback" not in outcome.err, outcome.err
    assert outcome.code == 0, outcome.err
    lines = outcome.err.splitlines()
    skipped = [line for line in lines if line.startswith("skipped ")]
    # the skipped files first, then the leaderboard summary (reports/terminal.py), then "wrote ..."
    assert len(skipped) == len(expected) and lines[:len(expected)] == skipped and lines[-1].startswith("wrote "), outcome.err
    for path, why in expected:
        assert any(line.startswith(f"skipped {path}: ") and why in line for line in skipped), (path, why, outcome.err)
    html = (tmp_path / "report" / "r.html").read_text()
    assert f"skipped files: {len(expected)}</a>" in html.split("</header>")[0]
    rows = [row for row in csv.DictReader((tmp_path / "report" / "leaderboard.csv").open()) if row["kind"] == "skipped"]
    assert sorted(row["file"] for row in rows) == sorted(str(path) for path, _ in expected)


@pytest.mark.parametrize("content, why", [case[1:] for case in ODD_RECORDS], ids=[case[0] for case in ODD_RECORDS])
def test_an_odd_record_file_is_skipped_named_and_counted(good, tmp_path, capsys, content, why):
    runs, record = good
    odd = runs / ODD_NAME
    odd.write_bytes(content(record))
    before = snapshot(runs)
    assert_skipped(build_report(tmp_path, runs, capsys), tmp_path, [(odd, why)])
    assert snapshot(runs) == before


def folder_named_like_a_record(runs: Path, record: dict):
    (runs / ODD_NAME).mkdir()
    return [(runs / ODD_NAME, "is a folder, not a record file")]


def broken_link(runs: Path, record: dict):
    (runs / ODD_NAME).symlink_to(runs / "gone.json")
    return [(runs / ODD_NAME, "cannot be read (No such file or directory)")]


def link_loop(runs: Path, record: dict):
    (runs / ODD_NAME).symlink_to(runs / ODD_NAME)
    return [(runs / ODD_NAME, "cannot be read (Too many levels of symbolic links)")]


def duplicate(runs: Path, record: dict):
    (runs / "z").mkdir()  # read after the original (files are read in sorted order)
    (runs / "z" / "copy.json").write_text(json.dumps(record))
    return [(runs / "z" / "copy.json", f"duplicate of run {record['run_id']}")]


def unusable_failure_record(runs: Path, record: dict):
    (runs / "x.failed.json").write_text("[]")
    return [(runs / "x.failed.json", "holds an array")]


def several(runs: Path, record: dict):
    for name, content in (("a.json", "null"), ("b.json", "{"), ("nested/c.json", json.dumps(edited(record, "test")))):
        (runs / name).parent.mkdir(exist_ok=True)
        (runs / name).write_text(content)
    return [(runs / "a.json", "holds null"), (runs / "b.json", "is not valid JSON"), (runs / "nested/c.json", "missing test")]


def unreadable_file(runs: Path, record: dict):
    (runs / ODD_NAME).write_text(json.dumps(record))
    (runs / ODD_NAME).chmod(0)
    return [(runs / ODD_NAME, "cannot be read (Permission denied)")]


def unreadable_folder(runs: Path, record: dict):
    (runs / "locked").mkdir()
    (runs / "locked" / "r.json").write_text(json.dumps(record))
    (runs / "locked").chmod(0)
    return [(runs / "locked", "folder cannot be listed (Permission denied)")]


PERMISSIONS = pytest.mark.skipif(AS_ROOT, reason="root reads files whatever their permissions")


@pytest.mark.parametrize("setup", [folder_named_like_a_record, broken_link, link_loop, duplicate, unusable_failure_record,
                                   several, pytest.param(unreadable_file, marks=PERMISSIONS),
                                   pytest.param(unreadable_folder, marks=PERMISSIONS)])
def test_odd_files_and_folders_are_skipped_named_and_counted(good, tmp_path, capsys, setup):
    runs, record = good
    expected = setup(runs, record)
    assert_skipped(build_report(tmp_path, runs, capsys), tmp_path, expected)


# (case, the extra file's bytes from a good record of another run): files a report reads as they
# are, or ignores, without a skip line
ACCEPTED = [
    ("version 1 record", lambda record: V1_RECORD.read_bytes()),
    ("NaN literal, read as null", changed("test.auc", float("nan"))),  # json.dumps writes NaN
    ("byte-order mark", lambda record: b"\xef\xbb\xbf" + json.dumps(record).encode()),
    ("an unknown key", changed("note", [1, {}])),
    ("a state entry as text", changed("history.0.mu", "warm-up")),
    ("some other JSON file", text('{"suite": "quick"}')),
    ("a failure record with an odd config", text('{"status": "failed", "run_id": "x", "config": [1], "reason": 5}')),
]


@pytest.mark.parametrize("content", [case[1] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED])
def test_usable_files_are_read_without_a_skip_line(good, tmp_path, capsys, content):
    runs, record = good
    (runs / ODD_NAME).write_bytes(content(edited(record, "run_id", "synthetic2d-alm-s1-000000000002")))
    before = snapshot(runs)
    outcome = build_report(tmp_path, runs, capsys)
    assert outcome.code == 0 and "Traceback" not in outcome.err and "skipped" not in outcome.err, outcome.err
    assert "skipped files: 0" in (tmp_path / "report" / "r.html").read_text().split("</header>")[0]
    assert snapshot(runs) == before


def out_is_a_folder(tmp_path):
    (tmp_path / "report").mkdir()
    return tmp_path / "report", "is a folder; give the HTML file to write"


def out_is_the_current_folder(tmp_path):
    return "", "--out . is a folder"


def out_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "r.html", "is a file, not a folder"


def out_deep_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "a" / "b" / "r.html", "is a file, not a folder"


def csv_beside_is_a_folder(tmp_path):
    (tmp_path / "report" / "leaderboard.csv").mkdir(parents=True)
    return tmp_path / "report" / "r.html", "leaderboard.csv is a folder"


def markdown_beside_is_a_folder(tmp_path):
    (tmp_path / "report" / "leaderboard.md").mkdir(parents=True)
    return tmp_path / "report" / "r.html", "leaderboard.md is a folder"


def out_in_a_read_only_system_folder(tmp_path):
    return Path("/sys/r.html"), "cannot write in /sys"


def out_in_a_read_only_folder(tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    return tmp_path / "ro" / "r.html", "cannot write in"


@pytest.mark.parametrize("setup", [out_is_a_folder, out_is_the_current_folder, out_under_a_file, out_deep_under_a_file,
                                   csv_beside_is_a_folder, markdown_beside_is_a_folder, out_in_a_read_only_system_folder,
                                   pytest.param(out_in_a_read_only_folder, marks=PERMISSIONS)])
def test_an_unwritable_out_is_refused_before_any_record_is_read(good, tmp_path, capsys, monkeypatch, setup):
    runs, _ = good
    out, why = setup(tmp_path)
    before = snapshot(tmp_path)
    monkeypatch.setattr(build, "load_runs", lambda *args: pytest.fail("records were read before --out was checked"))
    outcome = invoke(main, ["--runs", runs, "--out", out], capsys)
    assert_refused(outcome, "--out")
    assert why in outcome.err
    assert snapshot(tmp_path) == before  # nothing written: no leaderboard.csv in a parent, no stray file


def runs_missing(tmp_path, runs):
    return ["--runs", tmp_path / "missing"], "--runs", "is not a folder"


def runs_is_a_file(tmp_path, runs):
    return ["--runs", runs / "synthetic2d-alm-s0-000000000001.json"], "--runs", "is not a folder"


def runs_empty(tmp_path, runs):
    (tmp_path / "empty").mkdir()
    return ["--runs", tmp_path / "empty"], "no usable run records", "write some with"


def runs_without_flag(tmp_path, runs):
    return [], "--runs", "required"


def unknown_flag(tmp_path, runs):
    return ["--runs", runs, "--colour", "red"], "--colour", "unrecognized"


def runs_unreadable(tmp_path, runs):
    runs.chmod(0)
    return ["--runs", runs], "--runs", "cannot be read"


@pytest.mark.parametrize("setup", [runs_missing, runs_is_a_file, runs_empty, runs_without_flag, unknown_flag,
                                   pytest.param(runs_unreadable, marks=PERMISSIONS)])
def test_a_bad_runs_folder_is_refused_in_one_line(good, tmp_path, capsys, setup):
    runs, _ = good
    argv, names, why = setup(tmp_path, runs)
    outcome = invoke(main, [*argv, "--out", tmp_path / "report" / "r.html"], capsys)
    assert_refused(outcome, names)
    assert why in outcome.err and not (tmp_path / "report").exists()


def test_a_folder_of_only_unusable_files_names_each_then_refuses(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    for name, content in (("a.json", "[]"), ("b.json", '{"status": "complete", "run_id": "b"}')):
        (runs / name).write_text(content)
    outcome = invoke(main, ["--runs", runs, "--out", tmp_path / "r.html"], capsys)
    assert_refused(outcome, "no usable run records", one_line=False)
    assert outcome.err.splitlines() == [
        f"skipped {runs / 'a.json'}: holds an array, not a run record (a JSON object)",
        f"skipped {runs / 'b.json'}: missing record_version (not written by CritBench)",
        f"error: no usable run records (*.json) under {runs} (skipped files: 2); write some with "
        f"`python -m benchmarks.run ... --out {runs}` or the leaderboard first"]
    assert not (tmp_path / "leaderboard.csv").exists()


def interrupt(*args):
    raise KeyboardInterrupt


def full_disk(*args):
    raise OSError(errno.ENOSPC, "No space left on device", "leaderboard.csv")


@pytest.mark.parametrize("fault, code, message", [
    (interrupt, 130, "interrupted (Ctrl-C)"),
    (full_disk, 2, "No space left on device"),
])
def test_ctrl_c_and_a_full_disk_end_in_one_line(good, tmp_path, capsys, monkeypatch, fault, code, message):
    runs, _ = good
    monkeypatch.setattr(report, "write_csv", fault)  # the first file written
    outcome = build_report(tmp_path, runs, capsys)
    assert_refused(outcome, message, code=code)
    assert not list((tmp_path / "report").glob("*"))  # the atomic writers leave no partial file
