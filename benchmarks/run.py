"""`python -m benchmarks.run --dataset D --method M [...]`: train, score on test, write the record.

The record's path is the last line of stdout; progress goes to stderr.
"""
from __future__ import annotations

from benchmarks.core.console import interruptible, interrupted  # first: Ctrl-C while importing torch is one line
import math
import shlex
import sys
from pathlib import Path

from benchmarks.core.cli import ArgumentParser, fail, parse_key_values
from benchmarks.core.outputs import check_writable_dir, save_record_safely
from benchmarks.core.config import MODEL, SELECTIONS, TASKS, RunConfig, default
from benchmarks.core.errors import CritBenchError
from benchmarks.core.identity import run_id
from benchmarks.core.storage import record_path, record_state
from benchmarks.engine.checkpoint import remove_checkpoint, run_checkpoint_dir
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from benchmarks.methods import get_method, list_methods, resolve_params
from benchmarks.methods.base import methods_for_task
from benchmarks.methods.sampling import SAMPLERS
from benchmarks.sweep.plan import DataFingerprints
from datasets import get_dataset_entry, list_datasets
from models3d import STEMS, list_models


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list datasets and methods, then exit")
    parser.add_argument("--dataset", help="dataset name (see --list)")
    parser.add_argument("--method", help="training method (see --list)")
    parser.add_argument("--seed", type=int, default=default("seed"),
                        help="seed of the initialization, batch order, augmentation and subsampling (default %(default)s)")
    parser.add_argument("--epochs", type=int,
                        help=f"maximum epochs (default: the dataset's protocol, e.g. 200 for long-tailed CIFAR, else "
                             f"{default('epochs')}, the MedMNIST v2 recipe)")
    parser.add_argument("--batch-size", type=int, help="default 128 in 2D, 32 in 3D, or the preset's")
    parser.add_argument("--lr", type=float, help="learning rate (default: the method's recipe)")
    parser.add_argument("--size", type=int, help="image side: 28 or 64 for 3D MedMNIST, 28, 64, 128 or 224 for 2D, 32 for CIFAR, a range for NIfTI and image folders (default: the dataset's; docs/datasets.md lists each)")
    parser.add_argument("--imbalance", type=float, help="keep 1 training positive per R negatives (cifar default 100)")
    parser.add_argument("--max-train-samples", type=int, help="stratified subset of train, for smoke runs (under --task multiclass on the classes, each kept)")
    parser.add_argument("--patience", type=int,
                        help="stop once more than P epochs passed since the best val AUC (0: never; default: the "
                             "dataset's protocol, 0 for MedMNIST v2 and your data, 30 for CIFAR as the ALM paper)")
    parser.add_argument("--model", help=f"backbone: {', '.join(list_models())} (default {MODEL}, or the preset's)")
    parser.add_argument("--stem", default=default("stem"), help=f"first layer: {', '.join(STEMS)}")
    parser.add_argument("--width", type=float, default=default("width"), help="channel width multiplier")
    parser.add_argument("--no-amp", dest="amp", action="store_false",
                        help="fp32 everywhere (default: bf16 autocast on CUDA and on CPUs with AMX, AVX512_BF16 or AVX-NE-CONVERT)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (off by default; see docs/speed.md)")
    parser.add_argument("--sampler", default=default("sampler"), help=f"batch sampling: {', '.join(SAMPLERS)}")
    parser.add_argument("--task", default=default("task"), choices=TASKS,
                        help="binary: the critical class vs the rest (default); multiclass: a K-way head on every "
                             "label, the critical class scored by its probability (docs/datasets.md)")
    parser.add_argument("--select-on", default=default("select_on"), choices=SELECTIONS,
                        help="the validation AUC that selects the checkpoint and stops early: the critical class's "
                             "(default), or with --task multiclass the mean over every label (MedMNIST v2's)")
    parser.add_argument("--augment", help="+-joined crop, crop_flip, flip, rotate, scale, or none (default: the dataset's)")
    parser.add_argument("--param", action="append", metavar="KEY=VALUE", help="method or dataset hyperparameter; repeatable")
    parser.add_argument("--data-dir", help="folder with the data (default $CRITBENCH_DATA, else ~/.medmnist for MedMNIST, ~/.cache/critbench for CIFAR)")
    parser.add_argument("--out", default="runs", help="folder for the JSON record (default runs/)")
    parser.add_argument("--device", default=default("device"), help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true",
                        help="train again even when --out holds this run's complete record (default: skip it)")
    return parser


def listing() -> str:
    lines = ["datasets:"]
    for name in list_datasets():
        entry = get_dataset_entry(name)
        lines.append(f"  {name:16s} {entry.description}")
        lines += [f"  {'':16s}   --param {key}: {text}" for key, text in entry.params.items()]
    lines.append("tasks (--task):")
    lines.append(f"  {'binary':16s} the critical class vs the rest (default): {', '.join(methods_for_task('binary'))}")
    lines.append(f"  {'multiclass':16s} a K-way head on every label, the critical class scored by its probability: "
                 f"{', '.join(methods_for_task('multiclass'))}")
    lines.append("methods:")
    for name in list_methods():
        defaults = ", ".join(f"{k}={v}" for k, v in resolve_params(name, {}).items())
        lines.append(f"  {name:16s} {get_method(name).description}")
        lines.append(f"  {'':16s}   --param {defaults}")
    return "\n".join(lines)


def config_from_args(args) -> RunConfig:
    if not args.dataset or not args.method:
        raise CritBenchError("--dataset and --method are required; see --list for the choices")
    params = parse_key_values(args.param)
    if args.lr is not None:
        if "lr" in params:
            raise CritBenchError(f"the learning rate is given twice (--lr {args.lr:g} and --param lr={params['lr']}); "
                                 f"give it once")
        params["lr"] = args.lr
    return RunConfig(
        dataset=args.dataset, method=args.method, seed=args.seed,
        epochs=args.epochs if args.epochs is not None else get_dataset_entry(args.dataset).epochs or default("epochs"),
        batch_size=args.batch_size, size=args.size, imbalance=args.imbalance,
        max_train_samples=args.max_train_samples, patience=args.patience, model=args.model,
        stem=args.stem, width=args.width, amp=args.amp, sampler=args.sampler, task=args.task, select_on=args.select_on,
        augment=args.augment,
        params=params, device=args.device,
        data_dir=args.data_dir, compile=args.compile,
    )


def below_chance_warning(record: dict) -> str:
    """Why a run's validation AUC can sit below 0.5: measured on VesselMNIST3D (128 train volumes,
    ResNet-18 3D, one epoch = 4 steps) the eval-mode logits were nearly constant (std 0.03, val AUC
    0.30) while the same weights scored 0.66 with batch statistics and 0.73 with the batch-norm
    running statistics re-estimated over train: after k steps PyTorch's running statistics
    (momentum 0.1) hold only 1 - 0.9^k of the data's. docs/failure-modes.md explains it."""
    steps = len(record["history"]) * math.ceil(record["dataset"]["splits"]["train"]["n"] / record["config"]["batch_size"])
    return (f"warning: validation AUC {record['val']['auc']:.3f} is below chance. After about {steps} optimizer steps "
            f"the batch-norm running statistics hold only {1 - 0.9 ** steps:.0%} of the data's, so evaluation "
            f"scores can be near-constant and even inverted: train longer (--epochs) before reading this as a "
            f"method's result")


def finished_record(config: RunConfig, out: Path) -> Path | None:
    """The complete record of `config`'s run in `out`, if there is one. Its run id needs the data's
    checksum, which is computed only when `out` holds a record of the same dataset, method and seed."""
    if not any(out.glob(f"{config.dataset}-{config.method}-s{config.seed}-*.json")):
        return None
    identity = run_id(config, DataFingerprints().of(config))
    return record_path(out, identity) if record_state(out, identity) == "complete" else None


def main(argv=None) -> int:
    """Train one run (resumed from its last finished epoch when a checkpoint is left) and write its record.

    Exit code 0: complete; 1: the run failed (a failure record is written) or its record could only
    be rescued elsewhere; 2: bad input; 130 / 143: interrupted (rerun to resume)."""
    args = build_parser().parse_args(argv)
    if args.list:
        print(listing())
        return 0
    with interruptible():
        try:
            config = resolve_config(config_from_args(args))
            out = check_writable_dir(args.out, "--out")  # before training, not after
            checkpoints = run_checkpoint_dir(out)
            finished = None if args.force else finished_record(config, out)
            if finished:
                print(f"already complete, not retrained (add --force to train it again): {finished}", file=sys.stderr)
                print(finished)
                return 0
            command = "python -m benchmarks.run " + shlex.join(sys.argv[1:] if argv is None else argv)
            record = run_benchmark(config, progress=not args.quiet, checkpoint_dir=checkpoints, command=command)
        except CritBenchError as error:
            return fail(str(error))
        except KeyboardInterrupt as error:
            return interrupted(error, "no record written; rerun the same command to resume from the last "
                                      "finished epoch")
    path, warning = save_record_safely(record, out)
    if warning:
        fail(warning, code=1)
    elif record["status"] == "complete":
        remove_checkpoint(checkpoints, record["run_id"])
    if record["status"] != "complete":
        if record["failure"] == "crashed":
            print(record["traceback"], end="", file=sys.stderr)
        fail(f"the run {record['failure']}: {record['reason']}; failure record written (a rerun retries it)", code=1)
    else:
        test = record["test"]
        print(f"test AUC {test['auc']:.4f}  TPR@FPR=0.1 {test['tpr_at_fpr']['0.1']:.3f}  "
              f"FPR@TPR=0.95 {test['fpr_at_tpr']['0.95']:.3f}  best epoch {record['best_epoch']}  "
              f"{record['seconds']:.1f}s", file=sys.stderr)
        if record["val"]["auc"] < 0.5:
            print(below_chance_warning(record), file=sys.stderr)
    if path is not None:
        print(path)
    return 0 if record["status"] == "complete" and not warning else 1


if __name__ == "__main__":
    sys.exit(main())
