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
from reports.display import interval_text, number
from reports.leaderboard import Cell, DatasetSummary, Leaderboard, RowKey
from reports.settings import DECIMALS, LEVEL, MIN_SEEDS
from reports.stats import Interval

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PUBLISHED = Path(__file__).resolve().parent / "published.toml"
KEYS = {"dataset", "size", "label", "auc", "acc", "auc_std", "n_seeds", "source", "protocol", "match", "scored",
        "dataset_facts", "caveat"}
# What a reference scores: the critical class's AUC against the rest (a run's test AUC), every
# class's AUC as MedMNIST v2 reports a K-way model (a --task multiclass run's macro one-vs-rest AUC),
# or the top-1 accuracy over all classes of a balanced test set, as long-tailed CIFAR papers report
# it (a --task multiclass run's top-1 at its last epoch: CritBench never selects a checkpoint on test).
SCORED = ("critical class", "all classes", "top-1 accuracy")
TOP1_DECIMALS = 4  # the long-tail papers print top-1 error in percent with two decimals: 29.64 -> 0.7036
COMPARED_ON = {SCORED[0]: "critical-class test AUC", SCORED[1]: "all-class AUC", SCORED[2]: "last-epoch test top-1"}


@dataclass(frozen=True)
class Reference:
    """One published result: where it comes from, its protocol, and the run settings that match it."""

    dataset: str
    size: int
    label: str
    auc: float | None  # None for a top-1 accuracy reference, which has `acc` only
    source: str
    protocol: str
    acc: float | None = None
    auc_std: float | None = None
    n_seeds: int | None = None
    match: dict = field(default_factory=dict)
    scored: str = SCORED[0]
    dataset_facts: dict = field(default_factory=dict)  # what the data must be (its record's `dataset`): rho = 100
    caveat: str = ""  # shown with every verdict against this reference

    @property
    def all_classes(self) -> bool:
        return self.scored == SCORED[1]

    @property
    def top1(self) -> bool:
        return self.scored == SCORED[2]

    @property
    def value(self) -> float:
        """The published number a run is compared with: its top-1 accuracy or its AUC."""
        return self.acc if self.top1 else self.auc

    @property
    def decimals(self) -> int:
        """Decimals that show the published value as printed, and the values compared with it."""
        return TOP1_DECIMALS if self.top1 else DECIMALS

    @property
    def compared_on(self) -> str:
        return COMPARED_ON[self.scored]

    def run_value(self, record: dict) -> float:
        """The run's test value that compares with this reference's (NaN where the run has none):
        for top-1, the last epoch's, since the published protocols keep the best test accuracy over
        epochs and CritBench never selects on test."""
        classes = record.get("multiclass") or {}
        if self.top1:
            return float_or_nan(((classes.get("last_epoch") or {}).get("test") or {}).get("acc"))
        return float_or_nan((classes.get("test", {}) if self.all_classes else record["test"]).get("auc"))

    def selected_value(self, record: dict) -> float | None:
        """For top-1: the test top-1 of the checkpoint selected on validation (shown, not compared)."""
        return float_or_nan(((record.get("multiclass") or {}).get("test") or {}).get("acc")) if self.top1 else None

    def fits(self, facts: dict) -> bool:
        """Whether data with these facts (a record's `dataset`) is the data the reference was measured on."""
        return all(facts.get(key) == wanted for key, wanted in self.dataset_facts.items())

    def matches(self, record: dict) -> bool:
        """Whether a run has every setting of `match` (`params.KEY`: a hyperparameter) in its config,
        on the data of `dataset_facts`."""
        config = record["config"]
        for key, wanted in self.match.items():
            section, _, name = key.rpartition(".")
            value = config.get(section, {}).get(name) if section else config.get(name)
            if value != wanted:
                return False
        return bool(self.match) and self.fits(record["dataset"])


def float_or_nan(value) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class Comparison:
    """A CritBench row against a published value: mean and 95% CI over seeds of the run value the
    reference scores (`Reference.run_value`)."""

    reference: Reference
    row: RowKey
    n: int
    mean: float
    interval: SeedInterval | None  # None for one seed
    verdict: str  # "consistent", "below", "above", "one seed: no CI" or "n=2: no verdict (needs 3 seeds)"
    selected: float | None = None  # top-1: the mean test top-1 of the checkpoints selected on validation


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
        reference = Reference(**{"auc": None, **entry})
        problem = reference_problem(reference)
        if problem:
            raise CritBenchError(f"{path} reference #{index + 1}: {problem}")
        references.append(reference)
    return references


def reference_problem(reference: Reference) -> str | None:
    """Why a reference cannot be used, or None."""
    if reference.scored not in SCORED:
        return f"scored = {reference.scored!r}; valid: {', '.join(SCORED)}"
    if reference.top1 != (reference.auc is None) or reference.value is None:
        return (f'scored = "{SCORED[2]}" needs acc and no auc' if reference.top1
                else f"scored = {reference.scored!r} needs auc")
    if reference.scored != SCORED[0] and reference.match and reference.match.get("task") != "multiclass":
        return (f"{'an AUC over all classes' if reference.all_classes else 'a top-1 accuracy'} matches only "
                f'--task multiclass runs: add task = "multiclass" to its match')
    return None


@dataclass(frozen=True)
class SeedInterval(Interval):
    """A t interval over seeds; `clipped` where it was cut to its values' range."""

    clipped: bool = False

    def text(self, decimals: int = DECIMALS) -> str:
        """"[low, high]", with "(clipped)" where a bound was cut to the range."""
        return interval_text(self.low, self.high, lambda value: number(value, decimals)) + (
            " (clipped)" if self.clipped else "")


def seed_interval(values: list[float], level: float = LEVEL, bounds: tuple[float, float] = (0.0, 1.0)) -> SeedInterval | None:
    """Student-t interval of the mean over seeds (None for fewer than two finite values), cut to
    `bounds`, the values' range (an AUC's [0, 1]: with two seeds the t interval can reach past 1)."""
    array = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if len(array) < 2:
        return None
    se = float(array.std(ddof=1) / math.sqrt(len(array)))
    half = float(student_t.ppf(0.5 + level / 2, len(array) - 1)) * se
    mean = float(array.mean())
    low, high = mean - half, mean + half
    return SeedInterval(mean, se, max(bounds[0], low), min(bounds[1], high), low < bounds[0] or high > bounds[1])


def verdict(published: float, interval: Interval | None, n: int) -> str:
    """Where the published value lies against the interval over `n` seeds; none below MIN_SEEDS."""
    if interval is None:
        return "one seed: no CI"
    if n < MIN_SEEDS:
        return f"n={n}: no verdict (needs {MIN_SEEDS} seeds)"
    if interval.high < published:
        return "below"
    if interval.low > published:
        return "above"
    return "consistent"


def finite_mean(values: list[float]) -> tuple[int, float]:
    """How many of `values` are finite, and their mean (NaN where none is)."""
    finite = [value for value in values if math.isfinite(value)]
    return len(finite), float(np.mean(finite)) if finite else math.nan


def compare(reference: Reference, row: RowKey, cell: Cell) -> Comparison:
    values = [reference.run_value(run.record) for run in cell.runs]
    interval = seed_interval(values)
    n, mean = finite_mean(values)
    selected = finite_mean([reference.selected_value(run.record) for run in cell.runs])[1] if reference.top1 else None
    return Comparison(reference, row, n, mean, interval, verdict(reference.value, interval, n), selected)


@dataclass(frozen=True)
class DatasetReferences:
    """A dataset column's published rows and the comparisons of its matching CritBench rows."""

    references: list[Reference]
    comparisons: list[Comparison]


def dataset_references(summary: DatasetSummary, references: list[Reference]) -> DatasetReferences:
    key = summary.key
    mine = [ref for ref in references if ref.dataset == key.name and ref.size == key.size
            and not key.imbalance and not key.max_train_samples and ref.fits(summary.facts)]
    comparisons = [compare(ref, row, cell) for ref in mine for row, cell in summary.cells.items()
                   if all(ref.matches(run.record) for run in cell.runs)]
    return DatasetReferences(mine, comparisons)


def published_comparisons(board: Leaderboard, references: list[Reference] | None = None) -> dict[str, DatasetReferences]:
    """Dataset anchor -> its published rows and comparisons, for every dataset that has any."""
    references = load_references() if references is None else references
    found = {d.key.anchor: dataset_references(d, references) for d in board.datasets}
    return {anchor: refs for anchor, refs in found.items() if refs.references}
