"""Same seed and same calls give the same ids and codes; faults do not disturb them."""

from __future__ import annotations

import uuid
from typing import Any

from gatebot.clock import ManualClock
from gatebot.sandbox.simulator import Faults, SandboxConfig, Simulator

from .helpers import topup


def session(seed: int, *, faults: Faults | None = None) -> list[dict[str, Any]]:
    clock = ManualClock()
    sim = Simulator(SandboxConfig(seed=seed, faults=faults or Faults()), clock=clock)
    for n, body in enumerate([{"product_id": 101}, topup(), {"product_id": 104, "quantity": 3},
                              {"product_id": 102, "test": True}]):
        sim.plan_request("create_order")
        sim.create_order(body, idempotency_key=f"k{n}")
    clock.advance(60)
    return sim.all_orders()


def test_same_seed_same_orders_and_codes() -> None:
    first, second = session(7), session(7)
    assert first == second
    assert all(o["status"] == "completed" for o in first)
    codes = [v["voucher_code"] for o in first if "vouchers" in (o["order_content"] or {})
             for v in o["order_content"]["vouchers"]]
    assert len(codes) == len(set(codes)) == 5


def test_another_seed_other_ids() -> None:
    assert {o["id"] for o in session(7)}.isdisjoint({o["id"] for o in session(8)})


def test_fault_randomness_does_not_shift_business_randomness() -> None:
    assert session(7) == session(7, faults=Faults(latency_jitter=1.0, rate_limit_rate=0.5, hang_rate=0.2))


def test_order_ids_are_uuid4() -> None:
    for order in session(3):
        assert uuid.UUID(order["id"]).version == 4
