"""scikit-learn's bundled handwritten digits as a patch source (optional dependency)."""
import sys

import pytest
import torch

from engine.data import digits as digits_module
from engine.data.patches import DataError, open_patch_source

pytestmark = pytest.mark.engine


def test_missing_scikit_learn_says_how_to_install_it(monkeypatch):
    digits_module._digits.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails as if it were not installed
    try:
        with pytest.raises(DataError, match="pip install scikit-learn"):
            open_patch_source("digits", 32)
    finally:
        digits_module._digits.cache_clear()


def test_digits_split_sizes_shapes_and_determinism():
    pytest.importorskip("sklearn")
    source = open_patch_source("digits", 32)
    assert source.name == "scikit-learn digits" and source.classes == tuple("0123456789") and len(source) == 1297
    x, y = source.sample(16, 3, "train")
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])  # grey in three channels
    assert torch.equal(x, source.sample(16, 3, "train")[0])
    test, labels = source.sample(500, 7, "test")  # the whole test split, each image once
    assert len({tuple(t.flatten().tolist()) for t in test[:, 0, ::4, ::4]}) > 450
    assert torch.bincount(labels, minlength=10).min() >= 35
    again, _ = source.sample(500, 8, "test")
    assert torch.equal(test.sum(0), again.sum(0))  # another order of the same 500 images
    assert open_patch_source("digits", 16).sample(2, 0)[0].shape == (2, 3, 16, 16)


def test_train_and_test_splits_are_disjoint():
    pytest.importorskip("sklearn")
    images, _ = digits_module._digits()
    cut = len(images) - digits_module.TEST_IMAGES
    train = {tuple(t.flatten().tolist()) for t in images[:cut, 0]}
    assert sum(tuple(t.flatten().tolist()) in train for t in images[cut:, 0]) <= 5  # only the set's own duplicates
