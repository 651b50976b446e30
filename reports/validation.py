"""`python -m reports.validation --runs results/validation --readme README.md --docs docs/validation.md`:
the Validation tables, generated from the committed records, so they grow as records land.

For each dataset x method row: the number of runs, the mean test AUC with its 95% interval over
seeds, the published value it is compared with and the verdict (reports/published.toml), the paired
comparison with bce on the same seeds (paired DeLong on the seed-ensembled scores, whose AUCs it
shows: they are not the per-seed means), the device, the dates and wall time of the runs, and a
`benchmarks.run` command that retrains the row's first run alone into the --runs folder (with
`--data-dir DIR`: the recorded paths are the measuring machine's). README.md keeps the summary (the
columns up to the paired comparison), docs/validation.md the full table.
"""
from __future__ import annotations

import math
import re
import shlex
import sys
from pathlib import Path

from benchmarks.core.cli import ArgumentParser, fail
from benchmarks.core.config import RunConfig, rerun_command
from benchmarks.core.errors import CritBenchError
from benchmarks.core.storage import write_text_atomic
from reports.display import number, signed
from reports.leaderboard import build_leaderboard
from reports.published import SCORED, Comparison, float_or_nan, published_comparisons, seed_interval
from reports.runs import Run, load_runs
from reports.stats import PairedTest

START, END = "<!-- validation:start -->", "<!-- validation:end -->"


def date_range(runs: list[Run]) -> str:
    """The first and last day the runs finished (UTC); records that predate `finished_at` are left
    out, "—" when none has it."""
    days = sorted({run.record["finished_at"][:10] for run in runs if run.record.get("finished_at")})
    return " to ".join(dict.fromkeys([days[0], days[-1]])) if days else "—"


def rerun_one(run: Run, runs_dir: Path) -> str:
    """The `benchmarks.run` command that retrains exactly this run into `runs_dir`, where it finds the
    committed record (`--force` retrains over it), with the same run id (see `rerun_command`)."""
    config = RunConfig(**{k: v for k, v in run.config.items() if k in RunConfig.__dataclass_fields__})
    return " ".join([rerun_command(config), "--data-dir DIR --out", shlex.quote(str(runs_dir))])


def device(run: Run) -> str:
    """The run's device as the table shows it: its name, the CPU model when the name lacks it, the precision."""
    env = run.record.get("env", {})
    name = re.sub(r"\b1 threads\b", "1 thread", str(env.get("device_name", env.get("device", "?"))))
    cpu = f" ({env['cpu']})" if env.get("cpu") and env["cpu"] not in name else ""  # a CPU device names it already
    return f"{name}{cpu}, {env.get('precision', '?')}"


def published_text(compared: Comparison | None) -> str:
    """The published value a row is compared with, the verdict, and what was compared where it is
    not the table's critical-class test AUC (with the reference's caveat)."""
    if compared is None:
        return "—"
    ref = compared.reference
    text = f"{number(ref.value, ref.decimals)} {ref.label} ({compared.verdict})"
    if ref.scored != SCORED[0]:
        text += f", vs {ref.compared_on} {number(compared.mean, ref.decimals)}"
    if ref.top1:
        text += f" (selected on validation: {number(compared.selected, ref.decimals)})"
    return text + (f"; {ref.caveat}" if ref.caveat else "")


def paired_text(test: PairedTest | None) -> str:
    """The paired DeLong test against bce on the seed ensembles of the seeds both rows have: both
    ensembles' AUCs (not the per-seed means beside them), the difference and p (— where the test set
    has too few positives or negatives for one)."""
    if test is None:
        return "—"
    p = "—" if test.p is None else f"{test.p:.3g}"
    return f"ensembles {number(test.auc_a)} vs {number(test.auc_b)}: ΔAUC {signed(test.diff)}, p {p}"


COLUMNS = ("dataset", "method", "n", "test AUC, mean [95% CI over seeds]", "published (verdict)",
           "vs bce: seed ensembles on common seeds, paired DeLong",
           "device", "dates", "wall per run", "rerun one")
SUMMARY_COLUMNS = COLUMNS.index("vs bce: seed ensembles on common seeds, paired DeLong") + 1  # README's summary: what was measured and how it compares


def table_rows(runs_dir: Path) -> list[tuple[str, ...]]:
    """One row of COLUMNS per dataset x method for the records under `runs_dir` (each file skipped
    is named on stderr, with why)."""
    loaded = load_runs(runs_dir)
    loaded.report_skipped()
    if not loaded.runs:
        return []
    board = build_leaderboard(loaded)
    published = published_comparisons(board)
    rows = []
    for summary in board.datasets:
        refs = published.get(summary.key.anchor)
        comparisons = {c.row: c for c in refs.comparisons} if refs else {}
        for row, cell in summary.cells.items():
            aucs = [float_or_nan(run.record["test"].get("auc")) for run in cell.runs]
            finite = [value for value in aucs if math.isfinite(value)]
            interval = seed_interval(finite)
            auc = (number(sum(finite) / len(finite)) if finite else "—") + (
                f" {interval.text()}" if interval else "") + (
                f" ({len(aucs) - len(finite)} of {len(aucs)} runs without a finite test AUC)" if len(finite) < len(aucs) else "")
            paired = paired_text(cell.vs_baseline)
            wall = sum(run.seconds for run in cell.runs) / len(cell.runs) / 60
            rows.append((summary.key.label, row.label, str(len(cell.runs)), auc, published_text(comparisons.get(row)), paired,
                         "; ".join(sorted({device(run) for run in cell.runs})), date_range(cell.runs),
                         f"{wall:.0f} min", f"`{rerun_one(cell.runs[0], runs_dir)}`"))
    return rows


def markdown(rows: list[tuple[str, ...]], columns: int = len(COLUMNS)) -> str:
    """The Markdown table of the first `columns` COLUMNS of `rows`."""
    lines = [f"| {' | '.join(line)} |" for line in (COLUMNS[:columns], *(row[:columns] for row in rows))]
    lines.insert(1, "|" + "---|" * columns)
    return "\n".join(lines) + "\n"


def marked_text(flag: str, path: Path) -> str:
    """The text of the file `flag` names, which must hold the validation markers (checked for every
    file before any is rewritten)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise CritBenchError(f"cannot read {flag} {path} ({why}); pass the Markdown file that holds the Validation "
                             f"table (README.md for --readme, docs/validation.md for --docs)") from None
    if START not in text or END not in text:
        raise CritBenchError(f"{path} has no {START} ... {END} markers; add them where the table belongs")
    return text


def replace_between_markers(path: Path, text: str, generated: str, command: str) -> Path:
    """Write `path` as its `text` with what lies between the validation markers replaced by `generated`."""
    body = f"{START}\n<!-- generated by `{command}` -->\n{generated}{END}"
    return write_text_atomic(path, re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: body, text, flags=re.S))


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m reports.validation", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("results/validation"), help="records (default results/validation)")
    parser.add_argument("--readme", type=Path, help="rewrite this file's Validation summary (the first columns)")
    parser.add_argument("--docs", type=Path, help="rewrite this file's full Validation table")
    return parser


def main(argv=None) -> int:
    """Print the full table, or rewrite it (--docs) and the summary (--readme) between their markers."""
    args = build_parser().parse_args(argv)
    outputs = [(flag, path, columns) for flag, path, columns in
               (("--readme", args.readme, SUMMARY_COLUMNS), ("--docs", args.docs, len(COLUMNS))) if path]
    command = shlex.join(["python", "-m", "reports.validation", "--runs", str(args.runs),
                          *(part for flag, path, _ in outputs for part in (flag, str(path)))])
    try:
        texts = [marked_text(flag, path) for flag, path, _ in outputs]
        rows = table_rows(args.runs)
        if not rows:  # an empty table would replace the committed one
            raise CritBenchError(f"no complete run record under --runs {args.runs}; pass the folder of the validation "
                                 f"records (default results/validation)")
        if not outputs:
            print(markdown(rows), end="")
        for (_, path, columns), text in zip(outputs, texts):
            print(replace_between_markers(path, text, markdown(rows, columns), command))
    except CritBenchError as error:
        return fail(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
