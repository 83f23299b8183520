"""Kept uploads: stored by content hash with their extension and settings, the least recently used removed first."""
from __future__ import annotations

import os

import pytest

from engine.core.storage import over_budget
from engine.models.kept_checkpoints import GONE, KeptCheckpoints, KeptGone, Settings


def test_an_upload_is_kept_once_by_its_content_with_its_extension_and_latest_settings(tmp_path):
    kept = KeptCheckpoints(tmp_path, budget_bytes=10**6)
    first = kept.keep(b"onnx bytes", Settings("Model.ONNX"))
    assert (tmp_path / f"{first}.onnx").read_bytes() == b"onnx bytes"
    other = kept.keep(b"torch bytes", Settings("weights.bin", "deeplabv3_resnet50", "paper"))
    assert other != first and (tmp_path / f"{other}.pt").is_file()  # an unknown extension is kept as .pt
    again = kept.keep(b"torch bytes", Settings("same.pth", "timm:resnet18"))
    assert again == other and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{first}.onnx", f"{first}.json", f"{other}.pt", f"{other}.json"])
    path, settings = kept.upload(other)
    assert path == tmp_path / f"{other}.pt" and settings == Settings("same.pth", "timm:resnet18", "torchvision")
    assert kept.upload(first)[1] == Settings("Model.ONNX")


def test_an_upload_kept_as_a_bare_name_and_a_damaged_record_load_with_defaults(tmp_path):
    kept = KeptCheckpoints(tmp_path)
    (tmp_path / ("a" * 32 + ".pt")).write_bytes(b"x")
    (tmp_path / ("a" * 32 + ".json")).write_text('{"name": "probe.pt"}')  # a record with its name only
    assert kept.upload("a" * 32)[1] == Settings("probe.pt", "auto", "torchvision")
    (tmp_path / ("a" * 32 + ".json")).write_text("[1, 2")
    assert kept.upload("a" * 32)[1] == Settings("upload aaaaaaaa")


def test_the_budget_removes_the_least_recently_used_uploads_first_never_the_newest(tmp_path):
    kept = KeptCheckpoints(tmp_path, budget_bytes=10**6)
    ids = [kept.keep(bytes([i]) * 1000, Settings(f"{i}.pt")) for i in range(3)]
    for age, digest in zip((300, 200, 100), ids):  # kept 300, 200 and 100 s ago
        os.utime(tmp_path / f"{digest}.pt", (0, (tmp_path / f"{digest}.pt").stat().st_mtime - age))
    kept.upload(ids[0])  # used now: the most recent
    kept.budget_bytes = 2500
    assert kept.evict() == [ids[1]]
    with pytest.raises(KeptGone, match="not on this server any more: upload it again"):
        kept.upload(ids[1])
    assert not (tmp_path / f"{ids[1]}.json").exists()
    kept.budget_bytes = 0
    newest = kept.keep(b"new", Settings("new.pth"))
    assert [p.name for p in tmp_path.glob("*.pth")] == [f"{newest}.pth"] and not list(tmp_path.glob("*.pt"))
    with pytest.raises(KeptGone, match=GONE):
        kept.upload("../" + newest[3:])  # not an id: never a path


def test_settings_of_a_server_path_are_kept_without_copying_the_file(tmp_path):
    kept = KeptCheckpoints(tmp_path / "kept", budget_bytes=0)
    assert kept.settings_at("/data/big_fcn.pth") == Settings("big_fcn.pth")
    kept.remember("/data/big_fcn.pth", Settings("big_fcn.pth", "fcn_resnet50", "paper"))
    kept.keep(b"upload", Settings("u.pt"))  # evicts nothing but uploads (this one is the newest)
    assert kept.settings_at("/data/big_fcn.pth") == Settings("big_fcn.pth", "fcn_resnet50", "paper")
    assert len(list((tmp_path / "kept").glob("*.json"))) == 2


def test_over_budget_takes_the_oldest_candidates_until_the_total_fits():
    candidates = [("b", 10, 2.0), ("a", 10, 1.0), ("c", 10, 3.0)]
    assert over_budget(candidates, 50, 35) == ["a", "b"]  # 20 bytes are not candidates (e.g. an active run)
    assert over_budget(candidates, 30, 30) == []
    assert over_budget(candidates, 50, 0) == ["a", "b", "c"]
