"""Tiny datasets in their official on-disk layouts, and the bad uploads users send (for the test_byo_* tests)."""
from __future__ import annotations

import hashlib
import io
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# Cityscapes label ids (not train ids): road 7, building 11, sky 23, person 24, car 26, unlabeled 0.
ROAD, BUILDING, SKY, PERSON, CAR, UNLABELED = 7, 11, 23, 24, 26, 0


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def image_bytes(size: tuple[int, int] = (40, 30), fmt: str = "PNG", seed: int = 0) -> bytes:
    """A random RGB image of ``size`` (w, h) encoded as ``fmt``."""
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` with no pixel data (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def bad_uploads() -> dict[str, tuple[bytes, str]]:
    """Each bad-upload case: file name -> (bytes, a phrase the one-line message must contain)."""
    jpeg = image_bytes((64, 64), "JPEG")
    return {
        "empty.png": (b"", "empty"),
        "notes.txt": (b"just some text, not pixels", "not an image"),
        "holiday.png": (b"%PDF-1.4 a document renamed to .png", "not an image"),  # wrong extension
        "cut.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "big.png": (png_header_only(8_000, 8_000), "megapixel limit"),  # over this app's limit
        "bomb.png": (png_header_only(30_000, 30_000), "not decoded"),  # over PIL's bomb guard too
        "dot.png": (image_bytes((1, 1)), "1x1"),
        "strip.png": (image_bytes((600, 12)), "aspect ratio"),
    }


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _pickle(obj: dict, path: Path) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def make_cifar(root: Path, variant: str, monkeypatch, per_file: int = 10) -> None:
    """CIFAR-10/100 python-version batches under ``root`` as torchvision expects them.

    torchvision checks every file against the official archive's md5; these tiny files cannot match,
    so the test points the class's md5 table at the fixture files (the layout is what is under test).
    """
    from torchvision.datasets import CIFAR10, CIFAR100

    rng = np.random.default_rng(0)
    cifar10 = variant == "cifar10"
    cls, folder = (CIFAR10, root / "cifar-10-batches-py") if cifar10 else (CIFAR100, root / "cifar-100-python")
    folder.mkdir(parents=True)
    label_key, names_key, k = ("labels", "label_names", 10) if cifar10 else ("fine_labels", "fine_label_names", 100)
    files = {"train": [f"data_batch_{i}" for i in range(1, 6)] if cifar10 else ["train"],
             "test": ["test_batch"] if cifar10 else ["test"]}
    for name in files["train"] + files["test"]:
        _pickle({"data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
                 label_key: rng.integers(0, k, per_file).tolist()}, folder / name)
    meta_name = "batches.meta" if cifar10 else "meta"
    _pickle({names_key: [f"class{i}" for i in range(k)]}, folder / meta_name)
    monkeypatch.setattr(cls, "train_list", [[n, _md5(folder / n)] for n in files["train"]])
    monkeypatch.setattr(cls, "test_list", [[n, _md5(folder / n)] for n in files["test"]])
    monkeypatch.setattr(cls, "meta", {"filename": meta_name, "key": names_key, "md5": _md5(folder / meta_name)})


def make_image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 3) -> None:
    """``root/<class>/<image>`` with small images of mixed formats and sizes."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            fmt = ("PNG", "JPEG", "BMP")[i % 3]
            (root / name / f"{i}.{fmt.lower()}").write_bytes(image_bytes((48 + 8 * i, 40), fmt, seed=10 * c + i))


def street_label(height: int, width: int, person_side: str | None) -> np.ndarray:
    """A Cityscapes labelIds map: sky, buildings, road, a car, a pedestrian on one side (or none)."""
    lab = np.full((height, width), SKY, np.uint8)
    lab[height // 4: height // 2] = BUILDING
    lab[height // 2:] = ROAD
    lab[-height // 4:, width // 2 - width // 8: width // 2 + width // 8] = CAR
    lab[:4, :4] = UNLABELED
    if person_side:
        x = width // 8 if person_side == "left" else width - width // 8 - 2
        lab[height // 3: height - 2, x: x + 2] = PERSON
    return lab


def make_cityscapes(root: Path, split: str = "val", sides: tuple = ("left", "left", "right", None),
                    size: tuple[int, int] = (128, 64)) -> None:
    """torchvision's Cityscapes layout: leftImg8bit/<split>/<city>/…_leftImg8bit.png and gtFine/…_gtFine_labelIds.png."""
    palette = {SKY: (70, 130, 180), BUILDING: (70, 70, 70), ROAD: (128, 64, 128), PERSON: (220, 20, 60),
               CAR: (0, 0, 142), UNLABELED: (0, 0, 0)}
    w, h = size
    for i, side in enumerate(sides):
        city = ("aachen", "bochum")[i % 2]
        stem = f"{city}_{i:06d}_000019"
        lab = street_label(h, w, side)
        rgb = np.zeros((h, w, 3), np.uint8)
        for label_id, colour in palette.items():
            rgb[lab == label_id] = colour
        for sub, suffix, array in (("leftImg8bit", "leftImg8bit", rgb), ("gtFine", "gtFine_labelIds", lab)):
            folder = root / sub / split / city
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{stem}_{suffix}.png").write_bytes(png_bytes(array))
