"""Crash-test workers started one ahead, so a SIGKILL test pays for a Python start once, not once per kill.

A worker run with ``--wait-go`` imports gatebot and builds its core, prints ``READY`` and waits for a line
on stdin before it touches the work. :class:`Relay` keeps one such spare warming up while the current
worker runs; :meth:`Relay.start` releases it (``GO``) and warms the next. The spare never reads or writes
the store's rows before it is released, so it cannot see a state the killed worker is still changing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wait_for_go() -> None:
    """The worker's side: say ready, then wait for the test to release it."""
    print("READY", flush=True)
    sys.stdin.readline()


class Relay:
    def __init__(self, cmd: Sequence[str]) -> None:
        self._cmd = [*cmd, "--wait-go"]
        self._spare = self._spawn()

    def _spawn(self) -> subprocess.Popen[str]:
        return subprocess.Popen(self._cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def start(self) -> subprocess.Popen[str]:
        """The warmed-up worker, released; a new spare starts warming up behind it."""
        worker = self._spare
        assert worker.stdout is not None and worker.stdin is not None
        ready = worker.stdout.readline()
        assert ready.startswith("READY"), (ready, worker.stderr.read() if worker.stderr else "")
        worker.stdin.write("GO\n")
        worker.stdin.flush()
        self._spare = self._spawn()
        return worker

    def close(self) -> None:
        self._spare.kill()
        self._spare.communicate()
