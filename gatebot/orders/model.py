"""What the order pipeline takes and gives: drafts, quotes, balance snapshots, and its two errors.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from gatebot import gate
from gatebot.gate.models import (
    CreateOrderRequest,
)
from gatebot.money import Money
from gatebot.store.models import CatalogProduct, Order

log = logging.getLogger(__name__)


class OrderInvalid(Exception):
    """The draft cannot be sent. ``errors`` maps a field to a message a person understands.

    Field keys: ``product``, ``amount``, ``quantity``, ``external_ref``, ``account`` (free-form input),
    ``account.<name>``, ``balance``, ``limit`` (a daily spending limit).
    """

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class ApprovalRefused(Exception):
    """An approval or rejection that cannot be made (not an approver, own order, decided, expired...).

    ``str(exc)`` is one sentence for the person who tried; nothing changed."""


class GateDown(Exception):
    """The Gate API is known to be down (circuit open) or could not be reached: nothing was sent."""


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """What a person asked for, as typed. Validation turns it into a request body."""

    product: int | str
    requester: str
    amount: str | int | Decimal | None = None
    quantity: int | str | None = None
    account: Mapping[str, str] = field(default_factory=dict)
    external_ref: str | None = None
    test: bool = False
    origin_channel: str | None = None
    #: The Slack modal draft this comes from: a second submit of the same draft finds the first order.
    draft_id: str | None = None
    #: The requester's roles as the surface resolved them: role daily limits count the order against them.
    requester_roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class BalanceSnapshot:
    """Balances as Gate last reported them; ``cached`` when Gate did not answer in time."""

    balances: list[gate.Balance]
    at: datetime
    cached: bool = False

    def get(self, currency: str) -> Money | None:
        for b in self.balances:
            if b.currency_code.upper() == currency.upper():
                return b.money()
        return None


@dataclass(frozen=True, slots=True)
class Quote:
    """A validated draft with its cost and the balance it would leave."""

    product: CatalogProduct
    request: CreateOrderRequest
    cost: Money
    available: Money | None = None
    #: True when the balance came from the last known reading because Gate was slow.
    balance_cached: bool = False
    #: Why this order will wait for a second person's approval (``None``: it is sent at once).
    approval: str | None = None

    @property
    def needs_approval(self) -> bool:
        return self.approval is not None

    @property
    def balance_after(self) -> Money | None:
        return None if self.available is None else self.available - self.cost

    @property
    def account(self) -> dict[str, str]:
        top = self.request.topup_request
        return dict(top.customer_account) if top else {}


@dataclass(slots=True)
class TrackResult:
    checked: int = 0
    changed: int = 0
    requests: int = 0


def order_id_of(order: Order) -> int:
    if order.id is None:  # pragma: no cover - stored orders always have a number
        raise ValueError("order has no number yet")
    return order.id

