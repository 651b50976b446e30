"""Run records -> leaderboard: group by dataset x method row, aggregate seeds.

A dataset column is (name, size, imbalance, max train samples, dataset parameters, the md5 of the
source data, the training budget: epochs, width, stem): two image folders never share a column, and
their labels name the folder and md5 when they would read alike; runs of different budgets never
share a column either (nor bold marks), and their labels name the budget fields that differ. A
method row is the method plus every setting that takes several values among
that method's runs on one dataset (e.g. `alm(delta=0.5)`), so sweeps form separate rows while
per-dataset recipe defaults do not. Runs with the values a search selected on validation (a suite's
`tune`, benchmarks.tune) form their method's tuned row ("alm (tuned)"); where a method has one on a
dataset, its preset row is shown beside it but not ranked, and the tuned bce row is the baseline.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from benchmarks.core.config import MACHINE_PARAMS
from benchmarks.core.metrics import METRICS, Metric, binary_metrics
from reports.deployed import Rate, calibration_means, cell_rates
from reports.runs import BUDGET_FIELDS, Loaded, Run, slug
from reports.settings import DECIMALS, N_BOOTSTRAP
from reports.stats import (Interval, PairedTest, bootstrap_auc_samples, delong_covariance, interval_shortfall,
                           normal_interval, percentile_interval, z_test)
from reports.tuning import mark_budget, selected_mark, shown_params

BASELINE = "bce"
# Suites whose runs are smoke tests of the pipeline, not results (quick.toml: "not a benchmark"):
# their columns say so.
SMOKE_SUITES = ("quick",)
# The all-classes metrics a --task multiclass row shows, as MedMNIST v2 reports them (benchmarks.core.metrics.class_metrics)
MEDMNIST_METRICS = (("acc", "ACC"), ("auc", "AUC (macro one-vs-rest)"))
BUDGET_LABELS = {"epochs": "{} epochs", "width": "width {}", "stem": "{} stem"}


LABEL_FACTS = ("rho",)  # dataset-record facts a label shows where the params leave them at their default


def format_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class DatasetKey:
    name: str
    size: int | None
    imbalance: float | None
    max_train_samples: int | None
    params: tuple
    source_md5: str | None  # the data's content (None: generated, so name and parameters determine it)
    budget: tuple = ()  # (field, value) of every BUDGET_FIELDS: runs of different budgets never share a column
    origin: str = field(default="", compare=False)  # shown when another column's label would read alike
    shown_budget: tuple = field(default=(), compare=False)  # the budget fields that differ between its dataset's columns
    smoke: str = field(default="", compare=False)  # the smoke suite (SMOKE_SUITES) that ran all its runs
    # What the data record says of a default the params leave out (long-tailed CIFAR's rho): shown, so a
    # reader sees "rho 100" where no --param rho was given; the params and checksum already tell columns apart.
    facts: tuple = field(default=(), compare=False)

    @classmethod
    def of(cls, run: Run) -> "DatasetKey":
        c = run.config
        params = c.get("dataset_params") or {}
        facts = tuple((k, format_value(run.record["dataset"][k])) for k in LABEL_FACTS
                      if k in run.record["dataset"] and k not in params)
        return cls(c["dataset"], c.get("size"), c.get("imbalance"), c.get("max_train_samples"),
                   tuple(sorted((k, format_value(v)) for k, v in params.items() if k not in MACHINE_PARAMS)),
                   run.record["dataset"]["source_md5"], tuple(run.budget().items()), facts=facts)

    @property
    def label(self) -> str:
        parts = [self.name]
        if self.imbalance:
            parts.append(f"1:{self.imbalance:g}")
        parts += [f"{k} {v}" for k, v in self.facts]
        if self.size:
            parts.append(f"{self.size}px")
        if self.max_train_samples:
            parts.append(f"≤{self.max_train_samples} train")
        parts += [f"{k}={v}" for k, v in self.params]
        budget = dict(self.budget)
        parts += [BUDGET_LABELS[name].format(format_value(budget[name])) for name in self.shown_budget]
        if self.smoke:
            parts.append(f"smoke test ({self.smoke} suite)")
        return " · ".join(parts) + (f" ({self.origin})" if self.origin else "")

    @property
    def anchor(self) -> str:
        return "ds-" + slug(self.label.replace("·", "").replace("≤", "max"))

    def sort_key(self):
        return (self.name, self.imbalance or 0, self.size or 0, self.max_train_samples or 0, self.params,
                self.source_md5 or "", tuple(format_value(value) for _, value in self.budget))


def name_budgets(by_dataset: dict[DatasetKey, list[Run]]) -> dict[DatasetKey, list[Run]]:
    """The same columns, each naming the budget fields that differ between the columns of its data
    ("vesselmnist3d · 28px · 3 epochs" beside "... · 2 epochs"), and smoke-test columns as such."""
    differing: dict[DatasetKey, set[str]] = {}
    for key in by_dataset:
        differing.setdefault(replace(key, budget=()), set())
    for base in differing:
        budgets = [dict(key.budget) for key in by_dataset if replace(key, budget=()) == base]
        differing[base] = {name for name in BUDGET_FIELDS if len({json.dumps(b.get(name)) for b in budgets}) > 1}
    out = {}
    for key, runs in by_dataset.items():
        shown = tuple(name for name in BUDGET_FIELDS if name in differing[replace(key, budget=())])
        suites = {run.suite for run in runs}
        smoke = suites.pop() if len(suites) == 1 and suites <= set(SMOKE_SUITES) else ""
        out[replace(key, shown_budget=shown, smoke=smoke)] = runs
    return out


def name_origins(by_dataset: dict[DatasetKey, list[Run]]) -> dict[DatasetKey, list[Run]]:
    """The same columns, those whose labels would read alike (the same setting of different data)
    labelled with their data's folder name and md5: "imagefolder · 28px (scans, md5 1a2b3c)"."""
    labels = [key.label for key in by_dataset]
    out = {}
    for key, runs in by_dataset.items():
        if labels.count(key.label) > 1:
            folders = {Path(str(run.record["dataset"].get("source") or "")).name for run in runs} - {""}
            md5 = f"md5 {key.source_md5[:6]}" if key.source_md5 else "generated"
            key = replace(key, origin=f"{folders.pop()}, {md5}" if len(folders) == 1 else md5)
        out[key] = runs
    return out


@dataclass(frozen=True)
class RowKey:
    """A method row: the method, the settings that distinguish it from the method's other rows, and
    whether its runs use the values a search selected on validation (`tuned`, "alm (tuned)")."""

    method: str
    settings: tuple = ()
    tuned: bool = False

    @property
    def label(self) -> str:
        label = self.method
        if self.settings:
            label += f"({', '.join(f'{k}={format_value(v)}' for k, v in self.settings)})"
        return f"{label} (tuned)" if self.tuned else label

    def sort_key(self):
        """The baseline first, then methods by name, each preset before tuned, then settings (numbers numerically)."""
        values = tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for _, v in self.settings)
        return (self.method != BASELINE, self.method, self.tuned, values)


def row_keys(runs: list[Run]) -> dict[str, RowKey]:
    """run_id -> RowKey; a setting splits a method's rows if it varies among its runs on one dataset
    (its tuned runs, `selected_mark`, apart from its others: the search's choice is one row)."""
    varying: dict[tuple[str, bool], set[str]] = {}
    values: dict[tuple, dict[str, set]] = {}
    for run in runs:
        seen = values.setdefault((run.method, is_tuned(run), DatasetKey.of(run)), {})
        for name, value in run.settings().items():
            seen.setdefault(name, set()).add(json.dumps(value, sort_keys=True))
    for (method, tuned, _), seen in values.items():
        varying.setdefault((method, tuned), set()).update(name for name, vals in seen.items() if len(vals) > 1)
    keys = {}
    for run in runs:
        settings, tuned = run.settings(), is_tuned(run)
        keys[run.run_id] = RowKey(run.method, tuple((k, settings.get(k)) for k in sorted(varying[run.method, tuned])),
                                  tuned)
    return keys


def is_tuned(run: Run) -> bool:
    return selected_mark(run.record) is not None


def mean_std(values: list[float]) -> tuple[float, float | None]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), (float(array.std(ddof=1)) if len(array) > 1 else None)


def medmnist_means(runs: list[Run]) -> dict[str, tuple[float, float | None]]:
    """MedMNIST v2's test ACC and AUC of a row's --task multiclass runs, (mean, std) over seeds (NaN
    where a run could not score them); {} for a binary row."""
    tests = [run.record["multiclass"]["test"] for run in runs if run.record.get("multiclass")]
    if not tests:
        return {}
    return {key: mean_std([math.nan if test.get(key) is None else test[key] for test in tests])
            for key, _ in MEDMNIST_METRICS}


@dataclass
class Cell:
    """One method row on one dataset: per-seed statistics, the seed ensemble and the pooled AUC."""

    runs: list[Run]
    seeds: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # metric -> (mean, std)
    ensemble: dict[str, float] | None = None  # metric -> value of the seed-ensembled scores
    # The same over the seeds every competing row has (`DatasetSummary.compared_seeds`): what bold and ranks compare
    compared_ensemble: dict[str, float] | None = None
    pooled_auc: float | None = None
    delong: Interval | None = None  # None also where a test set has too few of a class (`interval_note`)
    bootstrap: Interval | None = None
    vs_baseline: PairedTest | None = None
    rank: float | None = None
    ensemble_rank: float | None = None
    best: set[str] = field(default_factory=set)
    ensemble_best: set[str] = field(default_factory=set)
    val_auc: tuple[float, float | None] = (math.nan, None)  # mean, std over seeds of the validation AUC
    # For one of several variants (sweep values) of a method on a dataset: whether a validation-only
    # rule (highest mean validation AUC) selects it. None for a method with one row.
    selected: bool | None = None
    # A preset row whose method also has a tuned row on this dataset: shown beside it, not ranked.
    superseded: bool = False
    # Test TPR and FPR at each run's validation-chosen thresholds, by (kind, level) (reports.deployed),
    # and the test calibration (mean, std): only the operating points and keys the records carry.
    deployed: dict[tuple[str, str], dict[str, Rate]] = field(default_factory=dict)
    calibration: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    # --task multiclass rows: MedMNIST v2's test ACC and AUC (MEDMNIST_METRICS), (mean, std) over seeds.
    medmnist: dict[str, tuple[float, float | None]] = field(default_factory=dict)

    @property
    def competes(self) -> bool:
        """Whether the cell takes part in bold marks and ranks (a variant only when selected on
        validation; a preset row not where its method has a tuned row)."""
        return self.selected is not False and not self.superseded

    @property
    def tuning(self) -> dict | None:
        """The search that chose a tuned row's values (its runs' `selected_mark`), None for other rows."""
        return next((mark for mark in map(selected_mark, (run.record for run in self.runs)) if mark), None)

    @property
    def chosen(self) -> str:
        """A tuned row's selected values ("lr=0.001, delta=0.25") and search budget, "" for other rows."""
        return f"{shown_params(self.tuning['params'])} ({mark_budget(self.tuning)})" if self.tuning else ""


@dataclass
class DatasetSummary:
    key: DatasetKey
    runs: list[Run]
    cells: dict[RowKey, Cell]
    test_sets: dict[str, list[Run]]  # fingerprint -> runs scored on that test set
    baseline: RowKey | None = None
    roc_note: str = ""
    roc_scores: dict[RowKey, np.ndarray] = field(default_factory=dict)
    roc_labels: np.ndarray | None = None
    interval_note: str = ""  # why the pooled AUCs have no interval and no p ("too few positives (1) for an interval")
    compared_seeds: frozenset[int] = frozenset()  # the seeds of the ensembles that bold and ensemble ranks compare

    @property
    def shared_test_set(self) -> bool:
        return len(self.test_sets) == 1

    @property
    def facts(self) -> dict:
        return self.runs[0].record["dataset"]

    def seed_number(self, run: Run) -> int:
        """1-based position of the run's seed among this dataset's seeds (suite seeds are large hashes)."""
        return sorted({r.seed for r in self.runs}).index(run.seed) + 1

    @property
    def multiclass(self) -> bool:
        """Whether a row of this dataset trained --task multiclass (its section shows MedMNIST's metrics)."""
        return any(cell.medmnist for cell in self.cells.values())

    @property
    def tensor_md5s(self) -> list[str]:
        return sorted({run.record["dataset"].get("tensor_md5") for run in self.runs} - {None})


def seed_ensemble(cell: Cell, test_set: str, seeds: set[int] | None = None) -> np.ndarray | None:
    """The mean test logit of the cell's usable runs on `test_set` (of `seeds` only, when given)."""
    scores = [run.y_score for run in cell.runs
              if run.test_set == test_set and run.usable and (seeds is None or run.seed in seeds)]
    return np.mean(scores, axis=0) if scores else None


def seeds_on(cell: Cell, test_set: str) -> set[int]:
    return {run.seed for run in cell.runs if run.test_set == test_set and run.usable}


def ensembles(cells: dict[RowKey, Cell], test_set: str) -> dict[RowKey, np.ndarray]:
    """Seed-ensembled scores (mean test logit over the row's runs) on one test set, in row order."""
    out = {}
    for row, cell in cells.items():
        scores = seed_ensemble(cell, test_set)
        if scores is not None:
            out[row] = scores
    return out


def pooled_estimates(summary: DatasetSummary, seed: int = 0) -> None:
    """DeLong and bootstrap CIs of the pooled AUC and the paired test against the baseline.

    Pooled = the seed ensemble's AUC when all seeds share the test set; otherwise the mean of the
    per-test-set AUCs, whose DeLong variances add (independent test sets). Likewise the paired
    comparison is the paired DeLong test on seed-ensembled scores of the seeds both rows have, or
    per-test-set paired tests combined as z = sum(d) / sqrt(sum(var d)). A test set with fewer than
    two positives or negatives leaves the rows scored on it without intervals and p (None)."""
    per_set = {fp: ensembles(summary.cells, fp) for fp in summary.test_sets}
    labels = {fp: runs[0].y_true for fp, runs in summary.test_sets.items()}
    short = {fp: interval_shortfall(y) for fp, y in labels.items()}
    summary.interval_note = "; ".join(dict.fromkeys(why for why in short.values() if why))
    for row, cell in summary.cells.items():
        aucs, variances, boots, diffs, diff_variances, base_aucs = [], [], [], [], [], []
        for index, (fp, scores) in enumerate(per_set.items()):
            if row not in scores:
                continue
            auc, cov = delong_covariance(labels[fp], scores[row])
            aucs.append(auc[0])
            variances.append(cov[0, 0])
            if not short[fp]:
                boots.append(bootstrap_auc_samples(labels[fp], scores[row], N_BOOTSTRAP, seed=seed + index))
            baseline = summary.cells.get(summary.baseline)
            common = seeds_on(cell, fp) & seeds_on(baseline, fp) if baseline is not None and baseline is not cell else set()
            if common:  # paired on the seeds both rows have: an ensemble of more seeds would win by itself
                pair, pair_cov = delong_covariance(labels[fp], np.stack([seed_ensemble(cell, fp, common),
                                                                         seed_ensemble(baseline, fp, common)]))
                diffs.append(pair[0] - pair[1])
                base_aucs.append(pair[1])
                diff_variances.append(pair_cov[0, 0] + pair_cov[1, 1] - 2 * pair_cov[0, 1])
        if not aucs:
            continue
        cell.pooled_auc = auc = float(np.mean(aucs))
        cell.delong = normal_interval(auc, sum(variances) / len(aucs) ** 2)
        cell.bootstrap = percentile_interval(auc, np.mean(boots, axis=0)) if len(boots) == len(aucs) else None
        if diffs:
            diff = float(np.mean(diffs))
            se, z, p = z_test(diff, sum(diff_variances) / len(diffs) ** 2)
            cell.vs_baseline = PairedTest(diff + float(np.mean(base_aucs)), float(np.mean(base_aucs)), diff, se, z, p)
    roc_set = max(per_set, key=lambda fp: (len(per_set[fp]), -min(run.seed for run in summary.test_sets[fp])))
    summary.roc_scores, summary.roc_labels = per_set[roc_set], labels[roc_set]
    if summary.shared_test_set:
        own = {row: sorted(seeds_on(summary.cells[row], roc_set)) for row in summary.roc_scores}
        summary.roc_note = ensemble_note(own)
    else:
        seeds = sorted({run.seed for run in summary.test_sets[roc_set]})
        summary.roc_note = (f"one test set (seed {seed_list(seeds)}): this dataset draws a new "
                            f"test set per seed, so seeds cannot be ensembled")


def seed_list(seeds) -> str:
    return ", ".join(map(str, seeds))


def ensemble_note(own: dict[RowKey, list[int]]) -> str:
    """What the ROC curves draw, from each row's seeds (`own`): the seeds where every row has the
    same ones, else each row's own."""
    lists = {tuple(seeds) for seeds in own.values()}
    if len(lists) > 1:
        each = "; ".join(f"{row.label}: {seed_list(seeds)}" for row, seeds in own.items())
        return f"seed-ensembled scores: mean test logit over each row's own seeds ({each})"
    (seeds,) = lists
    if len(seeds) == 1:
        return f"single seed ({seeds[0]})"
    return f"seed-ensembled scores: mean test logit over seeds {seed_list(seeds)}"


def ensemble_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    metrics = binary_metrics(y_true, scores)
    return {m.key: m.value(metrics) for m in METRICS}


def score_ensembles(summary: DatasetSummary, test_set: str) -> None:
    """Each row's seed ensemble scored over its own seeds, and a competing row's also over the seeds
    every competing row has (`compared_seeds`), which bold and ranks compare: an ensemble of more
    seeds would win by itself. Where they share no seed, none is compared."""
    y_true = summary.test_sets[test_set][0].y_true
    competing = [seeds for cell in summary.cells.values() if cell.competes and (seeds := seeds_on(cell, test_set))]
    summary.compared_seeds = frozenset(set.intersection(*competing)) if competing else frozenset()
    for row, scores in ensembles(summary.cells, test_set).items():
        cell = summary.cells[row]
        cell.ensemble = ensemble_metrics(y_true, scores)
        if cell.competes and summary.compared_seeds:
            same = seeds_on(cell, test_set) == summary.compared_seeds
            cell.compared_ensemble = cell.ensemble if same else ensemble_metrics(
                y_true, seed_ensemble(cell, test_set, summary.compared_seeds))


def mark_best_and_rank(cells: dict[RowKey, Cell], source: str) -> None:
    """Bold marks (best per metric at display precision) and AUC ranks on the AUCs at display precision
    (1 = best, ties averaged, so rows bold together share a rank; none where one row competes); the
    ensembles' over the seeds every competing row has (`compared_ensemble`)."""
    best_attr, rank_attr = ("best", "rank") if source == "seeds" else ("ensemble_best", "ensemble_rank")

    def value(cell: Cell, metric: Metric) -> float:
        if source == "seeds":
            return cell.seeds[metric.key][0] if cell.seeds else math.nan
        return cell.compared_ensemble[metric.key] if cell.compared_ensemble else math.nan

    def displayed(cell: Cell, metric: Metric) -> float:
        return round(value(cell, metric), DECIMALS)

    cells = {row: cell for row, cell in cells.items() if cell.competes}
    for metric in METRICS:
        shown = {row: displayed(cell, metric) for row, cell in cells.items()}
        finite = [v for v in shown.values() if math.isfinite(v)]
        if not finite:
            continue
        target = max(finite) if metric.higher_is_better else min(finite)
        for row, v in shown.items():
            if v == target:
                getattr(cells[row], best_attr).add(metric.key)
    ranked = [(row, auc) for row, cell in cells.items() if math.isfinite(auc := displayed(cell, METRICS[0]))]
    if len(ranked) < 2:  # a row alone wins nothing
        return
    for (row, _), rank in zip(ranked, rankdata([-auc for _, auc in ranked])):
        setattr(cells[row], rank_attr, float(rank))


def select_variants(cells: dict[RowKey, Cell]) -> None:
    """Among the rows of one method (its sweep variants), mark the one with the highest mean
    validation AUC as selected and the others as not: the test split never chooses a variant.
    The means are over the seeds every variant has where there are such seeds (a dose-response at
    seed 0 beside a three-seed row compares seed 0 with seed 0), else over each row's own seeds."""
    by_method: dict[tuple[str, bool], list[RowKey]] = {}
    for row in cells:
        by_method.setdefault((row.method, row.tuned), []).append(row)
    for variants in by_method.values():
        if len(variants) < 2:
            continue
        val_aucs = {row: {run.seed: run.val_auc for run in cells[row].runs if math.isfinite(run.val_auc)}
                    for row in variants}
        scored = [row for row in variants if val_aucs[row]]
        shared = set.intersection(*(set(val_aucs[row]) for row in scored)) if scored else set()

        def score(row: RowKey) -> float:
            seeds = shared or val_aucs[row]
            return float(np.mean([val_aucs[row][seed] for seed in seeds]))

        chosen = max(scored, key=score) if scored else None
        for row in variants:
            cells[row].selected = row == chosen


def summarize_dataset(key: DatasetKey, runs: list[Run], rows: dict[str, RowKey]) -> DatasetSummary:
    cell_runs: dict[RowKey, list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.seed):
        cell_runs.setdefault(rows[run.run_id], []).append(run)
    test_sets: dict[str, list[Run]] = {}
    for run in runs:
        if run.usable:
            test_sets.setdefault(run.test_set, []).append(run)
    cells = {row: Cell(cell_runs[row]) for row in sorted(cell_runs, key=RowKey.sort_key)}
    tuned = {row.method for row in cells if row.tuned}
    for row, cell in cells.items():
        cell.superseded = not row.tuned and row.method in tuned
    for row, cell in cells.items():
        cell.seeds = {m.key: mean_std([run.metric(m) for run in cell.runs]) for m in METRICS}
        cell.val_auc = mean_std([run.val_auc for run in cell.runs])
        cell.deployed, cell.calibration = cell_rates(cell.runs), calibration_means(cell.runs)
        cell.medmnist = medmnist_means(cell.runs)
    select_variants(cells)
    # the baseline: a tuned bce row first, then the bce variant selected on validation
    baseline = next((row for row in sorted(cells, key=lambda row: (not row.tuned, cells[row].selected is False))
                     if row.method == BASELINE), None)
    summary = DatasetSummary(key, runs, cells, test_sets, baseline)
    if test_sets:
        pooled_estimates(summary)
        if summary.shared_test_set:
            (fp,) = test_sets
            score_ensembles(summary, fp)
    mark_best_and_rank(cells, "seeds")
    mark_best_and_rank(cells, "ensemble")
    return summary


@dataclass
class Leaderboard:
    datasets: list[DatasetSummary]
    rows: list[RowKey]
    loaded: Loaded

    def mean_rank(self, row: RowKey, source: str = "seeds") -> tuple[float | None, int]:
        """Mean AUC rank over the datasets where the row was ranked, and how many those are."""
        attr = "rank" if source == "seeds" else "ensemble_rank"
        ranks = [getattr(d.cells[row], attr) for d in self.datasets if row in d.cells]
        ranks = [r for r in ranks if r is not None]
        return (float(np.mean(ranks)) if ranks else None), len(ranks)

    def has_ensemble(self, row: RowKey) -> bool:
        return any(row in d.cells and d.cells[row].ensemble for d in self.datasets)

    def is_best_rank(self, row: RowKey, source: str = "seeds") -> bool:
        """Best mean rank among the rows ranked on the most datasets (rows with gaps don't compete)."""
        ranks = {other: self.mean_rank(other, source) for other in self.rows}
        ranks = {other: (round(rank, 2), n) for other, (rank, n) in ranks.items() if rank is not None}
        if row not in ranks:
            return False
        coverage = max(n for _, n in ranks.values())
        best = min(rank for rank, n in ranks.values() if n == coverage)
        return ranks[row] == (best, coverage)


def build_leaderboard(loaded: Loaded) -> Leaderboard:
    rows = row_keys(loaded.runs)
    by_dataset: dict[DatasetKey, list[Run]] = {}
    for run in loaded.runs:
        by_dataset.setdefault(DatasetKey.of(run), []).append(run)
    by_dataset = name_origins(name_budgets(by_dataset))
    datasets = [summarize_dataset(key, by_dataset[key], rows) for key in sorted(by_dataset, key=DatasetKey.sort_key)]
    return Leaderboard(datasets, sorted(set(rows.values()), key=RowKey.sort_key), loaded)
