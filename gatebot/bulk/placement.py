"""Placing a batch: its queued rows go to Gate one by one at ``GATEBOT_BULK_RATE`` rows per second.

A row is sent by the ordinary path: the runner claims it (``queued → submitting``, compare-and-set,
committed) and calls ``OrderService.submit`` — the same key and exact body saved at confirmation, the
same recording of Gate's answer. So everything an order has applies to a row: recovery re-sends a row
left ``submitting``/``unknown`` with its own key, tracking settles ``pending`` rows, codes are stored
encrypted. Two runners (two instances, a CLI beside a server) can never send one row twice: only one
claim wins; the jobs' leader lease keeps them from doubling the pace.

What stops or slows the runner:

* the batch is no longer ``running`` (paused, cancelled) — checked before every row;
* the Gate circuit is open — the runner waits (:data:`GATE_DOWN_WAIT`), rows do not fail;
* a 429 that the client's own ``Retry-After`` handling gave up on leaves the row ``unknown``: the runner
  waits until the row's next attempt (its backoff, or Gate's ``Retry-After`` when longer; at least
  :data:`RATE_LIMIT_PAUSE`) and sends it again (same key) before the next row;
* ``insufficient_balance`` — the row is ``waiting_funds`` (as any order) and the BATCH moves to
  ``waiting_funds``: nothing more is sent. The deposit watch re-sends waiting orders when a deposit posts
  (``OrderService.resume_waiting``); once the batch's row got through, :meth:`Placement.tick` sets the
  batch running again.

A batch is ``finished`` when no row is left to send and every row ended (final, or needs_attention); its
results are then kept for ``GATEBOT_BULK_RESULTS_TTL``. Events: ``batch.progress`` (at most one per
:data:`PROGRESS_EVERY`), ``batch.waiting_funds``, ``batch.running`` (resumed after a deposit),
``batch.finished`` — each with ``batch_id``, ``status``, ``requester`` and, for progress and finished,
the :class:`~gatebot.bulk.BatchProgress` as ``progress``.

Time is the injected clock and ``sleep`` (tests pass one that advances a ManualClock). Must not import
Slack, the scheduler, ``gatebot.slack``, ``gatebot.jobs``, ``gatebot.demo`` or ``gatebot.emulator``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Final

from sqlmodel import Session

from gatebot.bulk.model import BatchProgress
from gatebot.bulk.results import Results
from gatebot.orders import SUBMIT_GRACE
from gatebot.store import repo
from gatebot.store.models import Batch, BatchStatus, Order, OrderStatus

__all__ = ["BULK_ACTOR", "GATE_DOWN_WAIT", "PROGRESS_EVERY", "RATE_LIMIT_PAUSE", "Placement"]

log = logging.getLogger(__name__)

BULK_ACTOR: Final = "system:bulk"
#: While the Gate circuit is open the runner looks again this often (seconds).
GATE_DOWN_WAIT: Final = 5.0
#: After a row that Gate kept answering 429, wait this long (seconds) before sending it again.
RATE_LIMIT_PAUSE: Final = 5.0
#: At most one ``batch.progress`` event per this many seconds per batch.
PROGRESS_EVERY: Final = timedelta(seconds=3)
_RESENDABLE: Final = (OrderStatus.SUBMITTING, OrderStatus.UNKNOWN)
_SETTLED: Final = frozenset({OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.REJECTED,
                             OrderStatus.NEEDS_ATTENTION})


class Placement(Results):
    """The runner."""

    async def run_batch(self, batch_id: int, *, until: datetime | None = None) -> BatchProgress:
        """Send ``batch_id``'s queued rows at the configured rate until none is left, the batch stops running,
        or the clock passes ``until``. Returns the progress at the end (settles the batch when it can)."""
        await self._place(batch_id, until)
        return await self.settle(batch_id)

    async def _place(self, batch_id: int, until: datetime | None) -> int:
        """The runner's loop (see the module docstring); returns how many rows it sent."""
        interval = timedelta(seconds=1 / self.rate)
        next_at = self.clock.now()
        last_progress: datetime | None = None
        sent = 0
        while until is None or self.clock.now() < until:
            batch, row = await self.db.run(lambda s: _next_row(s, batch_id))
            if batch is None or batch.state is not BatchStatus.RUNNING or row is None:
                break
            if not await self.orders._gate_available():
                await self.sleep(GATE_DOWN_WAIT)
                continue
            if until is not None and next_at >= until:
                break  # the row's turn is after this slice: the next one sends it
            wait = (next_at - self.clock.now()).total_seconds()
            if wait > 0:
                await self.sleep(wait)
            next_at = max(next_at + interval, self.clock.now())  # never a burst after a stall
            order = await self._send(row)
            sent += order is not None
            if order is not None and order.status == OrderStatus.UNKNOWN and order.error_code == "rate_limited":
                await self.sleep(self._rate_limit_pause(order))
                next_at = self.clock.now()
                order = await self.orders.submit(row, actor=BULK_ACTOR)
            if order is not None and order.status == OrderStatus.WAITING_FUNDS:
                await self._wait_for_funds(batch, order)
                break
            if last_progress is None or self.clock.now() - last_progress >= PROGRESS_EVERY:
                last_progress = self.clock.now()
                await self._publish("progress", batch, progress=await self.progress(batch_id))
        return sent

    def _rate_limit_pause(self, order: Order) -> float:
        """Seconds to wait after a 429 the client gave up on: until the row's next attempt (its backoff, or
        Gate's ``Retry-After`` when longer), at least :data:`RATE_LIMIT_PAUSE`."""
        due = order.next_attempt_at
        return RATE_LIMIT_PAUSE if due is None else max(RATE_LIMIT_PAUSE, (due - self.clock.now()).total_seconds())

    async def _send(self, order_id: int) -> Order | None:
        """Claim a queued row (``queued → submitting``, committed) and send it; a row waiting for funds is
        sent again as it is. ``None`` when another runner or a cancel took the row first."""
        now = self.clock.now()

        def claim(s: Session) -> bool:
            order = repo.get_order(s, order_id)
            status = None if order is None else OrderStatus(order.status)
            if order is None or status is not OrderStatus.QUEUED:
                return status is OrderStatus.WAITING_FUNDS
            order.next_attempt_at = now + SUBMIT_GRACE  # recovery's turn only if this process dies
            repo.set_status(s, order, OrderStatus.SUBMITTING, actor=BULK_ACTOR, note="sending (bulk)", now=now)
            return True

        try:
            if not await self.db.run(claim):
                return None
        except repo.StatusConflict:
            return None
        return await self.orders.submit(order_id, actor=BULK_ACTOR)

    async def _wait_for_funds(self, batch: Batch, order: Order) -> None:
        reason = (f"Gate says the {order.currency} balance is too low (row {order.batch_row:,}, order "
                  f"{order.number}). The batch goes on, with the same keys, when a deposit posts.")
        try:
            fresh = await self.db.run(lambda s: _move(s, batch, BatchStatus.WAITING_FUNDS, self.clock.now(), reason))
        except repo.BatchConflict:
            return
        log.info("batch %s waits for funds", batch.number)
        await self._publish(BatchStatus.WAITING_FUNDS, fresh, progress=await self.progress(batch.id or 0))

    async def settle(self, batch_id: int) -> BatchProgress:
        """``finished`` when nothing is left to send and every row ended; publishes ``batch.finished``."""
        progress = await self.progress(batch_id)
        unsettled = await self.db.run(lambda s: repo.count_rows(
            s, batch_id, [st for st in OrderStatus if st not in _SETTLED]))
        if progress.status is not BatchStatus.RUNNING or unsettled:
            return progress
        now = self.clock.now()

        def finish(s: Session) -> Batch:
            batch = repo.get_batch(s, batch_id)
            assert batch is not None
            repo.set_batch_status(s, batch, BatchStatus.FINISHED, now=now, finished_at=now,
                                  results_expire_at=now + self.results_ttl, reason=None)
            return batch

        try:
            batch = await self.db.run(finish)
        except repo.BatchConflict:
            return await self.progress(batch_id)
        progress = await self.progress(batch_id)
        log.info("batch %s finished: %d completed, %d failed, %d not sent", batch.number, progress.completed,
                 progress.failed, progress.cancelled)
        await self._publish("finished", batch, progress=progress)
        return progress

    async def resume_batches(self) -> int:
        """After a restart: re-send (same key, same body) the rows of batches left ``submitting`` or
        ``unknown`` — a process may have died between a row's claim and Gate's answer. The recovery job
        would too, after its grace period; this does it at once. Returns how many rows were re-sent."""
        statuses = [BatchStatus.RUNNING, BatchStatus.PAUSED, BatchStatus.WAITING_FUNDS, BatchStatus.CANCELLED]

        def stranded(s: Session) -> list[int]:
            return [o.id for batch in repo.batches_in(s, statuses, limit=1000)
                    for o in repo.batch_rows_in(s, batch.id or 0, _RESENDABLE, limit=10_000) if o.id is not None]

        ids = await self.db.run(stranded)
        for order_id in ids:
            if not await self.orders._gate_available():
                break
            await self.orders.submit(order_id, actor=BULK_ACTOR)
        return len(ids)

    async def tick(self, *, budget: timedelta) -> int:
        """One run of the bulk job (leader only): expire approvals and unconfirmed plans, set batches waiting
        for funds running again once their row got through, then place running batches' rows for at most
        ``budget`` of clock time, and settle the ones with nothing left to send. Returns rows sent."""
        await self.expire_batches()
        await self._clear_expired_results()
        until = self.clock.now() + budget
        for batch in await self.db.run(lambda s: repo.batches_in(s, [BatchStatus.WAITING_FUNDS])):
            await self._funds_arrived(batch)
        sent = 0
        for batch in await self.db.run(lambda s: repo.batches_in(s, [BatchStatus.RUNNING])):
            assert batch.id is not None
            sent += await self._place(batch.id, until)
            await self.settle(batch.id)
            if self.clock.now() >= until:
                break
        return sent

    async def _funds_arrived(self, batch: Batch) -> None:
        """A batch waiting for funds runs again when none of its rows waits any more (the deposit watch
        re-sent it and Gate took it)."""
        assert batch.id is not None
        waiting = await self.db.run(lambda s: repo.count_rows(s, batch.id or 0, [OrderStatus.WAITING_FUNDS]))
        if waiting:
            return
        try:
            fresh = await self.db.run(lambda s: _move(s, batch, BatchStatus.RUNNING, self.clock.now(), None))
        except repo.BatchConflict:
            return
        log.info("batch %s: funds arrived; placing the rest", batch.number)
        await self._publish(BatchStatus.RUNNING, fresh, by="system:deposit")

    async def _clear_expired_results(self) -> None:
        """Drop the encrypted file of batches whose results expired (it holds customer accounts)."""
        now = self.clock.now()

        def clear(s: Session) -> None:
            for batch in repo.batches_in(s, [BatchStatus.FINISHED, BatchStatus.CANCELLED, BatchStatus.REJECTED],
                                         limit=1000):
                if batch.source_enc is not None and batch.results_expire_at is not None \
                        and batch.results_expire_at <= now:
                    batch.source_enc = None
                    s.add(batch)

        await self.db.run(clear)


def _next_row(s: Session, batch_id: int) -> tuple[Batch | None, int | None]:
    """The batch as stored now and its next row to send: a row waiting for funds first (a resumed batch
    tries it again, same key), then the first queued row in file order."""
    batch = repo.get_batch(s, batch_id)
    if batch is None:
        return None, None
    rows = repo.batch_rows_in(s, batch_id, [OrderStatus.WAITING_FUNDS], limit=1) or \
        repo.batch_rows_in(s, batch_id, [OrderStatus.QUEUED], limit=1)
    return batch, rows[0].id if rows else None


def _move(s: Session, batch: Batch, to: BatchStatus, now: datetime, reason: str | None) -> Batch:
    fresh = repo.get_batch(s, batch.id or 0)
    assert fresh is not None
    if fresh.status != batch.status:
        raise repo.BatchConflict(batch.id or 0, batch.status, fresh.status)
    repo.set_batch_status(s, fresh, to, now=now, reason=reason)
    return fresh
