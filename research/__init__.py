"""Research modules: the measurements behind the dated notes in docs/research that are not lab features.

Each runs from the repository root as ``python -m research.<name> ...`` (``--help`` gives its options) and keeps its
measurement in one importable function, smoke-tested on tiny inputs in tests/unit/test_research.py.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.models.segmentation import SegModel, load_model


def checkpoints_parser(module: str, doc: str, default: Sequence[Path]) -> argparse.ArgumentParser:
    """A module's parser taking segmentation checkpoints (``default`` when none is given), described by its docstring."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n")[0])
    parser.add_argument("checkpoints", nargs="*", default=[str(p) for p in default], help="segmentation checkpoints")
    return parser


def print_reports(checkpoints: Sequence[str], report: Callable[[SegModel], list[str]], where: str = "") -> int:
    """Print ``report``'s lines for each checkpoint, its path (and ``where``) before the first; the exit code."""
    for path in checkpoints:
        lines = report(load_model(path))
        print(f"{path}{where}: {lines[0]}", *lines[1:], sep="\n")
    return 0
