"""Recording Gate's answers on an order: forward-only, compare-and-set status changes, events.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gatebot import gate
from gatebot.orders.base import ServiceBase
from gatebot.store import repo
from gatebot.store.models import OPEN_STATUSES, Order, OrderStatus

log = logging.getLogger(__name__)


_SUBMITTABLE = frozenset({OrderStatus.SUBMITTING, OrderStatus.UNKNOWN, OrderStatus.WAITING_FUNDS})


class Recording(ServiceBase):
    """Apply what Gate says about an order, never moving it backwards."""

    async def _apply_gate_order(self, order_id: int, g: gate.Order, *, actor: str) -> Order:
        """Record what Gate says about an order (create answer, tracking). Never moves backwards.

        A Gate order id that another of our orders already holds is an inconsistency, not a crash:
        the order moves to ``needs_attention`` (see :meth:`_gate_id_taken`).
        """
        try:
            return await self._record_gate_order(order_id, g, actor=actor)
        except IntegrityError:  # the write was rolled back; the unique index on gate_order_id says who
            holder = await self._gate_id_holder(g.id, order_id)
            if holder is None:
                raise
        return await self._gate_id_taken(order_id, g.id, holder, actor=actor)

    async def _gate_id_holder(self, gate_id: str, order_id: int) -> int | None:
        """The number of *another* order holding ``gate_id``, or ``None``."""
        held = await self.db.run(lambda s: repo.orders_by_gate_ids(s, [gate_id]).get(gate_id))
        return held.id if held is not None and held.id != order_id else None

    async def _gate_id_taken(self, order_id: int, gate_id: str, holder: int, *, actor: str) -> Order:
        """Gate answered with an order id our order ``holder`` holds: stop, say so, leave it to a person."""
        log.warning("order #%s: Gate answered with order %s, already held by order #%s; "
                    "moved to needs_attention (nothing more is sent for it)", order_id, gate_id, holder)
        reason = (f"Gate answered with order {gate_id}, which our order #{holder} already holds, so one of "
                  "the two records is wrong. Nothing more is sent or tracked for this order. Look both up at "
                  "Gate (by this order's external_ref and by that id) and settle it by hand; if this order "
                  "was not delivered, place it again with a new reference.")
        return await self._transition(order_id, OrderStatus.NEEDS_ATTENTION, actor=actor, reason=reason,
                                      error_code="gate_order_id_taken", allowed_from=OPEN_STATUSES)

    async def _record_gate_order(self, order_id: int, g: gate.Order, *, actor: str) -> Order:
        status = {"completed": OrderStatus.COMPLETED, "failed": OrderStatus.FAILED}.get(
            g.status, OrderStatus.PENDING)

        def update(order: Order, now: datetime) -> None:
            order.gate_order_id = g.id
            for name in ("charged_amount", "balance_before", "balance_after"):
                value = getattr(g, name)
                if value is not None:
                    setattr(order, name, value)
            if g.order_content:
                order.set_secret_fields(self.cipher, content=g.order_content)
            order.submitted_at = order.submitted_at or now
            order.completed_at = order.completed_at or g.completed_at
            order.failed_at = order.failed_at or g.failed_at
            order.next_attempt_at = None
            order.error_code = None

        reason = {
            OrderStatus.PENDING: "Gate accepted the order; waiting for the vendor.",
            OrderStatus.COMPLETED: "Gate delivered the order.",
            OrderStatus.FAILED: "Gate gave no reason",  # the Slack message and the CLI say what happens next
        }[status]
        return await self._record(order_id, status, actor=actor, reason=reason, update=update,
                                  allowed_from=OPEN_STATUSES)

    async def _transition(self, order_id: int, status: OrderStatus, *, actor: str, reason: str,
                          error_code: str | None,
                          allowed_from: frozenset[OrderStatus] = _SUBMITTABLE) -> Order:
        """Record a submit that got no order back (refused, waiting for funds, outcome unknown...)."""

        def update(order: Order, now: datetime) -> None:
            order.error_code = error_code
            if status is not OrderStatus.UNKNOWN:
                order.next_attempt_at = None

        return await self._record(order_id, status, actor=actor, reason=reason, update=update,
                                  allowed_from=allowed_from)

    async def _record(self, order_id: int, status: OrderStatus, *, actor: str, reason: str,
                      update: Callable[[Order, datetime], None],
                      allowed_from: frozenset[OrderStatus]) -> Order:
        """Apply ``update`` and move to ``status`` in one transaction, unless the order has moved on.

        An order only moves forward: a late or concurrent answer (another process, a recovery racing
        the original request) never takes a pending or final order back to ``unknown``. The status
        change is compare-and-set in the store; losing that race means someone else recorded it.
        """
        now = self.clock.now()

        def record(s: Session) -> tuple[Order, bool]:
            order = repo.get_order(s, order_id)
            if order is None:
                raise LookupError(f"no order #{order_id}")
            current = OrderStatus(order.status)
            if current not in allowed_from and current is not status:
                return order, False
            update(order, now)
            if current is not status:
                order.status_reason = reason
                repo.set_status(s, order, status, actor=actor, note=reason, now=now)  # compare-and-set
                return order, True
            order.updated_at = now
            s.add(order)
            return order, False

        try:
            order, changed = await self.db.run(record)
        except repo.StatusConflict:  # the unit of work was rolled back: the other writer's status stands
            log.info("order #%s was updated concurrently; keeping the other writer's status", order_id)
            fresh = await self.db.run(lambda s: repo.get_order(s, order_id))
            assert fresh is not None
            return fresh
        if changed:
            await self._emit(f"order.{status}", order)
        return order

