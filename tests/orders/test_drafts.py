"""Reviewed drafts of the Slack order form, in the core: save, open (owner check), placed, forgotten.

The stored format stays readable: entries exactly as the previous code wrote them (a sealed draft, and
the ``{"user", "order_id", "placed_at"}`` marker it kept after placing) are opened as before.
"""

from __future__ import annotations

import asyncio

from gatebot.orders import DraftState, OrderDraft
from gatebot.orders.drafts import draft_key
from gatebot.store import repo
from gatebot.store.crypto import seal_json
from tests.orders.conftest import Pipeline

STEAM_20 = 101


def _draft(draft_id: str, user: str = "UALICE") -> OrderDraft:
    return OrderDraft(product=STEAM_20, requester=user, external_ref="INV-77", draft_id=draft_id, test=True)


async def test_a_saved_draft_opens_for_its_owner_only(pipeline: Pipeline) -> None:
    drafts = pipeline.service.drafts
    await drafts.save("d1", user="UALICE", draft=_draft("d1"))
    opened = await drafts.open("d1", user="UALICE")
    assert opened.state is DraftState.READY and opened.draft == _draft("d1")
    assert (await drafts.open("d1", user="UMALLORY")).state is DraftState.FOREIGN
    assert (await drafts.open("nope", user="UALICE")).state is DraftState.EXPIRED


async def test_a_placed_draft_is_found_by_its_order_not_placed_again(pipeline: Pipeline) -> None:
    drafts, service = pipeline.service.drafts, pipeline.service
    await drafts.save("d2", user="UALICE", draft=_draft("d2"))
    first, second = await asyncio.gather(service.place_new(_draft("d2")), service.place_new(_draft("d2")))
    assert first[0].id == second[0].id and sorted([first[1], second[1]]) == [False, True]
    assert pipeline.creates() == 1
    assert await drafts.forget("d2") is True and await drafts.forget("d2") is False
    opened = await drafts.open("d2", user="UALICE")
    assert (opened.state, opened.order_id) == (DraftState.PLACED, first[0].id)
    assert (await drafts.open("d2", user="UMALLORY")).state is DraftState.FOREIGN


async def test_entries_written_by_the_previous_code_still_open(pipeline: Pipeline) -> None:
    service, now = pipeline.service, pipeline.clock.now()
    sealed = seal_json(service.cipher, {"product": STEAM_20, "amount": None, "quantity": None, "account": {},
                                        "external_ref": "INV-77", "test": True, "origin_channel": None})
    with pipeline.db.session() as s:
        repo.kv_set(s, draft_key("old1"), {"user": "UALICE", "saved_at": now, "sealed": sealed}, now)
        repo.kv_set(s, draft_key("old2"), {"user": "UALICE", "order_id": 7, "placed_at": now}, now)
    assert (await service.drafts.open("old1", user="UALICE")).draft == _draft("old1")
    opened = await service.drafts.open("old2", user="UALICE")
    assert (opened.state, opened.order_id) == (DraftState.PLACED, 7)
    assert (await service.drafts.open("old2", user="UBOB")).state is DraftState.FOREIGN


async def test_an_unreadable_draft_is_forgotten(pipeline: Pipeline) -> None:
    now = pipeline.clock.now()
    with pipeline.db.session() as s:
        repo.kv_set(s, draft_key("bad"), {"user": "UALICE", "saved_at": now, "sealed": "f1:garbage"}, now)
    assert (await pipeline.service.drafts.open("bad", user="UALICE")).state is DraftState.UNREADABLE
    assert (await pipeline.service.drafts.open("bad", user="UALICE")).state is DraftState.EXPIRED


async def test_the_requesters_roles_survive_the_draft(pipeline: Pipeline) -> None:
    """Role daily limits count an order against the roles its requester held when the form was reviewed."""
    import dataclasses

    drafts = pipeline.service.drafts
    with_roles = dataclasses.replace(_draft("d3"), requester_roles=frozenset({"ops", "finance"}))
    await drafts.save("d3", user="UALICE", draft=with_roles)
    assert (await drafts.open("d3", user="UALICE")).draft == with_roles
