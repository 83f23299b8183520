"""Long work from the pages (training, full-set sweeps) as runs of the run store (``engine.core.runs``), shown here.

``start_run(run, work)`` queues ``work(recorder)`` on the server's worker pool; the page's URL then carries the run
id (``?run=<id>``), so a reload, a second tab or a shared link reattaches to it: :func:`run_status` draws progress and
Stop while it runs (polling only then), the downloads and Continue once it has ended. A run whose browser went away
runs on to its end and keeps its pool slot. Limits: ``$POSLAB_MAX_JOBS_PER_SESSION`` runs of a kind per session
(default 1) and ``$POSLAB_MAX_HEAVY`` runs computing at once on the server (default: the CPU count); later runs wait
in a queue whose position they show.
"""
from __future__ import annotations

import atexit
import datetime
import os
import queue
import threading
import traceback
from collections.abc import Callable
from typing import Any

import streamlit as st

from engine.core import paths
from engine.core.progress import StopToken
from engine.core.runs import Recorder, Run, RunError, RunStore, run_recorded, this_process
from ui.export import download_buttons
from ui.paths import bind_address

PER_SESSION_ENV, HEAVY_ENV = "POSLAB_MAX_JOBS_PER_SESSION", "POSLAB_MAX_HEAVY"
POLL_SECONDS = 1.0
Work = Callable[[Recorder], Any]


def _limit(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


class Pool:
    """Daemon worker threads running queued runs in order (a stopping server never waits on them: their runs read as
    interrupted afterwards); the queue's order gives each waiting run its position."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._queue: queue.Queue[tuple[Recorder, Work]] = queue.Queue()
        self._lock = threading.Lock()
        self.waiting: list[str] = []  # ids queued and not yet started, oldest first
        self.recorders: dict[str, Recorder] = {}  # every run of this process not yet ended
        self._threads: list[threading.Thread] = []

    def submit(self, recorder: Recorder, work: Work) -> None:
        with self._lock:
            self.waiting.append(recorder.run.id)
            self.recorders[recorder.run.id] = recorder
            if len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name=f"poslab-run-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._queue.put((recorder, work))

    def position(self, run_id: str) -> tuple[int, int] | None:
        """(position, queue length) of a waiting run, else ``None``."""
        with self._lock:
            return (self.waiting.index(run_id) + 1, len(self.waiting)) if run_id in self.waiting else None

    def _work(self) -> None:
        while True:
            recorder, work = self._queue.get()
            with self._lock:
                self.waiting.remove(recorder.run.id)
            try:
                run_recorded(recorder, work)
            except Exception:  # noqa: BLE001 - recorded in the run; the worker goes on with the next
                traceback.print_exc()
            finally:
                with self._lock:
                    self.recorders.pop(recorder.run.id, None)

    def interrupt_all(self) -> None:
        """At exit: every unfinished run of this process reads as interrupted (its last checkpoint kept)."""
        with self._lock:
            for recorder in self.recorders.values():
                recorder.interrupt()
                recorder.stop.stop()


POOL = Pool(_limit(HEAVY_ENV, os.cpu_count() or 2))
atexit.register(POOL.interrupt_all)


def store() -> RunStore:
    """The server's run store (``cache_dir()/runs``, budget ``$POSLAB_RUNS_BUDGET_MB``)."""
    return RunStore()


def _session_runs(kind: str) -> list[str]:
    return st.session_state.setdefault("runs", {}).setdefault(kind, [])


def busy_message(kind: str) -> str | None:
    """Why this session cannot start another run of ``kind`` now (``None``: it can)."""
    active = []
    for run_id in _session_runs(kind):
        try:
            if store().get(run_id).active:
                active.append(run_id)
        except RunError:
            continue
    allowed = _limit(PER_SESSION_ENV, 1)
    if len(active) >= allowed:
        return (f"You have {len(active)} run{'s' * (len(active) > 1)} of this kind going (at most {allowed} at a time): "
                "stop it or wait for it to end.")
    return None


def busy_note(message: str | None) -> None:
    """``busy_message``'s note in a slot that is there whether or not it shows, so the run's fragment drawn below keeps
    its place (and its id) as runs start and end: a moved fragment could be drawn twice."""
    slot = st.empty()
    if message:
        slot.caption(message)


def start_run(run: Run, work: Work) -> Run:
    """Queue ``work`` for the new (or continued) ``run`` and make it this page's current run (its id in the URL)."""
    mine = _session_runs(run.kind)
    if run.id in mine:  # continued: still one run of this session, now its latest
        mine.remove(run.id)
    mine.append(run.id)
    run.state, run.owner = "queued", this_process()
    store().save(run)
    POOL.submit(store().recorder(run, StopToken()), work)
    st.query_params["run"] = run.id
    return run


def stop_run(run_id: str) -> None:
    """Stop a run at its next step (whichever process runs it); it keeps its last checkpoint."""
    recorder = POOL.recorders.get(run_id)
    if recorder is not None:
        recorder.stop.stop()
    try:
        store().request_stop(store().get(run_id))
    except RunError:
        pass


def current_run(kind: str) -> tuple[Run | None, str | None]:
    """This page's run: the one the URL names (a reload, a second tab, a link), else this session's latest of ``kind``;
    or ``None`` and why, when the URL names a gone, damaged or other-kind run."""
    run_id = st.query_params.get("run")
    if run_id is None:
        mine = _session_runs(kind)
        run_id = mine[-1] if mine else None
    if run_id is None:
        return None, None
    try:
        run = store().get(run_id)
    except RunError as err:
        return None, str(err)
    if run.kind != kind:
        return None, f"This link's run is a {run.kind} run ({run.title}): it is shown on its own page."
    return run, None


def _label(run: Run) -> str:
    if run.state == "queued":
        place = POOL.position(run.id)
        return (f"{run.title}: the server is busy, your run is queued (position {place[0]} of {place[1]})"
                if place else f"{run.title}: queued")
    label = run.status()
    if run.state == "running" and run.metrics:
        label += " · " + ", ".join(f"{k} {v:.3g}" for k, v in run.metrics.items())
    if run.state == "running" and run.message and run.message != "training":
        label += f" · {run.message}"
    return label


def _fraction(run: Run) -> float:
    if run.state == "done":
        return 1.0
    done = run.checkpoint_step if run.state in ("stopped", "interrupted") else run.step
    return min(1.0, done / run.total) if run.total else 0.0


def render_run(run: Run, chart: Callable[[list[dict[str, float]]], None] | None = None,
               resume: Work | None = None) -> None:
    """Progress bar and state of ``run``, its live chart, Stop while it is active; once ended, its downloads and (with
    ``resume`` and a checkpoint) Continue."""
    st.progress(_fraction(run), text=_label(run))
    curve = run.curve()
    if chart is not None and curve:
        chart(curve)
    for line in run.notes:
        st.caption(line)
    if run.active:
        st.button("Stop", key=f"stop:{run.id}", on_click=stop_run, args=(run.id,), type="secondary")
        return
    if run.state == "failed":
        st.error(f"{run.title} failed: {run.error}")
    elif run.state in ("stopped", "interrupted"):
        kept = (f"the model at its last checkpoint (step {run.checkpoint_step:,} of {run.total:,}) is kept"
                if run.has_checkpoint else "nothing was kept (a sweep keeps its rows once it is done; a training its "
                                           "model from its first checkpoint on)")
        st.warning(f"{run.title} was {run.state}; {kept}.")
    if resume is not None and run.state != "done" and run.has_checkpoint and run.checkpoint_step < run.total:
        st.button(f"Continue to step {run.total:,}", key=f"continue:{run.id}", on_click=_resume, args=(run.id, resume),
                  disabled=busy_message(run.kind) is not None)
    downloads(run)


def _resume(run_id: str, work: Work) -> None:
    start_run(store().get(run_id), work)


def downloads(run: Run) -> None:
    """The run's checkpoint, curve and rows as files (the checkpoint is what ``--checkpoint``, ``--init`` and the
    sidebar's upload take)."""
    stem = f"{run.kind}-{run.id[:8]}"
    if run.has_checkpoint:
        st.download_button("Checkpoint (.pt)", run.checkpoint.read_bytes, f"{stem}.pt", "application/octet-stream",
                           key=f"dl:{stem}.pt", on_click="ignore", icon=":material/download:", type="tertiary")
    curve, rows = run.curve(), run.rows()
    if curve:
        st.caption("Training curve:")
        download_buttons(curve, f"{stem}-curve")
    if rows:
        st.caption("Rows:")
        download_buttons(rows, f"{stem}-rows")
    st.caption(f"Run `{run.id}` · remake it with `{run.command}`")


def run_status(kind: str, chart: Callable[[list[dict[str, float]]], None] | None = None,
               resume: Work | None = None) -> Run | None:
    """This page's run of ``kind`` drawn in a fragment that polls every second only while the run is active (and
    reruns the page once when it ends); the run as this rerun found it."""
    run, problem = current_run(kind)
    if problem:
        st.warning(problem)
    if run is None:
        return None

    @st.fragment(run_every=POLL_SECONDS if run.active else None)
    def status() -> None:
        try:
            now = store().get(run.id)
        except RunError as err:
            st.warning(str(err))
            return
        render_run(now, chart, resume)
        if run.active != now.active:  # ended (the page shows what it made), or continued here (polling starts)
            st.rerun()

    status()
    return run


def recent_runs(kind: str, limit: int = 10) -> None:
    """On a localhost-bound server: the server's recent runs of ``kind`` (pages' and the CLI's), each a link to reattach.
    A shared server lists none: a run is reached only through its link."""
    if not paths.is_local(bind_address()):
        return
    runs = [r for r in store().list()[0] if r.kind == kind][:limit]
    if not runs:
        return
    with st.expander(f"Recent runs on this server ({len(runs)})"):
        for run in runs:
            when = datetime.datetime.fromtimestamp(run.created).strftime("%Y-%m-%d %H:%M")
            st.button(f"{run.status()} · {when}", key=f"recent:{run.id}", type="tertiary",
                      on_click=st.query_params.update, kwargs={"run": run.id})
