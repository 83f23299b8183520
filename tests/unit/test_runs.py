"""The run store: atomic records, unguessable ids, the size budget's eviction order, damaged folders, interrupted runs,
and a stopped probe run continued to its total step count (the page's and the CLI's path alike), ending exactly as a
run never stopped (probe and shift), or with a fresh optimizer from a checkpoint written without its state."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from engine.core.progress import Progress
from engine.core.runs import ID_PATTERN, Recorder, RunError, RunStore, new_run_id, run_recorded
from engine.core.storage import load_torch
from engine.core.training import TrainConfig
from engine.models.probe import ProbeConfig, load_probe, save_probe
from engine.models.shift import ShiftConfig
from engine.probe import lab
from engine.shift import lab as shift_lab


def test_ids_are_unguessable_and_only_ids_name_folders(tmp_path):
    ids = {new_run_id() for _ in range(200)}
    assert len(ids) == 200 and all(ID_PATTERN.match(i) and len(i) >= 22 for i in ids)
    store = RunStore(tmp_path)
    for bad in ("../etc", "a/b", "short", ""):
        with pytest.raises(RunError, match="not a run id"):
            store.get(bad)
    with pytest.raises(RunError, match="No run"):
        store.get(new_run_id())


def test_records_are_written_atomically_and_read_back(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("probe", "t", {"a": 1}, "python -m engine x", 40)
    rec = store.recorder(run)
    rec.start()
    rec.on_progress(Progress(10, 40, "training", {"loss": 1.5}))
    rec.checkpointed(10)
    again = store.get(run.id)
    assert (again.state, again.step, again.checkpoint_step, again.settings) == ("running", 10, 10, {"a": 1})
    assert again.curve() == [{"step": 10, "loss": 1.5}]
    assert not [p for p in run.folder.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind
    rec.finish({"accuracy": 50.0}, rows=[{"x": 1}])
    done = store.get(run.id)
    assert done.state == "done" and done.result == {"accuracy": 50.0} and done.rows() == [{"x": 1}]
    assert (run.folder / "curve.csv").read_text().splitlines() == ["step,loss", "10,1.5"]


def test_the_budget_evicts_the_oldest_finished_runs_first_never_an_active_one(tmp_path):
    store = RunStore(tmp_path, budget_bytes=10**9)
    runs = []
    for i in range(4):
        run = store.create("probe", f"run {i}", {}, "c", 10)
        (run.folder / "checkpoint.pt").write_bytes(b"x" * 10_000)
        runs.append(run)
    active, *finished = runs
    for i, run in enumerate(finished):  # finished in order 1, 2, 3; the first stays running (owned by this process)
        run.state = "done"
        store.save(run)
        os.utime(run.folder / "run.json")
        time.sleep(0.01)
    store.budget_bytes = 25_000
    removed = store.evict()
    assert removed == [finished[0].id, finished[1].id]  # oldest finished first, until the store fits
    assert {r.id for r in store.list()[0]} == {active.id, finished[2].id}
    with pytest.raises(RunError, match="removed to keep the run store within its size budget"):
        store.get(finished[0].id)
    store.budget_bytes = 0
    store.evict()
    assert [r.id for r in store.list()[0]] == [active.id]  # an active run is never removed


def test_a_damaged_folder_is_refused_with_a_message_and_the_rest_listed(tmp_path):
    store = RunStore(tmp_path)
    good = store.create("probe", "good", {}, "c", 10)
    bad = store.create("probe", "bad", {}, "c", 10)
    (bad.folder / "run.json").write_text("{not json")
    other = store.create("probe", "other", {}, "c", 10)
    (other.folder / "run.json").write_text(json.dumps({"id": other.id, "kind": "probe"}))  # fields missing
    runs, problems = store.list()
    assert [r.id for r in runs] == [good.id]
    assert len(problems) == 2 and all("damaged" in p and "left out" in p for p in problems)
    with pytest.raises(RunError, match=f"Run {bad.id} is damaged"):
        store.get(bad.id)


def test_a_run_whose_process_is_gone_reads_as_interrupted(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("probe", "t", {}, "c", 10)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run.state, run.owner = "running", {"pid": int(gone.stdout), "started": "0"}
    store.save(run)
    assert store.get(run.id).state == "interrupted"
    assert json.loads((run.folder / "run.json").read_text())["state"] == "interrupted"  # recorded, not only shown
    mine = store.create("probe", "mine", {}, "c", 10)
    assert store.get(mine.id).state == "queued"  # this process owns it: still queued


def test_a_stopped_probe_run_keeps_its_checkpoint_and_continues_to_the_same_total(tmp_path):
    store = RunStore(tmp_path)
    config = ProbeConfig(head="gapnet", task="location", grid=2, width=0.125, patch=16)
    run = lab.start_run(store, config, TrainConfig(steps=20, batch=8, report_every=5), eval_samples=50)
    rec = store.recorder(run)
    record = rec.on_progress

    def stop_at_10(p: Progress) -> None:  # a Stop pressed at step 10: its checkpoint is the last written
        record(p)
        if p.done >= 10:
            rec.stop.stop()

    rec.on_progress = stop_at_10
    assert run_recorded(rec, lambda r: lab.train_run(r, "cpu")) is None
    stopped = store.get(run.id)
    assert stopped.state == "stopped" and stopped.checkpoint_step == 10 and "stopped at step 10 of 20" in stopped.status()
    model, meta = load_probe(stopped.checkpoint)  # the kept model loads as any probe checkpoint
    assert meta["steps_total"] == 10 and model.config == config.with_(num_classes=model.config.num_classes)

    result = run_recorded(store.recorder(stopped), lambda r: lab.train_run(r, "cpu"))
    done = store.get(run.id)
    assert done.state == "done" and done.step == 20 and done.checkpoint_step == 20
    assert result.meta["steps_total"] == 20 and load_probe(done.checkpoint)[1]["steps_total"] == 20
    assert done.result["accuracy"] == result.meta["eval"]["accuracy"] and done.rows()[0]["steps_total"] == 20
    assert "--run" in done.command and "--steps 20" in done.command
    assert [row["step"] for row in done.curve()] == [5, 10, 15, 20]  # the curve goes on from the checkpoint's step


def _leg(store: RunStore, run_id: str, train_run, stop_at: int | None = None):
    """One leg of a run (start or continue), stopped by a progress callback once it reports step ``stop_at``."""
    rec: Recorder = store.recorder(store.get(run_id))
    if stop_at is not None:
        record = rec.on_progress

        def stop_there(p: Progress) -> None:
            record(p)
            if p.message == "training" and p.done >= stop_at:
                rec.stop.stop()

        rec.on_progress = stop_there
    return run_recorded(rec, lambda r: train_run(r, "cpu"))


def _equal(a: dict, b: dict) -> bool:
    """Nested state dicts equal to the bit (tensors by torch.equal, all else by ==)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b


# PermuteNet (a fresh shuffle every step), a cosine rate and reports every 3 steps (checkpoints every 5): all of it
# must go on where it stopped. fp32 (no bf16) so the comparison can be exact.
PROBE = ProbeConfig(head="permutenet", task="location", grid=2, width=0.125, patch=16)
PROBE_TRAIN = TrainConfig(steps=20, batch=8, report_every=3, schedule="cosine", bf16=False)


def test_a_probe_run_stopped_and_continued_ends_as_one_never_stopped(tmp_path):
    store = RunStore(tmp_path)
    unbroken, broken = (lab.start_run(store, PROBE, PROBE_TRAIN, eval_samples=20).id for _ in range(2))
    _leg(store, unbroken, lab.train_run, stop_at=15)
    _leg(store, broken, lab.train_run, stop_at=10)
    assert store.get(broken).checkpoint_step == 10
    _leg(store, broken, lab.train_run, stop_at=15)  # continued from step 10 and stopped again at 15: the fp32 state
    a, b = load_torch(store.get(unbroken).checkpoint), load_torch(store.get(broken).checkpoint)
    assert a["train_state"]["step"] == b["train_state"]["step"] == 15
    assert a["state_dict"]["head.weight"].dtype == torch.float32 and a["train_state"]["optimizer"]["state"]
    assert _equal(a["state_dict"], b["state_dict"]) and _equal(a["train_state"], b["train_state"])

    results = [_leg(store, run_id, lab.train_run) for run_id in (unbroken, broken)]
    done_a, done_b = store.get(unbroken), store.get(broken)
    assert done_a.state == done_b.state == "done" and done_b.notes == []
    assert _equal(load_torch(done_a.checkpoint)["state_dict"], load_torch(done_b.checkpoint)["state_dict"])
    assert [row["step"] for row in done_b.curve()] == [3, 6, 9, 12, 15, 18, 20]
    assert done_a.curve() == done_b.curve()  # the windows that straddle a stop (12, 15) included
    assert results[0].meta["eval"] == results[1].meta["eval"] and results[1].meta["steps_total"] == 20


def test_a_shift_run_stopped_and_continued_ends_as_one_never_stopped(tmp_path):
    store = RunStore(tmp_path)
    config = ShiftConfig(method="augshift", width=0.125, train_images=64)  # two random crops of each image per step
    schedule = TrainConfig(steps=12, batch=8, report_every=4, schedule="cosine", bf16=False)
    unbroken, broken = (shift_lab.start_run(store, config, schedule, eval_samples=20).id for _ in range(2))
    first = _leg(store, unbroken, shift_lab.train_run)
    assert _leg(store, broken, shift_lab.train_run, stop_at=6) is None
    assert store.get(broken).state == "stopped" and store.get(broken).checkpoint_step == 5
    second = _leg(store, broken, shift_lab.train_run)
    assert _equal(first.model.state_dict(), second.model.state_dict())  # the trained weights, in fp32
    assert first.evaluation.as_dict() == second.evaluation.as_dict()
    assert store.get(unbroken).curve() == store.get(broken).curve()
    assert [row["step"] for row in store.get(broken).curve()] == [4, 8, 12]


def test_a_checkpoint_without_optimizer_state_continues_with_a_fresh_adam_and_says_so(tmp_path):
    store = RunStore(tmp_path)
    run_id = lab.start_run(store, PROBE, PROBE_TRAIN, eval_samples=20).id
    _leg(store, run_id, lab.train_run, stop_at=10)
    run = store.get(run_id)
    model, meta = load_probe(run.checkpoint)
    save_probe(model, run.checkpoint, meta)  # as runs wrote it before they kept the training state: fp16, no state
    assert "train_state" not in load_torch(run.checkpoint)
    _leg(store, run_id, lab.train_run)
    done = store.get(run_id)
    assert done.state == "done" and done.step == done.checkpoint_step == 20 and done.result["steps_total"] == 20
    assert len(done.notes) == 1 and "fresh Adam" in done.notes[0] and "step 10" in done.notes[0]
    assert [row["step"] for row in done.curve()] == [3, 6, 9, 12, 15, 18, 20]
