"""Ordering from Slack, end to end: `/gate buy` → modal → review → place → status message → DM with the code.

The channel message is edited in place as the order moves and its thread holds the history; the code
reaches only the requester's DM, never the channel.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import pytest

from gatebot.orders import OrderDraft
from gatebot.slack import ids
from gatebot.store.models import OrderStatus
from tests.leaks import leaks

from .conftest import ADMIN, NO_BOT_CHANNEL, OPS, OPS_CHANNEL, Harness

STEAM_20 = 101  # voucher, USD 20
STEAM_TOPUP = 456  # USD 5-100 step 1, margin 0.25, steam_login (pattern) + optional email


def field_text(blocks: list[dict[str, Any]], label: str) -> str:
    for block in blocks:
        for f in block.get("fields", []):
            if f["text"].startswith(f"*{label}*"):
                return str(f["text"])
    raise AssertionError(f"no field {label!r}")


async def test_voucher_order_from_buy_to_the_dm(harness: Harness) -> None:
    h = harness
    view = await h.open_modal(OPS, "buy steam gift card 20")
    # The single match is preselected in the view that views.open showed.
    assert view.blocks[0]["element"]["initial_option"]["value"] == str(STEAM_20)
    assert ids.ORDER_QUANTITY in {b["block_id"] for b in view.blocks}

    h.driver.set_input(view, ids.ORDER_QUANTITY, ids.ORDER_QUANTITY, "2")
    h.driver.set_input(view, ids.ORDER_EXTERNAL_REF, ids.ORDER_EXTERNAL_REF, "INV-1001")
    reviewed = await h.submit(OPS, view)
    assert reviewed.response_action == "push"
    confirm = reviewed.view
    assert confirm is not None and confirm.callback_id == ids.ORDER_CONFIRM
    assert "USD 40.00" in field_text(confirm.blocks, "Estimated cost")
    assert "USD 5,000.00 → USD 4,960.00" in field_text(confirm.blocks, "Balance now → after")
    assert h.gate_creates() == 0, "reviewing sends nothing to Gate"

    placed = await h.submit(OPS, confirm)
    assert placed.closed and h.ws.top_view(OPS) is None
    message = await h.wait(lambda: h.ws.latest_message(OPS_CHANNEL), "the order's status message")
    await h.settle()
    (order,) = h.orders()
    assert (order.status, order.quantity, order.external_ref) == (OrderStatus.PENDING, 2, "INV-1001")
    assert order.origin_channel == OPS_CHANNEL and (order.message_ts, order.message_in_dm) == (message.ts, False)
    assert "Pending" in message.text and h.gate_creates() == 1

    await h.complete()
    (order,) = h.orders()
    assert order.status is OrderStatus.COMPLETED and order.dm_sent
    # The channel message was edited in place and says delivered, without the code.
    assert message.edited and "Completed" in message.text
    assert "Delivered to <@UBOB> by DM" in str(message.blocks)
    # The thread holds the history: intent saved, pending, completed.
    notes = [m.text for m in h.ws.replies(OPS_CHANNEL, message.ts)]
    assert len(notes) == 3 and "`pending`" in notes[1] and "`completed`" in notes[2]
    # The requester's DM has both codes; no channel ever shows one.
    dm = await h.wait(lambda: h.ws.dm_messages(OPS), "the DM with the code")
    codes = set(h.codes(order))
    assert len(codes) == 4  # two vouchers, code + PIN each
    assert all(code in str(dm[-1].blocks) for code in codes)
    assert "ready" in dm[-1].text and not leaks(codes, dm[-1].text)
    shown = h.texts_in(OPS_CHANNEL)
    assert not leaks(codes, shown)
    assert [a.target for a in h.audit("order.create") if a.allowed] == [order.number]


async def test_top_up_order_with_the_account_fields_of_the_product(harness: Harness) -> None:
    h = harness
    view = await h.open_modal(OPS)
    await h.choose_product(OPS, view, STEAM_TOPUP, query="steam")
    block_ids = [b["block_id"] for b in view.blocks]
    assert block_ids[:4] == [ids.ORDER_PRODUCT, ids.ORDER_AMOUNT, ids.account_block_id("steam_login"),
                             ids.account_block_id("email")]
    amount = view.blocks[1]
    assert amount["element"]["min_value"] == "5" and amount["element"]["max_value"] == "100"
    assert "steps of 1" in amount["hint"]["text"] and "25% margin" in amount["hint"]["text"]

    h.driver.set_input(view, ids.ORDER_AMOUNT, ids.ORDER_AMOUNT, "25")
    h.driver.set_input(view, ids.account_block_id("steam_login"), ids.account_block_id("steam_login"), "player_123")
    h.driver.set_input(view, ids.account_block_id("email"), ids.account_block_id("email"), "p@example.com")
    reviewed = await h.submit(OPS, view)
    confirm = reviewed.view
    assert confirm is not None and confirm.callback_id == ids.ORDER_CONFIRM
    assert "USD 31.25" in field_text(confirm.blocks, "Estimated cost")  # 25 x 1.25
    assert "player_123" in str(confirm.blocks)

    await h.submit(OPS, confirm)
    message = await h.wait(lambda: h.ws.latest_message(OPS_CHANNEL), "the status message")
    await h.settle()
    (order,) = h.orders()
    assert order.amount == Decimal("25.00") and order.charged_amount == Decimal("31.25")
    assert h.core.orders.content(order) is not None  # the vendor id arrives with the pending order
    assert "player_123" not in h.texts_in(OPS_CHANNEL), "customer accounts stay out of channels"

    await h.complete()
    dm = await h.wait(lambda: h.ws.dm_messages(OPS), "the delivery DM")
    vendor_id = str((h.core.orders.content(h.orders()[0]) or {})["vendor_order_id"])
    assert vendor_id in str(dm[-1].blocks)
    assert message.edited and "Completed" in message.text
    assert "Delivered to <@UBOB> by DM" in str(message.blocks)
    assert vendor_id not in h.texts_in(OPS_CHANNEL), "delivery details go to the DM only"


async def test_no_channel_access_falls_back_to_a_dm(harness: Harness) -> None:
    h = harness
    view = await h.open_modal(OPS, "buy steam gift card 20", channel=NO_BOT_CHANNEL)
    confirm = (await h.submit(OPS, view)).view
    assert confirm is not None
    await h.submit(OPS, confirm)
    dm_channel = h.ws.dm_channel(OPS).id
    status = await h.wait(lambda: h.ws.latest_message(dm_channel), "the status message in the DM")
    await h.settle()
    (order,) = h.orders()
    assert order.origin_channel == NO_BOT_CHANNEL, "where the order came from is kept"
    assert (order.message_ts, order.message_in_dm) == (status.ts, True) and h.status_message(order) is status
    assert h.ws.messages(NO_BOT_CHANNEL) == []
    assert any(c.error == "not_in_channel" for c in h.ws.calls("chat.postMessage"))

    await h.complete()
    assert "Completed" in status.text
    assert len([m for m in h.ws.dm_messages(OPS) if "is ready" in m.text]) == 1


async def test_new_order_from_the_home_tab(harness: Harness) -> None:
    h = harness
    await h.driver.app_home_opened(OPS)
    home = await h.wait(lambda: h.ws.home_view(OPS), "the Home tab")
    await h.driver.click(OPS, home, ids.HOME_NEW_ORDER)
    view = await h.wait(lambda: h.ws.top_view(OPS), "the order modal")
    await h.choose_product(OPS, view, STEAM_20, query="")
    confirm = (await h.submit(OPS, view)).view
    assert confirm is not None
    await h.submit(OPS, confirm)
    dm_channel = h.ws.dm_channel(OPS).id
    await h.wait(lambda: h.ws.latest_message(dm_channel), "the status message in the DM (no channel)")
    await h.settle()
    (order,) = h.orders()
    assert order.origin_channel is None and h.status_message(order).channel == dm_channel


async def test_double_submit_and_slack_retry_place_one_order(harness: Harness,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    h = harness
    view = await h.open_modal(OPS, "buy steam gift card 20")
    confirm = (await h.submit(OPS, view)).view
    assert confirm is not None

    def refused_repeats() -> int:
        return sum("not placing it twice" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.INFO, logger="gatebot.slack.listeners.order_flow"):
        answers = await asyncio.gather(
            h.send_view_submission(OPS, confirm), h.send_view_submission(OPS, confirm),
            h.send_view_submission(OPS, confirm, retry_num=1))
        assert [r.status_code for r in answers] == [200, 200, 200]
        await h.wait(lambda: refused_repeats() >= 2 or None, "both repeats to be recognised")
        # and once more, long after the first one went through
        assert (await h.send_view_submission(OPS, confirm, retry_num=2)).status_code == 200
        await h.wait(lambda: refused_repeats() >= 3 or None, "the late retry to be recognised")
    await h.settle()

    assert len(h.orders()) == 1
    assert h.gate_creates() == 1
    statuses = [m for m in h.ws.messages(OPS_CHANNEL) if m.text.startswith("Order #")]
    assert len(statuses) == 1


async def test_failed_order_says_why_and_what_next(harness: Harness) -> None:
    h = harness
    view = await h.open_modal(OPS, "buy sandbox-always-fails")
    confirm = (await h.submit(OPS, view)).view
    assert confirm is not None
    await h.submit(OPS, confirm)
    message = await h.wait(lambda: h.ws.latest_message(OPS_CHANNEL), "the status message")
    await h.complete()
    assert "Failed" in message.text
    assert "charge is returned to the balance; place a new order to try again" in str(message.blocks)
    assert h.ws.dm_messages(OPS) == [] or all("is ready" not in m.text for m in h.ws.dm_messages(OPS))


async def test_waiting_for_funds_says_what_happens_next(harness: Harness) -> None:
    h = harness
    draft = OrderDraft(product=STEAM_20, requester=ADMIN, origin_channel=OPS_CHANNEL)
    quote = await h.core.orders.quote(draft)
    order = await h.core.orders.save_intent(quote, draft)
    h.sim.set_balance("USD", "10.00")  # spent elsewhere between our check and the order
    assert order.id is not None
    await h.core.orders.submit(order.id)
    await h.settle()
    (stored,) = h.orders()
    assert stored.status is OrderStatus.WAITING_FUNDS
    message = h.status_message(stored)
    assert "Waiting for funds" in message.text
    assert "resubmitted automatically (same key, no double charge) once a deposit posts" in str(message.blocks)
    notes = h.ws.replies(OPS_CHANNEL, message.ts)
    assert "`waiting_funds`" in notes[-1].text


async def test_placing_fails_politely_when_the_balance_dropped_after_review(harness: Harness) -> None:
    h = harness
    view = await h.open_modal(OPS, "buy steam gift card 20")
    confirm = (await h.submit(OPS, view)).view
    assert confirm is not None
    h.sim.set_balance("USD", "5.00")
    await h.submit(OPS, confirm)
    reply = await h.reply_to(OPS)
    assert "The order was not placed: Not enough USD" in reply.text
    assert "Nothing was sent to Gate" in reply.text
    assert h.orders() == [] and h.gate_creates() == 0


async def test_the_reviewed_draft_is_stored_encrypted_and_forgotten_when_the_form_closes(harness: Harness) -> None:
    h = harness
    view = await h.open_modal(OPS)
    await h.choose_product(OPS, view, STEAM_TOPUP)
    h.driver.set_input(view, ids.ORDER_AMOUNT, ids.ORDER_AMOUNT, "25")
    h.driver.set_input(view, ids.account_block_id("steam_login"), ids.account_block_id("steam_login"), "secret_login")
    confirm = (await h.submit(OPS, view)).view
    assert confirm is not None
    rows = h.draft_rows()
    assert len(rows) == 1 and "secret_login" not in rows[0].value, "the customer account is encrypted"
    await h.driver.close_view(OPS, confirm)  # "Back"
    await h.driver.close_view(OPS, view)  # "Cancel"
    await h.wait(lambda: not h.draft_rows() or None, "the draft to be forgotten")
    assert h.orders() == [] and h.gate_creates() == 0
