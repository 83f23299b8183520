"""The shipped shift-lab models against the paper's Table 2 claim (AugShift: +3 Cons.8 at equal Top-1) on a small fresh sample."""
import pytest
import torch

from engine.data.named import named_source
from engine.data.patches import GeneratedShapes
from engine.models.blurpool import count_blurpools
from engine.models.shift import METHODS
from engine.shift.consistency import EVAL_SEED, consistency, held_out_images
from engine.shift.shipped import SHIFT_ASSETS, load_shipped, recorded_row, shipped_path

FRESH_SEED = EVAL_SEED + 424_242  # not the sample the model card reports
SAMPLES = 1000
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def measured() -> dict[str, tuple[float, float]]:
    """(Top-1, Cons.8) of every shipped model on the same fresh test sample and offsets."""
    images, labels = held_out_images(GeneratedShapes(load_shipped("baseline")[0].config.crop), SAMPLES, FRESH_SEED)
    out = {}
    for method in METHODS:
        model, _ = load_shipped(method)
        with torch.inference_mode():
            top1 = 100.0 * (model(images).argmax(1) == labels).float().mean().item()
        out[method] = (top1, consistency(model, images, max_shift=8, passes=5, seed=FRESH_SEED, device=CPU))
    return out


def test_shipped_checkpoints_are_small_and_complete():
    sizes = sum(p.stat().st_size for p in SHIFT_ASSETS.rglob("*") if p.is_file())
    assert sizes <= 12 * 2**20 and (SHIFT_ASSETS / "MODEL_CARD.md").is_file()  # two sets of four fp16 models
    for method in METHODS:
        model, meta = load_shipped(method)
        assert model.config.method == method and f"--method {method}" in meta["command"]
        assert (count_blurpools(model) > 0) == model.config.blurpool


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="the 10-class shapes saturate: +1.7 Cons.8 points measured (assets/shift/MODEL_CARD.md)")
def test_augshift_raises_consistency_by_3_points_at_equal_accuracy(measured):
    (base_top1, base_cons), (aug_top1, aug_cons) = measured["baseline"], measured["augshift"]
    assert aug_cons >= base_cons + 3.0, measured
    assert abs(aug_top1 - base_top1) <= 2.0, measured


def test_every_method_is_far_above_chance(measured):
    chance = 100.0 / len(load_shipped("baseline")[0].config.classes)
    for method, (top1, cons) in measured.items():
        assert top1 >= 5 * chance, (method, measured)
        assert cons > 50.0, (method, measured)


def test_augshift_is_more_consistent_than_the_baseline_at_equal_accuracy(measured):
    """The direction of the paper's Table 2 holds on the shipped models (the size of it does not yet)."""
    (base_top1, base_cons), (aug_top1, aug_cons) = measured["baseline"], measured["augshift"]
    assert aug_cons > base_cons, measured
    assert abs(aug_top1 - base_top1) <= 2.0, measured


# The many-class set (Table 2 in the paper's regime): generated shapes-100, 10 training images per class
# (a pool of 1,000: at 50 and 300 per class the baseline saturates, see assets/shift/MODEL_CARD.md).
MANY = "shapes100"
MANY_SAMPLES = 2000  # 100 classes: more images than for the 10-class set, so Top-1 differences of 2 points are resolved


@pytest.fixture(scope="module")
def measured_many() -> dict[str, tuple[float, float]]:
    """(Top-1, Cons.8) of every shipped shapes-100 model on one fresh test sample and offsets (not the card's seed)."""
    assert all(shipped_path(m, MANY).is_file() for m in ("baseline", "augshift")), "assets/shift/MODEL_CARD.md has the commands"
    images, labels = held_out_images(named_source(MANY, 32), MANY_SAMPLES, FRESH_SEED)
    out = {}
    for method in (m for m in METHODS if shipped_path(m, MANY).is_file()):
        model, _ = load_shipped(method, MANY)
        with torch.inference_mode():
            top1 = 100.0 * (model(images).argmax(1) == labels).float().mean().item()
        out[method] = (top1, consistency(model, images, max_shift=8, passes=5, seed=FRESH_SEED, device=CPU))
    return out


def test_every_method_ships_or_has_its_measured_row_for_the_many_class_set(measured_many):
    """A method left out of assets/ (the 40 MB budget) has a recorded row with the command that made it."""
    for method in set(METHODS) - set(measured_many):
        row = recorded_row(method, MANY)
        assert row is not None, f"shapes-100 {method}: neither shipped nor recorded"
        assert f"--method {method}" in row["command"] and f"--data {MANY}" in row["command"] and row["samples"] >= 2000
        with pytest.raises(FileNotFoundError, match="not shipped"):
            load_shipped(method, MANY)


def test_many_class_models_learned_the_set(measured_many):
    """Every shipped method is a shapes-100 model made by its recorded command, well above chance (1%)."""
    for method in measured_many:
        model, meta = load_shipped(method, MANY)
        assert model.config.dataset == MANY and len(model.config.classes) == 100
        assert f"--method {method}" in meta["command"] and f"--data {MANY}" in meta["command"]
    for method, (top1, cons) in measured_many.items():
        assert top1 >= 20.0 and cons > 30.0, (method, measured_many)


def test_many_class_baseline_is_not_saturated(measured_many):
    """The paper's regime has errors to be consistent on (CIFAR-100 Top-1 72.6): a baseline at or below 90."""
    assert measured_many["baseline"][0] <= 90.0, measured_many


def test_many_class_augshift_raises_consistency_by_3_points_at_equal_accuracy(measured_many):
    """The +3 Cons.8 check on the many-class set (the paper, CIFAR-100: +15.5 Cons.8 at equal Top-1)."""
    (base_top1, base_cons), (aug_top1, aug_cons) = measured_many["baseline"], measured_many["augshift"]
    assert aug_cons >= base_cons + 3.0, measured_many
    assert abs(aug_top1 - base_top1) <= 2.0, measured_many
