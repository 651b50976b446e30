"""`python -m reports.dose_response` and `python -m reports.validation` on folders and files that
cannot give what was asked: one line naming the folder, method, param or file and what is there
or valid. A non-numeric --param crashed dose_response with a traceback; a missing --readme or
--docs crashed validation, and a folder without records replaced the committed tables with an
empty one."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reports import dose_response, validation
from tests.bad_input.conftest import assert_refused, invoke, snapshot
from tests.reports.record_fixture import current_record

MARKED = f"# x\n\n{validation.START}\nthe committed table\n{validation.END}\n"


def alm_run(folder: Path, mu0: float) -> None:
    """An alm record of synthetic2d at `mu0` (its other params: lr 0.001, preset '', delta 0.25, ...)."""
    record = current_record(run_id=f"synthetic2d-alm-s0-{int(mu0 * 1e9):012d}")
    record["config"] = copy.deepcopy(record["config"])
    record["config"]["params"]["mu0"] = mu0
    folder.mkdir(exist_ok=True)
    (folder / f"{record['run_id']}.json").write_text(json.dumps(record))


@pytest.fixture
def runs(tmp_path) -> Path:
    """Two alm runs that differ only in mu0."""
    for mu0 in (1e-5, 1e-4):
        alm_run(tmp_path / "runs", mu0)
    return tmp_path / "runs"


# (--method, --param, what the one line names)
NO_RESPONSE = [
    ("bce", "mu0", "no bce runs under {runs}; the methods there: alm"),
    ("alm", "delta", "no alm runs that differ only in delta under {runs}; a dose-response needs at least two values "
                     "of it with everything else equal; the numeric params alm's runs there vary: mu0"),
    ("alm", "preset", "no alm runs that differ only in preset under {runs}; a dose-response needs at least two values "
                      "of it with everything else equal; the numeric params alm's runs there vary: mu0"),
    ("alm", "head", "no alm runs that differ only in head under {runs}; a dose-response needs at least two values of "
                    "it with everything else equal; the numeric params alm's runs there vary: mu0"),
]


@pytest.mark.parametrize("method,param,names", NO_RESPONSE, ids=[f"{case[0]}-{case[1]}" for case in NO_RESPONSE])
def test_a_dose_response_the_records_do_not_hold_names_what_they_do(method, param, names, runs, capsys):
    outcome = invoke(dose_response.main, ["--runs", runs, "--method", method, "--param", param], capsys)
    assert_refused(outcome, names.format(runs=runs))


def test_a_dose_response_of_an_empty_folder_says_so(tmp_path, capsys):
    outcome = invoke(dose_response.main, ["--runs", tmp_path, "--method", "alm", "--param", "mu0"], capsys)
    assert_refused(outcome, f"no complete run record under {tmp_path}; pass the --out folder of benchmarks.run")


def test_a_param_swept_across_protocols_says_why_no_response(runs, capsys):
    """mu0 takes two values, but the run at the second one trained another seed."""
    other = json.loads(next(runs.glob("*.json")).read_text())
    other["config"]["params"]["mu0"], other["config"]["seed"], other["run_id"] = 1e-3, 7, "synthetic2d-alm-s7-000000000007"
    for path in runs.glob("*.json"):
        path.unlink()
    alm_run(runs, 1e-5)
    (runs / f"{other['run_id']}.json").write_text(json.dumps(other))
    outcome = invoke(dose_response.main, ["--runs", runs, "--method", "alm", "--param", "mu0"], capsys)
    assert_refused(outcome, f"no alm runs that differ only in mu0 under {runs}: the runs with other values of it also "
                            f"differ in their protocol (dataset, dataset_params")


def missing_readme(tmp_path: Path) -> list:
    return ["--readme", tmp_path / "nope.md", "--docs", tmp_path / "validation.md"]


def missing_docs(tmp_path: Path) -> list:
    return ["--readme", tmp_path / "README.md", "--docs", tmp_path / "nope.md"]


def readme_is_a_folder(tmp_path: Path) -> list:
    return ["--readme", tmp_path, "--docs", tmp_path / "validation.md"]


def docs_without_markers(tmp_path: Path) -> list:
    (tmp_path / "plain.md").write_text("# no table here\n")
    return ["--readme", tmp_path / "README.md", "--docs", tmp_path / "plain.md"]


# (the targets, given the folder of README.md and validation.md; what the one line names)
BAD_TARGETS = [
    (missing_readme, "cannot read --readme {tmp}/nope.md (No such file or directory); pass the Markdown file that "
                     "holds the Validation table (README.md for --readme, docs/validation.md for --docs)"),
    (missing_docs, "cannot read --docs {tmp}/nope.md (No such file or directory)"),
    (readme_is_a_folder, "cannot read --readme {tmp} (Is a directory)"),
    (docs_without_markers, "{tmp}/plain.md has no <!-- validation:start --> ... <!-- validation:end --> markers"),
]


@pytest.mark.parametrize("targets,names", BAD_TARGETS, ids=[case[0].__name__ for case in BAD_TARGETS])
def test_a_bad_validation_target_is_refused_before_any_file_is_rewritten(targets, names, runs, tmp_path, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("README.md", "validation.md"):
        (folder / name).write_text(MARKED)
    argv = ["--runs", runs, *targets(folder)]
    before = snapshot(folder)
    outcome = invoke(validation.main, argv, capsys)
    assert_refused(outcome, names.format(tmp=folder))
    assert snapshot(folder) == before


@pytest.mark.parametrize("content", [None, "not json"], ids=["empty", "unusable"])
def test_validation_of_a_folder_without_records_keeps_the_committed_tables(content, tmp_path, capsys):
    empty = tmp_path / "runs"
    empty.mkdir()
    if content:
        (empty / "x.json").write_text(content)
    readme = tmp_path / "README.md"
    readme.write_text(MARKED)
    outcome = invoke(validation.main, ["--runs", empty, "--readme", readme], capsys)
    assert_refused(outcome, f"no complete run record under --runs {empty}; pass the folder of the validation records "
                            f"(default results/validation)", one_line=content is None)
    assert readme.read_text() == MARKED
