"""The report's statistical settings, each defined once: the code that computes with them and every
text that states them (the HTML templates, leaderboard.md, leaderboard.csv's column names) read
them from here."""
from __future__ import annotations

N_BOOTSTRAP = 2000  # resamples of every bootstrap (pooled AUC, rates at operating points)
LEVEL = 0.95  # two-sided confidence level of every interval
DECIMALS = 3  # displayed precision; ties at this precision share the bold "best"
MIN_SEEDS = 3  # fewer seeds give no published verdict and a hint to add seeds: with two, the t interval is ±12.7 se
SIGNIFICANCE = 0.05  # p-values below it are highlighted (two-sided, not corrected for multiple comparisons)
LEVEL_TEXT = f"{LEVEL:.0%}"  # "95%"
