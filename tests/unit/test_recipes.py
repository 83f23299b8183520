"""Recipes: every shipped checkpoint has one, its legs parse into the recorded training flags, and a stopped recipe
continues at the leg it was in."""
from pathlib import Path

import pytest

from engine.cli import recipes
from engine.cli.main import build_parser, main
from engine.core.storage import ASSETS
from engine.models.segmentation import load_model

COMMAND_OF = {"probe": "train-probe", "seg": "train-seg", "shift": "train-shift", "channel_code": "channel-nets"}
MEASUREMENTS = {"maps.pt"}  # shipped tensors that are measurements, not checkpoints (scripts/ship_channel_maps.py)


def shipped_names() -> list[tuple[str, str]]:
    out = []
    for folder, command in COMMAND_OF.items():
        for path in sorted(p for p in (ASSETS / folder).rglob("*.pt") if p.name not in MEASUREMENTS):
            prefix = "shapes100-" if path.parent.name == "shapes100" else ""
            out.append((command, prefix + path.stem))
    return out


@pytest.mark.parametrize("command,name", shipped_names())
def test_every_shipped_checkpoint_has_a_recipe_whose_legs_parse(command, name):
    recipe = recipes.RECIPES[command][name]
    for leg in recipe.legs:
        if leg[0].startswith("@"):
            assert leg[0][1:] in recipes.RECIPES[command]
            continue
        build_parser().parse_args([command, *(a.replace("{prev}", "prev.pt") for a in leg), "--out", "x.pt"])


def test_the_segmentation_default_is_the_recorded_two_legs_in_fp32():
    first, second = (build_parser().parse_args(["train-seg", *(a.replace("{prev}", "leg1.pt") for a in leg), "--out", "x"])
                     for leg in recipes.RECIPES["train-seg"]["default"].legs)
    assert (first.epochs, first.stop_after, first.latent_l1, first.aspp_rates, first.flip) == (12, 11, 0.25, "1,2,3", False)
    assert (second.epochs, second.lr, second.init, second.train_images) == (1, 4e-5, "leg1.pt", 6000)
    assert recipes.RECIPES["train-seg"]["default"].env == {"POSLAB_BF16": "0"}
    assert build_parser().parse_args(["train-seg", *recipes.RECIPES["train-seg"]["control"].legs[0], "--out", "x"]).flip


def test_an_object_permutenet_recipe_makes_its_3x3_start_first():
    legs = recipes.RECIPES["train-probe"]["object-permutenet-g7-zero"].legs
    assert legs[0] == ("@object-permutenet-g3-zero",)
    args = build_parser().parse_args(["train-probe", *(a.replace("{prev}", "g3.pt") for a in legs[1]), "--out", "x"])
    assert (args.grid, args.steps, args.seed, args.init, args.schedule) == (7, 1000, 2, "g3.pt", "cosine")


def test_a_stopped_recipe_continues_at_the_leg_it_was_in(tmp_path):
    calls, fail = [], {"leg2": True}

    def fake_main(argv):
        calls.append(argv)
        if "--init" in argv and fail["leg2"]:
            return 1  # the second leg is stopped
        Path(argv[argv.index("--out") + 1]).write_text("weights")
        return 0

    out = tmp_path / "default.pt"
    assert recipes.run("train-seg", "default", out, [], fake_main) == 1
    first_leg = str(tmp_path / "default.leg1.pt")
    assert calls[0][calls[0].index("--out") + 1] == first_leg and not out.exists()
    calls.clear()
    fail["leg2"] = False
    assert recipes.run("train-seg", "default", out, ["--device", "cpu"], fake_main) == 0
    assert len(calls) == 1 and out.read_text() == "weights"  # the finished first leg was not run again
    assert calls[0][calls[0].index("--init") + 1] == first_leg and calls[0][-2:] == ["--device", "cpu"]


def test_flags_beside_a_recipe_are_refused(capsys):
    assert main(["train-seg", "--recipe", "default", "--epochs", "3", "--out", "x.pt"]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert main(["train-shift", "--recipe", "baseline"]) == 2
    assert "--out" in capsys.readouterr().err


TINY_SEG = "--train-images 4 --val-images 1 --height 32 --batch-size 2 --epochs 2 --seed 0".split()


def test_a_stopped_segmentation_leg_continues_at_its_last_epoch(tmp_path, capsys):
    out = tmp_path / "seg.pt"
    assert main(["train-seg", *TINY_SEG, "--stop-after", "1", "--device", "cpu", "--out", str(out)]) == 0
    assert load_model(out).meta["epochs_done"] == 1
    flags = recipes.resume_flags("train-seg", [*TINY_SEG, "--init", "leg1.pt"], out)
    assert flags[-4:] == ["--init", str(out), "--start-epoch", "1"] and "leg1.pt" not in flags
    capsys.readouterr()
    assert main(["train-seg", *flags, "--device", "cpu", "--out", str(out)]) == 0
    assert load_model(out).meta["epochs_done"] == 2
    assert "1/2" not in capsys.readouterr().err  # the finished epoch was replayed, not trained again
    assert recipes.resume_flags("train-probe", ["--steps", "5"], out) == ["--steps", "5"]


def test_start_epoch_needs_the_stopped_checkpoint(capsys):
    assert main(["train-seg", *TINY_SEG, "--start-epoch", "1", "--out", "x.pt"]) == 2
    assert "--init" in capsys.readouterr().err


def test_channel_nets_takes_one_path_for_one_grid(capsys):
    assert main(["channel-nets", "--grids", "3", "5", "--out", "x.pt"]) == 2
    assert "one grid" in capsys.readouterr().err
