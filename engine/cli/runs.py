"""``runs``: the run store from the command line: list the runs (trainings and sweeps, from pages and the CLI) and
continue a stopped or interrupted one to its total step count."""
from __future__ import annotations

import argparse
import datetime
import sys

from engine.cli.output import add_command, add_output_args, print_table, write_rows
from engine.core.runs import RunError, RunStore, run_recorded


def _continue(store: RunStore, run_id: str, device: str | None) -> int:
    run = store.get(run_id)
    if run.active:
        raise ValueError(f"run {run_id} is still {run.state}: only a stopped, interrupted or failed run continues")
    if run.state == "done":
        raise ValueError(f"run {run_id} is done ({run.total:,} steps): nothing to continue")
    if run.kind == "probe":
        from engine.probe.lab import train_run
    elif run.kind == "shift":
        from engine.shift.lab import train_run
    else:
        raise ValueError(f"a {run.kind} run is not continued: start it again (its command: {run.command})")
    print(f"continuing {run.status()}", file=sys.stderr)
    result = run_recorded(store.recorder(run), lambda rec: train_run(rec, device))
    run = store.get(run_id)
    print(run.status(), file=sys.stderr)
    for line in run.notes:
        print(f"note: {line}", file=sys.stderr)
    return 0 if result is not None else 1


def run_runs(args: argparse.Namespace) -> int:
    store = RunStore()
    try:
        if args.continue_id:
            return _continue(store, args.continue_id, args.device)
        runs, problems = store.list()
    except RunError as err:
        raise ValueError(str(err)) from err
    for problem in problems:
        print(f"note: {problem}", file=sys.stderr)
    rows = [{"id": r.id, "kind": r.kind, "state": r.state, "step": r.checkpoint_step if r.state in ("stopped", "interrupted")
             else r.step, "total": r.total, "title": r.title,
             "created": datetime.datetime.fromtimestamp(r.created).isoformat(timespec="seconds"),
             "checkpoint": str(r.checkpoint) if r.has_checkpoint else "", "command": r.command} for r in runs]
    print_table(rows, ["id", "kind", "state", "step", "total", "title", "created"])
    write_rows(rows, args)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "runs", "list the run store's runs (pages' and `train-probe --run`), or continue one",
                    ["", "--json runs.json", "--continue ID"], run_runs)
    p.add_argument("--continue", dest="continue_id", metavar="ID",
                   help="continue a stopped or interrupted training run from its last checkpoint to its total steps")
    p.add_argument("--device", default=None, help="cpu or cuda, for --continue (default: cuda when present)")
    add_output_args(p)
