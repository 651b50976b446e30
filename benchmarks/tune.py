"""`python -m benchmarks.tune --dataset D --method M --space NAME=VALUES [...]`: search hyperparameters
on validation data (Optuna), then train the selected configuration with the leaderboard's seeds and
score it on test once.

Trial records go to <out>/trials/, the study to <out>/tune.db, the selected configuration's run
records to <out>/ and the search to <out>/search.json (the last stdout line). Stop it at any moment
and rerun the same command to resume.
"""
from __future__ import annotations

from benchmarks.core.console import interruptible, interrupted  # first: Ctrl-C while importing torch is one line
import dataclasses
import shlex
import sys
from pathlib import Path

from benchmarks.core.cli import counted, fail
from benchmarks.core.errors import CritBenchError
from benchmarks.core.outputs import check_writable_dir
from benchmarks.core.identity import run_id
from benchmarks.core.storage import read_json, record_path, record_state, remove_stale_temporaries
from benchmarks.engine.resolve import resolve_config
from benchmarks.run import build_parser as run_parser, config_from_args, listing
from benchmarks.sweep.executors import EXECUTORS, create_executor
from benchmarks.sweep.plan import DataFingerprints, make_plan
from benchmarks.sweep.progress import SuiteProgress
from benchmarks.sweep.suite import PlannedRun, derive_seed, parse_seeds
from benchmarks.sweep.search import (SearchFailed, default_parallel, executor_session, record_search,
                                     select_configuration, selected_trial)
from benchmarks.sweep.tuning import OBJECTIVES, PRUNERS, SEARCH_SAMPLERS, Search, default_storage, parse_space
from reports.tables import number
from reports.tuning import shown_params


def build_parser():
    """benchmarks.run's flags (the base configuration of every trial) plus the search's."""
    parser = run_parser()
    parser.prog, parser.description = "python -m benchmarks.tune", __doc__.splitlines()[0]
    parser.set_defaults(out=None)
    parser._option_string_actions["--out"].help = "folder of the search (default runs/tune/<dataset>-<method>)"
    parser._option_string_actions["--seed"].help = "refused: the final runs take the leaderboard's seeds (--seeds)"
    search = parser.add_argument_group("search")
    search.add_argument("--space", action="append", metavar="NAME=SPEC",
                        help="a hyperparameter's values (delta=0.1,0.25,0.5) or range (mu0=log:1e-7..1e-3, "
                             "lr=1e-4..1e-2, n=int:1..5); repeatable")
    search.add_argument("--trials", type=int, default=20, help="trials to finish (default 20)")
    search.add_argument("--cv", type=int, metavar="K",
                        help="stratified group K-fold over train+val (exact copies in one fold), objective "
                             "averaged over folds (default: the official validation split)")
    search.add_argument("--objective", default="val_auc", help=f"{', '.join(OBJECTIVES)} (default val_auc)")
    search.add_argument("--search-sampler", default="tpe", help=f"{', '.join(SEARCH_SAMPLERS)} (default tpe)")
    search.add_argument("--pruner", default="median", help=f"{', '.join(PRUNERS)}: median pruning on per-epoch "
                                                           f"validation AUC (default median)")
    search.add_argument("--search-seed", type=int, default=0, help="seed of the sampler and the folds (default 0)")
    search.add_argument("--seeds", default="0", help="seed indices of the selected configuration's runs, as the "
                                                     "leaderboard's (default 0)")
    search.add_argument("--storage", help="Optuna storage URL (default sqlite:///<out>/tune.db)")
    search.add_argument("--study-name", help="default <dataset>-<method>")
    search.add_argument("--parallel", type=int, metavar="N", help="trials run at once (default: the executor's "
                                                                  "worker slots, else 1)")
    search.add_argument("--executor", default="local", choices=EXECUTORS, help="where trials and runs execute")
    search.add_argument("--runs-per-device", type=int, default=1, metavar="N", help="as for the leaderboard")
    search.add_argument("--ray-address", metavar="ADDRESS", help="a running Ray cluster (default: a local instance)")
    search.add_argument("--slurm-cluster", choices=("slurm", "local"), help="local: job arrays as local processes")
    return parser


def prepare(args, argv: list[str]):
    """Everything refused before any training: the flags, the space, the search, the outputs."""
    if "--seed" in argv or any(a.startswith("--seed=") for a in argv):
        raise CritBenchError("--seed is not a tune option: trials and final runs take the leaderboard's seeds; "
                             "use --seeds (seed indices) and --search-seed (sampler and folds)")
    base = resolve_config(config_from_args(args))
    base = dataclasses.replace(base, seed=derive_seed(base, 0))  # the leaderboard's seed index 0
    search = Search(base, parse_space(args.space, base.method), args.objective, folds=args.cv, trials=args.trials,
                    sampler=args.search_sampler, pruner=args.pruner, seed=args.search_seed)
    seeds = parse_seeds(args.seeds)
    if args.parallel is not None and args.parallel < 1:
        raise CritBenchError(f"--parallel must be >= 1, got {args.parallel}")
    out = check_writable_dir(args.out or Path("runs") / "tune" / f"{base.dataset}-{base.method}", "--out")
    trials_dir = check_writable_dir(out / "trials", "the trials folder")
    executor = create_executor(args.executor, out_dir=out, device=base.device,
                               ray={"address": args.ray_address} if args.ray_address else {},
                               slurm={"cluster": args.slurm_cluster} if args.slurm_cluster else {},
                               runs_per_device=args.runs_per_device, progress=not args.quiet and sys.stderr.isatty())
    parallel = args.parallel or default_parallel(executor)
    storage = args.storage or default_storage(out)
    return search, seeds, out, trials_dir, executor, parallel, storage, args.study_name or f"{base.dataset}-{base.method}"


def final_runs(search: Search, params: dict, seeds: tuple[int, ...]) -> list[PlannedRun]:
    """The selected configuration with each seed index's leaderboard seed."""
    config = search.trial_config(params)
    return [PlannedRun(dataclasses.replace(config, seed=derive_seed(config, index)), config.dataset, index, params)
            for index in seeds]


def describe(summary: dict, out: Path) -> str:
    """The search (objective per trial, validation only), the choice, and the selected runs' test AUC."""
    lines = [f"study {summary['study']}: {len(summary['trials'])} trials ({summary['objective']}, "
             f"{summary['direction']}); budget {summary['budget']}"]
    lines += [f"  trial {t['number']:3d} {t['state']:8s} {number(t['value'], 4)}  {shown_params(t['params'])}"
              + ("  (interrupted, asked again)" if t["interrupted"] else "") for t in summary["trials"]]
    selected = summary["selected"]
    lines.append(f"selected trial {selected['trial']}: {shown_params(selected['params'])} ({summary['objective']} "
                 f"{number(selected['value'], 4)})")
    for identity in summary["final_runs"]:
        record, _ = read_json(record_path(out, identity))
        lines.append(f"  {identity}: test AUC {number(((record or {}).get('test') or {}).get('auc'), 4)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Search a method's hyperparameters on validation data, then train the selected configuration's
    seeds and mark their records.

    Exit code 0: the search and the selected configuration's runs are complete; 1: some final run
    has no complete record (failed, rescued, left to another process), no trial completed, or
    another process is running the search; 2: bad input; 130 / 143:
    interrupted (rerun to resume)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.list:
        print(listing())
        return 0
    command = "python -m benchmarks.tune " + shlex.join(argv)
    out = None
    with interruptible():
        try:
            search, seeds, out, trials_dir, executor, parallel, storage, name = prepare(args, argv)
            remove_stale_temporaries(out)
            fingerprints = DataFingerprints()
            with executor_session(executor):
                study = select_configuration(search, storage, name, executor, trials_dir,
                                             lambda config: run_id(config, fingerprints.of(config)), parallel, command)
                runs = final_runs(search, selected_trial(study).params, seeds)
                plan = make_plan(runs, out, retry_failed=True, command=command)
                progress = SuiteProgress(len(plan.tasks))
                if plan.tasks:
                    executor.run(plan.tasks, progress)
            identities = [run_id(run.config, fingerprints.of(run.config)) for run in runs]
            summary, path = record_search(search, study, storage, out, out, identities)
        except SearchFailed as error:
            return fail(str(error), code=1)
        except CritBenchError as error:
            return fail(str(error))
        except KeyboardInterrupt as error:
            return interrupted(error, f"the study and every finished trial are kept in {out}; rerun the same "
                               f"command to resume" if out else "before any trial started")
    missing = [identity for identity in identities if record_state(out, identity) != "complete"]
    print(describe(summary, out), file=sys.stderr)
    if missing:
        print(f"{counted(len(missing), 'selected run')} without a complete record in {out} (failed, rescued or left "
              f"to another process, above); rerun the same command to finish", file=sys.stderr)
    print(path)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
