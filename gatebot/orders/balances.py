"""Reading Gate's balances, with the last known reading as the fallback when Gate is slow or down.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
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

        Raises :class:`GateDown` when Gate cannot answer and nothing is known yet.
        """
        fetch = asyncio.ensure_future(self.gate.get_balance())
        try:
            balances = await asyncio.wait_for(asyncio.shield(fetch), max_wait) if max_wait else await fetch
        except (TimeoutError, gate.GateError) as exc:
            if isinstance(exc, TimeoutError):
                fetch.add_done_callback(self._remember_late_balances)
            cached = await self.cached_balances()
            if cached is None:
                raise GateDown(f"Could not read the balance from Gate ({type(exc).__name__}); "
                               "no order was sent. Try again in a minute.") from None
            return cached
        return await self._remember_balances(balances)

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

    def _remember_late_balances(self, fetch: asyncio.Future[list[gate.Balance]]) -> None:
        if not fetch.cancelled() and fetch.exception() is None:
            task = asyncio.ensure_future(self._remember_balances(fetch.result()))
            self._background.add(task)  # keep a reference until it is done
            task.add_done_callback(self._background.discard)

    async def settle(self) -> None:
        """Wait for background writes (a late balance answer being remembered): tests, shutdown."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _snapshot(raw: Any) -> BalanceSnapshot | None:
    if not raw:
        return None
    return BalanceSnapshot(balances=[gate.Balance.model_validate(b) for b in raw["items"]],
                           at=raw["at"], cached=True)

