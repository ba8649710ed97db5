"""Two ``gatebot clock`` processes on the local PostgreSQL: exactly one runs the jobs; SIGKILL it and the
other takes over within one lease period (2 s here). Real processes, real time; a fresh schema."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gatebot import monitor
from gatebot.store.db import Database, make_engine, upgrade

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TTL = 2.0
WORKER = Path(__file__).with_name("lease_worker.py")


class Worker:
    """One worker process and the lines it printed: ``(monotonic time, words...)``."""

    def __init__(self, name: str, url: str, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEBOT_", "GATE_", "SLACK_"))}
        env.update({"DATABASE_URL": url, "PYTHONUNBUFFERED": "1", "GATEBOT_ENV": "development",
                    "GATEBOT_TRACK_INTERVAL": "1", "GATEBOT_HEALTH_INTERVAL": "1"})
        self.name = name
        self.proc = subprocess.Popen([sys.executable, str(WORKER), "--name", name, "--ttl", str(TTL)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
        self.lines: list[tuple[float, list[str]]] = []
        self._new: queue.Queue[tuple[float, list[str]]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            stamp, *words = raw.split()
            self._new.put((float(stamp), words))

    def _drain(self) -> None:
        while True:
            try:
                self.lines.append(self._new.get_nowait())
            except queue.Empty:
                return

    def wait_for(self, match: Callable[[list[str]], bool], *, timeout: float = 15.0) -> float:
        """The time stamp of the first line (seen so far or arriving) that matches."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            for stamp, words in self.lines:
                if match(words):
                    return stamp
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.proc.poll() is not None and self._new.empty()):
                stderr = self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""
                pytest.fail(f"worker {self.name}: no matching line within {timeout} s; got {self.lines}\n{stderr}")
            with contextlib.suppress(queue.Empty):
                self.lines.append(self._new.get(timeout=min(remaining, 0.2)))

    def count(self, word: str, *, after: float = 0.0) -> int:
        self._drain()
        return sum(1 for stamp, words in self.lines if words[:1] == [word] and stamp > after)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def store(postgres_schema_url: str) -> Iterator[tuple[str, Database]]:
    db = Database(make_engine(postgres_schema_url))
    upgrade(db.engine)
    try:
        yield postgres_schema_url, db
    finally:
        db.dispose()


def test_one_clock_runs_the_jobs_and_another_takes_over_when_it_dies(store: tuple[str, Database],
                                                                     tmp_path: Path) -> None:
    url, db = store
    a = Worker("a", url, tmp_path)
    b: Worker | None = None
    try:
        a.wait_for(lambda w: w[:2] == ["LEADER", "a"])
        b = Worker("b", url, tmp_path)
        b_started = b.wait_for(lambda w: w[:3] == ["LOG", "b", "scheduler"])
        # watch both for a while: a keeps beating, b never runs a job
        deadline = time.monotonic() + 3 * TTL / 2
        while time.monotonic() < deadline and a.count("RAN", after=b_started) < 4:
            time.sleep(0.05)
        assert a.count("RAN", after=b_started) >= 4
        assert b.count("RAN") == 0 and b.count("LEADER") == 0
        holder = monitor.scheduler_status(db, datetime.now(UTC))["holder"]
        assert isinstance(holder, str) and holder.split(":")[1] == str(a.proc.pid)

        a.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        a.proc.wait(10)
        took_over = b.wait_for(lambda w: w[:2] == ["LEADER", "b"], timeout=3 * TTL)
        b.wait_for(lambda w: w[:2] == ["RAN", "b"], timeout=3 * TTL)
        takeover = took_over - killed
        print(f"\nlease {TTL:.0f} s: b took over {takeover:.2f} s after a was SIGKILLed")
        assert takeover <= TTL + 0.5  # within one lease period (plus scheduling slack)

        b.proc.send_signal(signal.SIGTERM)
        assert b.proc.wait(15) == 0
        assert monitor.scheduler_status(db, datetime.now(UTC))["holder"] is None  # released on shutdown
        records = monitor.job_records(db)
        ran = {name for name, r in records.items() if r.last_success is not None}
        assert {"health", "catalog", "recover", "track", "balance", "deposits", "beat"} <= ran
    finally:
        a.stop()
        if b is not None:
            b.stop()
