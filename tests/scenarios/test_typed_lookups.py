"""Lookups as people type them (ISSUE 11 defect 9) and hostile text (ISSUE 10 hole 8), over signed HTTP.

``/gate order inv-1001`` finds ``INV-1001``; a Gate id's first 8 characters (from a receipt) find the
order; several matches are listed, not guessed; a NUL in the command is not a database error; a
20,000-word product search in the order form still answers.
"""

from __future__ import annotations

from gatebot.orders import OrderDraft
from gatebot.store.models import Order

from .conftest import NOBODY, OPS, OPS_CHANNEL, SUPPORT, Harness

STEAM_20 = 101


async def placed(h: Harness, ref: str, *, requester: str = OPS) -> Order:
    await h.core.orders.place(OrderDraft(product=STEAM_20, requester=requester, external_ref=ref,
                                         origin_channel=OPS_CHANNEL))
    await h.settle()
    return next(o for o in h.orders() if o.external_ref == ref)


async def test_external_ref_in_another_case_and_a_gate_id_prefix(harness: Harness) -> None:
    h = harness
    order = await placed(h, "INV-1001")
    assert order.gate_order_id is not None
    typed_refs = ("inv-1001", order.gate_order_id[:8], order.gate_order_id[:8].upper(), "INV-1001\x07")
    for n, typed in enumerate(typed_refs):
        await h.command(SUPPORT, f"order {typed}")
        reply = await h.reply_to(SUPPORT, after=n)
        assert reply.text == f"Order {order.number} (Steam Gift Card 20 USD): Pending", typed


async def test_several_matches_are_listed_not_guessed(harness: Harness) -> None:
    h = harness
    upper = await placed(h, "INV-7")
    lower = await placed(h, "inv-7")
    await h.command(SUPPORT, "order Inv-7")
    reply = await h.reply_to(SUPPORT)
    shown = str(reply.blocks)
    assert upper.number in shown and lower.number in shown
    assert "2 orders match" in shown and "pick one with its #number" in shown
    # An exact spelling still goes straight to the one order.
    await h.command(SUPPORT, "order inv-7")
    exact = await h.reply_to(SUPPORT, after=1)
    assert exact.text.startswith(f"Order {lower.number} ")


async def test_someone_elses_orders_are_not_revealed_by_a_fuzzy_lookup(harness: Harness) -> None:
    h = harness
    await placed(h, "INV-55")
    await h.command(NOBODY, "order inv-55")  # no role, not the requester
    refused = await h.reply_to(NOBODY)
    assert "*support* role" in refused.text and "INV-55" not in str(refused.blocks)


async def test_a_huge_product_search_in_the_order_form_still_answers(harness: Harness) -> None:
    h = harness
    view = await h.open_modal(OPS)
    options = await h.options(OPS, view, "steam " * 20_000)
    assert any(o["value"] == str(STEAM_20) for o in options)
    # Control characters and lone surrogates never reach the database (a NUL is refused at the edge, 400).
    await h.options(OPS, view, "steam\x07 gift\ud800")  # answers 200 (checked inside), no database error
