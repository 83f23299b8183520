"""Bring your own data: CIFAR-10/100, ImageFolder and Cityscapes fixtures in their official layouts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cli.main import main
from engine.core.training import TrainConfig
from engine.data.cityscapes import load_cityscapes
from engine.data.cityscapes_classes import IGNORE, TRAIN_ID
from engine.data.patches import DataError, open_patch_source
from engine.models.probe import ProbeConfig
from engine.models.segmentation import load_model
from engine.probe.evaluate import evaluate_probe
from engine.probe.train import train_probe
from engine.seg.lab import load_data, subset_index

from byo_fixtures import make_cifar, make_cityscapes, make_image_folder


@pytest.mark.parametrize("variant,folder,classes", [("cifar10", "cifar-10-batches-py", 10), ("cifar100", "cifar-100-python", 100)])
def test_cifar_layouts_load(tmp_path, monkeypatch, variant, folder, classes):
    make_cifar(tmp_path, variant, monkeypatch)
    source = open_patch_source(tmp_path, patch=32)
    assert source.name == variant.upper() and len(source.classes) == classes
    images, labels = source.sample(6, seed=0, split="test")
    assert images.shape == (6, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    assert labels.max() < classes and len(source) == (50 if variant == "cifar10" else 10)


def test_cifar_with_a_missing_batch_names_the_expected_files(tmp_path, monkeypatch):
    make_cifar(tmp_path, "cifar10", monkeypatch)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        open_patch_source(tmp_path)


def test_image_folder_layout_loads_and_empty_folders_are_refused(tmp_path):
    make_image_folder(tmp_path / "pets")
    source = open_patch_source(tmp_path / "pets", patch=24)
    assert source.classes == ("cat", "dog") and len(source) == 6
    assert source.sample(4, seed=1)[0].shape == (4, 3, 24, 24)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="one sub-folder per class"):
        open_patch_source(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        open_patch_source(tmp_path / "nowhere")


def test_cityscapes_layout_maps_label_ids_to_train_ids(tmp_path):
    make_cityscapes(tmp_path)
    data = load_cityscapes(tmp_path, "val", height=32)
    assert data.images.shape == (4, 32, 64, 3) and data.labels.shape == (4, 32, 64)
    assert set(np.unique(data.labels)) <= {TRAIN_ID[c] for c in ("road", "building", "sky", "person", "car")} | {IGNORE}
    assert data.labels[0, 0, 0] == IGNORE and data.labels[0, -1, 0] == TRAIN_ID["road"]  # id 0 -> ignore, 7 -> road 0
    assert (data.labels == TRAIN_ID["car"]).any() and (data.labels == TRAIN_ID["person"]).any()
    assert data.pedestrian_sides == [("left",), ("right",), ("left",), ()]  # sorted by path: aachen 0, 2; bochum 1, 3
    assert list(subset_index(data, "val-left")) == [0, 2] and list(subset_index(data, "val-right")) == [1]
    assert load_data(str(tmp_path), "val", 2, 32).images.shape[0] == 2  # the first N


def test_cityscapes_sorted_order_and_file_changes_change_the_key(tmp_path):
    make_cityscapes(tmp_path)
    first = load_cityscapes(tmp_path, height=32)
    label = next((tmp_path / "gtFine" / "val" / "aachen").glob("*labelIds.png"))
    label.write_bytes((tmp_path / "gtFine" / "val" / "bochum" / "bochum_000001_000019_gtFine_labelIds.png").read_bytes())
    assert load_cityscapes(tmp_path, height=32).key != first.key


@pytest.mark.parametrize("breakage,phrase", [
    ("nothing", "No Cityscapes folder"),
    ("no_gtfine", "no gtFine/val folder"),
    ("no_images", "No *_leftImg8bit.png images"),
    ("missing_label", "Missing label file"),
])
def test_cityscapes_problems_name_the_expected_layout(tmp_path, breakage, phrase):
    root = tmp_path / "cs"
    if breakage != "nothing":
        make_cityscapes(root, sides=("left",))
    if breakage == "no_gtfine":
        for f in (root / "gtFine").rglob("*"):
            f.unlink() if f.is_file() else None
        (root / "gtFine" / "val" / "aachen").rmdir()
        (root / "gtFine" / "val").rmdir()
    elif breakage == "no_images":
        next((root / "leftImg8bit").rglob("*.png")).unlink()
    elif breakage == "missing_label":
        next((root / "gtFine").rglob("*.png")).unlink()
    with pytest.raises(DataError) as err:
        load_cityscapes(root, "val", 32)
    assert phrase in str(err.value)
    if breakage in ("nothing", "no_gtfine"):
        assert "leftImg8bit/val/<city>/<name>_leftImg8bit.png" in str(err.value)


def test_cli_rank_and_ablate_run_on_a_cityscapes_folder(tmp_path, capsys):
    make_cityscapes(tmp_path / "cs")
    out = tmp_path / "ablate.json"
    assert main(["ablate", "--data", str(tmp_path / "cs"), "--height", "32", "--ranking", "random", "--n", "100",
                 "--draws", "2", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["ranking"] for r in rows] == ["none", "random", "random", "random mean"]
    assert all(0 <= r["all"] <= 1 for r in rows)
    assert "cityscapes" in capsys.readouterr().out
    assert main(["rank", "--data", str(tmp_path / "cs"), "--height", "32", "--method", "left", "--top", "3"]) == 2
    assert "train" in capsys.readouterr().err  # held-out ranking needs the folder's train split
    assert main(["rank", "--data", str(tmp_path / "cs"), "--height", "32", "--method", "left", "--top", "3",
                 "--rank-on", "val"]) == 0
    assert "left on val: 2 images" in capsys.readouterr().out
    make_cityscapes(tmp_path / "cs", "train", sides=("left", "right", "left"))
    assert main(["rank", "--data", str(tmp_path / "cs"), "--height", "32", "--method", "left", "--top", "3"]) == 0
    assert "left on held-out: 2 images" in capsys.readouterr().out  # ranked on the train split
    assert main(["ablate", "--data", str(tmp_path / "missing")]) == 2
    assert "leftImg8bit" in capsys.readouterr().err


def test_cli_train_seg_trains_on_a_cityscapes_folder_and_writes_a_checkpoint(tmp_path, capsys):
    make_cityscapes(tmp_path / "cs", "train", sides=("left", "right", None))
    make_cityscapes(tmp_path / "cs", "val", sides=("left",))
    out, meta = tmp_path / "seg.pt", tmp_path / "meta.json"
    assert main(["train-seg", "--data", str(tmp_path / "cs"), "--height", "32", "--epochs", "1", "--batch-size", "2",
                 "--train-images", "2", "--device", "cpu", "--out", str(out), "--json", str(meta)]) == 0
    seg = load_model(out)
    assert seg.num_classes == 19 and seg.meta["train"]["data"] == str(tmp_path / "cs")
    assert set(json.loads(meta.read_text())["val_miou"]) == {"all", "left", "center", "right"}
    assert f"wrote {out}" in capsys.readouterr().out
    make_cityscapes(tmp_path / "val_only")
    assert main(["train-seg", "--data", str(tmp_path / "val_only"), "--height", "32", "--device", "cpu"]) == 2
    assert "has no leftImg8bit/train folder" in capsys.readouterr().err


def test_object_probe_on_an_image_folder_predicts_its_own_classes(tmp_path):
    classes = tuple(f"class{k:02d}" for k in range(12))  # more than the 10 generated shapes
    make_image_folder(tmp_path / "twelve", classes, per_class=2)
    source = open_patch_source(str(tmp_path / "twelve"), 32)
    config = ProbeConfig(head="gapnet", task="object", grid=2, width=0.0625)
    model, history = train_probe(config, TrainConfig(steps=2, batch=8), source)
    assert model.config.num_outputs == 12 and history
    assert evaluate_probe(model, source, 16, seed=1).confusion.shape == (12, 12)
