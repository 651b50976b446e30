"""`python -m reports.build --runs DIR --out report.html`: one self-contained, offline HTML report.

Reads every complete run record under DIR (recursively), lists the failure records, and writes the
report plus `leaderboard.csv` and `leaderboard.md` next to it (reports/report.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.core.cli import ArgumentParser, fail
from benchmarks.core.errors import CritBenchError
from reports.report import build_report


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m reports.build", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, type=Path, help="folder holding run records (searched recursively)")
    parser.add_argument("--out", default=Path("report.html"), type=Path,
                        help="HTML file to write (default report.html); leaderboard.csv/.md go beside it")
    args = parser.parse_args(argv)
    try:
        path = build_report(args.runs, args.out)
    except CritBenchError as error:
        return fail(str(error))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB), leaderboard.csv and leaderboard.md", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
