"""Real Cityscapes from a local folder in torchvision's layout, at the lab's working resolution.

``root/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` with
``root/gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` (what torchvision's ``Cityscapes`` reads).
Label ids are mapped to the 19 train ids (255 = ignore); images are resized (bilinear) and labels
(nearest) to ``height`` x ``2 * height``. The result is a :class:`SceneSet`, so ranking, ablation
and sweeps run on it unchanged.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.datasets import Cityscapes

from engine.core.progress import Progress, ProgressFn, report
from engine.core.storage import fingerprint
from engine.data.cityscapes_classes import ID_TO_TRAINID, PERSON
from engine.data.patches import DataError
from engine.data.scenes import SceneSet

SPLITS = ("train", "val", "test")


def layout(root: Path | str, split: str = "val") -> str:
    """The expected layout under ``root``, spelled out for error messages."""
    return (f"{root}/leftImg8bit/{split}/<city>/<name>_leftImg8bit.png with labels in "
            f"{root}/gtFine/{split}/<city>/<name>_gtFine_labelIds.png (torchvision's Cityscapes layout)")


def _pairs(root: Path, split: str) -> list[tuple[str, str]]:
    if split not in SPLITS:
        raise DataError(f"unknown Cityscapes split {split!r}; expected one of {SPLITS}.")
    if not root.is_dir():
        raise DataError(f"No Cityscapes folder at {root}: expected {layout(root, split)}.")
    for sub in ("leftImg8bit", "gtFine"):  # checked here so torchvision never tries to extract archives
        if not (root / sub / split).is_dir():
            raise DataError(f"{root} has no {sub}/{split} folder: expected {layout(root, split)}.")
    try:
        ds = Cityscapes(str(root), split=split, mode="fine", target_type="semantic")
    except (RuntimeError, ValueError, OSError) as err:
        raise DataError(f"{root} is not a usable Cityscapes folder: expected {layout(root, split)}.") from err
    pairs = sorted(zip(ds.images, (t[0] for t in ds.targets)))
    if not pairs:
        raise DataError(f"No *_leftImg8bit.png images under {root}/leftImg8bit/{split}/<city>/: expected {layout(root, split)}.")
    return pairs


def _read(pair: tuple[str, str], height: int) -> tuple[np.ndarray, np.ndarray]:
    image_path, label_path = pair
    if not Path(label_path).is_file():
        raise DataError(f"Missing label file {label_path} for {image_path}.")
    try:
        with Image.open(image_path) as img, Image.open(label_path) as lab:
            if img.size != lab.size:
                raise DataError(f"{label_path} is {lab.size[0]}x{lab.size[1]} but its image is {img.size[0]}x{img.size[1]}.")
            rgb = img.convert("RGB").resize((2 * height, height), Image.Resampling.BILINEAR)
            ids = np.asarray(lab.resize((2 * height, height), Image.Resampling.NEAREST)).astype(np.int64)
    except OSError as err:
        raise DataError(f"Cannot read {image_path} or {label_path}: not a readable image.") from err
    return np.asarray(rgb, dtype=np.uint8), ID_TO_TRAINID[ids.clip(0, 255)]


def _sides(labels: np.ndarray) -> tuple[str, ...]:
    person = labels == PERSON
    half = labels.shape[-1] // 2
    return tuple(side for side, cols in (("left", person[:, :half]), ("right", person[:, half:])) if cols.any())


def load_cityscapes(root: Path | str, split: str = "val", height: int = 128, count: int | None = None,
                    on_progress: ProgressFn | None = None) -> SceneSet:
    """The first ``count`` images (sorted by path) of a split, resized to ``height`` x ``2*height``, train-id labels."""
    if height < 16 or height % 16:
        raise ValueError("the working height must be a multiple of 16 (e.g. 128, 256, 512); width = 2 x height")
    root = Path(root).expanduser()
    pairs = _pairs(root, split)[:count]
    images, labels = [], []
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:  # PNG decoding releases the GIL
        for i, (img, lab) in enumerate(pool.map(lambda p: _read(p, height), pairs)):
            images.append(img)
            labels.append(lab)
            report(on_progress, Progress(i + 1, len(pairs), "reading Cityscapes"))
    files = [(os.path.relpath(p, root), Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for pair in pairs for p in pair]
    key = {"kind": "cityscapes", "root": str(root.resolve()), "split": split, "count": len(pairs), "height": height,
           "width": 2 * height, "files": fingerprint(files)}
    return SceneSet(np.stack(images), np.stack(labels), [_sides(lab) for lab in labels], key)
