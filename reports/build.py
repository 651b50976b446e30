"""`python -m reports.build --runs DIR [DIR ...] --out report.html`: one self-contained, offline HTML report.

Reads every complete run record under each DIR (recursively; a run id met twice counts once), lists the failure records, and writes the
report plus `leaderboard.csv`, `leaderboard.md` and `leaderboard.tex` next to it (reports/report.py).
Every file it cannot use is skipped with one line on stderr naming it and why, and counted in the
report. On stderr it then prints the leaderboard, a verdict per dataset and what to run next; the
last stdout line is the report's path.
"""
from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.core.cli import ArgumentParser, fail
from benchmarks.core.errors import CritBenchError
from benchmarks.core.storage import write_problem
from reports.report import PLOTLY_MODES, report_outputs, write_report
from reports.runs import load_runs


def output_problem(out: Path) -> str | None:
    """Why the report cannot be written at `--out` (checked before reading any record)."""
    if out.is_dir():
        return f"--out {out} is a folder; give the HTML file to write, e.g. --out {out / 'report.html'}"
    for path in report_outputs(out):
        if problem := write_problem(path):
            return f"--out {out}: {problem}; choose an --out in a folder you can write"
    return None


def build_parser() -> ArgumentParser:
    """The flags of `python -m reports.build`."""
    parser = ArgumentParser(prog="python -m reports.build", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, type=Path, nargs="+", metavar="DIR",
                        help="folder(s) holding run records (searched recursively); several folders make one report, "
                             "e.g. a new method's runs beside committed baselines")
    parser.add_argument("--out", default=Path("report.html"), type=Path,
                        help="HTML file to write (default report.html); leaderboard.csv/.md/.tex go beside it")
    add_plotly_argument(parser)
    return parser


def add_plotly_argument(parser) -> None:
    """--plotly (also `benchmarks.leaderboard`'s)."""
    parser.add_argument("--plotly", choices=PLOTLY_MODES, default="embed",
                        help="embed: plotly.js inside the HTML (default; works offline); cdn: loaded from "
                             "cdn.plot.ly when the report opens (a file smaller by plotly.js's ~4.8 MB)")


def main(argv: list[str] | None = None) -> int:
    """Write the report of the records under --runs; the exit code (2: bad input or unwritable --out, 130: Ctrl-C)."""
    args = build_parser().parse_args(argv)
    if problem := output_problem(args.out):
        return fail(problem)
    try:
        loaded = load_runs(args.runs)
        loaded.report_skipped()
        path = write_report(loaded, args.runs, args.out, args.plotly, summary=sys.stderr)
    except CritBenchError as error:
        return fail(str(error))
    except OSError as error:
        return fail(f"--out {args.out}: cannot write {error.filename or args.out} ({error.strerror or error}); "
                    f"free space or choose another --out, then rerun")
    except KeyboardInterrupt:
        return fail("interrupted (Ctrl-C); no file is left half-written: rerun the same command", code=130)
    skipped = f"; skipped files: {len(loaded.skipped)} (listed above)" if loaded.skipped else ""
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB), leaderboard.csv, .md and .tex{skipped}", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
