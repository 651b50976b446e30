"""What a run says about the machine and software it ran on: CPU model and bf16 flags, the CPUs it
may use (affinity mask, cgroup quota), the checkout's git revision, package versions, the clock.

Torch-free (the report and the suite planner import it); torch's own checks live in
`benchmarks.engine.device`.
"""
from __future__ import annotations

import math
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "libauc", "monai", "medmnist", "nibabel")
SOURCE_DIR = Path(__file__).resolve().parents[2]
# CPU features with native bf16 dot products or conversions, which oneDNN's bf16 kernels use:
# AMX tiles (Intel Sapphire Rapids and later), AVX512_BF16 (AMD Zen 4 and later, Intel Cooper
# Lake), AVX-NE-CONVERT (Intel Sierra Forest, Granite Rapids). Without one, bf16 is emulated.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16", "avx_ne_convert")


def package_versions() -> dict:
    """Python's version and each of PACKAGES' (None where not installed)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision() -> str | None:
    """The CritBench checkout's commit, with '+dirty' for uncommitted changes; None outside git."""
    try:
        def git(*args):
            return subprocess.run(["git", "-C", str(SOURCE_DIR), *args], capture_output=True,
                                  text=True, check=True, timeout=10).stdout.strip()
        revision = git("rev-parse", "HEAD")
        return revision + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """CPUs' worth of time a cgroup CPU quota grants (containers' --cpus, Kubernetes limits,
    Slurm's cgroup plugin), rounded up; None without a quota. cgroup v2 `cpu.max` ("max 100000" or
    "200000 100000") or v1 `cpu/cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1: none). Hand-written:
    os.cpu_count() and the affinity mask do not see quotas, and no maintained library reads both."""
    try:
        if (root / "cpu.max").exists():
            quota, period = (root / "cpu.max").read_text().split()[:2]
        else:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        if quota in ("max", "-1"):
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """The CPUs this process can use: its affinity mask (as Slurm and taskset set it), capped by a
    cgroup CPU quota. More compute threads than this only wait for each other (docs/speed.md)."""
    mask = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return min(mask, limit) if limit else mask


def bf16_cpu_flags() -> list[str] | None:
    """The BF16_CPU_FLAGS this CPU has (Linux /proc/cpuinfo); None where the flags cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in BF16_CPU_FLAGS if flag in present]
    except OSError:
        pass
    return None


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (records' started_at, finished_at, failed_at)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def base_environment() -> dict:
    """What every record says about the machine and software it ran with (taken when the run starts)."""
    return {**package_versions(), "platform": platform.platform(), "host": platform.node(), "cpu": cpu_model(),
            "cpu_bf16_flags": bf16_cpu_flags(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "git_revision": git_revision(), "started_at": utc_now()}
