"""A bulk batch that needs approval, in Slack (issues 13 + 14): the request message in the approvers' channel,
the same Approve / Reject… buttons, listener, reject modal and requester DM as an order's, safe against a
self-approval and a crafted click; Gate down; expiry; the progress message; /gate approvals and App Home."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from gatebot import monitor
from gatebot.alerts import AlertPolicy, HealthObservation
from gatebot.emulator import Message
from gatebot.slack import ids
from gatebot.store.models import Batch, BatchStatus, OrderStatus

from .conftest import ADMIN, FINANCE, NOBODY, OPS, Harness
from .test_approvals import _crafted, buttons, ephemeral_to
from .test_bulk import VALID, batches, csv_bytes, open_bulk, upload, virtual_sleep  # noqa: F401 - an autouse fixture

APPROVALS = "CAPPROVE"
ACCOUNT_VALUES = ("player_1", "p1@example.com", "player_4")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"gatebot_approval_over": "USD:50", "gatebot_approval_channel": APPROVALS}


@pytest.fixture(autouse=True)
def approvals_channel(harness: Harness) -> None:
    harness.ws.add_channel("approvals", id=APPROVALS, members=[ADMIN, OPS, FINANCE, NOBODY])


async def requested(h: Harness, user: str = OPS, data: bytes = VALID) -> tuple[Batch, Message, Message]:
    """``user`` uploads ``data`` (over USD 50: approval) and confirms; returns the batch, its progress message
    and its request message in the approvers' channel."""
    before = len(h.ws.messages(APPROVALS))
    summary = await upload(h, await open_bulk(h, user), "june.csv", data, user)
    assert "Needs approval" in shown(summary.blocks)
    await h.submit(user, summary)
    request = await h.wait(lambda: (lambda m: m[before] if len(m) > before else None)(h.ws.messages(APPROVALS)),
                           "the approval request message")
    await h.settle()
    batch = batches(h)[-1]
    assert batch.state is BatchStatus.AWAITING_APPROVAL and batch.requester == user
    assert batch.message_channel is not None and batch.message_ts is not None
    return batch, h.ws.message(batch.message_channel, batch.message_ts), request


def shown(blocks: Any) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def state(h: Harness, batch: Batch) -> BatchStatus:
    return next(b for b in batches(h) if b.id == batch.id).state


async def test_a_batch_over_the_threshold_is_approved_by_another_finance_person_and_placed(harness: Harness) -> None:
    h = harness
    batch, progress, request = await requested(h, user=ADMIN)  # alice is an admin: she holds finance too
    text = shown(request.blocks)
    assert "Approval needed: batch B1" in text and "<@UALICE>" in text and "*10 orders*" in text
    assert "× 6" in text and "× 4" in text  # rows per product
    assert "USD 170.00" in text and "USD 5,000.00 → USD 4,830.00" in text  # total, balance now → after
    assert "over the approval threshold of USD 50.00" in text
    assert [(b["action_id"], b["value"]) for b in buttons(request)] == [
        (ids.APPROVAL_APPROVE, "B1"), (ids.APPROVAL_REJECT, "B1")]
    assert not any(v in h.texts_in(APPROVALS) for v in ACCOUNT_VALUES), "never an account value in the channel"
    assert f"Waiting for approval in <#{APPROVALS}>" in shown(progress.blocks)
    assert "gatebot bulk approve B1" in shown(progress.blocks), "the CLI stays as a fallback"

    opened = len(h.ws.calls("views.open"))
    await h.driver.click(ADMIN, request, ids.APPROVAL_APPROVE)
    assert "someone else has to approve" in await ephemeral_to(h, ADMIN)
    await h.driver.click(ADMIN, request, ids.APPROVAL_REJECT)
    assert "someone else has to approve" in await ephemeral_to(h, ADMIN, after=1)
    assert len(h.ws.calls("views.open")) == opened, "no reject form for the requester"
    assert state(h, batch) is BatchStatus.AWAITING_APPROVAL

    await h.driver.click(NOBODY, request, ids.APPROVAL_APPROVE)  # not an approver
    assert "Only admin or finance may approve" in await ephemeral_to(h, NOBODY)
    assert state(h, batch) is BatchStatus.AWAITING_APPROVAL and not request.edited

    await h.driver.click(FINANCE, request, ids.APPROVAL_APPROVE)
    await h.wait(lambda: request.edited or None, "the request message to be edited")
    await h.settle()
    assert state(h, batch) is BatchStatus.RUNNING and h.gate_creates() == 0
    assert "Approved* by <@UDAN>" in shown(request.blocks) and not buttons(request), "one-shot: buttons gone"
    dm = await h.wait(lambda: h.ws.dm_messages(ADMIN), "the requester's DM")
    assert "Your batch B1 was approved" in dm[-1].text
    await h.core.bulk.run_batch(batch.id or 0)
    await h.settle()
    assert h.gate_creates() == 10 and "placing orders" in progress.text

    await h.driver.post(*_crafted(h, FINANCE, request, "B1"))  # a second click: decided already
    assert "Batch B1 was already approved by UDAN; nothing changed." in await ephemeral_to(h, FINANCE)
    assert h.gate_creates() == 10 and len(h.ws.dm_messages(ADMIN)) == len(dm)


async def test_reject_asks_a_reason_tells_the_requester_and_calls_no_gate(harness: Harness) -> None:
    h = harness
    batch, progress, request = await requested(h)
    await h.driver.click(FINANCE, request, ids.APPROVAL_REJECT)
    modal = await h.wait(lambda: h.ws.top_view(FINANCE), "the reject modal")
    assert modal.callback_id == ids.APPROVAL_REJECT_MODAL and "batch *B1*" in shown(modal.blocks)
    h.driver.set_input(modal, ids.APPROVAL_REASON, ids.APPROVAL_REASON, "  ")
    assert (await h.submit(FINANCE, modal)).errors == {
        ids.APPROVAL_REASON: "Say why the batch is rejected (the requester is told the reason)."}
    h.driver.set_input(modal, ids.APPROVAL_REASON, ids.APPROVAL_REASON, "not this quarter")
    assert (await h.submit(FINANCE, modal)).closed
    await h.wait(lambda: request.edited or None, "the request message to be edited")
    await h.settle()
    assert state(h, batch) is BatchStatus.REJECTED
    assert {o.status for o in h.orders() if o.batch_id == batch.id} == {OrderStatus.REJECTED}
    assert "Rejected* by <@UDAN>" in shown(request.blocks) and "not this quarter" in shown(request.blocks)
    assert not buttons(request) and "rejected" in progress.text
    dm = await h.wait(lambda: h.ws.dm_messages(OPS), "the requester's DM")
    assert "Your batch B1 was rejected" in dm[-1].text and "not this quarter" in shown(dm[-1].blocks)
    await h.core.bulk.run_batch(batch.id or 0)
    assert h.gate_creates() == 0


async def test_a_crafted_click_naming_another_batch_changes_nothing(harness: Harness) -> None:
    h = harness
    first, _progress, first_request = await requested(h)
    second, _other, _second_request = await requested(h, data=csv_bytes(["101,3,,OTHER-1,,"]))
    for action_id in (ids.APPROVAL_APPROVE, ids.APPROVAL_REJECT):  # on B1's message, naming B2 (or order #1)
        await h.driver.post(*_crafted(h, FINANCE, first_request, f"B{second.id}", action_id))
    await h.driver.post(*_crafted(h, FINANCE, first_request, 1))
    for n in range(3):
        assert "does not belong to this approval request" in await ephemeral_to(h, FINANCE, after=n)
    await h.settle()
    assert [state(h, b) for b in (first, second)] == [BatchStatus.AWAITING_APPROVAL] * 2
    assert h.ws.top_view(FINANCE) is None and not first_request.edited and h.gate_creates() == 0
    refused = [a for a in h.audit("approval.decide") if not a.allowed]
    assert [a.target for a in refused] == [f"B{second.id}", f"B{second.id}", "#1"]


async def test_gate_down_keeps_the_batch_waiting_and_tells_the_approver(harness: Harness) -> None:
    h = harness
    batch, _progress, request = await requested(h)
    policy = AlertPolicy.from_settings(h.core.settings)
    monitor.observe_health(h.core.db, [HealthObservation(ok=False, detail="HTTP 503")] * policy.health_fail_after,
                           h.clock.now(), policy)
    await h.driver.click(FINANCE, request, ids.APPROVAL_APPROVE)
    answer = await ephemeral_to(h, FINANCE)
    assert "Batch B1 was not approved: The Gate API is down" in answer and "stays open" in answer
    await h.settle()
    assert state(h, batch) is BatchStatus.AWAITING_APPROVAL and buttons(request) and h.gate_creates() == 0


async def test_an_expired_batch_request_is_edited_and_the_requester_told(harness: Harness) -> None:
    h = harness
    batch, _progress, request = await requested(h)
    h.clock.advance(timedelta(hours=24, seconds=1))
    assert await h.core.bulk.expire_batches() == 1
    await h.settle()
    assert ":hourglass: *Expired*" in shown(request.blocks) and not buttons(request)
    dm = await h.wait(lambda: h.ws.dm_messages(OPS), "the requester's DM")
    assert "Your batch B1 expired without approval" in dm[-1].text
    assert state(h, batch) is BatchStatus.REJECTED and h.gate_creates() == 0


async def test_approvals_command_and_home_list_batch_requests(harness: Harness) -> None:
    h = harness
    batch, _progress, _request = await requested(h)
    await h.command(FINANCE, "approvals")
    listed = await h.reply_to(FINANCE)
    assert "Batch B1" in shown(listed.blocks) and f'"value": "B{batch.id}"' in shown(listed.blocks)
    await h.command(OPS, "approvals")
    own = await h.reply_to(OPS, after=0)
    assert "Batch B1" in shown(own.blocks) and ids.APPROVAL_APPROVE not in shown(own.blocks)

    await h.driver.app_home_opened(FINANCE)
    home = await h.wait(lambda: h.ws.home_view(FINANCE), "dan's Home tab")
    assert "Waiting for your approval* (1)" in shown(home.blocks) and "Batch B1" in shown(home.blocks)
    await h.driver.app_home_opened(OPS)
    home = await h.wait(lambda: h.ws.home_view(OPS), "bob's Home tab")
    assert "Your requests* (1)" in shown(home.blocks) and ids.APPROVAL_APPROVE not in shown(home.blocks)

    # Approving from App Home (no request message to tie the button to: the core decides).
    finance_home = h.ws.home_view(FINANCE)
    assert finance_home is not None
    await h.driver.click(FINANCE, finance_home, ids.APPROVAL_APPROVE, value=f"B{batch.id}")
    await h.wait(lambda: state(h, batch) is BatchStatus.RUNNING or None, "the approval from App Home")
