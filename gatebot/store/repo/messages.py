"""Where an order's Slack status message lives, and whether its code was DMed: compare-and-set writes.

Three typed columns on ``orders`` say where the status message is: ``message_ts`` (``None`` while none
is posted), ``message_in_dm`` (in the requester's DM rather than ``origin_channel``) and
``message_claimed_at`` (a process is posting the first message since then). Several processes follow
the same orders, so every write here is one conditional ``UPDATE``: whoever's statement matches wins.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, update
from sqlmodel import Session, col

from gatebot.store.models import Order

__all__ = ["claim_message", "release_message", "save_message", "set_dm_sent", "take_over_message"]


def _changed(s: Session, statement: object) -> bool:
    result = s.execute(statement.execution_options(synchronize_session=False))  # type: ignore[attr-defined]
    return int(getattr(result, "rowcount", 0)) == 1


def claim_message(s: Session, order_id: int, *, now: datetime, stale_before: datetime) -> bool:
    """Claim posting the order's first status message; ``True`` if this caller got it.

    Succeeds while no message is posted and nobody holds a claim newer than ``stale_before`` (a claim
    older than that belongs to a process that died).
    """
    claimed_at = col(Order.message_claimed_at)
    statement = (
        update(Order)
        .where(
            col(Order.id) == order_id,
            col(Order.message_ts).is_(None),
            or_(claimed_at.is_(None), claimed_at < stale_before),
        )
        .values(message_claimed_at=now)
    )
    return _changed(s, statement)


def take_over_message(s: Session, order_id: int, *, ts: str, in_dm: bool, now: datetime) -> bool:
    """The message at ``ts`` vanished: claim posting a new one, unless another process already did."""
    statement = (
        update(Order)
        .where(and_(col(Order.id) == order_id, col(Order.message_ts) == ts, col(Order.message_in_dm).is_(in_dm)))
        .values(message_ts=None, message_in_dm=False, message_claimed_at=now)
    )
    return _changed(s, statement)


def save_message(s: Session, order_id: int, *, ts: str, in_dm: bool) -> Order | None:
    """Record the posted status message (and drop the claim); returns the order as stored now."""
    s.execute(
        update(Order)
        .where(col(Order.id) == order_id)
        .values(message_ts=ts, message_in_dm=in_dm, message_claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    return s.get(Order, order_id, populate_existing=True)


def release_message(s: Session, order_id: int) -> None:
    """Give the claim up without a message (posting failed): the next event tries again."""
    s.execute(
        update(Order)
        .where(col(Order.id) == order_id)
        .values(message_ts=None, message_in_dm=False, message_claimed_at=None)
        .execution_options(synchronize_session=False)
    )


def set_dm_sent(s: Session, order_id: int, *, expected: bool, value: bool = True) -> bool:
    """Compare-and-set ``dm_sent`` from ``expected`` to ``value``: two processes never both send a code."""
    statement = (
        update(Order).where(col(Order.id) == order_id, col(Order.dm_sent).is_(expected)).values(dm_sent=value)
    )
    return _changed(s, statement)
