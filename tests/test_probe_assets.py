"""Each shipped probe checkpoint meets its target on a fresh sample (seed not used in training)."""
import pytest

from engine.probe import channel_sum_accuracy, evaluate_probe
from engine.probe_assets import load_shipped_probe

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
    return {head: accuracy(head, "object", 3) for head in ("gapnet", "permutenet")}


def test_object_task_is_learned_by_both(objects):
    assert objects["gapnet"] >= 95.0
    assert objects["permutenet"] >= 10.0 + 15.0  # far above 10-class chance


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="target not met: PermuteNet object 38.7% vs GAPNet 99.7% (assets/probe/MODEL_CARD.md)")
def test_object_permutenet_within_15_points_of_gapnet(objects):
    assert objects["permutenet"] >= objects["gapnet"] - 15.0


@pytest.mark.parametrize("task,grid", [("location", 3), ("object", 3)])
def test_permutenet_decides_from_the_channel_sum_alone(task, grid):
    """Why PermuteNet is capped: with a fresh shuffle per call only sum(z) reaches its classifier."""
    model, _ = load_shipped_probe("permutenet", task, grid)
    real, from_sum = channel_sum_accuracy(model, samples=SAMPLES, seed=FRESH_SEED)
    assert real > 100 / model.config.num_outputs + 10
    assert abs(from_sum - real) <= 5.0  # the sum carries what the shuffled classifier uses
