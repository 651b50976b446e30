"""One small decorator registry, used for datasets, models and methods (the timm pattern)."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from benchmarks.core.errors import CritBenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to entries; `register` is a decorator, `get` fails with the valid choices."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise CritBenchError(
                f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}"
            ) from None
