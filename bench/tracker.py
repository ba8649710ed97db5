"""How fast does one tracking pass go over many pending orders, and how many Gate requests does it make?

Seeds N pending orders (default 10,000) in the in-process sandbox and in a SQLite store, then runs
``OrderService.track()`` twice: once while every order is still pending, once after all of them
completed. Goals: about N / pageSize requests (100 per page), not N; and, in gatebot's own time, the
pending pass under 2 s and the pass that applies N completions under 5 s.

"gatebot's own time" is the wall time minus the time spent inside the sandbox's ASGI app (measured
by a wrapping transport): the sandbox is a test double whose list endpoint is not built for speed.

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

#: Targets in seconds of gatebot's own time, per pass (issue 14, item 6).
PENDING_TARGET = 2.0
COMPLETED_TARGET = 5.0


class TimedTransport(httpx.AsyncBaseTransport):
    """An ASGI transport that adds up the seconds spent inside the app (the sandbox), to subtract them."""

    def __init__(self, inner: httpx.ASGITransport) -> None:
        self.inner = inner
        self.seconds = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            return await self.inner.handle_async_request(request)  # the app runs to its end here
        finally:
            self.seconds += time.perf_counter() - started


async def run(n: int) -> bool:
    clock = ManualClock()
    app = create_app(SandboxConfig(completion_delay=90), clock=clock)
    sim: Simulator = app.state.sim
    sim.set_balance("USD", str(Decimal(20) * n + 1))
    transport = TimedTransport(httpx.ASGITransport(app=app))
    passed = True
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, database_url=f"sqlite:///{Path(tmp) / 'tracker.db'}",
                            gate_api_url="http://gate.bench/", gate_api_key=SANDBOX_API_KEY,
                            gate_agent_id=SANDBOX_AGENT_ID, gatebot_env="development")
        core = build_core(settings, clock=clock, gate_transport=transport)  # migrates SQLite
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
            print(f"{'pass':<22} {'orders':>7} {'changed':>8} {'requests':>9} {'total s':>8} "
                  f"{'gatebot s':>10} {'target':>7}  verdict")
            for label, target in (("all still pending", PENDING_TARGET), ("all completed since", COMPLETED_TARGET)):
                if label.startswith("all completed"):
                    clock.advance(timedelta(seconds=91))
                in_sandbox = transport.seconds
                started = time.perf_counter()
                result = await service.track()
                took = time.perf_counter() - started
                own = took - (transport.seconds - in_sandbox)
                verdict = "PASS" if own < target else "FAIL"
                passed = passed and own < target
                print(f"{label:<22} {result.checked:>7} {result.changed:>8} {result.requests:>9} {took:>8.2f} "
                      f"{own:>10.2f} {'< ' + format(target, '.0f'):>7}  {verdict}")
        finally:
            await core.aclose()
    print(f"one GET /orders/{{id}} per order would be {n} requests per pass; "
          "gatebot s = total s minus time inside the sandbox app")
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    if not asyncio.run(run(parser.parse_args().n)):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
