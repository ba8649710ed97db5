"""Fault injection: what each knob does to a request, and that the decisions are deterministic."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from gatebot.clock import ManualClock
from gatebot.sandbox.simulator import FaultPlan, Faults, SandboxConfig, Simulator

from .helpers import AGENT, ORDERS, create, decode, error_code, voucher


def plans(sim: Simulator, endpoint: str, n: int) -> list[FaultPlan]:
    return [sim.plan_request(endpoint) for _ in range(n)]


# -- planning (no HTTP) -----------------------------------------------------------------------------------


def test_no_faults_by_default(sim: Simulator) -> None:
    assert {p for p in plans(sim, "create_order", 50)} == {FaultPlan(hang_seconds=3600, retry_after=1)}
    assert all(p.processes for p in plans(sim, "balance", 5))


def test_same_seed_same_fault_decisions(clock: ManualClock) -> None:
    faults = Faults(error_rate=0.3, rate_limit_rate=0.1, hang_rate=0.05, latency=0.01, latency_jitter=0.02)

    def run(seed: int) -> list[FaultPlan]:
        sim = Simulator(SandboxConfig(seed=seed, faults=faults), clock=clock)
        return plans(sim, "create_order", 40) + plans(sim, "orders", 40)

    assert run(1) == run(1)
    assert run(1) != run(2)
    delays = [p.delay for p in run(1)]
    assert all(0.01 <= d <= 0.03 for d in delays) and len(set(delays)) > 1


def test_create_errors_split_into_reset_500_and_503(clock: ManualClock) -> None:
    sim = Simulator(SandboxConfig(faults=Faults(create_error_rate=1.0)), clock=clock)
    actions = [p.action for p in plans(sim, "create_order", 400)]
    assert 150 < actions.count("reset") < 250
    assert 60 < actions.count("error_after_processing") < 140
    assert 60 < actions.count("unavailable") < 140
    # ...and create_error_rate never touches reads.
    assert {p.action for p in plans(sim, "orders", 20)} == {None}


def test_counters_are_consumed_in_order(sim: Simulator) -> None:
    sim.update_faults({"hang_next": 1, "rate_limit_burst": 2, "garbage_next": 1, "retry_after": 9})
    actions = [p.action for p in plans(sim, "balance", 5)]
    assert actions == ["hang", "rate_limited", "rate_limited", "garbage", None]
    assert sim.faults.as_dict()["hang_next"] == sim.faults.rate_limit_burst == sim.faults.garbage_next == 0
    assert sim.stats()["faults"] == {"hang": 1, "rate_limited": 2, "garbage": 1, "unavailable": 0, "reset": 0,
                                     "error_after_processing": 0}


def test_health_only_gets_latency(sim: Simulator) -> None:
    sim.update_faults({"latency": 0.5, "error_rate": 1, "rate_limit_burst": 3, "hang_next": 3,
                       "garbage_next": 3})
    assert plans(sim, "health", 3) == [FaultPlan(delay=0.5, hang_seconds=3600, retry_after=1)] * 3
    assert sim.faults.rate_limit_burst == 3


# -- enacted over HTTP (in process) -----------------------------------------------------------------------


async def test_rate_limit_burst_answers_429_with_retry_after(
        client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.update_faults({"rate_limit_burst": 2, "retry_after": 7})
    for _ in range(2):
        response = await client.get(f"{AGENT}/balance")
        assert response.status_code == 429 and response.headers["Retry-After"] == "7"
        assert error_code(response) == "rate_limited"
    assert (await client.get("/health")).status_code == 200  # health is not rate limited
    assert (await client.get(f"{AGENT}/balance")).status_code == 200


async def test_rate_limit_rate(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.faults.rate_limit_rate = 1.0
    response = await create(client, voucher(), "k")
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert sim.all_orders() == []  # a 429 is never processed


async def test_rate_limit_comes_before_auth(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.faults.rate_limit_burst = 1
    response = await client.get(f"{AGENT}/balance", headers={"Authorization": "wrong"})
    assert response.status_code == 429


async def test_garbage_is_a_200_that_is_not_json(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.faults.garbage_next = 1
    response = await create(client, voucher(), "k")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert sim.all_orders() == []  # not processed
    assert (await create(client, voucher(), "k")).status_code == 201


async def test_error_rate_makes_reads_503(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.faults.error_rate = 1.0
    response = await client.get(f"{AGENT}/product-types")
    assert response.status_code == 503 and error_code(response) == "unavailable"
    assert (await client.get("/health")).status_code == 200


async def test_create_faults_keep_exactly_one_order_per_key(
        client: httpx.AsyncClient, sim: Simulator) -> None:
    """Whatever the fault, retrying with the same key ends with exactly one order for it."""
    sim.faults.create_error_rate = 1.0
    seen: dict[str, int] = {}
    for n in range(12):
        response = await create(client, voucher(), f"k{n}")
        action = ("reset" if response.status_code == 201 else
                  "error_after_processing" if response.status_code == 500 else "unavailable")
        seen[action] = seen.get(action, 0) + 1
        if action == "reset":
            assert len(response.content) < int(response.headers["content-length"])
            with pytest.raises(json.JSONDecodeError):
                json.loads(response.text)
        elif action == "error_after_processing":
            assert error_code(response) == "internal_error"
        else:
            assert response.status_code == 503 and error_code(response) == "unavailable"
    assert set(seen) == {"reset", "error_after_processing", "unavailable"}  # seed 42 shows all three
    processed = seen["reset"] + seen["error_after_processing"]
    assert len(sim.all_orders()) == processed

    sim.faults.create_error_rate = 0.0
    statuses = [(await create(client, voucher(), f"k{n}")).status_code for n in range(12)]
    assert statuses.count(200) == processed and statuses.count(201) == seen["unavailable"]
    keys = [o["idempotency_key"] for o in sim.all_orders()]
    assert sorted(keys) == sorted(f"k{n}" for n in range(12))


async def test_a_hanging_request_does_not_answer(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.faults.hang_next = 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.get(f"{AGENT}/balance"), timeout=0.05)
    assert (await client.get(f"{AGENT}/balance")).status_code == 200


async def test_a_hang_that_outlasts_nobody_answers_503(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.update_faults({"hang_next": 1, "hang_seconds": 0.01})
    response = await client.get(f"{AGENT}/balance")
    assert response.status_code == 503 and error_code(response) == "unavailable"


async def test_latency_delays_but_answers(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.faults.latency = 0.01
    assert (await client.get("/health")).status_code == 200
    assert decode(await client.get(f"{ORDERS}"))["total"] == 0
