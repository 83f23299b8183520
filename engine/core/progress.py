"""Progress reports and cooperative stopping for long work (training, sweeps).

Long engine functions take ``on_progress`` (called with a :class:`Progress`) and ``stop`` (a
:class:`StopToken`); they check the token between steps and raise :class:`Stopped`, leaving no
half-written file behind. Pages wire these to a progress bar and a stop button; the CLI to stderr.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Progress:
    """One report: ``done`` of ``total`` units, a short message and the latest metrics."""

    done: int
    total: int
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0


ProgressFn = Callable[[Progress], None]


class Stopped(Exception):
    """Raised inside long work when its :class:`StopToken` was set."""


class StopToken:
    """A thread-safe flag a UI sets to ask running work to stop at the next step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def stop(self) -> None:
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Stopped()


def report(on_progress: ProgressFn | None, progress: Progress) -> None:
    """Call ``on_progress`` if given."""
    if on_progress is not None:
        on_progress(progress)


def print_progress(p: Progress) -> None:
    """A CLI progress callback: one overwritten line on stderr."""
    metrics = " ".join(f"{k}={v:.4g}" for k, v in p.metrics.items())
    end = "\n" if p.done >= p.total else "\r"
    print(f"[{p.done}/{p.total}] {p.message} {metrics}".rstrip(), end=end, file=sys.stderr, flush=True)


Note = Callable[[str], None]  # where a long call reports a line for its user (the CLI: stderr; a page: nowhere)


def quiet(_: str) -> None:
    """A :data:`Note` that says nothing."""
