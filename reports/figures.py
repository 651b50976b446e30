"""Plotly figures of a dataset: ROC curves (linear and log-FPR) and validation AUC per epoch."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from sklearn.metrics import auc as area, roc_curve

from reports.collect import DatasetSummary, RowKey

PALETTE = qualitative.Safe  # colour-blind safe
FPR_LINE, TPR_LINE = 0.1, 0.95  # the operating points of the leaderboard
LAYOUT = dict(template="plotly_white", font=dict(family="system-ui, sans-serif", size=12),
              margin=dict(l=60, r=20, t=40, b=50), legend=dict(orientation="h", y=-0.22, x=0), height=420)


def row_colors(rows: list[RowKey]) -> dict[RowKey, str]:
    return {row: PALETTE[i % len(PALETTE)] for i, row in enumerate(rows)}


def to_json(figure: go.Figure) -> str:
    """Figure JSON safe to embed in a <script> element."""
    return figure.to_json().replace("</", "<\\/")


def roc_figure(summary: DatasetSummary, colors: dict[RowKey, str]) -> str:
    """ROC curves of every method row: full range (linear) and the low-FPR region (log FPR)."""
    y = summary.roc_labels
    negatives = int((y == 0).sum())
    floor = 0.5 / negatives  # FPR = 0 is drawn at the left edge of the log axis
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                           subplot_titles=("ROC", f"Low-FPR region (log scale; {negatives} negatives)"))
    for row, scores in summary.roc_scores.items():
        fpr, tpr, _ = roc_curve(y, scores)
        auc = area(fpr, tpr)
        for col, x in ((1, fpr), (2, np.maximum(fpr, floor))):
            figure.add_trace(go.Scatter(
                x=np.round(x, 5), y=np.round(tpr, 5), mode="lines", line=dict(color=colors[row], width=2, shape="hv"),
                name=f"{row.label} (AUC {auc:.3f})", legendgroup=row.label, showlegend=col == 1,
                hovertemplate=f"{row.label}<br>FPR %{{x:.4f}}<br>TPR %{{y:.4f}}<extra></extra>"), row=1, col=col)
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#bbb", dash="dot", width=1),
                                name="chance", hoverinfo="skip"), row=1, col=1)
    for col in (1, 2):
        figure.add_vline(x=FPR_LINE, line=dict(color="#888", dash="dash", width=1), row=1, col=col)
        figure.add_hline(y=TPR_LINE, line=dict(color="#888", dash="dash", width=1), row=1, col=col)
    figure.update_xaxes(title_text="false positive rate", range=[0, 1], row=1, col=1)
    figure.update_xaxes(title_text="false positive rate (log)", type="log", range=[math.log10(floor), 0], row=1, col=2)
    figure.update_yaxes(title_text="true positive rate (critical class)", range=[0, 1.02], row=1, col=1)
    figure.update_yaxes(range=[0, 1.02], row=1, col=2)
    figure.update_layout(**LAYOUT)
    return to_json(figure)


def training_figure(summary: DatasetSummary, colors: dict[RowKey, str]) -> str:
    """Validation AUC per epoch, one line per run (seeds share their row's colour), best epochs starred."""
    figure = go.Figure()
    for row, cell in summary.cells.items():
        best_x, best_y = [], []
        for index, run in enumerate(cell.runs):
            history = run.record["history"]
            figure.add_trace(go.Scatter(
                x=[h["epoch"] for h in history], y=[h["val_auc"] for h in history], mode="lines",
                line=dict(color=colors[row], width=1.5), opacity=0.85, name=row.label, legendgroup=row.label,
                showlegend=index == 0,
                hovertemplate=f"{row.label}, seed {run.seed}<br>epoch %{{x}}<br>val AUC %{{y:.4f}}<extra></extra>"))
            best = next((h for h in history if h["epoch"] == run.record.get("best_epoch")), None)
            if best is not None:
                best_x.append(best["epoch"])
                best_y.append(best["val_auc"])
        figure.add_trace(go.Scatter(x=best_x, y=best_y, mode="markers", legendgroup=row.label, showlegend=False,
                                    marker=dict(color=colors[row], symbol="star", size=11, line=dict(width=1, color="#333")),
                                    hovertemplate=f"{row.label}: selected epoch %{{x}}<br>val AUC %{{y:.4f}}<extra></extra>"))
    last = max((len(run.record["history"]) for run in summary.runs), default=1)
    figure.update_xaxes(title_text="epoch", tick0=1, dtick=max(1, math.ceil(last / 10)))
    figure.update_yaxes(title_text="validation AUC")
    figure.update_layout(**{**LAYOUT, "margin": dict(l=60, r=20, t=20, b=50)})
    return to_json(figure)
