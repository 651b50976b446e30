"""`python -m benchmarks.leaderboard`: run a suite of datasets x methods x seeds, then the report.

Stop it at any moment and rerun the same command to resume.

Each run writes `<out>/<run_id>.json` when complete, or `<out>/<run_id>.failed.json` (reason and
traceback) when it crashed or diverged. A rerun skips complete runs and retries failed ones unless
--no-retry-failed. Progress goes to stderr, and at the end the leaderboard, a verdict per dataset
and what to run next; the last stdout line is the report's path (or the output folder with
--no-report).
"""
from __future__ import annotations

from benchmarks.core.console import interruptible, interrupted  # first: Ctrl-C while importing torch is one line
import shlex
import sys
import time
from pathlib import Path

from benchmarks.core.cli import ArgumentParser, counted, fail
from benchmarks.core.outputs import check_writable_dir, check_writable_file
from benchmarks.core.errors import CritBenchError
from benchmarks.core.storage import remove_stale_temporaries
from benchmarks.engine.device import resolve_device
from benchmarks.sweep.executors import EXECUTORS, create_executor
from benchmarks.sweep.plan import DataFingerprints, describe_plan, make_plan
from benchmarks.sweep.progress import SuiteProgress, duration
from benchmarks.sweep.suite import Suite, expand, list_suites, load_suite, parse_seeds, select
from benchmarks.sweep.search import failed_searches, record_suite_searches, suite_searches, tune_suite
from reports.build import add_plotly_argument
from reports.report import build_report


def add_selection_arguments(parser) -> None:
    """The options that choose what of a suite runs, and on which data (also `benchmarks.speed --suite`)."""
    parser.add_argument("--datasets", metavar="A,B", help="only these datasets, comma-separated (a dataset not in the suite is added)")
    parser.add_argument("--methods", metavar="X,Y", help="only these methods, comma-separated (a method not in the suite is added)")
    parser.add_argument("--seeds", metavar="0-2", help="seed indices, e.g. 0-2 or 0,3 (default: the suite's)")
    parser.add_argument("--epochs", type=int, metavar="N", help="maximum epochs of every run (default: the suite's)")
    parser.add_argument("--data-dir", metavar="DIR", help="folder with the data (default $CRITBENCH_DATA, else each dataset's default)")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m benchmarks.leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="full", metavar="NAME|FILE", help=f"built-in suite ({', '.join(list_suites())}) or a TOML file (default full)")
    add_selection_arguments(parser)
    parser.add_argument("--out", metavar="DIR", help="folder of the run records (default runs/<suite>)")
    parser.add_argument("--executor", default="local", choices=EXECUTORS, help="where runs execute (default local)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the suite's, else auto)")
    parser.add_argument("--report", metavar="FILE.html", help="HTML report to write at the end (default <out>/report.html)")
    parser.add_argument("--no-report", action="store_true", help="do not build the report")
    add_plotly_argument(parser)
    parser.add_argument("--no-retry-failed", action="store_true", help="skip runs that failed before instead of retrying them")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the runs still to do; train nothing")
    parser.add_argument("--runs-per-device", type=int, default=1, metavar="N",
                        help="runs at once on each device, each its own process (local and ray executors; default 1)")
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


def split_names(text: str | None, flag: str) -> list[str] | None:
    """`"a, b,a"` -> ["a", "b"]; None when the flag is not given; CritBenchError when it names
    nothing (`--methods ,` must not run the whole suite)."""
    if text is None:
        return None
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise CritBenchError(f"{flag} {text!r} names nothing; give comma-separated names, or leave {flag} out "
                             f"to run all of the suite's")
    return names


def suite_from_args(args) -> Suite:
    suite = load_suite(args.suite)
    run = {"epochs": args.epochs} if args.epochs is not None else {}
    return select(suite, datasets=split_names(args.datasets, "--datasets"), methods=split_names(args.methods, "--methods"),
                  seeds=parse_seeds(args.seeds) if args.seeds else None, run=run)


def executor_options(args, suite: Suite) -> tuple[dict, dict]:
    """The [ray] and [slurm] tables of the suite with the CLI's values on top."""
    ray = {**suite.ray, **({"address": args.ray_address} if args.ray_address else {})}
    cli = {key: getattr(args, f"slurm_{key}") for key in
           ("partition", "gpus", "cpus", "mem_gb", "time_min", "parallel", "folder", "cluster")}
    return ray, {**suite.slurm, **{k: v for k, v in cli.items() if v is not None}}


def planned_out(out: Path) -> Path:
    """A dry run's --out: read where it exists, never created (a dry run writes nothing)."""
    out = out.expanduser()
    if out.exists() and not out.is_dir():
        raise CritBenchError(f"--out {out} is a file, not a folder; give a folder (it is created when missing)")
    return out.resolve()


def prepare(args):
    """Everything that can be refused before any training: the suite, the runs, the searches of the
    methods with `tune`, the executor and every output (the records' folder, the report's file)."""
    suite = suite_from_args(args)
    machine = {"device": args.device} if args.device else {}
    if args.data_dir:
        machine["data_dir"] = str(Path(args.data_dir).resolve())  # workers may start elsewhere
    runs = expand(suite, machine)
    ray, slurm = executor_options(args, suite)
    if args.executor == "local":  # runs train here: a device that is not here is refused once, up front
        for device in dict.fromkeys(run.config.device for run in runs):
            resolve_device(device)
    out = planned_out(Path(args.out or Path("runs") / suite.name)) if args.dry_run else check_writable_dir(
        args.out or Path("runs") / suite.name, "--out")
    html = None if args.no_report or args.dry_run else check_writable_file(args.report or out / "report.html", "--report")
    executor = create_executor(args.executor, out_dir=out, device=runs[0].config.device, ray=ray, slurm=slurm,
                               progress=sys.stderr.isatty(), runs_per_device=args.runs_per_device)
    return suite, runs, out, html, executor, machine, suite_searches(suite, machine, out)


def summary(plan, progress: SuiteProgress, out: Path) -> tuple[str, bool]:
    """The closing lines, and whether every planned run now has a complete record in `out`."""
    lines = [f"failed: {result.label}: {result.reason}\n  record: {result.path}" for result in progress.outcomes["failed"]]
    lines += [f"rescued: {result.label}: {result.reason}" for result in progress.outcomes["rescued"]]
    claimed = progress.outcomes["claimed"]
    if claimed:
        lines.append(f"{len(claimed)} runs were being trained by another process on {out}; rerun this command when "
                     f"it is done to include them")
    done, elsewhere = len(progress.outcomes["complete"]), len(progress.outcomes["elsewhere"])
    unavailable = sum(len(labels) for labels in plan.unavailable.values())
    lines.append(f"{counted(done, 'run')} completed, {len(progress.outcomes['failed'])} failed, {len(progress.outcomes['rescued'])} "
                 f"rescued, {len(claimed)} left to another process, {elsewhere} finished by another process, {unavailable} skipped (data unavailable), "
                 f"{len(plan.failed_kept)} failed before and not retried ({duration(time.monotonic() - progress.start)}); "
                 f"{plan.complete + done + elsewhere} complete records in {out}")
    everything = done + elsewhere == progress.total and not unavailable and not plan.failed_kept
    return "\n".join(lines), everything


def main(argv=None) -> int:
    """Run a suite's missing runs (after its tuned methods' searches) and build its report.

    Exit code 0: every planned run has a complete record; 1: some have not (failed, rescued
    elsewhere, left to another process, data unavailable, a search that selected nothing) or the
    report failed; 2: bad input;
    130 / 143: interrupted by Ctrl-C / SIGTERM (finished records kept; rerun to resume)."""
    args = build_parser().parse_args(argv)
    out = None
    with interruptible():
        try:
            suite, runs, out, html, executor, machine, searches = prepare(args)
            remove_stale_temporaries(out)
            command = "python -m benchmarks.leaderboard " + shlex.join(sys.argv[1:] if argv is None else argv)
            fingerprints = DataFingerprints()
            if searches:  # tuned methods run with what their search selects; a dry run lists the others
                runs = expand(suite, machine, {entry.key: None for entry in searches} if args.dry_run else
                              tune_suite(searches, executor, fingerprints, command))
            plan = make_plan(runs, out, retry_failed=not args.no_retry_failed, command=command)
            print(describe_plan(suite, runs, plan, out, args.executor), file=sys.stderr, flush=True)
            if args.dry_run:  # exit 1 where some runs cannot be planned (their data is unavailable), as a real run
                for task in plan.tasks:
                    print(f"{task.run_id}\t{task.label}\tseed {task.config.seed}")
                return 1 if plan.unavailable else 0
            progress = SuiteProgress(len(plan.tasks))
            if plan.tasks:
                executor.run(plan.tasks, progress)
            record_suite_searches(searches, runs, out, fingerprints)
        except CritBenchError as error:
            return fail(str(error))
        except KeyboardInterrupt as error:
            return interrupted(error, f"every finished record is kept in {out}; rerun the same command to resume"
                               if out else "before any run started")
    text, everything = summary(plan, progress, out)
    searches_failed = failed_searches(searches)
    print("\n".join([*searches_failed, text]), file=sys.stderr)
    everything = everything and not searches_failed
    code = 0 if everything else 1
    if html is None:
        print(out)
        return code
    try:
        print(build_report(out, html, plotly=args.plotly, summary=sys.stderr))
    except CritBenchError as error:
        return fail(str(error), code=1)
    except Exception as error:  # the records are safe; only the report is missing
        return fail(f"building the report failed ({type(error).__name__}: {error}); the records are in {out}: "
                    f"build it later with python -m reports.build --runs {out} --out {html}", code=1)
    return code


if __name__ == "__main__":
    sys.exit(main())
