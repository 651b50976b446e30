"""Run records and their files, in one place: schema version, run identity, paths, the failure
record, the one atomic writer and the reader.

Torch-free, so that the report and the suite planner read records without importing torch.
A complete record is `<out>/<run_id>.json`, a failure `<out>/<run_id>.failed.json`. `record_problem`
is the one check of a complete record, used by the report's reader and the suite's resume alike.
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

RECORD_VERSION = 2
# What a complete record holds, by the version that wrote it: key path -> JSON type ("?": or null),
# parents before their keys. Version 2 made the test split's md5 and the finish time required.
SPLIT_FIELDS = {f"dataset.splits.{split}{key}": kind for split in ("train", "val", "test")
                for key, kind in (("", "object"), (".n", "integer"), (".positives", "integer"))}
V1_REQUIRED = {
    "run_id": "string", "config": "object", "config.dataset": "string", "config.method": "string",
    "config.seed": "integer", "config.params": "object", "config.dataset_params": "object?",
    "config.size": "integer?", "config.imbalance": "number?", "config.max_train_samples": "integer?",
    "dataset": "object", "dataset.source_md5": "string?", "dataset.tensor_md5": "string?", "dataset.shape": "list",
    "dataset.splits": "object", **SPLIT_FIELDS, "env": "object", "history": "list", "seconds": "number?",
    "val": "object", "val.auc": "number?", "test": "object", "test.auc": "number?",
    "test_scores": "object", "test_scores.y_true": "list", "test_scores.y_score": "list",
}
V1_OPTIONAL = {"dataset.split_md5": "object", "dataset.split_md5.test": "string", "dataset.held_out_files": "object?",
               "dataset.held_out_files.test": "list?", "finished_at": "string", "best_epoch": "integer?",
               "operating_points": "object", "operating_points.min_tpr": "object", "operating_points.max_fpr": "object",
               "calibration": "object?", "calibration.val": "object", "calibration.test": "object"}
V2_REQUIRED = {**V1_REQUIRED, "dataset.split_md5": "object", "dataset.split_md5.test": "string", "finished_at": "string"}
RECORD_FIELDS = {1: (V1_REQUIRED, V1_OPTIONAL), 2: (V2_REQUIRED, V1_OPTIONAL)}  # (required, checked when present)
JSON_TYPES = {
    "string": lambda value: isinstance(value, str),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
    "object": lambda value: isinstance(value, dict),
    "list": lambda value: isinstance(value, list),
}
HISTORY_NUMBERS = ("train_loss", "val_auc", "lr", "seconds")  # besides the integer epoch, in every entry
RECORD_MARKERS = {"record_version", "run_id", "status"}  # a JSON object with none of them is some other file
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
    cgroup CPU quota. More compute threads than this only wait for each other (benchmarks/SPEED.md)."""
    mask = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return min(mask, limit) if limit else mask


# CPU features with native bf16 dot products or conversions, which oneDNN's bf16 kernels use:
# AMX tiles (Intel Sapphire Rapids and later), AVX512_BF16 (AMD Zen 4 and later, Intel Cooper
# Lake), AVX-NE-CONVERT (Intel Sierra Forest, Granite Rapids). Without one, bf16 is emulated.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16", "avx_ne_convert")


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
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def base_environment() -> dict:
    """What every record says about the machine and software it ran with (taken when the run starts)."""
    return {**package_versions(), "platform": platform.platform(), "host": platform.node(), "cpu": cpu_model(),
            "cpu_bf16_flags": bf16_cpu_flags(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
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


def write_atomic(path, write) -> Path:
    """Call `write(binary_stream)` on a temporary file in the same folder, fsync, then rename: never
    a half-written file, whatever kills the writer.

    The file gets the permissions of a plain `open` (0666 less the umask), so results in a shared
    folder are readable by the group (mkstemp alone would make them 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
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


def write_text_atomic(path, text: str) -> Path:
    """`text` as UTF-8, written atomically (see write_atomic)."""
    return write_atomic(path, lambda stream: stream.write(text.encode("utf-8")))


def write_problem(path) -> str | None:
    """Why `write_text_atomic(path, ...)` would fail, found without touching `path`: it is a folder,
    a folder above it is a file, or its folder (the nearest existing one when the rest is still to
    be made) cannot be written: probed with a temporary file, so read-only mounts show too."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a folder"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check.", suffix=".tmp"):
            pass
    except OSError as error:
        return f"cannot write in {folder} ({error.strerror or error})"
    return None


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


def read_json(path) -> tuple[object, str | None]:
    """(value, None), or (None, why the file cannot be read as JSON). NaN and infinities read as null,
    as the writer stores them; a byte-order mark (some editors write one) is ignored."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
        if not text.strip():
            return None, "is empty"
        return json.loads(text, parse_constant=lambda name: None), None
    except IsADirectoryError:
        return None, "is a folder, not a record file"
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"
    except UnicodeDecodeError as error:
        return None, f"is not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start})"
    except json.JSONDecodeError as error:
        return None, f"is not valid JSON ({error.msg}: line {error.lineno} column {error.colno})"
    except RecursionError:
        return None, "is nested too deeply to be a record"


def shown(value, width: int = 40) -> str:
    """`value` as JSON for a message, cut to `width` characters (an object or array by its kind)."""
    if isinstance(value, (dict, list)):
        return json_kind(value)
    text = json.dumps(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def json_kind(value) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    kinds = {dict: "an object", list: "an array", str: "a string"}
    return next((name for kind, name in kinds.items() if isinstance(value, kind)), "a number")


def lookup(record: dict, path: str):
    """The value at a dotted key path (`test.auc`); KeyError when a key is absent (its parents are
    checked first, so they are objects)."""
    value = record
    for key in path.split("."):
        value = value[key]
    return value


def type_problem(path: str, value, expected: str) -> str | None:
    kind = expected.rstrip("?")
    if (value is None and expected.endswith("?")) or JSON_TYPES[kind](value):
        return None
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{path} is {shown(value)}, not {article} {kind}{' or null' if expected.endswith('?') else ''}"


def metric_problems(metrics: dict, prefix: str):
    """Each metric a number or null, alone (`auc`) or by level (`tpr_at_fpr.0.1`)."""
    for key, value in metrics.items():
        for level, leaf in (value.items() if isinstance(value, dict) else [(None, value)]):
            yield type_problem(f"{prefix}.{key}" + (f".{level}" if level else ""), leaf, "number?")


def history_problems(history: list):
    for index, entry in enumerate(history):
        name = f"history[{index}]"
        if not isinstance(entry, dict):
            yield f"{name} is {json_kind(entry)}, not an object"
            continue
        for key, expected in {"epoch": "integer", **dict.fromkeys(HISTORY_NUMBERS, "number?")}.items():
            yield f"missing {name}.{key}" if key not in entry else type_problem(f"{name}.{key}", entry[key], expected)
        for key, value in entry.items():  # the method's state: plain numbers, booleans and strings
            if isinstance(value, (dict, list)):
                yield f"{name}.{key} is {json_kind(value)}, not a number, boolean or string"


def score_problems(scores: dict):
    labels, values = scores["y_true"], scores["y_score"]
    if len(labels) != len(values):
        yield f"test_scores has {len(labels)} labels (y_true) but {len(values)} scores (y_score)"
    for index, label in enumerate(labels):
        if type(label) is not int or label not in (0, 1):
            yield f"test_scores.y_true[{index}] is {shown(label)}, not 0 or 1"
            break
    for index, value in enumerate(values):
        if problem := type_problem(f"test_scores.y_score[{index}]", value, "number?"):
            yield problem
            break


def version_problem(record: dict) -> str | None:
    version = record.get("record_version")
    if "record_version" not in record:
        return "missing record_version (not written by CritBench)"
    if not JSON_TYPES["integer"](version) or version < 1:
        return f"record_version {shown(version)} is not a CritBench record version (1 to {RECORD_VERSION})"
    if version > RECORD_VERSION:
        return (f"record_version {version} is newer than this CritBench reads (1 to {RECORD_VERSION}); "
                f"update CritBench (git pull) to read it")
    return None


def is_newer(record) -> bool:
    """Whether a newer CritBench wrote `record` (its schema cannot be checked here)."""
    version = record.get("record_version") if isinstance(record, dict) else None
    return JSON_TYPES["integer"](version) and version > RECORD_VERSION


def record_problem(record) -> str | None:
    """Why `record` is not a usable complete run record, or None: the record version (1 to
    RECORD_VERSION), status "complete", every key of `RECORD_FIELDS` for that version with its JSON
    type, numeric metrics and scores, 0/1 labels, one score per label, and history entries with
    their epoch and numbers."""
    if not isinstance(record, dict):
        return f"holds {json_kind(record)}, not a run record (a JSON object)"
    if problem := version_problem(record):
        return problem
    if record.get("status") != "complete":
        return "missing status" if "status" not in record else f"status {shown(record['status'])}, not \"complete\""
    required, optional = RECORD_FIELDS[record["record_version"]]
    for path, expected in [*required.items(), *optional.items()]:
        try:
            value = lookup(record, path)
        except (KeyError, TypeError):  # TypeError: an optional key's parent is null or not an object
            if path in required:
                return f"missing {path}"
            continue
        if problem := type_problem(path, value, expected):
            return problem
    if not (record["dataset"]["source_md5"] or record["dataset"]["tensor_md5"]):
        return "dataset has neither source_md5 nor tensor_md5: the data it ran on is unknown"
    checks = (*metric_problems(record["val"], "val"), *metric_problems(record["test"], "test"),
              *score_problems(record["test_scores"]), *history_problems(record["history"]))
    return next((problem for problem in checks if problem), None)


def is_failure_record(path, record: dict) -> bool:
    return record.get("status") == "failed" or Path(path).name.endswith(".failed.json")


def read_record(path) -> tuple[dict | None, str | None]:
    """(record, None) for a usable complete record or a failure record (status "failed" or a
    `.failed.json` name, shown as it is); (None, why) for a file that cannot be used as a record;
    (None, None) for a JSON object that is no run record (a suite's state, a config)."""
    value, problem = read_json(path)
    if problem:
        return None, problem
    if isinstance(value, dict):
        if not RECORD_MARKERS & value.keys():
            return None, None
        if is_failure_record(path, value):
            return value, None
    problem = record_problem(value)
    return (None, problem) if problem else (value, None)


def stored_record_problem(path, identity: str) -> str | None:
    """Why the file at run `identity`'s record path is not its usable complete record; None when it
    is, or when a newer CritBench wrote it (kept as complete: never re-run over)."""
    value, problem = read_json(path)
    if problem:
        return problem
    if is_newer(value):
        return None
    if problem := record_problem(value):
        return problem
    return None if value["run_id"] == identity else f"holds run {value['run_id']}, not {identity}"


def record_files(folder) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Every `*.json` file under `folder` (recursively, without atomic writes' temporary files), and
    what hides records, with why: folders that cannot be listed and folders named `*.json`."""
    files, problems = [], []

    def unlisted(error: OSError):
        problems.append((Path(error.filename), f"folder cannot be listed ({error.strerror})"))

    for root, folders, names in os.walk(folder, onerror=unlisted):
        files += [Path(root, name) for name in names if name.endswith(".json") and not name.startswith(".")]
        problems += [(Path(root, name), "is a folder, not a record file") for name in folders if name.endswith(".json")]
    return sorted(files), problems


def record_state(out_dir, identity: str) -> str | None:
    """"complete", "failed" or None (no usable record yet: to run). A record file that cannot be
    used (`stored_record_problem`) does not count as complete, so the suite's resume re-runs it."""
    path = record_path(out_dir, identity)
    if os.path.lexists(path) and stored_record_problem(path, identity) is None:
        return "complete"
    return "failed" if record_path(out_dir, identity, failed=True).is_file() else None


def remove_stale_temporaries(out_dir) -> None:
    """Delete temporary files of atomic writes whose writer was killed (never complete records)."""
    for temporary in Path(out_dir).glob(".*.tmp"):
        if time.time() - temporary.stat().st_mtime > STALE_TEMP_S:
            temporary.unlink(missing_ok=True)
