"""Background jobs for long work (training, sweeps): a thread per job, progress polled by a fragment.

The job runs an engine function with ``on_progress`` and ``stop``; the page shows its progress
bar, live metrics and a stop button, and reads ``result`` once it is done. A stopped or failed job
keeps nothing: engine functions write files atomically or not at all.
"""
from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from engine.progress import Progress, StopToken, Stopped


@dataclass
class Job:
    """One piece of long work running in a thread."""

    title: str
    stop: StopToken = field(default_factory=StopToken)
    progress: Progress | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    result: Any = None
    error: str | None = None
    state: str = "running"  # running | done | stopped | failed
    consumed: bool = False

    def on_progress(self, p: Progress) -> None:
        self.progress = p
        self.history.append({"step": p.done, **p.metrics})


def start_job(key: str, title: str, work: Callable[[Job], Any]) -> Job:
    """Start ``work(job)`` in a thread and remember the job under ``key`` in this session."""
    job = Job(title)

    def run() -> None:
        try:
            job.result = work(job)
            job.state = "done"
        except Stopped:
            job.state = "stopped"
        except Exception as err:  # noqa: BLE001 - shown to the user, never a traceback box
            job.error = f"{type(err).__name__}: {err}"
            job.state = "failed"
            traceback.print_exc()

    st.session_state[f"job:{key}"] = job
    threading.Thread(target=run, name=f"poslab-{key}", daemon=True).start()
    return job


def get_job(key: str) -> Job | None:
    """The job last started under ``key`` in this session, if any."""
    return st.session_state.get(f"job:{key}")


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
    if job.state == "running":
        st.button("Stop", key=f"stop:{job.title}", on_click=job.stop.stop, type="secondary")
    elif job.state == "failed":
        st.error(f"{job.title} failed: {job.error}")
    elif job.state == "stopped":
        st.warning(f"{job.title} was stopped; nothing was kept.")
