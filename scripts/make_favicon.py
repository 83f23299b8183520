"""Draws ui/static/favicon.png, the browser tab's icon, so no page asks a font host for one.

    python scripts/make_favicon.py
"""
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "ui" / "static" / "favicon.png"


def favicon(size: int = 64) -> Image.Image:
    """A 3x3 grid with one lit cell: an object placed on the probe's canvas."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    cell = size // 3
    for row in range(3):
        for col in range(3):
            fill = (255, 75, 75, 255) if (row, col) == (0, 2) else (70, 90, 120, 255)
            box = (col * cell + 2, row * cell + 2, (col + 1) * cell - 2, (row + 1) * cell - 2)
            draw.rounded_rectangle(box, radius=3, fill=fill)
    return image


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    favicon().save(OUT, optimize=True)
    print(OUT, OUT.stat().st_size, "bytes")
