"""Cityscapes' 19 evaluation classes (train ids), taken from torchvision's dataset definition.

The generated scenes use the same train ids, so every engine function runs unchanged on real
Cityscapes label maps once they are mapped with :data:`ID_TO_TRAINID`.
"""
from __future__ import annotations

import numpy as np
from torchvision.datasets import Cityscapes

IGNORE = 255
_TRAIN = sorted((c for c in Cityscapes.classes if 0 <= c.train_id < IGNORE), key=lambda c: c.train_id)
NAMES: list[str] = [c.name for c in _TRAIN]
COLORS: np.ndarray = np.array([c.color for c in _TRAIN], dtype=np.uint8)
NUM_CLASSES = len(NAMES)
TRAIN_ID = {name: i for i, name in enumerate(NAMES)}
PERSON = TRAIN_ID["person"]

ID_TO_TRAINID = np.full(256, IGNORE, dtype=np.uint8)
for _c in Cityscapes.classes:
    if 0 <= _c.id < 256 and 0 <= _c.train_id < IGNORE:
        ID_TO_TRAINID[_c.id] = _c.train_id


_LUT = np.zeros((256, 3), dtype=np.uint8)
_LUT[:NUM_CLASSES] = COLORS
_LUT[NUM_CLASSES:IGNORE] = np.random.default_rng(0).integers(40, 256, (IGNORE - NUM_CLASSES, 3))  # other label sets


def colorize(labels: np.ndarray) -> np.ndarray:
    """RGB uint8 image of a label map (Cityscapes colours for train ids, fixed colours above, ignore black)."""
    return _LUT[labels]
