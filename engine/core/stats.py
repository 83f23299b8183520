"""Sample sizes and 95% intervals for the figures the pages show.

- ``wilson``: the Wilson score interval of a proportion (successes out of n), sound for small n
  and for rates near 0 or 1, where the normal approximation gives bounds outside 0..1.
- ``mean_interval``: the mean of a few random draws (e.g. ablations of random channel sets) and
  the 95% Student-t interval of that mean.
- ``pct_interval`` / ``format_pct``: the same for a rate already in percent (e.g. a recorded accuracy, or
  an agreement rate that is a mean over images rather than a count), and its short form for a table cell.
- ``format_rate``: one line for a page, e.g. ``"1.6% (95% CI 0.8–3.1%, n=500)"``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

# Two-sided 95% Student-t critical values for 1..30 degrees of freedom; 1.96 beyond.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval (low, high) of the proportion successes / n, both in 0..1."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in 0..n, got {successes} of {n}")
    return _wilson(successes / n, n, z)


def _wilson(p: float, n: int, z: float) -> tuple[float, float]:
    """Wilson interval of an observed proportion p (0..1) on n trials."""
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def pct_interval(pct: float, n: int) -> tuple[float, float]:
    """95% Wilson interval, in percent, of a rate ``pct`` (0-100) measured on n trials."""
    if n <= 0:
        return 0.0, 100.0
    low, high = _wilson(min(max(pct / 100, 0.0), 1.0), n, 1.96)
    return 100 * low, 100 * high


def format_pct(pct: float, n: int, digits: int = 1) -> str:
    """A table cell: the rate and its 95% Wilson interval, e.g. '96.8 (96.0–97.5)'."""
    low, high = pct_interval(pct, n)
    return f"{pct:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def t_critical(dof: int) -> float:
    """Two-sided 95% Student-t critical value for dof degrees of freedom."""
    if dof < 1:
        raise ValueError("need at least one degree of freedom")
    return _T95[dof - 1] if dof <= len(_T95) else 1.96


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean of values and its 95% Student-t interval (mean, low, high); a single value has no width."""
    if not values:
        raise ValueError("need at least one value")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_critical(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def format_rate(successes: int, n: int, digits: int = 1) -> str:
    """A proportion as percent with its 95% Wilson interval and n, e.g. '1.6% (95% CI 0.8–3.1%, n=500)'."""
    if n <= 0:
        return "n/a (n=0)"
    low, high = wilson(successes, n)
    return (f"{100 * successes / n:.{digits}f}% (95% CI {100 * low:.{digits}f}–{100 * high:.{digits}f}%, "
            f"n={n:,})")
