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

from engine.core.cache import CACHE
from engine.core.errors import DataError
from engine.core.storage import fingerprint
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


class TrainingPool:
    """A generated set with a fixed, finite training set (like a real data set); val/test images stay fresh.

    Sources with a ``pool`` method (the 100-class set) draw it class-balanced; others draw ``train_images`` at random.
    """

    def __init__(self, fresh: PatchSource, train_images: int, seed: int = 0) -> None:
        self.fresh, self.classes, self.patch = fresh, fresh.classes, getattr(fresh, "patch", 32)
        self.name, self.key = f"{fresh.name} ({train_images} training images)", getattr(fresh, "key", "external")
        self.images, self.labels = _pool(fresh, train_images, seed)

    def sample(self, n: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        if split != "train":
            return self.fresh.sample(n, seed, split)
        idx = torch.randint(len(self.images), (n,), generator=torch.Generator().manual_seed(seed))
        return self.images[idx], self.labels[idx]


def _pool(fresh: PatchSource, train_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training pool, generated once per process and kept in the shared cache (tens of thousands of images take
    seconds); keyed by the generator's settings (a frozen dataclass: its repr names every one)."""
    pool = getattr(fresh, "pool", None)
    return CACHE.get_or_compute(fingerprint("pool", repr(fresh), train_images, seed),
                                lambda: pool(train_images, seed) if pool else fresh.sample(train_images, seed, "train"))


CIFAR_FOLDERS = {"cifar-10-batches-py": "cifar10", "cifar-100-python": "cifar100"}
GENERATED = ("shapes", "shapes100")


def open_patch_source(path: str | Path | None, patch: int = 32, train_images: int = 0, clutter: float = 0.0) -> PatchSource:
    """Every data source by name or path: the generated shapes when ``path`` is empty; a built-in set by name
    (``shapes``, ``shapes100``, ``digits``: see :mod:`engine.data.named`; the generated ones fresh every step, or a fixed
    pool of ``train_images``; ``clutter`` makes the 10-class shapes harder); else CIFAR-10/100 (the folder holding
    ``cifar-10-batches-py`` / ``cifar-100-python``, or that folder itself) or an image folder, told apart by layout."""
    from engine.data.named import is_named, named_source  # it imports this module

    if not path or path in GENERATED:
        fresh = named_source(str(path or "shapes"), patch, clutter)
        return TrainingPool(fresh, train_images) if train_images else fresh
    if is_named(path):
        return named_source(str(path), patch, clutter)
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"Dataset folder {root} does not exist.")
    if root.name in CIFAR_FOLDERS:
        return load_cifar(root.parent, CIFAR_FOLDERS[root.name], patch)
    for folder, variant in CIFAR_FOLDERS.items():
        if (root / folder).is_dir():
            return load_cifar(root, variant, patch)
    return load_image_folder(root, patch)
