"""Following orders when Slack misbehaves: failed posts, deleted messages, failed DMs, two processes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update

from gatebot.events import Event
from gatebot.orders import OrderDraft
from gatebot.runtime import build_notifier
from gatebot.store.models import Order, OrderStatus

from .conftest import OPS, OPS_CHANNEL, Harness

STEAM_20 = 101


async def place(h: Harness, *, requester: str = OPS, channel: str | None = OPS_CHANNEL) -> Order:
    order = await h.core.orders.place(OrderDraft(product=STEAM_20, requester=requester, origin_channel=channel))
    await h.settle()
    return h.orders()[-1] if order.id is None else next(o for o in h.orders() if o.id == order.id)


async def test_a_failed_first_post_is_made_by_the_next_event_with_the_history_so_far(harness: Harness) -> None:
    h = harness
    h.ws.fail_next("chat.postMessage", "internal_error", times=2)  # for order.created and order.pending
    order = await place(h)
    assert order.message_ts is None and order.message_claimed_at is None, "nothing posted, the claim released"
    await h.complete()
    order = h.orders()[0]
    message = h.status_message(order)
    assert "Completed" in message.text and not message.edited
    notes = [m.text for m in h.ws.replies(OPS_CHANNEL, message.ts)]
    assert len(notes) == 3 and "intent saved" in notes[0] and "`completed`" in notes[2]


async def test_a_deleted_status_message_is_posted_again(harness: Harness) -> None:
    h = harness
    order = await place(h)
    first = h.status_message(order)
    h.ws.delete_message(OPS_CHANNEL, first.ts)
    await h.complete()
    order = h.orders()[0]
    second = h.status_message(order)
    assert second.ts != first.ts and "Completed" in second.text
    assert any(c.error == "message_not_found" for c in h.ws.calls("chat.update"))


async def test_a_failed_dm_is_retried_later_and_sent_once(harness: Harness) -> None:
    h = harness
    order = await place(h)
    h.ws.fail_next("conversations.open", "internal_error")
    await h.complete()
    assert not h.orders()[0].dm_sent and h.ws.dm_messages(OPS) == []
    h.clock.advance(timedelta(minutes=5))
    await place(h)  # any later order event retries the delivery
    assert h.orders()[0].dm_sent
    assert len([m for m in h.ws.dm_messages(OPS) if f"Your order {order.number} (" in m.text]) == 1


async def test_two_processes_deliver_the_code_once(harness: Harness) -> None:
    h = harness
    order = await place(h)
    await h.complete()
    assert order.id is not None
    other = build_notifier(h.core)
    with h.core.db.session() as s:  # as if the first process had not sent it yet
        s.execute(update(Order).values(dm_sent=False))
        s.commit()
    completed = Event(kind="order.completed", at=h.clock.now(), order_id=order.id)
    await asyncio.gather(h.deps.notifier.process(completed), other.process(completed))  # type: ignore[union-attr]
    ready = [m for m in h.ws.dm_messages(OPS) if "is ready" in m.text]
    assert len(ready) == 2, "the first delivery plus exactly one of the two racing processes"


async def test_a_stale_claim_of_a_dead_process_is_taken_over(harness: Harness) -> None:
    h = harness
    h.ws.fail_next("chat.postMessage", "internal_error", times=2)
    order = await place(h)
    assert order.id is not None
    stale = h.clock.now() - timedelta(minutes=5)
    with h.core.db.session() as s:
        s.execute(update(Order).values(message_claimed_at=stale))
        s.commit()
    await h.deps.notifier.process(Event(kind="order.pending", at=h.clock.now(), order_id=order.id))  # type: ignore[union-attr]
    assert h.status_message(h.orders()[0]).channel == OPS_CHANNEL


async def test_orders_from_the_cli_stay_out_of_slack(harness: Harness) -> None:
    h = harness
    calls = h.ws.call_count
    await place(h, requester="cli:alice", channel=None)
    await h.complete()
    assert h.orders()[0].status is OrderStatus.COMPLETED
    assert [c.method for c in h.ws.calls(since=calls) if c.method != "auth.test"] == []
