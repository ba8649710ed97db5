"""Benchmark: GateClient against the sandbox over real loopback HTTP.

Starts the sandbox (no faults) with :func:`gatebot.sandbox.server.running_sandbox`, then runs ``--n``
``get_balance`` and ``create_order`` calls, first one at a time, then ``--concurrency`` in flight,
and prints requests per second and p50/p99 latency for each. A figure printer, not a test:
nothing here asserts speed.

    $ python -m bench.client --n 500 --concurrency 20

Imports the sandbox (a benchmark may); must not import Slack or the scheduler.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import httpx

from bench.stats import percentile
from gatebot.clock import SystemClock
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY, Settings
from gatebot.gate import CreateOrderRequest, GateClient, GateError, Product
from gatebot.runtime import build_gate_client
from gatebot.sandbox.server import running_sandbox

#: Enough money that N orders of the cheapest voucher never hit insufficient_balance.
BENCH_BALANCE = "100000000.00"


@dataclass
class Result:
    name: str
    mode: str
    calls: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else float("inf")

    def percentile(self, p: float) -> float:
        """Latency percentile in milliseconds (nearest-rank)."""
        return percentile(self.latencies, p) * 1000


async def run(name: str, mode: str, n: int, concurrency: int,
              call: Callable[[int], Awaitable[object]]) -> Result:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(n))

    async def worker() -> None:
        nonlocal errors
        for i in counter:  # the shared iterator hands each index to exactly one worker
            start = time.perf_counter()
            try:
                await call(i)
            except GateError:
                errors += 1
            else:
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, mode, n, errors, time.perf_counter() - start, latencies)


async def cheapest_voucher(gate: GateClient) -> Product:
    vouchers = [p async for p in gate.iter_products(product_type_id=1, is_active=True)]
    if not vouchers:
        raise SystemExit("the sandbox catalog has no active voucher")
    return min(vouchers, key=lambda p: p.price or Decimal(0))


async def bench(url: str, n: int, concurrency: int) -> list[Result]:
    results: list[Result] = []
    settings = Settings(_env_file=None, gate_api_url=url, gate_api_key=SANDBOX_API_KEY, gate_agent_id=SANDBOX_AGENT_ID)
    async with build_gate_client(settings, SystemClock()) as gate:
        product = await cheapest_voucher(gate)
        async with httpx.AsyncClient(base_url=url) as admin:
            answer = await admin.put("/_sandbox/balance", json={"currency_code": product.currency_code,
                                                                 "available": BENCH_BALANCE})
            answer.raise_for_status()
        run_id = uuid.uuid4().hex[:8]
        request = CreateOrderRequest(product_id=product.id, test=True)

        async def balance(_: int) -> object:
            return await gate.get_balance()

        def create(mode: str) -> Callable[[int], Awaitable[object]]:
            async def call(i: int) -> object:
                return await gate.create_order(request, idempotency_key=f"bench-{run_id}-{mode}-{i}")
            return call

        await gate.get_balance()  # warm the connection pool
        for mode, width in (("sequential", 1), (f"{concurrency} in flight", concurrency)):
            results.append(await run("get_balance", mode, n, width, balance))
            results.append(await run("create_order", mode, n, width, create(mode.split()[0])))
    return results


def table(results: list[Result]) -> str:
    head = f"{'call':<14} {'mode':<14} {'n':>6} {'errors':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.name:<14} {r.mode:<14} {r.calls:>6} {r.errors:>6} {r.rps:>9.0f} "
                     f"{r.percentile(50):>8.2f} {r.percentile(99):>8.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=500, help="calls per row (default 500)")
    parser.add_argument("--concurrency", type=int, default=20, help="calls in flight in the concurrent rows")
    args = parser.parse_args(argv)
    if args.n < 1 or args.concurrency < 1:
        parser.error("--n and --concurrency must be at least 1")
    with running_sandbox() as sandbox:
        started = time.perf_counter()
        results = asyncio.run(bench(sandbox.base_url, args.n, args.concurrency))
        elapsed = time.perf_counter() - started
        creates = sandbox.sim.stats()["creates"]
    print(table(results))
    mean = statistics.fmean(r.rps for r in results)
    print(f"\n{len(results)} rows in {elapsed:.1f} s (mean {mean:.0f} req/s per row); sandbox created "
          f"{creates['created']} orders for {creates['attempted']} create requests")
    print("client and sandbox share one process (and its GIL): concurrent figures understate a real server")


if __name__ == "__main__":
    main()
