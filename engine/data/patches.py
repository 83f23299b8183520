"""Patch sources: where the images placed on a grid come from.

Every source returns float images in [0, 1], shape (n, 3, P, P), with integer labels:
the embedded generated shapes (default, offline), CIFAR-10/100 from a local folder in
torchvision's layout, any torchvision ImageFolder, or a list of user images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from engine.core.errors import DataError
from engine.data.shapes import CLASSES as SHAPE_CLASSES
from engine.data.shapes import generate_shapes


class PatchSource(Protocol):
    """Anything that can hand out labelled square patches."""

    name: str
    classes: tuple[str, ...]

    def sample(self, n: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` images (n, 3, P, P) in [0, 1] and labels, deterministic in (seed, split)."""
        ...


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (n, 3, h, w) images to (n, 3, size, size), antialiased when shrinking."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)


@dataclass(frozen=True)
class GeneratedShapes:
    """The embedded procedural 10-class set (see :mod:`engine.data.shapes`)."""

    patch: int = 32
    name: str = "generated shapes"
    classes: tuple[str, ...] = SHAPE_CLASSES
    clutter: float = 0.0  # 0: the clean set; up to 1: low contrast, a distractor shape, pixel noise
    key: str = "shapes"  # its name in engine.data.named

    def __post_init__(self) -> None:
        if self.clutter:
            object.__setattr__(self, "name", f"{self.name} (clutter {self.clutter:g})")

    def sample(self, n: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        return generate_shapes(n, seed, self.patch, split, self.clutter)


class TensorSource:
    """A source over images already in memory (a loaded dataset or a user's uploads)."""

    def __init__(self, name: str, images: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...], patch: int = 32,
                 test_images: torch.Tensor | None = None, test_labels: torch.Tensor | None = None) -> None:
        self.name, self.classes, self.patch = name, classes, patch
        self._splits = {"train": (images, labels), "test": (test_images, test_labels) if test_images is not None else (images, labels)}

    def __len__(self) -> int:
        return len(self._splits["train"][0])

    def sample(self, n: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self._splits["train" if split == "train" else "test"]
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(len(images), (n,), generator=g)
        batch = images[idx]
        batch = batch.float().div_(255) if batch.dtype == torch.uint8 else batch
        return resize_square(batch, self.patch), labels[idx]


def _uint8_nchw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).contiguous()


def load_cifar(root: str | Path, variant: str = "cifar10", patch: int = 32, download: bool = False) -> TensorSource:
    """CIFAR-10/100 from ``root`` in torchvision's layout (``root/cifar-10-batches-py/...``)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = {"cifar10": CIFAR10, "cifar100": CIFAR100}[variant]
    try:
        train, test = cls(str(root), train=True, download=download), cls(str(root), train=False, download=download)
    except Exception as err:  # noqa: BLE001 - missing, truncated or foreign batch files fail in many ways
        raise DataError(
            f"No readable {variant.upper()} under {root}: expected the folder '{cls.base_folder}' with its "
            f"batch files, as torchvision's {cls.__name__}(root='{root}', download=True) writes them "
            "(or extract the python version of the archive from the dataset's website there)."
        ) from err
    return TensorSource(variant.upper(), _uint8_nchw(train.data), torch.tensor(train.targets), tuple(train.classes), patch,
                        _uint8_nchw(test.data), torch.tensor(test.targets))


def load_image_folder(root: str | Path, patch: int = 32, limit: int = 20_000) -> TensorSource:
    """Any folder in torchvision's ImageFolder layout (``root/<class>/<image>``), loaded resized into memory."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"No image folder at {root}: expected {root}/<class name>/<image files>.")
    try:
        folder = ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as err:  # its text lists the folder's entries: not repeated
        raise DataError(f"{root} is not an image folder: expected one sub-folder per class with image files "
                        "(PNG, JPEG, ...) inside.") from err
    to_tensor = v2.Compose([v2.PILToTensor(), v2.Resize(patch), v2.CenterCrop(patch)])
    samples = folder.samples[:limit]
    try:
        images = torch.stack([to_tensor(folder.loader(path).convert("RGB")) for path, _ in samples])
    except (OSError, ValueError) as err:
        raise DataError(f"{root} holds an image file that cannot be read; every file in a class folder must be an image.") from err
    labels = torch.tensor([label for _, label in samples])
    return TensorSource(root.name, images, labels, tuple(folder.classes), patch)


def open_patch_source(path: str | Path | None, patch: int = 32) -> PatchSource:
    """The generated shapes when ``path`` is empty; a built-in set by name (``shapes``, ``shapes100``, ``digits``:
    see :mod:`engine.data.named`); else CIFAR-10/100 or an image folder, told apart by layout."""
    if not path:
        return GeneratedShapes(patch)
    from engine.data.named import is_named, named_source  # it imports this module

    if is_named(path):
        return named_source(str(path), patch)
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"Dataset folder {root} does not exist.")
    if (root / "cifar-10-batches-py").is_dir():
        return load_cifar(root, "cifar10", patch)
    if (root / "cifar-100-python").is_dir():
        return load_cifar(root, "cifar100", patch)
    return load_image_folder(root, patch)
