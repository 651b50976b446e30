"""Where a suite's runs execute: `local` (this process; one worker process per GPU when several are
visible, or `runs_per_device` per device), `ray` (one Ray task per run) or `slurm` (a submitit job array, one task per run).

Every executor calls `run_task` for each run (or the `work` function it is given: a tuning trial);
`run_task` writes the run's record, complete or failed, into the output folder. The driver then `collect`s each outcome: it writes a record a
remote worker could only return (no shared folder), and a failure record for a run whose worker
died (killed, out of memory, out of time). So the same records land in the same folder whichever
executor ran them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.outputs import save_record_safely
from benchmarks.core.phases import timed
from benchmarks.core.machine import available_cpus
from benchmarks.core.records import failure_record
from benchmarks.core.storage import record_path, record_state
from benchmarks.engine.checkpoint import remove_checkpoint, run_checkpoint_dir
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.sweep.claims import claim_path, claim_run, describe

EXECUTORS = ("local", "ray", "slurm")
# Each executor option: (its type, its least value, whether the least value itself is allowed); a
# suite's [ray] / [slurm] table and the --ray-* / --slurm-* flags are checked against these, whichever
# executor runs. Ray's gpus = 0 asks for CPU-only tasks on a cluster with GPUs.
RAY_OPTIONS = {"address": (str, None, True), "max_retries": (int, 0, True), "cpus": (float, 0, False),
               "gpus": (float, 0, True)}
# Ray's switch between a single-machine instance, whose processes all listen on 127.0.0.1, and a
# cluster node, which listens on the machine's network address (Ray's default on Linux). Read from
# the environment when ray is imported (ray._private.ray_constants.ENABLE_RAY_CLUSTER); the
# processes Ray starts inherit it.
RAY_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
SLURM_OPTIONS = {"cluster": (str, None, True), "partition": (str, None, True), "gpus": (int, 0, True),
                 "cpus": (int, 1, True), "mem_gb": (float, 0, False), "time_min": (int, 1, True),
                 "parallel": (int, 1, True), "folder": (str, None, True)}
SLURM_CLUSTERS = ("slurm", "local")
OPTION_FLAGS = {"ray": {"address": "--ray-address"}, "slurm": {
    **{key: f"--slurm-{key.replace('_', '-')}" for key in SLURM_OPTIONS}, "time_min": "--slurm-time"}}


@dataclass(frozen=True)
class RunTask:
    """One training run to execute; `run_id` is its identity as planned by the driver."""

    config: RunConfig
    run_id: str
    label: str
    out_dir: str  # absolute: workers may run elsewhere
    command: str = ""  # the command line that planned it, kept in the record
    driver: str = ""  # the planning invocation's token: its own claim on the run is an earlier attempt (a retry)


@dataclass(frozen=True)
class TaskResult:
    run_id: str
    label: str
    status: str  # "complete", "failed", "rescued" (saved outside the folder), "claimed" (another process is
    # training it) or "elsewhere" (another process finished it meanwhile: its record is complete)
    path: str
    reason: str | None = None
    record: dict | None = None  # the record itself, for drivers that do not share the folder


class Events(Protocol):
    """What executors report to the driver's progress display."""

    def started(self, task: RunTask) -> None: ...

    def finished(self, result: TaskResult) -> None: ...


def run_task(task: RunTask, progress: bool = False) -> TaskResult:
    """Claim one run, train it (checkpointed every epoch, resumed from a checkpoint a killed
    process left) and write its record: complete, or failed with reason and traceback.

    A run claimed by another live process (a second leaderboard on the same folder) is skipped
    (status "claimed"), and so is one that process finished meanwhile. Any exception becomes a
    failure record (a crash, NaN divergence, data missing on a worker); only KeyboardInterrupt and
    SystemExit pass through. A record its folder refuses is saved in a rescue folder (status "rescued")."""
    claim, holder = claim_run(task.out_dir, task.run_id, task.driver)
    if claim is None:
        return TaskResult(task.run_id, task.label, "claimed", str(claim_path(task.out_dir, task.run_id)),
                          f"being trained by another process ({describe(holder)})")
    with claim:
        if record_state(task.out_dir, task.run_id) == "complete":  # another process finished it meanwhile
            return TaskResult(task.run_id, task.label, "elsewhere", str(record_path(task.out_dir, task.run_id)),
                              "finished meanwhile by another process")
        started = time.perf_counter()
        checkpoints = run_checkpoint_dir(task.out_dir)  # a preempted run resumes from its last epoch
        try:
            record = run_benchmark(task.config, progress=progress, checkpoint_dir=checkpoints, command=task.command)
        except Exception as error:  # before training: data missing or unreadable on this worker
            record = failure_record(task.config, task.run_id, error, time.perf_counter() - started,
                                    command=task.command)
        with timed("record"):
            path, warning = save_record_safely(record, task.out_dir)
            if not warning and record["status"] == "complete":
                remove_checkpoint(checkpoints, record["run_id"])
    if warning:
        return TaskResult(record["run_id"], task.label, "rescued", str(path), warning, record)
    return TaskResult(record["run_id"], task.label, record["status"], str(path), record.get("reason"), record)


def collect(task: RunTask, result: TaskResult | None, error: BaseException | None = None) -> TaskResult:
    """Driver side: make sure the run's outcome is recorded in the output folder; drop the record.

    `result` is what the worker returned, or None when it died with `error`."""
    if result is not None:
        if result.record is not None and not Path(result.path).is_file():  # a worker without the shared folder
            path, warning = save_record_safely(result.record, task.out_dir)
            result = dataclasses.replace(result, path=str(path), status="rescued" if warning else result.status,
                                         reason=warning or result.reason)
        return dataclasses.replace(result, record=None)
    complete = record_path(task.out_dir, task.run_id)
    if complete.is_file():  # it finished before its worker went down
        return TaskResult(task.run_id, task.label, "complete", str(complete))
    record = failure_record(task.config, task.run_id, error, None)
    path, warning = save_record_safely(record, task.out_dir)
    return TaskResult(task.run_id, task.label, "failed", str(path), warning or record["reason"])


class LocalExecutor:
    """In this process, one run after another."""

    name = "local"

    def __init__(self, progress: bool = False):
        self.progress = progress  # each run's epoch bar

    def run(self, tasks: list[RunTask], events: Events, work=run_task) -> None:
        for task in tasks:
            events.started(task)
            try:
                result, error = work(task, progress=self.progress), None
            except Exception as exc:  # outside the training (an unwritable claims folder): recorded as the pool
                result, error = None, exc  # records a worker's error, and the suite goes on
            events.finished(collect(task, result, error))


_STARTED = None  # in a pool worker: where it says which run it has begun (WorkerPoolExecutor)


def _claim_slot(slots, threads: int, started) -> None:
    """Pool initializer: this worker process takes the next free slot: a GPU it alone sees
    (CUDA_VISIBLE_DEVICES), "" (no GPU: the CPU) or None (the devices as they are), and its share
    of the CPU threads; `started` is where it says which run it begins."""
    global _STARTED
    slot = slots.get()
    if slot is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slot
    torch.set_num_threads(threads)
    _STARTED = started


def _started_work(work, task: RunTask):
    _STARTED.put(task.run_id)  # a SimpleQueue writes at once: the driver reads it even if this process dies next
    return work(task)


class WorkerPoolExecutor:
    """One worker process per slot, each run going to whichever slot is free: one slot per GPU (each
    process sees only its own GPU), `--runs-per-device` slots per device to share one. Run configs
    stay untouched (device "auto" is the slot's GPU). The CPU threads are split between the slots.

    A worker that dies (a segfault, the OOM killer) breaks Python's pool, which fails every run in
    it: the runs that had not begun go to a fresh pool, those that had begun are each run again
    alone, and only one that takes its worker down again alone is recorded as failed."""

    name = "local"

    def __init__(self, slots: list[str | None]):
        self.slots = list(slots)

    def run(self, tasks: list[RunTask], events: Events, work=run_task) -> None:
        context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
        pending = list(tasks)
        while pending:
            begun, pending, error = self.pool_round(context, pending, self.slots, events, work)
            if error is not None and not begun:  # the pool broke before any run began: nothing to retry
                begun, pending = pending, []
            for task in begun:  # alone, the run that took the pool down does so again
                again, unstarted, alone_error = self.pool_round(context, [task], self.slots[:1], events, work)
                for failed in again + unstarted:
                    events.finished(collect(failed, None, alone_error))

    def pool_round(self, context, tasks: list[RunTask], slots: list[str | None], events: Events, work):
        """Run `tasks` in one pool on `slots`, reporting each finished run; where a worker died, the
        runs the broken pool failed that had begun, those that had not, and the pool's error."""
        free = context.Queue()
        for slot in slots:
            free.put(slot)
        started = context.SimpleQueue()
        threads = max(1, available_cpus() // len(self.slots))
        pool = ProcessPoolExecutor(len(slots), mp_context=context, initializer=_claim_slot,
                                   initargs=(free, threads, started))
        broken, broken_error = [], None
        try:
            futures = {pool.submit(_started_work, work, task): task for task in tasks}
            for future in as_completed(futures):
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    broken.append(futures[future])
                    broken_error = error
                else:
                    events.finished(collect(futures[future], None if error else future.result(), error))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        began = set()
        while not started.empty():
            began.add(started.get())
        return ([t for t in broken if t.run_id in began], [t for t in broken if t.run_id not in began], broken_error)


def _require(module: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CritBenchError(f"--executor {extra} needs the {module} package: pip install 'critbench[{extra}]' "
                             f"(or pip install {module})") from None


def start_local_ray(**options) -> None:
    """Start a Ray instance on this machine that listens on 127.0.0.1 only: Ray's own token
    authentication aside, nothing on the network can reach it. No dashboard."""
    os.environ[RAY_LOOPBACK_ENV] = "0"
    ray = _require("ray", "ray")
    constants = importlib.import_module("ray._private.ray_constants")
    constants.ENABLE_RAY_CLUSTER = False  # when ray was imported before the variable was set
    ray.init(include_dashboard=False, **options)


class RayExecutor:
    """Each run a Ray task: one GPU each when the cluster has GPUs, else `cpus` CPUs each; a task
    whose worker dies is retried `max_retries` times. Starts a local Ray instance (bound to
    127.0.0.1, see start_local_ray) unless Ray is already initialized or `address` names a running cluster (where CritBench must be installed
    and the data and output folders reachable, or records are written by this driver)."""

    name = "ray"

    def __init__(self, address: str | None = None, max_retries: int = 2, cpus: float = 1, gpus: float | None = None,
                 runs_per_device: int = 1):
        self.address, self.max_retries, self.cpus, self.gpus = address, max_retries, cpus, gpus
        self.runs_per_device = runs_per_device

    @contextlib.contextmanager
    def session(self):
        """Ray up for the block: the running instance, or one started here and shut down after it
        (a search keeps one session across its batches of trials)."""
        ray = _require("ray", "ray")
        started_here = not ray.is_initialized()
        if started_here:
            if self.address:
                ray.init(address=self.address)
            else:
                start_local_ray()
        try:
            yield ray
        finally:
            if started_here:
                ray.shutdown()

    def run(self, tasks: list[RunTask], events: Events, work=run_task) -> None:
        with self.session() as ray:
            pending = {}
            try:
                gpus = self.gpus if self.gpus is not None else (
                    1 / self.runs_per_device if ray.cluster_resources().get("GPU", 0) else 0)
                remote = ray.remote(work).options(num_cpus=self.cpus, num_gpus=gpus, max_retries=self.max_retries,
                                                  retry_exceptions=False)
                pending = {remote.remote(task): task for task in tasks}
                while pending:
                    (ref,), _ = ray.wait(list(pending), num_returns=1)
                    task = pending.pop(ref)
                    try:
                        result, error = ray.get(ref), None
                    except ray.exceptions.RayError as exc:  # the worker died even after the retries
                        result, error = None, exc
                    events.finished(collect(task, result, error))
            finally:
                for ref in pending:  # interrupted: stop what is still queued or running
                    ray.cancel(ref, force=True)


class SlurmExecutor:
    """A submitit job array, one task per run, at most `parallel` at once, each with `gpus` GPUs,
    `cpus` CPUs, `mem_gb` and a `time_min` limit, on `partition`. `cluster="local"` runs the array
    as local processes (all at once; for trying the executor without Slurm). Job logs go to `folder`."""

    name = "slurm"

    def __init__(self, folder: Path, cluster: str = "slurm", partition: str | None = None, gpus: int = 1,
                 cpus: int | None = None, mem_gb: float | None = None, time_min: int = 240,
                 parallel: int | None = None):
        self.folder, self.cluster = Path(folder), cluster
        self.parameters = {"timeout_min": time_min, "gpus_per_node": gpus, "cpus_per_task": cpus,
                           "mem_gb": mem_gb, "slurm_partition": partition, "slurm_array_parallelism": parallel}

    def run(self, tasks: list[RunTask], events: Events, work=run_task) -> None:
        submitit = _require("submitit", "slurm")
        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        executor.update_parameters(name="critbench", **{k: v for k, v in self.parameters.items() if v is not None})
        jobs = executor.map_array(work, tasks)
        print(f"submitted {len(jobs)} runs as {self.cluster} job array {jobs[0].job_id.split('_')[0]}; "
              f"logs in {self.folder}", file=sys.stderr, flush=True)
        by_job = {id(job): task for job, task in zip(jobs, tasks)}
        poll_s = 1 if self.cluster in ("local", "debug") else 15  # sacct is rate-limited on clusters
        for job in submitit.helpers.as_completed(jobs, poll_frequency=poll_s):
            try:
                result, error = job.result(), None
            except Exception as exc:  # killed, out of time or memory, or failed to start
                result, error = None, exc
            events.finished(collect(by_job[id(job)], result, error))


def _gpu_ids() -> list[str]:
    """The visible CUDA devices, as CUDA_VISIBLE_DEVICES entries."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible.split(",")[:count] if visible else [str(i) for i in range(count)]


def check_options(kind: str, options: dict, valid: dict) -> dict:
    """`options` (a suite's [ray] or [slurm] table, the CLI's values on top), refused with
    CritBenchError for an unknown key or a value of the wrong type or range (`gpus = "two"`):
    checked for every executor, so a typo shows with the local one too. An integer option written
    as a whole float (`gpus = 1.0`) is passed on as an int: sbatch refuses `--gpus-per-node=1.0`."""
    unknown = set(options) - set(valid)
    if unknown:
        raise CritBenchError(f"unknown {kind} option(s) {', '.join(sorted(unknown))} (the suite's [{kind}] table); "
                             f"valid: {', '.join(sorted(valid))}")
    for key, value in options.items():
        kind_of, least, least_allowed = valid[key]
        if kind_of is str:
            good, wanted = isinstance(value, str) and value.strip() != "", "a non-empty string"
        else:
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            good = number and (kind_of is float or value == int(value)) and (value >= least if least_allowed
                                                                             else value > least)
            wanted = ("an integer" if kind_of is int else "a number") + f" {'>=' if least_allowed else '>'} {least}"
        if key == "cluster" and good and value not in SLURM_CLUSTERS:
            good, wanted = False, f"one of {', '.join(SLURM_CLUSTERS)}"
        if not good:
            flag = OPTION_FLAGS[kind].get(key)
            raise CritBenchError(f"{kind} option {key} = {value!r} must be {wanted} (the suite's [{kind}] table"
                                 f"{' or ' + flag if flag else ''})")
    return {key: int(value) if valid[key][0] is int else value for key, value in options.items()}


def local_slots(device: str, runs_per_device: int) -> list[str | None]:
    """The worker slots of the local executor: each visible GPU (device auto or cuda) or the one
    device named (cpu: "", cuda:N: None), `runs_per_device` times, the devices in turn: pool workers
    start one per submitted run and take the slots in order, so two runs on two GPUs get one each."""
    gpus = _gpu_ids() if device in ("auto", "cuda") else []
    devices = gpus or ["" if device in ("auto", "cpu") else None]
    return [slot for _ in range(runs_per_device) for slot in devices]


def create_executor(name: str, *, out_dir: Path, device: str = "auto", ray: dict | None = None,
                    slurm: dict | None = None, progress: bool = False, runs_per_device: int = 1):
    """The executor `name` with its options (the suite file's [ray] / [slurm] tables, CLI applied).
    `runs_per_device` > 1 runs that many runs at once on each device (local and ray), each in its
    own process: a 28 px ResNet18 uses a small part of a modern GPU."""
    if isinstance(runs_per_device, bool) or not isinstance(runs_per_device, int) or runs_per_device < 1:
        raise CritBenchError(f"--runs-per-device must be an integer >= 1, got {runs_per_device!r}")
    ray, slurm = check_options("ray", ray or {}, RAY_OPTIONS), check_options("slurm", slurm or {}, SLURM_OPTIONS)
    if name == "local":
        slots = local_slots(device, runs_per_device)
        return WorkerPoolExecutor(slots) if len(slots) > 1 else LocalExecutor(progress=progress)
    if name == "ray":
        options = dict(ray)
        if device == "cpu":
            options.setdefault("gpus", 0)
        return RayExecutor(**options, runs_per_device=runs_per_device)
    if runs_per_device > 1:
        raise CritBenchError(f"--runs-per-device works with the local and ray executors; a {name} job has its own "
                             f"devices (ask for fewer GPUs per run with --slurm-gpus)")
    if name == "slurm":
        options = dict(slurm)
        folder = Path(options.pop("folder", None) or Path(out_dir) / "slurm_logs")
        return SlurmExecutor(folder, **options)
    raise CritBenchError(f"unknown executor {name!r}; valid: {', '.join(EXECUTORS)}")
