"""Planning a suite: each run's identity from a cheap fingerprint of its data (no full load where
the adapter has a source checksum), which runs are complete, failed or still to do."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.core.cli import counted
from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.phases import timed
from benchmarks.core.identity import data_fingerprint, run_id
from benchmarks.core.storage import record_path, record_state, stored_record_problem
from benchmarks.engine.resolve import load_dataset
from benchmarks.sweep.executors import RunTask
from benchmarks.sweep.suite import PlannedRun, Suite
from datasets import dataset_fingerprint


class DataFingerprints:
    """The data checksum that enters each run id, or why the data cannot be had, per data source.

    Sources with a checksum of their files (every file-based adapter) are fingerprinted once per
    source without decoding the data; generated data (no source checksum) is loaded per setting
    and seed, as its tensors' md5 is its checksum."""

    def __init__(self):
        self.known: dict[tuple, str | None] = {}
        self.errors: dict[tuple, Exception] = {}

    def of(self, config: RunConfig) -> str:
        source = (config.dataset, config.size, config.data_dir, json.dumps(config.dataset_params, sort_keys=True))
        if source in self.errors:
            raise self.errors[source]
        if source not in self.known:
            try:
                self.known[source] = dataset_fingerprint(config.dataset, size=config.size, data_dir=config.data_dir,
                                                         seed=config.seed, params=config.dataset_params)
            except Exception as error:  # missing, corrupt or unreadable: the same for every run of it
                self.errors[source] = error
                raise
        return self.known[source] or data_fingerprint(load_dataset(config).record())


@dataclass
class Plan:
    tasks: list[RunTask] = field(default_factory=list)  # to run now
    complete: int = 0  # runs whose complete record exists
    failed_kept: list[str] = field(default_factory=list)  # failure records not retried
    failed_retry: int = 0
    unavailable: dict[str, list[str]] = field(default_factory=dict)  # problem -> dataset labels of skipped runs
    unusable: list[str] = field(default_factory=list)  # record files that cannot be used, with why: re-run


@timed("plan")
def make_plan(runs: list[PlannedRun], out: Path, retry_failed: bool, command: str = "") -> Plan:
    plan, fingerprints, driver = Plan(), DataFingerprints(), uuid.uuid4().hex
    for run in runs:
        try:
            identity = run_id(run.config, fingerprints.of(run.config))
        except Exception as error:
            problem = str(error) if isinstance(error, CritBenchError) else f"{type(error).__name__}: {error}"
            plan.unavailable.setdefault(problem, []).append(run.dataset_label)
            continue
        state = record_state(out, identity)
        stored = record_path(out, identity)
        if state != "complete" and stored.exists():  # a record file that cannot be used: re-run, and say why
            plan.unusable.append(f"{stored} {stored_record_problem(stored, identity)}")
        if state == "complete":
            plan.complete += 1
        elif state == "failed" and not retry_failed:
            plan.failed_kept.append(identity)
        else:
            plan.failed_retry += state == "failed"
            plan.tasks.append(RunTask(run.config, identity, run.label, str(out), command, driver))
    return plan


def describe_plan(suite: Suite, runs: list[PlannedRun], plan: Plan, out: Path, executor: str) -> str:
    methods = sum(len(method.variants()) for method in suite.methods)
    uniform = all(d.methods is None and d.seeds is None for d in suite.datasets)
    settings = counted(len(suite.datasets), "dataset setting")
    grid = (f"{settings} x {counted(methods, 'method')} x {counted(len(suite.seeds), 'seed')}" if uniform else
            f"{settings}, each with the methods and seeds the suite gives it")
    lines = [f"suite {suite.name}: {counted(len(runs), 'run')} ({grid}), records in {out}"]
    for problem, labels in plan.unavailable.items():
        settings = ", ".join(dict.fromkeys(labels))
        lines.append(f"skipping {settings} ({len(labels)} runs), cannot load the data: {problem}")
    lines += [f"re-running: {problem}" for problem in plan.unusable]
    kept = f", {len(plan.failed_kept)} failed before and not retried (--no-retry-failed)" if plan.failed_kept else ""
    retry = f" ({plan.failed_retry} of them failed before)" if plan.failed_retry else ""
    lines.append(f"{plan.complete} complete already{kept}; {len(plan.tasks)} to run{retry} with the {executor} executor")
    return "\n".join(lines)
