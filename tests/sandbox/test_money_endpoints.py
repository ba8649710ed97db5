"""Balance and deposits over HTTP (in process), and the admin operations that move money."""

from __future__ import annotations

import re

import httpx
import pytest

from gatebot.clock import ManualClock
from gatebot.sandbox.simulator import SandboxError, Simulator

from .helpers import AGENT, available, decode, error_code

DEPOSITS = f"{AGENT}/deposits"
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


async def test_balance_lists_every_currency_without_paging_fields(client: httpx.AsyncClient) -> None:
    body = decode(await client.get(f"{AGENT}/balance"))
    assert set(body) == {"items"}
    assert [(i["currency_code"], i["available"]) for i in body["items"]] == [
        ("EUR", "2500.00"), ("GBP", "800.00"), ("USD", "5000.00")]
    assert all(set(i) == {"currency_code", "available", "updated_at"} for i in body["items"])
    assert all(ISO.fullmatch(i["updated_at"]) for i in body["items"])


async def test_seeded_deposit_history(client: httpx.AsyncClient) -> None:
    body = decode(await client.get(DEPOSITS))
    assert (body["page"], body["pageSize"], body["total"]) == (1, 50, 6)
    items = body["items"]
    assert [d["created_at"] for d in items] == sorted((d["created_at"] for d in items), reverse=True)
    assert items[0]["status"] == "pending" and items[0]["posted_at"] is None
    fields = {"id", "currency_code", "amount", "method", "status", "external_ref", "created_at", "posted_at"}
    assert all(set(d) == fields for d in items)
    for deposit in items:
        assert re.fullmatch(r"\d+\.\d\d", deposit["amount"]) and deposit["method"] in ("bank_wire", "manual")
        assert (deposit["posted_at"] is not None) == (deposit["status"] == "posted")


@pytest.mark.parametrize(("status", "count"), [("posted", 4), ("pending", 1), ("rejected", 1)])
async def test_deposit_status_filter(client: httpx.AsyncClient, status: str, count: int) -> None:
    body = decode(await client.get(DEPOSITS, params={"status": status}))
    assert body["total"] == count and {d["status"] for d in body["items"]} == {status}


async def test_deposit_pagination_and_bad_filters(client: httpx.AsyncClient) -> None:
    pages = [decode(await client.get(DEPOSITS, params={"page": n, "pageSize": 4})) for n in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [4, 2, 0]
    assert [d["id"] for p in pages for d in p["items"]] == [6, 5, 4, 3, 2, 1]
    response = await client.get(DEPOSITS, params={"status": "cleared"})
    assert response.status_code == 400 and error_code(response) == "validation_error"


async def test_admin_deposit_posted_adds_at_once(client: httpx.AsyncClient, clock: ManualClock) -> None:
    response = await client.post("/_sandbox/deposits", json={"currency_code": "USD", "amount": "500.00"})
    assert response.status_code == 201
    deposit = decode(response)
    assert deposit["id"] == 7 and deposit["status"] == "posted" and deposit["method"] == "manual"
    assert deposit["posted_at"] == deposit["created_at"] == "2026-11-24T09:00:00Z"
    assert available(decode(await client.get(f"{AGENT}/balance")), "USD") == "5500.00"
    newest = decode(await client.get(DEPOSITS))["items"][0]
    assert newest == deposit


async def test_admin_pending_deposit_posts_later(client: httpx.AsyncClient, clock: ManualClock) -> None:
    created = decode(await client.post("/_sandbox/deposits", json={
        "currency_code": "EUR", "amount": "250.50", "status": "pending", "method": "bank_wire",
        "external_ref": "WIRE-9"}))
    assert created["status"] == "pending" and created["posted_at"] is None
    assert available(decode(await client.get(f"{AGENT}/balance")), "EUR") == "2500.00"
    clock.advance(60)
    posted = decode(await client.post(f"/_sandbox/deposits/{created['id']}/post"))
    assert posted["status"] == "posted" and posted["posted_at"] == "2026-11-24T09:01:00Z"
    balance = decode(await client.get(f"{AGENT}/balance"))
    assert available(balance, "EUR") == "2750.50"
    twice = await client.post(f"/_sandbox/deposits/{created['id']}/post")
    assert twice.status_code == 409 and error_code(twice) == "invalid_state"


async def test_admin_posts_and_rejects_the_seeded_pending_deposit(sim: Simulator) -> None:
    assert sim.post_deposit(6)["status"] == "posted"
    assert sim.balance()["items"][2]["available"] == "5750.00"
    other = sim.add_deposit("GBP", "10", status="pending")
    assert sim.reject_deposit(other["id"])["status"] == "rejected"
    assert sim.balance()["items"][1]["available"] == "800.00"


async def test_admin_deposit_errors(client: httpx.AsyncClient) -> None:
    assert (await client.post("/_sandbox/deposits/99/post")).status_code == 404
    assert (await client.post("/_sandbox/deposits/1/reject")).status_code == 409
    assert (await client.post("/_sandbox/deposits/x/post")).status_code == 404
    for body in ({"currency_code": "USD", "amount": "-5"}, {"currency_code": "USD", "amount": "0"},
                 {"currency_code": "USD", "amount": "1.234"},
                 {"currency_code": "USD"}, {"currency_code": "US", "amount": "5"}, {"amount": "5"},
                 {"currency_code": "USD", "amount": "5", "status": "rejected"},
                 {"currency_code": "USD", "amount": "5", "method": "card"},
                 {"currency_code": "USD", "amount": "5", "external_ref": "x" * 65}):
        response = await client.post("/_sandbox/deposits", json=body)
        assert response.status_code == 400, body
        assert error_code(response) == "validation_error"
    number = await client.post("/_sandbox/deposits", json={"currency_code": "USD", "amount": 5.5})
    assert decode(number)["amount"] == "5.50"  # a JSON number is read as a Decimal: fine


def test_python_callers_cannot_pass_floats(sim: Simulator) -> None:
    with pytest.raises(SandboxError, match="strings"):
        sim.add_deposit("USD", 5.5)
    with pytest.raises(SandboxError, match="strings"):
        sim.set_balance("USD", 5.5)


async def test_admin_sets_a_balance(client: httpx.AsyncClient) -> None:
    response = await client.put("/_sandbox/balance", json={"currency_code": "USD", "available": "20.00"})
    assert decode(response) == {"currency_code": "USD", "available": "20.00",
                                "updated_at": "2026-11-24T09:00:00Z"}
    yen = await client.put("/_sandbox/balance", json={"currency_code": "jpy", "available": "1000"})
    assert decode(yen)["available"] == "1000"  # JPY has no minor unit
    items = decode(await client.get(f"{AGENT}/balance"))["items"]
    assert [i["currency_code"] for i in items] == ["EUR", "GBP", "JPY", "USD"]
    bad = await client.put("/_sandbox/balance", json={"currency_code": "USD", "available": "-1"})
    assert bad.status_code == 400
