"""Every validation error of the order modal appears inline on the right block, and nothing reaches Gate.

Values the Slack client itself would refuse (a number below ``min_value``, an empty required input)
are submitted with ``force=True``: the app must refuse them too, since a client is not a guarantee.
"""

from __future__ import annotations

from typing import Any

import pytest

from gatebot.orders import OrderDraft
from gatebot.slack import ids

from .conftest import ADMIN, OPS, Harness

STEAM_20 = 101
STEAM_TOPUP = 456  # USD 5-100 step 1; steam_login [A-Za-z0-9_]{3,32} (required), email (optional)
VODAFONE = 458  # GBP 5-50 step 5; phone "Mobile number" (phone type, +44 pattern)
ORANGE = 459  # EUR 2.5-60 step 0.5; no published fields: configured below (msisdn, phone)
FREE_FIRE = 460  # USD 1-200 step 0.5; no fields anywhere: free-form key=value

LOGIN = ids.account_block_id("steam_login")
EMAIL = ids.account_block_id("email")
PHONE = ids.account_block_id("phone")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"gatebot_account_fields": {"orange-france": [
        {"name": "msisdn", "label": "Mobile number", "type": "phone", "required": True}]}}


async def form(h: Harness, product: int, values: dict[str, str], *, force: bool = True) -> dict[str, str]:
    """Open the modal, pick ``product``, type ``values`` (block id → text), submit; the inline errors."""
    view = await h.open_modal(OPS)
    await h.choose_product(OPS, view, product)
    for block_id, text in values.items():
        h.driver.set_input(view, block_id, block_id, text)
    result = await h.submit(OPS, view, force=force)
    assert result.response_action == "errors", f"expected inline errors, got {result.response_action}"
    assert result.view is view, "the form stays open"
    assert h.gate_creates() == 0 and h.orders() == [], "nothing may reach Gate or the store"
    return result.errors


async def test_product_missing(harness: Harness) -> None:
    view = await harness.open_modal(OPS)
    result = await harness.submit(OPS, view, force=True)
    assert result.errors == {ids.ORDER_PRODUCT: "Pick a product."}
    assert harness.gate_creates() == 0


@pytest.mark.parametrize(("amount", "message"), [
    ("4", "The amount must be between USD 5.00 and USD 100.00."),
    ("150", "The amount must be between USD 5.00 and USD 100.00."),
    ("10.50", "The amount must go in steps of USD 1.00 — e.g. USD 10.00 or USD 11.00."),
    ("ten", "Enter a number, like 10.00."),
    ("10.555", "USD amounts have at most 2 decimals."),
    ("0", "Enter an amount above zero."),
])
async def test_amount_range_step_and_format(harness: Harness, amount: str, message: str) -> None:
    errors = await form(harness, STEAM_TOPUP, {ids.ORDER_AMOUNT: amount, LOGIN: "player_123"})
    assert errors == {ids.ORDER_AMOUNT: message}


@pytest.mark.parametrize("quantity", ["0", "101", "1.5", "two"])
async def test_quantity(harness: Harness, quantity: str) -> None:
    errors = await form(harness, STEAM_20, {ids.ORDER_QUANTITY: quantity})
    assert errors == {ids.ORDER_QUANTITY: "Enter a whole number from 1 to 100."}


async def test_required_account_field(harness: Harness) -> None:
    errors = await form(harness, STEAM_TOPUP, {ids.ORDER_AMOUNT: "25"})
    assert errors == {LOGIN: "Enter the steam login."}


async def test_account_field_pattern_and_email(harness: Harness) -> None:
    errors = await form(harness, STEAM_TOPUP, {ids.ORDER_AMOUNT: "25", LOGIN: "x!", EMAIL: "not-an-email"},
                        force=False)
    assert errors == {
        LOGIN: "Steam login is not in the expected format ([A-Za-z0-9_]{3,32}).",
        EMAIL: "Email for the receipt must be an email address like name@example.com.",
    }


async def test_phone_field(harness: Harness) -> None:
    errors = await form(harness, VODAFONE, {ids.ORDER_AMOUNT: "10", PHONE: "12345"}, force=False)
    assert errors == {PHONE: "Mobile number must be a phone number like +14155550123."}


async def test_configured_account_fields_are_used_when_the_product_publishes_none(harness: Harness) -> None:
    msisdn = ids.account_block_id("msisdn")
    errors = await form(harness, ORANGE, {ids.ORDER_AMOUNT: "10", msisdn: "call me"}, force=False)
    assert errors == {msisdn: "Mobile number must be a phone number like +14155550123."}


@pytest.mark.parametrize(("text", "message"), [
    ("player 123", "line 1 has no '=': write it as key=value"),
    ("player_id=123\nplayer_id=456", "line 2: player_id is given twice"),
    ("bad key=1", "line 1: 'bad key' is not a valid field name (letters, digits, _ . -)"),
    ("", "Enter the customer's account as key=value lines."),
])
async def test_free_form_account_parse_errors(harness: Harness, text: str, message: str) -> None:
    values = {ids.ORDER_AMOUNT: "10"}
    if text:
        values[ids.ORDER_ACCOUNT_FREE] = text
    errors = await form(harness, FREE_FIRE, values)
    assert errors == {ids.ORDER_ACCOUNT_FREE: message}


async def test_external_ref_format(harness: Harness) -> None:
    errors = await form(harness, STEAM_20, {ids.ORDER_EXTERNAL_REF: "!!bad ref"}, force=False)
    assert errors == {ids.ORDER_EXTERNAL_REF: "A reference is 1-64 letters, digits and . _ : / # - (starting "
                                              "with a letter or digit), e.g. INV-1001."}


async def test_external_ref_already_used(harness: Harness) -> None:
    h = harness
    await h.core.orders.place(OrderDraft(product=STEAM_20, requester=ADMIN, external_ref="INV-7"))
    creates = h.gate_creates()
    view = await h.open_modal(OPS)
    await h.choose_product(OPS, view, STEAM_20)
    h.driver.set_input(view, ids.ORDER_EXTERNAL_REF, ids.ORDER_EXTERNAL_REF, "INV-7")
    result = await h.submit(OPS, view)
    assert result.errors == {ids.ORDER_EXTERNAL_REF: "INV-7 is already used by order #1 (pending); use another "
                                                     "reference, or look that order up."}
    assert h.gate_creates() == creates and len(h.orders()) == 1


async def test_insufficient_balance_on_the_quantity_of_a_voucher(harness: Harness) -> None:
    harness.sim.set_balance("USD", "30.00")
    errors = await form(harness, STEAM_20, {ids.ORDER_QUANTITY: "2"}, force=False)
    assert errors == {ids.ORDER_QUANTITY: "Not enough USD: this order costs USD 40.00 and USD 30.00 is available "
                                          "(short by USD 10.00). Ask finance for a deposit, then try again."}


async def test_insufficient_balance_on_the_amount_of_a_top_up(harness: Harness) -> None:
    harness.sim.set_balance("USD", "30.00")
    errors = await form(harness, STEAM_TOPUP, {ids.ORDER_AMOUNT: "25", LOGIN: "player_123"}, force=False)
    assert errors == {ids.ORDER_AMOUNT: "Not enough USD: this order costs USD 31.25 and USD 30.00 is available "
                                        "(short by USD 1.25). Ask finance for a deposit, then try again."}


async def test_gate_unreachable_is_said_on_the_form(harness: Harness) -> None:
    harness.sim.faults.update({"garbage_next": 10})
    errors = await form(harness, STEAM_20, {}, force=False)
    assert list(errors) == [ids.ORDER_PRODUCT]
    assert "Could not read the balance from Gate" in errors[ids.ORDER_PRODUCT]
    assert "no order was sent" in errors[ids.ORDER_PRODUCT]


async def test_the_form_never_reaches_the_review_without_the_ops_role(harness: Harness) -> None:
    """A form opened by someone who lost the role meanwhile (or a forged submission) is refused."""
    h = harness
    view = await h.open_modal(OPS)
    await h.choose_product(OPS, view, STEAM_20)
    h.deps.roles._users["ops"] = frozenset()  # bob loses the role while the form is open
    result = await h.submit(OPS, view)
    assert result.errors == {ids.ORDER_PRODUCT: "Only people with the ops role can place orders; ask a gatebot "
                                                "admin."}
    denied = [a for a in h.audit("order.create") if not a.allowed]
    assert [(a.actor, a.detail) for a in denied] == [(OPS, "needs the ops role")]
