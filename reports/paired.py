"""`python -m reports.paired --runs DIR [DIR ...] --method ROW [--baseline bce]`: one method against a
baseline, seed by seed, on the critical class's test scores.

For each dataset column where both rows ran, one line per seed both have (scored on the same test
set): each row's test AUC, the difference with its DeLong 95% interval and paired p-value
(`reports.stats.delong_paired_test`), and the differences of TPR at FPR 0.1 and FPR at TPR 0.95
(scikit-learn, `benchmarks.core.metrics`). Then the mean difference over those seeds with its
Student-t 95% interval (two seeds or more), the seed-to-seed view beside the report's pooled test.
A test set with fewer than two positives or negatives gives no DeLong interval and no p (—), and says so.
ROW is a leaderboard row label as the report prints it: `alm`, or `alm(mu0=0.0001)` for one of a
method's variants; the choices are listed when it matches none. Markdown goes to stdout.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import norm

from benchmarks.core.cli import ArgumentParser, counted, fail
from benchmarks.core.errors import CritBenchError
from benchmarks.core.metrics import METRICS
from reports.display import interval_text, number, p_value, signed
from reports.leaderboard import BASELINE, DatasetSummary, build_leaderboard
from reports.published import seed_interval
from reports.runs import load_runs
from reports.settings import LEVEL, LEVEL_TEXT
from reports.stats import Interval, PairedTest, delong_paired_test, interval_shortfall

AUC, *OPERATING_POINTS = METRICS  # AUC; TPR@FPR=0.1 and FPR@TPR=0.95
Z_LEVEL = float(norm.ppf(0.5 + LEVEL / 2))  # 1.96: the normal quantile of a two-sided LEVEL interval


@dataclass(frozen=True)
class SeedPair:
    """One training seed both rows ran on one test set: the paired DeLong test of their test AUCs,
    its interval (None: `interval_shortfall`), and the differences of the operating-point metrics
    (row minus baseline)."""

    seed: int
    test: PairedTest
    low: float | None
    high: float | None
    operating: tuple[float, ...]  # per OPERATING_POINTS


@dataclass(frozen=True)
class SeedPairs:
    """A row against the baseline, seed by seed, and the mean difference of each metric over the
    seeds with its Student-t interval (None below two seeds), and why some seeds have no DeLong
    interval ("too few positives (1) for an interval"), "" where all have one."""

    method: str
    baseline: str
    pairs: list[SeedPair]
    means: tuple[float, ...]  # per METRICS
    intervals: tuple[Interval | None, ...]
    no_interval: str = ""


def seed_pairs(summary: DatasetSummary, method: str, baseline: str) -> SeedPairs | None:
    """`method` against `baseline` (row labels) in one dataset column, None when the column lacks
    either row or they share no seed on one test set."""
    cells = {row.label: cell for row, cell in summary.cells.items()}
    if method not in cells or baseline not in cells:
        return None
    base_runs = {(run.seed, run.test_set): run for run in cells[baseline].runs if run.usable}
    matched = sorted(((run, base_runs[run.seed, run.test_set]) for run in cells[method].runs
                      if run.usable and (run.seed, run.test_set) in base_runs), key=lambda pair: pair[0].seed)
    if not matched:
        return None
    pairs = []
    for run, base in matched:
        test = delong_paired_test(run.y_true, run.y_score, base.y_score)
        low, high = (None, None) if test.se is None else (test.diff - Z_LEVEL * test.se, test.diff + Z_LEVEL * test.se)
        pairs.append(SeedPair(run.seed, test, low, high,
                              tuple(run.metric(metric) - base.metric(metric) for metric in OPERATING_POINTS)))
    columns = [[pair.test.diff for pair in pairs]] + [[pair.operating[i] for pair in pairs]
                                                     for i in range(len(OPERATING_POINTS))]
    short = "; ".join(dict.fromkeys(why for run, _ in matched if (why := interval_shortfall(run.y_true))))
    return SeedPairs(method, baseline, pairs, tuple(sum(values) / len(values) for values in columns),
                     tuple(seed_interval(values, bounds=(-1.0, 1.0)) for values in columns), short)


def markdown(title: str, found: SeedPairs) -> list[str]:
    """The Markdown table of one `seed_pairs` result under a `### title` heading."""
    deltas = " | ".join(f"Δ{metric.label}" for metric in OPERATING_POINTS)
    lines = [f"### {title}", "",
             f"| training seed | {found.baseline} AUC | {found.method} AUC | ΔAUC [{LEVEL_TEXT} DeLong] | "
             f"p (paired DeLong) | {deltas} |",
             "|---|---|---|---|---|" + "---|" * len(OPERATING_POINTS)]
    for pair in found.pairs:
        operating = " | ".join(signed(diff) for diff in pair.operating)
        interval = "" if pair.low is None else f" {interval_text(pair.low, pair.high, signed)}"
        lines.append(f"| {pair.seed} | {number(pair.test.auc_b)} | {number(pair.test.auc_a)} | {signed(pair.test.diff)}"
                     f"{interval} | {p_value(pair.test.p)} | {operating} |")
    over = [f"{signed(mean)} {interval_text(interval.low, interval.high, signed)}" if interval else signed(mean)
            for mean, interval in zip(found.means, found.intervals)]
    lines.append(f"| mean over {counted(len(found.pairs), 'seed')} [{LEVEL_TEXT} t] | | | {over[0]} | | {' | '.join(over[1:])} |")
    if found.no_interval:
        lines += ["", f"No DeLong interval and no p (—): {found.no_interval}."]
    return lines


def paired_report(runs_dirs, method: str, baseline: str = BASELINE) -> str:
    """The markdown of every dataset column where `method` and `baseline` share seeds."""
    board = build_leaderboard(load_runs(runs_dirs))
    labels = sorted({row.label for summary in board.datasets for row in summary.cells})
    for name, flag in ((method, "--method"), (baseline, "--baseline")):
        if name not in labels:
            raise CritBenchError(f"{flag} {name!r} is no row of these records; rows: {', '.join(labels)} "
                                 f"(a method's variant reads as the report prints it, e.g. alm(mu0=0.0001))")
    if method == baseline:
        raise CritBenchError(f"--method and --baseline are both {method!r}; compare two different rows")
    blocks = [markdown(summary.key.label, found) for summary in board.datasets
              if (found := seed_pairs(summary, method, baseline))]
    if not blocks:
        raise CritBenchError(f"{method} and {baseline} share no seed scored on one test set in any dataset column; "
                             f"train the missing seeds (same suite, same --seeds) and rerun")
    return "\n\n".join("\n".join(lines) for lines in blocks) + "\n"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m reports.paired", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, type=Path, nargs="+", metavar="DIR",
                        help="folder(s) holding run records (searched recursively)")
    parser.add_argument("--method", required=True, metavar="ROW", help="the row to test, e.g. alm or alm(mu0=0.0001)")
    parser.add_argument("--baseline", default=BASELINE, metavar="ROW", help=f"the row it is paired with (default {BASELINE})")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Print the paired tables; the exit code (2: bad input)."""
    args = build_parser().parse_args(argv)
    try:
        sys.stdout.write(paired_report(args.runs, args.method, args.baseline))
    except CritBenchError as error:
        return fail(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
