"""The state every part of :class:`~gatebot.orders.OrderService` shares, and its small helpers.

The service is split along meaning into mixins (validation, balances, recording Gate's answers,
intent and submit, tracking and recovery), each a subclass of :class:`ServiceBase`.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from gatebot import gate
from gatebot.clock import Clock
from gatebot.events import Event, EventBus
from gatebot.gate.models import CustomerAccountField
from gatebot.orders.drafts import Drafts
from gatebot.orders.model import GateDown
from gatebot.orders.policy import ApprovalPolicy
from gatebot.orders.validation_rules import account_fields_for
from gatebot.store.crypto import Cipher
from gatebot.store.db import Database
from gatebot.store.models import CatalogProduct, Order

log = logging.getLogger(__name__)


class ServiceBase:
    """The order pipeline's collaborators (store, Gate client, cipher, clock, event bus) and settings."""

    def __init__(
        self,
        *,
        db: Database,
        gate_client: gate.GateClient,
        cipher: Cipher,
        clock: Clock,
        events: EventBus | None = None,
        account_fields: Mapping[str, list[dict[str, Any]]] | None = None,
        default_margin: Decimal = Decimal("0"),
        resume_on_deposit: bool = True,
        gate_available: Callable[[], Awaitable[bool]] | None = None,
        approval_policy: ApprovalPolicy | None = None,
    ) -> None:
        self.db = db
        self.gate = gate_client
        self.cipher = cipher
        self.clock = clock
        self.events = events or EventBus()
        self.account_fields = dict(account_fields or {})
        self.default_margin = default_margin
        self.resume_on_deposit = resume_on_deposit
        self._gate_available = gate_available or _always_available
        #: Approval threshold, approvers and daily limits (default: none, every order is sent at once).
        self.approval_policy = approval_policy or ApprovalPolicy()
        #: Reviewed drafts of the Slack order form, between review and placing.
        self.drafts = Drafts(db=db, cipher=cipher, clock=clock)
        self._background: set[asyncio.Future[Any]] = set()
        #: The ``GET /balance`` in flight, shared by everyone who asks meanwhile (``Balances.balances``).
        self._balance_fetch: asyncio.Future[Any] | None = None


    def fields_for(self, product: CatalogProduct) -> list[CustomerAccountField] | None:
        return account_fields_for(product, self.account_fields)


    async def _require_gate(self) -> None:
        if not await self._gate_available():
            raise GateDown("The Gate API is down right now, so no order was sent. "
                           "Try again when it has recovered (see /gate health).")


    async def _emit(self, kind: str, order: Order, **data: Any) -> None:
        """``order.<status>`` and friends; a bulk row's events carry its ``batch_id`` (its batch speaks for it
        in Slack: one progress message and one results file, not a message and a DM per row)."""
        batch = {"batch_id": order.batch_id} if order.batch_id is not None else {}
        await self.events.publish(Event(kind=kind, at=self.clock.now(), order_id=order.id,
                                        data={"status": str(order.status), **batch, **data}))


async def _always_available() -> bool:
    return True
