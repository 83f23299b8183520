"""What every subcommand shares: JSON output, aligned text tables, and a subparser with help and examples."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.core.results import Result, Row
from engine.core.storage import save_json, write_csv


def write_json(rows: Any, path: str | None) -> None:
    """Write ``rows`` to ``path`` as JSON when a path was given (the ``--json`` flag)."""
    if path:
        save_json(rows, Path(path))
        print(f"wrote {path}", file=sys.stderr)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Print dict rows as an aligned text table."""
    def fmt(v: Any) -> str:
        return f"{v:.1f}" if isinstance(v, float) else ("-" if v is None else str(v))

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def add_command(sub: argparse._SubParsersAction, name: str, help: str, examples: Sequence[str],
                func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """A subcommand with ``help`` as its description, ``examples`` (arguments after its name) ending its ``--help``."""
    epilog = "examples:\n" + "\n".join(f"  %(prog)s {example}" for example in examples)
    parser = sub.add_parser(name, help=help, description=help, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=func)
    return parser


def add_output_args(parser: argparse.ArgumentParser, json_help: str = "write the rows here as JSON",
                    csv_help: str = "write the rows here as CSV (one column per key)") -> None:
    """``--json PATH`` and ``--csv PATH``: where a command writes its result (besides printing it)."""
    parser.add_argument("--json", metavar="PATH", help=json_help)
    parser.add_argument("--csv", metavar="PATH", help=csv_help)


def write_rows(result: Result | Sequence[Row], args: argparse.Namespace, document: Any = None) -> list[Row]:
    """Write a result to ``args.json`` (its rows, or ``document`` when the command's JSON is one object) and its rows
    to ``args.csv``, each when given; the rows."""
    rows = result.rows() if isinstance(result, Result) else list(result)
    write_json(rows if document is None else document, getattr(args, "json", None))
    if getattr(args, "csv", None):
        write_csv(rows, Path(args.csv))
        print(f"wrote {args.csv}", file=sys.stderr)
    return rows
