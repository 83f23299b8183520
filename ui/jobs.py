"""Background jobs for long work (training, sweeps): one thread pool for the server, one job per session and kind.

``start_job(key, title, work)`` runs ``work(job)`` on :data:`EXECUTOR`; the work reports through ``job.on_progress``
and checks ``job.stop`` between steps. The page shows the job with :func:`job_status` (a fragment calling, e.g.,
:func:`render_job`: progress bar, live metrics, a stop button), which polls only while the job is active, so an idle
tab costs the server nothing; it reads ``result`` once the job is done. A session holds one job per ``key``: starting
another under the same key stops the running one first (it ends "stopped" at its next step), so no job is ever
left running where no Stop button reaches it. A stopped or failed job keeps nothing: engine functions write files
atomically or not at all.
"""
from __future__ import annotations

import threading
import traceback
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from engine.core.progress import Progress, Stopped, StopToken

POLL_SECONDS = 1.0  # how often an active job's status fragment reruns
MAX_RUNNING = 4  # jobs computing at once over all sessions; later ones wait, shown as "queued"
EXECUTOR = ThreadPoolExecutor(max_workers=MAX_RUNNING, thread_name_prefix="poslab-job")
_TOKENS: weakref.WeakSet[StopToken] = weakref.WeakSet()  # the stop token of every job not yet garbage


def stop_all() -> None:
    """Ask every job to stop: the pool's threads are joined at exit, so a stopping server must not wait on long work."""
    for token in list(_TOKENS):
        token.stop()


# Runs before the executor's own exit hook joins its threads (threading runs these hooks last-registered first).
threading._register_atexit(stop_all)


@dataclass
class Job:
    """One piece of long work on the shared pool: its progress, stop token, outcome and future."""

    key: str
    title: str
    stop: StopToken = field(default_factory=StopToken)
    progress: Progress | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    result: Any = None
    error: str | None = None
    state: str = "queued"  # queued | running | done | stopped | failed
    consumed: bool = False
    future: Future | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        """Queued or running: not finished yet."""
        return self.state in ("queued", "running")

    def on_progress(self, p: Progress) -> None:
        """The ``on_progress`` callback for the work: keep the latest report and the metrics' history."""
        self.progress = p
        self.history.append({"step": p.done, **p.metrics})

    def run(self, work: Callable[[Job], Any]) -> None:
        """Run ``work(self)`` and record how it ended (what the pool executes)."""
        try:
            self.stop.check()  # stopped while it was queued
            self.state = "running"
            self.result = work(self)
            self.state = "done"
        except Stopped:
            self.state = "stopped"
        except Exception as err:  # noqa: BLE001 - shown to the user, never a traceback box
            self.error = f"{type(err).__name__}: {err}"
            self.state = "failed"
            traceback.print_exc()


def _slot(key: str) -> str:
    """The session-state entry of the job ``key``."""
    return f"job:{key}"


def start_job(key: str, title: str, work: Callable[[Job], Any]) -> Job:
    """Submit ``work(job)`` as this session's job ``key``, first stopping the job still active under that key."""
    previous = get_job(key)
    if previous is not None and previous.active:
        previous.stop.stop()
    job = Job(key, title)
    _TOKENS.add(job.stop)
    st.session_state[_slot(key)] = job
    job.future = EXECUTOR.submit(job.run, work)
    return job


def get_job(key: str) -> Job | None:
    """The job last started under ``key`` in this session, if any."""
    return st.session_state.get(_slot(key))


def job_status(key: str, render: Callable[[Job], None]) -> None:
    """``render(job)`` for this session's job ``key`` in a fragment that reruns every :data:`POLL_SECONDS` while the
    job is active and never otherwise (nothing when there is none). Starting a job reruns the page, which starts the
    polling; when the job ends, a rerun of the page stops it."""
    job = get_job(key)
    polling = job is not None and job.active

    @st.fragment(run_every=POLL_SECONDS if polling else None)
    def status() -> None:
        current = get_job(key)
        if current is None:
            return
        render(current)
        if polling and not current.active:
            st.rerun()

    status()


def render_job(job: Job, chart: Callable[[list[dict[str, float]]], None] | None = None) -> None:
    """Progress bar, latest metrics, optional live chart and a stop button for ``job``."""
    p = job.progress
    label = f"{job.title}: {job.state}"
    if p is not None:
        metrics = ", ".join(f"{k} {v:.3g}" for k, v in p.metrics.items())
        label += f" · {p.done}/{p.total} {metrics}"
    st.progress(p.fraction if p else 0.0, text=label)
    if chart is not None and job.history:
        chart(job.history)
    if job.active:
        st.button("Stop", key=f"stop:{job.key}", on_click=job.stop.stop, type="secondary")
    elif job.state == "failed":
        st.error(f"{job.title} failed: {job.error}")
    elif job.state == "stopped":
        st.warning(f"{job.title} was stopped; nothing was kept.")


def take_result(job: Job) -> Any:
    """A finished job's result the first time it is asked for, else ``None``: each result is used once."""
    if job.state != "done" or job.consumed:
        return None
    job.consumed = True
    return job.result
