"""Monitoring state in the store: alert states, job run records, balance readings, spend, the digest.

What lives here
    The persistence side of :mod:`gatebot.alerts` and the read functions the Slack layer and
    ``/healthz`` use. The pure policies decide; this module loads their state, applies them inside one
    database transaction and stores the result:

    * **Alert states** — one key-value row per alert key (``alert:balance:USD``, ``alert:health``,
      ``alert:job:track``). Every change is a read-modify-write through :func:`repo.kv_update
      <gatebot.store.repo.kv_update>` (row lock on PostgreSQL, compare-and-set everywhere), so the clock
      process and a web process acking a button at the same moment never lose each other's change.
      :func:`check_balance`, :func:`observe_health`, :func:`check_job`, :func:`tick`,
      :func:`ack_alert`, :func:`snooze_alert` and :func:`record_message` are those atomic steps; each
      returns the :class:`~gatebot.alerts.Notification` list for the poster. :func:`load_book` /
      :func:`save_book` read and write the whole :class:`~gatebot.alerts.AlertBook` (tools and tests;
      ``save_book`` is last-writer-wins per key).
    * **Job run records** (``jobrun:<name>``): last run, last success, last error, counters —
      :func:`job_status` is what ``/healthz`` shows.
    * **Balance readings** (``reading:<CUR>``) and the **daily digest** period (``digest:last``).
    * **Spend and deposits** over a window, from our own orders' charged amounts and the deposits seen
      (:func:`spent_between`, :func:`spent_last_24h`, :func:`posted_deposits`, :func:`deposit_cause`).
    * :class:`CallRecorder` — the Gate client's ``on_attempt`` hook: outcomes of real calls for the
      health job — and :class:`Poster`, the interface the jobs talk to (the Slack poster implements
      it; :class:`LogPoster` only logs).

Every function takes the :class:`~gatebot.store.db.Database` and runs its own short transaction; "now"
is always an argument (the caller's injected clock). Nothing here does network I/O.

Must not import Slack (slack_bolt/slack_sdk), the scheduler (apscheduler), ``gatebot.jobs`` or httpx.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from gatebot import alerts
from gatebot.alerts import (
    HEALTH_KEY,
    AlertBook,
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
)
from gatebot.config import Thresholds
from gatebot.money import Money
from gatebot.store import repo
from gatebot.store.db import Database
from gatebot.store.models import KeyValue, Order, OrderStatus, SeenDeposit

__all__ = [
    "ALERT_PREFIX",
    "DIGEST_KEY",
    "JOB_PREFIX",
    "MISSED_INTERVALS",
    "READING_PREFIX",
    "SCHEDULER_LEASE",
    "CallRecorder",
    "DepositNotice",
    "Digest",
    "DigestLine",
    "JobRecord",
    "JobStatus",
    "LogPoster",
    "Poster",
    "Reading",
    "ack_alert",
    "alert_state",
    "build_digest",
    "check_balance",
    "check_job",
    "circuit_open",
    "commit_digest",
    "deposit_cause",
    "digest_due",
    "digest_history",
    "ensure_digest_baseline",
    "health_state",
    "job_records",
    "job_status",
    "last_digest",
    "last_readings",
    "load_book",
    "observe_health",
    "open_alerts",
    "posted_deposits",
    "record_job_run",
    "record_message",
    "record_readings",
    "register_job",
    "save_book",
    "scheduler_status",
    "snooze_alert",
    "spent_between",
    "spent_last_24h",
    "tick",
]

log = logging.getLogger(__name__)

#: Key-value prefixes: one row per alert, per job, per currency reading.
ALERT_PREFIX = "alert:"
JOB_PREFIX = "jobrun:"
READING_PREFIX = "reading:"
#: The last digest (or the baseline before the first one): its time and closing balances.
DIGEST_KEY = "digest:last"
#: Every digest sent, one row per period (``digest:period:<end, ISO UTC>``): the ledger export reads them.
DIGEST_HISTORY_PREFIX = "digest:period:"
#: The lease only one scheduler instance holds.
SCHEDULER_LEASE = "scheduler"
#: A job is late (``/healthz`` not ok, self-watch alert) after this many intervals without success.
MISSED_INTERVALS = 3

_MAX_ERROR = 300
_ORDER_LOOKBACK = timedelta(days=30)  # indexed pre-filter on created_at for the spend queries


# -- the interface the jobs post through ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepositNotice:
    """A deposit that posted, as announced to finance (no customer data in a deposit)."""

    deposit_id: int
    amount: Money
    method: str | None
    external_ref: str | None
    posted_at: datetime | None
    #: Orders waiting for funds in this currency that were re-submitted because of it.
    resumed: int = 0


@dataclass(frozen=True, slots=True)
class DigestLine:
    """One currency of the daily digest. ``opening``/``closing`` are ``None`` when not known."""

    currency: str
    opening: Money | None
    deposits: Money
    deposit_count: int
    spend: Money
    order_count: int
    closing: Money | None

    @property
    def expected(self) -> Money | None:
        """``opening + deposits - spend``: what the closing balance should be."""
        if self.opening is None:
            return None
        return self.opening + self.deposits - self.spend

    @property
    def mismatch(self) -> Money | None:
        """``closing - expected`` when it is not zero (money moved that gatebot cannot explain)."""
        expected = self.expected
        if expected is None or self.closing is None:
            return None
        diff = self.closing - expected
        return diff if diff.amount != 0 else None


@dataclass(frozen=True, slots=True)
class Digest:
    """The daily finance digest for ``[start, end)``. ``closing_at`` is when the closing balances were
    read (``end`` when read live; an earlier reading when Gate could not be reached)."""

    start: datetime
    end: datetime
    lines: tuple[DigestLine, ...]
    closing_at: datetime | None
    #: True when ``start``/``opening`` come from the first balance reading, not a previous digest.
    from_baseline: bool = False

    @property
    def mismatches(self) -> list[DigestLine]:
        return [line for line in self.lines if line.mismatch is not None]


class Poster(Protocol):
    """Where the jobs send what people should see. The Slack implementation is
    :class:`gatebot.slack.alert_poster.AlertPoster`; it must never raise for a Slack failure."""

    async def deliver(self, notes: Sequence[Notification]) -> None:
        """Post / update / thread-reply the alert notifications (and store new message ts)."""
        ...

    async def announce_deposit(self, notice: DepositNotice) -> bool:
        """Announce a posted deposit; ``True`` when done with it (posted, or nowhere to post)."""
        ...

    async def send_digest(self, digest: Digest) -> bool:
        """Send the daily digest; ``True`` when done with it (posted, or nowhere to post)."""
        ...


class LogPoster:
    """A :class:`Poster` that only logs (``gatebot clock`` without a Slack token, tests)."""

    def __init__(self) -> None:
        self.notes: list[Notification] = []
        self.deposits: list[DepositNotice] = []
        self.digests: list[Digest] = []

    async def deliver(self, notes: Sequence[Notification]) -> None:
        for note in notes:
            self.notes.append(note)
            log.info("alert %s %s (%s): %s", note.alert_key, note.kind, note.reason, note.title)

    async def announce_deposit(self, notice: DepositNotice) -> bool:
        self.deposits.append(notice)
        log.info("deposit #%s of %s posted", notice.deposit_id, notice.amount)
        return True

    async def send_digest(self, digest: Digest) -> bool:
        self.digests.append(digest)
        log.info("daily digest %s..%s: %d currencies, %d mismatch(es)", digest.start, digest.end,
                 len(digest.lines), len(digest.mismatches))
        return True


# -- real Gate calls, for the health job ---------------------------------------------------------------------


class CallRecorder:
    """The Gate client's ``on_attempt`` hook: remembers whether real calls worked.

    The health job drains it and feeds each outcome to the health policy as a ``source="call"``
    observation: the second signal, so a Gate that fails business calls counts as down even while
    ``/health`` answers. Working calls never cancel failed probes (the policy counts the two apart).
    The probe itself (label ``health``) is observed directly and ignored here. Only this process's
    calls are seen (the clock process's, where the health job runs). Bounded: only the most recent
    ``maxlen`` outcomes are kept.
    """

    def __init__(self, *, maxlen: int = 100, ignore: Iterable[str] = ("health",)) -> None:
        self._outcomes: deque[tuple[str, bool]] = deque(maxlen=maxlen)
        self._ignore = frozenset(ignore)

    def __call__(self, label: str, success: bool) -> None:
        if label not in self._ignore:
            self._outcomes.append((label, success))

    def __len__(self) -> int:
        return len(self._outcomes)

    def drain(self) -> list[tuple[str, bool]]:
        """The outcomes since the last drain, oldest first."""
        out = list(self._outcomes)
        self._outcomes.clear()
        return out


# -- alert states: one row per key -----------------------------------------------------------------------------


def _row(key: str) -> str:
    return ALERT_PREFIX + key


def _decode(key: str, raw: Any) -> PolicyState | None:
    if raw is None:
        return None
    try:
        state = alerts.load_state(raw)
    except StateError as exc:
        log.warning("alert state %s is unreadable (%s); starting it afresh", key, exc)
        return None
    if state.key != key:
        log.warning("alert state stored under %s is for %s; starting it afresh", key, state.key)
        return None
    return state


def _keys(s: Session, prefix: str) -> list[str]:
    """Key-value keys starting with ``prefix``, sorted."""
    query = select(KeyValue.key).where(col(KeyValue.key).startswith(prefix, autoescape=True))
    return list(s.exec(query.order_by(col(KeyValue.key))).all())


def _load(s: Session, key: str) -> PolicyState | None:
    return _decode(key, repo.kv_get(s, _row(key)))


def _health(s: Session) -> HealthState:
    state = _load(s, HEALTH_KEY)
    return state if isinstance(state, HealthState) else HealthState.new()


Change = Callable[[PolicyState | None], tuple[PolicyState, list[Notification]]]


def _update(s: Session, key: str, now: datetime, change: Change) -> list[Notification]:
    """Apply ``change`` to the stored state of ``key`` atomically; returns its notifications.

    ``kv_update`` may call the change more than once (it lost a race and re-read): the policies are
    pure, so only the notifications of the call whose result was stored are returned.
    """
    produced: list[list[Notification]] = [[]]

    def apply(raw: Any) -> Any:
        state, notes = change(_decode(key, raw))
        if state.key != key:
            raise ValueError(f"a change of {key!r} returned the state of {state.key!r}")
        produced[0] = notes
        return state.to_json()

    repo.kv_update(s, _row(key), apply, now)
    return produced[0]


def load_book(db: Database) -> AlertBook:
    """Every stored alert state (unreadable rows are skipped with a warning)."""
    with db.session() as s:
        states = [_load(s, key[len(ALERT_PREFIX):]) for key in _keys(s, ALERT_PREFIX)]
    return AlertBook(state for state in states if state is not None)


def save_book(db: Database, book: AlertBook, now: datetime) -> None:
    """Store every state of ``book`` (one row per key; unchanged rows are not rewritten).

    Last writer wins per key: the jobs use the atomic per-key functions below instead, so that a
    concurrent ack is never overwritten by a stale copy of the book.
    """
    with db.session() as s:
        for state in book.values():
            data = state.to_json()
            if repo.kv_get(s, _row(state.key)) != data:
                repo.kv_set(s, _row(state.key), data, now)


def alert_state(db: Database, key: str) -> PolicyState | None:
    with db.session() as s:
        return _load(s, key)


def health_state(db: Database) -> HealthState:
    with db.session() as s:
        return _health(s)


def circuit_open(db: Database) -> bool:
    """Whether the Gate API counts as down: new orders are refused up front, API jobs pause.

    Meant for ``OrderService(gate_available=lambda: not monitor.circuit_open(db))`` in every process.
    """
    return alerts.circuit_open(health_state(db))


def open_alerts(db: Database, now: datetime) -> list[OpenAlert]:
    """The open alerts for App Home and ``/gate health``, most severe first."""
    return load_book(db).open_alerts(now=now)


def check_balance(
    db: Database, reading: BalanceReading, now: datetime, policy: AlertPolicy, *, thresholds: Thresholds
) -> list[Notification]:
    """Feed one balance reading to its currency's low-balance alert (held back while the API is down)."""
    currency = reading.balance.currency
    key = alerts.balance_key(currency)
    with db.session() as s:
        api_down = _health(s).down

        def change(state: PolicyState | None) -> tuple[PolicyState, list[Notification]]:
            current = state if isinstance(state, BalanceState) else BalanceState.new(currency)
            return alerts.check_balance(current, reading, now, policy, thresholds=thresholds, api_down=api_down)

        return _update(s, key, now, change)


def observe_health(
    db: Database, observations: Sequence[HealthObservation], now: datetime, policy: AlertPolicy
) -> list[Notification]:
    """Feed probe and real-call outcomes, in order, to the health policy (one transaction)."""
    if not observations:
        return []
    with db.session() as s:

        def change(state: PolicyState | None) -> tuple[PolicyState, list[Notification]]:
            current = state if isinstance(state, HealthState) else HealthState.new()
            notes: list[Notification] = []
            for observation in observations:
                current, more = alerts.check_health(current, observation, now, policy)
                notes += more
            return current, notes

        return _update(s, HEALTH_KEY, now, change)


def check_job(
    db: Database,
    name: str,
    last_success: datetime | None,
    interval: timedelta,
    now: datetime,
    policy: AlertPolicy,
    *,
    needs_api: bool = False,
) -> list[Notification]:
    """Self-watch of one job (see :func:`gatebot.alerts.job_health` for what ``last_success`` means)."""
    with db.session() as s:
        api_down = needs_api and _health(s).down

        def change(state: PolicyState | None) -> tuple[PolicyState, list[Notification]]:
            current = state if isinstance(state, JobState) else JobState.new(name)
            current = replace(current, needs_api=needs_api)
            return alerts.job_health(current, last_success, interval, now, policy, api_down=api_down)

        return _update(s, alerts.job_key(name), now, change)


def _inhibited(state: PolicyState, api_down: bool) -> bool:
    return api_down and (isinstance(state, BalanceState) or (isinstance(state, JobState) and state.needs_api))


def tick(db: Database, now: datetime, policy: AlertPolicy) -> list[Notification]:
    """Time-driven work for every alert: reminders, snooze ends, reposts, flapping settling.

    Health first (it decides the inhibition of the others), each key in its own atomic update.
    """
    notes: list[Notification] = []
    with db.session() as s:
        keys = [key[len(ALERT_PREFIX):] for key in _keys(s, ALERT_PREFIX)]
        keys.sort(key=lambda k: (k != HEALTH_KEY, k))
        for key in keys:
            stored = _load(s, key)
            if stored is None:  # unreadable (already warned): nothing to tick
                continue
            api_down = _health(s).down

            def change(state: PolicyState | None, stored: PolicyState = stored,
                       api_down: bool = api_down) -> tuple[PolicyState, list[Notification]]:
                current = state or stored
                return alerts.tick(current, now, policy, inhibited=_inhibited(current, api_down))

            notes += _update(s, key, now, change)
    return notes


def ack_alert(db: Database, key: str, *, by: str, now: datetime) -> list[Notification]:
    """Acknowledge ``key`` as ``by`` (a Slack user id) and record it in the audit log.

    A resolved or unknown alert (a stale button) changes nothing and returns no notifications.
    """
    with db.session() as s:
        state = _load(s, key)
        notes: list[Notification] = []
        if state is not None:
            notes = _update(s, key, now, lambda st: alerts.ack(st or state, by=by, now=now))
        detail = "acknowledged" if notes else ("not open" if state is not None else "no such alert")
        repo.audit(s, actor=by, action="alert.ack", target=key[:128], allowed=True, detail=detail, now=now)
    return notes


def snooze_alert(
    db: Database, key: str, *, by: str, duration: timedelta, now: datetime
) -> list[Notification]:
    """Snooze ``key`` for ``duration`` as ``by`` and record it in the audit log (see :func:`ack_alert`)."""
    with db.session() as s:
        state = _load(s, key)
        notes: list[Notification] = []
        if state is not None:
            notes = _update(s, key, now,
                            lambda st: alerts.snooze(st or state, by=by, duration=duration, now=now))
        hours = duration / timedelta(hours=1)
        detail = (f"snoozed for {hours:g} h" if notes
                  else ("not open" if state is not None else "no such alert"))
        repo.audit(s, actor=by, action="alert.snooze", target=key[:128], allowed=True, detail=detail, now=now)
    return notes


def record_message(db: Database, key: str, channel: str, ts: str, now: datetime) -> None:
    """Remember the Slack message the poster created for ``key``'s ``post``."""
    with db.session() as s:
        stored = _load(s, key)
        if stored is None:
            log.warning("posted a message for alert %s, which has no stored state", key)
            return
        _update(s, key, now, lambda st: (alerts.with_message(st or stored, channel, ts), []))


# -- job run records --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What the store knows about one scheduled job's runs."""

    name: str
    interval: timedelta
    #: When the job was first registered (the reference for a job that never succeeded).
    since: datetime | None = None
    last_run: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_skip: str | None = None
    last_skip_at: datetime | None = None
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_duration_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "interval_ms": self.interval // timedelta(milliseconds=1),
            "since": self.since,
            "last_run": self.last_run,
            "last_success": self.last_success,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_skip": self.last_skip,
            "last_skip_at": self.last_skip_at,
            "runs": self.runs,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "last_duration_ms": self.last_duration_ms,
        }

    @classmethod
    def from_json(cls, name: str, data: Any) -> JobRecord:
        d: Mapping[str, Any] = data if isinstance(data, Mapping) else {}

        def when(k: str) -> datetime | None:
            v = d.get(k)
            return v if isinstance(v, datetime) else None

        def text(k: str) -> str | None:
            v = d.get(k)
            return v if isinstance(v, str) else None

        def count(k: str) -> int:
            v = d.get(k)
            return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0

        duration = d.get("last_duration_ms")
        return cls(
            name=name,
            interval=timedelta(milliseconds=count("interval_ms")),
            since=when("since"),
            last_run=when("last_run"),
            last_success=when("last_success"),
            last_error=text("last_error"),
            last_error_at=when("last_error_at"),
            last_skip=text("last_skip"),
            last_skip_at=when("last_skip_at"),
            runs=count("runs"),
            failures=count("failures"),
            consecutive_failures=count("consecutive_failures"),
            last_duration_ms=duration if isinstance(duration, int) and not isinstance(duration, bool) else None,
        )


def register_job(db: Database, name: str, interval: timedelta, now: datetime) -> JobRecord:
    """Create or refresh the record of a scheduled job (its interval; ``since`` on first sight)."""

    def change(raw: Any) -> Any:
        record = JobRecord.from_json(name, raw) if raw is not None else JobRecord(name=name, interval=interval)
        return replace(record, interval=interval, since=record.since or now).to_json()

    with db.session() as s:
        return JobRecord.from_json(name, repo.kv_update(s, JOB_PREFIX + name, change, now))


def record_job_run(
    db: Database,
    name: str,
    *,
    interval: timedelta,
    started: datetime,
    finished: datetime,
    error: str | None = None,
    skipped: str | None = None,
) -> JobRecord:
    """Count one run of ``name``: a success, a failure (``error``, already free of secrets) or a skip."""

    def change(raw: Any) -> Any:
        r = JobRecord.from_json(name, raw) if raw is not None else JobRecord(name=name, interval=interval)
        r = replace(r, interval=interval, since=r.since or started)
        if skipped is not None:
            return replace(r, last_skip=skipped[:_MAX_ERROR], last_skip_at=started).to_json()
        ms = max(0, int((finished - started).total_seconds() * 1000))
        r = replace(r, last_run=started, runs=r.runs + 1, last_duration_ms=ms)
        if error is None:
            r = replace(r, last_success=finished, consecutive_failures=0)
        else:
            r = replace(r, last_error=error[:_MAX_ERROR], last_error_at=finished, failures=r.failures + 1,
                        consecutive_failures=r.consecutive_failures + 1)
        return r.to_json()

    with db.session() as s:
        return JobRecord.from_json(name, repo.kv_update(s, JOB_PREFIX + name, change, finished))


def job_records(db: Database) -> dict[str, JobRecord]:
    with db.session() as s:
        return {key[len(JOB_PREFIX):]: JobRecord.from_json(key[len(JOB_PREFIX):], repo.kv_get(s, key))
                for key in _keys(s, JOB_PREFIX)}


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One job as ``/healthz`` shows it. ``ok``: it succeeded (or was registered) within
    :data:`MISSED_INTERVALS` intervals."""

    name: str
    interval: timedelta
    last_success: datetime | None
    last_error: str | None
    ok: bool
    last_run: datetime | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    last_skip: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (ISO datetimes) for ``/healthz``."""
        def iso(when: datetime | None) -> str | None:
            return when.astimezone(UTC).isoformat() if when else None

        return {"name": self.name, "interval_s": int(self.interval.total_seconds()),
                "last_success": iso(self.last_success), "last_run": iso(self.last_run),
                "last_error": self.last_error, "last_error_at": iso(self.last_error_at),
                "consecutive_failures": self.consecutive_failures, "last_skip": self.last_skip, "ok": self.ok}


def job_status(db: Database, now: datetime, *, missed_intervals: int = MISSED_INTERVALS) -> list[JobStatus]:
    """Each registered job's last success and last error, and whether it is on time."""
    out: list[JobStatus] = []
    for name, r in sorted(job_records(db).items()):
        reference = r.last_success or r.since
        ok = reference is not None and r.interval > timedelta(0) and \
            now - reference <= r.interval * missed_intervals
        out.append(JobStatus(name=name, interval=r.interval, last_success=r.last_success, last_error=r.last_error,
                             ok=ok, last_run=r.last_run, last_error_at=r.last_error_at,
                             consecutive_failures=r.consecutive_failures, last_skip=r.last_skip))
    return out


def scheduler_status(db: Database, now: datetime) -> dict[str, Any]:
    """Who holds the scheduler lease (``owner`` is ``host:pid:id``), since when, until when."""
    with db.session() as s:
        lease = repo.lease_holder(s, SCHEDULER_LEASE)
    if lease is None:
        return {"lease": SCHEDULER_LEASE, "holder": None, "active": False, "acquired_at": None, "expires_at": None}
    return {
        "lease": SCHEDULER_LEASE,
        "holder": lease.owner,
        "active": lease.expires_at > now,
        "acquired_at": lease.acquired_at.isoformat(),
        "expires_at": lease.expires_at.isoformat(),
    }


# -- balance readings ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    balance: Money
    at: datetime


def _reading(raw: Any) -> Reading | None:
    if isinstance(raw, Mapping) and isinstance(raw.get("balance"), Money) and isinstance(raw.get("at"), datetime):
        return Reading(raw["balance"], raw["at"])
    return None


def record_readings(db: Database, balances: Iterable[Money], now: datetime) -> dict[str, Reading]:
    """Store the latest balance of each currency; returns the readings they replace."""
    previous: dict[str, Reading] = {}
    with db.session() as s:
        for money in balances:
            key = READING_PREFIX + money.currency
            old = _reading(repo.kv_get(s, key))
            if old is not None:
                previous[money.currency] = old
            repo.kv_set(s, key, {"balance": money, "at": now}, now)
    return previous


def last_readings(db: Database) -> dict[str, Reading]:
    with db.session() as s:
        out = {key[len(READING_PREFIX):]: _reading(repo.kv_get(s, key)) for key in _keys(s, READING_PREFIX)}
    return {cur: r for cur, r in out.items() if r is not None}


# -- spend and deposits ---------------------------------------------------------------------------------------


def spent_between(db: Database, currency: str, since: datetime, until: datetime) -> tuple[Money, int]:
    """Net spend in ``currency`` over ``[since, until)`` and how many orders were charged.

    Charges of our orders submitted in the window, minus the charges Gate released for orders that
    failed in it (a failed order gives its charge back), so a period's spend matches the balance.
    """
    cur = currency.upper()
    charged_at = func.coalesce(col(Order.submitted_at), col(Order.created_at))
    base = (col(Order.currency) == cur, col(Order.charged_amount).is_not(None),
            col(Order.created_at) >= since - _ORDER_LOOKBACK)
    with db.session() as s:
        charges = list(s.exec(select(col(Order.charged_amount)).where(*base, charged_at >= since,
                                                                      charged_at < until)))
        releases = list(s.exec(select(col(Order.charged_amount)).where(
            *base, col(Order.status) == OrderStatus.FAILED,
            col(Order.failed_at) >= since, col(Order.failed_at) < until)))
    total = sum((a for a in charges if a is not None), Decimal(0)) - \
        sum((a for a in releases if a is not None), Decimal(0))
    return Money.rounded(total, cur), len(charges)


def spent_last_24h(db: Database, currency: str, now: datetime) -> Money:
    """Net spend of the last 24 hours (the runway's pace), from our orders' charged amounts."""
    return spent_between(db, currency, now - timedelta(hours=24), now)[0]


def posted_deposits(
    db: Database, since: datetime, until: datetime, *, currency: str | None = None
) -> list[SeenDeposit]:
    """Deposits that posted in ``[since, until)`` (by Gate's ``posted_at``, else when we first saw them)."""
    posted_at = func.coalesce(col(SeenDeposit.posted_at), col(SeenDeposit.first_seen_at))
    query = select(SeenDeposit).where(col(SeenDeposit.status) == "posted", posted_at >= since, posted_at < until)
    if currency is not None:
        query = query.where(col(SeenDeposit.currency) == currency.upper())
    with db.session() as s:
        return list(s.exec(query.order_by(col(SeenDeposit.id))).all())


def deposit_cause(db: Database, currency: str, since: datetime | None) -> str | None:
    """A hint for an all-clear: ``"deposit #12 of USD 500.00 posted"`` for deposits in ``currency`` that
    posted, or were first seen or announced as posted, after ``since`` (the previous reading)."""
    if since is None:
        return None
    query = select(SeenDeposit).where(
        col(SeenDeposit.status) == "posted", col(SeenDeposit.currency) == currency.upper(),
        or_(col(SeenDeposit.posted_at) > since, col(SeenDeposit.first_seen_at) > since,
            col(SeenDeposit.announced_at) > since),
    ).order_by(col(SeenDeposit.id))
    with db.session() as s:
        rows = list(s.exec(query).all())
    if not rows:
        return None
    if len(rows) == 1:
        return f"deposit #{rows[0].id} of {rows[0].money().format()} posted"
    listed = ", ".join(f"#{d.id} ({d.money().format()})" for d in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return f"deposits {listed}{more} posted"


# -- the daily digest ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _DigestMark:
    at: datetime
    balances: dict[str, Money] = field(default_factory=dict)
    baseline: bool = False


def _mark(raw: Any) -> _DigestMark | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("at"), datetime):
        return None
    balances = raw.get("balances")
    clean = {k: v for k, v in balances.items() if isinstance(v, Money)} if isinstance(balances, Mapping) else {}
    return _DigestMark(at=raw["at"], balances=clean, baseline=raw.get("baseline") is True)


def last_digest(db: Database) -> tuple[datetime, bool] | None:
    """When the last digest period ended, and whether that is only the baseline (no digest sent yet)."""
    with db.session() as s:
        mark = _mark(repo.kv_get(s, DIGEST_KEY))
    return (mark.at, mark.baseline) if mark else None


def ensure_digest_baseline(db: Database, balances: Iterable[Money], now: datetime) -> bool:
    """Before the first digest: remember the first balance reading as its opening. ``True`` if set now."""
    opening = {m.currency: m for m in balances}
    created: list[bool] = [False]

    def change(raw: Any) -> Any:
        if _mark(raw) is not None:
            created[0] = False
            return raw
        created[0] = True
        return {"at": now, "balances": opening, "baseline": True}

    with db.session() as s:
        if repo.kv_get(s, DIGEST_KEY) is not None:
            return False
        repo.kv_update(s, DIGEST_KEY, change, now)
    return created[0]


def digest_due(db: Database, now: datetime, hour: int) -> bool:
    """Whether the digest of the period ending at the latest ``hour``:00 UTC has not been sent yet
    (used to catch up once after downtime). Never true before a baseline or digest exists."""
    last = last_digest(db)
    if last is None:
        return False
    slot = now.astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    if slot > now:
        slot -= timedelta(days=1)
    return last[0] < slot


def build_digest(
    db: Database, now: datetime, *, closing: Mapping[str, Money] | None, closing_at: datetime | None
) -> Digest:
    """The digest from the last digest (or the baseline; else the last 24 h) until ``now``.

    ``closing`` are the balances read now (or the last readings when Gate is down, with their time).
    """
    with db.session() as s:
        mark = _mark(repo.kv_get(s, DIGEST_KEY))
    start = mark.at if mark is not None else now - timedelta(hours=24)
    opening = mark.balances if mark is not None else {}
    closing = dict(closing or {})
    deposits = posted_deposits(db, start, now)
    currencies = sorted(set(opening) | set(closing) | {d.currency for d in deposits})
    lines: list[DigestLine] = []
    for cur in currencies:
        mine = [d.money() for d in deposits if d.currency == cur]
        spend, count = spent_between(db, cur, start, now)
        lines.append(DigestLine(
            currency=cur, opening=opening.get(cur), deposits=sum(mine, Money.zero(cur)), deposit_count=len(mine),
            spend=spend, order_count=count, closing=closing.get(cur),
        ))
    return Digest(start=start, end=now, lines=tuple(lines), closing_at=closing_at,
                  from_baseline=mark is not None and mark.baseline)


def commit_digest(db: Database, digest: Digest) -> None:
    """The digest went out: its end and closing balances open the next period."""
    closing = {line.currency: line.closing for line in digest.lines if line.closing is not None}
    with db.session() as s:
        repo.kv_set(s, DIGEST_KEY, {"at": digest.end, "balances": closing, "baseline": False}, digest.end)
        repo.kv_set(s, DIGEST_HISTORY_PREFIX + digest.end.astimezone(UTC).isoformat(), _digest_out(digest),
                    digest.end)


_LINE_FIELDS = ("currency", "opening", "deposits", "deposit_count", "spend", "order_count", "closing")


def _digest_out(digest: Digest) -> dict[str, Any]:
    return {"start": digest.start, "end": digest.end, "closing_at": digest.closing_at,
            "from_baseline": digest.from_baseline,
            "lines": [{name: getattr(line, name) for name in _LINE_FIELDS} for line in digest.lines]}


def _digest_in(raw: Any) -> Digest | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("start"), datetime) or \
            not isinstance(raw.get("end"), datetime):
        return None
    lines: list[DigestLine] = []
    for item in raw.get("lines") or []:
        try:
            lines.append(DigestLine(**{name: item[name] for name in _LINE_FIELDS}))
        except (KeyError, TypeError):
            log.warning("a stored digest line of %s is unreadable; left out", raw["end"])
    closing_at = raw.get("closing_at")
    return Digest(start=raw["start"], end=raw["end"], lines=tuple(lines),
                  closing_at=closing_at if isinstance(closing_at, datetime) else None,
                  from_baseline=raw.get("from_baseline") is True)


def digest_history(db: Database, since: datetime, until: datetime) -> list[Digest]:
    """The digests sent for periods that end in ``(since, until]``, oldest first: exactly the figures
    that were posted (the ledger export)."""
    with db.session() as s:
        raw = [repo.kv_get(s, key) for key in _keys(s, DIGEST_HISTORY_PREFIX)]
    digests = [d for d in (_digest_in(r) for r in raw) if d is not None]
    return sorted((d for d in digests if since < d.end <= until), key=lambda d: d.end)
