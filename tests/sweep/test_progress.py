"""Progress of suites and searches: one line per event, a tqdm bar only on a terminal, and a search's
trials counted over the whole search (not `[1/1]` for every trial)."""
from __future__ import annotations

import io
import re

from benchmarks import tune
from benchmarks.core.config import RunConfig
from benchmarks.sweep.executors import RunTask, TaskResult
from benchmarks.sweep.progress import SuiteProgress
from tests.sweep.test_tune import TINY_TUNE


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def two_runs(stream) -> str:
    progress = SuiteProgress(2, stream=stream)
    for index in (1, 2):
        progress.started(RunTask(RunConfig("synthetic2d", "bce"), f"id{index}", f"run {index}", "/tmp"))
        progress.finished(TaskResult(f"id{index}", f"run {index}", "complete", f"/tmp/id{index}.json"))
    return stream.getvalue()


def test_a_log_gets_lines_only_and_a_terminal_also_a_bar():
    log = two_runs(io.StringIO())
    assert log.splitlines()[0] == "[1/2] running run 1  (id1)" and len(log.splitlines()) == 4 and "\r" not in log
    terminal = two_runs(Terminal())
    assert re.search(r"\r.*\b1/2 \[", terminal)  # tqdm's bar between the lines: n/total [elapsed<remaining
    assert "[2/2] done: run 2" in terminal


def test_a_search_counts_its_trials_over_the_whole_search(tmp_path, capsys):
    assert tune.main([*TINY_TUNE, "--trials", "2", "--cv", "2", "--pruner", "none", "--out", str(tmp_path / "out")]) == 0
    running = [line for line in capsys.readouterr().err.splitlines() if " running " in line]
    assert [line.split(" running ")[0] for line in running[:2]] == ["[1/2]", "[2/2]"]
    assert running[0].split(" running ")[1].startswith("trial 0: ") and running[1].split(" running ")[1].startswith("trial 1: ")
