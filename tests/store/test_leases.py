"""Leases: acquire, renew, expiry and takeover with explicit times; exactly one winner under contention."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from gatebot.store import repo
from gatebot.store.db import Database
from tests.store.conftest import T0

TTL = 60.0


def test_acquire_free_lease(session: Session) -> None:
    assert repo.try_acquire_lease(session, "scheduler", "web-1", T0, TTL)
    lease = repo.lease_holder(session, "scheduler")
    assert lease is not None
    assert (lease.owner, lease.acquired_at, lease.expires_at) == ("web-1", T0, T0 + timedelta(seconds=TTL))


def test_other_owner_is_refused_before_expiry(session: Session) -> None:
    assert repo.try_acquire_lease(session, "scheduler", "web-1", T0, TTL)
    for moment in (T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=TTL) - timedelta(microseconds=1)):
        assert not repo.try_acquire_lease(session, "scheduler", "web-2", moment, TTL)
    lease = repo.lease_holder(session, "scheduler")
    assert lease is not None and lease.owner == "web-1"


def test_takeover_at_and_after_expiry(session: Session) -> None:
    assert repo.try_acquire_lease(session, "scheduler", "web-1", T0, TTL)
    expiry = T0 + timedelta(seconds=TTL)
    assert repo.try_acquire_lease(session, "scheduler", "web-2", expiry, TTL)  # expires_at <= now: expired
    lease = repo.lease_holder(session, "scheduler")
    assert lease is not None
    assert (lease.owner, lease.acquired_at, lease.expires_at) == (
        "web-2",
        expiry,
        expiry + timedelta(seconds=TTL),
    )
    assert not repo.try_acquire_lease(session, "scheduler", "web-1", expiry + timedelta(seconds=1), TTL)


def test_renewal_extends_and_keeps_acquired_at(session: Session) -> None:
    assert repo.try_acquire_lease(session, "scheduler", "web-1", T0, TTL)
    t1 = T0 + timedelta(seconds=45)
    assert repo.try_acquire_lease(session, "scheduler", "web-1", t1, TTL)
    lease = repo.lease_holder(session, "scheduler")
    assert lease is not None and (lease.acquired_at, lease.expires_at) == (T0, t1 + timedelta(seconds=TTL))
    late = T0 + timedelta(hours=1)  # even after expiry, nobody took it: still ours
    assert repo.try_acquire_lease(session, "scheduler", "web-1", late, TTL)


def test_leases_are_independent_by_name(session: Session) -> None:
    assert repo.try_acquire_lease(session, "scheduler", "web-1", T0, TTL)
    assert repo.try_acquire_lease(session, "digest", "web-2", T0, TTL)


def test_release(session: Session) -> None:
    assert repo.try_acquire_lease(session, "scheduler", "web-1", T0, TTL)
    assert not repo.release_lease(session, "scheduler", "web-2")
    assert repo.release_lease(session, "scheduler", "web-1")
    assert repo.lease_holder(session, "scheduler") is None
    assert repo.try_acquire_lease(session, "scheduler", "web-2", T0, TTL)


def test_lease_holder_with_now_ignores_expired(session: Session) -> None:
    assert repo.lease_holder(session, "scheduler", now=T0) is None
    assert repo.try_acquire_lease(session, "scheduler", "web-1", T0, TTL)
    assert repo.lease_holder(session, "scheduler", now=T0 + timedelta(seconds=59)) is not None
    assert repo.lease_holder(session, "scheduler", now=T0 + timedelta(seconds=TTL)) is None
    assert repo.lease_holder(session, "scheduler") is not None


def test_lease_holder_sees_changes_made_by_statements(session: Session) -> None:
    assert repo.try_acquire_lease(session, "scheduler", "web-1", T0, TTL)
    assert repo.lease_holder(session, "scheduler") is not None
    assert repo.try_acquire_lease(session, "scheduler", "web-1", T0 + timedelta(seconds=10), TTL)
    lease = repo.lease_holder(session, "scheduler")
    assert lease is not None and lease.expires_at == T0 + timedelta(seconds=10 + TTL)


def test_ttl_must_be_positive(session: Session) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        repo.try_acquire_lease(session, "scheduler", "web-1", T0, 0)


def _wait_until_blocked(database: Database, timeout: float = 5.0) -> None:
    """PostgreSQL: wait until some other backend waits on a lock (the contender reached the row)."""
    with database.engine.connect() as conn:
        deadline = conn.execute(text("SELECT clock_timestamp() + make_interval(secs => :t)"), {"t": timeout}).scalar()
        while True:
            waiting = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() "
                     "AND datname = current_database()")
            ).scalar()
            if waiting or conn.execute(text("SELECT clock_timestamp() > :d"), {"d": deadline}).scalar():
                return
            conn.execute(text("SELECT pg_sleep(0.01)"))
            conn.commit()


def test_a_contender_waits_for_the_holder_and_then_loses(database: Database) -> None:
    holder = database.new_session()
    result: list[bool] = []
    try:
        assert repo.try_acquire_lease(holder, "scheduler", "web-1", T0, TTL)  # not committed yet

        def contend() -> None:
            with database.session() as s:
                result.append(repo.try_acquire_lease(s, "scheduler", "web-2", T0, TTL))

        thread = threading.Thread(target=contend)
        thread.start()
        if database.engine.dialect.name == "postgresql":
            _wait_until_blocked(database)
        holder.commit()
        thread.join(timeout=30)
    finally:
        holder.close()
    assert result == [False]
    with database.session() as s:
        lease = repo.lease_holder(s, "scheduler")
        assert lease is not None and lease.owner == "web-1"


def test_exactly_one_of_many_contenders_wins(database: Database) -> None:
    contenders = 6
    barrier = threading.Barrier(contenders)
    wins: list[str] = []
    errors: list[BaseException] = []

    def contend(owner: str) -> None:
        try:
            barrier.wait(timeout=10)
            with database.session() as s:
                if repo.try_acquire_lease(s, "scheduler", owner, T0, TTL):
                    wins.append(owner)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=contend, args=(f"proc-{i}",)) for i in range(contenders)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30)
    assert errors == []
    assert len(wins) == 1
    with database.session() as s:
        lease = repo.lease_holder(s, "scheduler")
        assert lease is not None and lease.owner == wins[0]
