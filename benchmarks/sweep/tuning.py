"""Hyperparameter search with Optuna on validation data only.

- the space: `--space` items (`delta=0.1,0.25,0.5`, `mu0=log:1e-7..1e-3`, `lr=1e-4..1e-2`, `n=int:1..5`);
- the selection: stratified K-fold over train+val (scikit-learn), or the official validation split;
  a trial's trainings never see the test split (`benchmarks.engine.pipeline.validation_only`);
- the objective (`OBJECTIVES`), averaged over folds;
- the study: Optuna's grid, random or TPE sampler, a median pruner on per-epoch validation AUC, any
  Optuna storage (a SQLite file by default), resumed with `load_if_exists`;
- the trials: one executor task each (local, worker pool, Ray, Slurm), asked and told by the driver.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import torch
from sklearn.model_selection import StratifiedKFold

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.outputs import check_writable_dir, save_record_safely
from benchmarks.core.records import (RECORD_VERSION, base_environment, read_json, record_path, record_state, run_id,
                                     stable_hash, utc_now, write_json_atomic)
from benchmarks.engine.checkpoint import remove_checkpoint, run_checkpoint_dir
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import load_dataset, resolve_config
from benchmarks.methods import resolve_params
from benchmarks.sweep.executors import RunTask, TaskResult
from benchmarks.sweep.progress import Progress
from benchmarks.sweep.suite import Suite, cells, derive_seed, setting_config
from datasets import BinaryDataset, Split


class SearchFailed(CritBenchError):
    """The search ran but selected nothing (every trial pruned or failed): exit code 1, not bad input."""


@dataclass(frozen=True)
class Objective:
    direction: str  # "maximize" or "minimize"
    key: tuple[str, ...]  # where the value sits in a metrics dict (benchmarks.core.metrics.binary_metrics)

    def of(self, metrics: dict) -> float:
        value = metrics
        for part in self.key:
            value = value[part]
        return math.nan if value is None else float(value)


OBJECTIVES = {"val_auc": Objective("maximize", ("auc",)),
              "val_fpr_at_tpr_0.95": Objective("minimize", ("fpr_at_tpr", "0.95")),
              "val_spauc_0.1": Objective("maximize", ("spauc_0.1",))}
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
NOT_TUNABLE = ("preset", "base")  # they change the method's recipe or name, not one hyperparameter


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter's range: listed `values`, or `low`..`high` (float or int, optionally log)."""

    name: str
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    integer: bool = False
    log: bool = False

    def suggest(self, trial: optuna.Trial):
        if self.values:
            return trial.suggest_categorical(self.name, list(self.values))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        if self.values:
            return ",".join(map(str, self.values))
        return f"{'int:' if self.integer else ''}{'log:' if self.log else ''}{self.low:g}..{self.high:g}"


def _value(text: str):
    """A listed value as TOML would type it: an integer, a number, true/false, else the text."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_dimension(item: str, valid: list[str]) -> Dimension:
    """One `--space NAME=SPEC` item; CritBenchError naming the item and what is valid."""
    name, equals, spec = (part.strip() for part in item.partition("="))
    if not equals or not name or not spec:
        raise CritBenchError(f"--space expects NAME=VALUES or NAME=[int:][log:]LOW..HIGH, got {item!r}")
    if name not in valid:
        raise CritBenchError(f"--space {item!r}: unknown parameter {name!r}; valid: {', '.join(valid)}")
    if ".." not in spec:
        values = tuple(_value(value.strip()) for value in spec.split(","))
        if any(value == "" for value in values) or len(set(map(repr, values))) != len(values):
            raise CritBenchError(f"--space {item!r}: list distinct values separated by commas, e.g. {name}=0.1,0.25")
        return Dimension(name, values=values)
    prefixes, _, bounds = spec.rpartition(":")
    flags = set(prefixes.split(":")) - {""}
    if flags - {"int", "log"}:
        raise CritBenchError(f"--space {item!r}: unknown prefix {':'.join(sorted(flags - {'int', 'log'}))}; "
                             f"valid: int:, log:")
    low_text, _, high_text = bounds.partition("..")
    try:
        low, high = (int(low_text), int(high_text)) if "int" in flags else (float(low_text), float(high_text))
    except ValueError:
        kind = "integers" if "int" in flags else "numbers"
        raise CritBenchError(f"--space {item!r}: the bounds must be {kind}, as in {name}=1e-4..1e-2") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise CritBenchError(f"--space {item!r}: the range needs finite bounds with LOW < HIGH")
    if "log" in flags and low <= 0:
        raise CritBenchError(f"--space {item!r}: a log range needs LOW > 0")
    return Dimension(name, low=low, high=high, integer="int" in flags, log="log" in flags)


def tunable_params(method: str) -> list[str]:
    """The hyperparameters of `method` a search may vary."""
    return [key for key in resolve_params(method, {}) if key not in NOT_TUNABLE]


def parse_space(items, method: str) -> dict[str, Dimension]:
    """`--space` items (or a suite's `space` table, given as such items) for `method`."""
    if not items:
        raise CritBenchError(f"give at least one --space NAME=VALUES; {method}'s parameters: "
                             f"{', '.join(tunable_params(method))}")
    space = {}
    for item in items:
        dimension = parse_dimension(item, tunable_params(method))
        if dimension.name in space:
            raise CritBenchError(f"--space {dimension.name} given twice; give it once")
        space[dimension.name] = dimension
    return space


def space_items(table: dict) -> list[str]:
    """A suite's `space = { delta = [0.1, 0.5], mu0 = "log:1e-7..1e-3" }` as `--space` items."""
    return [f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}" for key, value in table.items()]


@dataclass(frozen=True)
class Fold:
    """Fold `index` of a stratified `folds`-fold split (scikit-learn, shuffled with `seed`) of train+val."""

    folds: int
    index: int
    seed: int

    @property
    def name(self) -> str:
        return f"cv{self.folds}s{self.seed}-fold{self.index}"

    def splits(self, dataset: BinaryDataset) -> tuple[Split, Split]:
        pool = Split(torch.cat([dataset.train.x, dataset.val.x]), torch.cat([dataset.train.y, dataset.val.y]))
        folds = StratifiedKFold(self.folds, shuffle=True, random_state=self.seed)
        train, val = list(folds.split(np.zeros(len(pool)), pool.y.numpy()))[self.index]
        return pool.take(torch.from_numpy(train)), pool.take(torch.from_numpy(val))


@dataclass(frozen=True)
class OfficialValidation:
    """The dataset's own train and validation splits."""

    name: str = "val"

    def splits(self, dataset: BinaryDataset) -> tuple[Split, Split]:
        return dataset.train, dataset.val


def selections(folds: int | None, seed: int) -> list:
    """The trainings of one trial: each fold, or the official validation split alone."""
    return [Fold(folds, index, seed) for index in range(folds)] if folds else [OfficialValidation()]


def check_folds(dataset: BinaryDataset, folds: int | None) -> None:
    """Refuse a K that stratified K-fold cannot make from this train+val (a class with fewer than K samples)."""
    if not folds:
        return
    y = torch.cat([dataset.train.y, dataset.val.y])
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if min(positives, negatives) < folds:
        raise CritBenchError(f"--cv {folds} needs at least {folds} samples of each class in train+val, which has "
                             f"{positives} positives and {negatives} negatives; use a smaller --cv")


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for the ask-and-tell loop: the budget (at most the grid's size) ends the
    search; Optuna's own calls `study.stop()` once the grid is exhausted, which only works inside
    `study.optimize`."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


@dataclass(frozen=True)
class Search:
    """What a study is: the base run (a resolved config), the space, the selection, the objective and
    the sampler; its `key` is stored with the study, so a study is never resumed with another search."""

    config: RunConfig
    space: dict[str, Dimension]
    objective: str
    folds: int | None = None
    trials: int = 20
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise CritBenchError(f"unknown --objective {self.objective!r}; valid: {', '.join(OBJECTIVES)}")
        if self.sampler not in SAMPLERS:
            raise CritBenchError(f"unknown --search-sampler {self.sampler!r}; valid: {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise CritBenchError(f"unknown --pruner {self.pruner!r}; valid: {', '.join(PRUNERS)}")
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise CritBenchError(f"--trials must be an integer >= 1, got {self.trials!r}")
        if self.folds is not None and (isinstance(self.folds, bool) or not isinstance(self.folds, int)
                                       or self.folds < 2):
            raise CritBenchError(f"--cv must be an integer >= 2 (folds of train+val; leave it out for the official "
                                 f"validation split), got {self.folds!r}")
        if self.sampler == "grid" and any(not d.values for d in self.space.values()):
            ranges = ", ".join(d.name for d in self.space.values() if not d.values)
            raise CritBenchError(f"--search-sampler grid needs listed values for every --space parameter ({ranges} is a "
                                 f"range); list values or use --search-sampler tpe or random")
        for dimension in self.space.values():  # every end of every range is a valid value, before any training
            for value in dimension.values or (dimension.low, dimension.high):
                self.trial_config({dimension.name: value})

    @property
    def budget(self) -> int:
        """The trials to finish: `trials`, or fewer when the grid has fewer points."""
        if self.sampler != "grid":
            return self.trials
        return min(self.trials, math.prod(len(d.values) for d in self.space.values()))

    def key(self) -> dict:
        return {"config": self.config.identity(), "space": {k: d.describe() for k, d in sorted(self.space.items())},
                "objective": self.objective, "folds": self.folds, "sampler": self.sampler, "pruner": self.pruner,
                "seed": self.seed}

    def trial_config(self, params: dict) -> RunConfig:
        """The base run with a trial's hyperparameters (checked by resolve_config)."""
        try:
            return resolve_config(dataclasses.replace(self.config, params={**self.config.params, **params}))
        except CritBenchError as error:
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            raise CritBenchError(f"--space {shown}: {error}") from None

    def make_sampler(self, offset: int = 0) -> optuna.samplers.BaseSampler:
        """The sampler, seeded with `seed + offset`: a resumed study passes its number of trials, so
        that it does not replay the draws it made before it was stopped."""
        seed = self.seed + offset
        if self.sampler == "grid":
            return GridSampler({k: list(d.values) for k, d in self.space.items()}, seed=seed)
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed)



def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """Median pruning on the validation AUC of every (fold, epoch) step, or none."""
    return optuna.pruners.MedianPruner() if name == "median" else optuna.pruners.NopPruner()


def default_storage(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'tune.db'}"


def open_study(search: Search, storage: str, name: str) -> optuna.Study:
    """The study `name` in `storage`, created or resumed (`load_if_exists`); CritBenchError when it
    exists with another search, or the storage cannot be opened."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    key = stable_hash(search.key())
    try:
        study = optuna.create_study(storage=storage, study_name=name, sampler=search.make_sampler(),
                                    pruner=make_pruner(search.pruner), direction=OBJECTIVES[search.objective].direction,
                                    load_if_exists=True)
    except Exception as error:  # optuna and SQLAlchemy raise many types for a bad URL or an unreadable file
        raise CritBenchError(f"cannot open the Optuna storage {storage} ({type(error).__name__}: {error}); "
                             f"give a writable --storage URL") from None
    stored = study.user_attrs.get("search_key")
    if stored is None:
        study.set_user_attr("search_key", key)
        study.set_user_attr("search", search.key())
    elif stored != key:
        raise CritBenchError(f"study {name!r} in {storage} was made by another search "
                             f"({study.user_attrs.get('search')}); use another --out, --storage or --study-name")
    study.sampler = search.make_sampler(offset=len(study.trials))
    return study


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


def trial_record(task: TrialTask, state: str, values: list[float], fits: list[str], started: float) -> dict:
    """The record of one trial: its parameters, objective per training and mean, its trainings' records."""
    objective = OBJECTIVES[task.objective]
    return {"record_version": RECORD_VERSION, "run_id": task.run_id, "status": "complete", "kind": "trial",
            "study": task.study, "trial": task.number, "state": state, "params": task.params,
            "objective": {"name": task.objective, "direction": objective.direction,
                          "value": float(np.mean(values)) if state == "complete" else None, "per_fit": values},
            "selection": f"cv{task.folds}" if task.folds else "val", "fits": fits, "config": task.config.to_dict(),
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
                    reporter(entry["epoch"], math.nan if entry["val_auc"] is None else entry["val_auc"])
        else:
            record = run_benchmark(task.config, progress=progress, checkpoint_dir=checkpoints, selection=selection,
                                   on_epoch=reporter)
        if reporter.pruned:
            remove_checkpoint(checkpoints, fit_id)
            state = "pruned"
            break
        if record["status"] != "complete":
            path, warning = save_record_safely({**record, "run_id": task.run_id, "command": task.command},
                                               task.out_dir)
            return TaskResult(task.run_id, task.label, "failed", str(path), warning or record["reason"])
        save_record_safely({**record, "command": task.command}, fits_dir)
        remove_checkpoint(checkpoints, fit_id)
        values.append(OBJECTIVES[task.objective].of(record["val"]))
        fits.append(fit_id)
    record = trial_record(task, state, values, fits, started)
    path, warning = save_record_safely(record, task.out_dir)
    return TaskResult(task.run_id, task.label, "rescued" if warning else "complete", str(path), warning, record)


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


def trial_task(search: Search, study: optuna.Study, storage: str, trial: optuna.Trial, out: Path, base_id: str,
               command: str) -> TrialTask:
    params = {name: dimension.suggest(trial) for name, dimension in search.space.items()}
    config = search.trial_config(params)
    selection = f"cv{search.folds}s{search.seed}" if search.folds else "val"
    shown = " ".join(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}"
                     for key, value in params.items())
    return TrialTask(config, f"{base_id(config)}-{selection}", f"trial {trial.number}: {shown}", str(out), command,
                     storage=storage, study=study.study_name, trial_id=trial._trial_id, number=trial.number,
                     objective=search.objective, folds=search.folds, fold_seed=search.seed, pruner=search.pruner,
                     params=params, base_id=base_id(config))


def tell(study: optuna.Study, trial: optuna.Trial, result: TaskResult) -> None:
    """Tell the study what the trial's record says: its objective, pruned, or failed."""
    record, _ = read_json(result.path)
    record = record if isinstance(record, dict) else {}
    value = (record.get("objective") or {}).get("value")
    if record.get("kind") == "trial" and record.get("state") == "pruned":
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    elif record.get("kind") == "trial" and value is not None and math.isfinite(value):
        study.tell(trial, value)
    else:
        study.set_user_attr(f"failed_trial_{trial.number}", result.reason or "no objective")
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def run_search(search: Search, study: optuna.Study, storage: str, executor, out: Path, base_id, parallel: int = 1,
               command: str = "") -> int:
    """Ask, run (through `executor`, `parallel` trials at a time) and tell trials until the budget is
    finished; trial records go to `out`. Returns how many interrupted trials were asked again."""
    recovered = recover_interrupted(study)
    while (left := search.budget - finished(study)) > 0:
        trials = [study.ask() for _ in range(min(parallel, left))]
        tasks = [trial_task(search, study, storage, trial, out, base_id, command) for trial in trials]
        progress = Progress(len(tasks))
        executor.run(tasks, progress, work=run_trial)
        results = {result.run_id: result for outcome in progress.outcomes.values() for result in outcome}
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


SUITE_TUNE_KEYS = {"trials", "cv", "space", "objective", "sampler", "pruner", "seed"}


def suite_search(config: RunConfig, table: dict, where: str) -> Search:
    """The search of a suite entry's `tune = { trials = 20, cv = 5, space = {...} }` on `config`
    (the run the suite would make, resolved), trained with the leaderboard's seed index 0."""
    unknown = set(table) - SUITE_TUNE_KEYS
    if unknown:
        raise CritBenchError(f"{where}: unknown tune key(s) {', '.join(sorted(unknown))}; "
                             f"valid: {', '.join(sorted(SUITE_TUNE_KEYS))}")
    if not isinstance(table.get("space"), dict) or not table["space"]:
        raise CritBenchError(f"{where}: tune.space must be a table of parameter = [values] or \"[log:]LOW..HIGH\"")
    try:
        return Search(config, parse_space(space_items(table["space"]), config.method),
                      table.get("objective", "val_auc"), folds=table.get("cv"), trials=table.get("trials", 20),
                      sampler=table.get("sampler", "tpe"), pruner=table.get("pruner", "median"),
                      seed=table.get("seed", 0))
    except CritBenchError as error:
        raise CritBenchError(f"{where}: tune: {error}") from None


@dataclass
class SuiteSearch:
    """The search of one (dataset setting, method) of a suite, in its own folder of the suite's --out."""

    key: tuple[str, str]  # (dataset label, method name), as suite.expand's `tuned`
    search: Search
    folder: Path
    study: optuna.Study | None = None

    @property
    def storage(self) -> str:
        return default_storage(self.folder)


def suite_searches(suite: Suite, machine: dict | None, out: Path) -> list[SuiteSearch]:
    """The searches of every method with `tune` on every dataset setting that runs it, checked."""
    searches = []
    for setting, method in cells(suite):
        if method.tune:
            config = setting_config(suite, setting, method, {}, machine)
            config = dataclasses.replace(config, seed=derive_seed(config, 0))  # the leaderboard's seed index 0
            where = f"suite {suite.name}, {setting.label} / {method.name}"
            folder = Path(out) / "tuning" / re.sub(r"[^A-Za-z0-9_.+-]+", "-", f"{setting.label}-{method.name}")
            searches.append(SuiteSearch((setting.label, method.name), suite_search(config, method.tune, where), folder))
    return searches


def tune_suite(searches: list[SuiteSearch], executor, fingerprints, command: str = "") -> dict:
    """Run every suite search (each method with the same budget as its entry says) and return
    suite.expand's `tuned`: (dataset label, method name) -> the selected parameters."""
    tuned = {}
    for entry in searches:
        print(f"tuning {entry.key[0]} / {entry.key[1]}: {entry.search.budget} trials, "
              f"{f'{entry.search.folds}-fold CV' if entry.search.folds else 'validation split'}, in {entry.folder}",
              file=sys.stderr, flush=True)
        entry.study = select_configuration(entry.search, entry.storage, "search", executor,
                                           check_writable_dir(entry.folder / "trials", "the trials folder"),
                                           lambda config: run_id(config, fingerprints.of(config)), command=command)
        tuned[entry.key] = selected_trial(entry.study).params
    return tuned


def record_suite_searches(searches: list[SuiteSearch], runs: list, out: Path, fingerprints) -> None:
    """Each search's search.json, and its selected configuration's records in `out` marked."""
    for entry in searches:
        params = selected_trial(entry.study).params
        ids = [run_id(run.config, fingerprints.of(run.config)) for run in runs
               if run.dataset_label == entry.key[0] and run.config.method == entry.search.config.method
               and run.variant == params]
        record_search(entry.search, entry.study, entry.storage, entry.folder, out, ids)


def select_configuration(search: Search, storage: str, name: str, executor, trials_dir: Path, base_id,
                         parallel: int = 1, command: str = "") -> optuna.Study:
    """Run (or resume) the search to its budget and return its study, whose best trial is the
    selection (SearchFailed when no trial completed). The data is loaded first, so missing data and
    a --cv the data cannot fold are refused before any training."""
    check_folds(load_dataset(search.config), search.folds)
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
    mark_selected(records, run_ids, summary)
    return summary, path


def mark_selected(out: Path, run_ids: list[str], summary: dict) -> None:
    """Mark each complete record of the selected configuration with the search that chose it."""
    for identity in run_ids:
        path = record_path(out, identity)
        record, _ = read_json(path)
        if record_state(out, identity) == "complete" and "tuning" not in record:
            write_json_atomic(path, {**record, "tuning": {"selected": True, "study": summary["study"],
                                                          "trial": summary["selected"]["trial"],
                                                          "objective": summary["objective"],
                                                          "value": summary["selected"]["value"],
                                                          "params": summary["selected"]["params"],
                                                          "trials": len(summary["trials"]),
                                                          "budget": summary["budget"]}})
