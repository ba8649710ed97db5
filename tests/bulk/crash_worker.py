"""A worker process for the bulk crash test: plans, confirms and places one 200-row batch, and may be
SIGKILLed anywhere — while planning, inside the confirmation, between a row's claim and Gate's answer.

At start it does what a restarted ``gatebot serve``/``clock`` leader does: re-send the rows left in flight
(``resume_batches``, same keys), then carry on placing. Prints ``START``, ``PLACING <batch>`` and, when no
row is left to send, ``DONE``.
"""

from __future__ import annotations

import argparse
import asyncio

from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY, load_settings
from gatebot.runtime import core
from gatebot.store import repo
from gatebot.store.models import BatchStatus
from tests.relay import wait_for_go


def batch_file(rows: int) -> bytes:
    lines = ["product,quantity,amount,external_ref,steam_login"]
    for i in range(rows):
        lines.append(f"101,1,,BULK-{i:03d}," if i % 2 else f"steam-wallet,,10,BULK-{i:03d},p{i:03d}")
    return ("\n".join(lines) + "\n").encode()


async def run(database_url: str, gate_url: str, rows: int, *, wait_go: bool) -> None:
    settings = load_settings(database_url=database_url, gate_api_url=gate_url, gate_api_key=SANDBOX_API_KEY,
                             gate_agent_id=SANDBOX_AGENT_ID, gatebot_env="development", gate_timeout=2.0,
                             gatebot_bulk_rate=100)
    async with core(settings) as c:
        if wait_go:
            await asyncio.to_thread(wait_for_go)
        print("START", flush=True)
        if await c.orders.product(101) is None:
            await c.orders.refresh_catalog()
        batches = await c.db.run(lambda s: repo.batches_in(s, list(BatchStatus)))
        if not batches:
            plan = await c.bulk.plan(batch_file(rows), requester="UCRASH", source_name="crash.csv")
            batch_id = plan.batch_id
        else:
            assert batches[0].id is not None
            batch_id = batches[0].id
        await c.bulk.confirm(batch_id, "UCRASH")  # a second confirmation saves nothing
        await c.bulk.resume_batches()
        print(f"PLACING {batch_id}", flush=True)
        progress = await c.bulk.run_batch(batch_id)
        assert progress.waiting == 0, progress
        print("DONE", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--gate", required=True)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--wait-go", action="store_true", help="start work only when a line arrives on stdin")
    args = parser.parse_args()
    asyncio.run(run(args.db, args.gate, args.rows, wait_go=args.wait_go))


if __name__ == "__main__":
    main()
