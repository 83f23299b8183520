"""Built-in data sets chosen by name (``--data shapes100``, ``--data digits``) rather than by folder path.

``shapes``: the generated 10-class shapes; ``shapes100``: the generated 100-class set in the spirit of
CIFAR-100 (:mod:`engine.data.shapes100`); ``digits``: scikit-learn's bundled real handwritten digits
(:mod:`engine.data.digits`, needs scikit-learn). A name wins over a folder of the same name in the working
directory; write ``./digits`` for such a folder.
"""
from __future__ import annotations

from pathlib import Path

from engine.data.patches import GeneratedShapes, PatchSource

NAMED_SOURCES = {"shapes": "generated 10-class shapes (embedded)",
                 "shapes100": "generated 100-class shapes x patterns x colour schemes (embedded)",
                 "digits": "scikit-learn's 1,797 real handwritten 8x8 digits (optional dependency scikit-learn)"}


def is_named(value: str | Path | None) -> bool:
    """Whether ``value`` names a built-in data set (a plain string, not a path)."""
    return isinstance(value, str) and value in NAMED_SOURCES


def named_source(name: str, patch: int = 32, clutter: float = 0.0) -> PatchSource:
    """A built-in source by name, its held-out splits fresh (generated) or fixed (digits)."""
    if name == "shapes":
        return GeneratedShapes(patch, clutter=clutter)
    if clutter:
        raise ValueError(f"clutter applies to the 10-class shapes only, not to {name!r}")
    if name == "shapes100":
        from engine.data.shapes100 import GeneratedShapes100

        return GeneratedShapes100(patch)
    if name == "digits":
        from engine.data.digits import DigitsSource

        return DigitsSource(patch)
    raise ValueError(f"unknown data set {name!r}: choose one of {', '.join(NAMED_SOURCES)} or give a folder path")
