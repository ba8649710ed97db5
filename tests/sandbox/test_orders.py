"""Orders over HTTP (in process): create, charge, validation, idempotency, lazy completion, lists."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gatebot.clock import ManualClock
from gatebot.sandbox.simulator import SandboxConfig, SandboxError, Simulator

from .helpers import AGENT, ORDERS, available, create, decode, error_code, topup, voucher

VOUCHER_CODE = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")


async def balance(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = decode(await client.get(f"{AGENT}/balance"))
    return body


def charges(order: dict[str, Any]) -> tuple[str, str, str]:
    return order["charged_amount"], order["agent_charge"], order["plexy_margin"]


# -- creating ---------------------------------------------------------------------------------------------


async def test_voucher_is_charged_at_once_and_completes_after_the_delay(
        client: httpx.AsyncClient, clock: ManualClock) -> None:
    response = await create(client, voucher(101, quantity=2, external_ref="INV-1"), "k-voucher")
    assert response.status_code == 201
    order = decode(response)
    assert order["status"] == "pending" and order["order_content"] is None
    assert (order["product_id"], order["quantity"], order["currency_code"]) == (101, 2, "USD")
    assert charges(order) == ("40.00", "40.00", "0.00")
    assert (order["balance_before"], order["balance_after"]) == ("5000.00", "4960.00")
    assert (order["external_ref"], order["idempotency_key"]) == ("INV-1", "k-voucher")
    assert order["is_test"] is False and order["region_code"] == "US"
    assert order["created_at"] == "2026-11-24T09:00:00Z" and order["completed_at"] is None
    assert order["failed_at"] is None
    assert available(await balance(client), "USD") == "4960.00"

    clock.advance(4.9)
    assert decode(await client.get(f"{ORDERS}/{order['id']}"))["status"] == "pending"
    clock.advance(0.1)
    done = decode(await client.get(f"{ORDERS}/{order['id']}"))
    assert done["status"] == "completed" and done["completed_at"] == "2026-11-24T09:00:05Z"
    content = done["order_content"]
    assert VOUCHER_CODE.fullmatch(content["voucher_code"]) and re.fullmatch(r"[0-9]{4}", content["pin"])
    assert len(content["vouchers"]) == 2 and content["vouchers"][0]["voucher_code"] == content["voucher_code"]
    assert content["vouchers"][0] != content["vouchers"][1]
    assert available(await balance(client), "USD") == "4960.00"  # completion does not charge again


async def test_topup_charges_amount_plus_margin_and_carries_a_vendor_id(
        client: httpx.AsyncClient, clock: ManualClock) -> None:
    order = decode(await create(client, topup(456, "10.00"), "k-topup"))
    # The docs' example: a 10.00 top-up is charged 12.50.
    assert charges(order) == ("12.50", "12.50", "2.50")
    assert re.fullmatch(r"LC-[0-9]{6}", order["order_content"]["vendor_order_id"])
    clock.advance(5)
    done = decode(await client.get(f"{ORDERS}/{order['id']}"))
    assert done["status"] == "completed" and done["order_content"] == order["order_content"]


@pytest.mark.parametrize(("product", "amount", "account", "charge"), [
    (460, "3.00", {}, "3.11"),          # 3.105 rounds half-up
    (460, "10.50", {}, "10.87"),        # 10.8675
    (459, "2.50", None, "2.70"),        # EUR, step 0.5, no published fields
    (458, "15.00", {"phone": "+441234567890"}, "15.75"),
    (457, "7", {"player_id": "123456"}, "7.70"),
])
async def test_topup_charges_round_half_up_to_the_minor_unit(
        client: httpx.AsyncClient, product: int, amount: str, account: dict[str, str] | None,
        charge: str) -> None:
    body = topup(product, amount, account if account is not None else {})
    if account is None:
        del body["topup_request"]["customer_account"]
    response = await create(client, body, f"k-{product}-{amount}")
    assert response.status_code == 201, response.text
    assert decode(response)["charged_amount"] == charge


async def test_currency_defaults_to_the_products_and_may_be_given(client: httpx.AsyncClient) -> None:
    assert decode(await create(client, voucher(104), "k1"))["currency_code"] == "EUR"
    assert (await create(client, voucher(104, currency_code="EUR"), "k2")).status_code == 201
    assert (await create(client, voucher(103, currency_code="gbp"), "k3")).status_code == 201


async def test_test_orders_are_flagged_charged_and_get_test_codes(
        client: httpx.AsyncClient, clock: ManualClock) -> None:
    order = decode(await create(client, voucher(102, test=True), "k-test"))
    assert order["is_test"] is True and order["charged_amount"] == "50.00"
    clock.advance(5)
    done = decode(await client.get(f"{ORDERS}/{order['id']}"))
    assert done["order_content"]["voucher_code"].startswith("TEST-")


async def test_external_ref_is_echoed_and_not_unique(client: httpx.AsyncClient) -> None:
    first = await create(client, voucher(external_ref="SAME"), "k1")
    second = await create(client, voucher(external_ref="SAME"), "k2")
    assert (first.status_code, second.status_code) == (201, 201)
    assert decode(first)["id"] != decode(second)["id"]
    assert (await create(client, voucher(external_ref="x" * 64), "k3")).status_code == 201


async def test_zero_completion_delay_completes_in_the_create_answer(clock: ManualClock) -> None:
    sim = Simulator(SandboxConfig(completion_delay=0), clock=clock)
    result = sim.create_order({"product_id": 101}, idempotency_key="k")
    assert result.created and result.status == 201
    assert result.order["status"] == "completed" and result.order["order_content"]["voucher_code"]


# -- validation -------------------------------------------------------------------------------------------

LONG = "x" * 65


@pytest.mark.parametrize(("body", "code"), [
    ({}, "validation_error"),
    ({"product_id": "101"}, "validation_error"),
    ({"product_id": True}, "validation_error"),
    ({"product_id": 999999}, "validation_error"),
    ({"product_id": 107}, "product_inactive"),
    ({"product_id": 461, "topup_request": {"amount": "10.00"}}, "product_inactive"),
    ({"product_id": 101, "currency_code": "EUR"}, "currency_mismatch"),
    ({"product_id": 101, "currency_code": 840}, "validation_error"),
    ({"product_id": 101, "quantity": 0}, "validation_error"),
    ({"product_id": 101, "quantity": 101}, "validation_error"),
    ({"product_id": 101, "quantity": "2"}, "validation_error"),
    ({"product_id": 101, "quantity": True}, "validation_error"),
    ({"product_id": 101, "test": "yes"}, "validation_error"),
    ({"product_id": 101, "external_ref": LONG}, "validation_error"),
    ({"product_id": 101, "external_ref": 7}, "validation_error"),
    ({"product_id": 101, "topup_request": {"amount": "10.00"}}, "validation_error"),
    ({"product_id": 456}, "validation_error"),
    (topup(456, quantity=2), "validation_error"),
    (topup(456, currency_code="EUR"), "currency_mismatch"),
    ({"product_id": 456, "topup_request": {"amount": 10}}, "validation_error"),
    (topup(456, "ten"), "validation_error"),
    (topup(456, "4.00"), "invalid_amount"),
    (topup(456, "101"), "invalid_amount"),
    (topup(456, "10.50"), "invalid_amount"),
    (topup(456, "10.001"), "invalid_amount"),
    (topup(456, "-10"), "invalid_amount"),
    (topup(459, "2.75", {}), "invalid_amount"),
    (topup(456, account={"email": "user@example.com"}), "validation_error"),
    (topup(456, account={"steam_login": "bad login!"}), "validation_error"),
    (topup(456, account={"steam_login": "player123", "email": "not-an-email"}), "validation_error"),
    (topup(456, account={"steam_login": 123}), "validation_error"),  # type: ignore[dict-item]
    (topup(458, "10", {"phone": "12345"}), "validation_error"),
    ({"product_id": 456, "topup_request": {"amount": "10", "customer_account": ["x"]}}, "validation_error"),
])
async def test_invalid_orders_are_rejected_with_the_contract_code(
        client: httpx.AsyncClient, sim: Simulator, body: dict[str, Any], code: str) -> None:
    response = await create(client, body, "k-invalid")
    assert response.status_code == 400, response.text
    assert error_code(response) == code
    assert sim.all_orders() == []
    assert available(await balance(client), "USD") == "5000.00"
    assert "bad login!" not in response.text and "not-an-email" not in response.text  # values never echoed


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'"text"', b'{"product_id": NaN}'])
async def test_a_body_that_is_not_a_json_object_is_400(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(ORDERS, content=content, headers={"Idempotency-Key": "k"})
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": ""}, {"Idempotency-Key": "   "}])
async def test_the_idempotency_key_is_required(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post(ORDERS, json=voucher(), headers=headers)
    assert response.status_code == 400
    assert error_code(response) == "missing_idempotency_key"


async def test_the_key_is_checked_before_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(ORDERS, content=b"not json")
    assert error_code(response) == "missing_idempotency_key"


@pytest.mark.parametrize("key", ["has space", "x" * 256, "naïve"])
async def test_malformed_keys_are_refused(sim: Simulator, key: str) -> None:
    with pytest.raises(SandboxError, match="validation_error"):
        sim.create_order({"product_id": 101}, idempotency_key=key)


# -- balance ----------------------------------------------------------------------------------------------


async def test_insufficient_balance_then_deposit_then_same_key_succeeds(
        client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.set_balance("USD", "20.00")
    body = voucher(102)  # 50 USD
    refused = await create(client, body, "k-funds")
    assert refused.status_code == 400 and error_code(refused) == "insufficient_balance"
    assert sim.all_orders() == [] and available(await balance(client), "USD") == "20.00"
    sim.add_deposit("USD", "100.00")
    retried = await create(client, body, "k-funds")
    assert retried.status_code == 201
    order = decode(retried)
    assert (order["balance_before"], order["balance_after"]) == ("120.00", "70.00")
    assert sim.stats()["creates"] == {"attempted": 2, "created": 1, "replayed": 0, "conflicts": 0,
                                      "rejected": 1}


async def test_a_currency_without_balance_is_insufficient(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.set_balance("GBP", "0")
    response = await create(client, voucher(103), "k")
    assert error_code(response) == "insufficient_balance"


async def test_exactly_the_available_amount_can_be_spent(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.set_balance("USD", "20.00")
    order = decode(await create(client, voucher(101), "k"))
    assert order["balance_after"] == "0.00"


# -- idempotency ------------------------------------------------------------------------------------------


async def test_same_key_same_body_replays_the_original_in_its_current_state(
        client: httpx.AsyncClient, sim: Simulator, clock: ManualClock) -> None:
    first = await create(client, topup(), "k-idem")
    assert first.status_code == 201
    clock.advance(10)
    again = await client.post(ORDERS, content=b'{"topup_request": {"customer_account": {"email": '
                              b'"user@example.com", "steam_login": "player123"}, "amount": "10.00"},'
                              b' "product_id": 456}', headers={"Idempotency-Key": "k-idem"})
    assert again.status_code == 200
    replay = decode(again)
    assert replay["id"] == decode(first)["id"] and replay["status"] == "completed"
    assert len(sim.all_orders()) == 1
    assert available(await balance(client), "USD") == "4987.50"  # charged once
    assert sim.stats()["creates"]["replayed"] == 1


async def test_same_key_different_body_is_a_conflict(client: httpx.AsyncClient, sim: Simulator) -> None:
    assert (await create(client, voucher(101), "k-c")).status_code == 201
    conflict = await create(client, voucher(101, quantity=2), "k-c")
    assert conflict.status_code == 409 and error_code(conflict) == "idempotency_conflict"
    assert len(sim.all_orders()) == 1 and sim.stats()["creates"]["conflicts"] == 1


async def test_a_replay_wins_over_validation_that_would_now_fail(
        client: httpx.AsyncClient, sim: Simulator) -> None:
    original = decode(await create(client, voucher(101), "k-r"))
    sim.set_balance("USD", "0")
    replay = await create(client, voucher(101), "k-r")
    assert replay.status_code == 200 and decode(replay)["id"] == original["id"]


async def test_numerically_equal_bodies_are_the_same_body(sim: Simulator) -> None:
    sim.create_order(b'{"product_id": 101, "quantity": 1}', idempotency_key="k")
    again = sim.create_order(b'{"quantity": 1.0, "product_id": 101}', idempotency_key="k")
    assert not again.created


# -- failure ----------------------------------------------------------------------------------------------


async def test_a_failing_product_fails_and_releases_its_charge(
        client: httpx.AsyncClient, clock: ManualClock) -> None:
    order = decode(await create(client, voucher(199), "k-fail"))
    assert order["status"] == "pending" and available(await balance(client), "USD") == "4995.00"
    clock.advance(5)
    failed = decode(await client.get(f"{ORDERS}/{order['id']}"))
    assert failed["status"] == "failed" and failed["failed_at"] == "2026-11-24T09:00:05Z"
    assert failed["completed_at"] is None and failed["order_content"] is None and failed["failure_reason"]
    assert failed["charged_amount"] == "5.00"  # what was charged stays on record
    usd = next(i for i in (await balance(client))["items"] if i["currency_code"] == "USD")
    assert usd == {"currency_code": "USD", "available": "5000.00", "updated_at": "2026-11-24T09:00:05Z"}


async def test_fail_product_ids_applies_to_topups_too(clock: ManualClock) -> None:
    sim = Simulator(SandboxConfig(fail_product_ids=frozenset({456})), clock=clock)
    order = sim.create_order(topup(), idempotency_key="k").order
    assert sim.balance()["items"][2]["available"] == "4987.50"
    clock.advance(5)
    assert sim.tick() == 1
    assert sim.get_order(order["id"])["status"] == "failed"
    assert sim.balance()["items"][2]["available"] == "5000.00"
    assert sim.tick() == 0


# -- reading ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order_id", ["00000000-0000-4000-8000-000000000000", "nope"])
async def test_unknown_order_is_404(client: httpx.AsyncClient, order_id: str) -> None:
    response = await client.get(f"{ORDERS}/{order_id}")
    assert response.status_code == 404 and error_code(response) == "not_found"


async def test_orders_list_is_newest_first_filtered_and_paginated(
        client: httpx.AsyncClient, clock: ManualClock) -> None:
    ids = []
    for n, body in enumerate([voucher(101), voucher(199), topup(), voucher(101), voucher(104),
                              voucher(101), voucher(199)]):
        ids.append(decode(await create(client, body, f"k{n}"))["id"])
        clock.advance(1)
    # Now t=7: orders created at t=0..2 are final (delay 5), the rest pending.
    everything = decode(await client.get(ORDERS))
    assert [o["id"] for o in everything["items"]] == ids[::-1]
    assert (everything["page"], everything["pageSize"], everything["total"]) == (1, 50, 7)

    pages = [decode(await client.get(ORDERS, params={"page": n, "pageSize": 3})) for n in (1, 2, 3, 4)]
    assert [[o["id"] for o in p["items"]] for p in pages] == [ids[6:3:-1], ids[3:0:-1], ids[:1], []]
    assert all(p["total"] == 7 for p in pages)

    by_status = {s: [o["id"] for o in decode(await client.get(ORDERS, params={"status": s}))["items"]]
                 for s in ("pending", "completed", "failed")}
    assert by_status == {"pending": ids[:2:-1], "completed": [ids[2], ids[0]], "failed": [ids[1]]}
    only_101 = decode(await client.get(ORDERS, params={"product_id": 101, "pageSize": 2}))
    assert [o["id"] for o in only_101["items"]] == [ids[5], ids[3]] and only_101["total"] == 3
    both = decode(await client.get(ORDERS, params={"product_id": 199, "status": "failed"}))
    assert [o["id"] for o in both["items"]] == [ids[1]]


@pytest.mark.parametrize("query", [{"status": "done"}, {"product_id": "x"}, {"page": 0}])
async def test_bad_order_filters_are_400(client: httpx.AsyncClient, query: dict[str, str | int]) -> None:
    response = await client.get(ORDERS, params=query)
    assert response.status_code == 400 and error_code(response) == "validation_error"


async def test_external_ref_is_not_a_filter(client: httpx.AsyncClient) -> None:
    await create(client, voucher(external_ref="A"), "k1")
    await create(client, voucher(external_ref="B"), "k2")
    body = decode(await client.get(ORDERS, params={"external_ref": "A"}))
    assert body["total"] == 2  # ignored, as on the real server: finding by ref is the client's job


async def test_completion_is_lazy_and_dated_when_it_was_due(sim: Simulator, clock: ManualClock) -> None:
    order = sim.create_order({"product_id": 101}, idempotency_key="k").order
    clock.advance(timedelta(hours=3))  # nobody looked for three hours
    done = sim.get_order(order["id"])
    assert done["completed_at"] == "2026-11-24T09:00:05Z"
    assert Decimal(done["charged_amount"]) == 20
