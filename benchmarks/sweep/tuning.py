"""Hyperparameter search with Optuna on validation data only: what a search is.

- the space: `--space` items (`delta=0.1,0.25,0.5`, `mu0=log:1e-7..1e-3`, `lr=1e-4..1e-2`, `n=int:1..5`)
  or a suite entry's `tune` table;
- the selection: stratified group K-fold over train+val (scikit-learn; exact copies in one fold), or
  the official validation split;
  a trial's trainings never see the test split (`benchmarks.engine.pipeline.validation_only`);
- the objective (`OBJECTIVES`), averaged over folds;
- the study: Optuna's grid, random or TPE sampler, a median pruner on per-epoch validation AUC, any
  Optuna storage (a SQLite file by default), resumed with `load_if_exists`;
- a suite's equal budget (`tune = { mode = "equal", trials = 20, epochs = 10 }`): every method searched
  with the same trials and epochs per trial over its own declared space (`Method.search_space`).

Running it (trials through the executors, the selection, the records) is `benchmarks.sweep.search`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import torch
from sklearn.model_selection import StratifiedGroupKFold

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.identity import stable_hash
from benchmarks.engine.resolve import resolve_config
from benchmarks.methods import get_method, resolve_params
from datasets import BinaryDataset, Split
from datasets.base import content_groups


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
              "val_spauc_0.1": Objective("maximize", ("spauc_0.1",)),
              # the partial-AUC family's own metrics (sopa/sota_s/soap): two-way partial AUC, average precision
              "val_pauc_two_way": Objective("maximize", ("pauc_two_way",)),
              "val_ap": Objective("maximize", ("ap",))}
SEARCH_SAMPLERS = ("tpe", "random", "grid")  # optuna samplers (batch samplers: methods.sampling.SAMPLERS)
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


def pooled(dataset: BinaryDataset) -> Split:
    """Train and val as one pool, the samples the folds divide (with their class labels under
    `--task multiclass`)."""
    train, val = dataset.train, dataset.val
    classes = None if train.classes is None else torch.cat([train.classes, val.classes])
    return Split(torch.cat([train.x, val.x]), torch.cat([train.y, val.y]), classes)


def copy_groups(pool: Split) -> np.ndarray:
    """Each sample's exact-copy group (the index of its first copy): copies must share a fold, or a
    fold would validate on images it trained on (PneumoniaMNIST's train+val holds 26 copies)."""
    return np.array(content_groups(pool.sample_md5s()))


@dataclass(frozen=True)
class Fold:
    """Fold `index` of a stratified group `folds`-fold split of train+val (scikit-learn's
    StratifiedGroupKFold, shuffled with `seed`; exact copies stay in one fold: `copy_groups`)."""

    folds: int
    index: int
    seed: int

    @property
    def name(self) -> str:
        return f"{selection_name(self.folds, self.seed)}-fold{self.index}"

    def splits(self, dataset: BinaryDataset) -> tuple[Split, Split]:
        pool = pooled(dataset)
        folds = StratifiedGroupKFold(self.folds, shuffle=True, random_state=self.seed)
        train, val = list(folds.split(np.zeros(len(pool)), pool.y.numpy(), copy_groups(pool)))[self.index]
        return pool.take(torch.from_numpy(train)), pool.take(torch.from_numpy(val))


@dataclass(frozen=True)
class OfficialValidation:
    """The dataset's own train and validation splits."""

    name: str = "val"

    def splits(self, dataset: BinaryDataset) -> tuple[Split, Split]:
        return dataset.train, dataset.val


def selection_name(folds: int | None, seed: int) -> str:
    """How a trial's run id ends: `gcv5s0` (5 group folds shuffled with seed 0), or `val` (the official split)."""
    return f"gcv{folds}s{seed}" if folds else "val"


def selections(folds: int | None, seed: int) -> list:
    """The trainings of one trial: each fold, or the official validation split alone."""
    return [Fold(folds, index, seed) for index in range(folds)] if folds else [OfficialValidation()]


def check_folds(dataset: BinaryDataset, folds: int | None) -> None:
    """Refuse a K that the group folds cannot make from this train+val: a class with fewer than K
    distinct samples (exact copies count once) would leave a fold without it."""
    if not folds:
        return
    pool = pooled(dataset)
    first = np.unique(copy_groups(pool))
    y = pool.y.numpy()[first]
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if min(positives, negatives) < folds:
        raise CritBenchError(f"--cv {folds} needs at least {folds} distinct samples of each class in train+val, which "
                             f"has {positives} positives and {negatives} negatives; use a smaller --cv")


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for the ask-and-tell loop: the budget (at most the grid's size) ends the
    search; Optuna's own calls `study.stop()` once the grid is exhausted, which only works inside
    `study.optimize`."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def int_at_least(value, least: int) -> bool:
    """Whether `value` is an integer (not a bool) >= `least`: a trial, fold or epoch count."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


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
        if self.sampler not in SEARCH_SAMPLERS:
            raise CritBenchError(f"unknown --search-sampler {self.sampler!r}; valid: {', '.join(SEARCH_SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise CritBenchError(f"unknown --pruner {self.pruner!r}; valid: {', '.join(PRUNERS)}")
        if not int_at_least(self.trials, 1):
            raise CritBenchError(f"--trials must be an integer >= 1, got {self.trials!r}")
        if self.folds is not None and not int_at_least(self.folds, 2):
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
        that it does not replay the draws it made before it was stopped. The grid keeps `seed`: its
        trial n takes point n of the order that seed shuffles, so a resumed grid with another order
        would repeat some points and never reach others."""
        seed = self.seed + offset
        if self.sampler == "grid":
            return GridSampler({k: list(d.values) for k, d in self.space.items()}, seed=self.seed)
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
        reason = next(iter(str(error).splitlines()), "")
        raise CritBenchError(f"cannot open the Optuna storage {storage} ({type(error).__name__}: {reason}); "
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


TUNE_MODES = ("equal",)
SUITE_BUDGET_KEYS = {"mode", "trials", "epochs", "cv", "objective", "sampler", "pruner", "seed"}


@dataclass(frozen=True)
class EqualBudget:
    """A suite's `tune = { mode = "equal", ... }`: every method of the suite gets `trials` trials of
    `epochs` epochs each (None: the run's own), on validation only (`cv` folds where given), over its
    declared `search_space`; its preset runs still run beside the tuned ones."""

    trials: int = 20
    epochs: int | None = None
    cv: int | None = None
    objective: str = "val_auc"
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0

    def method_table(self, method: str) -> dict:
        """The per-method `tune` table (as `suite_search` reads it) of `method`: this budget, its space."""
        return {"trials": self.trials, "cv": self.cv, "objective": self.objective, "sampler": self.sampler,
                "pruner": self.pruner, "seed": self.seed, "space": declared_space(method)}


def equal_budget(table, where: str) -> EqualBudget:
    """A suite's top-level `tune` table, checked before anything trains (the rest of it, objective,
    sampler, pruner and cv, is checked by `Search` when the searches are made, also before training)."""
    if not isinstance(table, dict):
        raise CritBenchError(f"{where}: tune must be a table, e.g. tune = {{ mode = \"equal\", trials = 20 }}; "
                             f"got {table!r}")
    unknown = set(table) - SUITE_BUDGET_KEYS
    if unknown:
        raise CritBenchError(f"{where}: unknown tune key(s) {', '.join(sorted(unknown))}; "
                             f"valid: {', '.join(sorted(SUITE_BUDGET_KEYS))}")
    if table.get("mode") not in TUNE_MODES:
        raise CritBenchError(f"{where}: unknown tune mode {table.get('mode')!r}; valid: {', '.join(TUNE_MODES)} "
                             f"(every method gets the same trials and epochs per trial)")
    for key in ("trials", "epochs"):
        if key in table and not int_at_least(table[key], 1):
            raise CritBenchError(f"{where}: tune.{key} must be an integer >= 1, got {table[key]!r}")
    return EqualBudget(**{key: value for key, value in table.items() if key != "mode"})


def declared_space(method: str) -> dict:
    """The search space `method` declares (`Method.search_space`); CritBenchError if it has none."""
    space = get_method(method).search_space
    if not space:
        raise CritBenchError(f"method {method} declares no search_space, so a suite's tune = equal cannot tune it; "
                             f"declare one on its class (benchmarks/methods)")
    return dict(space)
