"""A run's identity: its run id, from the config fields that determine its result and the checksum
of its data."""
from __future__ import annotations

import hashlib
import json

from benchmarks.core.config import RunConfig


def stable_hash(payload: dict, length: int = 12) -> str:
    """Hash of a JSON-normalized dict (sorted keys), stable across processes and machines."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def data_fingerprint(dataset_record: dict) -> str:
    """The checksum of a run's data that enters its identity: the source files' md5 where the
    adapter has one, else the md5 of the exact tensors (generated data)."""
    return dataset_record["source_md5"] or dataset_record["tensor_md5"]


def run_id(config: RunConfig, fingerprint: str | None) -> str:
    """Readable, stable name: dataset, method, seed and a hash of the config identity and data."""
    digest = stable_hash({"config": config.identity(), "dataset_md5": fingerprint})
    return f"{config.dataset}-{config.method}-s{config.seed}-{digest}"
