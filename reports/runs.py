"""Run records as the report sees them: complete runs, failure records, and what was skipped.

Records are read through `benchmarks.core.storage` and typed by `benchmarks.core.records` (torch-free)."""
from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

import numpy as np

from benchmarks.core.config import MACHINE_FIELDS
from benchmarks.core.errors import CritBenchError
from benchmarks.core.metrics import Metric
from benchmarks.core.records import HISTORY_FIELDS, FailureRecord, RunRecord
from benchmarks.core.storage import is_failure_record, read_record, record_files
from reports.tuning import is_trial_record

DATASET_FIELDS = ("dataset", "size", "imbalance", "max_train_samples", "dataset_params")
# The training budget: where it differs between runs of one dataset it splits the dataset's column
# (reports/leaderboard.py), so that runs of different budgets are never compared (or pooled).
BUDGET_FIELDS = ("epochs", "width", "stem")
NOT_ROW_FIELDS = {*DATASET_FIELDS, *BUDGET_FIELDS, *MACHINE_FIELDS, "method", "seed", "params"}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def run_seconds(record: dict) -> float:
    """A run's wall time across its processes: the last one's `seconds` plus the epochs an earlier,
    killed process trained before the run resumed (`resumed_from_epoch`; each epoch's `seconds`)."""
    earlier = record["history"][:record.get("resumed_from_epoch") or 0]
    return record.get("seconds", 0) + sum(epoch.get("seconds", 0) for epoch in earlier)


@dataclass
class Run:
    """One complete run record and the file it came from."""

    record: RunRecord
    path: Path
    matched_test_set: str | None = None  # set by match_test_sets for a record without split_md5

    @property
    def run_id(self) -> str:
        return self.record["run_id"]

    @property
    def config(self) -> dict:
        return self.record["config"]

    @property
    def method(self) -> str:
        return self.config["method"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def anchor(self) -> str:
        return "run-" + slug(self.run_id)

    @cached_property
    def state_keys(self) -> list[str]:
        """The method-state entries of the history (ALM's mu, AUCM's prior...), in first-seen order."""
        keys = dict.fromkeys(key for epoch in self.record["history"] for key in epoch if key not in HISTORY_FIELDS)
        return list(keys)

    @property
    def val_auc(self) -> float:
        """The selected checkpoint's validation AUC (NaN when not recorded)."""
        value = (self.record.get("val") or {}).get("auc")
        return math.nan if value is None else float(value)

    def metric(self, metric: Metric) -> float:
        return metric.value(self.record["test"])

    @cached_property
    def y_true(self) -> np.ndarray:
        return np.asarray(self.record["test_scores"]["y_true"], dtype=np.int64)

    @cached_property
    def y_score(self) -> np.ndarray:
        return np.array([math.nan if s is None else s for s in self.record["test_scores"]["y_score"]], dtype=np.float64)

    @property
    def recorded_test_set(self) -> str | None:
        """The md5 of the test split's images and labels, as the record states it (None before it was recorded)."""
        return (self.record["dataset"].get("split_md5") or {}).get("test")

    @cached_property
    def test_content(self) -> str:
        """What every record has of its test set: the md5 of the source checksum, the label sequence
        and, for test parts held out per seed, the held-out file list, so that two seeds holding out
        different images with the same labels never match."""
        dataset = self.record["dataset"]
        digest = hashlib.md5(str(dataset.get("source_md5")).encode())
        digest.update(self.y_true.astype(np.uint8).tobytes())
        held_out = (dataset.get("held_out_files") or {}).get("test")
        if held_out:
            digest.update("\n".join(map(str, held_out)).encode())
        return digest.hexdigest()

    @property
    def test_set(self) -> str:
        """Fingerprint of the test set: the recorded md5 of its images and labels; for a record without
        it, the recorded md5 of the records with the same `test_content` (`match_test_sets`), else that content."""
        return self.recorded_test_set or self.matched_test_set or self.test_content

    @property
    def seconds(self) -> float:
        """The run's training wall time across its processes (`run_seconds`)."""
        return run_seconds(self.record)

    @property
    def suite(self) -> str | None:
        """The suite whose leaderboard command ran it (`--suite NAME` of the recorded command)."""
        try:
            words = shlex.split(self.record.get("command") or "")
        except ValueError:  # a hand-edited command with unbalanced quotes
            return None
        if "benchmarks.leaderboard" not in words:
            return None
        for index, word in enumerate(words):
            if word.startswith("--suite="):
                return word.removeprefix("--suite=")
            if word == "--suite" and index + 1 < len(words):
                return words[index + 1]
        return "full"  # the leaderboard's default suite

    def budget(self) -> dict:
        """The run's training budget (BUDGET_FIELDS) as recorded."""
        return {name: self.config.get(name) for name in BUDGET_FIELDS}

    @property
    def usable(self) -> bool:
        return bool(np.isfinite(self.y_score).all()) and 0 < self.y_true.sum() < len(self.y_true)

    def settings(self) -> dict:
        """The settings that may distinguish method rows: training settings and method parameters."""
        return {**{k: v for k, v in self.config.items() if k not in NOT_ROW_FIELDS}, **self.config.get("params", {})}


@dataclass
class Failure:
    """A failure record (`*.failed.json`); `retried` when the same run later completed."""

    path: Path
    record: FailureRecord  # as written: an older or hand-made one may lack keys
    retried: bool = False

    @property
    def run_id(self) -> str:
        return self.record.get("run_id") or self.path.name.removesuffix(".failed.json")

    @property
    def config(self) -> dict:
        config = self.record.get("config")
        return config if isinstance(config, dict) else {}

    @property
    def reason(self) -> str:
        for key in ("reason", "error", "message"):
            if self.record.get(key):
                return str(self.record[key])
        return "no reason recorded"

    @property
    def traceback(self) -> str:
        return str(self.record.get("traceback") or "")


@dataclass
class Loaded:
    runs: list[Run]
    failures: list[Failure]
    skipped: list[tuple[Path, str]]  # (file, why): every unusable file, reported on stderr and in the report

    def report_skipped(self) -> None:
        """One line per skipped file on stderr: the file and why."""
        for path, why in self.skipped:
            print(f"skipped {path}: {why}", file=sys.stderr)


def run_folders(runs_dirs: str | Path | Sequence[str | Path]) -> list[Path]:
    """`--runs`: one folder or several, as a list of readable folders (a clear error otherwise)."""
    folders = [Path(runs_dirs)] if isinstance(runs_dirs, (str, Path)) else [Path(folder) for folder in runs_dirs]
    if not folders:
        raise CritBenchError("--runs needs at least one folder of run records")
    for folder in folders:
        if not folder.is_dir():
            raise CritBenchError(f"--runs {folder} is not a folder; pass the --out folder of benchmarks.run or the leaderboard")
        try:
            os.listdir(folder)
        except OSError as error:
            raise CritBenchError(f"--runs {folder} cannot be read ({error.strerror}); pass a folder you can read") from None
    return folders


def run_time(run: Run) -> str | None:
    """When the run finished (`finished_at`), else when it started (`env.started_at`, records from
    before `finished_at`), as ISO text; None where the record has neither."""
    return run.record.get("finished_at") or (run.record.get("env") or {}).get("started_at")


def kept_of(earlier: Run, later: Run) -> tuple[Run, Run, str]:
    """Of two records of one run id, (kept, dropped, why kept): the one that ran last (`run_time`; a
    record without a time predates those with one), else the one read later (a later --runs folder)."""
    times = [run_time(run) for run in (earlier, later)]
    if not any(times):
        return later, earlier, "read from the later --runs folder (neither record has a time)"
    ran_later = times[1] is not None and (
        times[0] is None or datetime.fromisoformat(times[1]) >= datetime.fromisoformat(times[0]))
    kept, dropped = (later, earlier) if ran_later else (earlier, later)
    return kept, dropped, "which ran last"


def described(run: Run) -> str:
    """A record as a duplicate warning names it: its file, test AUC, time, CPU and code revision."""
    auc = (run.record.get("test") or {}).get("auc")
    env = run.record.get("env") or {}
    return (f"{run.path} (test AUC {'—' if auc is None else f'{auc:.4f}'}, finished {run_time(run) or '—'}, "
            f"cpu {env.get('cpu', '—')}, git {str(env.get('git_revision') or '—')[:7]})")


def same_result(run: Run, other: Run) -> bool:
    return all(run.record.get(key) == other.record.get(key) for key in ("test", "test_scores"))


def conflict_note(kept: Run, dropped: Run, why: str) -> str:
    """Why `dropped` is skipped for `kept`, a record of the same run id with another result: both named, loudly."""
    return (f"warning: run {kept.run_id} was trained twice with different results (the same configuration, on another "
            f"CPU class or code revision: compare their env); kept {described(kept)}, {why}, not {described(dropped)}")


def load_runs(runs_dirs: str | Path | Sequence[str | Path]) -> Loaded:
    """Every complete record under the folder(s) `runs_dirs` (recursively), the failure records, and
    every file skipped with why: unusable (`benchmarks.core.records.record_problem`) or a duplicate
    run (the same run id met again, in this folder or a later one): the first one read where their
    results agree, else the one that ran last (`kept_of`), with a warning naming both (`conflict_note`)."""
    paths, skipped = {}, []
    for folder in run_folders(runs_dirs):
        found, problems = record_files(folder)
        for path in found:  # a folder inside another is read once (realpath: a symlink loop is skipped below, not raised)
            paths.setdefault(os.path.realpath(path), path)
        skipped += problems
    runs, failures = {}, []
    for path in paths.values():
        record, problem = read_record(path)
        if problem and is_trial_record(path):
            continue  # a tuning trial's validation-only record: the search section shows it
        if problem:
            skipped.append((path, problem))
        elif record is None:
            continue  # some other JSON file (a suite's own state, a config): not a run record
        elif is_failure_record(path, record):
            failures.append(Failure(path, record))
        else:
            run, earlier = Run(record, path), runs.get(record["run_id"])
            if earlier is not None and same_result(earlier, run):
                skipped.append((path, f"duplicate of run {run.run_id}"))
                continue
            if earlier is not None:
                run, dropped, why = kept_of(earlier, run)
                skipped.append((dropped.path, conflict_note(run, dropped, why)))
            runs[record["run_id"]] = run
    for failure in failures:
        failure.retried = failure.run_id in runs
    match_test_sets(list(runs.values()))
    return Loaded(list(runs.values()), failures, sorted(skipped))


def match_test_sets(runs: list[Run]) -> None:
    """A record without the test split's md5 (written before it was recorded) takes the md5 that the
    records with the same test content (`Run.test_content`: source checksum, labels, held-out files)
    record, where they record one only; so old and new records of one test set pool."""
    recorded: dict[str, set[str]] = {}
    for run in runs:
        if run.recorded_test_set:
            recorded.setdefault(run.test_content, set()).add(run.recorded_test_set)
    for run in runs:
        found = recorded.get(run.test_content, set()) if not run.recorded_test_set else set()
        if len(found) == 1:
            (run.matched_test_set,) = found
