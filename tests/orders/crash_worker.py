"""A worker process for the crash-safety test: places orders CRASH-000… and may be SIGKILLed anywhere.

It prints ``INTENT <id>`` right after an intent is committed and ``ANSWERED <id>`` once Gate's answer is
recorded, so the test can aim its SIGKILLs at the window between the two. At start it runs the same
recovery ``gatebot serve``/``clock`` run at start-up.
"""

from __future__ import annotations

import argparse
import asyncio

from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY, load_settings
from gatebot.orders import OrderDraft
from gatebot.runtime import core
from tests.relay import wait_for_go


async def run(database_url: str, gate_url: str, count: int, *, wait_go: bool) -> None:
    settings = load_settings(database_url=database_url, gate_api_url=gate_url, gate_api_key=SANDBOX_API_KEY,
                             gate_agent_id=SANDBOX_AGENT_ID, gatebot_env="development", gate_timeout=2.0)
    async with core(settings) as c:
        if wait_go:
            await asyncio.to_thread(wait_for_go)
        if await c.orders.product(101) is None:
            await c.orders.refresh_catalog()
        recovered = await c.orders.recover(everything=True)
        print(f"RECOVERED {recovered}", flush=True)
        for i in range(count):
            ref = f"CRASH-{i:03d}"
            if await c.orders.find(ref) is not None:
                continue
            product, extra = (101, {}) if i % 2 else (456, {"amount": "10", "account": {"steam_login": f"p{i:03d}"}})
            d = OrderDraft(product=product, requester="UCRASH", external_ref=ref, **extra)  # type: ignore[arg-type]
            quote = await c.orders.quote(d)
            order = await c.orders.save_intent(quote, d)
            print(f"INTENT {order.id}", flush=True)
            await c.orders.submit(order.id or 0)
            print(f"ANSWERED {order.id}", flush=True)
        await c.orders.recover(everything=True)
        print("DONE", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--gate", required=True)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--wait-go", action="store_true", help="start work only when a line arrives on stdin")
    args = parser.parse_args()
    asyncio.run(run(args.db, args.gate, args.count, wait_go=args.wait_go))


if __name__ == "__main__":
    main()
