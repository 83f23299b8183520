"""A job's status fragment polls the server only while the session's job is active: an idle tab costs nothing."""
from __future__ import annotations

import time

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue
from streamlit.testing.v1 import AppTest


def page() -> None:
    import time

    import streamlit as st

    from ui.jobs import get_job, job_status, render_job, start_job

    def work(job) -> str:
        while not job.stop.stopped:
            time.sleep(0.01)
        job.stop.check()

    if st.button("Start"):
        start_job("k", "waiting", work)
    job_status("k", render_job)
    st.session_state.job = get_job("k")


@pytest.fixture
def polls(monkeypatch) -> list[float]:
    """The auto-rerun intervals the script asked the browser for, since the list was last cleared."""
    seen: list[float] = []
    enqueue = ForwardMsgQueue.enqueue

    def recording(self, msg: ForwardMsg) -> None:
        if msg.WhichOneof("type") == "auto_rerun":
            seen.append(msg.auto_rerun.interval)
        enqueue(self, msg)

    monkeypatch.setattr(ForwardMsgQueue, "enqueue", recording)
    return seen


def test_the_status_fragment_polls_only_while_a_job_runs(polls):
    at = AppTest.from_function(page, default_timeout=30).run()
    assert not at.exception and at.session_state.job is None
    assert polls == []  # no job: nothing polls
    at.button[0].click().run()
    job = at.session_state.job
    assert job.active and polls == [1.0]  # the job's progress reruns every second
    assert any("waiting: running" in p.proto.text for p in at.get("progress"))
    polls.clear()
    next(b for b in at.button if b.label == "Stop").click().run()
    job.future.result(timeout=30)
    deadline = time.monotonic() + 10
    while job.active and time.monotonic() < deadline:
        time.sleep(0.05)
    polls.clear()
    at.run()
    assert not at.exception and job.state == "stopped"
    assert polls == []  # the job is over: the page no longer polls
    assert any("was stopped" in w.value for w in at.warning)
