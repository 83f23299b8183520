"""Checkpoint files: xz-packed assets load exactly like plain ones; damaged packs and unsafe files are refused."""
import lzma

import pytest
import torch

from engine.cli.main import main
from engine.core.storage import XZ_MAGIC, CheckpointError, load_torch, pack_checkpoint, save_torch


def test_a_packed_checkpoint_is_smaller_and_loads_the_same_tensors(tmp_path):
    blob = {"format": "x", "state_dict": {"w": torch.randn(64, 64).half(), "n": torch.tensor(3)}, "meta": {"a": 1}}
    path = save_torch(blob, tmp_path / "m.pt")
    plain_size = path.stat().st_size
    before, after = pack_checkpoint(path)
    assert before == plain_size and after == path.stat().st_size < before and path.read_bytes().startswith(XZ_MAGIC)
    assert pack_checkpoint(path) == (after, after)  # packing twice changes nothing
    loaded = load_torch(path)
    assert loaded["meta"] == {"a": 1} and torch.equal(loaded["state_dict"]["w"], blob["state_dict"]["w"])
    assert torch.equal(load_torch(path.read_bytes(), "upload")["state_dict"]["n"], torch.tensor(3))  # uploads too


def test_a_damaged_pack_and_an_unsafe_file_are_refused_with_a_message(tmp_path):
    damaged = tmp_path / "d.pt"
    damaged.write_bytes(lzma.compress(b"x" * 1000)[:40])
    with pytest.raises(CheckpointError, match="damaged compressed checkpoint"):
        load_torch(damaged)
    unsafe = tmp_path / "u.pt"
    torch.save({"module": torch.nn.Identity()}, unsafe)
    with pytest.raises(CheckpointError):
        pack_checkpoint(unsafe)  # never packs what would not load safely
    assert not unsafe.read_bytes().startswith(XZ_MAGIC)


def test_pack_assets_command_packs_the_given_files(tmp_path, capsys):
    path = save_torch({"w": torch.zeros(100, 100)}, tmp_path / "z.pt")
    assert main(["pack-assets", str(path)]) == 0
    assert path.read_bytes().startswith(XZ_MAGIC) and "total" in capsys.readouterr().out


def test_write_csv_has_one_column_per_key_and_json_for_lists(tmp_path):
    import csv

    from engine.core.storage import write_csv

    path = write_csv([{"a": 1, "b": [1, 2]}, {"a": 2, "c": None}], tmp_path / "rows.csv")
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["a", "b", "c"] and rows[0]["b"] == "[1, 2]" and rows[1] == {"a": "2", "b": "", "c": ""}


def test_assets_stay_within_their_40_mb_budget():
    from engine.core.storage import ASSETS

    total = sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file())
    assert total < 40 * 10**6, f"assets/ holds {total / 1e6:.2f} MB"
