"""Run records as pandas DataFrames, for analysis in a notebook:

    from reports import load_runs
    runs, epochs = load_runs("runs/quick")  # or several folders: load_runs(["runs/quick", "results/alm_paired"])

`runs`: one row per complete run record (failure records and unusable files are left out, as in
the report): its id, the configuration flattened (`params.delta`), the selected epoch, the seconds
and every validation and test metric (`val.auc`, `test.auc`, `test.fpr_at_tpr.0.95`...), plus the
record's path. `epochs`: one row per run and epoch of its history (train loss, validation AUC,
learning rate, the method's state such as ALM's `mu`), with the run's id, dataset, method and seed.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from reports.runs import load_runs as load_records

KEYS = ("run_id", "dataset", "method", "seed")  # first columns of both tables


class RunFrames(NamedTuple):
    runs: pd.DataFrame
    epochs: pd.DataFrame


def load_runs(runs_dir: str | Path | Sequence[str | Path]) -> RunFrames:
    """The complete run records under `runs_dir`, a folder or several (recursively), as (runs,
    epochs) DataFrames."""
    loaded = load_records(runs_dir)
    rows, history = [], []
    for run in loaded.runs:
        record = run.record
        keys = {"run_id": run.run_id, "dataset": run.config["dataset"], "method": run.method, "seed": run.seed}
        rows.append({**keys, "config": record["config"], "best_epoch": record.get("best_epoch"),
                     "stopped_early": record.get("stopped_early"), "seconds": run.seconds,
                     "val": record.get("val") or {}, "test": record["test"], "path": str(run.path)})
        history += [{**keys, **epoch} for epoch in record["history"]]
    runs = pd.json_normalize(rows) if rows else pd.DataFrame(columns=[*KEYS, "path"])
    runs.columns = [name.removeprefix("config.") for name in runs.columns]
    runs = runs.loc[:, ~runs.columns.duplicated()]  # config.dataset etc. repeat the keys
    epochs = pd.DataFrame(history, columns=list(dict.fromkeys([*KEYS, *(k for h in history for k in h)])))
    return RunFrames(runs, epochs)
