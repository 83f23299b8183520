"""Recipes: the exact training legs behind each shipped file, so one command remakes it.

``python -m engine train-seg --recipe default --out default.pt`` runs every leg of the recipe in turn: each leg is the
training command with its recorded flags, writes ``<out stem>.legK<suffix>`` (the last leg writes ``--out``) and
starts from the previous leg's file (``{prev}``). A leg whose file is marked finished (``<file>.done``) is skipped, so
a stopped recipe continues at the leg it was in. A ``train-seg`` leg stopped part-way continues from the checkpoint it
saved after its last finished epoch (``--init <file> --start-epoch K``); a leg of the other commands (minutes each)
runs again from its start. A leg
written ``@name`` is another recipe of the same command, made first. The legs and where each comes from:
docs/research/2026-recipes.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Recipe:
    """The legs (flags of one training command each) and the environment they run in."""

    legs: tuple[tuple[str, ...], ...]
    env: dict[str, str] = field(default_factory=dict)


def _probe(head: str, task: str, grid: int, steps: int = 6000) -> Recipe:
    return Recipe(((*f"--head {head} --task {task} --grid {grid} --steps {steps} --seed 0".split(),),))


def _probe_leg(head: str, grid: int, steps: int, seed: int, every: int = 0) -> tuple[str, ...]:
    flags = f"--schedule cosine --head {head} --task object --grid {grid} --init {{prev}} --steps {steps} --lr 3e-4 --seed {seed}"
    return tuple(flags.split()) + (("--eval-every", str(every)) if every else ())


_SEG = "--aspp-rates 1,2,3 --train-images 6000 --seed 0 --latent-l1 0.25"
_FP32 = {"POSLAB_BF16": "0"}
_SHIFT = "--steps 2000 --batch 128 --lr 0.001 --seed 0 --width 0.25 --lam 1.0 --blur-filter 3 --pad 4 --crop 32 --train-images 1000"


def _seg(extra: str = "") -> Recipe:
    return Recipe((tuple(f"{_SEG} {extra} --epochs 12 --stop-after 11".split()),
                   tuple(f"{_SEG} {extra} --epochs 1 --lr 4e-5 --init {{prev}}".split())), _FP32)


def _shift(method: str, extra: str = "") -> Recipe:
    return Recipe((tuple(f"--method {method} {_SHIFT} {extra}".split()),))


RECIPES: dict[str, dict[str, Recipe]] = {
    "train-probe": {
        **{f"location-{head}-g{g}-zero": _probe(head, "location", g) for head in ("gapnet", "permutenet") for g in (3, 5, 7)},
        "location-gapnet-g5-zero": _probe("gapnet", "location", 5, steps=350),
        "object-gapnet-g3-zero": _probe("gapnet", "object", 3),
        **{f"object-gapnet-g{g}-zero": Recipe((("@object-gapnet-g3-zero",), _probe_leg("gapnet", g, 400, 1))) for g in (5, 7)},
        "object-permutenet-g3-zero": Recipe((_probe("permutenet", "object", 3).legs[0],
                                             _probe_leg("permutenet", 3, 6000, 1, every=1000))),
        **{f"object-permutenet-g{g}-zero": Recipe((("@object-permutenet-g3-zero",), _probe_leg("permutenet", g, 1000, 2, every=250)))
           for g in (5, 7)},
    },
    "train-seg": {"default": _seg(), "control": _seg("--flip")},
    "train-shift": {
        **{name: _shift(method) for name, method in (("baseline", "baseline"), ("augshift", "augshift"),
                                                      ("blurpool", "blurpool"), ("augshift-blurpool", "augshift+blurpool"))},
        **{f"shapes100-{m}": _shift(m, "--data shapes100 --schedule cosine") for m in ("baseline", "augshift", "blurpool")},
    },
    "channel-nets": {"object-classifier-g3": Recipe((tuple("--grids 3 --steps 800 --seed 0".split()),))},
}
# Options a recipe run accepts beside --recipe; every other flag is the recipe's.
OWN_OPTIONS = {"--recipe", "--out", "--device"}


def add_recipe_argument(parser: argparse.ArgumentParser, command: str) -> None:
    """``--recipe NAME`` on a training command: its names and what it does, in ``--help``."""
    parser.add_argument("--recipe", choices=sorted(RECIPES[command]), metavar="NAME",
                        help=f"remake a shipped file: run its recorded legs (with --out, optionally --device; no other "
                             f"flags). One of: {', '.join(sorted(RECIPES[command]))}")


def leg_path(out: Path, index: int, count: int) -> Path:
    """Where leg ``index`` (0-based) of ``count`` writes: ``out`` for the last, a sibling ``.legK`` file before it."""
    return out if index == count - 1 else out.with_name(f"{out.stem}.leg{index + 1}{out.suffix}")


def check_argv(argv: Sequence[str]) -> None:
    """Refuse flags given beside ``--recipe`` other than its own (the recipe holds every training flag)."""
    given = {a.split("=")[0] for a in argv if a.startswith("--")}
    extra = sorted(given - OWN_OPTIONS)
    if extra:
        raise ValueError(f"--recipe sets every training flag itself; remove {', '.join(extra)} (allowed beside it: "
                         f"{', '.join(sorted(OWN_OPTIONS))})")


def resume_flags(command: str, leg: Sequence[str], target: Path) -> list[str]:
    """``leg``'s flags continuing a part-done ``train-seg`` leg from ``target`` (its per-epoch checkpoint): ``--init``
    replaced by ``target`` and ``--start-epoch`` set to the epochs it holds; ``leg`` unchanged for everything else."""
    if command != "train-seg" or not target.is_file():
        return list(leg)
    from engine.models.segmentation import load_model  # only here: the other commands never need the seg models

    done = int(load_model(target).meta.get("epochs_done", 0))
    if not done:
        return list(leg)
    kept = [a for i, a in enumerate(leg) if a != "--init" and (i == 0 or leg[i - 1] != "--init")]
    return [*kept, "--init", str(target), "--start-epoch", str(done)]


def run(command: str, name: str, out: Path, extra: Sequence[str], main: Callable[[Sequence[str]], int]) -> int:
    """Run recipe ``name`` of ``command`` leg by leg into ``out``, skipping finished legs; the first failing exit code."""
    recipe = RECIPES[command][name]
    previous: Path | None = None
    for index, leg in enumerate(recipe.legs):
        target = leg_path(out, index, len(recipe.legs))
        done = target.with_name(target.name + ".done")
        if done.is_file() and target.is_file():
            print(f"recipe {name}: leg {index + 1}/{len(recipe.legs)} already made ({target})", file=sys.stderr)
        else:
            print(f"recipe {name}: leg {index + 1}/{len(recipe.legs)} -> {target}", file=sys.stderr)
            if leg[0].startswith("@"):
                code = run(command, leg[0][1:], target, extra, main)
            else:
                flags = resume_flags(command, [a.replace("{prev}", str(previous)) for a in leg], target)
                if "--start-epoch" in flags:
                    print(f"recipe {name}: leg {index + 1} continues at epoch {flags[-1]} from {target}", file=sys.stderr)
                saved = {k: os.environ.get(k) for k in recipe.env}
                os.environ.update(recipe.env)
                try:
                    code = main([command, *flags, "--out", str(target), *extra])
                finally:
                    for k, v in saved.items():
                        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
            if code:
                return code
            done.touch()
        previous = target
    return 0
