"""The report's search section: each hyperparameter search (`benchmarks.tune`, or a suite's `tune`)
under a runs folder, from its `search.json`: the objective per trial (validation only), the chosen
parameters, the budget, and the selected configuration's runs (whose test results the leaderboard
shows; no test number exists for any other trial). Trial records are not run records: the report
neither counts nor skips them. A selected configuration's run records carry the search's mark
(`selected_mark`), from which the leaderboard makes its tuned rows and says their budget and values."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.core.cli import counted
from benchmarks.core.storage import read_json, record_files

TRIAL_KINDS = ("trial", "trial_fit")  # benchmarks.sweep.tuning's trial record, pipeline's validation-only training


def is_trial_record(path) -> bool:
    """True for a tuning trial's record (validation only, never a run result)."""
    value, _ = read_json(path)
    return isinstance(value, dict) and value.get("kind") in TRIAL_KINDS


@dataclass
class SearchSection:
    """One search as the report shows it."""

    summary: dict
    path: Path

    @property
    def title(self) -> str:
        config = self.summary["search"]["config"]
        return f"{config['dataset']} / {config['method']}"

    @property
    def setup(self) -> str:
        search = self.summary["search"]
        selection = f"stratified {search['folds']}-fold CV over train+val" if search["folds"] else "the validation split"
        space = ", ".join(f"{name} in {spec}" for name, spec in search["space"].items())
        return (f"{self.summary['objective']} ({self.summary['direction']}) on {selection}; {search['sampler']} sampler, "
                f"pruner {search['pruner']}; budget {self.summary['budget']} trials of {search['config']['epochs']} "
                f"epochs; {space}")

    @property
    def trials(self) -> list[dict]:
        """Each trial with its parameters as text."""
        return [{**trial, "shown": shown_params(trial["params"])} for trial in self.summary["trials"]]

    @property
    def selected(self) -> dict:
        return {**self.summary["selected"], "shown": shown_params(self.summary["selected"]["params"])}


def shown_params(params: dict) -> str:
    return ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                     for key, value in params.items())


def load_searches(runs_dir) -> list[SearchSection]:
    """Every search summary (`search.json`, kind "search") under `runs_dir`."""
    files, _ = record_files(runs_dir)
    sections = []
    for path in files:
        if path.name == "search.json":
            value, _ = read_json(path)
            if isinstance(value, dict) and value.get("kind") == "search":
                sections.append(SearchSection(value, path))
    return sections


def budgets(sections: list[SearchSection]) -> str:
    """The tuning budget of every search, e.g. "20 trials, 5-fold CV, each"; several when they differ."""
    found = dict.fromkeys(f"{s.summary['budget']} trials, " + (f"{s.summary['search']['folds']}-fold CV"
                                                               if s.summary["search"]["folds"] else "validation split")
                          for s in sections)
    return "; ".join(found) + (" each" if len(found) == 1 else " (budgets differ between searches)")


def selected_mark(record: dict) -> dict | None:
    """The `tuning` mark of a run record whose values a search selected (benchmarks.sweep.search
    .mark_selected: study, trial, objective, chosen params, trials, budget, epochs per trial, folds),
    else None."""
    mark = record.get("tuning")
    return mark if isinstance(mark, dict) and mark.get("selected") else None


def mark_budget(mark: dict) -> str:
    """A selected run's search budget, e.g. "20 trials of 10 epochs, 5-fold CV" (epochs where the mark has them)."""
    epochs = f" of {counted(mark['epochs'], 'epoch')}" if mark.get("epochs") else ""
    return f"{mark['budget']} trials{epochs}, " + (f"{mark['folds']}-fold CV" if mark.get("folds") else "validation split")


def tuned_rows_text(tuned: list[tuple[str, str, dict]], baseline: str) -> str:
    """What the leaderboard says of its tuned rows, from (dataset label, row label, `selected_mark`):
    the protocol, the budget (once when every search had the same) and the chosen values."""
    found = list(dict.fromkeys(mark_budget(mark) for _, _, mark in tuned))
    budget = f"{found[0]}, each" if len(found) == 1 else f"{'; '.join(found)} (budgets differ between searches)"
    objectives = ", ".join(dict.fromkeys(mark["objective"] for _, _, mark in tuned))
    by_dataset: dict[str, list[str]] = {}
    for dataset, row, mark in tuned:
        by_dataset.setdefault(dataset, []).append(f"{row} {shown_params(mark['params'])}")
    chosen = ". ".join(f"{dataset}: {'; '.join(rows)}" for dataset, rows in by_dataset.items())
    return (f"ran with the hyperparameters a search selected on validation data only ({objectives}; budget {budget}); "
            f"where a method has a tuned row its preset row is shown beside it but does not compete for bold or "
            f"ranks, and the tuned {baseline} row is the baseline. Chosen values on {chosen}.")
