"""Outputs are checked before any work, and a finished record is never lost: when its folder
cannot take it after all (disk full, file-size limit, folder removed), it is saved in a rescue
folder, and as a last resort printed, with one line saying where it went."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.core.errors import CritBenchError
from benchmarks.core.storage import json_safe, save_record, write_problem

PROBE_BYTES = 1 << 20  # larger than any record: a nearly full disk or a small `ulimit -f` shows up now


def rescue_folders() -> list[Path]:
    """Where a record goes when its output folder refuses it: the user's cache, then the temp folder."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return [cache / "critbench" / "rescued", Path(tempfile.gettempdir()) / "critbench-rescued"]


def check_writable_dir(path, flag: str) -> Path:
    """Create folder `path` if needed and prove that a record-sized file can be written in it;
    CritBenchError naming `flag` otherwise (a file, a path under a file, read-only, full)."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise CritBenchError(f"{flag} {path} is a file, not a folder; give a folder (it is created when missing)")
    problem = write_problem(path / ".critbench-probe")
    if problem:
        raise CritBenchError(f"cannot write into {flag} {path}: {problem}; choose a writable folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path, prefix=".critbench-probe-") as probe:
            probe.write(b"\0" * PROBE_BYTES)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise CritBenchError(f"cannot write into {flag} {path}: {error.strerror or error}; "
                             f"choose a writable folder with free space") from None
    return path.resolve()


def check_writable_file(path, flag: str) -> Path:
    """CritBenchError naming `flag` when a file cannot be written at `path` (see write_problem)."""
    path = Path(path).expanduser()
    problem = write_problem(path)
    if problem:
        raise CritBenchError(f"cannot write {flag} {path}: {problem}; give a writable file path")
    return path.resolve()


def save_record_safely(record: dict, out_dir) -> tuple[Path | None, str | None]:
    """Write `record` into `out_dir`; when that fails, into a rescue folder. Returns (path, warning):
    the warning (None when all went well) says what failed and where the record is."""
    try:
        return save_record(record, out_dir), None
    except OSError as error:
        problem = f"could not write the record of {record['run_id']} into {out_dir} ({error.strerror or error})"
    for folder in rescue_folders():
        try:
            path = save_record(record, folder)
        except OSError:
            continue
        return path, f"{problem}; it was saved to {path} instead: move it into {out_dir} once there is room"
    print(json.dumps(json_safe(record)), file=sys.stdout, flush=True)
    return None, f"{problem}, nor into {', '.join(map(str, rescue_folders()))}; it was printed on stdout instead"
