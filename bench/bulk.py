"""Bulk orders: how long a 5,000-row file takes to check, and how a batch is paced against the sandbox.

1. Validation: a 5,000-row file (half vouchers, half top-ups with customer accounts) through
   ``BulkService.validate_file`` (every row through the single order's rules; target under 1 s), then
   ``plan`` (plus one balance read and saving the planned batch) and ``confirm`` (5,000 intents with
   their encrypted bodies, committed in one transaction).
2. Placement: ``--rows`` rows (default 1,000) placed by the runner at 5 and at 50 rows per second, against
   the in-process Gate sandbox. At 5/s, 1,000 rows take 200 s of real time; the runner's ``sleep`` is
   injectable, so here it advances a ManualClock instead: the pacing is the runner's own, time is
   virtual. Printed: the achieved rate in virtual time (rows over the clock time from the first send to
   the last), the wall time the work itself took (Gate calls, store writes), and Gate requests per row
   (one ``POST /orders`` each when nothing goes wrong).

    python -m bench.bulk [--rows 1000] [--file-rows 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from gatebot.bulk import BulkService
from gatebot.clock import ManualClock
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY, Settings
from gatebot.runtime import Core, build_core
from gatebot.sandbox.app import create_app
from gatebot.sandbox.simulator import SandboxConfig, Simulator


def bulk_file(rows: int, *, prefix: str) -> bytes:
    """Half vouchers, half Steam top-ups (account fields filled)."""
    lines = ["product,quantity,amount,external_ref,steam_login,email"]
    for i in range(rows):
        if i % 2:
            lines.append(f"101,1,,{prefix}-{i:05d},,")
        else:
            lines.append(f"steam-wallet,,10,{prefix}-{i:05d},player_{i},p{i}@example.com")
    return ("\r\n".join(lines) + "\r\n").encode()


def _requests(sim: Simulator) -> int:
    return sum(sim.stats()["requests"].values())


async def validation(core: Core, rows: int) -> None:
    data = bulk_file(rows, prefix="VAL")
    started = time.perf_counter()
    valid = await core.bulk.validate_file(data, requester="UBENCH")
    checked = time.perf_counter() - started
    started = time.perf_counter()
    plan = await core.bulk.plan(data, requester="UBENCH", source_name="bench.csv")
    planned = time.perf_counter() - started
    started = time.perf_counter()
    await core.bulk.confirm(plan.batch_id, "UBENCH")
    confirmed = time.perf_counter() - started
    await core.bulk.cancel(plan.batch_id, "UBENCH")  # nothing of it is placed
    print(f"validate {len(valid.quotes):,} rows: {checked:.2f} s (target < 1 s); plan (+ balance read, saved): "
          f"{planned:.2f} s; confirm ({rows:,} intents, one transaction): {confirmed:.2f} s")


async def placement(core: Core, sim: Simulator, clock: ManualClock, rows: int, rate: float) -> None:
    async def virtual_sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    bulk = BulkService(orders=core.orders, rate=rate, sleep=virtual_sleep)
    plan = await bulk.plan(bulk_file(rows, prefix=f"R{int(rate)}"), requester="UBENCH", source_name="bench.csv")
    await bulk.confirm(plan.batch_id, "UBENCH")
    before = _requests(sim)
    started_clock, started_wall = clock.now(), time.perf_counter()
    progress = await bulk.run_batch(plan.batch_id)
    wall = time.perf_counter() - started_wall
    virtual = (clock.now() - started_clock).total_seconds()
    requests = _requests(sim) - before
    achieved = (progress.placed - 1) / virtual if virtual else float("inf")  # the first row goes at once
    print(f"rate {rate:>4g}/s: {progress.placed:,} rows placed in {virtual:,.1f} s virtual -> {achieved:.2f} rows/s; "
          f"wall {wall:.2f} s ({progress.placed / wall:,.0f} rows/s of gatebot's own work); "
          f"{requests / progress.placed:.2f} Gate requests per row")


async def run(rows: int, file_rows: int) -> None:
    clock = ManualClock()
    app = create_app(SandboxConfig(completion_delay=90), clock=clock)
    sim: Simulator = app.state.sim
    sim.set_balance("USD", str(Decimal(25) * (file_rows + 2 * rows) + 1))
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, database_url=f"sqlite:///{Path(tmp) / 'bulk.db'}",
                            gate_api_url="http://gate.bench/", gate_api_key=SANDBOX_API_KEY,
                            gate_agent_id=SANDBOX_AGENT_ID, gatebot_env="development")
        core = build_core(settings, clock=clock, gate_transport=httpx.ASGITransport(app=app))  # migrates SQLite
        try:
            await core.orders.refresh_catalog()
            await validation(core, file_rows)
            for rate in (5.0, 50.0):
                await placement(core, sim, clock, rows, rate)
        finally:
            await core.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1000, help="rows placed at each rate (default 1,000)")
    parser.add_argument("--file-rows", type=int, default=5000, help="rows of the validated file (default 5,000)")
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.file_rows))


if __name__ == "__main__":
    main()
