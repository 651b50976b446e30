"""Running a hyperparameter search (`benchmarks.sweep.tuning`): trials asked from the study, each
an executor task (local, worker pool, Ray, Slurm) that trains the trial's configuration on every
fold and reports per-epoch validation AUC to the pruner, told back by the driver; the selection,
the search's summary (`search.json`) and the marking of the selected configuration's run records;
a suite's `tune` entries searched before their seeds run. A search is claimed for as long as it
runs (`benchmarks.sweep.claims`), so a second driver on the same folder leaves it to its holder.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import optuna

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.outputs import check_writable_dir, save_record_safely
from benchmarks.core.identity import run_id, stable_hash
from benchmarks.core.machine import base_environment, utc_now
from benchmarks.core.records import RECORD_VERSION
from benchmarks.core.storage import read_json, record_path, record_state, write_json_atomic
from benchmarks.engine.checkpoint import remove_checkpoint, run_checkpoint_dir
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import load_dataset
from benchmarks.sweep.claims import Claim, claim_path, claim_run, describe
from benchmarks.sweep.executors import RunTask, TaskResult, WorkerPoolExecutor
from benchmarks.sweep.progress import SuiteProgress
from benchmarks.sweep.suite import Suite, cells, derive_seed, setting_config
from benchmarks.sweep.tuning import (OBJECTIVES, Search, check_folds, default_storage, make_pruner, open_study,
                                     selection_name, selections, suite_search)
from reports.tuning import shown_params


class SearchFailed(CritBenchError):
    """The search selected nothing (every trial pruned or failed, or another live process runs it):
    exit code 1, not bad input."""


@dataclass(frozen=True)
class TrialTask(RunTask):
    """One trial: its configuration trained on every selection; told to the study by the driver."""

    storage: str = ""
    study: str = ""
    trial_id: int = -1  # Optuna's id, for reporting intermediate values from the worker
    number: int = -1
    objective: str = "val_auc"
    folds: int | None = None
    fold_seed: int = 0
    pruner: str = "median"
    params: dict = field(default_factory=dict)
    base_id: str = ""  # the configuration's run id; its trainings are <base_id>-<selection name>


class Reporter:
    """`on_epoch` of a trial's trainings: reports each epoch's validation AUC at step fold x epochs +
    epoch and stops the training once the pruner says so."""

    def __init__(self, trial: optuna.Trial, offset: int):
        self.trial, self.offset, self.pruned = trial, offset, False

    def __call__(self, epoch: int, val_auc: float) -> None:
        if math.isfinite(val_auc):
            self.trial.report(val_auc, self.offset + epoch)
        if self.trial.should_prune():
            self.pruned = True
            raise optuna.TrialPruned(f"pruned after epoch {epoch} (validation AUC {val_auc:.4f})")


def selected_auc(entry: dict, config: RunConfig) -> float:
    """An epoch's validation AUC in a fit's history as the trainer reports it to the pruner
    (`val_class_auc` under select_on "all_classes", else `val_auc`); NaN where it is missing."""
    value = entry.get("val_class_auc") if config.select_on == "all_classes" else entry["val_auc"]
    return math.nan if value is None else value


def trial_record(task: TrialTask, state: str, values: list[float], fits: list[str], started: float) -> dict:
    """The record of one trial: its parameters, objective per training and mean, its trainings' records."""
    objective = OBJECTIVES[task.objective]
    return {"record_version": RECORD_VERSION, "run_id": task.run_id, "status": "complete", "kind": "trial",
            "study": task.study, "trial": task.number, "state": state, "params": task.params,
            "objective": {"name": task.objective, "direction": objective.direction,
                          "value": float(np.mean(values)) if state == "complete" else None, "per_fit": values},
            "selection": selection_name(task.folds, task.fold_seed), "fits": fits, "config": task.config.to_dict(),
            "env": base_environment(), "seconds": time.perf_counter() - started, "finished_at": utc_now()}


def run_trial(task: TrialTask, progress: bool = False) -> TaskResult:
    """Train the trial's configuration on each selection (finished trainings are reused, a killed one
    resumes from its checkpoint), report per-epoch validation AUC to the pruner, and write the trial's
    record into `task.out_dir`: state "complete" with the objective, or "pruned". A crash writes a
    failure record."""
    started = time.perf_counter()
    study = optuna.load_study(study_name=task.study, storage=task.storage)
    study.pruner = make_pruner(task.pruner)
    trial = optuna.trial.Trial(study, task.trial_id)
    fits_dir = Path(task.out_dir) / "fits"
    checkpoints = run_checkpoint_dir(fits_dir)
    values, fits, state = [], [], "complete"
    for index, selection in enumerate(selections(task.folds, task.fold_seed)):
        reporter = Reporter(trial, index * task.config.epochs)
        fit_id = f"{task.base_id}-{selection.name}"
        record, _ = read_json(record_path(fits_dir, fit_id))
        if isinstance(record, dict) and record.get("status") == "complete":  # reused: its epochs still count
            with contextlib.suppress(optuna.TrialPruned):
                for entry in record["history"]:
                    reporter(entry["epoch"], selected_auc(entry, task.config))
        else:
            record = run_benchmark(task.config, progress=progress, checkpoint_dir=checkpoints, selection=selection,
                                   on_epoch=reporter, command=task.command)
            if record["status"] == "complete":
                save_record_safely(record, fits_dir)
            if record["status"] == "complete" or reporter.pruned:
                remove_checkpoint(checkpoints, fit_id)
        if reporter.pruned:
            state = "pruned"
            break
        if record["status"] != "complete":
            path, warning = save_record_safely({**record, "run_id": task.run_id}, task.out_dir)
            return TaskResult(task.run_id, task.label, "failed", str(path), warning or record["reason"])
        values.append(OBJECTIVES[task.objective].of(record["val"]))
        fits.append(fit_id)
    record = trial_record(task, state, values, fits, started)
    path, warning = save_record_safely(record, task.out_dir)
    return TaskResult(task.run_id, task.label, "rescued" if warning else "complete", str(path), warning, record)


def default_parallel(executor) -> int:
    """Trials asked at once: one per worker slot of the local pool, else one (TPE learns from each)."""
    return len(executor.slots) if isinstance(executor, WorkerPoolExecutor) else 1


def executor_session(executor):
    """What keeps the executor up across a search's batches (Ray's instance), else nothing to hold."""
    return executor.session() if hasattr(executor, "session") else contextlib.nullcontext()


def finished(study: optuna.Study) -> int:
    """Trials that count against the budget: complete, pruned, or failed other than by an interruption."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sum(trial.state in states or (trial.state == optuna.trial.TrialState.FAIL
                                         and not trial.user_attrs.get("interrupted"))
               for trial in study.get_trials(deepcopy=False))


def recover_interrupted(study: optuna.Study) -> int:
    """Trials a killed driver left running: marked failed ("interrupted", not counted) and their
    parameters asked again first, so the rerun finishes them (reusing their finished trainings)."""
    left = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in left:
        study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, skip_if_exists=False)
    return len(left)


def trial_task(search: Search, study: optuna.Study, storage: str, trial: optuna.Trial, out: Path,
               base_id: Callable[[RunConfig], str], command: str) -> TrialTask:
    """The task of `trial`: its parameters drawn, its configuration named by `base_id` (the run id)."""
    params = {name: dimension.suggest(trial) for name, dimension in search.space.items()}
    config = search.trial_config(params)
    return TrialTask(config, f"{base_id(config)}-{selection_name(search.folds, search.seed)}",
                     f"trial {trial.number}: {shown_params(params)}", str(out), command,
                     storage=storage, study=study.study_name, trial_id=trial._trial_id, number=trial.number,
                     objective=search.objective, folds=search.folds, fold_seed=search.seed, pruner=search.pruner,
                     params=params, base_id=base_id(config))


def tell(study: optuna.Study, trial: optuna.Trial, result: TaskResult) -> None:
    """Tell the study what the trial's record says: its objective, pruned, or failed; a trial already
    finished (another driver took it as interrupted) is left as it is."""
    record, _ = read_json(result.path)
    record = record if isinstance(record, dict) else {}
    value = (record.get("objective") or {}).get("value")
    if record.get("kind") == "trial" and record.get("state") == "pruned":
        study.tell(trial, state=optuna.trial.TrialState.PRUNED, skip_if_finished=True)
    elif record.get("kind") == "trial" and value is not None and math.isfinite(value):
        study.tell(trial, value, skip_if_finished=True)
    else:
        study.set_user_attr(f"failed_trial_{trial.number}", result.reason or "no objective")
        study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)


def run_search(search: Search, study: optuna.Study, storage: str, executor, out: Path, base_id, parallel: int = 1,
               command: str = "") -> int:
    """Ask, run (through `executor`, `parallel` trials at a time) and tell trials until the budget is
    finished; trial records go to `out`. Returns how many interrupted trials were asked again."""
    recovered = recover_interrupted(study)
    progress = SuiteProgress(max(0, search.budget - finished(study)), unit="trial")  # counts trials over the search
    while (left := search.budget - finished(study)) > 0:
        trials = [study.ask() for _ in range(min(parallel, left))]
        tasks = [trial_task(search, study, storage, trial, out, base_id, command) for trial in trials]
        batch = len(progress.results)
        executor.run(tasks, progress, work=run_trial)
        results = {result.run_id: result for result in progress.results[batch:]}
        for trial, task in zip(trials, tasks):
            tell(study, trial, results[task.run_id])
    return recovered


def selected_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The best complete trial by the objective; CritBenchError when no trial completed."""
    try:
        return study.best_trial
    except ValueError:
        raise SearchFailed(f"no trial of study {study.study_name} completed (all pruned or failed); see the "
                             f"trial records and widen the --space or train longer") from None


def search_summary(search: Search, study: optuna.Study, storage: str, final_runs: list[str]) -> dict:
    """The search as the report shows it: every trial's objective (validation only), the chosen
    parameters and the selected configuration's final runs. Test results live in those runs' records."""
    best = selected_trial(study)
    trials = [{"number": trial.number, "state": trial.state.name.lower(), "value": trial.value,
               "params": trial.params, "interrupted": bool(trial.user_attrs.get("interrupted"))}
              for trial in study.get_trials(deepcopy=False)]
    return {"kind": "search", "study": study.study_name, "storage": storage, "search": search.key(),
            "budget": search.budget, "objective": search.objective,
            "direction": OBJECTIVES[search.objective].direction, "trials": trials,
            "selected": {"trial": best.number, "value": best.value, "params": best.params},
            "final_runs": final_runs, "written_at": utc_now()}


@dataclass
class SuiteSearch:
    """The search of one (dataset setting, method) of a suite, in its own folder of the suite's --out."""

    key: tuple[str, str]  # (dataset label, method name), as suite.expand's `tuned`
    search: Search
    folder: Path
    study: optuna.Study | None = None
    failure: str | None = None  # why the search selected nothing (its tuned runs are left out)

    @property
    def storage(self) -> str:
        return default_storage(self.folder)


def file_name(text: str) -> str:
    """`text` as a file or folder name: runs of other characters than letters, digits and `_.+-` as `-`."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text)


def suite_searches(suite: Suite, machine: dict | None, out: Path) -> list[SuiteSearch]:
    """The searches of every method with `tune` on every dataset setting that runs it, checked; under
    the suite's `tune` (equal budget), of every method, each over its declared space with the same
    trials and epochs per trial."""
    searches = []
    for setting, method in cells(suite):
        table = suite.tune.method_table(method.name) if suite.tune else method.tune
        if table:
            config = setting_config(suite, setting, method, {}, machine)
            # the leaderboard's seed index 0, and the budget's epochs per trial where it sets them, never
            # more than the run's own (--epochs 2 makes a quick check of the searches too)
            config = dataclasses.replace(config, seed=derive_seed(config, 0), epochs=min(
                suite.tune.epochs, config.epochs) if suite.tune and suite.tune.epochs else config.epochs)
            where = f"suite {suite.name}, {setting.label} / {method.name}"
            folder = Path(out) / "tuning" / file_name(f"{setting.label}-{method.name}")
            searches.append(SuiteSearch((setting.label, method.name), suite_search(config, table, where), folder))
    return searches


def tune_suite(searches: list[SuiteSearch], executor, fingerprints, command: str = "") -> dict:
    """Run every suite search (each method with the same budget as its entry says) and return
    suite.expand's `tuned`: (dataset label, method name) -> the selected parameters, or None for a
    search that selected nothing (no trial completed, or its data cannot be loaded): its `failure`
    says why, its tuned runs are left out and the other searches and runs go on, as a plain run's
    unavailable data does."""
    tuned = {}
    with executor_session(executor):
        for entry in searches:
            print(f"tuning {entry.key[0]} / {entry.key[1]}: {entry.search.budget} trials of {entry.search.config.epochs} "
                  f"epochs, {f'{entry.search.folds}-fold CV' if entry.search.folds else 'validation split'}, "
                  f"in {entry.folder}",
                  file=sys.stderr, flush=True)
            try:
                entry.study = select_configuration(entry.search, entry.storage, "search", executor,
                                                   check_writable_dir(entry.folder / "trials", "the trials folder"),
                                                   lambda config: run_id(config, fingerprints.of(config)),
                                                   default_parallel(executor), command)
            except Exception as error:  # as make_plan: missing or corrupt data, no trial completed
                entry.failure = str(error) if isinstance(error, CritBenchError) else f"{type(error).__name__}: {error}"
                print(f"tuning {entry.key[0]} / {entry.key[1]} selected nothing: {entry.failure}; its tuned runs are "
                      f"left out, the rest of the suite goes on", file=sys.stderr, flush=True)
                tuned[entry.key] = None
                continue
            tuned[entry.key] = selected_trial(entry.study).params
    return tuned


def failed_searches(searches: list[SuiteSearch]) -> list[str]:
    """One closing line per search that selected nothing, with why and how to resume it."""
    return [f"search failed: {entry.key[0]} / {entry.key[1]}: {entry.failure}\n  its tuned runs were left out; "
            f"rerun the same command to resume the search (trials in {entry.folder})"
            for entry in searches if entry.failure]


def record_suite_searches(searches: list[SuiteSearch], runs: list, out: Path, fingerprints) -> None:
    """Each search's search.json, and its selected configuration's records in `out` marked (a
    search that selected nothing has neither)."""
    for entry in searches:
        if entry.study is None:
            continue
        params = selected_trial(entry.study).params
        ids = [run_id(run.config, fingerprints.of(run.config)) for run in runs
               if run.dataset_label == entry.key[0] and run.config.method == entry.search.config.method
               and run.tuned and run.variant == params]
        record_search(entry.search, entry.study, entry.storage, entry.folder, out, ids)


def claim_study(trials_dir: Path, name: str) -> Claim:
    """This process's claim on study `name` (`<trials_dir>/.claims/study-<name>.json`); SearchFailed
    while another live process holds it, whose running trials are then left to it."""
    identity = f"study-{file_name(name)}"
    claim, holder = claim_run(trials_dir, identity)
    if claim is None:
        raise SearchFailed(f"study {name} is being searched by another process ({describe(holder)}; claim "
                           f"{claim_path(trials_dir, identity)}); rerun once it has finished")
    return claim


def select_configuration(search: Search, storage: str, name: str, executor, trials_dir: Path, base_id,
                         parallel: int = 1, command: str = "") -> optuna.Study:
    """Run (or resume) the search to its budget, under its claim (`claim_study`), and return its study,
    whose best trial is the selection (SearchFailed when no trial completed, or while another process
    runs the search). The data is loaded first, so missing data and a --cv the data cannot fold are
    refused before any training."""
    check_folds(load_dataset(search.config), search.folds)
    with claim_study(trials_dir, name):
        study = open_study(search, storage, name)
        recovered = run_search(search, study, storage, executor, trials_dir, base_id, parallel, command)
    if recovered:
        print(f"{name}: resumed {recovered} interrupted trials", file=sys.stderr)
    selected_trial(study)
    return study


def record_search(search: Search, study: optuna.Study, storage: str, folder: Path, records: Path,
                  run_ids: list[str]) -> tuple[dict, Path]:
    """Write `<folder>/search.json` and mark the selected configuration's records (in `records`)."""
    summary = search_summary(search, study, storage, run_ids)
    path = write_json_atomic(Path(folder) / "search.json", summary)
    mark_selected(records, run_ids, selection_mark(summary, Path(os.path.relpath(folder, records)).as_posix()))
    return summary, path


def selection_mark(summary: dict, folder: str) -> dict:
    """The `tuning` mark of a run the search selected: which search (its folder relative to the
    records and its key's hash), its choice and its budget."""
    return {"selected": True, "study": summary["study"], "folder": folder, "search_key": stable_hash(summary["search"]),
            "trial": summary["selected"]["trial"], "objective": summary["objective"],
            "value": summary["selected"]["value"], "params": summary["selected"]["params"],
            "trials": len(summary["trials"]), "budget": summary["budget"],
            "epochs": summary["search"]["config"]["epochs"], "folds": summary["search"]["folds"]}


def same_search(old, mark: dict) -> bool:
    """Whether the mark `old` was written by the search of `mark` (the same folder, study and key)."""
    return isinstance(old, dict) and all(old.get(key) == mark[key] for key in ("folder", "study", "search_key"))


def updated_mark(old, mark: dict, chosen: bool):
    """The mark a record gets: `mark` on a run of the selection (`chosen`) unless another search's
    selection marks it, and on another run of this search with the selected values (another seed);
    withdrawn (selected False) on this search's runs of values no longer selected; else `old`."""
    ours = same_search(old, mark)
    theirs = isinstance(old, dict) and old.get("selected") and "search_key" in old and not ours
    if chosen and not theirs:
        return mark
    if ours:
        return mark if old.get("params") == mark["params"] else {**old, "selected": False}
    return old


def marked_by(out: Path, key: str) -> list[str]:
    """The run ids of the records in `out` whose text names the search key `key` (a cheap first look:
    their marks are read after)."""
    ids = []
    for path in Path(out).glob("*.json"):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if not path.name.endswith(".failed.json") and key in path.read_text(encoding="utf-8"):
                ids.append(path.name[:-len(".json")])
    return ids


def mark_selected(out: Path, run_ids: list[str], mark: dict) -> None:
    """Mark each complete record of the selected configuration with the search that chose it, and
    update the marks the same search wrote before: rewritten where the selection's content changed
    (more trials), withdrawn (selected False) where it now selects other values."""
    for identity in dict.fromkeys([*run_ids, *marked_by(out, mark["search_key"])]):
        if record_state(out, identity) != "complete":
            continue
        path = record_path(out, identity)
        record, _ = read_json(path)
        new = updated_mark(record.get("tuning"), mark, identity in run_ids)
        if new != record.get("tuning"):
            write_json_atomic(path, {**record, "tuning": new})
