"""The audit log: who did (or was refused) what. Never put codes or accounts in ``detail``.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from gatebot.store.models import (
    AuditEntry,
)

# -- audit -----------------------------------------------------------------------------------------


def audit(
    s: Session,
    *,
    actor: str,
    action: str,
    target: str | None,
    allowed: bool,
    detail: str | None = None,
    now: datetime,
) -> AuditEntry:
    """Record who did (or was refused) what. ``detail`` is for people: never put codes or accounts in it."""
    entry = AuditEntry(at=now, actor=actor, action=action, target=target, allowed=allowed, detail=detail)
    s.add(entry)
    s.flush()
    return entry


def recent_audit(
    s: Session,
    *,
    limit: int = 50,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
) -> list[AuditEntry]:
    """Audit entries newest first, optionally filtered; page with ``before_id``."""
    query = select(AuditEntry)
    if actor is not None:
        query = query.where(col(AuditEntry.actor) == actor)
    if action is not None:
        query = query.where(col(AuditEntry.action) == action)
    if target is not None:
        query = query.where(col(AuditEntry.target) == target)
    if since is not None:
        query = query.where(col(AuditEntry.at) >= since)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    return list(s.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit)).all())
