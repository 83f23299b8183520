"""Shared test setup: an isolated cache folder, few threads, torchvision importable."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("POSLAB_CACHE", str(ROOT / ".cache" / "test"))
os.environ.setdefault("POSLAB_DEVICE", "cpu")

import engine.tvfix  # noqa: E402,F401  (before any torchvision import)


@pytest.fixture(autouse=True)
def _chdir_root(monkeypatch):
    """AppTest resolves page paths from the working directory."""
    monkeypatch.chdir(ROOT)
