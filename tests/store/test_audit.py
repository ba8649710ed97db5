"""Audit log: append and read back newest first with filters."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from gatebot.store import repo
from tests.store.conftest import T0


def test_audit_and_recent_audit(session: Session) -> None:
    first = repo.audit(session, actor="U1", action="order.create", target="#1", allowed=True, now=T0)
    repo.audit(
        session,
        actor="U2",
        action="code.view",
        target="#1",
        allowed=False,
        detail="not the requester",
        now=T0 + timedelta(minutes=1),
    )
    repo.audit(session, actor="U1", action="code.view", target="#2", allowed=True, now=T0 + timedelta(minutes=2))
    session.commit()
    assert first.id is not None and first.at == T0
    assert [(e.actor, e.action, e.target) for e in repo.recent_audit(session)] == [
        ("U1", "code.view", "#2"),
        ("U2", "code.view", "#1"),
        ("U1", "order.create", "#1"),
    ]
    denied = repo.recent_audit(session, action="code.view", target="#1")
    assert [(e.allowed, e.detail) for e in denied] == [(False, "not the requester")]
    assert [e.target for e in repo.recent_audit(session, actor="U1")] == ["#2", "#1"]
    assert [e.target for e in repo.recent_audit(session, since=T0 + timedelta(minutes=1))] == ["#2", "#1"]
    page = repo.recent_audit(session, limit=1)
    assert [e.target for e in repo.recent_audit(session, before_id=page[0].id, limit=5)] == ["#1", "#1"]
