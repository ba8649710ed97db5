"""Recording Gate's answers on an order: forward-only, compare-and-set status changes, events.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gatebot import gate
from gatebot.orders.base import ServiceBase
from gatebot.store import repo
from gatebot.store.models import OPEN_STATUSES, Order, OrderStatus

log = logging.getLogger(__name__)


_SUBMITTABLE = frozenset({OrderStatus.SUBMITTING, OrderStatus.UNKNOWN, OrderStatus.WAITING_FUNDS})

#: The status reason recorded with each status Gate's order can bring ours to.
_GATE_REASONS = {
    OrderStatus.PENDING: "Gate accepted the order; waiting for the vendor.",
    OrderStatus.COMPLETED: "Gate delivered the order.",
    OrderStatus.FAILED: "Gate gave no reason",  # the Slack message and the CLI say what happens next
}


def _gate_status(g: gate.Order) -> OrderStatus:
    """Our status for Gate's order: completed, failed, or still pending."""
    return {"completed": OrderStatus.COMPLETED, "failed": OrderStatus.FAILED}.get(g.status, OrderStatus.PENDING)


def _stage(order: Order, status: OrderStatus, *, update: Callable[[Order, datetime], None], reason: str,
           allowed_from: frozenset[OrderStatus], now: datetime) -> bool:
    """Apply ``update`` to a loaded ``order`` unless it has moved on; whether its status must move to ``status``.

    An order only moves forward: one not in ``allowed_from`` (and not already in ``status``) is left
    untouched. Moving is left to the caller (:func:`repo.set_status`, compare-and-set); an order
    already in ``status`` is only updated and touched.
    """
    current = OrderStatus(order.status)
    if current not in allowed_from and current is not status:
        return False
    update(order, now)
    if current is not status:
        order.status_reason = reason
        return True
    order.updated_at = now
    return False


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
        status = _gate_status(g)
        return await self._record(order_id, status, actor=actor, reason=_GATE_REASONS[status],
                                  update=self._gate_update(g), allowed_from=OPEN_STATUSES)

    def _gate_update(self, g: gate.Order) -> Callable[[Order, datetime], None]:
        """What recording Gate's order ``g`` changes on ours besides the status (codes encrypted)."""

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

        return update

    async def _apply_gate_orders(self, answers: Sequence[tuple[int, gate.Order]], *, actor: str) -> list[Order]:
        """:meth:`_apply_gate_order` for many answers (e.g. a page of tracking) in ONE unit of work.

        One query loads the orders, one compare-and-set UPDATE per status moves them, the history rows
        go in together and one commit ends it; the events follow the commit, in the order of
        ``answers``. The stored result is the one applying them one by one gives: if the batch meets a
        concurrent status change or a Gate id another order holds, it is rolled back whole and the
        answers are applied one at a time, where each of those cases has its own handling.
        """
        if not answers:
            return []
        now = self.clock.now()

        def record(s: Session) -> tuple[list[Order], list[tuple[Order, OrderStatus]]]:
            loaded = repo.orders_by_ids(s, [order_id for order_id, _ in answers])
            orders: list[Order] = []
            moved: list[tuple[Order, OrderStatus]] = []
            for order_id, g in answers:
                order = loaded.get(order_id)
                if order is None:
                    raise LookupError(f"no order #{order_id}")
                status = _gate_status(g)
                if _stage(order, status, update=self._gate_update(g), reason=_GATE_REASONS[status],
                          allowed_from=OPEN_STATUSES, now=now):
                    moved.append((order, status))
                orders.append(order)
            for status in dict.fromkeys(status for _, status in moved):
                repo.set_statuses(s, [o for o, to in moved if to is status], status, actor=actor,
                                  note=_GATE_REASONS[status], now=now)
            return orders, moved

        try:
            orders, moved = await self.db.run(record)
        except (IntegrityError, repo.StatusConflict):  # rolled back: nothing of the batch was written
            log.info("a batch of %d Gate answers met a concurrent change or a taken Gate id; "
                     "applying them one at a time", len(answers))
            return [await self._apply_gate_order(order_id, g, actor=actor) for order_id, g in answers]
        for order, status in moved:
            await self._emit(f"order.{status}", order)
        return orders

    async def _transition(self, order_id: int, status: OrderStatus, *, actor: str, reason: str,
                          error_code: str | None,
                          allowed_from: frozenset[OrderStatus] = _SUBMITTABLE,
                          not_before: datetime | None = None) -> Order:
        """Record a submit that got no order back (refused, waiting for funds, outcome unknown...).
        ``not_before``: Gate asked us to wait (a 429's ``Retry-After``): the next attempt is no sooner."""

        def update(order: Order, now: datetime) -> None:
            order.error_code = error_code
            if status is not OrderStatus.UNKNOWN:
                order.next_attempt_at = None
            elif not_before is not None and (order.next_attempt_at is None or order.next_attempt_at < not_before):
                order.next_attempt_at = not_before

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
            moves = _stage(order, status, update=update, reason=reason, allowed_from=allowed_from, now=now)
            if moves:
                repo.set_status(s, order, status, actor=actor, note=reason, now=now)  # compare-and-set
            return order, moves

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

