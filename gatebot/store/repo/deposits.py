"""Gate deposits seen by the deposit watch, and which of them were announced.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from gatebot.gate.models import Deposit
from gatebot.store.models import (
    SeenDeposit,
)
from gatebot.store.repo._sql import in_chunks

# -- deposits --------------------------------------------------------------------------------------


def _aware(value: datetime | None) -> datetime | None:
    """Gate's timestamps are UTC; a server that omits the offset still means UTC."""
    if value is None or value.utcoffset() is not None:
        return value
    return value.replace(tzinfo=UTC)


def record_deposits(s: Session, deposits: Iterable[Deposit], now: datetime) -> list[SeenDeposit]:
    """Remember Gate's deposits; return the ones seen for the first time or that became ``posted`` now.

    Those are what to announce; call :func:`mark_announced` once the announcement went out.
    """
    batch = list(deposits)
    ids = sorted({d.id for d in batch})
    known: dict[int, SeenDeposit] = {}
    for chunk in in_chunks(ids):
        known.update({row.id: row for row in s.exec(select(SeenDeposit).where(col(SeenDeposit.id).in_(chunk)))})
    news: list[SeenDeposit] = []
    reported: set[int] = set()
    for deposit in batch:
        row = known.get(deposit.id)
        if row is None:
            row = SeenDeposit(
                id=deposit.id,
                currency=deposit.currency_code.upper(),
                amount=deposit.amount,
                status=deposit.status,
                method=deposit.method,
                external_ref=deposit.external_ref,
                created_at=_aware(deposit.created_at),
                posted_at=_aware(deposit.posted_at),
                first_seen_at=now,
            )
            s.add(row)
            known[deposit.id] = row
            news.append(row)
            reported.add(deposit.id)
            continue
        newly_posted = row.status != "posted" and deposit.status == "posted"
        row.status = deposit.status
        row.amount = deposit.amount
        row.currency = deposit.currency_code.upper()
        row.method = deposit.method
        row.external_ref = deposit.external_ref
        row.created_at = _aware(deposit.created_at) or row.created_at
        row.posted_at = _aware(deposit.posted_at) or row.posted_at
        if newly_posted and deposit.id not in reported:
            news.append(row)
            reported.add(deposit.id)
    s.flush()
    return news


def mark_announced(s: Session, deposit_ids: Iterable[int], now: datetime) -> int:
    """Set ``announced_at`` on deposits not announced yet; returns how many changed."""
    ids = sorted(set(deposit_ids))
    changed = 0
    for chunk in in_chunks(ids):
        result = s.exec(
            update(SeenDeposit)
            .where(col(SeenDeposit.id).in_(chunk), col(SeenDeposit.announced_at).is_(None))
            .values(announced_at=now)
            .execution_options(synchronize_session="fetch")
        )
        changed += result.rowcount
    return changed


def unannounced_deposits(s: Session, *, status: str = "posted") -> list[SeenDeposit]:
    """Deposits in ``status`` never announced (e.g. the process stopped between record and announce)."""
    query = (
        select(SeenDeposit)
        .where(col(SeenDeposit.status) == status, col(SeenDeposit.announced_at).is_(None))
        .order_by(col(SeenDeposit.id))
    )
    return list(s.exec(query).all())
