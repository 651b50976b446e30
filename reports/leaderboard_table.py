"""The leaderboard as one table object, built once: rows (seed means, published values, seed
ensembles), a cell per row x dataset x column with its display text, raw values and bold /
highlight flags, each row's mean rank and seed count, and the explanation. The HTML template
(reports/templates/report.html.j2), leaderboard.md and leaderboard.csv (reports/tables.py) only
format it."""
from __future__ import annotations

from dataclasses import dataclass

from benchmarks.core.cli import counted
from benchmarks.core.metrics import METRICS, Metric
from reports.deployed import LEADERBOARD_POINT, RATES, Rate
from reports.display import interval_text, mean_pm_std, number
from reports.leaderboard import BASELINE, Cell, DatasetKey, DatasetSummary, Leaderboard, RowKey
from reports.published import SCORED, DatasetReferences, Reference
from reports.settings import LEVEL_TEXT, N_BOOTSTRAP
from reports.tuning import tuned_rows_text

BLOCK_TITLES = {"seeds": "Mean ± std over seeds", "ensemble": "Seed ensemble: mean test logit over seeds, then scored"}
NO_ENSEMBLE = ("No dataset has a test set shared by all its seeds (e.g. synthetic data draws one per seed), "
               "so no seed ensemble.")
NO_SHARED_TEST_SET = "no shared test set across seeds"


@dataclass(frozen=True)
class Value:
    """One cell: its display text and the raw numbers behind it."""

    text: str = "—"
    mean: float | None = None  # None: nothing to show (the text is a dash)
    std: float | None = None
    interval: tuple[float, float] | None = None  # a confidence interval, shown as "[low, high]"
    best: bool = False  # bold: the best of its column within its block
    short: bool = False  # highlighted: a test TPR whose mean misses the validation target
    title: str = ""  # hover text
    suffix: str = ""  # shown small after the text: a mean rank's "(ranked datasets/datasets)"

    @property
    def missing(self) -> bool:
        return self.mean is None

    @property
    def interval_text(self) -> str:
        return interval_text(*self.interval) if self.interval else ""


@dataclass(frozen=True)
class RunLink:
    """A link from a cell to one of its runs, numbered by the run's seed among the dataset's seeds."""

    number: int
    seed: int
    run_id: str
    anchor: str


@dataclass(frozen=True)
class Entry:
    """A row on one dataset: a Value per metric and per deployed rate (None where the column does not
    apply to the row), and for a seeds row its runs and, for a sweep variant, its validation AUC."""

    metrics: tuple[Value | None, ...]
    deployed: tuple[Value | None, ...]  # one per reports.deployed.RATES
    n_seeds: int | None = None  # the runs behind the values (None: no values)
    rank: float | None = None  # the rank of its test AUC on this dataset (1 = best)
    runs: tuple[RunLink, ...] = ()
    variant: Value | None = None  # validation AUC of one of a method's several variants
    selected: bool = False  # the variant selected on validation
    stats: Cell | None = None  # the statistics behind it, for leaderboard.csv's further columns
    reference: Reference | None = None  # a published row's reference


MISSING = Entry((None,) * len(METRICS), (None,) * len(RATES))


@dataclass(frozen=True)
class Row:
    """One table row: "seeds" (mean over seeds), "published" (a paper's value) or "ensemble"."""

    label: str
    kind: str
    entries: tuple[Entry, ...]  # one per dataset column
    mean_rank: Value | None  # None where the row is not ranked (published)
    seeds: str  # how many seeds, "2" or "2–3" over the datasets
    key: RowKey | None = None  # the method row (None for a published row)

    @property
    def selected(self) -> bool:
        """Whether it is a sweep variant selected on validation (on some dataset)."""
        return any(entry.selected for entry in self.entries)


@dataclass(frozen=True)
class Block:
    """Rows under one heading; `empty` is shown when there are none."""

    kind: str
    title: str
    rows: tuple[Row, ...]
    empty: str = ""


@dataclass(frozen=True)
class Fragment:
    """A piece of the explanation: `style` is "strong", "emphasis" or a highlight the HTML draws
    ("seedlink", "published-key", "short"); `only` names the one format ("html", "markdown") that has it."""

    text: str
    style: str = ""
    only: str = ""


@dataclass(frozen=True)
class Column:
    """A dataset column group, and whether all its seeds share one test set (pooled by seed ensemble)."""

    key: DatasetKey
    shared_test_set: bool


@dataclass(frozen=True)
class LeaderboardTable:
    columns: tuple[Column, ...]
    metrics: tuple[Metric, ...]
    rates: tuple[str, ...]
    level: str  # the validation TPR target whose threshold the deployed columns apply
    blocks: tuple[Block, ...]
    explanation: tuple[Fragment, ...]

    @property
    def rows(self) -> list[Row]:
        return [row for block in self.blocks for row in block.rows]

    @property
    def group_span(self) -> int:
        """Columns under one dataset's heading."""
        return len(self.metrics) + len(self.rates)

    @property
    def width(self) -> int:
        """All columns: method, each dataset's group, mean rank and seeds."""
        return 3 + len(self.columns) * self.group_span

    def explained(self, form: str) -> list[Fragment]:
        """The explanation as format `form` ("html" or "markdown") shows it."""
        return [part for part in self.explanation if part.only in ("", form)]


def explanation(level: str) -> tuple[Fragment, ...]:
    """What the table shows, written once for every format."""
    return (
        Fragment("Test metrics of the checkpoint with the best validation AUC, "),
        Fragment("mean ± std over seeds", "strong"),
        Fragment(". The critical class is the positive class. "), Fragment("Bold", "strong"),
        Fragment(": best in its column (highest AUC and TPR, lowest FPR) within its block. Where a method has several "
                 "rows (sweep variants), each shows its validation AUC; the one with the highest mean validation AUC "
                 "(over the seeds all its variants have, where they share any) is "), Fragment("selected on validation", "emphasis"), Fragment(" (marked ✓)", only="markdown"),
        Fragment(", and only that one competes for bold and ranks, so no variant is chosen on test. Mean rank: rank of "
                 "the mean test AUC as shown on each dataset (1 = best, ties share a rank), averaged over the datasets where "
                 "two or more rows compete (ranked/all where fewer). "),
        Fragment("The small numbers after ", only="html"), Fragment("runs", "seedlink", "html"),
        Fragment(" link to each seed's run record (numbered by seed, the same numbers for every method of a "
                 "dataset). ", only="html"),
        Fragment("Seed ensemble", "strong"),
        Fragment(" rows score the mean test logit over the seeds (as in Sangalli et al. 2021); they need a test set "
                 "shared by all seeds. Where rows differ in their seeds, their bold and ranks compare the ensembles of "
                 "the seeds every competing row has (an ensemble of more seeds would win by itself"),
        Fragment("; hover a value for its ensemble over those seeds", only="html"),
        Fragment("), and none where they share no seed. "), Fragment("Published", "published-key"),
        Fragment(" rows are test AUCs reported by the papers (reports/published.toml, with source and protocol in each "
                 "dataset's section). "), Fragment(f"At val TPR ≥ {level} threshold", "strong"),
        Fragment(f": each run's threshold is chosen on validation alone (the largest whose validation TPR ≥ {level}; "
                 f"positive iff score ≥ threshold), then applied to test, as a deployed model would be: the test TPR"),
        Fragment(" (", only="html"), Fragment("highlighted", "short", "html"),
        Fragment(f" where its mean misses {level})", only="html"),
        Fragment(f" and test FPR, mean ± std over seeds, with the stratified-bootstrap {LEVEL_TEXT} CI of that mean "
                 f"over the test set ({N_BOOTSTRAP} resamples; none below two test positives or negatives) "),
        Fragment("beneath", only="html"),
        Fragment("in brackets; — where the records have no operating points", only="markdown"),
        Fragment(". The TPR@FPR and FPR@TPR columns instead pick the threshold on test itself: the best case."),
    )


def rate_value(rate: str, found: Rate | None, runs: int) -> Value:
    """A test rate at the validation-chosen threshold: mean ± std over seeds, with its CI, and how
    many of the row's `runs` it rests on where some records carry no operating points."""
    if found is None:
        return Value()
    fewer = f" ({found.runs} of {runs} runs)" if found.runs < runs else ""
    interval = None if found.low is None else (found.low, found.high)
    return Value(mean_pm_std((found.mean, found.std)) + fewer, found.mean, found.std, interval,
                 short=rate == "tpr" and found.mean < float(LEADERBOARD_POINT[1]),
                 title=f"from the {found.runs} of {runs} runs whose records carry operating points" if fewer else "")


def seeds_entry(summary: DatasetSummary, cell: Cell | None) -> Entry:
    if cell is None:
        return MISSING
    metrics = tuple(Value(mean_pm_std(cell.seeds[m.key]), *cell.seeds[m.key], best=m.key in cell.best) for m in METRICS)
    point = cell.deployed.get(LEADERBOARD_POINT) or {}
    runs = tuple(RunLink(summary.seed_number(run), run.seed, run.run_id, run.anchor) for run in cell.runs)
    variant = None if cell.selected is None else Value(mean_pm_std(cell.val_auc), *cell.val_auc)
    return Entry(metrics, tuple(rate_value(rate, point.get(rate), len(cell.runs)) for rate in RATES), len(cell.runs), cell.rank, runs,
                 variant, bool(cell.selected), cell)


def compared_title(summary: DatasetSummary, cell: Cell, metric: Metric) -> str:
    """Hover text of a competing ensemble whose seeds are not those its bold and rank compare."""
    if not cell.competes or {run.seed for run in cell.runs if run.usable} == summary.compared_seeds:
        return ""
    if not cell.compared_ensemble:
        return "not bolded or ranked: the competing rows share no seed"
    seeds, value = counted(len(summary.compared_seeds), "seed"), number(cell.compared_ensemble[metric.key])
    return f"bold and rank compare the ensembles of the {seeds} every competing row has: {value} here"


def ensemble_entry(summary: DatasetSummary, cell: Cell | None) -> Entry:
    if cell is None:
        return MISSING
    if not cell.ensemble:
        return Entry((Value(title=NO_SHARED_TEST_SET),) * len(METRICS), (None,) * len(RATES), selected=bool(cell.selected),
                     stats=cell)
    metrics = tuple(Value(number(cell.ensemble[m.key]), cell.ensemble[m.key], best=m.key in cell.ensemble_best,
                          title=compared_title(summary, cell, m)) for m in METRICS)
    return Entry(metrics, (None,) * len(RATES), sum(run.usable for run in cell.runs), cell.ensemble_rank,
                 selected=bool(cell.selected), stats=cell)


def mean_rank(board: Leaderboard, row: RowKey, source: str) -> Value:
    """The row's mean test-AUC rank over the datasets where it was ranked, and on how many of them."""
    rank, ranked = board.mean_rank(row, source)
    total = len(board.datasets)
    if rank is None:  # not ranked anywhere: a variant not selected on validation, or a row that ran alone
        return Value()
    return Value(number(rank, 2), rank, best=board.is_best_rank(row, source),
                 suffix="" if ranked == total else f"({ranked}/{total})")


def seed_range(entries: tuple[Entry, ...]) -> str:
    counts = [entry.n_seeds for entry in entries if entry.n_seeds is not None]
    return str(min(counts)) if min(counts) == max(counts) else f"{min(counts)}–{max(counts)}"


def method_row(board: Leaderboard, row: RowKey, source: str) -> Row:
    """A method row's seed means (`source` "seeds") or seed ensembles ("ensemble") on every dataset."""
    entries = tuple(seeds_entry(d, d.cells.get(row)) if source == "seeds" else ensemble_entry(d, d.cells.get(row))
                    for d in board.datasets)
    return Row(row.label, source, entries, mean_rank(board, row, source), seed_range(entries), row)


def reference_auc(ref: Reference) -> str:
    """A published test AUC, with its std where the paper gives one."""
    return number(ref.auc) + (f" ± {number(ref.auc_std)}" if ref.auc_std else "")


def published_entry(ref: Reference | None) -> Entry:
    """A published reference's test AUC (in the first metric's column) on one dataset."""
    if ref is None:
        return MISSING
    auc = Value(reference_auc(ref), ref.auc, ref.auc_std, title=ref.source)
    return Entry((auc, *(None,) * (len(METRICS) - 1)), (None,) * len(RATES), reference=ref)


def published_rows(board: Leaderboard, published: dict[str, DatasetReferences]) -> list[Row]:
    """One row per published label, with its test AUC on the datasets that have the reference (the
    critical class's: an AUC over all classes or a top-1 accuracy is shown in its dataset's section only)."""
    by_label: dict[str, dict[str, Reference]] = {}
    for anchor, refs in published.items():
        for ref in refs.references:
            if ref.scored == SCORED[0]:
                by_label.setdefault(ref.label, {})[anchor] = ref
    rows = []
    for label, refs in by_label.items():
        entries = tuple(published_entry(refs.get(d.key.anchor)) for d in board.datasets)
        seeds = next((ref.n_seeds for ref in refs.values() if ref.n_seeds), None)
        rows.append(Row(label, "published", entries, None, str(seeds) if seeds else "—"))
    return rows


def leaderboard_table(board: Leaderboard, published: dict[str, DatasetReferences]) -> LeaderboardTable:
    """The leaderboard's table: seeds rows then published rows, then seed-ensemble rows (of the
    method rows with an ensemble on some dataset)."""
    seeds = [method_row(board, row, "seeds") for row in board.rows]
    ensemble = [method_row(board, row, "ensemble") for row in board.rows if board.has_ensemble(row)]
    blocks = (Block("seeds", BLOCK_TITLES["seeds"], (*seeds, *published_rows(board, published))),
              Block("ensemble", BLOCK_TITLES["ensemble"], tuple(ensemble), NO_ENSEMBLE))
    level = LEADERBOARD_POINT[1]
    columns = tuple(Column(d.key, d.shared_test_set) for d in board.datasets)
    return LeaderboardTable(columns, METRICS, RATES, level, blocks, explanation(level) + tuned_explanation(board))


def tuned_explanation(board: Leaderboard) -> tuple[Fragment, ...]:
    """The tuned rows' protocol, budget and chosen values, where the board has tuned rows."""
    tuned = [(d.key.label, row.label, cell.tuning) for d in board.datasets for row, cell in d.cells.items()
             if cell.tuning]
    if not tuned:
        return ()
    return Fragment(" "), Fragment("Rows marked (tuned)", "strong"), Fragment(" " + tuned_rows_text(tuned, BASELINE))
