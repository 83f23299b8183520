"""The shipped default and control against the paper's Fig. 4 / Fig. 6 claims, measured on a FRESH sample of val scenes
(seed 7: never used for training, ranking or the shipped measurements); rankings from the held-out rank
split of the same seed, 5 random draws. Thresholds were fixed before measuring."""
from __future__ import annotations

from dataclasses import replace

import pytest

from engine.data.scenes import generate
from engine.models.segmentation import CONTROL_WEIGHTS, DEFAULT_WEIGHTS, load_model
from engine.seg.fidelity import measure
from engine.seg.lab import DEFAULT_VAL

FRESH = replace(DEFAULT_VAL, seed=7)
POINT = 0.01  # one mIoU point (mIoU is 0-1 here)
UNMET = pytest.mark.xfail(strict=True, raises=AssertionError,
                          reason="Fig. 6 does not reproduce on the shipped default nor on any model of the factor table "
                                 "(docs/research/2026-seg-fig6-factor-table.md: 'What the search showed')")


@pytest.fixture(scope="module")
def data():
    return generate(FRESH)


@pytest.fixture(scope="module")
def default(data):
    return measure(load_model(DEFAULT_WEIGHTS), data, "held-out", draws=5)


@pytest.fixture(scope="module")
def control(data):
    return measure(load_model(CONTROL_WEIGHTS), data, "held-out", draws=5)


def test_default_baseline(default):
    assert default.baseline["all"] >= 0.70, default.baseline


@pytest.mark.parametrize("fraction", [0.05, 0.10, 0.25])
def test_fig4_top_n_below_every_random_draw(default, fraction):
    top = next(t for t in default.top_n if t.fraction == fraction)
    assert top.ranked < min(top.random), (top.n, top.ranked, top.random)


def test_fig4_gap_to_random_mean_at_a_quarter(default):
    top = next(t for t in default.top_n if t.fraction == 0.25)
    assert top.random_mean - top.ranked >= 2 * POINT, (top.ranked, top.random_mean)


def test_fig4_first_quarter_costs_a_point_more_than_the_last(default):
    assert default.last_quarter - default.first_quarter >= POINT, (default.first_quarter, default.last_quarter)


@pytest.mark.parametrize("fraction", [0.10, pytest.param(0.25, marks=UNMET)])
def test_fig6_left_ranked_channels_hurt_the_left_half_most(default, fraction):
    r = next(r for r in default.regional if r.fraction == fraction)
    assert r.left_gap >= POINT, r.left_half


@UNMET
@pytest.mark.parametrize("fraction", [0.10, 0.25])
def test_fig6_right_ranked_channels_hurt_the_right_half_most(default, fraction):
    r = next(r for r in default.regional if r.fraction == fraction)
    assert r.right_gap >= POINT, r.right_half


def test_default_leans_on_position_and_the_control_does_not(default, control):
    assert default.mirror_cost >= 5 * POINT, default.mirror_cost  # the old MobileNet default: 1.9 points
    assert control.mirror_cost <= 2 * POINT, control.mirror_cost
