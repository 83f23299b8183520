"""Command-line interface: every experiment headless, printing tables and writing JSON/CSV.

Each module in ``COMMAND_MODULES`` adds its subcommands through ``register(subparsers)``, each with
:func:`add_command` (help text, examples in ``--help``, ``func``); ``func(args)`` returns an exit code.
Installed (``pip install -e .``), ``poslab ...`` is the same as ``python -m engine ...``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.cli import recipes
from engine.core.storage import CheckpointError

COMMAND_MODULES = [
    "engine.cli.assets",
    "engine.cli.channel",
    "engine.cli.probe",
    "engine.cli.runs",
    "engine.cli.seg",
    "engine.cli.shift",
]


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
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "recipe", None):
            recipes.check_argv(argv)
            if "--out" not in {a.split("=")[0] for a in argv}:
                raise ValueError("--recipe needs --out PATH (where the last leg writes; earlier legs write beside it)")
            extra = ["--device", args.device] if getattr(args, "device", None) else []
            return recipes.run(args.command, args.recipe, Path(args.out), extra, main)
        return int(args.func(args) or 0)
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
