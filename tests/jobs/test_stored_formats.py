"""Rows written by the code before issue 12 still load, and are written back in the same format.

Each row below is exactly what the hand-written serialisers of ``gatebot.alerts`` / ``gatebot.monitor``
stored (captured from that code, then replaced by pydantic models / ``TypeAdapter``): every alert state
kind (balance; health with the probe and the real-call failure counters and flapping; job), job run
records, balance readings, the digest mark (baseline and after a digest) and a stored digest period.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from gatebot import monitor
from gatebot.alerts import BalanceState, HealthState, JobState, dump_state
from gatebot.finance.readings import Reading, kv_record
from gatebot.health.job_runs import JobRecord
from gatebot.money import Money
from gatebot.store import repo
from gatebot.store.db import Database
from gatebot.store.models import metadata

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

ROWS: dict[str, str] = {
    'alert:balance:USD': (
        '{"type":"balance","v":1,"alert":{"key":"balance:USD","open":true,"level":"warning","opened_at":"2026'
        '-11-24T09:02:00+00:00","acked_by":"U0OPS","acked_at":"2026-11-24T09:05:00+00:00","snoozed_until":"20'
        '26-11-24T10:06:00+00:00","snoozed_by":"U0OPS","last_notified":"2026-11-24T09:06:00+00:00","channel":'
        '"COPS","ts":"1764000000.000001","last_value":"USD 560.00","fired_count":1,"resolved_at":null,"resolv'
        'ed_reason":null},"currency":"USD","warning":{"amount":"500.00","currency":"USD"},"critical":{"amount'
        '":"100.00","currency":"USD"},"margin":{"amount":"50.00","currency":"USD"},"balance":{"amount":"560.0'
        '0","currency":"USD"},"spent_last_24h":{"amount":"300.00","currency":"USD"},"read_at":"2026-11-24T09:'
        '04:00+00:00","up_streak":0,"down_streak":1,"clear_cause":"deposit #3 of USD 500.00 posted"}'
    ),
    'alert:health': (
        '{"type":"health","v":1,"alert":{"key":"health","open":true,"level":"warning","opened_at":"2026-11-24'
        'T09:02:00+00:00","acked_by":null,"acked_at":null,"snoozed_until":null,"snoozed_by":null,"last_notifi'
        'ed":"2026-11-24T09:13:00+00:00","channel":"COPS","ts":"1764000000.000002","last_value":"flapping","f'
        'ired_count":2,"resolved_at":null,"resolved_reason":null},"down":true,"failures":3,"successes":0,"fai'
        'ling_since":"2026-11-24T09:11:00+00:00","call_failures":1,"call_failing_since":"2026-11-24T09:15:00+'
        '00:00","down_since":"2026-11-24T09:11:00+00:00","next_probe_at":"2026-11-24T09:14:00+00:00","backoff'
        '_s":60,"changes":["2026-11-24T09:02:00+00:00","2026-11-24T09:10:00+00:00","2026-11-24T09:13:00+00:00'
        '"],"last_change_at":"2026-11-24T09:13:00+00:00","flapping":true,"flapping_since":"2026-11-24T09:02:0'
        '0+00:00","last_error":"x call failed"}'
    ),
    'alert:job:digest': (
        '{"type":"job","v":1,"alert":{"key":"job:digest","open":false,"level":null,"opened_at":null,"acked_by'
        '":null,"acked_at":null,"snoozed_until":null,"snoozed_by":null,"last_notified":null,"channel":null,"t'
        's":null,"last_value":null,"fired_count":0,"resolved_at":null,"resolved_reason":null},"job":"digest",'
        '"interval_s":3600,"last_success":null,"watch_since":"2026-11-24T09:00:00+00:00","needs_api":false}'
    ),
    'alert:job:track': (
        '{"type":"job","v":1,"alert":{"key":"job:track","open":true,"level":"warning","opened_at":"2026-11-24'
        'T11:00:00+00:00","acked_by":null,"acked_at":null,"snoozed_until":null,"snoozed_by":null,"last_notifi'
        'ed":"2026-11-24T11:00:00+00:00","channel":null,"ts":null,"last_value":"2026-11-24 09:00 UTC","fired_'
        'count":1,"resolved_at":null,"resolved_reason":null},"job":"track","interval_s":300,"last_success":"2'
        '026-11-24T09:00:00+00:00","watch_since":"2026-11-24T11:00:00+00:00","needs_api":false}'
    ),
    'digest:last': (
        '{"at":{"$datetime":"2026-11-25T09:00:00+00:00"},"balances":{"USD":{"$money":["400.00","USD"]}},"base'
        'line":false}'
    ),
    'digest:period:2026-11-25T09:00:00+00:00': (
        '{"start":{"$datetime":"2026-11-24T09:00:00+00:00"},"end":{"$datetime":"2026-11-25T09:00:00+00:00"},"'
        'closing_at":{"$datetime":"2026-11-25T09:00:00+00:00"},"from_baseline":true,"lines":[{"currency":"EUR'
        '","opening":{"$money":["12.50","EUR"]},"deposits":{"$money":["0.00","EUR"]},"deposit_count":0,"spend'
        '":{"$money":["0.00","EUR"]},"order_count":0,"closing":null},{"currency":"USD","opening":{"$money":["'
        '450.00","USD"]},"deposits":{"$money":["0.00","USD"]},"deposit_count":0,"spend":{"$money":["0.00","US'
        'D"]},"order_count":0,"closing":{"$money":["400.00","USD"]}}]}'
    ),
    'jobrun:digest': (
        '{"name":"digest","interval_ms":3600000,"since":{"$datetime":"2026-11-24T09:00:00+00:00"},"last_run":'
        'null,"last_success":null,"last_error":null,"last_error_at":null,"last_skip":null,"last_skip_at":null'
        ',"runs":0,"failures":0,"consecutive_failures":0,"last_duration_ms":null}'
    ),
    'jobrun:track': (
        '{"name":"track","interval_ms":30000,"since":{"$datetime":"2026-11-24T09:00:00+00:00"},"last_run":{"$'
        'datetime":"2026-11-24T09:02:00+00:00"},"last_success":{"$datetime":"2026-11-24T09:01:00.250000+00:00'
        '"},"last_error":"GateUnavailable: HTTP 503","last_error_at":{"$datetime":"2026-11-24T09:02:01+00:00"'
        '},"last_skip":"Gate API down (circuit open)","last_skip_at":{"$datetime":"2026-11-24T09:03:00+00:00"'
        '},"runs":2,"failures":1,"consecutive_failures":1,"last_duration_ms":1000}'
    ),
    'reading:EUR': (
        '{"balance":{"$money":["12.50","EUR"]},"at":{"$datetime":"2026-11-24T09:00:00+00:00"}}'
    ),
    'reading:USD': (
        '{"balance":{"$money":["450.00","USD"]},"at":{"$datetime":"2026-11-24T09:00:00+00:00"}}'
    ),
}

BASELINE = (
    '{"at":{"$datetime":"2026-11-24T09:00:00+00:00"},"balances":{"USD":{"$money":["450.00","USD"]},"EUR":'
    '{"$money":["12.50","EUR"]}},"baseline":true}'
)


def usd(amount: str) -> Money:
    return Money.parse(amount, "USD")


def store(db: Database, rows: dict[str, str]) -> None:
    table = metadata.tables["kv"]
    with db.session() as s:
        for key, value in rows.items():
            s.connection().execute(table.insert().values(key=key, value=value, updated_at=T0, version=1))


def stored(db: Database, key: str) -> Any:
    with db.session() as s:
        return repo.kv_get(s, key)


def test_every_alert_state_kind_loads_and_dumps_to_the_same_json(database: Database) -> None:
    store(database, ROWS)
    balance = monitor.alert_state(database, "balance:USD")
    assert isinstance(balance, BalanceState)
    assert balance.alert.acked_by == "U0OPS"
    assert balance.alert.snoozed_until == datetime(2026, 11, 24, 10, 6, tzinfo=UTC)
    assert (balance.balance, balance.margin, balance.down_streak) == (usd("560.00"), usd("50.00"), 1)
    assert balance.clear_cause == "deposit #3 of USD 500.00 posted"
    health = monitor.alert_state(database, "health")
    assert isinstance(health, HealthState)
    assert (health.down, health.failures, health.call_failures, health.backoff_s) == (True, 3, 1, 60)
    assert health.call_failing_since == T0 + 15 * MIN and health.failing_since == T0 + 11 * MIN
    assert health.changes == (T0 + 2 * MIN, T0 + 10 * MIN, T0 + 13 * MIN) and health.flapping
    assert health.last_error == "x call failed" and health.alert.fired_count == 2
    track = monitor.alert_state(database, "job:track")
    assert isinstance(track, JobState) and track.alert.open and track.interval_s == 300
    assert track.last_success == T0 and not track.needs_api
    digest_job = monitor.alert_state(database, "job:digest")
    assert isinstance(digest_job, JobState) and digest_job.watch_since == T0 and digest_job.last_success is None
    assert sorted(a.key for a in monitor.open_alerts(database, T0 + 20 * MIN)) == ["balance:USD", "health", "job:track"]
    assert monitor.circuit_open(database)
    for key in ("balance:USD", "health", "job:track", "job:digest"):
        state = monitor.alert_state(database, key)
        assert state is not None
        assert dump_state(state) == json.loads(ROWS["alert:" + key])
        assert json.dumps(dump_state(state), separators=(",", ":")) == ROWS["alert:" + key]  # byte for byte


def test_job_records_load_and_dump_to_the_same_value(database: Database) -> None:
    store(database, ROWS)
    records = monitor.job_records(database)
    track = records["track"]
    assert track.interval == timedelta(seconds=30) and track.since == T0
    assert (track.runs, track.failures, track.consecutive_failures, track.last_duration_ms) == (2, 1, 1, 1000)
    assert track.last_success == T0 + MIN + timedelta(milliseconds=250)
    assert track.last_error == "GateUnavailable: HTTP 503"
    assert track.last_error_at == T0 + 2 * MIN + timedelta(seconds=1)
    assert track.last_skip == "Gate API down (circuit open)" and track.last_skip_at == T0 + 3 * MIN
    assert records["digest"].last_run is None and records["digest"].interval == timedelta(hours=1)
    for name in ("track", "digest"):
        assert records[name].dump() == stored(database, "jobrun:" + name)
    status = {s.name: s for s in monitor.job_status(database, T0 + 5 * MIN)}
    assert not status["track"].ok and status["digest"].ok
    again = monitor.record_job_run(database, "track", interval=timedelta(seconds=30), started=T0 + 4 * MIN,
                                   finished=T0 + 4 * MIN)
    assert again.runs == 3 and again.failures == 1 and again.consecutive_failures == 0
    assert JobRecord.load("x", {"runs": True, "since": "not a time"}) == JobRecord(name="x", interval=timedelta(0))


def test_readings_and_the_digest_load_and_dump_to_the_same_value(database: Database) -> None:
    store(database, ROWS)
    readings = monitor.last_readings(database)
    assert readings == {"USD": Reading(usd("450.00"), T0), "EUR": Reading(Money.parse("12.50", "EUR"), T0)}
    assert kv_record(readings["USD"]) == stored(database, "reading:USD")
    assert monitor.last_digest(database) == (T0 + timedelta(days=1), False)
    (period,) = monitor.digest_history(database, T0, T0 + timedelta(days=2))
    assert (period.start, period.end, period.closing_at, period.from_baseline) == (
        T0, T0 + timedelta(days=1), T0 + timedelta(days=1), True)
    eur, dollars = period.lines
    assert eur.currency == "EUR" and eur.opening == Money.parse("12.50", "EUR") and eur.closing is None
    assert dollars.closing == usd("400.00") and dollars.mismatch == usd("-50.00")
    assert kv_record(period) == stored(database, "digest:period:2026-11-25T09:00:00+00:00")
    follow = monitor.build_digest(database, T0 + timedelta(days=2), closing=None, closing_at=None)
    assert follow.start == T0 + timedelta(days=1) and follow.lines[0].opening == usd("400.00")


def test_the_digest_baseline_loads(database: Database) -> None:
    store(database, {"digest:last": BASELINE})
    assert monitor.last_digest(database) == (T0, True)
    assert not monitor.ensure_digest_baseline(database, [usd("1.00")], T0 + MIN)  # kept
    digest = monitor.build_digest(database, T0 + timedelta(days=1), closing={"USD": usd("450.00")}, closing_at=None)
    assert digest.from_baseline and [line.opening for line in digest.lines] == [Money.parse("12.50", "EUR"),
                                                                                 usd("450.00")]
