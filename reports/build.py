"""`python -m reports.build --runs DIR --out report.html`: one self-contained, offline HTML report.

Reads every complete run record under DIR (recursively), lists the failure records, and writes the
report (plotly.js embedded once from the plotly package; no network address anywhere) plus
`leaderboard.csv` and `leaderboard.md` next to it.
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from benchmarks.core.cli import ArgumentParser, fail
from benchmarks.core.errors import CritBenchError
from reports.collect import BASELINE, METRICS, Leaderboard, build_leaderboard, load_runs
from reports.figures import roc_figure, row_colors, training_figure
from reports.tables import mean_pm_std, number, write_csv, write_markdown

METRIC_LABELS = {"auc": "AUC", "tpr_at_fpr": "TPR@FPR={}", "fpr_at_tpr": "FPR@TPR={}",
                 "spauc_0.1": "standardized pAUC (FPR≤0.1)", "acc": "accuracy (logit ≥ 0)"}


def flatten(mapping: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested dict -> [("a.b", value), ...] for key/value tables."""
    items = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        items += flatten(value, name + ".") if isinstance(value, dict) and value else [(name, value)]
    return items


def metric_label(key: str) -> str:
    """`tpr_at_fpr.0.1` -> `TPR@FPR=0.1`; unknown keys unchanged."""
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    head, _, level = key.partition(".")
    label = METRIC_LABELS.get(head, key)
    return label.format(level) if "{}" in label else label


def metric_rows(record: dict) -> list[tuple[str, object, object]]:
    """(label, validation value, test value) for every metric of a run record."""
    val = dict(flatten(record.get("val") or {}))
    return [(metric_label(key), val.get(key), value) for key, value in flatten(record["test"])]


def p_value(p) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def value_text(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "—" if value is None else (str(value) or '""')


def template_environment() -> Environment:
    env = Environment(loader=PackageLoader("reports", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=number, pm=mean_pm_std, pvalue=p_value, flatten=flatten, metric_rows=metric_rows,
                       value=value_text)
    return env


def write_text_atomic(path: Path, text: str) -> Path:
    """Write next to the target and rename, so an interrupted build never leaves half a report."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp creates 0600; a report is meant to be shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def render_report(runs_dir: Path) -> tuple[str, Leaderboard]:
    """The report's HTML and the leaderboard it shows."""
    loaded = load_runs(runs_dir)
    if not loaded.runs and not loaded.failures:
        raise CritBenchError(f"no run records (*.json) under {runs_dir}; write some with "
                             f"`python -m benchmarks.run ... --out {runs_dir}` or the leaderboard first")
    board = build_leaderboard(loaded)
    colors = row_colors(board.rows)
    figures = {d.key.anchor: {"roc": Markup(roc_figure(d, colors)) if d.roc_scores else None,
                              "training": Markup(training_figure(d, colors))} for d in board.datasets}
    html = template_environment().get_template("report.html.j2").render(
        board=board, metrics=METRICS, colors=colors, figures=figures, baseline=BASELINE,
        runs_dir=str(runs_dir),
        plotly_js=Markup(get_plotlyjs()),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    return html, board


def build_report(runs_dir: Path, out_html: Path) -> Path:
    """Write the HTML report of every record under `runs_dir`, plus leaderboard.csv/.md beside it."""
    runs_dir, out_html = Path(runs_dir), Path(out_html)
    html, board = render_report(runs_dir)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    write_csv(board, out_html.parent / "leaderboard.csv")
    write_markdown(board, out_html.parent / "leaderboard.md")
    return write_text_atomic(out_html, html)


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
