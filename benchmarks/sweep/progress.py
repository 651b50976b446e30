"""A suite's progress on stderr (runs of a leaderboard, trials of a search): one line per event,
which is what a log file or a Slurm output keeps, and on a terminal a tqdm bar beneath them with
the elapsed time and the ETA between events. The lines are printed through tqdm so that they never
tear the bar. Both ETAs are the elapsed time per finished run times the runs left (the bar's with
smoothing=0), parallel executors included; the lines compute theirs, as the bar is off in logs."""
from __future__ import annotations

import sys
import time

from tqdm import tqdm

from benchmarks.sweep.executors import RunTask, TaskResult


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class SuiteProgress:
    """Runs (or trials: `unit`) done / total, the run, elapsed, ETA; every result in `results`
    (in the order they finished) and by status in `outcomes`."""

    def __init__(self, total: int, stream=None, unit: str = "run"):
        self.total, self.done = total, 0
        self.outcomes: dict[str, list[TaskResult]] = {status: [] for status in
                                                      ("complete", "failed", "rescued", "claimed", "elsewhere")}
        self.results: list[TaskResult] = []
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.bar = tqdm(total=total, file=self.stream, unit=unit, smoothing=0, leave=False, dynamic_ncols=True,
                        disable=not (hasattr(self.stream, "isatty") and self.stream.isatty()))

    def _print(self, text: str) -> None:
        tqdm.write(text, file=self.stream)
        self.stream.flush()

    def started(self, task: RunTask) -> None:
        self._print(f"[{self.done + 1}/{self.total}] running {task.label}  ({task.run_id})")

    def finished(self, result: TaskResult) -> None:
        self.done += 1
        self.outcomes[result.status].append(result)
        self.results.append(result)
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        status = {"complete": "done", "failed": f"FAILED ({(result.reason or '')[:200]})",
                  "rescued": f"done, but RESCUED: {result.reason}",
                  "claimed": f"skipped, {result.reason}", "elsewhere": f"skipped, {result.reason}"}[result.status]
        self._print(f"[{self.done}/{self.total}] {status}: {result.label}  "
                    f"elapsed {duration(elapsed)}, ETA {duration(eta)}")
        self.bar.update(1)
        if self.done >= self.total:
            self.bar.close()
