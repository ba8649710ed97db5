"""Domain events and a tiny in-process bus.

The order pipeline and the alert jobs publish; the Slack notifier subscribes. The bus knows nothing
of Slack: subscribers are plain async callables. A failing subscriber is logged and never breaks the
publisher (an order's state in the store is the truth; a missed Slack post can be redone).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Event", "EventBus", "Subscriber"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened. ``kind`` is e.g. ``order.completed`` or ``alert.fired``.

    ``data`` never carries voucher codes or customer-account fields: subscribers that need them
    read them from the store, where they are encrypted.
    """

    kind: str
    at: datetime
    order_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[Event], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[tuple[str, Subscriber]] = []

    def subscribe(self, prefix: str, callback: Subscriber) -> None:
        """Call ``callback`` for every event whose kind starts with ``prefix`` (``""`` for all)."""
        self._subscribers.append((prefix, callback))

    async def publish(self, event: Event) -> None:
        for prefix, callback in list(self._subscribers):
            if event.kind.startswith(prefix):
                try:
                    await callback(event)
                except Exception:
                    log.exception("subscriber %r failed on %s", callback, event.kind)
