"""Numbers as the report writes them, in the HTML, leaderboard.md and the README's Validation table."""
from __future__ import annotations

import math

from reports.settings import DECIMALS


def number(value, decimals: int = DECIMALS) -> str:
    """A metric for display: missing as an em dash, NaN (a run with non-finite scores) as NaN."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN"
    return f"{value:.{decimals}f}"


def mean_pm_std(pair) -> str:
    """(mean, std) as "mean ± std"; the mean alone where there is no std (one seed) or no finite mean."""
    mean, std = pair
    return number(mean) if std is None or not math.isfinite(mean) else f"{number(mean)} ± {number(std)}"


def signed(value) -> str:
    """A difference with its sign: "+0.012" ("+0.000", not "-0.000", for a tiny negative one)."""
    return f"{round(value, DECIMALS) + 0.0:+.{DECIMALS}f}"


def percent_of(part, whole) -> str:
    """`part` as a percentage of `whole`, one decimal: "20.0%" ("—%" of nothing)."""
    return f"{round(100 * part / whole, 1)}%" if whole else "—%"


def interval_text(low, high, formatted=number) -> str:
    """A confidence interval as "[low, high]", each bound `formatted` (`signed` for a difference)."""
    return f"[{formatted(low)}, {formatted(high)}]"


def p_value(p) -> str:
    """A p-value: "<0.001" below a thousandth, an em dash where there is none."""
    if p is None or not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
