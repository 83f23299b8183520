"""Engine tests for the grid location probe: data, models, training."""
import json

import pytest
import torch
from torch import nn

from engine.core.training import TrainConfig
from engine.data.grid import denormalize, place_on_grid
from engine.data.patches import GeneratedShapes
from engine.data.shapes import CLASSES, generate_shapes
from engine.models.probe import ProbeConfig, build_probe, load_probe, save_probe
from engine.probe.train import make_batch, train_probe


def test_shapes_are_deterministic_and_balanced():
    a, la = generate_shapes(500, seed=3)
    b, lb = generate_shapes(500, seed=3)
    c, _ = generate_shapes(500, seed=3, split="test")
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, c)
    assert a.shape == (500, 3, 32, 32) and 0 <= a.min() and a.max() <= 1
    counts = torch.bincount(la, minlength=len(CLASSES))
    assert counts.min() > 25  # every class drawn, roughly uniformly


def test_clutter_keeps_labels_and_makes_the_images_noisier():
    clean, labels = generate_shapes(200, seed=4)
    assert torch.equal(generate_shapes(200, seed=4, clutter=0.0)[0], clean)
    cluttered, same_labels = generate_shapes(200, seed=4, clutter=0.7)
    assert torch.equal(same_labels, labels) and torch.equal(generate_shapes(200, seed=4, clutter=0.7)[0], cluttered)
    assert 0 <= cluttered.min() and cluttered.max() <= 1
    roughness = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()  # noise raises pixel-to-pixel change
    assert roughness(cluttered) > 1.5 * roughness(clean)
    assert GeneratedShapes(clutter=0.7).name == "generated shapes (clutter 0.7)"
    with pytest.raises(ValueError):
        generate_shapes(4, seed=0, clutter=1.5)


@pytest.mark.parametrize("grid", [2, 3, 5, 9])
def test_patch_lands_in_its_cell_and_nowhere_else(grid):
    patches, _ = generate_shapes(grid * grid, seed=1)
    cells = torch.arange(grid * grid).flip(0)
    canvas = place_on_grid(patches, cells, grid)
    assert canvas.shape == (grid * grid, 3, 32 * grid, 32 * grid)
    for i, cell in enumerate(cells.tolist()):
        r, c = divmod(cell, grid)
        window = canvas[i, :, 32 * r:32 * (r + 1), 32 * c:32 * (c + 1)]
        assert torch.allclose(denormalize(window.unsqueeze(0))[0], patches[i], atol=1e-5)
        rest = canvas[i].clone()
        rest[:, 32 * r:32 * (r + 1), 32 * c:32 * (c + 1)] = 0
        assert rest.abs().max() == 0  # background is zero in normalised space (= dataset mean)


def test_location_labels_are_row_major_cells():
    config = ProbeConfig(grid=4)
    x, y, cells = make_batch(config, GeneratedShapes(), 64, seed=0)
    assert torch.equal(y, cells) and y.max() < 16
    for i in range(8):
        r, c = divmod(int(y[i]), 4)
        assert x[i, :, 32 * r:32 * (r + 1), 32 * c:32 * (c + 1)].abs().sum() > 0
    _, y_obj, _ = make_batch(config.with_(task="object"), GeneratedShapes(), 64, seed=0)
    assert not torch.equal(y_obj, y) and y_obj.max() < 10


def test_permutenet_shuffles_every_call_and_keeps_the_values():
    model = build_probe(ProbeConfig(head="permutenet"))
    perms = [model.permutation(128, torch.device("cpu")) for _ in range(3)]
    assert not torch.equal(perms[0], perms[1])
    pooled = torch.randn(2, 128)
    for p in perms:
        assert torch.equal(pooled[:, p].sort(1).values, pooled.sort(1).values)
    fixed = build_probe(ProbeConfig(head="permutenet", permute="fixed"))
    assert torch.equal(fixed.permutation(128, torch.device("cpu")), fixed.permutation(128, torch.device("cpu")))
    model.eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x))  # a fresh permutation per forward call
    assert build_probe(ProbeConfig(head="gapnet")).permutation(128, torch.device("cpu")) is None


@pytest.mark.parametrize("padding,mode", [("zero", "zeros"), ("reflect", "reflect"), ("replicate", "replicate"), ("circular", "circular")])
def test_padding_mode_reaches_every_padded_conv(padding, mode):
    model = build_probe(ProbeConfig(padding=padding))
    padded = [m for m in model.modules() if isinstance(m, nn.Conv2d) and max(m.padding) > 0]
    assert len(padded) == 18  # stem + 16 block convs + GAPNet's 3x3 head
    assert all(m.padding_mode == mode for m in padded)
    assert model(torch.randn(1, 3, 96, 96)).shape == (1, 9)


def test_padding_changes_the_border_response():
    torch.manual_seed(0)
    zero, reflect = build_probe(ProbeConfig(padding="zero")).eval(), build_probe(ProbeConfig(padding="reflect")).eval()
    reflect.load_state_dict(zero.state_dict())
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert not torch.allclose(zero(x), reflect(x))


def test_a_few_training_steps_lower_the_loss():
    history = train_probe(ProbeConfig(width=0.125), TrainConfig(steps=30, report_every=10, seed=1))[1]
    assert history[-1]["loss"] < history[0]["loss"] * 0.8


def test_checkpoint_round_trip(tmp_path):
    model = build_probe(ProbeConfig(head="permutenet", permute="fixed", grid=2, width=0.125)).eval()
    path = save_probe(model, tmp_path / "m.pt", {"note": "x"})
    loaded, meta = load_probe(path)
    assert meta == {"note": "x"} and loaded.config == model.config
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model.half().float()(x), atol=1e-4)


def test_train_probe_init_continues_a_checkpoint_and_refuses_another_kind(tmp_path, capsys):
    from engine.cli.main import main
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    common = ["--head", "permutenet", "--task", "object", "--grid", "2", "--width", "0.125", "--batch", "8",
              "--device", "cpu", "--eval-samples", "16"]
    assert main(["train-probe", *common, "--steps", "2", "--out", str(first)]) == 0
    assert main(["train-probe", *common, "--steps", "2", "--init", str(first), "--out", str(second)]) == 0
    start, after = load_probe(first)[0].state_dict(), load_probe(second)
    assert after[1]["init"]["command"] == load_probe(first)[1]["command"]  # provenance kept
    assert any(not torch.equal(start[k], v) for k, v in after[0].state_dict().items() if v.is_floating_point())
    assert main(["train-probe", "--head", "gapnet", "--grid", "2", "--width", "0.125", "--steps", "1",
                 "--device", "cpu", "--init", str(first), "--out", str(tmp_path / "c.pt")]) == 2
    assert "starting checkpoint is a PermuteNet" in capsys.readouterr().err


def test_a_long_run_continues_on_a_bigger_grid_and_counts_its_steps_and_curve(tmp_path):
    from engine.cli.main import main
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    common = ["--head", "permutenet", "--task", "object", "--width", "0.125", "--patch", "8", "--batch", "8",
              "--device", "cpu", "--eval-samples", "16", "--eval-every", "2", "--schedule", "cosine"]
    assert main(["train-probe", *common, "--grid", "2", "--steps", "4", "--out", str(first)]) == 0
    assert main(["train-probe", *common, "--grid", "3", "--steps", "2", "--init", str(first), "--out", str(second)]) == 0
    model, meta = load_probe(second)
    assert model.config.grid == 3 and meta["steps_total"] == 6 and meta["train"]["schedule"] == "cosine"
    assert [(p["step"], p["grid"]) for p in meta["curve"]] == [(2, 2), (4, 2), (6, 3)]  # one curve over both legs


def test_a_location_run_cannot_change_grid(tmp_path, capsys):
    from engine.cli.main import main
    common = ["--head", "gapnet", "--width", "0.125", "--patch", "8", "--batch", "8", "--device", "cpu",
              "--eval-samples", "8", "--steps", "1"]
    assert main(["train-probe", *common, "--grid", "2", "--out", str(tmp_path / "a.pt")]) == 0
    assert main(["train-probe", *common, "--grid", "3", "--init", str(tmp_path / "a.pt"), "--out", str(tmp_path / "b.pt")]) == 2
    assert "these settings ask for a GAPNet 3x3 location" in capsys.readouterr().err


def test_steps_done_reads_checkpoints_written_before_steps_total():
    from engine.probe.lab import steps_done
    assert steps_done({"train": {"steps": 600}}) == 600
    assert steps_done({"train": {"steps": 600}, "init": {"command": "python -m engine train-probe --steps 6000"}}) == 6600
    assert steps_done({"steps_total": 7, "train": {"steps": 3}}) == 7


def test_cosine_schedule_decays_to_zero_and_milestones_see_an_eval_model():
    from engine.core.training import fit
    model, seen = nn.Linear(4, 2), []
    batch = lambda step: (torch.randn(8, 4), torch.randint(0, 2, (8,)))

    def milestone(step, m, state):
        seen.append((step, m.training))
        return {"eval_accuracy": 50.0}

    history = fit(model, batch, TrainConfig(steps=6, lr=0.1, schedule="cosine", bf16=False, channels_last=False,
                                            report_every=3), device=torch.device("cpu"), milestone=milestone,
                  milestone_every=2)
    assert seen == [(2, False), (4, False), (6, False)] and model.training
    assert [r["eval_accuracy"] for r in history if "eval_accuracy" in r] == [50.0] * 3
    with pytest.raises(ValueError, match="unknown schedule"):
        TrainConfig(schedule="step")


def test_fit_resumed_from_a_milestones_state_ends_as_an_unbroken_fit():
    import copy

    from engine.core.training import TrainState, fit
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Dropout(0.5), nn.LazyLinear(2))
    model(torch.randn(2, 3, 6, 6))  # materialise the lazy layer
    batch = lambda step: (torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(step)), torch.arange(8) % 2)
    config = TrainConfig(steps=7, lr=0.05, schedule="cosine", bf16=False, channels_last=False, report_every=3)
    kept = {}

    def keep(step, m, state):  # what a run checkpoint holds at step 4: the weights and the training state
        if step == 4:
            kept.update(model=copy.deepcopy(m), state=TrainState.from_dict(state.as_dict()))
        return {}

    unbroken = fit(copy.deepcopy(model), batch, config, device=torch.device("cpu"), milestone=keep, milestone_every=2)
    resumed_model = kept["model"]
    resumed = fit(resumed_model, batch, config, device=torch.device("cpu"), resume=kept["state"])
    trained = fit(model, batch, config, device=torch.device("cpu"))  # the same run again, never stopped
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), resumed_model.state_dict().values()))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows if "loss" in r]
    assert strip(resumed) == strip(unbroken)[1:] == strip(trained)[1:] and [r["step"] for r in resumed] == [6, 7]


def test_table1_measures_a_checkpoint_folder_and_fills_the_rest_from_recorded_rows(tmp_path):
    from engine.probe.shipped import measure_table1, shipped_probe_path
    for head in ("gapnet", "permutenet"):
        save_probe(build_probe(ProbeConfig(head=head, grid=2, width=0.125, patch=8)),
                   shipped_probe_path(head, "location", 2, "zero", tmp_path), {"command": f"train {head}"})
    recorded = {"task": "location", "padding": "reflect", "grid": 2, "net": "GAPNet", "accuracy": 99.5,
                "samples": 2000, "paper": None, "source": "checkpoint", "command": "python -m engine train-probe ..."}
    (tmp_path / "rows.json").write_text(json.dumps([recorded]))
    missing = []
    rows = measure_table1(["location"], ["zero", "reflect"], [2], tmp_path, samples=40, device=torch.device("cpu"),
                          unshipped=tmp_path / "rows.json", on_missing=missing.append)
    assert [(r.padding, r.net, r.source) for r in rows] == [
        ("zero", "GAPNet", "checkpoint"), ("zero", "PermuteNet", "checkpoint"), ("reflect", "GAPNet", "measured row")]
    assert rows[0].command == "train gapnet" and rows[2].accuracy == 99.5 and rows[2].command == recorded["command"]
    assert rows[0].sum_only is None and 0 <= rows[1].sum_only <= 100  # PermuteNet rows carry the channel-sum accuracy
    assert len(missing) == 1 and "reflect 2x2 PermuteNet" in missing[0]



def test_permutenet_evaluation_is_repeatable_and_leaves_the_callers_random_state_alone():
    from engine.probe.evaluate import evaluate_probe
    model = build_probe(ProbeConfig(head="permutenet", grid=2, width=0.125, patch=8))
    torch.manual_seed(0)
    state = torch.get_rng_state()
    first = evaluate_probe(model, samples=100, seed=5, device=torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), state)
    again = evaluate_probe(model, samples=100, seed=5, device=torch.device("cpu"))
    assert torch.equal(first.confusion, again.confusion)


def test_freeze_bn_trains_the_weights_on_the_running_statistics():
    from engine.core.training import fit
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(2, 3, 6, 6))  # materialise the lazy layer
    stats = model[1].running_mean.clone(), model[1].running_var.clone()
    weight = model[0].weight.detach().clone()
    batch = lambda step: (torch.randn(8, 3, 6, 6), torch.randint(0, 2, (8,)))
    fit(model, batch, TrainConfig(steps=3, freeze_bn=True, bf16=False, channels_last=False), device=torch.device("cpu"))
    assert torch.equal(model[1].running_mean, stats[0]) and torch.equal(model[1].running_var, stats[1])
    assert not torch.equal(model[0].weight, weight) and model.training and not model[1].training


def test_a_table1_row_names_every_leg_of_its_checkpoint():
    from engine.probe.shipped import command_chain
    meta = {"command": "leg 3", "init": {"path": "b.pt", "command": "leg 2", "init": {"path": "a.pt", "command": "leg 1", "init": None}}}
    assert command_chain(meta) == "leg 1 ; then leg 2 ; then leg 3"
    assert command_chain({"command": "only"}) == "only" and command_chain({}) is None


def test_the_same_seed_gives_the_same_run_from_any_random_state():
    """The initial weights are seeded too: a recorded command reproduces its checkpoint in a fresh process."""
    config = ProbeConfig(grid=2, width=0.125, patch=16)
    runs = []
    for noise in (1, 2):
        torch.manual_seed(noise)  # whatever the process did before
        model, _ = train_probe(config, TrainConfig(steps=2, batch=4, seed=3), device=torch.device("cpu"))
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
