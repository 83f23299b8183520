"""The grid probe's lab API: typed results, their rows, and the CLI writing exactly what the lab returns."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from engine.cli.main import main
from engine.core.cache import CACHE
from engine.core.results import Result
from engine.core.training import TrainConfig
from engine.models.probe import ProbeConfig, build_probe
from engine.probe import lab
from engine.probe.shipped import Table1Row

TINY = ProbeConfig(head="gapnet", grid=2, width=0.125, patch=8)


def test_table1_rows_are_the_cells_and_the_command_writes_them(tmp_path, capsys):
    result = lab.table1(["location"], ["zero"], [3], samples=100, device="cpu", unshipped=False)
    assert isinstance(result, Result) and [r.net for r in result.cells] == ["GAPNet", "PermuteNet"]
    assert all(set(row) == set(Table1Row.__dataclass_fields__) for row in result.rows())
    out, table = tmp_path / "t.json", tmp_path / "t.csv"
    CACHE.clear()
    assert main(["table1", "--tasks", "location", "--grids", "3", "--eval-samples", "100", "--device", "cpu",
                 "--no-unshipped", "--json", str(out), "--csv", str(table)]) == 0
    assert json.loads(out.read_text()) == result.rows()
    with table.open() as f:
        assert [r["accuracy"] for r in csv.DictReader(f)] == [str(r["accuracy"]) for r in result.rows()]
    assert "PermuteNet" in capsys.readouterr().out


def test_train_saves_evaluates_and_the_command_writes_the_same_meta(tmp_path):
    settings = TrainConfig(steps=2, batch=8, seed=3, report_every=25)
    torch.manual_seed(0)  # the initial weights are drawn before training seeds itself
    trained = lab.train(TINY, settings, tmp_path / "lab.pt", device="cpu", eval_samples=16, command="x")
    assert isinstance(trained, Result) and trained.path.is_file()
    (row,) = trained.rows()
    assert row["grid"] == 2 and row["accuracy"] == trained.meta["eval"]["accuracy"] and row["path"].endswith("lab.pt")
    out, table = tmp_path / "cli.json", tmp_path / "cli.csv"
    torch.manual_seed(0)
    assert main(["train-probe", "--grid", "2", "--width", "0.125", "--patch", "8", "--steps", "2", "--batch", "8",
                 "--seed", "3", "--device", "cpu", "--eval-samples", "16", "--out", str(tmp_path / "cli.pt"),
                 "--json", str(out), "--csv", str(table)]) == 0
    written = json.loads(out.read_text())
    assert written["config"] == TINY.__dict__ and written["eval"] == trained.meta["eval"]
    assert written["train"] == json.loads(json.dumps(trained.meta["train"])) and len(table.read_text().splitlines()) == 2


def test_train_in_memory_skips_saving_and_evaluation():
    trained = lab.train(TINY, TrainConfig(steps=1, batch=4), device="cpu", eval_samples=0)
    assert trained.path is None and "eval" not in trained.meta and trained.model.config.grid == 2


def test_evaluate_rows_are_the_cells():
    result = lab.evaluate(build_probe(TINY).eval(), "tiny", samples=40, device="cpu")
    assert isinstance(result, Result) and result.evaluation.samples == 40
    assert [(r["cell"], r["row"], r["col"]) for r in result.rows()] == [(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)]


def test_sweep_is_cached_by_the_weights_not_the_object():
    model, patch = build_probe(TINY).eval(), torch.rand(3, 8, 8)
    first = lab.sweep(model, patch)
    assert first.probs.shape == (4, 4) and len(first.rows()) == 4 and 0 <= first.accuracy() <= 100
    twin = build_probe(TINY).eval()
    twin.load_state_dict(model.state_dict())
    assert lab.sweep(twin, patch).probs is first.probs  # equal weights: the same entry
    with torch.no_grad():
        twin.head.weight.add_(1.0)
    assert lab.sweep(twin, patch).probs is not first.probs
    assert first.rate().endswith("n=4)")


@pytest.mark.parametrize("meta,steps", [({"train": {"steps": 600}}, 600), ({"steps_total": 7, "train": {"steps": 3}}, 7)])
def test_steps_done(meta, steps):
    assert lab.steps_done(meta) == steps
