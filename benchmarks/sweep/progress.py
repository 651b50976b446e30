"""A suite's progress on stderr, one line per event (runs of a leaderboard, trials of a search)."""
from __future__ import annotations

import sys
import time

from benchmarks.sweep.executors import RunTask, TaskResult


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class SuiteProgress:
    """Runs done / total, the run, elapsed, ETA (elapsed time per finished run so far, times the
    runs left: parallel executors included)."""

    def __init__(self, total: int, stream=None):
        self.total, self.done = total, 0
        self.outcomes: dict[str, list[TaskResult]] = {status: [] for status in
                                                      ("complete", "failed", "rescued", "claimed", "elsewhere")}
        self.stream = stream or sys.stderr
        self.start = time.monotonic()

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def started(self, task: RunTask) -> None:
        self._print(f"[{self.done + 1}/{self.total}] running {task.label}  ({task.run_id})")

    def finished(self, result: TaskResult) -> None:
        self.done += 1
        self.outcomes[result.status].append(result)
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        status = {"complete": "done", "failed": f"FAILED ({(result.reason or '')[:200]})",
                  "rescued": f"done, but RESCUED: {result.reason}",
                  "claimed": f"skipped, {result.reason}", "elsewhere": f"skipped, {result.reason}"}[result.status]
        self._print(f"[{self.done}/{self.total}] {status}: {result.label}  "
                    f"elapsed {duration(elapsed)}, ETA {duration(eta)}")
