"""Published results beside CritBench's: the references of `reports/published.toml`, which
CritBench rows match a reference's protocol, and a verdict from the 95% CI over seeds."""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import t as student_t

from benchmarks.core.errors import CritBenchError
from reports.leaderboard import Cell, DatasetSummary, Leaderboard, RowKey
from reports.settings import LEVEL
from reports.stats import Interval

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PUBLISHED = Path(__file__).resolve().parent / "published.toml"
KEYS = {"dataset", "size", "label", "auc", "acc", "auc_std", "n_seeds", "source", "protocol", "match", "scored"}
# What a reference's AUC scores: the critical class against the rest (a run's test AUC), or every
# class as MedMNIST v2 reports a K-way model (a --task multiclass run's macro one-vs-rest AUC).
SCORED = ("critical class", "all classes")


@dataclass(frozen=True)
class Reference:
    """One published result: where it comes from, its protocol, and the run settings that match it."""

    dataset: str
    size: int
    label: str
    auc: float
    source: str
    protocol: str
    acc: float | None = None
    auc_std: float | None = None
    n_seeds: int | None = None
    match: dict = field(default_factory=dict)
    scored: str = SCORED[0]

    @property
    def all_classes(self) -> bool:
        return self.scored == SCORED[1]

    def run_auc(self, record: dict) -> float:
        """The run's test AUC that compares with this reference's (NaN where the run has none)."""
        test = (record.get("multiclass") or {}).get("test", {}) if self.all_classes else record["test"]
        value = test.get("auc")
        return math.nan if value is None else float(value)

    def matches(self, config: dict) -> bool:
        """Whether a run's config has every setting of `match` (`params.KEY`: a hyperparameter)."""
        for key, wanted in self.match.items():
            section, _, name = key.rpartition(".")
            value = config.get(section, {}).get(name) if section else config.get(name)
            if value != wanted:
                return False
        return bool(self.match)


@dataclass(frozen=True)
class Comparison:
    """A CritBench row against a published value: mean and 95% CI of its test AUC over seeds."""

    reference: Reference
    row: RowKey
    n: int
    mean: float
    interval: Interval | None  # None for one seed
    verdict: str  # "consistent", "below", "above", or "one seed: no CI"


def load_references(path: Path = PUBLISHED) -> list[Reference]:
    try:
        entries = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("reference", [])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise CritBenchError(f"cannot read the published references {path}: {error}") from None
    references = []
    for index, entry in enumerate(entries):
        unknown = set(entry) - KEYS
        if unknown:
            raise CritBenchError(f"{path} reference #{index + 1}: unknown key(s) {', '.join(sorted(unknown))}")
        reference = Reference(**entry)
        if reference.scored not in SCORED:
            raise CritBenchError(f"{path} reference #{index + 1}: scored = {reference.scored!r}; valid: {', '.join(SCORED)}")
        if reference.all_classes and reference.match and reference.match.get("task") != "multiclass":
            raise CritBenchError(f"{path} reference #{index + 1}: an AUC over all classes matches only "
                                 f'--task multiclass runs: add task = "multiclass" to its match')
        references.append(reference)
    return references


def seed_interval(values: list[float], level: float = LEVEL, bounds: tuple[float, float] = (0.0, 1.0)) -> Interval | None:
    """Student-t interval of the mean over seeds (None for fewer than two finite values), cut to
    `bounds`, the values' range (an AUC's [0, 1]: with two seeds the t interval can reach past 1)."""
    array = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if len(array) < 2:
        return None
    se = float(array.std(ddof=1) / math.sqrt(len(array)))
    half = float(student_t.ppf(0.5 + level / 2, len(array) - 1)) * se
    mean = float(array.mean())
    return Interval(mean, se, max(bounds[0], mean - half), min(bounds[1], mean + half))


def verdict(published: float, interval: Interval | None) -> str:
    if interval is None:
        return "one seed: no CI"
    if interval.high < published:
        return "below"
    if interval.low > published:
        return "above"
    return "consistent"


def compare(reference: Reference, row: RowKey, cell: Cell) -> Comparison:
    aucs = [reference.run_auc(run.record) for run in cell.runs]
    interval = seed_interval(aucs)
    finite = [value for value in aucs if math.isfinite(value)]
    return Comparison(reference, row, len(finite), float(np.mean(finite)) if finite else math.nan, interval,
                      verdict(reference.auc, interval))


@dataclass(frozen=True)
class DatasetReferences:
    """A dataset column's published rows and the comparisons of its matching CritBench rows."""

    references: list[Reference]
    comparisons: list[Comparison]


def dataset_references(summary: DatasetSummary, references: list[Reference]) -> DatasetReferences:
    key = summary.key
    mine = [ref for ref in references if ref.dataset == key.name and ref.size == key.size
            and not key.imbalance and not key.max_train_samples]
    comparisons = [compare(ref, row, cell) for ref in mine for row, cell in summary.cells.items()
                   if all(ref.matches(run.config) for run in cell.runs)]
    return DatasetReferences(mine, comparisons)


def published_comparisons(board: Leaderboard, references: list[Reference] | None = None) -> dict[str, DatasetReferences]:
    """Dataset anchor -> its published rows and comparisons, for every dataset that has any."""
    references = load_references() if references is None else references
    found = {d.key.anchor: dataset_references(d, references) for d in board.datasets}
    return {anchor: refs for anchor, refs in found.items() if refs.references}
