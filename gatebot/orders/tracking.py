"""Tracking pending orders at Gate (in bulk when there are many), recovery and resuming after deposits.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from gatebot import gate
from gatebot.orders.model import TrackResult, order_id_of
from gatebot.orders.submit import Submitting
from gatebot.store import repo
from gatebot.store.models import OrderStatus

log = logging.getLogger(__name__)


#: With at most this many pending orders, tracking asks for each one; above it, it pages the lists.
SINGLE_FETCH_LIMIT = 3
#: Gate answers recorded per unit of work (one commit each): a page of ``GET /orders``.
APPLY_BATCH = 100


class Tracking(Submitting):
    """Re-drive, track and resume orders after their first submit."""

    # -- recovery, tracking, resuming --------------------------------------------------------------------
    async def recover(self, *, everything: bool = False, limit: int = 200) -> int:
        """Re-drive orders left ``submitting``/``unknown``; ``everything`` ignores their retry times.

        At start-up call it with ``everything=True``: a process that died mid-request left its
        intents behind, and re-sending them with their own keys is always safe.
        """
        now = self.clock.now()
        until = now + timedelta(days=3650) if everything else now
        due = await self.db.run(lambda s: repo.orders_due(s, [OrderStatus.SUBMITTING, OrderStatus.UNKNOWN],
                                                          now=until, limit=limit))
        ids = [order_id_of(o) for o in due]
        for order_id in ids:
            if not await self._gate_available():
                break
            await self.submit(order_id, actor="system:recovery")
        return len(ids)

    async def track(self) -> TrackResult:
        """Bring pending orders up to date with Gate, in bulk when there are many."""
        result = TrackResult()
        tracked = await self.db.run(lambda s: repo.orders_at_gate(s, [OrderStatus.PENDING]))
        pending = {o.gate_order_id: o for o in tracked}
        result.checked = len(pending)
        if not pending:
            return result
        seen: dict[str, gate.Order] = {}
        if len(pending) <= SINGLE_FETCH_LIMIT:
            for gate_id in pending:
                result.requests += 1
                try:
                    seen[gate_id] = await self.gate.get_order(gate_id)
                except gate.GateNotFound:
                    log.warning("Gate does not know order %s", gate_id)
        else:
            still_pending: set[str] = set()
            async for page in self._pages(status="pending"):
                result.requests += 1
                for o in page:
                    if o.id in pending:
                        still_pending.add(o.id)
                        seen[o.id] = o
            moved = {gid for gid in pending if gid not in still_pending}
            if moved:
                oldest = min(pending[gid].created_at for gid in moved) - timedelta(minutes=10)
                async for page in self._pages():
                    result.requests += 1
                    for o in page:
                        if o.id in moved:
                            seen[o.id] = o
                            moved.discard(o.id)
                    if not moved or (page and page[-1].created_at and page[-1].created_at < oldest):
                        break
                for gid in list(moved)[:50]:  # not found in the lists: ask one by one (bounded)
                    result.requests += 1
                    try:
                        seen[gid] = await self.gate.get_order(gid)
                    except gate.GateNotFound:
                        log.warning("Gate does not know order %s", gid)
        news = [(pending[gate_id].id, gate_order) for gate_id, gate_order in seen.items()
                if not (gate_order.status == OrderStatus.PENDING  # nothing new: no write
                        and (pending[gate_id].has_content or not gate_order.order_content))]
        for start in range(0, len(news), APPLY_BATCH):
            applied = await self._apply_gate_orders(news[start : start + APPLY_BATCH], actor="system:tracker")
            result.changed += sum(1 for after in applied if after.status != OrderStatus.PENDING)
        return result

    async def _pages(self, **filters: Any) -> AsyncIterator[list[gate.Order]]:
        """Pages of ``GET /orders`` (newest first), 100 orders each."""
        page = 1
        while True:
            listing = await self.gate.list_orders(page=page, page_size=100, **filters)
            yield listing.items
            if not listing.has_more:
                return
            page += 1

    async def resume_waiting(self, currency: str | None = None) -> int:
        """Re-submit orders waiting for funds (same key), e.g. after a deposit in ``currency`` posted."""
        if not self.resume_on_deposit:
            return 0
        rows = await self.db.run(lambda s: repo.open_orders(s, [OrderStatus.WAITING_FUNDS]))
        waiting = [order_id_of(o) for o in rows if currency is None or o.currency == currency]
        for order_id in waiting:
            await self.submit(order_id, actor="system:deposit")
        return len(waiting)

