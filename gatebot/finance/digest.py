"""The daily finance digest: per currency, opening balance, deposits, spend, closing balance.

A closing balance that differs from opening + deposits - spend is called out. The period runs from
the last digest (``digest:last``, or the baseline: the first balance reading) until now; every digest
sent is kept (``digest:period:<end>``), and the ledger export (:mod:`gatebot.finance.exports`) reads
exactly those. :func:`send_daily_digest` is the digest job: hourly, it sends when one is due (daily at
the configured hour, UTC; once after downtime or a failed post).

The stored forms are the ones gatebot has always written (the key-value store tags the times and
amounts); they are read back through pydantic ``TypeAdapter``\\ s of the dataclasses below.

Must not import Slack, the scheduler or ``gatebot.jobs``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Protocol

from pydantic import BeforeValidator, TypeAdapter, ValidationError
from sqlmodel import Session

from gatebot import gate
from gatebot.finance.readings import StoredMoney, StoredTime, kv_record, last_readings, record_readings
from gatebot.finance.spend import spent_between
from gatebot.money import Money
from gatebot.orders import BalanceSnapshot, GateDown
from gatebot.store import monitoring, repo
from gatebot.store.db import Database

__all__ = [
    "DIGEST_HISTORY_PREFIX",
    "DIGEST_KEY",
    "Digest",
    "DigestLine",
    "NotDelivered",
    "build_digest",
    "commit_digest",
    "digest_due",
    "digest_history",
    "ensure_digest_baseline",
    "last_digest",
    "send_daily_digest",
]

log = logging.getLogger(__name__)

#: The last digest (or the baseline before the first one): its time and closing balances.
DIGEST_KEY = "digest:last"
#: Every digest sent, one row per period (``digest:period:<end, ISO UTC>``): the ledger export reads them.
DIGEST_HISTORY_PREFIX = "digest:period:"


class NotDelivered(Exception):
    """Slack did not take a message that must go out (the digest): the job fails and retries."""


@dataclass(frozen=True, slots=True)
class DigestLine:
    """One currency of the daily digest. ``opening``/``closing`` are ``None`` when not known."""

    currency: str
    opening: StoredMoney | None
    deposits: StoredMoney
    deposit_count: int
    spend: StoredMoney
    order_count: int
    closing: StoredMoney | None

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

    start: StoredTime
    end: StoredTime
    lines: tuple[DigestLine, ...]
    closing_at: StoredTime | None
    #: True when ``start``/``opening`` come from the first balance reading, not a previous digest.
    from_baseline: bool = False

    @property
    def mismatches(self) -> list[DigestLine]:
        return [line for line in self.lines if line.mismatch is not None]


def _moneys_only(value: Any) -> Any:
    return {k: v for k, v in value.items() if isinstance(v, Money)} if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class _DigestMark:
    """``digest:last``: when the last period ended, its closing balances, whether it is the baseline."""

    at: StoredTime
    balances: Annotated[dict[str, StoredMoney], BeforeValidator(_moneys_only)] = field(default_factory=dict)
    baseline: Annotated[bool, BeforeValidator(lambda v: v is True)] = False


@cache
def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(cls)


def _mark(raw: Any) -> _DigestMark | None:
    try:
        mark: _DigestMark = _adapter(_DigestMark).validate_python(raw)
    except ValidationError:
        return None
    return mark


def _set_mark(s: Session, mark: _DigestMark, now: datetime) -> None:
    repo.kv_set(s, DIGEST_KEY, kv_record(mark), now)


def last_digest(s: Session) -> tuple[datetime, bool] | None:
    """When the last digest period ended, and whether that is only the baseline (no digest sent yet)."""
    mark = _mark(repo.kv_get(s, DIGEST_KEY))
    return (mark.at, mark.baseline) if mark else None


def ensure_digest_baseline(s: Session, balances: Iterable[Money], now: datetime) -> bool:
    """Before the first digest: remember the first balance reading as its opening. ``True`` if set now."""
    opening = {m.currency: m for m in balances}
    created: list[bool] = [False]

    def change(raw: Any) -> Any:
        if _mark(raw) is not None:
            created[0] = False
            return raw
        created[0] = True
        return kv_record(_DigestMark(at=now, balances=opening, baseline=True))

    if repo.kv_get(s, DIGEST_KEY) is not None:
        return False
    repo.kv_update(s, DIGEST_KEY, change, now)
    return created[0]


def digest_due(s: Session, now: datetime, hour: int) -> bool:
    """Whether the digest of the period ending at the latest ``hour``:00 UTC has not been sent yet
    (used to catch up once after downtime). Never true before a baseline or digest exists."""
    last = last_digest(s)
    if last is None:
        return False
    slot = now.astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    if slot > now:
        slot -= timedelta(days=1)
    return last[0] < slot


def build_digest(
    s: Session, now: datetime, *, closing: Mapping[str, Money] | None, closing_at: datetime | None
) -> Digest:
    """The digest from the last digest (or the baseline; else the last 24 h) until ``now``.

    ``closing`` are the balances read now (or the last readings when Gate is down, with their time).
    """
    mark = _mark(repo.kv_get(s, DIGEST_KEY))
    start = mark.at if mark is not None else now - timedelta(hours=24)
    opening = mark.balances if mark is not None else {}
    closing = dict(closing or {})
    deposits = monitoring.posted_deposits(s, start, now)
    currencies = sorted(set(opening) | set(closing) | {d.currency for d in deposits})
    lines: list[DigestLine] = []
    for cur in currencies:
        mine = [d.money() for d in deposits if d.currency == cur]
        spend, count = spent_between(s, cur, start, now)
        lines.append(DigestLine(
            currency=cur, opening=opening.get(cur), deposits=sum(mine, Money.zero(cur)), deposit_count=len(mine),
            spend=spend, order_count=count, closing=closing.get(cur),
        ))
    return Digest(start=start, end=now, lines=tuple(lines), closing_at=closing_at,
                  from_baseline=mark is not None and mark.baseline)


def commit_digest(s: Session, digest: Digest) -> None:
    """The digest went out: its end and closing balances open the next period."""
    closing = {line.currency: line.closing for line in digest.lines if line.closing is not None}
    _set_mark(s, _DigestMark(at=digest.end, balances=closing, baseline=False), digest.end)
    repo.kv_set(s, DIGEST_HISTORY_PREFIX + digest.end.astimezone(UTC).isoformat(),
                kv_record(digest), digest.end)


def _digest_in(raw: Any) -> Digest | None:
    """A stored period; an unreadable line is left out (with a warning), not the whole period."""
    if not isinstance(raw, Mapping):
        return None
    lines: list[DigestLine] = []
    for item in raw.get("lines") or []:
        try:
            lines.append(_adapter(DigestLine).validate_python(item))
        except ValidationError:
            log.warning("a stored digest line of %s is unreadable; left out", raw.get("end"))
    closing_at = raw.get("closing_at")
    try:
        digest: Digest = _adapter(Digest).validate_python({
            "start": raw.get("start"), "end": raw.get("end"), "lines": (),
            "closing_at": closing_at if isinstance(closing_at, datetime) else None,
            "from_baseline": raw.get("from_baseline") is True,
        })
    except ValidationError:
        return None
    return Digest(start=digest.start, end=digest.end, lines=tuple(lines), closing_at=digest.closing_at,
                  from_baseline=digest.from_baseline)


def digest_history(s: Session, since: datetime, until: datetime) -> list[Digest]:
    """The digests sent for periods that end in ``(since, until]``, oldest first: exactly the figures
    that were posted (the ledger export)."""
    raw = [repo.kv_get(s, key) for key in monitoring.kv_keys(s, DIGEST_HISTORY_PREFIX)]
    digests = [d for d in (_digest_in(r) for r in raw) if d is not None]
    return sorted((d for d in digests if since < d.end <= until), key=lambda d: d.end)


class BalanceSource(Protocol):
    """What the digest needs of the order service: the balances, live or cached."""

    async def balances(self) -> BalanceSnapshot: ...


async def send_daily_digest(
    db: Database,
    orders: BalanceSource,
    send: Callable[[Digest], Awaitable[bool]],
    *,
    now: datetime,
    hour: int,
    gate_down: bool,
) -> Digest | None:
    """Send the finance digest when one is due; ``None`` when none is.

    When Gate cannot be read (or ``gate_down``), the closing balances are the last readings (with
    their time). Raises :class:`NotDelivered` when ``send`` did not take it: the next run retries.
    """
    if not await db.run(lambda s: digest_due(s, now, hour)):
        return None
    closing: dict[str, Money] | None = None
    closing_at: datetime | None = None
    if not gate_down:
        closing = await _live_balances(orders)
        if closing is not None:
            closing_at = now
            live = closing
            await db.run(lambda s: record_readings(s, live.values(), now))

    def build(s: Session) -> Digest:
        nonlocal closing, closing_at
        if closing is None:
            readings = last_readings(s)
            closing = {cur: r.balance for cur, r in readings.items()}
            closing_at = min((r.at for r in readings.values()), default=None)
        return build_digest(s, now, closing=closing, closing_at=closing_at)

    digest = await db.run(build)
    if not await send(digest):
        raise NotDelivered("the daily digest could not be posted; it is retried at the next run")
    await db.run(lambda s: commit_digest(s, digest))
    return digest


async def _live_balances(orders: BalanceSource) -> dict[str, Money] | None:
    try:
        snapshot = await orders.balances()
    except (gate.GateError, GateDown) as exc:
        log.warning("digest: could not read the balances (%s); using the last readings", type(exc).__name__)
        return None
    if snapshot.cached:
        return None
    return {b.money().currency: b.money() for b in snapshot.balances}
