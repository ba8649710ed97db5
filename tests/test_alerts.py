"""Tests of gatebot.alerts: the pure alert policies (balance, health, jobs) and their shared life cycle.

Time is explicit (datetimes / ManualClock); nothing sleeps, nothing touches Slack or the store. The
:class:`Book` below plays the store's role (``gatebot.alerts.stored``) in memory: a dict of named states
fed through the pure policies, with the one inhibition rule (:func:`gatebot.alerts.inhibited`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import pytest

from gatebot.alerts import (
    HEALTH_KEY,
    MAX_SNOOZE,
    SNOOZE_CHOICES,
    AlertPolicy,
    BalanceReading,
    BalanceState,
    HealthObservation,
    HealthState,
    JobState,
    Notification,
    OpenAlert,
    PolicyState,
    StateError,
    ack,
    balance_key,
    check_balance,
    check_health,
    circuit_open,
    dump_state,
    inhibited,
    job_health,
    job_key,
    load_state,
    open_alerts,
    probe_due,
    runway,
    snooze,
    tick,
    with_message,
)
from gatebot.alerts.codec import dump_alert, load_alert
from gatebot.clock import ManualClock
from gatebot.config import Settings, Thresholds
from gatebot.money import Money, MoneyError

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
POLICY = AlertPolicy()
SEC = timedelta(seconds=1)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def usd(amount: str) -> Money:
    return Money.parse(amount, "USD")


TH = Thresholds(usd("500"), usd("100"))


def reading(amount: str, *, spent: str | None = None, cause: str | None = None) -> BalanceReading:
    return BalanceReading(balance=usd(amount), spent_last_24h=usd(spent) if spent else None, cause=cause)


def fail(source: Literal["probe", "call"] = "probe") -> HealthObservation:
    return HealthObservation(ok=False, source=source, detail="HTTP 503")


OK = HealthObservation(ok=True)
OK_CALL = HealthObservation(ok=True, source="call")


class Book:
    """The named alert states of one gatebot, in memory (the tests' stand-in for the store)."""

    def __init__(self) -> None:
        self.states: dict[str, PolicyState] = {}

    def __contains__(self, key: object) -> bool:
        return key in self.states

    def __iter__(self) -> Iterator[str]:
        return iter(self.states)

    def values(self) -> list[PolicyState]:
        return list(self.states.values())

    def get(self, key: str) -> PolicyState | None:
        return self.states.get(key)

    def put(self, state: PolicyState) -> None:
        self.states[state.key] = state

    def balance(self, currency: str) -> BalanceState:
        state = self.states.get(balance_key(currency))
        return state if isinstance(state, BalanceState) else BalanceState.new(currency)

    def health(self) -> HealthState:
        state = self.states.get(HEALTH_KEY)
        return state if isinstance(state, HealthState) else HealthState.new()

    def circuit_open(self) -> bool:
        return circuit_open(self.health())

    def check_balance(self, reading: BalanceReading, now: datetime, policy: AlertPolicy, *,
                      thresholds: Thresholds) -> list[Notification]:
        state, notes = check_balance(self.balance(reading.balance.currency), reading, now, policy,
                                     thresholds=thresholds, api_down=self.circuit_open())
        self.put(state)
        return notes

    def check_health(self, observation: HealthObservation, now: datetime, policy: AlertPolicy) -> list[Notification]:
        state, notes = check_health(self.health(), observation, now, policy)
        self.put(state)
        return notes

    def job_health(self, name: str, last_success: datetime | None, interval: timedelta, now: datetime,
                   policy: AlertPolicy, *, needs_api: bool = False) -> list[Notification]:
        found = self.states.get(job_key(name))
        state = replace(found if isinstance(found, JobState) else JobState.new(name), needs_api=needs_api)
        state, notes = job_health(state, last_success, interval, now, policy,
                                  api_down=needs_api and self.circuit_open())
        self.put(state)
        return notes

    def tick(self, now: datetime, policy: AlertPolicy) -> list[Notification]:
        notes: list[Notification] = []
        for key in sorted(self.states, key=lambda k: (k != HEALTH_KEY, k)):  # health decides the inhibition
            state = self.states[key]
            state, more = tick(state, now, policy, inhibited=inhibited(state, api_down=self.circuit_open()))
            self.put(state)
            notes.extend(more)
        return notes

    def ack(self, key: str, *, by: str, now: datetime) -> list[Notification]:
        state, notes = ack(self.states[key], by=by, now=now)
        self.put(state)
        return notes

    def snooze(self, key: str, *, by: str, duration: timedelta, now: datetime) -> list[Notification]:
        state, notes = snooze(self.states[key], by=by, duration=duration, now=now)
        self.put(state)
        return notes

    def with_message(self, key: str, channel: str, ts: str) -> None:
        self.put(with_message(self.states[key], channel, ts))

    def open_alerts(self, *, now: datetime) -> list[OpenAlert]:
        return open_alerts(self.states, now=now)

    def dump(self) -> dict[str, dict[str, Any]]:
        return {key: dump_state(state) for key, state in self.states.items()}

    @classmethod
    def load(cls, data: dict[str, Any]) -> Book:
        book = cls()
        for raw in data.values():
            book.put(load_state(raw))
        return book


class Poster:
    """Plays the Slack poster: records notifications, stores the ts of each successful post."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self.log: list[tuple[datetime, Notification]] = []
        self.fail = False
        self._n = 0

    def deliver(self, notes: list[Notification], now: datetime) -> list[Notification]:
        for note in notes:
            assert note.alert_key in self.book
            if note.kind == "post":
                assert note.ts is None and note.fields
                if not self.fail:
                    self._n += 1
                    self.book.with_message(note.alert_key, "C_ALERTS", f"1764000000.{self._n:06d}")
            else:  # update / thread always name the message they act on
                state = self.book.get(note.alert_key)
                assert state is not None
                assert (note.channel, note.ts) == (state.alert.channel, state.alert.ts) != (None, None)
            self.log.append((now, note))
        return notes

    def kinds(self) -> list[tuple[str, str]]:
        return [(n.kind, n.reason) for _, n in self.log]

    def of(self, kind: str) -> list[tuple[datetime, Notification]]:
        return [(t, n) for t, n in self.log if n.kind == kind]


class BalanceSim:
    """A book + poster + clock fed with USD readings every 5 minutes."""

    def __init__(self, policy: AlertPolicy = POLICY, thresholds: Thresholds = TH) -> None:
        self.book = Book()
        self.poster = Poster(self.book)
        self.clock = ManualClock(T0)
        self.policy = policy
        self.thresholds = thresholds

    @property
    def state(self) -> BalanceState:
        return self.book.balance("USD")

    def read(self, amount: str, *, cause: str | None = None, spent: str | None = None,
             step: timedelta = timedelta(minutes=5)) -> list[Notification]:
        now = self.clock.now()
        notes = self.book.check_balance(reading(amount, cause=cause, spent=spent), now, self.policy,
                                        thresholds=self.thresholds)
        self.clock.advance(step)
        return self.poster.deliver(notes, now)

    def tick(self, now: datetime) -> list[Notification]:
        self.clock.set(now)
        return self.poster.deliver(self.book.tick(now, self.policy), now)

    def open_at_warning(self) -> None:
        for amount in ("450.00", "440.00", "430.00"):
            self.read(amount)
        assert self.state.alert.open and self.state.alert.ts is not None


# -- low balance ------------------------------------------------------------------------------------


def test_balance_fires_only_after_n_consecutive_low_readings() -> None:
    sim = BalanceSim()
    assert sim.read("450.00") == []
    assert sim.read("440.00") == []
    notes = sim.read("430.00")
    assert [(n.kind, n.reason, n.severity) for n in notes] == [("post", "fired", "warning")]
    post = notes[0]
    assert post.alert_key == "balance:USD"
    assert post.fields["Balance"] == "USD 430.00"
    assert post.fields["State"] == "firing"
    assert post.fields["Clears above"] == "USD 550.00"
    assert "at or below the warning level USD 500.00" in post.text
    assert sim.state.alert.fired_count == 1
    assert sim.state.alert.opened_at == T0 + timedelta(minutes=10)


def test_balance_low_streak_is_broken_by_a_reading_above_the_level() -> None:
    sim = BalanceSim()
    sim.read("450.00")
    sim.read("440.00")
    sim.read("500.01")  # above the warning level: the streak starts over
    assert sim.read("430.00") == []
    assert sim.read("420.00") == []
    assert [n.kind for n in sim.read("410.00")] == ["post"]


def test_balance_at_exactly_the_level_counts_as_low() -> None:
    sim = BalanceSim()
    for _ in range(3):
        sim.read("500.00")
    assert sim.poster.kinds() == [("post", "fired")]


def test_balance_fires_directly_at_critical() -> None:
    sim = BalanceSim()
    sim.read("450.00")
    sim.read("90.00")
    notes = sim.read("80.00")
    assert [(n.kind, n.severity) for n in notes] == [("post", "critical")]
    assert notes[0].title == "USD balance critically low"
    assert sim.state.alert.level == "critical"


def test_open_balance_alert_is_edited_in_place_only_when_the_balance_changes() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    assert sim.read("430.00") == []  # same value: nothing to edit
    notes = sim.read("425.50")
    assert [(n.kind, n.reason) for n in notes] == [("update", "value")]
    assert notes[0].fields["Balance"] == "USD 425.50"
    assert notes[0].ts == sim.state.alert.ts


def test_hysteresis_reading_above_level_but_within_margin_does_not_clear() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    # warning 500 + 10% of 500 = 550: anything up to and including 550.00 keeps the alert.
    for amount in ("520.00", "549.99", "550.00", "550.00", "549.00", "550.00"):
        notes = sim.read(amount)
        assert all(n.reason == "value" for n in notes)
    assert "back above the warning level USD 500.00, but the alert stays until it is above USD 550.00" \
        in sim.poster.log[-1][1].text
    assert sim.state.alert.open
    sim.read("600.00")  # one good reading ...
    sim.read("530.00")  # ... broken by one within the margin
    assert [n.reason for n in sim.read("600.00")] == ["value"]  # the count starts over
    assert sim.state.alert.open
    notes = sim.read("600.00")
    assert [(n.kind, n.reason, n.severity) for n in notes] == [("update", "resolved", "ok"),
                                                               ("thread", "resolved", "ok")]
    assert not sim.state.alert.open


def test_all_clear_says_why_with_the_cause_hint() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    sim.book.ack("balance:USD", by="U0OPS", now=sim.clock.now())
    sim.read("930.00", cause="deposit #12 of USD 500.00 posted")
    notes = sim.read("925.00")  # the second good reading carries no hint: the first one's is kept
    update, thread = notes
    assert update.kind == "update" and update.fields["State"] == "resolved"
    assert update.title == "USD balance back to normal"
    assert "deposit #12 of USD 500.00 posted" in update.text
    assert "deposit #12 of USD 500.00 posted" in thread.text
    assert "Open for" in thread.text
    state = sim.state
    assert not state.alert.open and state.alert.acked_by is None
    assert state.alert.resolved_at == sim.clock.now() - timedelta(minutes=5)
    assert state.clear_cause is None


def test_all_clear_without_a_hint_explains_the_threshold() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    (first,) = sim.read("800.00")
    assert "above USD 550.00: the alert clears if it stays there" in first.text
    update, _thread = sim.read("810.00")
    assert "USD 810.00, above USD 550.00 for 2 checks" in update.text


def test_level_change_warning_to_critical_and_back() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    # Escalation needs the same evidence as firing: fire_after readings at or below critical.
    assert [n.reason for n in sim.read("95.00")] == ["value"]
    assert [n.reason for n in sim.read("90.00")] == ["value"]
    notes = sim.read("85.00")
    assert [(n.kind, n.reason, n.severity) for n in notes] == [("update", "escalated", "critical"),
                                                               ("thread", "escalated", "critical")]
    assert "Escalated to critical" in notes[1].text
    escalated = sim.state
    assert escalated.alert.level == "critical"
    # Back down needs clear_after readings above critical + margin (100 + 50).
    sim.read("140.00")
    sim.read("150.00")
    still = sim.state
    assert still.alert.level == "critical"
    sim.read("160.00")
    notes = sim.read("170.00", cause="deposit #7 of USD 80.00 posted")
    assert [(n.kind, n.reason, n.severity) for n in notes] == [("update", "lowered", "warning"),
                                                               ("thread", "lowered", "warning")]
    assert "Lowered to warning" in notes[1].text and "deposit #7" in notes[1].text
    lowered = sim.state
    assert lowered.alert.level == "warning" and lowered.alert.open
    assert [n.kind for _, n in sim.poster.log].count("post") == 1


def test_big_deposit_clears_a_critical_alert_directly() -> None:
    sim = BalanceSim()
    for amount in ("50.00", "40.00", "30.00"):
        sim.read(amount)
    sim.read("2000.00")
    notes = sim.read("2000.00")
    assert [n.reason for n in notes] == ["resolved", "resolved"]
    assert not sim.state.alert.open


def test_reminders_exactly_one_per_repeat_interval() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    fired = sim.state.alert.opened_at
    assert fired is not None
    now = sim.clock.now()
    while now <= fired + 12 * HOUR:
        sim.tick(now)
        now += MIN
    reminders = [(t, n) for t, n in sim.poster.of("thread") if n.reason == "reminder"]
    assert [t for t, _ in reminders] == [fired + 4 * HOUR, fired + 8 * HOUR, fired + 12 * HOUR]
    assert all(n.severity == "warning" and "Reminder: still firing" in n.text for _, n in reminders)


def test_reminders_after_a_long_gap_do_not_burst() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    notes = sim.tick(sim.clock.now() + 20 * HOUR)
    assert [n.reason for n in notes] == ["reminder"]
    assert sim.tick(sim.clock.now() + MIN) == []


def test_ack_stops_reminders() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    notes = sim.poster.deliver(sim.book.ack("balance:USD", by="U0OPS", now=sim.clock.now()), sim.clock.now())
    assert [(n.kind, n.reason) for n in notes] == [("update", "acked"), ("thread", "acked")]
    assert notes[0].fields["State"] == "acked"
    assert notes[0].fields["Acked by"].startswith("<@U0OPS> at ")
    assert notes[1].severity == "info"
    state = sim.state
    assert state.alert.acked_by == "U0OPS" and state.alert.acked_at == sim.clock.now()
    assert sim.book.ack("balance:USD", by="U0OPS", now=sim.clock.now()) == []  # same person again
    start = sim.clock.now()
    for minutes in range(0, 13 * 60, 5):
        sim.tick(start + minutes * MIN)
    assert [n.reason for _, n in sim.poster.log].count("reminder") == 0


def test_acked_alert_still_announces_level_changes() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    sim.book.ack("balance:USD", by="U0OPS", now=sim.clock.now())
    for amount in ("90.00", "80.00", "70.00"):
        sim.read(amount)
    assert ("thread", "escalated") in sim.poster.kinds()
    assert sim.state.alert.acked_by == "U0OPS"  # the ack holds (escalation_rearms is off)
    sim.tick(sim.clock.now() + 5 * HOUR)
    assert ("thread", "reminder") not in sim.poster.kinds()


def test_escalation_rearms_option_drops_ack_and_resumes_reminders() -> None:
    sim = BalanceSim(policy=replace(POLICY, escalation_rearms=True))
    sim.open_at_warning()
    sim.book.ack("balance:USD", by="U0OPS", now=sim.clock.now())
    for amount in ("90.00", "80.00", "70.00"):
        sim.read(amount)
    assert sim.state.alert.acked_by is None
    escalated_at = sim.state.alert.last_notified
    assert escalated_at is not None
    assert [n.reason for n in sim.tick(escalated_at + 4 * HOUR)] == ["reminder"]


def test_ack_or_snooze_of_a_closed_alert_changes_nothing() -> None:
    state = BalanceState.new("usd")
    assert state.key == "balance:USD"
    assert ack(state, by="U1", now=T0) == (state, [])
    assert snooze(state, by="U1", duration=HOUR, now=T0) == (state, [])


def test_snooze_silences_reminders_and_announces_its_end() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    fired = sim.state.alert.opened_at
    assert fired is not None
    notes = sim.poster.deliver(sim.book.snooze("balance:USD", by="U0OPS", duration=4 * HOUR,
                                               now=fired + HOUR), fired + HOUR)
    assert [(n.kind, n.reason) for n in notes] == [("update", "snoozed"), ("thread", "snoozed")]
    assert notes[0].fields["State"] == "snoozed"
    assert notes[0].fields["Snoozed until"] == "2026-11-24 14:10 UTC"
    for minutes in range(60, 10 * 60 + 1, 5):
        sim.tick(fired + minutes * MIN)
    threads = [(t - fired, n.reason) for t, n in sim.poster.of("thread")]
    assert threads == [(HOUR, "snoozed"), (5 * HOUR, "snooze_ended"), (9 * HOUR, "reminder")]
    ended = next(n for _, n in sim.poster.log if n.reason == "snooze_ended" and n.kind == "update")
    assert ended.fields["State"] == "firing" and "Snoozed until" not in ended.fields
    assert sim.state.alert.snoozed_until is None


def test_snooze_durations() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    state = sim.state
    for duration in SNOOZE_CHOICES:
        snoozed, _ = snooze(state, by="U1", duration=duration, now=T0)
        assert snoozed.alert.snoozed_until == T0 + duration
    for bad in (timedelta(0), -HOUR, MAX_SNOOZE + MIN):
        with pytest.raises(ValueError, match="snooze duration"):
            snooze(state, by="U1", duration=bad, now=T0)
    with pytest.raises(ValueError, match="non-empty"):
        snooze(state, by=" ", duration=HOUR, now=T0)


def test_balance_alerts_are_inhibited_while_the_api_is_down() -> None:
    state = BalanceState.new("USD")
    for i in range(5):  # no fire
        state, notes = check_balance(state, reading("10.00"), T0 + i * MIN, POLICY, thresholds=TH,
                                     api_down=True)
        assert notes == []
    assert state == BalanceState.new("USD")
    for i in range(3):
        state, notes = check_balance(state, reading("400.00"), T0 + i * MIN, POLICY, thresholds=TH)
    state = with_message(state, "C1", "1.1")
    assert state.alert.open
    for i in range(5):  # no clear
        state, notes = check_balance(state, reading("900.00"), T0 + (10 + i) * MIN, POLICY, thresholds=TH,
                                     api_down=True)
        assert notes == []
    assert state.alert.open and state.down_streak == 0
    state, notes = tick(state, T0 + 10 * HOUR, POLICY, inhibited=True)  # no reminder
    assert notes == []
    state, notes = tick(state, T0 + 10 * HOUR, POLICY)
    assert [n.reason for n in notes] == ["reminder"]


def test_book_wires_inhibition_from_the_health_state() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    now = sim.clock.now()
    for i in range(3):
        sim.poster.deliver(sim.book.check_health(fail(), now + i * MIN, POLICY), now)
    assert sim.book.circuit_open()
    assert sim.read("900.00") == [] and sim.read("900.00") == []
    assert sim.state.alert.open
    notes = sim.tick(now + 5 * HOUR)
    assert [(n.alert_key, n.reason) for n in notes] == [(HEALTH_KEY, "reminder")]
    sim.book.check_health(HealthObservation(ok=True), now + 5 * HOUR, POLICY)
    assert not sim.book.circuit_open()
    sim.clock.set(now + 5 * HOUR)
    notes = sim.read("900.00")  # back in business: the held reminder goes out with the value update
    assert [(n.kind, n.reason) for n in notes] == [("update", "value"), ("thread", "reminder")]


def test_policy_asks_for_a_new_post_while_the_message_ts_is_missing() -> None:
    sim = BalanceSim()
    sim.poster.fail = True
    for amount in ("450.00", "440.00", "430.00"):
        sim.read(amount)
    assert sim.state.alert.ts is None
    notes = sim.read("420.00")  # needs an update, has no message: post again
    assert [(n.kind, n.reason) for n in notes] == [("post", "value")]
    assert sim.read("420.00") == []
    later = sim.clock.now() + POLICY.repost_after
    assert [(n.kind, n.reason) for n in sim.tick(later)] == [("post", "repost")]
    sim.poster.fail = False
    assert [(n.kind, n.reason) for n in sim.tick(later + POLICY.repost_after)] == [("post", "repost")]
    stored = sim.state
    assert stored.alert.ts is not None
    assert sim.tick(later + 2 * POLICY.repost_after) == []
    assert [n.kind for n in sim.read("410.00")] == ["update"]


def test_restart_mid_alert_produces_no_new_post() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    sim.read("420.00")
    sim.read("415.00")
    saved = json.loads(json.dumps(sim.book.dump()))
    sim.book = Book.load(saved)
    sim.poster.book = sim.book
    fired = sim.state.alert.opened_at
    assert fired is not None and sim.state.alert.ts is not None
    while sim.clock.now() < fired + 9 * HOUR:
        sim.read("410.00")
    assert [n.kind for _, n in sim.poster.log].count("post") == 1
    reminders = [t - fired for t, n in sim.poster.of("thread") if n.reason == "reminder"]
    assert reminders == [4 * HOUR, 8 * HOUR]


def test_a_day_of_steady_spending_posts_once() -> None:
    sim = BalanceSim()
    spend = usd("3.40")  # every 5 minutes: USD 979.20 a day
    balance = usd("1000.00")
    fired_at = T0 + 150 * 5 * MIN  # 1000 - 148 x 3.40 = 496.80 is the first low reading
    escalated_at = T0 + 267 * 5 * MIN  # 1000 - 265 x 3.40 = 99.00 is the first critical one
    spent_last_24h = spend.times(288)  # steady: the same every day, yesterday included
    for _ in range(288):
        sim.read(balance.as_api(), spent=spent_last_24h.as_api())
        balance = balance - spend
    posts = sim.poster.of("post")
    assert [(t, n.severity) for t, n in posts] == [(fired_at, "warning")]
    # USD 490.00 left at USD 979.20 a day: about 12 hours
    assert posts[0][1].fields["Runway"].startswith("runs out around 2026-11-25 09:30 UTC (in 12 h)")
    threads = [(t, n.reason) for t, n in sim.poster.of("thread")]
    assert threads == [(fired_at + 4 * HOUR, "reminder"), (fired_at + 8 * HOUR, "reminder"),
                       (escalated_at, "escalated")]
    updates = sim.poster.of("update")
    assert len(updates) == 287 - 150  # every later reading changed the balance shown
    assert updates[-1][1].fields["Balance"] == "USD 24.20" and updates[-1][1].severity == "critical"
    assert sim.state.alert.open and sim.state.alert.level == "critical"


def test_balance_policy_refuses_other_currencies() -> None:
    state = BalanceState.new("USD")
    with pytest.raises(MoneyError, match="EUR"):
        check_balance(state, BalanceReading(balance=Money.parse("10", "EUR")), T0, POLICY, thresholds=TH)
    eur = Thresholds(Money.parse("500", "EUR"), Money.parse("100", "EUR"))
    with pytest.raises(MoneyError, match="warning level"):
        check_balance(state, reading("10.00"), T0, POLICY, thresholds=eur)


def test_runway() -> None:
    now = T0
    assert runway(usd("500.00"), usd("1000.00"), now) == now + timedelta(hours=12)
    assert runway(usd("100.00"), usd("300.00"), now) == now + timedelta(hours=8)
    assert runway(usd("500.00"), usd("0.00"), now) is None
    assert runway(usd("500.00"), usd("-20.00"), now) is None  # refunds outweigh spending
    assert runway(usd("0.00"), usd("10.00"), now) == now
    assert runway(usd("-5.00"), usd("10.00"), now) == now
    assert runway(usd("1000000000.00"), usd("0.01"), now) is None  # beyond any sensible horizon
    with pytest.raises(MoneyError):
        runway(usd("1.00"), Money.parse("1", "EUR"), now)
    with pytest.raises(ValueError, match="timezone-aware"):
        runway(usd("1.00"), usd("1.00"), datetime(2026, 1, 1))


def test_runway_is_shown_on_the_message() -> None:
    sim = BalanceSim()
    for _ in range(3):
        sim.read("400.00", spent="0.00")
    assert sim.poster.log[0][1].fields["Runway"] == "no spending in the last 24 h"
    notes = sim.read("390.00", spent="780.00")
    assert notes[0].fields["Runway"].startswith("runs out around 2026-11-24 21:15 UTC (in 12 h)")
    notes = sim.read("-1.00", spent="780.00")
    assert notes[0].fields["Runway"] == "exhausted"


# -- API health --------------------------------------------------------------------------------------


def test_health_fires_after_n_consecutive_failures_and_opens_the_circuit() -> None:
    state = HealthState.new()
    state, notes = check_health(state, fail(), T0, POLICY)
    assert notes == [] and not circuit_open(state)
    state, notes = check_health(state, fail("call"), T0 + 10 * timedelta(seconds=1), POLICY)
    assert notes == [] and not circuit_open(state)
    state, notes = check_health(state, fail(), T0 + MIN, POLICY)
    assert notes == [] and not circuit_open(state)  # two signals counted apart: 2 probes, 1 call
    state, notes = check_health(state, fail(), T0 + 2 * MIN, POLICY)
    assert [(n.kind, n.reason, n.severity) for n in notes] == [("post", "fired", "critical")]
    assert notes[0].title == "Gate API down"
    assert notes[0].fields["Circuit"] == "open: new orders are refused"
    assert notes[0].fields["Last error"] == "HTTP 503"
    assert circuit_open(state) and state.down_since == T0


def test_failed_probes_fire_whatever_real_calls_do_and_only_a_probe_resolves() -> None:
    state = HealthState.new()
    for i in range(3):
        state, notes = check_health(state, fail(), T0 + i * MIN, POLICY)
        for k in range(1, 30):  # a working business call every 2 s does not reset the probe count
            state, more = check_health(state, OK_CALL, T0 + i * MIN + k * 2 * SEC, POLICY)
            notes += more
    assert [(n.kind, n.reason) for n in notes] == [("post", "fired")] and circuit_open(state)
    state, notes = check_health(state, OK_CALL, T0 + 3 * MIN, POLICY)
    assert notes == [] and circuit_open(state)  # a working call is not the probe answering
    state, notes = check_health(state, OK, T0 + 4 * MIN, POLICY)
    assert {n.reason for n in notes} == {"resolved"} and not circuit_open(state)


def test_failed_real_calls_are_a_second_signal_that_also_fires() -> None:
    state, _ = check_health(HealthState.new(), OK, T0, POLICY)
    for i in range(3):
        state, notes = check_health(state, fail("call"), T0 + (i + 1) * SEC, POLICY)
    assert [(n.kind, n.reason) for n in notes] == [("post", "fired")]
    assert circuit_open(state) and state.down_since == T0 + SEC
    state, notes = check_health(state, OK_CALL, T0 + 10 * SEC, POLICY)
    assert notes == [] and circuit_open(state)
    state, notes = check_health(state, OK, T0 + MIN, POLICY)
    assert {n.reason for n in notes} == {"resolved"} and not circuit_open(state)
    assert state.call_failures == 0


def test_a_success_resets_the_failure_count() -> None:
    state = HealthState.new()
    for i in range(10):
        state, _ = check_health(state, fail(), T0 + i * 2 * MIN, POLICY)
        state, notes = check_health(state, OK, T0 + (i * 2 + 1) * MIN, POLICY)
        state, more = check_health(state, fail(), T0 + (i * 2 + 1) * MIN, POLICY)
        assert notes == more == []
    assert not circuit_open(state) and not state.alert.open


def test_probe_backoff_is_exponential_capped_and_reset_by_a_success() -> None:
    state = HealthState.new()
    now = T0
    delays: list[timedelta] = []
    for _ in range(3):
        state, _ = check_health(state, fail(), now, POLICY)
        assert state.next_probe_at is None or circuit_open(state)
        now += MIN
    assert state.next_probe_at == now - MIN + POLICY.probe_interval
    for _ in range(7):
        assert state.next_probe_at is not None
        assert not probe_due(state, state.next_probe_at - timedelta(seconds=1))
        now = state.next_probe_at
        assert probe_due(state, now)
        # failed real calls in between do not move the probe schedule
        before = state.next_probe_at
        state, _ = check_health(state, fail("call"), now - timedelta(seconds=5), POLICY)
        assert state.next_probe_at == before
        state, _ = check_health(state, fail(), now, POLICY)
        assert state.next_probe_at is not None
        delays.append(state.next_probe_at - now)
    assert delays == [timedelta(seconds=s) for s in (120, 240, 480, 900, 900, 900, 900)]
    state, _ = check_health(state, OK, now + MIN, POLICY)
    assert state.next_probe_at is None and probe_due(state, now + MIN) and state.backoff_s == 0


def test_recovery_closes_the_circuit_and_reports_the_outage_duration() -> None:
    book = Book()
    poster = Poster(book)
    for i in range(3):
        poster.deliver(book.check_health(fail(), T0 + i * MIN, POLICY), T0 + i * MIN)
    assert book.circuit_open()
    back = T0 + 12 * MIN
    notes = poster.deliver(book.check_health(OK, back, POLICY), back)
    assert [(n.kind, n.reason, n.severity) for n in notes] == [("update", "resolved", "ok"),
                                                               ("thread", "resolved", "ok")]
    assert "after 12 min down" in notes[0].text
    assert notes[0].title == "Gate API recovered" and notes[0].fields["State"] == "resolved"
    assert notes[0].fields["Was down"] == "2026-11-24 09:00 UTC to 2026-11-24 09:12 UTC"
    assert not book.circuit_open() and not book.health().alert.open
    # a later outage is a new problem: a new message
    for i in range(3):
        poster.deliver(book.check_health(fail(), back + HOUR + i * MIN, POLICY), back + HOUR)
    assert [n.kind for _, n in poster.log].count("post") == 2
    assert book.health().alert.fired_count == 2


def test_health_recover_after_needs_consecutive_successes() -> None:
    policy = replace(POLICY, health_recover_after=2)
    state = HealthState.new()
    for i in range(3):
        state, _ = check_health(state, fail(), T0 + i * MIN, policy)
    state, notes = check_health(state, OK, T0 + 5 * MIN, policy)
    assert notes == [] and circuit_open(state)
    state, notes = check_health(state, OK, T0 + 6 * MIN, policy)
    assert [n.reason for n in notes] == ["resolved"] and not circuit_open(state)


@pytest.mark.parametrize("call_every", [timedelta(seconds=10), timedelta(seconds=30)])
def test_a_day_of_flapping_is_a_handful_of_notifications(call_every: timedelta) -> None:
    """The API flips every 2 minutes for a day; probes every minute (with back-off), real calls more often."""
    book = Book()
    poster = Poster(book)
    clock = ManualClock(T0)
    circuit_seen: set[bool] = set()
    while clock.now() < T0 + timedelta(days=1):
        now = clock.now()
        api_up = ((now - T0) // (2 * MIN)) % 2 == 1
        poster.deliver(book.check_health(HealthObservation(ok=api_up, source="call"), now, POLICY), now)
        if (now - T0) % MIN == timedelta(0) and probe_due(book.health(), now):
            poster.deliver(book.check_health(HealthObservation(ok=api_up), now, POLICY), now)
        poster.deliver(book.tick(now, POLICY), now)
        circuit_seen.add(book.circuit_open())
        clock.advance(call_every)
    assert circuit_seen == {True, False}  # the circuit did follow the flaps
    health = book.health()
    assert health.flapping and health.alert.open
    assert len(poster.log) <= 6
    assert poster.kinds() == [("post", "fired"), ("update", "resolved"), ("thread", "resolved"),
                              ("update", "flapping"), ("thread", "flapping")]
    flapping_update = poster.log[3][1]
    assert flapping_update.ts == health.alert.ts == "1764000000.000001"  # the first outage's message
    assert flapping_update.fields["State"] == "flapping" and flapping_update.severity == "warning"


def flap(state: HealthState, start: datetime, policy: AlertPolicy = POLICY) -> tuple[HealthState, datetime]:
    """down, up, down: three changes within the window -> flapping. Returns the state and the time."""
    now = start
    for _ in range(2):
        for _ in range(3):
            state, _ = check_health(state, fail(), now, policy)
            state = with_message(state, "C1", "1.1") if state.alert.open and state.alert.ts is None else state
            now += MIN
        state, _ = check_health(state, OK, now, policy)
        now += MIN
    for _ in range(3):
        state, _ = check_health(state, fail(), now, policy)
        now += MIN
    assert state.flapping
    return state, now


def test_flapping_settles_to_resolved_after_a_quiet_period() -> None:
    state, now = flap(HealthState.new(), T0)
    state, notes = check_health(state, OK, now, POLICY)
    assert notes == [] and not circuit_open(state)  # a flap: silent, but the circuit follows
    state, notes = tick(state, now + POLICY.flap_quiet - MIN, POLICY)
    assert notes == []
    state, notes = tick(state, now + POLICY.flap_quiet, POLICY)
    assert [(n.kind, n.reason, n.severity) for n in notes] == [("update", "settled", "ok"),
                                                               ("thread", "settled", "ok")]
    assert "stable again" in notes[0].text
    assert not state.flapping and not state.alert.open and state.changes == ()


def test_flapping_settles_to_down_and_reminders_resume() -> None:
    state, now = flap(HealthState.new(), T0)
    assert circuit_open(state)
    state, notes = tick(state, now + 2 * HOUR, POLICY)  # no reminders while flapping ... (settles first)
    assert [(n.kind, n.reason, n.severity) for n in notes] == [("update", "settled", "critical"),
                                                               ("thread", "settled", "critical")]
    assert state.alert.open and state.alert.level == "critical" and not state.flapping
    assert notes[0].title == "Gate API down"
    state, notes = tick(state, now + 6 * HOUR, POLICY)
    assert [n.reason for n in notes] == ["reminder"]


def test_no_reminders_while_flapping() -> None:
    policy = replace(POLICY, flap_quiet=timedelta(days=2))
    state, now = flap(HealthState.new(), T0, policy)
    state, notes = tick(state, now + 10 * HOUR, policy)
    assert notes == [] and state.flapping


def test_health_state_survives_a_restart_mid_outage() -> None:
    book = Book()
    poster = Poster(book)
    for i in range(5):
        poster.deliver(book.check_health(fail(), T0 + i * MIN, POLICY), T0 + i * MIN)
    book = Book.load(json.loads(json.dumps(book.dump())))
    poster.book = book
    assert book.circuit_open() and book.health().next_probe_at is not None
    poster.deliver(book.check_health(fail(), T0 + 10 * MIN, POLICY), T0 + 10 * MIN)
    poster.deliver(book.check_health(OK, T0 + 20 * MIN, POLICY), T0 + 20 * MIN)
    assert poster.kinds() == [("post", "fired"), ("update", "resolved"), ("thread", "resolved")]


# -- job self-watch -------------------------------------------------------------------------------------


def test_job_alert_fires_after_three_missed_intervals_and_clears_on_success() -> None:
    interval = 5 * MIN
    state = JobState.new("track")
    last = T0
    state, notes = job_health(state, last, interval, T0 + 15 * MIN, POLICY)
    assert notes == []  # exactly three intervals: not yet
    state, notes = job_health(state, last, interval, T0 + 15 * MIN + timedelta(seconds=1), POLICY)
    assert [(n.kind, n.reason, n.severity) for n in notes] == [("post", "fired", "warning")]
    assert notes[0].alert_key == "job:track" and notes[0].title == "Job track not succeeding"
    assert "has not succeeded since 2026-11-24 09:00 UTC (15 min ago)" in notes[0].text
    state = with_message(state, "C1", "9.9")
    state, notes = job_health(state, last, interval, T0 + 20 * MIN, POLICY)
    assert notes == []
    success = T0 + 21 * MIN
    state, notes = job_health(state, success, interval, T0 + 22 * MIN, POLICY)
    assert [(n.kind, n.reason) for n in notes] == [("update", "resolved"), ("thread", "resolved")]
    assert "succeeded at 2026-11-24 09:21 UTC after 21 min without a success" in notes[0].text
    assert not state.alert.open


def test_job_that_never_succeeded_is_measured_from_watch_start() -> None:
    state = JobState.new("deposits")
    state, notes = job_health(state, None, HOUR, T0, POLICY)
    assert notes == [] and state.watch_since == T0
    state, notes = job_health(state, None, HOUR, T0 + 3 * HOUR + MIN, POLICY)
    assert [n.reason for n in notes] == ["fired"]
    assert "since watching started at 2026-11-24 09:00 UTC" in notes[0].text
    assert notes[0].fields["Last success"] == "never"


def test_job_alerts_needing_the_api_are_inhibited_while_it_is_down() -> None:
    book = Book()
    for i in range(3):
        book.check_health(fail(), T0 + i * MIN, POLICY)
    assert book.circuit_open()
    assert book.job_health("track", T0, 5 * MIN, T0 + HOUR, POLICY, needs_api=True) == []
    assert [n.reason for n in book.job_health("digest", T0, 5 * MIN, T0 + HOUR, POLICY)] == ["fired"]
    book.check_health(OK, T0 + HOUR, POLICY)
    assert [n.reason for n in book.job_health("track", T0, 5 * MIN, T0 + HOUR, POLICY, needs_api=True)] \
        == ["fired"]


# -- the book, open alerts, persistence ---------------------------------------------------------------


def test_open_alerts_for_app_home() -> None:
    sim = BalanceSim()
    sim.open_at_warning()  # warning, opened T0+10min
    book = sim.book
    for i in range(3):
        book.check_health(fail(), T0 + HOUR + i * MIN, POLICY)  # critical, opened later
    book.job_health("track", T0, MIN, T0 + 2 * HOUR, POLICY)  # warning, opened last
    book.ack(job_key("track"), by="U0OPS", now=T0 + 2 * HOUR)
    book.snooze(balance_key("usd"), by="U0OPS", duration=HOUR, now=T0 + 2 * HOUR)
    listed = book.open_alerts(now=T0 + 2 * HOUR)
    assert [(a.key, a.severity, a.state) for a in listed] == [
        ("health", "critical", "firing"),
        ("balance:USD", "warning", "snoozed"),
        ("job:track", "warning", "acked"),
    ]
    usd_alert = listed[1]
    assert usd_alert.title == "USD balance low" and usd_alert.value == "USD 430.00"
    assert usd_alert.since == T0 + 10 * MIN and usd_alert.snoozed_until == T0 + 3 * HOUR
    assert usd_alert.ts is not None and listed[2].acked_by == "U0OPS"
    later = open_alerts(book.values(), now=T0 + 4 * HOUR)
    assert [(a.key, a.state, a.snoozed_until) for a in later][1] == ("balance:USD", "firing", None)
    assert [a.key for a in open_alerts([])] == []


def test_every_state_round_trips_through_plain_json() -> None:
    sim = BalanceSim()
    sim.open_at_warning()
    sim.read("420.00", spent="300.00", cause="deposit #3 pending")
    sim.book.ack("balance:USD", by="U0OPS", now=sim.clock.now())
    sim.book.snooze("balance:USD", by="U0OPS", duration=HOUR, now=sim.clock.now())
    flapping, _ = flap(HealthState.new(), T0)
    sim.book.put(flapping)
    sim.book.job_health("track", T0, MIN, T0 + HOUR, POLICY, needs_api=True)
    data = sim.book.dump()

    def plain(value: Any) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, str | int | bool)

    assert plain(data)
    assert data["balance:USD"]["balance"] == {"amount": "420.00", "currency": "USD"}
    assert data["balance:USD"]["alert"]["opened_at"] == "2026-11-24T09:10:00+00:00"
    restored = Book.load(json.loads(json.dumps(data)))
    assert sorted(restored) == sorted(sim.book)
    for key in sim.book:
        assert restored.get(key) == sim.book.get(key)
        assert load_state(data[key]) == sim.book.get(key)


def test_bad_stored_states_are_refused() -> None:
    good = dump_state(BalanceState.new("USD"))
    with pytest.raises(StateError, match="unknown alert state type"):
        load_state({"type": "nope"})
    with pytest.raises(StateError, match="unknown alert state type"):
        load_state(["not", "an", "object"])
    with pytest.raises(StateError, match="version"):
        load_state({**good, "v": 99})
    with pytest.raises(StateError, match="timezone-aware"):
        load_state({**good, "read_at": "2026-11-24T09:00:00"})
    with pytest.raises(StateError, match="amount"):
        load_state({**good, "balance": {"amount": 12.5, "currency": "USD"}})
    with pytest.raises(StateError, match="level"):
        load_state({**good, "alert": {**good["alert"], "level": "panic"}})
    with pytest.raises(StateError, match="stored type"):
        load_state(good, HealthState)
    # absent optional keys fall back to defaults (forward/backward compatible)
    minimal = load_state({"type": "job", "alert": {"key": "job:x"}, "job": "x"})
    assert minimal == JobState.new("x")


def test_alert_state_defaults_and_with_message() -> None:
    state = with_message(HealthState.new(), "C9", "123.456")
    assert (state.alert.channel, state.alert.ts) == ("C9", "123.456")
    assert load_alert(dump_alert(state.alert)) == state.alert
    with pytest.raises(ValueError, match="channel"):
        with_message(state, "", "1.1")


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 11, 24, 9, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        check_health(HealthState.new(), OK, naive, POLICY)
    with pytest.raises(ValueError, match="timezone-aware"):
        check_balance(BalanceState.new("USD"), reading("1.00"), naive, POLICY, thresholds=TH)


def test_policy_validation_and_settings() -> None:
    with pytest.raises(ValueError, match="fire_after"):
        AlertPolicy(fire_after=0)
    with pytest.raises(ValueError, match="clear_margin"):
        AlertPolicy(clear_margin=Decimal("1.5"))
    with pytest.raises(ValueError, match="repeat"):
        AlertPolicy(repeat=timedelta(0))
    with pytest.raises(ValueError, match="flap_changes"):
        AlertPolicy(flap_changes=1)
    with pytest.raises(ValueError, match="probe_backoff_cap"):
        AlertPolicy(probe_interval=HOUR, probe_backoff_cap=MIN)
    settings = Settings(_env_file=None, gatebot_alert_fire_after=5, gatebot_alert_repeat=3600,
                        gatebot_alert_clear_margin=Decimal("0.2"), gatebot_health_interval=30)
    policy = AlertPolicy.from_settings(settings)
    assert (policy.fire_after, policy.repeat, policy.clear_margin, policy.probe_interval) == (
        5, HOUR, Decimal("0.2"), timedelta(seconds=30))
    assert policy.probe_backoff_cap == timedelta(minutes=15)
