"""Executors: a real local Ray instance, submitit's local job array and the per-GPU worker pool
produce the same records as the in-process local executor (timings and environment aside); a run
whose worker died is recorded as failed."""
from __future__ import annotations

import json
import os
import time
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import leaderboard
from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.sweep.executors import (LocalExecutor, RayExecutor, RunTask, TaskResult, WorkerPoolExecutor, collect, create_executor,
                                        local_slots, start_local_ray)
from benchmarks.core.storage import record_path
from benchmarks.engine.resolve import resolve_config
from benchmarks.sweep.plan import make_plan
from benchmarks.sweep.suite import expand, load_suite
from tests.conftest import TINY_SUITE, write_suite

TIMING_KEYS = ("seconds", "finished_at", "env", "command")  # how, when and where a run was started


def content(folder: Path) -> dict[str, dict]:
    """Every record in `folder` without its timings, environment and command line."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        for key in TIMING_KEYS:
            record.pop(key)
        for epoch in record["history"]:
            epoch.pop("seconds")
        found[path.name] = record
    return found


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory) -> Path:
    """The shared tiny suite with one seed: each executor trains its two runs."""
    return write_suite(tmp_path_factory.mktemp("suite"), TINY_SUITE.replace("seeds = [0, 1]", "seeds = [0]"))


@pytest.fixture(scope="module")
def reference(suite_file, tmp_path_factory) -> dict[str, dict]:
    """The local executor's records, computed with one thread as every worker below uses."""
    out = tmp_path_factory.mktemp("local")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert leaderboard.main(["--suite", str(suite_file), "--out", str(out), "--no-report"]) == 0
    finally:
        torch.set_num_threads(threads)
    found = content(out)
    assert len(found) == 2 and all(r["status"] == "complete" for r in found.values())
    return found


@pytest.fixture
def one_thread(monkeypatch):
    """Worker processes use one thread (CPU results depend on the thread count)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_ray_executor_matches_local(suite_file, reference, tmp_path, one_thread, capsys):
    ray = pytest.importorskip("ray")
    start_local_ray(num_cpus=2, log_to_driver=False)  # as RayExecutor starts one
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")  # listens on loopback only
    try:
        assert ray.cluster_resources().get("CPU") == 2
        assert leaderboard.main(["--suite", str(suite_file), "--out", str(tmp_path), "--executor", "ray",
                                 "--no-report"]) == 0
    finally:
        ray.shutdown()
    assert "2 to run with the ray executor" in capsys.readouterr().err
    assert content(tmp_path) == reference


def test_submitit_local_job_array_matches_local(suite_file, reference, tmp_path, one_thread, capsys):
    pytest.importorskip("submitit")
    out = tmp_path / "runs"
    assert leaderboard.main(["--suite", str(suite_file), "--out", str(out), "--executor", "slurm",
                             "--slurm-cluster", "local", "--slurm-gpus", "0", "--slurm-time", "10",
                             "--no-report"]) == 0
    assert "submitted 2 runs as local job array" in capsys.readouterr().err
    assert content(out) == reference
    assert list((out / "slurm_logs").glob("*_log.out"))  # submitit's per-task logs
    assert leaderboard.main(["--suite", str(suite_file), "--out", str(out), "--executor", "slurm",
                             "--slurm-cluster", "local", "--no-report"]) == 0  # resumed: nothing to submit
    assert "2 complete already; 0 to run" in capsys.readouterr().err


def test_worker_pool_matches_local(suite_file, reference, tmp_path, one_thread):
    runs = expand(load_suite(str(suite_file)))
    plan = make_plan(runs, tmp_path, retry_failed=True)
    finished = []

    class Events:
        def started(self, task):
            raise AssertionError("a pool reports finished runs only")

        def finished(self, result):
            finished.append(result)

    WorkerPoolExecutor(["", ""]).run(plan.tasks, Events())  # two CPU workers, GPUs hidden
    assert sorted(r.status for r in finished) == ["complete", "complete"] and all(r.record is None for r in finished)
    assert content(tmp_path) == reference


def test_collect_records_a_dead_worker_and_writes_returned_records(tmp_path):
    task = RunTask(RunConfig("synthetic2d", "bce"), "synthetic2d-bce-s1-abc", "synthetic2d / bce / seed 0", str(tmp_path))
    result = collect(task, None, RuntimeError("the worker died (simulated)"))
    record = json.loads(record_path(tmp_path, task.run_id, failed=True).read_text())
    assert result.status == "failed" and result.reason == "RuntimeError: the worker died (simulated)"
    assert record["status"] == "failed" and record["config"]["method"] == "bce"
    # a worker without the shared folder returns its record: the driver writes it
    complete = {"run_id": task.run_id, "status": "complete", "x": 1}
    returned = TaskResult(task.run_id, task.label, "complete", str(tmp_path / "elsewhere.json"), None, complete)
    assert collect(task, returned).record is None
    assert json.loads(record_path(tmp_path, task.run_id).read_text()) == complete
    assert not record_path(tmp_path, task.run_id, failed=True).exists()  # the success replaced the failure
    # a run that finished before its worker went down stays complete
    assert collect(task, None, RuntimeError("late")).status == "complete"


def test_create_executor_options(tmp_path):
    assert type(create_executor("local", out_dir=tmp_path, device="cpu")).__name__ == "LocalExecutor"
    slurm = create_executor("slurm", out_dir=tmp_path, slurm={"gpus": 2, "parallel": 4, "partition": "gpu"})
    assert slurm.folder == tmp_path / "slurm_logs" and slurm.parameters["slurm_array_parallelism"] == 4
    assert slurm.parameters["gpus_per_node"] == 2 and slurm.parameters["slurm_partition"] == "gpu"
    with pytest.raises(CritBenchError, match="unknown slurm option.*gpu_count"):
        create_executor("slurm", out_dir=tmp_path, slurm={"gpu_count": 1})
    with pytest.raises(CritBenchError, match="unknown ray option"):
        create_executor("ray", out_dir=tmp_path, ray={"adress": "x"})


def test_ray_executor_starts_a_loopback_instance_or_joins_the_given_cluster(monkeypatch):
    """Without --ray-address the executor starts Ray through start_local_ray (127.0.0.1, checked
    on a real instance above); with one, it joins that cluster as given."""
    calls = []

    class FakeRay:
        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(**options):
            calls.append(options)
            raise RuntimeError("stop after init")

    monkeypatch.setitem(sys.modules, "ray", FakeRay)
    monkeypatch.setattr("benchmarks.sweep.executors.start_local_ray", lambda: calls.append("local") or FakeRay.init())
    for executor in (RayExecutor(), RayExecutor(address="ray://head:10001")):
        with pytest.raises(RuntimeError, match="stop after init"):
            executor.run([], None)
    assert calls == ["local", {}, {"address": "ray://head:10001"}]


def test_two_runs_per_device_on_the_cpu_match_local(suite_file, reference, tmp_path, one_thread):
    """--runs-per-device 2 on the CPU: two worker processes share it (one thread each here), same records."""
    assert leaderboard.main(["--suite", str(suite_file), "--out", str(tmp_path), "--no-report", "--device", "cpu",
                             "--runs-per-device", "2"]) == 0
    assert content(tmp_path) == reference


def test_local_slots_share_each_device(monkeypatch):
    monkeypatch.setattr("benchmarks.sweep.executors._gpu_ids", lambda: ["0", "1"])
    assert local_slots("auto", 2) == ["0", "1", "0", "1"] and local_slots("cuda", 1) == ["0", "1"]  # in turn: 2 runs,
    # 2 GPUs, one each (workers start one per run and take the slots in order)
    assert local_slots("cpu", 3) == ["", "", ""]  # GPUs hidden from CPU runs
    assert local_slots("cuda:1", 2) == [None, None]  # the named GPU, as the config says
    monkeypatch.setattr("benchmarks.sweep.executors._gpu_ids", lambda: [])
    assert local_slots("auto", 1) == [""]
    with pytest.raises(CritBenchError, match="--runs-per-device must be an integer >= 1, got 0"):
        create_executor("local", out_dir=Path("."), runs_per_device=0)
    with pytest.raises(CritBenchError, match="--runs-per-device works with the local and ray executors"):
        create_executor("slurm", out_dir=Path("."), runs_per_device=2)


def die_or_finish(task: RunTask) -> TaskResult:
    """A pool's work (module level: spawned workers import it): the run named `crash` takes its
    worker process down, as a segfault or the OOM killer would; the others finish."""
    if task.run_id == "crash":
        os._exit(1)
    time.sleep(0.5)
    return TaskResult(task.run_id, task.label, "complete", str(Path(task.out_dir) / f"{task.run_id}.json"))


def test_a_worker_that_dies_fails_its_own_run_only(tmp_path, one_thread):
    """Python's pool fails every run in it when one worker dies: the runs that had not begun go to a
    fresh pool, those that had begun run again alone, and only the one that takes its worker down
    again alone gets a failure record."""
    tasks = [RunTask(RunConfig("synthetic2d", "bce"), run, f"synthetic2d / bce / {run}", str(tmp_path))
             for run in ("a", "crash", "b", "c", "d")]
    finished = []

    class Events:
        def finished(self, result):
            finished.append(result)

    WorkerPoolExecutor(["", ""]).run(tasks, Events(), work=die_or_finish)
    statuses = {result.run_id: result.status for result in finished}
    assert statuses == {"a": "complete", "crash": "failed", "b": "complete", "c": "complete", "d": "complete"}
    assert len(finished) == 5
    failure = json.loads(record_path(tmp_path, "crash", failed=True).read_text())
    assert "BrokenProcessPool" in failure["reason"]


def test_the_local_executor_records_an_error_outside_the_training_and_goes_on(tmp_path):
    """An exception that run_task lets through (its claim cannot be written) is a failure record of
    that run, as in the worker pool, not the end of the suite."""
    config = resolve_config(RunConfig(dataset="synthetic2d", method="bce", epochs=1))
    tasks = [RunTask(config, f"synthetic2d-bce-s{i}-x", f"run {i}", str(tmp_path)) for i in range(2)]

    def work(task, progress=False):
        if task is tasks[0]:
            raise PermissionError(13, "Permission denied")
        return TaskResult(task.run_id, task.label, "complete", str(tmp_path / "elsewhere.json"))

    class Outcomes(list):
        def started(self, task):
            pass

        finished = list.append

    outcomes = Outcomes()
    LocalExecutor().run(tasks, outcomes, work=work)
    assert [result.status for result in outcomes] == ["failed", "complete"]
    record = json.loads(record_path(tmp_path, tasks[0].run_id).with_suffix(".failed.json").read_text())
    assert record["status"] == "failed" and "PermissionError" in record["reason"]
