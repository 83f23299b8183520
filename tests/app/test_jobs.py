"""The job runner (ui/jobs.py) without a browser: one job per session and key, stop, queue and failure."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ui import jobs
from ui.jobs import Job, get_job, start_job, stop_all


@pytest.fixture(autouse=True)
def session(monkeypatch) -> dict:
    """One browser session's state: a plain dict in place of ``st.session_state``."""
    state: dict = {}
    monkeypatch.setattr(jobs.st, "session_state", state)
    return state


def until_stopped(started: threading.Event):
    """Work that signals ``started`` and then runs until its job is stopped."""
    def work(job: Job) -> None:
        started.set()
        while True:
            job.stop.check()
            time.sleep(0.01)
    return work


def test_a_second_start_under_the_same_key_stops_the_first():
    started = threading.Event()
    first = start_job("gp_train", "first", until_stopped(started))
    assert started.wait(30) and first.state == "running"
    second = start_job("gp_train", "second", lambda job: 42)
    assert get_job("gp_train") is second
    first.future.result(timeout=30)
    second.future.result(timeout=30)
    assert first.state == "stopped" and first.result is None
    assert second.state == "done" and second.result == 42


def test_jobs_under_other_keys_keep_running_until_their_stop():
    started = threading.Event()
    training = start_job("gp_train", "training", until_stopped(started))
    assert started.wait(30)
    assert start_job("shift_train", "other", lambda job: "ok").future.result(timeout=30) is None
    assert training.state == "running" and get_job("shift_train").result == "ok"
    training.stop.stop()  # what the Stop button calls
    training.future.result(timeout=30)
    assert training.state == "stopped" and not training.active


def test_a_job_stopped_while_queued_never_runs():
    ran = []
    job = Job("k", "queued")
    job.stop.stop()
    job.run(ran.append)
    assert job.state == "stopped" and not ran


def test_a_failing_job_reports_its_error():
    def work(job: Job) -> None:
        raise ValueError("bad data")

    job = start_job("gp_train", "failing", work)
    job.future.result(timeout=30)
    assert job.state == "failed" and job.error == "ValueError: bad data"


def test_stop_all_stops_every_running_job():
    started = threading.Event()
    job = start_job("gp_train", "training", until_stopped(started))
    assert started.wait(30)
    stop_all()
    job.future.result(timeout=30)
    assert job.state == "stopped"


def test_a_server_exits_while_a_job_still_runs():
    """The pool's threads are joined at exit: without stop_all a stopping server would wait for the job to end."""
    script = textwrap.dedent("""
        import threading, time
        import streamlit as st
        from ui import jobs
        st.session_state = {}
        started = threading.Event()
        def work(job):
            started.set()
            while True:
                job.stop.check()
                time.sleep(0.01)
        jobs.start_job("gp_train", "forever", work)
        assert started.wait(60)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_a_finished_result_is_taken_once():
    from ui.jobs import Job, take_result

    job = Job("k", "t")
    assert take_result(job) is None  # still queued
    job.run(lambda j: 42)
    assert take_result(job) == 42 and take_result(job) is None
