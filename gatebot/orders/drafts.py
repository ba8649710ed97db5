"""A person's reviewed order draft, kept between "Review" and "Place order" (the Slack order form).

The draft holds the customer account, so it is stored **encrypted** with the store's cipher, in the
key-value store under ``slack.draft:<draft_id>`` as ``{"user", "saved_at", "sealed"}``. The draft id
travels in the form itself; whoever places it must be the person who reviewed it.

De-duplication has one mechanism: the order store's unique ``draft_id`` (see
:meth:`~gatebot.orders.OrderService.place_new`). Once placed, the draft is forgotten; a repeated
"Place order" (a double click, a Slack retry, another process) finds the order by its ``draft_id``.
Entries written by older versions, which kept ``{"user", "order_id"}`` after placing, still read as
placed.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from gatebot.clock import Clock
from gatebot.orders.model import OrderDraft
from gatebot.store import repo
from gatebot.store.crypto import Cipher, CipherError, open_json, seal_json
from gatebot.store.db import Database
from gatebot.store.models import Order

__all__ = ["DRAFT_PREFIX", "DraftState", "Drafts", "OpenedDraft", "draft_key", "new_draft_id"]

log = logging.getLogger(__name__)

DRAFT_PREFIX = "slack.draft:"


def draft_key(draft_id: str) -> str:
    return DRAFT_PREFIX + draft_id


def new_draft_id() -> str:
    return "d" + secrets.token_hex(12)


class DraftState(StrEnum):
    READY = "ready"  #: the draft, read back: place it
    PLACED = "placed"  #: already placed (the order number is known): nothing to do
    FOREIGN = "foreign"  #: reviewed by someone else: refuse
    EXPIRED = "expired"  #: not stored (closed, or forgotten after a refusal): nothing was sent
    UNREADABLE = "unreadable"  #: stored but cannot be read back (key changed?): forgotten


@dataclass(frozen=True, slots=True)
class OpenedDraft:
    state: DraftState
    draft: OrderDraft | None = None
    order_id: int | None = None


class Drafts:
    """Save, open (with the owner check), and forget reviewed drafts. Safe to share across tasks."""

    def __init__(self, *, db: Database, cipher: Cipher, clock: Clock) -> None:
        self.db = db
        self.cipher = cipher
        self.clock = clock

    async def save(self, draft_id: str, *, user: str, draft: OrderDraft) -> None:
        sealed = seal_json(self.cipher, {
            "product": draft.product, "amount": None if draft.amount is None else str(draft.amount),
            "quantity": draft.quantity, "account": dict(draft.account), "external_ref": draft.external_ref,
            "test": draft.test, "origin_channel": draft.origin_channel,
            "requester_roles": sorted(draft.requester_roles),
        })
        now = self.clock.now()
        value = {"user": user, "saved_at": now, "sealed": sealed}
        await self.db.run(lambda s: repo.kv_set(s, draft_key(draft_id), value, now))

    async def open(self, draft_id: str, *, user: str) -> OpenedDraft:
        """The draft ``user`` asks to place, or why there is none to place."""
        stored, placed = await self.db.run(lambda s: _stored(s, draft_id))
        owner = placed.requester if placed is not None else (stored or {}).get("user")
        if owner is not None and owner != user:
            return OpenedDraft(DraftState.FOREIGN)
        if placed is not None:
            return OpenedDraft(DraftState.PLACED, order_id=placed.id)
        if stored is not None and stored.get("order_id") is not None:  # placed, as older versions kept it
            return OpenedDraft(DraftState.PLACED, order_id=int(stored["order_id"]))
        if stored is None or "sealed" not in stored:
            return OpenedDraft(DraftState.EXPIRED)
        try:
            return OpenedDraft(DraftState.READY, draft=self._read(draft_id, stored, user))
        except (CipherError, KeyError, ValueError, ArithmeticError):
            log.warning("draft %s could not be read back; nothing was ordered", draft_id)
            await self.forget(draft_id)
            return OpenedDraft(DraftState.UNREADABLE)

    async def forget(self, draft_id: str) -> bool:
        """Drop the stored draft; ``True`` if this call removed it."""
        return await self.db.run(lambda s: repo.kv_delete(s, draft_key(draft_id)))

    async def abandon(self, draft_id: str) -> None:
        """The form was closed: forget the draft (a placed draft's order is in the order store anyway)."""
        await self.forget(draft_id)

    def _read(self, draft_id: str, stored: dict[str, Any], user: str) -> OrderDraft:
        data = open_json(self.cipher, str(stored["sealed"]))
        amount = data.get("amount")
        return OrderDraft(product=data["product"], requester=user,
                          amount=Decimal(amount) if amount is not None else None, quantity=data.get("quantity"),
                          account=dict(data.get("account") or {}), external_ref=data.get("external_ref"),
                          test=bool(data.get("test")), origin_channel=data.get("origin_channel"),
                          draft_id=draft_id, requester_roles=frozenset(data.get("requester_roles") or ()))


def _stored(s: Session, draft_id: str) -> tuple[dict[str, Any] | None, Order | None]:
    """The stored entry (if any) and the order placed from the draft (if any), in one unit of work."""
    value = repo.kv_get(s, draft_key(draft_id))
    return (value if isinstance(value, dict) else None), repo.order_by_draft(s, draft_id)
