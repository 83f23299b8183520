"""Jobs kept by their settings for every session of a server: a reload or a shared link reattaches to a job still
computing, or finds its rows once it is done.

A job runs on the registry's worker thread(s); its rows stay in memory (the latest ``max_done`` finished jobs) and,
when the job may persist, go to ``cache_dir()/<folder>/<name>.json``, so a restarted server or another process finds
them too; a job that does not persist may return any value. Names are content keys
(:func:`engine.core.storage.fingerprint` of the settings), never ``id()``. The workers are daemon threads: stopping
the server does not wait for a job still computing (what jobs write, they write atomically).
"""
from __future__ import annotations

import json
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.core.results import Row
from engine.core.storage import cache_dir, save_json


@dataclass(frozen=True)
class Job:
    """A kept job: its rows to come (or come) and when it started (``time.monotonic()``)."""

    rows: Future
    started: float


class KeptJobs:
    """Jobs by name, started at most once per name; ``find`` returns a pending one, a finished one, or one on disk."""

    def __init__(self, folder: str, workers: int = 1, max_done: int = 256) -> None:
        self.folder, self.max_done, self.workers = folder, max_done, workers
        self._queue: queue.SimpleQueue[tuple[Future, Callable[[], Any]]] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []  # started with the first job
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        """Where a finished job's rows are kept on disk."""
        return cache_dir() / self.folder / f"{name}.json"

    def find(self, name: str, persist: bool = True) -> Job | None:
        """The job ``name`` of this process (pending or finished), else its rows from disk (``persist``), else ``None``."""
        with self._lock:
            if name in self._jobs:
                self._jobs.move_to_end(name)
                return self._jobs[name]
        rows = self._read(name) if persist else None
        if rows is None:
            return None
        done: Future = Future()
        done.set_result(rows)
        return self._keep(name, Job(done, time.monotonic()))

    def start(self, name: str, work: Callable[[], Any], settings: dict[str, Any], persist: bool = True) -> Job:
        """Job ``name`` as :meth:`find` finds it, else ``work()`` started on the worker; once done its rows (with the
        ``settings`` that made them) are written to disk when ``persist``."""
        if (job := self.find(name, persist)) is not None:
            return job
        with self._lock:
            if (job := self._jobs.get(name)) is None:  # not started by another session meanwhile
                job = Job(self._submit(lambda: self._run(name, work, settings, persist)), time.monotonic())
                self._jobs[name] = job
                self._evict()
        return job

    def _submit(self, call: Callable[[], Any]) -> Future:
        """``call`` queued for the workers (started on first use; the caller holds the lock); its future."""
        future: Future = Future()
        self._queue.put((future, call))
        while len(self._threads) < self.workers:
            thread = threading.Thread(target=self._serve, name=f"poslab-{self.folder.replace('/', '-')}-{len(self._threads)}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return future

    def _serve(self) -> None:
        """A worker: run queued calls one after another, each result or error into its future."""
        while True:
            future, call = self._queue.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as err:  # noqa: BLE001  (the waiting page shows it)
                    future.set_exception(err)

    def _run(self, name: str, work: Callable[[], Any], settings: dict[str, Any], persist: bool) -> Any:
        rows = work()
        if persist:
            save_json({"settings": settings, "rows": rows}, self.path(name))
        return rows

    def _read(self, name: str) -> list[Row] | None:
        """Rows kept on disk under ``name``; ``None`` when absent or unreadable (it is then computed again)."""
        try:
            rows = json.loads(self.path(name).read_text())["rows"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return rows if isinstance(rows, list) else None

    def _keep(self, name: str, job: Job) -> Job:
        with self._lock:
            job = self._jobs.setdefault(name, job)
            self._jobs.move_to_end(name)
            self._evict()
        return job

    def _evict(self) -> None:
        """Forget the oldest finished jobs beyond ``max_done`` (pending ones stay: sessions may be waiting on them)."""
        done = [name for name, job in self._jobs.items() if job.rows.done()]
        for name in done[: max(0, len(done) - self.max_done)]:
            del self._jobs[name]
