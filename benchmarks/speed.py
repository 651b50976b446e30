"""`python -m benchmarks.speed`: CritBench's training step vs a MedMNIST-v2-style reference pipeline,
or (`--suite`) the wall time of a whole leaderboard suite, phase by phase.

For each case (2D ResNet18 28 px batch 128, 3D ResNet18 28^3 batch 32, 3D 64^3 batch 8) it times
training and evaluation samples/s of
1. CritBench: `benchmarks.engine.trainer.Trainer` exactly as runs use it (`train_epoch()`, `predict()`), and
2. the reference pipeline in `benchmarks/speed_reference.py` (per-sample Dataset, transforms,
   DataLoader workers, fp32), with the same model, batch size and device,
over repeated timed windows after warm-up, on synthetic data of the right shape. It prints one table
and writes it as JSON. Results and the optimization log: docs/speed.md.

With `--suite NAME|FILE` it runs that suite through `benchmarks.leaderboard` itself (same planning,
executor and report) into an empty folder and splits the process's wall time, from interpreter
start to the finished report, into phases (`benchmarks.core.phases`): interpreter + imports,
planning, data loading, setup, training epochs, evaluation, checkpoints, records, report, other.
`--no-cache` runs it with the datasets' caches off (`cache_dir = none`): the start-up costs before
the decode cache and the md5 index. `--runs-per-device N` runs N at once per device, each in a worker
process (the leaderboard's option): the total and runs per minute are then the measure, and the
runs' own phases (load to records), spent in the workers, are one row.
"""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import leaderboard
from benchmarks.core import phases
from benchmarks.core.cli import ArgumentParser, fail
from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.outputs import check_writable_file
from benchmarks.core.machine import base_environment
from benchmarks.core.storage import write_json_atomic
from benchmarks.engine.device import device_environment, resolve_device
from benchmarks.engine.resolve import resolve_config
from benchmarks.engine.speed_reference import ReferencePipeline
from benchmarks.engine.trainer import Trainer
from benchmarks.sweep.suite import read_suite_file, suite_path, tomllib
from datasets import BinaryDataset, Split, get_dataset_entry
from models3d import create_model

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets; the first
# substring found in torch.cuda.get_device_name() wins. Unknown devices get no peak fraction.
BF16_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0),
    ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0), ("A10G", 70.0), ("L4", 121.0),
)


@dataclass(frozen=True)
class Case:
    dims: int
    size: int
    batch: int
    cpu_steps: int  # default steps per timed window on the CPU (a 3D step is tens of seconds there)
    cuda_steps: int


CASES = {
    "2d-28": Case(2, 28, 128, cpu_steps=2, cuda_steps=50),
    "3d-28": Case(3, 28, 32, cpu_steps=1, cuda_steps=50),
    "3d-64": Case(3, 64, 8, cpu_steps=1, cuda_steps=20),
}
CPU_DEFAULT_CASES = ("2d-28", "3d-28")  # 3d-64 is ~1.3 TFLOP per training volume: minutes per step on a small CPU
PRECISION_NAMES = {"bf16-autocast": "bf16 autocast, channels-last", "fp32": "fp32"}  # config.precision -> table
# --suite: the phases in table order (benchmarks.core.phases names, `imports` and `other` added here)
SUITE_PHASES = {
    "imports": "interpreter + imports",
    "plan": "plan (suite, data fingerprints)",
    "load": "load (create_dataset, checksums)",
    "setup": "setup (model, method, data to device)",
    "train": "train (training epochs)",
    "eval": "eval (val per epoch, final val/test)",
    "checkpoint": "checkpoints (every epoch)",
    "record": "records",
    "report": "report (HTML, CSV, Markdown)",
    "other": "other (not in a phase)",
}
# options of each mode: given in the other mode, they are refused rather than ignored
STEP_OPTIONS = ("--cases", "--steps", "--repeats", "--warmup", "--workers", "--method", "--compile", "--no-amp", "--width",
                "--size", "--batch-size")
SPEED_DIR = Path("speed")  # the default folder of the timings: not runs/, which holds run records
SUITE_OPTIONS = ("--datasets", "--methods", "--seeds", "--epochs", "--data-dir", "--out", "--no-cache", "--runs-per-device")
RUN_PHASES = ("load", "setup", "train", "eval", "checkpoint", "record")  # inside a run: in a worker process with a pool


def bf16_peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a CUDA device named `device_name`, None when unknown."""
    return next((peak for key, peak in BF16_PEAK_TFLOPS if key in device_name), None)


def model_flops(dims: int, size: int, batch: int, width: float, train: bool) -> float:
    """FLOPs of one forward (+ backward when `train`) pass per sample, counted on the meta device."""
    with torch.device("meta"):
        model = create_model(dims, 1, width=width)
        x = torch.empty((batch, 1) + (size,) * dims)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x)
        if train:
            out.sum().backward()
    return counter.get_total_flops() / batch


def synthetic_arrays(n: int, dims: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images and binary labels (about 1 positive in 10, both classes present)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 1) + (size,) * dims, dtype=np.uint8)
    labels = (rng.random(n) < 0.1).astype(np.uint8)
    labels[:2] = (0, 1)
    return images, labels


def build_critbench(args, case: Case, train, evaluate):
    """A `Trainer` for method `args.method` on the synthetic arrays, configured as a run would be."""
    def split(arrays):
        return Split(torch.from_numpy(arrays[0]), torch.from_numpy(arrays[1]))

    dataset = BinaryDataset(name=f"synthetic{case.dims}d", dims=case.dims, critical_class="positive",
                            negative_class="negative", train=split(train), val=split(evaluate), test=split(evaluate))
    config = resolve_config(RunConfig(dataset=f"synthetic{case.dims}d", method=args.method, batch_size=case.batch,
                                      size=case.size, width=args.width, device=args.device, compile=args.compile, amp=args.amp,
                                      patience=0))
    trainer = Trainer(config, dataset, resolve_device(config.device), progress=False)
    return trainer.train_epoch, lambda: trainer.predict("val"), config.precision


def build_reference(args, case: Case, train, evaluate, device: torch.device):
    torch.manual_seed(0)
    model = create_model(case.dims, 1, width=args.width)
    pipeline = ReferencePipeline(model, train, evaluate, case.batch, device, args.workers)
    return pipeline.train_epoch, pipeline.predict


def time_windows(fns: dict, n_samples: int, warmup: int, repeats: int, device: torch.device) -> dict:
    """Samples/s of each `fns[name]()` (one window of `n_samples`) over `repeats` timed calls after
    `warmup` untimed ones; the pipelines take turns, so a load change on a shared machine hits both."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    rates = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()  # both pipelines end a window with a device-to-host copy of the loss or scores
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            rates[name].append(n_samples / (time.perf_counter() - start))
    return {name: {"samples_per_s": statistics.median(r), "min": min(r), "max": max(r),
                   "spread": (max(r) - min(r)) / statistics.median(r), "windows": r} for name, r in rates.items()}


def run_case(args, name: str) -> dict:
    base = CASES[name]
    case = Case(base.dims, args.size or base.size, args.batch_size or base.batch, base.cpu_steps, base.cuda_steps)
    device = torch.device(args.device)  # resolved by main()
    steps = args.steps or (base.cuda_steps if device.type == "cuda" else base.cpu_steps)
    n = steps * case.batch
    train, evaluate = synthetic_arrays(n, case.dims, case.size, 1), synthetic_arrays(n, case.dims, case.size, 2)
    print(f"[{name}] {steps} steps x batch {case.batch} per window, {args.warmup} warm-up + {args.repeats} timed",
          file=sys.stderr, flush=True)
    cb_train, cb_eval, precision = build_critbench(args, case, train, evaluate)
    ref_train, ref_eval = build_reference(args, case, train, evaluate, device)
    timing = {"warmup": args.warmup, "repeats": args.repeats, "n_samples": n, "device": device}
    result = {"case": name, "dims": case.dims, "size": case.size, "batch": case.batch, "steps_per_window": steps,
              "critbench_precision": PRECISION_NAMES[precision],
              "flops_per_sample": {"train": model_flops(case.dims, case.size, case.batch, args.width, True),
                                   "eval": model_flops(case.dims, case.size, case.batch, args.width, False)}}
    train_rates = time_windows({"critbench": cb_train, "reference": ref_train}, **timing)
    evaluation = time_windows({"critbench": cb_eval, "reference": ref_eval}, **timing)
    for pipeline in ("critbench", "reference"):
        result[pipeline] = {"train": train_rates[pipeline], "eval": evaluation[pipeline]}
    peak = args.peak
    for phase in ("train", "eval"):
        critbench, reference = result["critbench"][phase], result["reference"][phase]
        result[f"ratio_{phase}"] = critbench["samples_per_s"] / reference["samples_per_s"]
        for entry in (critbench, reference):
            entry["tflops"] = entry["samples_per_s"] * result["flops_per_sample"][phase] / 1e12
            entry["bf16_peak_fraction"] = entry["tflops"] / peak if peak else None
    return result


def precision_summary(cases: list[dict]) -> str:
    """The precision CritBench trained in, as its Trainer resolved it per case (a CPU keeps fp32
    for models with tiny feature maps: device.CPU_BF16_MIN_SIDE)."""
    names = {case["critbench_precision"] for case in cases}
    if len(names) == 1:
        return names.pop()
    return "; ".join(f"{case['case']} {case['critbench_precision']}" for case in cases)


def rate(entry: dict) -> str:
    return f"{entry['samples_per_s']:8.1f} ±{100 * entry['spread'] / 2:3.0f}%"


def format_table(report: dict) -> str:
    """One fixed-width table: samples/s (median ± half the min-max spread) and achieved TFLOP/s."""
    peak = report["bf16_peak_tflops"]
    head = (f"{'case':6s} {'phase':5s} {'critbench/s':>14s} {'reference/s':>14s} {'ratio':>6s} "
            f"{'TFLOP/s cb':>10s} {'TFLOP/s ref':>11s}" + (f" {'cb % bf16 peak':>14s}" if peak else ""))
    lines = [f"device: {report['device_name']} | torch {report['torch']} | critbench precision: "
             f"{report['critbench_precision']} | reference: fp32, {report['settings']['workers']} loader workers",
             head, "-" * len(head)]
    for case in report["cases"]:
        for phase in ("train", "eval"):
            cb, ref = case["critbench"][phase], case["reference"][phase]
            line = (f"{case['case']:6s} {phase:5s} {rate(cb):>14s} {rate(ref):>14s} {case[f'ratio_{phase}']:5.2f}x "
                    f"{cb['tflops']:10.3f} {ref['tflops']:11.3f}")
            if peak:
                line += f" {100 * cb['bf16_peak_fraction']:13.1f}%"
            lines.append(line)
    return "\n".join(lines)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--device", help="auto (CUDA if available), cpu, cuda or cuda:N (default auto; --suite: the suite's)")
    parser.add_argument("--json", help=f"output file (default {SPEED_DIR}/speed-<cpu|cuda>.json; --suite: "
                                       f"{SPEED_DIR}/speed-suite-<suite>.json)")
    step = parser.add_argument_group("the training step (without --suite)")
    step.add_argument("--cases", nargs="+", metavar="CASE",
                        help=f"any of {', '.join(CASES)} (default: all on CUDA, {', '.join(CPU_DEFAULT_CASES)} on CPU)")
    step.add_argument("--steps", type=int, help="training steps per timed window (default per case: "
                        + ", ".join(f"{k} {c.cuda_steps} on CUDA / {c.cpu_steps} on CPU" for k, c in CASES.items()) + ")")
    step.add_argument("--repeats", type=int, help="timed windows per measurement (default 5 on CUDA, 3 on CPU)")
    step.add_argument("--warmup", type=int, default=1, help="untimed warm-up windows (default 1)")
    step.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                     help="reference DataLoader workers (default min(4, CPU count))")
    step.add_argument("--method", default="bce", help="CritBench method whose step is timed (default bce: Adam, like the reference)")
    step.add_argument("--compile", action="store_true", help="torch.compile CritBench's model (as `run --compile`)")
    step.add_argument("--no-amp", dest="amp", action="store_false", help="CritBench in fp32 (as `run --no-amp`; for ablations)")
    step.add_argument("--width", type=float, default=1.0, help="channel width multiplier (smoke tests only)")
    step.add_argument("--size", type=int, help="override every case's image side (smoke tests only)")
    step.add_argument("--batch-size", type=int, help="override every case's batch size (smoke tests only)")
    suite = parser.add_argument_group("a whole suite (--suite)")
    suite.add_argument("--suite", metavar="NAME|FILE", help="time this leaderboard suite (built-in name or TOML file) phase by phase")
    leaderboard.add_selection_arguments(suite)
    suite.add_argument("--out", metavar="DIR", help="new or empty folder for the records and report (default: a temporary folder, removed)")
    suite.add_argument("--no-cache", action="store_true", help="datasets' caches off (cache_dir = none): the start-up before the caches")
    suite.add_argument("--runs-per-device", type=int, metavar="N",
                       help="runs at once per device, each in a worker process (as the leaderboard's; default 1)")
    return parser


def process_age() -> float | None:
    """Seconds since this process started (Linux's /proc: its start in clock ticks after boot); None elsewhere."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    except OSError:
        return None
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


def toml_value(value) -> str:
    """`value` as a TOML inline value. tomllib only reads TOML and no writer is a dependency, so the
    few types of a suite document are written here (JSON's strings and numbers are TOML's); the
    caller reads the text back to check it."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key)} = {toml_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)  # str, int, float; True/False as true/false


def suite_without_cache(name: str, datasets: list[str], folder: Path) -> Path:
    """The suite file `name` (`extends` resolved) with `cache_dir = "none"` for every dataset that has
    a cache, those of `--datasets` it lacks added as the leaderboard would add them, written into
    `folder` under the suite's file name (so the suite keeps its name)."""
    source = suite_path(name)
    document = read_suite_file(source)
    tables = list(document.get("datasets", []))
    tables += [{"name": dataset} for dataset in datasets if dataset not in {t.get("name") for t in tables}]
    for table in tables:
        if "cache_dir" in get_dataset_entry(table.get("name")).machine_params:
            table["params"] = {**table.get("params", {}), "cache_dir": "none"}
    document["datasets"] = tables
    text = "\n".join(f"{json.dumps(key)} = {toml_value(value)}" for key, value in document.items()) + "\n"
    try:
        copied = tomllib.loads(text) == document
    except tomllib.TOMLDecodeError:
        copied = False
    if not copied:
        raise CritBenchError(f"suite {source} holds values --no-cache cannot copy (only strings, numbers, booleans, "
                             f"lists and tables); time it with the caches on")
    path = folder / source.name
    path.write_text(text)
    return path


def trained_runs(out: Path) -> dict:
    """Runs per dataset setting and method among the records (complete or failed) in `out`."""
    counts = {}
    for path in sorted(out.glob("*.json")):
        config = json.loads(path.read_text())["config"]
        setting = config["dataset"] + (f" 1:{config['imbalance']:g}" if config.get("imbalance") else "")
        counts.setdefault(setting, {}).setdefault(config["method"], 0)
        counts[setting][config["method"]] += 1
    return counts


def time_suite(args, command: str, imports: float | None) -> int:
    """Run the suite through `benchmarks.leaderboard.main` into an empty folder, then print and
    write the wall time per phase. Returns the leaderboard's exit code (0: every planned run has a
    complete record; 1: some have not, e.g. data unavailable; 2: bad input, nothing run)."""
    started, load_start = time.perf_counter(), os.getloadavg()
    env = base_environment()  # its started_at is the suite's
    json_path = check_writable_file(args.json or SPEED_DIR / f"speed-suite-{Path(args.suite).stem}.json", "--json")
    device = resolve_device(args.device or "auto")
    with tempfile.TemporaryDirectory(prefix="critbench-speed-") as scratch:
        out = Path(args.out or Path(scratch) / "runs")
        if out.is_dir() and any(out.iterdir()):
            raise CritBenchError(f"--out {out} is not empty: its complete runs would be skipped, not timed; "
                                 f"give a new or empty folder")
        suite = suite_without_cache(args.suite, leaderboard.split_names(args.datasets, "--datasets") or [], Path(scratch)) \
            if args.no_cache else args.suite
        flags = {"--suite": suite, "--datasets": args.datasets, "--methods": args.methods, "--seeds": args.seeds,
                 "--epochs": args.epochs, "--data-dir": args.data_dir, "--device": args.device, "--out": out,
                 "--runs-per-device": args.runs_per_device}
        argv = [str(token) for flag, value in flags.items() if value is not None for token in (flag, value)]
        phases.reset()
        with contextlib.redirect_stdout(sys.stderr):  # stdout is this command's table
            code = leaderboard.main(argv)
        if code not in (0, 1):  # bad input (the leaderboard said why in one line) or interrupted
            return code
        total = time.perf_counter() - started + (imports or 0.0)
        load_end = os.getloadavg()
        trained = trained_runs(out)
        failed = len(list(out.glob("*.failed.json")))
    runs = sum(sum(methods.values()) for methods in trained.values())
    in_workers = runs > 0 and "train" not in phases.TOTALS  # a worker pool ran them (--runs-per-device, several GPUs)
    seconds = {"imports": imports, **{name: None if in_workers and name in RUN_PHASES else phases.TOTALS.get(name, 0.0)
                                      for name in SUITE_PHASES if name not in ("imports", "other")}}
    seconds["other"] = total - sum(value for value in seconds.values() if value is not None)
    labels = {**SUITE_PHASES, "other": "runs in worker processes + other"} if in_workers else SUITE_PHASES
    report = {
        "command": command,
        "leaderboard_command": "python -m benchmarks.leaderboard " + " ".join(argv),
        "leaderboard_exit_code": code,
        "caches": "off (cache_dir = none)" if args.no_cache else
        f"on ({os.environ.get('XDG_CACHE_HOME') or '~/.cache'}/critbench)",
        "runs": {"trained": runs, "complete": runs - failed, "failed": failed, "by_dataset": trained},
        "total_seconds": total,
        "runs_per_minute": 60 * runs / total,
        "runs_per_device": args.runs_per_device or 1,
        "runs_in_worker_processes": in_workers,
        "phases": {name: {"label": labels[name], "seconds": value,
                          "share": None if value is None else value / total} for name, value in seconds.items()},
        "env": {**env, **device_environment(device), "threads": torch.get_num_threads(),
                "load_average": {"start": load_start, "end": load_end}},
    }
    print(format_suite_table(report))
    print(f"written {write_json_atomic(json_path, report)}", file=sys.stderr)
    return code


def format_suite_table(report: dict) -> str:
    """The phases as a table (seconds, share of the total) under what was run and where."""
    runs, env = report["runs"], report["env"]
    load = env["load_average"]
    lines = [f"{report['command']}: caches {report['caches']}, {report['runs_per_device']} run(s) at once per device, "
             f"{runs['trained']} runs trained ({runs['complete']} "
             f"complete, {runs['failed']} failed), leaderboard exit code {report['leaderboard_exit_code']}"]
    lines += [f"  {setting}: " + ", ".join(f"{method} {n}" for method, n in methods.items())
              for setting, methods in runs["by_dataset"].items()]
    lines.append(f"{env['device_name']} | torch {env['torch']} | load average (1 min) {load['start'][0]:.2f} at start, "
                 f"{load['end'][0]:.2f} at end")
    head = f"{'phase':42s} {'seconds':>9s} {'share':>7s}"
    lines += [head, "-" * len(head)]
    for phase in report["phases"].values():
        missing = "in workers" if report["runs_in_worker_processes"] else "n/a"
        value = missing if phase["seconds"] is None else f"{phase['seconds']:9.2f} {100 * phase['share']:6.1f}%"
        lines.append(f"{phase['label']:42s} {value:>17s}")
    lines += ["-" * len(head), f"{'total (process start to finished report)':42s} {report['total_seconds']:9.2f} "
              f"{100:6.1f}%", f"runs per minute: {report['runs_per_minute']:.2f}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Time CritBench's training step against a plain PyTorch loop (or, with --suite, a whole
    leaderboard, phase by phase); print the table and write the JSON report. Exit code 0, or 2: bad input."""
    imports = process_age()  # first: the interpreter's start-up and every import so far
    args = build_parser().parse_args(argv)
    tokens = sys.argv[1:] if argv is None else list(argv)
    command = "python -m benchmarks.speed " + " ".join(tokens)
    try:
        wrong = STEP_OPTIONS if args.suite else SUITE_OPTIONS
        given = [flag for flag in wrong if any(token == flag or token.startswith(flag + "=") for token in tokens)]
        if given:
            raise CritBenchError(f"{given[0]} times the training step, not a suite: drop it or --suite" if args.suite
                                 else f"{given[0]} needs --suite NAME|FILE (it selects what a suite runs)")
        if args.suite:
            return time_suite(args, command, imports)
        device = resolve_device(args.device or "auto")
        for name in ("steps", "repeats", "size", "batch_size"):
            if getattr(args, name) is not None and getattr(args, name) < 1:
                raise CritBenchError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        if args.warmup < 0 or args.workers < 0:
            raise CritBenchError("--warmup and --workers must be >= 0")
        cases = args.cases or (list(CASES) if device.type == "cuda" else list(CPU_DEFAULT_CASES))
        unknown = [name for name in cases if name not in CASES]
        if unknown:
            raise CritBenchError(f"unknown case {unknown[0]!r}; valid: {', '.join(CASES)}")
        args.repeats = args.repeats or (5 if device.type == "cuda" else 3)
        args.device = str(device)
        args.peak = bf16_peak_tflops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
        report = {
            "command": command,
            "device_name": device_environment(device)["device_name"], "torch": torch.__version__,
            "bf16_peak_tflops": args.peak,
            "settings": {k: v for k, v in vars(args).items() if k != "json"},
            "env": {**base_environment(), **device_environment(device)},
            "cases": [],
        }
        for name in cases:
            report["cases"].append(run_case(args, name))
        report["critbench_precision"] = precision_summary(report["cases"])
    except CritBenchError as error:
        return fail(str(error))
    print(format_table(report))
    path = write_json_atomic(Path(args.json or SPEED_DIR / f"speed-{device.type}.json"), report)
    print(f"written {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
