"""The pages' view of the run store (ui/jobs.py) without a browser: the URL's run, one run per session and kind, the
server-wide queue with its position, Stop, polling only while a run is active, and a server that exits mid-run."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from engine.core.runs import RunStore
from ui import jobs


@pytest.fixture(autouse=True)
def session(monkeypatch, tmp_path) -> dict:
    """One browser session: plain dicts for its state and its URL's parameters; a run store of its own."""
    state: dict = {}
    monkeypatch.setattr(jobs.st, "session_state", state)
    monkeypatch.setattr(jobs.st, "query_params", {})
    monkeypatch.setattr(jobs, "store", lambda: RunStore(tmp_path / "runs"))
    return state


def until_stopped(started: threading.Event):
    """Work that signals ``started`` and then runs until its run is stopped."""
    def work(rec) -> None:
        started.set()
        while True:
            rec.stop.check()
            time.sleep(0.01)
    return work


def wait_for(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_started_run_is_the_pages_run_and_a_second_of_its_kind_waits_for_it():
    started = threading.Event()
    run = jobs.start_run(jobs.store().create("probe", "first", {}, "c", 10), until_stopped(started))
    assert started.wait(30) and jobs.st.query_params["run"] == run.id
    assert jobs.current_run("probe") == (jobs.store().get(run.id), None)
    assert "at most 1 at a time" in jobs.busy_message("probe")
    assert jobs.busy_message("shift") is None  # one run per kind
    jobs.stop_run(run.id)  # what the Stop button calls
    wait_for(lambda: jobs.store().get(run.id).state == "stopped")
    assert jobs.busy_message("probe") is None
    started.clear()
    jobs.start_run(jobs.store().get(run.id), until_stopped(started))  # what Continue calls: the same run, counted once
    assert started.wait(30) and jobs.busy_message("probe").startswith("You have 1 run of this kind going")
    jobs.stop_run(run.id)
    wait_for(lambda: jobs.store().get(run.id).state == "stopped")


def test_a_link_to_another_kind_or_a_gone_run_says_so():
    run = jobs.store().create("probe", "probe run", {}, "c", 10)
    jobs.st.query_params["run"] = run.id
    assert jobs.current_run("shift")[1].startswith("This link's run is a probe run")
    jobs.st.query_params["run"] = "x" * 22
    assert "No run" in jobs.current_run("probe")[1]


def test_runs_beyond_the_servers_limit_queue_and_show_their_position(monkeypatch):
    monkeypatch.setattr(jobs, "POOL", jobs.Pool(1))
    started = threading.Event()
    first = jobs.start_run(jobs.store().create("probe", "first", {}, "c", 10), until_stopped(started))
    assert started.wait(30)
    jobs.st.session_state.clear()  # another browser session
    second = jobs.start_run(jobs.store().create("probe", "second", {}, "c", 10), lambda rec: rec.finish())
    queued = jobs.store().get(second.id)
    assert queued.state == "queued"
    assert "the server is busy, your run is queued (position 1 of 1)" in jobs._label(queued)
    jobs.stop_run(first.id)
    wait_for(lambda: jobs.store().get(second.id).state == "done")
    assert jobs.store().get(first.id).state == "stopped"


def test_the_status_polls_only_while_the_run_is_active(monkeypatch):
    every = []

    def fragment(run_every=None):
        every.append(run_every)
        return lambda f: (lambda: None)

    monkeypatch.setattr(jobs.st, "fragment", fragment)
    assert jobs.run_status("probe") is None and every == []  # no run: no fragment, no polling
    run = jobs.store().create("probe", "t", {}, "c", 10)
    jobs.st.query_params["run"] = run.id
    jobs.run_status("probe")  # queued in this process: polls
    run.state = "done"
    jobs.store().save(run)
    jobs.run_status("probe")
    assert every == [jobs.POLL_SECONDS, None]


def test_a_server_exits_while_a_run_still_runs_and_the_run_reads_interrupted(tmp_path):
    """Daemon workers: the process exits at once; its run is then interrupted, with its last checkpoint step."""
    script = textwrap.dedent(f"""
        import threading, time
        import streamlit as st
        from engine.core.runs import RunStore
        from ui import jobs
        st.session_state, st.query_params = {{}}, {{}}
        jobs.store = lambda: RunStore({str(tmp_path)!r})
        started = threading.Event()
        def work(rec):
            rec.checkpointed(3)
            started.set()
            while True:
                rec.stop.check()
                time.sleep(0.01)
        run = jobs.start_run(jobs.store().create("probe", "forever", {{}}, "c", 10), work)
        assert started.wait(60)
        print(run.id)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run = RunStore(tmp_path).get(done.stdout.strip())
    assert run.state == "interrupted" and run.checkpoint_step == 3
