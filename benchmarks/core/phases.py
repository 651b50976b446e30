"""Wall time per phase of this process (data loading, training, evaluation, records, report),
accumulated by `timed` around the pipeline's steps; `python -m benchmarks.speed --suite` reads it.

A phase entered inside another counts for itself only (the outer one's total excludes it), so the
totals add up to the time spent in any phase. Plain accumulators: a few calls per epoch, no cost
worth measuring when nobody reads them. Per process: runs in worker processes are not counted."""
from __future__ import annotations

import time
from contextlib import ContextDecorator

TOTALS: dict[str, float] = {}
_OPEN: list[tuple[str, float]] = []  # the phases entered and not yet left, innermost last, with their start


class timed(ContextDecorator):
    """`with timed("load"): ...` or `@timed("load")`: adds the block's wall time to TOTALS["load"]."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> "timed":
        _OPEN.append((self.name, time.perf_counter()))
        return self

    def __exit__(self, *exc) -> bool:
        name, start = _OPEN.pop()
        elapsed = time.perf_counter() - start
        TOTALS[name] = TOTALS.get(name, 0.0) + elapsed
        if _OPEN:  # the enclosing phase did not spend this time itself
            outer = _OPEN[-1][0]
            TOTALS[outer] = TOTALS.get(outer, 0.0) - elapsed
        return False


def reset() -> None:
    """Start counting from zero."""
    TOTALS.clear()
