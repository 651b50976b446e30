"""Run records: environment, stable run identity, atomic JSON writes."""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "libauc", "monai", "medmnist", "nibabel")
SOURCE_DIR = Path(__file__).resolve().parents[2]


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


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def environment(device: torch.device) -> dict:
    return {
        **package_versions(),
        "device": str(device),
        "device_name": device_name(device),
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "platform": platform.platform(),
        "git_revision": git_revision(),
    }


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


def write_json_atomic(path: Path, payload: dict) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(json_safe(payload), stream, indent=1, allow_nan=False)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
