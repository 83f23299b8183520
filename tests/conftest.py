"""Shared test setup: an isolated cache folder, few threads, torchvision importable."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("POSLAB_CACHE", str(ROOT / ".cache" / "test"))
os.environ.setdefault("POSLAB_DEVICE", "cpu")

import engine.tvfix  # noqa: E402,F401  (before any torchvision import)


@pytest.fixture(autouse=True)
def _chdir_root(monkeypatch):
    """AppTest resolves page paths from the working directory."""
    monkeypatch.chdir(ROOT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item (browser tests screenshot on failure)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
