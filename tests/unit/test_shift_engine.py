"""Shift lab engine: AugShift's MSE term, BlurPool's shapes and equivariance, Cons.k, the CLI."""
import json

import pytest
import torch
from torch import nn

from engine.cli.main import main
from engine.core.runs import RunStore
from engine.data.patches import GeneratedShapes
from engine.models.blurpool import BlurPool, antialias, binomial_filter, count_blurpools
from engine.models.resnet import PaperResNet18, set_padding_mode
from engine.models.shift import ShiftConfig, ShiftNet, load_shift_model
from engine.shift.augshift import augshift_loss, latent_mse, two_crops
from engine.shift.consistency import consistency, evaluate_shift, held_out_images, shift_curve, slide
from engine.shift.crops import crop_at, pad_canvas


def test_mse_term_zero_for_identical_crops_positive_otherwise():
    torch.manual_seed(0)
    model = ShiftNet(ShiftConfig(width=0.125)).eval()
    x = torch.randn(6, 3, 32, 32)
    z_same = model.latent(torch.cat([x, x]))
    assert latent_mse(*z_same.chunk(2)).item() == 0.0
    z_shift = model.latent(torch.cat([x, x.roll(3, dims=-1)]))
    assert latent_mse(*z_shift.chunk(2)).item() > 0.0
    y = torch.randint(10, (6,))
    loss0, _ = augshift_loss(0.0)(model, torch.cat([x, x.roll(3, dims=-1)]), torch.cat([y, y]))
    loss5, _ = augshift_loss(5.0)(model, torch.cat([x, x.roll(3, dims=-1)]), torch.cat([y, y]))
    assert loss5.item() > loss0.item()


def test_two_crops_are_shifted_views_of_the_same_image():
    x = torch.randn(4, 3, 32, 32)
    pair = two_crops(x, 4, torch.Generator().manual_seed(1))
    assert pair.shape == (8, 3, 32, 32)
    canvas = pad_canvas(x, 8)
    windows = canvas.unfold(2, 32, 1).unfold(3, 32, 1)  # (n, c, 9, 9, 32, 32): every valid crop
    for i, crop in enumerate(pair):
        found = (windows[i % 4] == crop[:, None, None]).flatten(3).all(-1).all(0)
        assert found.any()


def test_binomial_filter_and_blurpool_shapes():
    assert torch.allclose(binomial_filter(3), torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16)
    for size in range(1, 8):
        assert binomial_filter(size).sum().item() == pytest.approx(1.0)
        for h in (31, 32, 33):
            assert BlurPool(size, 2)(torch.randn(1, 5, h, h)).shape[-1] == (h + 1) // 2
    with pytest.raises(ValueError):
        BlurPool(3, 2, "nearest")


def test_antialiased_resnet_keeps_output_shapes_and_weights():
    plain = PaperResNet18(0.125).eval()
    blurred = antialias(plain, 4).eval()
    assert count_blurpools(plain) == 0 and count_blurpools(blurred) == 7  # stem + 3 strided convs + 3 shortcuts
    for size in (32, 40, 47):
        x = torch.randn(2, 3, size, size)
        assert plain(x).shape == blurred(x).shape
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), blurred.parameters()))
    pool = antialias(nn.Sequential(nn.MaxPool2d(3, 2, 1)))
    assert pool(torch.randn(1, 2, 16, 16)).shape == nn.MaxPool2d(3, 2, 1)(torch.randn(1, 2, 16, 16)).shape


def test_blurpool_network_is_exactly_equivariant_to_shifts_by_the_total_stride():
    torch.manual_seed(0)
    net = antialias(set_padding_mode(PaperResNet18(0.125), "circular"), 3, pad_mode="circular").double().eval()
    x = torch.randn(1, 3, 48, 48, dtype=torch.float64)
    with torch.no_grad():
        out = net(x)
        for dy, dx in ((16, 0), (16, 32)):
            shifted = net(x.roll((dy, dx), dims=(2, 3)))
            assert torch.allclose(shifted, out.roll((dy // 16, dx // 16), dims=(2, 3)), atol=1e-9, rtol=0)
        off_grid = net(x.roll((0, 5), dims=(2, 3)))
        assert not any(torch.allclose(off_grid, out.roll(s, dims=3), atol=1e-3) for s in range(3))


class Constant(nn.Module):
    """A classifier that ignores its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([0.1, 3.0, 0.2]).expand(len(x), -1)


def test_consistency_of_a_model_that_ignores_its_input_is_100():
    images, labels = torch.randn(50, 3, 32, 32), torch.randint(3, (50,))
    assert consistency(Constant(), images, max_shift=8, passes=5, batch=16, device=torch.device("cpu")) == 100.0
    agree, prob, acc = shift_curve(Constant(), images, labels, max_shift=8, device=torch.device("cpu"))
    assert agree == [100.0] * 9 and len(prob) == len(acc) == 9


class Corner(nn.Module):
    """A 10-class classifier that reads ten pixels near the crop's corner (shifts change its answer), or, with
    ``constant``, ignores its input and always says class 1."""

    def __init__(self, constant: bool = False) -> None:
        super().__init__()
        self.constant = constant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.constant:
            return torch.eye(10)[1].expand(len(x), -1)
        return x[:, 0, 2, 2:12]


def test_consistency_splits_into_images_classified_right_and_wrong():
    cpu, source = torch.device("cpu"), GeneratedShapes(32)
    images, labels = held_out_images(source, 120)
    for model in (Corner(constant=True), Corner()):
        ev = evaluate_shift(model, source, samples=120, passes=3, batch=40, device=cpu)
        right = model(images).argmax(1) == labels
        n_right = int(right.sum())
        assert 0 < n_right < 120 and ev.top1 == pytest.approx(100 * n_right / 120)
        assert ev.cons == pytest.approx((n_right * ev.cons_right + (120 - n_right) * ev.cons_wrong) / 120)
        if model.constant:
            assert ev.cons == ev.cons_right == ev.cons_wrong == 100.0
        else:
            assert ev.cons < 100.0


def test_curve_at_half_the_range_is_the_original_image():
    x = torch.randn(3, 3, 32, 32)
    canvas = pad_canvas(x, 8)
    assert canvas.shape[-1] == 40 and torch.equal(crop_at(canvas, 4, 4, 32), x)
    probs = slide(Constant(), x[0], 8)
    assert probs.shape == (9, 3)


def test_cli_train_and_consistency(tmp_path):
    out, rows = tmp_path / "m.pt", tmp_path / "rows.json"
    assert main(["train-shift", "--method", "augshift", "--steps", "2", "--batch", "8", "--width", "0.125",
                 "--clutter", "0.5", "--eval-samples", "40", "--device", "cpu", "--out", str(out)]) == 0
    model, meta = load_shift_model(out)
    assert model.config.method == "augshift" and "--method augshift" in meta["command"]
    assert model.config.clutter == 0.5 and "--clutter 0.5" in meta["command"] and "clutter 0.5" in meta["data"]
    assert main(["consistency", "--checkpoint", str(out), "--samples", "40", "--passes", "5", "--device", "cpu",
                 "--json", str(rows)]) == 0
    row = json.loads(rows.read_text())[0]
    assert {"method", "top1", "cons"} <= set(row) and 0 <= row["cons"] <= 100
    assert row["data"] == "generated shapes (clutter 0.5)"  # measured on the data it learned


def test_cli_trains_and_measures_the_named_sets(tmp_path):
    """--data shapes100 (a class-balanced pool) and --data digits: the checkpoint remembers its set, consistency
    measures it there by default and writes method, dataset, top1, cons and the extra Cons.k per row."""
    sets = ["shapes100"]
    try:
        import sklearn  # noqa: F401 - optional dependency

        sets.append("digits")
    except ImportError:
        pass
    for name in sets:
        out, rows = tmp_path / f"{name}.pt", tmp_path / f"{name}.json"
        assert main(["train-shift", "--method", "baseline", "--data", name, "--train-images", "300", "--steps", "2",
                     "--batch", "8", "--width", "0.125", "--schedule", "cosine", "--eval-samples", "40", "--device", "cpu",
                     "--out", str(out)]) == 0
        model, meta = load_shift_model(out)
        assert model.config.dataset == name and f"--data {name}" in meta["command"] and "--schedule cosine" in meta["command"]
        assert len(model.config.classes) == (100 if name == "shapes100" else 10)
        assert main(["consistency", "--models", str(out), "--samples", "40", "--passes", "1", "--more-shifts", "4",
                     "--device", "cpu", "--json", str(rows)]) == 0
        row = json.loads(rows.read_text())[0]
        assert row["dataset"] == name and row["classes"] == len(model.config.classes)
        assert {"method", "top1", "cons", "cons8", "cons4"} <= set(row)
    digits = load_shift_model(tmp_path / "digits.pt")[0].config if "digits" in sets else None
    assert digits is None or digits.train_images == 1297  # a real set's pool is its training split


TINY_SHIFT = ["--method", "baseline", "--steps", "2", "--batch", "8", "--width", "0.125", "--eval-samples", "20",
              "--device", "cpu"]


def test_cli_continues_a_checkpoint_with_init_and_refuses_other_settings(tmp_path, capsys):
    first, more = tmp_path / "first.pt", tmp_path / "more.pt"
    assert main(["train-shift", *TINY_SHIFT, "--out", str(first)]) == 0
    assert main(["train-shift", *TINY_SHIFT, "--init", str(first), "--out", str(more)]) == 0
    before, after = load_shift_model(first)[0], load_shift_model(more)[0]
    assert after.config == before.config and f"--init {first}" in load_shift_model(more)[1]["command"]
    assert any(not torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))
    capsys.readouterr()
    assert main(["train-shift", *TINY_SHIFT[:-4], "--width", "0.25", "--device", "cpu", "--init", str(first)]) == 2
    assert "starting checkpoint" in capsys.readouterr().err


def test_cli_trains_a_shift_model_as_a_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path))
    out = tmp_path / "run.pt"
    assert main(["train-shift", *TINY_SHIFT, "--run", "--out", str(out)]) == 0
    (run,), _ = RunStore().list()
    assert (run.kind, run.state, run.step, run.total) == ("shift", "done", 2, 2) and "--method baseline" in run.command
    assert load_shift_model(out)[1]["steps_total"] == 2
    assert main(["train-shift", *TINY_SHIFT, "--run", "--data", str(tmp_path)]) == 2
    assert "built-in set" in capsys.readouterr().err
