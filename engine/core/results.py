"""What every lab function returns: a small typed dataclass whose ``rows()`` are flat dicts for JSON, CSV and tables."""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

Row = dict[str, Any]


@runtime_checkable
class Result(Protocol):
    """A lab's result: typed fields for pages and tests, ``rows()`` for the CLI's JSON/CSV and printed tables."""

    def rows(self) -> list[Row]:
        """The result as flat rows (str, int, float, bool or None values; lists only where a row holds a curve)."""
        ...
