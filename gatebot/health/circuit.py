""""Is the Gate down?" for callers that hold no session: the circuit of the stored health alert.

The rule is :func:`gatebot.alerts.circuit_open` (a health state's ``down``), read from the store by
:func:`gatebot.alerts.stored.gate_down` inside a unit of work. This module is only how callers outside
one ask it: :func:`circuit_open` for synchronous code, :func:`circuit_open_async` (off the event loop)
for async code.

Must not import Slack, the scheduler, ``gatebot.jobs`` or httpx.
"""

from __future__ import annotations

from gatebot.alerts.stored import gate_down
from gatebot.store.db import Database

__all__ = ["circuit_open", "circuit_open_async"]


def circuit_open(db: Database) -> bool:
    """Whether the Gate API counts as down: new orders are refused up front, API jobs pause.

    For synchronous callers; the order service asks :func:`circuit_open_async` (``runtime.gate_up``).
    """
    with db.session() as s:
        return gate_down(s)


async def circuit_open_async(db: Database) -> bool:
    """:func:`circuit_open` on the store's worker thread (the event loop does not wait on the database)."""
    return await db.run(gate_down)
