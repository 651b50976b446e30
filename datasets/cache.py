"""The on-disk caches adapters share: the `cache_dir` param, entries keyed by content and
settings, written atomically and ignored (one stderr line) when unreadable, and the index of
file checksums that spares re-hashing unchanged files at each start."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

from benchmarks.core.errors import CritBenchError
from benchmarks.core.storage import write_atomic, write_text_atomic
from datasets.base import describe, file_md5, reading, writing

INDEX_NAME = "file-md5.json"
RACY_SECONDS = 2.0  # a file changed this recently may change again within its mtime's granularity: not indexed


def default_cache_dir(adapter: str) -> Path:
    """`$XDG_CACHE_HOME/critbench/<adapter>`, `~/.cache/critbench/<adapter>` without it."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "critbench" / adapter


def cache_param_help(adapter: str) -> str:
    """The `--list` help text of an adapter's `cache_dir` parameter."""
    return (f"folder of cached tensors (default $XDG_CACHE_HOME/critbench/{adapter}, else "
            f"~/.cache/critbench/{adapter}; none: no cache)")


def cache_folder(params: dict, adapter: str) -> Path | None:
    """The `cache_dir` param (None for `none`), created and proved writable before any file is read."""
    value = params.get("cache_dir")
    if value is not None and value.lower() == "none":
        return None
    folder = default_cache_dir(adapter) if value is None else Path(value).expanduser()
    problem = "it is a file, not a folder" if folder.exists() and not folder.is_dir() else None
    if problem is None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as error:
            problem = f"it cannot be written ({describe(error)})"
    if problem:
        raise CritBenchError(f"--param cache_dir={folder}: {problem}; give a writable folder, or cache_dir=none")
    return folder


def entry_name(settings: dict, suffix: str) -> str:
    """A cache entry's file name: md5 of `settings` (the content checksum and everything else that
    changes the entry), in their given order."""
    return hashlib.md5(json.dumps(settings).encode()).hexdigest() + suffix


def read_entry(path: Path, read: Callable[[Path], object]):
    """`read(path)`, or None when the entry is absent or unreadable (one stderr line: it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        return read(path)
    except Exception as error:  # whatever a damaged file makes the reader raise, the entry is rebuilt
        print(f"critbench: ignoring the unreadable cache entry {path} ({describe(error)}); rebuilding it", file=sys.stderr)
        return None


def write_entry(path: Path, write: Callable) -> None:
    """`write(binary_stream)` into `path` atomically: concurrent runs never read half an entry."""
    with writing(path, "free space in --param cache_dir, or pass cache_dir=none"):
        write_atomic(path, write)


class Md5Index:
    """Files' md5 by path, reused while a file's size and mtime_ns are those it was hashed with.

    Kept as `file-md5.json` in the cache folder; without a folder every file is hashed. Only
    files older than RACY_SECONDS when hashed are indexed: a change within the mtime's
    granularity would otherwise go unseen."""

    def __init__(self, folder: Path | None):
        self.path = None if folder is None else folder / INDEX_NAME
        self.entries = self.read() if self.path else {}
        self.changed = False

    def read(self) -> dict:
        entries = read_entry(self.path, lambda path: json.loads(path.read_text()))
        return entries if isinstance(entries, dict) else {}

    def md5(self, path: Path) -> str:
        """The file's md5, reused while its size and mtime_ns are those it was hashed with."""
        return self.digest(str(path), [path], partial(file_md5, path))

    def digest(self, key: str, paths: Sequence[Path], compute: Callable[[], str]) -> str:
        """`compute()`, a checksum over all `paths`, reused while every one of them keeps its path,
        size and mtime_ns (a stat per file: 0.14 s instead of 0.31-0.36 s for CIFAR-10's 12,000 files
        with a hot page cache, more with a cold one).
        Indexed under `key` once every file is older than RACY_SECONDS."""
        stats = []
        for path in paths:
            with reading(path):
                stat = path.stat()
            stats.append((str(path), stat.st_size, stat.st_mtime_ns))
        seen = hashlib.md5(json.dumps(stats).encode()).hexdigest()
        entry = self.entries.get(key)
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == seen and isinstance(entry[1], str):
            return entry[1]
        md5 = compute()
        newest = max((mtime for _, _, mtime in stats), default=0)
        if self.path and time.time_ns() - newest > RACY_SECONDS * 1e9:
            self.entries[key] = [seen, md5]
            self.changed = True
        return md5

    def save(self) -> None:
        """Write the index, merged over entries other runs saved meanwhile."""
        if self.path and self.changed:
            with writing(self.path, "free space in --param cache_dir, or pass cache_dir=none"):
                write_text_atomic(self.path, json.dumps({**self.read(), **self.entries}))
            self.changed = False
