"""engine.shift.lab and open_patch_source: one call per experiment, typed results, every data source by name or path."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.cli.main import main
from engine.core.errors import DataError
from engine.core.results import Result
from engine.core.training import TrainConfig
from engine.data import patches
from engine.data.patches import GeneratedShapes, TrainingPool, open_patch_source
from engine.models.shift import ShiftConfig
from engine.shift import lab

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained():
    config = ShiftConfig(method="augshift", width=0.125, train_images=64, clutter=0.5)
    return lab.train(config, TrainConfig(steps=2, batch=8), eval_samples=40, device=CPU)


def test_train_gives_a_model_its_evaluation_and_rows(trained):
    assert isinstance(trained, Result) and set(trained.rows()[0]) == {"method", "top1", "cons", "seconds"}
    assert trained.model.config.clutter == 0.5 and "clutter 0.5" in trained.data and trained.evaluation.samples == 40


def test_consistency_rows_are_the_cli_json(trained, tmp_path):
    path = tmp_path / "m.pt"
    from engine.models.shift import load_shift_model, save_shift_model

    save_shift_model(trained.model, path, {})
    saved, _ = load_shift_model(path)  # the CLI measures the saved (fp16) weights: so must the lab call it is held to
    result = lab.consistency([(saved, str(path))], samples=40, passes=2, more_shifts=[4], device=CPU)
    out = tmp_path / "rows.json"
    assert main(["consistency", "--checkpoint", str(path), "--samples", "40", "--passes", "2", "--more-shifts", "4",
                 "--device", "cpu", "--json", str(out), "--csv", str(tmp_path / "rows.csv")]) == 0
    cli = json.loads(out.read_text())
    ours = result.rows()
    for row in (*cli, *ours):
        row.pop("seconds")
    assert cli == ours and {"cons8", "cons4", "paper_c10_cons8"} <= set(ours[0])
    assert (tmp_path / "rows.csv").read_text().startswith("method,dataset,top1,cons")


def test_slide_rows(trained):
    image = torch.zeros(3, 32, 32)
    result = lab.slide({"m": trained.model}, image, 8, trained.model.config.classes)
    assert result.probs["m"].shape == (9, len(trained.model.config.classes))
    assert len(result.rows()) == 9 and result.rows()[0]["offset_px"] == -4


def test_open_patch_source_opens_what_open_source_did(tmp_path, monkeypatch):
    assert open_patch_source(None) == GeneratedShapes(32) == open_patch_source("shapes")
    assert open_patch_source(None, 16, clutter=0.5) == GeneratedShapes(16, clutter=0.5)
    pool = open_patch_source("shapes", 32, train_images=20, clutter=0.5)
    assert isinstance(pool, TrainingPool) and len(pool.images) == 20 and pool.key == "shapes"
    assert torch.equal(pool.sample(4, 1, "test")[0], GeneratedShapes(32, clutter=0.5).sample(4, 1, "test")[0])
    hundred = open_patch_source("shapes100", 32, train_images=200)
    assert isinstance(hundred, TrainingPool) and len(hundred.classes) == 100
    with pytest.raises(ValueError):
        open_patch_source("shapes100", clutter=0.5)
    with pytest.raises(DataError):
        open_patch_source(tmp_path / "nowhere")
    cifar = tmp_path / "cifar-100-python"  # the CIFAR folder itself, or the one holding it
    cifar.mkdir()
    calls = []
    monkeypatch.setattr(patches, "load_cifar", lambda root, variant, patch: calls.append((Path(root), variant, patch)))
    open_patch_source(cifar, 24)
    open_patch_source(str(tmp_path))
    assert calls == [(tmp_path, "cifar100", 24), (tmp_path, "cifar100", 32)]


def test_shipped_skips_a_recorded_unshipped_model_with_a_note():
    from engine.shift.shipped import recorded_row, shipped_path

    unshipped = [m for m in lab.METHODS if not shipped_path(m, "shapes100").is_file()]
    assert unshipped and all(recorded_row(m, "shapes100") for m in unshipped)
    models, notes = lab.shipped(["shapes100"])
    assert len(models) == len(lab.METHODS) - len(unshipped) and len(notes) == len(unshipped)
    assert all("not shipped" in note for note in notes)
