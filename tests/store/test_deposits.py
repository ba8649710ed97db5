"""Seen deposits: what is new or newly posted, and announcements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from gatebot.gate.models import Deposit
from gatebot.money import Money
from gatebot.store import repo
from tests.store.conftest import T0


def deposit(did: int, status: str = "pending", **extra: Any) -> Deposit:
    fields: dict[str, Any] = {
        "id": did,
        "currency_code": "USD",
        "amount": "500.00",
        "status": status,
        "method": "bank_wire",
        "external_ref": f"WIRE-{did}",
        "created_at": "2026-11-24T08:00:00Z",
    }
    fields.update(extra)
    return Deposit.model_validate(fields)


def test_first_sight_and_posting_are_reported_once(session: Session) -> None:
    t1 = T0 + timedelta(minutes=5)
    new = repo.record_deposits(session, [deposit(1), deposit(2, "posted", posted_at="2026-11-24T08:30:00Z")], T0)
    assert [d.id for d in new] == [1, 2]
    assert new[0].money() == Money(Decimal("500.00"), "USD")
    assert new[0].first_seen_at == T0
    assert new[1].posted_at == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    assert repo.record_deposits(session, [deposit(1), deposit(2, "posted")], t1) == []  # nothing changed
    posted = repo.record_deposits(session, [deposit(1, "posted", posted_at="2026-11-24T09:01:00Z")], t1)
    assert [(d.id, d.status, d.first_seen_at) for d in posted] == [(1, "posted", T0)]
    assert repo.record_deposits(session, [deposit(1, "posted")], t1 + timedelta(minutes=5)) == []


def test_rejection_is_recorded_but_not_reported(session: Session) -> None:
    repo.record_deposits(session, [deposit(3)], T0)
    assert repo.record_deposits(session, [deposit(3, "rejected")], T0) == []
    assert repo.unannounced_deposits(session, status="rejected")[0].id == 3


def test_duplicates_in_one_batch_are_reported_once(session: Session) -> None:
    assert [d.id for d in repo.record_deposits(session, [deposit(4), deposit(4)], T0)] == [4]


def test_naive_gate_timestamps_are_taken_as_utc(session: Session) -> None:
    (row,) = repo.record_deposits(session, [deposit(5, created_at="2026-11-24T08:00:00")], T0)
    session.commit()
    session.expire_all()
    assert row.created_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_mark_announced_and_unannounced(session: Session) -> None:
    repo.record_deposits(session, [deposit(1, "posted"), deposit(2, "posted"), deposit(3)], T0)
    assert [d.id for d in repo.unannounced_deposits(session)] == [1, 2]
    assert repo.mark_announced(session, [1, 3], T0) == 2
    assert repo.mark_announced(session, [1], T0 + timedelta(hours=1)) == 0  # first announcement wins
    assert [d.id for d in repo.unannounced_deposits(session)] == [2]
    session.commit()
    session.expire_all()
    rows = {d.id: d for d in repo.unannounced_deposits(session, status="pending")}
    assert rows == {}
    announced = repo.record_deposits(session, [deposit(1, "posted")], T0)
    assert announced == []
