"""The run store: every training and full-set sweep as a folder that outlives the browser tab and the server.

``cache_dir()/runs/<id>/`` holds ``run.json`` (kind, title, settings, the engine command that remakes it, state,
step k of n, times, owner process, notes), ``curve.json`` / ``curve.csv`` (the training metrics), ``checkpoint.pt``
(written atomically every few steps by the lab: fp32 weights and the training state a continue picks up, so a continued
run ends as one never stopped) and ``rows.json`` (a sweep's rows). Ids are unguessable
(``secrets.token_urlsafe``), so a shared server shows a run only to whoever has its link. A run whose owner process
is gone while it was queued or running reads as ``interrupted``; it keeps its last checkpoint and can be continued.
The store keeps within ``$POSLAB_RUNS_BUDGET_MB`` by removing the oldest finished runs first, never an active one.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.core.progress import Progress, Stopped, StopToken
from engine.core.storage import cache_dir, env_megabytes, over_budget, save_json, write_csv
from engine.core.training import TrainState, read_train_state

BUDGET_ENV = "POSLAB_RUNS_BUDGET_MB"
DEFAULT_BUDGET_MB = 500
ACTIVE = ("queued", "running")
FINISHED = ("done", "stopped", "failed", "interrupted")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # what token_urlsafe makes; nothing else names a folder
EVICTED = "evicted.json"  # ids removed for the budget, so a link to one says why it is gone
EVICTED_KEPT = 1000


class RunError(LookupError):
    """A run that cannot be shown: unknown, removed for the budget, or a damaged folder (the message says which)."""


def new_run_id() -> str:
    """An unguessable run id (128 random bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), ``None`` where that cannot be read."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_process() -> dict[str, Any]:
    """The owner record of runs started by this process: its pid and start time (a reused pid does not match)."""
    return {"pid": os.getpid(), "started": _process_start(os.getpid())}


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the process that owns a run still exists (same pid, same start time)."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    started = _process_start(pid)
    return started is None or owner.get("started") in (None, started)


@dataclass
class Run:
    """One run's record (``run.json``) and its folder."""

    id: str
    kind: str
    title: str
    settings: dict[str, Any]
    command: str
    total: int
    state: str = "queued"  # queued | running | done | stopped | failed | interrupted
    step: int = 0
    checkpoint_step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""
    notes: list[str] = field(default_factory=list)  # what a user should know about how the run went (kept over legs)
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    owner: dict[str, Any] = field(default_factory=this_process)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    folder: Path = field(default=Path("."), repr=False, compare=False)

    @property
    def active(self) -> bool:
        """Queued or running: not finished yet."""
        return self.state in ACTIVE

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint.pt"

    @property
    def has_checkpoint(self) -> bool:
        return self.checkpoint.is_file()

    def curve(self) -> list[dict[str, float]]:
        """The training metrics so far, one row per report."""
        return _read_json(self.folder / "curve.json", [])

    def rows(self) -> list[dict[str, Any]]:
        """A sweep's rows (empty until it is done)."""
        return _read_json(self.folder / "rows.json", [])

    def status(self) -> str:
        """One line: the title, the state and how far it got."""
        where = {"stopped": f"stopped at step {self.checkpoint_step:,} of {self.total:,}",
                 "interrupted": f"interrupted at step {self.checkpoint_step:,} of {self.total:,} (its last checkpoint)",
                 "failed": f"failed: {self.error}"}.get(self.state, f"{self.state}, {self.step:,} of {self.total:,}")
        return f"{self.title}: {where}"

    def as_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("folder")
        return record


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


class RunStore:
    """Runs in one folder (default ``cache_dir()/runs``), kept within a size budget in bytes."""

    def __init__(self, root: Path | None = None, budget_bytes: int | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "runs"
        self.budget_bytes = env_megabytes(BUDGET_ENV, DEFAULT_BUDGET_MB) if budget_bytes is None else budget_bytes
        self._lock = threading.Lock()

    def create(self, kind: str, title: str, settings: dict[str, Any], command: str, total: int) -> Run:
        """A new queued run owned by this process, its folder written; older finished runs go if over budget."""
        run = Run(new_run_id(), kind, title, settings, command, int(total))
        run.folder = self.root / run.id
        run.folder.mkdir(parents=True)
        self.save(run)
        self.evict()
        return run

    def save(self, run: Run) -> Run:
        """Write ``run.json`` atomically (its ``updated`` time set now)."""
        run.updated = time.time()
        save_json(run.as_json(), run.folder / "run.json")
        return run

    def get(self, run_id: str) -> Run:
        """The run ``run_id``; an active run whose owner is gone reads (and is saved) as ``interrupted``.
        Raises :class:`RunError` with a message for an unknown, evicted or damaged run."""
        if not isinstance(run_id, str) or not ID_PATTERN.match(run_id):
            raise RunError("That is not a run id: a run's link carries a 22-character id.")
        folder = self.root / run_id
        if not folder.is_dir():
            if run_id in _read_json(self.root / EVICTED, []):
                raise RunError(f"Run {run_id} was removed to keep the run store within its size budget "
                               f"({BUDGET_ENV}); its files are gone.")
            raise RunError(f"No run {run_id} on this server (a link from another server, or a mistyped id).")
        try:
            record = json.loads((folder / "run.json").read_text())
            run = Run(**{k: v for k, v in record.items() if k != "folder"})
        except (OSError, ValueError, TypeError) as err:
            raise RunError(f"Run {run_id} is damaged (its run.json cannot be read: {type(err).__name__}); "
                           "it is left out.") from err
        if run.id != run_id or run.state not in ACTIVE + FINISHED:
            raise RunError(f"Run {run_id} is damaged (its run.json does not describe it); it is left out.")
        run.folder = folder
        if run.active and not owner_alive(run.owner):
            run.state, run.message = "interrupted", "its server or command stopped while it ran"
            self.save(run)
        return run

    def list(self) -> tuple[list[Run], list[str]]:
        """Every readable run, newest first, and a message for each damaged folder."""
        runs, problems = [], []
        if not self.root.is_dir():
            return runs, problems
        for folder in self.root.iterdir():
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            try:
                runs.append(self.get(folder.name))
            except RunError as err:
                problems.append(str(err))
        return sorted(runs, key=lambda r: r.created, reverse=True), problems

    def evict(self) -> list[str]:
        """Remove the oldest finished runs until the store fits its budget; never an active run. The removed ids."""
        with self._lock:
            runs, _ = self.list()
            sizes = {run.id: _folder_bytes(run.folder) for run in runs}
            removed = over_budget([(r.id, sizes[r.id], r.updated) for r in runs if not r.active], sum(sizes.values()),
                                  self.budget_bytes)
            for run_id in removed:
                shutil.rmtree(self.root / run_id, ignore_errors=True)
            if removed:
                evicted = _read_json(self.root / EVICTED, [])
                save_json((evicted + removed)[-EVICTED_KEPT:], self.root / EVICTED)
            return removed

    def request_stop(self, run: Run) -> None:
        """Ask a run to stop at its next step, whichever process runs it (a ``stop`` file in its folder)."""
        (run.folder / "stop").touch()

    def recorder(self, run: Run, stop: StopToken | None = None) -> Recorder:
        """What the work of ``run`` reports through (progress, checkpoints, result)."""
        return Recorder(self, run, stop or StopToken())


class RunStop(StopToken):
    """A stop token also set by a ``stop`` file in the run's folder (a Stop from another process or session)."""

    def __init__(self, token: StopToken, flag: Path) -> None:
        super().__init__()
        self._token, self._flag = token, flag

    def stop(self) -> None:
        self._token.stop()

    @property
    def stopped(self) -> bool:
        if not self._token.stopped and self._flag.exists():
            self._token.stop()
        return self._token.stopped

    def check(self) -> None:
        if self.stopped:
            raise Stopped()


class Recorder:
    """The work side of a run: ``on_progress`` and ``stop`` for the engine call, ``checkpointed(step)`` after each
    checkpoint, and ``finish`` / ``fail`` / ``stopped`` for how it ended. Progress is saved at most every second."""

    SAVE_EVERY_S = 1.0

    def __init__(self, store: RunStore, run: Run, token: StopToken) -> None:
        self.store, self.run = store, run
        self.stop = RunStop(token, run.folder / "stop")
        self._curve: list[dict[str, float]] = run.curve()
        self._saved = 0.0
        self._counted = run.total == 0  # a sweep: its reports set the total (images), there are no training steps
        self.closed = False  # set when this process exits: the run is recorded as interrupted and nothing more

    def start(self) -> None:
        """Mark the run running in this process (a continued run: a new leg from its checkpoint)."""
        (self.run.folder / "stop").unlink(missing_ok=True)
        kept = self.run.checkpoint_step if self.run.has_checkpoint else 0
        self._curve = [row for row in self._curve if 0 < row.get("step", 0) <= kept]
        self.run.state, self.run.error, self.run.message, self.run.owner = "running", None, "", this_process()
        self.store.save(self.run)

    def on_progress(self, p: Progress) -> None:
        """The engine's progress callback: step, metrics and the curve (saved at most every second)."""
        if p.message == "training":  # the training loop's reports (steps counted from the run's start); others
            self.run.step = p.done  # (evaluation, sweeps) only say what it does
            self._curve.append({"step": self.run.step, **p.metrics})
        elif self._counted:
            self.run.step, self.run.total = p.done, p.total
        self.run.metrics, self.run.message = dict(p.metrics), p.message
        now = time.monotonic()
        if now - self._saved >= self.SAVE_EVERY_S or p.done >= p.total:
            self._flush()
            self._saved = now

    def train_state(self) -> TrainState:
        """Where the run's training picks up: step 0, or the state its checkpoint keeps. A checkpoint written without
        the optimizer's state continues at its step with a fresh Adam, and the run's notes say so."""
        run = self.run
        if not (run.has_checkpoint and 0 < run.checkpoint_step < run.total):
            return TrainState()
        state = read_train_state(run.checkpoint)
        if state is not None:
            return state
        self.note(f"Continued from step {run.checkpoint_step:,} with a fresh Adam optimizer: its checkpoint holds no "
                  "optimizer state, so the weights differ from a run never stopped.")
        return TrainState(run.checkpoint_step)

    def note(self, text: str) -> None:
        """Add a line to the run's notes (shown with it), saved now."""
        self.run.notes.append(text)
        self._flush()

    def checkpointed(self, step: int) -> None:
        """The lab wrote ``checkpoint.pt`` holding ``step`` steps (counted over every leg)."""
        self.run.checkpoint_step = int(step)
        self._flush()

    def _flush(self) -> None:
        if self.closed:
            return
        save_json(self._curve, self.run.folder / "curve.json")
        self.store.save(self.run)

    def finish(self, result: dict[str, Any] | None = None, rows: list[dict[str, Any]] | None = None) -> None:
        """The work ended: keep its result (JSON-able), its rows and the curve as CSV."""
        if rows is not None:
            save_json(rows, self.run.folder / "rows.json")
            if rows:
                write_csv(rows, self.run.folder / "rows.csv")
        if self._curve:
            write_csv(self._curve, self.run.folder / "curve.csv")
        self.run.result = result or {}
        self.run.state, self.run.step = "done", self.run.total
        self._flush()
        self.store.evict()

    def stopped(self) -> None:
        """Stopped by a user: the run keeps its last checkpoint (and can be continued from it)."""
        (self.run.folder / "stop").unlink(missing_ok=True)
        if self._curve:
            write_csv(self._curve, self.run.folder / "curve.csv")
        self.run.state = "stopped"
        self._flush()

    def fail(self, error: str) -> None:
        self.run.state, self.run.error = "failed", error
        self._flush()

    def interrupt(self) -> None:
        """This process is exiting with the run unfinished: it reads as interrupted, from its last checkpoint."""
        self.run.state, self.run.message = "interrupted", "the server stopped while it ran"
        self._flush()
        self.closed = True


def checkpoint_every(total: int) -> int:
    """How often (in steps) a run of ``total`` steps writes its checkpoint: about ten times per run, 5 to 100 steps apart."""
    return max(5, min(100, total // 10))


def run_recorded(recorder: Recorder, work: Callable[[Recorder], Any]) -> Any:
    """Run ``work(recorder)`` (which ends with ``recorder.finish``) and record a stop or a failure; what it returned."""
    recorder.start()
    try:
        value = work(recorder)
    except Stopped:
        recorder.stopped()
        return None
    except Exception as err:
        recorder.fail(f"{type(err).__name__}: {err}")
        raise
    return value

