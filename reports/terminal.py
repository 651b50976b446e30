"""What `python -m reports.build` and `python -m benchmarks.leaderboard` print when the report is
written: per dataset the leaderboard's mean-over-seeds rows (test AUC, and the test TPR and FPR at
each run's validation-chosen threshold) and its verdict, then what to run next. Plain text, so it
reads the same in a terminal, a log file and a CI job; tables are aligned by pandas."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from benchmarks.core.cli import counted
from reports.leaderboard import Leaderboard
from reports.leaderboard_table import LeaderboardTable, Value
from reports.runs import run_folders
from reports.verdicts import Verdict

BEST = "*"  # marks the best of a column (the HTML's bold)


def shown(value: Value | None) -> str:
    if value is None or value.missing:
        return "—"
    return value.text + (f" {BEST}" if value.best else "")


def dataset_frame(table: LeaderboardTable, index: int) -> pd.DataFrame:
    """The seeds rows that ran on dataset column `index`: method, seeds, test AUC, test TPR and FPR
    at the validation-chosen threshold."""
    level = table.level
    lines = []
    for row in table.rows:
        entry = row.entries[index]
        if row.kind != "seeds" or entry.n_seeds is None:
            continue
        lines.append({"method": row.label + (" (selected on val)" if entry.selected else ""), "seeds": entry.n_seeds,
                      f"test {table.metrics[0].label}": shown(entry.metrics[0]),
                      **{f"test {rate.upper()} @ val TPR≥{level}": shown(value)
                         for rate, value in zip(table.rates, entry.deployed)}})
    return pd.DataFrame(lines)


def left_aligned(frame: pd.DataFrame) -> str:
    """The frame as text, every column left-aligned (pandas right-aligns values by default)."""
    widths = {name: max(len(str(name)), *(len(str(v)) for v in frame[name])) for name in frame.columns}
    formatters = {name: (lambda width: lambda value: f"{value!s:<{width}}")(width) for name, width in widths.items()}
    return frame.to_string(index=False, justify="left", formatters=formatters)


def next_steps(board: Leaderboard, runs_dir: Path | Sequence[Path], report: Path) -> list[str]:
    """What to do after reading the summary: open the report, and where the results are thin."""
    suites = {run.suite for run in board.loaded.runs} - {None}
    suite = suites.pop() if len(suites) == 1 else None
    rerun = f"python -m benchmarks.leaderboard --suite {suite}" if suite else "python -m benchmarks.leaderboard"
    steps = [f"open the report in a browser: {report}"]
    seeds = min((len({run.seed for run in d.runs}) for d in board.datasets), default=0)
    if any(d.key.smoke for d in board.datasets):
        steps.append(f"columns marked 'smoke test' check the pipeline, they are not results: for results run "
                     f"`python -m benchmarks.leaderboard --suite full --dry-run` first, to see its runs")
    elif 0 < seeds < 3:
        steps.append(f"{counted(seeds, 'seed')} on some dataset: intervals are wide; add seeds with "
                     f"`{rerun} --seeds 0-4` and the same --out (finished runs are kept)")
    failed = sum(not failure.retried for failure in board.loaded.failures)
    if failed:
        steps.append(f"{counted(failed, 'run')} failed (the report's Failures section says why): rerun the "
                     f"same command to retry {'them' if failed > 1 else 'it'}")
    folders = [str(folder) for folder in run_folders(runs_dir)]
    argument = repr(folders[0]) if len(folders) == 1 else repr(folders)
    steps.append(f"analyse in pandas: `from reports import load_runs; runs, epochs = load_runs({argument})`")
    return steps


def summary_text(table: LeaderboardTable, found: list[Verdict], board: Leaderboard, runs_dir: Path | Sequence[Path],
                 report: Path) -> str:
    """The leaderboard per dataset with its verdict, then the next steps."""
    out = []
    for index, (column, verdict) in enumerate(zip(table.columns, found)):
        frame = dataset_frame(table, index)
        out += ["", column.key.label]
        if not frame.empty:
            out += ["  " + line.rstrip() for line in left_aligned(frame).splitlines()]
        out.append(f"  verdict: {verdict.text}")
    if out:
        out += ["", f"{BEST} best of its column (mean over seeds); TPR/FPR at each run's threshold chosen on validation "
                    f"for TPR ≥ {table.level}, applied to test"]
    out += ["", "next:"] + [f"  - {step}" for step in next_steps(board, runs_dir, Path(report))]
    return "\n".join(out)
