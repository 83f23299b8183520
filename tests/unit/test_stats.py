"""Sample-size helpers: the Wilson interval, the mean of random draws and the page's rate line."""
from __future__ import annotations

import pytest

from engine.core.stats import format_pct, format_rate, mean_interval, pct_interval, t_critical, wilson


def test_wilson_matches_published_values():
    low, high = wilson(8, 500)  # 1.6%: Wilson gives about 0.81-3.13%
    assert low == pytest.approx(0.00813, abs=2e-4)
    assert high == pytest.approx(0.03124, abs=2e-4)
    low, high = wilson(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=2e-4)


def test_wilson_stays_in_unit_interval_at_the_edges():
    assert wilson(0, 12)[0] == 0.0 and 0 < wilson(0, 12)[1] < 0.3
    assert wilson(12, 12)[1] == 1.0 and 0.7 < wilson(12, 12)[0] < 1
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_wilson_narrows_with_n():
    small = wilson(5, 10)
    large = wilson(500, 1000)
    assert large[1] - large[0] < small[1] - small[0]


def test_mean_interval_uses_student_t():
    mean, low, high = mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert high - mean == pytest.approx(4.303 * 1.0 / 3 ** 0.5, rel=1e-6)
    assert mean_interval([5.0]) == (5.0, 5.0, 5.0)
    assert t_critical(1000) == 1.96
    with pytest.raises(ValueError):
        mean_interval([])


def test_format_rate_names_the_interval_and_n():
    assert format_rate(8, 500) == "1.6% (95% CI 0.8–3.1%, n=500)"
    assert format_rate(0, 0) == "n/a (n=0)"


def test_pct_interval_agrees_with_the_count_form():
    low, high = wilson(8, 500)
    assert pct_interval(1.6, 500) == pytest.approx((100 * low, 100 * high))
    assert pct_interval(100.0, 1000)[1] == 100.0 and pct_interval(50.0, 0) == (0.0, 100.0)
    assert format_pct(53.5, 1000) == "53.5 (50.4–56.6)"
