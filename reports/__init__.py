"""HTML reports, leaderboard tables and AUC statistics from CritBench run records.

`reports.load_runs(dir)` returns the records under a folder as pandas DataFrames (reports/frames.py)."""
from reports.frames import load_runs

__all__ = ["load_runs"]
