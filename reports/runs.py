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


@dataclass
class Run:
    """One complete run record and the file it came from."""

    record: RunRecord
    path: Path

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

    @cached_property
    def test_set(self) -> str:
        """Fingerprint of the test set: the md5 of its images and labels, as the record states it.

        Records without it (written before it was recorded) fall back to the source checksum, the
        label sequence and, for test parts held out per seed, the held-out file list, so that two
        seeds holding out different images with the same labels are never pooled."""
        dataset = self.record["dataset"]
        recorded = (dataset.get("split_md5") or {}).get("test")
        if recorded:
            return recorded
        digest = hashlib.md5(str(dataset.get("source_md5")).encode())
        digest.update(self.y_true.astype(np.uint8).tobytes())
        held_out = (dataset.get("held_out_files") or {}).get("test")
        if held_out:
            digest.update("\n".join(map(str, held_out)).encode())
        return digest.hexdigest()

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


def load_runs(runs_dirs: str | Path | Sequence[str | Path]) -> Loaded:
    """Every complete record under the folder(s) `runs_dirs` (recursively), the failure records, and
    every file skipped with why: unusable (`benchmarks.core.records.record_problem`) or a duplicate
    run (the same run id met again, in this folder or a later one: the first one read counts)."""
    paths, skipped = {}, []
    for folder in run_folders(runs_dirs):
        found, problems = record_files(folder)
        for path in found:  # a folder inside another is read once (realpath: a symlink loop is skipped below, not raised)
            paths.setdefault(os.path.realpath(path), path)
        skipped += problems
    runs, failures, seen = [], [], set()
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
        elif record["run_id"] in seen:
            skipped.append((path, f"duplicate of run {record['run_id']}"))
        else:
            seen.add(record["run_id"])
            runs.append(Run(record, path))
    for failure in failures:
        failure.retried = failure.run_id in seen
    return Loaded(runs, failures, sorted(skipped))
