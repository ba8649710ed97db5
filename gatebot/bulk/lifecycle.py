"""A batch's decisions: confirm (every row's intent committed at once), approve or reject, pause, resume,
cancel — each a compare-and-set on the batch's status, so a double click or a retry does it once.

* :meth:`Lifecycle.confirm` validates the saved file again (the store may have changed since the plan),
  then in ONE transaction checks the approvals policy and the daily limits under the spending lock (the
  single order's rule), moves the batch ``planned → running`` (or ``awaiting_approval``) and inserts
  every row as an ``Order`` with its own idempotency key, external_ref and exact body (encrypted, with the
  customer account), status ``queued``. Nothing is sent here: the runner sends the rows.
* Approval: the same four-eyes rule as an order (``OrderService.approver_refusal`` →
  ``access.approval_refusal``), the same policy TTL and, as for an order, no approval while the Gate
  circuit is open (the request stays open); rejection or expiry ends every row ``rejected`` without a
  Gate call. :meth:`Lifecycle.open_approvals` and :meth:`Lifecycle.products` are what a request shows.
* Pause/resume/cancel: the requester or an admin (``access.batch_control_refusal``). Cancel ends the rows
  not sent yet (``queued``) and those Gate refused for funds (``waiting_funds``) as ``rejected``, without a
  Gate call; rows already at Gate go on.

Events: ``batch.<status>`` on every change (``batch.running``, ``batch.awaiting_approval``,
``batch.paused``, ``batch.cancelled``, ``batch.rejected``...) with ``batch_id``, ``status``, ``requester``
and ``by``. Must not import Slack, the scheduler, ``gatebot.slack``, ``gatebot.jobs``, ``gatebot.demo``
or ``gatebot.emulator``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gatebot.access import batch_control_refusal
from gatebot.bulk.model import BatchRefused, BulkInvalid, ProductCount
from gatebot.bulk.planning import Planning
from gatebot.orders import APPROVAL_EXPIRED, APPROVAL_REJECTED
from gatebot.store import repo
from gatebot.store.models import Batch, BatchStatus, Order, OrderStatus

__all__ = ["BATCH_CANCELLED", "EXPIRY_ACTOR", "Lifecycle"]

log = logging.getLogger(__name__)

#: ``error_code`` of a row that ended with its cancelled batch.
BATCH_CANCELLED: Final = "batch_cancelled"
EXPIRY_ACTOR: Final = "system:approvals"
_CONTROLLABLE: Final = {
    "pause": {BatchStatus.RUNNING, BatchStatus.WAITING_FUNDS},
    "resume": {BatchStatus.PAUSED, BatchStatus.WAITING_FUNDS},
    "cancel": {BatchStatus.PLANNED, BatchStatus.AWAITING_APPROVAL, BatchStatus.RUNNING, BatchStatus.PAUSED,
               BatchStatus.WAITING_FUNDS},
}


class Lifecycle(Planning):
    """Confirm, decide and control batches."""

    async def confirm(self, batch_id: int, requester: str) -> Batch:
        """Confirm a planned batch: every row's intent is committed with the batch's new status in one
        transaction, before any request. Returns the batch (``running`` or ``awaiting_approval``).

        Confirming twice (a double click, a retried command) returns the same batch and saves nothing more.
        Raises :class:`~gatebot.bulk.BatchRefused` (not the uploader's, or cancelled) or
        :class:`~gatebot.bulk.BulkInvalid` when the file is no longer valid (e.g. a reference was taken
        since the plan) or the batch would now go over a daily limit the policy refuses (orders placed
        since the plan count); nothing is saved then.
        """
        batch = await self._require(batch_id)
        if batch.requester != requester:
            raise BatchRefused(f"Only the person who uploaded batch {batch.number} may confirm it.")
        if batch.state is not BatchStatus.PLANNED:
            if batch.state is BatchStatus.CANCELLED and batch.confirmed_at is None:
                raise BatchRefused(f"Batch {batch.number} was dropped before it was confirmed; upload the file again.")
            return batch
        try:
            valid = await self._revalidate(batch)
        except BulkInvalid:
            # A concurrent confirmation (a double click) committed the rows meanwhile: its references now
            # "exist in the store". That batch stands; only a batch still planned is really invalid.
            fresh = await self._require(batch_id)
            if fresh.state is not BatchStatus.PLANNED:
                return fresh
            raise
        totals = valid.totals()
        roles = repo.roles_of(batch.requester_roles)
        now = self.clock.now()

        def build() -> list[Order]:
            rows: list[Order] = []
            for row, draft, quote in valid.quotes:
                ref = quote.request.external_ref
                assert ref is not None  # every bulk row has one (planning refuses empty references)
                order = self.orders.intent_order(quote, draft, external_ref=ref, now=now, status=OrderStatus.QUEUED,
                                                 reason=f"Row {row.number:,} of batch {batch.number}; waiting for "
                                                        "its turn.")
                order.batch_id, order.batch_row = batch_id, row.number
                rows.append(order)
            return rows

        # Thousands of encrypted rows take a while to build: off the event loop, and outside the transaction.
        rows = await asyncio.to_thread(build)

        def save(s: Session) -> tuple[Batch, str | None, bool]:
            fresh = repo.get_batch(s, batch_id)
            assert fresh is not None
            if fresh.state is not BatchStatus.PLANNED:
                return fresh, None, False
            # The approvals policy and the daily limits against the spend as it is now, under the spending
            # lock held until these rows are committed: an order saved meanwhile is counted, and none
            # saved from now on can count without these rows.
            approval = self._batch_approval(s, totals, requester, roles, now=now, lock=True)
            to = BatchStatus.AWAITING_APPROVAL if approval else BatchStatus.RUNNING
            fresh.set_totals(totals)
            repo.set_batch_status(
                s, fresh, to, now=now, confirmed_at=now, approval_reason=approval, totals_json=fresh.totals_json,
                approval_expires_at=now + self.orders.approval_policy.ttl if approval else None,
                reason=f"Needs approval: {approval}." if approval else None)
            repo.add_batch_rows(s, rows, actor=requester, note=f"queued in batch {fresh.number}")
            repo.audit(s, actor=requester, action="batch.confirm", target=fresh.number, allowed=True,
                       detail=f"{len(valid.quotes)} rows" + (f"; approval requested: {approval}" if approval else ""),
                       now=now)
            return fresh, approval, True

        try:
            batch, approval, changed = await self.db.run(save)
        except repo.BatchConflict:  # confirmed (or dropped) concurrently: theirs stands
            return await self._require(batch_id)
        except IntegrityError:  # a reference taken between the validation and the insert: say which
            await self._revalidate(batch)
            raise
        if changed:
            log.info("batch %s confirmed: %d rows %s", batch.number, batch.rows,
                     "awaiting approval" if approval else "queued")
            await self._publish(batch.status, batch, by=requester, reason=approval)
        return batch

    # -- four eyes ------------------------------------------------------------------------------------------
    async def approve(self, batch_id: int, approver: str, *, roles: Iterable[str] = ()) -> Batch:
        """Approve a batch awaiting approval: it starts (the runner sends its rows). Raises
        :class:`~gatebot.bulk.BatchRefused` (not an approver, own batch, decided, expired) or
        :class:`~gatebot.orders.GateDown` (the circuit is open: the request stays open, as for an order)."""
        held = list(roles)
        why = await self.decision_refusal(batch_id, approver, roles=held)
        if why is not None:
            raise BatchRefused(why)
        await self.orders._require_gate()
        return await self._decide(batch_id, approver, held, BatchStatus.RUNNING, reason=None)

    async def reject(self, batch_id: int, approver: str, reason: str, *, roles: Iterable[str] = ()) -> Batch:
        """Reject a batch awaiting approval: every row ends ``rejected``, nothing is sent to Gate."""
        reason = " ".join(reason.split())
        if not reason:
            raise BatchRefused("Say why the batch is rejected (the requester is told the reason).")
        return await self._decide(batch_id, approver, list(roles), BatchStatus.REJECTED, reason=reason)

    async def decision_refusal(self, batch_id: int, approver: str, *, roles: Iterable[str] = ()) -> str | None:
        """Why ``approver`` may not decide batch ``batch_id`` now (recorded in the audit log), or ``None``:
        asked before a surface opens a form to decide (the decision itself checks again)."""
        held, now = list(roles), self.clock.now()

        def check(s: Session) -> str | None:
            batch = repo.get_batch(s, batch_id)
            why = f"There is no batch B{batch_id}." if batch is None else self._refusal(batch, approver, held, now)
            if why is not None:
                repo.audit(s, actor=approver, action="batch.decide", target=f"B{batch_id}", allowed=False,
                           detail=why, now=now)
            return why

        return await self.db.run(check)

    async def open_approvals(self, *, limit: int = 100) -> list[Batch]:
        """Batches waiting for a decision, oldest first."""
        return await self.db.run(lambda s: repo.batches_in(s, [BatchStatus.AWAITING_APPROVAL], limit=limit))

    async def products(self, batch_id: int) -> list[ProductCount]:
        """How many of the batch's rows order each product, most rows first (a request shows it)."""
        counts = await self.db.run(lambda s: repo.batch_product_counts(s, batch_id))
        return [ProductCount(pid, name, n) for pid, name, n in counts]

    def _refusal(self, batch: Batch, approver: str, roles: list[str], now: datetime) -> str | None:
        if batch.state is not BatchStatus.AWAITING_APPROVAL:
            if batch.decided_by:
                word = "rejected" if batch.state is BatchStatus.REJECTED else "approved"
                return f"Batch {batch.number} was already {word} by {batch.decided_by}; nothing changed."
            return f"Batch {batch.number} is not waiting for approval (it is {batch.status})."
        if batch.approval_expires_at is not None and now >= batch.approval_expires_at:
            return f"The approval request for batch {batch.number} has expired; the requester can upload it again."
        return self.orders.approver_refusal(approver, roles, batch)

    async def _decide(self, batch_id: int, approver: str, roles: list[str], to: BatchStatus, *,
                      reason: str | None) -> Batch:
        now = self.clock.now()

        def decide(s: Session) -> Batch | str:
            batch = repo.get_batch(s, batch_id)
            why = f"There is no batch B{batch_id}." if batch is None else self._refusal(batch, approver, roles, now)
            if why is not None or batch is None:
                repo.audit(s, actor=approver, action="batch.decide", target=f"B{batch_id}", allowed=False,
                           detail=why, now=now)
                return why or ""
            word = "approved" if to is BatchStatus.RUNNING else "rejected"
            repo.set_batch_status(s, batch, to, now=now, decided_by=approver, decided_at=now, decision_reason=reason,
                                  reason=None if reason is None else f"Rejected by {approver}: {reason}.")
            if to is BatchStatus.REJECTED:
                _end_rows(s, batch, [OrderStatus.QUEUED], actor=approver, now=now, error_code=APPROVAL_REJECTED,
                          note=f"Rejected by {approver} with batch {batch.number}: {reason}. Nothing was sent to Gate.")
            repo.audit(s, actor=approver, action=f"batch.{word}", target=batch.number, allowed=True, detail=reason,
                       now=now)
            return batch

        try:
            result = await self.db.run(decide)
        except repo.BatchConflict:  # decided by someone else at the same moment: theirs stands
            fresh = await self._require(batch_id)
            raise BatchRefused(self._refusal(fresh, approver, roles, now)
                               or f"Batch B{batch_id} was decided by someone else just now.") from None
        if isinstance(result, str):
            raise BatchRefused(result)
        await self._publish(str(to), result, by=approver, reason=reason)
        return result

    async def expire_batches(self) -> int:
        """End approval requests nobody decided in time (rows ``rejected``, nothing sent) and drop planned
        batches nobody confirmed within a day (with their encrypted file). Returns how many ended."""
        now = self.clock.now()
        ended: list[Batch] = []

        def sweep(s: Session) -> None:
            for batch in repo.batches_in(s, [BatchStatus.AWAITING_APPROVAL, BatchStatus.PLANNED]):
                if batch.state is BatchStatus.AWAITING_APPROVAL:
                    if batch.approval_expires_at is None or batch.approval_expires_at > now:
                        continue
                    note = (f"The approval request for batch {batch.number} expired before anyone approved it; "
                            "nothing was sent to Gate.")
                    repo.set_batch_status(s, batch, BatchStatus.REJECTED, now=now, reason=note,
                                          decided_by=EXPIRY_ACTOR, decided_at=now)
                    _end_rows(s, batch, [OrderStatus.QUEUED], actor=EXPIRY_ACTOR, now=now,
                              error_code=APPROVAL_EXPIRED, note=note)
                elif now - batch.created_at >= self.planned_ttl:
                    repo.set_batch_status(s, batch, BatchStatus.CANCELLED, now=now, source_enc=None,
                                          reason="Never confirmed; dropped with its file.")
                else:
                    continue
                ended.append(batch)

        try:
            await self.db.run(sweep)
        except repo.BatchConflict:  # decided meanwhile: the next sweep does the rest
            return 0
        for batch in ended:
            await self._publish(batch.status, batch, by=EXPIRY_ACTOR)
        return len(ended)

    # -- pause, resume, cancel ---------------------------------------------------------------------------------
    async def pause(self, batch_id: int, actor: str, *, roles: Iterable[str] = ()) -> Batch:
        """Stop sending the batch's rows (rows already at Gate go on) until :meth:`resume`."""
        return await self._control(batch_id, actor, roles, "pause", BatchStatus.PAUSED,
                                   f"Paused by {actor}; nothing more is sent until it is resumed.")

    async def resume(self, batch_id: int, actor: str, *, roles: Iterable[str] = ()) -> Batch:
        """Send the rest of a paused batch (or try a batch waiting for funds again, same keys)."""
        return await self._control(batch_id, actor, roles, "resume", BatchStatus.RUNNING, None)

    async def cancel(self, batch_id: int, actor: str, *, roles: Iterable[str] = ()) -> Batch:
        """End the rows not sent yet as ``rejected`` without a Gate call; rows already at Gate go on."""
        return await self._control(batch_id, actor, roles, "cancel", BatchStatus.CANCELLED,
                                   f"Cancelled by {actor}; the rows not sent yet were not sent.")

    async def _control(self, batch_id: int, actor: str, roles: Iterable[str], action: str, to: BatchStatus,
                       reason: str | None) -> Batch:
        held = list(roles)
        now = self.clock.now()

        def control(s: Session) -> Batch | str:
            batch = repo.get_batch(s, batch_id)
            if batch is None:
                return f"There is no batch B{batch_id}."
            why = batch_control_refusal(actor, requester=batch.requester, roles=held)
            if why is None and batch.state not in _CONTROLLABLE[action]:
                why = f"Batch {batch.number} is {batch.status}: it cannot be {action}d now."
            if why is not None:
                repo.audit(s, actor=actor, action=f"batch.{action}", target=batch.number, allowed=False, detail=why,
                           now=now)
                return why
            repo.set_batch_status(s, batch, to, now=now, reason=reason)
            if to is BatchStatus.CANCELLED:
                _end_rows(s, batch, [OrderStatus.QUEUED, OrderStatus.WAITING_FUNDS], actor=actor, now=now,
                          error_code=BATCH_CANCELLED,
                          note=f"Cancelled by {actor} with batch {batch.number}; nothing was sent to Gate for it.")
                self._finish(s, batch, now)
            repo.audit(s, actor=actor, action=f"batch.{action}", target=batch.number, allowed=True, detail=None,
                       now=now)
            return batch

        for attempt in range(3):
            try:
                result = await self.db.run(control)
                break
            except (repo.BatchConflict, repo.StatusConflict):  # the runner moved a row or the batch meanwhile
                if attempt == 2:
                    raise BatchRefused(f"Batch B{batch_id} is changing right now; try again.") from None
        if isinstance(result, str):
            raise BatchRefused(result)
        await self._publish(str(to), result, by=actor)
        return result

    def _finish(self, s: Session, batch: Batch, now: datetime) -> None:
        """Start the results' lifetime of a batch that ended (finished or cancelled)."""
        batch.finished_at = now
        batch.results_expire_at = now + self.results_ttl
        s.add(batch)


def _end_rows(s: Session, batch: Batch, statuses: list[OrderStatus], *, actor: str, now: datetime, error_code: str,
              note: str) -> int:
    """End a batch's rows in ``statuses`` as ``rejected`` (compare-and-set each, in the caller's transaction)."""
    assert batch.id is not None
    ended = 0
    for order in repo.batch_orders(s, batch.id):
        if OrderStatus(order.status) in statuses:
            _reject_row(s, order, actor=actor, now=now, error_code=error_code, note=note)
            ended += 1
    return ended


def _reject_row(s: Session, order: Order, *, actor: str, now: datetime, error_code: str, note: str) -> None:
    order.error_code, order.status_reason, order.next_attempt_at = error_code, note, None
    repo.set_status(s, order, OrderStatus.REJECTED, actor=actor, note=note, now=now)
