"""The leaderboard as a tidy CSV (one line per dataset x method row x kind, and one per skipped
record file) and as Markdown tables."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from benchmarks.core.metrics import METRICS
from benchmarks.core.records import write_text_atomic
from reports.deployed import CALIBRATION_KEYS, LEADERBOARD_POINT, POINTS, RATES, Rate
from reports.leaderboard import DECIMALS, Cell, DatasetKey, Leaderboard
from reports.published import DatasetReferences

ENSEMBLE_SUFFIX = " (seed ensemble)"


def number(value, decimals: int = DECIMALS) -> str:
    """A metric for display: missing as an em dash, NaN (a run with non-finite scores) as NaN."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN"
    return f"{value:.{decimals}f}"


def mean_pm_std(pair) -> str:
    mean, std = pair
    return number(mean) if std is None or not math.isfinite(mean) else f"{number(mean)} ± {number(std)}"


def rate_text(rate: Rate | None) -> str:
    """mean ± std over seeds [95% bootstrap CI], or an em dash where no run recorded the point."""
    if rate is None:
        return "—"
    return f"{mean_pm_std((rate.mean, rate.std))} [{number(rate.low)}, {number(rate.high)}]"


def deployed_columns(cell: Cell) -> dict:
    """Every operating point's test TPR and FPR (mean, std, 95% CI) and the test calibration (mean,
    std) of a cell; empty values where its records have none."""
    line = {}
    for kind, level, _ in POINTS:
        found = cell.deployed.get((kind, level)) or {}
        for rate in RATES:
            value = found.get(rate)
            prefix = f"test_{rate}_at_val_{kind}_{level}"
            line.update({f"{prefix}_mean": value and value.mean, f"{prefix}_std": value and value.std,
                         f"{prefix}_ci95_low": value and value.low, f"{prefix}_ci95_high": value and value.high})
    for key in CALIBRATION_KEYS:
        line[f"test_{key}_mean"], line[f"test_{key}_std"] = cell.calibration.get(key, (None, None))
    return line


def _csv_value(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def dataset_columns(key: DatasetKey) -> dict:
    return {"dataset": key.name, "imbalance": key.imbalance, "size": key.size,
            "max_train_samples": key.max_train_samples, "data_md5": key.source_md5}


def skipped_csv_rows(board: Leaderboard) -> list[dict]:
    """One line (kind "skipped") per record file the report could not use, with why."""
    return [{"kind": "skipped", "file": str(path), "reason": why} for path, why in board.loaded.skipped]


def published_csv_rows(board: Leaderboard, published: dict[str, DatasetReferences]) -> list[dict]:
    """One line per published reference (kind "published") and per CritBench row compared with it
    (kind "vs_published": mean and 95% CI of the test AUC over seeds, the published AUC, the verdict)."""
    rows = []
    for dataset in board.datasets:
        refs = published.get(dataset.key.anchor)
        if refs is None:
            continue
        common = dataset_columns(dataset.key)
        for ref in refs.references:
            rows.append({**common, "method": ref.label, "kind": "published", "n_seeds": ref.n_seeds,
                         "auc_mean": ref.auc, "auc_std": ref.auc_std, "acc": ref.acc, "source": ref.source,
                         "protocol": ref.protocol})
        for c in refs.comparisons:
            rows.append({**common, "method": c.row.label, "kind": "vs_published", "n_seeds": c.n, "auc_mean": c.mean,
                         "auc_ci95_low": c.interval.low if c.interval else None,
                         "auc_ci95_high": c.interval.high if c.interval else None,
                         "published": c.reference.label, "published_auc": c.reference.auc, "verdict": c.verdict})
    return rows


def csv_rows(board: Leaderboard) -> list[dict]:
    rows = []
    for dataset in board.datasets:
        key = dataset.key
        for row, cell in dataset.cells.items():
            common = {**dataset_columns(key), "method": row.label}
            line = {**common, "kind": "seeds", "n_seeds": len(cell.runs), "rank": cell.rank,
                    "mean_rank": board.mean_rank(row)[0], "val_auc_mean": cell.val_auc[0],
                    "val_auc_std": cell.val_auc[1], "selected_on_validation": cell.selected}
            for metric in METRICS:
                line[f"{metric.key}_mean"], line[f"{metric.key}_std"] = cell.seeds[metric.key]
            line["pooled_auc_estimate"] = "seed ensemble" if dataset.shared_test_set else "mean of per-seed test sets"
            line["pooled_auc"] = cell.delong.auc if cell.delong else None
            for name, interval in (("delong", cell.delong), ("bootstrap", cell.bootstrap)):
                line[f"pooled_auc_{name}_low"] = interval.low if interval else None
                line[f"pooled_auc_{name}_high"] = interval.high if interval else None
            test = cell.vs_baseline
            line["auc_diff_vs_bce"], line["p_vs_bce"] = (test.diff, test.p) if test else (None, None)
            line.update(deployed_columns(cell))
            rows.append(line)
            if cell.ensemble:
                ensemble = {**common, "kind": "seed_ensemble", "n_seeds": sum(run.usable for run in cell.runs),
                            "rank": cell.ensemble_rank,
                            "mean_rank": board.mean_rank(row, "ensemble")[0]}
                ensemble.update({f"{metric.key}_mean": cell.ensemble[metric.key] for metric in METRICS})
                rows.append(ensemble)
    return rows


def write_csv(board: Leaderboard, published: dict[str, DatasetReferences], path: Path) -> Path:
    rows = csv_rows(board) + published_csv_rows(board, published) + skipped_csv_rows(board)
    columns = list(dict.fromkeys(name for line in rows for name in line))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows({k: _csv_value(v) for k, v in line.items()} for line in rows)
    return write_text_atomic(path, text.getvalue())


def _bold(text: str, on: bool) -> str:
    return f"**{text}**" if on and text not in ("—", "NaN") else text


def markdown(board: Leaderboard) -> str:
    """One table per metric (methods x datasets), seed rows then seed-ensemble rows; bold = best."""
    header = [dataset.key.label for dataset in board.datasets]
    out = ["# CritBench leaderboard", "",
           "Test metrics, mean ± std over seeds; *(seed ensemble)* rows score the mean test logit over "
           "seeds. **Bold**: best per column (lowest for FPR). Mean rank: of test AUC across datasets. "
           "Of a method's several variants (a sweep) only the one *selected on validation* (highest mean "
           "validation AUC, marked ✓) competes for bold and ranks.", ""]
    if board.loaded.skipped:
        out += [f"{len(board.loaded.skipped)} record files were skipped as unusable; leaderboard.csv lists "
                f"them (kind `skipped`) with why.", ""]
    for metric in METRICS:
        extra = ["mean rank", "seeds"] if metric is METRICS[0] else []
        out += [f"## {metric.label}", "", "| method | " + " | ".join(header + extra) + " |",
                "|---|" + "---|" * (len(header) + len(extra))]
        for source in ("seeds", "ensemble"):
            for row in board.rows:
                cells: list[Cell | None] = [d.cells.get(row) for d in board.datasets]
                if source == "ensemble" and not any(c and c.ensemble for c in cells):
                    continue
                values = [_cell_markdown(cell, metric.key, source) for cell in cells]
                if extra:
                    rank, n = board.mean_rank(row, source)
                    low, high = board.seed_counts(row)
                    values += [_bold(number(rank, 2), board.is_best_rank(row, source))
                               + ("" if n == len(header) else f" ({n}/{len(header)})"),
                               str(low) if low == high else f"{low}–{high}"]
                selected = any(c and c.selected for c in cells)
                label = row.label + (" ✓" if selected else "") + (ENSEMBLE_SUFFIX if source == "ensemble" else "")
                out.append(f"| {label} | " + " | ".join(values) + " |")
        out.append("")
    level = LEADERBOARD_POINT[1]
    for rate in RATES:
        out += [f"## Test {rate.upper()} at the validation TPR ≥ {level} threshold", "",
                f"Each run's threshold is the largest with validation TPR ≥ {level}; mean ± std over seeds "
                f"[stratified-bootstrap 95% CI over the test set]. — : records without operating points.", "",
                "| method | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
        for row in board.rows:
            cells = [d.cells.get(row) for d in board.datasets]
            values = [rate_text(((cell.deployed if cell else {}).get(LEADERBOARD_POINT) or {}).get(rate)) for cell in cells]
            out.append(f"| {row.label} | " + " | ".join(values) + " |")
        out.append("")
    return "\n".join(out)


def _cell_markdown(cell: Cell | None, key: str, source: str) -> str:
    if cell is None:
        return "—"
    if source == "seeds":
        return _bold(mean_pm_std(cell.seeds[key]), key in cell.best)
    return _bold(number(cell.ensemble[key]) if cell.ensemble else "—", key in cell.ensemble_best)


def published_markdown(board: Leaderboard, published: dict[str, DatasetReferences]) -> str:
    """Per dataset: the published AUCs, then each CritBench row with the same protocol and its verdict."""
    out = ["## Published results", "",
           "Published test AUCs (reports/published.toml) and the CritBench rows that run the same protocol: "
           "mean test AUC with its 95% Student-t interval over seeds, and whether the published value lies "
           "inside (consistent), above (below) or under it (above).", ""]
    for dataset in board.datasets:
        refs = published.get(dataset.key.anchor)
        if refs is None:
            continue
        out += [f"### {dataset.key.label}", "", "| row | seeds | test AUC | published | verdict | source |", "|---|---|---|---|---|---|"]
        for ref in refs.references:
            auc = number(ref.auc) + (f" ± {number(ref.auc_std)}" if ref.auc_std else "")
            out.append(f"| *{ref.label}* (published) | {ref.n_seeds or '—'} | {auc} | | | {ref.source} |")
        for c in refs.comparisons:
            ci = f" [{number(c.interval.low)}, {number(c.interval.high)}]" if c.interval else ""
            out.append(f"| {c.row.label} | {c.n} | {number(c.mean)}{ci} | {number(c.reference.auc)} ({c.reference.label}) "
                       f"| {c.verdict} | |")
        out.append("")
    return "\n".join(out) if len(out) > 4 else ""


def write_markdown(board: Leaderboard, published: dict[str, DatasetReferences], path: Path) -> Path:
    return write_text_atomic(path, markdown(board) + "\n" + published_markdown(board, published) + "\n")
