"""Run records and their files, in one place: schema version, run identity, paths, the failure
record, the one atomic writer and the reader.

Torch-free, so that the report and the suite planner read records without importing torch.
A complete record is `<out>/<run_id>.json`, a failure `<out>/<run_id>.failed.json`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
import time
import traceback
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import DivergedError

RECORD_VERSION = 1
PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "libauc", "monai", "medmnist", "nibabel")
SOURCE_DIR = Path(__file__).resolve().parents[2]
STALE_TEMP_S = 600  # a temporary file older than this was left by a killed writer


def package_versions() -> dict:
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


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def base_environment() -> dict:
    """What every record says about the machine and software it ran with (taken when the run starts)."""
    return {**package_versions(), "platform": platform.platform(), "host": platform.node(), "cpu": cpu_model(),
            "git_revision": git_revision(), "started_at": utc_now()}


def stable_hash(payload: dict, length: int = 12) -> str:
    """Hash of a JSON-normalized dict (sorted keys), stable across processes and machines."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def json_safe(value):
    """Replace NaN and infinities by None, so the file is strict JSON (browsers reject NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def data_fingerprint(dataset_record: dict) -> str:
    """The checksum of a run's data that enters its identity: the source files' md5 where the
    adapter has one, else the md5 of the exact tensors (generated data)."""
    return dataset_record["source_md5"] or dataset_record["tensor_md5"]


def run_id(config: RunConfig, fingerprint: str | None) -> str:
    """Readable, stable name: dataset, method, seed and a hash of the config identity and data."""
    digest = stable_hash({"config": config.identity(), "dataset_md5": fingerprint})
    return f"{config.dataset}-{config.method}-s{config.seed}-{digest}"


def record_path(out_dir, identity: str, failed: bool = False) -> Path:
    return Path(out_dir) / f"{identity}{'.failed' if failed else ''}.json"


def failure_record(config: RunConfig, identity: str, error: BaseException, seconds: float | None,
                   dataset: dict | None = None, env: dict | None = None) -> dict:
    """The record of a run that diverged or crashed: status "failed", reason and traceback."""
    return {
        "record_version": RECORD_VERSION,
        "run_id": identity,
        "status": "failed",
        "failure": "diverged" if isinstance(error, DivergedError) else "crashed",
        "reason": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(error)),
        "config": config.to_dict(),
        "dataset": dataset,
        "env": env or base_environment(),
        "failed_at": utc_now(),
        "seconds": seconds,
    }


def write_text_atomic(path, text: str) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename: never a half-written file.

    The file gets the permissions of a plain `open` (0666 less the umask), so results in a shared
    folder are readable by the group (mkstemp alone would make them 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path, payload: dict) -> Path:
    """`payload` as strict JSON (NaN and infinities as null), written atomically."""
    return write_text_atomic(path, json.dumps(json_safe(payload), indent=1, allow_nan=False))


def save_record(record: dict, out_dir) -> Path:
    """Write a complete or failure record; a complete one removes the run's old failure record."""
    failed = record["status"] != "complete"
    path = write_json_atomic(record_path(out_dir, record["run_id"], failed), record)
    if not failed:
        record_path(out_dir, record["run_id"], failed=True).unlink(missing_ok=True)
    return path


def read_record(path) -> tuple[dict | None, str | None]:
    """(record, None) for a run record, (None, why) for an unreadable one, (None, None) for a
    JSON file that is not a run record (a suite's state, a config)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return None, f"unreadable: {error}"
    if not isinstance(record, dict) or not {"status", "run_id"} & record.keys():
        return None, None
    return record, None


def record_files(folder) -> list[Path]:
    """Every record file under `folder` (recursively), without atomic writes' temporary files."""
    return [path for path in sorted(Path(folder).rglob("*.json")) if not path.name.startswith(".")]


def record_state(out_dir, identity: str) -> str | None:
    """"complete", "failed" or None (no usable record yet)."""
    path = record_path(out_dir, identity)
    if path.is_file():
        record, _ = read_record(path)
        if record is not None and record.get("status") == "complete":
            return "complete"
    return "failed" if record_path(out_dir, identity, failed=True).is_file() else None


def remove_stale_temporaries(out_dir) -> None:
    """Delete temporary files of atomic writes whose writer was killed (never complete records)."""
    for temporary in Path(out_dir).glob(".*.tmp"):
        if time.time() - temporary.stat().st_mtime > STALE_TEMP_S:
            temporary.unlink(missing_ok=True)
