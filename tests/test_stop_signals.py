"""SIGTERM stops a real ``gatebot serve`` / ``gatebot clock`` the way Ctrl-C does: drain, stop the scheduler,
release the job lease, exit 0 (Heroku, systemd, Docker and Kubernetes all stop processes with SIGTERM).

Real processes on a SQLite file and the built-in sandbox; the test waits for the lease to be held (and for
``serve`` to answer ``/healthz``) before it signals, so the process's own handlers are in place.
``gatebot socket`` installs the same handlers (:func:`gatebot.signals.stop_on_signals`) but needs a real
Socket Mode websocket, which the emulator does not offer: it is not run here.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from gatebot import monitor
from gatebot.emulator import EmulatorServer, running_emulator
from gatebot.store.db import Database, make_engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with running_emulator() as emu:
        yield emu


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(what: str, proc: subprocess.Popen[str], check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the process exited ({proc.returncode}) before {what}:\n{err}")
        try:
            if callable(check) and check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.05)
    pytest.fail(f"no {what} within {timeout} s")


@pytest.mark.parametrize(("command", "sig"), [
    ("serve", signal.SIGTERM), ("serve", signal.SIGINT), ("clock", signal.SIGTERM),
], ids=["serve-SIGTERM", "serve-SIGINT", "clock-SIGTERM"])
def test_sigterm_drains_stops_the_scheduler_releases_the_lease_and_exits_0(
    command: str, sig: signal.Signals, tmp_path: Path, sqlite_head_template: Path, emulator: EmulatorServer
) -> None:
    db_file = tmp_path / "gatebot.db"
    shutil.copyfile(sqlite_head_template, db_file)
    url = f"sqlite:///{db_file}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEBOT_", "GATE_", "SLACK_"))}
    env.update({"DATABASE_URL": url, "PYTHONUNBUFFERED": "1", "GATEBOT_ENV": "development", "PORT": str(port),
                "SLACK_BOT_TOKEN": "xoxb-emulator-token", "SLACK_SIGNING_SECRET": "stop-signals-secret",
                "SLACK_API_URL": emulator.api_url})
    args = ["serve", "--host", "127.0.0.1"] if command == "serve" else [command]
    proc = subprocess.Popen([sys.executable, "-m", "gatebot", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    db = Database(make_engine(url))
    try:
        def holds_lease() -> bool:
            holder = monitor.scheduler_status(db, datetime.now(UTC))["holder"]
            return isinstance(holder, str) and holder.split(":")[1] == str(proc.pid)

        wait_until("the scheduler lease is held", proc, holds_lease)
        if command == "serve":
            wait_until("/healthz answers", proc,
                       lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code in (200, 503))

        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, f"exit {proc.returncode}\n{err}"
        assert "Traceback" not in err, err
        assert monitor.scheduler_status(db, datetime.now(UTC))["holder"] is None  # released on the way out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        db.dispose()
