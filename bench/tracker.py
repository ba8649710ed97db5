"""How many Gate requests does one tracking pass make for many pending orders?

Seeds N pending orders (default 10,000) in the in-process sandbox and in a SQLite store, then runs
``OrderService.track()`` twice: once while every order is still pending, once after all of them
completed. Goal: about N / pageSize requests (100 per page), not N.

    python -m bench.tracker [--n 10000]
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

from gatebot.clock import ManualClock
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY, Settings
from gatebot.orders import new_idempotency_key
from gatebot.runtime import build_core
from gatebot.sandbox.app import create_app
from gatebot.sandbox.simulator import SandboxConfig, Simulator
from gatebot.store import repo
from gatebot.store.models import Order, OrderStatus


async def run(n: int) -> None:
    clock = ManualClock()
    app = create_app(SandboxConfig(completion_delay=90), clock=clock)
    sim: Simulator = app.state.sim
    sim.set_balance("USD", str(Decimal(20) * n + 1))
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, database_url=f"sqlite:///{Path(tmp) / 'tracker.db'}",
                            gate_api_url="http://gate.bench/", gate_api_key=SANDBOX_API_KEY,
                            gate_agent_id=SANDBOX_AGENT_ID, gatebot_env="development")
        core = build_core(settings, clock=clock, gate_transport=httpx.ASGITransport(app=app))  # migrates SQLite
        db, cipher, service = core.db, core.cipher, core.orders
        now = clock.now()
        with db.session() as s:
            for i in range(n):
                key = new_idempotency_key()
                body = {"product_id": 101, "currency_code": "USD", "external_ref": f"T-{i:06d}", "quantity": 1}
                gate_order = sim.create_order(body, idempotency_key=key).order
                order = Order(external_ref=f"T-{i:06d}", idempotency_key=key, gate_order_id=gate_order["id"],
                              product_id=101, product_name="Steam Gift Card 20 USD", product_type="redeem_card",
                              currency="USD", quantity=1, status=OrderStatus.PENDING, requester="UBENCH",
                              created_at=now, updated_at=now)
                order.set_secret_fields(cipher, body=body)
                repo.add_order(s, order)
            s.commit()
        try:
            print(f"{'pass':<28} {'orders':>7} {'changed':>8} {'requests':>9} {'seconds':>8}")
            for label in ("all still pending", "all completed since"):
                if label.startswith("all completed"):
                    clock.advance(timedelta(seconds=91))
                started = time.perf_counter()
                result = await service.track()
                took = time.perf_counter() - started
                print(f"{label:<28} {result.checked:>7} {result.changed:>8} {result.requests:>9} {took:>8.1f}")
        finally:
            await core.aclose()
    print(f"one GET /orders/{{id}} per order would be {n} requests per pass")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    asyncio.run(run(parser.parse_args().n))


if __name__ == "__main__":
    main()
