"""Command-line interface: every experiment headless, printing tables and writing JSON/CSV.

Each module in ``COMMAND_MODULES`` adds its subcommands through ``register(subparsers)``, each with
:func:`add_command` (help text, examples in ``--help``, ``func``); ``func(args)`` returns an exit code.
Installed (``pip install -e .``), ``poslab ...`` is the same as ``python -m engine ...``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.storage import CheckpointError, save_json

COMMAND_MODULES = [
    "engine.commands.assets",
    "engine.commands.channel",
    "engine.commands.probe",
    "engine.commands.seg",
    "engine.commands.shift",
]


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


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m engine`` parser with every command module's subcommands."""
    prog = "poslab" if Path(sys.argv[0]).name == "poslab" else "python -m engine"
    parser = argparse.ArgumentParser(prog=prog, description="PosLab experiments, headless.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="examples:\n  %(prog)s table1 --grids 3 5 7 --json out.json\n"
                                            "  %(prog)s train-probe --help")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (2 with one ``error:`` line for bad checkpoints, paths and values)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
