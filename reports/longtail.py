"""Long-tailed runs' class results as the report shows them: the test top-1 accuracy of the last
epoch and of the checkpoint selected on validation, the many/medium/few-shot group accuracies and
each class's accuracy (its recall on the balanced test set), mean ± std over a row's seeds. Only
records whose `multiclass` results carry `groups` (long-tailed data) have them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from benchmarks.core.metrics import SHOT_GROUPS
from reports.leaderboard import DatasetSummary, mean_std
from reports.runs import Run

# The checkpoints whose test results are shown: CritBench never selects one on test.
CHECKPOINTS = (("last_epoch", "last epoch"), ("selected", "selected on validation"))


def checkpoint_results(record: dict, checkpoint: str) -> dict | None:
    """A record's test class results of `checkpoint` ("last_epoch" or "selected"), None where the
    record has none with groups (not long-tailed, or written before the last epoch was recorded)."""
    classes = record.get("multiclass") or {}
    results = ((classes.get("last_epoch") or {}).get("test") if checkpoint == "last_epoch" else classes.get("test"))
    return results if results and results.get("groups") else None


def finite_mean_std(values: list) -> tuple[float, float | None]:
    """(mean, std over seeds) of the finite values; (None, None) where none is (an empty group: "—")."""
    finite = [float(value) for value in values if value is not None and math.isfinite(value)]
    return mean_std(finite) if finite else (None, None)


@dataclass(frozen=True)
class ClassAccuracy:
    """One checkpoint's test accuracies of a row, each (mean, std) over its seeds."""

    n: int  # seeds with results
    top1: tuple[float, float | None]
    groups: dict[str, tuple[float, float | None]]  # SHOT_GROUPS -> accuracy
    per_class: list[tuple[float, float | None]]  # one per class, in class-index order


def class_accuracy(runs: list[Run], checkpoint: str) -> ClassAccuracy | None:
    results = [found for found in (checkpoint_results(run.record, checkpoint) for run in runs) if found]
    if not results:
        return None
    classes = len(results[0]["recall"])
    return ClassAccuracy(len(results), finite_mean_std([r.get("acc") for r in results]),
                         {name: finite_mean_std([r["groups"].get(name, {}).get("acc") for r in results]) for name in SHOT_GROUPS},
                         [finite_mean_std([r["recall"][index] for r in results]) for index in range(classes)])


def long_tail(runs: list[Run]) -> dict[str, ClassAccuracy]:
    """CHECKPOINTS key -> the row's accuracies there, for the checkpoints its records have."""
    found = {key: class_accuracy(runs, key) for key, _ in CHECKPOINTS}
    return {key: value for key, value in found.items() if value is not None}


def class_label(names: list[str], index: int) -> str:
    """A class's name, or its index where the record names no classes."""
    return names[index] if index < len(names) else str(index)


def group_headers(record: dict) -> list[tuple[str, str]]:
    """(group, its heading) for each shot group of the dataset: its training-image range and classes,
    from the record's thresholds and group members ("many (> 1000 train images): airplane, automobile")."""
    facts = record["dataset"]
    many_above, few_below = facts["shot_thresholds"]["many_above"], facts["shot_thresholds"]["few_below"]
    ranges = {"many": f"> {many_above}", "medium": f"{few_below}–{many_above}", "few": f"< {few_below}"}
    names = facts.get("class_names") or []
    groups = checkpoint_results(record, "selected")["groups"]
    headers = []
    for name in SHOT_GROUPS:
        members = groups.get(name, {}).get("classes", [])
        listed = ", ".join(class_label(names, i) for i in members) or "none"
        headers.append((name, f"{name} ({ranges[name]} train images): {listed}"))
    return headers


@dataclass(frozen=True)
class LongTailSection:
    """A dataset section's long-tail tables: the group headings, the class names, each row's accuracies."""

    groups: list[tuple[str, str]]
    class_names: list[str]
    rows: dict = field(default_factory=dict)  # RowKey -> long_tail(...) of its runs


def long_tail_section(summary: DatasetSummary) -> LongTailSection | None:
    """The long-tail tables of a dataset, None where none of its runs has group results."""
    rows = {row: found for row, cell in summary.cells.items() if (found := long_tail(cell.runs))}
    if not rows:
        return None
    first = next(run for run in summary.runs if checkpoint_results(run.record, "selected"))
    names = first.record["dataset"].get("class_names") or []
    count = len(checkpoint_results(first.record, "selected")["recall"])
    return LongTailSection(group_headers(first.record), [class_label(names, i) for i in range(count)], rows)


def run_class_rows(record: dict) -> list[tuple[str, object, object, object]]:
    """A run page's class table: (label, training images, test accuracy selected on validation,
    at the last epoch) for top-1, each shot group and each class; [] where the record has no groups."""
    selected, last = checkpoint_results(record, "selected"), checkpoint_results(record, "last_epoch") or {}
    if selected is None:
        return []
    names = record["dataset"].get("class_names") or []
    counts = ((record["dataset"].get("splits") or {}).get("train") or {}).get("class_counts") or []
    rows = [("top-1", sum(counts) if counts else None, selected.get("acc"), last.get("acc"))]
    for name, heading in group_headers(record):
        rows.append((heading, None, selected["groups"].get(name, {}).get("acc"),
                     (last.get("groups") or {}).get(name, {}).get("acc")))
    last_recall = last.get("recall") or [None] * len(selected["recall"])
    for index, recall in enumerate(selected["recall"]):
        rows.append((class_label(names, index), counts[index] if index < len(counts) else None, recall, last_recall[index]))
    return rows
