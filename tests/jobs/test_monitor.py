"""gatebot.monitor against the store, on SQLite and PostgreSQL: alert rows, job records, readings, spend,
deposits, the digest period, and read-modify-write safety between two processes (two engines)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from gatebot import alerts, monitor
from gatebot.alerts import AlertPolicy, BalanceReading, HealthObservation
from gatebot.config import Thresholds
from gatebot.gate.models import Deposit
from gatebot.money import Money
from gatebot.store import repo
from gatebot.store.crypto import cipher_from_key
from gatebot.store.db import Database, make_engine
from gatebot.store.models import Order, OrderStatus
from gatebot.store.monitoring import kv_keys

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
POLICY = AlertPolicy()
TH = Thresholds(Money.parse("500", "USD"), Money.parse("100", "USD"))


def usd(amount: str) -> Money:
    return Money.parse(amount, "USD")


def low(db: Database, amount: str, at: datetime, *, times: int = 3) -> list[alerts.Notification]:
    notes: list[alerts.Notification] = []
    for i in range(times):
        notes += monitor.check_balance(db, BalanceReading(balance=usd(amount)), at + i * MIN, POLICY, thresholds=TH)
    return notes


@pytest.fixture
def second(database: Database) -> Iterator[Database]:
    """Another process's view of the same store: its own engine and connections."""
    other = Database(make_engine(database.engine.url))
    try:
        yield other
    finally:
        other.dispose()


# -- alert states --------------------------------------------------------------------------------------------


def test_one_row_per_alert_and_the_book_round_trips(database: Database) -> None:
    (post,) = low(database, "450.00", T0)
    assert post.kind == "post" and post.alert_key == "balance:USD"
    monitor.observe_health(database, [HealthObservation(ok=True)], T0, POLICY)
    with database.session() as s:
        assert kv_keys(s, monitor.ALERT_PREFIX) == ["alert:balance:USD", "alert:health"]

    states = {state.key: state for state in monitor.all_states(database)}
    assert set(states) == {"balance:USD", "health"} and states["balance:USD"].alert.open
    monitor.record_message(database, "balance:USD", "COPS", "1.000100", T0)
    again = monitor.alert_state(database, "balance:USD")
    assert again == alerts.with_message(states["balance:USD"], "COPS", "1.000100")
    assert [a.key for a in monitor.open_alerts(database, T0)] == ["balance:USD"]


def test_a_restart_never_posts_an_open_alert_again(database: Database, second: Database) -> None:
    low(database, "450.00", T0)
    monitor.record_message(database, "balance:USD", "COPS", "1.000100", T0)
    # the "new process" continues: edits and thread replies name the stored message, no new post
    notes = monitor.check_balance(second, BalanceReading(balance=usd("420.00")), T0 + 5 * MIN, POLICY, thresholds=TH)
    notes += monitor.tick(second, T0 + 5 * timedelta(hours=1), POLICY)
    assert [n.kind for n in notes] == ["update", "thread"]
    assert {(n.channel, n.ts) for n in notes} == {("COPS", "1.000100")}


def test_ack_and_snooze_are_audited_and_a_stale_button_changes_nothing(database: Database) -> None:
    low(database, "450.00", T0)
    monitor.record_message(database, "balance:USD", "COPS", "1.000100", T0)
    acked = monitor.ack_alert(database, "balance:USD", by="UBOB", now=T0 + MIN)
    assert [n.kind for n in acked] == ["update", "thread"] and acked[0].fields["State"] == "acked"
    snoozed = monitor.snooze_alert(database, "balance:USD", by="UCAROL", duration=timedelta(hours=4), now=T0 + MIN)
    assert snoozed[0].fields["State"] == "snoozed"
    assert monitor.ack_alert(database, "balance:USD", by="UBOB", now=T0 + 2 * MIN) == []  # already acked by UBOB
    assert monitor.ack_alert(database, "balance:GBP", by="UBOB", now=T0 + 2 * MIN) == []  # no such alert
    with database.session() as s:
        trail = [(e.actor, e.action, e.target, e.detail) for e in reversed(repo.recent_audit(s))]
    assert trail == [
        ("UBOB", "alert.ack", "balance:USD", "acknowledged"),
        ("UCAROL", "alert.snooze", "balance:USD", "snoozed for 4 h"),
        ("UBOB", "alert.ack", "balance:USD", "not open"),
        ("UBOB", "alert.ack", "balance:GBP", "no such alert"),
    ]


def test_the_circuit_and_inhibition_come_from_the_stored_health_state(database: Database) -> None:
    assert not monitor.circuit_open(database)  # nothing stored: the API counts as up
    down = [HealthObservation(ok=False, detail="HTTP 503")] * 3
    (fired,) = monitor.observe_health(database, down, T0, POLICY)
    assert fired.alert_key == "health" and fired.kind == "post"
    assert monitor.circuit_open(database) and monitor.health_state(database).down
    assert low(database, "50.00", T0) == []  # held back: no alert storm from one root cause
    held = monitor.alert_state(database, "balance:USD")
    assert held is None or not held.alert.open
    assert monitor.observe_health(database, [], T0, POLICY) == []


def test_an_unreadable_alert_row_is_skipped_not_fatal(database: Database, caplog: pytest.LogCaptureFixture) -> None:
    low(database, "450.00", T0)
    with database.session() as s:
        repo.kv_set(s, "alert:health", {"type": "nonsense"}, T0)
    assert [state.key for state in monitor.all_states(database)] == ["balance:USD"]
    assert "unreadable" in caplog.text
    monitor.tick(database, T0 + 10 * timedelta(hours=1), POLICY)  # does not raise
    notes = monitor.observe_health(database, [HealthObservation(ok=True)], T0, POLICY)  # starts afresh
    assert notes == [] and monitor.health_state(database).successes == 1


def test_a_state_stored_under_another_key_is_not_taken_for_it(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    low(database, "450.00", T0)
    with database.session() as s:
        repo.kv_set(s, "alert:balance:EUR", repo.kv_get(s, "alert:balance:USD"), T0)
    assert monitor.alert_state(database, "balance:EUR") is None
    assert "stored under balance:EUR is for balance:USD" in caplog.text
    assert [state.key for state in monitor.all_states(database)] == ["balance:USD"]


def run_both(*workers: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def guard(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
        return run

    threads = [threading.Thread(target=guard(w)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors


def test_two_processes_never_lose_each_others_changes(database: Database, second: Database) -> None:
    low(database, "450.00", T0)

    def checks() -> None:
        for i in range(40):
            amount = f"{400 + i % 7}.00"
            monitor.check_balance(database, BalanceReading(balance=usd(amount)), T0 + i * MIN, POLICY, thresholds=TH)

    def people() -> None:
        monitor.ack_alert(second, "balance:USD", by="UBOB", now=T0 + 5 * MIN)
        for i in range(40):
            monitor.record_job_run(second, "track", interval=MIN, started=T0 + i * MIN, finished=T0 + i * MIN)

    def more_runs() -> None:
        for i in range(40):
            monitor.record_job_run(database, "track", interval=MIN, started=T0 + i * MIN, finished=T0 + i * MIN,
                                   error="GateTimeout: timed out" if i % 2 else None)

    run_both(checks, people, more_runs)
    state = monitor.alert_state(database, "balance:USD")
    assert state is not None
    assert state.alert.open and state.alert.acked_by == "UBOB"  # the ack survived 40 concurrent checks
    record = monitor.job_records(database)["track"]
    assert (record.runs, record.failures) == (80, 20)  # no lost update


# -- job records and status ---------------------------------------------------------------------------------------


def test_job_status_for_healthz(database: Database) -> None:
    monitor.register_job(database, "track", timedelta(seconds=30), T0)
    monitor.register_job(database, "digest", timedelta(hours=1), T0)
    monitor.record_job_run(database, "track", interval=timedelta(seconds=30), started=T0, finished=T0)
    now = T0 + timedelta(seconds=89)
    track, digest = sorted(monitor.job_status(database, now), key=lambda j: j.name, reverse=True)
    assert (track.name, track.ok, track.last_success) == ("track", True, T0)
    assert (digest.name, digest.ok, digest.last_success) == ("digest", True, None)  # registered, not due yet
    later = T0 + timedelta(seconds=91)
    assert [j.ok for j in monitor.job_status(database, later) if j.name == "track"] == [False]
    monitor.record_job_run(database, "track", interval=timedelta(seconds=30), started=later, finished=later,
                           error="GateUnavailable: down")
    (track,) = [j for j in monitor.job_status(database, later) if j.name == "track"]
    assert track.last_error == "GateUnavailable: down" and track.consecutive_failures == 1
    assert track.to_json()["last_success"] == T0.isoformat()
    monitor.record_job_run(database, "track", interval=timedelta(seconds=30), started=later, finished=later,
                           skipped="Gate API down (circuit open)")
    assert monitor.job_records(database)["track"].runs == 2  # a skip is not a run


def test_scheduler_status_shows_the_lease_holder(database: Database) -> None:
    assert monitor.scheduler_status(database, T0)["holder"] is None
    with database.session() as s:
        repo.try_acquire_lease(s, monitor.SCHEDULER_LEASE, "web-1:42:abcd", T0, 30)
    status = monitor.scheduler_status(database, T0 + MIN)
    assert status["holder"] == "web-1:42:abcd" and status["active"] is False  # expired: a takeover is due
    assert monitor.scheduler_status(database, T0)["active"] is True


def test_call_recorder_keeps_recent_real_calls_only() -> None:
    calls = monitor.CallRecorder(maxlen=3)
    for label, ok in [("health", False), ("balance", True), ("orders", False), ("order", False), ("products", True)]:
        calls(label, ok)
    assert len(calls) == 3
    assert calls.drain() == [("orders", False), ("order", False), ("products", True)]
    assert calls.drain() == []


# -- readings, spend, deposits, the digest ---------------------------------------------------------------------


def add_order(s: Any, n: int, *, charged: str | None, at: datetime, status: OrderStatus = OrderStatus.PENDING,
              failed_at: datetime | None = None, currency: str = "USD") -> None:
    order = Order(external_ref=f"REF-{n}", idempotency_key=f"gbk_{n}", product_id=101, product_name="Steam",
                  product_type="redeem_card", currency=currency, status=status, requester="UALICE",
                  created_at=at, updated_at=at, submitted_at=at, failed_at=failed_at,
                  charged_amount=Decimal(charged) if charged else None)
    order.set_secret_fields(cipher_from_key(None), body={"product_id": 101})
    repo.add_order(s, order)


def test_spend_counts_charges_and_gives_failed_orders_back(database: Database) -> None:
    with database.session() as s:
        add_order(s, 1, charged="20.00", at=T0 - timedelta(hours=30))  # before the window
        add_order(s, 2, charged="20.00", at=T0 - timedelta(hours=2))
        add_order(s, 3, charged="12.50", at=T0 - timedelta(hours=1), status=OrderStatus.COMPLETED)
        add_order(s, 4, charged="50.00", at=T0 - timedelta(hours=1), status=OrderStatus.FAILED,
                  failed_at=T0 - timedelta(minutes=50))  # charged and released in the window: nets to 0
        add_order(s, 5, charged="30.00", at=T0 - timedelta(hours=40), status=OrderStatus.FAILED,
                  failed_at=T0 - timedelta(hours=3))  # charged before, released in the window
        add_order(s, 6, charged=None, at=T0 - timedelta(hours=1), status=OrderStatus.REJECTED)
        add_order(s, 7, charged="10.00", at=T0 - timedelta(hours=1), currency="EUR")
    assert monitor.spent_last_24h(database, "USD", T0) == usd("2.50")  # 20 + 12.50 + 50 - 50 - 30
    assert monitor.spent_between(database, "usd", T0 - timedelta(hours=2), T0) == (usd("32.50"), 3)
    assert monitor.spent_last_24h(database, "EUR", T0) == Money.parse("10", "EUR")


def deposit(did: int, status: str, amount: str = "500.00", **extra: Any) -> Deposit:
    return Deposit.model_validate({"id": did, "currency_code": "USD", "amount": amount, "status": status,
                                   "method": "bank_wire", **extra})


def test_posted_deposits_and_the_cause_hint(database: Database) -> None:
    with database.session() as s:
        repo.record_deposits(s, [deposit(1, "posted", posted_at="2026-11-24T07:00:00Z"), deposit(2, "pending")], T0)
    assert monitor.deposit_cause(database, "USD", T0) is None
    assert monitor.deposit_cause(database, "USD", None) is None
    later = T0 + 5 * MIN
    with database.session() as s:
        repo.record_deposits(s, [deposit(2, "posted", posted_at="2026-11-24T08:00:00Z")], later)
        repo.mark_announced(s, [2], later)
    assert monitor.deposit_cause(database, "USD", T0) == "deposit #2 of USD 500.00 posted"  # announced after T0
    assert [d.id for d in monitor.posted_deposits(database, T0 - timedelta(hours=3), T0)] == [1, 2]
    with database.session() as s:
        repo.record_deposits(s, [deposit(3, "posted", "100.00", posted_at="2026-11-24T09:03:00Z")], later)
    assert monitor.deposit_cause(database, "USD", T0) == "deposits #2 (USD 500.00), #3 (USD 100.00) posted"
    assert monitor.deposit_cause(database, "EUR", T0) is None


def test_readings_and_the_digest_period(database: Database) -> None:
    assert monitor.record_readings(database, [usd("900.00")], T0) == {}
    previous = monitor.record_readings(database, [usd("880.00"), Money.parse("10", "EUR")], T0 + MIN)
    assert previous == {"USD": monitor.Reading(usd("900.00"), T0)}
    assert set(monitor.last_readings(database)) == {"USD", "EUR"}

    assert not monitor.digest_due(database, T0, 8)  # nothing to open a period with yet
    assert monitor.ensure_digest_baseline(database, [usd("900.00")], T0)
    assert not monitor.ensure_digest_baseline(database, [usd("1.00")], T0 + MIN)  # only the first one counts
    assert monitor.last_digest(database) == (T0, True)
    assert not monitor.digest_due(database, T0 + timedelta(hours=22), 8)  # 07:00 next day: not yet
    next_day = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert monitor.digest_due(database, next_day, 8)

    digest = monitor.build_digest(database, next_day, closing={"USD": usd("880.00")}, closing_at=next_day)
    (line,) = digest.lines
    assert (line.opening, line.closing, line.expected) == (usd("900.00"), usd("880.00"), usd("900.00"))
    assert line.mismatch == usd("-20.00") and digest.mismatches == [line] and digest.from_baseline
    monitor.commit_digest(database, digest)
    assert monitor.last_digest(database) == (next_day, False)
    assert not monitor.digest_due(database, next_day + timedelta(hours=5), 8)
    follow = monitor.build_digest(database, next_day + MIN, closing=None, closing_at=None)
    assert follow.lines[0].opening == usd("880.00") and follow.lines[0].closing is None
    assert follow.lines[0].mismatch is None  # nothing to compare with
