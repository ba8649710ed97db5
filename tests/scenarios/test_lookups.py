"""Looking orders up: by each kind of reference, through buttons and the message shortcut; who sees codes."""

from __future__ import annotations

import pytest

from gatebot.orders import OrderDraft
from gatebot.slack import ids
from gatebot.store.models import Order
from tests.leaks import leaks

from .conftest import ADMIN, NOBODY, OPS, OPS_CHANNEL, SUPPORT, Harness

STEAM_20 = 101


async def placed(h: Harness, *, requester: str = OPS, ref: str = "INV-1001", complete: bool = True) -> Order:
    """An order placed through the core (as the modal would), followed in #gate-ops."""
    await h.core.orders.place(OrderDraft(product=STEAM_20, requester=requester, external_ref=ref,
                                         origin_channel=OPS_CHANNEL))
    await h.settle()
    if complete:
        await h.complete()
    return h.orders()[-1]


def refs_of(order: Order) -> dict[str, str]:
    assert order.gate_order_id is not None
    return {"number": order.number, "gate id": order.gate_order_id, "external_ref": order.external_ref,
            "idempotency key": order.idempotency_key}


@pytest.mark.parametrize("kind", ["number", "gate id", "external_ref", "idempotency key"])
async def test_lookup_by_each_kind_of_reference(harness: Harness, kind: str) -> None:
    h = harness
    order = await placed(h, complete=False)
    await h.command(SUPPORT, f"order {refs_of(order)[kind]}")
    reply = await h.reply_to(SUPPORT)
    assert reply.source == "response_url", "lookups answer privately"
    assert reply.text == f"Order {order.number} (Steam Gift Card 20 USD): Pending"
    detail = str(reply.blocks)
    for value in refs_of(order).values():
        assert value in detail  # Gate id, external ref and key are all shown
    assert "History" in detail and "Requested by" in detail


async def test_codes_only_for_the_requester_and_code_roles(harness: Harness) -> None:
    h = harness
    order = await placed(h)
    codes = h.codes(order)
    assert codes
    # support may look it up, but not see the code
    await h.command(SUPPORT, f"order {order.number}")
    support_view = await h.reply_to(SUPPORT)
    assert not leaks(codes, str(support_view.blocks))
    assert "Codes are shown only to the requester" in str(support_view.blocks)
    # the requester and the admin (GATEBOT_CODE_ROLES=admin by default) see it, ephemerally
    for viewer in (OPS, ADMIN):
        await h.command(viewer, f"order {order.number}")
        shown = await h.reply_to(viewer)
        assert shown.source == "response_url"
        assert all(code in str(shown.blocks) for code in codes)
    public = h.texts_in(OPS_CHANNEL, ephemerals=False)
    assert not leaks(codes, public), "codes are shown in ephemerals only, never in messages"
    views = [(a.actor, a.allowed) for a in h.audit("code.view")]
    assert views == [(SUPPORT, False), (OPS, True), (ADMIN, True)]


async def test_a_person_without_a_role_is_refused_politely_and_audited(harness: Harness) -> None:
    h = harness
    order = await placed(h, complete=False)
    calls_before = len(h.ws.calls("views.open"))
    await h.command(NOBODY, "buy steam")
    refused = await h.reply_to(NOBODY)
    assert "Sorry" in refused.text and "*ops* role" in refused.text
    await h.command(NOBODY, f"order {order.number}")
    refused = await h.reply_to(NOBODY, after=1)
    assert "*support* role" in refused.text and order.number not in str(refused.blocks)
    await h.command(NOBODY, "balance")
    refused = await h.reply_to(NOBODY, after=2)
    assert "*finance* role" in refused.text
    assert len(h.ws.calls("views.open")) == calls_before, "no order form for people without the ops role"
    denied = [(a.action, a.target) for a in h.audit() if not a.allowed]
    assert denied == [("command.buy", None), ("order.view", order.number), ("command.balance", None)]


async def test_the_requester_may_look_up_their_own_order_without_a_support_role(harness: Harness) -> None:
    h = harness
    order = await placed(h, complete=False)
    await h.command(OPS, f"order {order.external_ref}")
    reply = await h.reply_to(OPS)
    assert reply.text.startswith(f"Order {order.number}")


async def test_unknown_reference(harness: Harness) -> None:
    await harness.command(SUPPORT, "order INV-404")
    reply = await harness.reply_to(SUPPORT)
    assert "No order matches INV-404" in reply.text


async def test_view_details_button_on_the_status_message(harness: Harness) -> None:
    h = harness
    order = await placed(h)
    message = h.status_message(order)
    await h.driver.click(SUPPORT, message, ids.ORDER_VIEW, value=str(order.id))
    reply = await h.reply_to(SUPPORT)
    assert reply.text.startswith(f"Order {order.number}") and reply.source == "response_url"
    assert not any(code in str(reply.blocks) for code in h.codes(order))


async def test_refresh_button_asks_gate_about_a_pending_order(harness: Harness) -> None:
    h = harness
    order = await placed(h, complete=False)
    message = h.status_message(order)
    h.clock.advance(91)  # done at Gate; the tracker has not run
    await h.driver.click(OPS, message, ids.ORDER_REFRESH, value=str(order.id))
    await h.wait(lambda: "Completed" in message.text or None, "the refreshed status message")
    await h.settle()
    assert h.orders()[0].dm_sent


async def test_message_shortcut_finds_every_reference(harness: Harness) -> None:
    h = harness
    first = await placed(h, ref="INV-1001", complete=False)
    second = await placed(h, ref="INV-2002", complete=False)
    said = h.ws.post_message(OPS_CHANNEL, user=ADMIN,
                             text=f"Customer asks about {first.number} and INV-2002, also INV-9999?")
    delivery = await h.driver.message_shortcut(SUPPORT, said, ids.LOOKUP_ORDER)
    assert delivery.status == 200
    reply = await h.reply_to(SUPPORT)
    assert reply.text.startswith("Orders in that message: 2 orders")
    assert f"*{first.number}*" in str(reply.blocks) and f"*{second.number}*" in str(reply.blocks)
    assert "No order matches `INV-9999`" in str(reply.blocks)


async def test_message_shortcut_on_a_status_message_shows_the_order(harness: Harness) -> None:
    h = harness
    order = await placed(h, complete=False)
    await h.driver.message_shortcut(SUPPORT, h.status_message(order), ids.LOOKUP_ORDER)
    reply = await h.reply_to(SUPPORT)
    assert reply.text.startswith(f"Order {order.number}")


async def test_message_shortcut_without_references(harness: Harness) -> None:
    h = harness
    said = h.ws.post_message(OPS_CHANNEL, user=ADMIN, text="lunch at 12?")
    await h.driver.message_shortcut(SUPPORT, said, ids.LOOKUP_ORDER)
    reply = await h.reply_to(SUPPORT)
    assert "found no order reference" in reply.text


async def test_refresh_on_an_ephemeral_detail_replaces_it(harness: Harness) -> None:
    h = harness
    order = await placed(h, complete=False)
    await h.command(SUPPORT, f"order {order.number}")
    detail = await h.reply_to(SUPPORT)
    assert "Pending" in detail.text
    h.clock.advance(91)
    await h.driver.click(SUPPORT, detail, ids.ORDER_REFRESH, value=str(order.id))
    await h.wait(lambda: detail.revisions or None, "the detail to be replaced")
    assert "Completed" in detail.text
    assert not any(code in str(detail.blocks) for code in h.codes(h.orders()[0])), "support: no code"
