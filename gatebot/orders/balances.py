"""Reading Gate's balances, with the last known reading as the fallback when Gate is slow or down.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gatebot import gate
from gatebot.orders.base import ServiceBase
from gatebot.orders.model import BalanceSnapshot, GateDown
from gatebot.store import repo

log = logging.getLogger(__name__)


_BALANCES_KEY = "gate:balances"


class Balances(ServiceBase):
    """Balances from Gate, remembered in the store for every process."""

    async def balances(self, *, max_wait: float | None = None) -> BalanceSnapshot:
        """Fetch the balances (and remember them); past ``max_wait`` seconds use the last known ones.

        One ``GET /balance`` is in flight at a time: a caller who asks while a read is on its way shares
        it (fifty people typing ``/gate balance`` at once cost Gate one call, and the event loop one
        request's work). A read that outlives its caller's ``max_wait`` still lands in the store.

        Raises :class:`GateDown` when Gate cannot answer and nothing is known yet.
        """
        fetch = self._balance_read()
        try:
            return await (asyncio.wait_for(asyncio.shield(fetch), max_wait) if max_wait else asyncio.shield(fetch))
        except (TimeoutError, gate.GateError) as exc:
            cached = await self.cached_balances()
            if cached is None:
                raise GateDown(f"Could not read the balance from Gate ({type(exc).__name__}); "
                               "no order was sent. Try again in a minute.") from None
            return cached

    def _balance_read(self) -> asyncio.Future[BalanceSnapshot]:
        """The read in flight on this event loop, or a new one (kept until done, whoever waits for it)."""
        fetch = self._balance_fetch
        if fetch is None or fetch.done() or fetch.get_loop() is not asyncio.get_running_loop():
            fetch = self._balance_fetch = asyncio.ensure_future(self._read_and_remember())
            self._background.add(fetch)
            fetch.add_done_callback(_consume_and_forget(self._background))
        return fetch

    async def _read_and_remember(self) -> BalanceSnapshot:
        return await self._remember_balances(await self.gate.get_balance())

    async def cached_balances(self) -> BalanceSnapshot | None:
        """The balances last read from Gate by any process, or ``None``."""
        return _snapshot(await self.db.run(lambda s: repo.kv_get(s, _BALANCES_KEY)))

    async def _remember_balances(self, balances: list[gate.Balance]) -> BalanceSnapshot:
        now = self.clock.now()
        value = {"at": now, "items": [
            {"currency_code": b.currency_code, "available": b.available, "updated_at": b.updated_at}
            for b in balances]}
        await self.db.run(lambda s: repo.kv_set(s, _BALANCES_KEY, value, now))
        return BalanceSnapshot(balances=balances, at=now)

    async def settle(self) -> None:
        """Wait for background writes (a late balance answer being remembered): tests, shutdown."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _consume_and_forget(background: set[asyncio.Future[Any]]) -> Callable[[asyncio.Future[Any]], None]:
    """Drop a finished read from ``background``, retrieving its error so nobody is told it was never read
    (its waiters have their own copy, or fell back to the stored balances)."""

    def done(fetch: asyncio.Future[Any]) -> None:
        background.discard(fetch)
        if not fetch.cancelled():
            fetch.exception()

    return done


def _snapshot(raw: Any) -> BalanceSnapshot | None:
    if not raw:
        return None
    return BalanceSnapshot(balances=[gate.Balance.model_validate(b) for b in raw["items"]],
                           at=raw["at"], cached=True)

