"""The balance check: read the balances, remember them, feed each configured currency's low-balance alert.

Each reading carries the last 24 hours' spend (for the runway) and, when a deposit posted since the
previous reading (or while the alert is open), that as the cause of a possible all-clear. The first
reading is also the digest's baseline.

Must not import Slack, the scheduler or ``gatebot.jobs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from gatebot.alerts import AlertPolicy, BalanceReading, Notification, balance_key
from gatebot.alerts import stored as alert_store
from gatebot.clock import Clock
from gatebot.config import Thresholds
from gatebot.finance.digest import ensure_digest_baseline
from gatebot.finance.readings import record_readings
from gatebot.finance.spend import deposit_cause, spent_last_24h
from gatebot.money import Money
from gatebot.orders import BalanceSnapshot
from gatebot.store.db import Database

__all__ = ["BalanceUnavailable", "check_balances"]


class BalanceUnavailable(Exception):
    """Gate did not answer the balance request (a cached copy does not count as a reading)."""


class BalanceSource(Protocol):
    """What the balance check needs of the order service."""

    async def balances(self) -> BalanceSnapshot: ...


def _feed(s: Session, monies: list[Money], thresholds: Mapping[str, Thresholds], now: datetime,
          policy: AlertPolicy) -> list[Notification]:
    previous = record_readings(s, monies, now)
    ensure_digest_baseline(s, monies, now)
    by_currency = {m.currency: m for m in monies}
    notes: list[Notification] = []
    for currency, levels in sorted(thresholds.items()):
        balance = by_currency.get(currency, Money.zero(currency))  # no balance line: nothing available
        # Any deposit posted while the alert is open explains its all-clear (clearing takes several
        # good readings, and the deposit watch may record the deposit after the first of them).
        state = alert_store.alert_state(s, balance_key(currency))
        opened = state.alert.opened_at if state is not None and state.alert.open else None
        before = previous.get(currency)
        reading = BalanceReading(
            balance=balance,
            spent_last_24h=spent_last_24h(s, currency, now),
            cause=deposit_cause(s, currency, opened or (before.at if before else None)),
        )
        notes += alert_store.check_balance(s, reading, now, policy, thresholds=levels)
    return notes


async def check_balances(
    db: Database, orders: BalanceSource, clock: Clock, *, thresholds: Mapping[str, Thresholds], policy: AlertPolicy
) -> list[Notification]:
    """Read the balances (live: a cached copy raises :class:`BalanceUnavailable`) and feed the alerts of
    every currency with thresholds (one unit of work); returns the notifications."""
    snapshot = await orders.balances()
    if snapshot.cached:
        raise BalanceUnavailable("Gate did not answer the balance request; only an old copy is known")
    now = clock.now()
    monies = [b.money() for b in snapshot.balances]
    return await db.run(lambda s: _feed(s, monies, thresholds, now, policy))
