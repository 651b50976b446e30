"""The HTML report of a runs folder: one self-contained offline file (plotly.js embedded once from
the plotly package; no network address anywhere), or a small one loading plotly.js from its CDN
(`plotly="cdn"`), with `leaderboard.csv`, `leaderboard.md` and `leaderboard.tex` beside it."""
from __future__ import annotations

from datetime import datetime, timezone
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from benchmarks.core.errors import CritBenchError
from benchmarks.core.metrics import ECE_BINS, METRICS, metric_label
from benchmarks.core.phases import timed
from benchmarks.core.storage import write_text_atomic
from reports.deployed import run_points
from reports.display import mean_pm_std, number, p_value, percent_of, signed
from reports.dose_response import dataset_responses, failed_rows, table as dose_table, titles
from reports.figures import confusion_figure, dose_figure, roc_figure, row_colors, schedule_figure, training_figure
from reports.leaderboard import BASELINE, MEDMNIST_METRICS, Leaderboard, build_leaderboard
from reports.leaderboard_table import LeaderboardTable, leaderboard_table
from reports.longtail import CHECKPOINTS, long_tail_section, run_class_rows
from reports.paired import OPERATING_POINTS, seed_pairs
from reports.published import DatasetReferences, published_comparisons
from reports.runs import Failure, Loaded, Run, load_runs, run_folders, slug
from reports.settings import LEVEL_TEXT, N_BOOTSTRAP, SIGNIFICANCE
from reports.tables import write_csv, write_latex, write_markdown
from reports.terminal import summary_text
from reports.tuning import budgets, load_searches
from reports.verdicts import Verdict, verdicts

PLOTLY_MODES = ("embed", "cdn")  # plotly.js inside the file (offline, ~4.7 MB) or from cdn.plot.ly (needs network)
CALIBRATION_LABELS = (("brier", "Brier score"), (f"ece_{ECE_BINS}", f"expected calibration error ({ECE_BINS} equal-width bins)"))


def flatten(mapping: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested dict -> [("a.b", value), ...] for key/value tables."""
    items = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        items += flatten(value, name + ".") if isinstance(value, dict) and value else [(name, value)]
    return items


def metric_rows(record: dict) -> list[tuple[str, object, object]]:
    """(label, validation value, test value) for every metric of a run record."""
    val = dict(flatten(record.get("val") or {}))
    return [(metric_label(key), val.get(key), value) for key, value in flatten(record["test"])]


def value_text(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "—" if value is None else (str(value) or '""')


def template_environment() -> Environment:
    env = Environment(loader=PackageLoader("reports", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=number, pm=mean_pm_std, pvalue=p_value, signed=signed, percent_of=percent_of,
                       flatten=flatten, metric_rows=metric_rows, value=value_text, run_points=run_points,
                       class_rows=run_class_rows)
    return env


def plotly_script(plotly: str) -> Markup:
    """The <script> element that loads plotly.js: embedded, or the URL plotly's own
    `to_html(include_plotlyjs="cdn")` writes, for the installed version."""
    if plotly == "cdn":
        return Markup(f'<script src="https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js" charset="utf-8"></script>')
    return Markup(f"<script>{get_plotlyjs()}</script>")


def dose_sections(runs: list[Run], failures: list[Failure]) -> list[dict]:
    """Each dose-response among a dataset's runs (reports.dose_response): heading, figure and table,
    whose rows include the values whose run failed (a diverged ALM)."""
    responses = dataset_responses(runs)
    return [dict(title=title, anchor=slug(f"dose-{title}"), figure=Markup(dose_figure(response)),
                 table=dose_table(response.points, response.param, failed_rows(failures, response)))
            for response, title in zip(responses, titles(responses))]


def render_report(loaded: Loaded, runs_dir: Path | Sequence[Path], plotly: str = "embed") -> tuple[str, Leaderboard, LeaderboardTable,
                                                                               dict[str, DatasetReferences], list[Verdict]]:
    """The report's HTML, the leaderboard it shows, its table, its published comparisons and verdicts."""
    folders = run_folders(runs_dir)
    folders_text = " ".join(map(str, folders))
    if not loaded.runs and not loaded.failures:
        skipped = f" (skipped files: {len(loaded.skipped)})" if loaded.skipped else ""
        out = folders[0] if len(folders) == 1 else "DIR"
        raise CritBenchError(f"no usable run records (*.json) under {folders_text}{skipped}; write some with "
                             f"`python -m benchmarks.run ... --out {out}` or the leaderboard first")
    board = build_leaderboard(loaded)
    colors = row_colors(board.rows)
    figures = {d.key.anchor: {"roc": Markup(roc_figure(d, colors)) if d.roc_scores else None,
                              "training": Markup(training_figure(d, colors)),
                              "confusion": Markup(matrix) if (matrix := confusion_figure(d)) else None} for d in board.datasets}
    doses = {d.key.anchor: dose_sections(d.runs, loaded.failures) for d in board.datasets}
    long_tails = {d.key.anchor: long_tail_section(d) for d in board.datasets}
    seed_tables = {d.key.anchor: [(row, found) for row in d.cells if d.baseline is not None and row != d.baseline
                                  and (found := seed_pairs(d, row.label, d.baseline.label))] for d in board.datasets}
    published = published_comparisons(board)
    table = leaderboard_table(board, published)
    counts = {"runs": len(loaded.runs), "datasets": len(board.datasets), "rows": len(board.rows),
              "failed": sum(not failure.retried for failure in loaded.failures), "skipped": len(loaded.skipped)}
    found = verdicts(board)
    schedules = {run.anchor: Markup(schedule_figure(run, colors[row])) for d in board.datasets
                 for row, cell in d.cells.items() for run in cell.runs}
    html = template_environment().get_template("report.html.j2").render(
        board=board, table=table, counts=counts, metrics=METRICS, medmnist_metrics=MEDMNIST_METRICS, calibration_labels=CALIBRATION_LABELS, colors=colors,
        figures=figures, schedules=schedules, doses=doses, published=published, baseline=BASELINE,
        long_tails=long_tails, checkpoints=CHECKPOINTS, seed_tables=seed_tables, operating_points=OPERATING_POINTS,
        verdicts={verdict.anchor: verdict for verdict in found}, plotly=plotly,
        n_bootstrap=N_BOOTSTRAP, level=LEVEL_TEXT, significance=SIGNIFICANCE,
        runs_dir=folders_text, searches=(searches := [section for folder in folders for section in load_searches(folder)]),
        search_budgets=budgets(searches) if searches else "",
        plotly_script=plotly_script(plotly),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    return html, board, table, published, found


def report_outputs(out_html: Path) -> list[Path]:
    """Every file a report writes: leaderboard.csv, .md, .tex and the HTML, in writing order."""
    out_html = Path(out_html)
    return [out_html.parent / f"leaderboard.{suffix}" for suffix in ("csv", "md", "tex")] + [out_html]


def write_report(loaded: Loaded, runs_dir: Path | Sequence[Path], out_html: Path, plotly: str = "embed",
                 summary: TextIO | None = None) -> Path:
    """Write the HTML report of `loaded`, plus leaderboard.csv/.md/.tex beside it, each atomically;
    print the leaderboard and the verdicts to `summary` when given (the commands' terminal)."""
    html, board, table, published, found = render_report(loaded, runs_dir, plotly)
    csv_path, markdown_path, latex_path, out_html = report_outputs(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    write_csv(table, board, published, csv_path)
    write_markdown(table, board, published, markdown_path)
    write_latex(table, latex_path)
    path = write_text_atomic(out_html, html)
    if summary is not None:
        print(summary_text(table, found, board, runs_dir, path), file=summary, flush=True)
    return path


@timed("report")
def build_report(runs_dir: Path | Sequence[Path], out_html: Path, plotly: str = "embed", summary: TextIO | None = None) -> Path:
    """Write the HTML report of every record under `runs_dir` (a folder or several), plus leaderboard.csv/.md/.tex beside
    it; print the leaderboard, verdicts and next steps to `summary` when given."""
    return write_report(load_runs(runs_dir), runs_dir, out_html, plotly, summary)
