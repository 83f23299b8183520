"""Real handwriting without a download: scikit-learn's bundled ``load_digits`` as a patch source.

1,797 real 8x8 grey handwritten digits (10 classes, UCI optical recognition set) ship inside the
scikit-learn wheel. Here they are grey -> 3 channels, ink bright on black, upscaled to the patch size
(bilinear) when sampled, and split deterministically: a seeded permutation, the last 500 are the test
split (val reads the test split too; the set is too small for a third split). scikit-learn is an
optional dependency, imported only when the set is opened.
"""
from __future__ import annotations

import functools
import importlib.util

import torch

from engine.data.patches import DataError, TensorSource, resize_square

DIGIT_CLASSES = tuple(str(d) for d in range(10))
TEST_IMAGES = 500
SPLIT_SEED = 0
MISSING = "The digits set needs scikit-learn: pip install scikit-learn to use the digits set (it ships the images)."


def available() -> bool:
    """Whether scikit-learn, which ships the images, is installed (without importing it: a page asks this on every run)."""
    return importlib.util.find_spec("sklearn") is not None


@functools.cache
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 images (n, 3, 8, 8) in [0, 1] and labels, in the seeded order of the split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise DataError(MISSING) from err
    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().div_(16.0).clamp_(0, 1)  # ink 0..16
    labels = torch.from_numpy(bunch.target).long()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(SPLIT_SEED))
    return images[order].unsqueeze(1).expand(-1, 3, -1, -1).contiguous(), labels[order]


class DigitsSource(TensorSource):
    """scikit-learn's digits: 1,297 training and 500 test images; held-out samples of up to 500 images are drawn
    without replacement (500 = the whole test split, each image once)."""

    key = "digits"

    def __init__(self, patch: int = 32) -> None:
        images, labels = _digits()
        cut = len(images) - TEST_IMAGES
        super().__init__("scikit-learn digits", images[:cut], labels[:cut], DIGIT_CLASSES, patch,
                         images[cut:], labels[cut:])

    def sample(self, n: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self._splits["train" if split == "train" else "test"]
        if split == "train" or n > len(images):
            return super().sample(n, seed, split)
        idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
        return resize_square(images[idx], self.patch), labels[idx]
