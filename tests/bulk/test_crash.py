"""Crash safety of a bulk batch with real processes: SIGKILL during a 200-row batch at random points (at
least 5 kills), restart each time; at the end exactly 200 Gate orders, one per row, every key distinct,
none sent twice under different keys.

The sandbox answers 0.02 s after processing a request (the window a kill must land in to lose Gate's
answer) and never completes orders; the rate is 100 rows/s, so the whole test takes a few seconds of
requests plus a process start per kill.
"""

from __future__ import annotations

import json
import random
import signal
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from gatebot.store import repo
from gatebot.store.db import Database, make_engine, upgrade
from gatebot.store.models import BatchStatus
from tests.conftest import StartSandbox
from tests.relay import Relay

pytestmark = pytest.mark.slow
ROWS = 200


def _admin(url: str, path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/_sandbox/{path}", timeout=10) as answer:  # noqa: S310 - loopback
        result = json.loads(answer.read())
    assert isinstance(result, dict)
    return result


def test_sigkill_during_a_batch_never_loses_or_doubles_a_row(tmp_path: Path,
                                                             start_sandbox_process: StartSandbox) -> None:
    gate = start_sandbox_process("-m", "gatebot.sandbox", "--port", "0", "--latency", "0.02", "--log-level",
                                 "warning", "--completion-delay", "3600")
    db_url = f"sqlite:///{tmp_path / 'bulk-crash.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    rng = random.Random(20261204)
    cmd = [sys.executable, "-m", "tests.bulk.crash_worker", "--db", db_url, "--gate", gate, "--rows", str(ROWS)]
    kills = starts = 0
    deadline = time.monotonic() + 120
    relay = Relay(cmd)  # the next worker warms up while this one runs
    while time.monotonic() < deadline:
        worker = relay.start()
        starts += 1
        assert worker.stdout is not None
        first = worker.stdout.readline()
        assert first.startswith("START"), (first, worker.stderr.read() if worker.stderr else "")
        if kills < 6:  # kill at a random point: planning, confirming, claiming, in flight, recording
            time.sleep(rng.uniform(0.05, 0.5 if kills == 0 else 1.2))
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            if worker.returncode == -signal.SIGKILL:
                kills += 1
                continue
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0 and "DONE" in out, err
        break
    else:
        pytest.fail("the worker did not finish in time")
    relay.close()
    assert kills >= 5

    gate_orders = _admin(gate, "orders")["items"]
    assert isinstance(gate_orders, list)
    by_key = Counter(o["idempotency_key"] for o in gate_orders)
    by_ref = Counter(o["external_ref"] for o in gate_orders)
    assert len(gate_orders) == ROWS
    assert set(by_key.values()) == {1} and len(by_key) == ROWS  # every key distinct, one Gate order each
    assert sorted(by_ref) == [f"BULK-{i:03d}" for i in range(ROWS)] and set(by_ref.values()) == {1}
    db = Database(engine)
    with db.session() as s:
        (batch,) = repo.batches_in(s, list(BatchStatus))
        rows = repo.batch_orders(s, batch.id or 0)
    assert len(rows) == ROWS
    ours = {o.external_ref: o.idempotency_key for o in rows}
    assert {o["external_ref"]: o["idempotency_key"] for o in gate_orders} == ours  # never another key for a row
    replayed = _admin(gate, "stats")["creates"]
    print(f"\nbulk crash test: {kills} SIGKILLs, {starts} worker starts, {ROWS} rows, {len(gate_orders)} Gate "
          f"orders; creates {replayed}")
    engine.dispose()
