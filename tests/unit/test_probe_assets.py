"""Each shipped probe checkpoint meets its target on a fresh sample (seed not used in training)."""
import json

import pytest

from engine.probe.evaluate import channel_sum_accuracy, evaluate_probe
from engine.probe.shipped import PROBE_ASSETS, load_shipped_probe

SAMPLES = 400
FRESH_SEED = 424_242


def accuracy(head: str, task: str, grid: int) -> float:
    model, _ = load_shipped_probe(head, task, grid)
    return evaluate_probe(model, samples=SAMPLES, seed=FRESH_SEED).accuracy


@pytest.fixture(scope="module")
def location():
    return {(head, grid): accuracy(head, "location", grid) for head in ("gapnet", "permutenet") for grid in (3, 5, 7)}


@pytest.mark.parametrize("grid", [3, 5, 7])
def test_gapnet_finds_the_cell(location, grid):
    assert location[("gapnet", grid)] >= 99.0


def test_permutenet_is_clearly_worse_and_worse_on_finer_grids(location):
    gaps = [location[("gapnet", g)] - location[("permutenet", g)] for g in (3, 5, 7)]
    assert min(gaps) >= 20.0
    assert gaps[0] < gaps[1] < gaps[2]
    assert location[("permutenet", 3)] > 100 / 9 + 10  # still above chance: some position survives the shuffle


@pytest.fixture(scope="module")
def objects():
    return {(head, grid): accuracy(head, "object", grid) for head in ("gapnet", "permutenet") for grid in (3, 5, 7)}


@pytest.mark.parametrize("grid", [3, 5, 7])
def test_object_task_is_learned_by_both(objects, grid):
    assert objects[("gapnet", grid)] >= 95.0
    assert objects[("permutenet", grid)] >= 10.0 + 15.0  # far above 10-class chance


@pytest.mark.parametrize("grid", [3, 5, 7])
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="does not reproduce: object PermuteNet 52-55% vs GAPNet 99.8-99.9% after 12,000-13,000 steps (assets/probe/MODEL_CARD.md)")
def test_object_permutenet_within_15_points_of_gapnet(objects, grid):
    assert objects[("permutenet", grid)] >= objects[("gapnet", grid)] - 15.0


@pytest.mark.parametrize("task,grid", [("location", 3), ("object", 3), ("object", 7)])
def test_permutenet_decides_from_the_channel_sum_alone(task, grid):
    """Why PermuteNet is capped: with a fresh shuffle per call only sum(z) reaches its classifier."""
    model, _ = load_shipped_probe("permutenet", task, grid)
    real, from_sum = channel_sum_accuracy(model, samples=SAMPLES, seed=FRESH_SEED)
    assert real > 100 / model.config.num_outputs + 10
    assert abs(from_sum - real) <= 5.0  # the sum carries what the shuffled classifier uses


def recorded_location_rows() -> dict:
    """Table 1's location rows as shipped: zero padding re-measured from the checkpoints by ``table1``, reflect and
    replicate from the recorded rows of checkpoints that do not fit the asset budget (each row names its command)."""
    rows = json.loads((PROBE_ASSETS / "table1.json").read_text())
    return {(r["padding"], r["net"], r["grid"]): r for r in rows if r["task"] == "location"}


@pytest.mark.parametrize("padding", ["zero", "reflect", "replicate"])
def test_location_targets_hold_for_every_padding(padding):
    rows = recorded_location_rows()
    gapnet = [rows[(padding, "GAPNet", g)]["accuracy"] for g in (3, 5, 7)]
    gaps = [rows[(padding, "GAPNet", g)]["accuracy"] - rows[(padding, "PermuteNet", g)]["accuracy"] for g in (3, 5, 7)]
    assert min(gapnet) >= 99.0
    assert gaps[0] < gaps[1] < gaps[2]
    assert all(rows[(padding, net, g)]["samples"] >= 2000 and rows[(padding, net, g)]["command"]
               for net in ("GAPNet", "PermuteNet") for g in (3, 5, 7))
