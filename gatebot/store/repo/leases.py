"""Named, expiring leases: "only one scheduler runs" across processes, in one atomic statement.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, or_
from sqlmodel import Session, col, select

from gatebot.store.models import (
    Lease,
    metadata,
)
from gatebot.store.repo._sql import insert_for as _insert

# -- leases ----------------------------------------------------------------------------------------


def try_acquire_lease(s: Session, name: str, owner: str, now: datetime, ttl_seconds: float) -> bool:
    """Take or renew the lease ``name`` for ``owner`` until ``now + ttl_seconds``; ``True`` if we hold it.

    One atomic statement (``INSERT ... ON CONFLICT DO UPDATE ... WHERE``): it succeeds when the lease is
    free, already ours (renewal: ``acquired_at`` is kept), or expired (``expires_at <= now``). On
    PostgreSQL a concurrent attempt waits for the other transaction and then re-checks, so two
    processes never both win. The lease counts once the caller's transaction commits: use a short
    session of its own.
    """
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    table = metadata.tables["leases"]
    statement = _insert(s, table).values(
        name=name, owner=owner, expires_at=now + timedelta(seconds=ttl_seconds), acquired_at=now
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[table.c.name],
        set_={
            "owner": statement.excluded.owner,
            "expires_at": statement.excluded.expires_at,
            "acquired_at": case(
                (table.c.owner == statement.excluded.owner, table.c.acquired_at),
                else_=statement.excluded.acquired_at,
            ),
        },
        where=or_(table.c.expires_at <= now, table.c.owner == owner),
    ).returning(table.c.owner)
    won = s.connection().execute(upsert).first()
    _forget_lease(s, name)
    return won is not None


def release_lease(s: Session, name: str, owner: str) -> bool:
    """Give the lease up if ``owner`` holds it (so a successor need not wait for expiry)."""
    table = metadata.tables["leases"]
    result = s.connection().execute(table.delete().where(table.c.name == name, table.c.owner == owner))
    _forget_lease(s, name)
    return result.rowcount > 0


def lease_holder(s: Session, name: str, *, now: datetime | None = None) -> Lease | None:
    """The lease row for ``name``; with ``now``, ``None`` if it has expired."""
    query = select(Lease).where(col(Lease.name) == name).execution_options(populate_existing=True)
    lease = s.exec(query).first()
    if lease is None or (now is not None and lease.expires_at <= now):
        return None
    return lease


def _forget_lease(s: Session, name: str) -> None:
    """Lease rows change behind the ORM's back (core statements): drop any loaded copy."""
    for obj in list(s.identity_map.values()):
        if isinstance(obj, Lease) and obj.name == name:
            s.expunge(obj)
