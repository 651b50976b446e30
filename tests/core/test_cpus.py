"""The CPUs a run may use (`machine.available_cpus`): the affinity mask capped by a cgroup CPU quota,
and runs never start more compute threads than that (issue 15, contention)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from benchmarks.core import machine
from benchmarks.core.config import RunConfig
from benchmarks.engine import pipeline
from benchmarks.engine.resolve import resolve_config
from tests.conftest import TINY


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "200000 100000\n"}, 2),  # cgroup v2, docker --cpus=2
    ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: rounded up
    ({"cpu.max": "50000 100000\n"}, 1),  # half a CPU still gets one thread
    ({"cpu.max": "max 100000\n"}, None),  # no quota
    ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"cpu.max": "garbage\n"}, None),  # unreadable: no cap rather than a crash
    ({}, None),  # no cgroup files at all (macOS, some containers)
])
def test_cgroup_cpu_limit_reads_v1_and_v2_quotas(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert machine.cgroup_cpu_limit(tmp_path) == expected


def test_available_cpus_is_the_affinity_mask_capped_by_the_quota(monkeypatch):
    mask = len(os.sched_getaffinity(0))
    monkeypatch.setattr(machine, "cgroup_cpu_limit", lambda: None)
    assert machine.available_cpus() == mask
    monkeypatch.setattr(machine, "cgroup_cpu_limit", lambda: 1)
    assert machine.available_cpus() == 1
    monkeypatch.setattr(machine, "cgroup_cpu_limit", lambda: mask + 8)
    assert machine.available_cpus() == mask


def test_a_run_uses_no_more_threads_than_available_cpus(monkeypatch):
    """A run under a 1-CPU quota trains with 1 thread even when torch had started more, and its
    record names the thread count it trained with."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(pipeline, "available_cpus", lambda: 1)
    try:
        record = pipeline.run_benchmark(resolve_config(RunConfig("synthetic2d", "bce", **TINY)), progress=False)
        assert torch.get_num_threads() == 1
        assert record["env"]["device_name"].endswith("1 thread)")
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("preset, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_commands_wait_passively_unless_told_otherwise(preset, expected):
    """Importing `benchmarks` (what every command does first, before torch loads OpenMP) sets
    OMP_WAIT_POLICY=PASSIVE unless the user set it; the record names the policy."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = ("import benchmarks, sys; from benchmarks.core.machine import base_environment; "
            "sys.stdout.write(base_environment()['omp_wait_policy'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout == expected
