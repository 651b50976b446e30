"""`python -m benchmarks.leaderboard`: run a suite of datasets x methods x seeds, then the report.

Stop it at any moment and rerun the same command to resume.

Each run writes `<out>/<run_id>.json` when complete, or `<out>/<run_id>.failed.json` (reason and
traceback) when it crashed or diverged. A rerun skips complete runs and retries failed ones unless
--no-retry-failed. Progress goes to stderr; the last stdout line is the report's path (or the
output folder with --no-report).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.core.cli import ArgumentParser, fail
from benchmarks.core.errors import CritBenchError
from benchmarks.sweep.executors import EXECUTORS, RunTask, TaskResult, create_executor
from benchmarks.sweep.suite import PlannedRun, Suite, expand, list_suites, load_suite, parse_seeds, select

STALE_TEMP_S = 600  # a record's temporary file older than this was left by a killed writer


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m benchmarks.leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="full", metavar="NAME|FILE", help=f"built-in suite ({', '.join(list_suites())}) or a TOML file (default full)")
    parser.add_argument("--datasets", metavar="A,B", help="only these datasets, comma-separated (a dataset not in the suite is added)")
    parser.add_argument("--methods", metavar="X,Y", help="only these methods, comma-separated (a method not in the suite is added)")
    parser.add_argument("--seeds", metavar="0-2", help="seed indices, e.g. 0-2 or 0,3 (default: the suite's)")
    parser.add_argument("--epochs", type=int, metavar="N", help="maximum epochs of every run (default: the suite's)")
    parser.add_argument("--data-dir", metavar="DIR", help="folder with the data (default $CRITBENCH_DATA, else each dataset's default)")
    parser.add_argument("--out", metavar="DIR", help="folder of the run records (default runs/<suite>)")
    parser.add_argument("--executor", default="local", choices=EXECUTORS, help="where runs execute (default local)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the suite's, else auto)")
    parser.add_argument("--report", metavar="FILE.html", help="HTML report to write at the end (default <out>/report.html)")
    parser.add_argument("--no-report", action="store_true", help="do not build the report")
    parser.add_argument("--no-retry-failed", action="store_true", help="skip runs that failed before instead of retrying them")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the runs still to do; train nothing")
    ray = parser.add_argument_group("ray executor")
    ray.add_argument("--ray-address", metavar="ADDRESS", help="address of a running Ray cluster (default: start a local instance)")
    slurm = parser.add_argument_group("slurm executor (default: the suite file's [slurm] table)")
    slurm.add_argument("--slurm-partition", metavar="NAME", help="partition to submit to")
    slurm.add_argument("--slurm-gpus", type=int, metavar="N", help="GPUs per run")
    slurm.add_argument("--slurm-cpus", type=int, metavar="N", help="CPUs per run")
    slurm.add_argument("--slurm-mem-gb", type=float, metavar="GB", help="memory per run, GB")
    slurm.add_argument("--slurm-time", type=int, dest="slurm_time_min", metavar="MIN", help="time limit per run, minutes")
    slurm.add_argument("--slurm-parallel", type=int, metavar="N", help="at most this many runs at once")
    slurm.add_argument("--slurm-folder", metavar="DIR", help="folder of the job logs (default <out>/slurm_logs)")
    slurm.add_argument("--slurm-cluster", choices=("slurm", "local"), help="local: run the job array as local processes (testing)")
    return parser


def split_names(text: str | None) -> list[str] | None:
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def suite_from_args(args) -> Suite:
    suite = load_suite(args.suite)
    run = {"epochs": args.epochs} if args.epochs is not None else {}
    return select(suite, datasets=split_names(args.datasets), methods=split_names(args.methods),
                  seeds=parse_seeds(args.seeds) if args.seeds else None, run=run)


def executor_options(args, suite: Suite) -> tuple[dict, dict]:
    """The [ray] and [slurm] tables of the suite with the CLI's values on top."""
    ray = {**suite.ray, **({"address": args.ray_address} if args.ray_address else {})}
    cli = {key: getattr(args, f"slurm_{key}") for key in
           ("partition", "gpus", "cpus", "mem_gb", "time_min", "parallel", "folder", "cluster")}
    return ray, {**suite.slurm, **{k: v for k, v in cli.items() if v is not None}}


class DatasetProbe:
    """Loads each dataset once to learn the checksum that enters every run id, or why it cannot be
    loaded. A source checksum (files on disk) is shared by all data settings of the dataset; data
    without one (synthetic) is loaded per setting and seed, as its tensors' md5 is the checksum."""

    def __init__(self):
        self.source_md5: dict[tuple, str | None] = {}
        self.errors: dict[tuple, Exception] = {}

    def md5(self, config) -> str:
        from benchmarks.engine.pipeline import load_dataset

        source = (config.dataset, config.size, config.data_dir, json.dumps(config.dataset_params, sort_keys=True))
        if source in self.errors:
            raise self.errors[source]
        if self.source_md5.get(source):
            return self.source_md5[source]
        try:
            record = load_dataset(config).record()
        except Exception as error:  # missing, corrupt or unreadable: the same for every run of it
            self.errors[source] = error
            raise
        self.source_md5[source] = record["source_md5"]
        return record["source_md5"] or record["tensor_md5"]


@dataclass
class Plan:
    tasks: list[RunTask] = field(default_factory=list)  # to run now
    complete: int = 0  # runs whose complete record exists
    failed_kept: list[str] = field(default_factory=list)  # failure records not retried
    failed_retry: int = 0
    unavailable: dict[str, list[str]] = field(default_factory=dict)  # problem -> dataset labels of skipped runs


def record_state(out: Path, run_id: str) -> str | None:
    """"complete", "failed" or None (no record yet)."""
    from benchmarks.engine.pipeline import record_path

    path = record_path(out, run_id)
    if path.is_file():
        try:
            if json.loads(path.read_text()).get("status") == "complete":
                return "complete"
        except (OSError, ValueError):
            pass  # not a record (hand-edited?): run again, which replaces it
    return "failed" if record_path(out, run_id, failed=True).is_file() else None


def remove_stale_temporaries(out: Path) -> None:
    """Delete temporary files of atomic writes whose writer was killed (never complete records)."""
    for temporary in out.glob(".*.json.*.tmp"):
        if time.time() - temporary.stat().st_mtime > STALE_TEMP_S:
            temporary.unlink(missing_ok=True)


def make_plan(runs: list[PlannedRun], out: Path, retry_failed: bool) -> Plan:
    from benchmarks.engine.pipeline import run_id

    plan, probe = Plan(), DatasetProbe()
    for run in runs:
        try:
            identity = run_id(run.config, probe.md5(run.config))
        except Exception as error:
            problem = str(error) if isinstance(error, CritBenchError) else f"{type(error).__name__}: {error}"
            plan.unavailable.setdefault(problem, []).append(run.dataset_label)
            continue
        state = record_state(out, identity)
        if state == "complete":
            plan.complete += 1
        elif state == "failed" and not retry_failed:
            plan.failed_kept.append(identity)
        else:
            plan.failed_retry += state == "failed"
            plan.tasks.append(RunTask(run.config, identity, run.label, str(out)))
    return plan


def describe_plan(suite: Suite, runs: list[PlannedRun], plan: Plan, out: Path, executor: str) -> str:
    methods = sum(len(method.variants()) for method in suite.methods)
    lines = [f"suite {suite.name}: {len(runs)} runs ({len(suite.datasets)} dataset settings x {methods} "
             f"methods x {len(suite.seeds)} seeds), records in {out}"]
    for problem, labels in plan.unavailable.items():
        settings = ", ".join(dict.fromkeys(labels))
        lines.append(f"skipping {settings} ({len(labels)} runs), cannot load the data: {problem}")
    kept = f", {len(plan.failed_kept)} failed before and not retried (--no-retry-failed)" if plan.failed_kept else ""
    retry = f" ({plan.failed_retry} of them failed before)" if plan.failed_retry else ""
    lines.append(f"{plan.complete} complete already{kept}; {len(plan.tasks)} to run{retry} with the {executor} executor")
    return "\n".join(lines)


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """The suite's progress on stderr, one line per event: runs done / total, the run, elapsed, ETA
    (elapsed time per finished run so far, times the runs left: parallel executors included)."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.failed = total, 0, []
        self.stream = stream or sys.stderr
        self.start = time.monotonic()

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def started(self, task: RunTask) -> None:
        self._print(f"[{self.done + 1}/{self.total}] running {task.label}  ({task.run_id})")

    def finished(self, result: TaskResult) -> None:
        self.done += 1
        if result.status != "complete":
            self.failed.append(result)
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        status = "done" if result.status == "complete" else f"FAILED ({(result.reason or '')[:200]})"
        self._print(f"[{self.done}/{self.total}] {status}: {result.label}  "
                    f"elapsed {duration(elapsed)}, ETA {duration(eta)}")


def make_report(runs_dir: Path, html: Path) -> Path:
    """The HTML report of every complete record in `runs_dir` (reports.build)."""
    try:
        from reports.build import build_report
    except ImportError as error:
        raise CritBenchError(f"cannot build the report: reports.build is not available ({error}); the records "
                             f"are in {runs_dir}: build it later with python -m reports.build --runs {runs_dir} "
                             f"--out {html}") from None
    return build_report(runs_dir, html)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        suite = suite_from_args(args)
        machine = {"device": args.device} if args.device else {}
        if args.data_dir:
            machine["data_dir"] = str(Path(args.data_dir).resolve())  # workers may start elsewhere
        runs = expand(suite, machine)
        out = Path(args.out or Path("runs") / suite.name).resolve()
        ray, slurm = executor_options(args, suite)
        executor = create_executor(args.executor, out_dir=out, device=runs[0].config.device, ray=ray, slurm=slurm,
                                   progress=sys.stderr.isatty())
    except CritBenchError as error:
        return fail(str(error))
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    try:
        plan = make_plan(runs, out, retry_failed=not args.no_retry_failed)
        print(describe_plan(suite, runs, plan, out, args.executor), file=sys.stderr, flush=True)
        if args.dry_run:
            for task in plan.tasks:
                print(f"{task.run_id}\t{task.label}\tseed {task.config.seed}")
            return 0
        progress = Progress(len(plan.tasks))
        if plan.tasks:
            executor.run(plan.tasks, progress)
    except KeyboardInterrupt:
        return fail(f"interrupted: every finished record is kept in {out}; rerun the same command to resume", 130)
    except CritBenchError as error:
        return fail(str(error))
    for result in progress.failed:
        print(f"failed: {result.label}: {result.reason}\n  record: {result.path}", file=sys.stderr)
    print(f"{progress.done - len(progress.failed)} runs completed, {len(progress.failed)} failed "
          f"({duration(time.monotonic() - progress.start)}); {plan.complete + progress.done - len(progress.failed)} "
          f"complete records in {out}", file=sys.stderr)
    code = 1 if progress.failed else 0
    if args.no_report:
        print(out)
        return code
    html = Path(args.report) if args.report else out / "report.html"
    try:
        print(make_report(out, html))
    except CritBenchError as error:
        return fail(str(error), code=1)
    except Exception as error:  # the records are safe; only the report is missing
        return fail(f"building the report failed ({type(error).__name__}: {error}); the records are in {out}", code=1)
    return code


if __name__ == "__main__":
    sys.exit(main())
