"""`StandIn`: what an adapter's registered stand-in wrote, and how a run or a load reads it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import MutableMapping


@dataclass(frozen=True)
class StandIn:
    """A tiny copy of a dataset in the adapter's real on-disk format, for the generic test.

    `patches` are `(mapping, key, value)` entries to set while the copy is read (e.g. the md5
    medmnist's INFO expects: a stand-in file cannot match the real checksum). `stem="standard"`
    keeps full-size (28 px and up) stand-ins fast to train."""

    data_dir: Path | None = None
    size: int | None = None
    params: dict = field(default_factory=dict)
    imbalance: float | None = None
    stem: str | None = None
    patches: tuple[tuple[MutableMapping, str, object], ...] = ()

    def load_kwargs(self) -> dict:
        """Keyword arguments of `create_dataset` / `dataset_fingerprint` (no imbalance: the fingerprint takes none)."""
        return {"size": self.size, "data_dir": self.data_dir, "params": self.params}

    def run_kwargs(self) -> dict:
        """Keyword arguments of `RunConfig`."""
        given = {"data_dir": None if self.data_dir is None else str(self.data_dir), "size": self.size,
                 "imbalance": self.imbalance, "stem": self.stem, "dataset_params": self.params or None}
        return {key: value for key, value in given.items() if value is not None}
