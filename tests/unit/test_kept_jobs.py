"""engine.core.kept_jobs: jobs kept by name, started once, found again in memory, on disk, or (uploads) not at all."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from engine.core.kept_jobs import KeptJobs
from engine.core.storage import REPO_ROOT


def test_a_job_runs_once_and_is_found_again_in_memory_then_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path))
    calls, release = [], threading.Event()

    def work() -> list[dict]:
        calls.append(1)
        release.wait(30)
        return [{"accuracy": 91.5}]

    jobs = KeptJobs("kept-test")
    first = jobs.start("a", work, {"seed": 3})
    assert jobs.start("a", work, {"seed": 3}) is first and jobs.find("a") is first  # pending: the same job
    assert not first.rows.done() and not jobs.path("a").exists()
    release.set()
    assert first.rows.result(30) == [{"accuracy": 91.5}] and calls == [1]
    restarted = KeptJobs("kept-test")  # another process: only the cache folder in common
    assert restarted.find("a").rows.result(0) == [{"accuracy": 91.5}] and calls == [1]
    assert restarted.start("a", work, {"seed": 3}).rows.result(0) == [{"accuracy": 91.5}] and calls == [1]
    assert restarted.find("b") is None


def test_an_unkept_job_stays_in_memory_and_a_damaged_file_is_computed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path))
    jobs = KeptJobs("kept-test")
    jobs.start("upload", lambda: [{"n": 1}], {}, persist=False).rows.result(30)
    assert jobs.find("upload", persist=False) is not None and not jobs.path("upload").exists()
    assert KeptJobs("kept-test").find("upload", persist=False) is None
    jobs.path("bad").parent.mkdir(parents=True)
    jobs.path("bad").write_text("{not json")
    assert jobs.find("bad") is None
    assert jobs.start("bad", lambda: [{"n": 2}], {}).rows.result(30) == [{"n": 2}]
    assert KeptJobs("kept-test").find("bad").rows.result(0) == [{"n": 2}]  # replaced by the recomputed rows


def test_only_the_latest_finished_jobs_stay_in_memory_and_pending_ones_are_never_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path))
    release = threading.Event()
    jobs = KeptJobs("kept-test", workers=2, max_done=2)
    pending = jobs.start("pending", lambda: release.wait(30) and [], {}, persist=False)
    for name in "abc":
        jobs.start(name, list, {}, persist=False).rows.result(30)
    jobs.start("d", list, {}, persist=False).rows.result(30)
    assert jobs.find("a", persist=False) is None and jobs.find("pending", persist=False) is pending
    release.set()



def test_a_job_still_computing_does_not_hold_up_the_process_when_it_stops(tmp_path):
    script = ("import time\nfrom engine.core.kept_jobs import KeptJobs\n"
              "job = KeptJobs('kept-test').start('slow', lambda: time.sleep(60) or [], {}, persist=False)\n"
              "time.sleep(0.5)\nassert job.rows.running()\n")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env={**os.environ, "POSLAB_CACHE": str(tmp_path)},
                          capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 30  # the worker is a daemon: the 60 s job is left, not waited for
