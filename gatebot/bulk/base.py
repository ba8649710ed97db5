"""What every part of :class:`~gatebot.bulk.BulkService` shares: the order service it builds on, the pace,
the results' lifetime, the injectable sleep, and the batch events.

Must not import Slack, the scheduler, ``gatebot.slack``, ``gatebot.jobs``, ``gatebot.demo`` or
``gatebot.emulator``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Final

from gatebot.bulk.model import BatchRefused
from gatebot.events import Event
from gatebot.orders import OrderService
from gatebot.store import repo
from gatebot.store.models import Batch

__all__ = ["DEFAULT_RATE", "DEFAULT_RESULTS_TTL", "PLANNED_TTL", "BulkBase", "Sleep"]

#: Rows sent per second (``GATEBOT_BULK_RATE``).
DEFAULT_RATE: Final = 5.0
#: How long the requester can download a finished batch's results (``GATEBOT_BULK_RESULTS_TTL``).
DEFAULT_RESULTS_TTL: Final = timedelta(days=7)
#: A planned batch nobody confirmed is dropped (with its encrypted file) after this long.
PLANNED_TTL: Final = timedelta(hours=24)

Sleep = Callable[[float], Awaitable[Any]]


class BulkBase:
    """The collaborators. ``sleep`` paces the runner: tests pass one that advances a ManualClock."""

    def __init__(self, *, orders: OrderService, rate: float = DEFAULT_RATE,
                 results_ttl: timedelta = DEFAULT_RESULTS_TTL, sleep: Sleep = asyncio.sleep) -> None:
        if rate <= 0:
            raise ValueError("the bulk rate must be positive (orders per second)")
        self.orders = orders
        self.db = orders.db
        self.clock = orders.clock
        self.cipher = orders.cipher
        self.events = orders.events
        self.rate = rate
        self.results_ttl = results_ttl
        self.sleep = sleep
        self.planned_ttl = PLANNED_TTL

    async def get(self, batch_id: int) -> Batch | None:
        """A batch by its number (``12`` for ``B12``)."""
        return await self.db.run(lambda s: repo.get_batch(s, batch_id))

    async def _require(self, batch_id: int) -> Batch:
        batch = await self.get(batch_id)
        if batch is None:
            raise BatchRefused(f"There is no batch B{batch_id}.")
        return batch

    async def _publish(self, kind: str, batch: Batch, **data: Any) -> None:
        """``batch.<kind>`` with the batch's number and status (never a code or an account value)."""
        await self.events.publish(Event(kind=f"batch.{kind}", at=self.clock.now(), data={
            "batch_id": batch.id, "status": batch.status, "requester": batch.requester, **data}))
