"""leaderboard.csv, leaderboard.md and leaderboard.tex: the leaderboard table
(reports/leaderboard_table.py) as a tidy CSV (one line per dataset x method row x kind, with the raw
values and further statistics, and one per skipped record file), as Markdown tables plus the
published comparisons, and as one LaTeX table (pandas' Styler).

The Markdown is written here, not by pandas' `to_markdown`, which needs the `tabulate` package and
cannot bold single cells."""
from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

from benchmarks.core.storage import write_text_atomic
from reports.deployed import CALIBRATION_KEYS, POINTS, RATES
from reports.display import number
from reports.leaderboard import BASELINE, Cell, DatasetKey, Leaderboard
from reports.leaderboard_table import Column, Entry, Fragment, LeaderboardTable, Row, Value, reference_auc
from reports.published import SCORED, DatasetReferences, Reference
from reports.settings import LEVEL, LEVEL_TEXT

CI = f"ci{round(LEVEL * 100)}"  # CSV column names of an interval's ends: auc_ci95_low
ROW_SUFFIX = {"seeds": "", "published": " (published)", "ensemble": " (seed ensemble)"}
MARKDOWN_STYLES = {"strong": "**{}**", "emphasis": "*{}*"}


def deployed_columns(cell: Cell) -> dict:
    """Every operating point's test TPR and FPR (mean, std, CI, and over how many runs: records written
    before operating points have none) and the test calibration (mean, std) of a cell; empty values
    where its records have none."""
    line = {}
    for kind, level, _ in POINTS:
        found = cell.deployed.get((kind, level)) or {}
        for rate in RATES:
            value = found.get(rate)
            prefix = f"test_{rate}_at_val_{kind}_{level}"
            line.update({f"{prefix}_mean": value and value.mean, f"{prefix}_std": value and value.std,
                         f"{prefix}_{CI}_low": value and value.low, f"{prefix}_{CI}_high": value and value.high,
                         f"{prefix}_n_runs": value and value.runs})
    for key in CALIBRATION_KEYS:
        line[f"test_{key}_mean"], line[f"test_{key}_std"] = cell.calibration.get(key, (None, None))
    return line


def _csv_value(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def dataset_columns(key: DatasetKey) -> dict:
    return {"dataset": key.name, "imbalance": key.imbalance, "size": key.size,
            "max_train_samples": key.max_train_samples, **dict(key.budget), "smoke_suite": key.smoke or None,
            "data_md5": key.source_md5}


def skipped_csv_rows(board: Leaderboard) -> list[dict]:
    """One line (kind "skipped") per record file the report could not use, with why."""
    return [{"kind": "skipped", "file": str(path), "reason": why} for path, why in board.loaded.skipped]


def pooled_columns(column: Column, cell: Cell) -> dict:
    """The pooled AUC with its DeLong and bootstrap CIs and the paired DeLong test against the
    baseline: statistics of the seed-ensembled scores where the seeds share a test set (so they go
    on the seed_ensemble line), of the per-seed test sets otherwise (on the seeds line)."""
    line = {"pooled_auc_estimate": "seed ensemble" if column.shared_test_set else "mean of per-seed test sets",
            "pooled_auc": cell.pooled_auc}
    for name, interval in (("delong", cell.delong), ("bootstrap", cell.bootstrap)):
        line[f"pooled_auc_{name}_low"] = interval.low if interval else None
        line[f"pooled_auc_{name}_high"] = interval.high if interval else None
    test = cell.vs_baseline
    line[f"auc_diff_vs_{BASELINE}"], line[f"p_vs_{BASELINE}"] = (test.diff, test.p) if test else (None, None)
    return line


def seeds_csv_row(table: LeaderboardTable, column: Column, row: Row, entry: Entry) -> dict:
    """A method row's mean over seeds on one dataset: the table's values raw with their bold marks,
    then its cell's further statistics (the pooled AUC where the seeds have no shared test set,
    every operating point, calibration)."""
    cell = entry.stats
    line = {**dataset_columns(column.key), "method": row.label, "kind": "seeds", "n_seeds": entry.n_seeds,
            "rank": entry.rank, "mean_rank": row.mean_rank.mean, "mean_rank_best": row.mean_rank.best,
            "val_auc_mean": cell.val_auc[0], "val_auc_std": cell.val_auc[1], "selected_on_validation": cell.selected,
            "tuned_values": cell.chosen}
    for metric, value in zip(table.metrics, entry.metrics):
        line.update({f"{metric.key}_mean": value.mean, f"{metric.key}_std": value.std, f"{metric.key}_best": value.best})
    if not column.shared_test_set:
        line.update(pooled_columns(column, cell))
    return {**line, **deployed_columns(cell)}


def ensemble_csv_row(table: LeaderboardTable, column: Column, row: Row, entry: Entry) -> dict:
    """A method row's seed ensemble on one dataset: the table's values raw with their bold marks,
    and the pooled AUC's statistics, which are the ensemble's."""
    line = {**dataset_columns(column.key), "method": row.label, "kind": "seed_ensemble", "n_seeds": entry.n_seeds,
            "rank": entry.rank, "mean_rank": row.mean_rank.mean, "mean_rank_best": row.mean_rank.best}
    for metric, value in zip(table.metrics, entry.metrics):
        line.update({f"{metric.key}_mean": value.mean, f"{metric.key}_best": value.best})
    return {**line, **pooled_columns(column, entry.stats)}


def method_csv_rows(table: LeaderboardTable) -> list[dict]:
    """Per dataset, each method row that ran on it: its seeds line, then its seed-ensemble line."""
    seeds, ensembles = ([row for row in table.rows if row.kind == kind] for kind in ("seeds", "ensemble"))
    ensembles = {row.key: row for row in ensembles}
    rows = []
    for index, column in enumerate(table.columns):
        for row in seeds:
            if row.entries[index].n_seeds is not None:
                rows.append(seeds_csv_row(table, column, row, row.entries[index]))
            ensemble = ensembles.get(row.key)
            if ensemble is not None and ensemble.entries[index].n_seeds is not None:
                rows.append(ensemble_csv_row(table, column, ensemble, ensemble.entries[index]))
    return rows


def published_csv_rows(table: LeaderboardTable, published: dict[str, DatasetReferences]) -> list[dict]:
    """Per dataset: one line per published row of the table (kind "published") and per CritBench row
    compared with it (kind "vs_published": mean and CI of the test AUC over seeds, the published
    AUC, the verdict)."""
    rows = []
    for index, column in enumerate(table.columns):
        common = dataset_columns(column.key)
        for row in table.rows:
            ref = row.entries[index].reference
            if ref is not None:
                rows.append(published_csv_row(common, ref))
        refs = published.get(column.key.anchor)
        for ref in refs.references if refs else ():
            if ref.scored != SCORED[0]:  # not a table row: shown in its dataset's section only
                rows.append(published_csv_row(common, ref))
        for c in refs.comparisons if refs else ():
            value = "top1_last_epoch" if c.reference.top1 else "auc"
            rows.append({**common, "method": c.row.label, "kind": "vs_published", "n_seeds": c.n, f"{value}_mean": c.mean,
                         f"{value}_{CI}_low": c.interval.low if c.interval else None,
                         f"{value}_{CI}_high": c.interval.high if c.interval else None,
                         **({"top1_selected_mean": c.selected} if c.reference.top1 else {}),
                         "published": c.reference.label, f"published_{'top1' if c.reference.top1 else 'auc'}": c.reference.value,
                         "verdict": c.verdict, "caveat": c.reference.caveat or None})
    return rows


def published_csv_row(common: dict, ref: Reference) -> dict:
    return {**common, "method": ref.label, "kind": "published", "n_seeds": ref.n_seeds, "scored": ref.scored,
            "auc_mean": ref.auc, "auc_std": ref.auc_std, "acc": ref.acc, "source": ref.source, "protocol": ref.protocol}


def write_csv(table: LeaderboardTable, board: Leaderboard, published: dict[str, DatasetReferences], path: Path) -> Path:
    """Columns in order of first appearance; a line without a column leaves it empty."""
    rows = method_csv_rows(table) + published_csv_rows(table, published) + skipped_csv_rows(board)
    frame = pd.DataFrame([{k: _csv_value(v) for k, v in line.items()} for line in rows], dtype=object)
    return write_text_atomic(path, frame.to_csv(index=False, lineterminator="\r\n"))


def markdown_escape(text: str) -> str:
    """`text` from the records (a class or parameter name in a label) as literal Markdown: no raw
    HTML (`<`, `>`, `&` as entities) and no table-cell break (`|` escaped)."""
    return html.escape(str(text), quote=False).replace("|", "\\|")


def markdown_text(fragments: list[Fragment]) -> str:
    return "".join(MARKDOWN_STYLES.get(part.style, "{}").format(markdown_escape(part.text)) for part in fragments)


def markdown_cell(value: Value | None) -> str:
    """A cell as Markdown: bold when best, then its small suffix and its interval."""
    if value is None:
        return "—"
    text = f"**{value.text}**" if value.best else value.text
    return " ".join(part for part in (text, value.suffix, value.interval_text) if part)


def row_label(row: Row) -> str:
    label = f"*{markdown_escape(row.label)}*" if row.kind == "published" else markdown_escape(row.label)
    return label + (" ✓" if row.selected else "") + ROW_SUFFIX[row.kind]


def markdown_section(title: str, table: LeaderboardTable, cells, ranked: bool = False) -> list[str]:
    """One Markdown table, methods x datasets: `cells(entry)` is the Value of a row on a dataset; a
    row without any (a column that does not apply to it) is left out."""
    header = [markdown_escape(column.key.label) for column in table.columns] + (["mean rank", "seeds"] if ranked else [])
    out = [f"## {title}", "", "| method | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for row in table.rows:
        values = [cells(entry) for entry in row.entries]
        if all(value is None for value in values):
            continue
        shown = [markdown_cell(value) for value in values] + ([markdown_cell(row.mean_rank), row.seeds] if ranked else [])
        out.append(f"| {row_label(row)} | " + " | ".join(shown) + " |")
    return out + [""]


def markdown(table: LeaderboardTable, skipped: int) -> str:
    """One table per metric (seed rows, published rows, then seed-ensemble rows) and per deployed
    rate; bold = best."""
    out = ["# CritBench leaderboard", "", markdown_text(table.explained("markdown")), ""]
    if skipped:
        out += [f"{skipped} record files were skipped as unusable; leaderboard.csv lists them (kind `skipped`) "
                f"with why.", ""]
    for index, metric in enumerate(table.metrics):
        out += markdown_section(metric.label, table, lambda entry: entry.metrics[index], ranked=index == 0)
    for index, rate in enumerate(table.rates):
        out += markdown_section(f"Test {rate.upper()} at the validation TPR ≥ {table.level} threshold", table,
                                lambda entry: entry.deployed[index])
    return "\n".join(out)


def published_markdown(board: Leaderboard, published: dict[str, DatasetReferences]) -> str:
    """Per dataset: the published values, then each CritBench row with the same protocol and its verdict."""
    out = ["## Published results", "",
           "Published test results (reports/published.toml) and the CritBench rows that run the same protocol: "
           f"the mean of what the reference scores (a test AUC, or the last epoch's test top-1: CritBench never "
           f"selects on test) with its {LEVEL_TEXT} Student-t interval over seeds, and whether the published value "
           "lies inside (consistent), above (below) or under it (above); fewer than 3 seeds give no verdict, and an "
           "interval cut at the values' range says (clipped).", ""]
    for dataset in board.datasets:
        refs = published.get(dataset.key.anchor)
        if refs is None:
            continue
        out += [f"### {markdown_escape(dataset.key.label)}", "", "| row | seeds | scored | value | published | verdict | source |",
                "|---|---|---|---|---|---|---|"]
        for ref in refs.references:
            value = number(ref.acc, ref.decimals) if ref.top1 else reference_auc(ref)
            out.append(f"| *{ref.label}* (published) | {ref.n_seeds or '—'} | {ref.scored} | {value} | | | {ref.source} |")
        for c in refs.comparisons:
            ref, decimals = c.reference, c.reference.decimals
            ci = f" {c.interval.text(decimals)}" if c.interval else ""
            selected = f"; selected on validation {number(c.selected, decimals)}" if ref.top1 else ""
            caveat = f" ({markdown_escape(ref.caveat)})" if ref.caveat else ""
            out.append(f"| {markdown_escape(c.row.label)} | {c.n} | {ref.compared_on} | {number(c.mean, decimals)}{ci}{selected} "
                       f"| {number(ref.value, decimals)} ({ref.label}) | {c.verdict}{caveat} | |")
        out.append("")
    return "\n".join(out) if len(out) > 4 else ""


def write_markdown(table: LeaderboardTable, board: Leaderboard, published: dict[str, DatasetReferences],
                   path: Path) -> Path:
    text = markdown(table, len(board.loaded.skipped)) + "\n" + published_markdown(board, published) + "\n"
    return write_text_atomic(path, text)


LATEX_SYMBOLS = {" · ": ", ", "±": r"$\pm$", "≤": r"$\le$", "≥": r"$\ge$", "—": "--"}


def latex(table: LeaderboardTable) -> str:
    """The leaderboard as one LaTeX table (booktabs rules): a row per table row, a column group per
    dataset with every metric and the test rates at the validation-chosen threshold; the best of a
    column within its block in bold."""
    names = [m.label for m in table.metrics] + [f"test {rate.upper()} at val thr." for rate in table.rates]
    columns = pd.MultiIndex.from_tuples([(column.key.label, name) for column in table.columns for name in names])
    labels, texts, bold = [], [], []
    for row in table.rows:
        values = [value for entry in row.entries for value in (*entry.metrics, *entry.deployed)]
        labels.append(row.label + (" (selected on val)" if row.selected else "") + ROW_SUFFIX[row.kind])
        texts.append(["—" if value is None or value.missing else value.text for value in values])
        bold.append(["textbf:--rwrap;" if value is not None and value.best else "" for value in values])
    frame = pd.DataFrame(texts, index=labels, columns=columns)
    marks = pd.DataFrame(bold, index=labels, columns=columns)
    styler = frame.style.format(escape="latex").format_index(escape="latex", axis=0).format_index(escape="latex", axis=1)
    caption = (f"Test metrics of the checkpoint with the best validation AUC, mean ± std over seeds (seed ensemble: "
               f"the mean test logit over seeds, scored). Test TPR and FPR at val thr.: at each run's threshold "
               f"chosen on validation for TPR ≥ {table.level}. Bold: best of its column within its block.")
    text = styler.apply(lambda _: marks, axis=None).to_latex(
        hrules=True, multicol_align="c", column_format="l" + "r" * len(columns), caption=caption,
        label="tab:critbench-leaderboard", position_float="centering")
    for symbol, command in LATEX_SYMBOLS.items():
        text = text.replace(symbol, command)
    return "% CritBench leaderboard (python -m reports.build); needs \\usepackage{booktabs}\n" + text


def write_latex(table: LeaderboardTable, path: Path) -> Path:
    return write_text_atomic(path, latex(table))
