"""Acks before work: a listener's work after its ack waits while other Slack requests still wait for theirs.

Slack gives an ack 3 seconds; the reply that follows it (``response_url``, a DM, a modal update) has
minutes. Bolt runs a listener's work on the same event loop as the requests still being acknowledged, so
a burst of fifty ``/gate balance`` commands would otherwise interleave fifty replies' Gate calls, store
reads and Slack posts with the last acks. Here:

* :class:`AckQueue` (one per :class:`~gatebot.slack.edge.SlackEdge`) counts the verified requests whose
  listener has not acked yet; :meth:`AckQueue.arrived` is the edge's side, for the life of one request.
* :func:`acks_first` wraps a listener's ``ack``: the ack goes out at once, then the work after it waits
  until no other request of the same edge is waiting for its ack — at most :data:`MAX_YIELD` seconds,
  so steady traffic delays replies a little, never starves them.

Socket Mode has no edge (nothing is counted): work there starts right after the ack, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final

__all__ = ["MAX_YIELD", "AckQueue", "acks_first"]

#: The longest a listener's work waits for other requests' acks (a ``trigger_id`` it may need lives 3 s).
MAX_YIELD: Final = 0.5

_current: contextvars.ContextVar[_Waiting | None] = contextvars.ContextVar("gatebot_ack_waiting", default=None)


class AckQueue:
    """How many requests of one edge still wait for their ack, and a way to wait until none does."""

    def __init__(self, *, max_yield: float = MAX_YIELD) -> None:
        self.max_yield = max_yield
        self.waiting = 0
        self._none_waiting = asyncio.Event()
        self._none_waiting.set()

    @contextlib.contextmanager
    def arrived(self) -> Iterator[None]:
        """Around one request's dispatch: it waits for its ack until its listener acks (or Bolt answers)."""
        entry = _Waiting(self)
        token = _current.set(entry)
        try:
            yield
        finally:
            _current.reset(token)
            entry.acked()

    async def others_acked(self) -> None:
        """Return when no request waits for its ack, or after ``max_yield`` seconds."""
        if self.waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._none_waiting.wait(), self.max_yield)

    def _count(self, change: int) -> None:
        self.waiting += change
        if self.waiting:
            self._none_waiting.clear()
        else:
            self._none_waiting.set()


class _Waiting:
    """One request's place in its queue; leaves it once (at the ack, or when the request ends)."""

    __slots__ = ("_queue",)

    def __init__(self, queue: AckQueue) -> None:
        self._queue: AckQueue | None = queue
        queue._count(+1)

    def acked(self) -> AckQueue | None:
        queue, self._queue = self._queue, None
        if queue is not None:
            queue._count(-1)
        return queue


def acks_first(ack: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``ack`` for a listener that works after acking: acks, then yields to the acks still owed."""
    entry = _current.get()  # the listener's task was started inside the edge's ``arrived`` block

    async def ack_then_yield(*args: Any, **kwargs: Any) -> Any:
        answer = await ack(*args, **kwargs)
        queue = entry.acked() if entry is not None else None
        if queue is not None:
            await queue.others_acked()
        return answer

    return ack_then_yield
