"""What `python -m reports.build` and `python -m benchmarks.leaderboard` print when the report is
written: per dataset the leaderboard's mean-over-seeds rows (test AUC, and the test TPR and FPR at
each run's validation-chosen threshold) and its verdict, then what to run next. Plain text, so it
reads the same in a terminal, a log file and a CI job; tables are aligned by pandas."""
from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from benchmarks.core.cli import counted
from reports.leaderboard import Leaderboard
from reports.leaderboard_table import LeaderboardTable, Value
from reports.runs import Run, run_folders
from reports.settings import MIN_SEEDS
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


SEED_OPTIONS = ("--seed", "--seeds", "--out")  # what a hint for more seeds replaces in a recorded command
SEEDS_WANTED = 5


def without_options(command: str, options: tuple[str, ...]) -> list[str] | None:
    """The recorded command's words without `options` and their values (None where it does not parse)."""
    try:
        words = shlex.split(command)
    except ValueError:  # a hand-edited command with unbalanced quotes
        return None
    kept = []
    while words:
        word = words.pop(0)
        if word in options and words:
            words.pop(0)
        elif word.split("=", 1)[0] not in options:
            kept.append(word)
    return kept


def home_folder(runs: list[Run], folders: list[Path]) -> Path | None:
    """The --runs folder that holds all of `runs` (None where they lie in several)."""
    homes = {folder for run in runs for folder in folders if run.path.is_relative_to(folder)}
    return homes.pop() if len(homes) == 1 else None


def more_seeds(runs: list[Run], folder: Path) -> str | None:
    """The one recorded command that made `runs`, asking for SEEDS_WANTED seeds into `folder`, which
    holds them: a suite's or search's `--seeds 0-4` (finished runs are kept), benchmarks.run once per
    missing seed. None where the records carry no command or several."""
    commands = {tuple(words) if (words := without_options(run.record.get("command") or "", SEED_OPTIONS)) else None
                for run in runs}
    if len(commands) != 1 or None in commands:
        return None
    words, out = list(commands.pop()), ["--out", str(folder)]
    if "benchmarks.run" in words:
        present = {run.seed for run in runs}
        missing = [seed for seed in range(SEEDS_WANTED + len(present)) if seed not in present]
        missing = missing[:SEEDS_WANTED - len(present)]
        return f"for seed in {' '.join(map(str, missing))}; do {shlex.join([*words, *out])} --seed $seed; done"
    return shlex.join([*words, "--seeds", f"0-{SEEDS_WANTED - 1}", *out])


def seeds_step(board: Leaderboard, folders: list[Path]) -> str | None:
    """Where a dataset has fewer than MIN_SEEDS seeds: the command that adds seeds, or why none is given."""
    thin = [d for d in board.datasets if len({run.seed for run in d.runs}) < MIN_SEEDS]
    if not thin:
        return None
    seeds = min(len({run.seed for run in d.runs}) for d in thin)
    runs = [run for d in thin for run in d.runs]
    folder = home_folder(runs, folders)
    command = more_seeds(runs, folder) if folder else None
    if command:
        return f"{counted(seeds, 'seed')} on some dataset: intervals are wide; add seeds with `{command}`"
    return (f"{counted(seeds, 'seed')} on some dataset: intervals are wide; no single recorded command made its "
            f"records{'' if folder else ' in one folder'}, so none is suggested: rerun the one that made a dataset's "
            f"runs with more seeds and --out {folder or 'the folder that holds them'} (finished runs are kept)")


def next_steps(board: Leaderboard, runs_dir: Path | Sequence[Path], report: Path) -> list[str]:
    """What to do after reading the summary: open the report, and where the results are thin."""
    folders = run_folders(runs_dir)
    steps = [f"open the report in a browser: {report}"]
    if any(d.key.smoke for d in board.datasets):
        steps.append(f"columns marked 'smoke test' check the pipeline, they are not results: for results run "
                     f"`python -m benchmarks.leaderboard --suite full --dry-run` first, to see its runs")
    elif step := seeds_step(board, folders):
        steps.append(step)
    open_failures = [failure for failure in board.loaded.failures if not failure.retried]
    diverged = sum(failure.record.get("failure") == "diverged" for failure in open_failures)
    if crashed := len(open_failures) - diverged:
        steps.append(f"{counted(crashed, 'run')} crashed (the report's Failures section says why): rerun the "
                     f"same command to retry {'them' if crashed > 1 else 'it'}")
    if diverged:
        steps.append(f"{counted(diverged, 'run')} diverged (a NaN or infinite loss): the same settings diverge "
                     f"again, so change what the failure's reason suggests (a lower lr or penalty) rather than rerun")
    argument = repr(str(folders[0])) if len(folders) == 1 else repr([str(folder) for folder in folders])
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
