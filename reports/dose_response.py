"""A method's response to one hyperparameter (ALM's mu0, say): the runs of one dataset, method and
seed that differ only in that value, with their validation and test metrics and whether the
method's penalty acted (the per-epoch activity figures its records carry); a value whose run failed
(a diverged ALM) is a row that says so, with the epochs it finished where its record kept them.

    python -m reports.dose_response --runs results/validation results/alm_dose --method alm --param mu0
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

from benchmarks.core.cli import fail
from benchmarks.core.errors import CritBenchError
from reports.display import number
from reports.leaderboard import format_value
from reports.runs import Failure, Run, load_runs

# (history key, column label, how an epoch series becomes one number)
ACTIVITY = (
    ("mu", "final mu", "last"),
    ("multiplier_max", "max multiplier", "max"),
    ("violated_pair_share", "violated pairs (mean)", "mean"),
    ("term_to_loss", "term / loss (mean)", "mean"),
    ("term_to_loss", "term / loss (max)", "max"),
)
# What must agree between the runs of one response (the machine's fields, device and precision, need not)
PROTOCOL = ("dataset", "dataset_params", "size", "imbalance", "max_train_samples", "seed", "epochs", "batch_size",
            "patience", "model", "stem", "width", "sampler", "augment")
SUMMARIES = {"last": lambda values: values[-1], "max": max, "mean": lambda values: sum(values) / len(values)}


@dataclass(frozen=True)
class DosePoint:
    """One run of a dose-response: the hyperparameter's value and what it gave."""

    value: float
    run: Run

    def metrics(self) -> dict[str, float]:
        test = self.run.record["test"]
        return {"val AUC": self.run.val_auc, "test AUC": test["auc"],
                "test FPR@TPR=0.95": test["fpr_at_tpr"]["0.95"], "test TPR@FPR=0.1": test["tpr_at_fpr"]["0.1"],
                "epochs": len(self.run.record["history"]), "best epoch": self.run.record["best_epoch"]}

    def activity(self) -> dict[str, float]:
        """Each `ACTIVITY` figure over the run's epochs (NaN where the record predates it)."""
        return activity(self.run.record["history"])


def activity(history: list[dict]) -> dict[str, float]:
    """Each `ACTIVITY` figure over the epochs of `history` (NaN where no epoch has it)."""
    out = {}
    for key, label, how in ACTIVITY:
        values = [epoch[key] for epoch in history if isinstance(epoch.get(key), (int, float))]
        out[label] = SUMMARIES[how](values) if values else math.nan
    return out


def activity_cells(figures: dict[str, float]) -> list[str]:
    return ["—" if math.isnan(v) else f"{v:.3g}" for v in figures.values()]


@dataclass(frozen=True)
class DoseResponse:
    """The runs of one dataset, method and seed that agree on everything but `param`, by its value;
    `fixed`: the method's other params, shared by these runs."""

    method: str
    param: str
    points: list[DosePoint]
    fixed: tuple = ()

    @property
    def dataset(self) -> str:
        return self.points[0].run.config["dataset"]

    @property
    def seed(self) -> int:
        return self.points[0].run.config["seed"]


def other_params(config: dict, param: str) -> tuple:
    """A run's params but `param`, sorted: what the runs of one response share."""
    return tuple(sorted((k, v) for k, v in config["params"].items() if k != param))


def response_key(config: dict, param: str) -> tuple:
    """What the runs of one response agree on: every `PROTOCOL` setting and the other params."""
    return tuple(repr(config.get(key)) for key in PROTOCOL), repr(other_params(config, param))


def failed_row(failure: Failure, param: str, metric_labels: list[str]) -> list[str]:
    """`table`'s cells for a failed run: its reason where the metrics stand and, where its record
    kept the epochs before it diverged, their count and `ACTIVITY` figures (else "—")."""
    history = failure.record.get("history") or []
    metrics = {label: "—" for label in metric_labels} | {metric_labels[0]: f"failed: {failure.reason}"}
    if history:
        metrics["epochs"] = f"{len(history)} finished"
    return [f"{float(failure.config['params'][param]):g}", *metrics.values(), *activity_cells(activity(history))]


def failed_rows(failures: list[Failure], response: DoseResponse) -> list[list[str]]:
    """Table rows (`table`'s columns) of the failed runs with `response`'s protocol and fixed params."""
    key = response_key(response.points[0].run.config, response.param)
    labels = list(response.points[0].metrics())
    rows = [failed_row(failure, response.param, labels) for failure in failures
            if not failure.retried and failure.config.get("method") == response.method
            and response.param in (failure.config.get("params") or {})
            and response_key(failure.config, response.param) == key]
    return sorted(rows, key=lambda row: float(row[0]))


def dose_points(runs: list[Run], method: str, param: str) -> list[DoseResponse]:
    """Every response of `method` to `param` among `runs`: per group of runs that agree on everything
    but `param` (`response_key`) and hold at least two of its values, in value order.

    Runs whose other settings (budget, other params, dataset settings) differ form other groups,
    so a response never mixes two protocols."""
    groups: dict[tuple, list[DosePoint]] = {}
    for run in runs:
        if run.method == method and is_number(run.config["params"].get(param)):
            groups.setdefault(response_key(run.config, param), []).append(
                DosePoint(float(run.config["params"][param]), run))
    return [DoseResponse(method, param, sorted(points, key=lambda p: p.value), other_params(points[0].run.config, param))
            for points in groups.values() if len({p.value for p in points}) > 1]


def is_number(value) -> bool:
    """Whether a param's value is a dose (a number; a name such as a preset, or a switch, is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def swept_params(runs: list[Run], method: str) -> list[str]:
    """The numeric params of `method` that take several values among `runs`."""
    values: dict[str, set] = {}
    for run in runs:
        if run.method == method:
            for name, value in run.config["params"].items():
                if is_number(value):
                    values.setdefault(name, set()).add(float(value))
    return sorted(name for name, seen in values.items() if len(seen) > 1)


def no_response(runs: list[Run], method: str, param: str, where: str) -> str:
    """Why `runs` (read from `where`) hold no response of `method` to `param`, with what they do hold."""
    need = "a dose-response needs at least two values of it with everything else equal"
    methods = sorted({run.method for run in runs})
    if not methods:
        return f"no complete run record under {where}; pass the --out folder of benchmarks.run or the leaderboard"
    if method not in methods:
        return f"no {method} runs under {where}; the methods there: {', '.join(methods)}"
    swept = swept_params(runs, method)
    if param in swept:
        return (f"no {method} runs that differ only in {param} under {where}: the runs with other values of it also "
                f"differ in their protocol ({', '.join(PROTOCOL)}) or other params; {need}")
    return (f"no {method} runs that differ only in {param} under {where}; {need}; the numeric params {method}'s runs "
            f"there vary: {', '.join(swept) or 'none'}")


def dataset_responses(runs: list[Run]) -> list[DoseResponse]:
    """Every dose-response among one dataset's runs: each method by each numeric param it sweeps."""
    return [response for method in sorted({run.method for run in runs}) for param in swept_params(runs, method)
            for response in dose_points(runs, method, param)]


def titles(responses: list[DoseResponse]) -> list[str]:
    """A heading per response: "alm by mu0, seed 0", with the other params that tell it from a
    response of the same method, param and seed ("alm by mu0, seed 0, delta=0.5")."""
    out = []
    for response in responses:
        title = f"{response.method} by {response.param}, seed {response.seed}"
        others = [r.fixed for r in responses if (r.method, r.param, r.seed) == (response.method, response.param, response.seed)]
        differing = [(k, v) for k, v in response.fixed if any(dict(fixed).get(k) != v for fixed in others)]
        out.append(title + "".join(f", {k}={format_value(v)}" for k, v in differing))
    return out


def table(points: list[DosePoint], param: str, failed: list[list[str]] = ()) -> tuple[list[str], list[list[str]]]:
    """The dose-response as text cells: header and one row per value (metrics, then `ACTIVITY`), with
    the `failed_rows` in value order."""
    header = [param, *points[0].metrics(), *(label for _, label, _ in ACTIVITY)]
    rows = [[f"{point.value:g}", *(number(v) if isinstance(v, float) else str(v) for v in point.metrics().values()),
             *activity_cells(point.activity())] for point in points]
    return header, sorted(rows + list(failed), key=lambda row: float(row[0]))


def markdown(points: list[DosePoint], param: str, failed: list[list[str]] = ()) -> str:
    """The dose-response as a Markdown table (`table`)."""
    header, rows = table(points, param, failed)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reports.dose_response", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, metavar="DIR", help="folders of run records")
    parser.add_argument("--method", required=True, help="the method whose runs differ in --param")
    parser.add_argument("--param", required=True, help="the hyperparameter, e.g. mu0")
    return parser


def main(argv=None) -> int:
    """Print one Markdown dose-response table per dataset and seed."""
    args = build_parser().parse_args(argv)
    try:
        loaded = load_runs(args.runs)
    except CritBenchError as error:
        return fail(str(error))
    loaded.report_skipped()
    runs, failures = loaded.runs, loaded.failures
    found = dose_points(runs, args.method, args.param)
    if not found:
        return fail(no_response(runs, args.method, args.param, ", ".join(args.runs)))
    for response in found:
        print(f"{response.dataset}, seed {response.seed}, {args.method} by {args.param}:\n\n"
              f"{markdown(response.points, args.param, failed_rows(failures, response))}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
