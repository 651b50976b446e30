"""A complete record without training: tests/reports/records_v1's record (CritBench 9ef9df0), as
the current version writes it."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from benchmarks.core.records import RECORD_VERSION

V1_RECORD = Path(__file__).parent / "records_v1" / "synthetic2d-alm-s0-c11cebfa97aa.json"


def current_record(run_id: str | None = None) -> dict:
    """The version 1 record with what later versions require (split md5s, finish time) added."""
    record = json.loads(V1_RECORD.read_text())
    record["dataset"]["split_md5"] = {split: f"{index:032x}" for index, split in enumerate(("train", "val", "test"))}
    record.update(record_version=RECORD_VERSION, finished_at="2026-12-01T00:00:00+00:00", run_id=run_id or record["run_id"])
    return record


REMOVE = object()


def edited(record: dict, path: str | tuple, value=REMOVE) -> dict:
    """A copy of `record` with the key at `path` ("test.auc", or a tuple of keys; list indexes as
    numbers) set to `value`, or removed."""
    record = copy.deepcopy(record)
    *parents, last = path.split(".") if isinstance(path, str) else path
    target = record
    for key in parents:
        target = target[int(key) if isinstance(target, list) else key]
    last = int(last) if isinstance(target, list) else last
    if value is REMOVE:
        del target[last]
    else:
        target[last] = value
    return record
