"""``pack-assets``: compress shipped checkpoints in place, so ``assets/`` stays within its size budget."""
from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.output import add_command, add_output_args, print_table, write_rows
from engine.core.storage import ASSETS, pack_checkpoint


def cmd_pack_assets(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths] or sorted(ASSETS.rglob("*.pt"))
    rows = []
    for path in paths:
        before, after = pack_checkpoint(path)
        rows.append({"file": str(path), "before": before, "after": after})
    print_table(rows + [{"file": "total", "before": sum(r["before"] for r in rows), "after": sum(r["after"] for r in rows)}],
                ["file", "before", "after"])
    write_rows(rows, args)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "pack-assets", "xz-compress checkpoints in place (every assets/**/*.pt by default); "
                    "already packed files are left as they are, and loading detects the format",
                    ["", "assets/probe/object-permutenet-g5-zero.pt", "--csv sizes.csv"], cmd_pack_assets)
    p.add_argument("paths", nargs="*", metavar="PATH", help="checkpoints to pack (default: every .pt under assets/)")
    add_output_args(p)  # one row per file: its bytes before and after
