"""Segmentation-lab engine: scenes, subsets, metrics, cached-vs-full exactness, concurrency, kernel flip."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from engine.core.cache import Cache
from engine.data import scenes as scenes_module
from engine.data.cityscapes_classes import IGNORE, NUM_CLASSES, PERSON
from engine.data.scenes import SceneConfig, generate, kept, person_subsets
from engine.models.segmentation import build_model, kernel_flipped, load_model, wrap
from engine.seg.ablation import channel_mask, evaluate_full, evaluate_latents, random_order, select
from engine.seg.features import LatentCache
from engine.seg.metrics import confusion, iou_per_class, miou, region_confusions
from engine.seg.ranking import Ranking, partial_ranking

SMALL = SceneConfig("val", 12, 64, 128, 3)


@pytest.fixture(scope="module")
def data():
    return generate(SMALL)


@pytest.fixture(scope="module")
def seg():
    return load_model()  # the shipped model: its predictions vary with the channels zeroed


def test_models_build_without_downloads():
    assert build_model("deeplabv3_resnet50", output_stride=16).classifier[0].convs[1][0].dilation == (6, 6)
    assert build_model("deeplabv3_resnet50", output_stride=16).backbone.layer3[0].conv2.stride == (2, 2)
    assert build_model("deeplabv3_mobilenet_v3_large").classifier[0].convs[0][0].in_channels == 960
    assert wrap(build_model("deeplabv3_mobilenet_v3_small"), "deeplabv3_mobilenet_v3_small").channels == 576
    assert wrap(build_model(), "deeplabv3_resnet_slim").channels == 512  # the default


def test_scenes_are_deterministic_and_labelled(data):  # their speed: bench/bench_scenes.py
    again = generate(SMALL)
    assert np.array_equal(again.images, data.images) and np.array_equal(again.labels, data.labels)
    assert data.images.shape == (12, 64, 128, 3) and data.labels.dtype == np.uint8
    other = generate(SceneConfig("train", 12, 64, 128, 3))
    assert not np.array_equal(other.images, data.images)
    bigger = generate(SceneConfig("val", 14, 64, 128, 3))
    assert np.array_equal(bigger.images[:12], data.images)  # image i depends on (seed, split, i) only
    present = set(np.unique(data.labels).tolist())
    assert {0, 1, 2, 8, 10, 13} <= present and present <= set(range(NUM_CLASSES))


def test_kept_scenes_are_rendered_once_per_cache_folder_and_equal_fresh_ones(data, tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path))
    first = kept(SMALL)
    assert len(list((tmp_path / "seg" / "scenes").glob("*.pt"))) == 1

    def no_rendering(*_args, **_kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(scenes_module, "generate", no_rendering)
    again = kept(SMALL)  # read back, as a new process would
    for scenes in (first, again):
        assert np.array_equal(scenes.images, data.images) and np.array_equal(scenes.labels, data.labels)
        assert scenes.pedestrian_sides == data.pedestrian_sides and scenes.key == data.key
    monkeypatch.setattr(scenes_module, "KEPT_BYTES", 0)  # a set over the limit is rendered, never written
    with pytest.raises(AssertionError, match="rendered again"):
        kept(SceneConfig("val", 13, 64, 128, 3))
    assert len(list((tmp_path / "seg" / "scenes").glob("*.pt"))) == 1


def test_subsets_rule_matches_where_pedestrians_were_drawn():
    scenes = generate(SceneConfig("val", 80, 64, 128, 1))
    subsets = person_subsets(scenes.labels)
    for side in ("left", "right"):
        expected = [i for i, s in enumerate(scenes.pedestrian_sides) if s and set(s) == {side}]
        assert subsets[side].tolist() == expected and len(expected) > 5


def test_subsets_rule_on_hand_made_maps():
    labels = np.zeros((4, 2, 8), np.uint8)
    labels[0, 0, 1] = PERSON          # left only
    labels[1, 1, 6] = PERSON          # right only
    labels[2, 0, 3] = labels[2, 0, 4] = PERSON  # both halves
    subsets = person_subsets(labels)   # image 3 has no person: in neither
    assert subsets["left"].tolist() == [0] and subsets["right"].tolist() == [1]


def test_confusion_and_miou_by_hand():
    target = torch.tensor([[[0, 0, 1, 1, 2, IGNORE, 0, 1]]])
    pred = torch.tensor([[[0, 1, 1, 1, 2, 2, 0, 0]]])
    conf = confusion(pred, target, 3)
    assert conf.tolist() == [[2, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert miou(conf) == pytest.approx((2 / 4 + 2 / 4 + 1) / 3)
    regions = region_confusions(pred, target, 3)
    assert torch.equal(regions["all"], conf)
    assert regions["left"].tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]   # columns 0-3
    assert regions["center"].tolist() == [[0, 0, 0], [0, 2, 0], [0, 0, 1]]  # columns 2-5
    assert regions["right"].tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 1]]  # columns 4-7
    assert miou(regions["left"]) == pytest.approx((1 / 2 + 2 / 3) / 2)  # class 2 absent: not averaged
    assert torch.isnan(iou_per_class(regions["left"])[2])


@pytest.mark.parametrize("classes", [19, 100])  # a 16-bit and a 32-bit bincount index
def test_region_confusions_equal_confusions_of_the_region_columns(classes):
    gen = torch.Generator().manual_seed(classes)
    target = torch.randint(0, classes, (3, 6, 16), generator=gen, dtype=torch.uint8)
    target[torch.rand(target.shape, generator=gen) < 0.2] = IGNORE
    pred = torch.randint(0, classes, (3, 6, 16), generator=gen)
    regions = region_confusions(pred, target, classes)
    for region, cols in {"all": slice(0, 16), "left": slice(0, 8), "center": slice(4, 12), "right": slice(8, 16)}.items():
        assert torch.equal(regions[region], confusion(pred[..., cols], target[..., cols], classes))


def test_cached_head_gives_exactly_the_full_forward_confusions(seg, data):
    lat = LatentCache(use_disk=False).get(seg, data, precision="fp32")
    for zeroed in ([], random_order(seg.channels, 0)[:100], np.arange(200, 400)):
        mask = channel_mask(seg.channels, zeroed)
        cached, full = evaluate_latents(seg, lat, mask), evaluate_full(seg, data, mask, exact=True)
        for region in cached:
            assert torch.equal(cached[region], full[region])


def test_latent_cache_is_bounded_and_reused(seg, data, tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path))
    cache = LatentCache(Cache(max_bytes=1))
    first = cache.get(seg, data)
    assert cache.get(seg, data) is first and first.z.dtype == torch.float16
    assert list((tmp_path / "seg" / "latents").glob("*.pt"))
    fresh = LatentCache(Cache()).get(seg, data)  # a new memory tier: read back from disk
    assert fresh is not first and torch.equal(fresh.z, first.z)
    other = generate(SceneConfig("val", 2, 64, 128, 4))
    cache.get(seg, other)
    assert len(cache.cache) == 1 and cache.cache.peak_bytes >= first.nbytes


def test_two_threads_ablating_different_channels_get_their_own_results(seg, data):
    lat = LatentCache(use_disk=False).get(seg, data, precision="fp32")
    masks = [channel_mask(seg.channels, np.arange(0, 300)), channel_mask(seg.channels, np.arange(250, seg.channels))]
    expected = [evaluate_latents(seg, lat, m) for m in masks]
    state = {k: v.clone() for k, v in seg.model.state_dict().items()}
    results: dict[int, list] = {0: [], 1: []}

    def work(i: int) -> None:
        for _ in range(3):
            results[i].append(evaluate_latents(seg, lat, masks[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in (0, 1):
        for got in results[i]:
            assert all(torch.equal(got[r], expected[i][r]) for r in got)
    assert not all(torch.equal(expected[0][r], expected[1][r]) for r in expected[0])
    assert all(torch.equal(v, state[k]) for k, v in seg.model.state_dict().items())


def test_kernel_flip_copy_leaves_the_original_untouched(seg, data):
    before = {k: v.clone() for k, v in seg.model.state_dict().items()}
    flipped = kernel_flipped(seg.model)
    first_conv = seg.model.backbone.conv1.weight
    assert torch.equal(flipped.backbone.conv1.weight, first_conv.flip(-1))
    assert torch.equal(flipped.backbone.layer4[1].conv2.weight, seg.model.backbone.layer4[1].conv2.weight.flip(-1))
    assert all(torch.equal(v, before[k]) for k, v in seg.model.state_dict().items())
    assert torch.equal(flipped.classifier[4].weight, seg.model.classifier[4].weight)  # head not flipped


def test_rankings_add_up_over_shards(seg, data):
    whole = partial_ranking(seg, data.images, "overall")
    shards = partial_ranking(seg, data.images[:5], "overall") + partial_ranking(seg, data.images[5:], "overall")
    assert whole.count == shards.count == len(data.images)
    np.testing.assert_allclose(shards.total, whole.total, rtol=1e-6, atol=1e-9)
    assert (whole.scores >= 0).all() and whole.order[0] == int(np.argmax(whole.scores))
    signed = partial_ranking(seg, data.images, "left")
    assert (signed.scores < 0).any()  # Eq. 3 keeps the sign
    assert Ranking.from_json(whole.to_json()).order.tolist() == whole.order.tolist()


def test_selection_helpers():
    order = np.array([5, 3, 1, 0, 2, 4])
    assert select(order, 2).tolist() == [5, 3] and select(order, rank_range=(2, 4)).tolist() == [1, 0]
    assert channel_mask(6, [5, 3]).tolist() == [1, 1, 1, 0, 1, 0]
    assert random_order(6, 1).tolist() == random_order(6, 1).tolist() != random_order(6, 2).tolist()


def test_moved_scenes_mirror_and_roll_images_and_labels_together():
    from engine.seg.lab import moved
    data = generate(SceneConfig("val", 3, 32, 64, 0))
    mirrored = moved(data, "mirror")
    assert np.array_equal(mirrored.images[:, :, ::-1], data.images) and np.array_equal(mirrored.labels[:, :, ::-1], data.labels)
    assert mirrored.key != data.key and np.array_equal(moved(mirrored, "mirror").labels, data.labels)
    swap = {"left": "right", "right": "left"}
    assert mirrored.pedestrian_sides == [tuple(swap.get(x, x) for x in s) for s in data.pedestrian_sides]
    rolled = moved(data, "roll:16")
    assert np.array_equal(rolled.labels[:, :, 16:], data.labels[:, :, :-16])
    with pytest.raises(ValueError, match="mirror"):
        moved(data, "roll:x")


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    from engine.models.segmentation import DEFAULT_WEIGHTS
    from engine.seg.train import TrainConfig, train_segmentation
    cfg = TrainConfig(train_images=2, val_images=1, height=32, epochs=1, batch_size=2, lr=1e-9, scene_seed=1,
                      init=str(DEFAULT_WEIGHTS))
    tuned, shipped = train_segmentation(cfg, torch.device("cpu")), load_model()
    conv = "backbone.conv1.weight"
    assert torch.allclose(tuned.model.state_dict()[conv], shipped.model.state_dict()[conv], atol=1e-4)
    with pytest.raises(ValueError, match="output stride"):
        train_segmentation(TrainConfig(**{**cfg.__dict__, "arch": "deeplabv3_resnet50"}), torch.device("cpu"))


def test_the_latent_penalty_adds_the_latents_mean_activation_to_the_loss():
    from engine.models.segmentation import to_input
    from engine.seg.train import segmentation_loss
    data = generate(SceneConfig("train", 2, 32, 64, 0))
    model, x, y = build_model().eval(), to_input(data.images), torch.from_numpy(data.labels).long()
    with torch.no_grad():
        plain, penalised = segmentation_loss(model, x, y), segmentation_loss(model, x, y, latent_l1=3.0)
        active = model.backbone(x)["out"].mean()
        assert torch.allclose(plain, torch.nn.functional.cross_entropy(model(x)["out"], y, ignore_index=IGNORE))
    assert active > 0 and torch.allclose(penalised - plain, 3.0 * active)
