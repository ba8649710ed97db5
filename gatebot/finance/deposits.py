"""The deposit watch: record Gate's deposits, announce each newly posted one, resume the orders that
were waiting for funds in its currency (same keys).

The first run only takes note of the history (no flood of old news). A deposit is marked announced
only once the announcer is done with it, so one that could not be announced (Slack down, process
stopped) is announced by a later run.

Must not import Slack, the scheduler or ``gatebot.jobs`` (the Gate client, the order service and the
announcer are passed in as the narrow protocols below).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from gatebot.clock import Clock
from gatebot.gate.models import Deposit, Page
from gatebot.money import Money
from gatebot.store import repo
from gatebot.store.db import Database
from gatebot.store.models import SeenDeposit

__all__ = ["DEPOSIT_BASELINE_KEY", "MAX_DEPOSIT_PAGES", "DepositNotice", "watch_deposits"]

log = logging.getLogger(__name__)

#: The deposit watch walks at most this many pages of deposits per run.
MAX_DEPOSIT_PAGES = 20
DEPOSIT_BASELINE_KEY = "deposits:baseline"


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


class DepositSource(Protocol):
    """What the watch needs of the Gate client."""

    async def list_deposits(self, *, page: int = 1, page_size: int = 50,
                            status: str | None = None) -> Page[Deposit]: ...


class WaitingOrders(Protocol):
    """What the watch needs of the order service."""

    async def resume_waiting(self, currency: str | None = None) -> int: ...


class DepositAnnouncer(Protocol):
    async def announce_deposit(self, notice: DepositNotice) -> bool:
        """Announce a posted deposit; ``True`` when done with it (posted, or nowhere to post)."""
        ...


async def _fetch_deposits(client: DepositSource, known_pending: set[int], *, everything: bool) -> list[Deposit]:
    """Newest-first pages until every deposit we know as pending was seen again (it may have posted),
    or all of them when ``everything`` (the first run)."""
    found: list[Deposit] = []
    missing = set(known_pending)
    for page in range(1, MAX_DEPOSIT_PAGES + 1):
        listing = await client.list_deposits(page=page, page_size=100)
        found += listing.items
        missing -= {d.id for d in listing.items}
        if not listing.has_more or not listing.items or (not everything and not missing):
            break
    return found


def _known(s: Session) -> tuple[set[int], bool]:
    known_pending = {d.id for d in repo.unannounced_deposits(s, status="pending")}
    return known_pending, repo.kv_get(s, DEPOSIT_BASELINE_KEY) is None


def _record(s: Session, deposits: list[Deposit], now: datetime, first_run: bool) -> list[SeenDeposit]:
    """Record what Gate listed; the deposits to announce (none on the first run: history noted)."""
    repo.record_deposits(s, deposits, now)
    todo = repo.unannounced_deposits(s)
    if not first_run:
        return todo
    repo.mark_announced(s, [d.id for d in todo], now)
    repo.kv_set(s, DEPOSIT_BASELINE_KEY, {"at": now, "seen": len(deposits)}, now)
    log.info("deposit watch: %d deposits on record; only new postings are announced from now on", len(deposits))
    return []


def _mark_announced(deposit_id: int, now: datetime) -> Callable[[Session], int]:
    return lambda s: repo.mark_announced(s, [deposit_id], now)


async def watch_deposits(
    db: Database, gate: DepositSource, orders: WaitingOrders, announcer: DepositAnnouncer, clock: Clock
) -> list[DepositNotice]:
    """One run of the deposit watch; returns the deposits announced (or offered to the announcer)."""
    now = clock.now()
    known_pending, first_run = await db.run(_known)
    deposits = await _fetch_deposits(gate, known_pending, everything=first_run)
    todo = await db.run(lambda s: _record(s, deposits, now, first_run))
    resumed: dict[str, int] = {}
    for currency in sorted({d.currency for d in todo}):
        resumed[currency] = await orders.resume_waiting(currency)
    last_of_currency = {d.currency: d.id for d in todo}
    notices: list[DepositNotice] = []
    for d in todo:
        notice = DepositNotice(
            deposit_id=d.id, amount=d.money(), method=d.method, external_ref=d.external_ref,
            posted_at=d.posted_at,
            resumed=resumed.get(d.currency, 0) if last_of_currency[d.currency] == d.id else 0,
        )
        if await announcer.announce_deposit(notice):
            await db.run(_mark_announced(d.id, clock.now()))
        notices.append(notice)
    return notices
