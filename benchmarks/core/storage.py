"""Record files: where a run's record lives, the one atomic writer, and the readers that check what
they read (`benchmarks.core.records.record_problem`).

A complete record is `<out>/<run_id>.json`, a failure `<out>/<run_id>.failed.json`. Torch-free.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

from benchmarks.core.records import RECORD_MARKERS, is_newer, record_problem

STALE_TEMP_S = 600  # a temporary file older than this was left by a killed writer


def json_safe(value):
    """Replace NaN and infinities by None, so the file is strict JSON (browsers reject NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def record_path(out_dir, identity: str, failed: bool = False) -> Path:
    """Where run `identity`'s complete (or, with `failed`, failure) record lives in `out_dir`."""
    return Path(out_dir) / f"{identity}{'.failed' if failed else ''}.json"


def write_atomic(path, write) -> Path:
    """Call `write(binary_stream)` on a temporary file in the same folder, fsync, then rename: never
    a half-written file, whatever kills the writer. A write the file system refuses (a full disk, a
    file-size limit) raises its OSError, also where `write` wraps it in another exception: torch.save's
    zip writer raises `RuntimeError: [enforce fail at inline_container.cc] unexpected pos`, keeping
    the stream's OSError only as the exception's context.

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
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, Exception) and not isinstance(error, OSError) and isinstance(error.__context__, OSError):
            raise error.__context__ from error
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


def is_failure_record(path, record: dict) -> bool:
    """Whether `record`, read from `path`, is a failure record (status "failed" or a `.failed.json` name)."""
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
