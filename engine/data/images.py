"""Decoding a user's image safely: any common format, any mode, refused early when unsafe.

Uploads are decoded from bytes in memory (nothing is written to disk). The pixel count is checked
from the header before any pixel is decoded, so a decompression bomb costs nothing.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.core.errors import ImageError

MAX_PIXELS = 40_000_000  # 40 megapixels: larger than any camera photo a user would probe with
MAX_ASPECT = 20.0
MIN_SIDE = 8


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB: 16-bit and float scaled by their range, alpha composited on white."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def decode_image(data: bytes, name: str = "upload", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Bytes of PNG/JPEG/WebP/BMP/TIFF/GIF (first frame) -> an upright RGB image, or :class:`ImageError`."""
    if not data:
        raise ImageError(f"{name} is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(f"{name} is {width}x{height} pixels, above the {max_pixels // 1_000_000} megapixel limit; "
                                 "it was not decoded.")
            img.seek(0)
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{name} declares too many pixels to decode safely (decompression-bomb guard); it was not decoded.") from err
    except UnidentifiedImageError as err:
        raise ImageError(f"{name} is not an image this app can read (PNG, JPEG, WebP, BMP, TIFF or GIF).") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name} could not be decoded: the file looks truncated or damaged ({err}).") from err
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name} is only {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed.")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageError(f"{name} is {width}x{height}: an aspect ratio above {MAX_ASPECT:.0f}:1 cannot be fitted to a square patch.")
    return _to_rgb(ImageOps.exif_transpose(img))


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float tensor (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)


def fit_image(img: Image.Image, width: int, height: int) -> Image.Image:
    """Centre crop to the aspect ratio of ``width`` x ``height``, then resize to it (antialiased)."""
    scale = min(img.width / width, img.height / height)
    w, h = round(width * scale), round(height * scale)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return img.crop((left, top, left + w, top + h)).resize((width, height), Image.Resampling.LANCZOS)


def image_to_patch(img: Image.Image, size: int = 32) -> torch.Tensor:
    """Centre square crop, resized to (3, size, size) in [0, 1] (antialiased)."""
    return image_to_tensor(fit_image(img, size, size))
