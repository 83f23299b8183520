"""Rendered text lines for a text-direction classifier's own task: label 0 upright, label 1 rotated 180 degrees.

Random words (lower- and upper-case letters and digits) in PIL's bundled default font, dark text on a light
background, one line per image at height ``height`` and the width the text needs (at most ``max_width``).
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def text_lines(n: int, seed: int, height: int = 48, max_width: int = 192) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``n`` text-line images (3, height, w) in [0, 1], the odd-labelled ones rotated 180 degrees, and the labels."""
    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=int(height * 0.6))
    images, labels = [], torch.arange(n) % 2
    for i in range(n):
        words = [''.join(rng.choice(list(ALPHABET), rng.integers(2, 8))) for _ in range(rng.integers(1, 4))]
        text = " ".join(words)
        ink, paper = int(rng.integers(0, 80)), int(rng.integers(180, 256))
        left, top, right, bottom = font.getbbox(text)
        width = min(max_width, right - left + 8)
        image = Image.new("RGB", (width, height), (paper,) * 3)
        ImageDraw.Draw(image).text((4 - left, (height - (bottom - top)) // 2 - top), text, fill=(ink,) * 3, font=font)
        if labels[i]:
            image = image.rotate(180)
        images.append(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1))
    return images, labels
