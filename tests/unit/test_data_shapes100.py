"""The embedded 100-class set: deterministic, 100 classes built from three visible factors, colour alone not enough."""
import itertools

import pytest
import torch

from engine.data.named import named_source
from engine.data.patches import open_patch_source
from engine.data.shapes import CLASSES as SHAPES
from engine.data.shapes100 import CLASSES, PATTERNS, SCHEMES, GeneratedShapes100, class_parts, generate_shapes100

pytestmark = pytest.mark.engine


def test_one_hundred_named_classes_from_three_factors():
    assert len(CLASSES) == len(set(CLASSES)) == 100 == len(SHAPES) * len(PATTERNS) * len(SCHEMES)
    for label, name in enumerate(CLASSES):
        shape, pattern, scheme = class_parts(label)
        assert name == f"{SCHEMES[scheme]} {PATTERNS[pattern]} {SHAPES[shape]}"


def test_deterministic_by_seed_and_split_with_images_in_range():
    a, la = generate_shapes100(64, 5, split="train")
    b, lb = generate_shapes100(64, 5, split="train")
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert a.shape == (64, 3, 32, 32) and a.dtype == torch.float32 and la.dtype == torch.int64
    assert 0 <= float(a.min()) and float(a.max()) <= 1 and 0 <= int(la.min()) and int(la.max()) < 100
    assert not torch.equal(a, generate_shapes100(64, 5, split="test")[0])
    assert not torch.equal(a, generate_shapes100(64, 6, split="train")[0])
    assert generate_shapes100(4, 0, size=48)[0].shape == (4, 3, 48, 48)


def test_training_pool_is_class_balanced_and_sources_open_by_name():
    images, labels = GeneratedShapes100().pool(1000, 0)
    assert images.shape == (1000, 3, 32, 32) and (torch.bincount(labels, minlength=100) == 10).all()
    for source in (named_source("shapes100", 32), open_patch_source("shapes100", 16)):
        x, y = source.sample(8, 1, "test")
        assert len(source.classes) == 100 and x.shape[1:] == (3, source.patch, source.patch) and y.shape == (8,)
    with pytest.raises(ValueError, match="labels"):
        generate_shapes100(3, 0, labels=torch.tensor([0, 1, 100]))


def test_every_factor_changes_the_image_for_the_same_random_draw():
    """Two classes that differ in one factor only (shape, pattern or colour scheme), drawn with the same size,
    position, rotation, colours and background, differ in clearly visible pixels: every factor is in the image."""
    fewest = {}
    for seed in range(3):
        images = torch.cat([generate_shapes100(1, seed, split="test", labels=torch.tensor([c]))[0] for c in range(100)])
        for a, b in itertools.combinations(range(100), 2):
            differs = [i for i, (p, q) in enumerate(zip(class_parts(a), class_parts(b))) if p != q]
            if len(differs) == 1:
                pixels = int(((images[a] - images[b]).abs().amax(0) > 0.05).sum())
                fewest[differs[0]] = min(fewest.get(differs[0], 1024), pixels)
    assert set(fewest) == {0, 1, 2} and min(fewest.values()) >= 10, fewest


def test_colour_statistics_alone_do_not_tell_the_classes_apart():
    """Not a colour set: a nearest-centroid classifier on each image's mean and spread of R, G, B is far from the
    100 classes (it can read the colour scheme, 2 of the 100-way split)."""
    x, y = generate_shapes100(4000, 1, split="train")
    xt, yt = generate_shapes100(2000, 2, split="test")

    def stats(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([images.mean((2, 3)), images.std((2, 3))], 1)

    centroids = torch.stack([stats(x)[y == c].mean(0) for c in range(100)])
    accuracy = (torch.cdist(stats(xt), centroids).argmin(1) == yt).float().mean().item()
    assert accuracy < 0.10, accuracy
