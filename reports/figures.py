"""Plotly figures: per dataset ROC curves (linear and log-FPR) and validation AUC per epoch; per
run the schedules that drove training (learning rate and the method's recorded state).

Figures are plain plotly.js JSON (data + layout), drawn in the page by the embedded plotly.js;
building them as dicts avoids plotly.graph_objects' validation, which dominated the build time.
"""
from __future__ import annotations

import json
import math

import numpy as np
from plotly.colors import qualitative
from sklearn.metrics import auc as area, roc_curve

from benchmarks.core.cli import counted
from reports.deployed import LEADERBOARD_POINT
from reports.dose_response import DoseResponse
from reports.leaderboard import DatasetSummary, RowKey
from reports.runs import Run

PALETTE = qualitative.Safe  # colour-blind safe
FPR_LINE, TPR_LINE = 0.1, 0.95  # the operating points of the leaderboard
AXIS = dict(gridcolor="#e8eaee", zeroline=False, linecolor="#c8ccd4", ticks="outside", tickcolor="#c8ccd4",
            automargin=True)  # room for long tick labels (0.0005) beside the axis title
LAYOUT = dict(font=dict(family="system-ui, sans-serif", size=12, color="#1d2330"), paper_bgcolor="white",
              plot_bgcolor="white", margin=dict(l=60, r=20, t=30, b=50), height=420, hovermode="closest",
              legend=dict(orientation="h", y=-0.2, x=0))


def row_colors(rows: list[RowKey]) -> dict[RowKey, str]:
    return {row: PALETTE[i % len(PALETTE)] for i, row in enumerate(rows)}


def to_json(figure: dict) -> str:
    """Figure JSON safe inside a <script> element: every `<` (only ever in strings) escaped."""
    return json.dumps(figure, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _values(array) -> list:
    return np.round(np.asarray(array, dtype=np.float64), 5).tolist()


def _guides(axis: str) -> list[dict]:
    """Dashed lines at FPR = 0.1 and TPR = 0.95 on one subplot."""
    dash = dict(color="#8a8f99", dash="dash", width=1)
    return [dict(type="line", xref=f"x{axis}", yref=f"y{axis} domain", x0=FPR_LINE, x1=FPR_LINE, y0=0, y1=1, line=dash),
            dict(type="line", xref=f"x{axis} domain", yref=f"y{axis}", x0=0, x1=1, y0=TPR_LINE, y1=TPR_LINE, line=dash)]


def roc_figure(summary: DatasetSummary, colors: dict[RowKey, str]) -> str:
    """ROC curves of every method row: full range (linear) and the low-FPR region (log FPR)."""
    y = summary.roc_labels
    negatives = int((y == 0).sum())
    floor = 0.5 / negatives  # FPR = 0 is drawn at the left edge of the log axis
    data = []
    for row, scores in summary.roc_scores.items():
        fpr, tpr, _ = roc_curve(y, scores)
        line = dict(color=colors[row], width=2, shape="hv")
        hover = f"{row.label}<br>FPR %{{x:.4f}}<br>TPR %{{y:.4f}}<extra></extra>"
        name = f"{row.label} (AUC {area(fpr, tpr):.3f})"
        data.append(dict(type="scatter", mode="lines", x=_values(fpr), y=_values(tpr), line=line, name=name,
                         legendgroup=row.label, hovertemplate=hover))
        data.append(dict(type="scatter", mode="lines", x=_values(np.maximum(fpr, floor)), y=_values(tpr), line=line,
                         name=name, legendgroup=row.label, showlegend=False, hovertemplate=hover, xaxis="x2", yaxis="y2"))
        data += deployed_markers(summary, row, colors[row], floor)
    data.append(dict(type="scatter", mode="lines", x=[0, 1], y=[0, 1], name="chance", hoverinfo="skip",
                     line=dict(color="#bbb", dash="dot", width=1)))
    title = dict(xref="paper", yref="paper", y=1.0, yanchor="bottom", showarrow=False, font=dict(size=13))
    layout = dict(
        LAYOUT,
        xaxis=dict(AXIS, domain=[0, 0.46], range=[0, 1], title=dict(text="false positive rate")),
        yaxis=dict(AXIS, range=[0, 1.02], title=dict(text="true positive rate (critical class)")),
        xaxis2=dict(AXIS, domain=[0.54, 1], type="log", range=[math.log10(floor), 0],
                    title=dict(text="false positive rate (log scale)")),
        yaxis2=dict(AXIS, anchor="x2", range=[0, 1.02]),
        shapes=_guides("") + _guides("2"),
        annotations=[dict(title, x=0.23, text="ROC"),
                     dict(title, x=0.77, text=f"Low-FPR region ({negatives} test negatives)")],
    )
    return to_json(dict(data=data, layout=layout))


def deployed_markers(summary: DatasetSummary, row: RowKey, color: str, floor: float) -> list[dict]:
    """The row's validation-chosen operating point (the leaderboard's: val TPR >= 0.95), as test FPR
    and TPR means over seeds, on both ROC panels: where the deployed model lands, not the curve's best."""
    rates = summary.cells[row].deployed.get(LEADERBOARD_POINT)
    if not rates:
        return []
    fpr, tpr = rates["fpr"].mean, rates["tpr"].mean
    hover = (f"{row.label}: threshold chosen on validation (TPR ≥ {LEADERBOARD_POINT[1]})<br>"
             f"test FPR {fpr:.4f}, TPR {tpr:.4f} (mean over seeds)<extra></extra>")
    marker = dict(color=color, symbol="diamond", size=11, line=dict(width=1.5, color="#1d2330"))
    return [dict(type="scatter", mode="markers", x=[x], y=[tpr], marker=marker, legendgroup=row.label, showlegend=False,
                 hovertemplate=hover, **axes) for x, axes in ((fpr, {}), (max(fpr, floor), dict(xaxis="x2", yaxis="y2")))]


def selection_curve(run: Run) -> tuple[str, str]:
    """The history key of the validation AUC that selected the run's checkpoint (`--select-on`), and its label."""
    if run.config.get("select_on") == "all_classes":
        return "val_class_auc", "val AUC, every label"
    return "val_auc", "val AUC"


def training_figure(summary: DatasetSummary, colors: dict[RowKey, str]) -> str:
    """The validation AUC that selects each run's checkpoint (the critical class's, or with
    `--select-on all_classes` every label's), per epoch, one line per run (seeds share their row's
    colour), selected epochs starred."""
    data = []
    for row, cell in summary.cells.items():
        best_x, best_y = [], []
        for index, run in enumerate(cell.runs):
            history = run.record["history"]
            key, label = selection_curve(run)
            data.append(dict(
                type="scatter", mode="lines", x=[h["epoch"] for h in history], y=[h.get(key) for h in history],
                line=dict(color=colors[row], width=1.5), opacity=0.85, name=row.label, legendgroup=row.label,
                showlegend=index == 0,
                hovertemplate=f"{row.label}, seed {run.seed}<br>epoch %{{x}}<br>{label} %{{y:.4f}}<extra></extra>"))
            best = next((h for h in history if h["epoch"] == run.record.get("best_epoch")), None)
            if best is not None:
                best_x.append(best["epoch"])
                best_y.append(best.get(key))
        data.append(dict(type="scatter", mode="markers", x=best_x, y=best_y, legendgroup=row.label, showlegend=False,
                         marker=dict(color=colors[row], symbol="star", size=11, line=dict(width=1, color="#333")),
                         hovertemplate=f"{row.label}: selected epoch %{{x}}<br>val AUC %{{y:.4f}}<extra></extra>"))
    last = max((len(run.record["history"]) for run in summary.runs), default=1)
    layout = dict(LAYOUT, margin=dict(LAYOUT["margin"], t=15),
                  xaxis=dict(AXIS, title=dict(text="epoch"), **epoch_axis([last])),
                  yaxis=dict(AXIS, title=dict(text="validation AUC")))
    return to_json(dict(data=data, layout=layout))


def epoch_axis(epochs: list[int]) -> dict:
    """An x axis of whole epochs: at most about ten ticks, never at epoch 1.5."""
    return dict(tick0=1, dtick=max(1, math.ceil(max(epochs, default=1) / 10)), tickformat="d")


def value_axis(values: list) -> dict:
    """A y axis for one schedule: booleans as no/yes, positive values on a log axis when they span
    two decades or more or stay constant (a linear axis around one value draws 1e-4 at "0"), others
    linear with significant-digit ticks."""
    if values and all(isinstance(v, bool) for v in values if v is not None):
        return dict(range=[-0.3, 1.3], tickvals=[0, 1], ticktext=["no", "yes"], fixedrange=True)
    positive = [v for v in values if v is not None and v > 0]
    if positive and len(positive) == sum(v is not None for v in values):
        if max(positive) / min(positive) >= 100 or max(positive) == min(positive):
            return dict(type="log", tickformat="~g", dtick=1)  # a label per decade
    return dict(type="linear", tickformat="~g")


def schedule_figure(run: Run, color: str) -> str:
    """One panel per schedule of a run, against the epoch: the learning rate and every method-state
    entry of its history, so a reader can check each schedule from the record. Numbers are steps
    (a value holds for its epoch); booleans (ALM's mu_frozen) are markers on a no/yes axis."""
    history = run.record["history"]
    keys = ["lr", *(key for key in run.state_keys if not any(isinstance(h.get(key), str) for h in history))]
    epochs = [h["epoch"] for h in history]
    stages = [h.get("stage", "") for h in history]
    gap = 0.06
    height = (1 - gap * (len(keys) - 1)) / len(keys)
    data, layout = [], dict(LAYOUT, height=120 + 120 * len(keys), showlegend=False, margin=dict(LAYOUT["margin"], t=25))
    names = []  # each panel's name above it: a vertical axis title would be longer than the panel
    for index, key in enumerate(keys):
        raw = [h.get(key) for h in history]
        boolean = all(isinstance(v, bool) for v in raw if v is not None)
        values = [None if v is None else (int(v) if boolean else float(v)) for v in raw]
        axis = "" if index == 0 else str(index + 1)
        top = 1 - index * (height + gap)
        shown = "%{customdata}" if boolean else "%{y:.4g}"
        trace = dict(type="scatter", mode="markers" if boolean else "lines+markers", x=epochs, y=values,
                     xaxis=f"x{axis}", yaxis=f"y{axis}", line=dict(color=color, width=1.5, shape="hv"),
                     marker=dict(size=7 if boolean else 4, color=color), text=stages,
                     hovertemplate=f"epoch %{{x}} (%{{text}})<br>{key} {shown}<extra></extra>")
        if boolean:
            trace["customdata"] = ["—" if v is None else ("yes" if v else "no") for v in raw]
        data.append(trace)
        layout[f"xaxis{axis}"] = dict(AXIS, anchor=f"y{axis}", **epoch_axis(epochs), **({"matches": "x"} if index else {}),
                                      **({"title": dict(text="epoch")} if index == len(keys) - 1 else {}))
        layout[f"yaxis{axis}"] = dict(AXIS, domain=[max(0, top - height), top], **value_axis(raw if boolean else values))
        names.append(dict(text=f"<b>{key}</b>", xref="paper", yref="paper", x=0, y=top, xanchor="left",
                          yanchor="bottom", showarrow=False, font=dict(size=12)))
    layout["annotations"] = names
    return to_json(dict(data=data, layout=layout))


def seed_summed_confusion(runs: list[Run]) -> tuple[np.ndarray, int] | None:
    """The test confusion matrices of a row's runs summed over its seeds, and how many runs had one
    (None: none had, as multi-label and binary runs)."""
    matrices = [np.asarray(run.record["multiclass"]["confusion_matrix"]) for run in runs
                if (run.record.get("multiclass") or {}).get("confusion_matrix") is not None]
    return (np.sum(matrices, axis=0), len(matrices)) if matrices else None


def short_name(name: str, width: int = 16) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


def confusion_figure(summary: DatasetSummary) -> str | None:
    """One heatmap per method row of its selected checkpoints' test predictions, summed over seeds:
    rows the true class, columns the predicted one (argmax), coloured by the share of the true
    class (so a row of a rare class reads as clearly as a common one), counts written in the cells;
    the critical class's labels in bold. None where no row has a confusion matrix."""
    matrices = {row: m for row, cell in summary.cells.items() if (m := seed_summed_confusion(cell.runs)) is not None}
    if not matrices:
        return None
    names = summary.facts.get("class_names") or [str(k) for k in range(len(next(iter(matrices.values()))[0]))]
    critical = set(summary.facts.get("critical_labels") or [])
    ticks = [f"<b>{short_name(n)}</b>" if k in critical else short_name(n) for k, n in enumerate(names)]
    columns = min(3, len(matrices))
    lines = math.ceil(len(matrices) / columns)
    gap_x, gap_y = 0.14, 0.5 / lines
    width, height = (1 - gap_x * (columns - 1)) / columns, (1 - gap_y * (lines - 1)) / lines
    data, layout = [], dict(LAYOUT, height=140 + 330 * lines, margin=dict(LAYOUT["margin"], t=30), annotations=[])
    for index, (row, (counts, seeds)) in enumerate(matrices.items()):
        line, column = divmod(index, columns)
        axis = "" if index == 0 else str(index + 1)
        left, top = column * (width + gap_x), 1 - line * (height + gap_y)
        totals = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
        pairs = [[f"true {names[t]}<br>predicted {names[p]}" for p in range(len(names))] for t in range(len(names))]
        data.append(dict(type="heatmap", z=_values(share), text=counts.tolist(), texttemplate="%{text}", customdata=pairs,
                         x=list(range(len(names))), y=list(range(len(names))), zmin=0, zmax=1, colorscale="Blues", reversescale=True,
                         showscale=index == 0, colorbar=dict(title=dict(text="share of<br>true class"), thickness=12),
                         xaxis=f"x{axis}", yaxis=f"y{axis}", name=row.label,
                         hovertemplate=f"{row.label}<br>%{{customdata}}<br>%{{text}} samples (%{{z:.1%}} of the true class)<extra></extra>"))
        tick = dict(tickvals=list(range(len(names))), ticktext=ticks, showgrid=False)
        layout[f"xaxis{axis}"] = dict(AXIS, **tick, domain=[left, left + width], anchor=f"y{axis}", tickangle=-40,
                                      title=dict(text="predicted class"))
        layout[f"yaxis{axis}"] = dict(AXIS, **tick, domain=[max(0, top - height), top], anchor=f"x{axis}",
                                      autorange="reversed", **({"title": dict(text="true class")} if column == 0 else {}))
        layout["annotations"].append(dict(text=f"<b>{row.label}</b> ({counted(seeds, 'seed')}{' summed' if seeds > 1 else ''})",
                                          xref="paper", yref="paper", x=left + width / 2, y=top, xanchor="center",
                                          yanchor="bottom", showarrow=False, font=dict(size=12)))
    return to_json(dict(data=data, layout=layout))


DOSE_METRICS = ("val AUC", "test AUC", "test FPR@TPR=0.95", "test TPR@FPR=0.1")  # DosePoint.metrics() keys drawn
DOSE_ACTIVITY = "term / loss (mean)"  # the DosePoint.activity() figure drawn: how much the penalty acted


def dose_figure(response: DoseResponse) -> str:
    """A method's dose-response: the metrics against the param's value (top), the penalty's activity
    (mean term-to-loss ratio over epochs, bottom; gaps for records without it), on a shared x axis,
    logarithmic where every value is positive."""
    values = [point.value for point in response.points]
    activity = [point.activity()[DOSE_ACTIVITY] for point in response.points]
    activity = [None if math.isnan(v) else v for v in activity]
    hover = f"{response.param} %{{x:g}}<br>%{{fullData.name}} %{{y:.4g}}<extra></extra>"
    data = [dict(type="scatter", mode="lines+markers", x=values, y=[point.metrics()[name] for point in response.points],
                 name=name, line=dict(color=PALETTE[index], width=2), marker=dict(size=7), hovertemplate=hover)
            for index, name in enumerate(DOSE_METRICS)]
    data.append(dict(type="scatter", mode="lines+markers", x=values, y=activity, name=DOSE_ACTIVITY, xaxis="x2",
                     yaxis="y2", line=dict(color="#1d2330", width=1.5, dash="dot"), marker=dict(size=7, symbol="square"),
                     hovertemplate=hover))
    x_axis = dict(type="log", tickformat=".0e", dtick=1) if min(values) > 0 else dict(type="linear", tickformat="~g")
    layout = dict(LAYOUT, height=520, margin=dict(LAYOUT["margin"], t=15),
                  xaxis=dict(AXIS, **x_axis, anchor="y", matches="x2", showticklabels=False),
                  yaxis=dict(AXIS, domain=[0.4, 1], range=[0, 1.02], title=dict(text="metric")),
                  xaxis2=dict(AXIS, **x_axis, anchor="y2", title=dict(text=response.param)),
                  yaxis2=dict(AXIS, domain=[0, 0.3], title=dict(text="term / loss"),
                              **value_axis([v for v in activity if v is not None])))
    return to_json(dict(data=data, layout=layout))
