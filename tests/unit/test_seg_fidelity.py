"""Divided-road scenes, the held-out ranking split, the magnitude ranking, flip-augmented training and the
Fig. 4/6 measurement (engine.seg.fidelity) on small generated data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.data.cityscapes_classes import TRAIN_ID
from engine.data.scenes import SceneConfig, generate
from engine.models.segmentation import build_model, detect_arch, load_model, wrap
from engine.seg.fidelity import Fidelity, measure
from engine.seg.lab import channel_order, ranking_data
from engine.seg.ranking import partial_ranking

WALL, SIDEWALK = TRAIN_ID["wall"], TRAIN_ID["sidewalk"]
TINY = SceneConfig("val", 8, 32, 64, 5)


@pytest.fixture(scope="module")
def slim():
    torch.manual_seed(0)
    return wrap(build_model("deeplabv3_resnet_slim"), "deeplabv3_resnet_slim")


def test_divided_layout_median_looks_like_the_sidewalk_and_lies_left():
    divided = generate(SceneConfig("val", 20, 64, 128, 2))
    street = generate(SceneConfig("val", 20, 64, 128, 2, "street"))
    assert WALL not in street.labels and WALL in divided.labels and SIDEWALK in divided.labels
    for img, lab in zip(divided.images, divided.labels):
        wall, walk = lab == WALL, lab == SIDEWALK
        if wall.sum() > 20 and walk.sum() > 20:  # same paint: mean colours within a few grey levels
            assert np.abs(img[wall].mean(0) - img[walk].mean(0)).max() < 12
    cols_wall, cols_walk = np.nonzero(divided.labels == WALL)[2], np.nonzero(divided.labels == SIDEWALK)[2]
    assert cols_wall.mean() < 64 / 2 and cols_walk.mean() > 64 + 64 / 2  # the median on the left, the sidewalk right
    assert (divided.labels == SIDEWALK).sum() > (divided.labels == WALL).sum()  # the camera is in the right lane
    with pytest.raises(ValueError, match="layout"):
        generate(SceneConfig("val", 1, 32, 64, 0, "mirrored"))


def test_ranking_split_is_disjoint_from_val_and_keyed_apart():
    val = generate(TINY)
    held = ranking_data(val, "held-out")
    assert ranking_data(val, "val") is val
    assert held.key["split"] == "rank" and held.key["layout"] == val.key["layout"] and held.key != val.key
    flat = {img.tobytes() for img in val.images}
    assert not any(img.tobytes() in flat for img in held.images)
    train = generate(SceneConfig("train", 8, 32, 64, 5))
    assert not any(img.tobytes() in {t.tobytes() for t in train.images} for img in held.images)
    with pytest.raises(ValueError, match="rank-on"):
        ranking_data(val, "train")


def test_magnitude_ranks_by_mean_activation(slim):
    data = generate(TINY)
    r = partial_ranking(slim, data.images, "magnitude")
    with torch.inference_mode():
        from engine.models.segmentation import backbone_latent, to_input
        gap = backbone_latent(slim.model, to_input(data.images)).mean((2, 3)).mean(0).double().numpy()
    assert np.allclose(r.scores, gap, rtol=1e-4, atol=1e-6)
    assert r.order[0] == int(np.argmax(gap)) and (r.scores >= 0).all()  # a post-ReLU latent


def test_relative_ranks_flip_change_per_unit_of_activation(slim, tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path))
    from engine.seg.ranking import rank
    data = generate(TINY)
    flips, size, rel = (rank(slim, data, m) for m in ("overall", "magnitude", "relative"))
    seen = size.scores > 0
    assert np.allclose(rel.scores[seen], flips.scores[seen] / size.scores[seen]) and rel.count == len(data.images)
    only_mirrored = ~seen & (flips.scores > 0)  # silent on the images, active on their mirrors: ranked first
    assert set(rel.order[: only_mirrored.sum()]) == set(np.flatnonzero(only_mirrored))
    assert (rel.scores[~seen & (flips.scores == 0)] == 0).all()
    assert not np.array_equal(rel.order, flips.order)
    assert len(list((tmp_path / "seg" / "rankings").glob("*.json"))) == 2  # overall and magnitude; nothing of its own
    with pytest.raises(ValueError, match="derived"):
        partial_ranking(slim, data.images, "relative")


def test_channel_order_uses_the_chosen_split(slim):
    data = generate(TINY)
    held, inval = channel_order(slim, data, "overall", rank_on="held-out"), channel_order(slim, data, "overall", rank_on="val")
    assert sorted(held.tolist()) == sorted(inval.tolist()) == list(range(slim.channels))
    assert not np.array_equal(held, inval)


def test_slim_model_is_a_sparse_resnet_latent_and_round_trips(slim, tmp_path):
    assert slim.channels == 512 and detect_arch(slim.model.state_dict()) == "deeplabv3_resnet_slim"
    with torch.inference_mode():
        z = slim.model.backbone(torch.randn(2, 3, 64, 128))["out"]
    assert z.shape == (2, 512, 4, 8) and (z >= 0).all() and (z == 0).float().mean() > 0.1
    from engine.models.segmentation import save_model
    again = load_model(save_model(slim, tmp_path / "m.pt"))
    assert again.arch == "deeplabv3_resnet_slim" and again.channels == 512


def test_flip_training_mirrors_images_and_labels_together(tmp_path):
    from engine.seg.train import TrainConfig, train_segmentation
    cfg = TrainConfig(arch="deeplabv3_resnet_slim", train_images=4, val_images=2, height=32, epochs=2, batch_size=4, flip=True)
    ckpt = tmp_path / "legs.pt"
    seg = train_segmentation(cfg, torch.device("cpu"), checkpoint=ckpt)
    assert seg.meta["train"]["flip"] is True and seg.meta["epochs_done"] == 2
    assert load_model(ckpt).meta["epochs_done"] == 2  # saved after every epoch, the last too (before the val pass)


def test_fidelity_measures_every_claim_and_round_trips(slim):
    data = generate(SceneConfig("val", 12, 32, 64, 6))
    fid = measure(slim, data, draws=2, fractions=(0.1, 0.25))
    assert [t.n for t in fid.top_n] == [51, 128] and all(len(t.random) == 2 for t in fid.top_n)
    assert len(fid.eighths) == 8 and fid.eighths[0][:2] == (0, 64) and fid.eighths[-1][1] == 512
    assert {r.n for r in fid.regional} == {51, 128} and fid.rank_on == "held-out"
    assert len(fid.claims()) == 2 + 1 + 2
    again = Fidelity.from_json(json.loads(json.dumps(fid.to_json())))
    assert again.rows() == fid.rows() and again.mirror_cost == pytest.approx(fid.mirror_cost)
