"""The ``/_sandbox`` admin endpoints: faults, time, orders, stats, reset, forced outcomes."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from gatebot.clock import ManualClock, OffsetClock, SystemClock
from gatebot.sandbox.app import create_app
from gatebot.sandbox.simulator import Faults, SandboxConfig, SandboxError, Simulator

from .helpers import AGENT, ORDERS, create, decode, error_code, topup, voucher


async def test_faults_get_and_partial_patch(client: httpx.AsyncClient, sim: Simulator) -> None:
    assert decode(await client.get("/_sandbox/faults")) == decode(await client.get("/_sandbox/faults"))
    defaults = decode(await client.get("/_sandbox/faults"))
    assert defaults["error_rate"] == 0 and defaults["hang_seconds"] == 3600
    assert defaults["health_down"] is False
    patched = decode(await client.patch("/_sandbox/faults", json={"latency": 5, "health_down": True,
                                                                  "error_rate": 0.25, "garbage_next": 2}))
    assert patched == {**defaults, "latency": 5, "health_down": True, "error_rate": 0.25, "garbage_next": 2}
    assert sim.faults.latency == 5.0 and isinstance(sim.faults.latency, float)
    assert sim.faults.garbage_next == 2 and isinstance(sim.faults.garbage_next, int)


@pytest.mark.parametrize("body", [
    {"nonsense": 1}, {"error_rate": 1.5}, {"latency": -1}, {"latency": True}, {"health_down": 1},
    {"hang_next": 1.5}, {"retry_after": "2"}, [1], {"latency": "NaN"},
])
async def test_bad_fault_patches_change_nothing(
        client: httpx.AsyncClient, sim: Simulator, body: object) -> None:
    before = sim.faults.as_dict()
    payload = {"garbage_next": 3, **body} if isinstance(body, dict) else body
    response = await client.patch("/_sandbox/faults", json=payload)
    assert response.status_code == 400 and error_code(response) == "validation_error"
    assert sim.faults.as_dict() == before  # all or nothing


def test_faults_validate_on_construction() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        Faults(error_rate=2)
    with pytest.raises(ValueError, match="unknown"):
        Faults().update({"errors": 1})


async def test_time_advances_the_clock_and_completes_orders(
        client: httpx.AsyncClient, clock: ManualClock) -> None:
    order = decode(await create(client, voucher(), "k"))
    response = await client.post("/_sandbox/time", json={"advance": 90})
    assert decode(response) == {"now": "2026-11-24T09:01:30Z"}
    assert clock.now().minute == 1
    assert decode(await client.get(f"{ORDERS}/{order['id']}"))["status"] == "completed"
    for bad in ({"advance": -1}, {"advance": "soon"}, {}, {"advance": True}):
        assert (await client.post("/_sandbox/time", json=bad)).status_code == 400


def test_time_works_on_an_offset_clock_and_not_on_the_system_clock() -> None:
    offset = OffsetClock()
    sim = Simulator(clock=offset)
    before = offset.now()
    assert (sim.advance_time(3600) - before).total_seconds() >= 3600
    with pytest.raises(SandboxError) as info:
        Simulator(clock=SystemClock()).advance_time(1)
    assert info.value.status == 409


def test_default_clock_is_an_offset_clock() -> None:
    app = create_app()
    assert isinstance(app.state.sim.clock, OffsetClock)


async def test_all_orders_shows_idempotency_keys(client: httpx.AsyncClient) -> None:
    await create(client, voucher(), "key-1")
    await create(client, topup(), "key-2")
    await create(client, voucher(), "key-1")  # replay: still one order
    body = decode(await client.get("/_sandbox/orders"))
    assert body["total"] == 2 and [o["idempotency_key"] for o in body["items"]] == ["key-2", "key-1"]


async def test_stats_count_requests_responses_creates_and_faults(
        client: httpx.AsyncClient, sim: Simulator) -> None:
    await client.get("/health")
    await client.get(f"{AGENT}/balance")
    await create(client, voucher(), "k")
    await create(client, voucher(), "k")
    await create(client, voucher(quantity=2), "k")
    await create(client, voucher(107), "k2")
    sim.faults.rate_limit_burst = 1
    await client.get(f"{AGENT}/products")
    await client.get("/_sandbox/faults")  # admin calls are not counted
    stats = decode(await client.get("/_sandbox/stats"))
    assert stats["requests"] == {"balance": 1, "create_order": 4, "health": 1, "products": 1}
    assert stats["responses"] == {"200": 3, "201": 1, "400": 1, "409": 1, "429": 1}
    assert stats["creates"] == {"attempted": 4, "created": 1, "replayed": 1, "conflicts": 1, "rejected": 1}
    assert stats["faults"]["rate_limited"] == 1 and sum(stats["faults"].values()) == 1


async def test_reset_restores_the_seed(client: httpx.AsyncClient, sim: Simulator) -> None:
    first_id = decode(await create(client, voucher(), "k"))["id"]
    await client.put("/_sandbox/balance", json={"currency_code": "EUR", "available": "1.00"})
    await client.post("/_sandbox/deposits", json={"currency_code": "USD", "amount": "1.00"})
    await client.patch("/_sandbox/faults", json={"latency": 1})
    faults = sim.faults
    assert decode(await client.post("/_sandbox/reset")) == {"status": "reset"}
    assert sim.all_orders() == [] and sim.faults is faults and faults.latency == 0
    assert decode(await client.get("/_sandbox/stats"))["requests"] == {}
    assert [i["available"] for i in sim.balance()["items"]] == ["2500.00", "800.00", "5000.00"]
    assert sim.list_deposits()["total"] == 6
    assert decode(await create(client, voucher(), "k"))["id"] == first_id  # RNG restarted, key forgotten


async def test_reset_restores_the_configured_faults(clock: ManualClock) -> None:
    sim = Simulator(SandboxConfig(faults=Faults(latency=0.5)), clock=clock)
    sim.update_faults({"latency": 2, "hang_next": 3})
    sim.reset()
    assert sim.faults.latency == 0.5 and sim.faults.hang_next == 0


async def test_forced_outcomes(client: httpx.AsyncClient, clock: ManualClock) -> None:
    a = decode(await create(client, voucher(), "a"))
    b = decode(await create(client, voucher(), "b"))
    clock.advance(1)
    done = decode(await client.post(f"/_sandbox/orders/{a['id']}/complete"))
    assert done["status"] == "completed" and done["completed_at"] == "2026-11-24T09:00:01Z"
    failed = decode(await client.post(f"/_sandbox/orders/{b['id']}/fail", json={"reason": "out of stock"}))
    assert failed["status"] == "failed" and failed["failure_reason"] == "out of stock"
    again = await client.post(f"/_sandbox/orders/{a['id']}/fail")
    assert again.status_code == 409 and error_code(again) == "invalid_state"
    assert (await client.post("/_sandbox/orders/nope/complete")).status_code == 404
    assert (await client.post(f"/_sandbox/orders/{a['id']}/fail", json={"reason": 5})).status_code == 400


async def test_admin_needs_no_auth_and_is_never_faulted(app: Starlette, sim: Simulator) -> None:
    sim.update_faults({"rate_limit_burst": 5, "error_rate": 1, "garbage_next": 5})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gate.test") as bare:
        for path in ("/_sandbox/faults", "/_sandbox/stats", "/_sandbox/orders"):
            assert (await bare.get(path)).status_code == 200
    assert sim.faults.rate_limit_burst == 5


async def test_admin_bodies_must_be_json_objects(client: httpx.AsyncClient) -> None:
    for content in (b"[]", b"nope"):
        response = await client.post("/_sandbox/time", content=content)
        assert response.status_code == 400 and error_code(response) == "validation_error"
