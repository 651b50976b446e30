"""Benchmark suites: a small TOML file describing datasets x methods (with hyperparameters) x seeds,
expanded into one resolved `RunConfig` per training run.

A suite file (see `benchmarks/sweep/suites/*.toml`) has these parts, all optional except datasets and methods:

    extends = "full"                    # start from another suite ([run], [slurm], [ray] merge)
    description = "..."
    seeds = [0, 1, 2]                   # seed indices, or "0-2"
    tune = { mode = "equal", trials = 20, epochs = 10 }   # every method searched with the same budget
                                        #   over its declared space, then its seeds run tuned beside
                                        #   its preset runs (benchmarks/sweep/tuning.py, docs/tuning.md)
    [run]                               # RunConfig fields shared by every run (epochs, width, ...)
    [[datasets]]                        # one per dataset setting: name, RunConfig overrides
    name = "cifar10"                    #   (imbalance, size, model, ...), `params` (dataset
    imbalance = 100                     #   --params), `recipes` (method name -> its
    recipes.alm = { mu0 = 1e-7 }        #   hyperparameters on this dataset setting), and
    methods = ["bce", "alm"]            #   optionally `methods` (a subset of the suite's) and
    seeds = "0-9"                       #   `seeds` (its own seed indices)
    [[methods]]                         # one per method: name, `params`, and `sweep`
    name = "alm"                        #   (hyperparameter -> list of values: one variant per
    sweep = { delta = [0.1, 0.5] }      #   combination), or `tune` (a search on validation
    tune = { trials = 20, cv = 5, space = { delta = [0.1, 0.5], mu0 = "log:1e-7..1e-3" } }
                                        #   data before the seeds run: benchmarks/sweep/tuning.py)
    [slurm] / [ray]                     # executor settings (see benchmarks/sweep/executors.py)

Seeds: the user-facing seed index (0, 1, 2) maps to a training seed derived from the data setting
(dataset, size, imbalance, dataset params) and the index only, see `derive_seed`.
"""
from __future__ import annotations

import dataclasses
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.core.config import RunConfig, check_field
from benchmarks.core.errors import CritBenchError
from benchmarks.core.identity import run_id, stable_hash
from benchmarks.engine.resolve import resolve_config
from benchmarks.sweep.tuning import EqualBudget, equal_budget
from benchmarks.methods import list_methods
from datasets import get_dataset_entry, list_datasets

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SUITES_DIR = Path(__file__).resolve().parent / "suites"
SUITE_KEYS = {"description", "seeds", "run", "datasets", "methods", "slurm", "ray", "tune"}
MERGED_TABLES = ("run", "slurm", "ray")  # merged key by key with an `extends`ed suite's
RUN_FIELDS = {f.name for f in dataclasses.fields(RunConfig)} - {"dataset", "method", "seed", "params"}
DATASET_KEYS = RUN_FIELDS - {"dataset_params"} | {"name", "params", "recipes", "methods", "seeds"}
METHOD_KEYS = {"name", "params", "sweep", "tune"}
FLOAT_FIELDS = {f.name for f in dataclasses.fields(RunConfig) if "float" in str(f.type)}
MAX_SEEDS = 1000


@dataclass(frozen=True)
class DatasetSetting:
    """One dataset column of the leaderboard: a dataset with its run overrides and method recipes."""

    name: str
    overrides: dict = field(default_factory=dict)  # RunConfig fields, e.g. imbalance, size, model
    params: dict = field(default_factory=dict)  # dataset --params
    recipes: dict = field(default_factory=dict)  # method name -> hyperparameters on this setting
    methods: tuple[str, ...] | None = None  # only these of the suite's methods (None: all)
    seeds: tuple[int, ...] | None = None  # its own seed indices (None: the suite's)

    @property
    def label(self) -> str:
        imbalance = self.overrides.get("imbalance")
        return self.name if imbalance is None else f"{self.name} 1:{imbalance:g}"


@dataclass(frozen=True)
class MethodSetting:
    name: str
    params: dict = field(default_factory=dict)
    sweep: dict = field(default_factory=dict)  # hyperparameter -> list of values
    tune: dict = field(default_factory=dict)  # a search's settings (trials, cv, space, ...): see tuning.suite_search

    def variants(self) -> list[dict]:
        """Every combination of the sweep values (`[{}]` without a sweep)."""
        keys = sorted(self.sweep)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.sweep[key] for key in keys))]


@dataclass(frozen=True)
class Suite:
    name: str
    datasets: tuple[DatasetSetting, ...]
    methods: tuple[MethodSetting, ...]
    seeds: tuple[int, ...] = (0,)
    run: dict = field(default_factory=dict)  # RunConfig fields of every run
    description: str = ""
    slurm: dict = field(default_factory=dict)
    ray: dict = field(default_factory=dict)
    tune: EqualBudget | None = None  # the top-level `tune`: every method tuned with the same budget


@dataclass(frozen=True)
class PlannedRun:
    """One cell of the grid: a resolved config (training seed derived) and how to name it."""

    config: RunConfig
    dataset_label: str
    seed_index: int
    variant: dict = field(default_factory=dict)  # the swept hyperparameter values
    tuned: bool = False  # with the values a search selected on validation

    @property
    def label(self) -> str:
        swept = "".join(f" {key}={value}" for key, value in self.variant.items())
        method = f"{self.config.method} (tuned)" if self.tuned else self.config.method
        return f"{self.dataset_label} / {method}{swept} / seed {self.seed_index}"


def list_suites() -> list[str]:
    return sorted(path.stem for path in SUITES_DIR.glob("*.toml"))


def suite_seeds(where: str, value) -> tuple[int, ...]:
    """A suite file's `seeds`: a list or a range string; a bare TOML integer (`seeds = 3`) is refused,
    since it reads as three seeds as easily as seed index 3."""
    if isinstance(value, int) and not isinstance(value, bool):
        several = f', or seeds = "0-{value - 1}" for {value} seeds' if value >= 2 else ""
        raise CritBenchError(f"{where}: seeds = {value} is ambiguous; write seeds = [{value}] for seed index {value} "
                             f"alone{several}")
    return parse_seeds(value)


def parse_seeds(text) -> tuple[int, ...]:
    """`"0-2"` -> (0, 1, 2); `"0,3"` -> (0, 3); a list of ints passes through. The count is checked
    against MAX_SEEDS on the ranges, before any is expanded (`0-99999999999` is refused at once)."""
    if isinstance(text, list):
        ranges = [range(item, item + 1) if isinstance(item, int) and not isinstance(item, bool) else None
                  for item in text]
    else:
        ranges = []
        for part in str(text).split(","):
            low, dash, high = part.strip().partition("-")
            try:
                ranges.append(range(int(low), int(high) + 1) if dash else range(int(low), int(low) + 1))
            except ValueError:
                raise CritBenchError(f"seeds must look like 0-2 or 0,1,4; got {text!r}") from None
    if not ranges or any(span is None or not span or span.start < 0 for span in ranges):
        raise CritBenchError(f"seeds must be non-negative integers, like 0-2 or 0,1,4 (a range low-high with "
                             f"low <= high); got {text!r}")
    count = sum(len(span) for span in ranges)
    if count > MAX_SEEDS:
        raise CritBenchError(f"seeds {text!r} asks for {count} seeds; at most {MAX_SEEDS} per suite")
    return tuple(dict.fromkeys(seed for span in ranges for seed in span))


def _check_keys(where: str, table: dict, valid: set) -> None:
    unknown = set(table) - valid
    if unknown:
        raise CritBenchError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(valid))}")


def _dataset_setting(where: str, table: dict) -> DatasetSetting:
    _check_keys(where, table, DATASET_KEYS)
    if not isinstance(table.get("name"), str):
        raise CritBenchError(f"{where} needs a name (a string)")
    rest = {k: v for k, v in table.items() if k not in ("name", "params", "recipes", "methods", "seeds")}
    check_run_values(where, rest)
    for key in ("params", "recipes"):
        if not isinstance(table.get(key, {}), dict):
            raise CritBenchError(f"{where}: {key} must be a table, got {table[key]!r}")
    for method, recipe in table.get("recipes", {}).items():
        if not isinstance(recipe, dict):
            raise CritBenchError(f"{where}: recipes.{method} must be a table of that method's params, got {recipe!r}")
    methods = table.get("methods")
    if methods is not None and (not isinstance(methods, list) or not methods or
                                not all(isinstance(m, str) for m in methods)):
        raise CritBenchError(f"{where}: methods must be a non-empty list of method names (leave it out to run all "
                             f"the suite's methods), got {methods!r}")
    return DatasetSetting(table["name"], rest, dict(table.get("params", {})), dict(table.get("recipes", {})),
                          tuple(methods) if methods is not None else None,
                          suite_seeds(where, table["seeds"]) if "seeds" in table else None)


def _method_setting(where: str, table: dict) -> MethodSetting:
    _check_keys(where, table, METHOD_KEYS)
    if not isinstance(table.get("name"), str):
        raise CritBenchError(f"{where} needs a name (a string)")
    for key in ("params", "sweep", "tune"):
        if not isinstance(table.get(key, {}), dict):
            raise CritBenchError(f"{where}: {key} must be a table, got {table[key]!r}")
    if table.get("sweep") and table.get("tune"):
        raise CritBenchError(f"{where}: give sweep (every combination runs) or tune (a search picks one), not both")
    sweep = dict(table.get("sweep", {}))
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise CritBenchError(f"{where}: sweep.{key} must be a non-empty list of values, got {values!r}")
    return MethodSetting(table["name"], dict(table.get("params", {})), sweep, dict(table.get("tune", {})))


def parse_suite(name: str, data: dict) -> Suite:
    """A Suite from a parsed TOML document; unknown keys are errors (they are usually typos)."""
    _check_keys(f"suite {name}", data, SUITE_KEYS)
    for table in MERGED_TABLES:
        if not isinstance(data.get(table, {}), dict):
            raise CritBenchError(f"suite {name}: [{table}] must be a table, got {data[table]!r}")
    for table in ("datasets", "methods"):
        if not isinstance(data.get(table, []), list) or not all(isinstance(t, dict) for t in data.get(table, [])):
            raise CritBenchError(f"suite {name}: {table} must be [[{table}]] tables")
    if "dataset_params" in data.get("run", {}):  # a RunConfig field, but each dataset's own
        raise CritBenchError(f"suite {name} [run]: dataset_params is set per dataset: write params = {{...}} in each "
                             f"[[datasets]] table")
    _check_keys(f"suite {name} [run]", data.get("run", {}), RUN_FIELDS - {"dataset_params"})
    check_run_values(f"suite {name} [run]", data.get("run", {}))
    datasets = [_dataset_setting(f"suite {name} dataset #{i + 1}", t) for i, t in enumerate(data.get("datasets", []))]
    methods = [_method_setting(f"suite {name} method #{i + 1}", t) for i, t in enumerate(data.get("methods", []))]
    if not datasets or not methods:
        raise CritBenchError(f"suite {name} needs at least one [[datasets]] and one [[methods]] entry")
    for index, setting in enumerate(datasets):
        for kind, names in (("methods", setting.methods or ()), ("recipes for", setting.recipes)):
            unknown = set(names) - {method.name for method in methods}
            if unknown:  # a recipe under a misspelt name would leave its method on its defaults, silently
                raise CritBenchError(f"suite {name} dataset #{index + 1}: {kind} {', '.join(sorted(unknown))} are not "
                                     f"among the suite's [[methods]] ({', '.join(m.name for m in methods)})")
    tune = equal_budget(data["tune"], f"suite {name}") if "tune" in data else None
    if tune and any(method.tune for method in methods):
        raise CritBenchError(f"suite {name}: the suite's tune gives every method the same budget; remove the own "
                             f"tune table of {', '.join(m.name for m in methods if m.tune)}")
    return Suite(name=name, datasets=tuple(datasets), methods=tuple(methods), tune=tune,
                 seeds=suite_seeds(f"suite {name}", data.get("seeds", [0])), run=dict(data.get("run", {})),
                 description=data.get("description", ""), slurm=dict(data.get("slurm", {})),
                 ray=dict(data.get("ray", {})))


def suite_path(name_or_path: str) -> Path:
    """The file of a built-in suite name (`full`, `quick`) or a path to a TOML file."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SUITES_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise CritBenchError(f"unknown suite {name_or_path!r}; built-in: {', '.join(list_suites())}, "
                                 f"or the path of a .toml file")
    if not path.is_file():
        raise CritBenchError(f"suite file {path} does not exist")
    return path


def read_suite_file(path: Path, depth: int = 0) -> dict:
    """The TOML document, with `extends = "other"` resolved: the other suite's keys, replaced by
    this file's, except the [run], [slurm] and [ray] tables, which are merged key by key."""
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))  # some editors write a byte-order mark
    except OSError as error:
        raise CritBenchError(f"cannot read suite file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise CritBenchError(f"suite file {path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                             f"{error.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise CritBenchError(f"suite file {path} is not valid TOML: {error}") from None
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str) or not base_name.strip():
        raise CritBenchError(f"suite file {path}: extends must be one suite's name or .toml path (a string), "
                             f"got {base_name!r}")
    if depth > 8:
        raise CritBenchError(f"suite file {path}: `extends` goes around in a circle")
    beside = path.parent / base_name  # a file next to this one, else a built-in name or a path
    base = read_suite_file(beside if beside.suffix == ".toml" and beside.is_file() else suite_path(base_name),
                           depth + 1)
    merged = {**base, **data}
    for table in MERGED_TABLES:
        merged[table] = {**base.get(table, {}), **data.get(table, {})}
    return merged


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name (`full`, `quick`) or a TOML file by path."""
    path = suite_path(name_or_path)
    return parse_suite(path.stem, read_suite_file(path))


def select(suite: Suite, datasets: list[str] | None = None, methods: list[str] | None = None,
           seeds: tuple[int, ...] | None = None, run: dict | None = None) -> Suite:
    """The suite restricted to `datasets` and `methods` (names; a registered name absent from the
    suite is added with its defaults, on every dataset setting; a suite's method stays on the
    settings that list it: `--suite validation --methods alm` trains alm where the suite does, not on
    the MedMNIST settings too), with other `seeds` and `run` fields overriding every run's, a dataset
    setting's own included."""
    chosen_datasets, chosen_methods = suite.datasets, suite.methods
    if datasets:
        _check_names("dataset", datasets, list_datasets())
        chosen_datasets = tuple(d for d in suite.datasets if d.name in datasets) + tuple(
            DatasetSetting(name) for name in datasets if name not in {d.name for d in suite.datasets})
    if methods:
        _check_names("method", methods, list_methods())
        chosen_methods = tuple(m for m in suite.methods if m.name in methods) + tuple(
            MethodSetting(name) for name in methods if name not in {m.name for m in suite.methods})
        added = tuple(name for name in methods if name not in {m.name for m in suite.methods})
        chosen_datasets = tuple(d if d.methods is None else dataclasses.replace(
            d, methods=tuple(m for m in d.methods if m in methods) + added) for d in chosen_datasets)
    if seeds:  # the command line's seeds replace every setting's own
        chosen_datasets = tuple(dataclasses.replace(d, seeds=None) for d in chosen_datasets)
    if run:  # and its run fields (--epochs) every setting's own (validation's cifar10_lt epochs = 200)
        chosen_datasets = tuple(dataclasses.replace(d, overrides={k: v for k, v in d.overrides.items() if k not in run})
                                for d in chosen_datasets)
    return dataclasses.replace(suite, datasets=chosen_datasets, methods=chosen_methods,
                               seeds=seeds or suite.seeds, run={**suite.run, **(run or {})})


def _check_names(kind: str, names: list[str], valid: list[str]) -> None:
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise CritBenchError(f"unknown {kind}(s) {', '.join(unknown)}; valid: {', '.join(valid)}")


def derive_seed(config: RunConfig, seed_index: int) -> int:
    """The training seed of seed index `seed_index` on `config`'s data setting.

    It hashes the dataset, size, imbalance and dataset params (the data setting) with the index,
    and nothing else (not the machine's parameters, `config.MACHINE_PARAMS`: where the files or the
    cache live does not change the data, so it must not change the seed): every method of a dataset setting x seed index gets the same seed, hence the
    same train subsample, initialization and batch order (paired comparisons), and adding or
    removing methods, datasets or seeds never changes another run's seed or identity."""
    payload = {"dataset": config.dataset, "size": config.size, "imbalance": config.imbalance,
               "dataset_params": config.identity()["dataset_params"], "seed_index": seed_index}
    return int(stable_hash(payload, 16), 16) % 2**31


def setting_config(suite: Suite, setting: DatasetSetting, method: MethodSetting, params: dict,
                   machine: dict | None = None) -> RunConfig:
    """The resolved config of `method` with `params` on dataset `setting` (its recipe under `params`);
    epochs, where the suite sets none, are the dataset protocol's (long-tailed CIFAR: 200), as on the
    command line."""
    fields = {**suite.run, **setting.overrides, **(machine or {})}
    try:
        if "epochs" not in fields and get_dataset_entry(setting.name).epochs:
            fields["epochs"] = get_dataset_entry(setting.name).epochs
        return resolve_config(RunConfig(
            dataset=setting.name, method=method.name,
            params={**method.params, **setting.recipes.get(method.name, {}), **params}, dataset_params=setting.params,
            **run_fields(fields)))
    except CritBenchError as error:
        raise CritBenchError(f"suite {suite.name}, {setting.label} / {method.name}: {error}") from None


def cells(suite: Suite) -> list[tuple[DatasetSetting, MethodSetting]]:
    """Every (dataset setting, method) pair the suite runs."""
    return [(setting, method) for setting in suite.datasets for method in suite.methods
            if setting.methods is None or method.name in setting.methods]


def expand(suite: Suite, machine: dict | None = None, tuned: dict | None = None) -> list[PlannedRun]:
    """Every run of the grid, dataset-major (dataset setting, seed, method), configs resolved.

    `machine` sets fields that are not part of a run's identity (device, data_dir). `tuned` maps
    (dataset label, method name) to the parameters a search selected, or to None while the search
    has not selected (those runs are left out): see `method_runs`. Invalid values anywhere in the
    grid raise CritBenchError before anything runs."""
    runs, tuned = [], tuned or {}
    for setting in suite.datasets:
        for index in setting.seeds or suite.seeds:
            for method in suite.methods:
                if setting.methods is not None and method.name not in setting.methods:
                    continue
                key = (setting.label, method.name)
                for variant, selected in method_runs(suite, method, tuned.get(key), key in tuned):
                    config = setting_config(suite, setting, method, variant, machine)
                    config = dataclasses.replace(config, seed=derive_seed(config, index))
                    runs.append(PlannedRun(config, setting.label, index, variant, selected))
    runs = _selected_once(runs)
    _check_distinct(runs)
    return runs


def method_runs(suite: Suite, method: MethodSetting, selected: dict | None, searched: bool) -> list[tuple[dict, bool]]:
    """(parameters, tuned) of each run of `method` on a dataset setting and seed. Without a search,
    its sweep variants (`[{}]`: its preset). A method with its own `tune` runs the selected
    parameters alone; under the suite's `tune` (equal budget) they run beside its preset, so the
    report compares the two. `selected` is None while the search has not selected."""
    preset = [(variant, False) for variant in method.variants()]
    if not searched:
        return preset
    chosen = [] if selected is None else [(selected, True)]
    return preset + chosen if suite.tune else chosen


def _selected_once(runs: list[PlannedRun]) -> list[PlannedRun]:
    """A preset run whose configuration its search selected is the tuned run: one training, one
    record (marked tuned), so the preset row of that method and dataset shows no separate run."""
    chosen = {run_id(run.config, None) for run in runs if run.tuned}
    return [run for run in runs if run.tuned or run_id(run.config, None) not in chosen]


def run_fields(values: dict) -> dict:
    """RunConfig keyword arguments, numbers cast to the field types: TOML's `width = 1` and the
    CLI's `--width 1` must give the same run identity."""
    unknown = set(values) - RUN_FIELDS
    if unknown:
        raise CritBenchError(f"unknown run setting(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(RUN_FIELDS))}")
    return {key: float(value) if key in FLOAT_FIELDS and isinstance(value, int) else value
            for key, value in values.items()}


def check_run_values(where: str, table: dict) -> None:
    """Refuse a run setting of the wrong type or out of range, naming its suite key (`epochs = "1"`)."""
    for key, value in run_fields(table).items():
        check_field(key, value, f"{where} {key}")


def _check_distinct(runs: list[PlannedRun]) -> None:
    seen = {}
    for run in runs:
        key = run_id(run.config, None)  # the same data for both: the configs decide
        if key in seen:
            raise CritBenchError(f"the suite lists the same run twice: {seen[key].label} and {run.label}; remove the "
                                 f"duplicate dataset or method entry (with --task multiclass a binary method's name "
                                 f"trains its multi-class variant: bce is ce, alm is alm_ce)")
        seen[key] = run
