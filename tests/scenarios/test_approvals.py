"""Four-eyes approvals in Slack, end to end (issue 13): the confirm step says an order needs approval, the
request message in the approvers' channel, Approve / Reject (with a reason) buttons, one-shot and safe
against crafted clicks, the requester's DM, expiry, App Home, ``/gate approvals``, ``/gate balance`` with
the daily limits and the order lookup's approval trail."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gatebot import monitor
from gatebot.alerts import AlertPolicy, HealthObservation
from gatebot.emulator import LoopbackServer, Message
from gatebot.runtime import build_runtime, core
from gatebot.sandbox.app import create_app as create_sandbox
from gatebot.sandbox.simulator import SandboxConfig
from gatebot.slack import ids
from gatebot.slack.web import create_web_app
from gatebot.store.models import Order, OrderStatus

from .conftest import ADMIN, COMPLETION_DELAY, FINANCE, NOBODY, OPS, OPS_CHANNEL, SECRET, Harness

APPROVALS = "CAPPROVE"
STEAM_20 = 101  # voucher, USD 20


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"gatebot_approval_over": "USD:50", "gatebot_approval_channel": APPROVALS,
            "gatebot_daily_limit": "user:USD:500"}


@pytest.fixture(autouse=True)
def approvals_channel(harness: Harness) -> None:
    harness.ws.add_channel("approvals", id=APPROVALS, members=[ADMIN, OPS, FINANCE, NOBODY])


async def request(h: Harness, user: str = OPS, quantity: int = 3) -> tuple[Order, Message]:
    """``user`` orders ``quantity`` Steam 20 vouchers (over USD 50: approval) through the modal; returns the
    order and its request message."""
    before = len(h.ws.messages(APPROVALS))
    view = await h.open_modal(user, "buy steam gift card 20")
    h.driver.set_input(view, ids.ORDER_QUANTITY, ids.ORDER_QUANTITY, str(quantity))
    confirm = (await h.submit(user, view)).view
    assert confirm is not None and confirm.callback_id == ids.ORDER_CONFIRM
    assert confirm.submit is not None and confirm.submit["text"] == "Request approval"
    assert (f"This order needs approval because it costs USD {quantity * 20}.00, over the approval threshold "
            "of USD 50.00; nothing is sent to Gate until an approver approves it.") in str(confirm.blocks)
    await h.submit(user, confirm)
    message = await h.wait(lambda: (lambda m: m[before] if len(m) > before else None)(h.ws.messages(APPROVALS)),
                           "the approval request message")
    await h.settle()
    order = h.orders()[-1]
    assert order.status is OrderStatus.AWAITING_APPROVAL and order.requester == user
    return order, message


def buttons(message: Message) -> list[dict[str, Any]]:
    return [e for b in message.blocks or [] if b["type"] == "actions" for e in b["elements"]]


async def ephemeral_to(h: Harness, user: str, channel: str = APPROVALS, after: int = 0) -> str:
    reply = await h.reply_to(user, channel, after=after)
    return f"{reply.text} {reply.blocks}"


def order(h: Harness, order_id: int | None) -> Order:
    return next(o for o in h.orders() if o.id == order_id)


async def test_a_request_is_approved_by_finance_and_sent_once(harness: Harness) -> None:
    h = harness
    placed, message = await request(h)
    assert h.gate_creates() == 0, "nothing goes to Gate before the approval"
    text = str(message.blocks)
    assert f"Approval needed: order #{placed.id}" in text and "<@UBOB>" in text and "USD 60.00" in text
    assert "USD 5,000.00 → USD 4,940.00" in text  # balance now → after
    assert "USD 60.00 of USD 500.00 (personal daily limit)" in text  # spend today, this request included
    assert [(b["action_id"], b["value"]) for b in buttons(message)] == [
        (ids.APPROVAL_APPROVE, str(placed.id)), (ids.APPROVAL_REJECT, str(placed.id))]
    assert "Waiting for approval" in h.status_message(placed).text

    await h.driver.click(FINANCE, message, ids.APPROVAL_APPROVE)
    await h.wait(lambda: message.edited or None, "the request message to be edited")
    await h.settle()
    approved = order(h, placed.id)
    assert approved.status is OrderStatus.PENDING and approved.decided_by == FINANCE
    assert approved.idempotency_key == placed.idempotency_key and h.gate_creates() == 1
    assert "Approved* by <@UDAN>" in str(message.blocks) and not buttons(message), "one-shot: buttons gone"
    dm = await h.wait(lambda: h.ws.dm_messages(OPS), "the requester's DM")
    assert "was approved" in dm[-1].text

    # The lookup shows the trail: requested by whom, decided by whom (the requester may look up their own).
    await h.command(OPS, f"order #{placed.id}")
    trail = await ephemeral_to(h, OPS, OPS_CHANNEL)
    assert "approval requested: it costs USD 60.00" in trail and "Approved by UDAN" in trail

    # A second click (a double click, a Slack retry) changes nothing and says so.
    await h.driver.post(*_crafted(h, FINANCE, message, placed.id))
    assert f"Order #{placed.id} was already approved by UDAN; nothing changed." in await ephemeral_to(h, FINANCE)
    assert h.gate_creates() == 1


def _crafted(h: Harness, user: str, message: Message, order_id: int | str | None,
             action_id: str = ids.APPROVAL_APPROVE) -> tuple[bytes, str]:
    """A ``block_actions`` as Slack would send it for a click on ``message`` whose button names ``order_id``
    (or a batch: ``"B3"``; a hand-made payload: the message need not hold such a button)."""
    import json
    from urllib.parse import urlencode

    payload = {"type": "block_actions", "user": h.ws.user_ref(user), "api_app_id": h.ws.app_id, "token": "x",
               "team": h.ws.team_ref(), "trigger_id": h.ws.issue_trigger(user),
               "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel,
                             "is_ephemeral": False},
               "channel": {"id": message.channel}, "message": h.ws.message_dict(message),
               "response_url": h.ws.issue_response_url(h.driver.emulator_base_url, user=user,
                                                       channel=message.channel, original=message),
               "actions": [{"type": "button", "action_id": action_id, "block_id": "x", "value": str(order_id),
                            "action_ts": h.ws.now_ts()}]}
    return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"


async def test_self_approval_by_a_requester_holding_finance_is_refused(harness: Harness) -> None:
    h = harness
    placed, message = await request(h, user=ADMIN)  # alice is an admin: she holds the finance role too
    await h.driver.click(ADMIN, message, ids.APPROVAL_APPROVE)
    assert "You placed this order, so someone else has to approve or reject it" in await ephemeral_to(h, ADMIN)
    await h.driver.click(ADMIN, message, ids.APPROVAL_REJECT)
    assert "someone else has to approve" in await ephemeral_to(h, ADMIN, after=1)
    assert h.ws.top_view(ADMIN) is None, "no reject form for the requester"
    await h.settle()
    assert order(h, placed.id).status is OrderStatus.AWAITING_APPROVAL and h.gate_creates() == 0
    assert not message.edited
    refused = [a for a in h.audit("approval.decide") if not a.allowed]
    assert [a.actor for a in refused] == [ADMIN, ADMIN]


async def test_crafted_clicks_from_a_non_approver_or_for_another_request_change_nothing(harness: Harness) -> None:
    h = harness
    first, first_message = await request(h)
    second, _second_message = await request(h, quantity=4)
    await h.driver.click(NOBODY, first_message, ids.APPROVAL_APPROVE)
    assert "Only admin or finance may approve or reject orders." in await ephemeral_to(h, NOBODY)
    # An approver's click on the first request's message naming the second request's id.
    await h.driver.post(*_crafted(h, FINANCE, first_message, second.id))
    assert "does not belong to this approval request" in await ephemeral_to(h, FINANCE)
    await h.driver.post(*_crafted(h, FINANCE, first_message, second.id, ids.APPROVAL_REJECT))
    assert "does not belong to this approval request" in await ephemeral_to(h, FINANCE, after=1)
    await h.settle()
    assert [order(h, o.id).status for o in (first, second)] == [OrderStatus.AWAITING_APPROVAL] * 2
    assert h.gate_creates() == 0 and not first_message.edited and h.ws.top_view(FINANCE) is None


async def test_two_approvers_clicking_at_once_make_one_gate_order(harness: Harness) -> None:
    h = harness
    placed, message = await request(h)
    await asyncio.gather(h.driver.click(FINANCE, message, ids.APPROVAL_APPROVE),
                         h.driver.click(ADMIN, message, ids.APPROVAL_APPROVE))
    await h.wait(lambda: message.edited or None, "the request message to be edited")
    loser = ADMIN if order(h, placed.id).decided_by == FINANCE else FINANCE
    assert "was already approved by" in await ephemeral_to(h, loser)
    await h.settle()
    assert h.gate_creates() == 1
    assert order(h, placed.id).status is OrderStatus.PENDING


async def test_reject_asks_a_reason_then_tells_the_requester_without_calling_gate(harness: Harness) -> None:
    h = harness
    placed, message = await request(h)
    await h.driver.click(FINANCE, message, ids.APPROVAL_REJECT)
    modal = await h.wait(lambda: h.ws.top_view(FINANCE), "the reject modal")
    assert modal.callback_id == ids.APPROVAL_REJECT_MODAL
    h.driver.set_input(modal, ids.APPROVAL_REASON, ids.APPROVAL_REASON, "   ")
    empty = await h.submit(FINANCE, modal)
    assert empty.errors == {ids.APPROVAL_REASON: "Say why the order is rejected (the requester is told the reason)."}
    h.driver.set_input(modal, ids.APPROVAL_REASON, ids.APPROVAL_REASON, "over the Q4 budget")
    assert (await h.submit(FINANCE, modal)).closed
    await h.wait(lambda: message.edited or None, "the request message to be edited")
    await h.settle()
    rejected = order(h, placed.id)
    assert rejected.status is OrderStatus.REJECTED and rejected.decision_reason == "over the Q4 budget"
    assert "Rejected* by <@UDAN>" in str(message.blocks) and "over the Q4 budget" in str(message.blocks)
    assert not buttons(message)
    dm = await h.wait(lambda: h.ws.dm_messages(OPS), "the requester's DM")
    assert "was rejected" in dm[-1].text and "over the Q4 budget" in str(dm[-1].blocks)
    assert h.gate_creates() == 0


async def test_an_expired_request_is_edited_and_the_requester_told(harness: Harness) -> None:
    h = harness
    placed, message = await request(h)
    h.clock.advance(timedelta(hours=24, seconds=1))
    assert await h.core.orders.expire_approvals() == 1
    await h.settle()
    assert ":hourglass: *Expired*" in str(message.blocks) and not buttons(message)
    dm = await h.wait(lambda: h.ws.dm_messages(OPS), "the requester's DM")
    assert "expired without approval" in dm[-1].text
    await h.driver.click(FINANCE, dataclasses.replace(message, blocks=_with_buttons(message, placed.id)),
                         ids.APPROVAL_APPROVE)
    assert "has expired; nothing changed" in await ephemeral_to(h, FINANCE)
    assert h.gate_creates() == 0


def _with_buttons(message: Message, order_id: int | None) -> list[dict[str, Any]]:
    """``message``'s blocks with the (removed) buttons put back: a click from a stale client."""
    blocks = copy.deepcopy(message.blocks or [])
    blocks.append({"type": "actions", "elements": [
        {"type": "button", "action_id": ids.APPROVAL_APPROVE, "value": str(order_id),
         "text": {"type": "plain_text", "text": "Approve"}}]})
    return blocks


async def test_gate_down_keeps_the_request_open_and_tells_the_approver(harness: Harness) -> None:
    h = harness
    placed, message = await request(h)
    policy = AlertPolicy.from_settings(h.core.settings)
    monitor.observe_health(h.core.db, [HealthObservation(ok=False, detail="HTTP 503")] * policy.health_fail_after,
                           h.clock.now(), policy)
    await h.driver.click(FINANCE, message, ids.APPROVAL_APPROVE)
    answer = await ephemeral_to(h, FINANCE)
    assert f"Order #{placed.id} was not approved: The Gate API is down" in answer and "stays open" in answer
    await h.settle()
    assert order(h, placed.id).status is OrderStatus.AWAITING_APPROVAL and h.gate_creates() == 0
    assert buttons(message), "still open"


async def test_approvals_command_home_and_balance_show_requests_and_limits(harness: Harness) -> None:
    h = harness
    placed, _message = await request(h)
    await h.command(FINANCE, "approvals")
    listed = await h.reply_to(FINANCE)
    assert f"#{placed.id}" in str(listed.blocks)
    assert any(e.get("action_id") == ids.APPROVAL_APPROVE for b in listed.blocks or [] if b["type"] == "actions"
               for e in b["elements"])
    await h.command(OPS, "approvals")
    own = await h.reply_to(OPS)
    assert f"#{placed.id}" in str(own.blocks) and ids.APPROVAL_APPROVE not in str(own.blocks)

    await h.driver.app_home_opened(FINANCE)
    home = await h.wait(lambda: h.ws.home_view(FINANCE), "dan's Home tab")
    assert "Waiting for your approval* (1)" in str(home.blocks) and ids.APPROVAL_APPROVE in str(home.blocks)
    await h.driver.app_home_opened(OPS)
    home = await h.wait(lambda: h.ws.home_view(OPS), "bob's Home tab")
    assert "Your requests* (1)" in str(home.blocks) and "Waiting for your approval" not in str(home.blocks)

    # Approving from App Home works like the channel message (no message to tie the button to).
    finance_home = h.ws.home_view(FINANCE)
    assert finance_home is not None
    await h.driver.click(FINANCE, finance_home, ids.APPROVAL_APPROVE, value=str(placed.id))
    await h.wait(lambda: order(h, placed.id).decided_by, "the approval from App Home")

    await h.command(FINANCE, "balance")
    balance = await h.reply_to(FINANCE, after=1)
    assert "Spent in the last 24 hours*: USD 0.00 of USD 500.00 (your daily limit), USD 500.00 left" in str(
        balance.blocks)


async def test_an_order_over_the_daily_limit_is_refused_inline_naming_the_limit(harness: Harness) -> None:
    h = harness
    await request(h, quantity=20)  # USD 400 waiting for approval counts against the limit
    view = await h.open_modal(OPS, "buy steam gift card 20")
    h.driver.set_input(view, ids.ORDER_QUANTITY, ids.ORDER_QUANTITY, "6")
    result = await h.submit(OPS, view)
    assert result.errors == {ids.ORDER_QUANTITY: (
        "This order (USD 120.00) would go over your daily limit of USD 500.00: USD 400.00 used in the last 24 "
        "hours, USD 100.00 remains. Ask finance to raise it, or order less.")}
    assert h.gate_creates() == 0


@pytest.mark.parametrize("settings_overrides", [{
    "gatebot_approval_over": "USD:50", "gatebot_approval_channel": APPROVALS,
    "gatebot_daily_limit": "role:ops:USD:100"}])
async def test_the_requester_roles_from_slack_count_against_role_limits(harness: Harness) -> None:
    h = harness
    view = await h.open_modal(OPS, "buy steam gift card 20")
    h.driver.set_input(view, ids.ORDER_QUANTITY, ids.ORDER_QUANTITY, "2")
    await h.submit(OPS, (await h.submit(OPS, view)).view or view)
    await h.wait(lambda: h.ws.latest_message(OPS_CHANNEL), "the order message")
    await h.settle()
    assert h.orders()[-1].requester_roles == ",ops,"
    view = await h.open_modal(OPS, "buy steam gift card 20")
    h.driver.set_input(view, ids.ORDER_QUANTITY, ids.ORDER_QUANTITY, "4")
    result = await h.submit(OPS, view)
    assert result.errors == {ids.ORDER_QUANTITY: (
        "This order (USD 80.00) would go over the ops team's daily limit of USD 100.00: USD 40.00 used in the last "
        "24 hours, USD 60.00 remains. Ask finance to raise it, or order less.")}


async def test_a_restart_between_request_and_approval_loses_nothing(harness: Harness) -> None:
    """Another process (a restart) finds the request open with the same key and body, approves it from the
    same button and edits the same request message."""
    h = harness
    placed, message = await request(h)
    body = placed.request_body(h.core.cipher)
    sandbox = create_sandbox(SandboxConfig(completion_delay=COMPLETION_DELAY), clock=h.clock)
    async with core(h.core.settings, clock=h.clock, gate_transport=httpx.ASGITransport(app=sandbox)) as again:
        rt = build_runtime(again, slack="http", jobs=False)
        assert rt.slack is not None and rt.notifier is not None
        server = LoopbackServer(create_web_app(rt.slack.app, rt.slack.deps))
        await server.start()
        driver = h.emulator.driver(f"{server.url}/slack/events", SECRET)
        try:
            (still,) = await again.orders.open_approvals()
            assert (still.id, still.idempotency_key, still.request_body(again.cipher)) == (
                placed.id, placed.idempotency_key, body)
            await driver.click(FINANCE, message, ids.APPROVAL_APPROVE)
            await h.wait(lambda: message.edited or None, "the request message edited by the new process")
            await rt.notifier.drain(5.0)
        finally:
            await driver.aclose()
            await server.stop()
    assert "Approved* by <@UDAN>" in str(message.blocks)
    sent = sandbox.state.sim.stats()["creates"]
    assert sent["attempted"] == 1 and h.gate_creates() == 0
    assert order(h, placed.id).idempotency_key == placed.idempotency_key


async def test_a_top_up_request_shows_the_customer_account_masked(harness: Harness) -> None:
    h = harness
    view = await h.open_modal(OPS)
    await h.choose_product(OPS, view, 456, query="steam")  # Steam top-up: USD 5-100, 25% margin
    h.driver.set_input(view, ids.ORDER_AMOUNT, ids.ORDER_AMOUNT, "60")
    h.driver.set_input(view, ids.account_block_id("steam_login"), ids.account_block_id("steam_login"), "player_123")
    confirm = (await h.submit(OPS, view)).view
    assert confirm is not None and confirm.callback_id == ids.ORDER_CONFIRM
    await h.submit(OPS, confirm)
    message = await h.wait(lambda: h.ws.latest_message(APPROVALS), "the approval request message")
    await h.settle()
    assert "steam_login: `pl•••23`" in str(message.blocks) and "USD 75.00" in str(message.blocks)
    assert "player_123" not in h.texts_in(APPROVALS), "customer accounts stay out of channels"
